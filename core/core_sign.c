/*
 * core_sign.c - everything the core mints and later trusts, signed with
 * the cluster key (HMAC-SHA256, truncated to 64 bits):
 *   - Via branches "z9hG4bKsm<core>.<serial>.<mac>" (lib/sip.h), the MAC
 *     over the core id, the serial and the Call-ID: a response is
 *     accepted only for a branch this core minted for that call, so
 *     nobody can end another caller's transaction by guessing branches;
 *   - Record-Route values: a "smsig" URI parameter, the MAC over the
 *     dialog's Call-ID and the URI's user part (the flow token, when
 *     there is one), so only a Route set this cluster gave a dialog
 *     routes through it, and a flow token works only for its dialog.
 * Every MAC input starts with a letter naming its use, so one key
 * serves all of them.  64 bits: a forger gets one try per packet and
 * the values live as long as a dialog.  Cost: one HMAC per Via pushed,
 * per Record-Route written, per response and per routed request.
 *
 * The key: the cluster's signing key (lib/key.h), the same on every
 * host that shares [cluster] secret.
 */
#include "core/core_int.h"
#include "lib/key.h"

#include <errno.h>
#include <openssl/hmac.h>
#include <string.h>
#include <strings.h>

#define CORE_RR_PARAM "smsig"

/* HMAC-SHA256 under the cluster key of the `len` bytes at data,
 * truncated to its first 64 bits. */
static uint64_t
core_sign_mac(const struct core *c, const char *data, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	uint64_t v = 0;

	HMAC(EVP_sha256(), c->key, sizeof(c->key), (const unsigned char *)data,
	     len, md, &mdlen);
	for (int i = 0; i < 8 && i < (int)mdlen; i++)
		v = v << 8 | md[i];
	return v;
}

/* The MAC of use letter `use`, m's Call-ID and the string s. */
static uint64_t
core_sign_call(const struct core *c, char use, const osip_message_t *m,
	       const char *s)
{
	char cid[512], data[600];
	int n;

	core_call_id(m, cid, sizeof(cid));
	n = snprintf(data, sizeof(data), "%c|%s|%s", use, cid, s);
	if (n < 0)
		n = 0;
	return core_sign_mac(c, data, (size_t)n < sizeof(data) ?
			     (size_t)n : sizeof(data) - 1);
}

static uint64_t
core_branch_mac(const struct core *c, const osip_message_t *m, int core_id,
		uint64_t serial)
{
	char s[40];

	snprintf(s, sizeof(s), "%d.%016llx", core_id,
		 (unsigned long long)serial);
	return core_sign_call(c, 'b', m, s);
}

int
core_branch_make(const struct core *c, const osip_message_t *m,
		 uint64_t serial, char *out, size_t cap)
{
	return sip_branch_make(out, cap, c->id, serial,
			       core_branch_mac(c, m, c->id, serial));
}

int
core_branch_verify(const struct core *c, const osip_message_t *m,
		   const char *branch)
{
	uint64_t serial, mac;
	int id;

	if (branch == NULL ||
	    sip_branch_parse(branch, strlen(branch), &id, &serial, &mac) != 0 ||
	    id != c->id || mac != core_branch_mac(c, m, id, serial))
		return -EINVAL;
	return 0;
}

int
core_rr_param(const struct core *c, const osip_message_t *m,
	      const char *user, char *out, size_t cap)
{
	int n = snprintf(out, cap, ";" CORE_RR_PARAM "=%016llx",
			 (unsigned long long)core_sign_call(c, 'r', m,
							    user ? user : ""));

	return n < 0 || (size_t)n >= cap ? -ENOSPC : 0;
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
 * write facing a party that is reachable only over its own connection,
 * "sm-f<edge>-<incarnation hex>.<serial>-<transport>", the connection
 * id as ENV_CONN_FMT writes it.  An in-dialog request that pops that
 * entry goes back down the same connection, whatever its Request-URI
 * says (SIP.js writes "*.invalid" hosts); when the edge restarted
 * meanwhile, the incarnation names no connection and the request fails
 * with 430.  The token carries no MAC of its own: the Record-Route's
 * signature covers it with the Call-ID.  Tokens of the form before
 * incarnations ("sm-f<edge>-<conn>-<transport>") no longer parse: the
 * edges that minted them are gone.
 */
int
core_flow_token(const struct core_leg *l, char *out, size_t cap)
{
	int n = snprintf(out, cap, "sm-f%u-" ENV_CONN_FMT "-%u", l->edge_id,
			 ENV_CONN_ARGS(l->conn_id), l->transport);

	return n < 0 || (size_t)n >= cap ? -ENOSPC : 0;
}

int
core_flow_parse(const char *user, struct core_leg *l)
{
	unsigned e, t;
	uint32_t inc, serial;
	int used = 0;

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
core_key_load(struct core *c)
{
	return key_load(c->cfg, KEY_USE_SIGN, c->key);
}
