/*
 * test_edge_conn.c - the connection table: ids, lookups by id and by
 * destination, the per-IP cap, state lists and the idle order, plus a
 * differential run against a plain array model over few destinations
 * and source IPs, so that keys repeat, the cap bites and the tables
 * double on the way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "edge/edge_int.h"

static union env_sa
sa(const char *ip, int port)
{
	union env_sa s;

	assert_int_equal(env_sa_from(&s, ip, port), 0);
	return s;
}

/* A transport without pings (TCP, TLS) and one with (WebSocket); the
 * table calls nothing else. */
static const struct edge_conn_ops plain_ops;

static int pings;

static void
count_ping(struct edge_conn *c)
{
	(void)c;
	pings++;
}

static const struct edge_conn_ops ping_ops = { .ping = count_ping };

static struct edge_conn *
conn(int transport, const char *ip, int port, int outbound)
{
	struct edge_conn *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->ops = transport == ENV_WS ? &ping_ops : &plain_ops;
	c->transport = (uint8_t)transport;
	c->peer = sa(ip, port);
	c->outbound = (uint8_t)outbound;
	return c;
}

static void
test_edge_conn__ids_are_unique_and_found(void **state)
{
	struct edge_conn_table t;
	struct edge_conn *a = conn(ENV_TCP, "127.0.0.1", 1000, 0);
	struct edge_conn *b = conn(ENV_WS, "127.0.0.1", 1001, 0);
	struct edge_conn *c = conn(ENV_TLS, "::1", 1000, 1);

	(void)state;
	edge_conn_table_init(&t, 0);
	assert_int_equal(edge_conn_add(&t, a, 10), 0);
	assert_int_equal(edge_conn_add(&t, b, 10), 0);
	assert_int_not_equal(a->id, 0);
	assert_int_not_equal(a->id, b->id);
	assert_ptr_equal(edge_conn_find(&t, a->id), a);
	assert_ptr_equal(edge_conn_find(&t, b->id), b);
	edge_conn_del(&t, a);
	assert_null(edge_conn_find(&t, a->id));
	edge_conn_del(&t, a);	/* twice is harmless */
	/* A closed id is never handed out again. */
	assert_int_equal(edge_conn_add(&t, c, 10), 0);
	assert_true(c->id > b->id);
	assert_int_equal(t.by_id.n, 2);

	/* By destination: exact transport, address and port. */
	assert_ptr_equal(edge_conn_find_dst(&t, ENV_TLS, &c->peer), c);
	{
		union env_sa other = sa("::1", 1001);

		assert_null(edge_conn_find_dst(&t, ENV_TLS, &other));
		assert_null(edge_conn_find_dst(&t, ENV_TCP, &c->peer));
	}
	edge_conn_del(&t, b);
	edge_conn_del(&t, c);
	assert_int_equal(t.by_id.n, 0);
	edge_conn_table_fini(&t);
	free(a);
	free(b);
	free(c);
}

/*
 * The attack of issue 9: a core still holds the id of a connection of
 * an edge process that died; the edge starts again and its first
 * connections take the same serials.  Under the new incarnation those
 * serials make other ids: the old ones find nothing.
 */
static void
test_edge_conn__a_restart_never_reuses_an_id(void **state)
{
	struct edge_conn_table before, after;
	struct edge_conn *old[3], *fresh[3];
	uint32_t inc[8];

	(void)state;
	for (int i = 0; i < 8; i++) {
		assert_int_equal(edge_incarnation_new(&inc[i]), 0);
		assert_int_not_equal(inc[i], 0);
	}
	/* 32 random bits: eight equal draws would be a broken source. */
	assert_true(inc[0] != inc[1] || inc[0] != inc[2] || inc[0] != inc[3]);
	edge_conn_table_init(&before, 0);
	edge_conn_table_init(&after, 0);
	before.incarnation = inc[0];
	after.incarnation = inc[0] != inc[1] ? inc[1] : inc[2];
	for (int i = 0; i < 3; i++) {
		old[i] = conn(ENV_WS, "127.0.0.1", 2000 + i, 0);
		fresh[i] = conn(ENV_WS, "127.0.0.1", 3000 + i, 0);
		assert_int_equal(edge_conn_add(&before, old[i], 1), 0);
		assert_int_equal(edge_conn_add(&after, fresh[i], 2), 0);
		/* Same serial, from 1, in both processes... */
		assert_int_equal(ENV_CONN_SERIAL(old[i]->id), i + 1);
		assert_int_equal(ENV_CONN_SERIAL(fresh[i]->id), i + 1);
		assert_int_equal(ENV_CONN_INC(old[i]->id), before.incarnation);
		assert_int_equal(ENV_CONN_INC(fresh[i]->id), after.incarnation);
	}
	for (int i = 0; i < 3; i++) {
		/* ...but the dead process's ids reach nobody now. */
		assert_null(edge_conn_find(&after, old[i]->id));
		assert_ptr_equal(edge_conn_find(&after, fresh[i]->id), fresh[i]);
		/* Nor does a bare serial (a binding stored before
		 * incarnations: incarnation 0). */
		assert_null(edge_conn_find(&after, ENV_CONN_SERIAL(fresh[i]->id)));
		edge_conn_del(&before, old[i]);
		edge_conn_del(&after, fresh[i]);
		free(old[i]);
		free(fresh[i]);
	}
	edge_conn_table_fini(&before);
	edge_conn_table_fini(&after);
}

/* Several connections to one address (TLS to one host serving two
 * names): the iteration visits each once, and only those. */
static void
test_edge_conn__find_dst_after_visits_every_match(void **state)
{
	struct edge_conn_table t;
	struct edge_conn *c[4] = {
		conn(ENV_TLS, "127.0.0.1", 5061, 1),
		conn(ENV_TLS, "127.0.0.1", 5061, 1),
		conn(ENV_TCP, "127.0.0.1", 5061, 1),
		conn(ENV_TLS, "127.0.0.1", 5062, 1),
	};
	struct edge_conn *x;
	int seen[4] = { 0 }, n = 0;

	(void)state;
	/* One transport and address hash alike: the two TLS connections
	 * share a chain, and the iteration must skip whatever else is in
	 * it. */
	edge_conn_table_init(&t, 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(edge_conn_add(&t, c[i], 10), 0);
	for (x = edge_conn_find_dst(&t, ENV_TLS, &c[0]->peer); x;
	     x = edge_conn_find_dst_after(&t, ENV_TLS, &c[0]->peer, x), n++)
		for (int i = 0; i < 4; i++)
			seen[i] += x == c[i];
	assert_int_equal(n, 2);
	assert_int_equal(seen[0], 1);
	assert_int_equal(seen[1], 1);
	assert_int_equal(seen[2] + seen[3], 0);
	for (int i = 0; i < 4; i++) {
		edge_conn_del(&t, c[i]);
		free(c[i]);
	}
	edge_conn_table_fini(&t);
}

static void
test_edge_conn__per_ip_cap_counts_inbound_only(void **state)
{
	struct edge_conn_table t;
	struct edge_conn *c[5];
	union env_sa ip = sa("127.0.0.9", 0);

	(void)state;
	edge_conn_table_init(&t, 3);
	for (int i = 0; i < 3; i++) {
		c[i] = conn(ENV_TCP, "127.0.0.9", 2000 + i, 0);
		assert_int_equal(edge_conn_add(&t, c[i], 0), 0);
	}
	assert_int_equal(edge_conn_ip_count(&t, &ip), 3);
	c[3] = conn(ENV_WS, "127.0.0.9", 3000, 0);
	assert_int_equal(edge_conn_add(&t, c[3], 0), -EMFILE);
	/* Outbound connections are ours: no cap. */
	c[4] = conn(ENV_TCP, "127.0.0.9", 5060, 1);
	assert_int_equal(edge_conn_add(&t, c[4], 0), 0);
	assert_int_equal(edge_conn_ip_count(&t, &ip), 3);
	/* A close frees a slot. */
	edge_conn_del(&t, c[0]);
	assert_int_equal(edge_conn_ip_count(&t, &ip), 2);
	assert_int_equal(edge_conn_add(&t, c[3], 0), 0);
	for (int i = 1; i < 5; i++)
		edge_conn_del(&t, c[i]);
	assert_int_equal(edge_conn_ip_count(&t, &ip), 0);
	edge_conn_table_fini(&t);
	for (int i = 0; i < 5; i++)
		free(c[i]);
}

static void
test_edge_conn__per_64_and_total_caps(void **state)
{
	struct edge_conn_table t;
	struct edge_conn *c[6];
	char ip[64];

	(void)state;
	edge_conn_table_init(&t, 0);
	t.max_per_net = 2;
	t.max_in = 4;
	/* Two addresses of one /64 are one source for the cap. */
	for (int i = 0; i < 3; i++) {
		snprintf(ip, sizeof(ip), "2001:db8:0:1::%x", i + 1);
		c[i] = conn(ENV_TCP, ip, 2000, 0);
	}
	assert_int_equal(edge_conn_add(&t, c[0], 0), 0);
	assert_int_equal(edge_conn_add(&t, c[1], 0), 0);
	assert_int_equal(edge_conn_add(&t, c[2], 0), -EMFILE);
	/* The next /64 has its own; then the edge is full. */
	c[3] = conn(ENV_TCP, "2001:db8:0:2::1", 2000, 0);
	c[4] = conn(ENV_WS, "192.0.2.1", 2000, 0);
	c[5] = conn(ENV_TCP, "192.0.2.2", 2000, 0);
	assert_int_equal(edge_conn_add(&t, c[3], 0), 0);
	assert_int_equal(edge_conn_add(&t, c[4], 0), 0);
	assert_int_equal(edge_conn_add(&t, c[5], 0), -ENFILE);
	edge_conn_del(&t, c[0]);
	assert_int_equal(edge_conn_add(&t, c[2], 0), 0);
	assert_int_equal(t.n_in, 4);
	for (int i = 1; i < 5; i++)
		edge_conn_del(&t, c[i]);
	assert_int_equal(t.n_in, 0);
	assert_int_equal(t.by_ip.n, 0);
	edge_conn_table_fini(&t);
	for (int i = 0; i < 6; i++)
		free(c[i]);
}

static void
test_edge_conn__keepalives_do_not_hold_off_the_message_deadline(void **state)
{
	struct edge_conn_table t;
	struct edge_conn *a = conn(ENV_TCP, "127.0.0.1", 1, 0);
	struct edge_conn *b = conn(ENV_TCP, "127.0.0.1", 2, 0);
	const char *why;

	(void)state;
	edge_conn_table_init(&t, 0);
	assert_int_equal(edge_conn_add(&t, a, 0), 0);
	assert_int_equal(edge_conn_add(&t, b, 0), 0);
	/* A keepalive does not open a stream; its first message does. */
	edge_conn_touch(&t, a, 50);
	assert_int_equal(a->state, EDGE_CONN_PENDING);
	edge_conn_msg(&t, a, 100);
	edge_conn_msg(&t, b, 200);
	assert_int_equal(a->state, EDGE_CONN_OPEN);
	/* a pings on (idle 1000 never reached), b sends SIP. */
	for (uint64_t now = 300; now <= 3000; now += 300) {
		edge_conn_touch(&t, a, now);
		edge_conn_msg(&t, b, now);
		assert_null(edge_conn_expired(&t, now, 10000, 1000, 5000, NULL));
	}
	assert_null(edge_conn_expired(&t, 5099, 10000, 0, 5000, NULL));
	assert_ptr_equal(edge_conn_expired(&t, 5100, 10000, 0, 5000, &why), a);
	assert_non_null(strstr(why, "SIP message"));
	edge_conn_del(&t, a);
	assert_null(edge_conn_expired(&t, 7999, 10000, 0, 5000, NULL));
	assert_ptr_equal(edge_conn_expired(&t, 8000, 10000, 0, 5000, NULL), b);
	edge_conn_del(&t, b);
	edge_conn_table_fini(&t);
	free(a);
	free(b);
}

/* Pings go to WebSocket connections silent for the interval, once; one
 * silent for another interval after its ping is handed back to close. */
static void
test_edge_conn__pings_go_to_the_silent_and_the_mute_are_given_up(void **state)
{
	struct edge_conn_table t;
	struct edge_conn *a = conn(ENV_WS, "127.0.0.1", 1, 0);
	struct edge_conn *b = conn(ENV_WS, "127.0.0.1", 2, 0);
	struct edge_conn *c = conn(ENV_WS, "127.0.0.1", 3, 0);
	struct edge_conn *d = conn(ENV_TCP, "127.0.0.1", 4, 0);
	struct edge_conn *all[] = { a, b, c, d };

	(void)state;
	pings = 0;
	edge_conn_table_init(&t, 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(edge_conn_add(&t, all[i], 0), 0);
		edge_conn_open(&t, all[i], 0);
	}
	assert_null(edge_conn_ping_round(&t, 500, 1000, 100));
	edge_conn_touch(&t, b, 800);		/* b is heard from */
	assert_null(edge_conn_ping_round(&t, 1000, 1000, 0));
	assert_int_equal(pings, 0);		/* max 0: none this round */
	assert_null(edge_conn_ping_round(&t, 1000, 1000, 100));
	assert_int_equal(pings, 2);		/* a and c; d has no pings */
	assert_true(a->pinged && c->pinged && !b->pinged && !d->pinged);
	assert_null(edge_conn_ping_round(&t, 1500, 1000, 100));
	assert_null(edge_conn_ping_round(&t, 1800, 1000, 100));
	assert_int_equal(pings, 3);		/* b, a second after its news */
	edge_conn_touch(&t, a, 1900);		/* a's pong */
	assert_false(a->pinged);
	/* c never answered: given up, once the interval is over again */
	assert_null(edge_conn_ping_round(&t, 1999, 1000, 100));
	assert_ptr_equal(edge_conn_ping_round(&t, 2000, 1000, 100), c);
	edge_conn_del(&t, c);
	assert_null(edge_conn_ping_round(&t, 2000, 1000, 100));
	assert_int_equal(pings, 3);
	assert_ptr_equal(edge_conn_ping_round(&t, 2800, 1000, 100), b);
	for (int i = 0; i < 4; i++) {
		edge_conn_del(&t, all[i]);
		free(all[i]);
	}
	edge_conn_table_fini(&t);
}

/*
 * A WebSocket stays PENDING after its upgrade until its first SIP
 * message: its pongs and CRLF keepalives (edge_conn_touch) neither
 * open it nor hold off the handshake deadline, and it is never pinged,
 * while one that sent a REGISTER is OPEN and lives on.
 */
static void
test_edge_conn__a_websocket_without_sip_meets_the_handshake_deadline(void **state)
{
	struct edge_conn_table t;
	struct edge_conn *mute = conn(ENV_WS, "127.0.0.1", 1, 0);
	struct edge_conn *sip = conn(ENV_WS, "127.0.0.1", 2, 0);
	const char *why = NULL;

	(void)state;
	pings = 0;
	edge_conn_table_init(&t, 0);
	assert_int_equal(edge_conn_add(&t, mute, 0), 0);
	assert_int_equal(edge_conn_add(&t, sip, 0), 0);
	edge_conn_msg(&t, sip, 300);		/* its REGISTER */
	for (uint64_t now = 100; now < 2000; now += 100)
		edge_conn_touch(&t, mute, now);	/* pongs, keepalives */
	assert_int_equal(mute->state, EDGE_CONN_PENDING);
	assert_int_equal(sip->state, EDGE_CONN_OPEN);
	assert_null(edge_conn_ping_round(&t, 1500, 1000, 100));
	assert_int_equal(pings, 1);		/* sip only */
	assert_null(edge_conn_expired(&t, 1999, 2000, 0, 0, NULL));
	assert_ptr_equal(edge_conn_expired(&t, 2000, 2000, 0, 0, &why), mute);
	assert_string_equal(why, "connect or handshake timeout");
	edge_conn_del(&t, mute);
	assert_null(edge_conn_expired(&t, 100000, 2000, 0, 0, NULL));
	edge_conn_del(&t, sip);
	free(mute);
	free(sip);
	edge_conn_table_fini(&t);
}

static void
test_edge_conn__sweep_takes_the_oldest_first(void **state)
{
	struct edge_conn_table t;
	struct edge_conn *a = conn(ENV_TLS, "127.0.0.1", 1, 0);
	struct edge_conn *b = conn(ENV_TCP, "127.0.0.1", 2, 0);
	struct edge_conn *c = conn(ENV_TCP, "127.0.0.1", 3, 0);

	(void)state;
	edge_conn_table_init(&t, 0);
	assert_int_equal(edge_conn_add(&t, a, 0), 0);	/* handshake */
	assert_int_equal(edge_conn_add(&t, b, 0), 0);
	assert_int_equal(edge_conn_add(&t, c, 0), 0);
	edge_conn_open(&t, b, 100);
	edge_conn_open(&t, c, 200);
	/* Activity on a pending connection does not extend its deadline. */
	edge_conn_touch(&t, a, 5000);
	assert_null(edge_conn_expired(&t, 9999, 10000, 1000000, 0, NULL));
	assert_ptr_equal(edge_conn_expired(&t, 10000, 10000, 1000000, 0, NULL), a);
	edge_conn_del(&t, a);
	/* Open ones: by last activity; touching b makes c the oldest. */
	edge_conn_touch(&t, b, 300);
	assert_null(edge_conn_expired(&t, 1199, 10000, 1000, 0, NULL));
	assert_ptr_equal(edge_conn_expired(&t, 1200, 10000, 1000, 0, NULL), c);
	edge_conn_del(&t, c);
	assert_ptr_equal(edge_conn_expired(&t, 1300, 10000, 1000, 0, NULL), b);
	/* idle 0: never idle. */
	assert_null(edge_conn_expired(&t, 1000000, 10000, 0, 0, NULL));
	edge_conn_del(&t, b);
	edge_conn_table_fini(&t);
	free(a);
	free(b);
	free(c);
}

/* ---- differential test against an array model ---- */

enum { MODEL_MAX = 200, MODEL_TPS = 4, MODEL_PORTS = 3, MODEL_CAP = 3 };

/* Distinct strings are distinct addresses, so the model compares
 * indexes; v4-mapped and plain IPv4 must stay apart. */
static const char *const model_ips[] = {
	"127.0.0.1", "127.0.0.2", "10.0.0.1", "192.168.1.1",
	"::1", "::2", "fe80::1", "::ffff:127.0.0.1",
};
#define MODEL_IPS (int)(sizeof(model_ips) / sizeof(model_ips[0]))

struct model_conn {
	struct edge_conn *c;
	int tp, ip, port;	/* indexes into the key space */
	int state;
	uint64_t last_ms;
	uint64_t seq;		/* when it joined the list of its state */
};

struct model {
	struct model_conn live[MODEL_MAX];
	int n;
	uint64_t seq;
};

static unsigned
model_rand(unsigned *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return *seed >> 8;
}

static int
model_ip_inbound(const struct model *m, int ip)
{
	int n = 0;

	for (int i = 0; i < m->n; i++)
		n += m->live[i].ip == ip && !m->live[i].c->outbound;
	return n;
}

/* The oldest connection of state in the model, or NULL. */
static struct model_conn *
model_oldest(struct model *m, int state)
{
	struct model_conn *o = NULL;

	for (int i = 0; i < m->n; i++)
		if (m->live[i].state == state &&
		    (o == NULL || m->live[i].seq < o->seq))
			o = &m->live[i];
	return o;
}

static void
model_add(struct edge_conn_table *t, struct model *m, unsigned *seed,
	  uint64_t now)
{
	int tp = (int)(model_rand(seed) % MODEL_TPS);
	int ip = (int)(model_rand(seed) % MODEL_IPS);
	int port = (int)(model_rand(seed) % MODEL_PORTS);
	int outbound = (int)(model_rand(seed) & 1);
	struct edge_conn *c = conn(ENV_TCP + tp, model_ips[ip], 5060 + port,
				   outbound);
	struct model_conn *mc;

	if (!outbound && model_ip_inbound(m, ip) >= MODEL_CAP) {
		assert_int_equal(edge_conn_add(t, c, now), -EMFILE);
		assert_false(c->in_table);
		free(c);
		return;
	}
	assert_int_equal(edge_conn_add(t, c, now), 0);
	mc = &m->live[m->n++];
	*mc = (struct model_conn){ c, tp, ip, port, EDGE_CONN_PENDING, now,
				   ++m->seq };
}

static void
model_del(struct edge_conn_table *t, struct model *m, int k)
{
	uint64_t id = m->live[k].c->id;

	edge_conn_del(t, m->live[k].c);
	assert_null(edge_conn_find(t, id));
	free(m->live[k].c);
	m->live[k] = m->live[--m->n];
}

/* Every connection of (tp, ip, port), each once, and no other. */
static void
model_check_dst(const struct edge_conn_table *t, const struct model *m,
		int tp, int ip, int port)
{
	union env_sa dst = sa(model_ips[ip], 5060 + port);
	int want = 0, got = 0;
	struct edge_conn *x;

	for (int i = 0; i < m->n; i++)
		want += m->live[i].tp == tp && m->live[i].ip == ip &&
			m->live[i].port == port;
	for (x = edge_conn_find_dst(t, ENV_TCP + tp, &dst); x;
	     x = edge_conn_find_dst_after(t, ENV_TCP + tp, &dst, x)) {
		int found = 0;

		for (int i = 0; i < m->n; i++)
			if (m->live[i].c == x) {
				assert_int_equal(m->live[i].tp, tp);
				assert_int_equal(m->live[i].ip, ip);
				assert_int_equal(m->live[i].port, port);
				found = 1;
			}
		assert_true(found);
		/* A repeat would make got pass want. */
		assert_true(++got <= want);
	}
	assert_int_equal(got, want);
}

static void
model_check(const struct edge_conn_table *t, struct model *m, unsigned *seed,
	    uint64_t now)
{
	uint64_t pending_ms = model_rand(seed) % 400;
	uint64_t idle_ms = model_rand(seed) % 400;
	struct model_conn *p = model_oldest(m, EDGE_CONN_PENDING);
	struct model_conn *o = model_oldest(m, EDGE_CONN_OPEN);
	struct edge_conn *want = NULL;

	assert_int_equal(t->by_id.n, (size_t)m->n);
	for (int i = 0; i < m->n; i++)
		assert_ptr_equal(edge_conn_find(t, m->live[i].c->id),
				 m->live[i].c);
	assert_null(edge_conn_find(t, ENV_CONN_ID(t->incarnation,
						  t->next_serial)));
	/* The same serials under another incarnation: a dead process's. */
	for (int i = 0; i < m->n; i++)
		assert_null(edge_conn_find(t, m->live[i].c->id ^
					   ENV_CONN_ID(1, 0)));
	assert_null(edge_conn_find(t, 0));
	for (int i = 0; i < 4; i++)
		model_check_dst(t, m, (int)(model_rand(seed) % MODEL_TPS),
				(int)(model_rand(seed) % MODEL_IPS),
				(int)(model_rand(seed) % MODEL_PORTS));
	for (int ip = 0; ip < MODEL_IPS; ip++) {
		union env_sa a = sa(model_ips[ip], (int)(model_rand(seed) % 9));

		assert_int_equal(edge_conn_ip_count(t, &a),
				 model_ip_inbound(m, ip));
	}
	if (p && now - p->last_ms >= pending_ms)
		want = p->c;
	else if (o && idle_ms && now - o->last_ms >= idle_ms)
		want = o->c;
	assert_ptr_equal(edge_conn_expired(t, now, pending_ms, idle_ms, 0, NULL), want);
}

/* Random adds, opens, touches and deletes, each followed by lookups
 * compared with the model. */
static void
test_edge_conn__matches_a_trivial_model(void **state)
{
	static struct model m;
	struct edge_conn_table t;
	unsigned seed = 12345;

	(void)state;
	edge_conn_table_init(&t, MODEL_CAP);
	t.incarnation = 0x5eed0001;
	for (uint64_t now = 1; now <= 20000; now++) {
		unsigned op = model_rand(&seed) % 8;
		int k = m.n ? (int)(model_rand(&seed) % (unsigned)m.n) : 0;
		struct model_conn *mc = &m.live[k];

		if (m.n == 0 || (op < 3 && m.n < MODEL_MAX)) {
			model_add(&t, &m, &seed, now);
		} else if (op < 5) {
			model_del(&t, &m, k);
		} else if (op < 6) {
			edge_conn_open(&t, mc->c, now);
			if (mc->state == EDGE_CONN_PENDING) {
				mc->state = EDGE_CONN_OPEN;
				mc->last_ms = now;
				mc->seq = ++m.seq;
			}
		} else {
			edge_conn_touch(&t, mc->c, now);
			if (mc->state == EDGE_CONN_OPEN) {
				mc->last_ms = now;
				mc->seq = ++m.seq;
			}
		}
		model_check(&t, &m, &seed, now);
	}
	while (m.n)
		model_del(&t, &m, 0);
	assert_int_equal(t.by_id.n, 0);
	assert_int_equal(t.by_dst.n, 0);
	assert_int_equal(t.by_ip.n, 0);
	edge_conn_table_fini(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edge_conn__ids_are_unique_and_found),
		cmocka_unit_test(test_edge_conn__a_restart_never_reuses_an_id),
		cmocka_unit_test(test_edge_conn__find_dst_after_visits_every_match),
		cmocka_unit_test(test_edge_conn__per_ip_cap_counts_inbound_only),
		cmocka_unit_test(test_edge_conn__per_64_and_total_caps),
		cmocka_unit_test(test_edge_conn__keepalives_do_not_hold_off_the_message_deadline),
		cmocka_unit_test(test_edge_conn__pings_go_to_the_silent_and_the_mute_are_given_up),
		cmocka_unit_test(test_edge_conn__a_websocket_without_sip_meets_the_handshake_deadline),
		cmocka_unit_test(test_edge_conn__sweep_takes_the_oldest_first),
		cmocka_unit_test(test_edge_conn__matches_a_trivial_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
