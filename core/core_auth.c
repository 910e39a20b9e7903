/*
 * core_auth.c - digest authentication and authorization of the
 * requests that speak for a local user (RFC 3261 22, RFC 7616, RFC
 * 8760), as Kamailio's auth module does it in a script: every REGISTER
 * (www_authorize) and every out-of-dialog request whose From is a local
 * domain (proxy_authorize), then a check that the authenticated user is
 * the one the request speaks for, then consume_credentials.
 *
 * The realm is the local domain of the To (REGISTER) or the From.  A
 * request without credentials for it gets 401/407 with two challenges,
 * SHA-256 first and MD5 for the phones that know nothing else, both
 * with one nonce minted over realm and Call-ID (lib/digest.h), so any
 * core verifies it and only the core the Call-ID hashes to ever sees
 * its nonce-counts.  stale=true goes only with a response that was
 * right for its nonce (RFC 7616 3.3): an expired nonce, or one of
 * another Call-ID, costs an honest client one round trip and an
 * attacker a plain challenge.  A nonce-count accepted once is refused
 * on any other request (a replay), but not on the very same request
 * within Timer F: a UDP REGISTER whose 200 was lost comes back
 * unchanged and is answered again (core_auth_seen).  In-dialog
 * requests pass on the signed Record-Route (core_sign.c) and need none
 * of this.
 *
 * Accounts come from auth_store (Redis behind a cache): a request
 * waits in a table keyed by its transaction while its account is
 * looked up, so a retransmission meanwhile is absorbed instead of
 * starting a second lookup or a second transaction; the table is
 * bounded ([redis] max_pending) and what does not fit, like a Redis
 * that cannot answer, gets 503 with Retry-After.  KwikyKonf guests
 * need no lookup: their password is recomputed from the username
 * (auth_guest_check).
 *
 * Cost: a request with credentials costs one nonce MAC, one digest
 * (two for a guest) and, on a cache miss, one Redis round trip; a
 * challenge costs one nonce MAC.  Memory: the nonce-count table
 * ([registrar] auth_nonces_max entries), CORE_AUTH_SEEN accepted
 * requests (96 KiB) and one entry per waiting request.
 */
#include "core/core_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "auth/auth.h"
#include "core/core_splice.h"
#include "lib/digest.h"
#include "lib/hash.h"
#include "lib/key.h"
#include "lib/log.h"

#define CORE_AUTH_USER_MAX AUTH_GUEST_NAME_MAX	/* the longer name */
#define CORE_AUTH_SEEN 4096	/* accepted requests remembered, per core */

/*
 * A request whose credentials were accepted lately.  A UDP client that
 * missed our 200 sends the same REGISTER again, same nonce-count and
 * all: that is a retransmission, answered again (the registrar makes it
 * idempotent), where any other request with a used nonce-count is a
 * replay.  Direct-mapped by transaction: a collision forgets the older
 * one, whose retransmission then gets a fresh challenge.
 */
struct core_auth_seen {
	uint64_t txn;		/* hash of the transaction key */
	uint64_t msg;		/* hash of the whole message as received */
	uint64_t until_ms;	/* Timer F: no retransmission after that */
};

/* One request's credentials as the verdict reads them. */
struct core_auth_try {
	struct digest_creds creds;	/* slices of the request's text */
	enum digest_nonce_state nonce;
	uint64_t minted;
	uint64_t txn_hash, msg_hash;	/* for core_auth_seen */
	const char *method;		/* borrowed */
	char realm[AUTH_REALM_MAX + 1];
};

/* A request waiting for its account; keyed by its transaction. */
struct core_auth_wait {
	struct core_hnode h;	/* Call-ID, CSeq, method, top branch */
	struct core *c;
	struct env in;		/* where it came from (msg not kept) */
	osip_message_t *req;
	char *text;		/* the credentials; t.creds slice it */
	struct core_auth_try t;
	struct auth_account acct;	/* filled when the cache answers */
};

struct core_auth {
	struct auth_store *store;
	struct digest_nc_table *nc;
	unsigned char nonce_key[KEY_LEN];
	unsigned char guest_key[KEY_LEN];
	struct htab wait;	/* struct core_auth_wait by h.key */
	uint32_t salt;		/* makes nonces of one second differ */
	enum digest_alg algs[DIGEST_NALGS];	/* offered, in order */
	int n_algs;
	struct core_auth_seen seen[CORE_AUTH_SEEN];
};

/* The credentials' verdict, before authorization. */
enum core_auth_outcome {
	AUTH_OK,
	AUTH_CHALLENGE,		/* no or wrong credentials: a new nonce */
	AUTH_STALE,		/* right response, expired or foreign nonce */
	AUTH_REPLAY,		/* a nonce-count seen before */
	AUTH_DOWN,		/* no account store: 503 */
};

/* Reads [registrar] auth_algorithms ("SHA-256 MD5") into a->algs;
 * 0, or -EINVAL (logged) for an unknown or repeated name. */
static int
core_auth_algs_parse(struct core_auth *a, const char *list)
{
	char buf[sizeof(((struct cfg *)0)->auth_algorithms)], *save = NULL;
	int alg;

	snprintf(buf, sizeof(buf), "%s", list);
	for (char *t = strtok_r(buf, " ,\t", &save); t;
	     t = strtok_r(NULL, " ,\t", &save)) {
		for (alg = 0; alg < DIGEST_NALGS; alg++)
			if (strcasecmp(t, digest_alg_name(alg)) == 0)
				break;
		for (int i = 0; alg < DIGEST_NALGS && i < a->n_algs; i++)
			if (a->algs[i] == (enum digest_alg)alg)
				alg = DIGEST_NALGS;
		if (alg == DIGEST_NALGS) {
			log_err(LOG_SYS_CFG, "[registrar] auth_algorithms: \"%s\" "
				"is not SHA-256 or MD5, or comes twice", t);
			return -EINVAL;
		}
		a->algs[a->n_algs++] = alg;
	}
	if (a->n_algs == 0) {
		log_err(LOG_SYS_CFG, "[registrar] auth_algorithms is empty");
		return -EINVAL;
	}
	return 0;
}

int
core_auth_new(struct core *c)
{
	const struct cfg *cfg = c->cfg;
	struct core_auth *a;
	int rc;

	if (!cfg->auth) {
		log_notice(LOG_SYS_REG, "open mode: [registrar] auth = no, "
			   "anyone may register any address of a local "
			   "domain and send as its users");
		return 0;
	}
	if (cfg->redis[0] == '\0' && cfg->redis_sentinels[0] == '\0') {
		log_err(LOG_SYS_REG, "[registrar] auth = yes needs the "
			"accounts in Redis: set [redis] address or sentinels");
		return -EINVAL;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	if (getrandom(&a->salt, sizeof(a->salt), 0) != sizeof(a->salt))
		a->salt = (uint32_t)c->token;
	rc = core_auth_algs_parse(a, cfg->auth_algorithms);
	if (rc == 0)
		rc = key_load(cfg, KEY_USE_NONCE, a->nonce_key);
	if (rc == 0)
		rc = key_load(cfg, KEY_USE_GUEST, a->guest_key);
	if (rc == 0)
		rc = digest_nc_new(&a->nc, (size_t)cfg->auth_nonces_max,
				   (uint64_t)cfg->nonce_lifetime_s);
	if (rc == 0)
		rc = auth_store_new(&a->store, c->loop, cfg, "core",
				    (size_t)cfg->auth_cache_max,
				    cfg->auth_cache_ttl_s);
	if (rc != 0) {
		log_err(LOG_SYS_REG, "authentication: %s", strerror(-rc));
		core_auth_free(a);
		return rc;
	}
	if (cfg->n_domains == 0)
		log_warn(LOG_SYS_REG, "[registrar] domains is empty: every "
			 "domain is local, so a request from any domain must "
			 "authenticate; list the local domains");
	c->auth = a;
	return 0;
}

static void
core_auth_wait_free(struct core_auth_wait *w)
{
	osip_message_free(w->req);
	osip_free(w->text);
	free(w);
}

void
core_auth_free(struct core_auth *a)
{
	struct htab_node *n;
	size_t pos = 0;

	if (a == NULL)
		return;
	/* The store ends its lookups with -ECANCELED, which frees their
	 * waits; whatever is left had no lookup to end. */
	auth_store_free(a->store);
	while ((n = htab_any(&a->wait, &pos)) != NULL) {
		struct core_auth_wait *w = htab_entry(n, struct core_auth_wait,
						      h.h);

		htab_del(&a->wait, n);
		core_auth_wait_free(w);
	}
	htab_fini(&a->wait);
	digest_nc_free(a->nc);
	free(a);
}

static int
core_auth_wait_eq(const struct htab_node *n, const void *key)
{
	return strcmp(htab_entry(n, struct core_hnode, h)->key, key) == 0;
}

/* The transaction key into out[CORE_KEY_MAX], what retransmissions
 * share (RFC 3261 17.2.3), and its hash: the same from libosip2's
 * fields or a scan's slices of one request. */
static uint64_t
core_auth_key(char *out, const char *method, const char *cseq, size_t cseq_len,
	      const char *branch, size_t branch_len, const char *cid,
	      size_t cid_len)
{
	snprintf(out, CORE_KEY_MAX, "%s %.*s %.*s %.*s", method, (int)cseq_len,
		 cseq, (int)branch_len, branch, (int)cid_len, cid);
	return hash_sip(hash_process_key(), out, strlen(out));
}

static uint64_t
core_auth_wait_key(const osip_message_t *req, char *out)
{
	const char *branch = core_top_branch(req, NULL);
	char cid[LOG_CTX_MAX];
	int n = core_call_id(req, cid, sizeof(cid));

	return core_auth_key(out, req->sip_method, req->cseq->number,
			     strlen(req->cseq->number), branch ? branch : "",
			     branch ? strlen(branch) : 0, cid,
			     n < 0 ? 0 : (size_t)n);
}

/* The host host[0..n), lower-cased into realm; 0, or -EINVAL when it
 * cannot be a realm (an account's realm is a host name,
 * auth_realm_valid). */
static int
core_auth_realm(const char *host, size_t n, char *realm)
{
	if (n == 0 || n > AUTH_REALM_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		realm[i] = (char)(host[i] >= 'A' && host[i] <= 'Z' ?
				  host[i] + 32 : host[i]);
	realm[n] = '\0';
	return auth_realm_valid(realm) ? 0 : -EINVAL;
}

static int
core_auth_is_register(const osip_message_t *req)
{
	return strcmp(req->sip_method, "REGISTER") == 0;
}

/* The credentials header list for req: Authorization for a REGISTER
 * (the registrar is the UAS), Proxy-Authorization otherwise. */
static osip_list_t *
core_auth_creds_list(osip_message_t *req)
{
	return core_auth_is_register(req) ? &req->authorizations :
					    &req->proxy_authorizations;
}

/* Whether header h's realm parameter is realm (osip keeps the
 * quotes). */
static int
core_auth_realm_is(const osip_authorization_t *h, const char *realm)
{
	const char *r = h->realm;
	size_t n, rl = strlen(realm);

	if (r == NULL || h->auth_type == NULL ||
	    strcasecmp(h->auth_type, "Digest") != 0)
		return 0;
	n = strlen(r);
	if (n >= 2 && r[0] == '"' && r[n - 1] == '"') {
		r++;
		n -= 2;
	}
	return n == rl && strncasecmp(r, realm, n) == 0;
}

#define CORE_AUTH_CHALLENGE_MAX 1024	/* the challenge lines */

/*
 * The challenge header lines for realm into out[CORE_AUTH_CHALLENGE_MAX]:
 * one per algorithm offered, all with one nonce minted over realm and
 * the Call-ID cid[0..cid_len).  Returns their length.
 */
static int
core_auth_challenge_lines(struct core *c, int reg, const char *realm,
			  const char *cid, size_t cid_len, int stale, char *out)
{
	char nonce[DIGEST_NONCE_MAX];
	struct sip_cat b;

	c->st.auth_challenges++;
	digest_nonce_make(c->auth->nonce_key, KEY_LEN,
			  (uint64_t)core_wall_s(c), c->auth->salt++, realm,
			  strlen(realm), cid, cid_len, nonce);
	sip_cat_init(&b, out, CORE_AUTH_CHALLENGE_MAX);
	for (int i = 0; i < c->auth->n_algs; i++) {
		sip_cat_str(&b, reg ? "WWW-Authenticate: Digest realm=\"" :
				      "Proxy-Authenticate: Digest realm=\"");
		sip_cat_str(&b, realm);
		sip_cat_str(&b, "\", nonce=\"");
		sip_cat_str(&b, nonce);
		sip_cat_str(&b, "\", algorithm=");
		sip_cat_str(&b, digest_alg_name(c->auth->algs[i]));
		sip_cat_str(&b, stale ? ", qop=\"auth\", stale=true\r\n" :
					", qop=\"auth\"\r\n");
	}
	return sip_cat_len(&b);		/* realm and nonce are bounded */
}

/* Sends the challenge written into c->splicebuf[0..len).  The one reply
 * not bounded by core_reply_max: its challenges, one per algorithm, are
 * a fixed ~300 bytes, 3.5 times the smallest REGISTER (63-hostile
 * measures it), and a phone that knows only the last needs it. */
static void
core_auth_challenge_send(struct core *c, const struct env *in, size_t len)
{
	struct core_leg up;

	core_leg_from_env(&up, in);
	c->st.replies_local++;
	core_send(c, &up, c->splicebuf, len);
}

/* Answers req with a challenge for realm (401 or 407): written from the
 * request's text when it is the one being handled, else by libosip2. */
static void
core_auth_challenge(struct core *c, const struct env *in,
		    const osip_message_t *req, const char *realm, int stale)
{
	int reg = core_auth_is_register(req), n;
	char lines[CORE_AUTH_CHALLENGE_MAX], cid[1024], *p, *e, *end;
	osip_message_t *r;
	struct core_leg up;
	size_t len;

	n = core_auth_challenge_lines(c, reg, realm, cid,
				      (size_t)core_call_id(req, cid, sizeof(cid)),
				      stale, lines);
	if (n < 0)
		return;
	if (core_reply_text(c, req, reg ? 401 : 407, NULL, lines, (size_t)n,
			    &len) == 0) {
		core_auth_challenge_send(c, in, len);
		return;
	}
	r = core_resp_build(c, req, reg ? 401 : 407, NULL);
	if (r == NULL)
		return;
	/* each line "<name>: <value>\r\n" */
	for (p = lines, end = lines + n; p < end; p = e + 2) {
		e = memchr(p, '\r', (size_t)(end - p));
		p = memchr(p, ' ', (size_t)(e - p)) + 1;
		*e = '\0';
		if (reg)
			osip_message_set_www_authenticate(r, p);
		else
			osip_message_set_proxy_authenticate(r, p);
	}
	core_leg_from_env(&up, in);
	c->st.replies_local++;
	core_send_msg(c, &up, r);
	osip_message_free(r);
}

/* No account store to ask: a clear 503 (core_resp_build adds
 * Retry-After) the client retries, never silence, which would look
 * like a network loss. */
static void
core_auth_unavailable(struct core *c, const struct env *in,
		      const osip_message_t *req)
{
	c->st.auth_unavailable++;
	log_warn(LOG_SYS_REG, "%s: no account store answer: 503",
		 req->sip_method);
	core_reply(c, in, req, 503, "Account Store Unavailable");
}

/*
 * The verdict on t's credentials given the account's HA1 (NULL: no
 * such account).  Only a right response counts against the
 * nonce-count table, so only account holders can fill it.
 */
static enum core_auth_outcome
core_auth_verify(struct core *c, const struct core_auth_try *t,
		 const char *ha1)
{
	struct core_auth_seen *seen;
	int rc, offered = 0;

	for (int i = 0; i < c->auth->n_algs; i++)
		offered |= c->auth->algs[i] == t->creds.alg;
	if (!offered || ha1 == NULL || ha1[0] == '\0' ||
	    digest_response_check(&t->creds, ha1, t->method,
				  strlen(t->method)) != 0) {
		c->st.auth_failures++;
		log_info(LOG_SYS_REG, "%s: wrong credentials for %.*s@%s",
			 t->method, (int)t->creds.username.len,
			 t->creds.username.s, t->realm);
		return AUTH_CHALLENGE;
	}
	if (t->nonce != DIGEST_NONCE_OK)
		return AUTH_STALE;
	seen = &c->auth->seen[t->txn_hash % CORE_AUTH_SEEN];
	rc = digest_nc_accept(c->auth->nc, &t->creds.nonce, t->minted,
			      t->creds.nc_value, (uint64_t)core_wall_s(c));
	if (rc == 0) {
		seen->txn = t->txn_hash;
		seen->msg = t->msg_hash;
		seen->until_ms = core_now_ms(c) + 64 * (uint64_t)c->cfg->t1_ms;
	} else if (rc == -EALREADY && seen->txn == t->txn_hash &&
		   seen->msg == t->msg_hash &&
		   core_now_ms(c) < seen->until_ms) {
		return AUTH_OK;		/* the same request again */
	}
	if (rc == -EALREADY) {
		c->st.auth_replays++;
		log_info(LOG_SYS_REG, "%s: nonce-count %08x replayed by "
			 "%.*s@%s", t->method, t->creds.nc_value,
			 (int)t->creds.username.len, t->creds.username.s,
			 t->realm);
		return AUTH_REPLAY;
	}
	return rc == 0 ? AUTH_OK : AUTH_CHALLENGE;
}

/*
 * Whether the authenticated user (a guest's "guest.<room>.<id>" when
 * guest is set) may speak for the request: the AOR it registers, the
 * From it sends as.  Then removes the credentials of our realm, which
 * are of no use downstream (Kamailio consume_credentials).
 */
static int
core_auth_authorize(struct core_auth_wait *w, const struct digest_str *guest)
{
	osip_message_t *req = w->req;
	osip_list_t *l = core_auth_creds_list(req);
	const osip_uri_t *u = core_auth_is_register(req) ? req->to->url :
							   req->from->url;
	const char *who = u ? u->username : NULL;
	size_t n = who ? strlen(who) : 0;
	int ok;

	if (n == 0)
		ok = 0;
	else if (guest)
		ok = auth_guest_may_use(guest, who, n);
	else
		ok = n == w->t.creds.username.len &&
		     memcmp(who, w->t.creds.username.s, n) == 0;
	if (!ok)
		return -EACCES;
	for (int i = 0; i < osip_list_size(l);) {
		osip_authorization_t *h = osip_list_get(l, i);

		if (core_auth_realm_is(h, w->t.realm)) {
			/* not a change the forwarded copy could splice */
			if (req == w->c->rx.msg)
				w->c->rx.dirty = 1;
			osip_list_remove(l, i);
			osip_authorization_free(h);
		} else {
			i++;
		}
	}
	return 0;
}

/*
 * Answers w's request for outcome o, or authorizes it.  Returns 1 when
 * the request may go on, 0 when it was answered.
 */
static int
core_auth_conclude(struct core *c, struct core_auth_wait *w,
		   enum core_auth_outcome o, const struct digest_str *guest)
{
	switch (o) {
	case AUTH_OK:
		if (core_auth_authorize(w, guest) == 0) {
			c->st.auth_ok++;
			return 1;
		}
		c->st.auth_forbidden++;
		log_info(LOG_SYS_REG, "%s: %.*s may not use that address: 403",
			 w->req->sip_method, (int)w->t.creds.username.len,
			 w->t.creds.username.s);
		core_reply(c, &w->in, w->req, 403, "Not Your Address");
		return 0;
	case AUTH_STALE:
		c->st.auth_stale++;
		core_auth_challenge(c, &w->in, w->req, w->t.realm, 1);
		return 0;
	case AUTH_CHALLENGE:
	case AUTH_REPLAY:
		core_auth_challenge(c, &w->in, w->req, w->t.realm, 0);
		return 0;
	case AUTH_DOWN:
		break;
	}
	core_auth_unavailable(c, &w->in, w->req);
	return 0;
}

int
core_auth_stats(const struct core *c, struct auth_store_stats *st)
{
	if (!c->auth)
		return -ENOENT;
	auth_store_stats(c->auth->store, st);
	return 0;
}

/* The account of a held request arrived (auth_store_cb). */
static void
core_auth_on_account(void *arg, int rc, const struct auth_account *acct)
{
	struct core_auth_wait *w = arg;
	struct core *c = w->c;
	osip_message_t *req = w->req;

	htab_del(&c->auth->wait, &w->h.h);
	if (rc == -ECANCELED) {		/* the core is stopping */
		core_auth_wait_free(w);
		return;
	}
	core_log_ctx(req);
	if (core_auth_conclude(c, w, rc == -EIO ? AUTH_DOWN :
			       core_auth_verify(c, &w->t, rc == 0 ?
						acct->ha1[w->t.creds.alg] :
						NULL),
			       NULL)) {
		w->req = NULL;
		w->in.proven = ENV_PROVEN_ACCOUNT;
		core_proxy_initial(c, &w->in, req);
	}
	log_ctx_clear();
	core_auth_wait_free(w);
}

/*
 * A guest's credentials: the password is recomputed from the username,
 * so the verdict needs no lookup.
 */
static int
core_auth_guest(struct core *c, struct core_auth_wait *w, const char *user)
{
	char pass[AUTH_GUEST_PASS_LEN + 1], ha1[DIGEST_HEX_MAX];
	struct digest_str guest;
	int rc;

	rc = auth_guest_check(c->auth->guest_key, user, strlen(user),
			      core_wall_s(c), &guest, pass);
	if (rc != 0) {
		c->st.auth_failures++;
		log_info(LOG_SYS_REG, "%s: guest %s refused: %s",
			 w->req->sip_method, user, strerror(-rc));
		return core_auth_conclude(c, w, AUTH_CHALLENGE, NULL);
	}
	rc = digest_ha1(w->t.creds.alg, user, w->t.realm, pass, ha1);
	return core_auth_conclude(c, w, rc == 0 ?
				  core_auth_verify(c, &w->t, ha1) :
				  AUTH_CHALLENGE, &guest);
}

/*
 * Whether req must authenticate, and for which realm: every REGISTER
 * for a domain served here, and any other request from one, except an
 * OPTIONS to the proxy itself (a keep-alive).  Returns 1 with realm
 * filled, 0 when it need not, -EINVAL when its domain cannot be a
 * realm.
 */
static int
core_auth_needed(struct core *c, const osip_message_t *req, char *realm)
{
	const osip_uri_t *u;

	if (core_auth_is_register(req)) {
		u = req->to->url;
	} else {
		if (strcmp(req->sip_method, "OPTIONS") == 0 &&
		    req->req_uri->username == NULL)
			return 0;
		u = req->from->url;
	}
	/* A domain not served here: the registrar refuses it (403), and a
	 * foreign user's request has nobody here to authenticate it. */
	if (u == NULL || u->host == NULL ||
	    (!cfg_domain_is_local(c->cfg, u->host, strlen(u->host)) &&
	     !core_uri_is_self(c, u, NULL)))
		return 0;
	return core_auth_realm(u->host, strlen(u->host), realm) == 0 ? 1 :
								      -EINVAL;
}

/*
 * Copies the user name of t's credentials (parsed) into user, and
 * checks t's nonce against realm (t->realm) and the Call-ID
 * cid[0..cid_len).  0, or -EINVAL for a user name too long.
 */
static int
core_auth_try_check(struct core *c, struct core_auth_try *t, const char *cid,
		    size_t cid_len, char *user)
{
	if (t->creds.username.len > CORE_AUTH_USER_MAX)
		return -EINVAL;
	memcpy(user, t->creds.username.s, t->creds.username.len);
	user[t->creds.username.len] = '\0';
	t->nonce = digest_nonce_check(c->auth->nonce_key, KEY_LEN,
				      (uint64_t)core_wall_s(c),
				      (uint64_t)c->cfg->nonce_lifetime_s,
				      t->realm, strlen(t->realm), cid, cid_len,
				      &t->creds.nonce, &t->minted);
	return 0;
}

enum core_auth_verdict
core_auth_request(struct core *c, const struct env *in, osip_message_t *req)
{
	struct core_auth *a = c->auth;
	struct core_auth_wait *w;
	osip_authorization_t *h = NULL;
	osip_list_t *l;
	char realm[AUTH_REALM_MAX + 1], user[CORE_AUTH_USER_MAX + 1];
	char key[CORE_KEY_MAX], cid[1024];
	enum core_auth_verdict proven = CORE_AUTH_PROVEN;
	uint64_t hash;
	int rc;

	if (a == NULL)
		return CORE_AUTH_PASS;
	rc = core_auth_needed(c, req, realm);
	if (rc == 0)
		return CORE_AUTH_PASS;
	if (rc < 0) {
		core_reply(c, in, req, 403, "Domain Cannot Authenticate");
		return CORE_AUTH_ANSWERED;
	}
	hash = core_auth_wait_key(req, key);
	if (htab_find(&a->wait, hash, core_auth_wait_eq, key)) {
		c->st.retrans_absorbed++;	/* its lookup is under way */
		return CORE_AUTH_ANSWERED;
	}
	l = core_auth_creds_list(req);
	for (int i = 0; i < osip_list_size(l) && h == NULL; i++) {
		h = osip_list_get(l, i);
		if (!core_auth_realm_is(h, realm))
			h = NULL;
	}
	if (h == NULL) {
		core_auth_challenge(c, in, req, realm, 0);
		return CORE_AUTH_ANSWERED;
	}
	if (a->wait.n >= (size_t)c->cfg->redis_max_pending) {
		core_auth_unavailable(c, in, req);
		return CORE_AUTH_ANSWERED;
	}

	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		core_reply(c, in, req, 500, NULL);
		return CORE_AUTH_ANSWERED;
	}
	w->c = c;
	w->in = *in;
	w->in.msg = NULL;	/* len stays: it bounds the replies */
	w->req = req;
	w->t.method = req->sip_method;
	w->t.txn_hash = hash;
	/* Keyed: a sender cannot make another message pass for a resend. */
	w->t.msg_hash = in->msg ? hash_sip(hash_process_key(), in->msg,
					   in->len) : 0;
	snprintf(w->t.realm, sizeof(w->t.realm), "%s", realm);
	snprintf(w->h.key, sizeof(w->h.key), "%s", key);
	if (osip_authorization_to_str(h, &w->text) != 0 ||
	    digest_creds_parse(w->text, strlen(w->text), &w->t.creds) != 0 ||
	    core_auth_try_check(c, &w->t, cid, (size_t)core_call_id(req, cid,
				sizeof(cid)), user) != 0) {
		c->st.auth_failures++;
		log_info(LOG_SYS_REG, "%s: unusable credentials", req->sip_method);
		rc = core_auth_conclude(c, w, AUTH_CHALLENGE, NULL);
		goto done;
	}
	if (c->cfg->guests && strchr(user, ':')) {
		rc = core_auth_guest(c, w, user);
		proven = CORE_AUTH_GUEST;
		goto done;
	}
	if (!auth_user_valid(user)) {
		rc = core_auth_conclude(c, w, core_auth_verify(c, &w->t, NULL),
					NULL);
		goto done;
	}
	/* Linked first: a retransmission arriving before the answer finds
	 * it, and the callback always has an entry to unlink. */
	if (htab_add(&a->wait, &w->h.h, hash) != 0) {
		core_reply(c, in, req, 500, NULL);
		rc = 0;
		goto done;
	}
	rc = auth_store_get(a->store, realm, strlen(realm), user, strlen(user),
			    &w->acct, core_auth_on_account, w);
	if (rc == 1)
		return CORE_AUTH_HELD;
	htab_del(&a->wait, &w->h.h);
	switch (rc) {
	case 0:
		rc = core_auth_conclude(c, w, core_auth_verify(c, &w->t,
					w->acct.ha1[w->t.creds.alg]), NULL);
		break;
	case -ENOENT:
		rc = core_auth_conclude(c, w, core_auth_verify(c, &w->t, NULL),
					NULL);
		break;
	default:
		rc = core_auth_conclude(c, w, AUTH_DOWN, NULL);
		break;
	}
done:
	w->req = NULL;		/* the caller keeps req */
	core_auth_wait_free(w);
	return rc ? proven : CORE_AUTH_ANSWERED;
}

int
core_auth_scanned(struct core *c, const struct env *in,
		  const struct core_scan_reg *sc, const char *to_tag)
{
	struct core_auth *a = c->auth;
	struct core_auth_try t = { .method = "REGISTER" };
	struct auth_account acct;
	char key[CORE_KEY_MAX], user[CORE_AUTH_USER_MAX + 1];
	char lines[CORE_AUTH_CHALLENGE_MAX];
	enum core_auth_outcome o = AUTH_CHALLENGE;
	size_t len;
	int i, n;

	/* A retransmission of a request held for its account is absorbed
	 * where it waits, found by its transaction. */
	if (a->wait.n || core_auth_realm(sc->to_host, sc->to_host_len,
					 t.realm) != 0)
		return -EAGAIN;
	for (i = 0; i < sc->n_auth; i++) {
		if (digest_creds_parse(sc->auth[i], sc->auth_len[i],
				       &t.creds) != 0)
			return -EAGAIN;
		if (t.creds.realm.len == strlen(t.realm) &&
		    strncasecmp(t.creds.realm.s, t.realm,
				t.creds.realm.len) == 0)
			break;
	}
	if (i < sc->n_auth) {
		/* t.creds: that value's, parsed by the loop */
		if (core_auth_try_check(c, &t, sc->call_id, sc->call_id_len,
					user) != 0 ||
		    t.nonce != DIGEST_NONCE_OK ||
		    (c->cfg->guests && strchr(user, ':')) ||
		    !auth_user_valid(user) ||
		    auth_store_get(a->store, t.realm, strlen(t.realm), user,
				   strlen(user), &acct, NULL, NULL) != 0)
			return -EAGAIN;
		t.txn_hash = core_auth_key(key, "REGISTER", sc->cseq_num,
					   sc->cseq_num_len, sc->branch,
					   sc->branch_len, sc->call_id,
					   sc->call_id_len);
		t.msg_hash = hash_sip(hash_process_key(), in->msg, in->len);
		o = core_auth_verify(c, &t, acct.ha1[t.creds.alg]);
		if (o == AUTH_OK) {
			/* another's address: core_auth_authorize's 403 */
			if (sc->to_user_len != t.creds.username.len ||
			    memcmp(sc->to_user, t.creds.username.s,
				   sc->to_user_len) != 0)
				return -EAGAIN;
			c->st.auth_ok++;
			return 1;
		}
	}
	n = core_auth_challenge_lines(c, 1, t.realm, sc->call_id,
				      sc->call_id_len, 0, lines);
	if (n < 0 || core_reply_text_tag(c, 401, NULL, to_tag, lines,
					 (size_t)n, &len) != 0)
		return -EAGAIN;
	core_auth_challenge_send(c, in, len);
	return 0;
}
