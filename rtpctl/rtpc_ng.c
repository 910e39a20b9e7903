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
 * Commands sit in a hash by sequence number (the cookie's tail) for
 * reply matching and in one list ordered by deadline.  Every command
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
	snprintf(t->nonce, sizeof(t->nonce), "%016" PRIx64, nonce);
	t->next_seq = 1;
	t->timeout_ms = timeout_ms;
}

static void
rtpc_ng_unlink(struct rtpc_ng_tab *t, struct rtpc_ng *ng)
{
	if (ng->prev)
		ng->prev->next = ng->next;
	else if (t->head == ng)
		t->head = ng->next;
	if (ng->next)
		ng->next->prev = ng->prev;
	else if (t->tail == ng)
		t->tail = ng->prev;
	ng->prev = ng->next = NULL;
}

static void
rtpc_ng_append(struct rtpc_ng_tab *t, struct rtpc_ng *ng)
{
	ng->prev = t->tail;
	ng->next = NULL;
	if (t->tail)
		t->tail->next = ng;
	else
		t->head = ng;
	t->tail = ng;
}

struct rtpc_ng *
rtpc_ng_new(struct rtpc_ng_tab *t, int inst, const char *dict, size_t len,
	    int max_tries, void *owner)
{
	struct rtpc_ng *ng = malloc(sizeof(*ng) + RTPC_COOKIE_MAX + len);
	struct rtpc_ng **b;
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
	b = &t->bucket[ng->seq % RTPC_NG_BUCKETS];
	ng->hnext = *b;
	*b = ng;
	t->count++;
	return ng;
}

void
rtpc_ng_sent(struct rtpc_ng_tab *t, struct rtpc_ng *ng, uint64_t now)
{
	ng->tries++;
	ng->deadline = now + (uint64_t)t->timeout_ms;
	rtpc_ng_unlink(t, ng);
	rtpc_ng_append(t, ng);
}

struct rtpc_ng *
rtpc_ng_match(struct rtpc_ng_tab *t, const char *buf, size_t len,
	      const char **dict, size_t *dlen)
{
	const char *sp = memchr(buf, ' ', len < RTPC_COOKIE_MAX ? len :
				RTPC_COOKIE_MAX);
	size_t clen, nl = strlen(t->nonce);
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
	for (struct rtpc_ng *ng = t->bucket[seq % RTPC_NG_BUCKETS]; ng;
	     ng = ng->hnext)
		if (ng->seq == seq && ng->cookie_len == clen &&
		    memcmp(ng->msg, buf, clen) == 0) {
			*dict = sp + 1;
			*dlen = len - clen - 1;
			return ng;
		}
	return NULL;
}

struct rtpc_ng *
rtpc_ng_due(struct rtpc_ng_tab *t, uint64_t now)
{
	/* A command not sent yet (tries 0) is not in the list. */
	return t->head && t->head->deadline <= now ? t->head : NULL;
}

uint64_t
rtpc_ng_next_deadline(const struct rtpc_ng_tab *t)
{
	return t->head ? t->head->deadline : 0;
}

void
rtpc_ng_free(struct rtpc_ng_tab *t, struct rtpc_ng *ng)
{
	struct rtpc_ng **pp;

	if (ng == NULL)
		return;
	rtpc_ng_unlink(t, ng);
	for (pp = &t->bucket[ng->seq % RTPC_NG_BUCKETS]; *pp;
	     pp = &(*pp)->hnext)
		if (*pp == ng) {
			*pp = ng->hnext;
			break;
		}
	t->count--;
	free(ng);
}
