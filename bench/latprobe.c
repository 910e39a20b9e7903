/*
 * latprobe.c - response times in microseconds, beside sipp's load.
 *
 * sipp times responses on its own clock tick: on this machine its
 * response-time traces come in steps of 4 ms (0, 4, 8 ...), so "p99
 * under 1 ms" cannot be read from them.  This probe sends a low,
 * steady rate of its own requests to the server under test while sipp
 * loads it, and times each one with CLOCK_MONOTONIC from the send(2)
 * to the recv(2) of its final response:
 *
 *   register  REGISTER of one of 50 users of its own (contact: itself)
 *             -> 200;
 *   message   it registers one user (itself), then sends MESSAGEs to
 *             that user through the server, answers each forwarded
 *             MESSAGE 200 at once, and times MESSAGE -> relayed 200;
 *   call      the same user called: INVITE with an SDP offer, answered
 *             200 with an SDP answer at once (no 180), timed INVITE ->
 *             relayed 200; then ACK and BYE along the Record-Route set,
 *             so the server's dialogs and media sessions end.
 *
 * One UDP socket, one thread, poll(2) to the next send time; a request
 * not answered within 2 s is lost.  Output, one line of JSON on stdout:
 * sent, ok, failed (a final response other than 200), lost, the
 * percentiles in microseconds and (call) the BYEs answered 200.  The probe's own scheduling delays count,
 * as they would for any client on a loaded machine.
 *
 *   latprobe -s 127.0.0.1:5060 -m register|message|call -r 100 -d 10
 *            [-D domain] [-u user-prefix] [-o trace: "sent_us rtt_us"
 *            per 200, sent counted from the first request]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LP_SLOTS	8192		/* requests in flight, by sequence */
#define LP_USERS	50
#define LP_LOST_NS	2000000000LL	/* no final response in 2 s: lost */
#define LP_ROUTES	8		/* Record-Route entries followed */

static const char lp_sdp[] =
	"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
	"t=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

static int lp_fd, lp_port;
static struct sockaddr_in lp_srv;
static const char *lp_user, *lp_domain;

struct lp_slot {
	int64_t sent_ns;		/* 0: free */
	uint32_t seq;
};

static struct lp_slot slots[LP_SLOTS];
static int64_t *rtts;			/* ns, one per 200 */
static size_t nrtt, rtt_cap;
static unsigned long sent, ok, failed, lost, byes;	/* byes: BYE 200s */
static FILE *lp_trace;			/* -o: "sent_us rtt_us" per 200 */
static int64_t lp_t0;

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* The value of "name" (up to ; , or end of line) in the first line of
 * header hdr ("\r\nVia:"), or NULL. */
static const char *
lp_param(const char *msg, const char *hdr, const char *name, size_t *len)
{
	const char *h = strstr(msg, hdr), *eol, *p;

	if (!h)
		return NULL;
	eol = strstr(h + 2, "\r\n");
	p = strstr(h, name);
	if (!p || (eol && p > eol))
		return NULL;
	p += strlen(name);
	*len = strcspn(p, ";,\r\n ");
	return p;
}

/* A copy of header hdr's whole line(s) into out, or nothing. */
static size_t
lp_copy_lines(const char *msg, const char *hdr, char *out, size_t cap)
{
	size_t o = 0, hl = strlen(hdr);

	for (const char *h = strstr(msg, hdr); h; h = strstr(h + hl, hdr)) {
		const char *eol = strstr(h + 2, "\r\n");
		size_t n = eol ? (size_t)(eol - (h + 2)) : 0;

		if (!eol || o + n + 2 >= cap)
			break;
		memcpy(out + o, h + 2, n);
		memcpy(out + o + n, "\r\n", 2);
		o += n + 2;
	}
	return o;
}

/*
 * 200 OK to a request the server forwarded to us: a MESSAGE, a BYE, or
 * an INVITE (answered with an SDP, its Record-Route set echoed).
 */
static void
lp_answer(const char *req, const struct sockaddr_in *from)
{
	int invite = strncmp(req, "INVITE ", 7) == 0;
	char out[8192], *p = out;
	size_t n;

	p += sprintf(p, "SIP/2.0 200 OK\r\n");
	p += lp_copy_lines(req, "\r\nVia:", p, 3000);
	if (invite)
		p += lp_copy_lines(req, "\r\nRecord-Route:", p, 2000);
	p += lp_copy_lines(req, "\r\nFrom:", p, 512);
	n = lp_copy_lines(req, "\r\nTo:", p, 400);
	if (n > 2 && !memmem(p, n, "tag=", 4)) {
		p += n - 2;
		p += sprintf(p, ";tag=lp\r\n");
	} else {
		p += n;
	}
	p += lp_copy_lines(req, "\r\nCall-ID:", p, 300);
	p += lp_copy_lines(req, "\r\nCSeq:", p, 100);
	if (invite)
		p += sprintf(p, "Contact: <sip:%s@127.0.0.1:%d>\r\n"
			     "Content-Type: application/sdp\r\n"
			     "Content-Length: %zu\r\n\r\n%s", lp_user,
			     lp_port, strlen(lp_sdp), lp_sdp);
	else
		p += sprintf(p, "Content-Length: 0\r\n\r\n");
	sendto(lp_fd, out, (size_t)(p - out), 0,
	       (const struct sockaddr *)from, sizeof(*from));
}

/*
 * ACK and BYE for the 200 of INVITE seq: to the 200's Contact, along
 * its Record-Route set reversed (loose routing: sent to the server).
 */
static void
lp_end_call(const char *res, uint32_t seq, int answered)
{
	char routes[LP_ROUTES][512], hdrs[4096], to[512], out[8192];
	const char *c = strstr(res, "\r\nContact:"), *lt, *gt;
	size_t nr = 0, h = 0, tl;
	char target[512];

	if (!answered) {
		/* a failed INVITE: its ACK is hop-by-hop, on its branch */
		snprintf(target, sizeof(target), "sip:%s@%s", lp_user,
			 lp_domain);
		c = NULL;
	} else if (!c || !(lt = strchr(c, '<')) || !(gt = strchr(lt, '>')) ||
		   (size_t)(gt - lt) >= sizeof(target)) {
		return;
	} else {
		memcpy(target, lt + 1, (size_t)(gt - lt - 1));
		target[gt - lt - 1] = '\0';
	}
	for (const char *r = answered ? strstr(res, "\r\nRecord-Route:") :
				       NULL;
	     r; r = strstr(r + 2, "\r\nRecord-Route:")) {
		const char *v = r + 16, *eol = strstr(v, "\r\n");

		/* one header may hold several, comma-separated <...> */
		while (eol && (lt = memchr(v, '<', (size_t)(eol - v))) &&
		       (gt = memchr(lt, '>', (size_t)(eol - lt))) &&
		       nr < LP_ROUTES && (size_t)(gt - lt) < 500) {
			snprintf(routes[nr++], sizeof(routes[0]), "%.*s",
				 (int)(gt - lt + 1), lt);
			v = gt + 1;
		}
	}
	while (nr > 0)
		h += (size_t)snprintf(hdrs + h, sizeof(hdrs) - h,
				      "Route: %s\r\n", routes[--nr]);
	tl = lp_copy_lines(res, "\r\nTo:", to, sizeof(to));
	to[tl] = '\0';
	for (int bye = 0; bye < 1 + answered; bye++) {
		int n = snprintf(out, sizeof(out),
			"%s %s SIP/2.0\r\n"
			"Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-lp%s-%u;rport\r\n"
			"%sMax-Forwards: 70\r\n"
			"From: <sip:%s-from@%s>;tag=lp%u\r\n%s"
			"Call-ID: lp-call-%u-%s@probe\r\n"
			"CSeq: %d %s\r\n"
			"Content-Length: 0\r\n\r\n",
			bye ? "BYE" : "ACK", target, lp_port,
			!answered ? "" : bye ? "b" : "a",
			seq, hdrs, lp_user, lp_domain, seq, to, seq, lp_user, 1 + bye,
			bye ? "BYE" : "ACK");

		if (n > 0 && (size_t)n < sizeof(out))
			sendto(lp_fd, out, (size_t)n, 0,
			       (const struct sockaddr *)&lp_srv, sizeof(lp_srv));
	}
}

static void
lp_response(const char *msg, int64_t t)
{
	size_t len;
	const char *b = lp_param(msg, "\r\nVia:", "branch=z9hG4bK-lp-", &len);
	int code = atoi(msg + 8);
	uint32_t seq;
	struct lp_slot *s;

	if (!b && code == 200 &&
	    lp_param(msg, "\r\nVia:", "branch=z9hG4bK-lpb-", &len))
		byes++;
	if (!b || code < 200)
		return;
	seq = (uint32_t)strtoul(b, NULL, 10);
	s = &slots[seq % LP_SLOTS];
	if (!s->sent_ns || s->seq != seq)
		return;			/* lost already, or a retransmission */
	if (lp_param(msg, "\r\nCSeq:", "INVITE", &len))
		lp_end_call(msg, seq, code == 200);
	if (code == 200) {
		if (nrtt == rtt_cap) {
			rtt_cap = rtt_cap ? rtt_cap * 2 : 4096;
			rtts = realloc(rtts, rtt_cap * sizeof(*rtts));
			if (!rtts)
				exit(1);
		}
		rtts[nrtt++] = t - s->sent_ns;
		if (lp_trace)
			fprintf(lp_trace, "%lld %lld\n",
				(long long)(s->sent_ns - lp_t0) / 1000,
				(long long)(t - s->sent_ns) / 1000);
		ok++;
	} else {
		failed++;
	}
	s->sent_ns = 0;
}

/* Request seq of mode (setup: the REGISTER of the probe's own user,
 * the target of message and call); 0 or -1. */
static int
lp_send(const char *mode, uint32_t seq, int setup)
{
	const char *user = lp_user, *domain = lp_domain;
	char buf[2048], u[128];
	int n, port = lp_port;

	if (strcmp(mode, "register") == 0 || setup) {
		if (setup)
			snprintf(u, sizeof(u), "%s", user);
		else
			snprintf(u, sizeof(u), "%s-%u", user, seq % LP_USERS);
		n = snprintf(buf, sizeof(buf),
			"REGISTER sip:%s SIP/2.0\r\n"
			"Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-lp-%u;rport\r\n"
			"Max-Forwards: 70\r\n"
			"From: <sip:%s@%s>;tag=lp%u\r\n"
			"To: <sip:%s@%s>\r\n"
			"Call-ID: lp-reg-%s@probe\r\n"
			"CSeq: %u REGISTER\r\n"
			"Contact: <sip:%s@127.0.0.1:%d>\r\n"
			"Expires: 3600\r\n"
			"Content-Length: 0\r\n\r\n",
			domain, port, seq, u, domain, seq, u, domain, u,
			seq + 1, u, port);
	} else if (strcmp(mode, "message") == 0) {
		n = snprintf(buf, sizeof(buf),
			"MESSAGE sip:%s@%s SIP/2.0\r\n"
			"Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-lp-%u;rport\r\n"
			"Max-Forwards: 70\r\n"
			"From: <sip:%s-from@%s>;tag=lp%u\r\n"
			"To: <sip:%s@%s>\r\n"
			"Call-ID: lp-msg-%u-%s@probe\r\n"
			"CSeq: 1 MESSAGE\r\n"
			"Content-Type: text/plain\r\n"
			"Content-Length: 5\r\n\r\nprobe",
			user, domain, port, seq, user, domain, seq, user,
			domain, seq, user);
	} else {
		n = snprintf(buf, sizeof(buf),
			"INVITE sip:%s@%s SIP/2.0\r\n"
			"Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-lp-%u;rport\r\n"
			"Max-Forwards: 70\r\n"
			"From: <sip:%s-from@%s>;tag=lp%u\r\n"
			"To: <sip:%s@%s>\r\n"
			"Call-ID: lp-call-%u-%s@probe\r\n"
			"CSeq: 1 INVITE\r\n"
			"Contact: <sip:%s-from@127.0.0.1:%d>\r\n"
			"Content-Type: application/sdp\r\n"
			"Content-Length: %zu\r\n\r\n%s",
			user, domain, port, seq, user, domain, seq, user,
			domain, seq, user, user, port, strlen(lp_sdp), lp_sdp);
	}
	if (n <= 0 || (size_t)n >= sizeof(buf))
		return -1;
	slots[seq % LP_SLOTS] = (struct lp_slot){ now_ns(), seq };
	if (sendto(lp_fd, buf, (size_t)n, 0, (const struct sockaddr *)&lp_srv,
		   sizeof(lp_srv)) != n)
		return -1;
	sent++;
	return 0;
}

/* Reads what is there; stops at deadline_ns (0: do not wait). */
static void
lp_read(int64_t deadline_ns)
{
	int fd = lp_fd;
	char buf[8192];
	struct sockaddr_in from;
	socklen_t fl;
	ssize_t n;
	int64_t t = now_ns();

	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		int ms = deadline_ns > t ?
			 (int)((deadline_ns - t + 999999) / 1000000) : 0;

		if (poll(&p, 1, ms) <= 0) {
			if (now_ns() >= deadline_ns)
				return;
			t = now_ns();
			continue;
		}
		fl = sizeof(from);
		n = recvfrom(fd, buf, sizeof(buf) - 1, 0,
			     (struct sockaddr *)&from, &fl);
		t = now_ns();
		if (n <= 0)
			continue;
		buf[n] = '\0';
		if (strncmp(buf, "SIP/2.0 ", 8) == 0)
			lp_response(buf, t);
		else if (strncmp(buf, "ACK ", 4) != 0)
			lp_answer(buf, &from);
		if (t >= deadline_ns)
			return;
	}
}

static void
lp_expire(int64_t t)
{
	for (int i = 0; i < LP_SLOTS; i++) {
		if (slots[i].sent_ns && t - slots[i].sent_ns > LP_LOST_NS) {
			slots[i].sent_ns = 0;
			lost++;
		}
	}
}

static double
pct(double q)
{
	size_t k;

	if (!nrtt)
		return -1;
	k = (size_t)(q / 100.0 * (double)nrtt + 0.5);
	if (k > 0)
		k--;
	if (k >= nrtt)
		k = nrtt - 1;
	return (double)rtts[k] / 1000.0;
}

int
main(int argc, char **argv)
{
	const char *server = NULL, *mode = "register";
	char user[64], host[64];
	double rate = 100, dur = 10;
	struct sockaddr_in me = { .sin_family = AF_INET };
	socklen_t ml = sizeof(me);
	int opt, port;
	uint32_t seq = 0;
	int64_t t0, next, end, step;

	snprintf(user, sizeof(user), "lp%d", (int)getpid());
	lp_domain = "bench.test";
	while ((opt = getopt(argc, argv, "s:m:r:d:D:u:o:")) != -1) {
		switch (opt) {
		case 's': server = optarg; break;
		case 'm': mode = optarg; break;
		case 'r': rate = atof(optarg); break;
		case 'd': dur = atof(optarg); break;
		case 'D': lp_domain = optarg; break;
		case 'u': snprintf(user, sizeof(user), "%s", optarg); break;
		case 'o':
			lp_trace = fopen(optarg, "w");
			if (!lp_trace) {
				perror(optarg);
				return 1;
			}
			break;
		default: goto usage;
		}
	}
	lp_user = user;
	lp_srv.sin_family = AF_INET;
	if (!server || sscanf(server, "%63[^:]:%d", host, &port) != 2 ||
	    inet_pton(AF_INET, host, &lp_srv.sin_addr) != 1 || rate <= 0 ||
	    dur <= 0 || (strcmp(mode, "register") && strcmp(mode, "message") &&
			 strcmp(mode, "call")))
		goto usage;
	lp_srv.sin_port = htons((uint16_t)port);
	me.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lp_fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (lp_fd < 0 || bind(lp_fd, (struct sockaddr *)&me, sizeof(me)) ||
	    getsockname(lp_fd, (struct sockaddr *)&me, &ml) != 0) {
		perror("latprobe: socket");
		return 1;
	}
	lp_port = ntohs(me.sin_port);
	if (strcmp(mode, "register") != 0) {
		/* the target: this probe, registered under user */
		for (int i = 0; i < 3 && !ok; i++) {
			lp_send(mode, seq++, 1);
			lp_read(now_ns() + 1000000000LL);
		}
		if (!ok) {
			fprintf(stderr, "latprobe: REGISTER of %s got no 200\n",
				user);
			return 1;
		}
		sent = ok = failed = 0;
		nrtt = 0;
	}
	step = (int64_t)(1e9 / rate);
	lp_t0 = t0 = next = now_ns();
	end = t0 + (int64_t)(dur * 1e9);
	while (next < end) {
		lp_send(mode, seq++, 0);
		next += step;
		lp_read(next);
		lp_expire(now_ns());
	}
	lp_read(now_ns() + LP_LOST_NS);
	lp_expire(now_ns() + LP_LOST_NS + 1);
	qsort(rtts, nrtt, sizeof(*rtts), cmp_i64);
	printf("{\"mode\": \"%s\", \"rate\": %.0f, \"sent\": %lu, \"ok\": %lu, "
	       "\"failed\": %lu, \"lost\": %lu, \"p50_us\": %.0f, "
	       "\"p90_us\": %.0f, \"p99_us\": %.0f, \"p999_us\": %.0f, "
	       "\"max_us\": %.0f, \"byes_ok\": %lu}\n", mode, rate, sent, ok,
	       failed, lost, pct(50), pct(90), pct(99), pct(99.9), pct(100),
	       byes);
	free(rtts);
	if (lp_trace)
		fclose(lp_trace);
	close(lp_fd);
	return 0;
usage:
	fprintf(stderr, "usage: latprobe -s ip:port [-m register|message|call] "
		"[-r rate] [-d seconds] [-D domain] [-u user] [-o trace]\n");
	return 2;
}
