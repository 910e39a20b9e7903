/*
 * edge_int.h - the edge's internals, shared by its files and its unit
 * tests.  Nothing outside edge/ includes this.
 *
 * The edge is a pipe between client sockets and cores with no SIP
 * state: a transport (edge_udp.c; TCP/TLS/WS later) hands each message
 * to edge_fwd_input(), which checks it (edge_sip.c), fixes the top Via
 * and wraps it in an envelope for one core (edge_fwd.c).  Envelopes
 * from cores go back out through the transport they name.  Each
 * transport is a struct edge_tp with a send function, so a new one
 * plugs in by filling edge.tp[its env transport].
 */
#ifndef SM_EDGE_INT_H
#define SM_EDGE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/cfg.h"
#include "lib/env.h"

struct link;

/* A piece of a message, pointing into the buffer it was read from. */
struct edge_slice {
	const char *s;
	size_t len;
};

/* ---- edge_sip.c: line scan, Via fix-up, stateless replies ---- */

/* Headers the edge needs to find by itself, long or compact name. */
enum edge_hdr_id {
	EDGE_H_OTHER = 0,
	EDGE_H_VIA,
	EDGE_H_FROM,
	EDGE_H_TO,
	EDGE_H_CALL_ID,
	EDGE_H_CSEQ,
	EDGE_H_MAX_FORWARDS,
	EDGE_H_CONTENT_LENGTH,
	EDGE_H__COUNT
};

struct edge_hdr {
	int id;			/* enum edge_hdr_id */
	struct edge_slice name;	/* as written ("v", "Via") */
	struct edge_slice value;/* trimmed; folded lines stay inside */
	struct edge_slice line;	/* name .. end of value, no final CRLF */
};

struct edge_sip_scan {
	int is_request;
	struct edge_slice method;	/* requests only */
	int status;			/* responses only */
	struct edge_hdr first[EDGE_H__COUNT];	/* first of each; .line.s
						   NULL when absent */
	int bad_line;		/* a header line without a colon */
	int has_end;		/* the blank line ending the headers */
	size_t hdr_off;		/* first header line */
	size_t body_off;	/* first body byte (len when no blank line) */
};

/*
 * Readies libosip2 (parser_init) and sends its error traces to the log
 * at debug level instead of stdout.  Call once before edge_sip_check().
 */
void edge_sip_init(void);

/*
 * Scans buf's start line and headers by hand, without libosip2, so that
 * even a message the parser refuses yields the headers a 400 needs.
 * Accepts CRLF or bare LF, folded lines and compact names.  Returns 0,
 * or -EINVAL when the start line is neither a request nor a response
 * line (sc is then only partly filled).  O(len), no allocation.
 */
int edge_sip_scan(struct edge_sip_scan *sc, const char *buf, size_t len);

/*
 * Iterates the header lines of buf from *pos (start at the offset
 * after the start line's newline: sc->hdr_off).  Returns 1 with *h
 * filled, 0 at the blank line ending the headers (*pos then points at
 * the body), -1 at the end of buf with no blank line.  A line with no
 * colon comes back with an empty name.
 */
int edge_sip_hdr_next(const char *buf, size_t len, size_t *pos,
		      struct edge_hdr *h);

/* The first via-parm of a Via header value, see edge_sip_via_parse(). */
struct edge_via {
	struct edge_slice transport;	/* "UDP" */
	struct edge_slice host;		/* without brackets for IPv6 */
	int port;			/* 0: none written */
	int has_rport;
	struct edge_slice rport;	/* "rport" or "rport=123" */
	struct edge_slice branch;	/* value; len 0 when absent */
	int n_received;
	struct edge_slice received[4];	/* ";received=x" spans, with ';' */
	const char *end;		/* just after the last param */
};

/* Parses the first via-parm of a Via value.  Returns 0 or -EINVAL. */
int edge_sip_via_parse(struct edge_via *v, const char *s, size_t len);

/*
 * Writes buf to out with the top Via fixed for a request from src
 * (RFC 3261 18.2.1, RFC 3581): any received= the sender wrote is
 * dropped; received=<src ip> is added when the sent-by host is not
 * src's address or when the Via has rport; an rport param gets the
 * value <src port> (a value the sender wrote is replaced: only the
 * source port is true).  Everything else is copied byte for byte.
 * Returns the new length, -EINVAL when there is no parsable top Via,
 * -ENOSPC when out is too small.
 */
int edge_sip_via_fix(const char *buf, size_t len,
		     const struct edge_sip_scan *sc, const union env_sa *src,
		     char *out, size_t cap);

/*
 * Checks a scanned message: start line, mandatory headers (Via, From,
 * To, Call-ID, CSeq for requests; Max-Forwards may be absent),
 * Content-Length against the body present, CSeq method, then a full
 * libosip2 parse (parser_init() must have run).  Returns NULL when the
 * message may be forwarded, with *use_len set to the bytes to forward
 * (a datagram's bytes past Content-Length are dropped, RFC 3261 18.3);
 * otherwise the problem as a short phrase for a Warning header.
 */
const char *edge_sip_check(const struct edge_sip_scan *sc, const char *buf,
			   size_t len, size_t *use_len);

/* Whether the request scanned in sc carries what a reply must copy. */
int edge_sip_can_reply(const struct edge_sip_scan *sc);

/*
 * Builds a stateless response to the request in buf (RFC 3261 8.2.6):
 * every Via line, From, To (with a tag added if it has none, derived
 * from Call-ID and top Via so a retransmission gets the same one),
 * Call-ID, CSeq, an optional Warning: 399 naming the problem, and
 * Content-Length: 0.  Returns the length, -EINVAL when a header to
 * copy is missing, -ENOSPC when out is too small.
 */
int edge_sip_reply_build(char *out, size_t cap, const char *buf, size_t len,
			 const struct edge_sip_scan *sc, int code,
			 const char *reason, const char *warning);

/*
 * Where a response to a request from src goes (RFC 3261 18.2.2 with
 * RFC 3581): to src when the top Via of the request has rport or no
 * parsable sent-by port, else to src's address at the sent-by port.
 */
void edge_sip_reply_dest(const struct edge_sip_scan *sc,
			 const union env_sa *src, union env_sa *dst);

/* ---- transports ---- */

struct edge_tp;

/*
 * Sends one message to a client.  conn_id is 0 for datagrams.
 * Returns 0, -EAGAIN when the socket cannot take it now, or another
 * negative errno.  Never blocks.
 */
typedef int (*edge_tp_send_cb)(struct edge_tp *tp, const union env_sa *dst,
			       uint32_t conn_id, const char *buf, size_t len);
/* Starts closing the transport; memory goes in a close callback. */
typedef void (*edge_tp_free_cb)(struct edge_tp *tp);

struct edge_tp {
	int transport;		/* enum env_transport */
	union env_sa local;	/* the bound address */
	edge_tp_send_cb send;
	edge_tp_free_cb free;
};

struct edge;

/* edge_udp.c: binds me->udp and feeds datagrams to edge_fwd_input(). */
int edge_udp_new(struct edge_tp **out, struct edge *e);

/* ---- edge_fwd.c: transports <-> cores ---- */

/* Every counter is a uint64_t so edge_stats_log() can walk them. */
struct edge_stats {
	uint64_t received;	/* messages from clients */
	uint64_t keepalives;
	uint64_t oversized;
	uint64_t malformed;	/* dropped: could not even answer 400 */
	uint64_t sent_400;
	uint64_t sent_503;
	uint64_t fwd_requests;
	uint64_t fwd_responses;
	uint64_t from_cores;	/* envelopes received */
	uint64_t sent;		/* messages from cores sent to clients */
	uint64_t drop_no_core;	/* requests no core would take */
	uint64_t drop_resp_foreign;	/* response branch not ours */
	uint64_t drop_resp_core;	/* its core unreachable */
	uint64_t drop_bad_env;	/* undecodable envelope from a core */
	uint64_t drop_no_tp;	/* envelope for a transport we lack */
	uint64_t drop_send_full;	/* socket EAGAIN */
	uint64_t drop_send_err;
	uint64_t drop_reply;	/* a 400/503 we could not send */
};

/* Allows a burst of log lines per second, then stays quiet. */
struct edge_ratelimit {
	uint64_t sec;
	unsigned n;
	uint64_t suppressed;
};

struct edge {
	uv_loop_t *loop;
	const struct cfg *cfg;
	const struct cfg_edge *me;
	struct link *link;
	int core_ids[CFG_MAX_CORES];
	int n_cores;
	struct edge_tp *tp[ENV_WSS + 1];	/* by enum env_transport */
	struct edge_stats st;
	struct edge_ratelimit rl;
	char *msg_buf;		/* the Via-fixed message */
	char *env_buf;		/* the envelope around it */
	char *reply_buf;	/* a 400/503 */
	size_t buf_cap;		/* of each of the three */
};

/*
 * Sets up e for cfg's edge me (buffers, core list; no sockets).
 * Returns 0 or -ENOMEM; edge_fini() undoes it.
 */
int edge_init(struct edge *e, uv_loop_t *loop, const struct cfg *cfg,
	      const struct cfg_edge *me);
void edge_fini(struct edge *e);

/*
 * One message from a client on tp: counts it, drops keepalives and
 * oversized or malformed ones (answering 400 where it can), fixes the
 * Via of a request and sends it to its core, or sends a response to
 * the core named in its branch.  buf is borrowed for the call only.
 */
void edge_fwd_input(struct edge *e, struct edge_tp *tp, uint32_t conn_id,
		    const union env_sa *src, const char *buf, size_t len);

/* link_recv_cb for envelopes from cores; arg is the struct edge. */
void edge_fwd_from_core(void *arg, const char *buf, size_t len);

/* Logs every counter at notice level. */
void edge_stats_log(const struct edge *e);

/* Whether a line may be logged now (now in ms); counts the others. */
int edge_ratelimit_allow(struct edge_ratelimit *rl, uint64_t now_ms);

#endif
