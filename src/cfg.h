/* SPDX-License-Identifier: MIT */
/* One generation of configuration: everything read from the YAML file, validated, and
 * then never changed. Workers and in-flight streams hold references; the generation is
 * freed as a whole when the last one lets go. Runtime state that must outlive a
 * generation (listening sockets, upstream connections, health) lives elsewhere and is
 * matched to a new generation by name or address. This file owns the types, the value
 * parsers (durations, sizes, addresses) and the checks; cfg_load.c maps YAML onto them. */
#ifndef MERIDIAN_CFG_H
#define MERIDIAN_CFG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "client_ip.h"
#include "metrics-t.h"
#include "route.h"
#include "route_places.h"

struct geo_db;
struct health_target;

/* An IP literal and port: "127.0.0.1:80", "[::1]:8080", "0.0.0.0:8080", "[::]:80". */
struct cfg_addr {
    struct sockaddr_storage sa;
    socklen_t salen;
    char text[64]; /* as normalised for logs: "127.0.0.1:80", "[::1]:8080" */
};

/* A certificate and its private key (PEM files). */
struct cfg_tls_cert {
    char *cert_path; /* owns */
    char *key_path;  /* owns */
    bool is_default; /* served when SNI matches nothing (else the first one is) */
    int line;
};

enum cfg_tls_protocol {
    CFG_TLS_V12 = 1 << 0,
    CFG_TLS_V13 = 1 << 1,
};

/* Mozilla's "intermediate" server profile (v5.7): forward-secret AEAD suites only. */
#define CFG_TLS_DEFAULT_CIPHERS                                                                    \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define CFG_TLS_DEFAULT_CIPHERSUITES                                                               \
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define CFG_TLS_DEFAULT_GROUPS "X25519:P-256"
#define CFG_DEFAULT_TICKET_ROTATE_MS (3600u * 1000)

struct tls_listener; /* tls.c's runtime: SSL_CTXs and the SNI table */
struct tls_upstream; /* tls_upstream.c's runtime: a client SSL_CTX and its settings */

struct cfg_tls {
    struct cfg_tls_cert *certs; /* owns; at least one */
    size_t ncerts;
    unsigned protocols; /* enum cfg_tls_protocol bits; default both */
    char *ciphers;      /* owns; TLS 1.2 list, OpenSSL syntax; default CFG_TLS_DEFAULT_CIPHERS */
    char *ciphersuites; /* owns; TLS 1.3; default CFG_TLS_DEFAULT_CIPHERSUITES */
    char *groups;       /* owns; key exchange groups; default CFG_TLS_DEFAULT_GROUPS */
    char **alpn;        /* owns; protocols offered in order: "h2", "http/1.1" (default both) */
    size_t nalpn;
    bool tickets;                 /* session tickets on (default) */
    uint32_t ticket_rotate_ms;    /* a new ticket key this often (default 1h) */
    char *ticket_key_file;        /* owns; optional: keys shared by a fleet (see tls.c) */
    uint32_t session_cache;       /* server-side session cache entries; 0 = off (default) */
    struct tls_listener *runtime; /* owns: built by tls_listener_new() when the generation
                                     is loaded; freed with it */
};

/* HTTP/2 settings (for TLS listeners with "h2" in ALPN, and h2c listeners). */
struct cfg_http2 {
    uint32_t max_concurrent_streams; /* advertised and enforced; default 100 */
    uint32_t initial_window_size;    /* per stream, bytes; default 65535 */
    uint32_t max_header_list_size;   /* decoded header bytes per request; default 65536 */
    uint32_t max_resets_per_10s;     /* RST_STREAMs we send (or the peer's) before GOAWAY
                                        ENHANCE_YOUR_CALM; default 200 */
};

#define CFG_DEFAULT_H2_MAX_STREAMS 100
#define CFG_DEFAULT_H2_WINDOW 65535
#define CFG_DEFAULT_H2_MAX_HEADER_LIST 65536
#define CFG_DEFAULT_H2_MAX_RESETS 200

struct cfg_listener {
    char *name; /* owns */
    struct cfg_addr addr;
    int line;            /* where it was defined, for messages */
    struct cfg_tls *tls; /* owns; NULL for plain HTTP */
    bool h2c;            /* plain listener: also accept HTTP/2 with prior knowledge */
    bool proxy_protocol; /* every connection starts with a PROXY v1/v2 header */
    /* Who is trusted to say who the client is: the top-level client_ip section, or the
     * listener's own. Borrows &cfg->client_ip, or client_ip_own. */
    const struct client_ip_cfg *client_ip;
    struct client_ip_cfg *client_ip_own; /* owns (and its nets); NULL: none */
    int *fds; /* owns the array (one per worker), set by server.c before the
                 generation is published; the sockets belong to the workers */
};

/* Active health checks: an HTTP/1.1 GET to each backend every `interval`, from one
 * worker's event loop, on a connection of its own. */
struct cfg_health_check {
    bool enabled;                  /* a health_check section applies (top level or the region's) */
    char *path;                    /* owns; default "/" */
    char *host;                    /* owns; Host header; NULL: the backend's address */
    uint32_t interval_ms;          /* default 2s */
    uint32_t timeout_ms;           /* connect + answer; default 1s; <= interval */
    uint32_t rise;                 /* consecutive passes to go up; default 2 */
    uint32_t fall;                 /* consecutive failures to go down; default 3 */
    uint16_t expect_lo, expect_hi; /* statuses that pass; default 200..399 */
    bool passive;                  /* real traffic's connect failures, resets and timeouts count
                                      too: `fall` of them in a row mark the backend down; default
                                      true */
    int line;                      /* where the section is, for messages */
};

#define CFG_DEFAULT_HC_INTERVAL_MS 2000
#define CFG_DEFAULT_HC_TIMEOUT_MS 1000
#define CFG_DEFAULT_HC_RISE 2
#define CFG_DEFAULT_HC_FALL 3
#define CFG_MAX_HC_COUNT 100
#define CFG_HC_PATH_MAX 255 /* health_check.path and .host, bytes */
#define CFG_HC_HOST_MAX 255

/* A backend's share of its region's new requests: weight 0..CFG_WEIGHT_MAX (nginx's
 * `weight=`, HAProxy's `weight`; default 1, so equal weights are plain round-robin), and
 * `drain: true`, which is weight 0 without forgetting the weight (HAProxy's drain state).
 * Either way the backend gets nothing new while what it has in flight finishes, its
 * health is still checked, and a region with nothing else counts as having no backend
 * up (routing fails over, nothing is marked down). */
#define CFG_WEIGHT_MAX 256
#define CFG_DEFAULT_WEIGHT 1

/* TLS to backends: a region's `tls` section, or a backend's own keys over its region's.
 * Verification is on unless the file turns it off; the name checked against the
 * certificate is `sni` when set, else the backend's address (an IP SAN). */
struct cfg_backend_tls {
    bool enabled;
    bool verify;           /* default true */
    char *ca_file;         /* owns; NULL: the system's trusted CAs */
    char *sni;             /* owns; NULL: no SNI (an IP literal may not be sent as one) */
    bool alpn_http11;      /* offer http/1.1 by ALPN (default); false: no ALPN at all */
    char *client_cert;     /* owns; with client_key, or both NULL */
    char *client_key;      /* owns */
    unsigned min_protocol; /* CFG_TLS_V12 (default) or CFG_TLS_V13 */
    int line;              /* where the section is, for messages about its files */
    /* Holds a ref: the SSL_CTX and what a connection needs, built by tls_upstream_prepare()
     * after the walk; NULL when !enabled. Pools and health checks take their own refs. */
    struct tls_upstream *runtime;
};

struct cfg_backend_name;

struct cfg_backend {
    struct cfg_addr addr;
    /* Borrows: the name this backend is one address of (its region's names[]), NULL for an
     * IP literal. */
    const struct cfg_backend_name *name;
    size_t file_index; /* its entry in the region's backends in the file, for messages */
    uint32_t weight; /* 0..CFG_WEIGHT_MAX as configured */
    bool drain;      /* drain: true */
    /* Owns: the backend's own `tls` keys over its region's; NULL: the region's. Use
     * cfg_backend_tls_of(). */
    struct cfg_backend_tls *tls_own;
    /* Borrows: for a backend from a name, its name's TLS section (cfg_backend_name.tls);
     * NULL otherwise. */
    const struct cfg_backend_tls *tls_name;
    /* Holds a ref: the backend's shared health, found or made by address when the
     * generation is applied (health.c); NULL before that and when no check applies. */
    struct health_target *health;
};

/* A backend given as "host:port" with a DNS name. The name is resolved by resolver.c on the
 * main thread, never on a request; each generation is built with the addresses known when
 * it is loaded, each one a cfg_backend of the region with the name's weight, drain and TLS
 * settings, and a new generation is built from the same text when the answers change.
 * Without an answer yet (at start, under `meridian -t`) a name stands for no backend. */
#define CFG_NAME_MAX 253      /* a DNS name's longest text form */
#define CFG_NAME_ADDRS_MAX 64 /* addresses one name may contribute to its region */

struct cfg_backend_name {
    char *host;        /* owns: lower-cased, no trailing dot */
    char *text;        /* owns: "host:port", for messages and /status */
    uint16_t port;     /* host byte order */
    size_t file_index; /* its entry in the region's backends in the file */
    uint32_t weight;
    bool drain;
    int line;
    /* Owns: the TLS settings of the name's backends when TLS is on (the backend's own keys
     * over the region's), with `sni` set to the host when the file sets none, so that the
     * certificate is checked against the name; enabled == false otherwise. */
    struct cfg_backend_tls tls;
    size_t naddrs;  /* how many backends it stands for in this generation */
    size_t nanswer; /* addresses it had (some may be another backend's already) */
    /* cfg_addrs_digest() of the answer this generation was built with, so that a change
     * notice that changes nothing for it makes no new generation. */
    uint64_t answer_digest;
};

enum cfg_balance {
    CFG_BALANCE_ROUND_ROBIN = 0,
    CFG_BALANCE_LEAST_OUTSTANDING = 1,
};

struct cfg_region {
    char *name; /* owns */
    double lat, lon;
    struct cfg_backend *backends;   /* owns: the IP literals, then each name's addresses */
    size_t nbackends;               /* may be 0 while a region's names are unresolved */
    struct cfg_backend_name *names; /* owns: the backends given by DNS name, in file order */
    size_t nnames;
    bool is_default;
    char *countries; /* owns: two-letter codes run together ("GBIE"), or NULL */
    enum cfg_balance balance;
    /* Owns: for unequal weights (or some 0), one cycle of nginx's smooth weighted
     * round-robin, as backend indexes (lb_schedule_build); each worker walks it with its
     * own cursor (round_robin), or breaks least_outstanding's ties by it. NULL: equal
     * weights, plain round-robin. */
    uint32_t *schedule;
    size_t nschedule;
    size_t nserving;                      /* backends of weight > 0 and not draining */
    struct cfg_health_check health_check; /* the top level's, with the region's keys over
                                             it; owns its strings */
    struct cfg_backend_tls tls;           /* TLS to the region's backends (owns its strings) */
    /* Owns: counters, one block per worker (each on its own cache line, written by its
     * worker only), made by server.c when the generation is applied and carried over by
     * region name; the admin side sums them under its reference on the generation. */
    struct cfg_region_stats *stats;
};

struct cfg_region_stats {
    atomic_uint_fast64_t requests;      /* served here */
    atomic_uint_fast64_t failovers_in;  /* ... whose nearest region was another */
    atomic_uint_fast64_t failovers_out; /* nearest here, served elsewhere */
    struct metrics_region m;            /* answered here, by class, protocol, duration */
} __attribute__((aligned(64)));

/* routing: how a region is chosen and what backends are told about it. */
struct cfg_routing {
    float spill_below;    /* healthy share below which a region spills; default 0.5 */
    char *country_header; /* owns; default "X-Client-Country"; NULL: not sent */
    char *region_header;  /* owns; default "X-Client-Region"; NULL: not sent */
};

#define CFG_DEFAULT_SPILL_BELOW 0.5f
#define CFG_MAX_REGIONS ROUTE_MAX_REGIONS

enum cfg_log_level {
    CFG_LOG_ERROR = 0,
    CFG_LOG_WARN = 1,
    CFG_LOG_INFO = 2,
    CFG_LOG_DEBUG = 3,
};

struct cfg_timeouts {
    uint32_t client_header_ms;     /* a request head must arrive within this; then 408 */
    uint32_t client_idle_ms;       /* keep-alive idle and stalled-transfer limit */
    uint32_t upstream_connect_ms;  /* connect to a backend; then 504 */
    uint32_t upstream_response_ms; /* backend silent for this long; then 504 */
    uint32_t tunnel_ms;            /* a websocket tunnel with no bytes either way; closed */
    uint32_t shutdown_ms;          /* in-flight grace on SIGTERM */
};

struct cfg_limits {
    uint32_t max_header_bytes; /* request line + headers */
    uint32_t max_headers;
    uint64_t max_body_bytes;  /* 0 = unlimited */
    uint32_t max_connections; /* client connections, all workers together; 0 = auto, from
                                 RLIMIT_NOFILE (server.c) */
};

/* rate_limit: the fleet-wide request budget of the active growth phase, kept in Redis
 * (budget.c spends it, ratelimit.c does its arithmetic, redis_link.c talks to Redis). */
enum cfg_rl_scope {
    CFG_RL_GLOBAL = 0, /* one bucket for the whole fleet */
    CFG_RL_REGION,     /* one bucket per region, each with its share of the phase's rps */
};

enum cfg_rl_failure { /* what a worker does while Redis cannot answer */
                      CFG_RL_FAIL_LOCAL =
                          0,            /* an in-process bucket of budget / last-known node count */
                      CFG_RL_FAIL_OPEN, /* admit everything */
                      CFG_RL_FAIL_CLOSED, /* answer 503 */
};

struct cfg_rl_phase {
    char *name;   /* owns: the key of rate_limit.phases */
    double rps;   /* > 0 */
    double burst; /* >= 1; default: rps (one second's worth) */
    /* Each region's share of rps (cfg->nregions entries, summing to at most 1): the
     * phase's `regions:` percentages, the regions it leaves out sharing what is left
     * equally; NULL when it lists none (equal shares). Used by scope: region. */
    double *region_share; /* owns */
    int line;
};

struct cfg_redis {
    struct cfg_addr *addrs; /* owns: the server, or a cluster's seed nodes */
    size_t naddrs;          /* >= 1 */
    bool cluster;
    char *password;      /* owns; NULL: no AUTH */
    uint32_t db;         /* SELECT; 0 with cluster */
    uint32_t timeout_ms; /* the longest a request waits on Redis; default 50 ms */
    char *key_prefix;    /* owns; default "meridian" */
};

struct cfg_rate_limit {
    bool enabled;                /* the section is present */
    struct cfg_rl_phase *phases; /* owns */
    size_t nphases;
    size_t active;           /* index of rate_limit.phase in phases */
    enum cfg_rl_scope scope; /* default global */
    struct cfg_redis redis;
    enum cfg_rl_failure on_redis_failure; /* default local */
    int line;
};

#define CFG_DEFAULT_REDIS_TIMEOUT_MS 50
#define CFG_DEFAULT_REDIS_PORT 6379
#define CFG_RL_PHASES_MAX 16
#define CFG_REDIS_SEEDS_MAX 16

/* resolvers: how backend names are resolved (resolver.c). */
struct cfg_resolvers {
    struct cfg_addr *nameservers; /* owns; none: those of /etc/resolv.conf */
    size_t nnameservers;
    char *hosts_file;    /* owns; default "/etc/hosts"; NULL: none */
    uint32_t timeout_ms; /* one query attempt; default 1s */
    uint32_t attempts;   /* sends per query before it fails; default 2 */
    uint32_t min_ttl_ms; /* an answer is asked again no sooner than this (default 5s) */
    uint32_t max_ttl_ms; /* and no later than this, whatever its TTL (default 5m) */
    uint32_t retry_ms;   /* after a failure (default 5s); the last good answer is kept */
    bool ipv4, ipv6;     /* families asked for (default both) */
    int line;            /* the section's, 0 when absent */
};

#define CFG_DEFAULT_DNS_TIMEOUT_MS 1000
#define CFG_DEFAULT_DNS_ATTEMPTS 2
#define CFG_DEFAULT_DNS_MIN_TTL_MS 5000
#define CFG_DEFAULT_DNS_MAX_TTL_MS (300u * 1000)
#define CFG_DEFAULT_DNS_RETRY_MS 5000
#define CFG_DEFAULT_HOSTS_FILE "/etc/hosts"
#define CFG_DNS_NAMESERVERS_MAX 8

/* Whom the process runs as once its listeners are bound and its files open
 * (privileges.c). Read at start only: a reload cannot change who the process is. */
struct cfg_privileges {
    char *user;       /* owns; NULL: stay whoever started the process */
    char *group;      /* owns; NULL: the user's login group; needs user */
    bool run_as_root; /* started as root, stay root (no user) */
    int user_line, group_line, run_as_root_line; /* where each was, for messages; 0: absent */
};

struct cfg {
    atomic_int refs;
    unsigned generation; /* set by server.c: 1 at start, +1 per reload */
    char *path;          /* owns: the file it came from */

    unsigned workers; /* 0 = auto: one per CPU */
    enum cfg_log_level log_level;

    struct cfg_listener *listeners; /* owns */
    size_t nlisteners;

    bool has_admin;
    struct cfg_addr admin;
    bool admin_allow_remote; /* admin.allow_remote: a non-loopback admin address is meant */

    struct cfg_privileges privileges;

    struct cfg_timeouts timeouts;
    struct cfg_limits limits;
    struct cfg_http2 http2;

    char *access_log_path; /* owns; NULL = off, "-" = stdout */

    struct cfg_region *regions; /* owns */
    size_t nregions;
    size_t default_region; /* index into regions */
    bool any_draining;     /* some backend has weight 0 or drain: true (upstream.c) */

    struct client_ip_cfg client_ip; /* owns its nets; default: trust nobody */
    char *geoip_path;               /* owns; NULL: no database */
    int geoip_line;                 /* where geoip.database is, for messages */
    struct geo_db *geo;             /* owns: opened (and checked) by the loader */
    struct cfg_routing routing;
    struct cfg_health_check health_check; /* top-level defaults; owns its strings */
    struct route_table route;             /* built by the loader from the regions */
    struct route_places places; /* owns: the GeoIP places' region orders (route_places.h) */
    struct cfg_rate_limit rate_limit;
    struct cfg_resolvers resolvers;
    size_t nnames; /* backend names in all regions together */

    /* Owns: the YAML text this generation was loaded from, so that a new generation can be
     * built from it when DNS answers change, whatever the file holds by then. */
    char *source;
    size_t source_len;
};

/* Defaults for keys the file leaves out. */
#define CFG_DEFAULT_CLIENT_HEADER_MS 10000
#define CFG_DEFAULT_CLIENT_IDLE_MS 60000
#define CFG_DEFAULT_UPSTREAM_CONNECT_MS 2000
#define CFG_DEFAULT_UPSTREAM_RESPONSE_MS 30000
#define CFG_DEFAULT_TUNNEL_MS (3600u * 1000)
#define CFG_DEFAULT_SHUTDOWN_MS 30000
#define CFG_DEFAULT_MAX_HEADER_BYTES 16384
#define CFG_DEFAULT_MAX_HEADERS 100
#define CFG_DEFAULT_MAX_BODY_BYTES (10u * 1024 * 1024)
#define CFG_MAX_HEADER_BYTES_LIMIT 65536 /* a request head must fit one buffer */
#define CFG_MAX_HEADERS_LIMIT 1000
#define CFG_MAX_WORKERS 256
#define CFG_MAX_CONNECTIONS_LIMIT 10000000

/* A new generation with defaults filled in and refs = 1. NULL when out of memory. */
struct cfg *cfg_new(void);

/* Reference counting across threads. cfg_unref frees the generation on the last one. */
struct cfg *cfg_ref(struct cfg *cfg);
void cfg_unref(struct cfg *cfg);

/* Value parsers. Each returns 0, or -1 when `text` is not of the form. */
/* "250ms", "10s", "2m", "1h", or a plain number of seconds; at most 24h. */
int cfg_parse_duration_ms(const char *text, uint32_t *ms);
/* "512", "16k", "10m", "1g" (binary multiples; upper or lower case). */
int cfg_parse_size(const char *text, uint64_t *bytes);
/* An IP literal with a port 1..65535 (see struct cfg_addr). No name lookups. */
int cfg_parse_addr(const char *text, struct cfg_addr *addr);

/* `ip` (an AF_INET or AF_INET6 address; its port ignored) with `port`, text and all. */
void cfg_addr_set(struct cfg_addr *addr, const struct sockaddr_storage *ip, uint16_t port);

/* A digest of `n` addresses (family and address bytes; ports ignored), order included. */
uint64_t cfg_addrs_digest(const struct sockaddr_storage *addrs, size_t n);

/* A health_check section's defaults (not enabled); freeing its strings. */
void cfg_health_check_defaults(struct cfg_health_check *hc);
void cfg_health_check_deinit(struct cfg_health_check *hc);
/* A listener's own client_ip section (NULL is fine). */
void cfg_client_ip_free(struct client_ip_cfg *ci);

/* Whether an admin address stays on this machine: 127.0.0.0/8, ::1, or 127.0.0.0/8
 * mapped into IPv6 (::ffff:127.0.0.1). The wildcards 0.0.0.0 and :: are not. */
bool cfg_addr_is_loopback(const struct cfg_addr *addr);

/* Every file a generation reads when it is loaded (certificates, keys, the ticket key
 * file, the GeoIP database): `key` names it as messages do
 * ("listeners[0].tls.certificates[1].key"), `line` is where. For checks of who may read
 * them (cfg_load.c before a load, server.c once root is given up). */
typedef void (*cfg_file_cb)(void *arg, const char *key, const char *path, int line);
void cfg_each_file(const struct cfg *cfg, cfg_file_cb cb, void *arg);

/* What the balancer uses of a backend: its weight, 0 while it drains. */
static inline uint32_t
cfg_backend_weight(const struct cfg_backend *b)
{
    return b->drain ? 0 : b->weight;
}

/* The TLS settings that apply to backend `b` of region `r` (enabled or not). */
static inline const struct cfg_backend_tls *
cfg_backend_tls_of(const struct cfg_region *r, const struct cfg_backend *b)
{
    return b->tls_own ? b->tls_own : b->tls_name ? b->tls_name : &r->tls;
}

/* Whether two sections name the same files (CA, client certificate and key). */
bool cfg_backend_tls_same_files(const struct cfg_backend_tls *a, const struct cfg_backend_tls *b);

/* Defaults of a `tls` section for backends (not enabled), and freeing one's strings and
 * runtime. */
void cfg_backend_tls_defaults(struct cfg_backend_tls *t);
void cfg_backend_tls_deinit(struct cfg_backend_tls *t);

/* Index of the region named `name`, or -1. */
int cfg_region_index(const struct cfg *cfg, const char *name);

#endif
