/*
 * test_loc.c - the public entry points (location/loc.c): arguments
 * that do not fit or make no sense are refused before the store sees
 * them, and a segment too small for max_bindings is -ENOSPC.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "tests/unit/location/loc_test.h"

static void
test_loc__bad_arguments_refused(void **state)
{
	struct lt_fix *f = *state;
	struct loc_binding b = lt_binding("i@a.test", "sip:i@h", T0 + 60);
	struct loc_config cfg = f->cfg;
	struct loc *l = NULL;
	char name[64];

	memset(b.user_agent, 'x', sizeof(b.user_agent));
	assert_int_equal(loc_save(f->l, &b, T0), -E2BIG);
	b = lt_binding("i@a.test", "", T0 + 60);
	assert_int_equal(loc_save(f->l, &b, T0), -EINVAL);
	memset(b.aor, 'a', sizeof(b.aor));
	assert_int_equal(loc_save(f->l, &b, T0), -E2BIG);
	/* the invalidations separate AORs by LF */
	b = lt_binding("i\n@a.test", "sip:i@h", T0 + 60);
	assert_int_equal(loc_save(f->l, &b, T0), -EINVAL);
	assert_int_equal(loc_lookup(f->l, "i\x7f@a.test", T0, NULL, 0, NULL),
			 -EINVAL);
	assert_int_equal(loc_lookup(f->l, NULL, T0, NULL, 0, NULL), -EINVAL);
	assert_int_equal(loc_lookup(f->l, "i@a.test", T0, NULL, 1, NULL), -EINVAL);
	assert_int_equal(loc_lookup(f->l, "i@a.test", T0, NULL, 0, NULL), 0);
	assert_int_equal(loc_remove(f->l, "", "sip:i@h", T0), -EINVAL);
	assert_int_equal(loc_remove_aor(NULL, "i@a.test", T0), -EINVAL);
	loc_free(NULL);

	snprintf(name, sizeof(name), "/smloc-test-%d-small", (int)getpid());
	cfg.shm_name = name;
	cfg.shm_size = 16 * sizeof(struct loc_slot);
	assert_int_equal(loc_new(&l, &cfg, NULL), -ENOSPC);
	assert_null(l);
	assert_int_equal(loc_shm_unlink(name), -ENOENT);
	cfg.redis_host = "127.0.0.1";
	cfg.shm_size = 64 << 20;
	assert_int_equal(loc_new(&l, &cfg, NULL), -EINVAL);	/* no loop */
	assert_null(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		LT_TEST(test_loc__bad_arguments_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
