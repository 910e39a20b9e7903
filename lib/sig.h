/*
 * sig.h - the signals a long-running sipmesh process watches.
 *
 * SIGINT and SIGTERM stop the process, SIGUSR1 logs its counters, SIGHUP
 * (systemd's `reload`) re-reads what the process can take without a
 * restart.  Every process watches all four on its loop; the set tells
 * them apart, logs the stop, and calls the process back.  The set lives
 * in the caller's storage.
 */
#ifndef SM_SIG_H
#define SM_SIG_H

#include <uv.h>

/* Called on the loop with the data given to sig_set_start(). */
typedef void (*sig_set_cb)(void *data);

struct sig_set {
	uv_signal_t sig_int, sig_term, sig_usr1, sig_hup;
	sig_set_cb stop;	/* SIGINT, SIGTERM */
	sig_set_cb stats;	/* SIGUSR1 */
	sig_set_cb reload;	/* SIGHUP; NULL: logged, nothing done (the
				   default action would kill the process) */
	void *data;
	char who[32];		/* names the process in the stop line */
};

/*
 * Initialises the four handles on loop and starts them: SIGINT and
 * SIGTERM log "<who>: <signal>, stopping" and call stop(data), SIGUSR1
 * calls stats(data), SIGHUP calls s->reload(data) if the caller set it
 * (after this returns).  who is copied.  All four are initialised even
 * when one fails to start, so sig_set_close() is right either way.
 * Returns 0 or libuv's negative errno of the first that failed.
 */
int sig_set_start(struct sig_set *s, uv_loop_t *loop, const char *who,
		  sig_set_cb stop, sig_set_cb stats, void *data);

/* Closes the four handles; the loop finishes closing them. */
void sig_set_close(struct sig_set *s);

#endif
