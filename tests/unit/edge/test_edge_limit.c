/*
 * test_edge_limit.c - the per-source rate table: GCRA bursts and
 * intervals, sources grouped by IPv4 address and IPv6 /64, one
 * blocking period logged once, a full probe run passing events, idle
 * slots taken over, two handles on one shared segment (two edges of a
 * host) meeting one limit, and a differential run against a trivial
 * model (one exact bucket per source).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "edge/edge_int.h"

static const struct hash_key test_key = { 0x0706050403020100ULL,
					  0x0f0e0d0c0b0a0908ULL };

static union env_sa
sa_of(const char *ip, int port)
{
	union env_sa sa;

	assert_int_equal(env_sa_from(&sa, ip, port), 0);
	return sa;
}

static void
test_edge_limit__burst_then_one_per_interval(void **state)
{
	struct edge_limit l;
	union env_sa a = sa_of("192.0.2.1", 5060);
	uint64_t now = 5000000000ULL, wait = 0;

	(void)state;
	assert_int_equal(edge_limit_open(&l, NULL, &test_key), 0);
	/* Off until set. */
	for (int i = 0; i < 100; i++)
		assert_int_equal(edge_limit_check(&l, EDGE_LIMIT_REQ, &a, now, NULL),
				 EDGE_LIMIT_PASS);
	edge_limit_set(&l, EDGE_LIMIT_REQ, 10, 5);	/* every 100 ms */
	for (int i = 0; i < 5; i++)
		assert_int_equal(edge_limit_check(&l, EDGE_LIMIT_REQ, &a, now, NULL),
				 EDGE_LIMIT_PASS);
	assert_int_equal(edge_limit_check(&l, EDGE_LIMIT_REQ, &a, now, &wait),
			 EDGE_LIMIT_DROP_FIRST);
	assert_int_equal(wait, 100000);
	/* Refusals do not push the time back. */
	assert_int_equal(edge_limit_check(&l, EDGE_LIMIT_REQ, &a, now + 99999, &wait),
			 EDGE_LIMIT_DROP);
	assert_int_equal(wait, 1);
	assert_int_equal(edge_limit_check(&l, EDGE_LIMIT_REQ, &a, now + 100000, NULL),
			 EDGE_LIMIT_PASS);
	assert_int_equal(edge_limit_check(&l, EDGE_LIMIT_REQ, &a, now + 100000, NULL),
			 EDGE_LIMIT_DROP);
	/* Kinds are separate buckets: connections are still off. */
	assert_int_equal(edge_limit_check(&l, EDGE_LIMIT_CONN, &a, now, NULL),
			 EDGE_LIMIT_PASS);
	/* A long pause gives the whole burst back, no more. */
	now += 3600ULL * 1000000;
	for (int i = 0; i < 5; i++)
		assert_int_equal(edge_limit_check(&l, EDGE_LIMIT_REQ, &a, now, NULL),
				 EDGE_LIMIT_PASS);
	assert_int_not_equal(edge_limit_check(&l, EDGE_LIMIT_REQ, &a, now, NULL),
			     EDGE_LIMIT_PASS);
	edge_limit_close(&l);
}

static void
test_edge_limit__sources_are_ipv4_addresses_and_ipv6_64s(void **state)
{
	struct edge_limit l;
	union env_sa v4a = sa_of("192.0.2.1", 1), v4a2 = sa_of("192.0.2.1", 2);
	union env_sa v4b = sa_of("192.0.2.2", 1);
	union env_sa n1 = sa_of("2001:db8:1:2::1", 1);
	union env_sa n1b = sa_of("2001:db8:1:2:ffff:ffff:ffff:fffe", 1);
	union env_sa n2 = sa_of("2001:db8:1:3::1", 1);
	uint64_t now = 1000000;

	(void)state;
	assert_int_equal(edge_limit_open(&l, NULL, &test_key), 0);
	edge_limit_set(&l, EDGE_LIMIT_CONN, 1, 1);
	assert_int_equal(edge_limit_check(&l, EDGE_LIMIT_CONN, &v4a, now, NULL),
			 EDGE_LIMIT_PASS);
	/* Another port of one address is the same source. */
	assert_int_not_equal(edge_limit_check(&l, EDGE_LIMIT_CONN, &v4a2, now, NULL),
			     EDGE_LIMIT_PASS);
	assert_int_equal(edge_limit_check(&l, EDGE_LIMIT_CONN, &v4b, now, NULL),
			 EDGE_LIMIT_PASS);
	/* Any address of a /64 is the same source, the next /64 is not. */
	assert_int_equal(edge_limit_check(&l, EDGE_LIMIT_CONN, &n1, now, NULL),
			 EDGE_LIMIT_PASS);
	assert_int_not_equal(edge_limit_check(&l, EDGE_LIMIT_CONN, &n1b, now, NULL),
			     EDGE_LIMIT_PASS);
	assert_int_equal(edge_limit_check(&l, EDGE_LIMIT_CONN, &n2, now, NULL),
			 EDGE_LIMIT_PASS);
	edge_limit_close(&l);
}

static void
test_edge_limit__one_log_per_blocking_period(void **state)
{
	struct edge_limit l;
	union env_sa a = sa_of("198.51.100.9", 5060);
	uint64_t now = 7000000000ULL;
	int first = 0;

	(void)state;
	assert_int_equal(edge_limit_open(&l, NULL, &test_key), 0);
	edge_limit_set(&l, EDGE_LIMIT_REQ, 100, 10);
	/* A flood at 10 times the rate for 30 s: one period. */
	for (int i = 0; i < 30000; i++, now += 1000)
		first += edge_limit_check(&l, EDGE_LIMIT_REQ, &a, now, NULL) ==
			 EDGE_LIMIT_DROP_FIRST;
	assert_int_equal(first, 1);
	/* Quiet for longer than EDGE_LIMIT_QUIET_MS: the next flood is a
	 * new period. */
	now += (EDGE_LIMIT_QUIET_MS + 1) * 1000ULL;
	for (int i = 0; i < 1000; i++, now += 1000)
		first += edge_limit_check(&l, EDGE_LIMIT_REQ, &a, now, NULL) ==
			 EDGE_LIMIT_DROP_FIRST;
	assert_int_equal(first, 2);
	/* 503s are limited without periods of their own. */
	edge_limit_set(&l, EDGE_LIMIT_REPLY, 1, 1);
	assert_int_equal(edge_limit_check(&l, EDGE_LIMIT_REPLY, &a, now, NULL),
			 EDGE_LIMIT_PASS);
	assert_int_equal(edge_limit_check(&l, EDGE_LIMIT_REPLY, &a, now, NULL),
			 EDGE_LIMIT_DROP);
	edge_limit_close(&l);
}

/* n IPv4 sources whose home slot is the same, into out. */
static void
same_home(const struct hash_key *k, union env_sa *out, int n)
{
	unsigned char net[16];
	uint64_t home = 0;
	char ip[32];
	int found = 0;

	for (uint32_t i = 1; found < n; i++) {
		union env_sa sa;
		uint64_t h;

		snprintf(ip, sizeof(ip), "10.%u.%u.%u", (i >> 16) & 255,
			 (i >> 8) & 255, i & 255);
		sa = sa_of(ip, 1);
		edge_source_key(&sa, net);
		h = hash_sip(k, net, sizeof(net));
		if (found == 0)
			home = h & (EDGE_LIMIT_SLOTS - 1);
		if ((h & (EDGE_LIMIT_SLOTS - 1)) == home)
			out[found++] = sa;
	}
}

static void
test_edge_limit__full_probe_run_passes_then_idle_slots_are_reused(void **state)
{
	union env_sa src[EDGE_LIMIT_PROBE + 1];
	struct edge_limit l;
	uint64_t now = 1000000000ULL;

	(void)state;
	same_home(&test_key, src, EDGE_LIMIT_PROBE + 1);
	assert_int_equal(edge_limit_open(&l, NULL, &test_key), 0);
	edge_limit_set(&l, EDGE_LIMIT_REQ, 1, 1);
	/* Eight busy sources fill the run: each is over its rate. */
	for (int i = 0; i < EDGE_LIMIT_PROBE; i++) {
		assert_int_equal(edge_limit_check(&l, EDGE_LIMIT_REQ, &src[i], now, NULL),
				 EDGE_LIMIT_PASS);
		assert_int_equal(edge_limit_check(&l, EDGE_LIMIT_REQ, &src[i], now, NULL),
				 EDGE_LIMIT_DROP_FIRST);
	}
	/* A ninth finds no slot: passed, not limited. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(edge_limit_check(&l, EDGE_LIMIT_REQ,
						  &src[EDGE_LIMIT_PROBE], now, NULL),
				 EDGE_LIMIT_FULL);
	/* Once the others are idle (buckets full, no refusal for the quiet
	 * time) the ninth takes one over and is limited like anyone. */
	now += (EDGE_LIMIT_QUIET_MS + 1) * 1000ULL;
	assert_int_equal(edge_limit_check(&l, EDGE_LIMIT_REQ, &src[EDGE_LIMIT_PROBE],
					  now, NULL), EDGE_LIMIT_PASS);
	assert_int_equal(edge_limit_check(&l, EDGE_LIMIT_REQ, &src[EDGE_LIMIT_PROBE],
					  now, NULL), EDGE_LIMIT_DROP_FIRST);
	/* The source whose slot it took starts afresh. */
	assert_int_equal(edge_limit_check(&l, EDGE_LIMIT_REQ, &src[0], now, NULL),
			 EDGE_LIMIT_PASS);
	edge_limit_close(&l);
}

static void
test_edge_limit__two_handles_on_one_segment_share_the_limit(void **state)
{
	struct edge_limit a, b;
	union env_sa s = sa_of("203.0.113.5", 5060);
	uint64_t now = 2000000000ULL;
	char name[64];
	int pass = 0;

	(void)state;
	snprintf(name, sizeof(name), "/sm-test-limit-%d", (int)getpid());
	shm_unlink(name);
	assert_int_equal(edge_limit_open(&a, name, &test_key), 0);
	assert_int_equal(edge_limit_open(&b, name, &test_key), 0);
	assert_true(a.shared && b.shared);
	edge_limit_set(&a, EDGE_LIMIT_REQ, 10, 10);
	edge_limit_set(&b, EDGE_LIMIT_REQ, 10, 10);
	/* Alternating between two edges: ten pass in all, not twenty. */
	for (int i = 0; i < 40; i++)
		pass += edge_limit_check(i % 2 ? &b : &a, EDGE_LIMIT_REQ, &s, now,
					 NULL) == EDGE_LIMIT_PASS;
	assert_int_equal(pass, 10);
	edge_limit_close(&a);
	edge_limit_close(&b);
	shm_unlink(name);
}

/* One exact GCRA bucket per source: what the table must agree with
 * while it has room. */
struct model_src {
	uint64_t tat;
};

static void
test_edge_limit__matches_a_trivial_model(void **state)
{
	enum { SOURCES = 500, STEPS = 200000 };
	static struct model_src m[SOURCES];
	union env_sa sa[SOURCES];
	const uint64_t every = 1000000 / 50, slack = 19 * every;
	struct edge_limit l;
	uint64_t now = 3000000000ULL;
	unsigned seed = 12345;
	char ip[64];

	(void)state;
	for (int i = 0; i < SOURCES; i++) {
		/* Half IPv4, half IPv6 in distinct /64s. */
		if (i % 2)
			snprintf(ip, sizeof(ip), "198.18.%d.%d", i / 250, i % 250);
		else
			snprintf(ip, sizeof(ip), "2001:db8:%x::%x", i, i + 1);
		sa[i] = sa_of(ip, 5060);
		m[i].tat = 0;
	}
	assert_int_equal(edge_limit_open(&l, NULL, &test_key), 0);
	edge_limit_set(&l, EDGE_LIMIT_REQ, 50, 20);
	for (int step = 0; step < STEPS; step++) {
		int i = (int)(rand_r(&seed) % SOURCES), got, want;
		uint64_t from;

		now += rand_r(&seed) % 200;
		from = m[i].tat > now ? m[i].tat : now;
		want = from - now <= slack;
		if (want)
			m[i].tat = from + every;
		got = edge_limit_check(&l, EDGE_LIMIT_REQ, &sa[i], now, NULL);
		assert_int_not_equal(got, EDGE_LIMIT_FULL);
		assert_int_equal(got == EDGE_LIMIT_PASS, want);
	}
	edge_limit_close(&l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edge_limit__burst_then_one_per_interval),
		cmocka_unit_test(test_edge_limit__sources_are_ipv4_addresses_and_ipv6_64s),
		cmocka_unit_test(test_edge_limit__one_log_per_blocking_period),
		cmocka_unit_test(test_edge_limit__full_probe_run_passes_then_idle_slots_are_reused),
		cmocka_unit_test(test_edge_limit__two_handles_on_one_segment_share_the_limit),
		cmocka_unit_test(test_edge_limit__matches_a_trivial_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
