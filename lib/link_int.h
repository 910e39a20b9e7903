/*
 * link_int.h - between link.c and its stream transport, link_ux.c.
 *
 * Links do not go through nanomsg (link.c says why): a link bound at
 * an ipc:// or tcp:// endpoint listens there itself (struct
 * link_ux_srv) and reaches each peer through one stream of its own
 * (struct link_ux_out), a unix stream or TCP, both driven by the loop
 * thread.  On a stream every chunk (the from word and frames, and
 * between hosts a trailer) follows its length, 4 bytes big-endian.
 */
#ifndef SM_LINK_INT_H
#define SM_LINK_INT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Room for a burst of large SIP messages before senders see -EAGAIN:
 * a stream's pending bytes. */
#define LINK_BUF_BYTES (4 * 1024 * 1024)
/* Envelope header + the largest max_msg cfg accepts, with margin: the
 * largest chunk a receiver takes. */
#define LINK_MAX_MSG   (2 * 1024 * 1024)
#define LINK_UX_HDR    4		/* a chunk's length word */
/* Two gathered chunks (LINK_OUT_BYTES in link.c): one read takes what a
 * busy turn of the peer sent.  Also the most a connection may send in
 * one chunk before its first was taken. */
#define LINK_UX_IN_BYTES (128 * 1024)
/* Connections open at an endpoint that sent nothing valid yet (anyone
 * can connect to a tcp one): a new one beyond closes the oldest. */
#define LINK_UX_UNTRUSTED 64
/* A peer that is down is tried again this often: nanomsg's
 * NN_RECONNECT_IVL default, what the links ran on before. */
#define LINK_UX_RETRY_MS 100
/* How long link_free may block writing what is pending. */
#define LINK_UX_LINGER_MS 1000

struct link_ux_srv;
struct link_ux_out;

/*
 * Called for each chunk received, its length word stripped; buf is
 * valid during the call only.  A length over LINK_MAX_MSG (over
 * LINK_UX_IN_BYTES - LINK_UX_HDR before the connection's first chunk
 * was taken) comes as buf NULL (len: that length) and its connection
 * closes.  Returns 0, or a negative errno to close that connection
 * (what it sent was no link's, or forged: nothing after it can be
 * trusted).  It may call link_ux_srv_free.
 */
typedef int (*link_ux_chunk_cb)(void *arg, const unsigned char *buf,
				size_t len);

/*
 * struct link_ux_rd: the chunks of one received stream, apart from its
 * socket (tests/fuzz/fuzz_link_stream.c feeds it bytes).  Whatever a
 * read(2) got goes at buf + len (at most cap - len bytes: never 0
 * after init, nor after keep once next gave 0) and len grows by it;
 * link_ux_rd_next then hands out each complete chunk, and
 * link_ux_rd_keep moves what is left to the front.
 */
struct link_ux_rd {
	unsigned char *buf;	/* buf[off .. len): read, not yet handed out */
	size_t off, len, cap;
};

/* LINK_UX_IN_BYTES of buffer: 0 or -ENOMEM. */
int link_ux_rd_init(struct link_ux_rd *r);
/* Accepts a reader whose init failed (or was zeroed). */
void link_ux_rd_fini(struct link_ux_rd *r);

/*
 * The next complete chunk (its length word stripped): 1 with *chunk
 * and *len, valid until link_ux_rd_keep; 0 when none is complete yet;
 * -EMSGSIZE when the next one announces more than max bytes (*len:
 * what it announced; nothing after it can be read).
 */
int link_ux_rd_next(struct link_ux_rd *r, size_t max,
		    const unsigned char **chunk, size_t *len);

/* After the chunks of a read: moves the bytes not handed out to the
 * front and makes room for the whole chunk they begin (announced at
 * most max of link_ux_rd_next).  0 or -ENOMEM. */
int link_ux_rd_keep(struct link_ux_rd *r);

/* link.c's callback for the chunks of its endpoint (arg: the struct
 * link): verifies a chunk from another host, then hands its envelopes
 * to the link's callback.  Not static: tests/fuzz/fuzz_link_stream.c
 * feeds it. */
int link_on_ux_chunk(void *arg, const unsigned char *buf, size_t len);

/* 0 when url is an endpoint of this transport: ipc://<path>, or
 * tcp://<IPv4 address>:<port> or tcp://[<IPv6 address>]:<port> (an
 * address, never a name); else -EINVAL or -ENAMETOOLONG. */
int link_ux_url_ok(const char *url);

/*
 * Listens at url (link_ux_url_ok).  At an ipc path, as nanomsg's ipc
 * did: a file there that nobody answers at is stale and replaced, one
 * somebody answers at gives -EADDRINUSE.  Writes *out on success only.
 * Returns 0, -EINVAL, -ENOMEM, -ENAMETOOLONG, or a negative errno from
 * the socket calls or libuv.
 */
int link_ux_srv_new(struct link_ux_srv **out, uv_loop_t *loop,
		    const char *url, link_ux_chunk_cb cb, void *arg);

/* Accepts what waits and returns the number of connections open.
 * Works before the loop runs (an edge waits for its cores so). */
int link_ux_srv_conns(struct link_ux_srv *s);

/* Closes the socket and every connection at once; cb is not called
 * after it.  Memory goes on a later turn of the loop.  Accepts NULL. */
void link_ux_srv_free(struct link_ux_srv *s);

/* Called when a stream's connection is up, before anything else is
 * written to it: the place for a first chunk. */
typedef void (*link_ux_up_cb)(void *arg, int tag);

/*
 * A stream to the listener at url (link_ux_url_ok): a unix socket is
 * connected now if it answers, TCP in the background; else tried again
 * every LINK_UX_RETRY_MS, and again so when it closes.  up(arg, tag)
 * (or NULL) runs each time it connects, from this call too: *out is
 * written before.  Returns 0, -EINVAL, -ENOMEM or -ENAMETOOLONG.
 */
int link_ux_out_new(struct link_ux_out **out, uv_loop_t *loop,
		    const char *url, link_ux_up_cb up, void *arg, int tag);

/* Whether the stream is connected now. */
int link_ux_out_up(const struct link_ux_out *o);

/*
 * Writes buf (one whole chunk, length word included) without blocking:
 * what the socket does not take now is kept and written, in order,
 * when it is writable.  Returns 0, or -EAGAIN when not connected or
 * LINK_BUF_BYTES are pending already (nothing of buf is then sent),
 * -ENOMEM.
 */
int link_ux_out_write(struct link_ux_out *o, const void *buf, size_t len);

/* Writes what is pending, blocking until then or until until_ms
 * (uv_hrtime in ms), and closes.  Memory goes on a later turn of the
 * loop.  Accepts NULL. */
void link_ux_out_free(struct link_ux_out *o, uint64_t until_ms);

#endif
