/*
 * fuzz_rtpc_ng.c - what rtpctl does with a datagram on its ng socket
 * (rtpc_srv.c): rtpc_ng_match() finds the command by its cookie, then
 * the reply dictionary is decoded and read.  One command is open, its
 * cookie "0123456789abcdef_1"; the seeds answer it.
 */
#include <string.h>

#include "lib/benc.h"
#include "rtpctl/rtpc_int.h"
#define FUZZ_SETUP fuzz_setup
#include "tests/fuzz/fuzz.h"

static struct rtpc_ng_tab fuzz_tab;

static void
fuzz_setup(void)
{
	rtpc_ng_init(&fuzz_tab, 0x0123456789abcdefULL, 1000);
	if (rtpc_ng_new(&fuzz_tab, 0, "d7:command4:pinge", 17, 1, NULL) == NULL)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct benc_node nodes[RTPC_NODES];
	const char *buf = (const char *)data, *dict;
	size_t dlen, len;

	if (rtpc_ng_match(&fuzz_tab, buf, size, &dict, &dlen) == NULL)
		return 0;
	if (dict < buf || dict + dlen != buf + size)
		__builtin_trap();
	if (benc_decode(nodes, RTPC_NODES, dict, dlen) <= 0)
		return 0;
	if (benc_str_eq(benc_dict_get(&nodes[0], "result"), "error"))
		benc_dict_str(&nodes[0], "error-reason", &len);
	benc_dict_str(&nodes[0], "sdp", &len);
	return 0;
}
