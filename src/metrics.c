/* SPDX-License-Identifier: MIT */
/* GET /metrics: the Prometheus text format (0.0.4), rendered on the admin thread from the
 * workers' relaxed counters, the published generation's region counters and backend
 * health, and /proc/self. Owns no state: every scrape sums afresh. See metrics.h for
 * where the counters live and why the admin thread may read them. */
#include "metrics.h"

#include <dirent.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "budget.h"
#include "cfg.h"
#include "health.h"
#include "resolver.h"
#include "server.h"
#include "status.h"
#include "version.h"
#include "worker-t.h"

static const char *const class_names[METRICS_CLASSES] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
static const char *const protocol_names[METRICS_PROTOCOLS] = {"http1.0", "http1.1", "h2"};

static uint64_t
load(const atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* # HELP and # TYPE: every family has both, once, before its samples. */
static void
family(struct status_buf *b, const char *name, const char *type, const char *help)
{
    status_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value in double quotes, with backslash, double quote and line feed escaped as
 * the format asks. */
static void
label_value(struct status_buf *b, const char *s)
{
    status_printf(b, "\"");
    for (const char *run = s;; s++) {
        if (*s != '\0' && *s != '\\' && *s != '"' && *s != '\n')
            continue;
        status_printf(b, "%.*s", (int)(s - run), run);
        if (*s == '\0')
            break;
        status_printf(b, "%s", *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : "\\n");
        run = s + 1;
    }
    status_printf(b, "\"");
}

/* A sample with no labels. */
static void
sample_u(struct status_buf *b, const char *name, uint64_t v)
{
    status_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

static void
sample_d(struct status_buf *b, const char *name, double v)
{
    status_printf(b, "%s %.17g\n", name, v);
}

/* name{region="..."} v */
static void
sample_region(struct status_buf *b, const char *name, const char *region, uint64_t v)
{
    status_printf(b, "%s{region=", name);
    label_value(b, region);
    status_printf(b, "} %llu\n", (unsigned long long)v);
}

/* ---- the process (the standard process_* names) ---- */

/* /proc/self/stat's CPU times, start time and memory. ProcSubset=pid (the systemd unit)
 * hides /proc/stat, so the boot time comes from the clocks instead. */
static void
render_process(struct status_buf *b)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold anything */
    unsigned long utime, stime, vsize;
    unsigned long long starttime;
    long rss;
    long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    if (p && tck > 0 && page > 0 &&
        sscanf(p + 1,
               /* state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt */
               " %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s"
               /* utime stime cutime cstime priority nice num_threads itrealvalue */
               " %lu %lu %*s %*s %*s %*s %*s %*s"
               /* starttime vsize rss */
               " %llu %lu %ld",
               &utime, &stime, &starttime, &vsize, &rss) == 5) {
        family(b, "process_cpu_seconds_total", "counter",
               "Total user and system CPU time spent in seconds.");
        sample_d(b, "process_cpu_seconds_total", (double)(utime + stime) / (double)tck);
        family(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        sample_u(b, "process_resident_memory_bytes", (uint64_t)rss * (uint64_t)page);
        family(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        sample_u(b, "process_virtual_memory_bytes", vsize);
        struct timespec real, boot;
        if (clock_gettime(CLOCK_REALTIME, &real) == 0 &&
            clock_gettime(CLOCK_BOOTTIME, &boot) == 0) {
            double booted =
                (double)(real.tv_sec - boot.tv_sec) + (double)(real.tv_nsec - boot.tv_nsec) / 1e9;
            family(b, "process_start_time_seconds", "gauge",
                   "Start time of the process since unix epoch in seconds.");
            status_printf(b, "process_start_time_seconds %.2f\n",
                          booted + (double)starttime / (double)tck);
        }
    }

    DIR *d = opendir("/proc/self/fd");
    if (d) {
        uint64_t fds = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
                fds++;
        closedir(d);
        family(b, "process_open_fds", "gauge", "Number of open file descriptors.");
        sample_u(b, "process_open_fds", fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        family(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        sample_u(b, "process_max_fds", rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : rl.rlim_cur);
    }
}

/* ---- requests, per region ---- */

/* One region's /metrics counters, all workers. */
struct region_sum {
    uint64_t responses[METRICS_CLASSES][METRICS_PROTOCOLS];
    uint64_t duration[METRICS_BUCKETS];
    uint64_t duration_us_sum;
    uint64_t failovers_in, failovers_out;
};

static void
region_sum(const struct cfg_region *r, unsigned nworkers, struct region_sum *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned w = 0; r->stats && w < nworkers; w++) {
        const struct cfg_region_stats *st = &r->stats[w];
        for (unsigned c = 0; c < METRICS_CLASSES; c++)
            for (unsigned p = 0; p < METRICS_PROTOCOLS; p++)
                out->responses[c][p] += load(&st->m.responses[c][p]);
        for (unsigned i = 0; i < METRICS_BUCKETS; i++)
            out->duration[i] += load(&st->m.duration[i]);
        out->duration_us_sum += load(&st->m.duration_us_sum);
        out->failovers_in += load(&st->failovers_in);
        out->failovers_out += load(&st->failovers_out);
    }
}

static void
render_requests(struct status_buf *b, const struct cfg *cfg, const struct region_sum *sums,
                const struct server_view *v)
{
    family(b, "meridian_requests_total", "counter",
           "Requests answered (proxied, or refused by Meridian once routed: 429, 502, 503, "
           "504, 499 when the client left), by region, status class and client protocol.");
    for (size_t i = 0; i < cfg->nregions; i++)
        for (unsigned c = 0; c < METRICS_CLASSES; c++)
            for (unsigned p = 0; p < METRICS_PROTOCOLS; p++) {
                status_printf(b, "meridian_requests_total{region=");
                label_value(b, cfg->regions[i].name);
                status_printf(b, ",code_class=\"%s\",protocol=\"%s\"} %llu\n", class_names[c],
                              protocol_names[p], (unsigned long long)sums[i].responses[c][p]);
            }

    family(b, "meridian_unrouted_responses_total", "counter",
           "Answers Meridian gave before a request had a region (malformed or oversized "
           "requests), by status class and client protocol.");
    for (unsigned c = 0; c < METRICS_CLASSES; c++)
        for (unsigned p = 0; p < METRICS_PROTOCOLS; p++) {
            uint64_t n = 0;
            for (unsigned w = 0; w < v->nworkers; w++)
                n += load(&v->workers[w].stats.unrouted.responses[c][p]);
            status_printf(b,
                          "meridian_unrouted_responses_total{code_class=\"%s\",protocol=\"%s\"} "
                          "%llu\n",
                          class_names[c], protocol_names[p], (unsigned long long)n);
        }

    static const uint32_t bounds[METRICS_BUCKETS - 1] = METRICS_BOUNDS_US;
    family(b, "meridian_request_duration_seconds", "histogram",
           "Time from a request's start to the end of its response, as the access log "
           "measures it, by region.");
    for (size_t i = 0; i < cfg->nregions; i++) {
        uint64_t cumulative = 0;
        for (unsigned k = 0; k < METRICS_BUCKETS; k++) {
            cumulative += sums[i].duration[k];
            status_printf(b, "meridian_request_duration_seconds_bucket{region=");
            label_value(b, cfg->regions[i].name);
            if (k < METRICS_BUCKETS - 1)
                status_printf(b, ",le=\"%g\"} %llu\n", bounds[k] / 1e6,
                              (unsigned long long)cumulative);
            else
                status_printf(b, ",le=\"+Inf\"} %llu\n", (unsigned long long)cumulative);
        }
        status_printf(b, "meridian_request_duration_seconds_sum{region=");
        label_value(b, cfg->regions[i].name);
        status_printf(b, "} %.6f\n", (double)sums[i].duration_us_sum / 1e6);
        sample_region(b, "meridian_request_duration_seconds_count", cfg->regions[i].name,
                      cumulative);
    }

    family(b, "meridian_failovers_in_total", "counter",
           "Requests served by this region whose nearest region was another.");
    for (size_t i = 0; i < cfg->nregions; i++)
        sample_region(b, "meridian_failovers_in_total", cfg->regions[i].name, sums[i].failovers_in);
    family(b, "meridian_failovers_out_total", "counter",
           "Requests whose nearest region was this one, served by another.");
    for (size_t i = 0; i < cfg->nregions; i++)
        sample_region(b, "meridian_failovers_out_total", cfg->regions[i].name,
                      sums[i].failovers_out);
}

/* ---- backends ---- */

static void
backend_labels(struct status_buf *b, const char *name, const struct cfg_region *r,
               const struct cfg_backend *be)
{
    status_printf(b, "%s{region=", name);
    label_value(b, r->name);
    status_printf(b, ",backend=");
    label_value(b, be->addr.text);
    status_printf(b, "} ");
}

static void
render_backends(struct status_buf *b, const struct cfg *cfg)
{
    /* One health view per checked backend, taken once: the families below are each
     * rendered in one piece, as the format asks. */
    size_t n = 0;
    for (size_t i = 0; i < cfg->nregions; i++)
        n += cfg->regions[i].nbackends;
    struct health_view *views = calloc(n ? n : 1, sizeof(*views));
    if (views == NULL) {
        b->oom = 1;
        return;
    }
    size_t at = 0;
    bool checked = false;
    for (size_t i = 0; i < cfg->nregions; i++)
        for (size_t k = 0; k < cfg->regions[i].nbackends; k++, at++) {
            struct health_target *t = cfg->regions[i].backends[k].health;
            if (t) {
                health_target_view(t, &views[at]);
                checked = true;
            } else {
                views[at].state = HEALTH_UP; /* never checked: /status says up */
            }
        }

    family(b, "meridian_backend_up", "gauge",
           "1 when the backend is up (or not health-checked), 0 when it is down or not "
           "checked yet.");
    at = 0;
    for (size_t i = 0; i < cfg->nregions; i++)
        for (size_t k = 0; k < cfg->regions[i].nbackends; k++, at++) {
            backend_labels(b, "meridian_backend_up", &cfg->regions[i],
                           &cfg->regions[i].backends[k]);
            status_printf(b, "%d\n", views[at].state == HEALTH_UP);
        }

    /* Draining is the operator's doing, not the backend's health: its own families, so
     * that meridian_backend_up (and the alerts on it) keeps meaning health. */
    family(b, "meridian_backend_weight", "gauge",
           "The backend's configured weight in its region's balancing (0..256).");
    for (size_t i = 0; i < cfg->nregions; i++)
        for (size_t k = 0; k < cfg->regions[i].nbackends; k++) {
            backend_labels(b, "meridian_backend_weight", &cfg->regions[i],
                           &cfg->regions[i].backends[k]);
            status_printf(b, "%u\n", (unsigned)cfg->regions[i].backends[k].weight);
        }
    family(b, "meridian_backend_draining", "gauge",
           "1 when the backend takes no new requests (drain: true or weight 0), else 0.");
    for (size_t i = 0; i < cfg->nregions; i++)
        for (size_t k = 0; k < cfg->regions[i].nbackends; k++) {
            backend_labels(b, "meridian_backend_draining", &cfg->regions[i],
                           &cfg->regions[i].backends[k]);
            status_printf(b, "%d\n", cfg_backend_weight(&cfg->regions[i].backends[k]) == 0);
        }

    static const struct {
        const char *name, *help;
        size_t off;
    } counters[] = {
        {"meridian_backend_health_checks_total", "Active health checks of the backend.",
         offsetof(struct health_view, checks)},
        {"meridian_backend_health_check_failures_total",
         "Active health checks of the backend that failed.",
         offsetof(struct health_view, failures)},
        {"meridian_backend_passive_failures_total",
         "Real requests that could not connect to the backend, were reset or timed out.",
         offsetof(struct health_view, passive_failures)},
        {"meridian_backend_transitions_total", "Health state changes of the backend.",
         offsetof(struct health_view, transitions)},
    };
    for (size_t c = 0; checked && c < sizeof(counters) / sizeof(counters[0]); c++) {
        family(b, counters[c].name, "counter", counters[c].help);
        at = 0;
        for (size_t i = 0; i < cfg->nregions; i++)
            for (size_t k = 0; k < cfg->regions[i].nbackends; k++, at++) {
                if (cfg->regions[i].backends[k].health == NULL)
                    continue;
                uint64_t val;
                memcpy(&val, (const char *)&views[at] + counters[c].off, sizeof(val));
                backend_labels(b, counters[c].name, &cfg->regions[i], &cfg->regions[i].backends[k]);
                status_printf(b, "%llu\n", (unsigned long long)val);
            }
    }
    free(views);
}

/* ---- per-worker counters, summed ---- */

/* The sum of one counter of struct worker_stats over the workers. */
static uint64_t
workers_sum(const struct server_view *v, size_t off)
{
    uint64_t n = 0;
    for (unsigned w = 0; w < v->nworkers; w++)
        n += load((const atomic_uint_fast64_t *)((const char *)&v->workers[w].stats + off));
    return n;
}

#define SUM(field) workers_sum(v, offsetof(struct worker_stats, field))

static void
counter(struct status_buf *b, const char *name, const char *help, uint64_t value)
{
    family(b, name, "counter", help);
    sample_u(b, name, value);
}

static void
gauge(struct status_buf *b, const char *name, const char *help, double value)
{
    family(b, name, "gauge", help);
    sample_d(b, name, value);
}

static void
render_rate_limit(struct status_buf *b, const struct cfg *cfg, const struct server_view *v)
{
    counter(b, "meridian_rate_limit_admitted_total", "Requests rate_limit admitted.",
            SUM(rl_admitted));
    counter(b, "meridian_rate_limit_rejected_total",
            "Requests rate_limit answered 429 (over the budget).", SUM(rl_rejected));
    counter(b, "meridian_rate_limit_unavailable_total",
            "Requests rate_limit answered 503 (Redis unreachable, on_redis_failure closed).",
            SUM(rl_unavailable));
    counter(b, "meridian_rate_limit_waited_total",
            "Requests that waited for a lease of tokens before their verdict.", SUM(rl_waited));
    counter(b, "meridian_rate_limit_redis_commands_total",
            "Lease and heartbeat commands sent to Redis.", SUM(rl_redis_calls));
    const struct cfg_rate_limit *rl = &cfg->rate_limit;
    if (!rl->enabled)
        return;
    const struct cfg_rl_phase *ph = &rl->phases[rl->active];
    family(b, "meridian_rate_limit_budget_rps", "gauge",
           "The active phase's request budget for the whole fleet, per second.");
    status_printf(b, "meridian_rate_limit_budget_rps{phase=");
    label_value(b, ph->name);
    status_printf(b, "} %.17g\n", ph->rps);
    gauge(b, "meridian_rate_limit_admitted_per_second",
          "Requests this node admitted per second, over the last 10 s.", v->rl_admitted_per_s);
    gauge(b, "meridian_rate_limit_rejected_per_second",
          "Requests this node answered 429 per second, over the last 10 s.", v->rl_rejected_per_s);
    family(b, "meridian_rate_limit_utilisation_ratio", "gauge",
           "This node's admissions per second over the last 10 s, as a share of the fleet's "
           "budget: summed over the fleet's nodes, the budget's utilisation.");
    status_printf(b, "meridian_rate_limit_utilisation_ratio{phase=");
    label_value(b, ph->name);
    status_printf(b, "} %.17g\n", ph->rps > 0 ? v->rl_admitted_per_s / ph->rps : 0.0);
    gauge(b, "meridian_rate_limit_live_nodes",
          "Nodes sharing the budget, as last heard from Redis.", budget_live_nodes());
    uint64_t degraded = 0;
    for (unsigned w = 0; w < v->nworkers; w++)
        degraded += load(&v->workers[w].stats.rl_degraded) != 0;
    gauge(b, "meridian_rate_limit_redis_degraded_workers",
          "Workers that cannot reach Redis and follow on_redis_failure.", (double)degraded);
    gauge(b, "meridian_rate_limit_redis_connections", "Connections to Redis up, all workers.",
          (double)SUM(rl_redis_connected));
}

/* Backend names: each name's state (one per region entry), the resolver's totals, and the
 * generations a change of addresses made. */
struct name_states {
    unsigned count[RESOLVER_EMPTY + 1];
};

static void
name_state_cb(void *arg, const struct resolver_view *v)
{
    struct name_states *ns = arg;
    ns->count[v->state]++;
}

static void
render_dns(struct status_buf *b, const struct server_view *v)
{
    struct name_states ns = {{0}};
    struct resolver_totals t = {0};
    if (v->resolver != NULL) {
        resolver_each(v->resolver, name_state_cb, &ns);
        resolver_totals(v->resolver, &t);
    }
    family(b, "meridian_dns_names", "gauge",
           "Backend names by resolver state: pending (no answer yet), ok, failed (the last "
           "good addresses kept), empty (no such name or no address: no backend).");
    for (enum resolver_state s = RESOLVER_PENDING; s <= RESOLVER_EMPTY; s++)
        status_printf(b, "meridian_dns_names{state=\"%s\"} %u\n", resolver_state_name(s),
                      ns.count[s]);
    counter(b, "meridian_dns_queries_total",
            "DNS queries sent for backend names (one per address family asked).", t.queries);
    family(b, "meridian_dns_resolutions_total", "counter",
           "Resolutions of backend names by result: ok (addresses), empty (no such name or no "
           "address), failed (timeout, refusal, no nameserver: the last good set kept).");
    status_printf(b, "meridian_dns_resolutions_total{result=\"ok\"} %llu\n",
                  (unsigned long long)t.answers);
    status_printf(b, "meridian_dns_resolutions_total{result=\"empty\"} %llu\n",
                  (unsigned long long)t.empty);
    status_printf(b, "meridian_dns_resolutions_total{result=\"failed\"} %llu\n",
                  (unsigned long long)t.failures);
    family(b, "meridian_dns_generations_total", "counter",
           "Configuration generations built because backend addresses changed: ok (live) or "
           "failed (the running one kept).");
    status_printf(b, "meridian_dns_generations_total{result=\"ok\"} %llu\n",
                  (unsigned long long)v->dns_rebuilds);
    status_printf(b, "meridian_dns_generations_total{result=\"failed\"} %llu\n",
                  (unsigned long long)v->dns_rebuilds_failed);
}

char *
metrics_render(struct server *srv)
{
    struct status_buf b = {NULL, 0, 0, 0};
    struct server_view sv;
    const struct server_view *v = &sv;
    server_view(srv, &sv);
    /* Streams first, with acquire: the counters read after it hold at least what the
     * streams that ended before it counted (see metrics_dec). */
    uint64_t streams = 0;
    for (unsigned w = 0; w < v->nworkers; w++)
        streams += atomic_load_explicit(&v->workers[w].stats.streams, memory_order_acquire);
    struct cfg *cfg = server_current_cfg(srv);
    struct region_sum *sums = calloc(cfg->nregions ? cfg->nregions : 1, sizeof(*sums));
    if (sums == NULL) {
        server_release_cfg(cfg);
        return NULL;
    }
    for (size_t i = 0; i < cfg->nregions; i++)
        region_sum(&cfg->regions[i], v->nworkers, &sums[i]);

    family(&b, "meridian_build_info", "gauge", "Always 1; the version in a label.");
    status_printf(&b, "meridian_build_info{version=");
    label_value(&b, version_string());
    status_printf(&b, "} 1\n");
    gauge(&b, "meridian_workers", "Worker threads (one event loop each).", v->nworkers);
    gauge(&b, "meridian_config_generation",
          "The configuration generation being served: 1 at start, +1 per reload that went live.",
          cfg->generation);
    family(&b, "meridian_config_reloads_total", "counter",
           "Reloads (SIGHUP) by result: ok (went live) or failed (refused; the running "
           "generation stays).");
    status_printf(&b, "meridian_config_reloads_total{result=\"ok\"} %llu\n",
                  (unsigned long long)v->reloads_ok);
    status_printf(&b, "meridian_config_reloads_total{result=\"failed\"} %llu\n",
                  (unsigned long long)v->reloads_failed);
    gauge(&b, "meridian_config_last_reload_successful",
          "0 when the last reload was refused, else 1.", !v->last_reload_failed);

    gauge(&b, "meridian_client_connections", "Client connections open.", v->conns);
    gauge(&b, "meridian_client_connections_limit",
          "limits.max_connections: client connections allowed, all workers together.",
          v->max_conns);
    counter(&b, "meridian_client_connections_accepted_total", "Client connections accepted.",
            SUM(accepted));
    gauge(&b, "meridian_streams", "Requests in flight (streams), all client protocols.",
          (double)streams);
    family(&b, "meridian_tls_handshakes_total", "counter",
           "TLS handshakes completed with clients, full or resumed (ticket or session cache).");
    status_printf(&b, "meridian_tls_handshakes_total{kind=\"full\"} %llu\n",
                  (unsigned long long)SUM(tls_full));
    status_printf(&b, "meridian_tls_handshakes_total{kind=\"resumed\"} %llu\n",
                  (unsigned long long)SUM(tls_resumed));

    render_requests(&b, cfg, sums, v);
    render_backends(&b, cfg);

    counter(&b, "meridian_upstream_connects_total",
            "Connections to backends attempted (failed ones included).", SUM(up_connects));
    counter(&b, "meridian_upstream_reuses_total",
            "Requests sent on an idle keep-alive connection to a backend.", SUM(up_reuses));
    counter(&b, "meridian_upstream_connect_failures_total",
            "Connections to backends that failed (refused, unreachable, timed out).",
            SUM(up_connect_failures));
    counter(&b, "meridian_upstream_retries_total",
            "Requests tried again after a backend failed them before any response byte "
            "(another backend or region, or a fresh connection after a stale one).",
            SUM(up_retries));
    family(&b, "meridian_upstream_tls_handshakes_total", "counter",
           "TLS handshakes with backends, full or resumed (a session of an earlier "
           "connection to the same backend, kept per worker).");
    status_printf(&b, "meridian_upstream_tls_handshakes_total{kind=\"full\"} %llu\n",
                  (unsigned long long)SUM(up_tls_full));
    status_printf(&b, "meridian_upstream_tls_handshakes_total{kind=\"resumed\"} %llu\n",
                  (unsigned long long)SUM(up_tls_resumed));
    counter(&b, "meridian_upstream_tls_failures_total",
            "TLS handshakes with backends that failed: certificate not verified (wrong CA or "
            "name), protocol error, closed by the backend, or not done by upstream_connect.",
            SUM(up_tls_failures));

    family(&b, "meridian_geoip_lookups_total", "counter",
           "GeoIP database lookups by result: found, not_found (not in the database), error "
           "(corrupt data).");
    status_printf(&b, "meridian_geoip_lookups_total{result=\"found\"} %llu\n",
                  (unsigned long long)SUM(geo_found));
    status_printf(&b, "meridian_geoip_lookups_total{result=\"not_found\"} %llu\n",
                  (unsigned long long)SUM(geo_not_found));
    status_printf(&b, "meridian_geoip_lookups_total{result=\"error\"} %llu\n",
                  (unsigned long long)SUM(geo_errors));

    render_dns(&b, v);
    render_rate_limit(&b, cfg, v);
    render_process(&b);

    free(sums);
    server_release_cfg(cfg);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
