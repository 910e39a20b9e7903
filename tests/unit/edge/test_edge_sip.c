/*
 * test_edge_sip.c - the edge's SIP handling: header scan, the top Via
 * received/rport splice (a table of hostile and edge cases), message
 * checks with hostile lengths, and the stateless reply builder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "edge/edge_int.h"

#define REST "From: <sip:b@x>;tag=1\r\nTo: <sip:a@x>\r\nCall-ID: c1\r\n" \
	     "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"

static union env_sa
sa(const char *ip, int port)
{
	union env_sa s;

	assert_int_equal(env_sa_from(&s, ip, port), 0);
	return s;
}

/* ---- scan ---- */

static void
test_edge_sip__scan_finds_compact_and_folded_headers(void **state)
{
	static const char m[] =
		"\r\nINVITE sip:a@x SIP/2.0\r\n"
		"v: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
		"Via: SIP/2.0/UDP h2;branch=z9hG4bK2\r\n"
		"f: <sip:b@x>;tag=1\r\n"
		"t : <sip:a@x>\r\n"
		"i:\tabc@h  \r\n"
		"CSeq: 7\r\n INVITE\r\n"
		"l: 3\r\n\r\nxyz";
	struct edge_sip_scan sc;

	(void)state;
	assert_int_equal(edge_sip_scan(&sc, m, sizeof(m) - 1), 0);
	assert_true(sc.is_request);
	assert_int_equal(sc.method.len, 6);
	assert_memory_equal(sc.method.s, "INVITE", 6);
	assert_int_equal(sc.first[EDGE_H_VIA].value.len,
			 strlen("SIP/2.0/UDP h;branch=z9hG4bK1"));
	assert_memory_equal(sc.first[EDGE_H_VIA].value.s, "SIP/2.0/UDP h;", 14);
	assert_int_equal(sc.first[EDGE_H_TO].value.len, 9);
	assert_int_equal(sc.first[EDGE_H_CALL_ID].value.len, 5);
	assert_memory_equal(sc.first[EDGE_H_CALL_ID].value.s, "abc@h", 5);
	assert_int_equal(sc.first[EDGE_H_CSEQ].value.len, 10);
	assert_memory_equal(sc.first[EDGE_H_CSEQ].value.s, "7\r\n INVITE", 10);
	assert_true(sc.has_end);
	assert_false(sc.bad_line);
	assert_int_equal(sizeof(m) - 1 - sc.body_off, 3);
	assert_null(sc.first[EDGE_H_MAX_FORWARDS].line.s);
}

static void
test_edge_sip__scan_reads_responses_and_bare_lf(void **state)
{
	static const char m[] = "SIP/2.0 180 Ringing\nVia: SIP/2.0/UDP h\n\n";
	static const char nophrase[] = "SIP/2.0 200\r\n\r\n";
	struct edge_sip_scan sc;

	(void)state;
	assert_int_equal(edge_sip_scan(&sc, m, sizeof(m) - 1), 0);
	assert_false(sc.is_request);
	assert_int_equal(sc.status, 180);
	assert_int_equal(sc.first[EDGE_H_VIA].value.len,
			 strlen("SIP/2.0/UDP h"));
	assert_true(sc.has_end);
	assert_int_equal(sc.body_off, sizeof(m) - 1);
	assert_int_equal(edge_sip_scan(&sc, nophrase, sizeof(nophrase) - 1), 0);
	assert_int_equal(sc.status, 200);
}

static void
test_edge_sip__scan_rejects_bad_start_lines(void **state)
{
	static const char *const bad[] = {
		"", "\r\n\r\n", "INVITE", "INVITE sip:a SIP/3.0\r\n\r\n",
		"INVITE  SIP/2.0\r\n", "INV ITE sip:a SIP/2.0\r\n",
		"SIP/2.0 20 OK\r\n", "SIP/2.0 700 Big\r\n", "SIP/2.0 2000 OK\r\n",
		"SIP/2.0 OK\r\n", "I\x01NVITE sip:a SIP/2.0\r\n",
		"hello world\r\n", "INVITE sip:a SIP/2.0 x\r\n",
	};
	struct edge_sip_scan sc;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		assert_int_equal(edge_sip_scan(&sc, bad[i], strlen(bad[i])),
				 -EINVAL);
}

static void
test_edge_sip__scan_flags_lines_without_colon_and_no_end(void **state)
{
	static const char m[] = "OPTIONS sip:a SIP/2.0\r\nVia SIP/2.0/UDP h\r\n";
	struct edge_sip_scan sc;

	(void)state;
	assert_int_equal(edge_sip_scan(&sc, m, sizeof(m) - 1), 0);
	assert_true(sc.bad_line);
	assert_false(sc.has_end);
	assert_null(sc.first[EDGE_H_VIA].line.s);
}

/* ---- Via splice ---- */

struct via_case {
	const char *name;
	const char *via;	/* header lines before REST, with CRLFs */
	const char *ip;
	int port;
	int rc;			/* 0 or the expected error */
	const char *want;	/* the Via lines after the splice */
};

static const struct via_case via_cases[] = {
	{ "other host gets received",
	  "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n", "192.0.2.7", 5070, 0,
	  "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;received=192.0.2.7\r\n" },
	{ "same host stays as is",
	  "Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK1\r\n", "192.0.2.7", 5070, 0,
	  "Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK1\r\n" },
	{ "empty rport gets value and received",
	  "Via: SIP/2.0/UDP 192.0.2.7:5060;rport;branch=z9hG4bK1\r\n", "192.0.2.7", 5070, 0,
	  "Via: SIP/2.0/UDP 192.0.2.7:5060;rport=5070;branch=z9hG4bK1;received=192.0.2.7\r\n" },
	{ "rport with a value is overwritten",
	  "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1;rport=1234\r\n", "192.0.2.7", 5070, 0,
	  "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1;rport=5070;received=192.0.2.7\r\n" },
	{ "upper-case RPORT",
	  "Via: SIP/2.0/UDP 10.0.0.1;RPORT;branch=z9hG4bK1\r\n", "192.0.2.7", 9, 0,
	  "Via: SIP/2.0/UDP 10.0.0.1;rport=9;branch=z9hG4bK1;received=192.0.2.7\r\n" },
	{ "rportx is not rport",
	  "Via: SIP/2.0/UDP 192.0.2.7;rportx;branch=z9hG4bK1\r\n", "192.0.2.7", 9, 0,
	  "Via: SIP/2.0/UDP 192.0.2.7;rportx;branch=z9hG4bK1\r\n" },
	{ "compact form and host name",
	  "v: SIP/2.0/UDP pc.example.com;branch=z9hG4bK1\r\n", "192.0.2.7", 5070, 0,
	  "v: SIP/2.0/UDP pc.example.com;branch=z9hG4bK1;received=192.0.2.7\r\n" },
	{ "several values in one header: only the first changes",
	  "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1;rport , SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2;rport\r\n",
	  "192.0.2.7", 5070, 0,
	  "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1;rport=5070;received=192.0.2.7 , SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2;rport\r\n" },
	{ "second Via header untouched",
	  "Via: SIP/2.0/UDP 192.0.2.7;branch=a\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=b;rport\r\n",
	  "192.0.2.7", 5070, 0,
	  "Via: SIP/2.0/UDP 192.0.2.7;branch=a\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=b;rport\r\n" },
	{ "IPv6 same address, rport",
	  "Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1;rport\r\n", "2001:db8::1", 5070, 0,
	  "Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1;rport=5070;received=2001:db8::1\r\n" },
	{ "IPv6 written differently is the same address",
	  "Via: SIP/2.0/UDP [2001:DB8:0::1];branch=z9hG4bK1\r\n", "2001:db8::1", 5070, 0,
	  "Via: SIP/2.0/UDP [2001:DB8:0::1];branch=z9hG4bK1\r\n" },
	{ "IPv6 other address",
	  "Via: SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK1\r\n", "2001:db8::2", 5070, 0,
	  "Via: SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK1;received=2001:db8::2\r\n" },
	{ "IPv4 sender, IPv6 Via",
	  "Via: SIP/2.0/UDP [::1];branch=z9hG4bK1\r\n", "127.0.0.1", 5070, 0,
	  "Via: SIP/2.0/UDP [::1];branch=z9hG4bK1;received=127.0.0.1\r\n" },
	{ "spoofed received removed, same host",
	  "Via: SIP/2.0/UDP 192.0.2.7;received=198.51.100.1;branch=z9hG4bK1\r\n", "192.0.2.7", 5070, 0,
	  "Via: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK1\r\n" },
	{ "spoofed received replaced, other host",
	  "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1;received=198.51.100.1\r\n", "192.0.2.7", 5070, 0,
	  "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1;received=192.0.2.7\r\n" },
	{ "two received params and rport",
	  "Via: SIP/2.0/UDP h;received=1.1.1.1;rport;Received=2.2.2.2;branch=z9hG4bK1\r\n", "192.0.2.7", 1, 0,
	  "Via: SIP/2.0/UDP h;rport=1;branch=z9hG4bK1;received=192.0.2.7\r\n" },
	{ "folded value",
	  "Via: SIP/2.0/UDP 10.0.0.1\r\n  ;branch=z9hG4bK1\r\n", "192.0.2.7", 5070, 0,
	  "Via: SIP/2.0/UDP 10.0.0.1\r\n  ;branch=z9hG4bK1;received=192.0.2.7\r\n" },
	{ "LWS everywhere",
	  "Via : SIP / 2.0 / UDP 10.0.0.1 : 5060 ; branch = z9hG4bK1 ; rport \r\n", "192.0.2.7", 5070, 0,
	  "Via : SIP / 2.0 / UDP 10.0.0.1 : 5060 ; branch = z9hG4bK1 ; rport=5070;received=192.0.2.7 \r\n" },
	{ "quoted param with ; and ,",
	  "Via: SIP/2.0/UDP 10.0.0.1;x=\"a;b,c\";branch=z9hG4bK1\r\n", "192.0.2.7", 5070, 0,
	  "Via: SIP/2.0/UDP 10.0.0.1;x=\"a;b,c\";branch=z9hG4bK1;received=192.0.2.7\r\n" },
	{ "no params at all",
	  "Via: SIP/2.0/UDP 10.0.0.1\r\n", "192.0.2.7", 5070, 0,
	  "Via: SIP/2.0/UDP 10.0.0.1;received=192.0.2.7\r\n" },
	{ "missing Via", "", "192.0.2.7", 5070, -EINVAL, NULL },
	{ "empty Via", "Via:\r\n", "192.0.2.7", 5070, -EINVAL, NULL },
	{ "garbage Via", "Via: garbage\r\n", "192.0.2.7", 5070, -EINVAL, NULL },
	{ "not SIP", "Via: HTTP/1.1/TCP h\r\n", "192.0.2.7", 5070, -EINVAL, NULL },
	{ "unterminated IPv6", "Via: SIP/2.0/UDP [::1;branch=a\r\n", "192.0.2.7", 5070, -EINVAL, NULL },
	{ "empty IPv6", "Via: SIP/2.0/UDP [];branch=a\r\n", "192.0.2.7", 5070, -EINVAL, NULL },
	{ "port too big", "Via: SIP/2.0/UDP h:70000\r\n", "192.0.2.7", 5070, -EINVAL, NULL },
	{ "port zero", "Via: SIP/2.0/UDP h:0\r\n", "192.0.2.7", 5070, -EINVAL, NULL },
	{ "port empty", "Via: SIP/2.0/UDP h:;branch=a\r\n", "192.0.2.7", 5070, -EINVAL, NULL },
	{ "param without name", "Via: SIP/2.0/UDP h;=x\r\n", "192.0.2.7", 5070, -EINVAL, NULL },
	{ "unterminated quote", "Via: SIP/2.0/UDP h;x=\"abc\r\n", "192.0.2.7", 5070, -EINVAL, NULL },
	{ "junk after sent-by", "Via: SIP/2.0/UDP h x\r\n", "192.0.2.7", 5070, -EINVAL, NULL },
	{ "too many received", "Via: SIP/2.0/UDP h;received=1;received=2;received=3;"
	  "received=4;received=5\r\n", "192.0.2.7", 5070, -EINVAL, NULL },
};

static void
test_edge_sip__via_fix_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(via_cases) / sizeof(*via_cases); i++) {
		const struct via_case *c = &via_cases[i];
		char in[2048], out[2048], want[2048];
		struct edge_sip_scan sc;
		union env_sa src = sa(c->ip, c->port);
		int n = snprintf(in, sizeof(in), "OPTIONS sip:a@x SIP/2.0\r\n%s"
				 REST, c->via), r;

		assert_int_equal(edge_sip_scan(&sc, in, (size_t)n), 0);
		r = edge_sip_via_fix(in, (size_t)n, &sc, &src, out, sizeof(out));
		if (c->rc) {
			if (r != c->rc)
				fail_msg("%s: rc %d", c->name, r);
			continue;
		}
		snprintf(want, sizeof(want), "OPTIONS sip:a@x SIP/2.0\r\n%s" REST,
			 c->want);
		if (r != (int)strlen(want) || memcmp(out, want, (size_t)r) != 0)
			fail_msg("%s:\n got  %.*s\n want %s", c->name, r < 0 ? 0 : r,
				 out, want);
	}
}

static void
test_edge_sip__via_fix_reports_short_buffer(void **state)
{
	static const char m[] = "OPTIONS sip:a@x SIP/2.0\r\n"
		"Via: SIP/2.0/UDP 10.0.0.1;rport\r\n" REST;
	union env_sa src = sa("192.0.2.7", 5070);
	struct edge_sip_scan sc;
	char out[sizeof(m) + 64];
	int full;

	(void)state;
	assert_int_equal(edge_sip_scan(&sc, m, sizeof(m) - 1), 0);
	full = edge_sip_via_fix(m, sizeof(m) - 1, &sc, &src, out, sizeof(out));
	assert_true(full > (int)sizeof(m) - 1);
	for (size_t cap = 0; cap < (size_t)full; cap += 7)
		assert_int_equal(edge_sip_via_fix(m, sizeof(m) - 1, &sc, &src,
						  out, cap), -ENOSPC);
	assert_int_equal(edge_sip_via_fix(m, sizeof(m) - 1, &sc, &src, out,
					  (size_t)full), full);
}

static void
test_edge_sip__via_parse_reads_branch_and_port(void **state)
{
	static const char v[] = "SIP/2.0/UDP [::1]:5062;Branch=z9hG4bKsm2.ab;rport";
	struct edge_via via;

	(void)state;
	assert_int_equal(edge_sip_via_parse(&via, v, sizeof(v) - 1), 0);
	assert_int_equal(via.port, 5062);
	assert_int_equal(via.host.len, 3);
	assert_memory_equal(via.host.s, "::1", 3);
	assert_int_equal(via.transport.len, 3);
	assert_int_equal(via.branch.len, 13);
	assert_memory_equal(via.branch.s, "z9hG4bKsm2.ab", 13);
	assert_true(via.has_rport);
}

/* ---- checks ---- */

struct check_case {
	const char *name;
	const char *msg;
	const char *why;	/* NULL: accepted */
	size_t cut;		/* bytes dropped past Content-Length */
};

#define MSG(hdrs, body) "OPTIONS sip:a@x SIP/2.0\r\n" \
	"Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:b@x>;tag=1\r\n" \
	"To: <sip:a@x>\r\nCall-ID: c1\r\n" hdrs "\r\n" body
#define CS1 "CSeq: 1 OPTIONS\r\n"

static const struct check_case check_cases[] = {
	{ "good", MSG(CS1 "Content-Length: 0\r\n", ""), NULL, 0 },
	{ "no Content-Length", MSG(CS1, "abc"), NULL, 0 },
	{ "body past Content-Length cut", MSG(CS1 "l: 2\r\n", "abcd"), NULL, 2 },
	{ "Content-Length larger", MSG(CS1 "Content-Length: 5\r\n", "abcd"),
	  "Content-Length larger than the body", 0 },
	{ "Content-Length huge", MSG(CS1 "Content-Length: 4294967296\r\n", ""),
	  "Bad Content-Length", 0 },
	{ "Content-Length 2^31", MSG(CS1 "Content-Length: 2147483648\r\n", ""),
	  "Bad Content-Length", 0 },
	{ "Content-Length 20 digits",
	  MSG(CS1 "Content-Length: 99999999999999999999\r\n", ""),
	  "Bad Content-Length", 0 },
	{ "Content-Length negative", MSG(CS1 "Content-Length: -1\r\n", ""),
	  "Bad Content-Length", 0 },
	{ "Content-Length hex", MSG(CS1 "Content-Length: 0x0\r\n", ""),
	  "Bad Content-Length", 0 },
	{ "Content-Length empty", MSG(CS1 "Content-Length:\r\n", ""),
	  "Bad Content-Length", 0 },
	{ "Content-Length two numbers", MSG(CS1 "Content-Length: 1 1\r\n", "a"),
	  "Bad Content-Length", 0 },
	{ "Content-Length twice, different",
	  MSG(CS1 "Content-Length: 0\r\nl: 4\r\n", "abcd"),
	  "Conflicting Content-Length headers", 0 },
	/* libosip2 refuses a repeated one too, agreeing or not; that 400
	 * comes from the core's parse (ENV_REJECT): the edge forwards. */
	{ "Content-Length twice, the same",
	  MSG(CS1 "Content-Length: 4\r\nContent-Length: 4\r\n", "abcd"),
	  NULL, 0 },
	{ "CSeq not a number", MSG("CSeq: x OPTIONS\r\n", ""), "Bad CSeq number", 0 },
	{ "CSeq 2^31", MSG("CSeq: 2147483648 OPTIONS\r\n", ""), "Bad CSeq number", 0 },
	{ "CSeq 2^31-1", MSG("CSeq: 2147483647 OPTIONS\r\n", ""), NULL, 0 },
	{ "CSeq negative", MSG("CSeq: -1 OPTIONS\r\n", ""), "Bad CSeq number", 0 },
	{ "CSeq no method", MSG("CSeq: 1\r\n", ""), "Bad CSeq method", 0 },
	{ "CSeq trailing junk", MSG("CSeq: 1 OPTIONS x\r\n", ""), "Bad CSeq method", 0 },
	{ "CSeq other method", MSG("CSeq: 1 INVITE\r\n", ""),
	  "CSeq method does not match the request", 0 },
	{ "Max-Forwards 256", MSG(CS1 "Max-Forwards: 256\r\n", ""), "Bad Max-Forwards", 0 },
	{ "Max-Forwards text", MSG(CS1 "Max-Forwards: ten\r\n", ""), "Bad Max-Forwards", 0 },
	{ "Max-Forwards 0", MSG(CS1 "Max-Forwards: 0\r\n", ""), NULL, 0 },
	{ "no CSeq", MSG("", ""), "Missing CSeq header", 0 },
	{ "no Via", "OPTIONS sip:a@x SIP/2.0\r\nFrom: <sip:b@x>\r\nTo: <sip:a@x>\r\n"
	  "Call-ID: c\r\n" CS1 "\r\n", "Missing Via header", 0 },
	{ "no From", "OPTIONS sip:a@x SIP/2.0\r\nv: SIP/2.0/UDP h\r\nTo: <sip:a@x>\r\n"
	  "Call-ID: c\r\n" CS1 "\r\n", "Missing From header", 0 },
	{ "no To", "OPTIONS sip:a@x SIP/2.0\r\nv: SIP/2.0/UDP h\r\nf: <sip:a@x>\r\n"
	  "Call-ID: c\r\n" CS1 "\r\n", "Missing To header", 0 },
	{ "no Call-ID", "OPTIONS sip:a@x SIP/2.0\r\nv: SIP/2.0/UDP h\r\nf: <sip:a@x>\r\n"
	  "t: <sip:a@x>\r\n" CS1 "\r\n", "Missing Call-ID header", 0 },
	{ "empty Call-ID", "OPTIONS sip:a@x SIP/2.0\r\nv: SIP/2.0/UDP h\r\nf: <sip:a@x>\r\n"
	  "t: <sip:a@x>\r\ni:\r\n" CS1 "\r\n", "Empty Call-ID", 0 },
	{ "bad Via", "OPTIONS sip:a@x SIP/2.0\r\nv: SIP/2.0/UDP h:99999\r\nf: <sip:a@x>\r\n"
	  "t: <sip:a@x>\r\ni: c\r\n" CS1 "\r\n", "Bad Via header", 0 },
	{ "line without colon", MSG(CS1 "Garbage\r\n", ""),
	  "Header line without a colon", 0 },
	{ "no end of headers", "OPTIONS sip:a@x SIP/2.0\r\nv: SIP/2.0/UDP h\r\n"
	  "f: <sip:a@x>\r\nt: <sip:a@x>\r\ni: c\r\n" CS1,
	  "No empty line after the headers", 0 },
	{ "libosip2 refuses the From", "OPTIONS sip:a@x SIP/2.0\r\nv: SIP/2.0/UDP h\r\n"
	  "f: <sip:a@x\r\nt: <sip:a@x>\r\ni: c\r\n" CS1 "\r\n",
	  NULL, 0 },
	{ "response ok", "SIP/2.0 200 OK\r\nv: SIP/2.0/UDP h;branch=z9hG4bKsm1.1\r\n"
	  "f: <sip:a@x>;tag=1\r\nt: <sip:a@x>;tag=2\r\ni: c\r\nCSeq: 1 INVITE\r\n\r\n",
	  NULL, 0 },
	/* No 400 answers a response: libosip2's verdict is its core's to
	 * take (it drops it). */
	{ "response libosip2 refuses", "SIP/2.0 200 OK\r\n"
	  "v: SIP/2.0/UDP h;branch=z9hG4bKsm1.1\r\nf: <sip:a@x\r\n"
	  "t: <sip:a@x>;tag=2\r\ni: c\r\nCSeq: 1 INVITE\r\n\r\n", NULL, 0 },
};

static void
test_edge_sip__check_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(check_cases) / sizeof(*check_cases); i++) {
		const struct check_case *c = &check_cases[i];
		size_t len = strlen(c->msg), use = 0;
		struct edge_sip_scan sc;
		const char *why;

		assert_int_equal(edge_sip_scan(&sc, c->msg, len), 0);
		why = edge_sip_check(&sc, len, &use);
		if ((why == NULL) != (c->why == NULL) ||
		    (why && strcmp(why, c->why) != 0))
			fail_msg("%s: got \"%s\", want \"%s\"", c->name,
				 why ? why : "ok", c->why ? c->why : "ok");
		if (why == NULL && use != len - c->cut)
			fail_msg("%s: use %zu of %zu", c->name, use, len);
	}
}

/* ---- replies ---- */

static const char req[] =
	"INVITE sip:a@x SIP/2.0\r\n"
	"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1;received=192.0.2.7\r\n"
	"Max-Forwards: 70\r\n"
	"v: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2,SIP/2.0/UDP 10.0.0.3\r\n"
	"From: \"x;tag=no\" <sip:b@x;tag=no>;tag=1\r\n"
	"To: <sip:a@x;tag=not-this>\r\n"
	"Contact: <sip:b@10.0.0.1>\r\n"
	"i: c1\r\n"
	"CSeq: 10\r\n INVITE\r\n"
	"To: <sip:dup@x>\r\n"
	"Content-Length: 0\r\n\r\n";

static void
test_edge_sip__reply_copies_the_right_headers(void **state)
{
	static const char want_head[] =
		"SIP/2.0 400 Bad Request\r\n"
		"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1;received=192.0.2.7\r\n"
		"v: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2,SIP/2.0/UDP 10.0.0.3\r\n"
		"From: \"x;tag=no\" <sip:b@x;tag=no>;tag=1\r\n"
		"To: <sip:a@x;tag=not-this>;tag=sm";
	static const char want_tail[] =
		"i: c1\r\n"
		"CSeq: 10\r\n INVITE\r\n"
		"Warning: 399 sipmesh-edge \"Bad CSeq\"\r\n"
		"Content-Length: 0\r\n\r\n";
	struct edge_sip_scan sc;
	char out[1024], again[1024];
	int n;

	(void)state;
	assert_int_equal(edge_sip_scan(&sc, req, sizeof(req) - 1), 0);
	n = edge_sip_reply_build(out, sizeof(out), req, sizeof(req) - 1, &sc,
				 400, "Bad Request", "Bad CSeq");
	assert_true(n > 0);
	assert_memory_equal(out, want_head, sizeof(want_head) - 1);
	/* "sm" + 16 hex digits of tag, then the line ends */
	assert_memory_equal(out + sizeof(want_head) - 1 + 16, "\r\n", 2);
	assert_int_equal(n, sizeof(want_head) - 1 + 18 + sizeof(want_tail) - 1);
	assert_memory_equal(out + n - (sizeof(want_tail) - 1), want_tail,
			    sizeof(want_tail) - 1);
	/* A retransmission gets the very same reply. */
	assert_int_equal(edge_sip_reply_build(again, sizeof(again), req,
					      sizeof(req) - 1, &sc, 400,
					      "Bad Request", "Bad CSeq"), n);
	assert_memory_equal(out, again, (size_t)n);
	for (int cap = 0; cap < n; cap += 5)
		assert_int_equal(edge_sip_reply_build(out, (size_t)cap, req,
						      sizeof(req) - 1, &sc, 400,
						      "Bad Request", "Bad CSeq"),
				 -ENOSPC);
}

static void
test_edge_sip__reply_keeps_an_existing_to_tag(void **state)
{
	static const char m[] = "BYE sip:a@x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n"
		"From: <sip:b@x>;tag=1\r\nTo: <sip:a@x> ; TAG = 2\r\n"
		"Call-ID: c\r\nCSeq: 2 BYE\r\n\r\n";
	static const char want[] = "SIP/2.0 503 Service Unavailable\r\n"
		"Via: SIP/2.0/UDP h\r\nFrom: <sip:b@x>;tag=1\r\n"
		"To: <sip:a@x> ; TAG = 2\r\nCall-ID: c\r\nCSeq: 2 BYE\r\n"
		"Retry-After: 5\r\nContent-Length: 0\r\n\r\n";
	struct edge_sip_scan sc;
	char out[512];

	(void)state;
	assert_int_equal(edge_sip_scan(&sc, m, sizeof(m) - 1), 0);
	assert_int_equal(edge_sip_reply_build(out, sizeof(out), m, sizeof(m) - 1,
					      &sc, 503, "Service Unavailable",
					      NULL), sizeof(want) - 1);
	assert_memory_equal(out, want, sizeof(want) - 1);
}

static void
test_edge_sip__reply_needs_only_a_via(void **state)
{
	static const char nofrom[] = "OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n"
		"To: <sip:a@x>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n";
	static const char nocid[] = "OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n"
		"From: <sip:a@x>;tag=1\r\nTo: <sip:a@x>\r\nCSeq: 1 OPTIONS\r\n\r\n";
	static const char novia[] = "OPTIONS sip:a SIP/2.0\r\nFrom: <sip:a@x>\r\n"
		"To: <sip:a@x>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n";
	static const char ack[] = "ACK sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n"
		"From: <sip:a@x>\r\nTo: <sip:a@x>\r\nCall-ID: c\r\nCSeq: 1 ACK\r\n\r\n";
	static const char resp[] = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n"
		"From: <sip:a@x>\r\nTo: <sip:a@x>\r\nCall-ID: c\r\nCSeq: 1 ACK\r\n\r\n";
	struct edge_sip_scan sc;
	char out[512];
	int n;

	(void)state;
	/* Missing From: answered, with the headers it has. */
	assert_int_equal(edge_sip_scan(&sc, nofrom, sizeof(nofrom) - 1), 0);
	assert_true(edge_sip_can_reply(&sc));
	n = edge_sip_reply_build(out, sizeof(out), nofrom, sizeof(nofrom) - 1,
				 &sc, 400, "Bad Request", "Missing From header");
	assert_true(n > 0);
	out[n] = '\0';
	assert_non_null(strstr(out, "SIP/2.0 400 Bad Request\r\n"));
	assert_non_null(strstr(out, "Via: SIP/2.0/UDP h\r\n"));
	assert_non_null(strstr(out, "Call-ID: c\r\n"));
	assert_null(strstr(out, "From:"));
	assert_non_null(strstr(out, "Missing From header"));
	/* Missing Call-ID: answered too, To still gets its tag. */
	assert_int_equal(edge_sip_scan(&sc, nocid, sizeof(nocid) - 1), 0);
	assert_true(edge_sip_can_reply(&sc));
	n = edge_sip_reply_build(out, sizeof(out), nocid, sizeof(nocid) - 1,
				 &sc, 400, "Bad Request", NULL);
	assert_true(n > 0);
	out[n] = '\0';
	assert_non_null(strstr(out, "To: <sip:a@x>;tag=sm"));
	/* No Via: nowhere to send a reply. */
	assert_int_equal(edge_sip_scan(&sc, novia, sizeof(novia) - 1), 0);
	assert_false(edge_sip_can_reply(&sc));
	assert_int_equal(edge_sip_reply_build(out, sizeof(out), novia,
					      sizeof(novia) - 1, &sc, 400,
					      "Bad Request", NULL), -EINVAL);
	assert_int_equal(edge_sip_scan(&sc, ack, sizeof(ack) - 1), 0);
	assert_false(edge_sip_can_reply(&sc));	/* never answer an ACK */
	assert_int_equal(edge_sip_scan(&sc, resp, sizeof(resp) - 1), 0);
	assert_false(edge_sip_can_reply(&sc));
	assert_int_equal(edge_sip_reply_build(out, sizeof(out), resp,
					      sizeof(resp) - 1, &sc, 400,
					      "Bad Request", NULL), -EINVAL);
	assert_int_equal(edge_sip_scan(&sc, req, sizeof(req) - 1), 0);
	assert_true(edge_sip_can_reply(&sc));
}

/* ---- the name a TLS next hop must prove ---- */

struct hop_case {
	const char *what;
	const char *msg;
	int rc;
	const char *host;
};

#define VIA "Via: SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bK1\r\n"

static const struct hop_case hop_cases[] = {
	{ "Request-URI host", "MESSAGE sip:bob@peer.test SIP/2.0\r\n" VIA
	  "\r\n", 0, "peer.test" },
	{ "sips:, port, params", "INVITE sips:bob@Peer.Test:5071;transport=tls"
	  " SIP/2.0\r\n" VIA "\r\n", 0, "Peer.Test" },
	{ "maddr does not replace the host", "MESSAGE sip:b@peer.test:5061;"
	  "transport=tls;maddr=127.0.0.1 SIP/2.0\r\n" VIA "\r\n", 0,
	  "peer.test" },
	{ "no userinfo", "OPTIONS sip:peer.test SIP/2.0\r\n" VIA "\r\n", 0,
	  "peer.test" },
	{ "numeric host", "MESSAGE sip:b@127.0.0.1:5071;transport=tls SIP/2.0"
	  "\r\n" VIA "\r\n", 0, "127.0.0.1" },
	{ "IPv6 host without brackets", "MESSAGE sip:b@[::1]:5071 SIP/2.0\r\n"
	  VIA "\r\n", 0, "::1" },
	{ "user with '@' escaped and params", "MESSAGE sip:a%40b;x=y@peer.test"
	  " SIP/2.0\r\n" VIA "\r\n", 0, "peer.test" },
	{ "'@' in URI headers is not userinfo", "MESSAGE sip:peer.test?"
	  "Subject=a@b SIP/2.0\r\n" VIA "\r\n", 0, "peer.test" },
	{ "top Route wins", "MESSAGE sip:b@peer.test SIP/2.0\r\n" VIA
	  "Route: <sip:proxy.test;lr>, <sip:second.test;lr>\r\n"
	  "Route: <sip:third.test;lr>\r\n\r\n", 0, "proxy.test" },
	{ "Route with a display name", "BYE sip:b@10.0.0.9 SIP/2.0\r\n" VIA
	  "route: \"p\" <sips:p.test:5061;lr>\r\n\r\n", 0, "p.test" },
	{ "response: top Via sent-by", "SIP/2.0 200 OK\r\n"
	  "Via: SIP/2.0/TLS phone.test:5061;branch=z9hG4bK1\r\n"
	  "Via: SIP/2.0/TLS other.test;branch=z9hG4bK2\r\n\r\n", 0,
	  "phone.test" },
	{ "not a SIP URI", "MESSAGE tel:+15551234 SIP/2.0\r\n" VIA "\r\n",
	  -EINVAL, NULL },
	{ "empty host", "MESSAGE sip:b@ SIP/2.0\r\n" VIA "\r\n", -EINVAL,
	  NULL },
	{ "unclosed IPv6", "MESSAGE sip:b@[::1 SIP/2.0\r\n" VIA "\r\n",
	  -EINVAL, NULL },
	{ "Route without '>'", "MESSAGE sip:b@x SIP/2.0\r\n" VIA
	  "Route: <sip:p.test;lr\r\n\r\n", -EINVAL, NULL },
	{ "response without Via", "SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n",
	  -EINVAL, NULL },
	{ "host longer than out", "MESSAGE sip:b@a-host-name-longer-than-"
	  "thirty-two.test SIP/2.0\r\n" VIA "\r\n", -ENOSPC, NULL },
};

static void
test_edge_sip__next_hop_host_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(hop_cases) / sizeof(*hop_cases); i++) {
		const struct hop_case *t = &hop_cases[i];
		struct edge_sip_scan sc;
		char out[32];
		int rc;

		assert_int_equal(edge_sip_scan(&sc, t->msg, strlen(t->msg)), 0);
		rc = edge_sip_next_hop_host(&sc, t->msg, strlen(t->msg), out,
					    sizeof(out));
		if (rc != t->rc)
			fail_msg("%s: rc %d, want %d", t->what, rc, t->rc);
		if (t->host && strcmp(out, t->host) != 0)
			fail_msg("%s: host \"%s\", want \"%s\"", t->what, out,
				 t->host);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edge_sip__scan_finds_compact_and_folded_headers),
		cmocka_unit_test(test_edge_sip__scan_reads_responses_and_bare_lf),
		cmocka_unit_test(test_edge_sip__scan_rejects_bad_start_lines),
		cmocka_unit_test(test_edge_sip__scan_flags_lines_without_colon_and_no_end),
		cmocka_unit_test(test_edge_sip__via_fix_table),
		cmocka_unit_test(test_edge_sip__via_fix_reports_short_buffer),
		cmocka_unit_test(test_edge_sip__via_parse_reads_branch_and_port),
		cmocka_unit_test(test_edge_sip__check_table),
		cmocka_unit_test(test_edge_sip__reply_copies_the_right_headers),
		cmocka_unit_test(test_edge_sip__reply_keeps_an_existing_to_tag),
		cmocka_unit_test(test_edge_sip__reply_needs_only_a_via),
		cmocka_unit_test(test_edge_sip__next_hop_host_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
