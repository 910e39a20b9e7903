/*
 * fuzz_auth_guest.c - auth_guest_check() and auth_guest_may_use(): a
 * digest username of guest shape (from any REGISTER or request) and
 * the address it wants to use.  Input: the username, a newline, the
 * address's user part.  The first line is also taken as the room a
 * browser asks for (GET /kk/guest?room=, edge_guest.c): when it is a
 * valid room, the credentials minted for it must check.
 */
#include <string.h>

#include "auth/auth.h"
#include "tests/fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char key[32] = "fuzz key fuzz key fuzz key fuzz";
	const char *s = (const char *)data;
	const char *nl = memchr(s, '\n', size);
	size_t ulen = nl ? (size_t)(nl - s) : size;
	char password[AUTH_GUEST_PASS_LEN + 1];
	struct digest_str user;

	if (auth_guest_room_valid(s, ulen)) {
		struct auth_guest g;

		if (auth_guest_mint(key, s, ulen, 1000, 3600, &g) != 0 ||
		    auth_guest_check(key, g.username, strlen(g.username), 1000,
				     &user, password) != 0 ||
		    strcmp(password, g.password) != 0 ||
		    user.len != strlen(g.user) ||
		    memcmp(user.s, g.user, user.len) != 0)
			__builtin_trap();
	}
	if (auth_guest_check(key, s, ulen, 0, &user, password) != 0)
		return 0;
	if (user.s < s || user.s + user.len > s + ulen ||
	    strlen(password) != AUTH_GUEST_PASS_LEN)
		__builtin_trap();
	if (nl)
		auth_guest_may_use(&user, nl + 1, size - ulen - 1);
	return 0;
}
