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
	/* Only the first field can start so (later folds are their
	 * field's): libosip2 joins it to the start line. */
	if (raw[p] == ' ' || raw[p] == '\t')
		return -EINVAL;
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
	CORE_F_VIA, CORE_F_ROUTE, CORE_F_MAX_FORWARDS, CORE_F_CONTENT_LENGTH,
	CORE_F_CONTACT, CORE_F_CONTENT_TYPE
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
		case 'l': case 'L': return CORE_F_CONTENT_LENGTH;
		case 'm': case 'M': return CORE_F_CONTACT;
		case 'c': case 'C': return CORE_F_CONTENT_TYPE;
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
		if (strncasecmp(s, "contact", 7) == 0)
			return CORE_F_CONTACT;
		break;
	case 12:
		if (strncasecmp(s, "max-forwards", 12) == 0)
			return CORE_F_MAX_FORWARDS;
		if (strncasecmp(s, "content-type", 12) == 0)
			return CORE_F_CONTENT_TYPE;
		break;
	case 14:
		if (strncasecmp(s, "content-length", 14) == 0)
			return CORE_F_CONTENT_LENGTH;
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

/* Copies the line raw[fs..fe) into a response, with ";tag=" to_tag
 * after its value (ending at ve) when to_tag is set. */
static void
core_reply_copy(struct core_out *o, const char *raw, size_t fs, size_t fe,
		size_t ve, const char *to_tag)
{
	if (to_tag == NULL) {
		core_out_put(o, raw + fs, fe - fs);
		return;
	}
	core_out_put(o, raw + fs, ve - fs);
	core_out_put(o, ";tag=", 5);
	core_out_put(o, to_tag, strlen(to_tag));
	core_out_put(o, raw + ve, fe - ve);
}

int
core_splice_reply_lines(char *out, size_t cap, const char *raw,
			const struct core_reply_line *ln, int n,
			const struct core_splice_reply *rp)
{
	struct core_out o = { .buf = out, .cap = cap };

	core_out_put(&o, rp->start, strlen(rp->start));
	for (int i = 0; i < n; i++)
		core_reply_copy(&o, raw, ln[i].fs, ln[i].fe, ln[i].ve,
				ln[i].to ? rp->to_tag : NULL);
	core_out_put(&o, rp->tail, rp->tail_len);
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

		if (kind == CORE_F_VIA)
			vias += core_count_values(raw, f.vs, f.ve, 0);
		else if (kind == CORE_F_OTHER || kind > CORE_F_CSEQ)
			continue;
		else
			seen[kind]++;
		core_reply_copy(&o, raw, f.fs, f.fe, f.ve,
				kind == CORE_F_TO ? rp->to_tag : NULL);
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

/*
 * The response scan.  It reads only what the core matches a response
 * by, and only in forms libosip2 cannot read otherwise; anything else
 * is refused and the caller parses with libosip2.  Where libosip2
 * would differ: it fails the whole message on a Via, From, To, Contact
 * or Content-Type it cannot read, and on a second From, To, Call-ID,
 * CSeq or Content-Type; it trims blanks inside a Call-ID, reads a
 * folded value joined and stops at a NUL.  So those fields must have
 * the plain forms below, one line each, and the values read hold no
 * blank.  Checked against libosip2 by tests/fuzz/fuzz_core_resp.c.
 * Cost: one walk of the header fields, the Via, From, To and Contact
 * values read once through a table of character classes.
 */

/* Character classes of the plain forms. */
enum {
	CORE_C_DIGIT = 1,
	CORE_C_ALNUM = 2,
	CORE_C_TOKEN = 4,	/* RFC 3261 25.1 token */
	CORE_C_HOST = 8,	/* a host name or IPv4 address */
	CORE_C_V6 = 16,		/* inside [...] */
	CORE_C_PVALUE = 32,	/* a parameter value: token or address */
	CORE_C_USER = 64,	/* a SIP URI's user part, no ',' ';' '?' */
};

#define CORE_C_NAME (CORE_C_ALNUM | CORE_C_TOKEN | CORE_C_HOST | \
		     CORE_C_PVALUE | CORE_C_USER)
#define CORE_C_MARK (CORE_C_TOKEN | CORE_C_PVALUE | CORE_C_USER)

static const unsigned char core_cls[256] = {
	['0' ... '9'] = CORE_C_NAME | CORE_C_DIGIT | CORE_C_V6,
	['a' ... 'f'] = CORE_C_NAME | CORE_C_V6,
	['A' ... 'F'] = CORE_C_NAME | CORE_C_V6,
	['g' ... 'z'] = CORE_C_NAME,
	['G' ... 'Z'] = CORE_C_NAME,
	['.'] = CORE_C_MARK | CORE_C_HOST | CORE_C_V6,
	['-'] = CORE_C_MARK | CORE_C_HOST,
	['!'] = CORE_C_MARK, ['%'] = CORE_C_MARK, ['*'] = CORE_C_MARK,
	['_'] = CORE_C_MARK, ['+'] = CORE_C_MARK, ['`'] = CORE_C_MARK,
	['\''] = CORE_C_MARK, ['~'] = CORE_C_MARK,
	[':'] = CORE_C_V6 | CORE_C_PVALUE,
	['['] = CORE_C_PVALUE, [']'] = CORE_C_PVALUE,
	['&'] = CORE_C_USER, ['='] = CORE_C_USER, ['$'] = CORE_C_USER,
	['/'] = CORE_C_USER, ['('] = CORE_C_USER, [')'] = CORE_C_USER,
};

/* Past the run of characters of class cls at s[i..to). */
static size_t
core_span(const char *s, size_t i, size_t to, unsigned cls)
{
	while (i < to && core_cls[(unsigned char)s[i]] & cls)
		i++;
	return i;
}

static size_t
core_span_blank(const char *s, size_t i, size_t to)
{
	while (i < to && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i;
}

/* The host and optional port at s[i..to): a name, IPv4 or [IPv6]; the
 * index past them, 0 when there is none. */
static size_t
core_host_port(const char *s, size_t i, size_t to)
{
	size_t j;

	if (i < to && s[i] == '[') {
		j = core_span(s, i + 1, to, CORE_C_V6);
		if (j == i + 1 || j >= to || s[j] != ']')
			return 0;
		i = j + 1;
	} else {
		j = core_span(s, i, to, CORE_C_HOST);
		if (j == i)
			return 0;
		i = j;
	}
	if (i < to && s[i] == ':') {
		j = core_span(s, i + 1, to, CORE_C_DIGIT);
		if (j == i + 1 || j - i - 1 > 5)
			return 0;
		i = j;
	}
	return i;
}

/* One ";<name>[=<value>]" at s[i..to) (s[i] is ';'): the index past
 * it, 0 when malformed.  *ne: the end of the name; *v: the start of the
 * value (*ne when none). */
static size_t
core_param(const char *s, size_t i, size_t to, size_t *ne, size_t *v)
{
	*ne = core_span(s, i + 1, to, CORE_C_TOKEN);
	if (*ne == i + 1)
		return 0;
	*v = *ne;
	if (*ne >= to || s[*ne] != '=')
		return *ne;
	*v = *ne + 1;
	i = core_span(s, *v, to, CORE_C_PVALUE);
	return i == *v ? 0 : i;
}

/* Past the parameters at s[i..to) (maybe none); 0 on a malformed one
 * (or when i is 0). */
static size_t
core_params(const char *s, size_t i, size_t to)
{
	size_t ne, v;

	while (i != 0 && i < to && s[i] == ';')
		i = core_param(s, i, to, &ne, &v);
	return i;
}

/*
 * A plain Via value at s[i..to), "SIP/2.0/<transport> SP <host>
 * [:<port>] *(;<name>[=<value>])", no blank but the one SP: the index
 * past it, 0 when not one.  The branch parameter's value goes to *br
 * (NULL when none); a second one, or "branch" in other case, is
 * refused.
 */
static size_t
core_via_plain(const char *s, size_t i, size_t to, const char **br,
	       size_t *br_len)
{
	size_t j, ne, v;

	*br = NULL;
	if (to - i < 8 || memcmp(s + i, "SIP/2.0/", 8) != 0)
		return 0;
	j = core_span(s, i + 8, to, CORE_C_ALNUM);
	if (j == i + 8 || j >= to || s[j] != ' ')
		return 0;
	i = core_host_port(s, j + 1, to);
	while (i != 0 && i < to && s[i] == ';') {
		size_t name = i + 1;

		i = core_param(s, i, to, &ne, &v);
		if (i == 0 || ne - name != 6 ||
		    strncasecmp(s + name, "branch", 6) != 0)
			continue;
		/* libosip2 may match the name with or without case and
		 * takes the first: one, as we write it, with a value. */
		if (*br || v == ne || memcmp(s + name, "branch", 6) != 0)
			return 0;
		*br = s + v;
		*br_len = i - v;
	}
	return i;
}

/* The parts of a plain name-addr (core_addr_uri): offsets in s. */
struct core_addr {
	size_t uri, uri_end;	/* the URI, between '<' and '>' */
	size_t user, user_end;	/* user == user_end: none */
	size_t host, host_end;	/* without the port */
};

/*
 * A plain name-addr up to its '>' at s[i..to), "[<display>] <sip:
 * [<user>@]<host>[:<port>]*(;<param>)>", the display name quoted (no
 * escape, no comma) or tokens and SPs: the index past the '>', its
 * parts in *a; 0 when not one.
 */
static size_t
core_addr_uri(const char *s, size_t i, size_t to, struct core_addr *a)
{
	size_t j;

	if (i < to && s[i] == '"') {
		for (j = i + 1; j < to && s[j] != '"'; j++)
			if (s[j] == '\\' || s[j] == ',' || s[j] == '\r' ||
			    s[j] == '\n')
				return 0;
		if (j >= to)
			return 0;
		i = j + 1;
	} else {
		while (i < to && (core_cls[(unsigned char)s[i]] & CORE_C_TOKEN ||
				  s[i] == ' '))
			i++;
	}
	while (i < to && s[i] == ' ')
		i++;
	if (i >= to || s[i] != '<')
		return 0;
	a->uri = ++i;
	if (to - i >= 4 && strncasecmp(s + i, "sip:", 4) == 0)
		i += 4;
	else if (to - i >= 5 && strncasecmp(s + i, "sips:", 5) == 0)
		i += 5;
	else
		return 0;
	a->user = a->user_end = i;
	j = core_span(s, i, to, CORE_C_USER);
	if (j < to && s[j] == '@') {
		if (j == i)
			return 0;
		a->user_end = j;
		i = j + 1;
	}
	a->host = i;
	a->host_end = i < to && s[i] == '[' ? core_span(s, i + 1, to, CORE_C_V6) + 1 :
		      core_span(s, i, to, CORE_C_HOST);
	i = core_params(s, core_host_port(s, i, to), to);
	/* libosip2 fails on "<sip:x>": nothing that short. */
	if (i == 0 || i >= to || s[i] != '>' || i - a->uri < 6)
		return 0;
	a->uri_end = i;
	return i + 1;
}

/* A plain name-addr with its parameters at s[i..to) (core_addr_uri,
 * then token or address values): the index past it, 0 when not one. */
static size_t
core_addr_plain(const char *s, size_t i, size_t to)
{
	struct core_addr a;

	i = core_addr_uri(s, i, to, &a);
	return i ? core_params(s, i, to) : 0;
}

/*
 * After a value of a comma-separated list ending at s[*i], the list's
 * end at to: 1 and *i at the next value (past the comma and blanks;
 * the value's reader refuses an empty one), 0 at the end of the list,
 * -1 when anything else follows the value.
 */
static int
core_list_next(const char *s, size_t *i, size_t to)
{
	size_t j = core_span_blank(s, *i, to);

	if (j == to)
		return 0;
	if (s[j] != ',')
		return -1;
	*i = core_span_blank(s, j + 1, to);
	return 1;
}

/*
 * The values of the field f, each read by one (core_via_plain with the
 * branch to *br, or core_addr_plain when br is NULL), separated by a
 * comma and blanks: how many, 0 when one is not plain.  *second: where
 * the second value starts (f->fe when there is none).
 */
static int
core_scan_values(const char *raw, const struct core_field *f,
		 const char **br, size_t *br_len, size_t *second)
{
	size_t v = f->vs;
	int n = 0, rc;

	*second = f->fe;
	for (;;) {
		const char *b = NULL;
		size_t bl = 0, e;

		e = br ? core_via_plain(raw, v, f->ve, &b, &bl) :
			 core_addr_plain(raw, v, f->ve);
		if (e == 0)
			return 0;
		if (br && n == 0) {
			*br = b;
			*br_len = bl;
		}
		n++;
		v = e;
		rc = core_list_next(raw, &v, f->ve);
		if (rc <= 0)
			return rc == 0 ? n : 0;
		if (n == 1)
			*second = v;
	}
}

/* The Via field f: its values counted into sc; the top one's branch
 * and where it lies (the whole field when alone) from the first. */
static int
core_scan_vias(const char *raw, const struct core_field *f,
	       struct core_scan *sc)
{
	const char *br = NULL;
	size_t br_len = 0, second;
	int n = core_scan_values(raw, f, &br, &br_len, &second);

	if (n == 0)
		return 0;
	if (sc->n_via == 0) {
		if (br == NULL)
			return 0;
		sc->branch = br;
		sc->branch_len = br_len;
		sc->cut = n == 1 ? f->fs : f->vs;
		sc->cut_len = (n == 1 ? f->fe : second) - sc->cut;
	}
	sc->n_via += n;
	return 1;
}

/* "<type>/<subtype>*(;<param>)", the type not multipart: libosip2
 * splits a multipart body into its parts and fails the message on one
 * it cannot split (found by fuzz_core_resp). */
static int
core_scan_ctype(const char *raw, const struct core_field *f)
{
	size_t i = core_span(raw, f->vs, f->ve, CORE_C_TOKEN), j;

	if (i == f->vs || i >= f->ve || raw[i] != '/' ||
	    (i - f->vs == 9 && strncasecmp(raw + f->vs, "multipart", 9) == 0))
		return 0;
	j = core_span(raw, i + 1, f->ve, CORE_C_TOKEN);
	return j > i + 1 && core_params(raw, j, f->ve) == f->ve;
}

/* "<digits> SP <method>" as one token each. */
static int
core_scan_cseq(const char *raw, const struct core_field *f,
	       struct core_scan *sc)
{
	size_t i = core_span(raw, f->vs, f->ve, CORE_C_DIGIT);

	if (i == f->vs || i - f->vs > 10 || i >= f->ve || raw[i] != ' ')
		return 0;
	sc->method = raw + i + 1;
	sc->method_len = f->ve - i - 1;
	return sc->method_len > 0 &&
	       core_span(raw, i + 1, f->ve, CORE_C_TOKEN) == f->ve;
}

/* A Call-ID without blanks, not starting with '@' (libosip2 needs a
 * part before it), and so read by libosip2 as the same bytes. */
static int
core_scan_call_id(const char *raw, const struct core_field *f,
		  struct core_scan *sc)
{
	sc->call_id = raw + f->vs;
	sc->call_id_len = f->ve - f->vs;
	if (sc->call_id_len == 0 || raw[f->vs] == '@')
		return 0;
	for (size_t i = f->vs; i < f->ve; i++)
		if (core_is_lws(raw[i]))
			return 0;
	return 1;
}

/* Whether a line folded into a field, from the LF at lf to end, is
 * blank (SP and HT only). */
static int
core_fold_blank(const char *lf, const char *end)
{
	while (lf != NULL && lf + 1 < end) {
		const char *p = lf + 1;

		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p < end && (*p == '\r' || *p == '\n'))
			return 1;
		lf = memchr(p, '\n', (size_t)(end - p));
	}
	return 0;
}

/* One field of a response: 0 when read (or not to be read), -EINVAL
 * when libosip2 might read it otherwise. */
static int
core_scan_field(const char *raw, const struct core_field *f,
		enum core_f kind, struct core_scan *sc, size_t *cl)
{
	const char *lf = memchr(raw + f->fs, '\n', f->fe - f->fs - 1);
	int read = kind != CORE_F_OTHER && kind != CORE_F_ROUTE &&
		   kind != CORE_F_MAX_FORWARDS;
	size_t i;

	if (f->ne == f->fs)
		return -EINVAL;	/* libosip2 fails on no name */
	/* Folded: libosip2 reads the lines joined (a name folded too may
	 * be one it reads), and fails on a blank line folded in before
	 * another one. */
	if (lf && (read || lf < raw + f->ne ||
		   core_fold_blank(lf, raw + f->fe)))
		return -EINVAL;
	if (!read || (f->ve == f->vs && kind != CORE_F_VIA &&
		      kind != CORE_F_CALL_ID && kind != CORE_F_CSEQ &&
		      kind != CORE_F_CONTENT_LENGTH))
		return 0;	/* not read, or empty: libosip2 skips it */
	switch (kind) {
	case CORE_F_VIA:
		return core_scan_vias(raw, f, sc) ? 0 : -EINVAL;
	case CORE_F_CALL_ID:
		return core_scan_call_id(raw, f, sc) ? 0 : -EINVAL;
	case CORE_F_CSEQ:
		return core_scan_cseq(raw, f, sc) ? 0 : -EINVAL;
	case CORE_F_CONTENT_TYPE:
		return core_scan_ctype(raw, f) ? 0 : -EINVAL;
	case CORE_F_CONTENT_LENGTH:
		i = core_span(raw, f->vs, f->ve, CORE_C_DIGIT);
		if (i == f->vs || i != f->ve || f->ve - f->vs > 9)
			return -EINVAL;
		for (*cl = 0, i = f->vs; i < f->ve; i++)
			*cl = *cl * 10 + (size_t)(raw[i] - '0');
		return 0;
	default:	/* From, To, Contact */
		return core_scan_values(raw, f, NULL, NULL, &i) ? 0 : -EINVAL;
	}
}

int
core_splice_scan(const char *raw, size_t len, struct core_scan *sc)
{
	int seen[CORE_F_CONTENT_TYPE + 1] = { 0 };
	size_t pos = core_start_next(raw, len), cl = 0;
	struct core_field f;
	int rc, crlf;

	memset(sc, 0, sizeof(*sc));
	if (pos < 14 || memcmp(raw, "SIP/2.0 ", 8) != 0 ||
	    raw[8] < '1' || raw[8] > '6' ||
	    core_span(raw, 9, 11, CORE_C_DIGIT) != 11 || raw[11] != ' ')
		return -EINVAL;
	sc->code = (raw[8] - '0') * 100 + (raw[9] - '0') * 10 + raw[10] - '0';
	crlf = core_crlf(raw, pos);
	while ((rc = core_field_next(raw, len, &pos, crlf, &f)) > 0) {
		enum core_f kind = core_field_kind(raw, &f);

		if (core_scan_field(raw, &f, kind, sc, &cl) != 0)
			return -EINVAL;
		seen[kind]++;
	}
	/* libosip2 fails the message on a second From, To, Call-ID, CSeq
	 * or Content-Type. */
	if (rc < 0 || sc->n_via == 0 || seen[CORE_F_CALL_ID] != 1 ||
	    seen[CORE_F_CSEQ] != 1 || seen[CORE_F_CONTENT_LENGTH] > 1 ||
	    seen[CORE_F_FROM] > 1 || seen[CORE_F_TO] > 1 ||
	    seen[CORE_F_CONTENT_TYPE] > 1)
		return -EINVAL;
	/* libosip2 stops at a NUL in the headers. */
	if (memchr(raw, '\0', pos) != NULL)
		return -EINVAL;
	pos += crlf ? 2 : 1;
	sc->body_len = len - pos;
	/* A body other than Content-Length says is framed otherwise by
	 * libosip2 (or not at all, without the header). */
	if (seen[CORE_F_CONTENT_LENGTH] ? cl != sc->body_len : sc->body_len)
		return -EINVAL;
	return 0;
}

int
core_splice_scanned(char *out, size_t cap, const char *raw, size_t len,
		    const struct core_scan *sc)
{
	size_t n = len - sc->cut_len;

	if (n > cap)
		return -ENOSPC;
	memcpy(out, raw, sc->cut);
	memcpy(out + sc->cut, raw + sc->cut + sc->cut_len,
	       len - sc->cut - sc->cut_len);
	return (int)n;
}

/*
 * The REGISTER scan.  A REGISTER is the most common request and the
 * registrar reads little of it: the To, Call-ID, CSeq, Expires,
 * User-Agent and each Contact's URI and four parameters.  As with the
 * response scan, only forms libosip2 cannot read otherwise are taken,
 * and whatever the registrar would refuse is left to the parsed path
 * to answer.  Checked against libosip2 by tests/fuzz/fuzz_core_reg.c.
 */

/* Headers libosip2 parses into structures of their own (and so may
 * fail the message on), other than those the scan reads. */
static const char *const core_osip_parsed[] = {
	"accept", "accept-encoding", "accept-language", "alert-info",
	"authentication-info", "call-info",
	"content-encoding", "e", "error-info", "mime-version",
	"proxy-authenticate", "proxy-authentication-info",
	"proxy-authorization", "record-route", "www-authenticate",
};

enum core_rf {
	CORE_RF_OTHER, CORE_RF_EXPIRES, CORE_RF_USER_AGENT, CORE_RF_ALLOW,
	CORE_RF_AUTHORIZATION, CORE_RF_PARSED
};

/* What the name of a field core_field_kind does not know says. */
static enum core_rf
core_reg_field_kind(const char *raw, const struct core_field *f)
{
	const char *s = raw + f->fs;
	size_t n = f->ne - f->fs;

	if (n == 7 && strncasecmp(s, "expires", 7) == 0)
		return CORE_RF_EXPIRES;
	if (n == 10 && strncasecmp(s, "user-agent", 10) == 0)
		return CORE_RF_USER_AGENT;
	if (n == 5 && strncasecmp(s, "allow", 5) == 0)
		return CORE_RF_ALLOW;
	if (n == 13 && strncasecmp(s, "authorization", 13) == 0)
		return CORE_RF_AUTHORIZATION;
	for (size_t i = 0; i < sizeof(core_osip_parsed) /
			       sizeof(*core_osip_parsed); i++)
		if (strlen(core_osip_parsed[i]) == n &&
		    strncasecmp(s, core_osip_parsed[i], n) == 0)
			return CORE_RF_PARSED;
	return CORE_RF_OTHER;
}

/* A number of at most digits digits filling s[i..to): its value, or
 * -1. */
static long
core_number(const char *s, size_t i, size_t to, size_t digits)
{
	long v = 0;

	if (i == to || to - i > digits ||
	    core_span(s, i, to, CORE_C_DIGIT) != to)
		return -1;
	for (; i < to; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/*
 * One header parameter ";<name>[=<value>]" at s[i..to) (s[i] is ';'),
 * the value a token, an address or a quoted string without escapes,
 * ';' or ',': the index past it, 0 when malformed.  *ne: the end of
 * the name; *v: the start of the value (*ne when none).
 */
static size_t
core_hparam(const char *s, size_t i, size_t to, size_t *ne, size_t *v)
{
	size_t j;

	if (*ne = core_span(s, i + 1, to, CORE_C_TOKEN), *ne == i + 1)
		return 0;
	*v = *ne;
	if (*ne >= to || s[*ne] != '=')
		return *ne;
	*v = *ne + 1;
	if (*v < to && s[*v] == '"') {
		for (j = *v + 1; j < to && s[j] != '"'; j++)
			if (s[j] == '\\' || s[j] == ';' || s[j] == ',')
				return 0;
		return j < to ? j + 1 : 0;
	}
	j = core_span(s, *v, to, CORE_C_PVALUE);
	return j == *v ? 0 : j;
}

/* Sets *val to the parameter's value (*len 0: none) when its name
 * s[n..ne) is want (without case) and none was found before: libosip2
 * takes the first, with a value or not. */
static void
core_hparam_take(const char *s, size_t n, size_t ne, size_t v, size_t e,
		 const char *want, const char **val, size_t *len)
{
	size_t wl = strlen(want);

	if (*val == NULL && ne - n == wl && strncasecmp(s + n, want, wl) == 0) {
		*val = s + v;
		*len = e - v;
	}
}

/* Whether a URI s[a..b) holds what libosip2 would unescape or escape
 * when it reads it and writes it back, or a parameter it drops there
 * (x-obp and x-obr, eXosip's; found by fuzz_core_reg). */
static int
core_uri_rewritten(const char *s, size_t a, size_t b)
{
	if (memchr(s + a, '%', b - a) != NULL ||
	    memchr(s + a, '`', b - a) != NULL)
		return 1;
	for (size_t i = a; i + 5 <= b; i++)
		if (s[i] == ';' && strncasecmp(s + i + 1, "x-ob", 4) == 0)
			return 1;
	return 0;
}

/* The From or To field f: its one value, its tag to *tag (first
 * "tag", any case; none: NULL), its parts to *a. */
static int
core_reg_addr(const char *raw, const struct core_field *f,
	      struct core_addr *a, const char **tag, size_t *tag_len)
{
	size_t i = core_addr_uri(raw, f->vs, f->ve, a), n, ne, v;

	*tag = NULL;
	while (i != 0 && i < f->ve && raw[i] == ';') {
		n = i + 1;
		i = core_hparam(raw, i, f->ve, &ne, &v);
		if (i != 0)
			core_hparam_take(raw, n, ne, v, i, "tag", tag, tag_len);
	}
	if (i != f->ve || core_uri_rewritten(raw, a->uri, a->uri_end))
		return -EINVAL;
	/* a quoted tag: libosip2 keeps the quotes, the edge's cannot */
	if (*tag && *tag_len && **tag == '"')
		return -EINVAL;
	return 0;
}

/* The Contact field f: each value into r->ct. */
static int
core_reg_contacts(const char *raw, const struct core_field *f,
		  struct core_scan_reg *r)
{
	size_t i = f->vs, n, ne, v;
	int rc;

	for (;;) {
		struct core_scan_contact *ct;
		struct core_addr a;

		if (r->n_contact == CORE_SCAN_CONTACTS)
			return -EINVAL;
		ct = &r->ct[r->n_contact++];
		memset(ct, 0, sizeof(*ct));
		/* a display name of tokens may be the "*" wildcard, which
		 * libosip2 reads as one */
		if (raw[i] != '<' && raw[i] != '"')
			return -EINVAL;
		i = core_addr_uri(raw, i, f->ve, &a);
		if (i == 0 || core_uri_rewritten(raw, a.uri, a.uri_end))
			return -EINVAL;
		ct->uri = raw + a.uri;
		ct->uri_len = a.uri_end - a.uri;
		while (i < f->ve && raw[i] == ';') {
			n = i + 1;
			i = core_hparam(raw, i, f->ve, &ne, &v);
			if (i == 0)
				return -EINVAL;
			core_hparam_take(raw, n, ne, v, i, "expires",
					 &ct->expires, &ct->expires_len);
			core_hparam_take(raw, n, ne, v, i, "q", &ct->q,
					 &ct->q_len);
			core_hparam_take(raw, n, ne, v, i, "+sip.instance",
					 &ct->instance, &ct->instance_len);
			core_hparam_take(raw, n, ne, v, i, "reg-id",
					 &ct->reg_id, &ct->reg_id_len);
		}
		/* what the registrar reads as numbers, as plain numbers: a
		 * quoted, odd or missing one is the parsed path's to refuse */
		if ((ct->expires && core_number(ct->expires, 0,
						ct->expires_len, 9) < 0) ||
		    (ct->reg_id && core_number(ct->reg_id, 0,
					       ct->reg_id_len, 9) < 0) ||
		    (ct->q && (ct->q_len == 0 || *ct->q == '"')) ||
		    (ct->instance && ct->instance_len == 0))
			return -EINVAL;
		rc = core_list_next(raw, &i, f->ve);
		if (rc <= 0)
			return rc == 0 ? 0 : -EINVAL;
	}
}

/* "REGISTER <plain SIP URI> SIP/2.0" and its line end: 0 or -EINVAL. */
static int
core_reg_start(const char *raw, size_t pos)
{
	struct core_addr a;
	size_t e = pos - 1 - (raw[pos - 2] == '\r'), n;
	char uri[256 + 2];

	if (pos < 20 || memcmp(raw, "REGISTER ", 9) != 0 || e < 17 ||
	    memcmp(raw + e - 8, " SIP/2.0", 8) != 0)
		return -EINVAL;
	n = e - 8 - 9;		/* the Request-URI, past "REGISTER " */
	if (n > 256)
		return -EINVAL;
	/* read as the To's URI is, between brackets */
	uri[0] = '<';
	memcpy(uri + 1, raw + 9, n);
	uri[n + 1] = '>';
	if (core_addr_uri(uri, 0, n + 2, &a) != n + 2 ||
	    core_uri_rewritten(uri, a.uri, a.uri_end))
		return -EINVAL;
	return 0;
}

/* "<value>, <value>" of tokens, as libosip2 splits and reads Allow. */
static int
core_reg_allow(const char *raw, const struct core_field *f)
{
	size_t i = f->vs, j;
	int rc;

	for (;;) {
		j = core_span(raw, i, f->ve, CORE_C_TOKEN);
		if (j == i)
			return -EINVAL;
		i = j;
		rc = core_list_next(raw, &i, f->ve);
		if (rc <= 0)
			return rc == 0 ? 0 : -EINVAL;
	}
}

/* One field of a REGISTER: 0 when read (or not to be read), -EINVAL
 * when libosip2 might read it otherwise or the registrar refuse it. */
static int
core_reg_field(const char *raw, const struct core_field *f,
	       enum core_f kind, struct core_scan_reg *r, int *seen,
	       size_t *cl)
{
	enum core_rf rk = kind == CORE_F_OTHER ? core_reg_field_kind(raw, f) :
						 CORE_RF_OTHER;
	struct core_scan sc = { 0 };
	struct core_addr a;
	const char *tag;
	size_t tag_len;
	long v;
	int rc;

	/* Via, Call-ID, CSeq, Content-* and the fields not read: as in a
	 * response */
	if (rk == CORE_RF_OTHER && kind != CORE_F_FROM && kind != CORE_F_TO &&
	    kind != CORE_F_CONTACT && kind != CORE_F_MAX_FORWARDS &&
	    kind != CORE_F_ROUTE) {
		rc = core_scan_field(raw, f, kind, &sc, cl);
		if (rc != 0)
			return rc;
		if (sc.n_via) {
			if (r->n_via == 0) {
				r->branch = sc.branch;
				r->branch_len = sc.branch_len;
			}
			r->n_via += sc.n_via;
		} else if (sc.call_id) {
			r->call_id = sc.call_id;
			r->call_id_len = sc.call_id_len;
			/* libosip2 cuts it at its '@' into two parts */
			if (sc.call_id[sc.call_id_len - 1] == '@')
				return -EINVAL;
		} else if (sc.method) {
			if (sc.method_len != 8 ||
			    memcmp(sc.method, "REGISTER", 8) != 0)
				return -EINVAL;
			v = core_number(raw, f->vs,
					(size_t)(sc.method - 1 - raw), 10);
			if (v < 0 || v >= 1L << 31)
				return -EINVAL;
			r->cseq = (uint32_t)v;
			r->cseq_num = raw + f->vs;
			r->cseq_num_len = (size_t)(sc.method - 1 - r->cseq_num);
		}
		return 0;
	}
	/* The rest is read here, from one line: libosip2 reads a folded
	 * value joined. */
	if (memchr(raw + f->fs, '\n', f->fe - f->fs - 1) != NULL)
		return -EINVAL;
	if (kind == CORE_F_MAX_FORWARDS) {
		v = core_number(raw, f->vs, f->ve, 3);
		if (seen[kind] == 0 && (v < 1 || v > 255))
			return -EINVAL;
		if (seen[kind] == 0)
			r->max_forwards = (int)v;
		return 0;
	}
	if (kind == CORE_F_ROUTE)
		return core_scan_values(raw, f, NULL, NULL, &tag_len) ? 0 :
								      -EINVAL;
	/* empty: libosip2 keeps or skips it, the registrar reads it */
	if (rk == CORE_RF_PARSED || f->ve == f->vs)
		return -EINVAL;
	switch (rk) {
	case CORE_RF_ALLOW:
		return core_reg_allow(raw, f);
	case CORE_RF_AUTHORIZATION:
		/* libosip2 skips a value it cannot read; the registrar
		 * reads it with lib/digest.h, or lets the parsed path */
		if (r->n_auth == CORE_SCAN_AUTHS)
			return -EINVAL;
		r->auth[r->n_auth] = raw + f->vs;
		r->auth_len[r->n_auth++] = f->ve - f->vs;
		return 0;
	case CORE_RF_USER_AGENT:
		if (r->ua == NULL) {
			r->ua = raw + f->vs;
			r->ua_len = f->ve - f->vs;
		}
		return 0;
	case CORE_RF_EXPIRES:
		if (seen[CORE_F_CONTENT_TYPE + rk]++ == 0) {
			r->expires = core_number(raw, f->vs, f->ve, 9);
			if (r->expires < 0)
				return -EINVAL;
		}
		return 0;
	default:
		break;
	}
	if (kind == CORE_F_CONTACT)
		return core_reg_contacts(raw, f, r);
	if (core_reg_addr(raw, f, &a, &tag, &tag_len) != 0)
		return -EINVAL;
	if (kind == CORE_F_FROM) {
		r->from_tag = tag && tag_len ? tag : NULL;
		r->from_tag_len = tag_len;
		return 0;
	}
	/* a To with a tag is in a dialog: the parsed path refuses it */
	if (tag || a.user == a.user_end || raw[a.host] == '[')
		return -EINVAL;
	r->to_user = raw + a.user;
	r->to_user_len = a.user_end - a.user;
	r->to_host = raw + a.host;
	r->to_host_len = a.host_end - a.host;
	return 0;
}

int
core_splice_scan_register(const char *raw, size_t len,
			  struct core_scan_reg *r)
{
	/* by core_f, then the first Expires at CONTENT_TYPE + EXPIRES */
	int seen[CORE_F_CONTENT_TYPE + CORE_RF_EXPIRES + 1] = { 0 };
	size_t pos = core_start_next(raw, len), cl = 0;
	struct core_field f;
	int rc, crlf;

	memset(r, 0, sizeof(*r));
	r->max_forwards = -1;
	r->expires = -1;
	if (pos == 0 || core_reg_start(raw, pos) != 0)
		return -EINVAL;
	crlf = core_crlf(raw, pos);
	while ((rc = core_field_next(raw, len, &pos, crlf, &f)) > 0) {
		enum core_f kind = core_field_kind(raw, &f);

		if (f.ne == f.fs || core_reg_field(raw, &f, kind, r, seen,
						   &cl) != 0)
			return -EINVAL;
		seen[kind]++;
		if (kind < CORE_F_FROM || kind > CORE_F_VIA ||
		    r->n_lines < 0)
			continue;
		if (r->n_lines == CORE_SCAN_LINES || f.fe > UINT32_MAX) {
			r->n_lines = -1;
			continue;
		}
		r->lines[r->n_lines++] = (struct core_reply_line){
			.fs = (uint32_t)f.fs, .fe = (uint32_t)f.fe,
			.ve = (uint32_t)f.ve, .to = kind == CORE_F_TO };
	}
	if (rc < 0 || r->n_via == 0 || seen[CORE_F_CALL_ID] != 1 ||
	    seen[CORE_F_CSEQ] != 1 || seen[CORE_F_CONTENT_LENGTH] > 1 ||
	    seen[CORE_F_FROM] != 1 || seen[CORE_F_TO] != 1 ||
	    seen[CORE_F_CONTENT_TYPE] > 1 || r->call_id == NULL ||
	    r->to_user == NULL)
		return -EINVAL;
	if (memchr(raw, '\0', pos) != NULL)
		return -EINVAL;
	pos += crlf ? 2 : 1;
	if (seen[CORE_F_CONTENT_LENGTH] ? cl != len - pos : len != pos)
		return -EINVAL;
	return 0;
}
