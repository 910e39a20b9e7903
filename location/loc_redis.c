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
 *     so Redis drops what no host swept; only ever moved later, and a
 *     binding is deleted only at the version the deleting host holds
 *     (scripts in loc_recon.c), so a host's sweep or removal never
 *     undoes another host's newer write.
 *   <prefix>:inval       channel; message "<segment id hex> <aor>"
 *     after every change of an AOR.
 * With [redis] shards, one struct loc_redis per shard, each with this
 * schema for the AORs it owns (loc_shard.c picks the shard), its own
 * link, channel, dirty set and standing in the segment (sync[]).
 *
 * Writes: the shared store first (the caller's answer never waits for
 * Redis), then HSET/HDEL, PEXPIREAT and PUBLISH on the process's Redis
 * link (lib/rconn.h), in that order, so a host that reads the AOR after
 * the PUBLISH sees the write.  The link writes what a millisecond
 * queued at once; one PUBLISH at the end of that write announces every
 * AOR it changed (loc_redis_pub_flush): a PUBLISH per change was a
 * tenth of a REGISTER's CPU, in Redis and in every host's listener.
 * One process of the host, its listener (loc_shm_listen_claim),
 * SUBSCRIBEs to the channel for all; a message
 * from another segment (another host) fetches the AOR and reconciles
 * the host's copy with it (loc_recon.c).  When the listener is gone,
 * another process takes over at its next tick and reconciles the whole
 * store, as after a link failure.
 *
 * Start-up: the process that creates the segment loads every AOR with
 * a blocking SCAN + pipelined HGETALL, before its loop runs.  Later a
 * command is never blocking.
 *
 * Faults.  rconn times connects and commands out, reconnects with
 * back-off and logs the reasons.  On top of it the link is DOWN,
 * CONNECTING (rconn up, INFO's run_id not yet answered) or UP.  A write
 * is only sent while UP and fewer than max_pending commands are in
 * flight; otherwise, or when its PUBLISH is not answered, its AOR goes
 * to this process's dirty set (bounded, loc_sync.c) and the segment
 * records since when the host is out of step (unsync_ms, the earliest
 * such moment of any of its processes).  When the link is UP a
 * reconcile pass (loc_recon.c) repairs that, driven by a tick every
 * LOC_TICK_MS.  INFO's run_id, remembered in the segment, tells a
 * restarted Redis (maybe empty): then the pass pushes everything.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/hash.h"
#include "lib/log.h"
#include "lib/rconn.h"
#include "lib/sip.h"
#include "location/loc_int.h"

#define LOC_TICK_MS      100
/* The store is written behind (no SIP answer waits on Redis): the
 * writes of 5 ms share one write(2), one wake-up of Redis and one of
 * the core for the replies.  Measured at 20,000 REGISTER/s: 1 ms cost
 * 12% more CPU per REGISTER over all processes (the cores 20%, Redis
 * 25%).  A change reaches other hosts up to that much later; a command
 * whose reply is waited on (a fetch, a SCAN) goes at once
 * (rconn_flush_now). */
#define LOC_REDIS_FLUSH_MS 5

void
loc_key_of(const char *prefix, const char *aor, char *key)
{
	struct sip_cat b;
	size_t n;

	sip_cat_init(&b, key, LOC_KEY_MAX);
	sip_cat_str(&b, prefix);
	sip_cat_mem(&b, LOC_KEY_AOR, sizeof(LOC_KEY_AOR) - 1);
	n = b.len;
	sip_cat_str(&b, aor);
	for (; n < b.len; n++)
		if (key[n] >= 'A' && key[n] <= 'Z')
			key[n] += 32;
}

void
loc_redis_key(const struct loc_redis *r, const char *aor, char *key)
{
	loc_key_of(r->prefix, aor, key);
}

size_t
loc_key_aor_at(const struct loc_redis *r)
{
	return strlen(r->prefix) + sizeof(LOC_KEY_AOR) - 1;
}

int64_t
loc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- commands, sent only while UP */

/* Commands in flight, counting the PUBLISH of the batch being made:
 * its place is kept (loc_redis_vtry), or it could find the link full
 * when it goes and leave its changes unannounced. */
int
loc_redis_pending(const struct loc_redis *r)
{
	return rconn_pending(r->rc) + (r->pub != NULL);
}

static int
loc_redis_vtry(struct loc_redis *r, redisCallbackFn *fn, void *priv,
	       const char *fmt, va_list ap)
{
	if (r->link != LOC_LINK_UP || loc_redis_pending(r) >= r->max_pending ||
	    rconn_vcommand(r->rc, fn, priv, fmt, ap) < 0) {
		r->errors++;
		return -EAGAIN;
	}
	return 0;
}

int
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
	struct loc_shm_sync *h = r->sync;
	int64_t cur = __atomic_load_n(&h->unsync_ms, __ATOMIC_RELAXED);

	while (t < cur && !__atomic_compare_exchange_n(&h->unsync_ms, &cur, t,
						       0, __ATOMIC_RELEASE,
						       __ATOMIC_RELAXED))
		;
	__atomic_fetch_add(&h->unsync_gen, 1, __ATOMIC_RELEASE);
}

void
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
	struct loc_redis *r = rconn_arg(ac);
	redisReply *rep = reply;

	(void)priv;
	if (r->closing)
		return;
	if (!rep) {		/* the disconnect itself is logged once */
		r->errors++;
	} else if (rep->type == REDIS_REPLY_ERROR) {
		r->errors++;
		log_warn(LOG_SYS_LOC, "redis: %s", rep->str);
	}
}

/* The last command of a change of an AOR: its answer confirms the
 * whole change (replies come in order).  nx_ms: the expiry an NX must
 * still set (loc_redis_on_gt); gt: that GT's reply is awaited, so the
 * struct is freed there if no PUBLISH went (orphan). */
struct loc_published {
	int64_t ms;
	long long nx_ms;
	uint8_t gt, orphan;
	char aor[LOC_AOR_MAX];
};

/* Not zeroed whole: aor is written before use. */
static struct loc_published *
loc_published_new(void)
{
	struct loc_published *c = malloc(sizeof(*c));

	if (c) {
		c->nx_ms = 0;
		c->gt = c->orphan = 0;
	}
	return c;
}

/* GT moved nothing: the key has no expiry (it is new) or one later
 * already; an NX after the PUBLISH settles which. */
static void
loc_redis_on_gt(redisAsyncContext *ac, void *reply, void *priv)
{
	struct loc_published *c = priv;
	redisReply *rep = reply;

	loc_redis_on_reply(ac, reply, NULL);
	c->gt = 0;
	if (c->orphan)
		free(c);
	else if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1)
		c->nx_ms = 0;
}

void
loc_redis_write(struct loc_redis *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (loc_redis_vtry(r, loc_redis_on_reply, NULL, fmt, ap) < 0)
		r->batch_bad = 1;
	va_end(ap);
}

/* NX sets an expiry on a key that has none, GT moves one only later
 * (Redis 7): together the native form of "never shorten", about a
 * tenth of what a Lua script doing the same costs Redis. */
void
loc_redis_expire(struct loc_redis *r, const char *key, long long ms)
{
	loc_redis_write(r, "PEXPIREAT %s %lld NX", key, ms);
	loc_redis_write(r, "PEXPIREAT %s %lld GT", key, ms);
}

void
loc_redis_inval_msg(const struct loc_redis *r, const char *key, char *msg)
{
	struct sip_cat m;

	sip_cat_init(&m, msg, LOC_INVAL_MAX);
	sip_cat_hex16(&m, r->seg_id);
	sip_cat_ch(&m, ' ');
	sip_cat_str(&m, key + loc_key_aor_at(r));
}

/* The changes one PUBLISH announces, in the order they were made. */
#define LOC_PUB_AORS 64
#define LOC_PUB_MSG_MAX 8192

struct loc_pub_batch {
	int n;
	size_t len;
	struct loc_published *c[LOC_PUB_AORS];
	char msg[LOC_PUB_MSG_MAX];
};

/* b's changes were not announced (fail) or their link is gone: the
 * AORs go to the dirty set (fail), each c is freed, or left to its GT
 * reply still awaited. */
static void
loc_redis_pub_drop(struct loc_redis *r, struct loc_pub_batch *b, int fail)
{
	for (int i = 0; i < b->n; i++) {
		struct loc_published *c = b->c[i];

		if (fail)
			loc_redis_mark(r, c->aor, c->ms);
		if (c->gt)
			c->orphan = 1;
		else
			free(c);
	}
	free(b);
}

static void
loc_redis_on_published(redisAsyncContext *ac, void *reply, void *priv)
{
	struct loc_pub_batch *b = priv;
	struct loc_redis *r = rconn_arg(ac);
	redisReply *rep = reply;
	char key[LOC_KEY_MAX];

	loc_redis_on_reply(ac, reply, NULL);
	for (int i = 0; i < b->n; i++) {
		struct loc_published *c = b->c[i];

		/* replies come in order: c's GT was answered before */
		if (!r->closing && (!rep || rep->type == REDIS_REPLY_ERROR)) {
			loc_redis_mark(r, c->aor, c->ms);
		} else if (!r->closing && c->nx_ms) {
			loc_redis_key(r, c->aor, key);
			if (loc_redis_send(r, loc_redis_on_reply, NULL,
					   "PEXPIREAT %s %lld NX", key,
					   c->nx_ms) < 0)
				loc_redis_mark(r, c->aor, c->ms);
		}
		free(c);
	}
	free(b);
}

/* Sends the PUBLISH of the changes batched so far (rconn's on_flush:
 * it joins the write that carries their commands). */
static void
loc_redis_pub_flush(void *arg)
{
	struct loc_redis *r = arg;
	struct loc_pub_batch *b = r->pub;

	if (b == NULL)
		return;
	r->pub = NULL;
	if (loc_redis_send(r, loc_redis_on_published, b, "PUBLISH %s:inval %b",
			   r->prefix, b->msg, b->len) < 0)
		loc_redis_pub_drop(r, b, 1);
}

/* Adds c's AOR to the next PUBLISH: 0, or -EAGAIN/-ENOMEM (not added).
 * The change's own commands are queued on the link, so its write, and
 * with it the PUBLISH, is on its way. */
static int
loc_redis_pub_add(struct loc_redis *r, struct loc_published *c)
{
	struct loc_pub_batch *b = r->pub;
	size_t n = strlen(c->aor);
	struct sip_cat m;

	if (r->link != LOC_LINK_UP)
		return -EAGAIN;
	if (b && (b->n == LOC_PUB_AORS || b->len + 1 + n > sizeof(b->msg))) {
		loc_redis_pub_flush(r);
		b = NULL;
	}
	if (b == NULL) {
		/* the PUBLISH needs a place of its own */
		if (rconn_pending(r->rc) >= r->max_pending)
			return -EAGAIN;
		b = malloc(sizeof(*b));
		if (b == NULL)
			return -ENOMEM;
		sip_cat_init(&m, b->msg, sizeof(b->msg));
		sip_cat_hex16(&m, r->seg_id);
		sip_cat_ch(&m, ' ');
		b->len = (size_t)sip_cat_len(&m);
		b->n = 0;
		r->pub = b;
	} else {
		b->msg[b->len++] = '\n';
	}
	memcpy(b->msg + b->len, c->aor, n);
	b->len += n;
	b->c[b->n++] = c;
	return 0;
}

/* The announcement of a change, c (may be NULL) its reply's. */
static void
loc_redis_publish_c(struct loc_redis *r, struct loc_published *c,
		    const char *aor, int64_t ms)
{
	char key[LOC_KEY_MAX];

	if (c) {
		loc_redis_key(r, aor, key);
		c->ms = ms;
		strcpy(c->aor, key + loc_key_aor_at(r));
	}
	if (!c || r->batch_bad || loc_redis_pub_add(r, c) < 0) {
		if (c && c->gt)
			c->orphan = 1;
		else
			free(c);
		loc_redis_mark(r, aor, ms);
	}
	r->batch_bad = 0;
}

void
loc_redis_publish(struct loc_redis *r, const char *aor, int64_t ms)
{
	struct loc_published *c = loc_published_new();

	loc_redis_publish_c(r, c, aor, ms);
}

static void
loc_redis_sink_del(void *arg, const struct loc_binding *b)
{
	struct loc_redis *r = arg;
	char key[LOC_KEY_MAX], field[LOC_FIELD_MAX];

	loc_redis_key(r, b->aor, key);
	loc_binding_field(b, field, sizeof(field));
	/* Only the version this host holds: another host may have
	 * refreshed the binding since (its invalidation not handled yet),
	 * and its refresh must survive this host's sweep. */
	loc_redis_write(r, "EVAL %s 1 %s %s %s %" PRId64, loc_lua_sync, key,
			field, "", b->version);
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
		    int64_t known_until, int fresh)
{
	struct loc_redis *r = arg;
	struct loc_published *c = loc_published_new();
	char key[LOC_KEY_MAX];

	loc_redis_key(r, aor, key);
	/* Never DEL the key nor shorten its life: other hosts' bindings
	 * may live in it; the scripted HDELs removed this host's own.  A
	 * refresh, nearly every write, needs GT alone (loc_redis_on_gt);
	 * the change's milliseconds keep a refresh within the same second
	 * later still, so its GT moves something too.  An AOR new to the
	 * store is most likely new to Redis too, a key without expiry that
	 * GT leaves alone: NX and GT go together, rather than an NX after
	 * GT's answer, one more write and wake-up of Redis and the core
	 * (every first registration, e.g. a WebSocket client's). */
	if (expire_at && c && !fresh) {
		c->nx_ms = (long long)expire_at * 1000 + r->op_ms % 1000;
		if (loc_redis_send(r, loc_redis_on_gt, c, "PEXPIREAT %s %lld GT",
				   key, c->nx_ms) < 0)
			r->batch_bad = 1;
		else
			c->gt = 1;
	} else if (expire_at) {
		loc_redis_expire(r, key, (long long)expire_at * 1000 +
				 r->op_ms % 1000);
	} else if (known_until) {
		loc_redis_write(r, "HSET %s k %lld", key,
				(long long)known_until);
		loc_redis_expire(r, key, (long long)known_until * 1000);
	} else {
		loc_redis_write(r, "HDEL %s k", key);
	}
	loc_redis_publish_c(r, c, aor, r->op_ms);
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

/* Bindings already expired are left out of *bs but still keep the AOR
 * known until *known_until. */
int
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

/*
 * The union of aor's bindings already loaded from another shard with
 * those of this one, the newer of each binding: while the shard list
 * changes an AOR may be on two shards.  Takes ownership of *bs and may
 * replace it.  0 or -ENOMEM.
 */
static int
loc_redis_union(struct loc_redis *r, const char *aor, int64_t now,
		struct loc_binding **bs, int *n)
{
	const struct loc_sync_ctx ctx = { r->seg_id, INT64_MAX, 1 };
	struct loc_binding ls[LOC_SYNC_MAX], *out;
	const struct loc_binding **ptrs;
	struct loc_merge m = { 0 };
	int known, nl = loc_shm_lookup(r->shm, aor, now, ls, LOC_SYNC_MAX,
				       &known);

	if (nl <= 0)
		return 0;
	out = malloc((size_t)(nl + *n) * sizeof(*out));
	ptrs = malloc((size_t)(nl + *n) * sizeof(*ptrs));
	if (!out || !ptrs) {
		free(out);
		free(ptrs);
		return -ENOMEM;
	}
	m.out = out;
	m.push = ptrs;
	m.drop = ptrs + nl;
	*n = loc_sync_merge(ls, nl, *bs, *n, &ctx, &m);
	free(ptrs);
	free(*bs);
	*bs = out;
	return 0;
}

/* Puts aor in the store from an HGETALL reply (the start-up load, into
 * a store that holds only what other shards had). */
static int
loc_redis_apply(struct loc_redis *r, const char *aor, const redisReply *rep,
		int64_t now)
{
	struct loc_binding *bs;
	int64_t known_until;
	int n, rc = loc_redis_parse(r, aor, rep, now, &bs, &n, &known_until);

	if (rc == 0 && r->map->n > 1)
		rc = loc_redis_union(r, aor, now, &bs, &n);
	if (rc == 0)
		rc = loc_shm_replace_aor(r->shm, aor, bs, n, known_until, now,
					 NULL);
	free(bs);
	return rc;
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
	__atomic_store_n(&r->sync->redis_run, run, __ATOMIC_RELEASE);
}

void
loc_redis_load(struct loc_redis *r, int64_t now)
{
	char cursor[32] = "0", name[32], why[256];
	struct timeval tv = { 10, 0 };
	struct rconn_config rc = {
		.host = r->host, .port = r->port, .user = r->user,
		.password = r->password, .name = name,
		.timeout_ms = r->timeout_ms, .sentinels = r->sentinels,
		.master = r->master,
		.sentinel_password = r->sentinel_password,
	};
	redisContext *c;
	redisReply *scan = NULL, *rep;
	size_t plen = loc_key_aor_at(r);
	uint64_t run;
	long aors = 0;

	snprintf(name, sizeof(name), "sipmesh-loc-%d", (int)getpid());
	c = rconn_connect_sync(&rc, why, sizeof(why));
	if (!c) {
		r->errors++;
		r->need_full = 1;	/* the store lacks what Redis holds */
		log_warn(LOG_SYS_LOC, "redis %s: %s; starting empty",
			 r->where, why);
		goto out;
	}
	/* a large store takes a while: not the per-command timeout */
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
			    loc_redis_apply(r, key + plen, rep, now) == 0) {
				aors++;
				/* its owner must hold it: a move pass */
				if (!loc_redis_owns(r, key + plen))
					r->move = r->need_full = 1;
			} else {
				r->errors++;
			}
			freeReplyObject(rep);
		}
		freeReplyObject(scan);
		scan = NULL;
	} while (strcmp(cursor, "0") != 0);
	loc_redis_set_run(r, run);
	log_info(LOG_SYS_LOC, "loaded %ld AORs from redis %s", aors,
		 r->where);
	goto out;
bad:
	r->errors++;
	r->need_full = 1;
	log_warn(LOG_SYS_LOC, "redis %s: load failed: %s", r->where,
		 c->err ? c->errstr : "unexpected reply");
out:
	if (scan)
		freeReplyObject(scan);
	if (c)
		redisFree(c);
}

/* ---- the link */

/*
 * INFO answered: the link is UP.  A Redis with another run_id than the
 * one this process worked with has restarted (maybe empty): the pass
 * then pushes everything.  After any failure, or with changes left
 * unsent, a reconcile pass starts.
 */
static void
loc_redis_on_hello(redisAsyncContext *ac, void *reply, void *priv)
{
	struct loc_redis *r = rconn_arg(ac);
	redisReply *rep = reply;
	int64_t now = loc_now_ms();
	uint64_t run;
	char why[160];

	(void)priv;
	if (r->closing || !rep || r->link != LOC_LINK_CONNECTING)
		return;		/* a failure: rconn reports it */
	/* A Redis still loading its data set answers an error: not UP. */
	if (rep->type != REDIS_REPLY_STRING) {
		snprintf(why, sizeof(why), "INFO refused: %s",
			 rep->type == REDIS_REPLY_ERROR ? rep->str : "?");
		rconn_fail(r->rc, why);
		return;
	}
	run = loc_redis_run_id(rep);
	r->link = LOC_LINK_UP;
	/* Attempts failed before this first up: invalidations may have
	 * been missed meanwhile, as after any failure. */
	if (!r->was_up && rconn_failures(r->rc))
		r->need_full = 1;
	if (run != r->run) {
		if (r->run || r->was_up || r->need_full)
			r->push_all = 1;
		loc_redis_set_run(r, run);
	}
	if (r->was_up)
		log_notice(LOG_SYS_LOC, "redis %s: up again after %" PRId64
			   " ms%s", r->where, now - r->down_ms,
			   r->push_all ? " (restarted: pushing the "
			   "host's bindings)" : "");
	r->was_up = 1;
	r->state_ms = now;
	if (r->push_all || r->need_full || r->dirty.n || r->dirty.overflow)
		loc_recon_start(r);
	loc_redis_heard_check(r);
	/* copies of strays it missed while down: the other shards copy
	 * again (their tick starts the move pass) */
	for (int i = 0; r->strays_wait && i < r->map->n; i++)
		if (i != r->shard)
			r->shards[i].move = 1;
	r->strays_wait = 0;
}

/* rconn's link came up (ask for the run id) or went down: invalidations
 * may be lost, the writes in flight are marked by their PUBLISH's
 * callback. */
static void
loc_redis_on_state(void *arg, int up)
{
	struct loc_redis *r = arg;

	if (r->closing)
		return;
	r->state_ms = loc_now_ms();
	if (up) {
		r->link = LOC_LINK_CONNECTING;
		if (rconn_command(r->rc, loc_redis_on_hello, NULL,
				  "INFO server") < 0)
			rconn_fail(r->rc, "cannot send INFO");
		rconn_flush_now(r->rc);
		return;
	}
	r->down_ms = r->state_ms;
	if (r->pub) {
		loc_redis_pub_drop(r, r->pub, 1);
		r->pub = NULL;
	}
	log_warn(LOG_SYS_LOC, "redis %s: down; serving from shared memory "
		 "until it answers", r->where);
	r->link = LOC_LINK_DOWN;
	r->errors++;
	r->need_full = 1;
	if (r->listening)
		loc_redis_heard(r, 0);
	loc_recon_abort(r);
}

/* A message on <prefix>:inval: "<segment id> <aor>[\n<aor>...]". */
static void
loc_redis_on_inval(void *priv, const char *channel, const char *msg,
		   size_t len)
{
	struct loc_redis *r = priv;
	char aor[LOC_AOR_MAX], *sp;
	const char *p, *end = msg + len, *nl;

	(void)channel;
	if (r->closing || strtoull(msg, &sp, 16) == r->seg_id || *sp != ' ')
		return;		/* our own host's write, or garbage */
	for (p = sp + 1; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		if (nl > p && (size_t)(nl - p) < sizeof(aor)) {
			memcpy(aor, p, (size_t)(nl - p));
			aor[nl - p] = '\0';
			loc_recon_fetch(r, aor, 0);
		}
	}
}

void
loc_redis_heard(struct loc_redis *r, uint32_t ok)
{
	__atomic_store_n(&r->sync->heard_ok, ok, __ATOMIC_RELEASE);
}

int
loc_redis_in_step(const struct loc_redis *r)
{
	return r->link == LOC_LINK_UP && !r->need_full && !r->push_all &&
	       !(r->pass.on && r->pass.full);
}

void
loc_redis_heard_check(struct loc_redis *r)
{
	if (r->listening && loc_redis_in_step(r))
		loc_redis_heard(r, 1);
}

/*
 * Becomes the host's listener for r's shard if it has none alive
 * (loc_shm_listen_claim).  takeover: the last one is gone, and what it
 * would have heard meanwhile is not in the store: a full pass finds it.
 * Returns 0 or -ENOMEM.
 */
static int
loc_redis_listen(struct loc_redis *r, int takeover)
{
	char chan[80];
	int err;

	if (r->listening || !loc_shm_listen_claim(r->shm, r->shard))
		return 0;
	/* Until this process has heard (and caught up): not in step. */
	loc_redis_heard(r, 0);
	snprintf(chan, sizeof(chan), "%s:inval", r->prefix);
	err = rconn_subscribe(r->rc, chan, loc_redis_on_inval, r);
	if (err < 0) {
		loc_shm_listen_release(r->shm, r->shard);
		return err;
	}
	r->listening = 1;
	if (takeover) {
		r->need_full = 1;
		log_notice(LOG_SYS_LOC, "redis %s: this process now hears the "
			   "host's invalidations (the last listener is gone); "
			   "reconciling the store", r->where);
	}
	loc_redis_heard_check(r);
	return 0;
}

/* The dirty AORs left by an overloaded link, the host's listener, and a
 * pass's pacing. */
static void
loc_redis_on_tick(uv_timer_t *t)
{
	struct loc_redis *r = t->data;

	if (loc_redis_listen(r, 1) < 0)
		log_warn(LOG_SYS_LOC, "redis %s: cannot listen for "
			 "invalidations: out of memory", r->where);

	if (r->link != LOC_LINK_UP)
		return;
	if (r->pass.on)
		loc_recon_step(r);
	else if (loc_redis_pending(r) >= r->max_pending / 2)
		return;
	else if (r->dirty.n || r->dirty.overflow || r->move || r->need_full)
		loc_recon_start(r);
	else if (__atomic_load_n(&r->sync->unsync_ms,
				 __ATOMIC_RELAXED) != INT64_MAX) {
		/* a failure during the last pass: until a full pass runs
		 * clean, the host is out of step */
		r->need_full = 1;
		loc_recon_start(r);
	}
}

int
loc_redis_owns(const struct loc_redis *r, const char *aor)
{
	return r->map->n <= 1 || loc_shard_pick(r->map, aor) == r->shard;
}

int
loc_redis_init(struct loc_redis *r, const struct loc_config *cfg, int shard,
	       uv_loop_t *loop, struct loc_shm *shm)
{
	const char *prefix = cfg->prefix && cfg->prefix[0] ? cfg->prefix : "sm";
	const struct loc_shard_config *sh = shard ? &cfg->shards[shard - 1] :
		&(struct loc_shard_config){ "main", cfg->redis_host,
					    cfg->redis_port,
					    cfg->redis_sentinels,
					    cfg->redis_master };
	int rc;

	memset(r, 0, sizeof(*r));
	if (snprintf(r->host, sizeof(r->host), "%s", sh->host ? sh->host :
		     "") >=
	    (int)sizeof(r->host) ||
	    snprintf(r->prefix, sizeof(r->prefix), "%s", prefix) >=
	    (int)sizeof(r->prefix) ||
	    snprintf(r->user, sizeof(r->user), "%s", cfg->redis_user ?
		     cfg->redis_user : "") >= (int)sizeof(r->user) ||
	    snprintf(r->password, sizeof(r->password), "%s",
		     cfg->redis_password ? cfg->redis_password : "") >=
	    (int)sizeof(r->password) ||
	    snprintf(r->sentinels, sizeof(r->sentinels), "%s",
		     sh->sentinels ? sh->sentinels : "") >=
	    (int)sizeof(r->sentinels) ||
	    snprintf(r->master, sizeof(r->master), "%s",
		     sh->master && sh->master[0] ?
		     sh->master : RCONN_MASTER_DEFAULT) >=
	    (int)sizeof(r->master) ||
	    snprintf(r->sentinel_password, sizeof(r->sentinel_password), "%s",
		     cfg->redis_sentinel_password ?
		     cfg->redis_sentinel_password : "") >=
	    (int)sizeof(r->sentinel_password))
		return -E2BIG;
	r->port = sh->port ? sh->port : 6379;
	r->shard = shard;
	r->sync = &shm->hdr->sync[shard];
	if (r->sentinels[0])
		snprintf(r->where, sizeof(r->where), "%s%.32s%smaster %.128s",
			 cfg->n_shards ? "shard " : "",
			 cfg->n_shards ? sh->name : "",
			 cfg->n_shards ? ", " : "", r->master);
	else
		snprintf(r->where, sizeof(r->where), "%s%.32s%s%.256s%s%.0d",
			 cfg->n_shards ? "shard " : "",
			 cfg->n_shards ? sh->name : "",
			 cfg->n_shards ? ", " : "", r->host,
			 r->host[0] == '/' ? "" : ":",
			 r->host[0] == '/' ? 0 : r->port);
	r->timeout_ms = cfg->redis_timeout_ms > 0 ? cfg->redis_timeout_ms : 1000;
	r->backoff_max_ms = cfg->redis_backoff_max_ms > 0 ?
		cfg->redis_backoff_max_ms : 2000;
	r->max_pending = cfg->redis_max_pending > 0 ?
		cfg->redis_max_pending : 4096;
	r->loop = loop;
	r->shm = shm;
	r->seg_id = shm->hdr->seg_id;
	r->run = __atomic_load_n(&r->sync->redis_run, __ATOMIC_ACQUIRE);
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
	return 0;
}

/*
 * Starts the link (after loc_redis_load): its connections (two for the
 * host's listener) are named sipmesh-loc-<pid> (CLIENT LIST tells an
 * operator, or a test, whose they are).  The tick does not keep the
 * loop alive on its own.
 * Returns 0 or -ENOMEM.
 */
int
loc_redis_start(struct loc_redis *r)
{
	struct rconn_config rc = {
		.host = r->host, .port = r->port, .user = r->user,
		.password = r->password, .timeout_ms = r->timeout_ms,
		.backoff_max_ms = r->backoff_max_ms,
		.max_pending = r->max_pending, .log_sys = LOG_SYS_LOC,
		.sentinels = r->sentinels, .master = r->master,
		.sentinel_password = r->sentinel_password,
		.flush_ms = LOC_REDIS_FLUSH_MS,
		.on_flush = loc_redis_pub_flush,
	};
	char name[32];
	int err;

	snprintf(name, sizeof(name), "sipmesh-loc-%d", (int)getpid());
	rc.name = name;
	err = rconn_new(&r->rc, r->loop, &rc, loc_redis_on_state, r);
	/* A process that attached to a live store need not reconcile it:
	 * its listener has heard everything until now. */
	if (err == 0)
		err = loc_redis_listen(r, 0);
	if (err < 0)
		return err;
	uv_timer_start(&r->tick, loc_redis_on_tick, LOC_TICK_MS, LOC_TICK_MS);
	uv_unref((uv_handle_t *)&r->tick);
	return 0;
}

int
loc_redis_owes(const struct loc_redis *r)
{
	return r->dirty.n || r->replay.n || r->dirty.overflow ||
	       r->push_all || r->pass.on || r->pub ||
	       (r->rc && rconn_pending(r->rc));
}

void
loc_redis_unlisten(struct loc_redis *r)
{
	if (r->listening) {
		/* Nobody hears until the next listener has caught up. */
		loc_redis_heard(r, 0);
		loc_shm_listen_release(r->shm, r->shard);
	}
	r->listening = 0;
}

static void
loc_redis_on_closed(uv_handle_t *h)
{
	struct loc_redis *r = h->data;

	loc_dirty_fini(&r->dirty);
	loc_dirty_fini(&r->replay);
	r->closed_cb(r->closed_arg);
}

/* Drops the link (pending replies are not waited for: their callbacks
 * run now, with NULL) and calls cb(arg) once the loop has released the
 * timer. */
void
loc_redis_close(struct loc_redis *r, void (*cb)(void *), void *arg)
{
	r->closing = 1;
	r->closed_cb = cb;
	r->closed_arg = arg;
	if (r->pub) {
		loc_redis_pub_drop(r, r->pub, 0);
		r->pub = NULL;
	}
	rconn_free(r->rc);
	r->rc = NULL;
	uv_close((uv_handle_t *)&r->tick, loc_redis_on_closed);
}
