/* SPDX-License-Identifier: MIT */
/* Round-robin with down-skipping. */
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
    (void)load; /* being written */
    return lb_round_robin(cursor, n, now_ms, exclude, down_until, ctx);
}
