/*
 * test_auth_store.c - the cores' account lookup (auth/auth_store.c)
 * against a real redis-server: found and not found, a cache hit that
 * costs Redis nothing (its own command counter says so), a changed
 * password seen at once through the PUBLISH of sipmesh-ctl's path, a
 * stale entry served while Redis is stopped or killed, -EAGAIN when
 * down and uncached, a cache bounded under many users (LRU against a
 * model), names that could forge a key refused before Redis, and the
 * pending callbacks cancelled by free.  Loop runs to a condition with
 * a deadline, no sleeps.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "lib/cfg.h"
#include "lib/log.h"
#include "tests/unit/loop_test.h"
#include "tests/unit/redis_test.h"

struct fix {
	struct srv srv;
	uv_loop_t loop;
	struct cfg cfg;
	struct auth_store *s;
	redisContext *r;	/* the test's own client, the admin's role */
	int calls, rc;
	struct auth_account a;
};

static int
fix_setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	log_init("test", LOG_LVL_ERR);
	srv_start(&f->srv, 0);
	f->r = srv_client(f->srv.port);
	assert_int_equal(cfg_load(&f->cfg, NULL, err, sizeof(err)), 0);
	snprintf(f->cfg.redis, sizeof(f->cfg.redis), "127.0.0.1:%d",
		 f->srv.port);
	snprintf(f->cfg.redis_prefix, sizeof(f->cfg.redis_prefix), "smt");
	f->cfg.redis_timeout_ms = 200;
	f->cfg.redis_backoff_max_ms = 200;
	*state = f;
	return 0;
}

static int
fix_teardown(void **state)
{
	struct fix *f = *state;

	auth_store_free(f->s);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	if (f->r)
		redisFree(f->r);
	srv_stop(&f->srv, SIGKILL);
	free(f);
	return 0;
}

static int
run_until(struct fix *f, loop_cond_fn cond, void *arg)
{
	return loop_run_until(&f->loop, cond, f, arg, DEADLINE_MS);
}

static int
up_is(void *ctx, void *arg)
{
	struct fix *f = ctx;

	struct auth_store_stats st;

	auth_store_stats(f->s, &st);
	return st.redis_up == (uint64_t)(intptr_t)arg;
}

static int
calls_are(void *ctx, void *arg)
{
	struct fix *f = ctx;

	return f->calls >= (int)(intptr_t)arg;
}

static int
invalidations_are(void *ctx, void *arg)
{
	struct fix *f = ctx;

	struct auth_store_stats st;

	auth_store_stats(f->s, &st);
	return st.invalidations >= (uint64_t)(intptr_t)arg;
}

static void
on_got(void *arg, int rc, const struct auth_account *a)
{
	struct fix *f = arg;

	f->calls++;
	f->rc = rc;
	if (rc == 0)
		f->a = *a;
	else
		assert_null(a);
}

static void
open_store(struct fix *f, size_t cache_max, int ttl_s)
{
	assert_int_equal(auth_store_new(&f->s, &f->loop, &f->cfg,
					"sipmesh-core-1", cache_max, ttl_s), 0);
	assert_true(run_until(f, up_is, (void *)1));
}

/* Looks user@realm up; returns what auth_store_get returned, and for a
 * lookup sent (1) waits for its callback and puts its rc in f->rc. */
static int
get(struct fix *f, const char *realm, const char *user)
{
	int want = f->calls + 1;
	int rc = auth_store_get(f->s, realm, strlen(realm), user, strlen(user),
				&f->a, on_got, f);

	if (rc == 1)
		assert_true(run_until(f, calls_are, (void *)(intptr_t)want));
	else
		assert_int_equal(f->calls, want - 1);	/* cb not called */
	return rc;
}

static void
ha1_is(const struct auth_account *a, const char *user, const char *pw)
{
	char want[DIGEST_HEX_MAX];

	digest_ha1(DIGEST_MD5, user, "a.test", pw, want);
	assert_string_equal(a->ha1[DIGEST_MD5], want);
	digest_ha1(DIGEST_SHA256, user, "a.test", pw, want);
	assert_string_equal(a->ha1[DIGEST_SHA256], want);
}

/* HMGETs Redis has executed. */
static long
redis_hmgets(struct fix *f)
{
	return srv_calls(f->r, "hmget");
}

static void
test_auth_store__found_not_found_and_cache_hit(void **state)
{
	struct fix *f = *state;

	assert_int_equal(auth_account_set(f->r, "smt", "a.test", "alice",
					  "pw1"), 0);
	open_store(f, 100, 60);
	assert_int_equal(get(f, "a.test", "alice"), 1);
	assert_int_equal(f->rc, 0);
	assert_string_equal(f->a.user, "alice");
	assert_string_equal(f->a.realm, "a.test");
	ha1_is(&f->a, "alice", "pw1");
	assert_int_equal(redis_hmgets(f), 1);

	/* the second time from the cache: no round trip */
	memset(&f->a, 0, sizeof(f->a));
	assert_int_equal(get(f, "a.test", "alice"), 0);
	ha1_is(&f->a, "alice", "pw1");
	assert_int_equal(redis_hmgets(f), 1);

	/* no such account: asked once, then the negative entry answers */
	assert_int_equal(get(f, "a.test", "mallory"), 1);
	assert_int_equal(f->rc, -ENOENT);
	assert_int_equal(get(f, "a.test", "mallory"), -ENOENT);
	assert_int_equal(redis_hmgets(f), 2);
	/* another realm is another account */
	assert_int_equal(get(f, "b.test", "alice"), 1);
	assert_int_equal(f->rc, -ENOENT);
}

static void
test_auth_store__passwd_takes_effect_at_once(void **state)
{
	struct fix *f = *state;

	assert_int_equal(auth_account_set(f->r, "smt", "a.test", "bob",
					  "old"), 0);
	open_store(f, 100, 3600);
	assert_int_equal(get(f, "a.test", "bob"), 1);
	ha1_is(&f->a, "bob", "old");

	/* Without the PUBLISH the cache would keep the old one an hour: */
	assert_int_equal(auth_account_set(f->r, "smt", "a.test", "bob",
					  "new"), 0);
	assert_int_equal(get(f, "a.test", "bob"), 0);
	ha1_is(&f->a, "bob", "old");
	/* sipmesh-ctl user passwd publishes after the write. */
	assert_int_equal(auth_account_publish(f->r, "smt", "a.test", "bob"), 0);
	assert_true(run_until(f, invalidations_are, (void *)1));
	assert_int_equal(get(f, "a.test", "bob"), 1);
	assert_int_equal(f->rc, 0);
	ha1_is(&f->a, "bob", "new");

	/* user del: gone at once too */
	assert_int_equal(auth_account_del(f->r, "smt", "a.test", "bob"), 0);
	assert_int_equal(auth_account_publish(f->r, "smt", "a.test", "bob"), 0);
	assert_true(run_until(f, invalidations_are, (void *)2));
	assert_int_equal(get(f, "a.test", "bob"), 1);
	assert_int_equal(f->rc, -ENOENT);
	/* and an add after a miss needs no wait for the negative entry */
	assert_int_equal(auth_account_set(f->r, "smt", "a.test", "bob",
					  "again"), 0);
	assert_int_equal(auth_account_publish(f->r, "smt", "a.test", "bob"), 0);
	assert_true(run_until(f, invalidations_are, (void *)3));
	assert_int_equal(get(f, "a.test", "bob"), 1);
	assert_int_equal(f->rc, 0);
	ha1_is(&f->a, "bob", "again");
}

static void
test_auth_store__stale_served_while_redis_stopped(void **state)
{
	struct fix *f = *state;

	assert_int_equal(auth_account_set(f->r, "smt", "a.test", "carol",
					  "pw"), 0);
	open_store(f, 100, 0);	/* ttl 0: every entry is stale at once */
	assert_int_equal(get(f, "a.test", "carol"), 1);
	assert_int_equal(f->rc, 0);
	kill(f->srv.pid, SIGSTOP);
	/* up still: the refresh is sent, times out, the stale one serves */
	memset(&f->a, 0, sizeof(f->a));
	assert_int_equal(get(f, "a.test", "carol"), 1);
	assert_int_equal(f->rc, 0);
	ha1_is(&f->a, "carol", "pw");
	/* down now: served at once; an unknown user cannot be */
	assert_true(run_until(f, up_is, (void *)0));
	memset(&f->a, 0, sizeof(f->a));
	assert_int_equal(get(f, "a.test", "carol"), 0);
	ha1_is(&f->a, "carol", "pw");
	assert_int_equal(get(f, "a.test", "dave"), -EAGAIN);
	kill(f->srv.pid, SIGCONT);
	assert_true(run_until(f, up_is, (void *)1));
	assert_int_equal(get(f, "a.test", "dave"), 1);
	assert_int_equal(f->rc, -ENOENT);
}

static void
test_auth_store__stale_served_while_redis_killed(void **state)
{
	struct fix *f = *state;

	assert_int_equal(auth_account_set(f->r, "smt", "a.test", "carol",
					  "pw"), 0);
	open_store(f, 100, 3600);
	assert_int_equal(get(f, "a.test", "carol"), 1);
	srv_stop(&f->srv, SIGKILL);
	assert_true(run_until(f, up_is, (void *)0));
	memset(&f->a, 0, sizeof(f->a));
	assert_int_equal(get(f, "a.test", "carol"), 0);
	ha1_is(&f->a, "carol", "pw");
	assert_int_equal(get(f, "a.test", "erin"), -EAGAIN);
	/* Back, but empty: invalidations were missed meanwhile, so the
	 * cached entry is asked again, and Redis now says no. */
	srv_start(&f->srv, f->srv.port);
	assert_true(run_until(f, up_is, (void *)1));
	assert_int_equal(get(f, "a.test", "carol"), 1);
	assert_int_equal(f->rc, -ENOENT);
}

/* The model: the last cache_max distinct names looked up. */
static void
test_auth_store__cache_bounded_lru(void **state)
{
	struct fix *f = *state;
	struct auth_store_stats st;
	char user[32];

	for (int i = 0; i < 40; i += 2) {
		snprintf(user, sizeof(user), "u%d", i);
		assert_int_equal(auth_account_set(f->r, "smt", "a.test", user,
						  "pw"), 0);
	}
	open_store(f, 8, 3600);
	for (int i = 0; i < 40; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		assert_int_equal(get(f, "a.test", user), 1);
		assert_int_equal(f->rc, i % 2 ? -ENOENT : 0);
		auth_store_stats(f->s, &st);
		assert_true(st.entries <= 8);
	}
	auth_store_stats(f->s, &st);
	assert_int_equal(st.entries, 8);
	assert_int_equal(st.evictions, 32);
	/* u32..u39 are cached; touching u32 keeps it past one eviction */
	assert_int_equal(get(f, "a.test", "u32"), 0);
	assert_int_equal(get(f, "a.test", "u1"), 1);	/* evicts u33 */
	assert_int_equal(get(f, "a.test", "u32"), 0);
	assert_int_equal(get(f, "a.test", "u33"), 1);
	assert_int_equal(get(f, "a.test", "u0"), 1);
}

/* A user or realm from a request that could name another key (':'
 * splits the key, '*' is a pattern) never reaches Redis. */
static void
test_auth_store__hostile_names_refused_before_redis(void **state)
{
	static const struct {
		const char *realm, *user;
	} bad[] = {
		{ "a.test", "alice:x" },
		{ "a.test:alice", "x" },
		{ "a.test", "*" },
		{ "a.test", "" },
		{ "", "alice" },
		{ "a.test", "al ice" },
		{ "a.test", "al\r\nFLUSHALL" },
		{ "a.test", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" },
	};
	struct fix *f = *state;

	open_store(f, 100, 60);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		assert_int_equal(get(f, bad[i].realm, bad[i].user), -ENOENT);
	assert_int_equal(redis_hmgets(f), 0);
	/* a slice is read to its length, not to a NUL */
	assert_int_equal(auth_account_set(f->r, "smt", "a.test", "al", "pw"),
			 0);
	assert_int_equal(auth_store_get(f->s, "a.testX", 6, "alice", 2, &f->a,
					on_got, f), 1);
	assert_true(run_until(f, calls_are, (void *)1));
	assert_int_equal(f->rc, 0);
	assert_string_equal(f->a.user, "al");
}

static void
test_auth_store__free_cancels_pending(void **state)
{
	struct fix *f = *state;
	const char *r = "a.test", *u = "zed";

	open_store(f, 100, 60);
	assert_int_equal(auth_store_get(f->s, r, 6, u, 3, &f->a, on_got, f), 1);
	assert_int_equal(f->calls, 0);	/* never inside the call */
	auth_store_free(f->s);
	f->s = NULL;
	assert_int_equal(f->calls, 1);
	assert_int_equal(f->rc, -ECANCELED);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(f->calls, 1);
}

static void
test_auth_store__down_at_start_is_eagain(void **state)
{
	struct fix *f = *state;

	srv_stop(&f->srv, SIGKILL);
	assert_int_equal(auth_store_new(&f->s, &f->loop, &f->cfg,
					"sipmesh-core-1", 100, 60), 0);
	assert_int_equal(get(f, "a.test", "alice"), -EAGAIN);
	f->cfg.redis[0] = '\0';
	assert_int_equal(auth_store_new(&f->s, &f->loop, &f->cfg, "x", 1, 1) ==
			 -ENOENT, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, fix_setup, fix_teardown)
		T(test_auth_store__found_not_found_and_cache_hit),
		T(test_auth_store__passwd_takes_effect_at_once),
		T(test_auth_store__stale_served_while_redis_stopped),
		T(test_auth_store__stale_served_while_redis_killed),
		T(test_auth_store__cache_bounded_lru),
		T(test_auth_store__hostile_names_refused_before_redis),
		T(test_auth_store__free_cancels_pending),
		T(test_auth_store__down_at_start_is_eagain),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
