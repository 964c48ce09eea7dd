/* SPDX-License-Identifier: MIT */
/* Round-robin (plain and smooth weighted) and least-outstanding backend choice, all
 * skipping backends marked down and never choosing one of weight 0. */
#include "lb.h"

#include <stdlib.h>

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

static uint32_t
gcd(uint32_t a, uint32_t b)
{
    while (b != 0) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* The weights' greatest common divisor and sum; 0 and 0 when all are 0. */
static uint32_t
weights_gcd(const uint32_t *weights, size_t n, uint64_t *sum)
{
    uint32_t g = 0;
    *sum = 0;
    for (size_t i = 0; i < n; i++) {
        g = gcd(g, weights[i]);
        *sum += weights[i];
    }
    return g;
}

size_t
lb_schedule_len(const uint32_t *weights, size_t n)
{
    uint64_t sum;
    uint32_t g = weights_gcd(weights, n, &sum);
    return g == 0 ? 0 : (size_t)(sum / g);
}

int
lb_schedule_build(const uint32_t *weights, size_t n, uint32_t *out)
{
    uint64_t sum;
    uint32_t g = weights_gcd(weights, n, &sum);
    if (g == 0)
        return 0;
    /* Scaling every weight by 1/g scales every score alike: the same sequence, shorter. */
    int64_t total = (int64_t)(sum / g);
    int64_t *score = calloc(n, sizeof(*score));
    if (score == NULL)
        return -1;
    for (int64_t k = 0; k < total; k++) {
        size_t best = LB_NONE;
        for (size_t i = 0; i < n; i++) {
            if (weights[i] == 0)
                continue;
            score[i] += weights[i] / g;
            if (best == LB_NONE || score[i] > score[best])
                best = i;
        }
        score[best] -= total;
        out[k] = (uint32_t)best;
    }
    free(score);
    return 0;
}

size_t
lb_weighted_round_robin(uint32_t *cursor, const uint32_t *schedule, size_t len, uint64_t now_ms,
                        size_t exclude, lb_down_until_fn down_until, const void *ctx)
{
    size_t best = LB_NONE, best_pos = 0;
    uint64_t best_until = 0;
    for (size_t k = 0; k < len; k++) {
        size_t pos = ((size_t)*cursor + k) % len;
        size_t i = schedule[pos];
        if (i == exclude)
            continue;
        uint64_t until = down_until(ctx, i);
        if (until <= now_ms) {
            best = i;
            best_pos = pos;
            break;
        }
        if (best == LB_NONE || until < best_until) {
            best = i;
            best_pos = pos;
            best_until = until;
        }
    }
    if (best != LB_NONE)
        *cursor = (uint32_t)((best_pos + 1) % len);
    return best;
}

/* Both least-outstanding pickers: the candidates are positions 0..len-1 from *cursor on,
 * each the backend schedule[pos] (the weighted cycle), or pos itself when schedule is NULL.
 * The first candidate in that order with the fewest requests in flight per unit of weight
 * (l / w < best_load / best_weight, multiplied out) wins: on a tie the first from the
 * cursor keeps it, so equal loads rotate as the cursor moves, and with a cycle they follow
 * the weights (all idle is the usual tie at low rates). */
static size_t
least_outstanding(uint32_t *cursor, const uint32_t *schedule, size_t len, uint64_t now_ms,
                  size_t exclude, lb_down_until_fn down_until, lb_load_fn load,
                  lb_weight_fn weight, const void *ctx)
{
    size_t best = LB_NONE, best_at = 0, soonest = LB_NONE, soonest_at = 0;
    uint32_t best_load = 0, best_weight = 1;
    uint64_t soonest_until = 0;
    for (size_t k = 0; k < len; k++) {
        size_t at = (*cursor + k) % len, i = schedule != NULL ? schedule[at] : at;
        if (i == exclude)
            continue;
        uint32_t w = weight != NULL ? weight(ctx, i) : 1;
        if (w == 0)
            continue; /* drained: not even a last resort */
        uint64_t until = down_until(ctx, i);
        if (until > now_ms) {
            /* Only matters when nobody is up: then, as lb_round_robin, the soonest back. */
            if (soonest == LB_NONE || until < soonest_until) {
                soonest = i;
                soonest_at = at;
                soonest_until = until;
            }
            continue;
        }
        uint32_t l = load(ctx, i);
        if (best == LB_NONE || (uint64_t)l * best_weight < (uint64_t)best_load * w) {
            best = i;
            best_at = at;
            best_load = l;
            best_weight = w;
            if (l == 0)
                break; /* nobody has fewer */
        }
    }
    if (best == LB_NONE) {
        best = soonest;
        best_at = soonest_at;
    }
    if (best != LB_NONE)
        *cursor = (uint32_t)((best_at + 1) % len);
    return best;
}

size_t
lb_least_outstanding(uint32_t *cursor, size_t n, uint64_t now_ms, size_t exclude,
                     lb_down_until_fn down_until, lb_load_fn load, lb_weight_fn weight,
                     const void *ctx)
{
    return least_outstanding(cursor, NULL, n, now_ms, exclude, down_until, load, weight, ctx);
}

size_t
lb_least_outstanding_scheduled(uint32_t *cursor, const uint32_t *schedule, size_t len,
                               uint64_t now_ms, size_t exclude, lb_down_until_fn down_until,
                               lb_load_fn load, lb_weight_fn weight, const void *ctx)
{
    return least_outstanding(cursor, schedule, len, now_ms, exclude, down_until, load, weight,
                             ctx);
}

