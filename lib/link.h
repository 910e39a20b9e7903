/*
 * link.h - the nanomsg links between edges and cores.
 *
 * Each process binds one NN_PULL socket at its own endpoint and keeps
 * one NN_PUSH socket per peer, so it can address a given peer (the
 * core named in a Via branch, the edge that holds a connection).  The
 * PULL socket's NN_RCVFD is watched with uv_poll on the process's
 * loop; a readable event drains a bounded batch of messages so one
 * busy peer cannot starve the loop's other work.
 *
 * Sends never block: a peer that is not connected or whose queue is
 * full gives -EAGAIN and the caller decides (try the next core, or
 * count a drop).
 */
#ifndef SM_LINK_H
#define SM_LINK_H

#include <stddef.h>
#include <uv.h>

/* Called for each received message; buf is valid only during the call. */
typedef void (*link_recv_cb)(void *arg, const char *buf, size_t len);

struct link;

/*
 * Binds self_url (e.g. "ipc:///tmp/sipmesh/core-1") and starts
 * receiving on loop.  Writes *out on success only.  Returns 0 or a
 * negative errno (-EADDRINUSE, -ENOMEM, ...).
 */
int link_new(struct link **out, uv_loop_t *loop, const char *self_url,
	     link_recv_cb cb, void *arg);

/* Connects a PUSH socket to a peer (nanomsg reconnects by itself).
 * peer_id 1..255.  Returns 0 or a negative errno. */
int link_peer_add(struct link *l, int peer_id, const char *url);

/*
 * Queues buf for peer_id without blocking.  Returns 0, -EAGAIN when the
 * peer is not connected or its queue is full, -ENOENT for an unknown
 * peer.
 */
int link_send(struct link *l, int peer_id, const void *buf, size_t len);

/* Stops receiving and closes every socket.  Accepts NULL.  Must be
 * called before the loop is closed (it closes a uv_poll handle). */
void link_free(struct link *l);

#endif
