/* SPDX-License-Identifier: MIT */
/* Process lifecycle on the main thread. A reload builds a complete new generation
 * (parsed, validated, listening sockets open) before anything changes; if any step fails
 * the running generation stays, untouched. Publishing is one pointer swap under a mutex
 * that only workers taking a new generation ever contend for - never a request. */
#include "server.h"

#include <errno.h>
#include <malloc.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "access_log.h"
#include "admin.h"
#include "cfg.h"
#include "cfg_load.h"
#include "clock.h"
#include "geo.h"
#include "health.h"
#include "log.h"
#include "notify.h"
#include "privileges.h"
#include "resolver.h"
#include "sock.h"
#include "status.h"
#include "tls.h"
#include "tls_ticket.h"
#include "version.h"
#include "worker.h"

#define RL_SAMPLES 11 /* ten seconds between the oldest and the newest */

struct server {
    struct event_base *base; /* owns */
    const char *cfg_path;    /* borrows argv */
    pthread_mutex_t cfg_lock;
    struct cfg *current; /* holds a ref; under cfg_lock */
    unsigned generation;
    /* Reloads that went live and that were refused, and whether the last one was
     * refused (main thread only, as is the admin endpoint that shows them). */
    uint64_t reloads_ok, reloads_failed;
    bool last_reload_failed;
    atomic_bool stopping;
    atomic_bool hurry; /* a second stop signal: stop without waiting for requests */
    unsigned nworkers;
    atomic_uint nrunning;           /* workers started (read by workers waking each other) */
    struct worker *workers;         /* owns */
    struct admin *admin;            /* owns */
    struct health_registry *health; /* owns: backend health across generations */
    struct resolver *resolver;      /* owns: backend names (main thread) */
    bool serving;                   /* start-up is over: DNS changes make new generations */
    uint64_t dns_rebuilds, dns_rebuilds_failed; /* generations made for DNS changes */
    int signal_fd;                  /* the process signals, read as data: see server_run */
    struct event *signal_ev;
    struct event *tick;        /* owns: once a second (ticket key rotation) */
    struct event *drain_watch; /* owns: while stopping, looks for the workers' end */
    uint64_t started_ms;
    uint64_t accepted_at_trim; /* connections accepted when the heap was last trimmed */
    /* rate_limit's admissions and refusals, all workers, sampled by the tick: the last
     * RL_SAMPLES seconds (main thread only), and their rates published for /status. */
    uint64_t rl_admitted[RL_SAMPLES], rl_rejected[RL_SAMPLES];
    unsigned rl_next, rl_filled;
    _Atomic double rl_admitted_rate, rl_rejected_rate;
    /* limits.max_connections, for the whole process: a worker checks for room before it
     * accepts and counts what it accepted. One atomic per connection, none per request. */
    atomic_uint conns;
    atomic_uint max_conns;
};

struct cfg *
server_current_cfg(struct server *srv)
{
    pthread_mutex_lock(&srv->cfg_lock);
    struct cfg *cfg = cfg_ref(srv->current);
    pthread_mutex_unlock(&srv->cfg_lock);
    return cfg;
}

void
server_release_cfg(struct cfg *cfg)
{
    cfg_unref(cfg);
}

bool
server_is_stopping(struct server *srv)
{
    return atomic_load(&srv->stopping);
}

bool
server_is_hurrying(struct server *srv)
{
    return atomic_load(&srv->hurry);
}

static void
close_fds(struct cfg_listener *l, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (l->fds[i] >= 0)
            close(l->fds[i]);
}

/* Give every listener of `next` one socket per worker: the running generation's sockets
 * where the address is unchanged (so nothing queued is lost), new ones elsewhere. On
 * failure, closes what it opened and returns -1. */
static int
open_listeners(struct server *srv, struct cfg *next, const struct cfg *prev)
{
    for (size_t i = 0; i < next->nlisteners; i++) {
        struct cfg_listener *l = &next->listeners[i];
        l->fds = malloc(srv->nworkers * sizeof(int));
        if (!l->fds)
            goto fail;
        const struct cfg_listener *old = NULL;
        for (size_t j = 0; prev && j < prev->nlisteners; j++)
            if (strcmp(prev->listeners[j].addr.text, l->addr.text) == 0)
                old = &prev->listeners[j];
        for (unsigned w = 0; w < srv->nworkers; w++) {
            if (old) {
                l->fds[w] = old->fds[w];
                continue;
            }
            char err[256], note[512];
            l->fds[w] = sock_listen(&l->addr, true, err, sizeof(err));
            if (l->fds[w] < 0) {
                /* After giving up root, a new port below 1024 is out of reach: say why. */
                log_error("%s:%d: listener \"%s\": %s%s", next->path, l->line, l->name, err,
                          privileges_bind_note(errno, note, sizeof(note)));
                for (unsigned k = 0; k < w; k++)
                    close(l->fds[k]);
                free(l->fds);
                l->fds = NULL;
                goto fail;
            }
        }
    }
    return 0;

fail:
    /* Close the sockets that are new in `next` (not the ones shared with prev). */
    for (size_t i = 0; i < next->nlisteners; i++) {
        struct cfg_listener *l = &next->listeners[i];
        if (!l->fds)
            continue;
        bool shared = false;
        for (size_t j = 0; prev && j < prev->nlisteners; j++)
            if (strcmp(prev->listeners[j].addr.text, l->addr.text) == 0)
                shared = true;
        if (!shared)
            close_fds(l, srv->nworkers);
        free(l->fds);
        l->fds = NULL;
    }
    return -1;
}

static void
log_cfg_errors(const char *what, const char *errors)
{
    const char *p = errors;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        log_error("%s: %.*s", what, len, p);
        p = nl ? nl + 1 : p + len;
    }
}

/* Descriptors kept out of the automatic connection limit: listeners, logs, the admin
 * side, eventfds, epoll instances. */
#define FD_RESERVE 128

/* limits.max_connections, or "auto": HAProxy's maxconn from ulimit -n, since a client
 * connection may need a backend one, half the descriptors. */
static unsigned
effective_max_conns(const struct cfg *cfg)
{
    if (cfg->limits.max_connections)
        return cfg->limits.max_connections;
    struct rlimit rl;
    uint64_t nofile = 1u << 20;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        nofile = rl.rlim_cur;
    return nofile > 2 * FD_RESERVE ? (unsigned)((nofile - FD_RESERVE) / 2) : FD_RESERVE;
}

void
server_conn_added(struct server *srv)
{
    atomic_fetch_add(&srv->conns, 1);
}

bool
server_conn_has_room(struct server *srv)
{
    return atomic_load(&srv->conns) < atomic_load(&srv->max_conns);
}

void
server_conn_release(struct server *srv, struct worker *self)
{
    unsigned before = atomic_fetch_sub(&srv->conns, 1);
    if (before < atomic_load(&srv->max_conns))
        return;
    /* The process was full: workers that stopped accepting may go on. */
    for (unsigned i = 0; i < srv->nrunning; i++)
        if (&srv->workers[i] != self && worker_paused_for_limit(&srv->workers[i]))
            worker_wake(&srv->workers[i]);
}

unsigned
server_conn_count(struct server *srv, unsigned *max)
{
    *max = atomic_load(&srv->max_conns);
    return atomic_load(&srv->conns);
}

unsigned
server_worker_count(const struct server *srv)
{
    return srv->nworkers;
}

/* /metrics' counters of one region on one worker, into the next generation's. */
static void
region_metrics_carry(struct metrics_region *to, const struct metrics_region *from)
{
    for (unsigned c = 0; c < METRICS_CLASSES; c++)
        for (unsigned p = 0; p < METRICS_PROTOCOLS; p++)
            atomic_store(&to->responses[c][p], atomic_load(&from->responses[c][p]));
    for (unsigned i = 0; i < METRICS_BUCKETS; i++)
        atomic_store(&to->duration[i], atomic_load(&from->duration[i]));
    atomic_store(&to->duration_us_sum, atomic_load(&from->duration_us_sum));
}

/* Give each region of `next` its per-worker counters; those of a region that stays
 * (same name) go on from where they were (a few increments made meanwhile by workers
 * still on `prev` are lost). Returns 0, or -1 out of memory. */
static int
region_stats_apply(struct server *srv, struct cfg *next, const struct cfg *prev)
{
    for (size_t i = 0; i < next->nregions; i++) {
        struct cfg_region *r = &next->regions[i];
        r->stats = aligned_alloc(64, srv->nworkers * sizeof(*r->stats));
        if (r->stats == NULL)
            return -1;
        memset(r->stats, 0, srv->nworkers * sizeof(*r->stats));
        int j = prev ? cfg_region_index(prev, r->name) : -1;
        if (j < 0)
            continue;
        for (unsigned w = 0; w < srv->nworkers; w++) {
            const struct cfg_region_stats *old = &prev->regions[j].stats[w];
            atomic_store(&r->stats[w].requests, atomic_load(&old->requests));
            atomic_store(&r->stats[w].failovers_in, atomic_load(&old->failovers_in));
            atomic_store(&r->stats[w].failovers_out, atomic_load(&old->failovers_out));
            region_metrics_carry(&r->stats[w].m, &old->m);
        }
    }
    return 0;
}

static void
publish(struct server *srv, struct cfg *next)
{
    next->generation = ++srv->generation;
    unsigned old_max = atomic_exchange(&srv->max_conns, effective_max_conns(next));
    pthread_mutex_lock(&srv->cfg_lock);
    struct cfg *old = srv->current;
    srv->current = next;
    pthread_mutex_unlock(&srv->cfg_lock);
    if (old_max && old_max != atomic_load(&srv->max_conns))
        log_info("limits.max_connections: %u (was %u)", atomic_load(&srv->max_conns), old_max);
    for (unsigned i = 0; i < srv->nrunning; i++)
        worker_wake(&srv->workers[i]);
    if (old)
        cfg_unref(old);
}

static bool
str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* What a load asks the resolver: the addresses each backend name has now. */
static size_t
resolve_name(const void *ctx, const char *host, struct sockaddr_storage *out, size_t max)
{
    return resolver_addrs(ctx, host, out, max);
}

static void
load_opts(const struct server *srv, const struct cfg *prev, struct cfg_load_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->prev = prev;
    o->resolve = resolve_name;
    o->resolve_ctx = srv->resolver;
}

/* Hands the resolver the settings and names of the generation now running. */
static void
resolver_follow(struct server *srv, const struct cfg *cfg)
{
    char err[256];
    /* Without names nothing is asked, so no nameserver is needed (a container may have
     * none): the settings wait for a generation with names. */
    if (cfg->nnames > 0 && resolver_configure(srv->resolver, &cfg->resolvers, err, sizeof(err)) < 0)
        log_error("resolvers: %s; keeping the previous settings", err);
    const char **hosts = calloc(cfg->nnames ? cfg->nnames : 1, sizeof(*hosts));
    if (hosts == NULL) {
        log_error("out of memory for the backend names: they are not re-resolved");
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < cfg->nregions; i++)
        for (size_t k = 0; k < cfg->regions[i].nnames; k++)
            hosts[n++] = cfg->regions[i].names[k].host;
    resolver_sync(srv->resolver, hosts, n);
    free(hosts);
}

/* Closes the sockets `next` opened that `prev` does not share, after a refusal. */
static void
close_new_listeners(struct server *srv, struct cfg *next, const struct cfg *prev)
{
    for (size_t i = 0; i < next->nlisteners; i++) {
        bool shared = false;
        for (size_t j = 0; j < prev->nlisteners; j++)
            if (strcmp(prev->listeners[j].addr.text, next->listeners[i].addr.text) == 0)
                shared = true;
        if (!shared)
            close_fds(&next->listeners[i], srv->nworkers);
    }
}

/* Makes `next` (loaded, checked) the running generation in place of `prev`: its listeners,
 * access log, admin endpoint, ticket keys, region counters and backend health, then the
 * pointer swap. Returns 0, or -1 with the reason logged and `next` freed, `prev` running
 * as before. Takes `next`'s reference either way. */
static int
server_apply(struct server *srv, struct cfg *prev, struct cfg *next)
{
    if (open_listeners(srv, next, prev) < 0) {
        cfg_unref(next);
        return -1;
    }
    if (!str_eq(next->access_log_path, prev->access_log_path) && next->access_log_path &&
        access_log_open(next->access_log_path) < 0) {
        int e = errno;
        char note[512];
        log_error("reload refused: access log %s: %s%s", next->access_log_path, strerror(e),
                  privileges_note(e, note, sizeof(note)));
        goto refuse_listeners;
    }
    if (admin_reconfigure(&srv->admin, srv->base, srv, prev, next) < 0)
        goto refuse_listeners;
    if (tls_activate(next) < 0) {
        log_error("reload refused: cannot install session ticket keys");
        goto refuse_listeners;
    }
    if (region_stats_apply(srv, next, prev) < 0) {
        log_error("reload refused: out of memory for region counters");
        goto refuse_listeners;
    }
    /* Last, since it retires the health of backends `next` drops: nothing may fail
     * after it. */
    if (health_apply(srv->health, next) < 0) {
        log_error("reload refused: out of memory for health checks");
        goto refuse_listeners;
    }
    if (next->geo && next->geo != prev->geo)
        log_info("GeoIP database %s: %s", next->geoip_path, geo_describe(next->geo));
    log_set_level(next->log_level);
    publish(srv, next);
    resolver_follow(srv, next);
    return 0;

refuse_listeners:
    close_new_listeners(srv, next, prev);
    cfg_unref(next);
    return -1;
}

static void
server_reload(struct server *srv)
{
    char *errors = NULL;
    log_info("reloading configuration from %s", srv->cfg_path);
    notify_reloading(srv->generation);
    struct cfg *prev = server_current_cfg(srv);
    struct cfg_load_opts opts;
    load_opts(srv, prev, &opts);
    struct cfg *next = cfg_load_file_opts(srv->cfg_path, &opts, &errors);
    if (!next) {
        log_cfg_errors("reload refused", errors);
        log_error("reload refused: keeping configuration generation %u", srv->generation);
        notify_reload_failed(errors);
        free(errors);
        server_release_cfg(prev);
        srv->reloads_failed++;
        srv->last_reload_failed = true;
        return;
    }
    if (next->workers != prev->workers)
        log_warn("workers changed from %u to %u: takes effect on restart", prev->workers,
                 next->workers);
    if (!str_eq(next->privileges.user, prev->privileges.user) ||
        !str_eq(next->privileges.group, prev->privileges.group) ||
        next->privileges.run_as_root != prev->privileges.run_as_root) {
        char who[256];
        privileges_describe_self(who, sizeof(who));
        log_warn("user, group or run_as_root changed: takes effect on restart; meridian runs "
                 "as %s",
                 who);
    }
    if (server_apply(srv, prev, next) < 0) {
        log_error("reload refused: keeping configuration generation %u", srv->generation);
        notify_reload_failed(NULL);
        server_release_cfg(prev);
        srv->reloads_failed++;
        srv->last_reload_failed = true;
        return;
    }
    server_release_cfg(prev);
    log_info("configuration generation %u is live", srv->generation);
    notify_reloaded(next);
    srv->reloads_ok++;
    srv->last_reload_failed = false;
}

/* A backend name's addresses changed: the same configuration text again, with the new
 * addresses, as a new generation (the resolver calls this at most once per loop pass). A
 * reload in all but name: requests in flight finish on the generation they started on,
 * and backends that stay keep their health and pooled connections. Nothing is read from
 * files: certificates, CAs and the GeoIP database are the running generation's (only a
 * reload picks up files changed on disk), so it takes a millisecond or two. A failure
 * (out of memory) keeps the running generation and is tried again at the next change. */
/* Whether some name of `cfg` has addresses other than those `cfg` was built with. */
static bool
names_differ(const struct server *srv, const struct cfg *cfg)
{
    struct sockaddr_storage addrs[CFG_NAME_ADDRS_MAX];
    for (size_t i = 0; i < cfg->nregions; i++)
        for (size_t k = 0; k < cfg->regions[i].nnames; k++) {
            const struct cfg_backend_name *nm = &cfg->regions[i].names[k];
            size_t n = resolver_addrs(srv->resolver, nm->host, addrs, CFG_NAME_ADDRS_MAX);
            if (cfg_addrs_digest(addrs, n) != nm->answer_digest)
                return true;
        }
    return false;
}

static void
names_changed_cb(void *arg)
{
    struct server *srv = arg;
    if (!srv->serving || server_is_stopping(srv))
        return; /* start-up loads once every name is settled; a stop needs nothing new */
    struct cfg *prev = server_current_cfg(srv);
    /* A first answer equal to what the generation has, a name's failure (its set kept), or
     * a notice from start-up: nothing to build. */
    if (!names_differ(srv, prev)) {
        server_release_cfg(prev);
        return;
    }
    struct cfg_load_opts opts;
    load_opts(srv, prev, &opts);
    opts.reuse_files = true;
    char *errors = NULL;
    uint64_t t0 = clock_mono_us();
    struct cfg *next = cfg_load_again(prev, &opts, &errors);
    if (next == NULL) {
        log_cfg_errors("backend addresses changed, but the new generation failed", errors);
        free(errors);
    } else if (server_apply(srv, prev, next) == 0) {
        srv->dns_rebuilds++;
        log_info("configuration generation %u is live: backend addresses changed (built in "
                 "%.1f ms)",
                 srv->generation, (double)(clock_mono_us() - t0) / 1000.0);
        server_release_cfg(prev);
        return;
    }
    srv->dns_rebuilds_failed++;
    log_error("keeping configuration generation %u with the backend addresses it has",
              srv->generation);
    server_release_cfg(prev);
}

/* Start-up with backend names: wait, at most one query's full time, for each name's first
 * answer, so that the first requests find their backends; a name still unanswered then
 * stands for no backend until it is (the other backends serve meanwhile). Returns the
 * generation to start with: `cfg`, or a new one with the addresses. */
static void
settle_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(bool *)arg = true;
}

static struct cfg *
resolve_at_start(struct server *srv, struct cfg *cfg)
{
    if (cfg->nnames == 0) {
        resolver_follow(srv, cfg);
        return cfg;
    }
    resolver_follow(srv, cfg);
    bool late = false;
    const struct cfg_resolvers *rs = &cfg->resolvers;
    uint64_t wait_ms = (uint64_t)rs->timeout_ms * rs->attempts + 500;
    struct timeval tv = {(time_t)(wait_ms / 1000), (suseconds_t)(wait_ms % 1000) * 1000};
    struct event *deadline = evtimer_new(srv->base, settle_deadline_cb, &late);
    if (deadline == NULL || evtimer_add(deadline, &tv) < 0) {
        if (deadline)
            event_free(deadline);
        return cfg;
    }
    while (!late && !resolver_settled(srv->resolver))
        event_base_loop(srv->base, EVLOOP_ONCE);
    event_free(deadline);
    if (late)
        log_warn("backend names: not every name answered within %llu ms; starting without "
                 "the ones that did not, which are tried again",
                 (unsigned long long)wait_ms);
    struct cfg_load_opts opts;
    load_opts(srv, cfg, &opts);
    opts.reuse_files = true;
    char *errors = NULL;
    struct cfg *next = cfg_load_again(cfg, &opts, &errors);
    if (next == NULL) {
        log_cfg_errors("loading with the backend names' addresses failed", errors);
        free(errors);
        return cfg;
    }
    cfg_unref(cfg);
    return next;
}

/* While stopping: the main loop ends once every worker has drained and ended. */
static void
drain_watch_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *srv = arg;
    for (unsigned i = 0; i < srv->nrunning; i++)
        if (!worker_try_join(&srv->workers[i]))
            return;
    event_base_loopbreak(srv->base);
}

static void
handle_signal(struct server *srv, int sig)
{
    switch (sig) {
    case SIGHUP:
        if (!server_is_stopping(srv))
            server_reload(srv);
        break;
    case SIGUSR1: {
        struct cfg *cfg = server_current_cfg(srv);
        if (cfg->access_log_path) {
            char note[512];
            if (access_log_open(cfg->access_log_path) < 0) {
                int e = errno;
                log_error("reopening access log %s: %s%s", cfg->access_log_path, strerror(e),
                          privileges_note(e, note, sizeof(note)));
            } else {
                log_info("access log %s reopened", cfg->access_log_path);
            }
        }
        server_release_cfg(cfg);
        break;
    }
    default:
        if (server_is_stopping(srv)) {
            /* The workers end their loops now, as at the end of the grace period; the
             * drain watch joins them and the process exits as usual. */
            log_warn("second stop signal: not waiting any longer");
            atomic_store(&srv->hurry, true);
            for (unsigned i = 0; i < srv->nrunning; i++)
                worker_wake(&srv->workers[i]);
            break;
        }
        log_info("stopping: no new connections, letting requests in flight finish");
        notify_stopping();
        atomic_store(&srv->stopping, true);
        for (unsigned i = 0; i < srv->nrunning; i++)
            worker_wake(&srv->workers[i]);
        /* This loop runs on while the workers drain: the admin endpoint answers
         * (/healthz 503 "stopping", /status, /metrics) and a second signal is read. */
        if (srv->drain_watch == NULL) {
            struct timeval every = {0, 50 * 1000};
            srv->drain_watch = event_new(srv->base, -1, EV_PERSIST, drain_watch_cb, srv);
            if (srv->drain_watch == NULL || event_add(srv->drain_watch, &every) < 0)
                event_base_loopbreak(srv->base); /* then server_run() joins them */
        }
        break;
    }
}

static void
signal_fd_cb(evutil_socket_t fd, short what, void *arg)
{
    struct signalfd_siginfo info[8];
    ssize_t n;
    while ((n = read(fd, info, sizeof(info))) > 0)
        for (size_t i = 0; i < (size_t)n / sizeof(info[0]); i++)
            handle_signal(arg, (int)info[i].ssi_signo);
}

/* One sample of rate_limit's counters; the rates over the samples kept. */
static void
rate_limit_sample(struct server *srv)
{
    uint64_t admitted = 0, rejected = 0;
    for (unsigned i = 0; i < srv->nrunning; i++) {
        admitted += atomic_load_explicit(&srv->workers[i].stats.rl_admitted, memory_order_relaxed);
        rejected += atomic_load_explicit(&srv->workers[i].stats.rl_rejected, memory_order_relaxed);
    }
    unsigned at = srv->rl_next;
    srv->rl_admitted[at] = admitted;
    srv->rl_rejected[at] = rejected;
    srv->rl_next = (at + 1) % RL_SAMPLES;
    if (srv->rl_filled < RL_SAMPLES)
        srv->rl_filled++;
    unsigned oldest = (srv->rl_next + RL_SAMPLES - srv->rl_filled) % RL_SAMPLES;
    double span = (double)(srv->rl_filled - 1);
    atomic_store(&srv->rl_admitted_rate,
                 span > 0 ? (double)(admitted - srv->rl_admitted[oldest]) / span : 0.0);
    atomic_store(&srv->rl_rejected_rate,
                 span > 0 ? (double)(rejected - srv->rl_rejected[oldest]) / span : 0.0);
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    tls_ticket_tick(clock_mono_ms());
    rate_limit_sample(srv);
    /* TLS handshakes allocate and free tens of KB each, interleaved with the long-lived
     * SSL objects of other connections: the heap ends up with many free pages pinned
     * between live blocks. Hand those pages back (madvise) once a second if connections
     * came and went. Measured here: idle TLS connection RSS 17.7 KB -> see README. */
    uint64_t accepted = 0;
    for (unsigned i = 0; i < srv->nrunning; i++)
        accepted += atomic_load_explicit(&srv->workers[i].stats.accepted, memory_order_relaxed);
    if (accepted != srv->accepted_at_trim) {
        srv->accepted_at_trim = accepted;
        malloc_trim(0);
    }
}

static void
warn_unreadable_cb(void *arg, const char *key, const char *path, int line)
{
    const struct cfg *cfg = arg;
    if (access(path, R_OK) < 0 && errno == EACCES)
        log_warn("%s:%d: %s: %s is not readable by the user meridian now runs as: a reload "
                 "will be refused until it is",
                 cfg->path, line, key, path);
}

/* After giving up root: the files a reload reads again (and the access log SIGUSR1
 * reopens) are used as the new user from now on. Say at start which it cannot use, rather
 * than at the first reload or rotation. */
static void
warn_unreadable(const struct server *srv, struct cfg *cfg)
{
    if (access(srv->cfg_path, R_OK) < 0 && errno == EACCES)
        log_warn("%s is not readable by the user meridian now runs as: a reload will be "
                 "refused until it is",
                 srv->cfg_path);
    cfg_each_file(cfg, warn_unreadable_cb, cfg);
    if (cfg->access_log_path && strcmp(cfg->access_log_path, "-") != 0 &&
        access(cfg->access_log_path, W_OK) < 0 && errno == EACCES)
        log_warn("access log %s is not writable by the user meridian now runs as: SIGUSR1 "
                 "cannot reopen it (log rotation) until it is",
                 cfg->access_log_path);
}

static unsigned
cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static void
raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

void
server_view(struct server *srv, struct server_view *out)
{
    out->workers = srv->workers;
    out->nworkers = srv->nworkers;
    out->conns = server_conn_count(srv, &out->max_conns);
    out->reloads_ok = srv->reloads_ok;
    out->reloads_failed = srv->reloads_failed;
    out->last_reload_failed = srv->last_reload_failed;
    out->rl_admitted_per_s = atomic_load(&srv->rl_admitted_rate);
    out->rl_rejected_per_s = atomic_load(&srv->rl_rejected_rate);
    out->resolver = srv->resolver;
    out->dns_rebuilds = srv->dns_rebuilds;
    out->dns_rebuilds_failed = srv->dns_rebuilds_failed;
}

char *
server_status_json(struct server *srv)
{
    struct cfg *cfg = server_current_cfg(srv);
    struct status_buf b = {NULL, 0, 0, 0};
    unsigned max_conns, conns = server_conn_count(srv, &max_conns);
    status_printf(&b,
                  "{\"version\":\"%s\",\"pid\":%d,\"uptime_s\":%llu,\"generation\":%u,"
                  "\"reloads\":{\"ok\":%llu,\"failed\":%llu,\"last_failed\":%s},"
                  "\"stopping\":%s,\"connections\":%u,\"max_connections\":%u,\"workers\":[",
                  version_string(), (int)getpid(),
                  (unsigned long long)((clock_mono_ms() - srv->started_ms) / 1000), cfg->generation,
                  (unsigned long long)srv->reloads_ok, (unsigned long long)srv->reloads_failed,
                  srv->last_reload_failed ? "true" : "false",
                  server_is_stopping(srv) ? "true" : "false", conns, max_conns);
    uint64_t geo_errors = 0;
    for (unsigned i = 0; i < srv->nworkers; i++) {
        struct worker_stats *st = &srv->workers[i].stats;
        geo_errors += atomic_load(&st->geo_errors);
        status_printf(&b,
                      "%s{\"id\":%u,\"generation\":%u,\"connections\":%llu,\"accepted\":%llu,"
                      "\"requests\":%llu,\"responses_4xx\":%llu,\"responses_5xx\":%llu,"
                      "\"tls_handshakes_full\":%llu,\"tls_handshakes_resumed\":%llu}",
                      i ? "," : "", i, atomic_load(&st->generation),
                      (unsigned long long)atomic_load(&st->active_conns),
                      (unsigned long long)atomic_load(&st->accepted),
                      (unsigned long long)atomic_load(&st->requests),
                      (unsigned long long)atomic_load(&st->responses_4xx),
                      (unsigned long long)atomic_load(&st->responses_5xx),
                      (unsigned long long)atomic_load(&st->tls_full),
                      (unsigned long long)atomic_load(&st->tls_resumed));
    }
    status_printf(&b, "],\"listeners\":[");
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        status_printf(&b, "%s{\"name\":", i ? "," : "");
        status_json_str(&b, cfg->listeners[i].name);
        status_printf(&b, ",\"address\":");
        status_json_str(&b, cfg->listeners[i].addr.text);
        status_printf(&b, "}");
    }
    status_printf(&b, "],\"geoip\":{\"database\":");
    status_json_str(&b, cfg->geo ? cfg->geoip_path : NULL);
    status_printf(&b, ",\"description\":");
    status_json_str(&b, cfg->geo ? geo_describe(cfg->geo) : NULL);
    status_printf(&b, ",\"lookup_errors\":%llu},", (unsigned long long)geo_errors);
    struct resolver_totals dns;
    resolver_totals(srv->resolver, &dns);
    status_printf(&b,
                  "\"dns\":{\"names\":%zu,\"queries\":%llu,\"answers\":%llu,\"empty\":%llu,"
                  "\"failures\":%llu,\"generations\":%llu,\"generations_failed\":%llu},",
                  cfg->nnames, (unsigned long long)dns.queries, (unsigned long long)dns.answers,
                  (unsigned long long)dns.empty, (unsigned long long)dns.failures,
                  (unsigned long long)srv->dns_rebuilds,
                  (unsigned long long)srv->dns_rebuilds_failed);
    status_regions_json(&b, cfg, srv->nworkers, srv->resolver);
    status_printf(&b, ",");
    status_rate_limit_json(&b, cfg, srv->workers, srv->nworkers,
                           atomic_load(&srv->rl_admitted_rate),
                           atomic_load(&srv->rl_rejected_rate));
    status_printf(&b, "}\n");
    server_release_cfg(cfg);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

int
server_run(const char *cfg_path)
{
    struct server srv_storage;
    struct server *srv = &srv_storage;
    memset(srv, 0, sizeof(*srv));
    srv->cfg_path = cfg_path;
    srv->started_ms = clock_mono_ms();
    pthread_mutex_init(&srv->cfg_lock, NULL);
    int rc = 1;

    /* The process signals stay blocked in every thread, for the life of the process, and
     * are read from a signalfd by the main loop: no asynchronous handler, no EINTR in the
     * workers (they inherit the mask), and a signal that comes before the loop runs waits
     * in the kernel instead of being lost or fatal. (libevent's evsignal handler lost an
     * early SIGTERM under ThreadSanitizer, which defers asynchronous handlers.) */
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &block, NULL);
    srv->signal_fd = -1;

    char *errors = NULL;
    struct cfg *cfg = cfg_load_file(cfg_path, &errors);
    if (!cfg) {
        fputs(errors ? errors : "cannot load configuration\n", stderr);
        free(errors);
        return 1;
    }
    /* Whether to give root up, and to whom: decided before anything is bound, so that a
     * refusal (root without user:, a user we cannot become) leaves nothing half done. */
    struct privileges_plan plan;
    char why[1024];
    if (privileges_plan(cfg, &plan, why, sizeof(why)) < 0) {
        fprintf(stderr, "%s\n", why);
        cfg_unref(cfg);
        return 1;
    }
    log_set_level(cfg->log_level);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    srv->nworkers = cfg->workers ? cfg->workers : cpu_count();
    srv->workers = calloc(srv->nworkers, sizeof(*srv->workers));
    srv->base = event_base_new();
    srv->resolver = srv->base ? resolver_new(srv->base, names_changed_cb, srv) : NULL;
    if (!srv->workers || !srv->base || !srv->resolver) {
        log_error("out of memory at start");
        goto out_cfg;
    }
    cfg = resolve_at_start(srv, cfg);
    if (open_listeners(srv, cfg, NULL) < 0)
        goto out_cfg;
    if (cfg->access_log_path && access_log_open(cfg->access_log_path) < 0) {
        log_error("access log %s: %s", cfg->access_log_path, strerror(errno));
        goto out_cfg;
    }
    if (admin_reconfigure(&srv->admin, srv->base, srv, NULL, cfg) < 0)
        goto out_cfg;
    if (tls_activate(cfg) < 0) {
        log_error("cannot install session ticket keys");
        goto out_cfg;
    }
    srv->health = health_registry_new(srv->nworkers);
    if (!srv->health || region_stats_apply(srv, cfg, NULL) < 0 ||
        health_apply(srv->health, cfg) < 0) {
        log_error("out of memory at start");
        goto out_cfg;
    }
    if (cfg->geo)
        log_info("GeoIP database %s: %s", cfg->geoip_path, geo_describe(cfg->geo));
    /* Everything root was wanted for is done (listeners and the admin socket bound, the
     * access log, certificates, keys and the GeoIP database open): give it up now, while
     * the main thread is the only one. */
    if (privileges_apply(&plan, why, sizeof(why)) < 0) {
        log_error("%s", why);
        goto out_cfg;
    }
    if (plan.action == PRIVILEGES_DROP) {
        privileges_describe_self(why, sizeof(why));
        log_info("running as %s", why);
        warn_unreadable(srv, cfg);
    } else if (plan.action == PRIVILEGES_ROOT) {
        log_warn("running as root (run_as_root: true): a flaw anywhere in the proxy would be "
                 "root's; prefer user: and group:");
    }
    publish(srv, cfg);

    unsigned started = 0;
    for (; started < srv->nworkers; started++) {
        if (worker_init(&srv->workers[started], srv, started) < 0 ||
            worker_start(&srv->workers[started]) < 0) {
            log_error("cannot start worker %u: %s", started, strerror(errno));
            break;
        }
        srv->nrunning = started + 1;
    }
    if (started < srv->nworkers) {
        atomic_store(&srv->stopping, true);
        goto out_workers;
    }

    srv->signal_fd = signalfd(-1, &block, SFD_NONBLOCK | SFD_CLOEXEC);
    srv->signal_ev = srv->signal_fd < 0 ? NULL
                                        : event_new(srv->base, srv->signal_fd, EV_READ | EV_PERSIST,
                                                    signal_fd_cb, srv);
    if (!srv->signal_ev || event_add(srv->signal_ev, NULL) < 0) {
        log_error("cannot watch signals: %s", strerror(errno));
        atomic_store(&srv->stopping, true);
        goto out_workers;
    }
    srv->tick = event_new(srv->base, -1, EV_PERSIST, tick_cb, srv);
    struct timeval one_second = {1, 0};
    event_add(srv->tick, &one_second);

    srv->serving = true;
    log_info("meridian %s started: %u workers, %zu listeners, %zu regions", version_string(),
             srv->nworkers, cfg->nlisteners, cfg->nregions);
    for (size_t i = 0; i < cfg->nlisteners; i++)
        log_info("listening on %s (%s)", cfg->listeners[i].addr.text, cfg->listeners[i].name);
    notify_started(srv->base, cfg, srv->nworkers);

    event_base_dispatch(srv->base);
    rc = 0;

out_workers:
    notify_stopping(); /* once more when a signal began the stop: a no-op then */
    for (unsigned i = 0; i < started; i++)
        worker_wake(&srv->workers[i]);
    for (unsigned i = 0; i < started; i++)
        worker_join(&srv->workers[i]);
    for (unsigned i = 0; i < started; i++)
        worker_deinit(&srv->workers[i]);
    log_info("stopped");
    if (srv->signal_ev)
        event_free(srv->signal_ev);
    if (srv->signal_fd >= 0)
        close(srv->signal_fd);
    if (srv->tick)
        event_free(srv->tick);
    if (srv->drain_watch)
        event_free(srv->drain_watch);
    tls_ticket_shutdown();
    admin_free(srv->admin);
    resolver_free(srv->resolver);
    cfg_unref(srv->current);
    health_registry_free(srv->health);
    free(srv->workers);
    event_base_free(srv->base);
    pthread_mutex_destroy(&srv->cfg_lock);
    return rc;

out_cfg:
    resolver_free(srv->resolver);
    cfg_unref(cfg);
    health_registry_free(srv->health);
    free(srv->workers);
    if (srv->base)
        event_base_free(srv->base);
    return rc;
}
