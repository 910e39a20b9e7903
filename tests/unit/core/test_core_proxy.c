/*
 * test_core_proxy.c - the proxy's request path on a real core (see
 * core_harness.h), requests arriving over its nanomsg endpoint as an
 * edge sends them: an AOR registered with two contacts, an INVITE to
 * it forked to both (RFC 3261 16.6), 100 Trying at once, and the
 * caller's final response only once both branches have finished.
 */
#include "tests/unit/core/core_harness.h"

/* Sends text to the core through its endpoint, as edge 1 would, and
 * returns once it has sent `want` messages and nothing more. */
static void
request(struct harness *h, const char *text, int want)
{
	h_deliver(h, text, 5070);
	h_wait_sent(h, want);
	h_flush(h);
	assert_int_equal(h->n, want);
}

static void
register_contact(struct harness *h, int port)
{
	char text[768];

	snprintf(text, sizeof(text),
		 "REGISTER sip:example.com SIP/2.0\n"
		 "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-reg-%d\n"
		 "From: <sip:bob@example.com>;tag=r%d\n"
		 "To: <sip:bob@example.com>\n"
		 "Call-ID: reg-%d@test\n"
		 "CSeq: 1 REGISTER\n"
		 "Contact: <sip:bob@127.0.0.1:%d>\n"
		 "Expires: 600\n"
		 "Max-Forwards: 70\n"
		 "Content-Length: 0\n\n", port, port, port, port, port);
	request(h, text, 1);
	h_assert_sent(h, 0, "SIP/2.0 200");
	h_clear(h);
}

static void
test_core_proxy__fork_answers_once_all_branches_end(void **state)
{
	struct harness *h = *state;
	int finals = 0;

	register_contact(h, 5081);
	register_contact(h, 5082);
	request(h, "INVITE sip:bob@example.com SIP/2.0\n"
		"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-inv-1\n"
		"From: <sip:alice@example.com>;tag=a1\n"
		"To: <sip:bob@example.com>\n"
		"Call-ID: fork-1@test\n"
		"CSeq: 1 INVITE\n"
		"Max-Forwards: 70\n"
		"Content-Length: 0\n\n", 3);
	h_assert_sent(h, 0, "SIP/2.0 100");
	h_assert_sent(h, 1, "INVITE sip:bob@127.0.0.1:508");
	h_assert_sent(h, 2, "INVITE sip:bob@127.0.0.1:508");
	assert_int_not_equal(env_sa_port(&h->leg[1].dst),
			     env_sa_port(&h->leg[2].dst));
	/* Both decline: the ACKs go down, one final goes up. */
	h_answer(h, 1, 486);
	h_answer(h, 2, 480);
	h_clear(h);
	h_flush(h);
	for (int i = 0; i < h->n; i++)
		finals += strncmp(h->sent[i], "SIP/2.0 4", 9) == 0;
	assert_int_equal(finals, 1);
}

static void
test_core_proxy__unknown_aor_is_404(void **state)
{
	struct harness *h = *state;

	request(h, "INVITE sip:nobody@example.com SIP/2.0\n"
		"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-inv-2\n"
		"From: <sip:alice@example.com>;tag=a1\n"
		"To: <sip:nobody@example.com>\n"
		"Call-ID: fork-2@test\n"
		"CSeq: 1 INVITE\n"
		"Max-Forwards: 70\n"
		"Content-Length: 0\n\n", 1);
	h_assert_sent(h, 0, "SIP/2.0 404");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_core_proxy__fork_answers_once_all_branches_end,
			h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(
			test_core_proxy__unknown_aor_is_404, h_setup,
			h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
