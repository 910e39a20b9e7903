/*
 * fuzz_core_splice.c - the core's splicer (core_splice.c) on any bytes:
 * the first byte picks the edits (pop the top Via, pop 0-3 Route
 * values or all of them, write Max-Forwards), the rest is the message.
 * It must never write past its buffer, and where libosip2 reads both
 * the input and the result and both count the input's Vias and Routes
 * alike (the core splices only then), the result must hold exactly the
 * Vias and Routes the edits left.  Then the response made up from the
 * same text (core_splice_reply) gets the same checks.
 */
#include <errno.h>
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

static osip_message_t *
fuzz_parse(const char *s, size_t len)
{
	osip_message_t *m = NULL;

	if (osip_message_init(&m) != 0)
		return NULL;
	if (osip_message_parse(m, s, len) != 0) {
		osip_message_free(m);
		return NULL;
	}
	return m;
}

/* The made-up response from the request's text: where libosip2 read
 * the same Vias, the result parses with them and the same Call-ID. */
static void
fuzz_reply(const char *raw, size_t len, osip_message_t *in, char *buf,
	   size_t cap)
{
	static const char tail[] = "Content-Length: 0\r\n\r\n";
	struct core_splice_reply rp = {
		.start = "SIP/2.0 200 OK\r\n", .to_tag = "sm1",
		.n_via = osip_list_size(&in->vias),
		.tail = tail, .tail_len = sizeof(tail) - 1,
	};
	osip_message_t *out;
	int n;

	n = core_splice_reply(buf, cap, raw, len, &rp);
	if (n == -ENOSPC || (n >= 0 && (size_t)n > cap))
		__builtin_trap();
	if (n < 0 || in->call_id == NULL || in->call_id->number == NULL)
		return;
	out = fuzz_parse(buf, (size_t)n);
	if (out == NULL)
		return;
	if (osip_list_size(&out->vias) != rp.n_via || out->call_id == NULL ||
	    out->call_id->number == NULL ||
	    strcmp(out->call_id->number, in->call_id->number) != 0)
		__builtin_trap();
	osip_message_free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char start[] = "MESSAGE sip:x@192.0.2.2 SIP/2.0\r\n";
	static const char top[] = "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKf\r\n";
	struct core_splice sp = { .max_forwards = -1 };
	osip_message_t *in = NULL, *out = NULL;
	const char *raw = (const char *)data + 1;
	size_t len = size - 1, cap;
	char *buf;
	int n, routes;

	if (size < 1 || size > 16384)
		return 0;
	sp.via_pop = data[0] & 1;
	routes = (data[0] >> 1) & 7;
	sp.route_pop = routes > 4 ? CORE_SPLICE_ROUTES_ALL : routes;
	if (data[0] & 0x10)
		sp.max_forwards = data[0] >> 5;
	/* As the core does: lines on top come with a start line of ours. */
	if (data[0] & 0x80 && !sp.via_pop) {
		sp.start = start;
		sp.start_len = sizeof(start) - 1;
		sp.top = top;
		sp.top_len = sizeof(top) - 1;
	}
	/* exactly the bound, so ASan sees any write past it */
	cap = len + sp.start_len + sp.top_len + 32;
	buf = malloc(cap);
	if (buf == NULL)
		return 0;
	n = core_splice(buf, cap, raw, len, &sp);
	if (n == -ENOSPC || (n >= 0 && (size_t)n > cap))
		__builtin_trap();
	if (n < 0)
		goto done;
	in = fuzz_parse(raw, len);
	out = in ? fuzz_parse(buf, (size_t)n) : NULL;
	if (in && out && sp.n_via == osip_list_size(&in->vias) &&
	    sp.n_route == osip_list_size(&in->routes)) {
		int nv = osip_list_size(&in->vias) - sp.via_pop +
			 (sp.top_len ? 1 : 0);
		int nr = sp.route_pop == CORE_SPLICE_ROUTES_ALL ? 0 :
			 osip_list_size(&in->routes) - sp.route_pop;

		if (osip_list_size(&out->vias) != nv ||
		    osip_list_size(&out->routes) != nr)
			__builtin_trap();
	}
	if (in)
		fuzz_reply(raw, len, in, buf, cap);
done:
	osip_message_free(in);
	osip_message_free(out);
	free(buf);
	return 0;
}
