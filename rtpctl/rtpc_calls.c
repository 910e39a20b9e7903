/*
 * rtpc_calls.c - the local sticky table Call-ID -> rtpengine instance,
 * see rtpc_int.h.  With Redis configured it is a cache in front of the
 * cluster's table; without, it is the table.
 *
 * A hash table (lib/htab.h, FNV-1a of the Call-ID) plus one list in
 * order of last touch (lib/list.h).  Every entry lives ttl_ms after its
 * last touch, so that list is also the expiry order: sweeping and
 * evicting both take from its head, O(1) per entry.  At most max
 * entries.
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
	list_init(&t->lru);
	t->max = max > 0 ? max : 1;
	t->ttl_ms = ttl_ms;
	return 0;
}

void
rtpc_calls_fini(struct rtpc_calls *t)
{
	struct list_node *n, *tmp;

	list_for_each_safe(&t->lru, n, tmp)
		free(list_entry(n, struct rtpc_call, lru));
	htab_fini(&t->tab);
	memset(t, 0, sizeof(*t));
}

struct rtpc_calls_key {
	const char *cid;
	size_t len;
};

static int
rtpc_calls_eq(const struct htab_node *n, const void *key)
{
	const struct rtpc_call *c = (const struct rtpc_call *)n;
	const struct rtpc_calls_key *k = key;

	return c->len == k->len && memcmp(c->cid, k->cid, k->len) == 0;
}

static struct rtpc_call *
rtpc_calls_find(struct rtpc_calls *t, const char *cid, size_t len)
{
	struct rtpc_calls_key k = { cid, len };

	return (struct rtpc_call *)htab_find(&t->tab, hash_sip(hash_process_key(), cid, len),
					     rtpc_calls_eq, &k);
}

static void
rtpc_calls_drop(struct rtpc_calls *t, struct rtpc_call *c)
{
	htab_del(&t->tab, &c->h);
	list_remove(&c->lru);
	t->count--;
	free(c);
}

static struct rtpc_call *
rtpc_calls_oldest(const struct rtpc_calls *t)
{
	struct list_node *n = list_first(&t->lru);

	return n ? list_entry(n, struct rtpc_call, lru) : NULL;
}

int
rtpc_calls_get(struct rtpc_calls *t, const char *cid, size_t len,
	       uint64_t now)
{
	struct rtpc_call *c = rtpc_calls_find(t, cid, len);

	if (c == NULL)
		return -1;
	if (c->expires <= now) {
		rtpc_calls_drop(t, c);
		return -1;
	}
	return c->inst;
}

int
rtpc_calls_put(struct rtpc_calls *t, const char *cid, size_t len, int inst,
	       uint64_t now)
{
	struct rtpc_call *c = rtpc_calls_find(t, cid, len);

	if (c == NULL) {
		c = calloc(1, sizeof(*c) + len);
		if (c == NULL)
			return -ENOMEM;
		memcpy(c->cid, cid, len);
		c->len = len;
		if (htab_add(&t->tab, &c->h, hash_sip(hash_process_key(), cid, len)) != 0) {
			free(c);
			return -ENOMEM;
		}
		list_insert_tail(&t->lru, &c->lru);
		t->count++;
		while (t->count > t->max)
			rtpc_calls_drop(t, rtpc_calls_oldest(t));
	} else {
		list_remove(&c->lru);
		list_insert_tail(&t->lru, &c->lru);
	}
	c->inst = inst;
	c->expires = now + t->ttl_ms;
	return 0;
}

void
rtpc_calls_del(struct rtpc_calls *t, const char *cid, size_t len)
{
	struct rtpc_call *c = rtpc_calls_find(t, cid, len);

	if (c)
		rtpc_calls_drop(t, c);
}

int
rtpc_calls_sweep(struct rtpc_calls *t, uint64_t now)
{
	struct rtpc_call *c;
	int n = 0;

	while ((c = rtpc_calls_oldest(t)) != NULL && c->expires <= now) {
		rtpc_calls_drop(t, c);
		n++;
	}
	return n;
}
