/*
 * dns_msg.h - reading a DNS answer (RFC 1035 4.1) for the SIP locator
 * (lib/dns.h): the records of the type asked that SIP can use, the TTL
 * to keep them, and for an answer without any the negative TTL its SOA
 * gives (RFC 2308 5).  The bytes come from whoever answers for a
 * foreign domain, so every length and count is checked against the
 * message; names are expanded by c-ares (compression loops included).
 */
#ifndef SM_DNS_MSG_H
#define SM_DNS_MSG_H

#include <stdint.h>

#include "lib/env.h"

#define DNS_NAME_MAX 253	/* RFC 1035 2.3.4, in text form */
#define DNS_RR_MAX 32		/* records kept from one answer */

enum dns_type {
	DNS_T_A = 1,
	DNS_T_CNAME = 5,
	DNS_T_SOA = 6,
	DNS_T_AAAA = 28,
	DNS_T_SRV = 33,
	DNS_T_NAPTR = 35,
};

struct dns_rr {
	uint16_t prio;		/* SRV priority, NAPTR order */
	uint16_t weight;	/* SRV weight, NAPTR preference */
	uint16_t port;		/* SRV */
	uint8_t transport;	/* NAPTR: enum env_transport of its service */
	char *target;		/* SRV target, NAPTR replacement: lower
				   case, no root dot */
	union env_sa addr;	/* A, AAAA; port 0 */
};

struct dns_answer {
	int n;			/* records in rr, at most DNS_RR_MAX */
	struct dns_rr *rr;	/* owned */
	int64_t ttl;		/* seconds to keep rr; -1 when n is 0 */
	int64_t neg_ttl;	/* n 0: the SOA's negative TTL; -1: no SOA */
};

/*
 * Reads the answer m[0..len) to a query of type (A, AAAA, SRV, NAPTR)
 * into *a.  Kept: records of that type and class IN from the answer
 * section, at most DNS_RR_MAX; SRV records whose target is "." (RFC
 * 2782: not offered) are dropped, and NAPTR records but the SIP ones
 * an edge can dial (flag "s", empty regexp, SIP+D2U, SIP+D2T,
 * SIPS+D2T).  ttl is the smallest TTL of those records and of the
 * CNAMEs in the answer.  Returns 0 (n may be 0), -EIO when the message
 * is malformed (a truncated section, a length past the end, a bad
 * name), -ENOMEM; *a then holds nothing.
 */
int dns_msg_parse(struct dns_answer *a, const unsigned char *m, int len,
		  int type);

/* Frees what dns_msg_parse filled in; *a holds nothing after. */
void dns_msg_fini(struct dns_answer *a);

#endif
