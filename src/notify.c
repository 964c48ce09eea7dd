/* SPDX-License-Identifier: MIT */
/* sd_notify messages and the start-up readiness wait (see notify.h). Messages are composed
 * here and handed to libsystemd when configure found it; otherwise nothing is sent. Knows
 * nothing of how a generation is built: server.c says when each step happens. */
#include "notify.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "cfg.h"
#include "clock.h"
#include "health.h"
#include "log.h"

#define NOTIFY_POLL_MS 10         /* how often the readiness wait looks at the first checks */
#define NOTIFY_START_SLACK_MS 100 /* for the workers to start and send their first checks */
#define NOTIFY_WHY_MAX 200        /* bytes of a refused reload's first error in STATUS= */

enum notify_phase {
    NOTIFY_STARTING = 0, /* READY=1 not sent yet */
    NOTIFY_READY = 1,
    NOTIFY_STOPPING = 2,
};

/* One process, one service manager, the main thread only: plain statics. */
static struct {
    int enabled; /* -1: not looked at yet; 0: no libsystemd or no NOTIFY_SOCKET; 1: on */
    enum notify_phase phase;
    unsigned nworkers;
    char serving[160]; /* "serving generation 3: 2 workers, 1 listener, 2 regions" */
    /* The readiness wait for the first health checks, at start-up only. */
    struct event *wait_ev; /* owns; not pending once the wait is over (freed by
                              notify_stopping: never inside its own callback) */
    struct cfg *wait_cfg;  /* holds a ref while waiting: the generation whose backends count */
    uint64_t wait_started_ms, wait_deadline_ms;
    unsigned wait_answered; /* the count last shown in STATUS= */
} nt = {.enabled = -1};

static bool
notify_is_enabled(void)
{
    if (nt.enabled < 0) {
#ifdef HAVE_SYSTEMD
        const char *sock = getenv("NOTIFY_SOCKET");
        nt.enabled = sock != NULL && sock[0] != '\0';
#else
        nt.enabled = 0;
#endif
    }
    return nt.enabled == 1;
}

static void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One datagram of newline-separated assignments. A failure is logged once: the service
 * manager may have gone away (systemd is restarting), and serving goes on regardless. */
static void
notify_send(const char *fmt, ...)
{
    if (!notify_is_enabled())
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
#ifdef HAVE_SYSTEMD
    int r = sd_notify(0, msg);
    static bool warned;
    if (r < 0 && !warned) {
        warned = true;
        log_warn("sd_notify to %s: %s", getenv("NOTIFY_SOCKET"), strerror(-r));
    }
#endif
}

static const char *
plural(size_t n)
{
    return n == 1 ? "" : "s";
}

static void
describe(const struct cfg *cfg)
{
    snprintf(nt.serving, sizeof(nt.serving),
             "serving generation %u: %u worker%s, %zu listener%s, %zu region%s", cfg->generation,
             nt.nworkers, plural(nt.nworkers), cfg->nlisteners, plural(cfg->nlisteners),
             cfg->nregions, plural(cfg->nregions));
}

/* The backends of a generation with health checks: how many, how many have had a first
 * result, how many are up; and the longest check timeout among them. */
struct first_checks {
    unsigned targets, answered, up;
    uint32_t timeout_ms;
};

static void
first_checks_of(const struct cfg *cfg, struct first_checks *fc)
{
    memset(fc, 0, sizeof(*fc));
    for (size_t i = 0; i < cfg->nregions; i++) {
        const struct cfg_region *r = &cfg->regions[i];
        if (!r->health_check.enabled)
            continue;
        if (r->health_check.timeout_ms > fc->timeout_ms)
            fc->timeout_ms = r->health_check.timeout_ms;
        for (size_t b = 0; b < r->nbackends; b++) {
            struct health_target *t = r->backends[b].health;
            if (t == NULL)
                continue;
            struct health_view v;
            health_target_view(t, &v);
            fc->targets++;
            /* A passive mark may decide before the first check does: it counts too. */
            if (v.checks > 0 || v.state != HEALTH_UNCHECKED)
                fc->answered++;
            if (v.state == HEALTH_UP)
                fc->up++;
        }
    }
}

static void
wait_status(const struct first_checks *fc)
{
    nt.wait_answered = fc->answered;
    notify_send("STATUS=starting generation %u: waiting for the first health check of %u "
                "backend%s (%u answered)",
                nt.wait_cfg->generation, fc->targets, plural(fc->targets), fc->answered);
}

static void wait_poll_cb(evutil_socket_t fd, short what, void *arg);

static void
wait_schedule(void)
{
    struct timeval tv = {0, NOTIFY_POLL_MS * 1000};
    evtimer_add(nt.wait_ev, &tv);
}

/* Polls rather than hearing from health.c: the results come from the workers' loops, the
 * wait lasts at most one check timeout, and a look every 10 ms costs nothing. */
static void
wait_poll_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    struct first_checks fc;
    first_checks_of(nt.wait_cfg, &fc);
    uint64_t now = clock_mono_ms();
    if (fc.answered < fc.targets && now < nt.wait_deadline_ms) {
        if (fc.answered != nt.wait_answered)
            wait_status(&fc);
        wait_schedule();
        return;
    }
    unsigned long long took = (unsigned long long)(now - nt.wait_started_ms);
    if (fc.answered < fc.targets)
        log_warn("ready after %llu ms without the first health check of %u of %u backends", took,
                 fc.targets - fc.answered, fc.targets);
    else
        log_info("ready: first health checks in after %llu ms, %u of %u backends up", took, fc.up,
                 fc.targets);
    nt.phase = NOTIFY_READY;
    notify_send("READY=1\nSTATUS=%s; first health checks: %u of %u backend%s up", nt.serving, fc.up,
                fc.targets, plural(fc.targets));
    cfg_unref(nt.wait_cfg);
    nt.wait_cfg = NULL;
    /* nt.wait_ev stays allocated, not pending, until notify_stopping. */
}

void
notify_started(struct event_base *base, struct cfg *cfg, unsigned nworkers)
{
    nt.nworkers = nworkers;
    describe(cfg);
    if (!notify_is_enabled()) {
        nt.phase = NOTIFY_READY;
        return;
    }
    struct first_checks fc;
    first_checks_of(cfg, &fc);
    if (fc.answered < fc.targets) {
        nt.wait_ev = evtimer_new(base, wait_poll_cb, NULL);
        if (nt.wait_ev != NULL) {
            nt.wait_cfg = cfg_ref(cfg);
            nt.wait_started_ms = clock_mono_ms();
            nt.wait_deadline_ms = nt.wait_started_ms + fc.timeout_ms + NOTIFY_START_SLACK_MS;
            wait_status(&fc);
            wait_schedule();
            return;
        }
        log_warn("cannot wait for the first health checks (out of memory): ready now");
    }
    nt.phase = NOTIFY_READY;
    notify_send("READY=1\nSTATUS=%s", nt.serving);
}

void
notify_reloading(unsigned generation)
{
    if (nt.phase == NOTIFY_STOPPING)
        return;
    if (nt.phase == NOTIFY_STARTING) {
        /* Not ready yet: RELOADING=1 would tell the manager a reload of a running service
         * began. The wait goes on; a STATUS= says what happens. */
        notify_send("STATUS=reloading the configuration while starting");
        return;
    }
    notify_send("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading the configuration; "
                "generation %u serves meanwhile",
                (unsigned long long)clock_mono_us(), generation);
}

void
notify_reloaded(struct cfg *cfg)
{
    describe(cfg);
    if (nt.phase == NOTIFY_STOPPING)
        return;
    if (nt.phase == NOTIFY_STARTING && nt.wait_cfg != NULL) {
        /* Still waiting for the first checks: wait for those of the live generation. */
        struct first_checks fc;
        first_checks_of(cfg, &fc);
        cfg_unref(nt.wait_cfg);
        nt.wait_cfg = cfg_ref(cfg);
        uint64_t deadline = clock_mono_ms() + fc.timeout_ms + NOTIFY_START_SLACK_MS;
        if (deadline > nt.wait_deadline_ms)
            nt.wait_deadline_ms = deadline;
        wait_status(&fc);
        return;
    }
    nt.phase = NOTIFY_READY;
    notify_send("READY=1\nSTATUS=%s", nt.serving);
}

void
notify_reload_failed(const char *why)
{
    if (nt.phase == NOTIFY_STOPPING || !notify_is_enabled())
        return;
    /* The first line of the errors, printable bytes only. */
    char line[NOTIFY_WHY_MAX + 1];
    size_t n = 0;
    const char *p = why ? why : "see the log";
    for (; *p && *p != '\n' && n < NOTIFY_WHY_MAX; p++)
        line[n++] = (unsigned char)*p < 0x20 ? ' ' : *p;
    if (*p && *p != '\n')
        memcpy(line + n - 3, "...", 3); /* cut short */
    line[n] = '\0';
    if (nt.phase == NOTIFY_STARTING) {
        notify_send("STATUS=reload failed (%s); starting generation %u goes on", line,
                    nt.wait_cfg ? nt.wait_cfg->generation : 0);
        return;
    }
    notify_send("READY=1\nSTATUS=reload failed (%s); still %s", line, nt.serving);
}

void
notify_stopping(void)
{
    if (nt.phase != NOTIFY_STOPPING) {
        nt.phase = NOTIFY_STOPPING;
        notify_send("STOPPING=1\nSTATUS=stopping: no new connections, letting requests in "
                    "flight finish");
    }
    if (nt.wait_ev != NULL) {
        event_free(nt.wait_ev);
        nt.wait_ev = NULL;
    }
    if (nt.wait_cfg != NULL) {
        cfg_unref(nt.wait_cfg);
        nt.wait_cfg = NULL;
    }
}
