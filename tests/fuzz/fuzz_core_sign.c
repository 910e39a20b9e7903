/*
 * fuzz_core_sign.c - the core's signed-token decoders on a message as
 * the core parses it: the top Via branch (core_branch_verify, the
 * edge's sip_branch_core too), each Route and Record-Route entry's
 * signature (core_rr_verify) and its flow or NAT token
 * (core_flow_parse).  A token that parses must print back to one that
 * parses the same, and a branch the core mints for the message must
 * verify.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core_int.h"
#define FUZZ_SETUP fuzz_setup
#include "tests/fuzz/fuzz.h"

static struct core *fuzz_core;

static void
fuzz_setup(void)
{
	parser_init();
	fuzz_core = calloc(1, sizeof(*fuzz_core));
	if (fuzz_core == NULL)
		__builtin_trap();
	fuzz_core->id = 3;
	memset(fuzz_core->key, 0x5a, sizeof(fuzz_core->key));
	if (core_sign_init(fuzz_core) != 0)
		__builtin_trap();
}

static void
fuzz_token(const char *user)
{
	struct core_leg l, l2;
	char tok[128];

	if (core_flow_parse(user, &l) != 0)
		return;
	if (core_flow_token(&l, tok, sizeof(tok)) < 0 ||
	    core_flow_parse(tok, &l2) != 0 || l2.edge_id != l.edge_id ||
	    l2.conn_id != l.conn_id || l2.transport != l.transport ||
	    l2.nat != l.nat)
		__builtin_trap();
}

static void
fuzz_routes(osip_message_t *m, osip_list_t *list)
{
	osip_list_iterator_t it;

	for (osip_route_t *r = osip_list_get_first(list, &it); r;
	     r = osip_list_get_next(&it)) {
		if (r->url == NULL)
			continue;
		core_rr_verify(fuzz_core, m, r->url);
		fuzz_token(r->url->username);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	osip_message_t *m = NULL;
	char branch[SIP_BRANCH_MAX], cid[SIP_BRANCH_CID_MAX + 1];
	const char *top;
	size_t cid_len;
	osip_via_t *via = NULL;

	if (size > 16384 || osip_message_init(&m) != 0)
		return 0;
	if (osip_message_parse(m, (const char *)data, size) != 0)
		goto cleanup;
	cid_len = core_call_id(m, cid, sizeof(cid));
	top = core_top_branch(m, &via);
	if (top) {
		core_branch_verify(fuzz_core, cid, cid_len, top);
		sip_branch_core(top, strlen(top));
	}
	if (core_branch_make(fuzz_core, m, 42, branch, sizeof(branch)) < 0 ||
	    core_branch_verify(fuzz_core, cid, cid_len, branch) != 0)
		__builtin_trap();
	fuzz_routes(m, &m->routes);
	fuzz_routes(m, &m->record_routes);
	if (m->req_uri)
		core_rr_verify(fuzz_core, m, m->req_uri);
	if (m->req_uri)
		fuzz_token(m->req_uri->username);
cleanup:
	osip_message_free(m);
	return 0;
}
