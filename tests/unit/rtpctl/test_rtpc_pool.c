/*
 * test_rtpc_pool.c - the rtpengine pool (rtpctl/rtpc_pool.c): parsing
 * "ip:port/weight" lists (and refusing bad ones), new calls spread by
 * weight, load pushing calls away from a busy instance, the tried mask
 * of a failover, the up/down state machine with explicit times,
 * checked against a trivial model, and instances drained by an operator
 * (no new calls, whatever their health).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "rtpctl/rtpc_int.h"

static void
parse_ok(struct rtpc_pool *p, const char *spec, int thr)
{
	char err[128] = "";

	if (rtpc_pool_parse(p, spec, thr, err, sizeof(err)) != 0)
		fail_msg("%s: %s", spec, err);
}

static void
test_rtpc_pool__parse(void **state)
{
	static struct rtpc_pool p;

	(void)state;
	parse_ok(&p, "127.0.0.1:2223/1 127.0.0.1:2224/2,[::1]:2225 127.0.0.2",
		 2);
	assert_int_equal(p.n, 4);
	assert_string_equal(p.inst[0].addr, "127.0.0.1:2223");
	assert_int_equal(p.inst[0].weight, 1);
	assert_int_equal(p.inst[1].weight, 2);
	assert_string_equal(p.inst[2].addr, "[::1]:2225");
	assert_int_equal(p.inst[2].weight, 1);
	assert_string_equal(p.inst[3].addr, "127.0.0.2:2223");
	assert_int_equal(env_sa_port(&p.inst[3].sa), 2223);
	for (int i = 0; i < p.n; i++)
		assert_true(p.inst[i].up);
	assert_int_equal(rtpc_pool_find(&p, "127.0.0.1:2224", 14), 1);
	assert_int_equal(rtpc_pool_find(&p, "127.0.0.1:2224", 13), -1);
	assert_int_equal(rtpc_pool_find(&p, "10.0.0.1:2224", 13), -1);
}

static void
test_rtpc_pool__parse_errors(void **state)
{
	static const char *bad[] = {
		"", "   ", "127.0.0.1:2223/0", "127.0.0.1:2223/1001",
		"127.0.0.1:2223/x", "127.0.0.1:2223/", "localhost:2223",
		"127.0.0.1:99999", "127.0.0.1:2223 127.0.0.1:2223/3",
		"[::1:2223", "/5",
	};
	static struct rtpc_pool p;
	char err[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		err[0] = '\0';
		if (rtpc_pool_parse(&p, bad[i], 2, err, sizeof(err)) != -EINVAL)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_true(err[0] != '\0');
	}
}

/* With no load, picks follow the weights exactly, interleaved. */
static void
test_rtpc_pool__weights(void **state)
{
	static struct rtpc_pool p;
	int count[3] = { 0 }, run = 0, maxrun = 0, last = -1;

	(void)state;
	parse_ok(&p, "127.0.0.1:1/1 127.0.0.1:2/2 127.0.0.1:3/3", 2);
	for (int i = 0; i < 600; i++) {
		int c = rtpc_pool_choose(&p, 0);

		assert_true(c >= 0 && c < 3);
		count[c]++;
		run = c == last ? run + 1 : 1;
		if (run > maxrun)
			maxrun = run;
		last = c;
	}
	assert_int_equal(count[0], 100);
	assert_int_equal(count[1], 200);
	assert_int_equal(count[2], 300);
	assert_true(maxrun <= 2);	/* smooth: no long runs */
	assert_int_equal(p.inst[2].chosen, 300);
}

/* In-flight commands push new calls to the other instances. */
static void
test_rtpc_pool__load(void **state)
{
	static struct rtpc_pool p;
	int count[2] = { 0 };

	(void)state;
	parse_ok(&p, "127.0.0.1:1/1 127.0.0.1:2/1", 2);
	p.inst[0].inflight = 5;		/* a slow instance */
	for (int i = 0; i < 100; i++)
		count[rtpc_pool_choose(&p, 0)]++;
	assert_int_equal(count[1], 100);
	/* Both loaded: the lighter per unit of weight wins. */
	p.inst[1].inflight = 9;
	for (int i = 0; i < 10; i++)
		assert_int_equal(rtpc_pool_choose(&p, 0), 0);
	p.inst[1].weight = 2;		/* 9/2 < 5/1 */
	assert_int_equal(rtpc_pool_choose(&p, 0), 1);
	/* Once both drain, the weights alone decide again. */
	p.inst[0].inflight = p.inst[1].inflight = 0;
	p.inst[1].weight = 1;
	count[0] = count[1] = 0;
	for (int i = 0; i < 200; i++)
		count[rtpc_pool_choose(&p, 0)]++;
	assert_int_equal(count[0], 100);
	assert_int_equal(count[1], 100);
}

static void
test_rtpc_pool__tried_and_down(void **state)
{
	static struct rtpc_pool p;

	(void)state;
	parse_ok(&p, "127.0.0.1:1/5 127.0.0.1:2/1", 2);
	for (int i = 0; i < 20; i++)
		assert_int_equal(rtpc_pool_choose(&p, 1ULL << 0), 1);
	assert_int_equal(rtpc_pool_choose(&p, 3), -1);
	rtpc_pool_down(&p, 0, 1000);
	for (int i = 0; i < 20; i++)
		assert_int_equal(rtpc_pool_choose(&p, 0), 1);
	rtpc_pool_down(&p, 1, 1000);
	assert_int_equal(rtpc_pool_choose(&p, 0), -1);
	rtpc_pool_ok(&p, 0, 2000);
	assert_int_equal(rtpc_pool_choose(&p, 0), 0);
}

static void
test_rtpc_pool__drained(void **state)
{
	static struct rtpc_pool p;
	const char *one[] = { "127.0.0.1:2", "10.0.0.9:5" };
	const char *none[] = { "127.0.0.1:9" };

	(void)state;
	parse_ok(&p, "127.0.0.1:1/5 127.0.0.1:2/1", 2);
	/* An unknown address in the set is ignored. */
	assert_int_equal(rtpc_pool_drain_set(&p, one, 2), 1);
	assert_int_equal(rtpc_pool_drain_set(&p, one, 2), 0);
	for (int i = 0; i < 20; i++)
		assert_int_equal(rtpc_pool_choose(&p, 0), 0);
	/* Drained and down are apart: back up, still drained. */
	rtpc_pool_down(&p, 1, 1000);
	rtpc_pool_ok(&p, 1, 2000);
	assert_int_equal(rtpc_pool_choose(&p, 0), 0);
	assert_int_equal(rtpc_pool_choose(&p, 1), -1);
	/* The set replaces: what it does not name is back. */
	assert_int_equal(rtpc_pool_drain_set(&p, none, 1), 1);
	assert_int_equal(rtpc_pool_choose(&p, 1), 1);
	assert_int_equal(rtpc_pool_drain_set(&p, NULL, 0), 0);
}

/*
 * The health state machine against a model: down after `thr`
 * consecutive failures, up on any success, down at once on certain
 * death; the change flag and since_ms follow each transition.
 */
static void
test_rtpc_pool__health_model(void **state)
{
	static struct rtpc_pool p;
	uint32_t x = 7;
	int up = 1, fails = 0;
	const int thr = 3;

	(void)state;
	parse_ok(&p, "127.0.0.1:1", thr);
	for (uint64_t now = 1; now < 5000; now++) {
		int ev, changed, want_changed;

		x = x * 1103515245u + 12345u;
		ev = (x >> 16) % 10;	/* 0..5 fail, 6..8 ok, 9 dead */
		if (ev <= 5) {
			changed = rtpc_pool_fail(&p, 0, now);
			fails = fails < thr ? fails + 1 : thr;
			want_changed = up && fails >= thr;
			if (fails >= thr)
				up = 0;
		} else if (ev <= 8) {
			changed = rtpc_pool_ok(&p, 0, now);
			want_changed = !up;
			fails = 0;
			up = 1;
		} else {
			changed = rtpc_pool_down(&p, 0, now);
			want_changed = up;
			fails = thr;
			up = 0;
		}
		assert_int_equal(changed, want_changed);
		assert_int_equal(p.inst[0].up, up);
		if (changed)
			assert_true(p.inst[0].since_ms == now);
	}
}

static void
test_rtpc_pool__threshold(void **state)
{
	static struct rtpc_pool p;

	(void)state;
	parse_ok(&p, "127.0.0.1:1", 2);
	assert_int_equal(rtpc_pool_fail(&p, 0, 10), 0);
	assert_int_equal(rtpc_pool_ok(&p, 0, 20), 0);	/* resets */
	assert_int_equal(rtpc_pool_fail(&p, 0, 30), 0);
	assert_true(p.inst[0].up);
	assert_int_equal(rtpc_pool_fail(&p, 0, 40), 1);
	assert_false(p.inst[0].up);
	assert_int_equal(rtpc_pool_fail(&p, 0, 50), 0);	/* stays down */
	assert_int_equal(rtpc_pool_ok(&p, 0, 60), 1);
	assert_true(p.inst[0].up);
	assert_true(p.inst[0].since_ms == 60);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rtpc_pool__parse),
		cmocka_unit_test(test_rtpc_pool__parse_errors),
		cmocka_unit_test(test_rtpc_pool__weights),
		cmocka_unit_test(test_rtpc_pool__load),
		cmocka_unit_test(test_rtpc_pool__tried_and_down),
		cmocka_unit_test(test_rtpc_pool__drained),
		cmocka_unit_test(test_rtpc_pool__health_model),
		cmocka_unit_test(test_rtpc_pool__threshold),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
