/*
 * hsrv.c - the HTTP/1.x GET server of hsrv.h.
 *
 * A connection reads its request head into a buffer of max_head + 1
 * bytes (one more than allowed, to tell "too long" from "exactly
 * full"), looks for the blank line, answers from a route, writes the
 * answer in one uv_write and closes.  One timer per connection runs
 * from accept to the end: whatever a peer does slowly (send the head,
 * read the answer) ends there.  Cost per request: one scan of the head
 * and the handler's rendering; memory per connection: max_head bytes
 * and the answer.
 *
 * Lifetimes (libuv): a connection owns two handles, its socket and its
 * timer; it is freed when both close callbacks ran.  The server is
 * freed when its listener and every connection are gone, so
 * hsrv_free() may be called from anywhere, a handler's caller
 * included.
 */
#include "lib/hsrv.h"
#include "lib/cfg.h"
#include "lib/list.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HSRV_BACKLOG 64

struct hsrv_route {
	const char *path;
	size_t len;
	hsrv_handler_cb cb;
	void *arg;
};

/* A TCP or a unix socket: either is a stream to libuv. */
union hsrv_sock {
	uv_tcp_t tcp;
	uv_pipe_t pipe;
	uv_stream_t st;
	uv_handle_t h;
};

const char HSRV_BAD[] = "bad";

struct hsrv {
	uv_loop_t *loop;
	union hsrv_sock listener;
	int is_unix;
	struct hsrv_limits lim;
	struct hsrv_route routes[HSRV_MAX_ROUTES];
	int n_routes;
	struct list_node conns;
	int n_conns;		/* in conns, counted against max_conns */
	int handles;		/* listener + connections not yet freed */
	int closing;
	struct hsrv_stats st;
};

struct hsrv_conn {
	struct hsrv *s;
	struct list_node node;
	union hsrv_sock sock;
	uv_timer_t timer;
	uv_write_t wr;
	int handles;		/* of tcp and timer, still open */
	int closing;
	int answered;		/* no more reading */
	char *out;		/* the answer being written */
	size_t len;		/* bytes in head */
	char head[];		/* max_head + 1 */
};

void
hsrv_printf(struct hsrv_buf *b, const char *fmt, ...)
{
	va_list ap;
	size_t room = b->cap - b->len;
	int n;

	if (b->oom)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? room : 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = 1;
		return;
	}
	if ((size_t)n >= room) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap - b->len <= (size_t)n)
			cap *= 2;
		p = realloc(b->s, cap);
		if (p == NULL) {
			b->oom = 1;
			if (b->s)
				b->s[b->len] = '\0';
			return;
		}
		b->s = p;
		b->cap = cap;
		va_start(ap, fmt);
		vsnprintf(b->s + b->len, cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

static void
hsrv_maybe_free(struct hsrv *s)
{
	if (s->closing && s->handles == 0)
		free(s);
}

static void
hsrv_conn_closed_cb(uv_handle_t *h)
{
	struct hsrv_conn *c = h->data;
	struct hsrv *s = c->s;

	if (--c->handles > 0)
		return;
	free(c->out);
	free(c);
	s->handles--;
	hsrv_maybe_free(s);
}

static void
hsrv_conn_close(struct hsrv_conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	if (list_linked(&c->node)) {
		list_remove(&c->node);
		c->s->n_conns--;
	}
	uv_close((uv_handle_t *)&c->timer, hsrv_conn_closed_cb);
	uv_close(&c->sock.h, hsrv_conn_closed_cb);
}

static void
hsrv_timeout_cb(uv_timer_t *t)
{
	struct hsrv_conn *c = t->data;

	c->s->st.timeouts++;
	hsrv_conn_close(c);
}

static void
hsrv_written_cb(uv_write_t *w, int status)
{
	(void)status;	/* closed either way */
	hsrv_conn_close(w->data);
}

static const char *
hsrv_status_text(int code)
{
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	default: return "Internal Server Error";
	}
}

/*
 * Writes the answer and closes after it.  type NULL: a plain-text
 * error page naming code.  body is taken over (may be NULL); head_only
 * (HEAD) leaves it out but keeps its Content-Length.
 */
static void
hsrv_answer(struct hsrv_conn *c, int code, const char *type,
	    struct hsrv_buf *body, int head_only)
{
	struct hsrv_buf out = { 0 };
	uv_buf_t b;

	c->answered = 1;
	uv_read_stop(&c->sock.st);
	if (code == 200)
		c->s->st.requests++;
	else
		c->s->st.bad++;
	if (type == NULL) {
		free(body->s);
		*body = (struct hsrv_buf){ 0 };
		hsrv_printf(body, "%d %s\n", code, hsrv_status_text(code));
		type = "text/plain; charset=utf-8";
	}
	hsrv_printf(&out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
		    "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
		    code, hsrv_status_text(code), type, body->len,
		    code == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (!head_only && body->len)
		hsrv_printf(&out, "%.*s", (int)body->len, body->s);
	free(body->s);
	if (out.oom) {
		free(out.s);
		hsrv_conn_close(c);
		return;
	}
	c->out = out.s;
	c->wr.data = c;
	b = uv_buf_init(out.s, (unsigned)out.len);
	if (uv_write(&c->wr, &c->sock.st, &b, 1,
		     hsrv_written_cb) != 0)
		hsrv_conn_close(c);
}

int
hsrv_head_parse(char *head, size_t len, size_t seen, size_t max_head,
		struct hsrv_req *req)
{
	const char *end, *line_end, *sp1, *sp2;
	size_t from = seen > 3 ? seen - 3 : 0;

	/* The blank line may straddle two reads: look from 3 back. */
	end = memmem(head + from, len - from, "\r\n\r\n", 4);
	if (end == NULL || (size_t)(end - head) + 4 > max_head)
		return len > max_head ? 431 : -EAGAIN;
	line_end = memchr(head, '\r', (size_t)(end - head) + 1);
	sp1 = memchr(head, ' ', (size_t)(line_end - head));
	sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1)) : NULL;
	if (sp2 == NULL || sp1[1] != '/' ||
	    (size_t)(line_end - sp2 - 1) != 8 ||
	    memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return 400;
	req->head_only = sp1 - head == 4 && memcmp(head, "HEAD", 4) == 0;
	if (!req->head_only && !(sp1 - head == 3 && memcmp(head, "GET", 3) == 0))
		return 405;
	/* The head is ours: the target ends where the version starts. */
	head[sp2 - head] = '\0';
	req->path = sp1 + 1;
	req->path_len = strcspn(req->path, "?");
	req->query = req->path[req->path_len] == '?' ?
		     req->path + req->path_len + 1 : "";
	return 0;
}

/* The head is read (req): answer it. */
static void
hsrv_dispatch(struct hsrv_conn *c, const struct hsrv_req *req)
{
	struct hsrv *s = c->s;
	struct hsrv_buf body = { 0 };

	for (int i = 0; i < s->n_routes; i++) {
		const struct hsrv_route *r = &s->routes[i];
		const char *type;

		if (r->len != req->path_len ||
		    memcmp(r->path, req->path, req->path_len) != 0)
			continue;
		type = r->cb(r->arg, req->query, &body);
		if (type == HSRV_BAD)
			hsrv_answer(c, 400, body.len ? "text/plain; charset=utf-8" :
				    NULL, &body, req->head_only);
		else if (type == NULL || body.oom)
			hsrv_answer(c, 500, NULL, &body, req->head_only);
		else
			hsrv_answer(c, 200, type, &body, req->head_only);
		return;
	}
	hsrv_answer(c, 404, NULL, &body, req->head_only);
}

static void
hsrv_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct hsrv_conn *c = h->data;

	(void)hint;
	*buf = uv_buf_init(c->head + c->len,
			   (unsigned)(c->s->lim.max_head + 1 - c->len));
}

static void
hsrv_read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct hsrv_conn *c = st->data;
	struct hsrv_buf none = { 0 };
	struct hsrv_req req;
	size_t seen = c->len;
	int rc;

	(void)buf;
	if (n == 0 || c->answered)
		return;
	if (n < 0) {
		hsrv_conn_close(c);
		return;
	}
	c->len += (size_t)n;
	rc = hsrv_head_parse(c->head, c->len, seen, c->s->lim.max_head, &req);
	if (rc == 0)
		hsrv_dispatch(c, &req);
	else if (rc > 0)
		hsrv_answer(c, rc, NULL, &none, 0);
}

static void
hsrv_accept_cb(uv_stream_t *ls, int status)
{
	struct hsrv *s = ls->data;
	struct hsrv_conn *c;

	if (status < 0 || s->closing)
		return;
	c = calloc(1, sizeof(*c) + s->lim.max_head + 1);
	if (c == NULL)
		return;
	c->s = s;
	if (s->is_unix)
		uv_pipe_init(s->loop, &c->sock.pipe, 0);
	else
		uv_tcp_init(s->loop, &c->sock.tcp);
	uv_timer_init(s->loop, &c->timer);
	c->sock.h.data = c->timer.data = c;
	c->handles = 2;
	s->handles++;
	if (uv_accept(ls, &c->sock.st) != 0) {
		hsrv_conn_close(c);
		return;
	}
	if (s->n_conns >= s->lim.max_conns) {
		s->st.refused++;
		hsrv_conn_close(c);
		return;
	}
	list_insert_tail(&s->conns, &c->node);
	s->n_conns++;
	uv_timer_start(&c->timer, hsrv_timeout_cb, s->lim.timeout_ms, 0);
	if (uv_read_start(&c->sock.st, hsrv_alloc_cb,
			  hsrv_read_cb) != 0)
		hsrv_conn_close(c);
}

/* A unix socket at path, only for its owner (a control socket gives
 * orders).  A socket left by a process that died is removed first;
 * anything else at path is not. */
static int
hsrv_bind_unix(struct hsrv *s, const char *path)
{
	struct stat st;
	int rc;

	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	uv_pipe_init(s->loop, &s->listener.pipe, 0);
	s->is_unix = 1;
	rc = uv_pipe_bind(&s->listener.pipe, path);
	if (rc == 0 && chmod(path, 0600) != 0)
		rc = -errno;
	return rc;
}

int
hsrv_new(struct hsrv **out, uv_loop_t *loop, const char *addr,
	 const struct hsrv_limits *lim)
{
	struct sockaddr_storage sa;
	char host[CFG_ADDR_LEN];
	struct hsrv *s;
	int port, rc, is_unix = addr[0] == '/';

	if (lim->max_conns < 1 || lim->max_head < 16 || lim->timeout_ms == 0)
		return -EINVAL;
	if (!is_unix &&
	    (cfg_addr_split(addr, host, sizeof(host), &port, -1) != 0 ||
	     port <= 0 || port > 65535 ||
	     (uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) != 0 &&
	      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa) != 0)))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->loop = loop;
	s->lim = *lim;
	list_init(&s->conns);
	s->handles = 1;
	if (is_unix) {
		rc = hsrv_bind_unix(s, addr);
	} else {
		uv_tcp_init(loop, &s->listener.tcp);
		rc = uv_tcp_bind(&s->listener.tcp, (struct sockaddr *)&sa, 0);
	}
	s->listener.h.data = s;
	if (rc == 0)
		rc = uv_listen(&s->listener.st, HSRV_BACKLOG, hsrv_accept_cb);
	if (rc != 0) {
		hsrv_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int
hsrv_route(struct hsrv *s, const char *path, hsrv_handler_cb cb, void *arg)
{
	if (s->n_routes == HSRV_MAX_ROUTES)
		return -ENOSPC;
	s->routes[s->n_routes++] = (struct hsrv_route){ path, strlen(path),
							cb, arg };
	return 0;
}

const struct hsrv_stats *
hsrv_stats(const struct hsrv *s)
{
	return &s->st;
}

static void
hsrv_listener_closed_cb(uv_handle_t *h)
{
	struct hsrv *s = h->data;

	s->handles--;
	hsrv_maybe_free(s);
}

void
hsrv_free(struct hsrv *s)
{
	struct list_node *n;

	if (s == NULL || s->closing)
		return;
	s->closing = 1;
	while ((n = list_first(&s->conns)) != NULL)
		hsrv_conn_close(list_entry(n, struct hsrv_conn, node));
	uv_close(&s->listener.h, hsrv_listener_closed_cb);
}
