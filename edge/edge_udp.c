/*
 * edge_udp.c - SIP over UDP: one socket, datagrams in and out.
 *
 * The socket is made here (SO_REUSEPORT, IPV6_V6ONLY and large kernel
 * buffers need setting before bind) and handed to libuv, which reads
 * it with recvmmsg(2): one system call fetches up to
 * EDGE_UDP_BATCH datagrams into one receive buffer allocated at start,
 * and each datagram goes straight to edge_fwd_input() from that buffer.
 * Sends use uv_udp_try_send() and never queue: a full socket buffer is
 * a counted drop, as it would be on the wire.
 */
#include "edge/edge_int.h"
#include "lib/log.h"

#include <errno.h>
#include <netinet/in.h>
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

struct edge_udp {
	struct edge_tp tp;	/* first, so an edge_tp * is an edge_udp * */
	struct edge *edge;
	uv_udp_t h;
	char *rbuf;
};

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
		log_warn(LOG_SYS_NET, "udp receive: %s", uv_strerror((int)nread));
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

static int
edge_udp_send(struct edge_tp *tp, const union env_sa *dst, uint64_t conn_id,
	      const char *buf, size_t len)
{
	struct edge_udp *u = (struct edge_udp *)tp;
	uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
	int rc;

	(void)conn_id;
	if (dst->sa.sa_family != tp->local.sa.sa_family)
		return -EAFNOSUPPORT;
	rc = uv_udp_try_send(&u->h, &b, 1, &dst->sa);
	return rc < 0 ? rc : 0;
}

static void
edge_udp_on_close(uv_handle_t *h)
{
	struct edge_udp *u = h->data;

	free(u->rbuf);
	free(u);
}

static void
edge_udp_free(struct edge_tp *tp)
{
	struct edge_udp *u = (struct edge_udp *)tp;

	uv_close((uv_handle_t *)&u->h, edge_udp_on_close);
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
	int fd, rc, one = 1;

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
	if (u == NULL || (u->rbuf = malloc(EDGE_UDP_RBUF)) == NULL) {
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
	rc = uv_udp_init_ex(e->loop, &u->h, AF_UNSPEC | UV_UDP_RECVMMSG);
	if (rc < 0)
		goto fail;
	/* From here the handle owns u: errors close it, its callback frees. */
	rc = uv_udp_open(&u->h, fd);
	if (rc < 0) {
		close(fd);
		uv_close((uv_handle_t *)&u->h, edge_udp_on_close);
		return rc;
	}
	rc = uv_udp_recv_start(&u->h, edge_udp_alloc, edge_udp_on_recv);
	if (rc < 0) {
		uv_close((uv_handle_t *)&u->h, edge_udp_on_close);
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
	if (u)
		free(u->rbuf);
	free(u);
	return rc;
}
