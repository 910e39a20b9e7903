/*
 * core_metrics.c - the core's counters: the SIGUSR1 stats line and the
 * Prometheus metrics of [core N] metrics (lib/prom.h, lib/hsrv.h).
 *
 * Both come from the rows of CORE_STATS and LINK_STATS, and with
 * digest authentication on, of the account store (struct
 * auth_store_stats, auth/ owns them); the location store's figures
 * (struct loc_stats, location/ owns them) and the latency histograms
 * are added on scrape.  The bindings gauge is the
 * host's shared store: every core of a host reports the same value, so
 * a dashboard takes max by the host label the scrape configuration
 * gives each target (deploy/roles/config).
 */
#include "core/core_int.h"
#include "auth/auth.h"
#include "lib/link.h"
#include "lib/ops.h"
#include "lib/rconn.h"
#include "rtpctl/rtpc.h"

#include <stdio.h>

#define CORE_PROM "sipmesh_core_"

#define CORE_STAT_ROW(f, log, metric, help) \
	PROM_ROW(core_stats, f, log, metric, help)
static const struct prom_row core_stat_rows[] = { CORE_STATS(CORE_STAT_ROW) };
#undef CORE_STAT_ROW

#define CORE_N_ROWS (sizeof(core_stat_rows) / sizeof(*core_stat_rows))

/* The account store of digest authentication (struct auth_store_stats:
 * auth/ owns its fields, this table names them). */
#define AUTH_ROW(f, log, metric, help) \
	PROM_ROW(auth_store_stats, f, log, metric, help)
static const struct prom_row core_auth_rows[] = {
	AUTH_ROW(hits, "acct-hits",
		 "auth_cache_hits_total",
		 "Accounts answered from a fresh cache entry")
	AUTH_ROW(stale, "acct-stale",
		 "auth_cache_stale_total",
		 "Accounts answered from a stale cache entry while Redis "
		 "could not answer")
	AUTH_ROW(lookups, "acct-lookups",
		 "auth_lookups_total",
		 "Account lookups sent to Redis (the master, or a replica "
		 "while the master is away)")
	AUTH_ROW(replica, "acct-replica",
		 "auth_replica_answers_total",
		 "Account lookups a replica answered while the master was away")
	AUTH_ROW(failures, "acct-failures",
		 "auth_lookup_failures_total",
		 "Account lookups that failed (no answer, an error, or a "
		 "replica without the account)")
	AUTH_ROW(entries, "acct-entries",
		 "auth_cache_entries", "Accounts in the cache")
	AUTH_ROW(redis_up, "acct-redis-up",
		 "auth_redis_up",
		 "1 while the account store's link to the Redis master is up")
	AUTH_ROW(replica_up, "acct-replica-up",
		 "auth_replica_up",
		 "1 while its link to a replica is up (Sentinel)")
};
#undef AUTH_ROW
#define CORE_AUTH_N_ROWS (sizeof(core_auth_rows) / sizeof(*core_auth_rows))

void
core_stats_log(struct core *c)
{
	char line[3072] = "";
	struct link_stats ls;
	struct auth_store_stats ast;

	link_stats_get(c->link, &ls);
	prom_rows_line(line, sizeof(line), core_stat_rows, CORE_N_ROWS, &c->st,
		       " ");
	prom_rows_line(line, sizeof(line), prom_link_rows, prom_link_n_rows,
		       &ls, " ");
	if (core_auth_stats(c, &ast) == 0)
		prom_rows_line(line, sizeof(line), core_auth_rows,
			       CORE_AUTH_N_ROWS, &ast, " ");
	log_notice(LOG_SYS_MAIN, "stats: %s", line);
}

/* The location store and its Redis link (struct loc_stats: location/
 * owns its fields, this table names them). */
#define LOC_ROW(f, metric, help) PROM_ROW(loc_stats, f, #f, metric, help)
static const struct prom_row core_loc_rows[] = {
	LOC_ROW(bindings, "location_bindings",
		"Registered bindings in this host's shared store")
	LOC_ROW(aors, "location_aors",
		"AORs with a live binding in this host's shared store "
		"(counted by the expiry sweep, every ~32 s)")
	LOC_ROW(capacity, "location_capacity",
		"Binding slots of this host's shared store")
	LOC_ROW(redis_connected, "redis_up",
		"1 while this core's Redis link is up (0 also without Redis)")
	LOC_ROW(redis_pending, "redis_pending", "Redis commands in flight")
	LOC_ROW(redis_dirty, "redis_dirty_aors",
		"AORs waiting to be written to Redis again")
	LOC_ROW(redis_errors, "redis_errors_total",
		"Redis commands that failed or were dropped")
	LOC_ROW(redis_syncs, "redis_syncs_total",
		"Reconcile passes of the shared store with Redis")
};
#undef LOC_ROW

static void
core_metrics_loc(struct core *c, struct hsrv_buf *b)
{
	struct loc_stats st;

	loc_stats_get(c->loc, &st);
	prom_rows(b, CORE_PROM, core_loc_rows,
		  sizeof(core_loc_rows) / sizeof(*core_loc_rows), &st);
	prom_family(b, CORE_PROM, "redis_command_duration_seconds",
		    "histogram", "Redis commands of this process (location, "
		    "accounts): sending to reply");
	prom_hist_render(b, CORE_PROM, "redis_command_duration_seconds", "",
			 rconn_latency());
}

static void
core_metrics_latency(struct core *c, struct hsrv_buf *b)
{
	prom_family(b, CORE_PROM, "request_duration_seconds", "histogram",
		    "Proxied requests: from the transaction's start to the "
		    "first response other than 100 sent back, by method");
	for (int m = 0; m < PROM_SIP_N_METHODS; m++) {
		char labels[32];

		/* never a transaction of their own */
		if (m == PROM_SIP_ACK || m == PROM_SIP_CANCEL)
			continue;
		snprintf(labels, sizeof(labels), "method=\"%s\"",
			 prom_sip_method_name(m));
		prom_hist_render(b, CORE_PROM, "request_duration_seconds",
				 labels, &c->latency[m]);
	}
}

static const char *
core_metrics_render(void *arg, const char *query, struct hsrv_buf *b)
{
	struct core *c = arg;
	struct auth_store_stats ast;

	(void)query;
	prom_rows(b, CORE_PROM, core_stat_rows, CORE_N_ROWS, &c->st);
	prom_sip_render(b, CORE_PROM, &c->sip);
	core_metrics_latency(c, b);
	core_metrics_loc(c, b);
	if (core_auth_stats(c, &ast) == 0)
		prom_rows(b, CORE_PROM, core_auth_rows, CORE_AUTH_N_ROWS, &ast);
	prom_link_render(b, CORE_PROM, c->link, "edges_connected",
			 "Edges connected to this core's endpoint");
	if (c->rtpc) {
		prom_family(b, CORE_PROM, "media_pending", "gauge",
			    "rtpctl commands waiting for an answer");
		hsrv_printf(b, CORE_PROM "media_pending %d\n",
			    rtpc_client_pending(c->rtpc));
	}
	if (c->preg) {
		prom_family(b, CORE_PROM, "pstn_registered", "gauge",
			    "1 while this core's registration at the carrier "
			    "holds ([pstn] register)");
		hsrv_printf(b, CORE_PROM "pstn_registered %d\n",
			    core_pstn_reg_up(c));
	}
	prom_hsrv_render(b, CORE_PROM, c->metrics);
	return PROM_CONTENT_TYPE;
}

int
core_metrics_start(struct core *c)
{
	const struct cfg_core *me = cfg_core_find(c->cfg, c->id);
	char who[32];

	int rc;

	rc = ops_start(&c->ctl, c->loop, c->cfg, "core", c->id,
		       core_metrics_render, c);
	if (rc != 0 || me == NULL || me->metrics[0] == '\0')
		return rc;
	snprintf(who, sizeof(who), "core %d", c->id);
	return prom_listen(&c->metrics, c->loop, me->metrics,
			   core_metrics_render, c, who);
}
