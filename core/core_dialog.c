/*
 * core_dialog.c - the requests the proxy writes itself rather than
 * forwards: the Via of each branch, the CANCEL and the hop-by-hop ACK
 * of a branch (RFC 3261 9.1, 17.1.1.3), and the ACK and BYE that end a
 * callee's dialog nobody will carry on.
 *
 * They live apart from the transaction state machine (core_txn.c) that
 * decides when to send them.  Cost: a CANCEL or ACK re-parses the
 * branch's serialised request once, which is rarer than keeping every
 * forwarded request parsed.
 */
#include "core/core_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
core_via_push(struct core *c, osip_message_t *m, const struct core_leg *leg,
	      uint64_t token, char *branch, size_t cap)
{
	const struct cfg_edge *e = core_edge_or_first(c, leg->edge_id);
	const char *sb = core_edge_sent_by(c, e, leg->transport);
	char v[CFG_ADDR_LEN + SIP_BRANCH_MAX + 64];
	struct sip_cat b;
	osip_via_t *via = NULL;

	if (core_branch_make(c, m, token, branch, cap) < 0)
		return -ENOSPC;
	sip_cat_init(&b, v, sizeof(v));
	sip_cat_mem(&b, "SIP/2.0/", 8);
	sip_cat_str(&b, env_transport_name(leg->transport));
	sip_cat_ch(&b, ' ');
	sip_cat_str(&b, sb);
	sip_cat_mem(&b, ";branch=", 8);
	sip_cat_str(&b, branch);
	/* to a party whose CSeq runs ahead (a trunk that challenged): a
	 * 2xx resent after our transaction ended says by how much */
	if (leg->cseq_delta) {
		sip_cat_mem(&b, ";sm-cs=", 7);
		sip_cat_uint(&b, leg->cseq_delta);
	}
	sip_cat_mem(&b, ";rport", 6);
	if (osip_via_init(&via) != 0)
		return -ENOMEM;
	if (osip_via_parse(via, v) != 0 ||
	    osip_list_add(&m->vias, via, 0) < 0) {
		osip_via_free(via);
		return -EINVAL;
	}
	return 0;
}

/*
 * Builds the CANCEL or ACK (RFC 3261 9.1, 17.1.1.3) for the request a
 * branch sent: same Request-URI, top Via, Route set, From, Call-ID and
 * CSeq number; the To of `to` (the final response, for an ACK).
 */
static osip_message_t *
core_dialog_derive(const struct core_ctx *x, const char *method, const osip_to_t *to)
{
	osip_message_t *orig = NULL, *m = NULL;
	osip_via_t *via = NULL;
	char *num;

	if (osip_message_init(&orig) != 0)
		return NULL;
	if (osip_message_parse(orig, x->req, x->req_len) != 0 ||
	    osip_message_init(&m) != 0)
		goto fail;
	osip_message_set_method(m, osip_strdup(method));
	osip_message_set_version(m, osip_strdup("SIP/2.0"));
	if (osip_uri_clone(orig->req_uri, &m->req_uri) != 0 ||
	    osip_message_get_via(orig, 0, &via) < 0 ||
	    osip_via_clone(via, &via) != 0)
		goto fail;
	osip_list_add(&m->vias, via, 0);
	if (osip_list_clone(&orig->routes, &m->routes,
			    (int (*)(void *, void **))osip_route_clone) != 0 ||
	    osip_from_clone(orig->from, &m->from) != 0 ||
	    osip_to_clone(to ? to : orig->to, &m->to) != 0 ||
	    osip_call_id_clone(orig->call_id, &m->call_id) != 0 ||
	    osip_cseq_init(&m->cseq) != 0)
		goto fail;
	num = osip_strdup(orig->cseq->number);
	osip_cseq_set_number(m->cseq, num);
	osip_cseq_set_method(m->cseq, osip_strdup(method));
	osip_message_set_max_forwards(m, "70");
	osip_message_set_content_length(m, "0");
	osip_message_free(orig);
	return m;
fail:
	osip_message_free(orig);
	if (m)
		osip_message_free(m);
	return NULL;
}

/*
 * A callee answered 2xx but the call cannot go on (no media relay
 * serves its SDP, and the caller got a 5xx instead): the proxy ends that
 * dialog itself, an ACK then a BYE down the same branch (RFC 3261
 * 13.2.2.4, 15), so the callee is not left in a call nobody will end.
 * The route set towards the callee is the Record-Route entries above
 * ours, reversed.
 */
void
core_dialog_hangup(struct core_ctx *x, const osip_message_t *resp)
{
	static const char *const methods[] = { "ACK", "BYE" };
	struct core *c = x->core;
	osip_contact_t *ct = NULL;
	int n_rr = osip_list_size(&resp->record_routes), ours = 0;
	char branch[SIP_BRANCH_MAX], num[16];

	if (osip_message_get_contact(resp, 0, &ct) < 0 || ct == NULL ||
	    ct->url == NULL || resp->cseq == NULL || resp->cseq->number == NULL)
		return;
	while (ours < n_rr) {
		osip_record_route_t *rr = osip_list_get(&resp->record_routes,
							 ours);

		if (rr->url && core_uri_is_self(c, rr->url, NULL))
			break;
		ours++;
	}
	if (ours == n_rr)
		ours = 0;	/* not record-routed by us: no route set */
	for (int k = 0; k < 2; k++) {
		osip_message_t *m = NULL;

		if (osip_message_init(&m) != 0)
			return;
		osip_message_set_method(m, osip_strdup(methods[k]));
		osip_message_set_version(m, osip_strdup("SIP/2.0"));
		/* resp went upstream with the caller's CSeq: the
		 * callee's runs cseq_delta ahead */
		snprintf(num, sizeof(num), "%lu",
			 strtoul(resp->cseq->number, NULL, 10) +
			 x->down.cseq_delta + (unsigned)k);
		/* The Call-ID first: our branch is signed for it. */
		if (osip_uri_clone(ct->url, &m->req_uri) != 0 ||
		    osip_call_id_clone(resp->call_id, &m->call_id) != 0 ||
		    core_via_push(c, m, &x->down, ++c->token, branch,
				  sizeof(branch)) != 0 ||
		    osip_from_clone(resp->from, &m->from) != 0 ||
		    osip_to_clone(resp->to, &m->to) != 0 ||
		    osip_cseq_init(&m->cseq) != 0) {
			osip_message_free(m);
			return;
		}
		osip_cseq_set_number(m->cseq, osip_strdup(num));
		osip_cseq_set_method(m->cseq, osip_strdup(methods[k]));
		for (int i = ours - 1; i >= 0; i--) {
			osip_record_route_t *rr = osip_list_get(
				&resp->record_routes, i);
			osip_route_t *r = NULL;

			if (osip_route_clone(rr, &r) == 0)
				osip_list_add(&m->routes, r, -1);
		}
		osip_message_set_max_forwards(m, "70");
		osip_message_set_content_length(m, "0");
		core_send_msg(c, &x->down, m);
		osip_message_free(m);
	}
}

osip_message_t *
core_dialog_cancel(const struct core_ctx *x)
{
	return core_dialog_derive(x, "CANCEL", NULL);
}

void
core_dialog_ack(struct core_ctx *x, const osip_message_t *resp)
{
	osip_message_t *m = core_dialog_derive(x, "ACK", resp->to);

	if (m == NULL)
		return;
	core_send_msg(x->core, &x->down, m);
	osip_message_free(m);
}

