/*
 * core.h - sipmesh-core: a transaction-stateful SIP proxy and
 * registrar (RFC 3261 sections 10, 16, 17).
 *
 * A core receives envelopes from edges over nanomsg, keeps the
 * transaction state for the Call-IDs the edges hash to it, looks up
 * bindings in the location store and sends every message out through
 * an edge.  It never touches a client socket.
 *
 * This header holds what other code and the unit tests use: the
 * process object and the pure registrar rules.
 */
#ifndef SM_CORE_H
#define SM_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/cfg.h"

struct core;

/*
 * Creates core `id` of the cluster described by cfg on loop: binds its
 * nanomsg endpoint, links to every edge and opens the location store.
 * Borrows cfg and loop, which must outlive the core.  Writes *out on
 * success only; returns 0 or a negative errno.
 */
int core_new(struct core **out, const struct cfg *cfg, int id,
	     uv_loop_t *loop);

/* Stops timers and closes handles; the loop must then run once more to
 * finish closing before core_free.  Accepts NULL. */
void core_stop(struct core *c);

/* Frees what core_stop left.  Accepts NULL. */
void core_free(struct core *c);

/* Logs the counters at notice level. */
void core_stats_log(struct core *c);

/*
 * Registrar rule (RFC 3261 10.3 step 6): the expiry granted to one
 * contact from its "expires" parameter (param, -1 when absent) and the
 * request's Expires header (hdr, -1 when absent).  Returns 0 with
 * *granted set (0 means remove; values above max_expires are cut), or
 * -ERANGE when the interval is non-zero and below min_expires (the
 * request must get 423 with Min-Expires).
 */
int core_reg_expires(const struct cfg *c, long param, long hdr, int *granted);

enum core_reg_cseq {
	CORE_REG_APPLY,		/* new Call-ID, or same Call-ID, higher CSeq */
	CORE_REG_RETRANS,	/* same Call-ID and CSeq: nothing changes */
	CORE_REG_STALE,		/* same Call-ID, lower CSeq: fail (500) */
};

/* Registrar rule (RFC 3261 10.3 step 7) for an existing binding. */
enum core_reg_cseq core_reg_cseq_check(const char *old_callid,
				       uint32_t old_cseq,
				       const char *callid, uint32_t cseq);

/*
 * The rtpengine flags for one SDP crossing the proxy (the table of
 * ../shared/DESIGN.md, kept here and nowhere else).  sender_ws and
 * receiver_ws say whether the side that wrote the SDP and the side it
 * goes to speak WebRTC (a WebSocket client); answer is 0 for an offer,
 * 1 for an answer.  An offer's flags follow the side receiving it, an
 * answer's the side receiving it too (the caller), with browser to
 * browser kept end to end encrypted (ICE=force-relay DTLS=passive).
 */
struct core_media_flags {
	const char *transport;	/* "transport-protocol" or NULL */
	const char *ice;	/* "ICE" */
	const char *dtls;	/* "DTLS" or NULL */
	const char *rtcp_mux;	/* one "rtcp-mux" item or NULL */
	int replace;		/* "replace": session-connection, origin */
};

const struct core_media_flags *core_media_flags_for(int sender_ws,
						     int receiver_ws,
						     int answer);

#endif
