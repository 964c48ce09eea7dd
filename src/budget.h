/* SPDX-License-Identifier: MIT */
/* A worker's share of the fleet's request budget (rate_limit): the admission step of a
 * request, after its region is chosen and before a backend is.
 *
 * The budget of the active phase is a token bucket in Redis, changed only by a Lua script
 * that reads Redis's own clock (so the nodes' clocks do not matter) and shared by every
 * worker of every node. A worker never asks Redis per request: it takes a lease of tokens
 * (sized by rl_lease_want() from its fair share and its recent rate) and spends it
 * locally, asking for the next lease when half of this one is spent, so under steady load
 * no request waits. A request that finds the lease spent waits (struct budget_wait, in
 * the stream) for the refill, never longer than redis.timeout; when the refill says the
 * fleet's bucket is empty, the worker answers 429 on its own until Redis said it refills.
 *
 * When Redis fails (refused, timeout, an error, no master for the slot) a circuit breaker
 * (ratelimit.h) stops asking it for a while and on_redis_failure decides: `local`, an
 * in-process bucket of the bucket's rate / (live nodes * workers); `open`; `closed` (503).
 *
 * Worker 0 also announces the node every second (a sorted set of heartbeats with a
 * 5-second horizon), which tells every node how many share the budget.
 *
 * Accuracy: the fleet never admits more than the Redis bucket hands out (rps * t +
 * burst), plus, while Redis is unreachable in `local` mode, what the local buckets admit.
 * It may admit less: a lease's unspent tokens expire with it (BUDGET_LEASE_TTL_MS), at most
 * about 4 lease periods of a worker's fair share each. */
#ifndef MERIDIAN_BUDGET_H
#define MERIDIAN_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg;
struct worker;
struct budget;

/* A lease is sized for two periods of BUDGET_LEASE_MS of the worker's recent rate, and the
 * next is asked for when half is spent, so under steady load a refill comes about every
 * period. Its tokens (with what is left of the previous ones) may be spent for
 * BUDGET_LEASE_TTL_MS after it came: twice the refill interval, so that they never expire
 * under steady load (a request would wait for the refill), only when the load falls. */
#define BUDGET_LEASE_MS 500
#define BUDGET_LEASE_TTL_MS 1000
/* Heartbeats: how often a node announces itself, and how long an announcement counts. */
#define BUDGET_HEARTBEAT_MS 1000
#define BUDGET_NODE_TTL_MS 5000
/* Requests that may wait on one bucket's refill; past it, the failure mode decides. */
#define BUDGET_WAITERS_MAX 4096

enum budget_verdict {
    BUDGET_ADMIT,
    BUDGET_WAIT,        /* parked: wt->done is called later, exactly once */
    BUDGET_OVER,        /* 429 */
    BUDGET_UNAVAILABLE, /* Redis is gone and on_redis_failure is closed: 503 */
};

/* A request waiting for a lease. Lives in its stream; budget_cancel() unlinks it (a
 * stream that ends meanwhile), so a late refill finds nothing to touch. */
struct budget_wait {
    struct budget_wait *prev, *next;
    void (*done)(struct budget_wait *wt, enum budget_verdict v);
    struct budget *budget; /* NULL when not waiting */
    unsigned bucket;
    size_t region;     /* as given to budget_admit() */
    uint64_t since_us; /* when it was parked: it hears within redis.timeout of it */
};

/* What a 429 says: the policy (the phase), its quota, and when to come back. */
struct budget_refusal {
    const char *policy; /* borrows: the phase's name */
    double rps;         /* the bucket's rate */
    uint32_t retry_after_s;
};

/* The budget for worker `w` under `cfg` (rate_limit.enabled); NULL when out of memory.
 * budget_apply() moves it to a later generation: the Redis link stays when redis: is
 * unchanged, the lease and the local bucket start again when the phase or scope changed. */
struct budget *budget_new(struct worker *w, const struct cfg *cfg);
void budget_apply(struct budget *b, const struct cfg *cfg);
void budget_free(struct budget *b);

/* Admit one request served by `region`. On BUDGET_WAIT, `wt` is parked. */
enum budget_verdict budget_admit(struct budget *b, size_t region, struct budget_wait *wt);
void budget_cancel(struct budget_wait *wt);

/* For a 429 answered for `region`. */
void budget_refusal(const struct budget *b, size_t region, struct budget_refusal *out);

/* The live node count, as last heard (at least 1). Shared by the workers. */
unsigned budget_live_nodes(void);

#endif
