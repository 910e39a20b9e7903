/*
 * loc_sync.c - the decisions behind repairing a Redis outage, kept pure
 * (no Redis, no clock, no store) so the unit tests can drive them with a
 * model: the bounded set of AORs whose changes
 * Redis did not take, and the per-binding reconcile of a host's copy of
 * an AOR with Redis's.
 *
 * Reconcile without tombstones: every binding carries the unix ms of
 * its last write (version) and the host that wrote it (origin).  A host
 * knows since when Redis may lack some of its writes (`since`: the
 * first of its changes Redis did not confirm; INT64_MAX when none).
 * Both sides holding a key keep the newer write.  A binding only the
 * host holds is its own write Redis missed when the host wrote it at
 * or after `since` (push it); otherwise someone removed it from Redis
 * (drop it here).  A binding of this host's that only Redis holds was
 * removed here while Redis did not listen (delete it from Redis); any
 * other was written elsewhere (take it: another host may also replay
 * old writes late).  A Redis that restarted (maybe empty) has lost
 * anything: then everything is pushed and pulled, nothing dropped.
 * Clocks of one host's processes are one clock; across hosts only
 * versions of one key are compared.  Left ambiguous, and resolved by
 * keeping the binding (it expires at its time): a removal elsewhere of
 * a binding this host wrote after `since`, and a removal here, while
 * out of step, of a binding another host wrote.
 *
 * Cost: the dirty set is O(1) per mark and lookup; a merge is
 * O(nl x nr), both at most a few tens (max_contacts).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/hash.h"
#include "location/loc_int.h"

int
loc_dirty_init(struct loc_dirty *d, uint32_t cap)
{
	uint32_t size = 16;

	memset(d, 0, sizeof(*d));
	while (size < 2 * (uint64_t)cap)
		size *= 2;
	d->tab = calloc(size, sizeof(*d->tab));
	if (!d->tab)
		return -ENOMEM;
	d->size = size;
	d->cap = cap;
	return 0;
}

void
loc_dirty_fini(struct loc_dirty *d)
{
	free(d->tab);
	d->tab = NULL;
}

/* The slot of aor, or of the empty slot where it would go.  Linear
 * probing; never full, since n <= cap <= size / 2. */
static uint32_t
loc_dirty_slot(const struct loc_dirty *d, const char *aor)
{
	uint32_t i = (uint32_t)hash_sip_nocase(hash_process_key(), aor, strlen(aor)) &
		(d->size - 1);

	while (d->tab[i][0] && strcasecmp(d->tab[i], aor) != 0)
		i = (i + 1) & (d->size - 1);
	return i;
}

void
loc_dirty_mark(struct loc_dirty *d, const char *aor)
{
	uint32_t i;

	if (d->overflow)
		return;
	i = loc_dirty_slot(d, aor);
	if (d->tab[i][0])
		return;
	if (d->n == d->cap) {
		d->overflow = 1;
		return;
	}
	strncpy(d->tab[i], aor, LOC_AOR_MAX - 1);
	d->n++;
}

int
loc_dirty_has(const struct loc_dirty *d, const char *aor)
{
	return d->overflow || (d->n && d->tab[loc_dirty_slot(d, aor)][0]);
}

void
loc_dirty_clear(struct loc_dirty *d)
{
	if (d->n)
		memset(d->tab, 0, d->size * sizeof(*d->tab));
	d->n = 0;
	d->overflow = 0;
}

void
loc_dirty_merge(struct loc_dirty *dst, const struct loc_dirty *src)
{
	for (uint32_t i = 0; src->n && i < src->size; i++)
		if (src->tab[i][0])
			loc_dirty_mark(dst, src->tab[i]);
	if (src->overflow)
		dst->overflow = 1;
}

enum loc_sync_act
loc_sync_decide(const struct loc_binding *l, const struct loc_binding *r,
		const struct loc_sync_ctx *c)
{
	if (l && r) {
		if (l->version > r->version)
			return LOC_SYNC_PUSH;
		return r->version > l->version ? LOC_SYNC_PULL : LOC_SYNC_KEEP;
	}
	if (l)			/* Redis lacks it */
		return c->all || (l->origin == c->self &&
				  l->version >= c->since) ?
			LOC_SYNC_PUSH : LOC_SYNC_DROP_LOCAL;
	if (r)			/* the host lacks it */
		return !c->all && c->since != INT64_MAX &&
			r->origin == c->self ?
			LOC_SYNC_DROP_REMOTE : LOC_SYNC_PULL;
	return LOC_SYNC_KEEP;
}

int
loc_sync_merge(const struct loc_binding *ls, int nl,
	       const struct loc_binding *rs, int nr,
	       const struct loc_sync_ctx *c, struct loc_merge *m)
{
	int n = 0;

	m->npush = m->ndrop = m->changed = m->unsure = 0;
	for (int i = 0; i < nl; i++) {
		const struct loc_binding *r = NULL;

		for (int j = 0; j < nr && !r; j++)
			if (loc_binding_same_key(&ls[i], &rs[j]))
				r = &rs[j];
		switch (loc_sync_decide(&ls[i], r, c)) {
		case LOC_SYNC_PUSH:
			m->push[m->npush++] = &ls[i];
			m->out[n++] = ls[i];
			break;
		case LOC_SYNC_KEEP:
			if (ls[i].origin == c->self && ls[i].version >= c->since)
				m->unsure++;
			m->out[n++] = ls[i];
			break;
		case LOC_SYNC_PULL:
			m->out[n++] = *r;
			m->changed = 1;
			break;
		default:	/* DROP_LOCAL: the key is in ls only */
			m->changed = 1;
			break;
		}
	}
	for (int j = 0; j < nr; j++) {
		int mine = 0;

		for (int i = 0; i < nl && !mine; i++)
			mine = loc_binding_same_key(&ls[i], &rs[j]);
		if (mine)
			continue;
		if (loc_sync_decide(NULL, &rs[j], c) == LOC_SYNC_PULL) {
			m->out[n++] = rs[j];
			m->changed = 1;
		} else {
			m->drop[m->ndrop++] = &rs[j];
		}
	}
	return n;
}
