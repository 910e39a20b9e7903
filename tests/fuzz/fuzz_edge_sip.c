/*
 * fuzz_edge_sip.c - what an edge does with every datagram, stream
 * message and WebSocket message before a core sees it (edge_fwd.c):
 * the hand scan, the header walk, the Via parse, the checks, the Via
 * fix-up (whose output is scanned again, as
 * edge_fwd.c does), the stateless reply and the next-hop host for TLS.
 * The source address is an IPv4 or an IPv6 one by the input's length,
 * so both received= forms are written.
 */
#include <string.h>

#include "edge/edge_int.h"
#include "tests/fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char out[2 * 65536], host[256];
	const char *buf = (const char *)data;
	struct edge_sip_scan sc, fixed;
	union env_sa src;
	struct edge_hdr h;
	struct edge_via v;
	size_t pos, use = 0;
	const char *why;
	int n;

	if (size > 65536 || edge_sip_scan(&sc, buf, size) != 0)
		return 0;
	pos = sc.hdr_off;
	while (edge_sip_hdr_next(buf, size, &pos, &h) == 1)
		if (h.id == EDGE_H_VIA)
			edge_sip_via_parse(&v, h.value.s, h.value.len);
	why = edge_sip_check(&sc, size, &use);
	if (size & 1)
		env_sa_from(&src, "2001:db8::7", 5062);
	else
		env_sa_from(&src, "192.0.2.7", 5062);
	if (sc.is_request) {
		n = edge_sip_via_fix(buf, size, &sc, &src, out, sizeof(out));
		if (n >= 0 && edge_sip_scan(&fixed, out, (size_t)n) != 0)
			__builtin_trap();	/* the fix broke the start line */
		if (edge_sip_can_reply(&sc))
			edge_sip_reply_build(out, sizeof(out), buf, size, &sc,
					     why ? 400 : 503,
					     why ? "Bad Request" : "Busy",
					     why);
	}
	edge_sip_next_hop_host(&sc, buf, size, host, sizeof(host));
	return 0;
}
