/* SPDX-License-Identifier: MIT */
/* JSON documents about routing for the admin endpoint: the regions with their backends'
 * health and failover counts and the request budget (parts of /status), and /route's
 * explanation of the choice for one address. Renders from a config generation the caller holds a
 * reference on; reads health and counters that workers write with relaxed atomics. Admin thread. */
#ifndef MERIDIAN_STATUS_H
#define MERIDIAN_STATUS_H

#include <stddef.h>

struct cfg;

/* A growing text buffer; `oom` once an append failed (the text is then cut short). */
struct status_buf {
    char *p; /* owns */
    size_t len, cap;
    int oom;
};

void status_printf(struct status_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A JSON string: quotes and escapes. NULL gives null. */
void status_json_str(struct status_buf *b, const char *s);

struct resolver;

/* "regions":[...] for /status; each region's backend names with what the resolver (main
 * thread) knows of them, and a name without an address as a backend "resolving". */
void status_regions_json(struct status_buf *b, struct cfg *cfg, unsigned nworkers,
                         const struct resolver *res);

struct worker;

/* "rate_limit":{...} for /status (null without a rate_limit section): the phase and its
 * budget, the live nodes, admissions and refusals per second over the last 10 s (from
 * the caller's once-a-second samples), and each worker's counters and Redis state. */
void status_rate_limit_json(struct status_buf *b, const struct cfg *cfg,
                            const struct worker *workers, unsigned nworkers, double admitted_per_s,
                            double rejected_per_s);

/* /route?ip=ADDR: a malloc'd JSON document with *http_status 200, or one saying what
 * was expected with 400 when `ip` is not an address; NULL only when out of memory. The
 * choice shown is the one for a request that does not spill. */
char *status_route_json(struct cfg *cfg, const char *ip, size_t iplen, int *http_status);

#endif
