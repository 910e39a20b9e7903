/*
 * fuzz_benc.c - benc_decode(), the reader of every ng reply rtpengine
 * sends and of every request and reply between cores and rtpctl; then
 * the lookups their callers make on what it decoded.
 */
#include "lib/benc.h"
#include "tests/fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct benc_node nodes[256];
	int n = benc_decode(nodes, 256, (const char *)data, size);
	size_t len;

	if (n <= 0)
		return 0;
	/* Every node must stay inside the input and its subtree. */
	for (int i = 0; i < n; i++) {
		const struct benc_node *d = &nodes[i];

		if (d->span < 1 || i + d->span > n ||
		    d->raw < (const char *)data ||
		    d->raw + d->raw_len > (const char *)data + size)
			__builtin_trap();
	}
	benc_str_eq(benc_dict_get(&nodes[0], "result"), "error");
	benc_dict_str(&nodes[0], "sdp", &len);
	return 0;
}
