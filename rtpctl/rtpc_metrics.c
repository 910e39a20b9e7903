/*
 * rtpc_metrics.c - rtpctl's counters: the stats log lines and the
 * Prometheus metrics of the id-th [rtpctl] metrics address (lib/prom.h).
 *
 * The counters are the rows of RTPC_STATS; the pool (each rtpengine's
 * state, weight and load) is read on scrape, O(instances).
 */
#include "rtpctl/rtpc_int.h"
#include "lib/log.h"
#include "lib/ops.h"
#include "lib/rconn.h"

#include <inttypes.h>
#include <stdio.h>

#define RTPC_PROM "sipmesh_rtpctl_"

#define RTPC_STAT_ROW(f, log, metric, help) \
	PROM_ROW(rtpc_stats, f, log, metric, help)
static const struct prom_row rtpc_stat_rows[] = { RTPC_STATS(RTPC_STAT_ROW) };
#undef RTPC_STAT_ROW

#define RTPC_N_ROWS (sizeof(rtpc_stat_rows) / sizeof(*rtpc_stat_rows))

void
rtpc_srv_stats_log(const struct rtpc_srv *s)
{
	char line[1024] = "";

	prom_rows_line(line, sizeof(line), rtpc_stat_rows, RTPC_N_ROWS, &s->st,
		       " ");
	log_notice(LOG_SYS_MAIN, "rtpctl %d: %s calls_cached %d", s->id, line,
		   s->calls.count);
	for (int i = 0; i < s->pool.n; i++) {
		const struct rtpc_inst *in = &s->pool.inst[i];

		log_notice(LOG_SYS_MAIN, "rtpengine %s: %s%s weight %d calls %"
			   PRIu64 " inflight %d", in->addr,
			   in->up ? "up" : "down", in->drained ? " drained" : "",
			   in->weight, in->chosen, in->inflight);
	}
}

/* One gauge or counter per instance, labelled with its ng address. */
#define RTPC_PER_INST(b, s, name, type, help, fmt, field) \
	do { \
		prom_family(b, RTPC_PROM, name, type, help); \
		for (int i = 0; i < (s)->pool.n; i++) \
			hsrv_printf(b, RTPC_PROM name "{engine=\"%s\"} " fmt \
				    "\n", (s)->pool.inst[i].addr, \
				    (s)->pool.inst[i].field); \
	} while (0)

static const char *
rtpc_metrics_render(void *arg, const char *query, struct hsrv_buf *b)
{
	struct rtpc_srv *s = arg;
	int up = 0, drained = 0;

	(void)query;
	prom_rows(b, RTPC_PROM, rtpc_stat_rows, RTPC_N_ROWS, &s->st);
	for (int i = 0; i < s->pool.n; i++) {
		drained += s->pool.inst[i].up && s->pool.inst[i].drained;
		up += s->pool.inst[i].up && !s->pool.inst[i].drained;
	}
	prom_family(b, RTPC_PROM, "rtpengines", "gauge",
		    "rtpengine instances of the pool, by state (drained: up, "
		    "out of rotation by an operator)");
	hsrv_printf(b, RTPC_PROM "rtpengines{state=\"up\"} %d\n"
		    RTPC_PROM "rtpengines{state=\"drained\"} %d\n"
		    RTPC_PROM "rtpengines{state=\"down\"} %d\n", up, drained,
		    s->pool.n - up - drained);
	RTPC_PER_INST(b, s, "rtpengine_up", "gauge",
		      "1 while the instance answers", "%d", up);
	RTPC_PER_INST(b, s, "rtpengine_drained", "gauge",
		      "1 while an operator keeps new calls off the instance",
		      "%d", drained);
	RTPC_PER_INST(b, s, "rtpengine_inflight", "gauge",
		      "ng commands sent to the instance, not finished", "%d",
		      inflight);
	RTPC_PER_INST(b, s, "rtpengine_weight", "gauge",
		      "The instance's configured weight", "%d", weight);
	RTPC_PER_INST(b, s, "rtpengine_calls_total", "counter",
		      "New calls given to the instance", "%" PRIu64, chosen);
	prom_family(b, RTPC_PROM, "calls", "gauge",
		    "Calls in the local sticky Call-ID table");
	hsrv_printf(b, RTPC_PROM "calls %d\n", s->calls.count);
	prom_family(b, RTPC_PROM, "requests_open", "gauge",
		    "Requests from cores not answered yet");
	hsrv_printf(b, RTPC_PROM "requests_open %d\n", s->n_open);
	if (s->redis) {
		prom_family(b, RTPC_PROM, "redis_up", "gauge",
			    "1 while the sticky table's Redis link is up");
		hsrv_printf(b, RTPC_PROM "redis_up %d\n", rconn_up(s->redis));
		prom_family(b, RTPC_PROM, "redis_command_duration_seconds",
			    "histogram", "Redis commands of this process: "
			    "sending to reply");
		prom_hist_render(b, RTPC_PROM, "redis_command_duration_seconds",
				 "", rconn_latency());
	}
	prom_hsrv_render(b, RTPC_PROM, s->metrics);
	return PROM_CONTENT_TYPE;
}

int
rtpc_metrics_start(struct rtpc_srv *s)
{
	char addr[CFG_ADDR_LEN], who[32];
	int rc;

	rc = ops_start(&s->ctl, s->loop, s->cfg, "rtpctl", s->id,
		       rtpc_metrics_render, s);
	if (rc != 0 || cfg_rtpctl_metrics(s->cfg, s->id, addr,
					  sizeof(addr)) != 0 ||
	    addr[0] == '\0')
		return rc;
	snprintf(who, sizeof(who), "rtpctl %d", s->id);
	return prom_listen(&s->metrics, s->loop, addr, rtpc_metrics_render, s,
			   who);
}
