/* SPDX-License-Identifier: MIT */
/* Choosing a backend within a region's pool: round-robin (plain, or weighted over a
 * schedule) or least outstanding requests (per unit of weight), all skipping backends
 * marked down (a failed connect, later a failed health check). A backend of weight 0
 * (drained) is never chosen, not even when everything else is down.
 * Pure code: the caller owns the cursor and the schedule and says through callbacks until
 * when each backend is down, how loaded it is and how heavy, so this is table-tested
 * without sockets. */
#ifndef MERIDIAN_LB_H
#define MERIDIAN_LB_H

#include <stddef.h>
#include <stdint.h>

#define LB_NONE ((size_t)-1)
#define LB_WEIGHT_MAX 256

typedef uint64_t (*lb_down_until_fn)(const void *ctx, size_t i);

/* Pick the next of n backends from *cursor on whose down mark (down_until(ctx, i), in ms)
 * is <= now_ms, skipping index `exclude` (LB_NONE for none). If every candidate is down,
 * pick the one whose mark ends soonest rather than fail: a proxy that refuses to try is
 * worse than one that tries a doubtful backend. Advances *cursor past the pick. Returns
 * LB_NONE only when there is no candidate at all (n == 0, or n == 1 and it is excluded). */
size_t lb_round_robin(uint32_t *cursor, size_t n, uint64_t now_ms, size_t exclude,
                      lb_down_until_fn down_until, const void *ctx);

/* Weighted round-robin is nginx's smooth weighted round-robin (ngx_http_upstream_round_robin.c):
 * each pick adds every backend's weight to its running score, takes the highest score
 * (the first on a tie) and takes the total weight off the winner's. With fixed weights
 * that sequence repeats every sum(weights) / gcd(weights) picks, each backend picked
 * exactly its weight / gcd times per cycle and spread out (5:1:1 gives a a b a c a a, never
 * a burst of five). Workers share no state on the request path, so instead of keeping the
 * scores per worker the cycle is laid out once per config generation (as HAProxy's map
 * based static-rr does) and each worker walks it with its own cursor.
 *
 * The cycle's length for n weights (each 0..LB_WEIGHT_MAX): 0 when every weight is 0. */
size_t lb_schedule_len(const uint32_t *weights, size_t n);

/* Writes the cycle (lb_schedule_len(weights, n) backend indexes) into `out`. Backends of
 * weight 0 do not appear. Returns 0, or -1 when out of memory (scratch of n scores). */
int lb_schedule_build(const uint32_t *weights, size_t n, uint32_t *out);

/* The next backend of the cycle `schedule` (len entries, from lb_schedule_build) at or
 * after position *cursor that is not down and not `exclude`; *cursor moves past the entry
 * picked, so over one walk of the cycle each backend up is picked exactly as often as its
 * weight says, down ones' turns going to the next up in the cycle. Every candidate down:
 * the one whose mark ends soonest, as lb_round_robin. Returns LB_NONE when the cycle is
 * empty or holds only `exclude`. */
size_t lb_weighted_round_robin(uint32_t *cursor, const uint32_t *schedule, size_t len,
                               uint64_t now_ms, size_t exclude, lb_down_until_fn down_until,
                               const void *ctx);

/* This worker's requests in flight on backend i. */
typedef uint32_t (*lb_load_fn)(const void *ctx, size_t i);
/* Backend i's weight, 0..LB_WEIGHT_MAX; 0: never picked. */
typedef uint32_t (*lb_weight_fn)(const void *ctx, size_t i);

/* Least outstanding requests: among the backends not down (as above) and of weight > 0,
 * the one with the fewest requests in flight per unit of weight (load_i / weight_i,
 * compared cross-multiplied: no division, no rounding); ties go to the first from *cursor
 * on, so equal loads still rotate. `weight` NULL: every backend weighs 1. When every
 * candidate is down, the same fallback as lb_round_robin among those of weight > 0.
 * Advances *cursor past the pick. Returns LB_NONE when there is no candidate of weight > 0
 * at all. */
size_t lb_least_outstanding(uint32_t *cursor, size_t n, uint64_t now_ms, size_t exclude,
                            lb_down_until_fn down_until, lb_load_fn load, lb_weight_fn weight,
                            const void *ctx);

/* lb_least_outstanding() for unequal weights: the candidates are walked in the order of
 * the weighted cycle `schedule` (len entries, from lb_schedule_build; *cursor is a position
 * in it), so that ties - above all, every backend idle - are broken as weighted
 * round-robin would, in proportion to the weights (nginx's least_conn does the same). */
size_t lb_least_outstanding_scheduled(uint32_t *cursor, const uint32_t *schedule, size_t len,
                                      uint64_t now_ms, size_t exclude, lb_down_until_fn down_until,
                                      lb_load_fn load, lb_weight_fn weight, const void *ctx);

#endif
