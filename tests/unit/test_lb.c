/* SPDX-License-Identifier: MIT */
/* lb_round_robin, the smooth weighted round-robin cycle and its walk, and
 * lb_least_outstanding: rotation, least load (per unit of weight), skipping down backends,
 * exclusion, all-down fallback, weight 0 never picked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>

#include "lb.h"

static uint64_t
down_until(const void *ctx, size_t i)
{
    return ((const uint64_t *)ctx)[i];
}

struct lb_case {
    const char *name;
    size_t n;
    uint64_t down[5];
    uint64_t now;
    size_t exclude;
    uint32_t cursor;
    size_t want[6]; /* successive picks */
};

static const struct lb_case cases[] = {
    {"rotates over all", 3, {0, 0, 0}, 100, LB_NONE, 0, {0, 1, 2, 0, 1, 2}},
    {"starts at the cursor", 3, {0, 0, 0}, 100, LB_NONE, 2, {2, 0, 1, 2, 0, 1}},
    {"skips a down backend", 3, {0, 500, 0}, 100, LB_NONE, 0, {0, 2, 0, 2, 0, 2}},
    {"a mark in the past is up", 2, {50, 0}, 100, LB_NONE, 0, {0, 1, 0, 1, 0, 1}},
    {"excludes", 3, {0, 0, 0}, 100, 1, 0, {0, 2, 0, 2, 0, 2}},
    {"all down: soonest back", 3, {900, 300, 600}, 100, LB_NONE, 0, {1, 1, 1, 1, 1, 1}},
    {"all down but excluded one", 2, {900, 300}, 100, 1, 0, {0, 0, 0, 0, 0, 0}},
    {"single backend", 1, {0}, 100, LB_NONE, 0, {0, 0, 0, 0, 0, 0}},
    {"single backend excluded",
     1,
     {0},
     100,
     0,
     0,
     {LB_NONE, LB_NONE, LB_NONE, LB_NONE, LB_NONE, LB_NONE}},
    {"no backends",
     0,
     {0},
     100,
     LB_NONE,
     0,
     {LB_NONE, LB_NONE, LB_NONE, LB_NONE, LB_NONE, LB_NONE}},
};

static void
test_table(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        const struct lb_case *tc = &cases[c];
        uint32_t cursor = tc->cursor;
        for (size_t k = 0; k < 6; k++) {
            size_t got = lb_round_robin(&cursor, tc->n, tc->now, tc->exclude, down_until, tc->down);
            if (got != tc->want[k])
                fail_msg("%s: pick %zu: got %zu, want %zu", tc->name, k, got, tc->want[k]);
        }
    }
}

/* ---- least outstanding ---- */

struct lo_ctx {
    uint64_t down[5];
    uint32_t load[5];
};

static uint64_t
lo_down_until(const void *ctx, size_t i)
{
    return ((const struct lo_ctx *)ctx)->down[i];
}

static uint32_t
lo_load(const void *ctx, size_t i)
{
    return ((const struct lo_ctx *)ctx)->load[i];
}

struct lo_case {
    const char *name;
    size_t n;
    struct lo_ctx ctx;
    uint64_t now;
    size_t exclude;
    uint32_t cursor;
    size_t want[6]; /* successive picks, loads unchanged */
};

static const struct lo_case lo_cases[] = {
    {"picks the least loaded", 3, {{0, 0, 0}, {5, 1, 3}}, 100, LB_NONE, 0, {1, 1, 1, 1, 1, 1}},
    {"least loaded before the cursor",
     3,
     {{0, 0, 0}, {0, 4, 2}},
     100,
     LB_NONE,
     1,
     {0, 0, 0, 0, 0, 0}},
    {"equal loads rotate", 3, {{0, 0, 0}, {2, 2, 2}}, 100, LB_NONE, 0, {0, 1, 2, 0, 1, 2}},
    {"equal loads from the cursor", 3, {{0, 0, 0}, {2, 2, 2}}, 100, LB_NONE, 2, {2, 0, 1, 2, 0, 1}},
    {"cursor past n wraps", 3, {{0, 0, 0}, {0, 0, 0}}, 100, LB_NONE, 7, {1, 2, 0, 1, 2, 0}},
    {"ties among the least rotate",
     4,
     {{0, 0, 0, 0}, {1, 4, 1, 4}},
     100,
     LB_NONE,
     0,
     {0, 2, 0, 2, 0, 2}},
    {"skips a down backend however idle",
     3,
     {{0, 500, 0}, {5, 0, 3}},
     100,
     LB_NONE,
     0,
     {2, 2, 2, 2, 2, 2}},
    {"a mark in the past is up", 2, {{50, 0}, {0, 1}}, 100, LB_NONE, 0, {0, 0, 0, 0, 0, 0}},
    {"a mark at now is up", 2, {{100, 0}, {0, 1}}, 100, LB_NONE, 0, {0, 0, 0, 0, 0, 0}},
    {"excludes the least loaded", 3, {{0, 0, 0}, {0, 5, 3}}, 100, 0, 0, {2, 2, 2, 2, 2, 2}},
    {"all down: soonest back",
     3,
     {{900, 300, 600}, {0, 9, 0}},
     100,
     LB_NONE,
     0,
     {1, 1, 1, 1, 1, 1}},
    {"all down, equal marks: rotate", 2, {{300, 300}, {0, 0}}, 100, LB_NONE, 0, {0, 1, 0, 1, 0, 1}},
    {"all down but excluded one", 2, {{900, 300}, {0, 0}}, 100, 1, 0, {0, 0, 0, 0, 0, 0}},
    {"single backend", 1, {{0}, {7}}, 100, LB_NONE, 0, {0, 0, 0, 0, 0, 0}},
    {"single backend down", 1, {{900}, {0}}, 100, LB_NONE, 0, {0, 0, 0, 0, 0, 0}},
    {"single backend excluded",
     1,
     {{0}, {0}},
     100,
     0,
     0,
     {LB_NONE, LB_NONE, LB_NONE, LB_NONE, LB_NONE, LB_NONE}},
    {"no backends",
     0,
     {{0}, {0}},
     100,
     LB_NONE,
     0,
     {LB_NONE, LB_NONE, LB_NONE, LB_NONE, LB_NONE, LB_NONE}},
};

static void
test_least_outstanding(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof(lo_cases) / sizeof(lo_cases[0]); c++) {
        const struct lo_case *tc = &lo_cases[c];
        uint32_t cursor = tc->cursor;
        for (size_t k = 0; k < 6; k++) {
            uint32_t before = cursor;
            size_t got = lb_least_outstanding(&cursor, tc->n, tc->now, tc->exclude, lo_down_until,
                                              lo_load, NULL, &tc->ctx);
            if (got != tc->want[k])
                fail_msg("%s: pick %zu: got %zu, want %zu", tc->name, k, got, tc->want[k]);
            if (got == LB_NONE ? cursor != before : cursor != (got + 1) % tc->n)
                fail_msg("%s: pick %zu: cursor %u after %zu", tc->name, k, cursor, got);
        }
    }
}

/* Requests that stay in flight even out the loads: each pick goes to the least loaded. */
static void
test_least_outstanding_evens_out(void **state)
{
    (void)state;
    struct lo_ctx ctx = {{0, 0, 0}, {2, 0, 1}};
    static const size_t want[] = {1, 2, 1, 2, 0, 1, 2, 0, 1};
    uint32_t cursor = 0;
    for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
        size_t got =
            lb_least_outstanding(&cursor, 3, 100, LB_NONE, lo_down_until, lo_load, NULL, &ctx);
        if (got != want[k])
            fail_msg("pick %zu: got %zu, want %zu", k, got, want[k]);
        ctx.load[got]++;
    }
    assert_int_equal(ctx.load[0], 4);
    assert_int_equal(ctx.load[1], 4);
    assert_int_equal(ctx.load[2], 4);
}

/* ---- smooth weighted round-robin ---- */

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

struct sched_case {
    const char *name;
    size_t n;
    uint32_t weights[5];
    size_t len;
    uint32_t want[16]; /* the cycle */
};

static const struct sched_case sched_cases[] = {
    {"equal weights: plain round-robin", 3, {1, 1, 1}, 3, {0, 1, 2}},
    {"equal weights other than 1", 3, {7, 7, 7}, 3, {0, 1, 2}},
    /* The example of nginx's commit 52327e0627f4 ("smooth weighted round-robin"). */
    {"nginx's 5:1:1", 3, {5, 1, 1}, 7, {0, 0, 1, 0, 2, 0, 0}},
    {"3:1", 2, {3, 1}, 4, {0, 0, 1, 0}},
    {"reduced by the gcd", 2, {4, 2}, 3, {0, 1, 0}},
    {"1:3: the heavy one first", 2, {1, 3}, 4, {1, 0, 1, 1}},
    {"weight 0 left out", 4, {0, 1, 0, 1}, 2, {1, 3}},
    {"one backend", 1, {9}, 1, {0}},
    {"all weight 0", 2, {0, 0}, 0, {0}},
    {"no backends", 0, {0}, 0, {0}},
};

static void
test_schedule(void **state)
{
    (void)state;
    for (size_t c = 0; c < N_ELEMS(sched_cases); c++) {
        const struct sched_case *tc = &sched_cases[c];
        uint32_t got[16];
        size_t len = lb_schedule_len(tc->weights, tc->n);
        if (len != tc->len)
            fail_msg("%s: length %zu, want %zu", tc->name, len, tc->len);
        assert_int_equal(lb_schedule_build(tc->weights, tc->n, got), 0);
        for (size_t k = 0; k < len; k++)
            if (got[k] != tc->want[k])
                fail_msg("%s: entry %zu: got %u, want %u", tc->name, k, got[k], tc->want[k]);
    }
}

/* Over one cycle each backend comes exactly weight / gcd times; heavy and extreme weights;
 * and the picks are spread: backend i never comes more than ceil(w_i / (W - w_i)) + 1 times
 * in a row (W the total; the even spread is ceil(w_i / (W - w_i))), where a plain weighted
 * rotation would send it w_i in a burst (7 of 16 in a row for the first set). */
static void
test_schedule_counts_and_spread(void **state)
{
    (void)state;
    static const uint32_t sets[][5] = {
        {7, 3, 0, 5, 1},  {256, 1, 0, 0, 0}, {256, 256, 255, 0, 0},
        {2, 4, 6, 8, 10}, {1, 1, 1, 1, 1},   {100, 50, 25, 10, 1},
    };
    for (size_t c = 0; c < N_ELEMS(sets); c++) {
        const uint32_t *w = sets[c];
        uint32_t g = 0, total = 0, count[5] = {0};
        for (size_t i = 0; i < 5; i++) {
            uint32_t a = g, b = w[i];
            while (b) {
                uint32_t t = a % b;
                a = b;
                b = t;
            }
            g = a;
            total += w[i];
        }
        size_t len = lb_schedule_len(w, 5);
        assert_int_equal(len, total / g);
        uint32_t *cycle = calloc(len, sizeof(*cycle));
        assert_non_null(cycle);
        assert_int_equal(lb_schedule_build(w, 5, cycle), 0);
        for (size_t k = 0; k < len; k++)
            count[cycle[k]]++;
        for (size_t i = 0; i < 5; i++)
            if (count[i] != w[i] / g)
                fail_msg("set %zu: backend %zu %u times, want %u", c, i, count[i], w[i] / g);
        /* Longest run of each backend, around the cycle's end too. */
        for (size_t i = 0; i < 5; i++) {
            uint32_t wi = w[i] / g, rest = (uint32_t)len - wi, run = 0, longest = 0;
            if (wi == 0 || rest == 0)
                continue;
            for (size_t k = 0; k < 2 * len; k++) {
                run = cycle[k % len] == i ? run + 1 : 0;
                longest = run > longest ? run : longest;
            }
            uint32_t bound = (wi + rest - 1) / rest + 1;
            if (longest > bound)
                fail_msg("set %zu: backend %zu %u times in a row, bound %u", c, i, longest, bound);
        }
        free(cycle);
    }
}

/* 1:1:1 never picks a backend twice in a row, over several cycles. */
static void
test_weighted_equal_never_twice(void **state)
{
    (void)state;
    static const uint32_t w[3] = {1, 1, 1};
    static const uint64_t down[3] = {0, 0, 0};
    uint32_t cycle[3], cursor = 0;
    size_t last = LB_NONE;
    assert_int_equal(lb_schedule_build(w, 3, cycle), 0);
    for (size_t k = 0; k < 30; k++) {
        size_t got = lb_weighted_round_robin(&cursor, cycle, 3, 100, LB_NONE, down_until, down);
        assert_true(got < 3);
        if (got == last)
            fail_msg("pick %zu: backend %zu twice in a row", k, got);
        last = got;
    }
}

struct wrr_case {
    const char *name;
    size_t n;
    uint32_t weights[4];
    uint64_t down[4];
    size_t exclude;
    uint32_t cursor;
    size_t npicks;
    size_t want[14]; /* successive picks */
};

static const struct wrr_case wrr_cases[] = {
    {"walks the cycle",
     3,
     {5, 1, 1},
     {0, 0, 0},
     LB_NONE,
     0,
     14,
     {0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0}},
    {"from the cursor", 3, {5, 1, 1}, {0, 0, 0}, LB_NONE, 4, 8, {2, 0, 0, 0, 0, 1, 0, 2}},
    {"heavy one down: the others alternate",
     3,
     {5, 1, 1},
     {500, 0, 0},
     LB_NONE,
     0,
     8,
     {1, 2, 1, 2, 1, 2, 1, 2}},
    {"light one down: its turn goes to the next",
     3,
     {5, 1, 1},
     {0, 500, 0},
     LB_NONE,
     0,
     12,
     {0, 0, 0, 2, 0, 0, 0, 0, 0, 2, 0, 0}},
    {"excludes", 3, {5, 1, 1}, {0, 0, 0}, 0, 0, 6, {1, 2, 1, 2, 1, 2}},
    {"all down: soonest back", 3, {5, 1, 1}, {900, 300, 600}, LB_NONE, 0, 4, {1, 1, 1, 1}},
    {"all down: weight 0 not even then",
     3,
     {0, 1, 1},
     {200, 900, 600},
     LB_NONE,
     0,
     4,
     {2, 2, 2, 2}},
    {"weight 0 never picked", 3, {1, 0, 1}, {0, 0, 0}, LB_NONE, 0, 6, {0, 2, 0, 2, 0, 2}},
    {"only weight 0", 2, {0, 0}, {0, 0}, LB_NONE, 0, 2, {LB_NONE, LB_NONE}},
    {"only the excluded one", 2, {0, 3}, {0, 0}, 1, 0, 2, {LB_NONE, LB_NONE}},
};

static void
test_weighted_round_robin(void **state)
{
    (void)state;
    for (size_t c = 0; c < N_ELEMS(wrr_cases); c++) {
        const struct wrr_case *tc = &wrr_cases[c];
        uint32_t cycle[16], cursor = tc->cursor;
        size_t len = lb_schedule_len(tc->weights, tc->n);
        assert_true(len <= 16);
        assert_int_equal(lb_schedule_build(tc->weights, tc->n, cycle), 0);
        for (size_t k = 0; k < tc->npicks; k++) {
            size_t got = lb_weighted_round_robin(&cursor, cycle, len, 100, tc->exclude, down_until,
                                                 tc->down);
            if (got != tc->want[k])
                fail_msg("%s: pick %zu: got %zu, want %zu", tc->name, k, got, tc->want[k]);
        }
    }
}

/* Down backends' share goes to the others in proportion: with 5:1:1 and the first down,
 * a cycle's walk gives the two others exactly 1:1; with the second down, 5:1. */
static void
test_weighted_down_share(void **state)
{
    (void)state;
    static const uint32_t w[3] = {5, 1, 1};
    static const uint64_t downs[2][3] = {{500, 0, 0}, {0, 500, 0}};
    static const uint32_t want[2][3] = {{0, 60, 60}, {100, 0, 20}};
    uint32_t cycle[7];
    assert_int_equal(lb_schedule_build(w, 3, cycle), 0);
    for (size_t c = 0; c < 2; c++) {
        uint32_t cursor = 0, count[3] = {0};
        size_t picks = want[c][0] + want[c][1] + want[c][2];
        for (size_t k = 0; k < picks; k++)
            count[lb_weighted_round_robin(&cursor, cycle, 7, 100, LB_NONE, down_until, downs[c])]++;
        for (size_t i = 0; i < 3; i++)
            if (count[i] != want[c][i])
                fail_msg("case %zu: backend %zu %u times, want %u", c, i, count[i], want[c][i]);
    }
}

/* ---- least outstanding with weights ---- */

struct low_ctx {
    uint64_t down[4];
    uint32_t load[4];
    uint32_t weight[4];
};

static uint64_t
low_down_until(const void *ctx, size_t i)
{
    return ((const struct low_ctx *)ctx)->down[i];
}

static uint32_t
low_load(const void *ctx, size_t i)
{
    return ((const struct low_ctx *)ctx)->load[i];
}

static uint32_t
low_weight(const void *ctx, size_t i)
{
    return ((const struct low_ctx *)ctx)->weight[i];
}

struct low_case {
    const char *name;
    size_t n;
    struct low_ctx ctx;
    size_t exclude;
    size_t want[4]; /* successive picks, loads unchanged */
};

static const struct low_case low_cases[] = {
    {"per unit of weight", 2, {{0, 0}, {2, 2}, {2, 1}}, LB_NONE, {0, 0, 0, 0}},
    {"heavier one busier still wins", 2, {{0, 0}, {5, 2}, {3, 1}}, LB_NONE, {0, 0, 0, 0}},
    {"lighter one less busy wins", 2, {{0, 0}, {7, 2}, {3, 1}}, LB_NONE, {1, 1, 1, 1}},
    {"equal per weight: rotate", 2, {{0, 0}, {3, 1}, {3, 1}}, LB_NONE, {0, 1, 0, 1}},
    {"weight 0 never, however idle", 3, {{0, 0, 0}, {0, 4, 9}, {0, 1, 1}}, LB_NONE, {1, 1, 1, 1}},
    {"all down: weight 0 not even then",
     3,
     {{200, 900, 600}, {0, 0, 0}, {0, 1, 1}},
     LB_NONE,
     {2, 2, 2, 2}},
    {"only weight 0", 2, {{0, 0}, {0, 0}, {0, 0}}, LB_NONE, {LB_NONE, LB_NONE, LB_NONE, LB_NONE}},
    {"excluded and weight 0", 2, {{0, 0}, {0, 0}, {0, 2}}, 1, {LB_NONE, LB_NONE, LB_NONE, LB_NONE}},
    {"huge loads do not overflow",
     2,
     {{0, 0}, {4000000000u, 2000000000u}, {256, 1}},
     LB_NONE,
     {0, 0, 0, 0}},
};

static void
test_least_outstanding_weighted(void **state)
{
    (void)state;
    for (size_t c = 0; c < N_ELEMS(low_cases); c++) {
        const struct low_case *tc = &low_cases[c];
        uint32_t cursor = 0;
        for (size_t k = 0; k < 4; k++) {
            size_t got = lb_least_outstanding(&cursor, tc->n, 100, tc->exclude, low_down_until,
                                              low_load, low_weight, &tc->ctx);
            if (got != tc->want[k])
                fail_msg("%s: pick %zu: got %zu, want %zu", tc->name, k, got, tc->want[k]);
        }
    }
}

/* Requests that stay in flight end up in proportion to the weights: 3:1:0 over 40 picks. */
static void
test_least_outstanding_weighted_evens_out(void **state)
{
    (void)state;
    struct low_ctx ctx = {{0, 0, 0}, {0, 0, 0}, {3, 1, 0}};
    uint32_t cursor = 0;
    for (size_t k = 0; k < 40; k++) {
        size_t got = lb_least_outstanding(&cursor, 3, 100, LB_NONE, low_down_until, low_load,
                                          low_weight, &ctx);
        assert_true(got < 2);
        ctx.load[got]++;
    }
    assert_int_equal(ctx.load[0], 30);
    assert_int_equal(ctx.load[1], 10);
    assert_int_equal(ctx.load[2], 0);
}

/* least_outstanding over unequal weights: ties (all idle) follow the weighted cycle. */
struct sched_ctx {
    uint32_t load[3];
    uint32_t weight[3];
    uint64_t down[3];
};
static uint64_t
sched_down(const void *ctx, size_t i)
{
    return ((const struct sched_ctx *)ctx)->down[i];
}
static uint32_t
sched_load(const void *ctx, size_t i)
{
    return ((const struct sched_ctx *)ctx)->load[i];
}
static uint32_t
sched_weight(const void *ctx, size_t i)
{
    return ((const struct sched_ctx *)ctx)->weight[i];
}

static void
test_least_outstanding_scheduled(void **state)
{
    (void)state;
    struct sched_ctx ctx = {{0, 0, 0}, {3, 1, 0}, {0, 0, 0}};
    uint32_t schedule[8];
    size_t len = lb_schedule_len(ctx.weight, 3);
    assert_int_equal(len, 4);
    assert_int_equal(lb_schedule_build(ctx.weight, 3, schedule), 0);
    /* Idle: the cycle's order, 3:1, backend 2 (weight 0) never. */
    uint32_t cursor = 0, count[3] = {0};
    for (int k = 0; k < 400; k++) {
        size_t i = lb_least_outstanding_scheduled(&cursor, schedule, len, 100, LB_NONE, sched_down,
                                                  sched_load, sched_weight, &ctx);
        assert_true(i < 2);
        count[i]++;
    }
    assert_int_equal(count[0], 300);
    assert_int_equal(count[1], 100);
    /* Loaded: fewest per unit of weight wins whatever the cycle says (4/3 > 1/1). */
    ctx.load[0] = 4;
    ctx.load[1] = 1;
    for (int k = 0; k < 4; k++)
        assert_int_equal(lb_least_outstanding_scheduled(&cursor, schedule, len, 100, LB_NONE,
                                                        sched_down, sched_load, sched_weight, &ctx),
                         1);
    ctx.load[0] = 2; /* 2/3 < 1/1 */
    assert_int_equal(lb_least_outstanding_scheduled(&cursor, schedule, len, 100, LB_NONE,
                                                    sched_down, sched_load, sched_weight, &ctx),
                     0);
    /* Excluded, down: the other; both down: the soonest back. */
    assert_int_equal(lb_least_outstanding_scheduled(&cursor, schedule, len, 100, 0, sched_down,
                                                    sched_load, sched_weight, &ctx),
                     1);
    ctx.down[0] = 500;
    ctx.down[1] = 300;
    assert_int_equal(lb_least_outstanding_scheduled(&cursor, schedule, len, 100, LB_NONE,
                                                    sched_down, sched_load, sched_weight, &ctx),
                     1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_least_outstanding_scheduled),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_least_outstanding),
        cmocka_unit_test(test_least_outstanding_evens_out),
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_schedule_counts_and_spread),
        cmocka_unit_test(test_weighted_equal_never_twice),
        cmocka_unit_test(test_weighted_round_robin),
        cmocka_unit_test(test_weighted_down_share),
        cmocka_unit_test(test_least_outstanding_weighted),
        cmocka_unit_test(test_least_outstanding_weighted_evens_out),
    };
    return cmocka_run_group_tests_name("lb", tests, NULL, NULL);
}
