/*
 * test_core_auth.c - digest authentication in a real core (core
 * harness: location store, cluster key, links) against a real Redis
 * holding accounts written by auth_account_set: challenges, the
 * asynchronous lookup and what arrives while it is pending, replays,
 * stale nonces on the test's clock, authorization of the AOR and the
 * From, KwikyKonf guests, and a Redis that stops answering.
 */
#include "tests/unit/core/core_harness.h"
#include "tests/unit/redis_test.h"

#include <errno.h>
#include <signal.h>

#include "auth/auth.h"
#include "lib/digest.h"
#include "lib/key.h"

#define T_PREFIX "smut"
#define T_PASS "pw-alice"

static struct srv t_redis;
static char t_conf[512];

static int
t_group_setup(void **state)
{
	redisContext *r;

	(void)state;
	srv_start(&t_redis, 0);
	r = srv_client(t_redis.port);
	assert_int_equal(auth_account_set(r, T_PREFIX, "a.test", "alice", T_PASS), 0);
	assert_int_equal(auth_account_set(r, T_PREFIX, "a.test", "bob", "pw-bob"), 0);
	redisFree(r);
	snprintf(t_conf, sizeof(t_conf),
		 "[redis]\naddress = 127.0.0.1:%d\nprefix = " T_PREFIX "\n"
		 "timeout_ms = 300\n"
		 "[registrar]\nauth = yes\ndomains = a.test\n"
		 "nonce_lifetime_s = 60\n", t_redis.port);
	h_conf_extra = t_conf;
	return 0;
}

static int
t_group_teardown(void **state)
{
	(void)state;
	srv_stop(&t_redis, SIGTERM);
	return 0;
}

/* Credentials for one request. */
struct t_creds {
	const char *user, *pass;
	enum digest_alg alg;
	const char *nonce;	/* NULL: no Authorization at all */
	uint32_t nc;
	const char *uri;	/* digest-uri, the Request-URI */
	const char *method;
	const char *header;	/* "Authorization" or "Proxy-Authorization" */
};

/* Credentials of user for a REGISTER over nonce. */
static struct t_creds
t_reg_creds(const char *user, const char *pass, enum digest_alg alg,
	    const char *nonce)
{
	return (struct t_creds){ user, pass, alg, nonce, 1, "sip:a.test",
				 "REGISTER", "Authorization" };
}

/* The header line for c into out, "" when c->nonce is NULL. */
static void
t_auth_line(const struct t_creds *c, char *out, size_t cap)
{
	char ha1[DIGEST_HEX_MAX], resp[DIGEST_HEX_MAX], nc[9];
	struct digest_str u, n, ncs, cn = { "0a4f113b", 8 };

	out[0] = '\0';
	if (c->nonce == NULL)
		return;
	snprintf(nc, sizeof(nc), "%08x", c->nc ? c->nc : 1);
	u = (struct digest_str){ c->uri, strlen(c->uri) };
	n = (struct digest_str){ c->nonce, strlen(c->nonce) };
	ncs = (struct digest_str){ nc, 8 };
	assert_int_equal(digest_ha1(c->alg, c->user, "a.test", c->pass, ha1), 0);
	assert_int_equal(digest_response(c->alg, ha1, c->method,
					 strlen(c->method), &u, &n, &ncs, &cn,
					 resp), 0);
	snprintf(out, cap, "%s: Digest username=\"%s\", realm=\"a.test\", "
		 "nonce=\"%s\", uri=\"%s\", response=\"%s\", algorithm=%s, "
		 "cnonce=\"0a4f113b\", nc=%s, qop=auth\n", c->header, c->user,
		 c->nonce, c->uri, resp, digest_alg_name(c->alg), nc);
}

/* Delivers a REGISTER of aor from port 5070 on call-id cid, CSeq cseq,
 * branch br, with creds (nonce NULL: none), for expires seconds. */
static void
t_register_for(struct harness *h, const char *aor, const char *cid, int cseq,
	       const char *br, const struct t_creds *creds, int expires)
{
	char msg[2048], auth[1024] = "";

	if (creds)
		t_auth_line(creds, auth, sizeof(auth));
	snprintf(msg, sizeof(msg),
		 "REGISTER sip:a.test SIP/2.0\n"
		 "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-%s;rport\n"
		 "Max-Forwards: 70\n"
		 "From: <sip:%s@a.test>;tag=ft\n"
		 "To: <sip:%s@a.test>\n"
		 "Call-ID: %s\n"
		 "CSeq: %d REGISTER\n"
		 "Contact: <sip:%s@127.0.0.1:5070>\n"
		 "Expires: %d\n"
		 "%s"
		 "Content-Length: 0\n\n", br, aor, aor, cid, cseq, aor, expires,
		 auth);
	h_deliver(h, msg, 5070);
}

static void
t_register(struct harness *h, const char *aor, const char *cid, int cseq,
	   const char *br, const struct t_creds *creds)
{
	t_register_for(h, aor, cid, cseq, br, creds, 300);
}

/* Delivers a MESSAGE from `from` to sip:<to>@a.test. */
static void
t_message_to(struct harness *h, const char *from, const char *to,
	     const char *cid, int cseq, const char *br,
	     const struct t_creds *creds)
{
	char msg[2048], auth[1024] = "";

	if (creds)
		t_auth_line(creds, auth, sizeof(auth));
	snprintf(msg, sizeof(msg),
		 "MESSAGE sip:%s@a.test SIP/2.0\n"
		 "Via: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK-%s;rport\n"
		 "Max-Forwards: 70\n"
		 "From: <sip:%s>;tag=mt\n"
		 "To: <sip:%s@a.test>\n"
		 "Call-ID: %s\n"
		 "CSeq: %d MESSAGE\n"
		 "%s"
		 "Content-Type: text/plain\n"
		 "Content-Length: 2\n\nhi", to, br, from, to, cid, cseq, auth);
	h_deliver(h, msg, 5071);
}

/* The same to bob. */
static void
t_message(struct harness *h, const char *from, const char *cid, int cseq,
	  const char *br, const struct t_creds *creds)
{
	t_message_to(h, from, "bob", cid, cseq, br, creds);
}

/* The nonce of the first challenge in sent[i] into out. */
static void
t_nonce(struct harness *h, int i, char *out)
{
	const char *p = strstr(h->sent[i], "nonce=\"");

	assert_non_null(p);
	p += 7;
	assert_true(strlen(p) > DIGEST_NONCE_LEN && p[DIGEST_NONCE_LEN] == '"');
	memcpy(out, p, DIGEST_NONCE_LEN);
	out[DIGEST_NONCE_LEN] = '\0';
}

/* Waits for one message, then flushes: exactly one was sent. */
static void
t_one(struct harness *h, const char *prefix)
{
	h_clear(h);
	h_wait_sent(h, 1);
	h_flush(h);
	assert_int_equal(h->n, 1);
	h_assert_sent(h, 0, prefix);
}

/* Pumps the loop until the core has taken n requests (5 s at most). */
static void
t_wait_rx(struct harness *h, uint64_t n)
{
	for (int round = 0; round < 1000 && h->c->st.rx_requests < n; round++) {
		h->ticked = 0;
		uv_timer_start(&h->tick, h_tick_cb, 5, 0);
		while (h->c->st.rx_requests < n && !h->ticked)
			uv_run(&h->loop, UV_RUN_ONCE);
	}
	uv_timer_stop(&h->tick);
	assert_true(h->c->st.rx_requests >= n);
}

/* A challenge for alice on call-id cid; its nonce into nonce. */
static void
t_challenge(struct harness *h, const char *cid, char *nonce)
{
	t_register(h, "alice", cid, 1, "c1", NULL);
	t_one(h, "SIP/2.0 401 ");
	t_nonce(h, 0, nonce);
}

/*
 * The core and a connected account store: the store connects on the
 * loop, so until it has, a lookup gets 503; asks (for an account that
 * does not exist) until the answer is a challenge.
 */
static int
t_setup(void **state)
{
	struct t_creds cr = t_reg_creds("nobody", "x", DIGEST_MD5, NULL);
	char nonce[DIGEST_NONCE_MAX], br[32];
	struct harness *h;

	if (h_setup(state) != 0)
		return -1;
	h = *state;
	t_register(h, "nobody", "warm@t", 1, "w0", NULL);
	t_one(h, "SIP/2.0 401 ");
	t_nonce(h, 0, nonce);
	cr.nonce = nonce;
	for (int i = 1; i < 500; i++) {
		snprintf(br, sizeof(br), "w%d", i);
		cr.nc = (uint32_t)i;
		t_register(h, "nobody", "warm@t", i + 1, br, &cr);
		t_one(h, "SIP/2.0 ");
		if (strncmp(h->sent[0], "SIP/2.0 503", 11) != 0)
			break;
		h->ticked = 0;
		uv_timer_start(&h->tick, h_tick_cb, 10, 0);
		while (!h->ticked)
			uv_run(&h->loop, UV_RUN_ONCE);
	}
	h_assert_sent(h, 0, "SIP/2.0 401 ");
	memset(&h->c->st, 0, sizeof(h->c->st));
	return 0;
}

static void
test_core_auth__register_without_credentials_is_challenged(void **state)
{
	struct harness *h = *state;
	const char *sha, *md5;

	t_register(h, "alice", "c1@t", 1, "a1", NULL);
	t_one(h, "SIP/2.0 401 ");
	sha = strstr(h->sent[0], "algorithm=SHA-256");
	md5 = strstr(h->sent[0], "algorithm=MD5");
	assert_non_null(sha);
	assert_non_null(md5);
	assert_true(sha < md5);		/* RFC 8760: preferred first */
	assert_non_null(strstr(h->sent[0], "qop=\"auth\""));
	assert_null(strstr(h->sent[0], "stale"));
	assert_null(strstr(h->sent[0], "Contact:"));
	assert_int_equal(h->c->st.auth_challenges, 1);
	assert_int_equal(h->c->st.reg_ok, 0);
}

/*
 * The right credentials bind, SHA-256 or MD5.  The challenge, and an
 * authenticated REGISTER once its account is cached, are read from
 * their text as a REGISTER without auth is; one the registrar refuses
 * after its credentials held (423) gets that answer from the parsed
 * path, which takes the nonce-count it finds used for this very
 * request: no replay, no second challenge.
 */
static void
test_core_auth__register_with_credentials_binds(void **state)
{
	struct harness *h = *state;
	char nonce[DIGEST_NONCE_MAX];
	struct t_creds cr = t_reg_creds("alice", T_PASS, DIGEST_SHA256, nonce);

	t_challenge(h, "c2@t", nonce);
	assert_int_equal(h->c->st.reg_scanned, 1);
	t_register(h, "alice", "c2@t", 2, "a2", &cr);	/* looked up */
	t_one(h, "SIP/2.0 200 ");
	assert_int_equal(h->c->st.reg_scanned, 1);
	cr.alg = DIGEST_MD5;
	cr.nc = 2;
	t_register(h, "alice", "c2@t", 3, "a3", &cr);	/* cached */
	t_one(h, "SIP/2.0 200 ");
	assert_non_null(strstr(h->sent[0], "<sip:alice@127.0.0.1:5070>"));
	assert_int_equal(h->c->st.auth_ok, 2);
	assert_int_equal(h->c->st.reg_scanned, 2);
	/* a wrong password and a replay: challenged from the text */
	cr.pass = "wrong";
	cr.nc = 3;
	t_register(h, "alice", "c2@t", 4, "a4", &cr);
	t_one(h, "SIP/2.0 401 ");
	cr.pass = T_PASS;
	cr.nc = 2;
	t_register(h, "alice", "c2@t", 5, "a5", &cr);
	t_one(h, "SIP/2.0 401 ");
	assert_int_equal(h->c->st.reg_scanned, 4);
	assert_int_equal(h->c->st.auth_failures, 1);
	assert_int_equal(h->c->st.auth_replays, 1);
	cr.nc = 4;
	t_register_for(h, "alice", "c2@t", 6, "a6", &cr, 1);
	t_one(h, "SIP/2.0 423 ");
	assert_int_equal(h->c->st.auth_replays, 1);
	/* another's address: the parsed path's 403 */
	cr.nc = 5;
	t_register(h, "bob", "c2@t", 7, "a7", &cr);
	t_one(h, "SIP/2.0 403 ");
	assert_int_equal(h->c->st.auth_forbidden, 1);
	assert_int_equal(h->c->st.reg_ok, 2);
}

/* While the account is looked up, a retransmission is absorbed: one
 * lookup, one answer. */
static void
test_core_auth__retransmission_during_lookup_is_absorbed(void **state)
{
	struct harness *h = *state;
	char nonce[DIGEST_NONCE_MAX];
	struct t_creds cr = t_reg_creds("alice", T_PASS, DIGEST_SHA256, nonce);
	uint64_t rx;

	t_challenge(h, "c3@t", nonce);
	rx = h->c->st.rx_requests;
	kill(t_redis.pid, SIGSTOP);	/* the lookup stays pending */
	t_register(h, "alice", "c3@t", 2, "a4", &cr);
	t_register(h, "alice", "c3@t", 2, "a4", &cr);
	t_wait_rx(h, rx + 2);
	kill(t_redis.pid, SIGCONT);
	t_one(h, "SIP/2.0 200 ");
	assert_int_equal(h->c->st.retrans_absorbed, 1);
	assert_int_equal(h->c->st.auth_ok, 1);
	assert_int_equal(h->c->st.auth_replays, 0);
}

/* The same for a MESSAGE: one transaction, one copy forwarded. */
static void
test_core_auth__message_retransmission_makes_one_transaction(void **state)
{
	struct harness *h = *state;
	char nonce[DIGEST_NONCE_MAX], bn[DIGEST_NONCE_MAX];
	struct t_creds bob = t_reg_creds("bob", "pw-bob", DIGEST_MD5, bn);
	struct t_creds cr = { "alice", T_PASS, DIGEST_SHA256, nonce, 1,
			      "sip:bob@a.test", "MESSAGE",
			      "Proxy-Authorization" };
	uint64_t rx;

	t_register(h, "bob", "b1@t", 1, "b1", NULL);
	t_one(h, "SIP/2.0 401 ");
	t_nonce(h, 0, bn);
	t_register(h, "bob", "b1@t", 2, "b2", &bob);
	t_one(h, "SIP/2.0 200 ");

	t_message(h, "alice@a.test", "m1@t", 1, "m1", NULL);
	t_one(h, "SIP/2.0 407 ");
	assert_non_null(strstr(h->sent[0], "Proxy-Authenticate: Digest"));
	t_nonce(h, 0, nonce);
	rx = h->c->st.rx_requests;
	kill(t_redis.pid, SIGSTOP);
	t_message(h, "alice@a.test", "m1@t", 2, "m2", &cr);
	t_message(h, "alice@a.test", "m1@t", 2, "m2", &cr);
	t_wait_rx(h, rx + 2);
	assert_int_equal(h->c->st.stx_live, 0);
	kill(t_redis.pid, SIGCONT);
	t_one(h, "MESSAGE sip:bob@127.0.0.1:5070 ");
	assert_null(strstr(h->sent[0], "Proxy-Authorization"));
	assert_int_equal(h->c->st.stx_live, 1);
	assert_int_equal(h->c->st.retrans_absorbed, 1);
}

/* A used nonce-count on another request is a replay; on the very same
 * request, within Timer F, a retransmission. */
static void
test_core_auth__nonce_count_replay_is_refused(void **state)
{
	struct harness *h = *state;
	char nonce[DIGEST_NONCE_MAX];
	struct t_creds cr = t_reg_creds("alice", T_PASS, DIGEST_SHA256, nonce);

	cr.nc = 7;
	t_challenge(h, "c5@t", nonce);
	t_register(h, "alice", "c5@t", 2, "a5", &cr);
	t_one(h, "SIP/2.0 200 ");
	/* The client missed the 200 and sends the very same request: a
	 * retransmission, answered again. */
	t_register(h, "alice", "c5@t", 2, "a5", &cr);
	t_one(h, "SIP/2.0 200 ");
	assert_int_equal(h->c->st.auth_replays, 0);
	t_register(h, "alice", "c5@t", 3, "a6", &cr);	/* nc 7 again */
	t_one(h, "SIP/2.0 401 ");
	assert_null(strstr(h->sent[0], "stale"));
	cr.nc = 6;					/* lower */
	t_register(h, "alice", "c5@t", 4, "a7", &cr);
	t_one(h, "SIP/2.0 401 ");
	assert_int_equal(h->c->st.auth_replays, 2);
	cr.nc = 8;
	t_register(h, "alice", "c5@t", 5, "a8", &cr);
	t_one(h, "SIP/2.0 200 ");
}

/* On the test's clock: past nonce_lifetime_s the right response gets
 * stale=true; a wrong one a plain challenge. */
static void
test_core_auth__stale_nonce_gets_stale_true(void **state)
{
	struct harness *h = *state;
	char nonce[DIGEST_NONCE_MAX];
	struct t_creds cr = t_reg_creds("alice", T_PASS, DIGEST_MD5, nonce);

	t_challenge(h, "c6@t", nonce);
	h->now_s += 61;
	t_register(h, "alice", "c6@t", 2, "a9", &cr);
	t_one(h, "SIP/2.0 401 ");
	assert_non_null(strstr(h->sent[0], "stale=true"));
	assert_int_equal(h->c->st.auth_stale, 1);
	cr.pass = "wrong";
	t_register(h, "alice", "c6@t", 3, "a10", &cr);
	t_one(h, "SIP/2.0 401 ");
	assert_null(strstr(h->sent[0], "stale"));
	assert_int_equal(h->c->st.auth_failures, 1);
}

static void
test_core_auth__forged_nonce_and_wrong_password_are_challenged(void **state)
{
	struct harness *h = *state;
	char nonce[DIGEST_NONCE_MAX] = "0000000000000000000000000000000000"
				       "0000000000000000000000";
	struct t_creds cr = t_reg_creds("alice", "guess", DIGEST_SHA256, nonce);

	t_register(h, "alice", "c7@t", 1, "f1", &cr);
	t_one(h, "SIP/2.0 401 ");
	assert_null(strstr(h->sent[0], "stale"));
	t_challenge(h, "c7@t", nonce);
	for (int i = 0; i < 20; i++) {
		char br[16];

		snprintf(br, sizeof(br), "f%d", i + 2);
		cr.nc = (uint32_t)i + 1;
		t_register(h, "alice", "c7@t", i + 2, br, &cr);
		t_one(h, "SIP/2.0 401 ");
	}
	assert_int_equal(h->c->st.auth_failures, 21);
	assert_int_equal(h->c->st.reg_ok, 0);
}

/* alice's right credentials on bob's AOR, or bob's From: 403. */
static void
test_core_auth__other_users_address_is_forbidden(void **state)
{
	struct harness *h = *state;
	char nonce[DIGEST_NONCE_MAX];
	struct t_creds cr = t_reg_creds("alice", T_PASS, DIGEST_SHA256, nonce);

	t_register(h, "bob", "c8@t", 1, "h1", NULL);
	t_one(h, "SIP/2.0 401 ");
	t_nonce(h, 0, nonce);
	t_register(h, "bob", "c8@t", 2, "h2", &cr);
	t_one(h, "SIP/2.0 403 ");

	t_message(h, "bob@a.test", "c9@t", 1, "h3", NULL);
	t_one(h, "SIP/2.0 407 ");
	t_nonce(h, 0, nonce);
	cr.uri = "sip:bob@a.test";
	cr.method = "MESSAGE";
	cr.header = "Proxy-Authorization";
	t_message(h, "bob@a.test", "c9@t", 2, "h4", &cr);
	t_one(h, "SIP/2.0 403 ");
	assert_int_equal(h->c->st.auth_forbidden, 2);
	assert_int_equal(h->c->st.forwarded, 0);
}

/* A foreign From is none of our business; OPTIONS to us neither. */
static void
test_core_auth__foreign_from_needs_no_credentials(void **state)
{
	struct harness *h = *state;

	t_message_to(h, "eve@b.test", "nobody-here", "c10@t", 1, "x1", NULL);
	t_one(h, "SIP/2.0 404 ");	/* routed: nobody has that AOR */
	h_deliver(h, "OPTIONS sip:127.0.0.1:5060 SIP/2.0\n"
		  "Via: SIP/2.0/UDP 127.0.0.1:5072;branch=z9hG4bK-o1\n"
		  "Max-Forwards: 70\nFrom: <sip:alice@a.test>;tag=o\n"
		  "To: <sip:127.0.0.1:5060>\nCall-ID: o1@t\nCSeq: 1 OPTIONS\n"
		  "Content-Length: 0\n\n", 5072);
	t_one(h, "SIP/2.0 200 ");
	assert_int_equal(h->c->st.auth_challenges, 0);
}

/* KwikyKonf guests: their own address and their room, nothing else;
 * no Redis involved. */
static void
test_core_auth__guest_uses_own_address_and_room_only(void **state)
{
	struct harness *h = *state;
	unsigned char key[KEY_LEN];
	struct auth_guest g, other;
	char nonce[DIGEST_NONCE_MAX];
	struct t_creds cr = t_reg_creds(NULL, NULL, DIGEST_MD5, nonce);

	assert_int_equal(key_load(&h->cfg, KEY_USE_GUEST, key), 0);
	assert_int_equal(auth_guest_mint(key, "room1", 5, h->now_s, 600, &g), 0);
	assert_int_equal(auth_guest_mint(key, "room1", 5, h->now_s, 600,
					 &other), 0);
	cr.user = g.username;
	cr.pass = g.password;
	kill(t_redis.pid, SIGSTOP);	/* guests need no account store */
	t_register(h, g.user, "g1@t", 1, "g1", NULL);
	t_one(h, "SIP/2.0 401 ");
	t_nonce(h, 0, nonce);
	t_register(h, g.user, "g1@t", 2, "g2", &cr);
	t_one(h, "SIP/2.0 200 ");
	cr.nc = 2;
	t_register(h, "conf.room1", "g1@t", 3, "g3", &cr);
	t_one(h, "SIP/2.0 200 ");
	cr.nc = 3;
	t_register(h, other.user, "g1@t", 4, "g4", &cr);
	t_one(h, "SIP/2.0 403 ");
	cr.nc = 4;
	t_register(h, "conf.room2", "g1@t", 5, "g5", &cr);
	t_one(h, "SIP/2.0 403 ");
	/* Expired credentials are challenged again. */
	h->now_s += 601;
	t_register(h, g.user, "g2@t", 1, "g6", NULL);
	t_one(h, "SIP/2.0 401 ");
	t_nonce(h, 0, nonce);
	cr.nc = 1;
	t_register(h, g.user, "g2@t", 2, "g7", &cr);
	t_one(h, "SIP/2.0 401 ");
	kill(t_redis.pid, SIGCONT);
}

/* A Redis that does not answer: 503 with Retry-After, never silence. */
static void
test_core_auth__silent_redis_gets_503_retry_after(void **state)
{
	struct harness *h = *state;
	char nonce[DIGEST_NONCE_MAX];
	struct t_creds cr = t_reg_creds("carol", "pw", DIGEST_SHA256, nonce);

	t_register(h, "carol", "c11@t", 1, "r1", NULL);
	t_one(h, "SIP/2.0 401 ");
	t_nonce(h, 0, nonce);
	kill(t_redis.pid, SIGSTOP);
	t_register(h, "carol", "c11@t", 2, "r2", &cr);
	h_clear(h);
	h_wait_sent(h, 1);
	kill(t_redis.pid, SIGCONT);
	h_flush(h);
	assert_int_equal(h->n, 1);
	h_assert_sent(h, 0, "SIP/2.0 503 ");
	assert_non_null(strstr(h->sent[0], "Retry-After: "));
	assert_int_equal(h->c->st.auth_unavailable, 1);
}

/* Stopping the core while a lookup is pending frees the held request
 * (the sanitizer build checks that nothing leaks or is used after). */
static void
test_core_auth__stop_with_a_lookup_pending(void **state)
{
	struct harness *h = *state;
	char nonce[DIGEST_NONCE_MAX];
	struct t_creds cr = t_reg_creds("alice", T_PASS, DIGEST_SHA256, nonce);
	uint64_t rx;

	t_challenge(h, "c12@t", nonce);
	rx = h->c->st.rx_requests;
	kill(t_redis.pid, SIGSTOP);
	t_register(h, "alice", "c12@t", 2, "s1", &cr);
	t_wait_rx(h, rx + 1);
	h_flush(h);
	assert_int_equal(h->n, 1);	/* only the 401 of t_challenge */
	core_stop(h->c);	/* h_teardown's second core_stop: a no-op */
	kill(t_redis.pid, SIGCONT);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, t_setup, h_teardown)
	const struct CMUnitTest tests[] = {
		T(test_core_auth__register_without_credentials_is_challenged),
		T(test_core_auth__register_with_credentials_binds),
		T(test_core_auth__retransmission_during_lookup_is_absorbed),
		T(test_core_auth__message_retransmission_makes_one_transaction),
		T(test_core_auth__nonce_count_replay_is_refused),
		T(test_core_auth__stale_nonce_gets_stale_true),
		T(test_core_auth__forged_nonce_and_wrong_password_are_challenged),
		T(test_core_auth__other_users_address_is_forbidden),
		T(test_core_auth__foreign_from_needs_no_credentials),
		T(test_core_auth__guest_uses_own_address_and_room_only),
		T(test_core_auth__silent_redis_gets_503_retry_after),
		T(test_core_auth__stop_with_a_lookup_pending),
	};
#undef T

	return cmocka_run_group_tests(tests, t_group_setup, t_group_teardown);
}
