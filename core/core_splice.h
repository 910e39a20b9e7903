/*
 * core_splice.h - the forwarded copy of a SIP message written by
 * editing the bytes that came in, not by libosip2's to_str.
 *
 * A proxy changes a handful of things in what it relays (RFC 3261
 * 16.6): a new start line (the Request-URI), its own Via and
 * Record-Route on top, Max-Forwards one less, the Route entries that
 * named it gone; a response loses the proxy's Via (16.7 step 9).
 * Everything else is the sender's text, byte for byte: compact header
 * names, folding and the body stay as they came.
 */
#ifndef SM_CORE_SPLICE_H
#define SM_CORE_SPLICE_H

#include <stddef.h>
#include <stdint.h>

/* route_pop: every Route header goes. */
#define CORE_SPLICE_ROUTES_ALL 0x7fffffff

struct core_splice {
	const char *start;	/* start line with its CRLF; NULL: keep */
	size_t start_len;
	const char *top;	/* CRLF-ended header lines put first */
	size_t top_len;
	int via_pop;		/* 1: the first Via value goes */
	int route_pop;		/* leading Route values that go */
	int max_forwards;	/* < 0: keep; else written (added if absent) */
	/* Out: the Via and Route values raw holds.  Where libosip2 counts
	 * otherwise (it skips a value it cannot parse), the values popped
	 * may not be the ones the caller meant: it must not use the copy. */
	int n_via, n_route;
};

/*
 * Writes raw[0..len) edited by sp into out[0..cap).  Returns the
 * length written; -EINVAL when raw has no end of headers, a start
 * line empty or short of its two SPs, a header line without a colon, a CR not
 * followed by LF in its headers, lines that do not all end as the
 * start line does (CRLF, or LF alone), no header left after the edits,
 * or
 * fewer Via
 * or Route values than sp removes (short of CORE_SPLICE_ROUTES_ALL);
 * -ENOSPC when out is too small.  Borrows everything; no allocation.
 */
int core_splice(char *out, size_t cap, const char *raw, size_t len,
		struct core_splice *sp);

/* A response made up for a request (RFC 3261 8.2.6): its Via, From,
 * To, Call-ID and CSeq copied from the request's text. */
struct core_splice_reply {
	const char *start;	/* status line with its CRLF */
	const char *to_tag;	/* appended to To as ";tag=" when set */
	int n_via;		/* Via values the request must hold */
	const char *tail;	/* the rest: CRLF-ended lines, blank line */
	size_t tail_len;
};

/*
 * Writes the response rp describes for the request raw[0..len) into
 * out[0..cap).  Returns its length; -EINVAL when raw has no end of
 * headers or a start line as core_splice refuses, not exactly one From, To, Call-ID and CSeq, or not n_via Via
 * values (libosip2 read it otherwise); -ENOSPC.  No allocation.
 */
int core_splice_reply(char *out, size_t cap, const char *raw, size_t len,
		      const struct core_splice_reply *rp);

/* A line a response copies from its request (Via, From, To, Call-ID,
 * CSeq), as a scan found it: offsets into the request's text. */
struct core_reply_line {
	uint32_t fs, fe;	/* the line, CRLF included */
	uint32_t ve;		/* the value's end: where a To tag goes */
	uint8_t to;		/* the To line */
};

/* Copied lines a REGISTER's scan keeps; more and the reply walks the
 * request again (core_splice_reply). */
#define CORE_SCAN_LINES 16

/*
 * core_splice_reply from the lines a scan kept, in the request's order:
 * the same text, without a second walk of the request.  The scan
 * checked what core_splice_reply checks.  Returns its length or
 * -ENOSPC.
 */
int core_splice_reply_lines(char *out, size_t cap, const char *raw,
			    const struct core_reply_line *ln, int n,
			    const struct core_splice_reply *rp);

/* What the core matches a response by, read from its text without
 * libosip2 (core_splice_scan).  The slices borrow from raw. */
struct core_scan {
	int code;		/* status code, 100-699 */
	const char *branch;	/* the top Via's branch parameter */
	size_t branch_len;
	const char *call_id;
	size_t call_id_len;
	const char *method;	/* CSeq's */
	size_t method_len;
	int n_via;		/* Via values */
	size_t body_len;	/* bytes after the headers */
	size_t cut, cut_len;	/* raw[cut..cut+cut_len): the top Via value
				   (its whole field when alone) */
};

/*
 * Reads the response raw[0..len) into *sc: 0, or -EINVAL for anything
 * libosip2 might read otherwise (then parse it): a start line not
 * "SIP/2.0 <3 digits> <reason>", a Via value not of the plain form
 * "SIP/2.0/<transport> <host>[:<port>][;params]" or a top one without
 * one branch, a Call-ID or CSeq absent, repeated, folded or with blanks
 * inside, a body Content-Length does not frame exactly, a NUL in the
 * headers, or what core_splice refuses.  No allocation.
 */
int core_splice_scan(const char *raw, size_t len, struct core_scan *sc);

/* Writes the response raw[0..len) that core_splice_scan read into sc
 * without its top Via value into out[0..cap), as core_splice with
 * via_pop does: its length, or -ENOSPC. */
int core_splice_scanned(char *out, size_t cap, const char *raw, size_t len,
			const struct core_scan *sc);

/* Contact values a REGISTER read from its text may hold; one with more
 * goes through libosip2. */
#define CORE_SCAN_CONTACTS 8

/* A Contact value of a REGISTER (core_splice_scan_register): its URI,
 * between '<' and '>', and the values of the parameters the registrar
 * reads, the first of each name without case as libosip2 finds them
 * (NULL when absent; +sip.instance with its quotes).  Slices of raw. */
struct core_scan_contact {
	const char *uri, *expires, *q, *instance, *reg_id;
	size_t uri_len, expires_len, q_len, instance_len, reg_id_len;
};

/* Authorization values a REGISTER read from its text may hold; one with
 * more goes through libosip2. */
#define CORE_SCAN_AUTHS 2

/* What the registrar and its 200 need of a REGISTER, read from its text
 * without libosip2.  Slices borrow from raw. */
struct core_scan_reg {
	int n_via;
	const char *branch;	/* the top Via's */
	size_t branch_len;
	const char *call_id;
	size_t call_id_len;
	const char *from_tag;	/* NULL: none */
	size_t from_tag_len;
	const char *to_user, *to_host;	/* the To URI's */
	size_t to_user_len, to_host_len;
	uint32_t cseq;
	const char *cseq_num;	/* its digits as they came */
	size_t cseq_num_len;
	int max_forwards;	/* 1-255; -1: absent */
	long expires;		/* the Expires header; -1: absent */
	const char *ua;		/* the first User-Agent; NULL: none */
	size_t ua_len;
	int n_contact;
	struct core_scan_contact ct[CORE_SCAN_CONTACTS];
	int n_auth;		/* Authorization values, not checked */
	const char *auth[CORE_SCAN_AUTHS];
	size_t auth_len[CORE_SCAN_AUTHS];
	int n_lines;		/* -1: more than CORE_SCAN_LINES */
	struct core_reply_line lines[CORE_SCAN_LINES];
};

/*
 * Reads the REGISTER raw[0..len) into *r: 0, or -EINVAL for anything
 * libosip2 might read otherwise or the registrar must answer with an
 * error (then parse it): what core_splice_scan refuses in its fields,
 * a Request-URI, To, From, Contact or Route not in a plain form, a
 * '%' or '`' in a URI (libosip2 rewrites them), a To tag, a CSeq not
 * "<n> REGISTER" below 2^31, Max-Forwards 0 or not a number up to 255,
 * an Expires not a number, a wildcard or more than CORE_SCAN_CONTACTS
 * contacts or CORE_SCAN_AUTHS Authorization values, a header libosip2
 * parses that is not one of these (Allow aside: tokens; Authorization
 * aside: libosip2 skips what it cannot read), a folded value read.  No
 * allocation.
 */
int core_splice_scan_register(const char *raw, size_t len,
			      struct core_scan_reg *r);

#endif
