/*
 * core_pstn_reg.c - registering to the carrier ([pstn] register = yes),
 * as Kamailio's uac module does with uac_reg, for a trunk that sends
 * our calls only to a contact registered at it.
 *
 * Each core registers [pstn] username at the first gateway, in the
 * order calls try them, that takes it, with the Contact of the edge it
 * sends through: the cores that share an edge refresh one binding at
 * the carrier, each under its own Call-ID, and a core that dies leaves
 * the others' bindings, all of them naming edges, in place.  So no
 * core sends Expires 0 when it stops: another may count on that
 * binding, which expires at the carrier in its time.
 *
 * The REGISTER is a non-INVITE client transaction kept here, not one of
 * the proxy's, since nothing upstream waits for it: retransmitted at T1
 * doubling to T2 over UDP (T2 once a provisional came), given up at 64 x
 * T1.  Its branch is minted like the proxy's (core_branch_make), so the
 * edge brings the answers to this core.  A 401 or 407 is answered once
 * with [pstn]'s credentials (core_pstn_authorize), one 423 with the
 * Min-Expires asked for (kept for the refreshes).  A target that is
 * silent is set aside for [federation] blocklist_s and the gateway's
 * next target tried (an SRV name's backups); anything else, or a
 * challenge again, moves to the next gateway, and after the last one
 * the attempt starts over in CORE_PREG_RETRY_S.  A registration is
 * refreshed at three quarters of what the carrier granted (our
 * Contact's expires in the 200, else the least of its Contacts', else
 * its Expires, else what we asked), not sooner than CORE_PREG_MIN_MS
 * apart.  When the edge it names is lost, the core registers again at
 * once through another: the carrier would send calls to a dead edge.
 *
 * Calls the carrier sends to that contact name the trunk's user in
 * their Request-URI and the number called in their To: the To's user
 * then stands for it (core_pstn_trunk_in), a DID of [pstn] dids.
 *
 * Cost: one REGISTER (two when challenged) per core every 3/4 of the
 * expiry; memory: one request's text per core.
 */
#include "core/core_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/dns.h"
#include "lib/log.h"

#define CORE_PREG_RETRY_S 30	/* after every gateway failed */
#define CORE_PREG_FIRST_MS 1000	/* the first attempt: the edges linked */
#define CORE_PREG_MIN_MS 1000	/* refreshes at least this far apart */

enum core_preg_state {
	PREG_WAIT,		/* the timer starts the next attempt */
	PREG_LOCATE,		/* the gateway's name being located */
	PREG_SENT,		/* a REGISTER out, no final answer yet */
	PREG_DONE,		/* registered: the timer refreshes it */
};

struct core_preg {
	struct core *c;
	uv_timer_t timer;
	enum core_preg_state state;
	int gw;			/* the gateway tried, in [pstn] order */
	int edge;		/* index in cfg->edges sent through */
	struct dns_query *q;
	struct dns_target t[DNS_TARGETS_MAX];	/* the gateway's, usable */
	int n_t, t_at;
	struct core_leg leg;
	char gw_host[CFG_ADDR_LEN];	/* what is located */
	char gw_name[CFG_ADDR_LEN + 8];	/* host[:port] of its URI: the
					   Request-URI, From and To */
	char call_id[40], tag[20];
	char branch[SIP_BRANCH_MAX];
	uint32_t cseq;
	int expires;		/* asked for (a 423 raises it) */
	int answered;		/* this attempt answered a challenge */
	int raised;		/* this attempt answered a 423 */
	int registered;		/* a 200 came since the last failure */
	char *req;		/* the REGISTER as sent (libosip2's) */
	size_t req_len;
	int retx_ms;
	uint64_t retx_at, give_up_at;	/* loop ms; 0: not armed */
};

static void core_preg_attempt(struct core_preg *p);
static void core_preg_timer_cb(uv_timer_t *t);

static void
core_preg_arm(struct core_preg *p, uint64_t ms)
{
	uv_timer_start(&p->timer, core_preg_timer_cb, ms, 0);
}

/* Sends p->req down p->leg and arms timers E and F. */
static void
core_preg_send(struct core_preg *p)
{
	struct core *c = p->c;
	uint64_t now = core_now_ms(c);

	p->state = PREG_SENT;
	p->retx_ms = c->cfg->t1_ms;
	p->retx_at = env_transport_is(p->leg.transport, ENV_TP_STREAM) ? 0 :
		     now + (uint64_t)p->retx_ms;
	p->give_up_at = now + 64 * (uint64_t)c->cfg->t1_ms;
	if (core_send(c, &p->leg, p->req, p->req_len) < 0)
		p->give_up_at = now;	/* its edge is gone: the next */
	core_preg_arm(p, p->retx_at ? (uint64_t)p->retx_ms :
		      p->give_up_at - now);
}

/*
 * Takes m (the REGISTER, our Via not yet on it; NULL: it could not be
 * built) as the request of the transaction: a fresh branch, our Via,
 * its text kept for retransmission, and sends it.  0 or a negative
 * errno (m freed).
 */
static int
core_preg_start(struct core_preg *p, osip_message_t *m)
{
	struct core *c = p->c;
	char *buf = NULL;
	size_t len = 0;
	int rc;

	if (m == NULL)
		return -ENOMEM;
	rc = core_via_push(c, m, &p->leg, ++c->token, p->branch,
			   sizeof(p->branch));
	if (rc == 0 && osip_message_to_str(m, &buf, &len) != 0)
		rc = -ENOMEM;
	osip_message_free(m);
	if (rc != 0)
		return rc;
	osip_free(p->req);
	p->req = buf;
	p->req_len = len;
	core_preg_send(p);
	return 0;
}

/* The REGISTER for the gateway p->gw_host through p->leg's edge. */
static osip_message_t *
core_preg_build(struct core_preg *p)
{
	struct core *c = p->c;
	const struct cfg_edge *e = core_edge_or_first(c, p->leg.edge_id);
	const char *user = c->cfg->pstn_username;
	const char *t = env_transport_name(p->leg.transport);
	char text[2048];
	osip_message_t *m = NULL;
	int n;

	n = snprintf(text, sizeof(text),
		     "REGISTER sip:%s SIP/2.0\r\n"
		     "Max-Forwards: 70\r\n"
		     "From: <sip:%s@%s>;tag=%s\r\n"
		     "To: <sip:%s@%s>\r\n"
		     "Call-ID: %s\r\n"
		     "CSeq: %u REGISTER\r\n"
		     "Contact: <sip:%s@%s%s%s>\r\n"
		     "Expires: %d\r\n"
		     "User-Agent: sipmesh\r\n"
		     "Content-Length: 0\r\n\r\n",
		     p->gw_name, user, p->gw_name, p->tag, user, p->gw_name,
		     p->call_id, ++p->cseq, user,
		     core_edge_sent_by(c, e, p->leg.transport),
		     p->leg.transport == ENV_UDP ? "" : ";transport=",
		     p->leg.transport == ENV_UDP ? "" : t, p->expires);
	if (n < 0 || (size_t)n >= sizeof(text) || osip_message_init(&m) != 0)
		return NULL;
	if (osip_message_parse(m, text, (size_t)n) != 0) {
		osip_message_free(m);
		return NULL;
	}
	return m;
}

static void core_preg_target(struct core_preg *p);

/* The attempt at this target is over: a silent one is set aside and
 * the gateway's next target tried; else the next gateway, or a retry
 * of them all later. */
static void
core_preg_next(struct core_preg *p, const char *why, int silent)
{
	struct core *c = p->c;

	log_warn(LOG_SYS_SIP, "[pstn] registration at %s: %s", p->gw_host, why);
	if (silent && p->state == PREG_SENT) {
		dns_block(c->dns, &p->leg.dst, p->leg.transport,
			  c->cfg->blocklist_s);
		if (++p->t_at < p->n_t) {
			core_preg_target(p);
			return;
		}
	}
	if (++p->gw < core_pstn_count(c)) {
		core_preg_attempt(p);
		return;
	}
	c->st.pstn_reg_failed++;
	if (p->registered)
		log_err(LOG_SYS_SIP, "[pstn] not registered at any gateway: "
			"the carrier may stop sending calls; again in %d s",
			CORE_PREG_RETRY_S);
	p->registered = 0;
	p->gw = 0;
	p->state = PREG_WAIT;
	core_preg_arm(p, 1000 * CORE_PREG_RETRY_S);
}

/* Registers at target p->t_at of the gateway, through edge p->edge. */
static void
core_preg_target(struct core_preg *p)
{
	struct core *c = p->c;
	const struct dns_target *t = &p->t[p->t_at];

	p->leg = (struct core_leg){
		.edge_id = (uint16_t)c->cfg->edges[p->edge].id,
		.transport = (uint8_t)t->transport,
		.trunk = 1,
		.dst = t->addr,
	};
	core_leg_edge_for_dst(c, &p->leg);
	p->answered = p->raised = 0;
	if (core_preg_start(p, core_preg_build(p)) != 0)
		core_preg_next(p, "cannot build the REGISTER", 0);
}

static void
core_preg_located(void *arg, int err, const struct dns_target *t, int n)
{
	struct core_preg *p = arg;
	struct core *c = p->c;
	int gw;

	p->q = NULL;
	p->n_t = err == 0 ? core_fed_usable(c, t, n, p->t, 1, &gw) : 0;
	if (p->n_t == 0) {
		core_preg_next(p, err ? strerror(-err) : "it resolves to this "
			       "cluster", 0);
		return;
	}
	for (int i = 0; i < p->n_t; i++)
		core_pstn_learn(c, &p->t[i].addr);
	p->t_at = 0;
	core_preg_target(p);
}

/* Locates gateway p->gw. */
static void
core_preg_attempt(struct core_preg *p)
{
	struct core *c = p->c;
	const osip_uri_t *u = core_pstn_gw(c, p->gw);
	int rc;

	p->state = PREG_LOCATE;
	snprintf(p->gw_name, sizeof(p->gw_name), "%s%s%s%s%s",
		 strchr(u->host, ':') ? "[" : "", u->host,
		 strchr(u->host, ':') ? "]" : "", u->port ? ":" : "",
		 u->port ? u->port : "");
	rc = core_fed_locate(c, u, p->gw_host, sizeof(p->gw_host),
			     core_preg_located, p, &p->q);
	if (rc != 0)
		core_preg_next(p, strerror(-rc), 0);
}

static void
core_preg_timer_cb(uv_timer_t *t)
{
	struct core_preg *p = t->data;
	uint64_t now = core_now_ms(p->c);

	switch (p->state) {
	case PREG_WAIT:
	case PREG_DONE:
		/* a new attempt, or a refresh: the same Call-ID, CSeq up */
		p->gw = p->state == PREG_DONE ? p->gw : 0;
		core_preg_attempt(p);
		return;
	case PREG_SENT:
		if (now >= p->give_up_at) {
			core_preg_next(p, "no answer", 1);
			return;
		}
		if (p->retx_at && now >= p->retx_at) {
			core_send(p->c, &p->leg, p->req, p->req_len);
			p->retx_ms = p->retx_ms * 2 < p->c->cfg->t2_ms ?
				     p->retx_ms * 2 : p->c->cfg->t2_ms;
			p->retx_at = now + (uint64_t)p->retx_ms;
		}
		core_preg_arm(p, (p->retx_at && p->retx_at < p->give_up_at ?
				  p->retx_at : p->give_up_at) - now);
		return;
	case PREG_LOCATE:
		return;
	}
}

/* The expiry the 200 r grants our Contact (the trunk's user at our
 * edge's host): its expires parameter, else the least of the Contacts'
 * (a carrier may rewrite the host it saw), else the Expires header,
 * else what we asked. */
static int
core_preg_granted(struct core_preg *p, const osip_message_t *r)
{
	struct core *c = p->c;
	const char *sb = core_edge_sent_by(c, core_edge_or_first(c,
					   p->leg.edge_id), p->leg.transport);
	const char *host = sb + (sb[0] == '[');
	size_t hl = sb[0] == '[' ? strcspn(host, "]") : strcspn(host, ":");
	osip_header_t *h = NULL;
	long v = -1, least = -1;

	for (int i = 0; v < 0 && i < osip_list_size(&r->contacts); i++) {
		osip_contact_t *ct = osip_list_get(&r->contacts, i);
		osip_generic_param_t *e = NULL;
		long x;

		if (ct == NULL || ct->url == NULL ||
		    osip_contact_param_get_byname(ct, "expires", &e) != 0 ||
		    e == NULL || e->gvalue == NULL)
			continue;
		x = strtol(e->gvalue, NULL, 10);
		if (x > 0 && (least < 0 || x < least))
			least = x;
		if (ct->url->username && ct->url->host &&
		    strcmp(ct->url->username, c->cfg->pstn_username) == 0 &&
		    strlen(ct->url->host) == hl &&
		    strncasecmp(ct->url->host, host, hl) == 0)
			v = x;
	}
	if (v <= 0)
		v = least;
	if (v <= 0 && osip_message_get_expires(r, 0, &h) >= 0 && h &&
	    h->hvalue)
		v = strtol(h->hvalue, NULL, 10);
	return v > 0 && v <= 86400 ? (int)v : p->expires;
}

int
core_pstn_reg_response(struct core *c, osip_message_t *r)
{
	struct core_preg *p = c->preg;
	const char *branch = core_top_branch(r, NULL);
	osip_message_t *m;
	osip_header_t *h = NULL;
	int code = r->status_code, granted, min;
	char num[16];

	if (p == NULL || p->state != PREG_SENT || branch == NULL ||
	    strcmp(branch, p->branch) != 0)
		return 0;
	if (code < 200) {
		p->retx_ms = c->cfg->t2_ms;	/* timer E at T2 now */
		return 1;
	}
	uv_timer_stop(&p->timer);
	if (code < 300) {
		granted = core_preg_granted(p, r);
		c->st.pstn_reg_ok++;
		if (!p->registered)
			log_notice(LOG_SYS_SIP, "[pstn] registered %s at %s for "
				   "%d s", c->cfg->pstn_username, p->gw_host,
				   granted);
		p->registered = 1;
		p->state = PREG_DONE;
		core_preg_arm(p, granted > 1 ? 750 * (uint64_t)granted :
			      CORE_PREG_MIN_MS);
		return 1;
	}
	if ((code == 401 || code == 407) && !p->answered) {
		/* the same REGISTER, CSeq one up, with credentials */
		p->answered = 1;
		m = core_preg_build(p);
		if (m && core_pstn_authorize(c, m, r) != 0) {
			osip_message_free(m);
			m = NULL;
		}
		if (m && core_preg_start(p, m) == 0)
			return 1;
		core_preg_next(p, "a challenge we cannot answer", 0);
		return 1;
	}
	min = code == 423 && osip_message_header_get_byname(r, "Min-Expires",
			0, &h) >= 0 && h && h->hvalue ? atoi(h->hvalue) : 0;
	if (min > p->expires && min <= 86400 && !p->raised) {
		p->expires = min;
		p->raised = 1;
		p->answered = 0;	/* its challenge is answered again */
		if (core_preg_start(p, core_preg_build(p)) == 0)
			return 1;
	}
	snprintf(num, sizeof(num), "%d", code);
	core_preg_next(p, code == 401 || code == 407 ? "our credentials "
		       "refused" : num, 0);
	return 1;
}

int
core_pstn_reg_new(struct core *c)
{
	struct core_preg *p;

	c->preg = NULL;
	if (!c->cfg->pstn_register || core_pstn_count(c) == 0)
		return 0;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	p->c = c;
	core_random_hex(c, p->call_id, 12);
	memcpy(p->call_id + 24, "@sipmesh", 9);
	core_random_hex(c, p->tag, 8);
	p->edge = (c->id - 1) % c->cfg->n_edges;
	p->expires = c->cfg->pstn_register_expires;
	uv_timer_init(c->loop, &p->timer);
	p->timer.data = p;
	c->preg = p;
	/* after the links to the edges came up; cores not all at once */
	core_preg_arm(p, CORE_PREG_FIRST_MS + 97 * (uint64_t)(c->id % 8));
	return 0;
}

static void
core_preg_closed_cb(uv_handle_t *h)
{
	struct core_preg *p = h->data;

	osip_free(p->req);
	free(p);
}

void
core_pstn_reg_free(struct core_preg *p)
{
	if (p == NULL)
		return;
	dns_cancel(p->q);
	uv_close((uv_handle_t *)&p->timer, core_preg_closed_cb);
}

int
core_pstn_reg_up(const struct core *c)
{
	return c->preg && c->preg->registered;
}

void
core_pstn_reg_edge_lost(struct core *c, int edge_id)
{
	struct core_preg *p = c->preg;
	int lost = 0;

	if (p == NULL || c->cfg->n_edges < 2)
		return;
	if (c->cfg->edges[p->edge].id == edge_id) {
		p->edge = (p->edge + 1) % c->cfg->n_edges;
		lost = 1;
	}
	if ((p->state == PREG_SENT || p->state == PREG_DONE) &&
	    (lost || p->leg.edge_id == edge_id)) {
		log_notice(LOG_SYS_SIP, "[pstn] registration: its edge %d is "
			   "lost: registering through edge %d", edge_id,
			   c->cfg->edges[p->edge].id);
		uv_timer_stop(&p->timer);
		core_preg_attempt(p);
	}
}

int
core_pstn_trunk_in(struct core *c, osip_message_t *req)
{
	osip_uri_t *u = req->req_uri;
	const osip_uri_t *to = req->to ? req->to->url : NULL;
	char *user;

	if (c->preg == NULL || u->username == NULL || to == NULL ||
	    to->username == NULL ||
	    strcmp(u->username, c->cfg->pstn_username) != 0 ||
	    !core_uri_is_self(c, u, NULL))
		return 0;
	user = osip_strdup(to->username);
	if (user == NULL)
		return -ENOMEM;
	osip_free(u->username);		/* the setter does not */
	osip_uri_set_username(u, user);
	return 1;
}
