/*
 * dns.h - locating a SIP server by DNS (RFC 3263): NAPTR, then SRV
 * ordered by priority and weight (RFC 2782), then A/AAAA, asynchronous
 * on a libuv loop (c-ares underneath, never a blocking call), every
 * answer cached for its TTL, negative answers too (RFC 2308).
 *
 * One struct dns per loop.  A locate turns a URI's host, port,
 * transport and scheme into an ordered list of (transport, address)
 * targets to try in turn; the caller fails over along the list.
 * Not thread safe.
 */
#ifndef SM_DNS_H
#define SM_DNS_H

#include <stddef.h>
#include <uv.h>

#include "lib/env.h"

/* Targets handed to a callback at most: enough to fail over through a
 * domain's servers, small enough to keep a locate's queries bounded. */
#define DNS_TARGETS_MAX 16

struct dns;
struct dns_query;

struct dns_config {
	const char *servers;	/* "ip:port,ip:port" ([v6]:port); NULL or
				   "": /etc/resolv.conf */
	int cache_size;		/* answers (name, type) kept; 0: 1024 */
	int ttl_max;		/* seconds a positive answer is kept at
				   most; 0: 3600 */
	int neg_ttl_min;	/* bounds on a negative answer's TTL (the
				   SOA's minimum; no SOA: the floor); */
	int neg_ttl_max;	/* 0: 5 and 300 seconds */
	int timeout_ms;		/* per try; 0: 2000 */
	int tries;		/* per server; 0: 2 */
	int family;		/* AF_INET: A only; AF_INET6: AAAA only;
				   AF_UNSPEC (0): both, A first */
	int block_max;		/* dead targets remembered; 0: 256 */
};

struct dns_target {
	int transport;		/* enum env_transport */
	union env_sa addr;
};

/*
 * The outcome of one locate: err 0 and t[0..n-1] in the order to try
 * them (1 <= n <= DNS_TARGETS_MAX), or err -ENOENT (no such domain, or
 * no record usable for SIP), -ETIMEDOUT (no DNS server answered),
 * -EIO (a server failed or answered garbage), -ENOMEM, and n 0.
 * t is borrowed for the call only.  The callback may call anything in
 * this API, dns_free included.
 */
typedef void (*dns_locate_cb)(void *arg, int err, const struct dns_target *t,
			      int n);

/*
 * Creates a resolver on loop; cfg NULL means every default.  Returns 0,
 * -EINVAL (a bad server list), -ENOMEM or -EIO (c-ares failed).
 */
int dns_new(struct dns **out, uv_loop_t *loop, const struct dns_config *cfg);

/*
 * Stops every locate (their callbacks are never called) and releases
 * the resolver; the memory goes once the loop has run the handles'
 * close callbacks.  Accepts NULL; may be called from a callback.
 */
void dns_free(struct dns *d);

/*
 * Locates the SIP servers for host[0..len) (a name, an IPv4 address or
 * an IPv6 one, bracketed or not), as RFC 3263 section 4 says:
 *   - a numeric host is the target itself;
 *   - a port (nonzero) skips NAPTR and SRV: A/AAAA of host;
 *   - a transport (enum env_transport, ENV_TP_NONE for none) skips
 *     NAPTR: SRV of that transport;
 *   - else NAPTR (SIP+D2U, SIP+D2T, SIPS+D2T), ordered by order then
 *     preference, each to its SRV; no NAPTR: SRV _sip._udp, _sip._tcp,
 *     _sips._tcp; no SRV: A/AAAA of host on the transport's port.
 * sips nonzero keeps TLS only.  Transports an edge cannot dial
 * (WebSocket) are skipped.  Answers come from the cache while their TTL
 * lasts.
 * Returns 0, and cb is then called exactly once, never from within
 * this call (unless the locate is cancelled first); or -EINVAL (a host
 * that is no DNS name, a transport that cannot be dialled, TLS-only
 * with a plain transport), -ENOMEM, and cb is never called.  *qp
 * (qp may be NULL) is the handle for dns_cancel, valid until cb is
 * called.
 */
int dns_locate(struct dns *d, const char *host, size_t len, int transport,
	       int port, int sips, dns_locate_cb cb, void *arg,
	       struct dns_query **qp);

/* Stops a locate whose callback has not run yet: it never will.  Its
 * queries still fill the cache.  Accepts NULL. */
void dns_cancel(struct dns_query *q);

/*
 * Remembers the target (transport, sa) as dead for seconds (0: alive
 * again): locates answered after this put it behind every live target,
 * still in the list, as the last resort (Kamailio's dst_blocklist).
 * At most block_max are kept; a new one beyond pushes out the oldest.
 * Returns 0, -EINVAL (not IPv4/IPv6), -ENOMEM.
 */
int dns_block(struct dns *d, const union env_sa *sa, int transport,
	      int seconds);

/* Whether the target (transport, sa) is remembered as dead: 1 or 0. */
int dns_blocked(struct dns *d, const union env_sa *sa, int transport);

/* DNS queries sent so far (not those answered from the cache). */
unsigned long dns_queries_sent(const struct dns *d);

#endif
