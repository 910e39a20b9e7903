/*
 * core_pstn.c - calls to the phone network through SIP trunks
 * ([pstn]), as a Kamailio script does it with lookup() failing, a
 * number pattern and dispatcher's gateways in priority order.
 *
 * A request for a user part of a local domain that matches [pstn]
 * numbers, that nobody registered (an AOR registered once and now
 * without bindings gets 480: the gateway would only hand the call back
 * to us), goes to the gateways one after another: core_fed.c locates
 * each gateway's URI like a next hop (so a name has its SRV targets)
 * and fails over to the next gateway when every target of one is
 * silent, refuses or answers 503.  Its Request-URI becomes the number,
 * cut by strip and prefixed, at the gateway's host.
 *
 * Only a user proven by digest authentication with an account of ours
 * may call out, and only this way: nothing else reaches a gateway's
 * address (core_pstn_is_gateway), neither a foreign domain or a Contact
 * that resolves there nor a request inside another call, since the
 * number rules and the caller's identity are applied here.  A trunk
 * call's Record-Route marks the entry facing the gateway (a signed
 * "sm-c" token), and only requests that pop it may go to a gateway.
 * The gateways' addresses are known from their URIs, from a locate of
 * each name at start, and from every trunk call's locate.
 *
 * Who may call: [pstn] needs auth = yes (cfg.c), a request from another
 * domain for a number here gets 404 like any unknown user (so a call a
 * gateway sends us for a number nobody holds never goes back out to
 * it), and a KwikyKonf guest gets 403: guest credentials are given to
 * anyone who opens the page.  The trunk is shown who calls in a
 * P-Asserted-Identity made from the authenticated From (RFC 3325);
 * whatever identity headers the caller wrote are removed first, since
 * a gateway takes them for the caller's number.
 *
 * A gateway that challenges (401/407: carriers that take calls from
 * their customers' accounts rather than addresses) gets the request
 * again, once, with credentials for [pstn] username and password, MD5
 * or SHA-256, with qop=auth or without (RFC 2069, as Asterisk asks).
 * The retry's CSeq is one above the caller's (RFC 3261 22.2); the
 * Record-Route entry facing the gateway carries that (core_trunk_token)
 * so the caller's ACK and in-dialog requests are moved up too, and the
 * answers moved back down, with no dialog state: Kamailio's uac_auth
 * with the dialog module's track_cseq_updates.  The caller never sees
 * the gateway's challenge: its credentials are ours, not the caller's.
 *
 * [pstn] dids are the numbers a carrier routes to us, each a local
 * user's: a request for one, at a local domain or at our own address,
 * goes to that user's bindings (Kamailio's alias_db_lookup), never to a
 * gateway, and the user's calls out show it in P-Asserted-Identity.
 * Kept sorted by number for a binary search: a table of at most
 * CFG_PSTN_DIDS_MAX, loaded at start like the rest of the file.
 */
#include "core/core_int.h"

#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/digest.h"
#include "lib/dns.h"
#include "lib/log.h"

/* Gateway addresses remembered: what their names resolved to. */
#define CORE_PSTN_ADDRS_MAX 64

struct core_pstn {
	regex_t numbers;
	osip_uri_t *gw[CFG_PSTN_GW_MAX];
	int n_gw;
	union env_sa addrs[CORE_PSTN_ADDRS_MAX];	/* of the gateways */
	int n_addrs, next_addr;
	struct cfg_did *dids;	/* [pstn] dids, by number */
	int n_dids;
};

/* What a caller may write to be shown to a gateway as someone else,
 * or to have another number billed (P-Charge-Info, Diversion: we
 * forward no calls, so a Diversion is the caller's own invention). */
static const char *const core_pstn_identities[] = {
	"P-Asserted-Identity", "P-Preferred-Identity", "Remote-Party-ID",
	"P-Charge-Info", "Diversion",
};

static void
core_pstn_add(struct core_pstn *p, const union env_sa *sa)
{
	for (int i = 0; i < p->n_addrs; i++)
		if (env_sa_addr_eq(&p->addrs[i], sa))
			return;
	if (p->n_addrs < CORE_PSTN_ADDRS_MAX) {
		p->addrs[p->n_addrs++] = *sa;
		return;
	}
	p->addrs[p->next_addr] = *sa;	/* the oldest goes */
	p->next_addr = (p->next_addr + 1) % CORE_PSTN_ADDRS_MAX;
}

void
core_pstn_learn(struct core *c, const union env_sa *sa)
{
	if (c->pstn)
		core_pstn_add(c->pstn, sa);
}

int
core_pstn_is_gateway(const struct core *c, const union env_sa *sa)
{
	if (c->pstn == NULL)
		return 0;
	for (int i = 0; i < c->pstn->n_addrs; i++)
		if (env_sa_addr_eq(&c->pstn->addrs[i], sa))
			return 1;
	return 0;
}

int
core_pstn_off_trunk(const struct core *c, const struct core_leg *l)
{
	return !l->trunk && !l->conn_id && core_pstn_is_gateway(c, &l->dst);
}

static void
core_pstn_located(void *arg, int err, const struct dns_target *t, int n)
{
	struct core *c = arg;

	if (err != 0)
		return;		/* learned from the first trunk call then */
	for (int i = 0; i < n; i++)
		core_pstn_learn(c, &t[i].addr);
}

void
core_pstn_start(struct core *c)
{
	union env_sa sa;

	for (int i = 0; c->pstn && i < c->pstn->n_gw; i++) {
		const osip_uri_t *u = c->pstn->gw[i];
		int port = u->port ? atoi(u->port) : 0;

		if (env_sa_from(&sa, u->host, 5060) == 0)
			continue;	/* an address: known already */
		if (dns_locate(c->dns, u->host, strlen(u->host), 0,
			       port > 0 && port < 65536 ? port : 0,
			       u->scheme && strcasecmp(u->scheme, "sips") == 0,
			       core_pstn_located, c, NULL) != 0)
			log_warn(LOG_SYS_MAIN, "[pstn] gateway %s: cannot "
				 "locate it yet", u->host);
	}
}

void
core_pstn_free(struct core_pstn *p)
{
	if (p == NULL)
		return;
	for (int i = 0; i < p->n_gw; i++)
		osip_uri_free(p->gw[i]);
	regfree(&p->numbers);
	free(p->dids);
	free(p);
}

static int
core_pstn_did_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cfg_did *)a)->number,
		      ((const struct cfg_did *)b)->number);
}

/* The DIDs of [pstn] dids, sorted for core_pstn_did_in: 0 or -EINVAL
 * (cfg.c checked them: logged), -ENOMEM. */
static int
core_pstn_dids_load(struct core *c, struct core_pstn *p)
{
	char err[256];
	int n;

	p->dids = malloc(CFG_PSTN_DIDS_MAX * sizeof(*p->dids));
	if (p->dids == NULL)
		return -ENOMEM;
	n = cfg_pstn_dids(c->cfg, p->dids, CFG_PSTN_DIDS_MAX, err,
			  sizeof(err));
	if (n < 0) {
		log_err(LOG_SYS_MAIN, "%s", err);
		return n;
	}
	qsort(p->dids, (size_t)n, sizeof(*p->dids), core_pstn_did_cmp);
	p->n_dids = n;
	return 0;
}

int
core_pstn_new(struct core *c)
{
	const char *s = c->cfg->pstn_gateways;
	struct core_pstn *p;
	char uri[sizeof(c->cfg->pstn_gateways)];
	union env_sa sa;
	int rc = -ENOMEM;

	c->pstn = NULL;
	if (s[strspn(s, " \t")] == '\0' &&
	    c->cfg->pstn_dids[strspn(c->cfg->pstn_dids, " \t")] == '\0')
		return 0;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	/* cfg.c compiled it once already: a failure here is memory */
	if (regcomp(&p->numbers, c->cfg->pstn_numbers,
		    REG_EXTENDED | REG_NOSUB) != 0) {
		free(p);
		return -ENOMEM;
	}
	rc = core_pstn_dids_load(c, p);
	if (rc < 0)
		goto fail;
	for (; *(s += strspn(s, " \t")); s += strcspn(s, " \t")) {
		size_t len = strcspn(s, " \t");
		osip_uri_t *u = NULL;

		memcpy(uri, s, len);
		uri[len] = '\0';
		rc = -EINVAL;
		if (p->n_gw == CFG_PSTN_GW_MAX || osip_uri_init(&u) != 0 ||
		    osip_uri_parse(u, uri) != 0 || u->host == NULL ||
		    u->username != NULL) {
			log_err(LOG_SYS_MAIN, "[pstn] gateway %s: not a SIP URI "
				"of a host", uri);
			osip_uri_free(u);
			goto fail;
		}
		p->gw[p->n_gw++] = u;
		if (env_sa_from(&sa, u->host, 5060) == 0)
			core_pstn_add(p, &sa);
	}
	c->pstn = p;
	log_notice(LOG_SYS_MAIN, "[pstn] %d gateway(s) for numbers matching "
		   "%s; %d DID(s)", p->n_gw, c->cfg->pstn_numbers, p->n_dids);
	return 0;
fail:
	core_pstn_free(p);
	return rc;
}

int
core_pstn_count(const struct core *c)
{
	return c->pstn ? c->pstn->n_gw : 0;
}

const osip_uri_t *
core_pstn_gw(const struct core *c, int i)
{
	return c->pstn->gw[i];
}

int
core_pstn_wants(struct core *c, const struct env *in,
		const osip_message_t *req)
{
	const char *user = req->req_uri->username;

	if (c->pstn == NULL || c->pstn->n_gw == 0 || user == NULL ||
	    regexec(&c->pstn->numbers, user, 0, NULL, 0) != 0)
		return 0;
	if (in->proven == ENV_PROVEN_GUEST)
		return -EACCES;
	return in->proven == ENV_PROVEN_ACCOUNT;
}

int
core_pstn_ruri(struct core *c, int i, const osip_uri_t *ruri,
	       osip_uri_t **out)
{
	const char *num = ruri->username;
	size_t strip = (size_t)c->cfg->pstn_strip, plen, nlen;
	osip_uri_t *u = NULL;
	char *user;

	*out = NULL;
	if (c->pstn == NULL || i >= c->pstn->n_gw)
		return -ENOENT;
	nlen = strlen(num);
	num += strip < nlen ? strip : nlen;
	nlen = strlen(num);
	plen = strlen(c->cfg->pstn_prefix);
	if (osip_uri_clone(c->pstn->gw[i], &u) != 0)
		return -ENOMEM;
	user = osip_malloc(plen + nlen + 1);
	if (user == NULL) {
		osip_uri_free(u);
		return -ENOMEM;
	}
	memcpy(user, c->cfg->pstn_prefix, plen);
	memcpy(user + plen, num, nlen + 1);
	osip_uri_set_username(u, user);
	*out = u;
	return 0;
}

int
core_pstn_did_in(struct core *c, osip_message_t *req)
{
	osip_uri_t *u = req->req_uri;
	const struct cfg_did *d;
	struct cfg_did key;
	char *user, *host;

	if (c->pstn == NULL || c->pstn->n_dids == 0 || u->username == NULL ||
	    strlen(u->username) >= sizeof(key.number))
		return 0;
	strcpy(key.number, u->username);
	d = bsearch(&key, c->pstn->dids, (size_t)c->pstn->n_dids,
		    sizeof(*d), core_pstn_did_cmp);
	if (d == NULL)
		return 0;
	user = osip_strdup(d->user);
	host = osip_strdup(d->domain);
	if (user == NULL || host == NULL) {
		osip_free(user);
		osip_free(host);
		return -ENOMEM;
	}
	log_info(LOG_SYS_SIP, "%s for the DID %s: to %s@%s", req->sip_method,
		 u->username, d->user, d->domain);
	/* libosip2's setters take the new value, not free the old */
	osip_free(u->username);
	osip_free(u->host);
	osip_uri_set_username(u, user);
	osip_uri_set_host(u, host);
	c->st.pstn_dids++;
	return 1;
}

/* The DID of user@host (the first [pstn] dids gives it), NULL when it
 * has none. */
static const char *
core_pstn_did_of(const struct core *c, const char *user, const char *host)
{
	const struct cfg_did *best = NULL;

	for (int i = 0; c->pstn && i < c->pstn->n_dids; i++) {
		const struct cfg_did *d = &c->pstn->dids[i];

		if (strcmp(d->user, user) == 0 &&
		    strcasecmp(d->domain, host) == 0 &&
		    (best == NULL || d->index < best->index))
			best = d;
	}
	return best ? best->number : NULL;
}

int
core_pstn_identity(struct core *c, osip_message_t *req)
{
	const osip_uri_t *f = req->from ? req->from->url : NULL;
	osip_header_t *h = NULL;
	char v[CFG_ADDR_LEN + 160];
	const char *did;
	int n;

	if (f == NULL || f->username == NULL || f->host == NULL)
		return -EINVAL;
	if (req == c->rx.msg)
		c->rx.dirty = 1;	/* headers a splice would not write */
	for (size_t k = 0; k < sizeof(core_pstn_identities) /
			       sizeof(core_pstn_identities[0]); k++) {
		int pos;

		while ((pos = osip_message_header_get_byname(req,
				core_pstn_identities[k], 0, &h)) >= 0) {
			osip_list_remove(&req->headers, pos);
			osip_header_free(h);
		}
	}
	/* the number the carrier gave the user, if any: a carrier refuses
	 * a caller that is none of its numbers */
	did = core_pstn_did_of(c, f->username, f->host);
	n = snprintf(v, sizeof(v), "<sip:%s@%s>", did ? did : f->username,
		     f->host);
	if (n < 0 || (size_t)n >= sizeof(v))
		return -EINVAL;
	return osip_message_set_header(req, "P-Asserted-Identity", v) == 0 ?
	       0 : -ENOMEM;
}

int
core_pstn_can_auth(const struct core *c)
{
	return c->pstn != NULL && c->cfg->pstn_username[0] != '\0';
}

/* A challenge's quoted-string (libosip2 keeps the quotes) into out;
 * -EINVAL when absent, too long, or holding a quote or backslash we
 * would have to escape again. */
static int
core_pstn_unquote(const char *v, char *out, size_t cap)
{
	size_t n;

	if (v == NULL)
		return -EINVAL;
	n = strlen(v);
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v++;
		n -= 2;
	}
	if (n >= cap || memchr(v, '"', n) || memchr(v, '\\', n))
		return -EINVAL;
	memcpy(out, v, n);
	out[n] = '\0';
	return 0;
}

/* Whether a challenge's qop list offers "auth" (1), offers none (0:
 * RFC 2069), or only others (-1). */
static int
core_pstn_qop(const char *qop)
{
	char v[64];

	if (qop == NULL)
		return 0;
	if (core_pstn_unquote(qop, v, sizeof(v)) != 0)
		return -1;
	for (char *t = strtok(v, ", \t"); t; t = strtok(NULL, ", \t"))
		if (strcasecmp(t, "auth") == 0)
			return 1;
	return -1;
}

int
core_pstn_authorize(struct core *c, osip_message_t *req,
		    const osip_message_t *resp)
{
	const osip_list_t *l = resp->status_code == 401 ?
			       &resp->www_authenticates :
			       &resp->proxy_authenticates;
	char realm[128], nonce[256], opaque[256], alg[16], ha1[DIGEST_HEX_MAX];
	char resp_hex[DIGEST_HEX_MAX], cnonce[17], *uri = NULL, v[1024];
	const char *user = c->cfg->pstn_username;
	int rc = -ENOTSUP;

	if (osip_uri_to_str(req->req_uri, &uri) != 0)
		return -ENOMEM;
	for (int i = 0; i < osip_list_size(l); i++) {
		const osip_www_authenticate_t *w = osip_list_get(l, i);
		enum digest_alg a;
		struct digest_str u, n, nc = { "00000001", 8 }, cn;
		int qop, len;

		if (w->auth_type == NULL || strcasecmp(w->auth_type, "Digest"))
			continue;
		if (w->algorithm == NULL)
			snprintf(alg, sizeof(alg), "MD5");
		else if (core_pstn_unquote(w->algorithm, alg, sizeof(alg)))
			continue;
		if (strcasecmp(alg, "MD5") == 0)
			a = DIGEST_MD5;
		else if (strcasecmp(alg, "SHA-256") == 0)
			a = DIGEST_SHA256;
		else
			continue;
		qop = core_pstn_qop(w->qop_options);
		if (qop < 0 || core_pstn_unquote(w->realm, realm, sizeof(realm)) ||
		    core_pstn_unquote(w->nonce, nonce, sizeof(nonce)))
			continue;
		opaque[0] = '\0';
		if (w->opaque &&
		    core_pstn_unquote(w->opaque, opaque, sizeof(opaque)))
			continue;
		/* unpredictable: it is our part of what the gateway's
		 * nonce makes fresh */
		core_random_hex(c, cnonce, 8);
		u = (struct digest_str){ uri, strlen(uri) };
		n = (struct digest_str){ nonce, strlen(nonce) };
		cn = (struct digest_str){ cnonce, 16 };
		if (digest_ha1(a, user, realm, c->cfg->pstn_password, ha1) ||
		    digest_response(a, ha1, req->sip_method,
				    strlen(req->sip_method), &u, &n,
				    qop ? &nc : NULL, qop ? &cn : NULL,
				    resp_hex)) {
			rc = -EINVAL;
			continue;
		}
		len = snprintf(v, sizeof(v), "Digest username=\"%s\", "
			       "realm=\"%s\", nonce=\"%s\", uri=\"%s\", "
			       "response=\"%s\", algorithm=%s", user, realm,
			       nonce, uri, resp_hex, digest_alg_name(a));
		if (len > 0 && (size_t)len < sizeof(v) && qop)
			len += snprintf(v + len, sizeof(v) - (size_t)len,
					", qop=auth, nc=00000001, "
					"cnonce=\"%s\"", cnonce);
		if (len > 0 && (size_t)len < sizeof(v) && opaque[0])
			len += snprintf(v + len, sizeof(v) - (size_t)len,
					", opaque=\"%s\"", opaque);
		if (len <= 0 || (size_t)len >= sizeof(v)) {
			rc = -ENOSPC;
			continue;
		}
		rc = resp->status_code == 401 ?
		     osip_message_set_authorization(req, v) :
		     osip_message_set_proxy_authorization(req, v);
		rc = rc == 0 ? 0 : -ENOMEM;
		break;
	}
	osip_free(uri);
	explicit_bzero(ha1, sizeof(ha1));
	return rc;
}
