/*
 * core_int.h - private declarations shared by the core's files.
 *
 * Object model: a server transaction (struct core_stx) is also the
 * proxy context of RFC 3261 16: it owns the client transactions
 * (struct core_ctx, one per branch of a fork) and lives until its own
 * linger timer ends, then frees its branches with it.  Every object is
 * destroyed only from its own timer callback (mark, then reap), so no
 * caller up the stack is left holding a freed pointer.
 */
#ifndef SM_CORE_INT_H
#define SM_CORE_INT_H

#include <openssl/types.h>
#include <osipparser2/osip_message.h>
#include <osipparser2/osip_parser.h>
#include <stdint.h>
#include <uv.h>

#include "core/core.h"
#include "lib/cfg.h"
#include "lib/dns.h"
#include "lib/env.h"
#include "lib/hash.h"
#include "lib/htab.h"
#include "lib/infra.h"
#include "lib/list.h"
#include "lib/log.h"
#include "lib/prom.h"
#include "lib/sip.h"
#include "location/loc.h"

#define CORE_KEY_MAX 200
#define CORE_MAX_BRANCHES 32	/* forks plus the CANCELs sent to them */
#define CORE_RETRY_AFTER "5"	/* seconds, in the 503s the core makes up */

/* A transaction's entry in its table (lib/htab.h), keyed by a string;
 * embedded first in stx and ctx. */
struct core_hnode {
	struct htab_node h;
	char key[CORE_KEY_MAX];
};

/*
 * The core's counters, one row each (X-macro): field, name in the
 * SIGUSR1 stats line, metric (after "sipmesh_core_", lib/prom.h) and
 * its HELP (a family's first row carries it; its rows stay together).
 * A metric not ending in _total is a gauge.
 */
#define CORE_STATS(X) \
	X(rx_requests, "requests", "requests_received_total", \
	  "SIP requests received from edges") \
	X(rx_responses, "responses", "responses_received_total", \
	  "SIP responses received from edges") \
	X(tx, "sent", "messages_sent_total", "SIP messages sent to edges") \
	X(forwarded, "forwarded", "branches_total", \
	  "Requests sent down a branch of a proxy transaction") \
	X(replies_local, "local-replies", "local_replies_total", \
	  "Responses the core made up itself") \
	X(replies_trimmed, "replies-trimmed", "replies_trimmed_total", \
	  "200s to a REGISTER over UDP listing fewer bindings than its AOR has, to stay within 3 times the request's size") \
	X(registers, "registers", "registers_total", "REGISTER requests") \
	X(reg_ok, "registers-ok", "register_results_total{result=\"ok\"}", \
	  "REGISTER requests answered, by result") \
	X(reg_fail, "registers-failed", \
	  "register_results_total{result=\"failed\"}", "") \
	X(reg_retries, "decided-again", "register_retries_total", \
	  "REGISTERs decided again: another core wrote the AOR") \
	X(reg_scanned, "registers-scanned", "registers_scanned_total", \
	  "REGISTERs handled from their text, without a full parse") \
	X(retrans_absorbed, "retrans", "retransmissions_absorbed_total", \
	  "Request retransmissions answered from transaction state") \
	X(stateless_fwd, "stateless", "stateless_forwarded_total", \
	  "Messages forwarded without a transaction") \
	X(timeouts, "timeouts", "branch_timeouts_total", \
	  "Branches that timed out (timers B, F, C)") \
	X(flows_lost, "flows-lost", "flows_lost_total", \
	  "Branches no edge took (430 at once, 503 while the location store catches up)") \
	X(lookups_unsynced, "lookups-unsynced", "lookups_unsynced_total", \
	  "Requests for an AOR without bindings answered 503 while the location store catches up with Redis") \
	X(fed_failovers, "federation-failovers", "federation_failovers_total", \
	  "Requests to a foreign domain moved on to its next target") \
	X(stx_live, "stx", "server_transactions", \
	  "Server transactions (proxied requests) in progress") \
	X(ctx_live, "ctx", "client_transactions", \
	  "Client transactions (branches) in progress") \
	X(media_cmds, "media-commands", "media_commands_total", \
	  "Commands sent to rtpctl") \
	X(media_errors, "media-errors", "media_errors_total", \
	  "rtpctl commands that failed") \
	X(rx_bad, "bad", "drops_total{reason=\"bad_message\"}", \
	  "Messages dropped, by reason") \
		/* undecodable envelope or unparsable SIP */ \
	X(tx_fail, "send-failed", "drops_total{reason=\"send_failed\"}", "") \
	X(tx_infra, "not-sent-to-self", \
	  "drops_total{reason=\"to_cluster_address\"}", "") \
		/* messages not sent: the cluster's own address */ \
	X(resp_forged, "forged-responses", \
	  "drops_total{reason=\"forged_response\"}", "") \
		/* responses on a branch we did not mint */ \
	X(ack_stray, "stray-acks", "drops_total{reason=\"stray_ack\"}", "") \
		/* ACKs with no transaction and no signed Route */ \
	X(ack_unlocated, "unlocated-acks", \
	  "drops_total{reason=\"ack_not_located\"}", "") \
		/* ACKs whose next hop's name found no target, or \
		   too many waiting for their locate */ \
	X(replies_amp, "replies-too-large", \
	  "drops_total{reason=\"reply_too_large\"}", "") \
		/* replies we made up, over 3 times the datagram */ \
	X(pstn_bypass, "pstn-bypass-refused", \
	  "drops_total{reason=\"pstn_gateway\"}", "") \
		/* a request for a gateway's address outside a trunk \
		   call (403, or an ACK dropped, a binding skipped) */ \
	X(overload, "overloaded", "overload_total", \
	  "Requests refused 503: max_transactions reached") \
	X(route_refused, "refused-routes", \
	  "refused_total{reason=\"route_not_ours\"}", \
	  "Requests refused 403, by reason") \
		/* in-dialog requests without our signed Route */ \
	X(relay_refused, "relay-refused", \
	  "refused_total{reason=\"relay\"}", "") \
		/* foreign to foreign */ \
	X(peer_unproven, "peer-unproven", \
	  "refused_total{reason=\"peer_unproven\"}", "") \
		/* From domain needs a TLS client certificate that \
		   proves it */ \
	X(guest_refused, "guests-refused", \
	  "refused_total{reason=\"guest\"}", "") \
		/* a guest asking for a [pstn] number or a \
		   foreign domain */ \
	X(pstn_requests, "pstn", "pstn_requests_total", \
	  "Requests sent to the phone network's gateways ([pstn])") \
	X(pstn_auth, "pstn-auth", "pstn_challenges_total{result=\"answered\"}", \
	  "Challenges of [pstn] gateways, by what became of them") \
	X(pstn_auth_failed, "pstn-auth-failed", \
	  "pstn_challenges_total{result=\"failed\"}", "") \
		/* refused again, or none we could answer */ \
	X(pstn_reg_ok, "pstn-reg-ok", "pstn_registrations_total{result=\"ok\"}", \
	  "REGISTERs to the carrier ([pstn] register), by outcome") \
	X(pstn_reg_failed, "pstn-reg-failed", \
	  "pstn_registrations_total{result=\"failed\"}", "") \
		/* no gateway took it: retried later */ \
	X(pstn_dids, "pstn-dids", "pstn_dids_total", \
	  "Requests for a [pstn] DID, sent to the user it belongs to") \
	X(auth_ok, "auth-ok", "auth_total{result=\"ok\"}", \
	  "Digest authentication outcomes (core_auth.c)") \
	X(auth_challenges, "auth-challenges", \
	  "auth_total{result=\"challenge\"}", "") \
	X(auth_stale, "auth-stale", "auth_total{result=\"stale\"}", "") \
		/* right response, expired or foreign nonce */ \
	X(auth_failures, "auth-failures", "auth_total{result=\"failure\"}", \
	  "") /* wrong response, forged nonce, no account */ \
	X(auth_replays, "auth-replays", "auth_total{result=\"replay\"}", "") \
		/* nonce-count seen before */ \
	X(auth_forbidden, "auth-forbidden", \
	  "auth_total{result=\"forbidden\"}", "") \
		/* 403: not the user's own address */ \
	X(auth_unavailable, "auth-unavailable", \
	  "auth_total{result=\"unavailable\"}", "") \
		/* 503: no account store answer */

struct core_stats {
#define CORE_STAT_FIELD(f, log, metric, help) uint64_t f;
	CORE_STATS(CORE_STAT_FIELD)
#undef CORE_STAT_FIELD
};


#define CORE_DOWN_TLS 2		/* core_ctx.downstream */

struct rtpc_client;
struct core_media_op;
struct core_auth;
struct core_fed;
struct core_pstn;
struct core_preg;
struct dns;

/*
 * The core's one clock.  Logic never reads time itself: it asks here
 * (or is handed `now`, as h2o's timerwheel is), so a test can install
 * its own clock and step it.  mono_ms: milliseconds for transaction
 * timers (the loop's clock in production); wall_s: seconds since the
 * epoch for binding expiry (time(2)).
 */
struct core_clock {
	uint64_t (*mono_ms)(void *arg);
	int64_t (*wall_s)(void *arg);
	void *arg;
};

/*
 * The message being handled (core_on_envelope), as received and as
 * parsed, and what the proxy changed in it since: enough to write a
 * forwarded copy by splicing the received text (core_splice.h) instead
 * of libosip2's to_str.  raw is NULL outside the envelope callback, so
 * whatever is sent later (a timer, an rtpctl answer) is serialised.
 */
struct core_rx {
	const char *raw;	/* borrowed from the envelope */
	size_t len;
	const osip_message_t *msg;
	int n_via, n_rr, n_route;	/* as parsed */
	int route_pop;		/* leading Route values removed since */
	int mf;			/* Max-Forwards written since; -1: none */
	int dirty;		/* changed in any other way */
	/* The lines a reply copies, as a scan found them (borrowed from
	 * the scan); 0: the reply finds them itself. */
	const struct core_reply_line *lines;
	int n_lines;
};

/* Where one edge listens and what it advertises, per transport, split
 * once: the core compares URIs against them on every request. */
struct core_edge_addr {
	char sent_by[ENV_TP_END][CFG_ADDR_LEN + 8];	/* "": none */
	char host[2][ENV_TP_END][CFG_ADDR_LEN];	/* [0] listen, [1] sent-by */
	int port[2][ENV_TP_END];		/* 0: no such address */
};

struct core {
	uv_loop_t *loop;
	struct core_clock clock;	/* core_clock_loop unless a test's */
	const struct cfg *cfg;
	int id;
	struct link *link;
	struct loc *loc;
	struct htab stx_tab;	/* struct core_stx by core_hnode key */
	struct htab ctx_tab;	/* struct core_ctx by core_hnode key */
	uint64_t token;		/* branch/tag source, seeded at start */
	char *sendbuf;		/* envelope scratch, ENV_HDR_LEN + max msg */
	size_t sendcap;
	char *splicebuf;	/* a spliced copy, sendcap bytes */
	struct core_rx rx;
	const struct cfg *addr_cfg;	/* what edge_addr was split from */
	struct core_edge_addr edge_addr[CFG_MAX_EDGES];
	uv_timer_t expire_timer;
	struct loc_binding *bindings;	/* lookup scratch, max_contacts */
	struct rtpc_client *rtpc;	/* NULL: media not anchored */
	int media_timeout_ms;	/* core_media_timeout_ms(cfg), once */
	struct core_auth *auth;		/* NULL: open mode */
	struct core_pstn *pstn;		/* NULL: no [pstn] gateway */
	struct core_preg *preg;		/* NULL: no [pstn] register */
	struct dns *dns;	/* locates foreign domains and next hops
				   named by a host name (core_fed.c) */
	struct list_node fed_acks;	/* ACKs waiting for a locate */
	int n_fed_acks;
	unsigned char key[32];	/* HMAC key of what we sign (core_sign.c) */
	EVP_MAC_CTX *sign;	/* HMAC-SHA256 keyed with key, once */
	struct hash_key branch_key;	/* Via branch MACs (lib/sip.h) */
	struct infra infra;	/* never a destination (lib/infra.h) */
	struct core_stats st;
	struct prom_sip sip;	/* requests by method, responses by class */
	struct prom_hist latency[PROM_SIP_N_METHODS];	/* core_stx_respond */
	struct hsrv *metrics;	/* GET /metrics (core_metrics.c); NULL: off */
	struct hsrv *ctl;	/* the control socket (lib/ops.h) */
	int stopping;
};

enum core_stx_state {
	STX_PROCEEDING = 1,	/* no final response sent yet */
	STX_COMPLETED,		/* final non-2xx sent (retransmitted for INVITE) */
	STX_CONFIRMED,		/* INVITE: ACK received */
	STX_ACCEPTED,		/* INVITE: a 2xx was forwarded (RFC 6026) */
	STX_TERMINATED,		/* waiting for its timer to reap it */
};

enum core_ctx_state {
	CTX_MEDIA_WAIT = 1,	/* not sent yet: rtpctl rewrites its SDP */
	CTX_CALLING,		/* sent, no response yet (timers A/E, B/F) */
	CTX_PROCEEDING,		/* got a provisional response */
	CTX_COMPLETED,		/* got a final non-2xx (or timed out) */
	CTX_ACCEPTED,		/* INVITE: got a 2xx; more may follow */
};

struct core_stx;

/*
 * One hop as the core sees it: the edge that sends, on which transport
 * and connection (0: none, or open one for TCP/TLS), to which address.
 * A flow (RFC 5626) is a leg with a connection: WebSocket clients can
 * only be reached that way.
 */
struct core_leg {
	uint16_t edge_id;
	uint8_t transport;	/* enum env_transport */
	uint8_t flags;		/* ENV_F_WS */
	uint8_t nat;		/* UDP, no connection: dst is where the
				   party's NAT maps, not its Contact; our
				   Record-Route facing it says so (a flow
				   token, core_sign.c) */
	uint8_t trunk;		/* a [pstn] gateway: our Record-Route facing
				   it says so, and only requests that pop
				   that entry may go to a gateway */
	uint8_t cseq_delta;	/* requests to this party carry CSeq numbers
				   this far above the other party's: a
				   trunk gateway's challenge was answered
				   with a request of ours (core_pstn.c) */
	uint64_t conn_id;	/* ENV_CONN_ID(incarnation, serial) */
	union env_sa dst;
};

/* A client transaction: one branch of a proxied request. */
struct core_ctx {
	struct core_hnode h;	/* key: branch, "C" suffix for a CANCEL */
	struct core *core;
	struct core_stx *stx;
	uv_timer_t timer;
	int state;
	int invite;
	int is_cancel;		/* a CANCEL we sent for a sibling branch */
	struct core_leg down;	/* towards the callee */
	char branch[SIP_BRANCH_MAX];
	char *req;		/* serialised request, for retransmission */
	size_t req_len;
	uint64_t retx_at, timeout_at;	/* loop ms; 0: not armed */
	uint64_t failover_at;	/* a foreign target silent till then is
				   given up (core_fed.c); 0: not armed */
	int retx_ms;
	int code;		/* final status, 0 while pending */
	osip_message_t *final;	/* final non-2xx kept for best response */
	int offered;		/* the request carried SDP */
	char why[128];		/* Warning text for a code we made up */
	int downstream;		/* code is a transport error's 503 (16.9);
				   CORE_DOWN_TLS: the TLS peer did not
				   prove the next hop's name (RFC 5922) */
	int cancel_wanted;	/* CANCEL once a provisional arrives */
	int cancel_sent;
	int timer_c;		/* timeout_at is timer C, not B */
	int flow_lost;		/* no edge took it down its connection:
				   timeout_at (now) fails it with 430
				   (503 while loc_synced is 0) */
	int fed_seen;		/* core_fed_branch_done has acted on it */
	int superseded;		/* a trunk gateway's challenge, answered
				   or given up: never the caller's answer */
};

/* A server transaction and its proxy context. */
struct core_stx {
	struct core_hnode h;	/* key: branch, sent-by, method */
	struct core *core;
	char call_id[LOG_CTX_MAX];	/* log context of its timers */
	uv_timer_t timer;
	int state;
	int invite;
	struct core_leg up;	/* where the request came from: responses */
	osip_message_t *req;	/* owned until the final response */
	char *resp;		/* last response sent, for retransmission */
	size_t resp_len;
	int resp_code;
	uint64_t g_at, end_at;	/* loop ms; 0: not armed */
	int g_ms;
	struct core_ctx *br[CORE_MAX_BRANCHES];
	int n_br;
	int cancelled;
	int answered_2xx;
	struct list_node media_ops;	/* rtpctl commands out */
	int media_used;		/* a command went to rtpctl for this call */
	char *media_cid;	/* Call-ID to delete once media_ops drain */
	struct core_fed *fed;	/* owned; a foreign domain's targets */
	uint64_t born_ns;	/* uv_hrtime() at arrival: the latency
				   histogram of its first answer */
	uint8_t method;		/* enum prom_sip_method */
	size_t reply_max;	/* core_reply_max() of its request: bounds
				   the responses we make up, not those we
				   forward */
};

/* core.c: m's Call-ID into out[cap] (cut to fit, NUL-terminated);
 * returns its length, 0 when m has none.  core_log_ctx: makes it the
 * log context (lib/log.h) until log_ctx_clear(). */
size_t core_call_id(const osip_message_t *m, char *out, size_t cap);
/* n unpredictable bytes as 2n hex digits into out (2n + 1 bytes): a
 * cnonce, a Call-ID, a tag of requests the core makes itself. */
void core_random_hex(struct core *c, char *out, size_t n);
void core_log_ctx(const osip_message_t *m);
/* core.c: the response e->msg handled from its text alone
 * (core_splice_scan, core_txn_scan_match): 1; 0 when it needs
 * libosip2's parse (core_txn_on_response), nothing done yet. */
int core_resp_scanned(struct core *c, const struct env *e);
/* The message being handled (c->rx), parsed by libosip2 for a path that
 * read it from its text and needs it after all; c->rx.msg is set to it
 * and the caller frees it.  NULL when it cannot be. */
osip_message_t *core_rx_parse(struct core *c);

/* core_metrics.c: serves the counters on [core N] metrics when set;
 * 0 or a negative errno (logged).  core_stop() frees the server. */
int core_metrics_start(struct core *c);

/* core_msg.c: building and sending messages. */
void core_leg_from_env(struct core_leg *l, const struct env *in);
int core_send(struct core *c, const struct core_leg *to, const char *buf,
	      size_t len);
int core_send_msg(struct core *c, const struct core_leg *to,
		  osip_message_t *m);
/* The text of m to send: spliced from c->rx (core_splice.h) when m is
 * the message being handled or, with `derived`, a copy of it made to
 * forward; else libosip2's to_str.  0 or a negative errno; release
 * *buf with core_msg_text_free. */
int core_msg_text(struct core *c, const osip_message_t *m, int derived,
		  char **buf, size_t *len);
void core_msg_text_free(struct core *c, char *buf);
osip_message_t *core_resp_build(struct core *c, const osip_message_t *req,
				int code, const char *reason);
/*
 * Replies the core makes up itself go back where the request came
 * from, and over UDP (anyone can write any source address) are at
 * most core_reply_max(in) bytes: SIP_REPLY_AMP (lib/sip.h) times the
 * datagram, unless digest authentication proved it (in->proven);
 * SIZE_MAX when not bounded.  core_reply_fits: whether len is within
 * most, else counts the reply dropped.  core_reply_send (text) and
 * core_reply_send_msg (r, borrowed) send or drop (-EMSGSIZE) a reply
 * to in; core_reply makes and sends code's.
 */
size_t core_reply_max(const struct env *in);
int core_reply_fits(struct core *c, size_t most, size_t len);
int core_reply_send(struct core *c, const struct env *in, const char *buf,
		    size_t len);
int core_reply_send_msg(struct core *c, const struct env *in,
			osip_message_t *r);
int core_reply(struct core *c, const struct env *in, const osip_message_t *req,
	       int code, const char *reason);
/* core_resp_build's response (plus extra[0..extra_len), CRLF-ended
 * header lines) written from the text of req, the message being
 * handled, into c->splicebuf: 0 and *len, or a negative errno (then
 * build it with core_resp_build). */
int core_reply_text(struct core *c, const osip_message_t *req, int code,
		    const char *reason, const char *extra, size_t extra_len,
		    size_t *len);
/* The same for the request in c->rx read without libosip2 (c->rx.msg
 * NULL): to_tag, when set, is added to its To. */
int core_reply_text_tag(struct core *c, int code, const char *reason,
			const char *to_tag, const char *extra,
			size_t extra_len, size_t *len);
/* The To tag core_resp_build gives a response it makes up, from the
 * request's Call-ID up to its '@', From tag and top Via branch (each
 * NULL when absent): "sm" and 16 hex digits into out. */
void core_local_tag_of(const char *cid_number, size_t cid_len,
		       const char *from_tag, size_t tag_len,
		       const char *branch, size_t branch_len, char *out,
		       size_t cap);
const char *core_reason(int code);
int core_has_to_tag(const osip_message_t *m);
/* Whether m's To tag is the one core_resp_build gives a response it
 * makes up for m's transaction: the ACK of such a final response. */
int core_to_tag_is_local(const osip_message_t *m);
int core_uri_is_self(struct core *c, const osip_uri_t *u, int *edge_id);
int core_uri_leg(const osip_uri_t *u, struct core_leg *leg);
/* Moves a leg with no connection to an edge that listens on its
 * transport in its destination's family (an IPv6 target found by DNS
 * or named by a Route leaves from an IPv6 edge) when its own does not;
 * unchanged when no edge does. */
void core_leg_edge_for_dst(struct core *c, struct core_leg *leg);
int core_uri_dest(const osip_uri_t *u, union env_sa *dst);
/* "<user>@<host lower-cased>" into out[0..cap): 0, -EINVAL (no user,
 * or a control character in it) or -E2BIG. */
int core_aor_make(const char *user, size_t ul, const char *host, size_t hl,
		  char *out, size_t cap);
int core_aor_from_uri(const osip_uri_t *u, char *out, size_t cap);
const struct cfg_edge *core_edge_or_first(struct core *c, int edge_id);
/* What e (one of c->cfg's edges) writes as sent-by on transport t, or
 * its advertised address when it does not listen on t. */
const char *core_edge_sent_by(struct core *c, const struct cfg_edge *e,
			      int t);
uint64_t core_now_ms(const struct core *c);
int64_t core_wall_s(const struct core *c);
/* The production clock: libuv's loop time and time(2); arg is the loop. */
void core_clock_loop(struct core_clock *k, uv_loop_t *loop);

/* core_sign.c: what the core mints and later trusts, under its key. */
/* Loads the key: 0 or a negative errno. */
int core_key_load(struct core *c);
/* Keys c->sign with c->key (core_key_load does): 0 or -EIO. */
int core_sign_init(struct core *c);
/* A Via branch naming this core for m's Call-ID and serial; returns
 * its length or -ENOSPC.  core_branch_verify: 0 when branch is one a
 * core of the cluster minted for the Call-ID cid[0..len), as
 * core_call_id writes it or as a response's text holds it (another
 * core's reaches this one only when the edges take that core for
 * lost), else -EINVAL. */
int core_branch_make(const struct core *c, const osip_message_t *m,
		     uint64_t serial, char *out, size_t cap);
int core_branch_verify(const struct core *c, const char *cid, size_t len,
		       const char *branch);
/* The signature parameter (";smsig=...") of a Record-Route URI with
 * user part user (NULL: none) for m's dialog, into out; 0 or -ENOSPC.
 * core_rr_verify: 0 when URI u carries the signature for m's Call-ID,
 * else -EACCES. */
int core_rr_param(const struct core *c, const osip_message_t *m,
		  const char *user, char *out, size_t cap);
int core_rr_verify(const struct core *c, const osip_message_t *m,
		   const osip_uri_t *u);
/* The flow token of leg l into out: its connection
 * ("sm-f<edge>-<incarnation hex>.<serial>-<transport>"), or for a UDP
 * leg with nat set its address ("sm-n<edge>-<address>-<port>");
 * core_flow_parse reads either back into l (0), or gives -EINVAL.  Only
 * a signed Record-Route makes a token trusted. */
int core_flow_token(const struct core_leg *l, char *out, size_t cap);
int core_flow_parse(const char *user, struct core_leg *l);
/* The trunk token "sm-c<delta>" of a Record-Route entry facing a
 * [pstn] gateway (core_leg.trunk, .cseq_delta): writes it (0 or
 * -ENOSPC), and reads it back (the delta, 0-9; -1: not one). */
int core_trunk_token(const struct core_leg *l, char *out, size_t cap);
int core_trunk_token_parse(const char *user);
/* Moves m's CSeq number by delta: 0, or -EINVAL (no number, or out of
 * range). */
int core_cseq_shift(osip_message_t *m, int delta);


/* core_txn.c: transactions. */
struct core_stx *core_stx_find(struct core *c, const osip_message_t *req,
			       int as_invite);
struct core_stx *core_stx_new(struct core *c, const struct env *in,
			      osip_message_t *req);
/* Sends resp (taken) upstream: a response forwarded, or made up by
 * _code and _warn, which are also bounded by s->reply_max. */
void core_stx_respond(struct core_stx *s, osip_message_t *resp);
void core_stx_respond_code(struct core_stx *s, int code, const char *reason);
void core_stx_respond_warn(struct core_stx *s, int code, const char *warning);
void core_stx_retransmit(struct core_stx *s);
void core_stx_ack(struct core_stx *s);
/* What the transactions' timers do at now (their uv callbacks pass
 * core_now_ms); a test calls them with a time of its choosing.  Either
 * may free its object: it must not be used afterwards. */
void core_stx_timer_run(struct core_stx *s, uint64_t now);
void core_ctx_timer_run(struct core_ctx *x, uint64_t now);
struct core_ctx *core_ctx_new(struct core_stx *s, const struct core_leg *down,
			      osip_message_t *fwd);
void core_ctx_send_first(struct core_ctx *x, osip_message_t *m);
/* Ends a branch still waiting for a response with code, which we make
 * up; why (may be NULL) becomes its Warning. */
void core_ctx_fail(struct core_ctx *x, int code, const char *why);
/* The transport could not carry the branch's request: it ends as if
 * it got a 503 (RFC 3261 16.9), which goes upstream as 500 (16.7). */
void core_ctx_transport_error(struct core_ctx *x, const char *why);
struct core_ctx *core_ctx_find(struct core *c, const char *branch,
			       int is_cancel);
void core_ctx_cancel(struct core_ctx *x);
void core_stx_cancel(struct core_stx *s);
void core_stx_branch_done(struct core_stx *s);
const char *core_top_branch(const osip_message_t *m, osip_via_t **via_out);
/* A Via's sent-by port, or the one its transport implies (RFC 3261
 * 19.1.2) when it names none. */
int core_via_port(const osip_via_t *via);
void core_txn_on_response(struct core *c, const struct env *in,
			  osip_message_t *resp);

struct core_scan;

/*
 * A response as the transaction layer reads it: parsed by libosip2
 * (msg), or only scanned (core_splice_scan; msg NULL), when it is
 * forwarded by splicing its text raw[0..len) without our Via.
 */
struct core_resp {
	int code;
	const char *branch;	/* the top Via's, NUL-terminated */
	const char *cid;	/* Call-ID as core_call_id writes it */
	size_t cid_len;
	const char *method;	/* CSeq's; NULL: none */
	size_t method_len;
	osip_message_t *msg;	/* owned; NULL: scanned */
	const struct core_scan *scan;	/* scanned: what of raw was read */
	const char *raw;	/* scanned: the text, borrowed */
	size_t len;
	int match;		/* core_txn_match: 0, -EACCES (forged),
				   -EBADMSG (no CSeq method) */
	struct core_ctx *x;	/* the branch it answers; NULL: none */
};

/*
 * The transactions' part of a scanned response r (msg NULL) without
 * side effects: 0 when core_txn_respond can take it as it is (r->match
 * and r->x set), -EAGAIN when some step needs libosip2's message (a
 * stray 2xx forwarded statelessly, a final 3xx-6xx kept for the best
 * response or ACKed, SDP for rtpctl): then parse it and call
 * core_txn_on_response.  core_txn_respond acts on it; r->raw must stay
 * valid during the call.
 */
int core_txn_scan_match(struct core *c, struct core_resp *r);
void core_txn_respond(struct core *c, const struct env *in,
		      struct core_resp *r);
void core_txn_shutdown(struct core *c);
/* Edge edge_id is dead (lib/link.h liveness): every pending branch down
 * one of its connections fails with 430 on the next turn of the loop,
 * as one no edge took does.  Its bindings stay: a hung edge that comes
 * back still holds those connections. */
void core_txn_edge_lost(struct core *c, int edge_id);

/* core_dialog.c: requests the proxy writes itself. */
/* Pushes our Via (branch signed for token and m's Call-ID, naming this
 * core) for leg; the branch is written to branch[cap].  Returns 0 or a
 * negative errno. */
int core_via_push(struct core *c, osip_message_t *m,
		  const struct core_leg *leg, uint64_t token, char *branch,
		  size_t cap);
/* The CANCEL for x's request (RFC 3261 9.1); the caller frees it.
 * NULL when it cannot be built. */
osip_message_t *core_dialog_cancel(const struct core_ctx *x);
/* Sends the hop-by-hop ACK of x's final non-2xx resp (borrowed). */
void core_dialog_ack(struct core_ctx *x, const osip_message_t *resp);
/* Ends the dialog a 2xx resp (borrowed) set up with an ACK and a BYE
 * down x's leg, when the call cannot go on. */
void core_dialog_hangup(struct core_ctx *x, const osip_message_t *resp);

/* core_stateless.c: a response with no client transaction follows its
 * Via; borrows m, whose top Via the caller still owns. */
void core_resp_stateless(struct core *c, const struct env *in,
			 osip_message_t *m);

/* core_flow.c: an edge's connection closed (in: its envelope). */
void core_flow_failed(struct core *c, const struct env *in);

/* core_proxy.c: routing. */
void core_proxy_request(struct core *c, const struct env *in,
			osip_message_t *req);
/* An initial request past authentication: registrar or lookup; takes
 * req. */
void core_proxy_initial(struct core *c, const struct env *in,
			osip_message_t *req);
/* Sends the ACK for a 2xx req, whose Max-Forwards and Route are done,
 * down out with our Via: 1 when rtpctl took it (it goes on rewritten),
 * else 0 (the caller frees req). */
int core_proxy_ack_send(struct core *c, const struct env *in,
			osip_message_t *req, const struct core_leg *out);
/* Whether m may create a dialog (it gets Record-Route). */
int core_method_dialog(const osip_message_t *m);
/* Record-Route for a request from leg in to leg out: 0 or -EINVAL.
 * m is the request as it arrived, before our Via: whether its sender
 * is a UDP phone behind NAT is read from its Vias and Contact. */
int core_record_route(struct core *c, osip_message_t *m,
		      const struct core_leg *in, const struct core_leg *out);

/* core_fed.c: foreign domains, located by DNS (RFC 3263). */
/* Sets up c->dns from [federation]: 0 or a negative errno. */
int core_fed_new(struct core *c);
/* Accepts NULL; cancels a locate under way. */
void core_fed_free(struct core_fed *f);
int core_fed_from_local(struct core *c, const osip_message_t *m);
/* Whether m, which came in as `in`, may claim its From domain: 0 when
 * [federation] tls_client_cert_domains lists it and no TLS client
 * certificate verified by the edge proved it (RFC 5922 7.4), else 1. */
int core_fed_peer_proven(const struct core *c, const struct env *in,
			 const osip_message_t *m);
/* Locates the host of u, s's next hop (its Request-URI for a foreign
 * domain; the top Route or Request-URI of a request we relay), and
 * proxies s's request to the targets in turn through edge edge_id;
 * answers s when it cannot.  u is read during the call only.  trunk:
 * an in-dialog request that popped our entry facing a [pstn] gateway
 * (only such requests may reach one), its copies' CSeq numbers
 * cseq_delta above s's. */
void core_fed_route(struct core_stx *s, const osip_uri_t *u, int edge_id,
		    int trunk, int cseq_delta);
/* The stateless ACK for a 2xx whose next hop u (borrowed for the
 * call) is a name: 1 when it took ack (sent through core_proxy_ack_send
 * to u's first target once located, dropped and counted when none),
 * else 0 (dropped, counted; the caller frees ack).  out: its edge. */
int core_fed_ack(struct core *c, const struct env *in, osip_message_t *ack,
		 const osip_uri_t *u, const struct core_leg *out);
/* Drops the ACKs still waiting for a locate (core_stop). */
void core_fed_stop(struct core *c);
/* From core_stx_branch_done, no branch pending: 1 when s still waits
 * (a locate, or a branch to the next target), else 0. */
int core_fed_branch_done(struct core_stx *s);

/*
 * Starts the locate of URI u's host (its maddr when it has one) into
 * host[cap]: its port, transport parameter and scheme narrow the search
 * as RFC 3263 4.1 says.  Returns 0 (cb comes later), -ERANGE (a port or
 * transport no URI may carry), -EINVAL (no DNS name) or -ENOMEM.
 */
int core_fed_locate(struct core *c, const osip_uri_t *u, char *host,
		    size_t cap, dns_locate_cb cb, void *arg,
		    struct dns_query **qp);
/* Copies into out the targets of t[0..n) that are not this cluster (a
 * record naming one of our own services would have us send to
 * ourselves, or to our Redis), nor a [pstn] gateway unless trunk (only
 * a trunk call or its dialog may reach one: the number rules and the
 * caller's identity are applied there); returns how many, and counts
 * the gateways left out in *gw. */
int core_fed_usable(struct core *c, const struct dns_target *t, int n,
		    struct dns_target *out, int trunk, int *gw);

/* Proxies s's request to the [pstn] gateways in turn (core_pstn_ruri
 * gives each one's Request-URI), each located like a next hop, through
 * edge edge_id; answers s when none is left. */
void core_fed_route_trunk(struct core_stx *s, int edge_id);

/* core_pstn.c: numbers to SIP trunks ([pstn]). */
/* Sets c->pstn from the configuration (NULL without gateways or DIDs):
 * 0, or -EINVAL for a gateway that is not a URI of a host, -ENOMEM. */
int core_pstn_new(struct core *c);
/* Accepts NULL. */
void core_pstn_free(struct core_pstn *p);
/* How many gateways: 0 without [pstn]. */
int core_pstn_count(const struct core *c);
/* Gateway i's URI (i below core_pstn_count). */
const osip_uri_t *core_pstn_gw(const struct core *c, int i);
/* For req, to a local domain, whose Request-URI user nobody registered
 * (came in as `in`): 1 when it goes to the gateways, 0 when it is no
 * number or its sender no account of ours (an unknown user), -EACCES
 * for a number a guest asks for. */
int core_pstn_wants(struct core *c, const struct env *in,
		    const osip_message_t *req);
/* The Request-URI for gateway i of a request to ruri: the number, cut
 * and prefixed, at the gateway.  0 with *out the caller's, -ENOENT past
 * the last gateway, -ENOMEM. */
int core_pstn_ruri(struct core *c, int i, const osip_uri_t *ruri,
		   osip_uri_t **out);
/* For req, to a local domain or to us: when its Request-URI's user is
 * one of [pstn] dids, the Request-URI becomes the user it belongs to
 * (1); else 0, or -ENOMEM. */
int core_pstn_did_in(struct core *c, osip_message_t *req);
/* Replaces the identity headers of req with a P-Asserted-Identity of
 * its (authenticated) From, its DID in place of its user when it has
 * one: 0, -EINVAL without a From user, -ENOMEM. */
int core_pstn_identity(struct core *c, osip_message_t *req);
/* Locates the gateways named by a name (dns_free cancels it), so that
 * their addresses are known before the first trunk call. */
void core_pstn_start(struct core *c);
/* Remembers sa as a gateway's address (a trunk call's locate). */
void core_pstn_learn(struct core *c, const union env_sa *sa);
/* Whether sa (its address, any port) is a gateway's: only a trunk call
 * and its dialog may be sent there. */
int core_pstn_is_gateway(const struct core *c, const union env_sa *sa);
/* Whether leg l goes to a gateway's address outside a trunk call (not
 * our Record-Route entry facing a gateway, nor a connection the party
 * opened itself): then nothing may be sent down it. */
int core_pstn_off_trunk(const struct core *c, const struct core_leg *l);
/* core_pstn_reg.c: registering [pstn] username at the carrier.  Sets
 * c->preg when [pstn] register = yes, and its first attempt: 0 or
 * -ENOMEM. */
int core_pstn_reg_new(struct core *c);
/* Stops registering (no Expires 0 goes out); the memory goes once the
 * loop runs.  Accepts NULL. */
void core_pstn_reg_free(struct core_preg *p);
/* 1 while c's registration at the carrier holds, else 0. */
int core_pstn_reg_up(const struct core *c);
/* Edge edge_id is lost: a registration naming it goes again through
 * another edge. */
void core_pstn_reg_edge_lost(struct core *c, int edge_id);
/* r, a response on no transaction of the proxy's: 1 when it answers our
 * REGISTER to the carrier (taken care of; the caller frees r), else 0. */
int core_pstn_reg_response(struct core *c, osip_message_t *r);
/* For req, to a local domain or to us: when we register at the carrier
 * and its Request-URI is our registered contact (the trunk's user at
 * our address), the To's user (the number called) takes its user's
 * place (1); else 0, or -ENOMEM. */
int core_pstn_trunk_in(struct core *c, osip_message_t *req);
/* Whether [pstn] has credentials to answer a gateway's challenge. */
int core_pstn_can_auth(const struct core *c);
/* Adds to req (the request as sent to the gateway, its CSeq already
 * moved) the Authorization or Proxy-Authorization answering the first
 * challenge of resp (a gateway's 401 or 407) we can answer: 0, or
 * -ENOTSUP (none: an algorithm or qop we do not speak), -ENOMEM. */
int core_pstn_authorize(struct core *c, osip_message_t *req,
			const osip_message_t *resp);

/* core_media.c: rtpengine through rtpctl.  The functions returning int
 * give 1 when they took the message (it goes on once rewritten), 0 when
 * no media handling applies, or a negative errno. */
int core_media_timeout_ms(const struct cfg *cfg);
int core_media_has_sdp(const osip_message_t *m, const char **sdp,
		       size_t *len);
int core_media_branch(struct core_ctx *x, osip_message_t *fwd);
int core_media_response(struct core_stx *s, struct core_ctx *x,
			osip_message_t *resp);
int core_media_ack(struct core *c, const struct env *in, osip_message_t *ack,
		   const struct core_leg *out);
void core_media_delete(struct core *c, const osip_message_t *m);
void core_media_call_failed(struct core_stx *s);
void core_media_stx_gone(struct core_stx *s);
/* Puts the SDP of rtpengine's reply r into m: 0 or -EPROTO.  Not
 * static: tests/fuzz/fuzz_core_media.c feeds it hostile replies. */
struct rtpc_result;
int core_media_apply(osip_message_t *m, const struct rtpc_result *r);

/* core_auth.c: digest authentication ([registrar] auth). */
/* Sets up c->auth when auth is on (else logs open mode): 0 or a
 * negative errno, logged. */
int core_auth_new(struct core *c);
/* Drops the requests still waiting for an account; accepts NULL. */
void core_auth_free(struct core_auth *a);
enum core_auth_verdict {
	CORE_AUTH_PASS,		/* go on: needs no credentials */
	CORE_AUTH_PROVEN,	/* go on with in->proven set: its credentials
				   held (our realm's are removed) */
	CORE_AUTH_GUEST,	/* the same, a KwikyKonf guest's */
	CORE_AUTH_ANSWERED,	/* answered (401, 407, 403, 503) or a
				   retransmission absorbed: caller frees req */
	CORE_AUTH_HELD,		/* took req; core_proxy_initial gets it once
				   its account is known */
};
/* Authenticates and authorizes an initial request (not ACK or CANCEL). */
enum core_auth_verdict core_auth_request(struct core *c, const struct env *in,
					 osip_message_t *req);
struct core_scan_reg;
/*
 * A REGISTER read from its text (core_reg_scanned, c->rx set), judged
 * as core_auth_request judges it when nothing is to be waited for: its
 * account cached, its nonce fresh, its user the To's.  Returns 1 when
 * the registration may go on, 0 when it was answered with a 401 (no or
 * wrong credentials, a replay; to_tag goes in its To), -EAGAIN when
 * core_auth_request must decide (an account to look up, a guest, a
 * stale nonce, another's address, credentials only libosip2 reads):
 * what was accepted here it then takes for a retransmission.
 */
int core_auth_scanned(struct core *c, const struct env *in,
		      const struct core_scan_reg *sc, const char *to_tag);
struct auth_store_stats;
/* The account store's counters into *st: 0, or -ENOENT with auth off. */
int core_auth_stats(const struct core *c, struct auth_store_stats *st);

/* core_registrar.c */
void core_registrar(struct core *c, const struct env *in, osip_message_t *req);
/* Handles the REGISTER in e read from its text when it can be (1: done,
 * whatever the outcome), else 0 with nothing changed or answered: the
 * caller parses it. */
int core_reg_scanned(struct core *c, const struct env *in);
/* One Contact of a REGISTER, decoded. */
struct core_reg_contact {
	char uri[LOC_URI_MAX];		/* same size as loc_binding.contact */
	char instance[LOC_INSTANCE_MAX];
	uint32_t reg_id;
	uint16_t q;			/* 0..1000 */
	int granted;			/* seconds: 0, or min..max_expires */
	const struct loc_binding *old;	/* the binding it updates, if any */
};
/* An Expires value (header or parameter): a number >= 0, or -2 for
 * anything else (NULL included). */
long core_reg_number(const char *s);
/* Decodes ct (its URI, expires, q, +sip.instance, reg-id) into *out
 * under cfg's expiry bounds, hdr_expires the Expires header's value
 * (-1: none).  Returns 0, or the status to answer: 400 with *why, or
 * 423.  Not static: tests/fuzz/fuzz_core_contact.c feeds it. */
int core_reg_contact_read(const struct cfg *cfg, osip_contact_t *ct,
			  long hdr_expires, struct core_reg_contact *out,
			  const char **why);

#endif
