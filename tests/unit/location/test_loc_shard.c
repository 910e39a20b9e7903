/*
 * test_loc_shard.c - bindings sharded by AOR over several Redis masters
 * (location/loc_shard.c, loc.c, loc_recon.c): the choice of a shard
 * (spread, stability, what adding a shard moves), then the store
 * against three real redis-servers: every AOR's key on its own shard
 * only, another host learning AORs of every shard, one shard killed
 * (the others' AORs go on, its own are served from the host's store
 * and pushed back when it returns) and a new shard added under a
 * running cluster (no lookup misses a binding, the moved AORs reach
 * their new shard).
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/location/loc_test.h"
#include "tests/unit/loop_test.h"
#include "tests/unit/redis_test.h"

#define NAOR 10000

static const char *const names4[] = { "main", "b", "c", "d" };

static void
aor_of(int i, char *buf, size_t cap)
{
	snprintf(buf, cap, "user%d@shard.test", i);
}

/* ---- the choice of a shard */

static void
test_loc_shard__spread_within_bounds(void **state)
{
	struct loc_shard_map m;
	int count[3] = { 0 };
	char aor[64];

	(void)state;
	assert_int_equal(loc_shard_map_init(&m, names4, 3), 0);
	for (int i = 0; i < NAOR; i++) {
		aor_of(i, aor, sizeof(aor));
		count[loc_shard_pick(&m, aor)]++;
	}
	/* 1/3 each; sigma = sqrt(10000 * 1/3 * 2/3) = 47: within 5 sigma */
	for (int i = 0; i < 3; i++) {
		print_message("shard %s: %d of %d AORs\n", names4[i], count[i],
			      NAOR);
		assert_in_range(count[i], NAOR / 3 - 240, NAOR / 3 + 240);
	}
}

static void
test_loc_shard__stable_and_case_free(void **state)
{
	const char *const other_order[] = { "c", "main", "b" };
	struct loc_shard_map m, o, one;
	char aor[64];

	(void)state;
	assert_int_equal(loc_shard_map_init(&m, names4, 3), 0);
	assert_int_equal(loc_shard_map_init(&o, other_order, 3), 0);
	assert_int_equal(loc_shard_map_init(&one, names4, 1), 0);
	assert_int_equal(loc_shard_map_init(&m, names4, 0), -EINVAL);
	assert_int_equal(loc_shard_map_init(&m, names4, LOC_SHARDS_MAX + 1),
			 -EINVAL);
	assert_int_equal(loc_shard_map_init(&m, names4, 3), 0);
	assert_int_equal(loc_shard_set(&m), loc_shard_set(&o));
	assert_true(loc_shard_set(&m) != loc_shard_set(&one));
	for (int i = 0; i < 1000; i++) {
		int s;

		aor_of(i, aor, sizeof(aor));
		s = loc_shard_pick(&m, aor);
		/* the same shard, by name, whatever the list's order */
		assert_string_equal(other_order[loc_shard_pick(&o, aor)],
				    names4[s]);
		for (char *p = aor; *p; p++)
			*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		assert_int_equal(loc_shard_pick(&m, aor), s);
		assert_int_equal(loc_shard_pick(&one, aor), 0);
	}
	/* fixed for ever: hosts of two versions must agree, or an upgrade
	 * moves every AOR */
	assert_string_equal(names4[loc_shard_pick(&m, "alice@a.test")], "c");
	assert_string_equal(names4[loc_shard_pick(&m, "bob@b.test")], "c");
}

static void
test_loc_shard__adding_one_moves_a_quarter(void **state)
{
	struct loc_shard_map m3, m4;
	int moved = 0;
	char aor[64];

	(void)state;
	assert_int_equal(loc_shard_map_init(&m3, names4, 3), 0);
	assert_int_equal(loc_shard_map_init(&m4, names4, 4), 0);
	for (int i = 0; i < NAOR; i++) {
		int a, b;

		aor_of(i, aor, sizeof(aor));
		a = loc_shard_pick(&m3, aor);
		b = loc_shard_pick(&m4, aor);
		if (a != b) {
			/* only to the new shard, never between old ones */
			assert_int_equal(b, 3);
			moved++;
		}
	}
	print_message("adding a 4th shard moved %d of %d AORs\n", moved, NAOR);
	assert_in_range(moved, NAOR / 4 - 250, NAOR / 4 + 250);
}

/* ---- the store against real Redis shards */

#define NSRV 3

struct fix {
	struct srv srv[NSRV];
	uv_loop_t loop;
	char names[3][64];
	struct loc_shard_config sh[NSRV - 1];
	struct loc_config cfg[3];
	struct loc *l[3];
	struct loc_shard_map map;
};

static int
fix_setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	for (int i = 0; i < NSRV; i++)
		srv_start(&f->srv[i], 0);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	for (int i = 0; i < NSRV - 1; i++)
		f->sh[i] = (struct loc_shard_config){
			names4[i + 1], "127.0.0.1", f->srv[i + 1].port,
			NULL, NULL,
		};
	for (int i = 0; i < 3; i++) {
		snprintf(f->names[i], sizeof(f->names[i]), "/smloc-shard-%d-%c",
			 (int)getpid(), 'x' + i);
		loc_shm_unlink(f->names[i]);
		f->cfg[i] = (struct loc_config){
			.shm_name = f->names[i],
			.shm_size = 8 << 20,
			.max_bindings = 2048,
			.redis_host = "127.0.0.1",
			.redis_port = f->srv[0].port,
			.shards = f->sh,
			.n_shards = NSRV - 1,
			.prefix = "smt",
			.aor_ttl = 100,
			.redis_timeout_ms = 300,
			.redis_backoff_max_ms = 200,
		};
	}
	assert_int_equal(loc_shard_map_init(&f->map, names4, NSRV), 0);
	*state = f;
	return 0;
}

static int
fix_teardown(void **state)
{
	struct fix *f = *state;

	for (int i = 0; i < 3; i++) {
		loc_free(f->l[i]);
		loc_shm_unlink(f->names[i]);
	}
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	for (int i = 0; i < NSRV; i++)
		srv_stop(&f->srv[i], SIGTERM);
	free(f);
	return 0;
}

struct want {
	int host;
	int n;		/* shards up */
};

static int
shards_up(void *ctx, void *arg)
{
	struct fix *f = ctx;
	struct want *w = arg;
	struct loc_stats st;

	loc_stats_get(f->l[w->host], &st);
	return (int)st.redis_connected == w->n;
}

static void
wait_up(struct fix *f, int host, int n)
{
	struct want w = { host, n };

	assert_true(loop_run_until(&f->loop, shards_up, f, &w, DEADLINE_MS));
}

static int
key_exists(int port, const char *aor)
{
	char key[LOC_KEY_MAX];

	snprintf(key, sizeof(key), "smt:aor:%s", aor);
	return (int)srv_int(port, "EXISTS %s", key);
}

/* Host `host` finds a binding of every AOR from..to-1 of shard `only`
 * (-1: of every shard). */
struct range {
	int host, from, to, only;
};

static int
host_has_all(void *ctx, void *arg)
{
	struct fix *f = ctx;
	struct range *r = arg;
	struct loc_binding out[2];
	char aor[64];

	for (int i = r->from; i < r->to; i++) {
		aor_of(i, aor, sizeof(aor));
		if (r->only >= 0 && loc_shard_pick(&f->map, aor) != r->only)
			continue;
		if (loc_lookup(f->l[r->host], aor, time(NULL), out, 2, NULL) < 1)
			return 0;
	}
	return 1;
}

/* Every AOR from..to-1 of shard `only` (-1: all) has its key on its
 * shard's Redis (and, when strict, on no other). */
struct placed {
	int from, to, only, strict;
	const struct loc_shard_map *map;	/* NULL: the fixture's */
};

static int
keys_placed(void *ctx, void *arg)
{
	struct fix *f = ctx;
	struct placed *p = arg;
	char aor[64];

	for (int i = p->from; i < p->to; i++) {
		int s;

		aor_of(i, aor, sizeof(aor));
		s = loc_shard_pick(p->map ? p->map : &f->map, aor);
		if (p->only >= 0 && s != p->only)
			continue;
		for (int j = 0; j < NSRV; j++) {
			if (f->srv[j].pid <= 0)
				continue;
			if (j == s ? !key_exists(f->srv[j].port, aor) :
			    p->strict && key_exists(f->srv[j].port, aor))
				return 0;
		}
	}
	return 1;
}

static void
save_range(struct fix *f, int host, int from, int to)
{
	char aor[64], contact[96];

	for (int i = from; i < to; i++) {
		struct loc_binding b;

		aor_of(i, aor, sizeof(aor));
		snprintf(contact, sizeof(contact), "sip:u%d@10.0.0.%d", i, host + 1);
		b = lt_binding(aor, contact, time(NULL) + 600);
		assert_int_equal(loc_save(f->l[host], &b, time(NULL)), 0);
	}
}

static void
test_loc_shard__each_aor_on_its_shard_seen_by_other_hosts(void **state)
{
	struct fix *f = *state;
	struct placed all = { 0, 300, -1, 1, NULL };
	struct range seen = { 1, 0, 300, -1 };
	int per[NSRV] = { 0 };
	char aor[64];

	for (int i = 0; i < 2; i++) {
		assert_int_equal(loc_new(&f->l[i], &f->cfg[i], &f->loop), 0);
		wait_up(f, i, NSRV);
	}
	save_range(f, 0, 0, 300);
	assert_true(loop_run_until(&f->loop, keys_placed, f, &all, DEADLINE_MS));
	for (int i = 0; i < 300; i++) {
		aor_of(i, aor, sizeof(aor));
		per[loc_shard_pick(&f->map, aor)]++;
	}
	for (int j = 0; j < NSRV; j++) {
		long long keys = srv_int(f->srv[j].port, "DBSIZE");

		print_message("redis %d: %lld keys, %d expected\n", j, keys,
			      per[j]);
		assert_int_equal(keys, per[j]);
		assert_true(per[j] > 50);
	}
	/* host 1 learnt every AOR through its shard's invalidation */
	assert_true(loop_run_until(&f->loop, host_has_all, f, &seen,
				   DEADLINE_MS));
}

static void
test_loc_shard__one_shard_down_holds_back_only_its_aors(void **state)
{
	struct fix *f = *state;
	int down = 1, port = f->srv[1].port;
	struct placed others[2] = { { 100, 200, 0, 1, NULL },
				    { 100, 200, 2, 1, NULL } };
	struct placed back = { 0, 200, -1, 1, NULL };
	struct range seen_others[2] = { { 1, 100, 200, 0 }, { 1, 100, 200, 2 } };
	struct range here = { 0, 100, 200, -1 };
	struct range seen_all = { 1, 0, 200, -1 };
	struct loc_binding out[2];
	char aor[64];
	int missing = 0;

	for (int i = 0; i < 2; i++) {
		assert_int_equal(loc_new(&f->l[i], &f->cfg[i], &f->loop), 0);
		wait_up(f, i, NSRV);
	}
	save_range(f, 0, 0, 100);
	back.to = 100;
	assert_true(loop_run_until(&f->loop, keys_placed, f, &back,
				   DEADLINE_MS));
	back.to = 200;
	srv_stop(&f->srv[down], SIGKILL);
	wait_up(f, 0, NSRV - 1);
	wait_up(f, 1, NSRV - 1);
	/* AORs of the shards still up: written, and seen by host 1 */
	save_range(f, 0, 100, 200);
	for (int k = 0; k < 2; k++) {
		assert_true(loop_run_until(&f->loop, keys_placed, f, &others[k],
					   DEADLINE_MS));
		assert_true(loop_run_until(&f->loop, host_has_all, f,
					   &seen_others[k], DEADLINE_MS));
	}
	/* the dead shard's AORs: host 0 answers from its store; host 1
	 * does not have them yet */
	assert_true(host_has_all(f, &here));
	for (int i = 100; i < 200; i++) {
		aor_of(i, aor, sizeof(aor));
		if (loc_shard_pick(&f->map, aor) == down &&
		    loc_lookup(f->l[1], aor, time(NULL), out, 2, NULL) == 0)
			missing++;
	}
	print_message("while shard b is down, host 1 lacks %d of its new "
		      "AORs\n", missing);
	assert_true(missing > 10);
	/* it comes back empty: every binding of it is pushed back, the
	 * new ones reach host 1 */
	srv_start(&f->srv[down], port);
	wait_up(f, 0, NSRV);
	assert_true(loop_run_until(&f->loop, keys_placed, f, &back,
				   3 * DEADLINE_MS));
	assert_true(loop_run_until(&f->loop, host_has_all, f, &seen_all,
				   3 * DEADLINE_MS));
}

struct two_of {
	const char *aor;
};

static int
host2_has_two(void *ctx, void *arg)
{
	struct fix *f = ctx;
	struct two_of *w = arg;
	struct loc_binding out[4];

	return loc_lookup(f->l[2], w->aor, time(NULL), out, 4, NULL) == 2;
}

/*
 * A third shard joins a cluster that ran on two: host 0 keeps the old
 * list, host 2 starts on the new one.  No AOR goes missing on host 2,
 * and the AORs the new shard now owns are copied to it.
 */
static void
test_loc_shard__adding_a_shard_loses_no_lookup(void **state)
{
	struct fix *f = *state;
	struct loc_shard_map two;
	struct range all2 = { 2, 0, 300, -1 };
	struct placed on_new = { 0, 300, 2, 0, NULL };
	struct placed old = { 0, 300, -1, 1, NULL };
	char aor[64];
	int moved = 0;

	f->cfg[0].n_shards = 1;	/* main and b */
	assert_int_equal(loc_new(&f->l[0], &f->cfg[0], &f->loop), 0);
	wait_up(f, 0, 2);
	save_range(f, 0, 0, 300);
	assert_int_equal(loc_shard_map_init(&two, names4, 2), 0);
	for (int i = 0; i < 300; i++) {
		aor_of(i, aor, sizeof(aor));
		moved += loc_shard_pick(&f->map, aor) == 2;
	}
	print_message("%d of 300 AORs move to shard c\n", moved);
	assert_true(moved > 50);
	/* host 0's writes landed on the two old shards */
	old.map = &two;
	assert_true(loop_run_until(&f->loop, keys_placed, f, &old,
				   DEADLINE_MS));
	assert_int_equal(srv_int(f->srv[2].port, "DBSIZE"), 0);
	assert_int_equal(loc_new(&f->l[2], &f->cfg[2], &f->loop), 0);
	/* loaded from every shard: nothing missing from the first moment */
	assert_true(host_has_all(f, &all2));
	wait_up(f, 2, NSRV);
	assert_true(loop_run_until(&f->loop, keys_placed, f, &on_new,
				   3 * DEADLINE_MS));
	assert_true(host_has_all(f, &all2));
	/* a host on the old list writes a moved AOR to its old shard: the
	 * new list's host still finds the new contact */
	for (int i = 0; i < 300; i++) {
		struct loc_binding b;
		struct two_of w = { aor };

		aor_of(i, aor, sizeof(aor));
		if (loc_shard_pick(&f->map, aor) != 2)
			continue;
		b = lt_binding(aor, "sip:late@10.9.9.9", time(NULL) + 600);
		assert_int_equal(loc_save(f->l[0], &b, time(NULL)), 0);
		assert_true(loop_run_until(&f->loop, host2_has_two, f, &w,
					   DEADLINE_MS));
		break;
	}
}

/*
 * The new shard stalls (SIGSTOP: down for the links, but nothing lost
 * in it) while a host on the old list writes AORs it now owns: the host
 * on the new list keeps them (its copy to the owner is retried, not
 * given up) and they reach the shard once it answers.
 */
static void
test_loc_shard__owner_stalled_during_a_move_loses_nothing(void **state)
{
	struct fix *f = *state;
	struct loc_shard_map two;
	struct range seen = { 2, 300, 400, 2 };
	struct placed on_new = { 300, 400, 2, 0, NULL };
	struct placed old = { 300, 400, -1, 0, NULL };

	f->cfg[0].n_shards = 1;	/* host 0 on the old list: main and b */
	assert_int_equal(loc_new(&f->l[0], &f->cfg[0], &f->loop), 0);
	assert_int_equal(loc_new(&f->l[2], &f->cfg[2], &f->loop), 0);
	wait_up(f, 0, 2);
	wait_up(f, 2, NSRV);
	assert_int_equal(loc_shard_map_init(&two, names4, 2), 0);
	kill(f->srv[2].pid, SIGSTOP);
	save_range(f, 0, 300, 400);
	old.map = &two;
	assert_true(loop_run_until(&f->loop, keys_placed, f, &old, DEADLINE_MS));
	assert_true(loop_run_until(&f->loop, host_has_all, f, &seen,
				   DEADLINE_MS));
	/* the copies to c time out: its link fails; more AORs of c are
	 * written on the old shards while it is down, the link is not */
	wait_up(f, 2, NSRV - 1);
	save_range(f, 0, 400, 500);
	old.to = seen.to = on_new.to = 500;
	assert_true(loop_run_until(&f->loop, keys_placed, f, &old, DEADLINE_MS));
	assert_true(loop_run_until(&f->loop, host_has_all, f, &seen,
				   DEADLINE_MS));
	kill(f->srv[2].pid, SIGCONT);
	wait_up(f, 2, NSRV);
	assert_true(loop_run_until(&f->loop, keys_placed, f, &on_new,
				   3 * DEADLINE_MS));
	assert_true(loop_run_until(&f->loop, host_has_all, f, &seen,
				   DEADLINE_MS));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loc_shard__spread_within_bounds),
		cmocka_unit_test(test_loc_shard__stable_and_case_free),
		cmocka_unit_test(test_loc_shard__adding_one_moves_a_quarter),
		cmocka_unit_test_setup_teardown(
			test_loc_shard__each_aor_on_its_shard_seen_by_other_hosts,
			fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(
			test_loc_shard__one_shard_down_holds_back_only_its_aors,
			fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(
			test_loc_shard__adding_a_shard_loses_no_lookup,
			fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(
			test_loc_shard__owner_stalled_during_a_move_loses_nothing,
			fix_setup, fix_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
