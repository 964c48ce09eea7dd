/* SPDX-License-Identifier: MIT */
/* Backend names, resolved on the main thread's event loop with libevent's evdns (never on
 * a request, never on a worker). For each name the running generation uses it keeps the
 * last good set of addresses and asks again on a schedule that follows the answer's TTL
 * within resolvers.min_ttl..max_ttl; a failure (timeout, refusal, no nameserver) keeps
 * the set and is asked again after resolvers.retry, while an authoritative "no such name"
 * or "no address" empties it. The hosts file is read first (as the C library's "files dns"
 * does): a name it lists is taken from it, with no query. When a name's set changes the
 * owner is told (resolver_changed_fn) and builds a new generation with resolver_addrs().
 *
 *   new --> PENDING --answer--> OK <--answer-- FAILED (set kept)
 *              |                 |  \--failure--^   ^
 *              +--failure--------|--------------------+
 *              +--NXDOMAIN/NODATA--> EMPTY (set emptied; asked again later)
 *
 * evdns 2.1 facts this file is built around: only evdns_base_resolve_ipv4/ipv6 report a
 * TTL (so no getaddrinfo); they ignore /etc/hosts (hence hosts_file.c); a base without a
 * nameserver never answers (so that case fails at once); a cancelled request still gets its
 * callback once, deferred (so a request outlives its entry, and resolver_free runs the loop
 * once more); and evdns_base_free(dns, 1) with its own probe of a down nameserver in
 * flight touches freed memory in 2.1.12, so requests are cancelled first and bases freed
 * with fail_requests = 0. */
#ifndef MERIDIAN_RESOLVER_H
#define MERIDIAN_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct cfg_resolvers;
struct resolver;

/* A name's set of addresses changed (or a name got its first answer or failure). Called
 * from the loop, at most once per loop pass for any number of names. */
typedef void (*resolver_changed_fn)(void *arg);

struct resolver *resolver_new(struct event_base *base, resolver_changed_fn changed, void *arg);
/* Cancels everything and frees; runs the loop once (non-blocking) so that evdns delivers
 * the callbacks of the requests it fails. NULL is accepted. */
void resolver_free(struct resolver *r);

/* Applies `rc` (nameservers or /etc/resolv.conf, timeout, attempts, TTL bounds, families,
 * hosts file). When it differs from what is in use, the evdns base is made anew and every
 * name is asked again at once. Returns 0, or -1 with a one-line reason in `err` (nothing
 * changed then). */
int resolver_configure(struct resolver *r, const struct cfg_resolvers *rc, char *err,
                       size_t errlen);

/* The names the running generation uses, `n` of them (duplicates allowed). Names new to
 * the resolver are asked at once; names it has that are not listed are forgotten (a
 * request in flight for them is cancelled). */
void resolver_sync(struct resolver *r, const char *const *hosts, size_t n);

/* The last good set of `host` (sorted: IPv4 before IPv6, then by address; port 0), up to
 * `max` of them. Returns how many; 0 for a name without one (pending, empty, unknown). */
size_t resolver_addrs(const struct resolver *r, const char *host, struct sockaddr_storage *out,
                      size_t max);

/* Whether every name has had its first answer or failure (start-up waits for that, for a
 * bounded time, before it serves). */
bool resolver_settled(const struct resolver *r);

enum resolver_state {
    RESOLVER_PENDING = 0, /* asked, never answered */
    RESOLVER_OK,          /* the set is the last answer's */
    RESOLVER_FAILED,      /* the last attempt failed; the set is the last good one */
    RESOLVER_EMPTY,       /* the name has no address (NXDOMAIN, NODATA): no backend */
};

/* One name, for /status and /metrics. Strings live until the next call into the resolver. */
struct resolver_view {
    const char *host;
    enum resolver_state state;
    bool from_hosts_file;       /* the set came from the hosts file */
    size_t naddrs;              /* in the set */
    uint32_t ttl_s;             /* of the last answer (as received, before the bounds) */
    const char *error;          /* the last failure's reason ("timed out", ...); "" if none */
    uint64_t changed_ms;        /* clock_mono_ms() when the set last changed; 0: never */
    uint64_t resolved_ms;       /* when the last answer came; 0: never */
    uint64_t next_ms;           /* when it is asked next (0 while a query is in flight) */
    uint64_t answers, failures; /* counts since the name was added */
};

/* Calls fn for every name, sorted by name. */
typedef void (*resolver_view_fn)(void *arg, const struct resolver_view *v);
void resolver_each(const struct resolver *r, resolver_view_fn fn, void *arg);

/* Name of a state for logs and /status: "pending", "ok", "failed", "empty". */
const char *resolver_state_name(enum resolver_state s);

/* Totals since start, for /metrics: queries sent (each family counts), answers with
 * addresses, authoritative empty answers, failures. */
struct resolver_totals {
    uint64_t queries, answers, empty, failures;
};
void resolver_totals(const struct resolver *r, struct resolver_totals *out);

#endif
