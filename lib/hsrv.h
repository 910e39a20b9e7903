/*
 * hsrv.h - a small HTTP/1.x GET server on a process's libuv loop.
 *
 * Each sipmesh process serves its Prometheus metrics through it, and a
 * later local control socket can mount its own paths on the same
 * server.  It is not a web server: one request per connection (the
 * answer says "Connection: close"), no request body, handlers that
 * render their whole answer at once on the loop.  The network is
 * hostile, so everything is bounded: connections at once (past it a
 * new one is closed at accept), bytes of a request head (past it: 431
 * and close), and the whole life of a connection (a slow sender or a
 * reader that never drains the answer is closed at the deadline).
 * Nothing blocks the loop: reads and writes are libuv's.
 */
#ifndef SM_HSRV_H
#define SM_HSRV_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* An answer's body, grown as handlers print into it. */
struct hsrv_buf {
	char *s;		/* malloc'd, NUL-terminated; NULL while empty */
	size_t len, cap;
	int oom;		/* an append failed: the answer is a 500 */
};

/* Appends like printf; on failure sets b->oom and leaves b as it was. */
void hsrv_printf(struct hsrv_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * A path's handler: writes the body of a 200 into body and returns its
 * Content-Type (a static string), or NULL for a 500, or HSRV_BAD for a
 * 400 (a query it refuses; body, if any, says why).  query is what
 * followed '?' in the request line, undecoded ("" when none).  Runs on
 * the loop while the connection waits; it must not block.
 */
typedef const char *(*hsrv_handler_cb)(void *arg, const char *query,
				       struct hsrv_buf *body);
extern const char HSRV_BAD[];

struct hsrv_limits {
	int max_conns;		/* connections at once */
	size_t max_head;	/* bytes of request line and headers */
	uint64_t timeout_ms;	/* accept to answer written */
};

/* What a process serving metrics needs: a scraper or two at a time. */
#define HSRV_LIMITS_DEFAULT { 16, 4096, 5000 }

#define HSRV_MAX_ROUTES 8

/* Its counters: field, metric (after the process's prefix, lib/prom.h),
 * HELP on a family's first row. */
#define HSRV_STATS(X) \
	X(requests, "http_requests_total{result=\"ok\"}", \
	  "Requests to this process's HTTP server, by result") \
	X(bad, "http_requests_total{result=\"refused\"}", "") \
		/* 400, 404, 405, 431 answered */ \
	X(timeouts, "http_requests_total{result=\"timeout\"}", "") \
		/* closed at the deadline */ \
	X(refused, "http_connections_refused_total", \
	  "HTTP connections closed at accept: max connections reached")

struct hsrv_stats {
#define HSRV_STAT_FIELD(f, metric, help) uint64_t f;
	HSRV_STATS(HSRV_STAT_FIELD)
#undef HSRV_STAT_FIELD
};
struct hsrv;

/*
 * Listens on addr ("ip:port", "[v6]:port": numeric, nothing is
 * resolved; or an absolute path: a unix socket, made mode 0600 after
 * removing a stale one) on loop with the limits lim (copied).  Writes
 * *out on success only.  Returns 0, -EINVAL for a bad address,
 * -ENOMEM, or libuv's negative errno of bind/listen (-EADDRINUSE ...).
 */
int hsrv_new(struct hsrv **out, uv_loop_t *loop, const char *addr,
	     const struct hsrv_limits *lim);

/*
 * Serves GET (and HEAD) of path (exact match; a query string is
 * ignored) with cb(arg, ...).  path is borrowed: a static string.
 * Returns 0 or -ENOSPC past HSRV_MAX_ROUTES.
 */
int hsrv_route(struct hsrv *s, const char *path, hsrv_handler_cb cb,
	       void *arg);

/* A request head as hsrv_head_parse reads it. */
struct hsrv_req {
	const char *path;	/* the target up to '?': path_len bytes */
	size_t path_len;
	const char *query;	/* what followed '?', NUL-terminated; "" */
	int head_only;		/* HEAD: no body in the answer */
};

/*
 * The request head in head[0 .. len), of which an earlier call saw
 * head[0 .. seen) (the blank line may straddle two reads); head has
 * room for max_head + 1 bytes, one more than a head may take.  Returns
 * 0 with *req, slices of head (the target is NUL-terminated in
 * place), -EAGAIN while the head is incomplete, or the status to
 * answer: 400, 405, or 431 past max_head.  Pure: the server's reads
 * and tests/fuzz/fuzz_hsrv_head.c call it.
 */
int hsrv_head_parse(char *head, size_t len, size_t seen, size_t max_head,
		    struct hsrv_req *req);

/* Its counters (they also belong in the process's metrics). */
const struct hsrv_stats *hsrv_stats(const struct hsrv *s);

/*
 * Closes the listener and every connection; the memory goes when the
 * loop has run their close callbacks.  Accepts NULL.  No handler is
 * called after it.
 */
void hsrv_free(struct hsrv *s);

#endif
