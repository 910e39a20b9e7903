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
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "lib/sip.h"

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

/*
 * The index just past the LF ending the line at pos; 0 if none, if a CR
 * stands alone before it, or if the line does not end as the start line
 * does (crlf: CRLF, else LF alone).  libosip2 ends a line at a lone CR
 * too, and where a message mixes line ends it may look for the end of
 * the headers elsewhere: the two would read different headers (found
 * by fuzz_core_splice).  crlf < 0: the start line, any end.
 */
static size_t
core_line_next(const char *s, size_t len, size_t pos, int crlf)
{
	const char *lf = memchr(s + pos, '\n', len - pos);
	size_t end;

	if (lf == NULL || (crlf < 0 && lf - s <= (ptrdiff_t)pos + 1))
		return 0;	/* none, or an empty start line */
	end = (size_t)(lf - s);
	if (end > pos && memchr(s + pos, '\r', end - pos - 1) != NULL)
		return 0;
	if (crlf >= 0 && (end > pos && s[end - 1] == '\r') != crlf)
		return 0;
	return end + 1;
}

/*
 * The index just past the start line, 0 if none.  Both forms (RFC 3261
 * 7.1, 7.2) hold two SPs: libosip2 finds them with strchr, so in a line
 * short of them it takes the next line for the rest of it, and the two
 * would read different headers (found by fuzz_core_splice).
 */
static size_t
core_start_next(const char *raw, size_t len)
{
	size_t pos = core_line_next(raw, len, 0, -1);
	const char *sp1;

	if (pos == 0)
		return 0;
	sp1 = memchr(raw, ' ', pos);
	if (sp1 == NULL ||
	    memchr(sp1 + 1, ' ', pos - (size_t)(sp1 + 1 - raw)) == NULL)
		return 0;
	return pos;
}

/* Whether the start line raw[0..pos) ends in CRLF. */
static int
core_crlf(const char *raw, size_t pos)
{
	return pos >= 2 && raw[pos - 2] == '\r';
}

/* The first comma in s[from..to) outside quoted strings (and outside
 * <...> when angle is set), or to. */
static size_t
core_next_comma(const char *s, size_t from, size_t to, int angle)
{
	int quoted = 0, depth = 0;

	/* Most fields hold one value: no comma, no walk. */
	if (from >= to || memchr(s + from, ',', to - from) == NULL)
		return to;
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

/* Drops up to *pending values from the front of the field
 * raw[fs..fe), whose value is raw[vs..ve); what is left of it (if
 * anything) goes to o.  Returns whether anything did. */
static int
core_pop_values(struct core_out *o, const char *raw, size_t fs, size_t vs,
		size_t ve, size_t fe, int *pending, int angle)
{
	size_t v = vs;

	if (*pending == 0) {
		core_out_put(o, raw + fs, fe - fs);
		return 1;
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
		return 0;	/* every value went: so does the field */
	core_out_put(o, raw + fs, vs - fs);
	core_out_put(o, raw + v, fe - v);
	return 1;
}

/* One header field: raw[fs..fe) with its line end and folded lines,
 * its name raw[fs..ne), its value raw[vs..ve) without surrounding LWS. */
struct core_field {
	size_t fs, ne, vs, ve, fe;
};

/* The field at *pos: 1 and *pos past it, 0 at the blank line ending
 * the headers (*pos on it), -EINVAL when the text ends first. */
static int
core_field_next(const char *raw, size_t len, size_t *pos, int crlf,
		struct core_field *f)
{
	size_t p = *pos, next;
	const char *colon;

	if (p >= len)
		return -EINVAL;
	if (crlf ? raw[p] == '\r' : raw[p] == '\n')
		return p + crlf < len && raw[p + crlf] == '\n' ? 0 : -EINVAL;
	if (raw[p] == '\n')
		return -EINVAL;		/* a blank line ending otherwise */
	f->fs = p;
	f->fe = core_line_next(raw, len, p, crlf);
	if (f->fe == 0)
		return -EINVAL;
	while (f->fe < len && (raw[f->fe] == ' ' || raw[f->fe] == '\t')) {
		next = core_line_next(raw, len, f->fe, crlf);
		if (next == 0)
			return -EINVAL;
		f->fe = next;
	}
	*pos = f->fe;
	/* A line without a colon (the edge refuses one) is not something
	 * to guess about: libosip2 may read the headers differently. */
	colon = memchr(raw + f->fs, ':', f->fe - f->fs);
	if (colon == NULL)
		return -EINVAL;
	f->ne = (size_t)(colon - raw);
	while (f->ne > f->fs && (raw[f->ne - 1] == ' ' || raw[f->ne - 1] == '\t'))
		f->ne--;
	/* An empty value sits right after the colon, before the line end. */
	f->vs = (size_t)(colon - raw) + 1;
	f->ve = f->fe;
	while (f->ve > f->vs && core_is_lws(raw[f->ve - 1]))
		f->ve--;
	while (f->vs < f->ve && core_is_lws(raw[f->vs]))
		f->vs++;
	return 1;
}

/* The fields the splices act on; CORE_F_OTHER for the rest. */
enum core_f {
	CORE_F_OTHER, CORE_F_FROM, CORE_F_TO, CORE_F_CALL_ID, CORE_F_CSEQ,
	CORE_F_VIA, CORE_F_ROUTE, CORE_F_MAX_FORWARDS
};

/* What the field's name says, without case and in compact form too.
 * Decided by its length first: one comparison per field, not one per
 * name looked for. */
static enum core_f
core_field_kind(const char *raw, const struct core_field *f)
{
	const char *s = raw + f->fs;

	switch (f->ne - f->fs) {
	case 1:
		switch (s[0]) {
		case 'f': case 'F': return CORE_F_FROM;
		case 't': case 'T': return CORE_F_TO;
		case 'i': case 'I': return CORE_F_CALL_ID;
		case 'v': case 'V': return CORE_F_VIA;
		}
		break;
	case 2:
		if (strncasecmp(s, "to", 2) == 0)
			return CORE_F_TO;
		break;
	case 3:
		if (strncasecmp(s, "via", 3) == 0)
			return CORE_F_VIA;
		break;
	case 4:
		if (strncasecmp(s, "from", 4) == 0)
			return CORE_F_FROM;
		if (strncasecmp(s, "cseq", 4) == 0)
			return CORE_F_CSEQ;
		break;
	case 5:
		if (strncasecmp(s, "route", 5) == 0)
			return CORE_F_ROUTE;
		break;
	case 7:
		if (strncasecmp(s, "call-id", 7) == 0)
			return CORE_F_CALL_ID;
		break;
	case 12:
		if (strncasecmp(s, "max-forwards", 12) == 0)
			return CORE_F_MAX_FORWARDS;
		break;
	}
	return CORE_F_OTHER;
}

int
core_splice(char *out, size_t cap, const char *raw, size_t len,
	    struct core_splice *sp)
{
	struct core_out o = { .buf = out, .cap = cap };
	int via = sp->via_pop, routes = sp->route_pop;
	int mf_done = sp->max_forwards < 0;
	struct core_field f;
	size_t pos, kept = sp->top_len;
	struct sip_cat b;
	char mf[32];
	int rc, crlf;

	sp->n_via = sp->n_route = 0;
	pos = core_start_next(raw, len);
	if (pos == 0)
		return -EINVAL;
	crlf = core_crlf(raw, pos);
	if (sp->start)
		core_out_put(&o, sp->start, sp->start_len);
	else
		core_out_put(&o, raw, pos);
	if (sp->top_len)
		core_out_put(&o, sp->top, sp->top_len);

	while ((rc = core_field_next(raw, len, &pos, crlf, &f)) > 0) {
		enum core_f kind = core_field_kind(raw, &f);

		if (kind == CORE_F_VIA) {
			sp->n_via += core_count_values(raw, f.vs, f.ve, 0);
			kept += core_pop_values(&o, raw, f.fs, f.vs, f.ve, f.fe,
						&via, 0);
			continue;
		}
		kept++;
		if (kind == CORE_F_ROUTE) {
			sp->n_route += core_count_values(raw, f.vs, f.ve, 1);
			kept -= !core_pop_values(&o, raw, f.fs, f.vs, f.ve,
						 f.fe, &routes, 1);
		} else if (!mf_done && kind == CORE_F_MAX_FORWARDS) {
			sip_cat_init(&b, mf, sizeof(mf));
			sip_cat_uint(&b, (unsigned)sp->max_forwards);
			core_out_put(&o, raw + f.fs, f.vs - f.fs);
			core_out_put(&o, mf, b.len);
			core_out_put(&o, raw + f.ve, f.fe - f.ve);
			mf_done = 1;
		} else {
			core_out_put(&o, raw + f.fs, f.fe - f.fs);
		}
	}
	if (rc < 0)
		return rc;		/* no end of headers */
	if (via > 0 || (routes > 0 && sp->route_pop != CORE_SPLICE_ROUTES_ALL))
		return -EINVAL;
	/* No header left: a message no parser reads the same way. */
	if (kept == 0 && mf_done)
		return -EINVAL;
	if (!mf_done) {
		sip_cat_init(&b, mf, sizeof(mf));
		sip_cat_mem(&b, "Max-Forwards: ", 14);
		sip_cat_uint(&b, (unsigned)sp->max_forwards);
		sip_cat_mem(&b, "\r\n", 2);
		core_out_put(&o, mf, b.len);
	}
	core_out_put(&o, raw + pos, len - pos);
	return o.err ? o.err : (int)o.len;
}

int
core_splice_reply(char *out, size_t cap, const char *raw, size_t len,
		  const struct core_splice_reply *rp)
{
	struct core_out o = { .buf = out, .cap = cap };
	int seen[CORE_F_CSEQ + 1] = { 0 }, vias = 0, rc, crlf;
	struct core_field f;
	size_t pos;

	pos = core_start_next(raw, len);
	if (pos == 0)
		return -EINVAL;
	crlf = core_crlf(raw, pos);
	core_out_put(&o, rp->start, strlen(rp->start));
	while ((rc = core_field_next(raw, len, &pos, crlf, &f)) > 0) {
		enum core_f kind = core_field_kind(raw, &f);

		if (kind == CORE_F_VIA) {
			vias += core_count_values(raw, f.vs, f.ve, 0);
			core_out_put(&o, raw + f.fs, f.fe - f.fs);
			continue;
		}
		if (kind == CORE_F_OTHER || kind > CORE_F_CSEQ)
			continue;
		seen[kind]++;
		if (kind == CORE_F_TO && rp->to_tag) {
			core_out_put(&o, raw + f.fs, f.ve - f.fs);
			core_out_put(&o, ";tag=", 5);
			core_out_put(&o, rp->to_tag, strlen(rp->to_tag));
			core_out_put(&o, raw + f.ve, f.fe - f.ve);
		} else {
			core_out_put(&o, raw + f.fs, f.fe - f.fs);
		}
	}
	if (rc < 0)
		return rc;
	/* One of each, as libosip2 read them, or the copy could differ. */
	if (vias != rp->n_via || seen[CORE_F_FROM] != 1 ||
	    seen[CORE_F_TO] != 1 || seen[CORE_F_CALL_ID] != 1 ||
	    seen[CORE_F_CSEQ] != 1)
		return -EINVAL;
	core_out_put(&o, rp->tail, rp->tail_len);
	return o.err ? o.err : (int)o.len;
}
