/* SPDX-License-Identifier: MIT */
/* lb_round_robin and lb_least_outstanding: rotation, least load, skipping down backends,
 * exclusion, all-down fallback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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
                                              lo_load, &tc->ctx);
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
        size_t got = lb_least_outstanding(&cursor, 3, 100, LB_NONE, lo_down_until, lo_load, &ctx);
        if (got != want[k])
            fail_msg("pick %zu: got %zu, want %zu", k, got, want[k]);
        ctx.load[got]++;
    }
    assert_int_equal(ctx.load[0], 4);
    assert_int_equal(ctx.load[1], 4);
    assert_int_equal(ctx.load[2], 4);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_least_outstanding),
        cmocka_unit_test(test_least_outstanding_evens_out),
    };
    return cmocka_run_group_tests_name("lb", tests, NULL, NULL);
}
