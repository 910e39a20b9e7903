/*
 * edge_fwd.c - the edge's one job: move messages between transports
 * and cores.
 *
 * Client -> core: drop keepalives and oversized messages, check the
 * message (edge_sip.c), answer 400 to what is broken but answerable,
 * fix the top Via of a request and send it to the first core of the
 * rendezvous order of its Call-ID that takes it (the order is the same
 * on every edge, so retransmissions and in-dialog requests meet their
 * transaction), or send a response to the core named in its branch
 * once the branch's MAC holds (before any full parse: see
 * edge_response_ours()).  Core -> client: unwrap the envelope and hand the message to the
 * connection it names (conn_id), or to the transport it names, which
 * for TCP/TLS reuses or opens a connection to the destination.  A
 * message for a connection that is gone (closed, or held by an earlier
 * start of this edge: another incarnation in its id) goes back to its
 * core as ENV_CONN_CLOSED, so the core fails the branch at once (430)
 * and stops using the bindings of that flow.  A core the link finds
 * silent (lib/link.h liveness: its host or process lost without closing
 * its sockets) refuses sends as a stopped one does, so its Call-IDs go
 * to the next core of their order, and so do responses on the branches
 * of a core that is lost or stopped (that core forwards a 2xx of an
 * INVITE without the transaction, drops the rest).
 *
 * Every outcome is a counter in struct edge_stats.  Buffers are
 * allocated once at start, sized from max_msg: nothing on this path
 * allocates.
 */
#include "edge/edge_int.h"
#include "lib/hash.h"
#include "lib/link.h"
#include "lib/log.h"
#include "lib/sip.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* 503s per second (and burst) a source over req_rate may get. */
#define EDGE_LIMIT_REPLY_RATE 2

/* Room the Via fix-up and a reply's own headers may add to a message. */
#define EDGE_BUF_SLACK 1024
#define EDGE_LOG_BURST 10

int
edge_init(struct edge *e, uv_loop_t *loop, const struct cfg *cfg,
	  const struct cfg_edge *me)
{
	unsigned char route[KEY_LEN], lim[KEY_LEN], branch[KEY_LEN];
	char shm[CFG_PATH_LEN];
	struct hash_key lk;
	int rc;

	memset(e, 0, sizeof(*e));
	e->hep.fd = -1;
	edge_conn_table_init(&e->conns, me->max_conns_per_ip);
	e->conns.max_per_net = me->max_conns_per_net;
	e->conns.max_in = me->max_conns;
	rc = edge_incarnation_new(&e->conns.incarnation);
	if (rc < 0) {
		edge_fini(e);
		return rc;
	}
	e->loop = loop;
	e->cfg = cfg;
	e->me = me;
	for (int i = 0; i < cfg->n_cores; i++)
		if (!cfg->cores[i].standby)
			e->core_ids[e->n_cores++] = cfg->cores[i].id;
	e->n_active = e->n_cores;
	for (int i = 0; i < cfg->n_cores; i++)
		if (cfg->cores[i].standby)
			e->core_ids[e->n_cores++] = cfg->cores[i].id;
	if (e->n_active == 0)
		e->n_active = e->n_cores;	/* all standby: all alike */
	rc = infra_init(&e->infra, cfg);
	if (rc == 0)
		rc = key_load(cfg, KEY_USE_ROUTE, route);
	if (rc == 0)
		rc = key_load(cfg, KEY_USE_LIMIT, lim);
	if (rc == 0)
		rc = key_load(cfg, KEY_USE_BRANCH, branch);
	if (rc == 0)
		hash_key_from(&e->branch, branch);
	explicit_bzero(branch, sizeof(branch));
	if (rc == 0) {
		/* Named after the host's location store: one per cluster
		 * and host, shared by its edges. */
		snprintf(shm, sizeof(shm), "%s-edge-limit", cfg->shm_name);
		hash_key_from(&lk, lim);
		rc = edge_limit_open(&e->limit, shm, &lk);
	}
	explicit_bzero(lim, sizeof(lim));
	if (rc < 0) {
		edge_fini(e);
		return rc;
	}
	hash_key_from(&e->route, route);
	edge_limit_set(&e->limit, EDGE_LIMIT_REQ, me->req_rate, me->req_burst);
	edge_limit_set(&e->limit, EDGE_LIMIT_CONN, me->conn_rate,
		       me->conn_burst);
	edge_limit_set(&e->limit, EDGE_LIMIT_REPLY, EDGE_LIMIT_REPLY_RATE,
		       EDGE_LIMIT_REPLY_RATE);
	e->buf_cap = (size_t)me->max_msg + EDGE_BUF_SLACK;
	e->msg_buf = malloc(e->buf_cap);
	e->reply_buf = malloc(e->buf_cap);
	e->env_buf = malloc(e->buf_cap + ENV_HDR_LEN + ENV_NAMES_MAX);
	if (e->msg_buf == NULL || e->reply_buf == NULL || e->env_buf == NULL) {
		edge_fini(e);
		return -ENOMEM;
	}
	rc = edge_hep_open(&e->hep, me);
	if (rc < 0)
		edge_fini(e);
	return rc;
}

void
edge_fini(struct edge *e)
{
	free(e->msg_buf);
	free(e->reply_buf);
	free(e->env_buf);
	e->msg_buf = e->reply_buf = e->env_buf = NULL;
	edge_conn_table_fini(&e->conns);
	edge_limit_close(&e->limit);
	edge_hep_close(&e->hep);
}

int
edge_ratelimit_allow(struct edge_ratelimit *rl, uint64_t now_ms)
{
	uint64_t sec = now_ms / 1000;

	if (sec != rl->sec) {
		if (rl->suppressed)
			log_notice(LOG_SYS_SIP, "%llu similar log lines suppressed",
				   (unsigned long long)rl->suppressed);
		rl->sec = sec;
		rl->n = 0;
		rl->suppressed = 0;
	}
	if (rl->n < EDGE_LOG_BURST) {
		rl->n++;
		return 1;
	}
	rl->suppressed++;
	return 0;
}

/* CRLF and CRLFCRLF pings (RFC 5626 4.4.1), or an empty datagram. */
static int
edge_is_keepalive(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != '\r' && buf[i] != '\n')
			return 0;
	return 1;
}

static int
edge_core_known(const struct edge *e, int id)
{
	for (int i = 0; i < e->n_cores; i++)
		if (e->core_ids[i] == id)
			return 1;
	return 0;
}


/*
 * HEP capture of a message between a client at peer and tp (its
 * connection conn_id's local address when it has one, else the
 * transport's): from peer when in, to it when not.
 */
static void
edge_fwd_capture(struct edge *e, struct edge_tp *tp, uint64_t conn_id,
		 const union env_sa *peer, int in, const char *buf, size_t len)
{
	const struct edge_conn *c;
	const union env_sa *local;

	if (e->hep.fd < 0)
		return;
	c = conn_id ? edge_conn_find(&e->conns, conn_id) : NULL;
	local = c ? &c->local : &tp->local;
	if (in)
		edge_hep_capture(e, tp->transport, peer, local, buf, len);
	else
		edge_hep_capture(e, tp->transport, local, peer, buf, len);
}
/*
 * Sends a stateless reply to the request msg (already Via-fixed when
 * that was possible).  It goes where the request came from, on its
 * connection or to its source address and port, never to a port its
 * Via names (RFC 3261 18.2.2 would, without rport): an unauthenticated
 * datagram must not aim the edge's answer anywhere but back.  And over
 * UDP (anyone can write any source address) the answer is at most
 * SIP_REPLY_AMP times the req_len bytes of the datagram that asked (a
 * 400 copies the request's Via, From, To, Call-ID and CSeq and adds a
 * status line, a Warning and a To tag, so only a request of a few
 * dozen bytes comes near it): past that it goes without its Warning,
 * and when still larger not at all.  Returns 0 or a negative errno
 * (-EMSGSIZE: too large to answer).
 */
static int
edge_reply(struct edge *e, struct edge_tp *tp, uint64_t conn_id,
	   const union env_sa *src, const struct edge_sip_scan *sc,
	   const char *msg, size_t len, size_t req_len, int code,
	   const char *reason, const char *warning)
{
	size_t most = conn_id ? SIZE_MAX : SIP_REPLY_AMP * req_len;
	int n, rc;

	n = edge_sip_reply_build(e->reply_buf, e->buf_cap, msg, len, sc, code,
				 reason, warning);
	if (n >= 0 && (size_t)n > most && warning)
		n = edge_sip_reply_build(e->reply_buf, e->buf_cap, msg, len, sc,
					 code, reason, NULL);
	if (n < 0)
		return n;
	if ((size_t)n > most)
		return -EMSGSIZE;
	/* A datagram "from" the cluster's own Redis, listener or core
	 * port (a spoofed source) gets no answer: the edge would aim at
	 * its own services or answer itself in a loop. */
	if (conn_id == 0 && infra_has(&e->infra, tp->transport, src)) {
		e->st.drop_reply_self++;
		return -EPERM;
	}
	rc = tp->send(tp, src, conn_id, e->reply_buf, (size_t)n);
	if (rc == 0)
		edge_fwd_capture(e, tp, conn_id, src, 0, e->reply_buf,
				 (size_t)n);
	return rc;
}

static void
edge_reject(struct edge *e, struct edge_tp *tp, uint64_t conn_id,
	    const union env_sa *src, const struct edge_sip_scan *sc,
	    const char *buf, size_t len, const char *why)
{
	struct edge_slice cid = sc->first[EDGE_H_CALL_ID].value;
	const struct edge_sip_scan *rsc = sc;
	struct edge_sip_scan fixed;
	const char *msg = buf;
	size_t req_len = len;
	char from[64];
	int n, rc = -EINVAL;

	if (cid.s == NULL)
		cid.s = "";
	if (edge_sip_can_reply(sc)) {
		/* The reply follows the Via rules of a good request. */
		n = edge_sip_via_fix(buf, len, sc, src, e->msg_buf, e->buf_cap);
		if (n >= 0 && edge_sip_scan(&fixed, e->msg_buf, (size_t)n) == 0) {
			msg = e->msg_buf;
			len = (size_t)n;
			rsc = &fixed;
		}
		rc = edge_reply(e, tp, conn_id, src, rsc, msg, len, req_len,
				400, "Bad Request", why);
		if (rc == 0)
			e->st.sent_400++;
		else
			e->st.drop_reply++;
	} else {
		e->st.malformed++;
	}
	if (edge_ratelimit_allow(&e->rl, uv_now(e->loop)))
		log_call(LOG_SYS_SIP, LOG_LVL_NOTICE, cid.s, cid.len,
			 "%s from %s: %s%s", sc->is_request ? "request" :
			 "message", env_sa_str(src, from, sizeof(from)), why,
			 rc == 0 ? ", 400 sent" : ", dropped");
}

static void
edge_env_fill(struct env *env, const struct edge *e, struct edge_tp *tp,
	      uint64_t conn_id, const union env_sa *src, const char *msg,
	      size_t len)
{
	memset(env, 0, sizeof(*env));
	env->type = ENV_SIP;
	env->transport = (uint8_t)tp->transport;
	if (env_transport_is(tp->transport, ENV_TP_WS))
		env->flags = ENV_F_WS;
	env->edge_id = (uint16_t)e->me->id;
	env->conn_id = conn_id;
	env->src = *src;
	env->local = tp->local;
	env->msg = msg;
	env->len = len;
}

/*
 * The cores for key, best first: the active cores in the rendezvous
 * order of key, then the standby ones in theirs.  A standby core is a
 * spare: it serves a key only while every active core refuses (stopped
 * or lost), so on a host with few CPUs one core takes whole batches
 * and the spare costs nothing until it is needed (bench/README.md).
 * The same on every edge: the order depends on the configuration and
 * the cluster's route key only.
 */
static void
edge_core_order(const struct edge *e, const void *key, size_t len,
		int *order)
{
	uint64_t kh = hash_sip(&e->route, key, len);

	hash_rendezvous_rank(kh, e->core_ids, e->n_active, order);
	if (e->n_cores > e->n_active)
		hash_rendezvous_rank(kh, e->core_ids + e->n_active,
				     e->n_cores - e->n_active,
				     order + e->n_active);
}

/*
 * Sends the envelope in env_buf (k bytes) to the first core of the
 * order of the Call-ID cid (edge_core_order) that takes it: a stopped
 * or lost core refuses, and the next one serves its Call-IDs.  0, or
 * the last core's error.
 */
static int
edge_send_in_order(struct edge *e, struct edge_slice cid, size_t k)
{
	int order[CFG_MAX_CORES], rc = -ENOENT;

	edge_core_order(e, cid.s, cid.len, order);
	for (int i = 0; i < e->n_cores; i++) {
		rc = link_send(e->link, order[i], e->env_buf, k);
		if (rc == 0)
			return 0;
		log_call(LOG_SYS_NET, LOG_LVL_DEBUG, cid.s, cid.len,
			 "core %d refused the message: %s", order[i],
			 strerror(-rc));
	}
	return rc;
}

static void
edge_fwd_request(struct edge *e, struct edge_tp *tp, uint64_t conn_id,
		 const union env_sa *src, const struct edge_sip_scan *sc,
		 const char *buf, size_t len)
{
	struct edge_slice cid = sc->first[EDGE_H_CALL_ID].value;
	struct edge_sip_scan fixed;
	int n, k;
	struct env env;
	char from[64];

	n = edge_sip_via_fix(buf, len, sc, src, e->msg_buf, e->buf_cap);
	if (n < 0) {
		edge_reject(e, tp, conn_id, src, sc, buf, len, "Bad Via header");
		return;
	}
	edge_env_fill(&env, e, tp, conn_id, src, e->msg_buf, (size_t)n);
	if (conn_id && env_transport_is(tp->transport, ENV_TP_SECURE)) {
		/* What this connection's certificate proved: the core
		 * decides with it whether the From domain is proven. */
		const struct edge_conn *c = edge_conn_find(&e->conns, conn_id);

		if (c && c->tls_names) {
			env.names = c->tls_names;
			env.names_len = strlen(c->tls_names);
		}
	}
	k = env_encode(&env, e->env_buf,
		       e->buf_cap + ENV_HDR_LEN + ENV_NAMES_MAX);
	if (k < 0) {
		edge_reject(e, tp, conn_id, src, sc, buf, len, "Message too large");
		return;
	}
	if (edge_send_in_order(e, cid, (size_t)k) == 0) {
		e->st.fwd_requests++;
		return;
	}
	e->st.drop_no_core++;
	if (edge_ratelimit_allow(&e->rl, uv_now(e->loop)))
		log_call(LOG_SYS_NET, LOG_LVL_WARN, cid.s, cid.len,
			 "%.*s from %s: no core reachable", (int)sc->method.len,
			 sc->method.s, env_sa_str(src, from, sizeof(from)));
	if (!edge_sip_can_reply(sc) ||
	    edge_sip_scan(&fixed, e->msg_buf, (size_t)n) != 0)
		return;
	if (edge_reply(e, tp, conn_id, src, &fixed, e->msg_buf, (size_t)n, len,
		       503, "Service Unavailable", "No core reachable") == 0)
		e->st.sent_503++;
	else
		e->st.drop_reply++;
}

/*
 * The known core named in the top Via branch of sc's message, or -1.
 * With verify, only when the branch's MAC holds for the message's
 * Call-ID: a response is trusted no further than that.
 */
static int
edge_branch_core(const struct edge *e, const struct edge_sip_scan *sc,
		 int verify)
{
	const struct edge_hdr *vh = &sc->first[EDGE_H_VIA];
	const struct edge_slice cid = sc->first[EDGE_H_CALL_ID].value;
	struct edge_via v;
	int core;

	if (vh->line.s == NULL ||
	    edge_sip_via_parse(&v, vh->value.s, vh->value.len) != 0 ||
	    v.branch.len == 0)
		return -1;
	if (verify)
		core = cid.s == NULL ? -1 :
		       sip_branch_verify(&e->branch, v.branch.s, v.branch.len,
					 cid.s, cid.len);
	else
		core = sip_branch_core(v.branch.s, v.branch.len);
	return core >= 0 && edge_core_known(e, core) ? core : -1;
}

/*
 * Whether the response scanned in sc may go on: its top Via branch is
 * one a core of this cluster minted for its Call-ID.  Anything else
 * (a stray, another proxy's, a forgery) is counted and dropped here,
 * before a core parses it: responses are not rate-limited (they
 * answer the cores' requests), so a flood of made-up ones must cost
 * no more than a scan and a SipHash.  *core gets the branch's core.
 */
static int
edge_response_ours(struct edge *e, const struct edge_sip_scan *sc, int *core)
{
	struct edge_slice cid = sc->first[EDGE_H_CALL_ID].value;

	*core = edge_branch_core(e, sc, 1);
	if (*core >= 0)
		return 1;
	e->st.drop_resp_foreign++;
	log_call(LOG_SYS_SIP, LOG_LVL_DEBUG, cid.s ? cid.s : "", cid.len,
		 "%d response on a branch not minted here dropped", sc->status);
	return 0;
}

static void
edge_fwd_response(struct edge *e, struct edge_tp *tp, uint64_t conn_id,
		  const union env_sa *src, int core, const char *buf,
		  size_t len, int status, struct edge_slice cid)
{
	struct env env;
	int k, rc;

	edge_env_fill(&env, e, tp, conn_id, src, buf, len);
	k = env_encode(&env, e->env_buf,
		       e->buf_cap + ENV_HDR_LEN + ENV_NAMES_MAX);
	rc = k < 0 ? k : link_send(e->link, core, e->env_buf, (size_t)k);
	/* Its core is lost (or stopped, or too busy to take it) with the
	 * transaction: another forwards what may go on without it (a 2xx
	 * of an INVITE, RFC 3261 16.7 step 5), as a proxy without that
	 * transaction does, instead of the caller never hearing that the
	 * call was answered. */
	if (rc == -EHOSTDOWN || rc == -EAGAIN)
		rc = edge_send_in_order(e, cid, (size_t)k);
	if (rc < 0) {
		e->st.drop_resp_core++;
		log_call(LOG_SYS_NET, LOG_LVL_DEBUG, cid.s, cid.len,
			 "%d response for core %d dropped: %s", status,
			 core, strerror(-rc));
		return;
	}
	e->st.fwd_responses++;
}

/* Whether buf starts with the method m (a literal, with its space). */
#define EDGE_IS_METHOD(buf, len, m) \
	((len) >= sizeof(m) - 1 && memcmp((buf), (m), sizeof(m) - 1) == 0)

/*
 * A 503 with Retry-After for a request over its source's rate: a UDP
 * REGISTER or INVITE is retransmitted up to ten times over 32 s (RFC
 * 3261 17.1.1.2, 17.1.2.2) unless answered, so one small answer saves
 * those.  Only within EDGE_LIMIT_REPLY_RATE per source, and only when the
 * answer is no larger than the request: the edge never amplifies for a
 * spoofed source.
 */
static void
edge_limit_reply(struct edge *e, struct edge_tp *tp, const union env_sa *src,
		 const char *buf, size_t len, uint64_t now_us)
{
	struct edge_sip_scan sc;
	int n;

	if (tp->transport != ENV_UDP ||
	    !(EDGE_IS_METHOD(buf, len, "REGISTER ") ||
	      EDGE_IS_METHOD(buf, len, "INVITE ")) ||
	    edge_limit_check(&e->limit, EDGE_LIMIT_REPLY, src, now_us, NULL) !=
	    EDGE_LIMIT_PASS)
		return;
	if (edge_sip_scan(&sc, buf, len) != 0 || !edge_sip_can_reply(&sc))
		return;
	/* The reply carries Retry-After (edge_sip_reply_build()). */
	n = edge_sip_reply_build(e->reply_buf, e->buf_cap, buf, len, &sc, 503,
				 "Service Unavailable", NULL);
	if (n < 0 || (size_t)n > len) {
		e->st.drop_reply++;
		return;
	}
	if (infra_has(&e->infra, tp->transport, src) ||
	    tp->send(tp, src, 0, e->reply_buf, (size_t)n) != 0) {
		e->st.drop_reply++;
		return;
	}
	e->st.limited_503++;
	edge_fwd_capture(e, tp, 0, src, 0, e->reply_buf, (size_t)n);
}

/*
 * Whether the request in buf from src is over its source's req_rate
 * (counted, logged once per blocking period, maybe answered 503): then
 * it goes no further, before any parsing.  Responses are not limited:
 * they answer the cores' own requests.
 */
static int
edge_limited(struct edge *e, struct edge_tp *tp, const union env_sa *src,
	     const char *buf, size_t len)
{
	uint64_t now_us = uv_hrtime() / 1000;
	char from[64];
	int v;

	if (EDGE_IS_METHOD(buf, len, "SIP/"))
		return 0;
	v = edge_limit_check(&e->limit, EDGE_LIMIT_REQ, src, now_us, NULL);
	if (v == EDGE_LIMIT_FULL)
		e->st.limit_full++;
	if (v == EDGE_LIMIT_PASS || v == EDGE_LIMIT_FULL)
		return 0;
	e->st.limited++;
	if (v == EDGE_LIMIT_DROP_FIRST)
		log_notice(LOG_SYS_SIP, "requests from %s%s over req_rate %d/s "
			   "(burst %d): dropped until it slows down",
			   env_sa_ip(src, from, sizeof(from)),
			   src->sa.sa_family == AF_INET6 ? " (its /64)" : "",
			   e->me->req_rate, e->me->req_burst);
	edge_limit_reply(e, tp, src, buf, len, now_us);
	return 1;
}

void
edge_fwd_input(struct edge *e, struct edge_tp *tp, uint64_t conn_id,
	       const union env_sa *src, const char *buf, size_t len)
{
	struct edge_sip_scan sc;
	const char *why;
	size_t use = len;
	char from[64];
	int core = -1;

	e->st.received++;
	if (edge_is_keepalive(buf, len)) {
		e->st.keepalives++;
		return;
	}
	prom_sip_count(&e->sip, PROM_IN, buf, len);
	if (edge_limited(e, tp, src, buf, len))
		return;
	if (len > (size_t)e->me->max_msg) {
		e->st.oversized++;
		if (edge_ratelimit_allow(&e->rl, uv_now(e->loop)))
			log_notice(LOG_SYS_SIP, "%zu-byte message from %s over "
				   "max_msg %d, dropped", len,
				   env_sa_str(src, from, sizeof(from)),
				   e->me->max_msg);
		return;
	}
	edge_fwd_capture(e, tp, conn_id, src, 1, buf, len);
	if (edge_sip_scan(&sc, buf, len) != 0) {
		why = "Bad start line";
	} else {
		if (!sc.is_request && !edge_response_ours(e, &sc, &core))
			return;
		why = edge_sip_check(&sc, len, &use);
	}
	if (why) {
		edge_reject(e, tp, conn_id, src, &sc, buf, len, why);
		return;
	}
	if (sc.is_request)
		edge_fwd_request(e, tp, conn_id, src, &sc, buf, use);
	else
		edge_fwd_response(e, tp, conn_id, src, core, buf, use,
				  sc.status, sc.first[EDGE_H_CALL_ID].value);
}

/*
 * Sends ENV_CONN_CLOSED for (transport, conn_id) to core_id, or when
 * core_id is 0 to the first core of the order of the conn id
 * (edge_core_order) that takes it.  msg: a request that could not be
 * delivered down that connection (the core answers its branch with
 * 430, or, with ENV_F_DIAL_FAILED in flags, fails it as a transport
 * error), or NULL.
 */
static void
edge_conn_closed_send(struct edge *e, int core_id, int transport,
		      uint64_t conn_id, const union env_sa *peer,
		      const union env_sa *local, const char *msg, size_t len,
		      unsigned flags)
{
	int order[CFG_MAX_CORES], k, rc = -EAGAIN;
	unsigned char key[8];
	struct env env;

	for (int i = 0; i < 8; i++)
		key[i] = (unsigned char)(conn_id >> (56 - 8 * i));

	memset(&env, 0, sizeof(env));
	env.type = ENV_CONN_CLOSED;
	env.transport = (uint8_t)transport;
	env.flags = (uint8_t)(flags |
			      (env_transport_is(transport, ENV_TP_WS) ? ENV_F_WS : 0));
	env.edge_id = (uint16_t)e->me->id;
	env.conn_id = conn_id;
	env.src = *peer;
	if (local)
		env.local = *local;
	else
		env.local.sa.sa_family = peer->sa.sa_family;
	env.msg = msg ? msg : "";
	env.len = msg ? len : 0;
	k = env_encode(&env, e->env_buf,
		       e->buf_cap + ENV_HDR_LEN + ENV_NAMES_MAX);
	if (k < 0)
		return;
	if (core_id) {
		rc = link_send(e->link, core_id, e->env_buf, (size_t)k);
	} else {
		edge_core_order(e, key, sizeof(key), order);
		for (int i = 0; i < e->n_cores && rc < 0; i++)
			rc = link_send(e->link, order[i], e->env_buf, (size_t)k);
	}
	if (rc == 0)
		e->st.conn_closed_sent++;
	else
		log_info(LOG_SYS_NET, "connection " ENV_CONN_FMT " closed: no core "
			 "told (%s)", ENV_CONN_ARGS(conn_id), strerror(-rc));
}

void
edge_conn_closed(struct edge *e, struct edge_conn *c, const char *why)
{
	char peer[64];

	if (!c->in_table)
		return;
	edge_conn_del(&e->conns, c);
	e->st.conns_closed++;
	log_at(LOG_SYS_NET, c->used ? LOG_LVL_INFO : LOG_LVL_DEBUG,
	       "%s connection " ENV_CONN_FMT " %s %s closed: %s",
	       env_transport_name(c->transport), ENV_CONN_ARGS(c->id),
	       c->outbound ? "to" : "from",
	       env_sa_str(&c->peer, peer, sizeof(peer)), why);
	if (c->used && e->link)
		edge_conn_closed_send(e, 0, c->transport, c->id, &c->peer,
				      &c->local, NULL, 0, 0);
}

void
edge_fwd_undelivered(struct edge *e, int transport, uint64_t conn_id,
		     const union env_sa *peer, const char *buf, size_t len,
		     unsigned flags)
{
	struct edge_sip_scan sc;
	int core;

	/* An ACK has no transaction to fail; a response has no branch of
	 * ours to fail: the sender retransmits or times out. */
	if (edge_sip_scan(&sc, buf, len) != 0 || !sc.is_request ||
	    (sc.method.len == 3 && memcmp(sc.method.s, "ACK", 3) == 0) ||
	    (core = edge_branch_core(e, &sc, 0)) < 0)
		return;
	e->st.undelivered++;
	edge_conn_closed_send(e, core, transport, conn_id, peer, NULL, buf,
			      len, ENV_F_DIAL_FAILED | flags);
}

void
edge_fwd_unreachable(struct edge *e, int transport, const union env_sa *dst,
		     const char *quote, size_t len)
{
	char head[EDGE_ICMP_QUOTE_MAX], to[64];
	int n;

	e->st.icmp_unreachable++;
	/* A response to a party gone, or a quote too short to name the
	 * branch: no transaction of ours to fail early. */
	n = edge_sip_quote_head(quote, len, head, sizeof(head));
	if (n < 0)
		return;
	log_debug(LOG_SYS_NET, "%s to %s: ICMP unreachable",
		  env_transport_name(transport), env_sa_str(dst, to, sizeof(to)));
	edge_fwd_undelivered(e, transport, 0, dst, head, (size_t)n, 0);
}

/* A core's message for a connection: write it, or tell the core the
 * connection is gone.  Returns what the send returned. */
static int
edge_fwd_to_conn(struct edge *e, const struct env *env)
{
	struct edge_conn *c = edge_conn_find(&e->conns, env->conn_id);
	int rc;

	if (c == NULL) {
		e->st.drop_conn_gone++;
		log_debug(LOG_SYS_NET, "core %d's message for closed %s "
			  "connection " ENV_CONN_FMT " dropped", env->core_id,
			  env_transport_name(env->transport),
			  ENV_CONN_ARGS(env->conn_id));
		edge_conn_closed_send(e, env->core_id, env->transport,
				      env->conn_id, &env->src, NULL, env->msg,
				      env->len, 0);
		return 0;
	}
	rc = c->ops->send(c, env->msg, env->len);
	if (rc == 0) {
		c->used = 1;
		e->st.sent++;
		prom_sip_count(&e->sip, PROM_OUT, env->msg, env->len);
		if (e->hep.fd >= 0)
			edge_hep_capture(e, c->transport, &c->local, &c->peer,
					 env->msg, env->len);
	} else if (rc == -ENOBUFS) {
		e->st.drop_send_full++;
		e->st.conns_slow++;
		c->used = 1;
		c->ops->close(c, "write queue full (slow reader)");
	}
	return rc;
}

/* A core could not parse a request this edge forwarded (its Via
 * already fixed; fixing it again changes nothing): the 400 the edge
 * would have sent had it parsed the request itself. */
static void
edge_fwd_reject(struct edge *e, const struct env *env)
{
	struct edge_tp *tp = e->tp[env->transport];
	struct edge_sip_scan sc;

	if (tp == NULL || edge_sip_scan(&sc, env->msg, env->len) != 0) {
		e->st.drop_bad_env++;
		return;
	}
	edge_reject(e, tp, env->conn_id, &env->src, &sc, env->msg, env->len,
		    "Unparsable message");
}

void
edge_fwd_from_core(void *arg, const char *buf, size_t len)
{
	struct edge *e = arg;
	struct edge_tp *tp;
	struct env env;
	int rc;

	e->st.from_cores++;
	rc = env_decode(&env, buf, len);
	if (rc == 0 && env.type == ENV_REJECT) {
		edge_fwd_reject(e, &env);
		return;
	}
	if (rc < 0 || env.type != ENV_SIP) {
		e->st.drop_bad_env++;
		if (edge_ratelimit_allow(&e->rl, uv_now(e->loop)))
			log_warn(LOG_SYS_NET, "bad envelope from a core (%zu "
				 "bytes): %s", len, rc < 0 ? strerror(-rc) :
				 "not a SIP message");
		return;
	}
	if (env.conn_id) {
		rc = edge_fwd_to_conn(e, &env);
		if (rc < 0 && rc != -ENOBUFS) {
			e->st.drop_send_err++;
			if (edge_ratelimit_allow(&e->rl, uv_now(e->loop)))
				log_warn(LOG_SYS_NET, "send on connection " ENV_CONN_FMT
					 ": %s", ENV_CONN_ARGS(env.conn_id),
					 strerror(-rc));
		}
		return;
	}
	if (!env_transport_is(env.transport, ENV_TP_DIAL)) {
		/* A browser cannot be dialled: only its own connection
		 * reaches it. */
		e->st.drop_ws_no_conn++;
		log_debug(LOG_SYS_NET, "core %d: %s message without a "
			  "connection dropped", env.core_id,
			  env_transport_name(env.transport));
		return;
	}
	tp = e->tp[env.transport];
	if (tp == NULL) {
		e->st.drop_no_tp++;
		log_debug(LOG_SYS_NET, "no %s transport for core %d's message",
			  env_transport_name(env.transport), env.core_id);
		return;
	}
	rc = tp->send(tp, &env.src, env.conn_id, env.msg, env.len);
	if (rc == 0) {
		e->st.sent++;
		prom_sip_count(&e->sip, PROM_OUT, env.msg, env.len);
		edge_fwd_capture(e, tp, 0, &env.src, 0, env.msg, env.len);
	} else {
		edge_fwd_send_failed(e, tp, &env.src, env.msg, env.len, rc);
	}
}

void
edge_fwd_send_failed(struct edge *e, struct edge_tp *tp,
		     const union env_sa *dst, const char *buf, size_t len,
		     int rc)
{
	char to[64];

	if (rc == -EAGAIN || rc == -ENOBUFS) {
		e->st.drop_send_full++;
		return;
	}
	e->st.drop_send_err++;
	if (edge_ratelimit_allow(&e->rl, uv_now(e->loop)))
		log_warn(LOG_SYS_NET, "send to %s: %s",
			 env_sa_str(dst, to, sizeof(to)), strerror(-rc));
	edge_fwd_undelivered(e, tp->transport, 0, dst, buf, len, 0);
}

void
edge_fwd_core_live(void *arg, int core_id, int alive)
{
	struct edge *e = arg;

	if (alive)
		log_notice(LOG_SYS_NET, "core %d heard again: its Call-IDs come "
			   "back to it", core_id);
	else
		log_warn(LOG_SYS_NET, "core %d silent for %d ms: taken as lost; "
			 "its Call-IDs go to the next core of their order until "
			 "it is heard again", core_id, e->cfg->link_dead_ms);
}
