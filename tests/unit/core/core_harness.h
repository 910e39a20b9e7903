/*
 * core_harness.h - a real sipmesh-core (core_new: location store in
 * shared memory, cluster key, nanomsg links) on a private run_dir, with
 * the test standing in for its edge: a real link bound where edge 1
 * listens captures every envelope the core sends.  Time is the test's:
 * the core's clock is replaced by one the test steps, and timers are
 * run by calling core_stx_timer_run / core_ctx_timer_run.
 *
 * "What was sent" is read with a barrier: h_flush() sends a marker
 * through the core's own send path and collects envelopes until it
 * comes back (one PUSH pipe keeps order), so checking that nothing was
 * sent needs no sleep.  Included by the core's test files only; its
 * functions are static inline so each file uses what it needs.
 */
#ifndef SM_TEST_CORE_HARNESS_H
#define SM_TEST_CORE_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "core/core_int.h"
#include "lib/link.h"

#define H_MAX_SENT 32
#define H_MARK "SIPMESH-TEST-MARK"

struct harness {
	uv_loop_t loop;
	struct cfg cfg;
	struct core *c;
	struct link *edge;
	char dir[64];
	uint64_t now_ms;
	int64_t now_s;
	int marked;
	int n;				/* messages before the marker */
	char *sent[H_MAX_SENT];		/* NUL-terminated SIP texts */
	struct core_leg leg[H_MAX_SENT];	/* where each went */
	uv_timer_t tick;
	int ticked;
};

/* More configuration, appended to the harness's (a later key wins):
 * set before h_setup runs. */
static const char *h_conf_extra = "";

static uint64_t
h_mono_ms(void *arg)
{
	return ((struct harness *)arg)->now_ms;
}

static int64_t
h_wall_s(void *arg)
{
	return ((struct harness *)arg)->now_s;
}

static inline void
h_on_env(void *arg, const char *buf, size_t len)
{
	struct harness *h = arg;
	struct env e;

	if (env_decode(&e, buf, len) != 0 || e.type != ENV_SIP)
		return;
	if (e.len == sizeof(H_MARK) - 1 && memcmp(e.msg, H_MARK, e.len) == 0) {
		h->marked = 1;
		return;
	}
	if (h->n == H_MAX_SENT)
		return;
	h->sent[h->n] = strndup(e.msg, e.len);
	h->leg[h->n].edge_id = e.edge_id;
	h->leg[h->n].transport = e.transport;
	h->leg[h->n].conn_id = e.conn_id;
	h->leg[h->n].dst = e.src;
	h->n++;
}

static inline void
h_tick_cb(uv_timer_t *t)
{
	((struct harness *)t->data)->ticked = 1;
}

static inline void
h_clear(struct harness *h)
{
	for (int i = 0; i < h->n; i++)
		free(h->sent[i]);
	h->n = 0;
}

/*
 * Sends the marker until it comes back (the core's PUSH socket may
 * still be connecting: a refused send is retried every 5 ms), with a
 * deadline of 5 s.  Afterwards h->sent[0..n-1] is everything the core
 * sent since the previous flush.  Returns h->n.
 */
static inline int
h_flush(struct harness *h)
{
	struct core_leg mark = { .edge_id = 1, .transport = ENV_UDP };

	env_sa_from(&mark.dst, "127.0.0.1", 9);
	h->marked = 0;
	for (int round = 0; round < 1000 && !h->marked; round++) {
		(void)core_send(h->c, &mark, H_MARK, sizeof(H_MARK) - 1);
		h->ticked = 0;
		uv_timer_start(&h->tick, h_tick_cb, 5, 0);
		while (!h->marked && !h->ticked)
			uv_run(&h->loop, UV_RUN_ONCE);
	}
	uv_timer_stop(&h->tick);
	assert_true(h->marked);
	return h->n;
}

/* Pumps the loop until at least n messages were captured (5 s at
 * most); returns h->n. */
static inline int
h_wait_sent(struct harness *h, int n)
{
	for (int round = 0; round < 1000 && h->n < n; round++) {
		h->ticked = 0;
		uv_timer_start(&h->tick, h_tick_cb, 5, 0);
		while (h->n < n && !h->ticked)
			uv_run(&h->loop, UV_RUN_ONCE);
	}
	uv_timer_stop(&h->tick);
	return h->n;
}

/* The i-th message sent since the last flush begins with prefix. */
static inline void
h_assert_sent(struct harness *h, int i, const char *prefix)
{
	assert_true(i < h->n);
	if (strncmp(h->sent[i], prefix, strlen(prefix)) != 0)
		fail_msg("sent[%d] is \"%.60s\", wanted \"%s\"", i,
			 h->sent[i], prefix);
}

static inline int
h_setup(void **state)
{
	struct harness *h = calloc(1, sizeof(*h));
	char path[128], err[256];
	FILE *f;

	snprintf(h->dir, sizeof(h->dir), "/tmp/sm-core-test-XXXXXX");
	if (mkdtemp(h->dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/sipmesh.conf", h->dir);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "[cluster]\nrun_dir = %s\nedges = 1\ncores = 1\n"
		"[redis]\naddress =\n"
		"[location]\nshm_name = /sm-core-test-%d\nshm_size_mb = 4\n"
		"max_bindings = 1000\n"
		"[proxy]\nt1_ms = 500\nt2_ms = 4000\nt4_ms = 5000\n"
		"timer_c_s = 180\nmedia = no\n"
		"[rtpctl]\ninstances =\n"
		"[edge]\nudp = 127.0.0.1:5060\ntcp =\ntls =\nws =\nwss =\n%s",
		h->dir, (int)getpid(), h_conf_extra);
	fclose(f);
	if (cfg_load(&h->cfg, path, err, sizeof(err)) != 0) {
		fprintf(stderr, "cfg: %s\n", err);
		return -1;
	}
	parser_init();
	uv_loop_init(&h->loop);
	uv_timer_init(&h->loop, &h->tick);
	h->tick.data = h;
	if (link_new(&h->edge, &h->loop, h->cfg.edges[0].ipc, NULL, h_on_env, h) != 0 ||
	    link_peer_add(h->edge, 1, h->cfg.cores[0].ipc) != 0 ||
	    core_new(&h->c, &h->cfg, 1, &h->loop) != 0)
		return -1;
	h->now_ms = 1000000;
	h->now_s = 1800000000;
	h->c->clock.mono_ms = h_mono_ms;
	h->c->clock.wall_s = h_wall_s;
	h->c->clock.arg = h;
	h_flush(h);
	*state = h;
	return 0;
}

static inline int
h_teardown(void **state)
{
	struct harness *h = *state;
	char cmd[128];

	h_clear(h);
	core_stop(h->c);
	link_free(h->edge);
	uv_close((uv_handle_t *)&h->tick, NULL);
	uv_run(&h->loop, UV_RUN_DEFAULT);
	core_free(h->c);
	uv_loop_close(&h->loop);
	snprintf(cmd, sizeof(cmd), "/dev/shm/sm-core-test-%d", (int)getpid());
	unlink(cmd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
	if (system(cmd) != 0)
		return -1;
	free(h);
	return 0;
}

/* Copies text into buf[cap] with each bare "\n" made CRLF; returns
 * the length (buf is NUL-terminated). */
static inline size_t
h_crlf(const char *text, char *buf, size_t cap)
{
	size_t n = 0;

	for (const char *p = text; *p && n < cap - 3; p++) {
		if (*p == '\n' && (p == text || p[-1] != '\r'))
			buf[n++] = '\r';
		buf[n++] = *p;
	}
	buf[n] = '\0';
	return n;
}

/* Parses text (with "\n" line ends, turned to CRLF) into a message. */
static inline osip_message_t *
h_parse(const char *text)
{
	char buf[4096];
	size_t n = h_crlf(text, buf, sizeof(buf));
	osip_message_t *m = NULL;

	assert_int_equal(osip_message_init(&m), 0);
	assert_int_equal(osip_message_parse(m, buf, n), 0);
	return m;
}

/* An envelope as edge 1 hands a UDP message from 127.0.0.1:port. */
static inline void
h_env(struct env *e, int port)
{
	memset(e, 0, sizeof(*e));
	e->type = ENV_SIP;
	e->transport = ENV_UDP;
	e->edge_id = 1;
	env_sa_from(&e->src, "127.0.0.1", port);
}

/* Sends an encoded envelope as edge 1, turning the loop until the
 * link (which connects on it) takes it. */
static inline void
h_link_send(struct harness *h, const char *env, size_t len)
{
	for (int i = 0; i < 1000 && link_send(h->edge, 1, env, len) != 0; i++) {
		h->ticked = 0;
		uv_timer_start(&h->tick, h_tick_cb, 5, 0);
		while (!h->ticked)
			uv_run(&h->loop, UV_RUN_ONCE);
	}
}

/*
 * Sends text as edge 1 would, over the real link into the core's
 * endpoint (the whole receive path: envelope, parse, dispatch).  The
 * effect shows as messages the core sends: wait with h_wait_sent.
 */
static inline void
h_deliver(struct harness *h, const char *text, int port)
{
	char buf[4096], env[4096 + ENV_HDR_LEN];
	struct env e;
	int len;

	h_env(&e, port);
	e.msg = buf;
	e.len = h_crlf(text, buf, sizeof(buf));
	len = env_encode(&e, env, sizeof(env));
	assert_true(len > 0);
	h_link_send(h, env, (size_t)len);
}

/*
 * The response text from a callee at port, taken as core_on_envelope
 * takes it: from its text alone when it can be (core_resp_scanned:
 * returns 1), else parsed (0).
 */
static inline int
h_response(struct harness *h, const char *text, int port)
{
	struct env e;

	h_env(&e, port);
	e.msg = text;
	e.len = strlen(text);
	if (core_resp_scanned(h->c, &e))
		return 1;
	core_txn_on_response(h->c, &e, h_parse(text));
	return 0;
}

/*
 * The response `code` to the request sent[i] (as a UAS would write
 * it: the request's Vias, From, To with a tag, Call-ID, CSeq), fed to
 * the core as it arrives from the callee.  h_answer_with adds one
 * header hname: hvalue.
 */
static inline void
h_answer_with(struct harness *h, int i, int code, const char *hname,
	      const char *hvalue)
{
	osip_message_t *req = h_parse(h->sent[i]), *r = NULL;
	char *buf = NULL;
	size_t len;

	assert_int_equal(osip_message_init(&r), 0);
	osip_message_set_version(r, osip_strdup("SIP/2.0"));
	osip_message_set_status_code(r, code);
	osip_message_set_reason_phrase(r, osip_strdup(core_reason(code)));
	osip_list_clone(&req->vias, &r->vias,
			(int (*)(void *, void **))osip_via_clone);
	osip_from_clone(req->from, &r->from);
	osip_to_clone(req->to, &r->to);
	if (code > 100)
		osip_to_set_tag(r->to, osip_strdup("callee"));
	osip_call_id_clone(req->call_id, &r->call_id);
	osip_cseq_clone(req->cseq, &r->cseq);
	if (hname)
		osip_message_set_header(r, hname, hvalue);
	osip_message_set_content_length(r, "0");
	osip_message_to_str(r, &buf, &len);
	osip_message_free(r);
	osip_message_free(req);
	h_response(h, buf, 5090);
	osip_free(buf);
}

static inline void
h_answer(struct harness *h, int i, int code)
{
	h_answer_with(h, i, code, NULL, NULL);
}

/*
 * Log capture: between h_log_start and h_log_stop, stderr (where
 * lib/log writes) is a pipe; h_log_stop returns what was written.
 */
static int h_log_saved = -1, h_log_rd = -1;

static inline void
h_log_start(void)
{
	int p[2];

	assert_int_equal(pipe(p), 0);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	h_log_saved = dup(STDERR_FILENO);
	dup2(p[1], STDERR_FILENO);
	close(p[1]);
	h_log_rd = p[0];
}

static inline const char *
h_log_stop(void)
{
	static char buf[8192];
	ssize_t n = read(h_log_rd, buf, sizeof(buf) - 1);

	buf[n > 0 ? n : 0] = '\0';
	dup2(h_log_saved, STDERR_FILENO);
	close(h_log_saved);
	close(h_log_rd);
	return buf;
}

#endif
