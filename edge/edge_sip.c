/*
 * edge_sip.c - what the edge must understand of SIP, and no more.
 *
 * A hand-written line scan finds the start line and the handful of
 * headers the edge needs (Via, From, To, Call-ID, CSeq, Max-Forwards,
 * Content-Length) as slices of the received buffer: it works on
 * messages libosip2 refuses, which is when a 400 needs them.  The edge
 * forwards the bytes it received, not a re-serialisation; the one
 * change a request gets is received/rport on its top Via, spliced into
 * a copy of the text.  libosip2 runs in the cores only: a request it
 * refuses comes back from the core for its 400 (ENV_REJECT).
 *
 * Cost: the scan and the splice are O(len) with no allocation.
 */
#include "edge/edge_int.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "lib/sip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int
edge_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Whitespace inside a header value, where folding left CRLF behind. */
static int
edge_is_lws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
edge_is_token(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || strchr("-.!%*_+`'~", c) != NULL;
}

static int
edge_slice_is(struct edge_slice s, const char *lit)
{
	return strlen(lit) == s.len && strncasecmp(s.s, lit, s.len) == 0;
}

/* Offset of the end of the line at pos (before CR LF or LF), and of
 * the next line in *next. */
static size_t
edge_line_end(const char *buf, size_t len, size_t pos, size_t *next)
{
	const char *lf = memchr(buf + pos, '\n', len - pos);
	size_t end = lf ? (size_t)(lf - buf) : len;

	*next = lf ? end + 1 : len;
	if (end > pos && buf[end - 1] == '\r')
		end--;
	return end;
}

/* Decided by the name's length first: one comparison per header, not
 * one per name looked for (that loop was a fifth of the edge's
 * instructions per request). */
static int
edge_hdr_id_of(struct edge_slice name)
{
	switch (name.len) {
	case 1:
		switch (name.s[0] | 0x20) {
		case 'v': return EDGE_H_VIA;
		case 'f': return EDGE_H_FROM;
		case 't': return EDGE_H_TO;
		case 'i': return EDGE_H_CALL_ID;
		case 'l': return EDGE_H_CONTENT_LENGTH;
		}
		break;
	case 2:
		if (edge_slice_is(name, "to"))
			return EDGE_H_TO;
		break;
	case 3:
		if (edge_slice_is(name, "via"))
			return EDGE_H_VIA;
		break;
	case 4:
		if (edge_slice_is(name, "from"))
			return EDGE_H_FROM;
		if (edge_slice_is(name, "cseq"))
			return EDGE_H_CSEQ;
		break;
	case 7:
		if (edge_slice_is(name, "call-id"))
			return EDGE_H_CALL_ID;
		break;
	case 12:
		if (edge_slice_is(name, "max-forwards"))
			return EDGE_H_MAX_FORWARDS;
		break;
	case 14:
		if (edge_slice_is(name, "content-length"))
			return EDGE_H_CONTENT_LENGTH;
		break;
	}
	return EDGE_H_OTHER;
}

int
edge_sip_hdr_next(const char *buf, size_t len, size_t *pos,
		  struct edge_hdr *h)
{
	size_t start = *pos, end, next, i;
	const char *colon;

	if (start >= len)
		return -1;
	end = edge_line_end(buf, len, start, &next);
	if (end == start) {
		*pos = next;
		return 0;
	}
	/* A line that starts with SP/HT continues this one (folding). */
	while (next < len && edge_is_wsp(buf[next]))
		end = edge_line_end(buf, len, next, &next);
	*pos = next;

	memset(h, 0, sizeof(*h));
	while (start < end && edge_is_wsp(buf[start]))
		start++;
	h->line.s = buf + start;
	h->line.len = end - start;
	colon = memchr(buf + start, ':', end - start);
	if (colon == NULL) {
		h->name.s = buf + start;
		h->value = h->line;
		return 1;
	}
	i = (size_t)(colon - buf);
	h->name.s = buf + start;
	h->name.len = i - start;
	while (h->name.len && edge_is_wsp(h->name.s[h->name.len - 1]))
		h->name.len--;
	for (i++; i < end && edge_is_lws(buf[i]); i++)
		;
	while (end > i && edge_is_lws(buf[end - 1]))
		end--;
	h->value.s = buf + i;
	h->value.len = end - i;
	h->id = edge_hdr_id_of(h->name);
	return 1;
}

/* "METHOD SP uri SP SIP/2.0" or "SIP/2.0 SP 3DIGIT SP reason". */
static int
edge_start_line(struct edge_sip_scan *sc, const char *s, size_t n)
{
	static const char ver[] = "SIP/2.0";
	const size_t vl = sizeof(ver) - 1;
	size_t i = 0, uri;

	if (n > vl && strncasecmp(s, ver, vl) == 0 && s[vl] == ' ') {
		const char *d = s + vl + 1;

		/* The reason phrase may be empty, even its SP is often lost. */
		if (n < vl + 4 || d[0] < '1' || d[0] > '6' || d[1] < '0' ||
		    d[1] > '9' || d[2] < '0' || d[2] > '9' ||
		    (n > vl + 4 && d[3] != ' '))
			return -EINVAL;
		sc->status = (d[0] - '0') * 100 + (d[1] - '0') * 10 + d[2] - '0';
		return 0;
	}
	while (i < n && edge_is_token(s[i]))
		i++;
	if (i == 0 || i >= n || s[i] != ' ')
		return -EINVAL;
	sc->method.s = s;
	sc->method.len = i;
	uri = ++i;
	while (i < n && s[i] != ' ')
		i++;
	if (i == uri || i >= n || n - i - 1 != vl ||
	    strncasecmp(s + i + 1, ver, vl) != 0)
		return -EINVAL;
	sc->is_request = 1;
	return 0;
}

int
edge_sip_scan(struct edge_sip_scan *sc, const char *buf, size_t len)
{
	struct edge_hdr h;
	size_t pos = 0, end, next;
	int r;

	memset(sc, 0, sizeof(*sc));
	sc->body_off = len;
	/* RFC 3261 7.5: CRLFs before the start line are ignored. */
	while (pos < len && (buf[pos] == '\r' || buf[pos] == '\n'))
		pos++;
	if (pos == len)
		return -EINVAL;
	end = edge_line_end(buf, len, pos, &next);
	if (edge_start_line(sc, buf + pos, end - pos) != 0)
		return -EINVAL;
	pos = next;
	sc->hdr_off = pos;
	while ((r = edge_sip_hdr_next(buf, len, &pos, &h)) == 1) {
		if (h.name.len == 0)
			sc->bad_line = 1;
		else if (h.id != EDGE_H_OTHER && sc->first[h.id].line.s == NULL)
			sc->first[h.id] = h;
		else if (h.id == EDGE_H_CONTENT_LENGTH &&
			 (h.value.len != sc->first[h.id].value.len ||
			  memcmp(h.value.s, sc->first[h.id].value.s,
				 h.value.len) != 0))
			sc->cl_conflict = 1;
	}
	if (r == 0) {
		sc->has_end = 1;
		sc->body_off = pos;
	}
	return 0;
}

int
edge_sip_quote_head(const char *buf, size_t len, char *out, size_t cap)
{
	struct edge_sip_scan sc;
	const struct edge_slice *via;
	size_t pos = 0, end, next, vend, n;

	if (edge_sip_scan(&sc, buf, len) != 0 || !sc.is_request)
		return -EINVAL;
	via = &sc.first[EDGE_H_VIA].line;
	if (via->s == NULL)
		return -EINVAL;
	/* The Via is whole only when a line that is no continuation of
	 * it follows: the quote may end inside it, or inside a fold. */
	vend = (size_t)(via->s + via->len - buf);
	if (vend < len && buf[vend] == '\r')
		vend++;
	if (vend >= len || buf[vend] != '\n' || vend + 1 >= len ||
	    edge_is_lws(buf[vend + 1]))
		return -EINVAL;
	while (pos < len && (buf[pos] == '\r' || buf[pos] == '\n'))
		pos++;
	end = edge_line_end(buf, len, pos, &next);
	n = (end - pos) + 2 + via->len + 4;
	if (n > cap)
		return -ENOSPC;
	memcpy(out, buf + pos, end - pos);
	memcpy(out + (end - pos), "\r\n", 2);
	memcpy(out + (end - pos) + 2, via->s, via->len);
	memcpy(out + n - 4, "\r\n\r\n", 4);
	return (int)n;
}

/* ---- Via ---- */

static size_t
edge_skip_lws(const char *s, size_t len, size_t i)
{
	while (i < len && edge_is_lws(s[i]))
		i++;
	return i;
}

static size_t
edge_skip_token(const char *s, size_t len, size_t i)
{
	while (i < len && edge_is_token(s[i]))
		i++;
	return i;
}

/* A param value: quoted string, or a run of token chars plus those an
 * IPv6 address brings (':' '[' ']').  Returns the end, 0 on error. */
static size_t
edge_skip_pvalue(const char *s, size_t len, size_t i)
{
	size_t start = i;

	if (i < len && s[i] == '"') {
		for (i++; i < len && s[i] != '"'; i++)
			if (s[i] == '\\')
				i++;
		return i < len ? i + 1 : 0;
	}
	while (i < len && (edge_is_token(s[i]) || s[i] == ':' ||
			   s[i] == '[' || s[i] == ']'))
		i++;
	return i > start ? i : 0;
}

int
edge_sip_via_parse(struct edge_via *v, const char *s, size_t len)
{
	size_t i = 0, t;

	memset(v, 0, sizeof(*v));
	/* sent-protocol: "SIP" / "2.0" / transport, LWS allowed at '/' */
	for (int part = 0; part < 3; part++) {
		i = edge_skip_lws(s, len, i);
		t = edge_skip_token(s, len, i);
		if (t == i)
			return -EINVAL;
		if (part == 0 && (t - i != 3 || strncasecmp(s + i, "SIP", 3)))
			return -EINVAL;
		if (part == 2) {
			v->transport.s = s + i;
			v->transport.len = t - i;
		}
		i = edge_skip_lws(s, len, t);
		if (part < 2) {
			if (i >= len || s[i] != '/')
				return -EINVAL;
			i++;
		}
	}
	/* sent-by: host [ ":" port ] */
	if (i < len && s[i] == '[') {
		const char *rb = memchr(s + i, ']', len - i);

		if (rb == NULL || rb == s + i + 1)
			return -EINVAL;
		v->host.s = s + i + 1;
		v->host.len = (size_t)(rb - s) - i - 1;
		i = (size_t)(rb - s) + 1;
	} else {
		t = edge_skip_token(s, len, i);
		if (t == i)
			return -EINVAL;
		v->host.s = s + i;
		v->host.len = t - i;
		i = t;
	}
	t = edge_skip_lws(s, len, i);
	if (t < len && s[t] == ':') {
		int digits = 0;

		for (i = edge_skip_lws(s, len, t + 1); i < len &&
		     s[i] >= '0' && s[i] <= '9'; i++, digits++) {
			v->port = v->port * 10 + (s[i] - '0');
			if (v->port > 65535)
				return -EINVAL;
		}
		if (digits == 0 || v->port == 0)
			return -EINVAL;
	}
	v->end = s + i;
	/* *( SEMI via-params ) up to a comma or the end */
	for (;;) {
		size_t semi, name, name_end, pend;

		i = edge_skip_lws(s, len, i);
		if (i >= len || s[i] == ',')
			return 0;
		if (s[i] != ';')
			return -EINVAL;
		semi = i;
		name = edge_skip_lws(s, len, i + 1);
		name_end = edge_skip_token(s, len, name);
		if (name_end == name)
			return -EINVAL;
		pend = name_end;
		i = edge_skip_lws(s, len, name_end);
		if (i < len && s[i] == '=') {
			size_t val = edge_skip_lws(s, len, i + 1);

			pend = edge_skip_pvalue(s, len, val);
			if (pend == 0)
				return -EINVAL;
			if (name_end - name == 6 &&
			    strncasecmp(s + name, "branch", 6) == 0) {
				v->branch.s = s + val;
				v->branch.len = pend - val;
			}
		}
		if (name_end - name == 5 && strncasecmp(s + name, "rport", 5) == 0) {
			v->has_rport = 1;
			v->rport.s = s + name;
			v->rport.len = pend - name;
		} else if (name_end - name == 8 &&
			   strncasecmp(s + name, "received", 8) == 0) {
			if (v->n_received == (int)(sizeof(v->received) /
						   sizeof(*v->received)))
				return -EINVAL;
			v->received[v->n_received].s = s + semi;
			v->received[v->n_received++].len = pend - semi;
		}
		i = pend;
		v->end = s + i;
	}
}

/* Whether the sent-by host is src's address, compared as addresses so
 * that "::1" and "0:0::1" agree. */
static int
edge_host_is(struct edge_slice host, const union env_sa *src)
{
	char tmp[INET6_ADDRSTRLEN];
	unsigned char a[16];

	if (host.len >= sizeof(tmp))
		return 0;
	memcpy(tmp, host.s, host.len);
	tmp[host.len] = '\0';
	if (src->sa.sa_family == AF_INET)
		return inet_pton(AF_INET, tmp, a) == 1 &&
		       memcmp(a, &src->in.sin_addr, 4) == 0;
	if (src->sa.sa_family == AF_INET6)
		return inet_pton(AF_INET6, tmp, a) == 1 &&
		       memcmp(a, &src->in6.sin6_addr, 16) == 0;
	return 0;
}

struct edge_edit {
	const char *start, *end;	/* replaced span of the input */
	char text[64];
};

static int
edge_edit_cmp(const void *a, const void *b)
{
	const struct edge_edit *x = a, *y = b;

	return (x->start > y->start) - (x->start < y->start);
}

int
edge_sip_via_fix(const char *buf, size_t len, const struct edge_sip_scan *sc,
		 const union env_sa *src, char *out, size_t cap)
{
	const struct edge_hdr *vh = &sc->first[EDGE_H_VIA];
	struct edge_edit ed[8];
	struct edge_via v;
	struct sip_cat t;
	const char *cur = buf;
	char ip[INET6_ADDRSTRLEN];
	size_t n = 0, o = 0;

	if (sc->via_ok)
		v = sc->via;
	else if (vh->line.s == NULL ||
		 edge_sip_via_parse(&v, vh->value.s, vh->value.len) != 0)
		return -EINVAL;
	env_sa_ip(src, ip, sizeof(ip));
	/* A received= from the sender would steer our replies: drop it. */
	for (int i = 0; i < v.n_received; i++) {
		ed[n].start = v.received[i].s;
		ed[n].end = v.received[i].s + v.received[i].len;
		ed[n++].text[0] = '\0';
	}
	/* Every request passes here: sip_cat, not the formatter. */
	if (v.has_rport) {
		ed[n].start = v.rport.s;
		ed[n].end = v.rport.s + v.rport.len;
		sip_cat_init(&t, ed[n++].text, sizeof(ed[0].text));
		sip_cat_str(&t, "rport=");
		sip_cat_uint(&t, (unsigned)env_sa_port(src));
	}
	/* RFC 3581 4: with rport, received is added even when equal. */
	if (v.has_rport || !edge_host_is(v.host, src)) {
		ed[n].start = ed[n].end = v.end;
		sip_cat_init(&t, ed[n++].text, sizeof(ed[0].text));
		sip_cat_str(&t, ";received=");
		sip_cat_str(&t, ip);
	}
	qsort(ed, n, sizeof(*ed), edge_edit_cmp);
	for (size_t i = 0; i < n; i++) {
		size_t keep = (size_t)(ed[i].start - cur), tl = strlen(ed[i].text);

		if (cap - o < keep + tl)
			return -ENOSPC;
		memcpy(out + o, cur, keep);
		memcpy(out + o + keep, ed[i].text, tl);
		o += keep + tl;
		cur = ed[i].end;
	}
	if (cap - o < (size_t)(buf + len - cur))
		return -ENOSPC;
	memcpy(out + o, cur, (size_t)(buf + len - cur));
	return (int)(o + (size_t)(buf + len - cur));
}

/* ---- checks ---- */

/* Parses 1*DIGIT filling all of s; returns -1 if not, or above max. */
static long
edge_digits(struct edge_slice s, long max)
{
	long v = 0;

	if (s.len == 0 || s.len > 10)
		return -1;
	for (size_t i = 0; i < s.len; i++) {
		if (s.s[i] < '0' || s.s[i] > '9')
			return -1;
		v = v * 10 + (s.s[i] - '0');
	}
	return v > max ? -1 : v;
}

static const char *
edge_check_cseq(const struct edge_sip_scan *sc)
{
	struct edge_slice cs = sc->first[EDGE_H_CSEQ].value, num, m;
	size_t i = 0;

	while (i < cs.len && cs.s[i] >= '0' && cs.s[i] <= '9')
		i++;
	num.s = cs.s;
	num.len = i;
	if (edge_digits(num, 0x7fffffffL) < 0)	/* RFC 3261 8.1.1.5 */
		return "Bad CSeq number";
	i = edge_skip_lws(cs.s, cs.len, i);
	m.s = cs.s + i;
	m.len = edge_skip_token(cs.s, cs.len, i) - i;
	if (m.len == 0 || i + m.len != cs.len)
		return "Bad CSeq method";
	if (sc->is_request && (m.len != sc->method.len ||
			       memcmp(m.s, sc->method.s, m.len) != 0))
		return "CSeq method does not match the request";
	return NULL;
}

const char *
edge_sip_check(struct edge_sip_scan *sc, size_t len, size_t *use_len)
{
	static const char *const missing[EDGE_H__COUNT] = {
		[EDGE_H_VIA] = "Missing Via header",
		[EDGE_H_FROM] = "Missing From header",
		[EDGE_H_TO] = "Missing To header",
		[EDGE_H_CALL_ID] = "Missing Call-ID header",
		[EDGE_H_CSEQ] = "Missing CSeq header",
	};
	const struct edge_hdr *cl = &sc->first[EDGE_H_CONTENT_LENGTH];
	const struct edge_hdr *mf = &sc->first[EDGE_H_MAX_FORWARDS];
	const char *why;

	*use_len = len;
	for (int id = 0; id < EDGE_H__COUNT; id++)
		if (missing[id] && sc->first[id].line.s == NULL)
			return missing[id];
	if (sc->bad_line)
		return "Header line without a colon";
	if (!sc->has_end)
		return "No empty line after the headers";
	if (sc->first[EDGE_H_CALL_ID].value.len == 0)
		return "Empty Call-ID";
	why = edge_check_cseq(sc);
	if (why)
		return why;
	if (mf->line.s && edge_digits(mf->value, 255) < 0)
		return "Bad Max-Forwards";
	if (edge_sip_via_parse(&sc->via, sc->first[EDGE_H_VIA].value.s,
			       sc->first[EDGE_H_VIA].value.len) != 0)
		return "Bad Via header";
	sc->via_ok = 1;
	/* The edge would forward by the first and a core might read the
	 * last: one message seen as two (RFC 3261 20.14 allows one). */
	if (sc->cl_conflict)
		return "Conflicting Content-Length headers";
	if (cl->line.s) {
		long n = edge_digits(cl->value, 1L << 30);

		if (n < 0)
			return "Bad Content-Length";
		if ((size_t)n > len - sc->body_off)
			return "Content-Length larger than the body";
		*use_len = sc->body_off + (size_t)n;
	}
	/* No libosip2 parse here: the core parses every message anyway,
	 * and sends a request it cannot parse back for the 400 (ENV_REJECT,
	 * edge_fwd.c).  Parsing twice was 30,000 of the edge's 43,000
	 * instructions per REGISTER. */
	return NULL;
}

/* ---- stateless replies ---- */

/*
 * A Via is all a reply needs to find its way back; a request that lacks
 * From, To, Call-ID or CSeq still gets a 400 naming what is missing
 * (RFC 3261 16.3), with whichever of them it has, so the sender stops
 * retransmitting instead of timing out.  An ACK is never answered
 * (RFC 3261 17.2.3 / 8.2).
 */
int
edge_sip_can_reply(const struct edge_sip_scan *sc)
{
	return sc->is_request && !edge_slice_is(sc->method, "ACK") &&
	       sc->first[EDGE_H_VIA].line.s != NULL;
}

/* Whether a From/To value has a tag param outside its URI. */
static int
edge_has_tag(struct edge_slice v)
{
	int quote = 0, angle = 0;

	for (size_t i = 0; i < v.len; i++) {
		char c = v.s[i];

		if (quote) {
			if (c == '\\')
				i++;
			else if (c == '"')
				quote = 0;
		} else if (c == '"') {
			quote = 1;
		} else if (c == '<') {
			angle = 1;
		} else if (c == '>') {
			angle = 0;
		} else if (c == ';' && !angle) {
			size_t j = edge_skip_lws(v.s, v.len, i + 1);

			if (v.len - j >= 3 && strncasecmp(v.s + j, "tag", 3) == 0) {
				j = edge_skip_lws(v.s, v.len, j + 3);
				if (j < v.len && v.s[j] == '=')
					return 1;
			}
		}
	}
	return 0;
}

static int
edge_put(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
	if (cap - *o < n)
		return -ENOSPC;
	memcpy(out + *o, s, n);
	*o += n;
	return 0;
}

int
edge_sip_reply_build(char *out, size_t cap, const char *buf, size_t len,
		     const struct edge_sip_scan *sc, int code,
		     const char *reason, const char *warning)
{
	const struct edge_slice cid = sc->first[EDGE_H_CALL_ID].value;
	const struct edge_slice via = sc->first[EDGE_H_VIA].value;
	struct edge_hdr h;
	size_t pos = sc->hdr_off, o = 0;
	char tmp[256];
	int n;

	if (!edge_sip_can_reply(sc))
		return -EINVAL;
	n = snprintf(tmp, sizeof(tmp), "SIP/2.0 %d %s\r\n", code, reason);
	if (edge_put(out, cap, &o, tmp, (size_t)n))
		return -ENOSPC;
	while (edge_sip_hdr_next(buf, len, &pos, &h) == 1) {
		if (h.id == EDGE_H_OTHER || h.id == EDGE_H_MAX_FORWARDS ||
		    h.id == EDGE_H_CONTENT_LENGTH)
			continue;
		if (h.id != EDGE_H_VIA && sc->first[h.id].line.s != h.line.s)
			continue;
		if (edge_put(out, cap, &o, h.line.s, h.line.len))
			return -ENOSPC;
		if (h.id == EDGE_H_TO && !edge_has_tag(h.value)) {
			/* Same request, same tag: a retransmitted request
			 * gets an identical reply. */
			uint64_t t = hash_fnv1a64(cid.s ? cid.s : "", cid.len) ^
				     hash_fnv1a64(via.s, via.len);

			n = snprintf(tmp, sizeof(tmp), ";tag=sm%016llx",
				     (unsigned long long)t);
			if (edge_put(out, cap, &o, tmp, (size_t)n))
				return -ENOSPC;
		}
		if (edge_put(out, cap, &o, "\r\n", 2))
			return -ENOSPC;
	}
	if (warning) {
		n = snprintf(tmp, sizeof(tmp), "Warning: 399 sipmesh-edge \"%s\"\r\n",
			     warning);
		if (n < 0 || (size_t)n >= sizeof(tmp) ||
		    edge_put(out, cap, &o, tmp, (size_t)n))
			return -ENOSPC;
	}
	/* The edge's 503 says no core took the request right now: when to
	 * try again (RFC 3261 21.5.4), as the cores' own 503s do. */
	if (code == 503 && edge_put(out, cap, &o, "Retry-After: 5\r\n", 16))
		return -ENOSPC;
	if (edge_put(out, cap, &o, "Content-Length: 0\r\n\r\n", 21))
		return -ENOSPC;
	return (int)o;
}

/* ---- the name a TLS next hop must prove (RFC 5922) ---- */

/* The host of the SIP or SIPS URI at u[0..len) (a name-addr's <...>
 * or a bare URI), without brackets for IPv6. */
static int
edge_uri_host(const char *u, size_t len, struct edge_slice *host)
{
	const char *lt = memchr(u, '<', len), *end, *at, *p;

	if (lt) {
		const char *gt = memchr(lt, '>', len - (size_t)(lt - u));

		if (gt == NULL)
			return -EINVAL;
		len = (size_t)(gt - lt - 1);
		u = lt + 1;
	}
	if (len > 4 && strncasecmp(u, "sip:", 4) == 0) {
		u += 4;
		len -= 4;
	} else if (len > 5 && strncasecmp(u, "sips:", 5) == 0) {
		u += 5;
		len -= 5;
	} else {
		return -EINVAL;
	}
	/* Headers (?...) may hold anything; userinfo ends at its '@',
	 * which no uri-parameter may contain. */
	end = memchr(u, '?', len);
	end = end ? end : u + len;
	for (at = NULL, p = u; p < end; p++)
		if (*p == '@')
			at = p;
	p = at ? at + 1 : u;
	if (p < end && *p == '[') {
		const char *rb = memchr(p, ']', (size_t)(end - p));

		if (rb == NULL)
			return -EINVAL;
		host->s = p + 1;
		host->len = (size_t)(rb - p - 1);
	} else {
		host->s = p;
		for (host->len = 0; p + host->len < end &&
		     strchr(":;>, \t", p[host->len]) == NULL; host->len++)
			;
	}
	return host->len ? 0 : -EINVAL;
}

int
edge_sip_next_hop_host(const struct edge_sip_scan *sc, const char *buf,
		       size_t len, char *out, size_t cap)
{
	struct edge_slice host = { NULL, 0 };
	struct edge_hdr h;
	struct edge_via v;
	size_t pos = sc->hdr_off;
	int rc = -EINVAL, route = 0;

	if (!sc->is_request) {
		const struct edge_hdr *vh = &sc->first[EDGE_H_VIA];

		if (vh->line.s && edge_sip_via_parse(&v, vh->value.s,
						     vh->value.len) == 0) {
			host = v.host;
			rc = host.len ? 0 : -EINVAL;
		}
	} else {
		while (edge_sip_hdr_next(buf, len, &pos, &h) == 1)
			if (edge_slice_is(h.name, "route")) {
				rc = edge_uri_host(h.value.s, h.value.len, &host);
				route = 1;
				break;
			}
		if (!route) {
			/* The Request-URI: after the method, up to the SP. */
			const char *u = sc->method.s + sc->method.len + 1;
			const char *sp = memchr(u, ' ', len - (size_t)(u - buf));

			if (sp)
				rc = edge_uri_host(u, (size_t)(sp - u), &host);
		}
	}
	if (rc < 0)
		return rc;
	if (host.len >= cap)
		return -ENOSPC;
	memcpy(out, host.s, host.len);
	out[host.len] = '\0';
	return 0;
}
