/*
 * sip_alloc.c - libosip2's allocator in the edge and the core: free
 * lists by size (see sip_alloc.h).
 *
 * libosip2 allocates and frees a few dozen small blocks per header of
 * every message it parses, clones or prints.  glibc keeps only 7 freed
 * blocks of a size in its per-thread cache; the rest go to fastbins,
 * and the next large request (a nanomsg chunk) consolidates them all:
 * perf put _int_malloc and malloc_consolidate at 19% of a core's CPU
 * relaying MESSAGE at 3,000/s, more than the parse itself.  Here a
 * freed block of up to SIP_ALLOC_MAX bytes goes on the list of its
 * 16-byte class and the next request of that class takes it back: O(1)
 * both ways, no coalescing.  Blocks on the lists are never returned to
 * libc, so the core keeps the peak of what its transactions held.
 * Larger blocks go to libc.  Lists are per thread (libosip2 runs on the
 * loop's thread; a block freed elsewhere just joins that thread's
 * list).  Each block has a 16-byte header with its class (0: libc's)
 * and requested size.
 */
#include "lib/sip_alloc.h"

#include <osipparser2/osip_port.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Under ASan every block must be libc's, so that it sees each one. */
#if !defined(__SANITIZE_ADDRESS__)

#define SIP_ALLOC_MAX 512
#define SIP_ALLOC_STEP 16
#define SIP_ALLOC_CLASSES (SIP_ALLOC_MAX / SIP_ALLOC_STEP + 1)

struct sip_block {
	union {
		struct sip_block *next;	/* on a free list */
		size_t cls;			/* in use: its class, 0 libc */
	} u;
	size_t size;				/* requested, for realloc */
};

static _Thread_local struct sip_block *sip_free_lists[SIP_ALLOC_CLASSES];

static void *
sip_alloc_malloc(size_t size)
{
	size_t cls = size <= SIP_ALLOC_MAX ?
		     (size + SIP_ALLOC_STEP - 1) / SIP_ALLOC_STEP : 0;
	struct sip_block *b;

	if (cls == 0 && size <= SIP_ALLOC_MAX)
		cls = 1;		/* malloc(0): a block all the same */
	if (cls && sip_free_lists[cls]) {
		b = sip_free_lists[cls];
		sip_free_lists[cls] = b->u.next;
	} else {
		b = malloc(sizeof(*b) + (cls ? cls * SIP_ALLOC_STEP : size));
		if (b == NULL)
			return NULL;
	}
	b->u.cls = cls;
	b->size = size;
	return b + 1;
}

static void
sip_alloc_free(void *p)
{
	struct sip_block *b;
	size_t cls;

	if (p == NULL)
		return;
	b = (struct sip_block *)p - 1;
	cls = b->u.cls;
	if (cls == 0) {
		free(b);
		return;
	}
	b->u.next = sip_free_lists[cls];
	sip_free_lists[cls] = b;
}

static void *
sip_alloc_realloc(void *p, size_t size)
{
	struct sip_block *b;
	void *n;

	if (p == NULL)
		return sip_alloc_malloc(size);
	b = (struct sip_block *)p - 1;
	if (b->u.cls && size <= b->u.cls * SIP_ALLOC_STEP) {
		b->size = size;
		return p;
	}
	n = sip_alloc_malloc(size);
	if (n == NULL)
		return NULL;
	memcpy(n, p, b->size < size ? b->size : size);
	sip_alloc_free(p);
	return n;
}

void
sip_alloc_install(void)
{
	osip_set_allocators(sip_alloc_malloc, sip_alloc_realloc,
			    sip_alloc_free);
}

#else

void
sip_alloc_install(void)
{
}

#endif
