/*
 * test_digest.c - digest credentials against RFC 7616's worked example
 * (MD5 and SHA-256), hostile Authorization headers, stateless nonces
 * (forged, other Call-ID, other realm, stale, future) and the
 * nonce-count table (replays, expiry, a full table, and a differential
 * run against a trivial model).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/digest.h"

/* RFC 7616 3.9.1. */
#define RFC_USER	"Mufasa"
#define RFC_REALM	"http-auth@example.org"
#define RFC_PASS	"Circle of Life"
#define RFC_NONCE	"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
#define RFC_CNONCE	"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
#define RFC_MD5		"8ca523f5e9506fed4657c9700eebdbec"
#define RFC_SHA256	"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"

static const unsigned char key[32] = "0123456789abcdef0123456789abcdef";

static int
parse(const char *h, struct digest_creds *c)
{
	return digest_creds_parse(h, strlen(h), c);
}

static void
rfc_header(char *out, size_t cap, const char *alg, const char *resp)
{
	snprintf(out, cap,
		 "Digest username=\"" RFC_USER "\", realm=\"" RFC_REALM "\", "
		 "uri=\"/dir/index.html\", algorithm=%s, nonce=\"" RFC_NONCE "\", "
		 "nc=00000001, cnonce=\"" RFC_CNONCE "\", qop=auth, "
		 "response=\"%s\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
		 alg, resp);
}

static void
test_digest__rfc7616_example_md5_and_sha256(void **state)
{
	static const struct {
		const char *alg, *resp;
		enum digest_alg id;
	} v[] = {
		{ "MD5", RFC_MD5, DIGEST_MD5 },
		{ "SHA-256", RFC_SHA256, DIGEST_SHA256 },
	};

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		char h[512], ha1[DIGEST_HEX_MAX];
		struct digest_creds c;

		rfc_header(h, sizeof(h), v[i].alg, v[i].resp);
		assert_int_equal(parse(h, &c), 0);
		assert_int_equal(c.alg, v[i].id);
		assert_int_equal(c.nc_value, 1);
		assert_int_equal(c.username.len, strlen(RFC_USER));
		assert_int_equal(digest_ha1(v[i].id, RFC_USER, RFC_REALM, RFC_PASS, ha1), 0);
		assert_int_equal(strlen(ha1), digest_alg_hexlen(v[i].id));
		assert_int_equal(digest_response_check(&c, ha1, "GET", 3), 0);
		/* Another method, another password: refused. */
		assert_int_equal(digest_response_check(&c, ha1, "PUT", 3), -EACCES);
		assert_int_equal(digest_ha1(v[i].id, RFC_USER, RFC_REALM, "circle of life", ha1), 0);
		assert_int_equal(digest_response_check(&c, ha1, "GET", 3), -EACCES);
	}
}

static void
test_digest__upper_case_response_and_lower_case_names(void **state)
{
	char h[512], up[65], ha1[DIGEST_HEX_MAX];
	struct digest_creds c;

	(void)state;
	for (size_t i = 0; i <= strlen(RFC_MD5); i++)
		up[i] = (char)(RFC_MD5[i] >= 'a' ? RFC_MD5[i] - 32 : RFC_MD5[i]);
	snprintf(h, sizeof(h),
		 "digest USERNAME=\"" RFC_USER "\",realm=\"" RFC_REALM "\",\r\n "
		 "URI=\"/dir/index.html\",algorithm=md5,nonce=\"" RFC_NONCE "\","
		 "nc=00000001,cnonce=\"" RFC_CNONCE "\",qop=\"auth\",response=\"%s\"", up);
	assert_int_equal(parse(h, &c), 0);
	digest_ha1(DIGEST_MD5, RFC_USER, RFC_REALM, RFC_PASS, ha1);
	assert_int_equal(digest_response_check(&c, ha1, "GET", 3), 0);
}

static void
test_digest__hostile_headers_are_refused(void **state)
{
	static const struct {
		const char *h;
		int rc;
	} v[] = {
		{ "", -EINVAL },
		{ "Digest", -EINVAL },
		{ "Basic dXNlcjpwYXNz", -EINVAL },
		{ "Digestusername=\"a\"", -EINVAL },
		{ "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\"", -EINVAL },
		{ "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x", -EINVAL },
		{ "Digest username=\"a\", username=\"b\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\"", -EINVAL },
		{ "Digest username=\"a\\\"b\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\"", -EINVAL },
		{ "Digest username=\"a\" realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\"", -EINVAL },
		{ "Digest username=, realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\"", -EINVAL },
		{ "Digest =\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\"", -EINVAL },
		{ "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\",", -EINVAL },
		{ "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\", nc=1", -EINVAL },
		{ "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\", nc=0000000g", -EINVAL },
		{ "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\", algorithm=MD5-sess", -ENOTSUP },
		{ "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\", algorithm=SHA-512-256", -ENOTSUP },
		{ "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\", foo=\"bar\"", 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(*v); i++) {
		struct digest_creds c;

		if (parse(v[i].h, &c) != v[i].rc)
			fail_msg("header %zu \"%s\": want %d", i, v[i].h, v[i].rc);
	}
}

static void
test_digest__response_needs_qop_auth_nc_and_cnonce(void **state)
{
	static const char *v[] = {
		"Digest username=\"" RFC_USER "\", realm=\"" RFC_REALM "\", uri=\"/dir/index.html\", "
		"nonce=\"" RFC_NONCE "\", response=\"" RFC_MD5 "\"",
		"Digest username=\"" RFC_USER "\", realm=\"" RFC_REALM "\", uri=\"/dir/index.html\", "
		"nonce=\"" RFC_NONCE "\", qop=auth-int, nc=00000001, cnonce=\"x\", response=\"" RFC_MD5 "\"",
		"Digest username=\"" RFC_USER "\", realm=\"" RFC_REALM "\", uri=\"/dir/index.html\", "
		"nonce=\"" RFC_NONCE "\", qop=auth, nc=00000001, response=\"" RFC_MD5 "\"",
	};
	char ha1[DIGEST_HEX_MAX];

	(void)state;
	digest_ha1(DIGEST_MD5, RFC_USER, RFC_REALM, RFC_PASS, ha1);
	for (size_t i = 0; i < sizeof(v) / sizeof(*v); i++) {
		struct digest_creds c;

		assert_int_equal(parse(v[i], &c), 0);
		assert_int_equal(digest_response_check(&c, ha1, "GET", 3), -EINVAL);
	}
}

static enum digest_nonce_state
check(const char *nonce, uint64_t now, const char *realm, const char *callid,
      uint64_t *minted)
{
	struct digest_str n = { nonce, strlen(nonce) };

	return digest_nonce_check(key, sizeof(key), now, 300, realm,
				  strlen(realm), callid, strlen(callid), &n,
				  minted);
}

static void
test_digest__nonce_is_bound_to_key_realm_callid_and_time(void **state)
{
	char n[DIGEST_NONCE_MAX], n2[DIGEST_NONCE_MAX];
	uint64_t minted = 0;
	unsigned char other[32];

	(void)state;
	digest_nonce_make(key, sizeof(key), 1000000, 7, "a.example", 9,
			  "call-1@h", 8, n);
	assert_int_equal(strlen(n), DIGEST_NONCE_LEN);
	assert_int_equal(check(n, 1000000, "a.example", "call-1@h", &minted), DIGEST_NONCE_OK);
	assert_int_equal(minted, 1000000);
	assert_int_equal(check(n, 1000300, "a.example", "call-1@h", &minted), DIGEST_NONCE_OK);
	assert_int_equal(check(n, 1000301, "a.example", "call-1@h", &minted), DIGEST_NONCE_STALE);
	assert_int_equal(check(n, 1000000, "b.example", "call-1@h", &minted), DIGEST_NONCE_BAD);
	assert_int_equal(check(n, 1000000, "a.example", "call-2@h", &minted), DIGEST_NONCE_BAD);
	/* Realm and Call-ID are length-prefixed: moving bytes between them
	 * does not give the same MAC. */
	assert_int_equal(check(n, 1000000, "a.exampl", "ecall-1@h", &minted), DIGEST_NONCE_BAD);
	/* Minted by a host whose clock is ahead: within the skew only. */
	assert_int_equal(check(n, 1000000 - DIGEST_CLOCK_SKEW, "a.example", "call-1@h", &minted),
			 DIGEST_NONCE_OK);
	assert_int_equal(check(n, 1000000 - DIGEST_CLOCK_SKEW - 1, "a.example", "call-1@h", &minted),
			 DIGEST_NONCE_BAD);
	/* Another key (another cluster) does not verify it. */
	memcpy(other, key, sizeof(other));
	other[0] ^= 1;
	{
		struct digest_str s = { n, strlen(n) };

		assert_int_equal(digest_nonce_check(other, sizeof(other), 1000000, 300,
						    "a.example", 9, "call-1@h", 8, &s, &minted),
				 DIGEST_NONCE_BAD);
	}
	/* A changed time, a changed MAC, garbage and a truncation: forged. */
	strcpy(n2, n);
	n2[15] = n2[15] == '0' ? '1' : '0';
	assert_int_equal(check(n2, 1000000, "a.example", "call-1@h", &minted), DIGEST_NONCE_BAD);
	strcpy(n2, n);
	n2[DIGEST_NONCE_LEN - 1] = n2[DIGEST_NONCE_LEN - 1] == '0' ? '1' : '0';
	assert_int_equal(check(n2, 1000000, "a.example", "call-1@h", &minted), DIGEST_NONCE_BAD);
	n2[10] = 'x';
	assert_int_equal(check(n2, 1000000, "a.example", "call-1@h", &minted), DIGEST_NONCE_BAD);
	n2[DIGEST_NONCE_LEN - 2] = '\0';
	assert_int_equal(check(n2, 1000000, "a.example", "call-1@h", &minted), DIGEST_NONCE_BAD);
	assert_int_equal(check("", 1000000, "a.example", "call-1@h", &minted), DIGEST_NONCE_BAD);
	/* Two nonces in the same second differ by their salt. */
	digest_nonce_make(key, sizeof(key), 1000000, 8, "a.example", 9, "call-1@h", 8, n2);
	assert_string_not_equal(n, n2);
}

static void
test_digest__client_response_round_trips(void **state)
{
	char n[DIGEST_NONCE_MAX], ha1[DIGEST_HEX_MAX], resp[DIGEST_HEX_MAX], h[512];
	struct digest_str uri = { "sip:a.example", 13 }, nonce, nc = { "0000000a", 8 },
			  cnonce = { "abc", 3 };
	struct digest_creds c;

	(void)state;
	digest_nonce_make(key, sizeof(key), 5000, 1, "a.example", 9, "c@h", 3, n);
	nonce = (struct digest_str){ n, strlen(n) };
	digest_ha1(DIGEST_SHA256, "alice", "a.example", "secret", ha1);
	assert_int_equal(digest_response(DIGEST_SHA256, ha1, "REGISTER", 8, &uri,
					 &nonce, &nc, &cnonce, resp), 0);
	snprintf(h, sizeof(h),
		 "Digest username=\"alice\",realm=\"a.example\",nonce=\"%s\","
		 "uri=\"sip:a.example\",response=\"%s\",algorithm=SHA-256,"
		 "cnonce=\"abc\",qop=auth,nc=0000000a", n, resp);
	assert_int_equal(parse(h, &c), 0);
	assert_int_equal(c.nc_value, 10);
	assert_int_equal(digest_response_check(&c, ha1, "REGISTER", 8), 0);
	/* An MD5 HA1 does not serve SHA-256 credentials. */
	digest_ha1(DIGEST_MD5, "alice", "a.example", "secret", ha1);
	assert_int_equal(digest_response_check(&c, ha1, "REGISTER", 8), -EINVAL);
}

/* The client side, for the cluster's answers to a trunk gateway: RFC
 * 2617 3.5's example with qop=auth, and the same without qop (RFC
 * 2069), H(HA1:nonce:HA2), as Asterisk's challenges ask. */
static void
test_digest__client_response_with_and_without_qop(void **state)
{
	struct digest_str uri = { "/dir/index.html", 15 };
	struct digest_str nonce = { "dcd98b7102dd2f0e8b11d0f600bfb0c093", 34 };
	struct digest_str nc = { "00000001", 8 }, cnonce = { "0a4f113b", 8 };
	char ha1[DIGEST_HEX_MAX], out[DIGEST_HEX_MAX];

	(void)state;
	assert_int_equal(digest_ha1(DIGEST_MD5, "Mufasa", "testrealm@host.com",
				    "Circle Of Life", ha1), 0);
	assert_int_equal(digest_response(DIGEST_MD5, ha1, "GET", 3, &uri,
					 &nonce, &nc, &cnonce, out), 0);
	assert_string_equal(out, "6629fae49393a05397450978507c4ef1");
	assert_int_equal(digest_response(DIGEST_MD5, ha1, "GET", 3, &uri,
					 &nonce, NULL, NULL, out), 0);
	assert_string_equal(out, "670fd8c2df070c60b045671b8b24ff02");
}

static void
mint(char *n, uint64_t now, uint32_t salt)
{
	digest_nonce_make(key, sizeof(key), now, salt, "r", 1, "c", 1, n);
}

static void
test_digest__nc_refuses_replays_and_forgets_expired_nonces(void **state)
{
	struct digest_nc_table *t;
	char n1[DIGEST_NONCE_MAX], n2[DIGEST_NONCE_MAX];
	struct digest_str s1, s2;

	(void)state;
	assert_int_equal(digest_nc_new(&t, 8, 300), 0);
	mint(n1, 100, 1);
	mint(n2, 100, 2);
	s1 = (struct digest_str){ n1, strlen(n1) };
	s2 = (struct digest_str){ n2, strlen(n2) };
	assert_int_equal(digest_nc_accept(t, &s1, 100, 1, 100), 0);
	assert_int_equal(digest_nc_accept(t, &s1, 100, 1, 101), -EALREADY);
	assert_int_equal(digest_nc_accept(t, &s1, 100, 2, 101), 0);
	assert_int_equal(digest_nc_accept(t, &s1, 100, 2, 101), -EALREADY);
	assert_int_equal(digest_nc_accept(t, &s1, 100, 1, 101), -EALREADY);
	/* A nonce's count is its own. */
	assert_int_equal(digest_nc_accept(t, &s2, 100, 1, 102), 0);
	assert_int_equal(digest_nc_count(t), 2);
	/* Expired: the slots are free again (a stale nonce never gets here:
	 * digest_nonce_check says STALE first). */
	assert_int_equal(digest_nc_accept(t, &s1, 100, 3, 400), 0);
	mint(n1, 500, 3);
	s1 = (struct digest_str){ n1, strlen(n1) };
	assert_int_equal(digest_nc_accept(t, &s1, 500, 1, 500), 0);
	assert_int_equal(digest_nc_count(t), 1);
	digest_nc_free(t);
	digest_nc_free(NULL);
}

static void
test_digest__nc_table_full_of_live_nonces_says_enospc(void **state)
{
	struct digest_nc_table *t;
	int full = 0;

	(void)state;
	/* 16 slots: all live nonces cannot fit more than 16. */
	assert_int_equal(digest_nc_new(&t, 8, 300), 0);
	for (uint32_t i = 0; i < 40; i++) {
		char n[DIGEST_NONCE_MAX];
		struct digest_str s;
		int rc;

		mint(n, 100, i);
		s = (struct digest_str){ n, strlen(n) };
		rc = digest_nc_accept(t, &s, 100, 1, 100);
		assert_true(rc == 0 || rc == -ENOSPC);
		full += rc == -ENOSPC;
	}
	assert_int_equal(full, 40 - 16);
	assert_int_equal(digest_nc_count(t), 16);
	/* Once they expire, new nonces get in. */
	{
		char n[DIGEST_NONCE_MAX];
		struct digest_str s;

		mint(n, 500, 99);
		s = (struct digest_str){ n, strlen(n) };
		assert_int_equal(digest_nc_accept(t, &s, 500, 1, 500), 0);
	}
	digest_nc_free(t);
}

/* Differential: random accepts against a model that keeps every nonce. */
static void
test_digest__nc_matches_a_model(void **state)
{
	enum { NONCES = 200, OPS = 20000 };
	static char n[NONCES][DIGEST_NONCE_MAX];
	uint64_t minted[NONCES];
	uint32_t model[NONCES];
	struct digest_nc_table *t;
	uint64_t now = 1000;

	(void)state;
	srand(42);
	assert_int_equal(digest_nc_new(&t, 4096, 60), 0);
	for (int i = 0; i < NONCES; i++) {
		minted[i] = now;
		model[i] = 0;
		mint(n[i], now, (uint32_t)i);
	}
	for (int op = 0; op < OPS; op++) {
		int i = rand() % NONCES;
		uint32_t nc = (uint32_t)(rand() % 50) + 1;
		struct digest_str s;
		int want, rc;

		if (op % 100 == 0)
			now++;
		if (minted[i] + 60 < now) {	/* the model's nonce expired: mint anew */
			minted[i] = now;
			model[i] = 0;
			mint(n[i], now, (uint32_t)(op + NONCES));
		}
		s = (struct digest_str){ n[i], strlen(n[i]) };
		want = nc > model[i] ? 0 : -EALREADY;
		rc = digest_nc_accept(t, &s, minted[i], nc, now);
		if (rc != want)
			fail_msg("op %d nonce %d nc %u: got %d want %d", op, i, nc, rc, want);
		if (!rc)
			model[i] = nc;
	}
	digest_nc_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_digest__rfc7616_example_md5_and_sha256),
		cmocka_unit_test(test_digest__upper_case_response_and_lower_case_names),
		cmocka_unit_test(test_digest__hostile_headers_are_refused),
		cmocka_unit_test(test_digest__response_needs_qop_auth_nc_and_cnonce),
		cmocka_unit_test(test_digest__nonce_is_bound_to_key_realm_callid_and_time),
		cmocka_unit_test(test_digest__client_response_round_trips),
		cmocka_unit_test(test_digest__client_response_with_and_without_qop),
		cmocka_unit_test(test_digest__nc_refuses_replays_and_forgets_expired_nonces),
		cmocka_unit_test(test_digest__nc_table_full_of_live_nonces_says_enospc),
		cmocka_unit_test(test_digest__nc_matches_a_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
