/*
 * hash.c - FNV-1a and rendezvous hashing, see hash.h.
 */
#include "lib/hash.h"

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
hash_rendezvous_order(const void *key, size_t keylen, const int *ids, int n,
		      int *order)
{
	uint64_t kh = hash_fnv1a64(key, keylen), w[64];

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
