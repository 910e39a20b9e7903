/*
 * test_edge_stream.c - stream framing (RFC 3261 18.3) with hostile
 * tables: every message fed whole, one byte at a time and in random
 * splits must come out as the same frames; Content-Length missing,
 * garbage, conflicting or too large closes the stream; CRLF keepalives
 * between messages are pings or skipped padding.  And the SIP domain
 * identities of a certificate (RFC 5922 7.1), a table of SAN sets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "edge/edge_int.h"

#define MSG(cl, body) \
	"MESSAGE sip:a@x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n" \
	"Call-ID: c\r\nContent-Length: " cl "\r\n\r\n" body

/* What a stream of bytes frames into, as a string: "M<len> P S<len> E". */
struct out {
	char s[512];
	int err;
	const char *why;
};

static void
put(struct out *o, const char *fmt, size_t n)
{
	size_t l = strlen(o->s);

	snprintf(o->s + l, sizeof(o->s) - l, fmt, n);
}

/*
 * Feeds in[] to the framer in chunks of `step` bytes (0: all at once),
 * as a connection does: the unfinished tail stays in a buffer and
 * grows with the next read.
 */
static void
frame_all(const char *in, size_t len, size_t step, size_t max, struct out *o)
{
	char *buf = malloc(len + 1);
	size_t have = 0, fed = 0, scan = 0;

	memset(o, 0, sizeof(*o));
	assert_non_null(buf);
	while (fed < len || have) {
		size_t n = step ? step : len;
		struct edge_frame f;
		int rc;

		if (n > len - fed)
			n = len - fed;
		memcpy(buf + have, in + fed, n);
		have += n;
		fed += n;
		for (;;) {
			rc = edge_stream_frame(buf, have, max, &scan, &f, &o->why);
			if (rc < 0) {
				o->err = rc;
				free(buf);
				return;
			}
			if (f.kind == EDGE_FRAME_MORE)
				break;
			put(o, f.kind == EDGE_FRAME_MSG ? "M%zu " :
			    f.kind == EDGE_FRAME_PING ? "P " : "S%zu ", f.len);
			memmove(buf, buf + f.len, have - f.len);
			have -= f.len;
			scan = 0;
		}
		if (fed == len)
			break;
	}
	if (have)
		put(o, "R%zu", have);	/* left unframed */
	free(buf);
}

static void
test_edge_stream__frames_whatever_the_read_sizes(void **state)
{
	static const struct {
		const char *in;
		const char *want;
	} t[] = {
		{ MSG("0", ""), "M94 " },
		{ MSG("5", "hello"), "M99 " },
		/* two messages in one read, and a body with a blank line */
		{ MSG("5", "hello") MSG("4", "\r\n\r\n"), "M99 M98 " },
		/* CRLFCRLF ping before, between and after messages */
		{ "\r\n\r\n" MSG("0", "") "\r\n\r\n" MSG("0", "") "\r\n\r\n",
		  "P M94 P M94 P " },
		/* a lone CRLF (a pong) and stray LFs are skipped */
		{ "\r\n" MSG("0", "") "\n" MSG("0", ""), "S2 M94 S1 M94 " },
		/* compact name, bare LF line ends, spaces */
		{ "OPTIONS sip:x SIP/2.0\nl :  3 \n\nabc", "M34 " },
		/* the same Content-Length twice is fine */
		{ "OPTIONS sip:x SIP/2.0\r\nl: 1\r\nContent-Length: 1\r\n\r\nZ",
		  "M51 " },
		/* an unfinished body stays buffered */
		{ MSG("10", "12345"), "R100" },
		/* an unfinished ping prefix stays buffered */
		{ MSG("0", "") "\r\n\r", "M94 R3" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++) {
		size_t len = strlen(t[i].in);
		size_t steps[] = { 0, 1, 2, 3, 7, 50 };

		for (size_t k = 0; k < sizeof(steps) / sizeof(*steps); k++) {
			struct out o;

			frame_all(t[i].in, len, steps[k], 65535, &o);
			if (o.err || strcmp(o.s, t[i].want) != 0)
				fail_msg("case %zu step %zu: got \"%s\" (err %d %s), "
					 "want \"%s\"", i, steps[k], o.s, o.err,
					 o.why ? o.why : "", t[i].want);
		}
	}
}

static void
test_edge_stream__hostile_lengths_close_the_stream(void **state)
{
	static const struct {
		const char *in;
		size_t max;
		int err;
	} t[] = {
		{ "OPTIONS sip:x SIP/2.0\r\nCall-ID: c\r\n\r\n", 65535, -EBADMSG },
		{ MSG("", ""), 65535, -EBADMSG },
		{ MSG("-1", ""), 65535, -EBADMSG },
		{ MSG("1x", "a"), 65535, -EBADMSG },
		{ MSG("0x10", ""), 65535, -EBADMSG },
		{ MSG("1 2", "a"), 65535, -EBADMSG },
		{ MSG("9999999999", ""), 65535, -EBADMSG },
		{ MSG("99999999", ""), 65535, -EMSGSIZE },
		{ "OPTIONS sip:x SIP/2.0\r\nl: 1\r\nl: 2\r\n\r\nab", 65535, -EBADMSG },
		/* fits the headers, not the body */
		{ MSG("100", ""), 150, -EMSGSIZE },
		/* headers never end and pass max */
		{ "OPTIONS sip:x SIP/2.0\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		  64, -EMSGSIZE },
		/* binary garbage with a blank line and no length */
		{ "\x16\x03\x01\x02\x01\x01\n\n\xff\xfe", 65535, -EBADMSG },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++) {
		size_t len = strlen(t[i].in);

		for (size_t step = 0; step < 3; step++) {
			struct out o;

			frame_all(t[i].in, len, step, t[i].max, &o);
			if (o.err != t[i].err || o.why == NULL)
				fail_msg("case %zu step %zu: err %d, want %d (%s)",
					 i, step, o.err, t[i].err, o.s);
		}
	}
}

/* A 1 MiB body announced up front is refused before it is read. */
static void
test_edge_stream__oversized_is_refused_from_the_headers(void **state)
{
	static const char m[] = MSG("1048576", "x");
	struct edge_frame f;
	const char *why;
	size_t scan = 0;

	(void)state;
	assert_int_equal(edge_stream_frame(m, sizeof(m) - 1, 65535, &scan, &f,
					   &why), -EMSGSIZE);
	assert_non_null(why);
}

/* Split reads resume the header search where it stopped: feeding a
 * long header one byte at a time stays linear (checked by the scan
 * offset never moving back). */
static void
test_edge_stream__split_reads_resume_the_scan(void **state)
{
	char m[4096];
	size_t n, scan = 0, last = 0;
	struct edge_frame f;
	const char *why;

	(void)state;
	n = (size_t)snprintf(m, sizeof(m), "OPTIONS sip:x SIP/2.0\r\nX: ");
	memset(m + n, 'a', 3000);
	n += 3000;
	n += (size_t)snprintf(m + n, sizeof(m) - n, "\r\nl: 0\r\n\r\n");
	for (size_t have = 1; have <= n; have++) {
		assert_int_equal(edge_stream_frame(m, have, 65535, &scan, &f,
						   &why), 0);
		assert_true(scan >= last);
		last = scan;
		if (have < n)
			assert_int_equal(f.kind, EDGE_FRAME_MORE);
	}
	assert_int_equal(f.kind, EDGE_FRAME_MSG);
	assert_int_equal(f.len, n);
}

/* A certificate with these SANs ("DNS:x", "URI:sip:y", "IP:1.2.3.4",
 * NULL-terminated; NULL: no SAN at all) and subject CN cn. */
static X509 *
cert_with(const char *cn, const char *const *sans)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	GENERAL_NAMES *gens = GENERAL_NAMES_new();

	assert_non_null(x);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
		(const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_set_subject_name(x, name), 1);
	X509_NAME_free(name);
	for (; sans && *sans; sans++) {
		const char *v = strchr(*sans, ':') + 1;
		int type = strncmp(*sans, "DNS:", 4) == 0 ? GEN_DNS :
			   strncmp(*sans, "URI:", 4) == 0 ? GEN_URI : GEN_IPADD;
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_IA5STRING *str;

		if (type == GEN_IPADD) {
			ASN1_OCTET_STRING *ip = a2i_IPADDRESS(v);

			assert_non_null(ip);
			GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
		} else {
			str = ASN1_IA5STRING_new();
			assert_int_equal(ASN1_STRING_set(str, v, -1), 1);
			GENERAL_NAME_set0_value(g, type, str);
		}
		assert_true(sk_GENERAL_NAME_push(gens, g) > 0);
	}
	if (sans)
		assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens,
						   0, 0), 1);
	GENERAL_NAMES_free(gens);
	return x;
}

/* RFC 5922 7.1: sip: URIs first, dNSNames only without one, never the
 * CN, never a wildcard, a user's URI is no domain's; names come out
 * lower case, once each, within ENV_NAMES_MAX. */
static void
test_edge_stream__cert_names_rfc5922(void **state)
{
	static const struct {
		const char *cn;
		const char *sans[6];
		int no_san;
		const char *want;
	} cases[] = {
		{ "b.test", { "DNS:b.test" }, 0, "b.test" },
		{ "b.test", { "DNS:B.Test", "DNS:w.test", "DNS:b.test" }, 0,
		  "b.test w.test" },
		/* A sip: URI identity hides the dNSNames. */
		{ "b.test", { "DNS:c.test", "URI:sip:b.test" }, 0, "b.test" },
		{ "x", { "URI:sip:b.test;transport=tls", "URI:SIP:c.test:5061" },
		  0, "b.test c.test" },
		/* A user's URI, another scheme: no identity; dNSNames count. */
		{ "x", { "URI:sip:alice@b.test", "URI:sips:c.test",
			 "URI:https://d.test/", "DNS:e.test" }, 0, "e.test" },
		/* Wildcards and addresses are no SIP domain identities. */
		{ "x", { "DNS:*.b.test", "IP:127.0.0.1", "DNS:b.test" }, 0,
		  "b.test" },
		{ "x", { "DNS:b_test", "DNS:b.test\r\nVia:" }, 0, "" },
		/* No SAN: the CN does not count (7.1 makes it a MAY). */
		{ "b.test", { NULL }, 1, "" },
		{ "b.test", { "IP:127.0.0.1" }, 0, "" },
	};
	char buf[ENV_NAMES_MAX + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		X509 *x = cert_with(cases[i].cn,
				    cases[i].no_san ? NULL : cases[i].sans);

		memset(buf, 'z', sizeof(buf));
		edge_stream_cert_names(x, buf);
		assert_string_equal(buf, cases[i].want);
		X509_free(x);
	}
}

/* More names than an envelope carries: whole names up to the bound. */
static void
test_edge_stream__cert_names_bounded(void **state)
{
	static char names[40][64];
	const char *sans[41];
	char buf[ENV_NAMES_MAX + 1];
	X509 *x;
	size_t n;

	(void)state;
	for (int i = 0; i < 40; i++) {
		snprintf(names[i], sizeof(names[i]), "DNS:host-%02d.%s", i,
			 "a-rather-long-domain-name.example");
		sans[i] = names[i];
	}
	sans[40] = NULL;
	x = cert_with("x", sans);
	edge_stream_cert_names(x, buf);
	X509_free(x);
	n = strlen(buf);
	assert_true(n <= ENV_NAMES_MAX);
	assert_true(n > ENV_NAMES_MAX - 45);
	assert_true(env_names_valid(buf, n));
	assert_memory_equal(buf, "host-00.a-rather-long-domain-name.example "
			    "host-01.", 49);
	assert_true(buf[n - 1] == 'e');	/* the last one whole */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edge_stream__frames_whatever_the_read_sizes),
		cmocka_unit_test(test_edge_stream__hostile_lengths_close_the_stream),
		cmocka_unit_test(test_edge_stream__oversized_is_refused_from_the_headers),
		cmocka_unit_test(test_edge_stream__split_reads_resume_the_scan),
		cmocka_unit_test(test_edge_stream__cert_names_rfc5922),
		cmocka_unit_test(test_edge_stream__cert_names_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
