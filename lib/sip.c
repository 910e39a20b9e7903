/*
 * sip.c - Via branch encoding, see sip.h.
 */
#include "lib/sip.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define SIP_BRANCH_PREFIX "z9hG4bKsm"
#define SIP_BRANCH_PREFIX_LEN (sizeof(SIP_BRANCH_PREFIX) - 1)

int
sip_branch_make(char *out, size_t cap, int core_id, uint64_t token)
{
	int n = snprintf(out, cap, SIP_BRANCH_PREFIX "%d.%016llx", core_id,
			 (unsigned long long)token);

	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	return n;
}

int
sip_branch_core(const char *branch, size_t len)
{
	size_t i = SIP_BRANCH_PREFIX_LEN;
	int id = 0;

	if (len <= i || strncmp(branch, SIP_BRANCH_PREFIX, i) != 0)
		return -1;
	for (; i < len && branch[i] >= '0' && branch[i] <= '9'; i++) {
		id = id * 10 + (branch[i] - '0');
		if (id > 65535)
			return -1;
	}
	if (i == SIP_BRANCH_PREFIX_LEN || i >= len || branch[i] != '.' || id == 0)
		return -1;
	return id;
}
