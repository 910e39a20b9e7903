/*
 * edge_udp.c - SIP over UDP: one socket, datagrams in and out.
 *
 * The socket is made here (SO_REUSEPORT, IPV6_V6ONLY and large kernel
 * buffers need setting before bind) and handed to libuv, which reads
 * it with recvmmsg(2): one system call fetches up to
 * EDGE_UDP_BATCH datagrams into one receive buffer allocated at start,
 * and each datagram goes straight to edge_fwd_input() from that buffer.
 * Sends gather: a datagram is copied into the socket's out batch and
 * every datagram of a turn of the loop goes in one sendmmsg(2) from a
 * prepare handle, before the loop next blocks (so nothing waits longer
 * than the turn that made it).  A relaying edge answers in bursts (a
 * core's link message carries a turn's worth of responses), and one
 * system call per datagram was the largest single cost of its loop.
 * They never queue beyond the batch: a full socket buffer is a counted
 * drop, as it would be on the wire.
 *
 * ICMP errors: with IP_RECVERR (IPV6_RECVERR) the kernel queues an ICMP
 * error for a datagram we sent on the socket's error queue, with the
 * datagram's destination and its start as the ICMP message quoted it.
 * A port (or host, net) unreachable goes to edge_fwd_unreachable(), so
 * a core fails a request's branch over at once rather than after its
 * fail-over timer (issue 11; RFC 3261 18.4 counts it a transport
 * error).  libuv reads the socket but never its error queue, and a
 * socket with a queued error polls EPOLLERR until the queue is empty:
 * a uv_poll on a dup of the socket, asking only for UV_PRIORITIZED
 * (which UDP never raises), wakes on exactly that and empties it.  The
 * same socket error may also surface once from a receive or a send of
 * ours (sk_err): a receive ignores it, a send is tried once more.
 */
#include "edge/edge_int.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* libuv gives each datagram of a recvmmsg batch a 64 KiB slot (the
 * largest UDP payload) and fills at most 20 of them per call. */
#define EDGE_UDP_DGRAM (64 * 1024)
#define EDGE_UDP_BATCH 20
#define EDGE_UDP_RBUF  (EDGE_UDP_DGRAM * EDGE_UDP_BATCH)
/* Kernel socket buffers: bursts of thousands of messages per second.
 * Linux caps the request at net.core.{r,w}mem_max. */
#define EDGE_UDP_SOCKBUF (8 * 1024 * 1024)
/* Error-queue entries read per wake-up: the poll is level-triggered,
 * so more wait for the next turn of the loop, not for ever. */
#define EDGE_UDP_ERR_BATCH 64
/* The out batch: a fuller one is sent at once, and a new one begun. */
#define EDGE_UDP_OUT       64
#define EDGE_UDP_OUT_BYTES (4 * EDGE_UDP_DGRAM)

struct edge_udp_out {
	int n;
	size_t used;			/* bytes of buf */
	struct mmsghdr mm[EDGE_UDP_OUT];
	struct iovec iov[EDGE_UDP_OUT];
	union env_sa dst[EDGE_UDP_OUT];
	char buf[EDGE_UDP_OUT_BYTES];
};

struct edge_udp {
	struct edge_tp tp;	/* first, so an edge_tp * is an edge_udp * */
	struct edge *edge;
	uv_udp_t h;
	uv_poll_t errp;		/* the error queue, on errfd */
	int errfd;		/* dup of the socket; -1: no error queue */
	uv_prepare_t flush;	/* sends out before the loop blocks */
	int fd;			/* the socket, h's */
	int open_handles;	/* freed when the last one has closed */
	char *rbuf;
	struct edge_udp_out *out;
};

/* Whether rc (a libuv error) is an ICMP error the socket reported as
 * its sk_err: the error queue holds the details. */
static int
edge_udp_icmp_errno(int rc)
{
	return rc == UV_ECONNREFUSED || rc == UV_EHOSTUNREACH ||
	       rc == UV_ENETUNREACH;
}

static void
edge_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct edge_udp *u = h->data;

	(void)suggested;
	/* Every datagram is consumed before libuv asks again, so one
	 * buffer serves all reads. */
	buf->base = u->rbuf;
	buf->len = EDGE_UDP_RBUF;
}

static void
edge_udp_on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
		 const struct sockaddr *addr, unsigned flags)
{
	struct edge_udp *u = h->data;
	union env_sa src;

	/* The end of a recvmmsg batch, or nothing more to read. */
	if ((flags & UV_UDP_MMSG_FREE) || (nread == 0 && addr == NULL))
		return;
	if (nread < 0) {
		if (u->errfd < 0 || !edge_udp_icmp_errno((int)nread))
			log_warn(LOG_SYS_NET, "udp receive: %s",
				 uv_strerror((int)nread));
		return;
	}
	if (flags & UV_UDP_PARTIAL) {
		u->edge->st.received++;
		u->edge->st.oversized++;
		return;
	}
	memset(&src, 0, sizeof(src));
	memcpy(&src, addr, addr->sa_family == AF_INET6 ?
	       sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	edge_fwd_input(u->edge, &u->tp, 0, &src, buf->base, (size_t)nread);
}

/* Sends the out batch.  A datagram the kernel refuses is dropped and
 * told to edge_fwd_send_failed(); the others still go. */
static void
edge_udp_out_send(struct edge_udp *u)
{
	struct edge_udp_out *o = u->out;
	int i = 0, again = 0, rc;

	while (i < o->n) {
		rc = sendmmsg(u->fd, o->mm + i, (unsigned)(o->n - i), MSG_DONTWAIT);
		if (rc > 0) {
			i += rc;
			again = 0;
			continue;
		}
		rc = -errno;
		if (rc == -EINTR)
			continue;
		/* An earlier datagram's ICMP error, reported by this send
		 * and cleared by it: datagram i has not gone yet. */
		if (u->errfd >= 0 && !again &&
		    edge_udp_icmp_errno(uv_translate_sys_error(-rc))) {
			again = 1;
			continue;
		}
		edge_fwd_send_failed(u->edge, &u->tp, &o->dst[i],
				     o->iov[i].iov_base, o->iov[i].iov_len, rc);
		i++;
		again = 0;
	}
	o->n = 0;
	o->used = 0;
}

static void
edge_udp_on_flush(uv_prepare_t *h)
{
	struct edge_udp *u = h->data;

	uv_prepare_stop(h);
	edge_udp_out_send(u);
}

static int
edge_udp_send(struct edge_tp *tp, const union env_sa *dst, uint64_t conn_id,
	      const char *buf, size_t len)
{
	struct edge_udp *u = (struct edge_udp *)tp;
	struct edge_udp_out *o = u->out;
	int i;

	(void)conn_id;
	if (dst->sa.sa_family != tp->local.sa.sa_family)
		return -EAFNOSUPPORT;
	if (len > EDGE_UDP_DGRAM)
		return -EMSGSIZE;
	if (o->n == EDGE_UDP_OUT || o->used + len > EDGE_UDP_OUT_BYTES)
		edge_udp_out_send(u);
	i = o->n++;
	memcpy(o->buf + o->used, buf, len);
	o->dst[i] = *dst;
	o->iov[i].iov_base = o->buf + o->used;
	o->iov[i].iov_len = len;
	o->mm[i].msg_hdr = (struct msghdr){
		.msg_name = &o->dst[i],
		.msg_namelen = dst->sa.sa_family == AF_INET6 ?
			       sizeof(struct sockaddr_in6) :
			       sizeof(struct sockaddr_in),
		.msg_iov = &o->iov[i],
		.msg_iovlen = 1,
	};
	o->used += len;
	uv_prepare_start(&u->flush, edge_udp_on_flush);
	return 0;
}

int
edge_udp_err_unreachable(const struct msghdr *mh)
{
	const struct sock_extended_err *ee;
	struct cmsghdr *cm;

	for (cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR((struct msghdr *)mh, cm)) {
		if (!((cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR) ||
		      (cm->cmsg_level == SOL_IPV6 &&
		       cm->cmsg_type == IPV6_RECVERR)) ||
		    cm->cmsg_len < CMSG_LEN(sizeof(*ee)))
			continue;
		ee = (const struct sock_extended_err *)CMSG_DATA(cm);
		/* Only what a router or the peer's host said about the
		 * destination; a local error (EMSGSIZE) or a "fragmentation
		 * needed" says nothing of the target's life. */
		if (ee->ee_origin != SO_EE_ORIGIN_ICMP &&
		    ee->ee_origin != SO_EE_ORIGIN_ICMP6)
			continue;
		return ee->ee_errno == ECONNREFUSED ||
		       ee->ee_errno == EHOSTUNREACH ||
		       ee->ee_errno == ENETUNREACH;
	}
	return 0;
}

/* Reads one error-queue entry.  Returns 0, or a negative errno
 * (-EAGAIN: the queue is empty). */
static int
edge_udp_err_read(struct edge_udp *u)
{
	char quote[EDGE_ICMP_QUOTE_MAX], ctl[512];
	union env_sa dst;
	struct iovec iov = { .iov_base = quote, .iov_len = sizeof(quote) };
	struct msghdr mh = {
		.msg_name = &dst, .msg_namelen = sizeof(dst),
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl, .msg_controllen = sizeof(ctl),
	};
	ssize_t n;

	memset(&dst, 0, sizeof(dst));
	n = recvmsg(u->errfd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT);
	if (n < 0)
		return -errno;
	if (edge_udp_err_unreachable(&mh) &&
	    dst.sa.sa_family == u->tp.local.sa.sa_family)
		edge_fwd_unreachable(u->edge, u->tp.transport, &dst, quote,
				     (size_t)n);
	return 0;
}

static void
edge_udp_on_err(uv_poll_t *p, int status, int events)
{
	struct edge_udp *u = p->data;
	int rc = 0;

	(void)status;
	(void)events;
	for (int i = 0; i < EDGE_UDP_ERR_BATCH && rc == 0; i++)
		rc = edge_udp_err_read(u);
	if (rc < 0 && rc != -EAGAIN)
		log_warn(LOG_SYS_NET, "udp error queue: %s", strerror(-rc));
}

static void
edge_udp_on_close(uv_handle_t *h)
{
	struct edge_udp *u = h->data;

	if (--u->open_handles > 0)
		return;
	if (u->errfd >= 0)
		close(u->errfd);
	free(u->rbuf);
	free(u->out);
	free(u);
}

static void
edge_udp_free(struct edge_tp *tp)
{
	struct edge_udp *u = (struct edge_udp *)tp;

	/* What this turn gathered still goes (a stopping edge's last
	 * answers). */
	edge_udp_out_send(u);
	if (u->errfd >= 0)
		uv_close((uv_handle_t *)&u->errp, edge_udp_on_close);
	uv_close((uv_handle_t *)&u->flush, edge_udp_on_close);
	uv_close((uv_handle_t *)&u->h, edge_udp_on_close);
}

/* Turns on the error queue of u's socket fd and its poll; without it
 * (errors are logged) ICMP errors only go unseen, as before. */
static void
edge_udp_errq_start(struct edge_udp *u, int fd)
{
	int one = 1, rc;

	rc = u->tp.local.sa.sa_family == AF_INET6 ?
		setsockopt(fd, SOL_IPV6, IPV6_RECVERR, &one, sizeof(one)) :
		setsockopt(fd, SOL_IP, IP_RECVERR, &one, sizeof(one));
	if (rc < 0 || (u->errfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		log_warn(LOG_SYS_NET, "udp: no ICMP error queue: %s",
			 strerror(errno));
		return;
	}
	u->errp.data = u;
	if ((rc = uv_poll_init(u->edge->loop, &u->errp, u->errfd)) < 0) {
		log_warn(LOG_SYS_NET, "udp: no ICMP error queue: %s",
			 uv_strerror(rc));
		close(u->errfd);
		u->errfd = -1;
		return;
	}
	u->open_handles++;
	rc = uv_poll_start(&u->errp, UV_PRIORITIZED, edge_udp_on_err);
	if (rc < 0) {
		/* A queue nobody empties would keep the socket polling
		 * EPOLLERR: no queue.  The handle closes with u. */
		one = 0;
		(void)(u->tp.local.sa.sa_family == AF_INET6 ?
		       setsockopt(fd, SOL_IPV6, IPV6_RECVERR, &one, sizeof(one)) :
		       setsockopt(fd, SOL_IP, IP_RECVERR, &one, sizeof(one)));
		log_warn(LOG_SYS_NET, "udp: no ICMP error queue: %s",
			 uv_strerror(rc));
	}
}

/*
 * edge_tp_addr() and edge_tp_socket() serve every transport; they are
 * here because UDP is the transport every edge has.
 */
int
edge_tp_addr(const struct edge *e, int transport, union env_sa *sa)
{
	const struct cfg_edge *me = e->me;
	char host[CFG_ADDR_LEN];
	int port, rc;

	rc = cfg_edge_listen(me, transport, host, sizeof(host), &port);
	if (rc == -ENOENT)
		return rc;
	if (env_transport_is(transport, ENV_TP_SECURE) &&
	    (me->tls_cert[0] == '\0' || me->tls_key[0] == '\0')) {
		log_notice(LOG_SYS_MAIN, "edge %d: no tls_cert/tls_key, SIP %s "
			   "off", me->id, env_transport_name(transport));
		return -ENOENT;
	}
	if (rc != 0 || env_sa_from(sa, host, port) != 0) {
		log_err(LOG_SYS_NET, "edge %d %s = %s: not a numeric ip:port",
			me->id, env_transport_key(transport),
			me->listen[transport]);
		return -EINVAL;
	}
	return 0;
}

int
edge_tp_socket(const struct edge *e, int transport, int type, int reuseaddr)
{
	union env_sa sa;
	socklen_t sl;
	int fd, rc, one = 1, defer = e->me->defer_accept_s;

	rc = edge_tp_addr(e, transport, &sa);
	if (rc < 0)
		return rc;
	sl = sa.sa.sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
		sizeof(struct sockaddr_in);
	fd = socket(sa.sa.sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	if ((reuseaddr &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) ||
	    (e->me->reuseport &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    /* One family per socket: no v4-mapped sources to special-case. */
	    (sa.sa.sa_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    /* Every client here speaks first (SIP, TLS, the upgrade).
	     * Accepting at its first bytes wakes the edge once per
	     * connection instead of twice (accept, then data): about a
	     * quarter of the edge's CPU per WebSocket registration.  A
	     * silent connect waits in the kernel, not in the table,
	     * until its SYN-ACK is resent (1, 3, 7 s...), then gets the
	     * handshake deadline as before. */
	    (type == SOCK_STREAM && defer > 0 &&
	     setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer,
			sizeof(defer)) < 0) ||
	    /* SIP goes out at once, not held for a full segment.  The
	     * accepted sockets inherit it: no system call each. */
	    (type == SOCK_STREAM &&
	     setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) ||
	    bind(fd, &sa.sa, sl) < 0) {
		rc = -errno;
		close(fd);
		goto fail;
	}
	return fd;
fail:
	/* The usual cause with edges = N on one host: say what fixes it. */
	log_err(LOG_SYS_NET, "%s bind %s: %s%s", env_transport_name(transport),
		e->me->listen[transport], strerror(-rc),
		rc == -EADDRINUSE && !e->me->reuseport && e->cfg->n_edges > 1 ?
		" (edges of one host share a port only with [edge] reuseport = yes)" :
		"");
	return rc;
}

int
edge_udp_new(struct edge_tp **out, struct edge *e, int transport)
{
	char name[64];
	struct edge_udp *u = NULL;
	socklen_t sl = sizeof(u->tp.local);
	int fd, rc, sz = EDGE_UDP_SOCKBUF;

	fd = edge_tp_socket(e, transport, SOCK_DGRAM, 0);
	if (fd < 0)
		return fd;
	/* Best effort: a smaller buffer only drops earlier under load. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)) < 0)
		log_info(LOG_SYS_NET, "udp: socket buffers: %s", strerror(errno));
	u = calloc(1, sizeof(*u));
	if (u == NULL || (u->rbuf = malloc(EDGE_UDP_RBUF)) == NULL ||
	    (u->out = calloc(1, sizeof(*u->out))) == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	if (getsockname(fd, &u->tp.local.sa, &sl) < 0) {
		rc = -errno;
		goto fail;
	}
	u->tp.transport = transport;
	u->tp.send = edge_udp_send;
	u->tp.free = edge_udp_free;
	u->edge = e;
	u->h.data = u;
	u->errfd = -1;
	u->fd = fd;
	rc = uv_udp_init_ex(e->loop, &u->h, AF_UNSPEC | UV_UDP_RECVMMSG);
	if (rc < 0)
		goto fail;
	uv_prepare_init(e->loop, &u->flush);
	u->flush.data = u;
	/* From here the handles own u: errors close them, the last close
	 * callback frees. */
	u->open_handles = 2;
	rc = uv_udp_open(&u->h, fd);
	if (rc < 0) {
		close(fd);
		uv_close((uv_handle_t *)&u->flush, edge_udp_on_close);
		uv_close((uv_handle_t *)&u->h, edge_udp_on_close);
		return rc;
	}
	edge_udp_errq_start(u, fd);
	rc = uv_udp_recv_start(&u->h, edge_udp_alloc, edge_udp_on_recv);
	if (rc < 0) {
		edge_udp_free(&u->tp);
		return rc;
	}
	log_info(LOG_SYS_NET, "udp: %s", uv_udp_using_recvmmsg(&u->h) ?
		 "recvmmsg batches" : "one recvmsg per datagram");
	log_notice(LOG_SYS_MAIN, "sipmesh-edge %d: SIP %s on %s", e->me->id,
		   env_transport_name(transport),
		   env_sa_str(&u->tp.local, name, sizeof(name)));
	*out = &u->tp;
	return 0;
fail:
	close(fd);
	if (u) {
		free(u->rbuf);
		free(u->out);
	}
	free(u);
	return rc;
}
