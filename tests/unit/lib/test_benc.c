/*
 * test_benc.c - the bencode codec (lib/benc.c): round trips through the
 * encoder, the node layout of decoded containers, a real rtpengine
 * reply, and tables of hostile input (truncations, lengths that
 * overflow or overrun, leading zeros, bad keys, deep nesting, trailing
 * bytes) that must all be refused without reading past the input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/benc.h"

#define NODES 64

/*
 * Decodes s from a heap copy of exactly its length, so ASan catches a
 * read past the end.
 */
static int
decode(const char *s, size_t len, struct benc_node *nodes, int cap,
       char **copy)
{
	char *c = malloc(len ? len : 1);

	assert_non_null(c);
	memcpy(c, s, len);
	*copy = c;
	return benc_decode(nodes, cap, c, len);
}

static void
test_benc__encode_ng_offer(void **state)
{
	char buf[256];
	struct benc_enc e;

	(void)state;
	benc_enc_init(&e, buf, sizeof(buf));
	benc_put_dict(&e);
	benc_put_kv(&e, "command", "offer");
	benc_put_kv(&e, "call-id", "abc");
	benc_put_cstr(&e, "flags");
	benc_put_list(&e);
	benc_put_cstr(&e, "trust-address");
	benc_put_end(&e);
	benc_put_cstr(&e, "n");
	benc_put_int(&e, -42);
	benc_put_end(&e);
	assert_int_equal(benc_enc_finish(&e), (int)strlen(
		"d7:command5:offer7:call-id3:abc5:flagsl13:trust-addresse"
		"1:ni-42ee"));
	assert_memory_equal(buf, "d7:command5:offer7:call-id3:abc5:flagsl"
			    "13:trust-addresse1:ni-42ee", e.len);
}

static void
test_benc__encode_errors(void **state)
{
	char buf[8];
	struct benc_enc e;

	(void)state;
	benc_enc_init(&e, buf, sizeof(buf));
	benc_put_cstr(&e, "0123456789");
	assert_int_equal(benc_enc_finish(&e), -ENOSPC);
	/* The error sticks even if later items would fit. */
	benc_put_int(&e, 1);
	assert_int_equal(benc_enc_finish(&e), -ENOSPC);

	benc_enc_init(&e, buf, sizeof(buf));
	benc_put_dict(&e);
	assert_int_equal(benc_enc_finish(&e), -EINVAL);
	benc_put_end(&e);
	assert_int_equal(benc_enc_finish(&e), 2);
	benc_put_end(&e);
	assert_int_equal(benc_enc_finish(&e), -EINVAL);

	/* Exactly full is fine. */
	benc_enc_init(&e, buf, 4);
	benc_put_int(&e, 10);
	assert_int_equal(benc_enc_finish(&e), 4);
}

static void
test_benc__int_limits(void **state)
{
	static const struct { const char *in; int64_t v; } ok[] = {
		{ "i0e", 0 }, { "i-1e", -1 }, { "i7e", 7 },
		{ "i9223372036854775807e", INT64_MAX },
		{ "i-9223372036854775808e", INT64_MIN },
	};
	struct benc_node nd[2];
	char buf[32], *c;
	struct benc_enc e;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
		assert_int_equal(decode(ok[i].in, strlen(ok[i].in), nd, 2, &c), 1);
		assert_int_equal(nd[0].type, BENC_INT);
		assert_true(nd[0].i == ok[i].v);
		assert_int_equal(nd[0].raw_len, strlen(ok[i].in));
		free(c);
		/* The encoder writes the same bytes back. */
		benc_enc_init(&e, buf, sizeof(buf));
		benc_put_int(&e, ok[i].v);
		assert_int_equal(benc_enc_finish(&e), (int)strlen(ok[i].in));
		assert_memory_equal(buf, ok[i].in, e.len);
	}
}

static void
test_benc__tree_layout(void **state)
{
	static const char in[] = "d1:ali1ei2eli3eee1:bd1:c0:e1:d3:xyze";
	struct benc_node nd[NODES];
	const struct benc_node *a, *b, *d;
	size_t len;
	char *c;
	int n;

	(void)state;
	n = decode(in, sizeof(in) - 1, nd, NODES, &c);
	/* dict, "a", list, 1, 2, list, 3, "b", dict, "c", "", "d", "xyz" */
	assert_int_equal(n, 13);
	assert_int_equal(nd[0].type, BENC_DICT);
	assert_int_equal(nd[0].count, 3);
	assert_int_equal(nd[0].span, 13);
	assert_int_equal(nd[0].raw_len, sizeof(in) - 1);
	a = benc_dict_get(&nd[0], "a");
	assert_non_null(a);
	assert_int_equal(a->type, BENC_LIST);
	assert_int_equal(a->count, 3);
	assert_int_equal(a->span, 5);
	assert_memory_equal(a->raw, "li1ei2eli3eee", a->raw_len);
	b = benc_dict_get(&nd[0], "b");
	assert_non_null(b);
	assert_int_equal(b->type, BENC_DICT);
	assert_int_equal(b->count, 1);
	assert_non_null(benc_dict_str(b, "c", &len));
	assert_int_equal(len, 0);
	d = benc_dict_get(&nd[0], "d");
	assert_true(benc_str_eq(d, "xyz"));
	assert_null(benc_dict_get(&nd[0], "e"));
	assert_null(benc_dict_get(a, "a"));	/* not a dict */
	assert_null(benc_dict_str(&nd[0], "a", &len));	/* not a string */
	/* Slices point into the input, nothing is copied. */
	assert_ptr_equal(d->s, c + sizeof(in) - 1 - 4);
	free(c);
}

/* A reply as rtpengine 10.5 sends it: keys not sorted, binary SDP. */
static void
test_benc__rtpengine_reply(void **state)
{
	static const char in[] =
		"d3:sdp25:v=0\r\nc=IN IP4 127.0.0.1\r\n"
		"7:createdi1795629830e10:created_usi788797e"
		"7:warning5:w\0w\0w6:result2:oke";
	struct benc_node nd[NODES];
	const char *s;
	size_t len;
	char *c;

	(void)state;
	assert_int_equal(decode(in, sizeof(in) - 1, nd, NODES, &c), 11);
	s = benc_dict_str(&nd[0], "sdp", &len);
	assert_non_null(s);
	assert_int_equal(len, 25);
	assert_true(benc_str_eq(benc_dict_get(&nd[0], "result"), "ok"));
	s = benc_dict_str(&nd[0], "warning", &len);
	assert_int_equal(len, 5);
	assert_memory_equal(s, "w\0w\0w", 5);
	free(c);
}

static void
test_benc__hostile_input(void **state)
{
	static const struct { const char *in; size_t len; const char *why; } bad[] = {
		{ "", 0, "empty" },
		{ "d", 1, "open dict" },
		{ "l", 1, "open list" },
		{ "li1e", 4, "unclosed list" },
		{ "d3:key", 6, "key without value, no end" },
		{ "d3:keye", 7, "key without value" },
		{ "di1ei2ee", 8, "integer key" },
		{ "dlei1ee", 7, "list key" },
		{ "ddei1ee", 7, "dict key" },
		{ "e", 1, "lone end" },
		{ "i1ee", 4, "end after top value" },
		{ "i1ei2e", 6, "two top values" },
		{ "3:abcX", 6, "trailing byte" },
		{ "ie", 2, "empty integer" },
		{ "i-e", 3, "minus only" },
		{ "i-0e", 4, "negative zero" },
		{ "i03e", 4, "integer leading zero" },
		{ "i-03e", 5, "negative leading zero" },
		{ "i1", 2, "integer without end" },
		{ "i+1e", 4, "plus sign" },
		{ "i 1e", 4, "space in integer" },
		{ "i1.5e", 5, "fraction" },
		{ "i9223372036854775808e", 21, "int64 overflow" },
		{ "i-9223372036854775809e", 22, "int64 underflow" },
		{ "i99999999999999999999999999e", 28, "huge integer" },
		{ "03:abc", 6, "length leading zero" },
		{ "00:", 3, "zero length with leading zero" },
		{ "4:abc", 5, "length past the end" },
		{ "1:", 2, "truncated string" },
		{ "3abc", 4, "no colon" },
		{ "3", 1, "length only" },
		{ ":abc", 4, "no length" },
		{ "-1:a", 4, "negative length" },
		{ "18446744073709551616:a", 22, "length 2^64" },
		{ "18446744073709551615:a", 22, "length SIZE_MAX" },
		{ "99999999999999999999999999999:x", 31, "length overflows" },
		{ "4294967296:abc", 14, "length 2^32" },
		{ "d3:abc", 6, "dict truncated after key" },
		{ "d1:a1:b", 7, "dict not closed" },
		{ "l1:a1:b", 7, "list not closed" },
		{ "x", 1, "unknown type" },
		{ "d1:ax1:be", 9, "unknown type inside" },
		{ "l\0e", 3, "NUL byte as value" },
	};
	struct benc_node nd[NODES];
	char *c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		int rc = decode(bad[i].in, bad[i].len, nd, NODES, &c);

		if (rc != -EPROTO)
			fail_msg("%s (\"%.*s\"): got %d, want -EPROTO", bad[i].why,
				 (int)bad[i].len, bad[i].in, rc);
		free(c);
	}
}

/* Every strict prefix of a valid message is refused. */
static void
test_benc__every_truncation(void **state)
{
	static const char in[] = "d7:command5:offer5:flagsl3:abci-12ee3:sdp0:e";
	struct benc_node nd[NODES];
	char *c;

	(void)state;
	assert_true(decode(in, sizeof(in) - 1, nd, NODES, &c) > 0);
	free(c);
	for (size_t n = 0; n < sizeof(in) - 1; n++) {
		int rc = decode(in, n, nd, NODES, &c);

		if (rc != -EPROTO)
			fail_msg("prefix of %zu bytes: got %d", n, rc);
		free(c);
	}
}

static void
test_benc__depth_limit(void **state)
{
	char in[2 * (BENC_MAX_DEPTH + 1)];
	struct benc_node nd[BENC_MAX_DEPTH + 2];
	char *c;
	size_t n;

	(void)state;
	/* BENC_MAX_DEPTH nested lists: accepted. */
	n = 0;
	for (int i = 0; i < BENC_MAX_DEPTH; i++)
		in[n++] = 'l';
	for (int i = 0; i < BENC_MAX_DEPTH; i++)
		in[n++] = 'e';
	assert_int_equal(decode(in, n, nd, BENC_MAX_DEPTH + 2, &c),
			 BENC_MAX_DEPTH);
	assert_int_equal(nd[0].span, BENC_MAX_DEPTH);
	free(c);
	/* One more: refused, before any closing byte is looked at. */
	n = 0;
	for (int i = 0; i < BENC_MAX_DEPTH + 1; i++)
		in[n++] = 'l';
	for (int i = 0; i < BENC_MAX_DEPTH + 1; i++)
		in[n++] = 'e';
	assert_int_equal(decode(in, n, nd, BENC_MAX_DEPTH + 2, &c), -EPROTO);
	free(c);
	/* A megabyte of 'd': refused without recursion. */
	{
		size_t big = 1 << 20;
		char *d = malloc(big);

		assert_non_null(d);
		memset(d, 'd', big);
		assert_int_equal(benc_decode(nd, BENC_MAX_DEPTH + 2, d, big),
				 -EPROTO);
		free(d);
	}
}

static void
test_benc__node_table_full(void **state)
{
	static const char in[] = "li1ei2ei3ee";
	struct benc_node nd[4];
	char *c;

	(void)state;
	assert_int_equal(decode(in, sizeof(in) - 1, nd, 3, &c), -ENOSPC);
	free(c);
	assert_int_equal(decode(in, sizeof(in) - 1, nd, 4, &c), 4);
	free(c);
}

/* Raw slices re-encode a decoded value byte for byte. */
static void
test_benc__raw_copy(void **state)
{
	static const char in[] = "d5:replyd6:result2:oke8:instance3:a:be";
	struct benc_node nd[NODES];
	const struct benc_node *r;
	struct benc_enc e;
	char out[64], *c;

	(void)state;
	assert_true(decode(in, sizeof(in) - 1, nd, NODES, &c) > 0);
	r = benc_dict_get(&nd[0], "reply");
	assert_non_null(r);
	benc_enc_init(&e, out, sizeof(out));
	benc_put_list(&e);
	benc_put_raw(&e, r->raw, r->raw_len);
	benc_put_end(&e);
	assert_int_equal(benc_enc_finish(&e), (int)strlen("ld6:result2:okee"));
	assert_memory_equal(out, "ld6:result2:okee", e.len);
	free(c);
}

/* Deterministic random bytes over the codec's alphabet never crash it,
 * and anything it accepts re-encodes to the same bytes' length. */
static void
test_benc__random_input(void **state)
{
	static const char alpha[] = "dlei0123456789:-xa";
	struct benc_node nd[NODES];
	uint32_t x = 12345;
	char in[40], *c;

	(void)state;
	for (int round = 0; round < 200000; round++) {
		size_t len = 1 + round % (sizeof(in) - 1);
		int rc;

		for (size_t i = 0; i < len; i++) {
			x = x * 1103515245u + 12345u;
			in[i] = alpha[(x >> 16) % (sizeof(alpha) - 1)];
		}
		rc = decode(in, len, nd, NODES, &c);
		assert_true(rc == -EPROTO || rc == -ENOSPC || rc > 0);
		if (rc > 0)
			assert_int_equal(nd[0].raw_len, len);
		free(c);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_benc__encode_ng_offer),
		cmocka_unit_test(test_benc__encode_errors),
		cmocka_unit_test(test_benc__int_limits),
		cmocka_unit_test(test_benc__tree_layout),
		cmocka_unit_test(test_benc__rtpengine_reply),
		cmocka_unit_test(test_benc__hostile_input),
		cmocka_unit_test(test_benc__every_truncation),
		cmocka_unit_test(test_benc__depth_limit),
		cmocka_unit_test(test_benc__node_table_full),
		cmocka_unit_test(test_benc__raw_copy),
		cmocka_unit_test(test_benc__random_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
