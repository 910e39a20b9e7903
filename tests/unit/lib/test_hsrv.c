/*
 * test_hsrv.c - the bounded HTTP GET server of lib/hsrv.c on a real
 * libuv loop and real loopback sockets: a client thread with blocking
 * sockets plays each exchange while the loop serves, then tells the
 * loop to stop.  Covers what the integration test cannot aim at: a
 * head split at every byte (the blank line straddling two reads), HEAD
 * without a body, a query string, every refusal's status, a head of
 * exactly max_head bytes against one byte more, and hsrv_free with
 * connections open (the loop must end with nothing left).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/hsrv.h"

#define MAX_HEAD 256

struct fixture {
	uv_loop_t loop;
	uv_async_t done;
	struct hsrv *s;
	int port;
	int calls;		/* of the handler */
	char idle_fd_open;	/* a connection left open for hsrv_free */
	int idle_fd;
};

static const char *
handler(void *arg, const char *query, struct hsrv_buf *b)
{
	struct fixture *f = arg;

	(void)query;
	f->calls++;
	hsrv_printf(b, "hello %d\n", 42);
	return "text/plain";
}

/* A free loopback port: bound, read back, released. */
static int
free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static int
dial(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Sends req in pieces of step bytes (a pause between them so each is
 * its own read), then reads the answer until the server closes. */
static void
exchange(int port, const char *req, size_t len, size_t step, char *out,
	 size_t cap)
{
	struct timespec pause = { 0, 2 * 1000 * 1000 };
	size_t o = 0;
	ssize_t n;
	int fd = dial(port);

	assert_true(fd >= 0);
	for (size_t i = 0; i < len; i += step) {
		size_t k = len - i < step ? len - i : step;

		assert_int_equal(send(fd, req + i, k, MSG_NOSIGNAL), (ssize_t)k);
		if (step < len)
			nanosleep(&pause, NULL);
	}
	while (o + 1 < cap && (n = recv(fd, out + o, cap - 1 - o, 0)) > 0)
		o += (size_t)n;
	out[o] = '\0';
	close(fd);
}

static struct fixture *fx;

static void *
client(void *arg)
{
	struct fixture *f = arg;
	char got[2048], big[MAX_HEAD + 64];
	static const char get[] = "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n";
	size_t n;

	/* every split of the head, the blank line across two reads */
	for (size_t step = 1; step <= sizeof(get) - 1; step += step < 8 ? 1 : 9) {
		exchange(f->port, get, sizeof(get) - 1, step, got, sizeof(got));
		if (strncmp(got, "HTTP/1.1 200 OK\r\n", 17) != 0 ||
		    !strstr(got, "Content-Length: 9\r\n") ||
		    !strstr(got, "\r\n\r\nhello 42\n"))
			fprintf(stderr, "step %zu: %s\n", step, got), abort();
	}
	/* HEAD: the headers of a GET, no body */
	exchange(f->port, "HEAD /metrics HTTP/1.0\r\n\r\n", 26, 26, got,
		 sizeof(got));
	if (!strstr(got, "Content-Length: 9\r\n") || strstr(got, "hello"))
		fprintf(stderr, "HEAD: %s\n", got), abort();
	/* refusals */
	static const struct { const char *req; const char *status; } bad[] = {
		{ "POST /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 405 " },
		{ "GET /other HTTP/1.1\r\n\r\n", "HTTP/1.1 404 " },
		{ "GET /metricsx HTTP/1.1\r\n\r\n", "HTTP/1.1 404 " },
		{ "GET metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 400 " },
		{ "GET /metrics HTTP/2.0\r\n\r\n", "HTTP/1.1 400 " },
		{ "GET /metrics\r\n\r\n", "HTTP/1.1 400 " },
		{ "\r\n\r\n", "HTTP/1.1 400 " },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		exchange(f->port, bad[i].req, strlen(bad[i].req), 64, got,
			 sizeof(got));
		if (strncmp(got, bad[i].status, strlen(bad[i].status)) != 0)
			fprintf(stderr, "%s: %s\n", bad[i].req, got), abort();
	}
	/* a head of exactly MAX_HEAD bytes passes, one more is 431 */
	for (int extra = 0; extra <= 1; extra++) {
		n = (size_t)snprintf(big, sizeof(big), "GET /metrics HTTP/1.1\r\nX: ");
		memset(big + n, 'a', MAX_HEAD + (size_t)extra - n - 4);
		memcpy(big + MAX_HEAD + extra - 4, "\r\n\r\n", 4);
		exchange(f->port, big, MAX_HEAD + (size_t)extra, 100, got,
			 sizeof(got));
		if (strncmp(got, extra ? "HTTP/1.1 431 " : "HTTP/1.1 200 ", 13) != 0)
			fprintf(stderr, "head of %d: %s\n", MAX_HEAD + extra,
				got), abort();
	}
	/* one connection stays open: hsrv_free must close it */
	f->idle_fd = dial(f->port);
	f->idle_fd_open = f->idle_fd >= 0;
	uv_async_send(&f->done);
	return NULL;
}

static void
on_done(uv_async_t *a)
{
	hsrv_free(fx->s);
	fx->s = NULL;
	uv_close((uv_handle_t *)a, NULL);
}

static void
test_hsrv__exchanges_on_a_real_loop(void **state)
{
	struct fixture f = { 0 };
	struct hsrv_limits lim = { 4, MAX_HEAD, 5000 };
	char addr[32];
	pthread_t t;

	(void)state;
	fx = &f;
	assert_int_equal(uv_loop_init(&f.loop), 0);
	assert_int_equal(uv_async_init(&f.loop, &f.done, on_done), 0);
	f.port = free_port();
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", f.port);
	assert_int_equal(hsrv_new(&f.s, &f.loop, addr, &lim), 0);
	assert_int_equal(hsrv_route(f.s, "/metrics", handler, &f), 0);
	assert_int_equal(pthread_create(&t, NULL, client, &f), 0);
	uv_run(&f.loop, UV_RUN_DEFAULT);
	pthread_join(t, NULL);
	/* the loop ended: the listener and every connection were closed
	 * and freed, the idle one included */
	assert_true(f.idle_fd_open);
	{
		char c;

		/* closed, or reset when still in the listener's backlog */
		assert_true(recv(f.idle_fd, &c, 1, 0) <= 0);
		close(f.idle_fd);
	}
	assert_int_equal(uv_loop_close(&f.loop), 0);
	assert_true(f.calls >= 10);
}

static void
test_hsrv__bad_addresses(void **state)
{
	struct hsrv_limits lim = HSRV_LIMITS_DEFAULT;
	uv_loop_t loop;
	struct hsrv *s = NULL;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(hsrv_new(&s, &loop, "localhost:9000", &lim), -EINVAL);
	assert_int_equal(hsrv_new(&s, &loop, "127.0.0.1", &lim), -EINVAL);
	assert_int_equal(hsrv_new(&s, &loop, "[::1", &lim), -EINVAL);
	lim.max_conns = 0;
	assert_int_equal(hsrv_new(&s, &loop, "127.0.0.1:9000", &lim), -EINVAL);
	assert_null(s);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* The head parser alone on hostile heads: each row's status, and for a
 * request taken, its path and query. */
static void
test_hsrv__head_parse_table(void **state)
{
	static const struct {
		const char *head;
		size_t max_head;
		int rc;
		const char *path, *query;
	} rows[] = {
		{ "GET /metrics HTTP/1.1\r\n\r\n", 64, 0, "/metrics", "" },
		{ "HEAD /m?a=1?b HTTP/1.0\r\nX: y\r\n\r\n", 64, 0, "/m", "a=1?b" },
		{ "GET / HTTP/1.1\r\n\r", 64, -EAGAIN, NULL, NULL },
		{ "GET / HTTP/1.1\n\n", 64, -EAGAIN, NULL, NULL },
		{ "POST / HTTP/1.1\r\n\r\n", 64, 405, NULL, NULL },
		{ "GET / HTTP/1.1 \r\n\r\n", 64, 400, NULL, NULL },
		{ "GET  / HTTP/1.1\r\n\r\n", 64, 400, NULL, NULL },
		{ "GET x HTTP/1.1\r\n\r\n", 64, 400, NULL, NULL },
		{ "GET / HTTP/2.0\r\n\r\n", 64, 400, NULL, NULL },
		{ "\r\n\r\n", 64, 400, NULL, NULL },
		{ "GET /\r HTTP/1.1\r\n\r\n", 64, 400, NULL, NULL },
		/* 18 bytes and 19: a max_head of 17 is one short */
		{ "GET / HTTP/1.1\r\n\r\n", 17, 431, NULL, NULL },
		{ "GET /x HTTP/1.1\r\n\r\n", 19, 0, "/x", "" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char head[128] = "";
		size_t len = strlen(rows[i].head);
		struct hsrv_req req;
		int rc;

		if (len > rows[i].max_head + 1)
			len = rows[i].max_head + 1;
		memcpy(head, rows[i].head, len);
		rc = hsrv_head_parse(head, len, 0, rows[i].max_head, &req);
		if (rc != rows[i].rc)
			fail_msg("row %zu: %d, not %d", i, rc, rows[i].rc);
		if (rc != 0)
			continue;
		assert_int_equal(req.path_len, strlen(rows[i].path));
		assert_memory_equal(req.path, rows[i].path, req.path_len);
		assert_string_equal(req.query, rows[i].query);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hsrv__exchanges_on_a_real_loop),
		cmocka_unit_test(test_hsrv__bad_addresses),
		cmocka_unit_test(test_hsrv__head_parse_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
