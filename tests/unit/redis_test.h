/*
 * redis_test.h - a real redis-server for unit tests: started on a free
 * loopback port per test (no persistence), waited for with a deadline,
 * stopped by PID; and a client for the test's own checks.  Include
 * after <cmocka.h>.
 */
#ifndef SM_TEST_REDIS_TEST_H
#define SM_TEST_REDIS_TEST_H

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_MS 5000

struct srv {
	pid_t pid;
	int port;
	char password[64];	/* requirepass, "" for none */
};

static inline int
free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static inline redisContext *
srv_client(int port)
{
	struct timeval tv = { 1, 0 };

	return redisConnectWithTimeout("127.0.0.1", port, tv);
}

/* A client that authenticates with password first (NULL: none); NULL
 * when Redis refused it. */
static inline redisContext *
srv_client_auth(int port, const char *password)
{
	redisContext *c = srv_client(port);
	redisReply *r;

	if (!c || c->err || !password || !password[0])
		return c;
	r = redisCommand(c, "AUTH %s", password);
	if (!r || r->type == REDIS_REPLY_ERROR) {
		if (r)
			freeReplyObject(r);
		redisFree(c);
		return NULL;
	}
	freeReplyObject(r);
	return c;
}

/*
 * Starts redis-server on port (0: a free one) and waits for PONG.  The
 * binary is $SIPMESH_REDIS_SERVER, else "redis-server" on PATH; when it
 * cannot be run the test fails at once and says so (a skipped Redis
 * test would hide a broken install).
 */
static inline void
srv_start_pw(struct srv *s, int port, const char *password)
{
	struct timespec tick = { 0, 20 * 1000 * 1000 };
	const char *bin = getenv("SIPMESH_REDIS_SERVER");
	char p[16];
	int status;

	if (bin == NULL || bin[0] == '\0')
		bin = "redis-server";
	s->port = port ? port : free_port();
	snprintf(s->password, sizeof(s->password), "%s",
		 password ? password : "");
	snprintf(p, sizeof(p), "%d", s->port);
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		if (!freopen("/dev/null", "w", stdout))
			_exit(126);
		execlp(bin, "redis-server", "--port", p, "--bind", "127.0.0.1",
		       "--save", "", "--appendonly", "no",
		       /* made a replica (test_rconn's failovers), it loads
			* the sync in memory: no dump.rdb left in the
			* directory the tests run from; as a master it
			* starts a replica's sync at once, not after 5 s */
		       "--repl-diskless-load", "swapdb",
		       "--repl-diskless-sync-delay", "0", "--loglevel",
		       "warning", "--requirepass", s->password, (char *)NULL);
		_exit(127);
	}
	for (int waited = 0; waited < DEADLINE_MS; waited += 20) {
		redisContext *c = srv_client_auth(s->port, s->password);
		redisReply *r = c && !c->err ? redisCommand(c, "PING") : NULL;
		int up = r && r->type == REDIS_REPLY_STATUS;

		if (r)
			freeReplyObject(r);
		if (c)
			redisFree(c);
		if (up)
			return;
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			s->pid = 0;
			if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
				fail_msg("cannot run %s: not on PATH? (install "
					 "redis-server or set SIPMESH_REDIS_SERVER)",
					 bin);
			fail_msg("%s exited (status 0x%x) before answering on "
				 "port %d", bin, status, s->port);
		}
		nanosleep(&tick, NULL);	/* polling for the server, bounded */
	}
	fail_msg("%s did not answer on port %d within %d ms", bin, s->port,
		 DEADLINE_MS);
}

static inline void
srv_start(struct srv *s, int port)
{
	srv_start_pw(s, port, NULL);
}

static inline void
srv_stop(struct srv *s, int sig)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, sig);
	kill(s->pid, SIGCONT);	/* a test that failed while it was stopped */
	waitpid(s->pid, NULL, 0);
	s->pid = 0;
}

/* A Redis reply's integer, for checks from the test's own client. */
static inline long long
srv_int(int port, const char *fmt, ...)
{
	redisContext *c = srv_client(port);
	redisReply *r;
	long long v;
	va_list ap;

	assert_non_null(c);
	assert_int_equal(c->err, 0);
	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	v = r->integer;
	freeReplyObject(r);
	redisFree(c);
	return v;
}

/* How many times Redis has run cmd (lower case), from INFO commandstats
 * asked on c. */
static inline long
srv_calls(redisContext *c, const char *cmd)
{
	redisReply *r = redisCommand(c, "INFO commandstats");
	char key[64];
	const char *p;
	long n = 0;

	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	snprintf(key, sizeof(key), "cmdstat_%s:calls=", cmd);
	p = strstr(r->str, key);
	if (p)
		n = strtol(p + strlen(key), NULL, 10);
	freeReplyObject(r);
	return n;
}

#endif
