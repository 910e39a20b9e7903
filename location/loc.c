/*
 * loc.c - the location service's public API (loc.h): checks arguments,
 * then runs each operation on the host's shared store (loc_shm.c) and,
 * in LOC_MODE_REDIS, writes the same change to Redis (loc_redis.c)
 * through the store's change sink.  With several Redis shards the sink
 * sends each AOR's change to its own shard (loc_shard.c); each shard
 * has its own link, subscription, dirty set and reconcile passes, so a
 * shard that fails holds back only its own AORs.
 *
 * Why a separate file: the store and the Redis replica are each tested
 * on their own; this is the only place that knows the store policy.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>

#include "lib/log.h"
#include "lib/rconn.h"
#include "location/loc_int.h"

struct loc {
	enum loc_mode mode;
	struct loc_shm shm;
	struct loc_sink sink;	/* LOC_MODE_REDIS: writes to Redis */
	struct loc_shard_map map;
	struct loc_redis *redis;	/* map.n shards, "main" first */
	struct loc_sink *sinks;	/* each shard's own sink */
	int open;		/* shards initialised and not yet closed */
	int64_t last_ms;	/* the last version stamped */
	uv_timer_t drain;	/* loc_drain: holds the loop until done */
	uint64_t drain_end;	/* loop ms it gives up at */
	uint32_t owed;		/* dirty AORs when it began */
};

/*
 * Stamps a change: the unix ms it is made at, strictly increasing in
 * this process, so two writes of one binding always differ in version
 * (the Redis reconcile keeps the newer one, loc_sync.c).
 */
static int64_t
loc_stamp(struct loc *l)
{
	struct timespec ts;
	int64_t ms;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (ms <= l->last_ms)
		ms = l->last_ms + 1;
	l->last_ms = ms;
	for (int i = 0; i < l->open; i++)
		l->redis[i].op_ms = ms;
	return ms;
}

/* NULL in LOC_MODE_SHM: the store then reports its changes to no one. */
static const struct loc_sink *
loc_sink(struct loc *l)
{
	return l->mode == LOC_MODE_REDIS ? &l->sink : NULL;
}

/* The sink of several shards: each change to its AOR's shard. */
static const struct loc_sink *
loc_sink_of(struct loc *l, const char *aor)
{
	return &l->sinks[loc_shard_pick(&l->map, aor)];
}

static void
loc_sink_del(void *arg, const struct loc_binding *b)
{
	const struct loc_sink *k = loc_sink_of(arg, b->aor);

	k->del(k->arg, b);
}

static void
loc_sink_set(void *arg, const struct loc_binding *b)
{
	const struct loc_sink *k = loc_sink_of(arg, b->aor);

	k->set(k->arg, b);
}

static void
loc_sink_done(void *arg, const char *aor, int64_t expire_at,
	      int64_t known_until, int fresh)
{
	const struct loc_sink *k = loc_sink_of(arg, aor);

	k->aor_done(k->arg, aor, expire_at, known_until, fresh);
}

static void
loc_free_now(void *arg)
{
	struct loc *l = arg;

	if (l->open-- > 1)	/* a shard's link is still closing */
		return;
	free(l->redis);
	free(l->sinks);
	free(l);
}

/* Unmaps the store, which the shards' listeners give up first. */
static void
loc_close_shm(struct loc *l)
{
	for (int i = 0; i < l->open; i++)
		loc_redis_unlisten(&l->redis[i]);
	loc_shm_close(&l->shm);
}

/* Closes every shard initialised, then frees l (on the loop's next
 * turn when a shard was open). */
static void
loc_release(struct loc *l)
{
	int n = l->open;

	if (n == 0) {
		l->open = 1;
		loc_free_now(l);
	}
	for (int i = 0; i < n; i++)
		loc_redis_close(&l->redis[i], loc_free_now, l);
}

/*
 * The Redis side: one loc_redis per shard, each loaded (by the process
 * that created the segment) and started.  A list of shards unlike the
 * one the store last worked with means AORs moved: every shard's next
 * pass copies those it holds for another to their owner.
 */
static int
loc_shards_open(struct loc *l, const struct loc_config *cfg, uv_loop_t *loop)
{
	const char *names[LOC_SHARDS_MAX] = { "main" };
	int n = 1 + cfg->n_shards, rc;
	uint64_t set;

	if (cfg->n_shards < 0 || n > LOC_SHARDS_MAX || (n > 1 && !cfg->shards))
		return -EINVAL;
	for (int i = 1; i < n; i++)
		names[i] = cfg->shards[i - 1].name;
	rc = loc_shard_map_init(&l->map, names, n);
	if (rc < 0)
		return rc;
	l->redis = calloc((size_t)n, sizeof(*l->redis));
	l->sinks = calloc((size_t)n, sizeof(*l->sinks));
	if (!l->redis || !l->sinks)
		return -ENOMEM;
	for (; l->open < n; l->open++) {
		struct loc_redis *r = &l->redis[l->open];

		rc = loc_redis_init(r, cfg, l->open, loop, &l->shm);
		if (rc < 0)
			return rc;
		r->map = &l->map;
		r->shards = l->redis;
		loc_redis_sink(r, &l->sinks[l->open]);
	}
	if (n == 1)
		l->sink = l->sinks[0];
	else
		l->sink = (struct loc_sink){ loc_sink_del, loc_sink_set,
					     loc_sink_done, l };
	set = loc_shard_set(&l->map);
	for (int i = 0; i < n; i++) {
		if (l->shm.created)
			loc_redis_load(&l->redis[i], time(NULL));
		else if (l->shm.orphan)
			/* bindings may have changed elsewhere since */
			l->redis[i].need_full = 1;
		if (!l->shm.created && __atomic_load_n(&l->shm.hdr->shard_set,
						       __ATOMIC_ACQUIRE) != set)
			l->redis[i].move = l->redis[i].need_full = 1;
	}
	__atomic_store_n(&l->shm.hdr->shard_set, set, __ATOMIC_RELEASE);
	/* loaded: the segment is sound even if a link fails to start, and
	 * the host's other processes may use it */
	if (l->shm.created)
		loc_shm_init_done(&l->shm);
	for (int i = 0; i < n; i++) {
		rc = loc_redis_start(&l->redis[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int
loc_new(struct loc **out, const struct loc_config *cfg, uv_loop_t *loop)
{
	struct loc *l;
	int rc;

	if (!out || !cfg || !cfg->shm_name || cfg->max_bindings <= 0 ||
	    cfg->aor_ttl < 0)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->mode = (cfg->redis_host && cfg->redis_host[0]) ||
		  (cfg->redis_sentinels && cfg->redis_sentinels[0]) ?
		LOC_MODE_REDIS : LOC_MODE_SHM;
	rc = -EINVAL;
	if (l->mode == LOC_MODE_REDIS && !loop)
		goto fail;
	rc = loc_shm_open(&l->shm, cfg);
	if (rc < 0)
		goto fail;
	if (l->mode == LOC_MODE_REDIS) {
		rc = loc_shards_open(l, cfg, loop);
		if (rc < 0) {
			loc_close_shm(l);
			loc_release(l);
			return rc;
		}
	}
	if (l->shm.created)
		loc_shm_init_done(&l->shm);
	*out = l;
	return 0;
fail:
	loc_shm_close(&l->shm);
	free(l);
	return rc;
}

void
loc_free(struct loc *l)
{
	if (!l)
		return;
	loc_close_shm(l);
	loc_release(l);
}

#define LOC_DRAIN_TICK_MS 50

/* The shards' dirty AORs, and whether any still owes Redis a write. */
static int
loc_owes(const struct loc *l, uint32_t *dirty)
{
	int owes = 0;

	*dirty = 0;
	for (int i = 0; i < l->open; i++) {
		*dirty += l->redis[i].dirty.n + l->redis[i].replay.n;
		owes |= loc_redis_owes(&l->redis[i]);
	}
	return owes;
}

static void
loc_drain_closed(uv_handle_t *h)
{
	loc_free(h->data);
}

static void
loc_drain_check(uv_timer_t *t)
{
	struct loc *l = t->data;
	uint32_t dirty;
	int owes = loc_owes(l, &dirty);

	if (owes && uv_now(t->loop) < l->drain_end) {
		for (int i = 0; i < l->open; i++)
			rconn_retry_now(l->redis[i].rc);
		return;
	}
	if (owes)
		log_warn(LOG_SYS_LOC, "stopping with %u AOR(s) not written to "
			 "Redis: they stay in this host's store, and leave "
			 "with it if the host stops too", dirty);
	else
		log_notice(LOG_SYS_LOC, "wrote the %u AOR(s) owed to Redis "
			   "before stopping", l->owed);
	uv_timer_stop(t);
	uv_close((uv_handle_t *)t, loc_drain_closed);
}

void
loc_drain(struct loc *l, int ms)
{
	uint32_t dirty;

	if (!l)
		return;
	if (l->mode != LOC_MODE_REDIS || !loc_owes(l, &dirty) ||
	    uv_timer_init(l->redis[0].loop, &l->drain) < 0) {
		loc_free(l);
		return;
	}
	l->owed = dirty;
	l->drain.data = l;
	l->drain_end = uv_now(l->redis[0].loop) + (uint64_t)ms;
	log_notice(LOG_SYS_LOC, "stopping: writing %u AOR(s) owed to Redis "
		   "first (at most %d ms)", dirty, ms);
	uv_timer_start(&l->drain, loc_drain_check, 0, LOC_DRAIN_TICK_MS);
}

int
loc_shm_unlink(const char *shm_name)
{
	if (!shm_name)
		return -EINVAL;
	return shm_unlink(shm_name) < 0 ? -errno : 0;
}

/* Whether s is a NUL-terminated string that fits its field of cap. */
static int
loc_fits(const char *s, size_t cap)
{
	return strnlen(s, cap) < cap;
}

int
loc_aor_plain(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

static int
loc_check_aor(const char *aor)
{
	size_t n;

	if (!aor || !aor[0])
		return -EINVAL;
	n = strnlen(aor, LOC_AOR_MAX);
	if (n == LOC_AOR_MAX)
		return -E2BIG;
	return loc_aor_plain(aor, n) ? 0 : -EINVAL;
}

int
loc_lookup(struct loc *l, const char *aor, int64_t now,
	   struct loc_binding *out, int max, int *known)
{
	int rc = loc_check_aor(aor);

	if (known)
		*known = 0;
	if (!l || max < 0 || (max > 0 && !out))
		return -EINVAL;
	if (rc < 0)
		return rc;
	return loc_shm_lookup(&l->shm, aor, now, out, max, known);
}

/* Whether b may be stored: 0, -EINVAL or -E2BIG. */
static int
loc_check_binding(const struct loc_binding *b)
{
	int rc = loc_check_aor(b->aor);

	if (rc == 0 && !b->contact[0])
		rc = -EINVAL;
	if (rc == 0 && !(loc_fits(b->contact, LOC_URI_MAX) &&
			 loc_fits(b->callid, LOC_CALLID_MAX) &&
			 loc_fits(b->instance, LOC_INSTANCE_MAX) &&
			 loc_fits(b->user_agent, LOC_UA_MAX) &&
			 loc_fits(b->path, LOC_PATH_MAX)))
		rc = -E2BIG;
	return rc;
}

int
loc_save(struct loc *l, const struct loc_binding *b, int64_t now)
{
	struct loc_binding nb;
	int rc;

	if (!l || !b)
		return -EINVAL;
	rc = loc_check_binding(b);
	if (rc < 0)
		return rc;
	nb = *b;
	nb.version = loc_stamp(l);
	nb.origin = l->shm.hdr->seg_id;
	return loc_shm_save(&l->shm, &nb, now, loc_sink(l));
}

int
loc_lookup_seq(struct loc *l, const char *aor, int64_t now,
	       struct loc_binding *out, int max, int *known, uint32_t *seq)
{
	int rc = loc_check_aor(aor);

	if (known)
		*known = 0;
	if (!l || !seq || max < 0 || (max > 0 && !out))
		return -EINVAL;
	if (rc < 0)
		return rc;
	return loc_shm_lookup_seq(&l->shm, aor, now, out, max, known, seq);
}

int
loc_update(struct loc *l, const char *aor, uint32_t seq,
	   struct loc_change *ch, int n, int64_t now)
{
	int rc = loc_check_aor(aor);

	if (!l || n < 0 || (n > 0 && !ch))
		return -EINVAL;
	for (int i = 0; rc == 0 && i < n; i++) {
		if (ch[i].op == LOC_CHANGE_REMOVE_ALL)
			continue;
		if (strcasecmp(ch[i].b.aor, aor) != 0)
			rc = -EINVAL;
		else if (ch[i].op == LOC_CHANGE_SAVE)
			rc = loc_check_binding(&ch[i].b);
		else if (ch[i].op != LOC_CHANGE_REMOVE ||
			 !loc_fits(ch[i].b.contact, LOC_URI_MAX))
			rc = -EINVAL;
	}
	if (rc < 0)
		return rc;
	for (int i = 0; i < n; i++) {
		ch[i].b.version = loc_stamp(l);
		ch[i].b.origin = l->shm.hdr->seg_id;
	}
	if (n == 0)
		loc_stamp(l);
	return loc_shm_apply(&l->shm, aor, seq, ch, n, now, loc_sink(l));
}

int
loc_remove(struct loc *l, const char *aor, const char *contact, int64_t now)
{
	int rc = loc_check_aor(aor);

	if (!l || !contact)
		return -EINVAL;
	if (rc < 0)
		return rc;
	loc_stamp(l);
	return loc_shm_remove(&l->shm, aor, contact, now, loc_sink(l));
}

int
loc_remove_aor(struct loc *l, const char *aor, int64_t now)
{
	int rc = loc_check_aor(aor);

	if (!l)
		return -EINVAL;
	if (rc < 0)
		return rc;
	loc_stamp(l);
	return loc_shm_remove_aor(&l->shm, aor, now, loc_sink(l));
}

int
loc_remove_conn(struct loc *l, uint16_t edge_id, uint64_t conn_id,
		int64_t now)
{
	if (!l)
		return -EINVAL;
	loc_stamp(l);
	return loc_shm_remove_conn(&l->shm, edge_id, conn_id, now, loc_sink(l));
}

void
loc_expire(struct loc *l, int64_t now)
{
	if (!l)
		return;
	loc_stamp(l);
	loc_shm_expire(&l->shm, now, loc_sink(l));
}

int
loc_synced(const struct loc *l, const char *aor)
{
	if (l == NULL)
		return 1;
	for (int i = 0; i < l->open; i++) {
		const struct loc_redis *r = &l->redis[i];

		if (aor && !loc_redis_owns(r, aor))
			continue;
		if (!loc_redis_in_step(r) ||
		    !__atomic_load_n(&r->sync->heard_ok, __ATOMIC_ACQUIRE) ||
		    loc_now_ms() < r->settle_ms)
			return 0;
	}
	return 1;
}

void
loc_stats_get(struct loc *l, struct loc_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!l)
		return;
	st->bindings = __atomic_load_n(&l->shm.hdr->nbindings,
				       __ATOMIC_RELAXED);
	st->aors = __atomic_load_n(&l->shm.hdr->naors, __ATOMIC_RELAXED);
	st->capacity = l->shm.hdr->nslots;
	for (int i = 0; i < l->open; i++) {
		const struct loc_redis *r = &l->redis[i];

		st->redis_errors += r->errors;
		st->redis_connected += r->link == LOC_LINK_UP;
		st->redis_pending += (uint64_t)rconn_pending(r->rc);
		st->redis_dirty += r->dirty.n + r->replay.n;
		st->redis_syncs += r->syncs;
	}
}
