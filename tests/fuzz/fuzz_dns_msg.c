/*
 * fuzz_dns_msg.c - dns_msg_parse(), the answers of whatever DNS server
 * speaks for a foreign domain.  The first byte picks the query type
 * (A, AAAA, SRV, NAPTR); the rest is the message.
 */
#include "lib/dns_msg.h"
#include "tests/fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int types[4] = { DNS_T_A, DNS_T_AAAA, DNS_T_SRV,
				      DNS_T_NAPTR };
	struct dns_answer a;

	if (size < 1 || size > 65536)
		return 0;
	if (dns_msg_parse(&a, data + 1, (int)size - 1, types[data[0] & 3]) != 0)
		return 0;
	if (a.n < 0 || a.n > DNS_RR_MAX)
		__builtin_trap();
	dns_msg_fini(&a);
	return 0;
}
