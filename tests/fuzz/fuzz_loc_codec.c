/*
 * fuzz_loc_codec.c - loc_binding_decode(), the binding values a core
 * reads back from Redis (which anyone with Redis access can write).
 * A decoded binding must encode, and that encoding decode to the same
 * binding.
 */
#include <string.h>

#include "location/loc_int.h"
#include "tests/fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct loc_binding b, b2;
	static char buf[LOC_REDIS_VAL_MAX], field[LOC_FIELD_MAX];
	static char buf2[LOC_REDIS_VAL_MAX];
	int n, n2;

	if (loc_binding_decode(&b, (const char *)data, size) != 0)
		return 0;
	loc_binding_field(&b, field, sizeof(field));
	n = loc_binding_encode(&b, buf, sizeof(buf));
	if (n < 0)
		return 0;	/* decoded, but too big to store again */
	if (loc_binding_decode(&b2, buf, (size_t)n) != 0)
		__builtin_trap();
	n2 = loc_binding_encode(&b2, buf2, sizeof(buf2));
	if (n2 != n || memcmp(buf, buf2, (size_t)n) != 0)
		__builtin_trap();
	return 0;
}
