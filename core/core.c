/*
 * core.c - the core process object: its nanomsg link to the edges, the
 * location store, and the dispatch of each envelope to the proxy.
 */
#include "core/core_int.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/core_splice.h"
#include "lib/dns.h"
#include "lib/key.h"
#include "lib/link.h"
#include "lib/log.h"
#include "lib/rconn.h"
#include "rtpctl/rtpc.h"

size_t
core_call_id(const osip_message_t *m, char *out, size_t cap)
{
	const osip_call_id_t *ci = m->call_id;
	struct sip_cat b;

	sip_cat_init(&b, out, cap);
	if (ci == NULL || ci->number == NULL)
		return 0;
	sip_cat_str(&b, ci->number);
	if (ci->host) {
		sip_cat_ch(&b, '@');
		sip_cat_str(&b, ci->host);
	}
	return b.len;
}

void
core_random_hex(struct core *c, char *out, size_t n)
{
	unsigned char r[8];

	for (size_t i = 0; i < n; i += sizeof(r)) {
		size_t k = n - i < sizeof(r) ? n - i : sizeof(r);

		if (getrandom(r, k, 0) != (ssize_t)k) {
			uint64_t h;

			c->token++;	/* seeded at random at start */
			h = hash_fnv1a64(&c->token, sizeof(c->token));
			memcpy(r, &h, sizeof(r));
		}
		for (size_t j = 0; j < k; j++)
			snprintf(out + 2 * (i + j), 3, "%02x", r[j]);
	}
	out[2 * n] = '\0';
}

void
core_log_ctx(const osip_message_t *m)
{
	char cid[LOG_CTX_MAX];

	log_ctx_set(cid, core_call_id(m, cid, sizeof(cid)));
}

/*
 * A message libosip2 cannot parse.  The edge checked its framing and
 * the headers every reply needs but leaves the full parse to the core
 * (once per request, not twice): a request goes back to its edge to be
 * answered 400 statelessly, with the edge's bounds on replies; nobody
 * answers a response (RFC 3261 17.1.3).
 */
static void
core_reject(struct core *c, const struct env *in)
{
	struct env e = *in;
	int n;

	if (e.len >= 4 && memcmp(e.msg, "SIP/", 4) == 0) {
		log_info(LOG_SYS_SIP, "unparsable response from edge %d "
			 "dropped", e.edge_id);
		return;
	}
	e.type = ENV_REJECT;
	e.core_id = (uint16_t)c->id;
	e.names = NULL;
	e.names_len = 0;
	n = env_encode(&e, c->sendbuf, c->sendcap);
	if (n < 0 || link_send(c->link, e.edge_id, c->sendbuf, (size_t)n) < 0) {
		c->st.tx_fail++;
		return;
	}
	log_info(LOG_SYS_SIP, "unparsable request from edge %d: back to it "
		 "for a 400", e.edge_id);
}

/*
 * libosip2's parse is about half of what an envelope costs, and half
 * the envelopes are responses.  Of the common ones (a 1xx or 2xx on a
 * branch of ours, forwarded with our Via cut out of the text) the
 * transactions need only the status code, top branch, Call-ID and CSeq
 * method, which core_splice_scan reads from the text.
 */
int
core_resp_scanned(struct core *c, const struct env *e)
{
	char branch[SIP_BRANCH_MAX];
	struct core_scan sc;
	struct core_resp r;

	if (core_splice_scan(e->msg, e->len, &sc) != 0 ||
	    sc.branch_len >= sizeof(branch))
		return 0;
	memcpy(branch, sc.branch, sc.branch_len);
	branch[sc.branch_len] = '\0';
	r = (struct core_resp){
		.code = sc.code, .branch = branch,
		.cid = sc.call_id, .cid_len = sc.call_id_len,
		.method = sc.method, .method_len = sc.method_len,
		.scan = &sc, .raw = e->msg, .len = e->len,
	};
	if (core_txn_scan_match(c, &r) != 0)
		return 0;
	prom_sip_count(&c->sip, PROM_IN, e->msg, e->len);
	/* As core_log_ctx cuts it. */
	log_ctx_set(sc.call_id, sc.call_id_len < LOG_CTX_MAX ?
		    sc.call_id_len : LOG_CTX_MAX - 1);
	log_debug(LOG_SYS_SIP, "response %d %.*s from edge %d", sc.code,
		  (int)sc.method_len, sc.method, e->edge_id);
	c->st.rx_responses++;
	core_txn_respond(c, e, &r);
	log_ctx_clear();
	return 1;
}

osip_message_t *
core_rx_parse(struct core *c)
{
	osip_message_t *m = NULL;

	if (osip_message_init(&m) != 0)
		return NULL;
	if (osip_message_parse(m, c->rx.raw, c->rx.len) != 0) {
		osip_message_free(m);
		return NULL;
	}
	c->rx.msg = m;
	return m;
}

static void
core_on_envelope(void *arg, const char *buf, size_t len)
{
	struct core *c = arg;
	osip_message_t *m = NULL;
	struct env e;
	int rc;

	rc = env_decode(&e, buf, len);
	if (rc != 0 || e.type != ENV_SIP) {
		if (rc == 0 && e.type == ENV_CONN_CLOSED) {
			core_flow_failed(c, &e);
			return;
		}
		c->st.rx_bad++;
		log_warn(LOG_SYS_NET, "bad envelope (%zu bytes): %s", len,
			 strerror(-rc));
		return;
	}
	if (e.len >= 4 && memcmp(e.msg, "SIP/", 4) == 0 &&
	    core_resp_scanned(c, &e))
		return;
	if (e.len >= 9 && memcmp(e.msg, "REGISTER ", 9) == 0 &&
	    core_reg_scanned(c, &e))
		return;
	if (osip_message_init(&m) != 0)
		return;
	if (osip_message_parse(m, e.msg, e.len) != 0 || m->sip_version == NULL) {
		c->st.rx_bad++;
		osip_message_free(m);
		core_reject(c, &e);
		return;
	}
	prom_sip_count(&c->sip, PROM_IN, e.msg, e.len);
	/* Every line logged while this message is handled names its call. */
	core_log_ctx(m);
	log_debug(LOG_SYS_SIP, "%s %d %s from edge %d",
		  MSG_IS_RESPONSE(m) ? "response" : "request",
		  MSG_IS_RESPONSE(m) ? m->status_code : 0,
		  m->sip_method ? m->sip_method :
		  m->cseq && m->cseq->method ? m->cseq->method : "-",
		  e.edge_id);
	c->rx = (struct core_rx){
		.raw = e.msg, .len = e.len, .msg = m, .mf = -1,
		.n_via = osip_list_size(&m->vias),
		.n_rr = osip_list_size(&m->record_routes),
		.n_route = osip_list_size(&m->routes),
	};
	if (MSG_IS_RESPONSE(m)) {
		c->st.rx_responses++;
		core_txn_on_response(c, &e, m);
	} else {
		core_proxy_request(c, &e, m);
	}
	/* m may be freed: nothing may match it from here on. */
	c->rx = (struct core_rx){ .mf = -1 };
	log_ctx_clear();
}

/* link_peer_cb: an edge went silent (its host or process lost without
 * closing its sockets) or is heard again. */
static void
core_on_edge_live(void *arg, int edge_id, int alive)
{
	struct core *c = arg;

	if (alive) {
		log_notice(LOG_SYS_NET, "edge %d heard again", edge_id);
		return;
	}
	log_warn(LOG_SYS_NET, "edge %d silent for %d ms: taken as lost until "
		 "heard again", edge_id, c->cfg->link_dead_ms);
	core_txn_edge_lost(c, edge_id);
	core_pstn_reg_edge_lost(c, edge_id);
}

static void
core_expire_cb(uv_timer_t *t)
{
	struct core *c = t->data;

	loc_expire(c->loc, core_wall_s(c));
}

/* [redis] shards as the location library takes them; host[i] (the
 * caller's) holds the host part of each address.  0 or -EINVAL. */
static int
core_loc_shards(const struct cfg *cfg, struct loc_shard_config *sh,
		char (*host)[CFG_ADDR_LEN])
{
	for (int i = 0; i < cfg->n_redis_shards; i++) {
		const struct cfg_shard *cs = &cfg->redis_shards[i];

		sh[i] = (struct loc_shard_config){ cs->name, host[i], 0,
						   cs->sentinels, cs->master };
		host[i][0] = '\0';
		if (cs->addr[0] && cfg_redis_split(cs->addr, host[i],
						   CFG_ADDR_LEN,
						   &sh[i].port) != 0)
			return -EINVAL;
	}
	return 0;
}

int
core_new(struct core **out, const struct cfg *cfg, int id, uv_loop_t *loop)
{
	struct loc_shard_config shards[CFG_MAX_SHARDS];
	char shard_hosts[CFG_MAX_SHARDS][CFG_ADDR_LEN];
	const struct cfg_core *me = cfg_core_find(cfg, id);
	struct loc_config lc = { 0 };
	char host[CFG_ADDR_LEN];
	unsigned char lk[KEY_LEN];
	struct core *c;
	int rc, port = 0;

	if (me == NULL)
		return -ENOENT;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->loop = loop;
	core_clock_loop(&c->clock, loop);
	c->cfg = cfg;
	c->id = id;
	if (getrandom(&c->token, sizeof(c->token), 0) != sizeof(c->token))
		c->token = (uint64_t)time(NULL) << 20;
	c->sendcap = ENV_HDR_LEN + 65536 + 4096;
	c->sendbuf = malloc(c->sendcap);
	c->splicebuf = malloc(c->sendcap);
	c->bindings = calloc((size_t)cfg->max_contacts, sizeof(*c->bindings));
	if (c->sendbuf == NULL || c->splicebuf == NULL ||
	    c->bindings == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = core_key_load(c);
	if (rc != 0) {
		log_err(LOG_SYS_MAIN, "key in %s: %s", cfg->run_dir,
			strerror(-rc));
		goto fail;
	}
	rc = infra_init(&c->infra, cfg);
	if (rc != 0)
		goto fail;
	/* before any rconn: the Redis servers Sentinel names */
	rconn_server_hook(infra_learn, &c->infra);
	rc = core_auth_new(c);
	if (rc != 0)
		goto fail;
	rc = core_pstn_new(c);
	if (rc != 0)
		goto fail;
	rc = core_fed_new(c);
	if (rc != 0) {
		log_err(LOG_SYS_MAIN, "DNS resolver (%s): %s",
			cfg->dns_servers[0] ? cfg->dns_servers :
			"/etc/resolv.conf", strerror(-rc));
		goto fail;
	}
	core_pstn_start(c);
	rc = core_pstn_reg_new(c);
	if (rc != 0)
		goto fail;

	lc.shm_name = cfg->shm_name;
	lc.shm_size = (size_t)cfg->shm_size_mb << 20;
	lc.max_bindings = cfg->max_bindings;
	lc.init_wait_ms = cfg->init_wait_ms;
	lc.prefix = cfg->redis_prefix;
	lc.redis_user = cfg->redis_user;
	lc.redis_password = cfg->redis_password;
	lc.aor_ttl = cfg->max_expires;
	lc.redis_timeout_ms = cfg->redis_timeout_ms;
	lc.redis_backoff_max_ms = cfg->redis_backoff_max_ms;
	lc.redis_max_pending = cfg->redis_max_pending;
	lc.redis_dirty_max = cfg->redis_dirty_max;
	lc.redis_sentinels = cfg->redis_sentinels;
	lc.redis_master = cfg->redis_master;
	lc.redis_sentinel_password = cfg->redis_sentinel_password;
	if (cfg->redis[0]) {
		if (cfg_redis_split(cfg->redis, host, sizeof(host),
				    &port) != 0) {
			rc = -EINVAL;
			goto fail;
		}
		lc.redis_host = host;
		lc.redis_port = port;
	}
	rc = core_loc_shards(cfg, shards, shard_hosts);
	if (rc != 0)
		goto fail;
	lc.shards = shards;
	lc.n_shards = cfg->n_redis_shards;
	rc = loc_new(&c->loc, &lc, loop);
	if (rc != 0) {
		log_err(LOG_SYS_MAIN, "location store %s: %s", cfg->shm_name,
			strerror(-rc));
		goto fail;
	}
	rc = key_load(cfg, KEY_USE_LINK, lk);
	if (rc == 0)
		rc = link_new(&c->link, loop, me->ipc, lk, core_on_envelope, c);
	explicit_bzero(lk, sizeof(lk));
	if (rc != 0) {
		log_err(LOG_SYS_MAIN, "bind %s: %s", me->ipc, strerror(-rc));
		goto fail;
	}
	for (int i = 0; i < cfg->n_edges; i++) {
		rc = link_peer_add(c->link, cfg->edges[i].id, cfg->edges[i].ipc);
		if (rc != 0) {
			log_err(LOG_SYS_MAIN, "connect edge %d at %s: %s",
				cfg->edges[i].id, cfg->edges[i].ipc,
				strerror(-rc));
			goto fail;
		}
	}
	if (cfg->link_heartbeat_ms) {
		rc = link_live_start(c->link, id, cfg->link_heartbeat_ms,
				     cfg->link_dead_ms, core_on_edge_live, c);
		if (rc != 0)
			goto fail;
	}
	if (cfg->media) {
		char url[2048];

		rc = rtpc_ipc_url(cfg, 0, url, sizeof(url));
		if (rc == 0)
			rc = rtpc_client_new(&c->rtpc, loop, url);
		c->media_timeout_ms = core_media_timeout_ms(cfg);
		if (rc != 0) {
			log_err(LOG_SYS_MAIN, "rtpctl client: %s", strerror(-rc));
			goto fail;
		}
	}
	rc = core_metrics_start(c);
	if (rc != 0)
		goto fail;
	uv_timer_init(loop, &c->expire_timer);
	c->expire_timer.data = c;
	uv_timer_start(&c->expire_timer, core_expire_cb, 1000, 1000);
	*out = c;
	return 0;
fail:
	rtpc_client_free(c->rtpc);
	core_auth_free(c->auth);
	core_pstn_reg_free(c->preg);
	core_pstn_free(c->pstn);
	dns_free(c->dns);
	link_free(c->link);
	loc_free(c->loc);
	htab_fini(&c->stx_tab);
	htab_fini(&c->ctx_tab);
	free(c->bindings);
	free(c->sendbuf);
	free(c->splicebuf);
	free(c);
	return rc;
}

void
core_stop(struct core *c)
{
	if (c == NULL || c->stopping)
		return;
	c->stopping = 1;
	hsrv_free(c->metrics);
	c->metrics = NULL;
	hsrv_free(c->ctl);
	c->ctl = NULL;
	core_txn_shutdown(c);	/* cancels the locates first */
	core_fed_stop(c);
	core_pstn_reg_free(c->preg);
	c->preg = NULL;
	dns_free(c->dns);
	c->dns = NULL;
	core_auth_free(c->auth);
	c->auth = NULL;
	core_pstn_free(c->pstn);
	c->pstn = NULL;
	rtpc_client_free(c->rtpc);
	c->rtpc = NULL;
	uv_close((uv_handle_t *)&c->expire_timer, NULL);
	link_free(c->link);
	c->link = NULL;
	/* Bindings this core took while Redis was away go there first,
	 * or leave with the host if it is stopping too. */
	loc_drain(c->loc, LOC_DRAIN_MS);
	c->loc = NULL;
}

void
core_free(struct core *c)
{
	if (c == NULL)
		return;
	rconn_server_hook(NULL, NULL);	/* it points at c */
	EVP_MAC_CTX_free(c->sign);
	htab_fini(&c->stx_tab);
	htab_fini(&c->ctx_tab);
	free(c->bindings);
	free(c->sendbuf);
	free(c->splicebuf);
	free(c);
}
