/*
 * dns_msg.c - reading DNS answers for the locator: one pass over the
 * sections, every offset checked against the message before it is
 * read, names expanded by c-ares (which bounds compression loops).
 * Cost: O(message length), one allocation for the records and one per
 * SRV target or NAPTR replacement.
 */
#include <ares.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/dns_msg.h"

static int
dns_u16(const unsigned char *p)
{
	return p[0] << 8 | p[1];
}

static uint32_t
dns_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* Moves *off past the name there; -1 if it runs off the message. */
static int
dns_skip_name(const unsigned char *m, int len, int *off)
{
	int o = *off;

	while (o < len) {
		unsigned c = m[o];

		if (c == 0) {
			*off = o + 1;
			return 0;
		}
		if ((c & 0xc0) == 0xc0) {
			if (o + 2 > len)
				return -1;
			*off = o + 2;
			return 0;
		}
		if (c & 0xc0)
			return -1;
		o += 1 + (int)c;
	}
	return -1;
}

/* A copy of the (compressed) name at m[off], lower case, without the
 * root's dot ("" for the root); NULL for a bad or over-long name.
 * c-ares expands it, loops and overruns included. */
static char *
dns_read_name(const unsigned char *m, int len, int off)
{
	char *s, *out;
	long enclen;
	size_t n;

	if (off >= len || ares_expand_name(m + off, m, len, &s, &enclen) !=
	    ARES_SUCCESS)
		return NULL;
	n = strlen(s);
	if (n > 0 && s[n - 1] == '.')
		n--;
	out = n <= DNS_NAME_MAX ? malloc(n + 1) : NULL;
	for (size_t i = 0; out && i < n; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	if (out)
		out[n] = '\0';
	ares_free_string(s);
	return out;
}

/* A <character-string> at m[*off] (RFC 1035 3.3) within end. */
static int
dns_read_str(const unsigned char *m, int end, int *off, const char **s,
	     int *slen)
{
	if (*off >= end || *off + 1 + m[*off] > end)
		return -1;
	*slen = m[*off];
	*s = (const char *)m + *off + 1;
	*off += 1 + *slen;
	return 0;
}

/* The transport a SIP NAPTR stands for (RFC 3263 4.1), 0 for one we
 * cannot dial (D2W is a browser's) or that is no SIP at all. */
static int
dns_naptr_transport(const char *flags, int flen, const char *svc, int slen,
		    int rlen)
{
	static const struct {
		const char *svc;
		int transport;
	} map[] = {
		{ "SIP+D2U", ENV_UDP },
		{ "SIP+D2T", ENV_TCP },
		{ "SIPS+D2T", ENV_TLS },
	};

	if (flen != 1 || (flags[0] != 's' && flags[0] != 'S') || rlen != 0)
		return 0;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if ((size_t)slen == strlen(map[i].svc) &&
		    strncasecmp(svc, map[i].svc, (size_t)slen) == 0)
			return map[i].transport;
	return 0;
}

/* One record of type from rdata m[off..off+rdlen) into rr; 1 if
 * taken, 0 if skipped (not for us), -1 malformed. */
static int
dns_parse_rr(int type, const unsigned char *m, int len, int off, int rdlen,
	     struct dns_rr *rr)
{
	int start = off, end = off + rdlen, flen, slen, rlen;
	const char *flags, *svc, *re;

	memset(rr, 0, sizeof(*rr));
	switch (type) {
	case DNS_T_A:
		if (rdlen != 4)
			return -1;
		rr->addr.in.sin_family = AF_INET;
		memcpy(&rr->addr.in.sin_addr, m + off, 4);
		return 1;
	case DNS_T_AAAA:
		if (rdlen != 16)
			return -1;
		rr->addr.in6.sin6_family = AF_INET6;
		memcpy(&rr->addr.in6.sin6_addr, m + off, 16);
		return 1;
	case DNS_T_SRV:
		if (rdlen < 7)
			return -1;
		rr->prio = (uint16_t)dns_u16(m + off);
		rr->weight = (uint16_t)dns_u16(m + off + 2);
		rr->port = (uint16_t)dns_u16(m + off + 4);
		if ((rr->target = dns_read_name(m, len, off + 6)) == NULL)
			return -1;
		/* "." says the service is not offered there (RFC 2782). */
		return rr->target[0] != '\0' && rr->port != 0;
	case DNS_T_NAPTR:
		off += 4;
		if (rdlen < 4 || dns_read_str(m, end, &off, &flags, &flen) < 0 ||
		    dns_read_str(m, end, &off, &svc, &slen) < 0 ||
		    dns_read_str(m, end, &off, &re, &rlen) < 0 || off >= end)
			return -1;
		rr->prio = (uint16_t)dns_u16(m + start);
		rr->weight = (uint16_t)dns_u16(m + start + 2);
		rr->transport = (uint8_t)dns_naptr_transport(flags, flen, svc,
							     slen, rlen);
		if ((rr->target = dns_read_name(m, len, off)) == NULL)
			return -1;
		return rr->transport != 0 && rr->target[0] != '\0';
	}
	return 0;
}

/* A TTL with the top bit set counts as 0 (RFC 2181 8). */
static uint32_t
dns_ttl(const unsigned char *p)
{
	uint32_t t = dns_u32(p);

	return t > INT32_MAX ? 0 : t;
}

void
dns_msg_fini(struct dns_answer *a)
{
	for (int i = 0; i < a->n; i++)
		free(a->rr[i].target);
	free(a->rr);
	a->rr = NULL;
	a->n = 0;
}

int
dns_msg_parse(struct dns_answer *a, const unsigned char *m, int len, int type)
{
	int qd, an, ns, off = 12;
	uint32_t min = UINT32_MAX;

	memset(a, 0, sizeof(*a));
	a->ttl = a->neg_ttl = -1;
	if (len < 12)
		return -EIO;
	qd = dns_u16(m + 4);
	an = dns_u16(m + 6);
	ns = dns_u16(m + 8);
	if ((a->rr = calloc(DNS_RR_MAX, sizeof(*a->rr))) == NULL)
		return -ENOMEM;
	for (int i = 0; i < qd; i++)
		if (dns_skip_name(m, len, &off) < 0 || (off += 4) > len)
			goto fail;
	for (int i = 0; i < an + ns; i++) {
		int rtype, rdlen, r;
		uint32_t rttl;

		if (dns_skip_name(m, len, &off) < 0 || off + 10 > len)
			goto fail;
		rtype = dns_u16(m + off);
		rttl = dns_ttl(m + off + 4);
		rdlen = dns_u16(m + off + 8);
		off += 10;
		if (off + rdlen > len)
			goto fail;
		if (dns_u16(m + off - 8) != 1) {	/* class IN only */
			off += rdlen;
			continue;
		}
		if (i >= an && rtype == DNS_T_SOA) {
			int o = off;

			if (dns_skip_name(m, off + rdlen, &o) < 0 ||
			    dns_skip_name(m, off + rdlen, &o) < 0 ||
			    o + 20 > off + rdlen)
				goto fail;
			a->neg_ttl = dns_ttl(m + o + 16) < rttl ?
				     dns_ttl(m + o + 16) : rttl;
		} else if (i < an && rtype == DNS_T_CNAME) {
			min = rttl < min ? rttl : min;
		} else if (i < an && rtype == type && a->n < DNS_RR_MAX) {
			r = dns_parse_rr(type, m, len, off, rdlen, &a->rr[a->n]);
			if (r > 0) {
				a->n++;
				min = rttl < min ? rttl : min;
			} else {
				free(a->rr[a->n].target);
				if (r < 0)
					goto fail;
			}
		}
		off += rdlen;
	}
	if (a->n > 0)
		a->ttl = min;
	return 0;
fail:
	dns_msg_fini(a);
	a->ttl = a->neg_ttl = -1;
	return -EIO;
}
