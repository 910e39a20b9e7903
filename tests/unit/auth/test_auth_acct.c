/*
 * test_auth_acct.c - the account schema against a real redis-server:
 * HA1 values (never the password) for both algorithms, replace, delete,
 * list per realm and across realms with SCAN, names that could forge a
 * key or a pattern refused, a value of the wrong shape reported.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "auth/auth.h"
#include "tests/unit/redis_test.h"

struct fix {
	struct srv srv;
	redisContext *r;
};

static int
setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	srv_start(&f->srv, 0);
	f->r = srv_client(f->srv.port);
	assert_non_null(f->r);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fix *f = *state;

	redisFree(f->r);
	srv_stop(&f->srv, SIGTERM);
	free(f);
	return 0;
}

static void
test_auth_acct__set_stores_ha1_of_both_algorithms_not_the_password(void **state)
{
	struct fix *f = *state;
	struct auth_account a;
	char want[DIGEST_HEX_MAX];
	redisReply *r;

	assert_int_equal(auth_account_set(f->r, "sm", "a.example", "alice", "s3cret"), 0);
	assert_int_equal(auth_account_get(f->r, "sm", "a.example", "alice", &a), 0);
	digest_ha1(DIGEST_MD5, "alice", "a.example", "s3cret", want);
	assert_string_equal(a.ha1[DIGEST_MD5], want);
	digest_ha1(DIGEST_SHA256, "alice", "a.example", "s3cret", want);
	assert_string_equal(a.ha1[DIGEST_SHA256], want);
	assert_string_equal(a.user, "alice");
	assert_string_equal(a.realm, "a.example");
	/* Exactly two fields, and nothing in Redis holds the password. */
	r = redisCommand(f->r, "HLEN sm:acct:a.example:alice");
	assert_int_equal(r->integer, 2);
	freeReplyObject(r);
	r = redisCommand(f->r, "DUMP sm:acct:a.example:alice");
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	assert_null(memmem(r->str, r->len, "s3cret", 6));
	freeReplyObject(r);
	/* A new password replaces both values. */
	assert_int_equal(auth_account_set(f->r, "sm", "a.example", "alice", "other"), 0);
	assert_int_equal(auth_account_get(f->r, "sm", "a.example", "alice", &a), 0);
	assert_string_not_equal(a.ha1[DIGEST_SHA256], want);
	/* Same user in another realm, another prefix: other accounts. */
	assert_int_equal(auth_account_get(f->r, "sm", "b.example", "alice", &a), -ENOENT);
	assert_int_equal(auth_account_get(f->r, "other", "a.example", "alice", &a), -ENOENT);
}

static void
test_auth_acct__del(void **state)
{
	struct fix *f = *state;
	struct auth_account a;

	assert_int_equal(auth_account_set(f->r, "sm", "a.example", "bob", "pw"), 0);
	assert_int_equal(auth_account_del(f->r, "sm", "a.example", "bob"), 0);
	assert_int_equal(auth_account_get(f->r, "sm", "a.example", "bob", &a), -ENOENT);
	assert_int_equal(auth_account_del(f->r, "sm", "a.example", "bob"), -ENOENT);
}

struct seen {
	int n;
	char names[8][200];
};

static void
collect(void *arg, const char *realm, const char *user)
{
	struct seen *s = arg;

	assert_true(s->n < 8);
	snprintf(s->names[s->n++], sizeof(s->names[0]), "%s@%s", user, realm);
}

static int
seen_has(const struct seen *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->names[i], name))
			return 1;
	return 0;
}

static void
test_auth_acct__list_per_realm_and_all(void **state)
{
	struct fix *f = *state;
	struct seen s = { 0 };
	redisReply *r;

	assert_int_equal(auth_account_set(f->r, "sm", "a.example", "alice", "x"), 0);
	assert_int_equal(auth_account_set(f->r, "sm", "a.example", "carol.o'neil", "x"), 0);
	assert_int_equal(auth_account_set(f->r, "sm", "b.example", "alice", "x"), 0);
	/* Another cluster's accounts and other keys are not listed. */
	assert_int_equal(auth_account_set(f->r, "sm2", "a.example", "mallory", "x"), 0);
	r = redisCommand(f->r, "SET sm:aor:alice@a.example x");
	freeReplyObject(r);
	assert_int_equal(auth_account_list(f->r, "sm", "a.example", collect, &s), 2);
	assert_true(seen_has(&s, "alice@a.example"));
	assert_true(seen_has(&s, "carol.o'neil@a.example"));
	memset(&s, 0, sizeof(s));
	assert_int_equal(auth_account_list(f->r, "sm", NULL, collect, &s), 3);
	assert_true(seen_has(&s, "alice@b.example"));
	assert_false(seen_has(&s, "mallory@a.example"));
	/* A realm that would be a pattern is refused, not scanned. */
	assert_int_equal(auth_account_list(f->r, "sm", "*", collect, &s), -EINVAL);
	assert_int_equal(auth_account_list(f->r, "sm", "a.ex[a]mple", collect, &s), -EINVAL);
}

static void
test_auth_acct__names_that_could_forge_a_key_are_refused(void **state)
{
	static const char *users[] = {
		"", "a:b", "a@b", "a b", "a%40b", "a*", "a\r\nDEL x", "a\"b",
		"0123456789012345678901234567890123456789012345678901234567890123456789",
	};
	static const char *realms[] = {
		"", "a:b", "a b", "*", "a.example:x", ".a", "-a", "a/b", "a\nb",
	};
	struct fix *f = *state;
	char key[AUTH_KEY_MAX];

	for (size_t i = 0; i < sizeof(users) / sizeof(*users); i++) {
		assert_false(auth_user_valid(users[i]));
		assert_int_equal(auth_account_key("sm", "a.example", users[i], key), -EINVAL);
		assert_int_equal(auth_account_set(f->r, "sm", "a.example", users[i], "x"), -EINVAL);
	}
	for (size_t i = 0; i < sizeof(realms) / sizeof(*realms); i++) {
		assert_false(auth_realm_valid(realms[i]));
		assert_int_equal(auth_account_set(f->r, "sm", realms[i], "alice", "x"), -EINVAL);
	}
	assert_int_equal(auth_account_set(f->r, "sm", "a.example", "alice", ""), -EINVAL);
	assert_true(auth_user_valid("guest.room-1.x_y~z"));
	assert_true(auth_realm_valid("sip.a-b.example"));
	assert_int_equal(auth_account_key("sm", "a.example", "alice", key), 0);
	assert_string_equal(key, "sm:acct:a.example:alice");
}

static void
test_auth_acct__a_value_of_the_wrong_shape_is_an_error(void **state)
{
	struct fix *f = *state;
	struct auth_account a;
	redisReply *r;

	r = redisCommand(f->r, "HSET sm:acct:a.example:eve md5 plaintext");
	freeReplyObject(r);
	assert_int_equal(auth_account_get(f->r, "sm", "a.example", "eve", &a), -EIO);
	r = redisCommand(f->r, "SET sm:acct:a.example:eve notahash");
	freeReplyObject(r);
	assert_int_equal(auth_account_get(f->r, "sm", "a.example", "eve", &a), -EIO);
}

static void
test_auth_acct__redis_gone_is_eio(void **state)
{
	struct fix *f = *state;
	struct auth_account a;

	srv_stop(&f->srv, SIGKILL);
	assert_int_equal(auth_account_set(f->r, "sm", "a.example", "alice", "x"), -EIO);
	assert_int_equal(auth_account_get(f->r, "sm", "a.example", "alice", &a), -EIO);
	assert_int_equal(auth_account_del(f->r, "sm", "a.example", "alice"), -EIO);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_auth_acct__set_stores_ha1_of_both_algorithms_not_the_password),
		T(test_auth_acct__del),
		T(test_auth_acct__list_per_realm_and_all),
		T(test_auth_acct__names_that_could_forge_a_key_are_refused),
		T(test_auth_acct__a_value_of_the_wrong_shape_is_an_error),
		T(test_auth_acct__redis_gone_is_eio),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
