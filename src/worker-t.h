/* SPDX-License-Identifier: MIT */
/* A worker thread's state: its event loop, the listeners it accepts on, the connections
 * and pools it owns, and its view of the current configuration. Nothing here is touched
 * by another thread, except the statistics (relaxed atomics, read by the admin side) and
 * the wake-up eventfd. */
#ifndef MERIDIAN_WORKER_T_H
#define MERIDIAN_WORKER_T_H

#include <event2/event_struct.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>

#include "access_log.h"
#include "buf.h"
#include "geo_cache.h"
#include "metrics-t.h"
#include "reqid.h"

struct cfg;
struct conn;
struct server;
struct stream;
struct upstream_pool;
struct h1_header;
struct tls_listener;
struct client_ip_cfg;
struct health_target;
struct budget;

struct snapshot_region {
    uint32_t rr_cursor;
    size_t npools;
    struct upstream_pool **pools; /* owns the array; each pool counts this in snap_refs */
};

/* One worker's view of one config generation. Streams hold uses of it, so a request
 * finishes on the generation it started with; the last use frees it and lets go of the
 * generation. Counting uses here, per worker, keeps atomics off the request path: only
 * the snapshot's single cfg reference is atomic. */
struct snapshot {
    struct cfg *cfg;                 /* holds a ref */
    struct worker *w;                /* borrows */
    uint32_t uses;                   /* the worker while it is current, plus one per stream */
    struct snapshot_region *regions; /* owns */
    /* libevent common timeouts for this generation's durations (cheap re-arming). */
    const struct timeval *tv_client_header;
    const struct timeval *tv_client_idle;
    const struct timeval *tv_upstream_connect;
    const struct timeval *tv_upstream_response;
    const struct timeval *tv_upstream_idle;
    const struct timeval *tv_tunnel;
    struct timeval tv_plain[6]; /* backing values if the base has no common timeouts left */
};

struct listener_rt {
    int fd;                   /* owns */
    struct worker *w;         /* borrows */
    struct tls_listener *tls; /* borrows from the current generation; NULL: plain */
    bool h2c;                 /* plain listener that also takes HTTP/2 prior knowledge */
    bool proxy_protocol;      /* connections start with a PROXY header */
    bool conns_must_go;       /* the last reload changed what connections accepted here
                                 were made under (TLS settings, h2c turned off): they are
                                 closed gracefully */
    const struct client_ip_cfg *client_ip; /* borrows from the current generation */
    struct listener_rt *next;
    struct event ev;
};

struct worker_stats {
    atomic_uint_fast64_t accepted;
    atomic_uint_fast64_t requests;
    atomic_uint_fast64_t responses_4xx;
    atomic_uint_fast64_t responses_5xx;
    atomic_uint_fast64_t active_conns;
    atomic_uint_fast64_t tls_full;    /* TLS handshakes completed without resumption */
    atomic_uint_fast64_t tls_resumed; /* ... and with (ticket or session cache) */
    atomic_uint_fast64_t geo_errors;  /* GeoIP lookups that failed on corrupt data */
    /* rate_limit (budget.c): requests admitted, answered 429, answered 503 (Redis gone,
     * on_redis_failure closed), parked for a lease; lease and heartbeat commands sent;
     * 1 while Redis is failing (the failure mode decides). */
    atomic_uint_fast64_t rl_admitted;
    atomic_uint_fast64_t rl_rejected;
    atomic_uint_fast64_t rl_unavailable;
    atomic_uint_fast64_t rl_waited;
    atomic_uint_fast64_t rl_redis_calls;
    atomic_uint_fast64_t rl_degraded;
    atomic_uint_fast64_t rl_redis_connected; /* connections up, as of the last reply */
    atomic_uint_fast64_t rl_redis_servers;   /* servers (cluster masters) known */
    /* /metrics (metrics.h): streams in flight; upstream connections opened, idle ones
     * reused, connects that failed (refused, reset, timed out), attempts made again on
     * another (or a fresh) connection; GeoIP database lookups that found the address or
     * not (geo_errors: failed); answers given before a request had a region. */
    atomic_uint_fast64_t streams;
    atomic_uint_fast64_t up_connects;
    atomic_uint_fast64_t up_reuses;
    atomic_uint_fast64_t up_connect_failures;
    atomic_uint_fast64_t up_retries;
    atomic_uint_fast64_t up_tls_full;     /* TLS handshakes with backends: full, */
    atomic_uint_fast64_t up_tls_resumed;  /* resumed (a session of an earlier connection), */
    atomic_uint_fast64_t up_tls_failures; /* failed (verification, protocol, reset) */
    atomic_uint_fast64_t geo_found;
    atomic_uint_fast64_t geo_not_found;
    struct metrics_unrouted unrouted;
    atomic_uint generation; /* the config generation this worker runs */
};

struct worker {
    unsigned id;
    char name[8];
    pthread_t thread;
    bool joined; /* main thread: its thread has ended and been joined */
    struct event_base *base; /* owns */
    struct server *srv;      /* borrows */
    struct snapshot *snap;   /* holds a use: the current generation */
    struct cfg *seen_cfg;    /* borrows: the generation `snap` was built from */

    int wake_fd; /* owns: eventfd the main thread writes to */
    struct event wake_ev;
    struct event reap_ev;     /* runs after the callbacks of a loop turn */
    struct event shutdown_ev; /* the shutdown grace period */
    struct event log_flush_ev;
    struct event buf_trim_ev; /* returns unused buffer blocks to the kernel */
    bool stopping;
    bool reap_scheduled;
    bool log_flush_scheduled;

    struct listener_rt *listeners; /* owns */
    /* Listeners are watched unless the worker is stopping, found the process at
     * limits.max_connections (accept_full; paused_for_limit tells the other workers to
     * wake it when a slot frees), or backs off after accept() ran out of descriptors
     * (accept_backoff, until accept_resume_ev). */
    bool accepting; /* the listeners' events are added */
    bool accept_full;
    atomic_bool paused_for_limit;
    bool accept_backoff;
    struct event accept_resume_ev;
    uint64_t full_logged_ms; /* rate limit for the "connection limit reached" warning */
    uint64_t accept_error_logged_ms;
    uint32_t accept_errors; /* accept() failures since the last report */
    struct buf_pool bufs;
    struct conn *conn_free;     /* owns: free list */
    struct stream *stream_free; /* owns: free list */
    uint32_t nfree_conns, nfree_streams;
    struct conn *conns; /* live connections (conn->prev/next) */
    uint32_t nconns;
    uint32_t next_conn_id;
    struct conn *reap;            /* closed connections waiting to be freed */
    struct upstream_pool *pools;  /* owns */
    struct health_target *checks; /* holds refs: the targets this worker checks */
    struct geo_cache geo_cache;
    struct budget *budget; /* owns: rate_limit's admission, or NULL (no limit) */
    uint64_t rng;          /* worker_random()'s state */

    struct h1_header *headers; /* owns: parse scratch of max_headers entries */
    uint32_t headers_cap;

    struct reqid_gen reqids;
    struct access_log_buf alog;
    struct worker_stats stats;
};

#endif
