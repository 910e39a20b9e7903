/*
 * ctl_proc.c - sipmesh-ctl's commands to the processes of this host,
 * through each one's control socket (lib/ops.h): ps, stats, log, drain.
 * A blocking HTTP/1.0 GET over a unix socket, with a timeout: the tool
 * waits on one process at a time.
 */
#include "ctl/ctl.h"
#include "lib/ops.h"
#include "rtpctl/rtpc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CTL_REPLY_MAX (4 << 20)	/* a core's metrics are ~25 KB */

/*
 * GET target from the control socket of kind id.  Returns the HTTP
 * status with the body in *body (malloc'ed, NUL-terminated), -ENOENT
 * when no process listens there, or another negative errno.
 */
static int
ctl_get(const struct cfg *c, const char *kind, int id, const char *target,
	char **body)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { 5, 0 };
	char req[512], *buf = NULL, *p;
	size_t len = 0, cap = 0;
	int fd, rc, status;
	ssize_t n;

	*body = NULL;
	if (ops_path(c, kind, id, sa.sun_path, sizeof(sa.sun_path)) != 0)
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		rc = errno == ENOENT || errno == ECONNREFUSED ? -ENOENT : -errno;
		goto out;
	}
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: ctl\r\n\r\n",
		     target);
	if (n < 0 || (size_t)n >= sizeof(req) || write(fd, req, (size_t)n) != n) {
		rc = -EIO;
		goto out;
	}
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? 2 * cap : 65536;
			if (cap > CTL_REPLY_MAX || (p = realloc(buf, cap)) == NULL) {
				rc = -EMSGSIZE;
				goto out;
			}
			buf = p;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			rc = errno == EAGAIN ? -ETIMEDOUT : -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	p = strstr(buf, "\r\n\r\n");
	if (p == NULL || sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
		rc = -EPROTO;
		goto out;
	}
	memmove(buf, p + 4, len - (size_t)(p + 4 - buf) + 1);
	*body = buf;
	buf = NULL;
	rc = status;
out:
	free(buf);
	close(fd);
	return rc;
}

/* "edge" "core" "rtpctl" and an id; 0, or 2 (usage said). */
static int
ctl_kind(const char *k, const char *id, int *out)
{
	char *end;
	long v = strtol(id, &end, 10);

	if ((strcmp(k, "edge") && strcmp(k, "core") && strcmp(k, "rtpctl")) ||
	    *end || end == id || v < 1 || v > 255) {
		fputs(ctl_usage, stderr);
		return 2;
	}
	*out = (int)v;
	return 0;
}

/* The processes the file names, this host's or not. */
struct ctl_proc {
	const char *kind;
	int id;
};

static int
ctl_procs(const struct cfg *c, struct ctl_proc *out, int max)
{
	char url[CFG_PATH_LEN];
	int n = 0;

	for (int i = 0; i < c->n_edges && n < max; i++)
		out[n++] = (struct ctl_proc){ "edge", c->edges[i].id };
	for (int i = 0; i < c->n_cores && n < max; i++)
		out[n++] = (struct ctl_proc){ "core", c->cores[i].id };
	/* one rtpctl per [rtpctl] ipc endpoint */
	for (int id = 1; n < max && rtpc_ipc_url(c, id, url, sizeof(url)) == 0;
	     id++)
		out[n++] = (struct ctl_proc){ "rtpctl", id };
	return n;
}

static int
ctl_ps(const struct cfg *c, int json)
{
	struct ctl_proc p[CFG_MAX_EDGES + CFG_MAX_CORES + 16];
	int n = ctl_procs(c, p, (int)(sizeof(p) / sizeof(*p))), shown = 0;
	char *body;

	if (json)
		printf("[");
	else
		printf("%-8s %4s  %s\n", "process", "id", "state");
	for (int i = 0; i < n; i++) {
		int st = ctl_get(c, p[i].kind, p[i].id, "/state", &body);

		if (json && st == 200) {
			body[strcspn(body, "\n")] = '\0';
			printf("%s%s", shown++ ? "," : "", body);
		} else if (!json) {
			printf("%-8s %4d  %s", p[i].kind, p[i].id, st == 200 ?
			       body : st == -ENOENT ? "not running on this host\n" :
			       "no answer\n");
		}
		free(body);
	}
	if (json)
		printf("]\n");
	return 0;
}

/* GET target from one process and print the body; exit code. */
static int
ctl_one(const struct cfg *c, const char *kind, int id, const char *target)
{
	char *body;
	int st = ctl_get(c, kind, id, target, &body);

	if (st == 200) {
		fputs(body, stdout);
	} else if (st == -ENOENT) {
		fprintf(stderr, "sipmesh-ctl: %s %d is not running on this host "
			"(no control socket in %s)\n", kind, id, c->run_dir);
	} else if (st > 0) {
		fprintf(stderr, "sipmesh-ctl: %s %d: %d %s", kind, id, st,
			body ? body : "\n");
	} else {
		fprintf(stderr, "sipmesh-ctl: %s %d: %s\n", kind, id,
			strerror(-st));
	}
	free(body);
	return st == 200 ? 0 : 1;
}

int
ctl_proc(const struct cfg *c, int argc, char **argv, int json)
{
	char target[300];
	int id, rc;

	if (argc == 1 && strcmp(argv[0], "ps") == 0)
		return ctl_ps(c, json);
	if (argc == 3 && strcmp(argv[0], "stats") == 0) {
		if ((rc = ctl_kind(argv[1], argv[2], &id)) != 0)
			return rc;
		return ctl_one(c, argv[1], id, "/metrics");
	}
	if (argc == 3 && strcmp(argv[0], "drain") == 0 &&
	    strcmp(argv[1], "edge") == 0) {
		if ((rc = ctl_kind(argv[1], argv[2], &id)) != 0)
			return rc;
		return ctl_one(c, "edge", id, "/drain");
	}
	if (argc == 3 && strcmp(argv[0], "log") == 0 &&
	    strcmp(argv[1], "all") == 0) {
		struct ctl_proc p[CFG_MAX_EDGES + CFG_MAX_CORES + 16];
		int n = ctl_procs(c, p, (int)(sizeof(p) / sizeof(*p))), done = 0;
		char *body;

		snprintf(target, sizeof(target), "/log?%s", argv[2]);
		for (int i = 0; i < n; i++) {
			int st = ctl_get(c, p[i].kind, p[i].id, target, &body);

			if (st == 200 || st > 0)
				printf("%s %d: %s", p[i].kind, p[i].id, body);
			done += st == 200;
			free(body);
		}
		return done ? 0 : 1;
	}
	if (argc == 4 && strcmp(argv[0], "log") == 0) {
		if ((rc = ctl_kind(argv[1], argv[2], &id)) != 0)
			return rc;
		snprintf(target, sizeof(target), "/log?%s", argv[3]);
		return ctl_one(c, argv[1], id, target);
	}
	fputs(ctl_usage, stderr);
	return 2;
}
