/*
 * rtpc_main.c - sipmesh-rtpctl -c FILE -i ID [-l LEVEL].
 *
 * Loads the cluster configuration and runs rtpctl process ID (its
 * endpoint is the ID-th of [rtpctl] ipc) on one libuv loop.
 * SIGINT/SIGTERM close every handle so the loop ends by itself and
 * everything is freed; SIGUSR1 logs the counters.
 */
#include "rtpctl/rtpc.h"
#include "rtpctl/rtpc_int.h"
#include "lib/cfg.h"
#include "lib/log.h"
#include "lib/sig.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct rtpc_proc {
	struct rtpc_srv *srv;
	struct sig_set sigs;
	int stopping;
};

static void
rtpc_usage(void)
{
	fprintf(stderr, "usage: sipmesh-rtpctl -c FILE -i ID [-l LEVEL]\n"
		"  LEVEL: err, warn, notice, info, debug\n");
}

static void
rtpc_proc_stop(struct rtpc_proc *p)
{
	if (p->stopping)
		return;
	p->stopping = 1;
	rtpc_srv_stop(p->srv);
	sig_set_close(&p->sigs);
}

static void
rtpc_on_signal(uv_signal_t *h, int signum)
{
	struct rtpc_proc *p = h->data;

	if (signum == SIGUSR1) {
		rtpc_srv_stats_log(p->srv);
		return;
	}
	log_notice(LOG_SYS_MAIN, "rtpctl: %s, stopping", strsignal(signum));
	rtpc_proc_stop(p);
}

int
main(int argc, char **argv)
{
	static struct cfg cfg;	/* large: keep it off the stack */
	static struct rtpc_proc proc;
	const char *path = NULL, *level = NULL;
	uv_loop_t loop;
	int id = 0, opt, rc = 0, status = 1;

	while ((opt = getopt(argc, argv, "c:i:l:h")) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'i':
			id = atoi(optarg);
			break;
		case 'l':
			level = optarg;
			break;
		default:
			rtpc_usage();
			return opt == 'h' ? 0 : 2;
		}
	}
	if (path == NULL || id <= 0 || optind != argc) {
		rtpc_usage();
		return 2;
	}
	if (cfg_start(&cfg, "sipmesh-rtpctl", path, level) != 0)
		return 1;
	if (uv_loop_init(&loop) != 0)
		return 1;
	rc = sig_set_start(&proc.sigs, &loop, rtpc_on_signal, &proc);
	if (rc == 0 && rtpc_srv_new(&proc.srv, &loop, &cfg, id) == 0)
		status = 0;
	if (status != 0)
		rtpc_proc_stop(&proc);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (proc.srv)
		rtpc_srv_stats_log(proc.srv);
	rtpc_srv_free(proc.srv);
	if (uv_loop_close(&loop) != 0) {
		log_err(LOG_SYS_MAIN, "handles left open at exit");
		status = 1;
	}
	return status;
}
