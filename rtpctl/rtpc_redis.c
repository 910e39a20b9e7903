/*
 * rtpc_redis.c - rtpctl's Redis client: the sticky table Call-ID ->
 * rtpengine instance that all rtpctl processes of the cluster share, so
 * that every command of a call reaches the instance holding it, whichever
 * rtpctl a core asked.
 *
 * Kept apart from the process (rtpc_srv.c) because it is a component of
 * its own: one hiredis async connection on the process's libuv loop, its
 * connect and reconnect (backoff RTPC_BACKOFF_MIN doubling up to
 * RTPC_BACKOFF_MAX ms), and the commands on keys <prefix>:rtpc:<call-id>:
 *   - GET, for a call the local table (rtpc_calls.c) does not know;
 *   - SET NX PX call_ttl_s, to claim a new call for the instance picked
 *     for it, so two rtpctl processes racing on one call agree (the
 *     loser GETs and adopts the winner's instance);
 *   - SET PX / PEXPIRE on every command of a call (touch), DEL when the
 *     whole call is deleted.
 * Each command costs one round trip on the loop, never a block.  A
 * request waiting for a reply has redis_wait set; the on_* callbacks
 * carry it on through the process's routing (rtpc_req_send,
 * rtpc_req_place, rtpc_req_fail) or free it when it was answered
 * meanwhile.  While Redis is down every call goes through the local
 * table only.
 */
#include "rtpctl/rtpc_int.h"
#include "lib/cfg.h"
#include "lib/log.h"

#include <errno.h>
#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>

#define RTPC_BACKOFF_MIN  100	/* ms, Redis reconnect */
#define RTPC_BACKOFF_MAX  5000

/* Queues a command; returns 0, or -EIO when hiredis refused it (the
 * callback will then not run). */
static int
rtpc_redis_vcmd(struct rtpc_srv *s, redisCallbackFn *cb, void *priv,
		const char *fmt, va_list ap)
{
	if (s->redis == NULL)
		return -EIO;
	if (redisvAsyncCommand(s->redis, cb, priv, fmt, ap) != REDIS_OK) {
		s->st.redis_errors++;
		return -EIO;
	}
	return 0;
}

static int
rtpc_redis_cmd(struct rtpc_srv *s, redisCallbackFn *cb, void *priv,
	       const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = rtpc_redis_vcmd(s, cb, priv, fmt, ap);
	va_end(ap);
	return rc;
}

void
rtpc_redis_touch(struct rtpc_srv *s, const char *cid, size_t len, int inst)
{
	long long ttl = (long long)s->cfg->rtpctl_call_ttl_s * 1000;

	if (!s->redis_up)
		return;
	if (inst >= 0)
		rtpc_redis_cmd(s, NULL, NULL, "SET %s:rtpc:%b %s PX %lld",
			       s->cfg->redis_prefix, cid, len,
			       rtpc_inst_addr(s, inst), ttl);
	else
		rtpc_redis_cmd(s, NULL, NULL, "PEXPIRE %s:rtpc:%b %lld",
			       s->cfg->redis_prefix, cid, len, ttl);
}

static void rtpc_redis_connect(struct rtpc_srv *s);

static void
rtpc_redis_on_timer(uv_timer_t *t)
{
	rtpc_redis_connect(t->data);
}

static void
rtpc_redis_gone(struct rtpc_srv *s, const char *what, const char *errstr)
{
	s->redis = NULL;
	s->redis_up = 0;
	if (s->stopping)
		return;
	s->st.redis_errors++;
	log_warn(LOG_SYS_RTP, "redis %s:%d: %s: %s; sticky calls from the "
		 "local table until it is back", s->rhost, s->rport, what,
		 errstr && errstr[0] ? errstr : "closed");
	uv_timer_start(&s->redis_timer, rtpc_redis_on_timer, s->backoff_ms, 0);
	s->backoff_ms = s->backoff_ms * 2 > RTPC_BACKOFF_MAX ?
			RTPC_BACKOFF_MAX : s->backoff_ms * 2;
}

static void
rtpc_redis_on_connect(const redisAsyncContext *ac, int status)
{
	struct rtpc_srv *s = ac->data;

	if (status != REDIS_OK) {
		rtpc_redis_gone(s, "connect", ac->errstr);
		return;
	}
	s->redis_up = 1;
	s->backoff_ms = RTPC_BACKOFF_MIN;
	log_info(LOG_SYS_RTP, "redis %s:%d: connected", s->rhost, s->rport);
}

static void
rtpc_redis_on_disconnect(const redisAsyncContext *ac, int status)
{
	(void)status;
	rtpc_redis_gone(ac->data, "disconnected", ac->errstr);
}

static void
rtpc_redis_connect(struct rtpc_srv *s)
{
	redisAsyncContext *ac;

	if (s->stopping || s->redis)
		return;
	ac = redisAsyncConnect(s->rhost, s->rport);
	if (!ac || ac->err || redisLibuvAttach(ac, s->loop) != REDIS_OK) {
		const char *why = ac ? ac->errstr : "out of memory";

		if (ac)
			redisAsyncFree(ac);
		rtpc_redis_gone(s, "connect", why);
		return;
	}
	ac->data = s;
	redisAsyncSetConnectCallback(ac, rtpc_redis_on_connect);
	redisAsyncSetDisconnectCallback(ac, rtpc_redis_on_disconnect);
	s->redis = ac;
}

/*
 * Common start of a Redis callback for a request: ends its wait and
 * counts a failed command.  Returns the request, or NULL when it was
 * answered meanwhile (it is then freed here).
 */
static struct rtpc_req *
rtpc_redis_back(void *priv, const redisReply *rep)
{
	struct rtpc_req *r = priv;

	r->redis_wait = 0;
	if (r->done) {
		rtpc_req_free(r);
		return NULL;
	}
	if (rep == NULL || rep->type == REDIS_REPLY_ERROR)
		r->s->st.redis_errors++;
	return r;
}

/* The call's instance from a Redis string reply; -2: none, -1: unknown
 * address (a different pool). */
static int
rtpc_redis_inst(struct rtpc_srv *s, const redisReply *rep)
{
	if (rep == NULL || rep->type != REDIS_REPLY_STRING)
		return -2;
	return rtpc_pool_find(&s->pool, rep->str, rep->len);
}

/* Adopts instance i for r's call after a lookup. */
static void
rtpc_req_adopt(struct rtpc_req *r, int i, const redisReply *rep)
{
	struct rtpc_srv *s = r->s;
	char why[256];

	if (i < 0) {
		snprintf(why, sizeof(why), "call held by rtpengine %.*s, "
			 "not in this pool", (int)rep->len, rep->str);
		rtpc_req_fail(r, EHOSTDOWN, why);
		return;
	}
	r->fresh = 0;		/* whoever placed it, it was not r */
	r->inst = i;
	rtpc_calls_put(&s->calls, r->cid, r->cid_len, i, rtpc_now(s));
	rtpc_redis_touch(s, r->cid, r->cid_len, -1);
	rtpc_req_send(r);
}

/*
 * The reply to a GET of r's call: before r placed it (rtpc_redis_get),
 * or after another rtpctl won the claim of r's pick (r->fresh).  A
 * stored instance is adopted; none (deleted in between, or Redis
 * failed) places the call, or keeps r's own pick.
 */
static void
rtpc_redis_on_get(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rtpc_req *r = rtpc_redis_back(priv, reply);
	struct rtpc_srv *s;
	int i;

	(void)ac;
	if (r == NULL)
		return;
	s = r->s;
	i = rtpc_redis_inst(s, reply);
	if (i != -2)
		rtpc_req_adopt(r, i, reply);
	else if (r->fresh)
		rtpc_req_send(r);
	else
		rtpc_req_place(r);
	rtpc_srv_arm(s);
}

/* Queues a command about r's call whose reply, to cb, carries r on:
 * 0 (r waits), -ENOTCONN or -EIO. */
static int
rtpc_redis_req_cmd(struct rtpc_req *r, redisCallbackFn *cb, const char *fmt,
		   ...)
{
	va_list ap;
	int rc;

	if (!r->s->redis_up)
		return -ENOTCONN;
	va_start(ap, fmt);
	rc = rtpc_redis_vcmd(r->s, cb, r, fmt, ap);
	va_end(ap);
	if (rc == 0)
		r->redis_wait = 1;
	return rc;
}

static void
rtpc_redis_on_claim(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rtpc_req *r = rtpc_redis_back(priv, reply);
	redisReply *rep = reply;
	struct rtpc_srv *s;

	(void)ac;
	if (r == NULL)
		return;
	s = r->s;
	/* A nil reply: another rtpctl claimed the call first, use its pick. */
	if (rep && rep->type == REDIS_REPLY_NIL && rtpc_redis_get(r) == 0)
		return;
	rtpc_req_send(r);
	rtpc_srv_arm(s);
}

int
rtpc_redis_start(struct rtpc_srv *s)
{
	const struct cfg *cfg = s->cfg;

	s->backoff_ms = RTPC_BACKOFF_MIN;
	if (cfg_addr_split(cfg->redis, s->rhost, sizeof(s->rhost),
			   &s->rport, 6379) != 0) {
		log_err(LOG_SYS_CFG, "%s [redis] address: not host:port",
			cfg->path);
		return -EINVAL;
	}
	rtpc_redis_connect(s);
	return 0;
}

void
rtpc_redis_stop(struct rtpc_srv *s)
{
	if (s->redis) {
		/* Runs the pending callbacks (reply NULL), which free the
		 * requests that waited, then the disconnect callback. */
		redisAsyncContext *ac = s->redis;

		redisAsyncFree(ac);
	}
}

int
rtpc_redis_get(struct rtpc_req *r)
{
	return rtpc_redis_req_cmd(r, rtpc_redis_on_get, "GET %s:rtpc:%b",
				  r->s->cfg->redis_prefix, r->cid, r->cid_len);
}

int
rtpc_redis_claim(struct rtpc_req *r)
{
	struct rtpc_srv *s = r->s;

	return rtpc_redis_req_cmd(r, rtpc_redis_on_claim,
				  "SET %s:rtpc:%b %s NX PX %lld",
				  s->cfg->redis_prefix, r->cid, r->cid_len,
				  rtpc_inst_addr(s, r->inst),
				  (long long)s->cfg->rtpctl_call_ttl_s * 1000);
}

void
rtpc_redis_del(struct rtpc_srv *s, const char *cid, size_t len)
{
	if (s->redis_up)
		rtpc_redis_cmd(s, NULL, NULL, "DEL %s:rtpc:%b",
			       s->cfg->redis_prefix, cid, len);
}
