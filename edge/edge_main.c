/*
 * edge_main.c - sipmesh-edge: sipmesh-edge -c FILE -i ID [-l LEVEL].
 *
 * Loads the cluster configuration, binds this edge's link endpoint
 * and adds every core as a peer, opens the SIP transports (each row
 * of ENV_TRANSPORTS in lib/env.h that is configured) and runs one
 * libuv loop.
 * With -L it only prints the listen addresses (for scripts/run.sh).
 * SIGINT/SIGTERM close every connection (the cores hear of each one
 * and drop its bindings), then every handle, so the loop ends by itself
 * and everything is freed; SIGUSR1 logs the counters.
 */
#include "edge/edge_int.h"
#include "lib/key.h"
#include "lib/link.h"
#include "lib/log.h"
#include "lib/sig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct edge_proc {
	struct edge edge;
	struct sig_set sigs;
	uv_signal_t drain;	/* SIGUSR2 */
	int stopping;
};

static const char edge_usage[] =
	"usage: sipmesh-edge -c FILE -i ID [-l LEVEL]\n"
	"       sipmesh-edge -c FILE -i ID -L   (print the listeners)\n";

/* The last step of edge_stop: the link, then the signal handles. */
static void
edge_stop_finish(struct edge_proc *p)
{
	link_free(p->edge.link);
	p->edge.link = NULL;
	sig_set_close(&p->sigs);
	uv_close((uv_handle_t *)&p->drain, NULL);
}

/*
 * Closes every handle; the loop then runs out of work and returns.
 * The connections go first, while the link is up: each one's
 * ENV_CONN_CLOSED reaches a core, which drops its bindings, so a caller
 * gets 480 at once instead of a request sent into a dead process:
 * link_free writes them (what the turn gathered and what the streams
 * hold) before it closes.
 */
static void
edge_stop(void *arg)
{
	struct edge_proc *p = arg;
	struct edge *e = &p->edge;

	if (p->stopping)
		return;
	p->stopping = 1;
	edge_metrics_stop(e);
	edge_conns_stop(e);
	edge_conns_close_all(e, "edge stopping");
	for (size_t i = 0; i < sizeof(e->tp) / sizeof(*e->tp); i++) {
		if (e->tp[i])
			e->tp[i]->free(e->tp[i]);
		e->tp[i] = NULL;
	}
	edge_stop_finish(p);
}

static void
edge_on_stats(void *arg)
{
	struct edge_proc *p = arg;

	edge_stats_log(&p->edge);
}

/* SIGUSR2: drain (edge_drain), before a restart. */
static void
edge_on_drain(uv_signal_t *h, int signum)
{
	struct edge_proc *p = h->data;

	(void)signum;
	if (!p->stopping)
		edge_drain(&p->edge, p->edge.me->drain_s);
}

/*
 * SIGHUP: every secure transport re-reads its certificate and key (a
 * renewed certificate without a restart).  One that fails keeps the
 * pair it has; the others still take theirs.
 */
static void
edge_on_reload(void *arg)
{
	struct edge_proc *p = arg;
	struct edge *e = &p->edge;
	int n = 0, failed = 0;

	for (int t = 0; t < ENV_TP_END; t++) {
		if (e->tp[t] == NULL || e->tp[t]->reload == NULL)
			continue;
		n++;
		if (e->tp[t]->reload(e->tp[t]) < 0) {
			failed++;
			log_err(LOG_SYS_MAIN, "edge %d: %s keeps its certificate",
				e->me->id, env_transport_name(t));
		}
	}
	log_notice(LOG_SYS_MAIN, "edge %d: certificates reloaded on %d of %d "
		   "secure transports", e->me->id, n - failed, n);
}

/*
 * What scripts/run.sh needs, one "key value..." line each: a line
 * "listen <key> <address> <flag>..." per configured transport, its
 * flags named from the table (stream, ws, secure, dial), so the script
 * knows no transport by name; then the certificate, the web root and
 * the metrics address (empty: off).
 */
static void
edge_print_listeners(const struct cfg_edge *me)
{
	static const struct { unsigned flag; const char *name; } flags[] = {
		{ ENV_TP_STREAM, "stream" }, { ENV_TP_WS, "ws" },
		{ ENV_TP_SECURE, "secure" }, { ENV_TP_DIAL, "dial" },
	};

	for (int t = ENV_UDP; t < ENV_TP_END; t++) {
		if (me->listen[t][0] == '\0')
			continue;
		printf("listen %s %s", env_transport_key(t), me->listen[t]);
		for (size_t i = 0; i < sizeof(flags) / sizeof(*flags); i++)
			if (env_transport_is(t, flags[i].flag))
				printf(" %s", flags[i].name);
		printf("\n");
	}
	printf("tls_cert %s\ntls_key %s\nhttp_root %s\nmetrics %s\n",
	       me->tls_cert, me->tls_key, me->http_root, me->metrics);
}

/* The opener of each transport, from the impl column of the table. */
static const edge_tp_new_cb edge_tp_new[ENV_TP_END] = {
#define EDGE_TP_NEW(id, key, port, flags, impl) [ENV_##id] = edge_##impl##_new,
	ENV_TRANSPORTS(EDGE_TP_NEW)
#undef EDGE_TP_NEW
};

/*
 * A core answers a request from a connection through this edge only,
 * and a core's link drops what it sends before its stream has
 * reconnected to a restarted edge (link_send: -EAGAIN); over a connection nothing
 * is retransmitted, so a client that sent at once lost its answer.  The
 * edge opens its transports once every core is connected to it, or
 * after EDGE_CORES_WAIT_MS (a core that is down holds back no one).
 * Before the loop runs: nothing is served yet that a wait could stall.
 */
#define EDGE_CORES_WAIT_MS 2000

static void
edge_wait_for_cores(struct edge *e)
{
	struct timespec tick = { 0, 5 * 1000 * 1000 };
	int n = 0;

	for (int waited = 0; waited < EDGE_CORES_WAIT_MS; waited += 5) {
		n = link_peers_in(e->link);
		if (n >= e->n_cores)
			return;
		nanosleep(&tick, NULL);
	}
	log_notice(LOG_SYS_NET, "edge %d: %d of %d cores connected after "
		   "%d ms; opening the transports anyway", e->me->id, n,
		   e->n_cores, EDGE_CORES_WAIT_MS);
}

/* Opens every configured transport; stops at an error. */
static int
edge_transports_start(struct edge *e)
{
	int rc = edge_conns_start(e);

	for (int t = ENV_UDP; rc >= 0 && t < ENV_TP_END; t++) {
		rc = edge_tp_new[t](&e->tp[t], e, t);
		if (rc == -ENOENT)
			rc = 0;
	}
	return rc;
}

/* Whether host (a listen address) can only be reached from this
 * machine: 127.0.0.0/8, ::1 or "localhost". */
static int
edge_host_is_loopback(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (strcasecmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, host, &a6) == 1 &&
	       IN6_IS_ADDR_LOOPBACK(&a6);
}

/*
 * Open mode ([registrar] auth = no) lets anyone register any address
 * and send as any local user: fine for a demo on loopback, a takeover
 * anywhere else, so say so loudly at start.
 */
static void
edge_open_mode_warn(const struct cfg *cfg, const struct cfg_edge *me)
{
	char host[CFG_ADDR_LEN];
	int port;

	if (cfg->auth)
		return;
	for (int t = ENV_UDP; t < ENV_TP_END; t++) {
		if (cfg_edge_listen(me, t, host, sizeof(host), &port) != 0 ||
		    edge_host_is_loopback(host))
			continue;
		log_warn(LOG_SYS_MAIN, "edge %d listens on %s (%s) in open "
			 "mode: anyone who reaches it may register any address "
			 "of a local domain; set [registrar] auth = yes",
			 me->id, me->listen[t], env_transport_key(t));
		return;
	}
}

int
main(int argc, char **argv)
{
	static struct cfg cfg;	/* large: keep it off the stack */
	static struct edge_proc proc;
	struct edge *e = &proc.edge;
	const struct cfg_edge *me;
	struct cfg_args a;
	char who[32];
	unsigned char lk[KEY_LEN];
	uv_loop_t loop;
	int rc, status = 1;

	cfg_args_parse(&a, argc, argv, edge_usage, CFG_ARGS_LIST);
	if (cfg_start(&cfg, "sipmesh-edge", a.path, a.level) != 0)
		return 1;
	me = cfg_edge_find(&cfg, a.id);
	if (me == NULL) {
		log_err(LOG_SYS_CFG, "%s: no [edge %d]", a.path, a.id);
		return 1;
	}
	if (a.list) {
		edge_print_listeners(me);
		return 0;
	}
	edge_open_mode_warn(&cfg, me);

	if (uv_loop_init(&loop) != 0)
		return 1;
	if (edge_init(e, &loop, &cfg, me) != 0)
		goto done;
	log_notice(LOG_SYS_MAIN, "sipmesh-edge %d: incarnation %08" PRIx32
		   " (connection ids " ENV_CONN_FMT "..)", a.id,
		   e->conns.incarnation,
		   ENV_CONN_ARGS(ENV_CONN_ID(e->conns.incarnation, 1)));
	snprintf(who, sizeof(who), "edge %d", a.id);
	rc = sig_set_start(&proc.sigs, &loop, who, edge_stop, edge_on_stats,
			   &proc);
	if (rc < 0) {
		log_err(LOG_SYS_MAIN, "signals: %s", uv_strerror(rc));
		goto stop;
	}
	proc.sigs.reload = edge_on_reload;
	uv_signal_init(&loop, &proc.drain);
	proc.drain.data = &proc;
	rc = uv_signal_start(&proc.drain, edge_on_drain, SIGUSR2);
	if (rc < 0) {
		log_err(LOG_SYS_MAIN, "signals: %s", uv_strerror(rc));
		goto stop;
	}
	rc = key_load(&cfg, KEY_USE_LINK, lk);
	if (rc == 0)
		rc = link_new(&e->link, &loop, me->ipc, lk, edge_fwd_from_core,
			      e);
	explicit_bzero(lk, sizeof(lk));
	if (rc < 0) {
		log_err(LOG_SYS_NET, "edge %d: bind %s: %s", a.id, me->ipc,
			strerror(-rc));
		goto stop;
	}
	for (int i = 0; i < cfg.n_cores; i++) {
		rc = link_peer_add(e->link, cfg.cores[i].id, cfg.cores[i].ipc);
		if (rc < 0) {
			log_err(LOG_SYS_NET, "core %d at %s: %s", cfg.cores[i].id,
				cfg.cores[i].ipc, strerror(-rc));
			goto stop;
		}
	}
	if (cfg.link_heartbeat_ms) {
		rc = link_live_start(e->link, me->id, cfg.link_heartbeat_ms,
				     cfg.link_dead_ms, edge_fwd_core_live, e);
		if (rc < 0)
			goto stop;
	}
	edge_wait_for_cores(e);
	rc = edge_transports_start(e);
	if (rc < 0)
		goto stop;
	rc = edge_metrics_start(e);
	if (rc < 0)
		goto stop;
	status = 0;
stop:
	/* On failure, stop at once; the loop still has to run the close
	 * callbacks. */
	if (status != 0)
		edge_stop(&proc);
	uv_run(&loop, UV_RUN_DEFAULT);
	edge_stats_log(e);
done:
	edge_fini(e);
	if (uv_loop_close(&loop) != 0) {
		log_err(LOG_SYS_MAIN, "handles left open at exit");
		status = 1;
	}
	return status;
}
