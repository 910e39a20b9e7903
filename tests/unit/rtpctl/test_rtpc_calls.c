/*
 * test_rtpc_calls.c - the local sticky table (rtpctl/rtpc_calls.c):
 * a call stays on its instance while touched, expires ttl after its
 * last touch, is removed by delete, and a full table evicts the least
 * recently touched call; all checked against a trivial model under a
 * random sequence, with explicit times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "rtpctl/rtpc_int.h"

static void
test_rtpc_calls__sticky_and_expiry(void **state)
{
	static struct rtpc_calls t;

	(void)state;
	assert_int_equal(rtpc_calls_init(&t, 100, 1000), 0);
	assert_int_equal(rtpc_calls_get(&t, "a@h", 3, 0), -1);
	assert_int_equal(rtpc_calls_put(&t, "a@h", 3, 2, 0), 0);
	assert_int_equal(rtpc_calls_get(&t, "a@h", 3, 999), 2);
	assert_int_equal(rtpc_calls_get(&t, "a@", 2, 10), -1);
	/* A command for the call refreshes it. */
	assert_int_equal(rtpc_calls_put(&t, "a@h", 3, 2, 900), 0);
	assert_int_equal(rtpc_calls_get(&t, "a@h", 3, 1899), 2);
	assert_int_equal(rtpc_calls_get(&t, "a@h", 3, 1900), -1);
	assert_int_equal(t.count, 0);		/* dropped on sight */
	/* Sweep drops only what expired. */
	rtpc_calls_put(&t, "x", 1, 0, 0);
	rtpc_calls_put(&t, "y", 1, 1, 500);
	assert_int_equal(rtpc_calls_sweep(&t, 999), 0);
	assert_int_equal(rtpc_calls_sweep(&t, 1000), 1);
	assert_int_equal(rtpc_calls_get(&t, "y", 1, 1000), 1);
	rtpc_calls_del(&t, "y", 1);
	assert_int_equal(rtpc_calls_get(&t, "y", 1, 1000), -1);
	rtpc_calls_del(&t, "y", 1);		/* absent: fine */
	rtpc_calls_fini(&t);
}

static void
test_rtpc_calls__evicts_oldest(void **state)
{
	static struct rtpc_calls t;
	char cid[32];

	(void)state;
	assert_int_equal(rtpc_calls_init(&t, 16, 100000), 0);
	for (int i = 0; i < 16; i++) {
		snprintf(cid, sizeof(cid), "call-%d", i);
		rtpc_calls_put(&t, cid, strlen(cid), i % 3, (uint64_t)i);
	}
	/* Touch call-0: call-1 is now the oldest. */
	rtpc_calls_put(&t, "call-0", 6, 0, 100);
	rtpc_calls_put(&t, "call-16", 7, 1, 101);
	assert_int_equal(t.count, 16);
	assert_int_equal(rtpc_calls_get(&t, "call-1", 6, 102), -1);
	assert_int_equal(rtpc_calls_get(&t, "call-0", 6, 102), 0);
	assert_int_equal(rtpc_calls_get(&t, "call-16", 7, 102), 1);
	rtpc_calls_fini(&t);
}

/* A differential test against an array model, growing the buckets. */
static void
test_rtpc_calls__model(void **state)
{
	enum { N = 3000, MAX = 2048, TTL = 5000 };
	static struct rtpc_calls t;
	static struct { int inst; uint64_t exp, touched; } m[N];
	uint32_t x = 1;
	uint64_t now = 1;
	char cid[32];

	(void)state;
	assert_int_equal(rtpc_calls_init(&t, MAX, TTL), 0);
	for (int i = 0; i < N; i++)
		m[i].inst = -1;
	for (int step = 0; step < 200000; step++) {
		int k, op, live = 0;

		x = x * 1103515245u + 12345u;
		k = (int)((x >> 8) % N);
		op = (int)((x >> 4) % 8);
		now += (x >> 20) % 3;
		snprintf(cid, sizeof(cid), "%d@model", k);
		if (m[k].inst >= 0 && m[k].exp <= now)
			m[k].inst = -1;
		if (op < 4) {
			int got = rtpc_calls_get(&t, cid, strlen(cid), now);

			/* The model has no eviction: only check what the
			 * table still holds, and that it is right. */
			if (got >= 0)
				assert_int_equal(got, m[k].inst);
			else if (m[k].inst >= 0)
				m[k].inst = -1;	/* evicted */
		} else if (op < 7) {
			int inst = (int)((x >> 12) % 4);

			assert_int_equal(rtpc_calls_put(&t, cid, strlen(cid),
							inst, now), 0);
			m[k].inst = inst;
			m[k].exp = now + TTL;
		} else {
			rtpc_calls_del(&t, cid, strlen(cid));
			m[k].inst = -1;
		}
		if (step % 1000 == 0) {
			rtpc_calls_sweep(&t, now);
			for (int i = 0; i < N; i++)
				if (m[i].inst >= 0 && m[i].exp > now)
					live++;
			assert_true(t.count <= MAX);
			assert_true(t.count <= live);
		}
	}
	rtpc_calls_fini(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rtpc_calls__sticky_and_expiry),
		cmocka_unit_test(test_rtpc_calls__evicts_oldest),
		cmocka_unit_test(test_rtpc_calls__model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
