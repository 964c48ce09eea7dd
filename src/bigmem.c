/* SPDX-License-Identifier: MIT */
/* Huge-page backed tables (see bigmem.h). */
#include "bigmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define BIGMEM_HUGE ((size_t)2 << 20)

#if defined(__SANITIZE_ADDRESS__)
#define BIGMEM_PLAIN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BIGMEM_PLAIN 1
#endif
#endif

#ifndef BIGMEM_PLAIN
static size_t
bigmem_len(size_t size)
{
    return (size + BIGMEM_HUGE - 1) & ~(BIGMEM_HUGE - 1);
}
#endif

void *
bigmem_alloc(size_t size)
{
#ifdef BIGMEM_PLAIN
    return calloc(1, size ? size : 1);
#else
    size_t len = bigmem_len(size ? size : 1);
    if (len < size) /* overflow */
        return NULL;
    /* Map one huge page more than needed and trim both ends to a 2 MiB boundary: only an
     * aligned block can be a huge page. */
    uint8_t *raw =
        mmap(NULL, len + BIGMEM_HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    uintptr_t start = ((uintptr_t)raw + BIGMEM_HUGE - 1) & ~(uintptr_t)(BIGMEM_HUGE - 1);
    size_t head = start - (uintptr_t)raw, tail = BIGMEM_HUGE - head;
    if (head > 0)
        munmap(raw, head);
    if (tail > 0)
        munmap((uint8_t *)start + len, tail);
#ifdef MADV_HUGEPAGE
    (void)madvise((void *)start, len, MADV_HUGEPAGE); /* a hint: fine if refused */
#endif
    return (void *)start;
#endif
}

void
bigmem_free(void *p, size_t size)
{
    if (p == NULL)
        return;
#ifdef BIGMEM_PLAIN
    (void)size;
    free(p);
#else
    munmap(p, bigmem_len(size ? size : 1));
#endif
}
