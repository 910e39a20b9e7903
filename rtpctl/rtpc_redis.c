/*
 * rtpc_redis.c - rtpctl's Redis client: the sticky table Call-ID ->
 * rtpengine instance that all rtpctl processes of the cluster share, so
 * that every command of a call reaches the instance holding it, whichever
 * rtpctl a core asked.
 *
 * Kept apart from the process (rtpc_srv.c) because it is a component of
 * its own: the process's Redis link (lib/rconn.h: AUTH, timeouts,
 * reconnect with back-off, named sipmesh-rtpctl-<id>), and the
 * commands on keys <prefix>:rtpc:<call-id>:
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
#include "lib/rconn.h"

#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

void
rtpc_redis_touch(struct rtpc_srv *s, const char *cid, size_t len, int inst)
{
	long long ttl = (long long)s->cfg->rtpctl_call_ttl_s * 1000;
	int rc;

	if (!rconn_up(s->redis))
		return;
	if (inst >= 0)
		rc = rconn_command(s->redis, NULL, NULL,
				   "SET %s:rtpc:%b %s PX %lld",
				   s->cfg->redis_prefix, cid, len,
				   rtpc_inst_addr(s, inst), ttl);
	else
		rc = rconn_command(s->redis, NULL, NULL,
				   "PEXPIRE %s:rtpc:%b %lld",
				   s->cfg->redis_prefix, cid, len, ttl);
	if (rc < 0)
		s->st.redis_errors++;	/* too many in flight */
}

/* ---- the operators' side ---- */

static void
rtpc_redis_on_drained(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rtpc_srv *s = priv;
	const char *set[RTPC_MAX_INST];
	redisReply *rep = reply;
	int n = 0;

	(void)ac;
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || s->stopping)
		return;
	for (size_t i = 0; i < rep->elements && n < RTPC_MAX_INST; i++)
		if (rep->element[i]->type == REDIS_REPLY_STRING)
			set[n++] = rep->element[i]->str;
	rtpc_pool_drain_set(&s->pool, set, n);
}

/* Reads the drained set; what it says replaces what this process had.
 * While Redis is down the last set read holds. */
static void
rtpc_redis_admin_load(struct rtpc_srv *s)
{
	if (rconn_command(s->redis, rtpc_redis_on_drained, s,
			  "SMEMBERS %s:rtpadm:drained",
			  s->cfg->redis_prefix) < 0)
		s->st.redis_errors++;
}

/* Any message on the channel: the set changed. */
static void
rtpc_redis_on_admin(void *priv, const char *channel, const char *msg,
		    size_t len)
{
	(void)channel;
	(void)msg;
	(void)len;
	rtpc_redis_admin_load(priv);
}

void
rtpc_redis_report(struct rtpc_srv *s)
{
	/* Outlives a missed round or two, not a stopped rtpctl. */
	long long ttl = 3LL * s->cfg->rtpctl_ping_ms;
	char v[96];

	if (s->redis == NULL || !rconn_up(s->redis))
		return;
	if (ttl < 3000)
		ttl = 3000;
	for (int i = 0; i < s->pool.n; i++) {
		const struct rtpc_inst *in = &s->pool.inst[i];

		snprintf(v, sizeof(v), "%s %d %" PRIu64 " %d",
			 !in->up ? "down" : in->drained ? "drained" : "up",
			 in->weight, in->chosen, in->inflight);
		if (rconn_command(s->redis, NULL, NULL,
				  "HSET %s:rtpadm:pool:%d %s %s",
				  s->cfg->redis_prefix, s->id, in->addr, v) < 0) {
			s->st.redis_errors++;
			return;
		}
	}
	if (rconn_command(s->redis, NULL, NULL, "PEXPIRE %s:rtpadm:pool:%d %lld",
			  s->cfg->redis_prefix, s->id, ttl) < 0)
		s->st.redis_errors++;
}

/* rconn logs why the link failed; this says what it costs. */
static void
rtpc_redis_on_state(void *arg, int up)
{
	struct rtpc_srv *s = arg;

	if (up && !s->stopping) {
		rtpc_redis_admin_load(s);
		return;
	}
	if (s->stopping)
		return;
	s->st.redis_errors++;
	log_warn(LOG_SYS_RTP, "redis %s: sticky calls from the local table "
		 "until it is back", s->cfg->redis[0] ? s->cfg->redis :
		 s->cfg->redis_master);
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
 * 0 (r waits), -ENOTCONN (Redis down or not configured) or -EAGAIN
 * (too many commands in flight). */
static int
rtpc_redis_req_cmd(struct rtpc_req *r, redisCallbackFn *cb, const char *fmt,
		   ...)
{
	va_list ap;
	int rc;

	if (!rconn_up(r->s->redis))
		return -ENOTCONN;
	va_start(ap, fmt);
	rc = rconn_vcommand(r->s->redis, cb, r, fmt, ap);
	va_end(ap);
	if (rc < 0)
		r->s->st.redis_errors++;
	else
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
	struct rconn_config rc;
	char host[CFG_ADDR_LEN], name[32], chan[96];
	int err;

	snprintf(name, sizeof(name), "sipmesh-rtpctl-%d", s->id);
	err = rconn_config_cfg(&rc, host, sizeof(host), s->cfg, name,
			       LOG_SYS_RTP);
	if (err == 0)
		err = rconn_new(&s->redis, s->loop, &rc, rtpc_redis_on_state, s);
	if (err == 0) {
		snprintf(chan, sizeof(chan), "%s:rtpadm", s->cfg->redis_prefix);
		err = rconn_subscribe(s->redis, chan, rtpc_redis_on_admin, s);
	}
	if (err == -EINVAL)
		log_err(LOG_SYS_CFG, "%s [redis] address: not host:port",
			s->cfg->path);
	return err;
}

void
rtpc_redis_stop(struct rtpc_srv *s)
{
	/* Runs the pending callbacks (reply NULL), which free the requests
	 * that waited. */
	rconn_free(s->redis);
	s->redis = NULL;
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
	if (rconn_up(s->redis) &&
	    rconn_command(s->redis, NULL, NULL, "DEL %s:rtpc:%b",
			  s->cfg->redis_prefix, cid, len) < 0)
		s->st.redis_errors++;
}
