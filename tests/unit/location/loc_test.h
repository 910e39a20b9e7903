/*
 * loc_test.h - what the location unit tests share: a binding made of
 * the fields that matter to them, a store in LOC_MODE_SHM on a segment
 * of its own per test, a process that dies holding its locks, and a
 * checker of the (edge, connection) index
 * against the AOR chains (test code: it walks every chain of the
 * store).  Included only by tests/unit/location/test_*.c after
 * <cmocka.h>; everything is static inline, so a test takes what it
 * uses.
 */
#ifndef SM_TEST_LOC_TEST_H
#define SM_TEST_LOC_TEST_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "location/loc.h"
#include "location/loc_int.h"

#define T0 1000000	/* "now" of the tests that pass the clock in */

/* A binding of aor at contact until expires: q 1.0, CSeq 1, Call-ID
 * "cid-<contact>", everything else zero. */
static inline struct loc_binding
lt_binding(const char *aor, const char *contact, int64_t expires)
{
	struct loc_binding b;

	memset(&b, 0, sizeof(b));
	snprintf(b.aor, sizeof(b.aor), "%s", aor);
	snprintf(b.contact, sizeof(b.contact), "%s", contact);
	snprintf(b.callid, sizeof(b.callid), "cid-%s", contact);
	b.expires = expires;
	b.q = 1000;
	b.cseq = 1;
	return b;
}

/* A store on a segment of its own, removed again by lt_teardown. */
struct lt_fix {
	char name[64];
	struct loc_config cfg;
	struct loc *l;
};

/* cmocka setup: *state is the store's max_bindings (LT_TEST_N), or NULL
 * for 64; it becomes the struct lt_fix. */
static inline int
lt_setup(void **state)
{
	static int seq;
	struct lt_fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->name, sizeof(f->name), "/smloc-test-%d-%d", (int)getpid(),
		 seq++);
	loc_shm_unlink(f->name);
	f->cfg.shm_name = f->name;
	f->cfg.shm_size = 64 << 20;	/* a cap: the segment takes what
					   max_bindings needs */
	f->cfg.max_bindings = *state ? (int)(intptr_t)*state : 64;
	f->cfg.aor_ttl = 100;
	assert_int_equal(loc_new(&f->l, &f->cfg, NULL), 0);
	*state = f;
	return 0;
}

static inline int
lt_teardown(void **state)
{
	struct lt_fix *f = *state;

	loc_free(f->l);
	assert_int_equal(loc_shm_unlink(f->name), 0);
	free(f);
	return 0;
}

/* Rows of a CMUnitTest table: fn on a store of its own, of 64 or of
 * max_bindings bindings. */
#define LT_TEST(fn) cmocka_unit_test_setup_teardown(fn, lt_setup, lt_teardown)
#define LT_TEST_N(fn, max_bindings)					\
	cmocka_unit_test_prestate_setup_teardown(fn, lt_setup, lt_teardown, \
						 (void *)(intptr_t)(max_bindings))

/* A second view of the fixture's segment, to call the store directly. */
static inline void
lt_view_open(struct lt_fix *f, struct loc_shm *v)
{
	assert_int_equal(loc_shm_open(v, &f->cfg), 0);
	assert_int_equal(v->created, 0);
}

/* A core that crashes in the middle of a change: a child process opens
 * f's segment on its own, runs die on it and exits holding whatever
 * locks die took. */
static inline void
lt_die_in_child(struct lt_fix *f, void (*die)(struct loc_shm *s))
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct loc_shm s;

		if (loc_shm_open(&s, &f->cfg) != 0)
			_exit(2);
		die(&s);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* How many live bindings aor has (at most 8). */
static inline int
lt_count(struct loc *l, const char *aor, int64_t now, int *known)
{
	struct loc_binding out[8];

	return loc_lookup(l, aor, now, out, 8, known);
}

/*
 * Checks the connection index against the AOR chains, one lock at a
 * time, so only on a quiet store.  Returns how many bindings it indexes
 * under (edge_id, conn_id), or all of them when conn_id is 0; -EUCLEAN
 * when a binding with a conn_id is not indexed exactly once under its
 * own key, or anything else is indexed.  mark[i]: 1 in a conn chain,
 * 2 in an AOR chain.
 */
static inline int
lt_conn_check(struct loc_shm *s, uint16_t edge_id, uint32_t conn_id)
{
	uint32_t nb = s->hdr->nbuckets, ns = s->hdr->nslots;
	uint8_t *mark = calloc(ns, 1);
	int n = 0, bad = 0;

	if (!mark)
		return -ENOMEM;
	for (uint32_t c = 0; c < nb && !bad; c++) {
		struct loc_conn_bucket *cb = &s->cbuckets[c];

		if (loc_conn_lock(s, cb) < 0) {
			bad = 1;
			break;
		}
		for (uint32_t i = cb->head; i != LOC_NIL; i = s->slots[i].cnext) {
			struct loc_slot *sl;

			if (i >= ns || mark[i]) {	/* a cycle or a cross */
				bad = 1;
				break;
			}
			sl = &s->slots[i];
			if (sl->kind != LOC_SLOT_BINDING || !sl->conn_linked ||
			    sl->b.conn_id == 0 ||
			    loc_cbucket_of(s, sl->b.edge_id, sl->b.conn_id) != cb) {
				bad = 1;
				break;
			}
			mark[i] = 1;
			n += conn_id == 0 || (sl->b.edge_id == edge_id &&
					      sl->b.conn_id == conn_id);
		}
		loc_unlock(&cb->lock);
	}
	for (uint32_t b = 0; b < nb && !bad; b++) {
		struct loc_bucket *bk = &s->buckets[b];

		if (loc_lock(s, &bk->lock, bk) < 0) {
			bad = 1;
			break;
		}
		for (uint32_t i = bk->head; i != LOC_NIL; i = s->slots[i].next) {
			struct loc_slot *sl;

			if (i >= ns || (mark[i] & 2)) {
				bad = 1;
				break;
			}
			sl = &s->slots[i];
			if (sl->kind == LOC_SLOT_BINDING && sl->b.conn_id ?
			    !(mark[i] & 1) : (mark[i] & 1) != 0) {
				bad = 1;
				break;
			}
			mark[i] |= 2;
		}
		loc_unlock(&bk->lock);
	}
	for (uint32_t i = 0; i < ns && !bad; i++)
		bad = mark[i] == 1 || (s->slots[i].conn_linked && !mark[i]);
	free(mark);
	return bad ? -EUCLEAN : n;
}

#endif
