/*
 * log.h - the one logging API of every sipmesh process.
 *
 * Each subsystem has its own level so that, say, transaction debugging
 * can be switched on without drowning in edge traffic.  The level is
 * checked in the macro, before any argument is evaluated, so a debug
 * line on the hot path costs one compare when it is off (redis
 * serverLog).  Lines go to stderr, one write(2) each, prefixed with a
 * monotonic-ish wall clock, the process name and the subsystem.
 */
#ifndef SM_LOG_H
#define SM_LOG_H

#include <stddef.h>

enum log_level {
	LOG_LVL_ERR = 0,
	LOG_LVL_WARN,
	LOG_LVL_NOTICE,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

enum log_sys {
	LOG_SYS_MAIN = 0,
	LOG_SYS_CFG,
	LOG_SYS_NET,	/* sockets, nanomsg, envelopes */
	LOG_SYS_SIP,	/* parsing, routing */
	LOG_SYS_TXN,	/* transactions and timers */
	LOG_SYS_REG,	/* registrar */
	LOG_SYS_LOC,	/* location store, Redis */
	LOG_SYS_RTP,	/* rtpctl, rtpengine */
	LOG_SYS__COUNT
};

extern int log_levels[LOG_SYS__COUNT];

/* Sets the process name printed on every line; borrows the string. */
void log_init(const char *procname, int level);

/* Sets one subsystem's level, or all of them with sys < 0. */
void log_set_level(int sys, int level);

/* Parses "err", "warn", "notice", "info", "debug"; returns -1 if unknown. */
int log_level_parse(const char *name);

/*
 * Sets levels per subsystem from spec: "sys:level" items separated by
 * spaces or commas ("txn:debug loc:info"), sys one of main, cfg, net,
 * sip, txn, reg, loc, rtp, or "all".  All or nothing: an unknown name
 * changes no level.  Returns 0 or -EINVAL.
 */
int log_levels_set(const char *spec);

/* Writes the levels as log_levels_set() reads them; returns the length
 * snprintf would (cap 0: just that). */
int log_levels_str(char *out, size_t cap);

/*
 * Line format: plain (the default, for a terminal) or JSON lines, one
 * object per line with ts (UTC, ISO 8601), proc, level, sys, call_id
 * (when a context is set) and msg, for a log shipper reading the
 * journal.  Control bytes and bytes past ASCII are \u escapes there.
 */
enum log_format { LOG_FMT_PLAIN = 0, LOG_FMT_JSON };
void log_set_format(int format);
int log_format_get(void);
/* "plain" or "json" to enum log_format; -1 if unknown. */
int log_format_parse(const char *name);

void log_write(int sys, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_at(sys, lvl, ...) \
	do { \
		if ((lvl) <= log_levels[(sys)]) \
			log_write((sys), (lvl), __VA_ARGS__); \
	} while (0)

#define log_err(sys, ...)    log_at(sys, LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(sys, ...)   log_at(sys, LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(sys, ...) log_at(sys, LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(sys, ...)   log_at(sys, LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(sys, ...)  log_at(sys, LOG_LVL_DEBUG, __VA_ARGS__)

/*
 * Lines about a call carry its Call-ID (rtpengine log_d.h).  Two ways:
 *
 * The per-call context: log_ctx_set() while a message or a timer of a
 * call is being handled, log_ctx_clear() when done; meanwhile every
 * line, whoever writes it, reads "<subsystem>: [<cid>] ...", so the
 * code in between does not format the Call-ID itself.  The Call-ID is
 * copied (up to LOG_CTX_MAX bytes), so the message may be freed while
 * the context is set.  A process is one thread: one context at a time;
 * setting replaces it.
 *
 * log_call: one line with an explicit Call-ID slice {const char *, int
 * len}, for code that handles many calls at once (the edge, rtpctl).
 */
#define LOG_CTX_MAX 128

void log_ctx_set(const char *cid, size_t len);
void log_ctx_clear(void);

#define log_call(sys, lvl, cid, cidlen, fmt, ...) \
	log_at(sys, lvl, "[%.*s] " fmt, (int)(cidlen), (cid), ##__VA_ARGS__)

#endif
