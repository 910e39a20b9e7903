/*
 * core_proxy.c - what the proxy does with a request (RFC 3261 16):
 * sanity checks, transaction matching, loose routing, the registrar,
 * location lookup and parallel forking.
 *
 * Order of decisions, as in the reference Kamailio/OpenSIPS script:
 *   1. broken request -> 400; bad URI scheme -> 416; a From domain
 *      that must prove itself by TLS client certificate and did not
 *      -> 403 (core_fed_peer_proven)
 *   2. ACK / CANCEL / retransmission -> their transaction
 *   3. Max-Forwards 0 -> 483 (OPTIONS to us -> 200)
 *   4. in dialog (To tag): a Route naming us, signed for this Call-ID
 *      -> strip it and relay to the next hop (the connection, or the
 *      NAT address of a UDP phone, that its flow token names; else the
 *      next Route or the Request-URI, located by DNS when it names a
 *      host, core_fed.c); anything else -> 403
 *   5. REGISTER, or a request from a local domain, with auth on:
 *      digest authentication and authorization (core_auth.c)
 *   6. REGISTER -> registrar; OPTIONS to us -> 200
 *   7. local domain -> lookup: 404 unknown, 480 nobody now, else fork
 *   8. other domain: from a local user -> located by DNS and proxied
 *      (core_fed.c); from anyone else -> 403, we relay for nobody
 */
#include "core/core_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core_splice.h"
#include "lib/hash.h"
#include "lib/log.h"

#define CORE_ALLOW "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, REGISTER, " \
		   "UPDATE, INFO, PRACK, SUBSCRIBE, NOTIFY, REFER"

static int
core_method_is(const osip_message_t *m, const char *method)
{
	return strcmp(m->sip_method, method) == 0;
}

/* Requests that may create a dialog get Record-Route. */
int
core_method_dialog(const osip_message_t *m)
{
	return core_method_is(m, "INVITE") || core_method_is(m, "SUBSCRIBE") ||
	       core_method_is(m, "REFER") || core_method_is(m, "NOTIFY");
}

/* Sanity checks (RFC 3261 16.3); returns a status code or 0. */
static int
core_sanity(const osip_message_t *m, const char **why)
{
	if (m->from == NULL || m->to == NULL || m->call_id == NULL ||
	    m->cseq == NULL || osip_list_size(&m->vias) == 0) {
		*why = "Missing Mandatory Header";
		return 400;
	}
	if (m->cseq->method == NULL || m->cseq->number == NULL ||
	    strcasecmp(m->cseq->method, m->sip_method) != 0) {
		*why = "CSeq Method Mismatch";
		return 400;
	}
	/* RFC 3261 8.1.1.5: a CSeq number is below 2^31. */
	if (m->cseq->number[0] == '\0' || strlen(m->cseq->number) > 10 ||
	    strspn(m->cseq->number, "0123456789") != strlen(m->cseq->number) ||
	    strtoull(m->cseq->number, NULL, 10) >= 1ULL << 31) {
		*why = "Bad CSeq";
		return 400;
	}
	if (m->req_uri == NULL || m->req_uri->scheme == NULL ||
	    (strcasecmp(m->req_uri->scheme, "sip") != 0 &&
	     strcasecmp(m->req_uri->scheme, "sips") != 0)) {
		*why = NULL;
		return 416;
	}
	return 0;
}

/*
 * Reads Max-Forwards: returns its value, the configured default when
 * absent (and adds the header), or -1 when it is not a number.
 */
static int
core_max_forwards(struct core *c, osip_message_t *m, osip_header_t **hdr)
{
	osip_header_t *h = NULL;
	char *end;
	long v;

	if (osip_message_get_max_forwards(m, 0, &h) < 0 || h == NULL) {
		char buf[16];
		struct sip_cat b;

		sip_cat_init(&b, buf, sizeof(buf));
		sip_cat_uint(&b, (unsigned)c->cfg->max_forwards);
		osip_message_set_max_forwards(m, buf);
		osip_message_get_max_forwards(m, 0, &h);
		*hdr = h;
		return c->cfg->max_forwards;
	}
	*hdr = h;
	if (h->hvalue == NULL)
		return -1;
	v = strtol(h->hvalue, &end, 10);
	if (end == h->hvalue || *end != '\0' || v < 0 || v > 255)
		return -1;
	return (int)v;
}

static void
core_set_max_forwards(struct core *c, const osip_message_t *m,
		      osip_header_t *h, int v)
{
	char buf[16];
	struct sip_cat b;

	if (m == c->rx.msg)
		c->rx.mf = v;

	sip_cat_init(&b, buf, sizeof(buf));
	sip_cat_uint(&b, (unsigned)v);
	osip_free(h->hvalue);
	h->hvalue = osip_strdup(buf);
}

/*
 * Pops the Route entries that name one of our edges (two with double
 * Record-Route).  Returns how many, or -EACCES when `dialog` is set and
 * one of them is not a Record-Route value we signed for this Call-ID:
 * an in-dialog request routes through us on nothing else.  *out is the
 * hop the last one popped faces: its edge, and its flow when a signed
 * entry carries a flow token.  Also undoes a strict router's rewrite
 * (RFC 3261 16.4) when the Request-URI is ours.
 */
static int
core_strip_routes(struct core *c, osip_message_t *m, struct core_leg *out,
		  int dialog)
{
	osip_route_t *r;
	int n = 0, eid, ok, d;

	if (m->req_uri && m->req_uri->username == NULL &&
	    core_uri_is_self(c, m->req_uri, &eid) &&
	    osip_list_size(&m->routes) > 0) {
		int last = osip_list_size(&m->routes) - 1;

		if (dialog && core_rr_verify(c, m, m->req_uri) != 0)
			return -EACCES;
		if (m == c->rx.msg)
			c->rx.dirty = 1;	/* a Route became the R-URI */
		r = osip_list_get(&m->routes, last);
		osip_list_remove(&m->routes, last);
		osip_uri_free(m->req_uri);
		m->req_uri = r->url;
		r->url = NULL;
		osip_route_free(r);
		out->edge_id = (uint16_t)eid;
		out->conn_id = 0;
		out->nat = 0;
		n++;
	}
	while (n < 3 && (r = osip_list_get(&m->routes, 0)) != NULL &&
	       r->url && core_uri_is_self(c, r->url, &eid)) {
		ok = core_rr_verify(c, m, r->url) == 0;
		if (dialog && !ok)
			return -EACCES;
		if (!ok || core_flow_parse(r->url->username, out) != 0) {
			out->edge_id = (uint16_t)eid;
			out->conn_id = 0;
			out->nat = 0;
			/* the entry facing the next hop is popped last */
			d = ok ? core_trunk_token_parse(r->url->username) : -1;
			out->trunk = d >= 0;
			out->cseq_delta = (uint8_t)(d > 0 ? d : 0);
		}
		osip_list_remove(&m->routes, 0);
		osip_route_free(r);
		if (m == c->rx.msg)
			c->rx.route_pop++;
		n++;
	}
	return n;
}

/*
 * Completes the leg of a routed request: a flow found in our Route is
 * used as it is, a connection or the NAT address of a UDP phone (whose
 * Request-URI is its private Contact); otherwise the top Route, else
 * the Request-URI, names the address and transport.  Never one of the
 * cluster's own addresses, whatever named it.  Returns 0, or 1 when
 * that URI's host is a name: *hop is the URI, to locate by DNS
 * (core_fed.c); or a negative errno.
 */
static int
core_next_leg(struct core *c, const osip_message_t *m, struct core_leg *leg,
	      const osip_uri_t **hop)
{
	osip_route_t *r = osip_list_get(&m->routes, 0);
	const osip_uri_t *u = r && r->url ? r->url : m->req_uri;
	int rc;

	*hop = NULL;
	if (leg->conn_id)
		return 0;
	if (leg->nat) {
		char a[64];

		if (infra_has(&c->infra, leg->transport, &leg->dst))
			return -EACCES;
		log_debug(LOG_SYS_SIP, "%s to %s, where the phone's NAT maps, "
			  "not to its Contact", m->sip_method,
			  env_sa_str(&leg->dst, a, sizeof(a)));
		return 0;
	}
	rc = core_uri_leg(u, leg);
	if (rc == -EDESTADDRREQ) {
		*hop = u;
		return 1;
	}
	if (rc == 0 && infra_has(&c->infra, leg->transport, &leg->dst))
		return -EACCES;
	if (rc == 0)
		core_leg_edge_for_dst(c, leg);
	return rc;
}

/* One Record-Route entry naming the edge of `l` on its transport, with
 * the flow token of the party behind `l` when it has a connection or is
 * behind NAT, signed for m's Call-ID. */
static int
core_add_rr(struct core *c, osip_message_t *m, const struct core_leg *l)
{
	const struct cfg_edge *e = core_edge_or_first(c, l->edge_id);
	osip_record_route_t *rr = NULL;
	const char *sb = core_edge_sent_by(c, e, l->transport);
	char v[CFG_ADDR_LEN + 128], tok[64] = "";
	char tp[24] = "", sig[40];

	if ((l->conn_id || l->nat) ? core_flow_token(l, tok, sizeof(tok)) != 0 :
	    l->trunk && core_trunk_token(l, tok, sizeof(tok)) != 0)
		return -ENOSPC;
	if (core_rr_param(c, m, tok[0] ? tok : NULL, sig, sizeof(sig)) != 0)
		return -ENOSPC;
	if (l->transport != ENV_UDP)	/* UDP is a URI's default */
		snprintf(tp, sizeof(tp), ";transport=%s",
			 env_transport_key(l->transport));
	snprintf(v, sizeof(v), "<sip:%s%s%s%s;lr%s>", tok, tok[0] ? "@" : "",
		 sb, tp, sig);
	if (osip_record_route_init(&rr) != 0)
		return -ENOMEM;
	if (osip_record_route_parse(rr, v) != 0 ||
	    osip_list_add(&m->record_routes, rr, 0) < 0) {
		osip_record_route_free(rr);
		return -EINVAL;
	}
	return 0;
}

/*
 * Whether the Contact URI u of a UDP party whose messages come from
 * src cannot be used to reach it (Kamailio's nat_uac_test): a host that
 * is not an IP address, an address we would not send to, or an IP
 * other than src's, most often a private one behind NAT.  Then src is
 * where its NAT binding points.  The Contact's address and transport
 * are left in *l (core_uri_leg).
 */
static int
core_contact_natted(struct core *c, const osip_uri_t *u,
		    const union env_sa *src, struct core_leg *l)
{
	return core_uri_leg(u, l) != 0 ||
	       infra_has(&c->infra, l->transport, &l->dst) ||
	       !env_sa_addr_eq(&l->dst, src);
}

/*
 * Whether request m, which arrived on leg `in`, comes from a UDP phone
 * behind NAT: it has one Via (the phone sent it to us itself: behind
 * another proxy, the source says nothing of the phone) and a Contact
 * that core_contact_natted rejects.  A source that is one of the
 * cluster's own addresses (spoofed) is not pinned.
 */
static int
core_sender_natted(struct core *c, const osip_message_t *m,
		   const struct core_leg *in)
{
	osip_contact_t *ct = NULL;
	struct core_leg l;

	if (in->conn_id || in->transport != ENV_UDP ||
	    osip_list_size(&m->vias) != 1 ||
	    osip_message_get_contact(m, 0, &ct) < 0 || ct == NULL ||
	    ct->url == NULL || infra_has(&c->infra, ENV_UDP, &in->dst))
		return 0;
	return core_contact_natted(c, ct->url, &in->dst, &l);
}

/*
 * Record-Route for a request arriving on `in` and leaving on `out`:
 * one entry when both sides are plain datagrams through one edge, else
 * two (RFC 5658 double Record-Route), the top one facing the callee
 * and the second the caller, each with its side's flow token.  A UDP
 * side behind NAT (the callee's binding, core_binding_leg; the caller
 * by core_sender_natted) has a token too: its address, so that the
 * in-dialog requests towards it, which pop both entries and name its
 * private Contact, go where its NAT maps (core_next_leg).  One entry
 * cannot do that: the requests of both directions pop it.
 */
int
core_record_route(struct core *c, osip_message_t *m,
		  const struct core_leg *in, const struct core_leg *out)
{
	struct core_leg up = *in;

	up.nat = core_sender_natted(c, m, in);
	/* A call a gateway sends us: its side's entry marks it, so that
	 * the callee's requests may go back there (core_pstn.c). */
	if (!up.conn_id && !up.nat && core_pstn_is_gateway(c, &up.dst))
		up.trunk = 1;
	/* A trunk gateway needs its own entry: only the requests towards
	 * it may go to a gateway, and move their CSeq. */
	if ((up.edge_id != out->edge_id || up.transport != out->transport ||
	     up.conn_id || out->conn_id || up.nat || out->nat ||
	     up.trunk || out->trunk) &&
	    core_add_rr(c, m, &up) != 0)
		return -EINVAL;
	return core_add_rr(c, m, out);
}

static int
core_ok_options(struct core *c, const struct env *in, const osip_message_t *req)
{
	osip_message_t *r = core_resp_build(c, req, 200, NULL);
	int rc;

	if (r == NULL)
		return -EINVAL;
	osip_message_set_allow(r, CORE_ALLOW);
	osip_message_set_accept(r, "application/sdp");
	rc = core_reply_send_msg(c, in, r);
	osip_message_free(r);
	return rc;
}

/*
 * ACK for a 2xx: end to end, no transaction (RFC 3261 16.11).  The
 * Via branch we add is derived from the upstream one, so an ACK
 * retransmission carries the same branch.  Returns 1 when the ACK
 * waits for rtpctl (it took req), else 0.
 */
static int
core_proxy_ack(struct core *c, const struct env *in, osip_message_t *req)
{
	osip_header_t *mfh = NULL;
	const osip_uri_t *hop;
	struct core_leg out;
	int mf, rc;

	core_leg_from_env(&out, in);
	out.conn_id = 0;
	if (core_strip_routes(c, req, &out, 1) <= 0) {
		/* Not for us to route: no transaction, no signed Route.  The
		 * ACK of a final response we made up without a transaction
		 * (a 407 challenge, a 404) is expected, and ends here too. */
		if (!core_to_tag_is_local(req)) {
			c->st.ack_stray++;
			log_info(LOG_SYS_SIP, "stray ACK dropped");
		}
		return 0;
	}
	mf = core_max_forwards(c, req, &mfh);
	if (mf <= 0)
		return 0;
	rc = core_next_leg(c, req, &out, &hop);
	if (rc == 0 && core_pstn_off_trunk(c, &out)) {
		c->st.pstn_bypass++;
		return 0;
	}
	if (rc < 0 || (out.cseq_delta &&
		       core_cseq_shift(req, out.cseq_delta) != 0))
		return 0;
	if (out.cseq_delta && req == c->rx.msg)
		c->rx.dirty = 1;	/* a CSeq the splice would not write */
	core_set_max_forwards(c, req, mfh, mf - 1);
	if (rc == 1)
		return core_fed_ack(c, in, req, hop, &out);
	return core_proxy_ack_send(c, in, req, &out);
}

int
core_proxy_ack_send(struct core *c, const struct env *in, osip_message_t *req,
		    const struct core_leg *out)
{
	osip_via_t *via = NULL;
	osip_generic_param_t *br = NULL;
	char branch[SIP_BRANCH_MAX];
	uint64_t token = 0;

	if (osip_message_get_via(req, 0, &via) >= 0 && via &&
	    osip_via_param_get_byname(via, "branch", &br) == 0 && br &&
	    br->gvalue)
		token = hash_fnv1a64(br->gvalue, strlen(br->gvalue));
	if (core_via_push(c, req, out, token, branch, sizeof(branch)) != 0)
		return 0;
	c->st.stateless_fwd++;
	if (core_media_ack(c, in, req, out) > 0)
		return 1;
	core_send_msg(c, out, req);
	return 0;
}

/*
 * The server transaction for req, which then owns it; or NULL after
 * answering and freeing req when none can be made: 503 (with
 * Retry-After) when the core holds [proxy] max_transactions already,
 * else 500.  The relay and the lookup both give up on a request this
 * way.
 */
static struct core_stx *
core_proxy_stx_new(struct core *c, const struct env *in, osip_message_t *req)
{
	uint64_t overload = c->st.overload;
	struct core_stx *s = core_stx_new(c, in, req);

	if (s == NULL) {
		if (c->st.overload != overload)
			core_reply(c, in, req, 503, "Overloaded");
		else
			core_reply(c, in, req, 500, NULL);
		osip_message_free(req);
	}
	return s;
}

/* Relays a request that named us in its Route set to the next hop. */
static void
core_proxy_relay(struct core *c, const struct env *in, osip_message_t *req,
		 struct core_leg *out)
{
	osip_message_t *fwd = NULL;
	const osip_uri_t *hop;
	struct core_leg up;
	struct core_stx *s;
	int rc;

	rc = core_next_leg(c, req, out, &hop);
	if (rc < 0) {
		core_reply(c, in, req, 503, "Next Hop Unreachable");
		osip_message_free(req);
		return;
	}
	if (rc == 0 && core_pstn_off_trunk(c, out)) {
		/* Inside someone's call, to a gateway: a call the trunk's
		 * rules never saw (core_pstn.c). */
		c->st.pstn_bypass++;
		log_info(LOG_SYS_SIP, "%s in dialog to a [pstn] gateway "
			 "outside a trunk call: 403", req->sip_method);
		core_reply(c, in, req, 403, "Not Routed Here");
		osip_message_free(req);
		return;
	}
	s = core_proxy_stx_new(c, in, req);
	if (s == NULL)
		return;
	if (rc == 1) {
		/* hop is in req, which s holds. */
		core_fed_route(s, hop, out->edge_id, out->trunk,
			       out->cseq_delta);
		return;
	}
	if (osip_message_clone(req, &fwd) != 0 ||
	    (out->cseq_delta && core_cseq_shift(fwd, out->cseq_delta) != 0)) {
		if (fwd)
			osip_message_free(fwd);
		core_stx_respond_code(s, 500, NULL);
		return;
	}
	if (out->cseq_delta && req == c->rx.msg)
		c->rx.dirty = 1;	/* fwd's CSeq is not the text's */
	core_leg_from_env(&up, in);
	if (core_method_dialog(req) && !core_has_to_tag(req) &&
	    c->cfg->record_route)
		core_record_route(c, fwd, &up, out);
	core_ctx_new(s, out, fwd);
	core_stx_branch_done(s);
}

/*
 * The leg towards a binding.  Over a connection (TCP, TLS, WebSocket):
 * that flow, through the edge that holds it.  Otherwise the Contact,
 * unless it looks NATed or unreachable (core_contact_natted); then the
 * REGISTER's source address, where the UA's NAT binding points, marked
 * nat so that the dialog's Record-Route keeps it for the in-dialog
 * requests too.
 */
static int
core_binding_leg(struct core *c, const struct loc_binding *b,
		 const osip_uri_t *u, struct core_leg *leg)
{
	int have_src = b->received.sa.sa_family != AF_UNSPEC;

	leg->trunk = leg->cseq_delta = 0;
	if (cfg_edge_find(c->cfg, b->edge_id) == NULL)
		return -ENOENT;
	if (!b->conn_id && infra_has(&c->infra, b->transport ? b->transport :
					       ENV_UDP, &b->received))
		return -EACCES;
	leg->edge_id = b->edge_id;
	if (b->conn_id) {
		leg->transport = b->transport;
		leg->flags = (b->flags & LOC_F_WS) ? ENV_F_WS : 0;
		leg->nat = 0;
		leg->conn_id = b->conn_id;
		leg->dst = b->received;
		return 0;
	}
	if (!have_src)
		return core_uri_leg(u, leg) == 0 &&
		       !infra_has(&c->infra, leg->transport, &leg->dst) ?
		       0 : -EHOSTUNREACH;
	if (!core_contact_natted(c, u, &b->received, leg))
		return 0;
	leg->transport = b->transport ? b->transport : ENV_UDP;
	leg->conn_id = 0;
	leg->flags = 0;
	leg->nat = leg->transport == ENV_UDP;
	leg->dst = b->received;
	return 0;
}

/* One branch of a fork: the request retargeted to a binding. */
static void
core_fork_branch(struct core *c, struct core_stx *s, const struct env *in,
		 const struct loc_binding *b)
{
	osip_message_t *fwd = NULL;
	osip_uri_t *u = NULL;
	struct core_leg out, up;

	if (osip_uri_init(&u) != 0)
		return;
	if (osip_uri_parse(u, b->contact) != 0 ||
	    core_binding_leg(c, b, u, &out) != 0)
		goto fail;
	if (core_pstn_off_trunk(c, &out)) {
		/* a Contact that points at a gateway: a way around the
		 * trunk's rules for anyone who calls that user */
		c->st.pstn_bypass++;
		goto fail;
	}
	if (osip_message_clone(s->req, &fwd) != 0)
		goto fail;
	osip_uri_free(fwd->req_uri);
	fwd->req_uri = u;
	u = NULL;
	core_leg_from_env(&up, in);
	if (core_method_dialog(fwd) && c->cfg->record_route)
		core_record_route(c, fwd, &up, &out);
	core_ctx_new(s, &out, fwd);
	return;
fail:
	log_info(LOG_SYS_SIP, "binding %s -> %s unusable", b->aor, b->contact);
	osip_uri_free(u);
}

/* A number nobody registered, asked for by one of our users: to the
 * phone network's gateways (core_pstn.c), as the user's identity. */
static void
core_proxy_trunk(struct core *c, const struct env *in, osip_message_t *req)
{
	struct core_stx *s = core_proxy_stx_new(c, in, req);

	if (s == NULL)
		return;
	if (core_pstn_identity(c, s->req) != 0) {
		core_stx_respond_code(s, 500, NULL);
		return;
	}
	c->st.pstn_requests++;
	core_fed_route_trunk(s, s->up.edge_id);
}

static void
core_proxy_lookup(struct core *c, const struct env *in, osip_message_t *req)
{
	struct loc_binding *b;
	char aor[LOC_AOR_MAX];
	struct core_stx *s;
	int n, known = 0;

	n = core_pstn_trunk_in(c, req);
	if (n >= 0)
		n = core_pstn_did_in(c, req);
	if (n < 0 || core_aor_from_uri(req->req_uri, aor, sizeof(aor)) != 0) {
		core_reply(c, in, req, n < 0 ? 500 : 404, NULL);
		osip_message_free(req);
		return;
	}
	b = c->bindings;
	n = loc_lookup(c->loc, aor, core_wall_s(c), b,
		       c->cfg->max_contacts, &known);
	if (n == 0 && !loc_synced(c->loc, aor)) {
		/* The store may lack a registration another host took
		 * while it was out of step with Redis (a failover): not
		 * "unavailable" but "ask again shortly". */
		c->st.lookups_unsynced++;
		core_reply(c, in, req, 503, "Location Store Catching Up");
		osip_message_free(req);
		return;
	}
	if (n == 0 && !known) {
		switch (core_pstn_wants(c, in, req)) {
		case 1:
			core_proxy_trunk(c, in, req);
			return;
		case -EACCES:
			c->st.guest_refused++;
			log_info(LOG_SYS_SIP, "%s from a guest to the number "
				 "%s: 403", req->sip_method,
				 req->req_uri->username);
			core_reply(c, in, req, 403, "Guests Cannot Call "
				   "Numbers");
			osip_message_free(req);
			return;
		}
	}
	if (n <= 0) {
		core_reply(c, in, req, n < 0 ? 500 : known ? 480 : 404, NULL);
		osip_message_free(req);
		return;
	}
	s = core_proxy_stx_new(c, in, req);
	if (s == NULL)
		return;
	for (int i = 0; i < n; i++)
		core_fork_branch(c, s, in, &b[i]);
	core_stx_branch_done(s);	/* answers now if no branch went out */
}

void
core_proxy_request(struct core *c, const struct env *in, osip_message_t *req)
{
	const char *why = NULL;
	osip_header_t *mfh = NULL;
	struct core_stx *s;
	struct core_leg out;
	struct env proven;
	enum core_auth_verdict v;
	int code, mf;

	c->st.rx_requests++;
	code = core_sanity(req, &why);
	if (code) {
		if (!core_method_is(req, "ACK"))
			core_reply(c, in, req, code, why);
		goto done;
	}
	if (!core_fed_peer_proven(c, in, req)) {
		/* A peer domain we require mutual TLS of: nothing it
		 * claims counts until its certificate proves it. */
		c->st.peer_unproven++;
		log_info(LOG_SYS_SIP, "%s from %s over %s without a client "
			 "certificate proving it: 403", req->sip_method,
			 req->from->url->host, env_transport_name(in->transport));
		if (!core_method_is(req, "ACK"))
			core_reply(c, in, req, 403,
				   "Client Certificate Required");
		goto done;
	}

	if (core_method_is(req, "ACK")) {
		s = core_stx_find(c, req, 1);
		if (s && (s->state == STX_COMPLETED || s->state == STX_CONFIRMED))
			core_stx_ack(s);
		else if (core_proxy_ack(c, in, req))
			return;
		goto done;
	}
	if (core_method_is(req, "CANCEL")) {
		s = core_stx_find(c, req, 1);
		core_reply(c, in, req, s ? 200 : 481, NULL);
		if (s)
			core_stx_cancel(s);
		goto done;
	}
	s = core_stx_find(c, req, 0);
	if (s) {
		core_stx_retransmit(s);
		goto done;
	}

	mf = core_max_forwards(c, req, &mfh);
	if (mf < 0) {
		core_reply(c, in, req, 400, "Bad Max-Forwards");
		goto done;
	}
	if (mf == 0) {
		if (core_method_is(req, "OPTIONS") &&
		    req->req_uri->username == NULL)
			core_ok_options(c, in, req);
		else
			core_reply(c, in, req, 483, NULL);
		goto done;
	}
	core_set_max_forwards(c, req, mfh, mf - 1);

	core_leg_from_env(&out, in);
	out.conn_id = 0;
	if (core_has_to_tag(req)) {
		/* In dialog: only a Route set our Record-Route gave this
		 * dialog is ours to route (Kamailio's loose_route()); the
		 * rest would make us an open relay. */
		if (core_strip_routes(c, req, &out, 1) <= 0) {
			c->st.route_refused++;
			log_info(LOG_SYS_SIP, "%s in dialog without our signed "
				 "Route: 403", req->sip_method);
			core_reply(c, in, req, 403, "Not Routed Here");
			goto done;
		}
		if (core_method_is(req, "BYE"))
			core_media_delete(c, req);
		core_proxy_relay(c, in, req, &out);
		return;
	}
	/* An initial request: our own Route (we are the UA's outbound
	 * proxy) is consumed; any other preloaded Route is dropped, as the
	 * Kamailio default configuration does, so that nobody can make us
	 * relay to a next hop of their choosing. */
	core_strip_routes(c, req, &out, 0);
	osip_list_special_free(&req->routes,
			       (void (*)(void *))osip_route_free);
	if (req == c->rx.msg)
		c->rx.route_pop = CORE_SPLICE_ROUTES_ALL;
	v = core_auth_request(c, in, req);
	switch (v) {
	case CORE_AUTH_PASS:
		core_proxy_initial(c, in, req);
		return;
	case CORE_AUTH_PROVEN:
	case CORE_AUTH_GUEST:
		proven = *in;
		proven.proven = v == CORE_AUTH_GUEST ? ENV_PROVEN_GUEST :
						      ENV_PROVEN_ACCOUNT;
		core_proxy_initial(c, &proven, req);
		return;
	case CORE_AUTH_HELD:
		return;
	case CORE_AUTH_ANSWERED:
		break;
	}
done:
	osip_message_free(req);
}

/* Step 8: a request for a domain we do not serve. */
static void
core_proxy_foreign(struct core *c, const struct env *in, osip_message_t *req)
{
	struct core_stx *s;

	if (!core_fed_from_local(c, req)) {
		/* Whatever the From says, a foreign one has no business
		 * sending through us: no open relay. */
		c->st.relay_refused++;
		log_info(LOG_SYS_SIP, "%s from a foreign domain to a foreign "
			 "domain: 403", req->sip_method);
		core_reply(c, in, req, 403, "Relaying Denied");
		osip_message_free(req);
		return;
	}
	if (in->proven == ENV_PROVEN_GUEST) {
		/* Guest credentials go to whoever opens the page: they
		 * reach this cluster's users, never other domains. */
		c->st.guest_refused++;
		log_info(LOG_SYS_SIP, "%s from a guest to the foreign domain "
			 "%s: 403", req->sip_method, req->req_uri->host);
		core_reply(c, in, req, 403, "Guests Stay Local");
		osip_message_free(req);
		return;
	}
	s = core_proxy_stx_new(c, in, req);
	if (s)
		core_fed_route(s, s->req->req_uri, s->up.edge_id, 0, 0);
}

void
core_proxy_initial(struct core *c, const struct env *in, osip_message_t *req)
{
	int eid;

	if (core_method_is(req, "REGISTER")) {
		core_registrar(c, in, req);
		goto done;
	}
	if (req->req_uri->host == NULL) {
		core_reply(c, in, req, 400, "Bad Request-URI");
		goto done;
	}
	if (!core_uri_is_self(c, req->req_uri, &eid) &&
	    !cfg_domain_is_local(c->cfg, req->req_uri->host,
				 strlen(req->req_uri->host))) {
		core_proxy_foreign(c, in, req);
		return;
	}
	if (req->req_uri->username == NULL) {
		if (core_method_is(req, "OPTIONS"))
			core_ok_options(c, in, req);
		else
			core_reply(c, in, req, 404, NULL);
		goto done;
	}
	core_proxy_lookup(c, in, req);
	return;
done:
	osip_message_free(req);
}
