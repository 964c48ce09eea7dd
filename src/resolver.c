/* SPDX-License-Identifier: MIT */
/* Backend names, resolved on the main thread's loop (see resolver.h for the model and the
 * evdns 2.1 facts it rests on). This file owns the evdns base, one entry per name (its
 * timer, its last good set, the attempt under way) and the hosts file's table. It knows
 * nothing of generations: the owner hears "changed" and asks resolver_addrs().
 *
 * One attempt for a name:
 *
 *   timer --> hosts file lists it? --yes--> OK (from_hosts_file), timer min_ttl
 *                  | no
 *                  v
 *             A and/or AAAA sent (one rs_query each) --all answered--> combine:
 *               any transient error        -> FAILED, set kept, timer retry
 *               addresses in any answer    -> OK, set = their union, timer TTL in bounds
 *               NXDOMAIN / NODATA only     -> EMPTY, set emptied, timer negative TTL or retry
 *
 * A query lives until evdns calls it back, which it does exactly once, even after a cancel
 * (deferred, with DNS_ERR_CANCEL). Forgetting a name (resolver_sync), making a new base
 * (resolver_configure) and resolver_free detach and cancel the queries, and the callback of
 * a detached query only frees it; a base is freed only once every query of ours on it was
 * cancelled (see dns_free). */
#define _POSIX_C_SOURCE 200809L

#include "resolver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cfg.h"
#include "clock.h"
#include "hosts_file.h"
#include "log.h"

#define RS_FAMILIES 2          /* [0] A (IPv4), [1] AAAA (IPv6) */
#define RS_NOT_ASKED (-1)      /* an attempt's family that was not asked */
#define RS_ERR_SEND (-2)       /* evdns would not take the query */
#define RS_ERROR_MAX 96        /* a name's last error text */
#define RS_LOG_ADDRS 8         /* addresses a log line names */
#define RS_HOSTS_ERROR_MAX 192 /* the hosts file's last read error */

static const char no_nameserver[] = "no nameserver (resolvers.nameservers or /etc/resolv.conf)";

/* What resolver_configure was given, copied: compared with the next one to tell whether the
 * evdns base must be made anew. */
struct rs_settings {
    struct cfg_addr *nameservers; /* owns; none: /etc/resolv.conf's */
    size_t nnameservers;
    char *hosts_file; /* owns; NULL: none */
    uint32_t timeout_ms, attempts, min_ttl_ms, max_ttl_ms, retry_ms;
    bool ipv4, ipv6;
};

struct rs_name;

/* One evdns request. */
struct rs_query {
    struct rs_name *name;      /* borrows; NULL once detached: then the callback only frees */
    struct evdns_request *req; /* evdns's handle: valid until the callback, never after */
    int fam;                   /* 0: A, 1: AAAA */
};

/* The attempt under way for a name: one slot per family. */
struct rs_attempt {
    unsigned outstanding;         /* queries still to call back */
    int err[RS_FAMILIES];         /* DNS_ERR_*, RS_ERR_SEND, or RS_NOT_ASKED */
    int ttl[RS_FAMILIES];         /* as evdns reported it */
    struct sockaddr_storage *got; /* owns: the answers' addresses so far */
    size_t ngot;
};

struct rs_name {
    struct resolver *r; /* borrows: the resolver that owns this entry */
    char *host;         /* owns: lower-cased */
    enum resolver_state state;
    bool from_hosts_file;
    bool seen;                      /* resolver_sync's mark */
    bool fresh;                     /* added by the resolver_sync under way */
    bool capped_logged;             /* the "too many addresses" warning was given */
    struct sockaddr_storage *addrs; /* owns: the last good set, sorted; NULL when empty */
    size_t naddrs;
    uint32_t ttl_s;
    char error[RS_ERROR_MAX];
    uint64_t changed_ms, resolved_ms, next_ms, answers, failures;
    struct event *timer;                 /* owns: the next attempt */
    struct rs_query *query[RS_FAMILIES]; /* in flight (holds the query's back pointer), or NULL */
    struct rs_attempt att;
};

struct resolver {
    struct event_base *base; /* borrows: the main thread's */
    resolver_changed_fn changed;
    void *changed_arg;
    struct event *notify; /* owns: a zero timer, so `changed` runs once per loop pass */

    bool configured;
    struct rs_settings settings;
    struct evdns_base *dns; /* owns; NULL until configured */

    struct rs_name **names; /* owns each; sorted by host */
    size_t nnames, capnames;

    /* The hosts file as last read: the table and what fstat said of what was read. */
    struct hosts_file *hosts; /* owns; NULL: none read, or unreadable */
    bool hosts_known;         /* hosts and hosts_st are valid */
    struct stat hosts_st;
    char hosts_error[RS_HOSTS_ERROR_MAX]; /* the last read error logged; "" after a good read */

    struct resolver_totals totals;
};

/* ---- addresses ---- */

static int
addr_rank(const struct sockaddr_storage *a)
{
    return a->ss_family == AF_INET ? 0 : 1;
}

static const void *
addr_bytes(const struct sockaddr_storage *a, size_t *len)
{
    if (a->ss_family == AF_INET) {
        *len = 4;
        return &((const struct sockaddr_in *)a)->sin_addr;
    }
    *len = 16;
    return &((const struct sockaddr_in6 *)a)->sin6_addr;
}

/* IPv4 before IPv6, then by address bytes. */
static int
addr_cmp(const void *pa, const void *pb)
{
    const struct sockaddr_storage *a = pa, *b = pb;
    size_t alen, blen;
    int ra = addr_rank(a), rb = addr_rank(b);
    if (ra != rb)
        return ra < rb ? -1 : 1;
    const void *x = addr_bytes(a, &alen), *y = addr_bytes(b, &blen);
    return memcmp(x, y, alen);
}

/* Sorts and deduplicates `a` in place; returns how many remain. */
static size_t
set_normalize(struct sockaddr_storage *a, size_t n)
{
    size_t kept = 0;
    if (n == 0)
        return 0;
    qsort(a, n, sizeof(*a), addr_cmp);
    for (size_t i = 0; i < n; i++)
        if (kept == 0 || addr_cmp(&a[kept - 1], &a[i]) != 0)
            a[kept++] = a[i];
    return kept;
}

/* "127.0.0.1, 127.0.0.2" (the first RS_LOG_ADDRS, then how many more). */
static void
set_format(const struct sockaddr_storage *a, size_t n, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && i < RS_LOG_ADDRS; i++) {
        char text[INET6_ADDRSTRLEN];
        size_t alen;
        const void *bytes = addr_bytes(&a[i], &alen);
        if (inet_ntop(a[i].ss_family, bytes, text, sizeof(text)) == NULL)
            snprintf(text, sizeof(text), "?");
        int w = snprintf(buf + used, len - used, "%s%s", i > 0 ? ", " : "", text);
        if (w < 0 || (size_t)w >= len - used)
            return;
        used += (size_t)w;
    }
    if (n > RS_LOG_ADDRS)
        snprintf(buf + used, len - used, ", and %zu more", n - RS_LOG_ADDRS);
}

static const char *
plural(size_t n)
{
    return n == 1 ? "" : "es";
}

/* ---- settings ---- */

static void
settings_free(struct rs_settings *s)
{
    free(s->nameservers);
    free(s->hosts_file);
    memset(s, 0, sizeof(*s));
}

static int
settings_copy(struct rs_settings *s, const struct cfg_resolvers *rc)
{
    memset(s, 0, sizeof(*s));
    if (rc->nnameservers > 0) {
        s->nameservers = calloc(rc->nnameservers, sizeof(*s->nameservers));
        if (s->nameservers == NULL)
            return -1;
        memcpy(s->nameservers, rc->nameservers, rc->nnameservers * sizeof(*s->nameservers));
        s->nnameservers = rc->nnameservers;
    }
    if (rc->hosts_file != NULL) {
        s->hosts_file = strdup(rc->hosts_file);
        if (s->hosts_file == NULL) {
            settings_free(s);
            return -1;
        }
    }
    s->timeout_ms = rc->timeout_ms;
    s->attempts = rc->attempts;
    s->min_ttl_ms = rc->min_ttl_ms;
    s->max_ttl_ms = rc->max_ttl_ms;
    s->retry_ms = rc->retry_ms;
    s->ipv4 = rc->ipv4;
    s->ipv6 = rc->ipv6;
    return 0;
}

static bool
settings_equal(const struct rs_settings *a, const struct rs_settings *b)
{
    if (a->nnameservers != b->nnameservers)
        return false;
    /* The text is cfg_parse_addr's normalised form: equal texts, equal addresses. */
    for (size_t i = 0; i < a->nnameservers; i++)
        if (a->nameservers[i].salen != b->nameservers[i].salen ||
            strcmp(a->nameservers[i].text, b->nameservers[i].text) != 0)
            return false;
    if ((a->hosts_file == NULL) != (b->hosts_file == NULL) ||
        (a->hosts_file != NULL && strcmp(a->hosts_file, b->hosts_file) != 0))
        return false;
    return a->timeout_ms == b->timeout_ms && a->attempts == b->attempts &&
           a->min_ttl_ms == b->min_ttl_ms && a->max_ttl_ms == b->max_ttl_ms &&
           a->retry_ms == b->retry_ms && a->ipv4 == b->ipv4 && a->ipv6 == b->ipv6;
}

static bool
family_asked(const struct resolver *r, int fam)
{
    return fam == 0 ? r->settings.ipv4 : r->settings.ipv6;
}

/* An answer's TTL (seconds) as the delay to the next question, within the bounds. */
static uint64_t
ttl_delay_ms(const struct resolver *r, uint32_t ttl_s)
{
    uint64_t ms = (uint64_t)ttl_s * 1000;
    if (ms > r->settings.max_ttl_ms)
        ms = r->settings.max_ttl_ms;
    if (ms < r->settings.min_ttl_ms)
        ms = r->settings.min_ttl_ms;
    return ms;
}

/* ---- the owner's notification ---- */

static void
on_notify(evutil_socket_t fd, short what, void *arg)
{
    struct resolver *r = arg;
    if (r->changed != NULL)
        r->changed(r->changed_arg);
}

/* Calls `changed` on the next loop pass: a zero timer fires once however often it is
 * added, and never from inside the call that changed something. */
static void
notify_owner(struct resolver *r)
{
    static const struct timeval now = {0, 0};
    if (!evtimer_pending(r->notify, NULL))
        evtimer_add(r->notify, &now);
}

/* ---- names: state changes ---- */

static void
name_schedule(struct rs_name *e, uint64_t delay_ms)
{
    struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)(delay_ms % 1000) * 1000};
    e->next_ms = clock_mono_ms() + delay_ms;
    evtimer_add(e->timer, &tv);
}

/* Makes `set` (owned, sorted, n > 0) or nothing (NULL, 0) the name's set. Returns whether
 * it differs from the one it replaces. */
static bool
name_set_replace(struct rs_name *e, struct sockaddr_storage *set, size_t n)
{
    bool changed = n != e->naddrs || (n > 0 && memcmp(set, e->addrs, n * sizeof(*set)) != 0);
    if (!changed) {
        free(set);
        return false;
    }
    free(e->addrs);
    e->addrs = set;
    e->naddrs = n;
    e->changed_ms = clock_mono_ms();
    return true;
}

/* Sorts, deduplicates and caps a set about to be taken; returns its size. */
static size_t
name_trim(struct rs_name *e, struct sockaddr_storage *set, size_t n)
{
    n = set_normalize(set, n);
    if (n > CFG_NAME_ADDRS_MAX) {
        if (!e->capped_logged)
            log_warn("backend name %s: %zu addresses, only the first %d (in address order) "
                     "are used",
                     e->host, n, CFG_NAME_ADDRS_MAX);
        e->capped_logged = true;
        n = CFG_NAME_ADDRS_MAX;
    }
    return n;
}

/* An answer with addresses: `set` (owned, trimmed, n > 0) becomes the name's set. */
static void
name_ok(struct rs_name *e, struct sockaddr_storage *set, size_t n, uint32_t ttl_s,
        bool from_hosts_file, uint64_t delay_ms)
{
    struct resolver *r = e->r;
    enum resolver_state prev = e->state;
    bool source_changed = e->from_hosts_file != from_hosts_file;
    bool changed = name_set_replace(e, set, n);

    e->state = RESOLVER_OK;
    e->from_hosts_file = from_hosts_file;
    e->ttl_s = ttl_s;
    e->error[0] = '\0';
    e->resolved_ms = clock_mono_ms();
    e->answers++;
    if (changed || prev == RESOLVER_PENDING)
        notify_owner(r);
    if (changed || source_changed || prev != RESOLVER_OK) {
        char list[RS_LOG_ADDRS * (INET6_ADDRSTRLEN + 2) + 32], how[RS_HOSTS_ERROR_MAX];
        set_format(e->addrs, e->naddrs, list, sizeof(list));
        if (from_hosts_file)
            snprintf(how, sizeof(how), "from %s", r->settings.hosts_file);
        else
            snprintf(how, sizeof(how), "ttl %" PRIu32 "s", ttl_s);
        log_info("backend name %s: %s%zu address%s (%s), %s", e->host,
                 prev == RESOLVER_FAILED ? "resolves again: " : "", e->naddrs, plural(e->naddrs),
                 list, how);
    }
    name_schedule(e, delay_ms);
}

/* An authoritative answer without an address: the set is emptied. */
static void
name_empty(struct rs_name *e, const char *why, bool has_ttl, uint32_t ttl_s)
{
    struct resolver *r = e->r;
    enum resolver_state prev = e->state;
    bool changed = name_set_replace(e, NULL, 0);

    e->state = RESOLVER_EMPTY;
    e->from_hosts_file = false;
    e->ttl_s = has_ttl ? ttl_s : 0;
    snprintf(e->error, sizeof(e->error), "%s", why);
    e->resolved_ms = clock_mono_ms();
    e->answers++;
    if (changed || prev == RESOLVER_PENDING)
        notify_owner(r);
    if (prev != RESOLVER_EMPTY)
        log_warn("backend name %s: %s: no backend for it", e->host, why);
    name_schedule(e, has_ttl ? ttl_delay_ms(r, ttl_s) : r->settings.retry_ms);
}

/* A failed attempt: the set is kept, asked again after the retry delay. */
static void
name_failed(struct rs_name *e, const char *why)
{
    struct resolver *r = e->r;
    enum resolver_state prev = e->state;

    e->state = RESOLVER_FAILED;
    snprintf(e->error, sizeof(e->error), "%s", why);
    e->failures++;
    r->totals.failures++;
    if (prev == RESOLVER_PENDING)
        notify_owner(r);
    if (prev != RESOLVER_FAILED) {
        if (e->naddrs > 0)
            log_warn("backend name %s: cannot resolve: %s; keeping %zu address%s", e->host, why,
                     e->naddrs, plural(e->naddrs));
        else
            log_warn("backend name %s: cannot resolve: %s; no address to keep", e->host, why);
    }
    name_schedule(e, r->settings.retry_ms);
}

/* ---- the hosts file ---- */

static bool
same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void
hosts_forget(struct resolver *r)
{
    hosts_file_free(r->hosts);
    r->hosts = NULL;
    r->hosts_known = false;
}

/* The file cannot be used: names go to DNS. Warned once per distinct reason. */
static void
hosts_unreadable(struct resolver *r, const char *why)
{
    hosts_forget(r);
    if (strcmp(r->hosts_error, why) != 0) {
        log_warn("resolvers: hosts file unreadable: %s; names are resolved by DNS", why);
        snprintf(r->hosts_error, sizeof(r->hosts_error), "%s", why);
    }
}

/* Reads the hosts file again when stat says it changed (identity, size, mtime). */
static void
hosts_refresh(struct resolver *r)
{
    const char *path = r->settings.hosts_file;
    char err[RS_HOSTS_ERROR_MAX], *text;
    struct stat st;
    size_t len, invalid;

    if (stat(path, &st) != 0) {
        snprintf(err, sizeof(err), "%s: %s", path, strerror(errno));
        hosts_unreadable(r, err);
        return;
    }
    if (r->hosts_known && same_file(&st, &r->hosts_st))
        return;
    if (hosts_file_read(path, &text, &len, &st, err, sizeof(err)) != 0) {
        hosts_unreadable(r, err);
        return;
    }
    struct hosts_file *hf = hosts_file_parse(text, len, &invalid);
    free(text);
    if (hf == NULL) {
        snprintf(err, sizeof(err), "%s: out of memory", path);
        hosts_unreadable(r, err);
        return;
    }
    hosts_file_free(r->hosts);
    r->hosts = hf;
    r->hosts_st = st;
    r->hosts_known = true;
    r->hosts_error[0] = '\0';
    log_info("resolvers: hosts file %s read: %zu entries, %zu invalid line%s skipped", path,
             hosts_file_count(hf), invalid, invalid == 1 ? "" : "s");
}

/* Answers `e` from the hosts file when it lists the name with an address of a family
 * asked. Returns whether it did. */
static bool
name_try_hosts_file(struct rs_name *e)
{
    struct resolver *r = e->r;
    struct sockaddr_storage *set;
    size_t n, kept = 0;

    if (r->settings.hosts_file == NULL)
        return false;
    hosts_refresh(r);
    if (r->hosts == NULL)
        return false;
    n = hosts_file_lookup(r->hosts, e->host, NULL, 0);
    if (n == 0)
        return false;
    set = calloc(n, sizeof(*set));
    if (set == NULL)
        return false; /* DNS may still answer */
    hosts_file_lookup(r->hosts, e->host, set, n);
    /* As "files dns" does per family: a name listed only with a family not asked is
     * resolved by DNS. */
    for (size_t i = 0; i < n; i++)
        if (family_asked(r, set[i].ss_family == AF_INET ? 0 : 1))
            set[kept++] = set[i];
    if (kept == 0) {
        free(set);
        return false;
    }
    kept = name_trim(e, set, kept);
    name_ok(e, set, kept, 0, true, r->settings.min_ttl_ms);
    return true;
}

/* ---- DNS ---- */

static void
attempt_reset(struct rs_attempt *a)
{
    free(a->got);
    memset(a, 0, sizeof(*a));
    for (int f = 0; f < RS_FAMILIES; f++)
        a->err[f] = RS_NOT_ASKED;
}

/* Detaches the name's queries in flight: evdns still calls each back once (deferred), and
 * the callback frees it. */
static void
name_detach(struct rs_name *e)
{
    for (int f = 0; f < RS_FAMILIES; f++) {
        struct rs_query *q = e->query[f];
        if (q == NULL)
            continue;
        e->query[f] = NULL;
        q->name = NULL;
        evdns_cancel_request(e->r->dns, q->req);
    }
    attempt_reset(&e->att);
}

static bool
is_authoritative(int err)
{
    return err == DNS_ERR_NONE || err == DNS_ERR_NOTEXIST || err == DNS_ERR_NODATA;
}

/* evdns's TTL as an unsigned count of seconds; RFC 2181 reads a negative one as 0. */
static uint32_t
ttl_of(int ttl)
{
    return ttl < 0 ? 0 : (uint32_t)ttl;
}

/* Every family asked has called back: the combined outcome. */
static void
name_attempt_done(struct rs_name *e)
{
    struct resolver *r = e->r;
    struct rs_attempt *a = &e->att;
    bool nxdomain = false, has_pos = false, has_neg = false;
    uint32_t pos_ttl = UINT32_MAX, neg_ttl = UINT32_MAX;

    for (int f = 0; f < RS_FAMILIES; f++) {
        int err = a->err[f];
        if (err == RS_NOT_ASKED)
            continue;
        if (err == RS_ERR_SEND) {
            attempt_reset(a);
            name_failed(e, "cannot send the query");
            return;
        }
        if (!is_authoritative(err)) {
            char why[64];
            snprintf(why, sizeof(why), "%s", evdns_err_to_string(err));
            attempt_reset(a);
            name_failed(e, why);
            return;
        }
        uint32_t ttl = ttl_of(a->ttl[f]);
        if (err == DNS_ERR_NONE) {
            has_pos = true;
            pos_ttl = ttl < pos_ttl ? ttl : pos_ttl;
        } else {
            nxdomain = nxdomain || err == DNS_ERR_NOTEXIST;
            /* Without an SOA in the answer evdns reports 0: no TTL to follow. */
            if (ttl > 0) {
                has_neg = true;
                neg_ttl = ttl < neg_ttl ? ttl : neg_ttl;
            }
        }
    }

    struct sockaddr_storage *set = a->got;
    size_t n = a->ngot;
    a->got = NULL;
    attempt_reset(a);
    if (n > 0)
        r->totals.answers++;
    else
        r->totals.empty++;
    if (n == 0 || !has_pos) {
        free(set);
        name_empty(e, nxdomain ? "no such name" : "no address record", has_neg, neg_ttl);
        return;
    }
    n = name_trim(e, set, n);
    name_ok(e, set, n, pos_ttl, false, ttl_delay_ms(r, pos_ttl));
}

/* Keeps an answer's addresses for the end of the attempt. */
static int
attempt_add(struct rs_attempt *a, char type, int count, const void *addresses)
{
    struct sockaddr_storage *grown;
    if (count <= 0 || addresses == NULL)
        return 0;
    grown = realloc(a->got, (a->ngot + (size_t)count) * sizeof(*grown));
    if (grown == NULL)
        return -1;
    a->got = grown;
    for (int i = 0; i < count; i++) {
        struct sockaddr_storage *ss = &a->got[a->ngot++];
        memset(ss, 0, sizeof(*ss));
        if (type == DNS_IPv4_A) {
            struct sockaddr_in *sin = (struct sockaddr_in *)ss;
            sin->sin_family = AF_INET;
            memcpy(&sin->sin_addr, (const char *)addresses + (size_t)i * 4, 4);
        } else {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
            sin6->sin6_family = AF_INET6;
            memcpy(&sin6->sin6_addr, (const char *)addresses + (size_t)i * 16, 16);
        }
    }
    return 0;
}

/* evdns's callback: exactly once per query, from the loop (deferred), also after a cancel
 * or the base's end (DNS_ERR_CANCEL, DNS_ERR_SHUTDOWN). */
static void
on_answer(int result, char type, int count, int ttl, void *addresses, void *arg)
{
    struct rs_query *q = arg;
    struct rs_name *e = q->name;
    int fam = q->fam;

    free(q);
    if (e == NULL)
        return; /* detached: the name is gone or asks anew */
    e->query[fam] = NULL;
    struct rs_attempt *a = &e->att;
    if (result == DNS_ERR_NONE) {
        char want = fam == 0 ? DNS_IPv4_A : DNS_IPv6_AAAA;
        if (type != want)
            result = DNS_ERR_UNKNOWN;
        else if (count <= 0)
            result = DNS_ERR_NODATA;
        else if (attempt_add(a, type, count, addresses) != 0)
            result = DNS_ERR_UNKNOWN; /* out of memory: a failure, the set is kept */
    }
    a->err[fam] = result;
    a->ttl[fam] = ttl;
    if (--a->outstanding == 0)
        name_attempt_done(e);
}

/* One attempt: the hosts file, else a query per family asked. Never calls back the owner
 * from here (notify_owner defers). */
static void
name_ask(struct rs_name *e)
{
    struct resolver *r = e->r;

    name_detach(e); /* nothing should be in flight; be sure */
    e->next_ms = 0;
    if (name_try_hosts_file(e))
        return;
    if (r->dns == NULL || evdns_base_count_nameservers(r->dns) == 0) {
        /* evdns would queue the query for good. */
        name_failed(e, no_nameserver);
        return;
    }
    for (int f = 0; f < RS_FAMILIES; f++) {
        if (!family_asked(r, f))
            continue;
        struct rs_query *q = calloc(1, sizeof(*q));
        if (q == NULL) {
            e->att.err[f] = RS_ERR_SEND;
            continue;
        }
        q->name = e;
        q->fam = f;
        /* evdns 2.1 calls back from the loop, never from inside the resolve call. */
        q->req = f == 0
                     ? evdns_base_resolve_ipv4(r->dns, e->host, DNS_QUERY_NO_SEARCH, on_answer, q)
                     : evdns_base_resolve_ipv6(r->dns, e->host, DNS_QUERY_NO_SEARCH, on_answer, q);
        if (q->req == NULL) {
            free(q);
            e->att.err[f] = RS_ERR_SEND;
            continue;
        }
        e->query[f] = q;
        e->att.err[f] = DNS_ERR_NONE; /* until it answers */
        e->att.outstanding++;
        r->totals.queries++;
    }
    if (e->att.outstanding == 0)
        name_attempt_done(e);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    name_ask(arg);
}

/* ---- names: the list ---- */

static int
host_cmp(const char *a, const char *b)
{
    return strcasecmp(a, b);
}

static int
names_cmp(const void *pa, const void *pb)
{
    const struct rs_name *const *a = pa, *const *b = pb;
    return host_cmp((*a)->host, (*b)->host);
}

/* The entry for `host` among the first `n` (sorted) names, or NULL. */
static struct rs_name *
name_find(const struct resolver *r, const char *host, size_t n)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = host_cmp(r->names[mid]->host, host);
        if (c == 0)
            return r->names[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static struct rs_name *
name_new(struct resolver *r, const char *host)
{
    struct rs_name *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->r = r;
    e->host = strdup(host);
    e->timer = evtimer_new(r->base, on_timer, e);
    if (e->host == NULL || e->timer == NULL) {
        if (e->timer != NULL)
            event_free(e->timer);
        free(e->host);
        free(e);
        return NULL;
    }
    for (char *p = e->host; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    e->state = RESOLVER_PENDING;
    attempt_reset(&e->att);
    return e;
}

static void
name_free(struct rs_name *e)
{
    name_detach(e);
    event_free(e->timer);
    free(e->addrs);
    free(e->host);
    free(e);
}

/* ---- the API ---- */

/* evdns's own messages ("Nameserver 10.0.0.2:53 has failed: request timed out.") into our
 * log, with our prefix, rather than libevent's default of bare stderr lines. (Its debug
 * messages are dropped before they get here unless libevent's debug logging is on.) */
static void
evdns_log(int is_warn, const char *msg)
{
    if (is_warn)
        log_warn("resolver: %s", msg);
    else
        log_info("resolver: %s", msg);
}

struct resolver *
resolver_new(struct event_base *base, resolver_changed_fn changed, void *arg)
{
    evdns_set_log_fn(evdns_log);
    struct resolver *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->base = base;
    r->changed = changed;
    r->changed_arg = arg;
    r->notify = evtimer_new(base, on_notify, r);
    if (r->notify == NULL) {
        free(r);
        return NULL;
    }
    return r;
}

/* Ends an evdns base whose queries are all detached. fail_requests is 0 on purpose: ours
 * were cancelled (their callbacks are already scheduled), and what remains is evdns's own
 * probe of a nameserver it marked down, whose callback, were it failed, would run after
 * its nameserver is freed (libevent 2.1.12: nameserver_probe_callback on a freed ns). */
static void
dns_free(struct evdns_base *dns)
{
    if (dns != NULL)
        evdns_base_free(dns, 0);
}

void
resolver_free(struct resolver *r)
{
    if (r == NULL)
        return;
    struct event_base *base = r->base;
    bool had_dns = r->dns != NULL;

    for (size_t i = 0; i < r->nnames; i++)
        name_free(r->names[i]);
    free(r->names);
    dns_free(r->dns);
    event_free(r->notify);
    hosts_file_free(r->hosts);
    settings_free(&r->settings);
    free(r);
    /* The detached queries' callbacks are deferred to the loop: one pass delivers them and
     * they free their queries. Not from inside a callback of `base`: libevent refuses a
     * nested loop (and 2.1's event_base_get_running_event cannot tell, as it crashes
     * outside one). */
    if (had_dns)
        event_base_loop(base, EVLOOP_NONBLOCK);
}

int
resolver_configure(struct resolver *r, const struct cfg_resolvers *rc, char *err, size_t errlen)
{
    struct rs_settings next;
    struct evdns_base *dns;
    char val[32];

    if (!rc->ipv4 && !rc->ipv6) {
        snprintf(err, errlen, "resolvers: no address family to ask (ipv4, ipv6)");
        return -1;
    }
    if (rc->timeout_ms == 0 || rc->attempts == 0) {
        snprintf(err, errlen, "resolvers: timeout and attempts must be above 0");
        return -1;
    }
    if (settings_copy(&next, rc) != 0) {
        snprintf(err, errlen, "resolvers: out of memory");
        return -1;
    }
    if (r->configured && settings_equal(&r->settings, &next)) {
        settings_free(&next);
        return 0;
    }

    /* Never EVDNS_BASE_INITIALIZE_NAMESERVERS: it reads resolv.conf's search and options. */
    dns = evdns_base_new(r->base, 0);
    if (dns == NULL) {
        snprintf(err, errlen, "resolvers: cannot make a DNS resolver (evdns_base_new)");
        goto fail_next;
    }
    for (size_t i = 0; i < next.nnameservers; i++) {
        const struct cfg_addr *ns = &next.nameservers[i];
        int rv =
            evdns_base_nameserver_sockaddr_add(dns, (const struct sockaddr *)&ns->sa, ns->salen, 0);
        /* 3: the same nameserver twice, which changes nothing. */
        if (rv != 0 && rv != 3) {
            snprintf(err, errlen, "resolvers.nameservers: %s refused by evdns (error %d)", ns->text,
                     rv);
            goto fail_dns;
        }
    }
    if (next.nnameservers == 0) {
        /* Nameservers only (no search, no options), and no made-up 127.0.0.1 when it names
         * none: a base without nameservers fails every name at once, which says why. */
        evdns_base_resolv_conf_parse(
            dns, DNS_OPTION_NAMESERVERS | DNS_OPTION_NAMESERVERS_NO_DEFAULT, "/etc/resolv.conf");
    }
    snprintf(val, sizeof(val), "%" PRIu32 ".%03" PRIu32, next.timeout_ms / 1000,
             next.timeout_ms % 1000);
    if (evdns_base_set_option(dns, "timeout:", val) != 0) {
        snprintf(err, errlen, "resolvers.timeout: evdns refused %s s", val);
        goto fail_dns;
    }
    snprintf(val, sizeof(val), "%" PRIu32, next.attempts);
    if (evdns_base_set_option(dns, "attempts:", val) != 0) {
        snprintf(err, errlen, "resolvers.attempts: evdns refused %s", val);
        goto fail_dns;
    }

    /* Nothing can fail from here: the old base goes, every name asks the new one. */
    for (size_t i = 0; i < r->nnames; i++)
        name_detach(r->names[i]);
    dns_free(r->dns);
    r->dns = dns;
    if ((r->settings.hosts_file == NULL) != (next.hosts_file == NULL) ||
        (next.hosts_file != NULL && strcmp(r->settings.hosts_file, next.hosts_file) != 0)) {
        hosts_forget(r);
        r->hosts_error[0] = '\0';
    }
    settings_free(&r->settings);
    r->settings = next;
    r->configured = true;
    const struct rs_settings *set = &r->settings;
    int nns = evdns_base_count_nameservers(dns);
    log_info("resolvers: %d nameserver%s%s, asking %s, timeout %" PRIu32 "ms x %" PRIu32
             ", ttl %" PRIu32 "..%" PRIu32 "ms, retry %" PRIu32 "ms, hosts file %s",
             nns, nns == 1 ? "" : "s", set->nnameservers == 0 ? " from /etc/resolv.conf" : "",
             set->ipv4 && set->ipv6 ? "A and AAAA"
             : set->ipv4            ? "A"
                                    : "AAAA",
             set->timeout_ms, set->attempts, set->min_ttl_ms, set->max_ttl_ms, set->retry_ms,
             set->hosts_file != NULL ? set->hosts_file : "none");
    for (size_t i = 0; i < r->nnames; i++)
        name_schedule(r->names[i], 0);
    return 0;

fail_dns:
    evdns_base_free(dns, 0); /* no query was ever sent on it */
fail_next:
    settings_free(&next);
    return -1;
}

void
resolver_sync(struct resolver *r, const char *const *hosts, size_t n)
{
    size_t sorted = r->nnames, kept = 0;

    for (size_t i = 0; i < r->nnames; i++)
        r->names[i]->seen = false;
    /* Known names are found among the sorted ones; new ones go to the end for now. */
    for (size_t i = 0; i < n; i++) {
        if (hosts[i] == NULL || hosts[i][0] == '\0')
            continue;
        struct rs_name *e = name_find(r, hosts[i], sorted);
        if (e != NULL) {
            e->seen = true;
            continue;
        }
        if (r->nnames == r->capnames) {
            size_t cap = r->capnames ? r->capnames * 2 : 16;
            struct rs_name **grown = realloc(r->names, cap * sizeof(*grown));
            if (grown == NULL) {
                log_error("backend name %s: out of memory; not resolved", hosts[i]);
                continue;
            }
            r->names = grown;
            r->capnames = cap;
        }
        e = name_new(r, hosts[i]);
        if (e == NULL) {
            log_error("backend name %s: out of memory; not resolved", hosts[i]);
            continue;
        }
        e->seen = e->fresh = true;
        r->names[r->nnames++] = e;
    }
    if (r->nnames > sorted)
        qsort(r->names, r->nnames, sizeof(*r->names), names_cmp);

    /* Drop the names no longer listed, and a new name listed twice. */
    for (size_t i = 0; i < r->nnames; i++) {
        struct rs_name *e = r->names[i];
        if (kept > 0 && host_cmp(r->names[kept - 1]->host, e->host) == 0) {
            /* Only new names can repeat, as known ones were found above. */
            name_free(e);
            continue;
        }
        if (!e->seen) {
            log_debug("backend name %s: no longer used", e->host);
            name_free(e);
            continue;
        }
        r->names[kept++] = e;
    }
    r->nnames = kept;

    for (size_t i = 0; i < r->nnames; i++) {
        struct rs_name *e = r->names[i];
        if (!e->fresh)
            continue;
        e->fresh = false;
        /* Asked at once: from the loop's next pass, so that no callback runs from here. */
        if (r->configured)
            name_schedule(e, 0);
    }
}

size_t
resolver_addrs(const struct resolver *r, const char *host, struct sockaddr_storage *out, size_t max)
{
    const struct rs_name *e = name_find(r, host, r->nnames);
    size_t n;
    if (e == NULL)
        return 0;
    n = e->naddrs < max ? e->naddrs : max;
    if (n > 0)
        memcpy(out, e->addrs, n * sizeof(*out));
    return n;
}

bool
resolver_settled(const struct resolver *r)
{
    for (size_t i = 0; i < r->nnames; i++)
        if (r->names[i]->state == RESOLVER_PENDING)
            return false;
    return true;
}

void
resolver_each(const struct resolver *r, resolver_view_fn fn, void *arg)
{
    for (size_t i = 0; i < r->nnames; i++) {
        const struct rs_name *e = r->names[i];
        struct resolver_view v = {
            .host = e->host,
            .state = e->state,
            .from_hosts_file = e->from_hosts_file,
            .naddrs = e->naddrs,
            .ttl_s = e->ttl_s,
            .error = e->error,
            .changed_ms = e->changed_ms,
            .resolved_ms = e->resolved_ms,
            .next_ms = e->next_ms,
            .answers = e->answers,
            .failures = e->failures,
        };
        fn(arg, &v);
    }
}

const char *
resolver_state_name(enum resolver_state s)
{
    switch (s) {
    case RESOLVER_OK:
        return "ok";
    case RESOLVER_FAILED:
        return "failed";
    case RESOLVER_EMPTY:
        return "empty";
    default:
        return "pending";
    }
}

void
resolver_totals(const struct resolver *r, struct resolver_totals *out)
{
    *out = r->totals;
}
