/*
 * sip.h - small SIP helpers shared by edge and core: the Via branch
 * that names the core owning a client transaction.
 *
 * A core writes branch "z9hG4bKsm<core>.<txn>" (RFC 3261 magic cookie,
 * then "sm", the core id in decimal, a dot and a per-transaction
 * token).  Any edge that receives a response reads the core id back
 * from the top Via and hands the response to that core, so responses
 * find their transaction through whichever edge they arrive on.
 */
#ifndef SM_SIP_H
#define SM_SIP_H

#include <stddef.h>
#include <stdint.h>

#define SIP_BRANCH_MAX 64

/* Writes the branch for (core_id, token) into out; returns its length,
 * or -ENOSPC. */
int sip_branch_make(char *out, size_t cap, int core_id, uint64_t token);

/* Returns the core id named by a branch this cluster made, or -1 when
 * the branch is not one of ours. */
int sip_branch_core(const char *branch, size_t len);

#endif
