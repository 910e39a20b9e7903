/*
 * edge_metrics.c - the edge's counters: the SIGUSR1 log line and the
 * Prometheus metrics of [edge N] metrics (lib/prom.h, lib/hsrv.h).
 *
 * Both come from the rows of EDGE_STATS and LINK_STATS.  Connections
 * per transport are counted on scrape by walking the connection lists
 * (O(connections), a few ms at 20,000), so the hot path keeps no
 * per-transport gauge.
 */
#include "edge/edge_int.h"
#include "lib/link.h"
#include "lib/ops.h"
#include "lib/log.h"

#include <stdio.h>

#define EDGE_PROM "sipmesh_edge_"

#define EDGE_STAT_ROW(f, metric, help) \
	PROM_ROW(edge_stats, f, #f, metric, help)
static const struct prom_row edge_stat_rows[] = { EDGE_STATS(EDGE_STAT_ROW) };
#undef EDGE_STAT_ROW

#define EDGE_N_ROWS (sizeof(edge_stat_rows) / sizeof(*edge_stat_rows))

void
edge_stats_log(const struct edge *e)
{
	char line[3072] = "";

	prom_rows_line(line, sizeof(line), edge_stat_rows, EDGE_N_ROWS, &e->st,
		       "=");
	if (e->link) {
		struct link_stats ls;

		link_stats_get(e->link, &ls);
		prom_rows_line(line, sizeof(line), prom_link_rows,
			       prom_link_n_rows, &ls, "=");
	}
	log_notice(LOG_SYS_MAIN, "edge %d stats: %s", e->me->id, line);
}

/* Open connections by transport, and the inbound ones. */
static void
edge_metrics_conns(const struct edge *e, struct hsrv_buf *b)
{
	uint64_t n[ENV_TP_END] = { 0 };

	for (int st = EDGE_CONN_PENDING; st <= EDGE_CONN_OPEN; st++) {
		const struct list_node *h = &e->conns.list[st];

		for (const struct list_node *i = h->next; i != h; i = i->next) {
			const struct edge_conn *c =
				list_entry(i, const struct edge_conn, link);

			if (c->transport < ENV_TP_END)
				n[c->transport]++;
		}
	}
	prom_family(b, EDGE_PROM, "connections", "gauge",
		    "Open connections (inbound and outbound) by transport");
	for (int t = ENV_UDP; t < ENV_TP_END; t++)
		if (env_transport_is(t, ENV_TP_STREAM))
			hsrv_printf(b, EDGE_PROM "connections{transport=\"%s\"} "
				    "%llu\n", env_transport_key(t),
				    (unsigned long long)n[t]);
	prom_family(b, EDGE_PROM, "connections_inbound", "gauge",
		    "Inbound connections, counted against max_conns");
	hsrv_printf(b, EDGE_PROM "connections_inbound %d\n", e->conns.n_in);
}

static const char *
edge_metrics_render(void *arg, const char *query, struct hsrv_buf *b)
{
	struct edge *e = arg;

	(void)query;
	prom_rows(b, EDGE_PROM, edge_stat_rows, EDGE_N_ROWS, &e->st);
	prom_sip_render(b, EDGE_PROM, &e->sip);
	edge_metrics_conns(e, b);
	if (e->link)
		prom_link_render(b, EDGE_PROM, e->link, "cores_connected",
				 "Cores connected to this edge's endpoint");
	prom_hsrv_render(b, EDGE_PROM, e->metrics);
	return PROM_CONTENT_TYPE;
}

/* sipmesh-ctl drain edge N: as SIGUSR2. */
static const char *
edge_metrics_drain(void *arg, const char *query, struct hsrv_buf *b)
{
	struct edge *e = arg;

	(void)query;
	edge_drain(e, e->me->drain_s);
	hsrv_printf(b, "edge %d draining over %d s: %zu connections to move\n",
		    e->me->id, e->me->drain_s, (size_t)e->conns.by_id.n);
	return "text/plain; charset=utf-8";
}

int
edge_metrics_start(struct edge *e)
{
	char who[32];
	int rc;

	rc = ops_start(&e->ctl, e->loop, e->cfg, "edge", e->me->id,
		       edge_metrics_render, e);
	if (rc == 0 && (rc = hsrv_route(e->ctl, "/drain", edge_metrics_drain,
					e)) != 0)
		return rc;
	if (rc != 0 || e->me->metrics[0] == '\0')
		return rc;
	snprintf(who, sizeof(who), "edge %d", e->me->id);
	return prom_listen(&e->metrics, e->loop, e->me->metrics,
			   edge_metrics_render, e, who);
}

void
edge_metrics_stop(struct edge *e)
{
	hsrv_free(e->metrics);
	e->metrics = NULL;
	hsrv_free(e->ctl);
	e->ctl = NULL;
}
