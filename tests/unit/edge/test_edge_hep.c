/*
 * test_edge_hep.c - HEP v3 packets as a Homer collector reads them:
 * the header and its length, every chunk of an IPv4 UDP capture with
 * its value, IPv6 addresses in their own chunk types, no auth or
 * correlation chunk when there is none, and messages too big for the
 * 16-bit length refused instead of written truncated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "edge/edge_int.h"

#define MSG "MESSAGE sip:bob@a.test SIP/2.0\r\nCall-ID: c1@x\r\n\r\n"

struct chunk {
	unsigned vendor, type;
	const unsigned char *v;
	size_t len;
};

/* Splits a packet into its chunks as a collector does; fails the test
 * on a bad header or a chunk running past the end. */
static int
parse(const unsigned char *p, size_t n, struct chunk *out, int max)
{
	size_t o = 6;
	int k = 0;

	assert_true(n >= 6);
	assert_memory_equal(p, "HEP3", 4);
	assert_int_equal((size_t)p[4] << 8 | p[5], n);
	while (o < n) {
		size_t len;

		assert_true(o + 6 <= n);
		assert_true(k < max);
		len = (size_t)p[o + 4] << 8 | p[o + 5];
		assert_true(len >= 6 && o + len <= n);
		out[k].vendor = (unsigned)p[o] << 8 | p[o + 1];
		out[k].type = (unsigned)p[o + 2] << 8 | p[o + 3];
		out[k].v = p + o + 6;
		out[k].len = len - 6;
		k++;
		o += len;
	}
	return k;
}

static const struct chunk *
find(const struct chunk *c, int n, unsigned type)
{
	for (int i = 0; i < n; i++)
		if (c[i].type == type)
			return &c[i];
	return NULL;
}

static uint32_t
u32(const struct chunk *c)
{
	assert_int_equal(c->len, 4);
	return (uint32_t)c->v[0] << 24 | (uint32_t)c->v[1] << 16 |
		(uint32_t)c->v[2] << 8 | c->v[3];
}

static unsigned
u16(const struct chunk *c)
{
	assert_int_equal(c->len, 2);
	return (unsigned)c->v[0] << 8 | c->v[1];
}

static unsigned
u8(const struct chunk *c)
{
	assert_int_equal(c->len, 1);
	return c->v[0];
}

static void
test_edge_hep__ipv4_udp_capture_has_every_chunk(void **state)
{
	unsigned char buf[1024];
	struct chunk c[32];
	union env_sa src, dst;
	struct edge_hep_pkt p = {
		.src = &src, .dst = &dst, .ip_proto = 17, .sec = 1700000000,
		.usec = 123456, .agent_id = 2001, .auth = "s3cret",
		.auth_len = 6, .corr = "c1@x", .corr_len = 4,
		.msg = MSG, .len = sizeof(MSG) - 1,
	};
	int n, k;

	(void)state;
	assert_int_equal(env_sa_from(&src, "192.0.2.7", 5062), 0);
	assert_int_equal(env_sa_from(&dst, "198.51.100.1", 5060), 0);
	n = edge_hep_encode(buf, sizeof(buf), &p);
	assert_true(n > 0);
	k = parse(buf, (size_t)n, c, 32);
	for (int i = 0; i < k; i++)
		assert_int_equal(c[i].vendor, 0);
	assert_int_equal(u8(find(c, k, 0x01)), 2);		/* AF_INET */
	assert_int_equal(u8(find(c, k, 0x02)), 17);		/* UDP */
	assert_int_equal(find(c, k, 0x03)->len, 4);
	assert_memory_equal(find(c, k, 0x03)->v, "\xc0\x00\x02\x07", 4);
	assert_memory_equal(find(c, k, 0x04)->v, "\xc6\x33\x64\x01", 4);
	assert_null(find(c, k, 0x05));
	assert_int_equal(u16(find(c, k, 0x07)), 5062);
	assert_int_equal(u16(find(c, k, 0x08)), 5060);
	assert_int_equal(u32(find(c, k, 0x09)), 1700000000);
	assert_int_equal(u32(find(c, k, 0x0a)), 123456);
	assert_int_equal(u8(find(c, k, 0x0b)), 1);		/* SIP */
	assert_int_equal(u32(find(c, k, 0x0c)), 2001);
	assert_int_equal(find(c, k, 0x0e)->len, 6);
	assert_memory_equal(find(c, k, 0x0e)->v, "s3cret", 6);
	assert_int_equal(find(c, k, 0x11)->len, 4);
	assert_memory_equal(find(c, k, 0x11)->v, "c1@x", 4);
	assert_int_equal(find(c, k, 0x0f)->len, sizeof(MSG) - 1);
	assert_memory_equal(find(c, k, 0x0f)->v, MSG, sizeof(MSG) - 1);
}

static void
test_edge_hep__ipv6_without_auth_or_correlation(void **state)
{
	unsigned char buf[1024];
	struct chunk c[32];
	union env_sa src, dst;
	struct edge_hep_pkt p = {
		.src = &src, .dst = &dst, .ip_proto = 6, .agent_id = 1,
		.msg = MSG, .len = sizeof(MSG) - 1,
	};
	struct in6_addr a;
	int n, k;

	(void)state;
	assert_int_equal(env_sa_from(&src, "2001:db8::1", 40000), 0);
	assert_int_equal(env_sa_from(&dst, "2001:db8::2", 5061), 0);
	n = edge_hep_encode(buf, sizeof(buf), &p);
	assert_true(n > 0);
	k = parse(buf, (size_t)n, c, 32);
	assert_int_equal(u8(find(c, k, 0x01)), 10);		/* AF_INET6 */
	assert_int_equal(u8(find(c, k, 0x02)), 6);
	assert_null(find(c, k, 0x03));
	assert_int_equal(find(c, k, 0x05)->len, 16);
	inet_pton(AF_INET6, "2001:db8::1", &a);
	assert_memory_equal(find(c, k, 0x05)->v, &a, 16);
	inet_pton(AF_INET6, "2001:db8::2", &a);
	assert_memory_equal(find(c, k, 0x06)->v, &a, 16);
	assert_int_equal(u16(find(c, k, 0x08)), 5061);
	assert_null(find(c, k, 0x0e));
	assert_null(find(c, k, 0x11));
}

static void
test_edge_hep__too_big_or_mixed_families_refused(void **state)
{
	unsigned char *buf = malloc(EDGE_HEP_MAX);
	char *big = malloc(EDGE_HEP_MAX);
	union env_sa v4, v6;
	struct edge_hep_pkt p = { .src = &v4, .dst = &v4, .ip_proto = 17 };
	int n;

	(void)state;
	assert_non_null(buf);
	assert_non_null(big);
	memset(big, 'x', EDGE_HEP_MAX);
	assert_int_equal(env_sa_from(&v4, "127.0.0.1", 5060), 0);
	assert_int_equal(env_sa_from(&v6, "::1", 5060), 0);
	/* The largest message that fits, then one byte more. */
	p.msg = big;
	p.len = 1000;
	n = edge_hep_encode(buf, EDGE_HEP_MAX, &p);
	assert_true(n > 1000);
	p.len = EDGE_HEP_MAX - (size_t)(n - 1000);
	assert_int_equal(edge_hep_encode(buf, EDGE_HEP_MAX, &p), EDGE_HEP_MAX);
	p.len++;
	assert_int_equal(edge_hep_encode(buf, EDGE_HEP_MAX, &p), -EMSGSIZE);
	/* A buffer too small for a small message. */
	p.len = 100;
	assert_int_equal(edge_hep_encode(buf, 64, &p), -EMSGSIZE);
	p.dst = &v6;
	assert_int_equal(edge_hep_encode(buf, EDGE_HEP_MAX, &p), -EINVAL);
	free(buf);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edge_hep__ipv4_udp_capture_has_every_chunk),
		cmocka_unit_test(test_edge_hep__ipv6_without_auth_or_correlation),
		cmocka_unit_test(test_edge_hep__too_big_or_mixed_families_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
