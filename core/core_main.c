/*
 * core_main.c - sipmesh-core: command line, signals, the loop.
 *
 *   sipmesh-core -c FILE -i ID [-l LEVEL]
 */
#include <errno.h>
#include <osipparser2/osip_parser.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "core/core.h"
#include "lib/log.h"
#include "lib/sip_alloc.h"
#include "lib/sig.h"
#include "rtpctl/rtpc.h"

struct core_proc {
	struct core *core;
	struct sig_set sigs;
};

static void
core_proc_stop(void *arg)
{
	struct core_proc *p = arg;

	core_stats_log(p->core);
	core_stop(p->core);
	sig_set_close(&p->sigs);
}

static void
core_on_stats(void *arg)
{
	struct core_proc *p = arg;

	core_stats_log(p->core);
}

/* The cluster's processes, one per line, for scripts (scripts/run.sh)
 * that must not parse INI themselves. */
static void
print_layout(const struct cfg *cfg)
{
	if (cfg->redis[0])
		printf("redis %s\n", cfg->redis);
	for (int i = 0; i < cfg->n_redis_shards; i++) {
		const struct cfg_shard *sh = &cfg->redis_shards[i];

		if (sh->addr[0])
			printf("redis-shard %s %s\n", sh->name, sh->addr);
		else
			printf("redis-shard %s %s@%s\n", sh->name, sh->master,
			       sh->sentinels);
	}
	printf("shm %s\n", cfg->shm_name);
	for (int i = 0; i < cfg->n_edges; i++)
		printf("edge %d %s\n", cfg->edges[i].id,
		       cfg->edges[i].listen[ENV_UDP]);
	for (int i = 0; i < cfg->n_cores; i++)
		printf("core %d %s\n", cfg->cores[i].id, cfg->cores[i].ipc);
	/* "metrics <kind> <id> <host:port>" of each process that has one */
	for (int i = 0; i < cfg->n_edges; i++)
		if (cfg->edges[i].metrics[0])
			printf("metrics edge %d %s\n", cfg->edges[i].id,
			       cfg->edges[i].metrics);
	for (int i = 0; i < cfg->n_cores; i++)
		if (cfg->cores[i].metrics[0])
			printf("metrics core %d %s\n", cfg->cores[i].id,
			       cfg->cores[i].metrics);
	if (!cfg->media)
		return;
	for (int i = 1;; i++) {
		char url[CFG_PATH_LEN], m[CFG_ADDR_LEN];

		if (rtpc_ipc_url(cfg, i, url, sizeof(url)) != 0)
			break;
		printf("rtpctl %d %s\n", i, url);
		if (cfg_rtpctl_metrics(cfg, i, m, sizeof(m)) == 0)
			printf("metrics rtpctl %d %s\n", i, m);
	}
	for (const char *p = cfg->rtpctl_instances; *p;) {
		size_t n = strcspn(p, " ,\t");

		if (n)
			printf("rtpengine %.*s\n", (int)strcspn(p, "/ ,\t"), p);
		p += n;
		p += strspn(p, " ,\t");
	}
}

int
main(int argc, char **argv)
{
	static struct cfg cfg;	/* large: keep it off the stack */
	static struct core_proc proc;
	struct cfg_args a;
	char name[32];
	uv_loop_t *loop = uv_default_loop();
	int rc;

	cfg_args_parse(&a, argc, argv,
		       "usage: sipmesh-core -c FILE -i ID [-l LEVEL]\n"
		       "       sipmesh-core -c FILE -L   (print the layout)\n",
		       CFG_ARGS_LIST_ALL);
	if (a.list) {
		char err[512];

		if (cfg_load(&cfg, a.path, err, sizeof(err)) != 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		print_layout(&cfg);
		return 0;
	}
	snprintf(name, sizeof(name), "core-%d", a.id);
	if (cfg_start(&cfg, name, a.path, a.level) != 0)
		return 1;
	sip_alloc_install();
	parser_init();

	rc = core_new(&proc.core, &cfg, a.id, loop);
	if (rc != 0) {
		log_err(LOG_SYS_MAIN, "cannot start core %d: %s", a.id,
			strerror(-rc));
		return 1;
	}
	rc = sig_set_start(&proc.sigs, loop, name, core_proc_stop,
			   core_on_stats, &proc);
	if (rc != 0) {
		log_err(LOG_SYS_MAIN, "signal handlers: %s", uv_strerror(rc));
		core_proc_stop(&proc);
		uv_run(loop, UV_RUN_DEFAULT);
		core_free(proc.core);
		return 1;
	}
	log_notice(LOG_SYS_MAIN, "sipmesh-core %d: ready on %s (%d edges, "
		   "location %s%s)", a.id, cfg_core_find(&cfg, a.id)->ipc,
		   cfg.n_edges, cfg.redis[0] ? "redis " : "shm ",
		   cfg.redis[0] ? cfg.redis : cfg.shm_name);
	uv_run(loop, UV_RUN_DEFAULT);
	core_free(proc.core);
	uv_loop_close(loop);
	return 0;
}
