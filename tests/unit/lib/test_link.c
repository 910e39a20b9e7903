/*
 * test_link.c - links on a real loop: ipc directories are created,
 * messages arrive whole and in order, a burst larger than one drain
 * batch all arrives, and the error codes of link.h hold.  The streams
 * (the "_tcp" runs repeat a test over TCP on loopback, signed): a peer
 * reached when it starts late or restarts, 10,000 envelopes of every
 * size to a slow reader in another thread, hostile local connectors
 * closed, a full queue refused and counted, binding over live, stale
 * and foreign files, link_free writing what its turn gathered.  What
 * anyone on the network can send a tcp endpoint: forged, replayed and
 * stale chunks (dropped, counted, their connection closed), oversized
 * announcements and idle connections (bounded), and the stream reader
 * alone on hostile length words.  The drain loop (struct link_poll) on its own, over inproc sockets: at most
 * LINK_BATCH messages per wake-up, a callback that frees its poller
 * stops the batch, and with LINK_POLL_CTRL the SP header comes along
 * and a callback may keep it (here to answer a REQ through a raw REP,
 * as rtpctl does).  Liveness: a silent peer dies after dead_ms and
 * comes back when heard, a busy link carries no heartbeat, and our own
 * stalled loop kills no peer.  Waiting is on the loop with a deadline
 * timer, never a sleep (but the one that makes the stall).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <nanomsg/reqrep.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "lib/link.h"
#include "lib/link_int.h"

#define BURST 1000

struct rx {
	int n;
	int bad;
	size_t last_len;
};

struct fixture {
	uv_loop_t loop;
	char dir[64];
	char url_a[128], url_b[128];
	const unsigned char *key;	/* the tcp runs' */
	struct link *a, *b;
	struct rx rx;
	uv_timer_t deadline, retry;
	int sent, timed_out;
	/* liveness: what link_peer_cb reported */
	int deaths, revivals, peer;
	uint64_t died_ms;
	int counted;		/* envelopes on_count saw */
};

static void
on_recv(void *arg, const char *buf, size_t len)
{
	struct fixture *f = arg;
	char want[32];
	int n = snprintf(want, sizeof(want), "msg %d", f->rx.n);

	if ((size_t)n != len || memcmp(buf, want, len) != 0)
		f->rx.bad++;
	f->rx.n++;
	f->rx.last_len = len;
	if (f->rx.n == BURST + 1)
		uv_stop(&f->loop);
}

static void
on_deadline(uv_timer_t *t)
{
	struct fixture *f = t->data;

	f->timed_out = 1;
	uv_stop(&f->loop);
}

/* Retries "msg 0" until the PUSH socket has connected (a refused send
 * queues nothing), then sends the burst as fast as the queue takes it. */
static void
on_retry(uv_timer_t *t)
{
	struct fixture *f = t->data;
	char m[32];

	if (f->sent == 0) {
		if (link_send(f->a, 2, "msg 0", 5) != 0)
			return;
		f->sent = 1;
	}
	while (f->sent <= BURST) {
		int n = snprintf(m, sizeof(m), "msg %d", f->sent);

		if (link_send(f->a, 2, m, (size_t)n) != 0)
			return;	/* queue full: next tick */
		f->sent++;
	}
	uv_timer_stop(t);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/sm-test-link-XXXXXX");
	if (mkdtemp(f->dir) == NULL || uv_loop_init(&f->loop) != 0)
		return -1;
	/* Nested directories that do not exist yet. */
	snprintf(f->url_a, sizeof(f->url_a), "ipc://%s/x/y/a", f->dir);
	snprintf(f->url_b, sizeof(f->url_b), "ipc://%s/b", f->dir);
	*state = f;
	return 0;
}

static void
close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char path[256];

	link_free(f->a);
	link_free(f->b);
	uv_walk(&f->loop, close_walk, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&f->loop) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/x/y/a", f->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/x/y", f->dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/x", f->dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/b", f->dir);
	unlink(path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Links a (at url_a) to b (at url_b) under key (NULL: none) and sends
 * the burst from a to b; every message must arrive whole, in order. */
static void
burst(struct fixture *f, const unsigned char *key)
{
	assert_int_equal(link_new(&f->a, &f->loop, f->url_a, key, on_recv, f), 0);
	assert_int_equal(link_new(&f->b, &f->loop, f->url_b, key, on_recv, f), 0);
	assert_int_equal(link_peer_add(f->a, 2, f->url_b), 0);
	uv_timer_init(&f->loop, &f->deadline);
	uv_timer_init(&f->loop, &f->retry);
	f->deadline.data = f->retry.data = f;
	uv_timer_start(&f->deadline, on_deadline, 10000, 0);
	uv_timer_start(&f->retry, on_retry, 0, 2);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_false(f->timed_out);
	assert_int_equal(f->rx.n, BURST + 1);
	assert_int_equal(f->rx.bad, 0);
}

static void
test_link__burst_arrives_in_order(void **state)
{
	burst(*state, NULL);
}

static void
test_link__errors(void **state)
{
	struct fixture *f = *state;
	struct link *dup = NULL;
	char url[128];

	assert_int_equal(link_new(&f->a, &f->loop, f->url_a, f->key, on_recv, f), 0);
	assert_int_equal(link_send(f->a, 7, "x", 1), -ENOENT);
	assert_int_equal(link_send(f->a, 0, "x", 1), -ENOENT);
	assert_int_equal(link_send(f->a, 100000, "x", 1), -ENOENT);
	assert_int_equal(link_peer_add(f->a, 0, f->url_b), -EINVAL);
	assert_int_equal(link_peer_add(f->a, 256, f->url_b), -EINVAL);
	assert_int_equal(link_peer_add(f->a, 3, f->url_b), 0);
	assert_int_equal(link_peer_add(f->a, 3, f->url_b), -EEXIST);
	/* Nobody listens at b: a send cannot block, it says "not now". */
	assert_int_equal(link_send(f->a, 3, "x", 1), -EAGAIN);
	assert_int_equal(link_peer_add(f->a, 4, "nonsense"), -EINVAL);
	/* A second bind of an ipc endpoint:
	 * test_link__ipc_bind_live_stale_and_foreign. */
	snprintf(url, sizeof(url), "ipc://%s/b", "/proc/no/such");
	assert_true(link_new(&dup, &f->loop, url, f->key, on_recv, f) < 0);
	assert_null(dup);
	link_free(NULL);
}

/* ---- envelopes between hosts: tcp endpoints on loopback */

static const unsigned char key1[LINK_KEY_LEN] = { 1, 2, 3 };
static const unsigned char key2[LINK_KEY_LEN] = { 9, 9, 9 };

/* A tcp:// URL on a loopback port nobody holds right now. */
static void
tcp_url(char *url, size_t cap)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sl), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(url, cap, "tcp://127.0.0.1:%d", ntohs(sa.sin_port));
	close(fd);
}

/* The fixture of the "_tcp" runs: both endpoints tcp, signed. */
static int
setup_tcp(void **state)
{
	struct fixture *f;

	if (setup(state) != 0)
		return -1;
	f = *state;
	tcp_url(f->url_a, sizeof(f->url_a));
	tcp_url(f->url_b, sizeof(f->url_b));
	f->key = key1;
	return 0;
}

/* The loopback address of a tcp:// url. */
static struct sockaddr_in
tcp_sa(const char *url)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)atoi(strrchr(url, ':') + 1));
	return sa;
}

/* A connection to a tcp endpoint: what anyone on the network can open
 * (the kernel completes it before the link accepts). */
static int
raw_tcp(const char *url)
{
	struct sockaddr_in sa = tcp_sa(url);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* A listener at a tcp:// url that a test reads itself. */
static int
raw_tcp_listen(const char *url)
{
	struct sockaddr_in sa = tcp_sa(url);
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 8), 0);
	return fd;
}

/* Writes one chunk, its length word first. */
static void
raw_chunk(int fd, const void *buf, size_t len)
{
	unsigned char hdr[4] = { (unsigned char)(len >> 24),
				 (unsigned char)(len >> 16),
				 (unsigned char)(len >> 8),
				 (unsigned char)len };

	assert_int_equal(send(fd, hdr, 4, 0), 4);
	if (len)
		assert_int_equal(send(fd, buf, len, 0), (ssize_t)len);
}

struct wait {
	struct fixture *f;
	int (*done)(struct fixture *f, void *arg);
	void *arg;
	int ticks;
};

static void
on_wait_tick(uv_timer_t *t)
{
	struct wait *w = t->data;

	if (w->done(w->f, w->arg) || ++w->ticks > 2500)
		uv_stop(&w->f->loop);
}

/* Runs the loop until done() or 5 s; returns done(). */
static int
run_until(struct fixture *f, int (*done)(struct fixture *, void *), void *arg)
{
	struct wait w = { f, done, arg, 0 };
	uv_timer_t t;

	uv_timer_init(&f->loop, &t);
	t.data = &w;
	uv_timer_start(&t, on_wait_tick, 2, 2);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	return done(f, arg);
}

static int
got(struct fixture *f, void *arg)
{
	return f->rx.n >= *(int *)arg;
}

static int
dropped(struct fixture *f, void *arg)
{
	struct link_stats st;

	link_stats_get(f->b, &st);
	return st.rx_forged + st.rx_stale + st.rx_replayed >=
	       *(unsigned long long *)arg;
}

static int closed_by_peer(struct fixture *f, void *arg);
static int counted(struct fixture *f, void *arg);
static void run_for(struct fixture *f, uint64_t ms);
static void on_count(void *arg, const char *buf, size_t len);

/* Bytes a raw stream received, until want. */
struct grab {
	int fd;
	unsigned char buf[512];
	size_t len, want;
};

static int
grabbed(struct fixture *f, void *arg)
{
	struct grab *g = arg;
	ssize_t n;

	(void)f;
	n = recv(g->fd, g->buf + g->len, sizeof(g->buf) - g->len, MSG_DONTWAIT);
	if (n > 0)
		g->len += (size_t)n;
	return g->len >= g->want;
}

static void
test_link__tcp_burst_signed(void **state)
{
	struct fixture *f = *state;
	struct link_stats st;

	tcp_url(f->url_b, sizeof(f->url_b));
	burst(f, key1);
	link_stats_get(f->b, &st);
	assert_true(st.rx_forged + st.rx_stale + st.rx_replayed == 0);
}

/* Without a key there is no talking to another host at all. */
static void
test_link__tcp_needs_a_key(void **state)
{
	struct fixture *f = *state;
	struct link *l = NULL;

	tcp_url(f->url_b, sizeof(f->url_b));
	assert_int_equal(link_new(&l, &f->loop, f->url_b, f->key, on_recv, f),
			 -EINVAL);
	assert_null(l);
	assert_int_equal(link_new(&f->a, &f->loop, f->url_a, f->key, on_recv, f), 0);
	assert_int_equal(link_peer_add(f->a, 2, f->url_b), -EINVAL);
}

/* The attacks on a tcp endpoint: plain bytes, another cluster's key,
 * a captured chunk sent again, one with an old time.  Each is dropped
 * and counted, and the connection that carried it closed. */
static void
test_link__tcp_drops_forged_replayed_stale(void **state)
{
	struct fixture *f = *state;
	char url_c[128];
	unsigned char tr[LINK_TRAILER_LEN], md[EVP_MAX_MD_SIZE];
	unsigned char old[4 + 5 + LINK_TRAILER_LEN];
	/* The captured stream: the hello (an empty chunk), then "msg 0". */
	struct grab g = { .want = 4 + LINK_TRAILER_LEN + 4 + 9 + LINK_TRAILER_LEN };
	const unsigned char *cap = g.buf + 4 + LINK_TRAILER_LEN;
	size_t caplen = 4 + 9 + LINK_TRAILER_LEN;
	unsigned int mdlen;
	unsigned long long want;
	struct link_stats st;
	struct link *other = NULL;
	int s, lfd, one = 1;

	tcp_url(f->url_b, sizeof(f->url_b));
	tcp_url(url_c, sizeof(url_c));
	assert_int_equal(link_new(&f->b, &f->loop, f->url_b, key1, on_recv, f), 0);

	/* 1. plain bytes */
	s = raw_tcp(f->url_b);
	raw_chunk(s, "\0\0\0\5msg 0", 9);
	want = 1;
	assert_true(run_until(f, dropped, &want));
	assert_true(run_until(f, closed_by_peer, &s));
	close(s);

	/* 2. a link with another key: its very first chunk fails */
	assert_int_equal(link_new(&other, &f->loop, f->url_a, key2, on_recv, f), 0);
	assert_int_equal(link_peer_add(other, 2, f->url_b), 0);
	want = 2;
	assert_true(run_until(f, dropped, &want));
	link_free(other);
	assert_int_equal(f->rx.n, 0);

	/* 3. capture a genuine chunk at url_c, deliver it twice */
	lfd = raw_tcp_listen(url_c);
	assert_int_equal(link_new(&f->a, &f->loop, f->url_a, key1, on_recv, f), 0);
	assert_int_equal(link_peer_add(f->a, 3, url_c), 0);
	for (int i = 0; i < 2500 && link_send(f->a, 3, "msg 0", 5) != 0; i++)
		run_for(f, 2);
	g.fd = accept(lfd, NULL, NULL);
	assert_true(g.fd >= 0);
	assert_true(run_until(f, grabbed, &g));
	assert_int_equal(g.len, g.want);
	assert_memory_equal(g.buf, "\0\0\0\x28", 4);	/* the empty hello */
	assert_memory_equal(cap, "\0\0\0\x31\0\0\0\5msg 0", 13);
	s = raw_tcp(f->url_b);
	assert_int_equal(send(s, cap, caplen, 0), (ssize_t)caplen);
	assert_true(run_until(f, got, &one));
	assert_int_equal(send(s, cap, caplen, 0), (ssize_t)caplen);
	want = 3;
	assert_true(run_until(f, dropped, &want));
	assert_true(run_until(f, closed_by_peer, &s));
	close(s);
	close(g.fd);
	close(lfd);
	link_stats_get(f->b, &st);
	assert_int_equal(st.rx_replayed, 1);
	assert_int_equal(f->rx.n, 1);

	/* 4. right key, new stream, but sent LINK_WINDOW_MS + 1 s ago */
	memcpy(old, "\0\0\0\5msg 1", 9);
	memset(tr, 0, sizeof(tr));
	tr[7] = 42;			/* stream 42 */
	tr[15] = 1;			/* seq 1 */
	{
		uint64_t t = (uint64_t)time(NULL) * 1000 - LINK_WINDOW_MS - 1000;

		for (int i = 23; i >= 16; i--, t >>= 8)
			tr[i] = (unsigned char)t;
	}
	memcpy(old + 9, tr, LINK_TRAILER_LEN);
	HMAC(EVP_sha256(), key1, LINK_KEY_LEN, old, 9 + 24, md, &mdlen);
	memcpy(old + 9 + 24, md, 16);
	s = raw_tcp(f->url_b);
	raw_chunk(s, old, sizeof(old));
	link_stats_get(f->b, &st);
	want = st.rx_forged + st.rx_stale + st.rx_replayed + 1;
	assert_true(run_until(f, dropped, &want));
	assert_true(run_until(f, closed_by_peer, &s));
	close(s);
	link_stats_get(f->b, &st);
	assert_true(st.rx_forged >= 2);	/* key2's link may have tried again */
	assert_int_equal(st.rx_stale, 1);
	assert_int_equal(f->rx.n, 1);
}

/*
 * What anyone who reaches a tcp endpoint can do before sending anything
 * genuine: announce a chunk larger than an untrusted connection may
 * send (closed, counted), and hold connections open without sending
 * (beyond LINK_UX_UNTRUSTED the oldest close).  A genuine peer still
 * gets in, and then sends an envelope larger than that bound.
 */
static void
test_link__tcp_untrusted_connections_bounded(void **state)
{
	struct fixture *f = *state;
	enum { IDLE = LINK_UX_UNTRUSTED + 8 };
	static unsigned char big[200 * 1024];
	unsigned char hdr[4] = { 0, 3, 0, 0 };	/* 192 KiB */
	unsigned long long want = 1;
	int fds[IDLE], s, one = 1, rc = -EAGAIN;
	struct link_stats st;
	char b[4];

	tcp_url(f->url_a, sizeof(f->url_a));
	tcp_url(f->url_b, sizeof(f->url_b));
	assert_int_equal(link_new(&f->b, &f->loop, f->url_b, key1, on_count, f), 0);
	s = raw_tcp(f->url_b);
	assert_int_equal(send(s, hdr, 4, 0), 4);
	assert_true(run_until(f, dropped, &want));
	assert_true(run_until(f, closed_by_peer, &s));
	close(s);

	for (int i = 0; i < IDLE; i++) {
		fds[i] = raw_tcp(f->url_b);
		if (i % 8 == 7)
			run_for(f, 5);	/* accepted in order */
	}
	run_for(f, 20);
	for (int i = 0; i < IDLE - LINK_UX_UNTRUSTED; i++)
		assert_true(run_until(f, closed_by_peer, &fds[i]));
	for (int i = IDLE - LINK_UX_UNTRUSTED; i < IDLE; i++)
		assert_true(recv(fds[i], b, sizeof(b), MSG_DONTWAIT) < 0 &&
			    errno == EAGAIN);
	assert_int_equal(link_peers_in(f->b), LINK_UX_UNTRUSTED);

	assert_int_equal(link_new(&f->a, &f->loop, f->url_a, key1, on_recv, f), 0);
	assert_int_equal(link_peer_add(f->a, 2, f->url_b), 0);
	for (int i = 0; i < 2500 && (rc = link_send(f->a, 2, big,
						      sizeof(big))) != 0; i++)
		run_for(f, 2);
	assert_int_equal(rc, 0);
	assert_true(run_until(f, counted, &one));
	link_stats_get(f->b, &st);
	assert_int_equal(st.rx_forged, 1);
	/* The genuine one took the place of the oldest idle one. */
	assert_true(run_until(f, closed_by_peer, &fds[IDLE - LINK_UX_UNTRUSTED]));
	for (int i = 0; i < IDLE; i++)
		close(fds[i]);
}

/* A tcp endpoint takes an address, never a name; a bad URL is refused
 * before any socket. */
static void
test_link__tcp_url_checked(void **state)
{
	struct fixture *f = *state;
	static const char *bad[] = {
		"tcp://localhost:7000", "tcp://127.0.0.1", "tcp://127.0.0.1:",
		"tcp://127.0.0.1:0", "tcp://127.0.0.1:65536", "tcp://:7000",
		"tcp://[::1:7000", "tcp://127.0.0.1:70x", "inproc://x", "udp://1.2.3.4:5",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(link_url_ok(bad[i]), -EINVAL);
		assert_int_equal(link_new(&f->a, &f->loop, bad[i], key1, on_recv,
					  f), -EINVAL);
	}
	assert_int_equal(link_url_ok("tcp://10.0.0.1:7201"), 0);
	assert_int_equal(link_url_ok("tcp://[::1]:7201"), 0);
	assert_int_equal(link_url_ok("ipc:///run/sipmesh/core-1"), 0);
	assert_int_equal(link_new(&f->a, &f->loop, f->url_a, NULL, on_recv, f), 0);
	assert_int_equal(link_peer_add(f->a, 2, "tcp://localhost:7000"), -EINVAL);
	assert_int_equal(link_peer_add(f->a, 2, "tcp://[::1]:7000"), -EINVAL);	/* no key */
}

/* Under load a turn's envelopes for one peer share a nanomsg message
 * (the burst: one timer callback sends hundreds); sent one per turn,
 * each goes alone, at once. */
static void
test_link__a_turn_is_one_message_idle_is_one_each(void **state)
{
	struct fixture *f = *state;
	struct link_stats st;
	int want = 3;

	burst(f, f->key);
	link_stats_get(f->a, &st);
	assert_int_equal(st.tx_frames, BURST + 1);
	assert_true(st.tx_msgs * 20 < st.tx_frames);
	assert_int_equal(st.tx_dropped, 0);
	link_stats_get(f->b, &st);
	assert_int_equal(st.rx_frames, BURST + 1);

	/* three turns, one envelope each */
	f->rx.n = 0;
	link_stats_get(f->a, &st);
	for (int i = 0; i < 3; i++) {
		char m[32];
		int n = snprintf(m, sizeof(m), "msg %d", i);
		struct link_stats now;

		assert_int_equal(link_send(f->a, 2, m, (size_t)n), 0);
		link_stats_get(f->a, &now);
		assert_int_equal(now.tx_msgs, st.tx_msgs + (unsigned)i + 1);
		uv_run(&f->loop, UV_RUN_NOWAIT);
	}
	assert_true(run_until(f, got, &want));
	assert_int_equal(f->rx.bad, 0);
}

/* ---- liveness: heartbeats on idle links, silent peers dead */

static void
on_peer(void *arg, int id, int alive)
{
	struct fixture *f = arg;

	f->peer = id;
	if (alive) {
		f->revivals++;
		return;
	}
	f->deaths++;
	f->died_ms = uv_now(&f->loop);
}

static void
on_count(void *arg, const char *buf, size_t len)
{
	struct fixture *f = arg;

	(void)buf;
	(void)len;
	f->counted++;
}

static int
died(struct fixture *f, void *arg)
{
	return f->deaths >= *(int *)arg;
}

static int
revived(struct fixture *f, void *arg)
{
	return f->revivals >= *(int *)arg;
}

/* True once the loop's clock passed *(uint64_t *)arg. */
static int
passed(struct fixture *f, void *arg)
{
	return uv_now(&f->loop) >= *(uint64_t *)arg;
}

/* Runs the loop for ms (its own clock). */
static void
run_for(struct fixture *f, uint64_t ms)
{
	uint64_t until;

	uv_update_time(&f->loop);
	until = uv_now(&f->loop) + ms;
	assert_true(run_until(f, passed, &until));
}

/* A peer that never sends is dead after dead_ms (not before), refused
 * at once from then on, and alive again when it is heard. */
static void
test_link__live_silent_peer_dies_and_comes_back(void **state)
{
	struct fixture *f = *state;
	struct link_stats st;
	uint64_t start;
	int one = 1, rc;

	assert_int_equal(link_new(&f->a, &f->loop, f->url_a, f->key, on_recv, f), 0);
	assert_int_equal(link_peer_add(f->a, 2, f->url_b), 0);
	assert_int_equal(link_live_start(f->a, 1, 20, 59, on_peer, f), -EINVAL);
	assert_int_equal(link_live_start(f->a, 0, 20, 60, on_peer, f), -EINVAL);
	assert_int_equal(link_live_start(f->a, 1, 0, 60, on_peer, f), -EINVAL);
	uv_update_time(&f->loop);
	start = uv_now(&f->loop);
	assert_int_equal(link_live_start(f->a, 1, 20, 60, on_peer, f), 0);
	assert_true(run_until(f, died, &one));
	assert_int_equal(f->peer, 2);
	assert_true(f->died_ms - start >= 60);
	assert_int_equal(link_send(f->a, 2, "msg 0", 5), -EHOSTDOWN);
	link_stats_get(f->a, &st);
	assert_int_equal(st.tx_peer_dead, 1);
	assert_int_equal(st.peers_died, 1);

	/* The peer starts, with liveness on: its heartbeats revive it. */
	assert_int_equal(link_new(&f->b, &f->loop, f->url_b, f->key, on_recv, f), 0);
	assert_int_equal(link_peer_add(f->b, 1, f->url_a), 0);
	assert_int_equal(link_live_start(f->b, 2, 20, 60, NULL, NULL), 0);
	assert_true(run_until(f, revived, &one));
	assert_int_equal(f->peer, 2);
	/* Heard means b reaches a; a's own stream to b may still be
	 * reconnecting (tried every 100 ms): -EAGAIN, as ever. */
	for (int i = 0; i < 100 && (rc = link_send(f->a, 2, "msg 0", 5)) != 0; i++) {
		assert_int_equal(rc, -EAGAIN);
		run_for(f, 5);
	}
	assert_int_equal(rc, 0);
	assert_true(run_until(f, got, &one));
	assert_int_equal(f->rx.bad, 0);
	assert_int_equal(f->deaths, 1);
}

static void
on_traffic(uv_timer_t *t)
{
	struct fixture *f = t->data;

	link_send(f->a, 2, "x", 1);
	link_send(f->b, 1, "y", 1);
}

/* Two linked peers, liveness on both (heartbeat 20 ms, dead 60 ms),
 * each having heard the other. */
static void
live_pair(struct fixture *f)
{
	assert_int_equal(link_new(&f->a, &f->loop, f->url_a, f->key, on_count, f), 0);
	assert_int_equal(link_new(&f->b, &f->loop, f->url_b, f->key, on_count, f), 0);
	assert_int_equal(link_peer_add(f->a, 2, f->url_b), 0);
	assert_int_equal(link_peer_add(f->b, 1, f->url_a), 0);
	assert_int_equal(link_live_start(f->a, 1, 20, 60, on_peer, f), 0);
	assert_int_equal(link_live_start(f->b, 2, 20, 60, on_peer, f), 0);
	run_for(f, 100);
	assert_int_equal(link_send(f->a, 2, "x", 1), 0);
	assert_int_equal(link_send(f->b, 1, "y", 1), 0);
}

/* A link that carries traffic carries no heartbeat; idle, it does, and
 * a live peer never dies either way. */
static void
test_link__live_heartbeats_only_when_idle(void **state)
{
	struct fixture *f = *state;
	struct link_stats a0, b0, a1, b1;
	uv_timer_t traffic;

	live_pair(f);
	uv_timer_init(&f->loop, &traffic);
	traffic.data = f;
	uv_timer_start(&traffic, on_traffic, 3, 3);
	run_for(f, 40);
	link_stats_get(f->a, &a0);
	link_stats_get(f->b, &b0);
	run_for(f, 300);
	link_stats_get(f->a, &a1);
	link_stats_get(f->b, &b1);
	assert_int_equal(a1.tx_heartbeats, a0.tx_heartbeats);
	assert_int_equal(b1.tx_heartbeats, b0.tx_heartbeats);
	assert_true(a1.tx_frames - a0.tx_frames >= 20);

	uv_close((uv_handle_t *)&traffic, NULL);
	run_for(f, 300);
	link_stats_get(f->a, &a0);
	link_stats_get(f->b, &b0);
	assert_true(a0.tx_heartbeats - a1.tx_heartbeats >= 5);
	assert_true(b0.tx_heartbeats - b1.tx_heartbeats >= 5);
	assert_int_equal(a0.tx_frames, a1.tx_frames);
	assert_int_equal(f->deaths, 0);
	assert_int_equal(a0.peers_died + b0.peers_died, 0);
}

/* Our own loop stalled five times dead_ms (a stopped process, a
 * blocked loop): the peers' messages wait unread, and they must not be
 * taken for dead for it. */
static void
test_link__live_own_stall_kills_nobody(void **state)
{
	struct fixture *f = *state;

	live_pair(f);
	usleep(300 * 1000);
	run_for(f, 100);
	assert_int_equal(f->deaths, 0);
	assert_int_equal(link_send(f->a, 2, "x", 1), 0);
}

/* ---- ipc: unix streams driven by the loop */

/* A unix stream at an ipc:// url's file, non-blocking: connected to
 * it (what any local process can open), or listening there and never
 * accepting or reading (a peer that is up but hung). */
static int
raw_unix(const char *url, int listening)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", url + 6);
	if (!listening) {
		assert_int_equal(connect(fd, (struct sockaddr *)&sa,
					 sizeof(sa)), 0);
		return fd;
	}
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 8), 0);
	return fd;
}

/* True once the raw stream *arg was closed by the other side. */
static int
closed_by_peer(struct fixture *f, void *arg)
{
	char b[16];
	ssize_t n = recv(*(int *)arg, b, sizeof(b), MSG_DONTWAIT);

	(void)f;
	return n == 0 || (n < 0 && errno != EAGAIN);
}

static int
counted(struct fixture *f, void *arg)
{
	return f->counted >= *(int *)arg;
}

/* Sends buf to peer 2 of l until the stream is up; fails after 5 s. */
static void
send_when_up(struct fixture *f, struct link *l, const char *buf)
{
	for (int i = 0; i < 2500; i++) {
		int rc = link_send(l, 2, buf, strlen(buf));

		if (rc == 0)
			return;
		assert_int_equal(rc, -EAGAIN);
		run_for(f, 2);
	}
	fail_msg("peer never reached");
}

/* A frame whose length runs past its chunk: the frames before it
 * arrive, the rest is dropped and counted, and the connection that
 * sent it is closed (no link sends that). */
static void
test_link__a_cut_frame_is_dropped_and_counted(void **state)
{
	struct fixture *f = *state;
	static const unsigned char cut[] =
		"\0\0\0\x12\0\0\0\5msg 0\0\0\0\x50" "msg 1";
	struct link_stats st;
	unsigned long long want = 1;
	int one = 1, fd;

	assert_int_equal(link_new(&f->b, &f->loop, f->url_b, f->key, on_recv, f), 0);
	fd = raw_unix(f->url_b, 0);
	assert_int_equal(send(fd, cut, sizeof(cut) - 1, 0), sizeof(cut) - 1);
	assert_true(run_until(f, dropped, &want));
	assert_true(run_until(f, got, &one));
	assert_true(run_until(f, closed_by_peer, &fd));
	close(fd);
	assert_int_equal(f->rx.n, 1);
	assert_int_equal(f->rx.bad, 0);
	link_stats_get(f->b, &st);
	assert_int_equal(st.rx_frames, 1);
}

/* link_peer_add before the peer is up: -EAGAIN meanwhile, reached once
 * it binds (tried every 100 ms, as nanomsg did). */
static void
test_link__ipc_peer_started_later_is_reached(void **state)
{
	struct fixture *f = *state;
	int one = 1;

	assert_int_equal(link_new(&f->a, &f->loop, f->url_a, f->key, on_recv, f), 0);
	assert_int_equal(link_peer_add(f->a, 2, f->url_b), 0);
	assert_int_equal(link_send(f->a, 2, "msg 0", 5), -EAGAIN);
	run_for(f, 150);
	assert_int_equal(link_send(f->a, 2, "msg 0", 5), -EAGAIN);
	assert_int_equal(link_new(&f->b, &f->loop, f->url_b, f->key, on_recv, f), 0);
	send_when_up(f, f->a, "msg 0");
	assert_true(run_until(f, got, &one));
	assert_int_equal(f->rx.bad, 0);
	assert_int_equal(link_peers_in(f->b), 1);
}

/* The peer restarts (a new process binds the same file): what was
 * accepted after it went reaches the new one, in order, and the old
 * stream takes nothing (a send on it is refused, not lost). */
static void
test_link__ipc_restarted_peer_is_reached_again(void **state)
{
	struct fixture *f = *state;
	int one = 1, sent = 0, refused = 0;
	char m[32];

	assert_int_equal(link_new(&f->a, &f->loop, f->url_a, f->key, on_recv, f), 0);
	assert_int_equal(link_new(&f->b, &f->loop, f->url_b, f->key, on_count, f), 0);
	assert_int_equal(link_peer_add(f->a, 2, f->url_b), 0);
	send_when_up(f, f->a, "old");
	assert_true(run_until(f, counted, &one));

	/* a has not run since: it does not know yet. */
	link_free(f->b);
	assert_int_equal(link_new(&f->b, &f->loop, f->url_b, f->key, on_recv, f), 0);
	while (sent < 100) {
		int n = snprintf(m, sizeof(m), "msg %d", sent);
		int rc = link_send(f->a, 2, m, (size_t)n);

		if (rc == 0)
			sent++;
		else
			refused++;
		assert_true(rc == 0 || rc == -EAGAIN);
		assert_true(refused < 2500);
		uv_run(&f->loop, UV_RUN_NOWAIT);
		if (rc != 0)
			run_for(f, 2);
	}
	assert_true(refused >= 1);	/* the send that found the old gone */
	assert_true(run_until(f, got, &sent));
	assert_int_equal(f->rx.n, 100);
	assert_int_equal(f->rx.bad, 0);
	assert_int_equal(f->counted, 1);
}

/* ---- many envelopes to a slow reader in another thread */

#define MANY 10000

/* Envelope i: every 16th up to 64 KiB, the others up to 2 KiB; the
 * first 1 byte, the second 64 KiB. */
static size_t
many_size(int i)
{
	uint32_t h = (uint32_t)i * 2654435761u;

	if (i == 0)
		return 1;
	if (i == 1)
		return 65536;
	return 1 + (i % 16 == 0 ? h % 65536 : h % 2048);
}

static void
many_fill(unsigned char *b, int i)
{
	size_t n = many_size(i);

	for (size_t j = 0; j < n; j++)
		b[j] = (unsigned char)(i * 31 + (int)j);
}

/*
 * A reader on a loop of its own, in another thread: nothing it does
 * wakes the sender's loop.  When want envelopes came, or at its
 * deadline, it tells the sender (done) and stops.
 */
struct reader {
	uv_loop_t loop;
	struct link *l;
	uv_async_t *done;	/* the sender's loop */
	uv_timer_t deadline;
	int deadline_ms;
	int n, want;
};

static void
reader_stop(struct reader *r)
{
	uv_async_send(r->done);
	uv_stop(&r->loop);
}

/* A link_recv_cb that only counts. */
static void
reader_count(void *arg, const char *buf, size_t len)
{
	struct reader *r = arg;

	(void)buf;
	(void)len;
	if (++r->n == r->want)
		reader_stop(r);
}

static void
reader_deadline(uv_timer_t *t)
{
	reader_stop(t->data);
}

static void *
reader_main(void *arg)
{
	struct reader *r = arg;

	uv_timer_init(&r->loop, &r->deadline);
	r->deadline.data = r;
	uv_timer_start(&r->deadline, reader_deadline,
		       (uint64_t)r->deadline_ms, 0);
	uv_run(&r->loop, UV_RUN_DEFAULT);
	link_free(r->l);
	uv_close((uv_handle_t *)&r->deadline, NULL);
	uv_run(&r->loop, UV_RUN_DEFAULT);
	return NULL;
}

struct slow {
	struct reader r;	/* first: the callback's arg is either */
	unsigned char *want;
	int bad;
};

static void
slow_recv(void *arg, const char *buf, size_t len)
{
	struct slow *s = arg;

	many_fill(s->want, s->r.n);
	if (len != many_size(s->r.n) || memcmp(buf, s->want, len) != 0)
		s->bad++;
	/* Slow on purpose: the sender's pending buffer fills, chunks
	 * split across reads.  A pause every 16 (not 64) keeps it slower
	 * than a sender under ASan on a busy machine, too. */
	if ((s->r.n + 1) % 16 == 0)
		usleep(1000);
	reader_count(&s->r, buf, len);
}

struct many {
	struct fixture *f;
	unsigned char *buf;
	int sent, refused;
};

/* One envelope per turn, so a refusal is known at once (a gathered
 * one would show only as tx_dropped) and the same one goes again. */
static void
many_send(uv_idle_t *h)
{
	struct many *m = h->data;

	if (m->sent == MANY) {
		uv_idle_stop(h);
		return;
	}
	many_fill(m->buf, m->sent);
	if (link_send(m->f->a, 2, m->buf, many_size(m->sent)) == 0)
		m->sent++;
	else
		m->refused++;
}

static void
many_done(uv_async_t *h)
{
	uv_stop(h->loop);
}

static void
test_link__ipc_many_sizes_in_order_to_a_slow_reader(void **state)
{
	struct fixture *f = *state;
	struct slow s = { .r = { .deadline_ms = 30000, .want = MANY } };
	struct many m = { .f = f };
	struct link_stats st;
	uv_async_t done;
	uv_idle_t idle;
	pthread_t t;

	s.want = malloc(65536);
	m.buf = malloc(65536);
	assert_non_null(s.want);
	assert_non_null(m.buf);
	assert_int_equal(uv_loop_init(&s.r.loop), 0);
	assert_int_equal(link_new(&s.r.l, &s.r.loop, f->url_b, f->key, slow_recv,
				  &s), 0);
	assert_int_equal(link_new(&f->a, &f->loop, f->url_a, f->key, on_recv, f), 0);
	assert_int_equal(link_peer_add(f->a, 2, f->url_b), 0);
	uv_async_init(&f->loop, &done, many_done);
	s.r.done = &done;
	uv_idle_init(&f->loop, &idle);
	idle.data = &m;
	uv_idle_start(&idle, many_send);
	assert_int_equal(pthread_create(&t, NULL, reader_main, &s.r), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	pthread_join(t, NULL);
	uv_close((uv_handle_t *)&done, NULL);
	uv_close((uv_handle_t *)&idle, NULL);
	assert_int_equal(uv_loop_close(&s.r.loop), 0);
	assert_int_equal(m.sent, MANY);
	assert_int_equal(s.r.n, MANY);
	assert_int_equal(s.bad, 0);
	assert_true(m.refused > 0);	/* the reader was slower */
	link_stats_get(f->a, &st);
	assert_int_equal(st.tx_dropped, 0);
	free(s.want);
	free(m.buf);
}

/*
 * Envelopes gathered outside the poll phase (a timer here; a prepare
 * callback at the edge) go out in the same turn: the loop must not
 * block in its poll with frames waiting for the end of the turn.  The
 * reader is another thread's loop (struct reader), so nothing it does
 * wakes ours.
 */
struct burst {
	struct fixture *f;
	uint64_t sent_ms, done_ms;
};

static void
burst_from_timer(uv_timer_t *t)
{
	struct burst *b = t->data;

	b->sent_ms = uv_now(t->loop);
	for (int i = 0; i < 3; i++)
		assert_int_equal(link_send(b->f->a, 2, "burst", 5), 0);
}

static void
burst_done(uv_async_t *h)
{
	struct burst *b = h->data;

	uv_update_time(h->loop);
	b->done_ms = uv_now(h->loop);
	uv_stop(h->loop);
}

static void
test_link__ipc_gathered_from_a_timer_goes_in_that_turn(void **state)
{
	struct fixture *f = *state;
	struct reader q = { .deadline_ms = 3000, .want = 4 };
	struct burst b = { .f = f };
	uv_async_t done;
	uv_timer_t t;
	pthread_t th;

	assert_int_equal(uv_loop_init(&q.loop), 0);
	assert_int_equal(link_new(&q.l, &q.loop, f->url_b, f->key, reader_count,
				  &q), 0);
	assert_int_equal(link_new(&f->a, &f->loop, f->url_a, f->key, on_recv, f), 0);
	assert_int_equal(link_peer_add(f->a, 2, f->url_b), 0);
	uv_async_init(&f->loop, &done, burst_done);
	done.data = &b;
	q.done = &done;
	assert_int_equal(pthread_create(&th, NULL, reader_main, &q), 0);
	send_when_up(f, f->a, "up");
	uv_timer_init(&f->loop, &t);
	t.data = &b;
	uv_timer_start(&t, burst_from_timer, 10, 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	pthread_join(th, NULL);
	uv_close((uv_handle_t *)&done, NULL);
	uv_close((uv_handle_t *)&t, NULL);
	assert_int_equal(uv_loop_close(&q.loop), 0);
	assert_int_equal(q.n, 4);
	/* Without the idle handle: about 3,000 ms, the reader's deadline. */
	assert_true(b.done_ms - b.sent_ms < 1000);
}

/* A local process that is no link: a length over LINK_MAX_MSG or
 * garbage closes its connection and is counted; a stalled half chunk
 * holds nothing up; the real peer's envelopes keep arriving. */
static void
test_link__ipc_hostile_connector_closed_others_unaffected(void **state)
{
	struct fixture *f = *state;
	static const unsigned char huge[] = "\x00\x20\x00\x01";
	static const unsigned char junk[] = "GET / HTTP/1.1\r\n\r\n";
	static const unsigned char bad[] = "\0\0\0\x08\0\0\0\x50" "abcd";
	const unsigned char *attacks[] = { huge, junk, bad };
	size_t lens[] = { sizeof(huge) - 1, sizeof(junk) - 1, sizeof(bad) - 1 };
	struct link_stats st;
	int want, stall, fd;

	assert_int_equal(link_new(&f->a, &f->loop, f->url_a, f->key, on_recv, f), 0);
	assert_int_equal(link_new(&f->b, &f->loop, f->url_b, f->key, on_recv, f), 0);
	assert_int_equal(link_peer_add(f->a, 2, f->url_b), 0);
	send_when_up(f, f->a, "msg 0");
	want = 1;
	assert_true(run_until(f, got, &want));

	stall = raw_unix(f->url_b, 0);
	assert_int_equal(send(stall, "\0\0", 2, 0), 2);
	for (int i = 0; i < 3; i++) {
		char m[32];
		int n = snprintf(m, sizeof(m), "msg %d", i + 1);

		fd = raw_unix(f->url_b, 0);
		assert_int_equal(send(fd, attacks[i], lens[i], 0),
				 (ssize_t)lens[i]);
		assert_true(run_until(f, closed_by_peer, &fd));
		close(fd);
		link_stats_get(f->b, &st);
		assert_int_equal(st.rx_forged, (unsigned)i + 1);
		assert_int_equal(link_send(f->a, 2, m, (size_t)n), 0);
		want = i + 2;
		assert_true(run_until(f, got, &want));
	}
	assert_int_equal(f->rx.bad, 0);
	assert_int_equal(link_peers_in(f->b), 2);	/* a and the stall */
	close(stall);
}

/* Parses a raw stream's bytes as chunks of frames; the frames whole so
 * far, or -1 when they are not a link's stream. */
struct chunks {
	unsigned char *buf;
	size_t len, cap;
	long frames;
};

static uint32_t
get32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return ntohl(v);
}

static int
chunks_take(struct chunks *c, int fd)
{
	ssize_t n;

	for (;;) {
		if (c->cap - c->len < 65536) {
			c->cap = c->cap * 2 + 65536;
			c->buf = realloc(c->buf, c->cap);
			assert_non_null(c->buf);
		}
		n = recv(fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
		if (n <= 0)
			break;
		c->len += (size_t)n;
	}
	while (c->len >= 4) {
		uint32_t cl = get32(c->buf), off = 0;

		if (c->len - 4 < cl)
			break;
		while (off < cl) {
			uint32_t fl = get32(c->buf + 4 + off);

			if (cl - off < 4 || cl - off - 4 < fl)
				return -1;
			off += 4 + fl;
			c->frames++;
		}
		memmove(c->buf, c->buf + 4 + cl, c->len - 4 - cl);
		c->len -= 4 + cl;
	}
	return 0;
}

struct drainer {
	int fd;
	struct chunks *c;
	long want;
};

static int
drained(struct fixture *f, void *arg)
{
	struct drainer *d = arg;

	(void)f;
	assert_int_equal(chunks_take(d->c, d->fd), 0);
	return d->c->frames >= d->want;
}

/* A peer that is up but reads nothing: LINK_BUF_BYTES pending, then
 * -EAGAIN; gathered envelopes refused at the end of their turn are
 * counted; what went is whole chunks, in order, once it reads. */
static void
test_link__ipc_queue_full_refuses_and_counts(void **state)
{
	struct fixture *f = *state;
	static unsigned char big[8192];
	struct chunks c = { 0 };
	struct drainer d = { .c = &c };
	static unsigned char max[65536];
	unsigned long long dropped_before;
	struct link_stats st;
	long ok = 0;
	int lfd, rc = 0;

	lfd = raw_unix(f->url_b, 1);
	assert_int_equal(link_new(&f->a, &f->loop, f->url_a, f->key, on_recv, f), 0);
	assert_int_equal(link_peer_add(f->a, 2, f->url_b), 0);
	/* One turn: the first goes at once, the rest gather in chunks
	 * written as they fill, until the bound refuses one. */
	for (int i = 0; i < 4000 && (rc = link_send(f->a, 2, big,
						      sizeof(big))) == 0; i++)
		ok++;
	assert_int_equal(rc, -EAGAIN);
	link_stats_get(f->a, &st);
	assert_true(st.tx_dropped > 0);
	/* Refused within one chunk of the bound, not before. */
	assert_true((ok - (long)st.tx_dropped) * (long)sizeof(big) >=
		    LINK_BUF_BYTES - 2 * 65536);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	/* A new turn, still full: refused at once (a chunk larger than
	 * the one that did not fit), and not counted: the caller knows. */
	assert_int_equal(link_send(f->a, 2, max, sizeof(max)), -EAGAIN);
	dropped_before = st.tx_dropped;
	link_stats_get(f->a, &st);
	assert_int_equal(st.tx_dropped, dropped_before);

	d.fd = accept(lfd, NULL, NULL);
	assert_true(d.fd >= 0);
	d.want = ok - (long)st.tx_dropped;
	assert_true(run_until(f, drained, &d));
	assert_int_equal(c.frames, d.want);
	assert_int_equal(c.len, 0);
	close(d.fd);
	close(lfd);
	free(c.buf);
}

/* A second link on a live endpoint fails; a stale file (its process
 * died) is replaced; a file that is no socket is left alone. */
static void
test_link__ipc_bind_live_stale_and_foreign(void **state)
{
	struct fixture *f = *state;
	struct link *dup = NULL;
	char path[256];
	int one = 1;
	FILE *fp;

	assert_int_equal(link_new(&f->b, &f->loop, f->url_b, f->key, on_recv, f), 0);
	assert_int_equal(link_new(&dup, &f->loop, f->url_b, f->key, on_recv, f),
			 -EADDRINUSE);
	assert_null(dup);
	run_for(f, 20);
	assert_int_equal(link_peers_in(f->b), 0);	/* the probe closed */
	/* Closed, the file stays (as nanomsg's did): stale now. */
	link_free(f->b);
	f->b = NULL;
	assert_int_equal(access(f->url_b + 6, F_OK), 0);
	assert_int_equal(link_new(&f->b, &f->loop, f->url_b, f->key, on_recv, f), 0);
	assert_int_equal(link_new(&f->a, &f->loop, f->url_a, f->key, on_recv, f), 0);
	assert_int_equal(link_peer_add(f->a, 2, f->url_b), 0);
	send_when_up(f, f->a, "msg 0");
	assert_true(run_until(f, got, &one));

	snprintf(path, sizeof(path), "%s/c", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fclose(fp);
	snprintf(path, sizeof(path), "ipc://%s/c", f->dir);
	assert_int_equal(link_new(&dup, &f->loop, path, f->key, on_recv, f),
			 -EADDRINUSE);
	snprintf(path, sizeof(path), "%s/c", f->dir);
	assert_int_equal(access(path, F_OK), 0);
	unlink(path);
}

/* What a turn gathered goes at link_free (a stopping edge's notices):
 * nothing runs the loop for it afterwards. */
static void
test_link__ipc_free_sends_what_the_turn_gathered(void **state)
{
	struct fixture *f = *state;
	int want = 100;
	char m[32];

	assert_int_equal(link_new(&f->a, &f->loop, f->url_a, f->key, on_recv, f), 0);
	assert_int_equal(link_new(&f->b, &f->loop, f->url_b, f->key, on_recv, f), 0);
	assert_int_equal(link_peer_add(f->a, 2, f->url_b), 0);
	for (int i = 0; i < want; i++) {
		int n = snprintf(m, sizeof(m), "msg %d", i);

		if (i == 0)
			send_when_up(f, f->a, m);
		else
			assert_int_equal(link_send(f->a, 2, m, (size_t)n), 0);
	}
	link_free(f->a);
	f->a = NULL;
	assert_true(run_until(f, got, &want));
	assert_int_equal(f->rx.bad, 0);
}

/* ---- struct link_poll on inproc sockets */

struct drain {
	struct link_poll *p;
	int n, in_wake, max_wake;
	int free_at;		/* link_poll_free after this many (0: never) */
	int want;		/* drain_run returns once this many came */
	int rep;		/* answer on this raw REP socket (-1: no) */
	int ctrl_seen;
};

static void
drain_cb(void *arg, struct link_msg *m)
{
	struct drain *d = arg;

	d->n++;
	d->in_wake++;
	if (d->in_wake > d->max_wake)
		d->max_wake = d->in_wake;
	d->ctrl_seen += m->ctrl != NULL;
	if (d->rep >= 0) {
		/* Keep body and header: the reply is sent under the header,
		 * which nanomsg then owns; the body is freed here. */
		struct nn_iovec iov = { "pong", 4 };
		struct nn_msghdr mh = { &iov, 1, &m->ctrl, NN_MSG };
		void *body = m->body;

		m->body = NULL;
		assert_int_equal(m->len, 4);
		assert_memory_equal(body, "ping", 4);
		nn_freemsg(body);
		assert_int_equal(nn_sendmsg(d->rep, &mh, NN_DONTWAIT), 4);
		m->ctrl = NULL;
	}
	if (d->n == d->free_at) {
		link_poll_free(d->p);
		d->p = NULL;
	}
}

static void
tick(uv_timer_t *t)
{
	(void)t;	/* only ends a uv_run(UV_RUN_ONCE) that saw nothing */
}

/* Before each poll phase of the loop: a new wake-up starts. */
static void
new_turn(uv_prepare_t *h)
{
	((struct drain *)h->data)->in_wake = 0;
}

/* Runs loop turns until d has want messages or 5 s pass, and notes the
 * largest batch one turn delivered. */
static void
drain_run(uv_loop_t *loop, struct drain *d)
{
	uv_prepare_t turn;
	uv_timer_t t;
	uint64_t until;

	uv_prepare_init(loop, &turn);
	turn.data = d;
	uv_prepare_start(&turn, new_turn);
	uv_timer_init(loop, &t);
	uv_update_time(loop);
	until = uv_now(loop) + 5000;
	while (d->n < d->want && uv_now(loop) < until) {
		uv_timer_start(&t, tick, 100, 0);
		uv_run(loop, UV_RUN_ONCE);
	}
	uv_close((uv_handle_t *)&t, NULL);
	uv_close((uv_handle_t *)&turn, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
}

/* A PUSH/PULL pair over inproc with n messages already queued at the
 * PULL (inproc hands them over in nn_send), drained into d. */
static void
pair_open(struct fixture *f, struct drain *d, const char *url, int n,
	  int *push, int *pull)
{
	int ms = 5000;

	*pull = nn_socket(AF_SP, NN_PULL);
	*push = nn_socket(AF_SP, NN_PUSH);
	assert_true(*pull >= 0 && *push >= 0);
	assert_true(nn_bind(*pull, url) >= 0);
	assert_true(nn_connect(*push, url) >= 0);
	assert_int_equal(nn_setsockopt(*push, NN_SOL_SOCKET, NN_SNDTIMEO, &ms,
				       sizeof(ms)), 0);
	for (int i = 0; i < n; i++)
		assert_int_equal(nn_send(*push, "m", 1, 0), 1);
	assert_int_equal(link_poll_new(&d->p, &f->loop, *pull, 0, drain_cb, d,
				       "test"), 0);
}

static void
pair_close(struct drain *d, int push, int pull)
{
	link_poll_free(d->p);	/* before its socket closes */
	nn_close(push);
	nn_close(pull);
}

static void
test_link__poll_batch_bounded_per_wakeup(void **state)
{
	struct fixture *f = *state;
	struct drain d = { NULL, 0, 0, 0, 0, LINK_BATCH + 44, -1, 0 };
	int push, pull;

	pair_open(f, &d, "inproc://batch", LINK_BATCH + 44, &push, &pull);
	drain_run(&f->loop, &d);
	assert_int_equal(d.n, LINK_BATCH + 44);
	assert_int_equal(d.max_wake, LINK_BATCH);
	assert_int_equal(d.ctrl_seen, 0);
	pair_close(&d, push, pull);
}

static void
test_link__poll_freed_from_callback_stops(void **state)
{
	struct fixture *f = *state;
	struct drain d = { NULL, 0, 0, 0, 3, 3, -1, 0 };
	int push, pull;

	pair_open(f, &d, "inproc://free", 10, &push, &pull);
	drain_run(&f->loop, &d);
	/* The other 7 were queued, in the same batch: none came. */
	uv_run(&f->loop, UV_RUN_NOWAIT);
	assert_int_equal(d.n, 3);
	assert_null(d.p);
	pair_close(&d, push, pull);
}

static void
test_link__poll_ctrl_kept_for_the_reply(void **state)
{
	struct fixture *f = *state;
	struct drain d = { NULL, 0, 0, 0, 0, 1, -1, 0 };
	int req = nn_socket(AF_SP, NN_REQ), ms = 5000;
	char *reply = NULL;

	d.rep = nn_socket(AF_SP_RAW, NN_REP);
	assert_true(req >= 0 && d.rep >= 0);
	assert_true(nn_bind(d.rep, "inproc://rr") >= 0);
	assert_true(nn_connect(req, "inproc://rr") >= 0);
	assert_int_equal(nn_setsockopt(req, NN_SOL_SOCKET, NN_RCVTIMEO, &ms,
				       sizeof(ms)), 0);
	assert_int_equal(link_poll_new(&d.p, &f->loop, d.rep, LINK_POLL_CTRL,
				       drain_cb, &d, "test"), 0);
	assert_int_equal(nn_send(req, "ping", 4, 0), 4);
	drain_run(&f->loop, &d);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.ctrl_seen, 1);
	/* Blocks at most NN_RCVTIMEO: the reply was sent in the callback. */
	assert_int_equal(nn_recv(req, &reply, NN_MSG, 0), 4);
	assert_memory_equal(reply, "pong", 4);
	nn_freemsg(reply);
	link_poll_free(d.p);
	nn_close(req);
	nn_close(d.rep);
}

/* A stream test again over TCP, signed. */
#define TCP_RUN(fn) { #fn "_tcp", fn, setup_tcp, teardown, NULL }

/* The stream reader alone on hostile length words: what each row's
 * bytes give at a max of 16, and what is kept for the next read. */
static void
test_link__reader_hostile_lengths(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		int rc;		/* of the first link_ux_rd_next */
		size_t n;	/* its chunk's length, or the announced one */
		size_t kept;	/* after the chunks and link_ux_rd_keep */
	} rows[] = {
		{ "", 0, 0, 0, 0 },
		{ "\0\0\0", 3, 0, 0, 3 },			/* half a word */
		{ "\0\0\0\0", 4, 1, 0, 0 },			/* empty chunk */
		{ "\0\0\0\x10", 4, 0, 0, 4 },			/* the max, to come */
		{ "\0\0\0\x11", 4, -EMSGSIZE, 17, 4 },		/* one over */
		{ "\xff\xff\xff\xff", 4, -EMSGSIZE, 0xffffffffu, 4 },
		{ "\0\0\0\2ab\0\0", 8, 1, 2, 2 },		/* one and a half */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct link_ux_rd r;
		const unsigned char *chunk;
		size_t n = 0;
		int rc;

		assert_int_equal(link_ux_rd_init(&r), 0);
		memcpy(r.buf, rows[i].in, rows[i].len);
		r.len = rows[i].len;
		rc = link_ux_rd_next(&r, 16, &chunk, &n);
		if (rc != rows[i].rc || n != rows[i].n)
			fail_msg("row %zu: %d, %zu", i, rc, n);
		while (rc > 0)
			rc = link_ux_rd_next(&r, 16, &chunk, &n);
		if (rc == 0) {
			assert_int_equal(link_ux_rd_keep(&r), 0);
			assert_int_equal(r.len, rows[i].kept);
			assert_true(r.cap > r.len);	/* room to read */
		}
		link_ux_rd_fini(&r);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_link__burst_arrives_in_order,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_link__errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link__a_turn_is_one_message_idle_is_one_each, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link__a_cut_frame_is_dropped_and_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link__ipc_peer_started_later_is_reached,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_link__ipc_restarted_peer_is_reached_again,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_link__ipc_many_sizes_in_order_to_a_slow_reader,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_link__ipc_gathered_from_a_timer_goes_in_that_turn,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_link__ipc_hostile_connector_closed_others_unaffected,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_link__ipc_queue_full_refuses_and_counts,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_link__ipc_bind_live_stale_and_foreign,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_link__ipc_free_sends_what_the_turn_gathered,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_link__tcp_burst_signed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_link__tcp_needs_a_key,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_link__tcp_drops_forged_replayed_stale,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_link__tcp_untrusted_connections_bounded,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_link__tcp_url_checked,
						setup, teardown),
		TCP_RUN(test_link__ipc_peer_started_later_is_reached),
		TCP_RUN(test_link__ipc_many_sizes_in_order_to_a_slow_reader),
		TCP_RUN(test_link__ipc_gathered_from_a_timer_goes_in_that_turn),
		TCP_RUN(test_link__ipc_free_sends_what_the_turn_gathered),
		TCP_RUN(test_link__a_turn_is_one_message_idle_is_one_each),
		TCP_RUN(test_link__live_silent_peer_dies_and_comes_back),
		TCP_RUN(test_link__live_heartbeats_only_when_idle),
		cmocka_unit_test_setup_teardown(test_link__live_silent_peer_dies_and_comes_back,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_link__live_heartbeats_only_when_idle,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_link__live_own_stall_kills_nobody,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_link__poll_batch_bounded_per_wakeup,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_link__poll_freed_from_callback_stops,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_link__poll_ctrl_kept_for_the_reply,
						setup, teardown),
		cmocka_unit_test(test_link__reader_hostile_lengths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
