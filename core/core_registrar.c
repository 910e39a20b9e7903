/*
 * core_registrar.c - REGISTER (RFC 3261 10.3) without authentication:
 * an address of record appears the first time someone registers it,
 * as in the reference OpenSIPS WebRTC configuration.
 *
 * The request is checked whole before anything changes (423, stale
 * CSeq, too many contacts), then applied to the location store at once
 * (loc_update: a core that changed the AOR in between makes it decide
 * again), and the 200 lists every live contact with its remaining
 * time, or over UDP as many as fit SIP_REPLY_AMP times the request,
 * its own first (core_reg_fit).  REGISTER is answered statelessly: a
 * retransmission carries the same Call-ID and CSeq and gets the same
 * answer, so no transaction needs to be kept for it.
 *
 * A REGISTER in the plain forms phones and SIP.js send is read from its
 * text (core_reg_scanned, core_splice_scan_register) when nothing else
 * of the proxy's steps applies to it (no domain held to client
 * certificates; its credentials, if asked for, checked without a wait,
 * core_auth_scanned): libosip2's parse was half of what a REGISTER
 * cost the core.  Anything else, and every REGISTER to be answered with
 * an error, takes the parsed path (core_registrar).
 */
#include "core/core_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core_splice.h"
#include "lib/log.h"
#include "lib/prom.h"

#define CORE_REG_MAX_CONTACTS 64	/* in one REGISTER */
#define CORE_REG_TRIES 8	/* decisions of one REGISTER whose AOR other
				   cores keep changing meanwhile */

_Static_assert(LOC_URI_MAX == sizeof(((struct loc_binding *)0)->contact),
	       "a decoded contact must fit a binding's");

int
core_reg_expires(const struct cfg *c, long param, long hdr, int *granted)
{
	long v = param >= 0 ? param : hdr >= 0 ? hdr : c->default_expires;

	if (v != 0 && v < c->min_expires)
		return -ERANGE;
	if (v > c->max_expires)
		v = c->max_expires;
	*granted = (int)v;
	return 0;
}

enum core_reg_cseq
core_reg_cseq_check(const char *old_callid, uint32_t old_cseq,
		    const char *callid, uint32_t cseq)
{
	if (strcmp(old_callid, callid) != 0 || cseq > old_cseq)
		return CORE_REG_APPLY;
	return cseq == old_cseq ? CORE_REG_RETRANS : CORE_REG_STALE;
}

long
core_reg_number(const char *s)
{
	char *end;
	long v;

	if (s == NULL)
		return -2;
	v = strtol(s, &end, 10);
	if (end == s || *end != '\0' || v < 0)
		return -2;
	return v;
}

/* A REGISTER as the registrar reads it, from libosip2 or its text. */
struct core_reg_req {
	char aor[LOC_AOR_MAX];
	const char *callid;		/* NUL-terminated, < LOC_CALLID_MAX */
	uint32_t cseq;
	long hdr_expires;		/* -1: none */
	char ua[sizeof(((struct loc_binding *)0)->user_agent)];
	struct core_reg_contact *k;	/* its contacts, read */
	int n_ct;
	int star;			/* k[0] is "*" */
};

static void
core_reg_unquote(const char *in, size_t n, char *out, size_t cap)
{
	if (n >= 2 && in[0] == '"' && in[n - 1] == '"') {
		in++;
		n -= 2;
	}
	if (n >= cap)
		n = cap - 1;
	memcpy(out, in, n);
	out[n] = '\0';
}

/* What a contact's expires (param, -1: none) and q (NULL: none) make
 * of *out: 0, 400 with *why, or 423. */
static int
core_reg_contact_fill(const struct cfg *cfg, long param, long hdr_expires,
		      const char *q, struct core_reg_contact *out,
		      const char **why)
{
	char *end;
	double v;

	if (core_reg_expires(cfg, param, hdr_expires, &out->granted) != 0)
		return 423;
	out->q = 1000;
	if (q == NULL)
		return 0;
	v = strtod(q, &end);
	if (end == q || *end != '\0' || !(v >= 0 && v <= 1)) {
		*why = "Bad q";
		return 400;
	}
	out->q = (uint16_t)(v * 1000 + 0.5);
	return 0;
}

int
core_reg_contact_read(const struct cfg *cfg, osip_contact_t *ct,
		      long hdr_expires, struct core_reg_contact *out,
		      const char **why)
{
	osip_generic_param_t *p = NULL;
	char *uri = NULL;
	long param = -1;
	int code;

	memset(out, 0, sizeof(*out));
	if (ct->url == NULL || osip_uri_to_str(ct->url, &uri) != 0) {
		*why = "Bad Contact";
		return 400;
	}
	if (strlen(uri) >= sizeof(out->uri)) {
		osip_free(uri);
		*why = "Contact Too Long";
		return 400;
	}
	strcpy(out->uri, uri);
	osip_free(uri);
	if (osip_contact_param_get_byname(ct, "expires", &p) == 0 && p) {
		param = core_reg_number(p->gvalue);
		if (param < 0) {
			*why = "Bad Contact Expires";
			return 400;
		}
	}
	p = NULL;
	osip_contact_param_get_byname(ct, "q", &p);
	code = core_reg_contact_fill(cfg, param, hdr_expires,
				     p ? p->gvalue : NULL, out, why);
	if (code)
		return code;
	p = NULL;
	if (osip_contact_param_get_byname(ct, "+sip.instance", &p) == 0 && p &&
	    p->gvalue)
		core_reg_unquote(p->gvalue, strlen(p->gvalue), out->instance,
				 sizeof(out->instance));
	p = NULL;
	if (osip_contact_param_get_byname(ct, "reg-id", &p) == 0 && p &&
	    p->gvalue)
		out->reg_id = (uint32_t)strtoul(p->gvalue, NULL, 10);
	return 0;
}

/* core_reg_contact_read for a contact read from the text, its numbers
 * checked plain by the scan. */
static int
core_reg_contact_scan(const struct cfg *cfg, const struct core_scan_contact *sc,
		      long hdr_expires, struct core_reg_contact *out,
		      const char **why)
{
	char q[16];
	int code;

	memset(out, 0, sizeof(*out));
	if (sc->uri_len >= sizeof(out->uri) || sc->q_len >= sizeof(q)) {
		*why = "Contact Too Long";
		return 400;
	}
	memcpy(out->uri, sc->uri, sc->uri_len);
	if (sc->q) {
		memcpy(q, sc->q, sc->q_len);
		q[sc->q_len] = '\0';
	}
	code = core_reg_contact_fill(cfg, sc->expires ?
				     strtol(sc->expires, NULL, 10) : -1,
				     hdr_expires, sc->q ? q : NULL, out, why);
	if (code)
		return code;
	if (sc->instance)
		core_reg_unquote(sc->instance, sc->instance_len, out->instance,
				 sizeof(out->instance));
	if (sc->reg_id)
		out->reg_id = (uint32_t)strtoul(sc->reg_id, NULL, 10);
	return 0;
}

static const struct loc_binding *
core_reg_match(const struct loc_binding *b, int n,
	       const struct core_reg_contact *k)
{
	for (int i = 0; i < n; i++) {
		if (k->instance[0] && b[i].instance[0] &&
		    strcmp(k->instance, b[i].instance) == 0 &&
		    k->reg_id == b[i].reg_id)
			return &b[i];
		if (strcmp(k->uri, b[i].contact) == 0)
			return &b[i];
	}
	return NULL;
}

/* Appends b as a Contact value of our 200: "<uri>;expires=N[;q=..]". */
static void
core_reg_contact_value(struct sip_cat *v, const struct loc_binding *b,
		       int64_t now)
{
	int64_t left = b->expires - now;
	int r = b->q % 1000;

	sip_cat_ch(v, '<');
	sip_cat_str(v, b->contact);
	sip_cat_mem(v, ">;expires=", 10);
	if (left < 0) {
		sip_cat_ch(v, '-');
		left = -left;
	}
	sip_cat_uint(v, (unsigned long long)left);
	if (b->q != 1000) {
		sip_cat_mem(v, ";q=", 3);
		sip_cat_uint(v, (unsigned)(b->q / 1000));
		sip_cat_ch(v, '.');
		sip_cat_ch(v, (char)('0' + r / 100));
		sip_cat_ch(v, (char)('0' + r / 10 % 10));
		sip_cat_ch(v, (char)('0' + r % 10));
	}
}

/* The Contact lines of b[0..n) into ct (cap bytes).  Returns their
 * length, or -E2BIG when they do not fit. */
static int
core_reg_contacts(char *ct, size_t cap, const struct loc_binding *b, int n,
		  int64_t now)
{
	struct sip_cat v;

	sip_cat_init(&v, ct, cap);
	for (int i = 0; i < n; i++) {
		sip_cat_mem(&v, "Contact: ", 9);
		core_reg_contact_value(&v, &b[i], now);
		sip_cat_mem(&v, "\r\n", 2);
	}
	return sip_cat_len(&v);
}

/* Whether b is one the request's Contacts k[0..n_k) name. */
static int
core_reg_named(const struct loc_binding *b, const struct core_reg_contact *k,
	       int n_k)
{
	for (int i = 0; i < n_k; i++)
		if (core_reg_match(b, 1, &k[i]))
			return 1;
	return 0;
}

/*
 * Keeps of b[0..n) what a 200 of base bytes may list within most bytes
 * (core_reply_max), the bindings the request names first: RFC 3261
 * 10.3 step 8 wants them all, but a phone refreshing needs its own
 * expiry, and over UDP an AOR's many long bindings must not answer a
 * spoofed query many times its size.  Each other that fits follows, in
 * the store's order.  Returns how many are kept, in order, at b.
 */
static int
core_reg_fit(struct core *c, struct loc_binding *b, int n, size_t base,
	     size_t most, const struct core_reg_contact *k, int n_k,
	     int64_t now)
{
	char line[LOC_URI_MAX + 64];
	size_t used = base;
	int kept = 0;

	for (int pass = 0; pass < 2; pass++)
		for (int i = kept; i < n; i++) {
			int w = core_reg_contacts(line, sizeof(line), &b[i], 1,
						  now);
			struct loc_binding t;

			if (core_reg_named(&b[i], k, n_k) == pass || w < 0 ||
			    used + (size_t)w > most)
				continue;
			used += (size_t)w;
			/* b[i] moves up to b[kept]; the rest keep their order */
			t = b[i];
			memmove(&b[kept + 1], &b[kept],
				(size_t)(i - kept) * sizeof(*b));
			b[kept] = t;
			kept++;
		}
	if (kept < n)
		c->st.replies_trimmed++;
	return kept;
}

/* The text of a response to the request being handled: from libosip2's
 * req, or (req NULL) read from its text, with to_tag. */
static int
core_reg_text(struct core *c, const osip_message_t *req, const char *to_tag,
	      int code, const char *ct, size_t ct_len, size_t *len)
{
	if (req)
		return core_reply_text(c, req, code, NULL, ct, ct_len, len);
	return core_reply_text_tag(c, code, NULL, to_tag, ct, ct_len, len);
}

/* The 200 to a REGISTER (k[0..n_k): its Contacts), listing the live
 * bindings of aor within core_reply_max(in).  req is NULL when the
 * REGISTER was read from its text (to_tag then its To tag). */
static void
core_reg_answer(struct core *c, const struct env *in,
		const osip_message_t *req, const char *to_tag, const char *aor,
		const struct core_reg_contact *k, int n_k, int64_t now)
{
	struct loc_binding *b = c->bindings;
	size_t most = core_reply_max(in), len = 0;
	/* Every Contact line an AOR can have:
	 * "Contact: <uri>;expires=N;q=x.xxx\r\n" */
	char ct[CFG_CONTACTS_MOST * (LOC_URI_MAX + 64)], v[LOC_URI_MAX + 64];
	osip_message_t *parsed = NULL, *r;
	struct sip_cat vc;
	int n, known, ct_len;

	n = loc_lookup(c->loc, aor, now, b, c->cfg->max_contacts, &known);
	c->st.reg_ok++;
	ct_len = core_reg_contacts(ct, sizeof(ct), b, n, now);
	if (ct_len >= 0 &&
	    core_reg_text(c, req, to_tag, 200, ct, (size_t)ct_len, &len) == 0) {
		if (len > most) {
			n = core_reg_fit(c, b, n, len - (size_t)ct_len, most,
					 k, n_k, now);
			ct_len = core_reg_contacts(ct, sizeof(ct), b, n, now);
			if (ct_len < 0 ||
			    core_reg_text(c, req, to_tag, 200, ct,
					  (size_t)ct_len, &len) != 0)
				return;
		}
		core_reply_send(c, in, c->splicebuf, len);
		return;
	}
	/* Not spliced (contacts beyond what a spliced reply holds): what
	 * libosip2 makes, checked by core_reply_send_msg. */
	if (req == NULL) {
		parsed = core_rx_parse(c);
		if (parsed == NULL)
			return;
		req = parsed;
	}
	r = core_resp_build(c, req, 200, NULL);
	if (r == NULL)
		goto done;
	for (int i = 0; i < n; i++) {
		sip_cat_init(&vc, v, sizeof(v));
		core_reg_contact_value(&vc, &b[i], now);
		osip_message_set_contact(r, v);
	}
	core_reply_send_msg(c, in, r);
	osip_message_free(r);
done:
	osip_message_free(parsed);
}

static void
core_reg_fail(struct core *c, const struct env *in, const osip_message_t *req,
	      int code, const char *why)
{
	c->st.reg_fail++;
	if (code == 423) {
		osip_message_t *r = core_resp_build(c, req, 423, NULL);
		char v[16];

		if (r == NULL)
			return;
		snprintf(v, sizeof(v), "%d", c->cfg->min_expires);
		osip_message_set_header(r, "Min-Expires", v);
		core_reply_send_msg(c, in, r);
		osip_message_free(r);
		return;
	}
	core_reply(c, in, req, code, why);
}

/*
 * Checks the whole request rq against what is stored for its AOR
 * (stale CSeq, too many contacts) and turns it into changes of the
 * store, in ch.  Returns how many changes, 0 for a retransmission that
 * changes nothing, or a negative SIP status with *why.  Changes
 * nothing: a refused request leaves the store as it was.
 */
static int
core_reg_decide(struct core *c, const struct env *in,
		const struct core_reg_req *rq, struct loc_change *ch,
		uint32_t *seq, int64_t now, const char **why)
{
	struct loc_binding *cur = c->bindings;
	struct core_reg_contact *k = rq->k;
	int n_cur, known, live, n = 0;

	n_cur = loc_lookup_seq(c->loc, rq->aor, now, cur, c->cfg->max_contacts,
			       &known, seq);
	if (n_cur < 0) {
		*why = "Location Store Error";
		return -500;
	}
	if (rq->star) {
		/* RFC 3261 10.3 step 6: "*" alone, with Expires: 0. */
		if (rq->n_ct != 1 || rq->hdr_expires != 0) {
			*why = "Bad Wildcard Contact";
			return -400;
		}
		for (int i = 0; i < n_cur; i++)
			if (core_reg_cseq_check(cur[i].callid, cur[i].cseq,
						rq->callid, rq->cseq) ==
			    CORE_REG_STALE) {
				*why = "Stale CSeq";
				return -500;
			}
		ch[0].op = LOC_CHANGE_REMOVE_ALL;
		return 1;
	}
	live = n_cur;
	for (int i = 0; i < rq->n_ct; i++) {
		k[i].old = core_reg_match(cur, n_cur, &k[i]);
		if (k[i].old) {
			switch (core_reg_cseq_check(k[i].old->callid,
						    k[i].old->cseq, rq->callid,
						    rq->cseq)) {
			case CORE_REG_STALE:
				*why = "Stale CSeq";
				return -500;
			case CORE_REG_RETRANS:
				k[i].granted = -1;	/* leave it as it is */
				break;
			case CORE_REG_APPLY:
				if (k[i].granted == 0)
					live--;
				break;
			}
		} else if (k[i].granted > 0) {
			live++;
		}
	}
	if (live > c->cfg->max_contacts) {
		*why = "Too Many Registered Contacts";
		return -503;
	}

	for (int i = 0; i < rq->n_ct; i++) {
		struct loc_binding *nb = &ch[n].b;

		if (k[i].granted < 0 || (k[i].granted == 0 && !k[i].old))
			continue;
		memset(&ch[n], 0, sizeof(ch[n]));
		sip_copy(nb->aor, sizeof(nb->aor), rq->aor);
		if (k[i].granted == 0) {
			ch[n].op = LOC_CHANGE_REMOVE;
			memcpy(nb->contact, k[i].old->contact,
			       sizeof(nb->contact));
			n++;
			continue;
		}
		ch[n].op = LOC_CHANGE_SAVE;
		memcpy(nb->contact, k[i].uri, sizeof(nb->contact));
		sip_copy(nb->callid, sizeof(nb->callid), rq->callid);
		sip_copy(nb->instance, sizeof(nb->instance), k[i].instance);
		sip_copy(nb->user_agent, sizeof(nb->user_agent), rq->ua);
		nb->cseq = rq->cseq;
		nb->expires = now + k[i].granted;
		nb->q = k[i].q;
		nb->reg_id = k[i].reg_id;
		nb->transport = in->transport;
		nb->flags = (in->flags & ENV_F_WS) ? LOC_F_WS : 0;
		nb->edge_id = in->edge_id;
		nb->conn_id = in->conn_id;
		nb->received = in->src;
		n++;
	}
	return n;
}

/*
 * Decides rq and writes it to the store (loc_update: another core
 * changing the AOR in between makes the write refuse, -EAGAIN, and the
 * request is decided again on what that core stored).  Returns 0, or
 * the status to answer with *why: from a decision (nothing changed) as
 * a negative one, from the store as a positive one.
 */
static int
core_reg_apply(struct core *c, const struct env *in,
	       const struct core_reg_req *rq, struct loc_change *ch,
	       int64_t now, const char **why)
{
	uint32_t seq = 0;
	int n, rc;

	for (int tries = 0;; tries++) {
		n = core_reg_decide(c, in, rq, ch, &seq, now, why);
		if (n < 0)
			return n;
		rc = loc_update(c->loc, rq->aor, seq, ch, n, now);
		if (rc != -EAGAIN)
			break;
		c->st.reg_retries++;
		if (tries == CORE_REG_TRIES) {
			*why = "Location Store Busy";
			return 500;
		}
	}
	if (rc != 0) {
		log_warn(LOG_SYS_REG, "save %s: %s", rq->aor, strerror(-rc));
		*why = rc == -ENOSPC ? "Location Store Full" :
				       "Location Store Error";
		return 500;
	}
	return 0;
}

void
core_registrar(struct core *c, const struct env *in, osip_message_t *req)
{
	struct core_reg_contact kbuf[8];
	struct loc_change chbuf[8], *ch = chbuf;
	struct core_reg_req rq = { .k = kbuf, .hdr_expires = -1 };
	osip_header_t *eh = NULL, *ua = NULL;
	const char *why = NULL;
	char *callid = NULL;
	int64_t now = core_wall_s(c);
	int code = 0;

	c->st.registers++;
	if (core_aor_from_uri(req->to->url, rq.aor, sizeof(rq.aor)) != 0) {
		core_reg_fail(c, in, req, 400, "Bad To AOR");
		return;
	}
	if (!cfg_domain_is_local(c->cfg, req->to->url->host,
				 strlen(req->to->url->host)) &&
	    !core_uri_is_self(c, req->to->url, NULL)) {
		core_reg_fail(c, in, req, 403, "Domain Not Served Here");
		return;
	}
	if (osip_message_get_expires(req, 0, &eh) >= 0 && eh) {
		rq.hdr_expires = core_reg_number(eh->hvalue);
		if (rq.hdr_expires < 0) {
			core_reg_fail(c, in, req, 400, "Bad Expires");
			return;
		}
	}
	rq.n_ct = osip_list_size(&req->contacts);
	if (rq.n_ct == 0) {
		core_reg_answer(c, in, req, NULL, rq.aor, NULL, 0, now);
		return;
	}
	if (rq.n_ct > CORE_REG_MAX_CONTACTS) {
		core_reg_fail(c, in, req, 400, "Too Many Contacts");
		return;
	}
	if (osip_call_id_to_str(req->call_id, &callid) != 0 ||
	    strlen(callid) >= LOC_CALLID_MAX) {
		code = 400;
		why = "Bad Call-ID";
		goto out;
	}
	rq.callid = callid;
	rq.cseq = (uint32_t)strtoul(req->cseq->number, NULL, 10);
	osip_message_get_user_agent(req, 0, &ua);
	if (ua && ua->hvalue)
		sip_copy(rq.ua, sizeof(rq.ua), ua->hvalue);
	/* The common case needs no allocation; c->bindings holds the
	 * current contacts until core_reg_answer reuses it at the end. */
	if (rq.n_ct > (int)(sizeof(kbuf) / sizeof(*kbuf))) {
		rq.k = calloc((size_t)rq.n_ct, sizeof(*rq.k));
		ch = calloc((size_t)rq.n_ct, sizeof(*ch));
		if (rq.k == NULL || ch == NULL) {
			code = 500;
			goto out;
		}
	}
	for (int i = 0; i < rq.n_ct; i++) {
		osip_contact_t *ct = osip_list_get(&req->contacts, i);

		if (ct->displayname && strcmp(ct->displayname, "*") == 0) {
			memset(&rq.k[i], 0, sizeof(rq.k[i]));	/* names no
								   binding */
			rq.star = 1;
			continue;
		}
		code = core_reg_contact_read(c->cfg, ct, rq.hdr_expires,
					     &rq.k[i], &why);
		if (code)
			goto out;
	}
	code = core_reg_apply(c, in, &rq, ch, now, &why);
	if (code < 0)
		code = -code;
	else if (code == 0)
		core_reg_answer(c, in, req, NULL, rq.aor, rq.k, rq.n_ct, now);
out:
	if (code)
		core_reg_fail(c, in, req, code, why);
	osip_free(callid);
	if (rq.k != kbuf)
		free(rq.k);
	if (ch != chbuf)
		free(ch);
}

/* The REGISTER in sc as the registrar reads it, into *rq (its contacts
 * into rq->k): 0, or -EINVAL when the parsed path must answer it. */
static int
core_reg_from_scan(struct core *c, const struct core_scan_reg *sc,
		   struct core_reg_req *rq, char *callid)
{
	const char *why;

	if (sc->call_id_len >= LOC_CALLID_MAX ||
	    !cfg_domain_is_local(c->cfg, sc->to_host, sc->to_host_len) ||
	    core_aor_make(sc->to_user, sc->to_user_len, sc->to_host,
			  sc->to_host_len, rq->aor, sizeof(rq->aor)) != 0)
		return -EINVAL;
	memcpy(callid, sc->call_id, sc->call_id_len);
	callid[sc->call_id_len] = '\0';
	rq->callid = callid;
	rq->cseq = sc->cseq;
	rq->hdr_expires = sc->expires;
	if (sc->ua) {
		size_t n = sc->ua_len < sizeof(rq->ua) ? sc->ua_len :
							 sizeof(rq->ua) - 1;

		memcpy(rq->ua, sc->ua, n);
		rq->ua[n] = '\0';
	}
	rq->n_ct = sc->n_contact;
	for (int i = 0; i < sc->n_contact; i++)
		if (core_reg_contact_scan(c->cfg, &sc->ct[i], sc->expires,
					  &rq->k[i], &why) != 0)
			return -EINVAL;
	return 0;
}

int
core_reg_scanned(struct core *c, const struct env *in)
{
	struct core_reg_contact k[CORE_SCAN_CONTACTS];
	struct loc_change ch[CORE_SCAN_CONTACTS];
	struct core_reg_req rq = { .k = k };
	struct core_scan_reg sc;
	char callid[LOC_CALLID_MAX], tag[32];
	const char *why = NULL, *at;
	int64_t now;
	int code, proven;

	/* Client certificates read the parsed message. */
	if (c->cfg->n_tls_client_cert_domains ||
	    core_splice_scan_register(in->msg, in->len, &sc) != 0 ||
	    core_reg_from_scan(c, &sc, &rq, callid) != 0)
		return 0;
	log_ctx_set(sc.call_id, sc.call_id_len < LOG_CTX_MAX ?
		    sc.call_id_len : LOG_CTX_MAX - 1);
	c->rx = (struct core_rx){ .raw = in->msg, .len = in->len,
				  .n_via = sc.n_via, .mf = -1,
				  .lines = sc.lines,
				  .n_lines = sc.n_lines > 0 ? sc.n_lines : 0 };
	at = memchr(sc.call_id, '@', sc.call_id_len);
	core_local_tag_of(sc.call_id, at ? (size_t)(at - sc.call_id) :
					   sc.call_id_len,
			  sc.from_tag, sc.from_tag_len, sc.branch,
			  sc.branch_len, tag, sizeof(tag));
	/* 0: answered with a challenge */
	proven = c->auth ? core_auth_scanned(c, in, &sc, tag) : 1;
	now = core_wall_s(c);
	code = 0;
	if (proven > 0 && rq.n_ct)
		code = core_reg_apply(c, in, &rq, ch, now, &why);
	if (proven < 0 || code < 0) {
		/* refused: nothing changed, and the parsed path says why */
		c->rx = (struct core_rx){ .mf = -1 };
		log_ctx_clear();
		return 0;
	}
	prom_sip_count(&c->sip, PROM_IN, in->msg, in->len);
	log_debug(LOG_SYS_SIP, "REGISTER from edge %d, read from its text",
		  in->edge_id);
	c->st.rx_requests++;
	c->st.reg_scanned++;
	if (proven == 0)
		goto out;
	c->st.registers++;
	if (code == 0) {
		core_reg_answer(c, in, NULL, tag, rq.aor, rq.k, rq.n_ct, now);
	} else {
		/* the store failed it: answered as the parsed path does */
		osip_message_t *m = core_rx_parse(c);

		if (m)
			core_reg_fail(c, in, m, code, why);
		osip_message_free(m);
	}
out:
	c->rx = (struct core_rx){ .mf = -1 };
	log_ctx_clear();
	return 1;
}
