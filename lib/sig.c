/*
 * sig.c - SIGINT, SIGTERM and SIGUSR1 on a libuv loop, see sig.h.
 *
 * Shared so that the edge and rtpctl, which start and close the same
 * three handles the same way, cannot drift apart.
 */
#include "lib/sig.h"

#include <signal.h>
#include <stddef.h>

int
sig_set_start(struct sig_set *s, uv_loop_t *loop, uv_signal_cb cb,
	      void *data)
{
	struct { uv_signal_t *h; int sig; } t[] = {
		{ &s->sig_int, SIGINT }, { &s->sig_term, SIGTERM },
		{ &s->sig_usr1, SIGUSR1 },
	};
	int rc = 0;

	for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++) {
		uv_signal_init(loop, t[i].h);
		t[i].h->data = data;
		if (rc == 0)
			rc = uv_signal_start(t[i].h, cb, t[i].sig);
	}
	return rc;
}

void
sig_set_close(struct sig_set *s)
{
	uv_close((uv_handle_t *)&s->sig_int, NULL);
	uv_close((uv_handle_t *)&s->sig_term, NULL);
	uv_close((uv_handle_t *)&s->sig_usr1, NULL);
}
