/*
 * test_rtpc_ng.c - ng commands in flight (rtpctl/rtpc_ng.c): cookie
 * format and uniqueness across processes, reply matching by cookie
 * (and refusal of foreign, stale, malformed cookies), retransmission
 * keeping the same bytes, and deadline order with explicit times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtpctl/rtpc_int.h"

static const char ping[] = "d7:command4:pinge";

static void
test_rtpc_ng__cookie_and_message(void **state)
{
	static struct rtpc_ng_tab t, u;
	struct rtpc_ng *a, *b, *c;
	char cookie[64];

	(void)state;
	rtpc_ng_init(&t, 0x1234abcdULL, 500);
	rtpc_ng_init(&u, 0x9999ULL, 500);
	a = rtpc_ng_new(&t, 0, ping, sizeof(ping) - 1, 3, NULL);
	b = rtpc_ng_new(&t, 1, ping, sizeof(ping) - 1, 3, NULL);
	c = rtpc_ng_new(&u, 0, ping, sizeof(ping) - 1, 3, NULL);
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	/* "<cookie> <dict>", the cookie free of spaces. */
	snprintf(cookie, sizeof(cookie), "%.*s", (int)a->cookie_len, a->msg);
	assert_string_equal(cookie, "000000001234abcd_1");
	assert_int_equal(a->len, a->cookie_len + 1 + sizeof(ping) - 1);
	assert_memory_equal(a->msg + a->cookie_len, " d7:command4:pinge",
			    sizeof(ping));
	/* Unique within a process and between processes. */
	assert_int_not_equal(a->cookie_len == b->cookie_len &&
			     !memcmp(a->msg, b->msg, a->cookie_len), 1);
	assert_int_not_equal(a->cookie_len == c->cookie_len &&
			     !memcmp(a->msg, c->msg, a->cookie_len), 1);
	assert_int_equal(t.count, 2);
	rtpc_ng_free(&t, a);
	rtpc_ng_free(&t, b);
	rtpc_ng_free(&u, c);
	assert_int_equal(t.count, 0);
	rtpc_ng_free(&t, NULL);
	rtpc_ng_fini(&t);
	rtpc_ng_fini(&u);
}

/* Builds "<cookie of ng> <reply>" as rtpengine would answer. */
static size_t
answer(const struct rtpc_ng *ng, const char *reply, char *out, size_t cap)
{
	return (size_t)snprintf(out, cap, "%.*s %s", (int)ng->cookie_len,
				ng->msg, reply);
}

static void
test_rtpc_ng__match(void **state)
{
	static struct rtpc_ng_tab t, other;
	struct rtpc_ng *ngs[300], *m, *foreign;
	const char *dict;
	size_t dlen, n;
	char buf[128];

	(void)state;
	rtpc_ng_init(&t, 42, 500);
	rtpc_ng_init(&other, 43, 500);
	for (int i = 0; i < 300; i++) {
		ngs[i] = rtpc_ng_new(&t, i % 2, ping, sizeof(ping) - 1, 3, NULL);
		rtpc_ng_sent(&t, ngs[i], 0);
	}
	/* Answers in reverse order find their own command. */
	for (int i = 299; i >= 0; i--) {
		n = answer(ngs[i], "d6:result4:ponge", buf, sizeof(buf));
		m = rtpc_ng_match(&t, buf, n, &dict, &dlen);
		assert_ptr_equal(m, ngs[i]);
		assert_int_equal(dlen, strlen("d6:result4:ponge"));
		assert_memory_equal(dict, "d6:result4:ponge", dlen);
	}
	/* Another process's cookie, even with the same sequence. */
	foreign = rtpc_ng_new(&other, 0, ping, sizeof(ping) - 1, 3, NULL);
	n = answer(foreign, "de", buf, sizeof(buf));
	assert_null(rtpc_ng_match(&t, buf, n, &dict, &dlen));
	/* A late duplicate of a finished command. */
	n = answer(ngs[7], "de", buf, sizeof(buf));
	rtpc_ng_free(&t, ngs[7]);
	assert_null(rtpc_ng_match(&t, buf, n, &dict, &dlen));
	/* Malformed datagrams. */
	{
		static const char *bad[] = {
			"", "nospace", " de", "000000000000002a_ de",
			"000000000000002a de", "000000000000002a_zz de",
			"000000000000002a_11111111111111111 de",
			"000000000000002b_1 de",
			"000000000000002A_1 de",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
			assert_null(rtpc_ng_match(&t, bad[i], strlen(bad[i]),
						  &dict, &dlen));
	}
	/* A prefix of a real cookie is not that cookie. */
	n = answer(ngs[20], "de", buf, sizeof(buf));	/* seq 0x15 */
	memmove(buf + ngs[20]->cookie_len - 1, buf + ngs[20]->cookie_len,
		n - ngs[20]->cookie_len);
	m = rtpc_ng_match(&t, buf, n - 1, &dict, &dlen);
	assert_true(m == NULL || m->seq == 1);	/* "..._1": another one */
	for (int i = 0; i < 300; i++)
		if (i != 7)
			rtpc_ng_free(&t, ngs[i]);
	rtpc_ng_free(&other, foreign);
	assert_int_equal(t.count, 0);
	assert_null(rtpc_ng_first(&t));
	rtpc_ng_fini(&t);
	rtpc_ng_fini(&other);
}

/*
 * Retransmission: due after timeout_ms, resent with the same bytes,
 * deadline order kept; a command with tries left is resent, one
 * without is the caller's to give up.
 */
static void
test_rtpc_ng__retransmit_schedule(void **state)
{
	static struct rtpc_ng_tab t;
	struct rtpc_ng *a, *b;
	char before[64];

	(void)state;
	rtpc_ng_init(&t, 1, 500);
	assert_int_equal(rtpc_ng_next_deadline(&t), 0);
	a = rtpc_ng_new(&t, 0, ping, sizeof(ping) - 1, 3, NULL);
	assert_null(rtpc_ng_due(&t, 1000000));	/* not sent yet */
	rtpc_ng_sent(&t, a, 1000);
	b = rtpc_ng_new(&t, 0, ping, sizeof(ping) - 1, 1, NULL);
	rtpc_ng_sent(&t, b, 1200);
	memcpy(before, a->msg, a->len);
	assert_true(rtpc_ng_next_deadline(&t) == 1500);
	assert_null(rtpc_ng_due(&t, 1499));
	assert_ptr_equal(rtpc_ng_due(&t, 1500), a);
	assert_true(a->tries < a->max_tries);
	rtpc_ng_sent(&t, a, 1500);		/* the retransmission */
	assert_int_equal(a->tries, 2);
	assert_memory_equal(a->msg, before, a->len);	/* same cookie */
	assert_true(rtpc_ng_next_deadline(&t) == 1700);
	assert_ptr_equal(rtpc_ng_due(&t, 1700), b);
	assert_int_equal(b->tries, b->max_tries);	/* give up */
	rtpc_ng_free(&t, b);
	assert_true(rtpc_ng_next_deadline(&t) == 2000);
	rtpc_ng_sent(&t, rtpc_ng_due(&t, 2000), 2000);
	assert_int_equal(a->tries, 3);
	assert_ptr_equal(rtpc_ng_due(&t, 2500), a);
	assert_int_equal(a->tries, a->max_tries);
	rtpc_ng_free(&t, a);
	assert_int_equal(rtpc_ng_next_deadline(&t), 0);
	assert_int_equal(t.count, 0);
	rtpc_ng_fini(&t);
}

/* Deadline order against a model under random sends and frees. */
static void
test_rtpc_ng__order_model(void **state)
{
	static struct rtpc_ng_tab t;
	struct rtpc_ng *live[64] = { 0 };
	uint32_t x = 99;
	uint64_t now = 0;

	(void)state;
	rtpc_ng_init(&t, 5, 300);
	for (int step = 0; step < 20000; step++) {
		int k;

		x = x * 1103515245u + 12345u;
		k = (int)((x >> 16) % 64);
		now += (x >> 8) % 7;
		if (live[k] == NULL) {
			live[k] = rtpc_ng_new(&t, 0, ping, sizeof(ping) - 1, 3,
					      NULL);
			rtpc_ng_sent(&t, live[k], now);
		} else if ((x >> 4) % 3 == 0) {
			rtpc_ng_sent(&t, live[k], now);
		} else {
			rtpc_ng_free(&t, live[k]);
			live[k] = NULL;
		}
		/* The head is the earliest deadline, the list sorted. */
		{
			uint64_t min = UINT64_MAX, prev = 0;
			int n = 0;

			for (int i = 0; i < 64; i++)
				if (live[i] && live[i]->deadline < min)
					min = live[i]->deadline;
			for (struct rtpc_ng *g = rtpc_ng_first(&t); g;
			     g = rtpc_ng_after(&t, g)) {
				assert_true(g->deadline >= prev);
				prev = g->deadline;
				n++;
			}
			assert_int_equal(n, t.count);
			if (t.count)
				assert_true(rtpc_ng_next_deadline(&t) == min);
		}
	}
	for (int i = 0; i < 64; i++)
		rtpc_ng_free(&t, live[i]);
	assert_int_equal(t.count, 0);
	rtpc_ng_fini(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rtpc_ng__cookie_and_message),
		cmocka_unit_test(test_rtpc_ng__match),
		cmocka_unit_test(test_rtpc_ng__retransmit_schedule),
		cmocka_unit_test(test_rtpc_ng__order_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
