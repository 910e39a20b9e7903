/*
 * log.c - formatting and output for log.h.  One buffer on the stack,
 * one write(2) per line so lines from several processes sharing a
 * terminal do not interleave mid-line.
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

void
log_write(int sys, int level, const char *fmt, ...)
{
	char buf[2048];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	int n, m;

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	n = snprintf(buf, sizeof(buf), "%02d:%02d:%02d.%03d %s %s %s: ",
		     tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000),
		     log_proc, log_lvl_names[level], log_sys_names[sys]);
	if (log_ctx_len)
		n += snprintf(buf + n, sizeof(buf) - n, "[%.*s] ",
			      (int)log_ctx_len, log_ctx);
	va_start(ap, fmt);
	m = vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(STDERR_FILENO, buf, n) < 0) {
		/* Nowhere left to report a failed log write. */
	}
}
