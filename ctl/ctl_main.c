/*
 * ctl_main.c - sipmesh-ctl, the operator's tool (Kamailio's kamctl):
 *
 *   sipmesh-ctl -c FILE user add USER@DOMAIN     password from stdin
 *   sipmesh-ctl -c FILE user passwd USER@DOMAIN  the same, must exist
 *   sipmesh-ctl -c FILE user del USER@DOMAIN
 *   sipmesh-ctl -c FILE user list [DOMAIN]
 *   sipmesh-ctl -c FILE [-j] aor list [DOMAIN]   (ctl_aor.c)
 *   sipmesh-ctl -c FILE [-j] aor show AOR
 *   sipmesh-ctl -c FILE aor rm AOR [CONTACT]
 *   sipmesh-ctl -c FILE [-j] rtp list            (ctl_rtp.c)
 *   sipmesh-ctl -c FILE rtp drain|enable ADDR
 *   sipmesh-ctl -c FILE check                    the file, without Redis
 *   sipmesh-ctl -c FILE [-j] ps                  this host's processes
 *   sipmesh-ctl -c FILE stats KIND ID            (ctl_proc.c)
 *   sipmesh-ctl -c FILE log KIND ID|all SPEC
 *   sipmesh-ctl -c FILE drain edge ID
 *
 * Talks to the Redis of the configuration's [redis] section with a
 * blocking connection (it is a command, not a daemon), with its AUTH.
 * Every change is published on "<prefix>:acct" so that the cores drop
 * their cached copy of the account at once.  Passwords are
 * read from standard input, never from the command line where `ps`
 * would show them: on a terminal it asks twice without echo, otherwise
 * it reads one line.  Only HA1 values reach Redis (auth/auth.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "auth/auth.h"
#include "ctl/ctl.h"
#include "lib/cfg.h"
#include "lib/log.h"
#include "lib/rconn.h"
#include "rtpctl/rtpc_int.h"

#define CTL_PASS_MAX 256

const char ctl_usage[] =
	"usage: sipmesh-ctl -c FILE user add|passwd USER@DOMAIN   (password on stdin)\n"
	"       sipmesh-ctl -c FILE user del USER@DOMAIN\n"
	"       sipmesh-ctl -c FILE user list [DOMAIN]\n"
	"       sipmesh-ctl -c FILE [-j] aor list [DOMAIN]  registered AORs\n"
	"       sipmesh-ctl -c FILE [-j] aor show AOR      its bindings\n"
	"       sipmesh-ctl -c FILE aor rm AOR [CONTACT]   remove one, or all\n"
	"       sipmesh-ctl -c FILE [-j] rtp list          the rtpengine pool per rtpctl\n"
	"       sipmesh-ctl -c FILE rtp drain|enable ADDR  out of rotation, or back\n"
	"       sipmesh-ctl -c FILE check                  check the file\n"
	"       sipmesh-ctl -c FILE [-j] ps                this host's processes\n"
	"       sipmesh-ctl -c FILE stats edge|core|rtpctl ID  its counters\n"
	"       sipmesh-ctl -c FILE log edge|core|rtpctl ID SPEC  log levels now,\n"
	"       sipmesh-ctl -c FILE log all SPEC           e.g. txn:debug,loc:info\n"
	"       sipmesh-ctl -c FILE drain edge ID          move its clients away\n"
	"  -j: JSON output\n";

void
ctl_json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/* Reads one line of at most CTL_PASS_MAX - 1 bytes, without echo on a
 * terminal.  Returns 0, or -EINVAL (empty, too long, or end of input). */
static int
ctl_read_line(const char *prompt, char *out)
{
	struct termios old, quiet;
	int tty = isatty(STDIN_FILENO);
	size_t n;
	char *ok;

	if (tty) {
		fputs(prompt, stderr);
		tcgetattr(STDIN_FILENO, &old);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	ok = fgets(out, CTL_PASS_MAX, stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (!ok)
		return -EINVAL;
	n = strlen(out);
	if (n == 0 || out[n - 1] != '\n') {
		if (n == CTL_PASS_MAX - 1)
			return -EINVAL;	/* longer than we take */
	} else {
		out[--n] = '\0';
	}
	if (n && out[n - 1] == '\r')
		out[--n] = '\0';
	return n ? 0 : -EINVAL;
}

static int
ctl_read_password(char *out)
{
	char again[CTL_PASS_MAX];

	if (ctl_read_line("password: ", out) < 0) {
		fprintf(stderr, "sipmesh-ctl: no password on standard input\n");
		return -EINVAL;
	}
	if (isatty(STDIN_FILENO) &&
	    (ctl_read_line("again: ", again) < 0 || strcmp(again, out))) {
		fprintf(stderr, "sipmesh-ctl: the passwords differ\n");
		return -EINVAL;
	}
	return 0;
}

/* Splits "user@domain" into user and realm (copies). */
static int
ctl_split_aor(const char *aor, char *user, char *realm)
{
	const char *at = strrchr(aor, '@');

	if (!at || at == aor || (size_t)(at - aor) > AUTH_USER_MAX ||
	    strlen(at + 1) > AUTH_REALM_MAX)
		goto bad;
	memcpy(user, aor, (size_t)(at - aor));
	user[at - aor] = '\0';
	strcpy(realm, at + 1);
	for (char *p = realm; *p; p++)	/* domains compare case-insensitively */
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (auth_user_valid(user) && auth_realm_valid(realm))
		return 0;
bad:
	fprintf(stderr, "sipmesh-ctl: '%s' is not USER@DOMAIN (user: letters, "
		"digits and -_.!~'()&=+$,;?/; domain: a host name)\n", aor);
	return -EINVAL;
}

static void
ctl_print(void *arg, const char *realm, const char *user)
{
	(void)arg;
	printf("%s@%s\n", user, realm);
}

static redisContext *
ctl_connect(const struct cfg *c)
{
	struct rconn_config rc;
	char host[CFG_ADDR_LEN], err[256];
	redisContext *r;
	int e = rconn_config_cfg(&rc, host, sizeof(host), c, "sipmesh-ctl",
				 LOG_SYS_MAIN);

	if (e == -ENOENT) {
		fprintf(stderr, "sipmesh-ctl: %s has no [redis] address or "
			"sentinels: accounts live in Redis\n", c->path);
		return NULL;
	}
	if (e < 0) {
		fprintf(stderr, "sipmesh-ctl: bad [redis] address %s\n", c->redis);
		return NULL;
	}
	/* a person waits on it: not less than 2 s, whatever the cores use */
	if (rc.timeout_ms < 2000)
		rc.timeout_ms = 2000;
	r = rconn_connect_sync(&rc, err, sizeof(err));
	if (!r)
		fprintf(stderr, "sipmesh-ctl: Redis %s: %s\n", c->redis[0] ?
			c->redis : c->redis_master, err);
	return r;
}

static int
ctl_user(const struct cfg *c, redisContext *r, int argc, char **argv)
{
	const char *verb = argv[0];
	char user[AUTH_USER_MAX + 1], realm[AUTH_REALM_MAX + 1];
	char pass[CTL_PASS_MAX];
	struct auth_account a;
	int rc;

	if (!strcmp(verb, "list") && argc <= 2) {
		rc = auth_account_list(r, c->redis_prefix,
				       argc == 2 ? argv[1] : NULL, ctl_print, NULL);
		if (rc == -EINVAL)
			fprintf(stderr, "sipmesh-ctl: '%s' is not a domain\n", argv[1]);
		goto done;
	}
	if (argc != 2 || (strcmp(verb, "add") && strcmp(verb, "passwd") &&
			  strcmp(verb, "del"))) {
		fputs(ctl_usage, stderr);
		return 2;
	}
	if (ctl_split_aor(argv[1], user, realm) < 0)
		return 1;
	if (!strcmp(verb, "del")) {
		rc = auth_account_del(r, c->redis_prefix, realm, user);
		goto changed;
	}
	if (!strcmp(verb, "add") && c->n_domains &&
	    !cfg_domain_is_local(c, realm, strlen(realm))) {
		fprintf(stderr, "sipmesh-ctl: %s is not one of [registrar] "
			"domains in %s\n", realm, c->path);
		return 1;
	}
	if (!strcmp(verb, "passwd")) {
		rc = auth_account_get(r, c->redis_prefix, realm, user, &a);
		if (rc < 0)
			goto done;
	}
	if (ctl_read_password(pass) < 0)
		return 1;
	rc = auth_account_set(r, c->redis_prefix, realm, user, pass);
	explicit_bzero(pass, sizeof(pass));
changed:
	/* The cores cache accounts (auth_store): tell them, or they would
	 * accept the old password until their cache entry ages out. */
	if (rc == 0 && auth_account_publish(r, c->redis_prefix, realm,
					    user) < 0)
		fprintf(stderr, "sipmesh-ctl: warning: done, but the cores "
			"were not told (Redis %s: %s); they may accept the old "
			"password for a while\n", c->redis,
			r->err ? r->errstr : "PUBLISH refused");
done:
	if (rc == -ENOENT)
		fprintf(stderr, "sipmesh-ctl: no account %s\n", argv[1]);
	else if (rc == -EIO)
		fprintf(stderr, "sipmesh-ctl: Redis %s: %s\n", c->redis,
			r->err ? r->errstr : "command refused");
	return rc < 0 ? 1 : 0;
}

/*
 * Loads the file as every process does and checks what the processes
 * would refuse at start: the Redis address or sentinels, the rtpengine
 * pool.  Nothing is contacted.
 */
static int
ctl_check(const struct cfg *c)
{
	struct rconn_config rc;
	struct rtpc_pool p;
	char host[CFG_ADDR_LEN], err[256];
	int e;

	e = rconn_config_cfg(&rc, host, sizeof(host), c, "sipmesh-ctl",
			     LOG_SYS_MAIN);
	if (e == -EINVAL) {
		fprintf(stderr, "sipmesh-ctl: %s: [redis] address or sentinels "
			"malformed\n", c->path);
		return 1;
	}
	if (rtpc_pool_parse(&p, c->rtpctl_instances, 1, err, sizeof(err)) < 0) {
		fprintf(stderr, "sipmesh-ctl: %s: [rtpctl] instances: %s\n",
			c->path, err);
		return 1;
	}
	printf("%s: OK (%d edges, %d cores, %d rtpengines, Redis %s)\n",
	       c->path, c->n_edges, c->n_cores, p.n, e == -ENOENT ? "none" :
	       c->redis[0] ? c->redis : c->redis_master);
	return 0;
}

int
main(int argc, char **argv)
{
	static struct cfg cfg;	/* large: keep it off the stack */
	const char *path = NULL;
	char err[512];
	redisContext *r;
	int opt, rc, json = 0, local;

	while ((opt = getopt(argc, argv, "c:jh")) != -1) {
		if (opt == 'c') {
			path = optarg;
			continue;
		}
		if (opt == 'j') {
			json = 1;
			continue;
		}
		fputs(ctl_usage, opt == 'h' ? stdout : stderr);
		return opt == 'h' ? 0 : 2;
	}
	argc -= optind;
	argv += optind;
	if (!path || argc < 1) {
		fputs(ctl_usage, stderr);
		return 2;
	}
	local = !strcmp(argv[0], "ps") || !strcmp(argv[0], "stats") ||
		!strcmp(argv[0], "log") || !strcmp(argv[0], "drain");
	if (!local && ((strcmp(argv[0], "user") && strcmp(argv[0], "rtp") &&
			strcmp(argv[0], "aor") && strcmp(argv[0], "check")) ||
		       (strcmp(argv[0], "check") ? argc < 2 : argc != 1))) {
		fputs(ctl_usage, stderr);
		return 2;
	}
	if (cfg_load(&cfg, path, err, sizeof(err)) != 0) {
		fprintf(stderr, "sipmesh-ctl: %s\n", err);
		return 1;
	}
	if (!strcmp(argv[0], "check"))
		return ctl_check(&cfg);
	if (local)
		return ctl_proc(&cfg, argc, argv, json);
	r = ctl_connect(&cfg);
	if (!r)
		return 1;
	if (!strcmp(argv[0], "rtp"))
		rc = ctl_rtp(&cfg, r, argc - 1, argv + 1, json);
	else if (!strcmp(argv[0], "aor"))
		rc = ctl_aor(&cfg, r, argc - 1, argv + 1, json);
	else
		rc = ctl_user(&cfg, r, argc - 1, argv + 1);
	redisFree(r);
	return rc;
}
