/*
 * test_loc_sync.c - the pure decisions of the Redis fault handling
 * (location/loc_sync.c): the back-off, the dirty set's bound, and the
 * reconcile of a host's copy of an AOR with Redis's, checked against a
 * model of an outage: two hosts in step until `since`, then each
 * changing some keys the other does not see.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "location/loc_int.h"

static void
test_loc_sync__backoff_doubles_to_the_cap(void **state)
{
	static const struct { int cur, max, next; } rows[] = {
		{ 0, 2000, LOC_BACKOFF_MIN_MS },
		{ 100, 2000, 200 },
		{ 800, 2000, 1600 },
		{ 1600, 2000, 2000 },
		{ 2000, 2000, 2000 },
		{ 1999, 2000, 2000 },
		{ 100, 150, 150 },
		{ 1 << 30, 5000, 5000 },	/* no overflow */
		{ -5, 1000, LOC_BACKOFF_MIN_MS },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		assert_int_equal(loc_backoff_next(rows[i].cur, rows[i].max),
				 rows[i].next);
}

static void
test_loc_sync__dirty_set_is_bounded(void **state)
{
	struct loc_dirty d, e;
	char aor[32];

	(void)state;
	assert_int_equal(loc_dirty_init(&d, 16), 0);
	assert_int_equal(loc_dirty_init(&e, 16), 0);
	assert_int_equal(d.since, INT64_MAX);
	for (int i = 0; i < 16; i++) {
		snprintf(aor, sizeof(aor), "u%d@a.test", i);
		loc_dirty_mark(&d, aor, 1000 - i);
		loc_dirty_mark(&d, aor, 5000);	/* again: no new entry */
	}
	assert_int_equal(d.n, 16);
	assert_false(d.overflow);
	assert_int_equal(d.since, 1000 - 15);
	assert_true(loc_dirty_has(&d, "U3@A.test"));	/* case folded */
	assert_false(loc_dirty_has(&d, "u16@a.test"));
	/* one more: it only remembers that it overflowed, and then every
	 * AOR counts as dirty */
	loc_dirty_mark(&d, "u16@a.test", 10);
	assert_int_equal(d.n, 16);
	assert_true(d.overflow);
	assert_int_equal(d.since, 10);
	assert_true(loc_dirty_has(&d, "anyone@a.test"));

	loc_dirty_mark(&e, "x@a.test", 7);
	loc_dirty_merge(&e, &d);
	assert_true(e.overflow);
	assert_int_equal(e.since, 7);
	loc_dirty_clear(&d);
	assert_int_equal(d.n, 0);
	assert_false(d.overflow);
	assert_false(loc_dirty_has(&d, "u3@a.test"));
	assert_int_equal(d.since, INT64_MAX);
	loc_dirty_fini(&d);
	loc_dirty_fini(&e);
}

static struct loc_binding
mk_binding(const char *contact, int64_t version)
{
	struct loc_binding b;

	memset(&b, 0, sizeof(b));
	snprintf(b.aor, sizeof(b.aor), "a@a.test");
	snprintf(b.contact, sizeof(b.contact), "%s", contact);
	b.version = version;
	return b;
}

static void
test_loc_sync__decide_table(void **state)
{
	struct loc_binding old = mk_binding("sip:x", 100), mid = mk_binding("sip:x", 500),
		new = mk_binding("sip:x", 900);
	static const int64_t since = 400;
	const struct {
		const struct loc_binding *l, *r;
		int dirty;
		enum loc_sync_act act;
	} rows[] = {
		{ &new, &old, 0, LOC_SYNC_PUSH },	/* newer wins, either way */
		{ &old, &new, 0, LOC_SYNC_PULL },
		{ &new, &old, 1, LOC_SYNC_PUSH },
		{ &old, &new, 1, LOC_SYNC_PULL },
		{ &mid, &mid, 1, LOC_SYNC_KEEP },
		{ &old, NULL, 0, LOC_SYNC_DROP_LOCAL },	/* Redis is the truth */
		{ &new, NULL, 0, LOC_SYNC_DROP_LOCAL },
		{ NULL, &old, 0, LOC_SYNC_PULL },
		{ NULL, &new, 0, LOC_SYNC_PULL },
		{ &new, NULL, 1, LOC_SYNC_PUSH },	/* written while down */
		{ &old, NULL, 1, LOC_SYNC_DROP_LOCAL },	/* removed elsewhere */
		{ NULL, &new, 1, LOC_SYNC_PULL },	/* written elsewhere */
		{ NULL, &old, 1, LOC_SYNC_DROP_REMOTE },/* removed here */
		{ NULL, NULL, 1, LOC_SYNC_KEEP },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		assert_int_equal(loc_sync_decide(rows[i].l, rows[i].r,
						 rows[i].dirty, since),
				 rows[i].act);
}

/*
 * The model: NKEYS binding keys of one AOR.  Before `since` both sides
 * hold the same random state; then each key is changed (written or
 * removed) by at most one side, at a time after `since`.  The truth is
 * the state after every change; the merge, from the two sides' views,
 * must reach it, and write Redis exactly where Redis differs.
 */
#define NKEYS 6

struct side {
	struct loc_binding b[NKEYS];
	int n;
};

static void
side_put(struct side *s, int key, int64_t version)
{
	char c[16];

	snprintf(c, sizeof(c), "sip:k%d", key);
	s->b[s->n++] = mk_binding(c, version);
}

static const struct loc_binding *
side_find(const struct loc_binding *bs, int n, int key)
{
	char c[16];

	snprintf(c, sizeof(c), "sip:k%d", key);
	for (int i = 0; i < n; i++)
		if (strcmp(bs[i].contact, c) == 0)
			return &bs[i];
	return NULL;
}

static void
test_loc_sync__merge_matches_the_model(void **state)
{
	(void)state;
	srand(7);
	for (int round = 0; round < 20000; round++) {
		struct side host = { .n = 0 }, redis = { .n = 0 },
			truth = { .n = 0 };
		struct loc_binding out[2 * NKEYS];
		const struct loc_binding *push[NKEYS], *drop[NKEYS];
		struct loc_merge m = { out, push, drop, 0, 0, 0 };
		const int64_t since = 1000;
		int dirty = 0, differs, n;

		for (int k = 0; k < NKEYS; k++) {
			int before = rand() % 2;	/* present before */
			int64_t v0 = 1 + rand() % 999;	/* older than since */
			int who = rand() % 3;	/* 0 none, 1 host, 2 elsewhere */
			int write = rand() % 2;	/* else remove */
			int64_t v1 = since + rand() % 1000;
			int after = who ? write : before;
			int64_t v = who && write ? v1 : v0;

			dirty |= who == 1;
			if (after)
				side_put(&truth, k, v);
			if (who == 1 ? write : before)
				side_put(&host, k, who == 1 ? v1 : v0);
			if (who == 2 ? write : before)
				side_put(&redis, k, who == 2 ? v1 : v0);
		}
		n = loc_sync_merge(host.b, host.n, redis.b, redis.n, dirty,
				   since, &m);
		assert_int_equal(n, truth.n);
		for (int k = 0; k < NKEYS; k++) {
			const struct loc_binding *t = side_find(truth.b, truth.n, k),
				*o = side_find(out, n, k),
				*r = side_find(redis.b, redis.n, k);
			int pushed = 0, dropped = 0;

			assert_true(!t == !o);
			if (t)
				assert_int_equal(o->version, t->version);
			for (int i = 0; i < m.npush; i++)
				pushed |= push[i] == side_find(host.b, host.n, k);
			for (int i = 0; i < m.ndrop; i++)
				dropped |= drop[i] == r && r;
			/* Redis is written where it differs from the truth */
			assert_int_equal(pushed, t && (!r || r->version != t->version));
			assert_int_equal(dropped, !t && r);
		}
		/* the host's copy changes where it differs from the truth */
		differs = host.n != truth.n;
		for (int k = 0; k < NKEYS; k++) {
			const struct loc_binding *t = side_find(truth.b, truth.n, k),
				*h = side_find(host.b, host.n, k);

			differs |= !t != !h || (t && t->version != h->version);
		}
		assert_int_equal(m.changed, differs);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loc_sync__backoff_doubles_to_the_cap),
		cmocka_unit_test(test_loc_sync__dirty_set_is_bounded),
		cmocka_unit_test(test_loc_sync__decide_table),
		cmocka_unit_test(test_loc_sync__merge_matches_the_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
