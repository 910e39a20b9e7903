/*
 * hash.h - hashing shared by the processes: SipHash-2-4 under a key for
 * every table whose keys a sender chooses (Call-IDs, branches, AORs,
 * addresses), so nobody can pick keys that all land in one bucket (the
 * reason Redis, Python and Rust hash with it); FNV-1a where a value
 * must be the same in every process and no table is at stake; and
 * rendezvous (highest random weight) hashing to pick a core for a
 * Call-ID.  Rendezvous hashing moves only the Call-IDs of a core that
 * leaves, and gives every edge the same answer with no shared state
 * (its key is the cluster's); its order is also the fallback order when
 * the first core is down.
 */
#ifndef SM_HASH_H
#define SM_HASH_H

#include <stddef.h>
#include <stdint.h>

/* A SipHash key: 128 bits. */
struct hash_key {
	uint64_t k0, k1;
};

/* SipHash-2-4 of data under k. */
uint64_t hash_sip(const struct hash_key *k, const void *data, size_t len);

/* Same, ASCII case folded (AORs, host names). */
uint64_t hash_sip_nocase(const struct hash_key *k, const void *data,
			 size_t len);

/* This process's random key, for the tables only it uses: drawn from
 * getrandom(2) on first use. */
const struct hash_key *hash_process_key(void);

/* The key in the first 16 bytes of buf (e.g. a derived key). */
void hash_key_from(struct hash_key *k, const unsigned char *buf);

uint64_t hash_fnv1a64(const void *data, size_t len);

/* Same, ASCII case folded: for host names and header names. */
uint64_t hash_fnv1a64_nocase(const void *data, size_t len);

/*
 * Orders the n node ids by descending rendezvous weight for key under
 * hk (the same in every process of the cluster) and writes them to
 * order[0..n-1]; order[0] is the chosen node.  Costs one SipHash, n
 * mixes and an insertion sort (n is a handful of cores).
 */
void hash_rendezvous_order(const struct hash_key *hk, const void *key,
			   size_t keylen, const int *ids, int n, int *order);

/* The same from the key's hash kh = hash_sip(hk, key, keylen): for a
 * caller that orders several groups of nodes by one key. */
void hash_rendezvous_rank(uint64_t kh, const int *ids, int n, int *order);

#endif
