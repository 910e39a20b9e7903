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

#include <errno.h>
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
static int log_format = LOG_FMT_PLAIN;

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

/* The index of name[0..len) in names (n of them), or -1. */
static int
log_name_find(const char *const *names, int n, const char *name, size_t len)
{
	for (int i = 0; i < n; i++)
		if (strlen(names[i]) == len && memcmp(name, names[i], len) == 0)
			return i;
	return -1;
}

int
log_level_parse(const char *name)
{
	return log_name_find(log_lvl_names, LOG_LVL_DEBUG + 1, name,
			     strlen(name));
}

int
log_levels_set(const char *spec)
{
	int want[LOG_SYS__COUNT];
	const char *p = spec;

	memcpy(want, log_levels, sizeof(want));
	for (;;) {
		const char *item, *colon;
		size_t n;
		int sys, lvl;

		p += strspn(p, " ,\t");
		if (*p == '\0')
			break;
		item = p;
		n = strcspn(p, " ,\t");
		p += n;
		colon = memchr(item, ':', n);
		if (colon == NULL)
			return -EINVAL;
		lvl = log_name_find(log_lvl_names, LOG_LVL_DEBUG + 1, colon + 1,
				    (size_t)(item + n - colon - 1));
		if (lvl < 0)
			return -EINVAL;
		if ((size_t)(colon - item) == 3 && memcmp(item, "all", 3) == 0) {
			for (int i = 0; i < LOG_SYS__COUNT; i++)
				want[i] = lvl;
			continue;
		}
		sys = log_name_find(log_sys_names, LOG_SYS__COUNT, item,
				    (size_t)(colon - item));
		if (sys < 0)
			return -EINVAL;
		want[sys] = lvl;
	}
	memcpy(log_levels, want, sizeof(want));
	return 0;
}

int
log_levels_str(char *out, size_t cap)
{
	int n = 0, m;

	for (int i = 0; i < LOG_SYS__COUNT; i++) {
		m = snprintf(out + (cap ? (size_t)n : 0),
			     (size_t)n < cap ? cap - (size_t)n : 0, "%s%s:%s",
			     i ? " " : "", log_sys_names[i],
			     log_lvl_names[log_levels[i]]);
		if (m < 0)
			return m;
		n += m;
	}
	return n;
}

void
log_set_format(int format)
{
	log_format = format;
}

int
log_format_get(void)
{
	return log_format;
}

int
log_format_parse(const char *name)
{
	if (strcmp(name, "plain") == 0)
		return LOG_FMT_PLAIN;
	if (strcmp(name, "json") == 0)
		return LOG_FMT_JSON;
	return -1;
}

/*
 * Copies src[0..n) to out (cap bytes) with what could break the line
 * escaped: control bytes as \xNN; for a JSON string (json) also quote
 * and backslash, and control and non-ASCII bytes (which may not be
 * UTF-8) as \u00NN.  Returns the bytes written; a byte whose escape
 * does not fit is cut with the rest.
 */
static size_t
log_escape(char *out, size_t cap, const char *src, size_t n, int json)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, w;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)src[i];
		int ctl = ch < 0x20 || ch == 0x7f || (json && ch > 0x7f);
		int quote = json && (ch == '"' || ch == '\\');

		w = ctl ? (json ? 6 : 4) : quote ? 2 : 1;
		if (o + w > cap)
			break;
		if (ctl) {
			memcpy(out + o, json ? "\\u00" : "\\x", w - 2);
			out[o + w - 2] = hex[ch >> 4];
			out[o + w - 1] = hex[ch & 15];
		} else if (quote) {
			out[o] = '\\';
			out[o + 1] = (char)ch;
		} else {
			out[o] = (char)ch;
		}
		o += w;
	}
	return o;
}

/* One JSON object: the head fields, then msg (raw, m bytes). */
static int
log_json_line(char *buf, size_t cap, const struct timeval *tv, int sys,
	      int level, const char *raw, size_t m)
{
	struct tm tm;
	size_t n;

	gmtime_r(&tv->tv_sec, &tm);
	n = (size_t)snprintf(buf, cap, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d."
			     "%03dZ\",\"proc\":\"", tm.tm_year + 1900,
			     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			     tm.tm_sec, (int)(tv->tv_usec / 1000));
	n += log_escape(buf + n, cap - n - 64, log_proc, strlen(log_proc), 1);
	n += (size_t)snprintf(buf + n, cap - n, "\",\"level\":\"%s\",\"sys\":\"%s\"",
			      log_lvl_names[level], log_sys_names[sys]);
	if (log_ctx_len) {
		memcpy(buf + n, ",\"call_id\":\"", 12);
		n += 12;
		n += log_escape(buf + n, cap - n - 32, log_ctx, log_ctx_len,
				1);
		buf[n++] = '"';
	}
	memcpy(buf + n, ",\"msg\":\"", 8);
	n += 8;
	n += log_escape(buf + n, cap - n - 3, raw, m, 1);
	buf[n++] = '"';
	buf[n++] = '}';
	buf[n++] = '\n';
	return (int)n;
}

void
log_write(int sys, int level, const char *fmt, ...)
{
	/* JSON: room for every byte of raw and of the context as a
	 * 6-byte escape. */
	char buf[2048 * 6 + LOG_CTX_MAX * 6 + 256], raw[2048];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	int n, m;

	gettimeofday(&tv, NULL);
	va_start(ap, fmt);
	m = vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	if (m > (int)sizeof(raw) - 1)
		m = sizeof(raw) - 1;
	if (log_format == LOG_FMT_JSON) {
		n = log_json_line(buf, sizeof(buf), &tv, sys, level, raw,
				  (size_t)m);
	} else {
		localtime_r(&tv.tv_sec, &tm);
		n = snprintf(buf, 2048, "%02d:%02d:%02d.%03d %s %s %s: ",
			     tm.tm_hour, tm.tm_min, tm.tm_sec,
			     (int)(tv.tv_usec / 1000), log_proc,
			     log_lvl_names[level], log_sys_names[sys]);
		if (log_ctx_len) {
			buf[n++] = '[';
			n += (int)log_escape(buf + n, 2048 - (size_t)n - 4,
					     log_ctx, log_ctx_len, 0);
			buf[n++] = ']';
			buf[n++] = ' ';
		}
		n += (int)log_escape(buf + n, 2048 - (size_t)n - 1, raw,
				     (size_t)m, 0);
		buf[n++] = '\n';
	}
	if (write(STDERR_FILENO, buf, n) < 0) {
		/* Nowhere left to report a failed log write. */
	}
}
