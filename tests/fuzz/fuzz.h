/*
 * fuzz.h - what every harness shares: the libFuzzer entry point and a
 * quiet log (a parser's log line per refused input would make the
 * fuzzer spend its time in write(2)).
 */
#ifndef SM_FUZZ_H
#define SM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lib/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A harness that readies something once defines FUZZ_SETUP as the
 * name of that function before including this file. */
#ifdef FUZZ_SETUP
static void FUZZ_SETUP(void);
#endif

/* Whether the slice s[0..len) and the string z (NULL: none) are the
 * same bytes: what a scan read against what libosip2 parsed. */
static inline int
fuzz_same(const char *s, size_t len, const char *z)
{
	return z != NULL && strlen(z) == len && memcmp(s, z, len) == 0;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init("fuzz", LOG_LVL_ERR);
	log_set_level(-1, -1);
#ifdef FUZZ_SETUP
	FUZZ_SETUP();
#endif
	return 0;
}

#endif
