/*
 * sip.h - small SIP helpers shared by edge and core: the Via branch
 * that names the core owning a client transaction, and the bound on
 * replies to datagrams (SIP_REPLY_AMP).
 *
 * A core writes branch "z9hG4bKsm<core>.<serial>.<mac>" (RFC 3261
 * magic cookie, then "sm", the core id in decimal, a per-transaction
 * serial and a keyed MAC, both 16 hex digits).  Any edge that receives
 * a response reads the core id back from the top Via and hands the
 * response to that core, so responses find their transaction through
 * whichever edge they arrive on.
 *
 * The MAC is SipHash-2-4 under the cluster's branch key (lib/key.h
 * KEY_USE_BRANCH) over the core id, the serial and the Call-ID, so
 * both ends check it: the edge before it spends a full parse on a
 * response (a flood of made-up responses costs one SipHash each), the
 * core again before it looks for a transaction (core/core_sign.c).
 * The key is its own, not the one that signs Record-Routes: an edge
 * that holds it can vouch for branches and nothing else.  SipHash is
 * a PRF made for short inputs; 64 bits give a forger one chance in
 * 2^64 per packet.
 *
 * Also a string builder (struct sip_cat) for the keys and names the
 * core makes per message: snprintf's format parsing cost about 1,000
 * instructions a call, over 10% of the core's per-message instructions
 * on a call's path (callgrind, `make profile`).
 */
#ifndef SM_SIP_H
#define SM_SIP_H

#include <stddef.h>
#include <stdint.h>

#define SIP_BRANCH_MAX 64

/*
 * A reply to an unauthenticated datagram is at most this many times
 * its size, whether the edge or a core makes it up: anyone can write
 * any source address on a datagram, so an answer larger than the
 * question would make the cluster an amplifier aimed at that address.
 * The limit QUIC keeps to before a peer's address is proven (RFC 9000
 * 8.1).
 */
#define SIP_REPLY_AMP 3
/* Bytes of the Call-ID the MAC covers: longer ones are cut, the same
 * way at both ends. */
#define SIP_BRANCH_CID_MAX 511

struct hash_key;

/* Writes the branch for (core_id, serial, mac) into out; returns its
 * length, or -ENOSPC. */
int sip_branch_make(char *out, size_t cap, int core_id, uint64_t serial,
		    uint64_t mac);

/* Reads a branch of that form from the slice branch[len]: returns 0
 * and fills *core_id, *serial and *mac, or -EINVAL for any other
 * branch.  Nothing is verified: the MAC is the core's to check. */
int sip_branch_parse(const char *branch, size_t len, int *core_id,
		     uint64_t *serial, uint64_t *mac);

/* Returns the core id named by a branch of this form, or -1. */
int sip_branch_core(const char *branch, size_t len);

/* The MAC of (core_id, serial) for the Call-ID cid[0..cid_len) (its
 * first SIP_BRANCH_CID_MAX bytes) under k. */
uint64_t sip_branch_mac(const struct hash_key *k, int core_id,
			uint64_t serial, const char *cid, size_t cid_len);

/* The core id of branch[len] when it is of this form and its MAC is
 * the one k gives for the Call-ID cid[0..cid_len); else -1. */
int sip_branch_verify(const struct hash_key *k, const char *branch,
		      size_t len, const char *cid, size_t cid_len);

/*
 * Appends pieces to out (cap bytes, NUL-terminated after every piece
 * when cap > 0).  What does not fit is cut, as snprintf cuts, and the builder
 * remembers it: sip_cat_len then returns -E2BIG.  The caller owns out.
 */
struct sip_cat {
	char *p;
	size_t len, cap;
	int over;
};

void sip_cat_init(struct sip_cat *b, char *out, size_t cap);
void sip_cat_mem(struct sip_cat *b, const char *s, size_t n);
void sip_cat_str(struct sip_cat *b, const char *s);	/* NULL: nothing */
void sip_cat_ch(struct sip_cat *b, char ch);
void sip_cat_uint(struct sip_cat *b, unsigned long long v);	/* decimal */
void sip_cat_hex16(struct sip_cat *b, uint64_t v);	/* 16 lower-case digits */
/* The length written, or -E2BIG when something was cut. */
int sip_cat_len(const struct sip_cat *b);

/* s (NULL: "") into out, cut to cap - 1 bytes: snprintf(out, cap, "%s",
 * s) without the formatter.  Returns sip_cat_len's answer. */
int sip_copy(char *out, size_t cap, const char *s);

#endif
