/*
 * log.c - formatting and output for log.h.  One buffer on the stack,
 * one write(2) per line so lines from several processes sharing a
 * terminal do not interleave mid-line.
 *
 * Lines carry what senders wrote (Call-IDs, methods, URIs), which may
 * hold CR, LF (a folded header keeps its line break inside the value)
 * or other control bytes: each becomes \xNN, so one call to the log is
 * one line and nobody can forge a line of their own in it.
 */
#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int log_levels[LOG_SYS__COUNT] = {
	LOG_LVL_NOTICE, LOG_LVL_NOTICE, LOG_LVL_NOTICE, LOG_LVL_NOTICE,
	LOG_LVL_NOTICE, LOG_LVL_NOTICE, LOG_LVL_NOTICE, LOG_LVL_NOTICE,
};

static const char *log_proc = "sipmesh";

/* The per-call context of log.h; len 0: none. */
static char log_ctx[LOG_CTX_MAX];
static size_t log_ctx_len;

static const char *const log_sys_names[LOG_SYS__COUNT] = {
	"main", "cfg", "net", "sip", "txn", "reg", "loc", "rtp",
};

static const char *const log_lvl_names[] = {
	"err", "warn", "notice", "info", "debug",
};

void
log_init(const char *procname, int level)
{
	log_proc = procname;
	log_set_level(-1, level);
}

void
log_set_level(int sys, int level)
{
	if (sys >= 0 && sys < LOG_SYS__COUNT) {
		log_levels[sys] = level;
		return;
	}
	for (int i = 0; i < LOG_SYS__COUNT; i++)
		log_levels[i] = level;
}

void
log_ctx_set(const char *cid, size_t len)
{
	if (cid == NULL)
		len = 0;
	log_ctx_len = len < sizeof(log_ctx) ? len : sizeof(log_ctx);
	memcpy(log_ctx, cid ? cid : "", log_ctx_len);
}

void
log_ctx_clear(void)
{
	log_ctx_len = 0;
}

int
log_level_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(log_lvl_names) / sizeof(*log_lvl_names); i++)
		if (strcmp(name, log_lvl_names[i]) == 0)
			return (int)i;
	return -1;
}

/* Copies src[0..n) to out (cap bytes) with control bytes escaped;
 * returns the bytes written.  A byte whose escape does not fit is cut
 * with the rest. */
static size_t
log_escape(char *out, size_t cap, const char *src, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)src[i];

		if (ch >= 0x20 && ch != 0x7f) {
			if (o + 1 > cap)
				break;
			out[o++] = (char)ch;
			continue;
		}
		if (o + 4 > cap)
			break;
		out[o++] = '\\';
		out[o++] = 'x';
		out[o++] = hex[ch >> 4];
		out[o++] = hex[ch & 15];
	}
	return o;
}

void
log_write(int sys, int level, const char *fmt, ...)
{
	char buf[2048], raw[2048];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	int n, m;

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	n = snprintf(buf, sizeof(buf), "%02d:%02d:%02d.%03d %s %s %s: ",
		     tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000),
		     log_proc, log_lvl_names[level], log_sys_names[sys]);
	if (log_ctx_len) {
		buf[n++] = '[';
		n += (int)log_escape(buf + n, sizeof(buf) - (size_t)n - 4,
				     log_ctx, log_ctx_len);
		buf[n++] = ']';
		buf[n++] = ' ';
	}
	va_start(ap, fmt);
	m = vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	if (m > (int)sizeof(raw) - 1)
		m = sizeof(raw) - 1;
	n += (int)log_escape(buf + n, sizeof(buf) - (size_t)n - 1, raw,
			     (size_t)m);
	buf[n++] = '\n';
	if (write(STDERR_FILENO, buf, n) < 0) {
		/* Nowhere left to report a failed log write. */
	}
}
