/*
 * edge_ws.c - SIP over WebSocket (RFC 7118), WS and WSS, with
 * libwebsockets running on the edge's own libuv loop (foreign loop,
 * LWS_SERVER_OPTION_LIBUV; Debian loads it from libwebsockets-evlib-uv).
 *
 * One lws context holds a vhost per WebSocket transport of the table
 * in lib/env.h: WS and WSS (OpenSSL, me->tls_cert/tls_key); the first
 * edge_ws_new() makes the context, the last tp->free destroys it.
 *
 * The listening sockets are the edge's, not lws's: lws 4.1.6 ignores
 * LWS_SERVER_OPTION_ALLOW_LISTEN_SHARE (no SO_REUSEPORT, warmcat/
 * libwebsockets#2470), so a second edge on the host could not bind.
 * Each transport's socket comes from edge_tp_socket() like UDP's and
 * TCP's (SO_REUSEPORT when configured: the kernel spreads connections
 * over the edges), is polled on the edge's loop, and each accepted fd
 * goes to lws with lws_adopt_descriptor_vhost() on a vhost that does
 * not listen (for WSS it keeps the certificate: lws does the TLS
 * handshake of the adopted socket).  A full fd table pauses accepting
 * for EDGE_WS_ACCEPT_PAUSE_MS rather than spin (nginx does the same).
 * Each listener speaks HTTP/1.1 too:
 * it serves the files under me->http_root, KwikyKonf guest credentials
 * on GET /kk/guest (edge_guest.c; a callback mount, answered in one go
 * with Cache-Control: no-store) and 404 to anything else; an Upgrade
 * that offers subprotocol "sip" (else 400: lws would bind one without
 * any to its first protocol) from an allowed Origin (else 403: see
 * edge_ws_upgrade_ok()) becomes a SIP connection.  Every accepted
 * socket is entered in the edge's connection table at once
 * (edge_conn_accept(): so the connection rate, the caps and the
 * handshake_timeout_s deadline cover TLS handshakes, slow upgrades,
 * HTTP requests and upgrades that never carry SIP), becomes OPEN with
 * its first SIP message (keepalives and pongs do not count), and
 * leaves the table when lws closes it.
 *
 * One text (or binary) message carries one SIP message.  Frames of a
 * message are gathered up to max_msg, in memory that grows with the
 * bytes received; larger closes with 1009, more than EDGE_WS_MAX_FRAGS
 * fragments with 1008.  A
 * binary message that is not SIP closes with 1003, a text message that
 * is not UTF-8 with 1007; bad frames (reserved opcodes and bits, a
 * continuation first, long control frames) are lws's to refuse: it
 * sends a close frame and drops the socket after its close timeout.
 * lws 4.1.6 does not refuse unmasked client frames; their payload is
 * judged like any other.  A
 * CRLFCRLF message is a keepalive answered with CRLF (SIP.js sends
 * those); WebSocket pings go out after ws_ping_s of silence and a peer
 * still silent ws_ping_s later is dropped.  The connection table's
 * sweep sends them (edge_conn_ping_round): lws's own validity policy
 * kept one timer per connection in a sorted list that every message
 * re-sorted, a walk over all connections each time.
 *
 * A message goes out at once when nothing waits before it (neither in
 * the connection's queue nor in lws's buffer of a partly sent frame):
 * lws_write() keeps what the socket did not take and sends it when the
 * socket is writable, before any LWS_CALLBACK_SERVER_WRITEABLE.
 * Otherwise it is queued (bounded by edge_conn_wq_max(); a full queue
 * is a slow reader and closes the connection) and sent one frame per
 * writable event.  Waiting for a writable event for every message cost
 * two restarts of the socket's uv_poll (libuv removes and re-adds the
 * fd: four epoll_ctl()) and a loop turn, a tenth of the edge's CPU per
 * WebSocket registration.  A message goes out as text only when it is
 * valid UTF-8, else as binary (RFC 7118 5 allows both): SIP bodies may hold
 * any bytes, and a browser fails its WebSocket on a text frame that is
 * not UTF-8 (RFC 6455 8.1), so one such MESSAGE forked to a room would
 * cut off every participant.  The check is one pass over the message
 * when it is queued.
 *
 * The lws context and its vhosts are one per process; lws calls back
 * into them while it winds down after the edge asked it to stop, so
 * they live in static storage rather than in memory freed on stop.
 */
#include "edge/edge_int.h"
#include "lib/log.h"

#include <errno.h>
#include <libwebsockets.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A hangup of 0 schedules no validity timer (lws 4.1.6 wsi-timeout.c). */
static const lws_retry_bo_t edge_ws_no_validity;

/* Accepted per readable event before the loop turns to other work. */
#define EDGE_WS_ACCEPT_BATCH	64
/* Out of file descriptors: how long the listener rests. */
#define EDGE_WS_ACCEPT_PAUSE_MS	500

struct edge_ws;

/* One per vhost, that is per transport: WS, WSS. */
struct edge_ws_vh {
	struct edge_tp tp;	/* first */
	struct edge_ws *w;
	struct lws_vhost *vh;
	int fd;			/* the listening socket, -1 when none */
	uv_poll_t poll;		/* readable: connections to accept */
	uv_timer_t pause;	/* restarts poll after EMFILE/ENFILE */
	int handles;		/* poll and pause not yet closed */
	int unlistened;		/* poll and pause closing or closed */
};

struct edge_ws {
	struct edge *edge;
	struct lws_context *ctx;
	struct edge_ws_vh v[ENV_TP_END];	/* by transport: WS, WSS */
	int refs;		/* vhosts whose tp->free has not run */
	struct lws_protocols protocols[2];
	struct lws_http_mount mount;	/* http_root */
	struct lws_http_mount guest_mount;	/* EDGE_GUEST_PATH */
	struct edge_guest guest;
	char root[PATH_MAX];
	void *loops[1];
	unsigned char *tx;	/* LWS_PRE bytes of room, then a message
				   written at once (edge_wsconn_queue) */
	size_t tx_cap;
	/* The socket being handed to lws, whose NEW_CLIENT_INSTANTIATED
	 * comes from inside lws_adopt_descriptor_vhost(): its addresses
	 * are known from accept4() and the listener, two system calls
	 * per connection fewer. */
	int adopt_fd;
	union env_sa adopt_peer;
};

struct edge_wsmsg {
	struct edge_wsmsg *next;
	size_t len;
	int binary;		/* not UTF-8: a binary frame */
	unsigned char buf[];	/* LWS_PRE bytes of room, then the message */
};

/* A fragmented message starts in this much memory and doubles. */
#define EDGE_WS_RX_MIN		1024
/* Fragments one message may come in; browsers send one. */
#define EDGE_WS_MAX_FRAGS	64

struct edge_wsconn {
	struct edge_conn c;	/* first */
	struct edge_ws_vh *v;
	struct lws *wsi;
	char *rx;		/* message being gathered */
	size_t rx_len, rx_cap;
	int rx_frames;		/* fragments of it so far */
	struct edge_wsmsg *q_head, *q_tail;
	size_t q_bytes;
	int peer_code;		/* close code the peer sent */
	int ping_due;		/* send a ping at the next writable */
	int killing;
	int upgraded;		/* the WebSocket is established, and not
				   closing: frames may go out, though it
				   stays PENDING until its first SIP
				   message */
};

static struct edge_ws edge_ws_g;

/* ---- UTF-8 ---- */

/* lws 4.1.6 leaves text frames unchecked in this configuration, and
 * RFC 7118 sends SIP as UTF-8 text: incoming text is checked here, and
 * outgoing messages pick their frame type with it. */
int
edge_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		unsigned lo = 0x80, hi = 0xbf;

		if (c < 0x80) {
			uint64_t w;

			/* SIP is mostly ASCII: eight bytes a step */
			i++;
			while (len - i >= 8) {
				memcpy(&w, s + i, 8);
				if (w & 0x8080808080808080ull)
					break;
				i += 8;
			}
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3;
		else
			return 0;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
		else if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
		if (len - i - 1 < n || s[i + 1] < lo || s[i + 1] > hi)
			return 0;
		for (size_t k = 2; k <= n; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
		i += n + 1;
	}
	return 1;
}

/* ---- queue ---- */

static void edge_wsconn_close(struct edge_conn *c, const char *why);

/* Writes a message now: 0, or -ENOMEM (not written: queue it), or
 * -EPIPE (lws failed the socket: close it). */
static int
edge_wsconn_write_now(struct edge_wsconn *wc, const char *buf, size_t len,
		      int binary)
{
	struct edge_ws *w = wc->v->w;

	if (LWS_PRE + len > w->tx_cap) {
		unsigned char *p = realloc(w->tx, LWS_PRE + len);

		if (p == NULL)
			return -ENOMEM;
		w->tx = p;
		w->tx_cap = LWS_PRE + len;
	}
	memcpy(w->tx + LWS_PRE, buf, len);
	if (lws_write(wc->wsi, w->tx + LWS_PRE, len,
		      binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) < 0)
		return -EPIPE;
	return 0;
}

static int
edge_wsconn_queue(struct edge_wsconn *wc, const char *buf, size_t len)
{
	struct edge_wsmsg *m;
	int binary, rc;

	if (wc->killing || wc->wsi == NULL || !wc->upgraded)
		return -ENOTCONN;
	binary = !edge_utf8_valid((const unsigned char *)buf, len);
	if (binary)
		wc->v->w->edge->st.ws_binary_out++;
	if (wc->q_head == NULL && !lws_partial_buffered(wc->wsi)) {
		rc = edge_wsconn_write_now(wc, buf, len, binary);
		if (rc == -EPIPE)
			edge_wsconn_close(&wc->c, "write failed");
		if (rc != -ENOMEM)
			return rc;
	}
	if (wc->q_bytes + len > edge_conn_wq_max(wc->v->w->edge))
		return -ENOBUFS;
	m = malloc(sizeof(*m) + LWS_PRE + len);
	if (m == NULL)
		return -ENOMEM;
	m->next = NULL;
	m->len = len;
	m->binary = binary;
	memcpy(m->buf + LWS_PRE, buf, len);
	if (wc->q_tail)
		wc->q_tail->next = m;
	else
		wc->q_head = m;
	wc->q_tail = m;
	wc->q_bytes += len;
	lws_callback_on_writable(wc->wsi);
	return 0;
}

static int
edge_wsconn_send(struct edge_conn *c, const char *buf, size_t len)
{
	return edge_wsconn_queue((struct edge_wsconn *)c, buf, len);
}

/* From outside lws callbacks: drop it from the table now, and have lws
 * close the socket on its next turn (a slow reader never becomes
 * writable, so no close frame is waited for). */
static void
edge_wsconn_close(struct edge_conn *c, const char *why)
{
	struct edge_wsconn *wc = (struct edge_wsconn *)c;

	if (wc->killing)
		return;
	wc->killing = 1;
	edge_conn_closed(wc->v->w->edge, c, why);
	if (wc->wsi == NULL)
		return;
	lws_set_timeout(wc->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	/* lws's libuv glue arms its timers only after its own events:
	 * from our sweep or a core's message, a connection with no
	 * traffic (a stalled upgrade) would wait for someone else's.
	 * Waking the service runs the timeout now. */
	lws_cancel_service(lws_get_context(wc->wsi));
}

static void
edge_wsconn_ping(struct edge_conn *c)
{
	struct edge_wsconn *wc = (struct edge_wsconn *)c;

	if (wc->killing || wc->wsi == NULL)
		return;
	wc->ping_due = 1;
	lws_callback_on_writable(wc->wsi);
	/* As for a close: lws's libuv glue waits for its own events. */
	lws_cancel_service(lws_get_context(wc->wsi));
}

static const struct edge_conn_ops edge_wsconn_ops = {
	.send = edge_wsconn_send,
	.close = edge_wsconn_close,
	.ping = edge_wsconn_ping,
};

static void
edge_wsconn_free(struct edge_wsconn *wc)
{
	struct edge_wsmsg *m, *nx;

	for (m = wc->q_head; m; m = nx) {
		nx = m->next;
		free(m);
	}
	free(wc->rx);
	free(wc);
}

/* The socket is gone or going: leave the table (once) and free. */
static void
edge_wsconn_gone(struct lws *wsi, const char *why)
{
	struct edge_wsconn *wc = lws_get_opaque_user_data(wsi);

	if (wc == NULL)
		return;
	lws_set_opaque_user_data(wsi, NULL);
	edge_conn_closed(wc->v->w->edge, &wc->c, why);
	edge_wsconn_free(wc);
}

/* ---- callbacks ---- */

static void
edge_ws_new_conn(struct edge_ws_vh *v, struct lws *wsi)
{
	struct edge_ws *w = v->w;
	struct edge *e = w->edge;
	struct edge_wsconn *wc = calloc(1, sizeof(*wc));
	socklen_t sl = sizeof(union env_sa);
	int fd = (int)lws_get_socket_fd(wsi);

	if (wc == NULL)
		goto fail_log;
	if (fd == w->adopt_fd)
		wc->c.peer = w->adopt_peer;
	else if (getpeername(fd, &wc->c.peer.sa, &sl) != 0)
		goto fail_log;
	wc->v = v;
	wc->wsi = wsi;
	wc->c.transport = (uint8_t)v->tp.transport;
	wc->c.ops = &edge_wsconn_ops;
	if (env_sa_is_any(&v->tp.local)) {
		sl = sizeof(union env_sa);
		getsockname(fd, &wc->c.local.sa, &sl);
	} else {
		wc->c.local = v->tp.local;
	}
	if (edge_conn_accept(e, &wc->c) < 0)
		goto fail;
	lws_set_opaque_user_data(wsi, wc);
	return;
fail_log:
	if (edge_ratelimit_allow(&e->rl, uv_now(e->loop)))
		log_notice(LOG_SYS_NET, "%s connection dropped: %s",
			   env_transport_name(v->tp.transport),
			   wc ? strerror(errno) : "out of memory");
fail:
	free(wc);
	lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* Whether the network filter keeps peer out (max_conns_per_ip). */
static int
edge_ws_filter(struct edge *e, const union env_sa *peer)
{
	if (e->me->max_conns_per_ip <= 0 ||
	    edge_conn_ip_count(&e->conns, peer) < e->me->max_conns_per_ip)
		return 0;
	e->st.conns_refused++;
	return 1;
}

/* Closes from inside a callback, with a WebSocket close code. */
static int
edge_ws_refuse(struct lws *wsi, struct edge_wsconn *wc,
	       enum lws_close_status code, const char *why)
{
	struct edge *e = wc->v->w->edge;

	e->st.conns_bad++;
	wc->killing = 1;
	edge_conn_closed(e, &wc->c, why);
	lws_close_reason(wsi, code, (unsigned char *)why, strlen(why));
	return -1;
}

/* A whole message arrived. */
static int
edge_ws_message(struct lws *wsi, struct edge_wsconn *wc, const char *buf,
		size_t len, int binary)
{
	struct edge *e = wc->v->w->edge;
	struct edge_sip_scan sc;
	size_t i;

	for (i = 0; i < len && (buf[i] == '\r' || buf[i] == '\n'); i++)
		;
	/* Keepalives keep it from the idle timeout, only SIP from the
	 * message one. */
	if (i == len)
		edge_conn_touch(&e->conns, &wc->c, uv_now(e->loop));
	else
		edge_conn_msg(&e->conns, &wc->c, uv_now(e->loop));
	if (i == len) {
		/* CRLF keepalive; a CRLFCRLF ping gets its CRLF pong. */
		e->st.received++;
		e->st.keepalives++;
		if (len == 4 && memcmp(buf, "\r\n\r\n", 4) == 0 &&
		    edge_wsconn_queue(wc, "\r\n", 2) == -ENOBUFS)
			return edge_ws_refuse(wsi, wc, LWS_CLOSE_STATUS_POLICY_VIOLATION,
					      "write queue full (slow reader)");
		return 0;
	}
	if (!binary && !edge_utf8_valid((const unsigned char *)buf, len)) {
		e->st.received++;
		e->st.malformed++;
		return edge_ws_refuse(wsi, wc, LWS_CLOSE_STATUS_INVALID_PAYLOAD,
				      "text message that is not UTF-8");
	}
	if (binary && edge_sip_scan(&sc, buf, len) != 0) {
		e->st.received++;
		e->st.malformed++;
		return edge_ws_refuse(wsi, wc, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
				      "binary message that is not SIP");
	}
	wc->c.used = 1;
	edge_fwd_input(e, &wc->v->tp, wc->c.id, &wc->c.peer, buf, len);
	return 0;
}

/* Makes room for need bytes of a message being gathered: doubling
 * from EDGE_WS_RX_MIN up to max, so memory follows the bytes that came,
 * not the size a fragment header promises nothing about. */
static int
edge_ws_rx_grow(struct edge_wsconn *wc, size_t need, size_t max)
{
	size_t cap = wc->rx_cap ? wc->rx_cap : EDGE_WS_RX_MIN;
	char *p;

	if (need <= wc->rx_cap)
		return 0;
	while (cap < need)
		cap *= 2;
	if (cap > max)
		cap = max;
	p = realloc(wc->rx, cap);
	if (p == NULL)
		return -ENOMEM;
	wc->rx = p;
	wc->rx_cap = cap;
	return 0;
}

static void
edge_ws_rx_reset(struct edge_wsconn *wc)
{
	free(wc->rx);
	wc->rx = NULL;
	wc->rx_len = wc->rx_cap = 0;
	wc->rx_frames = 0;
}

static int
edge_ws_receive(struct lws *wsi, struct edge_wsconn *wc, const char *in,
		size_t len)
{
	struct edge *e = wc->v->w->edge;
	size_t max = (size_t)e->me->max_msg;
	int frame_end = lws_remaining_packet_payload(wsi) == 0;
	int first = lws_is_first_fragment(wsi),
	    last = lws_is_final_fragment(wsi) && frame_end;
	int binary = lws_frame_is_binary(wsi), rc;

	if (wc->killing)
		return -1;
	if (first && wc->rx_len == 0 && last) {
		if (len > max)
			goto too_big;
		return edge_ws_message(wsi, wc, in, len, binary);
	}
	if (first && wc->rx == NULL &&
	    edge_ws_rx_grow(wc, len ? len : 1, max) < 0)
		return edge_ws_refuse(wsi, wc, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
				      "out of memory");
	if (wc->rx == NULL || wc->rx_len + len > max)
		goto too_big;
	if (edge_ws_rx_grow(wc, wc->rx_len + len, max) < 0)
		return edge_ws_refuse(wsi, wc, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
				      "out of memory");
	memcpy(wc->rx + wc->rx_len, in, len);
	wc->rx_len += len;
	/* Each fragment costs a callback and a header for maybe one byte:
	 * a message in more pieces than any client cuts one into is a
	 * game, not SIP. */
	if (frame_end && ++wc->rx_frames > EDGE_WS_MAX_FRAGS && !last) {
		e->st.received++;
		e->st.malformed++;
		return edge_ws_refuse(wsi, wc, LWS_CLOSE_STATUS_POLICY_VIOLATION,
				      "message in too many fragments");
	}
	if (!last)
		return 0;
	rc = edge_ws_message(wsi, wc, wc->rx, wc->rx_len, binary);
	edge_ws_rx_reset(wc);
	return rc;
too_big:
	e->st.received++;
	e->st.oversized++;
	return edge_ws_refuse(wsi, wc, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
			      "message larger than max_msg");
}

static int
edge_ws_writeable(struct lws *wsi, struct edge_wsconn *wc)
{
	struct edge_wsmsg *m = wc->q_head;
	int n;

	if (wc->killing)
		return -1;
	if (wc->ping_due) {
		/* Not empty: lws 4.1.6 skips RECEIVE_PONG for an empty pong,
		 * and the pong is what counts as the peer's answer. */
		unsigned char ping[LWS_PRE + 4] = { [LWS_PRE] = 's', 'm', 'p', 'g' };

		wc->ping_due = 0;
		if (lws_write(wsi, ping + LWS_PRE, 4, LWS_WRITE_PING) < 0)
			return -1;
		if (m)
			lws_callback_on_writable(wsi);
		return 0;
	}
	if (m == NULL)
		return 0;
	wc->q_head = m->next;
	if (wc->q_head == NULL)
		wc->q_tail = NULL;
	wc->q_bytes -= m->len;
	n = lws_write(wsi, m->buf + LWS_PRE, m->len,
		      m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
	free(m);
	if (n < 0)
		return -1;
	if (wc->q_head)
		lws_callback_on_writable(wsi);
	return 0;
}

/* Whether the list (tokens separated by commas and/or spaces) holds
 * tok, without case. */
static int
edge_ws_list_has(const char *list, const char *tok)
{
	size_t tl = strlen(tok);

	while (list && *list) {
		size_t n;

		list += strspn(list, ", \t");
		n = strcspn(list, ", \t");
		if (n == tl && n && strncasecmp(list, tok, n) == 0)
			return 1;
		list += n;
	}
	return 0;
}

int
edge_ws_offers_sip(const char *list)
{
	return edge_ws_list_has(list, "sip");
}

int
edge_ws_origin_ok(const char *allow, const char *origin, const char *host)
{
	const char *rest;

	if (allow[0])
		return edge_ws_list_has(allow, "*") ||
		       edge_ws_list_has(allow, origin);
	if (host == NULL || host[0] == '\0')
		return 0;
	if (strncasecmp(origin, "http://", 7) == 0)
		rest = origin + 7;
	else if (strncasecmp(origin, "https://", 8) == 0)
		rest = origin + 8;
	else
		return 0;
	return strcasecmp(rest, host) == 0;
}

/*
 * LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: the upgrade must offer
 * subprotocol "sip" (RFC 7118 4.1; Kamailio answers 400 too) and, when
 * it comes from a browser (an Origin header), from a page ws_origins
 * allows, else 403.  A browser sends Origin on every WebSocket it
 * opens and a page cannot change it: without this check any web page
 * could make its visitors' browsers register and call through this
 * cluster, from their addresses.  Returns 0 to go on, else -1 after
 * the HTTP answer (lws then closes the connection).
 */
static int
edge_ws_upgrade_ok(struct edge_ws_vh *v, struct lws *wsi,
		   struct edge_wsconn *wc)
{
	struct edge *e = v->w->edge;
	char proto[256], origin[256], host[256], from[64];
	unsigned int code = 0;
	const char *why = NULL;

	if (lws_hdr_copy(wsi, proto, sizeof(proto), WSI_TOKEN_PROTOCOL) < 0)
		proto[0] = '\0';
	if (lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) < 0)
		host[0] = '\0';
	if (!edge_ws_offers_sip(proto)) {
		why = "no subprotocol sip";
		code = HTTP_STATUS_BAD_REQUEST;
	} else if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) > 0 &&
		   (lws_hdr_copy(wsi, origin, sizeof(origin),
				 WSI_TOKEN_ORIGIN) < 0 ||
		    !edge_ws_origin_ok(e->me->ws_origins, origin, host))) {
		why = "Origin not in ws_origins";
		code = HTTP_STATUS_FORBIDDEN;
	}
	if (why == NULL)
		return 0;
	e->st.ws_refused++;
	if (edge_ratelimit_allow(&e->rl, uv_now(e->loop)))
		log_info(LOG_SYS_NET, "%s upgrade from %s refused: %s",
			 env_transport_name(v->tp.transport),
			 wc ? env_sa_str(&wc->c.peer, from, sizeof(from)) : "?",
			 why);
	lws_return_http_status(wsi, code, NULL);
	return -1;
}

/* A plain status with lws's own little page, then the next request. */
static int
edge_ws_http_status(struct lws *wsi, unsigned int code)
{
	if (lws_return_http_status(wsi, code, NULL))
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/*
 * An HTTP request that is not for a static file: GET EDGE_GUEST_PATH
 * (the callback mount) gets guest credentials, another method there
 * 405 and the connection closed (a body we do not read), anything
 * else 404.  The answer is a few hundred bytes written at once, as
 * lws_return_http_status() does: lws keeps whatever the socket does
 * not take and sends it first.
 */
static int
edge_ws_http(struct edge_ws *w, struct lws *wsi, struct edge_wsconn *wc)
{
	struct edge *e = w->edge;
	unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start;
	unsigned char *end = buf + sizeof(buf);
	char *uri, arg[64], body[256], retry[24];
	const char *room;
	int64_t retry_ms;
	int meth, ulen, code, n;

	meth = lws_http_get_uri_and_method(wsi, &uri, &ulen);
	if (meth < 0 || wc == NULL || (size_t)ulen != strlen(EDGE_GUEST_PATH) ||
	    memcmp(uri, EDGE_GUEST_PATH, (size_t)ulen) != 0)
		return edge_ws_http_status(wsi, HTTP_STATUS_NOT_FOUND);
	if (meth != LWSHUMETH_GET) {
		e->st.guest_bad++;
		lws_return_http_status(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED, NULL);
		return -1;
	}
	room = lws_get_urlarg_by_name(wsi, "room=", arg, sizeof(arg));
	code = edge_guest_answer(&w->guest, &wc->c.peer, room, (int64_t)time(NULL),
				 uv_now(e->loop), body, sizeof(body), &retry_ms);
	if (code < 0)
		return -1;
	if (code == 200)
		e->st.guest_minted++;
	else if (code == 429)
		e->st.guest_limited++;
	else if (code == 400)
		e->st.guest_bad++;
	n = (int)strlen(body);
	if (lws_add_http_common_headers(wsi, (unsigned)code, "application/json",
					(lws_filepos_t)n, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
					(const unsigned char *)"no-store", 8, &p, end))
		return -1;
	if (retry_ms > 0) {
		snprintf(retry, sizeof(retry), "%lld", (long long)(retry_ms + 999) / 1000);
		if (lws_add_http_header_by_name(wsi, (const unsigned char *)"retry-after:",
						(const unsigned char *)retry,
						(int)strlen(retry), &p, end))
			return -1;
	}
	if (lws_finalize_write_http_header(wsi, start, &p, end) ||
	    lws_write(wsi, (unsigned char *)body, (size_t)n, LWS_WRITE_HTTP_FINAL) != n)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int
edge_ws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
	   void *in, size_t len)
{
	struct lws_vhost *lvh = lws_get_vhost(wsi);
	struct edge_ws_vh *v = lvh ? lws_vhost_user(lvh) : NULL;
	struct edge_wsconn *wc = lws_get_opaque_user_data(wsi);
	const struct lws_protocols *pr;
	char why[64];

	switch (reason) {
	case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
		if (v)
			edge_ws_new_conn(v, wsi);
		return 0;
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return v ? edge_ws_upgrade_ok(v, wsi, wc) : -1;
	case LWS_CALLBACK_ESTABLISHED:
		pr = lws_get_protocol(wsi);
		if (wc == NULL || wc->killing)
			return -1;
		if (pr == NULL || pr->name == NULL || strcmp(pr->name, "sip") != 0)
			return edge_ws_refuse(wsi, wc, LWS_CLOSE_STATUS_PROTOCOL_ERR,
					      "subprotocol is not sip");
		/* Still PENDING: an upgrade that never carries SIP, only
		 * answers pings, would hold its place for
		 * msg_idle_timeout_s; its first SIP message opens it
		 * (edge_ws_message), within handshake_timeout_s as a TCP
		 * connection's must. */
		wc->upgraded = 1;
		log_debug(LOG_SYS_NET, "%s connection " ENV_CONN_FMT " established",
			  env_transport_name(wc->c.transport),
			  ENV_CONN_ARGS(wc->c.id));
		return 0;
	case LWS_CALLBACK_RECEIVE:
		if (wc == NULL)
			return -1;
		return edge_ws_receive(wsi, wc, in, len);
	case LWS_CALLBACK_RECEIVE_PONG:
		if (wc)
			edge_conn_touch(&v->w->edge->conns, &wc->c,
					uv_now(v->w->edge->loop));
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return wc ? edge_ws_writeable(wsi, wc) : -1;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (wc == NULL)
			return 0;
		/* lws answers the close: no data frame may follow. */
		wc->upgraded = 0;
		if (len >= 2)
			wc->peer_code = ((unsigned char *)in)[0] << 8 |
					((unsigned char *)in)[1];
		return 0;
	case LWS_CALLBACK_CLOSED:
		if (wc && wc->peer_code)
			snprintf(why, sizeof(why), "closed by peer (code %d)",
				 wc->peer_code);
		else
			snprintf(why, sizeof(why), "connection lost or bad frame");
		edge_wsconn_gone(wsi, why);
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		edge_wsconn_gone(wsi, "closed");
		return 0;
	case LWS_CALLBACK_HTTP:
		return v ? edge_ws_http(v->w, wsi, wc) : -1;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- the transport ---- */

static int
edge_ws_tp_send(struct edge_tp *tp, const union env_sa *dst, uint64_t conn_id,
		const char *buf, size_t len)
{
	struct edge_ws_vh *v = (struct edge_ws_vh *)tp;
	struct edge_conn *c;

	(void)dst;
	if (conn_id == 0)
		return -EHOSTUNREACH;	/* a browser cannot be dialled */
	c = edge_conn_find(&v->w->edge->conns, conn_id);
	return c ? c->ops->send(c, buf, len) : -ENOTCONN;
}

/* ---- the listener ---- */

static void edge_ws_on_accept(uv_poll_t *h, int status, int events);

static void
edge_ws_on_pause_end(uv_timer_t *t)
{
	struct edge_ws_vh *v = t->data;

	uv_poll_start(&v->poll, UV_READABLE, edge_ws_on_accept);
}

/*
 * Accepts what the kernel queued on v's socket, a batch at most (the
 * poll is level-triggered: the rest comes on the next turn), and hands
 * each connection to lws, which runs its TLS handshake (WSS), its HTTP
 * requests and its WebSocket upgrade; SERVER_NEW_CLIENT_INSTANTIATED
 * enters it in the connection table.  A source at max_conns_per_ip is
 * closed first, by the filter lws's own listener would have called.
 */
static void
edge_ws_on_accept(uv_poll_t *h, int status, int events)
{
	struct edge_ws_vh *v = h->data;
	struct edge_ws *w = v->w;
	struct edge *e = w->edge;
	lws_sock_file_fd_type fd;
	union env_sa peer;
	socklen_t sl;
	struct lws *wsi;
	int err;

	(void)events;
	if (status < 0) {
		log_warn(LOG_SYS_NET, "%s listener: %s",
			 env_transport_name(v->tp.transport), uv_strerror(status));
		return;
	}
	for (int i = 0; i < EDGE_WS_ACCEPT_BATCH; i++) {
		memset(&peer, 0, sizeof(peer));
		sl = sizeof(peer);
		fd.sockfd = accept4(v->fd, &peer.sa, &sl,
				    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd.sockfd < 0) {
			err = errno;
			if (err == EINTR || err == ECONNABORTED)
				continue;
			if (err == EAGAIN || err == EWOULDBLOCK)
				return;
			/* Out of fds, the listener rests: at most one
			 * line per pause, no need of the limiter. */
			if (err == EMFILE || err == ENFILE ||
			    edge_ratelimit_allow(&e->rl, uv_now(e->loop)))
				log_warn(LOG_SYS_NET, "%s accept: %s",
					 env_transport_name(v->tp.transport),
					 strerror(err));
			if (err == EMFILE || err == ENFILE) {
				/* The connection stays queued: try again
				 * later rather than spin on it. */
				e->st.conns_no_fd++;
				uv_poll_stop(&v->poll);
				uv_timer_start(&v->pause, edge_ws_on_pause_end,
					       EDGE_WS_ACCEPT_PAUSE_MS, 0);
			}
			return;
		}
		if (edge_ws_filter(e, &peer)) {
			close(fd.sockfd);
			continue;
		}
		w->adopt_fd = fd.sockfd;
		w->adopt_peer = peer;
		/* On failure lws has closed the socket and freed its wsi
		 * (WSI_DESTROY took it out of the table). */
		wsi = lws_adopt_descriptor_vhost(v->vh, LWS_ADOPT_SOCKET |
						 LWS_ADOPT_HTTP |
						 LWS_ADOPT_ALLOW_SSL, fd, NULL,
						 NULL);
		w->adopt_fd = -1;
		if (wsi == NULL && edge_ratelimit_allow(&e->rl, uv_now(e->loop)))
			log_notice(LOG_SYS_NET, "%s: libwebsockets refused a "
				   "connection", env_transport_name(v->tp.transport));
	}
}

static void
edge_ws_on_listener_close(uv_handle_t *h)
{
	struct edge_ws_vh *v = h->data;

	if (--v->handles == 0) {
		close(v->fd);
		v->fd = -1;
	}
}

/*
 * Opens v's listening socket on sa (edge_tp_socket: SO_REUSEPORT when
 * configured) and polls it on the edge's loop; v->tp.local gets the
 * bound address.  Returns 0 or a negative errno (logged).
 */
static int
edge_ws_listen(struct edge_ws_vh *v, int transport)
{
	struct edge *e = v->w->edge;
	socklen_t sl = sizeof(v->tp.local);
	int rc;

	v->fd = edge_tp_socket(e, transport, SOCK_STREAM, 1);
	if (v->fd < 0)
		return v->fd;
	if (listen(v->fd, SOMAXCONN) < 0 ||
	    getsockname(v->fd, &v->tp.local.sa, &sl) < 0) {
		rc = -errno;
		goto fail;
	}
	v->poll.data = v;
	v->pause.data = v;
	rc = uv_poll_init_socket(e->loop, &v->poll, v->fd);
	if (rc < 0)
		goto fail;
	uv_timer_init(e->loop, &v->pause);	/* cannot fail */
	v->handles = 2;
	rc = uv_poll_start(&v->poll, UV_READABLE, edge_ws_on_accept);
	if (rc < 0) {
		log_err(LOG_SYS_NET, "%s listen %s: %s",
			env_transport_name(transport), e->me->listen[transport],
			uv_strerror(rc));
		uv_close((uv_handle_t *)&v->poll, edge_ws_on_listener_close);
		uv_close((uv_handle_t *)&v->pause, edge_ws_on_listener_close);
		return rc;
	}
	return 0;
fail:
	log_err(LOG_SYS_NET, "%s listen %s: %s", env_transport_name(transport),
		e->me->listen[transport], strerror(-rc));
	close(v->fd);
	v->fd = -1;
	return rc;
}

/* Stops accepting on v; the socket closes with the handles. */
/* Idempotent: a drained listener is closed again by free. */
static void
edge_ws_unlisten(struct edge_ws_vh *v)
{
	if (v->unlistened)
		return;
	v->unlistened = 1;
	uv_close((uv_handle_t *)&v->poll, edge_ws_on_listener_close);
	uv_close((uv_handle_t *)&v->pause, edge_ws_on_listener_close);
}

static void
edge_ws_tp_unlisten(struct edge_tp *tp)
{
	edge_ws_unlisten((struct edge_ws_vh *)tp);
}

static void
edge_ws_tp_free(struct edge_tp *tp)
{
	struct edge_ws_vh *v = (struct edge_ws_vh *)tp;
	struct edge_ws *w = v->w;

	edge_ws_unlisten(v);
	if (--w->refs > 0 || w->ctx == NULL)
		return;
	/* lws closes every connection (WSI_DESTROY takes them out of the
	 * table) and then its libuv handles; the loop runs on until they
	 * are closed. */
	lws_context_destroy(w->ctx);
	w->ctx = NULL;
	edge_guest_fini(&w->guest);
	free(w->tx);
	w->tx = NULL;
	w->tx_cap = 0;
}

/*
 * lws re-reads the files into the vhost's own context in two steps
 * (certificate, then key): checked first, so that a half-copied or
 * mismatched pair never leaves the vhost without a usable key.  Both
 * steps run on this loop, so no handshake falls between them.
 */
static int
edge_ws_tp_reload(struct edge_tp *tp)
{
	struct edge_ws_vh *v = (struct edge_ws_vh *)tp;
	const struct cfg_edge *me = v->w->edge->me;
	SSL_CTX *srv, *cli;
	int rc;

	rc = edge_tls_ctx_new(&srv, &cli, me);
	if (rc < 0)
		return rc;
	SSL_CTX_free(srv);
	SSL_CTX_free(cli);
	lws_tls_cert_updated(v->w->ctx, me->tls_cert, me->tls_key, NULL, 0,
			     NULL, 0);
	return 0;
}

static void
edge_ws_log(int level, const char *line)
{
	size_t n = strlen(line);

	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	log_at(LOG_SYS_NET, level & (LLL_ERR | LLL_WARN) ? LOG_LVL_INFO :
	       LOG_LVL_DEBUG, "lws: %.*s", (int)n, line);
}

/*
 * Opens the listener of transport (WS or WSS) on sa and its vhost in
 * w's context.  The vhost does not listen: CONTEXT_PORT_NO_LISTEN_SERVER
 * for WSS (CONTEXT_PORT_NO_LISTEN would not set up its TLS), NO_LISTEN
 * for WS.  They must differ: lws rebinds a request to the first vhost
 * whose port matches its own (by Host, and by SNI for TLS, where a
 * vhost without a certificate would be handed the handshake).
 */
static int
edge_ws_vhost(struct edge_ws *w, int transport, const union env_sa *sa)
{
	const struct cfg_edge *me = w->edge->me;
	struct lws_context_creation_info info;
	struct edge_ws_vh *v = &w->v[transport];
	char name[64];
	int rc, secure = env_transport_is(transport, ENV_TP_SECURE);

	v->w = w;
	v->tp.transport = transport;
	v->tp.send = edge_ws_tp_send;
	v->tp.free = edge_ws_tp_free;
	v->tp.unlisten = edge_ws_tp_unlisten;
	rc = edge_ws_listen(v, transport);
	if (rc < 0)
		return rc;
	memset(&info, 0, sizeof(info));
	info.vhost_name = env_transport_key(transport);
	info.port = secure ? CONTEXT_PORT_NO_LISTEN_SERVER :
		CONTEXT_PORT_NO_LISTEN;
	info.protocols = w->protocols;
	info.mounts = &w->guest_mount;
	info.user = v;
	info.keepalive_timeout = 10;
	info.timeout_secs = 10;
	/* No lws validity timers: without a policy of its own a vhost takes
	 * the context's (ping at 300 s), and lws 4.1.6 inserts each new
	 * connection's timer into one sorted list by a walk from its head,
	 * past every connection already held.  The edge pings itself. */
	info.retry_and_idle_policy = &edge_ws_no_validity;
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 |
		(sa->sa.sa_family == AF_INET6 ? 0 : LWS_SERVER_OPTION_DISABLE_IPV6);
	if (secure) {
		v->tp.reload = edge_ws_tp_reload;
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = me->tls_cert;
		info.ssl_private_key_filepath = me->tls_key;
		/* HTTP/1.1 only: over h2 Chromium runs WebSockets as h2
		 * streams (RFC 8441), which never pass the callback that
		 * adds a connection to the edge's table. */
		info.alpn = "http/1.1";
	}
	v->vh = lws_create_vhost(w->ctx, &info);
	if (v->vh == NULL) {
		log_err(LOG_SYS_NET, "%s %s: libwebsockets vhost failed (a bad "
			"certificate?)", env_transport_key(transport),
			me->listen[transport]);
		edge_ws_unlisten(v);
		return -EINVAL;
	}
	log_notice(LOG_SYS_MAIN, "sipmesh-edge %d: SIP %s on %s", me->id,
		   env_transport_name(transport),
		   env_sa_str(&v->tp.local, name, sizeof(name)));
	return 0;
}

/* The lws context on e's loop that every WebSocket listener shares. */
static int
edge_ws_start(struct edge_ws *w, struct edge *e)
{
	const struct cfg_edge *me = e->me;
	struct lws_context_creation_info info;
	struct stat sb;
	int rc;

	memset(w, 0, sizeof(*w));
	w->edge = e;
	w->adopt_fd = -1;
	rc = edge_guest_init(&w->guest, e->cfg, me->guest_ttl_s);
	if (rc < 0)
		return rc;
	w->protocols[0].name = "sip";
	w->protocols[0].callback = edge_ws_cb;
	w->protocols[0].rx_buffer_size = 16384;
	if (me->http_root[0] && stat(me->http_root, &sb) == 0 &&
	    S_ISDIR(sb.st_mode) && realpath(me->http_root, w->root)) {
		w->mount.mountpoint = "/";
		w->mount.mountpoint_len = 1;
		w->mount.origin = w->root;
		w->mount.def = "index.html";
		w->mount.origin_protocol = LWSMPRO_FILE;
	} else {
		w->root[0] = '\0';
		if (me->http_root[0])
			log_info(LOG_SYS_NET, "http_root %s: not a folder, HTTP "
				 "answers 404", me->http_root);
	}
	w->guest_mount.mountpoint = EDGE_GUEST_PATH;
	w->guest_mount.mountpoint_len = (unsigned char)strlen(EDGE_GUEST_PATH);
	w->guest_mount.origin = "sip";	/* the protocol whose callback answers */
	w->guest_mount.origin_protocol = LWSMPRO_CALLBACK;
	w->guest_mount.mount_next = w->root[0] ? &w->mount : NULL;
	lws_set_log_level(LLL_ERR | LLL_WARN |
			  (log_levels[LOG_SYS_NET] >= LOG_LVL_DEBUG ? LLL_NOTICE : 0),
			  edge_ws_log);
	w->loops[0] = e->loop;
	memset(&info, 0, sizeof(info));
	/* OpenSSL is set up once, with the context, for any secure
	 * listener that follows. */
	info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
		LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN |
		(me->tls_cert[0] && me->tls_key[0] ?
		 LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0);
	info.foreign_loops = w->loops;
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.timeout_secs = 10;
	info.gid = -1;
	info.uid = -1;
	w->ctx = lws_create_context(&info);
	if (w->ctx == NULL) {
		log_err(LOG_SYS_NET, "libwebsockets context failed (is "
			"libwebsockets-evlib-uv installed?)");
		edge_guest_fini(&w->guest);
		return -ENOMEM;
	}
	return 0;
}

int
edge_ws_new(struct edge_tp **out, struct edge *e, int transport)
{
	struct edge_ws *w = &edge_ws_g;
	union env_sa sa;
	int rc;

	rc = edge_tp_addr(e, transport, &sa);
	if (rc < 0)
		return rc;
	if (w->ctx && (w->edge != e || w->v[transport].vh)) {
		log_err(LOG_SYS_NET, "one WebSocket service per process");
		return -EBUSY;
	}
	if (w->ctx == NULL && (rc = edge_ws_start(w, e)) < 0)
		return rc;
	rc = edge_ws_vhost(w, transport, &sa);
	if (rc < 0) {
		if (w->refs == 0) {
			lws_context_destroy(w->ctx);
			w->ctx = NULL;
			edge_guest_fini(&w->guest);
		}
		return rc;
	}
	w->refs++;
	*out = &w->v[transport].tp;
	return 0;
}
