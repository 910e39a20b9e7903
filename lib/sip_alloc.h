/*
 * sip_alloc.h - libosip2's allocator in sipmesh's processes: freed
 * blocks of up to 512 bytes go on a free list per 16-byte class and are
 * reused in O(1), never coalesced (glibc's fastbins and their
 * consolidation cost a core more than the parse itself); larger blocks
 * are libc's.  Blocks on the lists are never returned to libc.
 */
#ifndef SM_SIP_ALLOC_H
#define SM_SIP_ALLOC_H

/* Makes libosip2 allocate from the free lists.  Call once, before any
 * libosip2 allocation (the blocks it hands out before would reach the
 * wrong free).  Does nothing under ASan, which must see every block. */
void sip_alloc_install(void);

#endif
