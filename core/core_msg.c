/*
 * core_msg.c - building, addressing and sending SIP messages for the
 * core.  libosip2 parses and serialises; this file adds what a proxy
 * needs around it: responses built from a request, "is this URI one of
 * our edges", AOR keys, and the envelope to the edge that sends.
 */
#include "core/core_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/core_splice.h"
#include "lib/hash.h"
#include "lib/link.h"
#include "lib/log.h"

static uint64_t
core_clock_loop_ms(void *arg)
{
	return uv_now(arg);
}

static int64_t
core_clock_time_s(void *arg)
{
	(void)arg;
	return (int64_t)time(NULL);
}

void
core_clock_loop(struct core_clock *k, uv_loop_t *loop)
{
	k->mono_ms = core_clock_loop_ms;
	k->wall_s = core_clock_time_s;
	k->arg = loop;
}

uint64_t
core_now_ms(const struct core *c)
{
	return c->clock.mono_ms(c->clock.arg);
}

int64_t
core_wall_s(const struct core *c)
{
	return c->clock.wall_s(c->clock.arg);
}

const char *
core_reason(int code)
{
	static const struct { int code; const char *text; } reasons[] = {
		{ 100, "Trying" }, { 180, "Ringing" }, { 183, "Session Progress" },
		{ 200, "OK" }, { 400, "Bad Request" }, { 401, "Unauthorized" },
		{ 403, "Forbidden" }, { 404, "Not Found" },
		{ 405, "Method Not Allowed" },
		{ 407, "Proxy Authentication Required" },
		{ 408, "Request Timeout" }, { 416, "Unsupported URI Scheme" },
		{ 420, "Bad Extension" }, { 423, "Interval Too Brief" },
		{ 430, "Flow Failed" },
		{ 480, "Temporarily Unavailable" },
		{ 481, "Call/Transaction Does Not Exist" },
		{ 482, "Loop Detected" }, { 483, "Too Many Hops" },
		{ 487, "Request Terminated" }, { 488, "Not Acceptable Here" },
		{ 500, "Server Internal Error" }, { 501, "Not Implemented" },
		{ 502, "Bad Gateway" }, { 503, "Service Unavailable" },
		{ 504, "Server Time-out" }, { 513, "Message Too Large" },
	};

	for (size_t i = 0; i < sizeof(reasons) / sizeof(*reasons); i++)
		if (reasons[i].code == code)
			return reasons[i].text;
	return code < 200 ? "Progress" : code < 300 ? "OK" : "Error";
}

int
core_has_to_tag(const osip_message_t *m)
{
	osip_generic_param_t *t = NULL;

	return m->to && osip_to_get_tag(m->to, &t) == 0 && t && t->gvalue;
}

const struct cfg_edge *
core_edge_or_first(struct core *c, int edge_id)
{
	const struct cfg_edge *e = cfg_edge_find(c->cfg, edge_id);

	return e ? e : &c->cfg->edges[0];
}

void
core_leg_from_env(struct core_leg *l, const struct env *in)
{
	l->edge_id = in->edge_id;
	l->transport = in->transport;
	l->flags = in->flags;
	l->nat = 0;
	l->trunk = l->cseq_delta = 0;
	l->conn_id = in->conn_id;
	l->dst = in->src;
}

/* Tries the wanted edge, then (UDP only: any edge can send a datagram)
 * the others, so a restarting edge does not lose the message.  A
 * connection lives in one edge only: no fallback for it. */
int
core_send(struct core *c, const struct core_leg *to, const char *buf,
	  size_t len)
{
	struct env e = {
		.type = ENV_SIP, .transport = to->transport,
		.flags = to->flags, .edge_id = to->edge_id,
		.core_id = (uint16_t)c->id, .conn_id = to->conn_id,
		.src = to->dst, .msg = buf, .len = len,
	};
	int edge_id = to->edge_id, transport = to->transport;
	char dst[64];
	int n, rc;

	/* The one door out: whatever chose the address (a Contact, a
	 * Route, a Via, a spoofed source), the cluster's own services are
	 * never a destination.  An open connection goes to its peer. */
	if (to->conn_id == 0 && infra_has(&c->infra, transport, &to->dst)) {
		c->st.tx_infra++;
		log_notice(LOG_SYS_NET, "not sent to %s over %s: one of the "
			   "cluster's own addresses",
			   env_sa_str(&to->dst, dst, sizeof(dst)),
			   env_transport_name(transport));
		return -EACCES;
	}
	n = env_encode(&e, c->sendbuf, c->sendcap);
	if (n < 0) {
		c->st.tx_fail++;
		log_warn(LOG_SYS_NET, "message of %zu bytes not sent: %s", len,
			 strerror(-n));
		return n;
	}
	rc = link_send(c->link, edge_id, c->sendbuf, (size_t)n);
	for (int i = 0; rc < 0 && !env_transport_is(transport, ENV_TP_STREAM) &&
	     i < c->cfg->n_edges; i++) {
		if (c->cfg->edges[i].id == edge_id)
			continue;
		rc = link_send(c->link, c->cfg->edges[i].id, c->sendbuf,
			       (size_t)n);
	}
	if (rc < 0) {
		c->st.tx_fail++;
		log_info(LOG_SYS_NET, "no edge took the message for edge %d: %s",
			 edge_id, strerror(-rc));
		return rc;
	}
	c->st.tx++;
	prom_sip_count(&c->sip, PROM_OUT, buf, len);
	return 0;
}

/* Appends "<name>: <to_str of the first n entries of l>\r\n" lines. */
static int
core_top_lines(char *out, size_t cap, size_t *len, const char *name,
	       const osip_list_t *l, int n,
	       int (*to_str)(const void *, char **))
{
	for (int i = 0; i < n; i++) {
		char *v = NULL;
		struct sip_cat b;

		if (to_str(osip_list_get(l, i), &v) != 0)
			return -EINVAL;
		sip_cat_init(&b, out + *len, cap - *len);
		sip_cat_str(&b, name);
		sip_cat_mem(&b, ": ", 2);
		sip_cat_str(&b, v);
		sip_cat_mem(&b, "\r\n", 2);
		osip_free(v);
		if (b.over)
			return -ENOSPC;
		*len += b.len;
	}
	return 0;
}

static int
core_via_str(const void *v, char **out)
{
	return osip_via_to_str(v, out);
}

static int
core_rr_str(const void *v, char **out)
{
	return osip_record_route_to_str(v, out);
}

/*
 * What c->rx tracks is all the proxy changes in a message it relays:
 * Vias and Record-Routes added on top, Route values removed from the
 * top, Max-Forwards, and for a request the Request-URI.  The list sizes
 * must agree with that, or the message changed in a way the splice
 * would lose and libosip2 serialises it.
 */
static int
core_msg_splice(struct core *c, const osip_message_t *m, size_t *len)
{
	const struct core_rx *r = &c->rx;
	struct core_splice sp = { .max_forwards = -1 };
	int nv = osip_list_size(&m->vias);
	int nrr = osip_list_size(&m->record_routes);
	int nro = osip_list_size(&m->routes);
	char start[1024], top[2048];
	size_t top_len = 0;
	struct sip_cat b;
	char *u = NULL;
	int n, rc;

	if (MSG_IS_RESPONSE(m)) {
		if (!MSG_IS_RESPONSE(r->msg) || nv != r->n_via - 1 ||
		    nrr != r->n_rr || nro != r->n_route)
			return -EAGAIN;
		sp.via_pop = 1;
	} else {
		int popped = r->route_pop == CORE_SPLICE_ROUTES_ALL ?
			     r->n_route : r->route_pop;

		if (MSG_IS_RESPONSE(r->msg) || nv < r->n_via ||
		    nrr < r->n_rr || nro != r->n_route - popped ||
		    m->req_uri == NULL || osip_uri_to_str(m->req_uri, &u) != 0)
			return -EAGAIN;
		sip_cat_init(&b, start, sizeof(start));
		sip_cat_str(&b, m->sip_method);
		sip_cat_ch(&b, ' ');
		sip_cat_str(&b, u);
		sip_cat_mem(&b, " SIP/2.0\r\n", 10);
		osip_free(u);
		if (sip_cat_len(&b) < 0)
			return -ENOSPC;
		rc = core_top_lines(top, sizeof(top), &top_len, "Via",
				    &m->vias, nv - r->n_via, core_via_str);
		if (rc == 0)
			rc = core_top_lines(top, sizeof(top), &top_len,
					    "Record-Route", &m->record_routes,
					    nrr - r->n_rr, core_rr_str);
		if (rc != 0)
			return rc;
		sp.start = start;
		sp.start_len = b.len;
		sp.top = top;
		sp.top_len = top_len;
		sp.route_pop = r->route_pop;
		sp.max_forwards = r->mf;
	}
	n = core_splice(c->splicebuf, c->sendcap, r->raw, r->len, &sp);
	if (n < 0)
		return n;
	if (sp.n_via != r->n_via || sp.n_route != r->n_route)
		return -EAGAIN;
	*len = (size_t)n;
	return 0;
}

int
core_msg_text(struct core *c, const osip_message_t *m, int derived,
	      char **buf, size_t *len)
{
	if (c->rx.raw && !c->rx.dirty && c->splicebuf &&
	    (m == c->rx.msg || derived) &&
	    core_msg_splice(c, m, len) == 0) {
		*buf = c->splicebuf;
		return 0;
	}
	*buf = NULL;
	return osip_message_to_str((osip_message_t *)m, buf, len) == 0 ?
	       0 : -EINVAL;
}

void
core_msg_text_free(struct core *c, char *buf)
{
	if (buf != c->splicebuf)
		osip_free(buf);
}

/* core_send_msg, unless m's text is over most bytes (core_reply_fits:
 * dropped, -EMSGSIZE). */
static int
core_send_msg_within(struct core *c, const struct core_leg *to,
		     osip_message_t *m, size_t most)
{
	char *buf = NULL;
	size_t len = 0;
	int rc;

	if (core_msg_text(c, m, 0, &buf, &len) != 0) {
		c->st.tx_fail++;
		return -EINVAL;
	}
	rc = core_reply_fits(c, most, len) ? core_send(c, to, buf, len) :
	     -EMSGSIZE;
	core_msg_text_free(c, buf);
	return rc;
}

int
core_send_msg(struct core *c, const struct core_leg *to, osip_message_t *m)
{
	return core_send_msg_within(c, to, m, SIZE_MAX);
}

/* A To tag that is the same for every retransmission of a request, so
 * locally generated responses are stable without keeping state. */
static void
core_local_tag(const osip_message_t *req, char *out, size_t cap)
{
	osip_via_t *via = NULL;
	osip_generic_param_t *br = NULL;
	osip_generic_param_t *ft = NULL;
	const char *num = NULL, *tag = NULL, *branch = NULL;

	if (req->call_id && req->call_id->number)
		num = req->call_id->number;
	if (req->from && osip_from_get_tag(req->from, &ft) == 0 && ft->gvalue)
		tag = ft->gvalue;
	if (osip_message_get_via(req, 0, &via) >= 0 && via &&
	    osip_via_param_get_byname(via, "branch", &br) == 0 && br &&
	    br->gvalue)
		branch = br->gvalue;
	core_local_tag_of(num, num ? strlen(num) : 0, tag,
			  tag ? strlen(tag) : 0, branch,
			  branch ? strlen(branch) : 0, out, cap);
}

void
core_local_tag_of(const char *cid_number, size_t cid_len,
		  const char *from_tag, size_t tag_len, const char *branch,
		  size_t branch_len, char *out, size_t cap)
{
	struct sip_cat b;
	uint64_t h = 0;

	if (cid_number)
		h = hash_fnv1a64(cid_number, cid_len);
	if (from_tag)
		h ^= hash_fnv1a64(from_tag, tag_len) * 31;
	if (branch)
		h ^= hash_fnv1a64(branch, branch_len) * 17;
	sip_cat_init(&b, out, cap);
	sip_cat_mem(&b, "sm", 2);
	sip_cat_hex16(&b, h);
}

int
core_to_tag_is_local(const osip_message_t *m)
{
	osip_generic_param_t *t = NULL;
	char tag[32];

	if (m->to == NULL || osip_to_get_tag(m->to, &t) != 0 || t == NULL ||
	    t->gvalue == NULL)
		return 0;
	core_local_tag(m, tag, sizeof(tag));
	return strcmp(tag, t->gvalue) == 0;
}

osip_message_t *
core_resp_build(struct core *c, const osip_message_t *req, int code,
		const char *reason)
{
	osip_message_t *r = NULL;
	char tag[32];

	(void)c;
	if (req->from == NULL || req->to == NULL || req->call_id == NULL ||
	    req->cseq == NULL || osip_list_size(&req->vias) == 0)
		return NULL;
	if (osip_message_init(&r) != 0)
		return NULL;
	osip_message_set_version(r, osip_strdup("SIP/2.0"));
	osip_message_set_status_code(r, code);
	osip_message_set_reason_phrase(r, osip_strdup(reason ? reason :
						      core_reason(code)));
	if (osip_list_clone(&req->vias, &r->vias,
			    (int (*)(void *, void **))osip_via_clone) != 0 ||
	    osip_from_clone(req->from, &r->from) != 0 ||
	    osip_to_clone(req->to, &r->to) != 0 ||
	    osip_call_id_clone(req->call_id, &r->call_id) != 0 ||
	    osip_cseq_clone(req->cseq, &r->cseq) != 0)
		goto fail;
	if (code > 100) {
		osip_generic_param_t *tt = NULL;

		if (osip_to_get_tag(r->to, &tt) != 0) {
			core_local_tag(req, tag, sizeof(tag));
			osip_to_set_tag(r->to, osip_strdup(tag));
		}
	}
	osip_message_set_header(r, "Server", "sipmesh");
	/* A 503 the core makes up is the cluster's own momentary lack (no
	 * media relay, too many transactions, no next hop): tell the client
	 * when to try again (RFC 3261 21.5.4) rather than let it fail over
	 * blindly or retry at once. */
	if (code == 503)
		osip_message_set_header(r, "Retry-After", CORE_RETRY_AFTER);
	osip_message_set_content_length(r, "0");
	return r;
fail:
	osip_message_free(r);
	return NULL;
}

/*
 * What core_resp_build makes, written from the request's text instead
 * (core_splice_reply): its Via, From, To (with our tag), Call-ID and
 * CSeq lines, Server, Retry-After for a 503, extra.  Only for the
 * request being handled, with its Vias as they came.
 */
int
core_reply_text(struct core *c, const osip_message_t *req, int code,
		const char *reason, const char *extra, size_t extra_len,
		size_t *len)
{
	char tag[32], *to_tag = NULL;

	if (c->rx.raw == NULL || req != c->rx.msg || MSG_IS_RESPONSE(req) ||
	    osip_list_size(&req->vias) != c->rx.n_via || req->from == NULL ||
	    req->to == NULL || req->call_id == NULL || req->cseq == NULL)
		return -EAGAIN;
	if (code > 100 && !core_has_to_tag(req)) {
		core_local_tag(req, tag, sizeof(tag));
		to_tag = tag;
	}
	return core_reply_text_tag(c, code, reason, to_tag, extra, extra_len,
				   len);
}

int
core_reply_text_tag(struct core *c, int code, const char *reason,
		    const char *to_tag, const char *extra, size_t extra_len,
		    size_t *len)
{
	struct core_splice_reply rp = { .n_via = c->rx.n_via,
					.to_tag = to_tag };
	char start[128], tail[8192];
	struct sip_cat b;
	int n;

	sip_cat_init(&b, start, sizeof(start));
	sip_cat_mem(&b, "SIP/2.0 ", 8);
	sip_cat_uint(&b, (unsigned)code);
	sip_cat_ch(&b, ' ');
	sip_cat_str(&b, reason ? reason : core_reason(code));
	sip_cat_mem(&b, "\r\n", 2);
	if (sip_cat_len(&b) < 0)
		return -ENOSPC;
	sip_cat_init(&b, tail, sizeof(tail));
	sip_cat_str(&b, "Server: sipmesh\r\n");
	if (code == 503)
		sip_cat_str(&b, "Retry-After: " CORE_RETRY_AFTER "\r\n");
	if (extra)
		sip_cat_mem(&b, extra, extra_len);
	sip_cat_str(&b, "Content-Length: 0\r\n\r\n");
	n = sip_cat_len(&b);
	if (n < 0)
		return -ENOSPC;
	rp.start = start;
	rp.tail = tail;
	rp.tail_len = (size_t)n;
	if (c->rx.n_lines > 0)
		n = core_splice_reply_lines(c->splicebuf, c->sendcap,
					    c->rx.raw, c->rx.lines,
					    c->rx.n_lines, &rp);
	else
		n = core_splice_reply(c->splicebuf, c->sendcap, c->rx.raw,
				      c->rx.len, &rp);
	if (n < 0)
		return n;
	*len = (size_t)n;
	return 0;
}

size_t
core_reply_max(const struct env *in)
{
	size_t stamp;

	if (env_transport_is(in->transport, ENV_TP_STREAM) || in->proven)
		return SIZE_MAX;
	/* in->len counts the top Via as the edge stamped it, received=
	 * and an rport value added (edge_sip_via_fix), so the datagram
	 * that came was at least that much shorter. */
	stamp = sizeof(";received=") - 1 + env_sa_ip_len(&in->src) +
		sizeof("=65535") - 1;
	return in->len > stamp ? SIP_REPLY_AMP * (in->len - stamp) : 0;
}

int
core_reply_fits(struct core *c, size_t most, size_t len)
{
	if (len <= most)
		return 1;
	c->st.replies_amp++;
	log_info(LOG_SYS_SIP, "a %zu-byte reply not sent: over %zu bytes, %d "
		 "times the datagram it answers", len, most, SIP_REPLY_AMP);
	return 0;
}

int
core_reply_send(struct core *c, const struct env *in, const char *buf,
		size_t len)
{
	struct core_leg up;

	c->st.replies_local++;
	if (!core_reply_fits(c, core_reply_max(in), len))
		return -EMSGSIZE;
	core_leg_from_env(&up, in);
	return core_send(c, &up, buf, len);
}

int
core_reply_send_msg(struct core *c, const struct env *in, osip_message_t *r)
{
	struct core_leg up;

	core_leg_from_env(&up, in);
	c->st.replies_local++;
	return core_send_msg_within(c, &up, r, core_reply_max(in));
}

int
core_reply(struct core *c, const struct env *in, const osip_message_t *req,
	   int code, const char *reason)
{
	osip_message_t *r;
	size_t len;
	int rc;

	if (core_reply_text(c, req, code, reason, NULL, 0, &len) == 0)
		return core_reply_send(c, in, c->splicebuf, len);
	r = core_resp_build(c, req, code, reason);
	if (r == NULL)
		return -EINVAL;
	rc = core_reply_send_msg(c, in, r);
	osip_message_free(r);
	return rc;
}

static int core_uri_transport(const osip_uri_t *u);

/* The port of a URI that names none: its transport's (RFC 3261
 * 19.1.2), and 5061 for any sips: URI, over whatever transport. */
static int
core_uri_default_port(const osip_uri_t *u)
{
	if (u->scheme && strcasecmp(u->scheme, "sips") == 0)
		return env_transport_sip_port(ENV_TLS);
	return env_transport_sip_port(core_uri_transport(u));
}

/* The host of a URI without IPv6 brackets, in out. */
static const char *
core_uri_host(const osip_uri_t *u, char *out, size_t cap)
{
	const char *h = u->host;
	size_t n;

	if (h == NULL)
		return NULL;
	n = strlen(h);
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		h++;
		n -= 2;
	}
	if (n >= cap)
		return NULL;
	memcpy(out, h, n);
	out[n] = '\0';
	return out;
}

/* Splits every edge's addresses once per configuration (cfg_edge_sent_by
 * formats and splits them again on each call: a tenth of a relayed
 * MESSAGE's instructions when done per URI). */
static void
core_edge_addrs(struct core *c)
{
	if (c->addr_cfg == c->cfg)
		return;
	for (int i = 0; i < c->cfg->n_edges; i++) {
		const struct cfg_edge *e = &c->cfg->edges[i];
		struct core_edge_addr *a = &c->edge_addr[i];

		for (int t = ENV_UDP; t < ENV_TP_END; t++) {
			int dp = env_transport_port(t);

			if (cfg_edge_sent_by(e, t, a->sent_by[t],
					     sizeof(a->sent_by[t])) != 0)
				a->sent_by[t][0] = '\0';
			if (cfg_addr_split(e->listen[t], a->host[0][t],
					   sizeof(a->host[0][t]),
					   &a->port[0][t], dp) != 0)
				a->port[0][t] = 0;
			if (!a->sent_by[t][0] ||
			    cfg_addr_split(a->sent_by[t], a->host[1][t],
					   sizeof(a->host[1][t]),
					   &a->port[1][t], dp) != 0)
				a->port[1][t] = 0;
		}
	}
	c->addr_cfg = c->cfg;
}

const char *
core_edge_sent_by(struct core *c, const struct cfg_edge *e, int t)
{
	const char *sb;

	core_edge_addrs(c);
	if (!env_transport_valid(t))
		return e->advertise;
	sb = c->edge_addr[e - c->cfg->edges].sent_by[t];
	return sb[0] ? sb : e->advertise;
}

/* Whether host:port is where edge i listens or what it advertises, on
 * any transport. */
static int
core_edge_is(const struct core *c, int i, const char *host, int port)
{
	const struct core_edge_addr *a = &c->edge_addr[i];

	for (int t = ENV_UDP; t < ENV_TP_END; t++)
		for (int k = 0; k < 2; k++)
			if (a->port[k][t] && a->port[k][t] == port &&
			    strcasecmp(a->host[k][t], host) == 0)
				return 1;
	return 0;
}

int
core_uri_is_self(struct core *c, const osip_uri_t *u, int *edge_id)
{
	char host[CFG_ADDR_LEN];
	int port = u->port ? atoi(u->port) : core_uri_default_port(u);

	if (core_uri_host(u, host, sizeof(host)) == NULL)
		return 0;
	core_edge_addrs(c);
	for (int i = 0; i < c->cfg->n_edges; i++) {
		if (core_edge_is(c, i, host, port)) {
			if (edge_id)
				*edge_id = c->cfg->edges[i].id;
			return 1;
		}
	}
	return 0;
}

/* Whether edge i listens on transport t in family af (an IPv6 listen
 * address, split without its brackets, has a colon). */
static int
core_edge_listens(const struct core *c, int i, int t, int af)
{
	const struct core_edge_addr *a = &c->edge_addr[i];

	return a->port[0][t] &&
	       (strchr(a->host[0][t], ':') ? AF_INET6 : AF_INET) == af;
}

void
core_leg_edge_for_dst(struct core *c, struct core_leg *leg)
{
	const struct cfg_edge *e = core_edge_or_first(c, leg->edge_id);
	int af = leg->dst.sa.sa_family, t = leg->transport;

	if (leg->conn_id || !env_transport_valid(t) ||
	    (af != AF_INET && af != AF_INET6))
		return;
	core_edge_addrs(c);
	if (core_edge_listens(c, (int)(e - c->cfg->edges), t, af))
		return;
	for (int i = 0; i < c->cfg->n_edges; i++)
		if (core_edge_listens(c, i, t, af)) {
			leg->edge_id = (uint16_t)c->cfg->edges[i].id;
			return;
		}
}

/* The transport a URI asks for: its transport parameter (-EINVAL for
 * one we do not know), else TLS for sips, else UDP. */
static int
core_uri_transport(const osip_uri_t *u)
{
	osip_uri_param_t *p = NULL;

	osip_uri_uparam_get_byname((osip_uri_t *)u, "transport", &p);
	if (p && p->gvalue)
		return env_transport_parse(p->gvalue, strlen(p->gvalue));
	if (u->scheme && strcasecmp(u->scheme, "sips") == 0)
		return ENV_TLS;
	return ENV_UDP;
}

/*
 * Fills leg->transport and leg->dst for sending to a URI with no
 * connection of our own (conn_id 0: the edge opens or reuses one for
 * TCP/TLS).  WebSocket URIs cannot be dialled: -EHOSTUNREACH.  A host
 * name: -EDESTADDRREQ, leg untouched (core_fed_route locates it).
 */
int
core_uri_leg(const osip_uri_t *u, struct core_leg *leg)
{
	int tp = core_uri_transport(u), rc;

	if (!env_transport_is(tp, ENV_TP_DIAL))
		return -EHOSTUNREACH;
	rc = core_uri_dest(u, &leg->dst);
	if (rc != 0)
		return rc;
	leg->transport = (uint8_t)tp;
	leg->conn_id = 0;
	leg->flags = 0;
	leg->nat = 0;
	return 0;
}

int
core_cseq_shift(osip_message_t *m, int delta)
{
	unsigned long n;
	char *end, num[16];

	if (m->cseq == NULL || m->cseq->number == NULL ||
	    m->cseq->number[0] == '\0' ||
	    m->cseq->number[strspn(m->cseq->number, "0123456789")] != '\0')
		return -EINVAL;
	errno = 0;
	n = strtoul(m->cseq->number, &end, 10);
	/* RFC 3261 8.1.1.5: below 2**31 */
	if (errno || *end || (delta < 0 && n < (unsigned long)-delta) ||
	    n + (unsigned long)(long)delta >= 0x80000000UL)
		return -EINVAL;
	snprintf(num, sizeof(num), "%lu", n + (unsigned long)(long)delta);
	osip_free(m->cseq->number);
	m->cseq->number = osip_strdup(num);
	return m->cseq->number ? 0 : -EINVAL;
}

int
core_uri_dest(const osip_uri_t *u, union env_sa *dst)
{
	char host[CFG_ADDR_LEN];
	osip_uri_param_t *maddr = NULL;
	int port = core_uri_default_port(u);

	if (u->port) {
		port = atoi(u->port);
		if (port <= 0 || port > 65535)
			return -EINVAL;
	}
	osip_uri_uparam_get_byname((osip_uri_t *)u, "maddr", &maddr);
	if (maddr && maddr->gvalue)
		snprintf(host, sizeof(host), "%s", maddr->gvalue);
	else if (core_uri_host(u, host, sizeof(host)) == NULL)
		return -EINVAL;
	/* A name needs RFC 3263 resolution, asynchronous (core_fed.c):
	 * not something to do here. */
	return env_sa_from(dst, host, port) == 0 ? 0 : -EDESTADDRREQ;
}

int
core_aor_make(const char *user, size_t ul, const char *host, size_t hl,
	      char *out, size_t cap)
{
	/* An escaped control character (%0A) would reach logs, Redis keys
	 * and the invalidations, which separate AORs by LF: the store
	 * refuses it, and the registrar answers 400 for it first. */
	if (ul == 0 || !loc_aor_plain(user, ul))
		return -EINVAL;
	if (ul + 1 + hl + 1 > cap)
		return -E2BIG;
	memcpy(out, user, ul);
	out[ul] = '@';
	for (size_t i = 0; i < hl; i++) {
		char ch = host[i];

		out[ul + 1 + i] = (ch >= 'A' && ch <= 'Z') ? ch + 32 : ch;
	}
	out[ul + 1 + hl] = '\0';
	return 0;
}

int
core_aor_from_uri(const osip_uri_t *u, char *out, size_t cap)
{
	if (u == NULL || u->username == NULL || u->host == NULL)
		return -EINVAL;
	return core_aor_make(u->username, strlen(u->username), u->host,
			     strlen(u->host), out, cap);
}
