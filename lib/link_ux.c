/*
 * link_ux.c - the ipc:// links' transport: unix stream sockets driven
 * by the loop thread itself, see link_int.h.
 *
 * Why not nanomsg here: each nanomsg message crosses a worker thread
 * on either side, an eventfd wake-up each time (link.c has the
 * numbers).  Here a chunk is one send(2) by the loop that made it and,
 * on the other side, part of one read(2) by the loop that handles it.
 *
 * Receiving: every accepted connection has an input buffer, reused,
 * LINK_UX_IN_BYTES to start and grown to hold the largest chunk it
 * announced (at most LINK_MAX_MSG).  One read per readable event takes
 * what fits, every complete chunk goes to the callback, and the rest
 * moves to the front; so a busy peer costs the loop at most one buffer
 * per turn, as nanomsg's LINK_BATCH did.
 *
 * Sending: a chunk goes in one send(2) when nothing is pending.  What
 * the socket does not take is copied to the stream's pending buffer
 * (reused, grown by doubling up to LINK_BUF_BYTES), written when the
 * socket is writable; later chunks append behind it, so order holds.
 * A stream that closes takes its pending bytes with it: half a chunk
 * means nothing on a new connection.
 *
 * Every fd is non-blocking and watched by a uv_poll of its own, whose
 * memory goes in its uv_close callback, so a callback may free the
 * whole link.
 */
#include "lib/link_int.h"
#include "lib/log.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Two gathered chunks (LINK_OUT_BYTES in link.c): one read takes what a
 * busy turn of the peer sent. */
#define LINK_UX_IN_BYTES	(128 * 1024)
#define LINK_UX_PEND_MIN	(64 * 1024)

/* A connection we accepted: we only read from it. */
struct link_ux_in {
	uv_poll_t poll;
	int fd;
	int closing;
	struct link_ux_srv *srv;
	struct link_ux_in *prev, *next;
	unsigned char *buf;
	size_t len, cap;
};

struct link_ux_srv {
	uv_poll_t poll;
	int fd;
	int nconns;
	struct link_ux_in *conns;
	link_ux_chunk_cb cb;
	void *arg;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* Our connection to a peer, heap of its own: a new one per connect. */
struct link_ux_conn {
	uv_poll_t poll;
	int fd;
	struct link_ux_out *o;
};

struct link_ux_out {
	uv_loop_t *loop;
	uv_timer_t retry;
	struct link_ux_conn *conn;	/* NULL: down */
	struct sockaddr_un sa;
	unsigned char *pend;		/* pend[off .. off + len) unwritten */
	size_t off, len, cap;
	int failing;			/* a connect failed: logged once */
};

static int
link_ux_addr(struct sockaddr_un *sa, const char *path)
{
	size_t n = strlen(path);

	if (n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, n + 1);
	return 0;
}

static uint32_t
link_ux_get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		(uint32_t)p[2] << 8 | p[3];
}

/* ---- receiving */

static void
link_ux_in_on_close(uv_handle_t *h)
{
	struct link_ux_in *c = h->data;

	free(c->buf);
	free(c);
}

static void
link_ux_in_close(struct link_ux_in *c)
{
	struct link_ux_srv *s = c->srv;

	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	c->closing = 1;
	/* uv_close stops watching the fd at once: it may go now. */
	uv_close((uv_handle_t *)&c->poll, link_ux_in_on_close);
	close(c->fd);
}

/* Moves the unread bytes from off to the front and makes room for the
 * whole chunk they begin. */
static int
link_ux_in_shift(struct link_ux_in *c, size_t off)
{
	size_t want;
	unsigned char *b;

	if (off) {
		memmove(c->buf, c->buf + off, c->len - off);
		c->len -= off;
	}
	if (c->len < LINK_UX_HDR)
		return 0;
	want = LINK_UX_HDR + link_ux_get32(c->buf);
	if (want <= c->cap)
		return 0;
	b = realloc(c->buf, want);
	if (b == NULL)
		return -ENOMEM;
	c->buf = b;
	c->cap = want;
	return 0;
}

static void
link_ux_in_on_readable(uv_poll_t *h, int status, int events)
{
	struct link_ux_in *c = h->data;
	link_ux_chunk_cb cb = c->srv->cb;
	void *arg = c->srv->arg;
	size_t off = 0, n;
	ssize_t got;

	(void)events;
	if (status < 0) {
		link_ux_in_close(c);
		return;
	}
	got = read(c->fd, c->buf + c->len, c->cap - c->len);
	if (got <= 0) {
		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		/* EOF or reset: the peer went; it connects again. */
		link_ux_in_close(c);
		return;
	}
	c->len += (size_t)got;
	while (c->len - off >= LINK_UX_HDR) {
		n = link_ux_get32(c->buf + off);
		if (n > LINK_MAX_MSG) {
			cb(arg, NULL, n);
			if (!c->closing)
				link_ux_in_close(c);
			return;
		}
		if (c->len - off - LINK_UX_HDR < n)
			break;
		if (cb(arg, c->buf + off + LINK_UX_HDR, n) < 0) {
			if (!c->closing)
				link_ux_in_close(c);
			return;
		}
		if (c->closing)
			return;		/* the callback freed the server */
		off += LINK_UX_HDR + n;
	}
	if (link_ux_in_shift(c, off) < 0) {
		log_warn(LOG_SYS_NET, "link: %s: no memory for a chunk of "
			 "%u bytes: connection closed", c->srv->path,
			 (unsigned)link_ux_get32(c->buf));
		link_ux_in_close(c);
	}
}

static void
link_ux_srv_accept(struct link_ux_srv *s)
{
	struct link_ux_in *c;
	int fd;

	for (;;) {
		fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				log_warn(LOG_SYS_NET, "link: %s: accept: %s",
					 s->path, strerror(errno));
			return;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL || (c->buf = malloc(LINK_UX_IN_BYTES)) == NULL ||
		    uv_poll_init(s->poll.loop, &c->poll, fd) < 0) {
			log_warn(LOG_SYS_NET, "link: %s: no memory for a "
				 "connection", s->path);
			if (c)
				free(c->buf);
			free(c);
			close(fd);
			return;
		}
		c->fd = fd;
		c->srv = s;
		c->cap = LINK_UX_IN_BYTES;
		c->poll.data = c;
		/* Cannot fail: the fd is a socket libuv took at init. */
		uv_poll_start(&c->poll, UV_READABLE, link_ux_in_on_readable);
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
	}
}

static void
link_ux_srv_on_readable(uv_poll_t *h, int status, int events)
{
	struct link_ux_srv *s = h->data;

	(void)events;
	if (status < 0) {
		log_warn(LOG_SYS_NET, "link: %s: poll: %s", s->path,
			 uv_strerror(status));
		return;
	}
	link_ux_srv_accept(s);
}

/*
 * A file at sa that bind found: stale (a socket nobody answers at,
 * left by a process that died) is removed and 0 returned; anything
 * else is somebody's: -EADDRINUSE.
 */
static int
link_ux_stale(const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, rc;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
		rc = -EADDRINUSE;
	else if (errno == ENOENT)
		rc = 0;		/* gone meanwhile */
	else if (errno != ECONNREFUSED)
		rc = -EADDRINUSE;	/* EAGAIN: alive, its backlog full */
	else if (lstat(sa->sun_path, &st) != 0 || !S_ISSOCK(st.st_mode))
		rc = -EADDRINUSE;
	else if (unlink(sa->sun_path) != 0 && errno != ENOENT)
		rc = -errno;
	else
		rc = 0;
	close(fd);
	return rc;
}

static void
link_ux_srv_on_close(uv_handle_t *h)
{
	free(h->data);
}

int
link_ux_srv_new(struct link_ux_srv **out, uv_loop_t *loop, const char *path,
		link_ux_chunk_cb cb, void *arg)
{
	struct link_ux_srv *s;
	struct sockaddr_un sa;
	int rc;

	rc = link_ux_addr(&sa, path);
	if (rc < 0)
		return rc;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->cb = cb;
	s->arg = arg;
	memcpy(s->path, sa.sun_path, sizeof(s->path));
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		rc = -errno;
		goto fail;
	}
	if (bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		rc = errno == EADDRINUSE ? link_ux_stale(&sa) : -errno;
		if (rc < 0)
			goto fail;
		if (bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			rc = -errno;
			goto fail;
		}
	}
	if (listen(s->fd, SOMAXCONN) != 0) {
		rc = -errno;
		goto fail;
	}
	rc = uv_poll_init(loop, &s->poll, s->fd);
	if (rc < 0)
		goto fail;
	s->poll.data = s;
	uv_poll_start(&s->poll, UV_READABLE, link_ux_srv_on_readable);
	*out = s;
	return 0;
fail:
	if (s->fd >= 0)
		close(s->fd);
	free(s);
	return rc;
}

int
link_ux_srv_conns(struct link_ux_srv *s)
{
	link_ux_srv_accept(s);
	return s->nconns;
}

void
link_ux_srv_free(struct link_ux_srv *s)
{
	if (s == NULL)
		return;
	while (s->conns)
		link_ux_in_close(s->conns);
	uv_close((uv_handle_t *)&s->poll, link_ux_srv_on_close);
	close(s->fd);
}

/* ---- sending */

static void link_ux_out_connect(struct link_ux_out *o);
static void link_ux_conn_on_event(uv_poll_t *h, int status, int events);

static void
link_ux_conn_on_close(uv_handle_t *h)
{
	free(h->data);
}

/* Closes the connection; with it go the pending bytes. */
static void
link_ux_out_close(struct link_ux_out *o)
{
	struct link_ux_conn *c = o->conn;

	o->conn = NULL;
	o->off = o->len = 0;
	uv_close((uv_handle_t *)&c->poll, link_ux_conn_on_close);
	close(c->fd);
}

/* The peer closed or reset the stream (a restart): connect again. */
static void
link_ux_out_lost(struct link_ux_out *o, int err)
{
	log_info(LOG_SYS_NET, "link: %s: connection lost (%s), %zu byte(s) "
		 "unsent", o->sa.sun_path, err ? strerror(err) : "closed",
		 o->len);
	link_ux_out_close(o);
	link_ux_out_connect(o);
}

/* Writes what is pending; stops watching for writable once it all went. */
static void
link_ux_out_push(struct link_ux_out *o)
{
	ssize_t n = send(o->conn->fd, o->pend + o->off, o->len,
			 MSG_DONTWAIT | MSG_NOSIGNAL);

	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			link_ux_out_lost(o, errno);
		return;
	}
	o->off += (size_t)n;
	o->len -= (size_t)n;
	if (o->len)
		return;
	o->off = 0;
	uv_poll_start(&o->conn->poll, UV_READABLE, link_ux_conn_on_event);
}

/* Readable: a receiver never writes, so it is the end of the stream. */
static void
link_ux_conn_on_event(uv_poll_t *h, int status, int events)
{
	struct link_ux_conn *c = h->data;
	struct link_ux_out *o = c->o;
	char b[64];
	ssize_t n;

	if (status < 0) {
		link_ux_out_lost(o, -status);
		return;
	}
	if (events & UV_READABLE) {
		n = recv(c->fd, b, sizeof(b), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			link_ux_out_lost(o, n == 0 ? 0 : errno);
			return;
		}
	}
	if ((events & UV_WRITABLE) && o->len)
		link_ux_out_push(o);
}

static void
link_ux_out_on_retry(uv_timer_t *t)
{
	link_ux_out_connect(t->data);
}

/* One attempt; a refusal (the peer is not up yet, or restarting) tries
 * again on the timer. */
static void
link_ux_out_connect(struct link_ux_out *o)
{
	struct link_ux_conn *c = NULL;
	int fd;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto retry;
	if (connect(fd, (struct sockaddr *)&o->sa, sizeof(o->sa)) != 0) {
		/* Not there, nobody listening, or its backlog full: all
		 * "not yet". */
		if (errno != ENOENT && errno != ECONNREFUSED &&
		    errno != EAGAIN && !o->failing)
			log_warn(LOG_SYS_NET, "link: %s: connect: %s",
				 o->sa.sun_path, strerror(errno));
		o->failing = 1;
		goto retry;
	}
	c = malloc(sizeof(*c));
	if (c == NULL || uv_poll_init(o->loop, &c->poll, fd) < 0)
		goto retry;
	c->fd = fd;
	c->o = o;
	c->poll.data = c;
	uv_poll_start(&c->poll, UV_READABLE, link_ux_conn_on_event);
	o->conn = c;
	o->failing = 0;
	uv_timer_stop(&o->retry);
	return;
retry:
	free(c);
	if (fd >= 0)
		close(fd);
	if (!uv_is_active((uv_handle_t *)&o->retry))
		uv_timer_start(&o->retry, link_ux_out_on_retry,
			       LINK_UX_RETRY_MS, LINK_UX_RETRY_MS);
}

int
link_ux_out_new(struct link_ux_out **out, uv_loop_t *loop, const char *path)
{
	struct link_ux_out *o = calloc(1, sizeof(*o));
	int rc;

	if (o == NULL)
		return -ENOMEM;
	rc = link_ux_addr(&o->sa, path);
	if (rc < 0) {
		free(o);
		return rc;
	}
	o->loop = loop;
	/* Cannot fail: a timer only joins the loop's queue. */
	uv_timer_init(loop, &o->retry);
	o->retry.data = o;
	link_ux_out_connect(o);
	*out = o;
	return 0;
}

int
link_ux_out_up(const struct link_ux_out *o)
{
	return o->conn != NULL;
}

/* Appends n bytes to the pending ones. */
static int
link_ux_out_keep(struct link_ux_out *o, const unsigned char *p, size_t n)
{
	size_t cap;
	unsigned char *b;

	if (o->off + o->len + n > o->cap && o->off) {
		memmove(o->pend, o->pend + o->off, o->len);
		o->off = 0;
	}
	if (o->len + n > o->cap) {
		cap = o->cap ? o->cap : LINK_UX_PEND_MIN;
		while (cap < o->len + n)
			cap *= 2;
		b = realloc(o->pend, cap);
		if (b == NULL)
			return -ENOMEM;
		o->pend = b;
		o->cap = cap;
	}
	memcpy(o->pend + o->off + o->len, p, n);
	o->len += n;
	return 0;
}

int
link_ux_out_write(struct link_ux_out *o, const void *buf, size_t len)
{
	ssize_t n = 0;
	int rc;

	if (o->conn == NULL)
		return -EAGAIN;
	if (o->len == 0) {
		n = send(o->conn->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == (ssize_t)len)
			return 0;
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR) {
				link_ux_out_lost(o, errno);
				return -EAGAIN;
			}
			n = 0;
		}
	} else if (o->len + len > LINK_BUF_BYTES) {
		return -EAGAIN;
	}
	/* A partial write is always kept (less than one chunk, under the
	 * bound): the stream must not lose half a chunk. */
	rc = link_ux_out_keep(o, (const unsigned char *)buf + n, len - (size_t)n);
	if (rc < 0) {
		if (n > 0)
			link_ux_out_lost(o, -rc);
		return rc;
	}
	if (o->len == len - (size_t)n)
		uv_poll_start(&o->conn->poll, UV_READABLE | UV_WRITABLE,
			      link_ux_conn_on_event);
	return 0;
}

static void
link_ux_out_on_close(uv_handle_t *h)
{
	struct link_ux_out *o = h->data;

	free(o->pend);
	free(o);
}

/* The last write, blocking (poll) until all went or until_ms. */
static void
link_ux_out_drain(struct link_ux_out *o, uint64_t until_ms)
{
	struct pollfd p = { .fd = o->conn->fd, .events = POLLOUT };
	uint64_t now;
	ssize_t n;

	while (o->len) {
		n = send(p.fd, o->pend + o->off, o->len,
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			o->off += (size_t)n;
			o->len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			break;
		now = uv_hrtime() / 1000000;
		if (now >= until_ms)
			break;
		poll(&p, 1, (int)(until_ms - now));
	}
	if (o->len)
		log_warn(LOG_SYS_NET, "link: %s: closed with %zu byte(s) "
			 "unsent", o->sa.sun_path, o->len);
}

void
link_ux_out_free(struct link_ux_out *o, uint64_t until_ms)
{
	if (o == NULL)
		return;
	if (o->conn) {
		link_ux_out_drain(o, until_ms);
		link_ux_out_close(o);
	}
	uv_close((uv_handle_t *)&o->retry, link_ux_out_on_close);
}
