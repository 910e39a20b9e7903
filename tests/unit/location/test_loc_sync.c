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
test_loc_sync__dirty_set_is_bounded(void **state)
{
	struct loc_dirty d, e;
	char aor[32];

	(void)state;
	assert_int_equal(loc_dirty_init(&d, 16), 0);
	assert_int_equal(loc_dirty_init(&e, 16), 0);
	for (int i = 0; i < 16; i++) {
		snprintf(aor, sizeof(aor), "u%d@a.test", i);
		loc_dirty_mark(&d, aor);
		loc_dirty_mark(&d, aor);	/* again: no new entry */
	}
	assert_int_equal(d.n, 16);
	assert_false(d.overflow);
	assert_true(loc_dirty_has(&d, "U3@A.test"));	/* case folded */
	assert_false(loc_dirty_has(&d, "u16@a.test"));
	/* one more: it only remembers that it overflowed, and then every
	 * AOR counts as dirty */
	loc_dirty_mark(&d, "u16@a.test");
	assert_int_equal(d.n, 16);
	assert_true(d.overflow);
	assert_true(loc_dirty_has(&d, "anyone@a.test"));

	loc_dirty_mark(&e, "x@a.test");
	loc_dirty_merge(&e, &d);
	assert_true(e.overflow);
	loc_dirty_clear(&d);
	assert_int_equal(d.n, 0);
	assert_false(d.overflow);
	assert_false(loc_dirty_has(&d, "u3@a.test"));
	loc_dirty_fini(&d);
	loc_dirty_fini(&e);
}

static struct loc_binding
mk_binding(const char *contact, int64_t version, uint64_t origin)
{
	struct loc_binding b;

	memset(&b, 0, sizeof(b));
	snprintf(b.aor, sizeof(b.aor), "a@a.test");
	snprintf(b.contact, sizeof(b.contact), "%s", contact);
	b.version = version;
	b.origin = origin;
	return b;
}

enum { HOST = 1, OTHER = 2 };

static void
test_loc_sync__decide_table(void **state)
{
	struct loc_binding old = mk_binding("sip:x", 100, HOST),
		new = mk_binding("sip:x", 900, HOST),
		old2 = mk_binding("sip:x", 100, OTHER),
		new2 = mk_binding("sip:x", 900, OTHER);
	const struct loc_sync_ctx out = { HOST, 400, 0 },
		in = { HOST, INT64_MAX, 0 }, lost = { HOST, 400, 1 };
	const struct {
		const struct loc_binding *l, *r;
		const struct loc_sync_ctx *c;
		enum loc_sync_act act;
	} rows[] = {
		/* both hold it: the newer wins, in step or not */
		{ &new, &old2, &in, LOC_SYNC_PUSH },
		{ &old, &new2, &in, LOC_SYNC_PULL },
		{ &new2, &old, &out, LOC_SYNC_PUSH },
		{ &old2, &new, &out, LOC_SYNC_PULL },
		{ &new, &new, &out, LOC_SYNC_KEEP },
		/* in step: Redis is the truth */
		{ &new, NULL, &in, LOC_SYNC_DROP_LOCAL },
		{ NULL, &old, &in, LOC_SYNC_PULL },
		{ NULL, &old2, &in, LOC_SYNC_PULL },
		/* out of step since 400 */
		{ &new, NULL, &out, LOC_SYNC_PUSH },	/* written here meanwhile */
		{ &old, NULL, &out, LOC_SYNC_DROP_LOCAL },	/* removed elsewhere */
		{ &new2, NULL, &out, LOC_SYNC_DROP_LOCAL },	/* pulled, removed */
		{ NULL, &new2, &out, LOC_SYNC_PULL },	/* written elsewhere */
		{ NULL, &old, &out, LOC_SYNC_DROP_REMOTE },	/* removed here */
		{ NULL, &old2, &out, LOC_SYNC_PULL },	/* a late replay */
		/* Redis restarted: push and pull, drop nothing */
		{ &old2, NULL, &lost, LOC_SYNC_PUSH },
		{ NULL, &old, &lost, LOC_SYNC_PULL },
		{ NULL, NULL, &out, LOC_SYNC_KEEP },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		assert_int_equal(loc_sync_decide(rows[i].l, rows[i].r, rows[i].c),
				 rows[i].act);
}

/*
 * The model: NKEYS binding keys of one AOR.  Before `since` both sides
 * hold the same random state (each binding written by this host or
 * another); then each key is changed by at most one side, after
 * `since`: this host writes any key (Redis took the write, or not) or
 * removes one it wrote, another host writes or removes any key.  The
 * truth is the state after every change; the merge, from the two
 * sides' views, must reach it, write Redis exactly where Redis differs,
 * and count as unsure the host's writes Redis took.
 */
#define NKEYS 6

struct side {
	struct loc_binding b[NKEYS];
	int n;
};

static void
side_put(struct side *s, int key, int64_t version, uint64_t origin)
{
	char c[16];

	snprintf(c, sizeof(c), "sip:k%d", key);
	s->b[s->n++] = mk_binding(c, version, origin);
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
	const struct loc_sync_ctx ctx = { HOST, 1000, 0 };

	(void)state;
	srand(7);
	for (int round = 0; round < 20000; round++) {
		struct side host = { .n = 0 }, redis = { .n = 0 },
			truth = { .n = 0 };
		struct loc_binding out[2 * NKEYS];
		const struct loc_binding *push[NKEYS], *drop[NKEYS];
		struct loc_merge m = { out, push, drop, 0, 0, 0, 0 };
		int differs, n, took = 0;

		for (int k = 0; k < NKEYS; k++) {
			int before = rand() % 2;	/* present before */
			int64_t v0 = 1 + rand() % 999;	/* older than since */
			uint64_t o0 = rand() % 2 ? HOST : OTHER;
			int who = rand() % 3;	/* 0 none, HOST, OTHER */
			int write = rand() % 2;	/* else remove */
			int64_t v1 = ctx.since + rand() % 1000;
			int in_redis;	/* this host's write reached Redis */

			if (who == HOST && !write && o0 != HOST)
				who = 0;	/* the ambiguity left (loc_sync.c) */
			in_redis = who == HOST && write && rand() % 2;
			took += in_redis;
			if (who ? write : before)
				side_put(&truth, k, who ? v1 : v0, who ? (uint64_t)who : o0);
			if (who == HOST ? write : before)
				side_put(&host, k, who == HOST ? v1 : v0,
					 who == HOST ? HOST : o0);
			if (in_redis)
				side_put(&redis, k, v1, HOST);
			else if (who == OTHER ? write : before)
				side_put(&redis, k, who == OTHER ? v1 : v0,
					 who == OTHER ? OTHER : o0);
		}
		n = loc_sync_merge(host.b, host.n, redis.b, redis.n, &ctx, &m);
		assert_int_equal(n, truth.n);
		differs = host.n != truth.n;
		for (int k = 0; k < NKEYS; k++) {
			const struct loc_binding *t = side_find(truth.b, truth.n, k),
				*o = side_find(out, n, k),
				*h = side_find(host.b, host.n, k),
				*r = side_find(redis.b, redis.n, k);
			int pushed = 0, dropped = 0;

			assert_true(!t == !o);
			if (t)
				assert_int_equal(o->version, t->version);
			for (int i = 0; i < m.npush; i++)
				pushed |= h && push[i] == h;
			for (int i = 0; i < m.ndrop; i++)
				dropped |= r && drop[i] == r;
			/* Redis is written where it differs from the truth */
			assert_int_equal(pushed, t && (!r || r->version != t->version));
			assert_int_equal(dropped, !t && r);
			/* the host's copy changes where it differs */
			differs |= !t != !h || (t && t->version != h->version);
		}
		assert_int_equal(m.changed, differs);
		/* whether their invalidations went out is not known */
		assert_int_equal(m.unsure, took);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loc_sync__dirty_set_is_bounded),
		cmocka_unit_test(test_loc_sync__decide_table),
		cmocka_unit_test(test_loc_sync__merge_matches_the_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
