/* SPDX-License-Identifier: MIT */
/* The rate_limit section: the growth phases and their budgets, which phase is active, how a
 * phase's budget is shared out among regions, and how to reach the Redis that keeps the
 * fleet's shared bucket. Values and their checks only: the limiter and its Redis link run
 * on what this file fills in, and nothing here talks to Redis. */
#define _POSIX_C_SOURCE 200809L

#include "cfg_loader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Budgets are counted in doubles (here, in the worker's bucket and in Redis's Lua, whose
 * numbers are doubles too). A billion a second is far past any fleet and keeps a token's
 * fraction well inside a double's precision. */
#define RL_AMOUNT_MAX 1e9
#define RL_AMOUNT_MAX_TEXT "1000000000"
/* A request waits on Redis for at most this long: past 10 s a client has given up anyway. */
#define REDIS_TIMEOUT_MIN_MS 1
#define REDIS_TIMEOUT_MAX_MS 10000
/* Redis's default `databases 16`. */
#define REDIS_DB_MAX 15
#define KEY_PREFIX_MAX 64
#define DEFAULT_KEY_PREFIX "meridian"
/* Phase and region lists quoted back in "no phase of that name" messages. */
#define NAME_LIST_BUF 256

static const char name_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";

static const char *const section_keys[] = {"phase", "phases", "scope", "redis", "on_redis_failure"};
enum { SEC_PHASE = 0, SEC_PHASES, SEC_SCOPE, SEC_REDIS, SEC_FAILURE, NSECTION_KEYS };
_Static_assert(NSECTION_KEYS == sizeof(section_keys) / sizeof(section_keys[0]), "one per key");

static const char *const phase_keys[] = {"rps", "burst", "regions"};
enum { PH_RPS = 0, PH_BURST, PH_REGIONS, NPHASE_KEYS };
_Static_assert(NPHASE_KEYS == sizeof(phase_keys) / sizeof(phase_keys[0]), "one per key");

static const char *const redis_keys[] = {"address", "cluster", "password",
                                         "db",      "timeout", "key_prefix"};
enum { RD_ADDRESS = 0, RD_CLUSTER, RD_PASSWORD, RD_DB, RD_TIMEOUT, RD_KEY_PREFIX, NREDIS_KEYS };
_Static_assert(NREDIS_KEYS == sizeof(redis_keys) / sizeof(redis_keys[0]), "one per key");

/* In the order of enum cfg_rl_scope and enum cfg_rl_failure. */
static const char *const scope_names[] = {"global", "region"};
static const char *const failure_names[] = {"local", "open", "closed"};
_Static_assert(CFG_RL_GLOBAL == 0 && CFG_RL_REGION == 1, "scope_names");
_Static_assert(CFG_RL_FAIL_LOCAL == 0 && CFG_RL_FAIL_OPEN == 1 && CFG_RL_FAIL_CLOSED == 2,
               "failure_names");

/* ---- small pieces -------------------------------------------------------------------- */

/* Phase and region names go into Redis key names, response headers and metrics labels. */
static bool
is_name(const char *s)
{
    size_t len = strlen(s);
    return len > 0 && len <= LOAD_NAME_MAX && strspn(s, name_chars) == len;
}

/* "parent.key" for a key of a mapping whose keys are names of the file's own choosing
 * (phases, a phase's regions): the key as written when it is a name, else quoted, so that
 * a message stays on one line whatever the key holds. */
static void
key_path(char *buf, const char *parent, const char *key)
{
    char quoted[QUOTE_BUF];

    if (is_name(key))
        ld_subpath(buf, parent, key);
    else
        ld_subpath(buf, parent, ld_quote(key, strlen(key), quoted));
}

/* Appends ", name" (or "name" first) to the list in `out` (NAME_LIST_BUF bytes, `*off` of
 * them used), which ends in "..." once a name no longer fits whole. */
static void
list_add(char *out, size_t *off, const char *name)
{
    size_t room = NAME_LIST_BUF - 4; /* the last 4 bytes: "..." and the NUL */
    int n;

    if (*off >= room)
        return;
    n = snprintf(out + *off, room - *off, "%s%s", *off > 0 ? ", " : "", name);
    if (n < 0 || (size_t)n >= room - *off) {
        memcpy(out + *off, "...", 4);
        *off = room;
        return;
    }
    *off += (size_t)n;
}

/* The text of a key in a mapping we walk ourselves, or NULL (reported) when it is none.
 * `noun` says what the key names ("a phase name"). */
static const char *
key_text(struct loader *ld, const yaml_node_t *key, const char *path, const char *noun)
{
    char buf[QUOTE_BUF];

    if (key->type != YAML_SCALAR_NODE) {
        ld_report(ld, ld_node_line(key), "%s: expected %s as the key, got %s", path, noun,
                  ld_describe(key, buf));
        return NULL;
    }
    return ld_scalar(ld, key, path);
}

static size_t
map_len(const yaml_node_t *node)
{
    return (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
}

/* A plain decimal number: digits with at most one ".", as in 100, 2.5, .5. No sign, no
 * exponent, no hex, no inf: what a person writes for a rate or a share. */
static bool
parse_decimal(const char *text, size_t len, double *out)
{
    char num[32], *end;

    if (len == 0 || len >= sizeof(num) || strspn(text, "0123456789.") < len)
        return false;
    memcpy(num, text, len);
    num[len] = '\0';
    if (strchr(num, '.') != strrchr(num, '.') || strcspn(num, "0123456789") == len)
        return false;
    *out = strtod(num, &end);
    return *end == '\0';
}

/* One of `names` (spelled exactly); its index in *out. */
static void
load_choice(struct loader *ld, const yaml_node_t *node, const char *path, const char *const *names,
            size_t nnames, const char *expected, unsigned *out)
{
    char buf[QUOTE_BUF];
    const char *text = ld_scalar(ld, node, path);

    if (text == NULL)
        return;
    for (size_t i = 0; i < nnames; i++) {
        if (strcmp(text, names[i]) == 0) {
            *out = (unsigned)i;
            return;
        }
    }
    ld_report(ld, ld_node_line(node), "%s: expected %s, got %s", path, expected,
              ld_describe(node, buf));
}

/* ---- a phase ----------------------------------------------------------------------- */

/* rps (min 0, exclusive) or burst (min 1): a plain decimal number up to RL_AMOUNT_MAX. */
static bool
load_amount(struct loader *ld, const yaml_node_t *node, const char *path, double min, bool min_ok,
            const char *expected, double *out)
{
    char buf[QUOTE_BUF];
    const char *text = ld_scalar(ld, node, path);
    double v;

    if (text == NULL)
        return false;
    if (!parse_decimal(text, strlen(text), &v) || v < min || (v == min && !min_ok) ||
        v > RL_AMOUNT_MAX) {
        ld_report(ld, ld_node_line(node), "%s: expected %s, got %s", path, expected,
                  ld_describe(node, buf));
        return false;
    }
    *out = v;
    return true;
}

/* A region's share of a phase: "40%", or a plain number, which is a percentage too, above
 * 0 and at most 100. Stores the percentage. */
static bool
load_percent(struct loader *ld, const yaml_node_t *node, const char *path, double *out)
{
    char buf[QUOTE_BUF];
    const char *text = ld_scalar(ld, node, path);
    size_t len;
    double v;

    if (text == NULL)
        return false;
    len = strlen(text);
    if (len > 0 && text[len - 1] == '%')
        len--;
    if (!parse_decimal(text, len, &v) || !(v > 0 && v <= 100)) {
        ld_report(ld, ld_node_line(node),
                  "%s: expected a share above 0 and at most 100%%, like 40%% (a plain number "
                  "is a percentage too), got %s",
                  path, ld_describe(node, buf));
        return false;
    }
    *out = v;
    return true;
}

/* Whether every region has its name: when one lost it to an error of its own, an unknown
 * name here says nothing new, and is not reported. */
static bool
regions_named(const struct cfg *cfg)
{
    if (cfg->nregions == 0)
        return false;
    for (size_t i = 0; i < cfg->nregions; i++)
        if (cfg->regions[i].name == NULL)
            return false;
    return true;
}

/* A phase's `regions:`, into p->region_share. The regions section is loaded before this one
 * (sections[] in cfg_load.c), whatever the file's order, so names resolve here and now.
 * An empty mapping lists none, as leaving it out does: equal shares, region_share NULL. */
static void
load_shares(struct loader *ld, const yaml_node_t *node, const char *path, struct cfg_rl_phase *p)
{
    const struct cfg *cfg = ld->cfg;
    char sub[PATH_BUF], list[NAME_LIST_BUF];
    size_t *first_line = NULL, nlisted = 0, off = 0;
    double *share = NULL, sum = 0;
    bool ok = true, named = regions_named(cfg);

    if (!ld_expect(ld, node, YAML_MAPPING_NODE, path) || map_len(node) == 0 || cfg->nregions == 0)
        return;
    share = calloc(cfg->nregions, sizeof(*share));
    first_line = calloc(cfg->nregions, sizeof(*first_line));
    if (share == NULL || first_line == NULL) {
        ld->oom = true;
        goto free_arrays;
    }
    list[0] = '\0';
    for (size_t i = 0; i < cfg->nregions && named; i++)
        list_add(list, &off, cfg->regions[i].name);

    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = ld_node_at(ld, pair->key);
        yaml_node_t *value = ld_node_at(ld, pair->value);
        const char *name;
        double pct;
        int index;

        if (key == NULL || value == NULL)
            goto free_arrays;
        if ((name = key_text(ld, key, path, "a region name")) == NULL) {
            ok = false;
            continue;
        }
        key_path(sub, path, name);
        if (!load_percent(ld, value, sub, &pct)) {
            ok = false;
            pct = -1;
        }
        index = cfg_region_index(cfg, name);
        if (index < 0) {
            if (named)
                ld_report(ld, ld_node_line(key), "%s: no region of that name (regions: %s)", sub,
                          list);
            ok = false;
            continue;
        }
        if (first_line[index] != 0) {
            ld_report(ld, ld_node_line(key), "duplicate key \"%s\" in %s (first at line %zu)", name,
                      path, first_line[index]);
            ok = false;
            continue;
        }
        first_line[index] = ld_node_line(key);
        if (pct < 0)
            continue;
        share[index] = pct / 100;
        sum += pct;
        nlisted++;
    }
    /* Over 100 with the shares that are good is wrong whatever the others say. A little
     * over is what adding decimal fractions in binary does (33.4 + 33.3 + 33.3): that is
     * 100, and the regions left out get nothing. */
    if (sum > 100 + 1e-9) {
        ld_report(ld, ld_node_line(node), "%s: the shares add up to %.10g%%, more than 100%%", path,
                  sum);
        goto free_arrays;
    }
    if (!ok)
        goto free_arrays;
    if (nlisted < cfg->nregions) {
        /* The same tolerance as above: 99.99999999999999 is 100, and what is left is 0
         * (a region with no share, refused by budget.c), not 1e-16 of the budget. */
        double rest = sum < 100 - 1e-9 ? (1 - sum / 100) / (double)(cfg->nregions - nlisted) : 0;
        for (size_t i = 0; i < cfg->nregions; i++)
            if (first_line[i] == 0)
                share[i] = rest;
    }
    p->region_share = share;
    share = NULL;

free_arrays:
    free(share);
    free(first_line);
}

/* The value of one phase: { rps, burst, regions }. */
static void
load_phase(struct loader *ld, const yaml_node_t *node, const char *path, struct cfg_rl_phase *p)
{
    struct field f[NPHASE_KEYS];
    char sub[PATH_BUF];
    bool has_rps = false;

    if (!ld_map_collect(ld, node, path, phase_keys, NPHASE_KEYS, f))
        return;
    ld_require(ld, node, path, "rps", &f[PH_RPS]);
    if (f[PH_RPS].value != NULL) {
        ld_subpath(sub, path, "rps");
        has_rps = load_amount(ld, f[PH_RPS].value, sub, 0, false,
                              "a rate above 0 and at most " RL_AMOUNT_MAX_TEXT
                              " requests per second, like 100 or 2.5",
                              &p->rps);
    }
    if (f[PH_BURST].value != NULL) {
        ld_subpath(sub, path, "burst");
        load_amount(ld, f[PH_BURST].value, sub, 1, true,
                    "a number of requests from 1 to " RL_AMOUNT_MAX_TEXT
                    " that may pass at once, like 200",
                    &p->burst);
    } else if (has_rps) {
        /* One second's worth; at least one request, or a rate below 1/s would admit none. */
        p->burst = p->rps >= 1 ? p->rps : 1;
    }
    if (f[PH_REGIONS].value != NULL && !ld->aborted) {
        ld_subpath(sub, path, "regions");
        load_shares(ld, f[PH_REGIONS].value, sub, p);
    }
}

/* rate_limit.phases: a mapping of phase names to phases, in the file's order. Returns
 * whether every phase has its name, so that `phase:` may be looked up among them. */
static bool
load_phases(struct loader *ld, const yaml_node_t *node, struct cfg_rate_limit *rl)
{
    static const char path[] = "rate_limit.phases";
    char sub[PATH_BUF], buf[QUOTE_BUF];
    bool names_ok = true;
    size_t n;

    if (!ld_expect(ld, node, YAML_MAPPING_NODE, path))
        return false;
    n = map_len(node);
    /* Past the cap, the phases are still walked, for their own errors. */
    if (n == 0 || n > CFG_RL_PHASES_MAX)
        ld_report(ld, ld_node_line(node), "%s: expected 1 to %d phases, got %zu", path,
                  CFG_RL_PHASES_MAX, n);
    if (n == 0)
        return false;
    rl->phases = calloc(n, sizeof(*rl->phases));
    if (rl->phases == NULL) {
        ld->oom = true;
        return false;
    }

    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = ld_node_at(ld, pair->key);
        yaml_node_t *value = ld_node_at(ld, pair->value);
        struct cfg_rl_phase *p;
        const char *name;
        size_t first = 0;

        if (key == NULL || value == NULL)
            return false;
        if ((name = key_text(ld, key, path, "a phase name")) == NULL) {
            names_ok = false;
            continue;
        }
        key_path(sub, path, name);
        while (first < rl->nphases &&
               (rl->phases[first].name == NULL || strcmp(rl->phases[first].name, name) != 0))
            first++;
        if (first < rl->nphases) {
            ld_report(ld, ld_node_line(key), "duplicate key \"%s\" in %s (first at line %d)", name,
                      path, rl->phases[first].line);
            continue;
        }
        p = &rl->phases[rl->nphases++];
        p->line = ld_line_int(ld_node_line(key));
        if (is_name(name)) {
            p->name = ld_strdup(ld, name);
        } else {
            ld_report(ld, ld_node_line(key),
                      "%s: expected a phase name of 1 to %d letters, digits, \".\", \"_\" or "
                      "\"-\" (it goes into Redis keys and response headers), got %s",
                      path, LOAD_NAME_MAX, ld_describe(key, buf));
            names_ok = false;
        }
        load_phase(ld, value, sub, p);
    }
    return names_ok;
}

/* rate_limit.phase: the index of the phase it names. */
static void
load_active(struct loader *ld, const yaml_node_t *node, struct cfg_rate_limit *rl)
{
    char buf[QUOTE_BUF], list[NAME_LIST_BUF];
    const char *text = ld_scalar(ld, node, "rate_limit.phase");
    size_t off = 0;

    if (text == NULL)
        return;
    for (size_t i = 0; i < rl->nphases; i++) {
        if (rl->phases[i].name != NULL && strcmp(rl->phases[i].name, text) == 0) {
            rl->active = i;
            return;
        }
    }
    list[0] = '\0';
    for (size_t i = 0; i < rl->nphases; i++)
        if (rl->phases[i].name != NULL)
            list_add(list, &off, rl->phases[i].name);
    ld_report(ld, ld_node_line(node),
              "rate_limit.phase: expected the name of one of rate_limit.phases (%s), got %s", list,
              ld_describe(node, buf));
}

/* ---- redis ------------------------------------------------------------------------- */

/* One Redis address: an IP literal and a port, which may be left out for Redis's own. */
static bool
load_redis_addr(struct loader *ld, const yaml_node_t *node, const char *path, struct cfg_addr *addr)
{
    const char *text = ld_scalar(ld, node, path);
    char with_port[QUOTE_BUF];
    yaml_node_t portless;
    size_t len;

    if (text == NULL)
        return false;
    if (cfg_parse_addr(text, addr) == 0)
        return true;
    len = strlen(text);
    if (len == 0 || len + 8 > sizeof(with_port) ||
        (strchr(text, ':') != NULL && !(text[0] == '[' && text[len - 1] == ']')))
        return ld_addr(ld, node, path, addr); /* explains what is wrong */
    snprintf(with_port, sizeof(with_port), "%s:%d", text, CFG_DEFAULT_REDIS_PORT);
    /* ld_addr explains a refusal from the text it is given: let it see the address with
     * the port it would have, so that "localhost" is told it is a name, not that it lacks a
     * port. The copy keeps the node's line. */
    portless = *node;
    portless.data.scalar.value = (yaml_char_t *)with_port;
    portless.data.scalar.length = strlen(with_port);
    return ld_addr(ld, &portless, path, addr);
}

/* redis.address: one address, or a sequence of them (a cluster's seed nodes). */
static void
load_redis_addrs(struct loader *ld, const yaml_node_t *node, const char *path, struct cfg_redis *r)
{
    char sub[PATH_BUF];
    struct uniq *seen;
    size_t n, nseen = 0;

    if (node->type != YAML_SEQUENCE_NODE) {
        r->addrs = calloc(1, sizeof(*r->addrs));
        if (r->addrs == NULL) {
            ld->oom = true;
            return;
        }
        if (load_redis_addr(ld, node, path, &r->addrs[0]))
            r->naddrs = 1;
        return;
    }
    n = ld_seq_len(node);
    if (n == 0 || n > CFG_REDIS_SEEDS_MAX) {
        ld_report(ld, ld_node_line(node), "%s: expected 1 to %d addresses, got %zu", path,
                  CFG_REDIS_SEEDS_MAX, n);
        return;
    }
    r->addrs = calloc(n, sizeof(*r->addrs));
    seen = calloc(n, sizeof(*seen));
    if (r->addrs == NULL || seen == NULL) {
        ld->oom = true;
        goto free_seen;
    }
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = ld_seq_item(ld, node, i);

        if (item == NULL)
            goto free_seen;
        ld_subpath_index(sub, path, i);
        if (load_redis_addr(ld, item, sub, &r->addrs[r->naddrs])) {
            seen[nseen++] = (struct uniq){r->addrs[r->naddrs].text, ld_node_line(item), i};
            r->naddrs++;
        }
    }
    ld_check_unique(ld, seen, nseen, path, NULL, "address");
    /* Several addresses are a cluster's seed nodes; for one server they would read as a
     * failover list, which Meridian does not have. */
    if (n > 1 && !r->cluster)
        ld_report(ld, ld_node_line(node),
                  "%s: %zu addresses are seed nodes of a Redis Cluster and need \"cluster: "
                  "true\"; a single Redis server has one address",
                  path, n);

free_seen:
    free(seen);
}

/* The prefix of every key Meridian writes. Meridian puts the {hash tag} after it itself,
 * so braces would make a second tag; spaces and the like would make keys hard to type. */
static void
load_key_prefix(struct loader *ld, const yaml_node_t *node, const char *path, char **out)
{
    static const char prefix_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                       "0123456789_.:-";
    char buf[QUOTE_BUF];
    const char *text = ld_scalar(ld, node, path);
    size_t len;
    char *copy;

    if (text == NULL)
        return;
    len = strlen(text);
    if (len == 0 || len > KEY_PREFIX_MAX || strspn(text, prefix_chars) != len) {
        ld_report(ld, ld_node_line(node),
                  "%s: expected 1 to %d letters, digits, \"_\", \".\", \":\" or \"-\" (no "
                  "braces: Meridian adds the hash tag itself), got %s",
                  path, KEY_PREFIX_MAX, ld_describe(node, buf));
        return;
    }
    if ((copy = ld_strdup(ld, text)) != NULL) {
        free(*out);
        *out = copy;
    }
}

static void
load_redis(struct loader *ld, const yaml_node_t *node, struct cfg_redis *r)
{
    static const char path[] = "rate_limit.redis";
    struct field f[NREDIS_KEYS];
    char sub[PATH_BUF], buf[QUOTE_BUF];
    uint64_t db;

    if (!ld_map_collect(ld, node, path, redis_keys, NREDIS_KEYS, f))
        return;
    ld_require(ld, node, path, "address", &f[RD_ADDRESS]);
    /* First: what the address and db may be depends on it. */
    if (f[RD_CLUSTER].value != NULL)
        ld_bool(ld, f[RD_CLUSTER].value, "rate_limit.redis.cluster", &r->cluster);
    if (f[RD_ADDRESS].value != NULL && !ld->aborted)
        load_redis_addrs(ld, f[RD_ADDRESS].value, "rate_limit.redis.address", r);
    if (f[RD_TIMEOUT].value != NULL) {
        uint32_t ms = UINT32_MAX;
        ld_subpath(sub, path, "timeout");
        ld_duration(ld, f[RD_TIMEOUT].value, sub, true, &ms);
        if (ms >= REDIS_TIMEOUT_MIN_MS && ms <= REDIS_TIMEOUT_MAX_MS)
            r->timeout_ms = ms;
        else if (ms != UINT32_MAX)
            ld_report(ld, ld_node_line(f[RD_TIMEOUT].value), "%s: %s is out of range 1ms..10s", sub,
                      ld_describe(f[RD_TIMEOUT].value, buf));
    }
    if (f[RD_PASSWORD].value != NULL) {
        /* Any bytes: AUTH takes a binary-safe string. "" is no password at all. */
        const char *text = ld_scalar(ld, f[RD_PASSWORD].value, "rate_limit.redis.password");
        if (text != NULL && text[0] != '\0')
            r->password = ld_strdup(ld, text);
    }
    if (f[RD_DB].value != NULL &&
        ld_count(ld, f[RD_DB].value, "rate_limit.redis.db", 0, REDIS_DB_MAX, &db)) {
        /* Redis Cluster has only database 0 and refuses SELECT of any other. */
        if (db != 0 && r->cluster)
            ld_report(ld, ld_node_line(f[RD_DB].value),
                      "rate_limit.redis.db: must be 0 with \"cluster: true\": Redis Cluster has "
                      "only database 0");
        else
            r->db = (uint32_t)db;
    }
    if (f[RD_KEY_PREFIX].value != NULL)
        load_key_prefix(ld, f[RD_KEY_PREFIX].value, "rate_limit.redis.key_prefix", &r->key_prefix);
}

/* ---- the section --------------------------------------------------------------------- */

void
cfg_load_ratelimit_section(struct loader *ld, const yaml_node_t *node)
{
    struct cfg_rate_limit *rl = &ld->cfg->rate_limit;
    struct field f[NSECTION_KEYS];
    unsigned choice;
    bool names_ok = false;

    if (!ld_expect(ld, node, YAML_MAPPING_NODE, "rate_limit"))
        return;
    rl->enabled = true;
    rl->line = ld_line_int(ld_node_line(node));
    rl->redis.timeout_ms = CFG_DEFAULT_REDIS_TIMEOUT_MS;
    rl->redis.key_prefix = ld_strdup(ld, DEFAULT_KEY_PREFIX);
    if (!ld_map_collect(ld, node, "rate_limit", section_keys, NSECTION_KEYS, f))
        return;
    ld_require(ld, node, "rate_limit", "phase", &f[SEC_PHASE]);
    ld_require(ld, node, "rate_limit", "phases", &f[SEC_PHASES]);
    ld_require(ld, node, "rate_limit", "redis", &f[SEC_REDIS]);

    if (f[SEC_PHASES].value != NULL && !ld->aborted)
        names_ok = load_phases(ld, f[SEC_PHASES].value, rl);
    /* A phase that lost its name to an error would make "no phase of that name" a guess. */
    if (f[SEC_PHASE].value != NULL && names_ok)
        load_active(ld, f[SEC_PHASE].value, rl);
    else if (f[SEC_PHASE].value != NULL)
        ld_scalar(ld, f[SEC_PHASE].value, "rate_limit.phase");
    if (f[SEC_SCOPE].value != NULL) {
        choice = CFG_RL_GLOBAL;
        load_choice(ld, f[SEC_SCOPE].value, "rate_limit.scope", scope_names, 2, "global or region",
                    &choice);
        rl->scope = (enum cfg_rl_scope)choice;
    }
    if (f[SEC_REDIS].value != NULL && !ld->aborted)
        load_redis(ld, f[SEC_REDIS].value, &rl->redis);
    if (f[SEC_FAILURE].value != NULL) {
        choice = CFG_RL_FAIL_LOCAL;
        load_choice(ld, f[SEC_FAILURE].value, "rate_limit.on_redis_failure", failure_names, 3,
                    "local, open or closed", &choice);
        rl->on_redis_failure = (enum cfg_rl_failure)choice;
    }
}
