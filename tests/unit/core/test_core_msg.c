/*
 * test_core_msg.c - what the core reads from a URI through the
 * transport table (lib/env.h): the transport and default port it
 * dials, whether a URI names one of the cluster's own edges on any
 * transport, which edge a leg leaves from (its target's family), flow
 * tokens carrying every transport or a NAT address, the trunk token and
 * the CSeq moves it stands for;
 * what it signs (Via branches, Record-Route values) (core_sign.c).
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
		/* Names are located by DNS (core_fed.c), not here. */
		{ "sip:sip.b.test;lr", -EDESTADDRREQ, 0, 0 },
		{ "sip:192.0.2.1;maddr=sip.b.test", -EDESTADDRREQ, 0, 0 },
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

/* A leg with no connection leaves from an edge that listens on its
 * transport in its destination's family: an IPv6 target found by DNS
 * from the IPv6 edge, whichever edge the request came in on; when no
 * edge has that family on that transport the leg stays as it was. */
static void
test_core_msg__leg_edge_for_dst_family(void **state)
{
	static struct cfg cfg;
	static struct core c;
	static const struct {
		int edge, tp;
		const char *ip;
		uint64_t conn;
		int want;
	} cases[] = {
		{ 1, ENV_UDP, "fd00::b1", 0, 2 },
		{ 1, ENV_UDP, "127.0.2.1", 0, 1 },
		{ 2, ENV_UDP, "127.0.2.1", 0, 1 },
		{ 2, ENV_UDP, "fd00::b1", 0, 2 },
		{ 1, ENV_TCP, "fd00::b1", 0, 1 },	/* no IPv6 TCP edge */
		{ 1, ENV_UDP, "fd00::b1", 7, 1 },	/* its connection's */
	};
	char err[256];

	(void)state;
	assert_int_equal(cfg_load(&cfg, NULL, err, sizeof(err)), 0);
	cfg.edges[1] = cfg.edges[0];
	cfg.edges[1].id = 2;
	cfg.n_edges = 2;
	strcpy(cfg.edges[0].listen[ENV_UDP], "127.0.1.1:5060");
	strcpy(cfg.edges[1].listen[ENV_UDP], "[fd00::a1]:5060");
	strcpy(cfg.edges[1].listen[ENV_TCP], "");
	c.cfg = &cfg;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct core_leg leg = {
			.edge_id = (uint16_t)cases[i].edge,
			.transport = (uint8_t)cases[i].tp,
			.conn_id = cases[i].conn,
		};

		assert_int_equal(env_sa_from(&leg.dst, cases[i].ip, 5060), 0);
		core_leg_edge_for_dst(&c, &leg);
		if (leg.edge_id != cases[i].want)
			fail_msg("case %zu (%s from edge %d): edge %d, want %d",
				 i, cases[i].ip, cases[i].edge, leg.edge_id,
				 cases[i].want);
	}
}

/* A flow token round-trips every transport of the table, the whole
 * connection id (the edge's incarnation too) included, and marks the
 * WebSocket ones. */
static void
test_core_msg__flow_token_every_transport(void **state)
{
	char tok[128], want[64];

	(void)state;
	for (int t = ENV_UDP; t < ENV_TP_END; t++) {
		struct core_leg in = { .edge_id = 3,
				       .conn_id = ENV_CONN_ID(0xfeedf00d, 77),
				       .transport = (uint8_t)t }, out;

		assert_int_equal(core_flow_token(&in, tok, sizeof(tok)), 0);
		snprintf(want, sizeof(want), "sm-f3-feedf00d.77-%d", t);
		assert_string_equal(tok, want);
		assert_int_equal(core_flow_parse(tok, &out), 0);
		assert_int_equal(out.edge_id, 3);
		assert_true(out.conn_id == in.conn_id);
		assert_int_equal(out.transport, t);
		assert_int_equal(out.flags, env_transport_is(t, ENV_TP_WS) ?
				 ENV_F_WS : 0);
	}
}

/* What is not a token of ours: the form of before incarnations (its
 * edges are gone), no serial, no edge, an unknown transport, junk
 * after it; the longest token fits the caller's buffer. */
static void
test_core_msg__flow_token_refusals(void **state)
{
	static const char *const bad[] = {
		"sm-f1-5-4", "sm-f1-0000abcd.0-4", "sm-f0-0000abcd.5-4",
		"sm-f1-0000abcd.5-0", "sm-f1-0000abcd.5-99",
		"sm-f1-0000abcd.5-4x", "sm-f70000-0000abcd.5-4", "sm-f1-.5-4",
	};
	struct core_leg l = { .edge_id = 65535, .conn_id = UINT64_MAX,
			      .transport = ENV_TP_END - 1 };
	char tok[48];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		if (core_flow_parse(bad[i], &l) != -EINVAL)
			fail_msg("%s parsed", bad[i]);
	assert_int_equal(core_flow_token(&l, tok, sizeof(tok)), 0);
}

/* A NAT token (a UDP party's address) round-trips IPv4, IPv6 and
 * v4-mapped IPv6, is UDP without a connection, and the longest fits 64
 * bytes. */
static void
test_core_msg__nat_token_round_trips(void **state)
{
	static const struct { const char *ip; int port; const char *tok; } cases[] = {
		{ "127.0.0.1", 5070, "sm-n7-127.0.0.1-5070" },
		{ "192.0.2.200", 1, "sm-n7-192.0.2.200-1" },
		{ "2001:db8::1", 65535, "sm-n7-2001_db8__1-65535" },
		{ "::ffff:192.0.2.1", 5060, "sm-n7-__ffff_192.0.2.1-5060" },
	};
	char tok[64], a[64], b[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct core_leg in = { .edge_id = 7, .transport = ENV_UDP,
				       .nat = 1 }, out;

		assert_int_equal(env_sa_from(&in.dst, cases[i].ip,
					     cases[i].port), 0);
		assert_int_equal(core_flow_token(&in, tok, sizeof(tok)), 0);
		assert_string_equal(tok, cases[i].tok);
		memset(&out, 0xa5, sizeof(out));
		assert_int_equal(core_flow_parse(tok, &out), 0);
		assert_int_equal(out.edge_id, 7);
		assert_int_equal(out.transport, ENV_UDP);
		assert_int_equal(out.nat, 1);
		assert_true(out.conn_id == 0);
		assert_int_equal(out.flags, 0);
		assert_string_equal(env_sa_str(&out.dst, a, sizeof(a)),
				    env_sa_str(&in.dst, b, sizeof(b)));
	}
	{
		struct core_leg l = { .edge_id = 65535, .transport = ENV_UDP,
				      .nat = 1 };

		env_sa_from(&l.dst, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
			    65535);
		assert_int_equal(core_flow_token(&l, tok, sizeof(tok)), 0);
		assert_int_equal(core_flow_token(&l, tok, strlen(tok)), -ENOSPC);
		/* A connection wins: the flow, not its address. */
		l.conn_id = ENV_CONN_ID(1, 2);
		assert_int_equal(core_flow_token(&l, tok, sizeof(tok)), 0);
		assert_int_equal(strncmp(tok, "sm-f", 4), 0);
	}
}

/* What is not a NAT token: no edge or edge 0 or too big, no address,
 * one inet_pton refuses, characters a user part or an address has not,
 * port 0, above 65535, with a leading zero or a sign, missing, or junk
 * after it. */
static void
test_core_msg__nat_token_refusals(void **state)
{
	static const char *const bad[] = {
		"sm-n-127.0.0.1-5070", "sm-n0-127.0.0.1-5070",
		"sm-n65536-127.0.0.1-5070", "sm-n01-127.0.0.1-5070",
		"sm-n99999999999999999999-127.0.0.1-5070",
		"sm-n1--5070", "sm-n1-7f000001-5070", "sm-n1-127.0.0.256-5070",
		"sm-n1-127.1-5070", "sm-n1-127.0.0.1.-5070", "sm-n1-1_2_3-5070",
		"sm-n1-127.0.0.1:5070-5070", "sm-n1-2001:db8::1-5070",
		"sm-n1-127.0.0.1%lo-5070", "sm-n1- 127.0.0.1-5070",
		"sm-n1-fe80__1_0-5070x", "sm-n1-127.0.0.1-0",
		"sm-n1-127.0.0.1-65536", "sm-n1-127.0.0.1-05070",
		"sm-n1-127.0.0.1-+5070", "sm-n1-127.0.0.1-",
		"sm-n1-127.0.0.1", "sm-n1-127.0.0.1-5070x",
		"sm-n1-127.0.0.1-5070-1", "sm-n",
		"sm-n1-ffff_ffff_ffff_ffff_ffff_ffff_ffff_ffff_ffff-5070",
	};
	struct core_leg l;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		if (core_flow_parse(bad[i], &l) != -EINVAL)
			fail_msg("%s parsed", bad[i]);
}

/* The trunk token of a Record-Route entry facing a [pstn] gateway: its
 * CSeq move round-trips, anything else is no token (-1), and a flow
 * parse never takes it for a flow. */
static void
test_core_msg__trunk_token(void **state)
{
	static const char *const bad[] = {
		"sm-c", "sm-c10", "sm-c-1", "sm-c+1", "sm-ca", "sm-c1x",
		"sm-f1-0000000a.1-1", "SM-C1", "sm-c 1", "",
	};
	struct core_leg l = { .trunk = 1 }, f;
	char tok[16];

	(void)state;
	for (unsigned d = 0; d <= 9; d++) {
		l.cseq_delta = (uint8_t)d;
		assert_int_equal(core_trunk_token(&l, tok, sizeof(tok)), 0);
		assert_int_equal(core_trunk_token_parse(tok), (int)d);
		assert_int_equal(core_flow_parse(tok, &f), -EINVAL);
	}
	l.cseq_delta = 10;
	assert_int_equal(core_trunk_token(&l, tok, sizeof(tok)), -ENOSPC);
	l.cseq_delta = 1;
	assert_int_equal(core_trunk_token(&l, tok, 5), -ENOSPC);
	assert_int_equal(core_trunk_token_parse(NULL), -1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		if (core_trunk_token_parse(bad[i]) != -1)
			fail_msg("%s parsed", bad[i]);
}

/* A CSeq moved up and back; never below 0 nor to 2**31 (RFC 3261
 * 8.1.1.5), never from a number that is not one. */
static void
test_core_msg__cseq_shift(void **state)
{
	static const struct {
		const char *num;
		int delta, rc;
		const char *want;
	} t[] = {
		{ "1", 1, 0, "2" }, { "2", -1, 0, "1" }, { "0", 0, 0, "0" },
		{ "1", -1, 0, "0" }, { "0", -1, -EINVAL, NULL },
		{ "2147483646", 1, 0, "2147483647" },
		{ "2147483647", 1, -EINVAL, NULL },
		{ "12a", 1, -EINVAL, NULL }, { "", 1, -EINVAL, NULL },
		{ "+5", 1, -EINVAL, NULL }, { " 5", 1, -EINVAL, NULL },
		{ "-1", 2, -EINVAL, NULL },
		{ "99999999999999999999999", 1, -EINVAL, NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++) {
		osip_message_t *m = NULL;

		assert_int_equal(osip_message_init(&m), 0);
		assert_int_equal(osip_cseq_init(&m->cseq), 0);
		osip_cseq_set_number(m->cseq, osip_strdup(t[i].num));
		osip_cseq_set_method(m->cseq, osip_strdup("INVITE"));
		if (core_cseq_shift(m, t[i].delta) != t[i].rc)
			fail_msg("%s %+d: not %d", t[i].num, t[i].delta, t[i].rc);
		assert_string_equal(m->cseq->number,
				    t[i].want ? t[i].want : t[i].num);
		osip_message_free(m);
	}
}

static osip_message_t *
with_call_id(const char *cid)
{
	osip_message_t *m = NULL;

	assert_int_equal(osip_message_init(&m), 0);
	assert_int_equal(osip_message_set_call_id(m, cid), 0);
	return m;
}

/* core_branch_verify of m's Call-ID, as the core reads it. */
static int
branch_verify(const struct core *c, const osip_message_t *m, const char *b)
{
	char cid[SIP_BRANCH_CID_MAX + 1];

	return core_branch_verify(c, cid, core_call_id(m, cid, sizeof(cid)), b);
}

/* A branch verifies for the core, serial and Call-ID it was minted
 * for and nothing else: not the next or previous serial, not another
 * call, core id or key.  Any core of the cluster verifies it: the
 * edges hand a lost core's responses to another. */
static void
test_core_msg__branch_signed_for_core_serial_and_call(void **state)
{
	static struct core c, other_key, other_id;
	osip_message_t *m = with_call_id("a84b4c76e66710@pc33.example.com");
	osip_message_t *m2 = with_call_id("a84b4c76e66711@pc33.example.com");
	char b[SIP_BRANCH_MAX], forged[SIP_BRANCH_MAX];
	uint64_t serial, mac;
	int id;

	(void)state;
	c.id = other_key.id = 2;
	other_id.id = 3;
	/* Branches are MACed with the branch key (lib/sip.h). */
	c.branch_key.k0 = c.branch_key.k1 = 7;
	other_key.branch_key.k0 = other_key.branch_key.k1 = 8;
	other_id.branch_key = c.branch_key;
	assert_true(core_branch_make(&c, m, 1000, b, sizeof(b)) > 0);
	assert_int_equal(sip_branch_core(b, strlen(b)), 2);
	assert_int_equal(branch_verify(&c, m, b), 0);
	assert_int_equal(branch_verify(&c, m2, b), -EINVAL);
	assert_int_equal(branch_verify(&other_key, m, b), -EINVAL);
	assert_int_equal(branch_verify(&other_id, m, b), 0);
	assert_int_equal(branch_verify(&c, m, NULL), -EINVAL);
	assert_int_equal(sip_branch_parse(b, strlen(b), &id, &serial, &mac), 0);
	sip_branch_make(forged, sizeof(forged), 3, serial, mac);
	assert_int_equal(branch_verify(&other_id, m, forged), -EINVAL);
	for (int d = -2; d <= 2; d++) {
		if (d == 0)
			continue;
		sip_branch_make(forged, sizeof(forged), 2, serial + (uint64_t)d,
				mac);
		assert_int_equal(branch_verify(&c, m, forged), -EINVAL);
		sip_branch_make(forged, sizeof(forged), 2, serial, mac + (uint64_t)d);
		assert_int_equal(branch_verify(&c, m, forged), -EINVAL);
	}
	osip_message_free(m);
	osip_message_free(m2);
}

/* core_rr_verify for m of "sip:<user>@127.0.0.1:5060;lr<sig>". */
static int
rr_verify_user(const struct core *c, const osip_message_t *m,
	       const char *user, const char *sig)
{
	char text[256];
	osip_uri_t *u;
	int rc;

	snprintf(text, sizeof(text), "sip:%s@127.0.0.1:5060;lr%s", user, sig);
	u = uri(text);
	rc = core_rr_verify(c, m, u);
	osip_uri_free(u);
	return rc;
}

/* A Record-Route URI verifies for its dialog's Call-ID with its own
 * user part (flow token) only. */
static void
test_core_msg__record_route_signed_for_call_and_flow(void **state)
{
	static struct core c;
	osip_message_t *m = with_call_id("call-1"), *m2 = with_call_id("call-2");
	char sig[48], text[256];
	osip_uri_t *u;

	(void)state;
	memset(c.key, 9, sizeof(c.key));
	assert_int_equal(core_sign_init(&c), 0);
	assert_int_equal(core_rr_param(&c, m, "sm-f1-0000abcd.5-4", sig,
				       sizeof(sig)), 0);
	/* A known answer: HMAC-SHA256 under the key over "r|<Call-ID>|<user>",
	 * its first 8 bytes (Python's hmac module gave it): a change of
	 * the signed bytes would void every dialog in progress. */
	assert_string_equal(sig, ";smsig=bb50dc61a28246bb");
	snprintf(text, sizeof(text), "sip:sm-f1-0000abcd.5-4@127.0.0.1:8080;"
		 "transport=ws;lr%s", sig);
	u = uri(text);
	assert_int_equal(core_rr_verify(&c, m, u), 0);
	assert_int_equal(core_rr_verify(&c, m2, u), -EACCES);
	osip_uri_free(u);
	/* The same signature on another connection's token, or on the
	 * same serial of another start of the edge. */
	snprintf(text, sizeof(text), "sip:sm-f1-0000abcd.6-4@127.0.0.1:8080;"
		 "transport=ws;lr%s", sig);
	u = uri(text);
	assert_int_equal(core_rr_verify(&c, m, u), -EACCES);
	osip_uri_free(u);
	snprintf(text, sizeof(text), "sip:sm-f1-0000abce.5-4@127.0.0.1:8080;"
		 "transport=ws;lr%s", sig);
	u = uri(text);
	assert_int_equal(core_rr_verify(&c, m, u), -EACCES);
	osip_uri_free(u);
	/* A NAT token's address or port changed under its signature. */
	assert_int_equal(core_rr_param(&c, m, "sm-n1-127.0.0.1-5070", sig,
				       sizeof(sig)), 0);
	assert_int_equal(rr_verify_user(&c, m, "sm-n1-127.0.0.1-5070", sig), 0);
	assert_int_equal(rr_verify_user(&c, m, "sm-n1-127.0.0.2-5070", sig),
			 -EACCES);
	assert_int_equal(rr_verify_user(&c, m, "sm-n1-127.0.0.1-5071", sig),
			 -EACCES);
	/* No user part, no signature, a made-up one. */
	assert_int_equal(core_rr_param(&c, m, NULL, sig, sizeof(sig)), 0);
	assert_string_equal(sig, ";smsig=1dd733a90c94c861");
	snprintf(text, sizeof(text), "sip:127.0.0.1:5060;lr%s", sig);
	u = uri(text);
	assert_int_equal(core_rr_verify(&c, m, u), 0);
	osip_uri_free(u);
	u = uri("sip:127.0.0.1:5060;lr");
	assert_int_equal(core_rr_verify(&c, m, u), -EACCES);
	osip_uri_free(u);
	u = uri("sip:127.0.0.1:5060;lr;smsig=0123456789abcdef");
	assert_int_equal(core_rr_verify(&c, m, u), -EACCES);
	osip_uri_free(u);
	osip_message_free(m);
	osip_message_free(m2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_core_msg__uri_leg_by_transport),
		cmocka_unit_test(test_core_msg__uri_is_self_on_every_transport),
		cmocka_unit_test(test_core_msg__leg_edge_for_dst_family),
		cmocka_unit_test(test_core_msg__flow_token_every_transport),
		cmocka_unit_test(test_core_msg__flow_token_refusals),
		cmocka_unit_test(test_core_msg__nat_token_round_trips),
		cmocka_unit_test(test_core_msg__nat_token_refusals),
		cmocka_unit_test(test_core_msg__trunk_token),
		cmocka_unit_test(test_core_msg__cseq_shift),
		cmocka_unit_test(test_core_msg__branch_signed_for_core_serial_and_call),
		cmocka_unit_test(test_core_msg__record_route_signed_for_call_and_flow),
	};

	parser_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
