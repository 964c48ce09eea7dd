/* SPDX-License-Identifier: MIT */
/* The insides of the config loader, shared by cfg_load.c (the walk, the error list, the
 * value helpers, the core sections) and the section files cfg_load_<area>.c. Not an API:
 * only cfg_load*.c include it. Every ld_ helper explains what was wrong itself, as
 * "file:line: path: what was expected", and stores nothing when the value is refused. */
#ifndef MERIDIAN_CFG_LOADER_H
#define MERIDIAN_CFG_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "cfg.h"
#include "cfg_load.h"

/* Listener and region names end up in logs, metrics labels and headers. */
#define LOAD_NAME_MAX 63
/* Longest piece of a value quoted back in a message, and the buffer that holds it. */
#define QUOTE_MAX 48
#define QUOTE_BUF (QUOTE_MAX * 4 + 8)
/* Paths of values in messages: "regions[12].health_check.interval". */
#define PATH_BUF 128
/* Most choices ld_choices takes. */
#define CHOICES_MAX 4
/* Two-letter country codes, "AA".."ZZ", as (c0 - 'A') * 26 + (c1 - 'A'). */
#define LD_COUNTRIES (26 * 26)

struct load_error; /* cfg_load.c's */

/* One load: the document, the generation being filled, the errors found so far. */
struct loader {
    const char *name;          /* borrows: the file name used in messages */
    const char *dir;           /* borrows: prefix for relative file paths, ending in "/";
                                  "" leaves them as written */
    yaml_document_t *doc;      /* borrows */
    struct cfg *cfg;           /* owns until handed to the caller */
    struct load_error *errors; /* owns */
    size_t nerrors, errors_cap;
    size_t dropped; /* errors past LOAD_MAX_ERRORS */
    bool oom;
    size_t visits, max_visits;
    bool aborted; /* the visit budget ran out: stop walking */
    const struct cfg_load_opts *opts; /* borrows; never NULL (an empty one) */

    /* Where sections were, for the checks after the walk (0: absent). */
    size_t admin_line;   /* the admin mapping */
    size_t regions_line; /* the regions sequence */
    size_t geoip_line;   /* the geoip.database key */
    /* Which region listed each country first (index + 1; 0: none yet) and on what line,
     * so that a second listing names the first (cfg_load_routing.c). */
    uint32_t country_region[LD_COUNTRIES];
    uint32_t country_line[LD_COUNTRIES];
};

/* A key of a mapping found by ld_map_collect. */
struct field {
    yaml_node_t *key;   /* borrows */
    yaml_node_t *value; /* borrows; NULL when the key is absent */
};

/* Uniqueness checks: (key, index) pairs that ld_check_unique sorts. */
struct uniq {
    const char *key; /* borrows */
    size_t line;
    size_t index;
};

/* The entry of a sequence marked "default: true" as found so far (regions, certificates). */
struct defaults {
    size_t count;
    size_t first;      /* index of the first default entry */
    size_t first_line; /* where it said so */
};

/* ---- errors ------------------------------------------------------------------------ */

/* Records one error at `line` (1-based; 0 for the file as a whole). Past the cap it is only
 * counted; out of memory only sets ld->oom. Never fails otherwise. */
void ld_report(struct loader *ld, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* True while nothing is wrong: no error reported or dropped, no allocation failed. */
bool ld_clean(const struct loader *ld);

/* strdup that sets ld->oom instead of returning NULL quietly. */
char *ld_strdup(struct loader *ld, const char *s);

/* ---- nodes ------------------------------------------------------------------------- */

size_t ld_node_line(const yaml_node_t *node);
int ld_line_int(size_t line);

/* Every node the walk looks at goes through here, which bounds the work an alias bomb can
 * cause. NULL once the budget is spent (reported once; ld->aborted is then set). */
yaml_node_t *ld_node_at(struct loader *ld, int index);

static inline size_t
ld_seq_len(const yaml_node_t *node)
{
    return (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
}

/* Item `i` of a sequence node, through ld_node_at. */
static inline yaml_node_t *
ld_seq_item(struct loader *ld, const yaml_node_t *node, size_t i)
{
    return ld_node_at(ld, node->data.sequence.items.start[i]);
}

/* `s` (`len` bytes, any content) double-quoted into `out` (QUOTE_BUF bytes), escaped and
 * shortened so that it never breaks the one-error-per-line format. Returns `out`. */
const char *ld_quote(const char *s, size_t len, char *out);
/* What a node is, for "expected X, got Y": a quoted value, "a sequence", ... */
const char *ld_describe(const yaml_node_t *node, char *buf);
/* "the top level" for "", else `path`. */
const char *ld_where(const char *path);

/* Whether `node` is of `type`; reports "path: expected ..., got ..." when not. */
bool ld_expect(struct loader *ld, const yaml_node_t *node, yaml_node_type_t type, const char *path);
/* The text of a scalar node, or NULL (reported) when it is something else or holds a NUL
 * byte. The text lives as long as the document. */
const char *ld_scalar(struct loader *ld, const yaml_node_t *node, const char *path);

/* "parent.key" and "parent[index]" into `buf` (PATH_BUF bytes), "..." when too long. */
void ld_subpath(char *buf, const char *parent, const char *key);
void ld_subpath_index(char *buf, const char *parent, size_t index);

/* Checks that `node` is a mapping whose keys are among `keys`, each at most once, and
 * points fields[i] at the value of keys[i] (NULL when absent). Unknown and repeated keys
 * are reported and skipped. False when `node` is no mapping or the walk was aborted. */
bool ld_map_collect(struct loader *ld, const yaml_node_t *node, const char *path,
                    const char *const *keys, size_t nkeys, struct field *fields);
/* Reports `key` missing from the mapping `map` when field->key is NULL. */
void ld_require(struct loader *ld, const yaml_node_t *map, const char *path, const char *key,
                const struct field *field);

/* ---- values: each returns true when it stored one --------------------------------- */

/* Plain decimal digits, at most `max` (no report: a building block for messages). */
bool ld_parse_uint(const char *text, uint64_t max, uint64_t *out);

/* A name ([A-Za-z0-9._-]{1,63}); stores a malloc'd copy in *out. */
void ld_name(struct loader *ld, const yaml_node_t *node, const char *path, char **out);
/* An IP literal and port (cfg_parse_addr), with a message that says what is wrong. */
bool ld_addr(struct loader *ld, const yaml_node_t *node, const char *path, struct cfg_addr *addr);
/* A duration up to 24h; 0 only when `zero_ok`. *ms is left alone on error. */
void ld_duration(struct loader *ld, const yaml_node_t *node, const char *path, bool zero_ok,
                 uint32_t *ms);
bool ld_size(struct loader *ld, const yaml_node_t *node, const char *path, uint64_t *bytes);
/* A size min..max; `range` says the same for people ("1k..16m (1024..16777216 bytes)"). */
bool ld_size_in(struct loader *ld, const yaml_node_t *node, const char *path, uint64_t min,
                uint64_t max, const char *range, uint32_t *out);
/* Degrees as a plain decimal number within -limit..limit; `what` is "latitude" or the like. */
bool ld_degrees(struct loader *ld, const yaml_node_t *node, const char *path, const char *what,
                double limit, double *out);
/* true or false, spelled so. */
bool ld_bool(struct loader *ld, const yaml_node_t *node, const char *path, bool *out);
/* A plain decimal number min..max (no unit). */
bool ld_count(struct loader *ld, const yaml_node_t *node, const char *path, uint64_t min,
              uint64_t max, uint64_t *out);
/* A file to be read after the walk: a relative path is joined to the configuration's
 * directory (ld->dir) and the result stored (malloc'd) in *out. `what` says what the file
 * is ("a PEM private key"). Nothing is checked on disk. */
void ld_path(struct loader *ld, const yaml_node_t *node, const char *path, const char *what,
             char **out);
/* A non-empty value kept as written (malloc'd copy in *out). */
void ld_string(struct loader *ld, const yaml_node_t *node, const char *path, const char *what,
               char **out);
/* A non-empty sequence of distinct values, each one of `choices` (at most CHOICES_MAX),
 * spelled exactly or, with `fold_case`, in any ASCII case. Fills picked[] with the index
 * of each item in `choices`, in the file's order. `expected` lists them for messages
 * ("h2 or http/1.1"). False when anything was wrong (reported). */
bool ld_choices(struct loader *ld, const yaml_node_t *node, const char *path,
                const char *const *choices, size_t nchoices, bool fold_case, const char *expected,
                size_t picked[CHOICES_MAX], size_t *npicked);
/* Sorts `u` and reports every repeat at its own line. `seq` and `field` spell the path of
 * an entry, "seq[index].field" or "seq[index]"; `noun` names what repeats. */
void ld_check_unique(struct loader *ld, struct uniq *u, size_t n, const char *seq,
                     const char *field, const char *noun);

/* ---- sections in their own files ---------------------------------------------------- */

/* cfg_load_routing.c: who the client is (client_ip), where it is (geoip) and where it
 * goes (routing; a region's countries and balance). */
void cfg_load_routing_client_ip(struct loader *ld, const yaml_node_t *node);
/* A listener's own client_ip section: the whole section, nothing inherited. */
void cfg_load_routing_client_ip_own(struct loader *ld, const yaml_node_t *node, const char *path,
                                    struct cfg_listener *l);
void cfg_load_routing_geoip(struct loader *ld, const yaml_node_t *node);
void cfg_load_routing_section(struct loader *ld, const yaml_node_t *node);
/* What leaving the routing section out means: its defaults. */
void cfg_load_routing_absent(struct loader *ld);
/* regions[index].countries; a country another region listed already is an error. */
void cfg_load_routing_countries(struct loader *ld, const yaml_node_t *node, const char *path,
                                size_t index, struct cfg_region *r);
void cfg_load_routing_balance(struct loader *ld, const yaml_node_t *node, const char *path,
                              struct cfg_region *r);
/* Once a region's backends and balance are read: what its weights mean for the balancer
 * (the smooth weighted round-robin cycle, the backends serving, cfg->any_draining). */
void cfg_load_routing_weights(struct loader *ld, struct cfg_region *r);
/* After a walk without errors: cfg->route from the regions. Reports a failure. */
void cfg_load_routing_build(struct loader *ld);
/* After a walk without errors: open and check geoip.database into cfg->geo. Returns 0, or
 * -1 with the reason reported at the database key's line. */
int cfg_load_routing_open_geoip(struct loader *ld);

/* cfg_load_health.c: the top-level health_check section, and each region's over it. */
void cfg_load_health_section(struct loader *ld, const yaml_node_t *node);
/* Fills `hc` from the top level's (copied) with a region's `node` over it: a mapping of
 * keys that override, `false` (checks off for the region) or `true`; NULL when the region
 * has no health_check key. */
void cfg_load_health_region(struct loader *ld, const yaml_node_t *node, const char *path,
                            struct cfg_health_check *hc);

/* cfg_load_backend_tls.c: TLS to backends. A region's `tls` (NULL: absent, clear text)
 * into `t`, defaults first; then a backend's `tls` over its region's into b->tls_own. */
void cfg_load_backend_tls_region(struct loader *ld, const yaml_node_t *node, const char *path,
                                 struct cfg_backend_tls *t);
void cfg_load_backend_tls_backend(struct loader *ld, const yaml_node_t *node, const char *path,
                                  const struct cfg_backend_tls *region, struct cfg_backend *b);

/* cfg_load_dns.c: backends given by DNS name, and the resolvers section. */
void cfg_load_dns_resolvers(struct loader *ld, const yaml_node_t *node);
void cfg_load_dns_resolvers_absent(struct loader *ld);
/* Whether `text` is "host:port" with a DNS name as host (not an IP literal, good or bad). */
bool cfg_load_dns_is_name(const char *text);
/* Splits a name backend's address into n->host, n->text and n->port. Returns false when
 * it is refused (reported). */
bool cfg_load_dns_name(struct loader *ld, const yaml_node_t *node, const char *path,
                       const char *text, struct cfg_backend_name *n);
/* Builds r->names and r->backends from the file's `n` entries (in file order): where
 * is_name[i], names[i] (from cfg_load_dns_name) with the weight, drain and tls_own of
 * parsed[i] becomes a name of the region, standing for the addresses ld->opts->resolve
 * gives it (one the region has already is left out); elsewhere parsed[i] is an IP
 * literal's backend. Takes what the entries own; the arrays are the caller's to free. */
void cfg_load_dns_expand(struct loader *ld, struct cfg_region *r, struct cfg_backend *parsed,
                         struct cfg_backend_name *names, const bool *is_name, size_t n);
/* A copy of `from` (strings duplicated, no runtime) into `to`. */
void cfg_load_backend_tls_copy(struct loader *ld, struct cfg_backend_tls *to,
                               const struct cfg_backend_tls *from);

/* cfg_load_ratelimit.c: the rate_limit section (phases, budgets, Redis). A phase's region
 * shares name regions, so it is loaded after the regions section. */
void cfg_load_ratelimit_section(struct loader *ld, const yaml_node_t *node);

#endif
