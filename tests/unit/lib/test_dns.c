/*
 * test_dns.c - the RFC 3263 locator (lib/dns.c) against a real dnsmasq
 * on a free loopback port: the NAPTR -> SRV -> A chain by order and
 * preference, a domain with SRV only, the bare A record last, an
 * explicit port or transport skipping steps, numeric hosts, sips
 * keeping TLS, SRV priority and weights, NXDOMAIN, a DNS server that
 * never answers, the cache (a stopped dnsmasq still answers what is
 * cached; negative answers too; the size bound evicts), cancel,
 * dns_free with locates pending, and dead targets put last (for their
 * time, in a bounded table).  A hostile DNS server (a UDP socket
 * on the test's loop answering crafted bytes) shows that compression
 * loops, lying counts and lengths are errors, not crashes, that a flood
 * of records stays bounded, that the SOA's minimum sets the negative
 * TTL within its bounds, and that a positive answer is kept for its
 * TTL, at most ttl_max, and asked again after it.  No fixed sleeps:
 * the loop runs until a condition holds or a deadline passes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/dns.h"
#include "lib/env.h"
#include "tests/unit/dns_test.h"
#include "tests/unit/loop_test.h"

static const char *const records[] = {
	/* a.test: NAPTR to all three transports (and two we skip). */
	"naptr-record=a.test,20,10,s,SIPS+D2T,,_sips._tcp.a.test",
	"naptr-record=a.test,10,50,s,SIP+D2T,,_sip._tcp.a.test",
	"naptr-record=a.test,10,10,s,SIP+D2U,,_sip._udp.a.test",
	"naptr-record=a.test,5,10,s,SIP+D2W,,_sip._ws.a.test",
	"naptr-record=a.test,5,5,u,E2U+sip,!^.*$!sip:x@y!",
	"srv-host=_sip._udp.a.test,u.a.test,5070,0,0",
	"srv-host=_sip._tcp.a.test,t.a.test,5071,0,0",
	"srv-host=_sips._tcp.a.test,s.a.test,5072,0,0",
	"srv-host=_sip._ws.a.test,ws.a.test,80,0,0",
	"host-record=u.a.test,127.0.0.11,::11",
	"host-record=t.a.test,127.0.0.12",
	"host-record=s.a.test,127.0.0.13",
	"host-record=ws.a.test,127.0.0.14",
	"host-record=a.test,127.0.0.10",
	/* b.test: SRV only. */
	"srv-host=_sip._tcp.b.test,t.b.test,5081,0,0",
	"srv-host=_sips._tcp.b.test,s.b.test,5082,0,0",
	"host-record=t.b.test,127.0.0.21",
	"host-record=s.b.test,127.0.0.22",
	/* c.test: an A record and nothing else. */
	"host-record=c.test,127.0.0.31",
	/* w.test: two priorities, weights 100/0 then 50/50. */
	"srv-host=_sip._udp.w.test,wa.w.test,5001,1,100",
	"srv-host=_sip._udp.w.test,wb.w.test,5002,1,0",
	"srv-host=_sip._udp.w.test,wc.w.test,5003,2,50",
	"srv-host=_sip._udp.w.test,wd.w.test,5004,2,50",
	"host-record=wa.w.test,127.0.0.41",
	"host-record=wb.w.test,127.0.0.42",
	"host-record=wc.w.test,127.0.0.43",
	"host-record=wd.w.test,127.0.0.44",
	/* The cache bound. */
	"host-record=h1.test,127.0.0.51",
	"host-record=h2.test,127.0.0.52",
	"host-record=h3.test,127.0.0.53",
	NULL
};

struct res {
	int done;
	int err;
	int n;
	struct dns_target t[DNS_TARGETS_MAX];
};

struct fix {
	uv_loop_t loop;
	struct dnsm m;
	struct dns *d;
	struct dns_config cfg;
	char servers[64];
};

static void
res_cb(void *arg, int err, const struct dns_target *t, int n)
{
	struct res *r = arg;

	r->done++;
	r->err = err;
	r->n = n;
	if (n > 0)
		memcpy(r->t, t, (size_t)n * sizeof(*t));
}

static int
res_done(void *ctx, void *arg)
{
	(void)ctx;
	return ((struct res *)arg)->done > 0;
}

static int
never(void *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	return 0;
}

static int
fix_setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	dnsm_start(&f->m, records);
	f->cfg.servers = dnsm_servers(&f->m, f->servers, sizeof(f->servers));
	f->cfg.timeout_ms = 300;
	f->cfg.tries = 1;
	*state = f;
	return 0;
}

/* The resolver with f->cfg as the test left it. */
static struct dns *
fix_dns(struct fix *f)
{
	assert_int_equal(dns_new(&f->d, &f->loop, &f->cfg), 0);
	return f->d;
}

static int
fix_teardown(void **state)
{
	struct fix *f = *state;

	int rc;

	dns_free(f->d);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	rc = uv_loop_close(&f->loop);
	dnsm_stop(&f->m);	/* before any assert can end the teardown */
	free(f);
	/* Every handle closed: nothing of the resolver is left behind. */
	assert_int_equal(rc, 0);
	return 0;
}

/* Locates and waits for the answer; the callback must not have run
 * inside dns_locate. */
static void
locate(struct fix *f, const char *host, int transport, int port, int sips,
       struct res *r)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(dns_locate(f->d, host, strlen(host), transport, port,
				    sips, res_cb, r, NULL), 0);
	assert_int_equal(r->done, 0);
	assert_true(loop_run_until(&f->loop, res_done, f, r, 5000));
	assert_int_equal(r->done, 1);
}

static void
assert_target(const struct dns_target *t, int transport, const char *ip,
	      int port)
{
	char buf[INET6_ADDRSTRLEN];

	assert_string_equal(env_transport_name(t->transport),
			    env_transport_name(transport));
	assert_string_equal(env_sa_ip(&t->addr, buf, sizeof(buf)), ip);
	assert_int_equal(env_sa_port(&t->addr), port);
}

static void
test_dns__naptr_srv_a_chain_by_order_and_preference(void **state)
{
	struct fix *f = *state;
	struct res r;

	fix_dns(f);
	locate(f, "A.Test", ENV_TP_NONE, 0, 0, &r);
	assert_int_equal(r.err, 0);
	/* Order 10 pref 10 (UDP), 10/50 (TCP), then 20 (TLS); D2W and a
	 * non-SIP NAPTR, though first by order, are skipped. */
	assert_int_equal(r.n, 4);
	assert_target(&r.t[0], ENV_UDP, "127.0.0.11", 5070);
	assert_target(&r.t[1], ENV_UDP, "::11", 5070);
	assert_target(&r.t[2], ENV_TCP, "127.0.0.12", 5071);
	assert_target(&r.t[3], ENV_TLS, "127.0.0.13", 5072);
	assert_int_equal(dnsm_queries(&f->m, "SRV", "_sip._ws.a.test"), 0);
	assert_int_equal(dnsm_queries(&f->m, "A", "a.test"), 0);
}

static void
test_dns__sips_keeps_tls_only(void **state)
{
	struct fix *f = *state;
	struct res r;

	fix_dns(f);
	locate(f, "a.test", ENV_TP_NONE, 0, 1, &r);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 1);
	assert_target(&r.t[0], ENV_TLS, "127.0.0.13", 5072);
	/* With no SRV either, the host's A record on 5061. */
	locate(f, "c.test", ENV_TP_NONE, 0, 1, &r);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 1);
	assert_target(&r.t[0], ENV_TLS, "127.0.0.31", 5061);
	/* sips over a plain transport is refused at once. */
	assert_int_equal(dns_locate(f->d, "a.test", 6, ENV_UDP, 0, 1, res_cb,
				    &r, NULL), -EINVAL);
}

static void
test_dns__srv_only_domain(void **state)
{
	struct fix *f = *state;
	struct res r;

	fix_dns(f);
	locate(f, "b.test", ENV_TP_NONE, 0, 0, &r);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 2);
	assert_target(&r.t[0], ENV_TCP, "127.0.0.21", 5081);
	assert_target(&r.t[1], ENV_TLS, "127.0.0.22", 5082);
	assert_int_equal(dnsm_queries(&f->m, "NAPTR", "b.test"), 1);
	assert_int_equal(dnsm_queries(&f->m, "SRV", "_sip._udp.b.test"), 1);
}

static void
test_dns__bare_a_record_last_resort(void **state)
{
	struct fix *f = *state;
	struct res r;

	fix_dns(f);
	locate(f, "c.test", ENV_TP_NONE, 0, 0, &r);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 1);
	assert_target(&r.t[0], ENV_UDP, "127.0.0.31", 5060);
	/* With a transport: that one, on its default port. */
	locate(f, "c.test", ENV_TCP, 0, 0, &r);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 1);
	assert_target(&r.t[0], ENV_TCP, "127.0.0.31", 5060);
}

static void
test_dns__explicit_port_skips_naptr_and_srv(void **state)
{
	struct fix *f = *state;
	struct res r;

	fix_dns(f);
	locate(f, "a.test", ENV_TP_NONE, 5099, 0, &r);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 1);
	assert_target(&r.t[0], ENV_UDP, "127.0.0.10", 5099);
	locate(f, "a.test", ENV_TCP, 5098, 0, &r);
	assert_int_equal(r.n, 1);
	assert_target(&r.t[0], ENV_TCP, "127.0.0.10", 5098);
	assert_int_equal(dnsm_queries(&f->m, "NAPTR", "a.test"), 0);
	assert_int_equal(dnsm_queries(&f->m, "SRV", "_sip._udp.a.test"), 0);
}

static void
test_dns__transport_skips_naptr(void **state)
{
	struct fix *f = *state;
	struct res r;

	fix_dns(f);
	locate(f, "a.test", ENV_TCP, 0, 0, &r);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 1);
	assert_target(&r.t[0], ENV_TCP, "127.0.0.12", 5071);
	assert_int_equal(dnsm_queries(&f->m, "NAPTR", "a.test"), 0);
	assert_int_equal(dnsm_queries(&f->m, "SRV", "_sip._udp.a.test"), 0);
	/* A transport an edge cannot dial is refused. */
	assert_int_equal(dns_locate(f->d, "a.test", 6, ENV_WS, 0, 0, res_cb,
				    &r, NULL), -EINVAL);
}

static void
test_dns__numeric_host_is_the_target(void **state)
{
	struct fix *f = *state;
	struct res r;

	fix_dns(f);
	locate(f, "127.0.0.9", ENV_TP_NONE, 0, 0, &r);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 1);
	assert_target(&r.t[0], ENV_UDP, "127.0.0.9", 5060);
	locate(f, "[::1]", ENV_TP_NONE, 0, 1, &r);
	assert_int_equal(r.n, 1);
	assert_target(&r.t[0], ENV_TLS, "::1", 5061);
	locate(f, "10.1.2.3", ENV_TCP, 5080, 0, &r);
	assert_target(&r.t[0], ENV_TCP, "10.1.2.3", 5080);
	assert_int_equal(dns_queries_sent(f->d), 0);
}

static void
test_dns__hostile_host_refused(void **state)
{
	static const char *const bad[] = {
		"", ".", "a..test", ".a.test", "a test", "a/test", "a\ntest",
		"[1.2.3]", "[zz::1]", "a.test:5060", "x@a.test",
	};
	struct fix *f = *state;
	char long_name[300];
	struct res r = { 0 };

	fix_dns(f);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(dns_locate(f->d, bad[i], strlen(bad[i]),
					    ENV_TP_NONE, 0, 0, res_cb, &r,
					    NULL), -EINVAL);
	memset(long_name, 'a', sizeof(long_name));
	assert_int_equal(dns_locate(f->d, long_name, sizeof(long_name),
				    ENV_TP_NONE, 0, 0, res_cb, &r, NULL),
			 -EINVAL);
	assert_int_equal(dns_locate(f->d, "a.test", 6, ENV_TP_NONE, 70000, 0,
				    res_cb, &r, NULL), -EINVAL);
	assert_int_equal(r.done, 0);
	assert_int_equal(dns_queries_sent(f->d), 0);
}

/* 200 locates at once: one query per name, and the order RFC 2782
 * asks for: priority first, then weight 100 nearly always ahead of
 * weight 0, and 50/50 about even. */
static void
test_dns__srv_priority_then_weight(void **state)
{
	enum { N = 200 };
	struct fix *f = *state;
	struct res *r = calloc(N, sizeof(*r));
	int wa_first = 0, wc_first = 0;

	assert_non_null(r);
	fix_dns(f);
	for (int i = 0; i < N; i++)
		assert_int_equal(dns_locate(f->d, "w.test", 6, ENV_TP_NONE, 0,
					    0, res_cb, &r[i], NULL), 0);
	assert_true(loop_run_until(&f->loop, res_done, f, &r[N - 1], 5000));
	for (int i = 0; i < N; i++) {
		char ip[2][INET6_ADDRSTRLEN];

		assert_int_equal(r[i].done, 1);
		assert_int_equal(r[i].err, 0);
		assert_int_equal(r[i].n, 4);
		env_sa_ip(&r[i].t[0].addr, ip[0], sizeof(ip[0]));
		env_sa_ip(&r[i].t[2].addr, ip[1], sizeof(ip[1]));
		wa_first += strcmp(ip[0], "127.0.0.41") == 0;
		wc_first += strcmp(ip[1], "127.0.0.43") == 0;
		/* Priority 2 never ahead of priority 1. */
		assert_true(env_sa_port(&r[i].t[0].addr) <= 5002);
		assert_true(env_sa_port(&r[i].t[1].addr) <= 5002);
		assert_true(env_sa_port(&r[i].t[2].addr) >= 5003);
		assert_true(env_sa_port(&r[i].t[3].addr) >= 5003);
	}
	/* P(weight 0 first) = 1/101 per locate. */
	assert_in_range(wa_first, N - 12, N);
	assert_in_range(wc_first, N / 4, 3 * N / 4);
	assert_int_equal(dnsm_queries(&f->m, "NAPTR", "w.test"), 1);
	assert_int_equal(dnsm_queries(&f->m, "SRV", "_sip._udp.w.test"), 1);
	assert_int_equal(dnsm_queries(&f->m, "A", "wa.w.test"), 1);
	free(r);
}

static void
test_dns__nxdomain_is_enoent_quickly(void **state)
{
	struct fix *f = *state;
	uint64_t t0;
	struct res r;

	fix_dns(f);
	uv_update_time(&f->loop);
	t0 = uv_now(&f->loop);
	locate(f, "nx.test", ENV_TP_NONE, 0, 0, &r);
	assert_int_equal(r.err, -ENOENT);
	assert_int_equal(r.n, 0);
	assert_true(uv_now(&f->loop) - t0 < 250);	/* below one timeout */
	locate(f, "nx.test", ENV_TP_NONE, 5060, 0, &r);
	assert_int_equal(r.err, -ENOENT);
}

static void
test_dns__dead_server_times_out(void **state)
{
	struct fix *f = *state;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	uint64_t t0, took;
	struct res r;

	/* A socket that takes queries and never answers. */
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(f->servers, sizeof(f->servers), "127.0.0.1:%d",
		 ntohs(sa.sin_port));
	fix_dns(f);
	uv_update_time(&f->loop);
	t0 = uv_now(&f->loop);
	locate(f, "a.test", ENV_TP_NONE, 0, 0, &r);
	took = uv_now(&f->loop) - t0;
	assert_int_equal(r.err, -ETIMEDOUT);
	/* One try of 300 ms, and no fallback stage after it. */
	assert_in_range(took, 250, 900);
	close(fd);
}

static void
test_dns__cache_answers_without_a_query(void **state)
{
	struct fix *f = *state;
	unsigned long sent;
	struct res r;

	fix_dns(f);
	locate(f, "a.test", ENV_TP_NONE, 0, 0, &r);
	assert_int_equal(r.n, 4);
	sent = dns_queries_sent(f->d);
	kill(f->m.pid, SIGSTOP);	/* a query now would time out */
	locate(f, "a.test", ENV_TP_NONE, 0, 0, &r);
	kill(f->m.pid, SIGCONT);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 4);
	assert_target(&r.t[0], ENV_UDP, "127.0.0.11", 5070);
	assert_target(&r.t[3], ENV_TLS, "127.0.0.13", 5072);
	assert_int_equal(dns_queries_sent(f->d), sent);
	assert_int_equal(dnsm_queries(&f->m, "NAPTR", "a.test"), 1);
}

static void
test_dns__negative_answer_cached_for_its_floor(void **state)
{
	struct fix *f = *state;
	unsigned long sent;
	struct res r;

	f->cfg.neg_ttl_min = 1;
	f->cfg.neg_ttl_max = 1;
	fix_dns(f);
	locate(f, "nx.test", ENV_TP_NONE, 5060, 0, &r);
	assert_int_equal(r.err, -ENOENT);
	sent = dns_queries_sent(f->d);
	kill(f->m.pid, SIGSTOP);
	locate(f, "nx.test", ENV_TP_NONE, 5060, 0, &r);
	assert_int_equal(r.err, -ENOENT);
	assert_int_equal(dns_queries_sent(f->d), sent);
	/* dnsmasq sends no SOA: the floor, 1 s, is the TTL; after it the
	 * question goes out again (and meets the stopped server). */
	loop_run_until(&f->loop, never, f, NULL, 1100);
	locate(f, "nx.test", ENV_TP_NONE, 5060, 0, &r);
	kill(f->m.pid, SIGCONT);
	assert_int_equal(r.err, -ETIMEDOUT);
	assert_true(dns_queries_sent(f->d) > sent);
}

static void
test_dns__cache_size_bound_evicts_oldest(void **state)
{
	struct fix *f = *state;
	struct res r;

	f->cfg.cache_size = 2;
	f->cfg.family = AF_INET;
	fix_dns(f);
	locate(f, "h1.test", ENV_TP_NONE, 5060, 0, &r);
	locate(f, "h2.test", ENV_TP_NONE, 5060, 0, &r);
	locate(f, "h3.test", ENV_TP_NONE, 5060, 0, &r);
	assert_int_equal(r.err, 0);
	kill(f->m.pid, SIGSTOP);
	locate(f, "h2.test", ENV_TP_NONE, 5060, 0, &r);
	assert_int_equal(r.err, 0);
	assert_target(&r.t[0], ENV_UDP, "127.0.0.52", 5060);
	locate(f, "h3.test", ENV_TP_NONE, 5060, 0, &r);
	assert_int_equal(r.err, 0);
	locate(f, "h1.test", ENV_TP_NONE, 5060, 0, &r);
	kill(f->m.pid, SIGCONT);
	assert_int_equal(r.err, -ETIMEDOUT);
}

static void
test_dns__cancel_means_no_callback(void **state)
{
	struct fix *f = *state;
	struct dns_query *q;
	struct res r1 = { 0 }, r2;

	fix_dns(f);
	kill(f->m.pid, SIGSTOP);	/* holds the answers back */
	assert_int_equal(dns_locate(f->d, "a.test", 6, ENV_TP_NONE, 0, 0,
				    res_cb, &r1, &q), 0);
	uv_run(&f->loop, UV_RUN_NOWAIT);	/* the query goes out */
	assert_int_equal(dns_queries_sent(f->d), 1);
	dns_cancel(q);
	kill(f->m.pid, SIGCONT);
	/* The same name again: once it is answered, the cancelled locate's
	 * queries have come back too. */
	locate(f, "a.test", ENV_TP_NONE, 0, 0, &r2);
	assert_int_equal(r2.n, 4);
	assert_int_equal(r1.done, 0);
	/* Cancelled before its deferred answer from the cache. */
	assert_int_equal(dns_locate(f->d, "127.0.0.1", 9, ENV_TP_NONE, 0, 0,
				    res_cb, &r1, &q), 0);
	dns_cancel(q);
	loop_run_until(&f->loop, never, f, NULL, 20);
	assert_int_equal(r1.done, 0);
}

/* dns_free with locates in flight: no callback, and teardown's
 * uv_loop_close proves every handle closed. */
static void
test_dns__free_with_locates_pending(void **state)
{
	struct fix *f = *state;
	struct res r[2] = { 0 };

	fix_dns(f);
	kill(f->m.pid, SIGSTOP);	/* holds the answers back */
	assert_int_equal(dns_locate(f->d, "a.test", 6, ENV_TP_NONE, 0, 0,
				    res_cb, &r[0], NULL), 0);
	uv_run(&f->loop, UV_RUN_NOWAIT);	/* the query goes out */
	assert_int_equal(dns_queries_sent(f->d), 1);
	/* Answered from no query, but only on the next turn. */
	assert_int_equal(dns_locate(f->d, "10.0.0.1", 8, ENV_TP_NONE, 0, 0,
				    res_cb, &r[1], NULL), 0);
	dns_free(f->d);
	kill(f->m.pid, SIGCONT);
	f->d = NULL;
	loop_run_until(&f->loop, never, f, NULL, 50);
	assert_int_equal(r[0].done + r[1].done, 0);
}

struct free_ctx {
	struct fix *f;
	int calls;
};

static void
free_in_cb(void *arg, int err, const struct dns_target *t, int n)
{
	struct free_ctx *c = arg;

	(void)err;
	(void)t;
	(void)n;
	c->calls++;
	dns_free(c->f->d);
	c->f->d = NULL;
}

static int
free_ctx_called(void *ctx, void *arg)
{
	(void)ctx;
	return ((struct free_ctx *)arg)->calls > 0;
}

/* The first callback frees the resolver: the second locate, answered
 * in the same turn, is never called. */
static void
test_dns__free_from_a_callback(void **state)
{
	struct fix *f = *state;
	struct free_ctx c = { f, 0 };

	fix_dns(f);
	assert_int_equal(dns_locate(f->d, "10.0.0.1", 8, ENV_TP_NONE, 0, 0,
				    free_in_cb, &c, NULL), 0);
	assert_int_equal(dns_locate(f->d, "10.0.0.2", 8, ENV_TP_NONE, 0, 0,
				    free_in_cb, &c, NULL), 0);
	assert_true(loop_run_until(&f->loop, free_ctx_called, f, &c, 1000));
	loop_run_until(&f->loop, never, f, NULL, 20);
	assert_int_equal(c.calls, 1);
}

/* A dead target goes behind the live ones until its time is up, or
 * until it is declared alive again. */
static void
test_dns__blocked_target_goes_last(void **state)
{
	struct fix *f = *state;
	union env_sa dead, tls;
	struct res r;

	fix_dns(f);
	assert_int_equal(env_sa_from(&dead, "127.0.0.11", 5070), 0);
	assert_int_equal(env_sa_from(&tls, "127.0.0.13", 5072), 0);
	assert_int_equal(dns_block(f->d, &dead, ENV_UDP, 1), 0);
	/* Same address, other transport: not that target. */
	assert_int_equal(dns_block(f->d, &tls, ENV_UDP, 60), 0);
	locate(f, "a.test", ENV_TP_NONE, 0, 0, &r);
	assert_int_equal(r.n, 4);
	assert_target(&r.t[0], ENV_UDP, "::11", 5070);
	assert_target(&r.t[1], ENV_TCP, "127.0.0.12", 5071);
	assert_target(&r.t[2], ENV_TLS, "127.0.0.13", 5072);
	assert_target(&r.t[3], ENV_UDP, "127.0.0.11", 5070);
	/* After its second it is first again. */
	loop_run_until(&f->loop, never, f, NULL, 1100);
	locate(f, "a.test", ENV_TP_NONE, 0, 0, &r);
	assert_target(&r.t[0], ENV_UDP, "127.0.0.11", 5070);
	/* Declared alive at once. */
	assert_int_equal(dns_block(f->d, &tls, ENV_TLS, 60), 0);
	locate(f, "a.test", ENV_TP_NONE, 0, 0, &r);
	assert_target(&r.t[3], ENV_TLS, "127.0.0.13", 5072);
	assert_int_equal(dns_block(f->d, &tls, ENV_TLS, 0), 0);
	locate(f, "a.test", ENV_TP_NONE, 0, 0, &r);
	assert_target(&r.t[3], ENV_TLS, "127.0.0.13", 5072);
	assert_target(&r.t[2], ENV_TCP, "127.0.0.12", 5071);
}

/* block_max bounds the table: the oldest dead target is forgotten. */
static void
test_dns__block_table_bounded(void **state)
{
	struct fix *f = *state;
	union env_sa sa;
	struct res r;

	f->cfg.block_max = 2;
	f->cfg.family = AF_INET;
	fix_dns(f);
	assert_int_equal(env_sa_from(&sa, "127.0.0.11", 5070), 0);
	assert_int_equal(dns_block(f->d, &sa, ENV_UDP, 60), 0);
	assert_int_equal(env_sa_from(&sa, "127.0.0.13", 5072), 0);
	assert_int_equal(dns_block(f->d, &sa, ENV_TLS, 60), 0);
	locate(f, "a.test", ENV_TP_NONE, 0, 0, &r);
	assert_int_equal(r.n, 3);
	assert_target(&r.t[0], ENV_TCP, "127.0.0.12", 5071);
	assert_target(&r.t[1], ENV_UDP, "127.0.0.11", 5070);
	assert_target(&r.t[2], ENV_TLS, "127.0.0.13", 5072);
	/* A third pushes out the oldest, UDP, which is live again. */
	assert_int_equal(env_sa_from(&sa, "127.0.0.99", 1), 0);
	assert_int_equal(dns_block(f->d, &sa, ENV_UDP, 60), 0);
	locate(f, "a.test", ENV_TP_NONE, 0, 0, &r);
	assert_target(&r.t[0], ENV_UDP, "127.0.0.11", 5070);
	assert_target(&r.t[1], ENV_TCP, "127.0.0.12", 5071);
	assert_target(&r.t[2], ENV_TLS, "127.0.0.13", 5072);
	/* And blocking UDP again pushes out TLS. */
	assert_int_equal(env_sa_from(&sa, "127.0.0.11", 5070), 0);
	assert_int_equal(dns_block(f->d, &sa, ENV_UDP, 60), 0);
	locate(f, "a.test", ENV_TP_NONE, 0, 0, &r);
	assert_target(&r.t[0], ENV_TCP, "127.0.0.12", 5071);
	assert_target(&r.t[1], ENV_TLS, "127.0.0.13", 5072);
	assert_target(&r.t[2], ENV_UDP, "127.0.0.11", 5070);
}

/* ---- a hostile DNS server ---- */

struct evil {
	uv_udp_t udp;
	int port;
	int queries;
	unsigned char out[4096];
};

static void
evil_alloc(uv_handle_t *h, size_t size, uv_buf_t *b)
{
	static char buf[1500];

	(void)h;
	(void)size;
	b->base = buf;
	b->len = sizeof(buf);
}

static size_t
put16(unsigned char *p, int v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
	return 2;
}

static size_t
put32(unsigned char *p, uint32_t v)
{
	put16(p, (int)(v >> 16));
	put16(p + 2, (int)v);
	return 4;
}

/* An RR owned by the question's name (pointer to offset 12). */
static size_t
put_rr(unsigned char *p, int type, uint32_t ttl, int rdlen)
{
	size_t o = put16(p, 0xc00c);

	o += put16(p + o, type);
	o += put16(p + o, 1);
	o += put32(p + o, ttl);
	o += put16(p + o, rdlen);
	return o;
}

/*
 * Answers by the query's first label after _sip._udp and the like:
 *   loop   an SRV whose target is a compression pointer to itself
 *   count  an A answer claiming 65535 records, holding one
 *   rdlen  an A record whose length runs past the message
 *   many   40 A records (AAAA: none)
 *   soa2   NXDOMAIN, SOA minimum 2 s (record TTL 3600)
 *   soabig NXDOMAIN, SOA minimum 3600 s
 *   ttl1   an A record (127.0.0.61) of TTL 1 s
 *   ttlbig an A record (127.0.0.62) of TTL 2^31 - 1 s, the most there is
 * anything else NXDOMAIN without SOA.
 */
static void
evil_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
	  const struct sockaddr *from, unsigned flags)
{
	struct evil *e = u->data;
	const unsigned char *q = (const unsigned char *)buf->base;
	unsigned char *o = e->out;
	size_t qend = 12, n, l = 12;
	int qtype, an = 0, ns = 0, rcode = 0;
	char label[64];
	uv_buf_t b;

	(void)flags;
	if (nread < 17 || from == NULL)
		return;
	while (qend < (size_t)nread && q[qend] != 0)
		qend += 1 + q[qend];
	qend += 5;
	if (qend > (size_t)nread)
		return;
	e->queries++;
	qtype = q[qend - 4] << 8 | q[qend - 3];
	/* The first label that is no _service or _proto. */
	while (l < qend - 5 && q[l + 1] == '_')
		l += 1 + q[l];
	memcpy(label, q + l + 1, q[l]);
	label[q[l]] = '\0';
	memcpy(o, q, qend);
	n = qend;
	if (strcmp(label, "loop") == 0 && qtype == 33) {
		size_t at = n + 12 + 6;	/* where the target name lands */

		n += put_rr(o + n, 33, 60, 8);
		n += put16(o + n, 0);
		n += put16(o + n, 0);
		n += put16(o + n, 5060);
		n += put16(o + n, 0xc000 | (int)at);
		an = 1;
	} else if (strcmp(label, "count") == 0 && qtype == 1) {
		n += put_rr(o + n, 1, 60, 4);
		n += put32(o + n, 0x7f000001);
		an = 65535;
	} else if (strcmp(label, "rdlen") == 0 && qtype == 1) {
		n += put_rr(o + n, 1, 60, 4000);
		n += put32(o + n, 0x7f000001);
		an = 1;
	} else if (strcmp(label, "many") == 0) {
		for (int i = 0; qtype == 1 && i < 40; i++, an++) {
			n += put_rr(o + n, 1, 60, 4);
			n += put32(o + n, 0x0a000001 + (uint32_t)i);
		}
	} else if (strncmp(label, "ttl", 3) == 0 && qtype == 1) {
		int big = strcmp(label, "ttlbig") == 0;

		n += put_rr(o + n, 1, big ? 0x7fffffff : 1, 4);
		n += put32(o + n, big ? 0x7f00003e : 0x7f00003d);
		an = 1;
	} else if (strncmp(label, "soa", 3) == 0) {
		n += put_rr(o + n, 6, 3600, 22);
		o[n++] = 0;
		o[n++] = 0;
		n += put32(o + n, 1);
		n += put32(o + n, 60);
		n += put32(o + n, 60);
		n += put32(o + n, 60);
		n += put32(o + n, strcmp(label, "soa2") == 0 ? 2 : 3600);
		ns = 1;
		rcode = 3;
	} else {
		rcode = 3;
	}
	put16(o + 2, 0x8180 | rcode);
	put16(o + 6, an);
	put16(o + 8, ns);
	put16(o + 10, 0);
	b = uv_buf_init((char *)o, (unsigned)n);
	uv_udp_try_send(u, &b, 1, from);
}

static void
evil_start(struct fix *f, struct evil *e)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int len = sizeof(sa);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	memset(e, 0, sizeof(*e));
	assert_int_equal(uv_udp_init(&f->loop, &e->udp), 0);
	e->udp.data = e;
	assert_int_equal(uv_udp_bind(&e->udp, (struct sockaddr *)&sa, 0), 0);
	assert_int_equal(uv_udp_getsockname(&e->udp, (struct sockaddr *)&sa,
					    &len), 0);
	e->port = ntohs(sa.sin_port);
	assert_int_equal(uv_udp_recv_start(&e->udp, evil_alloc, evil_recv), 0);
	snprintf(f->servers, sizeof(f->servers), "127.0.0.1:%d", e->port);
}

static void
evil_stop(struct fix *f, struct evil *e)
{
	uv_close((uv_handle_t *)&e->udp, NULL);
	uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void
test_dns__hostile_answers_are_errors(void **state)
{
	struct fix *f = *state;
	struct evil e;
	struct res r;
	int before;

	evil_start(f, &e);
	f->cfg.family = AF_INET;
	fix_dns(f);
	locate(f, "loop.evil.test", ENV_TP_NONE, 0, 0, &r);
	assert_int_equal(r.err, -EIO);
	locate(f, "count.evil.test", ENV_TP_NONE, 5060, 0, &r);
	assert_int_equal(r.err, -EIO);
	locate(f, "rdlen.evil.test", ENV_TP_NONE, 5060, 0, &r);
	assert_int_equal(r.err, -EIO);
	/* A failure is not cached: asked again, it is queried again. */
	before = e.queries;
	locate(f, "rdlen.evil.test", ENV_TP_NONE, 5060, 0, &r);
	assert_int_equal(e.queries, before + 1);
	/* A flood of records yields the bounded list. */
	locate(f, "many.evil.test", ENV_TP_NONE, 5060, 0, &r);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, DNS_TARGETS_MAX);
	assert_target(&r.t[0], ENV_UDP, "10.0.0.1", 5060);
	evil_stop(f, &e);
}

static void
test_dns__negative_ttl_from_soa_within_bounds(void **state)
{
	struct fix *f = *state;
	struct evil e;
	struct res r;

	evil_start(f, &e);
	f->cfg.family = AF_INET;
	f->cfg.neg_ttl_min = 1;
	f->cfg.neg_ttl_max = 3;
	fix_dns(f);
	locate(f, "soa2.evil.test", ENV_TP_NONE, 5060, 0, &r);
	assert_int_equal(r.err, -ENOENT);
	locate(f, "soabig.evil.test", ENV_TP_NONE, 5060, 0, &r);
	assert_int_equal(r.err, -ENOENT);
	assert_int_equal(e.queries, 2);
	/* Past the floor (1 s): both still cached, the SOA rules. */
	loop_run_until(&f->loop, never, f, NULL, 1200);
	locate(f, "soa2.evil.test", ENV_TP_NONE, 5060, 0, &r);
	locate(f, "soabig.evil.test", ENV_TP_NONE, 5060, 0, &r);
	assert_int_equal(r.err, -ENOENT);
	assert_int_equal(e.queries, 2);
	/* Past the SOA's 2 s: asked again; 3600 s is cut to 3 s. */
	loop_run_until(&f->loop, never, f, NULL, 1000);
	locate(f, "soa2.evil.test", ENV_TP_NONE, 5060, 0, &r);
	assert_int_equal(e.queries, 3);
	locate(f, "soabig.evil.test", ENV_TP_NONE, 5060, 0, &r);
	assert_int_equal(e.queries, 3);
	loop_run_until(&f->loop, never, f, NULL, 1000);
	locate(f, "soabig.evil.test", ENV_TP_NONE, 5060, 0, &r);
	assert_int_equal(e.queries, 4);
	evil_stop(f, &e);
}

/* A positive answer comes from the cache for its TTL, no query, and
 * is asked again once the TTL is over. */
static void
test_dns__positive_answer_asked_again_after_its_ttl(void **state)
{
	struct fix *f = *state;
	struct evil e;
	struct res r;

	evil_start(f, &e);
	f->cfg.family = AF_INET;
	fix_dns(f);
	locate(f, "ttl1.evil.test", ENV_TP_NONE, 5060, 0, &r);
	assert_int_equal(r.err, 0);
	assert_target(&r.t[0], ENV_UDP, "127.0.0.61", 5060);
	assert_int_equal(e.queries, 1);
	/* Within its second: the cache answers. */
	loop_run_until(&f->loop, never, f, NULL, 500);
	locate(f, "ttl1.evil.test", ENV_TP_NONE, 5060, 0, &r);
	assert_int_equal(r.err, 0);
	assert_target(&r.t[0], ENV_UDP, "127.0.0.61", 5060);
	assert_int_equal(e.queries, 1);
	/* Past it: a new query. */
	loop_run_until(&f->loop, never, f, NULL, 600);
	locate(f, "ttl1.evil.test", ENV_TP_NONE, 5060, 0, &r);
	assert_int_equal(r.err, 0);
	assert_target(&r.t[0], ENV_UDP, "127.0.0.61", 5060);
	assert_int_equal(e.queries, 2);
	evil_stop(f, &e);
}

/* An answer's TTL, however large, is cut to ttl_max. */
static void
test_dns__positive_ttl_capped_at_ttl_max(void **state)
{
	struct fix *f = *state;
	struct evil e;
	struct res r;

	evil_start(f, &e);
	f->cfg.family = AF_INET;
	f->cfg.ttl_max = 1;
	fix_dns(f);
	locate(f, "ttlbig.evil.test", ENV_TP_NONE, 5060, 0, &r);
	assert_int_equal(r.err, 0);
	assert_target(&r.t[0], ENV_UDP, "127.0.0.62", 5060);
	locate(f, "ttlbig.evil.test", ENV_TP_NONE, 5060, 0, &r);
	assert_int_equal(e.queries, 1);
	/* 2^31 - 1 s asked, 1 s kept. */
	loop_run_until(&f->loop, never, f, NULL, 1100);
	locate(f, "ttlbig.evil.test", ENV_TP_NONE, 5060, 0, &r);
	assert_int_equal(r.err, 0);
	assert_target(&r.t[0], ENV_UDP, "127.0.0.62", 5060);
	assert_int_equal(e.queries, 2);
	evil_stop(f, &e);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, fix_setup, fix_teardown)
	const struct CMUnitTest tests[] = {
		T(test_dns__naptr_srv_a_chain_by_order_and_preference),
		T(test_dns__sips_keeps_tls_only),
		T(test_dns__srv_only_domain),
		T(test_dns__bare_a_record_last_resort),
		T(test_dns__explicit_port_skips_naptr_and_srv),
		T(test_dns__transport_skips_naptr),
		T(test_dns__numeric_host_is_the_target),
		T(test_dns__hostile_host_refused),
		T(test_dns__srv_priority_then_weight),
		T(test_dns__nxdomain_is_enoent_quickly),
		T(test_dns__dead_server_times_out),
		T(test_dns__cache_answers_without_a_query),
		T(test_dns__negative_answer_cached_for_its_floor),
		T(test_dns__cache_size_bound_evicts_oldest),
		T(test_dns__cancel_means_no_callback),
		T(test_dns__free_with_locates_pending),
		T(test_dns__free_from_a_callback),
		T(test_dns__blocked_target_goes_last),
		T(test_dns__block_table_bounded),
		T(test_dns__hostile_answers_are_errors),
		T(test_dns__negative_ttl_from_soa_within_bounds),
		T(test_dns__positive_answer_asked_again_after_its_ttl),
		T(test_dns__positive_ttl_capped_at_ttl_max),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
