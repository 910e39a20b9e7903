/*
 * rtpc_calls.c - the local sticky table Call-ID -> rtpengine instance,
 * see rtpc_int.h.  With Redis configured it is a cache in front of the
 * cluster's table; without, it is the table.
 *
 * A chained hash table (FNV-1a of the Call-ID) plus one list in order
 * of last touch.  Every entry lives ttl_ms after its last touch, so
 * that list is also the expiry order: sweeping and evicting both take
 * from its head, O(1) per entry.  The bucket array doubles when the
 * table holds more entries than buckets, up to max entries.
 */
#include "rtpctl/rtpc_int.h"
#include "lib/hash.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int
rtpc_calls_init(struct rtpc_calls *t, int max, uint64_t ttl_ms)
{
	memset(t, 0, sizeof(*t));
	t->nbuckets = 256;
	t->bucket = calloc(t->nbuckets, sizeof(*t->bucket));
	if (t->bucket == NULL)
		return -ENOMEM;
	t->max = max > 0 ? max : 1;
	t->ttl_ms = ttl_ms;
	return 0;
}

void
rtpc_calls_fini(struct rtpc_calls *t)
{
	struct rtpc_call *c = t->head, *next;

	for (; c; c = next) {
		next = c->next;
		free(c);
	}
	free(t->bucket);
	memset(t, 0, sizeof(*t));
}

static struct rtpc_call **
rtpc_calls_slot(struct rtpc_calls *t, const char *cid, size_t len,
		uint64_t h)
{
	struct rtpc_call **pp = &t->bucket[h & (t->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->hnext)
		if ((*pp)->hash == h && (*pp)->len == len &&
		    memcmp((*pp)->cid, cid, len) == 0)
			break;
	return pp;
}

static void
rtpc_calls_lru_unlink(struct rtpc_calls *t, struct rtpc_call *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		t->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		t->tail = c->prev;
}

static void
rtpc_calls_lru_append(struct rtpc_calls *t, struct rtpc_call *c)
{
	c->prev = t->tail;
	c->next = NULL;
	if (t->tail)
		t->tail->next = c;
	else
		t->head = c;
	t->tail = c;
}

/* Unlinks *pp (the slot that holds c) and frees c. */
static void
rtpc_calls_drop(struct rtpc_calls *t, struct rtpc_call **pp)
{
	struct rtpc_call *c = *pp;

	*pp = c->hnext;
	rtpc_calls_lru_unlink(t, c);
	t->count--;
	free(c);
}

static void
rtpc_calls_drop_entry(struct rtpc_calls *t, struct rtpc_call *c)
{
	rtpc_calls_drop(t, rtpc_calls_slot(t, c->cid, c->len, c->hash));
}

/* Doubles the buckets; on ENOMEM the table just stays slower. */
static void
rtpc_calls_grow(struct rtpc_calls *t)
{
	size_t n = t->nbuckets * 2;
	struct rtpc_call **b = calloc(n, sizeof(*b));

	if (b == NULL)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct rtpc_call *c = t->bucket[i], *next;

		for (; c; c = next) {
			next = c->hnext;
			c->hnext = b[c->hash & (n - 1)];
			b[c->hash & (n - 1)] = c;
		}
	}
	free(t->bucket);
	t->bucket = b;
	t->nbuckets = n;
}

int
rtpc_calls_get(struct rtpc_calls *t, const char *cid, size_t len,
	       uint64_t now)
{
	uint64_t h = hash_fnv1a64(cid, len);
	struct rtpc_call **pp = rtpc_calls_slot(t, cid, len, h);

	if (*pp == NULL)
		return -1;
	if ((*pp)->expires <= now) {
		rtpc_calls_drop(t, pp);
		return -1;
	}
	return (*pp)->inst;
}

int
rtpc_calls_put(struct rtpc_calls *t, const char *cid, size_t len, int inst,
	       uint64_t now)
{
	uint64_t h = hash_fnv1a64(cid, len);
	struct rtpc_call **pp = rtpc_calls_slot(t, cid, len, h), *c = *pp;

	if (c == NULL) {
		c = malloc(sizeof(*c) + len);
		if (c == NULL)
			return -ENOMEM;
		memcpy(c->cid, cid, len);
		c->len = len;
		c->hash = h;
		c->hnext = NULL;
		*pp = c;
		rtpc_calls_lru_append(t, c);
		t->count++;
		while (t->count > t->max)
			rtpc_calls_drop_entry(t, t->head);
		if ((size_t)t->count > t->nbuckets)
			rtpc_calls_grow(t);
	} else {
		rtpc_calls_lru_unlink(t, c);
		rtpc_calls_lru_append(t, c);
	}
	c->inst = inst;
	c->expires = now + t->ttl_ms;
	return 0;
}

void
rtpc_calls_del(struct rtpc_calls *t, const char *cid, size_t len)
{
	struct rtpc_call **pp = rtpc_calls_slot(t, cid, len,
						hash_fnv1a64(cid, len));

	if (*pp)
		rtpc_calls_drop(t, pp);
}

int
rtpc_calls_sweep(struct rtpc_calls *t, uint64_t now)
{
	int n = 0;

	while (t->head && t->head->expires <= now) {
		rtpc_calls_drop_entry(t, t->head);
		n++;
	}
	return n;
}
