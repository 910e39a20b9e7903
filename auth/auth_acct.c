/*
 * auth_acct.c - the account schema in Redis and its administration
 * (see auth.h).  Blocking hiredis calls: used by sipmesh-ctl only.
 * Cost: one HSET / DEL / HMGET / PUBLISH per call; listing is a SCAN
 * over the account keys, COUNT 500 per round trip.  The reply parser
 * is shared with the cores' asynchronous lookup (auth_store.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"

int
auth_user_valid(const char *user)
{
	size_t n = strlen(user);

	if (n == 0 || n > AUTH_USER_MAX)
		return 0;
	/* RFC 3261 25.1: unreserved and user-unreserved, no escapes. */
	return strspn(user, "abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			    "-_.!~'()&=+$,;?/") == n;
}

int
auth_realm_valid(const char *realm)
{
	size_t n = strlen(realm);

	if (n == 0 || n > AUTH_REALM_MAX || realm[0] == '.' || realm[0] == '-')
		return 0;
	return strspn(realm, "abcdefghijklmnopqrstuvwxyz"
			     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") == n;
}

int
auth_account_key(const char *prefix, const char *realm, const char *user,
		 char *out)
{
	int n;

	if (!auth_realm_valid(realm) || !auth_user_valid(user) ||
	    strlen(prefix) > 64)
		return -EINVAL;
	n = snprintf(out, AUTH_KEY_MAX, "%s:acct:%s:%s", prefix, realm, user);
	return n < 0 || n >= AUTH_KEY_MAX ? -EINVAL : 0;
}

/* Takes ownership of reply; 0 when it is not an error, else -EIO. */
static int
auth_reply_ok(redisReply *reply)
{
	int rc = reply && reply->type != REDIS_REPLY_ERROR ? 0 : -EIO;

	if (reply)
		freeReplyObject(reply);
	return rc;
}

int
auth_account_set(redisContext *r, const char *prefix, const char *realm,
		 const char *user, const char *password)
{
	char key[AUTH_KEY_MAX], md5[DIGEST_HEX_MAX], sha[DIGEST_HEX_MAX];

	if (auth_account_key(prefix, realm, user, key) < 0 || !password[0] ||
	    digest_ha1(DIGEST_MD5, user, realm, password, md5) < 0 ||
	    digest_ha1(DIGEST_SHA256, user, realm, password, sha) < 0)
		return -EINVAL;
	/* One HSET replaces both values at once: a reader never sees an
	 * MD5 of the new password beside a SHA-256 of the old. */
	return auth_reply_ok(redisCommand(r, "HSET %s md5 %s sha256 %s", key,
					  md5, sha));
}

int
auth_account_del(redisContext *r, const char *prefix, const char *realm,
		 const char *user)
{
	char key[AUTH_KEY_MAX];
	redisReply *reply;
	int rc;

	if (auth_account_key(prefix, realm, user, key) < 0)
		return -EINVAL;
	reply = redisCommand(r, "DEL %s", key);
	if (!reply || reply->type != REDIS_REPLY_INTEGER) {
		auth_reply_ok(reply);
		return -EIO;
	}
	rc = reply->integer ? 0 : -ENOENT;
	freeReplyObject(reply);
	return rc;
}

int
auth_account_parse(const redisReply *reply, const char *realm,
		   const char *user, struct auth_account *a)
{
	int rc = -ENOENT;

	if (!reply || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements != DIGEST_NALGS)
		return -EIO;
	memset(a, 0, sizeof(*a));
	snprintf(a->user, sizeof(a->user), "%s", user);
	snprintf(a->realm, sizeof(a->realm), "%s", realm);
	for (int i = 0; i < DIGEST_NALGS; i++) {
		const redisReply *v = reply->element[i];

		if (v->type != REDIS_REPLY_STRING)
			continue;
		if (v->len != digest_alg_hexlen(i))
			return -EIO;	/* not what this schema writes */
		memcpy(a->ha1[i], v->str, v->len);
		rc = 0;
	}
	return rc;
}

int
auth_account_get(redisContext *r, const char *prefix, const char *realm,
		 const char *user, struct auth_account *a)
{
	char key[AUTH_KEY_MAX];
	redisReply *reply;
	int rc;

	if (auth_account_key(prefix, realm, user, key) < 0)
		return -EINVAL;
	reply = redisCommand(r, "HMGET %s md5 sha256", key);
	rc = auth_account_parse(reply, realm, user, a);
	if (reply)
		freeReplyObject(reply);
	return rc;
}

int
auth_account_publish(redisContext *r, const char *prefix, const char *realm,
		     const char *user)
{
	if (!auth_realm_valid(realm) || !auth_user_valid(user) ||
	    strlen(prefix) > 64)
		return -EINVAL;
	return auth_reply_ok(redisCommand(r, "PUBLISH %s:acct %s:%s", prefix,
					  realm, user));
}

int
auth_account_list(redisContext *r, const char *prefix, const char *realm,
		  auth_account_cb cb, void *arg)
{
	char match[AUTH_KEY_MAX + 2], cursor[32] = "0";
	size_t plen;
	int n = 0;

	if (strlen(prefix) > 64 || (realm && !auth_realm_valid(realm)))
		return -EINVAL;
	/* A realm cannot hold glob characters and no user is part of the
	 * pattern: it matches exactly the keys under that prefix. */
	if (realm)
		snprintf(match, sizeof(match), "%s:acct:%s:*", prefix, realm);
	else
		snprintf(match, sizeof(match), "%s:acct:*", prefix);
	plen = strlen(prefix) + strlen(":acct:");
	do {
		redisReply *reply = redisCommand(r, "SCAN %s MATCH %s COUNT 500",
						 cursor, match);
		redisReply *keys;

		if (!reply || reply->type != REDIS_REPLY_ARRAY ||
		    reply->elements != 2 ||
		    reply->element[0]->type != REDIS_REPLY_STRING ||
		    reply->element[1]->type != REDIS_REPLY_ARRAY) {
			auth_reply_ok(reply);
			return -EIO;
		}
		snprintf(cursor, sizeof(cursor), "%s", reply->element[0]->str);
		keys = reply->element[1];
		for (size_t i = 0; i < keys->elements; i++) {
			char k[AUTH_KEY_MAX], *user;

			if (keys->element[i]->type != REDIS_REPLY_STRING ||
			    keys->element[i]->len <= plen ||
			    keys->element[i]->len >= sizeof(k))
				continue;
			snprintf(k, sizeof(k), "%s", keys->element[i]->str + plen);
			user = strchr(k, ':');
			if (!user)
				continue;
			*user++ = '\0';
			cb(arg, k, user);
			n++;
		}
		freeReplyObject(reply);
	} while (strcmp(cursor, "0") != 0);
	return n;
}
