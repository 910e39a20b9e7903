/*
 * test_loc_redis.c - the Redis replica (location/loc_redis.c) against a
 * real redis-server started by each test on a free loopback port: the
 * binding codec, writes seen by another host (another shm segment)
 * after its loop handles the invalidation, the start-up load, deletes,
 * Redis dying under a running store, and a Redis with requirepass.  No
 * fixed sleeps: the loop runs until a condition holds or a deadline
 * passes (loop_test.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/location/loc_test.h"
#include "tests/unit/loop_test.h"
#include "tests/unit/redis_test.h"

struct fix {
	struct srv srv;
	uv_loop_t loop;
	char names[3][64];
	struct loc_config cfg[3];
	struct loc *l[3];
};

static int
fix_setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	srv_start(&f->srv, 0);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	for (int i = 0; i < 3; i++) {
		snprintf(f->names[i], sizeof(f->names[i]), "/smloc-rtest-%d-%c",
			 (int)getpid(), 'x' + i);
		loc_shm_unlink(f->names[i]);
		f->cfg[i] = (struct loc_config){
			.shm_name = f->names[i],
			.shm_size = 8 << 20,
			.max_bindings = 256,
			.redis_host = "127.0.0.1",
			.redis_port = f->srv.port,
			.prefix = "smt",
			.aor_ttl = 100,
		};
	}
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
	/* loc_free releases its handles on the next turn of the loop */
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	srv_stop(&f->srv, SIGTERM);
	free(f);
	return 0;
}

/* ---- running the loop until a condition holds */

static int
run_until(struct fix *f, loop_cond_fn cond, void *arg)
{
	return loop_run_until(&f->loop, cond, f, arg, DEADLINE_MS);
}

static int
connected(void *ctx, void *arg)
{
	struct fix *f = ctx;
	struct loc_stats st;
	int n = (int)(intptr_t)arg;

	for (int i = 0; i < n; i++) {
		loc_stats_get(f->l[i], &st);
		if (!st.redis_connected)
			return 0;
	}
	return 1;
}

struct expect {
	int who;
	const char *aor;
	int n;
	int known;
};

static int
lookup_is(void *ctx, void *arg)
{
	struct fix *f = ctx;
	struct expect *e = arg;
	struct loc_binding out[8];
	int known;

	return loc_lookup(f->l[e->who], e->aor, time(NULL), out, 8, &known) ==
		e->n && known == e->known;
}

/* Host 1's first binding of alice@a.test has this contact. */
static int
first_contact_is(void *ctx, void *arg)
{
	struct fix *f = ctx;
	struct loc_binding out[4];

	return loc_lookup(f->l[1], "alice@a.test", time(NULL), out, 4, NULL) > 0 &&
		strcmp(out[0].contact, arg) == 0;
}

static long long
key_pttl(struct fix *f, const char *key)
{
	return srv_int(f->srv.port, "PTTL %s", key);
}

/* The key of AOR arg lives longer than a minute (its expiry set). */
static int
key_expires_later(void *ctx, void *arg)
{
	struct fix *f = ctx;
	char key[LOC_KEY_MAX];

	snprintf(key, sizeof(key), "smt:aor:%s", (const char *)arg);
	return key_pttl(f, key) > 60 * 1000;
}

static void
open_hosts(struct fix *f, int n)
{
	for (int i = 0; i < n; i++)
		assert_int_equal(loc_new(&f->l[i], &f->cfg[i], &f->loop), 0);
	assert_true(run_until(f, connected, (void *)(intptr_t)n));
}

/* The key exists / does not exist in Redis (the test's own client). */
static int
hash_exists(struct fix *f, const char *key)
{
	redisContext *c = srv_client_auth(f->srv.port, f->srv.password);
	redisReply *r = c && !c->err ? redisCommand(c, "EXISTS %s", key) : NULL;
	int v = r && r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;

	if (r)
		freeReplyObject(r);
	if (c)
		redisFree(c);
	return v;
}

static int
hash_is_there(void *ctx, void *key)
{
	return hash_exists(ctx, key) == 1;
}

/* x@a.test's binding has left Redis and only the known marker stays. */
static int
x_binding_gone(void *ctx, void *arg)
{
	struct fix *f = ctx;

	(void)arg;
	return srv_int(f->srv.port, "HEXISTS %s %s", "smt:aor:x@a.test",
		       "c:sip:x@h") == 0 &&
	       srv_int(f->srv.port, "HEXISTS %s %s", "smt:aor:x@a.test",
		       "k") == 1;
}

static int
disconnected_with_errors(void *ctx, void *arg)
{
	struct fix *f = ctx;
	struct loc_stats st;

	(void)arg;
	loc_stats_get(f->l[0], &st);
	return !st.redis_connected && st.redis_errors > 0;
}

/* ---- tests */

static void
test_loc_redis__codec_roundtrip_and_hostile_input(void **state)
{
	struct loc_binding b = lt_binding("Alice@A.test", "sip:alice@[::1]:5060", 1700000000123LL);
	struct loc_binding d;
	char buf[LOC_REDIS_VAL_MAX];
	int n;

	(void)state;
	b.cseq = 4242;
	b.q = 700;
	b.transport = 4;
	b.flags = LOC_F_WS;
	b.edge_id = 9;
	b.conn_id = 123456;
	b.reg_id = 2;
	snprintf(b.instance, sizeof(b.instance), "<urn:uuid:abc>");
	snprintf(b.user_agent, sizeof(b.user_agent), "SIP.js/0.21");
	snprintf(b.path, sizeof(b.path), "<sip:edge9;lr;ob>");
	b.received.in6.sin6_family = AF_INET6;
	b.received.in6.sin6_port = htons(40000);
	inet_pton(AF_INET6, "2001:db8::7", &b.received.in6.sin6_addr);

	n = loc_binding_encode(&b, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(loc_binding_decode(&d, buf, n), 0);
	assert_memory_equal(&d, &b, sizeof(b));

	/* every truncation and one byte too many are refused */
	for (int i = 0; i < n; i++)
		assert_int_equal(loc_binding_decode(&d, buf, i), -EPROTO);
	buf[n] = 'x';
	assert_int_equal(loc_binding_decode(&d, buf, n + 1), -EPROTO);
	buf[1] = 9;		/* unknown version */
	assert_int_equal(loc_binding_decode(&d, buf, n), -EPROTO);
	buf[1] = 1;
	/* the aor's length claims more than the field holds */
	buf[2 + 8 + 4 + 2 + 1 + 1 + 2 + 4 + 4 + 1 + 2 + 16] = 0x7f;
	assert_int_equal(loc_binding_decode(&d, buf, n), -EPROTO);
	assert_int_equal(loc_binding_encode(&b, buf, 10), -ENOSPC);

	/* IPv4 */
	memset(&b.received, 0, sizeof(b.received));
	b.received.in.sin_family = AF_INET;
	b.received.in.sin_port = htons(5060);
	b.received.in.sin_addr.s_addr = htonl(0x7f000001);
	n = loc_binding_encode(&b, buf, sizeof(buf));
	assert_int_equal(loc_binding_decode(&d, buf, n), 0);
	assert_memory_equal(&d, &b, sizeof(b));
}

static void
test_loc_redis__save_seen_by_other_host(void **state)
{
	struct fix *f = *state;
	int64_t now = time(NULL);
	struct loc_binding b = lt_binding("alice@a.test", "sip:alice@10.0.0.1", now + 300);
	struct loc_binding out[4];
	struct expect e = { 1, "ALICE@a.test", 1, 1 };
	struct loc_stats st;

	open_hosts(f, 2);
	b.conn_id = 17;
	b.edge_id = 2;
	snprintf(b.instance, sizeof(b.instance), "<urn:uuid:a>");
	b.reg_id = 1;
	assert_int_equal(loc_save(f->l[0], &b, now), 0);
	assert_int_equal(loc_lookup(f->l[1], "alice@a.test", now, out, 4, NULL), 0);
	assert_true(run_until(f, lookup_is, &e));
	assert_int_equal(loc_lookup(f->l[1], "alice@a.test", now, out, 4, NULL), 1);
	assert_true(out[0].version > 0);	/* stamped by loc_save */
	assert_true(out[0].origin != 0);
	b.version = out[0].version;
	b.origin = out[0].origin;
	assert_memory_equal(&out[0], &b, sizeof(b));
	assert_int_equal(srv_int(f->srv.port, "HLEN %s", "smt:aor:alice@a.test"), 1);
	/* set by the NX sent with the first binding */
	assert_true(run_until(f, key_expires_later, "alice@a.test"));

	/* a reload replaces the binding on the other host too */
	snprintf(b.contact, sizeof(b.contact), "sip:new@10.0.0.2");
	assert_int_equal(loc_save(f->l[0], &b, now), 0);
	assert_true(run_until(f, first_contact_is, "sip:new@10.0.0.2"));
	assert_int_equal(loc_lookup(f->l[1], "alice@a.test", now, out, 4, NULL), 1);
	assert_int_equal(srv_int(f->srv.port, "HLEN %s", "smt:aor:alice@a.test"), 1);
	loc_stats_get(f->l[0], &st);
	assert_int_equal(st.redis_errors, 0);
	loc_stats_get(f->l[1], &st);
	assert_int_equal(st.redis_errors, 0);
}

/* m@a.test's key expires in more than 10 minutes. */
static int
key_m_expires_after_600s(void *ctx, void *arg)
{
	struct fix *f = ctx;

	(void)arg;
	return key_pttl(f, "smt:aor:m@a.test") > 600 * 1000;
}

/* Reads MONITOR lines from c until the PUBLISH naming aor: where the
 * PEXPIREATs of aor's key (NX, GT) came before it, -1 for none. */
static void
monitor_until_publish(redisContext *c, const char *aor, int *nx, int *gt)
{
	char key[LOC_KEY_MAX];
	redisReply *r;
	int published = 0;

	snprintf(key, sizeof(key), "\"smt:aor:%s\"", aor);
	*nx = *gt = -1;
	for (int n = 0; !published; n++) {
		assert_int_equal(redisGetReply(c, (void **)&r), REDIS_OK);
		if (r->type == REDIS_REPLY_STATUS &&
		    strstr(r->str, "\"PEXPIREAT\"") && strstr(r->str, key)) {
			if (strstr(r->str, "\"NX\""))
				*nx = n;
			if (strstr(r->str, "\"GT\""))
				*gt = n;
		}
		published = r->type == REDIS_REPLY_STATUS &&
			    strstr(r->str, "\"PUBLISH\"") && strstr(r->str, aor);
		freeReplyObject(r);
	}
}

/*
 * An AOR's first binding carries its key's expiry in the write that
 * announces it (NX and GT before the PUBLISH), so a host reading the
 * key after the PUBLISH finds it expiring; a refresh sends GT alone.
 */
static void
test_loc_redis__first_binding_expires_before_its_publish(void **state)
{
	struct fix *f = *state;
	int64_t now = time(NULL);
	struct loc_binding b = lt_binding("m@a.test", "sip:m@h", now + 300);
	struct timeval tv = { 5, 0 };
	redisContext *c;
	redisReply *r;
	int nx, gt;

	open_hosts(f, 1);
	c = srv_client_auth(f->srv.port, f->srv.password);
	assert_non_null(c);
	redisSetTimeout(c, tv);
	r = redisCommand(c, "MONITOR");
	assert_non_null(r);
	freeReplyObject(r);

	assert_int_equal(loc_save(f->l[0], &b, now), 0);
	assert_true(run_until(f, key_expires_later, "m@a.test"));
	monitor_until_publish(c, "m@a.test", &nx, &gt);
	assert_true(nx >= 0);
	assert_true(gt >= 0);

	b.expires = now + 900;
	assert_int_equal(loc_save(f->l[0], &b, now), 0);
	assert_true(run_until(f, key_m_expires_after_600s, NULL));
	monitor_until_publish(c, "m@a.test", &nx, &gt);
	assert_int_equal(nx, -1);
	assert_true(gt >= 0);
	redisFree(c);
}

/*
 * A refresh moves the key's expiry with one GT; a new key gets it from
 * the NX sent with its first binding, one whose expiry was lost from
 * the NX sent after the PUBLISH; a binding saved with a shorter life
 * never shortens the key's.
 */
static void
test_loc_redis__key_expiry_only_moves_later(void **state)
{
	struct fix *f = *state;
	int64_t now = time(NULL);
	struct loc_binding b = lt_binding("e@a.test", "sip:e@h", now + 300);
	struct loc_binding z = lt_binding("z@a.test", "sip:z@h", now + 300);
	long long t1, t2;
	redisContext *c;

	open_hosts(f, 1);
	assert_int_equal(loc_save(f->l[0], &b, now), 0);
	assert_true(run_until(f, key_expires_later, "e@a.test"));
	t1 = key_pttl(f, "smt:aor:e@a.test");

	b.expires = now + 900;
	assert_int_equal(loc_save(f->l[0], &b, now), 0);
	/* the NX of z follows everything sent for e */
	assert_int_equal(loc_save(f->l[0], &z, now), 0);
	assert_true(run_until(f, key_expires_later, "z@a.test"));
	t2 = key_pttl(f, "smt:aor:e@a.test");
	assert_true(t2 > t1 + 500 * 1000);

	b.expires = now + 100;
	assert_int_equal(loc_save(f->l[0], &b, now), 0);
	z.expires = now + 200;
	snprintf(z.aor, sizeof(z.aor), "z2@a.test");
	assert_int_equal(loc_save(f->l[0], &z, now), 0);
	assert_true(run_until(f, key_expires_later, "z2@a.test"));
	assert_true(key_pttl(f, "smt:aor:e@a.test") > t2 - 60 * 1000);

	/* an expiry lost in Redis comes back with the next refresh */
	c = srv_client(f->srv.port);
	freeReplyObject(redisCommand(c, "PERSIST %s", "smt:aor:e@a.test"));
	redisFree(c);
	assert_int_equal(key_pttl(f, "smt:aor:e@a.test"), -1);
	b.expires = now + 1000;
	assert_int_equal(loc_save(f->l[0], &b, now), 0);
	assert_true(run_until(f, key_expires_later, "e@a.test"));
	assert_true(key_pttl(f, "smt:aor:e@a.test") > t2);
}

static void
test_loc_redis__fresh_segment_loads_at_start(void **state)
{
	struct fix *f = *state;
	int64_t now = time(NULL);
	struct loc_binding b, out[4];
	struct expect e = { 1, "gone@a.test", 0, 1 };
	char aor[32];
	int known;

	open_hosts(f, 2);
	for (int i = 0; i < 50; i++) {
		snprintf(aor, sizeof(aor), "u%d@a.test", i);
		b = lt_binding(aor, "sip:u@h", now + 300);
		assert_int_equal(loc_save(f->l[0], &b, now), 0);
	}
	b = lt_binding("gone@a.test", "sip:g@h", now + 300);
	assert_int_equal(loc_save(f->l[0], &b, now), 0);
	assert_int_equal(loc_remove_aor(f->l[0], "gone@a.test", now), 1);
	b = lt_binding("old@a.test", "sip:o@h", now - 1);	/* already expired */
	assert_int_equal(loc_save(f->l[0], &b, now), 0);
	/* host 1 has seen the last write, so Redis holds them all */
	assert_true(run_until(f, lookup_is, &e));

	/* a third host starts with nothing but Redis */
	assert_int_equal(loc_new(&f->l[2], &f->cfg[2], &f->loop), 0);
	for (int i = 0; i < 50; i++) {
		snprintf(aor, sizeof(aor), "u%d@a.test", i);
		assert_int_equal(loc_lookup(f->l[2], aor, now, out, 4, NULL), 1);
		assert_string_equal(out[0].contact, "sip:u@h");
	}
	assert_int_equal(loc_lookup(f->l[2], "gone@a.test", now, out, 4, &known), 0);
	assert_int_equal(known, 1);
	assert_int_equal(loc_lookup(f->l[2], "old@a.test", now, out, 4, &known), 0);
	assert_int_equal(known, 1);
	assert_int_equal(loc_lookup(f->l[2], "never@a.test", now, out, 4, &known), 0);
	assert_int_equal(known, 0);
}

static void
test_loc_redis__deletes_propagate(void **state)
{
	struct fix *f = *state;
	int64_t now = time(NULL);
	struct loc_binding b;
	struct expect e = { 1, "d@a.test", 3, 1 };

	open_hosts(f, 2);
	b = lt_binding("d@a.test", "sip:d1@h", now + 300);
	b.edge_id = 1, b.conn_id = 9;
	assert_int_equal(loc_save(f->l[0], &b, now), 0);
	b = lt_binding("d@a.test", "sip:d2@h", now + 300);
	assert_int_equal(loc_save(f->l[0], &b, now), 0);
	b = lt_binding("d@a.test", "sip:d3@h", now + 300);
	assert_int_equal(loc_save(f->l[0], &b, now), 0);
	assert_true(run_until(f, lookup_is, &e));

	assert_int_equal(loc_remove(f->l[0], "d@a.test", "sip:d2@h", now), 0);
	e.n = 2;
	assert_true(run_until(f, lookup_is, &e));
	assert_int_equal(loc_remove_conn(f->l[0], 1, 9, now), 1);
	e.n = 1;
	assert_true(run_until(f, lookup_is, &e));
	assert_int_equal(srv_int(f->srv.port, "HLEN %s", "smt:aor:d@a.test"), 1);
	/* the other host deletes: the first one follows */
	assert_int_equal(loc_remove_aor(f->l[1], "d@a.test", now), 1);
	e = (struct expect){ 0, "d@a.test", 0, 1 };
	assert_true(run_until(f, lookup_is, &e));
	assert_int_equal(srv_int(f->srv.port, "HEXISTS %s %s",
					 "smt:aor:d@a.test", "c:sip:d3@h"), 0);

	/* expiry swept on one host leaves Redis too */
	now = time(NULL);	/* >= 1 s of margin before it expires */
	b = lt_binding("x@a.test", "sip:x@h", now + 2);
	assert_int_equal(loc_save(f->l[0], &b, now), 0);
	e = (struct expect){ 1, "x@a.test", 1, 1 };
	assert_true(run_until(f, lookup_is, &e));
	for (int i = 0; i < 4; i++)	/* 256 buckets, 64 per call */
		loc_expire(f->l[0], now + 3);
	assert_true(run_until(f, x_binding_gone, NULL));
}


static int
s_written(void *ctx, void *arg)
{
	struct fix *f = ctx;

	(void)arg;
	return srv_int(f->srv.port, "HEXISTS %s %s", "smt:aor:s@a.test",
		       "c:sip:s@h") == 1;
}

static int
s_marker_written(void *ctx, void *arg)
{
	struct fix *f = ctx;

	(void)arg;
	return srv_int(f->srv.port, "HEXISTS %s %s", "smt:aor:s@a.test",
		       "k") == 1;
}

/*
 * Host 2 refreshed a binding in Redis (a newer version, a later
 * expiry) that host 1 has not heard of yet; host 1's sweep then expires
 * its own older copy.  The sweep deletes only the version it holds and
 * never shortens the key's life: host 2's binding stays in Redis.
 * (A blind HDEL and PEXPIREAT lost it.)
 */
static void
test_loc_redis__sweep_keeps_a_newer_binding_of_another_host(void **state)
{
	struct fix *f = *state;
	int64_t now = time(NULL);
	struct loc_binding b = lt_binding("s@a.test", "sip:s@h", now + 2);
	struct loc_binding nb;
	char val[LOC_REDIS_VAL_MAX];
	redisContext *c;
	redisReply *rep;
	int n;

	open_hosts(f, 1);
	assert_int_equal(loc_save(f->l[0], &b, now), 0);
	assert_true(run_until(f, s_written, NULL));
	/* what host 2 wrote meanwhile, without host 1 hearing of it */
	nb = b;
	nb.expires = now + 600;
	nb.version = (int64_t)now * 1000 + 500000;
	nb.origin = 0x2222;
	n = loc_binding_encode(&nb, val, sizeof(val));
	assert_true(n > 0);
	c = srv_client(f->srv.port);
	rep = redisCommand(c, "HSET %s %s %b", "smt:aor:s@a.test",
			   "c:sip:s@h", val, (size_t)n);
	assert_non_null(rep);
	freeReplyObject(rep);
	rep = redisCommand(c, "PEXPIREAT %s %lld", "smt:aor:s@a.test",
			   (long long)(now + 700) * 1000);
	assert_non_null(rep);
	freeReplyObject(rep);
	redisFree(c);
	for (int i = 0; i < 4; i++)	/* 256 buckets, 64 per call */
		loc_expire(f->l[0], now + 3);
	assert_true(run_until(f, s_marker_written, NULL));
	assert_int_equal(srv_int(f->srv.port, "HEXISTS %s %s",
				 "smt:aor:s@a.test", "c:sip:s@h"), 1);
	assert_true(srv_int(f->srv.port, "PTTL %s", "smt:aor:s@a.test") >
		    600 * 1000);
}

static void
test_loc_redis__redis_killed_store_keeps_working(void **state)
{
	struct fix *f = *state;
	int64_t now = time(NULL);
	struct loc_binding b;
	struct loc_stats st;
	char aor[32];

	open_hosts(f, 1);
	for (int i = 0; i < 20; i++) {
		if (i == 5) {
			/* five writes are still queued in hiredis */
			srv_stop(&f->srv, SIGKILL);
			assert_true(run_until(f, disconnected_with_errors, NULL));
		}
		snprintf(aor, sizeof(aor), "k%d@a.test", i);
		b = lt_binding(aor, "sip:k@h", now + 300);
		assert_int_equal(loc_save(f->l[0], &b, now), 0);
	}
	for (int i = 0; i < 20; i++) {
		snprintf(aor, sizeof(aor), "k%d@a.test", i);
		assert_int_equal(loc_lookup(f->l[0], aor, now, &b, 1, NULL), 1);
	}
	loc_stats_get(f->l[0], &st);
	assert_true(st.redis_errors > 0);
	assert_int_equal(st.redis_connected, 0);
	assert_int_equal(st.bindings, 20);

	/* Redis back on the same port: the store reconnects by itself */
	srv_start(&f->srv, f->srv.port);
	assert_true(run_until(f, connected, (void *)(intptr_t)1));
	b = lt_binding("back@a.test", "sip:b@h", now + 300);
	assert_int_equal(loc_save(f->l[0], &b, now), 0);
	assert_true(run_until(f, hash_is_there, "smt:aor:back@a.test"));
}

/* Every AOR s<i>@a.test, i < n, has its hash in Redis. */
static int
stalled_aors_in_redis(void *ctx, void *n)
{
	char key[64];

	for (int i = 0; i < (int)(intptr_t)n; i++) {
		snprintf(key, sizeof(key), "smt:aor:s%d@a.test", i);
		if (hash_exists(ctx, key) != 1)
			return 0;
	}
	return 1;
}

static void
test_loc_redis__stalled_redis_is_bounded_then_replayed(void **state)
{
	struct fix *f = *state;
	int64_t now = time(NULL);
	struct expect e = { 1, "s49@a.test", 1, 1 };
	struct loc_binding b;
	struct loc_stats st;
	char aor[32];

	f->cfg[0].redis_timeout_ms = 200;
	f->cfg[0].redis_max_pending = 16;
	open_hosts(f, 2);
	kill(f->srv.pid, SIGSTOP);
	for (int i = 0; i < 50; i++) {
		snprintf(aor, sizeof(aor), "s%d@a.test", i);
		b = lt_binding(aor, "sip:s@h", now + 300);
		assert_int_equal(loc_save(f->l[0], &b, now), 0);
	}
	/* at most max_pending commands wait for the stalled Redis; the
	 * other AORs are remembered, not queued */
	loc_stats_get(f->l[0], &st);
	assert_true(st.redis_pending <= 16);
	assert_true(st.redis_dirty > 0);
	/* the stall times out: the link is dropped, nothing is queued */
	assert_true(run_until(f, disconnected_with_errors, NULL));
	loc_stats_get(f->l[0], &st);
	assert_int_equal(st.redis_pending, 0);
	assert_int_equal(loc_lookup(f->l[0], "s49@a.test", now, &b, 1, NULL), 1);

	kill(f->srv.pid, SIGCONT);
	assert_true(run_until(f, stalled_aors_in_redis, (void *)(intptr_t)50));
	assert_true(run_until(f, lookup_is, &e));	/* and the other host */
	loc_stats_get(f->l[0], &st);
	assert_true(st.redis_syncs > 0);
}

/* Runs a command that answers OK from the test's own client. */
static void
srv_ok(struct fix *f, const char *cmd)
{
	redisContext *c = srv_client(f->srv.port);
	redisReply *r = c && !c->err ? redisCommand(c, cmd) : NULL;

	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STATUS);
	freeReplyObject(r);
	redisFree(c);
}

/* PUBLISH commands Redis ran so far. */
static long
publish_calls(struct fix *f)
{
	redisContext *c = srv_client(f->srv.port);
	long n;

	assert_non_null(c);
	assert_int_equal(c->err, 0);
	n = srv_calls(c, "publish");
	redisFree(c);
	return n;
}

/* The changes that leave in one write to Redis are announced by one
 * PUBLISH naming them all, and the other host fetches every one. */
static void
test_loc_redis__one_publish_announces_a_write(void **state)
{
	struct fix *f = *state;
	int64_t now = time(NULL);
	struct loc_binding b;
	char aor[32];
	long before;

	open_hosts(f, 2);
	before = publish_calls(f);
	for (int i = 0; i < 30; i++) {
		snprintf(aor, sizeof(aor), "batch%d@a.test", i);
		b = lt_binding(aor, "sip:b@h", now + 300);
		assert_int_equal(loc_save(f->l[0], &b, now), 0);
	}
	for (int i = 0; i < 30; i++) {
		struct expect e = { 1, aor, 1, 1 };

		snprintf(aor, sizeof(aor), "batch%d@a.test", i);
		assert_true(run_until(f, lookup_is, &e));
	}
	assert_int_equal(publish_calls(f) - before, 1);
}

/* A write Redis took but whose invalidation did not go out (here an
 * ACL refuses PUBLISH; in production the link was full when the
 * PUBLISH came, or its reply was lost) is announced by the next pass,
 * which finds nothing left to push: the other host learns of it. */
static void
test_loc_redis__unannounced_write_is_announced_later(void **state)
{
	struct fix *f = *state;
	int64_t now = time(NULL);
	struct loc_binding b = lt_binding("np@a.test", "sip:np@h", now + 300);
	struct expect e = { 1, "np@a.test", 1, 1 };

	srv_ok(f, "ACL SETUSER host1 on >pw1 ~* &* +@all -publish");
	f->cfg[0].redis_user = "host1";
	f->cfg[0].redis_password = "pw1";
	open_hosts(f, 2);
	assert_int_equal(loc_save(f->l[0], &b, now), 0);
	assert_true(run_until(f, hash_is_there, "smt:aor:np@a.test"));
	assert_false(loop_run_until(&f->loop, lookup_is, f, &e, 500));
	srv_ok(f, "ACL SETUSER host1 +publish");
	assert_true(run_until(f, lookup_is, &e));
}

static void
test_loc_redis__unreachable_at_start_is_not_an_error(void **state)
{
	struct fix *f = *state;
	int64_t now = time(NULL);
	struct loc_binding b = lt_binding("z@a.test", "sip:z@h", now + 300);
	struct loc_stats st;

	srv_stop(&f->srv, SIGTERM);
	assert_int_equal(loc_new(&f->l[0], &f->cfg[0], &f->loop), 0);
	assert_int_equal(loc_save(f->l[0], &b, now), 0);
	assert_int_equal(loc_lookup(f->l[0], "z@a.test", now, &b, 1, NULL), 1);
	loc_stats_get(f->l[0], &st);
	assert_true(st.redis_errors > 0);
	assert_int_equal(st.redis_connected, 0);
}

/* [redis] password: with it the replica works across hosts; without
 * it Redis refuses everything (NOAUTH) and the store stands alone. */
static void
test_loc_redis__requirepass_needs_the_password(void **state)
{
	struct fix *f = *state;
	int64_t now = time(NULL);
	struct loc_binding b = lt_binding("pw@a.test", "sip:pw@h", now + 300);
	struct expect e = { 1, "pw@a.test", 1, 1 };
	struct loc_stats st;

	srv_stop(&f->srv, SIGTERM);
	srv_start_pw(&f->srv, 0, "loc secret");
	for (int i = 0; i < 3; i++) {
		f->cfg[i].redis_port = f->srv.port;
		f->cfg[i].redis_timeout_ms = 200;
		f->cfg[i].redis_password = i < 2 ? "loc secret" : NULL;
	}
	open_hosts(f, 2);
	assert_int_equal(loc_save(f->l[0], &b, now), 0);
	assert_true(run_until(f, lookup_is, &e));
	assert_int_equal(hash_exists(f, "smt:aor:pw@a.test"), 1);

	/* the third host has no password: no load, never connected */
	assert_int_equal(loc_new(&f->l[2], &f->cfg[2], &f->loop), 0);
	e.who = 2;
	assert_false(loop_run_until(&f->loop, lookup_is, f, &e, 1000));
	loc_stats_get(f->l[2], &st);
	assert_int_equal(st.redis_connected, 0);
	assert_true(st.redis_errors > 0);
	/* and a wrong one is no better */
	loc_free(f->l[2]);
	loc_shm_unlink(f->names[2]);
	f->cfg[2].redis_password = "guess";
	assert_int_equal(loc_new(&f->l[2], &f->cfg[2], &f->loop), 0);
	assert_false(loop_run_until(&f->loop, lookup_is, f, &e, 1000));
	loc_stats_get(f->l[2], &st);
	assert_int_equal(st.redis_connected, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loc_redis__codec_roundtrip_and_hostile_input),
		cmocka_unit_test_setup_teardown(test_loc_redis__save_seen_by_other_host, fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_loc_redis__one_publish_announces_a_write, fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_loc_redis__key_expiry_only_moves_later, fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_loc_redis__first_binding_expires_before_its_publish, fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_loc_redis__fresh_segment_loads_at_start, fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_loc_redis__deletes_propagate, fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_loc_redis__sweep_keeps_a_newer_binding_of_another_host, fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_loc_redis__redis_killed_store_keeps_working, fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_loc_redis__stalled_redis_is_bounded_then_replayed, fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_loc_redis__unannounced_write_is_announced_later, fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_loc_redis__unreachable_at_start_is_not_an_error, fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_loc_redis__requirepass_needs_the_password, fix_setup, fix_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
