/*
 * test_auth_guest.c - KwikyKonf guest credentials: what the edge mints
 * a core accepts, with the password the page was given; an expired,
 * tampered or foreign-key username does not give that password; a
 * guest may use only its own address and its room's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "lib/key.h"

static const unsigned char key[KEY_LEN] = { 7, 7, 7 };
static const unsigned char other_key[KEY_LEN] = { 8, 8, 8 };

static void
test_auth_guest__mint_then_check(void **state)
{
	struct auth_guest g;
	struct digest_str user;
	char pw[AUTH_GUEST_PASS_LEN + 1];
	char ha1[DIGEST_HEX_MAX];

	(void)state;
	assert_int_equal(auth_guest_mint(key, "lobby-1", 7, 1000, 60, &g), 0);
	assert_int_equal(g.expires, 1060);
	assert_int_equal(strncmp(g.user, "guest.lobby-1.", 14), 0);
	assert_int_equal(strlen(g.user), 14 + AUTH_GUEST_ID_LEN);
	assert_string_equal(strchr(g.username, ':') + 1, g.user);
	assert_int_equal(strncmp(g.username, "1060:", 5), 0);
	assert_int_equal(strlen(g.password), AUTH_GUEST_PASS_LEN);
	assert_null(strpbrk(g.password, "+/="));

	assert_int_equal(auth_guest_check(key, g.username, strlen(g.username),
					  1059, &user, pw), 0);
	assert_string_equal(pw, g.password);
	assert_int_equal(user.len, strlen(g.user));
	assert_memory_equal(user.s, g.user, user.len);
	/* What the core then does with it. */
	assert_int_equal(digest_ha1(DIGEST_SHA256, g.username, "example.com",
				    pw, ha1), 0);
}

static void
test_auth_guest__ids_differ(void **state)
{
	struct auth_guest a, b;

	(void)state;
	assert_int_equal(auth_guest_mint(key, "r", 1, 1000, 60, &a), 0);
	assert_int_equal(auth_guest_mint(key, "r", 1, 1000, 60, &b), 0);
	assert_string_not_equal(a.user, b.user);
	assert_string_not_equal(a.password, b.password);
}

static void
test_auth_guest__expired_tampered_foreign(void **state)
{
	struct auth_guest g;
	struct digest_str user;
	char pw[AUTH_GUEST_PASS_LEN + 1], name[256];

	(void)state;
	assert_int_equal(auth_guest_mint(key, "room", 4, 1000, 60, &g), 0);
	assert_int_equal(auth_guest_check(key, g.username, strlen(g.username),
					  1060, &user, pw), -EKEYEXPIRED);
	/* A later expiry written by the client gives another password. */
	snprintf(name, sizeof(name), "9999%s", g.username);
	assert_int_equal(auth_guest_check(key, name, strlen(name), 1000, &user,
					  pw), 0);
	assert_string_not_equal(pw, g.password);
	/* Another room, same id: another password. */
	snprintf(name, sizeof(name), "1060:guest.roon.%s",
		 g.user + strlen("guest.room."));
	assert_int_equal(auth_guest_check(key, name, strlen(name), 1000, &user,
					  pw), 0);
	assert_string_not_equal(pw, g.password);
	/* Another cluster's key. */
	assert_int_equal(auth_guest_check(other_key, g.username,
					  strlen(g.username), 1000, &user, pw),
			 0);
	assert_string_not_equal(pw, g.password);
}

static void
test_auth_guest__not_guest_shape(void **state)
{
	static const char *bad[] = {
		"alice", "1060:alice", ":guest.r.abcdefghij",
		"1060guest.r.abcdefghij", "1060:guest.r.abcdefghi",
		"1060:guest.r.abcdefghijk", "1060:guest..abcdefghij",
		"1060:guest.R.abcdefghij", "1060:guest.r.ABCDEFGHIJ",
		"1060:guest.r.abc/efghij",
		"99999999999999999999:guest.r.abcdefghij",
	};
	struct digest_str user;
	char pw[AUTH_GUEST_PASS_LEN + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		assert_int_equal(auth_guest_check(key, bad[i], strlen(bad[i]),
						  0, &user, pw), -EINVAL);
	assert_int_equal(auth_guest_check(key, "1060:guest.r.abcdefghij\0x",
					  25, 0, &user, pw), -EINVAL);
}

static void
test_auth_guest__may_use_own_and_room_addresses(void **state)
{
	const char *g = "guest.room-1.abcdefghij";
	struct digest_str gs = { g, strlen(g) };
	static const char *ok[] = {
		"guest.room-1.abcdefghij", "conf.room-1",
		"conf.room-1.0123456789abcdef",
	};
	static const char *no[] = {
		"guest.room-1.abcdefghik", "guest.room-2.abcdefghij",
		"conf.room-2", "conf.room-10", "conf.room", "conf.room-1.",
		"conf.room-1.ab.cd", "alice", "conf.room-1.AB", "",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++)
		assert_true(auth_guest_may_use(&gs, ok[i], strlen(ok[i])));
	for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++)
		assert_false(auth_guest_may_use(&gs, no[i], strlen(no[i])));
	/* Only a guest may use guest rules. */
	gs.s = "alice";
	gs.len = 5;
	assert_false(auth_guest_may_use(&gs, "alice", 5));
}

static void
test_auth_guest__bad_room_refused(void **state)
{
	struct auth_guest g;

	(void)state;
	assert_int_equal(auth_guest_mint(key, "", 0, 1000, 60, &g), -EINVAL);
	assert_int_equal(auth_guest_mint(key, "a.b", 3, 1000, 60, &g), -EINVAL);
	assert_int_equal(auth_guest_mint(key, "Room", 4, 1000, 60, &g),
			 -EINVAL);
	assert_int_equal(auth_guest_mint(key, "abcdefghijabcdefghijabcdefghijabc",
					 33, 1000, 60, &g), -EINVAL);
	assert_int_equal(auth_guest_mint(key, "r", 1, 1000, 0, &g), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auth_guest__mint_then_check),
		cmocka_unit_test(test_auth_guest__ids_differ),
		cmocka_unit_test(test_auth_guest__expired_tampered_foreign),
		cmocka_unit_test(test_auth_guest__not_guest_shape),
		cmocka_unit_test(test_auth_guest__may_use_own_and_room_addresses),
		cmocka_unit_test(test_auth_guest__bad_room_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
