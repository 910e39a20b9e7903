/*
 * edge_guest.c - KwikyKonf guest credentials, answered on the WS/WSS
 * port (GET /kk/guest?room=R, the HTTP glue is in edge_ws.c).
 *
 * A page has no account: it asks the edge that served it for a guest
 * address of its room and a password (auth_guest_mint(), auth/auth.h:
 * the TURN REST API pattern).  The edge picks the guest's id, so nobody
 * obtains a password for an address someone else holds; the password is
 * a MAC under the cluster's guest key, so any core checks it and the
 * edge keeps nothing per answer.
 *
 * Minting is cheap, but each answer is an address that can hold
 * bindings, so answers are limited per source: per IPv4 address and
 * per IPv6 /64 (what one host gets), a burst of EDGE_GUEST_BURST, then
 * one every EDGE_GUEST_EVERY_MS, by GCRA (one "theoretical arrival
 * time" per source instead of a token count and a clock).  Sources live
 * in a fixed table of 4-way sets picked by a hash keyed with a random
 * seed, so nobody can aim their addresses at one set; a newcomer to a
 * full set takes the slot that is least limited, which gives away at
 * most what that source would have regained by waiting.  No request
 * allocates anything.  Cost: one hash and four compares per request,
 * one HMAC per answer.
 */
#include "edge/edge_int.h"
#include "auth/auth.h"
#include "lib/hash.h"
#include "lib/log.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

int
edge_guest_init(struct edge_guest *g, const struct cfg *cfg, int ttl_s)
{
	int rc;

	memset(g, 0, sizeof(*g));
	g->ttl_s = ttl_s;
	if (getrandom(&g->seed, sizeof(g->seed), 0) != (ssize_t)sizeof(g->seed))
		rc = -EIO;
	else
		rc = key_load(cfg, KEY_USE_GUEST, g->key);
	if (rc < 0)
		log_err(LOG_SYS_MAIN, "guest credentials: no key (%s)",
			strerror(-rc));
	return rc;
}

void
edge_guest_fini(struct edge_guest *g)
{
	OPENSSL_cleanse(g->key, sizeof(g->key));
}

void
edge_source_key(const union env_sa *sa, unsigned char net[16])
{
	static const unsigned char mapped[12] = { [10] = 0xff, [11] = 0xff };
	const unsigned char *a6 = sa->in6.sin6_addr.s6_addr;

	memset(net, 0, 16);
	if (sa->sa.sa_family == AF_INET) {
		memcpy(net, &sa->in.sin_addr, 4);
	} else if (sa->sa.sa_family == AF_INET6) {
		if (memcmp(a6, mapped, sizeof(mapped)) == 0)
			memcpy(net, a6 + 12, 4);
		else {
			memcpy(net, a6, 8);
			net[15] = 6;	/* never equal to an IPv4 source */
		}
	}
}

int64_t
edge_guest_allow(struct edge_guest *g, const union env_sa *src,
		 uint64_t now_ms)
{
	const uint64_t every = EDGE_GUEST_EVERY_MS;
	const uint64_t slack = (EDGE_GUEST_BURST - 1) * every;
	unsigned char key[8 + 16];
	struct edge_guest_slot *set, *s = NULL;
	uint64_t tat;

	memcpy(key, &g->seed, 8);
	edge_source_key(src, key + 8);
	set = g->slot[hash_sip(hash_process_key(), key, sizeof(key)) % EDGE_GUEST_SETS];
	for (int i = 0; i < EDGE_GUEST_WAYS && s == NULL; i++)
		if (set[i].used && memcmp(set[i].net, key + 8, 16) == 0)
			s = &set[i];
	if (s == NULL) {
		/* A new source: an empty slot, else the least limited one. */
		s = &set[0];
		for (int i = 1; i < EDGE_GUEST_WAYS; i++)
			if (!set[i].used || (s->used && set[i].tat_ms < s->tat_ms))
				s = &set[i];
		s->used = 1;
		memcpy(s->net, key + 8, 16);
		s->tat_ms = now_ms;
	}
	tat = s->tat_ms > now_ms ? s->tat_ms : now_ms;
	if (tat - now_ms > slack)
		return (int64_t)(tat - now_ms - slack);
	s->tat_ms = tat + every;
	return 0;
}

int
edge_guest_answer(struct edge_guest *g, const union env_sa *src,
		  const char *room, int64_t now_s, uint64_t now_ms,
		  char *body, size_t cap, int64_t *retry_ms)
{
	struct auth_guest cred;
	size_t len = room ? strlen(room) : 0;
	int64_t wait;
	int n;

	*retry_ms = 0;
	if (room == NULL || !auth_guest_room_valid(room, len)) {
		n = snprintf(body, cap, "{\"error\":\"room: 1 to %d of "
			     "a-z 0-9 _ -\"}\n", AUTH_GUEST_ROOM_MAX);
		return n > 0 && (size_t)n < cap ? 400 : -ENOSPC;
	}
	wait = edge_guest_allow(g, src, now_ms);
	if (wait > 0) {
		*retry_ms = wait;
		n = snprintf(body, cap, "{\"error\":\"too many guests from "
			     "this address, try again later\"}\n");
		return n > 0 && (size_t)n < cap ? 429 : -ENOSPC;
	}
	if (auth_guest_mint(g->key, room, len, now_s, g->ttl_s, &cred) != 0) {
		n = snprintf(body, cap, "{\"error\":\"no credentials now\"}\n");
		return n > 0 && (size_t)n < cap ? 500 : -ENOSPC;
	}
	/* Every value is [a-z0-9._:-] or base64url: nothing to escape. */
	n = snprintf(body, cap, "{\"user\":\"%s\",\"username\":\"%s\","
		     "\"password\":\"%s\",\"expires\":%" PRId64 ",\"ttl\":%d}\n",
		     cred.user, cred.username, cred.password, cred.expires,
		     g->ttl_s);
	OPENSSL_cleanse(&cred, sizeof(cred));
	return n > 0 && (size_t)n < cap ? 200 : -ENOSPC;
}
