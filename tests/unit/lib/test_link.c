/*
 * test_link.c - nanomsg links on a real loop: ipc directories are
 * created, messages arrive whole and in order, a burst larger than one
 * drain batch all arrives, and the error codes of link.h hold.
 * Waiting is on the loop with a deadline timer, never a sleep.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/link.h"

#define BURST 1000

struct rx {
	int n;
	int bad;
	size_t last_len;
};

struct fixture {
	uv_loop_t loop;
	char dir[64];
	char url_a[128], url_b[128];
	struct link *a, *b;
	struct rx rx;
	uv_timer_t deadline, retry;
	int sent, timed_out;
};

static void
on_recv(void *arg, const char *buf, size_t len)
{
	struct fixture *f = arg;
	char want[32];
	int n = snprintf(want, sizeof(want), "msg %d", f->rx.n);

	if ((size_t)n != len || memcmp(buf, want, len) != 0)
		f->rx.bad++;
	f->rx.n++;
	f->rx.last_len = len;
	if (f->rx.n == BURST + 1)
		uv_stop(&f->loop);
}

static void
on_deadline(uv_timer_t *t)
{
	struct fixture *f = t->data;

	f->timed_out = 1;
	uv_stop(&f->loop);
}

/* Retries "msg 0" until the PUSH socket has connected (a refused send
 * queues nothing), then sends the burst as fast as the queue takes it. */
static void
on_retry(uv_timer_t *t)
{
	struct fixture *f = t->data;
	char m[32];

	if (f->sent == 0) {
		if (link_send(f->a, 2, "msg 0", 5) != 0)
			return;
		f->sent = 1;
	}
	while (f->sent <= BURST) {
		int n = snprintf(m, sizeof(m), "msg %d", f->sent);

		if (link_send(f->a, 2, m, (size_t)n) != 0)
			return;	/* queue full: next tick */
		f->sent++;
	}
	uv_timer_stop(t);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/sm-test-link-XXXXXX");
	if (mkdtemp(f->dir) == NULL || uv_loop_init(&f->loop) != 0)
		return -1;
	/* Nested directories that do not exist yet. */
	snprintf(f->url_a, sizeof(f->url_a), "ipc://%s/x/y/a", f->dir);
	snprintf(f->url_b, sizeof(f->url_b), "ipc://%s/b", f->dir);
	*state = f;
	return 0;
}

static void
close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char path[256];

	link_free(f->a);
	link_free(f->b);
	uv_walk(&f->loop, close_walk, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&f->loop) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/x/y/a", f->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/x/y", f->dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/x", f->dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/b", f->dir);
	unlink(path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void
test_link__burst_arrives_in_order(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(link_new(&f->a, &f->loop, f->url_a, on_recv, f), 0);
	assert_int_equal(link_new(&f->b, &f->loop, f->url_b, on_recv, f), 0);
	assert_int_equal(link_peer_add(f->a, 2, f->url_b), 0);
	uv_timer_init(&f->loop, &f->deadline);
	uv_timer_init(&f->loop, &f->retry);
	f->deadline.data = f->retry.data = f;
	uv_timer_start(&f->deadline, on_deadline, 10000, 0);
	uv_timer_start(&f->retry, on_retry, 0, 2);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_false(f->timed_out);
	assert_int_equal(f->rx.n, BURST + 1);
	assert_int_equal(f->rx.bad, 0);
}

static void
test_link__errors(void **state)
{
	struct fixture *f = *state;
	struct link *dup = NULL;
	char url[128];

	assert_int_equal(link_new(&f->a, &f->loop, f->url_a, on_recv, f), 0);
	assert_int_equal(link_send(f->a, 7, "x", 1), -ENOENT);
	assert_int_equal(link_send(f->a, 0, "x", 1), -ENOENT);
	assert_int_equal(link_send(f->a, 100000, "x", 1), -ENOENT);
	assert_int_equal(link_peer_add(f->a, 0, f->url_b), -EINVAL);
	assert_int_equal(link_peer_add(f->a, 256, f->url_b), -EINVAL);
	assert_int_equal(link_peer_add(f->a, 3, f->url_b), 0);
	assert_int_equal(link_peer_add(f->a, 3, f->url_b), -EEXIST);
	/* Nobody listens at b: a send cannot block, it says "not now". */
	assert_int_equal(link_send(f->a, 3, "x", 1), -EAGAIN);
	assert_int_equal(link_peer_add(f->a, 4, "nonsense"), -EINVAL);
	/* A second bind of url_a fails with -EADDRINUSE, but nanomsg 1.1.5
	 * leaks its ipc listener on that path and LeakSanitizer would fail
	 * this test: not exercised here. */
	snprintf(url, sizeof(url), "ipc://%s/b", "/proc/no/such");
	assert_true(link_new(&dup, &f->loop, url, on_recv, f) < 0);
	assert_null(dup);
	link_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_link__burst_arrives_in_order,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_link__errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
