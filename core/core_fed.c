/*
 * core_fed.c - requests to foreign domains (issue #11): the server
 * transaction locates the Request-URI's host by DNS (RFC 3263, lib/dns.h)
 * and sends the request to one target at a time, failing over to the
 * next when a target is silent (UDP, [federation] failover_ms), refuses
 * the connection or answers 503; each dead target is remembered
 * (dns_block) for blocklist_s so the next locate puts it last.
 *
 * TLS targets prove the domain of the Request-URI, never the SRV
 * target's name (RFC 5922 4, 7.3): the edge checks the URI host it
 * routes by, which for these requests is that domain.  A target whose
 * certificate does not prove it is failed over like a dead one, but
 * only to other TLS targets; when none is left the caller gets 502.
 * Inbound, a request whose From domain is in tls_client_cert_domains
 * must arrive on a TLS connection whose certificate the edge verified
 * for that domain (core_fed_peer_proven, RFC 5922 7.4).
 *
 * The same locate serves the next hop of a routed request whose host is
 * a name (a peer's Record-Route or Contact, RFC 5922 makes TLS peers
 * write names): an in-dialog request fails over like an initial one; a
 * stateless ACK for a 2xx goes to the first target, as a UA would send
 * it, from a bounded list of ACKs waiting for their locate
 * (core_fed_ack), dropped and counted beyond it.
 *
 * A call to the phone network ([pstn], core_pstn.c) goes the same way
 * to each gateway in turn: its URI is located, its targets tried, and
 * when none is left the next gateway's URI is located (f->order).  A
 * gateway whose targets are all remembered as dead (dns_block) waits
 * behind the others, once, as dispatcher skips an inactive one: a
 * silent gateway costs failover_ms to the first call only.
 *
 * The locate belongs to the stx (s->fed): it is cancelled when the stx
 * goes, so its callback never sees a freed transaction.  Branches are
 * ordinary client transactions; core_stx_branch_done asks here, once
 * none is pending, whether another target is due before it picks the
 * best response.
 */
#include "core/core_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/dns.h"
#include "lib/log.h"

/* ACKs waiting for their next hop's locate at most: each holds a
 * parsed message, and a 2xx's ACK is retransmitted with the 2xx. */
#define CORE_FED_ACKS_MAX 64

struct core_fed {
	struct dns_query *q;	/* the locate under way, else NULL */
	struct dns_target t[DNS_TARGETS_MAX];
	int n, next;		/* targets, and the next one to try */
	int tls_refused;	/* a TLS target did not prove the domain:
				   no plain target after it (no downgrade) */
	uint16_t edge_id;	/* the edge that sends to the targets */
	uint8_t leg_trunk;	/* core_fed_route's: an in-dialog request */
	uint8_t cseq_delta;	/* towards a trunk gateway */
	int trunk;		/* a [pstn] call: order[at] is the gateway */
	int order[2 * CFG_PSTN_GW_MAX], n_order, at;	/* tried */
	unsigned deferred;	/* gateways found dead, moved to the end */
	int refused;		/* a gateway refused our credentials */
	osip_uri_t *ruri;	/* owned: a trunk call's Request-URI for
				   gw; NULL: the request's own */
	char host[CFG_ADDR_LEN];	/* the name located: what a TLS
					   target must prove */
};

/* A stateless ACK whose next hop is being located. */
struct core_fed_ack {
	struct list_node link;	/* in c->fed_acks */
	struct core *core;
	struct dns_query *q;
	osip_message_t *ack;	/* owned */
	struct core_leg out;	/* its edge; the rest comes from DNS */
	struct env in;		/* as it arrived, without its text */
};

int
core_fed_new(struct core *c)
{
	struct dns_config dc = {
		.servers = c->cfg->dns_servers,
		.cache_size = c->cfg->dns_cache_size,
		.timeout_ms = c->cfg->dns_timeout_ms,
		.tries = c->cfg->dns_tries,
	};

	list_init(&c->fed_acks);
	return dns_new(&c->dns, c->loop, &dc);
}

static void
core_fed_ack_free(struct core_fed_ack *a)
{
	list_remove(&a->link);
	a->core->n_fed_acks--;
	dns_cancel(a->q);
	if (a->ack)
		osip_message_free(a->ack);
	free(a);
}

void
core_fed_stop(struct core *c)
{
	struct list_node *n;

	while ((n = list_first(&c->fed_acks)) != NULL)
		core_fed_ack_free(list_entry(n, struct core_fed_ack, link));
}

void
core_fed_free(struct core_fed *f)
{
	if (f == NULL)
		return;
	dns_cancel(f->q);
	osip_uri_free(f->ruri);
	free(f);
}

/* Whether m's From names a user of ours: its domain is local or is one
 * of our own addresses. */
int
core_fed_from_local(struct core *c, const osip_message_t *m)
{
	const osip_uri_t *u = m->from ? m->from->url : NULL;
	int eid;

	if (u == NULL || u->host == NULL)
		return 0;
	return core_uri_is_self(c, u, &eid) ||
	       cfg_domain_is_local(c->cfg, u->host, strlen(u->host));
}

int
core_fed_peer_proven(const struct core *c, const struct env *in,
		     const osip_message_t *m)
{
	const osip_uri_t *u = m->from ? m->from->url : NULL;
	size_t len;

	if (c->cfg->n_tls_client_cert_domains == 0 || u == NULL ||
	    u->host == NULL)
		return 1;
	len = strlen(u->host);
	if (!cfg_domain_needs_client_cert(c->cfg, u->host, len))
		return 1;
	/* Names come only from the edge's own verification of this
	 * connection's certificate (env.h), never from the message. */
	return env_transport_is(in->transport, ENV_TP_SECURE) &&
	       env_names_has(in, u->host, len);
}

static void core_fed_located(void *arg, int err, const struct dns_target *t,
			     int n);
static int core_fed_next_gw(struct core_stx *s);
static void core_fed_trunk_lost(struct core_stx *s);

/* A branch of s's request down leg `out`: the trunk's Request-URI
 * when there is one, the CSeq moved by out->cseq_delta, and when
 * challenge is not NULL (a gateway's 401/407) credentials answering
 * it.  1 when the branch went out. */
static int
core_fed_send(struct core_stx *s, const struct core_leg *out,
	      const osip_message_t *challenge)
{
	struct core *c = s->core;
	struct core_fed *f = s->fed;
	osip_message_t *fwd = NULL;
	osip_uri_t *u = NULL;

	if (osip_message_clone(s->req, &fwd) != 0)
		return 0;
	if (f->ruri) {
		if (osip_uri_clone(f->ruri, &u) != 0)
			goto fail;
		osip_uri_free(fwd->req_uri);
		fwd->req_uri = u;
	}
	if ((out->cseq_delta && core_cseq_shift(fwd, out->cseq_delta) != 0) ||
	    (challenge && core_pstn_authorize(c, fwd, challenge) != 0))
		goto fail;
	/* A trunk call always: its Record-Route marks the gateway's side
	 * (core_trunk_token), without which nothing reaches a gateway. */
	if (core_method_dialog(fwd) && !core_has_to_tag(fwd) &&
	    (c->cfg->record_route || out->trunk))
		core_record_route(c, fwd, &s->up, out);
	return core_ctx_new(s, out, fwd) != NULL;
fail:
	osip_message_free(fwd);
	return 0;
}

/* Sends s's request to its next target; 1 when a branch went out
 * (it may have failed already, and s been answered). */
static int
core_fed_try(struct core_stx *s)
{
	struct core *c = s->core;
	struct core_fed *f = s->fed;

	if (f->next > 0)
		c->st.fed_failovers++;
	while (f->next < f->n) {
		const struct dns_target *t = &f->t[f->next++];
		struct core_leg out;

		/* After a certificate that did not prove the domain, a
		 * plain target would hand the request to whoever can
		 * make us fall back: TLS targets only. */
		if (f->tls_refused &&
		    !env_transport_is(t->transport, ENV_TP_SECURE))
			continue;
		out = (struct core_leg){
			.edge_id = f->edge_id,
			.transport = (uint8_t)t->transport,
			.trunk = (uint8_t)(f->trunk || f->leg_trunk),
			.cseq_delta = f->cseq_delta,
			.dst = t->addr,
		};
		core_leg_edge_for_dst(c, &out);
		if (core_fed_send(s, &out, NULL))
			return 1;
	}
	return 0;
}

/*
 * A trunk gateway's last word was a challenge (x: 401/407).  Answered
 * once down the same leg with [pstn]'s credentials; refused again, or
 * with no credentials to give, the next gateway, else 502.  The caller
 * never gets the challenge.  Returns 1: s waits or was answered.
 */
static int
core_fed_trunk_challenged(struct core_stx *s, struct core_ctx *x)
{
	struct core *c = s->core;
	struct core_leg out = x->down;
	char a[64];

	x->superseded = 1;
	env_sa_str(&x->down.dst, a, sizeof(a));
	out.cseq_delta = 1;
	if (!x->down.cseq_delta && core_pstn_can_auth(c) &&
	    core_fed_send(s, &out, x->final)) {
		c->st.pstn_auth++;
		log_info(LOG_SYS_SIP, "[pstn] gateway %s: %d answered with "
			 "credentials", a, x->code);
		return 1;
	}
	c->st.pstn_auth_failed++;
	s->fed->refused = 1;
	log_warn(LOG_SYS_SIP, "[pstn] gateway %s: %d %s", a, x->code,
		 x->down.cseq_delta ? "again: it refuses [pstn] username "
		 "and password" : core_pstn_can_auth(c) ? "with no challenge "
		 "we can answer" : "and [pstn] has no username");
	core_fed_trunk_lost(s);
	return 1;
}

int
core_fed_usable(struct core *c, const struct dns_target *t, int n,
		struct dns_target *out, int trunk, int *gw)
{
	char a[64];
	int k = 0;

	*gw = 0;
	for (int i = 0; i < n; i++) {
		if (infra_has(&c->infra, t[i].transport, &t[i].addr)) {
			log_notice(LOG_SYS_SIP, "DNS target %s is this cluster: "
				   "skipped", env_sa_str(&t[i].addr, a,
							  sizeof(a)));
			continue;
		}
		if (!trunk && core_pstn_is_gateway(c, &t[i].addr)) {
			(*gw)++;
			continue;
		}
		out[k++] = t[i];
	}
	return k;
}

/* Starts the locate of s's next [pstn] gateway: 1 when one is under way,
 * 0 when no gateway is left. */
static int
core_fed_next_gw(struct core_stx *s)
{
	struct core *c = s->core;
	struct core_fed *f = s->fed;

	while (++f->at < f->n_order) {
		osip_uri_free(f->ruri);
		f->ruri = NULL;
		f->n = f->next = f->tls_refused = 0;
		if (core_pstn_ruri(c, f->order[f->at], s->req->req_uri,
				   &f->ruri) == 0 &&
		    core_fed_locate(c, f->ruri, f->host, sizeof(f->host),
				    core_fed_located, s, &f->q) == 0)
			return 1;
	}
	return 0;
}

/* A gateway with no target to try: the next one, or s's best answer;
 * with none to give (no gateway reached, or only challenges), 502 when
 * a gateway refused our credentials, else 503. */
static void
core_fed_trunk_lost(struct core_stx *s)
{
	if (core_fed_next_gw(s))
		return;
	for (int i = 0; i < s->n_br; i++) {
		if (!s->br[i]->is_cancel && !s->br[i]->superseded) {
			core_stx_branch_done(s);
			return;
		}
	}
	if (s->fed->refused)
		core_stx_respond_warn(s, 502, "the phone network's gateway "
				      "refused our credentials");
	else
		core_stx_respond_warn(s, 503, "no [pstn] gateway reachable");
}

static void
core_fed_located(void *arg, int err, const struct dns_target *t, int n)
{
	struct core_stx *s = arg;
	struct core_fed *f = s->fed;
	int gw = 0;

	f->q = NULL;
	log_ctx_set(s->call_id, strlen(s->call_id));
	if (f->trunk) {
		f->n = err == 0 ? core_fed_usable(s->core, t, n, f->t, 1, &gw) :
			0;
		for (int i = 0; i < f->n; i++)
			core_pstn_learn(s->core, &f->t[i].addr);
		if (f->n == 0) {
			log_warn(LOG_SYS_SIP, "[pstn] gateway %s: %s", f->host,
				 err ? strerror(-err) : "resolves to this "
				 "cluster");
			core_fed_trunk_lost(s);
		} else if (!(f->deferred & (1u << f->order[f->at])) &&
			   f->at + 1 < f->n_order &&
			   dns_blocked(s->core->dns, &f->t[0].addr,
				       f->t[0].transport)) {
			/* dead targets come last (dns_block_last): all are */
			f->deferred |= 1u << f->order[f->at];
			f->order[f->n_order++] = f->order[f->at];
			core_fed_trunk_lost(s);
		} else if (!core_fed_try(s)) {
			core_stx_branch_done(s);
		}
		goto done;
	}
	if (err == -ENOENT) {
		/* 404, not 604: a name missing from DNS is our view of it
		 * now, no reason to stop the caller's other forks. */
		core_stx_respond_warn(s, 404, "domain not found in DNS");
		goto done;
	}
	if (err != 0) {
		core_stx_respond_warn(s, 503, err == -ETIMEDOUT ?
				      "no DNS server answered" :
				      "DNS lookup failed");
		goto done;
	}
	f->n = core_fed_usable(s->core, t, n, f->t, f->leg_trunk, &gw);
	if (f->n == 0 && gw) {
		/* Around the trunk's rules: straight to a gateway. */
		s->core->st.pstn_bypass++;
		log_info(LOG_SYS_SIP, "%s to a [pstn] gateway outside a trunk "
			 "call: 403", s->req->sip_method);
		core_stx_respond_warn(s, 403, "[pstn] gateways take calls to "
				      "numbers only");
		goto done;
	}
	if (f->n == 0) {
		/* The domain points at us, and we do not serve it. */
		core_stx_respond_warn(s, 404, "domain resolves to this cluster");
		goto done;
	}
	if (!core_fed_try(s))
		core_stx_branch_done(s);
done:
	log_ctx_clear();
}

int
core_fed_locate(struct core *c, const osip_uri_t *u, char *host, size_t cap,
		dns_locate_cb cb, void *arg, struct dns_query **qp)
{
	osip_uri_param_t *p = NULL;
	int tp = ENV_TP_NONE, port = 0;
	size_t len;

	osip_uri_uparam_get_byname((osip_uri_t *)u, "transport", &p);
	if (p && p->gvalue)
		tp = env_transport_parse(p->gvalue, strlen(p->gvalue));
	if (u->port)
		port = atoi(u->port);
	if (tp < 0 || port < 0 || port > 65535)
		return -ERANGE;
	p = NULL;
	osip_uri_uparam_get_byname((osip_uri_t *)u, "maddr", &p);
	snprintf(host, cap, "%s", p && p->gvalue ? p->gvalue :
		 u->host ? u->host : "");
	len = strlen(host);
	if (len == 0 || len + 1 >= cap)
		return -EINVAL;
	return dns_locate(c->dns, host, len, tp, port,
			  u->scheme && strcasecmp(u->scheme, "sips") == 0, cb,
			  arg, qp);
}

/* s's new core_fed, sending through edge edge_id; NULL (s answered
 * 500) without memory. */
static struct core_fed *
core_fed_attach(struct core_stx *s, int edge_id)
{
	struct core_fed *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		core_stx_respond_code(s, 500, NULL);
		return NULL;
	}
	f->edge_id = (uint16_t)edge_id;
	s->fed = f;
	return f;
}

void
core_fed_route(struct core_stx *s, const osip_uri_t *u, int edge_id,
	       int trunk, int cseq_delta)
{
	struct core_fed *f = core_fed_attach(s, edge_id);
	int rc;

	if (f == NULL)
		return;
	f->leg_trunk = (uint8_t)(trunk != 0);
	f->cseq_delta = (uint8_t)cseq_delta;
	rc = core_fed_locate(s->core, u, f->host, sizeof(f->host),
			     core_fed_located, s, &f->q);
	if (rc == -ERANGE)
		core_stx_respond_code(s, 416, NULL);
	else if (rc == -EINVAL)
		core_stx_respond_warn(s, 404, "no such host");
	else if (rc != 0)
		core_stx_respond_code(s, 500, NULL);
}

void
core_fed_route_trunk(struct core_stx *s, int edge_id)
{
	struct core_fed *f = core_fed_attach(s, edge_id);

	if (f == NULL)
		return;
	f->trunk = 1;
	for (int i = 0; i < core_pstn_count(s->core); i++)
		f->order[f->n_order++] = i;
	f->at = -1;
	core_fed_trunk_lost(s);
}

static void
core_fed_ack_located(void *arg, int err, const struct dns_target *t, int n)
{
	struct core_fed_ack *a = arg;
	struct core *c = a->core;
	struct dns_target u[DNS_TARGETS_MAX];
	int gw = 0;

	a->q = NULL;
	core_log_ctx(a->ack);
	n = err == 0 ? core_fed_usable(c, t, n, u, a->out.trunk, &gw) : 0;
	if (gw)
		c->st.pstn_bypass++;
	if (n == 0) {
		c->st.ack_unlocated++;
		log_info(LOG_SYS_SIP, "ACK dropped: its next hop has no "
			 "target (%s)", err ? strerror(-err) : "this cluster");
		goto done;
	}
	/* No response tells whether it arrived: the first target, as
	 * the UA itself would send it (RFC 3263 4.3). */
	a->out.transport = (uint8_t)u[0].transport;
	a->out.dst = u[0].addr;
	core_leg_edge_for_dst(c, &a->out);
	if (core_proxy_ack_send(c, &a->in, a->ack, &a->out) > 0)
		a->ack = NULL;		/* rtpctl has it */
done:
	core_fed_ack_free(a);
	log_ctx_clear();
}

int
core_fed_ack(struct core *c, const struct env *in, osip_message_t *ack,
	     const osip_uri_t *u, const struct core_leg *out)
{
	struct core_fed_ack *a = NULL;
	char host[CFG_ADDR_LEN];
	int rc = -ENOBUFS;

	if (c->n_fed_acks >= CORE_FED_ACKS_MAX)
		goto fail;
	rc = -ENOMEM;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		goto fail;
	a->core = c;
	a->out = *out;
	/* The text is the receive buffer's, gone once this returns. */
	a->in = *in;
	a->in.msg = NULL;
	a->in.len = 0;
	a->in.names = NULL;
	a->in.names_len = 0;
	rc = core_fed_locate(c, u, host, sizeof(host), core_fed_ack_located,
			     a, &a->q);
	if (rc != 0)
		goto fail;
	a->ack = ack;
	list_insert_tail(&c->fed_acks, &a->link);
	c->n_fed_acks++;
	return 1;
fail:
	free(a);
	c->st.ack_unlocated++;
	log_info(LOG_SYS_SIP, "ACK dropped: its next hop %s not located: %s",
		 u->host ? u->host : "-", strerror(-rc));
	return 0;
}

/*
 * Called by core_stx_branch_done when no branch of s is pending.
 * Returns 1 when s still waits (its locate, or a new branch to the next
 * target), 0 when the best response is due.
 */
int
core_fed_branch_done(struct core_stx *s)
{
	struct core *c = s->core;
	struct core_fed *f = s->fed;
	struct core_ctx *x = NULL;
	char a[64], w[300];

	if (f->q) {
		if (!s->cancelled)
			return 1;
		dns_cancel(f->q);
		f->q = NULL;
		core_stx_respond_code(s, 487, NULL);
		return 1;
	}
	for (int i = s->n_br - 1; i >= 0 && x == NULL; i--)
		if (!s->br[i]->is_cancel)
			x = s->br[i];
	/* Asked again with nothing new (a trunk's next gateway failed
	 * before any branch): the best answer is due. */
	if (x && x->fed_seen)
		return 0;
	if (x)
		x->fed_seen = 1;
	if (!s->cancelled && x && f->trunk && x->final &&
	    (x->code == 401 || x->code == 407))
		return core_fed_trunk_challenged(s, x);
	if (s->cancelled || x == NULL ||
	    !(x->code == 503 || (x->code == 408 && x->final == NULL)))
		return 0;
	if (x->downstream == CORE_DOWN_TLS)
		f->tls_refused = 1;
	dns_block(c->dns, &x->down.dst, x->down.transport,
		  c->cfg->blocklist_s);
	env_sa_str(&x->down.dst, a, sizeof(a));
	log_info(LOG_SYS_SIP, "target %s/%s failed (%d%s): next of %d", a,
		 env_transport_key(x->down.transport), x->code,
		 x->downstream == CORE_DOWN_TLS ? ", TLS peer refused" : "",
		 f->n - f->next);
	if (core_fed_try(s))
		return 1;
	if (f->trunk && core_fed_next_gw(s))
		return 1;
	if (!f->tls_refused)
		return 0;
	/* RFC 5922 7.3: no server proved the domain; 502 says the
	 * fault is past us, the Warning says which. */
	snprintf(w, sizeof(w), "no TLS server of %s proved that name "
		 "(RFC 5922)", f->host);
	core_stx_respond_warn(s, 502, w);
	return 1;
}
