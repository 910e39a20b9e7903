/*
 * test_rtpc_client.c - the client library (rtpctl/rtpc_client.c)
 * against a stand-in rtpctl: a raw NN_REP socket in the test that
 * answers out of order.  Shown: many calls in flight on one client,
 * replies matched by id whatever their order, rtpengine's reply passed
 * through, rtpengine's "error" as -EREMOTEIO, rtpctl's errors with
 * their reason, a malformed reply as -EPROTO, the client's own timeout,
 * cancel, and -ECANCELED for what is open at free.  No sleeps: the
 * loop runs until every callback came, with a deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/benc.h"
#include "rtpctl/rtpc.h"

#define CALLS 40

struct got {
	int done;
	int status;
	char reason[128];
	char reply[128];
	char instance[64];
};

static struct got got[CALLS + 2];
static int n_done;

static void
on_reply(void *arg, const struct rtpc_result *r)
{
	struct got *g = arg;

	assert_int_equal(g->done, 0);	/* exactly once */
	g->done = 1;
	g->status = r->status;
	snprintf(g->reason, sizeof(g->reason), "%s", r->reason ? r->reason : "");
	snprintf(g->reply, sizeof(g->reply), "%.*s", (int)r->reply_len,
		 r->reply ? r->reply : "");
	snprintf(g->instance, sizeof(g->instance), "%s", r->instance);
	n_done++;
}

struct srv {
	int sock;
	void *ctrl[CALLS + 2];
	char body[CALLS + 2][64];
	int n;
};

/* Collects requests from the stand-in's socket. */
static void
srv_drain(struct srv *s)
{
	for (;;) {
		void *body = NULL, *ctrl = NULL;
		struct nn_iovec iov = { &body, NN_MSG };
		struct nn_msghdr mh = { &iov, 1, &ctrl, NN_MSG };
		int n = nn_recvmsg(s->sock, &mh, NN_DONTWAIT);

		if (n < 0)
			return;
		assert_true(s->n < CALLS + 2);
		snprintf(s->body[s->n], sizeof(s->body[0]), "%.*s", n,
			 (char *)body);
		s->ctrl[s->n++] = ctrl;
		nn_freemsg(body);
	}
}

static void
srv_reply(struct srv *s, int i, const char *body)
{
	struct nn_iovec iov = { (void *)body, strlen(body) };
	struct nn_msghdr mh = { &iov, 1, &s->ctrl[i], NN_MSG };

	assert_true(nn_sendmsg(s->sock, &mh, 0) >= 0);
	s->ctrl[i] = NULL;
}

static void
run_until(uv_loop_t *loop, int *counter, int want)
{
	uint64_t end = uv_now(loop) + 5000;

	while (*counter < want && uv_now(loop) < end)
		uv_run(loop, UV_RUN_ONCE);
	assert_int_equal(*counter, want);
}

static void
on_tick(uv_timer_t *t)
{
	srv_drain(t->data);
}

static void
test_rtpc_client__many_in_flight(void **state)
{
	struct rtpc_client *cl;
	struct srv s = { 0 };
	uv_loop_t loop;
	uv_timer_t tick;
	char url[128], dict[64];
	int ids[CALLS + 2];

	(void)state;
	snprintf(url, sizeof(url), "ipc:///tmp/sm-test-rtpc-%d", (int)getpid());
	s.sock = nn_socket(AF_SP_RAW, NN_REP);
	assert_true(s.sock >= 0);
	assert_true(nn_bind(s.sock, url) >= 0);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(rtpc_client_new(&cl, &loop, url), 0);
	/* The stand-in is polled by a timer: it is not the unit here. */
	uv_timer_init(&loop, &tick);
	tick.data = &s;
	uv_timer_start(&tick, on_tick, 1, 1);

	/* Calls may be refused until nanomsg has connected. */
	for (uint64_t end = uv_now(&loop) + 5000; uv_now(&loop) < end;) {
		ids[0] = rtpc_call(cl, "d7:command4:pinge", 17, 3000, on_reply,
				   &got[0]);
		if (ids[0] != -EAGAIN)
			break;
		uv_run(&loop, UV_RUN_NOWAIT);
	}
	assert_true(ids[0] > 0);
	for (int i = 1; i < CALLS; i++) {
		snprintf(dict, sizeof(dict), "d7:command5:query7:call-id%d:%de",
			 i < 10 ? 1 : 2, i);
		ids[i] = rtpc_call(cl, dict, strlen(dict), i == CALLS - 1 ?
				   100 : 3000, on_reply, &got[i]);
		assert_true(ids[i] > 0);
	}
	assert_int_equal(rtpc_client_pending(cl), CALLS);
	assert_int_equal(rtpc_call(cl, "", 0, 100, on_reply, NULL), -EINVAL);
	assert_int_equal(rtpc_call(cl, "de", 2, 0, on_reply, NULL), -EINVAL);
	run_until(&loop, &s.n, CALLS);
	/* Cancelled: its reply will be dropped. */
	assert_int_equal(rtpc_cancel(cl, ids[5]), 0);
	assert_int_equal(rtpc_cancel(cl, ids[5]), -ENOENT);

	/* Answer in reverse order; the bodies say which request is which. */
	for (int i = CALLS - 2; i >= 0; i--) {
		char body[256];
		int k;

		if (i == 0) {
			k = 0;
		} else {
			/* "...7:call-id<len>:<k>e" */
			const char *v = strchr(strstr(s.body[i], "call-id") + 7,
					       ':');

			assert_non_null(v);
			k = (int)strtol(v + 1, NULL, 10);
		}
		if (k % 4 == 0)
			snprintf(body, sizeof(body), "d8:instance14:127.0.0.1:2223"
				 "5:replyd6:result2:okee");
		else if (k % 4 == 1)
			snprintf(body, sizeof(body), "d5:errnoi113e6:reason22:no "
				 "rtpengine availablee");
		else if (k % 4 == 2)
			snprintf(body, sizeof(body), "d8:instance14:127.0.0.1:2224"
				 "5:replyd6:result5:error12:error-reason15:"
				 "Unknown call-idee");
		else
			snprintf(body, sizeof(body), "d5:reply");	/* malformed */
		srv_reply(&s, i, body);
	}
	/* All but the cancelled one: 38 replies and one timeout. */
	run_until(&loop, &n_done, CALLS - 1);
	for (int k = 0; k < CALLS - 1; k++) {
		if (k == 5) {
			assert_int_equal(got[k].done, 0);
			continue;
		}
		assert_int_equal(got[k].done, 1);
		switch (k % 4) {
		case 0:
			assert_int_equal(got[k].status, 0);
			assert_string_equal(got[k].reply, "d6:result2:oke");
			assert_string_equal(got[k].instance, "127.0.0.1:2223");
			break;
		case 1:
			assert_int_equal(got[k].status, -EHOSTUNREACH);
			assert_string_equal(got[k].reason, "no rtpengine available");
			break;
		case 2:
			assert_int_equal(got[k].status, -EREMOTEIO);
			assert_string_equal(got[k].reason,
					    "rtpengine 127.0.0.1:2224: Unknown call-id");
			assert_true(strstr(got[k].reply, "error") != NULL);
			break;
		default:
			assert_int_equal(got[k].status, -EPROTO);
		}
	}
	/* The last call was never answered: the client's timeout. */
	assert_int_equal(got[CALLS - 1].status, -ETIMEDOUT);
	assert_string_equal(got[CALLS - 1].reason, "rtpctl did not answer in 100 ms");

	/* A late reply for it is dropped; one left open gets -ECANCELED. */
	srv_reply(&s, CALLS - 1, "d5:errnoi5e6:reason1:xe");
	ids[CALLS] = rtpc_call(cl, "d7:command4:pinge", 17, 3000, on_reply,
			       &got[CALLS]);
	assert_true(ids[CALLS] > 0);
	run_until(&loop, &s.n, CALLS + 1);
	rtpc_client_free(cl);
	assert_int_equal(got[CALLS].status, -ECANCELED);
	assert_int_equal(n_done, CALLS);
	for (int i = 0; i < CALLS + 2; i++)
		if (s.ctrl[i])
			nn_freemsg(s.ctrl[i]);
	uv_close((uv_handle_t *)&tick, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	nn_close(s.sock);
	unlink(url + strlen("ipc://"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rtpc_client__many_in_flight),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
