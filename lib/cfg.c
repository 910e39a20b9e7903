/*
 * cfg.c - INI loading for cfg.h.
 *
 * Each key is one row of a table: section, name, type, offset into its
 * struct, default, bounds (redis config.c standardConfig).  Parsing
 * collects entries; validation checks every entry against the tables
 * before anything is applied, so a bad file changes nothing.
 */
#include "lib/cfg.h"
#include "lib/link.h"
#include "lib/env.h"
#include "lib/log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

enum cfg_type { CFG_STR, CFG_INT, CFG_BOOL, CFG_LOGLEVEL };

enum cfg_scope { CFG_GLOBAL, CFG_EDGE, CFG_CORE };

struct cfg_key {
	const char *section;	/* for CFG_GLOBAL keys */
	const char *name;
	enum cfg_type type;
	size_t off;
	size_t size;		/* for CFG_STR */
	const char *def;
	long min, max;
};

#define S(sec, name, field, def) \
	{ sec, name, CFG_STR, offsetof(struct cfg, field), \
	  sizeof(((struct cfg *)0)->field), def, 0, 0 }
#define I(sec, name, field, def, lo, hi) \
	{ sec, name, CFG_INT, offsetof(struct cfg, field), 0, def, lo, hi }
#define B(sec, name, field, def) \
	{ sec, name, CFG_BOOL, offsetof(struct cfg, field), 0, def, 0, 1 }

static const struct cfg_key cfg_global_keys[] = {
	S("cluster", "run_dir", run_dir, "/tmp/sipmesh"),
	S("cluster", "secret", secret, ""),
	I("cluster", "edges", n_edges_wanted, "1", 1, CFG_MAX_EDGES),
	I("cluster", "cores", n_cores_wanted, "2", 1, CFG_MAX_CORES),
	I("cluster", "link_heartbeat_ms", link_heartbeat_ms, "500", 0, 60000),
	I("cluster", "link_dead_ms", link_dead_ms, "2000", 30, 600000),
	{ "log", "level", CFG_LOGLEVEL, offsetof(struct cfg, log_level), 0,
	  "notice", 0, 0 },
	S("log", "levels", log_levels, ""),
	S("log", "format", log_format, "plain"),
	S("redis", "address", redis, ""),
	S("redis", "prefix", redis_prefix, "sm"),
	S("redis", "user", redis_user, ""),
	S("redis", "password", redis_password, ""),
	I("redis", "timeout_ms", redis_timeout_ms, "1000", 10, 60000),
	I("redis", "backoff_max_ms", redis_backoff_max_ms, "2000", 100, 300000),
	I("redis", "max_pending", redis_max_pending, "4096", 16, 1000000),
	I("redis", "dirty_max", redis_dirty_max, "10000", 16, 10000000),
	S("redis", "sentinels", redis_sentinels, ""),
	S("redis", "master", redis_master, "sipmesh"),
	S("redis", "sentinel_password", redis_sentinel_password, ""),
	S("redis", "shards", redis_shards_raw, ""),
	S("location", "shm_name", shm_name, "/sipmesh-loc"),
	I("location", "shm_size_mb", shm_size_mb, "192", 1, 65536),
	I("location", "max_bindings", max_bindings, "100000", 16, 100000000),
	I("location", "init_wait_ms", init_wait_ms, "120000", 100, 3600000),
	I("registrar", "min_expires", min_expires, "60", 0, 86400),
	I("registrar", "max_expires", max_expires, "86400", 1, 31536000),
	I("registrar", "default_expires", default_expires, "3600", 1, 31536000),
	/* At most 16: a fork keeps a CANCEL slot per branch (core). */
	I("registrar", "max_contacts", max_contacts, "10", 1, CFG_CONTACTS_MOST),
	S("registrar", "domains", domains_raw, ""),
	B("registrar", "auth", auth, "no"),
	I("registrar", "nonce_lifetime_s", nonce_lifetime_s, "300", 1, 86400),
	B("registrar", "guests", guests, "yes"),
	S("registrar", "auth_algorithms", auth_algorithms, "SHA-256 MD5"),
	I("registrar", "auth_cache_max", auth_cache_max, "10000", 0, 10000000),
	I("registrar", "auth_cache_ttl_s", auth_cache_ttl_s, "60", 0, 86400),
	I("registrar", "auth_nonces_max", auth_nonces_max, "100000", 16,
	  100000000),
	I("proxy", "t1_ms", t1_ms, "500", 10, 10000),
	I("proxy", "t2_ms", t2_ms, "4000", 10, 60000),
	I("proxy", "t4_ms", t4_ms, "5000", 10, 60000),
	I("proxy", "timer_c_s", timer_c_s, "180", 1, 3600),
	I("proxy", "max_forwards", max_forwards, "70", 1, 255),
	I("proxy", "max_transactions", max_transactions, "300000", 1,
	  10000000),
	B("proxy", "record_route", record_route, "yes"),
	B("proxy", "media", media, "no"),
	S("federation", "dns_servers", dns_servers, ""),
	I("federation", "dns_timeout_ms", dns_timeout_ms, "2000", 100, 30000),
	I("federation", "dns_tries", dns_tries, "2", 1, 10),
	I("federation", "dns_cache_size", dns_cache_size, "1024", 16, 1000000),
	/* below timer F (64*T1, 32 s), or fail-over would never come first */
	I("federation", "failover_ms", failover_ms, "4000", 100, 30000),
	I("federation", "blocklist_s", blocklist_s, "60", 0, 86400),
	S("federation", "tls_client_cert_domains",
	  tls_client_cert_domains_raw, ""),
	S("pstn", "gateways", pstn_gateways, ""),
	S("pstn", "numbers", pstn_numbers, "^\\+?[0-9]{3,15}$"),
	I("pstn", "strip", pstn_strip, "0", 0, 15),
	S("pstn", "prefix", pstn_prefix, ""),
	S("pstn", "username", pstn_username, ""),
	S("pstn", "password", pstn_password, ""),
	S("pstn", "dids", pstn_dids, ""),
	B("pstn", "register", pstn_register, "no"),
	I("pstn", "register_expires", pstn_register_expires, "600", 60, 86400),
	S("rtpctl", "instances", rtpctl_instances, "127.0.0.1:2223/1"),
	S("rtpctl", "ipc", rtpctl_ipc, ""),
	I("rtpctl", "ping_interval_ms", rtpctl_ping_ms, "1000", 50, 60000),
	I("rtpctl", "fail_threshold", rtpctl_fail_threshold, "2", 1, 100),
	I("rtpctl", "ng_timeout_ms", rtpctl_ng_timeout_ms, "500", 20, 10000),
	I("rtpctl", "ng_tries", rtpctl_ng_tries, "3", 1, 10),
	I("rtpctl", "call_ttl_s", rtpctl_call_ttl_s, "86400", 10, 2592000),
	I("rtpctl", "max_calls", rtpctl_max_calls, "100000", 16, 10000000),
	S("rtpctl", "metrics", rtpctl_metrics, ""),
};

#define ES(name, field, def) \
	{ "edge", name, CFG_STR, offsetof(struct cfg_edge, field), \
	  sizeof(((struct cfg_edge *)0)->field), def, 0, 0 }
#define EI(name, field, def, lo, hi) \
	{ "edge", name, CFG_INT, offsetof(struct cfg_edge, field), 0, def, lo, hi }

/* One listen key per transport, on loopback at its default port. */
#define EL(id, key, port, flags, impl) \
	ES(#key, listen[ENV_##id], "127.0.0.1:" #port),

static const struct cfg_key cfg_edge_keys[] = {
	ENV_TRANSPORTS(EL)
	ES("advertise", advertise, ""),
	ES("ipc", ipc, ""),
	{ "edge", "reuseport", CFG_BOOL, offsetof(struct cfg_edge, reuseport),
	  0, "no", 0, 1 },
	EI("max_msg", max_msg, "65535", 512, 1048576),
	ES("tls_cert", tls_cert, ""),
	ES("tls_key", tls_key, ""),
	ES("tls_ca", tls_ca, "/etc/ssl/certs/ca-certificates.crt"),
	ES("http_root", http_root, "web/dist"),
	EI("idle_timeout_s", idle_timeout_s, "3600", 5, 604800),
	EI("max_conns_per_ip", max_conns_per_ip, "1000", 0, 1000000),
	EI("max_conns_per_net", max_conns_per_net, "1000", 0, 1000000),
	EI("max_conns", max_conns, "20000", 0, 10000000),
	EI("handshake_timeout_s", handshake_timeout_s, "10", 1, 600),
	EI("defer_accept_s", defer_accept_s, "1", 0, 30),
	EI("msg_idle_timeout_s", msg_idle_timeout_s, "0", 0, 31536000),
	EI("req_rate", req_rate, "100", 0, 1000000),
	EI("req_burst", req_burst, "200", 1, 10000000),
	EI("conn_rate", conn_rate, "20", 0, 1000000),
	EI("conn_burst", conn_burst, "40", 1, 10000000),
	EI("ws_ping_s", ws_ping_s, "30", 0, 3600),
	ES("ws_origins", ws_origins, ""),
	EI("guest_ttl_s", guest_ttl_s, "43200", 60, 604800),
	ES("hep", hep, ""),
	EI("hep_id", hep_id, "0", 0, 2147483647),
	ES("hep_password", hep_password, ""),
	EI("drain_s", drain_s, "30", 0, 3600),
	ES("metrics", metrics, ""),
};

static const struct cfg_key cfg_core_keys[] = {
	{ "core", "ipc", CFG_STR, offsetof(struct cfg_core, ipc),
	  sizeof(((struct cfg_core *)0)->ipc), "", 0, 0 },
	{ "core", "metrics", CFG_STR, offsetof(struct cfg_core, metrics),
	  sizeof(((struct cfg_core *)0)->metrics), "", 0, 0 },
	{ "core", "standby", CFG_BOOL, offsetof(struct cfg_core, standby),
	  0, "no", 0, 1 },
};

#define NKEYS(t) (sizeof(t) / sizeof(*(t)))

struct cfg_entry {
	char section[64];
	char name[64];
	char value[1024];
	int line;
};

struct cfg_parse {
	FILE *f;
	int line;		/* lines read so far: Debian's libinih is
				   built without INI_HANDLER_LINENO */
	struct cfg_entry *v;
	size_t n, cap;
	int overflow;		/* a name or value did not fit */
	int bad_line;
};

static char *
cfg_read_line(char *str, int num, void *stream)
{
	struct cfg_parse *p = stream;
	char *r = fgets(str, num, p->f);
	size_t n;
	int c;

	if (r == NULL)
		return NULL;
	p->line++;
	/*
	 * inih reads at most num bytes a line: the rest of a longer line
	 * would come back as a line of its own, cutting the value and
	 * shifting every later line number.  Refuse the line instead.
	 */
	n = strlen(r);
	if (n == (size_t)num - 1 && r[n - 1] != '\n' &&
	    (c = fgetc(p->f)) != EOF && c != '\n') {
		while ((c = fgetc(p->f)) != EOF && c != '\n')
			;
		if (!p->overflow) {
			p->overflow = 1;
			p->bad_line = p->line;
		}
		r[0] = '\0';
	}
	return r;
}

static int
cfg_on_entry(void *user, const char *section, const char *name,
	     const char *value)
{
	struct cfg_parse *p = user;
	struct cfg_entry *e;
	int lineno = p->line;

	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct cfg_entry *v = realloc(p->v, cap * sizeof(*v));
		if (v == NULL)
			return 0;
		p->v = v;
		p->cap = cap;
	}
	e = &p->v[p->n];
	if (strlen(section) >= sizeof(e->section) ||
	    strlen(name) >= sizeof(e->name) ||
	    strlen(value) >= sizeof(e->value)) {
		p->overflow = 1;
		p->bad_line = lineno;
		return 0;
	}
	strcpy(e->section, section);
	strcpy(e->name, name);
	strcpy(e->value, value);
	e->line = lineno;
	p->n++;
	return 1;
}

/* "edge 3" -> CFG_EDGE, id 3; "edge" -> CFG_EDGE, id 0; else global. */
static int
cfg_section_scope(const char *section, int *id)
{
	static const struct { const char *kind; int scope; } kinds[] = {
		{ "edge", CFG_EDGE }, { "core", CFG_CORE },
	};

	*id = 0;
	for (size_t i = 0; i < NKEYS(kinds); i++) {
		size_t n = strlen(kinds[i].kind);
		char *end;
		long v;

		if (strncasecmp(section, kinds[i].kind, n) != 0)
			continue;
		if (section[n] == '\0')
			return kinds[i].scope;
		if (section[n] != ' ')
			continue;
		v = strtol(section + n + 1, &end, 10);
		if (*end != '\0' || v < 1 || v > CFG_MAX_EDGES)
			return -1;
		*id = (int)v;
		return kinds[i].scope;
	}
	return CFG_GLOBAL;
}

static const struct cfg_key *
cfg_key_find(const struct cfg_key *t, size_t n, const char *section,
	     const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(t[i].section, section) == 0 &&
		    strcasecmp(t[i].name, name) == 0)
			return &t[i];
	return NULL;
}

/* Stores value into base+k->off; returns 0 or -EINVAL with a reason. */
static int
cfg_key_set(const struct cfg_key *k, void *base, const char *value,
	    const char **why)
{
	char *dst = (char *)base + k->off;
	char *end;
	long v;

	switch (k->type) {
	case CFG_STR:
		if (strlen(value) >= k->size) {
			*why = "value too long";
			return -EINVAL;
		}
		strcpy(dst, value);
		return 0;
	case CFG_INT:
		errno = 0;
		v = strtol(value, &end, 10);
		if (errno || end == value || *end != '\0') {
			*why = "not an integer";
			return -EINVAL;
		}
		if (v < k->min || v > k->max) {
			*why = "out of range";
			return -EINVAL;
		}
		*(int *)dst = (int)v;
		return 0;
	case CFG_BOOL:
		if (!strcasecmp(value, "yes") || !strcasecmp(value, "true") ||
		    !strcmp(value, "1") || !strcasecmp(value, "on"))
			*(int *)dst = 1;
		else if (!strcasecmp(value, "no") || !strcasecmp(value, "false") ||
			 !strcmp(value, "0") || !strcasecmp(value, "off"))
			*(int *)dst = 0;
		else {
			*why = "not a boolean (yes/no)";
			return -EINVAL;
		}
		return 0;
	case CFG_LOGLEVEL:
		v = log_level_parse(value);
		if (v < 0) {
			*why = "not one of err, warn, notice, info, debug";
			return -EINVAL;
		}
		*(int *)dst = (int)v;
		return 0;
	}
	*why = "unknown type";
	return -EINVAL;
}

static void
cfg_defaults(const struct cfg_key *t, size_t n, void *base)
{
	const char *why;

	for (size_t i = 0; i < n; i++)
		if (cfg_key_set(&t[i], base, t[i].def, &why) != 0)
			abort();	/* a bad default is a programming error */
}

/* Applies every entry of one scope/id to base. */
static int
cfg_apply(const struct cfg_parse *p, int scope, int id,
	  const struct cfg_key *t, size_t n, void *base,
	  const char *path, char *err, size_t errlen)
{
	for (size_t i = 0; i < p->n; i++) {
		const struct cfg_entry *e = &p->v[i];
		const struct cfg_key *k;
		const char *why = "unknown key";
		int eid, sc = cfg_section_scope(e->section, &eid);

		if (sc != scope || eid != id)
			continue;
		k = cfg_key_find(t, n, scope == CFG_GLOBAL ? e->section :
				 scope == CFG_EDGE ? "edge" : "core", e->name);
		if (k == NULL || cfg_key_set(k, base, e->value, &why) != 0) {
			snprintf(err, errlen, "%s:%d %s: %s", path, e->line,
				 e->name, why);
			return -EINVAL;
		}
	}
	return 0;
}

/* Splits raw ("a.example b.example", commas or blanks) into at most
 * CFG_MAX_DOMAINS lower-case names; key names it in the error. */
static int
cfg_split_domains(const struct cfg *c, const char *raw, const char *key,
		  char (*out)[128], int *n, char *err, size_t errlen)
{
	char buf[1024], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", raw);
	*n = 0;
	for (tok = strtok_r(buf, " ,\t", &save); tok;
	     tok = strtok_r(NULL, " ,\t", &save)) {
		if (*n == CFG_MAX_DOMAINS || strlen(tok) >= sizeof(out[0])) {
			snprintf(err, errlen, "%s %s: too many or too long",
				 c->path, key);
			return -EINVAL;
		}
		for (char *s = tok; *s; s++)
			*s = (char)tolower((unsigned char)*s);
		strcpy(out[(*n)++], tok);
	}
	return 0;
}

/* Whether list is "host[:port],..." (empty is fine); 0 or -EINVAL. */
static int
cfg_check_list(const char *list)
{
	char tok[CFG_ADDR_LEN], host[CFG_ADDR_LEN];
	int port;

	while (*list) {
		size_t n = strcspn(list, ","), b = 0;

		while (b < n && isspace((unsigned char)list[b]))
			b++;
		while (n > b && isspace((unsigned char)list[n - 1]))
			n--;
		if (n - b >= sizeof(tok))
			return -EINVAL;
		memcpy(tok, list + b, n - b);
		tok[n - b] = '\0';
		if (cfg_addr_split(tok, host, sizeof(host), &port, 1) != 0)
			return -EINVAL;
		list += strcspn(list, ",");
		if (*list == ',' && !*++list)
			return -EINVAL;
	}
	return 0;
}

/* A metrics address is empty (off) or "ip:port" with a port: an IP
 * address, as a name would be resolved at start, on the loop. */
static int
cfg_metrics_ok(const char *addr)
{
	char host[CFG_ADDR_LEN];
	unsigned char a[sizeof(struct in6_addr)];
	int port = 0;

	return addr[0] == '\0' ||
	       (cfg_addr_split(addr, host, sizeof(host), &port, 0) == 0 &&
		port > 0 && (inet_pton(AF_INET, host, a) == 1 ||
			     inet_pton(AF_INET6, host, a) == 1));
}

static int
cfg_check_redis(const struct cfg *c, char *err, size_t errlen)
{
	char host[CFG_ADDR_LEN];
	int port;

	if (c->redis[0] == '\0' ||
	    cfg_redis_split(c->redis, host, sizeof(host), &port) == 0)
		return 0;
	snprintf(err, errlen, "%s redis.address: neither host:port nor the "
		 "absolute path of a unix socket", c->path);
	return -EINVAL;
}

/*
 * [pstn]: each gateway a sip: or sips: URI without a user (the number
 * goes there), at most CFG_PSTN_GW_MAX; numbers a regex that compiles;
 * digits, + and * in prefix; username and password both or neither;
 * dids as cfg_pstn_dids reads them (they need no gateway: a carrier's
 * calls for them may come in on a trunk we send nothing to).
 * Trunks need digest authentication: in
 * open mode anyone could call the phone network in a user's name.
 */
static int
cfg_check_pstn(const struct cfg *c, char *err, size_t errlen)
{
	struct cfg_did *dids = malloc(CFG_PSTN_DIDS_MAX * sizeof(*dids));
	const char *p = c->pstn_gateways;
	regex_t re;
	int n = 0;

	if (dids == NULL) {
		snprintf(err, errlen, "%s: out of memory", c->path);
		return -ENOMEM;
	}
	n = cfg_pstn_dids(c, dids, CFG_PSTN_DIDS_MAX, err, errlen);
	free(dids);
	if (n < 0)
		return n;
	/* read by the cores as soon as there is a [pstn] (DIDs too) */
	if (n > 0 && regcomp(&re, c->pstn_numbers, REG_EXTENDED | REG_NOSUB)) {
		snprintf(err, errlen, "%s pstn.numbers: not a POSIX extended "
			 "regular expression", c->path);
		return -EINVAL;
	}
	if (n > 0)
		regfree(&re);
	n = 0;

	for (; *(p += strspn(p, " \t")); p += strcspn(p, " \t")) {
		size_t len = strcspn(p, " \t");
		size_t at = strcspn(p, "@");

		if (++n > CFG_PSTN_GW_MAX || at < len ||
		    !((len > 4 && strncasecmp(p, "sip:", 4) == 0) ||
		      (len > 5 && strncasecmp(p, "sips:", 5) == 0))) {
			snprintf(err, errlen, "%s pstn.gateways: \"%.*s\" is "
				 "not a sip: or sips: URI without a user, or "
				 "one of over %d", c->path, (int)len, p,
				 CFG_PSTN_GW_MAX);
			return -EINVAL;
		}
	}
	if (n == 0 && c->pstn_register) {
		snprintf(err, errlen, "%s pstn.register: no pstn.gateways to "
			 "register at", c->path);
		return -EINVAL;
	}
	if (n == 0)
		return 0;
	if (!c->auth) {
		snprintf(err, errlen, "%s pstn.gateways: needs [registrar] "
			 "auth = yes (in open mode anyone could call the "
			 "phone network as one of your users)", c->path);
		return -EINVAL;
	}
	if (regcomp(&re, c->pstn_numbers, REG_EXTENDED | REG_NOSUB) != 0) {
		snprintf(err, errlen, "%s pstn.numbers: not a POSIX extended "
			 "regular expression", c->path);
		return -EINVAL;
	}
	regfree(&re);
	if (!c->pstn_username[0] != !c->pstn_password[0]) {
		snprintf(err, errlen, "%s pstn.username, pstn.password: both "
			 "or neither", c->path);
		return -EINVAL;
	}
	if (c->pstn_register && !c->pstn_username[0]) {
		snprintf(err, errlen, "%s pstn.register: registers username: "
			 "set pstn.username and pstn.password", c->path);
		return -EINVAL;
	}
	/* registered, it is the user part of our Contact and To */
	if (c->pstn_register &&
	    strspn(c->pstn_username, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"
		   "KLMNOPQRSTUVWXYZ0123456789-_.!~*'()&=+$,") !=
	    strlen(c->pstn_username)) {
		snprintf(err, errlen, "%s pstn.username: with register = yes, "
			 "what a URI's user part holds unescaped only",
			 c->path);
		return -EINVAL;
	}
	for (const char *u = c->pstn_username; *u; u++)
		if (*u == '"' || *u == '\\' || (unsigned char)*u < 0x20) {
			snprintf(err, errlen, "%s pstn.username: no quote, "
				 "backslash or control character", c->path);
			return -EINVAL;
		}
	/* '#' would need escaping in a URI's user part */
	if (strspn(c->pstn_prefix, "0123456789+*") != strlen(c->pstn_prefix)) {
		snprintf(err, errlen, "%s pstn.prefix: digits, + and * only",
			 c->path);
		return -EINVAL;
	}
	return 0;
}

static int
cfg_check_metrics(const struct cfg *c, char *err, size_t errlen)
{
	char a[CFG_ADDR_LEN];

	for (int i = 0; i < c->n_edges; i++)
		if (!cfg_metrics_ok(c->edges[i].metrics)) {
			snprintf(err, errlen, "%s [edge %d] metrics: not "
				 "ip:port", c->path, c->edges[i].id);
			return -EINVAL;
		}
	for (int i = 0; i < c->n_cores; i++)
		if (!cfg_metrics_ok(c->cores[i].metrics)) {
			snprintf(err, errlen, "%s [core %d] metrics: not "
				 "ip:port", c->path, c->cores[i].id);
			return -EINVAL;
		}
	for (int id = 1; cfg_rtpctl_metrics(c, id, a, sizeof(a)) == 0; id++)
		if (!cfg_metrics_ok(a)) {
			snprintf(err, errlen, "%s rtpctl.metrics: \"%s\" is not "
				 "ip:port", c->path, a);
			return -EINVAL;
		}
	return 0;
}

int
cfg_rtpctl_metrics(const struct cfg *c, int id, char *out, size_t cap)
{
	const char *p = c->rtpctl_metrics;

	for (int i = 1; *(p += strspn(p, " \t,")); i++) {
		size_t n = strcspn(p, " \t,");

		if (i == id) {
			if (n >= cap)
				n = cap - 1;
			memcpy(out, p, n);
			out[n] = '\0';
			return 0;
		}
		p += n;
	}
	return -ENOENT;
}

/*
 * Splits [redis] shards: blank-separated "name=host:port" or
 * "name=master@sentinel[:port],...".  Names are [a-z0-9_-], unique, not
 * "main" ([redis]'s own); only [redis] itself may be the first shard,
 * so a shards list without address or sentinels is refused.
 */
static int
cfg_split_shards(struct cfg *c, char *err, size_t errlen)
{
	char buf[sizeof(c->redis_shards_raw)], *save = NULL, *tok;
	const char *why = NULL;

	snprintf(buf, sizeof(buf), "%s", c->redis_shards_raw);
	c->n_redis_shards = 0;
	for (tok = strtok_r(buf, " \t", &save); tok && !why;
	     tok = strtok_r(NULL, " \t", &save)) {
		struct cfg_shard *sh = &c->redis_shards[c->n_redis_shards];
		char *eq = strchr(tok, '='), *at, host[CFG_ADDR_LEN];
		int port;

		if (c->n_redis_shards == CFG_MAX_SHARDS - 1) {
			why = "too many shards";
			break;
		}
		memset(sh, 0, sizeof(*sh));
		if (!eq || eq == tok || (size_t)(eq - tok) >= sizeof(sh->name)) {
			why = "not name=address";
			break;
		}
		*eq++ = '\0';
		for (char *s = tok; *s && !why; s++) {
			*s = (char)tolower((unsigned char)*s);
			if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
				why = "a name is [a-z0-9_-]";
		}
		if (!why && strcmp(tok, "main") == 0)
			why = "\"main\" is [redis] address/sentinels";
		for (int i = 0; !why && i < c->n_redis_shards; i++)
			if (strcmp(c->redis_shards[i].name, tok) == 0)
				why = "a name given twice";
		if (why)
			break;
		strcpy(sh->name, tok);
		at = strchr(eq, '@');
		if (at) {
			*at++ = '\0';
			if (!*eq || strlen(eq) >= sizeof(sh->master) ||
			    strlen(at) >= sizeof(sh->sentinels) ||
			    cfg_check_list(at) != 0 || !*at)
				why = "not name=master@host:port,...";
			else {
				strcpy(sh->master, eq);
				strcpy(sh->sentinels, at);
			}
		} else if (strlen(eq) >= sizeof(sh->addr) ||
			   cfg_redis_split(eq, host, sizeof(host), &port) != 0) {
			why = "not name=host:port or name=/unix/socket";
		} else {
			strcpy(sh->addr, eq);
		}
		c->n_redis_shards++;
	}
	if (!why && c->n_redis_shards && !c->redis[0] && !c->redis_sentinels[0])
		why = "set [redis] address or sentinels first (shard \"main\")";
	if (why) {
		snprintf(err, errlen, "%s redis.shards: %s", c->path, why);
		return -EINVAL;
	}
	return 0;
}

/*
 * Envelopes between hosts are authenticated with a key derived from
 * [cluster] secret (lib/link.h); without a secret every host has its
 * own random key and nothing would verify, so an endpoint off the host
 * needs one.  rtpctl's commands are not authenticated: it serves the
 * cores of its own host only.
 */
static int
cfg_check_endpoints(const struct cfg *c, char *err, size_t errlen)
{
	const char *off = NULL;

	for (int i = 0; i < c->n_edges + c->n_cores; i++) {
		const char *u = i < c->n_edges ? c->edges[i].ipc :
			c->cores[i - c->n_edges].ipc;

		if (link_url_ok(u) < 0) {
			snprintf(err, errlen, "%s: ipc %s: not a link endpoint "
				 "(ipc://<path>, tcp://<IPv4 address>:<port> "
				 "or tcp://[<IPv6 address>]:<port>)", c->path, u);
			return -EINVAL;
		}
	}
	for (int i = 0; i < c->n_edges && !off; i++)
		if (!link_url_local(c->edges[i].ipc))
			off = c->edges[i].ipc;
	for (int i = 0; i < c->n_cores && !off; i++)
		if (!link_url_local(c->cores[i].ipc))
			off = c->cores[i].ipc;
	if (off && c->secret[0] == '\0') {
		snprintf(err, errlen, "%s: ipc %s reaches other hosts: set "
			 "[cluster] secret (the same on every host)", c->path,
			 off);
		return -EINVAL;
	}
	for (const char *u = c->rtpctl_ipc; *u; ) {
		u += strspn(u, " \t");
		if (*u && !link_url_local(u)) {
			snprintf(err, errlen, "%s [rtpctl] ipc: rtpctl serves "
				 "the cores of its own host (ipc://) only",
				 c->path);
			return -EINVAL;
		}
		u += strcspn(u, " \t");
	}
	return 0;
}

int
cfg_load(struct cfg *c, const char *path, char *err, size_t errlen)
{
	struct cfg_parse p = { 0 };
	int ids_edge[CFG_MAX_EDGES + 1] = { 0 }, ids_core[CFG_MAX_CORES + 1] = { 0 };
	int rc = -EINVAL, r;

	memset(c, 0, sizeof(*c));
	snprintf(c->path, sizeof(c->path), "%s", path ? path : "(defaults)");
	cfg_defaults(cfg_global_keys, NKEYS(cfg_global_keys), c);

	if (path) {
		p.f = fopen(path, "r");
		if (p.f == NULL) {
			snprintf(err, errlen, "%s: cannot open", path);
			goto fail;
		}
		r = ini_parse_stream(cfg_read_line, &p, cfg_on_entry, &p);
		fclose(p.f);
		if (r > 0 || p.overflow) {
			snprintf(err, errlen, "%s:%d: syntax error or value "
				 "too long", path, r > 0 && (!p.overflow ||
				 r < p.bad_line) ? r : p.bad_line);
			goto fail;
		}
	}

	/* Which instances exist: explicit sections, then the counts. */
	for (size_t i = 0; i < p.n; i++) {
		int id, sc = cfg_section_scope(p.v[i].section, &id);

		if (sc < 0) {
			snprintf(err, errlen, "%s:%d [%s]: bad instance number",
				 path, p.v[i].line, p.v[i].section);
			goto fail;
		}
		if (sc == CFG_EDGE && id)
			ids_edge[id] = 1;
		if (sc == CFG_CORE && id)
			ids_core[id] = 1;
	}

	if (cfg_apply(&p, CFG_GLOBAL, 0, cfg_global_keys,
		      NKEYS(cfg_global_keys), c, c->path, err, errlen) != 0)
		goto fail;
	for (int id = 1; id <= c->n_edges_wanted; id++)
		ids_edge[id] = 1;
	for (int id = 1; id <= c->n_cores_wanted; id++)
		ids_core[id] = 1;

	for (int id = 1; id <= CFG_MAX_EDGES; id++) {
		struct cfg_edge *e;

		if (!ids_edge[id])
			continue;
		e = &c->edges[c->n_edges++];
		cfg_defaults(cfg_edge_keys, NKEYS(cfg_edge_keys), e);
		e->id = id;
		if (cfg_apply(&p, CFG_EDGE, 0, cfg_edge_keys,
			      NKEYS(cfg_edge_keys), e, c->path, err, errlen) ||
		    cfg_apply(&p, CFG_EDGE, id, cfg_edge_keys,
			      NKEYS(cfg_edge_keys), e, c->path, err, errlen))
			goto fail;
		if (e->ipc[0] == '\0')
			snprintf(e->ipc, sizeof(e->ipc), "ipc://%.200s/edge-%d",
				 c->run_dir, id);
		if (e->advertise[0] == '\0')
			strcpy(e->advertise, e->listen[ENV_UDP]);
	}
	for (int id = 1; id <= CFG_MAX_CORES; id++) {
		struct cfg_core *k;

		if (!ids_core[id])
			continue;
		k = &c->cores[c->n_cores++];
		cfg_defaults(cfg_core_keys, NKEYS(cfg_core_keys), k);
		k->id = id;
		if (cfg_apply(&p, CFG_CORE, 0, cfg_core_keys,
			      NKEYS(cfg_core_keys), k, c->path, err, errlen) ||
		    cfg_apply(&p, CFG_CORE, id, cfg_core_keys,
			      NKEYS(cfg_core_keys), k, c->path, err, errlen))
			goto fail;
		if (k->ipc[0] == '\0')
			snprintf(k->ipc, sizeof(k->ipc), "ipc://%.200s/core-%d",
				 c->run_dir, id);
	}

	if (cfg_check_metrics(c, err, errlen) != 0)
		goto fail;
	if (cfg_check_redis(c, err, errlen) != 0)
		goto fail;
	if (cfg_check_list(c->redis_sentinels) != 0) {
		snprintf(err, errlen, "%s redis.sentinels: not host:port,...",
			 c->path);
		goto fail;
	}
	if (c->link_heartbeat_ms &&
	    c->link_dead_ms < LINK_LIVE_MIN_TICKS * c->link_heartbeat_ms) {
		snprintf(err, errlen, "%s cluster.link_dead_ms: below %d times "
			 "link_heartbeat_ms (a live peer may be silent for two)",
			 c->path, LINK_LIVE_MIN_TICKS);
		goto fail;
	}
	if (cfg_split_shards(c, err, errlen) != 0)
		goto fail;
	if (c->min_expires > c->max_expires) {
		snprintf(err, errlen, "%s registrar.min_expires: above "
			 "max_expires", c->path);
		goto fail;
	}
	for (int i = 0; i < c->n_edges; i++) {
		const struct cfg_edge *e = &c->edges[i];
		char host[CFG_ADDR_LEN];
		int port;

		if (cfg_edge_listen(e, ENV_UDP, host, sizeof(host), &port) ||
		    cfg_addr_split(e->advertise, host, sizeof(host), &port,
				   env_transport_sip_port(ENV_UDP)) != 0) {
			snprintf(err, errlen, "%s [edge %d] udp/advertise: not "
				 "host:port", c->path, e->id);
			goto fail;
		}
		for (int t = ENV_UDP; t < ENV_TP_END; t++) {
			if (cfg_edge_listen(e, t, host, sizeof(host),
					    &port) == -EINVAL) {
				snprintf(err, errlen, "%s [edge %d] %s: not "
					 "host:port", c->path, e->id,
					 env_transport_key(t));
				goto fail;
			}
		}
	}
	if (cfg_split_domains(c, c->domains_raw, "registrar.domains",
			      c->domains, &c->n_domains, err, errlen) != 0 ||
	    cfg_split_domains(c, c->tls_client_cert_domains_raw,
			      "federation.tls_client_cert_domains",
			      c->tls_client_cert_domains,
			      &c->n_tls_client_cert_domains, err, errlen) != 0 ||
	    cfg_check_endpoints(c, err, errlen) != 0 ||
	    cfg_check_pstn(c, err, errlen) != 0)	/* DIDs: local domains */
		goto fail;
	rc = 0;
fail:
	free(p.v);
	return rc;
}

void
cfg_args_parse(struct cfg_args *a, int argc, char **argv, const char *usage,
	       unsigned flags)
{
	int opt;

	memset(a, 0, sizeof(*a));
	while ((opt = getopt(argc, argv, flags ? "c:i:l:Lh" : "c:i:l:h")) != -1) {
		switch (opt) {
		case 'c':
			a->path = optarg;
			break;
		case 'i':
			a->id = atoi(optarg);
			break;
		case 'l':
			a->level = optarg;
			break;
		case 'L':
			a->list = 1;
			break;
		default:
			goto usage;
		}
	}
	if (a->path && optind == argc &&
	    (a->id > 0 || (a->list && (flags & CFG_ARGS_LIST_ALL))))
		return;
	opt = 0;
usage:
	fprintf(stderr, "%s  LEVEL: err, warn, notice, info, debug\n", usage);
	exit(opt == 'h' ? 0 : 2);
}

/*
 * run_dir holds the nanomsg ipc endpoints and the flow-token key: whoever
 * can write there can stand in for an edge or a core.  So it is made
 * 0700, and an existing one is used only when it is a real directory
 * (not a symlink someone planted in /tmp) of our own user that nobody
 * else may write to.
 */
static int
cfg_run_dir_make(const char *dir)
{
	struct stat st;
	const char *why = NULL;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		why = strerror(errno);
	else if (lstat(dir, &st) != 0)
		why = strerror(errno);
	else if (!S_ISDIR(st.st_mode))
		why = "not a directory (a symlink?)";
	else if (st.st_uid != geteuid())
		why = "owned by another user";
	else if (st.st_mode & (S_IWGRP | S_IWOTH))
		why = "writable by group or others";
	if (why == NULL)
		return 0;
	log_err(LOG_SYS_CFG, "run_dir %s: %s; refusing to use it", dir, why);
	return -EPERM;
}

int
cfg_start(struct cfg *c, const char *procname, const char *path,
	  const char *level)
{
	char err[512];
	int lvl, fmt;

	log_init(procname, LOG_LVL_NOTICE);
	if (cfg_load(c, path, err, sizeof(err)) != 0) {
		log_err(LOG_SYS_CFG, "%s", err);
		return -EINVAL;
	}
	lvl = level ? log_level_parse(level) : c->log_level;
	if (lvl < 0) {
		log_err(LOG_SYS_CFG, "unknown log level %s", level);
		return -EINVAL;
	}
	log_set_level(-1, lvl);
	/* -l on the command line is every subsystem's level: the file's
	 * refinements give way to it. */
	if (level == NULL && log_levels_set(c->log_levels) != 0) {
		log_err(LOG_SYS_CFG, "[log] levels = %s: not \"sys:level ...\"",
			c->log_levels);
		return -EINVAL;
	}
	fmt = log_format_parse(c->log_format);
	if (fmt < 0) {
		log_err(LOG_SYS_CFG, "[log] format = %s: plain or json",
			c->log_format);
		return -EINVAL;
	}
	log_set_format(fmt);
	if (cfg_run_dir_make(c->run_dir) != 0)
		return -EINVAL;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

const struct cfg_edge *
cfg_edge_find(const struct cfg *c, int id)
{
	for (int i = 0; i < c->n_edges; i++)
		if (c->edges[i].id == id)
			return &c->edges[i];
	return NULL;
}

const struct cfg_core *
cfg_core_find(const struct cfg *c, int id)
{
	for (int i = 0; i < c->n_cores; i++)
		if (c->cores[i].id == id)
			return &c->cores[i];
	return NULL;
}

int
cfg_edge_listen(const struct cfg_edge *e, int transport, char *host,
		size_t hostlen, int *port)
{
	if (!env_transport_valid(transport) || e->listen[transport][0] == '\0')
		return -ENOENT;
	return cfg_addr_split(e->listen[transport], host, hostlen, port,
			      env_transport_port(transport));
}

int
cfg_edge_sent_by(const struct cfg_edge *e, int transport, char *out,
		 size_t cap)
{
	char host[CFG_ADDR_LEN], lhost[CFG_ADDR_LEN];
	int port, lport, n;

	if (cfg_edge_listen(e, transport, lhost, sizeof(lhost), &lport) != 0 ||
	    cfg_addr_split(e->advertise, host, sizeof(host), &port,
			   env_transport_sip_port(ENV_UDP)) != 0)
		return -ENOENT;
	if (transport == ENV_UDP)
		lport = port;
	n = snprintf(out, cap, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host,
		     lport);
	return n < 0 || (size_t)n >= cap ? -ENOSPC : 0;
}

int
cfg_domain_is_local(const struct cfg *c, const char *host, size_t len)
{
	if (c->n_domains == 0)
		return 1;
	for (int i = 0; i < c->n_domains; i++)
		if (strlen(c->domains[i]) == len &&
		    strncasecmp(c->domains[i], host, len) == 0)
			return 1;
	return 0;
}

int
cfg_pstn_dids(const struct cfg *c, struct cfg_did *out, int max, char *err,
	      size_t errlen)
{
	const char *p = c->pstn_dids;
	int n = 0;

	for (; *(p += strspn(p, " \t")); p += strcspn(p, " \t")) {
		size_t len = strcspn(p, " \t"), nl = strspn(p, "0123456789+*");
		size_t ul = 0, dl = 0;
		const char *d = p;
		struct cfg_did *e = &out[n];

		/* number '=' user '@' domain, each part within the entry */
		if (nl < len && p[nl] == '=') {
			ul = strspn(p + nl + 1, "abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+");
			d = p + nl + 1 + ul + 1;
		}
		if (d > p && (size_t)(d - p) < len && d[-1] == '@')
			dl = strspn(d, "abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-");
		if (n == max || nl == 0 || nl >= CFG_DID_NUM_MAX || ul == 0 ||
		    ul >= CFG_DID_USER_MAX || dl == 0 ||
		    dl != len - (size_t)(d - p) || dl >= CFG_ADDR_LEN ||
		    !cfg_domain_is_local(c, d, dl)) {
			snprintf(err, errlen, "%s pstn.dids: \"%.*s\" is not "
				 "<number>=<user>@<local domain>, or one of "
				 "over %d", c->path, (int)len, p, max);
			return -EINVAL;
		}
		e->index = n;
		memcpy(e->number, p, nl);
		e->number[nl] = '\0';
		memcpy(e->user, p + nl + 1, ul);
		e->user[ul] = '\0';
		for (size_t i = 0; i < dl; i++)
			e->domain[i] = (char)(d[i] >= 'A' && d[i] <= 'Z' ?
					      d[i] + 32 : d[i]);
		e->domain[dl] = '\0';
		for (int i = 0; i < n; i++)
			if (strcmp(out[i].number, e->number) == 0) {
				snprintf(err, errlen, "%s pstn.dids: %s is "
					 "given twice", c->path, e->number);
				return -EINVAL;
			}
		n++;
	}
	return n;
}

int
cfg_domain_needs_client_cert(const struct cfg *c, const char *host,
			     size_t len)
{
	for (int i = 0; i < c->n_tls_client_cert_domains; i++)
		if (strlen(c->tls_client_cert_domains[i]) == len &&
		    strncasecmp(c->tls_client_cert_domains[i], host, len) == 0)
			return 1;
	return 0;
}

int
cfg_redis_split(const char *addr, char *host, size_t hostlen, int *port)
{
	if (addr[0] != '/')
		return cfg_addr_split(addr, host, hostlen, port, 6379);
	if (strlen(addr) >= hostlen || strlen(addr) >= CFG_UNIX_PATH_MAX)
		return -EINVAL;
	strcpy(host, addr);
	*port = 0;
	return 0;
}

int
cfg_addr_split(const char *addr, char *host, size_t hostlen, int *port,
	       int defport)
{
	const char *h = addr, *colon, *end;
	size_t n;
	long v = defport;

	if (*addr == '[') {
		end = strchr(addr, ']');
		if (end == NULL)
			return -EINVAL;
		h = addr + 1;
		n = end - h;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			return -EINVAL;
	} else {
		colon = strrchr(addr, ':');
		if (colon && strchr(addr, ':') != colon)
			colon = NULL;	/* bare IPv6 without port */
		n = colon ? (size_t)(colon - addr) : strlen(addr);
	}
	if (n == 0 || n >= hostlen)
		return -EINVAL;
	if (colon) {
		char *e;

		v = strtol(colon + 1, &e, 10);
		if (*e != '\0' || e == colon + 1 || v < 1 || v > 65535)
			return -EINVAL;
	}
	memcpy(host, h, n);
	host[n] = '\0';
	*port = (int)v;
	return 0;
}
