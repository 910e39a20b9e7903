/*
 * rtpc_client.c - the library a core links to talk to rtpctl, see
 * rtpc.h for the API and the wire protocol.
 *
 * One AF_SP_RAW NN_REQ socket: raw, because a cooked REQ socket allows
 * one request at a time and a core has many calls setting up at once.
 * Being raw, nanomsg neither numbers nor retries requests: each call
 * gets an id (in the SP header, bit 31 set), sits in a hash table by
 * id and in a list by deadline, and a single uv_timer fires for the
 * earliest deadline.  Replies come through a struct link_poll (lib/link.h),
 * a bounded batch per wake-up.
 *
 * A callback may call rtpc_call() or rtpc_cancel(); the call being
 * answered is unlinked before its callback runs.
 */
#include "rtpctl/rtpc.h"
#include "lib/benc.h"
#include "lib/cfg.h"
#include "lib/htab.h"
#include "lib/link.h"
#include "lib/list.h"
#include "lib/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RTPC_CL_MAXMSG  (1024 * 1024)
#define RTPC_CL_NODES   8192	/* a query reply of a big call is large */

struct rtpc_pending {
	struct htab_node h;		/* by id */
	struct list_node order;		/* deadline order */
	uint32_t id;
	uint64_t deadline;
	int timeout_ms;
	rtpc_reply_cb cb;
	void *arg;
};

struct rtpc_client {
	uv_loop_t *loop;
	struct link_poll *rx;		/* replies on sock */
	uv_timer_t timer;
	int sock;
	int closing;
	uint32_t next_id;
	int count;
	struct htab tab;		/* open calls by id */
	struct list_node order;		/* earliest deadline first */
	struct benc_node nodes[RTPC_CL_NODES];	/* decoding scratch */
};

static int
rtpc_nn_err(void)
{
	int e = nn_errno();

	return e ? -e : -EIO;
}

static void
rtpc_cl_unlink(struct rtpc_client *cl, struct rtpc_pending *p)
{
	htab_del(&cl->tab, &p->h);
	list_remove(&p->order);
	cl->count--;
}

static int
rtpc_cl_eq(const struct htab_node *n, const void *key)
{
	return ((const struct rtpc_pending *)n)->id == *(const uint32_t *)key;
}

static struct rtpc_pending *
rtpc_cl_find(const struct rtpc_client *cl, uint32_t id)
{
	return (struct rtpc_pending *)htab_find(&cl->tab, id, rtpc_cl_eq, &id);
}

static struct rtpc_pending *
rtpc_cl_first(const struct rtpc_client *cl)
{
	struct list_node *n = list_first(&cl->order);

	return n ? list_entry(n, struct rtpc_pending, order) : NULL;
}

/* Inserts p by deadline, scanning from the tail: usually O(1).
 * Returns 0 or -ENOMEM. */
static int
rtpc_cl_link(struct rtpc_client *cl, struct rtpc_pending *p)
{
	struct list_node *after = list_last(&cl->order);

	if (htab_add(&cl->tab, &p->h, p->id) != 0)
		return -ENOMEM;
	while (after && list_entry(after, struct rtpc_pending,
				   order)->deadline > p->deadline)
		after = list_prev(&cl->order, after);
	list_insert_after(after ? after : &cl->order, &p->order);
	cl->count++;
	return 0;
}

static void rtpc_cl_on_timer(uv_timer_t *t);

static void
rtpc_cl_arm(struct rtpc_client *cl)
{
	struct rtpc_pending *p = rtpc_cl_first(cl);
	uint64_t now = uv_now(cl->loop);

	if (cl->closing)
		return;
	if (p == NULL) {
		uv_timer_stop(&cl->timer);
		return;
	}
	uv_timer_start(&cl->timer, rtpc_cl_on_timer,
		       p->deadline > now ? p->deadline - now : 0, 0);
}

/* Unlinks p, runs its callback with r, frees it. */
static void
rtpc_cl_finish(struct rtpc_client *cl, struct rtpc_pending *p,
	       const struct rtpc_result *r)
{
	rtpc_cl_unlink(cl, p);
	p->cb(p->arg, r);
	free(p);
}

static void
rtpc_cl_fail(struct rtpc_client *cl, struct rtpc_pending *p, int status,
	     const char *reason)
{
	struct rtpc_result r = { status, reason, NULL, 0, "" };

	rtpc_cl_finish(cl, p, &r);
}

static void
rtpc_cl_on_timer(uv_timer_t *t)
{
	struct rtpc_client *cl = t->data;
	uint64_t now = uv_now(cl->loop);
	struct rtpc_pending *p;
	char why[64];

	while ((p = rtpc_cl_first(cl)) != NULL && p->deadline <= now) {
		snprintf(why, sizeof(why), "rtpctl did not answer in %d ms",
			 p->timeout_ms);
		rtpc_cl_fail(cl, p, -ETIMEDOUT, why);
	}
	rtpc_cl_arm(cl);
}

/*
 * Delivers one reply body to its call: see the reply dictionary in
 * rtpc.h.  rtpengine's "result": "error" becomes -EREMOTEIO with its
 * error-reason.
 */
static void
rtpc_cl_deliver(struct rtpc_client *cl, struct rtpc_pending *p,
		const char *body, size_t len)
{
	struct benc_node *nd = cl->nodes;
	const struct benc_node *e, *reply, *res;
	struct rtpc_result r = { 0, NULL, NULL, 0, "" };
	char inst[64] = "", reason[512];
	const char *s;
	size_t sl;

	if (benc_decode(nd, RTPC_CL_NODES, body, len) < 0 ||
	    nd[0].type != BENC_DICT) {
		rtpc_cl_fail(cl, p, -EPROTO, "malformed reply from rtpctl");
		return;
	}
	s = benc_dict_str(&nd[0], "instance", &sl);
	if (s && sl < sizeof(inst)) {
		memcpy(inst, s, sl);
		inst[sl] = '\0';
	}
	r.instance = inst;
	e = benc_dict_get(&nd[0], "errno");
	reply = benc_dict_get(&nd[0], "reply");
	if (e) {
		s = benc_dict_str(&nd[0], "reason", &sl);
		snprintf(reason, sizeof(reason), "%.*s", s ? (int)sl : 6,
			 s ? s : "rtpctl");
		r.status = e->type == BENC_INT && e->i > 0 && e->i < 4096 ?
			   -(int)e->i : -EPROTO;
		r.reason = reason;
	} else if (reply && reply->type == BENC_DICT) {
		r.reply = reply->raw;
		r.reply_len = reply->raw_len;
		res = benc_dict_get(reply, "result");
		if (benc_str_eq(res, "error")) {
			s = benc_dict_str(reply, "error-reason", &sl);
			snprintf(reason, sizeof(reason), "rtpengine %s: %.*s",
				 inst, s ? (int)sl : 13, s ? s : "unknown error");
			r.status = -EREMOTEIO;
			r.reason = reason;
		}
	} else {
		rtpc_cl_fail(cl, p, -EPROTO, "malformed reply from rtpctl");
		return;
	}
	rtpc_cl_finish(cl, p, &r);
}

/* The request id from the SP header cmsgs (an NN_MSG chunk), or 0. */
static uint32_t
rtpc_cl_hdr_id(void *ctrl)
{
	struct nn_msghdr h = { NULL, 0, &ctrl, NN_MSG };
	struct nn_cmsghdr *c;

	if (ctrl == NULL)
		return 0;
	for (c = NN_CMSG_FIRSTHDR(&h); c; c = NN_CMSG_NXTHDR(&h, c)) {
		unsigned char *d = NN_CMSG_DATA(c);
		size_t n;
		uint32_t id;

		if (c->cmsg_level != PROTO_SP || c->cmsg_type != SP_HDR)
			continue;
		memcpy(&n, d, sizeof(n));
		if (n != 4)
			return 0;
		memcpy(&id, d + sizeof(n), 4);
		return ntohl(id) & 0x7fffffff;
	}
	return 0;
}

/* A reply from the link_poll, to the call its SP header names. */
static void
rtpc_cl_on_msg(void *arg, struct link_msg *m)
{
	struct rtpc_client *cl = arg;
	uint32_t id = rtpc_cl_hdr_id(m->ctrl);
	struct rtpc_pending *p = id ? rtpc_cl_find(cl, id) : NULL;

	if (p)
		rtpc_cl_deliver(cl, p, m->body, m->len);
	else
		log_debug(LOG_SYS_RTP, "rtpc client: reply %u for no open "
			  "call (late or cancelled)", id);
	rtpc_cl_arm(cl);
}

/* Connects sock to each space-separated URL of list. */
static int
rtpc_cl_connect_all(int sock, const char *list)
{
	char buf[2048], *save = NULL, *tok;
	int n = 0;

	if (strlen(list) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, list);
	for (tok = strtok_r(buf, " \t,", &save); tok;
	     tok = strtok_r(NULL, " \t,", &save)) {
		if (nn_connect(sock, tok) < 0)
			return rtpc_nn_err();
		n++;
	}
	return n ? 0 : -EINVAL;
}

int
rtpc_client_new(struct rtpc_client **out, uv_loop_t *loop, const char *url)
{
	struct rtpc_client *cl;
	int rc, maxsz = RTPC_CL_MAXMSG;

	if (url == NULL)
		return -EINVAL;
	cl = calloc(1, sizeof(*cl));
	if (cl == NULL)
		return -ENOMEM;
	cl->loop = loop;
	list_init(&cl->order);
	cl->next_id = 1;
	cl->sock = nn_socket(AF_SP_RAW, NN_REQ);
	if (cl->sock < 0) {
		rc = rtpc_nn_err();
		free(cl);
		return rc;
	}
	if (nn_setsockopt(cl->sock, NN_SOL_SOCKET, NN_RCVMAXSIZE, &maxsz,
			  sizeof(maxsz)) < 0) {
		rc = rtpc_nn_err();
		goto fail;
	}
	rc = rtpc_cl_connect_all(cl->sock, url);
	if (rc < 0)
		goto fail;
	rc = link_poll_new(&cl->rx, loop, cl->sock, LINK_POLL_CTRL,
			   rtpc_cl_on_msg, cl, "rtpc client");
	if (rc < 0)
		goto fail;
	uv_timer_init(loop, &cl->timer);
	cl->timer.data = cl;
	*out = cl;
	return 0;
fail:
	nn_close(cl->sock);
	free(cl);
	return rc;
}

static void
rtpc_cl_on_close(uv_handle_t *h)
{
	struct rtpc_client *cl = h->data;

	htab_fini(&cl->tab);
	free(cl);
}

void
rtpc_client_free(struct rtpc_client *cl)
{
	struct rtpc_pending *p;

	if (cl == NULL || cl->closing)
		return;
	while ((p = rtpc_cl_first(cl)) != NULL)
		rtpc_cl_fail(cl, p, -ECANCELED, "client closed");
	cl->closing = 1;
	link_poll_free(cl->rx);	/* before nanomsg closes its fd */
	nn_close(cl->sock);
	uv_close((uv_handle_t *)&cl->timer, rtpc_cl_on_close);
}

int
rtpc_call(struct rtpc_client *cl, const char *dict, size_t len,
	  int timeout_ms, rtpc_reply_cb cb, void *arg)
{
	size_t ctrl[(NN_CMSG_SPACE(sizeof(size_t) + 4) + sizeof(size_t) - 1) /
		    sizeof(size_t)];
	struct nn_iovec iov = { (void *)dict, len };
	struct nn_msghdr mh = { &iov, 1, ctrl, NN_CMSG_SPACE(sizeof(size_t) + 4) };
	struct nn_cmsghdr *c = (struct nn_cmsghdr *)(void *)ctrl;
	struct rtpc_pending *p;
	size_t hl = 4;
	uint32_t wire;
	int rc;

	if (cl == NULL || cl->closing || dict == NULL || len == 0 ||
	    timeout_ms <= 0 || cb == NULL)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	/* Ids are 31 bits, never 0, never one still open. */
	do {
		p->id = cl->next_id++ & 0x7fffffff;
	} while (p->id == 0 || rtpc_cl_find(cl, p->id));
	memset(ctrl, 0, sizeof(ctrl));
	c->cmsg_len = NN_CMSG_LEN(sizeof(size_t) + 4);
	c->cmsg_level = PROTO_SP;
	c->cmsg_type = SP_HDR;
	wire = htonl(p->id | 0x80000000u);
	memcpy(NN_CMSG_DATA(c), &hl, sizeof(hl));
	memcpy(NN_CMSG_DATA(c) + sizeof(hl), &wire, 4);
	p->timeout_ms = timeout_ms;
	p->deadline = uv_now(cl->loop) + (uint64_t)timeout_ms;
	p->cb = cb;
	p->arg = arg;
	if (rtpc_cl_link(cl, p) != 0) {
		free(p);
		return -ENOMEM;
	}
	if (nn_sendmsg(cl->sock, &mh, NN_DONTWAIT) < 0) {
		rc = rtpc_nn_err();
		rtpc_cl_unlink(cl, p);
		free(p);
		return rc;
	}
	if (rtpc_cl_first(cl) == p)
		rtpc_cl_arm(cl);
	return (int)p->id;
}

int
rtpc_cancel(struct rtpc_client *cl, int id)
{
	struct rtpc_pending *p = id > 0 ? rtpc_cl_find(cl, (uint32_t)id) : NULL;

	if (p == NULL)
		return -ENOENT;
	rtpc_cl_unlink(cl, p);
	free(p);
	return 0;
}

int
rtpc_client_pending(const struct rtpc_client *cl)
{
	return cl ? cl->count : 0;
}

int
rtpc_ipc_url(const struct cfg *c, int id, char *out, size_t len)
{
	char buf[sizeof(c->rtpctl_ipc)], *save = NULL, *tok;
	int i = 0, n;

	if (c->rtpctl_ipc[0] == '\0') {
		if (id > 1)
			return -ENOENT;
		n = snprintf(out, len, "ipc://%s/rtpctl-1", c->run_dir);
		return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
	}
	if (id == 0) {
		n = snprintf(out, len, "%s", c->rtpctl_ipc);
		return (size_t)n >= len ? -ENAMETOOLONG : 0;
	}
	strcpy(buf, c->rtpctl_ipc);
	for (tok = strtok_r(buf, " \t,", &save); tok;
	     tok = strtok_r(NULL, " \t,", &save))
		if (++i == id) {
			n = snprintf(out, len, "%s", tok);
			return (size_t)n >= len ? -ENAMETOOLONG : 0;
		}
	return -ENOENT;
}
