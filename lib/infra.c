/*
 * infra.c - the cluster's own addresses (see infra.h).
 *
 * An address is compared after normalising it: a v4-mapped IPv6
 * address is its IPv4 address, and every local address (0.0.0.0, ::,
 * 127/8, ::1 and each interface address getifaddrs lists at start) is
 * one and the same "this host", so a service bound to a wildcard or to
 * any local address covers them all: Redis, rtpengine and nanomsg may
 * bind more than the address the cluster dials.  The edges' listeners
 * are sockets of our own, bound to what the configuration says: one on
 * a given address is reached at that address only (and at a wildcard,
 * which the kernel sends to this host), never at another local address
 * where another server may listen on the same port.  The comparison
 * includes the transport: datagrams (UDP) and streams (TCP, TLS, WS,
 * WSS, Redis, nanomsg) are different port spaces, and a UDP client on
 * the TLS listener's port number is a client like any other.  Cost: a
 * linear scan of a few dozen entries per message sent.
 */
#include "lib/infra.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <string.h>

#include "lib/log.h"

void
infra_sa_normalise(union env_sa *sa)
{
	if (sa->sa.sa_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&sa->in6.sin6_addr)) {
		uint16_t port = sa->in6.sin6_port;
		struct in_addr a;

		memcpy(&a, &sa->in6.sin6_addr.s6_addr[12], 4);
		memset(sa, 0, sizeof(*sa));
		sa->in.sin_family = AF_INET;
		sa->in.sin_port = port;
		sa->in.sin_addr = a;
	}
}

int
infra_is_local(const struct infra *c, const union env_sa *sa)
{
	if (sa->sa.sa_family == AF_INET) {
		uint32_t a = ntohl(sa->in.sin_addr.s_addr);

		if (a == INADDR_ANY || (a >> 24) == 127)
			return 1;
	} else if (sa->sa.sa_family == AF_INET6) {
		if (IN6_IS_ADDR_UNSPECIFIED(&sa->in6.sin6_addr) ||
		    IN6_IS_ADDR_LOOPBACK(&sa->in6.sin6_addr))
			return 1;
	} else {
		return 0;
	}
	for (int i = 0; i < c->n_local; i++)
		if (env_sa_addr_eq(&c->local[i], sa))
			return 1;
	return 0;
}

void
infra_local_load(struct infra *c)
{
	struct ifaddrs *ifs = NULL;

	c->n_local = 0;
	if (getifaddrs(&ifs) != 0) {
		log_warn(LOG_SYS_MAIN, "getifaddrs: %s: only loopback and "
			 "wildcards count as this host", strerror(errno));
		return;
	}
	for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
		union env_sa *sa;

		if (i->ifa_addr == NULL || (i->ifa_addr->sa_family != AF_INET &&
					    i->ifa_addr->sa_family != AF_INET6))
			continue;
		if (c->n_local == (int)(sizeof(c->local) / sizeof(*c->local))) {
			log_warn(LOG_SYS_MAIN, "more than %d interface "
				 "addresses: the rest are not known as this host",
				 c->n_local);
			break;
		}
		sa = &c->local[c->n_local++];
		memset(sa, 0, sizeof(*sa));
		memcpy(sa, i->ifa_addr, i->ifa_addr->sa_family == AF_INET ?
		       sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
		infra_sa_normalise(sa);
	}
	freeifaddrs(ifs);
}

int
infra_add(struct infra *c, const char *addr, int defport, int stream)
{
	struct infra_addr *x;
	char host[CFG_ADDR_LEN];
	int port;

	if (addr[0] == '\0')
		return 0;
	if (c->n == (int)(sizeof(c->a) / sizeof(*c->a)))
		return -ENOSPC;
	x = &c->a[c->n];
	if (cfg_addr_split(addr, host, sizeof(host), &port, defport) != 0)
		return -EINVAL;
	/* nanomsg writes "*" for every interface. */
	if (env_sa_from(&x->sa, strcmp(host, "*") == 0 ? "0.0.0.0" : host,
			port) != 0)
		return -EINVAL;
	infra_sa_normalise(&x->sa);
	x->stream = (uint8_t)(stream != 0);
	x->local = (uint8_t)infra_is_local(c, &x->sa);
	x->bound = 0;
	c->n++;
	return 0;
}

/* Adds the tcp:// endpoints among a list of nanomsg addresses. */
static int
infra_add_nn(struct infra *c, const char *list)
{
	char buf[1024], *save = NULL, *tok, *semi;
	int rc = 0;

	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, " ,\t", &save); tok && rc == 0;
	     tok = strtok_r(NULL, " ,\t", &save)) {
		if (strncmp(tok, "tcp://", 6) != 0)
			continue;
		tok += 6;
		/* "tcp://iface;host:port" binds host through iface. */
		semi = strchr(tok, ';');
		rc = infra_add(c, semi ? semi + 1 : tok, 0, 1);
	}
	return rc;
}

/* Logs an address that could not be added; returns 1 then, else 0. */
static int
infra_bad(int rc, const char *what, const char *addr)
{
	if (rc == 0)
		return 0;
	log_err(LOG_SYS_MAIN, "%s %s cannot be kept from being a next hop: %s",
		what, addr, strerror(-rc));
	return 1;
}

void
infra_learn(void *arg, const char *host, int port)
{
	struct infra *x = arg;
	char addr[CFG_ADDR_LEN + 16];
	int n = x->n, rc;

	snprintf(addr, sizeof(addr), strchr(host, ':') ? "[%s]:%d" : "%s:%d",
		 host, port);
	rc = infra_add(x, addr, 0, 1);
	if (rc != 0) {
		log_warn(LOG_SYS_MAIN, "Redis server %s cannot be kept from "
			 "being a next hop: %s", addr, rc == -ENOSPC ?
			 "table full" : "not an IP address");
		return;
	}
	x->n = n;
	if (infra_has(x, ENV_TCP, &x->a[n].sa))
		return;		/* covered already */
	x->n = n + 1;
	log_info(LOG_SYS_MAIN, "Redis server %s: never a next hop", addr);
}

int
infra_init(struct infra *c, const struct cfg *cfg)
{
	char inst[sizeof(cfg->rtpctl_instances)], *save = NULL, *tok;
	int bad = 0;

	infra_local_load(c);
	c->n = 0;
	if (cfg->redis[0] != '/')	/* a unix socket is no next hop */
		bad += infra_bad(infra_add(c, cfg->redis, 6379, 1), "Redis",
				 cfg->redis);
	/* the sentinels; the Redis servers they name come by infra_learn */
	snprintf(inst, sizeof(inst), "%s", cfg->redis_sentinels);
	for (tok = strtok_r(inst, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		tok += strspn(tok, " \t");
		tok[strcspn(tok, " \t")] = '\0';
		bad += infra_bad(infra_add(c, tok, 26379, 1), "sentinel", tok);
	}
	save = NULL;
	snprintf(inst, sizeof(inst), "%s", cfg->rtpctl_instances);
	for (tok = strtok_r(inst, " ,\t", &save); tok;
	     tok = strtok_r(NULL, " ,\t", &save)) {
		tok[strcspn(tok, "/")] = '\0';
		bad += infra_bad(infra_add(c, tok, 2223, 0),
				      "rtpengine", tok);
	}
	bad += infra_bad(infra_add_nn(c, cfg->rtpctl_ipc), "rtpctl",
			      cfg->rtpctl_ipc);
	for (int i = 0; i < cfg->n_cores; i++)
		bad += infra_bad(infra_add_nn(c, cfg->cores[i].ipc),
				      "core", cfg->cores[i].ipc);
	for (int i = 0; i < cfg->n_edges; i++) {
		const struct cfg_edge *e = &cfg->edges[i];

		bad += infra_bad(infra_add_nn(c, e->ipc), "edge",
				      e->ipc);
		for (int t = ENV_UDP; t < ENV_TP_END; t++) {
			int n = c->n, rc;

			rc = infra_add(c, e->listen[t], env_transport_port(t),
				       env_transport_is(t, ENV_TP_STREAM));
			bad += infra_bad(rc, "listener", e->listen[t]);
			if (rc == 0 && c->n > n)
				c->a[n].bound = !env_sa_is_any(&c->a[n].sa);
		}
	}
	return bad ? -EINVAL : 0;
}

int
infra_has(const struct infra *c, int transport, const union env_sa *sa)
{
	union env_sa d = *sa;
	int stream = env_transport_is(transport, ENV_TP_STREAM), local = -1;

	infra_sa_normalise(&d);
	for (int i = 0; i < c->n; i++) {
		const struct infra_addr *x = &c->a[i];

		if (x->stream != stream || env_sa_port(&x->sa) != env_sa_port(&d))
			continue;
		if (env_sa_addr_eq(&x->sa, &d))
			return 1;
		if (x->bound && !env_sa_is_any(&d))
			continue;
		/* The walk over this host's addresses only when a port
		 * matched: most sends match none. */
		if (x->local && local < 0)
			local = infra_is_local(c, &d);
		if (x->local && local)
			return 1;
	}
	return 0;
}
