/* SPDX-License-Identifier: MIT */
/* lb_round_robin: rotation, skipping down backends, exclusion, all-down fallback. */
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
    {"single backend excluded", 1, {0}, 100, 0, 0,
     {LB_NONE, LB_NONE, LB_NONE, LB_NONE, LB_NONE, LB_NONE}},
    {"no backends", 0, {0}, 100, LB_NONE, 0,
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
            size_t got = lb_round_robin(&cursor, tc->n, tc->now, tc->exclude, down_until,
                                        tc->down);
            if (got != tc->want[k])
                fail_msg("%s: pick %zu: got %zu, want %zu", tc->name, k, got, tc->want[k]);
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_table)};
    return cmocka_run_group_tests_name("lb", tests, NULL, NULL);
}
