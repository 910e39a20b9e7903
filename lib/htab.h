/*
 * htab.h - an intrusive chained hash table (redis dict.c without the
 * incremental rehash, nginx ngx_hash for the embedded node).
 *
 * The caller embeds a struct htab_node in its object, computes the
 * hash (lib/hash.h) and compares keys itself, so one table serves
 * string keys, numeric ids and (Call-ID, length) slices alike, and
 * nothing is allocated per entry.  The bucket count is a power of two
 * and doubles once there are more entries than buckets; a doubling
 * that cannot get memory leaves the table denser, slower but correct.
 *
 * Cost: find and add are one bucket walk (expected O(1)); del walks the
 * node's chain; a doubling is O(n), amortised O(1) per add.
 * A zeroed struct htab is an empty table: the buckets come with the
 * first add.  Not thread safe.
 */
#ifndef SM_HTAB_H
#define SM_HTAB_H

#include <stddef.h>
#include <stdint.h>

struct htab_node {
	struct htab_node *next;
	uint64_t hash;
};

struct htab {
	struct htab_node **b;
	size_t mask;		/* buckets - 1, when b != NULL */
	size_t n;		/* entries */
};

/* The object holding node n, which is its member `member`. */
#define htab_entry(n, type, member) \
	((type *)(void *)((char *)(n) - offsetof(type, member)))

/* Returns nonzero when n's key is key (the caller's key type). */
typedef int (*htab_eq_cb)(const struct htab_node *n, const void *key);

/* Frees the buckets (not the entries); the table is empty again.
 * Accepts an empty table. */
void htab_fini(struct htab *t);

/*
 * Links n under hash.  The caller checks first that the key is not in
 * the table when keys must be unique.  Returns 0, or -ENOMEM when the
 * first bucket array cannot be allocated (n is not linked).
 */
int htab_add(struct htab *t, struct htab_node *n, uint64_t hash);

/* Unlinks n, which must be in t. */
void htab_del(struct htab *t, struct htab_node *n);

/* The entry under hash for which eq(node, key) holds, or NULL. */
struct htab_node *htab_find(const struct htab *t, uint64_t hash,
			    htab_eq_cb eq, const void *key);

/*
 * The next entry after prev (which htab_find or this returned and is
 * still in the table) under the same hash for which eq(node, key)
 * holds, or NULL: with htab_find it visits once each entry of a key
 * added more than once.  No add may come between the calls (a
 * doubling reorders the chains).
 */
struct htab_node *htab_find_next(const struct htab_node *prev, htab_eq_cb eq,
				 const void *key);

/*
 * For draining a table: the first entry in bucket *pos or after it,
 * moving *pos there; NULL when none is left.  Start with *pos = 0;
 * the caller may delete the entry returned before the next call.
 */
struct htab_node *htab_any(const struct htab *t, size_t *pos);

#endif
