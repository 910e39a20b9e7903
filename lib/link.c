/*
 * link.c - nanomsg links between edges and cores, see link.h.
 *
 * One NN_PULL socket bound at our own endpoint receives from every
 * peer; one NN_PUSH socket per peer sends, so a message can be aimed at
 * one process.
 *
 * struct link_poll is the one receive loop of every nanomsg socket in
 * sipmesh (this PULL socket, rtpctl's REP and the cores' REQ).  nanomsg
 * does its I/O on its own worker thread and signals a readable message
 * through NN_RCVFD, an fd that stays readable while messages are
 * queued; uv_poll watches it on the process's loop.  Each readable
 * event drains at most LINK_BATCH messages with nn_recvmsg (zero-copy
 * NN_MSG chunks, freed after the callback unless it keeps them), so a
 * flood costs the loop at most one batch per iteration.  The poller is
 * heap memory of its own, freed in uv_close's callback, so its owner
 * may free itself from a callback.
 */
#include "lib/link.h"
#include "lib/log.h"

#include <errno.h>
#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LINK_MAX_PEERS 256
/* Room for a burst of large SIP messages before senders see -EAGAIN. */
#define LINK_BUF_BYTES (4 * 1024 * 1024)
/* Envelope header + the largest max_msg cfg accepts, with margin. */
#define LINK_MAX_MSG   (2 * 1024 * 1024)

struct link_poll {
	uv_poll_t poll;
	int sock;
	unsigned flags;
	int closing;
	link_msg_cb cb;
	void *arg;
	const char *what;
};

struct link {
	struct link_poll *rx;
	int pull;
	int push[LINK_MAX_PEERS];	/* -1: no such peer */
	link_recv_cb cb;
	void *arg;
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
 * before nn_bind, or the bind fails with a bare ENOENT.  Creates each
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

/* The PULL socket's messages, to the link's callback. */
static void
link_on_msg(void *arg, struct link_msg *m)
{
	struct link *l = arg;

	l->cb(l->arg, m->body, m->len);
}

static void
link_bufs(int s, int opt)
{
	int v = LINK_BUF_BYTES;

	/* A smaller buffer still works, only with earlier -EAGAIN. */
	if (nn_setsockopt(s, NN_SOL_SOCKET, opt, &v, sizeof(v)) < 0)
		log_info(LOG_SYS_NET, "link: buffer size %d refused: %s", v,
			 nn_strerror(nn_errno()));
}

int
link_new(struct link **out, uv_loop_t *loop, const char *self_url,
	 link_recv_cb cb, void *arg)
{
	struct link *l;
	int rc, maxsz = LINK_MAX_MSG;

	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	for (int i = 0; i < LINK_MAX_PEERS; i++)
		l->push[i] = -1;
	l->cb = cb;
	l->arg = arg;
	l->pull = nn_socket(AF_SP, NN_PULL);
	if (l->pull < 0) {
		rc = link_errno();
		goto fail;
	}
	link_bufs(l->pull, NN_RCVBUF);
	if (nn_setsockopt(l->pull, NN_SOL_SOCKET, NN_RCVMAXSIZE, &maxsz,
			  sizeof(maxsz)) < 0) {
		rc = link_errno();
		goto fail;
	}
	rc = link_ipc_dir(self_url);
	if (rc < 0)
		goto fail;
	if (nn_bind(l->pull, self_url) < 0) {
		rc = link_errno();
		goto fail;
	}
	rc = link_poll_new(&l->rx, loop, l->pull, 0, link_on_msg, l, "link");
	if (rc < 0)
		goto fail;
	*out = l;
	return 0;
fail:
	if (l->pull >= 0)
		nn_close(l->pull);
	free(l);
	return rc;
}

int
link_peer_add(struct link *l, int peer_id, const char *url)
{
	int s, rc;

	if (peer_id < 1 || peer_id >= LINK_MAX_PEERS)
		return -EINVAL;
	if (l->push[peer_id] >= 0)
		return -EEXIST;
	s = nn_socket(AF_SP, NN_PUSH);
	if (s < 0)
		return link_errno();
	link_bufs(s, NN_SNDBUF);
	if (nn_connect(s, url) < 0) {
		rc = link_errno();
		nn_close(s);
		return rc;
	}
	l->push[peer_id] = s;
	return 0;
}

int
link_send(struct link *l, int peer_id, const void *buf, size_t len)
{
	if (peer_id < 1 || peer_id >= LINK_MAX_PEERS || l->push[peer_id] < 0)
		return -ENOENT;
	if (nn_send(l->push[peer_id], buf, len, NN_DONTWAIT) < 0)
		return link_errno();
	return 0;
}

void
link_free(struct link *l)
{
	if (l == NULL)
		return;
	link_poll_free(l->rx);
	for (int i = 0; i < LINK_MAX_PEERS; i++)
		if (l->push[i] >= 0)
			nn_close(l->push[i]);
	nn_close(l->pull);
	free(l);
}
