/*
 * test_key.c - HKDF against RFC 5869's vectors, one key per use, and
 * the master key: the same secret gives the same keys on every host,
 * no secret gives one random key per run_dir, made 0600.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/cfg.h"
#include "lib/key.h"

static void
unhex(const char *hex, unsigned char *out)
{
	for (size_t i = 0; hex[2 * i]; i++)
		sscanf(hex + 2 * i, "%2hhx", &out[i]);
}

/* RFC 5869 A.1: expand of its PRK with info f0..f9; the first 32 bytes
 * of the OKM. */
static void
test_key__expand_matches_rfc5869(void **state)
{
	unsigned char prk[KEY_LEN], want[KEY_LEN], out[KEY_LEN];

	(void)state;
	unhex("077709362c2e32df0ddc3f0dc47bba63"
	      "90b6c73bb50f9c3122ec844ad7c2b3e5", prk);
	unhex("3cb25f25faacd57a90434f64d0362f2a"
	      "2d2d0a90cf1a5a4c5db02d56ecc4c5bf", want);
	assert_int_equal(key_derive(prk, "\xf0\xf1\xf2\xf3\xf4\xf5\xf6\xf7"
				    "\xf8\xf9", out), 0);
	assert_memory_equal(out, want, KEY_LEN);
}

static void
test_key__each_use_its_own_key(void **state)
{
	unsigned char m[KEY_LEN] = { 1, 2, 3 }, a[KEY_LEN], b[KEY_LEN];

	(void)state;
	assert_int_equal(key_derive(m, KEY_USE_SIGN, a), 0);
	assert_int_equal(key_derive(m, KEY_USE_NONCE, b), 0);
	assert_memory_not_equal(a, b, KEY_LEN);
	assert_memory_not_equal(a, m, KEY_LEN);
}

/* Two hosts with one secret derive one key; another secret, another. */
static void
test_key__secret_is_the_same_everywhere(void **state)
{
	struct cfg c1, c2;
	unsigned char a[KEY_LEN], b[KEY_LEN];

	(void)state;
	memset(&c1, 0, sizeof(c1));
	snprintf(c1.secret, sizeof(c1.secret), "correct horse battery");
	snprintf(c1.run_dir, sizeof(c1.run_dir), "/nonexistent-a");
	c2 = c1;
	snprintf(c2.run_dir, sizeof(c2.run_dir), "/nonexistent-b");
	assert_int_equal(key_load(&c1, KEY_USE_GUEST, a), 0);
	assert_int_equal(key_load(&c2, KEY_USE_GUEST, b), 0);
	assert_memory_equal(a, b, KEY_LEN);
	snprintf(c2.secret, sizeof(c2.secret), "correct horse batterz");
	assert_int_equal(key_load(&c2, KEY_USE_GUEST, b), 0);
	assert_memory_not_equal(a, b, KEY_LEN);
}

/* Without a secret the first process makes run_dir/cluster.key, 0600,
 * and every later one reads the same; another run_dir, another key. */
static void
test_key__random_master_per_run_dir(void **state)
{
	char d1[] = "/tmp/test_key.XXXXXX", d2[] = "/tmp/test_key.XXXXXX";
	char path[64];
	struct cfg c;
	struct stat st;
	unsigned char a[KEY_LEN], b[KEY_LEN], z[KEY_LEN] = { 0 };

	(void)state;
	assert_non_null(mkdtemp(d1));
	assert_non_null(mkdtemp(d2));
	memset(&c, 0, sizeof(c));
	snprintf(c.run_dir, sizeof(c.run_dir), "%s", d1);
	assert_int_equal(key_master_load(&c, a), 0);
	assert_memory_not_equal(a, z, KEY_LEN);
	assert_int_equal(key_master_load(&c, b), 0);
	assert_memory_equal(a, b, KEY_LEN);
	snprintf(path, sizeof(path), "%s/cluster.key", d1);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(c.run_dir, sizeof(c.run_dir), "%s", d2);
	assert_int_equal(key_master_load(&c, b), 0);
	assert_memory_not_equal(a, b, KEY_LEN);
	unlink(path);
	snprintf(path, sizeof(path), "%s/cluster.key", d2);
	unlink(path);
	rmdir(d1);
	rmdir(d2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key__expand_matches_rfc5869),
		cmocka_unit_test(test_key__each_use_its_own_key),
		cmocka_unit_test(test_key__secret_is_the_same_everywhere),
		cmocka_unit_test(test_key__random_master_per_run_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
