/*
 * test_edge_udp.c - ICMP errors on the edge's UDP socket: the head of a
 * request cut out of an ICMP quote (a table of cuts and hostile
 * quotes), the error-queue message classifier on hand-made control
 * messages, and on a real loopback socket that sends to a closed port.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <time.h>
#include <linux/errqueue.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "edge/edge_int.h"

#define REQ "MESSAGE sip:bob@b.test SIP/2.0\r\n" \
	    "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-c1-7\r\n" \
	    "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKup\r\n" \
	    "From: <sip:a@a.test>;tag=1\r\nTo: <sip:bob@b.test>\r\n" \
	    "Call-ID: c1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 2\r\n\r\nhi"
#define HEAD "MESSAGE sip:bob@b.test SIP/2.0\r\n" \
	     "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-c1-7\r\n\r\n"

/* ---- the head of a quoted request ---- */

static void
test_edge_udp__quote_head_table(void **state)
{
	static const struct {
		const char *what, *in;
		size_t len;		/* 0: strlen(in) */
		int rc;
		const char *out;
	} t[] = {
		{ "whole request", REQ, 0, 0, HEAD },
		{ "cut in the body's headers", REQ, 120, 0, HEAD },
		{ "cut just after the Via's CRLF and one byte", REQ,
		  sizeof("MESSAGE sip:bob@b.test SIP/2.0\r\n"
			 "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-c1-7\r\n"),
		  0, HEAD },
		{ "cut just after the Via's CRLF: a fold may follow", REQ,
		  sizeof("MESSAGE sip:bob@b.test SIP/2.0\r\n"
			 "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-c1-7\r\n") - 1,
		  -EINVAL, NULL },
		{ "cut inside the Via", REQ, 60, -EINVAL, NULL },
		{ "cut inside the request line", REQ, 10, -EINVAL, NULL },
		{ "compact Via, bare LF",
		  "BYE sip:x@h SIP/2.0\nv: SIP/2.0/UDP h;branch=z9hG4bKb\nf: x\n", 0,
		  0, "BYE sip:x@h SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bKb\r\n\r\n" },
		{ "folded Via kept whole",
		  "ACK sip:x@h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n ;branch=z9hG4bKf\r\nTo: x\r\n", 0,
		  0, "ACK sip:x@h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n ;branch=z9hG4bKf\r\n\r\n" },
		{ "a response is no request",
		  "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKr\r\nTo: x\r\n", 0,
		  -EINVAL, NULL },
		{ "no Via", "OPTIONS sip:h SIP/2.0\r\nTo: x\r\nFrom: y\r\n", 0, -EINVAL, NULL },
		{ "not SIP", "\x01\x02garbage\r\n\r\n", 0, -EINVAL, NULL },
		{ "empty", "", 0, -EINVAL, NULL },
	};
	char out[EDGE_ICMP_QUOTE_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t len = t[i].len ? t[i].len : strlen(t[i].in);
		int rc = edge_sip_quote_head(t[i].in, len, out, sizeof(out));

		if (t[i].rc < 0) {
			if (rc != t[i].rc)
				fail_msg("%s: rc %d, want %d", t[i].what, rc, t[i].rc);
			continue;
		}
		if (rc != (int)strlen(t[i].out) || memcmp(out, t[i].out, (size_t)rc) != 0)
			fail_msg("%s: got %d \"%.*s\"", t[i].what, rc,
				 rc > 0 ? rc : 0, out);
	}
}

static void
test_edge_udp__quote_head_reports_short_buffer(void **state)
{
	char out[sizeof(HEAD)];

	(void)state;
	/* one byte short, then just enough (the quote is not terminated) */
	assert_int_equal(edge_sip_quote_head(REQ, strlen(REQ), out,
					     strlen(HEAD) - 1), -ENOSPC);
	assert_int_equal(edge_sip_quote_head(REQ, strlen(REQ), out, strlen(HEAD)),
			 (int)strlen(HEAD));
	assert_memory_equal(out, HEAD, strlen(HEAD));
}

/* ---- error-queue classifier ---- */

/* A msghdr with one control message (level, type) holding ee. */
static void
errmsg(struct msghdr *mh, char *ctl, size_t cap, int level, int type,
       const struct sock_extended_err *ee)
{
	struct cmsghdr *cm;

	memset(mh, 0, sizeof(*mh));
	memset(ctl, 0, cap);
	mh->msg_control = ctl;
	mh->msg_controllen = CMSG_SPACE(sizeof(*ee));
	assert_true(mh->msg_controllen <= cap);
	cm = CMSG_FIRSTHDR(mh);
	cm->cmsg_level = level;
	cm->cmsg_type = type;
	cm->cmsg_len = CMSG_LEN(sizeof(*ee));
	memcpy(CMSG_DATA(cm), ee, sizeof(*ee));
}

static void
test_edge_udp__err_unreachable_table(void **state)
{
	static const struct {
		const char *what;
		int level, type, origin, err, want;
	} t[] = {
		{ "ICMP port unreachable", SOL_IP, IP_RECVERR, SO_EE_ORIGIN_ICMP, ECONNREFUSED, 1 },
		{ "ICMP host unreachable", SOL_IP, IP_RECVERR, SO_EE_ORIGIN_ICMP, EHOSTUNREACH, 1 },
		{ "ICMP net unreachable", SOL_IP, IP_RECVERR, SO_EE_ORIGIN_ICMP, ENETUNREACH, 1 },
		{ "ICMPv6 port unreachable", SOL_IPV6, IPV6_RECVERR, SO_EE_ORIGIN_ICMP6, ECONNREFUSED, 1 },
		{ "fragmentation needed", SOL_IP, IP_RECVERR, SO_EE_ORIGIN_ICMP, EMSGSIZE, 0 },
		{ "local error", SOL_IP, IP_RECVERR, SO_EE_ORIGIN_LOCAL, ECONNREFUSED, 0 },
		{ "timestamp, not an error", SOL_SOCKET, SO_TIMESTAMPING, SO_EE_ORIGIN_ICMP, ECONNREFUSED, 0 },
	};
	struct sock_extended_err ee;
	struct msghdr mh;
	char ctl[256];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(&ee, 0, sizeof(ee));
		ee.ee_origin = (uint8_t)t[i].origin;
		ee.ee_errno = (uint32_t)t[i].err;
		errmsg(&mh, ctl, sizeof(ctl), t[i].level, t[i].type, &ee);
		if (edge_udp_err_unreachable(&mh) != t[i].want)
			fail_msg("%s: want %d", t[i].what, t[i].want);
	}
	/* A control message too short to hold the error is not read. */
	errmsg(&mh, ctl, sizeof(ctl), SOL_IP, IP_RECVERR, &ee);
	CMSG_FIRSTHDR(&mh)->cmsg_len = CMSG_LEN(4);
	assert_int_equal(edge_udp_err_unreachable(&mh), 0);
	mh.msg_controllen = 0;
	assert_int_equal(edge_udp_err_unreachable(&mh), 0);
}

/* A real socket with IP_RECVERR sends a request to a loopback port
 * nothing listens on: the kernel's ICMP port unreachable comes back on
 * the error queue, with the destination and a quote whose head names
 * the branch. */
static void
test_edge_udp__real_icmp_port_unreachable(void **state)
{
	union env_sa to, dst;
	socklen_t sl = sizeof(to.in);
	char quote[EDGE_ICMP_QUOTE_MAX], ctl[512], head[EDGE_ICMP_QUOTE_MAX];
	struct iovec iov = { .iov_base = quote, .iov_len = sizeof(quote) };
	struct msghdr mh = {
		.msg_name = &dst, .msg_namelen = sizeof(dst),
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl, .msg_controllen = sizeof(ctl),
	};
	struct pollfd pfd;
	int fd, closed, one = 1;
	ssize_t n;

	(void)state;
	/* A port just freed: bound once, then closed. */
	closed = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(closed >= 0);
	assert_int_equal(env_sa_from(&to, "127.0.0.1", 0), 0);
	assert_int_equal(bind(closed, &to.sa, sizeof(to.in)), 0);
	assert_int_equal(getsockname(closed, &to.sa, &sl), 0);
	close(closed);

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_IP, IP_RECVERR, &one, sizeof(one)), 0);
	assert_int_equal(sendto(fd, REQ, strlen(REQ), 0, &to.sa, sizeof(to.in)),
			 (ssize_t)strlen(REQ));
	pfd = (struct pollfd){ .fd = fd, .events = 0 };
	assert_int_equal(poll(&pfd, 1, 2000), 1);
	assert_true(pfd.revents & POLLERR);
	memset(&dst, 0, sizeof(dst));
	n = recvmsg(fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT);
	assert_true(n > 0);
	assert_int_equal(edge_udp_err_unreachable(&mh), 1);
	assert_int_equal(dst.sa.sa_family, AF_INET);
	assert_int_equal(env_sa_port(&dst), env_sa_port(&to));
	assert_int_equal(edge_sip_quote_head(quote, (size_t)n, head, sizeof(head)),
			 (int)strlen(HEAD));
	assert_memory_equal(head, HEAD, strlen(HEAD));
	/* Emptied: nothing more, and the socket no longer polls. */
	assert_int_equal(recvmsg(fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edge_udp__quote_head_table),
		cmocka_unit_test(test_edge_udp__quote_head_reports_short_buffer),
		cmocka_unit_test(test_edge_udp__err_unreachable_table),
		cmocka_unit_test(test_edge_udp__real_icmp_port_unreachable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
