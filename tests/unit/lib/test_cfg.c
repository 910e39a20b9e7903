/*
 * test_cfg.c - configuration loading: defaults, instances from counts
 * and sections, "[edge]"/"[core]" defaults, one listen key per
 * transport, and every kind of error naming "file:line key" (or the
 * section) and stopping the load.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/cfg.h"
#include "lib/log.h"

static char cfg_dir[64];

static int
setup_dir(void **state)
{
	(void)state;
	snprintf(cfg_dir, sizeof(cfg_dir), "/tmp/sm-test-cfg-XXXXXX");
	return mkdtemp(cfg_dir) ? 0 : -1;
}

static int
remove_dir(void **state)
{
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/t.conf", cfg_dir);
	unlink(path);
	return rmdir(cfg_dir);
}

/* Writes text to the test file and loads it. */
static int
load_text(struct cfg *c, const char *text, char *err, size_t errlen,
	  char *path, size_t pathlen)
{
	FILE *f;

	snprintf(path, pathlen, "%s/t.conf", cfg_dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	err[0] = '\0';
	return cfg_load(c, path, err, errlen);
}

static void
test_cfg__defaults(void **state)
{
	static struct cfg c;
	char err[256];

	(void)state;
	assert_int_equal(cfg_load(&c, NULL, err, sizeof(err)), 0);
	assert_int_equal(c.n_edges, 1);
	assert_int_equal(c.n_cores, 2);
	assert_int_equal(c.edges[0].id, 1);
	assert_string_equal(c.edges[0].listen[ENV_UDP], "127.0.0.1:5060");
	assert_string_equal(c.edges[0].advertise, "127.0.0.1:5060");
	assert_string_equal(c.edges[0].ipc, "ipc:///tmp/sipmesh/edge-1");
	assert_int_equal(c.edges[0].max_msg, 65535);
	assert_false(c.edges[0].reuseport);
	assert_string_equal(c.cores[1].ipc, "ipc:///tmp/sipmesh/core-2");
	assert_false(c.cores[0].standby);
	assert_false(c.cores[1].standby);
	assert_int_equal(c.log_level, LOG_LVL_NOTICE);
	assert_int_equal(c.t1_ms, 500);
	assert_int_equal(c.link_heartbeat_ms, 500);
	assert_int_equal(c.link_dead_ms, 2000);
	assert_true(c.record_route);
	assert_int_equal(c.n_domains, 0);
	assert_true(cfg_domain_is_local(&c, "anything.org", 12));
	assert_null(cfg_edge_find(&c, 2));
	assert_non_null(cfg_core_find(&c, 2));
	assert_string_equal(c.redis_sentinels, "");
	assert_string_equal(c.redis_master, "sipmesh");
	/* No peer domain needs a client certificate unless listed. */
	assert_int_equal(c.n_tls_client_cert_domains, 0);
	assert_false(cfg_domain_needs_client_cert(&c, "b.test", 6));
}

/* [core N] standby: that core only; [core] standby: every core. */
static void
test_cfg__core_standby(void **state)
{
	static struct cfg c;
	char err[256], path[128];

	(void)state;
	assert_int_equal(load_text(&c, "[cluster]\ncores = 3\n[core 2]\n"
				   "standby = yes\n", err, sizeof(err), path,
				   sizeof(path)), 0);
	assert_int_equal(c.n_cores, 3);
	assert_false(c.cores[0].standby);
	assert_true(c.cores[1].standby);
	assert_false(c.cores[2].standby);
	assert_int_equal(load_text(&c, "[core]\nstandby = yes\n[core 1]\n"
				   "standby = no\n", err, sizeof(err), path,
				   sizeof(path)), 0);
	assert_false(c.cores[0].standby);
	assert_true(c.cores[1].standby);
	assert_int_equal(load_text(&c, "[core 1]\nstandby = maybe\n", err,
				   sizeof(err), path, sizeof(path)), -EINVAL);
}

/* [federation] tls_client_cert_domains: a list like the registrar's,
 * lower-cased, whole names only; too many is an error naming it. */
static void
test_cfg__tls_client_cert_domains(void **state)
{
	static struct cfg c;
	static const char text[] =
		"[registrar]\n"
		"domains = a.test\n"
		"[federation]\n"
		"tls_client_cert_domains = B.Test,c.test\td.test\n";
	char err[256], path[128], many[40 * 8 + 64];
	size_t n;

	(void)state;
	assert_int_equal(load_text(&c, text, err, sizeof(err), path,
				   sizeof(path)), 0);
	assert_int_equal(c.n_tls_client_cert_domains, 3);
	assert_string_equal(c.tls_client_cert_domains[0], "b.test");
	assert_true(cfg_domain_needs_client_cert(&c, "b.test", 6));
	assert_true(cfg_domain_needs_client_cert(&c, "B.TEST", 6));
	assert_true(cfg_domain_needs_client_cert(&c, "d.test", 6));
	assert_false(cfg_domain_needs_client_cert(&c, "a.test", 6));
	assert_false(cfg_domain_needs_client_cert(&c, "x.b.test", 8));
	assert_false(cfg_domain_needs_client_cert(&c, "b.tes", 5));
	/* The registrar's list is apart. */
	assert_int_equal(c.n_domains, 1);
	assert_false(cfg_domain_is_local(&c, "b.test", 6));

	n = (size_t)snprintf(many, sizeof(many), "[federation]\n"
			     "tls_client_cert_domains =");
	for (int i = 0; i <= CFG_MAX_DOMAINS; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, " d%d", i);
	snprintf(many + n, sizeof(many) - n, "\n");
	assert_int_equal(load_text(&c, many, err, sizeof(err), path,
				   sizeof(path)), -EINVAL);
	assert_non_null(strstr(err, "federation.tls_client_cert_domains: "
			       "too many or too long"));
}

static void
test_cfg__instances_sections_and_defaults(void **state)
{
	static struct cfg c;
	static const char text[] =
		"; comment\n"
		"[cluster]\n"
		"run_dir = /run/sm\n"
		"secret = s3cret\n"
		"edges = 2\n"
		"cores = 1\n"
		"[log]\n"
		"level = debug\n"
		"[registrar]\n"
		"domains = Example.com, b.org  c.net\n"
		"[edge]\n"
		"max_msg = 4096\n"
		"[edge 2]\n"
		"udp = [::1]:5070\n"
		"reuseport = yes\n"
		"[edge 5]\n"
		"udp = 127.0.0.1:5080\n"
		"max_msg = 2048\n"
		"[core 3]\n"
		"ipc = tcp://127.0.0.1:7000\n";
	char err[256], path[128];
	const struct cfg_edge *e;

	(void)state;
	assert_int_equal(load_text(&c, text, err, sizeof(err), path,
				   sizeof(path)), 0);
	assert_int_equal(c.n_edges, 3);
	assert_int_equal(c.n_cores, 2);
	assert_int_equal(c.log_level, LOG_LVL_DEBUG);
	e = cfg_edge_find(&c, 1);
	assert_non_null(e);
	assert_int_equal(e->max_msg, 4096);
	assert_string_equal(e->ipc, "ipc:///run/sm/edge-1");
	e = cfg_edge_find(&c, 2);
	assert_non_null(e);
	assert_string_equal(e->listen[ENV_UDP], "[::1]:5070");
	assert_string_equal(e->advertise, "[::1]:5070");
	assert_true(e->reuseport);
	assert_int_equal(e->max_msg, 4096);
	e = cfg_edge_find(&c, 5);
	assert_non_null(e);
	assert_int_equal(e->max_msg, 2048);	/* instance beats [edge] */
	assert_string_equal(cfg_core_find(&c, 1)->ipc, "ipc:///run/sm/core-1");
	assert_string_equal(cfg_core_find(&c, 3)->ipc, "tcp://127.0.0.1:7000");
	assert_null(cfg_core_find(&c, 2));
	assert_int_equal(c.n_domains, 3);
	assert_true(cfg_domain_is_local(&c, "EXAMPLE.COM", 11));
	assert_true(cfg_domain_is_local(&c, "c.net", 5));
	assert_false(cfg_domain_is_local(&c, "c.ne", 4));
	assert_false(cfg_domain_is_local(&c, "d.net", 5));
}

struct cfg_err_case {
	const char *text;
	const char *want;	/* expected after "<path>" in the error */
};

/* 110 characters: longer than a unix socket path may be */
#define LONG_PATH "0123456789012345678901234567890123456789012345678901234" \
		  "5678901234567890123456789012345678901234567890123456789"

static const struct cfg_err_case cfg_err_cases[] = {
	{ "[proxy]\nt1_ms = abc\n", ":2 t1_ms: not an integer" },
	{ "[proxy]\n\nt1_ms = 5\n", ":3 t1_ms: out of range" },
	{ "[proxy]\nt1_ms = 99999999999999999999\n", ":2 t1_ms: not an integer" },
	{ "[proxy]\nt1_ms = 10x\n", ":2 t1_ms: not an integer" },
	{ "[proxy]\nbogus = 1\n", ":2 bogus: unknown key" },
	{ "[nosuch]\nkey = 1\n", ":2 key: unknown key" },
	{ "[edge 1]\nreuseport = maybe\n", ":2 reuseport: not a boolean (yes/no)" },
	{ "[edge]\nmax_msg = 100\n", ":2 max_msg: out of range" },
	{ "[core]\nudp = 1.2.3.4\n", ":2 udp: unknown key" },
	{ "[log]\nlevel = loud\n",
	  ":2 level: not one of err, warn, notice, info, debug" },
	{ "[edge 99]\nudp = 1.2.3.4\n", ":2 [edge 99]: bad instance number" },
	{ "[core 0]\nipc = x\n", ":2 [core 0]: bad instance number" },
	{ "[core x]\nipc = x\n", ":2 [core x]: bad instance number" },
	{ "[cluster]\nedges = 33\n", ":2 edges: out of range" },
	{ "[cluster\nedges = 1\n", ":1: syntax error or value too long" },
	{ "[cluster]\nedges\n", ":2: syntax error or value too long" },
	{ "[edge 1]\nudp = nohost:port\n", " [edge 1] udp/advertise: not host:port" },
	{ "[edge 1]\nadvertise = [::1\n", " [edge 1] udp/advertise: not host:port" },
	{ "[edge 1]\ntcp = 1.2.3.4:x\n", " [edge 1] tcp: not host:port" },
	{ "[edge]\nWSS = [::1\n", " [edge 1] wss: not host:port" },
	{ "[edge]\nsctp = 1.2.3.4\n", ":2 sctp: unknown key" },
	{ "[registrar]\nmin_expires = 600\nmax_expires = 60\n",
	  " registrar.min_expires: above max_expires" },
	{ "[redis]\nsentinels = 127.0.0.1:26379,\n",
	  " redis.sentinels: not host:port,..." },
	{ "[redis]\nsentinels = a:1,b:x\n", " redis.sentinels: not host:port,..." },
	/* a live idle peer may be silent for two heartbeats */
	{ "[cluster]\nlink_heartbeat_ms = 500\nlink_dead_ms = 1499\n",
	  " cluster.link_dead_ms: below 3 times link_heartbeat_ms (a live "
	  "peer may be silent for two)" },
	{ "[redis]\nshards = b=127.0.0.1:6380\n",
	  " redis.shards: set [redis] address or sentinels first (shard "
	  "\"main\")" },
	{ "[redis]\naddress = a:1\nshards = b=a:2 B=a:3\n",
	  " redis.shards: a name given twice" },
	{ "[redis]\naddress = a:1\nshards = main=a:2\n",
	  " redis.shards: \"main\" is [redis] address/sentinels" },
	{ "[redis]\naddress = a:1\nshards = a:2\n",
	  " redis.shards: not name=address" },
	{ "[redis]\naddress = a:1\nshards = b.c=a:2\n",
	  " redis.shards: a name is [a-z0-9_-]" },
	{ "[redis]\naddress = a:1\nshards = b=a:x\n",
	  " redis.shards: not name=host:port or name=/unix/socket" },
	{ "[redis]\naddress = /run/" LONG_PATH "/redis.sock\n",
	  " redis.address: neither host:port nor the absolute path of a "
	  "unix socket" },
	{ "[redis]\naddress = a:1\nshards = b=m@\n",
	  " redis.shards: not name=master@host:port,..." },
	{ "[redis]\naddress = a:1\nshards = b=m@s:1,\n",
	  " redis.shards: not name=master@host:port,..." },
	{ "[redis]\naddress = a:1\nshards = a=h:1 b=h:2 c=h:3 d=h:4 e=h:5 "
	  "f=h:6 g=h:7 h=h:8 i=h:9 j=h:10 k=h:11 l=h:12 m=h:13 n=h:14 o=h:15 "
	  "p=h:16\n", " redis.shards: too many shards" },
	/* another host's key would differ: envelopes could not verify */
	{ "[core 2]\nipc = tcp://127.0.0.2:7000\n",
	  ": ipc tcp://127.0.0.2:7000 reaches other hosts: set [cluster] "
	  "secret (the same on every host)" },
	/* metrics: an IP address and a port, or nothing */
	{ "[edge 1]\nmetrics = localhost:9401\n", " [edge 1] metrics: not ip:port" },
	{ "[edge 1]\nmetrics = 127.0.0.1\n", " [edge 1] metrics: not ip:port" },
	{ "[core 2]\nmetrics = 127.0.0.1:0\n", " [core 2] metrics: not ip:port" },
	{ "[core]\nmetrics = [::1]:70000\n", " [core 1] metrics: not ip:port" },
	{ "[rtpctl]\nmetrics = 127.0.0.1:9601 x:1\n",
	  " rtpctl.metrics: \"x:1\" is not ip:port" },
	{ "[rtpctl]\nipc = ipc:///tmp/r1 tcp://127.0.0.2:7001\n",
	  " [rtpctl] ipc: rtpctl serves the cores of its own host (ipc://) "
	  "only" },
};

static void
test_cfg__errors_name_file_line_and_key(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cfg_err_cases) / sizeof(*cfg_err_cases); i++) {
		static struct cfg c;
		char err[256], path[128], want[512];

		assert_int_equal(load_text(&c, cfg_err_cases[i].text, err,
					   sizeof(err), path, sizeof(path)),
				 -EINVAL);
		snprintf(want, sizeof(want), "%s%s", path, cfg_err_cases[i].want);
		if (strcmp(err, want) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, want);
	}
}

/* [redis] shards: addresses and master names at sentinels, in order;
 * none by default (one Redis, as before). */
static void
test_cfg__redis_shards(void **state)
{
	static struct cfg c;
	char err[256], path[128];

	(void)state;
	assert_int_equal(cfg_load(&c, NULL, err, sizeof(err)), 0);
	assert_int_equal(c.n_redis_shards, 0);
	assert_int_equal(load_text(&c, "[redis]\naddress = 10.0.0.1:6379\n"
				   "shards = B=10.0.0.2:6380  c-2=sm-c@10.0.0.5,"
				   "10.0.0.6:26380\n", err, sizeof(err), path,
				   sizeof(path)), 0);
	assert_int_equal(c.n_redis_shards, 2);
	assert_string_equal(c.redis_shards[0].name, "b");
	assert_string_equal(c.redis_shards[0].addr, "10.0.0.2:6380");
	assert_string_equal(c.redis_shards[0].sentinels, "");
	assert_string_equal(c.redis_shards[1].name, "c-2");
	assert_string_equal(c.redis_shards[1].addr, "");
	assert_string_equal(c.redis_shards[1].master, "sm-c");
	assert_string_equal(c.redis_shards[1].sentinels,
			    "10.0.0.5,10.0.0.6:26380");
	/* a Redis on the same host by its unix socket */
	assert_int_equal(load_text(&c, "[redis]\naddress = /run/r/a.sock\n"
				   "shards = b=/run/r/b.sock\n", err,
				   sizeof(err), path, sizeof(path)), 0);
	assert_string_equal(c.redis, "/run/r/a.sock");
	assert_string_equal(c.redis_shards[0].addr, "/run/r/b.sock");
}

/* Every transport of the table is an [edge] key (any case), on
 * loopback at its default port; an address without a port gets that
 * port, and Via/Record-Route use the advertised host with it. */
/* Metrics addresses per instance; rtpctl N takes the N-th of a list. */
static void
test_cfg__metrics_addresses(void **state)
{
	static struct cfg c;
	char err[256], path[128], a[CFG_ADDR_LEN];

	(void)state;
	assert_int_equal(load_text(&c, "[edge 1]\nmetrics = 127.0.0.1:9401\n"
				   "[core 2]\nmetrics = [::1]:9502\n"
				   "[rtpctl]\nmetrics = 127.0.0.1:9601, "
				   "127.0.0.1:9602\n", err, sizeof(err), path,
				   sizeof(path)), 0);
	assert_string_equal(cfg_edge_find(&c, 1)->metrics, "127.0.0.1:9401");
	assert_string_equal(cfg_core_find(&c, 1)->metrics, "");
	assert_string_equal(cfg_core_find(&c, 2)->metrics, "[::1]:9502");
	assert_int_equal(cfg_rtpctl_metrics(&c, 1, a, sizeof(a)), 0);
	assert_string_equal(a, "127.0.0.1:9601");
	assert_int_equal(cfg_rtpctl_metrics(&c, 2, a, sizeof(a)), 0);
	assert_string_equal(a, "127.0.0.1:9602");
	assert_int_equal(cfg_rtpctl_metrics(&c, 3, a, sizeof(a)), -ENOENT);
	/* off by default */
	assert_int_equal(cfg_load(&c, NULL, err, sizeof(err)), 0);
	assert_string_equal(cfg_edge_find(&c, 1)->metrics, "");
	assert_int_equal(cfg_rtpctl_metrics(&c, 1, a, sizeof(a)), -ENOENT);
}

static void
test_cfg__listen_key_per_transport(void **state)
{
	static struct cfg c;
	static const struct {
		int tp, rc;
		const char *host;
		int port;
		const char *sent_by;
	} want[] = {
		{ ENV_UDP, 0, "127.0.0.1", 5060, "sip.example:5070" },
		{ ENV_TCP, -ENOENT, NULL, 0, NULL },
		{ ENV_TLS, 0, "127.0.0.1", 5061, "sip.example:5061" },
		{ ENV_WS, 0, "127.0.0.2", 8080, "sip.example:8080" },
		{ ENV_WSS, 0, "::1", 9443, "sip.example:9443" },
		{ ENV_TP_NONE, -ENOENT, NULL, 0, NULL },
		{ ENV_TP_END, -ENOENT, NULL, 0, NULL },
	};
	char err[256], path[128], host[64], sb[80];
	int port;

	(void)state;
	assert_int_equal(cfg_load(&c, NULL, err, sizeof(err)), 0);
	for (int t = ENV_UDP; t < ENV_TP_END; t++) {
		assert_int_equal(cfg_edge_listen(&c.edges[0], t, host,
						 sizeof(host), &port), 0);
		assert_string_equal(host, "127.0.0.1");
		assert_int_equal(port, env_transport_port(t));
	}
	assert_int_equal(load_text(&c, "[edge]\nadvertise = sip.example:5070\n"
				   "TCP =\nws = 127.0.0.2\nWsS = [::1]:9443\n",
				   err, sizeof(err), path, sizeof(path)), 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++) {
		int rc = cfg_edge_listen(&c.edges[0], want[i].tp, host,
					 sizeof(host), &port);

		assert_int_equal(rc, want[i].rc);
		assert_int_equal(cfg_edge_sent_by(&c.edges[0], want[i].tp, sb,
						  sizeof(sb)), want[i].rc);
		if (rc != 0)
			continue;
		assert_string_equal(host, want[i].host);
		assert_int_equal(port, want[i].port);
		assert_string_equal(sb, want[i].sent_by);
	}
}

static void
test_cfg__long_value_is_an_error_not_a_truncation(void **state)
{
	static struct cfg c;
	char text[2048], err[256], path[128], want[256];
	int n = snprintf(text, sizeof(text), "[cluster]\nrun_dir = ");

	(void)state;
	memset(text + n, 'a', 300);
	strcpy(text + n + 300, "\n");
	assert_int_equal(load_text(&c, text, err, sizeof(err), path,
				   sizeof(path)), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: syntax error or value too long",
		 path);
	assert_string_equal(err, want);
}

/* Lines around inih's 200-byte line buffer: later line numbers stay
 * right whether or not the long line fits. */
static void
test_cfg__line_numbers_survive_long_lines(void **state)
{
	static struct cfg c;
	char text[2048], err[256], path[128], want[256];

	(void)state;
	for (int len = 180; len < 220; len++) {
		int n = snprintf(text, sizeof(text), "[cluster]\n; ");

		memset(text + n, 'x', (size_t)len);
		strcpy(text + n + len, "\n[proxy]\nt1_ms = x\n");
		assert_int_equal(load_text(&c, text, err, sizeof(err), path,
					   sizeof(path)), -EINVAL);
		if (len + 2 < 200)	/* the comment line fits */
			snprintf(want, sizeof(want), "%s:4 t1_ms: not an integer",
				 path);
		else
			snprintf(want, sizeof(want), "%s:2: syntax error or "
				 "value too long", path);
		if (strcmp(err, want) != 0)
			fail_msg("len %d: got \"%s\"", len, err);
	}
}

/* [pstn]: gateways are URIs of hosts and need digest authentication
 * (else anyone calls the phone network as a user); numbers must be a
 * regex, the prefix dialable; DIDs numbers of users of local domains. */
static void
test_cfg__pstn(void **state)
{
	static struct cfg c;
	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "[pstn]\ngateways = sip:gw.example\n", "needs [registrar] auth" },
		{ "[registrar]\nauth = yes\n[pstn]\ngateways = gw.example\n",
		  "\"gw.example\" is not a sip: or sips: URI" },
		{ "[registrar]\nauth = yes\n[pstn]\n"
		  "gateways = sip:1234@gw.example\n", "without a user" },
		{ "[registrar]\nauth = yes\n[pstn]\ngateways = sip:a sip:b "
		  "sip:c sip:d sip:e sip:f sip:g sip:h sip:i\n", "over 8" },
		{ "[registrar]\nauth = yes\n[pstn]\ngateways = sip:gw\n"
		  "numbers = ^[0-9\n", "pstn.numbers: not a POSIX" },
		{ "[registrar]\nauth = yes\n[pstn]\ngateways = sip:gw\n"
		  "prefix = 0a\n", "pstn.prefix: digits" },
		{ "[registrar]\nauth = yes\n[pstn]\ngateways = sip:gw\n"
		  "prefix = #31#\n", "pstn.prefix: digits" },
		{ "[registrar]\nauth = yes\n[pstn]\ngateways = sip:gw\n"
		  "username = trunk\n", "both or neither" },
		{ "[registrar]\nauth = yes\n[pstn]\ngateways = sip:gw\n"
		  "username = a\"b\npassword = x\n", "no quote" },
		/* DIDs: number=user@local domain, each number once */
		{ "[registrar]\ndomains = a.test\n[pstn]\n"
		  "dids = +49301=al@b.test\n", "\"+49301=al@b.test\" is not" },
		{ "[pstn]\ndids = 49x=al@a.test\n", "\"49x=al@a.test\"" },
		{ "[pstn]\ndids = +49301=@a.test\n", "is not" },
		{ "[pstn]\ndids = +49301=al\n", "is not" },
		{ "[pstn]\ndids = +49301=al@\n", "is not" },
		{ "[pstn]\ndids = +49301=al@a.test;x\n", "is not" },
		{ "[pstn]\ndids = =al@a.test\n", "is not" },
		{ "[pstn]\ndids = 123456789012345678901234567890123=al@a.test\n",
		  "is not" },
		{ "[pstn]\ndids = +49301=al@a.test 2=bo@a.test +49301=bo@a.test\n",
		  "+49301 is given twice" },
		/* registering at the carrier: its user, at its gateways */
		{ "[registrar]\nauth = yes\n[pstn]\ngateways = sip:gw\n"
		  "register = yes\n", "pstn.register: registers username" },
		{ "[pstn]\nusername = t\npassword = p\nregister = yes\n",
		  "pstn.register: no pstn.gateways" },
		{ "[registrar]\nauth = yes\n[pstn]\ngateways = sip:gw\n"
		  "username = t\npassword = p\nregister = yes\n"
		  "register_expires = 30\n", "register_expires" },
		{ "[registrar]\nauth = yes\n[pstn]\ngateways = sip:gw\n"
		  "username = a b\npassword = p\nregister = yes\n",
		  "pstn.username: with register = yes" },
		{ "[pstn]\nnumbers = ^[0-9\ndids = 1=al@a.test\n",
		  "pstn.numbers: not a POSIX" },
	};
	struct cfg_did d[4];
	char err[256], path[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (load_text(&c, bad[i].text, err, sizeof(err), path,
			      sizeof(path)) != -EINVAL)
			fail_msg("%s: accepted", bad[i].text);
		if (strstr(err, bad[i].why) == NULL)
			fail_msg("%s: got \"%s\"", bad[i].text, err);
	}
	assert_int_equal(load_text(&c, "[registrar]\nauth = yes\n[pstn]\n"
				   "gateways = sip:10.0.0.1:5080 "
				   "sips:gw.example;transport=tls\nstrip = 1\n"
				   "prefix = 00\n", err, sizeof(err), path,
				   sizeof(path)), 0);
	assert_string_equal(c.pstn_numbers, "^\\+?[0-9]{3,15}$");
	assert_int_equal(c.pstn_strip, 1);
	assert_string_equal(c.pstn_prefix, "00");
	/* no gateway: nothing is checked, open mode is fine */
	assert_int_equal(load_text(&c, "[pstn]\nnumbers = ^[0-9\n", err,
				   sizeof(err), path, sizeof(path)), 0);
	/* DIDs need no gateway: a carrier's calls for them come in */
	assert_int_equal(load_text(&c, "[registrar]\ndomains = a.test\n"
				   "[pstn]\ndids = +4930123=al.x@A.Test "
				   "\t*31=bo_b@a.test\n", err, sizeof(err),
				   path, sizeof(path)), 0);
	assert_int_equal(cfg_pstn_dids(&c, d, 4, err, sizeof(err)), 2);
	assert_string_equal(d[0].number, "+4930123");
	assert_string_equal(d[0].user, "al.x");
	assert_string_equal(d[0].domain, "a.test");
	assert_string_equal(d[1].number, "*31");
	assert_string_equal(d[1].user, "bo_b");
	assert_int_equal(cfg_pstn_dids(&c, d, 1, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "over 1"));
}

static void
test_cfg__missing_file(void **state)
{
	static struct cfg c;
	char err[256];

	(void)state;
	assert_int_equal(cfg_load(&c, "/nonexistent/sipmesh.conf", err,
				  sizeof(err)), -EINVAL);
	assert_string_equal(err, "/nonexistent/sipmesh.conf: cannot open");
}

static void
test_cfg__addr_split(void **state)
{
	static const struct {
		const char *in; int rc; const char *host; int port;
	} t[] = {
		{ "127.0.0.1:5060", 0, "127.0.0.1", 5060 },
		{ "example.com", 0, "example.com", 5060 },
		{ "[::1]:5070", 0, "::1", 5070 },
		{ "[::1]", 0, "::1", 5060 },
		{ "::1", 0, "::1", 5060 },
		{ "h:65535", 0, "h", 65535 },
		{ "h:65536", -EINVAL, NULL, 0 },
		{ "h:0", -EINVAL, NULL, 0 },
		{ "h:", -EINVAL, NULL, 0 },
		{ "h:5x", -EINVAL, NULL, 0 },
		{ ":5060", -EINVAL, NULL, 0 },
		{ "", -EINVAL, NULL, 0 },
		{ "[::1", -EINVAL, NULL, 0 },
		{ "[::1]x", -EINVAL, NULL, 0 },
		{ "[]:5", -EINVAL, NULL, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++) {
		char host[64];
		int port = -1;

		if (cfg_addr_split(t[i].in, host, sizeof(host), &port, 5060) !=
		    t[i].rc)
			fail_msg("\"%s\": wrong result", t[i].in);
		if (t[i].rc == 0) {
			assert_string_equal(host, t[i].host);
			assert_int_equal(port, t[i].port);
		}
	}
}

/* Starts with run_dir set to dir; returns cfg_start's result. */
static int
start_with_run_dir(const char *dir)
{
	static struct cfg c;
	char text[256], path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/t.conf", cfg_dir);
	snprintf(text, sizeof(text), "[cluster]\nrun_dir = %s\n", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return cfg_start(&c, "test", path, "err");
}

static void
test_cfg__run_dir_is_private_and_a_planted_one_is_refused(void **state)
{
	char dir[128], link[128];
	struct stat st;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/run", cfg_dir);
	snprintf(link, sizeof(link), "%s/link", cfg_dir);
	/* Made by us: 0700. */
	assert_int_equal(start_with_run_dir(dir), 0);
	assert_int_equal(lstat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	/* Ours and 0755 (systemd's RuntimeDirectory default): used. */
	assert_int_equal(chmod(dir, 0755), 0);
	assert_int_equal(start_with_run_dir(dir), 0);
	/* Writable by others, as anyone could have made it in /tmp. */
	assert_int_equal(chmod(dir, 01777), 0);
	assert_int_equal(start_with_run_dir(dir), -EINVAL);
	assert_int_equal(chmod(dir, 0770), 0);
	assert_int_equal(start_with_run_dir(dir), -EINVAL);
	/* A symlink to a good directory is still a planted path. */
	assert_int_equal(chmod(dir, 0700), 0);
	assert_int_equal(symlink(dir, link), 0);
	assert_int_equal(start_with_run_dir(link), -EINVAL);
	/* Another user's directory (as root, we can make one). */
	if (geteuid() == 0) {
		assert_int_equal(chown(dir, 65534, 65534), 0);
		assert_int_equal(start_with_run_dir(dir), -EINVAL);
	}
	unlink(link);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cfg__defaults),
		cmocka_unit_test(test_cfg__core_standby),
		cmocka_unit_test(test_cfg__instances_sections_and_defaults),
		cmocka_unit_test(test_cfg__tls_client_cert_domains),
		cmocka_unit_test(test_cfg__errors_name_file_line_and_key),
		cmocka_unit_test(test_cfg__redis_shards),
		cmocka_unit_test(test_cfg__listen_key_per_transport),
		cmocka_unit_test(test_cfg__metrics_addresses),
		cmocka_unit_test(test_cfg__long_value_is_an_error_not_a_truncation),
		cmocka_unit_test(test_cfg__line_numbers_survive_long_lines),
		cmocka_unit_test(test_cfg__pstn),
		cmocka_unit_test(test_cfg__missing_file),
		cmocka_unit_test(test_cfg__addr_split),
		cmocka_unit_test(test_cfg__run_dir_is_private_and_a_planted_one_is_refused),
	};

	return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
