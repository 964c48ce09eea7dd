/* SPDX-License-Identifier: MIT */
/* Routing as the admin endpoint shows it (see status.h). */
#include "status.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "cfg.h"
#include "clock.h"
#include "client_ip.h"
#include "geo.h"
#include "health.h"
#include "resolver.h"
#include "route.h"
#include "worker-t.h"

void
status_printf(struct status_buf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

void
status_json_str(struct status_buf *b, const char *s)
{
    if (s == NULL) {
        status_printf(b, "null");
        return;
    }
    status_printf(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            status_printf(b, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            status_printf(b, "\\u%04x", c);
        else
            status_printf(b, "%c", c);
    }
    status_printf(b, "\"");
}

/* What the admin side knows of a region's health: the shared health of checked
 * backends; unchecked ones (no health_check) count as up, since the workers' own
 * short-lived marks are theirs alone. Draining backends are left out, as the workers
 * leave them out (stream.c's region_health). */
static void
admin_region_health(const void *ctx, size_t region, struct route_health *out)
{
    const struct cfg *cfg = ctx;
    const struct cfg_region *r = &cfg->regions[region];
    out->up = out->unchecked = 0;
    out->total = (uint32_t)r->nserving;
    for (size_t b = 0; b < r->nbackends; b++) {
        const struct health_target *t = r->backends[b].health;
        if (cfg_backend_weight(&r->backends[b]) == 0)
            continue;
        enum health_state s = t ? health_state_of(t) : HEALTH_UP;
        if (s == HEALTH_UP)
            out->up++;
        else if (s == HEALTH_UNCHECKED)
            out->unchecked++;
    }
}

/* resolver_each's view of one name, found by host. */
struct name_lookup {
    const char *host;
    struct resolver_view view;
    bool found;
};

static void
name_lookup_cb(void *arg, const struct resolver_view *v)
{
    struct name_lookup *l = arg;
    if (!l->found && strcmp(v->host, l->host) == 0) {
        l->view = *v;
        l->found = true;
    }
}

static void
names_json(struct status_buf *b, const struct cfg_region *r, const struct resolver *res)
{
    uint64_t now = clock_mono_ms();
    status_printf(b, ",\"names\":[");
    for (size_t k = 0; k < r->nnames; k++) {
        const struct cfg_backend_name *nm = &r->names[k];
        struct name_lookup l = {nm->host, {0}, false};
        if (res != NULL)
            resolver_each(res, name_lookup_cb, &l);
        status_printf(b, "%s{\"name\":", k ? "," : "");
        status_json_str(b, nm->host);
        status_printf(b, ",\"port\":%u,\"backends\":%zu", (unsigned)nm->port, nm->naddrs);
        if (!l.found) {
            status_printf(b, ",\"state\":\"pending\"}");
            continue;
        }
        const struct resolver_view *v = &l.view;
        status_printf(b,
                      ",\"state\":\"%s\",\"source\":\"%s\",\"addresses\":%zu,\"ttl_s\":%u,"
                      "\"error\":",
                      resolver_state_name(v->state), v->from_hosts_file ? "hosts_file" : "dns",
                      v->naddrs, (unsigned)v->ttl_s);
        status_json_str(b, v->error);
        status_printf(b,
                      ",\"resolved_ago_ms\":%lld,\"changed_ago_ms\":%lld,\"next_in_ms\":%lld,"
                      "\"answers\":%llu,\"failures\":%llu}",
                      v->resolved_ms ? (long long)(now - v->resolved_ms) : -1LL,
                      v->changed_ms ? (long long)(now - v->changed_ms) : -1LL,
                      v->next_ms ? (long long)v->next_ms - (long long)now : -1LL,
                      (unsigned long long)v->answers, (unsigned long long)v->failures);
    }
    status_printf(b, "]");
}

void
status_regions_json(struct status_buf *b, struct cfg *cfg, unsigned nworkers,
                    const struct resolver *res)
{
    status_printf(b, "\"regions\":[");
    for (size_t i = 0; i < cfg->nregions; i++) {
        struct cfg_region *r = &cfg->regions[i];
        struct route_health h;
        admin_region_health(cfg, i, &h);
        unsigned long long requests = 0, fin = 0, fout = 0;
        for (unsigned w = 0; r->stats && w < nworkers; w++) {
            requests += atomic_load(&r->stats[w].requests);
            fin += atomic_load(&r->stats[w].failovers_in);
            fout += atomic_load(&r->stats[w].failovers_out);
        }
        status_printf(b, "%s{\"name\":", i ? "," : "");
        status_json_str(b, r->name);
        status_printf(b,
                      ",\"default\":%s,\"location\":{\"lat\":%.4f,\"lon\":%.4f},"
                      "\"countries\":[",
                      i == cfg->default_region ? "true" : "false", r->lat, r->lon);
        for (size_t c = 0; r->countries && r->countries[2 * c]; c++)
            status_printf(b, "%s\"%.2s\"", c ? "," : "", r->countries + 2 * c);
        status_printf(b,
                      "],\"balance\":\"%s\",\"health_check\":%s,\"healthy\":%u,"
                      "\"unchecked\":%u,\"total\":%u,\"requests\":%llu,"
                      "\"failovers_in\":%llu,\"failovers_out\":%llu,\"backends\":[",
                      r->balance == CFG_BALANCE_LEAST_OUTSTANDING ? "least_outstanding"
                                                                  : "round_robin",
                      r->health_check.enabled ? "true" : "false", h.up, h.unchecked, h.total,
                      requests, fin, fout);
        size_t shown = 0;
        /* A name without an address (unanswered, failing with nothing kept, or answered
         * with none) is shown as a backend, resolving; one whose addresses are all another
         * entry's backends already is not. */
        for (size_t k = 0; k < r->nnames; k++) {
            if (r->names[k].nanswer > 0)
                continue;
            status_printf(b, "%s{\"address\":", shown++ ? "," : "");
            status_json_str(b, r->names[k].text);
            status_printf(b, ",\"name\":");
            status_json_str(b, r->names[k].host);
            status_printf(b, ",\"weight\":%u,\"drain\":%s,\"state\":\"resolving\"}",
                          (unsigned)r->names[k].weight, r->names[k].drain ? "true" : "false");
        }
        for (size_t k = 0; k < r->nbackends; k++) {
            const struct cfg_backend *be = &r->backends[k];
            struct health_target *t = be->health;
            /* state: what the balancer makes of it (draining before any health);
             * health: what the checks say, which a draining backend still gets. */
            bool draining = cfg_backend_weight(be) == 0;
            status_printf(b, "%s{\"address\":", shown++ ? "," : "");
            status_json_str(b, be->addr.text);
            if (be->name != NULL) {
                status_printf(b, ",\"name\":");
                status_json_str(b, be->name->host);
            }
            status_printf(b, ",\"weight\":%u,\"drain\":%s", (unsigned)be->weight,
                          be->drain ? "true" : "false");
            const struct cfg_backend_tls *tls = cfg_backend_tls_of(r, be);
            status_printf(b, ",\"tls\":%s", tls->enabled ? "true" : "false");
            if (tls->enabled) {
                status_printf(b, ",\"tls_verify\":%s,\"sni\":", tls->verify ? "true" : "false");
                if (tls->sni != NULL)
                    status_json_str(b, tls->sni);
                else
                    status_printf(b, "null");
            }
            if (t == NULL) {
                status_printf(b, ",\"state\":\"%s\",\"health\":\"up\",\"checking\":false}",
                              draining ? "draining" : "up");
                continue;
            }
            struct health_view v;
            health_target_view(t, &v);
            status_printf(b,
                          ",\"state\":\"%s\",\"health\":\"%s\",\"checking\":true,"
                          "\"last_status\":%d,\"last_error\":",
                          draining ? "draining" : health_state_name(v.state),
                          health_state_name(v.state), v.last_status);
            status_json_str(b, v.last_error);
            status_printf(b,
                          ",\"last_check_ms\":%llu,\"last_change_ms\":%llu,\"check_ms\":%u,"
                          "\"checks\":%llu,\"check_failures\":%llu,"
                          "\"passive_failures\":%llu,\"transitions\":%llu}",
                          (unsigned long long)v.last_check_ms, (unsigned long long)v.last_change_ms,
                          v.check_ms, (unsigned long long)v.checks, (unsigned long long)v.failures,
                          (unsigned long long)v.passive_failures,
                          (unsigned long long)v.transitions);
        }
        status_printf(b, "]");
        names_json(b, r, res);
        status_printf(b, "}");
    }
    status_printf(b, "]");
}

char *
status_route_json(struct cfg *cfg, const char *ip, size_t iplen, int *http_status)
{
    struct status_buf b = {0};
    struct sockaddr_storage ss;
    if (client_ip_parse_addr(ip, iplen, &ss) < 0) {
        *http_status = 400;
        status_printf(&b, "{\"error\":\"expected /route?ip=ADDR with an IPv4 or IPv6 "
                          "address\"}\n");
        return b.oom ? (free(b.p), NULL) : b.p;
    }
    struct geo_info where;
    memset(&where, 0, sizeof(where));
    int rc = cfg->geo ? geo_lookup(cfg->geo, (const struct sockaddr *)&ss, &where) : 1;

    char text[64];
    snprintf(text, sizeof(text), "%.*s", (int)(iplen < 63 ? iplen : 63), ip);
    status_printf(&b, "{\"ip\":");
    status_json_str(&b, text);
    status_printf(&b,
                  ",\"database\":%s,\"lookup\":\"%s\",\"country\":", cfg->geo ? "true" : "false",
                  rc == 0   ? "found"
                  : rc == 1 ? "not found"
                            : "error");
    status_json_str(&b, where.country[0] ? where.country : NULL);
    status_printf(&b, ",\"continent\":");
    status_json_str(&b, where.continent[0] ? where.continent : NULL);
    if (where.has_coords)
        status_printf(&b, ",\"location\":{\"lat\":%.4f,\"lon\":%.4f}", (double)where.lat,
                      (double)where.lon);
    else
        status_printf(&b, ",\"location\":null");

    uint8_t order[ROUTE_MAX_REGIONS];
    route_rank(&cfg->route, &where, order);
    status_printf(&b, ",\"regions\":[");
    for (size_t k = 0; k < cfg->nregions; k++) {
        const struct cfg_region *r = &cfg->regions[order[k]];
        struct route_health h;
        admin_region_health(cfg, order[k], &h);
        status_printf(&b, "%s{\"name\":", k ? "," : "");
        status_json_str(&b, r->name);
        if (where.has_coords)
            status_printf(&b, ",\"distance_km\":%.0f",
                          route_distance_km(where.lat, where.lon, r->lat, r->lon));
        else
            status_printf(&b, ",\"distance_km\":null");
        bool listed = false;
        for (size_t c = 0; where.country[0] && r->countries && r->countries[2 * c]; c++)
            listed |= memcmp(r->countries + 2 * c, where.country, 2) == 0;
        status_printf(&b, ",\"country_listed\":%s,\"up\":%u,\"unchecked\":%u,\"total\":%u}",
                      listed ? "true" : "false", h.up, h.unchecked, h.total);
    }
    struct route_choice choice;
    int chosen = route_choose(&cfg->route, &where, 0, admin_region_health, cfg, &choice);
    status_printf(&b, "],\"nearest\":");
    status_json_str(&b, cfg->regions[order[0]].name);
    status_printf(&b, ",\"chosen\":");
    status_json_str(&b, chosen == 0 ? cfg->regions[choice.region].name : NULL);
    status_printf(&b, ",\"failed_over\":%s,\"spilling\":%s}\n",
                  chosen == 0 && choice.failed_over ? "true" : "false",
                  chosen == 0 && choice.spilled ? "true" : "false");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *http_status = 200;
    return b.p;
}

void
status_rate_limit_json(struct status_buf *b, const struct cfg *cfg, const struct worker *workers,
                       unsigned nworkers, double admitted_per_s, double rejected_per_s)
{
    static const char *const scopes[] = {"global", "region"};
    static const char *const modes[] = {"local", "open", "closed"};
    const struct cfg_rate_limit *rl = &cfg->rate_limit;
    if (!rl->enabled) {
        status_printf(b, "\"rate_limit\":null");
        return;
    }
    const struct cfg_rl_phase *ph = &rl->phases[rl->active];
    status_printf(b, "\"rate_limit\":{\"phase\":");
    status_json_str(b, ph->name);
    status_printf(b,
                  ",\"rps\":%.6g,\"burst\":%.6g,\"scope\":\"%s\",\"on_redis_failure\":\"%s\","
                  "\"redis\":{\"cluster\":%s,\"timeout_ms\":%u},\"live_nodes\":%u,"
                  "\"admitted_per_s_10s\":%.1f,\"rejected_per_s_10s\":%.1f,\"workers\":[",
                  ph->rps, ph->burst, scopes[rl->scope], modes[rl->on_redis_failure],
                  rl->redis.cluster ? "true" : "false", (unsigned)rl->redis.timeout_ms,
                  budget_live_nodes(), admitted_per_s, rejected_per_s);
    for (unsigned i = 0; i < nworkers; i++) {
        const struct worker_stats *st = &workers[i].stats;
        status_printf(b,
                      "%s{\"id\":%u,\"mode\":\"%s\",\"redis_connections\":%llu,"
                      "\"redis_servers\":%llu,\"admitted\":%llu,\"rejected\":%llu,"
                      "\"unavailable\":%llu,\"waited\":%llu,\"redis_commands\":%llu}",
                      i ? "," : "", i, atomic_load(&st->rl_degraded) ? "degraded" : "shared",
                      (unsigned long long)atomic_load(&st->rl_redis_connected),
                      (unsigned long long)atomic_load(&st->rl_redis_servers),
                      (unsigned long long)atomic_load(&st->rl_admitted),
                      (unsigned long long)atomic_load(&st->rl_rejected),
                      (unsigned long long)atomic_load(&st->rl_unavailable),
                      (unsigned long long)atomic_load(&st->rl_waited),
                      (unsigned long long)atomic_load(&st->rl_redis_calls));
    }
    status_printf(b, "]}");
}
