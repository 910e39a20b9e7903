/*
 * auth_guest.c - KwikyKonf guest credentials (see auth.h): minted by
 * the edge's HTTP server, checked by any core, no state shared.
 * Cost: one HMAC-SHA256 per mint and per check.
 */
#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "auth/auth.h"
#include "lib/key.h"

#define AUTH_GUEST_PREFIX	"guest."
#define AUTH_CONF_PREFIX	"conf."
#define AUTH_TAG_MAX		64

static const char auth_room_chars[] =
	"abcdefghijklmnopqrstuvwxyz0123456789_-";
static const char auth_id_chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";

/* Whether c is one of set's characters (strchr alone finds the NUL). */
static int
auth_in(const char *set, char c)
{
	return c != '\0' && strchr(set, c) != NULL;
}

int
auth_guest_room_valid(const char *room, size_t len)
{
	if (len == 0 || len > AUTH_GUEST_ROOM_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!auth_in(auth_room_chars, room[i]))
			return 0;
	return 1;
}

/* base64url(HMAC-SHA256(key, username)) without padding into out. */
static int
auth_guest_password(const unsigned char *key, const char *username,
		    size_t len, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char b64[64];
	int n;

	if (!HMAC(EVP_sha256(), key, KEY_LEN, (const unsigned char *)username,
		  len, md, &mdlen) || mdlen != 32)
		return -EIO;
	n = EVP_EncodeBlock((unsigned char *)b64, md, (int)mdlen);
	if (n != AUTH_GUEST_PASS_LEN + 1)
		return -EIO;
	for (int i = 0; i < AUTH_GUEST_PASS_LEN; i++)
		out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
	out[AUTH_GUEST_PASS_LEN] = '\0';
	return 0;
}

int
auth_guest_mint(const unsigned char *key, const char *room, size_t len,
		int64_t now, int ttl_s, struct auth_guest *g)
{
	unsigned char rnd[AUTH_GUEST_ID_LEN];
	char id[AUTH_GUEST_ID_LEN + 1];
	int n;

	if (!auth_guest_room_valid(room, len) || ttl_s <= 0 || now < 0)
		return -EINVAL;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -EIO;
	/* 36 does not divide 256: a slight bias, harmless for 51 bits of
	 * an address that the password protects anyway. */
	for (size_t i = 0; i < sizeof(rnd); i++)
		id[i] = auth_id_chars[rnd[i] % 36];
	id[AUTH_GUEST_ID_LEN] = '\0';
	memset(g, 0, sizeof(*g));
	g->expires = now + ttl_s;
	snprintf(g->user, sizeof(g->user), AUTH_GUEST_PREFIX "%.*s.%s",
		 (int)len, room, id);
	n = snprintf(g->username, sizeof(g->username), "%" PRId64 ":%s",
		     g->expires, g->user);
	if (n < 0 || n >= (int)sizeof(g->username))
		return -EINVAL;
	return auth_guest_password(key, g->username, (size_t)n, g->password);
}

/* Splits "guest.<room>.<id>" (the whole of s, len bytes) into its
 * room; 0, or -EINVAL when it is not of that shape. */
static int
auth_guest_split(const char *s, size_t len, struct digest_str *room)
{
	const size_t pl = sizeof(AUTH_GUEST_PREFIX) - 1;
	const char *dot;
	size_t idlen;

	if (len <= pl || strncmp(s, AUTH_GUEST_PREFIX, pl) != 0)
		return -EINVAL;
	dot = memchr(s + pl, '.', len - pl);
	if (dot == NULL)
		return -EINVAL;
	room->s = s + pl;
	room->len = (size_t)(dot - room->s);
	idlen = len - (size_t)(dot + 1 - s);
	if (!auth_guest_room_valid(room->s, room->len) ||
	    idlen != AUTH_GUEST_ID_LEN)
		return -EINVAL;
	for (size_t i = 0; i < idlen; i++)
		if (!auth_in(auth_id_chars, dot[1 + i]))
			return -EINVAL;
	return 0;
}

int
auth_guest_check(const unsigned char *key, const char *username, size_t len,
		 int64_t now, struct digest_str *user, char *password)
{
	struct digest_str room;
	int64_t expiry = 0;
	size_t i;

	/* "<expiry>:" with at most 18 digits: no int64 overflow. */
	for (i = 0; i < len && i < 18 && username[i] >= '0' &&
	     username[i] <= '9'; i++)
		expiry = expiry * 10 + (username[i] - '0');
	if (i == 0 || i >= len || username[i] != ':' || len > AUTH_GUEST_NAME_MAX)
		return -EINVAL;
	if (auth_guest_split(username + i + 1, len - i - 1, &room) != 0)
		return -EINVAL;
	if (expiry <= now)
		return -EKEYEXPIRED;
	user->s = username + i + 1;
	user->len = len - i - 1;
	return auth_guest_password(key, username, len, password);
}

int
auth_guest_may_use(const struct digest_str *guest, const char *aor, size_t len)
{
	const size_t cl = sizeof(AUTH_CONF_PREFIX) - 1;
	struct digest_str room;
	size_t rest;

	if (auth_guest_split(guest->s, guest->len, &room) != 0)
		return 0;
	if (len == guest->len && memcmp(aor, guest->s, len) == 0)
		return 1;
	/* "conf.<room>" or "conf.<room>.<tag>" */
	if (len < cl + room.len || memcmp(aor, AUTH_CONF_PREFIX, cl) != 0 ||
	    memcmp(aor + cl, room.s, room.len) != 0)
		return 0;
	rest = len - cl - room.len;
	if (rest == 0)
		return 1;
	if (aor[cl + room.len] != '.' || rest < 2 || rest - 1 > AUTH_TAG_MAX)
		return 0;
	for (size_t i = cl + room.len + 1; i < len; i++)
		if (!auth_in(auth_id_chars, aor[i]))
			return 0;
	return 1;
}
