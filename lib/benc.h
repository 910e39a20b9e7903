/*
 * benc.h - bencode, the encoding of rtpengine's ng control protocol.
 *
 * Encoding writes into a caller's buffer through a struct benc_enc
 * whose error is sticky: a sequence of benc_put_*() calls is checked
 * once, at benc_enc_finish(), so building a dictionary needs no error
 * test per item (like loc_wr in location/loc_redis.c).
 *
 * Decoding is zero-copy and strict: the input is parsed into a caller's
 * array of nodes in pre-order (jsmn style), each node a slice into the
 * input.  Everything the input says is distrusted: lengths are checked
 * against the bytes left before any use (no overflow on "99...9:"),
 * integers and lengths may not have leading zeros or "-0", nesting is
 * limited to BENC_MAX_DEPTH, dictionary keys must be strings, every
 * container must be closed and nothing may follow the top value.
 * Dictionary keys need not be sorted: rtpengine's own replies are not.
 * The cost is O(input) time, no allocation, no recursion.
 */
#ifndef SM_BENC_H
#define SM_BENC_H

#include <stddef.h>
#include <stdint.h>

#define BENC_MAX_DEPTH 32

enum benc_type {
	BENC_INT = 1,
	BENC_STR,
	BENC_LIST,
	BENC_DICT,
};

/*
 * One decoded value.  Children follow their container in the node
 * array: a list's items one after another, a dictionary's key then
 * value for each pair.  The node after a whole subtree is
 * node + node->span, so siblings are walked without recursion.
 */
struct benc_node {
	enum benc_type type;
	int span;		/* nodes in this subtree, itself included */
	int count;		/* LIST: items; DICT: pairs; else 0 */
	int64_t i;		/* INT: the value */
	const char *s;		/* STR: the bytes (not NUL-terminated) */
	size_t len;
	const char *raw;	/* the whole encoding of this value */
	size_t raw_len;
};

/* ---- encoding ---- */

struct benc_enc {
	char *buf;
	size_t cap, len;
	int depth;		/* open containers */
	int err;		/* sticky: 0 or a negative errno */
};

/* Starts encoding into buf[0..cap); borrows buf. */
void benc_enc_init(struct benc_enc *e, char *buf, size_t cap);

void benc_put_str(struct benc_enc *e, const char *s, size_t len);
void benc_put_cstr(struct benc_enc *e, const char *s);
void benc_put_int(struct benc_enc *e, int64_t v);
/* Opens a dictionary or list; close it with benc_put_end(). */
void benc_put_dict(struct benc_enc *e);
void benc_put_list(struct benc_enc *e);
void benc_put_end(struct benc_enc *e);
/* Copies an already encoded value (a node's raw slice) unchanged. */
void benc_put_raw(struct benc_enc *e, const char *raw, size_t len);
/* A dictionary item with a string value: key then value. */
void benc_put_kv(struct benc_enc *e, const char *key, const char *val);

/*
 * Returns the encoded length, -ENOSPC when the buffer was too small,
 * or -EINVAL when containers are left open or closed too often.
 */
int benc_enc_finish(const struct benc_enc *e);

/* ---- decoding ---- */

/*
 * Parses buf[0..len) into nodes[0..cap).  On success returns the
 * number of nodes used (nodes[0] is the top value); the nodes borrow
 * from buf.  Returns -EPROTO for malformed input of any kind
 * (truncated, bad or hostile lengths, leading zeros, non-string keys,
 * nesting past BENC_MAX_DEPTH, trailing bytes), -ENOSPC when cap nodes
 * are not enough.
 */
int benc_decode(struct benc_node *nodes, int cap, const char *buf,
		size_t len);

/* The value of key in a dictionary node, or NULL (also for a non-dict). */
const struct benc_node *benc_dict_get(const struct benc_node *dict,
				      const char *key);

/* Whether n is a string equal to the NUL-terminated s. */
int benc_str_eq(const struct benc_node *n, const char *s);

/* The string value of key in dict, or NULL with *len untouched. */
const char *benc_dict_str(const struct benc_node *dict, const char *key,
			  size_t *len);

#endif
