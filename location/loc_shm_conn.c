/*
 * loc_shm_conn.c - the shared store's index by (edge, connection), and
 * loc_shm_remove_conn, the one operation that needs it.
 *
 * Why: when a flow closes (a browser's WebSocket, 20,000 of them at an
 * edge restart) its bindings must go, and a walk of the whole table per
 * closed connection does not scale.
 *
 * Layout: (edge_id, conn_id) hashes to a conn bucket (nbuckets of them,
 * beside the AOR buckets, see loc_shm.c) whose chain links, through a
 * slot's cnext, every BINDING slot with that conn_id != 0 (and other
 * connections' that collide).  A slot's b is only written while it is
 * out of the index: every path in loc_shm.c that frees a binding, turns
 * it into a marker or overwrites it unlinks it first and links it again
 * after.
 *
 * Locks: an AOR bucket lock, then a conn bucket lock, never the reverse,
 * and never two of a kind.  So remove_conn copies the AORs of the conn
 * chain under the conn lock, lets go, then removes AOR by AOR under each
 * AOR lock.  A slot's conn_linked flag is set before it joins a chain
 * and cleared after it leaves, so it covers at least the chain's
 * members: a conn lock left by a dead process is recovered by rebuilding
 * its chain from the flags (one scan of the slots), and a slot is never
 * freed while still in a chain.  Slots an AOR lock recovery cuts off
 * leak, and stay indexed harmlessly (the per-AOR removal does not find
 * them).
 *
 * Cost: link and unlink are one conn lock and a walk of one conn chain
 * (about one connection's bindings); remove_conn is one chain walk and
 * one AOR lock per binding of the connection.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "location/loc_int.h"

#define LOC_CONN_AORS 8		/* AORs of a conn kept on the stack */

/* (edge_id, conn_id) mixed by the splitmix64 finalizer: serials are
 * sequential per edge process, the low bits must spread.  The edge id
 * goes over the top of the incarnation: 80 bits cannot fold into 64
 * without collisions, and a collision only shares a chain. */
struct loc_conn_bucket *
loc_cbucket_of(struct loc_shm *s, uint16_t edge_id, uint64_t conn_id)
{
	uint64_t h = conn_id ^ (uint64_t)edge_id << 48;

	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return &s->cbuckets[h & (s->hdr->nbuckets - 1)];
}

/*
 * Takes a conn bucket's robust lock.  When its owner died the chain may
 * be half-changed: it is rebuilt from the slots whose conn_linked flag
 * is set and whose key hashes here (only this lock's holder changes
 * those flags and, while one is set, the slot's key).
 */
int
loc_conn_lock(struct loc_shm *s, struct loc_conn_bucket *cb)
{
	int rc = pthread_mutex_lock(&cb->lock);

	if (rc == EOWNERDEAD) {
		cb->head = LOC_NIL;
		for (uint32_t i = 0; i < s->hdr->nslots; i++) {
			struct loc_slot *sl = &s->slots[i];

			if (!__atomic_load_n(&sl->conn_linked, __ATOMIC_ACQUIRE) ||
			    loc_cbucket_of(s, sl->b.edge_id,
					   sl->b.conn_id) != cb)
				continue;
			sl->cnext = cb->head;
			cb->head = i;
		}
		__atomic_fetch_add(&s->hdr->lock_recoveries, 1,
				   __ATOMIC_RELAXED);
		log_warn(LOG_SYS_LOC, "recovered a conn lock left by a dead "
			 "process");
		rc = pthread_mutex_consistent(&cb->lock);
	}
	return -rc;
}

void
loc_conn_link(struct loc_shm *s, uint32_t i)
{
	struct loc_slot *sl = &s->slots[i];
	struct loc_conn_bucket *cb;

	if (sl->kind != LOC_SLOT_BINDING || sl->b.conn_id == 0 ||
	    sl->conn_linked)
		return;
	cb = loc_cbucket_of(s, sl->b.edge_id, sl->b.conn_id);
	if (loc_conn_lock(s, cb) < 0)
		return;		/* not indexed: remove_conn misses it */
	__atomic_store_n(&sl->conn_linked, 1, __ATOMIC_RELEASE);
	sl->cnext = cb->head;
	cb->head = i;
	loc_unlock(&cb->lock);
}

void
loc_conn_unlink(struct loc_shm *s, uint32_t i)
{
	struct loc_slot *sl = &s->slots[i];
	struct loc_conn_bucket *cb;
	uint32_t *link, hops = 0;

	if (!sl->conn_linked)
		return;
	cb = loc_cbucket_of(s, sl->b.edge_id, sl->b.conn_id);
	if (loc_conn_lock(s, cb) < 0) {
		__atomic_store_n(&sl->conn_linked, 0, __ATOMIC_RELEASE);
		return;		/* the chain is gone with its lock */
	}
	for (link = &cb->head; *link != LOC_NIL && hops++ <= s->hdr->nslots;
	     link = &s->slots[*link].cnext) {
		if (*link == i) {
			*link = sl->cnext;
			break;
		}
	}
	__atomic_store_n(&sl->conn_linked, 0, __ATOMIC_RELEASE);
	loc_unlock(&cb->lock);
}

struct loc_conn {
	uint16_t edge_id;
	uint64_t conn_id;
};

static int
loc_match_conn(const struct loc_binding *b, const void *arg, int64_t now)
{
	const struct loc_conn *c = arg;

	(void)now;
	return b->edge_id == c->edge_id && b->conn_id == c->conn_id;
}

/*
 * Copies the AORs of the connection's bindings from its conn chain
 * (one entry per binding: an AOR seen twice just finds nothing the
 * second time), lets the conn lock go, then removes AOR by AOR under
 * each AOR's lock with the same rule as loc_aor_remove_locked's other
 * callers, so the sink sees the same changes as before the index.
 * Out of memory for the copy, it falls back to a sweep of every bucket.
 */
int
loc_shm_remove_conn(struct loc_shm *s, uint16_t edge_id, uint64_t conn_id,
		    int64_t now, const struct loc_sink *k)
{
	char stack[LOC_CONN_AORS][LOC_AOR_MAX];
	char (*aors)[LOC_AOR_MAX] = stack, (*more)[LOC_AOR_MAX];
	struct loc_conn c = { edge_id, conn_id };
	struct loc_conn_bucket *cb;
	uint32_t hops = 0;
	int n = 0, naor = 0, cap = LOC_CONN_AORS, oom = 0, rc;

	if (conn_id == 0)	/* UDP: no connection holds a binding */
		return 0;
	cb = loc_cbucket_of(s, edge_id, conn_id);
	rc = loc_conn_lock(s, cb);
	if (rc < 0)
		return rc;
	for (uint32_t i = cb->head; i != LOC_NIL && hops++ <= s->hdr->nslots;
	     i = s->slots[i].cnext) {
		struct loc_slot *sl = &s->slots[i];

		s->rc_slots++;
		if (sl->b.edge_id != edge_id || sl->b.conn_id != conn_id)
			continue;
		if (naor == cap) {
			more = aors == stack ?
				malloc(sizeof(*aors) * (size_t)cap * 2) :
				realloc(aors, sizeof(*aors) * (size_t)cap * 2);
			if (!more) {
				oom = 1;
				break;
			}
			if (aors == stack)
				memcpy(more, stack, sizeof(stack));
			aors = more;
			cap *= 2;
		}
		memcpy(aors[naor], sl->b.aor, LOC_AOR_MAX);
		aors[naor++][LOC_AOR_MAX - 1] = '\0';
	}
	loc_unlock(&cb->lock);
	for (int j = 0; j < naor && !oom; j++) {
		struct loc_bucket *bk = loc_bucket_of(s, aors[j]);

		if (loc_lock(s, &bk->lock, bk) < 0)
			continue;
		s->rc_buckets++;
		n += loc_aor_remove_locked(s, bk, aors[j], loc_match_conn, &c,
					   now, k);
		loc_unlock(&bk->lock);
	}
	if (aors != stack)
		free(aors);
	if (oom)
		n = loc_shm_remove_match(s, loc_match_conn, &c, now, k);
	return n;
}
