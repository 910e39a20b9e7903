/*
 * test_sip.c - the Via branch that names a core: make/parse round trip,
 * and refusal of branches not of that form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "lib/hash.h"
#include "lib/sip.h"

static void
test_sip__branch_round_trip(void **state)
{
	static const int ids[] = { 1, 2, 9, 10, 255, 4096, 65535 };
	static const uint64_t tokens[] = { 0, 1, 0xffffffffffffffffULL, 0x1234abcd };

	(void)state;
	for (size_t i = 0; i < sizeof(ids) / sizeof(*ids); i++)
		for (size_t j = 0; j < sizeof(tokens) / sizeof(*tokens); j++) {
			char b[SIP_BRANCH_MAX];
			uint64_t mac = ~tokens[j] ^ 0x5a, s, m;
			int n = sip_branch_make(b, sizeof(b), ids[i], tokens[j],
						mac), id;

			assert_true(n > 0 && n < SIP_BRANCH_MAX);
			assert_int_equal(strlen(b), n);
			assert_memory_equal(b, "z9hG4bK", 7);	/* RFC 3261 cookie */
			assert_int_equal(sip_branch_core(b, (size_t)n), ids[i]);
			assert_int_equal(sip_branch_parse(b, (size_t)n, &id, &s,
							  &m), 0);
			assert_int_equal(id, ids[i]);
			assert_true(s == tokens[j] && m == mac);
		}
}

static void
test_sip__branch_make_reports_short_buffer(void **state)
{
	char b[SIP_BRANCH_MAX];
	int n = sip_branch_make(b, sizeof(b), 12, 42, 43);

	(void)state;
	for (size_t cap = 0; cap <= (size_t)n; cap++)
		assert_int_equal(sip_branch_make(b, cap, 12, 42, 43), -ENOSPC);
}

/* The builder writes what snprintf would, and cuts where it would. */
static void
test_sip__cat_as_snprintf(void **state)
{
	char out[64], ref[64];
	struct sip_cat b;

	(void)state;
	sip_cat_init(&b, out, sizeof(out));
	sip_cat_str(&b, "abc");
	sip_cat_ch(&b, '|');
	sip_cat_str(&b, NULL);
	sip_cat_uint(&b, 0);
	sip_cat_ch(&b, ':');
	sip_cat_uint(&b, 18446744073709551615ull);
	sip_cat_ch(&b, '.');
	sip_cat_hex16(&b, 0xabcdef0123ull);
	snprintf(ref, sizeof(ref), "abc|%u:%llu.%016llx", 0u,
		 18446744073709551615ull, 0xabcdef0123ull);
	assert_string_equal(out, ref);
	assert_int_equal(sip_cat_len(&b), (int)strlen(ref));
	for (size_t cap = 1; cap <= 12; cap++) {
		sip_cat_init(&b, out, cap);
		sip_cat_str(&b, "abcdef");
		sip_cat_uint(&b, 12345);
		memcpy(ref, "abcdef12345", cap - 1);	/* snprintf's cut */
		ref[cap - 1] = '\0';
		assert_string_equal(out, ref);
		assert_int_equal(sip_cat_len(&b), cap == 12 ? 11 : -E2BIG);
	}
	sip_cat_init(&b, out, 0);	/* no room: nothing written */
	sip_cat_str(&b, "x");
	assert_int_equal(sip_cat_len(&b), -E2BIG);
	/* sip_copy cuts as snprintf "%s" does; NULL copies nothing. */
	assert_int_equal(sip_copy(out, 4, "abcdef"), -E2BIG);
	assert_string_equal(out, "abc");
	assert_int_equal(sip_copy(out, sizeof(out), "abcdef"), 6);
	assert_string_equal(out, "abcdef");
	assert_int_equal(sip_copy(out, sizeof(out), NULL), 0);
	assert_string_equal(out, "");
}

static void
test_sip__branch_core_rejects_foreign_branches(void **state)
{
	static const char *const bad[] = {
		"", "z9hG4bK", "z9hG4bK1234", "z9hG4bKsm", "z9hG4bKsm.1",
		"z9hG4bKsm1", "z9hG4bKsm1x.1", "z9hG4bKsm0.1", "z9hG4bKsm65536.1",
		"z9hG4bKsm99999999999999999999.1", "z9hG4bKSM1.1", "Z9HG4BKsm1.1",
		"z9hG4bKsm-1.1", "z9hG4bKsm 1.1", "1234", "sm1.1",
		/* the old, unsigned form and near misses of the new one */
		"z9hG4bKsm1.000000000000002a",
		"z9hG4bKsm1.000000000000002a.",
		"z9hG4bKsm1.000000000000002a.000000000000002",
		"z9hG4bKsm1.000000000000002a.000000000000002b0",
		"z9hG4bKsm1.000000000000002A.000000000000002b",
		"z9hG4bKsm1.000000000000002a-000000000000002b",
		"z9hG4bKsm1.00000000000002a.0000000000000002b",
		"z9hG4bKsm1.000000000000002a.00000000000000g2",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		if (sip_branch_core(bad[i], strlen(bad[i])) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
}

static void
test_sip__branch_core_respects_the_slice_length(void **state)
{
	static const char b[] =
		"z9hG4bKsm12.00000000000000ab.00000000000000cd;rport";

	(void)state;
	/* Not NUL-terminated slices: the length is the end. */
	assert_int_equal(sip_branch_core(b, 45), 12);
	assert_int_equal(sip_branch_core(b, 46), -1);
	assert_int_equal(sip_branch_core(b, 44), -1);
	assert_int_equal(sip_branch_core(b, 11), -1);
	assert_int_equal(sip_branch_core(b, 3), -1);
}

/* The MAC binds core, serial and Call-ID under the key; a Call-ID
 * past SIP_BRANCH_CID_MAX counts up to there. */
static void
test_sip__branch_mac_binds_call_id_and_key(void **state)
{
	struct hash_key k = { 1, 2 }, k2 = { 1, 3 };
	char b[SIP_BRANCH_MAX], cid[SIP_BRANCH_CID_MAX + 10];
	int n;

	(void)state;
	n = sip_branch_make(b, sizeof(b), 7, 42,
			    sip_branch_mac(&k, 7, 42, "abc@h", 5));
	assert_int_equal(sip_branch_verify(&k, b, (size_t)n, "abc@h", 5), 7);
	assert_int_equal(sip_branch_verify(&k, b, (size_t)n, "abc@g", 5), -1);
	assert_int_equal(sip_branch_verify(&k, b, (size_t)n, "abc@", 4), -1);
	assert_int_equal(sip_branch_verify(&k2, b, (size_t)n, "abc@h", 5), -1);
	assert_int_equal(sip_branch_verify(&k, b, (size_t)n - 1, "abc@h", 5), -1);
	assert_true(sip_branch_mac(&k, 7, 42, "x", 1) !=
		    sip_branch_mac(&k, 7, 43, "x", 1));
	assert_true(sip_branch_mac(&k, 7, 42, "x", 1) !=
		    sip_branch_mac(&k, 8, 42, "x", 1));
	memset(cid, 'c', sizeof(cid));
	assert_true(sip_branch_mac(&k, 1, 1, cid, SIP_BRANCH_CID_MAX) ==
		    sip_branch_mac(&k, 1, 1, cid, sizeof(cid)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sip__branch_round_trip),
		cmocka_unit_test(test_sip__branch_make_reports_short_buffer),
		cmocka_unit_test(test_sip__cat_as_snprintf),
		cmocka_unit_test(test_sip__branch_core_rejects_foreign_branches),
		cmocka_unit_test(test_sip__branch_core_respects_the_slice_length),
		cmocka_unit_test(test_sip__branch_mac_binds_call_id_and_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
