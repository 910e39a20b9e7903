/*
 * ctl_rtp.c - sipmesh-ctl rtp: the rtpengine pool as every rtpctl of
 * the cluster sees it, and taking an instance out of rotation (drain)
 * or back (enable), as Kamailio's rtpengine.enable does, but for the
 * whole cluster at once and across restarts: the drained set lives in
 * Redis and every rtpctl re-reads it when told on the admin channel
 * (rtpctl/rtpc_int.h, rtpc_redis_report).  A drained instance gets no
 * new call; the calls it holds go on until they end.
 */
#include "ctl/ctl.h"
#include "rtpctl/rtpc_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The configured pool; 0, or 1 with the reason said. */
static int
ctl_rtp_pool(const struct cfg *c, struct rtpc_pool *p)
{
	char err[256];

	if (rtpc_pool_parse(p, c->rtpctl_instances, 1, err, sizeof(err)) < 0) {
		fprintf(stderr, "sipmesh-ctl: [rtpctl] instances: %s\n", err);
		return 1;
	}
	return 0;
}

/* redisCommand's reply when it is of type, else NULL (freed). */
static redisReply *
ctl_cmd(redisContext *r, int type, const char *fmt, ...)
{
	redisReply *rep;
	va_list ap;

	va_start(ap, fmt);
	rep = redisvCommand(r, fmt, ap);
	va_end(ap);
	if (rep && rep->type == type)
		return rep;
	fprintf(stderr, "sipmesh-ctl: Redis: %s\n", rep == NULL ? r->errstr :
		rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
	if (rep)
		freeReplyObject(rep);
	return NULL;
}

static int
ctl_rtp_is_drained(const redisReply *set, const char *addr)
{
	for (size_t i = 0; i < set->elements; i++)
		if (strcmp(set->element[i]->str, addr) == 0)
			return 1;
	return 0;
}

/* One rtpctl's view: "<prefix>:rtpadm:pool:<id>" as a HASH. */
static int
ctl_rtp_view(redisContext *r, const char *key, const char *prefix, int json,
	     int first)
{
	int id = atoi(key + strlen(prefix) + strlen(":rtpadm:pool:"));
	redisReply *h = ctl_cmd(r, REDIS_REPLY_ARRAY, "HGETALL %s", key);

	if (h == NULL)
		return 1;
	if (json) {
		printf("%s{\"rtpctl\":%d,\"instances\":[", first ? "" : ",", id);
	} else {
		printf("rtpctl %d:\n  %-24s %-8s %6s %10s %8s\n", id, "rtpengine",
		       "state", "weight", "calls", "inflight");
	}
	for (size_t i = 0; i + 1 < h->elements; i += 2) {
		char state[16] = "?";
		int weight = 0, inflight = 0;
		unsigned long long calls = 0;

		sscanf(h->element[i + 1]->str, "%15s %d %llu %d", state, &weight,
		       &calls, &inflight);
		if (json) {
			printf("%s{\"addr\":", i ? "," : "");
			ctl_json_str(h->element[i]->str);
			printf(",\"state\":");
			ctl_json_str(state);
			printf(",\"weight\":%d,\"calls\":%llu,\"inflight\":%d}",
			       weight, calls, inflight);
		} else {
			printf("  %-24s %-8s %6d %10llu %8d\n", h->element[i]->str,
			       state, weight, calls, inflight);
		}
	}
	if (json)
		printf("]}");
	freeReplyObject(h);
	return 0;
}

static int
ctl_rtp_list(const struct cfg *c, redisContext *r, int json)
{
	const char *pfx = c->redis_prefix;
	redisReply *set, *keys;
	struct rtpc_pool p;
	int rc = 0;

	if (ctl_rtp_pool(c, &p))
		return 1;
	set = ctl_cmd(r, REDIS_REPLY_ARRAY, "SMEMBERS %s:rtpadm:drained", pfx);
	if (set == NULL)
		return 1;
	/* A handful of rtpctl processes: KEYS on this pattern is cheap. */
	keys = ctl_cmd(r, REDIS_REPLY_ARRAY, "KEYS %s:rtpadm:pool:*", pfx);
	if (keys == NULL) {
		freeReplyObject(set);
		return 1;
	}
	if (json) {
		printf("{\"configured\":[");
		for (int i = 0; i < p.n; i++) {
			printf("%s{\"addr\":", i ? "," : "");
			ctl_json_str(p.inst[i].addr);
			printf(",\"weight\":%d,\"drained\":%s}", p.inst[i].weight,
			       ctl_rtp_is_drained(set, p.inst[i].addr) ?
			       "true" : "false");
		}
		printf("],\"rtpctl\":[");
	} else {
		printf("configured (drained: no new calls):\n");
		for (int i = 0; i < p.n; i++)
			printf("  %-24s weight %d%s\n", p.inst[i].addr,
			       p.inst[i].weight,
			       ctl_rtp_is_drained(set, p.inst[i].addr) ?
			       "  drained" : "");
		if (keys->elements == 0)
			printf("no rtpctl reporting (none running, or none "
			       "reaches this Redis)\n");
	}
	for (size_t i = 0; i < keys->elements && rc == 0; i++)
		rc = ctl_rtp_view(r, keys->element[i]->str, pfx, json, i == 0);
	if (json)
		printf("]}\n");
	freeReplyObject(keys);
	freeReplyObject(set);
	return rc;
}

/* drain (on) or enable (off) addr, which must be a configured one. */
static int
ctl_rtp_set(const struct cfg *c, redisContext *r, const char *addr, int on)
{
	struct rtpc_pool p, one;
	char err[256];
	redisReply *rep;
	int i;

	if (ctl_rtp_pool(c, &p))
		return 1;
	/* The address as rtpctl writes it ("[::1]:2223", no weight). */
	if (rtpc_pool_parse(&one, addr, 1, err, sizeof(err)) < 0 || one.n != 1 ||
	    (i = rtpc_pool_find(&p, one.inst[0].addr,
				strlen(one.inst[0].addr))) < 0) {
		fprintf(stderr, "sipmesh-ctl: %s is not one of [rtpctl] "
			"instances in %s\n", addr, c->path);
		return 1;
	}
	rep = ctl_cmd(r, REDIS_REPLY_INTEGER, on ? "SADD %s:rtpadm:drained %s" :
		      "SREM %s:rtpadm:drained %s", c->redis_prefix,
		      p.inst[i].addr);
	if (rep == NULL)
		return 1;
	freeReplyObject(rep);
	/* Every rtpctl re-reads the set on any message. */
	rep = ctl_cmd(r, REDIS_REPLY_INTEGER, "PUBLISH %s:rtpadm %s",
		      c->redis_prefix, p.inst[i].addr);
	if (rep == NULL)
		return 1;
	printf("%s: %s (%lld rtpctl told)\n", p.inst[i].addr, on ?
	       "drained: no new calls, its calls go on" : "back in rotation",
	       rep->integer);
	freeReplyObject(rep);
	return 0;
}

int
ctl_rtp(const struct cfg *c, redisContext *r, int argc, char **argv, int json)
{
	if (argc == 1 && strcmp(argv[0], "list") == 0)
		return ctl_rtp_list(c, r, json);
	if (argc == 2 && strcmp(argv[0], "drain") == 0)
		return ctl_rtp_set(c, r, argv[1], 1);
	if (argc == 2 && strcmp(argv[0], "enable") == 0)
		return ctl_rtp_set(c, r, argv[1], 0);
	fputs(ctl_usage, stderr);
	return 2;
}
