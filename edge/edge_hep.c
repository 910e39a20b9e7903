/*
 * edge_hep.c - HEP v3 capture (the Homer project's encapsulation, as
 * Kamailio's siptrace and heplify send it) of every SIP message the
 * edge receives from or sends to a client, to one collector over UDP.
 *
 * The edge is where TLS and WebSocket end, so what it captures is the
 * plaintext a network tap cannot see.  Off unless [edge] hep names a
 * collector.  One datagram per message, sent at once with MSG_DONTWAIT:
 * capture never waits for the collector; what the socket will not take
 * is counted and dropped.  Chunks (HEP3 "generic" vendor 0): family, IP
 * protocol (17 for UDP, 6 for the stream transports: HEP names no TLS
 * or WebSocket), addresses, ports, time, protocol type 1 (SIP), the
 * capture agent id, the auth key when set, the Call-ID as correlation
 * id, and the message.
 */
#include "edge/edge_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

enum {
	HEP_IP_FAMILY = 0x0001,
	HEP_IP_PROTO = 0x0002,
	HEP_IP4_SRC = 0x0003,
	HEP_IP4_DST = 0x0004,
	HEP_IP6_SRC = 0x0005,
	HEP_IP6_DST = 0x0006,
	HEP_SRC_PORT = 0x0007,
	HEP_DST_PORT = 0x0008,
	HEP_TS_SEC = 0x0009,
	HEP_TS_USEC = 0x000a,
	HEP_PROTO_TYPE = 0x000b,
	HEP_AGENT_ID = 0x000c,
	HEP_AUTH_KEY = 0x000e,
	HEP_PAYLOAD = 0x000f,
	HEP_CORRELATION = 0x0011,
};

#define HEP_PROTO_SIP 1
#define HEP_CHUNK_HDR 6		/* vendor, type, length: 16 bits each */

/* Appends one chunk at *o; -EMSGSIZE when it does not fit (a HEP
 * packet's length field is 16 bits, and so is a chunk's). */
static int
hep_chunk(unsigned char *out, size_t cap, size_t *o, unsigned type,
	  const void *v, size_t len)
{
	size_t n = HEP_CHUNK_HDR + len;

	if (n > 0xffff || *o + n > cap)
		return -EMSGSIZE;
	out[*o] = 0;
	out[*o + 1] = 0;
	out[*o + 2] = (unsigned char)(type >> 8);
	out[*o + 3] = (unsigned char)type;
	out[*o + 4] = (unsigned char)(n >> 8);
	out[*o + 5] = (unsigned char)n;
	memcpy(out + *o + HEP_CHUNK_HDR, v, len);
	*o += n;
	return 0;
}

static int
hep_u8(unsigned char *out, size_t cap, size_t *o, unsigned type, unsigned v)
{
	unsigned char b = (unsigned char)v;

	return hep_chunk(out, cap, o, type, &b, 1);
}

static int
hep_u16(unsigned char *out, size_t cap, size_t *o, unsigned type, unsigned v)
{
	unsigned char b[2] = { (unsigned char)(v >> 8), (unsigned char)v };

	return hep_chunk(out, cap, o, type, b, 2);
}

static int
hep_u32(unsigned char *out, size_t cap, size_t *o, unsigned type, uint32_t v)
{
	unsigned char b[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16),
			       (unsigned char)(v >> 8), (unsigned char)v };

	return hep_chunk(out, cap, o, type, b, 4);
}

int
edge_hep_encode(unsigned char *out, size_t cap, const struct edge_hep_pkt *p)
{
	int v6 = p->src->sa.sa_family == AF_INET6;
	size_t o = 6;
	int rc;

	if (p->dst->sa.sa_family != p->src->sa.sa_family || cap < o)
		return -EINVAL;
	rc = hep_u8(out, cap, &o, HEP_IP_FAMILY, v6 ? 10 : 2);
	if (rc == 0)
		rc = hep_u8(out, cap, &o, HEP_IP_PROTO, p->ip_proto);
	if (rc == 0 && v6) {
		rc = hep_chunk(out, cap, &o, HEP_IP6_SRC,
			       &p->src->in6.sin6_addr, 16);
		if (rc == 0)
			rc = hep_chunk(out, cap, &o, HEP_IP6_DST,
				       &p->dst->in6.sin6_addr, 16);
	} else if (rc == 0) {
		rc = hep_chunk(out, cap, &o, HEP_IP4_SRC,
			       &p->src->in.sin_addr, 4);
		if (rc == 0)
			rc = hep_chunk(out, cap, &o, HEP_IP4_DST,
				       &p->dst->in.sin_addr, 4);
	}
	if (rc == 0)
		rc = hep_u16(out, cap, &o, HEP_SRC_PORT,
			     (unsigned)env_sa_port(p->src));
	if (rc == 0)
		rc = hep_u16(out, cap, &o, HEP_DST_PORT,
			     (unsigned)env_sa_port(p->dst));
	if (rc == 0)
		rc = hep_u32(out, cap, &o, HEP_TS_SEC, (uint32_t)p->sec);
	if (rc == 0)
		rc = hep_u32(out, cap, &o, HEP_TS_USEC, p->usec);
	if (rc == 0)
		rc = hep_u8(out, cap, &o, HEP_PROTO_TYPE, HEP_PROTO_SIP);
	if (rc == 0)
		rc = hep_u32(out, cap, &o, HEP_AGENT_ID, p->agent_id);
	if (rc == 0 && p->auth_len)
		rc = hep_chunk(out, cap, &o, HEP_AUTH_KEY, p->auth,
			       p->auth_len);
	if (rc == 0 && p->corr_len)
		rc = hep_chunk(out, cap, &o, HEP_CORRELATION, p->corr,
			       p->corr_len);
	if (rc == 0)
		rc = hep_chunk(out, cap, &o, HEP_PAYLOAD, p->msg, p->len);
	if (rc < 0)
		return rc;
	if (o > 0xffff)
		return -EMSGSIZE;
	memcpy(out, "HEP3", 4);
	out[4] = (unsigned char)(o >> 8);
	out[5] = (unsigned char)o;
	return (int)o;
}

int
edge_hep_open(struct edge_hep *h, const struct cfg_edge *me)
{
	char host[CFG_ADDR_LEN];
	int port, rc;

	memset(h, 0, sizeof(*h));
	h->fd = -1;
	if (me->hep[0] == '\0')
		return 0;
	if (cfg_addr_split(me->hep, host, sizeof(host), &port, 9060) != 0 ||
	    env_sa_from(&h->dst, host, port) != 0) {
		log_err(LOG_SYS_MAIN, "edge %d hep = %s: not a numeric ip:port",
			me->id, me->hep);
		return -EINVAL;
	}
	h->buf = malloc(EDGE_HEP_MAX);
	if (h->buf == NULL)
		return -ENOMEM;
	h->fd = socket(h->dst.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK |
		       SOCK_CLOEXEC, 0);
	if (h->fd < 0) {
		rc = -errno;
		log_err(LOG_SYS_NET, "edge %d hep socket: %s", me->id,
			strerror(-rc));
		free(h->buf);
		h->buf = NULL;
		return rc;
	}
	h->agent_id = me->hep_id ? (uint32_t)me->hep_id : (uint32_t)me->id;
	h->auth = me->hep_password;
	log_notice(LOG_SYS_MAIN, "sipmesh-edge %d: HEP v3 capture to %s "
		   "(agent id %u)", me->id, me->hep, h->agent_id);
	return 0;
}

void
edge_hep_close(struct edge_hep *h)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	free(h->buf);
	h->buf = NULL;
}

void
edge_hep_capture(struct edge *e, int transport, const union env_sa *src,
		 const union env_sa *dst, const char *msg, size_t len)
{
	struct edge_hep *h = &e->hep;
	struct edge_hep_pkt p;
	struct edge_sip_scan sc;
	struct timespec ts;
	socklen_t sl;
	int n;

	if (h->fd < 0)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	memset(&p, 0, sizeof(p));
	p.src = src;
	p.dst = dst;
	p.ip_proto = env_transport_is(transport, ENV_TP_STREAM) ? 6 : 17;
	p.sec = (uint64_t)ts.tv_sec;
	p.usec = (uint32_t)(ts.tv_nsec / 1000);
	p.agent_id = h->agent_id;
	p.auth = h->auth;
	p.auth_len = strlen(h->auth);
	/* Homer groups a call's messages by this: the Call-ID. */
	if (edge_sip_scan(&sc, msg, len) == 0 &&
	    sc.first[EDGE_H_CALL_ID].line.s != NULL) {
		p.corr = sc.first[EDGE_H_CALL_ID].value.s;
		p.corr_len = sc.first[EDGE_H_CALL_ID].value.len;
	}
	p.msg = msg;
	p.len = len;
	n = edge_hep_encode(h->buf, EDGE_HEP_MAX, &p);
	if (n < 0) {
		e->st.hep_dropped++;
		return;
	}
	sl = h->dst.sa.sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
		sizeof(struct sockaddr_in);
	if (sendto(h->fd, h->buf, (size_t)n, MSG_DONTWAIT, &h->dst.sa, sl) < 0)
		e->st.hep_dropped++;
	else
		e->st.hep_sent++;
}
