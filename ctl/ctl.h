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

/* Prints s as a JSON string (quotes included). */
void ctl_json_str(const char *s);

#endif
