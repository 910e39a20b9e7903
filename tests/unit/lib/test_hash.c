/*
 * test_hash.c - FNV-1a against published vectors, and rendezvous
 * ordering: a permutation, stable, even, and minimal movement when a
 * core leaves (the property that keeps transactions on their core).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lib/hash.h"

/* The cluster's rendezvous key in these tests. */
static const struct hash_key hk = { 0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL };

/* SipHash-2-4 against the reference vectors (key 00..0f, message
 * 00 01 02 ... of each length), and keyed: another key, another hash. */
static void
test_hash__siphash_vectors(void **state)
{
	static const uint64_t want[] = {
		0x726fdb47dd0e0e31ULL,	/* "" */
		0x74f839c593dc67fdULL,	/* 00 */
	};
	unsigned char m[64];
	struct hash_key other = { 1, 2 };

	(void)state;
	for (int i = 0; i < 64; i++)
		m[i] = (unsigned char)i;
	for (size_t n = 0; n < sizeof(want) / sizeof(*want); n++)
		assert_true(hash_sip(&hk, m, n) == want[n]);
	assert_true(hash_sip(&hk, m, 15) != hash_sip(&other, m, 15));
	assert_true(hash_sip(&hk, m, 8) != hash_sip(&hk, m, 9));
	assert_true(hash_sip_nocase(&hk, "Alice@A.Test", 12) ==
		    hash_sip(&hk, "alice@a.test", 12));
	assert_true(hash_process_key() == hash_process_key());
}

static void
test_hash__fnv1a64_vectors(void **state)
{
	(void)state;
	assert_true(hash_fnv1a64("", 0) == 0xcbf29ce484222325ULL);
	assert_true(hash_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cULL);
	assert_true(hash_fnv1a64("foobar", 6) == 0x85944171f73967e8ULL);
	assert_true(hash_fnv1a64_nocase("Example.COM", 11) ==
		    hash_fnv1a64("example.com", 11));
	assert_true(hash_fnv1a64_nocase("a-Z", 3) != hash_fnv1a64_nocase("a-y", 3));
}

static void
test_hash__rendezvous_order_is_a_permutation(void **state)
{
	static const int ids[] = { 3, 1, 7, 2, 9, 4 };
	const int n = (int)(sizeof(ids) / sizeof(*ids));

	(void)state;
	for (int k = 0; k < 1000; k++) {
		char key[32];
		int order[6], ranked[6], seen[10] = { 0 };
		int len = snprintf(key, sizeof(key), "call-%d@host", k);

		hash_rendezvous_order(&hk, key, (size_t)len, ids, n, order);
		/* the same from the key's hash (edge_core_order's use) */
		hash_rendezvous_rank(hash_sip(&hk, key, (size_t)len), ids, n,
				     ranked);
		assert_memory_equal(order, ranked, sizeof(order));
		for (int i = 0; i < n; i++) {
			assert_in_range(order[i], 1, 9);
			seen[order[i]]++;
		}
		for (int i = 0; i < n; i++)
			assert_int_equal(seen[ids[i]], 1);
	}
}

static void
test_hash__rendezvous_is_stable_and_ignores_id_order(void **state)
{
	static const int a[] = { 1, 2, 3, 4 }, b[] = { 4, 2, 1, 3 };

	(void)state;
	for (int k = 0; k < 1000; k++) {
		char key[32];
		int o1[4], o2[4], o3[4];
		int len = snprintf(key, sizeof(key), "%08x-cid", k * 2654435761u);

		hash_rendezvous_order(&hk, key, (size_t)len, a, 4, o1);
		hash_rendezvous_order(&hk, key, (size_t)len, a, 4, o2);
		hash_rendezvous_order(&hk, key, (size_t)len, b, 4, o3);
		assert_memory_equal(o1, o2, sizeof(o1));
		assert_memory_equal(o1, o3, sizeof(o1));
	}
}

static void
test_hash__rendezvous_spreads_evenly(void **state)
{
	static const int ids[] = { 1, 2, 3, 4 };
	enum { KEYS = 20000 };
	int count[5] = { 0 };

	(void)state;
	for (int k = 0; k < KEYS; k++) {
		char key[32];
		int order[4];
		int len = snprintf(key, sizeof(key), "a84b4c76e66710@%d", k);

		hash_rendezvous_order(&hk, key, (size_t)len, ids, 4, order);
		count[order[0]]++;
	}
	/* 5000 expected each; 10% is > 14 standard deviations. */
	for (int i = 1; i <= 4; i++)
		assert_in_range(count[i], 4500, 5500);
}

static void
test_hash__rendezvous_moves_only_the_leavers_keys(void **state)
{
	static const int all[] = { 1, 2, 3 }, without2[] = { 1, 3 };

	(void)state;
	for (int k = 0; k < 5000; k++) {
		char key[32];
		int o3[3], o2[2];
		int len = snprintf(key, sizeof(key), "k%d", k);

		hash_rendezvous_order(&hk, key, (size_t)len, all, 3, o3);
		hash_rendezvous_order(&hk, key, (size_t)len, without2, 2, o2);
		/* The survivors keep their relative order: the fallback
		 * core is the one that would have been next. */
		if (o3[0] != 2)
			assert_int_equal(o2[0], o3[0]);
		else
			assert_int_equal(o2[0], o3[1]);
	}
}

static void
test_hash__rendezvous_small_sets(void **state)
{
	static const int one[] = { 5 };
	int order[1] = { 0 };

	(void)state;
	hash_rendezvous_order(&hk, "x", 1, one, 1, order);
	assert_int_equal(order[0], 5);
	hash_rendezvous_order(&hk, "", 0, one, 0, order);	/* n 0: no write */
	assert_int_equal(order[0], 5);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash__fnv1a64_vectors),
		cmocka_unit_test(test_hash__siphash_vectors),
		cmocka_unit_test(test_hash__rendezvous_order_is_a_permutation),
		cmocka_unit_test(test_hash__rendezvous_is_stable_and_ignores_id_order),
		cmocka_unit_test(test_hash__rendezvous_spreads_evenly),
		cmocka_unit_test(test_hash__rendezvous_moves_only_the_leavers_keys),
		cmocka_unit_test(test_hash__rendezvous_small_sets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
