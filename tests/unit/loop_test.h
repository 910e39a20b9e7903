/*
 * loop_test.h - running a test's libuv loop until a condition holds or
 * a deadline passes, so tests wait on events, never on fixed sleeps.
 * The condition is polled every 5 ms from a timer of the loop.
 */
#ifndef SM_TEST_LOOP_TEST_H
#define SM_TEST_LOOP_TEST_H

#include <stdint.h>
#include <uv.h>

/* Whether what the test waits for has happened; ctx is the test's
 * fixture, arg the value it waits for. */
typedef int (*loop_cond_fn)(void *ctx, void *arg);

struct loop_wait {
	loop_cond_fn cond;
	void *ctx, *arg;
	uint64_t until;
	int ok;
};

static inline void
loop_wait_tick(uv_timer_t *t)
{
	struct loop_wait *w = t->data;

	w->ok = w->cond(w->ctx, w->arg);
	if (w->ok || uv_now(t->loop) >= w->until)
		uv_stop(t->loop);
}

/* Runs loop until cond(ctx, arg) holds (returns 1) or ms passed (0). */
static inline int
loop_run_until(uv_loop_t *loop, loop_cond_fn cond, void *ctx, void *arg,
	       int ms)
{
	struct loop_wait w = { cond, ctx, arg, 0, 0 };
	uv_timer_t t;

	uv_update_time(loop);
	w.until = uv_now(loop) + (uint64_t)ms;
	uv_timer_init(loop, &t);
	t.data = &w;
	uv_timer_start(&t, loop_wait_tick, 0, 5);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return w.ok;
}

#endif
