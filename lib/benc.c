/*
 * benc.c - bencode encoder and strict zero-copy decoder, see benc.h.
 *
 * The decoder is one loop over the input with an explicit stack of
 * open containers (at most BENC_MAX_DEPTH), so a hostile "llll..."
 * costs neither recursion nor memory.  A string length is read digit
 * by digit and refused as soon as it exceeds the bytes left, which
 * also keeps it from overflowing.
 */
#include "lib/benc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void
benc_enc_init(struct benc_enc *e, char *buf, size_t cap)
{
	e->buf = buf;
	e->cap = cap;
	e->len = 0;
	e->depth = 0;
	e->err = 0;
}

static void
benc_put(struct benc_enc *e, const void *p, size_t n)
{
	if (e->err)
		return;
	if (e->cap - e->len < n) {
		e->err = -ENOSPC;
		return;
	}
	memcpy(e->buf + e->len, p, n);
	e->len += n;
}

void
benc_put_str(struct benc_enc *e, const char *s, size_t len)
{
	char hdr[24];
	int n = snprintf(hdr, sizeof(hdr), "%zu:", len);

	benc_put(e, hdr, (size_t)n);
	benc_put(e, s, len);
}

void
benc_put_cstr(struct benc_enc *e, const char *s)
{
	benc_put_str(e, s, strlen(s));
}

void
benc_put_int(struct benc_enc *e, int64_t v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "i%llde", (long long)v);

	benc_put(e, tmp, (size_t)n);
}

void
benc_put_dict(struct benc_enc *e)
{
	benc_put(e, "d", 1);
	e->depth++;
}

void
benc_put_list(struct benc_enc *e)
{
	benc_put(e, "l", 1);
	e->depth++;
}

void
benc_put_end(struct benc_enc *e)
{
	benc_put(e, "e", 1);
	if (--e->depth < 0 && e->err == 0)
		e->err = -EINVAL;
}

void
benc_put_raw(struct benc_enc *e, const char *raw, size_t len)
{
	benc_put(e, raw, len);
}

void
benc_put_kv(struct benc_enc *e, const char *key, const char *val)
{
	benc_put_cstr(e, key);
	benc_put_cstr(e, val);
}

int
benc_enc_finish(const struct benc_enc *e)
{
	if (e->err)
		return e->err;
	if (e->depth != 0)
		return -EINVAL;
	return (int)e->len;
}

/* ---- decoding ---- */

static int
benc_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Reads "i<int>e" at buf[*pos]; no leading zeros, no "-0", no empty
 * number, no overflow of int64_t.
 */
static int
benc_read_int(const char *buf, size_t len, size_t *pos, int64_t *out)
{
	size_t p = *pos + 1, start;
	uint64_t v = 0, lim = INT64_MAX;
	int neg = 0;

	if (p < len && buf[p] == '-') {
		neg = 1;
		lim = (uint64_t)INT64_MAX + 1;
		p++;
	}
	start = p;
	while (p < len && benc_is_digit(buf[p])) {
		unsigned d = (unsigned)(buf[p] - '0');

		if (v > (lim - d) / 10)
			return -EPROTO;
		v = v * 10 + d;
		p++;
	}
	if (p == start || p >= len || buf[p] != 'e')
		return -EPROTO;
	if (buf[start] == '0' && (p - start > 1 || neg))
		return -EPROTO;		/* "i03e", "i-0e" */
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	*pos = p + 1;
	return 0;
}

/* Reads "<len>:<bytes>" at buf[*pos]; the length must fit what is left. */
static int
benc_read_str(const char *buf, size_t len, size_t *pos, const char **s,
	      size_t *slen)
{
	size_t p = *pos, start = p, v = 0;

	while (p < len && benc_is_digit(buf[p])) {
		v = v * 10 + (size_t)(buf[p] - '0');
		if (v > len)	/* more than the whole input: refuse now */
			return -EPROTO;
		p++;
	}
	if (p == start || p >= len || buf[p] != ':')
		return -EPROTO;
	if (buf[start] == '0' && p - start > 1)
		return -EPROTO;		/* "03:abc" */
	p++;
	if (v > len - p)
		return -EPROTO;		/* truncated */
	*s = buf + p;
	*slen = v;
	*pos = p + v;
	return 0;
}

int
benc_decode(struct benc_node *nodes, int cap, const char *buf, size_t len)
{
	struct { int idx, items; } stk[BENC_MAX_DEPTH];
	int depth = 0, n = 0, rc;
	size_t pos = 0;

	for (;;) {
		struct benc_node *nd;
		char c;

		if (pos >= len)
			return -EPROTO;		/* truncated */
		c = buf[pos];
		if (c == 'e' && depth > 0) {
			int items = stk[depth - 1].items;

			nd = &nodes[stk[depth - 1].idx];
			if (nd->type == BENC_DICT && (items & 1))
				return -EPROTO;	/* a key without value */
			nd->count = nd->type == BENC_DICT ? items / 2 : items;
			nd->span = n - stk[depth - 1].idx;
			pos++;
			nd->raw_len = (size_t)(buf + pos - nd->raw);
			if (--depth == 0)
				break;
			stk[depth - 1].items++;
			continue;
		}
		if (depth > 0 && nodes[stk[depth - 1].idx].type == BENC_DICT &&
		    !(stk[depth - 1].items & 1) && !benc_is_digit(c))
			return -EPROTO;		/* keys are strings */
		if (n == cap)
			return -ENOSPC;
		nd = &nodes[n];
		memset(nd, 0, sizeof(*nd));
		nd->raw = buf + pos;
		nd->span = 1;
		switch (c) {
		case 'i':
			nd->type = BENC_INT;
			rc = benc_read_int(buf, len, &pos, &nd->i);
			break;
		case 'l':
		case 'd':
			if (depth == BENC_MAX_DEPTH)
				return -EPROTO;
			nd->type = c == 'l' ? BENC_LIST : BENC_DICT;
			stk[depth].idx = n++;
			stk[depth].items = 0;
			depth++;
			pos++;
			continue;
		default:
			if (!benc_is_digit(c))
				return -EPROTO;
			nd->type = BENC_STR;
			rc = benc_read_str(buf, len, &pos, &nd->s, &nd->len);
			break;
		}
		if (rc < 0)
			return rc;
		nd->raw_len = (size_t)(buf + pos - nd->raw);
		n++;
		if (depth == 0)
			break;
		stk[depth - 1].items++;
	}
	if (pos != len)
		return -EPROTO;			/* trailing bytes */
	return n;
}

int
benc_str_eq(const struct benc_node *n, const char *s)
{
	size_t l = strlen(s);

	return n && n->type == BENC_STR && n->len == l &&
	       memcmp(n->s, s, l) == 0;
}

const struct benc_node *
benc_dict_get(const struct benc_node *dict, const char *key)
{
	const struct benc_node *p;

	if (dict == NULL || dict->type != BENC_DICT)
		return NULL;
	p = dict + 1;
	for (int i = 0; i < dict->count; i++) {
		const struct benc_node *val = p + 1;

		if (benc_str_eq(p, key))
			return val;
		p = val + val->span;
	}
	return NULL;
}

const char *
benc_dict_str(const struct benc_node *dict, const char *key, size_t *len)
{
	const struct benc_node *v = benc_dict_get(dict, key);

	if (v == NULL || v->type != BENC_STR)
		return NULL;
	*len = v->len;
	return v->s;
}
