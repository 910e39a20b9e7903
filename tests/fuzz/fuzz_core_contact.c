/*
 * fuzz_core_contact.c - the registrar's reading of a REGISTER
 * (core_registrar.c): the Expires header (core_reg_number) and each
 * Contact (core_reg_contact_read: its URI, expires, q, +sip.instance,
 * reg-id), on a message as the core parses it, under the default
 * expiry bounds.  What it accepts must fit a binding: a URI and an
 * instance that are strings of their fields, q within 0..1000, a time
 * of 0 or within the bounds; what it refuses is a 400 with a reason,
 * or a 423.
 */
#include <string.h>

#include "core/core_int.h"
#define FUZZ_SETUP fuzz_setup
#include "tests/fuzz/fuzz.h"

static struct cfg fuzz_cfg;

static void
fuzz_setup(void)
{
	char err[256];

	parser_init();
	if (cfg_load(&fuzz_cfg, NULL, err, sizeof(err)) != 0)
		__builtin_trap();
}

static void
fuzz_contact(osip_contact_t *ct, long hdr_expires)
{
	struct core_reg_contact k;
	const char *why = NULL;
	int code;

	memset(&k, 0x5a, sizeof(k));
	code = core_reg_contact_read(&fuzz_cfg, ct, hdr_expires, &k, &why);
	if (code == 423 || (code == 400 && why != NULL))
		return;
	if (code != 0 ||
	    memchr(k.uri, '\0', sizeof(k.uri)) == NULL ||
	    memchr(k.instance, '\0', sizeof(k.instance)) == NULL ||
	    k.q > 1000 || k.granted < 0 ||
	    k.granted > fuzz_cfg.max_expires ||
	    (k.granted != 0 && k.granted < fuzz_cfg.min_expires))
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	osip_message_t *m = NULL;
	osip_header_t *eh = NULL;
	osip_list_iterator_t it;
	long hdr_expires = -1;
	int n = 0;

	if (size > 16384 || osip_message_init(&m) != 0)
		return 0;
	if (osip_message_parse(m, (const char *)data, size) != 0)
		goto cleanup;
	if (osip_message_get_expires(m, 0, &eh) >= 0 && eh) {
		hdr_expires = core_reg_number(eh->hvalue);
		if (hdr_expires < -2)
			__builtin_trap();
		if (hdr_expires < 0)
			goto cleanup;	/* 400 Bad Expires */
	}
	/* As the registrar: a wildcard is no Contact to decode, and past
	 * 64 the request is refused whole. */
	for (osip_contact_t *ct = osip_list_get_first(&m->contacts, &it);
	     ct && n < 64; ct = osip_list_get_next(&it), n++) {
		if (ct->displayname && strcmp(ct->displayname, "*") == 0)
			continue;
		fuzz_contact(ct, hdr_expires);
	}
cleanup:
	osip_message_free(m);
	return 0;
}
