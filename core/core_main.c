/*
 * core_main.c - sipmesh-core: command line, signals, the loop.
 *
 *   sipmesh-core -c FILE -i ID [-l LEVEL]
 */
#include <errno.h>
#include <osipparser2/osip_parser.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "core/core.h"
#include "lib/log.h"
#include "rtpctl/rtpc.h"

static struct core *core_g;
static uv_signal_t sig_int, sig_term, sig_usr1;

static void
on_stop_signal(uv_signal_t *h, int signum)
{
	log_notice(LOG_SYS_MAIN, "signal %d: stopping", signum);
	core_stats_log(core_g);
	core_stop(core_g);
	uv_close((uv_handle_t *)&sig_int, NULL);
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_usr1, NULL);
	(void)h;
}

static void
on_usr1(uv_signal_t *h, int signum)
{
	(void)h;
	(void)signum;
	core_stats_log(core_g);
}

static void
usage(void)
{
	fprintf(stderr, "usage: sipmesh-core -c FILE -i ID [-l LEVEL]\n"
			"       sipmesh-core -c FILE -L   (print the layout)\n");
	exit(2);
}

/* The cluster's processes, one per line, for scripts (scripts/run.sh)
 * that must not parse INI themselves. */
static void
print_layout(const struct cfg *cfg)
{
	if (cfg->redis[0])
		printf("redis %s\n", cfg->redis);
	printf("shm %s\n", cfg->shm_name);
	for (int i = 0; i < cfg->n_edges; i++)
		printf("edge %d %s\n", cfg->edges[i].id,
		       cfg->edges[i].listen[ENV_UDP]);
	for (int i = 0; i < cfg->n_cores; i++)
		printf("core %d %s\n", cfg->cores[i].id, cfg->cores[i].ipc);
	if (!cfg->media)
		return;
	for (int i = 1;; i++) {
		char url[CFG_PATH_LEN];

		if (rtpc_ipc_url(cfg, i, url, sizeof(url)) != 0)
			break;
		printf("rtpctl %d %s\n", i, url);
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
	static struct cfg cfg;
	const char *path = NULL, *level = NULL;
	char name[32];
	uv_loop_t *loop = uv_default_loop();
	int opt, id = 0, rc, layout = 0;

	while ((opt = getopt(argc, argv, "c:i:l:Lh")) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 'i': id = atoi(optarg); break;
		case 'l': level = optarg; break;
		case 'L': layout = 1; break;
		default: usage();
		}
	}
	if (path == NULL || (id <= 0 && !layout))
		usage();
	snprintf(name, sizeof(name), "core-%d", id);
	if (layout) {
		char err[512];

		if (cfg_load(&cfg, path, err, sizeof(err)) != 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		print_layout(&cfg);
		return 0;
	}
	if (cfg_start(&cfg, name, path, level) != 0)
		return 1;
	parser_init();

	rc = core_new(&core_g, &cfg, id, loop);
	if (rc != 0) {
		log_err(LOG_SYS_MAIN, "cannot start core %d: %s", id,
			strerror(-rc));
		return 1;
	}
	uv_signal_init(loop, &sig_int);
	uv_signal_init(loop, &sig_term);
	uv_signal_init(loop, &sig_usr1);
	uv_signal_start(&sig_int, on_stop_signal, SIGINT);
	uv_signal_start(&sig_term, on_stop_signal, SIGTERM);
	uv_signal_start(&sig_usr1, on_usr1, SIGUSR1);
	log_notice(LOG_SYS_MAIN, "sipmesh-core %d: ready on %s (%d edges, "
		   "location %s%s)", id, cfg_core_find(&cfg, id)->ipc,
		   cfg.n_edges, cfg.redis[0] ? "redis " : "shm ",
		   cfg.redis[0] ? cfg.redis : cfg.shm_name);
	uv_run(loop, UV_RUN_DEFAULT);
	core_free(core_g);
	uv_loop_close(loop);
	return 0;
}
