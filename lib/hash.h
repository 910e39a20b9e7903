/*
 * hash.h - hashing shared by the processes: FNV-1a for keys, and
 * rendezvous (highest random weight) hashing to pick a core for a
 * Call-ID.  Rendezvous hashing moves only the Call-IDs of a core that
 * leaves, and gives every edge the same answer with no shared state;
 * its order is also the fallback order when the first core is down.
 */
#ifndef SM_HASH_H
#define SM_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t hash_fnv1a64(const void *data, size_t len);

/* Same, ASCII case folded: for host names and header names. */
uint64_t hash_fnv1a64_nocase(const void *data, size_t len);

/*
 * Orders the n node ids by descending rendezvous weight for key and
 * writes them to order[0..n-1]; order[0] is the chosen node.  Costs n
 * hashes and an insertion sort (n is a handful of cores).
 */
void hash_rendezvous_order(const void *key, size_t keylen, const int *ids,
			   int n, int *order);

#endif
