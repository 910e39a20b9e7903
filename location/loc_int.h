/*
 * loc_int.h - private declarations of the location library, shared by
 * loc.c (the public API), loc_shm.c (the host's shared store),
 * loc_shm_conn.c (its index by connection), loc_redis.c (the Redis
 * replica and its schema), loc_recon.c (reconciling the two),
 * loc_codec.c (a binding's value in Redis) and loc_sync.c (the
 * decisions that repair a Redis outage).  The unit
 * tests include it too, to look inside the store.
 */
#ifndef SM_LOC_INT_H
#define SM_LOC_INT_H

#include <hiredis/async.h>
#include <pthread.h>
#include <stdint.h>
#include <uv.h>

#include "lib/hash.h"
#include "location/loc.h"

#define LOC_SHM_MAGIC   0x636f6c6d73706973ULL	/* "sipsmloc" */
#define LOC_SHM_VERSION 11	/* 5: 64-bit conn_id (edge incarnations);
				   6: slot owner, crash-safe writes;
				   7: keyed AOR buckets;
				   8: Redis shards;
				   9: AOR count;
				   10: one invalidation listener;
				   11: its health (heard_ok) */
#define LOC_NIL         UINT32_MAX	/* "no slot" in an offset link */

/*
 * A slot's life, so that a process killed at any instant leaves nothing
 * torn in a chain and no slot lost for good: a slot joins a chain only
 * once written whole, and is marked LOC_SLOT_TAKEN (by its owner's
 * pid) before it leaves one or the free list.  The next holder of a
 * dead process's lock drops from the chain whatever is not BINDING or
 * KNOWN (loc_lock); a TAKEN slot whose owner died goes back to the free
 * list (loc_shm_expire's slot sweep).
 */
enum loc_slot_kind {
	LOC_SLOT_FREE = 0,	/* in the free list */
	LOC_SLOT_BINDING,	/* a contact of b.aor */
	LOC_SLOT_KNOWN,		/* b.aor has no binding but is known until
				   known_until; reuses the last binding's slot */
	LOC_SLOT_TAKEN,		/* in no list: owned by process `owner` */
	LOC_SLOT_WRITING,	/* in its chain, being rewritten in place by
				   the bucket lock's holder */
};

/* One fixed-size slot; slots link by index, never by pointer. */
struct loc_slot {
	uint32_t next;		/* next slot in the bucket or free list */
	uint32_t cnext;		/* next slot in the conn bucket's chain */
	uint8_t kind;		/* enum loc_slot_kind (atomic) */
	int32_t owner;		/* LOC_SLOT_TAKEN: the pid holding it */
	uint8_t conn_linked;	/* set (atomic, under the conn bucket lock)
				   before the slot joins its conn chain,
				   cleared after it leaves; b's edge_id and
				   conn_id only change while clear */
	int64_t known_until;	/* LOC_SLOT_KNOWN only */
	struct loc_binding b;	/* LOC_SLOT_KNOWN: only b.aor is set */
};

struct loc_bucket {
	pthread_mutex_t lock;	/* robust, process-shared */
	uint32_t head;		/* first slot of the chain, LOC_NIL if none */
	uint32_t wseq;		/* bumped on every local write, so an
				   invalidation reply older than a local
				   write is not applied over it */
};

/* The index by connection: the BINDING slots with a conn_id that hash
 * (edge_id, conn_id) to this bucket, chained through cnext. */
struct loc_conn_bucket {
	pthread_mutex_t lock;	/* robust, process-shared; taken after an
				   AOR bucket lock, never before one */
	uint32_t head;		/* first slot of the chain, LOC_NIL if none */
};

#define LOC_SHARDS_MAX  16	/* Redis masters: "main" and 15 more */

/* The host's standing with one Redis shard. */
struct loc_shm_sync {
	uint64_t redis_run;	/* hash of the run_id of the Redis this
				   store was last loaded from or pushed
				   to (atomic); a new one means a Redis
				   that restarted, maybe empty */
	int64_t unsync_ms;	/* INT64_MAX while Redis has confirmed every
				   write of this host; else the earliest
				   unix ms since which one may be missing
				   (atomic min, loc_redis.c) */
	uint32_t unsync_gen;	/* bumped with every such write (atomic) */
	uint64_t listener;	/* the process of the host that SUBSCRIBEs
				   to the invalidations, for all of them:
				   pid << 32 | its start time's low bits
				   (atomic; 0: none) */
	uint32_t heard_ok;	/* 1 while the listener's link is up and
				   what it may have missed is reconciled;
				   0: the store may lack another host's
				   writes (atomic; loc_synced) */
};

/* The start of the segment.  Offsets are from the segment's base. */
struct loc_shm_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t init_done;	/* set (release) once the creator is done */
	uint64_t seg_id;	/* random: names this host in invalidations */
	struct hash_key bucket_key;	/* random: AORs are chosen by
					   senders, their buckets must not be */
	uint64_t size;		/* bytes of the segment */
	uint32_t slot_size;	/* sizeof(struct loc_slot) of the creator */
	uint32_t nbuckets;	/* a power of two */
	uint32_t nslots;
	uint32_t expire_cursor;	/* next bucket loc_expire sweeps (atomic) */
	uint64_t bucket_off;
	uint64_t cbucket_off;	/* nbuckets struct loc_conn_bucket */
	uint64_t slot_off;
	uint64_t nbindings;	/* LOC_SLOT_BINDING slots (atomic) */
	/* AORs with a live binding, counted by the expiry sweep (which
	 * passes every bucket in 32 slices, whichever process takes
	 * them): aor_acc gathers the current round, naors is the last
	 * whole one, aor_swept the buckets counted since (all atomic).
	 * A gauge, not an exact figure: a round sees buckets at
	 * different moments. */
	uint64_t aor_acc, naors;
	uint32_t aor_swept;
	uint64_t lock_recoveries;	/* EOWNERDEAD seen (atomic) */
	uint64_t lock_timeouts;	/* locks given up on (atomic): a holder
				   stopped, not dead */
	uint64_t slots_recovered;	/* TAKEN slots of dead processes
					   freed (atomic) */
	uint32_t slot_cursor;	/* next slot the slot sweep looks at */
	struct loc_shm_sync sync[LOC_SHARDS_MAX];	/* per Redis shard */
	uint64_t shard_set;	/* loc_shard_set of the shards the store was
				   last reconciled with (atomic): another
				   list moves AORs (loc_recon.c) */
	pthread_mutex_t free_lock;	/* guards free_head */
	uint32_t free_head;
	int32_t creator_pid;	/* who formats and loads it, then keeps it
				   (atomic; 0: not recorded yet) */
	uint64_t creator_start;	/* that process's start time: a reused pid
				   is another process */
};

/* A process's view of the segment. */
struct loc_shm {
	char name[256];
	struct loc_shm_hdr *hdr;
	struct loc_bucket *buckets;
	struct loc_conn_bucket *cbuckets;
	struct loc_slot *slots;
	size_t size;
	uint64_t rc_slots;	/* debug: conn chain slots remove_conn read */
	uint64_t rc_buckets;	/* debug: AOR buckets remove_conn locked */
	int aor_ttl;
	int created;		/* this process created (and must load) it */
	int orphan;		/* attached to a finished segment whose
				   creator is gone: reconcile with Redis */
};

/*
 * What the shared store reports while it changes an AOR, so that the
 * Redis layer writes the same change.  Called with the AOR's bucket
 * lock held: must not block or call back into the store.
 */
struct loc_sink {
	/* b left the store (replaced under another key, removed, expired) */
	void (*del)(void *arg, const struct loc_binding *b);
	/* b was added or replaced */
	void (*set)(void *arg, const struct loc_binding *b);
	/* aor's change is complete: it keeps bindings until expire_at
	   (unix s, the latest expiry plus aor_ttl), or has none left and
	   is known until known_until (0: forgotten); fresh: the store held
	   nothing of aor before (its first binding, no marker) */
	void (*aor_done)(void *arg, const char *aor, int64_t expire_at,
			 int64_t known_until, int fresh);
	void *arg;
};

/* loc_shm.c */
int loc_shm_open(struct loc_shm *s, const struct loc_config *cfg);
/*
 * The host needs one process hearing shard's invalidations: what it
 * fetches goes into the shared store for all, and every further
 * subscriber would cost Redis and itself a copy of every write of the
 * cluster.  Returns 1 when this process is (now) that listener, 0 while
 * a live other process is.  Release gives it up (at close).
 */
int loc_shm_listen_claim(struct loc_shm *s, int shard);
void loc_shm_listen_release(struct loc_shm *s, int shard);
void loc_shm_init_done(struct loc_shm *s);
void loc_shm_close(struct loc_shm *s);
int loc_binding_same(const struct loc_binding *a, const struct loc_binding *b);
int loc_binding_same_key(const struct loc_binding *a,
			 const struct loc_binding *b);
int loc_shm_lookup(struct loc_shm *s, const char *aor, int64_t now,
		   struct loc_binding *out, int max, int *known);
/* loc_shm_lookup, and the AOR's bucket write sequence read with it
 * (seq may be NULL), for loc_shm_apply. */
int loc_shm_lookup_seq(struct loc_shm *s, const char *aor, int64_t now,
		       struct loc_binding *out, int max, int *known,
		       uint32_t *seq);
int loc_shm_apply(struct loc_shm *s, const char *aor, uint32_t seq,
		  const struct loc_change *ch, int n, int64_t now,
		  const struct loc_sink *k);
int loc_shm_save(struct loc_shm *s, const struct loc_binding *b, int64_t now,
		 const struct loc_sink *k);
int loc_shm_remove(struct loc_shm *s, const char *aor, const char *contact,
		   int64_t now, const struct loc_sink *k);
int loc_shm_remove_aor(struct loc_shm *s, const char *aor, int64_t now,
		       const struct loc_sink *k);
void loc_shm_expire(struct loc_shm *s, int64_t now, const struct loc_sink *k);
int loc_shm_replace_aor(struct loc_shm *s, const char *aor,
			const struct loc_binding *bs, int n,
			int64_t known_until, int64_t now,
			const uint32_t *wseq);
uint32_t loc_shm_wseq(struct loc_shm *s, const char *aor);
/* Bumps aor's bucket's wseq as a local write does: a reconcile of aor
 * whose Redis reply is older than the call fetches again. */
void loc_shm_touch(struct loc_shm *s, const char *aor);
/* Copies the distinct AORs stored in bucket i (bindings or markers),
 * at most max; returns how many (more are rare: a chain holds ~1 AOR). */
int loc_shm_bucket_aors(struct loc_shm *s, uint32_t i,
			char (*aors)[LOC_AOR_MAX], int max);

/* loc_shm.c, for loc_shm_conn.c: the AOR side of the store. */
typedef int (*loc_match_fn)(const struct loc_binding *b, const void *arg,
			    int64_t now);
/* Takes a robust lock (bk: the AOR bucket it guards, NULL for the free
 * list), repairing the chain a dead owner left.  0 or a negative errno. */
int loc_lock(struct loc_shm *s, pthread_mutex_t *m, struct loc_bucket *bk);
void loc_unlock(pthread_mutex_t *m);
struct loc_bucket *loc_bucket_of(struct loc_shm *s, const char *aor);
/* Removes aor's bindings that match, as one change of aor reported to k;
 * returns how many. */
int loc_aor_remove_locked(struct loc_shm *s, struct loc_bucket *bk,
			  const char *aor, loc_match_fn match, const void *arg,
			  int64_t now, const struct loc_sink *k);
/* The same over every bucket, one lock at a time: O(max_bindings). */
int loc_shm_remove_match(struct loc_shm *s, loc_match_fn match,
			 const void *arg, int64_t now, const struct loc_sink *k);

/* loc_shm_conn.c: the index by (edge, connection). */
struct loc_conn_bucket *loc_cbucket_of(struct loc_shm *s, uint16_t edge_id,
				       uint64_t conn_id);
/* Takes a conn bucket's robust lock, rebuilding its chain when a dead
 * owner left it.  Only while holding no other conn lock. */
int loc_conn_lock(struct loc_shm *s, struct loc_conn_bucket *cb);
/* Indexes binding slot i under its connection, if it has one; called
 * with its AOR bucket lock held, after its b is written. */
void loc_conn_link(struct loc_shm *s, uint32_t i);
/* Takes slot i out of the index before its b changes or it is freed;
 * called with its AOR bucket lock held. */
void loc_conn_unlink(struct loc_shm *s, uint32_t i);
/* Removes every binding of (edge_id, conn_id); see loc_remove_conn. */
int loc_shm_remove_conn(struct loc_shm *s, uint16_t edge_id, uint64_t conn_id,
			int64_t now, const struct loc_sink *k);

/* loc_sync.c: the pure decisions of the Redis fault handling. */

/*
 * The AORs this process changed while Redis did not take the change
 * (down, stalled, or too many commands in flight), to replay: an
 * open-addressing set of at most cap names.  Past cap it only
 * remembers that it overflowed: the caller then reconciles every AOR.
 * Memory: ~2 x cap x 130 bytes, calloc'ed, so untouched pages cost
 * nothing.
 */
struct loc_dirty {
	char (*tab)[LOC_AOR_MAX];	/* "" is an empty slot */
	uint32_t size;		/* a power of two, >= 2 x cap */
	uint32_t cap, n;
	int overflow;
};

int loc_dirty_init(struct loc_dirty *d, uint32_t cap);
void loc_dirty_fini(struct loc_dirty *d);
/* Adds aor (case folded). */
void loc_dirty_mark(struct loc_dirty *d, const char *aor);
int loc_dirty_has(const struct loc_dirty *d, const char *aor);
/* Empties d (keeps its memory). */
void loc_dirty_clear(struct loc_dirty *d);
/* Marks every AOR of src into dst (and its overflow). */
void loc_dirty_merge(struct loc_dirty *dst, const struct loc_dirty *src);

/*
 * What a reconcile does with one binding key of an AOR, given the
 * host's copy l and Redis's r (either NULL when absent).  self is the
 * host's segment id (a binding's origin says who wrote it); since is
 * the unix ms from which Redis may lack writes of the host (INT64_MAX:
 * none); all is set when Redis restarted and may have lost anything.
 */
enum loc_sync_act {
	LOC_SYNC_KEEP = 0,	/* both hold the same write (or neither) */
	LOC_SYNC_PUSH,		/* the host's copy is newer: write it */
	LOC_SYNC_PULL,		/* Redis's copy is newer: take it */
	LOC_SYNC_DROP_LOCAL,	/* removed elsewhere: drop the host's copy */
	LOC_SYNC_DROP_REMOTE,	/* removed here meanwhile: delete it */
};

struct loc_sync_ctx {
	uint64_t self;
	int64_t since;
	int all;
};

enum loc_sync_act loc_sync_decide(const struct loc_binding *l,
				  const struct loc_binding *r,
				  const struct loc_sync_ctx *c);

/*
 * Merges the host's bindings ls[0..nl) of one AOR with Redis's
 * rs[0..nr) (matched by loc_binding_same_key) by loc_sync_decide.
 * Writes the AOR's resulting bindings to out (room for nl + nr), the
 * bindings to write to Redis to push[] and those to delete from it to
 * drop[] (pointers into ls/rs; room for nl and nr), with their counts.
 * Returns how many went to out; changed is set when the host's copy
 * differs from out.  unsure counts the host's own writes since `since`
 * that Redis already holds (KEEP): Redis took them, but whether their
 * invalidation went out is not known (its PUBLISH may have been the
 * command that did not fit, or whose reply was lost).
 */
struct loc_merge {
	struct loc_binding *out;
	const struct loc_binding **push, **drop;
	int npush, ndrop, changed, unsure;
};

int loc_sync_merge(const struct loc_binding *ls, int nl,
		   const struct loc_binding *rs, int nr,
		   const struct loc_sync_ctx *c, struct loc_merge *m);

/* loc_redis.c: the per-process Redis side of a struct loc */
enum loc_link {
	LOC_LINK_DOWN = 0,	/* rconn down: waiting for it */
	LOC_LINK_CONNECTING,	/* rconn up, INFO (run id) not answered */
	LOC_LINK_UP,		/* writes and reconciles may go */
};

/* A reconcile pass over every AOR (see loc_recon.c). */
struct loc_pass {
	int on;
	int all;		/* push and pull everything (push_all) */
	int full;		/* every AOR, not only the dirty ones */
	int move;		/* also copy AORs not owned here (r->move) */
	uint32_t unsync_gen;	/* the store's unsync_gen when it began */
	uint32_t bucket;	/* next local bucket to walk; UINT32_MAX:
				   the dirty AORs only */
	int in_bucket;		/* AORs of that bucket already fetched */
	uint32_t slot;		/* next replay slot, dirty AORs only */
	int scanning;		/* local walk done, SCAN of Redis running */
	int scan_sent;		/* a SCAN is in flight */
	char cursor[32];
	int inflight;		/* its HGETALLs and SCAN in flight */
	uint32_t gen;		/* names the pass its replies belong to */
	uint64_t aors;		/* AORs it fetched */
	uint64_t pushed, dropped;	/* bindings written to, deleted from Redis */
	uint64_t pulled;	/* AORs it changed in the store */
	int64_t start_ms;
};

struct rconn;

/*
 * loc_shard.c: which Redis shard holds an AOR.  Rendezvous hashing of
 * the lower-cased AOR with each shard's name under a fixed public key,
 * so every host and process agrees with no shared state, and adding a
 * shard moves only the AORs it wins (1/(n+1) of them).
 */
struct loc_shard_map {
	int n;				/* 1: no hashing at all */
	int ids[LOC_SHARDS_MAX];	/* hashes of the shard names */
};

/* 0, or -EINVAL (n out of 1..LOC_SHARDS_MAX, two names that hash
 * alike). */
int loc_shard_map_init(struct loc_shard_map *m, const char *const *names,
		       int n);
/* The index (0..n-1) of aor's shard. */
int loc_shard_pick(const struct loc_shard_map *m, const char *aor);
/* A hash of the set of shards (order-free), never 0. */
uint64_t loc_shard_set(const struct loc_shard_map *m);

struct loc_redis {
	uv_loop_t *loop;
	const struct loc_shard_map *map;	/* borrowed from struct loc */
	struct loc_redis *shards;	/* every shard, this one at [shard] */
	int shard;
	struct loc_shm_sync *sync;	/* the host's standing with it, in
					   the segment */
	int move;		/* the next full pass copies the AORs found
				   on this shard but owned by another to
				   their owner (the shard list changed) */
	int strays_wait;	/* copies of strays to this shard failed:
				   when it is up, the others move again */
	char host[256];
	int port;
	char user[64], password[256];	/* AUTH of the start-up load */
	char sentinels[512], master[128], sentinel_password[256];
	char where[300];	/* what log lines name: host:port, or the
				   master's name at the sentinels */
	char prefix[64];
	uint64_t seg_id;
	struct loc_shm *shm;
	struct rconn *rc;	/* commands and SUBSCRIBE <prefix>:inval */
	enum loc_link link;
	int was_up;		/* has been UP once */
	int64_t state_ms;	/* when link took its state */
	uint64_t run;		/* hash of the run_id this process saw */
	int64_t down_ms;	/* when the link failed */
	uv_timer_t tick;	/* reconcile passes */
	int timeout_ms, backoff_max_ms, max_pending;
	int64_t op_ms;		/* time of the change the sink reports */
	int batch_bad;		/* a command of this change was not sent */
	struct loc_pub_batch *pub;	/* the changes a PUBLISH not sent yet
					   announces (loc_redis.c) */
	int need_full;		/* the link failed: reconcile every AOR */
	int listening;		/* the host's listener (loc_shm_listen_claim) */
	int push_all;		/* Redis restarted: push everything */
	int64_t settle_ms;	/* until then (unix ms) after a full pass,
				   other hosts may still owe Redis writes
				   (loc_synced) */
	struct loc_dirty dirty;	/* changes Redis did not take */
	struct loc_dirty replay;	/* the dirty set a pass works on */
	struct loc_pass pass;
	int closing;
	uint64_t errors, syncs;
	void (*closed_cb)(void *arg);	/* after loc_redis_close */
	void *closed_arg;
};

#define LOC_REDIS_VAL_MAX 1200	/* a serialized binding fits in this */

/* loc_codec.c */
int loc_binding_encode(const struct loc_binding *b, char *buf, size_t cap);
int loc_binding_decode(struct loc_binding *b, const char *buf, size_t len);
int loc_binding_field(const struct loc_binding *b, char *buf, size_t cap);

/* Shard `shard` of cfg (0: cfg's own Redis, "main"; i: cfg->shards[i-1]). */
int loc_redis_init(struct loc_redis *r, const struct loc_config *cfg,
		   int shard, uv_loop_t *loop, struct loc_shm *shm);
/* Whether this process's link to r's shard is up and owes no full
 * reconcile pass (none due, none running). */
int loc_redis_in_step(const struct loc_redis *r);
/* The host's listener says whether the store has heard every write of
 * the other hosts (heard_ok): _heard sets it, _heard_check sets it when
 * r is the listener and in step. */
void loc_redis_heard(struct loc_redis *r, uint32_t ok);
void loc_redis_heard_check(struct loc_redis *r);

/* Whether aor lives on r's shard. */
int loc_redis_owns(const struct loc_redis *r, const char *aor);
void loc_redis_load(struct loc_redis *r, int64_t now);
int loc_redis_start(struct loc_redis *r);
void loc_redis_close(struct loc_redis *r, void (*cb)(void *), void *arg);
/* Gives up being the host's listener (before the store is closed): the
 * host's next process to tick takes over. */
void loc_redis_unlisten(struct loc_redis *r);
void loc_redis_sink(struct loc_redis *r, struct loc_sink *k);

/* loc_redis.c, for loc_recon.c: the schema and the writes. */
#define LOC_SYNC_MAX     32	/* bindings of one AOR a reconcile reads
				   locally (max_contacts is at most 16) */
#define LOC_KEY_AOR      ":aor:"	/* between the prefix and the AOR */
#define LOC_KEY_MAX      (64 + sizeof(LOC_KEY_AOR) - 1 + LOC_AOR_MAX)
#define LOC_FIELD_MAX    (LOC_URI_MAX + 16)	/* loc_binding_field */
int64_t loc_now_ms(void);
/* key: LOC_KEY_MAX bytes, "<prefix>:aor:<aor lower-cased>" */
void loc_key_of(const char *prefix, const char *aor, char *key);
void loc_redis_key(const struct loc_redis *r, const char *aor, char *key);
/* Whether this process still owes r's Redis a write (loc_drain). */
int loc_redis_owes(const struct loc_redis *r);
/* Where the AOR starts in a key of r's (past "<prefix>:aor:"). */
size_t loc_key_aor_at(const struct loc_redis *r);
/* What r publishes on <prefix>:inval for the AOR whose key (from
 * loc_redis_key) is key: "<seg_id, 16 hex digits> <aor>", into msg of
 * LOC_INVAL_MAX bytes.  Built here, not by rconn's formatter, which
 * takes no width or hex conversion.  The changes of one write to Redis
 * are announced together: "<seg_id> <aor>\n<aor>..." (an AOR holds no
 * control character: the registrar refuses them). */
#define LOC_INVAL_MAX (32 + LOC_AOR_MAX)
void loc_redis_inval_msg(const struct loc_redis *r, const char *key,
			 char *msg);
/* Commands in flight on r's link, the PUBLISH being batched counted. */
int loc_redis_pending(const struct loc_redis *r);
/* Sends one command while UP; 0, or -EAGAIN (not sent, counted). */
int loc_redis_send(struct loc_redis *r, redisCallbackFn *fn, void *priv,
		   const char *fmt, ...);
/* Sends a write of the change being reported, no reply awaited; one
 * not sent spoils the change (loc_redis_publish marks its AOR). */
void loc_redis_write(struct loc_redis *r, const char *fmt, ...);

/* The script every write of a binding goes through, so no host undoes
 * what another did meanwhile (loc_recon.c): a binding written only
 * over an older version of it, deleted only at the version this host
 * holds. */
extern const char loc_lua_sync[];
/* Moves the expiry of key to ms (unix ms) unless it lives longer
 * already: the latest expiry this host knows is not the latest of
 * every host.  Two writes (loc_redis_write). */
void loc_redis_expire(struct loc_redis *r, const char *key, long long ms);
/* Ends a change of aor made at ms: announced on <prefix>:inval by the
 * PUBLISH of the link's next write, with the other changes of that
 * write; when a write of it or the PUBLISH fails, aor goes to the
 * dirty set. */
void loc_redis_publish(struct loc_redis *r, const char *aor, int64_t ms);
/* Remembers aor for the next pass (a fetch of it failed). */
void loc_redis_refetch(struct loc_redis *r, const char *aor);
/* Decodes an HGETALL reply of aor: *bs (malloc'ed, the caller frees),
 * *n live bindings, the time the AOR is *known_until.  0, -ENOMEM or
 * -EPROTO. */
int loc_redis_parse(struct loc_redis *r, const char *aor,
		    const redisReply *rep, int64_t now, struct loc_binding **bs,
		    int *n, int64_t *known_until);

/* loc_recon.c: reconciling the host's store with Redis. */
/* Fetches aor (HGETALL) and merges it both ways, for pass gen (0: an
 * invalidation).  0 or a negative errno (aor is then dirty). */
int loc_recon_fetch(struct loc_redis *r, const char *aor, uint32_t pass);
/* Begins a pass: over the dirty AORs, or every AOR after a link
 * failure, a Redis restart or an overflow of the dirty set. */
void loc_recon_start(struct loc_redis *r);
/* The link failed: the pass's AORs wait for the next one. */
void loc_recon_abort(struct loc_redis *r);
/* Sends the pass's next commands, up to its window. */
void loc_recon_step(struct loc_redis *r);

#endif
