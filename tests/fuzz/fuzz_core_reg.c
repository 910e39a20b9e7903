/*
 * fuzz_core_reg.c - the core's REGISTER scan (core_splice_scan_register)
 * on any bytes, against libosip2: whenever the scan accepts an input,
 * libosip2 must parse it as a REGISTER and read the same Via count and
 * top branch, Call-ID (as the registrar prints it), CSeq number, From
 * tag, To user and host without a tag, first Max-Forwards, Expires and
 * User-Agent values, the CSeq number as written (the transaction key
 * of core_auth.c), no more Authorization values than the scan kept,
 * and the same Contacts: each URI as libosip2 writes
 * it back, and the expires, q, +sip.instance and reg-id parameters.
 * The registrar stores what the scan read without libosip2, so any
 * difference is a binding other than the parsed path would store.
 * And the reply made from the lines the scan kept
 * (core_splice_reply_lines) is the one core_splice_reply writes.
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

/* A slice and what libosip2 holds (NULL: none) say the same. */
static int
fuzz_opt(const char *s, size_t len, const char *z)
{
	return s == NULL ? z == NULL : fuzz_same(s, len, z);
}

/* The value of ct's parameter name as the registrar looks it up (NULL:
 * none, or one without a value); *found whether it is there at all. */
static const char *
fuzz_param(osip_contact_t *ct, const char *name, int *found)
{
	osip_generic_param_t *p = NULL;

	*found = osip_contact_param_get_byname(ct, (char *)name, &p) == 0 &&
		 p != NULL;
	return *found ? p->gvalue : NULL;
}

static int
fuzz_param_same(osip_contact_t *ct, const char *name, const char *s,
		size_t len)
{
	int found;
	const char *v = fuzz_param(ct, name, &found);

	return s == NULL ? !found : fuzz_same(s, len, v);
}

static int
fuzz_header_first(osip_message_t *m, const char *name, const char *s,
		  size_t len)
{
	osip_header_t *h = NULL;

	if (osip_message_header_get_byname(m, name, 0, &h) < 0 || h == NULL)
		return s == NULL;
	return s != NULL && fuzz_same(s, len, h->hvalue);
}

static int
fuzz_number_first(osip_message_t *m, const char *name, long v)
{
	osip_header_t *h = NULL;

	if (osip_message_header_get_byname(m, name, 0, &h) < 0 || h == NULL)
		return v < 0;
	/* the scan takes digits only */
	return v >= 0 && h->hvalue && strtol(h->hvalue, NULL, 10) == v &&
	       strspn(h->hvalue, "0123456789") == strlen(h->hvalue);
}

/* Both ways of writing the 200 give the same text. */
static void
fuzz_reply_same(const char *raw, size_t size, const struct core_scan_reg *r)
{
	static char a[32768], b[32768];
	struct core_splice_reply rp = {
		.start = "SIP/2.0 200 OK\r\n", .to_tag = "t1",
		.n_via = r->n_via, .tail = "Content-Length: 0\r\n\r\n",
		.tail_len = 21,
	};
	int na = core_splice_reply(a, sizeof(a), raw, size, &rp), nb;

	if (r->n_lines < 0)
		return;
	nb = core_splice_reply_lines(b, sizeof(b), raw, r->lines,
				     r->n_lines, &rp);
	if (na < 0 || na != nb || memcmp(a, b, (size_t)na) != 0)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *raw = (const char *)data;
	osip_generic_param_t *p = NULL;
	osip_message_t *m = NULL;
	struct core_scan_reg r;
	char *s = NULL;
	osip_via_t *via;

	if (size > 16384 || core_splice_scan_register(raw, size, &r) != 0)
		return 0;
	if (osip_message_init(&m) != 0)
		return 0;
	if (osip_message_parse(m, raw, size) != 0 || m->sip_version == NULL ||
	    !MSG_IS_REQUEST(m) || strcmp(m->sip_method, "REGISTER") != 0)
		__builtin_trap();
	via = osip_list_get(&m->vias, 0);
	if (via == NULL || osip_via_param_get_byname(via, "branch", &p) != 0 ||
	    p == NULL || !fuzz_same(r.branch, r.branch_len, p->gvalue) ||
	    osip_list_size(&m->vias) != r.n_via)
		__builtin_trap();
	if (m->call_id == NULL || osip_call_id_to_str(m->call_id, &s) != 0 ||
	    !fuzz_same(r.call_id, r.call_id_len, s))
		__builtin_trap();
	osip_free(s);
	if (m->cseq == NULL || m->cseq->number == NULL ||
	    strtoul(m->cseq->number, NULL, 10) != r.cseq ||
	    !fuzz_same(r.cseq_num, r.cseq_num_len, m->cseq->number))
		__builtin_trap();
	/* each Authorization value libosip2 reads is one the scan kept */
	if (osip_list_size(&m->authorizations) > r.n_auth)
		__builtin_trap();
	p = NULL;
	if (m->from == NULL || (osip_from_get_tag(m->from, &p) == 0 && p ?
				!fuzz_opt(r.from_tag, r.from_tag_len, p->gvalue) :
				r.from_tag != NULL))
		__builtin_trap();
	p = NULL;
	if (m->to == NULL || m->to->url == NULL ||
	    (osip_to_get_tag(m->to, &p) == 0 && p && p->gvalue) ||
	    !fuzz_same(r.to_user, r.to_user_len, m->to->url->username) ||
	    !fuzz_same(r.to_host, r.to_host_len, m->to->url->host))
		__builtin_trap();
	if (!fuzz_number_first(m, "max-forwards", r.max_forwards) ||
	    !fuzz_number_first(m, "expires", r.expires) ||
	    !fuzz_header_first(m, "user-agent", r.ua, r.ua_len))
		__builtin_trap();
	if (osip_list_size(&m->contacts) != r.n_contact)
		__builtin_trap();
	for (int i = 0; i < r.n_contact; i++) {
		osip_contact_t *ct = osip_list_get(&m->contacts, i);
		const struct core_scan_contact *sc = &r.ct[i];

		s = NULL;
		if (ct == NULL || ct->url == NULL ||
		    (ct->displayname && strcmp(ct->displayname, "*") == 0) ||
		    osip_uri_to_str(ct->url, &s) != 0 ||
		    !fuzz_same(sc->uri, sc->uri_len, s))
			__builtin_trap();
		osip_free(s);
		if (!fuzz_param_same(ct, "expires", sc->expires,
				     sc->expires_len) ||
		    !fuzz_param_same(ct, "q", sc->q, sc->q_len) ||
		    !fuzz_param_same(ct, "+sip.instance", sc->instance,
				     sc->instance_len) ||
		    !fuzz_param_same(ct, "reg-id", sc->reg_id, sc->reg_id_len))
			__builtin_trap();
	}
	osip_message_free(m);
	fuzz_reply_same(raw, size, &r);
	return 0;
}
