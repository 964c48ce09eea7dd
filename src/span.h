/* SPDX-License-Identifier: MIT */
/* A borrowed run of bytes: what parsers hand out instead of copies. A span never owns
 * its bytes; whoever holds one must know how long the buffer behind it lives. */
#ifndef MERIDIAN_SPAN_H
#define MERIDIAN_SPAN_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

struct span {
    const char *ptr; /* borrows */
    size_t len;
};

#define SPAN_LIT(s) ((struct span){(s), sizeof(s) - 1})

static inline bool
span_eq(struct span a, const char *lit, size_t lit_len)
{
    return a.len == lit_len && memcmp(a.ptr, lit, lit_len) == 0;
}

/* ASCII case-insensitive comparison, for header names and tokens. */
static inline bool
span_caseeq(struct span a, const char *lit, size_t lit_len)
{
    return a.len == lit_len && strncasecmp(a.ptr, lit, lit_len) == 0;
}

#define SPAN_EQ_LIT(a, lit) span_eq((a), (lit), sizeof(lit) - 1)
#define SPAN_CASEEQ_LIT(a, lit) span_caseeq((a), (lit), sizeof(lit) - 1)

#endif
