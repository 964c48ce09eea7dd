/* SPDX-License-Identifier: MIT */
/* Telling the service manager how the process is doing, through sd_notify(3): READY=1 when
 * it serves, RELOADING=1 while a SIGHUP builds the next generation, STOPPING=1 on the way
 * out, and a STATUS= line for `systemctl status`. It also decides when start-up is over:
 * listeners bound and, where health checks are configured, every checked backend's first
 * result in (or the longest check timeout gone by).
 *
 *   notify_started --(health: first results, or timeout)--> READY=1 "serving generation 1"
 *        SIGHUP: notify_reloading  RELOADING=1 + MONOTONIC_USEC
 *                  |-- notify_reloaded       READY=1 "serving generation N+1"
 *                  +-- notify_reload_failed  READY=1 "reload failed (...); still serving N"
 *        SIGTERM: notify_stopping  STOPPING=1
 *
 * Built without libsystemd (configure found no libsystemd-dev) or run without NOTIFY_SOCKET
 * in the environment, every call is a cheap no-op. Main thread only: none of this is
 * thread-safe, and the readiness wait runs on the main event loop. */
#ifndef MERIDIAN_NOTIFY_H
#define MERIDIAN_NOTIFY_H

struct cfg;
struct event_base;

/* `cfg` (generation 1) is published, its listeners bound and the workers started. Sends
 * READY=1 now, or, when `cfg` has health checks, from a timer on `base` once every checked
 * backend has had its first result, at most the longest check timeout (+100 ms for the
 * workers to start) from now; a STATUS= says what it waits for meanwhile. Holds a ref on
 * the generation it waits for until then. */
void notify_started(struct event_base *base, struct cfg *cfg, unsigned nworkers);

/* A SIGHUP reload begins while `generation` serves: RELOADING=1 with MONOTONIC_USEC. */
void notify_reloading(unsigned generation);
/* `cfg` is published: READY=1 and its STATUS=. While start-up still waits for the first
 * health checks, the wait moves on to `cfg`'s backends instead (and takes a ref on it). */
void notify_reloaded(struct cfg *cfg);
/* The reload was refused and the running generation stays: READY=1 with a STATUS= saying
 * so. `why` (one line is used; NULL: "see the log") is the first error. */
void notify_reload_failed(const char *why);

/* A graceful stop begins: STOPPING=1. Drops a readiness wait still pending (its timer and
 * ref), so call it before the event base is freed. Idempotent. */
void notify_stopping(void);

#endif
