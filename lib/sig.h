/*
 * sig.h - the signals a long-running sipmesh process watches.
 *
 * SIGINT and SIGTERM stop the process, SIGUSR1 logs its counters.  The
 * edge and rtpctl watch all three on their loop with one callback that
 * tells them apart by signum; the set lives in the caller's storage.
 */
#ifndef SM_SIG_H
#define SM_SIG_H

#include <uv.h>

struct sig_set {
	uv_signal_t sig_int, sig_term, sig_usr1;
};

/*
 * Initialises the three handles on loop, with data as each h->data,
 * and starts them with cb.  All three are initialised even when one
 * fails to start, so sig_set_close() is right either way.  Returns 0
 * or libuv's negative errno of the first that failed.
 */
int sig_set_start(struct sig_set *s, uv_loop_t *loop, uv_signal_cb cb,
		  void *data);

/* Closes the three handles; the loop finishes closing them. */
void sig_set_close(struct sig_set *s);

#endif
