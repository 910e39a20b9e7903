/*
 * loc_recon.c - reconciling the host's store with Redis: one AOR when
 * another host announced a change of it, or a pass over many after
 * Redis failed (loc_redis.c owns the link, the schema and the writes;
 * loc_sync.c the merge decisions).
 *
 * One AOR: HGETALL, merged with the store by binding version and origin
 * (loc_sync_merge) on both sides; Redis is written with a script that
 * only replaces an older version and only deletes the version it read.
 * A local write to the same bucket since the fetch was sent (wseq)
 * fetches again, at most LOC_FETCH_TRIES times.  Every core on a host
 * fetches: the cost is one HGETALL per core per remote change.
 *
 * A pass (paced: at most LOC_PASS_WINDOW commands in flight) covers the
 * dirty AORs only, or, after a link failure (invalidations may have
 * been missed), a Redis restart or an overflow of the dirty set, every
 * AOR of the host's store and every AOR key in Redis (SCAN).  After a
 * restart (a new run_id, maybe an empty Redis) the pass pushes and
 * pulls everything and drops nothing (the "k" markers of AORs with no
 * binding are not pushed: they come back as 404, not 480).  A full
 * pass with no failure meanwhile puts the host back in step.
 * With several shards (loc_shard.c) each shard has its own passes, over
 * the AORs it owns.  A key found on a shard that does not own its AOR
 * is a stray of a change of the shard list: it merges into the store
 * as a union (never proving a removal) and is copied to its owner; a
 * full pass reads strays only when the list changed (r->move), an
 * invalidation on that shard (a host still on the old list) always.
 * Cost: a full pass is a SCAN of Redis's AOR keys and one HGETALL per
 * AOR, in every core of the host (each reconciles its own view of the
 * link); a dirty pass, one HGETALL per dirty AOR.  An AOR reconciles at
 * most LOC_SYNC_MAX local bindings (max_contacts is at most 16).
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/rconn.h"
#include "lib/sip.h"
#include "location/loc_int.h"

#define LOC_FETCH_TRIES  3
#define LOC_PASS_WINDOW  128	/* a pass's commands in flight */

/* Writes b to Redis unless Redis holds a newer version of its key; with
 * ARGV[2] "", deletes the key if it still holds version ARGV[3].  The
 * version is where loc_codec.c's V2 and V3 put it. */
const char loc_lua_sync[] =
	"local function v(s) local k = string.byte(s, 2) "
	"if k ~= 2 and k ~= 3 then return 0 end "
	"local h, l = struct.unpack('>I4I4', s, 3) "
	"return h * 4294967296 + l end "
	"local c = redis.call('HGET', KEYS[1], ARGV[1]) "
	"if ARGV[2] == '' then "
	"if c and v(c) == tonumber(ARGV[3]) then "
	"return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0 end "
	"if c and v(c) >= v(ARGV[2]) then return 0 end "
	"return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])";

/* A copy of a stray to its owner (loc_recon_forward), confirmed by the
 * owner's answer to its PUBLISH. */
struct loc_forwarded {
	struct loc_redis *r;	/* the shard the stray is on */
	char aor[LOC_AOR_MAX];
};

static void
loc_recon_on_forwarded(redisAsyncContext *ac, void *reply, void *priv)
{
	struct loc_redis *o = rconn_arg(ac);
	struct loc_forwarded *c = priv;
	redisReply *rep = reply;

	if (o->closing) {
		free(c);
		return;
	}
	if (!rep) {		/* the link failed: copied again when back */
		o->errors++;
		o->strays_wait = 1;
	} else if (rep->type == REDIS_REPLY_ERROR) {
		o->errors++;
		loc_redis_refetch(c->r, c->aor);
	} else {
		/* The owner's own reconcile may have read it before the copy
		 * and dropped it from the store, and this host does not hear
		 * its own PUBLISH: read the owner again, and make a reconcile
		 * whose reply predates the copy read again too. */
		loc_shm_touch(o->shm, c->aor);
		loc_recon_fetch(o, c->aor, 0);
	}
	free(c);
}

/*
 * An AOR found on a shard that does not own it (the shard list changed,
 * or a host still on the old list wrote it there): its bindings rs[0..n)
 * are copied to the owner, each only over an older version, and the
 * owner's hosts are told.  The stray key is left to expire at its own
 * time: a host on the old list still reads it.  A copy the owner does
 * not confirm is not the owner's unsent write (its reconcile would then
 * drop from the store what only the stray holds): an owner that is or
 * goes down has every other shard move its strays again once it is
 * back (o->strays_wait); otherwise this shard fetches the stray again.
 * A confirmed copy is read back from the owner (loc_recon_on_forwarded).
 */
static void
loc_recon_forward(struct loc_redis *r, const char *aor,
		  const struct loc_binding *rs, int n)
{
	struct loc_redis *o = &r->shards[loc_shard_pick(r->map, aor)];
	char key[LOC_KEY_MAX], field[LOC_FIELD_MAX], val[LOC_REDIS_VAL_MAX];
	char msg[LOC_INVAL_MAX];
	struct loc_forwarded *c;
	int64_t latest = 0;

	if (n == 0)
		return;
	if (o->link != LOC_LINK_UP) {
		o->strays_wait = 1;
		return;
	}
	loc_redis_key(o, aor, key);
	for (int i = 0; i < n; i++) {
		int len = loc_binding_encode(&rs[i], val, sizeof(val));

		if (len < 0)
			continue;
		loc_binding_field(&rs[i], field, sizeof(field));
		loc_redis_write(o, "EVAL %s 1 %s %s %b %s", loc_lua_sync, key,
				field, val, (size_t)len, "");
		if (rs[i].expires > latest)
			latest = rs[i].expires;
	}
	loc_redis_expire(o, key, (long long)(latest + o->shm->aor_ttl) * 1000);
	c = malloc(sizeof(*c));
	if (c) {
		c->r = r;
		sip_copy(c->aor, sizeof(c->aor), key + loc_key_aor_at(o));
	}
	loc_redis_inval_msg(o, key, msg);
	if (!c || o->batch_bad ||
	    loc_redis_send(o, loc_recon_on_forwarded, c, "PUBLISH %s:inval %s",
			   o->prefix, msg) < 0) {
		free(c);
		loc_redis_refetch(r, aor);
	}
	o->batch_bad = 0;
	log_info(LOG_SYS_LOC, "redis %s: %d bindings of %s copied to their "
		 "shard %s", r->where, n, aor, o->where);
}

/*
 * Reconciles aor between the store and an HGETALL reply of it
 * (loc_sync_merge), on both sides; for a pass (pass nonzero) it also
 * announces the host's writes Redis holds without a known invalidation.
 * Returns 0, -EAGAIN when a local write happened since wseq (fetch
 * again), or another negative errno.
 */
static int
loc_recon_merge(struct loc_redis *r, const char *aor,
		const redisReply *rep, uint32_t wseq, uint32_t pass)
{
	struct loc_binding *rs, ls[LOC_SYNC_MAX], *out = NULL;
	const struct loc_binding **ptrs = NULL;
	struct loc_merge m = { 0 };
	int stray = !loc_redis_owns(r, aor);
	/* A stray copy merges as a union: it neither proves a removal nor
	 * is written to (its owner is) */
	struct loc_sync_ctx ctx = {
		r->seg_id,
		__atomic_load_n(&r->sync->unsync_ms, __ATOMIC_ACQUIRE),
		r->push_all || stray,
	};
	char key[LOC_KEY_MAX], field[LOC_FIELD_MAX], val[LOC_REDIS_VAL_MAX];
	int64_t now = time(NULL), known_until, latest = 0;
	int nl, nr, n, known, rc;

	rc = loc_redis_parse(r, aor, rep, now, &rs, &nr, &known_until);
	if (rc < 0)
		return rc;
	nl = loc_shm_lookup(r->shm, aor, now, ls, LOC_SYNC_MAX, &known);
	rc = nl < 0 ? nl : -ENOMEM;
	if (nl < 0)
		goto out;
	out = malloc((size_t)(nl + nr + 1) * sizeof(*out));
	ptrs = malloc((size_t)(nl + nr + 1) * sizeof(*ptrs));
	if (!out || !ptrs)
		goto out;
	m.out = out;
	m.push = ptrs;
	m.drop = ptrs + nl;
	n = loc_sync_merge(ls, nl, rs, nr, &ctx, &m);
	/* No binding on either side: Redis says whether the AOR is known. */
	if (n == 0 && nl == 0 && !ctx.all && known != (known_until > now))
		m.changed = 1;
	if (m.changed) {
		rc = loc_shm_replace_aor(r->shm, aor, out, n,
					 n ? 0 : known_until, now, &wseq);
		if (rc < 0)
			goto out;
	}
	rc = 0;
	if (stray) {
		loc_recon_forward(r, aor, rs, nr);
		r->pass.pulled += m.changed;
		goto out;
	}
	loc_redis_key(r, aor, key);
	for (int i = 0; i < m.npush + m.ndrop; i++) {
		const struct loc_binding *b = i < m.npush ? m.push[i] :
			m.drop[i - m.npush];
		char ver[24] = "";
		int len = 0;

		if (i < m.npush)
			len = loc_binding_encode(b, val, sizeof(val));
		else
			snprintf(ver, sizeof(ver), "%" PRId64, b->version);
		loc_binding_field(b, field, sizeof(field));
		loc_redis_write(r, "EVAL %s 1 %s %s %b %s", loc_lua_sync, key,
				field, val, (size_t)(len > 0 ? len : 0), ver);
	}
	for (int i = 0; i < n; i++)
		if (out[i].expires > latest)
			latest = out[i].expires;
	if (m.npush)
		loc_redis_expire(r, key,
				 (long long)(latest + r->shm->aor_ttl) * 1000);
	/* Not confirmed, the pushes stay unsent writes as of their version */
	latest = m.unsure ? ctx.since : loc_now_ms();
	for (int i = 0; i < m.npush; i++)
		if (m.push[i]->version < latest)
			latest = m.push[i]->version;
	/* A write whose PUBLISH did not go (the link full or failed) is
	 * found again by the pass with nothing left to push: the other
	 * hosts must still hear of it, or they never fetch it. */
	if (m.npush + m.ndrop || (pass && m.unsure))
		loc_redis_publish(r, aor, latest);
	r->pass.pushed += m.npush;
	r->pass.dropped += m.ndrop;
	r->pass.pulled += m.changed;
out:
	free(out);
	free(ptrs);
	free(rs);
	return rc;
}

struct loc_fetch {
	struct loc_redis *r;
	uint32_t wseq;
	uint32_t pass;		/* the pass's gen, 0 for an invalidation */
	int tries;
	char aor[LOC_AOR_MAX];
};

static int loc_recon_fetch_send(struct loc_fetch *f);

/* A fetch of a pass is over: the pass may go on. */
static void
loc_recon_fetch_end(struct loc_redis *r, uint32_t pass, int step)
{
	if (pass && pass == r->pass.gen && r->pass.on) {
		r->pass.inflight--;
		if (step)
			loc_recon_step(r);
	}
}

static void
loc_recon_on_fetch(redisAsyncContext *ac, void *reply, void *priv)
{
	struct loc_fetch *f = priv;
	struct loc_redis *r = f->r;
	uint32_t pass = f->pass;
	int rc;

	(void)ac;
	if (r->closing) {
		free(f);
		return;
	}
	if (!reply) {		/* the link failed: the next pass covers it */
		r->errors++;
		loc_redis_refetch(r, f->aor);
		free(f);
		loc_recon_fetch_end(r, pass, 0);
		return;
	}
	rc = loc_recon_merge(r, f->aor, reply, f->wseq, pass);
	if (rc == -EAGAIN && ++f->tries < LOC_FETCH_TRIES) {
		if (loc_recon_fetch_send(f) < 0)
			loc_recon_fetch_end(r, pass, 1);
		return;
	}
	if (rc < 0) {
		r->errors++;
		log_warn(LOG_SYS_LOC, "redis: cannot reconcile %s: %s", f->aor,
			 strerror(-rc));
	}
	free(f);
	loc_recon_fetch_end(r, pass, 1);
}

/* Sends (again) the HGETALL of f's AOR; takes ownership of f.  0, or
 * -EAGAIN when it could not be sent (f's AOR is then marked dirty). */
static int
loc_recon_fetch_send(struct loc_fetch *f)
{
	struct loc_redis *r = f->r;
	char key[LOC_KEY_MAX];

	f->wseq = loc_shm_wseq(r->shm, f->aor);
	loc_redis_key(r, f->aor, key);
	if (loc_redis_send(r, loc_recon_on_fetch, f, "HGETALL %s", key) < 0) {
		loc_redis_refetch(r, f->aor);
		free(f);
		return -EAGAIN;
	}
	/* a reply waited on: not held back with the write-behind ones */
	rconn_flush_now(r->rc);
	return 0;
}

/* Fetches and reconciles aor, for a pass (its gen) or an invalidation
 * (0).  0 or a negative errno. */
int
loc_recon_fetch(struct loc_redis *r, const char *aor, uint32_t pass)
{
	struct loc_fetch *f = calloc(1, sizeof(*f));

	if (!f) {
		r->errors++;
		loc_redis_refetch(r, aor);
		return -ENOMEM;
	}
	f->r = r;
	f->pass = pass;
	snprintf(f->aor, sizeof(f->aor), "%s", aor);
	return loc_recon_fetch_send(f);
}

/* Begins a pass over the dirty AORs, or over every AOR after a link
 * failure or an overflow of the dirty set. */
void
loc_recon_start(struct loc_redis *r)
{
	struct loc_pass *p = &r->pass;
	uint32_t gen = p->gen + 1 ? p->gen + 1 : 1;

	loc_dirty_merge(&r->replay, &r->dirty);
	loc_dirty_clear(&r->dirty);
	memset(p, 0, sizeof(*p));
	p->gen = gen;
	p->on = 1;
	p->all = r->push_all;
	p->full = r->need_full || r->push_all || r->replay.overflow || r->move;
	p->move = r->move;
	/* Taken by this pass: a request made while it runs (a takeover of
	 * the listener, an owner back that missed strays) starts another. */
	r->need_full = r->move = 0;
	p->unsync_gen = __atomic_load_n(&r->sync->unsync_gen,
					__ATOMIC_ACQUIRE);
	if (!p->full)
		p->bucket = UINT32_MAX;
	p->start_ms = loc_now_ms();
	log_info(LOG_SYS_LOC, "redis %s: reconciling %s%s, %u AORs dirty",
		 r->where, p->all ? "every AOR (Redis restarted)" : p->full ?
		 "every AOR" : "the dirty AORs", p->move ? ", moving the AORs "
		 "another shard owns" : "", r->replay.n);
	loc_recon_step(r);
}

/* The link failed: the dirty AORs wait for the next pass. */
void
loc_recon_abort(struct loc_redis *r)
{
	if (!r->pass.on)
		return;
	r->pass.on = 0;
	if (r->pass.full)
		r->need_full = 1;
	if (r->pass.move)
		r->move = 1;
	loc_dirty_merge(&r->dirty, &r->replay);
	loc_dirty_clear(&r->replay);
}

static void
loc_recon_end(struct loc_redis *r)
{
	struct loc_pass *p = &r->pass;

	p->on = 0;
	r->syncs++;
	loc_dirty_clear(&r->replay);
	/* A full pass without a new failure meanwhile put the whole host
	 * back in step, writes of its other processes included. */
	if (p->full && __atomic_load_n(&r->sync->unsync_gen,
				       __ATOMIC_ACQUIRE) == p->unsync_gen)
		__atomic_store_n(&r->sync->unsync_ms, INT64_MAX,
				 __ATOMIC_RELEASE);
	if (p->full) {
		int64_t now = loc_now_ms();

		r->push_all = 0;
		loc_redis_heard_check(r);
		/* The failure behind this pass may have kept other hosts'
		 * cores from Redis too: each writes what it took meanwhile
		 * once its own back-off lets it link again, and its own pass
		 * takes about as long as this one.  Until then a lookup that
		 * finds nothing may miss a registration still on its way. */
		r->settle_ms = now + r->backoff_max_ms + r->timeout_ms +
			       (now - p->start_ms);
	}
	log_notice(LOG_SYS_LOC, "redis %s: reconciled %" PRIu64 " AORs in "
		   "%" PRId64 " ms: %" PRIu64 " bindings pushed, %" PRIu64
		   " deleted, %" PRIu64 " AORs updated here", r->where,
		   p->aors, loc_now_ms() - p->start_ms, p->pushed, p->dropped,
		   p->pulled);
}

static void
loc_recon_on_scan(redisAsyncContext *ac, void *reply, void *priv)
{
	struct loc_redis *r = rconn_arg(ac);
	redisReply *rep = reply, *keys;
	size_t plen = loc_key_aor_at(r);
	int known;

	if (r->closing)
		return;
	if (!rep || (uint32_t)(uintptr_t)priv != r->pass.gen || !r->pass.on)
		return;
	r->pass.inflight--;
	r->pass.scan_sent = 0;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[1]->type != REDIS_REPLY_ARRAY) {
		rconn_fail(r->rc, "unexpected SCAN reply");
		return;
	}
	snprintf(r->pass.cursor, sizeof(r->pass.cursor), "%s",
		 rep->element[0]->str);
	keys = rep->element[1];
	/* An AOR the host holds was reconciled by the walk of the store;
	 * one another shard owns is a stray copy, only read by a move. */
	for (size_t i = 0; i < keys->elements; i++) {
		const char *aor = keys->element[i]->str + plen;

		if (keys->element[i]->type != REDIS_REPLY_STRING ||
		    keys->element[i]->len <= plen ||
		    strlen(aor) >= LOC_AOR_MAX)
			continue;
		if (loc_redis_owns(r, aor))
			loc_shm_lookup(r->shm, aor, time(NULL), NULL, 0, &known);
		else
			known = !r->pass.move;
		if (!known && loc_recon_fetch(r, aor, r->pass.gen) == 0) {
			r->pass.inflight++;
			r->pass.aors++;
		}
	}
	if (strcmp(r->pass.cursor, "0") == 0)
		r->pass.scanning = 2;	/* done */
	loc_recon_step(r);
}

/*
 * Sends the pass's next fetches while fewer than LOC_PASS_WINDOW
 * commands are in flight: the dirty AORs (bucket UINT32_MAX), or the
 * store's AORs bucket by bucket, then the AOR keys of Redis (SCAN).
 */
void
loc_recon_step(struct loc_redis *r)
{
	struct loc_pass *p = &r->pass;
	char aors[8][LOC_AOR_MAX];

	while (p->on && r->link == LOC_LINK_UP &&
	       loc_redis_pending(r) < LOC_PASS_WINDOW &&
	       loc_redis_pending(r) < r->max_pending) {
		if (p->bucket == UINT32_MAX) {
			/* the dirty AORs: drained from the replay table */
			while (p->slot < r->replay.size &&
			       !r->replay.tab[p->slot][0])
				p->slot++;
			if (p->slot >= r->replay.size) {
				p->scanning = 2;
				break;
			}
			if (loc_recon_fetch(r, r->replay.tab[p->slot++],
					    p->gen) < 0)
				break;
			p->inflight++;
			p->aors++;
		} else if (!p->scanning) {
			int n = loc_shm_bucket_aors(r->shm, p->bucket, aors, 8);
			int i;

			/* A fetch refused (the link full) resumes here on the
			 * next step: the bucket's other AORs are not skipped. */
			for (i = p->in_bucket; i < n; i++) {
				if (!loc_redis_owns(r, aors[i]))
					continue;	/* its shard's pass */
				if (loc_recon_fetch(r, aors[i], p->gen) < 0)
					break;
				p->inflight++;
				p->aors++;
			}
			if (i < n) {
				p->in_bucket = i;
				break;
			}
			p->in_bucket = 0;
			if (++p->bucket >= r->shm->hdr->nbuckets)
				p->scanning = 1;
		} else if (p->scanning == 1 && !p->scan_sent) {
			if (loc_redis_send(r, loc_recon_on_scan,
					   (void *)(uintptr_t)p->gen,
					   "SCAN %s MATCH %s:aor:* COUNT 100",
					   p->cursor[0] ? p->cursor : "0",
					   r->prefix) < 0)
				break;
			rconn_flush_now(r->rc);
			p->scan_sent = 1;
			p->inflight++;
		} else {
			break;
		}
	}
	if (p->on && p->scanning == 2 && p->inflight == 0)
		loc_recon_end(r);
}
