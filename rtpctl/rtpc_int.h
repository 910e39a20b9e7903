/*
 * rtpc_int.h - rtpctl's internals, shared by its files and its unit
 * tests.  Nothing outside rtpctl/ includes this.
 *
 * The process (rtpc_srv.c) takes requests from cores over nanomsg,
 * finds the rtpengine instance of the call (rtpc_calls.c: local table,
 * then Redis), or picks one for a new call (rtpc_pool.c), and sends
 * the ng command over UDP (rtpc_ng.c: cookies, retransmission, reply
 * matching).  The three helpers are plain data structures driven with
 * an explicit `now` (milliseconds) so tests control time.
 */
#ifndef SM_RTPC_INT_H
#define SM_RTPC_INT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "lib/env.h"

#define RTPC_MAX_INST   64	/* a request's tried set is a uint64_t */
#define RTPC_ADDR_LEN   64

/* ---- rtpc_pool.c: instances, choice by weight and load, health ---- */

struct rtpc_inst {
	char addr[RTPC_ADDR_LEN];	/* "ip:port" as configured */
	union env_sa sa;
	int weight;			/* 1..1000 */
	int up;				/* takes new calls */
	int fails;			/* consecutive failures */
	int inflight;			/* commands sent, not finished */
	int64_t cur;			/* smooth weighted round robin */
	uint64_t chosen;		/* new calls given to it */
	uint64_t since_ms;		/* last up/down change */
	void *io;			/* the process's socket for it */
	int ping_open;			/* a ping is in flight */
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
 * Picks an instance for a new call among those up and not in the
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

/* ---- rtpc_ng.c: ng commands in flight ---- */

struct rtpc_ng {
	struct rtpc_ng *prev, *next;	/* deadline order */
	struct rtpc_ng *hnext;		/* cookie hash chain */
	uint64_t seq;
	int inst;
	int tries, max_tries;		/* sends so far, allowed */
	uint64_t deadline;
	void *owner;			/* the request, or NULL for a ping */
	size_t cookie_len;
	size_t len;			/* of msg: "cookie dict" */
	char *msg;			/* points just past this struct */
};

#define RTPC_NG_BUCKETS 4096

struct rtpc_ng_tab {
	struct rtpc_ng *bucket[RTPC_NG_BUCKETS];
	struct rtpc_ng *head, *tail;	/* earliest deadline first */
	char nonce[17];			/* hex, unique to this process */
	uint64_t next_seq;
	int timeout_ms;
	int count;
};

/* nonce: a per-process random value so two rtpctl processes never send
 * the same cookie to one rtpengine (it caches replies by cookie). */
void rtpc_ng_init(struct rtpc_ng_tab *t, uint64_t nonce, int timeout_ms);

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

/* The first command whose deadline is <= now, or NULL. */
struct rtpc_ng *rtpc_ng_due(struct rtpc_ng_tab *t, uint64_t now);

/* Deadline of the earliest command; 0 when none is open. */
uint64_t rtpc_ng_next_deadline(const struct rtpc_ng_tab *t);

/* Forgets and frees ng.  Accepts NULL. */
void rtpc_ng_free(struct rtpc_ng_tab *t, struct rtpc_ng *ng);

/* ---- rtpc_calls.c: the local sticky table Call-ID -> instance ---- */

struct rtpc_call {
	struct rtpc_call *hnext;
	struct rtpc_call *prev, *next;	/* least recently touched first */
	uint64_t hash;
	uint64_t expires;
	int inst;
	size_t len;
	char cid[];
};

struct rtpc_calls {
	struct rtpc_call **bucket;
	size_t nbuckets;		/* power of two */
	struct rtpc_call *head, *tail;
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

struct cfg;
struct rtpc_srv;

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

/* Logs the counters. */
void rtpc_srv_stats_log(const struct rtpc_srv *s);

#endif
