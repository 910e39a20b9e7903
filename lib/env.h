/*
 * env.h - the envelope that carries a SIP message between an edge and
 * a core over nanomsg.
 *
 * The edge is the only process with client sockets; the envelope says
 * where a message came from (edge, connection, transport, source and
 * local address) or, from a core, where it must go.  The raw SIP
 * message follows the fixed header unchanged, so the edge never
 * re-serialises what it received.
 *
 * Wire format (network byte order): ENV_HDR_LEN bytes, the peer names
 * (below), then the message:
 *   0  'S' 'M'   magic
 *   2  version   ENV_VERSION; anything else is refused
 *   3  type      enum env_type
 *   4  transport enum env_transport
 *   5  flags     ENV_F_*
 *   6  edge id   u16
 *   8  conn id   u64 (0: connectionless): the edge process's
 *                incarnation u32, then the connection's serial u32
 *  16  src       family u8, 0 u8, port u16, addr 16 bytes
 *  36  local     same layout
 *  56  core id   u16: the sender when a core sends, else 0
 *  58  names     u16: length of the peer names that follow the header
 *                (ENV_SIP only, at most ENV_NAMES_MAX; 0: none)
 *  60  length    u32 of the message that follows the names
 *
 * Peer names: what the client certificate of a TLS connection proved
 * (RFC 5922 7.1, verified by the edge that holds it), lower-case DNS
 * names separated by one space.  Only an edge writes them, only from
 * its own verification; a core trusts no name from anywhere else.
 * The u16 was a reserved 0 before: an older core refuses an envelope
 * that carries names (its length check fails), never misreads it.
 *
 * Version 1 had a u32 conn id and no incarnation (60-byte header): an
 * edge and a core of different versions refuse each other's envelopes
 * (counted, never misread), so a cluster upgrades all its processes
 * together.
 */
#ifndef SM_ENV_H
#define SM_ENV_H

#include <inttypes.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ENV_VERSION 2
#define ENV_HDR_LEN 64
#define ENV_NAMES_MAX 512	/* bytes of peer names an envelope carries */

/*
 * A connection's identity, the same in envelopes, stored bindings and
 * flow tokens: the incarnation of the edge process that holds it (a
 * random u32, never 0, drawn at start: see edge_incarnation_new) in
 * the high half, the connection's serial in that process (from 1) in
 * the low half.  Serials start again at 1 when an edge restarts, the
 * incarnation does not repeat, so an identity held by a dead process
 * names no connection of a live one.  Identities with incarnation 0
 * come from bindings stored before incarnations existed: no edge holds
 * them.  Logged as ENV_CONN_FMT, "<incarnation hex>.<serial>".
 */
#define ENV_CONN_ID(inc, serial) ((uint64_t)(inc) << 32 | (uint32_t)(serial))
#define ENV_CONN_INC(id) ((uint32_t)((uint64_t)(id) >> 32))
#define ENV_CONN_SERIAL(id) ((uint32_t)(id))
#define ENV_CONN_FMT "%08" PRIx32 ".%" PRIu32
#define ENV_CONN_ARGS(id) ENV_CONN_INC(id), ENV_CONN_SERIAL(id)

enum env_type {
	ENV_SIP = 1,		/* a SIP message, in either direction */
	ENV_CONN_CLOSED = 2,	/* edge -> core: conn_id has closed */
	ENV_REJECT = 3,		/* core -> edge: msg, a request that edge
				   forwarded, is one libosip2 cannot parse:
				   answer it 400 as the edge answers its own
				   malformed requests */
};

/*
 * The transports, one row each: everything that tells one from another
 * is a column here, so a new transport is one row plus the edge file
 * that runs it (rtpengine's NG_COMMANDS in daemon/control_ng.c).
 *   ID    the enum constant ENV_<ID>; spelled as the Via transport
 *         token (RFC 3261 20.42 "SIP/2.0/UDP") and in logs
 *   key   the same in lower case: the [edge] configuration key, the
 *         URI transport parameter (RFC 3261 19.1.1, RFC 7118 5.2) and
 *         the word sipmesh-edge -L prints
 *   port  where an edge listens when its address names no port, and
 *         the configuration default
 *   flags ENV_TP_*
 *   impl  the edge file that runs it: edge/edge_<impl>.c, whose
 *         edge_<impl>_new() opens it
 * Rows are numbered from 1 in order and the number travels (envelope,
 * flow tokens, stored bindings): add rows at the end only.
 */
#define ENV_TP_STREAM 0x01	/* connections, not datagrams */
#define ENV_TP_WS     0x02	/* SIP over WebSocket (RFC 7118) */
#define ENV_TP_SECURE 0x04	/* TLS underneath: needs a certificate,
				   sips: URIs, default SIP port 5061 */
#define ENV_TP_DIAL   0x08	/* an edge can send to an address no
				   connection came from (a browser cannot
				   be dialled: only its own connection
				   reaches it) */

#define ENV_TRANSPORTS(X) \
	X(UDP, udp, 5060, ENV_TP_DIAL, udp) \
	X(TCP, tcp, 5060, ENV_TP_STREAM | ENV_TP_DIAL, stream) \
	X(TLS, tls, 5061, ENV_TP_STREAM | ENV_TP_SECURE | ENV_TP_DIAL, stream) \
	X(WS, ws, 8080, ENV_TP_STREAM | ENV_TP_WS, ws) \
	X(WSS, wss, 8443, ENV_TP_STREAM | ENV_TP_WS | ENV_TP_SECURE, ws)

enum env_transport {
	ENV_TP_NONE = 0,	/* unset; never valid on the wire */
#define ENV_TP_ENUM(id, key, port, flags, impl) ENV_##id,
	ENV_TRANSPORTS(ENV_TP_ENUM)
#undef ENV_TP_ENUM
	ENV_TP_END		/* one past the last: array sizes, loops */
};

#define ENV_F_WS 0x01		/* the client speaks SIP over WebSocket */
#define ENV_F_DIAL_FAILED 0x02	/* ENV_CONN_CLOSED with a request: the
				   connection the edge opened for it never
				   carried it (connect refused, TLS peer
				   refused): a transport error (RFC 3261
				   16.9), not a failed flow */
#define ENV_F_PEER_REFUSED 0x04	/* with ENV_F_DIAL_FAILED: the TLS peer
				   dialled did not prove the name it was
				   dialled for (RFC 5922 7.3) */

union env_sa {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

struct env {
	uint8_t type;
	uint8_t transport;
	uint8_t flags;
	uint16_t edge_id;
	uint16_t core_id;
	uint64_t conn_id;	/* ENV_CONN_ID(incarnation, serial) */
	union env_sa src;	/* in: the sender; out: the destination */
	union env_sa local;	/* in: where it arrived; out: unused */
	const char *names;	/* peer names (see above), borrowed, not
				   NUL-terminated; NULL/0: none */
	size_t names_len;
	const char *msg;	/* borrowed; not NUL-terminated */
	size_t len;
	uint8_t proven;		/* never on the wire: a core sets it on its
				   own copy once digest authentication
				   proved the request (ENV_PROVEN_*), which
				   frees its replies from SIP_REPLY_AMP
				   (lib/sip.h) */
};

#define ENV_PROVEN_ACCOUNT 1	/* an account's credentials */
#define ENV_PROVEN_GUEST   2	/* a KwikyKonf guest's (auth/auth.h) */

/*
 * Writes the header, the peer names and the message into buf.  Returns
 * the bytes used, or -ENOSPC if cap is too small, -EINVAL for an
 * unknown family or names that env_names_valid() refuses.
 */
int env_encode(const struct env *e, char *buf, size_t cap);

/*
 * Reads buf into *e; e->msg and e->names point into buf (borrowed).
 * Returns 0, -EPROTO for a bad magic or version, -EINVAL for a
 * truncated or inconsistent envelope (names on anything but ENV_SIP,
 * longer than ENV_NAMES_MAX, or not env_names_valid()).
 */
int env_decode(struct env *e, const char *buf, size_t len);

/*
 * Whether s[0..len) is a list of peer names: at most ENV_NAMES_MAX
 * bytes of lower-case DNS names (a-z 0-9 '-' '.', each 1..253 bytes)
 * separated by single spaces.  The empty list is valid.
 */
int env_names_valid(const char *s, size_t len);

/*
 * Whether the peer names of e include name[0..len), compared without
 * regard to case (RFC 4343), whole names only: no suffix, no wildcard
 * (RFC 5922 7.2).
 */
int env_names_has(const struct env *e, const char *name, size_t len);

/* Formats "ip:port" (IPv6 in brackets) into out; returns out. */
char *env_sa_str(const union env_sa *sa, char *out, size_t len);

/* Fills sa from a numeric ip and port; returns 0 or -EINVAL. */
int env_sa_from(union env_sa *sa, const char *ip, int port);

/* strlen of what env_sa_ip writes, without inet_ntop for IPv4 (it is
 * asked on the path of every reply). */
size_t env_sa_ip_len(const union env_sa *sa);

/* Whether a and b hold the same IP address, ports aside (an IPv4
 * address and its IPv4-mapped IPv6 form differ). */
int env_sa_addr_eq(const union env_sa *a, const union env_sa *b);

/* Port of sa in host order. */
int env_sa_port(const union env_sa *sa);

/* Whether sa is a wildcard address (0.0.0.0, ::). */
int env_sa_is_any(const union env_sa *sa);

/* Numeric ip of sa (no port, no brackets) into out; returns out. */
char *env_sa_ip(const union env_sa *sa, char *out, size_t len);

/*
 * Properties of a transport, from the table above.  Each accepts any
 * int: outside ENV_UDP..ENV_TP_END-1 it says so (0, "?", -EINVAL), so
 * a value off the wire can be asked directly.
 */

/* Whether transport is a row of the table. */
int env_transport_valid(int transport);

/* "UDP", "TCP", ... for Via and logs; "?" for an unknown one. */
const char *env_transport_name(int transport);

/* "udp", "tcp", ...: configuration key, URI parameter; "?" if unknown. */
const char *env_transport_key(int transport);

/*
 * The transport named by s[0..len) (a Via token, a URI transport
 * parameter, a configuration key), compared case-insensitively as
 * SIP wants (RFC 3261 25: its ABNF literals ignore case; 19.1.4: so
 * does URI comparison).  Returns ENV_UDP.. or -EINVAL.
 */
int env_transport_parse(const char *s, size_t len);

/* Whether transport has every ENV_TP_* flag in flags; 0 if unknown. */
int env_transport_is(int transport, unsigned flags);

/* The listening port when an address names none; 0 if unknown. */
int env_transport_port(int transport);

/*
 * The port of a SIP URI or Via that names none (RFC 3261 19.1.2):
 * 5061 for a secure transport, 5060 otherwise, unknown ones included.
 */
int env_transport_sip_port(int transport);

#endif
