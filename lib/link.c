/*
 * link.c - links between edges and cores, see link.h.
 *
 * Our own endpoint receives from every peer; one connection per peer
 * sends, so a message can be aimed at one process.  Chunks (a from
 * word, then frames; between hosts a trailer) go on streams the loop
 * thread drives itself (link_ux.c): a unix stream for ipc://, TCP for
 * tcp://, one send(2) per chunk, read(2) by the peer's loop, a 4-byte
 * length before each chunk.
 *
 * Both were nanomsg (NN_PUSH per peer, NN_PULL at our endpoint) until
 * measurement showed what nanomsg's threads cost: every message went
 * user thread -> nanomsg worker (eventfd) -> socket -> the peer's
 * worker -> eventfd -> the peer's loop.  bench/link_rate (two
 * processes, 500-byte envelopes, echoed, 10 s) measured the CPU of both
 * processes per round trip: at 5,000/s 53-64 us on nanomsg, 16 us on
 * unix streams; at 20,000/s 14-16 us against 4-5 us; the round trip's
 * median fell from 260-330 us to 55 us.  A cluster (one edge, two
 * cores, Redis) at 4,000 REGISTER/s spent 96-102 us of CPU per
 * REGISTER, 64-75 us after.  tcp:// followed: every hop between hosts
 * paid the same threads, and a worker thread that closes sockets in
 * the process of a WebSocket server is one more thing that can close
 * the wrong one.  Reconnection is link_ux.c's; liveness (below) is
 * what finds a peer that is gone without closing anything.
 *
 * struct link_poll is the one receive loop of every nanomsg socket in
 * sipmesh (rtpctl's REP and the cores' REQ).  nanomsg
 * does its I/O on its own worker thread and signals a readable message
 * through NN_RCVFD, an fd that stays readable while messages are
 * queued; uv_poll watches it on the process's loop.  Each readable
 * event drains at most LINK_BATCH messages with nn_recvmsg (zero-copy
 * NN_MSG chunks, freed after the callback unless it keeps them), so a
 * flood costs the loop at most one batch per iteration.  The poller is
 * heap memory of its own, freed in uv_close's callback, so its owner
 * may free itself from a callback.
 *
 * Envelopes to and from other hosts carry a trailer (link.h).  The MAC
 * context is fetched once per link and re-keyed per message (EVP_MAC),
 * so a chunk costs one HMAC; local traffic costs none.  Every new
 * connection begins with a heartbeat (a chunk of the from word alone,
 * or empty), so the receiver trusts it before any large chunk comes
 * (link_ux.c bounds what an untrusted connection may send).
 *
 * Batching: every message costs a system call on each side.  A message therefore
 * carries frames, each a 4-byte big-endian length and one envelope.
 * The first envelope for a peer in a turn of the loop goes out at once,
 * alone (so link_send still reports a peer that is not connected);
 * later ones in the same turn gather in one chunk per peer
 * (LINK_OUT_BYTES), sent by a uv_check handle at the end of the turn
 * (a uv_idle handle keeps the turn's poll from blocking meanwhile).
 * Idle, every message is one frame and nothing waits; under load a
 * turn's envelopes for one peer cost one message.  Order per peer is
 * kept: frames are appended and sent in order, and a peer's chunk is
 * sent before any later one.  A peer's chunk buffer is its own,
 * reused: no allocation per message.
 *
 * Liveness (link_live_start): a stream notices a peer only when its
 * socket closes, so a peer whose host lost power or
 * its network, or whose process hangs, stays "connected" for ever.
 * Once started, every message begins with a "from" word (the top bit,
 * which no frame length has, and our id) and one uv_timer per link
 * ticks every heartbeat_ms.  A tick sends a message of the from word
 * alone (a heartbeat) to each peer that got nothing since the last
 * tick, so a busy link carries no heartbeat at all, and counts, per
 * peer, the ticks in a row in which nothing came from it: after
 * dead_ticks of them the peer is dead, link_send refuses it at once,
 * and anything heard from it makes it alive again.  Counting ticks and
 * not time keeps our own stall (a stopped or blocked loop) from
 * killing peers whose messages wait unread: the one late tick adds one.
 * Cost per message: one flag stored on each side.
 */
#include "lib/link.h"
#include "lib/link_int.h"
#include "lib/log.h"

#include <errno.h>
#include <nanomsg/nn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#define LINK_MAX_PEERS 256
/* A peer's batch chunk: more frames than this in one turn go out in
 * several messages. */
#define LINK_OUT_BYTES (64 * 1024)
#define LINK_FRAME_HDR 4
/* The first word of a message from a link with liveness on: the top
 * bit (a frame length never has it) and the sender's id. */
#define LINK_FROM_BIT  0x80000000u
#define LINK_FROM_LEN  4

struct link_poll {
	uv_poll_t poll;
	int sock;
	unsigned flags;
	int closing;
	link_msg_cb cb;
	void *arg;
	const char *what;
};

#define LINK_MAC_LEN	16
#define LINK_PROBES	8	/* stream table slots looked at per stream */

/* A sending socket heard from: the highest sequence number it used. */
struct link_stream {
	uint64_t id;		/* 0: free slot */
	uint64_t seq;
	uint64_t heard_ms;
};

/* What a peer gets this turn of the loop. */
enum link_turn {
	LINK_IDLE = 0,		/* nothing yet: the next frame goes at once */
	LINK_SENT,		/* one went: the next ones gather */
};

/* What liveness knows of one peer, between two ticks. */
struct link_live {
	uint8_t sent;		/* something went to it: no heartbeat */
	uint8_t heard;		/* something came from it */
	uint8_t dead;
	unsigned silent;	/* ticks in a row without hearing it */
};

/* A chunk of frames for one peer, for its stream. */
struct link_out {
	unsigned char *buf;	/* size bytes, kept: LINK_UX_HDR first, and
				   LINK_TRAILER_LEN spare after cap */
	size_t len, cap;	/* cap: where the chunk is full */
	size_t size;
	int frames;
	int open;		/* frames gather in it */
};

struct link {
	uv_loop_t *loop;
	struct link_ux_srv *ux_rx;	/* our endpoint */
	struct link_ux_out *ux[LINK_MAX_PEERS];	/* NULL: no such peer */
	int closing;			/* link_free ran: no callback */
	uint8_t turn[LINK_MAX_PEERS];	/* enum link_turn */
	struct link_out out[LINK_MAX_PEERS];
	uint8_t touched[LINK_MAX_PEERS];	/* peer ids with turn != IDLE */
	int ntouched;
	uv_check_t flush;		/* end of a turn: send the chunks */
	int flush_on;
	uv_idle_t wake;			/* while frames wait: no blocking */
	int wake_on;
	link_recv_cb cb;
	void *arg;
	/* Authentication of envelopes between hosts. */
	int has_key;
	int auth_rx;			/* our endpoint is not local */
	unsigned char key[LINK_KEY_LEN];
	EVP_MAC_CTX *mac;
	uint8_t remote[LINK_MAX_PEERS];	/* that peer's endpoint is not local */
	uint64_t stream[LINK_MAX_PEERS];	/* our stream id towards it */
	uint64_t seq[LINK_MAX_PEERS];
	struct link_stream heard[LINK_STREAMS];
	struct link_stats st;
	uint64_t logged_ms;		/* last drop logged */
	/* Liveness; self_id 0: off, no from word, every peer alive. */
	int self_id;
	unsigned dead_ticks;
	uv_timer_t tick;
	int handles;			/* open libuv handles: freed at 0 */
	link_peer_cb peer_cb;
	void *peer_arg;
	struct link_live live[LINK_MAX_PEERS];
};

/* nanomsg reports errors through its own errno; never return 0 from it. */
static int
link_errno(void)
{
	int e = nn_errno();

	return e ? -e : -EIO;
}

/*
 * An ipc endpoint is a Unix socket file: its directory must exist
 * before the bind, or the bind fails with a bare ENOENT.  Creates each
 * missing component (mkdir -p); existing directories are fine.
 */
static int
link_ipc_dir(const char *url)
{
	static const char scheme[] = "ipc://";
	char path[512];
	char *slash;
	size_t n;

	if (strncmp(url, scheme, sizeof(scheme) - 1) != 0)
		return 0;
	n = strlen(url + sizeof(scheme) - 1);
	if (n >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, url + sizeof(scheme) - 1, n + 1);
	slash = strrchr(path, '/');
	if (slash == NULL || slash == path)
		return 0;
	*slash = '\0';
	for (char *p = path + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return -errno;
		*p = c;
		if (c == '\0')
			break;
	}
	return 0;
}

static void
link_poll_on_readable(uv_poll_t *h, int status, int events)
{
	struct link_poll *p = h->data;

	(void)events;
	if (status < 0) {
		log_warn(LOG_SYS_NET, "%s: poll error: %s", p->what,
			 uv_strerror(status));
		return;
	}
	for (int i = 0; i < LINK_BATCH && !p->closing; i++) {
		struct link_msg m = { NULL, 0, NULL };
		struct nn_iovec iov = { &m.body, NN_MSG };
		struct nn_msghdr mh = { &iov, 1, NULL, 0 };
		int n;

		if (p->flags & LINK_POLL_CTRL) {
			mh.msg_control = &m.ctrl;
			mh.msg_controllen = NN_MSG;
		}
		n = nn_recvmsg(p->sock, &mh, NN_DONTWAIT);
		if (n < 0) {
			if (nn_errno() != EAGAIN && nn_errno() != EINTR)
				log_warn(LOG_SYS_NET, "%s: recv: %s", p->what,
					 nn_strerror(nn_errno()));
			return;
		}
		m.len = (size_t)n;
		p->cb(p->arg, &m);
		if (m.body)
			nn_freemsg(m.body);
		if (m.ctrl)
			nn_freemsg(m.ctrl);
	}
}

static void
link_poll_on_close(uv_handle_t *h)
{
	free(h->data);
}

int
link_poll_new(struct link_poll **out, uv_loop_t *loop, int sock,
	      unsigned flags, link_msg_cb cb, void *arg, const char *what)
{
	struct link_poll *p;
	size_t sz = sizeof(int);
	int fd, rc;

	if (nn_getsockopt(sock, NN_SOL_SOCKET, NN_RCVFD, &fd, &sz) < 0)
		return link_errno();
	p = malloc(sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	*p = (struct link_poll){ .sock = sock, .flags = flags, .cb = cb,
				 .arg = arg, .what = what };
	rc = uv_poll_init(loop, &p->poll, fd);
	if (rc < 0) {
		free(p);
		return rc;
	}
	p->poll.data = p;
	rc = uv_poll_start(&p->poll, UV_READABLE, link_poll_on_readable);
	if (rc < 0) {
		/* The handle is live now: its close callback frees p. */
		uv_close((uv_handle_t *)&p->poll, link_poll_on_close);
		return rc;
	}
	*out = p;
	return 0;
}

void
link_poll_free(struct link_poll *p)
{
	if (p == NULL)
		return;
	p->closing = 1;
	/* uv_close stops watching the fd at once, before its owner lets
	 * nanomsg close it. */
	uv_close((uv_handle_t *)&p->poll, link_poll_on_close);
}

int
link_url_local(const char *url)
{
	return strncmp(url, "ipc://", 6) == 0;
}

int
link_url_ok(const char *url)
{
	return link_ux_url_ok(url);
}

static uint64_t
link_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
link_put64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static uint64_t
link_get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* The MAC of body and the trailer's first LINK_TRAILER_LEN -
 * LINK_MAC_LEN bytes (tr) into out. */
static int
link_mac(struct link *l, const void *body, size_t len,
	 const unsigned char *tr, unsigned char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	size_t mdlen = 0;

	if (EVP_MAC_init(l->mac, l->key, sizeof(l->key), NULL) != 1 ||
	    EVP_MAC_update(l->mac, body, len) != 1 ||
	    EVP_MAC_update(l->mac, tr, LINK_TRAILER_LEN - LINK_MAC_LEN) != 1 ||
	    EVP_MAC_final(l->mac, md, &mdlen, sizeof(md)) != 1 ||
	    mdlen < LINK_MAC_LEN)
		return -EIO;
	memcpy(out, md, LINK_MAC_LEN);
	return 0;
}

/*
 * Records seq for stream: 0 when it is new for that stream, -EALREADY
 * for a replay.  An unknown stream takes a free slot among its probes,
 * else the one heard from longest ago.
 */
static int
link_stream_accept(struct link *l, uint64_t id, uint64_t seq, uint64_t now)
{
	struct link_stream *victim = NULL;

	for (unsigned i = 0; i < LINK_PROBES; i++) {
		struct link_stream *s = &l->heard[(id + i) % LINK_STREAMS];

		if (s->id == id) {
			if (seq <= s->seq)
				return -EALREADY;
			s->seq = seq;
			s->heard_ms = now;
			return 0;
		}
		if (victim == NULL || s->id == 0 ||
		    (victim->id != 0 && s->heard_ms < victim->heard_ms))
			victim = s;
	}
	*victim = (struct link_stream){ .id = id, .seq = seq, .heard_ms = now };
	return 0;
}

/* Drops are logged at most once a second: a flood must not become a
 * flood of log lines.  The counters say how many. */
static void
link_drop(struct link *l, unsigned long long *counter, const char *why,
	  uint64_t now)
{
	(*counter)++;
	if (now - l->logged_ms < 1000)
		return;
	l->logged_ms = now;
	log_warn(LOG_SYS_NET, "link: envelope dropped: %s (forged %llu, stale "
		 "%llu, replayed %llu so far)", why, l->st.rx_forged,
		 l->st.rx_stale, l->st.rx_replayed);
}

/* Checks and strips the trailer; the body's length, or -1 to drop. */
static long
link_verify(struct link *l, const unsigned char *m, size_t len)
{
	const unsigned char *tr;
	unsigned char mac[LINK_MAC_LEN];
	uint64_t now = link_wall_ms(), sent;
	size_t body;

	if (len < LINK_TRAILER_LEN) {
		link_drop(l, &l->st.rx_forged, "no trailer", now);
		return -1;
	}
	body = len - LINK_TRAILER_LEN;
	tr = m + body;
	if (link_mac(l, m, body, tr, mac) != 0 ||
	    CRYPTO_memcmp(mac, tr + LINK_TRAILER_LEN - LINK_MAC_LEN,
			  LINK_MAC_LEN) != 0) {
		link_drop(l, &l->st.rx_forged, "bad MAC", now);
		return -1;
	}
	sent = link_get64(tr + 16);
	if (sent + LINK_WINDOW_MS < now || sent > now + LINK_WINDOW_MS) {
		link_drop(l, &l->st.rx_stale, "outside the time window", now);
		return -1;
	}
	if (link_stream_accept(l, link_get64(tr), link_get64(tr + 8),
			       now) != 0) {
		link_drop(l, &l->st.rx_replayed, "replayed", now);
		return -1;
	}
	return (long)body;
}

static uint32_t
link_get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		(uint32_t)p[2] << 8 | p[3];
}

static int
link_peer_known(const struct link *l, int id)
{
	return id >= 1 && id < LINK_MAX_PEERS && l->ux[id] != NULL;
}

/* A message came from peer id (its from word): it is alive. */
static void
link_heard(struct link *l, int id)
{
	struct link_live *p;

	if (!link_peer_known(l, id) || !l->self_id)
		return;
	p = &l->live[id];
	p->heard = 1;
	if (!p->dead)
		return;
	p->dead = 0;
	if (l->peer_cb)
		l->peer_cb(l->peer_arg, id, 1);
}

/*
 * A chunk received off a stream, split into its frames, to the link's
 * callback.  Returns 0, or -EBADMSG when it was dropped (its frames
 * before the fault went).
 */
static int
link_on_chunk(struct link *l, const unsigned char *p, size_t size)
{
	long len = (long)size;
	size_t off = 0, n;

	if (l->auth_rx)
		len = link_verify(l, p, size);
	if (len < 0)
		return -EBADMSG;
	if ((size_t)len >= LINK_FROM_LEN && (link_get32(p) & LINK_FROM_BIT)) {
		link_heard(l, (int)(link_get32(p) & ~LINK_FROM_BIT));
		off = LINK_FROM_LEN;
	}
	while ((size_t)len - off >= LINK_FRAME_HDR && !l->closing) {
		n = link_get32(p + off);
		off += LINK_FRAME_HDR;
		if (n > (size_t)len - off)
			break;
		l->st.rx_frames++;
		l->cb(l->arg, (const char *)p + off, n);
		off += n;
	}
	if (off == (size_t)len || l->closing)
		return 0;
	link_drop(l, &l->st.rx_forged, "a frame cut short", link_wall_ms());
	return -EBADMSG;
}

/* Our endpoint's chunks; an error closes their connection (a forged
 * chunk on a stream: nothing after it can be trusted either). */
int
link_on_ux_chunk(void *arg, const unsigned char *buf, size_t len)
{
	struct link *l = arg;

	if (buf)
		return link_on_chunk(l, buf, len);
	link_drop(l, &l->st.rx_forged, "a chunk over the size limit, "
		  "connection closed", link_wall_ms());
	return -EMSGSIZE;
}

/* The MAC context, fetched once: HMAC with SHA-256. */
static int
link_mac_init(struct link *l, const unsigned char *key)
{
	OSSL_PARAM p[2];
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);

	if (mac == NULL)
		return -EIO;
	l->mac = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac);
	if (l->mac == NULL)
		return -ENOMEM;
	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						(char *)"SHA256", 0);
	p[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(l->mac, p) != 1)
		return -EIO;
	memcpy(l->key, key, sizeof(l->key));
	l->has_key = 1;
	return 0;
}

int
link_new(struct link **out, uv_loop_t *loop, const char *self_url,
	 const unsigned char *key, link_recv_cb cb, void *arg)
{
	struct link *l;
	int rc;

	rc = link_url_ok(self_url);
	if (rc < 0)
		return rc;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	l->loop = loop;
	l->cb = cb;
	l->arg = arg;
	l->auth_rx = !link_url_local(self_url);
	if (key) {
		rc = link_mac_init(l, key);
		if (rc < 0)
			goto fail;
	} else if (l->auth_rx) {
		rc = -EINVAL;
		goto fail;
	}
	rc = link_ipc_dir(self_url);
	if (rc == 0)
		rc = link_ux_srv_new(&l->ux_rx, loop, self_url,
				     link_on_ux_chunk, l);
	if (rc < 0)
		goto fail;
	/* Cannot fail: libuv's check and timer handles only join a
	 * queue. */
	uv_check_init(loop, &l->flush);
	l->flush.data = l;
	uv_idle_init(loop, &l->wake);
	l->wake.data = l;
	uv_timer_init(loop, &l->tick);
	l->tick.data = l;
	l->handles = 3;
	*out = l;
	return 0;
fail:
	EVP_MAC_CTX_free(l->mac);
	OPENSSL_cleanse(l->key, sizeof(l->key));
	free(l);
	return rc;
}

void
link_stats_get(const struct link *l, struct link_stats *st)
{
	*st = l->st;
}

static void link_heartbeat(struct link *l, int peer_id);

/* A stream to peer_id connected: a heartbeat first, so the receiver
 * trusts the connection before anything large comes. */
static void
link_on_up(void *arg, int peer_id)
{
	link_heartbeat(arg, peer_id);
}

int
link_peer_add(struct link *l, int peer_id, const char *url)
{
	int rc;

	if (peer_id < 1 || peer_id >= LINK_MAX_PEERS)
		return -EINVAL;
	if (link_peer_known(l, peer_id))
		return -EEXIST;
	rc = link_url_ok(url);
	if (rc < 0)
		return rc;
	if (!link_url_local(url) && !l->has_key)
		return -EINVAL;
	l->remote[peer_id] = !link_url_local(url);
	if (l->remote[peer_id]) {
		/* A fresh random stream per process: a receiver that saw
		 * an earlier process's stream cannot confuse the two. */
		do {
			if (getrandom(&l->stream[peer_id],
				      sizeof(l->stream[peer_id]), 0) !=
			    (ssize_t)sizeof(l->stream[peer_id]))
				return -EIO;
		} while (l->stream[peer_id] == 0);
	}
	/* Before the connect: link_on_up may run from it. */
	return link_ux_out_new(&l->ux[peer_id], l->loop, url, link_on_up, l,
			       peer_id);
}

static void
link_put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* A chunk of cap bytes of frames for peer_id (and room for the length
 * word, the from word and a trailer), the from word in it when liveness
 * is on.  A peer's buffer is reused: it grows only for a frame larger
 * than any before. */
static int
link_out_open(struct link *l, int peer_id, size_t cap)
{
	struct link_out *o = &l->out[peer_id];
	size_t from = l->self_id ? LINK_FROM_LEN : 0;
	size_t head = LINK_UX_HDR;
	size_t size = head + from + cap +
		      (l->remote[peer_id] ? LINK_TRAILER_LEN : 0);

	if (o->size < size) {
		unsigned char *b = realloc(o->buf, size);

		if (b == NULL)
			return -ENOMEM;
		o->buf = b;
		o->size = size;
	}
	o->cap = head + from + cap;
	o->len = head + from;
	o->frames = 0;
	o->open = 1;
	if (from)
		link_put32(o->buf + head, LINK_FROM_BIT | (uint32_t)l->self_id);
	return 0;
}

/*
 * Sends peer_id's chunk (signed for a remote peer: the trailer follows
 * the frames) and closes it.  0, or a negative errno (-EAGAIN: the
 * peer is not connected or its queue is full).
 */
static int
link_out_send(struct link *l, int peer_id)
{
	struct link_out *o = &l->out[peer_id];
	unsigned char *m = o->buf, *tr;
	size_t len = o->len;
	int rc;

	o->open = 0;
	if (l->remote[peer_id]) {
		tr = m + len;
		link_put64(tr, l->stream[peer_id]);
		link_put64(tr + 8, ++l->seq[peer_id]);
		link_put64(tr + 16, link_wall_ms());
		if (link_mac(l, m + LINK_UX_HDR, len - LINK_UX_HDR, tr,
			     tr + LINK_TRAILER_LEN - LINK_MAC_LEN) != 0)
			return -EIO;
		len += LINK_TRAILER_LEN;
	}
	link_put32(m, (uint32_t)(len - LINK_UX_HDR));
	rc = link_ux_out_write(l->ux[peer_id], m, len);
	if (rc < 0)
		return rc;
	l->st.tx_msgs++;
	l->live[peer_id].sent = 1;
	return 0;
}

/* End of a turn of the loop: every gathered chunk goes, and every peer
 * takes its next frame at once again. */
static void
link_on_flush(uv_check_t *h)
{
	struct link *l = h->data;

	for (int i = 0; i < l->ntouched; i++) {
		int id = l->touched[i];
		int frames = l->out[id].frames;

		if (l->out[id].open && link_out_send(l, id) < 0) {
			l->st.tx_dropped += (unsigned long long)frames;
			if (log_levels[LOG_SYS_NET] >= LOG_LVL_INFO)
				log_info(LOG_SYS_NET, "link: %d envelope(s) for "
					 "peer %d not sent", frames, id);
		}
		l->turn[id] = LINK_IDLE;
	}
	l->ntouched = 0;
	uv_check_stop(h);
	l->flush_on = 0;
	if (l->wake_on) {
		uv_idle_stop(&l->wake);
		l->wake_on = 0;
	}
}

static void
link_on_wake(uv_idle_t *h)
{
	(void)h;
}

/* Appends one frame to peer_id's chunk; a new chunk is batch bytes
 * large, or just the frame's size when it goes alone. */
static int
link_out_add(struct link *l, int peer_id, const void *buf, size_t len,
	     int batch)
{
	struct link_out *o = &l->out[peer_id];
	size_t need = LINK_FRAME_HDR + len;
	int rc;

	if (o->open && o->cap - o->len < LINK_FRAME_HDR + len) {
		int frames = o->frames;

		rc = link_out_send(l, peer_id);
		if (rc < 0) {
			l->st.tx_dropped += (unsigned long long)frames;
			return rc;
		}
	}
	if (!o->open) {
		rc = link_out_open(l, peer_id, batch && need < LINK_OUT_BYTES ?
				   LINK_OUT_BYTES : need);
		if (rc < 0)
			return rc;
	}
	link_put32(o->buf + o->len, (uint32_t)len);
	memcpy(o->buf + o->len + LINK_FRAME_HDR, buf, len);
	o->len += LINK_FRAME_HDR + len;
	o->frames++;
	l->st.tx_frames++;
	return 0;
}

int
link_send(struct link *l, int peer_id, const void *buf, size_t len)
{
	int rc;

	if (!link_peer_known(l, peer_id))
		return -ENOENT;
	if (len > LINK_MAX_MSG - LINK_FROM_LEN - LINK_FRAME_HDR -
	    LINK_TRAILER_LEN)
		return -EMSGSIZE;
	if (l->live[peer_id].dead) {
		/* Nothing queues for a peer that may never read it. */
		l->st.tx_peer_dead++;
		return -EHOSTDOWN;
	}
	if (!link_ux_out_up(l->ux[peer_id]))
		return -EAGAIN;
	rc = link_out_add(l, peer_id, buf, len, l->turn[peer_id] == LINK_SENT);
	if (rc < 0)
		return rc;
	if (l->turn[peer_id] == LINK_SENT) {
		/* link_on_flush sends it after the poll phase.  Gathered from
		 * a timer or a prepare callback, it would wait for whatever
		 * next woke the loop: an active idle handle keeps this turn's
		 * poll from blocking. */
		if (!l->wake_on) {
			uv_idle_start(&l->wake, link_on_wake);
			l->wake_on = 1;
		}
		return 0;
	}
	rc = link_out_send(l, peer_id);
	if (rc < 0) {
		l->st.tx_frames--;
		return rc;
	}
	l->turn[peer_id] = LINK_SENT;
	l->touched[l->ntouched++] = (uint8_t)peer_id;
	if (!l->flush_on) {
		uv_check_start(&l->flush, link_on_flush);
		l->flush_on = 1;
	}
	return 0;
}

/* A message of the from word alone to peer_id, unless a chunk for it
 * is being gathered this turn (that goes anyway). */
static void
link_heartbeat(struct link *l, int peer_id)
{
	if (l->out[peer_id].open || link_out_open(l, peer_id, 0) < 0)
		return;
	/* Refused when not connected, or the queue is full of what a
	 * hung peer does not read: nothing to do about either. */
	if (link_out_send(l, peer_id) == 0)
		l->st.tx_heartbeats++;
}

static void
link_on_tick(uv_timer_t *h)
{
	struct link *l = h->data;

	for (int id = 1; id < LINK_MAX_PEERS; id++) {
		struct link_live *p = &l->live[id];

		if (!link_peer_known(l, id))
			continue;
		if (!p->sent)
			link_heartbeat(l, id);
		p->sent = 0;
		if (p->heard) {
			p->heard = 0;
			p->silent = 0;
			continue;
		}
		if (p->dead || ++p->silent < l->dead_ticks)
			continue;
		p->dead = 1;
		l->st.peers_died++;
		if (l->peer_cb)
			l->peer_cb(l->peer_arg, id, 0);
	}
}

int
link_live_start(struct link *l, int self_id, int heartbeat_ms, int dead_ms,
		link_peer_cb cb, void *arg)
{
	if (self_id < 1 || self_id >= LINK_MAX_PEERS || heartbeat_ms < 1 ||
	    dead_ms < LINK_LIVE_MIN_TICKS * heartbeat_ms)
		return -EINVAL;
	l->self_id = self_id;
	/* Rounded up: dead_ms of silence at least. */
	l->dead_ticks = (unsigned)((dead_ms + heartbeat_ms - 1) / heartbeat_ms);
	l->peer_cb = cb;
	l->peer_arg = arg;
	return uv_timer_start(&l->tick, link_on_tick, (uint64_t)heartbeat_ms,
			      (uint64_t)heartbeat_ms);
}

int
link_peers_in(const struct link *l)
{
	/* Accepts first (the server is not part of *l): an edge asks
	 * before its loop runs. */
	return link_ux_srv_conns(l->ux_rx);
}

static void
link_on_close(uv_handle_t *h)
{
	struct link *l = h->data;

	if (--l->handles == 0)
		free(l);
}

void
link_free(struct link *l)
{
	uint64_t until = uv_hrtime() / 1000000 + LINK_UX_LINGER_MS;

	if (l == NULL)
		return;
	l->closing = 1;
	link_ux_srv_free(l->ux_rx);
	/* What this turn gathered still goes (a stopping edge's notices),
	 * and what a stream holds pending: nothing else would write it. */
	link_on_flush(&l->flush);
	for (int i = 0; i < LINK_MAX_PEERS; i++) {
		if (l->ux[i]) {
			link_ux_out_free(l->ux[i], until);
			free(l->out[i].buf);
		}
	}
	EVP_MAC_CTX_free(l->mac);
	OPENSSL_cleanse(l->key, sizeof(l->key));
	uv_close((uv_handle_t *)&l->flush, link_on_close);
	uv_close((uv_handle_t *)&l->wake, link_on_close);
	uv_close((uv_handle_t *)&l->tick, link_on_close);
}
