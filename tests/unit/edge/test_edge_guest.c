/*
 * test_edge_guest.c - the per-source limit of the guest credentials
 * (GCRA in a table of 4-way sets) against a trivial model, the sources
 * it groups (IPv4, v4-mapped, IPv6 /64), and the answers: 400 for bad
 * rooms, a fresh guest in JSON, 429 with a retry time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "edge/edge_int.h"

static struct edge_guest g;

static void
guest_reset(void)
{
	memset(&g, 0, sizeof(g));
	memset(g.key, 0x5a, sizeof(g.key));
	g.seed = 0x1234567890abcdefULL;
	g.ttl_s = 600;
}

static union env_sa
sa_of(const char *ip)
{
	union env_sa sa;

	assert_int_equal(env_sa_from(&sa, ip, 40000), 0);
	return sa;
}

static void
test_edge_guest__burst_then_one_per_interval(void **state)
{
	union env_sa a = sa_of("192.0.2.1");
	uint64_t now = 1000000;

	(void)state;
	guest_reset();
	for (int i = 0; i < EDGE_GUEST_BURST; i++)
		assert_int_equal(edge_guest_allow(&g, &a, now), 0);
	assert_int_equal(edge_guest_allow(&g, &a, now), EDGE_GUEST_EVERY_MS);
	/* Refusals do not push the time back. */
	assert_int_equal(edge_guest_allow(&g, &a, now + 500), EDGE_GUEST_EVERY_MS - 500);
	assert_int_equal(edge_guest_allow(&g, &a, now + EDGE_GUEST_EVERY_MS), 0);
	assert_true(edge_guest_allow(&g, &a, now + EDGE_GUEST_EVERY_MS) > 0);
	/* A long pause gives the whole burst back, no more. */
	now += 1000 * EDGE_GUEST_EVERY_MS;
	for (int i = 0; i < EDGE_GUEST_BURST; i++)
		assert_int_equal(edge_guest_allow(&g, &a, now), 0);
	assert_true(edge_guest_allow(&g, &a, now) > 0);
}

static void
test_edge_guest__sources(void **state)
{
	union env_sa v4 = sa_of("192.0.2.7"), mapped = sa_of("::ffff:192.0.2.7");
	union env_sa other = sa_of("192.0.2.8");
	union env_sa n1 = sa_of("2001:db8:1:2::1"), n2 = sa_of("2001:db8:1:2:ffff::9");
	union env_sa n3 = sa_of("2001:db8:1:3::1");
	uint64_t now = 5000;

	(void)state;
	guest_reset();
	for (int i = 0; i < EDGE_GUEST_BURST; i++)
		assert_int_equal(edge_guest_allow(&g, &v4, now), 0);
	/* The same host written as v4-mapped IPv6 is the same source. */
	assert_true(edge_guest_allow(&g, &mapped, now) > 0);
	assert_int_equal(edge_guest_allow(&g, &other, now), 0);
	/* One IPv6 /64 is one source, the next /64 another. */
	for (int i = 0; i < EDGE_GUEST_BURST; i++)
		assert_int_equal(edge_guest_allow(&g, i % 2 ? &n1 : &n2, now), 0);
	assert_true(edge_guest_allow(&g, &n2, now) > 0);
	assert_int_equal(edge_guest_allow(&g, &n3, now), 0);
}

/* The model: one GCRA time per source, unbounded. */
struct model_src {
	uint64_t tat;
};

static void
test_edge_guest__matches_model(void **state)
{
	enum { NSRC = 4, STEPS = 20000 };
	struct model_src m[NSRC] = { 0 };
	union env_sa src[NSRC];
	uint64_t now = 1;
	const uint64_t slack = (EDGE_GUEST_BURST - 1) * EDGE_GUEST_EVERY_MS;
	char ip[32];

	(void)state;
	guest_reset();
	srand(7);
	/* As many sources as ways: none is ever evicted, so the table
	 * must agree with the model at every step. */
	for (int i = 0; i < NSRC; i++) {
		snprintf(ip, sizeof(ip), "198.51.100.%d", i + 1);
		src[i] = sa_of(ip);
	}
	for (int step = 0; step < STEPS; step++) {
		int i = rand() % NSRC;
		uint64_t tat, want;

		now += (uint64_t)(rand() % 400);
		tat = m[i].tat > now ? m[i].tat : now;
		if (tat - now > slack) {
			want = tat - now - slack;
		} else {
			want = 0;
			m[i].tat = tat + EDGE_GUEST_EVERY_MS;
		}
		assert_int_equal(edge_guest_allow(&g, &src[i], now), (int64_t)want);
	}
}

/* Far more sources than slots, all at one instant: the table keeps its
 * size, and a full table never refuses a newcomer its first answer (it
 * takes the least limited slot of its set). */
static void
test_edge_guest__many_sources_bounded(void **state)
{
	union env_sa flooder = sa_of("203.0.113.1"), s;
	uint64_t now = 1000;
	char ip[40];

	(void)state;
	guest_reset();
	while (edge_guest_allow(&g, &flooder, now) == 0)
		;
	for (int i = 0; i < 100000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		s = sa_of(ip);
		assert_int_equal(edge_guest_allow(&g, &s, now), 0);
	}
}

static void
test_edge_guest__answers(void **state)
{
	static const char *bad[] = {
		NULL, "", "Upper", "a.b", "a b", "caf\xc3\xa9", "a/b",
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",	/* 33 */
	};
	union env_sa a = sa_of("192.0.2.50");
	char body[256], user[64], username[96], pass[64];
	long long exp = 0;
	int ttl = 0, n = 0;
	int64_t retry;

	(void)state;
	guest_reset();
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		assert_int_equal(edge_guest_answer(&g, &a, bad[i], 1700000000, 1000,
						   body, sizeof(body), &retry), 400);
		assert_null(strstr(body, "password"));
	}
	assert_int_equal(edge_guest_answer(&g, &a, "design-review_2", 1700000000, 1000,
					   body, sizeof(body), &retry), 200);
	assert_int_equal(retry, 0);
	assert_int_equal(sscanf(body, "{\"user\":\"%63[^\"]\",\"username\":\"%95[^\"]\","
				"\"password\":\"%63[^\"]\",\"expires\":%lld,\"ttl\":%d}%n",
				user, username, pass, &exp, &ttl, &n), 5);
	assert_true(n > 0);
	assert_int_equal(strncmp(user, "guest.design-review_2.", 22), 0);
	assert_int_equal(strlen(user), 22 + AUTH_GUEST_ID_LEN);
	assert_int_equal(exp, 1700000600);
	assert_int_equal(ttl, 600);
	snprintf(body, sizeof(body), "1700000600:%s", user);
	assert_string_equal(username, body);
	assert_int_equal(strlen(pass), 43);
	/* 400s did not count; the 200 did. */
	for (int i = 1; i < EDGE_GUEST_BURST; i++)
		assert_int_equal(edge_guest_answer(&g, &a, "r", 1700000000, 1000,
						   body, sizeof(body), &retry), 200);
	assert_int_equal(edge_guest_answer(&g, &a, "r", 1700000000, 1000,
					   body, sizeof(body), &retry), 429);
	assert_int_equal(retry, EDGE_GUEST_EVERY_MS);
	assert_null(strstr(body, "password"));
	/* Too small a buffer is an error, not a cut answer. */
	assert_int_equal(edge_guest_answer(&g, &a, "r", 1700000000, 999999,
					   body, 40, &retry), -ENOSPC);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edge_guest__burst_then_one_per_interval),
		cmocka_unit_test(test_edge_guest__sources),
		cmocka_unit_test(test_edge_guest__matches_model),
		cmocka_unit_test(test_edge_guest__many_sources_bounded),
		cmocka_unit_test(test_edge_guest__answers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
