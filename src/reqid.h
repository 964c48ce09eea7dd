/* SPDX-License-Identifier: MIT */
/* Request ids: kept from the client's X-Request-Id when it is sane, else generated. A
 * generator belongs to one worker: a random 64-bit key and a counter, mixed, so ids are
 * unique within a process and unguessable across a fleet. Pure code apart from seeding. */
#ifndef MERIDIAN_REQID_H
#define MERIDIAN_REQID_H

#include <stdbool.h>
#include <stdint.h>

#include "span.h"

#define REQID_LEN 32     /* generated ids: 32 lowercase hex digits */
#define REQID_MAX_LEN 128 /* longest id accepted from a client */

struct reqid_gen {
    uint64_t key;
    uint64_t counter;
};

/* Seed from getrandom(2) (or `seed` when non-zero, for tests). */
void reqid_gen_init(struct reqid_gen *g, uint64_t seed);

/* Write REQID_LEN hex digits and a NUL into out. */
void reqid_generate(struct reqid_gen *g, char out[REQID_LEN + 1]);

/* A client-sent id is kept if it is 1..REQID_MAX_LEN bytes of [A-Za-z0-9._:+/=-]: nothing
 * that could break a log line or a header. */
bool reqid_is_acceptable(struct span id);

#endif
