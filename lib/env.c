/*
 * env.c - envelope codec, see env.h for the wire format.  Fixed
 * offsets, no allocation: encoding is a few stores and a memcpy or
 * two (the peer names, when a TLS client proved some, then the message).
 * Also the transport table of env.h as data: properties are one
 * array index, parsing a name is a scan of its five rows.
 */
#include "lib/env.h"
#include "lib/sip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static void
put16(char *p, uint16_t v)
{
	p[0] = (char)(v >> 8);
	p[1] = (char)v;
}

static void
put32(char *p, uint32_t v)
{
	p[0] = (char)(v >> 24);
	p[1] = (char)(v >> 16);
	p[2] = (char)(v >> 8);
	p[3] = (char)v;
}

static uint16_t
get16(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return (uint16_t)(u[0] << 8 | u[1]);
}

static uint32_t
get32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 |
	       (uint32_t)u[2] << 8 | u[3];
}

static int
sa_put(char *p, const union env_sa *sa)
{
	memset(p, 0, 20);
	switch (sa->sa.sa_family) {
	case AF_UNSPEC:
		return 0;
	case AF_INET:
		p[0] = 4;
		memcpy(p + 2, &sa->in.sin_port, 2);
		memcpy(p + 4, &sa->in.sin_addr, 4);
		return 0;
	case AF_INET6:
		p[0] = 6;
		memcpy(p + 2, &sa->in6.sin6_port, 2);
		memcpy(p + 4, &sa->in6.sin6_addr, 16);
		return 0;
	}
	return -EINVAL;
}

static int
sa_get(const char *p, union env_sa *sa)
{
	memset(sa, 0, sizeof(*sa));
	switch (p[0]) {
	case 0:
		sa->sa.sa_family = AF_UNSPEC;
		return 0;
	case 4:
		sa->in.sin_family = AF_INET;
		memcpy(&sa->in.sin_port, p + 2, 2);
		memcpy(&sa->in.sin_addr, p + 4, 4);
		return 0;
	case 6:
		sa->in6.sin6_family = AF_INET6;
		memcpy(&sa->in6.sin6_port, p + 2, 2);
		memcpy(&sa->in6.sin6_addr, p + 4, 16);
		return 0;
	}
	return -EINVAL;
}

int
env_names_valid(const char *s, size_t len)
{
	size_t run = 0;

	if (len > ENV_NAMES_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];

		if (ch == ' ') {
			/* no empty name: not first, not last, never two */
			if (run == 0 || i + 1 == len)
				return 0;
			run = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      ch == '-' || ch == '.') || ++run > 253)
			return 0;
	}
	return 1;
}

int
env_names_has(const struct env *e, const char *name, size_t len)
{
	const char *p = e->names, *end;

	/* end only after the NULL test: NULL + 0 is undefined behaviour. */
	if (e->names == NULL || len == 0)
		return 0;
	end = e->names + e->names_len;
	while (p < end) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		size_t n = sp ? (size_t)(sp - p) : (size_t)(end - p);

		if (n == len && strncasecmp(p, name, len) == 0)
			return 1;
		p += n + 1;
	}
	return 0;
}

int
env_encode(const struct env *e, char *buf, size_t cap)
{
	size_t nl = e->names ? e->names_len : 0;

	if (cap < ENV_HDR_LEN || nl > cap - ENV_HDR_LEN ||
	    e->len > cap - ENV_HDR_LEN - nl)
		return -ENOSPC;
	if (e->len > UINT32_MAX || !env_names_valid(e->names, nl))
		return -EINVAL;
	buf[0] = 'S';
	buf[1] = 'M';
	buf[2] = ENV_VERSION;
	buf[3] = (char)e->type;
	buf[4] = (char)e->transport;
	buf[5] = (char)e->flags;
	put16(buf + 6, e->edge_id);
	put32(buf + 8, ENV_CONN_INC(e->conn_id));
	put32(buf + 12, ENV_CONN_SERIAL(e->conn_id));
	if (sa_put(buf + 16, &e->src) || sa_put(buf + 36, &e->local))
		return -EINVAL;
	put16(buf + 56, e->core_id);
	put16(buf + 58, (uint16_t)nl);
	put32(buf + 60, (uint32_t)e->len);
	if (nl)
		memcpy(buf + ENV_HDR_LEN, e->names, nl);
	if (e->len)
		memcpy(buf + ENV_HDR_LEN + nl, e->msg, e->len);
	return (int)(ENV_HDR_LEN + nl + e->len);
}

int
env_decode(struct env *e, const char *buf, size_t len)
{
	uint32_t mlen;
	uint16_t nl;

	if (len < 3 || buf[0] != 'S' || buf[1] != 'M')
		return -EPROTO;
	if (buf[2] != ENV_VERSION)
		return -EPROTO;
	if (len < ENV_HDR_LEN)
		return -EINVAL;
	memset(e, 0, sizeof(*e));
	e->type = (uint8_t)buf[3];
	e->transport = (uint8_t)buf[4];
	e->flags = (uint8_t)buf[5];
	e->edge_id = get16(buf + 6);
	e->conn_id = ENV_CONN_ID(get32(buf + 8), get32(buf + 12));
	if (sa_get(buf + 16, &e->src) || sa_get(buf + 36, &e->local))
		return -EINVAL;
	e->core_id = get16(buf + 56);
	nl = get16(buf + 58);
	mlen = get32(buf + 60);
	if (nl > len - ENV_HDR_LEN || mlen != len - ENV_HDR_LEN - nl)
		return -EINVAL;
	if (e->type != ENV_SIP && e->type != ENV_CONN_CLOSED &&
	    e->type != ENV_REJECT)
		return -EINVAL;
	if (nl && (e->type != ENV_SIP ||
		   !env_names_valid(buf + ENV_HDR_LEN, nl)))
		return -EINVAL;
	if (!env_transport_valid(e->transport))
		return -EINVAL;
	/* Serials count from 1: an incarnation alone names nothing. */
	if (e->conn_id != 0 && ENV_CONN_SERIAL(e->conn_id) == 0)
		return -EINVAL;
	if (nl) {
		e->names = buf + ENV_HDR_LEN;
		e->names_len = nl;
	}
	e->msg = buf + ENV_HDR_LEN + nl;
	e->len = mlen;
	return 0;
}

char *
env_sa_ip(const union env_sa *sa, char *out, size_t len)
{
	if (sa->sa.sa_family == AF_INET) {
		/* every UDP request's received=: glibc's inet_ntop formats
		 * an IPv4 address with sprintf */
		const unsigned char *b = (const unsigned char *)&sa->in.sin_addr;
		struct sip_cat c;

		sip_cat_init(&c, out, len);
		for (int i = 0; i < 4; i++) {
			if (i)
				sip_cat_ch(&c, '.');
			sip_cat_uint(&c, b[i]);
		}
		return out;
	}
	if (sa->sa.sa_family != AF_INET6) {
		sip_copy(out, len, "-");
		return out;
	}
	if (inet_ntop(AF_INET6, &sa->in6.sin6_addr, out, (socklen_t)len) == NULL)
		snprintf(out, len, "?");
	return out;
}

size_t
env_sa_ip_len(const union env_sa *sa)
{
	char ip[INET6_ADDRSTRLEN];

	if (sa->sa.sa_family == AF_INET) {
		const unsigned char *b = (const unsigned char *)&sa->in.sin_addr;
		size_t n = 3;	/* the dots */

		for (int i = 0; i < 4; i++)
			n += 1 + (b[i] >= 10) + (b[i] >= 100);
		return n;
	}
	return strlen(env_sa_ip(sa, ip, sizeof(ip)));
}

int
env_sa_addr_eq(const union env_sa *a, const union env_sa *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return 0;
	if (a->sa.sa_family == AF_INET)
		return a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
	return a->sa.sa_family == AF_INET6 &&
	       memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16) == 0;
}

int
env_sa_port(const union env_sa *sa)
{
	if (sa->sa.sa_family == AF_INET6)
		return ntohs(sa->in6.sin6_port);
	if (sa->sa.sa_family == AF_INET)
		return ntohs(sa->in.sin_port);
	return 0;
}

int
env_sa_is_any(const union env_sa *sa)
{
	if (sa->sa.sa_family == AF_INET)
		return sa->in.sin_addr.s_addr == htonl(INADDR_ANY);
	return sa->sa.sa_family == AF_INET6 &&
	       IN6_IS_ADDR_UNSPECIFIED(&sa->in6.sin6_addr);
}

char *
env_sa_str(const union env_sa *sa, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	env_sa_ip(sa, ip, sizeof(ip));
	if (sa->sa.sa_family == AF_INET6)
		snprintf(out, len, "[%s]:%d", ip, env_sa_port(sa));
	else
		snprintf(out, len, "%s:%d", ip, env_sa_port(sa));
	return out;
}

int
env_sa_from(union env_sa *sa, const char *ip, int port)
{
	memset(sa, 0, sizeof(*sa));
	if (port < 0 || port > 65535)
		return -EINVAL;
	if (inet_pton(AF_INET, ip, &sa->in.sin_addr) == 1) {
		sa->in.sin_family = AF_INET;
		sa->in.sin_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &sa->in6.sin6_addr) == 1) {
		sa->in6.sin6_family = AF_INET6;
		sa->in6.sin6_port = htons((uint16_t)port);
		return 0;
	}
	return -EINVAL;
}

/* The table of env.h as data; index 0 is ENV_TP_NONE and stays empty. */
static const struct env_tp {
	const char *name, *key;
	int port;
	unsigned flags;
} env_tps[ENV_TP_END] = {
#define ENV_TP_ROW(id, k, p, f, impl) \
	[ENV_##id] = { .name = #id, .key = #k, .port = p, .flags = f },
	ENV_TRANSPORTS(ENV_TP_ROW)
#undef ENV_TP_ROW
};

int
env_transport_valid(int transport)
{
	return transport > ENV_TP_NONE && transport < ENV_TP_END;
}

const char *
env_transport_name(int transport)
{
	return env_transport_valid(transport) ? env_tps[transport].name : "?";
}

const char *
env_transport_key(int transport)
{
	return env_transport_valid(transport) ? env_tps[transport].key : "?";
}

int
env_transport_parse(const char *s, size_t len)
{
	for (int t = ENV_TP_NONE + 1; t < ENV_TP_END; t++)
		if (strlen(env_tps[t].key) == len &&
		    strncasecmp(env_tps[t].key, s, len) == 0)
			return t;
	return -EINVAL;
}

int
env_transport_is(int transport, unsigned flags)
{
	return env_transport_valid(transport) &&
	       (env_tps[transport].flags & flags) == flags;
}

int
env_transport_port(int transport)
{
	return env_transport_valid(transport) ? env_tps[transport].port : 0;
}

int
env_transport_sip_port(int transport)
{
	return env_transport_is(transport, ENV_TP_SECURE) ? 5061 : 5060;
}
