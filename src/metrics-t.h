/* SPDX-License-Identifier: MIT */
/* Types of the request counters behind /metrics: what a worker records per region when a
 * request ends (status class, protocol, duration), in memory that only that worker writes
 * (relaxed stores) and the admin thread sums at scrape time. Functions are in metrics.h. */
#ifndef MERIDIAN_METRICS_T_H
#define MERIDIAN_METRICS_T_H

#include <stdatomic.h>

/* The client's protocol, as the access log names it. */
enum metrics_protocol {
    METRICS_HTTP10 = 0,
    METRICS_HTTP11 = 1,
    METRICS_H2 = 2,
    METRICS_PROTOCOLS = 3,
};

/* 1xx .. 5xx. */
#define METRICS_CLASSES 5

/* The latency histogram's upper bounds in microseconds (Prometheus `le`, in seconds:
 * 0.005 .. 10), then +Inf. Fine around 500 ms, where the roadmap's p95 alert acts. */
#define METRICS_BOUNDS_US                                                                          \
    {                                                                                              \
        5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000     \
    }
#define METRICS_BUCKETS 12 /* the bounds above and +Inf */

/* Responses of one region on one worker (a field of struct cfg_region_stats). */
struct metrics_region {
    atomic_uint_fast64_t responses[METRICS_CLASSES][METRICS_PROTOCOLS];
    atomic_uint_fast64_t duration[METRICS_BUCKETS]; /* per bucket, not cumulative */
    atomic_uint_fast64_t duration_us_sum;
};

/* Responses Meridian gives before a request has a region (a malformed request, a head too
 * large): one block per worker, in struct worker_stats. */
struct metrics_unrouted {
    atomic_uint_fast64_t responses[METRICS_CLASSES][METRICS_PROTOCOLS];
};

#endif
