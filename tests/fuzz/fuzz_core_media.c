/*
 * fuzz_core_media.c - the SDP path of core_media.c: a message as the
 * core parses it, core_media_has_sdp() (Content-Type and body, which
 * decide whether rtpengine is asked), then core_media_apply() putting
 * the SDP of rtpengine's reply into it, and the message printed as the
 * core sends it.  Input: the SIP message, a NUL byte, the bencoded
 * reply dictionary (rtpctl relays rtpengine's verbatim).
 */
#include <stdlib.h>
#include <string.h>

#include "core/core_int.h"
#include "rtpctl/rtpc.h"
#define FUZZ_SETUP fuzz_setup
#include "tests/fuzz/fuzz.h"

static void
fuzz_setup(void)
{
	parser_init();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data, *sdp;
	const char *nul = memchr(buf, '\0', size);
	size_t mlen = nul ? (size_t)(nul - buf) : size, slen, out_len;
	struct rtpc_result r = { 0, NULL, NULL, 0, "" };
	osip_message_t *m = NULL;
	char *out = NULL;

	if (size > 16384 || osip_message_init(&m) != 0)
		return 0;
	if (osip_message_parse(m, buf, mlen) != 0 ||
	    !core_media_has_sdp(m, &sdp, &slen))
		goto cleanup;
	if (nul) {
		r.reply = nul + 1;
		r.reply_len = size - mlen - 1;
	}
	if (core_media_apply(m, &r) == 0 &&
	    osip_message_to_str(m, &out, &out_len) == 0)
		osip_free(out);
cleanup:
	osip_message_free(m);
	return 0;
}
