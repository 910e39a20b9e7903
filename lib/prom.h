/*
 * prom.h - counters a process keeps, rendered in the Prometheus text
 * exposition format (version 0.0.4) when scraped.
 *
 * The hot path only increments plain uint64_t fields on the loop
 * thread; nothing is formatted until a scrape (or a SIGUSR1 log line)
 * asks.  A process's counters are rows of an X-macro, and each row
 * gives the struct field, the name in the log line, the metric and its
 * HELP, so a counter cannot be added to one and forgotten in another.
 * The renderer is generic over such row tables (struct prom_row), so
 * edge, core, rtpctl and lib/link.h share it.
 */
#ifndef SM_PROM_H
#define SM_PROM_H

#include "lib/hsrv.h"

#include <stddef.h>
#include <stdint.h>

/* The Content-Type of the text format. */
#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/*
 * One counter or gauge: a uint64_t at off in a stats struct.  metric is
 * the name after the process's prefix, labels included
 * ("drops_total{reason=\"no_core\"}"); a name ending in "_total" is a
 * counter, any other a gauge.  Rows of one family (the same name before
 * '{') must be adjacent; the first carries the family's HELP, the others
 * "" (tests/unit/lib/test_prom.c checks every table).
 */
struct prom_row {
	const char *log;	/* name in the log line */
	const char *metric;
	const char *help;
	size_t off;
};

/* A row from a column of an X-macro, for a table of struct prom_row. */
#define PROM_ROW(type, field, log, metric, help) \
	{ log, metric, help, offsetof(struct type, field) },

/*
 * Serves GET /metrics on addr ("host:port") with cb(arg, ...) on loop
 * (lib/hsrv.h, default limits) and logs where; who names the process
 * in the log line.  Writes *out on success only.  Returns 0 or
 * hsrv_new()'s negative errno (logged).
 */
int prom_listen(struct hsrv **out, uv_loop_t *loop, const char *addr,
		hsrv_handler_cb cb, void *arg, const char *who);

/* The server's own counters (struct hsrv_stats), after prefix. */
void prom_hsrv_render(struct hsrv_buf *b, const char *prefix,
		      const struct hsrv *s);

/*
 * A link's counters (LINK_STATS) and, as the gauge prefix + peers
 * (with HELP help), how many peers are connected to its endpoint.
 */
struct link;
void prom_link_render(struct hsrv_buf *b, const char *prefix,
		      const struct link *l, const char *peers,
		      const char *help);

/* The rows of struct link_stats (lib/link.h LINK_STATS). */
extern const struct prom_row prom_link_rows[];
extern const size_t prom_link_n_rows;

/*
 * Renders n rows of the struct at st, each metric named prefix +
 * row->metric, with # HELP and # TYPE once per family.
 */
void prom_rows(struct hsrv_buf *b, const char *prefix,
	       const struct prom_row *rows, size_t n, const void *st);

/*
 * Writes the rows as "<log><sep><value>" separated by spaces into
 * out[cap] (cut to fit, NUL-terminated), after what out holds: the
 * body of a stats log line.
 */
void prom_rows_line(char *out, size_t cap, const struct prom_row *rows,
		    size_t n, const void *st, const char *sep);

/*
 * Whether rows make a valid table: names are [a-z_:][a-z0-9_:]*, label
 * sets well formed, families adjacent, each first row with a HELP.
 * Returns 0, or -EINVAL with the offending metric in *bad.
 */
int prom_rows_check(const struct prom_row *rows, size_t n, const char **bad);

/* # HELP and # TYPE of one family (prefix + name). */
void prom_family(struct hsrv_buf *b, const char *prefix, const char *name,
		 const char *type, const char *help);

/* ---- latency histograms: fixed buckets, in seconds when rendered ---- */

/* Upper bounds of the buckets in ms: 0.25 .. 1000 (and +Inf). */
#define PROM_HIST_BOUNDS(X) \
	X(250000, "0.00025") X(500000, "0.0005") X(1000000, "0.001") \
	X(2500000, "0.0025") X(5000000, "0.005") X(10000000, "0.01") \
	X(25000000, "0.025") X(50000000, "0.05") X(100000000, "0.1") \
	X(250000000, "0.25") X(1000000000, "1")

#define PROM_HIST_N 11

struct prom_hist {
	uint64_t bucket[PROM_HIST_N + 1];	/* not cumulative; last: +Inf */
	uint64_t count;
	uint64_t sum_ns;
};

/* Counts one observation of ns nanoseconds.  O(buckets), no call out. */
void prom_hist_observe(struct prom_hist *h, uint64_t ns);

/*
 * Renders h as the series of prefix + name (a family whose HELP/TYPE
 * the caller wrote with prom_family(..., "histogram", ...)), with the
 * labels "k=\"v\"" (or "" for none).
 */
void prom_hist_render(struct hsrv_buf *b, const char *prefix,
		      const char *name, const char *labels,
		      const struct prom_hist *h);

/* ---- SIP traffic: requests by method, responses by class, in and out ---- */

/* Methods counted by name; any other is "other". */
#define PROM_SIP_METHODS(X) \
	X(REGISTER) X(OPTIONS) X(INVITE) X(ACK) X(BYE) X(CANCEL) \
	X(MESSAGE) X(SUBSCRIBE) X(NOTIFY) X(PUBLISH) X(INFO) X(PRACK) \
	X(UPDATE) X(REFER)

enum prom_sip_method {
#define PROM_SIP_M_ENUM(m) PROM_SIP_##m,
	PROM_SIP_METHODS(PROM_SIP_M_ENUM)
#undef PROM_SIP_M_ENUM
	PROM_SIP_OTHER,
	PROM_SIP_N_METHODS
};

enum prom_dir { PROM_IN = 0, PROM_OUT = 1 };

struct prom_sip {
	uint64_t req[2][PROM_SIP_N_METHODS];	/* by enum prom_dir */
	uint64_t resp[2][6];			/* 1xx .. 6xx */
};

/* The method's index (PROM_SIP_OTHER for an unknown one). */
enum prom_sip_method prom_sip_method(const char *m, size_t len);
/* Its name, "other" for PROM_SIP_OTHER. */
const char *prom_sip_method_name(enum prom_sip_method m);

/*
 * Counts the SIP message in buf (its start line only: a request's
 * method, a response's class), in direction dir.  Anything else is
 * not counted.  A few compares; no parse.
 */
void prom_sip_count(struct prom_sip *t, enum prom_dir dir, const char *buf,
		    size_t len);

/* Renders prefix + "sip_requests_total{direction,method}" and
 * "sip_responses_total{direction,class}", every series even at 0 (a
 * series that appears late loses its first increase() in a query). */
void prom_sip_render(struct hsrv_buf *b, const char *prefix,
		     const struct prom_sip *t);

#endif
