/*
 * loc_codec.c - the value of a binding in Redis (loc_redis.c): a
 * compact, versioned binary form, and the hash field it is stored
 * under.  Kept apart because it is the one piece of the Redis schema
 * every host must agree on, and it takes hostile input: a value read
 * from Redis is checked field by field before it reaches the store.
 *
 * Format: 'L', codec version, then (V2, V3) the binding's version and
 * origin, the fixed fields in network order, then each string as a u16
 * length and its bytes.  V3 widens conn_id to the u64 of lib/env.h
 * (edge incarnation, serial).  Older values still decode: V1 as version
 * 0; V1 and V2 with their u32 conn id as a serial of incarnation 0,
 * which no edge process holds, so a flow stored before incarnations
 * existed fails at first use (430, the binding goes) instead of
 * reaching whoever holds that serial now; their UDP bindings (conn id
 * 0) stay as they were.  Cost: one pass over ~200-1200 bytes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lib/sip.h"
#include "location/loc_int.h"

#define LOC_CODEC_V1     1
#define LOC_CODEC_V2     2	/* V1 with version and origin after the
				   header */
#define LOC_CODEC_V3     3	/* V2 with a u64 conn_id */

struct loc_wr {
	char *p, *end;
};

static void
loc_put(struct loc_wr *w, const void *v, size_t n)
{
	if (w->p && (size_t)(w->end - w->p) >= n) {
		memcpy(w->p, v, n);
		w->p += n;
	} else {
		w->p = NULL;
	}
}

static void
loc_put_u16(struct loc_wr *w, uint16_t v)
{
	v = htons(v);
	loc_put(w, &v, 2);
}

static void
loc_put_u32(struct loc_wr *w, uint32_t v)
{
	v = htonl(v);
	loc_put(w, &v, 4);
}

static void
loc_put_str(struct loc_wr *w, const char *s)
{
	size_t n = strlen(s);

	loc_put_u16(w, (uint16_t)n);
	loc_put(w, s, n);
}

/* Returns the bytes written to buf, or -ENOSPC. */
int
loc_binding_encode(const struct loc_binding *b, char *buf, size_t cap)
{
	struct loc_wr w = { buf, buf + cap };
	uint8_t hdr[2] = { 'L', LOC_CODEC_V3 };
	uint8_t addr[16] = { 0 }, fam = 0;
	uint16_t port = 0;

	if (b->received.sa.sa_family == AF_INET) {
		fam = 4;
		port = ntohs(b->received.in.sin_port);
		memcpy(addr, &b->received.in.sin_addr, 4);
	} else if (b->received.sa.sa_family == AF_INET6) {
		fam = 6;
		port = ntohs(b->received.in6.sin6_port);
		memcpy(addr, &b->received.in6.sin6_addr, 16);
	}
	loc_put(&w, hdr, 2);
	loc_put_u32(&w, (uint32_t)((uint64_t)b->version >> 32));
	loc_put_u32(&w, (uint32_t)b->version);
	loc_put_u32(&w, (uint32_t)(b->origin >> 32));
	loc_put_u32(&w, (uint32_t)b->origin);
	loc_put_u32(&w, (uint32_t)((uint64_t)b->expires >> 32));
	loc_put_u32(&w, (uint32_t)b->expires);
	loc_put_u32(&w, b->cseq);
	loc_put_u16(&w, b->q);
	loc_put(&w, &b->transport, 1);
	loc_put(&w, &b->flags, 1);
	loc_put_u16(&w, b->edge_id);
	loc_put_u32(&w, ENV_CONN_INC(b->conn_id));
	loc_put_u32(&w, ENV_CONN_SERIAL(b->conn_id));
	loc_put_u32(&w, b->reg_id);
	loc_put(&w, &fam, 1);
	loc_put_u16(&w, port);
	loc_put(&w, addr, 16);
	loc_put_str(&w, b->aor);
	loc_put_str(&w, b->contact);
	loc_put_str(&w, b->callid);
	loc_put_str(&w, b->instance);
	loc_put_str(&w, b->user_agent);
	loc_put_str(&w, b->path);
	return w.p ? (int)(w.p - buf) : -ENOSPC;
}

struct loc_rd {
	const unsigned char *p, *end;
	int bad;
};

static const unsigned char *
loc_get(struct loc_rd *r, size_t n)
{
	const unsigned char *p = r->p;

	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = 1;
		return NULL;
	}
	r->p += n;
	return p;
}

static uint32_t
loc_get_u(struct loc_rd *r, size_t n)
{
	const unsigned char *p = loc_get(r, n);
	uint32_t v = 0;

	for (size_t i = 0; p && i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static void
loc_get_str(struct loc_rd *r, char *dst, size_t cap)
{
	size_t n = loc_get_u(r, 2);
	const unsigned char *p;

	if (n >= cap)
		r->bad = 1;
	p = loc_get(r, n);
	if (!p || memchr(p, '\0', n)) {
		r->bad = 1;
		return;
	}
	memcpy(dst, p, n);
	dst[n] = '\0';
}

/* Fills *b from buf; 0, or -EPROTO for anything malformed. */
int
loc_binding_decode(struct loc_binding *b, const char *buf, size_t len)
{
	struct loc_rd r = { (const unsigned char *)buf,
			    (const unsigned char *)buf + len, 0 };
	const unsigned char *h = loc_get(&r, 2), *addr;
	uint32_t hi, fam, port;

	memset(b, 0, sizeof(*b));
	if (!h || h[0] != 'L' || h[1] < LOC_CODEC_V1 || h[1] > LOC_CODEC_V3)
		return -EPROTO;
	if (h[1] >= LOC_CODEC_V2) {
		hi = loc_get_u(&r, 4);
		b->version = (int64_t)((uint64_t)hi << 32 | loc_get_u(&r, 4));
		hi = loc_get_u(&r, 4);
		b->origin = (uint64_t)hi << 32 | loc_get_u(&r, 4);
	}
	hi = loc_get_u(&r, 4);
	b->expires = (int64_t)((uint64_t)hi << 32 | loc_get_u(&r, 4));
	b->cseq = loc_get_u(&r, 4);
	b->q = (uint16_t)loc_get_u(&r, 2);
	b->transport = (uint8_t)loc_get_u(&r, 1);
	b->flags = (uint8_t)loc_get_u(&r, 1);
	b->edge_id = (uint16_t)loc_get_u(&r, 2);
	hi = h[1] >= LOC_CODEC_V3 ? loc_get_u(&r, 4) : 0;
	b->conn_id = ENV_CONN_ID(hi, loc_get_u(&r, 4));
	if (b->conn_id != 0 && ENV_CONN_SERIAL(b->conn_id) == 0)
		r.bad = 1;
	b->reg_id = loc_get_u(&r, 4);
	fam = loc_get_u(&r, 1);
	port = loc_get_u(&r, 2);
	addr = loc_get(&r, 16);
	if (addr && fam == 4) {
		b->received.in.sin_family = AF_INET;
		b->received.in.sin_port = htons((uint16_t)port);
		memcpy(&b->received.in.sin_addr, addr, 4);
	} else if (addr && fam == 6) {
		b->received.in6.sin6_family = AF_INET6;
		b->received.in6.sin6_port = htons((uint16_t)port);
		memcpy(&b->received.in6.sin6_addr, addr, 16);
	} else if (fam != 0) {
		r.bad = 1;
	}
	loc_get_str(&r, b->aor, sizeof(b->aor));
	loc_get_str(&r, b->contact, sizeof(b->contact));
	loc_get_str(&r, b->callid, sizeof(b->callid));
	loc_get_str(&r, b->instance, sizeof(b->instance));
	loc_get_str(&r, b->user_agent, sizeof(b->user_agent));
	loc_get_str(&r, b->path, sizeof(b->path));
	if (r.bad || r.p != r.end || !b->aor[0] || !b->contact[0])
		return -EPROTO;
	return 0;
}

/* The hash field of b (see the schema).  Returns its length, or -E2BIG
 * when cap is short (LOC_FIELD_MAX never is). */
int
loc_binding_field(const struct loc_binding *b, char *buf, size_t cap)
{
	struct sip_cat f;

	sip_cat_init(&f, buf, cap);
	if (b->instance[0]) {
		sip_cat_mem(&f, "i:", 2);
		sip_cat_str(&f, b->instance);
		sip_cat_ch(&f, ':');
		sip_cat_uint(&f, b->reg_id);
	} else {
		sip_cat_mem(&f, "c:", 2);
		sip_cat_str(&f, b->contact);
	}
	return sip_cat_len(&f);
}
