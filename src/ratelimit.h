/* SPDX-License-Identifier: MIT */
/* The arithmetic of the fleet-wide request budget: a local token bucket, the size of the leases a
 * worker takes from the shared bucket in Redis, an EWMA of the admitted rate, the per-worker
 * circuit breaker in front of Redis, and the values of the 429 answer's headers. Pure code: no
 * I/O, no allocation, no clock read (the caller passes `now`, in microseconds of a monotonic
 * clock), so all of it is table-tested. The Redis link and the admission step live elsewhere.
 *
 * How the pieces fit (issue 7):
 *
 *     Redis bucket (rps, burst; Redis's own clock)
 *         |  a lease of rl_lease_want() tokens, asked for when the last one is half spent
 *         v
 *     worker: spends the lease locally, one token per request; the lease expires lease_ms
 *             after it was granted and its unspent tokens are lost (never handed back)
 *         |  Redis fails -> rl_breaker opens -> on_redis_failure: local uses an rl_bucket
 *         v                                      of budget / last-known node count
 *     request admitted, or 429 with Retry-After, RateLimit-Policy and RateLimit
 *
 * Accuracy of leasing (lease_s = lease_ms / 1000):
 * - Never more than the budget: a token is spent at most once and every token comes from the
 *   Redis bucket, so the fleet never admits more than the Redis bucket hands out: rps * t + burst
 *   over the t seconds since the bucket was created (plus another burst each time Redis loses the
 *   key, if the script recreates it full). Over a window that starts later the fleet can also
 *   spend what it held in leases at the window's start: at most 4 lease periods of each worker's
 *   fair share (rl_lease_want's cap), about 4 * lease_s * rps fleet-wide when the shares add up
 *   to rps (twice that with the carry-over below).
 * - Otherwise only less: what is lost is what leases hold unspent when they expire, at most the
 *   sum of the outstanding leases' unspent tokens per lease period. Under overload a worker spends
 *   each lease as fast as it arrives, so little is lost where the limit bites; a worker below its
 *   share loses what is left of a lease at expiry.
 * - Since a lease covers about 2 lease periods at the worker's rate and the next one is asked for
 *   when half is spent, the caller should move the old lease's unspent tokens into the new one
 *   when the refill arrives (they take the new lease's expiry) rather than let them expire beside
 *   it: otherwise a steadily loaded worker loses half of every lease, draws about twice its
 *   admitted rate from Redis, and the fleet is held back below the budget once its load passes
 *   half of it (a lightly loaded node also takes twice its use from the others). With the
 *   carry-over a worker holds at most two caps' worth, and tokens are lost only when its load
 *   falls.
 */
#ifndef MERIDIAN_RATELIMIT_H
#define MERIDIAN_RATELIMIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the local token bucket ---- */

/* A token bucket: rate tokens per second up to burst; starts full. `last_us` is the latest
 * `now` the bucket has seen: time is counted from there. */
struct rl_bucket {
    double tokens, rate, burst;
    uint64_t last_us;
};

/* Fill `b` for `rate` tokens per second up to `burst`, full at `now_us`. A negative or NaN rate
 * counts as 0 (no refill: the bucket only ever gives its burst), and a burst below 1 (or NaN) as 1,
 * since a bucket that can never hold a whole token would refuse forever; infinity counts as the
 * largest double. The config refuses such values before they get here. */
void rl_bucket_init(struct rl_bucket *b, double rate, double burst, uint64_t now_us);

/* Re-rate without losing state (a reload that changes the budget): the time up to now_us is
 * counted at the old rate, then tokens are capped at the new burst. Values as rl_bucket_init. */
void rl_bucket_set(struct rl_bucket *b, double rate, double burst, uint64_t now_us);

/* Take one token if there is one (after refilling for the time since last). A `now_us` before the
 * last one seen counts as no time passed and does not move the bucket's time back: with a
 * monotonic clock that only happens to timestamps taken out of order, and going back would count
 * the same interval twice. Any gap, however long, refills at most to burst. */
bool rl_bucket_take(struct rl_bucket *b, uint64_t now_us);

/* Microseconds until one token is there (0 if there is one now): rl_bucket_take at now_us plus
 * this succeeds. UINT64_MAX when the bucket is empty and has no rate. */
uint64_t rl_bucket_wait_us(const struct rl_bucket *b, uint64_t now_us);

/* ---- leases ---- */

/* share_rps: this worker's fair share of the budget (rps / (live nodes * workers per node), or
 * of its region's budget).
 * observed_rps: the rate this worker admitted lately (an EWMA the caller keeps).
 * Returns how many tokens to ask for: enough for about 2 lease periods at the observed rate
 * (rounded up) so that refills (asked for when half is spent) come rarely under steady load, but
 * never more than 4 lease periods of the fair share (rounded down, so no node sits on much of
 * the budget), and at least 1. NaN or negative rates count as 0; lease_ms 0 as 1; the result is
 * at most UINT32_MAX. See the file comment for what happens to the unspent part. */
uint32_t rl_lease_want(double share_rps, double observed_rps, uint32_t lease_ms);

/* An EWMA of a rate: fold `count` events seen over `elapsed_us` into *rate_rps with time constant
 * tau_us. The weight of the new sample is 1 - exp(-elapsed / tau), so the estimate does not depend
 * on how often the caller folds: a steady rate r, folded at any intervals, stays r; after a step
 * the estimate covers 63% of the way in tau. count events over elapsed 0 add count / tau (the
 * limit of the same formula), so a burst folded at once is not lost. tau_us 0 means no memory
 * (the rate of this sample; unchanged if elapsed is 0 too). A NaN, infinite or negative *rate_rps
 * starts again from 0. */
void rl_rate_update(double *rate_rps, uint64_t count, uint64_t elapsed_us, uint64_t tau_us);

/* ---- a bucket shared by threads: GCRA on one atomic word ---- */

/* The generic cell rate algorithm: the same admissions as a token bucket of `rate` and
 * `burst`, kept as one number, the theoretical arrival time (µs) of the next request, so
 * that the workers of a node can share it with one compare-and-swap and no lock. Starts
 * full at *tat = 0. A rate of 0 or less admits nothing. */
bool rl_gcra_take(_Atomic uint64_t *tat, double rate, double burst, uint64_t now_us);
/* Microseconds until rl_gcra_take() would admit (0: now). */
uint64_t rl_gcra_wait_us(_Atomic uint64_t *tat, double rate, double burst, uint64_t now_us);

/* ---- the circuit breaker in front of Redis (one per worker) ---- */

#define RL_BREAKER_BACKOFF_MIN_US 100000ULL  /* after the first failure */
#define RL_BREAKER_BACKOFF_MAX_US 2000000ULL /* doubling stops here (before jitter) */
#define RL_BREAKER_JITTER_PERCENT 20         /* +- this much of the backoff */

enum rl_breaker_state {
    RL_BREAKER_CLOSED = 0, /* commands go to Redis */
    RL_BREAKER_OPEN,       /* they do not until open_until_us; the failure mode decides */
    RL_BREAKER_HALF_OPEN,  /* one probe is out; the rest wait for its answer */
};

/*   CLOSED --failure--> OPEN --allows() at open_until--> HALF_OPEN --success--> CLOSED
 *      ^                 ^                                   |
 *      |                 +-------- failure (backoff x2) -----+
 *      +------------------ success (from any state) ---------+
 */
struct rl_breaker {
    enum rl_breaker_state state;
    uint32_t failures;      /* consecutive failures that opened or re-opened it */
    uint64_t open_until_us; /* OPEN: the time of the next probe (jitter included) */
    uint64_t backoff_us;    /* the last backoff before jitter; 0 when closed */
};

void rl_breaker_init(struct rl_breaker *b);

/* A command failed (error, timeout, connection lost). `rnd` a random 32-bit number for jitter.
 * Opens the breaker at the first failure (the caller already waited `timeout` once; no point
 * waiting again), backoff 100 ms doubling per consecutive failure up to 2 s, with +-20% jitter
 * (so the wait is 80 ms .. 6 s). A failure while OPEN changes nothing: it is a command sent before
 * the breaker opened (a lost connection fails every command in flight at once), the same outage,
 * and must neither double the backoff again nor push the probe back. */
void rl_breaker_failure(struct rl_breaker *b, uint64_t now_us, uint32_t rnd);

/* A command succeeded: closed, backoff reset. */
void rl_breaker_success(struct rl_breaker *b);

/* May a command go to Redis now? CLOSED: yes. OPEN: no until open_until_us, then it turns
 * HALF_OPEN and returns true once (one probe); HALF_OPEN: no (the probe is in flight). The probe
 * must end in rl_breaker_success or rl_breaker_failure (its timeout counts as a failure), or the
 * breaker stays half open. */
bool rl_breaker_allows(struct rl_breaker *b, uint64_t now_us);

/* ---- the 429 answer (draft-ietf-httpapi-ratelimit-headers, structured fields) ---- */

/* RateLimit-Policy value: "\"<policy>\";q=<quota>;w=<window_s>", e.g. "\"phase1\";q=100;w=1".
 * The quota is rps rounded to the nearest integer, at least 1 (at most 999999999999999, the
 * largest structured-field integer); the window is 1 s. `policy` is written as a structured-field
 * string: '"' and '\' are escaped; a character outside printable ASCII makes it unwritable.
 * Returns the length written (excluding the NUL), or 0 if it does not fit in `size` bytes or the
 * policy cannot be written (then buf holds an empty string when size > 0). */
size_t rl_format_policy(char *buf, size_t size, const char *policy, double rps);

/* RateLimit value: "\"<policy>\";r=<remaining>;t=<reset_s>", e.g. "\"phase1\";r=0;t=1". Policy and
 * return value as rl_format_policy. */
size_t rl_format_ratelimit(char *buf, size_t size, const char *policy, uint32_t remaining,
                           uint32_t reset_s);

/* Retry-After seconds for a wait of wait_us: ceil to whole seconds, at least 1 (a client told 0
 * comes straight back), at most UINT32_MAX. Also the RateLimit field's t. */
uint32_t rl_retry_after_s(uint64_t wait_us);

#endif
