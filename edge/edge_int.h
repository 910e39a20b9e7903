/*
 * edge_int.h - the edge's internals, shared by its files and its unit
 * tests.  Nothing outside edge/ includes this.
 *
 * The edge is a pipe between client sockets and cores with no SIP
 * state: a transport (edge_udp.c, edge_stream.c for TCP/TLS, edge_ws.c
 * for WS/WSS) hands each message to edge_fwd_input(), which checks it
 * (edge_sip.c), fixes the top Via and wraps it in an envelope for one
 * core (edge_fwd.c).  Envelopes from cores go back out through the
 * connection (conn_id) or the transport they name.  Each transport is
 * a struct edge_tp with a send function, so a new one plugs in by
 * filling edge.tp[its env transport].  Its only state is the table of
 * open connections (edge_conn.c).
 */
#ifndef SM_EDGE_INT_H
#define SM_EDGE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/types.h>
#include <uv.h>

#include "lib/cfg.h"
#include "lib/env.h"
#include "lib/hash.h"
#include "lib/infra.h"
#include "lib/htab.h"
#include "lib/key.h"
#include "lib/list.h"
#include "lib/prom.h"

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

struct edge_sip_scan {
	int is_request;
	struct edge_slice method;	/* requests only */
	int status;			/* responses only */
	struct edge_hdr first[EDGE_H__COUNT];	/* first of each; .line.s
						   NULL when absent */
	int bad_line;		/* a header line without a colon */
	int cl_conflict;	/* a later Content-Length says otherwise */
	int has_end;		/* the blank line ending the headers */
	size_t hdr_off;		/* first header line */
	size_t body_off;	/* first body byte (len when no blank line) */
	int via_ok;		/* via holds the top Via (edge_sip_check) */
	struct edge_via via;
};

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

/*
 * The head of a request an ICMP error quotes (RFC 1812 4.3.2.3: as much
 * of the datagram as fits in 576 bytes, so cut anywhere): writes its
 * request line and its top Via, both whole, then the empty line, into
 * out: a request that names the client transaction (its branch) and
 * that libosip2 parses.  Returns the length written, -EINVAL when buf
 * is no request or its top Via is cut, -ENOSPC when out is too small.
 */
int edge_sip_quote_head(const char *buf, size_t len, char *out, size_t cap);


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
 * Content-Length (one value, at most the body present), CSeq method,
 * the top Via (kept in sc->via for edge_sip_via_fix).  What libosip2
 * would refuse beyond that is the core's to find (ENV_REJECT).
 * Returns NULL when the message may be forwarded, with *use_len set to
 * the bytes to forward (a datagram's bytes past Content-Length are
 * dropped, RFC 3261 18.3); otherwise the problem as a short phrase for
 * a Warning header.
 */
const char *edge_sip_check(struct edge_sip_scan *sc, size_t len,
			   size_t *use_len);

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
 * The name a TLS connection opened for the message in buf must prove
 * (RFC 5922 4, 7): for a request the host of the URI the next hop was
 * found from (RFC 3263: the top Route, else the Request-URI; the host,
 * not a maddr), for a response the sent-by host of its top Via (RFC
 * 3261 18.2.2).  A name or a numeric address, IPv6 without brackets,
 * NUL-terminated into out.  Returns 0, -EINVAL when there is no such
 * URI or host, -ENOSPC when out is too small.
 */
int edge_sip_next_hop_host(const struct edge_sip_scan *sc, const char *buf,
			   size_t len, char *out, size_t cap);

/* ---- transports ---- */

struct edge_tp;

/*
 * Sends one message to a client.  conn_id is 0 for datagrams.
 * Returns 0, -EAGAIN when the socket cannot take it now, or another
 * negative errno.  Never blocks.
 */
typedef int (*edge_tp_send_cb)(struct edge_tp *tp, const union env_sa *dst,
			       uint64_t conn_id, const char *buf, size_t len);
/* Starts closing the transport; memory goes in a close callback. */
typedef void (*edge_tp_free_cb)(struct edge_tp *tp);
/* Stops accepting connections (a draining edge); what is open stays.
 * Idempotent; free still runs after. */
typedef void (*edge_tp_unlisten_cb)(struct edge_tp *tp);
/*
 * Re-reads tls_cert, tls_key (and tls_ca where the transport dials) for
 * the handshakes that follow; open connections keep what they
 * negotiated.  Returns 0, or a negative errno (logged) with the
 * certificate in use kept: a half-copied file never replaces it.
 */
typedef int (*edge_tp_reload_cb)(struct edge_tp *tp);

struct edge_tp {
	int transport;		/* enum env_transport */
	union env_sa local;	/* the bound address */
	edge_tp_send_cb send;
	edge_tp_free_cb free;
	edge_tp_reload_cb reload;	/* secure transports only, else NULL */
	edge_tp_unlisten_cb unlisten;	/* listening ones only, else NULL */
};

struct edge;

/*
 * The transports.  Each row of ENV_TRANSPORTS (lib/env.h) names the
 * file that runs it, edge_<impl>.c, and its opener:
 *   int edge_<impl>_new(struct edge_tp **out, struct edge *e,
 *                       int transport);
 * which listens on me->listen[transport], writes *out on success only
 * and returns 0, -ENOENT when the transport is off (no address, or a
 * secure one without tls_cert/tls_key), another negative errno (logged,
 * nothing left open) when it cannot listen.
 */
typedef int (*edge_tp_new_cb)(struct edge_tp **out, struct edge *e,
			      int transport);

/* edge_udp.c: datagrams, fed to edge_fwd_input(). */
int edge_udp_new(struct edge_tp **out, struct edge *e, int transport);

/*
 * edge_stream.c: SIP over a byte stream (RFC 3261 18.3), TCP or, for
 * a secure transport, TLS with me->tls_cert/tls_key; peers it dials
 * must chain to me->tls_ca and prove the next hop's host (RFC 5922).
 * Fails (logged) when a certificate, key or tls_ca does not load.
 */
int edge_stream_new(struct edge_tp **out, struct edge *e, int transport);

/*
 * edge_stream.c: new server and client TLS contexts from me's tls_cert,
 * tls_key and tls_ca, checked to load and to match (the caller owns
 * both), or a negative errno, logged, with *srv and *cli untouched.
 * The WSS listener checks a reload with it before libwebsockets reads
 * the same files.
 */
int edge_tls_ctx_new(SSL_CTX **srv, SSL_CTX **cli, const struct cfg_edge *me);

/*
 * edge_ws.c: SIP over WebSocket (RFC 7118) with libwebsockets on the
 * edge's libuv loop, one HTTP(S) listener per transport (WS, WSS) that
 * also serves me->http_root.
 */
int edge_ws_new(struct edge_tp **out, struct edge *e, int transport);

/*
 * edge_ws.c: whether s[0..len) is UTF-8 as RFC 3629 defines it: no
 * overlong forms, no surrogates (U+D800..U+DFFF), nothing past
 * U+10FFFF, no truncated sequence.  Decides a WebSocket frame's type
 * both ways (RFC 6455 8.1).  O(len), no allocation; len 0 is valid.
 */
int edge_utf8_valid(const unsigned char *s, size_t len);

/*
 * edge_ws.c: whether a WebSocket upgrade whose Origin header is origin
 * (NUL-terminated; a browser's) may go on under allow, the [edge]
 * ws_origins value: origin is one of its entries (spaces or commas
 * between them, no case), or allow holds "*", or, allow empty, origin
 * is "http://" or "https://" followed by host (the upgrade's Host
 * header; NULL: none): a page from the edge itself.
 */
int edge_ws_origin_ok(const char *allow, const char *origin,
		      const char *host);

/* edge_ws.c: whether the Sec-WebSocket-Protocol value list (comma
 * separated tokens, NULL: no header) offers "sip" (RFC 7118 4.1). */
int edge_ws_offers_sip(const char *list);

/* ---- edge_limit.c: per-source rate limits shared by a host's edges ---- */

/*
 * What one host holds, as 16 bytes: an IPv4 address (also when
 * v4-mapped), or the /64 of an IPv6 one (a host gets a /64 and picks
 * from it freely; the last byte then says so, so the two never meet).
 * The key of the per-source rate limits, guest limits and the per-/64
 * connection cap.
 */
void edge_source_key(const union env_sa *sa, unsigned char net[16]);

enum edge_limit_kind {
	EDGE_LIMIT_REQ = 0,	/* requests, any transport */
	EDGE_LIMIT_CONN,	/* new inbound connections */
	EDGE_LIMIT_REPLY,	/* 503s to requests over EDGE_LIMIT_REQ */
	EDGE_LIMIT__COUNT
};

/* The kinds whose refusals start a blocking period that is logged. */
#define EDGE_LIMIT_LOGGED 2

enum edge_limit_verdict {
	EDGE_LIMIT_PASS = 0,
	EDGE_LIMIT_DROP,	/* over the rate */
	EDGE_LIMIT_DROP_FIRST,	/* over the rate, first refusal of a
				   blocking period on this host: log it */
	EDGE_LIMIT_FULL,	/* no slot free: passed, unlimited */
};

#define EDGE_LIMIT_SLOTS	65536	/* a power of two */
#define EDGE_LIMIT_PROBE	8	/* slots a source may live in */
/* A refusal this long after the source's previous one starts a new
 * blocking period (and a new log line). */
#define EDGE_LIMIT_QUIET_MS	10000

/* One source in the shared table.  Every field is read and written
 * with atomics only: no lock, so a killed edge leaves nothing held. */
struct edge_limit_slot {
	uint64_t tag;		/* SipHash of the source key; 0: free */
	uint64_t tat_us[EDGE_LIMIT__COUNT];	/* GCRA theoretical arrival
						   time, CLOCK_MONOTONIC */
	uint64_t refused_ms[EDGE_LIMIT_LOGGED];	/* last refusal; 0: none */
};

struct edge_limit_rate {
	uint64_t every_us;	/* 0: this kind is not limited */
	uint64_t slack_us;	/* (burst - 1) * every_us */
};

/* The per-process handle on the table. */
struct edge_limit {
	struct edge_limit_slot *slot;	/* EDGE_LIMIT_SLOTS of them */
	size_t size;
	int shared;		/* a POSIX shm mapping, else private */
	struct hash_key key;	/* the host's: every edge finds a source in
				   the same slot, no sender can aim at one */
	struct edge_limit_rate rate[EDGE_LIMIT__COUNT];
};

/*
 * Maps the table named name (a POSIX shm name; created zeroed when
 * missing, never removed: it holds only soft state), or, when name is
 * NULL or the segment cannot be had (logged), a private table that
 * limits this edge alone.  key: the host's hashing key.  All kinds
 * start unlimited.  Returns 0 or -ENOMEM.
 */
int edge_limit_open(struct edge_limit *l, const char *name,
		    const struct hash_key *key);
/* Unmaps or frees; accepts a zeroed l. */
void edge_limit_close(struct edge_limit *l);
/* rate per second (0: kind off) with bursts of burst (at least 1). */
void edge_limit_set(struct edge_limit *l, int kind, int rate, int burst);

/*
 * Counts one event of kind from src at now_us (CLOCK_MONOTONIC, the
 * same clock in every process: uv_hrtime() / 1000).  Returns an enum
 * edge_limit_verdict; *wait_us (may be NULL) gets the time until src
 * may send again when refused.  Lock-free: a few atomic loads and one
 * compare-and-swap; two edges racing on one new source may give it two
 * slots for a moment, which only makes its limit looser, never
 * another source's tighter.
 */
int edge_limit_check(struct edge_limit *l, int kind, const union env_sa *src,
		     uint64_t now_us, uint64_t *wait_us);

/* ---- edge_guest.c: KwikyKonf guest credentials over HTTP ---- */

#define EDGE_GUEST_PATH		"/kk/guest"
#define EDGE_GUEST_BURST	20	/* answers at once per source */
#define EDGE_GUEST_EVERY_MS	2000	/* then one per this */
#define EDGE_GUEST_WAYS		4
#define EDGE_GUEST_SETS		1024

/* One source (IPv4 address or IPv6 /64) and its GCRA arrival time. */
struct edge_guest_slot {
	unsigned char net[16];
	uint64_t tat_ms;	/* allowed again in full once now reaches it */
	int used;
};

/* The process's minting state: the guest key and the per-source
 * limit, a fixed table (no allocation per request). */
struct edge_guest {
	unsigned char key[KEY_LEN];	/* key_load(KEY_USE_GUEST) */
	uint64_t seed;			/* keys the source hash */
	int ttl_s;
	struct edge_guest_slot slot[EDGE_GUEST_SETS][EDGE_GUEST_WAYS];
};

/*
 * Loads the guest key of cfg's cluster (lib/key.h) and a random hash
 * seed into g; credentials last ttl_s.  Returns 0, or a negative errno
 * (logged).  edge_guest_fini() wipes the key.
 */
int edge_guest_init(struct edge_guest *g, const struct cfg *cfg, int ttl_s);
void edge_guest_fini(struct edge_guest *g);

/*
 * Counts one answer for src at now_ms.  Returns 0 when it may be given,
 * else the milliseconds until one may (the source is over its burst).
 */
int64_t edge_guest_allow(struct edge_guest *g, const union env_sa *src,
			 uint64_t now_ms);

/*
 * The answer to a request from src for room (the "room" argument,
 * NUL-terminated; NULL when absent): writes a JSON body into body
 * (cap bytes) and returns the HTTP status: 200 with {user, username,
 * password, expires, ttl} (a fresh guest of room, valid ttl_s from
 * now_s), 400 for a bad room, 429 over the source's limit (*retry_ms
 * set), 500 when minting failed; -ENOSPC when cap is too small (256
 * bytes suffice).  A 400 does not count against the limit.
 */
int edge_guest_answer(struct edge_guest *g, const union env_sa *src,
		      const char *room, int64_t now_s, uint64_t now_ms,
		      char *body, size_t cap, int64_t *retry_ms);

/*
 * edge_udp.c, for every transport: the address e listens on for
 * transport (its default port when the address names none) into *sa.
 * Returns 0, -ENOENT when the transport is off (logged when only the
 * certificate is missing), -EINVAL (logged) when the address is not a
 * numeric ip[:port].
 */
int edge_tp_addr(const struct edge *e, int transport, union env_sa *sa);

/*
 * edge_udp.c, for every socket transport: a non-blocking, close-on-exec
 * socket of type (SOCK_DGRAM, SOCK_STREAM) bound to the address of
 * edge_tp_addr(), IPv6 only for an IPv6 address, with SO_REUSEADDR
 * when asked, SO_REUSEPORT when configured, and a stream socket with
 * TCP_NODELAY (its accepted sockets inherit it) and TCP_DEFER_ACCEPT
 * of defer_accept_s.  Returns the fd, or
 * edge_tp_addr()'s error, or another negative errno (logged); nothing
 * is left open on error.
 */
int edge_tp_socket(const struct edge *e, int transport, int type,
		   int reuseaddr);

/* ---- edge_stream.c: framing of a byte stream (RFC 3261 18.3) ---- */

enum edge_frame_kind {
	EDGE_FRAME_MORE = 0,	/* need more bytes */
	EDGE_FRAME_MSG,		/* a whole message of len bytes at buf */
	EDGE_FRAME_PING,	/* CRLFCRLF keepalive (RFC 5626 3.5.1): pong */
	EDGE_FRAME_SKIP,	/* stray CR/LF bytes before a message */
};

struct edge_frame {
	int kind;		/* enum edge_frame_kind */
	size_t len;		/* bytes to consume from buf */
};

/*
 * Finds the first frame at buf[0..len): a message delimited by its
 * headers' end and Content-Length, or keepalive CRLFs.  *scan carries
 * the header-end search across calls on a growing buffer (start at 0,
 * reset to 0 once a frame is consumed) so split reads cost O(total).
 * Returns 0 with *f filled, -EMSGSIZE when the message is or would be
 * larger than max, -EBADMSG when Content-Length is missing, not a
 * number or given twice with different values (a stream cannot be
 * resynchronised after that); *why then names the problem.
 */
int edge_stream_frame(const char *buf, size_t len, size_t max, size_t *scan,
		      struct edge_frame *f, const char **why);

/* ---- edge_conn.c: the table of open connections ---- */

enum edge_conn_state {
	EDGE_CONN_PENDING = 0,	/* connect, TLS handshake or WebSocket
				   upgrade running, or no SIP message yet */
	EDGE_CONN_OPEN,		/* carries SIP */
};

struct edge_conn;

struct edge_conn_ops {
	/*
	 * Queues one SIP message for the peer (WebSocket: one text
	 * frame, or binary when it is not UTF-8).  Returns 0, -ENOBUFS when the connection's bounded
	 * write queue is full (a slow reader: the caller closes it), or
	 * another negative errno.  Never blocks.
	 */
	int (*send)(struct edge_conn *c, const char *buf, size_t len);
	/*
	 * Starts closing: removes c from the table at once (through
	 * edge_conn_closed()) and frees it later, so c stays valid until
	 * the caller returns to the loop.  Idempotent.
	 */
	void (*close)(struct edge_conn *c, const char *why);
	/*
	 * Asks the peer for a sign of life (a WebSocket ping: its pong
	 * comes back as activity); NULL when the transport has none
	 * (TCP and TLS clients send CRLF keepalives themselves).
	 */
	void (*ping)(struct edge_conn *c);
};

struct edge_conn_ip;

struct edge_conn {
	uint64_t id;		/* ENV_CONN_ID(table's incarnation, serial):
				   never 0, never reused by this process nor
				   by a later start of this edge */
	uint8_t transport;	/* enum env_transport */
	uint8_t state;		/* enum edge_conn_state */
	uint8_t outbound;	/* we connected; exempt from the per-IP cap */
	uint8_t used;		/* carried SIP: cores hear when it closes */
	uint8_t in_table;
	union env_sa peer;
	union env_sa local;
	uint64_t last_ms;	/* PENDING: created; OPEN: last activity */
	const char *tls_names;	/* TLS: the names the peer's certificate
				   proved (env.h peer names); NULL: none.
				   Owned by the transport */
	uint64_t msg_ms;	/* OPEN: last SIP message (keepalives,
				   pongs not counted) */
	uint64_t ping_ms;	/* OPEN, ops->ping: last activity, or the
				   ping sent since */
	uint8_t pinged;		/* a ping is out, unanswered */
	const struct edge_conn_ops *ops;
	/* table links */
	struct htab_node by_id, by_dst;
	struct list_node link;	/* in the list of its state */
	struct list_node msg_link;	/* OPEN: in the list by msg_ms */
	struct list_node ping_link;	/* OPEN, ops->ping: by ping_ms */
	struct edge_conn_ip *ip, *net;	/* inbound: its address's and its
					   /64's counters */
};

/*
 * Connections by id, by peer address (to reuse one for an outbound
 * request) and counted per source IP and per source /64, plus one list
 * per state in the order of last activity and one of open connections
 * in the order of their last SIP message, so the sweep looks only at
 * the oldest.  Every operation is O(1) on average.
 */
struct edge_conn_table {
	struct htab by_id;	/* by_id.n: connections in the table */
	struct htab by_dst, by_ip;	/* by_ip: addresses and /64s */
	struct list_node list[2];	/* by enum edge_conn_state */
	struct list_node by_msg;	/* OPEN, by msg_ms */
	struct list_node by_ping;	/* OPEN with ops->ping, by ping_ms */
	uint32_t incarnation;	/* the high half of every id; 0 after
				   init, edge_init() draws one */
	uint32_t next_serial;
	int max_per_ip;		/* 0: no cap */
	int max_per_net;	/* per edge_source_key(); 0: no cap */
	int max_in;		/* inbound connections; 0: no cap */
	int n_in;
};

/* An empty table; its hash tables grow as connections come.  The
 * per-/64 and total caps (max_per_net, max_in) start off; set them
 * after. */
void edge_conn_table_init(struct edge_conn_table *t, int max_per_ip);

/*
 * A fresh incarnation into *out: 32 random bits (getrandom), never 0.
 * Random rather than a counter kept on disk: nothing to lose with a
 * wiped run_dir or a moved host, while Redis keeps the bindings of
 * every earlier start.  Two starts of one edge share a value with odds
 * 2^-32, and even then a stale binding reaches a connection only if
 * its serial is taken too.  Returns 0 or a negative errno.
 */
int edge_incarnation_new(uint32_t *out);
/* Frees the buckets and the per-IP counters; the connections are the
 * transports' to free. */
void edge_conn_table_fini(struct edge_conn_table *t);

/*
 * Adds c (transport, peer, local, outbound and ops filled) as PENDING
 * at now_ms and gives it a fresh id: the table's incarnation and the
 * next serial not in use.  Returns 0, -EMFILE when c's source IP
 * already holds max_per_ip inbound connections or its /64 max_per_net,
 * -ENFILE when the table holds max_in inbound ones, -ENOMEM.
 */
int edge_conn_add(struct edge_conn_table *t, struct edge_conn *c,
		  uint64_t now_ms);
/* PENDING -> OPEN at now_ms (which counts as its last message). */
void edge_conn_open(struct edge_conn_table *t, struct edge_conn *c,
		    uint64_t now_ms);
/* A SIP message on c: opens it when PENDING (an inbound stream's
 * handshake ends with its first message), then records activity and
 * the message. */
void edge_conn_msg(struct edge_conn_table *t, struct edge_conn *c,
		   uint64_t now_ms);
/* Records activity on an OPEN connection (no-op for PENDING: its
 * deadline runs from its creation). */
void edge_conn_touch(struct edge_conn_table *t, struct edge_conn *c,
		     uint64_t now_ms);
/* Removes c; a no-op when it is not in the table. */
void edge_conn_del(struct edge_conn_table *t, struct edge_conn *c);
/* The connection with that id, or NULL: an id of another incarnation
 * (a dead process's) finds nothing. */
struct edge_conn *edge_conn_find(const struct edge_conn_table *t,
				 uint64_t id);
/* An open or pending connection of that transport to exactly dst. */
struct edge_conn *edge_conn_find_dst(const struct edge_conn_table *t,
				     int transport, const union env_sa *dst);
/* The next such connection after `after` (one edge_conn_find_dst()
 * or this returned, still in the table), or NULL: several TLS
 * connections to one address may each have proved a different name.
 * No connection may be added between the calls (the table may grow
 * and reorder its chains). */
struct edge_conn *edge_conn_find_dst_after(const struct edge_conn_table *t,
					   int transport,
					   const union env_sa *dst,
					   const struct edge_conn *after);
/* Inbound connections from sa's IP (any port). */
int edge_conn_ip_count(const struct edge_conn_table *t,
		       const union env_sa *sa);
/*
 * The oldest connection past a deadline (PENDING: pending_ms since
 * creation; OPEN: idle_ms without activity or msg_idle_ms without a
 * SIP message, 0 = never), or NULL.  *why (may be NULL) names the
 * deadline.
 */
struct edge_conn *edge_conn_expired(const struct edge_conn_table *t,
				    uint64_t now_ms, uint64_t pending_ms,
				    uint64_t idle_ms, uint64_t msg_idle_ms,
				    const char **why);
/*
 * Pings: the open connections that can be pinged are kept in the order
 * of their last activity, so a round looks only at those silent for
 * every_ms.  Each of them not yet pinged gets ops->ping and goes to the
 * back (at most max per round); the first one already pinged and silent
 * every_ms since is returned, for the caller to close (then call again).
 * NULL when none is.  O(pings sent), not O(open connections): the
 * timer list of libwebsockets' own keepalive policy walked every
 * connection on each message.
 */
struct edge_conn *edge_conn_ping_round(struct edge_conn_table *t,
				       uint64_t now_ms, uint64_t every_ms,
				       int max);

/*
 * An inbound connection c (transport, peer, local, ops filled) asks in:
 * checks the source's connection rate (EDGE_LIMIT_CONN) and adds c to
 * e's table; counts and logs a refusal (once per blocking period for a
 * rate, rate-limited for caps).  Returns 0 (c is in the table, PENDING)
 * or a negative errno: the transport closes the socket.
 */
int edge_conn_accept(struct edge *e, struct edge_conn *c);

/* ---- edge_fwd.c: transports <-> cores ---- */

/*
 * The edge's counters, one row each (X-macro): field, metric (after
 * "sipmesh_edge_", lib/prom.h) and its HELP.  The rows make the fields
 * of struct edge_stats, the names edge_stats_log() prints (the field's)
 * and the metrics, so a counter cannot be added to one and forgotten
 * in another.  Rows of one metric family stay together; the first
 * carries its HELP.
 */
#define EDGE_STATS(X) \
	X(received, "messages_received_total", \
	  "SIP messages read from clients, keepalives included") \
	X(keepalives, "keepalives_total", "Keepalives (CRLF, empty frames)") \
	X(fwd_requests, "forwarded_total{kind=\"request\"}", \
	  "Messages forwarded to cores, by kind") \
	X(fwd_responses, "forwarded_total{kind=\"response\"}", "") \
	X(from_cores, "envelopes_from_cores_total", "Envelopes from cores") \
	X(sent, "messages_sent_total", "Messages from cores sent to clients") \
	X(sent_400, "replies_total{code=\"400\"}", \
	  "Responses the edge makes up itself, by code") \
	X(sent_503, "replies_total{code=\"503\"}", "") \
	X(oversized, "drops_total{reason=\"oversized\"}", \
	  "Messages dropped, by reason") \
	X(malformed, "drops_total{reason=\"malformed\"}", "") \
		/* could not even answer 400 */ \
	X(drop_no_core, "drops_total{reason=\"no_core\"}", "") \
		/* requests no core would take */ \
	X(drop_resp_foreign, "drops_total{reason=\"response_foreign\"}", "") \
		/* response whose top Via branch no core of this cluster \
		   minted for its Call-ID: dropped before the full parse */ \
	X(drop_resp_core, "drops_total{reason=\"response_core_gone\"}", "") \
		/* no core took it */ \
	X(drop_bad_env, "drops_total{reason=\"bad_envelope\"}", "") \
		/* undecodable envelope from a core */ \
	X(drop_no_tp, "drops_total{reason=\"no_transport\"}", "") \
		/* envelope for a transport we lack */ \
	X(drop_send_full, "drops_total{reason=\"send_full\"}", "") \
		/* socket EAGAIN */ \
	X(drop_send_err, "drops_total{reason=\"send_error\"}", "") \
	X(drop_reply, "drops_total{reason=\"reply_unsent\"}", "") \
		/* a 400/503 we could not send */ \
	X(drop_reply_self, "drops_total{reason=\"reply_to_self\"}", "") \
		/* a 400/503 aimed at the cluster's own address (a \
		   spoofed source or Via) */ \
	X(drop_conn_gone, "drops_total{reason=\"connection_gone\"}", "") \
		/* core message for a closed conn */ \
	X(drop_ws_no_conn, "drops_total{reason=\"ws_no_connection\"}", "") \
		/* WS message without a conn_id */ \
	X(limited, "rate_limited_total{what=\"requests\"}", \
	  "Refused over a per-source rate, by what") \
		/* requests dropped over req_rate */ \
	X(conns_limited, "rate_limited_total{what=\"connections\"}", "") \
		/* over conn_rate: refused at accept */ \
	X(guest_limited, "rate_limited_total{what=\"guest_credentials\"}", \
	  "") /* refused 429: over the per-source rate */ \
	X(limited_503, "rate_limited_503_total", \
	  "Rate-limited UDP requests answered 503") \
	X(limit_full, "rate_limit_table_full_total", \
	  "Requests passed unlimited: no slot free in the rate table") \
	X(conns_opened, "connections_opened_total", \
	  "Stream and WebSocket connections accepted or dialled") \
	X(conns_closed, "connections_closed_total", \
	  "Stream and WebSocket connections closed") \
	X(conns_refused, "connections_refused_total{reason=\"per_source\"}", \
	  "Inbound connections closed at accept, by reason") \
		/* over max_conns_per_ip or _per_net */ \
	X(conns_full, "connections_refused_total{reason=\"max_conns\"}", "") \
	X(conns_no_fd, "connections_refused_total{reason=\"no_fd\"}", "") \
		/* accept failed: out of file descriptors, listener rests */ \
	X(conns_bad, "connections_dropped_total{reason=\"bad_input\"}", \
	  "Connections the edge closed, by reason") \
		/* a bad frame, size, content */ \
	X(conns_slow, "connections_dropped_total{reason=\"slow_reader\"}", "") \
		/* write queue full */ \
	X(conns_idle, "connections_dropped_total{reason=\"idle\"}", "") \
		/* idle or handshake timeout */ \
	X(conns_drained, "connections_dropped_total{reason=\"drained\"}", "") \
		/* closed by a drain: asked to move */ \
	X(ws_refused, "ws_upgrades_refused_total", \
	  "WebSocket upgrades refused: foreign Origin, no subprotocol sip") \
	X(ws_binary_out, "ws_binary_frames_sent_total", \
	  "Messages sent as binary WebSocket frames: not UTF-8") \
	X(guest_minted, "guest_credentials_total{result=\"minted\"}", \
	  "KwikyKonf guest credential requests, by result") \
	X(guest_bad, "guest_credentials_total{result=\"bad_request\"}", "") \
		/* refused 400/405: bad room or method */ \
	X(conn_closed_sent, "connection_closed_notices_total", \
	  "Connection-closed notices sent to cores") \
	X(tls_peer_refused, "tls_peers_refused_total", \
	  "Outbound TLS: certificate not trusted or not for the host") \
	X(undelivered, "undelivered_total", \
	  "Requests handed back: their outbound connection never opened") \
	X(icmp_unreachable, "icmp_unreachable_total", \
	  "ICMP port/host unreachable for a datagram sent") \
	X(hep_sent, "hep_packets_total{result=\"sent\"}", \
	  "HEP v3 packets to the capture collector, by result") \
	X(hep_dropped, "hep_packets_total{result=\"dropped\"}", "") \
		/* not sent: socket full, too big */

struct edge_stats {
#define EDGE_STAT_FIELD(f, metric, help) uint64_t f;
	EDGE_STATS(EDGE_STAT_FIELD)
#undef EDGE_STAT_FIELD
};

/* ---- edge_hep.c: HEP v3 capture to a Homer collector ---- */

/* The largest HEP packet: its length field is 16 bits. */
#define EDGE_HEP_MAX 65535

/* One captured message, as edge_hep_encode() writes it. */
struct edge_hep_pkt {
	const union env_sa *src, *dst;	/* the same family */
	unsigned ip_proto;		/* 17 UDP, 6 the stream transports */
	uint64_t sec;
	uint32_t usec;
	uint32_t agent_id;
	const char *auth;		/* auth key chunk; auth_len 0: none */
	size_t auth_len;
	const char *corr;		/* correlation id (Call-ID); 0: none */
	size_t corr_len;
	const char *msg;
	size_t len;
};

struct edge_hep {
	int fd;			/* UDP socket to dst; -1: capture off */
	union env_sa dst;
	uint32_t agent_id;
	const char *auth;	/* the config's hep_password */
	unsigned char *buf;	/* EDGE_HEP_MAX bytes, owned */
};

/*
 * Writes p as one HEP v3 packet into out.  Returns its length,
 * -EMSGSIZE when it would pass cap or 65535 bytes, -EINVAL when src
 * and dst differ in family.
 */
int edge_hep_encode(unsigned char *out, size_t cap,
		    const struct edge_hep_pkt *p);

/* Opens the socket to me->hep, or leaves capture off when it is empty.
 * Returns 0, -EINVAL (not a numeric ip:port; logged) or -errno. */
int edge_hep_open(struct edge_hep *h, const struct cfg_edge *me);
void edge_hep_close(struct edge_hep *h);

/*
 * Sends one message to the collector, if capture is on: msg went from
 * src to dst on transport (after TLS, as WebSocket payload).  Never
 * blocks: what the socket refuses is counted (hep_dropped).
 */
void edge_hep_capture(struct edge *e, int transport, const union env_sa *src,
		      const union env_sa *dst, const char *msg, size_t len);

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
	int core_ids[CFG_MAX_CORES];	/* the active cores, then the
					   standby ones ([core N] standby) */
	int n_cores, n_active;
	struct edge_tp *tp[ENV_TP_END];	/* by enum env_transport */
	struct edge_conn_table conns;
	uv_timer_t sweep;	/* idle and handshake timeouts */
	int sweeping;		/* sweep and drain timers initialised */
	uv_timer_t drain;	/* a drain's closing rounds */
	int drain_per_round;	/* 0: not draining */
	struct edge_stats st;
	struct prom_sip sip;	/* requests by method, responses by class */
	struct hsrv *metrics;	/* GET /metrics (edge_metrics.c); NULL: off */
	struct hsrv *ctl;	/* the control socket (lib/ops.h) */
	struct edge_ratelimit rl;
	struct edge_limit limit;	/* per-source rates, host-wide */
	char *msg_buf;		/* the Via-fixed message */
	char *env_buf;		/* the envelope around it */
	char *reply_buf;	/* a 400/503 */
	size_t buf_cap;		/* of each of the three */
	struct infra infra;	/* never the destination of a reply */
	struct hash_key route;	/* rendezvous Call-ID -> core: the same in
				   every edge of the cluster, unknown to
				   senders, so none steers its calls */
	struct hash_key branch;	/* checks the Via branches cores mint
				   (lib/sip.h) */
	struct edge_hep hep;	/* capture; fd -1 when off */
};

/*
 * Sets up e for cfg's edge me (buffers, core list, a fresh incarnation
 * for its connection ids; no sockets).  Returns 0, -ENOMEM or the
 * error of edge_incarnation_new(); edge_fini() undoes it.
 */
int edge_init(struct edge *e, uv_loop_t *loop, const struct cfg *cfg,
	      const struct cfg_edge *me);
void edge_fini(struct edge *e);

/*
 * One message from a client on tp: counts it, drops keepalives and
 * oversized or malformed ones (answering 400 where it can), fixes the
 * Via of a request and sends it to its core, or sends a response to
 * the core named in its branch when that branch's MAC holds (checked
 * before libosip2 parses it).  buf is borrowed for the call only.
 */
void edge_fwd_input(struct edge *e, struct edge_tp *tp, uint64_t conn_id,
		    const union env_sa *src, const char *buf, size_t len);

/* link_recv_cb for envelopes from cores; arg is the struct edge. */
void edge_fwd_from_core(void *arg, const char *buf, size_t len);

/* link_peer_cb: a core went silent or is heard again (lib/link.h); arg
 * is the struct edge.  Only logs: link_send refuses a dead core, so
 * each Call-ID of its goes to the next core of its order. */
void edge_fwd_core_live(void *arg, int core_id, int alive);

/*
 * A transport says c is closing (why: for the log; counted by the
 * caller): removes it from the table and, when it carried SIP, sends
 * ENV_CONN_CLOSED (edge id, conn id, transport, peer) to the first
 * live core in the rendezvous order of the conn id's bytes - the
 * location store is shared, one core suffices.  Idempotent.
 */
void edge_conn_closed(struct edge *e, struct edge_conn *c, const char *why);

/*
 * The message in buf could not be sent to peer over transport: an
 * outbound connection (conn_id) closed before it carried it (connect
 * failed, TLS peer refused, handshake stuck), or a datagram send
 * failed for good (conn_id 0; too big for UDP: RFC 3261 18.1.1 would
 * want TCP, which the peer may not have).  A request goes back to the
 * core named in its branch as ENV_CONN_CLOSED with ENV_F_DIAL_FAILED,
 * so that branch fails at once with 503 (RFC 3261 16.9) instead of
 * timing out; anything else is dropped.  flags: 0, or
 * ENV_F_PEER_REFUSED when a TLS peer did not prove its name.  buf and
 * peer are borrowed for the call only.
 */
void edge_fwd_undelivered(struct edge *e, int transport, uint64_t conn_id,
			  const union env_sa *peer, const char *buf,
			  size_t len, unsigned flags);

/*
 * A send to dst over tp failed with rc (a negative errno), now or when
 * a gathered datagram went (edge_udp.c): a full buffer is counted, any
 * other error logged (rate-limited) and, for a core's request, told to
 * its core as edge_fwd_undelivered() does.  buf and dst are borrowed
 * for the call only.
 */
void edge_fwd_send_failed(struct edge *e, struct edge_tp *tp,
			  const union env_sa *dst, const char *buf, size_t len,
			  int rc);

/* Bytes of a datagram an ICMP error quotes that the edge reads. */
#define EDGE_ICMP_QUOTE_MAX 1280

/*
 * Whether a message read from a socket's error queue (MSG_ERRQUEUE) is
 * an ICMP error saying its destination is unreachable: an IP_RECVERR
 * or IPV6_RECVERR control message from ICMP or ICMPv6 with errno
 * ECONNREFUSED (port unreachable), EHOSTUNREACH or ENETUNREACH.
 * Anything else (a local error, "fragmentation needed") is not.
 */
struct msghdr;
int edge_udp_err_unreachable(const struct msghdr *mh);

/*
 * An ICMP error said dst (transport: a datagram one) is unreachable for
 * the datagram whose start is quote (cut where the ICMP message ended):
 * when that was a request of ours, its head goes to the core named in
 * its branch as edge_fwd_undelivered() does, so the branch fails over
 * at once instead of after the fail-over timer.  quote and dst are
 * borrowed for the call only.
 */
void edge_fwd_unreachable(struct edge *e, int transport, const union env_sa *dst,
			  const char *quote, size_t len);

/*
 * The SIP domain identities a certificate holds (RFC 5922 7.1): the
 * host of each "sip:" URI SAN without a user part; only when there is
 * none, each dNSName SAN.  Never the subject CN; a wildcard is no DNS
 * name and is left out (7.2: no wildcard matching).  Writes them into
 * buf (ENV_NAMES_MAX + 1 bytes) as env.h peer names, lower case, each
 * once, "" for none; names past ENV_NAMES_MAX are left out.  cert is
 * borrowed; whether it is to be trusted is the caller's question.
 */
struct x509_st;
void edge_stream_cert_names(struct x509_st *cert, char *buf);

/* Starts the 1 s sweep that closes idle and stuck connections. */
int edge_conns_start(struct edge *e);

/*
 * Closes every connection through its transport (why: for the log), so
 * that a core hears of each one that carried SIP (edge_conn_closed)
 * and drops its bindings at once.  For a stopping edge: call it while
 * e->link is still up.
 */
void edge_conns_close_all(struct edge *e, const char *why);
/* Stops it (close callback on the loop).  Accepts a never-started e. */
void edge_conns_stop(struct edge *e);

/*
 * Drains the edge so it can be restarted without its clients all coming
 * back at once: stream and WebSocket listeners stop accepting (the
 * host's other edges sharing the ports take the new clients), and the
 * open connections are closed a share at a time over drain_s seconds,
 * least active first: SIP.js and KwikyKonf reconnect on a close they
 * did not ask for (a phone on TCP/TLS re-registers), and land on
 * another edge.  UDP stays: its clients are no one edge's.  Logs start
 * and end.  Idempotent.
 */
void edge_drain(struct edge *e, int drain_s);

/* The write-queue bound of one connection, from max_msg. */
size_t edge_conn_wq_max(const struct edge *e);

/* ---- edge_metrics.c: the counters, logged and scraped ---- */

/* Logs every counter at notice level. */
void edge_stats_log(const struct edge *e);

/*
 * Serves the edge's Prometheus metrics on [edge N] metrics, when set.
 * Returns 0 or a negative errno (logged); edge_metrics_stop() undoes
 * it and accepts an edge that never started.
 */
int edge_metrics_start(struct edge *e);
void edge_metrics_stop(struct edge *e);

/* Whether a line may be logged now (now in ms); counts the others. */
int edge_ratelimit_allow(struct edge_ratelimit *rl, uint64_t now_ms);

#endif
