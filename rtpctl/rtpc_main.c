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

struct rtpc_proc {
	struct rtpc_srv *srv;
	struct sig_set sigs;
	int stopping;
};

static void
rtpc_proc_stop(void *arg)
{
	struct rtpc_proc *p = arg;

	if (p->stopping)
		return;
	p->stopping = 1;
	rtpc_srv_stop(p->srv);
	sig_set_close(&p->sigs);
}

static void
rtpc_on_stats(void *arg)
{
	struct rtpc_proc *p = arg;

	rtpc_srv_stats_log(p->srv);
}

int
main(int argc, char **argv)
{
	static struct cfg cfg;	/* large: keep it off the stack */
	static struct rtpc_proc proc;
	struct cfg_args a;
	uv_loop_t loop;
	int rc = 0, status = 1;

	cfg_args_parse(&a, argc, argv,
		       "usage: sipmesh-rtpctl -c FILE -i ID [-l LEVEL]\n", 0);
	if (cfg_start(&cfg, "sipmesh-rtpctl", a.path, a.level) != 0)
		return 1;
	if (uv_loop_init(&loop) != 0)
		return 1;
	rc = sig_set_start(&proc.sigs, &loop, "rtpctl", rtpc_proc_stop,
			   rtpc_on_stats, &proc);
	if (rc == 0 && rtpc_srv_new(&proc.srv, &loop, &cfg, a.id) == 0)
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
