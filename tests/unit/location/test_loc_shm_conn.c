/*
 * test_loc_shm_conn.c - the shared store's index by (edge, connection)
 * (location/loc_shm_conn.c): remove_conn removes that connection's
 * bindings and nothing else, costs its own chain (counted, not timed),
 * connections that collide in one conn bucket stay apart, a binding
 * leaves the index when it moves, turns into a marker or is replaced
 * from Redis, and a conn lock left by a dead process with its chain
 * broken is rebuilt.  Every step is checked against the AOR chains with
 * lt_conn_check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "tests/unit/location/loc_test.h"

static void
break_conn_chains(struct loc_shm *s)
{
	for (uint32_t i = 0; i < s->hdr->nbuckets; i++) {
		pthread_mutex_lock(&s->cbuckets[i].lock);
		if (s->cbuckets[i].head != LOC_NIL)
			s->cbuckets[i].head = 0x7ffffff0;	/* garbage */
	}
}

/* A process that dies holding a conn lock with its chain broken: the
 * chain is rebuilt from the slots, nothing is lost from the index. */
static void
test_loc_shm_conn__broken_conn_chain_of_dead_process_rebuilt(void **state)
{
	struct lt_fix *f = *state;
	struct loc_binding b;
	struct loc_shm v;

	for (int i = 0; i < 3; i++) {
		char c[32];

		snprintf(c, sizeof(c), "sip:s%d@h", i);
		b = lt_binding(i == 2 ? "t@a.test" : "s@a.test", c, T0 + 60);
		b.edge_id = 4, b.conn_id = 44;
		assert_int_equal(loc_save(f->l, &b, T0), 0);
	}
	lt_view_open(f, &v);
	assert_int_equal(lt_conn_check(&v, 4, 44), 3);
	lt_die_in_child(f, break_conn_chains);
	assert_int_equal(lt_conn_check(&v, 4, 44), 3);
	assert_int_equal(loc_remove_conn(f->l, 4, 44, T0), 3);
	assert_int_equal(lt_count(f->l, "s@a.test", T0, NULL), 0);
	assert_int_equal(lt_count(f->l, "t@a.test", T0, NULL), 0);
	assert_int_equal(lt_conn_check(&v, 0, 0), 0);
	loc_shm_close(&v);
}

/* A sink that records what the store reports. */
struct rec {
	int del, set, done;
	char del_contact[8][LOC_URI_MAX];
};

static void
rec_del(void *arg, const struct loc_binding *b)
{
	struct rec *r = arg;

	if (r->del < 8)
		snprintf(r->del_contact[r->del], LOC_URI_MAX, "%s", b->contact);
	r->del++;
}

static void
rec_set(void *arg, const struct loc_binding *b)
{
	(void)b;
	((struct rec *)arg)->set++;
}

static void
rec_done(void *arg, const char *aor, int64_t expire_at, int64_t known_until,
	 int fresh)
{
	(void)aor, (void)expire_at, (void)known_until, (void)fresh;
	((struct rec *)arg)->done++;
}

static void
save_conn(struct loc *l, const char *aor, const char *contact,
	  uint16_t edge_id, uint32_t conn_id)
{
	struct loc_binding b = lt_binding(aor, contact, T0 + 60);

	b.edge_id = edge_id, b.conn_id = conn_id;
	assert_int_equal(loc_save(l, &b, T0), 0);
}

/* remove_conn removes that (edge, conn)'s bindings and nothing else:
 * not the same conn id on another edge, not another conn of the edge,
 * not UDP, not another binding of the same AOR; the sink hears one del
 * per binding and one aor_done per AOR removal. */
static void
test_loc_shm_conn__remove_conn_touches_only_its_bindings(void **state)
{
	struct lt_fix *f = *state;
	struct rec r = { 0 };
	struct loc_sink k = { rec_del, rec_set, rec_done, &r };
	struct loc_binding out[8];
	struct loc_shm v;

	save_conn(f->l, "u@a.test", "sip:u1@h", 1, 7);
	save_conn(f->l, "u@a.test", "sip:u2@h", 2, 7);
	save_conn(f->l, "u@a.test", "sip:u3@h", 1, 8);
	save_conn(f->l, "u@a.test", "sip:u4@h", 1, 0);
	save_conn(f->l, "w@a.test", "sip:w1@h", 1, 7);
	save_conn(f->l, "w@a.test", "sip:w2@h", 1, 7);
	save_conn(f->l, "x@a.test", "sip:x1@h", 2, 7);
	lt_view_open(f, &v);
	assert_int_equal(lt_conn_check(&v, 1, 7), 3);
	assert_int_equal(lt_conn_check(&v, 0, 0), 6);
	/* a re-REGISTER moving a contact to another flow moves its entry */
	save_conn(f->l, "u@a.test", "sip:u3@h", 1, 7);
	assert_int_equal(lt_conn_check(&v, 1, 7), 4);
	assert_int_equal(lt_conn_check(&v, 1, 8), 0);
	save_conn(f->l, "u@a.test", "sip:u3@h", 1, 8);
	assert_int_equal(lt_conn_check(&v, 1, 7), 3);

	assert_int_equal(loc_shm_remove_conn(&v, 1, 7, T0, &k), 3);
	assert_int_equal(r.del, 3);
	assert_int_equal(r.set, 0);
	assert_int_equal(r.done, 2);	/* u once, w once */
	for (int i = 0; i < 3; i++)
		assert_true(!strcmp(r.del_contact[i], "sip:u1@h") ||
			    !strcmp(r.del_contact[i], "sip:w1@h") ||
			    !strcmp(r.del_contact[i], "sip:w2@h"));
	assert_int_equal(loc_lookup(f->l, "u@a.test", T0, out, 8, NULL), 3);
	for (int i = 0; i < 3; i++)
		assert_string_not_equal(out[i].contact, "sip:u1@h");
	assert_int_equal(lt_count(f->l, "w@a.test", T0, NULL), 0);
	assert_int_equal(lt_count(f->l, "x@a.test", T0, NULL), 1);
	assert_int_equal(lt_conn_check(&v, 1, 7), 0);
	assert_int_equal(lt_conn_check(&v, 2, 7), 2);
	assert_int_equal(lt_conn_check(&v, 1, 8), 1);
	assert_int_equal(lt_conn_check(&v, 0, 0), 3);
	loc_shm_close(&v);
}

/* Timing-independent cost: in a store of 4096 buckets holding 3000
 * bindings, removing a conn of 3 bindings reads its conn chain (plus
 * the few colliding entries) and locks one AOR bucket per binding. */
static void
test_loc_shm_conn__remove_conn_visits_only_its_chain(void **state)
{
	struct lt_fix *f = *state;
	struct loc_shm v;
	char aor[32];

	for (int i = 0; i < 3000; i++) {
		snprintf(aor, sizeof(aor), "bulk%d@a.test", i);
		save_conn(f->l, aor, "sip:b@h", 1, i % 3 ? 100 + i : 0);
	}
	save_conn(f->l, "y@a.test", "sip:y1@h", 2, 5);
	save_conn(f->l, "y@a.test", "sip:y2@h", 2, 5);
	save_conn(f->l, "z@a.test", "sip:z1@h", 2, 5);
	lt_view_open(f, &v);
	assert_int_equal(v.hdr->nbuckets, 4096);
	assert_int_equal(lt_conn_check(&v, 0, 0), 2000 + 3);
	assert_int_equal(loc_shm_remove_conn(&v, 2, 5, T0, NULL), 3);
	assert_int_equal(v.rc_buckets, 3);
	assert_true(v.rc_slots >= 3 && v.rc_slots <= 3 + 8);
	assert_int_equal(lt_count(f->l, "y@a.test", T0, NULL), 0);
	assert_int_equal(lt_count(f->l, "z@a.test", T0, NULL), 0);
	/* a conn with no binding: no AOR bucket at all */
	v.rc_buckets = v.rc_slots = 0;
	assert_int_equal(loc_shm_remove_conn(&v, 2, 6, T0, NULL), 0);
	assert_int_equal(v.rc_buckets, 0);
	assert_true(v.rc_slots <= 8);
	assert_int_equal(loc_shm_remove_conn(&v, 1, 0, T0, NULL), 0);
	assert_int_equal(v.rc_buckets, 0);
	/* the 2000 other conns still work */
	assert_int_equal(loc_shm_remove_conn(&v, 1, 101, T0, NULL), 1);
	assert_int_equal(lt_count(f->l, "bulk1@a.test", T0, NULL), 0);
	assert_int_equal(lt_conn_check(&v, 0, 0), 1999);
	loc_shm_close(&v);
}

/* Two connections whose keys hash to one conn bucket share its chain:
 * removing one leaves the other's bindings, indexed. */
static void
test_loc_shm_conn__colliding_conns_stay_apart(void **state)
{
	struct lt_fix *f = *state;
	struct loc_shm v;
	uint32_t other = 0;

	lt_view_open(f, &v);
	for (uint32_t c = 2; c < 100000 && !other; c++)
		if (loc_cbucket_of(&v, 3, c) == loc_cbucket_of(&v, 1, 1))
			other = c;
	assert_true(other != 0);
	save_conn(f->l, "a@a.test", "sip:a@h", 1, 1);
	save_conn(f->l, "b@a.test", "sip:b@h", 3, other);
	save_conn(f->l, "b@a.test", "sip:b2@h", 3, other);
	assert_int_equal(lt_conn_check(&v, 1, 1), 1);
	assert_int_equal(lt_conn_check(&v, 3, other), 2);
	assert_int_equal(loc_remove_conn(f->l, 3, other, T0), 2);
	assert_int_equal(lt_count(f->l, "a@a.test", T0, NULL), 1);
	assert_int_equal(lt_conn_check(&v, 1, 1), 1);
	assert_int_equal(lt_conn_check(&v, 0, 0), 1);
	assert_int_equal(loc_remove_conn(f->l, 1, 1, T0), 1);
	assert_int_equal(lt_conn_check(&v, 0, 0), 0);
	loc_shm_close(&v);
}

/* Conn ids are sequential per edge: 64 of them spread over most of the
 * 64 conn buckets, not a few. */
static void
test_loc_shm_conn__sequential_ids_spread(void **state)
{
	struct lt_fix *f = *state;
	struct loc_shm v;
	uint8_t used[64] = { 0 };
	int n = 0;

	lt_view_open(f, &v);
	assert_int_equal(v.hdr->nbuckets, 64);
	for (uint32_t c = 1; c <= 64; c++) {
		size_t i = (size_t)(loc_cbucket_of(&v, 1, c) - v.cbuckets);

		n += !used[i];
		used[i] = 1;
	}
	assert_true(n >= 32);
	loc_shm_close(&v);
}

/* A binding leaves the index when its AOR's last binding becomes a
 * known marker, and when Redis's view replaces it with one on another
 * connection (which is indexed instead). */
static void
test_loc_shm_conn__marker_and_replace_leave_the_index(void **state)
{
	struct lt_fix *f = *state;
	struct loc_binding b = lt_binding("m@a.test", "sip:m@h", T0 + 60);
	struct loc_shm v;
	int known;

	lt_view_open(f, &v);
	save_conn(f->l, "m@a.test", "sip:m@h", 2, 9);
	assert_int_equal(loc_remove(f->l, "m@a.test", "sip:m@h", T0), 0);
	assert_int_equal(lt_count(f->l, "m@a.test", T0, &known), 0);
	assert_int_equal(known, 1);
	assert_int_equal(lt_conn_check(&v, 0, 0), 0);

	save_conn(f->l, "m@a.test", "sip:m@h", 2, 9);
	b.edge_id = 2, b.conn_id = 10;
	assert_int_equal(loc_shm_replace_aor(&v, "m@a.test", &b, 1, 0, T0,
					     NULL), 0);
	assert_int_equal(lt_conn_check(&v, 2, 9), 0);
	assert_int_equal(lt_conn_check(&v, 2, 10), 1);
	assert_int_equal(loc_remove_conn(f->l, 2, 9, T0), 0);
	assert_int_equal(loc_remove_conn(f->l, 2, 10, T0), 1);
	assert_int_equal(lt_conn_check(&v, 0, 0), 0);
	loc_shm_close(&v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		LT_TEST(test_loc_shm_conn__remove_conn_touches_only_its_bindings),
		LT_TEST_N(test_loc_shm_conn__remove_conn_visits_only_its_chain, 4096),
		LT_TEST(test_loc_shm_conn__colliding_conns_stay_apart),
		LT_TEST(test_loc_shm_conn__sequential_ids_spread),
		LT_TEST(test_loc_shm_conn__marker_and_replace_leave_the_index),
		LT_TEST(test_loc_shm_conn__broken_conn_chain_of_dead_process_rebuilt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
