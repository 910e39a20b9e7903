/*
 * test_prom.c - the Prometheus text format of lib/prom.c: every counter
 * table of the processes (edge, core, rtpctl, link, the HTTP server)
 * is a valid one (names, labels, families together, HELP on each
 * family, unique series and log names), broken tables are refused,
 * rendering is exact, histogram buckets hold at their bounds, and the
 * SIP start-line counter takes hostile lines without miscounting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_int.h"
#include "edge/edge_int.h"
#include "lib/hsrv.h"
#include "lib/link.h"
#include "lib/prom.h"
#include "rtpctl/rtpc_int.h"

#define EDGE_ROW(f, m, h) PROM_ROW(edge_stats, f, #f, m, h)
#define CORE_ROW(f, l, m, h) PROM_ROW(core_stats, f, l, m, h)
#define RTPC_ROW(f, l, m, h) PROM_ROW(rtpc_stats, f, l, m, h)
#define HSRV_ROW(f, m, h) PROM_ROW(hsrv_stats, f, #f, m, h)

static const struct prom_row edge_rows[] = { EDGE_STATS(EDGE_ROW) };
static const struct prom_row core_rows[] = { CORE_STATS(CORE_ROW) };
static const struct prom_row rtpc_rows[] = { RTPC_STATS(RTPC_ROW) };
static const struct prom_row hsrv_rows[] = { HSRV_STATS(HSRV_ROW) };

#define N(t) (sizeof(t) / sizeof(*(t)))

static void
check_table(const struct prom_row *rows, size_t n, size_t st_size)
{
	const char *bad = NULL;

	if (prom_rows_check(rows, n, &bad) != 0)
		fail_msg("bad row: %s", bad);
	for (size_t i = 0; i < n; i++) {
		assert_true(rows[i].off + sizeof(uint64_t) <= st_size);
		for (size_t j = 0; j < i; j++)
			if (strcmp(rows[i].log, rows[j].log) == 0)
				fail_msg("log name %s twice", rows[i].log);
	}
}

static void
test_prom__process_tables_are_valid(void **state)
{
	(void)state;
	check_table(edge_rows, N(edge_rows), sizeof(struct edge_stats));
	check_table(core_rows, N(core_rows), sizeof(struct core_stats));
	check_table(rtpc_rows, N(rtpc_rows), sizeof(struct rtpc_stats));
	check_table(hsrv_rows, N(hsrv_rows), sizeof(struct hsrv_stats));
	check_table(prom_link_rows, prom_link_n_rows,
		    sizeof(struct link_stats));
	/* every field of each struct has its row */
	assert_int_equal(N(edge_rows) * 8, sizeof(struct edge_stats));
	assert_int_equal(N(core_rows) * 8, sizeof(struct core_stats));
	assert_int_equal(N(rtpc_rows) * 8, sizeof(struct rtpc_stats));
	assert_int_equal(prom_link_n_rows * 8, sizeof(struct link_stats));
}

struct two { uint64_t a, b; };

static void
test_prom__broken_tables_refused(void **state)
{
	static const struct {
		struct prom_row rows[3];
		int bad;	/* index of the row to be named */
	} cases[] = {
		/* a family come back after another */
		{ { { "a", "x_total{k=\"1\"}", "X", 0 }, { "b", "y_total", "Y", 8 },
		    { "c", "x_total{k=\"2\"}", "", 0 } }, 2 },
		/* a family's first row without HELP */
		{ { { "a", "x_total", "", 0 }, { "b", "y", "Y", 8 },
		    { "c", "z", "Z", 0 } }, 0 },
		/* the same series twice */
		{ { { "a", "x_total{k=\"1\"}", "X", 0 },
		    { "b", "x_total{k=\"1\"}", "", 8 }, { "c", "z", "Z", 0 } }, 1 },
		/* names and labels the format does not allow */
		{ { { "a", "X_total", "X", 0 }, { "b", "y", "Y", 8 },
		    { "c", "z", "Z", 0 } }, 0 },
		{ { { "a", "1x", "X", 0 }, { "b", "y", "Y", 8 },
		    { "c", "z", "Z", 0 } }, 0 },
		{ { { "a", "x{k=1}", "X", 0 }, { "b", "y", "Y", 8 },
		    { "c", "z", "Z", 0 } }, 0 },
		{ { { "a", "x{k=\"a\\\"b\"}", "X", 0 }, { "b", "y", "Y", 8 },
		    { "c", "z", "Z", 0 } }, 0 },
		{ { { "a", "x{k=\"1\"", "X", 0 }, { "b", "y", "Y", 8 },
		    { "c", "z", "Z", 0 } }, 0 },
		{ { { "a", "x{k=\"1\"}junk", "X", 0 }, { "b", "y", "Y", 8 },
		    { "c", "z", "Z", 0 } }, 0 },
		{ { { "a", "y", "Y", 8 }, { "b", "x-y", "X", 0 },
		    { "c", "z", "Z", 0 } }, 1 },
	};

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		const char *bad = NULL;

		assert_int_equal(prom_rows_check(cases[i].rows, 3, &bad),
				 -EINVAL);
		assert_ptr_equal(bad, cases[i].rows[cases[i].bad].metric);
	}
}

static void
test_prom__render_is_exact(void **state)
{
	static const struct prom_row rows[] = {
		{ "a", "drops_total{reason=\"x\"}", "Dropped, by reason",
		  offsetof(struct two, a) },
		{ "b", "drops_total{reason=\"y\"}", "", offsetof(struct two, b) },
		{ "b2", "live", "Live things", offsetof(struct two, b) },
	};
	struct two st = { 3, 18446744073709551615ull };
	struct hsrv_buf b = { 0 };
	char line[128] = "";

	(void)state;
	prom_rows(&b, "p_", rows, N(rows), &st);
	assert_false(b.oom);
	assert_string_equal(b.s,
		"# HELP p_drops_total Dropped, by reason\n"
		"# TYPE p_drops_total counter\n"
		"p_drops_total{reason=\"x\"} 3\n"
		"p_drops_total{reason=\"y\"} 18446744073709551615\n"
		"# HELP p_live Live things\n"
		"# TYPE p_live gauge\n"
		"p_live 18446744073709551615\n");
	free(b.s);
	prom_rows_line(line, sizeof(line), rows, N(rows), &st, "=");
	assert_string_equal(line, "a=3 b=18446744073709551615 "
			    "b2=18446744073709551615");
	/* cut to fit, never past the end */
	line[0] = '\0';
	prom_rows_line(line, 8, rows, N(rows), &st, " ");
	assert_string_equal(line, "a 3 b 1");
}

static void
test_prom__hist_buckets_at_their_bounds(void **state)
{
	struct prom_hist h = { 0 };
	struct hsrv_buf b = { 0 };

	(void)state;
	prom_hist_observe(&h, 0);
	prom_hist_observe(&h, 250000);		/* exactly 0.25 ms: le="0.00025" */
	prom_hist_observe(&h, 250001);		/* just over: le="0.0005" */
	prom_hist_observe(&h, 1000000000);	/* 1 s: the last bound */
	prom_hist_observe(&h, 1000000001);	/* over: +Inf only */
	assert_int_equal(h.count, 5);
	prom_hist_render(&b, "p_", "d_seconds", "method=\"X\"", &h);
	assert_non_null(strstr(b.s, "p_d_seconds_bucket{method=\"X\",le=\"0.00025\"} 2\n"
				    "p_d_seconds_bucket{method=\"X\",le=\"0.0005\"} 3\n"));
	assert_non_null(strstr(b.s, "p_d_seconds_bucket{method=\"X\",le=\"0.25\"} 3\n"
				    "p_d_seconds_bucket{method=\"X\",le=\"1\"} 4\n"
				    "p_d_seconds_bucket{method=\"X\",le=\"+Inf\"} 5\n"
				    "p_d_seconds_sum{method=\"X\"} 2.000500002\n"
				    "p_d_seconds_count{method=\"X\"} 5\n"));
	free(b.s);
	b = (struct hsrv_buf){ 0 };
	prom_hist_render(&b, "p_", "d_seconds", "", &h);
	assert_non_null(strstr(b.s, "p_d_seconds_bucket{le=\"+Inf\"} 5\n"
				    "p_d_seconds_sum 2.000500002\n"
				    "p_d_seconds_count 5\n"));
	free(b.s);
}

static void
test_prom__sip_start_lines(void **state)
{
	static const struct {
		const char *msg;
		int req;	/* enum prom_sip_method, or -1 */
		int cls;	/* 1..6, or 0 */
	} cases[] = {
		{ "REGISTER sip:a.test SIP/2.0\r\n", PROM_SIP_REGISTER, 0 },
		{ "INVITE sip:b@a.test SIP/2.0\r\n", PROM_SIP_INVITE, 0 },
		{ "ACK sip:b@a.test SIP/2.0\r\n", PROM_SIP_ACK, 0 },
		{ "SIP/2.0 200 OK\r\n", -1, 2 },
		{ "SIP/2.0 100 Trying\r\n", -1, 1 },
		{ "SIP/2.0 699 x\r\n", -1, 6 },
		{ "SIP/2.0 700 x\r\n", -1, 0 },		/* no such class */
		{ "SIP/2.0 099 x\r\n", -1, 0 },
		{ "SIP/2.0 ", -1, 0 },			/* cut short */
		{ "INVITEX sip:b SIP/2.0\r\n", PROM_SIP_OTHER, 0 },
		{ "invite sip:b SIP/2.0\r\n", PROM_SIP_OTHER, 0 },	/* case counts */
		{ "FOO sip:b SIP/2.0\r\n", PROM_SIP_OTHER, 0 },
		{ " INVITE sip:b SIP/2.0\r\n", -1, 0 },	/* no method */
		{ "AVERYLONGMETHODNAMEWITHOUTSPACE", -1, 0 },
		{ "", -1, 0 },
	};

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		struct prom_sip t = { 0 };
		uint64_t reqs = 0, resps = 0;

		prom_sip_count(&t, PROM_OUT, cases[i].msg, strlen(cases[i].msg));
		for (int m = 0; m < PROM_SIP_N_METHODS; m++) {
			assert_int_equal(t.req[PROM_IN][m], 0);
			reqs += t.req[PROM_OUT][m];
		}
		for (int k = 0; k < 6; k++)
			resps += t.resp[PROM_OUT][k];
		assert_int_equal(reqs, cases[i].req >= 0);
		assert_int_equal(resps, cases[i].cls > 0);
		if (cases[i].req >= 0)
			assert_int_equal(t.req[PROM_OUT][cases[i].req], 1);
		if (cases[i].cls > 0)
			assert_int_equal(t.resp[PROM_OUT][cases[i].cls - 1], 1);
	}
	assert_string_equal(prom_sip_method_name(PROM_SIP_OTHER), "other");
	assert_string_equal(prom_sip_method_name(PROM_SIP_MESSAGE), "MESSAGE");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prom__process_tables_are_valid),
		cmocka_unit_test(test_prom__broken_tables_refused),
		cmocka_unit_test(test_prom__render_is_exact),
		cmocka_unit_test(test_prom__hist_buckets_at_their_bounds),
		cmocka_unit_test(test_prom__sip_start_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
