/*
 * core_sign.c - everything the core mints and later trusts:
 *   - Via branches "z9hG4bKsm<core>.<serial>.<mac>" (lib/sip.h), the MAC
 *     (SipHash under the branch key, which the edges hold too, so they
 *     drop forged responses before parsing them) over the core id, the
 *     serial and the Call-ID: a response is accepted only for a branch
 *     a core minted for that call, so nobody can end another caller's
 *     transaction by guessing branches (another core's branch has no
 *     transaction here: it arrives when its core is lost, and only a
 *     2xx of an INVITE goes on, statelessly);
 *   - signed with the cluster key (HMAC-SHA256, truncated to 64 bits),
 *     Record-Route values: a "smsig" URI parameter, the MAC over the
 *     dialog's Call-ID and the URI's user part (the flow token, when
 *     there is one), so only a Route set this cluster gave a dialog
 *     routes through it, and a flow token (a connection, or the NAT
 *     address of a UDP party) works only for its dialog.
 * Every MAC input starts with a letter naming its use, so one key
 * serves all of them.  64 bits: a forger gets one try per packet and
 * the values live as long as a dialog.  Cost: one HMAC per Via pushed,
 * per Record-Route written, per response and per routed request.
 *
 * The key: the cluster's signing key (lib/key.h), the same on every
 * host that shares [cluster] secret.
 */
#include "core/core_int.h"
#include "lib/hash.h"
#include "lib/key.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>
#include <strings.h>

#define CORE_RR_PARAM "smsig"

/* HMAC-SHA256 under the cluster key of the `len` bytes at data,
 * truncated to its first 64 bits.  The context keyed once is re-armed
 * with the same key: OpenSSL 3's one-shot HMAC() fetches the digest and
 * keys a new context each call, several times the hash itself. */
static uint64_t
core_sign_mac(const struct core *c, const char *data, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	size_t mdlen = 0;
	uint64_t v = 0;

	if (EVP_MAC_init(c->sign, NULL, 0, NULL) != 1 ||
	    EVP_MAC_update(c->sign, (const unsigned char *)data, len) != 1 ||
	    EVP_MAC_final(c->sign, md, &mdlen, sizeof(md)) != 1) {
		/* out of memory in OpenSSL: the slow way, never no MAC */
		HMAC(EVP_sha256(), c->key, sizeof(c->key),
		     (const unsigned char *)data, len, md, &n);
		mdlen = n;
	}
	for (int i = 0; i < 8 && i < (int)mdlen; i++)
		v = v << 8 | md[i];
	return v;
}

/* The MAC of use letter `use`, m's Call-ID and the string s. */
static uint64_t
core_sign_call(const struct core *c, char use, const osip_message_t *m,
	       const char *s)
{
	char data[600];
	struct sip_cat b;

	/* As "%c|%s|%s" printed (cut the same way): tokens signed before
	 * stay valid. */
	sip_cat_init(&b, data, sizeof(data));
	sip_cat_ch(&b, use);
	sip_cat_ch(&b, '|');
	b.len += core_call_id(m, data + b.len, sizeof(data) - b.len < 512 ?
			      sizeof(data) - b.len : 512);
	sip_cat_ch(&b, '|');
	sip_cat_str(&b, s);
	return core_sign_mac(c, data, b.len);
}

static uint64_t
core_branch_mac(const struct core *c, const osip_message_t *m, int core_id,
		uint64_t serial)
{
	char cid[SIP_BRANCH_CID_MAX + 1];
	size_t n = core_call_id(m, cid, sizeof(cid));

	return sip_branch_mac(&c->branch_key, core_id, serial, cid, n);
}

int
core_branch_make(const struct core *c, const osip_message_t *m,
		 uint64_t serial, char *out, size_t cap)
{
	return sip_branch_make(out, cap, c->id, serial,
			       core_branch_mac(c, m, c->id, serial));
}

int
core_branch_verify(const struct core *c, const char *cid, size_t len,
		   const char *branch)
{
	uint64_t serial, mac;
	int id;

	/* core_branch_mac cuts the Call-ID as core_call_id does. */
	if (len > SIP_BRANCH_CID_MAX)
		len = SIP_BRANCH_CID_MAX;
	if (branch == NULL ||
	    sip_branch_parse(branch, strlen(branch), &id, &serial, &mac) != 0 ||
	    mac != sip_branch_mac(&c->branch_key, id, serial, cid, len))
		return -EINVAL;
	return 0;
}

int
core_rr_param(const struct core *c, const osip_message_t *m,
	      const char *user, char *out, size_t cap)
{
	struct sip_cat b;

	sip_cat_init(&b, out, cap);
	sip_cat_str(&b, ";" CORE_RR_PARAM "=");
	sip_cat_hex16(&b, core_sign_call(c, 'r', m, user ? user : ""));
	return b.over ? -ENOSPC : 0;
}

int
core_rr_verify(const struct core *c, const osip_message_t *m,
	       const osip_uri_t *u)
{
	osip_uri_param_t *p = NULL;
	char want[48];

	osip_uri_uparam_get_byname((osip_uri_t *)u, CORE_RR_PARAM, &p);
	if (p == NULL || p->gvalue == NULL ||
	    core_rr_param(c, m, u->username, want, sizeof(want)) != 0 ||
	    strcasecmp(p->gvalue, want + sizeof(CORE_RR_PARAM) + 1) != 0)
		return -EACCES;
	return 0;
}

/*
 * Flow tokens (RFC 5626 5.2): the user part of a Record-Route entry we
 * write facing a party that the Request-URI of an in-dialog request
 * towards it would not reach.  Two kinds:
 *   - "sm-f<edge>-<incarnation hex>.<serial>-<transport>", a party
 *     reachable only over its own connection (WebSocket, TCP, TLS), the
 *     connection id as ENV_CONN_FMT writes it.  An in-dialog request
 *     that pops that entry goes back down the same connection, whatever
 *     its Request-URI says (SIP.js writes "*.invalid" hosts); when the
 *     edge restarted meanwhile, the incarnation names no connection and
 *     the request fails with 430.  Tokens of the form before
 *     incarnations ("sm-f<edge>-<conn>-<transport>") no longer parse:
 *     the edges that minted them are gone.
 *   - "sm-n<edge>-<address>-<port>", a UDP party behind NAT (its
 *     Contact a private address or a name, core_proxy.c): the address
 *     its request or REGISTER came from, where its NAT binding points,
 *     as inet_ntop writes it with ':' as '_' (a user part cannot hold
 *     ':' unescaped), "sm-n1-192.0.2.7-5060".  An in-dialog
 *     request that pops it is sent there by that edge, not to the
 *     private Contact in its Request-URI; Kamailio's add_contact_alias /
 *     handle_ruri_alias do the same with a Contact parameter, which
 *     would need the Contact rewritten and the alias signed apart.
 *   - "sm-c<delta>" on the entry facing a [pstn] gateway (core_pstn.c):
 *     only requests that pop it last may go to a gateway, and their
 *     CSeq is moved up by delta, 1 once we answered the gateway's
 *     challenge with a request of our own (core_leg.cseq_delta).
 * None carries a MAC of its own: the Record-Route's signature covers
 * the user part with the Call-ID, so a token is trusted only on the
 * signed entry of the dialog it was minted for, by any core, with no
 * state kept.
 */
/* The UDP NAT token of l ("sm-n..."): 0, -ENOSPC or -EINVAL. */
static int
core_nat_token(const struct core_leg *l, char *out, size_t cap)
{
	char ip[INET6_ADDRSTRLEN];
	int n;

	if (l->dst.sa.sa_family != AF_INET && l->dst.sa.sa_family != AF_INET6)
		return -EINVAL;
	env_sa_ip(&l->dst, ip, sizeof(ip));
	for (char *p = ip; *p; p++)
		if (*p == ':')	/* not in a URI's user part unescaped */
			*p = '_';
	n = snprintf(out, cap, "sm-n%u-%s-%d", l->edge_id, ip,
		     env_sa_port(&l->dst));
	return n < 0 || (size_t)n >= cap ? -ENOSPC : 0;
}

int
core_flow_token(const struct core_leg *l, char *out, size_t cap)
{
	int n;

	if (l->conn_id == 0 && l->nat)
		return core_nat_token(l, out, cap);
	n = snprintf(out, cap, "sm-f%u-" ENV_CONN_FMT "-%u", l->edge_id,
		     ENV_CONN_ARGS(l->conn_id), l->transport);
	return n < 0 || (size_t)n >= cap ? -ENOSPC : 0;
}

int
core_trunk_token(const struct core_leg *l, char *out, size_t cap)
{
	int n = snprintf(out, cap, "sm-c%u", l->cseq_delta);

	return n < 0 || (size_t)n >= cap || l->cseq_delta > 9 ? -ENOSPC : 0;
}

int
core_trunk_token_parse(const char *user)
{
	if (user == NULL || strncmp(user, "sm-c", 4) != 0 ||
	    user[4] < '0' || user[4] > '9' || user[5] != '\0')
		return -1;
	return user[4] - '0';
}

/* A decimal in [1, max] at *p, no sign, no leading zero; advances *p. */
static int
core_parse_num(const char **p, unsigned long max, unsigned long *v)
{
	const char *s = *p;
	unsigned long n = 0;

	if (*s < '1' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		n = n * 10 + (unsigned long)(*s - '0');
		if (n > max)
			return -EINVAL;
	}
	*p = s;
	*v = n;
	return 0;
}

/* Reads "sm-n<edge>-<address>-<port>" (user points past "sm-n"). */
static int
core_nat_parse(const char *user, struct core_leg *l)
{
	char ip[INET6_ADDRSTRLEN];
	unsigned long e, port;
	const char *dash;
	size_t n;

	if (core_parse_num(&user, 65535, &e) != 0 || *user++ != '-' ||
	    (dash = strrchr(user, '-')) == NULL ||
	    (n = (size_t)(dash - user)) == 0 || n >= sizeof(ip) ||
	    strspn(user, "0123456789abcdefABCDEF._") < n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		ip[i] = user[i] == '_' ? ':' : user[i];
	ip[n] = '\0';
	dash++;
	if (core_parse_num(&dash, 65535, &port) != 0 || *dash != '\0')
		return -EINVAL;
	memset(l, 0, sizeof(*l));
	if (env_sa_from(&l->dst, ip, (int)port) != 0)
		return -EINVAL;
	l->edge_id = (uint16_t)e;
	l->transport = ENV_UDP;
	l->nat = 1;
	return 0;
}

int
core_flow_parse(const char *user, struct core_leg *l)
{
	unsigned e, t;
	uint32_t inc, serial;
	int used = 0;

	if (user != NULL && strncmp(user, "sm-n", 4) == 0)
		return core_nat_parse(user + 4, l);
	if (user == NULL ||
	    sscanf(user, "sm-f%u-%8" SCNx32 ".%" SCNu32 "-%u%n", &e, &inc,
		   &serial, &t, &used) != 4 || user[used] != '\0' ||
	    e == 0 || e > 65535 || serial == 0 ||
	    !env_transport_valid((int)t))
		return -EINVAL;
	memset(l, 0, sizeof(*l));
	l->edge_id = (uint16_t)e;
	l->conn_id = ENV_CONN_ID(inc, serial);
	l->transport = (uint8_t)t;
	l->flags = env_transport_is((int)t, ENV_TP_WS) ? ENV_F_WS : 0;
	return 0;
}

int
core_sign_init(struct core *c)
{
	OSSL_PARAM p[2] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						 (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);

	EVP_MAC_CTX_free(c->sign);
	c->sign = mac ? EVP_MAC_CTX_new(mac) : NULL;
	EVP_MAC_free(mac);
	if (c->sign == NULL ||
	    EVP_MAC_init(c->sign, c->key, sizeof(c->key), p) != 1)
		return -EIO;
	return 0;
}

int
core_key_load(struct core *c)
{
	unsigned char bk[KEY_LEN];
	int rc = key_load(c->cfg, KEY_USE_SIGN, c->key);

	if (rc == 0)
		rc = key_load(c->cfg, KEY_USE_BRANCH, bk);
	if (rc == 0)
		hash_key_from(&c->branch_key, bk);
	explicit_bzero(bk, sizeof(bk));
	return rc == 0 ? core_sign_init(c) : rc;
}
