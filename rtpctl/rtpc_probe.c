/*
 * rtpc_probe.c - rtpc-probe: sends ng commands through rtpctl with the
 * client library and prints the answers.  A test driver (the
 * integration tests cannot speak nanomsg from Node) and a tool.
 *
 *   rtpc-probe -u URL [-t MS] DICT      one command, e.g.
 *                                       'd7:command4:pinge'; prints the
 *                                       reply dict, exit 0, or the
 *                                       error on stderr, exit 1
 *   rtpc-probe -u URL -s                a stream: each stdin line is
 *                                       "TAG TIMEOUT_MS HEXDICT"; each
 *                                       answer is printed as one line
 *                                       "TAG STATUS INSTANCE HEXREPLY REASON"
 *                                       (INSTANCE, HEXREPLY "-" when
 *                                       absent), in the order answers
 *                                       come; exits at end of input once
 *                                       every answer is printed.
 *
 * A command refused with -EAGAIN (rtpctl not connected yet) is retried
 * every 20 ms for up to its timeout, so a test need not wait for the
 * nanomsg connection by itself.
 */
#include "rtpctl/rtpc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct probe_cmd {
	struct probe *pr;
	uv_timer_t retry;
	char tag[64];
	int timeout_ms;
	uint64_t deadline;
	size_t len;
	char dict[];
};

struct probe {
	uv_loop_t *loop;
	struct rtpc_client *cl;
	uv_pipe_t in;
	int stream;
	int open;		/* commands not answered */
	int eof;
	int failed;
	char line[1 << 17];
	size_t line_len;
};

static void
probe_hex(const char *s, size_t n)
{
	static const char hx[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		putchar(hx[(unsigned char)s[i] >> 4]);
		putchar(hx[(unsigned char)s[i] & 15]);
	}
}

static void
probe_maybe_done(struct probe *pr)
{
	if (pr->eof && pr->open == 0 && pr->cl) {
		rtpc_client_free(pr->cl);
		pr->cl = NULL;
		if (pr->stream)
			uv_close((uv_handle_t *)&pr->in, NULL);
	}
}

static void
probe_on_closed(uv_handle_t *h)
{
	free(h->data);
}

static void
probe_answer(void *arg, const struct rtpc_result *r)
{
	struct probe_cmd *c = arg;
	struct probe *pr = c->pr;

	if (pr->stream) {
		printf("%s %d %s ", c->tag, r->status,
		       r->instance[0] ? r->instance : "-");
		if (r->reply)
			probe_hex(r->reply, r->reply_len);
		else
			putchar('-');
		printf(" %s\n", r->reason ? r->reason : "");
	} else if (r->status == 0) {
		fwrite(r->reply, 1, r->reply_len, stdout);
		printf("\n");
	} else {
		fprintf(stderr, "rtpc-probe: %s (%s)%s%.*s\n",
			r->reason ? r->reason : "", strerror(-r->status),
			r->reply ? ": " : "", r->reply ? (int)r->reply_len : 0,
			r->reply ? r->reply : "");
		pr->failed = 1;
	}
	fflush(stdout);
	pr->open--;
	uv_close((uv_handle_t *)&c->retry, probe_on_closed);
	probe_maybe_done(pr);
}

static void probe_send(struct probe_cmd *c);

static void
probe_on_retry(uv_timer_t *t)
{
	probe_send(t->data);
}

static void
probe_send(struct probe_cmd *c)
{
	struct probe *pr = c->pr;
	uint64_t now = uv_now(pr->loop);
	int rc = rtpc_call(pr->cl, c->dict, c->len, c->timeout_ms,
			   probe_answer, c);

	if (rc == -EAGAIN && now < c->deadline) {
		uv_timer_start(&c->retry, probe_on_retry, 20, 0);
		return;
	}
	if (rc < 0) {
		struct rtpc_result r = { rc, "rtpc_call refused", NULL, 0, "" };

		probe_answer(c, &r);
	}
}

static void
probe_start(struct probe *pr, const char *tag, int timeout_ms,
	    const char *dict, size_t len)
{
	struct probe_cmd *c = calloc(1, sizeof(*c) + len);

	if (c == NULL)
		abort();
	c->pr = pr;
	snprintf(c->tag, sizeof(c->tag), "%s", tag);
	c->timeout_ms = timeout_ms;
	c->deadline = uv_now(pr->loop) + (uint64_t)timeout_ms;
	memcpy(c->dict, dict, len);
	c->len = len;
	uv_timer_init(pr->loop, &c->retry);
	c->retry.data = c;
	pr->open++;
	probe_send(c);
}

static int
probe_unhex(const char *h, size_t n, char *out)
{
	if (n % 2)
		return -1;
	for (size_t i = 0; i < n; i += 2) {
		unsigned v;

		if (sscanf(h + i, "%2x", &v) != 1)
			return -1;
		out[i / 2] = (char)v;
	}
	return (int)(n / 2);
}

/* "TAG TIMEOUT HEX" */
static void
probe_line(struct probe *pr, char *s)
{
	char *tag = strtok(s, " "), *to = strtok(NULL, " "),
	     *hex = strtok(NULL, " \r");
	int n;

	if (!tag || !to || !hex || (n = probe_unhex(hex, strlen(hex), hex)) <= 0) {
		printf("%s -22 - - bad input line\n", tag ? tag : "?");
		fflush(stdout);
		return;
	}
	probe_start(pr, tag, atoi(to), hex, (size_t)n);
}

static void
probe_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct probe *pr = h->data;

	(void)hint;
	*b = uv_buf_init(pr->line + pr->line_len,
			 (unsigned)(sizeof(pr->line) - 1 - pr->line_len));
}

static void
probe_on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct probe *pr = st->data;
	char *nl;

	(void)b;
	if (n < 0) {
		uv_read_stop(st);
		pr->eof = 1;
		probe_maybe_done(pr);
		return;
	}
	pr->line_len += (size_t)n;
	while ((nl = memchr(pr->line, '\n', pr->line_len)) != NULL) {
		size_t used = (size_t)(nl - pr->line) + 1;

		*nl = '\0';
		probe_line(pr, pr->line);
		memmove(pr->line, pr->line + used, pr->line_len - used);
		pr->line_len -= used;
	}
	if (pr->line_len == sizeof(pr->line) - 1)
		pr->line_len = 0;	/* a line too long: drop it */
}

int
main(int argc, char **argv)
{
	static struct probe pr;
	const char *url = NULL;
	int opt, timeout = 2000, rc;
	uv_loop_t loop;

	while ((opt = getopt(argc, argv, "u:t:s")) != -1) {
		switch (opt) {
		case 'u':
			url = optarg;
			break;
		case 't':
			timeout = atoi(optarg);
			break;
		case 's':
			pr.stream = 1;
			break;
		default:
			goto usage;
		}
	}
	if (url == NULL || (pr.stream ? optind != argc : optind != argc - 1))
		goto usage;
	uv_loop_init(&loop);
	pr.loop = &loop;
	rc = rtpc_client_new(&pr.cl, &loop, url);
	if (rc < 0) {
		fprintf(stderr, "rtpc-probe: %s: %s\n", url, strerror(-rc));
		return 2;
	}
	if (pr.stream) {
		uv_pipe_init(&loop, &pr.in, 0);
		pr.in.data = &pr;
		uv_pipe_open(&pr.in, 0);
		uv_read_start((uv_stream_t *)&pr.in, probe_alloc, probe_on_read);
	} else {
		pr.eof = 1;
		probe_start(&pr, "1", timeout, argv[optind], strlen(argv[optind]));
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return pr.failed ? 1 : 0;
usage:
	fprintf(stderr, "usage: rtpc-probe -u URL [-t MS] DICT\n"
		"       rtpc-probe -u URL -s   (stdin: TAG TIMEOUT_MS HEXDICT)\n");
	return 2;
}
