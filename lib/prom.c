/*
 * prom.c - the Prometheus text format of prom.h.
 *
 * Rendering walks the row tables once, printing each family's # HELP
 * and # TYPE before its first row; cost is a few hundred short printf
 * calls per scrape, on the loop, which is what a scrape every few
 * seconds can afford.  Counting (prom_sip_count, prom_hist_observe)
 * is what the hot path pays: a handful of compares and an increment.
 */
#include "lib/prom.h"
#include "lib/link.h"

#include "lib/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* uint64_t is what prom_rows reads from every row's field. */
_Static_assert(sizeof(unsigned long long) == sizeof(uint64_t),
	       "link_stats fields are read as uint64_t");

#define PROM_LINK_ROW(f, log, metric, help) \
	PROM_ROW(link_stats, f, log, metric, help)
const struct prom_row prom_link_rows[] = { LINK_STATS(PROM_LINK_ROW) };
#undef PROM_LINK_ROW
const size_t prom_link_n_rows = sizeof(prom_link_rows) /
				sizeof(*prom_link_rows);

#define PROM_HSRV_ROW(f, metric, help) \
	PROM_ROW(hsrv_stats, f, #f, metric, help)
static const struct prom_row prom_hsrv_rows[] = { HSRV_STATS(PROM_HSRV_ROW) };
#undef PROM_HSRV_ROW

/* Length of the family name: the metric up to its labels. */
static size_t
prom_family_len(const char *metric)
{
	return strcspn(metric, "{");
}

static int
prom_is_counter(const char *metric)
{
	size_t n = prom_family_len(metric);

	return n > 6 && memcmp(metric + n - 6, "_total", 6) == 0;
}

void
prom_family(struct hsrv_buf *b, const char *prefix, const char *name,
	    const char *type, const char *help)
{
	int n = (int)prom_family_len(name);

	hsrv_printf(b, "# HELP %s%.*s %s\n# TYPE %s%.*s %s\n", prefix, n, name,
		    help, prefix, n, name, type);
}

void
prom_rows(struct hsrv_buf *b, const char *prefix, const struct prom_row *rows,
	  size_t n, const void *st)
{
	const char *fam = NULL;
	size_t fam_len = 0;

	for (size_t i = 0; i < n; i++) {
		const struct prom_row *r = &rows[i];
		size_t len = prom_family_len(r->metric);
		uint64_t v;

		if (fam == NULL || len != fam_len ||
		    memcmp(fam, r->metric, len) != 0) {
			fam = r->metric;
			fam_len = len;
			prom_family(b, prefix, r->metric,
				    prom_is_counter(r->metric) ? "counter" :
				    "gauge", r->help);
		}
		memcpy(&v, (const char *)st + r->off, sizeof(v));
		hsrv_printf(b, "%s%s %llu\n", prefix, r->metric,
			    (unsigned long long)v);
	}
}

void
prom_rows_line(char *out, size_t cap, const struct prom_row *rows, size_t n,
	       const void *st, const char *sep)
{
	size_t o = strlen(out);

	for (size_t i = 0; i < n && o < cap; i++) {
		uint64_t v;

		memcpy(&v, (const char *)st + rows[i].off, sizeof(v));
		o += (size_t)snprintf(out + o, cap - o, "%s%s%s%llu",
				      o ? " " : "", rows[i].log, sep,
				      (unsigned long long)v);
	}
}

static int
prom_name_ok(const char *s, size_t n)
{
	if (n == 0 || !(strchr("abcdefghijklmnopqrstuvwxyz_:", s[0])))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789_:", s[i]) ||
		    s[i] == '\0')
			return 0;
	return 1;
}

/* "{k=\"v\",k2=\"v2\"}" with plain names and values free of '"' and
 * '\\', or nothing at all. */
static int
prom_labels_ok(const char *s)
{
	if (*s == '\0')
		return 1;
	if (*s++ != '{')
		return 0;
	for (;;) {
		size_t k = strcspn(s, "=");
		const char *q;

		if (!prom_name_ok(s, k) || s[k] != '=' || s[k + 1] != '"')
			return 0;
		q = strpbrk(s + k + 2, "\"\\");
		if (q == NULL || *q != '"')
			return 0;
		s = q + 1;
		if (*s == '}')
			return s[1] == '\0';
		if (*s++ != ',')
			return 0;
	}
}

int
prom_rows_check(const struct prom_row *rows, size_t n, const char **bad)
{
	for (size_t i = 0; i < n; i++) {
		const char *m = rows[i].metric;
		size_t len = prom_family_len(m);
		int first = i == 0 || prom_family_len(rows[i - 1].metric) != len ||
			    memcmp(rows[i - 1].metric, m, len) != 0;
		int ok = prom_name_ok(m, len) && prom_labels_ok(m + len) &&
			 (!first || rows[i].help[0] != '\0');

		for (size_t j = 0; ok && j < i; j++) {
			/* the same series twice, or a family come back */
			if (strcmp(rows[j].metric, m) == 0 ||
			    (first && prom_family_len(rows[j].metric) == len &&
			     memcmp(rows[j].metric, m, len) == 0))
				ok = 0;
		}
		if (!ok) {
			*bad = m;
			return -EINVAL;
		}
	}
	return 0;
}

static const uint64_t prom_hist_bound_ns[PROM_HIST_N] = {
#define PROM_HIST_NS(ns, le) ns,
	PROM_HIST_BOUNDS(PROM_HIST_NS)
#undef PROM_HIST_NS
};

static const char *const prom_hist_le[PROM_HIST_N] = {
#define PROM_HIST_LE(ns, le) le,
	PROM_HIST_BOUNDS(PROM_HIST_LE)
#undef PROM_HIST_LE
};

void
prom_hist_observe(struct prom_hist *h, uint64_t ns)
{
	int i = 0;

	while (i < PROM_HIST_N && ns > prom_hist_bound_ns[i])
		i++;
	h->bucket[i]++;
	h->count++;
	h->sum_ns += ns;
}

void
prom_hist_render(struct hsrv_buf *b, const char *prefix, const char *name,
		 const char *labels, const struct prom_hist *h)
{
	const char *sep = labels[0] ? "," : "";
	uint64_t cum = 0;

	for (int i = 0; i < PROM_HIST_N; i++) {
		cum += h->bucket[i];
		hsrv_printf(b, "%s%s_bucket{%s%sle=\"%s\"} %llu\n", prefix, name,
			    labels, sep, prom_hist_le[i],
			    (unsigned long long)cum);
	}
	hsrv_printf(b, "%s%s_bucket{%s%sle=\"+Inf\"} %llu\n", prefix, name,
		    labels, sep, (unsigned long long)h->count);
	hsrv_printf(b, "%s%s_sum%s%s%s %.9f\n%s%s_count%s%s%s %llu\n", prefix,
		    name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
		    (double)h->sum_ns / 1e9, prefix, name,
		    labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
		    (unsigned long long)h->count);
}

static const char *const prom_sip_names[PROM_SIP_N_METHODS] = {
#define PROM_SIP_M_NAME(m) #m,
	PROM_SIP_METHODS(PROM_SIP_M_NAME)
#undef PROM_SIP_M_NAME
	"other",
};

/* Their lengths, compared first: most names fail on length alone. */
static const unsigned char prom_sip_lens[PROM_SIP_OTHER] = {
#define PROM_SIP_M_LEN(m) sizeof(#m) - 1,
	PROM_SIP_METHODS(PROM_SIP_M_LEN)
#undef PROM_SIP_M_LEN
};

enum prom_sip_method
prom_sip_method(const char *m, size_t len)
{
	for (int i = 0; i < PROM_SIP_OTHER; i++)
		if (prom_sip_lens[i] == len &&
		    memcmp(prom_sip_names[i], m, len) == 0)
			return (enum prom_sip_method)i;
	return PROM_SIP_OTHER;
}

const char *
prom_sip_method_name(enum prom_sip_method m)
{
	return m < PROM_SIP_N_METHODS ? prom_sip_names[m] : "other";
}

void
prom_sip_count(struct prom_sip *t, enum prom_dir dir, const char *buf,
	       size_t len)
{
	const char *sp;

	if (len >= 8 && memcmp(buf, "SIP/2.0 ", 8) == 0) {
		if (len > 8 && buf[8] >= '1' && buf[8] <= '6')
			t->resp[dir][buf[8] - '1']++;
		return;
	}
	sp = memchr(buf, ' ', len < 16 ? len : 16);
	if (sp && sp > buf)
		t->req[dir][prom_sip_method(buf, (size_t)(sp - buf))]++;
}

void
prom_sip_render(struct hsrv_buf *b, const char *prefix,
		const struct prom_sip *t)
{
	static const char *const dirs[2] = { "in", "out" };

	prom_family(b, prefix, "sip_requests_total", "counter",
		    "SIP requests by direction (in: received, out: sent) "
		    "and method");
	for (int d = 0; d < 2; d++)
		for (int m = 0; m < PROM_SIP_N_METHODS; m++)
			hsrv_printf(b, "%ssip_requests_total{direction=\"%s\","
				    "method=\"%s\"} %llu\n", prefix, dirs[d],
				    prom_sip_names[m],
				    (unsigned long long)t->req[d][m]);
	prom_family(b, prefix, "sip_responses_total", "counter",
		    "SIP responses by direction (in: received, out: sent) "
		    "and class");
	for (int d = 0; d < 2; d++)
		for (int k = 0; k < 6; k++)
			hsrv_printf(b, "%ssip_responses_total{direction=\"%s\","
				    "class=\"%dxx\"} %llu\n", prefix, dirs[d],
				    k + 1, (unsigned long long)t->resp[d][k]);
}

int
prom_listen(struct hsrv **out, uv_loop_t *loop, const char *addr,
	    hsrv_handler_cb cb, void *arg, const char *who)
{
	const struct hsrv_limits lim = HSRV_LIMITS_DEFAULT;
	struct hsrv *s;
	int rc = hsrv_new(&s, loop, addr, &lim);

	if (rc == 0 && (rc = hsrv_route(s, "/metrics", cb, arg)) != 0)
		hsrv_free(s);
	if (rc != 0) {
		log_err(LOG_SYS_MAIN, "%s: metrics on %s: %s", who, addr,
			uv_strerror(rc));
		return rc;
	}
	log_notice(LOG_SYS_MAIN, "%s: metrics on http://%s/metrics", who, addr);
	*out = s;
	return 0;
}

void
prom_hsrv_render(struct hsrv_buf *b, const char *prefix, const struct hsrv *s)
{
	if (s == NULL)	/* rendered for the control socket, no metrics port */
		return;
	prom_rows(b, prefix, prom_hsrv_rows,
		  sizeof(prom_hsrv_rows) / sizeof(*prom_hsrv_rows),
		  hsrv_stats(s));
}

void
prom_link_render(struct hsrv_buf *b, const char *prefix, const struct link *l,
		 const char *peers, const char *help)
{
	struct link_stats ls;

	link_stats_get(l, &ls);
	prom_rows(b, prefix, prom_link_rows, prom_link_n_rows, &ls);
	prom_family(b, prefix, peers, "gauge", help);
	hsrv_printf(b, "%s%s %d\n", prefix, peers, link_peers_in(l));
}
