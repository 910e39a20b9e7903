/*
 * dns_test.h - a real dnsmasq for unit tests: the records a test
 * gives, served on a free 127.0.0.1 port (UDP and TCP) with every query
 * logged, waited for with a deadline, stopped by PID.  Names under
 * .test that have no record get NXDOMAIN (local=/test/).  Include
 * after <cmocka.h>.
 */
#ifndef SM_TEST_DNS_TEST_H
#define SM_TEST_DNS_TEST_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DNSM_DEADLINE_MS 5000

struct dnsm {
	pid_t pid;
	int port;
	char dir[64];		/* holds dnsmasq.conf and log */
	char log[96];
};

/* A port free for both UDP and TCP on 127.0.0.1 (dnsmasq takes both). */
static inline int
dnsm_free_port(void)
{
	for (int tries = 0; tries < 50; tries++) {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		socklen_t len = sizeof(sa);
		int u = socket(AF_INET, SOCK_DGRAM, 0);
		int t = socket(AF_INET, SOCK_STREAM, 0), ok;

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		assert_true(u >= 0 && t >= 0);
		assert_int_equal(bind(u, (struct sockaddr *)&sa, len), 0);
		assert_int_equal(getsockname(u, (struct sockaddr *)&sa, &len), 0);
		ok = bind(t, (struct sockaddr *)&sa, len) == 0;
		close(u);
		close(t);
		if (ok)
			return ntohs(sa.sin_port);
	}
	fail_msg("no port free for UDP and TCP");
	return 0;
}

/* How many queries of type ("NAPTR", "SRV", "A", "AAAA") for name the
 * log shows so far. */
static inline int
dnsm_queries(const struct dnsm *m, const char *type, const char *name)
{
	char want[512], line[1024];
	FILE *f = fopen(m->log, "r");
	int n = 0;

	assert_non_null(f);
	snprintf(want, sizeof(want), "query[%s] %s from", type, name);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, want) != NULL;
	fclose(f);
	return n;
}

/*
 * Starts dnsmasq with the configuration lines in conf (records:
 * "srv-host=...", "naptr-record=...", "host-record=...") and waits
 * until it logs that it is up.  Records carry a TTL of 60 s.  The
 * binary is $SIPMESH_DNSMASQ, else dnsmasq on PATH or in /usr/sbin.
 */
static inline void
dnsm_start(struct dnsm *m, const char *const *conf)
{
	struct timespec tick = { 0, 20 * 1000 * 1000 };
	const char *bin = getenv("SIPMESH_DNSMASQ");
	char path[128], arg[160], line[512];
	FILE *f;
	int status, fd;

	if (bin == NULL || bin[0] == '\0')
		bin = access("/usr/sbin/dnsmasq", X_OK) == 0 ?
		      "/usr/sbin/dnsmasq" : "dnsmasq";
	snprintf(m->dir, sizeof(m->dir), "/tmp/sm-dnsm-XXXXXX");
	assert_non_null(mkdtemp(m->dir));
	snprintf(m->log, sizeof(m->log), "%s/log", m->dir);
	snprintf(path, sizeof(path), "%s/dnsmasq.conf", m->dir);
	m->port = dnsm_free_port();
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "port=%d\nlisten-address=127.0.0.1\nbind-interfaces\n"
		"no-resolv\nno-hosts\nlocal=/test/\nlocal-ttl=60\n"
		"log-queries\nlog-facility=-\n", m->port);
	for (int i = 0; conf && conf[i]; i++)
		fprintf(f, "%s\n", conf[i]);
	fclose(f);
	snprintf(arg, sizeof(arg), "--conf-file=%s", path);
	m->pid = fork();
	assert_true(m->pid >= 0);
	if (m->pid == 0) {
		fd = open(m->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || dup2(fd, 2) < 0)
			_exit(126);
		execl(bin, "dnsmasq", "--keep-in-foreground", "--pid-file=",
		      "--user=root", arg, (char *)NULL);
		_exit(127);
	}
	for (int waited = 0; waited < DNSM_DEADLINE_MS; waited += 20) {
		int up = 0;

		if ((f = fopen(m->log, "r")) != NULL) {
			while (fgets(line, sizeof(line), f))
				up |= strstr(line, "started") != NULL;
			fclose(f);
		}
		if (up)
			return;
		if (waitpid(m->pid, &status, WNOHANG) == m->pid) {
			m->pid = 0;
			fail_msg("%s exited (status 0x%x) before serving port "
				 "%d; see %s", bin, status, m->port, m->log);
		}
		nanosleep(&tick, NULL);	/* polling for the server, bounded */
	}
	fail_msg("%s did not start within %d ms", bin, DNSM_DEADLINE_MS);
}

/* "127.0.0.1:port", for dns_config.servers. */
static inline const char *
dnsm_servers(const struct dnsm *m, char *buf, size_t len)
{
	snprintf(buf, len, "127.0.0.1:%d", m->port);
	return buf;
}

static inline void
dnsm_stop(struct dnsm *m)
{
	char path[128];

	if (m->pid > 0) {
		kill(m->pid, SIGTERM);
		kill(m->pid, SIGCONT);	/* a test that failed while it was stopped */
		waitpid(m->pid, NULL, 0);
		m->pid = 0;
	}
	if (m->dir[0]) {
		snprintf(path, sizeof(path), "%s/dnsmasq.conf", m->dir);
		unlink(path);
		unlink(m->log);
		rmdir(m->dir);
		m->dir[0] = '\0';
	}
}

#endif
