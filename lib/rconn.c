/*
 * rconn.c - one asynchronous Redis link (rconn.h): a hiredis async
 * context on the process's libuv loop for commands, and a second one
 * for subscriptions when there are any.
 *
 * States: DOWN (waiting for the next attempt), CONNECTING (dialled,
 * handshake not answered), UP.  The handshake is pipelined on each
 * connection: [AUTH [user] password], CLIENT SETNAME name, and on the
 * subscription connection SUBSCRIBE of every channel; the link is UP
 * when the command connection's SETNAME and every SUBSCRIBE answered.
 * An error reply in the handshake (WRONGPASS, NOAUTH) fails the
 * attempt like a refused connect: the link stays down and says why.
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
#include <hiredis/adapters/libuv.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum rconn_state { RCONN_DOWN = 0, RCONN_CONNECTING, RCONN_UP };

/* Which handshake reply a callback gets. */
enum rconn_step { RCONN_STEP_AUTH = 1, RCONN_STEP_NAME };

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
};

struct rconn {
	uv_loop_t *loop;
	char host[256];
	int port;
	char user[128];
	char password[256];
	char name[128];
	int timeout_ms, backoff_max_ms, max_pending, log_sys;
	rconn_state_cb cb;
	void *arg;

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
	uint64_t retry_ms;		/* next attempt, while DOWN */
	int backoff_ms;
	int down_logged;		/* a failure was logged since UP */
	unsigned long failures;
	char why[160];			/* the reason logged last */
	int closing;
	uv_timer_t tick;
};

static void rconn_connect(struct rconn *c);

static int
rconn_copy(char *dst, size_t cap, const char *src)
{
	return snprintf(dst, cap, "%s", src ? src : "") >= (int)cap ? -E2BIG : 0;
}

int
rconn_backoff_next(int cur_ms, int max_ms)
{
	int next = cur_ms > max_ms / 2 ? max_ms : cur_ms * 2;

	return next < RCONN_BACKOFF_MIN_MS ? RCONN_BACKOFF_MIN_MS : next;
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
		log_warn(c->log_sys, "redis %s:%d (%s): %s; retrying (back-off "
			 "up to %d ms)", c->host, c->port, c->name, why,
			 c->backoff_max_ms);
		c->down_logged = 1;
		snprintf(c->why, sizeof(c->why), "%s", why);
	} else {
		log_debug(c->log_sys, "redis %s:%d (%s): %s", c->host, c->port,
			  c->name, why);
	}
	if (ac && ac != gone)
		redisAsyncFree(ac);
	if (sub && sub != gone)
		redisAsyncFree(sub);
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
	return !c->closing && ac && (ac == c->ac || ac == c->sub);
}

static void
rconn_maybe_up(struct rconn *c)
{
	if (c->state != RCONN_CONNECTING || !c->cmd_ok ||
	    (c->sub && c->sub_ok < c->nsubs))
		return;
	c->state = RCONN_UP;
	c->state_ms = uv_now(c->loop);
	c->backoff_ms = RCONN_BACKOFF_MIN_MS;
	if (c->down_logged)
		log_notice(c->log_sys, "redis %s:%d (%s): up", c->host,
			   c->port, c->name);
	else
		log_info(c->log_sys, "redis %s:%d (%s): connected", c->host,
			 c->port, c->name);
	c->down_logged = 0;
	c->why[0] = '\0';
	if (c->cb)
		c->cb(c->arg, 1);
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
			 step == RCONN_STEP_AUTH ? "AUTH" : "CLIENT SETNAME",
			 rep->str);
		rconn_drop(c, NULL, why);
		return;
	}
	if (step == RCONN_STEP_NAME && ac == c->ac) {
		c->cmd_ok = 1;
		rconn_maybe_up(c);
	}
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

/* Dials one connection and queues its AUTH and SETNAME; NULL on
 * failure (why says it). */
static redisAsyncContext *
rconn_dial(struct rconn *c, char *why, size_t whylen)
{
	redisAsyncContext *ac = redisAsyncConnect(c->host, c->port);
	int rc = REDIS_OK;

	if (!ac || ac->err || redisLibuvAttach(ac, c->loop) != REDIS_OK) {
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
			      "CLIENT SETNAME %s", c->name) != REDIS_OK) {
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
	c->sub = rconn_dial(c, why, whylen);
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
rconn_connect(struct rconn *c)
{
	char why[160];

	c->state = RCONN_CONNECTING;
	c->state_ms = uv_now(c->loop);
	c->cmd_ok = 0;
	c->ac = rconn_dial(c, why, sizeof(why));
	if (!c->ac || (c->subs && rconn_sub_dial(c, why, sizeof(why)) < 0))
		rconn_drop(c, NULL, why);
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

	if (!cfg->host || !cfg->host[0] || cfg->port <= 0 || cfg->port > 65535)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if ((rc = rconn_copy(c->host, sizeof(c->host), cfg->host)) < 0 ||
	    (rc = rconn_copy(c->user, sizeof(c->user), cfg->user)) < 0 ||
	    (rc = rconn_copy(c->password, sizeof(c->password),
			     cfg->password)) < 0 ||
	    (rc = rconn_copy(c->name, sizeof(c->name),
			     cfg->name && cfg->name[0] ? cfg->name :
			     "sipmesh")) < 0)
		goto fail;
	c->loop = loop;
	c->port = cfg->port;
	c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 1000;
	c->backoff_max_ms = cfg->backoff_max_ms >= RCONN_BACKOFF_MIN_MS ?
			    cfg->backoff_max_ms : RCONN_BACKOFF_MIN_MS;
	c->max_pending = cfg->max_pending > 0 ? cfg->max_pending : 4096;
	c->log_sys = cfg->log_sys >= 0 && cfg->log_sys < LOG_SYS__COUNT ?
		     cfg->log_sys : LOG_SYS_MAIN;
	c->backoff_ms = RCONN_BACKOFF_MIN_MS;
	c->cb = cb;
	c->arg = arg;
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

	if (ac == c->ac && !c->closing) {
		if (!reply) {
			/* hiredis is failing ac: DOWN before any NULL. */
			rconn_drop(c, ac, rconn_errstr(ac, "connection closed"));
		} else {
			c->pending--;
			c->progress_ms = uv_now(c->loop);
		}
	}
	if (k->fn)
		k->fn(ac, reply, k->priv);
	free(k);
}

int
rconn_vcommand(struct rconn *c, redisCallbackFn *fn, void *priv,
	       const char *fmt, va_list ap)
{
	struct rconn_cmd *k;

	if (c->state != RCONN_UP || c->pending >= c->max_pending)
		return -EAGAIN;
	k = malloc(sizeof(*k));
	if (!k)
		return -EAGAIN;
	k->c = c;
	k->fn = fn;
	k->priv = priv;
	if (redisvAsyncCommand(c->ac, rconn_on_reply, k, fmt, ap) != REDIS_OK) {
		free(k);
		return -EAGAIN;
	}
	if (c->pending++ == 0)
		c->progress_ms = uv_now(c->loop);
	return 0;
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
	if (c->state == RCONN_DOWN)
		return 0;	/* the next attempt subscribes */
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
	c->closing = 1;
	c->pending = 0;
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
	if (!cfg->redis[0])
		return -ENOENT;
	if (cfg_addr_split(cfg->redis, host, hostlen, &rc->port, 6379) != 0)
		return -EINVAL;
	rc->host = host;
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

redisContext *
rconn_connect_sync(const struct rconn_config *cfg, char *err, size_t errlen)
{
	int ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 1000;
	struct timeval tv = { ms / 1000, ms % 1000 * 1000 };
	redisContext *r = redisConnectWithTimeout(cfg->host, cfg->port, tv);
	const char *pw = cfg->password ? cfg->password : "";

	if (!r || r->err) {
		snprintf(err, errlen, "%s", r ? r->errstr : "out of memory");
		goto fail;
	}
	if (redisSetTimeout(r, tv) != REDIS_OK) {
		snprintf(err, errlen, "cannot set the timeout");
		goto fail;
	}
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
	return r;
fail:
	if (r)
		redisFree(r);
	return NULL;
}
