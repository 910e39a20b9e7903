/*
 * test_core_txn.c - the transaction layer on a real core (see
 * core_harness.h): best-response selection (RFC 3261 16.7 step 6),
 * CANCEL held until a provisional response (9.1), the retransmission
 * timers and their T2 cap (17.1.1.2, 17.1.2.2), timers B/F and C
 * (16.8), the final response sent once every branch is done,
 * responses matching no transaction (forged, or stray 2xx), and which
 * responses are taken from their text alone (core_resp_scanned, as
 * every response here is first offered).
 */
#include "tests/unit/core/core_harness.h"

#define T1 500
#define T2 4000

static const char *const invite =
	"%s sip:bob@example.com SIP/2.0\n"
	"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-caller-%d\n"
	"From: <sip:alice@example.com>;tag=a1\n"
	"To: <sip:bob@example.com>\n"
	"Call-ID: txn-%d@test\n"
	"CSeq: 1 %s\n"
	"Max-Forwards: 70\n"
	"Content-Length: 0\n\n";

/*
 * A server transaction for a new request (INVITE or MESSAGE) and n
 * branches to 127.0.0.1:5081.., as the proxy would fork it.  After it
 * the sent list is cleared.
 */
static struct core_stx *
start(struct harness *h, const char *method, int n)
{
	static int seq;
	char text[1024];
	struct core_stx *s;
	struct env e;

	seq++;
	snprintf(text, sizeof(text), invite, method, seq, seq, method);
	h_env(&e, 5070);
	e.msg = text;	/* its length bounds the answers we make up */
	e.len = strlen(text);
	s = core_stx_new(h->c, &e, h_parse(text));
	assert_non_null(s);
	for (int i = 0; i < n; i++) {
		osip_message_t *fwd = NULL;
		struct core_leg down = { .edge_id = 1, .transport = ENV_UDP };

		env_sa_from(&down.dst, "127.0.0.1", 5081 + i);
		assert_int_equal(osip_message_clone(s->req, &fwd), 0);
		assert_non_null(core_ctx_new(s, &down, fwd));
	}
	core_stx_branch_done(s);
	h_flush(h);
	h_clear(h);
	return s;
}

/* How many messages sent since the last clear start with prefix;
 * clears them. */
static int
count(struct harness *h, const char *prefix)
{
	int k = 0;

	h_flush(h);
	for (int i = 0; i < h->n; i++)
		k += strncmp(h->sent[i], prefix, strlen(prefix)) == 0;
	h_clear(h);
	return k;
}

/* The callee behind branch b answers code (with one header hname:
 * hvalue when hname is not NULL) to the request the branch sent.  What
 * the core sends in return is left to the next flush. */
static void
answer_branch_with(struct harness *h, struct core_stx *s, int b, int code,
		   const char *hname, const char *hvalue)
{
	struct core_ctx *x = s->br[b];

	h_clear(h);
	h->sent[0] = strndup(x->req, x->req_len);
	h->n = 1;
	h_answer_with(h, 0, code, hname, hvalue);
	h_clear(h);
}

static void
answer_branch(struct harness *h, struct core_stx *s, int b, int code)
{
	answer_branch_with(h, s, b, code, NULL, NULL);
}

static void
test_core_txn__6xx_beats_every_other_class(void **state)
{
	struct harness *h = *state;
	struct core_stx *s = start(h, "INVITE", 3);

	answer_branch(h, s, 0, 486);
	answer_branch(h, s, 1, 302);
	assert_int_equal(count(h, "SIP/2.0 "), 0);	/* one still open */
	answer_branch(h, s, 2, 603);
	assert_int_equal(count(h, "SIP/2.0 603"), 1);
}

static void
test_core_txn__lowest_class_wins(void **state)
{
	struct harness *h = *state;
	struct core_stx *s = start(h, "INVITE", 3);

	answer_branch(h, s, 0, 503);
	answer_branch(h, s, 1, 486);
	answer_branch(h, s, 2, 302);
	assert_int_equal(count(h, "SIP/2.0 302"), 1);
}

static void
test_core_txn__503_goes_upstream_as_500(void **state)
{
	struct harness *h = *state;
	struct core_stx *s = start(h, "INVITE", 1);

	answer_branch(h, s, 0, 503);
	assert_int_equal(count(h, "SIP/2.0 500"), 1);
}

static void
test_core_txn__401_407_challenges_aggregated(void **state)
{
	struct harness *h = *state;
	struct core_stx *s = start(h, "INVITE", 3);
	osip_message_t *up;
	osip_www_authenticate_t *a = NULL;

	answer_branch_with(h, s, 0, 401, "WWW-Authenticate",
			   "Digest realm=\"a.example\", nonce=\"n1\"");
	answer_branch_with(h, s, 1, 407, "Proxy-Authenticate",
			   "Digest realm=\"b.example\", nonce=\"n2\"");
	answer_branch(h, s, 2, 404);
	h_flush(h);
	/* Three ACKs down, the 401 up with both challenges (16.7 step 6). */
	assert_int_equal(h->n, 4);
	h_assert_sent(h, 3, "SIP/2.0 401");
	up = h_parse(h->sent[3]);
	assert_int_equal(osip_list_size(&up->www_authenticates), 1);
	assert_int_equal(osip_list_size(&up->proxy_authenticates), 1);
	osip_message_get_proxy_authenticate(up, 0, &a);
	assert_string_equal(osip_www_authenticate_get_realm(a),
			    "\"b.example\"");
	osip_message_free(up);
}

static void
test_core_txn__final_once_all_branches_finish(void **state)
{
	struct harness *h = *state;
	struct core_stx *s = start(h, "INVITE", 3);
	int finals = 0;

	assert_int_equal(s->n_br, 3);
	for (int b = 0; b < 3; b++) {
		assert_int_equal(s->br[b]->state, CTX_CALLING);
		answer_branch(h, s, b, 480);
		h_flush(h);
		/* Each branch gets its ACK; only the last one a final. */
		for (int i = 0; i < h->n; i++)
			finals += strncmp(h->sent[i], "SIP/2.0 4", 9) == 0;
		assert_int_equal(finals, b == 2);
		h_clear(h);
	}
	assert_int_equal(s->state, STX_COMPLETED);
	/* A late retransmission of a final changes nothing. */
	answer_branch(h, s, 1, 480);
	assert_int_equal(count(h, "SIP/2.0 4"), 0);
}

static void
test_core_txn__cancel_waits_for_provisional(void **state)
{
	struct harness *h = *state;
	struct core_stx *s = start(h, "INVITE", 1);
	struct core_ctx *x = s->br[0];

	core_stx_cancel(s);
	/* No CANCEL down a branch that has not answered; the caller gets
	 * 487 at once. */
	h_flush(h);
	assert_int_equal(h->n, 1);
	h_assert_sent(h, 0, "SIP/2.0 487");
	h_clear(h);
	assert_int_equal(x->cancel_sent, 0);
	/* The first provisional response releases it. */
	answer_branch(h, s, 0, 180);
	assert_int_equal(count(h, "CANCEL "), 1);
	assert_int_equal(x->cancel_sent, 1);
}

/* Runs x's timer at each deadline; returns the intervals seen. */
static void
retransmit_intervals(struct harness *h, struct core_ctx *x, int *iv, int n)
{
	for (int i = 0; i < n; i++) {
		uint64_t at = x->retx_at;

		assert_true(at > h->now_ms);
		iv[i] = (int)(at - h->now_ms);
		h->now_ms = at;
		core_ctx_timer_run(x, h->now_ms);
		assert_int_equal(count(h, x->invite ? "INVITE " : "MESSAGE "), 1);
	}
}

static void
test_core_txn__timer_e_caps_at_t2(void **state)
{
	struct harness *h = *state;
	struct core_stx *s = start(h, "MESSAGE", 1);
	int iv[6], want[6] = { T1, 2 * T1, 4 * T1, T2, T2, T2 };

	retransmit_intervals(h, s->br[0], iv, 6);
	assert_memory_equal(iv, want, sizeof(iv));
}

static void
test_core_txn__timer_a_doubles_uncapped(void **state)
{
	struct harness *h = *state;
	struct core_stx *s = start(h, "INVITE", 1);
	int iv[5], want[5] = { T1, 2 * T1, 4 * T1, 8 * T1, 16 * T1 };

	retransmit_intervals(h, s->br[0], iv, 5);
	assert_memory_equal(iv, want, sizeof(iv));
}

static void
test_core_txn__timer_f_times_out_with_408(void **state)
{
	struct harness *h = *state;
	struct core_stx *s = start(h, "MESSAGE", 1);
	struct core_ctx *x = s->br[0];
	const char *log;
	char want[160];

	assert_true(x->timeout_at == h->now_ms + 64 * T1);
	h->now_ms = x->timeout_at;
	/* As the timer's callback does: with the call's log context, the
	 * timeout and the 408 we make up are logged with its Call-ID. */
	h_log_start();
	log_ctx_set(s->call_id, strlen(s->call_id));
	core_ctx_timer_run(x, h->now_ms);
	log_ctx_clear();
	log = h_log_stop();
	assert_int_equal(count(h, "SIP/2.0 408"), 1);
	assert_int_equal(x->code, 408);
	assert_int_equal(x->retx_at, 0);
	snprintf(want, sizeof(want), "txn: [%s] no final response from "
		 "127.0.0.1:5081", s->call_id);
	assert_non_null(strstr(log, want));
	assert_non_null(strstr(log, "(timer F)"));
	snprintf(want, sizeof(want), "txn: [%s] answering 408", s->call_id);
	assert_non_null(strstr(log, want));
}

static void
test_core_txn__timer_b_times_out_with_408(void **state)
{
	struct harness *h = *state;
	struct core_stx *s = start(h, "INVITE", 1);
	struct core_ctx *x = s->br[0];

	assert_true(x->timeout_at == h->now_ms + 64 * T1);
	h->now_ms = x->timeout_at;
	core_ctx_timer_run(x, h->now_ms);
	assert_int_equal(count(h, "SIP/2.0 408"), 1);
}

static void
test_core_txn__timer_c_cancels_then_408(void **state)
{
	struct harness *h = *state;
	struct core_stx *s = start(h, "INVITE", 1);
	struct core_ctx *x = s->br[0];

	answer_branch(h, s, 0, 180);
	assert_int_equal(count(h, "SIP/2.0 180"), 1);
	/* Timer C, not B, once the branch rings (RFC 3261 16.8). */
	assert_int_equal(x->timer_c, 1);
	assert_true(x->timeout_at == h->now_ms + 180 * 1000);
	h->now_ms += 60 * 1000;
	answer_branch(h, s, 0, 183);	/* restarts it */
	assert_true(x->timeout_at == h->now_ms + 180 * 1000);
	h_flush(h);
	h_clear(h);
	h->now_ms = x->timeout_at;
	core_ctx_timer_run(x, h->now_ms);
	assert_int_equal(count(h, "CANCEL "), 1);
	/* No final answer to the CANCEL's 64*T1: as if 408 came. */
	h->now_ms = x->timeout_at;
	core_ctx_timer_run(x, h->now_ms);
	assert_int_equal(count(h, "SIP/2.0 408"), 1);
}

static void
test_core_txn__made_up_487_logged_with_call_id(void **state)
{
	struct harness *h = *state;
	struct core_stx *s = start(h, "INVITE", 1);
	char text[1024], want[160];
	const char *log;
	int seq = 0;

	sscanf(s->call_id, "txn-%d@", &seq);
	snprintf(text, sizeof(text), invite, "CANCEL", seq, seq, "CANCEL");
	log_set_level(LOG_SYS_TXN, LOG_LVL_INFO);
	h_log_start();
	h_deliver(h, text, 5070);
	h_wait_sent(h, 2);		/* 200 to the CANCEL, 487 */
	log = h_log_stop();
	log_set_level(LOG_SYS_TXN, LOG_LVL_NOTICE);
	h_assert_sent(h, 0, "SIP/2.0 200");
	h_assert_sent(h, 1, "SIP/2.0 487");
	snprintf(want, sizeof(want), "txn: [%s] answering 487", s->call_id);
	assert_non_null(strstr(log, want));
}

/*
 * A response with no transaction: top Via branch minted by the core
 * for Call-ID `minted_for` (then `params`), the response's own Call-ID
 * `cid`, CSeq `cseq` of method `method` and second Via `via2`.  Returns
 * how many messages the core sent for it (in h->sent, until the next
 * clear).
 */
static int
stray_cseq(struct harness *h, const char *minted_for, const char *params,
	   const char *cid, int cseq, const char *method, const char *via2)
{
	osip_message_t *m = NULL;
	char branch[SIP_BRANCH_MAX], text[1024];

	assert_int_equal(osip_message_init(&m), 0);
	osip_message_set_call_id(m, minted_for);
	assert_true(core_branch_make(h->c, m, 77, branch, sizeof(branch)) > 0);
	osip_message_free(m);
	snprintf(text, sizeof(text), "SIP/2.0 200 OK\n"
		 "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=%s%s\n"
		 "Via: %s\n"
		 "From: <sip:alice@example.com>;tag=a1\n"
		 "To: <sip:bob@example.com>;tag=b1\n"
		 "Call-ID: %s\nCSeq: %d %s\nContent-Length: 0\n\n",
		 branch, params, via2, cid, cseq, method);
	h_clear(h);
	h_response(h, text, 5090);
	return h_flush(h);
}

static int
stray(struct harness *h, const char *minted_for, const char *cid,
      const char *method, const char *via2)
{
	return stray_cseq(h, minted_for, "", cid, 1, method, via2);
}

/* Only a 2xx of an INVITE on a branch the core minted for its Call-ID
 * goes on statelessly, on its next Via's transport, never to the
 * cluster's own listener; the rest is counted and dropped. */
static void
test_core_txn__stray_2xx_only_on_our_branch(void **state)
{
	struct harness *h = *state;
	const char *udp = "SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-up";
	struct core_stats before = h->c->st;

	assert_int_equal(stray(h, "s1@t", "s1@t", "INVITE", udp), 1);
	h_assert_sent(h, 0, "SIP/2.0 200");
	assert_int_equal(env_sa_port(&h->leg[0].dst), 5099);
	assert_int_equal(h->leg[0].transport, ENV_UDP);
	assert_null(strstr(h->sent[0], "z9hG4bKsm"));	/* our Via is gone */
	assert_int_equal(stray(h, "s1@t", "s2@t", "INVITE", udp), 0);
	assert_int_equal(h->c->st.resp_forged, before.resp_forged + 1);
	assert_int_equal(stray(h, "s3@t", "s3@t", "MESSAGE", udp), 0);
	/* Received/rport at the edge's own UDP listener: not sent. */
	assert_int_equal(stray(h, "s4@t", "s4@t", "INVITE", "SIP/2.0/UDP "
			       "192.0.2.1;received=127.0.0.1;rport=5060;"
			       "branch=z9hG4bK-up"), 0);
	assert_int_equal(h->c->st.tx_infra, before.tx_infra + 1);
	/* The same port over TCP is no listener of ours. */
	assert_int_equal(stray(h, "s5@t", "s5@t", "INVITE", "SIP/2.0/TCP "
			       "[::ffff:127.0.0.1]:5060;branch=z9hG4bK-up"), 1);
	assert_int_equal(h->leg[0].transport, ENV_TCP);
	assert_int_equal(h->c->st.resp_forged, before.resp_forged + 1);
	/* A trunk gateway's 2xx resent late, one CSeq ahead of the caller
	 * (our Via says so): the caller gets its own CSeq back. */
	assert_int_equal(stray_cseq(h, "s6@t", ";sm-cs=1", "s6@t", 8, "INVITE",
				    udp), 1);
	assert_non_null(strstr(h->sent[0], "CSeq: 7 INVITE"));
	h_clear(h);
}

/*
 * The response code to branch b's request, as the callee writes it
 * (its Vias, To with a tag, the rest as in the request; a body when
 * sdp): core_resp_scanned's verdict, and the text sent upstream (NULL
 * when none) in *out, to free.
 */
static int
scan_answer(struct harness *h, struct core_stx *s, int b, int code, int sdp,
	    char **out)
{
	struct core_ctx *x = s->br[b];
	const char *hdr = strstr(x->req, "\nVia:") + 1;
	const char *to = strstr(x->req, "\nTo: <sip:bob@example.com>") + 26;
	const char *end = strstr(x->req, "Content-Length:");
	char text[2048];
	int rc;

	snprintf(text, sizeof(text), "SIP/2.0 %d %s\r\n%.*s;tag=b%.*s"
		 "Contact: <sip:bob@127.0.0.1:%d>\r\n%s", code,
		 core_reason(code), (int)(to - hdr), hdr, (int)(end - to), to,
		 5081 + b, sdp ? "Content-Type: application/sdp\r\n"
		 "Content-Length: 5\r\n\r\nv=0\r\n" :
		 "Content-Length: 0\r\n\r\n");
	h_clear(h);
	rc = h_response(h, text, 5081 + b);
	h_flush(h);
	*out = h->n ? strdup(h->sent[0]) : NULL;
	h_clear(h);
	return rc;
}

/* A 1xx or 2xx on a branch of ours is taken from its text and goes on
 * as the parsed one would: the same bytes, our Via cut out; a final
 * 3xx-6xx (kept for the best response, ACKed) is parsed. */
static void
test_core_txn__scanned_response_as_parsed(void **state)
{
	struct harness *h = *state;
	struct core_stx *s = start(h, "INVITE", 2);
	char *out = NULL;

	assert_int_equal(scan_answer(h, s, 0, 180, 0, &out), 1);
	assert_non_null(out);
	assert_true(strncmp(out, "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP "
			    "127.0.0.1:5070;branch=z9hG4bK-caller-", 56) == 0);
	assert_null(strstr(out, "z9hG4bKsm"));
	assert_non_null(strstr(out, ";tag=b\r\n"));
	free(out);
	assert_int_equal(scan_answer(h, s, 1, 486, 0, &out), 0);
	free(out);
	assert_int_equal(s->br[1]->code, 486);
	assert_int_equal(scan_answer(h, s, 0, 200, 1, &out), 1);
	assert_non_null(out);
	assert_true(strncmp(out, "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP "
			    "127.0.0.1:5070;", 47) == 0);
	assert_non_null(strstr(out, "\r\n\r\nv=0\r\n"));
	free(out);
	assert_int_equal(s->state, STX_ACCEPTED);
	assert_int_equal(s->br[0]->state, CTX_ACCEPTED);
}

/* The edge hands back branch b's request: its flow (connection 7) is
 * gone, or with ENV_F_DIAL_FAILED it could not be carried at all. */
static void
hand_back(struct harness *h, struct core_stx *s, int b, unsigned flags)
{
	struct core_ctx *x = s->br[b];
	struct env e;

	h_env(&e, 5081 + b);
	e.type = ENV_CONN_CLOSED;
	e.conn_id = 7;
	e.flags = (uint8_t)flags;
	e.msg = x->req;
	e.len = x->req_len;
	core_flow_failed(h->c, &e);
}

static void
test_core_txn__failed_flow_answers_430(void **state)
{
	struct harness *h = *state;
	struct core_stx *s = start(h, "MESSAGE", 1);

	hand_back(h, s, 0, 0);
	assert_int_equal(count(h, "SIP/2.0 430"), 1);
}

static void
test_core_txn__transport_error_goes_upstream_as_500(void **state)
{
	struct harness *h = *state;
	struct core_stx *s = start(h, "INVITE", 2);

	hand_back(h, s, 0, ENV_F_DIAL_FAILED);
	/* The other branch may still answer: nothing goes up yet. */
	assert_int_equal(count(h, "SIP/2.0 5"), 0);
	hand_back(h, s, 1, ENV_F_DIAL_FAILED);
	/* RFC 3261 16.9 and 16.7: a 503 for each branch, 500 upstream. */
	assert_int_equal(count(h, "SIP/2.0 500"), 1);
}

/*
 * What the core makes up for a datagram is at most SIP_REPLY_AMP times
 * its size, the top Via's received= and rport value taken off: here a
 * request claimed to be 60 bytes, so its 100 Trying and its final (no
 * branch: 500) go nowhere (counted), and nothing is kept to
 * retransmit.  The same
 * request over TCP is answered.
 */
static void
test_core_txn__made_up_replies_bounded_over_udp(void **state)
{
	struct harness *h = *state;
	char text[1024];
	struct core_stx *s;
	struct env e;

	snprintf(text, sizeof(text), invite, "INVITE", 900, 900, "INVITE");
	h_env(&e, 5070);
	e.msg = text;
	e.len = 60;
	s = core_stx_new(h->c, &e, h_parse(text));
	assert_non_null(s);
	core_stx_cancel(s);
	assert_int_equal(h_flush(h), 0);
	assert_int_equal(h->c->st.replies_amp, 2);
	assert_null(s->resp);

	snprintf(text, sizeof(text), invite, "INVITE", 901, 901, "INVITE");
	e.transport = ENV_TCP;
	e.conn_id = ENV_CONN_ID(0x1234, 7);
	s = core_stx_new(h->c, &e, h_parse(text));
	assert_non_null(s);
	h_flush(h);
	h_assert_sent(h, 0, "SIP/2.0 100");
	assert_int_equal(h->c->st.replies_amp, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, h_setup, h_teardown)
		T(test_core_txn__6xx_beats_every_other_class),
		T(test_core_txn__lowest_class_wins),
		T(test_core_txn__503_goes_upstream_as_500),
		T(test_core_txn__401_407_challenges_aggregated),
		T(test_core_txn__final_once_all_branches_finish),
		T(test_core_txn__cancel_waits_for_provisional),
		T(test_core_txn__timer_e_caps_at_t2),
		T(test_core_txn__timer_a_doubles_uncapped),
		T(test_core_txn__timer_f_times_out_with_408),
		T(test_core_txn__timer_b_times_out_with_408),
		T(test_core_txn__timer_c_cancels_then_408),
		T(test_core_txn__made_up_487_logged_with_call_id),
		T(test_core_txn__scanned_response_as_parsed),
		T(test_core_txn__stray_2xx_only_on_our_branch),
		T(test_core_txn__failed_flow_answers_430),
		T(test_core_txn__transport_error_goes_upstream_as_500),
		T(test_core_txn__made_up_replies_bounded_over_udp),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
