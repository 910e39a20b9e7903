/*
 * test_edge_conn.c - the connection table: ids, lookups by id and by
 * destination, the per-IP cap, state lists and the idle order, plus a
 * differential run against a plain array model with a tiny bucket
 * count so that every chain collides.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "edge/edge_int.h"

static union env_sa
sa(const char *ip, int port)
{
	union env_sa s;

	assert_int_equal(env_sa_from(&s, ip, port), 0);
	return s;
}

static struct edge_conn *
conn(int transport, const char *ip, int port, int outbound)
{
	struct edge_conn *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->transport = (uint8_t)transport;
	c->peer = sa(ip, port);
	c->outbound = (uint8_t)outbound;
	return c;
}

static void
test_edge_conn__ids_are_unique_and_found(void **state)
{
	struct edge_conn_table t;
	struct edge_conn *a = conn(ENV_TCP, "127.0.0.1", 1000, 0);
	struct edge_conn *b = conn(ENV_WS, "127.0.0.1", 1001, 0);
	struct edge_conn *c = conn(ENV_TLS, "::1", 1000, 1);

	(void)state;
	assert_int_equal(edge_conn_table_init(&t, 4, 0), 0);
	assert_int_equal(edge_conn_add(&t, a, 10), 0);
	assert_int_equal(edge_conn_add(&t, b, 10), 0);
	assert_int_not_equal(a->id, 0);
	assert_int_not_equal(a->id, b->id);
	assert_ptr_equal(edge_conn_find(&t, a->id), a);
	assert_ptr_equal(edge_conn_find(&t, b->id), b);
	edge_conn_del(&t, a);
	assert_null(edge_conn_find(&t, a->id));
	edge_conn_del(&t, a);	/* twice is harmless */
	/* A closed id is never handed out again. */
	assert_int_equal(edge_conn_add(&t, c, 10), 0);
	assert_true(c->id > b->id);
	assert_int_equal(t.n, 2);

	/* By destination: exact transport, address and port. */
	assert_ptr_equal(edge_conn_find_dst(&t, ENV_TLS, &c->peer), c);
	{
		union env_sa other = sa("::1", 1001);

		assert_null(edge_conn_find_dst(&t, ENV_TLS, &other));
		assert_null(edge_conn_find_dst(&t, ENV_TCP, &c->peer));
	}
	edge_conn_del(&t, b);
	edge_conn_del(&t, c);
	assert_int_equal(t.n, 0);
	edge_conn_table_fini(&t);
	free(a);
	free(b);
	free(c);
}

/* Several connections to one address (TLS to one host serving two
 * names): the iteration visits each once, and only those. */
static void
test_edge_conn__find_dst_after_visits_every_match(void **state)
{
	struct edge_conn_table t;
	struct edge_conn *c[4] = {
		conn(ENV_TLS, "127.0.0.1", 5061, 1),
		conn(ENV_TLS, "127.0.0.1", 5061, 1),
		conn(ENV_TCP, "127.0.0.1", 5061, 1),
		conn(ENV_TLS, "127.0.0.1", 5062, 1),
	};
	struct edge_conn *x;
	int seen[4] = { 0 }, n = 0;

	(void)state;
	/* One bucket: every connection shares the chain. */
	assert_int_equal(edge_conn_table_init(&t, 0, 0), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(edge_conn_add(&t, c[i], 10), 0);
	for (x = edge_conn_find_dst(&t, ENV_TLS, &c[0]->peer); x;
	     x = edge_conn_find_dst_after(&t, ENV_TLS, &c[0]->peer, x), n++)
		for (int i = 0; i < 4; i++)
			seen[i] += x == c[i];
	assert_int_equal(n, 2);
	assert_int_equal(seen[0], 1);
	assert_int_equal(seen[1], 1);
	assert_int_equal(seen[2] + seen[3], 0);
	for (int i = 0; i < 4; i++) {
		edge_conn_del(&t, c[i]);
		free(c[i]);
	}
	edge_conn_table_fini(&t);
}

static void
test_edge_conn__per_ip_cap_counts_inbound_only(void **state)
{
	struct edge_conn_table t;
	struct edge_conn *c[5];
	union env_sa ip = sa("127.0.0.9", 0);

	(void)state;
	assert_int_equal(edge_conn_table_init(&t, 2, 3), 0);
	for (int i = 0; i < 3; i++) {
		c[i] = conn(ENV_TCP, "127.0.0.9", 2000 + i, 0);
		assert_int_equal(edge_conn_add(&t, c[i], 0), 0);
	}
	assert_int_equal(edge_conn_ip_count(&t, &ip), 3);
	c[3] = conn(ENV_WS, "127.0.0.9", 3000, 0);
	assert_int_equal(edge_conn_add(&t, c[3], 0), -EMFILE);
	/* Outbound connections are ours: no cap. */
	c[4] = conn(ENV_TCP, "127.0.0.9", 5060, 1);
	assert_int_equal(edge_conn_add(&t, c[4], 0), 0);
	assert_int_equal(edge_conn_ip_count(&t, &ip), 3);
	/* A close frees a slot. */
	edge_conn_del(&t, c[0]);
	assert_int_equal(edge_conn_ip_count(&t, &ip), 2);
	assert_int_equal(edge_conn_add(&t, c[3], 0), 0);
	for (int i = 1; i < 5; i++)
		edge_conn_del(&t, c[i]);
	assert_int_equal(edge_conn_ip_count(&t, &ip), 0);
	edge_conn_table_fini(&t);
	for (int i = 0; i < 5; i++)
		free(c[i]);
}

static void
test_edge_conn__sweep_takes_the_oldest_first(void **state)
{
	struct edge_conn_table t;
	struct edge_conn *a = conn(ENV_TLS, "127.0.0.1", 1, 0);
	struct edge_conn *b = conn(ENV_TCP, "127.0.0.1", 2, 0);
	struct edge_conn *c = conn(ENV_TCP, "127.0.0.1", 3, 0);

	(void)state;
	assert_int_equal(edge_conn_table_init(&t, 4, 0), 0);
	assert_int_equal(edge_conn_add(&t, a, 0), 0);	/* handshake */
	assert_int_equal(edge_conn_add(&t, b, 0), 0);
	assert_int_equal(edge_conn_add(&t, c, 0), 0);
	edge_conn_open(&t, b, 100);
	edge_conn_open(&t, c, 200);
	/* Activity on a pending connection does not extend its deadline. */
	edge_conn_touch(&t, a, 5000);
	assert_null(edge_conn_expired(&t, 9999, 10000, 1000000));
	assert_ptr_equal(edge_conn_expired(&t, 10000, 10000, 1000000), a);
	edge_conn_del(&t, a);
	/* Open ones: by last activity; touching b makes c the oldest. */
	edge_conn_touch(&t, b, 300);
	assert_null(edge_conn_expired(&t, 1199, 10000, 1000));
	assert_ptr_equal(edge_conn_expired(&t, 1200, 10000, 1000), c);
	edge_conn_del(&t, c);
	assert_ptr_equal(edge_conn_expired(&t, 1300, 10000, 1000), b);
	/* idle 0: never idle. */
	assert_null(edge_conn_expired(&t, 1000000, 10000, 0));
	edge_conn_del(&t, b);
	edge_conn_table_fini(&t);
	free(a);
	free(b);
	free(c);
}

/* Random adds, deletes and lookups against an array model, on a table
 * of 2 buckets so every chain is long. */
static void
test_edge_conn__matches_a_trivial_model(void **state)
{
	enum { N = 300 };
	struct edge_conn_table t;
	struct edge_conn *live[N];
	int n = 0;
	unsigned seed = 12345;

	(void)state;
	assert_int_equal(edge_conn_table_init(&t, 1, 0), 0);
	for (int step = 0; step < 5000; step++) {
		seed = seed * 1103515245u + 12345u;
		if (n < N && (n == 0 || (seed >> 16) % 3 != 0)) {
			char ip[32];
			struct edge_conn *c;

			snprintf(ip, sizeof(ip), "127.0.%u.%u", (seed >> 8) % 4,
				 (seed >> 4) % 8);
			c = conn(ENV_TCP + (int)((seed >> 20) % 4), ip,
				 1 + (int)((seed >> 10) % 60000), (seed >> 3) & 1);
			if (edge_conn_find_dst(&t, c->transport, &c->peer)) {
				free(c);
				continue;
			}
			assert_int_equal(edge_conn_add(&t, c, (uint64_t)step), 0);
			live[n++] = c;
		} else {
			int k = (int)((seed >> 16) % (unsigned)n);

			edge_conn_del(&t, live[k]);
			assert_null(edge_conn_find(&t, live[k]->id));
			free(live[k]);
			live[k] = live[--n];
		}
		assert_int_equal(t.n, (size_t)n);
		for (int i = 0; i < n; i++) {
			assert_ptr_equal(edge_conn_find(&t, live[i]->id), live[i]);
			assert_ptr_equal(edge_conn_find_dst(&t, live[i]->transport,
							    &live[i]->peer), live[i]);
		}
	}
	for (int i = 0; i < n; i++) {
		edge_conn_del(&t, live[i]);
		free(live[i]);
	}
	edge_conn_table_fini(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edge_conn__ids_are_unique_and_found),
		cmocka_unit_test(test_edge_conn__find_dst_after_visits_every_match),
		cmocka_unit_test(test_edge_conn__per_ip_cap_counts_inbound_only),
		cmocka_unit_test(test_edge_conn__sweep_takes_the_oldest_first),
		cmocka_unit_test(test_edge_conn__matches_a_trivial_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
