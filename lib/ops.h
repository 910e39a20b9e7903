/*
 * ops.h - a process's control socket, for sipmesh-ctl on the same host:
 * <run_dir>/<kind>-<id>.ctl, a unix socket only the process's user may
 * open (cfg_start keeps run_dir 0700, the socket is 0600): whoever can
 * open it could send signals to the process anyway.  HTTP GET through
 * lib/hsrv.h, one request per connection:
 *   /state        JSON: kind, id, pid, start time, log levels, format
 *   /metrics      the process's Prometheus text (its render callback),
 *                 whether or not a metrics address is configured
 *   /log?SPEC     sets log levels at run time (log_levels_set: items
 *                 "sys:level" separated by commas), answers them; 400
 *                 with the reason for a bad SPEC, nothing changed
 * plus the process's own routes (the edge's /drain), added with
 * hsrv_route().
 */
#ifndef SM_OPS_H
#define SM_OPS_H

#include <stddef.h>
#include <uv.h>

#include "lib/hsrv.h"

struct cfg;

/* Writes the control socket path of kind (edge, core, rtpctl) id. */
int ops_path(const struct cfg *c, const char *kind, int id, char *out,
	     size_t cap);

/*
 * Listens on the control socket of kind id on loop; metrics(arg, ...)
 * renders /metrics.  kind is borrowed (a static string).  Writes *out
 * on success only; free it with hsrv_free.  Returns 0 or a negative
 * errno (logged).
 */
int ops_start(struct hsrv **out, uv_loop_t *loop, const struct cfg *c,
	      const char *kind, int id, hsrv_handler_cb metrics, void *arg);

#endif
