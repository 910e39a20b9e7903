/*
 * test_dns_msg.c - reading DNS answers (lib/dns_msg.c): records and
 * TTLs of each type SIP needs, the NAPTR services kept and dropped,
 * the negative TTL from the SOA, and a table of hostile messages (what
 * a foreign domain's DNS server may send) that must be -EIO and never
 * a read past the message (run it under `make test-san`).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/dns_msg.h"
#include "lib/env.h"

struct msg {
	unsigned char b[4096];
	int n;
};

static void
m_u16(struct msg *m, int v)
{
	m->b[m->n++] = (unsigned char)(v >> 8);
	m->b[m->n++] = (unsigned char)v;
}

static void
m_u32(struct msg *m, uint32_t v)
{
	m_u16(m, (int)(v >> 16));
	m_u16(m, (int)(v & 0xffff));
}

static void
m_name(struct msg *m, const char *name)
{
	while (*name) {
		size_t l = strcspn(name, ".");

		m->b[m->n++] = (unsigned char)l;
		memcpy(m->b + m->n, name, l);
		m->n += (int)l;
		name += l + (name[l] == '.');
	}
	m->b[m->n++] = 0;
}

static void
m_str(struct msg *m, const char *s)
{
	m->b[m->n++] = (unsigned char)strlen(s);
	memcpy(m->b + m->n, s, strlen(s));
	m->n += (int)strlen(s);
}

/* Header (a response, NOERROR) and the question "x.test" of type. */
static void
m_start(struct msg *m, int type, int an, int ns)
{
	memset(m, 0, sizeof(*m));
	m_u16(m, 0x1234);
	m_u16(m, 0x8180);
	m_u16(m, 1);
	m_u16(m, an);
	m_u16(m, ns);
	m_u16(m, 0);
	m_name(m, "x.test");
	m_u16(m, type);
	m_u16(m, 1);
}

/* An RR owned by the question's name (a pointer to offset 12). */
static void
m_rr(struct msg *m, int type, int class, uint32_t ttl, int rdlen)
{
	m_u16(m, 0xc00c);
	m_u16(m, type);
	m_u16(m, class);
	m_u32(m, ttl);
	m_u16(m, rdlen);
}

static void
m_a(struct msg *m, uint32_t ttl, uint32_t ip)
{
	m_rr(m, DNS_T_A, 1, ttl, 4);
	m_u32(m, ip);
}

static void
m_srv(struct msg *m, int prio, int weight, int port, const char *target)
{
	m_rr(m, DNS_T_SRV, 1, 60, 6 + (int)strlen(target) + 2 -
	     (target[0] == '\0'));
	m_u16(m, prio);
	m_u16(m, weight);
	m_u16(m, port);
	m_name(m, target);
}

static void
m_naptr(struct msg *m, int order, int pref, const char *flags,
	const char *svc, const char *re, const char *repl)
{
	m_rr(m, DNS_T_NAPTR, 1, 60, 4 + 3 + (int)(strlen(flags) + strlen(svc) +
	     strlen(re)) + (int)strlen(repl) + 2 - (repl[0] == '\0'));
	m_u16(m, order);
	m_u16(m, pref);
	m_str(m, flags);
	m_str(m, svc);
	m_str(m, re);
	m_name(m, repl);
}

static void
m_soa(struct msg *m, uint32_t ttl, uint32_t minimum)
{
	m_rr(m, DNS_T_SOA, 1, ttl, 2 + 20);
	m->b[m->n++] = 0;	/* mname: the root */
	m->b[m->n++] = 0;	/* rname */
	m_u32(m, 1);
	m_u32(m, 60);
	m_u32(m, 60);
	m_u32(m, 60);
	m_u32(m, minimum);
}

static void
test_dns_msg__a_records_and_smallest_ttl(void **state)
{
	struct dns_answer a;
	struct msg m;
	char ip[INET6_ADDRSTRLEN];

	(void)state;
	m_start(&m, DNS_T_A, 4, 0);
	m_rr(&m, DNS_T_CNAME, 1, 30, 2);
	m_u16(&m, 0xc00c);
	m_a(&m, 300, 0x7f000001);
	m_rr(&m, DNS_T_A, 3 /* CH */, 5, 4);
	m_u32(&m, 0x7f000009);
	m_a(&m, 60, 0x7f000002);
	assert_int_equal(dns_msg_parse(&a, m.b, m.n, DNS_T_A), 0);
	assert_int_equal(a.n, 2);
	assert_int_equal(a.ttl, 30);	/* the CNAME's */
	assert_string_equal(env_sa_ip(&a.rr[0].addr, ip, sizeof(ip)),
			    "127.0.0.1");
	assert_string_equal(env_sa_ip(&a.rr[1].addr, ip, sizeof(ip)),
			    "127.0.0.2");
	dns_msg_fini(&a);
	assert_null(a.rr);
}

static void
test_dns_msg__aaaa_and_ttl_top_bit(void **state)
{
	static const unsigned char v6[16] = { 0x20, 0x01, 0x0d, 0xb8,
					      [15] = 1 };
	struct dns_answer a;
	struct msg m;
	char ip[INET6_ADDRSTRLEN];

	(void)state;
	m_start(&m, DNS_T_AAAA, 1, 0);
	m_rr(&m, DNS_T_AAAA, 1, 0x80000000u, 16);
	memcpy(m.b + m.n, v6, 16);
	m.n += 16;
	assert_int_equal(dns_msg_parse(&a, m.b, m.n, DNS_T_AAAA), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.ttl, 0);	/* RFC 2181 8 */
	assert_string_equal(env_sa_ip(&a.rr[0].addr, ip, sizeof(ip)),
			    "2001:db8::1");
	dns_msg_fini(&a);
}

static void
test_dns_msg__a_flood_is_bounded(void **state)
{
	struct dns_answer a;
	struct msg m;

	(void)state;
	m_start(&m, DNS_T_A, 200, 0);
	for (int i = 0; i < 200; i++)
		m_a(&m, 60, 0x0a000000u + (uint32_t)i);
	assert_int_equal(dns_msg_parse(&a, m.b, m.n, DNS_T_A), 0);
	assert_int_equal(a.n, DNS_RR_MAX);
	dns_msg_fini(&a);
}

static void
test_dns_msg__srv_fields_and_dot_target_dropped(void **state)
{
	struct dns_answer a;
	struct msg m;

	(void)state;
	m_start(&m, DNS_T_SRV, 3, 0);
	m_srv(&m, 10, 60, 5070, "Sip1.X.Test");
	m_srv(&m, 0, 0, 5060, "");	/* ".": not offered */
	m_srv(&m, 20, 0, 0, "sip2.x.test");	/* port 0: unusable */
	assert_int_equal(dns_msg_parse(&a, m.b, m.n, DNS_T_SRV), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.rr[0].prio, 10);
	assert_int_equal(a.rr[0].weight, 60);
	assert_int_equal(a.rr[0].port, 5070);
	assert_string_equal(a.rr[0].target, "sip1.x.test");
	dns_msg_fini(&a);
}

static void
test_dns_msg__naptr_sip_services_only(void **state)
{
	struct dns_answer a;
	struct msg m;

	(void)state;
	m_start(&m, DNS_T_NAPTR, 6, 0);
	m_naptr(&m, 10, 20, "s", "SIP+D2U", "", "_sip._udp.x.test");
	m_naptr(&m, 10, 30, "S", "sips+d2t", "", "_sips._tcp.X.test");
	m_naptr(&m, 10, 40, "s", "SIP+D2W", "", "_sip._ws.x.test");
	m_naptr(&m, 10, 50, "u", "E2U+sip", "!^.*$!sip:a@b!", "");
	m_naptr(&m, 10, 60, "s", "SIP+D2T", "!x!y!", "_sip._tcp.x.test");
	m_naptr(&m, 10, 70, "a", "SIP+D2T", "", "_sip._tcp.x.test");
	assert_int_equal(dns_msg_parse(&a, m.b, m.n, DNS_T_NAPTR), 0);
	assert_int_equal(a.n, 2);
	assert_int_equal(a.rr[0].transport, ENV_UDP);
	assert_int_equal(a.rr[0].prio, 10);
	assert_int_equal(a.rr[0].weight, 20);
	assert_string_equal(a.rr[0].target, "_sip._udp.x.test");
	assert_int_equal(a.rr[1].transport, ENV_TLS);
	assert_string_equal(a.rr[1].target, "_sips._tcp.x.test");
	dns_msg_fini(&a);
}

static void
test_dns_msg__negative_ttl_from_soa(void **state)
{
	struct dns_answer a;
	struct msg m;

	(void)state;
	m_start(&m, DNS_T_A, 0, 1);
	m_soa(&m, 100, 30);
	assert_int_equal(dns_msg_parse(&a, m.b, m.n, DNS_T_A), 0);
	assert_int_equal(a.n, 0);
	assert_int_equal(a.ttl, -1);
	assert_int_equal(a.neg_ttl, 30);	/* the minimum */
	dns_msg_fini(&a);
	m_start(&m, DNS_T_A, 0, 1);
	m_soa(&m, 10, 30);
	assert_int_equal(dns_msg_parse(&a, m.b, m.n, DNS_T_A), 0);
	assert_int_equal(a.neg_ttl, 10);	/* the SOA's own TTL, lower */
	dns_msg_fini(&a);
	m_start(&m, DNS_T_A, 0, 0);
	assert_int_equal(dns_msg_parse(&a, m.b, m.n, DNS_T_A), 0);
	assert_int_equal(a.neg_ttl, -1);	/* no SOA */
	dns_msg_fini(&a);
}

/* Each builds a message that lies about itself. */
typedef void (*hostile_fn)(struct msg *m, int *type);

static void
h_short_header(struct msg *m, int *type)
{
	m_start(m, *type = DNS_T_A, 0, 0);
	m->n = 11;
}

static void
h_question_cut(struct msg *m, int *type)
{
	m_start(m, *type = DNS_T_A, 0, 0);
	m->n -= 3;
}

static void
h_count_lies(struct msg *m, int *type)
{
	m_start(m, *type = DNS_T_A, 65535, 0);
	m_a(m, 60, 1);
}

static void
h_rdlen_past_end(struct msg *m, int *type)
{
	m_start(m, *type = DNS_T_A, 1, 0);
	m_rr(m, DNS_T_A, 1, 60, 4000);
	m_u32(m, 1);
}

static void
h_a_of_five_bytes(struct msg *m, int *type)
{
	m_start(m, *type = DNS_T_A, 1, 0);
	m_rr(m, DNS_T_A, 1, 60, 5);
	m_u32(m, 1);
	m->b[m->n++] = 0;
}

static void
h_aaaa_of_four_bytes(struct msg *m, int *type)
{
	m_start(m, *type = DNS_T_AAAA, 1, 0);
	m_rr(m, DNS_T_AAAA, 1, 60, 4);
	m_u32(m, 1);
}

static void
h_srv_too_short(struct msg *m, int *type)
{
	m_start(m, *type = DNS_T_SRV, 1, 0);
	m_rr(m, DNS_T_SRV, 1, 60, 6);
	m_u16(m, 0);
	m_u16(m, 0);
	m_u16(m, 5060);
}

static void
h_srv_pointer_loop(struct msg *m, int *type)
{
	m_start(m, *type = DNS_T_SRV, 1, 0);
	m_rr(m, DNS_T_SRV, 1, 60, 8);
	m_u16(m, 0);
	m_u16(m, 0);
	m_u16(m, 5060);
	m_u16(m, 0xc000 | m->n);	/* points at itself */
}

static void
h_srv_pointer_past_end(struct msg *m, int *type)
{
	m_start(m, *type = DNS_T_SRV, 1, 0);
	m_rr(m, DNS_T_SRV, 1, 60, 8);
	m_u16(m, 0);
	m_u16(m, 0);
	m_u16(m, 5060);
	m_u16(m, 0xc000 | 0x3fff);
}

static void
h_owner_label_type_bits(struct msg *m, int *type)
{
	m_start(m, *type = DNS_T_A, 1, 0);
	m->b[m->n++] = 0x41;	/* 0x40: an extended label type */
	m->b[m->n++] = 'a';
	m->b[m->n++] = 0;
	m_u16(m, DNS_T_A);
	m_u16(m, 1);
	m_u32(m, 60);
	m_u16(m, 4);
	m_u32(m, 1);
}

static void
h_owner_label_past_end(struct msg *m, int *type)
{
	m_start(m, *type = DNS_T_A, 1, 0);
	m->b[m->n++] = 63;
	m->b[m->n++] = 'a';
}

static void
h_naptr_string_past_rdata(struct msg *m, int *type)
{
	m_start(m, *type = DNS_T_NAPTR, 1, 0);
	m_rr(m, DNS_T_NAPTR, 1, 60, 8);
	m_u16(m, 10);
	m_u16(m, 10);
	m->b[m->n++] = 200;	/* flags "longer" than the record */
	m->b[m->n++] = 's';
	m->b[m->n++] = 0;
	m->b[m->n++] = 0;
	memset(m->b + m->n, 'x', 300);	/* and than this, within the message */
	m->n += 300;
}

static void
h_naptr_without_replacement(struct msg *m, int *type)
{
	m_start(m, *type = DNS_T_NAPTR, 1, 0);
	m_rr(m, DNS_T_NAPTR, 1, 60, 4 + 2 + 8 + 1);
	m_u16(m, 10);
	m_u16(m, 10);
	m_str(m, "s");
	m_str(m, "SIP+D2U");
	m_str(m, "");
}

static void
h_soa_cut(struct msg *m, int *type)
{
	m_start(m, *type = DNS_T_A, 0, 1);
	m_rr(m, DNS_T_SOA, 1, 60, 10);
	m->b[m->n++] = 0;
	m->b[m->n++] = 0;
	m_u32(m, 1);
	m_u32(m, 1);
}

static void
test_dns_msg__hostile_messages_are_eio(void **state)
{
	static const struct {
		const char *what;
		hostile_fn fn;
	} table[] = {
		{ "short header", h_short_header },
		{ "question cut", h_question_cut },
		{ "ancount 65535, one record", h_count_lies },
		{ "rdlength past the end", h_rdlen_past_end },
		{ "A of 5 bytes", h_a_of_five_bytes },
		{ "AAAA of 4 bytes", h_aaaa_of_four_bytes },
		{ "SRV of 6 bytes", h_srv_too_short },
		{ "SRV target pointing at itself", h_srv_pointer_loop },
		{ "SRV target pointer past the end", h_srv_pointer_past_end },
		{ "owner label type 0x40", h_owner_label_type_bits },
		{ "owner label past the end", h_owner_label_past_end },
		{ "NAPTR string past its rdata", h_naptr_string_past_rdata },
		{ "NAPTR without replacement", h_naptr_without_replacement },
		{ "SOA cut short", h_soa_cut },
	};
	struct dns_answer a;
	struct msg m;
	int type;

	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		unsigned char *exact;

		table[i].fn(&m, &type);
		/* A copy of exactly the message's size, so ASan sees any
		 * read past it. */
		exact = malloc((size_t)m.n);
		assert_non_null(exact);
		memcpy(exact, m.b, (size_t)m.n);
		if (dns_msg_parse(&a, exact, m.n, type) != -EIO)
			fail_msg("%s: not -EIO", table[i].what);
		assert_int_equal(a.n, 0);
		assert_null(a.rr);
		free(exact);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dns_msg__a_records_and_smallest_ttl),
		cmocka_unit_test(test_dns_msg__aaaa_and_ttl_top_bit),
		cmocka_unit_test(test_dns_msg__a_flood_is_bounded),
		cmocka_unit_test(test_dns_msg__srv_fields_and_dot_target_dropped),
		cmocka_unit_test(test_dns_msg__naptr_sip_services_only),
		cmocka_unit_test(test_dns_msg__negative_ttl_from_soa),
		cmocka_unit_test(test_dns_msg__hostile_messages_are_eio),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
