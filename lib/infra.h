/*
 * infra.h - the cluster's own addresses: its edges' listeners, Redis
 * (and with Sentinel the sentinels and the servers they name), the
 * rtpengine control ports and the nanomsg tcp:// endpoints of the
 * configuration.  No request, response or reply ever goes to one, so
 * nothing a sender writes (Contact, Route, Via, a spoofed source
 * address) turns the cluster against its own services or into a loop.
 * The cores check every destination, the edges every stateless reply.
 *
 * Addresses compare normalised (a v4-mapped IPv6 address is its IPv4
 * address; 0.0.0.0, ::, 127/8, ::1 and every interface address are one
 * "this host") and by transport: datagrams (UDP) and streams (TCP, TLS,
 * WS, WSS, Redis, nanomsg) are different port spaces.  An edge listener
 * bound to one address is the exception: it is reached there only, so
 * another cluster on the same host and port at another address (two
 * deployments on 127.0.1.1:5060 and 127.0.2.1:5060) is a peer.
 */
#ifndef SM_INFRA_H
#define SM_INFRA_H

#include <stdint.h>

#include "lib/cfg.h"
#include "lib/env.h"

struct infra_addr {
	union env_sa sa;	/* normalised */
	uint8_t stream;		/* a TCP service, else UDP */
	uint8_t local;		/* on this host: any local address matches */
	uint8_t bound;		/* an edge's own socket on this very
				   address: only it (or a wildcard) matches */
};

/* Redis servers and sentinels beyond the configured addresses: with
 * Sentinel the masters and replicas are learnt at run time. */
#define INFRA_LEARNT (8 + 32)

#define INFRA_MAX (8 + 64 + 1 + CFG_MAX_CORES + \
		   (ENV_TP_END + 1) * CFG_MAX_EDGES + INFRA_LEARNT)

/* The table; caller's storage (infra_init fills it). */
struct infra {
	struct infra_addr a[INFRA_MAX];
	int n;
	union env_sa local[64];	/* this host's interface addresses */
	int n_local;
};

/* Fills x from cfg and this host's interfaces; -EINVAL (logged) when
 * an address of cfg cannot be compared (a host name). */
int infra_init(struct infra *x, const struct cfg *cfg);

/*
 * Adds a Redis server (TCP) found at run time, once: arg is the struct
 * infra.  Of the type of rconn_server_cb (lib/rconn.h), so a process
 * that runs rconns hands it to rconn_server_hook.  A full table or a
 * host name is logged.
 */
void infra_learn(void *arg, const char *host, int port);

/* Reads this host's interface addresses into x->local. */
void infra_local_load(struct infra *x);

/* Adds "host:port" (port defport when it names none) as a stream (TCP)
 * or datagram (UDP) service: 0, -EINVAL or -ENOSPC. */
int infra_add(struct infra *x, const char *addr, int defport, int stream);

/* A v4-mapped IPv6 address becomes its IPv4 address, in place. */
void infra_sa_normalise(union env_sa *sa);

/* Whether normalised sa is this host: a wildcard, loopback or one of
 * x->local. */
int infra_is_local(const struct infra *x, const union env_sa *sa);

/* Whether sending over transport (enum env_transport) to sa would
 * reach one of the cluster's own services.  Cost: a scan of a few dozen
 * entries; this host's addresses only when a port matched. */
int infra_has(const struct infra *x, int transport, const union env_sa *sa);

#endif
