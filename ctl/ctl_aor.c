/*
 * ctl_aor.c - sipmesh-ctl aor: the bindings the cluster holds in Redis
 * (Kamailio's `kamctl ul show` and `ul rm`), on whichever shard holds
 * each AOR ([redis] shards, location/loc_shard.c).  A removal goes
 * through location/loc_tool.c, which announces it so every host's store
 * drops it too.
 */
#include "ctl/ctl.h"
#include "lib/env.h"
#include "lib/log.h"
#include "lib/rconn.h"
#include "location/loc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* The shard names in [redis] shards order, "main" first. */
static int
ctl_shard_names(const struct cfg *c, const char **names)
{
	names[0] = "main";
	for (int i = 0; i < c->n_redis_shards; i++)
		names[i + 1] = c->redis_shards[i].name;
	return c->n_redis_shards + 1;
}

/* A connection to shard i (0: the [redis] Redis), or NULL (said). */
static redisContext *
ctl_shard_connect(const struct cfg *c, redisContext *main_r, int i)
{
	const struct cfg_shard *sh;
	struct rconn_config rc;
	char host[CFG_ADDR_LEN], err[256];
	redisContext *r;

	if (i == 0)
		return main_r;
	sh = &c->redis_shards[i - 1];
	if (rconn_config_cfg(&rc, host, sizeof(host), c, "sipmesh-ctl",
			     LOG_SYS_MAIN) < 0)
		return NULL;
	host[0] = '\0';
	rc.port = 0;
	if (sh->addr[0] && cfg_addr_split(sh->addr, host, sizeof(host),
					  &rc.port, 6379) != 0)
		return NULL;
	rc.sentinels = sh->sentinels;
	rc.master = sh->master;
	if (rc.timeout_ms < 2000)
		rc.timeout_ms = 2000;
	r = rconn_connect_sync(&rc, err, sizeof(err));
	if (r == NULL)
		fprintf(stderr, "sipmesh-ctl: Redis shard %s: %s\n", sh->name,
			err);
	return r;
}

static void
ctl_shard_close(redisContext *main_r, redisContext *r)
{
	if (r && r != main_r)
		redisFree(r);
}

struct ctl_aors {
	char **v;
	size_t n, cap;
	const char *domain;	/* NULL: every AOR */
};

static void
ctl_aor_add(void *arg, const char *aor)
{
	struct ctl_aors *a = arg;
	const char *at = strrchr(aor, '@');
	char **v;

	if (a->domain && (at == NULL || strcasecmp(at + 1, a->domain) != 0))
		return;
	if (a->n == a->cap) {
		a->cap = a->cap ? 2 * a->cap : 64;
		v = realloc(a->v, a->cap * sizeof(*v));
		if (v == NULL)
			return;	/* listed so far; the rest is dropped */
		a->v = v;
	}
	if ((a->v[a->n] = strdup(aor)) != NULL)
		a->n++;
}

static int
ctl_strcmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static int
ctl_aor_list(const struct cfg *c, redisContext *r, const char *domain,
	     int json)
{
	const char *names[CFG_MAX_SHARDS];
	struct ctl_aors a = { .domain = domain };
	int n = ctl_shard_names(c, names), rc = 0;
	size_t shown = 0;

	for (int i = 0; i < n && rc == 0; i++) {
		redisContext *s = ctl_shard_connect(c, r, i);

		if (s == NULL || loc_aor_scan(s, c->redis_prefix, ctl_aor_add,
					      &a) < 0) {
			if (s)
				fprintf(stderr, "sipmesh-ctl: Redis shard %s: %s\n",
					names[i], s->errstr[0] ? s->errstr :
					"SCAN refused");
			rc = 1;
		}
		ctl_shard_close(r, s);
	}
	/* While a shard is added an AOR may sit on two: listed once. */
	qsort(a.v, a.n, sizeof(*a.v), ctl_strcmp);
	if (json)
		printf("[");
	for (size_t i = 0; i < a.n; i++) {
		if (i && strcmp(a.v[i], a.v[i - 1]) == 0)
			continue;
		if (json) {
			printf("%s", shown ? "," : "");
			ctl_json_str(a.v[i]);
		} else {
			printf("%s\n", a.v[i]);
		}
		shown++;
	}
	if (json)
		printf("]\n");
	for (size_t i = 0; i < a.n; i++)
		free(a.v[i]);
	free(a.v);
	return rc;
}

static void
ctl_binding_print(const struct loc_binding *b, int64_t now, int json,
		  int first)
{
	char rcv[64] = "";

	if (b->received.sa.sa_family)
		env_sa_str(&b->received, rcv, sizeof(rcv));
	if (!json) {
		printf("  %s\n    expires in %" PRId64 " s, q %u.%03u, %s",
		       b->contact, b->expires - now, b->q / 1000, b->q % 1000,
		       env_transport_name(b->transport));
		if (b->conn_id)
			printf(", edge %u connection " ENV_CONN_FMT, b->edge_id,
			       ENV_CONN_ARGS(b->conn_id));
		printf("%s%s\n", rcv[0] ? ", from " : "", rcv);
		if (b->instance[0])
			printf("    instance %s reg-id %" PRIu32 "\n", b->instance,
			       b->reg_id);
		if (b->user_agent[0])
			printf("    user agent %s\n", b->user_agent);
		if (b->path[0])
			printf("    path %s\n", b->path);
		return;
	}
	printf("%s{\"contact\":", first ? "" : ",");
	ctl_json_str(b->contact);
	printf(",\"expires_in\":%" PRId64 ",\"q\":%u,\"transport\":", b->expires - now,
	       b->q);
	ctl_json_str(env_transport_name(b->transport));
	printf(",\"edge\":%u,\"conn\":%" PRIu64 ",\"received\":", b->edge_id,
	       b->conn_id);
	ctl_json_str(rcv);
	printf(",\"instance\":");
	ctl_json_str(b->instance);
	printf(",\"reg_id\":%" PRIu32 ",\"user_agent\":", b->reg_id);
	ctl_json_str(b->user_agent);
	printf(",\"path\":");
	ctl_json_str(b->path);
	printf("}");
}

/* show (contact unused) or rm. */
static int
ctl_aor_one(const struct cfg *c, redisContext *r, int rm, const char *aor,
	    const char *contact, int json)
{
	const char *names[CFG_MAX_SHARDS];
	int n = ctl_shard_names(c, names), shard, nb = 0, rc = 1;
	int64_t now = time(NULL);
	struct loc_binding *bs = NULL;
	redisContext *s;
	size_t len = strnlen(aor, LOC_AOR_MAX);

	if (strchr(aor, '@') == NULL || len == LOC_AOR_MAX ||
	    !loc_aor_plain(aor, len)) {
		fprintf(stderr, "sipmesh-ctl: '%s' is not USER@DOMAIN\n", aor);
		return 1;
	}
	shard = loc_shard_of(names, n, aor);
	s = shard < 0 ? NULL : ctl_shard_connect(c, r, shard);
	if (s == NULL)
		return 1;
	if (rm) {
		nb = loc_aor_remove(s, c->redis_prefix, aor, contact);
		if (nb >= 0) {
			printf("%s: %d binding%s removed\n", aor, nb,
			       nb == 1 ? "" : "s");
			rc = nb > 0 || contact == NULL ? 0 : 1;
			if (nb == 0 && contact)
				fprintf(stderr, "sipmesh-ctl: %s has no binding "
					"%s\n", aor, contact);
		}
	} else if (loc_aor_read(s, c->redis_prefix, aor, now, &bs, &nb) == 0) {
		if (json)
			printf("{\"aor\":");
		else
			printf("%s: %d binding%s (shard %s)\n", aor, nb,
			       nb == 1 ? "" : "s", names[shard]);
		if (json) {
			ctl_json_str(aor);
			printf(",\"shard\":");
			ctl_json_str(names[shard]);
			printf(",\"bindings\":[");
		}
		for (int i = 0; i < nb; i++)
			ctl_binding_print(&bs[i], now, json, i == 0);
		if (json)
			printf("]}\n");
		free(bs);
		rc = 0;
	} else {
		nb = -EIO;
	}
	if (nb < 0)
		fprintf(stderr, "sipmesh-ctl: Redis shard %s: %s\n", names[shard],
			s->errstr[0] ? s->errstr : "command refused");
	ctl_shard_close(r, s);
	return rc;
}

int
ctl_aor(const struct cfg *c, redisContext *r, int argc, char **argv, int json)
{
	if (argc <= 2 && strcmp(argv[0], "list") == 0)
		return ctl_aor_list(c, r, argc == 2 ? argv[1] : NULL, json);
	if (argc == 2 && strcmp(argv[0], "show") == 0)
		return ctl_aor_one(c, r, 0, argv[1], NULL, json);
	if ((argc == 2 || argc == 3) && strcmp(argv[0], "rm") == 0)
		return ctl_aor_one(c, r, 1, argv[1], argc == 3 ? argv[2] : NULL,
				   json);
	fputs(ctl_usage, stderr);
	return 2;
}
