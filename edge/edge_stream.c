/*
 * edge_stream.c - SIP over TCP and TLS (RFC 3261 18.3): connections
 * with libuv, TLS with OpenSSL memory BIOs, messages framed by
 * Content-Length.
 *
 * Why libuv + memory BIOs and not libwebsockets' raw-socket role: the
 * same code then serves TCP and TLS, inbound and outbound (a core may
 * send to a TCP/TLS destination nobody connected from, and the
 * message waits in the connection until the connect and handshake
 * finish); the sockets are made like the UDP one (SO_REUSEPORT before
 * bind); every byte in and out goes through one bounded queue we
 * control; and the framing is a pure function with unit tests.  TLS
 * never touches a socket: ciphertext read by libuv is written into the
 * SSL's read BIO, SSL_read/SSL_do_handshake run, and whatever OpenSSL
 * put in the write BIO is queued on the socket, so a handshake that
 * stalls half-way stalls only its connection (the sweep in edge_conn.c
 * closes it after handshake_timeout_s: for an inbound connection that
 * runs until its first SIP message, TCP or TLS).
 *
 * Memory: an idle connection holds no buffer.  Reads land in one
 * 64 KiB buffer of the transport; only the tail of a message that is
 * split across reads is copied into a per-connection buffer, which is
 * freed as soon as it empties.  Writes go out with uv_try_write; what
 * the kernel does not take is copied into a write request, and a
 * connection whose queue passes edge_conn_wq_max() is closed as a slow
 * reader.
 *
 * Outbound TLS authenticates the peer (RFC 5922): its chain must end
 * at a CA of me->tls_ca, and its certificate must name the host of the
 * URI the message was routed by (edge_sip_next_hop_host(): a dNSName
 * SAN, wildcards refused, the subject CN never used; an IP address SAN
 * for a numeric host), which SNI also carries.  OpenSSL checks both
 * inside the handshake, so a refused peer never gets a byte of SIP.
 * The name stays with the connection: a later message to the same
 * address reuses it only for the same name.  An outbound connection
 * that closes before it opened (refused connect, refused certificate,
 * stuck handshake) hands its queued requests back to their cores
 * (edge_fwd_undelivered()): the caller hears 500 at once (RFC 3261 16.9, 16.7);
 * a refused certificate says so (ENV_F_PEER_REFUSED), and a foreign
 * domain's request then goes to its next TLS target (core_fed.c).
 *
 * Mutual TLS (RFC 5922 7.4): the listener asks every client for a
 * certificate and requires none, so phones without one are served.  A
 * client certificate that chains to tls_ca proves the SIP domain
 * identities in it (edge_stream_cert_names); an outbound connection
 * proves the name its server was checked for.  What a connection
 * proved (edge_conn.tls_names) goes with each request it carries in
 * the envelope's peer names, and the core decides (core_fed.c).  When
 * dialling, the edge presents tls_cert as its client certificate.
 */
#include "edge/edge_int.h"
#include "lib/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define EDGE_STREAM_RBUF (64 * 1024)
#define EDGE_STREAM_BACKLOG 1024
#define EDGE_STREAM_NAME_MAX 256	/* a DNS name is at most 253 */

struct edge_sconn;

struct edge_stream {
	struct edge_tp tp;	/* first: an edge_tp * is an edge_stream * */
	struct edge *edge;
	uv_tcp_t listener;
	SSL_CTX *srv_ctx;	/* TLS only */
	SSL_CTX *cli_ctx;
	char *rbuf;		/* ciphertext or plaintext as read */
	char *pbuf;		/* plaintext out of SSL_read */
	struct edge_sconn *all;	/* every connection, closing ones too */
	int closing;
	int unlistened;		/* drained: the listener is closed */
	int handles;		/* listener + connections not yet closed */
};

struct edge_sconn {
	struct edge_conn c;	/* first: an edge_conn * is an edge_sconn * */
	struct edge_stream *st;
	uv_tcp_t h;
	uv_connect_t creq;
	SSL *ssl;
	BIO *rbio, *wbio;	/* owned by ssl */
	char *buf;		/* plaintext of an unfinished message */
	size_t len, cap, scan;
	char *pend;		/* plaintext waiting for connect/handshake */
	size_t pend_len;
	char *name;		/* outbound TLS: the host its certificate
				   proves (RFC 5922); owned */
	char *names;		/* c.tls_names: what the peer proved (the
				   client certificate of an inbound one,
				   name for an outbound one); owned */
	int refused;		/* the TLS peer did not prove name */
	size_t wq;		/* bytes in libuv write requests */
	int ready;		/* connected and, for TLS, handshake done */
	int closing;
	struct edge_sconn *prev_all, *next_all;
};

struct edge_wreq {
	uv_write_t req;
	struct edge_sconn *s;
	size_t len;
	char data[];
};

static const struct edge_conn_ops edge_sconn_ops;

/* ---- framing ---- */

/* Offset just past the blank line ending the headers, searching from
 * *scan; 0 when not there yet.  Accepts CRLF or bare LF lines. */
static size_t
edge_frame_hdr_end(const char *buf, size_t len, size_t *scan)
{
	size_t i = *scan;

	for (; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
		if (i + 2 >= len)
			break;	/* could still become a blank line */
	}
	*scan = i < len ? i : len;
	return 0;
}

int
edge_stream_frame(const char *buf, size_t len, size_t max, size_t *scan,
		  struct edge_frame *f, const char **why)
{
	static const char ping[] = "\r\n\r\n";
	struct edge_hdr h;
	size_t end, pos, body = 0;
	int have_cl = 0;

	memset(f, 0, sizeof(*f));
	*why = NULL;
	if (len == 0)
		return 0;
	if (buf[0] == '\r' || buf[0] == '\n') {
		size_t i;

		for (i = 0; i < len && i < 4 && buf[i] == ping[i]; i++)
			;
		if (i == 4) {
			f->kind = EDGE_FRAME_PING;
			f->len = 4;
		} else if (i == len) {
			f->kind = EDGE_FRAME_MORE;	/* a ping's prefix */
		} else {
			/* A lone CRLF (a pong, or padding before a message)
			 * or stray CR/LF bytes: skip them. */
			f->kind = EDGE_FRAME_SKIP;
			f->len = i > 0 && i % 2 == 0 ? i : 1;
		}
		return 0;
	}
	end = edge_frame_hdr_end(buf, len, scan);
	if (end == 0) {
		if (len > max) {
			*why = "headers larger than max_msg";
			return -EMSGSIZE;
		}
		return 0;
	}
	/* Headers start after the start line. */
	pos = (size_t)((const char *)memchr(buf, '\n', end) - buf) + 1;
	for (int r; (r = edge_sip_hdr_next(buf, end, &pos, &h)) == 1;) {
		size_t v = 0;

		if (h.id != EDGE_H_CONTENT_LENGTH)
			continue;
		if (h.value.len == 0 || h.value.len > 9) {
			*why = "bad Content-Length";
			return -EBADMSG;
		}
		for (size_t i = 0; i < h.value.len; i++) {
			if (h.value.s[i] < '0' || h.value.s[i] > '9') {
				*why = "bad Content-Length";
				return -EBADMSG;
			}
			v = v * 10 + (size_t)(h.value.s[i] - '0');
		}
		if (have_cl && v != body) {
			*why = "conflicting Content-Length headers";
			return -EBADMSG;
		}
		have_cl = 1;
		body = v;
	}
	if (!have_cl) {
		*why = "no Content-Length on a stream";
		return -EBADMSG;
	}
	if (end + body > max) {
		*why = "message larger than max_msg";
		return -EMSGSIZE;
	}
	if (len < end + body)
		return 0;
	f->kind = EDGE_FRAME_MSG;
	f->len = end + body;
	return 0;
}

/* ---- writing ---- */

static void edge_sconn_close(struct edge_conn *c, const char *why);

static void
edge_sconn_on_write(uv_write_t *req, int status)
{
	struct edge_wreq *w = (struct edge_wreq *)req;
	struct edge_sconn *s = w->s;

	s->wq -= w->len;
	free(w);
	if (status < 0 && status != UV_ECANCELED)
		edge_sconn_close(&s->c, uv_strerror(status));
}

/* Queues bytes on the socket.  Returns 0 or -ENOBUFS / -errno. */
static int
edge_sconn_write_raw(struct edge_sconn *s, const char *buf, size_t len)
{
	struct edge_wreq *w;
	uv_buf_t b;
	int rc;

	if (s->closing)
		return -ENOTCONN;
	if (s->wq == 0) {
		b = uv_buf_init((char *)buf, (unsigned)len);
		rc = uv_try_write((uv_stream_t *)&s->h, &b, 1);
		if (rc > 0) {
			buf += rc;
			len -= (size_t)rc;
		} else if (rc < 0 && rc != UV_EAGAIN) {
			return rc;
		}
		if (len == 0)
			return 0;
	}
	if (s->wq + len > edge_conn_wq_max(s->st->edge))
		return -ENOBUFS;
	w = malloc(sizeof(*w) + len);
	if (w == NULL)
		return -ENOMEM;
	memcpy(w->data, buf, len);
	w->s = s;
	w->len = len;
	b = uv_buf_init(w->data, (unsigned)len);
	rc = uv_write(&w->req, (uv_stream_t *)&s->h, &b, 1, edge_sconn_on_write);
	if (rc < 0) {
		free(w);
		return rc;
	}
	s->wq += len;
	return 0;
}

/* Moves what OpenSSL wrote into the write BIO onto the socket. */
static int
edge_sconn_flush_tls(struct edge_sconn *s)
{
	char tmp[16384];
	int n, rc = 0;

	while (rc == 0 && (n = BIO_read(s->wbio, tmp, sizeof(tmp))) > 0)
		rc = edge_sconn_write_raw(s, tmp, (size_t)n);
	return rc;
}

/* Sends plaintext on a ready connection. */
static int
edge_sconn_write(struct edge_sconn *s, const char *buf, size_t len)
{
	if (s->ssl == NULL)
		return edge_sconn_write_raw(s, buf, len);
	if (s->wq + len > edge_conn_wq_max(s->st->edge))
		return -ENOBUFS;
	while (len > 0) {
		int n = SSL_write(s->ssl, buf, len > 16384 ? 16384 : (int)len);

		if (n <= 0)
			return -EPROTO;
		buf += n;
		len -= (size_t)n;
	}
	return edge_sconn_flush_tls(s);
}

static int
edge_sconn_send(struct edge_conn *c, const char *buf, size_t len)
{
	struct edge_sconn *s = (struct edge_sconn *)c;
	char *p;

	if (s->closing)
		return -ENOTCONN;
	if (s->ready)
		return edge_sconn_write(s, buf, len);
	/* Connecting or in the handshake: keep it until then. */
	if (s->pend_len + len > edge_conn_wq_max(s->st->edge))
		return -ENOBUFS;
	p = realloc(s->pend, s->pend_len + len);
	if (p == NULL)
		return -ENOMEM;
	memcpy(p + s->pend_len, buf, len);
	s->pend = p;
	s->pend_len += len;
	return 0;
}

/* The connection carries SIP from now on: open it, flush the queue. */
static void
edge_sconn_ready(struct edge_sconn *s)
{
	struct edge *e = s->st->edge;
	int rc = 0;

	s->ready = 1;
	/* An inbound one stays PENDING until its first SIP message: the
	 * handshake deadline covers a slowloris on TCP too. */
	if (s->c.outbound)
		edge_conn_open(&e->conns, &s->c, uv_now(e->loop));
	if (s->pend_len)
		rc = edge_sconn_write(s, s->pend, s->pend_len);
	free(s->pend);
	s->pend = NULL;
	s->pend_len = 0;
	if (rc < 0)
		edge_sconn_close(&s->c, rc == -ENOBUFS ?
				 "write queue full (slow reader)" :
				 "write failed");
}

/* ---- closing ---- */

/* An outbound connection closing before it opened: its queued
 * messages (whole, as the core sent them) go back to their cores. */
static void
edge_sconn_undelivered(struct edge_sconn *s)
{
	struct edge *e = s->st->edge;
	size_t off = 0, scan = 0;
	struct edge_frame f;
	const char *why;

	while (off < s->pend_len &&
	       edge_stream_frame(s->pend + off, s->pend_len - off,
				 s->pend_len, &scan, &f, &why) == 0 &&
	       f.kind != EDGE_FRAME_MORE) {
		if (f.kind == EDGE_FRAME_MSG)
			edge_fwd_undelivered(e, s->c.transport, s->c.id,
					     &s->c.peer, s->pend + off, f.len,
					     s->refused ? ENV_F_PEER_REFUSED : 0);
		off += f.len;
		scan = 0;
	}
	free(s->pend);
	s->pend = NULL;
	s->pend_len = 0;
}

static void
edge_stream_unref(struct edge_stream *st)
{
	if (--st->handles > 0)
		return;
	SSL_CTX_free(st->srv_ctx);
	SSL_CTX_free(st->cli_ctx);
	free(st->rbuf);
	free(st->pbuf);
	free(st);
}

static void
edge_sconn_on_close(uv_handle_t *h)
{
	struct edge_sconn *s = h->data;
	struct edge_stream *st = s->st;

	if (s->prev_all)
		s->prev_all->next_all = s->next_all;
	else
		st->all = s->next_all;
	if (s->next_all)
		s->next_all->prev_all = s->prev_all;
	SSL_free(s->ssl);
	free(s->buf);
	free(s->pend);
	free(s->name);
	free(s->names);
	free(s);
	edge_stream_unref(st);
}

static void
edge_sconn_close(struct edge_conn *c, const char *why)
{
	struct edge_sconn *s = (struct edge_sconn *)c;

	if (s->closing)
		return;
	s->closing = 1;
	if (c->outbound && !s->ready)
		edge_sconn_undelivered(s);
	edge_conn_closed(s->st->edge, c, why);
	uv_read_stop((uv_stream_t *)&s->h);
	/* Pending writes are cancelled; a pending connect gets
	 * UV_ECANCELED; the memory goes in the close callback. */
	uv_close((uv_handle_t *)&s->h, edge_sconn_on_close);
}

static const struct edge_conn_ops edge_sconn_ops = {
	.send = edge_sconn_send,
	.close = edge_sconn_close,
};

/* ---- reading ---- */

static void
edge_sconn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct edge_sconn *s = h->data;

	(void)suggested;
	buf->base = s->st->rbuf;
	buf->len = EDGE_STREAM_RBUF;
}

/* Frames and forwards what is in data (the connection's own buffer or
 * fresh plaintext when that is empty); keeps the unfinished tail. */
static void
edge_sconn_frames(struct edge_sconn *s, const char *data, size_t len)
{
	struct edge *e = s->st->edge;
	size_t max = (size_t)e->me->max_msg, off = 0;
	struct edge_frame f;
	const char *why;
	int rc;

	while (!s->closing && off < len) {
		rc = edge_stream_frame(data + off, len - off, max, &s->scan, &f,
				       &why);
		if (rc < 0) {
			e->st.conns_bad++;
			if (rc == -EMSGSIZE)
				e->st.oversized++;
			edge_sconn_close(&s->c, why);
			return;
		}
		if (f.kind == EDGE_FRAME_MORE)
			break;
		s->scan = 0;
		if (f.kind == EDGE_FRAME_MSG) {
			edge_conn_msg(&e->conns, &s->c, uv_now(e->loop));
			s->c.used = 1;
			edge_fwd_input(e, &s->st->tp, s->c.id, &s->c.peer,
				       data + off, f.len);
		} else if (f.kind == EDGE_FRAME_PING) {
			/* RFC 5626 3.5.1: CRLFCRLF ping, CRLF pong. */
			e->st.received++;
			e->st.keepalives++;
			edge_conn_touch(&e->conns, &s->c, uv_now(e->loop));
			if (s->ready && edge_sconn_write(s, "\r\n", 2) == -ENOBUFS) {
				e->st.conns_slow++;
				edge_sconn_close(&s->c, "write queue full (slow reader)");
			}
		}
		off += f.len;
	}
	if (s->closing)
		return;
	/* Keep the unfinished tail, in the connection's buffer. */
	len -= off;
	if (len == 0) {
		free(s->buf);
		s->buf = NULL;
		s->len = s->cap = 0;
		return;
	}
	if (data == s->buf) {
		memmove(s->buf, s->buf + off, len);
	} else {
		if (len > s->cap) {
			char *p = realloc(s->buf, len);

			if (p == NULL) {
				edge_sconn_close(&s->c, "out of memory");
				return;
			}
			s->buf = p;
			s->cap = len;
		}
		memcpy(s->buf, data + off, len);
	}
	s->len = len;
}

/* Plaintext in: frame it directly when nothing is pending, else add it
 * to the pending tail first. */
static void
edge_sconn_plain(struct edge_sconn *s, const char *data, size_t len)
{
	size_t need;

	if (s->len == 0) {
		edge_sconn_frames(s, data, len);
		return;
	}
	need = s->len + len;
	if (need > s->cap) {
		size_t cap = s->cap * 2 > need ? s->cap * 2 : need;
		size_t lim = (size_t)s->st->edge->me->max_msg + EDGE_STREAM_RBUF;
		char *p;

		if (cap > lim)
			cap = need;	/* frame() refuses it past max_msg */
		p = realloc(s->buf, cap);
		if (p == NULL) {
			edge_sconn_close(&s->c, "out of memory");
			return;
		}
		s->buf = p;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, data, len);
	s->len = need;
	edge_sconn_frames(s, s->buf, s->len);
}

static const char *
edge_tls_err(char *buf, size_t len)
{
	unsigned long err = ERR_get_error();

	ERR_clear_error();
	if (err == 0)
		return "TLS error";
	ERR_error_string_n(err, buf, len);
	return buf;
}

/* Appends name[0..len), lower-cased, to the peer names in buf (env.h:
 * DNS names, one space apart) unless it is no DNS name, is there
 * already or does not fit. */
static void
edge_names_add(char *buf, size_t *used, const char *name, size_t len)
{
	char low[256];
	struct env e = { .names = buf, .names_len = *used };

	if (len == 0 || len >= sizeof(low) ||
	    *used + (*used ? 1 : 0) + len > ENV_NAMES_MAX)
		return;
	for (size_t i = 0; i < len; i++)
		low[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ?
				name[i] - 'A' + 'a' : name[i]);
	if (!env_names_valid(low, len) || memchr(low, ' ', len) ||
	    env_names_has(&e, low, len))
		return;
	if (*used)
		buf[(*used)++] = ' ';
	memcpy(buf + *used, low, len);
	*used += len;
	buf[*used] = '\0';
}

void
edge_stream_cert_names(X509 *cert, char *buf)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name,
					       NULL, NULL);
	size_t used = 0;
	int uris = 0;

	buf[0] = '\0';
	for (int pass = 0; gens && pass < 2 && !(pass == 1 && uris); pass++) {
		for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
			const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
			const char *v;
			size_t len, n;

			if (pass == 1 && g->type == GEN_DNS) {
				edge_names_add(buf, &used, (const char *)
					       ASN1_STRING_get0_data(g->d.dNSName),
					       (size_t)ASN1_STRING_length(g->d.dNSName));
				continue;
			}
			if (pass == 1 || g->type != GEN_URI)
				continue;
			v = (const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
			len = (size_t)ASN1_STRING_length(g->d.uniformResourceIdentifier);
			if (len < 4 || strncasecmp(v, "sip:", 4) != 0 ||
			    memchr(v, '@', len))
				continue;	/* no SIP domain identity */
			v += 4;
			len -= 4;
			for (n = 0; n < len && v[n] != ';' && v[n] != ':' &&
			     v[n] != '?'; n++)
				;
			uris = 1;
			edge_names_add(buf, &used, v, n);
		}
	}
	GENERAL_NAMES_free(gens);
}

/*
 * A TLS connection just finished its handshake: record what its peer
 * proved, for the cores (edge_fwd_request puts it in the envelope).
 * Inbound: the names of a client certificate that chains to tls_ca,
 * none without one; outbound: the name the server proved (its check
 * failing would have closed the connection).
 */
static void
edge_sconn_proven(struct edge_sconn *s)
{
	char buf[ENV_NAMES_MAX + 1];
	X509 *cert;
	size_t used = 0;

	buf[0] = '\0';
	if (s->c.outbound) {
		if (s->name)
			edge_names_add(buf, &used, s->name, strlen(s->name));
	} else if (SSL_get_verify_result(s->ssl) == X509_V_OK &&
		   (cert = SSL_get_peer_certificate(s->ssl)) != NULL) {
		edge_stream_cert_names(cert, buf);
		X509_free(cert);
	}
	if (buf[0] == '\0')
		return;
	s->names = strdup(buf);
	s->c.tls_names = s->names;
}

static void
edge_sconn_tls_in(struct edge_sconn *s, const char *data, size_t len)
{
	struct edge_stream *st = s->st;
	char err[160], why[128];
	int n;

	if (BIO_write(s->rbio, data, (int)len) != (int)len) {
		edge_sconn_close(&s->c, "out of memory");
		return;
	}
	if (!s->ready) {
		n = SSL_do_handshake(s->ssl);
		if (edge_sconn_flush_tls(s) < 0 && !s->closing) {
			edge_sconn_close(&s->c, "write failed");
			return;
		}
		if (n != 1) {
			int e = SSL_get_error(s->ssl, n);

			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return;
			st->edge->st.conns_bad++;
			if (s->name && SSL_get_verify_result(s->ssl) != X509_V_OK) {
				st->edge->st.tls_peer_refused++;
				s->refused = 1;
				ERR_clear_error();
				snprintf(err, sizeof(err), "TLS peer refused for "
					 "%s: %s", s->name,
					 X509_verify_cert_error_string(
						SSL_get_verify_result(s->ssl)));
				if (edge_ratelimit_allow(&st->edge->rl,
							 uv_now(st->edge->loop)))
					log_notice(LOG_SYS_NET, "TLS connection "
						   ENV_CONN_FMT " to %s: %s",
						   ENV_CONN_ARGS(s->c.id),
						   env_sa_str(&s->c.peer, why,
							      sizeof(why)), err);
			} else {
				snprintf(err, sizeof(err), "TLS handshake failed: %s",
					 edge_tls_err(why, sizeof(why)));
			}
			edge_sconn_close(&s->c, err);
			return;
		}
		edge_sconn_proven(s);
		edge_sconn_ready(s);
	}
	while (!s->closing) {
		n = SSL_read(s->ssl, st->pbuf, EDGE_STREAM_RBUF);
		if (n > 0) {
			edge_sconn_plain(s, st->pbuf, (size_t)n);
			continue;
		}
		n = SSL_get_error(s->ssl, n);
		if (n == SSL_ERROR_WANT_READ || n == SSL_ERROR_WANT_WRITE)
			break;
		if (n == SSL_ERROR_ZERO_RETURN) {
			edge_sconn_close(&s->c, "TLS close_notify");
		} else {
			st->edge->st.conns_bad++;
			edge_sconn_close(&s->c, edge_tls_err(err, sizeof(err)));
		}
		return;
	}
	/* SSL_read may have answered (key update, alert). */
	if (!s->closing && edge_sconn_flush_tls(s) < 0)
		edge_sconn_close(&s->c, "write failed");
}

static void
edge_sconn_on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
	struct edge_sconn *s = h->data;

	if (nread == 0 || s->closing)
		return;
	if (nread < 0) {
		edge_sconn_close(&s->c, nread == UV_EOF ? "closed by peer" :
				 uv_strerror((int)nread));
		return;
	}
	if (s->ssl)
		edge_sconn_tls_in(s, buf->base, (size_t)nread);
	else
		edge_sconn_plain(s, buf->base, (size_t)nread);
}

/* ---- connections ---- */

static struct edge_sconn *
edge_sconn_alloc_one(struct edge_stream *st, int server)
{
	struct edge_sconn *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->st = st;
	s->h.data = s;
	s->c.transport = (uint8_t)st->tp.transport;
	s->c.ops = &edge_sconn_ops;
	if (env_transport_is(st->tp.transport, ENV_TP_SECURE)) {
		s->ssl = SSL_new(server ? st->srv_ctx : st->cli_ctx);
		s->rbio = BIO_new(BIO_s_mem());
		s->wbio = BIO_new(BIO_s_mem());
		if (s->ssl == NULL || s->rbio == NULL || s->wbio == NULL) {
			SSL_free(s->ssl);
			BIO_free(s->rbio);
			BIO_free(s->wbio);
			free(s);
			return NULL;
		}
		SSL_set_bio(s->ssl, s->rbio, s->wbio);
		if (server)
			SSL_set_accept_state(s->ssl);
		else
			SSL_set_connect_state(s->ssl);
	}
	if (uv_tcp_init(st->edge->loop, &s->h) < 0) {
		SSL_free(s->ssl);
		free(s);
		return NULL;
	}
	s->next_all = st->all;
	if (st->all)
		st->all->prev_all = s;
	st->all = s;
	st->handles++;
	return s;
}

static void
edge_stream_on_conn(uv_stream_t *server, int status)
{
	struct edge_stream *st = server->data;
	struct edge *e = st->edge;
	struct edge_sconn *s;
	int len = sizeof(union env_sa), rc;
	char peer[64];

	if (status < 0) {
		log_warn(LOG_SYS_NET, "%s accept: %s",
			 env_transport_name(st->tp.transport), uv_strerror(status));
		return;
	}
	s = edge_sconn_alloc_one(st, 1);
	if (s == NULL)
		return;
	if (uv_accept(server, (uv_stream_t *)&s->h) < 0 ||
	    uv_tcp_getpeername(&s->h, &s->c.peer.sa, &len) < 0) {
		s->closing = 1;
		uv_close((uv_handle_t *)&s->h, edge_sconn_on_close);
		return;
	}
	len = sizeof(union env_sa);
	uv_tcp_getsockname(&s->h, &s->c.local.sa, &len);
	if (edge_conn_accept(e, &s->c) < 0) {
		s->closing = 1;
		uv_close((uv_handle_t *)&s->h, edge_sconn_on_close);
		return;
	}
	log_debug(LOG_SYS_NET, "%s connection " ENV_CONN_FMT " from %s",
		  env_transport_name(st->tp.transport), ENV_CONN_ARGS(s->c.id),
		  env_sa_str(&s->c.peer, peer, sizeof(peer)));
	if (s->ssl == NULL)
		edge_sconn_ready(s);
	rc = uv_read_start((uv_stream_t *)&s->h, edge_sconn_alloc,
			   edge_sconn_on_read);
	if (rc < 0)
		edge_sconn_close(&s->c, uv_strerror(rc));
}

static void
edge_sconn_on_connect(uv_connect_t *req, int status)
{
	struct edge_sconn *s = req->data;
	int len = sizeof(union env_sa), rc;

	if (s->closing)
		return;
	if (status < 0) {
		edge_sconn_close(&s->c, uv_strerror(status));
		return;
	}
	uv_tcp_getsockname(&s->h, &s->c.local.sa, &len);
	uv_tcp_nodelay(&s->h, 1);
	rc = uv_read_start((uv_stream_t *)&s->h, edge_sconn_alloc,
			   edge_sconn_on_read);
	if (rc < 0) {
		edge_sconn_close(&s->c, uv_strerror(rc));
		return;
	}
	if (s->ssl == NULL) {
		edge_sconn_ready(s);
		return;
	}
	SSL_do_handshake(s->ssl);	/* writes the ClientHello */
	if (edge_sconn_flush_tls(s) < 0)
		edge_sconn_close(&s->c, "write failed");
}

/*
 * The name an outbound TLS connection for buf must prove (see
 * edge_sip_next_hop_host()); dst's address when the message names no
 * host, so the peer is still held to the address dialled.
 */
static void
edge_stream_peer_name(const char *buf, size_t len, const union env_sa *dst,
		      char *out, size_t cap)
{
	struct edge_sip_scan sc;

	if (edge_sip_scan(&sc, buf, len) != 0 ||
	    edge_sip_next_hop_host(&sc, buf, len, out, cap) != 0)
		env_sa_ip(dst, out, cap);
}

/*
 * Tells OpenSSL what the server of s must prove: a certificate that
 * chains to tls_ca (the client context verifies) for name, with SNI
 * for a host name (RFC 6066 3: never for an address).  RFC 5922 7.2:
 * no wildcards; 7.1: the SAN decides, never the subject CN.
 */
static int
edge_sconn_expect(struct edge_sconn *s, const char *name)
{
	unsigned char a[16];

	s->name = strdup(name);
	if (s->name == NULL)
		return -ENOMEM;
	if (inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl),
						     name) == 1 ? 0 : -EINVAL;
	SSL_set_hostflags(s->ssl, X509_CHECK_FLAG_NO_WILDCARDS |
			  X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
	if (SSL_set_tlsext_host_name(s->ssl, name) != 1 ||
	    SSL_set1_host(s->ssl, name) != 1)
		return -EINVAL;
	return 0;
}

/* An outbound connection to dst that may carry a message for name
 * (NULL: TCP, any connection to dst). */
static struct edge_conn *
edge_stream_reuse(struct edge *e, int transport, const union env_sa *dst,
		  const char *name)
{
	struct edge_conn *c = edge_conn_find_dst(&e->conns, transport, dst);

	for (; c; c = edge_conn_find_dst_after(&e->conns, transport, dst, c)) {
		const struct edge_sconn *s = (const struct edge_sconn *)c;

		if (name == NULL || (s->name && strcasecmp(s->name, name) == 0))
			return c;
	}
	return NULL;
}

/* conn_id 0: reuse a connection to dst or open one; the message waits
 * in it until it is ready. */
static int
edge_stream_send(struct edge_tp *tp, const union env_sa *dst, uint64_t conn_id,
		 const char *buf, size_t len)
{
	struct edge_stream *st = (struct edge_stream *)tp;
	struct edge *e = st->edge;
	struct edge_conn *c;
	struct edge_sconn *s;
	char to[64], name[EDGE_STREAM_NAME_MAX];
	int secure = env_transport_is(tp->transport, ENV_TP_SECURE), rc;

	if (conn_id) {
		c = edge_conn_find(&e->conns, conn_id);
		return c ? c->ops->send(c, buf, len) : -ENOTCONN;
	}
	if (st->closing)
		return -ESHUTDOWN;
	if (secure)
		edge_stream_peer_name(buf, len, dst, name, sizeof(name));
	c = edge_stream_reuse(e, tp->transport, dst, secure ? name : NULL);
	if (c)
		return c->ops->send(c, buf, len);
	if (dst->sa.sa_family != AF_INET && dst->sa.sa_family != AF_INET6)
		return -EAFNOSUPPORT;
	s = edge_sconn_alloc_one(st, 0);
	if (s == NULL)
		return -ENOMEM;
	if (secure && (rc = edge_sconn_expect(s, name)) < 0) {
		s->closing = 1;
		uv_close((uv_handle_t *)&s->h, edge_sconn_on_close);
		return rc;
	}
	s->c.peer = *dst;
	s->c.local.sa.sa_family = dst->sa.sa_family;
	s->c.outbound = 1;
	rc = edge_conn_add(&e->conns, &s->c, uv_now(e->loop));
	if (rc == 0) {
		s->creq.data = s;
		rc = uv_tcp_connect(&s->creq, &s->h, &dst->sa,
				    edge_sconn_on_connect);
		if (rc < 0)
			edge_conn_del(&e->conns, &s->c);
	}
	if (rc < 0) {
		s->closing = 1;
		uv_close((uv_handle_t *)&s->h, edge_sconn_on_close);
		return rc;
	}
	e->st.conns_opened++;
	log_debug(LOG_SYS_NET, "%s connection " ENV_CONN_FMT " to %s%s%s opening",
		  env_transport_name(tp->transport), ENV_CONN_ARGS(s->c.id),
		  env_sa_str(dst, to, sizeof(to)), secure ? " for " : "",
		  secure ? name : "");
	return edge_sconn_send(&s->c, buf, len);
}

/* ---- the transport ---- */

static void
edge_stream_on_listener_close(uv_handle_t *h)
{
	edge_stream_unref(h->data);
}

/* The listener's reference stays until free: st outlives a drain. */
static void
edge_stream_on_unlisten(uv_handle_t *h)
{
	(void)h;
}

static void
edge_stream_unlisten(struct edge_tp *tp)
{
	struct edge_stream *st = (struct edge_stream *)tp;

	if (st->unlistened)
		return;
	st->unlistened = 1;
	uv_close((uv_handle_t *)&st->listener, edge_stream_on_unlisten);
}

static void
edge_stream_free(struct edge_tp *tp)
{
	struct edge_stream *st = (struct edge_stream *)tp;

	st->closing = 1;
	for (struct edge_sconn *s = st->all; s; s = s->next_all)
		if (!s->closing)
			edge_sconn_close(&s->c, "edge stopping");
	if (st->unlistened)
		edge_stream_unref(st);
	else
		uv_close((uv_handle_t *)&st->listener,
			 edge_stream_on_listener_close);
}

/* The verdict on a client certificate waits for edge_sconn_proven:
 * the handshake goes on whatever it is. */
static int
edge_tls_client_any(int ok, X509_STORE_CTX *x)
{
	(void)ok;
	(void)x;
	return 1;
}

int
edge_tls_ctx_new(SSL_CTX **srv, SSL_CTX **cli, const struct cfg_edge *me)
{
	SSL_CTX *s_ctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX *c_ctx = SSL_CTX_new(TLS_client_method());
	char err[160];
	int rc = -EINVAL;

	if (s_ctx == NULL || c_ctx == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	SSL_CTX_set_min_proto_version(s_ctx, TLS1_2_VERSION);
	SSL_CTX_set_min_proto_version(c_ctx, TLS1_2_VERSION);
	/* Memory BIOs: a partial SSL_write must never be retried with a
	 * moved buffer. */
	SSL_CTX_set_mode(s_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_mode(c_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_verify(c_ctx, SSL_VERIFY_PEER, NULL);
	/* Ask every client for a certificate, require none: a phone
	 * sends none and is served; a peer domain's certificate is
	 * verified against tls_ca, and only a verified one proves names
	 * (edge_sconn_proven); a bad one proves nothing. */
	SSL_CTX_set_verify(s_ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE,
			   edge_tls_client_any);
	/* With a client certificate asked for, OpenSSL refuses to resume
	 * a session (a fatal alert) unless sessions carry a context. */
	SSL_CTX_set_session_id_context(s_ctx,
				       (const unsigned char *)"sipmesh-edge", 12);
	if (SSL_CTX_load_verify_locations(c_ctx, me->tls_ca, NULL) != 1) {
		log_err(LOG_SYS_NET, "edge %d tls_ca %s: %s", me->id,
			me->tls_ca[0] ? me->tls_ca : "(empty)",
			edge_tls_err(err, sizeof(err)));
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(s_ctx, me->tls_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(s_ctx, me->tls_key,
					SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(s_ctx) != 1) {
		log_err(LOG_SYS_NET, "edge %d tls_cert %s / tls_key %s: %s",
			me->id, me->tls_cert, me->tls_key,
			edge_tls_err(err, sizeof(err)));
		goto fail;
	}
	/* One store of tls_ca for both directions: the bundle is loaded
	 * once. */
	SSL_CTX_set1_cert_store(s_ctx, SSL_CTX_get_cert_store(c_ctx));
	/* The same pair is our client certificate when we dial: a peer
	 * domain that wants mutual TLS gets it (RFC 5922 7.3-7.5). */
	if (SSL_CTX_use_certificate_chain_file(c_ctx, me->tls_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(c_ctx, me->tls_key,
					SSL_FILETYPE_PEM) != 1) {
		log_err(LOG_SYS_NET, "edge %d tls_cert %s as a client: %s",
			me->id, me->tls_cert, edge_tls_err(err, sizeof(err)));
		goto fail;
	}
	*srv = s_ctx;
	*cli = c_ctx;
	return 0;
fail:
	SSL_CTX_free(s_ctx);
	SSL_CTX_free(c_ctx);
	return rc;
}

/* Each open connection's SSL holds a reference to the context it was
 * made from: freeing ours leaves them be. */
static int
edge_stream_reload(struct edge_tp *tp)
{
	struct edge_stream *st = (struct edge_stream *)tp;
	SSL_CTX *srv, *cli;
	int rc;

	rc = edge_tls_ctx_new(&srv, &cli, st->edge->me);
	if (rc < 0)
		return rc;
	SSL_CTX_free(st->srv_ctx);
	SSL_CTX_free(st->cli_ctx);
	st->srv_ctx = srv;
	st->cli_ctx = cli;
	return 0;
}

int
edge_stream_new(struct edge_tp **out, struct edge *e, int transport)
{
	const struct cfg_edge *me = e->me;
	const char *addr = me->listen[transport];
	char name[64];
	struct edge_stream *st = NULL;
	int fd, rc, len = sizeof(st->tp.local);

	fd = edge_tp_socket(e, transport, SOCK_STREAM, 1);
	if (fd < 0)
		return fd;
	st = calloc(1, sizeof(*st));
	if (st == NULL || (st->rbuf = malloc(EDGE_STREAM_RBUF)) == NULL ||
	    (st->pbuf = malloc(EDGE_STREAM_RBUF)) == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	if (env_transport_is(transport, ENV_TP_SECURE)) {
		rc = edge_tls_ctx_new(&st->srv_ctx, &st->cli_ctx, me);
		if (rc < 0)
			goto fail;
		st->tp.reload = edge_stream_reload;
	}
	st->tp.transport = transport;
	st->tp.send = edge_stream_send;
	st->tp.free = edge_stream_free;
	st->tp.unlisten = edge_stream_unlisten;
	st->edge = e;
	st->listener.data = st;
	rc = uv_tcp_init(e->loop, &st->listener);
	if (rc < 0)
		goto fail;
	/* From here the listener owns st: errors close it. */
	st->handles = 1;
	rc = uv_tcp_open(&st->listener, fd);
	if (rc < 0) {
		close(fd);
	} else {
		rc = uv_listen((uv_stream_t *)&st->listener, EDGE_STREAM_BACKLOG,
			       edge_stream_on_conn);
		if (rc == 0)
			rc = uv_tcp_getsockname(&st->listener, &st->tp.local.sa,
						&len);
	}
	if (rc < 0) {
		log_err(LOG_SYS_NET, "%s listen %s: %s",
			env_transport_name(transport), addr, uv_strerror(rc));
		uv_close((uv_handle_t *)&st->listener,
			 edge_stream_on_listener_close);
		return rc;
	}
	log_notice(LOG_SYS_MAIN, "sipmesh-edge %d: SIP %s on %s", me->id,
		   env_transport_name(transport),
		   env_sa_str(&st->tp.local, name, sizeof(name)));
	*out = &st->tp;
	return 0;
fail:
	close(fd);
	if (st) {
		SSL_CTX_free(st->srv_ctx);
		SSL_CTX_free(st->cli_ctx);
		free(st->rbuf);
		free(st->pbuf);
		free(st);
	}
	return rc;
}
