/*
 * fuzz_core_resp.c - the core's response scan (core_splice_scan) on any
 * bytes, against libosip2: whenever the scan accepts an input, libosip2
 * must parse it and read the same status code, top Via branch, number
 * of Via values, Call-ID (as core_call_id writes it) and CSeq method,
 * and the copy the core forwards (core_splice_scanned) must be the one
 * core_splice writes, having popped the top Via of exactly those Vias.
 * The core forwards what the scan accepts without libosip2, so any
 * difference is a response matched or forwarded other than the parsed
 * path would.
 */
#include <stdlib.h>
#include <string.h>

#include <osipparser2/osip_message.h>
#include <osipparser2/osip_parser.h>

#include "core/core_splice.h"
#define FUZZ_SETUP fuzz_setup
#include "tests/fuzz/fuzz.h"

static void
fuzz_setup(void)
{
	parser_init();
}

/* The Call-ID as the core prints it: number, '@' and host if any. */
static int
fuzz_call_id_same(const struct core_scan *sc, const osip_call_id_t *ci)
{
	size_t n;

	if (ci == NULL || ci->number == NULL)
		return 0;
	n = strlen(ci->number);
	if (ci->host == NULL)
		return fuzz_same(sc->call_id, sc->call_id_len, ci->number);
	return n < sc->call_id_len && memcmp(sc->call_id, ci->number, n) == 0 &&
	       sc->call_id[n] == '@' &&
	       fuzz_same(sc->call_id + n + 1, sc->call_id_len - n - 1, ci->host);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *raw = (const char *)data;
	struct core_splice sp = { .via_pop = 1, .max_forwards = -1 };
	osip_generic_param_t *br = NULL;
	osip_message_t *m = NULL;
	struct core_scan sc;
	osip_via_t *via;
	char *buf;
	int n;

	if (size > 16384 || core_splice_scan(raw, size, &sc) != 0)
		return 0;
	if (osip_message_init(&m) != 0)
		return 0;
	if (osip_message_parse(m, raw, size) != 0 || m->sip_version == NULL ||
	    !MSG_IS_RESPONSE(m))
		__builtin_trap();
	via = osip_list_get(&m->vias, 0);
	if (via == NULL || osip_via_param_get_byname(via, "branch", &br) != 0 ||
	    br == NULL)
		__builtin_trap();
	if (m->status_code != sc.code ||
	    osip_list_size(&m->vias) != sc.n_via ||
	    !fuzz_same(sc.branch, sc.branch_len, br->gvalue) ||
	    !fuzz_call_id_same(&sc, m->call_id) || m->cseq == NULL ||
	    !fuzz_same(sc.method, sc.method_len, m->cseq->method))
		__builtin_trap();
	/* exactly the bound, so ASan sees any write past it */
	buf = malloc(2 * size + 2);
	if (buf == NULL)
		goto done;
	n = core_splice(buf, size + 1, raw, size, &sp);
	if (n < 0 || sp.n_via != sc.n_via)
		__builtin_trap();
	/* The copy the core forwards is the one core_splice writes. */
	if (core_splice_scanned(buf + size + 1, size + 1, raw, size, &sc) != n ||
	    memcmp(buf, buf + size + 1, (size_t)n) != 0)
		__builtin_trap();
	free(buf);
done:
	osip_message_free(m);
	return 0;
}
