/*
 * digest.c - digest credentials, responses, stateless nonces and the
 * nonce-count table (see digest.h for the scheme and why the nonce is
 * bound to the Call-ID).
 *
 * Cost of a verification: one HMAC-SHA256 over the nonce's fields, two
 * hashes of the algorithm (HA2, response) and one probe run in the
 * nonce-count table; no allocation but OpenSSL's context objects.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "lib/digest.h"

#define NONCE_MAC_LEN	16
#define NONCE_RAW_LEN	(8 + 4 + NONCE_MAC_LEN)
/* Probes one nonce-count lookup may make before it calls the table full. */
#define NC_MAX_PROBES	64

static const struct {
	const char *name;
	size_t hexlen;
} digest_algs[DIGEST_NALGS] = {
	[DIGEST_MD5] = { "MD5", 32 },
	[DIGEST_SHA256] = { "SHA-256", 64 },
};

const char *
digest_alg_name(enum digest_alg alg)
{
	return alg < DIGEST_NALGS ? digest_algs[alg].name : "?";
}

size_t
digest_alg_hexlen(enum digest_alg alg)
{
	return alg < DIGEST_NALGS ? digest_algs[alg].hexlen : 0;
}

/*
 * OpenSSL 3 looks an algorithm up again on every EVP_DigestInit_ex of
 * EVP_md5() and friends, and on every EVP_MAC_fetch and keying: several
 * times the cost of hashing the few dozen bytes of a digest.  So the
 * algorithms are fetched once per process, and the nonce MAC's context
 * is keyed once and re-armed (a process uses one nonce key).  Every
 * process here runs one thread.
 */
static EVP_MD *digest_mds[DIGEST_NALGS];

static const EVP_MD *
digest_md(enum digest_alg alg)
{
	if (digest_mds[alg] == NULL)
		digest_mds[alg] = EVP_MD_fetch(NULL, alg == DIGEST_SHA256 ?
					       "SHA256" : "MD5", NULL);
	if (digest_mds[alg] != NULL)
		return digest_mds[alg];
	return alg == DIGEST_SHA256 ? EVP_sha256() : EVP_md5();
}

static void
hex_encode(const unsigned char *in, size_t len, char *out)
{
	static const char x[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = x[in[i] >> 4];
		out[2 * i + 1] = x[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static int
hex_nibble(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = (char)tolower((unsigned char)ch);
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Decodes exactly 2*len hex digits; -EINVAL on anything else. */
static int
hex_decode(const char *in, size_t inlen, unsigned char *out, size_t len)
{
	if (inlen != 2 * len)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int hi = hex_nibble(in[2 * i]), lo = hex_nibble(in[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/*
 * H(p[0] ":" p[1] ":" ... p[n-1]) in hex.  The pieces are fed one by one
 * so no buffer bounds the length of a URI or nonce.
 */
static int
digest_hash(enum digest_alg alg, const struct digest_str *p, int n, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestInit_ex(ctx, digest_md(alg), NULL);

	for (int i = 0; ok && i < n; i++)
		ok = (i == 0 || EVP_DigestUpdate(ctx, ":", 1)) &&
		     EVP_DigestUpdate(ctx, p[i].s, p[i].len);
	ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -ENOMEM;
	hex_encode(md, mdlen, out);
	return 0;
}

static struct digest_str
dstr(const char *s)
{
	return (struct digest_str){ s, s ? strlen(s) : 0 };
}

int
digest_ha1(enum digest_alg alg, const char *user, const char *realm,
	   const char *password, char *out)
{
	struct digest_str p[3] = { dstr(user), dstr(realm), dstr(password) };

	if (alg >= DIGEST_NALGS || !user || !realm || !password)
		return -EINVAL;
	return digest_hash(alg, p, 3, out);
}

int
digest_response(enum digest_alg alg, const char *ha1,
		const char *method, size_t method_len,
		const struct digest_str *uri, const struct digest_str *nonce,
		const struct digest_str *nc, const struct digest_str *cnonce,
		char *out)
{
	char ha2[DIGEST_HEX_MAX];
	struct digest_str a2[2] = { { method, method_len }, *uri };
	struct digest_str r[6];
	int rc;

	if (alg >= DIGEST_NALGS || strlen(ha1) != digest_algs[alg].hexlen)
		return -EINVAL;
	rc = digest_hash(alg, a2, 2, ha2);
	if (rc < 0)
		return rc;
	r[0] = dstr(ha1);
	r[1] = *nonce;
	if (nc == NULL || cnonce == NULL) {
		r[2] = dstr(ha2);
		return digest_hash(alg, r, 3, out);
	}
	r[2] = *nc;
	r[3] = *cnonce;
	r[4] = dstr("auth");
	r[5] = dstr(ha2);
	return digest_hash(alg, r, 6, out);
}

int
digest_response_check(const struct digest_creds *c, const char *ha1,
		      const char *method, size_t method_len)
{
	char want[DIGEST_HEX_MAX], got[DIGEST_HEX_MAX];
	size_t n = digest_alg_hexlen(c->alg);
	int rc;

	if (!c->qop.s || c->qop.len != 4 || strncasecmp(c->qop.s, "auth", 4) ||
	    !c->cnonce.s || !c->cnonce.len || !c->nc.s)
		return -EINVAL;
	rc = digest_response(c->alg, ha1, method, method_len, &c->uri,
			     &c->nonce, &c->nc, &c->cnonce, want);
	if (rc < 0)
		return rc;
	if (c->response.len != n)
		return -EACCES;
	/* Clients may send upper-case hex; ours is lower-case. */
	for (size_t i = 0; i < n; i++) {
		if (hex_nibble(c->response.s[i]) < 0)
			return -EACCES;
		got[i] = (char)tolower((unsigned char)c->response.s[i]);
	}
	return CRYPTO_memcmp(got, want, n) ? -EACCES : 0;
}

/* --- parsing ------------------------------------------------------- */

static const char *
skip_lws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}

static int
is_token_char(char ch)
{
	return isalnum((unsigned char)ch) || strchr("-.!%*_+`'~", ch) != NULL;
}

/* Where each known parameter goes; NULL slot for ones we skip. */
static struct digest_str *
creds_slot(struct digest_creds *c, struct digest_str *alg, const char *k,
	   size_t n)
{
	static const struct {
		const char *name;
		size_t off;
	} keys[] = {
		{ "username", offsetof(struct digest_creds, username) },
		{ "realm", offsetof(struct digest_creds, realm) },
		{ "nonce", offsetof(struct digest_creds, nonce) },
		{ "uri", offsetof(struct digest_creds, uri) },
		{ "response", offsetof(struct digest_creds, response) },
		{ "cnonce", offsetof(struct digest_creds, cnonce) },
		{ "nc", offsetof(struct digest_creds, nc) },
		{ "qop", offsetof(struct digest_creds, qop) },
		{ "opaque", offsetof(struct digest_creds, opaque) },
	};

	if (n == 9 && !strncasecmp(k, "algorithm", 9))
		return alg;
	for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
		if (strlen(keys[i].name) == n && !strncasecmp(k, keys[i].name, n))
			return (struct digest_str *)((char *)c + keys[i].off);
	return NULL;
}

int
digest_creds_parse(const char *hdr, size_t len, struct digest_creds *c)
{
	const char *p = hdr, *end = hdr + len;
	struct digest_str alg = { NULL, 0 };

	memset(c, 0, sizeof(*c));
	p = skip_lws(p, end);
	if (end - p < 7 || strncasecmp(p, "Digest", 6) ||
	    (p[6] != ' ' && p[6] != '\t'))
		return -EINVAL;
	p += 6;
	for (;;) {
		const char *k, *v;
		size_t klen, vlen;
		int escaped = 0;
		struct digest_str *slot;

		p = skip_lws(p, end);
		k = p;
		while (p < end && is_token_char(*p))
			p++;
		klen = (size_t)(p - k);
		p = skip_lws(p, end);
		if (!klen || p >= end || *p != '=')
			return -EINVAL;
		p = skip_lws(p + 1, end);
		if (p < end && *p == '"') {
			v = ++p;
			while (p < end && *p != '"') {
				if (*p == '\\') {
					escaped = 1;
					p++;
				}
				p++;
			}
			if (p >= end)
				return -EINVAL;
			vlen = (size_t)(p - v);
			p++;
		} else {
			v = p;
			while (p < end && is_token_char(*p))
				p++;
			vlen = (size_t)(p - v);
			if (!vlen)
				return -EINVAL;
		}
		slot = creds_slot(c, &alg, k, klen);
		if (slot) {
			if (slot->s || escaped)
				return -EINVAL;
			slot->s = v;
			slot->len = vlen;
		}
		p = skip_lws(p, end);
		if (p >= end)
			break;
		if (*p != ',')
			return -EINVAL;
		p++;
	}
	if (!c->username.s || !c->realm.s || !c->nonce.s || !c->uri.s ||
	    !c->response.s)
		return -EINVAL;
	if (c->nc.s) {
		unsigned char b[4];

		if (hex_decode(c->nc.s, c->nc.len, b, 4) < 0)
			return -EINVAL;
		c->nc_value = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
			      (uint32_t)b[2] << 8 | b[3];
	}
	c->alg = DIGEST_MD5;
	if (alg.s) {
		if (alg.len == 3 && !strncasecmp(alg.s, "MD5", 3))
			c->alg = DIGEST_MD5;
		else if (alg.len == 7 && !strncasecmp(alg.s, "SHA-256", 7))
			c->alg = DIGEST_SHA256;
		else
			return -ENOTSUP;
	}
	return 0;
}

/* --- nonces -------------------------------------------------------- */

static void
put_be(unsigned char *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static uint64_t
get_be(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/*
 * MAC over time and salt (raw[0..11]), then each of realm and Call-ID
 * preceded by its length, so no two (realm, Call-ID) pairs feed the
 * same bytes.  Returns 0 or -ENOMEM.
 */
static int
nonce_mac(const unsigned char *key, size_t keylen, const unsigned char *raw,
	  const char *realm, size_t realm_len, const char *callid,
	  size_t callid_len, unsigned char *mac)
{
	static EVP_MAC_CTX *ctx;	/* keyed with ctx_key (see digest_md) */
	static unsigned char ctx_key[64];
	static size_t ctx_keylen;
	unsigned char md[EVP_MAX_MD_SIZE], l1[4], l2[4];
	size_t mdlen = 0;
	char sha256[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string("digest", sha256, 0),
		OSSL_PARAM_construct_end()
	};
	int ok;

	if (ctx && keylen == ctx_keylen && memcmp(key, ctx_key, keylen) == 0) {
		ok = EVP_MAC_init(ctx, NULL, 0, NULL);	/* same key again */
	} else {
		EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);

		EVP_MAC_CTX_free(ctx);
		ctx = m ? EVP_MAC_CTX_new(m) : NULL;
		EVP_MAC_free(m);
		ok = ctx && EVP_MAC_init(ctx, key, keylen, params);
		/* a key too long to remember is keyed every time */
		ctx_keylen = ok && keylen <= sizeof(ctx_key) ? keylen : 0;
		memcpy(ctx_key, key, ctx_keylen);
	}
	put_be(l1, realm_len, 4);
	put_be(l2, callid_len, 4);
	ok = ok && EVP_MAC_update(ctx, raw, 12) &&
	     EVP_MAC_update(ctx, l1, 4) &&
	     EVP_MAC_update(ctx, (const unsigned char *)realm, realm_len) &&
	     EVP_MAC_update(ctx, l2, 4) &&
	     EVP_MAC_update(ctx, (const unsigned char *)callid, callid_len) &&
	     EVP_MAC_final(ctx, md, &mdlen, sizeof(md));
	if (!ok || mdlen < NONCE_MAC_LEN)
		return -ENOMEM;
	memcpy(mac, md, NONCE_MAC_LEN);
	return 0;
}

void
digest_nonce_make(const unsigned char *key, size_t keylen, uint64_t now,
		  uint32_t salt, const char *realm, size_t realm_len,
		  const char *callid, size_t callid_len, char *out)
{
	unsigned char raw[NONCE_RAW_LEN];

	put_be(raw, now, 8);
	put_be(raw + 8, salt, 4);
	/* A failed MAC (no memory) leaves zeros: the nonce will not verify
	 * and the client is challenged again, which is the safe outcome. */
	if (nonce_mac(key, keylen, raw, realm, realm_len, callid, callid_len,
		      raw + 12) < 0)
		memset(raw + 12, 0, NONCE_MAC_LEN);
	hex_encode(raw, sizeof(raw), out);
}

enum digest_nonce_state
digest_nonce_check(const unsigned char *key, size_t keylen, uint64_t now,
		   uint64_t lifetime, const char *realm, size_t realm_len,
		   const char *callid, size_t callid_len,
		   const struct digest_str *nonce, uint64_t *minted)
{
	unsigned char raw[NONCE_RAW_LEN], mac[NONCE_MAC_LEN];
	uint64_t t;

	if (hex_decode(nonce->s, nonce->len, raw, sizeof(raw)) < 0 ||
	    nonce_mac(key, keylen, raw, realm, realm_len, callid, callid_len,
		      mac) < 0 ||
	    CRYPTO_memcmp(mac, raw + 12, NONCE_MAC_LEN))
		return DIGEST_NONCE_BAD;
	t = get_be(raw, 8);
	if (t > now + DIGEST_CLOCK_SKEW)
		return DIGEST_NONCE_BAD;
	*minted = t;
	return now > t + lifetime ? DIGEST_NONCE_STALE : DIGEST_NONCE_OK;
}

/* --- nonce-count table --------------------------------------------- */

struct digest_nc_entry {
	unsigned char mac[NONCE_MAC_LEN];
	uint64_t minted;
	uint32_t nc;
	uint8_t used;		/* 0: never used, the end of a probe run */
};

struct digest_nc_table {
	size_t mask;		/* slots - 1; slots = 2 * cap rounded up */
	uint64_t lifetime;
	uint64_t now;		/* latest time seen, for digest_nc_count */
	struct digest_nc_entry *e;
};

int
digest_nc_new(struct digest_nc_table **out, size_t cap, uint64_t lifetime)
{
	struct digest_nc_table *t = calloc(1, sizeof(*t));
	size_t slots = 16;

	if (!t || !cap)
		goto fail;
	while (slots < 2 * cap)
		slots <<= 1;
	t->e = calloc(slots, sizeof(*t->e));
	if (!t->e)
		goto fail;
	t->mask = slots - 1;
	t->lifetime = lifetime;
	*out = t;
	return 0;
fail:
	digest_nc_free(t);
	return -ENOMEM;
}

void
digest_nc_free(struct digest_nc_table *t)
{
	if (!t)
		return;
	free(t->e);
	free(t);
}

static int
nc_live(const struct digest_nc_table *t, const struct digest_nc_entry *e,
	uint64_t now)
{
	return e->used && e->minted + t->lifetime >= now;
}

int
digest_nc_accept(struct digest_nc_table *t, const struct digest_str *nonce,
		 uint64_t minted, uint32_t nc, uint64_t now)
{
	unsigned char raw[NONCE_RAW_LEN];
	struct digest_nc_entry *free_slot = NULL;
	size_t i;

	if (hex_decode(nonce->s, nonce->len, raw, sizeof(raw)) < 0)
		return -EINVAL;
	t->now = now;
	/* The MAC is uniformly random and unforgeable: its first bytes are
	 * the hash.  A live key can sit past expired slots, so the run is
	 * searched to its end before a slot is reused. */
	i = (size_t)get_be(raw + 12, 8) & t->mask;
	for (int probe = 0; probe < NC_MAX_PROBES; probe++, i = (i + 1) & t->mask) {
		struct digest_nc_entry *e = &t->e[i];

		if (!nc_live(t, e, now)) {
			if (!free_slot)
				free_slot = e;
			if (!e->used)
				break;
			continue;
		}
		if (!memcmp(e->mac, raw + 12, NONCE_MAC_LEN)) {
			if (nc <= e->nc)
				return -EALREADY;
			e->nc = nc;
			return 0;
		}
	}
	if (!free_slot)
		return -ENOSPC;
	memcpy(free_slot->mac, raw + 12, NONCE_MAC_LEN);
	free_slot->minted = minted;
	free_slot->nc = nc;
	free_slot->used = 1;
	return 0;
}

size_t
digest_nc_count(const struct digest_nc_table *t)
{
	size_t n = 0;

	for (size_t i = 0; i <= t->mask; i++)
		n += nc_live(t, &t->e[i], t->now);
	return n;
}
