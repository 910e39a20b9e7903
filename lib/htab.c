/*
 * htab.c - the chained hash table of htab.h.  Chains are singly linked
 * and new entries go to the front, so the entry added last is found
 * first (what a transaction retransmitted soon after is looked for).
 * Entries of one key share a hash, hence a chain: htab_find_next goes
 * on from one of them without going back to the bucket.
 */
#include "lib/htab.h"

#include <errno.h>
#include <stdlib.h>

#define HTAB_MIN_BUCKETS 16

void
htab_fini(struct htab *t)
{
	free(t->b);
	t->b = NULL;
	t->mask = 0;
	t->n = 0;
}

/* Moves every entry to a bucket array of n (a power of two). */
static int
htab_resize(struct htab *t, size_t n)
{
	struct htab_node **b = calloc(n, sizeof(*b));

	if (b == NULL)
		return -ENOMEM;
	for (size_t i = 0; t->b && i <= t->mask; i++) {
		struct htab_node *x = t->b[i], *next;

		for (; x; x = next) {
			next = x->next;
			x->next = b[x->hash & (n - 1)];
			b[x->hash & (n - 1)] = x;
		}
	}
	free(t->b);
	t->b = b;
	t->mask = n - 1;
	return 0;
}

int
htab_add(struct htab *t, struct htab_node *n, uint64_t hash)
{
	struct htab_node **b;

	if (t->b == NULL && htab_resize(t, HTAB_MIN_BUCKETS) != 0)
		return -ENOMEM;
	if (t->n > t->mask)
		(void)htab_resize(t, (t->mask + 1) * 2);	/* or stay denser */
	n->hash = hash;
	b = &t->b[hash & t->mask];
	n->next = *b;
	*b = n;
	t->n++;
	return 0;
}

void
htab_del(struct htab *t, struct htab_node *n)
{
	struct htab_node **pp = &t->b[n->hash & t->mask];

	for (; *pp; pp = &(*pp)->next)
		if (*pp == n) {
			*pp = n->next;
			n->next = NULL;
			t->n--;
			return;
		}
}

/* The first entry from n on along its chain with hash and key. */
static struct htab_node *
htab_walk(struct htab_node *n, uint64_t hash, htab_eq_cb eq, const void *key)
{
	for (; n; n = n->next)
		if (n->hash == hash && eq(n, key))
			return n;
	return NULL;
}

struct htab_node *
htab_find(const struct htab *t, uint64_t hash, htab_eq_cb eq, const void *key)
{
	if (t->b == NULL)
		return NULL;
	return htab_walk(t->b[hash & t->mask], hash, eq, key);
}

struct htab_node *
htab_find_next(const struct htab_node *prev, htab_eq_cb eq, const void *key)
{
	return htab_walk(prev->next, prev->hash, eq, key);
}

struct htab_node *
htab_any(const struct htab *t, size_t *pos)
{
	for (; t->b && *pos <= t->mask; (*pos)++)
		if (t->b[*pos])
			return t->b[*pos];
	return NULL;
}
