/*
 * test_loc_shm.c - the host's shared binding store (location/loc_shm.c)
 * through the public API in LOC_MODE_SHM: identity rules, q order,
 * expiry and known AORs with an explicit clock, removal, a full store,
 * two processes on one segment, a lock left by a dead process, and a
 * differential run against a trivial model that also checks the index
 * by connection (test_loc_shm_conn.c tests that index on its own) after
 * every operation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <strings.h>

#include <cmocka.h>

#include <signal.h>
#include <time.h>

#include "tests/unit/location/loc_test.h"

static void
test_loc_shm__save_lookup_replace_by_contact(void **state)
{
	struct lt_fix *f = *state;
	struct loc_binding b = lt_binding("alice@a.test", "sip:alice@10.0.0.1", T0 + 60);
	struct loc_binding out[4];
	int known;

	assert_int_equal(lt_count(f->l, "alice@a.test", T0, &known), 0);
	assert_int_equal(known, 0);
	b.edge_id = 3;
	b.conn_id = 77;
	b.flags = LOC_F_WS;
	snprintf(b.path, sizeof(b.path), "<sip:edge3;lr>");
	assert_int_equal(loc_save(f->l, &b, T0), 0);
	assert_int_equal(loc_lookup(f->l, "alice@a.test", T0, out, 4, &known), 1);
	assert_int_equal(known, 1);
	assert_string_equal(out[0].contact, "sip:alice@10.0.0.1");
	assert_string_equal(out[0].path, "<sip:edge3;lr>");
	assert_int_equal(out[0].conn_id, 77);
	assert_int_equal(out[0].flags, LOC_F_WS);

	b.cseq = 2;
	b.expires = T0 + 120;
	assert_int_equal(loc_save(f->l, &b, T0 + 1), 0);
	assert_int_equal(loc_lookup(f->l, "alice@a.test", T0, out, 4, NULL), 1);
	assert_int_equal(out[0].cseq, 2);
	assert_int_equal(out[0].expires, T0 + 120);
}

static void
test_loc_shm__replace_by_instance_reg_id(void **state)
{
	struct lt_fix *f = *state;
	struct loc_binding b = lt_binding("bob@a.test", "sip:bob@1.1.1.1;transport=ws",
				  T0 + 60);
	struct loc_binding out[4];
	struct loc_stats st;

	snprintf(b.instance, sizeof(b.instance), "<urn:uuid:1>");
	b.reg_id = 1;
	assert_int_equal(loc_save(f->l, &b, T0), 0);
	/* a reload: new random contact, same instance and reg-id */
	snprintf(b.contact, sizeof(b.contact), "sip:xyz@2.2.2.2;transport=ws");
	assert_int_equal(loc_save(f->l, &b, T0), 0);
	assert_int_equal(loc_lookup(f->l, "bob@a.test", T0, out, 4, NULL), 1);
	assert_string_equal(out[0].contact, "sip:xyz@2.2.2.2;transport=ws");
	/* another reg-id of the same instance is another flow */
	b.reg_id = 2;
	snprintf(b.contact, sizeof(b.contact), "sip:flow2@2.2.2.2");
	assert_int_equal(loc_save(f->l, &b, T0), 0);
	assert_int_equal(loc_lookup(f->l, "bob@a.test", T0, out, 4, NULL), 2);
	/* a binding matching one by instance and another by contact
	 * replaces both */
	b.reg_id = 1;
	assert_int_equal(loc_save(f->l, &b, T0), 0);
	assert_int_equal(loc_lookup(f->l, "bob@a.test", T0, out, 4, NULL), 1);
	loc_stats_get(f->l, &st);
	assert_int_equal(st.bindings, 1);
}

static void
test_loc_shm__several_contacts_ordered_by_q(void **state)
{
	struct lt_fix *f = *state;
	const uint16_t qs[] = { 500, 1000, 100, 700 };
	struct loc_binding out[4];
	char c[32];

	for (int i = 0; i < 4; i++) {
		snprintf(c, sizeof(c), "sip:c%d@h", i);
		struct loc_binding b = lt_binding("carol@a.test", c, T0 + 60);

		b.q = qs[i];
		assert_int_equal(loc_save(f->l, &b, T0), 0);
	}
	assert_int_equal(loc_lookup(f->l, "carol@a.test", T0, out, 4, NULL), 4);
	assert_int_equal(out[0].q, 1000);
	assert_int_equal(out[1].q, 700);
	assert_int_equal(out[2].q, 500);
	assert_int_equal(out[3].q, 100);
	/* max 2: the two best, not the first two stored */
	assert_int_equal(loc_lookup(f->l, "carol@a.test", T0, out, 2, NULL), 2);
	assert_string_equal(out[0].contact, "sip:c1@h");
	assert_string_equal(out[1].contact, "sip:c3@h");
}

static void
test_loc_shm__aor_domain_matters_case_does_not(void **state)
{
	struct lt_fix *f = *state;
	struct loc_binding b = lt_binding("alice@a.test", "sip:alice@h", T0 + 60);
	int known;

	assert_int_equal(loc_save(f->l, &b, T0), 0);
	assert_int_equal(lt_count(f->l, "alice@b.test", T0, &known), 0);
	assert_int_equal(known, 0);
	assert_int_equal(lt_count(f->l, "alice@a.tes", T0, &known), 0);
	assert_int_equal(lt_count(f->l, "ALICE@A.Test", T0, &known), 1);
	assert_int_equal(known, 1);
}

/* The AOR gauge: distinct AORs with a live binding, counted by the
 * expiry sweep, whatever the case of the AOR; expired ones drop out. */
static void
test_loc_shm__aors_counted_by_the_sweep(void **state)
{
	struct lt_fix *f = *state;
	struct loc_binding a1 = lt_binding("erin@a.test", "sip:erin@h1", T0 + 60);
	struct loc_binding a2 = lt_binding("ERIN@a.test", "sip:erin@h2", T0 + 60);
	struct loc_binding b1 = lt_binding("fred@a.test", "sip:fred@h", T0 + 600);
	struct loc_stats st;

	assert_int_equal(loc_save(f->l, &a1, T0), 0);
	assert_int_equal(loc_save(f->l, &a2, T0), 0);
	assert_int_equal(loc_save(f->l, &b1, T0), 0);
	loc_stats_get(f->l, &st);
	assert_int_equal(st.bindings, 3);
	for (int i = 0; i < 40; i++)
		loc_expire(f->l, T0 + 1);
	loc_stats_get(f->l, &st);
	assert_int_equal(st.aors, 2);
	for (int i = 0; i < 40; i++)
		loc_expire(f->l, T0 + 61);
	loc_stats_get(f->l, &st);
	assert_int_equal(st.bindings, 1);
	assert_int_equal(st.aors, 1);
}

static void
test_loc_shm__expires_on_time(void **state)
{
	struct lt_fix *f = *state;
	struct loc_binding b = lt_binding("dave@a.test", "sip:dave@h", T0 + 60);
	struct loc_stats st;

	assert_int_equal(loc_save(f->l, &b, T0), 0);
	assert_int_equal(lt_count(f->l, "dave@a.test", T0 + 59, NULL), 1);
	assert_int_equal(lt_count(f->l, "dave@a.test", T0 + 60, NULL), 0);
	loc_expire(f->l, T0 + 59);
	loc_stats_get(f->l, &st);
	assert_int_equal(st.bindings, 1);
	loc_expire(f->l, T0 + 60);
	loc_stats_get(f->l, &st);
	assert_int_equal(st.bindings, 0);
	assert_int_equal(st.capacity, 64);
}

static void
test_loc_shm__known_after_last_binding_then_forgotten(void **state)
{
	struct lt_fix *f = *state;
	struct loc_binding b = lt_binding("erin@a.test", "sip:erin@h", T0 + 60);
	struct loc_binding c = lt_binding("erin@a.test", "sip:erin@g", T0 + 30);
	int known;

	/* removed at T0+10: known until T0+10+aor_ttl */
	assert_int_equal(loc_save(f->l, &b, T0), 0);
	assert_int_equal(loc_save(f->l, &c, T0), 0);
	assert_int_equal(loc_remove_aor(f->l, "erin@a.test", T0 + 10), 2);
	assert_int_equal(lt_count(f->l, "erin@a.test", T0 + 10, &known), 0);
	assert_int_equal(known, 1);
	assert_int_equal(lt_count(f->l, "erin@a.test", T0 + 109, &known), 0);
	assert_int_equal(known, 1);
	assert_int_equal(lt_count(f->l, "erin@a.test", T0 + 110, &known), 0);
	assert_int_equal(known, 0);

	/* expired at T0+60 and swept late: known until T0+160 */
	assert_int_equal(loc_save(f->l, &b, T0), 0);
	assert_int_equal(lt_count(f->l, "erin@a.test", T0 + 159, &known), 0);
	assert_int_equal(known, 1);
	loc_expire(f->l, T0 + 150);
	assert_int_equal(lt_count(f->l, "erin@a.test", T0 + 159, &known), 0);
	assert_int_equal(known, 1);
	loc_expire(f->l, T0 + 200);
	assert_int_equal(lt_count(f->l, "erin@a.test", T0 + 159, &known), 0);
	assert_int_equal(known, 0);

	/* a new binding clears the marker; lookups see it again */
	assert_int_equal(loc_remove(f->l, "erin@a.test", "sip:erin@h", T0), -ENOENT);
	b.expires = T0 + 400;
	assert_int_equal(loc_save(f->l, &b, T0 + 300), 0);
	assert_int_equal(lt_count(f->l, "erin@a.test", T0 + 300, &known), 1);
}

static void
test_loc_shm__remove_remove_aor_remove_conn(void **state)
{
	struct lt_fix *f = *state;
	struct loc_binding b;
	struct loc_binding out[4];
	struct loc_stats st;

	b = lt_binding("f@a.test", "sip:f1@h", T0 + 60);
	b.edge_id = 1, b.conn_id = 5;
	assert_int_equal(loc_save(f->l, &b, T0), 0);
	b = lt_binding("f@a.test", "sip:f2@h", T0 + 60);
	b.edge_id = 2, b.conn_id = 5;
	assert_int_equal(loc_save(f->l, &b, T0), 0);
	b = lt_binding("g@a.test", "sip:g1@h", T0 + 60);
	b.edge_id = 1, b.conn_id = 5;
	assert_int_equal(loc_save(f->l, &b, T0), 0);
	b = lt_binding("g@a.test", "sip:g2@h", T0 + 60);
	assert_int_equal(loc_save(f->l, &b, T0), 0);
	b = lt_binding("h@a.test", "sip:h1@h", T0 + 60);
	assert_int_equal(loc_save(f->l, &b, T0), 0);

	assert_int_equal(loc_remove_conn(f->l, 1, 5, T0), 2);
	assert_int_equal(loc_remove_conn(f->l, 1, 5, T0), 0);
	assert_int_equal(loc_remove_conn(f->l, 1, 0, T0), 0);
	assert_int_equal(loc_lookup(f->l, "f@a.test", T0, out, 4, NULL), 1);
	assert_string_equal(out[0].contact, "sip:f2@h");
	assert_int_equal(loc_lookup(f->l, "g@a.test", T0, out, 4, NULL), 1);
	assert_string_equal(out[0].contact, "sip:g2@h");

	assert_int_equal(loc_remove(f->l, "g@a.test", "sip:g1@h", T0), -ENOENT);
	assert_int_equal(loc_remove(f->l, "g@a.test", "sip:g2@h", T0), 0);
	assert_int_equal(lt_count(f->l, "g@a.test", T0, NULL), 0);
	assert_int_equal(loc_remove_aor(f->l, "h@a.test", T0), 1);
	assert_int_equal(loc_remove_aor(f->l, "h@a.test", T0), 0);
	assert_int_equal(lt_count(f->l, "f@a.test", T0, NULL), 1);
	loc_stats_get(f->l, &st);
	assert_int_equal(st.bindings, 1);
}

static void
test_loc_shm__full_store_enospc_keeps_bindings(void **state)
{
	struct lt_fix *f = *state;
	struct loc_binding b;
	struct loc_stats st;
	char aor[32];
	int known;

	for (int i = 0; i < 16; i++) {
		snprintf(aor, sizeof(aor), "u%d@a.test", i);
		b = lt_binding(aor, "sip:x@h", T0 + 60);
		assert_int_equal(loc_save(f->l, &b, T0), 0);
	}
	b = lt_binding("late@a.test", "sip:x@h", T0 + 60);
	assert_int_equal(loc_save(f->l, &b, T0), -ENOSPC);
	b = lt_binding("u3@a.test", "sip:other@h", T0 + 60);
	assert_int_equal(loc_save(f->l, &b, T0), -ENOSPC);
	/* replacing an existing binding needs no slot */
	b = lt_binding("u3@a.test", "sip:x@h", T0 + 90);
	assert_int_equal(loc_save(f->l, &b, T0), 0);
	for (int i = 0; i < 16; i++) {
		snprintf(aor, sizeof(aor), "u%d@a.test", i);
		assert_int_equal(lt_count(f->l, aor, T0, NULL), 1);
	}
	loc_stats_get(f->l, &st);
	assert_int_equal(st.bindings, 16);

	/* known markers give their slot to a new binding */
	assert_int_equal(loc_remove_aor(f->l, "u0@a.test", T0), 1);
	assert_int_equal(lt_count(f->l, "u0@a.test", T0, &known), 0);
	assert_int_equal(known, 1);
	b = lt_binding("late@a.test", "sip:x@h", T0 + 60);
	assert_int_equal(loc_save(f->l, &b, T0), 0);
	assert_int_equal(lt_count(f->l, "u0@a.test", T0, &known), 0);
	assert_int_equal(known, 0);
	/* expired bindings too, at save time, without loc_expire */
	b = lt_binding("later@a.test", "sip:x@h", T0 + 200);
	assert_int_equal(loc_save(f->l, &b, T0 + 60), 0);
	assert_int_equal(lt_count(f->l, "later@a.test", T0 + 60, NULL), 1);
}

/* The child opens the segment on its own, sees the parent's binding,
 * adds one; the parent then sees the child's. */
static void
test_loc_shm__two_processes_share_one_segment(void **state)
{
	struct lt_fix *f = *state;
	struct loc_binding b = lt_binding("p@a.test", "sip:parent@h", T0 + 60);
	int status;
	pid_t pid;

	assert_int_equal(loc_save(f->l, &b, T0), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct loc *l;
		int ok;

		if (loc_new(&l, &f->cfg, NULL) != 0)
			_exit(2);
		ok = lt_count(l, "p@a.test", T0, NULL) == 1;
		b = lt_binding("c@a.test", "sip:child@h", T0 + 60);
		ok = ok && loc_save(l, &b, T0) == 0;
		loc_free(l);
		_exit(ok ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(lt_count(f->l, "c@a.test", T0, NULL), 1);
}

static void
hold_every_lock(struct loc_shm *s)
{
	for (uint32_t i = 0; i < s->hdr->nbuckets; i++) {
		pthread_mutex_lock(&s->buckets[i].lock);
		pthread_mutex_lock(&s->cbuckets[i].lock);
	}
	pthread_mutex_lock(&s->hdr->free_lock);
}

/* A process that dies holding every bucket lock costs nothing more
 * than a recovery. */
static void
test_loc_shm__lock_of_dead_process_recovered(void **state)
{
	struct lt_fix *f = *state;
	struct loc_binding b = lt_binding("q@a.test", "sip:q@h", T0 + 60);
	struct loc_shm v;

	b.edge_id = 1, b.conn_id = 9;
	assert_int_equal(loc_save(f->l, &b, T0), 0);
	lt_die_in_child(f, hold_every_lock);
	assert_int_equal(lt_count(f->l, "q@a.test", T0, NULL), 1);
	b = lt_binding("r@a.test", "sip:r@h", T0 + 60);
	b.edge_id = 1, b.conn_id = 9;
	assert_int_equal(loc_save(f->l, &b, T0), 0);
	assert_int_equal(lt_count(f->l, "r@a.test", T0, NULL), 1);
	assert_int_equal(lt_count(f->l, "q@a.test", T0, NULL), 1);
	lt_view_open(f, &v);
	assert_int_equal(lt_conn_check(&v, 1, 9), 2);
	assert_int_equal(loc_remove_conn(f->l, 1, 9, T0), 2);
	assert_int_equal(lt_conn_check(&v, 0, 0), 0);
	loc_shm_close(&v);
}

/* AORs are chosen by whoever registers: names picked to share one
 * bucket under an unkeyed hash (FNV-1a here) spread over the buckets of
 * the segment's key, and another segment has another key. */
static void
test_loc_shm__chosen_aors_do_not_share_a_bucket(void **state)
{
	struct lt_fix *f = *state;
	struct loc_shm v;
	char aors[32][32];
	struct loc_bucket *seen[32];
	uint32_t mask;
	int n = 0, distinct = 0;

	lt_view_open(f, &v);
	mask = v.hdr->nbuckets - 1;
	assert_true(mask >= 1023);
	for (int i = 0; n < 32; i++) {
		snprintf(aors[n], sizeof(aors[n]), "u%d@a.test", i);
		if ((hash_fnv1a64_nocase(aors[n], strlen(aors[n])) & mask) == 0)
			n++;
	}
	for (int i = 0; i < n; i++) {
		int dup = 0;

		seen[i] = loc_bucket_of(&v, aors[i]);
		for (int j = 0; j < i; j++)
			dup |= seen[j] == seen[i];
		distinct += !dup;
	}
	/* 32 names in 1024 buckets: a collision or two at most */
	assert_true(distinct >= 28);
	assert_true(v.hdr->bucket_key.k0 != 0 || v.hdr->bucket_key.k1 != 0);
	loc_shm_close(&v);
}

/* ---- differential test: the store against a list and a marker
 * table, with the same identity, order and known rules. */

#define M_AORS 3
#define M_MAX  64

struct model {
	struct loc_binding b[M_MAX];
	int n;
	int64_t known_until[M_AORS];
};

static const char *m_aors[M_AORS] = { "m@a.test", "m@b.test", "n@a.test" };

static int
m_aor(const char *aor)
{
	for (int i = 0; i < M_AORS; i++)
		if (strcasecmp(aor, m_aors[i]) == 0)
			return i;
	return -1;
}

static int
m_same(const struct loc_binding *a, const struct loc_binding *b)
{
	if (strcasecmp(a->aor, b->aor))
		return 0;
	if (a->instance[0] && !strcmp(a->instance, b->instance) &&
	    a->reg_id == b->reg_id)
		return 1;
	return !strcmp(a->contact, b->contact);
}

/* What a model removal matches: one contact, one connection, the
 * expired bindings, or (all zero) every binding. */
struct m_what {
	const char *contact;
	uint32_t edge_id, conn_id;
	int expired;
};

static int
m_match(const struct loc_binding *b, const struct m_what *w, int64_t now)
{
	if (w->contact)
		return !strcmp(b->contact, w->contact);
	if (w->conn_id)
		return b->edge_id == w->edge_id && b->conn_id == w->conn_id;
	if (w->expired)
		return b->expires <= now;
	return 1;
}

/* Removes the model's bindings of aor that match; returns how many. */
static int
m_remove(struct model *m, int aor, int64_t now, struct m_what w)
{
	int64_t gone = 0;
	int n = 0, left = 0;

	for (int i = 0; i < m->n;) {
		struct loc_binding *b = &m->b[i];

		if (m_aor(b->aor) != aor) {
			i++;
			continue;
		}
		if (!m_match(b, &w, now)) {
			left++;
			i++;
			continue;
		}
		int64_t g = b->expires < now ? b->expires : now;

		gone = g > gone ? g : gone;
		m->b[i] = m->b[--m->n];
		n++;
	}
	if (n && !left)
		m->known_until[aor] = gone + 100 > now ? gone + 100 : 0;
	return n;
}

static int
m_before(const void *pa, const void *pb)
{
	const struct loc_binding *a = pa, *b = pb;

	if (a->q != b->q)
		return a->q > b->q ? -1 : 1;
	if (a->expires != b->expires)
		return a->expires > b->expires ? -1 : 1;
	return strcmp(a->contact, b->contact);
}

static int
m_lookup(const struct model *m, int aor, int64_t now, struct loc_binding *out,
	 int *known)
{
	int n = 0;

	*known = m->known_until[aor] > now;
	for (int i = 0; i < m->n; i++) {
		if (m_aor(m->b[i].aor) != aor)
			continue;
		*known |= m->b[i].expires + 100 > now;
		if (m->b[i].expires > now)
			out[n++] = m->b[i];
	}
	qsort(out, n, sizeof(*out), m_before);
	return n;
}

static unsigned
rnd(unsigned *s, unsigned n)
{
	*s = *s * 1103515245u + 12345u;
	return (*s >> 16) % n;
}

static void
test_loc_shm__differential_random_ops(void **state)
{
	static const char *contacts[] = { "sip:a@h", "sip:b@h", "sip:c@h",
					  "sip:d@h" };
	static const char *inst[] = { "", "", "<urn:uuid:x>", "<urn:uuid:y>" };
	static const uint16_t qs[] = { 100, 500, 1000 };
	struct lt_fix *f = *state;
	struct model m = { .n = 0 };
	struct loc_binding got[M_MAX], want[M_MAX];
	unsigned seed = 12345;
	int64_t now = T0;
	struct loc_shm v;

	lt_view_open(f, &v);
	for (int op = 0; op < 4000; op++) {
		int aor = rnd(&seed, M_AORS), r = rnd(&seed, 11), rc, mrc;
		const char *aor_s = m_aors[aor];
		char upper[64];

		if (rnd(&seed, 4) == 0) {	/* the same AOR, other case */
			snprintf(upper, sizeof(upper), "%s", aor_s);
			upper[0] = (char)(upper[0] - 32);
			aor_s = upper;
		}
		if (r < 5) {
			struct loc_binding b = lt_binding(aor_s, contacts[rnd(&seed, 4)],
						  now + (int)rnd(&seed, 90) - 10);

			snprintf(b.instance, sizeof(b.instance), "%s",
				 inst[rnd(&seed, 4)]);
			b.reg_id = b.instance[0] ? 1 + rnd(&seed, 2) : 0;
			b.q = qs[rnd(&seed, 3)];
			b.edge_id = 1 + rnd(&seed, 2);
			b.conn_id = rnd(&seed, 3);
			b.cseq = op;
			rc = loc_save(f->l, &b, now);
			for (int i = 0; i < m.n;)
				if (m_same(&m.b[i], &b))
					m.b[i] = m.b[--m.n];
				else
					i++;
			m.b[m.n++] = b;
			m.known_until[aor] = 0;
			mrc = 0;
		} else if (r == 5) {
			const char *c = contacts[rnd(&seed, 4)];

			rc = loc_remove(f->l, aor_s, c, now);
			mrc = m_remove(&m, aor, now,
				       (struct m_what){ .contact = c }) ? 0 : -ENOENT;
		} else if (r == 6) {
			rc = loc_remove_aor(f->l, aor_s, now);
			mrc = m_remove(&m, aor, now, (struct m_what){ 0 });
		} else if (r == 7) {
			struct m_what w = { .edge_id = 1 + rnd(&seed, 2),
					    .conn_id = 1 + rnd(&seed, 2) };

			rc = loc_remove_conn(f->l, (uint16_t)w.edge_id, w.conn_id,
					     now);
			mrc = 0;
			for (int a = 0; a < M_AORS; a++)
				mrc += m_remove(&m, a, now, w);
		} else if (r == 8) {
			loc_expire(f->l, now);	/* 64 buckets: one slice */
			rc = mrc = 0;
			for (int a = 0; a < M_AORS; a++) {
				m_remove(&m, a, now, (struct m_what){ .expired = 1 });
				if (m.known_until[a] <= now)
					m.known_until[a] = 0;
			}
		} else if (r == 10) {	/* another host's view (Redis) */
			struct loc_binding bs[2];
			int n = rnd(&seed, 3);
			int64_t ku = now + (int)rnd(&seed, 60) - 20;

			for (int j = 0; j < n; j++) {
				bs[j] = lt_binding(m_aors[aor], contacts[j + rnd(&seed, 2) * 2],
					   now + (int)rnd(&seed, 90) - 10);
				bs[j].q = qs[rnd(&seed, 3)];
				bs[j].edge_id = 1 + rnd(&seed, 2);
				bs[j].conn_id = rnd(&seed, 3);
				bs[j].cseq = op;
			}
			rc = loc_shm_replace_aor(&v, aor_s, bs, n, ku, now, NULL);
			for (int i = 0; i < m.n;)
				if (m_aor(m.b[i].aor) == aor)
					m.b[i] = m.b[--m.n];
				else
					i++;
			for (int j = 0; j < n; j++)
				m.b[m.n++] = bs[j];
			m.known_until[aor] = n == 0 && ku > now ? ku : 0;
			mrc = 0;
		} else {
			now += rnd(&seed, 20);
			rc = mrc = 0;
		}
		if (rc != mrc)
			fail_msg("op %d (kind %d): store %d, model %d", op, r,
				 rc, mrc);
		for (int a = 0; a < M_AORS; a++) {
			int kg, kw;
			int ng = loc_lookup(f->l, m_aors[a], now, got, M_MAX, &kg);
			int nw = m_lookup(&m, a, now, want, &kw);

			if (ng != nw || kg != kw)
				fail_msg("op %d: %s: store %d known %d, model %d "
					 "known %d", op, m_aors[a], ng, kg, nw, kw);
			for (int i = 0; i < ng; i++) {
				assert_string_equal(got[i].contact, want[i].contact);
				assert_int_equal(got[i].cseq, want[i].cseq);
			}
		}
		/* the index holds exactly the model's bindings with a conn */
		for (int e = 0; e <= 2; e++)
			for (uint32_t c = e ? 0 : 1; c <= 2; c++) {
				int want_n = 0, got_n;

				for (int i = 0; i < m.n; i++)
					want_n += m.b[i].conn_id &&
						  (c == 0 || (m.b[i].edge_id == e &&
							      m.b[i].conn_id == c));
				got_n = lt_conn_check(&v, (uint16_t)e, c);
				if (got_n != want_n)
					fail_msg("op %d (kind %d): index (%d, %u) "
						 "holds %d, model %d", op, r, e,
						 c, got_n, want_n);
			}
	}
	loc_shm_close(&v);
}


/* A write to the AOR between the read and the update makes the update
 * refuse, with nothing changed: the registrar decides again on what the
 * other core stored. */
static void
test_loc_shm__update_refused_after_another_write(void **state)
{
	struct lt_fix *f = *state;
	struct loc_binding out[4];
	struct loc_change ch[2];
	uint32_t seq;

	assert_int_equal(loc_lookup_seq(f->l, "u@a.test", T0, out, 4, NULL,
					&seq), 0);
	memset(ch, 0, sizeof(ch));
	ch[0].op = LOC_CHANGE_SAVE;
	ch[0].b = lt_binding("u@a.test", "sip:u1@h", T0 + 60);
	ch[1].op = LOC_CHANGE_SAVE;
	ch[1].b = lt_binding("u@a.test", "sip:u2@h", T0 + 60);
	/* another core's REGISTER lands first */
	out[0] = lt_binding("u@a.test", "sip:other@h", T0 + 60);
	assert_int_equal(loc_save(f->l, &out[0], T0), 0);
	assert_int_equal(loc_update(f->l, "u@a.test", seq, ch, 2, T0), -EAGAIN);
	assert_int_equal(lt_count(f->l, "u@a.test", T0, NULL), 1);
	/* read again: now it goes through, both at once */
	assert_int_equal(loc_lookup_seq(f->l, "u@a.test", T0, out, 4, NULL,
					&seq), 1);
	assert_int_equal(loc_update(f->l, "u@a.test", seq, ch, 2, T0), 0);
	assert_int_equal(lt_count(f->l, "u@a.test", T0, NULL), 3);
	/* a removal and a save at once; then all of them */
	memset(ch, 0, sizeof(ch));
	ch[0].op = LOC_CHANGE_REMOVE;
	ch[0].b = lt_binding("u@a.test", "sip:other@h", 0);
	ch[1].op = LOC_CHANGE_SAVE;
	ch[1].b = lt_binding("u@a.test", "sip:u3@h", T0 + 60);
	assert_int_equal(loc_lookup_seq(f->l, "u@a.test", T0, out, 4, NULL,
					&seq), 3);
	assert_int_equal(loc_update(f->l, "u@a.test", seq, ch, 2, T0), 0);
	assert_int_equal(loc_lookup(f->l, "u@a.test", T0, out, 4, NULL), 3);
	for (int i = 0; i < 3; i++)
		assert_string_not_equal(out[i].contact, "sip:other@h");
	ch[0].op = LOC_CHANGE_REMOVE_ALL;
	assert_int_equal(loc_lookup_seq(f->l, "u@a.test", T0, out, 4, NULL,
					&seq), 3);
	assert_int_equal(loc_update(f->l, "u@a.test", seq, ch, 1, T0), 0);
	assert_int_equal(lt_count(f->l, "u@a.test", T0, NULL), 0);
}

/* Either every change happens or none: three new bindings into a store
 * with room for two change nothing. */
static void
test_loc_shm__update_all_or_nothing_when_full(void **state)
{
	struct lt_fix *f = *state;
	struct loc_binding b, out[4];
	struct loc_change ch[3];
	char aor[32];
	uint32_t seq;

	for (int i = 0; i < 14; i++) {
		snprintf(aor, sizeof(aor), "fill%d@a.test", i);
		b = lt_binding(aor, "sip:f@h", T0 + 600);
		assert_int_equal(loc_save(f->l, &b, T0), 0);
	}
	memset(ch, 0, sizeof(ch));
	for (int i = 0; i < 3; i++) {
		char c[32];

		snprintf(c, sizeof(c), "sip:n%d@h", i);
		ch[i].op = LOC_CHANGE_SAVE;
		ch[i].b = lt_binding("n@a.test", c, T0 + 60);
	}
	assert_int_equal(loc_lookup_seq(f->l, "n@a.test", T0, out, 4, NULL,
					&seq), 0);
	assert_int_equal(loc_update(f->l, "n@a.test", seq, ch, 3, T0), -ENOSPC);
	assert_int_equal(lt_count(f->l, "n@a.test", T0, NULL), 0);
	assert_int_equal(loc_lookup_seq(f->l, "n@a.test", T0, out, 4, NULL,
					&seq), 0);
	assert_int_equal(loc_update(f->l, "n@a.test", seq, ch, 2, T0), 0);
	assert_int_equal(lt_count(f->l, "n@a.test", T0, NULL), 2);
}

/* ---- a writer killed at any instant */

#define KILL_KEEP 24
#define KILL_CHURN 12

/* Fields a writer sets to the same number n: a torn copy shows. */
static struct loc_binding
kill_binding(const char *aor, int contact, uint32_t n, int64_t exp)
{
	char c[32];
	struct loc_binding b;

	snprintf(c, sizeof(c), "sip:c%d@h", contact);
	b = lt_binding(aor, c, exp);
	b.cseq = n;
	snprintf(b.callid, sizeof(b.callid), "cid-%u", n);
	snprintf(b.user_agent, sizeof(b.user_agent), "ua-%u", n);
	b.edge_id = 1;
	b.conn_id = 100 + (uint32_t)contact;
	return b;
}

static int
kill_whole(const struct loc_binding *b)
{
	unsigned a, u;

	return sscanf(b->callid, "cid-%u", &a) == 1 &&
	       sscanf(b->user_agent, "ua-%u", &u) == 1 && a == u &&
	       a == b->cseq && b->conn_id >= 100 && b->conn_id < 103;
}

/* Slots in the free list and in the AOR chains; every slot is in one
 * once nothing is being written. */
static uint32_t
kill_slots_accounted(struct loc_shm *v)
{
	uint32_t n = 0;

	assert_int_equal(loc_lock(v, &v->hdr->free_lock, NULL), 0);
	for (uint32_t i = v->hdr->free_head; i != LOC_NIL; i = v->slots[i].next)
		n++;
	loc_unlock(&v->hdr->free_lock);
	for (uint32_t b = 0; b < v->hdr->nbuckets; b++) {
		struct loc_bucket *bk = &v->buckets[b];

		assert_int_equal(loc_lock(v, &bk->lock, bk), 0);
		for (uint32_t i = bk->head; i != LOC_NIL; i = v->slots[i].next)
			n++;
		loc_unlock(&bk->lock);
	}
	return n;
}

/* The child: refreshes the kept bindings in place and churns others
 * (new, replaced, removed) until it is killed. */
static void
kill_writer(struct lt_fix *f)
{
	struct loc *l;
	char aor[32];

	if (loc_new(&l, &f->cfg, NULL) != 0)
		_exit(2);
	for (uint32_t n = 1000;; n++) {
		struct loc_binding b;

		snprintf(aor, sizeof(aor), "keep%u@a.test", n % KILL_KEEP);
		b = kill_binding(aor, 0, n, T0 + 600);
		loc_save(l, &b, T0);
		snprintf(aor, sizeof(aor), "churn%u@a.test", n % KILL_CHURN);
		b = kill_binding(aor, (int)(n % 3), n, T0 + 600);
		if (n % 5 == 0)
			loc_remove(l, aor, b.contact, T0);
		else if (n % 11 == 0)
			loc_remove_aor(l, aor, T0);
		else
			loc_save(l, &b, T0);
	}
}

/*
 * A writer is SIGKILLed at random instants of its saves and removals,
 * 200 times.  After each: every kept binding is still there, whole;
 * nothing served is torn; the connection index agrees with the chains;
 * and once the slot sweep ran every slot is accounted for.  (Before:
 * a new slot joined its chain still marked free, an in-place copy
 * could be left half-written and served, a repair cut the chain after
 * the first bad slot, dropping the bindings behind it, and slots a
 * dead writer held were lost until the segment was recreated.)
 */
static void
test_loc_shm__writer_killed_anywhere_loses_nothing(void **state)
{
	struct lt_fix *f = *state;
	struct loc_binding out[8];
	struct loc_stats st;
	struct loc_shm v;
	char aor[32];
	uint64_t seed = (uint64_t)getpid();

	for (uint32_t j = 0; j < KILL_KEEP; j++) {
		struct loc_binding b;

		snprintf(aor, sizeof(aor), "keep%u@a.test", j);
		b = kill_binding(aor, 0, 1, T0 + 600);
		assert_int_equal(loc_save(f->l, &b, T0), 0);
	}
	lt_view_open(f, &v);
	for (int round = 0; round < 200; round++) {
		int status;
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0)
			kill_writer(f);
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		usleep(200 + (useconds_t)((seed >> 33) % 3000));
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);

		loc_expire(f->l, T0);	/* sweeps the dead writer's slots */
		for (uint32_t j = 0; j < KILL_KEEP; j++) {
			snprintf(aor, sizeof(aor), "keep%u@a.test", j);
			if (loc_lookup(f->l, aor, T0, out, 8, NULL) != 1 ||
			    !kill_whole(&out[0]))
				fail_msg("round %d: %s lost or torn (cseq %u)",
					 round, aor, out[0].cseq);
		}
		for (uint32_t j = 0; j < KILL_CHURN; j++) {
			int n;

			snprintf(aor, sizeof(aor), "churn%u@a.test", j);
			n = loc_lookup(f->l, aor, T0, out, 8, NULL);
			assert_true(n >= 0 && n <= 3);
			for (int i = 0; i < n; i++)
				if (!kill_whole(&out[i]))
					fail_msg("round %d: %s torn", round, aor);
		}
		assert_true(lt_conn_check(&v, 0, 0) >= 0);
		assert_int_equal(kill_slots_accounted(&v), v.hdr->nslots);
	}
	loc_stats_get(f->l, &st);
	print_message("lock recoveries %llu, slots recovered %llu\n",
		      (unsigned long long)v.hdr->lock_recoveries,
		      (unsigned long long)v.hdr->slots_recovered);
	loc_shm_close(&v);
}

/* ---- start-up: the process that formats and loads the store */

static void
start_cfg(struct loc_config *cfg, char *name, size_t cap)
{
	static int seq;

	snprintf(name, cap, "/smloc-start-%d-%d", (int)getpid(), seq++);
	loc_shm_unlink(name);
	memset(cfg, 0, sizeof(*cfg));
	cfg->shm_name = name;
	cfg->shm_size = 64 << 20;
	cfg->max_bindings = 64;
	cfg->aor_ttl = 100;
	cfg->init_wait_ms = 20000;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A child makes the segment and dies before it is ready (a core killed
 * while it loads from Redis): the next process takes it over at once
 * and serves, instead of waiting for a creator that will never finish
 * (it waited 30 s, then failed). */
static void
test_loc_shm__creator_killed_while_loading_is_taken_over(void **state)
{
	struct loc_config cfg;
	struct loc_binding b;
	struct loc *l;
	char name[64];
	int64_t t;
	int status;
	pid_t pid;

	(void)state;
	start_cfg(&cfg, name, sizeof(name));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct loc_shm sh;

		if (loc_shm_open(&sh, &cfg) != 0 || !sh.created)
			_exit(2);
		kill(getpid(), SIGKILL);	/* no init_done, no close */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	t = mono_ms();
	assert_int_equal(loc_new(&l, &cfg, NULL), 0);
	assert_true(mono_ms() - t < 2000);
	b = lt_binding("late@a.test", "sip:late@h", T0 + 60);
	assert_int_equal(loc_save(l, &b, T0), 0);
	assert_int_equal(lt_count(l, "late@a.test", T0, NULL), 1);
	loc_free(l);
	assert_int_equal(loc_shm_unlink(name), 0);
}

/* A live creator that is still loading is waited for, not taken over:
 * what it loaded is there once it is ready. */
static void
test_loc_shm__live_creator_is_waited_for(void **state)
{
	struct loc_config cfg;
	struct loc *l;
	char name[64];
	int pfd[2], status;
	pid_t pid;
	char c;

	(void)state;
	start_cfg(&cfg, name, sizeof(name));
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct loc_shm sh;
		struct loc_binding b = lt_binding("early@a.test",
						  "sip:early@h", T0 + 60);

		close(pfd[0]);
		if (loc_shm_open(&sh, &cfg) != 0 || !sh.created)
			_exit(2);
		if (write(pfd[1], "x", 1) != 1)
			_exit(3);
		usleep(300 * 1000);	/* "loading" */
		if (loc_shm_save(&sh, &b, T0, NULL) != 0)
			_exit(4);
		loc_shm_init_done(&sh);
		usleep(500 * 1000);	/* alive while the parent looks */
		_exit(0);
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	assert_int_equal(loc_new(&l, &cfg, NULL), 0);
	assert_int_equal(lt_count(l, "early@a.test", T0, NULL), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	loc_free(l);
	assert_int_equal(loc_shm_unlink(name), 0);
}

/* A finished store whose creator is gone (an earlier run's) is marked
 * orphan for the one process that then keeps it, which reconciles it
 * with Redis; the next one to attach beside that keeper is not. */
static void
test_loc_shm__store_of_an_earlier_run_is_an_orphan(void **state)
{
	struct loc_config cfg;
	struct loc_shm a, b;
	char name[64];
	int status;
	pid_t pid;

	(void)state;
	start_cfg(&cfg, name, sizeof(name));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct loc_shm sh;

		if (loc_shm_open(&sh, &cfg) != 0 || !sh.created)
			_exit(2);
		loc_shm_init_done(&sh);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(loc_shm_open(&a, &cfg), 0);
	assert_int_equal(a.created, 0);
	assert_int_equal(a.orphan, 1);
	assert_int_equal(loc_shm_open(&b, &cfg), 0);
	assert_int_equal(b.orphan, 0);
	loc_shm_close(&b);
	loc_shm_close(&a);
	assert_int_equal(loc_shm_unlink(name), 0);
}

/* A process stopped (SIGSTOP) while it holds every lock costs a
 * request LOC_LOCK_WAIT_MS at most, an error instead of a frozen core;
 * once it is killed its locks are recovered and all works again. */
static void
test_loc_shm__stopped_lock_holder_freezes_nobody(void **state)
{
	struct lt_fix *f = *state;
	struct loc_binding b = lt_binding("st@a.test", "sip:st@h", T0 + 60);
	int status, pfd[2];
	int64_t t;
	pid_t pid;
	char c;

	assert_int_equal(loc_save(f->l, &b, T0), 0);
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct loc_shm sh;

		if (loc_shm_open(&sh, &f->cfg) != 0)
			_exit(2);
		hold_every_lock(&sh);
		if (write(pfd[1], "x", 1) != 1)
			_exit(3);
		raise(SIGSTOP);
		_exit(0);
	}
	assert_int_equal(read(pfd[0], &c, 1), 1);
	assert_int_equal(waitpid(pid, &status, WUNTRACED), pid);
	assert_true(WIFSTOPPED(status));
	t = mono_ms();
	assert_int_equal(lt_count(f->l, "st@a.test", T0, NULL), -ETIMEDOUT);
	assert_true(mono_ms() - t < 2000);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(lt_count(f->l, "st@a.test", T0, NULL), 1);
	close(pfd[0]);
	close(pfd[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		LT_TEST(test_loc_shm__save_lookup_replace_by_contact),
		LT_TEST(test_loc_shm__replace_by_instance_reg_id),
		LT_TEST(test_loc_shm__several_contacts_ordered_by_q),
		LT_TEST(test_loc_shm__aor_domain_matters_case_does_not),
		LT_TEST(test_loc_shm__aors_counted_by_the_sweep),
		LT_TEST(test_loc_shm__expires_on_time),
		LT_TEST(test_loc_shm__known_after_last_binding_then_forgotten),
		LT_TEST(test_loc_shm__remove_remove_aor_remove_conn),
		LT_TEST_N(test_loc_shm__full_store_enospc_keeps_bindings, 16),
		LT_TEST(test_loc_shm__two_processes_share_one_segment),
		LT_TEST(test_loc_shm__lock_of_dead_process_recovered),
		LT_TEST(test_loc_shm__differential_random_ops),
		LT_TEST(test_loc_shm__update_refused_after_another_write),
		LT_TEST_N(test_loc_shm__update_all_or_nothing_when_full, 16),
		LT_TEST_N(test_loc_shm__writer_killed_anywhere_loses_nothing, 128),
		LT_TEST_N(test_loc_shm__chosen_aors_do_not_share_a_bucket, 1024),
		cmocka_unit_test(test_loc_shm__creator_killed_while_loading_is_taken_over),
		cmocka_unit_test(test_loc_shm__live_creator_is_waited_for),
		cmocka_unit_test(test_loc_shm__store_of_an_earlier_run_is_an_orphan),
		LT_TEST(test_loc_shm__stopped_lock_holder_freezes_nobody),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
