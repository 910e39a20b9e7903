/*
 * sip.c - Via branch encoding and its MAC, see sip.h.  Cost: one pass
 * over the branch and one SipHash of at most 522 bytes, no allocation.
 */
#include "lib/sip.h"
#include "lib/hash.h"

#include <errno.h>
#include <string.h>

#define SIP_BRANCH_PREFIX "z9hG4bKsm"
#define SIP_BRANCH_PREFIX_LEN (sizeof(SIP_BRANCH_PREFIX) - 1)
#define SIP_BRANCH_HEX 16

void
sip_cat_init(struct sip_cat *b, char *out, size_t cap)
{
	b->p = out;
	b->len = 0;
	b->cap = cap;
	b->over = 0;
	if (cap)
		out[0] = '\0';
}

void
sip_cat_mem(struct sip_cat *b, const char *s, size_t n)
{
	size_t room = b->cap ? b->cap - 1 - b->len : 0;

	if (n > room) {
		n = room;
		b->over = 1;
	}
	if (b->cap == 0)
		return;		/* no room even for the NUL */
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
sip_cat_str(struct sip_cat *b, const char *s)
{
	if (s)
		sip_cat_mem(b, s, strlen(s));
}

void
sip_cat_ch(struct sip_cat *b, char ch)
{
	sip_cat_mem(b, &ch, 1);
}

void
sip_cat_uint(struct sip_cat *b, unsigned long long v)
{
	char d[20];
	int i = (int)sizeof(d);

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	sip_cat_mem(b, d + i, sizeof(d) - (size_t)i);
}

void
sip_cat_hex16(struct sip_cat *b, uint64_t v)
{
	static const char hex[] = "0123456789abcdef";
	char d[SIP_BRANCH_HEX];

	for (int i = SIP_BRANCH_HEX - 1; i >= 0; i--, v >>= 4)
		d[i] = hex[v & 0xf];
	sip_cat_mem(b, d, sizeof(d));
}

int
sip_cat_len(const struct sip_cat *b)
{
	return b->over ? -E2BIG : (int)b->len;
}

int
sip_copy(char *out, size_t cap, const char *s)
{
	struct sip_cat b;

	sip_cat_init(&b, out, cap);
	sip_cat_str(&b, s);
	return sip_cat_len(&b);
}

int
sip_branch_make(char *out, size_t cap, int core_id, uint64_t serial,
		uint64_t mac)
{
	struct sip_cat b;

	if (core_id < 0)
		return -EINVAL;
	sip_cat_init(&b, out, cap);
	sip_cat_mem(&b, SIP_BRANCH_PREFIX, SIP_BRANCH_PREFIX_LEN);
	sip_cat_uint(&b, (unsigned long long)core_id);
	sip_cat_ch(&b, '.');
	sip_cat_hex16(&b, serial);
	sip_cat_ch(&b, '.');
	sip_cat_hex16(&b, mac);
	return b.over ? -ENOSPC : (int)b.len;
}

/* Reads exactly SIP_BRANCH_HEX lower-case hex digits at s. */
static int
sip_hex16(const char *s, uint64_t *v)
{
	*v = 0;
	for (int i = 0; i < SIP_BRANCH_HEX; i++) {
		char ch = s[i];
		int d = ch >= '0' && ch <= '9' ? ch - '0' :
			ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;

		if (d < 0)
			return -EINVAL;
		*v = *v << 4 | (uint64_t)d;
	}
	return 0;
}

int
sip_branch_parse(const char *branch, size_t len, int *core_id,
		 uint64_t *serial, uint64_t *mac)
{
	size_t i = SIP_BRANCH_PREFIX_LEN;
	int id = 0;

	if (len <= i || strncmp(branch, SIP_BRANCH_PREFIX, i) != 0)
		return -EINVAL;
	for (; i < len && branch[i] >= '0' && branch[i] <= '9'; i++) {
		id = id * 10 + (branch[i] - '0');
		if (id > 65535)
			return -EINVAL;
	}
	if (i == SIP_BRANCH_PREFIX_LEN || id == 0 ||
	    len - i != 2 * (1 + SIP_BRANCH_HEX) || branch[i] != '.' ||
	    branch[i + 1 + SIP_BRANCH_HEX] != '.' ||
	    sip_hex16(branch + i + 1, serial) != 0 ||
	    sip_hex16(branch + i + 2 + SIP_BRANCH_HEX, mac) != 0)
		return -EINVAL;
	*core_id = id;
	return 0;
}

int
sip_branch_core(const char *branch, size_t len)
{
	uint64_t serial, mac;
	int id;

	return sip_branch_parse(branch, len, &id, &serial, &mac) == 0 ? id : -1;
}

uint64_t
sip_branch_mac(const struct hash_key *k, int core_id, uint64_t serial,
	       const char *cid, size_t cid_len)
{
	unsigned char data[11 + SIP_BRANCH_CID_MAX];
	size_t n = 0;

	/* A use letter, then fixed-width fields: no two inputs meet. */
	data[n++] = 'b';
	data[n++] = (unsigned char)(core_id >> 8);
	data[n++] = (unsigned char)core_id;
	for (int i = 56; i >= 0; i -= 8)
		data[n++] = (unsigned char)(serial >> i);
	if (cid_len > SIP_BRANCH_CID_MAX)
		cid_len = SIP_BRANCH_CID_MAX;
	memcpy(data + n, cid, cid_len);
	return hash_sip(k, data, n + cid_len);
}

int
sip_branch_verify(const struct hash_key *k, const char *branch, size_t len,
		  const char *cid, size_t cid_len)
{
	uint64_t serial, mac;
	int id;

	if (sip_branch_parse(branch, len, &id, &serial, &mac) != 0 ||
	    mac != sip_branch_mac(k, id, serial, cid, cid_len))
		return -1;
	return id;
}
