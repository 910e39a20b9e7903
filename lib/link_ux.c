/*
 * link_ux.c - the links' stream transport: unix stream sockets (ipc://,
 * processes of one host) and TCP (tcp://, other hosts), driven by the
 * loop thread itself, see link_int.h.
 *
 * Why not nanomsg: each nanomsg message crosses a worker thread on
 * either side, an eventfd wake-up each time (link.c has the numbers).
 * Here a chunk is one send(2) by the loop that made it and, on the
 * other side, part of one read(2) by the loop that handles it.  Over
 * TCP the same holds, and no thread of a library closes sockets behind
 * the loop's back.
 *
 * Receiving: every accepted connection has an input buffer, reused,
 * LINK_UX_IN_BYTES to start and grown to hold the largest chunk it
 * announced (at most LINK_MAX_MSG).  One read per readable event takes
 * what fits, every complete chunk goes to the callback, and the rest
 * moves to the front; so a busy peer costs the loop at most one buffer
 * per turn, as nanomsg's LINK_BATCH did.
 *
 * A TCP endpoint can be reached by anyone on the network.  What a
 * connection may cost before it is trusted (its first chunk accepted
 * by the callback: for TCP, one whose MAC verified) is bounded: its
 * chunks may not exceed LINK_UX_IN_BYTES, at most LINK_UX_UNTRUSTED
 * such connections stay open (a new one closes the oldest), at most
 * LINK_UX_MAX_IN connections in all.  A sender begins every connection
 * with a small chunk (link.c's hello), so a genuine peer is trusted at
 * once.  Keep-alive probes close what a peer that lost power left.
 *
 * Sending: a chunk goes in one send(2) when nothing is pending.  What
 * the socket does not take is copied to the stream's pending buffer
 * (reused, grown by doubling up to LINK_BUF_BYTES), written when the
 * socket is writable; later chunks append behind it, so order holds.
 * A stream that closes takes its pending bytes with it: half a chunk
 * means nothing on a new connection.  A TCP connect completes in the
 * background (bounded by LINK_UX_CONNECT_MS), and TCP_USER_TIMEOUT
 * ends a stream whose bytes a vanished host no longer acknowledges, so
 * that it connects again instead of waiting out TCP's retransmissions.
 *
 * Every fd is non-blocking and watched by a uv_poll of its own, whose
 * memory goes in its uv_close callback, so a callback may free the
 * whole link.
 */
#include "lib/link_int.h"
#include "lib/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define LINK_UX_PEND_MIN	(64 * 1024)
/* Connections accepted and open at once: peers are at most 255 (and a
 * restarted one's old connection until it closes). */
#define LINK_UX_MAX_IN		1024
/* A TCP connect that has not completed by then is given up and tried
 * again; bytes unacknowledged this long end the stream. */
#define LINK_UX_CONNECT_MS	2000
#define LINK_UX_USER_TIMEOUT_MS	5000
/* Keep-alive of accepted TCP connections: a peer gone without a FIN is
 * found in about IDLE + INTVL * CNT seconds. */
#define LINK_UX_KEEPIDLE_S	5
#define LINK_UX_KEEPINTVL_S	2
#define LINK_UX_KEEPCNT		3

/* An endpoint: a unix socket file or a TCP address. */
struct link_ux_addr {
	union {
		struct sockaddr sa;
		struct sockaddr_un un;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} u;
	socklen_t len;
	char name[sizeof(((struct sockaddr_un *)0)->sun_path)];	/* logs */
};

/* A connection we accepted: we only read from it. */
struct link_ux_in {
	uv_poll_t poll;
	int fd;
	int closing;
	int trusted;		/* the callback took a chunk */
	struct link_ux_srv *srv;
	struct link_ux_in *prev, *next;
	struct link_ux_rd rd;
};

struct link_ux_srv {
	uv_poll_t poll;
	int fd;
	int nconns;
	int nuntrusted;
	uint64_t logged_ms;		/* last eviction logged */
	struct link_ux_in *conns;	/* newest first */
	link_ux_chunk_cb cb;
	void *arg;
	struct link_ux_addr addr;
};

/* Our connection to a peer, heap of its own: a new one per connect. */
struct link_ux_conn {
	uv_poll_t poll;
	int fd;
	int connecting;		/* TCP: the connect has not completed */
	struct link_ux_out *o;
};

struct link_ux_out {
	uv_loop_t *loop;
	uv_timer_t retry;		/* also a connect's deadline */
	struct link_ux_conn *conn;	/* NULL: down */
	struct link_ux_addr addr;
	link_ux_up_cb up;
	void *up_arg;
	int up_tag;
	unsigned char *pend;		/* pend[off .. off + len) unwritten */
	size_t off, len, cap;
	int failing;			/* a connect failed: logged once */
};

/* "tcp://" followed by an IPv4 address or a bracketed IPv6 one, a
 * colon and a port. */
static int
link_ux_tcp_addr(struct link_ux_addr *a, const char *hostport)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(hostport, ':');
	char *end;
	unsigned long port;
	size_t n;

	if (colon == NULL || colon == hostport)
		return -EINVAL;
	n = (size_t)(colon - hostport);
	if (hostport[0] == '[') {
		if (n < 3 || hostport[n - 1] != ']')
			return -EINVAL;
		hostport++;
		n -= 2;
	}
	if (n >= sizeof(host))
		return -EINVAL;
	memcpy(host, hostport, n);
	host[n] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || errno ||
	    port == 0 || port > 65535)
		return -EINVAL;
	memset(&a->u, 0, sizeof(a->u));
	if (inet_pton(AF_INET, host, &a->u.in.sin_addr) == 1) {
		a->u.in.sin_family = AF_INET;
		a->u.in.sin_port = htons((uint16_t)port);
		a->len = sizeof(a->u.in);
	} else if (inet_pton(AF_INET6, host, &a->u.in6.sin6_addr) == 1) {
		a->u.in6.sin6_family = AF_INET6;
		a->u.in6.sin6_port = htons((uint16_t)port);
		a->len = sizeof(a->u.in6);
	} else {
		return -EINVAL;	/* a name: see link_ux_addr */
	}
	return 0;
}

/*
 * The endpoint of url: ipc://<path> or tcp://<address>:<port>.  A TCP
 * endpoint takes an address, never a name: a name would need a DNS
 * lookup, blocking or not, before each reconnect, for what a
 * configuration fixes.
 */
static int
link_ux_addr(struct link_ux_addr *a, const char *url)
{
	size_t n;
	int rc;

	if (strncmp(url, "tcp://", 6) == 0) {
		rc = link_ux_tcp_addr(a, url + 6);
		if (rc < 0)
			return rc;
		snprintf(a->name, sizeof(a->name), "%s", url);
		return 0;
	}
	if (strncmp(url, "ipc://", 6) != 0)
		return -EINVAL;
	url += 6;
	n = strlen(url);
	if (n >= sizeof(a->u.un.sun_path))
		return -ENAMETOOLONG;
	memset(&a->u, 0, sizeof(a->u));
	a->u.un.sun_family = AF_UNIX;
	memcpy(a->u.un.sun_path, url, n + 1);
	a->len = sizeof(a->u.un);
	memcpy(a->name, url, n + 1);
	return 0;
}

int
link_ux_url_ok(const char *url)
{
	struct link_ux_addr a;

	return link_ux_addr(&a, url);
}

static int
link_ux_is_tcp(const struct link_ux_addr *a)
{
	return a->u.sa.sa_family != AF_UNIX;
}

static void
link_ux_sockopt(int fd, int level, int opt, int v)
{
	/* Each only tunes the stream: it works without. */
	(void)setsockopt(fd, level, opt, &v, sizeof(v));
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

	link_ux_rd_fini(&c->rd);
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
	if (!c->trusted)
		s->nuntrusted--;
	c->closing = 1;
	/* uv_close stops watching the fd at once: it may go now. */
	uv_close((uv_handle_t *)&c->poll, link_ux_in_on_close);
	close(c->fd);
}

int
link_ux_rd_init(struct link_ux_rd *r)
{
	*r = (struct link_ux_rd){ .buf = malloc(LINK_UX_IN_BYTES) };
	if (r->buf == NULL)
		return -ENOMEM;
	r->cap = LINK_UX_IN_BYTES;
	return 0;
}

void
link_ux_rd_fini(struct link_ux_rd *r)
{
	free(r->buf);
	r->buf = NULL;
}

int
link_ux_rd_next(struct link_ux_rd *r, size_t max, const unsigned char **chunk,
		size_t *len)
{
	size_t n;

	if (r->len - r->off < LINK_UX_HDR)
		return 0;
	n = link_ux_get32(r->buf + r->off);
	if (n > max) {
		*len = n;
		return -EMSGSIZE;
	}
	if (r->len - r->off - LINK_UX_HDR < n)
		return 0;
	*chunk = r->buf + r->off + LINK_UX_HDR;
	*len = n;
	r->off += LINK_UX_HDR + n;
	return 1;
}

int
link_ux_rd_keep(struct link_ux_rd *r)
{
	size_t want;
	unsigned char *b;

	if (r->off) {
		memmove(r->buf, r->buf + r->off, r->len - r->off);
		r->len -= r->off;
		r->off = 0;
	}
	if (r->len < LINK_UX_HDR)
		return 0;
	/* link_ux_rd_next saw this length: at most its max. */
	want = LINK_UX_HDR + link_ux_get32(r->buf);
	if (want <= r->cap)
		return 0;
	b = realloc(r->buf, want);
	if (b == NULL)
		return -ENOMEM;
	r->buf = b;
	r->cap = want;
	return 0;
}

/* The largest chunk c may announce: an untrusted connection gets no
 * more than its first buffer. */
static size_t
link_ux_in_max(const struct link_ux_in *c)
{
	return c->trusted ? LINK_MAX_MSG : LINK_UX_IN_BYTES - LINK_UX_HDR;
}

static void
link_ux_in_on_readable(uv_poll_t *h, int status, int events)
{
	struct link_ux_in *c = h->data;
	struct link_ux_srv *s = c->srv;
	struct link_ux_rd *r = &c->rd;
	link_ux_chunk_cb cb = s->cb;
	void *arg = s->arg;
	const unsigned char *chunk;
	size_t n;
	ssize_t got;
	int rc;

	(void)events;
	if (status < 0) {
		link_ux_in_close(c);
		return;
	}
	got = read(c->fd, r->buf + r->len, r->cap - r->len);
	if (got <= 0) {
		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		/* EOF or reset: the peer went; it connects again. */
		link_ux_in_close(c);
		return;
	}
	r->len += (size_t)got;
	while ((rc = link_ux_rd_next(r, link_ux_in_max(c), &chunk, &n)) > 0) {
		if (cb(arg, chunk, n) < 0) {
			if (!c->closing)
				link_ux_in_close(c);
			return;
		}
		if (c->closing)
			return;		/* the callback freed the server */
		if (!c->trusted) {
			c->trusted = 1;
			s->nuntrusted--;
		}
	}
	if (rc < 0) {
		cb(arg, NULL, n);
		if (!c->closing)
			link_ux_in_close(c);
		return;
	}
	if (link_ux_rd_keep(r) < 0) {
		log_warn(LOG_SYS_NET, "link: %s: no memory for a chunk of "
			 "%u bytes: connection closed", s->addr.name,
			 (unsigned)link_ux_get32(r->buf));
		link_ux_in_close(c);
	}
}

/* Room for one more connection: the oldest untrusted one goes when
 * there are LINK_UX_UNTRUSTED.  0, or -EMFILE at LINK_UX_MAX_IN. */
static int
link_ux_srv_room(struct link_ux_srv *s)
{
	struct link_ux_in *c, *oldest = NULL;

	if (s->nuntrusted >= LINK_UX_UNTRUSTED) {
		for (c = s->conns; c; c = c->next)
			if (!c->trusted)
				oldest = c;
		/* A flood of connections is one line a second. */
		if (uv_now(s->poll.loop) - s->logged_ms >= 1000) {
			s->logged_ms = uv_now(s->poll.loop);
			log_notice(LOG_SYS_NET, "link: %s: %d connections sent "
				   "nothing valid yet: the oldest closed",
				   s->addr.name, s->nuntrusted);
		}
		link_ux_in_close(oldest);
	}
	return s->nconns < LINK_UX_MAX_IN ? 0 : -EMFILE;
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
					 s->addr.name, strerror(errno));
			return;
		}
		if (link_ux_srv_room(s) < 0) {
			log_warn(LOG_SYS_NET, "link: %s: %d connections open: "
				 "a new one refused", s->addr.name, s->nconns);
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL || link_ux_rd_init(&c->rd) < 0 ||
		    uv_poll_init(s->poll.loop, &c->poll, fd) < 0) {
			log_warn(LOG_SYS_NET, "link: %s: no memory for a "
				 "connection", s->addr.name);
			if (c)
				link_ux_rd_fini(&c->rd);
			free(c);
			close(fd);
			return;
		}
		if (link_ux_is_tcp(&s->addr)) {
			link_ux_sockopt(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
			link_ux_sockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE,
					LINK_UX_KEEPIDLE_S);
			link_ux_sockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL,
					LINK_UX_KEEPINTVL_S);
			link_ux_sockopt(fd, IPPROTO_TCP, TCP_KEEPCNT,
					LINK_UX_KEEPCNT);
		}
		c->fd = fd;
		c->srv = s;
		c->poll.data = c;
		/* Cannot fail: the fd is a socket libuv took at init. */
		uv_poll_start(&c->poll, UV_READABLE, link_ux_in_on_readable);
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
		s->nuntrusted++;
	}
}

static void
link_ux_srv_on_readable(uv_poll_t *h, int status, int events)
{
	struct link_ux_srv *s = h->data;

	(void)events;
	if (status < 0) {
		log_warn(LOG_SYS_NET, "link: %s: poll: %s", s->addr.name,
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

/* Binds s's socket at its address: a stale socket file is replaced, a
 * TCP port is taken over from connections in TIME_WAIT of our
 * predecessor. */
static int
link_ux_srv_bind(struct link_ux_srv *s)
{
	const struct link_ux_addr *a = &s->addr;
	int rc;

	if (link_ux_is_tcp(a))
		link_ux_sockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (bind(s->fd, &a->u.sa, a->len) == 0)
		return 0;
	if (errno != EADDRINUSE || link_ux_is_tcp(a))
		return -errno;
	rc = link_ux_stale(&a->u.un);
	if (rc < 0)
		return rc;
	return bind(s->fd, &a->u.sa, a->len) == 0 ? 0 : -errno;
}

int
link_ux_srv_new(struct link_ux_srv **out, uv_loop_t *loop, const char *url,
		link_ux_chunk_cb cb, void *arg)
{
	struct link_ux_srv *s;
	int rc;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->fd = -1;
	rc = link_ux_addr(&s->addr, url);
	if (rc < 0)
		goto fail;
	s->cb = cb;
	s->arg = arg;
	s->fd = socket(s->addr.u.sa.sa_family,
		       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		rc = -errno;
		goto fail;
	}
	rc = link_ux_srv_bind(s);
	if (rc < 0)
		goto fail;
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

static void
link_ux_out_on_retry(uv_timer_t *t)
{
	struct link_ux_out *o = t->data;

	if (o->conn) {		/* a connect's deadline */
		link_ux_out_close(o);
		if (!o->failing)
			log_info(LOG_SYS_NET, "link: %s: connect: no answer "
				 "in %d ms (trying again)", o->addr.name,
				 LINK_UX_CONNECT_MS);
		o->failing = 1;
	}
	link_ux_out_connect(o);
}

/* Tries again after LINK_UX_RETRY_MS. */
static void
link_ux_out_retry(struct link_ux_out *o)
{
	uv_timer_start(&o->retry, link_ux_out_on_retry, LINK_UX_RETRY_MS, 0);
}

/* The peer closed or reset the stream (a restart): connect again. */
static void
link_ux_out_lost(struct link_ux_out *o, int err)
{
	log_info(LOG_SYS_NET, "link: %s: connection lost (%s), %zu byte(s) "
		 "unsent", o->addr.name, err ? strerror(err) : "closed",
		 o->len);
	link_ux_out_close(o);
	/* On the next turn, not from inside a write of link.c's. */
	uv_timer_start(&o->retry, link_ux_out_on_retry, 0, 0);
}

/* A connect failed with err: logged once until one succeeds.  Not
 * there, nobody listening, or its backlog full are "not yet" on this
 * host; from another host they may say it is down. */
static void
link_ux_out_failed(struct link_ux_out *o, int err)
{
	int quiet = !link_ux_is_tcp(&o->addr) &&
		    (err == ENOENT || err == ECONNREFUSED || err == EAGAIN);

	if (!o->failing && !quiet)
		log_info(LOG_SYS_NET, "link: %s: connect: %s (trying again "
			 "every %d ms)", o->addr.name, strerror(err),
			 LINK_UX_RETRY_MS);
	o->failing = 1;
}

/* Connected: the stream is up. */
static void
link_ux_out_up_now(struct link_ux_out *o)
{
	struct link_ux_conn *c = o->conn;

	c->connecting = 0;
	uv_timer_stop(&o->retry);
	if (o->failing)
		log_info(LOG_SYS_NET, "link: %s: connected", o->addr.name);
	o->failing = 0;
	uv_poll_start(&c->poll, UV_READABLE, link_ux_conn_on_event);
	if (o->up)
		o->up(o->up_arg, o->up_tag);
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

/* Writable while connecting: the connect's outcome.  Else readable: a
 * receiver never writes, so it is the end of the stream. */
static void
link_ux_conn_on_event(uv_poll_t *h, int status, int events)
{
	struct link_ux_conn *c = h->data;
	struct link_ux_out *o = c->o;
	socklen_t sl = sizeof(int);
	int err = 0;
	char b[64];
	ssize_t n;

	/* libuv reports POLLERR as UV_EBADF: the socket's own error says
	 * what happened (a refused connect, a reset). */
	if ((c->connecting || status < 0) &&
	    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl) != 0)
		err = errno;
	if (status < 0 && err == 0)
		err = -status;
	if (c->connecting) {
		if (err) {
			link_ux_out_failed(o, err);
			link_ux_out_close(o);
			link_ux_out_retry(o);
			return;
		}
		link_ux_out_up_now(o);
		return;
	}
	if (status < 0) {
		link_ux_out_lost(o, err);
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

/* One attempt; a refusal (the peer is not up yet, or restarting) tries
 * again on the timer.  A unix socket connects or fails at once; TCP
 * completes in the background. */
static void
link_ux_out_connect(struct link_ux_out *o)
{
	struct link_ux_conn *c = NULL;
	int fd, tcp = link_ux_is_tcp(&o->addr), pending = 0;

	fd = socket(o->addr.u.sa.sa_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		link_ux_out_failed(o, errno);
		goto retry;
	}
	if (tcp) {
		/* link.c gathers a turn's envelopes itself. */
		link_ux_sockopt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
		link_ux_sockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT,
				LINK_UX_USER_TIMEOUT_MS);
	}
	if (connect(fd, &o->addr.u.sa, o->addr.len) != 0) {
		if (!tcp || errno != EINPROGRESS) {
			link_ux_out_failed(o, errno);
			goto retry;
		}
		pending = 1;
	}
	c = malloc(sizeof(*c));
	if (c == NULL || uv_poll_init(o->loop, &c->poll, fd) < 0)
		goto retry;
	c->fd = fd;
	c->o = o;
	c->connecting = 1;
	c->poll.data = c;
	o->conn = c;
	if (pending) {
		uv_poll_start(&c->poll, UV_WRITABLE, link_ux_conn_on_event);
		uv_timer_start(&o->retry, link_ux_out_on_retry,
			       LINK_UX_CONNECT_MS, 0);
		return;
	}
	link_ux_out_up_now(o);
	return;
retry:
	free(c);
	if (fd >= 0)
		close(fd);
	link_ux_out_retry(o);
}

int
link_ux_out_new(struct link_ux_out **out, uv_loop_t *loop, const char *url,
		link_ux_up_cb up, void *arg, int tag)
{
	struct link_ux_out *o = calloc(1, sizeof(*o));
	int rc;

	if (o == NULL)
		return -ENOMEM;
	rc = link_ux_addr(&o->addr, url);
	if (rc < 0) {
		free(o);
		return rc;
	}
	o->loop = loop;
	o->up = up;
	o->up_arg = arg;
	o->up_tag = tag;
	/* Cannot fail: a timer only joins the loop's queue. */
	uv_timer_init(loop, &o->retry);
	o->retry.data = o;
	/* Before connecting: up() may run from it and look for o. */
	*out = o;
	link_ux_out_connect(o);
	return 0;
}

int
link_ux_out_up(const struct link_ux_out *o)
{
	return o->conn != NULL && !o->conn->connecting;
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

	if (!link_ux_out_up(o))
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
			 "unsent", o->addr.name, o->len);
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
