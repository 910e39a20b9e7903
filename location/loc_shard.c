/*
 * loc_shard.c - which Redis shard holds an AOR's bindings.
 *
 * Rendezvous (highest random weight) hashing, lib/hash.h: each shard's
 * weight for an AOR is a mix of the AOR's SipHash with the hash of the
 * shard's name, and the heaviest shard holds it.  Every host and
 * process computes the same answer with no shared state; adding a
 * shard moves only the AORs the new shard now wins, 1/(n+1) of them,
 * each from wherever it was; removing one moves only its own.
 *
 * The key is fixed and public, not the cluster's secret: the choice
 * must survive a rotation of the secret and be the same in every tool.
 * A sender who picks AORs can aim them at one shard, but only AORs it
 * may register, and each costs it a REGISTER: no worse than sending
 * that many REGISTERs.  The host's shared-store buckets stay keyed.
 *
 * Cost: one SipHash of the AOR and n mixes, n at most LOC_SHARDS_MAX;
 * nothing at all with one shard.
 */
#include <errno.h>
#include <string.h>

#include "lib/hash.h"
#include "location/loc_int.h"

/* "sipmesh-shards.1": changing it moves every AOR. */
static const struct hash_key loc_shard_key = {
	0x6873656d70697373ULL, 0x312e736472616873ULL,
};

int
loc_shard_map_init(struct loc_shard_map *m, const char *const *names, int n)
{
	if (n < 1 || n > LOC_SHARDS_MAX)
		return -EINVAL;
	m->n = n;
	for (int i = 0; i < n; i++) {
		m->ids[i] = (int)(hash_fnv1a64(names[i], strlen(names[i])) &
				  0x7fffffff);
		for (int j = 0; j < i; j++)
			if (m->ids[j] == m->ids[i])
				return -EINVAL;
	}
	return 0;
}

int
loc_shard_pick(const struct loc_shard_map *m, const char *aor)
{
	char low[LOC_AOR_MAX];
	int order[LOC_SHARDS_MAX];
	size_t n = 0;

	if (m->n <= 1)
		return 0;
	for (; aor[n] && n < sizeof(low); n++)
		low[n] = (aor[n] >= 'A' && aor[n] <= 'Z') ? aor[n] + 32 : aor[n];
	hash_rendezvous_order(&loc_shard_key, low, n, m->ids, m->n, order);
	for (int i = 0; i < m->n; i++)
		if (m->ids[i] == order[0])
			return i;
	return 0;
}

uint64_t
loc_shard_set(const struct loc_shard_map *m)
{
	uint64_t h = 0;

	/* a sum of per-name hashes: the order of the list does not count */
	for (int i = 0; i < m->n; i++)
		h += hash_fnv1a64(&m->ids[i], sizeof(m->ids[i])) | 1;
	return h ? h : 1;
}
