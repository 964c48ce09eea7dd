/* SPDX-License-Identifier: MIT */
/* The budget's arithmetic: token bucket, lease size, rate EWMA, Redis circuit breaker and the
 * 429 header values. Every function takes the time it needs from its caller and touches only the
 * struct it is given; the Redis link and the admission step that use them live elsewhere. */
#include "ratelimit.h"

#include <stdatomic.h>

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>

/* The largest structured-field integer (RFC 8941: at most 15 digits). */
#define RL_SF_INTEGER_MAX 999999999999999ULL

static uint64_t
rl_add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* ---- the local token bucket ---- */

static double
rl_sane_rate(double rate)
{
    if (!(rate > 0.0)) /* also NaN */
        return 0.0;
    return rate > DBL_MAX ? DBL_MAX : rate;
}

static double
rl_sane_burst(double burst)
{
    if (!(burst >= 1.0)) /* also NaN */
        return 1.0;
    return burst > DBL_MAX ? DBL_MAX : burst;
}

/* Tokens in the bucket at now_us, without changing it. The gap is never multiplied out when the
 * refill would pass the burst anyway, and a huge rate times a huge gap that overflows to infinity
 * still compares as more than the room left, so no gap or rate overflows the level. */
static double
rl_bucket_level(const struct rl_bucket *b, uint64_t now_us)
{
    if (now_us <= b->last_us)
        return b->tokens;
    double room = b->burst - b->tokens;
    if (room <= 0.0)
        return b->tokens;
    double add = b->rate * ((double)(now_us - b->last_us) / 1e6);
    return add >= room ? b->burst : b->tokens + add;
}

/* Brings the bucket to now_us: refilled, and its time moved forward (never back). */
static void
rl_bucket_advance(struct rl_bucket *b, uint64_t now_us)
{
    b->tokens = rl_bucket_level(b, now_us);
    if (now_us > b->last_us)
        b->last_us = now_us;
}

void
rl_bucket_init(struct rl_bucket *b, double rate, double burst, uint64_t now_us)
{
    b->rate = rl_sane_rate(rate);
    b->burst = rl_sane_burst(burst);
    b->tokens = b->burst;
    b->last_us = now_us;
}

void
rl_bucket_set(struct rl_bucket *b, double rate, double burst, uint64_t now_us)
{
    rl_bucket_advance(b, now_us); /* the time so far at the old rate */
    b->rate = rl_sane_rate(rate);
    b->burst = rl_sane_burst(burst);
    if (b->tokens > b->burst)
        b->tokens = b->burst;
}

bool
rl_bucket_take(struct rl_bucket *b, uint64_t now_us)
{
    rl_bucket_advance(b, now_us);
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

uint64_t
rl_bucket_wait_us(const struct rl_bucket *b, uint64_t now_us)
{
    if (rl_bucket_level(b, now_us) >= 1.0)
        return 0;
    if (b->rate <= 0.0)
        return UINT64_MAX;
    /* A clock seen going back: the bucket counts from its own time, so the wait does too. */
    uint64_t start = now_us > b->last_us ? now_us : b->last_us;
    double need_us = ceil((1.0 - rl_bucket_level(b, start)) / b->rate * 1e6);
    uint64_t us = need_us >= 0x1p64 ? UINT64_MAX : need_us < 1.0 ? 1 : (uint64_t)need_us;
    /* The division and the refill's multiplication each round, so the estimate can fall a hair
     * short of a whole token; step forward until rl_bucket_take would really succeed. The level
     * never falls as time grows, so this ends, in a step or two. */
    for (uint64_t step = 1;; step *= 2) {
        uint64_t at = rl_add_sat(start, us);
        if (rl_bucket_level(b, at) >= 1.0)
            break;
        if (at == UINT64_MAX)
            return UINT64_MAX;
        us = rl_add_sat(us, step);
    }
    return rl_add_sat(start - now_us, us);
}

/* ---- leases ---- */

uint32_t
rl_lease_want(double share_rps, double observed_rps, uint32_t lease_ms)
{
    if (!(share_rps > 0.0))
        share_rps = 0.0;
    if (!(observed_rps > 0.0))
        observed_rps = 0.0;
    double ms = lease_ms ? (double)lease_ms : 1.0;
    /* rps * ms / 500 rather than rps * 2 * (ms / 1000): whole rates and periods stay exact, so
     * 100 rps over 100 ms asks for 20 and not 21. */
    double want = ceil(observed_rps * ms / 500.0);
    double cap = floor(share_rps * ms / 250.0);
    if (want > cap)
        want = cap;
    if (!(want >= 1.0))
        return 1;
    return want >= (double)UINT32_MAX ? UINT32_MAX : (uint32_t)want;
}

void
rl_rate_update(double *rate_rps, uint64_t count, uint64_t elapsed_us, uint64_t tau_us)
{
    double r = *rate_rps;
    if (!(r >= 0.0 && r <= DBL_MAX))
        r = 0.0;
    double elapsed_s = (double)elapsed_us / 1e6;
    if (tau_us == 0) {
        if (elapsed_us > 0)
            r = (double)count / elapsed_s;
    } else if (elapsed_us == 0) {
        r += (double)count / ((double)tau_us / 1e6);
    } else {
        /* expm1 keeps the weight exact when elapsed is a small fraction of tau, as it is when
         * the caller folds often. */
        double alpha = -expm1(-(double)elapsed_us / (double)tau_us);
        r += alpha * ((double)count / elapsed_s - r);
    }
    *rate_rps = r;
}

/* ---- the circuit breaker ---- */

void
rl_breaker_init(struct rl_breaker *b)
{
    b->state = RL_BREAKER_CLOSED;
    b->failures = 0;
    b->open_until_us = 0;
    b->backoff_us = 0;
}

void
rl_breaker_failure(struct rl_breaker *b, uint64_t now_us, uint32_t rnd)
{
    if (b->state == RL_BREAKER_OPEN)
        return; /* sent before it opened: the same outage (see the header) */
    uint64_t backoff = RL_BREAKER_BACKOFF_MIN_US;
    if (b->backoff_us >= RL_BREAKER_BACKOFF_MAX_US / 2)
        backoff = RL_BREAKER_BACKOFF_MAX_US;
    else if (b->backoff_us > 0)
        backoff = b->backoff_us * 2;
    /* Workers that lost Redis together must not come back together: spread the probe over
     * backoff +- 20%, uniformly by rnd. */
    uint64_t span = backoff * RL_BREAKER_JITTER_PERCENT / 100;
    uint64_t wait = backoff - span + ((2 * span * (uint64_t)rnd) >> 32);

    b->state = RL_BREAKER_OPEN;
    b->backoff_us = backoff;
    if (b->failures < UINT32_MAX)
        b->failures++;
    b->open_until_us = rl_add_sat(now_us, wait);
}

void
rl_breaker_success(struct rl_breaker *b)
{
    rl_breaker_init(b);
}

bool
rl_breaker_allows(struct rl_breaker *b, uint64_t now_us)
{
    switch (b->state) {
    case RL_BREAKER_CLOSED:
        return true;
    case RL_BREAKER_OPEN:
        if (now_us < b->open_until_us)
            return false;
        b->state = RL_BREAKER_HALF_OPEN;
        return true;
    case RL_BREAKER_HALF_OPEN:
        return false;
    }
    return false;
}

/* ---- the 429 answer ---- */

/* Appends to a fixed buffer, remembering whether everything fitted. */
struct rl_out {
    char *buf;
    size_t size, len;
    bool ok;
};

static void
rl_out_char(struct rl_out *o, char c)
{
    if (o->len + 1 >= o->size) { /* keep a byte for the NUL */
        o->ok = false;
        return;
    }
    o->buf[o->len++] = c;
}

static void
rl_out_str(struct rl_out *o, const char *s)
{
    while (*s)
        rl_out_char(o, *s++);
}

static void
rl_out_u64(struct rl_out *o, uint64_t v)
{
    char digits[24];
    snprintf(digits, sizeof(digits), "%" PRIu64, v);
    rl_out_str(o, digits);
}

/* A structured-field string (RFC 8941 3.3.3): printable ASCII in quotes, '"' and '\' escaped. */
static void
rl_out_sf_string(struct rl_out *o, const char *s)
{
    if (s == NULL) {
        o->ok = false;
        return;
    }
    rl_out_char(o, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c > 0x7e) {
            o->ok = false;
            return;
        }
        if (c == '"' || c == '\\')
            rl_out_char(o, '\\');
        rl_out_char(o, (char)c);
    }
    rl_out_char(o, '"');
}

static size_t
rl_out_end(struct rl_out *o)
{
    if (o->size == 0)
        return 0;
    if (!o->ok) {
        o->buf[0] = '\0';
        return 0;
    }
    o->buf[o->len] = '\0';
    return o->len;
}

size_t
rl_format_policy(char *buf, size_t size, const char *policy, double rps)
{
    uint64_t quota = 1;
    if (rps >= (double)RL_SF_INTEGER_MAX)
        quota = RL_SF_INTEGER_MAX;
    else if (rps >= 1.5) /* below that, NaN included, rounds to at most 1 */
        quota = (uint64_t)floor(rps + 0.5);

    struct rl_out o = {buf, size, 0, size > 0};
    rl_out_sf_string(&o, policy);
    rl_out_str(&o, ";q=");
    rl_out_u64(&o, quota);
    rl_out_str(&o, ";w=1");
    return rl_out_end(&o);
}

size_t
rl_format_ratelimit(char *buf, size_t size, const char *policy, uint32_t remaining,
                    uint32_t reset_s)
{
    struct rl_out o = {buf, size, 0, size > 0};
    rl_out_sf_string(&o, policy);
    rl_out_str(&o, ";r=");
    rl_out_u64(&o, remaining);
    rl_out_str(&o, ";t=");
    rl_out_u64(&o, reset_s);
    return rl_out_end(&o);
}

uint32_t
rl_retry_after_s(uint64_t wait_us)
{
    uint64_t s = wait_us / 1000000 + (wait_us % 1000000 != 0);
    if (s == 0)
        return 1;
    return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

/* ---- GCRA ---- */

/* The interval between requests and the tolerance (how far the arrival time may run ahead
 * of now), in µs. False when nothing is admitted at all. */
static bool
gcra_params(double rate, double burst, uint64_t *interval, uint64_t *tolerance)
{
    if (!(rate > 0.0))
        return false;
    double iv = 1e6 / rate;
    if (!(iv < 1e15))
        return false; /* less than a request in 30 years */
    if (!(burst >= 1.0))
        burst = 1.0;
    double tol = (burst - 1.0) * iv;
    *interval = iv < 1.0 ? 1 : (uint64_t)iv;
    *tolerance = tol < 1e15 ? (uint64_t)tol : (uint64_t)1e15;
    return true;
}

bool
rl_gcra_take(_Atomic uint64_t *tat, double rate, double burst, uint64_t now_us)
{
    uint64_t interval, tolerance;
    if (!gcra_params(rate, burst, &interval, &tolerance))
        return false;
    uint64_t cur = atomic_load_explicit(tat, memory_order_relaxed);
    for (;;) {
        uint64_t base = cur > now_us ? cur : now_us;
        if (base - now_us > tolerance)
            return false;
        if (atomic_compare_exchange_weak_explicit(tat, &cur, base + interval, memory_order_relaxed,
                                                  memory_order_relaxed))
            return true;
    }
}

uint64_t
rl_gcra_wait_us(_Atomic uint64_t *tat, double rate, double burst, uint64_t now_us)
{
    uint64_t interval, tolerance;
    if (!gcra_params(rate, burst, &interval, &tolerance))
        return UINT64_MAX;
    uint64_t cur = atomic_load_explicit(tat, memory_order_relaxed);
    return cur > now_us + tolerance ? cur - now_us - tolerance : 0;
}
