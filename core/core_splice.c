/*
 * core_splice.c - the forwarded copy of a message by editing its bytes
 * (see core_splice.h).
 *
 * One pass over the header fields of the received text: a field is its
 * line plus the lines that start with SP/HT (RFC 3261 7.3.1 folding);
 * its name is what precedes the colon, compared without case and in
 * compact form too ("v" is Via).  A field with several values ("Via: a,
 * b") loses only the values removed: values are split at commas outside
 * quoted strings and, for Route, outside <...>.  Fields the edits do not
 * touch are copied as they are, so the cost is one memcpy of the message
 * plus the scan, with no allocation.
 */
#include "core/core_splice.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct core_out {
	char *buf;
	size_t cap, len;
	int err;
};

static void
core_out_put(struct core_out *o, const char *s, size_t n)
{
	if (o->err)
		return;
	if (n > o->cap - o->len) {
		o->err = -ENOSPC;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static int
core_is_lws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The index just past the LF ending the line at pos, or 0 if none. */
static size_t
core_line_next(const char *s, size_t len, size_t pos)
{
	const char *lf = memchr(s + pos, '\n', len - pos);

	return lf ? (size_t)(lf - s) + 1 : 0;
}

/* The first comma in s[from..to) outside quoted strings (and outside
 * <...> when angle is set), or to. */
static size_t
core_next_comma(const char *s, size_t from, size_t to, int angle)
{
	int quoted = 0, depth = 0;

	for (size_t i = from; i < to; i++) {
		char c = s[i];

		if (quoted) {
			if (c == '\\')
				i++;
			else if (c == '"')
				quoted = 0;
		} else if (c == '"') {
			quoted = 1;
		} else if (angle && c == '<') {
			depth++;
		} else if (angle && c == '>' && depth > 0) {
			depth--;
		} else if (c == ',' && depth == 0) {
			return i;
		}
	}
	return to;
}

/* How many comma-separated values s[from..to) holds. */
static int
core_count_values(const char *s, size_t from, size_t to, int angle)
{
	int n = 0;

	while (from < to) {
		n++;
		from = core_next_comma(s, from, to, angle) + 1;
	}
	return n;
}

static int
core_name_is(const char *s, size_t n, const char *name, const char *compact)
{
	return (n == strlen(name) && strncasecmp(s, name, n) == 0) ||
	       (compact && n == strlen(compact) &&
		strncasecmp(s, compact, n) == 0);
}

/* Drops up to *pending values from the front of the field
 * raw[fs..fe), whose value is raw[vs..ve); what is left of it (if
 * anything) goes to o. */
static void
core_pop_values(struct core_out *o, const char *raw, size_t fs, size_t vs,
		size_t ve, size_t fe, int *pending, int angle)
{
	size_t v = vs;

	if (*pending == 0) {
		core_out_put(o, raw + fs, fe - fs);
		return;
	}
	while (*pending > 0 && v < ve) {
		v = core_next_comma(raw, v, ve, angle);
		if (v < ve)
			v++;
		while (v < ve && core_is_lws(raw[v]))
			v++;
		(*pending)--;
	}
	if (v >= ve)
		return;		/* every value went: so does the field */
	core_out_put(o, raw + fs, vs - fs);
	core_out_put(o, raw + v, fe - v);
}

int
core_splice(char *out, size_t cap, const char *raw, size_t len,
	    struct core_splice *sp)
{
	struct core_out o = { .buf = out, .cap = cap };
	int via = sp->via_pop, routes = sp->route_pop;
	int mf_done = sp->max_forwards < 0;
	size_t pos, next;
	char mf[32];
	int n;

	sp->n_via = sp->n_route = 0;
	pos = core_line_next(raw, len, 0);
	if (pos == 0)
		return -EINVAL;
	if (sp->start)
		core_out_put(&o, sp->start, sp->start_len);
	else
		core_out_put(&o, raw, pos);
	if (sp->top_len)
		core_out_put(&o, sp->top, sp->top_len);

	for (;;) {
		size_t fs = pos, fe, vs, ve, name_end;
		const char *colon;

		if (pos >= len)
			return -EINVAL;		/* no end of headers */
		if (raw[pos] == '\n' ||
		    (raw[pos] == '\r' && pos + 1 < len && raw[pos + 1] == '\n'))
			break;
		fe = core_line_next(raw, len, pos);
		if (fe == 0)
			return -EINVAL;
		while (fe < len && (raw[fe] == ' ' || raw[fe] == '\t')) {
			next = core_line_next(raw, len, fe);
			if (next == 0)
				return -EINVAL;
			fe = next;
		}
		pos = fe;
		colon = memchr(raw + fs, ':', fe - fs);
		if (colon == NULL) {
			core_out_put(&o, raw + fs, fe - fs);
			continue;
		}
		name_end = (size_t)(colon - raw);
		while (name_end > fs && (raw[name_end - 1] == ' ' ||
					 raw[name_end - 1] == '\t'))
			name_end--;
		vs = (size_t)(colon - raw) + 1;
		while (vs < fe && core_is_lws(raw[vs]))
			vs++;
		ve = fe;
		while (ve > vs && core_is_lws(raw[ve - 1]))
			ve--;

		if (core_name_is(raw + fs, name_end - fs, "via", "v")) {
			sp->n_via += core_count_values(raw, vs, ve, 0);
			core_pop_values(&o, raw, fs, vs, ve, fe, &via, 0);
		} else if (core_name_is(raw + fs, name_end - fs, "route", NULL)) {
			sp->n_route += core_count_values(raw, vs, ve, 1);
			core_pop_values(&o, raw, fs, vs, ve, fe, &routes, 1);
		} else if (!mf_done && core_name_is(raw + fs, name_end - fs,
						     "max-forwards", NULL)) {
			n = snprintf(mf, sizeof(mf), "%d", sp->max_forwards);
			core_out_put(&o, raw + fs, vs - fs);
			core_out_put(&o, mf, (size_t)n);
			core_out_put(&o, raw + ve, fe - ve);
			mf_done = 1;
		} else {
			core_out_put(&o, raw + fs, fe - fs);
		}
	}
	if (via > 0 || (routes > 0 && sp->route_pop != CORE_SPLICE_ROUTES_ALL))
		return -EINVAL;
	if (!mf_done) {
		n = snprintf(mf, sizeof(mf), "Max-Forwards: %d\r\n",
			     sp->max_forwards);
		core_out_put(&o, mf, (size_t)n);
	}
	core_out_put(&o, raw + pos, len - pos);
	return o.err ? o.err : (int)o.len;
}
