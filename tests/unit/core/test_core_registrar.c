/*
 * test_core_registrar.c - the registrar's expiry and Call-ID/CSeq rules
 * (RFC 3261 10.3 steps 6 and 7), against the real object.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <cmocka.h>

#include "core/core.h"
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
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
