/*
 * fuzz_digest.c - digest_creds_parse(), the Authorization and
 * Proxy-Authorization headers of every request to a core, then what
 * the core does next with the slices: the nonce check and the
 * response check.
 */
#include <string.h>

#include "lib/digest.h"
#include "tests/fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char key[32] = "fuzz key fuzz key fuzz key fuzz";
	const char *hdr = (const char *)data;
	struct digest_creds c;
	char ha1[DIGEST_HEX_MAX];
	uint64_t minted;

	if (digest_creds_parse(hdr, size, &c) != 0)
		return 0;
	digest_nonce_check(key, sizeof(key), 1700000000, 300, "example.com",
			   11, "cid", 3, &c.nonce, &minted);
	digest_ha1(c.alg, "alice", "example.com", "secret", ha1);
	digest_response_check(&c, ha1, "REGISTER", 8);
	return 0;
}
