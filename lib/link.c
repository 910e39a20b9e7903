/*
 * link.c - nanomsg links between edges and cores, see link.h.
 *
 * One NN_PULL socket bound at our own endpoint receives from every
 * peer; one NN_PUSH socket per peer sends, so a message can be aimed at
 * one process.  nanomsg does its I/O on its own worker thread and
 * signals a readable message through NN_RCVFD, an fd that stays
 * readable while messages are queued; uv_poll watches it on the
 * process's loop.  Each readable event drains at most LINK_BATCH
 * messages (zero-copy NN_MSG buffers, freed after the callback), so a
 * flood from one peer costs the loop at most one batch per iteration.
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
#define LINK_BATCH     256
/* Room for a burst of large SIP messages before senders see -EAGAIN. */
#define LINK_BUF_BYTES (4 * 1024 * 1024)
/* Envelope header + the largest max_msg cfg accepts, with margin. */
#define LINK_MAX_MSG   (2 * 1024 * 1024)

struct link {
	uv_poll_t poll;
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
link_on_readable(uv_poll_t *h, int status, int events)
{
	struct link *l = h->data;

	(void)events;
	if (status < 0) {
		log_warn(LOG_SYS_NET, "link: poll error: %s", uv_strerror(status));
		return;
	}
	for (int i = 0; i < LINK_BATCH; i++) {
		void *msg = NULL;
		int n = nn_recv(l->pull, &msg, NN_MSG, NN_DONTWAIT);

		if (n < 0) {
			if (nn_errno() != EAGAIN && nn_errno() != EINTR)
				log_warn(LOG_SYS_NET, "link: recv: %s",
					 nn_strerror(nn_errno()));
			return;
		}
		l->cb(l->arg, msg, (size_t)n);
		nn_freemsg(msg);
	}
}

static void
link_on_close(uv_handle_t *h)
{
	free(h->data);
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
	size_t sz = sizeof(int);
	int fd, rc, maxsz = LINK_MAX_MSG;

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
	if (nn_getsockopt(l->pull, NN_SOL_SOCKET, NN_RCVFD, &fd, &sz) < 0) {
		rc = link_errno();
		goto fail;
	}
	rc = uv_poll_init(loop, &l->poll, fd);
	if (rc < 0)
		goto fail;
	l->poll.data = l;
	rc = uv_poll_start(&l->poll, UV_READABLE, link_on_readable);
	if (rc < 0) {
		/* The handle is live now: let its close callback free l. */
		nn_close(l->pull);
		uv_close((uv_handle_t *)&l->poll, link_on_close);
		return rc;
	}
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
	/* Stop watching the fd before nanomsg closes it. */
	uv_poll_stop(&l->poll);
	for (int i = 0; i < LINK_MAX_PEERS; i++)
		if (l->push[i] >= 0)
			nn_close(l->push[i]);
	nn_close(l->pull);
	uv_close((uv_handle_t *)&l->poll, link_on_close);
}
