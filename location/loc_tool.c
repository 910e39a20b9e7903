/*
 * loc_tool.c - the location service's Redis schema for tools, see the
 * end of loc.h.  Blocking hiredis calls: for sipmesh-ctl, never for a
 * process's loop.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "location/loc_int.h"

int
loc_shard_of(const char *const *names, int n, const char *aor)
{
	struct loc_shard_map m;

	if (loc_shard_map_init(&m, names, n) < 0)
		return -EINVAL;
	return loc_shard_pick(&m, aor);
}

int
loc_aor_read(redisContext *r, const char *prefix, const char *aor,
	     int64_t now, struct loc_binding **bs, int *n)
{
	char key[LOC_KEY_MAX];
	redisReply *rep;

	*bs = NULL;
	*n = 0;
	loc_key_of(prefix, aor, key);
	rep = redisCommand(r, "HGETALL %s", key);
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
		if (rep)
			freeReplyObject(rep);
		return -EIO;
	}
	if (rep->elements && (*bs = malloc(rep->elements / 2 *
					   sizeof(**bs))) == NULL) {
		freeReplyObject(rep);
		return -ENOMEM;
	}
	for (size_t i = 0; i + 1 < rep->elements; i += 2) {
		const redisReply *v = rep->element[i + 1];
		struct loc_binding *b = &(*bs)[*n];

		/* "k" (known until) and undecodable values are no binding */
		if (strcmp(rep->element[i]->str, "k") != 0 &&
		    loc_binding_decode(b, v->str, v->len) == 0 &&
		    strcasecmp(b->aor, aor) == 0 && b->expires > now)
			(*n)++;
	}
	freeReplyObject(rep);
	return 0;
}

int
loc_aor_remove(redisContext *r, const char *prefix, const char *aor,
	       const char *contact)
{
	char key[LOC_KEY_MAX], field[LOC_FIELD_MAX], msg[LOC_AOR_MAX + 4];
	struct loc_binding *bs;
	redisReply *rep;
	int n, rc, removed = 0;

	rc = loc_aor_read(r, prefix, aor, 0, &bs, &n);
	if (rc < 0)
		return rc;
	loc_key_of(prefix, aor, key);
	for (int i = 0; i < n; i++) {
		if (contact && strcmp(bs[i].contact, contact) != 0)
			continue;
		loc_binding_field(&bs[i], field, sizeof(field));
		/* Only the version read: a host's newer write stays. */
		rep = redisCommand(r, "EVAL %s 1 %s %s %s %" PRId64,
				   loc_lua_sync, key, field, "", bs[i].version);
		if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
			if (rep)
				freeReplyObject(rep);
			free(bs);
			return -EIO;
		}
		removed += rep->type == REDIS_REPLY_INTEGER && rep->integer > 0;
		freeReplyObject(rep);
	}
	free(bs);
	if (removed == 0)
		return 0;
	/* Segment 0 is no host's: every core fetches the AOR and, in step
	 * with Redis, drops what Redis no longer holds (loc_sync.c). */
	snprintf(msg, sizeof(msg), "0 %s", aor);
	rep = redisCommand(r, "PUBLISH %s:inval %s", prefix, msg);
	rc = rep && rep->type == REDIS_REPLY_INTEGER ? removed : -EIO;
	if (rep)
		freeReplyObject(rep);
	return rc;
}

int
loc_aor_scan(redisContext *r, const char *prefix,
	     void (*fn)(void *arg, const char *aor), void *arg)
{
	char cursor[32] = "0";
	size_t skip = strlen(prefix) + sizeof(LOC_KEY_AOR) - 1;
	redisReply *rep;

	do {
		rep = redisCommand(r, "SCAN %s MATCH %s:aor:* COUNT 1000",
				   cursor, prefix);
		if (rep == NULL || rep->type != REDIS_REPLY_ARRAY ||
		    rep->elements != 2) {
			if (rep)
				freeReplyObject(rep);
			return -EIO;
		}
		snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
		for (size_t i = 0; i < rep->element[1]->elements; i++)
			fn(arg, rep->element[1]->element[i]->str + skip);
		freeReplyObject(rep);
	} while (strcmp(cursor, "0") != 0);
	return 0;
}
