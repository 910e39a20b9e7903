/*
 * test_core_proxy.c - the proxy's request path on a real core (see
 * core_harness.h), requests arriving over its nanomsg endpoint as an
 * edge sends them: an AOR registered with two contacts, an INVITE to
 * it forked to both (RFC 3261 16.6), 100 Trying at once, and the
 * caller's final response only once both branches have finished; a
 * UDP phone behind NAT, callee or caller, reached in dialog at the
 * address it sends from, not at its private Contact; a REGISTER's 200
 * over UDP bounded by the request's size.
 */
#include "tests/unit/core/core_harness.h"

/* Sends text to the core through its endpoint, as edge 1 would from
 * 127.0.0.1:port, and returns once it has sent `want` messages and
 * nothing more.  request: from port 5070. */
static void
request_from(struct harness *h, int port, const char *text, int want)
{
	h_deliver(h, text, port);
	h_wait_sent(h, want);
	h_flush(h);
	assert_int_equal(h->n, want);
}

static void
request(struct harness *h, const char *text, int want)
{
	request_from(h, 5070, text, want);
}

/* bob@example.com registered from 127.0.0.1:port with Contact host
 * (NULL: that very address; else a private one, behind NAT). */
static void
register_contact_as(struct harness *h, int port, const char *host)
{
	char text[768], contact[64];

	if (host)
		snprintf(contact, sizeof(contact), "%s", host);
	else
		snprintf(contact, sizeof(contact), "127.0.0.1:%d", port);

	snprintf(text, sizeof(text),
		 "REGISTER sip:example.com SIP/2.0\n"
		 "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-reg-%d\n"
		 "From: <sip:bob@example.com>;tag=r%d\n"
		 "To: <sip:bob@example.com>\n"
		 "Call-ID: reg-%d@test\n"
		 "CSeq: 1 REGISTER\n"
		 "Contact: <sip:bob@%s>\n"
		 "Expires: 600\n"
		 "Max-Forwards: 70\n"
		 "Content-Length: 0\n\n", port, port, port, port, contact);
	request_from(h, port, text, 1);
	h_assert_sent(h, 0, "SIP/2.0 200");
	h_clear(h);
}

static void
register_contact(struct harness *h, int port)
{
	register_contact_as(h, port, NULL);
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

/* An INVITE for bob@example.com from 127.0.0.1:5070 with Call-ID
 * "<id>@test", Via lines vias and Contact contact; returns once the 100
 * and the forwarded INVITE are out. */
static void
invite_bob(struct harness *h, const char *id, const char *vias,
	   const char *contact)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "INVITE sip:bob@example.com SIP/2.0\n"
		 "%s"
		 "From: <sip:alice@example.com>;tag=%s\n"
		 "To: <sip:bob@example.com>\n"
		 "Call-ID: %s@test\n"
		 "CSeq: 1 INVITE\n"
		 "Contact: <%s>\n"
		 "Max-Forwards: 70\n"
		 "Content-Length: 0\n\n", vias, id, id, contact);
	request(h, text, 2);
	h_assert_sent(h, 0, "SIP/2.0 100");
}

/* The Record-Route values of sent[i], top first, as "Route: <...>"
 * lines in route-set order: as they are for the callee (forward), or
 * reversed for the caller; returns how many. */
static int
route_set(struct harness *h, int i, int reverse, char *out, size_t cap)
{
	osip_message_t *m = h_parse(h->sent[i]);
	int n = osip_list_size(&m->record_routes);
	size_t used = 0;

	out[0] = '\0';
	for (int k = 0; k < n; k++) {
		osip_record_route_t *rr = osip_list_get(&m->record_routes,
							 reverse ? n - 1 - k : k);
		char *v = NULL;

		assert_int_equal(osip_record_route_to_str(rr, &v), 0);
		used += (size_t)snprintf(out + used, cap - used, "Route: %s\n", v);
		assert_true(used < cap);
		osip_free(v);
	}
	osip_message_free(m);
	return n;
}

/* The user part of Record-Route k of sent[i] ("" for none). */
static void
assert_rr_user(struct harness *h, int i, int k, const char *want)
{
	osip_message_t *m = h_parse(h->sent[i]);
	osip_record_route_t *rr = osip_list_get(&m->record_routes, k);

	assert_non_null(rr);
	assert_string_equal(rr->url->username ? rr->url->username : "", want);
	osip_message_free(m);
}

static void
assert_dst(struct harness *h, int i, const char *want)
{
	char a[64];

	assert_string_equal(env_sa_str(&h->leg[i].dst, a, sizeof(a)), want);
}

/*
 * A callee behind NAT (Contact 10.0.0.1, REGISTER from 127.0.0.1:5081):
 * the INVITE goes to 5081 with a double Record-Route whose entry facing
 * it names that address; the caller's ACK, re-INVITE and BYE, whose
 * Request-URI is the private Contact, go there too.  The same route set
 * with the token's port changed gets 403 and goes nowhere.
 */
static void
test_core_proxy__natted_callee_reached_in_dialog(void **state)
{
	struct harness *h = *state;
	char routes[1024], text[2048], *p;

	register_contact_as(h, 5081, "10.0.0.1:5060");
	invite_bob(h, "nat-1",
		   "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-nat-1\n",
		   "sip:alice@127.0.0.1:5070");
	h_assert_sent(h, 1, "INVITE sip:bob@10.0.0.1:5060 ");
	assert_dst(h, 1, "127.0.0.1:5081");
	assert_int_equal(route_set(h, 1, 1, routes, sizeof(routes)), 2);
	assert_rr_user(h, 1, 0, "sm-n1-127.0.0.1-5081");
	assert_rr_user(h, 1, 1, "");
	h_clear(h);
	for (int k = 0; k < 3; k++) {
		static const char *const methods[] = { "ACK", "INVITE", "BYE" };
		static const int sent[] = { 1, 2, 1 };	/* an INVITE: 100 too */
		char want[64];

		snprintf(text, sizeof(text),
			 "%s sip:bob@10.0.0.1:5060 SIP/2.0\n"
			 "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-nat-1%d\n"
			 "%s"
			 "From: <sip:alice@example.com>;tag=nat-1\n"
			 "To: <sip:bob@example.com>;tag=b1\n"
			 "Call-ID: nat-1@test\n"
			 "CSeq: %d %s\n"
			 "Contact: <sip:alice@127.0.0.1:5070>\n"
			 "Max-Forwards: 70\n"
			 "Content-Length: 0\n\n", methods[k], k, routes, k + 1,
			 methods[k]);
		request(h, text, sent[k]);
		snprintf(want, sizeof(want), "%s sip:bob@10.0.0.1:5060 ",
			 methods[k]);
		h_assert_sent(h, sent[k] - 1, want);
		assert_dst(h, sent[k] - 1, "127.0.0.1:5081");
		h_clear(h);
	}
	/* Tampered: the signature no longer covers the token. */
	p = strstr(text, "-5081@");
	assert_non_null(p);
	memcpy(p, "-5099@", 6);
	memcpy(strstr(text, "CSeq: 3"), "CSeq: 4", 7);
	memcpy(strstr(text, "nat-12"), "nat-13", 6);	/* not a retransmission */
	request(h, text, 1);
	h_assert_sent(h, 0, "SIP/2.0 403");
	assert_dst(h, 0, "127.0.0.1:5070");
}

/*
 * A caller behind NAT (its INVITE from 127.0.0.1:5070, Contact
 * 192.168.1.20): the Record-Route entry facing it carries its address,
 * so the callee's BYE to that private Contact reaches 5070.  A caller
 * behind another proxy (two Vias) or whose Contact is where it sends
 * from keeps the single entry with no token.
 */
static void
test_core_proxy__natted_caller_reached_in_dialog(void **state)
{
	struct harness *h = *state;
	char routes[1024], text[2048];

	register_contact(h, 5082);
	invite_bob(h, "nat-2",
		   "Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK-nat-2\n",
		   "sip:alice@192.168.1.20:5060");
	h_assert_sent(h, 1, "INVITE sip:bob@127.0.0.1:5082 ");
	assert_dst(h, 1, "127.0.0.1:5082");
	assert_int_equal(route_set(h, 1, 0, routes, sizeof(routes)), 2);
	assert_rr_user(h, 1, 0, "");
	assert_rr_user(h, 1, 1, "sm-n1-127.0.0.1-5070");
	h_clear(h);
	snprintf(text, sizeof(text),
		 "BYE sip:alice@192.168.1.20:5060 SIP/2.0\n"
		 "Via: SIP/2.0/UDP 127.0.0.1:5082;branch=z9hG4bK-nat-2b\n"
		 "%s"
		 "From: <sip:bob@example.com>;tag=b2\n"
		 "To: <sip:alice@example.com>;tag=nat-2\n"
		 "Call-ID: nat-2@test\n"
		 "CSeq: 1 BYE\n"
		 "Max-Forwards: 70\n"
		 "Content-Length: 0\n\n", routes);
	request_from(h, 5082, text, 1);
	h_assert_sent(h, 0, "BYE sip:alice@192.168.1.20:5060 ");
	assert_dst(h, 0, "127.0.0.1:5070");
	h_clear(h);

	invite_bob(h, "nat-3",
		   "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-nat-3\n"
		   "Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK-nat-3a\n",
		   "sip:alice@192.168.1.20:5060");
	assert_int_equal(route_set(h, 1, 0, routes, sizeof(routes)), 1);
	assert_rr_user(h, 1, 0, "");
	h_clear(h);
	invite_bob(h, "nat-4",
		   "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-nat-4\n",
		   "sip:alice@127.0.0.1:5070");
	assert_int_equal(route_set(h, 1, 0, routes, sizeof(routes)), 1);
	assert_rr_user(h, 1, 0, "");
}

/*
 * A token the cluster signed that names one of its own addresses (the
 * edge's UDP listener here; a REGISTER "from" it is refused already,
 * but a key that leaked, or a spoofed source, must not aim the core at
 * itself): the request is refused, nothing goes to that address.
 */
static void
test_core_proxy__nat_token_never_names_the_cluster(void **state)
{
	struct harness *h = *state;
	osip_message_t *m = NULL;
	char s1[48], s2[48], text[1024];

	assert_int_equal(osip_message_init(&m), 0);
	assert_int_equal(osip_message_set_call_id(m, "nat-5@test"), 0);
	assert_int_equal(core_rr_param(h->c, m, NULL, s1, sizeof(s1)), 0);
	assert_int_equal(core_rr_param(h->c, m, "sm-n1-127.0.0.1-5060", s2,
				       sizeof(s2)), 0);
	osip_message_free(m);
	snprintf(text, sizeof(text),
		 "BYE sip:bob@10.0.0.1:5060 SIP/2.0\n"
		 "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-nat-5\n"
		 "Route: <sip:127.0.0.1:5060;lr%s>\n"
		 "Route: <sip:sm-n1-127.0.0.1-5060@127.0.0.1:5060;lr%s>\n"
		 "From: <sip:alice@example.com>;tag=a5\n"
		 "To: <sip:bob@example.com>;tag=b5\n"
		 "Call-ID: nat-5@test\n"
		 "CSeq: 1 BYE\n"
		 "Max-Forwards: 70\n"
		 "Content-Length: 0\n\n", s1, s2);
	request(h, text, 1);
	h_assert_sent(h, 0, "SIP/2.0 503");
	assert_dst(h, 0, "127.0.0.1:5070");
}

/*
 * A REGISTER's 200 over UDP is at most SIP_REPLY_AMP times the request:
 * with nine long bindings of bob's, a phone's own REGISTER gets a 200
 * that lists its binding first, with its expiry, and leaves out what
 * does not fit (counted).
 */
static void
test_core_proxy__register_200_trimmed_own_binding_first(void **state)
{
	struct harness *h = *state;
	char text[1024], crlf[1024], x[181];
	uint64_t trimmed;
	size_t len;

	memset(x, 'x', sizeof(x) - 1);
	x[sizeof(x) - 1] = '\0';
	for (int port = 5081; port <= 5089; port++) {
		snprintf(text, sizeof(text),
			 "REGISTER sip:example.com SIP/2.0\n"
			 "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-long-%d\n"
			 "From: <sip:bob@example.com>;tag=l%d\n"
			 "To: <sip:bob@example.com>\n"
			 "Call-ID: long-%d@test\n"
			 "CSeq: 1 REGISTER\n"
			 "Contact: <sip:bob-%s@127.0.0.1:%d>\n"
			 "Expires: 600\n"
			 "Content-Length: 0\n\n", port, port, port, port, x, port);
		request_from(h, port, text, 1);
		h_assert_sent(h, 0, "SIP/2.0 200");
		h_clear(h);
	}
	trimmed = h->c->st.replies_trimmed;
	snprintf(text, sizeof(text),
		 "REGISTER sip:example.com SIP/2.0\n"
		 "Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-phone\n"
		 "From: <sip:bob@example.com>;tag=p\n"
		 "To: <sip:bob@example.com>\n"
		 "Call-ID: phone@test\n"
		 "CSeq: 1 REGISTER\n"
		 "Contact: <sip:bob@127.0.0.1:5090>\n"
		 "Expires: 300\n"
		 "Content-Length: 0\n\n");
	len = h_crlf(text, crlf, sizeof(crlf));
	request_from(h, 5090, text, 1);
	h_assert_sent(h, 0, "SIP/2.0 200");
	assert_true(strlen(h->sent[0]) <= SIP_REPLY_AMP * len);
	assert_non_null(strstr(h->sent[0], "\r\nContact: "
			       "<sip:bob@127.0.0.1:5090>;expires=300\r\n"));
	assert_true(strstr(h->sent[0], "5090>") < strstr(h->sent[0], "bob-x"));
	assert_int_equal(h->c->st.replies_trimmed, trimmed + 1);
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
		cmocka_unit_test_setup_teardown(
			test_core_proxy__natted_callee_reached_in_dialog,
			h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(
			test_core_proxy__natted_caller_reached_in_dialog,
			h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(
			test_core_proxy__nat_token_never_names_the_cluster,
			h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(
			test_core_proxy__register_200_trimmed_own_binding_first,
			h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
