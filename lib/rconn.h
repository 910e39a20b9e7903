/*
 * rconn.h - one asynchronous Redis connection on a libuv loop, as every
 * sipmesh process needs it: connect and command timeouts, reconnect
 * with back-off, AUTH (password or ACL user) and CLIENT SETNAME in the
 * handshake, a bound on commands in flight, and Redis Sentinel.
 *
 * Subscriptions (rconn_subscribe) ride a second connection of the same
 * rconn, dialled and failed together with the first: the link is up
 * only when both answered, so an invalidation channel is never silently
 * lost while commands still work.  Every reconnect subscribes again.
 *
 * Sentinel (cfg->sentinels set): every attempt first asks all the
 * sentinels at once SENTINEL MASTER <master>, until a majority of them
 * answered (a silent one costs no timeout while the others make it),
 * takes the address of the highest config-epoch (a former master back
 * after a failover, and its own sentinel, still name it at the old
 * epoch for a while), then dials it and checks with ROLE in the
 * handshake that it is a master (a demoted master that came back is a
 * replica and is not used), and asks ROLE again every 5 s while up (the
 * replicas it lists change; a master demoted behind the link's back
 * fails the link).  A failover is followed by the link failing (the
 * master died, or the sentinels' CLIENT KILL when they demote it) and
 * the next attempt asking again; a write refused with READONLY (the
 * link outlived a demotion) fails the link too.
 *
 * Everything runs on the loop's thread; no call blocks except
 * rconn_connect_sync (for start-up and command-line tools).
 */
#ifndef SM_RCONN_H
#define SM_RCONN_H

#include <stdarg.h>
#include <stddef.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include "lib/prom.h"

struct cfg;
struct rconn;

struct rconn_config {
	const char *host;	/* borrowed for the call only (copied); a
				   path from '/': Redis's unix socket */
	int port;		/* ignored when sentinels are set or for a
				   unix socket */
	const char *user;	/* ACL user, or NULL/"" (password only) */
	const char *password;	/* NULL/"": no AUTH */
	const char *name;	/* CLIENT SETNAME, e.g. "sipmesh-core-3" */
	int timeout_ms;		/* connect, handshake and per-command */
	int backoff_max_ms;	/* reconnect back-off cap (starts at 100) */
	int max_pending;	/* commands in flight; beyond: -EAGAIN */
	int flush_ms;		/* 0: a turn's commands leave before the loop
				   next blocks; else up to this many ms
				   later, together (a write-behind link
				   that no caller waits on) */
	int log_sys;		/* enum log_sys of its log lines (0: MAIN) */
	const char *sentinels;	/* "host:port,host:port,..." (default port
				   26379); NULL/"": host:port is Redis */
	const char *master;	/* the sentinels' name of the master;
				   NULL/"": RCONN_MASTER_DEFAULT */
	const char *sentinel_password;	/* AUTH to the sentinels; NULL/"":
					   none */
	/* Called with rconn_new's arg just before the commands queued on
	 * the link are written (a turn's, or flush_ms's): what it sends
	 * joins that write.  NULL: none. */
	void (*on_flush)(void *arg);
};

#define RCONN_MASTER_DEFAULT "sipmesh"
#define RCONN_SENTINELS_MAX 8
#define RCONN_REPLICAS_MAX 8	/* of a master's ROLE, the first kept */

#define RCONN_BACKOFF_MIN_MS 100
#define RCONN_FLUSH_BYTES (64 * 1024)	/* flush_ms or not: written now */

/*
 * Tells fn(arg, host, port) each Redis server and sentinel the
 * process's rconns learn at run time with Sentinel: the sentinels at
 * rconn_new, each master a sentinel names, the replicas a master's ROLE
 * lists (also from rconn_connect_sync).  For a proxy that must never
 * send to them (a SIP body is a valid Redis command).  host is
 * borrowed for the call; the same address may come again.
 * Process-wide; fn NULL: none.  Set it before the first rconn.
 */
typedef void (*rconn_server_cb)(void *arg, const char *host, int port);
void rconn_server_hook(rconn_server_cb fn, void *arg);

/* The reconnect delay after cur_ms: doubled, capped at max_ms, at
 * least RCONN_BACKOFF_MIN_MS. */
int rconn_backoff_next(int cur_ms, int max_ms);

/*
 * Checks a sentinels list ("host:port,...", at most RCONN_SENTINELS_MAX
 * entries, the port 26379 when left out): 0, or -EINVAL.
 */
int rconn_sentinels_check(const char *list);

/*
 * Fills *rc from the [redis] section of cfg (address, user, password,
 * timeout_ms, backoff_max_ms, max_pending, sentinels, master,
 * sentinel_password), with name and log_sys; host (hostlen bytes, the
 * caller's) receives the host part of address and rc->host points to
 * it; the other strings are borrowed from cfg and name.  Returns 0,
 * -ENOENT when cfg has neither a [redis] address nor sentinels,
 * -EINVAL when the address is not host:port or the sentinels list is
 * malformed.
 */
int rconn_config_cfg(struct rconn_config *rc, char *host, size_t hostlen,
		     const struct cfg *cfg, const char *name, int log_sys);

/* Called when the link becomes usable (up = 1: handshake answered) and
 * when it goes down (up = 0), only after an up: failed attempts are not
 * reported.  May call any rconn function, rconn_free included. */
typedef void (*rconn_state_cb)(void *arg, int up);

/*
 * Creates the rconn and starts connecting (the handshake completes on
 * the loop, never inside this call).  Returns 0, -EINVAL (no host or
 * port and no sentinels, or a malformed sentinels list), -E2BIG (a
 * string too long) or -ENOMEM.  A Redis that is down
 * is not an error: it is retried with back-off.  Sets SIGPIPE to
 * ignored unless the process chose a handler: a Redis that dies must
 * cost an EPIPE, not the process.
 */
int rconn_new(struct rconn **out, uv_loop_t *loop,
	      const struct rconn_config *cfg, rconn_state_cb cb, void *arg);

/* Whether the link is up (a command may be sent). */
int rconn_up(const struct rconn *c);

/* Commands in flight (sent, reply not yet delivered). */
int rconn_pending(const struct rconn *c);
/* A link that is down tries again now, not after its back-off (a
 * process about to stop with writes owed). */
void rconn_retry_now(struct rconn *c);

/*
 * Latency of the commands of every rconn of the process, from sending
 * to the reply (failed commands are not counted): one histogram for
 * the metrics, kept on the loop's thread.
 */
const struct prom_hist *rconn_latency(void);

/* Failed attempts and link failures since rconn_new. */
unsigned long rconn_failures(const struct rconn *c);

/*
 * The replicas the master's last ROLE listed (with Sentinel only: the
 * handshake asks ROLE there), kept while the link is down: where a
 * reader may turn while a failover runs.  Copies the i-th into host
 * (hostlen bytes, truncated) and *port when i is in range; returns how
 * many there are.
 */
int rconn_replica(const struct rconn *c, int i, char *host, size_t hostlen,
		  int *port);

/* The arg given to rconn_new, from the ac a command callback got. */
void *rconn_arg(const redisAsyncContext *ac);

/*
 * Sends a command (hiredis format).  fn(ac, reply, priv) runs exactly
 * once: with the reply, or with reply NULL when the link failed or the
 * command timed out, or when the rconn is freed.  Returns 0, or
 * -EAGAIN when the link is down or max_pending commands are in flight
 * (fn will not run).  A command with no reply within timeout_ms (of
 * the later of its sending and the previous reply) fails the link.
 */
int rconn_command(struct rconn *c, redisCallbackFn *fn, void *priv,
		  const char *fmt, ...);
int rconn_vcommand(struct rconn *c, redisCallbackFn *fn, void *priv,
		   const char *fmt, va_list ap);

/* On a link with flush_ms: the commands queued so far leave before the
 * loop next blocks instead of up to flush_ms later.  For a command whose
 * reply someone waits on.  Does nothing on a link without flush_ms or
 * while it is down. */
void rconn_flush_now(struct rconn *c);

/*
 * A message on a subscribed channel: channel and msg (len bytes, also
 * NUL-terminated) are borrowed for the call.
 */
typedef void (*rconn_message_cb)(void *priv, const char *channel,
				 const char *msg, size_t len);

/*
 * Subscribes to channel (copied) for the rconn's life: fn(priv, ...)
 * runs for each message, from every connection to come (re-subscribed
 * after each reconnect; messages published while the link was down are
 * lost, the state callback tells when that may have happened).  Best
 * called before the first up: the link then comes up only once Redis
 * confirmed the subscription.  Returns 0 or -ENOMEM.
 */
int rconn_subscribe(struct rconn *c, const char *channel,
		    rconn_message_cb fn, void *priv);

/*
 * Drops the link as a failure the caller found (a reply that makes no
 * sense, a Redis still loading): pending fns run with NULL, why is
 * logged like any other failure, and the next attempt follows the
 * back-off.  Nothing when the link is down.
 */
void rconn_fail(struct rconn *c, const char *why);

/* Drops the connection; every pending fn runs with NULL; memory goes
 * after the loop releases the timer (uv_close).  NULL is fine. */
void rconn_free(struct rconn *c);

/*
 * A blocking connection with the same handshake (AUTH, CLIENT SETNAME)
 * and timeout_ms for the connect and every command: for a process
 * before its loop runs (start-up load) and for sipmesh-ctl.  With
 * sentinels it asks them all at once, as rconn_new does (poll(2) on
 * its own sockets), takes the highest config-epoch of the first
 * majority to answer and checks the master's ROLE.  Returns the context, or NULL with the reason in err.  Free
 * with redisFree.
 */
redisContext *rconn_connect_sync(const struct rconn_config *cfg, char *err,
				 size_t errlen);

#endif
