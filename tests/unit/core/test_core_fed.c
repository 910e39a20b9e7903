/*
 * test_core_fed.c - a request for a foreign domain on a real core (see
 * core_harness.h) while its DNS locate is still out: the DNS server is
 * a UDP socket of the test that reads queries and never answers.  A
 * CANCEL then ends the INVITE with 487 at once, a core stopping drops
 * the locate with its transaction (nothing left for the callback to
 * touch: run under `make test-san`), and a foreign From gets 403
 * without any query.  With [federation] tls_client_cert_domains, a
 * request From a listed domain passes only with the peer names the
 * edge wrote for a TLS connection (env.h) including that domain.
 *
 * In dialog, against a real dnsmasq (tests/unit/dns_test.h): a Route
 * after ours that names a host (a peer's Record-Route) is located,
 * A only with a port, SRV without; the BYE and the ACK reach the
 * target, NXDOMAIN is 404, and a silent DNS server 503 with
 * Retry-After.
 */
#include "tests/unit/core/core_harness.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>

#include "tests/unit/dns_test.h"

static int sink = -1;		/* the silent DNS server */
static char conf[256];

/* A core whose DNS server is the sink, [federation] more added. */
static int
setup_with(void **state, const char *more)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sink = socket(AF_INET, SOCK_DGRAM, 0);
	if (sink < 0 || bind(sink, (struct sockaddr *)&sa, len) != 0 ||
	    getsockname(sink, (struct sockaddr *)&sa, &len) != 0)
		return -1;
	snprintf(conf, sizeof(conf), "[registrar]\ndomains = example.com\n"
		 "[federation]\ndns_servers = 127.0.0.1:%d\n%s",
		 ntohs(sa.sin_port), more);
	h_conf_extra = conf;
	return h_setup(state);
}

static int
fed_setup(void **state)
{
	return setup_with(state, "dns_timeout_ms = 30000\ndns_tries = 1\n");
}

/* b.test is a peer that must prove itself (mutual TLS). */
static int
mtls_setup(void **state)
{
	return setup_with(state, "tls_client_cert_domains = b.test\n");
}

static int
fed_teardown(void **state)
{
	int rc = h_teardown(state);

	close(sink);
	return rc;
}

/* DNS queries that reached the sink within ms. */
static int
queries(int ms)
{
	struct pollfd p = { .fd = sink, .events = POLLIN };
	char buf[512];
	int n = 0;

	while (poll(&p, 1, ms) == 1 && recv(sink, buf, sizeof(buf), 0) > 0) {
		n++;
		ms = 0;
	}
	return n;
}

#define INVITE_B \
	"INVITE sip:bob@b.test SIP/2.0\n" \
	"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-fed-1\n" \
	"From: <sip:alice@example.com>;tag=a1\n" \
	"To: <sip:bob@b.test>\n" \
	"Call-ID: fed-1@test\n" \
	"CSeq: 1 INVITE\n" \
	"Max-Forwards: 70\n" \
	"Content-Length: 0\n\n"

static void
invite_waiting_for_dns(struct harness *h)
{
	h_deliver(h, INVITE_B, 5070);
	h_wait_sent(h, 1);
	h_flush(h);
	assert_int_equal(h->n, 1);
	h_assert_sent(h, 0, "SIP/2.0 100");
	assert_true(queries(2000) > 0);
	h_clear(h);
}

static void
test_core_fed__cancel_while_locating_is_487(void **state)
{
	struct harness *h = *state;

	invite_waiting_for_dns(h);
	h_deliver(h, "CANCEL sip:bob@b.test SIP/2.0\n"
		  "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-fed-1\n"
		  "From: <sip:alice@example.com>;tag=a1\n"
		  "To: <sip:bob@b.test>\n"
		  "Call-ID: fed-1@test\n"
		  "CSeq: 1 CANCEL\n"
		  "Max-Forwards: 70\n"
		  "Content-Length: 0\n\n", 5070);
	h_wait_sent(h, 2);
	h_flush(h);
	assert_int_equal(h->n, 2);
	h_assert_sent(h, 0, "SIP/2.0 200");
	h_assert_sent(h, 1, "SIP/2.0 487");
}

static void
test_core_fed__stop_while_locating(void **state)
{
	/* The teardown stops the core with the locate out. */
	invite_waiting_for_dns(*state);
}

static void
test_core_fed__foreign_to_foreign_is_403_without_dns(void **state)
{
	struct harness *h = *state;

	h_deliver(h, "MESSAGE sip:bob@b.test SIP/2.0\n"
		  "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-fed-2\n"
		  "From: <sip:mallory@c.test>;tag=m1\n"
		  "To: <sip:bob@b.test>\n"
		  "Call-ID: fed-2@test\n"
		  "CSeq: 1 MESSAGE\n"
		  "Max-Forwards: 70\n"
		  "Content-Length: 0\n\n", 5070);
	h_wait_sent(h, 1);
	h_flush(h);
	assert_int_equal(h->n, 1);
	h_assert_sent(h, 0, "SIP/2.0 403");
	assert_int_equal(queries(100), 0);
}

/* text as edge 1 hands it from connection 7 over transport, with the
 * peer names `names` (NULL: none). */
static void
deliver_from(struct harness *h, const char *text, int transport,
	     const char *names)
{
	char buf[4096], env[4096 + ENV_HDR_LEN + ENV_NAMES_MAX];
	struct env e;
	int len;

	h_env(&e, 5070);
	e.transport = (uint8_t)transport;
	if (transport != ENV_UDP)
		e.conn_id = ENV_CONN_ID(0x1234, 7);
	e.names = names;
	e.names_len = names ? strlen(names) : 0;
	e.msg = buf;
	e.len = h_crlf(text, buf, sizeof(buf));
	len = env_encode(&e, env, sizeof(env));
	assert_true(len > 0);
	h_link_send(h, env, (size_t)len);
}

#define FROM_B(method) \
	method " sip:nobody@example.com SIP/2.0\n" \
	"Via: SIP/2.0/TLS 127.0.0.1:5070;branch=z9hG4bK-mtls\n" \
	"From: <sip:carol@B.test>;tag=c1\n" \
	"To: <sip:nobody@example.com>\n" \
	"Call-ID: mtls@test\n" \
	"CSeq: 1 " method "\n" \
	"Max-Forwards: 70\n" \
	"Content-Length: 0\n\n"

/*
 * RFC 5922 7.4: From b.test, only a TLS connection whose certificate
 * the edge verified for b.test counts; a proven request goes on to the
 * lookup (404: nobody there), anything else is 403 before it.
 */
static void
test_core_fed__peer_domain_needs_its_certificate(void **state)
{
	static const struct {
		int transport;
		const char *names;
		const char *want;
	} cases[] = {
		{ ENV_UDP, NULL, "SIP/2.0 403" },
		/* Names on UDP come from no certificate. */
		{ ENV_UDP, "b.test", "SIP/2.0 403" },
		{ ENV_TCP, "b.test", "SIP/2.0 403" },
		{ ENV_TLS, NULL, "SIP/2.0 403" },
		{ ENV_TLS, "c.test", "SIP/2.0 403" },
		/* Whole names only: no suffix, no part. */
		{ ENV_TLS, "x.b.test b.test.evil test", "SIP/2.0 403" },
		{ ENV_TLS, "c.test b.test", "SIP/2.0 404" },
	};
	struct harness *h = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		h_clear(h);
		deliver_from(h, FROM_B("MESSAGE"), cases[i].transport,
			     cases[i].names);
		h_wait_sent(h, 1);
		h_flush(h);
		assert_int_equal(h->n, 1);
		h_assert_sent(h, 0, cases[i].want);
	}
	/* An ACK is never answered: an unproven one is dropped, which
	 * the OPTIONS after it (answered) shows. */
	h_clear(h);
	deliver_from(h, FROM_B("ACK"), ENV_UDP, NULL);
	deliver_from(h, FROM_B("OPTIONS"), ENV_UDP, NULL);
	h_wait_sent(h, 1);
	h_flush(h);
	assert_int_equal(h->n, 1);
	h_assert_sent(h, 0, "SIP/2.0 403");
	assert_non_null(strstr(h->sent[0], "CSeq: 1 OPTIONS"));
	/* Another domain needs nothing: the lookup answers. */
	h_clear(h);
	h_deliver(h, "MESSAGE sip:nobody@example.com SIP/2.0\n"
		  "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-mtls-2\n"
		  "From: <sip:dan@d.test>;tag=d1\n"
		  "To: <sip:nobody@example.com>\n"
		  "Call-ID: mtls-2@test\n"
		  "CSeq: 1 MESSAGE\n"
		  "Max-Forwards: 70\n"
		  "Content-Length: 0\n\n", 5070);
	h_wait_sent(h, 1);
	h_flush(h);
	h_assert_sent(h, 0, "SIP/2.0 404");
}

static struct dnsm dnsm;

static const char *const records[] = {
	"host-record=sip.b.test,127.0.0.1",
	/* b.test without a port: SRV, then its target's A record. */
	"srv-host=_sip._udp.b.test,sip.b.test,5091,10,10",
	NULL
};

static int
dlg_setup(void **state)
{
	char srv[64];

	dnsm_start(&dnsm, records);
	snprintf(conf, sizeof(conf), "[registrar]\ndomains = example.com\n"
		 "[federation]\ndns_servers = %s\n",
		 dnsm_servers(&dnsm, srv, sizeof(srv)));
	h_conf_extra = conf;
	return h_setup(state);
}

static int
dlg_teardown(void **state)
{
	int rc = h_teardown(state);

	dnsm_stop(&dnsm);
	return rc;
}

/* A silent DNS server that the core gives up on after 200 ms. */
static int
silent_setup(void **state)
{
	return setup_with(state, "dns_timeout_ms = 200\ndns_tries = 1\n");
}

/*
 * Delivers an in-dialog `method` whose route set is our own signed
 * Record-Route then <next> (a peer's), as the caller's UA would send
 * it, and pumps the loop until the core took it and `want` messages
 * were sent.
 */
static void
deliver_in_dialog(struct harness *h, const char *method, const char *next,
		  const char *cid, int want)
{
	char text[2048], sig[64];
	osip_message_t *m;
	uint64_t rx;

	snprintf(text, sizeof(text), "%s sip:bob@127.0.0.9:5999 SIP/2.0\n"
		 "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-%s-%s\n"
		 "From: <sip:alice@example.com>;tag=a1\n"
		 "To: <sip:bob@b.test>;tag=b1\n"
		 "Call-ID: %s\n"
		 "CSeq: 2 %s\n"
		 "Max-Forwards: 70\n"
		 "Content-Length: 0\n\n", method, method, cid, cid, method);
	m = h_parse(text);
	assert_int_equal(core_rr_param(h->c, m, NULL, sig, sizeof(sig)), 0);
	osip_message_free(m);
	snprintf(text, sizeof(text), "%s sip:bob@127.0.0.9:5999 SIP/2.0\n"
		 "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-%s-%s\n"
		 "Route: <sip:127.0.0.1:5060;lr%s>, %s\n"
		 "From: <sip:alice@example.com>;tag=a1\n"
		 "To: <sip:bob@b.test>;tag=b1\n"
		 "Call-ID: %s\n"
		 "CSeq: 2 %s\n"
		 "Max-Forwards: 70\n"
		 "Content-Length: 0\n\n", method, method, cid, sig, next, cid,
		 method);
	rx = h->c->st.rx_requests;
	h_deliver(h, text, 5070);
	/* The marker h_flush waits for is no barrier for what the core
	 * has yet to receive. */
	for (int i = 0; i < 500 && h->c->st.rx_requests == rx; i++)
		h_flush(h);
	assert_true(h->c->st.rx_requests > rx);
	h_wait_sent(h, want);
	h_flush(h);
}

/* Exactly one message was sent, starting with prefix, to dst (NULL:
 * to anywhere). */
static void
assert_one_sent(struct harness *h, const char *prefix, const char *dst)
{
	char a[64];

	assert_int_equal(h->n, 1);
	h_assert_sent(h, 0, prefix);
	if (dst)
		assert_string_equal(env_sa_str(&h->leg[0].dst, a, sizeof(a)),
				    dst);
}

/* The peer's Route names a host with a port: A record only, and the
 * BYE goes there with the peer's Route still on it; its 200 comes
 * back.  The ACK of a 2xx (no transaction) gets there too. */
static void
test_core_fed__in_dialog_route_by_name_is_located(void **state)
{
	struct harness *h = *state;

	deliver_in_dialog(h, "BYE", "<sip:sip.b.test:5090;lr>", "dlg-1@test",
			  1);
	assert_one_sent(h, "BYE sip:bob@127.0.0.9:5999", "127.0.0.1:5090");
	assert_non_null(strstr(h->sent[0], "Route: <sip:sip.b.test:5090;lr>"));
	assert_int_equal(dnsm_queries(&dnsm, "A", "sip.b.test"), 1);
	assert_int_equal(dnsm_queries(&dnsm, "SRV", "_sip._udp.sip.b.test"),
			 0);
	h_answer(h, 0, 200);
	h_clear(h);
	h_wait_sent(h, 1);
	h_flush(h);
	assert_one_sent(h, "SIP/2.0 200", NULL);

	/* The ACK, from the cache this time. */
	h_clear(h);
	deliver_in_dialog(h, "ACK", "<sip:sip.b.test:5090;lr>", "dlg-1@test",
			  1);
	assert_one_sent(h, "ACK sip:bob@127.0.0.9:5999", "127.0.0.1:5090");
	assert_int_equal(dnsm_queries(&dnsm, "A", "sip.b.test"), 1);
	assert_int_equal(h->c->st.ack_unlocated, 0);
}

/* A name without a port is a domain: RFC 3263 SRV, then A. */
static void
test_core_fed__in_dialog_route_by_domain_uses_srv(void **state)
{
	struct harness *h = *state;

	deliver_in_dialog(h, "BYE", "<sip:b.test;lr>", "dlg-2@test", 1);
	assert_one_sent(h, "BYE sip:bob@127.0.0.9:5999", "127.0.0.1:5091");
	assert_true(dnsm_queries(&dnsm, "SRV", "_sip._udp.b.test") >= 1);
}

/* NXDOMAIN: 404, as for an initial request; an ACK is dropped and
 * counted. */
static void
test_core_fed__in_dialog_unknown_name_is_404(void **state)
{
	struct harness *h = *state;

	deliver_in_dialog(h, "BYE", "<sip:nx.b.test:5090;lr>", "dlg-3@test",
			  1);
	assert_one_sent(h, "SIP/2.0 404", NULL);
	h_clear(h);
	deliver_in_dialog(h, "ACK", "<sip:nx.b.test:5090;lr>", "dlg-3@test",
			  0);
	for (int i = 0; i < 200 && h->c->st.ack_unlocated == 0; i++)
		h_flush(h);
	assert_int_equal(h->n, 0);
	assert_int_equal(h->c->st.ack_unlocated, 1);
	assert_int_equal(h->c->n_fed_acks, 0);
}

/* No DNS server answers: the BYE waits for the locate, then 503 with
 * Retry-After, never the old "Next Hop Unreachable" at once. */
static void
test_core_fed__in_dialog_dns_silent_is_503(void **state)
{
	struct harness *h = *state;

	deliver_in_dialog(h, "BYE", "<sip:sip.b.test:5090;lr>", "dlg-4@test",
			  0);
	assert_int_equal(h->n, 0);
	assert_true(queries(2000) > 0);
	h_wait_sent(h, 1);
	h_flush(h);
	assert_one_sent(h, "SIP/2.0 503", NULL);
	assert_non_null(strstr(h->sent[0], "Retry-After: "));
}

/* An ACK waiting for its locate when the core stops is freed with it
 * (run under `make test-san`). */
static void
test_core_fed__stop_with_ack_waiting(void **state)
{
	struct harness *h = *state;

	deliver_in_dialog(h, "ACK", "<sip:sip.b.test:5090;lr>", "dlg-5@test",
			  0);
	assert_int_equal(h->c->n_fed_acks, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_core_fed__cancel_while_locating_is_487,
			fed_setup, fed_teardown),
		cmocka_unit_test_setup_teardown(
			test_core_fed__stop_while_locating,
			fed_setup, fed_teardown),
		cmocka_unit_test_setup_teardown(
			test_core_fed__foreign_to_foreign_is_403_without_dns,
			fed_setup, fed_teardown),
		cmocka_unit_test_setup_teardown(
			test_core_fed__peer_domain_needs_its_certificate,
			mtls_setup, fed_teardown),
		cmocka_unit_test_setup_teardown(
			test_core_fed__in_dialog_route_by_name_is_located,
			dlg_setup, dlg_teardown),
		cmocka_unit_test_setup_teardown(
			test_core_fed__in_dialog_route_by_domain_uses_srv,
			dlg_setup, dlg_teardown),
		cmocka_unit_test_setup_teardown(
			test_core_fed__in_dialog_unknown_name_is_404,
			dlg_setup, dlg_teardown),
		cmocka_unit_test_setup_teardown(
			test_core_fed__in_dialog_dns_silent_is_503,
			silent_setup, fed_teardown),
		cmocka_unit_test_setup_teardown(
			test_core_fed__stop_with_ack_waiting,
			fed_setup, fed_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
