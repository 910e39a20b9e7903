/*
 * test_core_media.c - the rtpengine flag decision (the table of
 * DESIGN.md) for every caller/callee combination, in both directions,
 * and per branch of a fork that mixes browsers and phones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/core.h"

#define WS 1
#define PHONE 0
#define OFFER 0
#define ANSWER 1

static void
assert_str_or_null(const char *got, const char *want)
{
	if (want == NULL)
		assert_null(got);
	else
		assert_string_equal(got, want);
}

static void
check(int sender, int receiver, int answer, const char *tp, const char *ice,
      const char *dtls, const char *mux, int replace)
{
	const struct core_media_flags *f =
		core_media_flags_for(sender, receiver, answer);

	assert_non_null(f);
	assert_str_or_null(f->transport, tp);
	assert_str_or_null(f->ice, ice);
	assert_str_or_null(f->dtls, dtls);
	assert_str_or_null(f->rtcp_mux, mux);
	assert_int_equal(f->replace, replace);
}

static void
test_core_media__browser_to_browser(void **state)
{
	(void)state;
	check(WS, WS, OFFER, NULL, "force-relay", "passive", NULL, 0);
	check(WS, WS, ANSWER, NULL, "force-relay", "passive", NULL, 0);
}

static void
test_core_media__browser_to_phone(void **state)
{
	(void)state;
	/* The offer goes to the phone: plain RTP, RTCP demuxed (without
	 * it Chromium drops the call on the answer). */
	check(WS, PHONE, OFFER, "RTP/AVP", "remove", NULL, "demux", 1);
	/* The phone's answer goes back to the browser. */
	check(PHONE, WS, ANSWER, "UDP/TLS/RTP/SAVPF", "force", NULL, NULL, 0);
}

static void
test_core_media__phone_to_browser(void **state)
{
	(void)state;
	/* Chromium refuses an offer without rtcp-mux. */
	check(PHONE, WS, OFFER, "UDP/TLS/RTP/SAVPF", "force", NULL, "offer", 0);
	check(WS, PHONE, ANSWER, "RTP/AVP", "remove", NULL, NULL, 1);
}

static void
test_core_media__phone_to_phone(void **state)
{
	(void)state;
	check(PHONE, PHONE, OFFER, "RTP/AVP", "remove", NULL, NULL, 1);
	check(PHONE, PHONE, ANSWER, "RTP/AVP", "remove", NULL, NULL, 1);
}

/* A browser calls an AOR with a browser and a phone registered: each
 * branch gets its own offer flags, and each answer its own. */
static void
test_core_media__fork_mixes_ws_and_udp(void **state)
{
	const struct core_media_flags *to_ws, *to_phone, *from_ws, *from_phone;

	(void)state;
	to_ws = core_media_flags_for(WS, WS, OFFER);
	to_phone = core_media_flags_for(WS, PHONE, OFFER);
	assert_ptr_not_equal(to_ws, to_phone);
	assert_null(to_ws->transport);
	assert_string_equal(to_phone->transport, "RTP/AVP");
	from_ws = core_media_flags_for(WS, WS, ANSWER);
	from_phone = core_media_flags_for(PHONE, WS, ANSWER);
	assert_string_equal(from_ws->ice, "force-relay");
	assert_string_equal(from_phone->transport, "UDP/TLS/RTP/SAVPF");
	/* Non-zero means WebSocket, whatever flag bit carried it. */
	assert_ptr_equal(core_media_flags_for(0x40, 0, OFFER), to_phone);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_core_media__browser_to_browser),
		cmocka_unit_test(test_core_media__browser_to_phone),
		cmocka_unit_test(test_core_media__phone_to_browser),
		cmocka_unit_test(test_core_media__phone_to_phone),
		cmocka_unit_test(test_core_media__fork_mixes_ws_and_udp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
