/* SPDX-License-Identifier: MIT */
/* The request path's side of /metrics (metrics.h): which histogram bucket a duration
 * falls in (Prometheus' `le`: a value on a bound belongs to that bound), which protocol a
 * client's name is, which status class an answer is, and that what is not counted leaves
 * every counter alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "metrics.h"

static void
test_bucket(void **state)
{
    (void)state;
    static const struct {
        uint64_t us;
        unsigned want;
    } cases[] = {
        {0, 0},       {5000, 0},      {5001, 1},      {10000, 1},       {10001, 2},
        {499999, 6},  {500000, 6},    {500001, 7},    {1000000, 7},     {2500000, 8},
        {5000000, 9}, {10000000, 10}, {10000001, 11}, {UINT64_MAX, 11},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned got = metrics_bucket(cases[i].us);
        if (got != cases[i].want)
            fail_msg("%llu us: bucket %u, want %u", (unsigned long long)cases[i].us, got,
                     cases[i].want);
    }
}

static void
test_protocol(void **state)
{
    (void)state;
    assert_int_equal(metrics_protocol_of("HTTP/1.0"), METRICS_HTTP10);
    assert_int_equal(metrics_protocol_of("HTTP/1.1"), METRICS_HTTP11);
    assert_int_equal(metrics_protocol_of("HTTP/2"), METRICS_H2);
    assert_int_equal(metrics_protocol_of("HTTP/2.0"), METRICS_H2);
    assert_int_equal(metrics_protocol_of(NULL), METRICS_HTTP11);
    assert_int_equal(metrics_protocol_of("-"), METRICS_HTTP11);
}

static uint64_t
total(const struct metrics_region *m)
{
    uint64_t n = 0;
    for (unsigned c = 0; c < METRICS_CLASSES; c++)
        for (unsigned p = 0; p < METRICS_PROTOCOLS; p++)
            n += atomic_load(&m->responses[c][p]);
    return n;
}

static void
test_record(void **state)
{
    (void)state;
    static struct metrics_region m; /* zeroed */
    metrics_record(&m, 200, "HTTP/1.1", 3000);
    metrics_record(&m, 404, "HTTP/2", 600000);
    metrics_record(&m, 499, "HTTP/1.0", 20000000);
    metrics_record(&m, 101, "HTTP/1.1", 1);
    metrics_record(&m, 0, "HTTP/1.1", 1);   /* not a status: not counted */
    metrics_record(&m, 600, "HTTP/1.1", 1); /* nor this */
    assert_int_equal(atomic_load(&m.responses[1][METRICS_HTTP11]), 1);
    assert_int_equal(atomic_load(&m.responses[3][METRICS_H2]), 1);
    assert_int_equal(atomic_load(&m.responses[3][METRICS_HTTP10]), 1);
    assert_int_equal(atomic_load(&m.responses[0][METRICS_HTTP11]), 1);
    assert_int_equal(total(&m), 4);
    uint64_t count = 0;
    for (unsigned k = 0; k < METRICS_BUCKETS; k++)
        count += atomic_load(&m.duration[k]);
    assert_int_equal(count, 4); /* the histogram counts what the class counters count */
    assert_int_equal(atomic_load(&m.duration[0]), 2);
    assert_int_equal(atomic_load(&m.duration[7]), 1);
    assert_int_equal(atomic_load(&m.duration[METRICS_BUCKETS - 1]), 1);
    assert_int_equal(atomic_load(&m.duration_us_sum), 3000 + 600000 + 20000000 + 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_protocol),
        cmocka_unit_test(test_record),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
