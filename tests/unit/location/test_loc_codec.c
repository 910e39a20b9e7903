/*
 * test_loc_codec.c - a binding's value in Redis and the connection
 * identity in it (issue 9): a V3 value carries the edge's incarnation
 * and the serial at their place; V1 and V2 values, which Redis may
 * still hold from before incarnations, decode with incarnation 0 (a
 * connection no edge process holds) and everything else unchanged; a
 * serial of 0 under an incarnation, a truncation or an unknown codec
 * version is refused.  The older values are made from the new one by
 * taking out the fields each version added, byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "location/loc_int.h"
#include "loc_test.h"

/* Offsets in a V3 value. */
#define V3_VERSION_OFF 2	/* binding version and origin, 16 bytes:
				   V2 and V3 only */
#define V3_CONN_OFF 36		/* incarnation u32, serial u32; V1 and V2
				   hold the serial alone */

static struct loc_binding
sample(uint64_t conn_id)
{
	struct loc_binding b = lt_binding("bob@a.test",
					  "sip:k3@x1.invalid;transport=ws",
					  1700000300);

	b.version = 1700000000123LL;
	b.origin = 0x0102030405060708ULL;
	b.transport = ENV_WS;
	b.flags = LOC_F_WS;
	b.edge_id = 3;
	b.conn_id = conn_id;
	b.reg_id = 1;
	snprintf(b.instance, sizeof(b.instance), "<urn:uuid:b0b>");
	b.received.in.sin_family = AF_INET;
	b.received.in.sin_port = htons(40000);
	b.received.in.sin_addr.s_addr = htonl(0x7f000001);
	return b;
}

/* Removes n bytes at off from buf[0..*len). */
static void
cut(char *buf, int *len, int off, int n)
{
	memmove(buf + off, buf + off + n, (size_t)(*len - off - n));
	*len -= n;
}

static void
test_loc_codec__conn_id_keeps_its_incarnation(void **state)
{
	static const unsigned char want[8] = {
		0xc0, 0xff, 0xee, 0x01, 0, 0, 0, 77,
	};
	struct loc_binding b = sample(ENV_CONN_ID(0xc0ffee01, 77)), d;
	char buf[LOC_REDIS_VAL_MAX];
	int n;

	(void)state;
	n = loc_binding_encode(&b, buf, sizeof(buf));
	assert_true(n > V3_CONN_OFF + 8);
	assert_int_equal(buf[0], 'L');
	assert_int_equal(buf[1], 3);
	assert_memory_equal(buf + V3_CONN_OFF, want, 8);
	assert_int_equal(loc_binding_decode(&d, buf, (size_t)n), 0);
	assert_memory_equal(&d, &b, sizeof(b));
}

static void
test_loc_codec__older_values_decode_as_incarnation_0(void **state)
{
	(void)state;
	for (int udp = 0; udp < 2; udp++) {
		struct loc_binding b = sample(udp ? 0 : ENV_CONN_ID(0xc0ffee01, 77));
		struct loc_binding want, d;
		char buf[LOC_REDIS_VAL_MAX];
		int n;

		if (udp) {
			b.transport = ENV_UDP;
			b.flags = 0;
		}
		n = loc_binding_encode(&b, buf, sizeof(buf));
		/* V2: the serial alone. */
		buf[1] = 2;
		cut(buf, &n, V3_CONN_OFF, 4);
		want = b;
		want.conn_id = udp ? 0 : 77;
		assert_int_equal(loc_binding_decode(&d, buf, (size_t)n), 0);
		assert_memory_equal(&d, &want, sizeof(want));
		assert_int_equal(ENV_CONN_INC(d.conn_id), 0);
		/* V1: no binding version, no origin either. */
		buf[1] = 1;
		cut(buf, &n, V3_VERSION_OFF, 16);
		want.version = 0;
		want.origin = 0;
		assert_int_equal(loc_binding_decode(&d, buf, (size_t)n), 0);
		assert_memory_equal(&d, &want, sizeof(want));
	}
}

static void
test_loc_codec__refuses_serial_0_truncation_and_unknown_versions(void **state)
{
	struct loc_binding b = sample(ENV_CONN_ID(0xc0ffee01, 77)), d;
	char buf[LOC_REDIS_VAL_MAX];
	int n = loc_binding_encode(&b, buf, sizeof(buf));

	(void)state;
	for (int i = 0; i < n; i++)
		assert_int_equal(loc_binding_decode(&d, buf, (size_t)i), -EPROTO);
	/* An incarnation with no connection. */
	memset(buf + V3_CONN_OFF + 4, 0, 4);
	assert_int_equal(loc_binding_decode(&d, buf, (size_t)n), -EPROTO);
	buf[V3_CONN_OFF + 7] = 1;
	assert_int_equal(loc_binding_decode(&d, buf, (size_t)n), 0);
	for (int v = 0; v < 256; v++) {
		if (v >= 1 && v <= 3)
			continue;
		buf[1] = (char)v;
		assert_int_equal(loc_binding_decode(&d, buf, (size_t)n), -EPROTO);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loc_codec__conn_id_keeps_its_incarnation),
		cmocka_unit_test(test_loc_codec__older_values_decode_as_incarnation_0),
		cmocka_unit_test(test_loc_codec__refuses_serial_0_truncation_and_unknown_versions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
