/*
 * fuzz_edge_stream.c - edge_stream_frame(), the framing of TCP and
 * TLS byte streams (RFC 3261 18.3).  The input arrives as the stream
 * would: in pieces (the first byte picks the read size), with the
 * header-end search carried across reads and every frame consumed, as
 * edge_stream.c does.  Each frame must lie inside the bytes read.
 */
#include <string.h>

#include "edge/edge_int.h"
#include "tests/fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf;
	size_t step, have, off = 0, scan = 0;
	struct edge_frame f;
	const char *why;

	if (size < 1)
		return 0;
	step = (size_t)(data[0] % 64) + 1;
	buf = (const char *)data + 1;
	size--;
	have = step < size ? step : size;
	for (;;) {
		int rc = edge_stream_frame(buf + off, have - off, 4096, &scan,
					   &f, &why);

		if (rc != 0)
			break;
		if (f.kind == EDGE_FRAME_MORE) {
			if (have == size)
				break;
			have = have + step < size ? have + step : size;
			continue;
		}
		if (f.len == 0 || f.len > have - off)
			__builtin_trap();
		off += f.len;
		scan = 0;
	}
	return 0;
}
