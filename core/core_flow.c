/*
 * core_flow.c - what the core does when an edge reports a connection
 * (an RFC 5626 flow) gone: the location store forgets the bindings
 * reached through it, and a branch that was sent down it fails at once
 * instead of waiting out its timers.  "Gone" includes a connection of
 * an earlier start of that edge (another incarnation in its id, see
 * lib/env.h): the edge holds no such connection, hands the request
 * back, and the binding that named it goes like any closed flow's.
 * Cost: one location clean-up per closed connection, one parse when
 * the edge hands a request back.
 */
#include <string.h>

#include "core/core_int.h"

/*
 * An edge says a connection is gone: its bindings stop being used and,
 * when the edge hands back a request it could not deliver down that
 * flow, the branch fails at once with 430 Flow Failed (RFC 5626 5.3),
 * or as a transport error (RFC 3261 16.9: a 503 for the branch, 500 for
 * the caller) when the edge could not carry it (ENV_F_DIAL_FAILED: a
 * connection that never opened, a datagram too big to send; with
 * ENV_F_PEER_REFUSED a TLS peer whose certificate did not prove the
 * name), instead of waiting for timer B or F.
 */
void
core_flow_failed(struct core *c, const struct env *in)
{
	osip_message_t *m = NULL;
	struct core_ctx *x;
	const char *br;
	int n;

	n = loc_remove_conn(c->loc, in->edge_id, in->conn_id, core_wall_s(c));
	if (n > 0)
		log_info(LOG_SYS_LOC, "edge %u connection " ENV_CONN_FMT
			 " gone: %d binding%s dropped", in->edge_id,
			 ENV_CONN_ARGS(in->conn_id), n, n == 1 ? "" : "s");
	if (in->len == 0 || osip_message_init(&m) != 0)
		return;
	if (osip_message_parse(m, in->msg, in->len) != 0 || !MSG_IS_REQUEST(m) ||
	    (br = core_top_branch(m, NULL)) == NULL)
		goto done;
	x = core_ctx_find(c, br, MSG_IS_CANCEL(m));
	if (x) {
		core_log_ctx(m);
		/* RFC 3261 16.9: a transport error, not a flow that a
		 * binding named. */
		if (in->flags & ENV_F_PEER_REFUSED) {
			/* Set before the failure: core_fed reads it to fail
			 * over to a TLS target only, and to say why. */
			x->downstream = CORE_DOWN_TLS;
			core_ctx_fail(x, 503, "TLS peer did not prove the next "
				      "hop's name (RFC 5922)");
		} else if (in->flags & ENV_F_DIAL_FAILED)
			core_ctx_transport_error(x, "next hop unreachable");
		else
			core_ctx_fail(x, 430, NULL);
		log_ctx_clear();
	}
done:
	osip_message_free(m);
}
