/*
 * link.h - the links between edges and cores.
 *
 * Each process binds one endpoint of its own and keeps one outgoing
 * connection per peer, so it can address a given peer (the core named
 * in a Via branch, the edge that holds a connection).  The URL (the
 * receiver's endpoint, so both ends of a pair agree) names a stream
 * that the loop thread writes and reads itself, no thread of its own:
 *   - ipc://<path> (processes of one host): a unix stream socket;
 *   - tcp://<address>:<port> (other hosts): TCP, authenticated (below).
 * Both left nanomsg because its worker threads cost more than the rest
 * of a message's hop (lib/link.c has the numbers); nanomsg stays for
 * rtpctl's request/reply sockets, drained by a struct link_poll.
 *
 * Sends never block: a peer that is not connected or whose queue is
 * full gives -EAGAIN and the caller decides (try the next core, or
 * count a drop).
 */
#ifndef SM_LINK_H
#define SM_LINK_H

#include <stddef.h>
#include <uv.h>

/*
 * struct link_poll: receiving from any nanomsg socket on a libuv loop.
 * nanomsg signals queued messages through NN_RCVFD, an fd that stays
 * readable while any is queued; uv_poll watches it, and each wake-up
 * takes at most LINK_BATCH messages without blocking and hands each to
 * the callback, so one busy peer costs the loop at most one batch per
 * turn and the rest waits for the next turn.
 */
#define LINK_BATCH 256

#define LINK_POLL_CTRL 0x1	/* also receive the SP header (raw sockets) */

/*
 * One received message.  body (len bytes) and ctrl are nanomsg chunks.
 * A callback that keeps one sets the field to NULL and frees it later
 * with nn_freemsg; the poller frees what is left when it returns.
 */
struct link_msg {
	void *body;
	size_t len;
	void *ctrl;	/* the SP header as cmsgs, read with NN_CMSG_FIRSTHDR
			   on { .msg_control = &ctrl, .msg_controllen =
			   NN_MSG }; NULL without LINK_POLL_CTRL */
};

/* Called for each message; may call link_poll_free on its own poller
 * (the batch then stops) and free what owns it. */
typedef void (*link_msg_cb)(void *arg, struct link_msg *m);

struct link_poll;

/*
 * Starts draining sock on loop: cb(arg, m) runs from the loop for each
 * message.  flags: 0 or LINK_POLL_CTRL.  sock is borrowed: the caller
 * closes it after link_poll_free.  what names the socket in log lines
 * (a string that outlives the poller).  Writes *out on success only.
 * Returns 0, -ENOMEM, or a negative errno from nanomsg or libuv.
 */
int link_poll_new(struct link_poll **out, uv_loop_t *loop, int sock,
		  unsigned flags, link_msg_cb cb, void *arg, const char *what);

/*
 * Stops draining at once: no callback runs after it, not even for the
 * rest of the batch being drained when a callback calls it.  Its memory
 * goes on a later turn of the loop (uv_close): run the loop before
 * uv_loop_close.  Accepts NULL.
 */
void link_poll_free(struct link_poll *p);

/* Called for each received message; buf is valid only during the call. */
typedef void (*link_recv_cb)(void *arg, const char *buf, size_t len);

struct link;

/*
 * Envelopes between hosts are authenticated.  A message to a peer whose
 * endpoint is not local (anything but ipc://: a file in the 0700
 * run_dir) carries a trailer of
 * LINK_TRAILER_LEN bytes: the sending socket's random stream id, its
 * sequence number and send time (ms), and an HMAC-SHA256 (128 bits)
 * under the link key over all three and the body.  A link bound at a
 * non-local endpoint drops, counts and logs every message whose MAC
 * fails, whose time is more than LINK_WINDOW_MS away from ours, or
 * whose sequence number its stream already used (a replay); it keeps
 * the last LINK_STREAMS streams it heard, so a replay older than that
 * must also be within the time window to pass.  A connection that sent
 * a forged, stale or replayed message is closed.
 */
#define LINK_TRAILER_LEN	40

/* Whether url stays on this host: ipc:// (a file in the 0700 run_dir);
 * every other endpoint reaches other hosts. */
int link_url_local(const char *url);

/* 0 when url is a link endpoint: ipc://<path>, tcp://<IPv4>:<port> or
 * tcp://[<IPv6>]:<port> (an address: a name would need a DNS lookup
 * for each reconnect); else -EINVAL, or -ENAMETOOLONG for a path that
 * does not fit a unix socket address. */
int link_url_ok(const char *url);

#define LINK_WINDOW_MS		30000
#define LINK_STREAMS		1024

/*
 * What a link counted, one row each (X-macro): field, name in the
 * stats log lines, metric (after the process's prefix, lib/prom.h)
 * and its HELP (the first row of a family carries it).
 */
#define LINK_STATS(X) \
	X(rx_forged, "envelopes-forged", \
	  "link_envelopes_dropped_total{reason=\"forged\"}", \
	  "Envelopes between processes dropped, by reason") \
		/* MAC failed, no trailer, a frame cut short, or a \
		   chunk over the size limit */ \
	X(rx_stale, "envelopes-stale", \
	  "link_envelopes_dropped_total{reason=\"stale\"}", "") \
		/* outside the time window */ \
	X(rx_replayed, "envelopes-replayed", \
	  "link_envelopes_dropped_total{reason=\"replayed\"}", "") \
		/* sequence number used before */ \
	X(tx_dropped, "envelopes-not-sent", \
	  "link_envelopes_dropped_total{reason=\"not_sent\"}", "") \
		/* gathered, then refused at the end of the turn */ \
	X(rx_frames, "envelopes-in", "link_envelopes_received_total", \
	  "Envelopes received from other processes") \
	X(tx_frames, "envelopes-out", "link_envelopes_sent_total", \
	  "Envelopes sent to other processes") \
	X(tx_msgs, "link-messages-out", "link_messages_sent_total", \
	  "Chunks the envelopes sent took (one write each)") \
	X(tx_peer_dead, "envelopes-to-dead-peers", \
	  "link_envelopes_refused_total{reason=\"peer_dead\"}", \
	  "Envelopes refused at once: their peer is silent (link liveness)") \
	X(tx_heartbeats, "heartbeats-out", "link_heartbeats_sent_total", \
	  "Heartbeats sent on idle links") \
	X(peers_died, "peers-died", "link_peers_died_total", \
	  "Peers found silent for link_dead_ms")

struct link_stats {
#define LINK_STAT_FIELD(f, log, metric, help) unsigned long long f;
	LINK_STATS(LINK_STAT_FIELD)
#undef LINK_STAT_FIELD
};

/*
 * Binds self_url (e.g. "ipc:///tmp/sipmesh/core-1") and starts
 * receiving on loop.  An ipc file that exists is taken over when
 * nobody answers there (left by a process that died), else -EADDRINUSE;
 * its directories are created (0700).  key (LINK_KEY_LEN bytes,
 * copied: key_load(cfg, KEY_USE_LINK) of lib/key.h) authenticates
 * envelopes to and from other hosts; NULL only when neither this link
 * nor its peers have non-local endpoints (link_peer_add then refuses
 * one).  Writes *out on success only.  Returns 0 or a negative errno
 * (-EADDRINUSE, -ENOMEM, -EINVAL for a URL that is no endpoint
 * (link_url_ok) or a non-local self_url without a key, ...).
 */
#define LINK_KEY_LEN 32
int link_new(struct link **out, uv_loop_t *loop, const char *self_url,
	     const unsigned char *key, link_recv_cb cb, void *arg);

/* What the link dropped so far. */
void link_stats_get(const struct link *l, struct link_stats *st);

/* Connects to a peer: an ipc peer at once if it is up, a tcp one in the
 * background; retried every 100 ms, and again whenever the connection
 * closes (a restarted peer).  peer_id 1..255.  Returns 0 or a negative
 * errno (-EINVAL for a URL that is no endpoint, or a non-local url on a
 * link without a key). */
int link_peer_add(struct link *l, int peer_id, const char *url);

/* How many connections to our endpoint are open now, accepting what
 * waits first, so it counts before the loop runs. */
int link_peers_in(const struct link *l);

/*
 * Liveness of peers: a link sees a peer go only when its socket
 * closes, never when its host loses power or network or its process
 * hangs.  From this call on, a heartbeat goes every heartbeat_ms to each
 * peer that got nothing else in that time, and a peer heard from (any
 * message) in none of the ticks of the last dead_ms is dead: link_send
 * refuses it (-EHOSTDOWN) until it is heard again.  A dead peer is known
 * between dead_ms and dead_ms + heartbeat_ms after its last message.
 * Every peer starts alive.  Peers must run it too (a peer that never
 * sends looks dead), with dead_ms >= LINK_LIVE_MIN_TICKS *
 * heartbeat_ms: a live peer that sends nothing may be silent for up to
 * two ticks.  self_id (1..255) is our id in the peers' own numbering.
 * cb (or NULL) runs from the loop when a peer dies (alive 0) or is heard
 * again (alive 1); it may send but not free the link.  Returns 0 or
 * -EINVAL.
 */
#define LINK_LIVE_MIN_TICKS 3
typedef void (*link_peer_cb)(void *arg, int peer_id, int alive);
int link_live_start(struct link *l, int self_id, int heartbeat_ms,
		    int dead_ms, link_peer_cb cb, void *arg);

/*
 * Queues buf for peer_id without blocking.  The first envelope for a
 * peer in a turn of the loop is sent at once; later ones in the same
 * turn are gathered into one message sent at the end of the turn (a
 * uv_check handle), in order.  Returns 0, -EAGAIN
 * when the peer is not connected or its queue is full (for a gathered
 * envelope that shows only at the end of the turn: it is then counted
 * in tx_dropped), -EHOSTDOWN for a dead peer (link_live_start), -ENOENT
 * for an unknown peer, -EMSGSIZE, -ENOMEM.
 */
int link_send(struct link *l, int peer_id, const void *buf, size_t len);

/* Sends what this turn gathered, stops receiving and closes every
 * socket; cb is not called after it, even from the batch being
 * drained.  What peers have not taken yet is written first,
 * blocking up to a second in all.  Accepts NULL.  Must be called before the loop is closed,
 * and the loop run once more (it closes libuv handles; the link's
 * memory goes then). */
void link_free(struct link *l);

#endif
