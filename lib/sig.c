/*
 * sig.c - SIGINT, SIGTERM, SIGUSR1 and SIGHUP on a libuv loop, see sig.h.
 *
 * Shared so that the edge, the core and rtpctl, which start, tell apart
 * and close the same four handles the same way, cannot drift apart.
 */
#include "lib/sig.h"
#include "lib/log.h"

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static void
sig_set_on_signal(uv_signal_t *h, int signum)
{
	struct sig_set *s = h->data;

	if (signum == SIGUSR1) {
		s->stats(s->data);
		return;
	}
	if (signum == SIGHUP) {
		if (s->reload == NULL) {
			log_notice(LOG_SYS_MAIN, "%s: SIGHUP: nothing to reload",
				   s->who);
			return;
		}
		log_notice(LOG_SYS_MAIN, "%s: SIGHUP, reloading", s->who);
		s->reload(s->data);
		return;
	}
	log_notice(LOG_SYS_MAIN, "%s: %s, stopping", s->who, strsignal(signum));
	s->stop(s->data);
}

int
sig_set_start(struct sig_set *s, uv_loop_t *loop, const char *who,
	      sig_set_cb stop, sig_set_cb stats, void *data)
{
	struct { uv_signal_t *h; int sig; } t[] = {
		{ &s->sig_int, SIGINT }, { &s->sig_term, SIGTERM },
		{ &s->sig_usr1, SIGUSR1 }, { &s->sig_hup, SIGHUP },
	};
	int rc = 0;

	s->stop = stop;
	s->stats = stats;
	s->reload = NULL;
	s->data = data;
	snprintf(s->who, sizeof(s->who), "%s", who);
	for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++) {
		uv_signal_init(loop, t[i].h);
		t[i].h->data = s;
		if (rc == 0)
			rc = uv_signal_start(t[i].h, sig_set_on_signal, t[i].sig);
	}
	return rc;
}

void
sig_set_close(struct sig_set *s)
{
	uv_close((uv_handle_t *)&s->sig_int, NULL);
	uv_close((uv_handle_t *)&s->sig_term, NULL);
	uv_close((uv_handle_t *)&s->sig_usr1, NULL);
	uv_close((uv_handle_t *)&s->sig_hup, NULL);
}
