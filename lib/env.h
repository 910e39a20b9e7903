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
 * Wire format (network byte order), ENV_HDR_LEN bytes then the message:
 *   0  'S' 'M'   magic
 *   2  version   ENV_VERSION; anything else is refused
 *   3  type      enum env_type
 *   4  transport enum env_transport
 *   5  flags     ENV_F_*
 *   6  edge id   u16
 *   8  conn id   u32 (0: connectionless)
 *  12  src       family u8, 0 u8, port u16, addr 16 bytes
 *  32  local     same layout
 *  52  core id   u16: the sender when a core sends, else 0
 *  54  0 u16     reserved
 *  56  length    u32 of the message that follows
 */
#ifndef SM_ENV_H
#define SM_ENV_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ENV_VERSION 1
#define ENV_HDR_LEN 60

enum env_type {
	ENV_SIP = 1,		/* a SIP message, in either direction */
	ENV_CONN_CLOSED = 2,	/* edge -> core: conn_id has closed */
};

enum env_transport {
	ENV_UDP = 1,
	ENV_TCP,
	ENV_TLS,
	ENV_WS,
	ENV_WSS,
};

#define ENV_F_WS 0x01		/* the client speaks SIP over WebSocket */

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
	uint32_t conn_id;
	union env_sa src;	/* in: the sender; out: the destination */
	union env_sa local;	/* in: where it arrived; out: unused */
	const char *msg;	/* borrowed; not NUL-terminated */
	size_t len;
};

/*
 * Writes the header and the message into buf.  Returns the bytes used,
 * or -ENOSPC if cap is too small, -EINVAL for an unknown family.
 */
int env_encode(const struct env *e, char *buf, size_t cap);

/*
 * Reads buf into *e; e->msg points into buf (borrowed).  Returns 0,
 * -EPROTO for a bad magic or version, -EINVAL for a truncated or
 * inconsistent envelope.
 */
int env_decode(struct env *e, const char *buf, size_t len);

/* Formats "ip:port" (IPv6 in brackets) into out; returns out. */
char *env_sa_str(const union env_sa *sa, char *out, size_t len);

/* Fills sa from a numeric ip and port; returns 0 or -EINVAL. */
int env_sa_from(union env_sa *sa, const char *ip, int port);

/* Port of sa in host order. */
int env_sa_port(const union env_sa *sa);

/* Numeric ip of sa (no port, no brackets) into out; returns out. */
char *env_sa_ip(const union env_sa *sa, char *out, size_t len);

/* "UDP", "TCP", ... for Via and logs. */
const char *env_transport_name(int transport);

#endif
