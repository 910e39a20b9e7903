/*
 * loc_int.h - private declarations of the location library, shared by
 * loc.c (the public API), loc_shm.c (the host's shared store),
 * loc_shm_conn.c (its index by connection) and loc_redis.c (the Redis
 * replica, its schema and codec).  The unit tests include it too, to
 * look inside the store.
 */
#ifndef SM_LOC_INT_H
#define SM_LOC_INT_H

#include <hiredis/async.h>
#include <pthread.h>
#include <stdint.h>
#include <uv.h>

#include "location/loc.h"

#define LOC_SHM_MAGIC   0x636f6c6d73706973ULL	/* "sipsmloc" */
#define LOC_SHM_VERSION 2
#define LOC_NIL         UINT32_MAX	/* "no slot" in an offset link */

enum loc_slot_kind {
	LOC_SLOT_FREE = 0,
	LOC_SLOT_BINDING,	/* a contact of b.aor */
	LOC_SLOT_KNOWN,		/* b.aor has no binding but is known until
				   known_until; reuses the last binding's slot */
};

/* One fixed-size slot; slots link by index, never by pointer. */
struct loc_slot {
	uint32_t next;		/* next slot in the bucket or free list */
	uint32_t cnext;		/* next slot in the conn bucket's chain */
	uint8_t kind;		/* enum loc_slot_kind */
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

/* The start of the segment.  Offsets are from the segment's base. */
struct loc_shm_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t init_done;	/* set (release) once the creator is done */
	uint64_t seg_id;	/* random: names this host in invalidations */
	uint64_t size;		/* bytes of the segment */
	uint32_t slot_size;	/* sizeof(struct loc_slot) of the creator */
	uint32_t nbuckets;	/* a power of two */
	uint32_t nslots;
	uint32_t expire_cursor;	/* next bucket loc_expire sweeps (atomic) */
	uint64_t bucket_off;
	uint64_t cbucket_off;	/* nbuckets struct loc_conn_bucket */
	uint64_t slot_off;
	uint64_t nbindings;	/* LOC_SLOT_BINDING slots (atomic) */
	uint64_t lock_recoveries;	/* EOWNERDEAD seen (atomic) */
	pthread_mutex_t free_lock;	/* guards free_head */
	uint32_t free_head;
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
	   is known until known_until (0: forgotten) */
	void (*aor_done)(void *arg, const char *aor, int64_t expire_at,
			 int64_t known_until);
	void *arg;
};

/* loc_shm.c */
int loc_shm_open(struct loc_shm *s, const struct loc_config *cfg);
void loc_shm_init_done(struct loc_shm *s);
void loc_shm_close(struct loc_shm *s);
int loc_binding_same(const struct loc_binding *a, const struct loc_binding *b);
int loc_binding_same_key(const struct loc_binding *a,
			 const struct loc_binding *b);
int loc_shm_lookup(struct loc_shm *s, const char *aor, int64_t now,
		   struct loc_binding *out, int max, int *known);
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
				       uint32_t conn_id);
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
int loc_shm_remove_conn(struct loc_shm *s, uint16_t edge_id, uint32_t conn_id,
			int64_t now, const struct loc_sink *k);

/* loc_redis.c: the per-process Redis side of a struct loc */
struct loc_redis {
	uv_loop_t *loop;
	char host[256];
	int port;
	char prefix[64];
	uint64_t seg_id;
	struct loc_shm *shm;
	redisAsyncContext *cmd;	/* commands; NULL while down */
	redisAsyncContext *sub;	/* SUBSCRIBE <prefix>:inval */
	int cmd_up, sub_up;	/* connected (not just connecting) */
	uv_timer_t timer;	/* reconnect with backoff */
	int backoff_ms;
	int closing;
	uint64_t errors;
	void (*closed_cb)(void *arg);	/* after loc_redis_close */
	void *closed_arg;
};

#define LOC_REDIS_VAL_MAX 1200	/* a serialized binding fits in this */

int loc_binding_encode(const struct loc_binding *b, char *buf, size_t cap);
int loc_binding_decode(struct loc_binding *b, const char *buf, size_t len);
int loc_binding_field(const struct loc_binding *b, char *buf, size_t cap);

int loc_redis_init(struct loc_redis *r, const struct loc_config *cfg,
		   uv_loop_t *loop, struct loc_shm *shm);
void loc_redis_load(struct loc_redis *r, int64_t now);
void loc_redis_start(struct loc_redis *r);
void loc_redis_close(struct loc_redis *r, void (*cb)(void *), void *arg);
void loc_redis_sink(struct loc_redis *r, struct loc_sink *k);

#endif
