/*
 * core_media.c - anchoring media on rtpengine through rtpctl.
 *
 * Every SDP that crosses the proxy goes through rtpengine, with flags
 * chosen by whether each side is a browser (core_media_flags_for):
 *   - an INVITE/UPDATE with SDP: "offer" per branch (the via-branch
 *     keeps forked branches apart), the branch is sent once rtpctl has
 *     rewritten its SDP;
 *   - a 18x/2xx with SDP: "answer" (or "offer" for a late offer, when
 *     the request carried none), forwarded once rewritten;
 *   - an ACK with SDP: the late offer's "answer";
 *   - BYE, CANCEL, and an initial INVITE that fails: "delete".
 * Asynchronous from end to end: a message waits in a struct
 * core_media_op while its command is out, and an op belonging to a
 * transaction is cancelled if the transaction goes first.
 */
#include "core/core_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/benc.h"
#include "lib/log.h"
#include "rtpctl/rtpc.h"

#define CORE_MEDIA_SLACK_MS 500	/* rtpctl's Redis claim and the hops */
#define CORE_MEDIA_MAX_MS 30000	/* below INVITE's timer B */
#define CORE_MEDIA_NODES 256

/* The flag table: [sender_ws][receiver_ws][answer]. */
static const struct core_media_flags core_media_table[2][2][2] = {
	/* phone -> phone: plain RTP both ways */
	[0][0][0] = { "RTP/AVP", "remove", NULL, NULL, 1 },
	[0][0][1] = { "RTP/AVP", "remove", NULL, NULL, 1 },
	/* phone -> browser: the offer becomes WebRTC; Chromium insists on
	 * rtcp-mux, which a phone's offer lacks */
	[0][1][0] = { "UDP/TLS/RTP/SAVPF", "force", NULL, "offer", 0 },
	/* phone answering a browser's offer */
	[0][1][1] = { "UDP/TLS/RTP/SAVPF", "force", NULL, NULL, 0 },
	/* browser -> phone: plain RTP, RTCP split off the muxed port */
	[1][0][0] = { "RTP/AVP", "remove", NULL, "demux", 1 },
	/* browser answering a phone's offer */
	[1][0][1] = { "RTP/AVP", "remove", NULL, NULL, 1 },
	/* browser <-> browser: relayed, DTLS kept end to end */
	[1][1][0] = { NULL, "force-relay", "passive", NULL, 0 },
	[1][1][1] = { NULL, "force-relay", "passive", NULL, 0 },
};

const struct core_media_flags *
core_media_flags_for(int sender_ws, int receiver_ws, int answer)
{
	return &core_media_table[!!sender_ws][!!receiver_ws][!!answer];
}

int
core_media_has_sdp(const osip_message_t *m, const char **sdp, size_t *len)
{
	osip_body_t *b = NULL;

	if (m->content_type == NULL || m->content_type->type == NULL ||
	    m->content_type->subtype == NULL ||
	    strcasecmp(m->content_type->type, "application") != 0 ||
	    strcasecmp(m->content_type->subtype, "sdp") != 0 ||
	    osip_message_get_body(m, 0, &b) < 0 || b == NULL ||
	    b->body == NULL || b->length == 0)
		return 0;
	if (sdp) {
		*sdp = b->body;
		*len = b->length;
	}
	return 1;
}

static const char *
core_tag(const osip_from_t *h)
{
	osip_generic_param_t *t = NULL;

	if (h == NULL || osip_from_get_tag((osip_from_t *)h, &t) != 0 || t == NULL)
		return NULL;
	return t->gvalue;
}

/*
 * Builds the ng offer/answer dictionary for cmd about message m, with
 * its SDP and the flags f.  swap_tags swaps the tags, for SDP the
 * callee offered (late offer).  Returns the length, or a negative errno.
 */
static int
core_media_dict(char *buf, size_t cap, const char *cmd,
		const osip_message_t *m, int swap_tags, const char *branch,
		const struct core_media_flags *f)
{
	const char *from = core_tag(m->from), *to = core_tag(m->to);
	const char *sdp = NULL;
	struct benc_enc e;
	char *cid = NULL;
	size_t len = 0;
	int n;

	if (swap_tags) {
		const char *t = from;

		from = to;
		to = t;
	}
	if (m->call_id == NULL || osip_call_id_to_str(m->call_id, &cid) != 0)
		return -EINVAL;
	benc_enc_init(&e, buf, cap);
	benc_put_dict(&e);
	benc_put_kv(&e, "command", cmd);
	benc_put_kv(&e, "call-id", cid);
	if (from)
		benc_put_kv(&e, "from-tag", from);
	if (to)
		benc_put_kv(&e, "to-tag", to);
	if (branch)
		benc_put_kv(&e, "via-branch", branch);
	core_media_has_sdp(m, &sdp, &len);
	benc_put_cstr(&e, "sdp");
	benc_put_str(&e, sdp, len);
	if (f->transport)
		benc_put_kv(&e, "transport-protocol", f->transport);
	benc_put_kv(&e, "ICE", f->ice);
	if (f->dtls)
		benc_put_kv(&e, "DTLS", f->dtls);
	if (f->rtcp_mux) {
		benc_put_cstr(&e, "rtcp-mux");
		benc_put_list(&e);
		benc_put_cstr(&e, f->rtcp_mux);
		benc_put_end(&e);
	}
	if (f->replace) {
		benc_put_cstr(&e, "replace");
		benc_put_list(&e);
		benc_put_cstr(&e, "session-connection");
		benc_put_cstr(&e, "origin");
		benc_put_end(&e);
	}
	benc_put_end(&e);
	osip_free(cid);
	n = benc_enc_finish(&e);
	return n;
}

enum core_media_kind {
	CORE_MEDIA_BRANCH = 1,	/* a request waits to go down a branch */
	CORE_MEDIA_RESP,	/* a response waits to go upstream */
	CORE_MEDIA_ACK,		/* an ACK waits to go on, statelessly */
	CORE_MEDIA_DELETE,	/* nothing waits */
};

struct core_media_op {
	struct list_node link;	/* in its stx's media_ops */
	struct core *core;
	int kind;
	struct core_stx *stx;
	struct core_ctx *x;
	osip_message_t *msg;	/* owned */
	struct core_leg leg;	/* CORE_MEDIA_ACK */
	int id;			/* rtpc call id */
};

static void
core_media_op_free(struct core_media_op *op)
{
	if (op->msg)
		osip_message_free(op->msg);
	free(op);
}

/* Status code and Warning text for a failed rtpctl command. */
static int
core_media_error_code(const struct rtpc_result *r)
{
	if (r->status == -EREMOTEIO && r->reason &&
	    (strstr(r->reason, "SDP") || strstr(r->reason, "sdp")))
		return 488;	/* rtpengine could not parse the SDP */
	if (r->status == -EREMOTEIO)
		return 500;
	return 503;		/* no relay reachable, or none has ports:
				   core_stx_respond_warn adds Retry-After */
}

int
core_media_apply(osip_message_t *m, const struct rtpc_result *r)
{
	struct benc_node nodes[CORE_MEDIA_NODES];
	const char *sdp;
	char clen[24];
	size_t len = 0;

	if (r->reply == NULL ||
	    benc_decode(nodes, CORE_MEDIA_NODES, r->reply, r->reply_len) < 0)
		return -EPROTO;
	sdp = benc_dict_str(&nodes[0], "sdp", &len);
	if (sdp == NULL)
		return -EPROTO;
	osip_list_special_free(&m->bodies,
			       (void (*)(void *))osip_body_free);
	if (osip_message_set_body(m, sdp, len) != 0)
		return -EPROTO;
	osip_content_length_free(m->content_length);
	m->content_length = NULL;
	snprintf(clen, sizeof(clen), "%zu", len);
	osip_message_set_content_length(m, clen);
	return 0;
}

static void core_media_drained(struct core_stx *s);

static void
core_media_done(void *arg, const struct rtpc_result *r)
{
	struct core_media_op *op = arg;
	struct core *c = op->core;
	int rc = r->status;

	/* rtpctl's answer comes from the loop, outside any message. */
	if (op->stx)
		log_ctx_set(op->stx->call_id, strlen(op->stx->call_id));
	else if (op->msg)
		core_log_ctx(op->msg);
	list_remove(&op->link);
	if (rc == 0 && op->msg)
		rc = core_media_apply(op->msg, r);
	if (rc != 0)
		log_warn(LOG_SYS_RTP, "rtpctl: %s", r->reason ? r->reason :
			 strerror(-rc));
	switch (op->kind) {
	case CORE_MEDIA_BRANCH:
		if (rc == 0) {
			core_ctx_send_first(op->x, op->msg);
		} else {
			c->st.media_errors++;
			core_ctx_fail(op->x, core_media_error_code(r),
				      r->reason ? r->reason : "media relay error");
		}
		break;
	case CORE_MEDIA_RESP:
		if (rc == 0) {
			core_stx_respond(op->stx, op->msg);
			op->msg = NULL;
		} else if (op->msg->status_code >= 200) {
			/* The callee answered but no relay serves its SDP:
			 * the caller gets the error, not an unanchored call,
			 * and the callee's dialog is ended. */
			c->st.media_errors++;
			core_stx_respond_warn(op->stx, core_media_error_code(r) ==
					      488 ? 488 : 500,
					      r->reason ? r->reason :
					      "media relay error");
			if (op->msg->status_code < 300)
				core_dialog_hangup(op->x, op->msg);
		}
		break;
	case CORE_MEDIA_ACK:
		if (rc == 0)
			core_send_msg(c, &op->leg, op->msg);
		break;
	}
	if (op->stx)
		core_media_drained(op->stx);
	core_media_op_free(op);
	log_ctx_clear();
}

/*
 * How long the core waits for rtpctl's answer: rtpctl retransmits a
 * command ng_tries times ng_timeout_ms apart, and a first offer may
 * move on to each other instance in turn, so the core waits for all of
 * that (and a little more) before it gives up on its own.
 */
int
core_media_timeout_ms(const struct cfg *cfg)
{
	const char *p = cfg->rtpctl_instances;
	long ms;
	int n = 0;

	while (*p) {
		p += strspn(p, " \t,");
		if (*p)
			n++;
		p += strcspn(p, " \t,");
	}
	ms = (long)cfg->rtpctl_ng_timeout_ms * cfg->rtpctl_ng_tries *
	     (n > 0 ? n : 1) + CORE_MEDIA_SLACK_MS;
	return ms > CORE_MEDIA_MAX_MS ? CORE_MEDIA_MAX_MS : (int)ms;
}

/* Sends an encoded ng dictionary for op; op belongs to the call until
 * core_media_done.  Returns 0 or a negative errno (op not taken). */
static int
core_media_submit(struct core *c, struct core_media_op *op, const char *buf,
		  size_t n)
{
	op->core = c;
	op->id = rtpc_call(c->rtpc, buf, n, c->media_timeout_ms,
			   core_media_done, op);
	if (op->id < 0)
		return op->id;
	c->st.media_cmds++;
	if (op->stx) {
		list_insert_head(&op->stx->media_ops, &op->link);
		op->stx->media_used = 1;
	}
	return 0;
}

static int
core_media_send(struct core *c, struct core_media_op *op, const char *cmd,
		const osip_message_t *m, int swap, const char *branch,
		const struct core_media_flags *f)
{
	char buf[16384];
	int n = core_media_dict(buf, sizeof(buf), cmd, m, swap, branch, f);

	if (n < 0)
		return n;
	return core_media_submit(c, op, buf, (size_t)n);
}

int
core_media_branch(struct core_ctx *x, osip_message_t *fwd)
{
	struct core *c = x->core;
	struct core_media_op *op;
	int rc;

	/* Offers come in INVITE and UPDATE; SDP in anything else (a
	 * MESSAGE body, say) is not a session to anchor. */
	if (c->rtpc == NULL || !core_media_has_sdp(fwd, NULL, NULL) ||
	    (strcmp(fwd->sip_method, "INVITE") != 0 &&
	     strcmp(fwd->sip_method, "UPDATE") != 0))
		return 0;
	op = calloc(1, sizeof(*op));
	if (op == NULL)
		return -ENOMEM;
	op->kind = CORE_MEDIA_BRANCH;
	op->stx = x->stx;
	op->x = x;
	op->msg = fwd;
	rc = core_media_send(c, op, "offer", fwd, 0, x->branch,
			     core_media_flags_for(x->stx->up.flags & ENV_F_WS,
						  x->down.flags & ENV_F_WS, 0));
	if (rc != 0) {
		op->msg = NULL;		/* the caller still owns fwd */
		free(op);
		return rc;
	}
	return 1;
}

int
core_media_response(struct core_stx *s, struct core_ctx *x,
		    osip_message_t *resp)
{
	struct core *c = s->core;
	struct core_media_op *op;
	int late, rc;

	if (c->rtpc == NULL || !core_media_has_sdp(resp, NULL, NULL) ||
	    resp->cseq == NULL || (strcmp(resp->cseq->method, "INVITE") != 0 &&
				   strcmp(resp->cseq->method, "UPDATE") != 0))
		return 0;
	op = calloc(1, sizeof(*op));
	if (op == NULL)
		return -ENOMEM;
	op->kind = CORE_MEDIA_RESP;
	op->stx = s;
	op->x = x;
	op->msg = resp;
	/* No SDP in the request: this one is a late offer, the callee's. */
	late = !x->offered;
	rc = core_media_send(c, op, late ? "offer" : "answer", resp, late,
			     x->branch,
			     core_media_flags_for(x->down.flags & ENV_F_WS,
						  s->up.flags & ENV_F_WS, !late));
	if (rc != 0) {
		op->msg = NULL;
		free(op);
		return rc;
	}
	return 1;
}

int
core_media_ack(struct core *c, const struct env *in, osip_message_t *ack,
	       const struct core_leg *out)
{
	struct core_media_op *op;
	int rc;

	if (c->rtpc == NULL || !core_media_has_sdp(ack, NULL, NULL))
		return 0;
	op = calloc(1, sizeof(*op));
	if (op == NULL)
		return -ENOMEM;
	op->kind = CORE_MEDIA_ACK;
	op->msg = ack;
	op->leg = *out;
	/* The late offer came from the callee (To tag): swap. */
	rc = core_media_send(c, op, "answer", ack, 1, NULL,
			     core_media_flags_for(in->flags & ENV_F_WS,
						  out->flags & ENV_F_WS, 1));
	if (rc != 0) {
		op->msg = NULL;
		free(op);
		return rc;
	}
	return 1;
}

/*
 * "delete" for a whole call, fire and forget.  Only the Call-ID goes:
 * rtpengine then ends every branch of a fork, whereas a delete naming
 * tags would end one dialogue and leave a cancelled branch's leg behind.
 */
static void
core_media_delete_cid(struct core *c, const char *cid)
{
	struct core_media_op *op;
	struct benc_enc e;
	char buf[512];
	int n;

	if (c->rtpc == NULL)
		return;
	benc_enc_init(&e, buf, sizeof(buf));
	benc_put_dict(&e);
	benc_put_kv(&e, "command", "delete");
	benc_put_kv(&e, "call-id", cid);
	benc_put_end(&e);
	n = benc_enc_finish(&e);
	op = calloc(1, sizeof(*op));
	if (n < 0 || op == NULL) {
		free(op);
		return;
	}
	op->kind = CORE_MEDIA_DELETE;
	if (core_media_submit(c, op, buf, (size_t)n) != 0)
		free(op);
}

void
core_media_delete(struct core *c, const osip_message_t *m)
{
	char *cid = NULL;

	if (c->rtpc == NULL || m->call_id == NULL ||
	    osip_call_id_to_str(m->call_id, &cid) != 0)
		return;
	core_media_delete_cid(c, cid);
	osip_free(cid);
}

/*
 * An initial INVITE failed after media commands went out for it: delete
 * the call, but only once no offer or answer is still on its way, or
 * the delete could overtake the offer and leave a session behind.
 */
void
core_media_call_failed(struct core_stx *s)
{
	if (list_empty(&s->media_ops)) {
		core_media_delete(s->core, s->req);
		return;
	}
	if (s->media_cid == NULL && s->req->call_id)
		osip_call_id_to_str(s->req->call_id, &s->media_cid);
}

/* After an op of s completed: the delete that was waiting for it. */
static void
core_media_drained(struct core_stx *s)
{
	if (!list_empty(&s->media_ops) || s->media_cid == NULL)
		return;
	core_media_delete_cid(s->core, s->media_cid);
	osip_free(s->media_cid);
	s->media_cid = NULL;
}

void
core_media_stx_gone(struct core_stx *s)
{
	struct core *c = s->core;
	struct list_node *n;

	while ((n = list_first(&s->media_ops)) != NULL) {
		struct core_media_op *op = list_entry(n, struct core_media_op,
						      link);

		list_remove(n);
		rtpc_cancel(c->rtpc, op->id);
		core_media_op_free(op);
	}
	core_media_drained(s);
}
