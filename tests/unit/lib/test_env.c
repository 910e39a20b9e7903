/*
 * test_env.c - the envelope codec: round trips for both address
 * families, and refusal of every hostile header (bad magic or version,
 * lengths that lie, unknown type, transport or family, truncation at
 * every byte), the connection identity (edge incarnation and serial,
 * issue 9) at its place on the wire, and the transport table: its rows,
 * its names parsed case-insensitively, values outside it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "lib/env.h"

static const char sipmsg[] = "OPTIONS sip:a@x SIP/2.0\r\n\r\n";

static struct env
env_sample(const char *src_ip, const char *local_ip)
{
	struct env e;

	memset(&e, 0, sizeof(e));
	e.type = ENV_SIP;
	e.transport = ENV_WSS;
	e.flags = ENV_F_WS;
	e.edge_id = 513;
	e.core_id = 65535;
	e.conn_id = ENV_CONN_ID(0xfeedf00d, 0xdeadbeef);
	assert_int_equal(env_sa_from(&e.src, src_ip, 40000), 0);
	assert_int_equal(env_sa_from(&e.local, local_ip, 5060), 0);
	e.msg = sipmsg;
	e.len = sizeof(sipmsg) - 1;
	return e;
}

static void
test_env__round_trip_v4_and_v6(void **state)
{
	static const char *const ips[][2] = {
		{ "192.0.2.1", "127.0.0.1" }, { "2001:db8::1", "::1" },
		{ "10.1.2.3", "fe80::1" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ips) / sizeof(*ips); i++) {
		struct env e = env_sample(ips[i][0], ips[i][1]), d;
		char buf[256], a[64], b[64];
		int n = env_encode(&e, buf, sizeof(buf));

		assert_int_equal(n, ENV_HDR_LEN + (int)e.len);
		assert_int_equal(env_decode(&d, buf, (size_t)n), 0);
		assert_int_equal(d.type, ENV_SIP);
		assert_int_equal(d.transport, ENV_WSS);
		assert_int_equal(d.flags, ENV_F_WS);
		assert_int_equal(d.edge_id, 513);
		assert_int_equal(d.core_id, 65535);
		assert_true(d.conn_id == ENV_CONN_ID(0xfeedf00d, 0xdeadbeef));
		assert_string_equal(env_sa_str(&d.src, a, sizeof(a)),
				    env_sa_str(&e.src, b, sizeof(b)));
		assert_string_equal(env_sa_str(&d.local, a, sizeof(a)),
				    env_sa_str(&e.local, b, sizeof(b)));
		assert_int_equal(d.len, e.len);
		assert_ptr_equal(d.msg, buf + ENV_HDR_LEN);
		assert_memory_equal(d.msg, sipmsg, e.len);
	}
}

/* The text of an address, as received= and the logs print it: every
 * IPv4 byte value in place, IPv6 compressed, a short buffer cut. */
static void
test_env__address_text(void **state)
{
	static const char *const ips[] = {
		"0.0.0.0", "255.255.255.255", "10.0.9.99", "192.168.100.1",
		"127.0.0.1", "2001:db8::1", "::1",
	};
	union env_sa sa;
	char out[64];

	(void)state;
	for (size_t i = 0; i < sizeof(ips) / sizeof(*ips); i++) {
		assert_int_equal(env_sa_from(&sa, ips[i], 5060), 0);
		assert_string_equal(env_sa_ip(&sa, out, sizeof(out)), ips[i]);
		assert_int_equal(env_sa_ip_len(&sa), strlen(ips[i]));
	}
	for (unsigned v = 0; v < 256; v++) {
		char want[16];

		snprintf(want, sizeof(want), "%u.%u.1.%u", v, 255 - v, v / 3);
		assert_int_equal(env_sa_from(&sa, want, 1), 0);
		assert_string_equal(env_sa_ip(&sa, out, sizeof(out)), want);
	}
	assert_int_equal(env_sa_from(&sa, "192.168.100.1", 1), 0);
	assert_string_equal(env_sa_ip(&sa, out, 8), "192.168");
	memset(&sa, 0, sizeof(sa));
	assert_string_equal(env_sa_ip(&sa, out, sizeof(out)), "-");
}

static void
test_env__empty_message_and_unset_local(void **state)
{
	struct env e = env_sample("192.0.2.1", "127.0.0.1"), d;
	char buf[ENV_HDR_LEN];

	(void)state;
	e.type = ENV_CONN_CLOSED;
	e.len = 0;
	memset(&e.local, 0, sizeof(e.local));
	assert_int_equal(env_encode(&e, buf, sizeof(buf)), ENV_HDR_LEN);
	assert_int_equal(env_decode(&d, buf, sizeof(buf)), 0);
	assert_int_equal(d.type, ENV_CONN_CLOSED);
	assert_int_equal(d.local.sa.sa_family, AF_UNSPEC);
	assert_int_equal(d.len, 0);
}

static void
test_env__encode_refuses_small_buffer_and_unknown_family(void **state)
{
	struct env e = env_sample("192.0.2.1", "127.0.0.1");
	char buf[256];

	(void)state;
	for (size_t cap = 0; cap < ENV_HDR_LEN + e.len; cap++)
		assert_int_equal(env_encode(&e, buf, cap), -ENOSPC);
	e.src.sa.sa_family = AF_UNIX;
	assert_int_equal(env_encode(&e, buf, sizeof(buf)), -EINVAL);
}

static void
test_env__decode_refuses_bad_magic_and_version(void **state)
{
	struct env e = env_sample("192.0.2.1", "127.0.0.1"), d;
	char buf[256];
	int n = env_encode(&e, buf, sizeof(buf));

	(void)state;
	buf[0] = 'X';
	assert_int_equal(env_decode(&d, buf, (size_t)n), -EPROTO);
	buf[0] = 'S';
	buf[1] = 'm';
	assert_int_equal(env_decode(&d, buf, (size_t)n), -EPROTO);
	buf[1] = 'M';
	for (int v = 0; v < 256; v++) {
		buf[2] = (char)v;
		assert_int_equal(env_decode(&d, buf, (size_t)n),
				 v == ENV_VERSION ? 0 : -EPROTO);
	}
}

static void
test_env__decode_refuses_every_truncation(void **state)
{
	struct env e = env_sample("2001:db8::1", "::1"), d;
	char buf[256];
	int n = env_encode(&e, buf, sizeof(buf));

	(void)state;
	for (int len = 0; len < n; len++) {
		/* A copy of exactly len bytes, so ASan sees any over-read. */
		char *cut = test_malloc(len ? (size_t)len : 1);
		int rc;

		memcpy(cut, buf, (size_t)len);
		rc = env_decode(&d, cut, (size_t)len);
		assert_true(rc == -EINVAL || rc == -EPROTO);
		test_free(cut);
	}
}

/* The u32 length at offset 60 against the bytes really present. */
static void
test_env__decode_refuses_lying_lengths(void **state)
{
	static const unsigned char lens[][4] = {
		{ 0, 0, 0, 0 }, { 0, 0, 0, 26 }, { 0, 0, 0, 28 },
		{ 0x7f, 0xff, 0xff, 0xff }, { 0xff, 0xff, 0xff, 0xff },
		{ 0x80, 0, 0, 27 }, { 0, 1, 0, 27 },
	};
	struct env e = env_sample("192.0.2.1", "127.0.0.1"), d;
	char buf[256];
	int n = env_encode(&e, buf, sizeof(buf));

	(void)state;
	assert_int_equal((int)e.len, 27);
	for (size_t i = 0; i < sizeof(lens) / sizeof(*lens); i++) {
		memcpy(buf + 60, lens[i], 4);
		assert_int_equal(env_decode(&d, buf, (size_t)n), -EINVAL);
	}
	/* Trailing bytes past the message are a lie too. */
	memcpy(buf + 60, "\0\0\0\x1b", 4);
	assert_int_equal(env_decode(&d, buf, (size_t)n + 1), -EINVAL);
	assert_int_equal(env_decode(&d, buf, (size_t)n), 0);
}

static void
test_env__decode_refuses_unknown_type_transport_family(void **state)
{
	static const struct { int off; unsigned char v; } bad[] = {
		{ 3, 0 }, { 3, 4 }, { 3, 255 },		/* type */
		{ 4, 0 }, { 4, ENV_TP_END }, { 4, 255 },	/* transport */
		{ 16, 5 }, { 16, 255 }, { 36, 2 },	/* address family */
	};
	struct env e = env_sample("192.0.2.1", "127.0.0.1"), d;
	char buf[256], orig[256];
	int n = env_encode(&e, orig, sizeof(orig));

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		memcpy(buf, orig, (size_t)n);
		buf[bad[i].off] = (char)bad[i].v;
		assert_int_equal(env_decode(&d, buf, (size_t)n), -EINVAL);
	}
}

/*
 * The connection identity: incarnation then serial, each big-endian,
 * at offset 8; the halves come back apart; a serial of 0 under an
 * incarnation names no connection and is refused; 0 is connectionless.
 */
static void
test_env__connection_identity_on_the_wire(void **state)
{
	static const unsigned char want[8] = {
		0xfe, 0xed, 0xf0, 0x0d, 0xde, 0xad, 0xbe, 0xef,
	};
	struct env e = env_sample("192.0.2.1", "127.0.0.1"), d;
	char buf[256], s[32];
	int n = env_encode(&e, buf, sizeof(buf));

	(void)state;
	assert_memory_equal(buf + 8, want, 8);
	assert_int_equal(env_decode(&d, buf, (size_t)n), 0);
	assert_int_equal(ENV_CONN_INC(d.conn_id), 0xfeedf00d);
	assert_int_equal(ENV_CONN_SERIAL(d.conn_id), 0xdeadbeef);
	snprintf(s, sizeof(s), ENV_CONN_FMT, ENV_CONN_ARGS(d.conn_id));
	assert_string_equal(s, "feedf00d.3735928559");

	/* Incarnation 0 (a binding stored before incarnations) decodes:
	 * the edge must see it to hand the message back. */
	e.conn_id = ENV_CONN_ID(0, 7);
	n = env_encode(&e, buf, sizeof(buf));
	assert_int_equal(env_decode(&d, buf, (size_t)n), 0);
	assert_true(d.conn_id == 7);
	/* No connection has serial 0. */
	e.conn_id = ENV_CONN_ID(0xfeedf00d, 0);
	n = env_encode(&e, buf, sizeof(buf));
	assert_int_equal(env_decode(&d, buf, (size_t)n), -EINVAL);
	e.conn_id = 0;
	n = env_encode(&e, buf, sizeof(buf));
	assert_int_equal(env_decode(&d, buf, (size_t)n), 0);
	assert_true(d.conn_id == 0);
}

/* A version 1 envelope (u32 conn id, 60-byte header, from a process of
 * before incarnations) is refused as such, never read with the new
 * offsets. */
static void
test_env__version_1_is_refused(void **state)
{
	struct env e = env_sample("192.0.2.1", "127.0.0.1"), d;
	char buf[256];
	int n = env_encode(&e, buf, sizeof(buf));

	(void)state;
	assert_int_equal(ENV_VERSION, 2);
	assert_int_equal(ENV_HDR_LEN, 64);
	/* The same bytes with a v1 header length that would fit. */
	buf[2] = 1;
	memcpy(buf + 56, "\0\0\0\x1f", 4);
	assert_int_equal(env_decode(&d, buf, (size_t)n), -EPROTO);
}

/*
 * Peer names (what a TLS client certificate proved, issue 11): they
 * travel between the header and the message, with their length in the
 * u16 at offset 58; whole names only are found, without regard to case.
 */
static void
test_env__peer_names_round_trip(void **state)
{
	static const char names[] = "b.test sip-1.b.test";
	struct env e = env_sample("192.0.2.1", "127.0.0.1"), d;
	char buf[256];
	int n;

	(void)state;
	e.transport = ENV_TLS;
	e.flags = 0;
	e.names = names;
	e.names_len = sizeof(names) - 1;
	n = env_encode(&e, buf, sizeof(buf));
	assert_int_equal(n, ENV_HDR_LEN + (int)e.names_len + (int)e.len);
	assert_int_equal((unsigned char)buf[58], 0);
	assert_int_equal((unsigned char)buf[59], sizeof(names) - 1);
	assert_int_equal(env_decode(&d, buf, (size_t)n), 0);
	assert_int_equal(d.names_len, e.names_len);
	assert_memory_equal(d.names, names, e.names_len);
	assert_int_equal(d.len, e.len);
	assert_memory_equal(d.msg, sipmsg, e.len);
	assert_true(env_names_has(&d, "b.test", 6));
	assert_true(env_names_has(&d, "B.Test", 6));
	assert_true(env_names_has(&d, "sip-1.b.test", 12));
	/* No suffix, no prefix, no part of a name. */
	assert_false(env_names_has(&d, "test", 4));
	assert_false(env_names_has(&d, "1.b.test", 8));
	assert_false(env_names_has(&d, "b.tes", 5));
	assert_false(env_names_has(&d, "b.test sip-1.b.test", 19));
	assert_false(env_names_has(&d, "", 0));
	/* Without names, nothing is proved. */
	e.names = NULL;
	n = env_encode(&e, buf, sizeof(buf));
	assert_int_equal(env_decode(&d, buf, (size_t)n), 0);
	assert_null(d.names);
	assert_false(env_names_has(&d, "b.test", 6));
	/* Too small a buffer for names and message. */
	e.names = names;
	for (size_t cap = 0; cap < ENV_HDR_LEN + e.names_len + e.len; cap++)
		assert_int_equal(env_encode(&e, buf, cap), -ENOSPC);
}

/* Names are bounded, lower-case DNS names, on SIP envelopes only. */
static void
test_env__peer_names_refused(void **state)
{
#define BAD(lit) { lit, sizeof(lit) - 1 }
	static const struct { const char *s; size_t len; } bad[] = {
		BAD(" b.test"), BAD("b.test "), BAD("b.test  c.test"),
		BAD("B.test"), BAD("b_test"), BAD("b.test\r\nVia: x"),
		BAD("*.b.test"), BAD("b.test\0"), BAD("b:5061"), BAD(" "),
	};
#undef BAD
	struct env e = env_sample("192.0.2.1", "127.0.0.1"), d;
	char buf[2048], big[ENV_NAMES_MAX + 2], label[260];
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		assert_false(env_names_valid(bad[i].s, bad[i].len));
		e.names = bad[i].s;
		e.names_len = bad[i].len;
		assert_int_equal(env_encode(&e, buf, sizeof(buf)), -EINVAL);
	}
	assert_true(env_names_valid("", 0));
	assert_true(env_names_valid("a", 1));
	/* A name of 254 bytes is none; 253 is. */
	memset(label, 'a', sizeof(label));
	assert_true(env_names_valid(label, 253));
	assert_false(env_names_valid(label, 254));
	/* ENV_NAMES_MAX bytes at most. */
	memset(big, 'a', sizeof(big));
	for (size_t i = 100; i < sizeof(big); i += 101)
		big[i] = ' ';
	big[ENV_NAMES_MAX - 1] = 'a';
	big[ENV_NAMES_MAX] = 'a';
	assert_true(env_names_valid(big, ENV_NAMES_MAX));
	assert_false(env_names_valid(big, ENV_NAMES_MAX + 1));

	/* On the wire: a valid encoding, then each field made to lie. */
	e.names = "b.test";
	e.names_len = 6;
	n = env_encode(&e, buf, sizeof(buf));
	assert_int_equal(env_decode(&d, buf, (size_t)n), 0);
	buf[ENV_HDR_LEN] = 'B';			/* upper case */
	assert_int_equal(env_decode(&d, buf, (size_t)n), -EINVAL);
	buf[ENV_HDR_LEN] = '\n';
	assert_int_equal(env_decode(&d, buf, (size_t)n), -EINVAL);
	buf[ENV_HDR_LEN] = 'b';
	buf[59] = 7;				/* one byte of the message */
	assert_int_equal(env_decode(&d, buf, (size_t)n), -EINVAL);
	buf[58] = (char)0xff;			/* past the end */
	assert_int_equal(env_decode(&d, buf, (size_t)n), -EINVAL);
	buf[58] = 0;
	buf[59] = 6;
	buf[3] = ENV_CONN_CLOSED;		/* names on a closed conn */
	assert_int_equal(env_decode(&d, buf, (size_t)n), -EINVAL);
	buf[3] = ENV_SIP;
	assert_int_equal(env_decode(&d, buf, (size_t)n), 0);

	/* The longest list fits and comes back. */
	{
		struct env big_e = env_sample("192.0.2.1", "127.0.0.1");

		big_e.names = big;
		big_e.names_len = ENV_NAMES_MAX;
		n = env_encode(&big_e, buf, sizeof(buf));
		assert_int_equal(n, ENV_HDR_LEN + ENV_NAMES_MAX + (int)big_e.len);
		assert_int_equal(env_decode(&d, buf, (size_t)n), 0);
		assert_int_equal(d.names_len, ENV_NAMES_MAX);
		big_e.names_len = ENV_NAMES_MAX + 1;
		assert_int_equal(env_encode(&big_e, buf, sizeof(buf)), -EINVAL);
	}
}

static void
test_env__addresses_format_and_parse(void **state)
{
	union env_sa sa;
	char s[64];

	(void)state;
	assert_int_equal(env_sa_from(&sa, "::1", 5060), 0);
	assert_string_equal(env_sa_str(&sa, s, sizeof(s)), "[::1]:5060");
	assert_string_equal(env_sa_ip(&sa, s, sizeof(s)), "::1");
	assert_int_equal(env_sa_port(&sa), 5060);
	assert_int_equal(env_sa_from(&sa, "127.0.0.1", 65535), 0);
	assert_string_equal(env_sa_str(&sa, s, sizeof(s)), "127.0.0.1:65535");
	assert_int_equal(env_sa_from(&sa, "localhost", 1), -EINVAL);
	assert_int_equal(env_sa_from(&sa, "1.2.3.4", 65536), -EINVAL);
	assert_int_equal(env_sa_from(&sa, "1.2.3.4", -1), -EINVAL);
	assert_int_equal(env_sa_from(&sa, "[::1]", 1), -EINVAL);
	memset(&sa, 0, sizeof(sa));
	assert_string_equal(env_sa_ip(&sa, s, sizeof(s)), "-");
}

/* env_sa_ip_len counts what env_sa_ip writes, digits of every width. */
static void
test_env__ip_length_as_written(void **state)
{
	static const char *const ips[] = {
		"0.0.0.0", "9.10.99.100", "255.255.255.255", "127.0.1.1",
		"::1", "2001:db8::ff00:42:8329", "::ffff:10.0.0.1",
	};
	union env_sa sa, other;
	char s[64];

	(void)state;
	for (size_t i = 0; i < sizeof(ips) / sizeof(ips[0]); i++) {
		assert_int_equal(env_sa_from(&sa, ips[i], 5060), 0);
		assert_int_equal(env_sa_ip_len(&sa),
				 strlen(env_sa_ip(&sa, s, sizeof(s))));
	}
	/* Same address, ports aside; families apart. */
	assert_int_equal(env_sa_from(&sa, "10.0.0.1", 5060), 0);
	assert_int_equal(env_sa_from(&other, "10.0.0.1", 5070), 0);
	assert_true(env_sa_addr_eq(&sa, &other));
	assert_int_equal(env_sa_from(&other, "::ffff:10.0.0.1", 5060), 0);
	assert_false(env_sa_addr_eq(&sa, &other));
	assert_int_equal(env_sa_from(&other, "10.0.0.2", 5060), 0);
	assert_false(env_sa_addr_eq(&sa, &other));
}

/* Each row of the table, as every process sees it. */
static void
test_env__transport_rows(void **state)
{
	static const struct {
		int tp;
		const char *name, *key;
		int port, sip_port, stream, ws, secure, dial;
	} rows[] = {
		{ ENV_UDP, "UDP", "udp", 5060, 5060, 0, 0, 0, 1 },
		{ ENV_TCP, "TCP", "tcp", 5060, 5060, 1, 0, 0, 1 },
		{ ENV_TLS, "TLS", "tls", 5061, 5061, 1, 0, 1, 1 },
		{ ENV_WS, "WS", "ws", 8080, 5060, 1, 1, 0, 0 },
		{ ENV_WSS, "WSS", "wss", 8443, 5061, 1, 1, 1, 0 },
	};

	(void)state;
	/* The numbers travel in envelopes and stored bindings. */
	assert_int_equal(ENV_UDP, 1);
	assert_int_equal(ENV_WSS, 5);
	assert_int_equal(ENV_TP_END, 6);
	for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
		int t = rows[i].tp;

		assert_true(env_transport_valid(t));
		assert_string_equal(env_transport_name(t), rows[i].name);
		assert_string_equal(env_transport_key(t), rows[i].key);
		assert_int_equal(env_transport_port(t), rows[i].port);
		assert_int_equal(env_transport_sip_port(t), rows[i].sip_port);
		assert_int_equal(env_transport_is(t, ENV_TP_STREAM), rows[i].stream);
		assert_int_equal(env_transport_is(t, ENV_TP_WS), rows[i].ws);
		assert_int_equal(env_transport_is(t, ENV_TP_SECURE), rows[i].secure);
		assert_int_equal(env_transport_is(t, ENV_TP_DIAL), rows[i].dial);
		assert_int_equal(env_transport_is(t, ENV_TP_WS | ENV_TP_SECURE),
				 rows[i].ws && rows[i].secure);
	}
}

/* Outside the table every property says "none". */
static void
test_env__transport_unknown_values(void **state)
{
	static const int bad[] = { ENV_TP_NONE, ENV_TP_END, -1, 99, 255 };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		assert_false(env_transport_valid(bad[i]));
		assert_string_equal(env_transport_name(bad[i]), "?");
		assert_string_equal(env_transport_key(bad[i]), "?");
		assert_int_equal(env_transport_port(bad[i]), 0);
		assert_int_equal(env_transport_sip_port(bad[i]), 5060);
		assert_false(env_transport_is(bad[i], 0));
		assert_false(env_transport_is(bad[i], ENV_TP_DIAL));
	}
}

/* Names parse case-insensitively (RFC 3261 25, 19.1.4); only whole
 * names of the table, measured by len, are transports. */
static void
test_env__transport_parse(void **state)
{
	static const struct { const char *s; size_t len; int want; } cases[] = {
		{ "udp", 3, ENV_UDP }, { "UDP", 3, ENV_UDP }, { "uDp", 3, ENV_UDP },
		{ "tcp", 3, ENV_TCP }, { "TLS", 3, ENV_TLS }, { "Ws", 2, ENV_WS },
		{ "wSS", 3, ENV_WSS },
		{ "TCP;branch", 3, ENV_TCP },	/* a slice of a Via */
		{ "wss", 2, ENV_WS },
		{ "", 0, -EINVAL }, { "sctp", 4, -EINVAL }, { "tc", 2, -EINVAL },
		{ "udpx", 4, -EINVAL }, { "udp ", 4, -EINVAL },
		{ "u\0p", 3, -EINVAL }, { "?", 1, -EINVAL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		if (env_transport_parse(cases[i].s, cases[i].len) != cases[i].want)
			fail_msg("case %zu \"%.*s\": got %d, want %d", i,
				 (int)cases[i].len, cases[i].s,
				 env_transport_parse(cases[i].s, cases[i].len),
				 cases[i].want);
	/* Every row parses back from both of its spellings. */
	for (int t = ENV_UDP; t < ENV_TP_END; t++) {
		const char *n = env_transport_name(t), *k = env_transport_key(t);

		assert_int_equal(env_transport_parse(n, strlen(n)), t);
		assert_int_equal(env_transport_parse(k, strlen(k)), t);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env__round_trip_v4_and_v6),
		cmocka_unit_test(test_env__empty_message_and_unset_local),
		cmocka_unit_test(test_env__encode_refuses_small_buffer_and_unknown_family),
		cmocka_unit_test(test_env__decode_refuses_bad_magic_and_version),
		cmocka_unit_test(test_env__decode_refuses_every_truncation),
		cmocka_unit_test(test_env__decode_refuses_lying_lengths),
		cmocka_unit_test(test_env__decode_refuses_unknown_type_transport_family),
		cmocka_unit_test(test_env__connection_identity_on_the_wire),
		cmocka_unit_test(test_env__version_1_is_refused),
		cmocka_unit_test(test_env__peer_names_round_trip),
		cmocka_unit_test(test_env__peer_names_refused),
		cmocka_unit_test(test_env__addresses_format_and_parse),
		cmocka_unit_test(test_env__ip_length_as_written),
		cmocka_unit_test(test_env__address_text),
		cmocka_unit_test(test_env__transport_rows),
		cmocka_unit_test(test_env__transport_unknown_values),
		cmocka_unit_test(test_env__transport_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
