/*
 * fuzz_ws_utf8.c - edge_utf8_valid(), which decides a WebSocket
 * message's frame type both ways (edge_ws.c).  The WebSocket framing
 * and the HTTP upgrade are libwebsockets', not ours; what the edge
 * reads of a WebSocket message itself is this check and the SIP
 * parsers fuzz_edge_sip covers.  Checked against a plain decoder.
 */
#include "edge/edge_int.h"
#include "tests/fuzz/fuzz.h"

/* RFC 3629 4, one code point at a time: the reference. */
static int
ref_utf8(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint32_t cp;
		int n;

		if (s[i] < 0x80) {
			i++;
			continue;
		} else if ((s[i] & 0xe0) == 0xc0) {
			n = 1;
			cp = s[i] & 0x1f;
		} else if ((s[i] & 0xf0) == 0xe0) {
			n = 2;
			cp = s[i] & 0x0f;
		} else if ((s[i] & 0xf8) == 0xf0) {
			n = 3;
			cp = s[i] & 0x07;
		} else {
			return 0;
		}
		if (len - i <= (size_t)n)
			return 0;
		for (int k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += (size_t)n + 1;
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!edge_utf8_valid(data, size) != !ref_utf8(data, size))
		__builtin_trap();
	return 0;
}
