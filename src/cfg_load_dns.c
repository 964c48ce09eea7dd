/* SPDX-License-Identifier: MIT */
/* Backends given by DNS name ("api-eu.internal.example:443") and the `resolvers` section
 * that says how names are resolved. Values and their checks only: resolver.c does the
 * resolving, on the main thread, and a generation is built with the addresses it has at
 * the time (cfg_load_opts.resolve), each one a backend of the region. A name never makes
 * a load fail for want of an answer: `meridian -t` does not resolve at all. */
#define _POSIX_C_SOURCE 200809L

#include "cfg_loader.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DNS_TIMEOUT_MIN_MS 100
#define DNS_TIMEOUT_MAX_MS 60000
#define DNS_ATTEMPTS_MAX 10
#define DNS_TTL_MIN_MS 100 /* the shortest min_ttl and retry: a name asked ten times a second */

static const char *const keys[] = {"nameservers", "hosts_file", "timeout", "attempts",
                                   "min_ttl",     "max_ttl",    "retry",   "families"};
enum { NAMESERVERS = 0, HOSTS_FILE, TIMEOUT, ATTEMPTS, MIN_TTL, MAX_TTL, RETRY, FAMILIES, NKEYS };
_Static_assert(NKEYS == sizeof(keys) / sizeof(keys[0]), "one enum entry per key");

/* ---- names ----------------------------------------------------------------------------- */

/* RFC 1123 host name: labels of letters, digits and '-' (not first or last), 1..63 bytes,
 * 253 in all, and a last label that is not all digits, so that a mistyped IPv4 address
 * ("256.1.1.1") is reported as one rather than looked up. One trailing dot is allowed. */
static bool
is_host_name(const char *s, size_t len)
{
    size_t label = 0;
    bool all_digits = true;

    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0 || len > CFG_NAME_MAX)
        return false;
    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? s[i] : '.';
        if (c == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return false;
            if (i == len && all_digits)
                return false;
            label = 0;
            all_digits = true;
            continue;
        }
        if (!isalnum((unsigned char)c) && !(c == '-' && label > 0))
            return false;
        all_digits = all_digits && isdigit((unsigned char)c);
        label++;
    }
    return true;
}

bool
cfg_load_dns_is_name(const char *text)
{
    const char *colon = strrchr(text, ':');
    return colon != NULL && text[0] != '[' && memchr(text, ':', (size_t)(colon - text)) == NULL &&
           is_host_name(text, (size_t)(colon - text));
}

bool
cfg_load_dns_name(struct loader *ld, const yaml_node_t *node, const char *path, const char *text,
                  struct cfg_backend_name *n)
{
    const char *colon = strrchr(text, ':');
    size_t hlen = (size_t)(colon - text);
    uint64_t port;
    char buf[QUOTE_BUF];

    if (!ld_parse_uint(colon + 1, 65535, &port) || port == 0 || strlen(colon + 1) > 5) {
        ld_report(ld, ld_node_line(node),
                  "%s: port %s is not a number 1..65535 (names look like "
                  "api-eu.internal.example:443)",
                  path, ld_quote(colon + 1, strlen(colon + 1), buf));
        return false;
    }
    if (text[hlen - 1] == '.')
        hlen--;
    n->host = malloc(hlen + 1);
    n->text = malloc(hlen + 8);
    if (n->host == NULL || n->text == NULL) {
        free(n->host);
        free(n->text);
        n->host = n->text = NULL;
        ld->oom = true;
        return false;
    }
    for (size_t i = 0; i < hlen; i++)
        n->host[i] = (char)tolower((unsigned char)text[i]);
    n->host[hlen] = '\0';
    n->port = (uint16_t)port;
    snprintf(n->text, hlen + 8, "%s:%u", n->host, (unsigned)port);
    return true;
}

/* Whether `a` is the address of a backend r already has. */
static bool
region_has(const struct cfg_region *r, const struct cfg_addr *a)
{
    for (size_t i = 0; i < r->nbackends; i++)
        if (strcmp(r->backends[i].addr.text, a->text) == 0)
            return true;
    return false;
}

void
cfg_load_dns_expand(struct loader *ld, struct cfg_region *r, struct cfg_backend *parsed,
                    struct cfg_backend_name *names, const bool *is_name, size_t n)
{
    struct sockaddr_storage(*addrs)[CFG_NAME_ADDRS_MAX] = NULL;
    size_t nnames = 0, total = 0, k = 0;

    for (size_t i = 0; i < n; i++)
        nnames += is_name[i];
    if (nnames > 0) {
        r->names = calloc(nnames, sizeof(*r->names));
        addrs = calloc(nnames, sizeof(*addrs));
        if (r->names == NULL || addrs == NULL) {
            ld->oom = true;
            goto out;
        }
    }
    /* The names first: each takes its entry's settings and gets its addresses. */
    for (size_t i = 0; i < n; i++) {
        if (!is_name[i])
            continue;
        struct cfg_backend_name *nm = &r->names[k];
        *nm = names[i];
        memset(&names[i], 0, sizeof(names[i]));
        nm->file_index = i;
        nm->weight = parsed[i].weight;
        nm->drain = parsed[i].drain;
        if (parsed[i].tls_own != NULL) {
            nm->tls = *parsed[i].tls_own;
            free(parsed[i].tls_own);
            parsed[i].tls_own = NULL;
        } else {
            cfg_load_backend_tls_copy(ld, &nm->tls, &r->tls);
        }
        /* The certificate is checked against the name unless the file says otherwise. (No
         * host: its entry was refused, and the load fails with that error.) */
        if (nm->tls.enabled && nm->tls.sni == NULL && nm->host != NULL)
            nm->tls.sni = ld_strdup(ld, nm->host);
        if (ld->opts->resolve != NULL && nm->host != NULL)
            nm->naddrs =
                ld->opts->resolve(ld->opts->resolve_ctx, nm->host, addrs[k], CFG_NAME_ADDRS_MAX);
        nm->nanswer = nm->naddrs;
        nm->answer_digest = cfg_addrs_digest(addrs[k], nm->naddrs);
        total += nm->naddrs;
        k++;
    }
    r->nnames = k;
    r->backends = calloc(n + total > 0 ? n + total : 1, sizeof(*r->backends));
    if (r->backends == NULL) {
        ld->oom = true;
        goto out;
    }
    /* Then the backends, in the file's order, a name's addresses where it stood. */
    k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_name[i]) {
            r->backends[r->nbackends] = parsed[i];
            r->backends[r->nbackends].file_index = i;
            memset(&parsed[i], 0, sizeof(parsed[i]));
            r->nbackends++;
            continue;
        }
        struct cfg_backend_name *nm = &r->names[k];
        size_t kept = 0;
        for (size_t a = 0; a < nm->naddrs; a++) {
            struct cfg_backend *b = &r->backends[r->nbackends];
            cfg_addr_set(&b->addr, &addrs[k][a], nm->port);
            /* An IP literal, or another name, already has it: one backend per address. */
            if (region_has(r, &b->addr)) {
                memset(b, 0, sizeof(*b));
                continue;
            }
            b->name = nm;
            b->file_index = i;
            b->weight = nm->weight;
            b->drain = nm->drain;
            b->tls_name = &nm->tls;
            r->nbackends++;
            kept++;
        }
        nm->naddrs = kept;
        k++;
    }
    ld->cfg->nnames += r->nnames;
out:
    free(addrs);
}

/* ---- resolvers ------------------------------------------------------------------------- */

static void
resolvers_defaults(struct loader *ld, struct cfg_resolvers *rs)
{
    rs->timeout_ms = CFG_DEFAULT_DNS_TIMEOUT_MS;
    rs->attempts = CFG_DEFAULT_DNS_ATTEMPTS;
    rs->min_ttl_ms = CFG_DEFAULT_DNS_MIN_TTL_MS;
    rs->max_ttl_ms = CFG_DEFAULT_DNS_MAX_TTL_MS;
    rs->retry_ms = CFG_DEFAULT_DNS_RETRY_MS;
    rs->ipv4 = rs->ipv6 = true;
    rs->hosts_file = ld_strdup(ld, CFG_DEFAULT_HOSTS_FILE);
}

void
cfg_load_dns_resolvers_absent(struct loader *ld)
{
    resolvers_defaults(ld, &ld->cfg->resolvers);
}

/* An IP literal, with a port or without one (53): "127.0.0.1", "127.0.0.1:5353", "::1",
 * "[::1]:5353". */
static void
load_nameserver(struct loader *ld, const yaml_node_t *node, const char *path, struct cfg_addr *a)
{
    char buf[QUOTE_BUF], with_port[80];
    unsigned char ip[sizeof(struct in6_addr)];
    const char *text = ld_scalar(ld, node, path);

    if (text == NULL)
        return;
    if (strlen(text) < 64 && inet_pton(AF_INET, text, ip) == 1)
        snprintf(with_port, sizeof(with_port), "%s:53", text);
    else if (strlen(text) < 64 && inet_pton(AF_INET6, text, ip) == 1)
        snprintf(with_port, sizeof(with_port), "[%s]:53", text);
    else
        snprintf(with_port, sizeof(with_port), "%.70s", text);
    if (cfg_parse_addr(with_port, a) == 0)
        return;
    ld_report(ld, ld_node_line(node),
              "%s: expected a nameserver's IP address, with a port or not (127.0.0.53, "
              "\"[::1]:5353\"), got %s",
              path, ld_describe(node, buf));
}

static void
load_nameservers(struct loader *ld, const yaml_node_t *node, struct cfg_resolvers *rs)
{
    char sub[PATH_BUF];
    size_t n;

    if (!ld_expect(ld, node, YAML_SEQUENCE_NODE, "resolvers.nameservers"))
        return;
    n = ld_seq_len(node);
    if (n == 0 || n > CFG_DNS_NAMESERVERS_MAX) {
        ld_report(ld, ld_node_line(node),
                  "resolvers.nameservers: expected 1..%d addresses, got %zu (leave the key out "
                  "to use those of /etc/resolv.conf)",
                  CFG_DNS_NAMESERVERS_MAX, n);
        return;
    }
    rs->nameservers = calloc(n, sizeof(*rs->nameservers));
    if (rs->nameservers == NULL) {
        ld->oom = true;
        return;
    }
    rs->nnameservers = n;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = ld_seq_item(ld, node, i);
        if (item == NULL)
            return;
        ld_subpath_index(sub, "resolvers.nameservers", i);
        load_nameserver(ld, item, sub, &rs->nameservers[i]);
    }
}

/* A path, or false for none. */
static void
load_hosts_file(struct loader *ld, const yaml_node_t *node, struct cfg_resolvers *rs)
{
    const char *text = ld_scalar(ld, node, "resolvers.hosts_file");
    char *path = NULL;

    if (text == NULL)
        return;
    free(rs->hosts_file);
    rs->hosts_file = NULL;
    if (strcmp(text, "false") == 0)
        return;
    ld_path(ld, node, "resolvers.hosts_file", "a hosts file (or false for none)", &path);
    rs->hosts_file = path;
}

static void
load_families(struct loader *ld, const yaml_node_t *node, struct cfg_resolvers *rs)
{
    static const char *const choices[] = {"ipv4", "ipv6"};
    size_t picked[CHOICES_MAX], n;

    if (!ld_choices(ld, node, "resolvers.families", choices, 2, true, "ipv4 or ipv6", picked, &n))
        return;
    rs->ipv4 = rs->ipv6 = false;
    for (size_t i = 0; i < n; i++)
        *(picked[i] == 0 ? &rs->ipv4 : &rs->ipv6) = true;
}

/* A duration within [min_ms, max_ms], said in the message as `range`. */
static void
load_bounded(struct loader *ld, const yaml_node_t *node, const char *path, uint32_t min_ms,
             uint32_t max_ms, const char *range, uint32_t *out)
{
    uint32_t v = 0;
    char buf[QUOTE_BUF];

    ld_duration(ld, node, path, false, &v);
    if (v == 0)
        return;
    if (v < min_ms || v > max_ms) {
        ld_report(ld, ld_node_line(node), "%s: %s is out of range %s", path, ld_describe(node, buf),
                  range);
        return;
    }
    *out = v;
}

void
cfg_load_dns_resolvers(struct loader *ld, const yaml_node_t *node)
{
    struct cfg_resolvers *rs = &ld->cfg->resolvers;
    struct field f[NKEYS];
    uint64_t v;

    resolvers_defaults(ld, rs);
    rs->line = ld_line_int(ld_node_line(node));
    if (!ld_map_collect(ld, node, "resolvers", keys, NKEYS, f))
        return;
    if (f[NAMESERVERS].value != NULL)
        load_nameservers(ld, f[NAMESERVERS].value, rs);
    if (f[HOSTS_FILE].value != NULL)
        load_hosts_file(ld, f[HOSTS_FILE].value, rs);
    if (f[TIMEOUT].value != NULL)
        load_bounded(ld, f[TIMEOUT].value, "resolvers.timeout", DNS_TIMEOUT_MIN_MS,
                     DNS_TIMEOUT_MAX_MS, "100ms..60s", &rs->timeout_ms);
    if (f[ATTEMPTS].value != NULL &&
        ld_count(ld, f[ATTEMPTS].value, "resolvers.attempts", 1, DNS_ATTEMPTS_MAX, &v))
        rs->attempts = (uint32_t)v;
    if (f[MIN_TTL].value != NULL)
        load_bounded(ld, f[MIN_TTL].value, "resolvers.min_ttl", DNS_TTL_MIN_MS, 24u * 3600 * 1000,
                     "100ms..24h", &rs->min_ttl_ms);
    if (f[MAX_TTL].value != NULL)
        load_bounded(ld, f[MAX_TTL].value, "resolvers.max_ttl", DNS_TTL_MIN_MS, 24u * 3600 * 1000,
                     "100ms..24h", &rs->max_ttl_ms);
    if (f[RETRY].value != NULL)
        load_bounded(ld, f[RETRY].value, "resolvers.retry", DNS_TTL_MIN_MS, 24u * 3600 * 1000,
                     "100ms..24h", &rs->retry_ms);
    if (f[FAMILIES].value != NULL)
        load_families(ld, f[FAMILIES].value, rs);
    if (rs->min_ttl_ms > rs->max_ttl_ms)
        ld_report(ld, ld_node_line(f[MIN_TTL].value ? f[MIN_TTL].value : f[MAX_TTL].value),
                  "resolvers: min_ttl (%ums) is longer than max_ttl (%ums)",
                  (unsigned)rs->min_ttl_ms, (unsigned)rs->max_ttl_ms);
}
