/* SPDX-License-Identifier: MIT */
/* Memory for large tables read on the request path (the GeoIP IPv4 index, the per-worker
 * GeoIP cache): mapped in 2 MiB-aligned blocks the kernel is asked to back with huge pages
 * (MADV_HUGEPAGE, honoured when transparent huge pages are "always" or "madvise"). A table
 * of a dozen megabytes read at random otherwise costs a TLB miss on most reads, and under
 * a hypervisor a TLB miss is a two-level page walk: measured, it was most of a GeoIP
 * lookup. Without huge pages this is plain zeroed memory. Under AddressSanitizer it is
 * calloc(), so overflows are still caught. */
#ifndef MERIDIAN_BIGMEM_H
#define MERIDIAN_BIGMEM_H

#include <stddef.h>

/* `size` bytes, zeroed; NULL when out of memory. Free with bigmem_free(p, size), the same
 * size. */
void *bigmem_alloc(size_t size);
void bigmem_free(void *p, size_t size);

#endif
