/*
 * sip.h - small SIP helpers shared by edge and core: the Via branch
 * that names the core owning a client transaction.
 *
 * A core writes branch "z9hG4bKsm<core>.<serial>.<mac>" (RFC 3261
 * magic cookie, then "sm", the core id in decimal, a per-transaction
 * serial and a keyed MAC, both 16 hex digits).  Any edge that receives
 * a response reads the core id back from the top Via and hands the
 * response to that core, so responses find their transaction through
 * whichever edge they arrive on.  The edge cannot check the MAC (it
 * holds no key and needs none): the core that minted the branch does,
 * before it looks for a transaction (core/core_sign.c).
 */
#ifndef SM_SIP_H
#define SM_SIP_H

#include <stddef.h>
#include <stdint.h>

#define SIP_BRANCH_MAX 64

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

#endif
