/*
 * test_edge_fwd.c - the edge's routing over real links: a fake
 * transport records what the edge sends to clients, and two unix
 * stream listeners at the cores' ipc endpoints stand in for cores 1 and
 * 2, reading the link's chunks themselves (core 3 is configured but
 * never listens).  Waits use poll(2) deadlines, no sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "edge/edge_int.h"
#include "lib/hash.h"
#include "lib/link.h"
#include "lib/sip.h"

struct fake_tp {
	struct edge_tp tp;
	int rc;			/* what send returns */
	int calls;
	union env_sa dst;
	char buf[4096];
	size_t len;
};

/* A fake core: its listener, the edge's connection once accepted, and
 * the stream's bytes not read yet; the chunk being read has cleft
 * bytes left at off. */
struct core_rx {
	int lfd, fd;
	unsigned char buf[256 * 1024];
	size_t len, off, cleft;
};

struct fixture {
	uv_loop_t loop;
	struct cfg cfg;
	struct edge edge;
	struct fake_tp tp;
	char dir[64];
	struct core_rx core[4];	/* cores 1, 2; 3 never listens */
	union env_sa src;
};

static int
fake_send(struct edge_tp *tp, const union env_sa *dst, uint64_t conn_id,
	  const char *buf, size_t len)
{
	struct fake_tp *f = (struct fake_tp *)tp;

	(void)conn_id;
	f->calls++;
	f->dst = *dst;
	f->len = len < sizeof(f->buf) ? len : sizeof(f->buf);
	memcpy(f->buf, buf, f->len);
	return f->rc;
}

/* The link sends what a turn of the loop gathered at its end: run one. */
static void
flush(struct fixture *f)
{
	uv_run(&f->loop, UV_RUN_NOWAIT);
}

static size_t
get32(const unsigned char *p)
{
	return (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
}

/* Waits up to ms for more of core id's stream (accepting the edge's
 * connection first). */
static int
core_fill(struct core_rx *r, int ms)
{
	struct pollfd p = { .fd = r->fd >= 0 ? r->fd : r->lfd, .events = POLLIN };
	ssize_t got;

	if (r->lfd < 0)
		return -ENOTCONN;
	if (poll(&p, 1, ms) != 1)
		return -ETIMEDOUT;
	if (r->fd < 0) {
		r->fd = accept(r->lfd, NULL, NULL);
		return r->fd < 0 ? -errno : 0;
	}
	if (r->len == sizeof(r->buf))
		return -ENOBUFS;
	got = read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);
	if (got <= 0)
		return -EPIPE;
	r->len += (size_t)got;
	return 0;
}

/* Core id's next envelope within ms: 0 with *p and *n, taken off the
 * stream when take; -ETIMEDOUT, or -EBADMSG for a stream that is no
 * link's.  Chunks without frames (the link's first) are skipped. */
static int
core_frame(struct fixture *f, int id, int ms, int take,
	   const unsigned char **p, size_t *n)
{
	struct core_rx *r = &f->core[id];
	size_t fl;

	for (;;) {
		if (r->cleft >= 4) {
			fl = get32(r->buf + r->off);
			if (fl > r->cleft - 4)
				return -EBADMSG;
			*p = r->buf + r->off + 4;
			*n = fl;
			if (take) {
				r->off += 4 + fl;
				r->cleft -= 4 + fl;
			}
			return 0;
		}
		if (r->cleft)
			return -EBADMSG;
		if (r->len - r->off >= 4 &&
		    r->len - r->off - 4 >= get32(r->buf + r->off)) {
			r->cleft = get32(r->buf + r->off);
			r->off += 4;
			continue;
		}
		memmove(r->buf, r->buf + r->off, r->len - r->off);
		r->len -= r->off;
		r->off = 0;
		if (core_fill(r, ms) < 0)
			return -ETIMEDOUT;
	}
}

/* Receives one envelope at core id within 5 s.  *msg is the caller's
 * to free. */
static int
core_recv(struct fixture *f, int id, struct env *e, char **msg)
{
	const unsigned char *p;
	size_t n;
	int rc;

	flush(f);
	rc = core_frame(f, id, 5000, 1, &p, &n);
	if (rc < 0)
		return rc;
	*msg = malloc(n ? n : 1);
	assert_non_null(*msg);
	memcpy(*msg, p, n);
	return env_decode(e, *msg, n);
}

static int
core_idle(struct fixture *f, int id)
{
	const unsigned char *p;
	size_t n;

	flush(f);
	return core_frame(f, id, 50, 0, &p, &n) == -ETIMEDOUT;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/sm-test-fwd-XXXXXX");
	if (mkdtemp(f->dir) == NULL || uv_loop_init(&f->loop) != 0 ||
	    cfg_load(&f->cfg, NULL, err, sizeof(err)) != 0)
		return -1;
	/* the edge's keys (lib/key.h) live in run_dir */
	snprintf(f->cfg.run_dir, sizeof(f->cfg.run_dir), "%s", f->dir);
	/* The rate table is named after it: one per test run. */
	snprintf(f->cfg.shm_name, sizeof(f->cfg.shm_name), "/sm-test-fwd-%d",
		 (int)getpid());
	f->cfg.n_cores = 3;
	for (int i = 0; i < 3; i++) {
		f->cfg.cores[i].id = i + 1;
		snprintf(f->cfg.cores[i].ipc, sizeof(f->cfg.cores[i].ipc),
			 "ipc://%s/core-%d", f->dir, i + 1);
	}
	snprintf(f->cfg.edges[0].ipc, sizeof(f->cfg.edges[0].ipc),
		 "ipc://%s/edge-1", f->dir);
	f->cfg.edges[0].max_msg = 1024;
	if (edge_init(&f->edge, &f->loop, &f->cfg, &f->cfg.edges[0]) != 0 ||
	    link_new(&f->edge.link, &f->loop, f->cfg.edges[0].ipc, NULL,
		     edge_fwd_from_core, &f->edge) != 0)
		return -1;
	for (int i = 1; i <= 3; i++) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		struct core_rx *r = &f->core[i];

		r->lfd = r->fd = -1;
		if (i == 3)
			break;
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s",
			 f->cfg.cores[i - 1].ipc + 6);
		r->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (r->lfd < 0 ||
		    bind(r->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
		    listen(r->lfd, 4) != 0)
			return -1;
	}
	/* A listening unix socket takes the connect at once. */
	for (int i = 1; i <= 3; i++)
		if (link_peer_add(f->edge.link, i, f->cfg.cores[i - 1].ipc) != 0)
			return -1;
	for (int i = 1; i <= 2; i++) {
		const unsigned char *p;
		size_t n;

		if (link_send(f->edge.link, i, "probe", 5) != 0)
			return -1;
		flush(f);
		if (core_frame(f, i, 5000, 1, &p, &n) != 0 || n != 5)
			return -1;
	}
	f->tp.tp.transport = ENV_UDP;
	f->tp.tp.send = fake_send;
	env_sa_from(&f->tp.tp.local, "127.0.0.1", 5060);
	f->edge.tp[ENV_UDP] = &f->tp.tp;
	env_sa_from(&f->src, "192.0.2.7", 4000);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char path[128];

	link_free(f->edge.link);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	edge_fini(&f->edge);
	for (int i = 1; i <= 2; i++) {
		if (f->core[i].fd >= 0)
			close(f->core[i].fd);
		close(f->core[i].lfd);
	}
	for (int i = 1; i <= 3; i++) {
		snprintf(path, sizeof(path), "%s/core-%d", f->dir, i);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/edge-1", f->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/cluster.key", f->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s-edge-limit", f->cfg.shm_name);
	shm_unlink(path);
	rmdir(f->dir);
	if (uv_loop_close(&f->loop) != 0)
		return -1;
	free(f);
	return 0;
}

static int
request(char *out, size_t cap, const char *callid, const char *extra)
{
	return snprintf(out, cap, "OPTIONS sip:a@x SIP/2.0\r\n"
			"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1;rport\r\n"
			"From: <sip:b@x>;tag=1\r\nTo: <sip:a@x>\r\n"
			"Call-ID: %s\r\nCSeq: 1 OPTIONS\r\n%sContent-Length: 0\r\n\r\n",
			callid, extra);
}

/* A Call-ID whose rendezvous order starts with core first. */
static void
callid_for(char *out, size_t cap, int first, const struct edge *e)
{
	for (int k = 0; ; k++) {
		int order[CFG_MAX_CORES];
		int n = snprintf(out, cap, "cid-%d@h", k);

		hash_rendezvous_order(&e->route, out, (size_t)n, e->core_ids,
				      e->n_cores, order);
		if (order[0] == first)
			return;
	}
}

static void
test_edge_fwd__keepalive_and_oversized_are_counted(void **state)
{
	struct fixture *f = *state;
	char big[2000];

	edge_fwd_input(&f->edge, &f->tp.tp, 0, &f->src, "\r\n\r\n", 4);
	edge_fwd_input(&f->edge, &f->tp.tp, 0, &f->src, "\r\n", 2);
	memset(big, 'x', sizeof(big));
	memcpy(big, "OPTIONS ", 8);
	edge_fwd_input(&f->edge, &f->tp.tp, 0, &f->src, big, sizeof(big));
	assert_int_equal(f->edge.st.received, 3);
	assert_int_equal(f->edge.st.keepalives, 2);
	assert_int_equal(f->edge.st.oversized, 1);
	assert_int_equal(f->tp.calls, 0);
	assert_true(core_idle(f, 1) && core_idle(f, 2));
}

static int
register_req(char *out, size_t cap, int n)
{
	return snprintf(out, cap, "REGISTER sip:x SIP/2.0\r\n"
			"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKr%d;rport\r\n"
			"Max-Forwards: 70\r\n"
			"From: <sip:b@x>;tag=1\r\nTo: <sip:b@x>\r\n"
			"Call-ID: flood-%d@h\r\nCSeq: %d REGISTER\r\n"
			"Contact: <sip:b@10.0.0.1:5062>\r\nExpires: 600\r\n"
			"Content-Length: 0\r\n\r\n", n, n, n + 1);
}

static void
test_edge_fwd__requests_over_the_source_rate_are_dropped(void **state)
{
	struct fixture *f = *state;
	union env_sa other;
	char msg[1024], *m;
	struct env e;
	int n, fwd = 0;

	edge_limit_set(&f->edge.limit, EDGE_LIMIT_REQ, 1, 3);
	for (int i = 0; i < 10; i++) {
		int before = f->tp.calls;

		n = register_req(msg, sizeof(msg), i);
		edge_fwd_input(&f->edge, &f->tp.tp, 0, &f->src, msg, (size_t)n);
		/* Every 503 is smaller than its request, to its source. */
		if (f->tp.calls > before) {
			assert_true(i >= 3);
			assert_true(f->tp.len <= (size_t)n);
			assert_memory_equal(f->tp.buf, "SIP/2.0 503 ", 12);
			assert_non_null(memmem(f->tp.buf, f->tp.len,
					       "\r\nRetry-After: ", 15));
			assert_int_equal(env_sa_port(&f->tp.dst), 4000);
		}
	}
	for (int core = 1; core <= 2; core++)
		while (!core_idle(f, core) && core_recv(f, core, &e, &m) >= 0) {
			fwd++;
			free(m);
		}
	assert_int_equal(fwd, 3);
	assert_int_equal(f->edge.st.fwd_requests, 3);
	assert_int_equal(f->edge.st.limited, 7);
	/* At most EDGE_LIMIT_REPLY_RATE (2) 503s at once per source. */
	assert_int_equal(f->edge.st.limited_503, 2);
	assert_int_equal(f->tp.calls, 2);
	/* An OPTIONS over the rate is dropped without a word. */
	n = request(msg, sizeof(msg), "opt-1@h", "");
	edge_fwd_input(&f->edge, &f->tp.tp, 0, &f->src, msg, (size_t)n);
	assert_int_equal(f->edge.st.limited, 8);
	assert_int_equal(f->tp.calls, 2);
	/* Another source is not held back. */
	env_sa_from(&other, "192.0.2.8", 4000);
	n = register_req(msg, sizeof(msg), 99);
	edge_fwd_input(&f->edge, &f->tp.tp, 0, &other, msg, (size_t)n);
	assert_int_equal(f->edge.st.fwd_requests, 4);
	for (int core = 1; core <= 2; core++)
		while (!core_idle(f, core) && core_recv(f, core, &e, &m) >= 0)
			free(m);
}

static void
test_edge_fwd__request_goes_to_its_core_with_via_fixed(void **state)
{
	struct fixture *f = *state;
	char msg[1024], cid[32], ip[64], *m;
	struct env e;
	int n;

	for (int core = 1; core <= 2; core++) {
		callid_for(cid, sizeof(cid), core, &f->edge);
		n = request(msg, sizeof(msg), cid, "");
		edge_fwd_input(&f->edge, &f->tp.tp, 0, &f->src, msg, (size_t)n);
		assert_int_equal(core_recv(f, core, &e, &m), 0);
		assert_int_equal(e.type, ENV_SIP);
		assert_int_equal(e.transport, ENV_UDP);
		assert_int_equal(e.edge_id, 1);
		assert_int_equal(e.conn_id, 0);
		assert_string_equal(env_sa_ip(&e.src, ip, sizeof(ip)), "192.0.2.7");
		assert_int_equal(env_sa_port(&e.src), 4000);
		assert_int_equal(env_sa_port(&e.local), 5060);
		assert_non_null(memmem(e.msg, e.len, ";branch=z9hG4bK1;rport=4000;"
				       "received=192.0.2.7\r\n", 45));
		assert_int_equal(e.len, (size_t)n + strlen("=4000;received=192.0.2.7"));
		free(m);
	}
	assert_int_equal(f->edge.st.fwd_requests, 2);
	assert_int_equal(f->tp.calls, 0);
}

static void
test_edge_fwd__dead_core_falls_over_then_503(void **state)
{
	struct fixture *f = *state;
	char msg[1024], cid[32], *m;
	struct edge_sip_scan sc;
	int order[CFG_MAX_CORES], n;
	struct env e;

	/* Core 3 first: the request goes to the next in the order. */
	callid_for(cid, sizeof(cid), 3, &f->edge);
	hash_rendezvous_order(&f->edge.route, cid, strlen(cid),
			      f->edge.core_ids,
			      f->edge.n_cores, order);
	n = request(msg, sizeof(msg), cid, "");
	edge_fwd_input(&f->edge, &f->tp.tp, 0, &f->src, msg, (size_t)n);
	assert_int_equal(core_recv(f, order[1], &e, &m), 0);
	free(m);
	assert_int_equal(f->tp.calls, 0);

	/* Only core 3 left: a 503 from the edge, to the rport address. */
	f->edge.core_ids[0] = 3;
	f->edge.n_cores = f->edge.n_active = 1;
	edge_fwd_input(&f->edge, &f->tp.tp, 0, &f->src, msg, (size_t)n);
	assert_int_equal(f->edge.st.drop_no_core, 1);
	assert_int_equal(f->edge.st.sent_503, 1);
	assert_int_equal(f->tp.calls, 1);
	assert_int_equal(env_sa_port(&f->tp.dst), 4000);
	assert_int_equal(edge_sip_scan(&sc, f->tp.buf, f->tp.len), 0);
	assert_int_equal(sc.status, 503);
	assert_non_null(memmem(f->tp.buf, f->tp.len, "rport=4000;received=192.0.2.7", 29));

	/* No 503 to an ACK. */
	n = snprintf(msg, sizeof(msg), "ACK sip:a@x SIP/2.0\r\n"
		     "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:b@x>;tag=1\r\n"
		     "To: <sip:a@x>;tag=2\r\nCall-ID: x\r\nCSeq: 1 ACK\r\n\r\n");
	edge_fwd_input(&f->edge, &f->tp.tp, 0, &f->src, msg, (size_t)n);
	assert_int_equal(f->edge.st.drop_no_core, 2);
	assert_int_equal(f->tp.calls, 1);
}

static void
test_edge_fwd__malformed_gets_400_or_is_dropped(void **state)
{
	struct fixture *f = *state;
	static const char nocid[] = "OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n"
		"From: <sip:b@x>\r\nTo: <sip:a@x>\r\nCSeq: 1 OPTIONS\r\n\r\n";
	char msg[1024], ip[64];
	struct edge_sip_scan sc;
	int n = request(msg, sizeof(msg), "c1", "Max-Forwards: 300\r\n");

	edge_fwd_input(&f->edge, &f->tp.tp, 0, &f->src, msg, (size_t)n);
	assert_int_equal(f->edge.st.sent_400, 1);
	assert_int_equal(f->tp.calls, 1);
	assert_string_equal(env_sa_ip(&f->tp.dst, ip, sizeof(ip)), "192.0.2.7");
	assert_int_equal(env_sa_port(&f->tp.dst), 4000);
	assert_int_equal(edge_sip_scan(&sc, f->tp.buf, f->tp.len), 0);
	assert_int_equal(sc.status, 400);
	assert_non_null(memmem(f->tp.buf, f->tp.len,
			       "Warning: 399 sipmesh-edge \"Bad Max-Forwards\"", 43));

	/* No Call-ID: still answerable through its Via. */
	edge_fwd_input(&f->edge, &f->tp.tp, 0, &f->src, nocid, sizeof(nocid) - 1);
	assert_int_equal(f->edge.st.sent_400, 2);
	assert_int_equal(f->tp.calls, 2);
	assert_non_null(memmem(f->tp.buf, f->tp.len,
			       "Missing Call-ID header", 22));
	/* Garbage: nothing to answer, counted. */
	edge_fwd_input(&f->edge, &f->tp.tp, 0, &f->src, "\x16\x03\x01garbage", 10);
	assert_int_equal(f->edge.st.malformed, 1);
	assert_int_equal(f->tp.calls, 2);
	assert_true(core_idle(f, 1) && core_idle(f, 2));
}

static void
test_edge_fwd__response_follows_its_branch(void **state)
{
	struct fixture *f = *state;
	/* core, serial, MAC: 0 signs it right for the Call-ID "r". */
	static const struct { int core; uint64_t serial, mac; } b[] = {
		{ 2, 0xff, 0 },
		{ 1, 1, 0 },
		{ 1, 1, 0x0123456789abcdef },	/* a MAC nobody minted */
		{ 3, 1, 0 },			/* core 3 is not listening:
						   another core takes it */
		{ 9, 1, 0 },			/* no core 9 */
	};
	char msg[1024], br[SIP_BRANCH_MAX], *m;
	struct env e;

	for (size_t i = 0; i < sizeof(b) / sizeof(*b) + 1; i++) {
		int n;

		if (i < sizeof(b) / sizeof(*b))
			sip_branch_make(br, sizeof(br), b[i].core, b[i].serial,
					b[i].mac ? b[i].mac :
					sip_branch_mac(&f->edge.branch, b[i].core,
						       b[i].serial, "r", 1));
		else
			snprintf(br, sizeof(br), "z9hG4bKsm1.1");	/* old form */
		n = snprintf(msg, sizeof(msg), "SIP/2.0 200 OK\r\n"
			     "Via: SIP/2.0/UDP 10.0.0.9;branch=%s;rport\r\n"
			     "From: <sip:b@x>;tag=1\r\nTo: <sip:a@x>;tag=2\r\n"
			     "Call-ID: r\r\nCSeq: 1 OPTIONS\r\n\r\n", br);
		edge_fwd_input(&f->edge, &f->tp.tp, 0, &f->src, msg, (size_t)n);
		if (i < 2) {
			assert_int_equal(core_recv(f, 2 - (int)i, &e, &m), 0);
			/* Responses are forwarded untouched. */
			assert_int_equal(e.len, (size_t)n);
			assert_memory_equal(e.msg, msg, (size_t)n);
			free(m);
		}
		if (i == 3) {
			int to = core_idle(f, 1) ? 2 : 1;

			assert_int_equal(core_recv(f, to, &e, &m), 0);
			assert_memory_equal(e.msg, msg, (size_t)n);
			free(m);
		}
	}
	/* The same branch for another Call-ID is no longer ours. */
	sip_branch_make(br, sizeof(br), 1, 1,
			sip_branch_mac(&f->edge.branch, 1, 1, "r", 1));
	{
		int n = snprintf(msg, sizeof(msg), "SIP/2.0 200 OK\r\n"
				 "Via: SIP/2.0/UDP 10.0.0.9;branch=%s\r\n"
				 "From: <sip:b@x>;tag=1\r\nTo: <sip:a@x>;tag=2\r\n"
				 "Call-ID: other\r\nCSeq: 1 OPTIONS\r\n\r\n", br);

		edge_fwd_input(&f->edge, &f->tp.tp, 0, &f->src, msg, (size_t)n);
	}
	assert_int_equal(f->edge.st.fwd_responses, 3);
	assert_int_equal(f->edge.st.drop_resp_foreign, 4);
	assert_int_equal(f->edge.st.drop_resp_core, 0);
	assert_int_equal(f->tp.calls, 0);
	assert_true(core_idle(f, 1) && core_idle(f, 2));
}

static void
test_edge_fwd__core_envelopes_go_out_or_are_counted(void **state)
{
	struct fixture *f = *state;
	static const char sip[] = "SIP/2.0 200 OK\r\n\r\n";
	char buf[256], ip[64];
	struct env e;
	int n;

	memset(&e, 0, sizeof(e));
	e.type = ENV_SIP;
	e.transport = ENV_UDP;
	e.core_id = 2;
	env_sa_from(&e.src, "198.51.100.2", 5099);
	e.msg = sip;
	e.len = sizeof(sip) - 1;
	n = env_encode(&e, buf, sizeof(buf));
	edge_fwd_from_core(&f->edge, buf, (size_t)n);
	assert_int_equal(f->tp.calls, 1);
	assert_string_equal(env_sa_ip(&f->tp.dst, ip, sizeof(ip)), "198.51.100.2");
	assert_int_equal(env_sa_port(&f->tp.dst), 5099);
	assert_int_equal(f->tp.len, sizeof(sip) - 1);
	assert_int_equal(f->edge.st.sent, 1);

	f->tp.rc = -EAGAIN;
	edge_fwd_from_core(&f->edge, buf, (size_t)n);
	assert_int_equal(f->edge.st.drop_send_full, 1);
	f->tp.rc = -EAFNOSUPPORT;
	edge_fwd_from_core(&f->edge, buf, (size_t)n);
	assert_int_equal(f->edge.st.drop_send_err, 1);

	edge_fwd_from_core(&f->edge, buf, (size_t)n - 1);	/* truncated */
	edge_fwd_from_core(&f->edge, "SM", 2);
	assert_int_equal(f->edge.st.drop_bad_env, 2);

	e.transport = ENV_TLS;	/* no such transport on this edge */
	n = env_encode(&e, buf, sizeof(buf));
	edge_fwd_from_core(&f->edge, buf, (size_t)n);
	assert_int_equal(f->edge.st.drop_no_tp, 1);
	e.transport = ENV_WS;	/* a browser cannot be dialled */
	n = env_encode(&e, buf, sizeof(buf));
	edge_fwd_from_core(&f->edge, buf, (size_t)n);
	assert_int_equal(f->edge.st.drop_ws_no_conn, 1);
	assert_int_equal(f->edge.st.from_cores, 7);
	assert_int_equal(f->tp.calls, 3);
}

/* A connection of a fake WebSocket transport: records what it is sent. */
struct fake_conn {
	struct edge_conn c;
	int rc, sends, closes;
	struct edge *e;
};

static int
fake_conn_send(struct edge_conn *c, const char *buf, size_t len)
{
	struct fake_conn *fc = (struct fake_conn *)c;

	(void)buf;
	(void)len;
	fc->sends++;
	return fc->rc;
}

static void
fake_conn_close(struct edge_conn *c, const char *why)
{
	struct fake_conn *fc = (struct fake_conn *)c;

	fc->closes++;
	edge_conn_closed(fc->e, c, why);
}

static const struct edge_conn_ops fake_conn_ops = {
	.send = fake_conn_send, .close = fake_conn_close,
};

/* The first live core (1 or 2; 3 never listens) for a conn id. */
static int
closed_core_for(const struct edge *e, uint64_t id)
{
	unsigned char key[8];
	int order[CFG_MAX_CORES];

	for (int i = 0; i < 8; i++)
		key[i] = (unsigned char)(id >> (56 - 8 * i));
	hash_rendezvous_order(&e->route, key, 8, e->core_ids, e->n_cores,
			      order);
	return order[0] != 3 ? order[0] : order[1];
}

static void
test_edge_fwd__connections_carry_flags_and_report_closing(void **state)
{
	struct fixture *f = *state;
	static const char sip[] = "SIP/2.0 200 OK\r\n\r\n";
	struct fake_tp ws = { .tp = { .transport = ENV_WS, .send = fake_send } };
	struct fake_conn fc = { .e = &f->edge };
	char buf[1024], cid[64], *m;
	struct env e;
	int n, core;

	fc.c.transport = ENV_WS;
	fc.c.ops = &fake_conn_ops;
	env_sa_from(&fc.c.peer, "127.0.0.1", 40000);
	env_sa_from(&ws.tp.local, "127.0.0.1", 8080);
	assert_int_equal(edge_conn_add(&f->edge.conns, &fc.c, 0), 0);
	edge_conn_open(&f->edge.conns, &fc.c, 0);
	f->edge.tp[ENV_WS] = &ws.tp;

	/* In: transport, WS flag, conn id, source, listener. */
	callid_for(cid, sizeof(cid), 1, &f->edge);
	n = request(buf, sizeof(buf), cid, "");
	fc.c.used = 1;
	edge_fwd_input(&f->edge, &ws.tp, fc.c.id, &fc.c.peer, buf, (size_t)n);
	assert_int_equal(core_recv(f, 1, &e, &m) , 0);
	assert_int_equal(e.transport, ENV_WS);
	assert_int_equal(e.flags, ENV_F_WS);
	assert_int_equal(e.conn_id, fc.c.id);
	assert_int_equal(env_sa_port(&e.src), 40000);
	assert_int_equal(env_sa_port(&e.local), 8080);
	assert_non_null(memmem(e.msg, e.len, ";received=127.0.0.1", 19));
	free(m);

	/* Out on the connection it names. */
	memset(&e, 0, sizeof(e));
	e.type = ENV_SIP;
	e.transport = ENV_WS;
	e.flags = ENV_F_WS;
	e.core_id = 2;
	e.conn_id = fc.c.id;
	env_sa_from(&e.src, "127.0.0.1", 40000);
	e.msg = sip;
	e.len = sizeof(sip) - 1;
	n = env_encode(&e, buf, sizeof(buf));
	edge_fwd_from_core(&f->edge, buf, (size_t)n);
	assert_int_equal(fc.sends, 1);
	assert_int_equal(f->edge.st.sent, 1);

	/* A connection that is gone: the core that sent gets the message
	 * back in ENV_CONN_CLOSED. */
	e.conn_id = fc.c.id + 1000;
	n = env_encode(&e, buf, sizeof(buf));
	edge_fwd_from_core(&f->edge, buf, (size_t)n);
	assert_int_equal(f->edge.st.drop_conn_gone, 1);
	assert_int_equal(core_recv(f, 2, &e, &m), 0);
	assert_int_equal(e.type, ENV_CONN_CLOSED);
	assert_int_equal(e.conn_id, fc.c.id + 1000);
	assert_int_equal(e.transport, ENV_WS);
	assert_int_equal(e.len, sizeof(sip) - 1);
	free(m);

	/* A full write queue closes it (slow reader); one core hears. */
	fc.rc = -ENOBUFS;
	e.type = ENV_SIP;
	e.conn_id = fc.c.id;
	e.msg = sip;
	e.len = sizeof(sip) - 1;
	n = env_encode(&e, buf, sizeof(buf));
	edge_fwd_from_core(&f->edge, buf, (size_t)n);
	assert_int_equal(fc.closes, 1);
	assert_int_equal(f->edge.st.conns_slow, 1);
	assert_null(edge_conn_find(&f->edge.conns, fc.c.id));
	core = closed_core_for(&f->edge, fc.c.id);
	assert_int_equal(core_recv(f, core, &e, &m), 0);
	assert_int_equal(e.type, ENV_CONN_CLOSED);
	assert_int_equal(e.conn_id, fc.c.id);
	assert_int_equal(e.edge_id, f->edge.me->id);
	assert_int_equal(e.flags, ENV_F_WS);
	assert_int_equal(e.len, 0);
	free(m);
	assert_int_equal(f->edge.st.conn_closed_sent, 2);
	/* Closing again tells nobody twice. */
	edge_conn_closed(&f->edge, &fc.c, "again");
	assert_true(core_idle(f, 1) && core_idle(f, 2));
	f->edge.tp[ENV_WS] = NULL;
}

/* A WS connection of f's edge, open, as if it had carried SIP. */
static void
ws_conn_open(struct fixture *f, struct fake_conn *fc, int port)
{
	memset(fc, 0, sizeof(*fc));
	fc->e = &f->edge;
	fc->c.transport = ENV_WS;
	fc->c.ops = &fake_conn_ops;
	fc->c.used = 1;
	env_sa_from(&fc->c.peer, "127.0.0.1", port);
	assert_int_equal(edge_conn_add(&f->edge.conns, &fc->c, 0), 0);
	edge_conn_open(&f->edge.conns, &fc->c, 0);
}

/*
 * Issue 9: a binding still names a connection of this edge's previous
 * process (another incarnation, the same serial as a live connection
 * now).  The message is not written to the live connection: the core
 * that sent it gets it back in ENV_CONN_CLOSED under the stale id, so
 * it answers 430 and drops that binding.
 */
static void
test_edge_fwd__a_dead_incarnation_reaches_no_connection(void **state)
{
	struct fixture *f = *state;
	static const char sip[] = "MESSAGE sip:a@b.invalid SIP/2.0\r\n\r\n";
	struct fake_conn fc;
	uint64_t stale;
	char buf[1024], *m;
	struct env e;
	int n;

	assert_int_not_equal(f->edge.conns.incarnation, 0);
	ws_conn_open(f, &fc, 40001);
	assert_int_equal(ENV_CONN_INC(fc.c.id), f->edge.conns.incarnation);
	stale = ENV_CONN_ID(f->edge.conns.incarnation ^ 0x80000000u,
			    ENV_CONN_SERIAL(fc.c.id));
	for (int pre = 0; pre < 2; pre++) {
		memset(&e, 0, sizeof(e));
		e.type = ENV_SIP;
		e.transport = ENV_WS;
		e.flags = ENV_F_WS;
		e.core_id = 1;
		/* pre: a binding stored before incarnations (incarnation 0). */
		e.conn_id = pre ? ENV_CONN_SERIAL(fc.c.id) : stale;
		env_sa_from(&e.src, "127.0.0.1", 40001);
		e.msg = sip;
		e.len = sizeof(sip) - 1;
		n = env_encode(&e, buf, sizeof(buf));
		edge_fwd_from_core(&f->edge, buf, (size_t)n);
		assert_int_equal(fc.sends, 0);
		assert_int_equal(f->edge.st.drop_conn_gone, pre + 1);
		assert_int_equal(core_recv(f, 1, &e, &m), 0);
		assert_int_equal(e.type, ENV_CONN_CLOSED);
		assert_true(e.conn_id == (pre ? ENV_CONN_SERIAL(fc.c.id) : stale));
		assert_int_equal(e.len, sizeof(sip) - 1);
		assert_int_equal(e.flags & ENV_F_DIAL_FAILED, 0);
		free(m);
	}
	assert_ptr_equal(edge_conn_find(&f->edge.conns, fc.c.id), &fc.c);
	edge_conn_del(&f->edge.conns, &fc.c);
}

/* A stopping edge: every open connection is reported closed, each to
 * one core, and the table is empty afterwards. */
static void
test_edge_fwd__close_all_reports_every_connection(void **state)
{
	struct fixture *f = *state;
	struct fake_conn fc[4];
	int seen[4] = { 0 };
	struct env e;
	char *m;

	for (int i = 0; i < 4; i++)
		ws_conn_open(f, &fc[i], 41000 + i);
	fc[3].c.used = 0;	/* never carried SIP: no core knows it */
	edge_conns_close_all(&f->edge, "edge stopping");
	assert_int_equal(f->edge.conns.by_id.n, 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(fc[i].closes, 1);
	assert_int_equal(f->edge.st.conn_closed_sent, 3);
	for (int i = 0; i < 3; i++) {
		int core = closed_core_for(&f->edge, fc[i].c.id);

		assert_int_equal(core_recv(f, core, &e, &m), 0);
		assert_int_equal(e.type, ENV_CONN_CLOSED);
		for (int j = 0; j < 3; j++)
			if (e.conn_id == fc[j].c.id)
				seen[j]++;
		free(m);
	}
	assert_true(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
	assert_true(core_idle(f, 1) && core_idle(f, 2));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_edge_fwd__keepalive_and_oversized_are_counted),
		T(test_edge_fwd__requests_over_the_source_rate_are_dropped),
		T(test_edge_fwd__request_goes_to_its_core_with_via_fixed),
		T(test_edge_fwd__dead_core_falls_over_then_503),
		T(test_edge_fwd__malformed_gets_400_or_is_dropped),
		T(test_edge_fwd__response_follows_its_branch),
		T(test_edge_fwd__core_envelopes_go_out_or_are_counted),
		T(test_edge_fwd__connections_carry_flags_and_report_closing),
		T(test_edge_fwd__a_dead_incarnation_reaches_no_connection),
		T(test_edge_fwd__close_all_reports_every_connection),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
