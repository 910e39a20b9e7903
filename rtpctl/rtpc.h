/*
 * rtpc.h - the public face of rtpctl: the client library a core links
 * to ask the pool of rtpengine instances for offer/answer/delete, and
 * the wire protocol it speaks to the sipmesh-rtpctl processes.
 *
 * Wire protocol (nanomsg request/reply, several requests in flight):
 *   The client holds one AF_SP_RAW NN_REQ socket connected to every
 *   rtpctl endpoint of [rtpctl] ipc (nanomsg spreads requests over the
 *   connected ones and skips a dead one).  Each rtpctl binds one
 *   AF_SP_RAW NN_REP socket.  Raw sockets let either side keep many
 *   requests open at once: nanomsg's cooked REQ allows one.
 *   - request:  SP header = the request id, 4 bytes big-endian with
 *     bit 31 set (the REQ/REP "bottom of the backtrace" marker; bits
 *     0..30 are the client's sequence number).  Body = the bencoded ng
 *     dictionary exactly as rtpengine would get it, without the cookie
 *     (rtpctl adds its own).  "command" is required; "call-id" picks
 *     the instance (sticky), without it any healthy instance serves.
 *   - reply:    SP header = the same id.  Body = a bencoded dictionary:
 *       "instance" "ip:port" of the rtpengine used (when one was);
 *       "reply"    rtpengine's reply dictionary, verbatim, when it
 *                  answered (its "result" may be "error");
 *       "errno"    positive errno when rtpctl itself failed the
 *                  request (no "reply" then), with
 *       "reason"   a sentence for logs and SIP Warning headers:
 *         ETIMEDOUT    "rtpengine 127.0.0.1:2223 timed out"
 *         EHOSTUNREACH "no rtpengine available"
 *         EHOSTDOWN    "rtpengine 127.0.0.1:2223 holding this call is down"
 *         ENOENT       "call unknown to rtpctl" (not an offer, no entry)
 *         EPROTO       malformed request or rtpengine reply
 *         EBUSY        rtpctl has too many requests open
 *   Replies can come in any order; a client matches them by id and
 *   drops ids it no longer waits for.
 *
 * Client threading: one libuv loop, like the rest of the process.
 * Nothing here blocks: a call returns at once and its callback runs
 * later from the loop.
 */
#ifndef SM_RTPC_H
#define SM_RTPC_H

#include <stddef.h>
#include <uv.h>

struct cfg;
struct rtpc_client;

/* The outcome of one rtpc_call(); every pointer is borrowed for the
 * duration of the callback only. */
struct rtpc_result {
	/*
	 * 0: rtpengine answered with a result other than "error" (reply
	 * holds its dictionary).  -EREMOTEIO: rtpengine answered "error"
	 * (reply holds it too; reason is "rtpengine ADDR: its
	 * error-reason").  Otherwise a negative errno from rtpctl (see the
	 * wire protocol above) or from the client: -ETIMEDOUT "rtpctl did
	 * not answer in N ms", -ECANCELED "client closed", -EPROTO
	 * "malformed reply from rtpctl"; reply is NULL then.
	 */
	int status;
	const char *reason;	/* NUL-terminated; NULL when status is 0 */
	const char *reply;	/* bencoded ng reply dictionary or NULL */
	size_t reply_len;
	const char *instance;	/* "ip:port" of the rtpengine, or "" */
};

typedef void (*rtpc_reply_cb)(void *arg, const struct rtpc_result *r);

/*
 * Connects to the rtpctl endpoint(s) in url: one nanomsg URL or
 * several separated by spaces (cfg [rtpctl] ipc, see rtpc_ipc_url()).
 * Connecting is asynchronous: nanomsg retries by itself, and calls
 * made before any rtpctl is reachable fail with -EAGAIN.  Writes *out
 * on success only.  Returns 0, -EINVAL for an empty or bad url,
 * -ENOMEM, or another negative errno from nanomsg/libuv.
 */
int rtpc_client_new(struct rtpc_client **out, uv_loop_t *loop,
		    const char *url);

/*
 * Calls every pending callback with -ECANCELED, then closes the
 * socket.  Accepts NULL.  Must run before the loop is closed (it
 * closes libuv handles; memory goes in their close callbacks).  Not
 * from inside one of this client's callbacks.
 */
void rtpc_client_free(struct rtpc_client *cl);

/*
 * Sends one ng command: dict is the bencoded dictionary without cookie
 * (copied, so the caller may reuse it at once).  cb(arg, result) runs
 * exactly once, later, from the loop: with rtpctl's answer, or with
 * -ETIMEDOUT when none came within timeout_ms (choose it above
 * rtpctl's own ng_timeout_ms x ng_tries per instance a first offer may
 * try, so that rtpctl's clearer error arrives first: the core derives
 * it from the configuration).
 * Returns a call id > 0 for rtpc_cancel(), or a negative errno and cb
 * never runs: -EINVAL (empty dict, timeout_ms <= 0), -EAGAIN (no
 * rtpctl connected or its queue is full), -ENOMEM.  May be called from
 * a callback.
 */
int rtpc_call(struct rtpc_client *cl, const char *dict, size_t len,
	      int timeout_ms, rtpc_reply_cb cb, void *arg);

/*
 * Forgets call id: its callback will not run (the command may still
 * reach rtpengine).  Returns 0, or -ENOENT when it already completed.
 * May be called from a callback.
 */
int rtpc_cancel(struct rtpc_client *cl, int id);

/* Calls waiting for an answer. */
int rtpc_client_pending(const struct rtpc_client *cl);

/*
 * The rtpctl endpoint for process id (1..N) into out, or with id 0 the
 * whole space-separated list a client connects to: [rtpctl] ipc, or
 * "ipc://<run_dir>/rtpctl-1" when it is empty.  Returns 0, -ENOENT
 * for an id past the list, -ENAMETOOLONG.
 */
int rtpc_ipc_url(const struct cfg *c, int id, char *out, size_t len);

#endif
