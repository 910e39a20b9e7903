/*
 * test_infra.c - the cluster's own addresses (lib/infra.h): what is
 * refused as one once normalised and by transport, what infra_init
 * reads from the configuration and the host, and the Redis servers
 * learnt at run time (Sentinel).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/cfg.h"
#include "lib/infra.h"

/*
 * The cluster's own addresses after normalisation: wildcards, 127/8,
 * ::1, v4-mapped IPv6 and the host's interface addresses are one host;
 * a remote service matches only itself; datagram and stream ports are
 * apart (a UDP client on the TLS listener's port is a client).
 */
static void
test_infra__normalised_with_transport(void **state)
{
	static struct infra c;
	static const struct {
		int tp;
		const char *ip;
		int port, infra;
	} cases[] = {
		{ ENV_UDP, "127.0.0.1", 5060, 1 },
		{ ENV_UDP, "127.0.0.5", 5060, 1 },
		{ ENV_UDP, "0.0.0.0", 5060, 1 },
		{ ENV_UDP, "::1", 5060, 1 },
		{ ENV_UDP, "::", 5060, 1 },
		{ ENV_UDP, "::ffff:127.0.0.1", 5060, 1 },
		{ ENV_UDP, "192.0.2.7", 5060, 1 },	/* an interface */
		{ ENV_UDP, "::ffff:192.0.2.7", 5060, 1 },
		{ ENV_UDP, "2001:db8::7", 5060, 1 },	/* an interface */
		{ ENV_UDP, "192.0.2.8", 5060, 0 },
		{ ENV_UDP, "127.0.0.1", 5062, 0 },
		{ ENV_TCP, "127.0.0.1", 5060, 0 },	/* no TCP listener */
		{ ENV_UDP, "127.0.0.1", 5061, 0 },	/* UDP on the TLS port */
		{ ENV_UDP, "::ffff:127.0.0.1", 5061, 0 },
		{ ENV_TCP, "127.0.0.1", 5061, 1 },
		{ ENV_TLS, "0.0.0.0", 5061, 1 },
		{ ENV_TLS, "192.0.2.7", 5061, 1 },
		{ ENV_TCP, "::", 6379, 1 },		/* Redis */
		{ ENV_TCP, "::ffff:127.0.0.2", 6379, 1 },
		{ ENV_UDP, "127.0.0.1", 6379, 0 },
		{ ENV_TCP, "::ffff:127.0.0.1", 8080, 1 },	/* WS, mapped */
		{ ENV_TLS, "127.0.0.1", 8080, 1 },
		{ ENV_UDP, "10.9.8.7", 2223, 1 },	/* remote rtpengine */
		{ ENV_UDP, "::ffff:10.9.8.7", 2223, 1 },
		{ ENV_UDP, "10.9.8.6", 2223, 0 },
		{ ENV_UDP, "127.0.0.1", 2223, 0 },
		{ ENV_TCP, "10.9.8.7", 2223, 0 },
		{ ENV_TCP, "127.0.0.1", 7001, 1 },	/* nanomsg "*:7001" */
		{ ENV_TCP, "10.1.1.1", 7002, 1 },	/* "eth0;10.1.1.1:7002" */
		{ ENV_TCP, "127.0.0.1", 7002, 0 },
	};

	(void)state;
	env_sa_from(&c.local[0], "192.0.2.7", 0);
	env_sa_from(&c.local[1], "2001:db8::7", 0);
	c.n_local = 2;
	assert_int_equal(infra_add(&c, "0.0.0.0:5060", 5060, 0), 0);
	assert_int_equal(infra_add(&c, "[::]", 5061, 1), 0);
	assert_int_equal(infra_add(&c, "127.0.0.1:6379", 6379, 1), 0);
	assert_int_equal(infra_add(&c, "10.9.8.7", 2223, 0), 0);
	assert_int_equal(infra_add(&c, "[::ffff:127.0.0.1]:8080", 0, 1), 0);
	assert_int_equal(infra_add(&c, "*:7001", 0, 1), 0);
	assert_int_equal(infra_add(&c, "10.1.1.1:7002", 0, 1), 0);
	assert_int_equal(infra_add(&c, "", 0, 1), 0);
	assert_int_equal(infra_add(&c, "redis.example:6379", 0, 1), -EINVAL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		union env_sa sa;
		int got;

		assert_int_equal(env_sa_from(&sa, cases[i].ip, cases[i].port), 0);
		got = infra_has(&c, cases[i].tp, &sa);
		if (got != cases[i].infra)
			fail_msg("%s [%s]:%d: got %d, want %d",
				 env_transport_name(cases[i].tp), cases[i].ip,
				 cases[i].port, got, cases[i].infra);
	}
}

/* infra_init takes the nanomsg tcp:// endpoints of the
 * configuration, and the interface addresses getifaddrs lists. */
static void
test_infra__init_reads_config_and_interfaces(void **state)
{
	static struct cfg cfg;
	static struct infra c;
	union env_sa sa;
	char err[256];

	(void)state;
	assert_int_equal(cfg_load(&cfg, NULL, err, sizeof(err)), 0);
	snprintf(cfg.cores[0].ipc, sizeof(cfg.cores[0].ipc), "tcp://*:7101");
	snprintf(cfg.rtpctl_ipc, sizeof(cfg.rtpctl_ipc),
		 "ipc:///tmp/x tcp://lo;10.1.1.2:7102");
	assert_int_equal(infra_init(&c, &cfg), 0);
	env_sa_from(&sa, "127.0.0.1", 7101);
	assert_int_equal(infra_has(&c, ENV_TCP, &sa), 1);
	assert_int_equal(infra_has(&c, ENV_UDP, &sa), 0);
	env_sa_from(&sa, "10.1.1.2", 7102);
	assert_int_equal(infra_has(&c, ENV_TCP, &sa), 1);
	/* Loopback is an interface too. */
	env_sa_from(&sa, "127.0.0.1", 0);
	assert_true(c.n_local > 0);
	assert_int_equal(infra_is_local(&c, &sa), 1);
	snprintf(cfg.redis, sizeof(cfg.redis), "redis.example:6379");
	assert_int_equal(infra_init(&c, &cfg), -EINVAL);
}

/*
 * An edge listener bound to one address is reached there only: a
 * second cluster on the same host and port at another loopback
 * address (127.0.1.1:5060 and 127.0.2.1:5060, each its own domain)
 * is a peer to send to, not this cluster.  A wildcard destination,
 * which the kernel sends to this host, and a wildcard listener still
 * match every local address.
 */
static void
test_infra__bound_listener_is_its_address_only(void **state)
{
	static struct cfg cfg;
	static struct infra c;
	union env_sa sa;
	char err[256];

	(void)state;
	assert_int_equal(cfg_load(&cfg, NULL, err, sizeof(err)), 0);
	assert_true(cfg.n_edges >= 1);
	snprintf(cfg.edges[0].listen[ENV_UDP], CFG_ADDR_LEN, "127.0.1.1:5060");
	snprintf(cfg.edges[0].listen[ENV_TCP], CFG_ADDR_LEN, "0.0.0.0:5070");
	snprintf(cfg.redis, sizeof(cfg.redis), "127.0.0.1:6379");
	assert_int_equal(infra_init(&c, &cfg), 0);
	env_sa_from(&sa, "127.0.1.1", 5060);
	assert_int_equal(infra_has(&c, ENV_UDP, &sa), 1);
	env_sa_from(&sa, "::ffff:127.0.1.1", 5060);
	assert_int_equal(infra_has(&c, ENV_UDP, &sa), 1);
	env_sa_from(&sa, "0.0.0.0", 5060);
	assert_int_equal(infra_has(&c, ENV_UDP, &sa), 1);
	env_sa_from(&sa, "127.0.2.1", 5060);
	assert_int_equal(infra_has(&c, ENV_UDP, &sa), 0);
	env_sa_from(&sa, "127.0.0.1", 5060);
	assert_int_equal(infra_has(&c, ENV_UDP, &sa), 0);
	/* The wildcard listener: every local address. */
	env_sa_from(&sa, "127.0.2.1", 5070);
	assert_int_equal(infra_has(&c, ENV_TCP, &sa), 1);
	/* Redis may bind more than the address we dial: all of them. */
	env_sa_from(&sa, "127.0.2.1", 6379);
	assert_int_equal(infra_has(&c, ENV_TCP, &sa), 1);
	/* A second init over the same table forgets the old listener. */
	snprintf(cfg.edges[0].listen[ENV_UDP], CFG_ADDR_LEN, "0.0.0.0:5060");
	assert_int_equal(infra_init(&c, &cfg), 0);
	env_sa_from(&sa, "127.0.2.1", 5060);
	assert_int_equal(infra_has(&c, ENV_UDP, &sa), 1);
}

/* With Sentinel: the sentinels of the file (default port 26379), and
 * each Redis server they name as it is learnt, once. */
static void
test_infra__sentinels_and_learnt_servers(void **state)
{
	static struct cfg cfg;
	static struct infra c;
	union env_sa sa;
	char err[256];
	int n;

	(void)state;
	assert_int_equal(cfg_load(&cfg, NULL, err, sizeof(err)), 0);
	snprintf(cfg.redis_sentinels, sizeof(cfg.redis_sentinels),
		 "10.0.0.5:26390, 10.0.0.6");
	assert_int_equal(infra_init(&c, &cfg), 0);
	env_sa_from(&sa, "10.0.0.5", 26390);
	assert_int_equal(infra_has(&c, ENV_TCP, &sa), 1);
	env_sa_from(&sa, "10.0.0.6", 26379);
	assert_int_equal(infra_has(&c, ENV_TCP, &sa), 1);

	env_sa_from(&sa, "10.0.0.7", 6390);
	assert_int_equal(infra_has(&c, ENV_TCP, &sa), 0);
	n = c.n;
	infra_learn(&c, "10.0.0.7", 6390);
	assert_int_equal(infra_has(&c, ENV_TCP, &sa), 1);
	assert_int_equal(infra_has(&c, ENV_UDP, &sa), 0);
	infra_learn(&c, "10.0.0.7", 6390);	/* again after a failover */
	infra_learn(&c, "10.0.0.5", 26390);	/* a sentinel, known */
	assert_int_equal(c.n, n + 1);
	infra_learn(&c, "::ffff:10.0.0.8", 6391);
	env_sa_from(&sa, "10.0.0.8", 6391);
	assert_int_equal(infra_has(&c, ENV_TCP, &sa), 1);
	infra_learn(&c, "redis.example", 6379);	/* logged, not added */
	assert_int_equal(c.n, n + 2);
	for (int i = 0; i < INFRA_MAX + 2; i++)	/* never past the table */
		infra_learn(&c, "10.9.0.1", 1000 + i);
	assert_int_equal(c.n, INFRA_MAX);

	snprintf(cfg.redis_sentinels, sizeof(cfg.redis_sentinels),
		 "sentinel.example:26379");
	assert_int_equal(infra_init(&c, &cfg), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_infra__normalised_with_transport),
		cmocka_unit_test(test_infra__init_reads_config_and_interfaces),
		cmocka_unit_test(test_infra__bound_listener_is_its_address_only),
		cmocka_unit_test(test_infra__sentinels_and_learnt_servers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
