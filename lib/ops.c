/*
 * ops.c - the control socket of ops.h.
 */
#include "lib/ops.h"
#include "lib/cfg.h"
#include "lib/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One per process: a process has one control socket. */
static struct {
	const char *kind;
	int id;
	time_t started;
} ops_me;

int
ops_path(const struct cfg *c, const char *kind, int id, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%s-%d.ctl", c->run_dir, kind, id);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static const char *
ops_state(void *arg, const char *query, struct hsrv_buf *b)
{
	char levels[256];

	(void)arg;
	(void)query;
	log_levels_str(levels, sizeof(levels));
	hsrv_printf(b, "{\"kind\":\"%s\",\"id\":%d,\"pid\":%d,\"started\":%lld,"
		    "\"log_levels\":\"%s\",\"log_format\":\"%s\"}\n",
		    ops_me.kind, ops_me.id, (int)getpid(),
		    (long long)ops_me.started, levels,
		    log_format_get() == LOG_FMT_JSON ? "json" : "plain");
	return "application/json";
}

static const char *
ops_log(void *arg, const char *query, struct hsrv_buf *b)
{
	char spec[256], levels[256];

	(void)arg;
	/* Only what a level list holds: nothing to decode, nothing odd
	 * reaches the log. */
	if (strlen(query) >= sizeof(spec) ||
	    strspn(query, "abcdefghijklmnopqrstuvwxyz:,") != strlen(query)) {
		hsrv_printf(b, "levels: \"sys:level\" items separated by "
			    "commas\n");
		return HSRV_BAD;
	}
	snprintf(spec, sizeof(spec), "%s", query);
	if (log_levels_set(spec) != 0) {
		hsrv_printf(b, "unknown subsystem or level in \"%s\"\n", spec);
		return HSRV_BAD;
	}
	log_levels_str(levels, sizeof(levels));
	log_notice(LOG_SYS_MAIN, "log levels now %s (control socket)", levels);
	hsrv_printf(b, "%s\n", levels);
	return "text/plain; charset=utf-8";
}

int
ops_start(struct hsrv **out, uv_loop_t *loop, const struct cfg *c,
	  const char *kind, int id, hsrv_handler_cb metrics, void *arg)
{
	/* sipmesh-ctl asks one thing at a time; a few at once is plenty. */
	const struct hsrv_limits lim = { 4, 4096, 5000 };
	char path[CFG_PATH_LEN + 32];
	struct hsrv *s;
	int rc;

	rc = ops_path(c, kind, id, path, sizeof(path));
	if (rc == 0)
		rc = hsrv_new(&s, loop, path, &lim);
	if (rc != 0) {
		log_err(LOG_SYS_MAIN, "%s %d: control socket %s: %s", kind, id,
			path, rc == -ENAMETOOLONG ? "path too long" :
			uv_strerror(rc));
		return rc;
	}
	ops_me.kind = kind;
	ops_me.id = id;
	ops_me.started = time(NULL);
	if ((rc = hsrv_route(s, "/state", ops_state, NULL)) != 0 ||
	    (rc = hsrv_route(s, "/log", ops_log, NULL)) != 0 ||
	    (rc = hsrv_route(s, "/metrics", metrics, arg)) != 0) {
		hsrv_free(s);
		return rc;
	}
	*out = s;
	return 0;
}
