/*
 * loc.h - the location service: where an address of record (AOR) can
 * be reached.  A library linked into every core.
 *
 * Redis holds the truth for the cluster; a shared-memory store on each
 * host, one mapping shared by every core process there, answers every
 * lookup without a Redis round trip.  Writes go to the shared store and
 * then to Redis (asynchronously, hiredis on the caller's libuv loop),
 * and are published so that other hosts refresh their copy.  Without a
 * Redis address the shared store alone is the truth (LOC_MODE_SHM).
 *
 * All functions are called from the owning process's loop thread; the
 * shared store is safe across processes (a robust lock per bucket).
 * `now` is unix seconds; in LOC_MODE_REDIS it must be the real clock,
 * since Redis key expiry is derived from it.  In LOC_MODE_REDIS, loc_new
 * ignores SIGPIPE unless the process already handles it (hiredis
 * writes with write(2)).
 */
#ifndef SM_LOC_H
#define SM_LOC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/env.h"

#define LOC_AOR_MAX      128	/* "user@domain" */
#define LOC_URI_MAX      256	/* contact URI */
#define LOC_CALLID_MAX   128
#define LOC_INSTANCE_MAX 96	/* +sip.instance */
#define LOC_UA_MAX       64	/* User-Agent, truncated */
#define LOC_PATH_MAX     256	/* Path header value, "" if none */

/* Store policy (Kamailio usrloc db_mode). */
enum loc_mode {
	LOC_MODE_SHM = 0,	/* shared memory only: one host, no Redis */
	LOC_MODE_REDIS,		/* write-through to Redis, shm as a replica */
};

#define LOC_F_WS 0x01		/* contact reached over WebSocket */

struct loc_binding {
	char aor[LOC_AOR_MAX];
	char contact[LOC_URI_MAX];
	char callid[LOC_CALLID_MAX];
	uint32_t cseq;
	int64_t expires;	/* absolute, unix seconds */
	uint16_t q;		/* q-value x 1000; 1000 when absent */
	uint8_t transport;	/* enum env_transport */
	uint8_t flags;		/* LOC_F_* */
	uint16_t edge_id;	/* edge that holds the flow */
	uint64_t conn_id;	/* its connection (ENV_CONN_ID: incarnation
				   and serial), 0 for UDP */
	union env_sa received;	/* source address of the REGISTER */
	char instance[LOC_INSTANCE_MAX];
	uint32_t reg_id;
	char user_agent[LOC_UA_MAX];
	char path[LOC_PATH_MAX];
	int64_t version;	/* unix ms of its last write, set by loc_save
				   (strictly increasing per process): Redis
				   and a host's store reconcile by it */
	uint64_t origin;	/* the host (store segment id) that wrote it,
				   set by loc_save */
};

/* One more Redis master the AORs are spread over (loc_shard.c). */
struct loc_shard_config {
	const char *name;	/* hashed with each AOR: the same on every
				   host; renaming a shard moves its AORs */
	const char *host;	/* unused with sentinels */
	int port;
	const char *sentinels;	/* NULL or "": host:port is the master */
	const char *master;	/* its name at the sentinels */
};

struct loc_config {
	const char *shm_name;	/* POSIX shm name, e.g. "/sipmesh-loc" */
	size_t shm_size;	/* bytes of the mapping */
	int max_bindings;
	const char *redis_host;	/* NULL or "" (and no sentinels):
				   LOC_MODE_SHM */
	int redis_port;
	const char *redis_user;	/* ACL user, NULL or "": none */
	const char *redis_password;	/* AUTH, NULL or "": none */
	const char *redis_sentinels;	/* "host:port,...": the master is
					   found through Sentinel (rconn.h),
					   redis_host is not used */
	const char *redis_master;	/* its name there, NULL: "sipmesh" */
	const char *redis_sentinel_password;	/* NULL or "": none */
	const struct loc_shard_config *shards;	/* n_shards more masters:
					   each AOR lives on one of them or on
					   the one above (named "main"), chosen
					   by rendezvous hash; user, passwords
					   and timeouts are the same */
	int n_shards;
	const char *prefix;	/* Redis key prefix, e.g. "sm" */
	int aor_ttl;		/* seconds an AOR stays known after its
				   last binding is gone (404 vs 480) */
	/* Redis faults; 0 takes the default in brackets. */
	int redis_timeout_ms;	/* connect and command timeout [1000] */
	int redis_backoff_max_ms; /* reconnect back-off cap [2000] */
	int redis_max_pending;	/* commands in flight; past it a write is
				   left to the dirty set [4096] */
	int redis_dirty_max;	/* AORs remembered as unsent; past it the
				   whole store is reconciled [10000] */
	int init_wait_ms;	/* how long a process waits for the live
				   process loading the shared store [120000];
				   a loader that dies is taken over at once */
};

struct loc;

/*
 * Opens (creating when first) the host's shared store and, in Redis
 * mode, connects to Redis on loop.  The first process on a host loads
 * every binding from Redis before returning (a blocking start-up
 * step, before the loop runs).  Writes *out on success only.
 * Returns 0, -ENOMEM, -ENOSPC (shm too small for max_bindings: each slot
 * takes ~1 KiB), -EINVAL (Redis mode without a loop), -EPROTO (an
 * existing segment of another layout), -ETIMEDOUT (its creator never
 * finished), or a negative errno from shm_open/mmap; loop may be NULL
 * in LOC_MODE_SHM.  Redis being unreachable is not an error: the
 * store keeps answering, writes are remembered (bounded) and
 * reconciled when Redis returns; see loc_redis.c.
 */
int loc_new(struct loc **out, const struct loc_config *cfg, uv_loop_t *loop);

/* Closes Redis and unmaps; the shared store stays for other processes.
 * Accepts NULL.  In LOC_MODE_REDIS the memory is released by the loop's
 * next turn (uv_close): run the loop once more before uv_loop_close. */
void loc_free(struct loc *l);

/*
 * loc_free once what this process owes Redis is written, or after ms:
 * the AORs it changed while Redis was away, a pass a failed link left
 * to run, commands in flight.  Bindings taken while the Redis master
 * was away live only in the host's store until then, and a host that
 * stops takes them along.  A link that is down is tried at once.  The
 * loop must keep running: a timer holds it until l is freed.  Logs what
 * was written, or what was not.  Accepts NULL; in LOC_MODE_SHM, or with
 * nothing owed, loc_free at once.
 */
#define LOC_DRAIN_MS 2000
void loc_drain(struct loc *l, int ms);

/* Whether s[0..len) holds no control character.  An AOR never does:
 * the invalidations separate AORs by LF, so the store refuses one
 * that does (-EINVAL). */
int loc_aor_plain(const char *s, size_t len);

/* Removes the host's shared store (for tests and `make run` cleanup). */
int loc_shm_unlink(const char *shm_name);

/*
 * Copies up to max live bindings (expires > now) of aor, highest q
 * first, into out.  Returns how many (0..max), or a negative errno.
 * *known is set to 1 when the AOR has registered within aor_ttl even
 * if no binding is live now (so the proxy can answer 480, not 404).
 */
int loc_lookup(struct loc *l, const char *aor, int64_t now,
	       struct loc_binding *out, int max, int *known);

/*
 * Adds or replaces one binding.  A binding is the same as a stored one
 * when the AOR matches and either both carry the same instance and
 * reg-id (RFC 5626: a re-registration after a reload replaces the old
 * contact) or the contact URIs are equal.  Returns 0, -ENOSPC when the
 * store is full, -E2BIG when a field does not fit, -EINVAL for an AOR
 * that is empty or not plain (loc_aor_plain).
 */
int loc_save(struct loc *l, const struct loc_binding *b, int64_t now);

/*
 * A registrar's read-decide-write of one AOR, atomic on the host (two
 * REGISTERs of one AOR through two cores cannot both pass a CSeq or
 * max_contacts check): loc_lookup_seq reads the AOR and a sequence
 * number; loc_update applies every change at once if nothing wrote the
 * AOR's bucket since, else returns -EAGAIN and the caller reads and
 * decides again.  Either every change happens or none (-ENOSPC).
 * Versions and origin of saved bindings are stamped as loc_save does.
 */
enum loc_change_op {
	LOC_CHANGE_SAVE = 1,		/* b saved (replacing what it matches) */
	LOC_CHANGE_REMOVE,		/* the binding of b.contact removed */
	LOC_CHANGE_REMOVE_ALL,		/* every binding of the AOR removed */
};

struct loc_change {
	enum loc_change_op op;
	struct loc_binding b;		/* b.aor is the AOR of loc_update */
};

int loc_lookup_seq(struct loc *l, const char *aor, int64_t now,
		   struct loc_binding *out, int max, int *known,
		   uint32_t *seq);
int loc_update(struct loc *l, const char *aor, uint32_t seq,
	       struct loc_change *ch, int n, int64_t now);

/* Removes aor's binding with this contact URI.  0 or -ENOENT. */
int loc_remove(struct loc *l, const char *aor, const char *contact,
	       int64_t now);

/* Removes every binding of aor.  Returns how many were removed. */
int loc_remove_aor(struct loc *l, const char *aor, int64_t now);

/* Removes every binding held by that edge connection (flow closed).
 * Returns how many were removed (0 for conn_id 0: UDP has no flow).
 * Costs that connection's bindings (the shared store indexes bindings
 * by connection), not the size of the table. */
int loc_remove_conn(struct loc *l, uint16_t edge_id, uint64_t conn_id,
		    int64_t now);

/* Drops bindings that expired by now, from the shared store and Redis.
 * Cheap to call every second: a bounded slice of the table per call
 * (1/32 of the buckets, at least 64), so a full pass takes ~32 calls;
 * lookups never return an expired binding meanwhile. */
void loc_expire(struct loc *l, int64_t now);

struct loc_stats {
	uint64_t bindings;	/* live slots in the shared store */
	uint64_t aors;		/* AORs with a live binding, as of the
				   expiry sweep's last round over the store
				   (loc_expire: ~32 calls) */
	uint64_t capacity;
	uint64_t redis_errors;	/* commands that failed or were dropped */
	uint64_t redis_connected;	/* shards whose link is up */
	uint64_t redis_pending;	/* commands in flight */
	uint64_t redis_dirty;	/* AORs waiting for a reconcile */
	uint64_t redis_syncs;	/* reconcile passes completed */
};

void loc_stats_get(struct loc *l, struct loc_stats *st);

/*
 * Whether this process's copy of the host's store is known to agree
 * with Redis: every shard's link is up, no full reconcile is due or
 * running, and the host's invalidation listener is up and caught up
 * (else writes of other hosts may be missing from the store).  After a
 * link failure (a Redis restart, a failover) the store may hold
 * bindings another host replaced meanwhile, until the reconcile pass
 * has run: a lookup may then name a flow that is gone, or miss a
 * registration, and either is the store's staleness, not the client's.
 * The same holds for a while after that pass: other hosts' cores, cut
 * off by the same failure, write what they took once their back-off
 * lets them (backoff_max_ms + timeout_ms, plus a pass as long as this
 * one's).  aor: only the shard that holds it; NULL: every shard.
 * Always 1 without Redis.
 */
int loc_synced(const struct loc *l, const char *aor);

/*
 * For tools (sipmesh-ctl): blocking, on a hiredis connection to the
 * right shard, with the schema of loc_redis.c (loc_tool.c).  Every
 * host's store follows what they change: a removal deletes each
 * binding at the version it read (the script the hosts use) and is
 * announced on <prefix>:inval like a host's own change, so every core
 * fetches the AOR and drops it from its host's store.
 */
struct redisContext;

/* Which of the n shard names (names[0] "main", the [redis] Redis) holds
 * aor; 0 for n 1.  -EINVAL when two names collide. */
int loc_shard_of(const char *const *names, int n, const char *aor);

/* aor's bindings on r that expire after now (now 0: every one): *bs
 * malloc'ed (the caller frees), *n of them.  0, -EIO (Redis failed;
 * the reason is in r->errstr), -ENOMEM. */
int loc_aor_read(struct redisContext *r, const char *prefix, const char *aor,
		 int64_t now, struct loc_binding **bs, int *n);

/* Removes aor's binding of contact, or every one (contact NULL).
 * Returns how many, or -EIO. */
int loc_aor_remove(struct redisContext *r, const char *prefix,
		   const char *aor, const char *contact);

/* Calls fn(arg, aor) for each AOR with a key on r (SCAN): AORs of
 * another shard's leftovers included.  0 or -EIO. */
int loc_aor_scan(struct redisContext *r, const char *prefix,
		 void (*fn)(void *arg, const char *aor), void *arg);

#endif
