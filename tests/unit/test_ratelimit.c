/* SPDX-License-Identifier: MIT */
/* ratelimit: the token bucket (refill, burst, clocks going back, huge gaps, fractional and
 * extreme rates, re-rating), the wait it predicts, lease sizing, the rate EWMA, the circuit
 * breaker's transitions and backoff with jitter, and the 429 header values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ratelimit.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define SEC 1000000ULL

/* ---- the token bucket, as scripts of steps ---- */

enum step_op {
    END = 0,
    TAKE,  /* take at `now`: want 1 (granted) or 0 */
    TAKES, /* `n` takes at `now`: want how many were granted */
    WAIT,  /* rl_bucket_wait_us at `now`: want exactly this */
    SET,   /* rl_bucket_set(rate, burst) at `now` */
};

struct step {
    enum step_op op;
    uint64_t now;
    uint64_t want;
    unsigned n;
    double rate, burst;
};

struct bucket_case {
    const char *name;
    double rate, burst;
    uint64_t t0;
    struct step steps[10];
};

/* One step each: a take, `count` takes, a wait, a re-rate. */
// clang-format off
#define T(at, w)         {.op = TAKE, .now = (at), .want = (w)}
#define TN(at, count, w) {.op = TAKES, .now = (at), .want = (w), .n = (count)}
#define W(at, w)         {.op = WAIT, .now = (at), .want = (w)}
#define S(at, r, b)      {.op = SET, .now = (at), .rate = (r), .burst = (b)}
// clang-format on

static const struct bucket_case bucket_cases[] = {
    {"starts full, then one token per 1/rate",
     10,
     3,
     1000,
     {TN(1000, 10, 3), T(1000, 0), W(1000, 100000), T(100999, 0), T(101000, 1), T(101000, 0)}},
    {"a long idle refills to burst, no more", 10, 3, 0, {TN(0, 3, 3), TN(10 * SEC, 10, 3)}},
    {"partial refill", 10, 5, 0, {TN(0, 5, 5), TN(250000, 5, 2), W(250000, 50000)}},
    {"a clock going back counts as no time and does not rewind the bucket",
     1,
     1,
     5 * SEC,
     {T(5 * SEC, 1), T(4 * SEC, 0), W(4 * SEC, 2 * SEC), T(5 * SEC + 500000, 0),
      T(4 * SEC + 900000, 0), T(6 * SEC, 1)}},
    {"a huge gap at a huge rate caps at burst",
     1e9,
     5,
     0,
     {TN(0, 5, 5), TN(UINT64_MAX, 10, 5), T(UINT64_MAX, 0), W(UINT64_MAX, UINT64_MAX)}},
    {"largest double rate, largest gap", DBL_MAX, 2, 0, {TN(0, 3, 2), TN(UINT64_MAX, 3, 2)}},
    {"half a token per second",
     0.5,
     1,
     0,
     {T(0, 1), W(0, 2 * SEC), T(1999999, 0), T(2 * SEC, 1), W(2 * SEC, 2 * SEC)}},
    {"thirds add up exactly enough", 3, 1, 0, {T(0, 1), T(333333, 0), T(333334, 1)}},
    /* 2^-20 tokens per second, so that 1 / rate is exact: a token every 1048576 s. */
    {"a tiny rate",
     0x1p-20,
     1,
     0,
     {T(0, 1), W(0, 1048576 * SEC), T(1048575 * SEC, 0), T(1048576 * SEC, 1)}},
    {"no rate: only the burst, ever",
     0,
     2,
     0,
     {TN(0, 5, 2), T(UINT64_MAX, 0), W(UINT64_MAX / 2, UINT64_MAX)}},
    {"NaN rate counts as none", NAN, 1, 0, {T(0, 1), T(100 * SEC, 0), W(0, UINT64_MAX)}},
    {"negative rate counts as none", -5, 1, 0, {T(0, 1), T(100 * SEC, 0)}},
    {"infinite rate refills at once", INFINITY, 2, 0, {TN(0, 3, 2), TN(1, 3, 2), W(1, 1)}},
    {"burst below 1 counts as 1", 1, 0.2, 0, {T(0, 1), T(0, 0), T(SEC, 1)}},
    {"NaN burst counts as 1", 1, NAN, 0, {TN(0, 3, 1)}},
    {"fractional burst keeps its fraction", 1, 2.5, 0, {TN(0, 5, 2), W(0, 500000)}},
    {"set raises the rate from now on",
     1,
     10,
     0,
     {TN(0, 10, 10), S(SEC, 100, 10), T(SEC, 1), T(SEC, 0), T(SEC + 9990, 0), T(SEC + 10010, 1)}},
    {"set counts the time before it at the old rate",
     10,
     100,
     0,
     {TN(0, 100, 100), S(SEC, 1000, 100), TN(SEC, 20, 10)}},
    {"set lowers the burst: tokens capped", 1, 10, 0, {S(0, 1, 2), TN(0, 5, 2)}},
    {"set raises the burst: tokens kept, room to grow",
     1,
     2,
     0,
     {S(0, 1, 10), TN(0, 5, 2), TN(20 * SEC, 20, 10)}},
    {"set with a clock gone back",
     1,
     1,
     10 * SEC,
     {T(10 * SEC, 1), S(5 * SEC, 2, 1), W(5 * SEC, 5500000)}},
    {"set to no rate", 10, 1, 0, {T(0, 1), S(SEC / 20, 0, 1), T(100 * SEC, 0)}},
};

static void
run_bucket_case(const struct bucket_case *tc)
{
    struct rl_bucket b;
    rl_bucket_init(&b, tc->rate, tc->burst, tc->t0);
    for (size_t s = 0; s < N_ELEMS(tc->steps) && tc->steps[s].op != END; s++) {
        const struct step *st = &tc->steps[s];
        uint64_t got = 0;
        switch (st->op) {
        case TAKE:
            got = rl_bucket_take(&b, st->now);
            break;
        case TAKES:
            for (unsigned k = 0; k < st->n; k++)
                got += rl_bucket_take(&b, st->now);
            break;
        case WAIT:
            got = rl_bucket_wait_us(&b, st->now);
            break;
        case SET:
            rl_bucket_set(&b, st->rate, st->burst, st->now);
            continue;
        case END:
            break;
        }
        if (got != st->want)
            fail_msg("%s: step %zu: got %llu, want %llu", tc->name, s, (unsigned long long)got,
                     (unsigned long long)st->want);
        if (!(b.tokens >= 0.0 && b.tokens <= b.burst))
            fail_msg("%s: step %zu: %g tokens outside 0..%g", tc->name, s, b.tokens, b.burst);
    }
}

static void
test_bucket_table(void **state)
{
    (void)state;
    for (size_t c = 0; c < N_ELEMS(bucket_cases); c++)
        run_bucket_case(&bucket_cases[c]);
}

/* xorshift64*: the same pseudo-random cases on every run. */
static uint64_t
next_rand(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 0x2545F4914F6CDD1DULL;
}

/* Whatever the rate and state, a take exactly `wait` later succeeds and one 2 us earlier does not
 * (1 us of slack for the rounding of the estimate). */
static void
test_bucket_wait_is_exact(void **state)
{
    (void)state;
    static const double rates[] = {1e-3, 0.3, 1, 3, 7.7, 100, 333.3, 5000, 1e6, 3e6};
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (size_t r = 0; r < N_ELEMS(rates); r++) {
        for (int k = 0; k < 2000; k++) {
            struct rl_bucket b;
            uint64_t now = next_rand(&x) % (1000 * SEC);
            rl_bucket_init(&b, rates[r], 1 + (double)(next_rand(&x) % 4), now);
            while (rl_bucket_take(&b, now))
                ;
            now += next_rand(&x) % (uint64_t)(2e6 / rates[r] + 2); /* part of the way */
            uint64_t w = rl_bucket_wait_us(&b, now);
            struct rl_bucket early = b, on_time = b;
            if (w >= 2 && rl_bucket_take(&early, now + w - 2))
                fail_msg("rate %g: a take %llu us in succeeded, before the wait", rates[r],
                         (unsigned long long)(w - 2));
            if (!rl_bucket_take(&on_time, now + w))
                fail_msg("rate %g: a take after the %llu us wait failed", rates[r],
                         (unsigned long long)w);
        }
    }
}

/* Taking as fast as asked for a long time admits burst + rate * t, whatever the step. (With a
 * burst of 1 and steps that do not divide 1/rate, the refill past the first whole token is cut
 * off by the burst at every take, as it should be: hence 8 us and not 7 there.) */
static void
test_bucket_long_run(void **state)
{
    (void)state;
    static const struct {
        double rate, burst;
        uint64_t step_us;
    } runs[] = {
        {100, 200, 1}, {100, 200, 997}, {1000, 2, 7},
        {1000, 1, 8},  {0.5, 1, 12345}, {5000, 10000, 50},
    };
    for (size_t r = 0; r < N_ELEMS(runs); r++) {
        struct rl_bucket b;
        rl_bucket_init(&b, runs[r].rate, runs[r].burst, 0);
        uint64_t granted = 0;
        for (uint64_t now = 0; now <= 10 * SEC; now += runs[r].step_us)
            while (rl_bucket_take(&b, now))
                granted++;
        double want = runs[r].burst + runs[r].rate * 10.0;
        if (fabs((double)granted - want) > 1.0)
            fail_msg("rate %g burst %g step %llu: granted %llu, want %.0f", runs[r].rate,
                     runs[r].burst, (unsigned long long)runs[r].step_us,
                     (unsigned long long)granted, want);
    }
}

/* ---- lease sizing ---- */

struct lease_case {
    double share, observed;
    uint32_t lease_ms;
    uint32_t want;
};

static const struct lease_case lease_cases[] = {
    /* 2 periods of observed = 4 periods of share */
    {50, 100, 100, 20},
    /* below the share: 2 periods of observed, rounded up */
    {50, 10, 100, 2},
    {100, 33.3, 1000, 67},
    {25, 30, 200, 12},
    {50, 0.1, 100, 1},
    /* above: capped at 4 periods of share, rounded down */
    {50, 1000, 100, 20},
    {12.5, 1e6, 100, 5},
    {1.9, 50, 1000, 7},
    /* at least 1 */
    {50, 0, 100, 1},
    {0, 100, 100, 1},
    {1, 1, 100, 1},
    {0, 0, 0, 1},
    /* nonsense rates count as 0 */
    {NAN, 100, 100, 1},
    {50, NAN, 100, 1},
    {-5, 100, 100, 1},
    {50, -100, 100, 1},
    {50, INFINITY, 100, 20},
    /* lease 0 counts as 1 ms */
    {50000, 100000, 0, 200},
    /* large values saturate */
    {1e12, 1e12, 1000, UINT32_MAX},
    {INFINITY, INFINITY, 100, UINT32_MAX},
    {1, 1, UINT32_MAX, 8589935},
    /* the phases: 100 rps on 1 node x 2 workers; 5000 rps on 100 nodes x 4 workers */
    {50, 80, 250, 40},
    {50, 20, 250, 10},
    {12.5, 40, 250, 12},
};

static void
test_lease_want(void **state)
{
    (void)state;
    for (size_t c = 0; c < N_ELEMS(lease_cases); c++) {
        const struct lease_case *tc = &lease_cases[c];
        uint32_t got = rl_lease_want(tc->share, tc->observed, tc->lease_ms);
        if (got != tc->want)
            fail_msg("share %g observed %g lease %u ms: got %u, want %u", tc->share, tc->observed,
                     tc->lease_ms, got, tc->want);
    }
}

/* ---- the rate EWMA ---- */

struct ewma_case {
    const char *name;
    double start;
    uint64_t count, elapsed_us, tau_us;
    double want;
};

static const struct ewma_case ewma_cases[] = {
    {"a steady rate stays", 100, 10, 100000, SEC, 100},
    {"a steady rate stays, long sample", 100, 1000, 10 * SEC, SEC, 100},
    {"one tau from 0 covers 1 - 1/e", 0, 100, SEC, SEC, 63.212055882855765},
    {"one tau down to 0", 100, 0, SEC, SEC, 36.787944117144235},
    {"a short sample moves a little", 0, 1, 10000, SEC, 0.99501662508319},
    {"a burst at once adds count / tau", 10, 5, 0, 500000, 20},
    {"a huge gap forgets the past", 1e6, 0, UINT64_MAX, SEC, 0},
    {"a huge count over a long gap", 0, UINT64_MAX, UINT64_MAX, SEC, 1e6},
    {"no memory: the sample's rate", 100, 30, 2 * SEC, 0, 15},
    {"no memory, no time: unchanged", 7, 30, 0, 0, 7},
    {"NaN starts from 0", NAN, 0, SEC, SEC, 0},
    {"infinity starts from 0", INFINITY, 100, SEC, SEC, 63.212055882855765},
    {"negative starts from 0", -50, 100, SEC, SEC, 63.212055882855765},
};

static void
test_rate_update(void **state)
{
    (void)state;
    for (size_t c = 0; c < N_ELEMS(ewma_cases); c++) {
        const struct ewma_case *tc = &ewma_cases[c];
        double r = tc->start;
        rl_rate_update(&r, tc->count, tc->elapsed_us, tc->tau_us);
        if (!(fabs(r - tc->want) <= 1e-9 * (1 + fabs(tc->want))))
            fail_msg("%s: got %.15g, want %.15g", tc->name, r, tc->want);
    }
}

/* The estimate after a step in a constant rate depends on the time since, not on how often the
 * caller folded; and it converges. */
static void
test_rate_update_interval_free(void **state)
{
    (void)state;
    static const uint64_t steps_us[] = {1000, 10000, 100000, 250000, SEC};
    for (size_t s = 0; s < N_ELEMS(steps_us); s++) {
        double r = 0;
        uint64_t per_step = 2000 * steps_us[s] / SEC; /* 2000 events per second */
        for (uint64_t t = 0; t < 2 * SEC; t += steps_us[s])
            rl_rate_update(&r, per_step, steps_us[s], SEC);
        double want = 2000 * (1 - exp(-2.0));
        if (fabs(r - want) > 1e-6)
            fail_msg("step %llu us: got %.9f, want %.9f", (unsigned long long)steps_us[s], r, want);
        for (int k = 0; k < 30; k++)
            rl_rate_update(&r, 2000, SEC, SEC);
        assert_true(fabs(r - 2000) < 1e-6);
    }
}

/* ---- the circuit breaker ---- */

static void
test_breaker_cycle(void **state)
{
    (void)state;
    struct rl_breaker b;
    rl_breaker_init(&b);
    assert_int_equal(b.state, RL_BREAKER_CLOSED);
    assert_true(rl_breaker_allows(&b, 0));
    assert_true(rl_breaker_allows(&b, 0)); /* closed: every command */

    /* First failure: open at once; rnd in the middle is no jitter. */
    rl_breaker_failure(&b, 1000, 0x80000000u);
    assert_int_equal(b.state, RL_BREAKER_OPEN);
    assert_int_equal(b.failures, 1);
    assert_int_equal(b.backoff_us, 100000);
    assert_int_equal(b.open_until_us, 101000);
    assert_false(rl_breaker_allows(&b, 1000));
    assert_false(rl_breaker_allows(&b, 100999));

    /* A failure of a command sent before it opened: nothing moves. */
    rl_breaker_failure(&b, 50000, 0);
    assert_int_equal(b.state, RL_BREAKER_OPEN);
    assert_int_equal(b.failures, 1);
    assert_int_equal(b.backoff_us, 100000);
    assert_int_equal(b.open_until_us, 101000);

    /* Time is up: one probe, then nothing while it is out. */
    assert_true(rl_breaker_allows(&b, 101000));
    assert_int_equal(b.state, RL_BREAKER_HALF_OPEN);
    assert_false(rl_breaker_allows(&b, 101000));
    assert_false(rl_breaker_allows(&b, 10 * SEC));

    /* The probe fails: open again, twice as long. */
    rl_breaker_failure(&b, 200000, 0x80000000u);
    assert_int_equal(b.state, RL_BREAKER_OPEN);
    assert_int_equal(b.failures, 2);
    assert_int_equal(b.backoff_us, 200000);
    assert_int_equal(b.open_until_us, 400000);

    /* The next probe succeeds: closed, all reset. */
    assert_true(rl_breaker_allows(&b, 500000));
    rl_breaker_success(&b);
    assert_int_equal(b.state, RL_BREAKER_CLOSED);
    assert_int_equal(b.failures, 0);
    assert_int_equal(b.backoff_us, 0);
    assert_true(rl_breaker_allows(&b, 500000));

    /* ... so the next outage starts from 100 ms again. */
    rl_breaker_failure(&b, SEC, 0x80000000u);
    assert_int_equal(b.backoff_us, 100000);
    assert_int_equal(b.open_until_us, SEC + 100000);

    /* A success while open (a reply that was in flight) closes it too. */
    rl_breaker_success(&b);
    assert_int_equal(b.state, RL_BREAKER_CLOSED);
    assert_true(rl_breaker_allows(&b, SEC));
}

/* Consecutive probe failures double the backoff from 100 ms up to 2 s; the wait stays within
 * +-20% of it whatever the random number. */
static void
test_breaker_backoff(void **state)
{
    (void)state;
    static const uint64_t want_ms[] = {100, 200, 400, 800, 1600, 2000, 2000, 2000, 2000};
    static const uint32_t rnds[] = {0, 1, 0x3fffffffu, 0x80000000u, 0xc0000000u, UINT32_MAX};
    for (size_t r = 0; r < N_ELEMS(rnds); r++) {
        struct rl_breaker b;
        rl_breaker_init(&b);
        uint64_t now = 7 * SEC;
        for (size_t k = 0; k < N_ELEMS(want_ms); k++) {
            rl_breaker_failure(&b, now, rnds[r]);
            uint64_t backoff = want_ms[k] * 1000, wait = b.open_until_us - now;
            assert_int_equal(b.state, RL_BREAKER_OPEN);
            assert_int_equal(b.failures, k + 1);
            if (b.backoff_us != backoff)
                fail_msg("failure %zu: backoff %llu us, want %llu", k + 1,
                         (unsigned long long)b.backoff_us, (unsigned long long)backoff);
            if (wait < backoff * 8 / 10 || wait >= backoff * 12 / 10)
                fail_msg("failure %zu, rnd %#x: waits %llu us for a backoff of %llu", k + 1,
                         rnds[r], (unsigned long long)wait, (unsigned long long)backoff);
            if (rnds[r] == 0)
                assert_int_equal(wait, backoff * 8 / 10);
            if (rnds[r] == UINT32_MAX)
                assert_true(wait >= backoff * 12 / 10 - 1);
            assert_false(rl_breaker_allows(&b, b.open_until_us - 1));
            now = b.open_until_us;
            assert_true(rl_breaker_allows(&b, now));
            assert_int_equal(b.state, RL_BREAKER_HALF_OPEN);
        }
    }
}

/* Jitter spreads the probe times: many workers failing at the same instant do not all come
 * back in the same millisecond. */
static void
test_breaker_jitter_spreads(void **state)
{
    (void)state;
    unsigned buckets[10] = {0}; /* 80..120 ms in 4 ms slices */
    uint64_t x = 12345;
    for (int k = 0; k < 10000; k++) {
        struct rl_breaker b;
        rl_breaker_init(&b);
        rl_breaker_failure(&b, 0, (uint32_t)(next_rand(&x) >> 32));
        assert_true(b.open_until_us >= 80000 && b.open_until_us < 120000);
        buckets[(b.open_until_us - 80000) / 4000]++;
    }
    for (size_t i = 0; i < N_ELEMS(buckets); i++)
        if (buckets[i] < 800 || buckets[i] > 1200)
            fail_msg("slice %zu of the jitter holds %u of 10000", i, buckets[i]);
}

static void
test_breaker_edges(void **state)
{
    (void)state;
    struct rl_breaker b;
    /* A failure at the end of time saturates instead of wrapping to "open until long ago". */
    rl_breaker_init(&b);
    rl_breaker_failure(&b, UINT64_MAX - 10, UINT32_MAX);
    assert_int_equal(b.open_until_us, UINT64_MAX);
    assert_false(rl_breaker_allows(&b, UINT64_MAX - 1));
    assert_true(rl_breaker_allows(&b, UINT64_MAX));

    /* A lost connection fails every command in flight at once: that is one failure, not five
     * doublings of the backoff. */
    rl_breaker_init(&b);
    for (int k = 0; k < 5; k++)
        rl_breaker_failure(&b, 0, 0);
    assert_int_equal(b.failures, 1);
    assert_int_equal(b.backoff_us, 100000);
}

/* ---- the 429 answer ---- */

struct policy_case {
    const char *policy;
    double rps;
    const char *want; /* NULL: 0 returned */
};

static const struct policy_case policy_cases[] = {
    {"phase1", 100, "\"phase1\";q=100;w=1"},
    {"phase3", 5000, "\"phase3\";q=5000;w=1"},
    {"p", 99.5, "\"p\";q=100;w=1"},
    {"p", 99.49, "\"p\";q=99;w=1"},
    {"p", 1.5, "\"p\";q=2;w=1"},
    {"p", 1.49, "\"p\";q=1;w=1"},
    {"p", 0.3, "\"p\";q=1;w=1"},
    {"p", 0, "\"p\";q=1;w=1"},
    {"p", -5, "\"p\";q=1;w=1"},
    {"p", NAN, "\"p\";q=1;w=1"},
    {"p", 1e20, "\"p\";q=999999999999999;w=1"},
    {"p", INFINITY, "\"p\";q=999999999999999;w=1"},
    {"", 10, "\"\";q=10;w=1"},
    {"a\"b\\c", 10, "\"a\\\"b\\\\c\";q=10;w=1"},
    {"sp ace~", 10, "\"sp ace~\";q=10;w=1"},
    {"tab\there", 10, NULL},
    {"caf\xc3\xa9", 10, NULL},
    {"del\x7f", 10, NULL},
    {NULL, 10, NULL},
};

static void
test_format_policy(void **state)
{
    (void)state;
    char buf[128];
    for (size_t c = 0; c < N_ELEMS(policy_cases); c++) {
        const struct policy_case *tc = &policy_cases[c];
        memset(buf, 'x', sizeof(buf));
        size_t n = rl_format_policy(buf, sizeof(buf), tc->policy, tc->rps);
        if (tc->want == NULL) {
            if (n != 0 || buf[0] != '\0')
                fail_msg("policy %s: got %zu \"%s\", want 0", tc->policy ? tc->policy : "NULL", n,
                         buf);
            continue;
        }
        if (n != strlen(tc->want) || strcmp(buf, tc->want) != 0)
            fail_msg("policy %s, %g rps: got %zu '%s', want '%s'", tc->policy, tc->rps, n, buf,
                     tc->want);
    }
}

static void
test_format_ratelimit(void **state)
{
    (void)state;
    char buf[128];
    assert_int_equal(rl_format_ratelimit(buf, sizeof(buf), "phase1", 0, 1), 16);
    assert_string_equal(buf, "\"phase1\";r=0;t=1");
    assert_int_equal(rl_format_ratelimit(buf, sizeof(buf), "phase2", 17, 3), 17);
    assert_string_equal(buf, "\"phase2\";r=17;t=3");
    rl_format_ratelimit(buf, sizeof(buf), "x", UINT32_MAX, UINT32_MAX);
    assert_string_equal(buf, "\"x\";r=4294967295;t=4294967295");
    rl_format_ratelimit(buf, sizeof(buf), "q\"", 1, 2);
    assert_string_equal(buf, "\"q\\\"\";r=1;t=2");
    assert_int_equal(rl_format_ratelimit(buf, sizeof(buf), "bad\n", 1, 2), 0);
    assert_string_equal(buf, "");
    assert_int_equal(rl_format_ratelimit(buf, sizeof(buf), NULL, 1, 2), 0);
}

/* Exactly enough room works; one byte less returns 0 and leaves an empty string; no room at all
 * writes nothing. */
static void
test_format_truncation(void **state)
{
    (void)state;
    static const char policy_want[] = "\"phase1\";q=100;w=1";
    static const char rl_want[] = "\"phase1\";r=0;t=1";
    char buf[64];
    for (size_t size = 0; size <= sizeof(policy_want) + 1; size++) {
        memset(buf, 'x', sizeof(buf));
        size_t n = rl_format_policy(buf, size, "phase1", 100);
        if (size >= sizeof(policy_want)) {
            assert_int_equal(n, sizeof(policy_want) - 1);
            assert_string_equal(buf, policy_want);
        } else {
            assert_int_equal(n, 0);
            if (size > 0)
                assert_int_equal(buf[0], '\0');
            assert_int_equal(buf[size > 0 ? size : 0], 'x'); /* nothing past size */
        }
    }
    for (size_t size = 0; size <= sizeof(rl_want) + 1; size++) {
        memset(buf, 'x', sizeof(buf));
        size_t n = rl_format_ratelimit(buf, size, "phase1", 0, 1);
        assert_int_equal(n, size >= sizeof(rl_want) ? sizeof(rl_want) - 1 : 0);
        if (size == 0)
            assert_int_equal(buf[0], 'x');
    }
    assert_int_equal(rl_format_policy(NULL, 0, "p", 1), 0);
    assert_int_equal(rl_format_ratelimit(NULL, 0, "p", 1, 1), 0);
}

static void
test_retry_after(void **state)
{
    (void)state;
    static const struct {
        uint64_t wait_us;
        uint32_t want;
    } cases[] = {
        {0, 1},
        {1, 1},
        {999999, 1},
        {1000000, 1},
        {1000001, 2},
        {2500000, 3},
        {60 * SEC, 60},
        {4294967295ULL * SEC, UINT32_MAX},
        {4294967295ULL * SEC + 1, UINT32_MAX},
        {UINT64_MAX, UINT32_MAX},
    };
    for (size_t c = 0; c < N_ELEMS(cases); c++)
        if (rl_retry_after_s(cases[c].wait_us) != cases[c].want)
            fail_msg("%llu us: got %u s, want %u", (unsigned long long)cases[c].wait_us,
                     rl_retry_after_s(cases[c].wait_us), cases[c].want);
}

/* GCRA admits what a token bucket of the same rate and burst does: a full burst at once,
 * then one per interval; the wait it reports is exact; nothing at rate 0. */
static void
test_gcra(void **state)
{
    (void)state;
    _Atomic uint64_t tat = 0;
    uint64_t t0 = 5 * SEC;
    for (int i = 0; i < 3; i++)
        assert_true(rl_gcra_take(&tat, 10, 3, t0));
    assert_false(rl_gcra_take(&tat, 10, 3, t0));
    assert_int_equal(rl_gcra_wait_us(&tat, 10, 3, t0), 100000);
    assert_false(rl_gcra_take(&tat, 10, 3, t0 + 99999));
    assert_true(rl_gcra_take(&tat, 10, 3, t0 + 100000));
    assert_false(rl_gcra_take(&tat, 10, 3, t0 + 100000));
    /* A quiet spell refills to the burst, not beyond. */
    uint64_t t1 = t0 + 60 * SEC;
    int n = 0;
    while (rl_gcra_take(&tat, 10, 3, t1))
        n++;
    assert_int_equal(n, 3);
    /* Over ten seconds at a request per ms, rate x 10 s + burst pass. */
    _Atomic uint64_t tat2 = 0;
    n = 0;
    for (uint64_t t = t0; t < t0 + 10 * SEC; t += 1000)
        n += rl_gcra_take(&tat2, 50, 5, t);
    /* The burst's 5 at the start, then one per 20 ms: the last of which is at 9.98 s. */
    assert_in_range(n, 50 * 10, 50 * 10 + 5);
    _Atomic uint64_t tat3 = 0;
    assert_false(rl_gcra_take(&tat3, 0, 5, t0));
    assert_int_equal(rl_gcra_wait_us(&tat3, 0, 5, t0), UINT64_MAX);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_table),
        cmocka_unit_test(test_bucket_wait_is_exact),
        cmocka_unit_test(test_bucket_long_run),
        cmocka_unit_test(test_lease_want),
        cmocka_unit_test(test_rate_update),
        cmocka_unit_test(test_rate_update_interval_free),
        cmocka_unit_test(test_breaker_cycle),
        cmocka_unit_test(test_breaker_backoff),
        cmocka_unit_test(test_gcra),
        cmocka_unit_test(test_breaker_jitter_spreads),
        cmocka_unit_test(test_breaker_edges),
        cmocka_unit_test(test_format_policy),
        cmocka_unit_test(test_format_ratelimit),
        cmocka_unit_test(test_format_truncation),
        cmocka_unit_test(test_retry_after),
    };
    return cmocka_run_group_tests_name("ratelimit", tests, NULL, NULL);
}
