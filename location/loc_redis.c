/*
 * loc_redis.c - the cluster's copy of the bindings in Redis, written
 * through from the host's shared store, and the invalidations that
 * keep other hosts' stores up to date.
 *
 * Schema (prefix from the configuration, AOR lower-cased):
 *   <prefix>:aor:<aor>   hash, one field per binding:
 *       "i:<instance>:<reg-id>"  a binding with a +sip.instance
 *       "c:<contact URI>"        any other binding
 *       value: loc_binding_encode() (loc_codec.c), versioned
 *     plus, when the AOR has no binding left but is still known
 *     (404 vs 480): field "k" = the unix second it is known until.
 *     PEXPIREAT: the latest binding expiry + aor_ttl, or the "k" time,
 *     so Redis drops what no host swept.
 *   <prefix>:inval       channel; message "<segment id hex> <aor>"
 *     after every change of an AOR.
 *
 * Writes: the shared store first (the caller's answer never waits for
 * Redis), then HSET/HDEL, PEXPIREAT and PUBLISH on one async hiredis
 * connection, in that order, so a host that reads the AOR after the
 * PUBLISH sees the write.  A second connection SUBSCRIBEs; a message
 * from another segment (another host) fetches the AOR (HGETALL) and
 * reconciles the local copy with it (loc_sync.c), unless a local write
 * to the same bucket happened since the fetch was sent (then it fetches
 * again, at most LOC_FETCH_TRIES times).  Every core on a host fetches:
 * the cost is one HGETALL per core per remote change.
 *
 * Start-up: the process that creates the segment loads every AOR with
 * a blocking SCAN + pipelined HGETALL, before its loop runs.  Later a
 * command is never blocking.
 *
 * Faults.  The link is DOWN, CONNECTING (both connections dialled, the
 * INFO and SUBSCRIBE not yet answered) or UP.  A tick every
 * LOC_TICK_MS turns a connect or a command unanswered for timeout_ms
 * into a failure: both connections are dropped (a stalled Redis then
 * costs no buffer) and redialled after a back-off doubling up to
 * backoff_max_ms; the state changes are logged, the attempts are not.
 * A write is only sent while UP and fewer than max_pending commands
 * are in flight; otherwise, or when its PUBLISH is not answered, its
 * AOR goes to this process's dirty set (bounded, loc_sync.c) and the
 * segment records since when the host is out of step (unsync_ms, the
 * earliest such moment of any of its processes).  When the link is UP
 * a reconcile pass runs (paced: at most LOC_PASS_WINDOW commands in
 * flight): over every AOR of the host's store and every AOR key in
 * Redis after a link failure (invalidations may have been missed) or
 * an overflow of the dirty set, over the dirty AORs only otherwise.
 * Each AOR is merged by binding version and origin (loc_sync.c), and
 * Redis is written with a script that only replaces an older version
 * and only deletes the version it read.  A full pass with no failure
 * meanwhile puts the host back in step.  INFO's run_id, remembered in
 * the segment, tells a restarted Redis (maybe empty): then the pass
 * pushes and pulls everything and drops nothing (the "k" markers of
 * AORs with no binding are not pushed: they come back as 404, not 480).
 * Cost: a full pass is a SCAN of Redis's AOR keys and one HGETALL per
 * AOR, in every core of the host (each reconciles its own view of the
 * link); a dirty pass, one HGETALL per dirty AOR.  An AOR reconciles at
 * most LOC_SYNC_MAX local bindings (max_contacts is at most 16).
 */
#include <errno.h>
#include <hiredis/adapters/libuv.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/hash.h"
#include "lib/log.h"
#include "location/loc_int.h"

#define LOC_FETCH_TRIES  3
#define LOC_TICK_MS      100
#define LOC_PASS_WINDOW  128	/* a pass's commands in flight */
#define LOC_SYNC_MAX     32	/* bindings of one AOR a reconcile reads
				   locally (max_contacts is at most 16) */
#define LOC_KEY_MAX      (64 + 5 + LOC_AOR_MAX)
#define LOC_FIELD_MAX    (LOC_URI_MAX + 16)	/* loc_binding_field */

static void
loc_redis_key(const struct loc_redis *r, const char *aor, char *key)
{
	int n = snprintf(key, LOC_KEY_MAX, "%s:aor:", r->prefix);

	for (; *aor && n < LOC_KEY_MAX - 1; aor++)
		key[n++] = (*aor >= 'A' && *aor <= 'Z') ? *aor + 32 : *aor;
	key[n] = '\0';
}

static int64_t
loc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void loc_redis_fail(struct loc_redis *r, const redisAsyncContext *gone,
			   const char *why);
static void loc_redis_pass_step(struct loc_redis *r);

/* ---- commands on the cmd connection, counted while in flight */

/* Every cmd callback starts here: one command less in flight. */
static void
loc_redis_answered(struct loc_redis *r)
{
	if (r->pending > 0)
		r->pending--;
	r->progress_ms = loc_now_ms();
}

static int
loc_redis_vsend(struct loc_redis *r, redisCallbackFn *fn, void *priv,
		const char *fmt, va_list ap)
{
	if (!r->cmd || redisvAsyncCommand(r->cmd, fn, priv, fmt, ap) != REDIS_OK)
		return -EIO;
	if (r->pending++ == 0)
		r->progress_ms = loc_now_ms();
	return 0;
}

/* Sends one command while UP and under max_pending; 0, or -EAGAIN
 * (not sent: counted, the caller marks its AOR dirty). */
static int
loc_redis_vtry(struct loc_redis *r, redisCallbackFn *fn, void *priv,
	       const char *fmt, va_list ap)
{
	if (r->link != LOC_LINK_UP || r->pending >= r->max_pending ||
	    loc_redis_vsend(r, fn, priv, fmt, ap) < 0) {
		r->errors++;
		return -EAGAIN;
	}
	return 0;
}

static int
loc_redis_send(struct loc_redis *r, redisCallbackFn *fn, void *priv,
	       const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = loc_redis_vtry(r, fn, priv, fmt, ap);
	va_end(ap);
	return rc;
}

/* Redis may lack a write of the host made at t (unix ms). */
static void
loc_redis_unsync(struct loc_redis *r, int64_t t)
{
	struct loc_shm_hdr *h = r->shm->hdr;
	int64_t cur = __atomic_load_n(&h->unsync_ms, __ATOMIC_RELAXED);

	while (t < cur && !__atomic_compare_exchange_n(&h->unsync_ms, &cur, t,
						       0, __ATOMIC_RELEASE,
						       __ATOMIC_RELAXED))
		;
	__atomic_fetch_add(&h->unsync_gen, 1, __ATOMIC_RELEASE);
}

/* Remembers aor for the next pass: a fetch of it failed. */
static void
loc_redis_refetch(struct loc_redis *r, const char *aor)
{
	int was = r->dirty.overflow;

	loc_dirty_mark(&r->dirty, aor);
	if (r->dirty.overflow && !was)
		log_warn(LOG_SYS_LOC, "redis: more than %u AORs unsent; the "
			 "whole store is reconciled when Redis answers",
			 r->dirty.cap);
}

/* Remembers that Redis did not confirm a change of aor made at t ms. */
static void
loc_redis_mark(struct loc_redis *r, const char *aor, int64_t t)
{
	loc_redis_unsync(r, t);
	loc_redis_refetch(r, aor);
}

static void
loc_redis_on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct loc_redis *r = ac->data;
	redisReply *rep = reply;

	(void)priv;
	if (r->closing)
		return;
	loc_redis_answered(r);
	if (!rep) {		/* the disconnect itself is logged once */
		r->errors++;
	} else if (rep->type == REDIS_REPLY_ERROR) {
		r->errors++;
		log_warn(LOG_SYS_LOC, "redis: %s", rep->str);
	}
}

/* The last command of a change of an AOR: its answer confirms the
 * whole change (replies come in order). */
struct loc_change {
	int64_t ms;
	char aor[LOC_AOR_MAX];
};

static void
loc_redis_on_published(redisAsyncContext *ac, void *reply, void *priv)
{
	struct loc_change *c = priv;
	redisReply *rep = reply;

	loc_redis_on_reply(ac, reply, NULL);
	if (!((struct loc_redis *)ac->data)->closing &&
	    (!rep || rep->type == REDIS_REPLY_ERROR))
		loc_redis_mark(ac->data, c->aor, c->ms);
	free(c);
}

/* Sends a write of the change being reported; a write not sent spoils
 * the change (its AOR becomes dirty when it ends). */
static void
loc_redis_write(struct loc_redis *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (loc_redis_vtry(r, loc_redis_on_reply, NULL, fmt, ap) < 0)
		r->batch_bad = 1;
	va_end(ap);
}

/* Tells other hosts that aor changed; ms is the change's time, for the
 * dirty set if the message does not get through. */
static void
loc_redis_publish(struct loc_redis *r, const char *aor, int64_t ms)
{
	struct loc_change *c = malloc(sizeof(*c));
	char key[LOC_KEY_MAX], msg[32 + LOC_AOR_MAX];

	loc_redis_key(r, aor, key);
	snprintf(msg, sizeof(msg), "%016" PRIx64 " %s", r->seg_id,
		 key + strlen(r->prefix) + 5);
	if (c) {
		c->ms = ms;
		strcpy(c->aor, key + strlen(r->prefix) + 5);
	}
	if (!c || r->batch_bad ||
	    loc_redis_send(r, loc_redis_on_published, c, "PUBLISH %s:inval %s",
			   r->prefix, msg) < 0) {
		free(c);
		loc_redis_mark(r, aor, ms);
	}
	r->batch_bad = 0;
}

static void
loc_redis_sink_del(void *arg, const struct loc_binding *b)
{
	struct loc_redis *r = arg;
	char key[LOC_KEY_MAX], field[LOC_FIELD_MAX];

	loc_redis_key(r, b->aor, key);
	loc_binding_field(b, field, sizeof(field));
	loc_redis_write(r, "HDEL %s %s", key, field);
}

static void
loc_redis_sink_set(void *arg, const struct loc_binding *b)
{
	struct loc_redis *r = arg;
	char key[LOC_KEY_MAX], field[LOC_FIELD_MAX], val[LOC_REDIS_VAL_MAX];
	int n = loc_binding_encode(b, val, sizeof(val));

	if (n < 0) {		/* loc_save checked every field: cannot be */
		r->errors++;
		return;
	}
	loc_redis_key(r, b->aor, key);
	loc_binding_field(b, field, sizeof(field));
	loc_redis_write(r, "HSET %s %s %b", key, field, val, (size_t)n);
}

static void
loc_redis_sink_done(void *arg, const char *aor, int64_t expire_at,
		    int64_t known_until)
{
	struct loc_redis *r = arg;
	char key[LOC_KEY_MAX];

	loc_redis_key(r, aor, key);
	if (expire_at) {
		loc_redis_write(r, "PEXPIREAT %s %lld", key,
				(long long)expire_at * 1000);
	} else if (known_until) {
		loc_redis_write(r, "HSET %s k %lld", key,
				(long long)known_until);
		loc_redis_write(r, "PEXPIREAT %s %lld", key,
				(long long)known_until * 1000);
	} else {
		loc_redis_write(r, "DEL %s", key);
	}
	loc_redis_publish(r, aor, r->op_ms);
}

void
loc_redis_sink(struct loc_redis *r, struct loc_sink *k)
{
	k->del = loc_redis_sink_del;
	k->set = loc_redis_sink_set;
	k->aor_done = loc_redis_sink_done;
	k->arg = r;
}

/* ---- reading an AOR back */

/*
 * Decodes an HGETALL reply of aor into *bs (malloc'ed, the caller
 * frees) and *n live bindings; bindings already expired are left out
 * but still keep the AOR known until *known_until.  0, -ENOMEM, or
 * -EPROTO for a reply that is no hash.
 */
static int
loc_redis_parse(struct loc_redis *r, const char *aor, const redisReply *rep,
		int64_t now, struct loc_binding **bs, int *n,
		int64_t *known_until)
{
	*bs = NULL;
	*n = 0;
	*known_until = 0;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2)
		return -EPROTO;
	if (rep->elements) {
		*bs = malloc(rep->elements / 2 * sizeof(**bs));
		if (!*bs)
			return -ENOMEM;
	}
	for (size_t i = 0; i + 1 < rep->elements; i += 2) {
		const redisReply *f = rep->element[i], *v = rep->element[i + 1];
		struct loc_binding *b = &(*bs)[*n];

		if (f->type != REDIS_REPLY_STRING ||
		    v->type != REDIS_REPLY_STRING) {
			r->errors++;
		} else if (strcmp(f->str, "k") == 0) {
			int64_t t = strtoll(v->str, NULL, 10);

			if (t > *known_until)
				*known_until = t;
		} else if (loc_binding_decode(b, v->str, v->len) < 0 ||
			   strcasecmp(b->aor, aor) != 0) {
			r->errors++;
			log_warn(LOG_SYS_LOC, "redis: bad binding %s of %s",
				 f->str, aor);
		} else if (b->expires <= now) {
			if (b->expires + r->shm->aor_ttl > *known_until)
				*known_until = b->expires + r->shm->aor_ttl;
		} else {
			(*n)++;
		}
	}
	return 0;
}

/* Replaces aor in the store with an HGETALL reply (the start-up load,
 * into a store that is still empty). */
static int
loc_redis_apply(struct loc_redis *r, const char *aor, const redisReply *rep,
		int64_t now)
{
	struct loc_binding *bs;
	int64_t known_until;
	int n, rc = loc_redis_parse(r, aor, rep, now, &bs, &n, &known_until);

	if (rc == 0)
		rc = loc_shm_replace_aor(r->shm, aor, bs, n, known_until, now,
					 NULL);
	free(bs);
	return rc;
}

/* Writes b to Redis unless Redis holds a newer version of its key; with
 * ARGV[2] "", deletes the key if it still holds version ARGV[3].  The
 * version is where loc_codec.c's V2 and V3 put it. */
static const char loc_lua_sync[] =
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

/*
 * Reconciles aor between the store and an HGETALL reply of it
 * (loc_sync_merge), on both sides.  Returns 0, -EAGAIN when a local
 * write happened since wseq (fetch again), or another negative errno.
 */
static int
loc_redis_reconcile(struct loc_redis *r, const char *aor,
		    const redisReply *rep, uint32_t wseq)
{
	struct loc_binding *rs, ls[LOC_SYNC_MAX], *out = NULL;
	const struct loc_binding **ptrs = NULL;
	struct loc_merge m = { 0 };
	struct loc_sync_ctx ctx = {
		r->seg_id,
		__atomic_load_n(&r->shm->hdr->unsync_ms, __ATOMIC_ACQUIRE),
		r->push_all,
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
		loc_redis_write(r, "PEXPIREAT %s %lld", key,
				(long long)(latest + r->shm->aor_ttl) * 1000);
	/* Not confirmed, the pushes stay unsent writes as of their version */
	latest = loc_now_ms();
	for (int i = 0; i < m.npush; i++)
		if (m.push[i]->version < latest)
			latest = m.push[i]->version;
	if (m.npush + m.ndrop)
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

static int loc_redis_fetch_send(struct loc_fetch *f);

/* A fetch of a pass is over: the pass may go on. */
static void
loc_redis_fetch_end(struct loc_redis *r, uint32_t pass, int step)
{
	if (pass && pass == r->pass.gen && r->pass.on) {
		r->pass.inflight--;
		if (step)
			loc_redis_pass_step(r);
	}
}

static void
loc_redis_on_fetch(redisAsyncContext *ac, void *reply, void *priv)
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
	loc_redis_answered(r);
	if (!reply) {		/* the link failed: the next pass covers it */
		r->errors++;
		loc_redis_refetch(r, f->aor);
		free(f);
		loc_redis_fetch_end(r, pass, 0);
		return;
	}
	rc = loc_redis_reconcile(r, f->aor, reply, f->wseq);
	if (rc == -EAGAIN && ++f->tries < LOC_FETCH_TRIES) {
		if (loc_redis_fetch_send(f) < 0)
			loc_redis_fetch_end(r, pass, 1);
		return;
	}
	if (rc < 0) {
		r->errors++;
		log_warn(LOG_SYS_LOC, "redis: cannot reconcile %s: %s", f->aor,
			 strerror(-rc));
	}
	free(f);
	loc_redis_fetch_end(r, pass, 1);
}

/* Sends (again) the HGETALL of f's AOR; takes ownership of f.  0, or
 * -EAGAIN when it could not be sent (f's AOR is then marked dirty). */
static int
loc_redis_fetch_send(struct loc_fetch *f)
{
	struct loc_redis *r = f->r;
	char key[LOC_KEY_MAX];

	f->wseq = loc_shm_wseq(r->shm, f->aor);
	loc_redis_key(r, f->aor, key);
	if (loc_redis_send(r, loc_redis_on_fetch, f, "HGETALL %s", key) < 0) {
		loc_redis_refetch(r, f->aor);
		free(f);
		return -EAGAIN;
	}
	return 0;
}

/* Fetches and reconciles aor, for a pass (its gen) or an invalidation
 * (0).  0 or a negative errno. */
static int
loc_redis_fetch(struct loc_redis *r, const char *aor, uint32_t pass)
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
	return loc_redis_fetch_send(f);
}

static void loc_redis_maybe_up(struct loc_redis *r);

/* A message on <prefix>:inval: "<segment id> <aor>"; or the answer to
 * the SUBSCRIBE itself, which completes the handshake. */
static void
loc_redis_on_inval(redisAsyncContext *ac, void *reply, void *priv)
{
	struct loc_redis *r = ac->data;
	redisReply *rep = reply, *msg;
	char *sp;

	(void)priv;
	if (r->closing || !rep || rep->type != REDIS_REPLY_ARRAY ||
	    rep->elements != 3 || rep->element[0]->type != REDIS_REPLY_STRING)
		return;
	if (strcmp(rep->element[0]->str, "subscribe") == 0 && ac == r->sub) {
		r->sub_ok = 1;
		loc_redis_maybe_up(r);
		return;
	}
	msg = rep->element[2];
	if (strcmp(rep->element[0]->str, "message") != 0 ||
	    msg->type != REDIS_REPLY_STRING)
		return;
	if (strtoull(msg->str, &sp, 16) == r->seg_id || *sp != ' ' ||
	    strlen(sp + 1) >= LOC_AOR_MAX || !sp[1])
		return;		/* our own host's write, or garbage */
	loc_redis_fetch(r, sp + 1, 0);
}

/* ---- the reconcile pass */

/* Begins a pass over the dirty AORs, or over every AOR after a link
 * failure or an overflow of the dirty set. */
static void
loc_redis_pass_start(struct loc_redis *r)
{
	struct loc_pass *p = &r->pass;
	uint32_t gen = p->gen + 1 ? p->gen + 1 : 1;

	loc_dirty_merge(&r->replay, &r->dirty);
	loc_dirty_clear(&r->dirty);
	memset(p, 0, sizeof(*p));
	p->gen = gen;
	p->on = 1;
	p->all = r->push_all;
	p->full = r->need_full || r->push_all || r->replay.overflow;
	p->unsync_gen = __atomic_load_n(&r->shm->hdr->unsync_gen,
					__ATOMIC_ACQUIRE);
	if (!p->full)
		p->bucket = UINT32_MAX;
	p->start_ms = loc_now_ms();
	log_info(LOG_SYS_LOC, "redis: reconciling %s, %u AORs dirty",
		 p->all ? "every AOR (Redis restarted)" : p->full ?
		 "every AOR" : "the dirty AORs", r->replay.n);
	loc_redis_pass_step(r);
}

/* The link failed: the dirty AORs wait for the next pass. */
static void
loc_redis_pass_abort(struct loc_redis *r)
{
	if (!r->pass.on)
		return;
	r->pass.on = 0;
	loc_dirty_merge(&r->dirty, &r->replay);
	loc_dirty_clear(&r->replay);
}

static void
loc_redis_pass_end(struct loc_redis *r)
{
	struct loc_pass *p = &r->pass;

	p->on = 0;
	r->syncs++;
	loc_dirty_clear(&r->replay);
	/* A full pass without a new failure meanwhile put the whole host
	 * back in step, writes of its other processes included. */
	if (p->full && __atomic_load_n(&r->shm->hdr->unsync_gen,
				       __ATOMIC_ACQUIRE) == p->unsync_gen)
		__atomic_store_n(&r->shm->hdr->unsync_ms, INT64_MAX,
				 __ATOMIC_RELEASE);
	if (p->full)
		r->need_full = r->push_all = 0;
	log_notice(LOG_SYS_LOC, "redis %s:%d: reconciled %" PRIu64 " AORs in "
		   "%" PRId64 " ms: %" PRIu64 " bindings pushed, %" PRIu64
		   " deleted, %" PRIu64 " AORs updated here", r->host, r->port,
		   p->aors, loc_now_ms() - p->start_ms, p->pushed, p->dropped,
		   p->pulled);
}

static void
loc_redis_on_scan(redisAsyncContext *ac, void *reply, void *priv)
{
	struct loc_redis *r = ac->data;
	redisReply *rep = reply, *keys;
	size_t plen = strlen(r->prefix) + 5;
	int known;

	if (r->closing)
		return;
	loc_redis_answered(r);
	if (!rep || (uint32_t)(uintptr_t)priv != r->pass.gen || !r->pass.on)
		return;
	r->pass.inflight--;
	r->pass.scan_sent = 0;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[1]->type != REDIS_REPLY_ARRAY) {
		loc_redis_fail(r, NULL, "unexpected SCAN reply");
		return;
	}
	snprintf(r->pass.cursor, sizeof(r->pass.cursor), "%s",
		 rep->element[0]->str);
	keys = rep->element[1];
	/* An AOR the host holds was reconciled by the walk of the store. */
	for (size_t i = 0; i < keys->elements; i++) {
		const char *aor = keys->element[i]->str + plen;

		if (keys->element[i]->type != REDIS_REPLY_STRING ||
		    keys->element[i]->len <= plen ||
		    strlen(aor) >= LOC_AOR_MAX)
			continue;
		loc_shm_lookup(r->shm, aor, time(NULL), NULL, 0, &known);
		if (!known && loc_redis_fetch(r, aor, r->pass.gen) == 0) {
			r->pass.inflight++;
			r->pass.aors++;
		}
	}
	if (strcmp(r->pass.cursor, "0") == 0)
		r->pass.scanning = 2;	/* done */
	loc_redis_pass_step(r);
}

/*
 * Sends the pass's next fetches while fewer than LOC_PASS_WINDOW
 * commands are in flight: the dirty AORs (bucket UINT32_MAX), or the
 * store's AORs bucket by bucket, then the AOR keys of Redis (SCAN).
 */
static void
loc_redis_pass_step(struct loc_redis *r)
{
	struct loc_pass *p = &r->pass;
	char aors[8][LOC_AOR_MAX];

	while (p->on && r->link == LOC_LINK_UP &&
	       r->pending < LOC_PASS_WINDOW && r->pending < r->max_pending) {
		if (p->bucket == UINT32_MAX) {
			/* the dirty AORs: drained from the replay table */
			while (p->slot < r->replay.size &&
			       !r->replay.tab[p->slot][0])
				p->slot++;
			if (p->slot >= r->replay.size) {
				p->scanning = 2;
				break;
			}
			if (loc_redis_fetch(r, r->replay.tab[p->slot++],
					    p->gen) < 0)
				break;
			p->inflight++;
			p->aors++;
		} else if (!p->scanning) {
			int n = loc_shm_bucket_aors(r->shm, p->bucket, aors, 8);

			for (int i = 0; i < n; i++) {
				if (loc_redis_fetch(r, aors[i], p->gen) < 0)
					break;
				p->inflight++;
				p->aors++;
			}
			if (++p->bucket >= r->shm->hdr->nbuckets)
				p->scanning = 1;
		} else if (p->scanning == 1 && !p->scan_sent) {
			if (loc_redis_send(r, loc_redis_on_scan,
					   (void *)(uintptr_t)p->gen,
					   "SCAN %s MATCH %s:aor:* COUNT 100",
					   p->cursor[0] ? p->cursor : "0",
					   r->prefix) < 0)
				break;
			p->scan_sent = 1;
			p->inflight++;
		} else {
			break;
		}
	}
	if (p->on && p->scanning == 2 && p->inflight == 0)
		loc_redis_pass_end(r);
}

/* ---- start-up load (blocking, before the loop runs) */

/* The hash of the run_id in an INFO reply; 0 if it has none. */
static uint64_t
loc_redis_run_id(const redisReply *rep)
{
	const char *p;

	if (!rep || rep->type != REDIS_REPLY_STRING ||
	    !(p = strstr(rep->str, "run_id:")))
		return 0;
	p += 7;
	return hash_fnv1a64(p, strcspn(p, "\r\n")) | 1;
}

/* This process now works with the Redis of run id run. */
static void
loc_redis_set_run(struct loc_redis *r, uint64_t run)
{
	r->run = run;
	__atomic_store_n(&r->shm->hdr->redis_run, run, __ATOMIC_RELEASE);
}

void
loc_redis_load(struct loc_redis *r, int64_t now)
{
	struct timeval tv = { r->timeout_ms / 1000,
			      r->timeout_ms % 1000 * 1000 };
	redisContext *c = redisConnectWithTimeout(r->host, r->port, tv);
	redisReply *scan = NULL, *rep;
	char cursor[32] = "0";
	size_t plen = strlen(r->prefix) + 5;
	uint64_t run;
	long aors = 0;

	if (!c || c->err) {
		r->errors++;
		log_warn(LOG_SYS_LOC, "redis %s:%d: %s; starting empty",
			 r->host, r->port, c ? c->errstr : "out of memory");
		goto out;
	}
	tv.tv_sec = 10;
	redisSetTimeout(c, tv);
	rep = redisCommand(c, "INFO server");
	run = loc_redis_run_id(rep);
	if (rep)
		freeReplyObject(rep);
	do {
		scan = redisCommand(c, "SCAN %s MATCH %s:aor:* COUNT 1000",
				    cursor, r->prefix);
		if (!scan || scan->type != REDIS_REPLY_ARRAY ||
		    scan->elements != 2 ||
		    scan->element[0]->type != REDIS_REPLY_STRING ||
		    scan->element[1]->type != REDIS_REPLY_ARRAY)
			goto bad;
		snprintf(cursor, sizeof(cursor), "%s", scan->element[0]->str);
		for (size_t i = 0; i < scan->element[1]->elements; i++)
			redisAppendCommand(c, "HGETALL %b",
					   scan->element[1]->element[i]->str,
					   scan->element[1]->element[i]->len);
		for (size_t i = 0; i < scan->element[1]->elements; i++) {
			const char *key = scan->element[1]->element[i]->str;

			if (redisGetReply(c, (void **)&rep) != REDIS_OK)
				goto bad;
			if (strlen(key) > plen && strlen(key + plen) < LOC_AOR_MAX &&
			    loc_redis_apply(r, key + plen, rep, now) == 0)
				aors++;
			else
				r->errors++;
			freeReplyObject(rep);
		}
		freeReplyObject(scan);
		scan = NULL;
	} while (strcmp(cursor, "0") != 0);
	loc_redis_set_run(r, run);
	log_info(LOG_SYS_LOC, "loaded %ld AORs from redis %s:%d", aors,
		 r->host, r->port);
	goto out;
bad:
	r->errors++;
	log_warn(LOG_SYS_LOC, "redis %s:%d: load failed: %s", r->host, r->port,
		 c->err ? c->errstr : "unexpected reply");
out:
	if (scan)
		freeReplyObject(scan);
	if (c)
		redisFree(c);
}

/* ---- the link */

/*
 * Both connections answered: the link is UP.  A Redis with another
 * run_id than the one this process worked with has restarted (maybe
 * empty): the pass then pushes everything.  After any failure, or with
 * changes left unsent, a reconcile pass starts.
 */
static void
loc_redis_maybe_up(struct loc_redis *r)
{
	int64_t now = loc_now_ms();

	if (r->link != LOC_LINK_CONNECTING || !r->cmd_ok || !r->sub_ok)
		return;
	r->link = LOC_LINK_UP;
	r->backoff_ms = LOC_BACKOFF_MIN_MS;
	if (r->new_run != r->run) {
		if (r->run || r->was_up || r->need_full)
			r->push_all = 1;
		loc_redis_set_run(r, r->new_run);
	}
	if (r->down_logged)
		log_notice(LOG_SYS_LOC, "redis %s:%d: up again after %" PRId64
			   " ms%s", r->host, r->port, now - r->down_ms,
			   r->push_all ? " (restarted: pushing the "
			   "host's bindings)" : "");
	else
		log_info(LOG_SYS_LOC, "redis %s:%d: connected", r->host,
			 r->port);
	r->down_logged = 0;
	r->was_up = 1;
	r->state_ms = now;
	if (r->push_all || r->need_full || r->dirty.n || r->dirty.overflow)
		loc_redis_pass_start(r);
}

static void
loc_redis_on_hello(redisAsyncContext *ac, void *reply, void *priv)
{
	struct loc_redis *r = ac->data;

	(void)priv;
	if (r->closing)
		return;
	loc_redis_answered(r);
	if (!reply || ac != r->cmd)
		return;
	/* A Redis still loading its data set answers an error: not UP. */
	if (((redisReply *)reply)->type != REDIS_REPLY_STRING) {
		loc_redis_fail(r, NULL, "INFO refused");
		return;
	}
	r->new_run = loc_redis_run_id(reply);
	r->cmd_ok = 1;
	loc_redis_maybe_up(r);
}

/*
 * Drops both connections (gone: the one hiredis is freeing already)
 * and schedules the next attempt.  The first failure after UP is
 * logged; the attempts that follow are not.
 */
static void
loc_redis_fail(struct loc_redis *r, const redisAsyncContext *gone,
	       const char *why)
{
	redisAsyncContext *cmd = r->cmd, *sub = r->sub;
	int64_t now = loc_now_ms();

	if (r->closing)
		return;
	r->cmd = r->sub = NULL;
	r->errors++;
	if (!r->down_logged) {
		log_warn(LOG_SYS_LOC, "redis %s:%d: %s; serving from shared "
			 "memory, retrying (back-off up to %d ms)", r->host,
			 r->port, why, r->backoff_max_ms);
		r->down_logged = 1;
		r->down_ms = now;
	} else {
		log_debug(LOG_SYS_LOC, "redis %s:%d: %s", r->host, r->port, why);
	}
	/* Invalidations may be lost; the writes in flight are marked by
	 * their PUBLISH's callback. */
	r->need_full = 1;
	loc_redis_pass_abort(r);
	r->link = LOC_LINK_DOWN;
	r->state_ms = now;
	r->retry_ms = now + r->backoff_ms;
	r->backoff_ms = loc_backoff_next(r->backoff_ms, r->backoff_max_ms);
	if (cmd && cmd != gone)
		redisAsyncFree(cmd);
	if (sub && sub != gone)
		redisAsyncFree(sub);
	r->pending = 0;
}

static void
loc_redis_on_connect(const redisAsyncContext *ac, int status)
{
	struct loc_redis *r = ac->data;

	if (status != REDIS_OK && (ac == r->cmd || ac == r->sub))
		loc_redis_fail(r, ac, ac->errstr[0] ? ac->errstr : "connect");
}

static void
loc_redis_on_disconnect(const redisAsyncContext *ac, int status)
{
	struct loc_redis *r = ac->data;

	(void)status;
	if (ac == r->cmd || ac == r->sub)
		loc_redis_fail(r, ac, ac->errstr[0] ? ac->errstr :
			       "connection closed");
}

static redisAsyncContext *
loc_redis_dial(struct loc_redis *r)
{
	redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);

	if (!ac || ac->err || redisLibuvAttach(ac, r->loop) != REDIS_OK) {
		log_debug(LOG_SYS_LOC, "redis %s:%d: %s", r->host, r->port,
			  ac ? ac->errstr : "out of memory");
		if (ac)
			redisAsyncFree(ac);
		return NULL;
	}
	ac->data = r;
	redisAsyncSetConnectCallback(ac, loc_redis_on_connect);
	redisAsyncSetDisconnectCallback(ac, loc_redis_on_disconnect);
	return ac;
}

/* Dials both connections and queues the handshake: INFO (the run id)
 * and SUBSCRIBE; the link is UP once both answer.  Both are named
 * sipmesh-loc-<pid> (CLIENT LIST tells an operator, or a test, whose
 * they are). */
static void
loc_redis_connect(struct loc_redis *r)
{
	char chan[80], name[32];

	r->link = LOC_LINK_CONNECTING;
	r->state_ms = loc_now_ms();
	r->cmd_ok = r->sub_ok = 0;
	r->cmd = loc_redis_dial(r);
	r->sub = loc_redis_dial(r);
	snprintf(chan, sizeof(chan), "%s:inval", r->prefix);
	snprintf(name, sizeof(name), "sipmesh-loc-%d", (int)getpid());
	if (!r->cmd || !r->sub ||
	    redisAsyncCommand(r->sub, NULL, NULL, "CLIENT SETNAME %s",
			      name) != REDIS_OK ||
	    redisAsyncCommand(r->sub, loc_redis_on_inval, NULL, "SUBSCRIBE %s",
			      chan) != REDIS_OK ||
	    redisAsyncCommand(r->cmd, loc_redis_on_reply, NULL,
			      "CLIENT SETNAME %s", name) != REDIS_OK ||
	    redisAsyncCommand(r->cmd, loc_redis_on_hello, NULL,
			      "INFO server") != REDIS_OK) {
		loc_redis_fail(r, NULL, "cannot dial");
		return;
	}
	r->pending += 2;
	r->progress_ms = r->state_ms;
}

/* Timeouts, retries, and the dirty AORs left by an overloaded link. */
static void
loc_redis_on_tick(uv_timer_t *t)
{
	struct loc_redis *r = t->data;
	int64_t now = loc_now_ms();

	switch (r->link) {
	case LOC_LINK_DOWN:
		if (now >= r->retry_ms)
			loc_redis_connect(r);
		break;
	case LOC_LINK_CONNECTING:
		if (now - r->state_ms > r->timeout_ms)
			loc_redis_fail(r, NULL, "no answer to the handshake");
		break;
	case LOC_LINK_UP:
		if (r->pending > 0 && now - r->progress_ms > r->timeout_ms)
			loc_redis_fail(r, NULL, "command timed out");
		else if (r->pass.on)
			loc_redis_pass_step(r);
		else if (r->pending >= r->max_pending / 2)
			break;
		else if (r->dirty.n || r->dirty.overflow)
			loc_redis_pass_start(r);
		else if (__atomic_load_n(&r->shm->hdr->unsync_ms,
					 __ATOMIC_RELAXED) != INT64_MAX) {
			/* a failure during the last pass: until a full pass
			 * runs clean, the host is out of step */
			r->need_full = 1;
			loc_redis_pass_start(r);
		}
		break;
	}
}

int
loc_redis_init(struct loc_redis *r, const struct loc_config *cfg,
	       uv_loop_t *loop, struct loc_shm *shm)
{
	const char *prefix = cfg->prefix && cfg->prefix[0] ? cfg->prefix : "sm";
	struct sigaction sa;
	int rc;

	memset(r, 0, sizeof(*r));
	if (snprintf(r->host, sizeof(r->host), "%s", cfg->redis_host) >=
	    (int)sizeof(r->host) ||
	    snprintf(r->prefix, sizeof(r->prefix), "%s", prefix) >=
	    (int)sizeof(r->prefix))
		return -E2BIG;
	r->port = cfg->redis_port ? cfg->redis_port : 6379;
	r->timeout_ms = cfg->redis_timeout_ms > 0 ? cfg->redis_timeout_ms : 1000;
	r->backoff_max_ms = cfg->redis_backoff_max_ms > 0 ?
		cfg->redis_backoff_max_ms : 2000;
	r->max_pending = cfg->redis_max_pending > 0 ?
		cfg->redis_max_pending : 4096;
	r->loop = loop;
	r->shm = shm;
	r->seg_id = shm->hdr->seg_id;
	r->run = __atomic_load_n(&shm->hdr->redis_run, __ATOMIC_ACQUIRE);
	r->backoff_ms = LOC_BACKOFF_MIN_MS;
	rc = loc_dirty_init(&r->dirty, cfg->redis_dirty_max > 0 ?
			    (uint32_t)cfg->redis_dirty_max : 10000);
	if (rc == 0)
		rc = loc_dirty_init(&r->replay, r->dirty.cap);
	if (rc == 0)
		rc = uv_timer_init(loop, &r->tick);
	if (rc < 0) {
		loc_dirty_fini(&r->dirty);
		loc_dirty_fini(&r->replay);
		return rc;
	}
	r->tick.data = r;
	/* hiredis writes with write(2): a Redis that dies must cost an
	 * EPIPE, not the process.  Left alone if the process chose. */
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* Starts the connections (after loc_redis_load).  The tick does not
 * keep the loop alive on its own. */
void
loc_redis_start(struct loc_redis *r)
{
	uv_timer_start(&r->tick, loc_redis_on_tick, LOC_TICK_MS, LOC_TICK_MS);
	uv_unref((uv_handle_t *)&r->tick);
	loc_redis_connect(r);
}

static void
loc_redis_on_closed(uv_handle_t *h)
{
	struct loc_redis *r = h->data;

	loc_dirty_fini(&r->dirty);
	loc_dirty_fini(&r->replay);
	r->closed_cb(r->closed_arg);
}

/* Drops both connections (pending replies are not waited for) and
 * calls cb(arg) once the loop has released the timer. */
void
loc_redis_close(struct loc_redis *r, void (*cb)(void *), void *arg)
{
	r->closing = 1;
	r->closed_cb = cb;
	r->closed_arg = arg;
	if (r->cmd)
		redisAsyncFree(r->cmd);
	if (r->sub)
		redisAsyncFree(r->sub);
	r->cmd = r->sub = NULL;
	uv_close((uv_handle_t *)&r->tick, loc_redis_on_closed);
}
