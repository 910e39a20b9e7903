/*
 * ctl.h - the parts of sipmesh-ctl, shared by its files.  Each command
 * runs against the cluster's Redis with one blocking connection (a
 * command-line tool, not a daemon) and returns the process exit code:
 * 0 done, 1 failed (said on stderr), 2 bad usage.
 */
#ifndef SM_CTL_H
#define SM_CTL_H

#include <hiredis/hiredis.h>

#include "lib/cfg.h"

extern const char ctl_usage[];

/* sipmesh-ctl rtp list|drain ADDR|enable ADDR; json: list as JSON. */
int ctl_rtp(const struct cfg *c, redisContext *r, int argc, char **argv,
	    int json);

/* sipmesh-ctl aor list [DOMAIN]|show AOR|rm AOR [CONTACT]. */
int ctl_aor(const struct cfg *c, redisContext *r, int argc, char **argv,
	    int json);

/* sipmesh-ctl ps|stats KIND ID|log KIND ID SPEC|log all SPEC|drain
 * edge ID: the processes of this host, through their control sockets;
 * no Redis. */
int ctl_proc(const struct cfg *c, int argc, char **argv, int json);

/* Prints s as a JSON string (quotes included). */
void ctl_json_str(const char *s);

#endif
