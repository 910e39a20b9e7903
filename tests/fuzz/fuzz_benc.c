/*
 * fuzz_benc.c - benc_decode(), the reader of every ng reply rtpengine
 * sends and every request and reply between cores and rtpctl.
 */
#include <stddef.h>
#include <stdint.h>

#include "lib/benc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct benc_node nodes[256];
	int n = benc_decode(nodes, 256, (const char *)data, size);

	if (n > 0) {
		size_t len;

		benc_dict_get(&nodes[0], "result");
		benc_dict_str(&nodes[0], "sdp", &len);
	}
	return 0;
}
