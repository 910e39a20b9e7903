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
#include <hiredis/hiredis.h>

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

#endif
