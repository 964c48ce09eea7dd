/* SPDX-License-Identifier: MIT */
/* Round-robin and least-outstanding backend choice, both skipping backends marked down. */
#include "lb.h"

size_t
lb_round_robin(uint32_t *cursor, size_t n, uint64_t now_ms, size_t exclude,
               lb_down_until_fn down_until, const void *ctx)
{
    size_t best = LB_NONE;
    uint64_t best_until = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = (*cursor + k) % n;
        if (i == exclude)
            continue;
        uint64_t until = down_until(ctx, i);
        if (until <= now_ms) {
            best = i;
            break;
        }
        if (best == LB_NONE || until < best_until) {
            best = i;
            best_until = until;
        }
    }
    if (best != LB_NONE)
        *cursor = (uint32_t)((best + 1) % n);
    return best;
}

size_t
lb_least_outstanding(uint32_t *cursor, size_t n, uint64_t now_ms, size_t exclude,
                     lb_down_until_fn down_until, lb_load_fn load, const void *ctx)
{
    size_t best = LB_NONE, soonest = LB_NONE;
    uint32_t best_load = 0;
    uint64_t soonest_until = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = (*cursor + k) % n;
        if (i == exclude)
            continue;
        uint64_t until = down_until(ctx, i);
        if (until > now_ms) {
            /* Only matters when nobody is up: then, as lb_round_robin, the soonest back. */
            if (soonest == LB_NONE || until < soonest_until) {
                soonest = i;
                soonest_until = until;
            }
            continue;
        }
        /* Strictly fewer: on a tie the first from the cursor keeps it, so equal loads
         * rotate as the cursor moves. */
        uint32_t l = load(ctx, i);
        if (best == LB_NONE || l < best_load) {
            best = i;
            best_load = l;
            if (l == 0)
                break; /* nobody has fewer */
        }
    }
    if (best == LB_NONE)
        best = soonest;
    if (best != LB_NONE)
        *cursor = (uint32_t)((best + 1) % n);
    return best;
}
