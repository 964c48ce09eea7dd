/* SPDX-License-Identifier: MIT */
/* health: the rise/fall state machine, passive marks, and the registry that keeps a
 * backend's health across generations by address. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cfg.h"
#include "health.h"

/* One row: the state before, a run of results ('+' pass, '-' fail), rise, fall, and the
 * state after each result. */
struct sm_case {
    const char *name;
    uint8_t start;
    const char *results;
    uint32_t rise, fall;
    const char *states; /* 'U' up, 'D' down, '?' unchecked, one per result */
};

static const struct sm_case sm_cases[] = {
    {"first pass decides up", HEALTH_UNCHECKED, "+", 3, 3, "U"},
    {"first failure decides down", HEALTH_UNCHECKED, "-", 3, 3, "D"},
    {"up needs fall failures in a row", HEALTH_UP, "--+---", 2, 3, "UUUUUD"},
    {"down needs rise passes in a row", HEALTH_DOWN, "++-++", 3, 2, "DDDDD"},
    {"down to up after rise", HEALTH_DOWN, "+++", 3, 2, "DDU"},
    {"rise 1 fall 1 flips every time", HEALTH_UP, "-+-+", 1, 1, "DUDU"},
    {"a pass resets the failure streak", HEALTH_UP, "-+-+-+", 2, 2, "UUUUUU"},
    {"a failure resets the pass streak", HEALTH_DOWN, "+-+-+", 2, 2, "DDDDD"},
    {"steady up stays up", HEALTH_UP, "++++", 2, 2, "UUUU"},
};

static char
state_letter(uint8_t s)
{
    return s == HEALTH_UP ? 'U' : s == HEALTH_DOWN ? 'D' : '?';
}

static void
test_state_machine(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(sm_cases) / sizeof(sm_cases[0]); i++) {
        const struct sm_case *c = &sm_cases[i];
        struct health_sm sm = {c->start, 0};
        char got[16] = {0};
        for (size_t k = 0; c->results[k]; k++) {
            uint8_t before = sm.state;
            bool changed = health_sm_feed(&sm, c->results[k] == '+', c->rise, c->fall);
            assert_int_equal(changed, before != sm.state);
            got[k] = state_letter(sm.state);
        }
        if (strcmp(got, c->states) != 0)
            fail_msg("%s: states %s, expected %s", c->name, got, c->states);
    }
}

static void
test_status_passes(void **state)
{
    (void)state;
    assert_true(health_status_passes(200, 200, 399));
    assert_true(health_status_passes(399, 200, 399));
    assert_false(health_status_passes(404, 200, 399));
    assert_false(health_status_passes(199, 200, 399));
    assert_true(health_status_passes(204, 204, 204));
    assert_false(health_status_passes(0, 200, 399));
}

/* A generation with one region of `n` backends on 127.0.0.1:ports[i], checks on. */
static struct cfg *
gen(const int *ports, size_t n, bool checks)
{
    struct cfg *cfg = cfg_new();
    assert_non_null(cfg);
    cfg->regions = calloc(1, sizeof(*cfg->regions));
    assert_non_null(cfg->regions);
    cfg->nregions = 1;
    struct cfg_region *r = &cfg->regions[0];
    r->name = strdup("eu");
    cfg_health_check_defaults(&r->health_check);
    r->health_check.enabled = checks;
    r->backends = calloc(n, sizeof(*r->backends));
    r->nbackends = n;
    for (size_t i = 0; i < n; i++) {
        char text[32];
        snprintf(text, sizeof(text), "127.0.0.1:%d", ports[i]);
        assert_int_equal(cfg_parse_addr(text, &r->backends[i].addr), 0);
    }
    return cfg;
}

static void
test_registry_keeps_health_by_address(void **state)
{
    (void)state;
    struct health_registry *reg = health_registry_new(2);
    assert_non_null(reg);
    int p1[] = {1001, 1002};
    struct cfg *a = gen(p1, 2, true);
    assert_int_equal(health_apply(reg, a), 0);
    struct health_target *t1 = a->regions[0].backends[0].health;
    struct health_target *t2 = a->regions[0].backends[1].health;
    assert_non_null(t1);
    assert_non_null(t2);
    assert_ptr_not_equal(t1, t2);
    assert_int_equal(health_state_of(t1), HEALTH_UNCHECKED);

    /* Passive failures: `fall` (default 3) in a row take it down; a success between
     * starts the count again. */
    health_report_failure(t2);
    health_report_failure(t2);
    health_report_success(t2);
    health_report_failure(t2);
    health_report_failure(t2);
    assert_int_not_equal(health_state_of(t2), HEALTH_DOWN);
    health_report_failure(t2);
    assert_int_equal(health_state_of(t2), HEALTH_DOWN);

    /* The next generation keeps 1002 (with its state) and adds 1003. */
    int p2[] = {1003, 1002};
    struct cfg *b = gen(p2, 2, true);
    assert_int_equal(health_apply(reg, b), 0);
    assert_ptr_equal(b->regions[0].backends[1].health, t2);
    assert_int_equal(health_state_of(b->regions[0].backends[1].health), HEALTH_DOWN);
    assert_ptr_not_equal(b->regions[0].backends[0].health, t1);
    assert_int_equal(health_state_of(b->regions[0].backends[0].health), HEALTH_UNCHECKED);

    /* 1001 is retired but still readable through the old generation. */
    struct health_view v;
    health_target_view(t1, &v);
    assert_int_equal(v.state, HEALTH_UNCHECKED);

    /* A region without checks gets no targets. */
    struct cfg *c = gen(p2, 2, false);
    assert_int_equal(health_apply(reg, c), 0);
    assert_null(c->regions[0].backends[0].health);

    cfg_unref(a);
    cfg_unref(b);
    cfg_unref(c);
    health_registry_free(reg);
}

static void
test_passive_off(void **state)
{
    (void)state;
    struct health_registry *reg = health_registry_new(1);
    int p[] = {2001};
    struct cfg *a = gen(p, 1, true);
    a->regions[0].health_check.passive = false;
    assert_int_equal(health_apply(reg, a), 0);
    struct health_target *t = a->regions[0].backends[0].health;
    for (int i = 0; i < 10; i++)
        health_report_failure(t);
    assert_int_equal(health_state_of(t), HEALTH_UNCHECKED);
    health_report_failure(NULL); /* no checks: nothing to count */
    cfg_unref(a);
    health_registry_free(reg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_machine),
        cmocka_unit_test(test_status_passes),
        cmocka_unit_test(test_registry_keeps_health_by_address),
        cmocka_unit_test(test_passive_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
