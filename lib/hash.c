/*
 * hash.c - SipHash-2-4, FNV-1a and rendezvous hashing, see hash.h.
 * SipHash as specified by Aumasson and Bernstein (2012): 64-bit words
 * read little-endian, two compression and four finalisation rounds.
 */
#include "lib/hash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define HASH_ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

#define HASH_SIPROUND(v0, v1, v2, v3) do {				\
	v0 += v1; v1 = HASH_ROTL(v1, 13); v1 ^= v0; v0 = HASH_ROTL(v0, 32); \
	v2 += v3; v3 = HASH_ROTL(v3, 16); v3 ^= v2;			\
	v0 += v3; v3 = HASH_ROTL(v3, 21); v3 ^= v0;			\
	v2 += v1; v1 = HASH_ROTL(v1, 17); v1 ^= v2; v2 = HASH_ROTL(v2, 32); \
} while (0)

static unsigned char
hash_byte(const unsigned char *p, size_t i, int fold)
{
	unsigned char c = p[i];

	return fold && c >= 'A' && c <= 'Z' ? (unsigned char)(c + 'a' - 'A') : c;
}

static uint64_t
hash_sip_fold(const struct hash_key *k, const void *data, size_t len,
	      int fold)
{
	const unsigned char *p = data;
	uint64_t v0 = 0x736f6d6570736575ULL ^ k->k0;
	uint64_t v1 = 0x646f72616e646f6dULL ^ k->k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k->k0;
	uint64_t v3 = 0x7465646279746573ULL ^ k->k1;
	uint64_t m, b = (uint64_t)len << 56;
	size_t i, end = len - len % 8;

	for (i = 0; i < end; i += 8) {
		m = 0;
		for (int j = 7; j >= 0; j--)
			m = m << 8 | hash_byte(p, i + (size_t)j, fold);
		v3 ^= m;
		HASH_SIPROUND(v0, v1, v2, v3);
		HASH_SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	for (size_t j = 0; i + j < len; j++)
		b |= (uint64_t)hash_byte(p, i + j, fold) << (8 * j);
	v3 ^= b;
	HASH_SIPROUND(v0, v1, v2, v3);
	HASH_SIPROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	for (int r = 0; r < 4; r++)
		HASH_SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t
hash_sip(const struct hash_key *k, const void *data, size_t len)
{
	return hash_sip_fold(k, data, len, 0);
}

uint64_t
hash_sip_nocase(const struct hash_key *k, const void *data, size_t len)
{
	return hash_sip_fold(k, data, len, 1);
}

void
hash_key_from(struct hash_key *k, const unsigned char *buf)
{
	k->k0 = k->k1 = 0;
	for (int j = 7; j >= 0; j--) {
		k->k0 = k->k0 << 8 | buf[j];
		k->k1 = k->k1 << 8 | buf[8 + j];
	}
}

const struct hash_key *
hash_process_key(void)
{
	static struct hash_key key;
	static int ready;

	if (!ready) {
		unsigned char buf[16];
		ssize_t n;

		/* Blocking: before the kernel's pool is up (early boot) a
		 * key from the clock and pid could be guessed by a sender
		 * who then fills one bucket; waiting a moment is better. */
		do
			n = getrandom(buf, sizeof(buf), 0);
		while (n < 0 && errno == EINTR);
		if (n != (ssize_t)sizeof(buf)) {
			fprintf(stderr, "hash: getrandom: %s\n", strerror(errno));
			abort();
		}
		hash_key_from(&key, buf);
		ready = 1;
	}
	return &key;
}

#define FNV_OFFSET 14695981039346656037ULL
#define FNV_PRIME  1099511628211ULL

uint64_t
hash_fnv1a64(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = FNV_OFFSET;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= FNV_PRIME;
	}
	return h;
}

uint64_t
hash_fnv1a64_nocase(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = FNV_OFFSET;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];

		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		h ^= c;
		h *= FNV_PRIME;
	}
	return h;
}

/* A 64-bit finaliser (splitmix64) so node ids mix with the key hash. */
static uint64_t
hash_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

void
hash_rendezvous_order(const struct hash_key *hk, const void *key,
		      size_t keylen, const int *ids, int n, int *order)
{
	hash_rendezvous_rank(hash_sip(hk, key, keylen), ids, n, order);
}

void
hash_rendezvous_rank(uint64_t kh, const int *ids, int n, int *order)
{
	uint64_t w[64];

	if (n > 64)
		n = 64;
	for (int i = 0; i < n; i++) {
		uint64_t wi = hash_mix(kh ^ hash_mix((uint64_t)ids[i]));
		int j = i;

		while (j > 0 && w[j - 1] < wi) {
			w[j] = w[j - 1];
			order[j] = order[j - 1];
			j--;
		}
		w[j] = wi;
		order[j] = ids[i];
	}
}
