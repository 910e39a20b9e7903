/*
 * auth.h - accounts of the digest authentication: who may register and
 * send requests from a local domain, kept in Redis as HA1 values per
 * realm, never as passwords.
 *
 * Schema: one hash per account, "<prefix>:acct:<realm>:<user>", with
 * fields "md5" and "sha256" holding H(user:realm:password) in hex for
 * each algorithm the challenge offers (RFC 7616: most phones speak only
 * MD5, browsers and newer phones SHA-256).  The realm is the local
 * domain the account belongs to.  Keys name realm and user in clear so
 * an operator can read them with redis-cli.
 *
 * This header holds the schema and the administration calls that
 * sipmesh-ctl makes on a blocking hiredis connection (a command-line
 * tool, not an event loop).  Names are checked before they reach a key:
 * realms are host names, users are RFC 3261 user parts without escapes,
 * so no key or SCAN pattern can be smuggled through them.
 */
#ifndef SM_AUTH_H
#define SM_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include "lib/digest.h"

#define AUTH_USER_MAX	64
#define AUTH_REALM_MAX	128
#define AUTH_KEY_MAX	(64 + 6 + AUTH_REALM_MAX + 1 + AUTH_USER_MAX + 1)

/* One account as stored: its HA1 per algorithm, hex, NUL-terminated. */
struct auth_account {
	char user[AUTH_USER_MAX + 1];
	char realm[AUTH_REALM_MAX + 1];
	char ha1[DIGEST_NALGS][DIGEST_HEX_MAX];
};

/* Whether user is 1..AUTH_USER_MAX characters of RFC 3261's unreserved
 * and user-unreserved sets (no '%' escapes, no ':' or '@'). */
int auth_user_valid(const char *user);

/* Whether realm is a host name (letters, digits, '-', '.'), at most
 * AUTH_REALM_MAX characters. */
int auth_realm_valid(const char *realm);

/*
 * Writes the account's key into out (AUTH_KEY_MAX bytes).  Returns 0,
 * or -EINVAL when user or realm is not valid or prefix too long.
 */
int auth_account_key(const char *prefix, const char *realm,
		     const char *user, char *out);

/*
 * Creates or replaces the account user@realm with both HA1 values of
 * password.  Returns 0, -EINVAL (bad name, empty password), or -EIO
 * when Redis refused or did not answer (r->errstr says why).
 */
int auth_account_set(redisContext *r, const char *prefix, const char *realm,
		     const char *user, const char *password);

/* Deletes user@realm.  Returns 0, -ENOENT when it did not exist, -EINVAL
 * or -EIO. */
int auth_account_del(redisContext *r, const char *prefix, const char *realm,
		     const char *user);

/* Reads user@realm into *a.  Returns 0, -ENOENT, -EINVAL or -EIO. */
int auth_account_get(redisContext *r, const char *prefix, const char *realm,
		     const char *user, struct auth_account *a);

typedef void (*auth_account_cb)(void *arg, const char *realm,
				const char *user);

/*
 * Calls cb for every account of realm (every realm when realm is NULL),
 * in no particular order (SCAN: it does not block Redis on a large
 * table).  Returns how many, or -EINVAL / -EIO.
 */
int auth_account_list(redisContext *r, const char *prefix, const char *realm,
		      auth_account_cb cb, void *arg);

/*
 * KwikyKonf guests: accounts nobody stores, the TURN REST API pattern
 * (draft-uberti-behave-turn-rest-00).  The edge's HTTP server hands a
 * page credentials for a guest address the edge picks:
 *   username  "<expiry>:guest.<room>.<id>"  (expiry: seconds since the
 *             epoch; id: AUTH_GUEST_ID_LEN random [a-z0-9])
 *   password  base64url(HMAC-SHA256(guest key, username)), no padding
 * and any core recomputes the password from the username, so no state
 * is shared.  The guest key is key_load(cfg, KEY_USE_GUEST) (lib/key.h).
 * A guest may use only its own address and its room's addresses
 * ("conf.<room>" and "conf.<room>.<tag>", the pass-phrase rooms).
 */
#define AUTH_GUEST_ROOM_MAX	32
#define AUTH_GUEST_ID_LEN	10
#define AUTH_GUEST_USER_MAX	(6 + AUTH_GUEST_ROOM_MAX + 1 + AUTH_GUEST_ID_LEN)
#define AUTH_GUEST_NAME_MAX	(20 + 1 + AUTH_GUEST_USER_MAX)
#define AUTH_GUEST_PASS_LEN	43	/* base64url of 32 bytes */

struct auth_guest {
	char user[AUTH_GUEST_USER_MAX + 1];	/* "guest.<room>.<id>" */
	char username[AUTH_GUEST_NAME_MAX + 1];	/* the digest username */
	char password[AUTH_GUEST_PASS_LEN + 1];
	int64_t expires;			/* seconds since the epoch */
};

/* Whether room is 1..AUTH_GUEST_ROOM_MAX of [a-z0-9_-] (KwikyKonf's
 * room names). */
int auth_guest_room_valid(const char *room, size_t len);

/*
 * Mints credentials for a new guest of room, valid for ttl_s seconds
 * from now, into *g; the id comes from getrandom(2).  Returns 0,
 * -EINVAL for a bad room or ttl, -EIO when no random bytes came.
 */
int auth_guest_mint(const unsigned char *key, const char *room, size_t len,
		    int64_t now, int ttl_s, struct auth_guest *g);

/*
 * Checks a digest username of guest shape at time now.  On 0, *user is
 * the "guest.<room>.<id>" part (a slice of username) and password
 * (AUTH_GUEST_PASS_LEN + 1 bytes) holds the password the edge gave for
 * it, from which the caller computes HA1 with digest_ha1().  Returns
 * -EINVAL when username is not of guest shape (an ordinary account),
 * -EKEYEXPIRED when its expiry has passed.
 */
int auth_guest_check(const unsigned char *key, const char *username,
		     size_t len, int64_t now, struct digest_str *user,
		     char *password);

/*
 * Whether guest (a "guest.<room>.<id>" user) may register or send as
 * the user part aor: its own address, "conf.<room>" or
 * "conf.<room>.<tag>".
 */
int auth_guest_may_use(const struct digest_str *guest, const char *aor,
		       size_t len);

/*
 * Tells every process's account cache (auth_store) that user@realm
 * changed: PUBLISH "<prefix>:acct" "<realm>:<user>".  Call after a
 * successful set or del.  Returns 0, -EINVAL or -EIO (the change
 * stands; caches then keep the old one up to their ttl).
 */
int auth_account_publish(redisContext *r, const char *prefix,
			 const char *realm, const char *user);

/*
 * Fills *a from an HMGET key md5 sha256 reply.  Returns 0, -ENOENT (no
 * field: no such account) or -EIO (an error or a value this schema
 * does not write).
 */
int auth_account_parse(const redisReply *reply, const char *realm,
		       const char *user, struct auth_account *a);

/* ---- auth_store.c: the cores' asynchronous lookup, with a cache ---- */

struct cfg;
struct auth_store;

/*
 * Creates a store with its own Redis link (rconn) to cfg->redis, with
 * cfg's password, user and timeouts, named name (CLIENT SETNAME,
 * copied).  Cache: at most cache_max accounts (LRU; 0: none),
 * positive entries fresh for ttl_s, negative (no such account) for
 * AUTH_STORE_NEG_TTL_S at most.  Subscribes to "<prefix>:acct"
 * (auth_account_publish) and drops an entry named there, so a changed
 * password takes effect at once; entries cached before a link failure
 * turn stale on its return (invalidations may have been missed).  With
 * Sentinel, while the master's link is down, lookups go to one of the
 * replicas the master listed (a second link, same credentials, named
 * "<name>-replica", kept linked): see auth_store.c.
 * Returns 0, -ENOENT (no [redis] address), -EINVAL or -ENOMEM.
 */
#define AUTH_STORE_NEG_TTL_S 5
int auth_store_new(struct auth_store **out, uv_loop_t *loop,
		   const struct cfg *cfg, const char *name, size_t cache_max,
		   int ttl_s);

/* rc: 0 found (*a valid during the call), -ENOENT no such account, -EIO
 * Redis failed/timed out, -ECANCELED the store is being freed */
typedef void (*auth_store_cb)(void *arg, int rc, const struct auth_account *a);

/*
 * Looks user@realm up (slices, copied).  Returns 0 with *a filled from
 * a fresh cache entry (cb not called); -ENOENT from a fresh negative
 * entry, or for a name no account can have (cb not called); 1 when a
 * lookup was sent: cb runs exactly once, later, never inside this call;
 * -EAGAIN when Redis is down or too busy and nothing usable is cached
 * (cb not called).  While Redis is down, a stale positive entry is
 * served (returns 0), and a lookup that fails (-EIO) hands cb a stale
 * positive entry when there is one: known users keep working through
 * an outage.  cb NULL: from a fresh entry only, -EAGAIN for anything
 * else (nothing sent), for a caller that has a slower way to wait.
 * May be called from cb.
 */
int auth_store_get(struct auth_store *s, const char *realm, size_t rlen,
		   const char *user, size_t ulen, struct auth_account *a,
		   auth_store_cb cb, void *arg);

/* Counters and gauges, all uint64_t (the metrics read them as rows). */
struct auth_store_stats {
	uint64_t hits;		/* answered from a fresh entry */
	uint64_t stale;		/* answered from a stale entry */
	uint64_t lookups;	/* sent to Redis */
	uint64_t failures;	/* lookups that failed (-EIO) */
	uint64_t evictions;	/* entries dropped for room */
	uint64_t invalidations;	/* entries dropped by a PUBLISH */
	uint64_t replica;	/* answered by a replica, master away */
	uint64_t entries;
	uint64_t redis_up;	/* the link answers */
	uint64_t replica_up;	/* a replica's link answers */
};
void auth_store_stats(const struct auth_store *s, struct auth_store_stats *st);

/* Pending callbacks run with -ECANCELED (now, inside this call); the
 * Redis link goes after the loop turns.  NULL is fine.  May be called
 * from cb. */
void auth_store_free(struct auth_store *s);

#endif
