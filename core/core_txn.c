/*
 * core_txn.c - RFC 3261 section 17 transactions as a proxy uses them,
 * and the proxy's response context of section 16.7 (best response,
 * CANCEL of the other branches).  The messages it sends on its own
 * are built in core_dialog.c.
 *
 * A server transaction (stx) is keyed by the top Via's branch, its
 * sent-by and the method (ACK and CANCEL find the INVITE's); a client
 * transaction (ctx) by the branch this core wrote, which also names the
 * core (lib/sip.h) so responses come back here through any edge.
 *
 * Timers: each object has one uv_timer armed to its earliest deadline
 * (retransmission A/E/G, timeout B/F/C, lifetime H/I/J/K and the
 * RFC 6026 Accepted wait), so a transaction costs one timer node in
 * libuv's heap.  Everything is UDP here, so the "unreliable" timer
 * values apply.  Objects are freed only from their own timer callback
 * (core_stx_kill arms it at 0): nothing up the stack is left dangling.
 * Time is the core's clock (core_now_ms); what a timer does is
 * core_stx_timer_run/core_ctx_timer_run(now), which the unit tests
 * call with a time of their own.  Timeouts and every final response
 * made up here are logged, under the call's log context.
 *
 * A response comes parsed by libosip2 or, when nothing done with it
 * needs the parsed message (core_txn_scan_match: a 1xx or 2xx on a
 * branch of ours without SDP for rtpctl), only scanned from its text;
 * both take the same steps (struct core_resp, core_txn_respond).
 */
#include "core/core_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_splice.h"
#include "lib/hash.h"
#include "lib/log.h"

/* ---- the tables ---------------------------------------------------- */

static int
core_key_eq(const struct htab_node *n, const void *key)
{
	return strcmp(((const struct core_hnode *)n)->key, key) == 0;
}

static struct core_hnode *
core_key_find(const struct htab *t, const char *key)
{
	return (struct core_hnode *)htab_find(t, hash_sip(hash_process_key(), key, strlen(key)),
					      core_key_eq, key);
}

static int
core_key_add(struct htab *t, struct core_hnode *n)
{
	return htab_add(t, &n->h, hash_sip(hash_process_key(), n->key,
					   strlen(n->key)));
}

/* ---- helpers ------------------------------------------------------- */

const char *
core_top_branch(const osip_message_t *m, osip_via_t **via_out)
{
	osip_via_t *via = NULL;
	osip_generic_param_t *br = NULL;

	if (osip_message_get_via(m, 0, &via) < 0 || via == NULL)
		return NULL;
	if (via_out)
		*via_out = via;
	if (osip_via_param_get_byname(via, "branch", &br) != 0 || br == NULL)
		return NULL;
	return br->gvalue;
}

/* A branch context's table key: its branch, and "|C" for a CANCEL's. */
static void
core_ctx_key(char *out, size_t cap, const char *branch, int is_cancel)
{
	struct sip_cat b;

	sip_cat_init(&b, out, cap);
	sip_cat_str(&b, branch);
	if (is_cancel)
		sip_cat_mem(&b, "|C", 2);
}

int
core_via_port(const osip_via_t *via)
{
	if (via->port)
		return atoi(via->port);
	return env_transport_sip_port(via->protocol ?
		env_transport_parse(via->protocol, strlen(via->protocol)) : -1);
}

/*
 * The server transaction key (RFC 3261 17.2.3): branch, sent-by and
 * method, with ACK and (when as_invite) CANCEL mapped to INVITE.  A
 * request without an RFC 3261 branch falls back to Call-ID, CSeq
 * number and From tag.
 */
static int
core_stx_key(const osip_message_t *req, int as_invite, char *out, size_t cap)
{
	osip_via_t *via = NULL;
	const char *br = core_top_branch(req, &via);
	const char *method = req->sip_method;
	struct sip_cat b;

	if (as_invite || strcmp(method, "ACK") == 0)
		method = "INVITE";
	if (via == NULL || req->cseq == NULL || req->call_id == NULL)
		return -EINVAL;
	sip_cat_init(&b, out, cap);
	if (br && strncmp(br, "z9hG4bK", 7) == 0) {
		/* The implied port, so an explicit default matches none. */
		long long port = core_via_port(via);

		sip_cat_str(&b, br);
		sip_cat_ch(&b, '|');
		sip_cat_str(&b, via->host);
		sip_cat_ch(&b, ':');
		if (port < 0)
			sip_cat_ch(&b, '-');
		sip_cat_uint(&b, (unsigned long long)(port < 0 ? -port : port));
	} else {
		osip_generic_param_t *ft = NULL;

		osip_from_get_tag(req->from, &ft);
		sip_cat_str(&b, req->call_id->number);
		sip_cat_ch(&b, '|');
		sip_cat_str(&b, req->cseq->number);
		sip_cat_ch(&b, '|');
		sip_cat_str(&b, ft ? ft->gvalue : NULL);
	}
	sip_cat_ch(&b, '|');
	sip_cat_str(&b, method);
	return b.over ? -E2BIG : 0;
}

static int
core_t1(struct core *c)
{
	return c->cfg->t1_ms;
}

/* ---- server transactions ------------------------------------------- */

static void core_stx_timer_cb(uv_timer_t *t);
static void core_ctx_timer_cb(uv_timer_t *t);

static void
core_arm(uv_timer_t *t, uint64_t now, uint64_t a, uint64_t b, uv_timer_cb cb)
{
	uint64_t at = a && (!b || a < b) ? a : b;

	if (at == 0) {
		uv_timer_stop(t);
		return;
	}
	uv_timer_start(t, cb, at > now ? at - now : 0, 0);
}

static void
core_stx_arm(struct core_stx *s)
{
	core_arm(&s->timer, core_now_ms(s->core), s->g_at, s->end_at,
		 core_stx_timer_cb);
}

static void
core_stx_kill(struct core_stx *s)
{
	s->state = STX_TERMINATED;
	s->g_at = 0;
	s->end_at = core_now_ms(s->core);
	uv_timer_start(&s->timer, core_stx_timer_cb, 0, 0);
}

struct core_stx *
core_stx_find(struct core *c, const osip_message_t *req, int as_invite)
{
	char key[CORE_KEY_MAX];

	if (core_stx_key(req, as_invite, key, sizeof(key)) != 0)
		return NULL;
	return (struct core_stx *)core_key_find(&c->stx_tab, key);
}

struct core_stx *
core_stx_new(struct core *c, const struct env *in, osip_message_t *req)
{
	struct core_stx *s;

	if (c->st.stx_live >= (uint64_t)c->cfg->max_transactions) {
		c->st.overload++;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	if (core_stx_key(req, 0, s->h.key, sizeof(s->h.key)) != 0 ||
	    core_key_add(&c->stx_tab, &s->h) != 0) {
		free(s);
		return NULL;
	}
	s->core = c;
	core_call_id(req, s->call_id, sizeof(s->call_id));
	list_init(&s->media_ops);
	s->state = STX_PROCEEDING;
	s->invite = MSG_IS_INVITE(req);
	core_leg_from_env(&s->up, in);
	s->reply_max = core_reply_max(in);
	s->req = req;
	/* Measured, not decided on: the latency histogram wants finer
	 * than the loop's milliseconds. */
	s->born_ns = uv_hrtime();
	s->method = (uint8_t)prom_sip_method(req->sip_method,
					     strlen(req->sip_method));
	uv_timer_init(c->loop, &s->timer);
	s->timer.data = s;
	c->st.stx_live++;
	/* RFC 3261 16.2: a stateful proxy answers an INVITE with 100 at
	 * once, which stops the upstream retransmissions (timer A). */
	if (s->invite)
		core_stx_respond_code(s, 100, NULL);
	return s;
}

static void
core_stx_closed_cb(uv_handle_t *h)
{
	struct core_stx *s = h->data;

	if (s->req)
		osip_message_free(s->req);
	free(s->resp);
	free(s);
}

static void
core_ctx_closed_cb(uv_handle_t *h)
{
	struct core_ctx *x = h->data;

	free(x->req);
	if (x->final)
		osip_message_free(x->final);
	free(x);
}

static void
core_stx_destroy(struct core_stx *s)
{
	struct core *c = s->core;

	htab_del(&c->stx_tab, &s->h.h);
	core_media_stx_gone(s);
	core_fed_free(s->fed);
	s->fed = NULL;
	for (int i = 0; i < s->n_br; i++) {
		struct core_ctx *x = s->br[i];

		htab_del(&c->ctx_tab, &x->h.h);
		c->st.ctx_live--;
		uv_close((uv_handle_t *)&x->timer, core_ctx_closed_cb);
	}
	s->n_br = 0;
	c->st.stx_live--;
	uv_close((uv_handle_t *)&s->timer, core_stx_closed_cb);
}

static void
core_stx_timer_cb(uv_timer_t *t)
{
	struct core_stx *s = t->data;

	log_ctx_set(s->call_id, strlen(s->call_id));
	core_stx_timer_run(s, core_now_ms(s->core));
	log_ctx_clear();
}

void
core_stx_timer_run(struct core_stx *s, uint64_t now)
{
	struct core *c = s->core;

	if (s->state == STX_TERMINATED || (s->end_at && now >= s->end_at)) {
		if (s->state == STX_COMPLETED && s->invite)
			log_info(LOG_SYS_TXN, "no ACK for our %d (timer H)",
				 s->resp_code);
		core_stx_destroy(s);
		return;
	}
	if (s->g_at && now >= s->g_at) {
		/* Timer G: the final response until the ACK comes. */
		core_send(c, &s->up, s->resp, s->resp_len);
		s->g_ms = s->g_ms * 2 > c->cfg->t2_ms ? c->cfg->t2_ms :
			  s->g_ms * 2;
		s->g_at = now + (uint64_t)s->g_ms;
	}
	core_stx_arm(s);
}

/* The text of r to send upstream: libosip2's message as core_msg_text
 * writes it, or the scanned text without our Via.  Release it with
 * core_msg_text_free. */
static int
core_resp_text(struct core *c, const struct core_resp *r, char **buf,
	       size_t *len)
{
	int n;

	if (r->msg)
		return core_msg_text(c, r->msg, 0, buf, len);
	n = core_splice_scanned(c->splicebuf, c->sendcap, r->raw, r->len,
				r->scan);
	if (n < 0)
		return n;
	*buf = c->splicebuf;
	*len = (size_t)n;
	return 0;
}

/* core_stx_respond for either form of response; borrows r.  Unless it
 * is over most bytes: then s moves on as if it had gone (and was lost). */
static void
core_stx_send(struct core_stx *s, const struct core_resp *r, size_t most)
{
	struct core *c = s->core;
	uint64_t now = core_now_ms(c);
	int code = r->code;
	/* A callee's 2xx racing our final answer (a CANCEL, a 6xx, a
	 * timeout): RFC 3261 16.7 step 5 forwards every 2xx, so the
	 * caller can ACK and BYE the call it did not want. */
	int late_2xx = s->invite && code >= 200 && code < 300 &&
		       (s->state == STX_COMPLETED || s->state == STX_CONFIRMED);
	char *buf = NULL;
	size_t len = 0;

	if (!late_2xx && (s->state == STX_TERMINATED ||
			  s->state == STX_CONFIRMED ||
			  s->state == STX_COMPLETED ||
			  (s->state == STX_ACCEPTED &&
			   (code < 200 || code >= 300))))
		return;
	if (core_resp_text(c, r, &buf, &len) != 0) {
		if (late_2xx)
			c->st.tx_fail++;
		return;
	}
	if (late_2xx) {
		core_send(c, &s->up, buf, len);
		core_msg_text_free(c, buf);
		return;
	}
	free(s->resp);
	s->resp = NULL;
	s->resp_len = 0;
	if (core_reply_fits(c, most, len)) {
		core_send(c, &s->up, buf, len);
		s->resp = malloc(len);
		if (s->resp) {
			memcpy(s->resp, buf, len);
			s->resp_len = len;
		}
	}
	core_msg_text_free(c, buf);
	/* The first answer other than 100 ends the proxy's part of it. */
	if (code > 100 && s->resp_code <= 100)
		prom_hist_observe(&c->latency[s->method],
				  uv_hrtime() - s->born_ns);
	s->resp_code = code;
	if (code < 200)
		return;

	/* Final: the request is no longer needed to build responses.  An
	 * initial INVITE that failed leaves no media session behind. */
	if (code >= 300 && s->invite && s->req && !core_has_to_tag(s->req) &&
	    s->media_used)
		core_media_call_failed(s);
	if (s->req) {
		osip_message_free(s->req);
		s->req = NULL;
	}
	if (code < 300 && s->invite) {
		s->state = STX_ACCEPTED;	/* RFC 6026 timer L */
		s->end_at = now + 64 * (uint64_t)core_t1(c);
	} else if (s->invite) {
		s->state = STX_COMPLETED;	/* timers G and H */
		s->g_ms = core_t1(c);
		s->g_at = s->resp &&
			  !env_transport_is(s->up.transport, ENV_TP_STREAM) ?
			  now + (uint64_t)s->g_ms : 0;
		s->end_at = now + 64 * (uint64_t)core_t1(c);
	} else {
		s->state = STX_COMPLETED;	/* timer J */
		s->end_at = now + 64 * (uint64_t)core_t1(c);
	}
	core_stx_arm(s);
}

/* core_stx_send of libosip2's resp, which it takes. */
static void
core_stx_send_msg(struct core_stx *s, osip_message_t *resp, size_t most)
{
	struct core_resp r = { .code = resp->status_code, .msg = resp };

	core_stx_send(s, &r, most);
	osip_message_free(resp);
}

void
core_stx_respond(struct core_stx *s, osip_message_t *resp)
{
	core_stx_send_msg(s, resp, SIZE_MAX);
}

/* Logs a final response the proxy makes up rather than forwards:
 * failures of ours (5xx) and timeouts at notice, the rest at info. */
static void
core_stx_log_made_up(const struct core_stx *s, int code, const char *why)
{
	if (code < 200 || s->state != STX_PROCEEDING)
		return;
	log_at(LOG_SYS_TXN, code >= 500 || code == 408 ? LOG_LVL_NOTICE :
	       LOG_LVL_INFO, "answering %d %s%s%s", code, core_reason(code),
	       why ? ": " : "", why ? why : "");
}

void
core_stx_respond_code(struct core_stx *s, int code, const char *reason)
{
	osip_message_t *r;

	if (s->req == NULL)
		return;
	core_stx_log_made_up(s, code, reason);
	r = core_resp_build(s->core, s->req, code, reason);
	if (r)
		core_stx_send_msg(s, r, s->reply_max);
	else if (code >= 200)
		core_stx_kill(s);
}

/* A response we make up, with a Warning (RFC 3261 20.43) naming why. */
void
core_stx_respond_warn(struct core_stx *s, int code, const char *warning)
{
	osip_message_t *r;
	char w[300];

	if (s->req == NULL)
		return;
	core_stx_log_made_up(s, code, warning);
	r = core_resp_build(s->core, s->req, code, NULL);
	if (r == NULL) {
		core_stx_kill(s);
		return;
	}
	if (warning) {
		snprintf(w, sizeof(w), "399 sipmesh \"%.250s\"", warning);
		osip_message_set_header(r, "Warning", w);
	}
	core_stx_send_msg(s, r, s->reply_max);
}

void
core_stx_retransmit(struct core_stx *s)
{
	struct core *c = s->core;

	c->st.retrans_absorbed++;
	if (s->resp && s->state != STX_TERMINATED)
		core_send(c, &s->up, s->resp, s->resp_len);
}

void
core_stx_ack(struct core_stx *s)
{
	if (s->state != STX_COMPLETED)
		return;
	s->state = STX_CONFIRMED;	/* timer I */
	s->g_at = 0;
	s->end_at = core_now_ms(s->core) + (uint64_t)s->core->cfg->t4_ms;
	core_stx_arm(s);
}

/* ---- client transactions ------------------------------------------- */

static void
core_ctx_arm(struct core_ctx *x)
{
	uint64_t a = x->retx_at;

	if (x->failover_at && (!a || x->failover_at < a))
		a = x->failover_at;
	core_arm(&x->timer, core_now_ms(x->core), a, x->timeout_at,
		 core_ctx_timer_cb);
}

/* A branch is over: no retransmission, no timeout. */
static void
core_ctx_finish(struct core_ctx *x, int state, int code)
{
	x->state = state;
	x->code = code;
	x->retx_at = 0;
	x->timeout_at = 0;
	x->failover_at = 0;
	x->timer_c = 0;
	core_ctx_arm(x);
}

static struct core_ctx *
core_ctx_alloc(struct core_stx *s, const struct core_leg *down,
	       const char *branch, int is_cancel)
{
	struct core *c = s->core;
	struct core_ctx *x;

	if (s->n_br == CORE_MAX_BRANCHES)
		return NULL;
	x = calloc(1, sizeof(*x));
	if (x == NULL)
		return NULL;
	core_ctx_key(x->branch, sizeof(x->branch), branch, 0);
	core_ctx_key(x->h.key, sizeof(x->h.key), branch, is_cancel);
	if (core_key_add(&c->ctx_tab, &x->h) != 0) {
		free(x);
		return NULL;
	}
	x->core = c;
	x->stx = s;
	x->is_cancel = is_cancel;
	x->down = *down;
	x->state = CTX_CALLING;
	uv_timer_init(c->loop, &x->timer);
	x->timer.data = x;
	s->br[s->n_br++] = x;
	c->st.ctx_live++;
	return x;
}

/* Serialises m into x->req and sends it, starting timers A/E and B/F.
 * derived: m is a copy of the request being handled, made to forward
 * it (core_msg_text). */
static int
core_ctx_start(struct core_ctx *x, osip_message_t *m, int derived)
{
	struct core *c = x->core;
	uint64_t now = core_now_ms(c);
	char *buf = NULL;
	size_t len = 0;

	if (core_msg_text(c, m, derived, &buf, &len) != 0)
		return -EINVAL;
	x->req = malloc(len);
	if (x->req == NULL) {
		core_msg_text_free(c, buf);
		return -ENOMEM;
	}
	memcpy(x->req, buf, len);
	x->req_len = len;
	core_msg_text_free(c, buf);
	/* Down a connection only its edge can reach: if that edge is gone
	 * (killed, its host down) nothing will ever answer, and a binding
	 * it held must not keep the caller waiting for timer B/F.  Failed
	 * from the timer, not here: the caller may still be forking. */
	if (core_send(c, &x->down, x->req, x->req_len) < 0 &&
	    x->down.conn_id != 0)
		x->flow_lost = 1;
	x->retx_ms = core_t1(c);
	/* Timers A and E only where the transport may lose messages. */
	x->retx_at = !env_transport_is(x->down.transport, ENV_TP_STREAM) ?
		     now + (uint64_t)x->retx_ms : 0;
	x->timeout_at = x->flow_lost ? now : now + 64 * (uint64_t)core_t1(c);
	/* A foreign domain's target that drops datagrams is given up long
	 * before timer B/F (core_fed.c); over a stream the edge reports a
	 * refused connection itself. */
	if (x->stx->fed && !x->is_cancel &&
	    !env_transport_is(x->down.transport, ENV_TP_STREAM))
		x->failover_at = now + (uint64_t)c->cfg->failover_ms;
	core_ctx_arm(x);
	return 0;
}

/*
 * Takes ownership of fwd.  The branch goes out at once, or once
 * rtpctl has rewritten its SDP (CTX_MEDIA_WAIT).
 */
struct core_ctx *
core_ctx_new(struct core_stx *s, const struct core_leg *down,
	     osip_message_t *fwd)
{
	struct core *c = s->core;
	char branch[SIP_BRANCH_MAX];
	struct core_ctx *x = NULL;
	int rc;

	if (s->n_br == CORE_MAX_BRANCHES ||
	    core_via_push(c, fwd, down, ++c->token, branch,
			  sizeof(branch)) != 0)
		goto done;
	x = core_ctx_alloc(s, down, branch, 0);
	if (x == NULL)
		goto done;
	x->invite = MSG_IS_INVITE(fwd);
	x->offered = core_media_has_sdp(fwd, NULL, NULL);
	x->state = CTX_MEDIA_WAIT;
	rc = core_media_branch(x, fwd);
	if (rc > 0)
		return x;	/* fwd now belongs to the media command */
	if (rc < 0)
		core_ctx_fail(x, 503, "no rtpctl reachable");
	else
		core_ctx_send_first(x, fwd);
done:
	osip_message_free(fwd);
	return x;
}

/* Sends a branch's request for the first time; borrows m. */
void
core_ctx_send_first(struct core_ctx *x, osip_message_t *m)
{
	if (x->state != CTX_MEDIA_WAIT)
		return;		/* cancelled meanwhile */
	x->state = CTX_CALLING;
	/* A branch sent from an rtpctl answer is past its envelope. */
	if (core_ctx_start(x, m, x->stx->req == x->core->rx.msg) != 0) {
		core_ctx_fail(x, 500, "cannot send the request");
		return;
	}
	x->core->st.forwarded++;
}

/* A branch that never got a response ends with a code we make up. */
void
core_ctx_fail(struct core_ctx *x, int code, const char *why)
{
	if (x->state != CTX_MEDIA_WAIT && x->state != CTX_CALLING &&
	    x->state != CTX_PROCEEDING)
		return;
	snprintf(x->why, sizeof(x->why), "%s", why ? why : "");
	core_ctx_finish(x, CTX_COMPLETED, code);
	if (!x->is_cancel)
		core_stx_branch_done(x->stx);
}

void
core_ctx_transport_error(struct core_ctx *x, const char *why)
{
	x->downstream = 1;
	core_ctx_fail(x, 503, why);
}

struct core_ctx *
core_ctx_find(struct core *c, const char *branch, int is_cancel)
{
	char key[CORE_KEY_MAX];

	core_ctx_key(key, sizeof(key), branch, is_cancel);
	return (struct core_ctx *)core_key_find(&c->ctx_tab, key);
}

static void
core_ctx_send_cancel(struct core_ctx *x)
{
	struct core_stx *s = x->stx;
	osip_message_t *m;
	struct core_ctx *cx;

	if (x->cancel_sent)
		return;
	x->cancel_sent = 1;
	/* RFC 3261 9.1: no final response 64*T1 after the CANCEL and the
	 * branch counts as cancelled; timer C no longer applies. */
	x->timer_c = 0;
	x->timeout_at = core_now_ms(s->core) + 64 * (uint64_t)core_t1(s->core);
	core_ctx_arm(x);
	m = core_dialog_cancel(x);
	if (m == NULL)
		return;
	cx = core_ctx_alloc(s, &x->down, x->branch, 1);
	if (cx && core_ctx_start(cx, m, 0) != 0)
		cx->state = CTX_COMPLETED;
	osip_message_free(m);
}

void
core_ctx_cancel(struct core_ctx *x)
{
	if (!x->invite || x->is_cancel || x->cancel_sent)
		return;
	if (x->state == CTX_PROCEEDING) {
		core_ctx_send_cancel(x);
	} else if (x->state == CTX_CALLING || x->state == CTX_MEDIA_WAIT) {
		/* RFC 3261 9.1: no CANCEL before a provisional response.
		 * Stop retransmitting and count the branch as 487 now (as
		 * Kamailio's default cancel_b_method does), so the caller is
		 * not kept waiting for timer B; a late 1xx still gets its
		 * CANCEL. */
		x->cancel_wanted = 1;
		core_ctx_finish(x, CTX_COMPLETED, 487);
	}
}

static void
core_ctx_timer_cb(uv_timer_t *t)
{
	struct core_ctx *x = t->data;

	log_ctx_set(x->stx->call_id, strlen(x->stx->call_id));
	core_ctx_timer_run(x, core_now_ms(x->core));
	log_ctx_clear();
}

static void
core_ctx_log_timeout(const struct core_ctx *x)
{
	char dst[64];

	env_sa_str(&x->down.dst, dst, sizeof(dst));
	if (x->is_cancel)
		log_info(LOG_SYS_TXN, "no answer from %s to our CANCEL of %s",
			 dst, x->branch);
	else if (x->cancel_sent)
		log_notice(LOG_SYS_TXN, "no final response from %s to %s "
			   "%d ms after our CANCEL", dst, x->branch,
			   64 * core_t1(x->core));
	else
		log_notice(LOG_SYS_TXN, "no final response from %s to %s in "
			   "%d ms (timer %c)", dst, x->branch,
			   64 * core_t1(x->core), x->invite ? 'B' : 'F');
}

void
core_ctx_timer_run(struct core_ctx *x, uint64_t now)
{
	struct core *c = x->core;

	if (x->retx_at && now >= x->retx_at) {
		/* Timers A (doubling) and E (doubling, capped at T2). */
		core_send(c, &x->down, x->req, x->req_len);
		x->retx_ms *= 2;
		if (!x->invite && x->retx_ms > c->cfg->t2_ms)
			x->retx_ms = c->cfg->t2_ms;
		x->retx_at = now + (uint64_t)x->retx_ms;
	}
	if (x->failover_at && now >= x->failover_at) {
		char dst[64];

		c->st.timeouts++;
		log_notice(LOG_SYS_TXN, "no response from %s to %s in %d ms: "
			   "next target", env_sa_str(&x->down.dst, dst,
						     sizeof(dst)),
			   x->branch, c->cfg->failover_ms);
		/* A late 1xx of an INVITE still gets its CANCEL. */
		x->cancel_wanted = x->invite;
		snprintf(x->why, sizeof(x->why), "no response from %s", dst);
		core_ctx_finish(x, CTX_COMPLETED, 408);
		core_stx_branch_done(x->stx);
		return;
	}
	if (x->flow_lost) {
		x->flow_lost = 0;
		c->st.flows_lost++;
		/* While the location store catches up with Redis (a failover),
		 * the binding may be one another host replaced meanwhile: the
		 * flow is not known to have failed, and 503 + Retry-After has
		 * the caller try again once the store is reconciled. */
		if (!loc_synced(c->loc, NULL))
			core_ctx_fail(x, 503, "no edge took it down its "
				      "connection; location store not in "
				      "step with Redis yet");
		else
			core_ctx_fail(x, 430, "no edge took it down its "
				      "connection");
		return;
	}
	if (x->timeout_at && now >= x->timeout_at) {
		if (x->timer_c) {
			/* Timer C (RFC 3261 16.8): ringing too long. */
			log_info(LOG_SYS_TXN, "branch %s rang %d s (timer C): "
				 "CANCEL", x->branch, c->cfg->timer_c_s);
			x->timer_c = 0;
			x->timeout_at = now + 64 * (uint64_t)core_t1(c);
			core_ctx_send_cancel(x);
		} else {
			c->st.timeouts++;
			core_ctx_log_timeout(x);
			core_ctx_finish(x, CTX_COMPLETED,
					x->stx->cancelled ? 487 : 408);
			if (!x->is_cancel)
				core_stx_branch_done(x->stx);
			return;
		}
	}
	core_ctx_arm(x);
}

/* Lower is better: 6xx wins, then the lowest class (RFC 3261 16.7.6);
 * answers we made up (timeouts) lose to real ones of the same class. */
static int
core_resp_rank(const struct core_ctx *x)
{
	int cls = x->code / 100;
	int rank = cls == 6 ? 0 : cls * 10;

	return rank + (x->final == NULL);
}

static void
core_auth_append(osip_list_t *to, const osip_list_t *from)
{
	for (int k = 0; k < osip_list_size(from); k++) {
		osip_www_authenticate_t *a = NULL;

		if (osip_www_authenticate_clone(osip_list_get(from, k), &a) == 0 &&
		    osip_list_add(to, a, -1) < 0)
			osip_www_authenticate_free(a);
	}
}

/*
 * RFC 3261 16.7 step 6: a 401 or 407 sent upstream carries the
 * WWW-Authenticate and Proxy-Authenticate values of every 401 and 407
 * the other branches got, so the caller can answer every realm in one
 * new request.  r is the chosen response, already taken from its branch.
 */
static void
core_resp_auth_merge(const struct core_stx *s, osip_message_t *r)
{
	for (int i = 0; i < s->n_br; i++) {
		const osip_message_t *f = s->br[i]->final;

		if (f == NULL || (f->status_code != 401 && f->status_code != 407))
			continue;
		core_auth_append(&r->www_authenticates, &f->www_authenticates);
		core_auth_append(&r->proxy_authenticates,
				 &f->proxy_authenticates);
	}
}

void
core_stx_branch_done(struct core_stx *s)
{
	struct core_ctx *best = NULL;
	osip_message_t *r;

	if (s->state != STX_PROCEEDING || s->answered_2xx)
		return;
	for (int i = 0; i < s->n_br; i++) {
		struct core_ctx *x = s->br[i];

		if (x->is_cancel)
			continue;
		if (x->state == CTX_MEDIA_WAIT || x->state == CTX_CALLING ||
		    x->state == CTX_PROCEEDING)
			return;
		if (!x->superseded &&
		    (best == NULL || core_resp_rank(x) < core_resp_rank(best)))
			best = x;
	}
	if (s->fed && core_fed_branch_done(s))
		return;
	if (best == NULL) {
		core_stx_respond_code(s, 500, "No Branch Forwarded");
		return;
	}
	if (best->final) {
		r = best->final;
		best->final = NULL;
		if (r->status_code == 503) {
			/* RFC 3261 16.7.6: 503 means this proxy is down. */
			osip_message_set_status_code(r, 500);
			osip_free(r->reason_phrase);
			r->reason_phrase = osip_strdup("Server Internal Error");
		}
		if (r->status_code == 401 || r->status_code == 407)
			core_resp_auth_merge(s, r);
		core_stx_respond(s, r);
	} else {
		/* A 503 we made up for a next hop we could not reach says
		 * nothing about this proxy: 500, as for a received 503. */
		core_stx_respond_warn(s, best->code == 503 && best->downstream ?
				      500 : best->code,
				      best->why[0] ? best->why : NULL);
	}
}

/* Cancels every pending INVITE branch of s except `except`. */
static void
core_stx_cancel_others(struct core_stx *s, struct core_ctx *except)
{
	for (int i = 0; i < s->n_br; i++)
		if (s->br[i] != except)
			core_ctx_cancel(s->br[i]);
}

/* A response of a branch whose CSeq numbers we moved (a trunk
 * gateway's challenge answered): the caller's number again.  The scan
 * left such a response to libosip2 (core_txn_scan_match). */
static void
core_resp_cseq_back(struct core *c, const struct core_ctx *x,
		    osip_message_t *m)
{
	if (x->down.cseq_delta == 0 || m == NULL)
		return;
	core_cseq_shift(m, -(int)x->down.cseq_delta);
	if (m == c->rx.msg)
		c->rx.dirty = 1;	/* not the text as received */
}

/* Sends a branch's response upstream, through rtpengine when it
 * carries SDP (then r->msg goes with it: NULL after). */
static void
core_forward_up(struct core_stx *s, struct core_ctx *x, struct core_resp *r)
{
	int rc;

	core_resp_cseq_back(s->core, x, r->msg);
	/* core_txn_scan_match leaves a response for rtpctl to libosip2. */
	rc = r->msg ? core_media_response(s, x, r->msg) : 0;

	if (rc > 0) {
		r->msg = NULL;
		return;
	}
	if (rc < 0) {
		s->core->st.media_errors++;
		if (r->code >= 200)
			core_stx_respond_warn(s, 503, "no rtpctl reachable");
		return;
	}
	core_stx_send(s, r, SIZE_MAX);
}

static int
core_resp_method_is(const struct core_resp *r, const char *method)
{
	return r->method_len == strlen(method) &&
	       memcmp(r->method, method, r->method_len) == 0;
}

/* Checks r's branch and finds its client transaction: r->match and
 * r->x.  Before any lookup: a branch no core minted for this call is
 * a forgery (or another cluster's), never matched nor forwarded.  One
 * of another core matches nothing here: the edges send it here when
 * they take that core for lost. */
static void
core_txn_match(struct core *c, struct core_resp *r)
{
	r->x = NULL;
	if (r->branch == NULL ||
	    core_branch_verify(c, r->cid, r->cid_len, r->branch) != 0)
		r->match = -EACCES;
	else if (r->method == NULL)
		r->match = -EBADMSG;
	else
		r->match = 0;
	if (r->match == 0)
		r->x = core_ctx_find(c, r->branch,
				     core_resp_method_is(r, "CANCEL"));
}

int
core_txn_scan_match(struct core *c, struct core_resp *r)
{
	const struct core_ctx *x;

	core_txn_match(c, r);
	x = r->x;
	if (r->match != 0)
		return 0;
	/* a stray 2xx of an INVITE goes up; a REGISTER's is ours to the
	 * carrier (core_pstn_reg.c): the proxy sends none on */
	if (x == NULL)
		return (r->code >= 200 && r->code < 300 &&
			core_resp_method_is(r, "INVITE")) ||
		       core_resp_method_is(r, "REGISTER") ? -EAGAIN : 0;
	if (x->is_cancel)
		return 0;
	/* its CSeq goes back to the caller's (core_forward_up) */
	if (r->code >= 300 || x->down.cseq_delta)
		return -EAGAIN;
	/* core_media_has_sdp: no SDP without a body. */
	if (c->rtpc && r->scan->body_len > 0 &&
	    (core_resp_method_is(r, "INVITE") ||
	     core_resp_method_is(r, "UPDATE")))
		return -EAGAIN;
	return 0;
}

void
core_txn_on_response(struct core *c, const struct env *in,
		     osip_message_t *resp)
{
	char cid[SIP_BRANCH_CID_MAX + 1];
	struct core_resp r = {
		.code = resp->status_code,
		.branch = core_top_branch(resp, NULL),
		.cid = cid, .cid_len = core_call_id(resp, cid, sizeof(cid)),
		.msg = resp,
	};

	if (resp->cseq && resp->cseq->method) {
		r.method = resp->cseq->method;
		r.method_len = strlen(r.method);
	}
	core_txn_match(c, &r);
	core_txn_respond(c, in, &r);
}

void
core_txn_respond(struct core *c, const struct env *in, struct core_resp *r)
{
	struct core_ctx *x = r->x;
	int code = r->code;
	struct core_stx *s;
	osip_via_t *top;

	if (r->match == -EACCES) {
		c->st.resp_forged++;
		log_info(LOG_SYS_TXN, "%d response on a branch we did not "
			 "mint dropped", code);
		goto drop;
	}
	if (r->match != 0) {
		c->st.rx_bad++;
		goto drop;
	}
	if (x == NULL) {
		if (r->msg && core_pstn_reg_response(c, r->msg))
			goto drop;
		/* RFC 3261 16.7 step 5 needs only a stray 2xx of an INVITE
		 * upstream (its ACK is end to end); nothing else leaves. */
		if (code >= 200 && code < 300 &&
		    core_resp_method_is(r, "INVITE")) {
			osip_generic_param_t *d = NULL;

			top = osip_list_get(&r->msg->vias, 0);
			/* its CSeq back to the caller's (core_via_push) */
			if (osip_via_param_get_byname(top, "sm-cs", &d) == 0 &&
			    d && d->gvalue && d->gvalue[0] >= '1' &&
			    d->gvalue[0] <= '9' && d->gvalue[1] == '\0')
				core_cseq_shift(r->msg, -(d->gvalue[0] - '0'));
			core_resp_stateless(c, in, r->msg);
			osip_via_free(top);
		}
		goto drop;
	}
	s = x->stx;
	x->failover_at = 0;	/* it answers */
	if (x->is_cancel) {
		/* The answer to our CANCEL only stops its retransmissions. */
		if (code >= 200)
			core_ctx_finish(x, CTX_COMPLETED, code);
		else
			x->retx_at = 0, core_ctx_arm(x);
		goto drop;
	}

	/* What goes upstream loses our Via (a scanned one: spliced out). */
	if (r->msg) {
		top = osip_list_get(&r->msg->vias, 0);
		osip_list_remove(&r->msg->vias, 0);
		osip_via_free(top);
	}

	if (code < 200) {
		if (x->state == CTX_CALLING) {
			x->state = CTX_PROCEEDING;
			if (x->invite)
				x->retx_at = 0;		/* stop timer A */
			else
				x->retx_ms = c->cfg->t2_ms;
		}
		if (x->invite && x->state == CTX_PROCEEDING && !x->cancel_sent &&
		    (code > 100 || !x->timer_c)) {
			/* Timer C replaces timer B once the branch answers;
			 * it restarts on 101-199 only (RFC 3261 16.7). */
			x->timer_c = 1;
			x->timeout_at = core_now_ms(c) +
					1000 * (uint64_t)c->cfg->timer_c_s;
		}
		core_ctx_arm(x);
		if (x->cancel_wanted && !x->cancel_sent)
			core_ctx_send_cancel(x);
		if (code > 100 && s->state == STX_PROCEEDING)
			core_forward_up(s, x, r);
		goto drop;
	}

	if (code < 300) {
		if (x->state == CTX_CALLING || x->state == CTX_PROCEEDING)
			core_ctx_finish(x, x->invite ? CTX_ACCEPTED :
					CTX_COMPLETED, code);
		else if (!x->invite)
			goto drop;	/* a retransmitted non-INVITE final */
		if (x->invite) {
			/* Every 2xx of an INVITE goes upstream, retransmissions
			 * too: the UACs' ACK is end to end (RFC 3261 16.7.4). */
			s->answered_2xx = 1;
			core_stx_cancel_others(s, x);
			core_forward_up(s, x, r);
		} else if (s->state == STX_PROCEEDING) {
			core_forward_up(s, x, r);
		}
		goto drop;
	}

	/* 3xx-6xx: never scanned only (core_txn_scan_match). */
	if (x->invite)
		core_dialog_ack(x, r->msg);	/* hop by hop, each time */
	if (x->state == CTX_COMPLETED || x->state == CTX_ACCEPTED)
		goto drop;
	core_ctx_finish(x, CTX_COMPLETED, code);
	core_resp_cseq_back(c, x, r->msg);
	x->final = r->msg;
	r->msg = NULL;
	if (code >= 600)
		core_stx_cancel_others(s, x);
	core_stx_branch_done(s);
drop:
	osip_message_free(r->msg);
	r->msg = NULL;
}

void
core_txn_edge_lost(struct core *c, int edge_id)
{
	uint64_t now = core_now_ms(c);
	int n = 0;

	if (c->ctx_tab.b == NULL)
		return;
	for (size_t i = 0; i <= c->ctx_tab.mask; i++) {
		for (struct htab_node *h = c->ctx_tab.b[i]; h; h = h->next) {
			struct core_ctx *x = (struct core_ctx *)h;

			if (x->down.edge_id != edge_id || x->down.conn_id == 0 ||
			    x->is_cancel || (x->state != CTX_CALLING &&
					     x->state != CTX_PROCEEDING))
				continue;
			/* Failed from its timer, as core_ctx_start does:
			 * failing here could end a transaction and change
			 * the table under this walk. */
			x->flow_lost = 1;
			x->timeout_at = now;
			core_ctx_arm(x);
			n++;
		}
	}
	if (n)
		log_notice(LOG_SYS_TXN, "edge %d lost: %d branch%s down its "
			   "connections fail with 430", edge_id, n,
			   n == 1 ? "" : "es");
}

void
core_txn_shutdown(struct core *c)
{
	struct htab_node *n;
	size_t pos = 0;

	while ((n = htab_any(&c->stx_tab, &pos)) != NULL)
		core_stx_destroy((struct core_stx *)n);
}

void
core_stx_cancel(struct core_stx *s)
{
	s->cancelled = 1;
	core_stx_cancel_others(s, NULL);
	/* Branches that never answered at all end as 487 via their
	 * timeout; none pending at all means answer now. */
	core_stx_branch_done(s);
}
