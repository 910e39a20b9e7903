/*
 * key.h - the cluster's keys: one master secret, one derived key per
 * use.
 *
 * The master is [cluster] secret when set (the same on every host, so
 * anything minted on one host verifies on another), else 32 random
 * bytes in run_dir/cluster.key, made by the first process of a host and
 * read by the others (enough for one host; a cluster of several hosts
 * must set the secret).  Every use gets its own key through HKDF-SHA256
 * (RFC 5869) with the use's name as info, so a MAC minted for one use
 * (a Via branch, a nonce, a guest password, an envelope) is never valid
 * for another, and a leaked derived key does not give the master.
 */
#ifndef SM_KEY_H
#define SM_KEY_H

#include <stddef.h>

#include "lib/cfg.h"

#define KEY_LEN 32

/* The uses; each string is the HKDF info of its key. */
#define KEY_USE_SIGN	"sipmesh sign"	/* Record-Route values */
#define KEY_USE_BRANCH	"sipmesh branch"	/* Via branches (lib/sip.h):
						   cores and edges */
#define KEY_USE_NONCE	"sipmesh nonce"	/* digest nonces */
#define KEY_USE_GUEST	"sipmesh guest"	/* KwikyKonf guest passwords */
#define KEY_USE_LINK	"sipmesh link"	/* envelopes between hosts */
#define KEY_USE_ROUTE	"sipmesh route"	/* the Call-ID -> core rendezvous */
#define KEY_USE_LIMIT	"sipmesh limit"	/* the edges' per-source rate table */

/*
 * Loads the master key of the cluster c describes into master
 * (KEY_LEN bytes): HKDF-extract of [cluster] secret, or the host's
 * random key file (created 0600 when missing).  Returns 0, or a
 * negative errno (-EIO when the file cannot be made or read whole).
 */
int key_master_load(const struct cfg *c, unsigned char *master);

/*
 * Derives the key for use (a KEY_USE_* string) from master into out
 * (KEY_LEN bytes).  Returns 0, or -EIO when OpenSSL fails.
 */
int key_derive(const unsigned char *master, const char *use,
	       unsigned char *out);

/* Both at once: the key for use in the cluster c describes. */
int key_load(const struct cfg *c, const char *use, unsigned char *out);

#endif
