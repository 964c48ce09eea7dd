/* SPDX-License-Identifier: MIT */
/* Choosing a backend within a region's pool: round-robin or least outstanding requests,
 * both skipping backends marked down (a failed connect, later a failed health check).
 * Pure code: the caller owns the cursor and says through callbacks until when each
 * backend is down and how loaded it is, so this is table-tested without sockets. */
#ifndef MERIDIAN_LB_H
#define MERIDIAN_LB_H

#include <stddef.h>
#include <stdint.h>

#define LB_NONE ((size_t)-1)

typedef uint64_t (*lb_down_until_fn)(const void *ctx, size_t i);

/* Pick the next of n backends from *cursor on whose down mark (down_until(ctx, i), in ms)
 * is <= now_ms, skipping index `exclude` (LB_NONE for none). If every candidate is down,
 * pick the one whose mark ends soonest rather than fail: a proxy that refuses to try is
 * worse than one that tries a doubtful backend. Advances *cursor past the pick. Returns
 * LB_NONE only when there is no candidate at all (n == 0, or n == 1 and it is excluded). */
size_t lb_round_robin(uint32_t *cursor, size_t n, uint64_t now_ms, size_t exclude,
                      lb_down_until_fn down_until, const void *ctx);

/* This worker's requests in flight on backend i. */
typedef uint32_t (*lb_load_fn)(const void *ctx, size_t i);

/* Least outstanding requests: among the backends not down (as above), the one with the
 * fewest requests in flight; ties go to the first from *cursor on, so equal loads still
 * rotate. When every candidate is down, the same fallback as lb_round_robin. Advances
 * *cursor past the pick. Returns LB_NONE as lb_round_robin does. */
size_t lb_least_outstanding(uint32_t *cursor, size_t n, uint64_t now_ms, size_t exclude,
                            lb_down_until_fn down_until, lb_load_fn load, const void *ctx);

#endif
