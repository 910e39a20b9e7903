/*
 * link_rate.c - the CPU a link costs per envelope, between two
 * processes, at a fixed rate.
 *
 *   build/bench/link_rate URL_A URL_B RATE SECONDS [SIZE]
 * (ipc:// or tcp:// URLs; tcp ones sign with a fixed key)
 *
 * The parent binds URL_A and sends RATE envelopes a second (SIZE bytes,
 * default 500: a REGISTER's envelope) to a child bound at URL_B, which
 * sends each one back.  A 1 ms timer paces the sends, as a loaded edge
 * sends what a turn of its loop received.  At the end it prints both
 * processes' user + system time (all threads: getrusage, wait4) per
 * round trip, and the round trip's median and 99th percentile.  Only
 * the public API of lib/link.h: the same source measures any transport.
 */
#include "lib/link.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define LR_MAX_RTT 1000000

/* tcp:// endpoints sign what they send: a fixed key, both processes. */
static const unsigned char lr_key[LINK_KEY_LEN] = "link_rate: a bench key";

struct lr {
	uv_loop_t loop;
	struct link *l;
	uv_timer_t tick;
	uv_signal_t term;
	uint64_t start_ns, end_ns;
	long rate, seconds, sent, refused, got;
	size_t size;
	unsigned char *msg;
	uint32_t *rtt_us;
	int peer;
};

static void
lr_echo(void *arg, const char *buf, size_t len)
{
	struct lr *r = arg;

	if (link_send(r->l, r->peer, buf, len) != 0)
		r->refused++;
}

static void
lr_on_term(uv_signal_t *s, int sig)
{
	struct lr *r = s->data;

	(void)sig;
	link_free(r->l);
	uv_close((uv_handle_t *)s, NULL);
}

static int
lr_child(const char *url_a, const char *url_b)
{
	struct lr r = { .peer = 1 };

	uv_loop_init(&r.loop);
	if (link_new(&r.l, &r.loop, url_b, lr_key, lr_echo, &r) != 0 ||
	    link_peer_add(r.l, 1, url_a) != 0)
		return 1;
	uv_signal_init(&r.loop, &r.term);
	r.term.data = &r;
	uv_signal_start(&r.term, lr_on_term, SIGTERM);
	uv_run(&r.loop, UV_RUN_DEFAULT);
	if (r.refused)
		fprintf(stderr, "echo: %ld replies refused\n", r.refused);
	return 0;
}

static void
lr_reply(void *arg, const char *buf, size_t len)
{
	struct lr *r = arg;
	uint64_t t;

	if (len < sizeof(t))
		return;
	memcpy(&t, buf, sizeof(t));
	if (r->got < LR_MAX_RTT)
		r->rtt_us[r->got] = (uint32_t)((uv_hrtime() - t) / 1000);
	r->got++;
}

static void
lr_on_tick(uv_timer_t *t)
{
	struct lr *r = t->data;
	uint64_t now = uv_hrtime(), stamp;
	long due;

	if (r->start_ns == 0) {
		/* Sends are refused until the stream is up. */
		stamp = now;
		memcpy(r->msg, &stamp, sizeof(stamp));
		if (link_send(r->l, 2, r->msg, r->size) != 0)
			return;
		r->start_ns = now;
		r->sent = 1;
		return;
	}
	if (now - r->start_ns >= (uint64_t)r->seconds * 1000000000) {
		if (r->end_ns == 0)
			r->end_ns = now;
		if (r->got + r->refused >= r->sent ||
		    now - r->end_ns > 1000000000)
			uv_stop(&r->loop);
		return;
	}
	due = (long)((now - r->start_ns) * (uint64_t)r->rate / 1000000000) -
	      r->sent;
	while (due-- > 0) {
		stamp = uv_hrtime();
		memcpy(r->msg, &stamp, sizeof(stamp));
		if (link_send(r->l, 2, r->msg, r->size) != 0)
			r->refused++;
		r->sent++;
	}
}

static int
lr_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double
lr_cpu_us(const struct rusage *ru)
{
	return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1e6 +
	       (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec);
}

int
main(int argc, char **argv)
{
	struct lr r = { .peer = 2, .size = 500 };
	struct rusage ru0, ru1, ruc;
	pid_t pid;
	int st;
	long n;

	if (argc < 5) {
		fprintf(stderr, "usage: link_rate URL_A URL_B RATE SECONDS "
			"[SIZE]\n");
		return 2;
	}
	r.rate = atol(argv[3]);
	r.seconds = atol(argv[4]);
	if (argc > 5)
		r.size = (size_t)atol(argv[5]);
	if (r.size < sizeof(uint64_t))
		r.size = sizeof(uint64_t);
	pid = fork();
	if (pid == 0)
		return lr_child(argv[1], argv[2]);
	r.msg = calloc(1, r.size);
	r.rtt_us = calloc(LR_MAX_RTT, sizeof(*r.rtt_us));
	uv_loop_init(&r.loop);
	if (r.msg == NULL || r.rtt_us == NULL ||
	    link_new(&r.l, &r.loop, argv[1], lr_key, lr_reply, &r) != 0 ||
	    link_peer_add(r.l, 2, argv[2]) != 0) {
		fprintf(stderr, "link_rate: no link\n");
		kill(pid, SIGTERM);
		return 1;
	}
	uv_timer_init(&r.loop, &r.tick);
	r.tick.data = &r;
	uv_timer_start(&r.tick, lr_on_tick, 1, 1);
	/* Counted from the first send the stream took. */
	while (r.start_ns == 0)
		uv_run(&r.loop, UV_RUN_ONCE);
	getrusage(RUSAGE_SELF, &ru0);
	uv_run(&r.loop, UV_RUN_DEFAULT);
	getrusage(RUSAGE_SELF, &ru1);
	kill(pid, SIGTERM);
	if (wait4(pid, &st, 0, &ruc) != pid)
		return 1;
	link_free(r.l);
	uv_close((uv_handle_t *)&r.tick, NULL);
	uv_run(&r.loop, UV_RUN_DEFAULT);
	n = r.got < LR_MAX_RTT ? r.got : LR_MAX_RTT;
	qsort(r.rtt_us, (size_t)n, sizeof(*r.rtt_us), lr_cmp);
	printf("rate %ld/s %lds size %zu: sent %ld refused %ld replies %ld; "
	       "cpu per round trip: sender %.2f us, echo %.2f us, "
	       "total %.2f us; rtt p50 %u us p99 %u us\n",
	       r.rate, r.seconds, r.size, r.sent, r.refused, r.got,
	       (lr_cpu_us(&ru1) - lr_cpu_us(&ru0)) / (double)r.got,
	       lr_cpu_us(&ruc) / (double)r.got,
	       (lr_cpu_us(&ru1) - lr_cpu_us(&ru0) + lr_cpu_us(&ruc)) /
	       (double)r.got,
	       n ? r.rtt_us[n / 2] : 0, n ? r.rtt_us[n * 99 / 100] : 0);
	return 0;
}
