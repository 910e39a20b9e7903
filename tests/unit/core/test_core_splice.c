/*
 * test_core_splice.c - the forwarded copy written by editing the
 * received bytes, and the responses written from a request's bytes
 * (core_splice.c): every form RFC 3261 allows for the
 * headers it edits (compact names, several values in one line, folding,
 * commas inside quotes and <...>, LF-only lines), the headers it must
 * leave alone, and input it must refuse.  Each result is also parsed by
 * libosip2, as the next hop would.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <osipparser2/osip_message.h>
#include <osipparser2/osip_parser.h>

#include "core/core_splice.h"

#define REQ_HEAD "MESSAGE sip:bob@example.com SIP/2.0\r\n"
#define RESP_HEAD "SIP/2.0 200 OK\r\n"
#define COMMON "From: <sip:alice@example.com>;tag=1\r\n" \
	       "To: <sip:bob@example.com>\r\nCall-ID: c1\r\n" \
	       "CSeq: 1 MESSAGE\r\n"

static char out[4096];

static int
splice(const char *in, struct core_splice *sp)
{
	int n = core_splice(out, sizeof(out) - 1, in, strlen(in), sp);

	if (n >= 0)
		out[n] = '\0';
	return n;
}

static void
expect(const char *in, struct core_splice *sp, const char *want)
{
	int n = splice(in, sp);

	if (n < 0)
		fail_msg("splice failed: %d on\n%s", n, in);
	if (strcmp(out, want) != 0)
		fail_msg("got\n%s\nwant\n%s", out, want);
}

/* libosip2 reads the result with the Vias, Routes and Max-Forwards we
 * meant. */
static void
osip_check(int vias, const char *top_via_host, int routes, int mf)
{
	osip_message_t *m = NULL;
	osip_header_t *h = NULL;
	osip_via_t *v;

	assert_int_equal(osip_message_init(&m), 0);
	if (osip_message_parse(m, out, strlen(out)) != 0)
		fail_msg("libosip2 refuses\n%s", out);
	assert_int_equal(osip_list_size(&m->vias), vias);
	if (top_via_host) {
		v = osip_list_get(&m->vias, 0);
		assert_string_equal(v->host, top_via_host);
	}
	assert_int_equal(osip_list_size(&m->routes), routes);
	if (mf >= 0) {
		assert_true(osip_message_get_max_forwards(m, 0, &h) >= 0);
		assert_int_equal(atoi(h->hvalue), mf);
	}
	osip_message_free(m);
}

/* A response loses its top Via: a line of its own, or the first value
 * of a line that holds several, in long or compact form, folded or
 * not, with commas inside a quoted parameter left alone. */
static void
test_core_splice__via_pop_forms(void **state)
{
	static const struct {
		const char *in, *want;
		int vias;
		const char *top;
	} cases[] = {
		{ RESP_HEAD "Via: SIP/2.0/UDP p1;branch=z9hG4bK1\r\n"
		  "Via: SIP/2.0/UDP u1;branch=z9hG4bK2\r\n" COMMON
		  "Content-Length: 0\r\n\r\n",
		  RESP_HEAD "Via: SIP/2.0/UDP u1;branch=z9hG4bK2\r\n" COMMON
		  "Content-Length: 0\r\n\r\n", 1, "u1" },
		{ RESP_HEAD "Via: SIP/2.0/UDP p1;branch=z9hG4bK1, "
		  "SIP/2.0/UDP u1;branch=z9hG4bK2\r\n" COMMON
		  "Content-Length: 0\r\n\r\n",
		  RESP_HEAD "Via: SIP/2.0/UDP u1;branch=z9hG4bK2\r\n" COMMON
		  "Content-Length: 0\r\n\r\n", 1, "u1" },
		{ RESP_HEAD "v: SIP/2.0/UDP p1;branch=z9hG4bK1,SIP/2.0/UDP "
		  "u1;branch=z9hG4bK2,SIP/2.0/UDP u2;branch=z9hG4bK3\r\n"
		  COMMON "l: 0\r\n\r\n",
		  RESP_HEAD "v: SIP/2.0/UDP u1;branch=z9hG4bK2,SIP/2.0/UDP "
		  "u2;branch=z9hG4bK3\r\n" COMMON "l: 0\r\n\r\n", 2, "u1" },
		{ RESP_HEAD "VIA : SIP/2.0/UDP p1;branch=z9hG4bK1,\r\n"
		  " SIP/2.0/UDP u1;branch=z9hG4bK2\r\n" COMMON
		  "Content-Length: 0\r\n\r\n",
		  RESP_HEAD "VIA : SIP/2.0/UDP u1;branch=z9hG4bK2\r\n" COMMON
		  "Content-Length: 0\r\n\r\n", 1, "u1" },
		{ RESP_HEAD "Via: SIP/2.0/UDP p1\r\n\t;branch=z9hG4bK1\r\n"
		  "Via: SIP/2.0/UDP u1;branch=z9hG4bK2\r\n" COMMON
		  "Content-Length: 0\r\n\r\n",
		  RESP_HEAD "Via: SIP/2.0/UDP u1;branch=z9hG4bK2\r\n" COMMON
		  "Content-Length: 0\r\n\r\n", 1, "u1" },
		{ RESP_HEAD "Via: SIP/2.0/UDP p1;x=\"a,b\\\",c\";branch=z9hG4bK1"
		  " , SIP/2.0/UDP u1;branch=z9hG4bK2\r\n" COMMON
		  "Content-Length: 0\r\n\r\n",
		  RESP_HEAD "Via: SIP/2.0/UDP u1;branch=z9hG4bK2\r\n" COMMON
		  "Content-Length: 0\r\n\r\n", 1, "u1" },
		/* LF alone ends lines too */
		{ "SIP/2.0 200 OK\nVia: SIP/2.0/UDP p1;branch=z9hG4bK1\n"
		  "Via: SIP/2.0/UDP u1;branch=z9hG4bK2\nCall-ID: c1\n"
		  "Content-Length: 0\n\n",
		  "SIP/2.0 200 OK\nVia: SIP/2.0/UDP u1;branch=z9hG4bK2\n"
		  "Call-ID: c1\nContent-Length: 0\n\n", 1, NULL },
	};
	struct core_splice sp = { .via_pop = 1, .max_forwards = -1 };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		expect(cases[i].in, &sp, cases[i].want);
		assert_int_equal(sp.n_via, cases[i].vias + 1);
		if (cases[i].top)
			osip_check(cases[i].vias, cases[i].top, 0, -1);
	}
}

/* Headers that only look like the edited ones are copied, and so is
 * the body, even when it reads like headers. */
static void
test_core_splice__leaves_the_rest(void **state)
{
	const char *in = RESP_HEAD "Via-Extra: x, y\r\nRecord-Route: <sip:r1;lr>, "
			 "<sip:r2;lr>\r\nVia: SIP/2.0/UDP p1;branch=z9hG4bK1\r\n"
			 "Via: SIP/2.0/UDP u1;branch=z9hG4bK2\r\n" COMMON
			 "X-Folded: a,\r\n  b\r\nContent-Type: text/plain\r\n"
			 "Content-Length: 31\r\n\r\nVia: SIP/2.0/UDP body\r\nRoute: x";
	const char *want = RESP_HEAD "Via-Extra: x, y\r\nRecord-Route: <sip:r1;lr>, "
			   "<sip:r2;lr>\r\nVia: SIP/2.0/UDP u1;branch=z9hG4bK2\r\n"
			   COMMON "X-Folded: a,\r\n  b\r\nContent-Type: text/plain\r\n"
			   "Content-Length: 31\r\n\r\nVia: SIP/2.0/UDP body\r\nRoute: x";
	struct core_splice sp = { .via_pop = 1, .route_pop = 1,
				  .max_forwards = -1 };

	(void)state;
	/* a Route to pop is not there: Record-Route is not one */
	assert_int_equal(splice(in, &sp), -EINVAL);
	sp.route_pop = 0;
	expect(in, &sp, want);
	osip_check(1, "u1", 0, -1);
}

#define FWD_HEAD "MESSAGE sip:bob@192.0.2.7:5062 SIP/2.0\r\n" \
		 "Via: SIP/2.0/UDP edge;branch=z9hG4bKsm1\r\n" \
		 "Record-Route: <sip:edge;lr>\r\n"
#define UAC_VIA "Via: SIP/2.0/UDP u1;branch=z9hG4bK2\r\n"
#define TAIL COMMON "Content-Length: 0\r\n"

/* A request gets a new start line, our Via and Record-Route on top,
 * Max-Forwards one less (written in place, or added when it had none),
 * and loses the Route values that named us: one line of its own, the
 * first values of a line, values across lines, with commas inside
 * <...> and quoted display names. */
static void
test_core_splice__request_edits(void **state)
{
	static const char start[] = "MESSAGE sip:bob@192.0.2.7:5062 SIP/2.0\r\n";
	static const char top[] = "Via: SIP/2.0/UDP edge;branch=z9hG4bKsm1\r\n"
				  "Record-Route: <sip:edge;lr>\r\n";
	static const struct {
		int route_pop, mf;
		const char *in, *want;
		int routes;	/* left, for libosip2; -1: not checked */
	} cases[] = {
		{ 1, 69, REQ_HEAD "Route: <sip:edge;lr>\r\nRoute: <sip:next;lr>\r\n"
		  UAC_VIA "Max-Forwards:  70 \r\n" TAIL "\r\n",
		  FWD_HEAD "Route: <sip:next;lr>\r\n" UAC_VIA
		  "Max-Forwards:  69 \r\n" TAIL "\r\n", 1 },
		/* commas inside quotes and <...>, a value folded */
		{ 2, 69, REQ_HEAD "Route: \"a, <b>\" <sip:edge;lr;x=\"1,2\">, "
		  "<sip:e2,x;lr>,\r\n <sip:next;lr>\r\n" UAC_VIA TAIL "\r\n",
		  FWD_HEAD "Route: <sip:next;lr>\r\n" UAC_VIA TAIL
		  "Max-Forwards: 69\r\n\r\n", 1 },
		/* values across lines */
		{ 2, 69, REQ_HEAD "Route: <sip:edge;lr>\r\nroute: <sip:e2;lr>, "
		  "<sip:next;lr>\r\n" UAC_VIA "Max-Forwards: 1\r\n" TAIL "\r\n",
		  FWD_HEAD "route: <sip:next;lr>\r\n" UAC_VIA
		  "Max-Forwards: 69\r\n" TAIL "\r\n", -1 },
		/* an initial request loses every Route, however many */
		{ CORE_SPLICE_ROUTES_ALL, 0, REQ_HEAD "Route: <sip:a;lr>,<sip:b;lr>\r\n"
		  "Route: <sip:c;lr>\r\n" UAC_VIA "Max-Forwards: 1\r\n" TAIL "\r\n",
		  FWD_HEAD UAC_VIA "Max-Forwards: 0\r\n" TAIL "\r\n", 0 },
		{ CORE_SPLICE_ROUTES_ALL, 0, REQ_HEAD UAC_VIA TAIL "\r\n",
		  FWD_HEAD UAC_VIA TAIL "Max-Forwards: 0\r\n\r\n", 0 },
	};
	struct core_splice sp = {
		.start = start, .start_len = sizeof(start) - 1,
		.top = top, .top_len = sizeof(top) - 1,
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		sp.route_pop = cases[i].route_pop;
		sp.max_forwards = cases[i].mf;
		expect(cases[i].in, &sp, cases[i].want);
		if (cases[i].routes >= 0)
			osip_check(2, "edge", cases[i].routes, cases[i].mf);
	}
}

/* It counts the Via and Route values it sees, so the core can check
 * that libosip2 saw the same: libosip2 skips a Route it cannot parse
 * (found by fuzz_core_splice), and popping "the first Route" would then
 * mean two different values. */
static void
test_core_splice__counts_values(void **state)
{
	const char *in = "MESSAGE sip:b@example.com SIP/2.0\r\n"
			 "Via: SIP/2.0/WSS x.invalid;branch=z9hG4bKabc\r\n"
			 "Max-Forwards: 70\r\n"
			 "Route: <sip:[2001:db8::1]:5061;tranplain\r\n"
			 "Via:\r\nContent-Length: 5\r\n\r\nhello";
	struct core_splice sp = { .max_forwards = -1 };
	osip_message_t *m = NULL;

	(void)state;
	/* nothing to edit: every byte stays, the empty Via too */
	expect(in, &sp, in);
	assert_int_equal(sp.n_via, 1);
	assert_int_equal(sp.n_route, 1);
	assert_int_equal(osip_message_init(&m), 0);
	if (osip_message_parse(m, in, strlen(in)) == 0)
		assert_int_not_equal(osip_list_size(&m->routes), sp.n_route);
	osip_message_free(m);
}

static int
reply(const char *in, const char *tag, int n_via)
{
	static const char tail[] = "Server: sipmesh\r\nContent-Length: 0\r\n\r\n";
	struct core_splice_reply rp = {
		.start = "SIP/2.0 200 OK\r\n", .to_tag = tag, .n_via = n_via,
		.tail = tail, .tail_len = sizeof(tail) - 1,
	};
	int n = core_splice_reply(out, sizeof(out) - 1, in, strlen(in), &rp);

	if (n >= 0)
		out[n] = '\0';
	return n;
}

/* A response made up for a request copies its Via lines (all, in
 * order, compact or folded), From, To (our tag appended, inside a fold
 * too, or none when it has one), Call-ID and CSeq, and nothing else. */
static void
test_core_splice__reply(void **state)
{
	osip_message_t *m = NULL;
	osip_generic_param_t *t = NULL;
	int n;

	(void)state;
	n = reply("REGISTER sip:example.com SIP/2.0\r\n"
			       "v: SIP/2.0/UDP u1;branch=z9hG4bK1;rport=5060;"
			       "received=192.0.2.1, SIP/2.0/UDP u0;branch=z9hG4bK0\r\n"
			       "Max-Forwards: 70\r\nf: <sip:a@example.com>;tag=1\r\n"
			       "t: \"A, B\"\r\n <sip:a@example.com>\r\n"
			       "i: c1\r\nCSeq: 7 REGISTER\r\n"
			       "Contact: <sip:a@192.0.2.1>\r\nl: 0\r\n\r\n",
			       "sm1", 2);
	assert_int_equal(n, (int)strlen(out));
	assert_string_equal(out, "SIP/2.0 200 OK\r\n"
			    "v: SIP/2.0/UDP u1;branch=z9hG4bK1;rport=5060;"
			    "received=192.0.2.1, SIP/2.0/UDP u0;branch=z9hG4bK0\r\n"
			    "f: <sip:a@example.com>;tag=1\r\n"
			    "t: \"A, B\"\r\n <sip:a@example.com>;tag=sm1\r\n"
			    "i: c1\r\nCSeq: 7 REGISTER\r\n"
			    "Server: sipmesh\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(osip_message_init(&m), 0);
	assert_int_equal(osip_message_parse(m, out, strlen(out)), 0);
	assert_int_equal(m->status_code, 200);
	assert_int_equal(osip_list_size(&m->vias), 2);
	assert_int_equal(osip_to_get_tag(m->to, &t), 0);
	assert_string_equal(t->gvalue, "sm1");
	assert_string_equal(m->call_id->number, "c1");
	assert_null(m->contacts.node);
	osip_message_free(m);

	/* a To with a tag keeps it; an addr-spec To takes the tag too */
	assert_true(reply("BYE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP u1\r\n"
			  "From: sip:a@x;tag=1\r\nTo: sip:b@x;tag=2\r\n"
			  "Call-ID: c\r\nCSeq: 2 BYE\r\n\r\n", NULL, 1) > 0);
	assert_non_null(strstr(out, "\r\nTo: sip:b@x;tag=2\r\n"));
	assert_true(reply("OPTIONS sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP u1\r\n"
			  "From: sip:a@x;tag=1\r\nTo: sip:b@x \r\n"
			  "Call-ID: c\r\nCSeq: 2 OPTIONS\r\n\r\n", "sm2", 1) > 0);
	assert_non_null(strstr(out, "\r\nTo: sip:b@x;tag=sm2 \r\n"));
	/* an empty To gets its tag before the line end, not after it */
	assert_true(reply("OPTIONS sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP u1\r\n"
			  "From: sip:a@x;tag=1\r\nto:\r\nCall-ID: c\r\n"
			  "CSeq: 2 OPTIONS\r\n\r\n", "sm3", 1) > 0);
	assert_non_null(strstr(out, "\r\nto:;tag=sm3\r\nCall-ID: c\r\n"));
}

/* Where the text does not hold what libosip2 read (two To headers,
 * another count of Vias, no CSeq) it refuses: the core then builds the
 * response from the parse. */
static void
test_core_splice__reply_refuses(void **state)
{
	static const struct {
		const char *in;
		int n_via;
	} bad[] = {
		{ "OPTIONS sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP u1\r\n"
		  "From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nt: <sip:c@x>\r\n"
		  "Call-ID: c\r\nCSeq: 2 OPTIONS\r\n\r\n", 1 },
		{ "OPTIONS sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP u1\r\n"
		  "From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\n"
		  "Call-ID: c\r\nCSeq: 2 OPTIONS\r\n\r\n", 2 },
		{ "OPTIONS sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP u1\r\n"
		  "From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\n"
		  "Call-ID: c\r\n\r\n", 1 },
		{ "OPTIONS sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP u1\r\n"
		  "From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\n"
		  "Call-ID: c\r\nCSeq: 2 OPTIONS\r\n", 1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		if (reply(bad[i].in, "sm1", bad[i].n_via) != -EINVAL)
			fail_msg("accepted case %zu", i);
}

/* What it cannot edit it refuses, and it never writes past out. */
static void
test_core_splice__refuses(void **state)
{
	static const char *bad[] = {
		"",
		"SIP/2.0 200 OK",				/* no line end */
		RESP_HEAD "Via: SIP/2.0/UDP p1\r\n",		/* no blank line */
		RESP_HEAD "Via: SIP/2.0/UDP p1\r\nCall-ID: x",	/* cut */
		RESP_HEAD "Via: SIP/2.0/UDP p1\r\n x",		/* cut fold */
		RESP_HEAD COMMON "\r\n",			/* no Via */
		RESP_HEAD "Via-X: SIP/2.0/UDP p1\r\n\r\n",	/* not a Via */
		/* a CR alone ends a line for libosip2, not here */
		RESP_HEAD "Via: SIP/2.0/UDP p1\r\nFrom:\r\roR\r\n\r\n",
		"\r\nVia: SIP/2.0/UDP p1\r\nCall-ID: x\r\n\r\n",	/* no start */
		/* no SP after the code: libosip2 reads the next line as the
		 * reason phrase, so it would see one Via fewer */
		"SIP/2.0 200\r\nv: SIP/2.0/UDP p1\r\nVia: SIP/2.0/UDP u1\r\n"
		COMMON "\r\n",
		"MESSAGE sip:b@x\r\nVia: SIP/2.0/UDP p1\r\n" COMMON "\r\n",
		RESP_HEAD "Via: SIP/2.0/UDP p1\r\nGarbage\r\n\r\n",	/* no colon */
		/* line ends mixed: libosip2 may end the headers elsewhere */
		RESP_HEAD "Via: SIP/2.0/UDP p1\r\nCall-ID: x\n\r\n",
		RESP_HEAD "Via: SIP/2.0/UDP p1\r\nCall-ID: x\r\n\n",
		"SIP/2.0 200 OK\nVia: SIP/2.0/UDP p1\nCall-ID: x\r\n\n",
		/* nothing but the Via popped: no header would be left */
		RESP_HEAD "Via: SIP/2.0/UDP p1\r\n\r\nVia: x\r\n",
	};
	struct core_splice sp = { .via_pop = 1, .max_forwards = -1 };
	const char *ok = RESP_HEAD "Via: SIP/2.0/UDP p1\r\nVia: SIP/2.0/UDP u1\r\n"
			 COMMON "Content-Length: 0\r\n\r\n";
	size_t want = strlen(ok) - strlen("Via: SIP/2.0/UDP p1\r\n");
	char small[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		if (splice(bad[i], &sp) != -EINVAL)
			fail_msg("accepted case %zu", i);
	sp.via_pop = 0;
	sp.route_pop = 1;
	assert_int_equal(splice(ok, &sp), -EINVAL);	/* no Route */
	sp.via_pop = 1;
	sp.route_pop = 0;
	for (size_t cap = 0; cap < want; cap++) {
		memset(small, 0x55, sizeof(small));
		assert_int_equal(core_splice(small, cap, ok, strlen(ok), &sp),
				 -ENOSPC);
		for (size_t j = cap; j < sizeof(small); j++)
			assert_int_equal((unsigned char)small[j], 0x55);
	}
	assert_int_equal(core_splice(small, want, ok, strlen(ok), &sp),
			 (int)want);
}

#define SCAN_VIA "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKsm1.2.3\r\n"
#define SCAN_REST "To: <sip:b@x>;tag=1\r\nFrom: \"A\" <sip:a@x>;tag=2\r\n" \
		  "Call-ID: c1@h\r\nCSeq: 7 INVITE\r\n"

/* What the scan reads, and libosip2 reads the same. */
static void
test_core_splice__scan_reads(void **state)
{
	static const struct {
		const char *in;
		int code, n_via;
		const char *branch, *call_id, *method;
		size_t body_len;
	} ok[] = {
		{ RESP_HEAD SCAN_VIA SCAN_REST "\r\n", 200, 1,
		  "z9hG4bKsm1.2.3", "c1@h", "INVITE", 0 },
		/* compact names, two values in a line, IPv6, LF only */
		{ "SIP/2.0 180 Ringing\nv: SIP/2.0/TCP [2001:db8::1]:5061;"
		  "rport;branch=z9hG4bKa, SIP/2.0/UDP h.example;branch=b\n"
		  "t: <sip:b@x>\nf: B <sips:a@x;transport=tls>;tag=2\n"
		  "i: id\nCSeq: 1 MESSAGE\nm: <sip:b@[2001:db8::2]>\n"
		  "l: 0\n\n", 180, 2, "z9hG4bKa", "id", "MESSAGE", 0 },
		/* Vias over two lines, other headers folded, a body */
		{ RESP_HEAD SCAN_VIA "Via: SIP/2.0/UDP u1;received=10.0.0.1;"
		  "branch=x\r\nSubject: a\r\n b\r\n" SCAN_REST
		  "Content-Type: application/sdp\r\nContent-Length: 5\r\n"
		  "\r\nv=0\r\n", 200, 2, "z9hG4bKsm1.2.3", "c1@h", "INVITE", 5 },
		/* empty From: libosip2 skips it */
		{ "SIP/2.0 603 No\r\n" SCAN_VIA "From:\r\nCall-ID: c\r\n"
		  "CSeq: 2 BYE\r\n\r\n", 603, 1, "z9hG4bKsm1.2.3", "c", "BYE",
		  0 },
	};
	struct core_scan sc;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
		osip_message_t *m = NULL;
		osip_generic_param_t *br = NULL;
		osip_via_t *via;

		if (core_splice_scan(ok[i].in, strlen(ok[i].in), &sc) != 0)
			fail_msg("refused case %zu", i);
		assert_int_equal(sc.code, ok[i].code);
		assert_int_equal(sc.n_via, ok[i].n_via);
		assert_int_equal(sc.branch_len, strlen(ok[i].branch));
		assert_memory_equal(sc.branch, ok[i].branch, sc.branch_len);
		assert_int_equal(sc.call_id_len, strlen(ok[i].call_id));
		assert_memory_equal(sc.call_id, ok[i].call_id, sc.call_id_len);
		assert_int_equal(sc.method_len, strlen(ok[i].method));
		assert_memory_equal(sc.method, ok[i].method, sc.method_len);
		assert_int_equal(sc.body_len, ok[i].body_len);

		assert_int_equal(osip_message_init(&m), 0);
		assert_int_equal(osip_message_parse(m, ok[i].in,
						    strlen(ok[i].in)), 0);
		assert_int_equal(m->status_code, ok[i].code);
		assert_int_equal(osip_list_size(&m->vias), ok[i].n_via);
		via = osip_list_get(&m->vias, 0);
		osip_via_param_get_byname(via, "branch", &br);
		assert_non_null(br);
		assert_string_equal(br->gvalue, ok[i].branch);
		assert_string_equal(m->cseq->method, ok[i].method);
		osip_message_free(m);
	}
}

/* Anything libosip2 might read otherwise is refused. */
static void
test_core_splice__scan_refuses(void **state)
{
	static const char *bad[] = {
		"",
		RESP_HEAD SCAN_VIA SCAN_REST,			/* no blank line */
		"SIP/2.0 200\r\n" SCAN_VIA SCAN_REST "\r\n",	/* no reason SP */
		"SIP/2.0 20 OK\r\n" SCAN_VIA SCAN_REST "\r\n",
		"SIP/2.0 700 OK\r\n" SCAN_VIA SCAN_REST "\r\n",
		"SIP/3.0 200 OK\r\n" SCAN_VIA SCAN_REST "\r\n",
		"MESSAGE sip:b@x SIP/2.0\r\n" SCAN_VIA SCAN_REST "\r\n",
		RESP_HEAD SCAN_REST "\r\n",			/* no Via */
		RESP_HEAD "Via: SIP/2.0/UDP h\r\n" SCAN_REST "\r\n", /* no branch */
		RESP_HEAD "Via: SIP/2.0/UDP h;Branch=z\r\n" SCAN_REST "\r\n",
		RESP_HEAD "Via: SIP/2.0/UDP h;branch=a;branch=b\r\n"
		SCAN_REST "\r\n",
		RESP_HEAD "Via: SIP/2.0/UDP h;branch=\r\n" SCAN_REST "\r\n",
		RESP_HEAD "Via: SIP / 2.0 / UDP h;branch=z\r\n" SCAN_REST "\r\n",
		RESP_HEAD "Via: SIP/2.0/UDP h ;branch=z\r\n" SCAN_REST "\r\n",
		RESP_HEAD "Via: SIP/2.0/UDP h:x;branch=z\r\n" SCAN_REST "\r\n",
		RESP_HEAD "Via: SIP/2.0/UDP h(c);branch=z\r\n" SCAN_REST "\r\n",
		RESP_HEAD SCAN_VIA "Via: junk\r\n" SCAN_REST "\r\n",
		RESP_HEAD SCAN_VIA "Via: \r\n" SCAN_REST "\r\n",
		RESP_HEAD "Via: SIP/2.0/UDP h;branch=z,\r\n" SCAN_REST "\r\n",
		RESP_HEAD "Via: SIP/2.0/UDP h;branch=z,,SIP/2.0/UDP u\r\n"
		SCAN_REST "\r\n",
		/* folded where it is read */
		RESP_HEAD "Via: SIP/2.0/UDP h;\r\n branch=z\r\n" SCAN_REST "\r\n",
		RESP_HEAD SCAN_VIA "Call-ID:\r\n c1\r\nCSeq: 1 A\r\n\r\n",
		/* libosip2 fails on a blank line folded in */
		RESP_HEAD SCAN_VIA "S:\r\n \r\n b\r\n" SCAN_REST "\r\n",
		/* a name folded: libosip2 may read "V" as a Via */
		RESP_HEAD SCAN_VIA "V\r\n\t: x\r\n" SCAN_REST "\r\n",
		/* Call-ID and CSeq: missing, repeated, blanks, odd */
		RESP_HEAD SCAN_VIA "CSeq: 1 A\r\n\r\n",
		RESP_HEAD SCAN_VIA "Call-ID: c\r\n\r\n",
		RESP_HEAD SCAN_VIA SCAN_REST "i: c2\r\n\r\n",
		RESP_HEAD SCAN_VIA SCAN_REST "CSeq: 8 INVITE\r\n\r\n",
		RESP_HEAD SCAN_VIA "Call-ID: a b\r\nCSeq: 1 A\r\n\r\n",
		RESP_HEAD SCAN_VIA "Call-ID: @h\r\nCSeq: 1 A\r\n\r\n",
		RESP_HEAD SCAN_VIA "Call-ID: c\r\nCSeq: 1\r\n\r\n",
		RESP_HEAD SCAN_VIA "Call-ID: c\r\nCSeq: x A\r\n\r\n",
		RESP_HEAD SCAN_VIA "Call-ID: c\r\nCSeq: 1 A B\r\n\r\n",
		RESP_HEAD SCAN_VIA "Call-ID: c\r\nCSeq: 1  A\r\n\r\n",
		/* From, To, Contact, Content-Type libosip2 may not read */
		RESP_HEAD SCAN_VIA "To: x\r\nCall-ID: c\r\nCSeq: 1 A\r\n\r\n",
		RESP_HEAD SCAN_VIA "To: <junk>\r\nCall-ID: c\r\nCSeq: 1 A\r\n\r\n",
		RESP_HEAD SCAN_VIA "t: <sip:a@b>\r\nTo: <sip:a@b>\r\nCall-ID: c\r\n"
		"CSeq: 1 A\r\n\r\n",
		RESP_HEAD SCAN_VIA "f: \"a\\\"\" <sip:a@b>\r\nCall-ID: c\r\n"
		"CSeq: 1 A\r\n\r\n",
		RESP_HEAD SCAN_VIA "m: <sip:a@b>,\r\nCall-ID: c\r\nCSeq: 1 A\r\n\r\n",
		RESP_HEAD SCAN_VIA "m: *\r\nCall-ID: c\r\nCSeq: 1 A\r\n\r\n",
		RESP_HEAD SCAN_VIA "m: <sip:x>\r\nCall-ID: c\r\nCSeq: 1 A\r\n\r\n",
		RESP_HEAD SCAN_VIA "c: sdp\r\nCall-ID: c\r\nCSeq: 1 A\r\n\r\n",
		/* a multipart body, which libosip2 splits (and may fail on) */
		RESP_HEAD SCAN_VIA SCAN_REST "c: Multipart/mixed;boundary=b\r\n"
		"l: 3\r\n\r\nxyz",
		/* a body Content-Length does not frame exactly */
		RESP_HEAD SCAN_VIA SCAN_REST "\r\nv=0\r\n",
		RESP_HEAD SCAN_VIA SCAN_REST "l: 4\r\n\r\nv=0\r\n",
		RESP_HEAD SCAN_VIA SCAN_REST "l: 5\r\nl: 5\r\n\r\nv=0\r\n",
		RESP_HEAD SCAN_VIA SCAN_REST "l: x\r\n\r\n",
		RESP_HEAD SCAN_VIA ":x\r\n" SCAN_REST "\r\n",	/* no name */
		/* a NUL libosip2 stops at */
		RESP_HEAD SCAN_VIA "Subject: a\0b\r\n" SCAN_REST "\r\n",
	};
	static const size_t nul_case = sizeof(bad) / sizeof(*bad) - 1;
	struct core_scan sc;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		size_t len = strlen(bad[i]);

		if (i == nul_case)
			len += 1 + strlen(bad[i] + len + 1);
		if (core_splice_scan(bad[i], len, &sc) != -EINVAL)
			fail_msg("accepted case %zu", i);
	}
}

#define REG_HEAD "REGISTER sip:a.test SIP/2.0\r\n" \
		 "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKr1\r\n"
#define REG_IDS "From: <sip:al@a.test>;tag=f1\r\nTo: <sip:al@a.test>\r\n" \
		"Call-ID: r1@h\r\nCSeq: 5 REGISTER\r\n"

static int
slice_is(const char *s, size_t len, const char *want)
{
	return want == NULL ? s == NULL :
	       s != NULL && len == strlen(want) && memcmp(s, want, len) == 0;
}

/* What phones (sipp's form) and SIP.js send, read as libosip2 does. */
static void
test_core_splice__scan_register_reads(void **state)
{
	const char *sipjs =
		"REGISTER sip:a.test SIP/2.0\r\n"
		"Via: SIP/2.0/WSS x.invalid;branch=z9hG4bKj;rport=1;"
		"received=127.0.0.1\r\n"
		"Max-Forwards: 70\r\nTo: <sip:Al.ice+1@A.Test>\r\n"
		"From: \"Al\" <sip:Al.ice+1@A.Test>;tag=t9\r\n"
		"Call-ID: k3@x\r\nCSeq: 2 REGISTER\r\n"
		"Contact: <sip:x1@x.invalid;transport=ws>;+sip.ice;reg-id=1;"
		"+sip.instance=\"<urn:uuid:0c6c0e1e-5a46>\";expires=600\r\n"
		"Expires: 600\r\nAllow: ACK,CANCEL, INVITE\r\n"
		"Supported: path, outbound\r\nUser-Agent: SIP.js/0.21 (x, y)\r\n"
		"Content-Length: 0\r\n\r\n";
	const char *two =
		REG_HEAD "v: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKb\r\n"
		"f: <sip:al@a.test>\r\nt: <sip:al@a.test>\r\ni: c\r\n"
		"CSeq: 2147483647 REGISTER\r\n"
		"m: <sip:al@127.0.0.2:5060;transport=tcp>;Q=0.5;EXPIRES=30,"
		" \"Desk\" <sip:al@[::1]:5062>;expires=0;expires=9\r\n"
		"Route: <sip:127.0.0.1;lr>\r\nUser-Agent: one\r\n"
		"User-Agent: two\r\nExpires: 60\r\nExpires: x\r\n\r\n";
	struct core_scan_reg r;

	(void)state;
	assert_int_equal(core_splice_scan_register(sipjs, strlen(sipjs), &r), 0);
	assert_int_equal(r.n_via, 1);
	assert_true(slice_is(r.branch, r.branch_len, "z9hG4bKj"));
	assert_true(slice_is(r.call_id, r.call_id_len, "k3@x"));
	assert_true(slice_is(r.from_tag, r.from_tag_len, "t9"));
	assert_true(slice_is(r.to_user, r.to_user_len, "Al.ice+1"));
	assert_true(slice_is(r.to_host, r.to_host_len, "A.Test"));
	assert_int_equal(r.cseq, 2);
	assert_int_equal(r.max_forwards, 70);
	assert_int_equal(r.expires, 600);
	assert_true(slice_is(r.ua, r.ua_len, "SIP.js/0.21 (x, y)"));
	assert_int_equal(r.n_contact, 1);
	assert_true(slice_is(r.ct[0].uri, r.ct[0].uri_len,
			     "sip:x1@x.invalid;transport=ws"));
	assert_true(slice_is(r.ct[0].expires, r.ct[0].expires_len, "600"));
	assert_true(slice_is(r.ct[0].reg_id, r.ct[0].reg_id_len, "1"));
	assert_true(slice_is(r.ct[0].instance, r.ct[0].instance_len,
			     "\"<urn:uuid:0c6c0e1e-5a46>\""));
	assert_null(r.ct[0].q);

	/* compact names, two Vias and Contacts, the first of repeated
	 * names and parameters (any case), no From tag, no Max-Forwards */
	assert_int_equal(core_splice_scan_register(two, strlen(two), &r), 0);
	assert_int_equal(r.n_via, 2);
	assert_true(slice_is(r.branch, r.branch_len, "z9hG4bKr1"));
	assert_null(r.from_tag);
	assert_int_equal(r.cseq, 2147483647u);
	assert_int_equal(r.max_forwards, -1);
	assert_int_equal(r.expires, 60);
	assert_true(slice_is(r.ua, r.ua_len, "one"));
	assert_int_equal(r.n_contact, 2);
	assert_true(slice_is(r.ct[0].q, r.ct[0].q_len, "0.5"));
	assert_true(slice_is(r.ct[0].expires, r.ct[0].expires_len, "30"));
	assert_true(slice_is(r.ct[1].uri, r.ct[1].uri_len,
			     "sip:al@[::1]:5062"));
	assert_true(slice_is(r.ct[1].expires, r.ct[1].expires_len, "0"));

	/* credentials: each value as it came, for lib/digest.h (libosip2
	 * skips what it cannot read); the CSeq number as written */
	{
		const char *au = REG_HEAD "From: <sip:al@a.test>;tag=1\r\n"
			"To: <sip:al@a.test>\r\nCall-ID: c\r\n"
			"CSeq: 007 REGISTER\r\n"
			"Authorization: Digest username=\"al\", "
			"realm=\"a.test\"\r\nauthorization: junk\r\n\r\n";

		assert_int_equal(core_splice_scan_register(au, strlen(au), &r),
				 0);
		assert_int_equal(r.cseq, 7);
		assert_true(slice_is(r.cseq_num, r.cseq_num_len, "007"));
		assert_int_equal(r.n_auth, 2);
		assert_true(slice_is(r.auth[0], r.auth_len[0], "Digest "
				     "username=\"al\", realm=\"a.test\""));
		assert_true(slice_is(r.auth[1], r.auth_len[1], "junk"));
	}

	/* a query: no Contact */
	assert_int_equal(core_splice_scan_register(REG_HEAD REG_IDS "\r\n",
						   strlen(REG_HEAD REG_IDS) + 2,
						   &r), 0);
	assert_int_equal(r.n_contact, 0);
	assert_int_equal(r.expires, -1);
	assert_null(r.ua);
}

/* The 200 from the lines a scan kept is the one a walk of the request
 * writes, To tag in place; a request with more such lines than kept
 * says so, and its reply walks. */
static void
test_core_splice__scan_register_reply_lines(void **state)
{
	const char *reqs[] = {
		REG_HEAD "Max-Forwards: 70\r\n" REG_IDS
		"Contact: <sip:al@127.0.0.2>\r\nContent-Length: 0\r\n\r\n",
		REG_HEAD "v: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKb,"
		" SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKc\r\n"
		"Subject: s\r\nt: <sip:al@a.test>;x=1\r\nUser-Agent: u\r\n"
		"f: <sip:al@a.test>;tag=2\r\ni: c\r\nCSeq: 2 REGISTER\r\n\r\n",
		/* 14 more Via lines: 18 to copy */
		REG_HEAD
		"Via: SIP/2.0/UDP h;branch=z9hG4bK2\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK3\r\n"
		"Via: SIP/2.0/UDP h;branch=z9hG4bK4\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK5\r\n"
		"Via: SIP/2.0/UDP h;branch=z9hG4bK6\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK7\r\n"
		"Via: SIP/2.0/UDP h;branch=z9hG4bK8\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK9\r\n"
		"Via: SIP/2.0/UDP h;branch=z9hG4bKa\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKb\r\n"
		"Via: SIP/2.0/UDP h;branch=z9hG4bKc\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKd\r\n"
		"Via: SIP/2.0/UDP h;branch=z9hG4bKe\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKf\r\n"
		REG_IDS "\r\n",
	};
	const int want_lines[] = { 5, 6, -1 };
	struct core_splice_reply rp = {
		.start = "SIP/2.0 200 OK\r\n", .to_tag = "t1",
		.tail = "Content-Length: 0\r\n\r\n", .tail_len = 21,
	};
	char a[4096], b[4096];
	struct core_scan_reg r;

	(void)state;
	for (size_t i = 0; i < sizeof(reqs) / sizeof(*reqs); i++) {
		size_t len = strlen(reqs[i]);
		int na, nb;

		if (core_splice_scan_register(reqs[i], len, &r) != 0)
			fail_msg("request %zu not scanned", i);
		assert_int_equal(r.n_lines, want_lines[i]);
		if (r.n_lines < 0)
			continue;
		rp.n_via = r.n_via;
		na = core_splice_reply(a, sizeof(a), reqs[i], len, &rp);
		nb = core_splice_reply_lines(b, sizeof(b), reqs[i], r.lines,
					     r.n_lines, &rp);
		assert_true(na > 0);
		assert_int_equal(na, nb);
		assert_memory_equal(a, b, (size_t)na);
	}
	/* the tag goes inside the To line, before its CRLF */
	assert_non_null(strstr(b, "\r\nt: <sip:al@a.test>;x=1;tag=t1\r\n"));
	assert_null(strstr(b, "Subject"));
	assert_int_equal(core_splice_reply_lines(b, 10, reqs[1], r.lines,
						 0, &rp), -ENOSPC);
}

/* What the registrar refuses or libosip2 may read otherwise goes to the
 * parsed path. */
static void
test_core_splice__scan_register_refuses(void **state)
{
	static const char *bad[] = {
		/* not a REGISTER, or its start line not plain */
		"MESSAGE sip:a.test SIP/2.0\r\n" REG_IDS "\r\n",
		"REGISTER tel:+1 SIP/2.0\r\n" REG_IDS "\r\n",
		"REGISTER sip:a.test SIP/2.1\r\n" REG_IDS "\r\n",
		"REGISTER sip:%61.test SIP/2.0\r\n" REG_IDS "\r\n",
		/* a first line folded into the start line: libosip2 reads
		 * the version as "SIP/2.0 x:" (found by fuzz_core_reg) */
		"REGISTER sip:a.test SIP/2.0\r\n x:\r\n"
		"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKr1\r\n"
		REG_IDS "\r\n",
		/* a To tag (in a dialog), escapes libosip2 rewrites */
		REG_HEAD "From: <sip:al@a.test>\r\nTo: <sip:al@a.test>;tag=x\r\n"
		"Call-ID: c\r\nCSeq: 1 REGISTER\r\n\r\n",
		REG_HEAD "From: <sip:al@a.test>\r\nTo: <sip:%61l@a.test>\r\n"
		"Call-ID: c\r\nCSeq: 1 REGISTER\r\n\r\n",
		REG_HEAD REG_IDS "Contact: <sip:a`b@h>\r\n\r\n",
		REG_HEAD REG_IDS "Contact: <sip:al@h;p=%41>\r\n\r\n",
		/* URI parameters libosip2 drops when it writes the URI */
		REG_HEAD REG_IDS "Contact: <sip:al@h;X-OBP=tcp>\r\n\r\n",
		REG_HEAD REG_IDS "Contact: <sip:al@h;lr;x-obr=1>\r\n\r\n",
		/* no user in To, To on an IPv6 host, To without brackets */
		REG_HEAD "From: <sip:a.test>\r\nTo: <sip:a.test>\r\n"
		"Call-ID: c\r\nCSeq: 1 REGISTER\r\n\r\n",
		REG_HEAD "From: <sip:al@[::1]>\r\nTo: <sip:al@[::1]>\r\n"
		"Call-ID: c\r\nCSeq: 1 REGISTER\r\n\r\n",
		REG_HEAD "From: <sip:al@a.test>\r\nTo: sip:al@a.test\r\n"
		"Call-ID: c\r\nCSeq: 1 REGISTER\r\n\r\n",
		/* CSeq: another method, 2^31, Max-Forwards 0 or odd */
		REG_HEAD "From: <sip:al@a.test>\r\nTo: <sip:al@a.test>\r\n"
		"Call-ID: c\r\nCSeq: 1 INVITE\r\n\r\n",
		REG_HEAD "From: <sip:al@a.test>\r\nTo: <sip:al@a.test>\r\n"
		"Call-ID: c\r\nCSeq: 2147483648 REGISTER\r\n\r\n",
		REG_HEAD REG_IDS "Max-Forwards: 0\r\n\r\n",
		REG_HEAD REG_IDS "Max-Forwards: 256\r\n\r\n",
		REG_HEAD REG_IDS "Max-Forwards: 7x\r\n\r\n",
		/* Expires not a number, empty, or first empty */
		REG_HEAD REG_IDS "Expires: -1\r\n\r\n",
		REG_HEAD REG_IDS "Expires:\r\nExpires: 60\r\n\r\n",
		REG_HEAD REG_IDS "User-Agent:\r\n\r\n",
		/* Contacts: a wildcard, a token display name (may be "*"),
		 * no brackets, a parameter's value quoted or missing where a
		 * number is read, blanks, more than CORE_SCAN_CONTACTS */
		REG_HEAD REG_IDS "Contact: *\r\nExpires: 0\r\n\r\n",
		REG_HEAD REG_IDS "Contact: * <sip:al@h>\r\n\r\n",
		REG_HEAD REG_IDS "Contact: sip:al@h;expires=5\r\n\r\n",
		REG_HEAD REG_IDS "Contact: <sip:al@h>;expires=\"5\"\r\n\r\n",
		REG_HEAD REG_IDS "Contact: <sip:al@h>;expires\r\n\r\n",
		REG_HEAD REG_IDS "Contact: <sip:al@h>;expires=5x\r\n\r\n",
		REG_HEAD REG_IDS "Contact: <sip:al@h>;reg-id=x\r\n\r\n",
		REG_HEAD REG_IDS "Contact: <sip:al@h>;q\r\n\r\n",
		REG_HEAD REG_IDS "Contact: <sip:al@h> ;q=1\r\n\r\n",
		REG_HEAD REG_IDS "Contact: <sip:al@h>;+sip.instance=\"a;b\"\r\n"
		"\r\n",
		REG_HEAD REG_IDS "Contact:\r\n\r\n",
		REG_HEAD REG_IDS "m: <sip:a@h>,<sip:b@h>,<sip:c@h>,<sip:d@h>,"
		"<sip:e@h>,<sip:f@h>,<sip:g@h>,<sip:h@h>,<sip:i@h>\r\n\r\n",
		/* folded where it is read */
		REG_HEAD REG_IDS "Contact: <sip:al@h>;\r\n expires=5\r\n\r\n",
		REG_HEAD REG_IDS "Expires:\r\n 5\r\n\r\n",
		/* headers libosip2 parses and may fail on */
		REG_HEAD REG_IDS "Proxy-Authorization: Digest x\r\n\r\n",
		/* Authorization: more than kept, folded, empty */
		REG_HEAD REG_IDS "Authorization: a\r\nAuthorization: b\r\n"
		"Authorization: c\r\n\r\n",
		REG_HEAD REG_IDS "Authorization: Digest\r\n username=\"al\"\r\n"
		"\r\n",
		REG_HEAD REG_IDS "Authorization:\r\n\r\n",
		REG_HEAD REG_IDS "Record-Route: <sip:h;lr>\r\n\r\n",
		REG_HEAD REG_IDS "Accept: application/sdp\r\n\r\n",
		REG_HEAD REG_IDS "Allow: INVITE,,ACK\r\n\r\n",
		REG_HEAD REG_IDS "Route: junk\r\n\r\n",
		/* From, To, Call-ID or CSeq missing or twice */
		REG_HEAD "To: <sip:al@a.test>\r\nCall-ID: c\r\n"
		"CSeq: 1 REGISTER\r\n\r\n",
		REG_HEAD REG_IDS "t: <sip:al@a.test>\r\n\r\n",
		REG_HEAD REG_IDS "Call-ID: d\r\n\r\n",
		REG_HEAD "From: <sip:al@a.test>\r\nTo: <sip:al@a.test>\r\n"
		"Call-ID: c@\r\nCSeq: 1 REGISTER\r\n\r\n",
		/* a body not framed by Content-Length */
		REG_HEAD REG_IDS "\r\nx",
	};
	struct core_scan_reg r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		if (core_splice_scan_register(bad[i], strlen(bad[i]), &r) !=
		    -EINVAL)
			fail_msg("accepted case %zu", i);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_core_splice__via_pop_forms),
		cmocka_unit_test(test_core_splice__leaves_the_rest),
		cmocka_unit_test(test_core_splice__request_edits),
		cmocka_unit_test(test_core_splice__counts_values),
		cmocka_unit_test(test_core_splice__refuses),
		cmocka_unit_test(test_core_splice__reply),
		cmocka_unit_test(test_core_splice__reply_refuses),
		cmocka_unit_test(test_core_splice__scan_reads),
		cmocka_unit_test(test_core_splice__scan_refuses),
		cmocka_unit_test(test_core_splice__scan_register_reads),
		cmocka_unit_test(test_core_splice__scan_register_refuses),
		cmocka_unit_test(test_core_splice__scan_register_reply_lines),
	};

	parser_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
