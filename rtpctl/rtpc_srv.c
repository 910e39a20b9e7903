/*
 * rtpc_srv.c - the sipmesh-rtpctl process: requests from cores over
 * nanomsg, ng commands to a pool of rtpengine instances over UDP.
 *
 * A request (wire format in rtpc.h) goes through these steps, each
 * driven by an event on the one libuv loop, never blocking:
 *   1. decode the ng dictionary (lib/benc.h), find "command", "call-id";
 *   2. find the call's instance: the local table, else Redis GET
 *      <prefix>:rtpc:<call-id>; for an offer of an unknown call pick
 *      an instance (rtpc_pool_choose) and claim the call with
 *      SET NX PX, so two rtpctl processes racing on one call agree
 *      (the loser adopts the winner's instance);
 *   3. send "<cookie> <dict>" to that instance's connected UDP socket,
 *      resend with the same cookie every ng_timeout_ms, ng_tries sends
 *      in all;
 *   4. relay rtpengine's reply, or a clear error, to the core.
 * Every command of a call refreshes its entry (PEXPIRE, call_ttl_s); a
 * delete without via-branch (the whole call) removes it.
 *
 * Failures.  Pings every ping_interval_ms; fail_threshold unanswered in
 * a row take an instance out, one answer brings it back.  Certain
 * death takes it out at once: "connection refused" (an ICMP port
 * unreachable on the connected socket: nothing listens) or a command
 * unanswered after all its sends.  Only silence counts: a ping or
 * command that times out while the instance answered anything else
 * since it was sent fails alone (a busy rtpengine under load is slow,
 * not dead; taking it out would move every new call and flap).  When an instance goes out, each of
 * its open commands is settled: the first offer of a call that this
 * very request placed there moves to another instance (so a new call
 * does not fail because its first pick died), anything else of a call
 * held there gets "rtpengine ADDR is down"/"timed out".  Later
 * requests for those calls get the error at once, new calls go to the
 * other instances.
 *
 * Without Redis (or while it is down) the local table is the truth for
 * this process.
 *
 * The Redis side of step 2 (the connection, GET, the SET NX PX claim,
 * touch, DEL and their callbacks) is rtpc_redis.c; this file decides
 * what to ask and carries a request on when the answer comes.
 */
#include "rtpctl/rtpc.h"
#include "rtpctl/rtpc_int.h"
#include "lib/benc.h"
#include "lib/cfg.h"
#include "lib/log.h"

#include <errno.h>
#include <inttypes.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define RTPC_MAX_OPEN     20000	/* requests in progress */
#define RTPC_MAX_MSG      (1024 * 1024)

uint64_t
rtpc_now(const struct rtpc_srv *s)
{
	return uv_now(s->loop);
}

const char *
rtpc_inst_addr(const struct rtpc_srv *s, int i)
{
	return i >= 0 && i < s->pool.n ? s->pool.inst[i].addr : "";
}

/* ---- replies to the core ---- */

void
rtpc_req_free(struct rtpc_req *r)
{
	struct rtpc_srv *s = r->s;

	list_remove(&r->link);
	s->n_open--;
	if (r->ctrl)
		nn_freemsg(r->ctrl);
	if (r->body)
		nn_freemsg(r->body);
	free(r);
}

/* Ends r: frees it now, or once its Redis callback has come. */
static void
rtpc_req_end(struct rtpc_req *r)
{
	r->done = 1;
	if (!r->redis_wait)
		rtpc_req_free(r);
}

/* Sends body to the core that asked, under r's SP header. */
static void
rtpc_req_reply(struct rtpc_req *r, const char *body, size_t len)
{
	struct rtpc_srv *s = r->s;
	struct nn_iovec iov = { (void *)body, len };
	struct nn_msghdr mh = { &iov, 1, &r->ctrl, NN_MSG };

	if (s->stopping || r->ctrl == NULL)
		return;
	/* nanomsg takes the control chunk, whether or not it sends. */
	if (nn_sendmsg(s->rep, &mh, NN_DONTWAIT) < 0)
		log_warn(LOG_SYS_RTP, "reply to core: %s",
			 nn_strerror(nn_errno()));
	r->ctrl = NULL;
}

void
rtpc_req_fail(struct rtpc_req *r, int err, const char *reason)
{
	char buf[1024];
	struct benc_enc e;
	int n;

	r->s->st.errors++;
	log_call(LOG_SYS_RTP, LOG_LVL_INFO, r->cid ? r->cid : "-",
		 r->cid ? r->cid_len : 1, "%.*s: %s", (int)r->cmd_len,
		 r->cmd ? r->cmd : "?", reason);
	benc_enc_init(&e, buf, sizeof(buf));
	benc_put_dict(&e);
	benc_put_cstr(&e, "errno");
	benc_put_int(&e, err);
	if (r->inst >= 0)
		benc_put_kv(&e, "instance", rtpc_inst_addr(r->s, r->inst));
	benc_put_kv(&e, "reason", reason);
	benc_put_end(&e);
	n = benc_enc_finish(&e);
	if (n > 0)
		rtpc_req_reply(r, buf, (size_t)n);
	rtpc_req_end(r);
}

/* ---- routing ---- */

/*
 * Picks an instance for r's call (an offer the table does not know)
 * and claims it; fails r when no instance is left.  Returns 0 when r
 * goes on (sent, or waiting for Redis).
 */
static int
rtpc_req_pick(struct rtpc_req *r)
{
	struct rtpc_srv *s = r->s;
	int i = rtpc_pool_choose(&s->pool, r->tried);

	if (i < 0) {
		/* EBUSY when some instance is up but full: the core says
		 * 503 with Retry-After either way. */
		if (r->full)
			rtpc_req_fail(r, EBUSY, "no rtpengine has free ports");
		else
			rtpc_req_fail(r, EHOSTUNREACH,
				      "no rtpengine available");
		return -1;
	}
	r->inst = i;
	r->fresh = 1;
	s->st.new_calls++;
	if (r->cid)
		rtpc_calls_put(&s->calls, r->cid, r->cid_len, i, rtpc_now(s));
	return 0;
}

/* The call is known nowhere: an offer places it, anything else fails. */
void
rtpc_req_place(struct rtpc_req *r)
{
	if (!r->is_offer) {
		rtpc_req_fail(r, ENOENT, "call unknown to rtpctl");
		return;
	}
	if (rtpc_req_pick(r) < 0)
		return;
	if (rtpc_redis_claim(r) == 0)
		return;
	rtpc_req_send(r);
}

/* r's first offer could not be served where it was placed: try the
 * next instance. */
static void
rtpc_req_failover(struct rtpc_req *r)
{
	struct rtpc_srv *s = r->s;
	int from = r->inst;

	r->tried |= 1ULL << from;
	if (rtpc_req_pick(r) < 0)
		return;
	s->st.failovers++;
	log_call(LOG_SYS_RTP, LOG_LVL_NOTICE, r->cid, r->cid_len,
		 "offer moves from rtpengine %s to %s", rtpc_inst_addr(s, from),
		 rtpc_inst_addr(s, r->inst));
	rtpc_redis_touch(s, r->cid, r->cid_len, r->inst);
	rtpc_req_send(r);
}

/* Sends ng's datagram; a refused send takes its instance down. */
static void rtpc_inst_dead(struct rtpc_srv *s, int i, int err,
			   const char *why);

static void
rtpc_ng_send(struct rtpc_srv *s, struct rtpc_ng *ng)
{
	uv_buf_t b = uv_buf_init(ng->msg, (unsigned)ng->len);
	int i = ng->inst, rc, was_empty = rtpc_ng_first(&s->ng) == NULL;

	rc = uv_udp_try_send(&s->udp[i], &b, 1, NULL);
	rtpc_ng_sent(&s->ng, ng, rtpc_now(s));
	if (was_empty)
		rtpc_srv_arm(s);
	if (rc == UV_ECONNREFUSED) {
		char why[128];

		snprintf(why, sizeof(why), "rtpengine %s refused the command "
			 "(not running)", s->pool.inst[i].addr);
		rtpc_inst_dead(s, i, EHOSTDOWN, why);
	} else if (rc < 0 && rc != UV_EAGAIN) {
		log_warn(LOG_SYS_RTP, "rtpengine %s: send: %s",
			 s->pool.inst[i].addr, uv_strerror(rc));
	}
}

void
rtpc_req_send(struct rtpc_req *r)
{
	struct rtpc_srv *s = r->s;
	struct rtpc_inst *in = &s->pool.inst[r->inst];
	char why[128];

	if (!in->up) {
		if (r->fresh && r->is_offer) {
			rtpc_req_failover(r);
			return;
		}
		snprintf(why, sizeof(why), "rtpengine %s holding this call "
			 "is down", in->addr);
		rtpc_req_fail(r, EHOSTDOWN, why);
		return;
	}
	r->ng = rtpc_ng_new(&s->ng, r->inst, r->body, r->len,
			    s->cfg->rtpctl_ng_tries, r);
	if (r->ng == NULL) {
		rtpc_req_fail(r, ENOMEM, "rtpctl out of memory");
		return;
	}
	in->inflight++;
	log_call(LOG_SYS_RTP, LOG_LVL_DEBUG, r->cid ? r->cid : "-",
		 r->cid ? r->cid_len : 1, "%.*s -> rtpengine %s",
		 (int)r->cmd_len, r->cmd, in->addr);
	rtpc_ng_send(s, r->ng);
}

/* Finishes ng (answered or given up): frees it, lowers the load. */
static void
rtpc_ng_close(struct rtpc_srv *s, struct rtpc_ng *ng)
{
	struct rtpc_req *r = ng->owner;

	if (r) {
		s->pool.inst[ng->inst].inflight--;
		r->ng = NULL;
	} else {
		s->pool.inst[ng->inst].ping_open = 0;
	}
	rtpc_ng_free(&s->ng, ng);
}

/* ng got no answer in time, or its instance died. */
static void
rtpc_ng_give_up(struct rtpc_srv *s, struct rtpc_ng *ng, int err,
		const char *why)
{
	struct rtpc_req *r = ng->owner;

	rtpc_ng_close(s, ng);
	if (r == NULL)
		return;
	if (r->fresh && r->is_offer)
		rtpc_req_failover(r);
	else
		rtpc_req_fail(r, err, why);
}

static void
rtpc_inst_log_change(struct rtpc_srv *s, int i, const char *why)
{
	struct rtpc_inst *in = &s->pool.inst[i];

	if (in->up)
		log_notice(LOG_SYS_RTP, "rtpengine %s is up", in->addr);
	else
		log_warn(LOG_SYS_RTP, "rtpengine %s is down: %s", in->addr, why);
}

/*
 * Settles every command open on instance i, which is out: err and why
 * for each (the first offers of new calls move on instead).
 */
static void
rtpc_inst_settle(struct rtpc_srv *s, int i, int err, const char *why)
{
	struct rtpc_ng *ng;

	/* Failovers append commands for other instances: rescan. */
	for (;;) {
		for (ng = rtpc_ng_first(&s->ng); ng && ng->inst != i;
		     ng = rtpc_ng_after(&s->ng, ng))
			;
		if (ng == NULL)
			break;
		rtpc_ng_give_up(s, ng, err, why);
	}
}

/* Takes instance i out at once and settles its open commands. */
static void
rtpc_inst_dead(struct rtpc_srv *s, int i, int err, const char *why)
{
	if (rtpc_pool_down(&s->pool, i, rtpc_now(s)))
		rtpc_inst_log_change(s, i, why);
	rtpc_inst_settle(s, i, err, why);
}

/* ---- ng replies and timers ---- */

/* Whether an ng reply says the instance could not allocate media
 * ports (rtpengine's "Ran out of ports"), a reason to try another. */
static int
rtpc_reply_full(const struct benc_node *reply)
{
	const char *why;
	size_t len = 0;

	if (!benc_str_eq(benc_dict_get(reply, "result"), "error"))
		return 0;
	why = benc_dict_str(reply, "error-reason", &len);
	return why && memmem(why, len, "out of ports", 12) != NULL;
}

static void
rtpc_ng_answered(struct rtpc_srv *s, struct rtpc_ng *ng, const char *dict,
		 size_t dlen)
{
	struct benc_node *nd = s->nodes;
	struct rtpc_req *r = ng->owner;
	int i = ng->inst, n;
	struct benc_enc e;
	char *buf;

	if (rtpc_pool_ok(&s->pool, i, rtpc_now(s)))
		rtpc_inst_log_change(s, i, NULL);
	rtpc_ng_close(s, ng);
	if (r == NULL)
		return;			/* a ping */
	n = benc_decode(nd, RTPC_NODES, dict, dlen);
	if (n < 0 || nd[0].type != BENC_DICT) {
		char why[128];

		snprintf(why, sizeof(why), "malformed reply from rtpengine %s",
			 s->pool.inst[i].addr);
		rtpc_req_fail(r, EPROTO, why);
		return;
	}
	if (r->fresh && r->is_offer && rtpc_reply_full(&nd[0])) {
		/* The instance is alive but has no media port left: the
		 * call goes to another one, the instance stays in. */
		s->st.full++;
		r->full = 1;
		log_call(LOG_SYS_RTP, LOG_LVL_NOTICE, r->cid, r->cid_len,
			 "rtpengine %s ran out of ports", s->pool.inst[i].addr);
		rtpc_req_failover(r);
		return;
	}
	if (r->ends_call) {
		rtpc_calls_del(&s->calls, r->cid, r->cid_len);
		rtpc_redis_del(s, r->cid, r->cid_len);
	}
	buf = malloc(dlen + 128);
	if (buf == NULL) {
		rtpc_req_fail(r, ENOMEM, "rtpctl out of memory");
		return;
	}
	benc_enc_init(&e, buf, dlen + 128);
	benc_put_dict(&e);
	benc_put_kv(&e, "instance", s->pool.inst[i].addr);
	benc_put_cstr(&e, "reply");
	benc_put_raw(&e, dict, dlen);
	benc_put_end(&e);
	n = benc_enc_finish(&e);
	if (n > 0) {
		rtpc_req_reply(r, buf, (size_t)n);
		s->st.replied++;
	}
	free(buf);
	rtpc_req_end(r);
}

static void
rtpc_udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct rtpc_srv *s = h->data;

	(void)hint;
	*b = uv_buf_init(s->rbuf, sizeof(s->rbuf));
}

static void
rtpc_udp_on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *b,
		 const struct sockaddr *addr, unsigned flags)
{
	struct rtpc_srv *s = h->data;
	int i = (int)(h - s->udp);
	struct rtpc_ng *ng;
	const char *dict;
	size_t dlen;

	(void)addr;
	(void)flags;
	if (nread == UV_ECONNREFUSED) {
		char why[128];

		snprintf(why, sizeof(why), "rtpengine %s refused the command "
			 "(not running)", s->pool.inst[i].addr);
		rtpc_inst_dead(s, i, EHOSTDOWN, why);
		rtpc_srv_arm(s);
		return;
	}
	if (nread < 0) {
		log_warn(LOG_SYS_RTP, "rtpengine %s: recv: %s",
			 s->pool.inst[i].addr, uv_strerror((int)nread));
		return;
	}
	if (nread == 0)
		return;
	s->pool.inst[i].heard_ms = rtpc_now(s);
	ng = rtpc_ng_match(&s->ng, b->base, (size_t)nread, &dict, &dlen);
	if (ng == NULL || ng->inst != i) {
		s->st.stray_replies++;
		log_debug(LOG_SYS_RTP, "rtpengine %s: reply with unknown "
			  "cookie (late duplicate?)", s->pool.inst[i].addr);
		return;
	}
	rtpc_ng_answered(s, ng, dict, dlen);
	rtpc_srv_arm(s);
}

static void
rtpc_on_ng_timer(uv_timer_t *t)
{
	struct rtpc_srv *s = t->data;
	uint64_t now = rtpc_now(s);
	struct rtpc_ng *ng;

	while ((ng = rtpc_ng_due(&s->ng, now)) != NULL) {
		struct rtpc_inst *in = &s->pool.inst[ng->inst];
		char why[128];

		if (ng->tries < ng->max_tries) {
			s->st.retransmits++;
			rtpc_ng_send(s, ng);
			continue;
		}
		if (in->heard_ms && in->heard_ms >= ng->first_sent) {
			/* The instance answered something since this went
			 * out: it is alive but busy, or this one datagram
			 * was lost.  Only this command fails (a first offer
			 * moves on); taking the instance out here would
			 * flap the pool under load. */
			if (ng->owner)
				s->st.timeouts++;
			snprintf(why, sizeof(why), "rtpengine %s timed out",
				 in->addr);
			rtpc_ng_give_up(s, ng, ETIMEDOUT, why);
			continue;
		}
		if (ng->owner == NULL) {
			int i = ng->inst;

			rtpc_ng_close(s, ng);
			if (rtpc_pool_fail(&s->pool, i, now)) {
				rtpc_inst_log_change(s, i, "pings unanswered");
				snprintf(why, sizeof(why), "rtpengine %s holding "
					 "this call is down", in->addr);
				rtpc_inst_settle(s, i, EHOSTDOWN, why);
			}
			continue;
		}
		s->st.timeouts++;
		snprintf(why, sizeof(why), "rtpengine %s timed out", in->addr);
		rtpc_inst_dead(s, ng->inst, ETIMEDOUT, why);
	}
	rtpc_srv_arm(s);
}

void
rtpc_srv_arm(struct rtpc_srv *s)
{
	uint64_t d = rtpc_ng_next_deadline(&s->ng), now = rtpc_now(s);

	if (s->stopping)
		return;
	if (d == 0)
		uv_timer_stop(&s->ng_timer);
	else
		uv_timer_start(&s->ng_timer, rtpc_on_ng_timer,
			       d > now ? d - now : 0, 0);
}

static void
rtpc_on_ping_timer(uv_timer_t *t)
{
	static const char ping[] = "d7:command4:pinge";
	struct rtpc_srv *s = t->data;

	for (int i = 0; i < s->pool.n; i++) {
		struct rtpc_ng *ng;

		if (s->pool.inst[i].ping_open)
			continue;
		ng = rtpc_ng_new(&s->ng, i, ping, sizeof(ping) - 1, 1, NULL);
		if (ng == NULL)
			continue;
		s->pool.inst[i].ping_open = 1;
		rtpc_ng_send(s, ng);
	}
	rtpc_calls_sweep(&s->calls, rtpc_now(s));
	rtpc_redis_report(s);
	rtpc_srv_arm(s);
}

/* ---- requests from cores ---- */

/* Fills r from its decoded dictionary; returns 0 or a reason. */
static const char *
rtpc_req_parse(struct rtpc_req *r, struct benc_node *nd)
{
	int n = benc_decode(nd, RTPC_NODES, r->body, r->len);
	const struct benc_node *fl;

	if (n == -ENOSPC)
		return "request too complex";
	if (n < 0 || nd[0].type != BENC_DICT)
		return "request is not a bencoded dictionary";
	r->cmd = benc_dict_str(&nd[0], "command", &r->cmd_len);
	if (r->cmd == NULL || r->cmd_len == 0)
		return "request without command";
	r->cid = benc_dict_str(&nd[0], "call-id", &r->cid_len);
	if (r->cid && (r->cid_len == 0 || r->cid_len > 512))
		return "bad call-id";
	r->is_offer = r->cmd_len == 5 && memcmp(r->cmd, "offer", 5) == 0;
	fl = benc_dict_get(&nd[0], "via-branch");
	r->ends_call = r->cid && fl == NULL && r->cmd_len == 6 &&
		       memcmp(r->cmd, "delete", 6) == 0;
	return NULL;
}

static void
rtpc_on_request(struct rtpc_srv *s, void *body, size_t len, void *ctrl)
{
	struct benc_node *nd = s->nodes;
	struct rtpc_req *r = calloc(1, sizeof(*r));
	const char *bad;
	int i;

	if (r == NULL) {
		nn_freemsg(body);
		nn_freemsg(ctrl);
		return;
	}
	r->s = s;
	r->body = body;
	r->len = len;
	r->ctrl = ctrl;
	r->inst = -1;
	list_insert_head(&s->reqs, &r->link);
	s->n_open++;
	s->st.requests++;

	bad = rtpc_req_parse(r, nd);
	if (bad) {
		s->st.bad_requests++;
		rtpc_req_fail(r, EPROTO, bad);
		return;
	}
	if (s->n_open > RTPC_MAX_OPEN) {
		rtpc_req_fail(r, EBUSY, "rtpctl has too many requests open");
		return;
	}
	if (r->cid == NULL) {
		/* ping, list, statistics...: any healthy instance. */
		i = rtpc_pool_choose(&s->pool, 0);
		if (i < 0) {
			rtpc_req_fail(r, EHOSTUNREACH, "no rtpengine available");
			return;
		}
		r->inst = i;
		rtpc_req_send(r);
		return;
	}
	i = rtpc_calls_get(&s->calls, r->cid, r->cid_len, rtpc_now(s));
	if (i >= 0) {
		r->inst = i;
		rtpc_calls_put(&s->calls, r->cid, r->cid_len, i, rtpc_now(s));
		/* An offer (re)writes the entry: another process may have
		 * deleted the call since this cache learnt it. */
		rtpc_redis_touch(s, r->cid, r->cid_len, r->is_offer ? i : -1);
		rtpc_req_send(r);
		return;
	}
	if (rtpc_redis_get(r) == 0)
		return;
	rtpc_req_place(r);
}

/* A request from the link_poll: r keeps both chunks until it ends. */
static void
rtpc_on_msg(void *arg, struct link_msg *m)
{
	struct rtpc_srv *s = arg;

	rtpc_on_request(s, m->body, m->len, m->ctrl);
	m->body = m->ctrl = NULL;
	rtpc_srv_arm(s);
}

/* ---- life cycle ---- */

static int
rtpc_srv_bind(struct rtpc_srv *s, const char *url)
{
	int maxsz = RTPC_MAX_MSG, rc;

	s->rep = nn_socket(AF_SP_RAW, NN_REP);
	if (s->rep < 0)
		return -nn_errno();
	if (strncmp(url, "ipc://", 6) == 0) {
		/* A stale socket file from a crashed run refuses the bind. */
		unlink(url + 6);
	}
	if (nn_setsockopt(s->rep, NN_SOL_SOCKET, NN_RCVMAXSIZE, &maxsz,
			  sizeof(maxsz)) < 0 ||
	    nn_bind(s->rep, url) < 0) {
		rc = -nn_errno();
		nn_close(s->rep);
		s->rep = -1;
		return rc;
	}
	return link_poll_new(&s->rx, s->loop, s->rep, LINK_POLL_CTRL,
			     rtpc_on_msg, s, "rtpctl");
}

int
rtpc_srv_new(struct rtpc_srv **out, uv_loop_t *loop, const struct cfg *cfg,
	     int id)
{
	struct rtpc_srv *s = calloc(1, sizeof(*s));
	char err[256], url[CFG_PATH_LEN];
	uint64_t nonce = 0;
	int rc;

	if (s == NULL)
		return -ENOMEM;
	s->loop = loop;
	s->cfg = cfg;
	s->id = id;
	s->rep = -1;
	list_init(&s->reqs);
	list_init(&s->ng.order);	/* stop walks it even before ng_init */
	*out = s;	/* so that the caller can stop and free on failure */
	rc = rtpc_pool_parse(&s->pool, cfg->rtpctl_instances,
			     cfg->rtpctl_fail_threshold, err, sizeof(err));
	if (rc < 0) {
		log_err(LOG_SYS_CFG, "%s [rtpctl] instances: %s", cfg->path, err);
		return rc;
	}
	rc = rtpc_ipc_url(cfg, id, url, sizeof(url));
	if (rc < 0) {
		log_err(LOG_SYS_CFG, "%s [rtpctl] ipc: no endpoint for rtpctl "
			"%d", cfg->path, id);
		return rc;
	}
	if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce))
		nonce = (uint64_t)getpid() << 32 ^ (uint64_t)uv_hrtime();
	rtpc_ng_init(&s->ng, nonce, cfg->rtpctl_ng_timeout_ms);
	rc = rtpc_calls_init(&s->calls, cfg->rtpctl_max_calls,
			     (uint64_t)cfg->rtpctl_call_ttl_s * 1000);
	if (rc < 0)
		return rc;

	uv_timer_init(loop, &s->ng_timer);
	uv_timer_init(loop, &s->ping_timer);
	s->timers_init = 1;
	s->ng_timer.data = s->ping_timer.data = s;
	for (int i = 0; i < s->pool.n; i++) {
		uv_udp_t *u = &s->udp[i];

		uv_udp_init(loop, u);
		u->data = s;
		s->pool.inst[i].io = u;
		rc = uv_udp_connect(u, &s->pool.inst[i].sa.sa);
		if (rc == 0)
			rc = uv_udp_recv_start(u, rtpc_udp_alloc,
					       rtpc_udp_on_recv);
		if (rc < 0) {
			log_err(LOG_SYS_RTP, "rtpengine %s: socket: %s",
				s->pool.inst[i].addr, uv_strerror(rc));
			return rc;
		}
	}
	rc = rtpc_srv_bind(s, url);
	if (rc < 0) {
		log_err(LOG_SYS_NET, "rtpctl %d: bind %s: %s", id, url,
			strerror(-rc));
		return rc;
	}
	if (cfg->redis[0] || cfg->redis_sentinels[0]) {
		rc = rtpc_redis_start(s);
		if (rc < 0)
			return rc;
	}
	/* First pings at once: a dead instance is out before traffic. */
	uv_timer_start(&s->ping_timer, rtpc_on_ping_timer, 0,
		       (uint64_t)cfg->rtpctl_ping_ms);
	rc = rtpc_metrics_start(s);
	if (rc < 0)
		return rc;
	log_notice(LOG_SYS_MAIN, "rtpctl %d on %s: %d rtpengine instance(s), "
		   "sticky calls in %s", id, url, s->pool.n,
		   cfg->redis[0] || cfg->redis_sentinels[0] ?
		   "Redis + local cache" : "the local table");
	return 0;
}

static void
rtpc_srv_on_close(uv_handle_t *h)
{
	(void)h;
}

void
rtpc_srv_stop(struct rtpc_srv *s)
{
	struct list_node *n, *tmp;
	struct rtpc_ng *ng;

	if (s == NULL || s->stopping)
		return;
	s->stopping = 1;
	hsrv_free(s->metrics);
	s->metrics = NULL;
	hsrv_free(s->ctl);
	s->ctl = NULL;
	/* Open requests get no reply: their cores time out. */
	while ((ng = rtpc_ng_first(&s->ng)) != NULL)
		rtpc_ng_close(s, ng);
	list_for_each_safe(&s->reqs, n, tmp) {
		struct rtpc_req *r = list_entry(n, struct rtpc_req, link);

		r->ng = NULL;
		rtpc_req_end(r);
	}
	rtpc_redis_stop(s);
	link_poll_free(s->rx);	/* before nanomsg closes its fd */
	s->rx = NULL;
	if (s->rep >= 0)
		nn_close(s->rep);
	s->rep = -1;
	if (s->timers_init) {
		uv_close((uv_handle_t *)&s->ng_timer, rtpc_srv_on_close);
		uv_close((uv_handle_t *)&s->ping_timer, rtpc_srv_on_close);
	}
	for (int i = 0; i < s->pool.n; i++)
		if (s->pool.inst[i].io)
			uv_close((uv_handle_t *)&s->udp[i], rtpc_srv_on_close);
}

void
rtpc_srv_free(struct rtpc_srv *s)
{
	if (s == NULL)
		return;
	rtpc_calls_fini(&s->calls);
	rtpc_ng_fini(&s->ng);
	free(s);
}
