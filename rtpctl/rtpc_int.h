/*
 * rtpc_int.h - rtpctl's internals, shared by its files and its unit
 * tests.  Nothing outside rtpctl/ includes this.
 *
 * The process (rtpc_srv.c) takes requests from cores over nanomsg,
 * finds the rtpengine instance of the call (rtpc_calls.c: local table,
 * then Redis), or picks one for a new call (rtpc_pool.c), and sends
 * the ng command over UDP (rtpc_ng.c: cookies, retransmission, reply
 * matching).  The three helpers are plain data structures driven with
 * an explicit `now` (milliseconds) so tests control time.  The Redis
 * copy of the call table, shared by all rtpctl processes, is
 * rtpc_redis.c.
 */
#ifndef SM_RTPC_INT_H
#define SM_RTPC_INT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "lib/benc.h"
#include "lib/cfg.h"
#include "lib/env.h"
#include "lib/htab.h"
#include "lib/link.h"
#include "lib/list.h"
#include "lib/prom.h"

#define RTPC_MAX_INST   64	/* a request's tried set is a uint64_t */
#define RTPC_ADDR_LEN   64

/* ---- rtpc_pool.c: instances, choice by weight and load, health ---- */

struct rtpc_inst {
	char addr[RTPC_ADDR_LEN];	/* "ip:port" as configured */
	union env_sa sa;
	int weight;			/* 1..1000 */
	int up;				/* takes new calls */
	int drained;			/* out of rotation by an operator
					   (sipmesh-ctl rtp drain): no new
					   calls, its calls go on */
	int fails;			/* consecutive failures */
	int inflight;			/* commands sent, not finished */
	int64_t cur;			/* smooth weighted round robin */
	uint64_t chosen;		/* new calls given to it */
	uint64_t since_ms;		/* last up/down change */
	void *io;			/* the process's socket for it */
	int ping_open;			/* a ping is in flight */
	uint64_t heard_ms;		/* last datagram from it (0: never) */
};

struct rtpc_pool {
	struct rtpc_inst inst[RTPC_MAX_INST];
	int n;
	int fail_threshold;
};

/*
 * Parses "ip:port/weight ip:port ..." (weight 1 when absent, IPv6 as
 * "[::1]:2223/2") into p; every instance starts up.  Returns 0, or
 * -EINVAL with the offending item in err.
 */
int rtpc_pool_parse(struct rtpc_pool *p, const char *spec,
		    int fail_threshold, char *err, size_t errlen);

/*
 * Picks an instance for a new call among those up, not drained and not in the
 * tried mask (bit i = instance i): those with the fewest in-flight
 * commands per unit of weight, and among them smooth weighted round
 * robin (nginx ngx_http_upstream_get_peer).  With no load the picks
 * follow the weights exactly; a slow instance that piles up commands
 * gets none until it drains.  Returns the index, or -1 when none is
 * left.  O(n).
 */
int rtpc_pool_choose(struct rtpc_pool *p, uint64_t tried);

/* The instance whose addr is the len bytes at a, or -1. */
int rtpc_pool_find(const struct rtpc_pool *p, const char *a, size_t len);

/*
 * Health.  rtpc_pool_ok: an answer; resets the failure count and
 * brings a down instance back.  rtpc_pool_fail: an unanswered ping;
 * takes the instance down at fail_threshold consecutive ones.
 * rtpc_pool_down: certain death (connection refused, a command
 * unanswered after all its tries): down at once.  Each returns 1 when
 * the up/down state changed, else 0.
 */
int rtpc_pool_ok(struct rtpc_pool *p, int i, uint64_t now);
int rtpc_pool_fail(struct rtpc_pool *p, int i, uint64_t now);
int rtpc_pool_down(struct rtpc_pool *p, int i, uint64_t now);

/*
 * Sets which instances are drained from the addresses in set (n of
 * them, as rtpc_inst.addr; unknown ones ignored): each named one is,
 * every other is not.  Logs each change.  Returns how many changed.
 */
int rtpc_pool_drain_set(struct rtpc_pool *p, const char *const *set, int n);

/* ---- rtpc_ng.c: ng commands in flight ---- */

struct rtpc_ng {
	struct htab_node h;		/* by seq, the cookie's tail */
	struct list_node order;		/* deadline order, once sent */
	uint64_t seq;
	int inst;
	int tries, max_tries;		/* sends so far, allowed */
	uint64_t first_sent;		/* time of the first send */
	uint64_t deadline;
	void *owner;			/* the request, or NULL for a ping */
	size_t cookie_len;
	size_t len;			/* of msg: "cookie dict" */
	char *msg;			/* points just past this struct */
};

struct rtpc_ng_tab {
	struct htab tab;
	struct list_node order;		/* earliest deadline first */
	char nonce[17];			/* hex, unique to this process */
	uint64_t next_seq;
	int timeout_ms;
	int count;
};

/* nonce: a per-process random value so two rtpctl processes never send
 * the same cookie to one rtpengine (it caches replies by cookie). */
void rtpc_ng_init(struct rtpc_ng_tab *t, uint64_t nonce, int timeout_ms);

/* Frees what the table holds besides its commands (free those first). */
void rtpc_ng_fini(struct rtpc_ng_tab *t);

/*
 * Creates a command for instance inst: a fresh cookie
 * "<nonce>_<seq>", then " ", then dict.  Its first send is due now:
 * the caller sends ng->msg and calls rtpc_ng_sent().  Returns NULL
 * when out of memory.
 */
struct rtpc_ng *rtpc_ng_new(struct rtpc_ng_tab *t, int inst,
			    const char *dict, size_t len, int max_tries,
			    void *owner);

/* Counts one send at now; the next is due at now + timeout_ms. */
void rtpc_ng_sent(struct rtpc_ng_tab *t, struct rtpc_ng *ng, uint64_t now);

/*
 * Finds the command a datagram answers: the cookie before the first
 * space, looked up by value.  On a match, *dict and *dlen are the rest of
 * the datagram.  Returns NULL for an unknown cookie (a late duplicate,
 * another process's) or a datagram with no space.
 */
struct rtpc_ng *rtpc_ng_match(struct rtpc_ng_tab *t, const char *buf,
			      size_t len, const char **dict, size_t *dlen);

/* The command with the earliest deadline, NULL when none was sent;
 * rtpc_ng_after: the one after ng in deadline order, or NULL. */
struct rtpc_ng *rtpc_ng_first(const struct rtpc_ng_tab *t);
struct rtpc_ng *rtpc_ng_after(const struct rtpc_ng_tab *t,
			      const struct rtpc_ng *ng);

/* The first command whose deadline is <= now, or NULL. */
struct rtpc_ng *rtpc_ng_due(struct rtpc_ng_tab *t, uint64_t now);

/* Deadline of the earliest command; 0 when none is open. */
uint64_t rtpc_ng_next_deadline(const struct rtpc_ng_tab *t);

/* Forgets and frees ng.  Accepts NULL. */
void rtpc_ng_free(struct rtpc_ng_tab *t, struct rtpc_ng *ng);

/* ---- rtpc_calls.c: the local sticky table Call-ID -> instance ---- */

struct rtpc_call {
	struct htab_node h;		/* by Call-ID */
	struct list_node lru;		/* least recently touched first */
	uint64_t expires;
	int inst;
	size_t len;
	char cid[];
};

struct rtpc_calls {
	struct htab tab;
	struct list_node lru;
	int count, max;
	uint64_t ttl_ms;
};

/* Returns 0 or -ENOMEM. */
int rtpc_calls_init(struct rtpc_calls *t, int max, uint64_t ttl_ms);
void rtpc_calls_fini(struct rtpc_calls *t);

/*
 * The instance of Call-ID cid, or -1 when unknown or expired (an
 * expired entry is dropped).  Does not refresh the entry.
 */
int rtpc_calls_get(struct rtpc_calls *t, const char *cid, size_t len,
		   uint64_t now);

/*
 * Sets cid -> inst, expiring at now + ttl; every command of a call
 * refreshes it this way.  When the table is full the least recently
 * touched entry goes (with Redis it is found again there).  Returns 0
 * or -ENOMEM.
 */
int rtpc_calls_put(struct rtpc_calls *t, const char *cid, size_t len,
		   int inst, uint64_t now);

void rtpc_calls_del(struct rtpc_calls *t, const char *cid, size_t len);

/* Drops every expired entry; returns how many.  O(dropped). */
int rtpc_calls_sweep(struct rtpc_calls *t, uint64_t now);

/* ---- rtpc_srv.c: the process ---- */

/* Its state, here because rtpc_redis.c works on it too. */
#define RTPC_NODES        8192	/* a query reply of a big call is large */

struct rconn;

/*
 * rtpctl's counters, one row each (X-macro): field, name in the stats
 * line, metric (after "sipmesh_rtpctl_", lib/prom.h) and its HELP (a
 * family's first row carries it).
 */
#define RTPC_STATS(X) \
	X(requests, "requests", "requests_total", "ng requests from cores") \
	X(replied, "replied", "replies_total{from=\"rtpengine\"}", \
	  "Replies to cores, by who made them") \
		/* rtpengine's reply relayed */ \
	X(errors, "errors", "replies_total{from=\"rtpctl\"}", "") \
		/* rtpctl's own error replies */ \
	X(bad_requests, "bad", "bad_requests_total", \
	  "Requests from cores that could not be decoded") \
	X(retransmits, "retransmits", "ng_retransmits_total", \
	  "ng commands sent again (same cookie)") \
	X(timeouts, "timeouts", "ng_timeouts_total", \
	  "ng commands no instance answered") \
	X(failovers, "failovers", "failovers_total", \
	  "Commands moved to another rtpengine instance") \
	X(full, "out_of_ports", "out_of_ports_total", \
	  "Offers an instance had no ports for") \
	X(new_calls, "new_calls", "calls_placed_total", \
	  "Calls placed on an instance") \
	X(redis_errors, "redis_errors", "redis_errors_total", \
	  "Sticky-table commands to Redis that failed") \
	X(stray_replies, "stray", "stray_replies_total", \
	  "rtpengine replies with an unknown cookie")

struct rtpc_stats {
#define RTPC_STAT_FIELD(f, log, metric, help) uint64_t f;
	RTPC_STATS(RTPC_STAT_FIELD)
#undef RTPC_STAT_FIELD
};
struct rtpc_srv;

struct rtpc_req {
	struct rtpc_srv *s;
	struct list_node link;		/* in the server's reqs */
	void *body;			/* NN_MSG chunk; slices below */
	size_t len;
	void *ctrl;			/* NN_MSG SP header, for the reply */
	const char *cmd, *cid;
	size_t cmd_len, cid_len;
	int is_offer;
	int ends_call;			/* delete of the whole call */
	int inst;			/* -1 until known */
	int fresh;			/* this request placed the call */
	int full;			/* an instance had no port for it */
	uint64_t tried;			/* instances tried, bit per index */
	struct rtpc_ng *ng;
	int redis_wait;			/* a Redis callback will come */
	int done;			/* answered; free once Redis is done */
};

struct rtpc_srv {
	uv_loop_t *loop;
	const struct cfg *cfg;
	int id;
	int stopping;
	int rep;			/* AF_SP_RAW NN_REP */
	struct link_poll *rx;		/* requests on rep */
	uv_timer_t ng_timer, ping_timer;
	uv_udp_t udp[RTPC_MAX_INST];
	int timers_init;		/* handles to close in stop */
	struct rtpc_pool pool;
	struct rtpc_ng_tab ng;
	struct rtpc_calls calls;
	struct list_node reqs;		/* open requests */
	int n_open;
	struct rconn *redis;		/* NULL: no Redis configured */
	char rbuf[65536];		/* UDP receive buffer */
	struct benc_node nodes[RTPC_NODES];	/* decoding scratch */
	struct rtpc_stats st;
	struct hsrv *metrics;		/* GET /metrics; NULL: off */
	struct hsrv *ctl;	/* the control socket (lib/ops.h) */
};

/*
 * Starts rtpctl process id on loop: binds its endpoint, opens one UDP
 * socket per instance, connects to Redis when configured, starts the
 * health checks.  Returns 0 or a negative errno (logged).
 */
int rtpc_srv_new(struct rtpc_srv **out, uv_loop_t *loop,
		 const struct cfg *cfg, int id);

/* Closes every handle; the loop then ends.  Memory is freed by
 * rtpc_srv_free() after the loop returned.  Idempotent. */
void rtpc_srv_stop(struct rtpc_srv *s);
void rtpc_srv_free(struct rtpc_srv *s);

/* ---- rtpc_metrics.c ---- */

/* Logs the counters. */
void rtpc_srv_stats_log(const struct rtpc_srv *s);

/* Serves the metrics on the id-th [rtpctl] metrics address, when there
 * is one.  0 or a negative errno (logged); rtpc_srv_stop() frees it. */
int rtpc_metrics_start(struct rtpc_srv *s);

/*
 * Shared with rtpc_redis.c, whose callbacks carry requests on.  All run
 * on the loop, from any callback.
 *
 * rtpc_now: the loop's time, ms.  rtpc_inst_addr: instance i's
 * "ip:port", "" when i is out of range.
 */
uint64_t rtpc_now(const struct rtpc_srv *s);
const char *rtpc_inst_addr(const struct rtpc_srv *s, int i);

/* Frees r now (unlinks it, frees its nanomsg chunks); r is gone. */
void rtpc_req_free(struct rtpc_req *r);

/* Replies the error {errno, instance, reason} to r's core and ends r
 * (freed now, or once its Redis callback has come). */
void rtpc_req_fail(struct rtpc_req *r, int err, const char *reason);

/* Sends r to instance r->inst; when it is down, a first offer moves to
 * another instance and anything else fails. */
void rtpc_req_send(struct rtpc_req *r);

/* The call is known nowhere: an offer places it (picks an instance,
 * claims the call in Redis), anything else fails. */
void rtpc_req_place(struct rtpc_req *r);

/* (Re)arms the ng timer for the earliest open command. */
void rtpc_srv_arm(struct rtpc_srv *s);

/* ---- rtpc_redis.c: the cluster's sticky table in Redis ---- */

/*
 * Connects to cfg->redis (host:port, [redis] user/password) on s's
 * loop; a failed connection is retried with back-off, never fatal.
 * Returns 0, -EINVAL (logged) for an address that is not host:port, or
 * -ENOMEM.
 */
int rtpc_redis_start(struct rtpc_srv *s);

/* Frees the connection: pending callbacks run with a NULL reply (and
 * free the requests that were done).  Call with s->stopping set.
 * Nothing without Redis. */
void rtpc_redis_stop(struct rtpc_srv *s);

/*
 * Looks r's call up (GET).  Returns 0 when the command is queued: r
 * waits (redis_wait), and the reply adopts the instance found or, when
 * none, places the call (rtpc_req_place).  Returns -ENOTCONN (Redis not
 * up) or -EAGAIN (too many commands in flight) and does nothing else:
 * the caller goes on.
 */
int rtpc_redis_get(struct rtpc_req *r);

/*
 * Claims r's new call for r->inst (SET NX PX call_ttl_s).  Returns 0
 * when queued: r waits, and the reply sends r, or when another rtpctl
 * claimed the call first, adopts its instance (GET).  Returns
 * -ENOTCONN or -EAGAIN as rtpc_redis_get().
 */
int rtpc_redis_claim(struct rtpc_req *r);

/*
 * Refreshes the call's entry (PEXPIRE call_ttl_s), or with inst >= 0
 * sets it to instance inst.  DEL removes it.  No reply is awaited;
 * nothing happens while Redis is not up.  cid is borrowed.
 */
void rtpc_redis_touch(struct rtpc_srv *s, const char *cid, size_t len,
		      int inst);
void rtpc_redis_del(struct rtpc_srv *s, const char *cid, size_t len);

/*
 * The operators' side, kept in Redis so it holds for every rtpctl of
 * the cluster and across restarts (keys apart from the calls', whose
 * Call-IDs senders choose):
 *   <prefix>:rtpadm:drained      SET of drained instance addresses,
 *                                read at each link up and on each
 *                                message on channel <prefix>:rtpadm;
 *   <prefix>:rtpadm:pool:<id>    HASH addr -> "state weight calls
 *                                inflight", this rtpctl's view, written
 *                                by rtpc_redis_report() each ping
 *                                round, expiring when it stops.
 * sipmesh-ctl rtp list|drain|enable reads and writes them.
 */
void rtpc_redis_report(struct rtpc_srv *s);

#endif
