/*
 * test_edge_ws.c - the UTF-8 check that picks a WebSocket frame's type
 * (text only when valid, RFC 6455 8.1 and RFC 3629), with a table of
 * hostile byte strings: overlong forms of every length, surrogates,
 * code points past U+10FFFF, bytes that never occur in UTF-8, and
 * every sequence cut short.  Each boundary is tested on both sides.
 * Also the upgrade checks: which Origin may open a WebSocket under
 * ws_origins, and whether the subprotocol list offers "sip".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "edge/edge_int.h"

struct utf8_case {
	const char *what;
	const char *s;
	size_t len;		/* 0: strlen(s) */
	int valid;
};

#define OK(what, s) { what, s, sizeof(s) - 1, 1 }
#define BAD(what, s) { what, s, sizeof(s) - 1, 0 }

static const struct utf8_case utf8_cases[] = {
	OK("empty", ""),
	OK("ASCII SIP line", "MESSAGE sip:conf.r@a.test SIP/2.0\r\n"),
	{ "NUL byte", "a\0b", 3, 1 },
	OK("U+0080, smallest 2-byte", "\xc2\x80"),
	OK("U+07FF, largest 2-byte", "\xdf\xbf"),
	OK("U+0800, smallest 3-byte", "\xe0\xa0\x80"),
	OK("U+D7FF, below the surrogates", "\xed\x9f\xbf"),
	OK("U+E000, above the surrogates", "\xee\x80\x80"),
	OK("U+FFFD", "\xef\xbf\xbd"),
	OK("U+FFFF", "\xef\xbf\xbf"),
	OK("U+10000, smallest 4-byte", "\xf0\x90\x80\x80"),
	OK("U+10FFFF, the last code point", "\xf4\x8f\xbf\xbf"),
	OK("mixed text", "gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x98\x80!"),

	BAD("0xFF", "\xff"),
	BAD("0xFE", "\xfe"),
	BAD("0xFF in a body", "Content-Length: 3\r\n\r\na\xff" "b"),
	BAD("lone continuation 0x80", "\x80"),
	BAD("lone continuation 0xBF", "a\xbf"),
	BAD("overlong '/' in 2 bytes (0xC0)", "\xc0\xaf"),
	BAD("overlong U+007F in 2 bytes (0xC1)", "\xc1\xbf"),
	BAD("overlong NUL in 2 bytes", "\xc0\x80"),
	BAD("overlong U+07FF in 3 bytes", "\xe0\x9f\xbf"),
	BAD("overlong '/' in 3 bytes", "\xe0\x80\xaf"),
	BAD("overlong U+FFFF in 4 bytes", "\xf0\x8f\xbf\xbf"),
	BAD("overlong '/' in 4 bytes", "\xf0\x80\x80\xaf"),
	BAD("surrogate U+D800", "\xed\xa0\x80"),
	BAD("surrogate U+DFFF", "\xed\xbf\xbf"),
	BAD("surrogate pair as CESU-8", "\xed\xa0\xbd\xed\xb8\x80"),
	BAD("U+110000", "\xf4\x90\x80\x80"),
	BAD("0xF5 lead (past U+10FFFF)", "\xf5\x80\x80\x80"),
	BAD("5-byte form", "\xf8\x88\x80\x80\x80"),
	BAD("6-byte form", "\xfc\x84\x80\x80\x80\x80"),
	BAD("2-byte cut at the end", "ab\xc3"),
	BAD("3-byte cut after 1", "\xe2"),
	BAD("3-byte cut after 2", "\xe2\x82"),
	BAD("4-byte cut after 3", "\xf0\x9f\x98"),
	BAD("2-byte cut by ASCII", "\xc3" "a"),
	BAD("3-byte with ASCII third", "\xe2\x82" "a"),
	BAD("4-byte with a lead as fourth", "\xf0\x9f\x98\xf0"),
	BAD("4-byte cut by CRLF", "\xf0\x9f\r\n"),
	BAD("valid then 0xFF", "\xc3\xbc\xff"),
};

static void
test_edge_ws__utf8_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(utf8_cases) / sizeof(*utf8_cases); i++) {
		const struct utf8_case *t = &utf8_cases[i];
		int got = edge_utf8_valid((const unsigned char *)t->s, t->len);

		if (got != t->valid)
			fail_msg("%s: got %s", t->what, got ? "valid" : "invalid");
	}
}

/* A run of multi-byte characters is valid cut at a character boundary
 * and refused at every other cut point. */
static void
test_edge_ws__utf8_every_prefix(void **state)
{
	static const char full[] = "\xf0\x9f\x98\x80\xe2\x82\xac\xc3\xbc";
	static const size_t ends[] = { 4, 7, 9 };	/* whole characters */

	(void)state;
	for (size_t n = 0; n <= sizeof(full) - 1; n++) {
		int whole = n == 0;

		for (size_t k = 0; k < sizeof(ends) / sizeof(*ends); k++)
			whole |= n == ends[k];
		assert_int_equal(edge_utf8_valid((const unsigned char *)full, n),
				 whole);
	}
}

/* A long ASCII run is read eight bytes a step: a bad byte or a
 * character at any offset in it is still seen. */
static void
test_edge_ws__utf8_at_every_offset(void **state)
{
	char buf[48];

	(void)state;
	for (size_t at = 0; at + 2 <= sizeof(buf); at++) {
		memset(buf, 'a', sizeof(buf));
		buf[at] = (char)0xff;
		assert_int_equal(edge_utf8_valid((unsigned char *)buf,
						 sizeof(buf)), 0);
		memcpy(buf + at, "\xc3\xbc", 2);
		assert_int_equal(edge_utf8_valid((unsigned char *)buf,
						 sizeof(buf)), 1);
		buf[at + 1] = 'a';	/* a lead byte cut by ASCII */
		assert_int_equal(edge_utf8_valid((unsigned char *)buf,
						 sizeof(buf)), 0);
	}
}

/* Every single byte: ASCII alone is valid, nothing else is. */
static void
test_edge_ws__utf8_single_bytes(void **state)
{
	(void)state;
	for (unsigned b = 0; b < 256; b++) {
		unsigned char c = (unsigned char)b;

		assert_int_equal(edge_utf8_valid(&c, 1), b < 0x80);
	}
}

static void
test_edge_ws__origin_allow_list(void **state)
{
	const char *h = "sip.example.com:8443";

	(void)state;
	/* Empty list: the page's own host only, http or https. */
	assert_true(edge_ws_origin_ok("", "https://sip.example.com:8443", h));
	assert_true(edge_ws_origin_ok("", "HTTP://SIP.example.com:8443", h));
	assert_false(edge_ws_origin_ok("", "https://sip.example.com", h));
	assert_false(edge_ws_origin_ok("", "https://sip.example.com:8443.evil", h));
	assert_false(edge_ws_origin_ok("", "https://evil.example", h));
	assert_false(edge_ws_origin_ok("", "null", h));
	assert_false(edge_ws_origin_ok("", "ftp://sip.example.com:8443", h));
	assert_false(edge_ws_origin_ok("", "https://sip.example.com:8443", NULL));
	assert_false(edge_ws_origin_ok("", "https://", ""));
	/* A list: exactly its entries, no case, spaces or commas. */
	assert_true(edge_ws_origin_ok("https://a.example, https://b.example:8443",
				      "https://B.example:8443", h));
	assert_true(edge_ws_origin_ok("https://a.example https://b.example",
				      "https://a.example", h));
	assert_false(edge_ws_origin_ok("https://a.example", "https://a.example.evil", h));
	assert_false(edge_ws_origin_ok("https://a.example", "https://sip.example.com:8443", h));
	assert_false(edge_ws_origin_ok("https://a.example", "https://a.exampl", h));
	assert_true(edge_ws_origin_ok("https://a.example *", "https://evil.example", h));
	assert_true(edge_ws_origin_ok("null", "null", h));
}

static void
test_edge_ws__subprotocol_sip(void **state)
{
	(void)state;
	assert_true(edge_ws_offers_sip("sip"));
	assert_true(edge_ws_offers_sip("chat, sip"));
	assert_true(edge_ws_offers_sip("SIP,chat"));
	assert_false(edge_ws_offers_sip(NULL));
	assert_false(edge_ws_offers_sip(""));
	assert_false(edge_ws_offers_sip("sips"));
	assert_false(edge_ws_offers_sip("xsip, sipx"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edge_ws__utf8_table),
		cmocka_unit_test(test_edge_ws__utf8_every_prefix),
		cmocka_unit_test(test_edge_ws__utf8_at_every_offset),
		cmocka_unit_test(test_edge_ws__utf8_single_bytes),
		cmocka_unit_test(test_edge_ws__origin_allow_list),
		cmocka_unit_test(test_edge_ws__subprotocol_sip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
