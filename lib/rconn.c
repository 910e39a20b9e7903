/*
 * rconn.c - one asynchronous Redis link (rconn.h): a hiredis async
 * context on the process's libuv loop for commands, and a second one
 * for subscriptions when there are any.
 *
 * States: DOWN (waiting for the next attempt), DISCOVERING (asking a
 * sentinel where the master is; with sentinels only), CONNECTING
 * (dialled, handshake not answered), UP.  The handshake is pipelined on
 * each connection: [AUTH [user] password], CLIENT SETNAME name, with
 * sentinels ROLE on the command connection, and on the subscription
 * connection SUBSCRIBE of every channel; the link is UP when the
 * command connection's SETNAME (or ROLE: "master") and every SUBSCRIBE
 * answered.  An error reply in the handshake (WRONGPASS, NOAUTH), or a
 * ROLE other than master, fails the attempt like a refused connect: the
 * link stays down and says why.
 *
 * Discovery asks every sentinel at once (a connection each, one
 * timeout_ms for all) SENTINEL MASTER, until a majority of the
 * configured sentinels answered, and takes the master of the highest
 * config-epoch among them.  A sentinel whose host vanished (no RST)
 * thus costs nothing while the others make a majority; asked one after
 * the other, it cost its whole timeout.  One answer is not enough: a
 * former master that comes back after a failover is a master again
 * (its redis.conf has no replicaof) and its own sentinel, back with it,
 * names it at the old epoch until it hears the others (seconds); a core
 * that believed it would load stale bindings and write to a server
 * about to be demoted.
 * A failover is authorised by a majority, so every majority holds a
 * sentinel that knows it.  A refused connect, an error, a null answer
 * (the master name unknown) or silence within timeout_ms counts as no
 * answer; once every sentinel answered or failed, the answers there
 * are decide, and with none the attempt fails (and backs off).
 *
 * One tick (a quarter of timeout_ms, at most 100 ms, not keeping the
 * loop alive) turns an attempt older than timeout_ms, or commands in
 * flight with no reply for timeout_ms, into a failure: both connections
 * are freed (hiredis runs every pending callback with NULL) and the
 * next attempt waits a back-off doubling from 100 ms to backoff_max_ms.
 * Replies come in order on a connection, so "no reply for timeout_ms
 * since the later of the last reply and the oldest command" is a stall
 * of the oldest command, at the cost of one counter and one timestamp.
 *
 * Logging: the first failure after UP, and each change of the reason
 * while down, at warn; repeated attempts failing alike at debug.
 *
 * hiredis (0.14) rules this file keeps: a context is never freed from
 * its successful connect callback (hiredis goes on writing to it), nor
 * from the callbacks by which hiredis itself is freeing it (a NULL
 * reply, a failed connect, the disconnect callback): those only forget
 * it.  redisAsyncFree from inside one of its reply callbacks is
 * deferred by hiredis until the callback returns; the rconn's memory
 * lives until the loop closes its timer, after any such deferred free.
 */
#include "lib/rconn.h"
#include "lib/cfg.h"
#include "lib/log.h"

#include <errno.h>
#include <hiredis/async.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum rconn_state { RCONN_DOWN = 0, RCONN_DISCOVERING, RCONN_CONNECTING,
		   RCONN_UP };

/* Which handshake reply a callback gets. */
enum rconn_step { RCONN_STEP_AUTH = 1, RCONN_STEP_NAME, RCONN_STEP_ROLE };

#define RCONN_SENTINEL_PORT 26379
/* How often a link found by the sentinels asks ROLE again: the master's
 * replicas change after a failover (the old master returns as one),
 * and a master demoted behind the link's back shows here, not only at
 * the next write refused READONLY. */
#define RCONN_ROLE_MS 5000

/*
 * One discovery's answers from n sentinels, counted the same by the
 * loop's (rconn_sentinels_settle) and the blocking one
 * (rconn_sync_discover): decided once a majority of the configured
 * sentinels answered, or every one answered or failed; then the master
 * is the one the highest config-epoch named.
 */
struct rconn_vote {
	int n, answered, failed;
	long long best_epoch;		/* -1: no answer yet */
	char host[256];			/* the master it names */
	int port;
	int last_i;			/* the sentinel that failed last */
	char last_why[160];		/* and why */
};

/* A sentinel, or a replica a master's ROLE listed. */
struct rconn_addr {
	char host[256];
	int port;
};

struct rconn_sub {
	struct rconn_sub *next;
	struct rconn *c;
	rconn_message_cb fn;
	void *priv;
	char channel[];
};

/* A command in flight: the caller's callback behind hiredis's. */
struct rconn_cmd {
	struct rconn *c;
	redisCallbackFn *fn;
	void *priv;
	uint64_t sent_ns;	/* uv_hrtime(): the latency histogram */
};

/* Process-wide, as the processes have one loop each (rconn_latency). */
static struct prom_hist rconn_lat;

struct rconn {
	uv_loop_t *loop;
	char host[256];
	int port;
	char user[128];
	char password[256];
	char name[128];
	int timeout_ms, backoff_max_ms, max_pending, log_sys, flush_ms;
	rconn_state_cb cb;
	void *arg;
	void (*on_flush)(void *arg);

	/* Sentinel; nsentinels 0: host:port is Redis. */
	struct rconn_addr sentinels[RCONN_SENTINELS_MAX];
	int nsentinels;
	struct rconn_vote vote;		/* this attempt's answers */
	char master[128];
	char sentinel_password[256];
	redisAsyncContext *sen[RCONN_SENTINELS_MAX];	/* each sentinel's
					   question while DISCOVERING */
	struct rconn_addr replicas[RCONN_REPLICAS_MAX];	/* the master's
					   last ROLE; kept while down */
	int nreplicas;
	char where[420];		/* what the log names: host:port, or
					   master <name> [at host:port] */

	enum rconn_state state;
	redisAsyncContext *ac;		/* commands; NULL while DOWN */
	redisAsyncContext *sub;		/* subscriptions; NULL when none */
	int cmd_ok;			/* SETNAME answered, this attempt */
	int sub_ok;			/* SUBSCRIBEs confirmed, this attempt */
	int nsubs;
	struct rconn_sub *subs;
	int pending;			/* user commands on ac */
	uint64_t progress_ms;		/* last reply, or first of pending */
	uint64_t state_ms;		/* when state was entered */
	uint64_t sub_ms;		/* last SUBSCRIBE sent */
	uint64_t role_ms;		/* last ROLE asked (sentinels only) */
	uint64_t retry_ms;		/* next attempt, while DOWN */
	int backoff_ms;
	int down_logged;		/* a failure was logged since UP */
	unsigned long failures;
	char why[160];			/* the reason logged last */
	int closing;
	uv_timer_t tick;
};

/*
 * hiredis on the loop.  hiredis's own libuv adapter arms UV_WRITABLE
 * for each command, disarms it once written and re-arms reading after
 * every write, and libuv's uv_poll_start re-registers the fd with epoll
 * each time: measured, 4.5 epoll_ctl(2) per REGISTER in a core.  Here a
 * poll changes only when the set of events does, and once connected a
 * command only starts a prepare handle: before the loop next blocks,
 * one write(2) takes what every callback of the turn queued (Redis
 * pipelining for free).  Only a write the socket could not take whole
 * arms UV_WRITABLE; the connect itself still waits for it.  With
 * flush_ms (a write-behind link, rconn_config) a timer takes the
 * prepare's place: the commands of that many milliseconds share one
 * write, one wake-up of Redis and one read of its replies, unless
 * RCONN_FLUSH_BYTES are waiting.  Just before that write the owner's
 * on_flush may add to it (what it batches per write).
 */
struct rconn_ev {
	redisAsyncContext *ac;	/* NULL once hiredis let go of it */
	uv_poll_t poll;
	uv_prepare_t flush;
	uv_timer_t linger;	/* flush_ms > 0: armed by the first command */
	int flush_ms;
	int events;		/* what poll is armed for */
	int flushing;		/* in rconn_ev_on_flush: a short write arms
				   UV_WRITABLE instead of another flush */
	int topping;		/* in the owner's on_flush: the write
				   follows, nothing to arm */
	struct rconn *owner;	/* a command link's; NULL: a sentinel's */
	int open;		/* handles not closed yet; the last frees */
};

static void rconn_ev_on_io(uv_poll_t *p, int status, int events);

static void
rconn_ev_arm(struct rconn_ev *e, int events)
{
	if (events == e->events)
		return;
	e->events = events;
	if (events)
		uv_poll_start(&e->poll, events, rconn_ev_on_io);
	else
		uv_poll_stop(&e->poll);
}

static void
rconn_ev_on_io(uv_poll_t *p, int status, int events)
{
	struct rconn_ev *e = p->data;

	if (status < 0) {
		/* libuv stopped the poll (POLLERR): the read or the
		 * connect check finds the error and drops the link. */
		e->events = 0;
		events = e->ac && !(e->ac->c.flags & REDIS_CONNECTED) ?
			 UV_WRITABLE : UV_READABLE;
	}
	/* Either call may free the context; cleanup clears e->ac, and e
	 * lives until its handles have closed. */
	if (e->ac && (events & UV_READABLE))
		redisAsyncHandleRead(e->ac);
	if (e->ac && (events & UV_WRITABLE))
		redisAsyncHandleWrite(e->ac);
}

static void
rconn_ev_on_flush(uv_prepare_t *h)
{
	struct rconn_ev *e = h->data;

	uv_prepare_stop(h);
	uv_timer_stop(&e->linger);
	if (!e->ac)
		return;
	if (e->owner && e->owner->on_flush && e->ac == e->owner->ac) {
		e->topping = 1;
		e->owner->on_flush(e->owner->arg);
		e->topping = 0;
	}
	e->flushing = 1;
	redisAsyncHandleWrite(e->ac);
	e->flushing = 0;
}

static void
rconn_ev_on_linger(uv_timer_t *t)
{
	struct rconn_ev *e = t->data;

	rconn_ev_on_flush(&e->flush);
}

static void
rconn_ev_add_read(void *priv)
{
	struct rconn_ev *e = priv;

	rconn_ev_arm(e, e->events | UV_READABLE);
}

static void
rconn_ev_del_read(void *priv)
{
	struct rconn_ev *e = priv;

	rconn_ev_arm(e, e->events & ~UV_READABLE);
}

static void
rconn_ev_add_write(void *priv)
{
	struct rconn_ev *e = priv;

	if (e->topping)
		return;
	if (e->flushing || !(e->ac->c.flags & REDIS_CONNECTED))
		rconn_ev_arm(e, e->events | UV_WRITABLE);
	else if (e->flush_ms == 0 ||
		 sdslen(e->ac->c.obuf) >= RCONN_FLUSH_BYTES)
		uv_prepare_start(&e->flush, rconn_ev_on_flush);
	else if (!uv_is_active((uv_handle_t *)&e->linger))
		uv_timer_start(&e->linger, rconn_ev_on_linger,
			       (uint64_t)e->flush_ms, 0);
}

static void
rconn_ev_del_write(void *priv)
{
	struct rconn_ev *e = priv;

	rconn_ev_arm(e, e->events & ~UV_WRITABLE);
}

static void
rconn_ev_on_close(uv_handle_t *h)
{
	struct rconn_ev *e = h->data;

	if (--e->open == 0)
		free(e);
}

static void
rconn_ev_cleanup(void *priv)
{
	struct rconn_ev *e = priv;

	e->ac = NULL;
	uv_close((uv_handle_t *)&e->poll, rconn_ev_on_close);
	uv_close((uv_handle_t *)&e->flush, rconn_ev_on_close);
	uv_close((uv_handle_t *)&e->linger, rconn_ev_on_close);
}

/* Puts ac on loop (owner: the rconn whose on_flush tops up its
 * command link's writes, NULL for a sentinel's); 0 or -ENOMEM/-EINVAL.
 * On failure ac is as it was (its owner frees it). */
static int
rconn_ev_attach(redisAsyncContext *ac, uv_loop_t *loop, int flush_ms,
		struct rconn *owner)
{
	struct rconn_ev *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return -ENOMEM;
	if (uv_poll_init(loop, &e->poll, ac->c.fd) < 0) {
		free(e);
		return -EINVAL;
	}
	uv_prepare_init(loop, &e->flush);
	uv_timer_init(loop, &e->linger);
	e->poll.data = e->flush.data = e->linger.data = e;
	e->flush_ms = flush_ms;
	e->owner = owner;
	e->ac = ac;
	e->open = 3;
	ac->ev.data = e;
	ac->ev.addRead = rconn_ev_add_read;
	ac->ev.delRead = rconn_ev_del_read;
	ac->ev.addWrite = rconn_ev_add_write;
	ac->ev.delWrite = rconn_ev_del_write;
	ac->ev.cleanup = rconn_ev_cleanup;
	return 0;
}

static void rconn_connect(struct rconn *c);
static void rconn_dial_master(struct rconn *c);

/* rconn_server_hook: one per process, like the SIGPIPE disposition. */
static rconn_server_cb rconn_server_fn;
static void *rconn_server_arg;

void
rconn_server_hook(rconn_server_cb fn, void *arg)
{
	rconn_server_fn = fn;
	rconn_server_arg = arg;
}

static void
rconn_server_seen(const char *host, int port)
{
	if (rconn_server_fn)
		rconn_server_fn(rconn_server_arg, host, port);
}

static int
rconn_copy(char *dst, size_t cap, const char *src)
{
	return snprintf(dst, cap, "%s", src ? src : "") >= (int)cap ? -E2BIG : 0;
}

/*
 * The master a SENTINEL MASTER reply names (field, value, field, ...):
 * its address into host and port, the sentinel's config-epoch for it
 * into epoch; 0, or -EINVAL when a field is missing or malformed.
 */
static int
rconn_master_parse(const redisReply *rep, char *host, size_t hostlen,
		   int *port, long long *epoch)
{
	const char *ip = NULL, *pt = NULL, *ep = NULL;
	char *end;

	if (rep->type != REDIS_REPLY_ARRAY)
		return -EINVAL;
	for (size_t i = 0; i + 1 < rep->elements; i += 2) {
		const redisReply *k = rep->element[i], *v = rep->element[i + 1];

		if (k->type != REDIS_REPLY_STRING ||
		    v->type != REDIS_REPLY_STRING)
			continue;
		if (strcmp(k->str, "ip") == 0)
			ip = v->str;
		else if (strcmp(k->str, "port") == 0)
			pt = v->str;
		else if (strcmp(k->str, "config-epoch") == 0)
			ep = v->str;
	}
	if (!ip || !pt || !ep || rconn_copy(host, hostlen, ip) < 0)
		return -EINVAL;
	*port = atoi(pt);
	errno = 0;
	*epoch = strtoll(ep, &end, 10);
	if (*port <= 0 || *port > 65535 || errno || end == ep || *end ||
	    *epoch < 0)
		return -EINVAL;
	return 0;
}

static void
rconn_vote_init(struct rconn_vote *v, int n)
{
	memset(v, 0, sizeof(*v));
	v->n = n;
	v->best_epoch = -1;
}

static void
rconn_vote_answer(struct rconn_vote *v, const char *host, int port,
		  long long epoch)
{
	v->answered++;
	if (epoch > v->best_epoch) {
		snprintf(v->host, sizeof(v->host), "%s", host);
		v->port = port;
		v->best_epoch = epoch;
	}
}

static void
rconn_vote_fail(struct rconn_vote *v, int i, const char *why)
{
	v->failed++;
	v->last_i = i;
	snprintf(v->last_why, sizeof(v->last_why), "%s", why);
}

static int
rconn_vote_done(const struct rconn_vote *v)
{
	return v->answered >= v->n / 2 + 1 || v->answered + v->failed >= v->n;
}

/* Fills out[] from "host:port,..." (spaces around entries allowed);
 * the count, or -EINVAL. */
static int
rconn_sentinels_parse(const char *list, struct rconn_addr *out, int max)
{
	char tok[300];
	int n = 0;

	while (list && *list) {
		size_t len = strcspn(list, ",");
		const char *b = list, *e = list + len;

		while (b < e && (*b == ' ' || *b == '\t'))
			b++;
		while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (n == max || e == b || (size_t)(e - b) >= sizeof(tok))
			return -EINVAL;
		memcpy(tok, b, (size_t)(e - b));
		tok[e - b] = '\0';
		if (cfg_addr_split(tok, out[n].host, sizeof(out[n].host),
				   &out[n].port, RCONN_SENTINEL_PORT) != 0)
			return -EINVAL;
		n++;
		list += len;
		if (*list == ',' && !*++list)
			return -EINVAL;		/* a trailing comma */
	}
	return n;
}

int
rconn_sentinels_check(const char *list)
{
	struct rconn_addr *tmp = malloc(sizeof(*tmp) * RCONN_SENTINELS_MAX);
	int n;

	if (!tmp)
		return -ENOMEM;
	n = rconn_sentinels_parse(list, tmp, RCONN_SENTINELS_MAX);
	free(tmp);
	return n < 0 ? n : 0;
}

/* What log lines name: the address, or the master and where it is. */
static void
rconn_where_set(struct rconn *c)
{
	if (!c->nsentinels && c->host[0] == '/')
		snprintf(c->where, sizeof(c->where), "%s", c->host);
	else if (!c->nsentinels)
		snprintf(c->where, sizeof(c->where), "%s:%d", c->host, c->port);
	else if (c->host[0])
		snprintf(c->where, sizeof(c->where), "master %s at %s:%d",
			 c->master, c->host, c->port);
	else
		snprintf(c->where, sizeof(c->where), "master %s", c->master);
}

int
rconn_backoff_next(int cur_ms, int max_ms)
{
	int next = cur_ms > max_ms / 2 ? max_ms : cur_ms * 2;

	return next < RCONN_BACKOFF_MIN_MS ? RCONN_BACKOFF_MIN_MS : next;
}

/* Frees the questions still out to sentinels (gone: one hiredis is
 * freeing itself); their callbacks, run with NULL, find no question. */
static void
rconn_sentinels_close(struct rconn *c, const redisAsyncContext *gone)
{
	for (int i = 0; i < c->nsentinels; i++) {
		redisAsyncContext *sen = c->sen[i];

		c->sen[i] = NULL;
		if (sen && sen != gone)
			redisAsyncFree(sen);
	}
}

/* Which sentinel's question ac is; -1: none (any more). */
static int
rconn_sentinel_of(const struct rconn *c, const redisAsyncContext *ac)
{
	for (int i = 0; ac && i < c->nsentinels; i++)
		if (c->sen[i] == ac)
			return i;
	return -1;
}

/*
 * Forgets both connections and schedules the next attempt.  gone: a
 * context hiredis is freeing itself (not freed again here).  Pending
 * callbacks run with NULL from the frees, after the state is DOWN, so
 * a callback that sends again gets -EAGAIN; then the state callback.
 */
static void
rconn_drop(struct rconn *c, const redisAsyncContext *gone, const char *why)
{
	redisAsyncContext *ac = c->ac, *sub = c->sub;
	uint64_t now = uv_now(c->loop);
	int was_up = c->state == RCONN_UP;

	if (c->closing || c->state == RCONN_DOWN)
		return;
	c->ac = c->sub = NULL;
	c->state = RCONN_DOWN;
	c->failures++;
	c->state_ms = now;
	c->pending = 0;
	c->retry_ms = now + (uint64_t)c->backoff_ms;
	c->backoff_ms = rconn_backoff_next(c->backoff_ms, c->backoff_max_ms);
	if (was_up || !c->down_logged || strcmp(c->why, why) != 0) {
		log_warn(c->log_sys, "redis %s (%s): %s; retrying (back-off "
			 "up to %d ms)", c->where, c->name, why,
			 c->backoff_max_ms);
		c->down_logged = 1;
		snprintf(c->why, sizeof(c->why), "%s", why);
	} else {
		log_debug(c->log_sys, "redis %s (%s): %s", c->where,
			  c->name, why);
	}
	if (ac && ac != gone)
		redisAsyncFree(ac);
	if (sub && sub != gone)
		redisAsyncFree(sub);
	rconn_sentinels_close(c, gone);
	if (was_up && c->cb && !c->closing)
		c->cb(c->arg, 0);
}

/* The reason hiredis gives for a context that failed. */
static const char *
rconn_errstr(const redisAsyncContext *ac, const char *dflt)
{
	return ac->errstr[0] ? ac->errstr : dflt;
}

static int
rconn_live(const struct rconn *c, const redisAsyncContext *ac)
{
	return !c->closing && ac && (ac == c->ac || ac == c->sub ||
				      rconn_sentinel_of(c, ac) >= 0);
}

static void
rconn_maybe_up(struct rconn *c)
{
	if (c->state != RCONN_CONNECTING || !c->cmd_ok ||
	    (c->sub && c->sub_ok < c->nsubs))
		return;
	c->state = RCONN_UP;
	c->state_ms = c->role_ms = uv_now(c->loop);
	c->backoff_ms = RCONN_BACKOFF_MIN_MS;
	if (c->down_logged)
		log_notice(c->log_sys, "redis %s (%s): up", c->where, c->name);
	else
		log_info(c->log_sys, "redis %s (%s): connected", c->where,
			 c->name);
	c->down_logged = 0;
	c->why[0] = '\0';
	if (c->cb)
		c->cb(c->arg, 1);
}

/* Whether a ROLE reply says master; why says what it is otherwise.
 * A master's replicas (its third element: [ip, port, offset] each)
 * go to the server hook and, with c, to c->replicas. */
static int
rconn_role_master(struct rconn *c, const redisReply *rep, char *why,
		  size_t whylen)
{
	const char *role = rep->type == REDIS_REPLY_ARRAY && rep->elements &&
			   rep->element[0]->type == REDIS_REPLY_STRING ?
			   rep->element[0]->str : "?";
	const redisReply *rs;

	if (strcmp(role, "master") != 0) {
		snprintf(why, whylen, "ROLE is %s, not master", role);
		return 0;
	}
	if (c)
		c->nreplicas = 0;
	rs = rep->elements == 3 ? rep->element[2] : NULL;
	for (size_t i = 0; rs && rs->type == REDIS_REPLY_ARRAY &&
	     i < rs->elements; i++) {
		const redisReply *r = rs->element[i];
		struct rconn_addr *a;

		if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_STRING)
			continue;
		rconn_server_seen(r->element[0]->str, atoi(r->element[1]->str));
		if (!c || c->nreplicas == RCONN_REPLICAS_MAX ||
		    strlen(r->element[0]->str) >= sizeof(a->host))
			continue;
		a = &c->replicas[c->nreplicas++];
		strcpy(a->host, r->element[0]->str);
		a->port = atoi(r->element[1]->str);
	}
	return 1;
}

static void
rconn_on_hello(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rconn *c = ac->data;
	redisReply *rep = reply;
	int step = (int)(uintptr_t)priv;
	char why[160];

	if (!rconn_live(c, ac))
		return;
	if (!rep) {
		rconn_drop(c, ac, rconn_errstr(ac, "connection closed"));
		return;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		snprintf(why, sizeof(why), "%s refused: %s",
			 step == RCONN_STEP_AUTH ? "AUTH" :
			 step == RCONN_STEP_NAME ? "CLIENT SETNAME" : "ROLE",
			 rep->str);
		rconn_drop(c, NULL, why);
		return;
	}
	if (step == RCONN_STEP_ROLE && !rconn_role_master(c, rep, why,
							  sizeof(why))) {
		rconn_drop(c, NULL, why);
		return;
	}
	if (ac == c->ac &&
	    step == (c->nsentinels ? RCONN_STEP_ROLE : RCONN_STEP_NAME)) {
		c->cmd_ok = 1;
		rconn_maybe_up(c);
	}
}

/* The answer to a later ROLE (rconn_on_tick): the replicas now, or a
 * master no more. */
static void
rconn_on_role(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rconn *c = ac->data;
	const redisReply *rep = reply;
	char why[160];

	(void)priv;
	if (!rep || !rconn_live(c, ac) || rep->type == REDIS_REPLY_ERROR)
		return;		/* a failed link is reported on its own */
	if (!rconn_role_master(c, rep, why, sizeof(why)))
		rconn_drop(c, NULL, why);
}

static void
rconn_on_connect(const redisAsyncContext *ac, int status)
{
	struct rconn *c = ac->data;

	/* hiredis frees ac after a failed connect: only forget it. */
	if (status != REDIS_OK && rconn_live(c, ac))
		rconn_drop(c, ac, rconn_errstr(ac, "connect failed"));
}

static void
rconn_on_disconnect(const redisAsyncContext *ac, int status)
{
	struct rconn *c = ac->data;

	(void)status;
	if (rconn_live(c, ac))
		rconn_drop(c, ac, rconn_errstr(ac, "connection closed"));
}

/* Dials one connection and queues its AUTH, SETNAME and, for the
 * command connection of a master found by sentinels, ROLE; NULL on
 * failure (why says it). */
static redisAsyncContext *
rconn_dial(struct rconn *c, int role, char *why, size_t whylen)
{
	redisAsyncContext *ac = c->host[0] == '/' ?
				redisAsyncConnectUnix(c->host) :
				redisAsyncConnect(c->host, c->port);
	int rc = REDIS_OK;

	if (!ac || ac->err || rconn_ev_attach(ac, c->loop, c->flush_ms, c) < 0) {
		snprintf(why, whylen, "cannot dial: %s",
			 ac ? rconn_errstr(ac, "libuv") : "out of memory");
		goto fail;
	}
	ac->data = c;
	redisAsyncSetConnectCallback(ac, rconn_on_connect);
	redisAsyncSetDisconnectCallback(ac, rconn_on_disconnect);
	if (c->password[0] && c->user[0])
		rc = redisAsyncCommand(ac, rconn_on_hello,
				       (void *)(uintptr_t)RCONN_STEP_AUTH,
				       "AUTH %s %s", c->user, c->password);
	else if (c->password[0])
		rc = redisAsyncCommand(ac, rconn_on_hello,
				       (void *)(uintptr_t)RCONN_STEP_AUTH,
				       "AUTH %s", c->password);
	if (rc != REDIS_OK ||
	    redisAsyncCommand(ac, rconn_on_hello,
			      (void *)(uintptr_t)RCONN_STEP_NAME,
			      "CLIENT SETNAME %s", c->name) != REDIS_OK ||
	    (role && redisAsyncCommand(ac, rconn_on_hello,
				       (void *)(uintptr_t)RCONN_STEP_ROLE,
				       "ROLE") != REDIS_OK)) {
		snprintf(why, whylen, "cannot queue the handshake");
		goto fail;
	}
	return ac;
fail:
	/* Not yet c->ac: its callbacks, run by the free, ignore it. */
	if (ac)
		redisAsyncFree(ac);
	return NULL;
}

static void
rconn_on_message(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rconn_sub *s = priv;
	struct rconn *c = s->c;
	redisReply *rep = reply, *kind;

	if (!rconn_live(c, ac))
		return;
	if (!rep) {
		rconn_drop(c, ac, rconn_errstr(ac, "connection closed"));
		return;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
	    (kind = rep->element[0])->type != REDIS_REPLY_STRING)
		return;
	if (strcmp(kind->str, "subscribe") == 0) {
		c->sub_ok++;
		rconn_maybe_up(c);
	} else if (strcmp(kind->str, "message") == 0 &&
		   rep->element[2]->type == REDIS_REPLY_STRING) {
		s->fn(s->priv, s->channel, rep->element[2]->str,
		      rep->element[2]->len);
	}
}

static int
rconn_sub_send(struct rconn *c, struct rconn_sub *s)
{
	c->sub_ms = uv_now(c->loop);
	return redisAsyncCommand(c->sub, rconn_on_message, s, "SUBSCRIBE %s",
				 s->channel) == REDIS_OK ? 0 : -EIO;
}

/* Dials the subscription connection and queues every SUBSCRIBE. */
static int
rconn_sub_dial(struct rconn *c, char *why, size_t whylen)
{
	c->sub_ok = 0;
	c->sub = rconn_dial(c, 0, why, whylen);
	if (!c->sub)
		return -EIO;
	for (struct rconn_sub *s = c->subs; s; s = s->next) {
		if (rconn_sub_send(c, s) < 0) {
			snprintf(why, whylen, "cannot queue SUBSCRIBE");
			return -EIO;
		}
	}
	return 0;
}

static void
rconn_dial_master(struct rconn *c)
{
	char why[160];

	c->state = RCONN_CONNECTING;
	c->state_ms = uv_now(c->loop);
	c->cmd_ok = 0;
	c->ac = rconn_dial(c, c->nsentinels > 0, why, sizeof(why));
	if (!c->ac || (c->subs && rconn_sub_dial(c, why, sizeof(why)) < 0))
		rconn_drop(c, NULL, why);
}

/* ---- discovery through the sentinels */

/*
 * Decides once enough sentinels answered, or all of them did or
 * failed: the best answer is dialled (the questions still out are
 * dropped), or with none the attempt fails.
 */
static void
rconn_sentinels_settle(struct rconn *c)
{
	const struct rconn_addr *s;
	char all[320];

	if (c->state != RCONN_DISCOVERING || !rconn_vote_done(&c->vote))
		return;
	rconn_sentinels_close(c, NULL);
	if (c->vote.answered) {
		memcpy(c->host, c->vote.host, sizeof(c->host));
		c->port = c->vote.port;
		rconn_server_seen(c->host, c->port);
		rconn_where_set(c);
		rconn_dial_master(c);
		return;
	}
	s = &c->sentinels[c->vote.last_i];
	snprintf(all, sizeof(all), "no sentinel knows the master (last, "
		 "%s:%d: %s)", s->host, s->port, c->vote.last_why);
	rconn_drop(c, NULL, all);
}

/* Sentinel i failed (why).  gone: as for rconn_drop. */
static void
rconn_sentinel_failed(struct rconn *c, int i, const redisAsyncContext *gone,
		      const char *why)
{
	const struct rconn_addr *s = &c->sentinels[i];
	redisAsyncContext *sen = c->sen[i];

	c->sen[i] = NULL;
	if (sen && sen != gone)
		redisAsyncFree(sen);
	log_debug(c->log_sys, "redis %s (%s): sentinel %s:%d: %s", c->where,
		  c->name, s->host, s->port, why);
	rconn_vote_fail(&c->vote, i, why);
	rconn_sentinels_settle(c);
}

static void
rconn_on_sentinel(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rconn *c = ac->data;
	redisReply *rep = reply;
	char why[160], host[sizeof(c->host)];
	long long epoch;
	int i, port;

	if (c->closing || (i = rconn_sentinel_of(c, ac)) < 0)
		return;
	if (!rep) {
		rconn_sentinel_failed(c, i, ac, rconn_errstr(ac, "connection "
							    "closed"));
		return;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		snprintf(why, sizeof(why), "refused: %s", rep->str);
		rconn_sentinel_failed(c, i, NULL, why);
		return;
	}
	if ((int)(uintptr_t)priv == RCONN_STEP_AUTH)
		return;
	if (rconn_master_parse(rep, host, sizeof(host), &port, &epoch) < 0) {
		snprintf(why, sizeof(why), "no address for master %s",
			 c->master);
		rconn_sentinel_failed(c, i, NULL, why);
		return;
	}
	c->sen[i] = NULL;
	redisAsyncFree(ac);	/* deferred by hiredis past this callback */
	rconn_vote_answer(&c->vote, host, port, epoch);
	rconn_sentinels_settle(c);
}

static void
rconn_on_sentinel_connect(const redisAsyncContext *ac, int status)
{
	struct rconn *c = ac->data;
	int i = c->closing ? -1 : rconn_sentinel_of(c, ac);

	if (status != REDIS_OK && i >= 0)
		rconn_sentinel_failed(c, i, ac, rconn_errstr(ac, "connect "
							     "failed"));
}

static void
rconn_on_sentinel_disconnect(const redisAsyncContext *ac, int status)
{
	struct rconn *c = ac->data;
	int i = c->closing ? -1 : rconn_sentinel_of(c, ac);

	(void)status;
	if (i >= 0)
		rconn_sentinel_failed(c, i, ac, rconn_errstr(ac, "connection "
							     "closed"));
}

/* Dials sentinel i and queues [AUTH] and the question; 0, or -1 when
 * that failed at once (counted, not yet settled). */
static int
rconn_ask(struct rconn *c, int i)
{
	const struct rconn_addr *s = &c->sentinels[i];
	redisAsyncContext *ac = redisAsyncConnect(s->host, s->port);
	const char *why = "cannot queue the question";

	if (!ac || ac->err || rconn_ev_attach(ac, c->loop, 0, NULL) < 0) {
		if (ac)
			redisAsyncFree(ac);
		why = "cannot dial";
		goto fail;
	}
	ac->data = c;
	c->sen[i] = ac;
	redisAsyncSetConnectCallback(ac, rconn_on_sentinel_connect);
	redisAsyncSetDisconnectCallback(ac, rconn_on_sentinel_disconnect);
	if ((c->sentinel_password[0] &&
	     redisAsyncCommand(ac, rconn_on_sentinel,
			       (void *)(uintptr_t)RCONN_STEP_AUTH, "AUTH %s",
			       c->sentinel_password) != REDIS_OK) ||
	    redisAsyncCommand(ac, rconn_on_sentinel, NULL,
			      "SENTINEL MASTER %s", c->master) != REDIS_OK) {
		c->sen[i] = NULL;
		redisAsyncFree(ac);
		goto fail;
	}
	return 0;
fail:
	rconn_vote_fail(&c->vote, i, why);
	return -1;
}

static void
rconn_connect(struct rconn *c)
{
	/* The loop's clock may be stale (rconn_new after a blocking
	 * start-up step, before the loop first runs): the attempt's
	 * timeout counts from now. */
	uv_update_time(c->loop);
	if (!c->nsentinels) {
		rconn_dial_master(c);
		return;
	}
	c->state = RCONN_DISCOVERING;
	c->state_ms = uv_now(c->loop);
	rconn_vote_init(&c->vote, c->nsentinels);
	/* All at once: a sentinel whose host is gone (no RST) costs its
	 * timeout only when the others cannot make a majority. */
	for (int i = 0; i < c->nsentinels; i++)
		(void)rconn_ask(c, i);
	rconn_sentinels_settle(c);
}

static void
rconn_on_tick(uv_timer_t *t)
{
	struct rconn *c = t->data;
	uint64_t now = uv_now(c->loop);
	char why[96];

	switch (c->state) {
	case RCONN_DOWN:
		if (now >= c->retry_ms)
			rconn_connect(c);
		break;
	case RCONN_DISCOVERING:
		if (now - c->state_ms < (uint64_t)c->timeout_ms)
			break;
		snprintf(why, sizeof(why), "no answer within %d ms",
			 c->timeout_ms);
		for (int i = 0; i < c->nsentinels &&
		     c->state == RCONN_DISCOVERING; i++)
			if (c->sen[i])
				rconn_sentinel_failed(c, i, NULL, why);
		break;
	case RCONN_CONNECTING:
		if (now - c->state_ms >= (uint64_t)c->timeout_ms) {
			snprintf(why, sizeof(why), "no answer to the handshake "
				 "within %d ms", c->timeout_ms);
			rconn_drop(c, NULL, why);
		}
		break;
	case RCONN_UP:
		if (c->pending > 0 &&
		    now - c->progress_ms >= (uint64_t)c->timeout_ms) {
			snprintf(why, sizeof(why), "a command got no reply "
				 "within %d ms", c->timeout_ms);
			rconn_drop(c, NULL, why);
		} else if (c->sub && c->sub_ok < c->nsubs &&
			   now - c->sub_ms >= (uint64_t)c->timeout_ms) {
			/* a subscription added while up, unconfirmed */
			snprintf(why, sizeof(why), "no answer to SUBSCRIBE "
				 "within %d ms", c->timeout_ms);
			rconn_drop(c, NULL, why);
		} else if (c->nsentinels && now - c->role_ms >= RCONN_ROLE_MS) {
			c->role_ms = now;
			(void)redisAsyncCommand(c->ac, rconn_on_role, NULL,
						"ROLE");
		}
		break;
	}
}

int
rconn_new(struct rconn **out, uv_loop_t *loop, const struct rconn_config *cfg,
	  rconn_state_cb cb, void *arg)
{
	struct rconn *c;
	struct sigaction sa;
	int rc, tick;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	rc = c->nsentinels = rconn_sentinels_parse(cfg->sentinels, c->sentinels,
						   RCONN_SENTINELS_MAX);
	if (rc < 0 || (!c->nsentinels &&
		       (!cfg->host || !cfg->host[0] ||
			(cfg->host[0] != '/' &&
			 (cfg->port <= 0 || cfg->port > 65535))))) {
		rc = -EINVAL;
		goto fail;
	}
	if ((!c->nsentinels &&
	     (rc = rconn_copy(c->host, sizeof(c->host), cfg->host)) < 0) ||
	    (rc = rconn_copy(c->master, sizeof(c->master),
			     cfg->master && cfg->master[0] ? cfg->master :
			     RCONN_MASTER_DEFAULT)) < 0 ||
	    (rc = rconn_copy(c->sentinel_password,
			     sizeof(c->sentinel_password),
			     cfg->sentinel_password)) < 0 ||
	    (rc = rconn_copy(c->user, sizeof(c->user), cfg->user)) < 0 ||
	    (rc = rconn_copy(c->password, sizeof(c->password),
			     cfg->password)) < 0 ||
	    (rc = rconn_copy(c->name, sizeof(c->name),
			     cfg->name && cfg->name[0] ? cfg->name :
			     "sipmesh")) < 0)
		goto fail;
	for (int i = 0; i < c->nsentinels; i++)
		rconn_server_seen(c->sentinels[i].host, c->sentinels[i].port);
	c->loop = loop;
	c->port = c->nsentinels ? 0 : cfg->port;
	rconn_where_set(c);
	c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 1000;
	c->backoff_max_ms = cfg->backoff_max_ms >= RCONN_BACKOFF_MIN_MS ?
			    cfg->backoff_max_ms : RCONN_BACKOFF_MIN_MS;
	c->max_pending = cfg->max_pending > 0 ? cfg->max_pending : 4096;
	c->flush_ms = cfg->flush_ms > 0 ? cfg->flush_ms : 0;
	c->log_sys = cfg->log_sys >= 0 && cfg->log_sys < LOG_SYS__COUNT ?
		     cfg->log_sys : LOG_SYS_MAIN;
	c->backoff_ms = RCONN_BACKOFF_MIN_MS;
	c->cb = cb;
	c->arg = arg;
	c->on_flush = cfg->on_flush;
	rc = uv_timer_init(loop, &c->tick);
	if (rc < 0)
		goto fail;
	c->tick.data = c;
	tick = c->timeout_ms / 4;
	tick = tick < 10 ? 10 : tick > 100 ? 100 : tick;
	uv_timer_start(&c->tick, rconn_on_tick, (uint64_t)tick, (uint64_t)tick);
	uv_unref((uv_handle_t *)&c->tick);
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
	rconn_connect(c);
	*out = c;
	return 0;
fail:
	free(c);
	return rc;
}

int
rconn_up(const struct rconn *c)
{
	return c && c->state == RCONN_UP;
}

const struct prom_hist *
rconn_latency(void)
{
	return &rconn_lat;
}

void
rconn_flush_now(struct rconn *c)
{
	struct rconn_ev *e;

	if (c->state != RCONN_UP || !c->ac)
		return;
	e = c->ac->ev.data;
	if (e->flush_ms > 0 && uv_is_active((uv_handle_t *)&e->linger))
		uv_prepare_start(&e->flush, rconn_ev_on_flush);
}

int
rconn_pending(const struct rconn *c)
{
	return c ? c->pending : 0;
}

unsigned long
rconn_failures(const struct rconn *c)
{
	return c ? c->failures : 0;
}

int
rconn_replica(const struct rconn *c, int i, char *host, size_t hostlen,
	      int *port)
{
	if (i < 0 || i >= c->nreplicas)
		return c->nreplicas;
	snprintf(host, hostlen, "%s", c->replicas[i].host);
	*port = c->replicas[i].port;
	return c->nreplicas;
}

void *
rconn_arg(const redisAsyncContext *ac)
{
	return ((struct rconn *)ac->data)->arg;
}

static void
rconn_on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rconn_cmd *k = priv;
	struct rconn *c = k->c;
	redisReply *rep = reply;

	if (ac == c->ac && !c->closing) {
		if (!reply) {
			/* hiredis is failing ac: DOWN before any NULL. */
			rconn_drop(c, ac, rconn_errstr(ac, "connection closed"));
		} else if (c->nsentinels && rep->type == REDIS_REPLY_ERROR &&
			   strncmp(rep->str, "READONLY", 8) == 0) {
			/* demoted under an open link: find the master; the
			 * caller still gets its refusal */
			rconn_drop(c, NULL, "a write refused (READONLY): "
				   "no longer the master");
		} else {
			c->pending--;
			c->progress_ms = uv_now(c->loop);
			prom_hist_observe(&rconn_lat, uv_hrtime() - k->sent_ns);
		}
	}
	if (k->fn)
		k->fn(ac, reply, k->priv);
	free(k);
}

/*
 * Commands are formatted here rather than by hiredis's
 * redisvFormatCommand, which builds each argument as an sds string of
 * its own (numbers through vsnprintf) and then copies them all: about
 * 9,500 instructions a command under callgrind, a third of a core's
 * work per REGISTER.  The format language is hiredis's for what
 * sipmesh writes: arguments split at spaces; %s (a C string), %b (a
 * pointer and a size_t length), %d %u %ld %lu %lld %llu %zu, and %%.
 * Anything else returns -ENOTSUP and the caller hands the format to
 * hiredis.  The scratch buffers are the process's (one loop each),
 * grown as needed and kept.
 */
#define RCONN_FMT_ARGS 64

struct rconn_buf {
	char *p;
	size_t len, cap;
};

static struct rconn_buf rconn_args, rconn_cmd_buf;

/* Room for n more bytes in b: 0 or -ENOMEM. */
static int
rconn_buf_reserve(struct rconn_buf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 1024;
	char *p;

	if (b->len + n <= b->cap)
		return 0;
	while (cap < b->len + n)
		cap *= 2;
	p = realloc(b->p, cap);
	if (p == NULL)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int
rconn_buf_put(struct rconn_buf *b, const void *src, size_t n)
{
	if (rconn_buf_reserve(b, n) < 0)
		return -ENOMEM;
	memcpy(b->p + b->len, src, n);
	b->len += n;
	return 0;
}

/* Writes v in decimal at d (room for 21), with a leading '-' when neg;
 * returns the length. */
static size_t
rconn_num_str(char *d, unsigned long long v, int neg)
{
	char t[24];
	int i = (int)sizeof(t);

	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if (neg)
		t[--i] = '-';
	memcpy(d, t + i, sizeof(t) - (size_t)i);
	return sizeof(t) - (size_t)i;
}

static int
rconn_buf_num(struct rconn_buf *b, unsigned long long v, int neg)
{
	if (rconn_buf_reserve(b, 24) < 0)
		return -ENOMEM;
	b->len += rconn_num_str(b->p + b->len, v, neg);
	return 0;
}

static int
rconn_buf_signed(struct rconn_buf *b, long long v)
{
	return rconn_buf_num(b, v < 0 ? 0ULL - (unsigned long long)v :
			     (unsigned long long)v, v < 0);
}

/* Formats fmt into RESP (one command) in rconn_cmd_buf: 0, -ENOTSUP for
 * a conversion it does not know, -E2BIG, -ENOMEM. */
static int
rconn_format(const char *fmt, va_list ap)
{
	struct rconn_buf *a = &rconn_args, *o = &rconn_cmd_buf;
	size_t start[RCONN_FMT_ARGS], len[RCONN_FMT_ARGS];
	int argc = 0, in_arg = 0, rc = 0;
	const char *s;
	char *d;

	a->len = o->len = 0;
	for (const char *p = fmt; *p && rc == 0; p++) {
		if (*p == ' ') {
			if (in_arg)
				len[argc - 1] = a->len - start[argc - 1];
			in_arg = 0;
			continue;
		}
		if (!in_arg) {
			if (argc == RCONN_FMT_ARGS)
				return -E2BIG;
			start[argc++] = a->len;
			in_arg = 1;
		}
		if (*p != '%') {	/* the literal run up to the next one */
			size_t n = strcspn(p, " %");

			rc = rconn_buf_put(a, p, n);
			p += n - 1;
			continue;
		}
		switch (*++p) {
		case 's':
			s = va_arg(ap, const char *);
			rc = rconn_buf_put(a, s, strlen(s));
			break;
		case 'b':
			s = va_arg(ap, const char *);
			rc = rconn_buf_put(a, s, va_arg(ap, size_t));
			break;
		case '%':
			rc = rconn_buf_put(a, "%", 1);
			break;
		case 'd':
			rc = rconn_buf_signed(a, va_arg(ap, int));
			break;
		case 'u':
			rc = rconn_buf_num(a, va_arg(ap, unsigned), 0);
			break;
		case 'z':
			if (*++p != 'u')
				return -ENOTSUP;
			rc = rconn_buf_num(a, va_arg(ap, size_t), 0);
			break;
		case 'l':
			if (p[1] == 'l') {
				p += 2;
				if (*p == 'd')
					rc = rconn_buf_signed(a, va_arg(ap, long long));
				else if (*p == 'u')
					rc = rconn_buf_num(a, va_arg(ap, unsigned long long), 0);
				else
					return -ENOTSUP;
			} else {
				p++;
				if (*p == 'd')
					rc = rconn_buf_signed(a, va_arg(ap, long));
				else if (*p == 'u')
					rc = rconn_buf_num(a, va_arg(ap, unsigned long), 0);
				else
					return -ENOTSUP;
			}
			break;
		default:
			return -ENOTSUP;
		}
	}
	if (rc < 0)
		return rc;
	if (in_arg)
		len[argc - 1] = a->len - start[argc - 1];
	if (argc == 0)
		return -EINVAL;
	/* "*argc\r\n", then "$len\r\n<arg>\r\n" each: room for all at
	 * once, numbers at their longest */
	if (rconn_buf_reserve(o, a->len + (size_t)(argc + 1) * 26) < 0)
		return -ENOMEM;
	d = o->p;
	*d++ = '*';
	d += rconn_num_str(d, (unsigned)argc, 0);
	*d++ = '\r';
	*d++ = '\n';
	for (int i = 0; i < argc; i++) {
		*d++ = '$';
		d += rconn_num_str(d, len[i], 0);
		*d++ = '\r';
		*d++ = '\n';
		memcpy(d, a->p + start[i], len[i]);
		d += len[i];
		*d++ = '\r';
		*d++ = '\n';
	}
	o->len = (size_t)(d - o->p);
	return 0;
}

int
rconn_vcommand(struct rconn *c, redisCallbackFn *fn, void *priv,
	       const char *fmt, va_list ap)
{
	struct rconn_cmd *k;
	va_list aq;
	int rc;

	if (c->state != RCONN_UP || c->pending >= c->max_pending)
		return -EAGAIN;
	k = malloc(sizeof(*k));
	if (!k)
		return -EAGAIN;
	k->c = c;
	k->fn = fn;
	k->priv = priv;
	k->sent_ns = uv_hrtime();
	va_copy(aq, ap);
	rc = rconn_format(fmt, aq);
	va_end(aq);
	if ((rc == 0 ? redisAsyncFormattedCommand(c->ac, rconn_on_reply, k,
						  rconn_cmd_buf.p,
						  rconn_cmd_buf.len) :
		       redisvAsyncCommand(c->ac, rconn_on_reply, k, fmt,
					  ap)) != REDIS_OK) {
		free(k);
		return -EAGAIN;
	}
	if (c->pending++ == 0)
		c->progress_ms = uv_now(c->loop);
	return 0;
}

void
rconn_retry_now(struct rconn *c)
{
	if (c && !c->closing && c->state == RCONN_DOWN)
		rconn_connect(c);
}

int
rconn_command(struct rconn *c, redisCallbackFn *fn, void *priv,
	      const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = rconn_vcommand(c, fn, priv, fmt, ap);
	va_end(ap);
	return rc;
}

int
rconn_subscribe(struct rconn *c, const char *channel, rconn_message_cb fn,
		void *priv)
{
	size_t len = strlen(channel) + 1;
	struct rconn_sub *s = malloc(sizeof(*s) + len);
	char why[160];

	if (!s)
		return -ENOMEM;
	s->c = c;
	s->fn = fn;
	s->priv = priv;
	memcpy(s->channel, channel, len);
	s->next = c->subs;
	c->subs = s;
	c->nsubs++;
	if (c->state == RCONN_DOWN || c->state == RCONN_DISCOVERING)
		return 0;	/* the (next) dial of the master subscribes */
	if (c->sub) {
		if (rconn_sub_send(c, s) < 0)
			rconn_drop(c, NULL, "cannot queue SUBSCRIBE");
	} else if (rconn_sub_dial(c, why, sizeof(why)) < 0) {
		rconn_drop(c, NULL, why);
	}
	return 0;
}

void
rconn_fail(struct rconn *c, const char *why)
{
	rconn_drop(c, NULL, why);
}

static void
rconn_on_closed(uv_handle_t *h)
{
	struct rconn *c = h->data;

	while (c->subs) {
		struct rconn_sub *s = c->subs;

		c->subs = s->next;
		free(s);
	}
	free(c);
}

void
rconn_free(struct rconn *c)
{
	redisAsyncContext *ac, *sub;

	if (!c || c->closing)
		return;
	ac = c->ac;
	sub = c->sub;
	c->ac = c->sub = NULL;
	rconn_sentinels_close(c, NULL);
	c->closing = 1;
	c->pending = 0;
	/* What flush_ms held back goes now, as far as the socket takes
	 * it without blocking (the context's own writer: no callback, no
	 * free on an error); the callbacks still see NULL replies. */
	if (ac && (ac->c.flags & REDIS_CONNECTED)) {
		int done;

		(void)redisBufferWrite(&ac->c, &done);
	}
	if (ac)
		redisAsyncFree(ac);
	if (sub)
		redisAsyncFree(sub);
	uv_close((uv_handle_t *)&c->tick, rconn_on_closed);
}

int
rconn_config_cfg(struct rconn_config *rc, char *host, size_t hostlen,
		 const struct cfg *cfg, const char *name, int log_sys)
{
	memset(rc, 0, sizeof(*rc));
	if (!cfg->redis[0] && !cfg->redis_sentinels[0])
		return -ENOENT;
	if (cfg->redis_sentinels[0] &&
	    rconn_sentinels_check(cfg->redis_sentinels) != 0)
		return -EINVAL;
	host[0] = '\0';
	if (cfg->redis[0] &&
	    cfg_redis_split(cfg->redis, host, hostlen, &rc->port) != 0)
		return -EINVAL;
	rc->host = host;
	rc->sentinels = cfg->redis_sentinels;
	rc->master = cfg->redis_master;
	rc->sentinel_password = cfg->redis_sentinel_password;
	rc->user = cfg->redis_user;
	rc->password = cfg->redis_password;
	rc->name = name;
	rc->timeout_ms = cfg->redis_timeout_ms;
	rc->backoff_max_ms = cfg->redis_backoff_max_ms;
	rc->max_pending = cfg->redis_max_pending;
	rc->log_sys = log_sys;
	return 0;
}

/* One blocking handshake command; 0, or -EIO with why in err. */
static int
rconn_sync_step(redisContext *r, char *err, size_t errlen, const char *what,
		redisReply *rep)
{
	int ok = rep && rep->type != REDIS_REPLY_ERROR;

	if (!ok)
		snprintf(err, errlen, "%s refused: %s", what,
			 rep ? rep->str : r->errstr[0] ? r->errstr :
			 "no reply");
	if (rep)
		freeReplyObject(rep);
	return ok ? 0 : -EIO;
}

/* A blocking connect with timeout_ms on the connect and every command;
 * NULL with the reason in err. */
static redisContext *
rconn_sync_connect(const char *host, int port, int ms, char *err,
		   size_t errlen)
{
	struct timeval tv = { ms / 1000, ms % 1000 * 1000 };
	redisContext *r = host[0] == '/' ?
			  redisConnectUnixWithTimeout(host, tv) :
			  redisConnectWithTimeout(host, port, tv);

	if (!r || r->err) {
		snprintf(err, errlen, "%s", r ? r->errstr : "out of memory");
		goto fail;
	}
	if (redisSetTimeout(r, tv) != REDIS_OK) {
		snprintf(err, errlen, "cannot set the timeout");
		goto fail;
	}
	return r;
fail:
	if (r)
		redisFree(r);
	return NULL;
}

/* The handshake of rconn_dial, blocking; role: check ROLE too. */
static redisContext *
rconn_sync_dial(const struct rconn_config *cfg, const char *host, int port,
		int role, char *err, size_t errlen)
{
	int ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 1000;
	redisContext *r = rconn_sync_connect(host, port, ms, err, errlen);
	const char *pw = cfg->password ? cfg->password : "";
	redisReply *rep;

	if (!r)
		goto fail;
	if (pw[0] && cfg->user && cfg->user[0] &&
	    rconn_sync_step(r, err, errlen, "AUTH",
			    redisCommand(r, "AUTH %s %s", cfg->user, pw)) < 0)
		goto fail;
	if (pw[0] && !(cfg->user && cfg->user[0]) &&
	    rconn_sync_step(r, err, errlen, "AUTH",
			    redisCommand(r, "AUTH %s", pw)) < 0)
		goto fail;
	if (rconn_sync_step(r, err, errlen, "CLIENT SETNAME",
			    redisCommand(r, "CLIENT SETNAME %s",
					 cfg->name && cfg->name[0] ?
					 cfg->name : "sipmesh")) < 0)
		goto fail;
	if (role) {
		int master = 0;

		rep = redisCommand(r, "ROLE");
		if (!rep || rep->type == REDIS_REPLY_ERROR)
			snprintf(err, errlen, "ROLE refused: %s",
				 rep ? rep->str : r->errstr);
		else
			master = rconn_role_master(NULL, rep, err, errlen);
		if (rep)
			freeReplyObject(rep);
		if (!master)
			goto fail;
	}
	return r;
fail:
	if (r)
		redisFree(r);
	return NULL;
}

/* One sentinel's question in rconn_sync_discover: a non-blocking
 * socket, the question in RESP, hiredis's reader for the answers. */
struct rconn_sync_q {
	int fd;			/* -1: answered or failed */
	int connected;
	char *out;		/* [AUTH] and SENTINEL MASTER */
	size_t outlen, sent;
	int replies;		/* still to come */
	redisReader *rd;
};

static void
rconn_sync_q_close(struct rconn_sync_q *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	free(q->out);
	q->out = NULL;
	if (q->rd)
		redisReaderFree(q->rd);
	q->rd = NULL;
}

/* Dials s and formats the question; 0, or -EIO with why. */
static int
rconn_sync_q_open(struct rconn_sync_q *q, const struct rconn_config *cfg,
		  const struct rconn_addr *s, const char *master, char *why,
		  size_t whylen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	char port[8], *a = NULL, *b = NULL;
	int la = 0, lb, rc;

	memset(q, 0, sizeof(*q));
	q->fd = -1;
	snprintf(port, sizeof(port), "%d", s->port);
	if ((rc = getaddrinfo(s->host, port, &hints, &ai)) != 0) {
		snprintf(why, whylen, "%s", gai_strerror(rc));
		return -EIO;
	}
	q->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK |
		       SOCK_CLOEXEC, 0);
	if (q->fd < 0 || (connect(q->fd, ai->ai_addr, ai->ai_addrlen) < 0 &&
			  errno != EINPROGRESS)) {
		snprintf(why, whylen, "%s", strerror(errno));
		goto fail;
	}
	if (cfg->sentinel_password && cfg->sentinel_password[0] &&
	    (la = redisFormatCommand(&a, "AUTH %s",
				     cfg->sentinel_password)) < 0)
		goto nomem;
	lb = redisFormatCommand(&b, "SENTINEL MASTER %s", master);
	q->rd = redisReaderCreate();
	q->out = lb < 0 ? NULL : malloc((size_t)la + (size_t)lb);
	if (!q->rd || !q->out)
		goto nomem;
	if (la)
		memcpy(q->out, a, (size_t)la);
	memcpy(q->out + la, b, (size_t)lb);
	q->outlen = (size_t)la + (size_t)lb;
	q->replies = la ? 2 : 1;
	redisFreeCommand(a);
	redisFreeCommand(b);
	freeaddrinfo(ai);
	return 0;
nomem:
	snprintf(why, whylen, "out of memory");
fail:
	redisFreeCommand(a);
	redisFreeCommand(b);
	freeaddrinfo(ai);
	rconn_sync_q_close(q);
	return -EIO;
}

/*
 * q's socket is ready (revents): connects, writes the question, reads
 * the answers.  Returns 1 with the master's address once answered, 0
 * while waiting, -EIO with why when that sentinel failed.
 */
static int
rconn_sync_q_step(struct rconn_sync_q *q, short revents, char *host,
		  size_t hostlen, int *port, long long *epoch, char *why,
		  size_t whylen)
{
	char buf[4096];
	void *rep;
	ssize_t n;
	int e = 0, rc = 0;
	socklen_t el = sizeof(e);

	if (!q->connected && revents) {
		if (getsockopt(q->fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
			e = errno;
		if (e) {
			snprintf(why, whylen, "%s", strerror(e));
			return -EIO;
		}
		q->connected = 1;
	}
	if (q->connected && q->sent < q->outlen) {
		n = send(q->fd, q->out + q->sent, q->outlen - q->sent,
			 MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			snprintf(why, whylen, "%s", strerror(errno));
			return -EIO;
		}
		q->sent += n > 0 ? (size_t)n : 0;
	}
	if (!(revents & (POLLIN | POLLHUP | POLLERR)))
		return 0;
	n = recv(q->fd, buf, sizeof(buf), 0);
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		snprintf(why, whylen, "%s", n ? strerror(errno) :
			 "connection closed");
		return -EIO;
	}
	if (redisReaderFeed(q->rd, buf, (size_t)n) != REDIS_OK)
		goto bad;
	while (q->replies && rc == 0) {
		const redisReply *r;

		if (redisReaderGetReply(q->rd, &rep) != REDIS_OK)
			goto bad;
		if (!rep)
			break;
		r = rep;
		q->replies--;
		if (r->type == REDIS_REPLY_ERROR) {
			snprintf(why, whylen, "refused: %s", r->str);
			rc = -EIO;
		} else if (q->replies == 0) {
			rc = rconn_master_parse(r, host, hostlen, port,
						epoch) < 0 ? -EIO : 1;
			if (rc < 0)
				snprintf(why, whylen, "no address for the "
					 "master");
		}
		freeReplyObject(rep);
	}
	return rc;
bad:
	snprintf(why, whylen, "a reply that is not RESP");
	return -EIO;
}

/*
 * The master's address from the sentinels, as rconn_sentinels_settle
 * takes it (struct rconn_vote): every sentinel asked at once, without
 * a loop: non-blocking sockets and poll(2); a sentinel silent for
 * timeout_ms counts as failed.  Returns 0 with v->host and v->port, or
 * -EIO with err.
 */
static int
rconn_sync_discover(const struct rconn_config *cfg,
		    const struct rconn_addr *sen, int n, const char *master,
		    struct rconn_vote *v, char *err, size_t errlen)
{
	struct rconn_sync_q q[RCONN_SENTINELS_MAX];
	struct pollfd pfd[RCONN_SENTINELS_MAX];
	int idx[RCONN_SENTINELS_MAX];
	int ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 1000;
	int port, rc;
	long long epoch;
	char host[256], why[160];
	struct timespec t0, t;

	rconn_vote_init(v, n);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n; i++)
		if (rconn_sync_q_open(&q[i], cfg, &sen[i], master, why,
				      sizeof(why)) < 0)
			rconn_vote_fail(v, i, why);
	while (!rconn_vote_done(v)) {
		int m = 0, wait;

		clock_gettime(CLOCK_MONOTONIC, &t);
		wait = ms - (int)((t.tv_sec - t0.tv_sec) * 1000 +
				  (t.tv_nsec - t0.tv_nsec) / 1000000);
		for (int i = 0; i < n; i++) {
			if (q[i].fd < 0)
				continue;
			pfd[m] = (struct pollfd){ .fd = q[i].fd,
				.events = POLLIN | (q[i].sent < q[i].outlen ?
						    POLLOUT : 0) };
			idx[m++] = i;
		}
		if (wait <= 0 || (poll(pfd, (nfds_t)m, wait) < 0 &&
				  errno != EINTR)) {
			if (wait <= 0)
				snprintf(why, sizeof(why), "no answer within "
					 "%d ms", ms);
			else
				snprintf(why, sizeof(why), "poll: %s",
					 strerror(errno));
			for (int k = 0; k < m; k++)
				rconn_vote_fail(v, idx[k], why);
			break;
		}
		for (int k = 0; k < m; k++) {
			int i = idx[k];

			if (!pfd[k].revents)
				continue;
			rc = rconn_sync_q_step(&q[i], pfd[k].revents, host,
					       sizeof(host), &port, &epoch,
					       why, sizeof(why));
			if (rc == 0)
				continue;
			rconn_sync_q_close(&q[i]);
			if (rc < 0)
				rconn_vote_fail(v, i, why);
			else
				rconn_vote_answer(v, host, port, epoch);
		}
	}
	for (int i = 0; i < n; i++)
		rconn_sync_q_close(&q[i]);
	if (v->answered)
		return 0;
	snprintf(err, errlen, "sentinel %s:%d: %s", sen[v->last_i].host,
		 sen[v->last_i].port, v->last_why);
	return -EIO;
}

redisContext *
rconn_connect_sync(const struct rconn_config *cfg, char *err, size_t errlen)
{
	struct rconn_addr *sen;
	const char *master = cfg->master && cfg->master[0] ? cfg->master :
			     RCONN_MASTER_DEFAULT;
	redisContext *r = NULL;
	struct rconn_vote v;
	char why[200];
	int n;

	if (!cfg->sentinels || !cfg->sentinels[0])
		return rconn_sync_dial(cfg, cfg->host, cfg->port, 0, err,
				       errlen);
	sen = malloc(sizeof(*sen) * RCONN_SENTINELS_MAX);
	if (!sen) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	n = rconn_sentinels_parse(cfg->sentinels, sen, RCONN_SENTINELS_MAX);
	if (n <= 0)
		snprintf(err, errlen, "sentinels: not host:port,...");
	for (int i = 0; i < n; i++)
		rconn_server_seen(sen[i].host, sen[i].port);
	if (n > 0 && rconn_sync_discover(cfg, sen, n, master, &v, err,
					 errlen) == 0) {
		rconn_server_seen(v.host, v.port);
		r = rconn_sync_dial(cfg, v.host, v.port, 1, why, sizeof(why));
		if (!r)
			snprintf(err, errlen, "master %s at %s:%d: %s", master,
				 v.host, v.port, why);
	}
	free(sen);
	return r;
}
