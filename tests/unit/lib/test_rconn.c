/*
 * test_rconn.c - the shared async Redis link (lib/rconn.c) against a
 * real redis-server on a free loopback port: up and down callbacks, a
 * command's reply, a SIGSTOPped Redis failing a command within about
 * timeout_ms, reconnect after a restart, AUTH (requirepass and ACL
 * user: right credentials up, wrong ones stay down and the log says
 * why), the max_pending bound, subscriptions renewed after a restart,
 * rconn_free running every pending callback, and flush_ms holding a
 * turn's commands back and writing them together.  Sentinel: a real
 * master, a replica and three sentinels (redis-server --sentinel) on
 * free ports; rconn finds the master through them (past a dead one),
 * follows a failover after SIGKILL of the master, neither writes to
 * nor comes up on a master demoted under it, and is not misled by a
 * minority of sentinels with a stale view.  No fixed sleeps: the loop
 * runs until a condition holds or a deadline passes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/cfg.h"
#include "lib/log.h"
#include "lib/rconn.h"
#include "tests/unit/loop_test.h"
#include "tests/unit/redis_test.h"

#define NSEN 3

struct fix {
	struct srv srv;
	struct srv repl;		/* the replica, with sentinels */
	struct srv sen[NSEN + 1];	/* [NSEN]: a stale one, own master */
	struct srv stale;		/* that one's master */
	char dir[64];			/* the sentinels' config files */
	uv_loop_t loop;
	struct rconn *c;
	int ups, downs;
	int replies, nulls;	/* command callbacks */
	char last[64];		/* last string reply */
	uint64_t null_ms;	/* loop time of the last NULL reply */
	int msgs;
	char msg[64];
	int flush_ms;		/* open_conn's rconn_config.flush_ms */
	int saved_err, rd;	/* stderr captured */
	char log[16384];
	size_t loglen;
};

static int
fix_setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	f->saved_err = -1;
	log_init("test", LOG_LVL_WARN);
	*state = f;
	return 0;
}

static int
fix_teardown(void **state)
{
	struct fix *f = *state;

	rconn_free(f->c);
	uv_run(&f->loop, UV_RUN_DEFAULT);	/* the close callbacks */
	assert_int_equal(uv_loop_close(&f->loop), 0);
	srv_stop(&f->srv, SIGKILL);
	srv_stop(&f->repl, SIGKILL);
	srv_stop(&f->stale, SIGKILL);
	for (int i = 0; i <= NSEN; i++)
		srv_stop(&f->sen[i], SIGKILL);
	if (f->dir[0]) {
		char cmd[96];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
		assert_int_equal(system(cmd), 0);
	}
	if (f->saved_err >= 0) {
		dup2(f->saved_err, STDERR_FILENO);
		close(f->saved_err);
		close(f->rd);
	}
	free(f);
	return 0;
}

/* stderr into a pipe read by log_read(), so a test sees what a
 * operator would. */
static void
log_capture(struct fix *f)
{
	int p[2];

	assert_int_equal(pipe(p), 0);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	f->saved_err = dup(STDERR_FILENO);
	dup2(p[1], STDERR_FILENO);
	close(p[1]);
	f->rd = p[0];
}

static const char *
log_read(struct fix *f)
{
	ssize_t n;

	while (f->saved_err >= 0 && f->loglen < sizeof(f->log) - 1 &&
	       (n = read(f->rd, f->log + f->loglen,
			 sizeof(f->log) - 1 - f->loglen)) > 0)
		f->loglen += (size_t)n;
	f->log[f->loglen] = '\0';
	return f->log;
}

static int
run_until(struct fix *f, loop_cond_fn cond, void *arg)
{
	return loop_run_until(&f->loop, cond, f, arg, DEADLINE_MS);
}

static int
ups_are(void *ctx, void *arg)
{
	struct fix *f = ctx;

	return f->ups >= (int)(intptr_t)arg;
}

static int
downs_are(void *ctx, void *arg)
{
	struct fix *f = ctx;

	return f->downs >= (int)(intptr_t)arg;
}

static int
replies_are(void *ctx, void *arg)
{
	struct fix *f = ctx;

	return f->replies + f->nulls >= (int)(intptr_t)arg;
}

static int
msgs_are(void *ctx, void *arg)
{
	struct fix *f = ctx;

	return f->msgs >= (int)(intptr_t)arg;
}

static int
replicas_are(void *ctx, void *arg)
{
	struct fix *f = ctx;

	return rconn_replica(f->c, -1, NULL, 0, NULL) == (int)(intptr_t)arg;
}

static int
never(void *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	return 0;
}

static void
on_state(void *arg, int up)
{
	struct fix *f = arg;

	if (up)
		f->ups++;
	else
		f->downs++;
}

static void
on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct fix *f = priv;
	redisReply *r = reply;

	(void)ac;
	if (!r) {
		f->nulls++;
		f->null_ms = uv_now(&f->loop);
		return;
	}
	f->replies++;
	snprintf(f->last, sizeof(f->last), "%s",
		 r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
		 r->type == REDIS_REPLY_ERROR ? r->str : "?");
}

static void
on_message(void *priv, const char *channel, const char *msg, size_t len)
{
	struct fix *f = priv;

	f->msgs++;
	snprintf(f->msg, sizeof(f->msg), "%s %.*s", channel, (int)len, msg);
}

static void
open_conn(struct fix *f, const char *user, const char *pw, int timeout_ms,
	  int max_pending)
{
	struct rconn_config rc = {
		.host = "127.0.0.1",
		.port = f->srv.port,
		.user = user,
		.password = pw,
		.name = "sipmesh-test-1",
		.timeout_ms = timeout_ms,
		.backoff_max_ms = 200,
		.max_pending = max_pending,
		.log_sys = LOG_SYS_LOC,
		.flush_ms = f->flush_ms,
	};

	assert_int_equal(rconn_new(&f->c, &f->loop, &rc, on_state, f), 0);
	assert_false(rconn_up(f->c));	/* the handshake needs the loop */
}

/* A reply from the test's own client, as a string (or the error). */
static void
srv_str(struct fix *f, char *out, size_t cap, const char *cmd)
{
	redisContext *c = srv_client_auth(f->srv.port, f->srv.password);
	redisReply *r;

	assert_non_null(c);
	r = redisCommand(c, cmd);
	assert_non_null(r);
	snprintf(out, cap, "%s", r->str ? r->str : "");
	freeReplyObject(r);
	redisFree(c);
}

/* ---- Sentinel: a master, a replica and NSEN sentinels */

/* A reply's string from a client of port, or "" (for polling). */
static void
port_str(int port, char *out, size_t cap, const char *fmt, ...)
{
	redisContext *c = srv_client(port);
	redisReply *r = NULL;
	va_list ap;

	out[0] = '\0';
	if (c && !c->err) {
		va_start(ap, fmt);
		r = redisvCommand(c, fmt, ap);
		va_end(ap);
	}
	if (r && (r->type == REDIS_REPLY_STRING ||
		  r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR))
		snprintf(out, cap, "%s", r->str);
	else if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
		 r->element[0]->type == REDIS_REPLY_STRING &&
		 r->element[1]->type == REDIS_REPLY_STRING)	/* host, port */
		snprintf(out, cap, "%s", r->element[1]->str);
	else if (r && r->type == REDIS_REPLY_ARRAY)	/* how many */
		snprintf(out, cap, "%zu", r->elements);
	if (r)
		freeReplyObject(r);
	if (c)
		redisFree(c);
}

/* An integer reply of a client of port to cmd, or -1. */
static long long
port_int(int port, const char *cmd)
{
	redisContext *c = srv_client(port);
	redisReply *r = c && !c->err ? redisCommand(c, cmd) : NULL;
	long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;

	if (r)
		freeReplyObject(r);
	if (c)
		redisFree(c);
	return v;
}

/* Starts bin with args (NULL-terminated) and waits for its PONG. */
static void
proc_start(struct srv *s, char *const argv[])
{
	struct timespec tick = { 0, 20 * 1000 * 1000 };
	const char *bin = getenv("SIPMESH_REDIS_SERVER");
	char pong[16];

	if (bin == NULL || bin[0] == '\0')
		bin = "redis-server";
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		if (!freopen("/dev/null", "w", stdout))
			_exit(126);
		execvp(bin, argv);
		_exit(127);
	}
	for (int waited = 0; waited < DEADLINE_MS; waited += 20) {
		port_str(s->port, pong, sizeof(pong), "PING");
		if (strcmp(pong, "PONG") == 0 || strncmp(pong, "NOAUTH", 6) == 0)
			return;		/* it answers (maybe: AUTH first) */
		assert_int_equal(waitpid(s->pid, NULL, WNOHANG), 0);
		nanosleep(&tick, NULL);	/* polling for the server, bounded */
	}
	fail_msg("%s did not answer on port %d", bin, s->port);
}

/* Polls until port answers fmt with want, for up to ms; 1 if it did. */
static int
port_wait(int port, const char *want, int ms, const char *fmt, const char *arg)
{
	struct timespec tick = { 0, 50 * 1000 * 1000 };
	char got[256];

	for (int waited = 0; waited <= ms; waited += 50) {
		port_str(port, got, sizeof(got), fmt, arg);
		if (strstr(got, want))
			return 1;
		nanosleep(&tick, NULL);	/* polling a server, bounded */
	}
	return 0;
}

/* Sentinel i of the master on mport, with quorum and more config
 * lines. */
static void
sentinel_start(struct fix *f, int i, int mport, int quorum, const char *more)
{
	char conf[128];
	FILE *fp;

	if (!f->dir[0]) {
		snprintf(f->dir, sizeof(f->dir), "/tmp/sm-rconn-XXXXXX");
		assert_non_null(mkdtemp(f->dir));
	}
	f->sen[i].port = free_port();
	snprintf(conf, sizeof(conf), "%s/s%d.conf", f->dir, i);
	fp = fopen(conf, "w");	/* a sentinel rewrites its file */
	assert_non_null(fp);
	fprintf(fp, "port %d\nbind 127.0.0.1\nloglevel warning\ndir %s\n"
		"sentinel monitor sipmesh 127.0.0.1 %d %d\n"
		"sentinel down-after-milliseconds sipmesh 1000\n"
		"sentinel failover-timeout sipmesh 3000\n%s",
		f->sen[i].port, f->dir, mport, quorum, more);
	fclose(fp);
	proc_start(&f->sen[i], (char *[]){ "redis-server", conf, "--sentinel",
		   NULL });
}

/* A replica of the server on mport, on a free port, loading the
 * master's data in memory (no RDB file left in the working directory). */
static void
replica_start(struct srv *s, int mport)
{
	char mp[16], rp[16];

	s->port = free_port();
	snprintf(mp, sizeof(mp), "%d", mport);
	snprintf(rp, sizeof(rp), "%d", s->port);
	proc_start(s, (char *[]){ "redis-server", "--port", rp,
		   "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		   "--repl-diskless-load", "swapdb",
		   "--loglevel", "warning", "--replicaof", "127.0.0.1", mp,
		   NULL });
}

/*
 * Master (f->srv), replica (f->repl) and NSEN sentinels quorum 2 with
 * short timeouts and more config lines, each sentinel knowing the
 * replica and the others before this returns: a failover can happen at
 * once.
 */
static void
sentinels_start(struct fix *f, const char *more)
{
	srv_start(&f->srv, 0);
	replica_start(&f->repl, f->srv.port);
	/* a sentinel learns replicas from the master's INFO, every 10 s:
	 * the replica must be there for the first one */
	assert_true(port_wait(f->repl.port, "master_link_status:up",
			      DEADLINE_MS, "INFO %s", "replication"));
	for (int i = 0; i < NSEN; i++)
		sentinel_start(f, i, f->srv.port, 2, more);
	for (int i = 0; i < NSEN; i++) {
		assert_true(port_wait(f->sen[i].port, "1", 12000,
				      "SENTINEL replicas %s", "sipmesh"));
		assert_true(port_wait(f->sen[i].port, "2", 12000,
				      "SENTINEL sentinels %s", "sipmesh"));
	}
}

/* "dead,s1,s2,s3": the first sentinel listed does not run. */
static void
sentinel_list(struct fix *f, char *out, size_t cap)
{
	int n = snprintf(out, cap, "127.0.0.1:%d", free_port());

	for (int i = 0; i < NSEN; i++)
		n += snprintf(out + n, cap - (size_t)n, ", 127.0.0.1:%d",
			      f->sen[i].port);
}

/* A link's settings through the sentinels of list (borrowed). */
static struct rconn_config
sentinel_cfg(const char *list, const char *master, int timeout_ms)
{
	return (struct rconn_config){
		.port = 1,	/* ignored: the sentinels say where */
		.host = "127.0.0.1",
		.name = "sipmesh-test-s",
		.timeout_ms = timeout_ms,
		.backoff_max_ms = 200,
		.max_pending = 64,
		.log_sys = LOG_SYS_LOC,
		.sentinels = list,
		.master = master,
	};
}

static void
open_sentinel(struct fix *f, const char *list, const char *master)
{
	struct rconn_config rc = sentinel_cfg(list, master, 500);

	assert_int_equal(rconn_new(&f->c, &f->loop, &rc, on_state, f), 0);
}

/* The port a blocking rconn_connect_sync through list lands on, or -1
 * with err. */
static int
sync_port(const char *list, const char *master, char *err, size_t errlen)
{
	struct rconn_config rc = { .timeout_ms = 500, .sentinels = list,
				   .master = master };
	redisContext *r = rconn_connect_sync(&rc, err, errlen);
	redisReply *rep;
	int port;

	if (!r)
		return -1;
	/* the handshake named it: the master's own view of its port */
	rep = redisCommand(r, "CONFIG GET port");
	assert_non_null(rep);
	assert_int_equal(rep->elements, 2);
	port = atoi(rep->element[1]->str);
	freeReplyObject(rep);
	redisFree(r);
	return port;
}

/* ---- the tests */

static void
test_rconn__up_reply_down_and_back_after_restart(void **state)
{
	struct fix *f = *state;
	char list[4096];

	srv_start(&f->srv, 0);
	open_conn(f, NULL, NULL, 500, 64);
	assert_true(run_until(f, ups_are, (void *)1));
	assert_true(rconn_up(f->c));
	/* CLIENT SETNAME came with the handshake: an operator sees whose
	 * connection it is. */
	srv_str(f, list, sizeof(list), "CLIENT LIST");
	assert_non_null(strstr(list, "name=sipmesh-test-1"));

	assert_int_equal(rconn_command(f->c, on_reply, f, "SET %s %s", "k",
				       "v1"), 0);
	assert_int_equal(rconn_command(f->c, on_reply, f, "GET %s", "k"), 0);
	assert_int_equal(rconn_pending(f->c), 2);
	assert_true(run_until(f, replies_are, (void *)2));
	assert_int_equal(f->nulls, 0);
	assert_string_equal(f->last, "v1");
	assert_int_equal(rconn_pending(f->c), 0);

	/* Commands written to a Redis that just died: EPIPE at worst, the
	 * process lives (SIGPIPE ignored) and each callback gets NULL. */
	signal(SIGPIPE, SIG_DFL);
	rconn_free(f->c);
	open_conn(f, NULL, NULL, 500, 64);
	assert_int_equal(f->ups, 1);
	assert_ptr_equal(signal(SIGPIPE, SIG_IGN), SIG_IGN);
	assert_true(run_until(f, ups_are, (void *)2));
	srv_stop(&f->srv, SIGKILL);
	for (int i = 0; i < 50; i++)
		assert_int_equal(rconn_command(f->c, on_reply, f, "SET k %d",
					       i), 0);
	assert_true(run_until(f, downs_are, (void *)1));
	assert_int_equal(f->nulls, 50);
	assert_false(rconn_up(f->c));
	assert_int_equal(rconn_command(f->c, on_reply, f, "PING"), -EAGAIN);

	srv_start(&f->srv, f->srv.port);
	assert_true(run_until(f, ups_are, (void *)3));
	assert_int_equal(rconn_command(f->c, on_reply, f, "SET k v2"), 0);
	assert_int_equal(rconn_command(f->c, on_reply, f, "GET k"), 0);
	assert_true(run_until(f, replies_are, (void *)54));
	assert_string_equal(f->last, "v2");
	assert_int_equal(f->downs, 1);
}

/* rconn formats commands itself (hiredis formats what it does not
 * know): Redis stores what the format says, byte for byte, arguments
 * split at spaces as hiredis splits them. */
static void
hget_is(struct fix *f, const char *field, const char *want, size_t len)
{
	redisContext *c = srv_client_auth(f->srv.port, f->srv.password);
	redisReply *r;

	assert_non_null(c);
	r = redisCommand(c, "HGET sm:h %s", field);
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	assert_int_equal(r->len, len);
	assert_memory_equal(r->str, want, len);
	freeReplyObject(r);
	redisFree(c);
}

static void
test_rconn__formats_arguments_as_hiredis_does(void **state)
{
	static const char bin[] = "a b\r\n\0c%s";
	static const char nums[] = "-9223372036854775808|-5|4000000000|7|-1|"
				   "18446744073709551615|0|100%";
	struct fix *f = *state;

	srv_start(&f->srv, 0);
	open_conn(f, NULL, NULL, 500, 64);
	assert_true(run_until(f, ups_are, (void *)1));
	assert_int_equal(rconn_command(f->c, on_reply, f, "HSET %s:h  f1 %b",
				       "sm", bin, sizeof(bin) - 1), 0);
	assert_int_equal(rconn_command(f->c, on_reply, f, "HSET sm:h f2 %s",
				       ""), 0);
	assert_int_equal(rconn_command(f->c, on_reply, f,
				       "HSET sm:h f3 %lld|%d|%u|%zu|%ld|%lu|%llu|100%%",
				       -9223372036854775807LL - 1, -5,
				       4000000000u, (size_t)7, -1L,
				       18446744073709551615UL, 0ULL), 0);
	assert_int_equal(rconn_command(f->c, on_reply, f, "HSET sm:h f4 %x%s",
				       255, "!"), 0);
	assert_true(run_until(f, replies_are, (void *)4));
	assert_int_equal(f->nulls, 0);
	hget_is(f, "f1", bin, sizeof(bin) - 1);
	hget_is(f, "f2", "", 0);
	hget_is(f, "f3", nums, strlen(nums));
	hget_is(f, "f4", "ff!", 3);
}

static void
test_rconn__stalled_redis_fails_command_within_timeout(void **state)
{
	struct fix *f = *state;
	uint64_t sent;

	srv_start(&f->srv, 0);
	open_conn(f, NULL, NULL, 200, 64);
	assert_true(run_until(f, ups_are, (void *)1));
	kill(f->srv.pid, SIGSTOP);
	uv_update_time(&f->loop);
	sent = uv_now(&f->loop);
	assert_int_equal(rconn_command(f->c, on_reply, f, "PING"), 0);
	assert_int_equal(rconn_command(f->c, on_reply, f, "PING"), 0);
	assert_true(run_until(f, replies_are, (void *)2));
	assert_int_equal(f->nulls, 2);
	assert_int_equal(f->replies, 0);
	/* no sooner than the timeout, and not much later (tick: 50 ms) */
	assert_true(f->null_ms - sent >= 200);
	assert_true(f->null_ms - sent < 200 + 150);
	assert_int_equal(f->downs, 1);
	assert_false(rconn_up(f->c));
	/* still stopped: the handshake of each attempt times out too */
	assert_false(loop_run_until(&f->loop, ups_are, f, (void *)2, 600));
	kill(f->srv.pid, SIGCONT);
	assert_true(run_until(f, ups_are, (void *)2));
	assert_int_equal(rconn_command(f->c, on_reply, f, "PING"), 0);
	assert_true(run_until(f, replies_are, (void *)3));
	assert_string_equal(f->last, "PONG");
}

static void
test_rconn__requirepass_right_password_up(void **state)
{
	struct fix *f = *state;

	srv_start_pw(&f->srv, 0, "s3cret pass");
	open_conn(f, NULL, "s3cret pass", 500, 64);
	assert_true(run_until(f, ups_are, (void *)1));
	assert_int_equal(rconn_command(f->c, on_reply, f, "SET k v"), 0);
	assert_true(run_until(f, replies_are, (void *)1));
	assert_string_equal(f->last, "OK");
}

static void
test_rconn__requirepass_wrong_or_no_password_stays_down(void **state)
{
	struct fix *f = *state;

	srv_start_pw(&f->srv, 0, "s3cret");
	log_capture(f);
	open_conn(f, NULL, "guess", 200, 64);
	/* several attempts (back-off 100, 200 ms), never up */
	assert_false(loop_run_until(&f->loop, ups_are, f, (void *)1, 1000));
	assert_int_equal(rconn_command(f->c, on_reply, f, "PING"), -EAGAIN);
	assert_non_null(strstr(log_read(f), "AUTH refused: WRONGPASS"));
	/* logged once, not at every attempt */
	assert_null(strstr(strstr(f->log, "WRONGPASS") + 1, "WRONGPASS"));
	rconn_free(f->c);

	f->loglen = 0;
	open_conn(f, NULL, NULL, 200, 64);
	assert_false(loop_run_until(&f->loop, ups_are, f, (void *)1, 500));
	assert_non_null(strstr(log_read(f), "CLIENT SETNAME refused: NOAUTH"));
}

static void
test_rconn__acl_user(void **state)
{
	struct fix *f = *state;
	char ok[64];

	srv_start_pw(&f->srv, 0, "adminpw");
	srv_str(f, ok, sizeof(ok),
		"ACL SETUSER sipmesh on >userpw ~sm:* +@all");
	assert_string_equal(ok, "OK");
	log_capture(f);
	open_conn(f, "sipmesh", "adminpw", 200, 64);	/* not its password */
	assert_false(loop_run_until(&f->loop, ups_are, f, (void *)1, 500));
	assert_non_null(strstr(log_read(f), "WRONGPASS"));
	rconn_free(f->c);

	open_conn(f, "sipmesh", "userpw", 200, 64);
	assert_true(run_until(f, ups_are, (void *)1));
	/* the ACL applies: its keys only */
	assert_int_equal(rconn_command(f->c, on_reply, f, "SET sm:x 1"), 0);
	assert_int_equal(rconn_command(f->c, on_reply, f, "SET other 1"), 0);
	assert_true(run_until(f, replies_are, (void *)2));
	assert_non_null(strstr(f->last, "NOPERM"));
}

static void
test_rconn__max_pending_is_eagain(void **state)
{
	struct fix *f = *state;

	srv_start(&f->srv, 0);
	open_conn(f, NULL, NULL, 500, 16);
	assert_true(run_until(f, ups_are, (void *)1));
	for (int i = 0; i < 16; i++)
		assert_int_equal(rconn_command(f->c, on_reply, f, "PING"), 0);
	assert_int_equal(rconn_command(f->c, on_reply, f, "PING"), -EAGAIN);
	assert_true(run_until(f, replies_are, (void *)16));
	assert_int_equal(f->replies, 16);
	assert_int_equal(rconn_command(f->c, on_reply, f, "PING"), 0);
	assert_true(run_until(f, replies_are, (void *)17));
	assert_true(rconn_up(f->c));
}

/* A link up to a fresh server, its writes held flush_ms. */
static void
open_write_behind(struct fix *f, int flush_ms)
{
	srv_start(&f->srv, 0);
	f->flush_ms = flush_ms;
	open_conn(f, NULL, NULL, 1000, 64);
	assert_true(run_until(f, ups_are, (void *)1));
}

/*
 * flush_ms: the commands of a turn reach Redis together, that late
 * (nothing written before), unless RCONN_FLUSH_BYTES wait: those go at
 * once; rconn_free writes what is still held.
 */
static void
test_rconn__flush_ms_writes_late_and_together(void **state)
{
	static char big[RCONN_FLUSH_BYTES + 1];
	struct fix *f = *state;
	char got[64];
	uint64_t t0;

	open_write_behind(f, 150);
	t0 = uv_now(&f->loop);
	for (int i = 0; i < 3; i++)
		assert_int_equal(rconn_command(f->c, on_reply, f,
					       "INCR wb"), 0);
	loop_run_until(&f->loop, never, f, NULL, 50);
	srv_str(f, got, sizeof(got), "GET wb");
	assert_string_equal(got, "");	/* not written yet */
	assert_true(run_until(f, replies_are, (void *)3));
	assert_true(uv_now(&f->loop) - t0 >= 140);
	srv_str(f, got, sizeof(got), "GET wb");
	assert_string_equal(got, "3");

	memset(big, 'x', sizeof(big) - 1);
	t0 = uv_now(&f->loop);
	assert_int_equal(rconn_command(f->c, on_reply, f, "SET big %b", big,
				       sizeof(big) - 1), 0);
	assert_true(run_until(f, replies_are, (void *)4));
	assert_true(uv_now(&f->loop) - t0 < 140);
	assert_string_equal(f->last, "OK");

	/* rconn_free writes what flush_ms still holds. */
	assert_int_equal(rconn_command(f->c, on_reply, f, "INCR wb"), 0);
	loop_run_until(&f->loop, never, f, NULL, 20);
	rconn_free(f->c);
	f->c = NULL;
	for (int i = 0; i < 100; i++) {
		srv_str(f, got, sizeof(got), "GET wb");
		if (strcmp(got, "4") == 0)
			break;
		usleep(10000);
	}
	assert_string_equal(got, "4");
}

/*
 * rconn_flush_now: a command whose reply is waited on leaves before the
 * loop blocks, with the writes held before it, in order; the next
 * write-behind command is held again.
 */
static void
test_rconn__flush_now_sends_what_is_held(void **state)
{
	struct fix *f = *state;
	char got[64];
	uint64_t t0;

	open_write_behind(f, 150);
	t0 = uv_now(&f->loop);
	assert_int_equal(rconn_command(f->c, on_reply, f, "INCR wb"), 0);
	assert_int_equal(rconn_command(f->c, on_reply, f, "INCR wb"), 0);
	assert_int_equal(rconn_command(f->c, on_reply, f, "GET wb"), 0);
	rconn_flush_now(f->c);
	assert_true(run_until(f, replies_are, (void *)3));
	assert_true(uv_now(&f->loop) - t0 < 100);
	assert_string_equal(f->last, "2");

	t0 = uv_now(&f->loop);
	assert_int_equal(rconn_command(f->c, on_reply, f, "INCR wb"), 0);
	loop_run_until(&f->loop, never, f, NULL, 50);
	srv_str(f, got, sizeof(got), "GET wb");
	assert_string_equal(got, "2");	/* held again */
	assert_true(run_until(f, replies_are, (void *)4));
	assert_true(uv_now(&f->loop) - t0 >= 140);
}

/* Redis counts a subscriber of channel arg (PUBSUB NUMSUB). */
static int
subscribers_are(void *ctx, void *arg)
{
	struct fix *f = ctx;
	redisContext *c = srv_client(f->srv.port);
	redisReply *r = redisCommand(c, "PUBSUB NUMSUB %s", (char *)arg);
	int n = r && r->elements == 2 ? (int)r->element[1]->integer : -1;

	freeReplyObject(r);
	redisFree(c);
	return n == 1;
}

static void
publish_at(int port, const char *chan, const char *msg)
{
	redisContext *c = srv_client(port);
	redisReply *r = redisCommand(c, "PUBLISH %s %s", chan, msg);

	assert_non_null(r);
	assert_int_equal(r->integer, 1);	/* one subscriber: ours */
	freeReplyObject(r);
	redisFree(c);
}

static void
publish(struct fix *f, const char *chan, const char *msg)
{
	publish_at(f->srv.port, chan, msg);
}

static void
test_rconn__subscription_renewed_after_restart(void **state)
{
	struct fix *f = *state;

	srv_start(&f->srv, 0);
	open_conn(f, NULL, NULL, 500, 64);
	assert_int_equal(rconn_subscribe(f->c, "rc-test", on_message, f), 0);
	/* up means subscribed: a publish right away is seen */
	assert_true(run_until(f, ups_are, (void *)1));
	publish(f, "rc-test", "one two");
	assert_true(run_until(f, msgs_are, (void *)1));
	assert_string_equal(f->msg, "rc-test one two");
	/* one more channel, while up */
	assert_int_equal(rconn_subscribe(f->c, "rc-more", on_message, f), 0);
	assert_true(run_until(f, subscribers_are, "rc-more"));
	publish(f, "rc-more", "x");
	assert_true(run_until(f, msgs_are, (void *)2));
	assert_string_equal(f->msg, "rc-more x");
	/* commands still work beside the subscription */
	assert_int_equal(rconn_command(f->c, on_reply, f, "PING"), 0);
	assert_true(run_until(f, replies_are, (void *)1));

	srv_stop(&f->srv, SIGKILL);
	assert_true(run_until(f, downs_are, (void *)1));
	srv_start(&f->srv, f->srv.port);
	assert_true(run_until(f, ups_are, (void *)2));
	publish(f, "rc-test", "three");
	assert_true(run_until(f, msgs_are, (void *)3));
	assert_string_equal(f->msg, "rc-test three");
	publish(f, "rc-more", "four");
	assert_true(run_until(f, msgs_are, (void *)4));
	assert_string_equal(f->msg, "rc-more four");
}

static void
test_rconn__free_runs_pending_callbacks(void **state)
{
	struct fix *f = *state;

	srv_start(&f->srv, 0);
	open_conn(f, NULL, NULL, 500, 64);
	assert_true(run_until(f, ups_are, (void *)1));
	for (int i = 0; i < 5; i++)
		assert_int_equal(rconn_command(f->c, on_reply, f, "PING"), 0);
	rconn_free(f->c);
	f->c = NULL;
	assert_int_equal(f->nulls, 5);
	assert_int_equal(f->downs, 0);	/* freeing is no failure */
	assert_false(loop_run_until(&f->loop, never, f, NULL, 100));
	assert_int_equal(f->replies, 0);
}

/* A Redis that is not there at all: not an error, retried. */
static void
test_rconn__redis_absent_then_started(void **state)
{
	struct fix *f = *state;

	f->srv.port = free_port();
	open_conn(f, NULL, NULL, 200, 64);
	assert_false(loop_run_until(&f->loop, ups_are, f, (void *)1, 300));
	assert_int_equal(f->downs, 0);	/* never up: no down either */
	srv_start(&f->srv, f->srv.port);
	assert_true(run_until(f, ups_are, (void *)1));
}

static void
test_rconn__backoff_doubles_to_the_cap(void **state)
{
	static const struct { int cur, max, next; } rows[] = {
		{ 0, 2000, RCONN_BACKOFF_MIN_MS },
		{ 100, 2000, 200 },
		{ 800, 2000, 1600 },
		{ 1600, 2000, 2000 },
		{ 2000, 2000, 2000 },
		{ 1999, 2000, 2000 },
		{ 100, 150, 150 },
		{ 1 << 30, 5000, 5000 },	/* no overflow */
		{ -5, 1000, RCONN_BACKOFF_MIN_MS },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		assert_int_equal(rconn_backoff_next(rows[i].cur, rows[i].max),
				 rows[i].next);
}


/* The master found through the sentinels, past a dead one; it lists
 * its replica (rconn_replica), still listed while the master is gone;
 * after SIGKILL of the master the sentinels promote the replica and
 * the link comes back there, where a write is accepted. */
static void
test_rconn__sentinel_finds_master_and_follows_failover(void **state)
{
	struct fix *f = *state;
	char list[256], err[256], port[16], val[64], host[64];
	uint64_t killed, back;
	int rport = 0;

	sentinels_start(f, "");
	sentinel_list(f, list, sizeof(list));
	log_capture(f);
	open_sentinel(f, list, NULL);	/* the default name: "sipmesh" */
	assert_false(rconn_up(f->c));
	assert_int_equal(rconn_subscribe(f->c, "rc-sen", on_message, f), 0);
	assert_true(run_until(f, ups_are, (void *)1));
	/* a dead sentinel is skipped, not a failure of the link */
	assert_int_equal(rconn_failures(f->c), 0);
	publish_at(f->srv.port, "rc-sen", "one");
	assert_true(run_until(f, msgs_are, (void *)1));
	assert_int_equal(rconn_command(f->c, on_reply, f, "SET k before"), 0);
	assert_true(run_until(f, replies_are, (void *)1));
	assert_string_equal(f->last, "OK");
	srv_str(f, val, sizeof(val), "GET k");	/* it is the master */
	assert_string_equal(val, "before");
	assert_int_equal(sync_port(list, NULL, err, sizeof(err)), f->srv.port);
	assert_int_equal(rconn_replica(f->c, 0, host, sizeof(host), &rport), 1);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(rport, f->repl.port);
	assert_int_equal(rconn_replica(f->c, 1, host, sizeof(host), &rport), 1);

	srv_stop(&f->srv, SIGKILL);
	uv_update_time(&f->loop);
	killed = uv_now(&f->loop);
	assert_true(run_until(f, downs_are, (void *)1));
	/* where a reader turns while the failover runs */
	rport = 0;
	assert_int_equal(rconn_replica(f->c, 0, host, sizeof(host), &rport), 1);
	assert_int_equal(rport, f->repl.port);
	/* down-after 1 s, then the election and the promotion */
	assert_true(loop_run_until(&f->loop, ups_are, f, (void *)2, 15000));
	back = uv_now(&f->loop);
	print_message("sentinel failover: link back on the replica %" PRIu64
		      " ms after SIGKILL of the master\n", back - killed);
	assert_true(back - killed < 10000);
	snprintf(port, sizeof(port), "%d", f->repl.port);
	assert_true(port_wait(f->sen[0].port, port, 0,
			      "SENTINEL get-master-addr-by-name %s", "sipmesh"));
	assert_int_equal(rconn_command(f->c, on_reply, f, "SET k after"), 0);
	assert_true(run_until(f, replies_are, (void *)2));
	assert_string_equal(f->last, "OK");
	port_str(f->repl.port, val, sizeof(val), "GET k");
	assert_string_equal(val, "after");
	/* the subscription followed the master */
	publish_at(f->repl.port, "rc-sen", "two");
	assert_true(run_until(f, msgs_are, (void *)2));
	assert_string_equal(f->msg, "rc-sen two");
	assert_int_equal(sync_port(list, NULL, err, sizeof(err)), f->repl.port);
	assert_non_null(strstr(log_read(f), "master sipmesh at 127.0.0.1:"));
	/* the new master has no replica: its ROLE says so */
	assert_int_equal(rconn_replica(f->c, 0, host, sizeof(host), &rport), 0);
}

/* A master demoted behind the link's back (REPLICAOF with no
 * CLIENT KILL): the first write refused READONLY fails the link, and
 * the sentinels' stale answer is not used: ROLE says slave. */
static void
test_rconn__sentinel_demoted_master_not_used(void **state)
{
	struct fix *f = *state;
	char list[256], err[256], ok[64];

	sentinels_start(f, "");
	sentinel_list(f, list, sizeof(list));
	log_capture(f);
	open_sentinel(f, list, "sipmesh");
	assert_true(run_until(f, ups_are, (void *)1));
	port_str(f->repl.port, ok, sizeof(ok), "REPLICAOF NO ONE");
	assert_string_equal(ok, "OK");
	port_str(f->srv.port, ok, sizeof(ok), "REPLICAOF 127.0.0.1 %d",
		 f->repl.port);
	assert_string_equal(ok, "OK");
	assert_true(rconn_up(f->c));	/* REPLICAOF keeps the clients */
	assert_int_equal(rconn_command(f->c, on_reply, f, "SET k v"), 0);
	assert_true(run_until(f, downs_are, (void *)1));
	assert_non_null(strstr(f->last, "READONLY"));	/* the caller's */
	/* the sentinels still name the old master: never up on it */
	assert_false(loop_run_until(&f->loop, ups_are, f, (void *)2, 1000));
	assert_non_null(strstr(log_read(f), "READONLY"));
	assert_non_null(strstr(f->log, "ROLE is slave, not master"));
	assert_int_equal(sync_port(list, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "ROLE is slave"));
}

/* ROLE asked again every 5 s while up: a replica that joins is listed,
 * and a master demoted behind the link's back fails the link with no
 * write to be refused. */
static void
test_rconn__sentinel_role_asked_again(void **state)
{
	struct fix *f = *state;
	char list[256], ok[64];

	sentinels_start(f, "");
	sentinel_list(f, list, sizeof(list));
	log_capture(f);
	open_sentinel(f, list, "sipmesh");
	assert_true(run_until(f, ups_are, (void *)1));
	assert_true(replicas_are(f, (void *)1));
	replica_start(&f->stale, f->srv.port);
	assert_true(loop_run_until(&f->loop, replicas_are, f, (void *)2, 8000));
	assert_int_equal(f->downs, 0);

	port_str(f->repl.port, ok, sizeof(ok), "REPLICAOF NO ONE");
	assert_string_equal(ok, "OK");
	port_str(f->srv.port, ok, sizeof(ok), "REPLICAOF 127.0.0.1 %d",
		 f->repl.port);
	assert_string_equal(ok, "OK");
	assert_true(loop_run_until(&f->loop, downs_are, f, (void *)1, 8000));
	assert_non_null(strstr(log_read(f), "ROLE is slave, not master"));
}

/*
 * A former master back after a failover, with its own sentinel, before
 * they hear of the failover: a server that says it is the master and a
 * sentinel that names it, at an older config-epoch than the others'.
 * Here they are kept apart for good (the stale sentinel monitors a
 * Redis of its own, and the others have been through a failover:
 * config-epoch 1), and listed first.  The link and the blocking
 * connect ask a majority and land on the real master; a write goes
 * there and nothing reaches the stale one.
 */
static void
test_rconn__sentinel_stale_view_outvoted(void **state)
{
	struct fix *f = *state;
	char list[256], err[256], val[64];

	sentinels_start(f, "sentinel config-epoch sipmesh 1\n");
	srv_start(&f->stale, 0);
	sentinel_start(f, NSEN, f->stale.port, 1, "");
	snprintf(val, sizeof(val), "%d", f->stale.port);
	assert_true(port_wait(f->sen[NSEN].port, val, DEADLINE_MS,
			      "SENTINEL get-master-addr-by-name %s", "sipmesh"));
	snprintf(list, sizeof(list), "127.0.0.1:%d, 127.0.0.1:%d, "
		 "127.0.0.1:%d, 127.0.0.1:%d", f->sen[NSEN].port,
		 f->sen[0].port, f->sen[1].port, f->sen[2].port);
	open_sentinel(f, list, NULL);
	assert_true(run_until(f, ups_are, (void *)1));
	assert_int_equal(rconn_command(f->c, on_reply, f, "SET k real"), 0);
	assert_true(run_until(f, replies_are, (void *)1));
	assert_string_equal(f->last, "OK");
	srv_str(f, val, sizeof(val), "GET k");
	assert_string_equal(val, "real");
	assert_int_equal(port_int(f->stale.port, "DBSIZE"), 0);
	assert_int_equal(sync_port(list, NULL, err, sizeof(err)), f->srv.port);
	/* one sentinel alone, stale or not, is all there is: it decides */
	snprintf(list, sizeof(list), "127.0.0.1:%d", f->sen[NSEN].port);
	assert_int_equal(sync_port(list, NULL, err, sizeof(err)),
			 f->stale.port);
}

/* A sentinel whose host hangs (it takes the connection and never
 * answers), listed first: the others are asked at the same time and
 * make the majority, so the link, and the blocking connect, are up
 * long before that sentinel's timeout (asked one after the other, it
 * cost the whole timeout). */
static void
test_rconn__sentinel_silent_one_costs_no_timeout(void **state)
{
	struct fix *f = *state;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	char list[256], err[256];
	redisContext *r;
	uint64_t t0;
	int lfd;
	struct rconn_config rc = sentinel_cfg(list, NULL, 3000);

	sentinels_start(f, "");
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 8), 0);	/* never accepted */
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(list, sizeof(list), "127.0.0.1:%d, 127.0.0.1:%d, "
		 "127.0.0.1:%d, 127.0.0.1:%d", ntohs(sa.sin_port),
		 f->sen[0].port, f->sen[1].port, f->sen[2].port);
	uv_update_time(&f->loop);
	t0 = uv_now(&f->loop);
	assert_int_equal(rconn_new(&f->c, &f->loop, &rc, on_state, f), 0);
	assert_true(run_until(f, ups_are, (void *)1));
	print_message("up through the sentinels in %" PRIu64 " ms, one of "
		      "them silent (timeout 3000 ms)\n", uv_now(&f->loop) - t0);
	assert_true(uv_now(&f->loop) - t0 < 1500);
	assert_int_equal(rconn_failures(f->c), 0);
	/* the blocking connect (start-up load, sipmesh-ctl) too */
	uv_update_time(&f->loop);
	t0 = uv_now(&f->loop);
	r = rconn_connect_sync(&rc, err, sizeof(err));
	uv_update_time(&f->loop);
	print_message("blocking connect through them in %" PRIu64 " ms\n",
		      uv_now(&f->loop) - t0);
	assert_non_null(r);
	assert_true(uv_now(&f->loop) - t0 < 1500);
	redisFree(r);
	close(lfd);
}

/* Sentinels that do not know the name, or none running: down, and the
 * log says why; no address is guessed. */
static void
test_rconn__sentinel_unknown_master_stays_down(void **state)
{
	struct fix *f = *state;
	char list[256], err[256];

	sentinels_start(f, "");
	sentinel_list(f, list, sizeof(list));
	log_capture(f);
	open_sentinel(f, list, "other");
	assert_false(loop_run_until(&f->loop, ups_are, f, (void *)1, 1000));
	assert_non_null(strstr(log_read(f), "no sentinel knows the master"));
	assert_int_equal(sync_port(list, "other", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "No such master with that name"));
	rconn_free(f->c);
	f->c = NULL;

	snprintf(list, sizeof(list), "127.0.0.1:%d", free_port());
	open_sentinel(f, list, NULL);
	assert_false(loop_run_until(&f->loop, ups_are, f, (void *)1, 500));
	assert_int_equal(sync_port(list, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "127.0.0.1:"));
}

/* A sentinel with requirepass: sentinel_password opens it; without it
 * or with a wrong one the link stays down and the log says why. */
static void
test_rconn__sentinel_password(void **state)
{
	struct fix *f = *state;
	struct rconn_config rc = {
		.timeout_ms = 500, .backoff_max_ms = 200, .name = "t",
		.log_sys = LOG_SYS_LOC,
	};
	char list[64], err[256];
	redisContext *r;

	srv_start(&f->srv, 0);
	sentinel_start(f, 0, f->srv.port, 1, "requirepass \"sen pw\"\n");
	snprintf(list, sizeof(list), "127.0.0.1:%d", f->sen[0].port);
	rc.sentinels = list;
	log_capture(f);
	assert_int_equal(rconn_new(&f->c, &f->loop, &rc, on_state, f), 0);
	assert_false(loop_run_until(&f->loop, ups_are, f, (void *)1, 700));
	assert_non_null(strstr(log_read(f), "refused: NOAUTH"));
	assert_null(rconn_connect_sync(&rc, err, sizeof(err)));
	assert_non_null(strstr(err, "NOAUTH"));
	rconn_free(f->c);

	rc.sentinel_password = "guess";
	assert_int_equal(rconn_new(&f->c, &f->loop, &rc, on_state, f), 0);
	assert_false(loop_run_until(&f->loop, ups_are, f, (void *)1, 700));
	assert_non_null(strstr(log_read(f), "WRONGPASS"));
	assert_null(rconn_connect_sync(&rc, err, sizeof(err)));
	rconn_free(f->c);

	rc.sentinel_password = "sen pw";
	assert_int_equal(rconn_new(&f->c, &f->loop, &rc, on_state, f), 0);
	assert_true(run_until(f, ups_are, (void *)1));
	r = rconn_connect_sync(&rc, err, sizeof(err));
	assert_non_null(r);
	redisFree(r);
}

static void
test_rconn__sentinel_list_parsed(void **state)
{
	static const struct { const char *list; int ok; } rows[] = {
		{ "127.0.0.1:26379", 0 },
		{ "a:1, b:2 ,c", 0 },		/* c: port 26379 */
		{ "[::1]:26379,127.0.0.1:5", 0 },
		{ "a:1,", -EINVAL },
		{ ",a:1", -EINVAL },
		{ "a:1,,b:2", -EINVAL },
		{ "a:0", -EINVAL },
		{ "a:65536", -EINVAL },
		{ "a:1x", -EINVAL },
		{ "1:1,2:1,3:1,4:1,5:1,6:1,7:1,8:1,9:1", -EINVAL },
	};
	struct rconn_config rc = { .sentinels = "a:1," };
	uv_loop_t loop;
	struct rconn *c = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		assert_int_equal(rconn_sentinels_check(rows[i].list),
				 rows[i].ok);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(rconn_new(&c, &loop, &rc, NULL, NULL), -EINVAL);
	assert_null(c);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* [redis] sentinels alone is a Redis; address is then not needed. */
static void
test_rconn__config_from_cfg_sentinels(void **state)
{
	static struct cfg cfg;
	struct rconn_config rc;
	char host[CFG_ADDR_LEN], err[128];

	(void)state;
	assert_int_equal(cfg_load(&cfg, NULL, err, sizeof(err)), 0);
	assert_int_equal(rconn_config_cfg(&rc, host, sizeof(host), &cfg, "n",
					  0), -ENOENT);
	snprintf(cfg.redis_sentinels, sizeof(cfg.redis_sentinels),
		 "127.0.0.1:1,127.0.0.1:2");
	assert_int_equal(rconn_config_cfg(&rc, host, sizeof(host), &cfg, "n",
					  0), 0);
	assert_string_equal(rc.sentinels, "127.0.0.1:1,127.0.0.1:2");
	assert_string_equal(rc.master, "sipmesh");
	assert_string_equal(rc.host, "");
	snprintf(cfg.redis_sentinels, sizeof(cfg.redis_sentinels), "x:0");
	assert_int_equal(rconn_config_cfg(&rc, host, sizeof(host), &cfg, "n",
					  0), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, fix_setup, fix_teardown)
		cmocka_unit_test(test_rconn__backoff_doubles_to_the_cap),
		T(test_rconn__up_reply_down_and_back_after_restart),
		T(test_rconn__formats_arguments_as_hiredis_does),
		T(test_rconn__stalled_redis_fails_command_within_timeout),
		T(test_rconn__requirepass_right_password_up),
		T(test_rconn__requirepass_wrong_or_no_password_stays_down),
		T(test_rconn__acl_user),
		T(test_rconn__max_pending_is_eagain),
	T(test_rconn__flush_ms_writes_late_and_together),
	T(test_rconn__flush_now_sends_what_is_held),
		T(test_rconn__subscription_renewed_after_restart),
		T(test_rconn__free_runs_pending_callbacks),
		T(test_rconn__redis_absent_then_started),
		cmocka_unit_test(test_rconn__sentinel_list_parsed),
		cmocka_unit_test(test_rconn__config_from_cfg_sentinels),
		T(test_rconn__sentinel_finds_master_and_follows_failover),
		T(test_rconn__sentinel_demoted_master_not_used),
		T(test_rconn__sentinel_role_asked_again),
		T(test_rconn__sentinel_stale_view_outvoted),
		T(test_rconn__sentinel_unknown_master_stays_down),
		T(test_rconn__sentinel_silent_one_costs_no_timeout),
		T(test_rconn__sentinel_password),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
