/*
 * test_core_msg.c - what the core reads from a URI through the
 * transport table (lib/env.h): the transport and default port it
 * dials, whether a URI names one of the cluster's own edges on any
 * transport, and flow tokens carrying every transport.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "core/core_int.h"
#include "lib/cfg.h"

static osip_uri_t *
uri(const char *s)
{
	osip_uri_t *u = NULL;

	assert_int_equal(osip_uri_init(&u), 0);
	if (osip_uri_parse(u, s) != 0)
		fail_msg("cannot parse %s", s);
	return u;
}

/* Transport parameters in any case; sips: defaults to TLS and 5061;
 * WebSocket and unknown transports cannot be dialled. */
static void
test_core_msg__uri_leg_by_transport(void **state)
{
	static const struct {
		const char *uri;
		int rc, tp, port;
	} cases[] = {
		{ "sip:192.0.2.1", 0, ENV_UDP, 5060 },
		{ "sip:192.0.2.1:5070;transport=Udp", 0, ENV_UDP, 5070 },
		{ "sip:192.0.2.1;transport=TCP", 0, ENV_TCP, 5060 },
		{ "sip:192.0.2.1;transport=tls", 0, ENV_TLS, 5061 },
		{ "sips:192.0.2.1", 0, ENV_TLS, 5061 },
		{ "sips:192.0.2.1;transport=tcp", 0, ENV_TCP, 5061 },
		{ "sip:[2001:db8::1];transport=tCp", 0, ENV_TCP, 5060 },
		{ "sip:a@df7jal23ls0d.invalid;transport=ws", -EHOSTUNREACH, 0, 0 },
		{ "sip:192.0.2.1;transport=WSS", -EHOSTUNREACH, 0, 0 },
		{ "sip:192.0.2.1;transport=sctp", -EHOSTUNREACH, 0, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		osip_uri_t *u = uri(cases[i].uri);
		struct core_leg leg;
		int rc;

		memset(&leg, 0, sizeof(leg));
		rc = core_uri_leg(u, &leg);
		if (rc != cases[i].rc)
			fail_msg("%s: got %d, want %d", cases[i].uri, rc,
				 cases[i].rc);
		if (rc == 0) {
			assert_int_equal(leg.transport, cases[i].tp);
			assert_int_equal(env_sa_port(&leg.dst), cases[i].port);
		}
		osip_uri_free(u);
	}
}

/* An edge is itself on every transport it listens on, at the port its
 * address names or else the transport's default. */
static void
test_core_msg__uri_is_self_on_every_transport(void **state)
{
	static struct cfg cfg;
	static struct core c;
	static const struct { const char *uri; int self; } cases[] = {
		{ "sip:127.0.0.1", 1 },
		{ "sip:127.0.0.1:5062", 0 },
		{ "sip:127.0.0.1;transport=TLS", 1 },
		{ "sips:127.0.0.1", 1 },
		{ "sip:127.0.0.2:8080;transport=ws", 1 },	/* default port */
		{ "sip:127.0.0.2", 0 },
		{ "sip:[::1]:9443;transport=wss", 1 },
		{ "sip:edge.example:9443", 1 },		/* advertised */
		{ "sip:edge.example:5999", 0 },
		{ "sip:192.0.2.1", 0 },
	};
	char err[256];

	(void)state;
	assert_int_equal(cfg_load(&cfg, NULL, err, sizeof(err)), 0);
	strcpy(cfg.edges[0].listen[ENV_TCP], "");
	strcpy(cfg.edges[0].listen[ENV_WS], "127.0.0.2");
	strcpy(cfg.edges[0].listen[ENV_WSS], "[::1]:9443");
	strcpy(cfg.edges[0].advertise, "edge.example:5060");
	c.cfg = &cfg;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		osip_uri_t *u = uri(cases[i].uri);
		int id = 0, self = core_uri_is_self(&c, u, &id);

		if (self != cases[i].self)
			fail_msg("%s: got %d, want %d", cases[i].uri, self,
				 cases[i].self);
		if (self)
			assert_int_equal(id, cfg.edges[0].id);
		osip_uri_free(u);
	}
}

/* A flow token round-trips every transport of the table and marks the
 * WebSocket ones; a token of another key is refused. */
static void
test_core_msg__flow_token_every_transport(void **state)
{
	static struct core c, other;
	char tok[128];

	(void)state;
	memset(c.flow_key, 7, sizeof(c.flow_key));
	memset(other.flow_key, 8, sizeof(other.flow_key));
	for (int t = ENV_UDP; t < ENV_TP_END; t++) {
		struct core_leg in = { .edge_id = 3, .conn_id = 77,
				       .transport = (uint8_t)t }, out;

		assert_int_equal(core_flow_token(&c, &in, tok, sizeof(tok)), 0);
		assert_int_equal(core_flow_parse(&c, tok, &out), 0);
		assert_int_equal(out.edge_id, 3);
		assert_int_equal(out.conn_id, 77);
		assert_int_equal(out.transport, t);
		assert_int_equal(out.flags, env_transport_is(t, ENV_TP_WS) ?
				 ENV_F_WS : 0);
		assert_int_equal(core_flow_parse(&other, tok, &out), -EINVAL);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_core_msg__uri_leg_by_transport),
		cmocka_unit_test(test_core_msg__uri_is_self_on_every_transport),
		cmocka_unit_test(test_core_msg__flow_token_every_transport),
	};

	parser_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
