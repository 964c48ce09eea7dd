/* SPDX-License-Identifier: MIT */
/* One proxied request/response: picks the backend, writes the HTTP/1.1 request upstream,
 * parses the response and relays it to whichever client protocol asked, with bounded
 * buffers and backpressure both ways. Knows nothing of client sockets. */
#include "stream.h"

#include <errno.h>
#include <stdarg.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "client_ip.h"
#include "clock.h"
#include "geo.h"
#include "geo_cache.h"
#include "hdr.h"
#include "health.h"
#include "writer.h"
#include "lb.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "route.h"
#include "route_places.h"
#include "sock.h"
#include "upstream.h"
#include "worker.h"

#define STREAM_FREE_MAX 1024
/* Room kept in up_out when the stream frames the request body itself: a chunk's size line
 * and CRLFs, and the last chunk "0\r\n\r\n". */
#define CHUNK_OVERHEAD 24

/* Status codes that are ours rather than a backend's, for the access log. */
#define STATUS_CLIENT_CLOSED 499

enum flow {
    FLOW_MORE = 0, /* carry on */
    FLOW_WAIT = 1, /* blocked: wait for an event */
    FLOW_GONE = 2, /* the stream is freed: touch nothing */
};

static enum flow stream_process_response(struct stream *s);
static struct upstream_pool *stream_pool(const struct stream *s);

/* A log line about a request says which request, from whom, to which backend, then
 * what happened. */
static void stream_log_msg(enum cfg_log_level level, const struct stream *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
stream_log_msg(enum cfg_log_level level, const struct stream *s, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    log_msg(level, "request %s from %s to %s: %s", s->reqid, s->client_ip,
            stream_pool(s)->addr.text, what);
}
static enum flow stream_flush_upstream(struct stream *s);
static void stream_fail(struct stream *s, int status);

struct stream *
stream_new(struct worker *w, const struct stream_client_ops *ops, void *client)
{
    struct stream *s = w->stream_free;
    if (s) {
        w->stream_free = s->next_free;
        w->nfree_streams--;
    } else {
        s = malloc(sizeof(*s));
        if (!s)
            return NULL;
    }
    memset(s, 0, offsetof(struct stream, client_ip));
    s->client_ip[0] = '\0';
    s->reqid[0] = '\0';
    s->w = w;
    s->ops = ops;
    s->client = client;
    s->snap = worker_snapshot_use(w);
    s->t_start_us = clock_mono_us();
    s->retryable = true;
    metrics_inc(&w->stats.streams);
    return s;
}

void
stream_free(struct stream *s)
{
    struct worker *w = s->w;
    budget_cancel(&s->admission); /* a lease that comes later finds nothing */
    buf_drop(&w->bufs, &s->up_out);
    buf_drop(&w->bufs, &s->up_in);
    free(s->log_target);
    s->log_target = NULL;
    free(s->resp_trailers);
    s->resp_trailers = NULL;
    s->resp_trailers_len = 0;
    snapshot_release(s->snap);
    metrics_dec(&w->stats.streams);
    if (w->nfree_streams < STREAM_FREE_MAX) {
        s->next_free = w->stream_free;
        w->stream_free = s;
        w->nfree_streams++;
    } else {
        free(s);
    }
}

void
stream_worker_deinit(struct worker *w)
{
    while (w->stream_free) {
        struct stream *s = w->stream_free;
        w->stream_free = s->next_free;
        free(s);
    }
    w->nfree_streams = 0;
}

/* ---- request head towards the backend ---- */

static void
put_str(struct writer *o, const char *s)
{
    writer_put(o, s, strlen(s));
}

static void
put_u64(struct writer *o, uint64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    writer_put(o, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* Serialise the request for the backend: origin-form, HTTP/1.1, hop-by-hop headers
 * removed, X-Forwarded-* and X-Request-Id set, framing restated. Returns bytes written,
 * or 0 if it does not fit. */
static bool
is_named(struct span name, const char *ours, size_t len)
{
    return ours && name.len == len && strncasecmp(name.ptr, ours, len) == 0;
}

bool
stream_header_is_ours(const struct cfg *cfg, struct span name)
{
    const struct cfg_routing *rt = &cfg->routing;
    return is_named(name, rt->country_header,
                    rt->country_header ? strlen(rt->country_header) : 0) ||
           is_named(name, rt->region_header, rt->region_header ? strlen(rt->region_header) : 0);
}

static size_t
write_request_head(struct stream *s, const struct stream_request *req, char *dst, size_t room)
{
    struct writer o = {dst, dst + room, false};
    const struct cfg_routing *rt = &s->snap->cfg->routing;
    size_t country_len = rt->country_header ? strlen(rt->country_header) : 0;
    size_t region_len = rt->region_header ? strlen(rt->region_header) : 0;
    bool has_conn_tokens = req->flags & H1_F_HAS_CONN_TOKENS;
    bool have_xff = false;

    WRITER_SPAN(&o, req->method);
    WRITER_LIT(&o, " ");
    if (req->path.len && req->path.ptr[0] == '?')
        WRITER_LIT(&o, "/"); /* absolute-form "http://host?q" has an empty path */
    WRITER_SPAN(&o, req->path);
    WRITER_LIT(&o, " HTTP/1.1\r\nHost: ");
    WRITER_SPAN(&o, req->authority);
    WRITER_LIT(&o, "\r\n");

    for (size_t i = 0; i < req->num_headers; i++) {
        const struct h1_header *h = &req->headers[i];
        switch (hdr_lookup(h->name)) {
        case HDR_OTHER:
            if (has_conn_tokens && hdr_named_by_connection(h->name, req->headers, req->num_headers))
                continue;
            if (is_named(h->name, rt->country_header, country_len) ||
                is_named(h->name, rt->region_header, region_len))
                continue;
            WRITER_SPAN(&o, h->name);
            WRITER_LIT(&o, ": ");
            WRITER_SPAN(&o, h->value);
            WRITER_LIT(&o, "\r\n");
            break;
        case HDR_X_FORWARDED_FOR:
            have_xff = true;
            break;
        default:
            /* Hop-by-hop, restated below, or ours to set. */
            break;
        }
    }

    WRITER_LIT(&o, "X-Forwarded-For: ");
    if (have_xff) {
        for (size_t i = 0; i < req->num_headers; i++) {
            const struct h1_header *h = &req->headers[i];
            if (hdr_lookup(h->name) == HDR_X_FORWARDED_FOR && h->value.len) {
                WRITER_SPAN(&o, h->value);
                WRITER_LIT(&o, ", ");
            }
        }
    }
    put_str(&o, req->client_ip);
    WRITER_LIT(&o, "\r\nX-Forwarded-Proto: ");
    put_str(&o, req->proto);
    WRITER_LIT(&o, "\r\nX-Forwarded-Host: ");
    WRITER_SPAN(&o, req->authority);
    WRITER_LIT(&o, "\r\nX-Request-Id: ");
    put_str(&o, s->reqid);
    WRITER_LIT(&o, "\r\n");
    if (rt->country_header && s->country[0]) {
        put_str(&o, rt->country_header);
        WRITER_LIT(&o, ": ");
        writer_put(&o, s->country, 2);
        WRITER_LIT(&o, "\r\n");
    }
    if (rt->region_header) {
        put_str(&o, rt->region_header);
        WRITER_LIT(&o, ": ");
        put_str(&o, s->snap->cfg->regions[s->region].name);
        WRITER_LIT(&o, "\r\n");
    }
    if (req->body == H1_BODY_LENGTH) {
        WRITER_LIT(&o, "Content-Length: ");
        put_u64(&o, req->content_length);
        WRITER_LIT(&o, "\r\n");
    } else if (req->body == H1_BODY_CHUNKED || req->encode_chunked) {
        WRITER_LIT(&o, "Transfer-Encoding: chunked\r\n");
    }
    if (s->websocket)
        WRITER_LIT(&o, "Connection: upgrade\r\nUpgrade: websocket\r\n");
    WRITER_LIT(&o, "\r\n");
    return o.overflow ? 0 : (size_t)(o.p - dst);
}

static void
pick_request_id(struct stream *s, const struct stream_request *req)
{
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct h1_header *h = &req->headers[i];
        if (hdr_lookup(h->name) == HDR_X_REQUEST_ID && reqid_is_acceptable(h->value)) {
            memcpy(s->reqid, h->value.ptr, h->value.len);
            s->reqid[h->value.len] = '\0';
            return;
        }
    }
    reqid_generate(&s->w->reqids, s->reqid);
}

/* ---- choosing and reaching a backend ---- */

/* What the balancer and the region choice see of one region's backends: this worker's
 * pools (a failed connect marks one down for a while) and, where health checks run, the
 * shared health of each backend. */
struct region_view {
    const struct cfg_region *cr;
    const struct snapshot_region *sr;
    uint64_t now;
};

static uint64_t
pool_down_until(const void *ctx, size_t i)
{
    const struct region_view *v = ctx;
    const struct health_target *t = v->cr->backends[i].health;
    if (t) {
        enum health_state hs = health_state_of(t);
        if (hs == HEALTH_DOWN)
            return UINT64_MAX;
        if (hs == HEALTH_UNCHECKED && v->sr->pools[i]->down_until_ms <= v->now)
            return v->now + 1; /* after any backend known to be up */
    }
    return v->sr->pools[i]->down_until_ms;
}

static uint32_t
pool_load(const void *ctx, size_t i)
{
    const struct region_view *v = ctx;
    return v->sr->pools[i]->nbusy;
}

static uint32_t
pool_weight(const void *ctx, size_t i)
{
    const struct region_view *v = ctx;
    return cfg_backend_weight(&v->cr->backends[i]);
}

/* Health of region `region` for route_choose(). A backend without health checks counts
 * as up unless this worker saw it fail lately; then it is doubtful (counted with the
 * unchecked ones: tried when nothing better is up, as before checks existed). A draining
 * backend (weight 0) is not counted at all: it takes nothing new, so a region with only
 * those has nothing to offer and is passed over like one whose backends are all down,
 * while the rest's share (for spilling) is of the backends that do serve. */
struct route_view {
    const struct snapshot *snap;
    uint64_t now;
    uint16_t skip; /* regions already failed for this request: seen as all down */
};

static void
region_health(const void *ctx, size_t region, struct route_health *out)
{
    const struct route_view *v = ctx;
    const struct cfg_region *cr = &v->snap->cfg->regions[region];
    const struct snapshot_region *sr = &v->snap->regions[region];
    uint64_t now = v->now;
    out->up = out->unchecked = 0;
    out->total = (uint32_t)cr->nserving;
    if (v->skip & (1u << region))
        return;
    for (size_t b = 0; b < cr->nbackends; b++) {
        const struct health_target *t = cr->backends[b].health;
        if (cfg_backend_weight(&cr->backends[b]) == 0)
            continue;
        enum health_state hs = t                                    ? health_state_of(t)
                               : sr->pools[b]->down_until_ms <= now ? HEALTH_UP
                                                                    : HEALTH_UNCHECKED;
        if (hs == HEALTH_UP)
            out->up++;
        else if (hs == HEALTH_UNCHECKED)
            out->unchecked++;
    }
}

static struct health_target *
stream_health(const struct stream *s)
{
    return s->snap->cfg->regions[s->region].backends[s->backend].health;
}

/* The backend failed a real request (refused, reset, silent): this worker avoids it for
 * a while, and the shared health counts it (passive check). */
static void
stream_backend_failed(struct stream *s)
{
    upstream_pool_failed(stream_pool(s));
    health_report_failure(stream_health(s));
}

/* The backend broke HTTP (a head that cannot be read or is too large, framing that does not
 * add up, a close in the middle of a response): the client gets a 502, or a cut response
 * once the head went out, the connection is never reused, and it counts against the
 * backend's health as a failed connect does (passive checks), since a backend that
 * answers garbage serves nobody. */
static void
stream_backend_broke(struct stream *s)
{
    health_report_failure(stream_health(s));
    stream_fail(s, 502);
}

static struct upstream_pool *
stream_pool(const struct stream *s)
{
    return s->snap->regions[s->region].pools[s->backend];
}

static bool stream_reroute(struct stream *s);

/* After the backend in use failed: where to try next. Once per region, another backend
 * of it that this worker has not seen fail (returns true, *exclude = the failed one);
 * else the next region in the client's order (true, *exclude = LB_NONE); else nowhere
 * (false). Each region is left at most once, so a request makes at most two attempts per
 * region. */
static bool
stream_next_try(struct stream *s, size_t *exclude)
{
    const struct snapshot_region *r = &s->snap->regions[s->region];
    struct region_view view = {&s->snap->cfg->regions[s->region], r, clock_mono_ms()};
    for (size_t i = 0; !s->retried_here && i < r->npools; i++) {
        if (i != s->backend && pool_weight(&view, i) > 0 && pool_down_until(&view, i) <= view.now) {
            s->retried_here = true;
            *exclude = s->backend;
            return true;
        }
    }
    *exclude = LB_NONE;
    return stream_reroute(s);
}

/* Attach a connection to the backend chosen by the balancer, skipping `exclude` and any
 * backend of weight 0 (draining). Returns 0, or an HTTP status when no backend could even
 * be tried. */
static int
stream_connect(struct stream *s, size_t exclude)
{
    for (;;) {
        struct snapshot_region *r = &s->snap->regions[s->region];
        const struct cfg_region *cr = &s->snap->cfg->regions[s->region];
        struct region_view view = {cr, r, clock_mono_ms()};
        size_t i;
        if (cr->balance == CFG_BALANCE_LEAST_OUTSTANDING && cr->schedule != NULL)
            i = lb_least_outstanding_scheduled(&r->rr_cursor, cr->schedule, cr->nschedule, view.now,
                                               exclude, pool_down_until, pool_load, pool_weight,
                                               &view);
        else if (cr->balance == CFG_BALANCE_LEAST_OUTSTANDING)
            i = lb_least_outstanding(&r->rr_cursor, r->npools, view.now, exclude, pool_down_until,
                                     pool_load, pool_weight, &view);
        else if (cr->schedule == NULL && cr->nserving == cr->nbackends)
            i = lb_round_robin(&r->rr_cursor, r->npools, view.now, exclude, pool_down_until, &view);
        else
            i = lb_weighted_round_robin(&r->rr_cursor, cr->schedule, cr->nschedule, view.now,
                                        exclude, pool_down_until, &view);
        if (i == LB_NONE)
            return 502;
        s->backend = i;
        struct upstream_pool *pool = r->pools[i];
        int rc = upstream_acquire(pool, s, &s->uc);
        if (rc == 0)
            break;
        log_warn("connect to %s failed: %s", pool->addr.text, strerror(-rc));
        if (rc == -EMFILE || rc == -ENFILE || rc == -ENOMEM)
            return 503;
        stream_backend_failed(s);
        if (!stream_next_try(s, &exclude))
            return 502;
        metrics_inc(&s->w->stats.up_retries);
    }
    struct upstream_conn *uc = s->uc;
    s->out_sent = 0;
    s->t_upstream_us = clock_mono_us();
    if (uc->connecting) {
        upstream_write_on(uc, s->snap->tv_upstream_connect);
    } else {
        upstream_read_on(uc, s->snap->tv_upstream_response);
    }
    return 0;
}

/* Drop the upstream connection after a failure. */
static void
stream_detach(struct stream *s, bool reusable)
{
    if (s->uc) {
        struct upstream_conn *uc = s->uc;
        s->uc = NULL;
        upstream_release(uc, reusable);
    }
}

/* The connection broke before any response byte. Try again where that is safe: a connect
 * that failed (once, on another backend), or a reused keep-alive connection the backend
 * had closed under us (on a fresh connection). Returns true if a retry is under way. */
static bool
stream_retry(struct stream *s, bool connect_failed)
{
    if (s->resp_state != STREAM_RESP_HEAD || buf_len(&s->up_in) != 0)
        return false;
    if (!s->retryable)
        return false;
    bool stale = s->uc && s->uc->reused && !connect_failed;
    size_t exclude = LB_NONE;
    if (!stale) {
        stream_backend_failed(s);
        if (!stream_next_try(s, &exclude))
            return false;
    }
    stream_detach(s, false);
    /* Everything sent is still in up_out: start again from its first byte. */
    s->out_sent = 0;
    /* A stale connection says nothing against the backend: the balancer may pick it
     * again, and another idle connection or a fresh one serves. */
    if (stream_connect(s, exclude) != 0)
        return false; /* could not even start: reported as the original failure */
    metrics_inc(&s->w->stats.up_retries);
    if (!s->uc->connecting)
        stream_flush_upstream(s);
    return true;
}

/* ---- writing upstream ---- */

/* Write what up_out holds. Returns FLOW_MORE when all is written, FLOW_WAIT when the
 * socket is full, FLOW_GONE when the stream failed and is freed. */
static enum flow
stream_flush_upstream(struct stream *s)
{
    struct upstream_conn *uc = s->uc;
    if (!uc || uc->connecting)
        return FLOW_WAIT;
    for (;;) {
        uint32_t pending = buf_len(&s->up_out) - s->out_sent;
        if (pending == 0)
            break;
        ssize_t n = upstream_send(uc, buf_data(&s->up_out) + s->out_sent, pending);
        if (n < 0) {
            if (errno == EAGAIN) {
                /* A backend that takes no bytes: upstream_response, or in a tunnel the
                 * tunnel's own idle limit. */
                upstream_write_on(uc, s->resp_state == STREAM_RESP_TUNNEL
                                          ? s->snap->tv_tunnel
                                          : s->snap->tv_upstream_response);
                return FLOW_WAIT;
            }
            int err = errno;
            if (stream_retry(s, false))
                return FLOW_WAIT;
            stream_log_msg(CFG_LOG_INFO, s, "write failed: %s", strerror(err));
            stream_fail(s, 502);
            return FLOW_GONE;
        }
        if (s->retryable)
            s->out_sent += (uint32_t)n;
        else
            buf_consume(&s->up_out, (uint32_t)n);
    }
    upstream_write_off(uc);
    if (!s->retryable)
        buf_release_if_empty(&s->w->bufs, &s->up_out);
    if (s->client_paused) {
        s->client_paused = false;
        s->ops->request_resume(s->client);
    }
    return FLOW_MORE;
}

/* Forget the bytes kept for a retry: from now on the request cannot be replayed. */
static void
stream_commit_sent(struct stream *s)
{
    if (s->out_sent) {
        buf_consume(&s->up_out, s->out_sent);
        s->out_sent = 0;
    }
    s->retryable = false;
}

/* ---- who the client is, where, and which region serves it ---- */

/* The per-request steps before a backend is chosen, in order: the client's address (the
 * peer, or what a trusted proxy says), its place (a trusted CDN's headers, else the GeoIP
 * database through the worker's cache), and the region (nearest healthy). Fills
 * s->client_ip, s->country, s->region, s->failed_over. Returns 0, or -1 when no region
 * has a backend to try. */
static void stream_set_region(struct stream *s, size_t region);

static int
stream_route(struct stream *s, const struct stream_request *req, const struct cfg *cfg)
{
    struct worker *w = s->w;
    const struct client_ip_cfg *ci = req->client_ip_cfg ? req->client_ip_cfg : &cfg->client_ip;
    const struct sockaddr *client = req->client_addr;
    struct sockaddr_storage resolved;
    /* client_ip_resolve() checks the peer's trust itself; the CDN's location headers
     * need it asked separately only when no forwarding header said who the client is. */
    bool trusted = false;
    if (ci->nnets &&
        client_ip_resolve(ci, req->client_addr, req->headers, req->num_headers, &resolved) >= 0) {
        trusted = true;
        client = (const struct sockaddr *)&resolved;
        sock_ip_text(client, s->client_ip, sizeof(s->client_ip));
    } else {
        trusted =
            ci->use_cdn_location && client_ip_is_trusted(ci->nets, ci->nnets, req->client_addr);
        size_t iplen = strnlen(req->client_ip, sizeof(s->client_ip) - 1);
        memcpy(s->client_ip, req->client_ip, iplen);
        s->client_ip[iplen] = '\0';
    }

    /* The client's place, then its order of regions: an indexed IPv4 client's place comes
     * with its order made at load (route_places.h); any other is ranked here. */
    struct geo_info where = {.has_coords = false};
    bool placed = trusted && ci->use_cdn_location &&
                  client_ip_cdn_location(req->headers, req->num_headers, &where);
    bool ranked = false;
    if (!placed && cfg->geo) {
        uint32_t place;
        int found = cfg->places.nplaces ? geo_lookup_place(cfg->geo, client, &place) : 2;
        if (found == 0) {
            const struct route_place *p = &cfg->places.places[place];
            where.country[0] = p->country[0];
            where.country[1] = p->country[1];
            memcpy(s->order, route_place_order(&cfg->places, place), sizeof(s->order));
            ranked = true;
        } else if (found == 2) {
            found = geo_cache_lookup(&w->geo_cache, cfg->geo, cfg->generation, client, &where);
        }
        if (found < 0)
            atomic_fetch_add_explicit(&w->stats.geo_errors, 1, memory_order_relaxed);
        else
            metrics_inc(found == 0 ? &w->stats.geo_found : &w->stats.geo_not_found);
    }
    memcpy(s->country, where.country, sizeof(s->country));
    if (!ranked)
        route_rank(&cfg->route, &where, s->order);

    struct route_view view = {s->snap, clock_mono_ms(), 0};
    struct route_choice choice;
    if (route_choose_in_order(&cfg->route, s->order, worker_random(w), region_health, &view,
                              &choice) < 0) {
        s->region = choice.nearest; /* for the log line: where it would have gone */
        return -1;
    }
    s->nearest = choice.nearest;
    stream_set_region(s, choice.region);
    return 0;
}

/* A counter only this worker writes: no locked add needed, only a store the admin
 * thread may read whole. */
#define STAT_INC(counter)                                                                          \
    atomic_store_explicit(&(counter), atomic_load_explicit(&(counter), memory_order_relaxed) + 1,  \
                          memory_order_relaxed)

/* Serve from `region` (the first choice, or a failover), counted. */
static void
stream_set_region(struct stream *s, size_t region)
{
    struct cfg_region *regions = s->snap->cfg->regions;
    unsigned me = s->w->id;
    bool was_failed_over = s->failed_over;
    s->region = region;
    s->failed_over = region != s->nearest;
    s->retried_here = false;
    STAT_INC(regions[region].stats[me].requests);
    if (s->failed_over) {
        STAT_INC(regions[region].stats[me].failovers_in);
        if (!was_failed_over)
            STAT_INC(regions[s->nearest].stats[me].failovers_out);
    }
}

/* Every backend of the region in use failed this request: on to the next region in the
 * client's order that has one to try (route_choose() with the failed regions skipped).
 * Returns false when there is none. */
static bool
stream_reroute(struct stream *s)
{
    s->regions_tried |= (uint16_t)(1u << s->region);
    const struct cfg *cfg = s->snap->cfg;
    struct route_view view = {s->snap, clock_mono_ms(), s->regions_tried};
    struct route_choice choice;
    if (route_choose_in_order(&cfg->route, s->order, worker_random(s->w), region_health, &view,
                              &choice) < 0)
        return false;
    stream_log_msg(CFG_LOG_INFO, s, "every backend of region %s failed; trying region %s",
                   cfg->regions[s->region].name, cfg->regions[choice.region].name);
    /* It is not served there after all: counted where it is. */
    atomic_uint_fast64_t *left = &s->snap->cfg->regions[s->region].stats[s->w->id].requests;
    atomic_store_explicit(left, atomic_load_explicit(left, memory_order_relaxed) - 1,
                          memory_order_relaxed);
    stream_set_region(s, choice.region);
    return true;
}

/* ---- starting ---- */

static int stream_begin(struct stream *s, const struct stream_request *req, const struct cfg *cfg);
static void stream_log(struct stream *s, int status);

int
stream_start(struct stream *s, const struct stream_request *req)
{
    const struct cfg *cfg = s->snap->cfg;

    s->method = req->method_id;
    s->head_request = req->method_id == H1_METHOD_HEAD;
    s->websocket = (req->flags & (H1_F_UPGRADE_WEBSOCKET | H1_F_CONN_UPGRADE)) ==
                       (H1_F_UPGRADE_WEBSOCKET | H1_F_CONN_UPGRADE) &&
                   req->method_id == H1_METHOD_GET;
    s->encode_chunked = req->encode_chunked;
    s->req_state =
        req->body == H1_BODY_NONE && !req->encode_chunked ? STREAM_REQ_DONE : STREAM_REQ_BODY;
    s->protocol = req->protocol;
    s->tls = req->tls;
    pick_request_id(s, req);
    if (cfg->access_log_path) {
        size_t n = req->method.len + 1 + req->path.len;
        s->log_target = malloc(n + 1);
        if (s->log_target) {
            memcpy(s->log_target, req->method.ptr, req->method.len);
            s->log_target[req->method.len] = ' ';
            memcpy(s->log_target + req->method.len + 1, req->path.ptr, req->path.len);
            s->log_target[n] = '\0';
        }
    }

    int rc = stream_begin(s, req, cfg);
    if (rc != 0)
        stream_log(s, rc); /* with the client, country and region found */
    return rc;
}

static enum flow stream_finish(struct stream *s, bool upstream_reusable);

/* Over budget: 429 with when to come back and the policy, from us (the request never
 * reaches a backend), through the same ops as a backend's answer. */
static void
stream_reply_over_budget(struct stream *s)
{
    static const char body[] = "429 Too Many Requests: over the service's request budget\n";
    struct budget_refusal why;
    budget_refusal(s->w->budget, s->region, &why);
    char retry[12], policy[96], ratelimit[96], length[12];
    int rn = snprintf(retry, sizeof(retry), "%u", why.retry_after_s);
    size_t pn = rl_format_policy(policy, sizeof(policy), why.policy, why.rps);
    size_t qn = rl_format_ratelimit(ratelimit, sizeof(ratelimit), why.policy, 0, why.retry_after_s);
    int ln = snprintf(length, sizeof(length), "%zu", sizeof(body) - 1);
    struct h1_header fields[] = {
        {{"Content-Type", 12}, {"text/plain", 10}}, {{"Content-Length", 14}, {length, (size_t)ln}},
        {{"Retry-After", 11}, {retry, (size_t)rn}}, {{"RateLimit-Policy", 16}, {policy, pn}},
        {{"RateLimit", 9}, {ratelimit, qn}},
    };
    struct h1_response resp = {
        .minor_version = 1,
        .status = 429,
        .headers = fields,
        .num_headers = pn && qn ? 5 : 3,
        .body = H1_BODY_LENGTH,
        .content_length = sizeof(body) - 1,
    };
    bool raw_chunked = false;
    s->status = 429;
    s->resp_body = H1_BODY_LENGTH;
    if (s->ops->response_head(s->client, s, &resp, &raw_chunked) < 0) {
        stream_abort(s, STATUS_CLIENT_CLOSED);
        return;
    }
    s->resp_state = STREAM_RESP_BODY;
    uint32_t room = s->ops->body_room(s->client);
    if (room != STREAM_ROOM_FAILED && room >= sizeof(body) - 1 && !s->head_request &&
        s->ops->response_body(s->client, body, sizeof(body) - 1) < 0) {
        stream_abort(s, STATUS_CLIENT_CLOSED);
        return;
    }
    s->bytes_sent = s->head_request ? 0 : sizeof(body) - 1;
    stream_finish(s, false);
}

/* Admitted: pick a backend and send. Returns 0, or the status to answer with. */
static int
stream_proceed(struct stream *s)
{
    atomic_fetch_add_explicit(&s->w->stats.requests, 1, memory_order_relaxed);
    int rc = stream_connect(s, LB_NONE);
    if (rc != 0)
        return rc;
    stream_flush_upstream(s); /* may end the stream: the caller checks its own state */
    return 0;
}

/* A parked request hears from the budget. */
static void
stream_admitted(struct budget_wait *wt, enum budget_verdict v)
{
    struct stream *s = (struct stream *)((char *)wt - offsetof(struct stream, admission));
    int rc = 503;
    if (v == BUDGET_OVER) {
        stream_reply_over_budget(s);
        return;
    }
    if (v == BUDGET_ADMIT && (rc = stream_proceed(s)) == 0)
        return;
    stream_fail(s, rc);
}

/* stream_start() once the request is described: route, serialise, admit, connect. */
static int
stream_begin(struct stream *s, const struct stream_request *req, const struct cfg *cfg)
{
    struct worker *w = s->w;
    if (stream_route(s, req, cfg) < 0)
        return 503; /* no region has a backend to try: answered with Retry-After */
    if (buf_take(&w->bufs, &s->up_out) < 0)
        return 503;
    size_t n = write_request_head(s, req, buf_tail(&s->up_out), buf_room(&s->up_out));
    if (n == 0)
        return 431; /* our additions pushed it past the buffer */
    s->up_out.end += (uint32_t)n;

    if (w->budget) {
        /* After the head is copied: a request that waits no longer needs the client's
         * buffer, and its body (if any) gathers in up_out meanwhile. */
        s->admission.done = stream_admitted;
        switch (budget_admit(w->budget, s->region, &s->admission)) {
        case BUDGET_ADMIT:
            break;
        case BUDGET_WAIT:
            return 0;
        case BUDGET_OVER:
            stream_reply_over_budget(s);
            return 0;
        case BUDGET_UNAVAILABLE:
            return 503;
        }
    }
    return stream_proceed(s);
}

/* ---- the request body ---- */

uint32_t
stream_request_room(struct stream *s)
{
    return stream_request_room_for(s, 1);
}

uint32_t
stream_request_room_for(struct stream *s, uint32_t need)
{
    if (!s->up_out.mem && buf_take(&s->w->bufs, &s->up_out) < 0)
        return 0;
    uint32_t room = buf_room(&s->up_out);
    if (s->retryable && (room < s->up_out.cap / 4 || room < need + CHUNK_OVERHEAD) && s->uc &&
        !s->uc->connecting) {
        /* Keeping the request for a replay would stall the body (or the trailers, which
         * must go in one piece): give the replay up. */
        stream_commit_sent(s);
        room = buf_room(&s->up_out);
    }
    if (s->encode_chunked && s->resp_state != STREAM_RESP_TUNNEL)
        room = room > CHUNK_OVERHEAD ? room - CHUNK_OVERHEAD : 0;
    if (room < need)
        s->client_paused = true;
    return room;
}

void
stream_request_body(struct stream *s, const char *p, uint32_t n)
{
    if (s->encode_chunked && s->resp_state != STREAM_RESP_TUNNEL) {
        /* "<hex size>\r\n<data>\r\n"; stream_request_room() kept room for the framing
         * and for the last chunk. */
        char size[16];
        int len = 0;
        for (uint32_t v = n; v; v >>= 4)
            len++;
        for (int i = len - 1, k = 0; i >= 0; i--, k++)
            size[k] = "0123456789abcdef"[(n >> (4 * i)) & 0xf];
        buf_append(&s->up_out, size, (uint32_t)len);
        buf_append(&s->up_out, "\r\n", 2);
        buf_append(&s->up_out, p, n);
        buf_append(&s->up_out, "\r\n", 2);
    } else {
        if (s->resp_state == STREAM_RESP_TUNNEL)
            s->tunnel_seen_ms = clock_mono_ms();
        buf_append(&s->up_out, p, n);
    }
    stream_flush_upstream(s);
}

void
stream_request_end(struct stream *s, const char *trailers, uint32_t len)
{
    s->req_state = STREAM_REQ_DONE;
    if (s->encode_chunked) {
        if (!s->up_out.mem && buf_take(&s->w->bufs, &s->up_out) < 0) {
            stream_fail(s, 503);
            return;
        }
        /* The last chunk's room was kept back; the caller made room for the trailers. */
        buf_room(&s->up_out);
        buf_append(&s->up_out, "0\r\n", 3);
        if (trailers)
            buf_append(&s->up_out, trailers, len);
        buf_append(&s->up_out, "\r\n", 2);
        stream_flush_upstream(s);
    }
}

/* ---- the response ---- */

static void
stream_log(struct stream *s, int status)
{
    struct worker *w = s->w;
    const struct cfg *cfg = s->snap->cfg;
    if (status >= 500)
        atomic_fetch_add_explicit(&w->stats.responses_5xx, 1, memory_order_relaxed);
    else if (status >= 400)
        atomic_fetch_add_explicit(&w->stats.responses_4xx, 1, memory_order_relaxed);
    uint64_t now = clock_mono_us();
    metrics_record(&cfg->regions[s->region].stats[w->id].m, status, s->protocol,
                   now - s->t_start_us);
    if (!cfg->access_log_path)
        return;
    struct access_log_entry e = {
        .client_ip = s->client_ip,
        .request = s->log_target,
        .protocol = s->protocol,
        .tls = s->tls,
        .status = status,
        .bytes = s->bytes_sent,
        .duration_us = now - s->t_start_us,
        .region = cfg->regions[s->region].name,
        .country = s->country[0] ? s->country : NULL,
        .failover = s->failed_over,
        .backend = s->t_upstream_us ? stream_pool(s)->addr.text : NULL,
        .upstream_us = s->t_head_us ? (int64_t)(s->t_head_us - s->t_upstream_us) : -1,
        .request_id = s->reqid,
    };
    worker_access_log(w, &e);
}

void
stream_log_local(struct worker *w, const char *client_ip, const char *request, const char *protocol,
                 int status, uint64_t start_us)
{
    if (status >= 500)
        atomic_fetch_add_explicit(&w->stats.responses_5xx, 1, memory_order_relaxed);
    else if (status >= 400)
        atomic_fetch_add_explicit(&w->stats.responses_4xx, 1, memory_order_relaxed);
    metrics_count_response(w->stats.unrouted.responses, status, protocol);
    if (!w->snap->cfg->access_log_path)
        return;
    char id[REQID_LEN + 1];
    reqid_generate(&w->reqids, id);
    struct access_log_entry e = {
        .client_ip = client_ip,
        .request = request,
        .protocol = protocol,
        .status = status,
        .duration_us = clock_mono_us() - start_us,
        .upstream_us = -1,
        .request_id = id,
    };
    worker_access_log(w, &e);
}

/* The exchange failed: tell the client (an error page, or a cut if the head went out),
 * drop the upstream side, log, free. */
static void
stream_fail(struct stream *s, int status)
{
    bool head_sent = s->resp_state != STREAM_RESP_HEAD;
    stream_detach(s, false);
    stream_log(s, head_sent ? s->status : status);
    s->ops->response_error(s->client, head_sent ? 0 : status);
    stream_free(s);
}

void
stream_abort(struct stream *s, int status)
{
    stream_detach(s, false);
    stream_log(s, s->resp_state == STREAM_RESP_HEAD ? status : s->status);
    stream_free(s);
}

/* The response is complete. */
static enum flow
stream_finish(struct stream *s, bool upstream_reusable)
{
    bool request_done = s->req_state == STREAM_REQ_DONE;
    s->resp_state = STREAM_RESP_DONE;
    stream_detach(s, upstream_reusable && request_done && buf_len(&s->up_in) == 0 &&
                         buf_len(&s->up_out) == s->out_sent);
    stream_log(s, s->status);
    s->ops->response_end(s->client, !request_done);
    stream_free(s);
    return FLOW_GONE;
}

static bool
response_keeps_alive(const struct h1_response *resp)
{
    if (resp->body == H1_BODY_CLOSE || (resp->flags & H1_F_CONN_CLOSE))
        return false;
    return resp->minor_version >= 1 || (resp->flags & H1_F_CONN_KEEPALIVE);
}

/* Parse the response head in up_in. */
static enum flow
stream_response_head(struct stream *s)
{
    struct worker *w = s->w;
    struct h1_limits limits = {s->up_in.cap, w->headers_cap};
    struct h1_response resp;
    int r = h1_parse_response(buf_data(&s->up_in), buf_len(&s->up_in), &limits, s->method,
                              w->headers, &resp);
    if (r == H1_PARTIAL) {
        if (buf_room(&s->up_in) == 0) {
            stream_log_msg(CFG_LOG_WARN, s, "response head exceeds %u bytes", s->up_in.cap);
            stream_backend_broke(s);
            return FLOW_GONE;
        }
        return FLOW_WAIT;
    }
    if (r == H1_INVALID) {
        stream_log_msg(CFG_LOG_WARN, s, "invalid response head");
        stream_backend_broke(s);
        return FLOW_GONE;
    }
    if (!s->t_head_us) {
        s->t_head_us = clock_mono_us();
        health_report_success(stream_health(s));
    }
    stream_commit_sent(s);

    bool raw_chunked = false;
    if (resp.status < 200 && resp.status != 101) {
        /* Interim (100, 103): pass on, then the real head follows. */
        if (s->ops->response_head(s->client, s, &resp, &raw_chunked) < 0) {
            stream_abort(s, STATUS_CLIENT_CLOSED);
            return FLOW_GONE;
        }
        buf_consume(&s->up_in, (uint32_t)r);
        return FLOW_MORE;
    }
    if (resp.status == 101 && !s->websocket) {
        stream_log_msg(CFG_LOG_WARN, s, "101 Switching Protocols without an upgrade request");
        stream_backend_broke(s);
        return FLOW_GONE;
    }
    s->status = resp.status;
    s->resp_body = resp.body;
    s->resp_remaining = resp.content_length;
    s->up_keepalive = response_keeps_alive(&resp);
    if (s->ops->response_head(s->client, s, &resp, &raw_chunked) < 0) {
        stream_abort(s, STATUS_CLIENT_CLOSED);
        return FLOW_GONE;
    }
    s->raw_chunked = raw_chunked;
    buf_consume(&s->up_in, (uint32_t)r);
    if (resp.status == 101) {
        s->resp_state = STREAM_RESP_TUNNEL;
        s->req_state = STREAM_REQ_BODY; /* the client's bytes flow on */
        s->tunnel_seen_ms = clock_mono_ms();
        upstream_read_on(s->uc, s->snap->tv_tunnel);
        return FLOW_MORE;
    }
    if (resp.body == H1_BODY_CHUNKED)
        h1_chunked_init(&s->resp_chunked, s->up_in.cap);
    s->resp_state = STREAM_RESP_BODY;
    if (resp.body == H1_BODY_NONE || (resp.body == H1_BODY_LENGTH && resp.content_length == 0))
        return stream_finish(s, s->up_keepalive);
    return FLOW_MORE;
}

/* Trailer section bytes of a chunked response being decoded for the client; the parser
 * bounds them (max_trailer_bytes). */
static int
keep_trailer_bytes(struct stream *s, const char *p, uint32_t n)
{
    char *grown = realloc(s->resp_trailers, s->resp_trailers_len + n);
    if (!grown)
        return -1;
    memcpy(grown + s->resp_trailers_len, p, n);
    s->resp_trailers = grown;
    s->resp_trailers_len += n;
    return 0;
}

/* The kept trailer section, already validated by the parser ("name:OWS value OWS CRLF"
 * lines, then CRLF), as fields for the client. */
static int
send_trailers(struct stream *s)
{
    struct h1_header *fields = s->w->headers; /* the response head is done with it */
    size_t n = 0, cap = s->w->headers_cap;
    const char *p = s->resp_trailers, *end = p + s->resp_trailers_len;
    while (p < end && *p != '\r' && n < cap) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (!eol || !colon || colon > eol)
            break;
        const char *v = colon + 1, *ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        fields[n].name = (struct span){p, (size_t)(colon - p)};
        fields[n].value = (struct span){v, (size_t)(ve - v)};
        n++;
        p = eol + 2;
    }
    return n ? s->ops->response_trailers(s->client, fields, n) : 0;
}

/* Relay body bytes from up_in to the client, as much as it takes. */
static enum flow
stream_response_body(struct stream *s)
{
    for (;;) {
        uint32_t avail = buf_len(&s->up_in);
        if (avail == 0)
            return FLOW_WAIT;
        uint32_t room = s->ops->body_room(s->client);
        if (room == STREAM_ROOM_FAILED) {
            stream_log_msg(CFG_LOG_ERROR, s, "out of memory for the client's buffer");
            stream_fail(s, 0);
            return FLOW_GONE;
        }
        if (room == 0) {
            /* Until stream_client_drained(). read_off is cheap when already off, and a
             * read armed again meanwhile would spin on a readable socket. */
            s->upstream_paused = true;
            if (s->uc)
                upstream_read_off(s->uc);
            return FLOW_WAIT;
        }
        uint32_t n = avail < room ? avail : room;
        const char *p = buf_data(&s->up_in);
        uint32_t consumed = n;
        bool done = false;

        switch (s->resp_body) {
        case H1_BODY_LENGTH:
            if (n > s->resp_remaining)
                n = consumed = (uint32_t)s->resp_remaining;
            s->resp_remaining -= n;
            done = s->resp_remaining == 0;
            break;
        case H1_BODY_CHUNKED: {
            struct span data;
            bool trailers = s->resp_chunked.in_trailers;
            ssize_t c = h1_chunked_feed(&s->resp_chunked, p, n, &data);
            if (c < 0) {
                stream_log_msg(CFG_LOG_WARN, s, "bad chunked framing in the response");
                stream_backend_broke(s);
                return FLOW_GONE;
            }
            consumed = (uint32_t)c;
            /* (A section that is only the final CRLF is not worth keeping.) */
            if (trailers && !s->raw_chunked && s->ops->response_trailers &&
                !(s->resp_trailers_len == 0 && s->resp_chunked.done && consumed == 2) &&
                keep_trailer_bytes(s, p, consumed) < 0) {
                stream_fail(s, 0);
                return FLOW_GONE;
            }
            if (!s->raw_chunked) {
                p = data.ptr;
                n = (uint32_t)data.len;
            } else {
                n = consumed;
            }
            done = s->resp_chunked.done;
            if (consumed == 0 && !done)
                return FLOW_WAIT;
            break;
        }
        default: /* CLOSE, and tunnel bytes */
            break;
        }
        if (n && s->ops->response_body(s->client, p, n) < 0) {
            stream_abort(s, STATUS_CLIENT_CLOSED);
            return FLOW_GONE;
        }
        s->bytes_sent += n;
        buf_consume(&s->up_in, consumed);
        if (done && s->resp_trailers_len && send_trailers(s) < 0) {
            stream_abort(s, STATUS_CLIENT_CLOSED);
            return FLOW_GONE;
        }
        if (done)
            return stream_finish(s, s->up_keepalive);
    }
}

static enum flow
stream_process_response(struct stream *s)
{
    for (;;) {
        enum flow f;
        switch (s->resp_state) {
        case STREAM_RESP_HEAD:
            f = stream_response_head(s);
            break;
        case STREAM_RESP_BODY:
        case STREAM_RESP_TUNNEL:
            return stream_response_body(s);
        default:
            return FLOW_WAIT;
        }
        if (f != FLOW_MORE)
            return f;
    }
}

/* ---- upstream events ---- */

void
stream_upstream_connected(struct stream *s, int err, const char *why)
{
    if (err) {
        stream_log_msg(CFG_LOG_WARN, s, "connect failed: %s", why ? why : strerror(err));
        if (stream_retry(s, true))
            return;
        stream_fail(s, 502);
        return;
    }
    upstream_write_off(s->uc);
    upstream_read_on(s->uc, s->snap->tv_upstream_response);
    stream_flush_upstream(s);
}

void
stream_upstream_writable(struct stream *s)
{
    stream_flush_upstream(s);
}

void
stream_upstream_timeout(struct stream *s)
{
    if (s->uc && s->uc->connecting) {
        /* A backend that took the connection and not the handshake failed both: the
         * connect (the handshake is part of it) and TLS (so that the TLS counter tells an
         * operator which backends fail there, as HAProxy's L6TOUT does). */
        bool in_tls = s->uc->handshaking;
        stream_log_msg(CFG_LOG_WARN, s,
                       in_tls ? "connect timed out in the TLS handshake" : "connect timed out");
        metrics_inc(&s->w->stats.up_connect_failures);
        if (in_tls)
            metrics_inc(&s->w->stats.up_tls_failures);
        if (stream_retry(s, true))
            return;
        stream_fail(s, 504);
        return;
    }
    if (s->resp_state == STREAM_RESP_TUNNEL) {
        struct timeval left;
        if (stream_tunnel_time_left(s, &left)) {
            /* The client kept the tunnel busy. While the client is full, reading stays
             * off: its own write timer (client_idle) governs then. */
            if (!s->upstream_paused)
                upstream_read_on(s->uc, &left);
            return;
        }
        stream_fail(s, 0);
        return;
    }
    /* A backend that took every byte of the request it was given, sent nothing yet, and
     * waits for the rest of a body the client is still sending is not at fault: the client
     * is slow (a backend silent halfway through its head is, and goes on below). Counting
     * that against the backend would let slow uploads (or a slow-body attack trickling a
     * byte a second, under client_idle) take healthy backends down; and the answer is
     * the client's 408, not a gateway timeout. */
    bool client_slow = s->resp_state == STREAM_RESP_HEAD && s->req_state != STREAM_REQ_DONE &&
                       buf_len(&s->up_out) == s->out_sent && buf_len(&s->up_in) == 0;
    if (client_slow) {
        /* upstream_response runs from the connect, through the upload: a client uploading
         * for longer than it, however fast, ends here too (timeouts.upstream_response). */
        stream_log_msg(CFG_LOG_WARN, s,
                       "request body still arriving when upstream_response ran out: 408, "
                       "not the backend's fault");
        stream_fail(s, 408);
        return;
    }
    stream_log_msg(CFG_LOG_WARN, s, "no response within upstream_response");
    if (s->resp_state == STREAM_RESP_HEAD)
        health_report_failure(stream_health(s)); /* accepts, never answers */
    stream_fail(s, 504);
}

void
stream_upstream_readable(struct stream *s)
{
    struct worker *w = s->w;
    struct upstream_conn *uc = s->uc;
    if (buf_take(&w->bufs, &s->up_in) < 0) {
        stream_fail(s, 503);
        return;
    }
    for (;;) {
        uint32_t room = buf_room(&s->up_in);
        if (room == 0) {
            enum flow f = stream_process_response(s);
            if (f == FLOW_GONE || s->upstream_paused)
                return; /* paused: stream_client_drained() reads on */
            if (buf_room(&s->up_in) == 0)
                return;
            continue;
        }
        ssize_t n = upstream_recv(uc, buf_tail(&s->up_in), room);
        if (n > 0) {
            s->up_in.end += (uint32_t)n;
            if (s->resp_state == STREAM_RESP_TUNNEL)
                s->tunnel_seen_ms = clock_mono_ms();
            enum flow f = stream_process_response(s);
            if (f == FLOW_GONE || s->upstream_paused)
                return; /* the client is full: reading stays off until it drains */
            /* Bytes came: the silence limit starts again (a 101 just made it a tunnel). */
            upstream_read_on(uc, s->resp_state == STREAM_RESP_TUNNEL
                                     ? s->snap->tv_tunnel
                                     : s->snap->tv_upstream_response);
            if ((uint32_t)n < room && !upstream_has_buffered_input(uc))
                break; /* the socket is drained: no need for a read that says EAGAIN */
            continue;
        }
        if (n < 0 && errno == EAGAIN)
            break;
        /* EOF or error. */
        int err = n < 0 ? errno : 0;
        if (s->resp_state == STREAM_RESP_HEAD) {
            if (stream_retry(s, false))
                return;
            stream_log_msg(CFG_LOG_WARN, s, "closed before a complete response: %s",
                           err ? strerror(err) : "EOF");
            stream_backend_broke(s);
            return;
        }
        if (s->resp_state == STREAM_RESP_BODY && s->resp_body == H1_BODY_CLOSE) {
            /* Flush what is left, then the close is the end of the body. */
            s->resp_body = H1_BODY_LENGTH;
            s->resp_remaining = buf_len(&s->up_in);
            if (s->resp_remaining == 0) {
                stream_finish(s, false);
                return;
            }
            s->up_keepalive = false;
            s->upstream_eof = true;
            upstream_read_off(uc);
            stream_process_response(s);
            return;
        }
        if (s->resp_state == STREAM_RESP_TUNNEL && buf_len(&s->up_in) == 0) {
            stream_finish(s, false);
            return;
        }
        stream_log_msg(CFG_LOG_WARN, s, "closed in the middle of the response body: %s",
                       err ? strerror(err) : "EOF");
        stream_backend_broke(s);
        return;
    }
    if (s->resp_state != STREAM_RESP_DONE)
        buf_release_if_empty(&w->bufs, &s->up_in);
}

void
stream_client_drained(struct stream *s)
{
    if (!s->upstream_paused)
        return;
    s->upstream_paused = false;
    enum flow f = stream_process_response(s);
    if (f == FLOW_GONE)
        return;
    if (s->uc && !s->upstream_paused && !s->upstream_eof) {
        upstream_read_on(s->uc, s->resp_state == STREAM_RESP_TUNNEL
                                    ? s->snap->tv_tunnel
                                    : s->snap->tv_upstream_response);
    }
}

const struct timeval *
stream_tunnel_timeout(const struct stream *s)
{
    return s->snap->tv_tunnel;
}

bool
stream_tunnel_time_left(const struct stream *s, struct timeval *left)
{
    uint64_t idle = clock_mono_ms() - s->tunnel_seen_ms;
    uint32_t limit = s->snap->cfg->timeouts.tunnel_ms;
    /* Timers may fire a little early: a few ms short of the limit counts as reached. */
    if (s->resp_state != STREAM_RESP_TUNNEL || idle + 5 >= limit)
        return false;
    uint64_t ms = limit - idle;
    left->tv_sec = (time_t)(ms / 1000);
    left->tv_usec = (suseconds_t)(ms % 1000) * 1000;
    return true;
}
