/*
 * test_core_registrar.c - the registrar's expiry and Call-ID/CSeq rules
 * (RFC 3261 10.3 steps 6 and 7) and its reading of a Contact's
 * parameters, against the real object.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <cmocka.h>

#include "core/core.h"
#include "core/core_int.h"
#include "lib/cfg.h"

static struct cfg cfg;

static int
setup(void **state)
{
	char err[256];

	(void)state;
	if (cfg_load(&cfg, NULL, err, sizeof(err)) != 0)
		return -1;
	cfg.min_expires = 60;
	cfg.max_expires = 3600;
	cfg.default_expires = 1800;
	return 0;
}

static void
test_core_reg__param_beats_header(void **state)
{
	int g = -1;

	(void)state;
	assert_int_equal(core_reg_expires(&cfg, 120, 600, &g), 0);
	assert_int_equal(g, 120);
}

static void
test_core_reg__header_when_no_param(void **state)
{
	int g = -1;

	(void)state;
	assert_int_equal(core_reg_expires(&cfg, -1, 600, &g), 0);
	assert_int_equal(g, 600);
}

static void
test_core_reg__default_when_neither(void **state)
{
	int g = -1;

	(void)state;
	assert_int_equal(core_reg_expires(&cfg, -1, -1, &g), 0);
	assert_int_equal(g, 1800);
}

static void
test_core_reg__zero_removes_even_below_min(void **state)
{
	int g = -1;

	(void)state;
	assert_int_equal(core_reg_expires(&cfg, 0, 600, &g), 0);
	assert_int_equal(g, 0);
	assert_int_equal(core_reg_expires(&cfg, -1, 0, &g), 0);
	assert_int_equal(g, 0);
}

static void
test_core_reg__too_brief_is_423(void **state)
{
	int g = 77;

	(void)state;
	assert_int_equal(core_reg_expires(&cfg, 59, -1, &g), -ERANGE);
	assert_int_equal(g, 77);	/* untouched on error */
	assert_int_equal(core_reg_expires(&cfg, -1, 1, &g), -ERANGE);
	assert_int_equal(core_reg_expires(&cfg, 60, -1, &g), 0);
	assert_int_equal(g, 60);
}

static void
test_core_reg__long_is_cut_to_max(void **state)
{
	int g = -1;

	(void)state;
	assert_int_equal(core_reg_expires(&cfg, 999999, -1, &g), 0);
	assert_int_equal(g, 3600);
	assert_int_equal(core_reg_expires(&cfg, -1, 3601, &g), 0);
	assert_int_equal(g, 3600);
}

static void
test_core_reg__cseq_rules(void **state)
{
	(void)state;
	/* Another Call-ID always applies, whatever its CSeq. */
	assert_int_equal(core_reg_cseq_check("a@h", 10, "b@h", 1),
			 CORE_REG_APPLY);
	assert_int_equal(core_reg_cseq_check("a@h", 10, "a@h", 11),
			 CORE_REG_APPLY);
	assert_int_equal(core_reg_cseq_check("a@h", 10, "a@h", 10),
			 CORE_REG_RETRANS);
	assert_int_equal(core_reg_cseq_check("a@h", 10, "a@h", 9),
			 CORE_REG_STALE);
	assert_int_equal(core_reg_cseq_check("a@h", 4000000000u, "a@h",
					     4000000001u), CORE_REG_APPLY);
}

/* One Contact value decoded (core_reg_contact_read) under min 60, max
 * 3600, default 1800: what it grants, or the status it refuses with. */
static void
test_core_reg__contact_table(void **state)
{
	static const struct {
		const char *ct;
		long hdr;		/* Expires header; -1: none */
		int code, granted, q;
		const char *instance;
		uint32_t reg_id;
	} rows[] = {
		{ "<sip:a@192.0.2.4:5060>;expires=120", -1, 0, 120, 1000, "", 0 },
		{ "<sip:a@192.0.2.4>;q=0.7", 600, 0, 600, 700, "", 0 },
		{ "<sip:a@192.0.2.4>;q=0", -1, 0, 1800, 0, "", 0 },
		{ "<sip:a@192.0.2.4>;expires=0", 600, 0, 0, 1000, "", 0 },
		{ "<sip:a@192.0.2.4>;+sip.instance=\"<urn:uuid:1>\";reg-id=2",
		  -1, 0, 1800, 1000, "<urn:uuid:1>", 2 },
		{ "<sip:a@192.0.2.4>;+sip.instance=\"", -1, 0, 1800, 1000,
		  "\"", 0 },
		{ "<sip:a@192.0.2.4>;expires=99999999999999999999999", -1, 0,
		  3600, 1000, "", 0 },
		{ "<sip:a@192.0.2.4>;q=1.5", -1, 400, 0, 0, NULL, 0 },
		{ "<sip:a@192.0.2.4>;q=nan", -1, 400, 0, 0, NULL, 0 },
		/* a q without value counts as none (expires= does not) */
		{ "<sip:a@192.0.2.4>;q=", -1, 0, 1800, 1000, "", 0 },
		{ "<sip:a@192.0.2.4>;expires=", -1, 400, 0, 0, NULL, 0 },
		{ "<sip:a@192.0.2.4>;expires=-1", -1, 400, 0, 0, NULL, 0 },
		{ "<sip:a@192.0.2.4>;expires=1x", -1, 400, 0, 0, NULL, 0 },
		{ "<sip:a@192.0.2.4>;expires=10", -1, 423, 0, 0, NULL, 0 },
		{ "<sip:a@192.0.2.4>", 10, 423, 0, 0, NULL, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct core_reg_contact k;
		osip_contact_t *ct = NULL;
		const char *why = NULL;
		int code;

		assert_int_equal(osip_contact_init(&ct), 0);
		if (osip_contact_parse(ct, rows[i].ct) != 0)
			fail_msg("row %zu: libosip2 refuses it", i);
		code = core_reg_contact_read(&cfg, ct, rows[i].hdr, &k, &why);
		osip_contact_free(ct);
		if (code != rows[i].code)
			fail_msg("row %zu: %d, not %d", i, code, rows[i].code);
		if (code == 400)
			assert_non_null(why);
		if (code != 0)
			continue;
		assert_int_equal(k.granted, rows[i].granted);
		assert_int_equal(k.q, rows[i].q);
		assert_string_equal(k.instance, rows[i].instance);
		assert_int_equal(k.reg_id, rows[i].reg_id);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_core_reg__param_beats_header),
		cmocka_unit_test(test_core_reg__header_when_no_param),
		cmocka_unit_test(test_core_reg__default_when_neither),
		cmocka_unit_test(test_core_reg__zero_removes_even_below_min),
		cmocka_unit_test(test_core_reg__too_brief_is_423),
		cmocka_unit_test(test_core_reg__long_is_cut_to_max),
		cmocka_unit_test(test_core_reg__cseq_rules),
		cmocka_unit_test(test_core_reg__contact_table),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
