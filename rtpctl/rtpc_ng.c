/*
 * rtpc_ng.c - ng commands in flight, see rtpc_int.h.
 *
 * rtpengine's ng protocol is "<cookie> <bencoded dict>" over UDP, and
 * the reply carries the same cookie.  rtpengine caches each reply by
 * cookie, so a retransmission reuses the cookie and gets the cached
 * reply instead of running the command twice (rtpengine
 * daemon/control_ng.c, cookie_cache.h); for the same reason cookies
 * must never repeat between processes, hence the random nonce.
 *
 * Commands sit in a hash table by sequence number (the cookie's tail)
 * for reply matching and in one list ordered by deadline (lib/htab.h,
 * lib/list.h).  Every command
 * waits the same timeout, so a (re)send goes to the tail and the list
 * stays sorted at O(1) per operation; the process arms one timer for
 * the head.
 */
#include "rtpctl/rtpc_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RTPC_COOKIE_MAX 40

void
rtpc_ng_init(struct rtpc_ng_tab *t, uint64_t nonce, int timeout_ms)
{
	memset(t, 0, sizeof(*t));
	list_init(&t->order);
	snprintf(t->nonce, sizeof(t->nonce), "%016" PRIx64, nonce);
	t->next_seq = 1;
	t->timeout_ms = timeout_ms;
}

void
rtpc_ng_fini(struct rtpc_ng_tab *t)
{
	htab_fini(&t->tab);
}

struct rtpc_ng *
rtpc_ng_new(struct rtpc_ng_tab *t, int inst, const char *dict, size_t len,
	    int max_tries, void *owner)
{
	struct rtpc_ng *ng = malloc(sizeof(*ng) + RTPC_COOKIE_MAX + len);
	int n;

	if (ng == NULL)
		return NULL;
	memset(ng, 0, sizeof(*ng));
	ng->msg = (char *)(ng + 1);
	ng->seq = t->next_seq++;
	n = snprintf(ng->msg, RTPC_COOKIE_MAX, "%s_%" PRIx64, t->nonce,
		     ng->seq);
	ng->cookie_len = (size_t)n;
	ng->msg[n] = ' ';
	memcpy(ng->msg + n + 1, dict, len);
	ng->len = (size_t)n + 1 + len;
	ng->inst = inst;
	ng->max_tries = max_tries > 0 ? max_tries : 1;
	ng->owner = owner;
	if (htab_add(&t->tab, &ng->h, ng->seq) != 0) {
		free(ng);
		return NULL;
	}
	t->count++;
	return ng;
}

void
rtpc_ng_sent(struct rtpc_ng_tab *t, struct rtpc_ng *ng, uint64_t now)
{
	if (ng->tries++ == 0)
		ng->first_sent = now;
	ng->deadline = now + (uint64_t)t->timeout_ms;
	list_remove(&ng->order);
	list_insert_tail(&t->order, &ng->order);
}

struct rtpc_ng_key {
	const char *cookie;
	size_t len;
};

static int
rtpc_ng_eq(const struct htab_node *n, const void *key)
{
	const struct rtpc_ng *ng = (const struct rtpc_ng *)n;
	const struct rtpc_ng_key *k = key;

	return ng->cookie_len == k->len && memcmp(ng->msg, k->cookie,
						  k->len) == 0;
}

struct rtpc_ng *
rtpc_ng_match(struct rtpc_ng_tab *t, const char *buf, size_t len,
	      const char **dict, size_t *dlen)
{
	const char *sp = memchr(buf, ' ', len < RTPC_COOKIE_MAX ? len :
				RTPC_COOKIE_MAX);
	size_t clen, nl = strlen(t->nonce);
	struct rtpc_ng_key k;
	struct rtpc_ng *ng;
	uint64_t seq = 0;

	if (sp == NULL)
		return NULL;
	clen = (size_t)(sp - buf);
	if (clen < nl + 2 || memcmp(buf, t->nonce, nl) != 0 || buf[nl] != '_')
		return NULL;
	for (size_t i = nl + 1; i < clen; i++) {
		char c = buf[i];
		int d = c >= '0' && c <= '9' ? c - '0' :
			c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

		if (d < 0 || seq >> 60)
			return NULL;
		seq = seq << 4 | (uint64_t)d;
	}
	k.cookie = buf;
	k.len = clen;
	ng = (struct rtpc_ng *)htab_find(&t->tab, seq, rtpc_ng_eq, &k);
	if (ng == NULL)
		return NULL;
	*dict = sp + 1;
	*dlen = len - clen - 1;
	return ng;
}

struct rtpc_ng *
rtpc_ng_first(const struct rtpc_ng_tab *t)
{
	struct list_node *n = list_first(&t->order);

	return n ? list_entry(n, struct rtpc_ng, order) : NULL;
}

struct rtpc_ng *
rtpc_ng_after(const struct rtpc_ng_tab *t, const struct rtpc_ng *ng)
{
	struct list_node *n = list_next(&t->order, &ng->order);

	return n ? list_entry(n, struct rtpc_ng, order) : NULL;
}

struct rtpc_ng *
rtpc_ng_due(struct rtpc_ng_tab *t, uint64_t now)
{
	/* A command not sent yet (tries 0) is not in the list. */
	const struct rtpc_ng *ng = rtpc_ng_first(t);

	return ng && ng->deadline <= now ? rtpc_ng_first(t) : NULL;
}

uint64_t
rtpc_ng_next_deadline(const struct rtpc_ng_tab *t)
{
	struct rtpc_ng *ng = rtpc_ng_first(t);

	return ng ? ng->deadline : 0;
}

void
rtpc_ng_free(struct rtpc_ng_tab *t, struct rtpc_ng *ng)
{
	if (ng == NULL)
		return;
	list_remove(&ng->order);
	htab_del(&t->tab, &ng->h);
	t->count--;
	free(ng);
}
