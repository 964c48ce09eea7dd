/* SPDX-License-Identifier: MIT */
/* Observability in Prometheus' terms: the text that GET /metrics answers with, and the
 * few inlines the request path records through (a relaxed load and store into memory
 * only the calling worker writes: no lock, no locked instruction, no allocation).
 *
 * Where the counters live, so that the admin thread never reads freed memory: per worker
 * in struct worker_stats (the workers array lives as long as the process), and per
 * region in the generation's struct cfg_region_stats (the admin thread holds a reference
 * on the generation while it renders; server.c carries them to the next generation by
 * region name, as it does the /status ones). Sums are taken at scrape time. */
#ifndef MERIDIAN_METRICS_H
#define MERIDIAN_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "metrics-t.h"

struct server;

/* The exposition (text format 0.0.4) of everything below and of the process (CPU,
 * memory, descriptors from /proc/self): a malloc'd NUL-terminated text, NULL when out of
 * memory. Main thread (the admin endpoint's); takes and drops its own reference on the
 * published generation. */
char *metrics_render(struct server *srv);

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Counters written by one worker only: a store the admin thread reads whole. */
static inline void
metrics_add(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void
metrics_inc(atomic_uint_fast64_t *c)
{
    metrics_add(c, 1);
}

/* A gauge of the worker's own (streams in flight). A release store (a plain store on
 * x86): a reader that sees a stream gone (acquire) sees everything it counted, so an idle
 * scrape is an exact one. */
static inline void
metrics_dec(atomic_uint_fast64_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - 1,
                          memory_order_release);
}

/* "HTTP/1.0", "HTTP/1.1", "HTTP/2" as the client protocols name themselves for the
 * access log; anything else counts as HTTP/1.1. */
static inline enum metrics_protocol
metrics_protocol_of(const char *protocol)
{
    if (protocol == NULL || strncmp(protocol, "HTTP/", 5) != 0)
        return METRICS_HTTP11;
    if (protocol[5] == '2')
        return METRICS_H2;
    return strcmp(protocol + 5, "1.0") == 0 ? METRICS_HTTP10 : METRICS_HTTP11;
}

/* The histogram bucket of a duration: the first bound it does not exceed, else +Inf. */
static inline unsigned
metrics_bucket(uint64_t us)
{
    static const uint32_t bounds[METRICS_BUCKETS - 1] = METRICS_BOUNDS_US;
    unsigned i = 0;
    while (i < METRICS_BUCKETS - 1 && us > bounds[i])
        i++;
    return i;
}

/* One answered request: `status` (100-599; others are not counted) to a client speaking
 * `protocol`, `duration_us` from the request's start to the response's end. Returns
 * whether it was counted. */
static inline bool
metrics_count_response(atomic_uint_fast64_t (*responses)[METRICS_PROTOCOLS], int status,
                       const char *protocol)
{
    if (status < 100 || status > 599)
        return false;
    metrics_inc(&responses[status / 100 - 1][metrics_protocol_of(protocol)]);
    return true;
}

static inline void
metrics_record(struct metrics_region *m, int status, const char *protocol, uint64_t duration_us)
{
    if (!metrics_count_response(m->responses, status, protocol))
        return;
    metrics_inc(&m->duration[metrics_bucket(duration_us)]);
    metrics_add(&m->duration_us_sum, duration_us);
}

#endif
