/* SPDX-License-Identifier: MIT */
/* A bounded writer for serialising message heads into a buffer: appends until the room
 * runs out, then only remembers that it did. Callers check `overflow` once at the end. */
#ifndef MERIDIAN_WRITER_H
#define MERIDIAN_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "span.h"

struct writer {
    char *p;   /* borrows: the next byte to write */
    char *end; /* borrows: one past the room */
    bool overflow;
};

static inline void
writer_put(struct writer *o, const char *p, size_t n)
{
    if (n == 0)
        return; /* p may be NULL for an empty span */
    if ((size_t)(o->end - o->p) < n) {
        o->overflow = true;
        return;
    }
    memcpy(o->p, p, n);
    o->p += n;
}

#define WRITER_LIT(o, lit) writer_put((o), (lit), sizeof(lit) - 1)
#define WRITER_SPAN(o, sp) writer_put((o), (sp).ptr, (sp).len)

#endif
