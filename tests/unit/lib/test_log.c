/*
 * test_log.c - the per-call log context: set, every line carries
 * "[<Call-ID>] " after the subsystem whoever writes it; cleared, none
 * does; a long Call-ID is cut, and the context is a copy.  JSON lines
 * with their fields and escapes; levels per subsystem, all or nothing.
 * stderr is a pipe for the test so the lines can be read back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"

static int saved_err, rd;

static int
setup(void **state)
{
	int p[2];

	(void)state;
	if (pipe(p) != 0)
		return -1;
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	saved_err = dup(STDERR_FILENO);
	dup2(p[1], STDERR_FILENO);
	close(p[1]);
	rd = p[0];
	log_init("test", LOG_LVL_INFO);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	dup2(saved_err, STDERR_FILENO);
	close(saved_err);
	close(rd);
	log_ctx_clear();
	log_set_format(LOG_FMT_PLAIN);
	return 0;
}

/* What was logged since the last call, NUL-terminated. */
static const char *
logged(void)
{
	static char buf[4096];
	ssize_t n = read(rd, buf, sizeof(buf) - 1);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void
test_log__context_prefixes_every_line(void **state)
{
	char cid[] = "abc123@host";
	const char *out;

	(void)state;
	log_ctx_set(cid, strlen(cid));
	memset(cid, 'x', strlen(cid));	/* the context is a copy */
	log_notice(LOG_SYS_TXN, "answering %d", 408);
	log_info(LOG_SYS_REG, "second");
	out = logged();
	assert_non_null(strstr(out, "txn: [abc123@host] answering 408\n"));
	assert_non_null(strstr(out, "reg: [abc123@host] second\n"));
	log_ctx_clear();
	log_notice(LOG_SYS_TXN, "after");
	out = logged();
	assert_non_null(strstr(out, "txn: after\n"));
	assert_null(strchr(out, '['));
}

static void
test_log__long_call_id_is_cut(void **state)
{
	char cid[LOG_CTX_MAX * 2 + 1];
	const char *out, *open;

	(void)state;
	memset(cid, 'c', sizeof(cid) - 1);
	cid[sizeof(cid) - 1] = '\0';
	log_ctx_set(cid, strlen(cid));
	log_notice(LOG_SYS_TXN, "x");
	out = logged();
	open = strchr(out, '[');
	assert_non_null(open);
	assert_int_equal(strcspn(open + 1, "]"), LOG_CTX_MAX);
	log_ctx_set(NULL, 5);	/* no Call-ID: no context */
	log_notice(LOG_SYS_TXN, "y");
	assert_null(strchr(logged(), '['));
}

/* A folded Call-ID (CRLF inside) or any control byte in a line, in
 * the context or in the arguments, is escaped: one call, one line. */
static void
test_log__control_bytes_are_escaped(void **state)
{
	static const char cid[] = "a\r\n 12:00:00.000 forged err main: x";
	const char *out;

	(void)state;
	log_ctx_set(cid, sizeof(cid) - 1);
	log_notice(LOG_SYS_SIP, "method %s\x01 end", "GET\nFAKE\x7f");
	out = logged();
	assert_non_null(strstr(out, "[a\\x0d\\x0a 12:00:00.000 forged err main: x] "
			       "method GET\\x0aFAKE\\x7f\\x01 end\n"));
	assert_int_equal(strchr(out, '\n') - out, (long)strlen(out) - 1);
	log_ctx_clear();
}

/* JSON lines: the fields, the Call-ID when a context is set, and
 * quotes, backslashes, control bytes and non-ASCII bytes escaped, so a
 * sender cannot end the string or the object. */
static void
test_log__json_lines(void **state)
{
	static const char cid[] = "c\"1@x";
	const char *out;

	(void)state;
	log_set_format(LOG_FMT_JSON);
	log_notice(LOG_SYS_TXN, "no context");
	out = logged();
	assert_non_null(strstr(out, "\",\"proc\":\"test\",\"level\":\"notice\","
			       "\"sys\":\"txn\",\"msg\":\"no context\"}\n"));
	assert_memory_equal(out, "{\"ts\":\"20", 9);
	assert_int_equal(out[30], 'Z');
	log_ctx_set(cid, sizeof(cid) - 1);
	log_info(LOG_SYS_SIP, "From \"%s\" \\ \x01\xe9\n}", "a\"},{\"level\":\"err");
	out = logged();
	assert_non_null(strstr(out, "\"sys\":\"sip\",\"call_id\":\"c\\\"1@x\","
			       "\"msg\":\"From \\\"a\\\"},{\\\"level\\\":\\\"err\\\" "
			       "\\\\ \\u0001\\u00e9\\u000a}\"}\n"));
	assert_int_equal(strchr(out, '\n') - out, (long)strlen(out) - 1);
}

static void
test_log__levels_per_subsystem(void **state)
{
	char buf[256];

	(void)state;
	log_set_level(-1, LOG_LVL_NOTICE);
	assert_int_equal(log_levels_set("txn:debug, loc:info"), 0);
	assert_int_equal(log_levels[LOG_SYS_TXN], LOG_LVL_DEBUG);
	assert_int_equal(log_levels[LOG_SYS_LOC], LOG_LVL_INFO);
	assert_int_equal(log_levels[LOG_SYS_NET], LOG_LVL_NOTICE);
	log_debug(LOG_SYS_TXN, "shown");
	log_info(LOG_SYS_NET, "hidden");
	assert_non_null(strstr(logged(), "shown"));
	assert_null(strstr(logged(), "hidden"));
	/* One bad item: nothing changes. */
	assert_int_equal(log_levels_set("net:debug txn:loud"), -EINVAL);
	assert_int_equal(log_levels_set("nope:debug"), -EINVAL);
	assert_int_equal(log_levels_set("net"), -EINVAL);
	assert_int_equal(log_levels[LOG_SYS_NET], LOG_LVL_NOTICE);
	assert_int_equal(log_levels_set("all:warn rtp:debug"), 0);
	assert_int_equal(log_levels_str(buf, sizeof(buf)),
			 (int)strlen("main:warn cfg:warn net:warn sip:warn "
				     "txn:warn reg:warn loc:warn rtp:debug"));
	assert_string_equal(buf, "main:warn cfg:warn net:warn sip:warn "
			    "txn:warn reg:warn loc:warn rtp:debug");
	assert_int_equal(log_levels_set(""), 0);
	assert_int_equal(log_levels[LOG_SYS_RTP], LOG_LVL_DEBUG);
	log_set_level(-1, LOG_LVL_INFO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_log__context_prefixes_every_line, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_log__long_call_id_is_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_log__control_bytes_are_escaped, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_log__json_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_log__levels_per_subsystem, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
