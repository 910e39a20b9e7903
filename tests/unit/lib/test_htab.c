/*
 * test_htab.c - the intrusive hash table against a trivial model (an
 * array of present flags), over a long random run of adds, deletes and
 * finds with a hash narrow enough to force collisions and chains; then
 * growth, draining with htab_any, a key held by several entries
 * (htab_find_next), and the empty (zeroed) table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "lib/hash.h"
#include "lib/htab.h"

#define KEYS 2000

struct item {
	struct htab_node h;
	int key;
};

static int
item_eq(const struct htab_node *n, const void *key)
{
	return ((const struct item *)n)->key == *(const int *)key;
}

/* Few distinct hashes: many keys share one, so chains are long. */
static uint64_t
narrow_hash(int key)
{
	return hash_fnv1a64(&key, sizeof(key)) & 0x3ff;
}

static struct item *
find(const struct htab *t, int key)
{
	return (struct item *)htab_find(t, narrow_hash(key), item_eq, &key);
}

static void
test_htab__matches_model(void **state)
{
	static struct item items[KEYS];
	static int present[KEYS];
	struct htab t = { 0 };
	size_t count = 0;

	(void)state;
	srandom(8);
	for (int i = 0; i < KEYS; i++)
		items[i].key = i;
	for (int step = 0; step < 200000; step++) {
		int k = (int)(random() % KEYS);

		switch (random() % 3) {
		case 0:
			if (!present[k]) {
				assert_int_equal(htab_add(&t, &items[k].h,
							  narrow_hash(k)), 0);
				present[k] = 1;
				count++;
			}
			break;
		case 1:
			if (present[k]) {
				htab_del(&t, &items[k].h);
				present[k] = 0;
				count--;
			}
			break;
		default:
			if (present[k])
				assert_ptr_equal(find(&t, k), &items[k]);
			else
				assert_null(find(&t, k));
		}
		assert_int_equal(t.n, count);
	}
	for (int k = 0; k < KEYS; k++)
		assert_true((find(&t, k) != NULL) == present[k]);
	htab_fini(&t);
}

static void
test_htab__grows_and_drains(void **state)
{
	static struct item items[KEYS];
	struct htab t = { 0 };
	struct htab_node *n;
	size_t pos = 0, drained = 0;

	(void)state;
	for (int i = 0; i < KEYS; i++) {
		items[i].key = i;
		assert_int_equal(htab_add(&t, &items[i].h,
					  hash_fnv1a64(&i, sizeof(i))), 0);
	}
	/* More entries than buckets makes it double. */
	assert_true(t.mask + 1 >= KEYS);
	for (int i = 0; i < KEYS; i++)
		assert_ptr_equal(htab_find(&t, hash_fnv1a64(&i, sizeof(i)),
					   item_eq, &i), &items[i]);
	while ((n = htab_any(&t, &pos)) != NULL) {
		htab_del(&t, n);
		drained++;
	}
	assert_int_equal(drained, KEYS);
	assert_int_equal(t.n, 0);
	htab_fini(&t);
}

/* Several entries of one key, among others that share their chain:
 * htab_find then htab_find_next visit each of them once. */
static void
test_htab__find_next_visits_every_entry_of_a_key(void **state)
{
	static struct item items[64];
	struct htab t = { 0 };
	struct htab_node *n;
	int seen[64] = { 0 }, k = 1000, visits = 0;

	(void)state;
	for (int i = 0; i < 64; i++) {
		items[i].key = i % 4 == 0 ? 1000 : i;
		/* One hash for all: every entry is in one chain. */
		assert_int_equal(htab_add(&t, &items[i].h, 7), 0);
	}
	for (n = htab_find(&t, 7, item_eq, &k); n;
	     n = htab_find_next(n, item_eq, &k), visits++)
		seen[(struct item *)n - items]++;
	assert_int_equal(visits, 16);
	for (int i = 0; i < 64; i++)
		assert_int_equal(seen[i], i % 4 == 0);
	htab_fini(&t);
}

static void
test_htab__empty_table(void **state)
{
	struct htab t = { 0 };
	size_t pos = 0;
	int k = 1;

	(void)state;
	assert_null(htab_find(&t, 1, item_eq, &k));
	assert_null(htab_any(&t, &pos));
	htab_fini(&t);
	htab_fini(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_htab__matches_model),
		cmocka_unit_test(test_htab__grows_and_drains),
		cmocka_unit_test(test_htab__find_next_visits_every_entry_of_a_key),
		cmocka_unit_test(test_htab__empty_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
