/* SPDX-License-Identifier: MIT */
/* Backend health, shared by every worker. One health_target per backend address for the
 * whole process, found again by address when a reload keeps the backend (its state and
 * history stay), new and UNCHECKED when it is added. Each target is checked by one worker
 * (assigned round-robin when the target is made, for its life), from that worker's event
 * loop, on connections of its own that never enter the request pools: an HTTP/1.1 GET of
 * health_check.path every interval, passing on a status within expect_status before the
 * timeout; `rise` passes in a row bring a backend up, `fall` failures take it down.
 * Passive checks: connect failures, resets and timeouts of real requests, on any worker,
 * count too, and `fall` of them in a row take the backend down before the next check
 * (HAProxy's observe layer4); only active checks bring it back.
 *
 *   new --> UNCHECKED --first check passes--> UP <--rise passes-- DOWN
 *               |                              |                  ^
 *               +--first check fails-----------|------------------+
 *                                              +--fall failures (active or passive)
 *
 * A backend starts UNCHECKED and is checked at once: the first result decides, so a new
 * region takes traffic within one check, not rise x interval. Route choice ranks
 * UNCHECKED below UP (a region with none up is used only when no region has any), so a
 * region added by a reload is not flooded before its first check, and a fresh process
 * still serves during its first milliseconds.
 *
 * The request path only reads `state` (one relaxed atomic load): no lock, no write.
 * The rest of a target (settings, last result) is behind a mutex that only the checking
 * worker, the main thread (reload) and the admin endpoint take. */
#ifndef MERIDIAN_HEALTH_H
#define MERIDIAN_HEALTH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct cfg;
struct worker;
struct health_target;
struct health_registry;

enum health_state {
    HEALTH_UNCHECKED = 0,
    HEALTH_UP = 1,
    HEALTH_DOWN = 2,
};

/* The rise/fall state machine, pure. `streak` counts results in a row that argue for
 * leaving the current state. */
struct health_sm {
    uint8_t state; /* enum health_state */
    uint32_t streak;
};

/* Feed one result. Returns true when the state changed. */
bool health_sm_feed(struct health_sm *sm, bool ok, uint32_t rise, uint32_t fall);

/* Whether `status` passes a check expecting lo..hi. */
static inline bool
health_status_passes(int status, unsigned lo, unsigned hi)
{
    return status >= (int)lo && status <= (int)hi;
}

/* ---- the process-wide registry (main thread) ---- */

struct health_registry *health_registry_new(unsigned nworkers);
/* After the workers have stopped. */
void health_registry_free(struct health_registry *reg);

/* Give each backend of `next` whose region has health checks its target (cfg_backend's
 * `health`, holding a ref): the existing one for its address, with the new settings, or a
 * new UNCHECKED one. Targets `next` no longer names are retired: their worker stops
 * checking them. Call before publishing `next`. Returns 0, or -1 out of memory (nothing
 * changed that matters: the caller refuses `next`). */
int health_apply(struct health_registry *reg, struct cfg *next);

/* ---- workers ---- */

/* The worker adopted `cfg`: start checking the targets it owns that it does not check
 * yet. Worker thread. */
void health_worker_adopt(struct worker *w, const struct cfg *cfg);
/* The worker is stopping: stop its checks and let go of their targets. */
void health_worker_stop(struct worker *w);

/* ---- the request path (any worker) ---- */

enum health_state health_state_of(const struct health_target *t);
/* A real request could not connect, was reset, or timed out (passive check). */
void health_report_failure(struct health_target *t);
/* A real request reached the backend: the passive streak starts again. Cheap when it
 * is already 0 (a load, no store). */
void health_report_success(struct health_target *t);

/* ---- observability (any thread) ---- */

struct health_view {
    enum health_state state;
    int last_status;        /* the last check's HTTP status; 0 if none */
    char last_error[128];   /* why the last check failed, "" if it passed */
    uint64_t last_check_ms; /* wall clock ms of the last result, 0 if none yet */
    uint64_t last_change_ms;/* wall clock ms of the last state change, 0 if none */
    uint32_t check_ms;      /* how long the last check took */
    uint64_t checks, failures, passive_failures, transitions;
};
void health_target_view(struct health_target *t, struct health_view *out);
const char *health_state_name(enum health_state s);

/* Reference counting across threads (cfg generations, the registry, the checking worker
 * hold refs). NULL is accepted. */
void health_target_unref(struct health_target *t);

#endif
