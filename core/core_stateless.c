/*
 * core_stateless.c - responses forwarded with no transaction: a 2xx
 * whose client transaction has gone (a retransmission after the first
 * was forwarded) still has to reach the caller, so it follows its Via
 * (RFC 3261 16.11, 18.2.2: received and rport when present).  Cost: one
 * Via parse, no state kept.
 */
#include "core/core_int.h"

#include <stdlib.h>

/*
 * A response that matches no client transaction: forward it statelessly
 * along its Via (RFC 3261 16.11), as for 2xx retransmissions after the
 * transaction has gone.
 */
void
core_resp_stateless(struct core *c, const struct env *in, osip_message_t *m)
{
	osip_via_t *via = NULL;
	osip_generic_param_t *p = NULL;
	struct core_leg up;
	const char *host;
	int port;

	core_leg_from_env(&up, in);
	up.conn_id = 0;		/* the edge finds a connection to dst */
	osip_list_remove(&m->vias, 0);
	if (osip_message_get_via(m, 0, &via) < 0 || via == NULL)
		return;
	host = via->host;
	port = core_via_port(via);
	if (osip_via_param_get_byname(via, "received", &p) == 0 && p &&
	    p->gvalue)
		host = p->gvalue;
	p = NULL;
	if (osip_via_param_get_byname(via, "rport", &p) == 0 && p &&
	    p->gvalue)
		port = atoi(p->gvalue);
	if (host == NULL || env_sa_from(&up.dst, host, port) != 0)
		return;
	c->st.stateless_fwd++;
	core_send_msg(c, &up, m);
}

