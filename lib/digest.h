/*
 * digest.h - HTTP digest authentication as SIP uses it (RFC 3261 22,
 * RFC 7616, RFC 8760): parsing the Authorization / Proxy-Authorization
 * credentials, the response computation for MD5 and SHA-256 with
 * qop=auth, stateless nonces and a bounded nonce-count table.
 *
 * Nonces carry their own proof: the minting time, a salt and an
 * HMAC-SHA256 under the cluster secret over time, salt, realm and the
 * request's Call-ID, so any core on any host verifies a nonce without
 * shared state, and an expired one is told apart (stale=true) from a
 * forged one.  Binding the Call-ID means every use of a nonce arrives
 * at the core that the Call-ID hashes to, so that core's nonce-count
 * table alone refuses replays (Kamailio's auth module offers the same
 * binding, auth_checks_*); a client that reuses a nonce for a new
 * Call-ID is challenged again with stale=true, one round trip.
 *
 * Everything here is pure computation with the clock passed in; the
 * caller owns every buffer.  Credentials are slices into the message.
 */
#ifndef SM_DIGEST_H
#define SM_DIGEST_H

#include <stddef.h>
#include <stdint.h>

enum digest_alg {
	DIGEST_MD5,
	DIGEST_SHA256,
	DIGEST_NALGS
};

/* Longest hex digest (SHA-256) plus its NUL. */
#define DIGEST_HEX_MAX	65
/* Nonce text: 8 bytes of time, 4 of salt, 16 of MAC, in hex, plus NUL. */
#define DIGEST_NONCE_LEN 56
#define DIGEST_NONCE_MAX (DIGEST_NONCE_LEN + 1)

/* The name RFC 7616 gives the algorithm ("MD5", "SHA-256"). */
const char *digest_alg_name(enum digest_alg alg);

/* Hex length of the algorithm's digests (32 or 64). */
size_t digest_alg_hexlen(enum digest_alg alg);

/* One auth-param value: a slice into the header, quotes removed. */
struct digest_str {
	const char *s;
	size_t len;
};

/* Credentials of one Authorization or Proxy-Authorization header. */
struct digest_creds {
	enum digest_alg alg;		/* MD5 when the header names none */
	struct digest_str username;
	struct digest_str realm;
	struct digest_str nonce;
	struct digest_str uri;
	struct digest_str response;
	struct digest_str cnonce;
	struct digest_str nc;
	struct digest_str qop;
	struct digest_str opaque;
	uint32_t nc_value;		/* nc parsed as 8 hex digits */
};

/*
 * Parses a header value "Digest k=v, k="v", ..." into c (slices into
 * hdr, which must outlive c).  Unknown parameters are skipped.  Returns
 * 0; -EINVAL when the scheme is not Digest, the syntax is broken, a
 * parameter repeats, or username, realm, nonce, uri or response is
 * missing; -ENOTSUP for an algorithm other than MD5 or SHA-256 (the
 * caller may then challenge again).  A quoted value keeps its
 * backslash escapes: usernames and realms with quotes or backslashes
 * are refused as -EINVAL rather than unescaped into a copy.
 */
int digest_creds_parse(const char *hdr, size_t len, struct digest_creds *c);

/*
 * HA1 = H(username ":" realm ":" password), lower-case hex into out
 * (DIGEST_HEX_MAX bytes).  What the account store keeps instead of
 * passwords; used by account tooling and tests.  Returns 0 or -EINVAL.
 */
int digest_ha1(enum digest_alg alg, const char *user, const char *realm,
	       const char *password, char *out);

/*
 * Checks c->response for a request with this method, given the
 * account's HA1 (hex, of c->alg) for c->username and c->realm.
 * Requires qop=auth with cnonce and nc (the challenge always offers
 * it: without nc there is no replay protection).  Compares in constant
 * time.  Returns 0 when the response is right, -EACCES when it is
 * wrong, -EINVAL when the credentials lack qop=auth, cnonce or nc.
 */
int digest_response_check(const struct digest_creds *c, const char *ha1,
			  const char *method, size_t method_len);

/*
 * Computes the response a client would send (qop=auth) into out
 * (DIGEST_HEX_MAX bytes): for tests and for the cluster's own clients.
 * nc and cnonce NULL: the response without qop (RFC 2069), which a
 * challenge that offers no qop asks for.
 */
int digest_response(enum digest_alg alg, const char *ha1,
		    const char *method, size_t method_len,
		    const struct digest_str *uri, const struct digest_str *nonce,
		    const struct digest_str *nc, const struct digest_str *cnonce,
		    char *out);

/*
 * Mints a nonce for (realm, callid) at time now (seconds) under key
 * into out (DIGEST_NONCE_MAX bytes, NUL-terminated).  salt makes two
 * nonces minted in the same second differ; any value will do.
 */
void digest_nonce_make(const unsigned char *key, size_t keylen,
		       uint64_t now, uint32_t salt,
		       const char *realm, size_t realm_len,
		       const char *callid, size_t callid_len, char *out);

enum digest_nonce_state {
	DIGEST_NONCE_OK,	/* ours, for this realm and Call-ID, fresh */
	DIGEST_NONCE_STALE,	/* ours, but older than lifetime: stale=true */
	DIGEST_NONCE_BAD	/* not ours, or for another realm/Call-ID */
};

/*
 * Verifies a nonce from credentials against (realm, callid) at time
 * now.  A nonce minted more than DIGEST_CLOCK_SKEW seconds in the
 * future (another host's clock) is BAD.  Writes the minting time to
 * *minted when the nonce is ours (OK or STALE).
 */
#define DIGEST_CLOCK_SKEW 30
enum digest_nonce_state
digest_nonce_check(const unsigned char *key, size_t keylen, uint64_t now,
		   uint64_t lifetime, const char *realm, size_t realm_len,
		   const char *callid, size_t callid_len,
		   const struct digest_str *nonce, uint64_t *minted);

/*
 * Nonce-count table: for each nonce seen within its lifetime, the
 * highest nc accepted.  Fixed size (no allocation per request), open
 * addressing keyed by the nonce's MAC (unforgeable, so an attacker
 * cannot aim at one bucket); entries expire with their nonce.  Only
 * nonces whose response verified are entered, so only authenticated
 * users can fill it.
 */
struct digest_nc_table;

/*
 * Allocates a table for about cap live nonces (2 * cap slots, so a
 * probe run stays short; a run that finds no free slot within 64 probes
 * is "full").  -ENOMEM.
 */
int digest_nc_new(struct digest_nc_table **out, size_t cap, uint64_t lifetime);

/* Frees t; NULL is fine. */
void digest_nc_free(struct digest_nc_table *t);

/*
 * Accepts nc for a verified nonce minted at time minted: 0 when nc is
 * higher than any accepted before for it (and records it), -EALREADY
 * for a replay (nc not above the highest seen), -ENOSPC when the table
 * is full of live nonces (the caller challenges again: a fresh nonce
 * after the old ones expire).
 */
int digest_nc_accept(struct digest_nc_table *t, const struct digest_str *nonce,
		     uint64_t minted, uint32_t nc, uint64_t now);

/* Live entries, for metrics and tests: walks the whole table. */
size_t digest_nc_count(const struct digest_nc_table *t);

#endif
