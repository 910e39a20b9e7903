/*
 * rtpc_pool.c - the rtpengine instances: parsing the pool, choosing one
 * for a new call, and the up/down state machine, see rtpc_int.h.
 *
 * Choosing is weighted least load, ties broken by smooth weighted round
 * robin (nginx): the candidates are the usable instances with the
 * fewest in-flight commands per unit of weight; every pick adds each
 * candidate's weight to its running score, takes the highest and
 * subtracts the candidates' total from the winner.  With no load and
 * weights 1 and 2 the picks go B A B, B A B...: exact proportions,
 * well interleaved, no random numbers (so tests are exact).  An
 * instance that answers slowly piles up commands and drops out of the
 * candidates until it drains.  Cost O(n) per pick.
 */
#include "rtpctl/rtpc_int.h"
#include "lib/cfg.h"
#include "lib/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
rtpc_pool_parse_one(struct rtpc_inst *in, const char *item, char *err,
		    size_t errlen)
{
	char addr[RTPC_ADDR_LEN], host[RTPC_ADDR_LEN];
	const char *slash = strrchr(item, '/');
	size_t n = slash ? (size_t)(slash - item) : strlen(item);
	long w = 1;
	int port;

	if (slash) {
		char *end;

		w = strtol(slash + 1, &end, 10);
		if (end == slash + 1 || *end != '\0' || w < 1 || w > 1000) {
			snprintf(err, errlen, "%s: weight not in 1..1000", item);
			return -EINVAL;
		}
	}
	if (n == 0 || n >= sizeof(addr)) {
		snprintf(err, errlen, "%s: not ip:port", item);
		return -EINVAL;
	}
	memcpy(addr, item, n);
	addr[n] = '\0';
	if (cfg_addr_split(addr, host, sizeof(host), &port, 2223) != 0 ||
	    env_sa_from(&in->sa, host, port) != 0) {
		snprintf(err, errlen, "%s: not a numeric ip:port", item);
		return -EINVAL;
	}
	memset(in->addr, 0, sizeof(in->addr));
	env_sa_str(&in->sa, in->addr, sizeof(in->addr));
	in->weight = (int)w;
	in->up = 1;
	return 0;
}

int
rtpc_pool_parse(struct rtpc_pool *p, const char *spec, int fail_threshold,
		char *err, size_t errlen)
{
	char buf[1024], *save = NULL, *tok;

	memset(p, 0, sizeof(*p));
	p->fail_threshold = fail_threshold > 0 ? fail_threshold : 1;
	if (strlen(spec) >= sizeof(buf)) {
		snprintf(err, errlen, "too long");
		return -EINVAL;
	}
	strcpy(buf, spec);
	for (tok = strtok_r(buf, " ,\t", &save); tok;
	     tok = strtok_r(NULL, " ,\t", &save)) {
		if (p->n == RTPC_MAX_INST) {
			snprintf(err, errlen, "more than %d instances",
				 RTPC_MAX_INST);
			return -EINVAL;
		}
		if (rtpc_pool_parse_one(&p->inst[p->n], tok, err, errlen))
			return -EINVAL;
		for (int i = 0; i < p->n; i++)
			if (strcmp(p->inst[i].addr, p->inst[p->n].addr) == 0) {
				snprintf(err, errlen, "%s: listed twice", tok);
				return -EINVAL;
			}
		p->n++;
	}
	if (p->n == 0) {
		snprintf(err, errlen, "no instance");
		return -EINVAL;
	}
	return 0;
}

/* Whether a carries less load per weight than b: inflight/weight,
 * cross-multiplied to stay in integers. */
static int
rtpc_pool_lighter(const struct rtpc_inst *a, const struct rtpc_inst *b)
{
	return (int64_t)a->inflight * b->weight <
	       (int64_t)b->inflight * a->weight;
}

static int
rtpc_pool_usable(const struct rtpc_pool *p, int i, uint64_t tried)
{
	return p->inst[i].up && !p->inst[i].drained && !(tried & (1ULL << i));
}

int
rtpc_pool_choose(struct rtpc_pool *p, uint64_t tried)
{
	const struct rtpc_inst *least = NULL;
	int64_t total = 0;
	int best = -1;

	/* The lowest load per weight among the usable instances... */
	for (int i = 0; i < p->n; i++)
		if (rtpc_pool_usable(p, i, tried) &&
		    (least == NULL || rtpc_pool_lighter(&p->inst[i], least)))
			least = &p->inst[i];
	if (least == NULL)
		return -1;
	/* ...then smooth weighted round robin among those that have it. */
	for (int i = 0; i < p->n; i++)
		if (rtpc_pool_usable(p, i, tried) &&
		    !rtpc_pool_lighter(least, &p->inst[i]))
			total += p->inst[i].weight;
	for (int i = 0; i < p->n; i++) {
		struct rtpc_inst *in = &p->inst[i];

		if (!rtpc_pool_usable(p, i, tried) ||
		    rtpc_pool_lighter(least, in))
			continue;
		in->cur += in->weight;
		if (best < 0 || in->cur > p->inst[best].cur)
			best = i;
	}
	p->inst[best].cur -= total;
	p->inst[best].chosen++;
	return best;
}

int
rtpc_pool_find(const struct rtpc_pool *p, const char *a, size_t len)
{
	for (int i = 0; i < p->n; i++)
		if (strlen(p->inst[i].addr) == len &&
		    memcmp(p->inst[i].addr, a, len) == 0)
			return i;
	return -1;
}

static int
rtpc_pool_set(struct rtpc_pool *p, int i, int up, uint64_t now)
{
	struct rtpc_inst *in = &p->inst[i];

	if (in->up == up)
		return 0;
	in->up = up;
	in->since_ms = now;
	/* A returning instance starts level with the others rather than
	 * with the score it had when it left. */
	in->cur = 0;
	return 1;
}

int
rtpc_pool_ok(struct rtpc_pool *p, int i, uint64_t now)
{
	p->inst[i].fails = 0;
	return rtpc_pool_set(p, i, 1, now);
}

int
rtpc_pool_fail(struct rtpc_pool *p, int i, uint64_t now)
{
	struct rtpc_inst *in = &p->inst[i];

	if (in->fails < p->fail_threshold)
		in->fails++;
	if (in->fails < p->fail_threshold)
		return 0;
	return rtpc_pool_set(p, i, 0, now);
}

int
rtpc_pool_down(struct rtpc_pool *p, int i, uint64_t now)
{
	p->inst[i].fails = p->fail_threshold;
	return rtpc_pool_set(p, i, 0, now);
}

int
rtpc_pool_drain_set(struct rtpc_pool *p, const char *const *set, int n)
{
	int changed = 0;

	for (int i = 0; i < p->n; i++) {
		struct rtpc_inst *in = &p->inst[i];
		int want = 0;

		for (int k = 0; k < n && !want; k++)
			want = strcmp(set[k], in->addr) == 0;
		if (in->drained == want)
			continue;
		in->drained = want;
		changed++;
		log_notice(LOG_SYS_RTP, "rtpengine %s: %s", in->addr, want ?
			   "drained by an operator: no new calls, its calls go on" :
			   "back in rotation");
	}
	return changed;
}
