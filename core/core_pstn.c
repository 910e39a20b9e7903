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
 * may call out: [pstn] needs auth = yes (cfg.c), a request from another
 * domain for a number here gets 404 like any unknown user (so a call a
 * gateway sends us for a number nobody holds never goes back out to
 * it), and a KwikyKonf guest gets 403: guest credentials are given to
 * anyone who opens the page.  The trunk is shown who calls in a
 * P-Asserted-Identity made from the authenticated From (RFC 3325);
 * whatever identity headers the caller wrote are removed first, since
 * a gateway takes them for the caller's number.
 */
#include "core/core_int.h"

#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"

struct core_pstn {
	regex_t numbers;
	osip_uri_t *gw[CFG_PSTN_GW_MAX];
	int n_gw;
};

/* What a caller may write to be shown to a gateway as someone else. */
static const char *const core_pstn_identities[] = {
	"P-Asserted-Identity", "P-Preferred-Identity", "Remote-Party-ID",
};

void
core_pstn_free(struct core_pstn *p)
{
	if (p == NULL)
		return;
	for (int i = 0; i < p->n_gw; i++)
		osip_uri_free(p->gw[i]);
	regfree(&p->numbers);
	free(p);
}

int
core_pstn_new(struct core *c)
{
	const char *s = c->cfg->pstn_gateways;
	struct core_pstn *p;
	char uri[sizeof(c->cfg->pstn_gateways)];
	int rc = -ENOMEM;

	c->pstn = NULL;
	if (s[strspn(s, " \t")] == '\0')
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
	}
	c->pstn = p;
	log_notice(LOG_SYS_MAIN, "[pstn] %d gateway(s) for numbers matching "
		   "%s", p->n_gw, c->cfg->pstn_numbers);
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

int
core_pstn_wants(struct core *c, const struct env *in,
		const osip_message_t *req)
{
	const char *user = req->req_uri->username;

	if (c->pstn == NULL || user == NULL ||
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
core_pstn_identity(struct core *c, osip_message_t *req)
{
	const osip_uri_t *f = req->from ? req->from->url : NULL;
	osip_header_t *h = NULL;
	char v[CFG_ADDR_LEN + 160];
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
	n = snprintf(v, sizeof(v), "<sip:%s@%s>", f->username, f->host);
	if (n < 0 || (size_t)n >= sizeof(v))
		return -EINVAL;
	return osip_message_set_header(req, "P-Asserted-Identity", v) == 0 ?
	       0 : -ENOMEM;
}
