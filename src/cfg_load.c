/* SPDX-License-Identifier: MIT */
/* The YAML front end of cfg: libyaml's document API builds the node tree, and this file
 * walks it against the schema (the core sections here, the others in cfg_load_<area>.c,
 * which share cfg_loader.h), fills a new generation and explains every problem it meets as
 * "file:line: what was expected". It keeps walking after an error, so one run of `meridian
 * -t` shows them all; it never parses YAML itself and never resolves names. A file that
 * passes has its GeoIP database opened (geo_open) and its certificates read
 * (tls_prepare), relative paths taken from the file's own directory, so a load yields
 * either a generation ready to serve or the reasons why not. */
#define _POSIX_C_SOURCE 200809L

#include "cfg_load.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <inttypes.h>
#include <strings.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "cfg_loader.h"
#include "privileges.h"
#include "tls.h"
#include "tls_upstream.h"

/* A configuration file is a page or two; anything this big is the wrong file. */
#define LOAD_MAX_FILE_BYTES (16u * 1024 * 1024)
/* Aliases let a small document name the same node many times over ("billion laughs").
 * The walk may visit this many nodes beyond the document's own count, then gives up. */
#define LOAD_MAX_ALIAS_VISITS 100000
/* Past this many errors the rest are counted, not shown. */
#define LOAD_MAX_ERRORS 100

struct load_error {
    size_t line; /* 1-based; 0 when about the file as a whole */
    size_t seq;  /* order of discovery, so that sorting by line is stable */
    char *text;  /* owns: the whole line, without the newline */
};

static void vreport(struct loader *ld, size_t line, bool always, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* Makes room for one more error. False when out of memory (`oom` is then set). */
static bool
errors_grow(struct loader *ld)
{
    size_t cap;
    struct load_error *errors;

    if (ld->nerrors < ld->errors_cap)
        return true;
    cap = ld->errors_cap ? ld->errors_cap * 2 : 8;
    errors = realloc(ld->errors, cap * sizeof(*errors));
    if (errors == NULL) {
        ld->oom = true;
        return false;
    }
    ld->errors = errors;
    ld->errors_cap = cap;
    return true;
}

/* Appends a whole error line (`text`, malloc'd, owned from now on; NULL means the copy
 * failed) after room was made for it. */
static void
errors_push(struct loader *ld, size_t line, char *text)
{
    if (text == NULL) {
        ld->oom = true;
        return;
    }
    ld->errors[ld->nerrors].line = line;
    ld->errors[ld->nerrors].seq = ld->nerrors;
    ld->errors[ld->nerrors].text = text;
    ld->nerrors++;
}

/* Records one error; past LOAD_MAX_ERRORS only counts it, unless `always`. Allocation
 * failures only set `oom`: the loader is failing anyway and says so at the end. */
static void
vreport(struct loader *ld, size_t line, bool always, const char *fmt, va_list ap)
{
    char msg[1024];
    char *text;
    size_t size;

    if (ld->nerrors >= LOAD_MAX_ERRORS && !always) {
        ld->dropped++;
        return;
    }
    if (!errors_grow(ld))
        return;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    size = strlen(ld->name) + strlen(msg) + 32;
    text = malloc(size);
    if (text != NULL) {
        if (line > 0)
            snprintf(text, size, "%s:%zu: %s", ld->name, line, msg);
        else
            snprintf(text, size, "%s: %s", ld->name, msg);
    }
    errors_push(ld, line, text);
}

void
ld_report(struct loader *ld, size_t line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(ld, line, false, fmt, ap);
    va_end(ap);
}

static void report_always(struct loader *ld, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
report_always(struct loader *ld, size_t line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(ld, line, true, fmt, ap);
    va_end(ap);
}

bool
ld_clean(const struct loader *ld)
{
    return ld->nerrors == 0 && ld->dropped == 0 && !ld->oom;
}

char *
ld_strdup(struct loader *ld, const char *s)
{
    char *copy = strdup(s);

    if (copy == NULL)
        ld->oom = true;
    return copy;
}

/* The line number in an error line of ours ("NAME:LINE: ..."), or SIZE_MAX when it has
 * none (such lines sort last). */
static size_t
error_line_of(const struct loader *ld, const char *text)
{
    size_t nlen = strlen(ld->name), line = 0;
    const char *p = text + nlen;

    if (strncmp(text, ld->name, nlen) != 0 || p[0] != ':' || p[1] < '0' || p[1] > '9')
        return SIZE_MAX;
    for (p++; *p >= '0' && *p <= '9'; p++) {
        if (line > (SIZE_MAX - 9) / 10)
            return SIZE_MAX;
        line = line * 10 + (size_t)(*p - '0');
    }
    return *p == ':' ? line : SIZE_MAX;
}

/* Takes over lines another module wrote in our own format ("file:line: message\n" each,
 * as tls_prepare does), so that they leave through errors_join like ours: sorted by the
 * line they name, capped at LOAD_MAX_ERRORS. A last line without its newline is taken as
 * it is. */
static void
errors_adopt(struct loader *ld, const char *text)
{
    const char *p = text;

    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);

        if (n > 0) {
            if (ld->nerrors >= LOAD_MAX_ERRORS) {
                ld->dropped++;
            } else if (errors_grow(ld)) {
                char *line = strndup(p, n);
                errors_push(ld, line != NULL ? error_line_of(ld, line) : 0, line);
            }
        }
        p += n + (nl != NULL);
    }
}

static int
error_cmp(const void *a, const void *b)
{
    const struct load_error *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Joins the errors, in line order, into one malloc'd text of "...\n" lines. NULL only when
 * even that cannot be allocated. */
static char *
errors_join(struct loader *ld)
{
    size_t size = 1, off = 0;
    char *out;

    if (ld->nerrors > 1)
        qsort(ld->errors, ld->nerrors, sizeof(*ld->errors), error_cmp);
    for (size_t i = 0; i < ld->nerrors; i++)
        size += strlen(ld->errors[i].text) + 1;
    size += 2 * (strlen(ld->name) + 64); /* room for the two closing lines below */

    out = malloc(size);
    if (out == NULL)
        return NULL;
    out[0] = '\0';
    for (size_t i = 0; i < ld->nerrors; i++)
        off += (size_t)snprintf(out + off, size - off, "%s\n", ld->errors[i].text);
    if (ld->dropped > 0)
        off += (size_t)snprintf(out + off, size - off, "%s: %zu more errors not shown\n", ld->name,
                                ld->dropped);
    if (ld->oom || off == 0)
        snprintf(out + off, size - off, "%s: out of memory while loading\n", ld->name);
    return out;
}

static void
loader_deinit(struct loader *ld)
{
    for (size_t i = 0; i < ld->nerrors; i++)
        free(ld->errors[i].text);
    free(ld->errors);
    cfg_unref(ld->cfg);
}

/* ---- helpers shared with the section files (cfg_loader.h) ------------------------- */

/* Writes `s` (`len` bytes, any content) double-quoted into `out` (QUOTE_BUF bytes) with
 * control bytes, quotes and backslashes escaped, shortened to QUOTE_MAX bytes of input,
 * so that a value quoted back never breaks the one-error-per-line format. */
const char *
ld_quote(const char *s, size_t len, char *out)
{
    size_t n = len > QUOTE_MAX ? QUOTE_MAX : len, o = 0;

    /* Do not cut a UTF-8 sequence in half. */
    if (n < len)
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;

    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(out + o, QUOTE_BUF - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    if (n < len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

size_t
ld_node_line(const yaml_node_t *node)
{
    return node->start_mark.line + 1;
}

/* Says what a node is, for "expected X, got Y". */
const char *
ld_describe(const yaml_node_t *node, char *buf)
{
    switch (node->type) {
    case YAML_SCALAR_NODE:
        if (node->data.scalar.length == 0)
            return "an empty value";
        return ld_quote((const char *)node->data.scalar.value, node->data.scalar.length, buf);
    case YAML_SEQUENCE_NODE:
        return "a sequence";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

/* Every node the walk looks at goes through here, which is what bounds the work an alias
 * bomb can cause. Returns NULL once the budget is spent (the walk then unwinds). */
yaml_node_t *
ld_node_at(struct loader *ld, int index)
{
    yaml_node_t *node;

    if (ld->aborted)
        return NULL;
    node = yaml_document_get_node(ld->doc, index);
    if (node == NULL)
        return NULL;
    if (++ld->visits > ld->max_visits) {
        ld->aborted = true;
        /* Shown even past the error cap: it explains why the walk stopped short. */
        report_always(ld, ld_node_line(node),
                      "aliases repeat nodes more than %d times over; refusing the document "
                      "(write the values out instead)",
                      LOAD_MAX_ALIAS_VISITS);
        return NULL;
    }
    return node;
}

bool
ld_expect(struct loader *ld, const yaml_node_t *node, yaml_node_type_t type, const char *path)
{
    char buf[QUOTE_BUF];
    const char *what = type == YAML_MAPPING_NODE    ? "a mapping"
                       : type == YAML_SEQUENCE_NODE ? "a sequence"
                                                    : "a single value";

    if (node->type == type)
        return true;
    if (path[0] == '\0')
        ld_report(ld, ld_node_line(node), "expected %s at the top level, got %s", what,
                  ld_describe(node, buf));
    else
        ld_report(ld, ld_node_line(node), "%s: expected %s, got %s", path, what,
                  ld_describe(node, buf));
    return false;
}

/* The text of a scalar node, or NULL (reported) when it is something else or holds a NUL
 * byte, which no value of ours may. libyaml terminates scalar values. */
const char *
ld_scalar(struct loader *ld, const yaml_node_t *node, const char *path)
{
    const char *text;

    if (!ld_expect(ld, node, YAML_SCALAR_NODE, path))
        return NULL;
    text = (const char *)node->data.scalar.value;
    if (strlen(text) != node->data.scalar.length) {
        ld_report(ld, ld_node_line(node), "%s: contains a NUL byte", path);
        return NULL;
    }
    return text;
}

const char *
ld_where(const char *path)
{
    return path[0] == '\0' ? "the top level" : path;
}

/* Paths are short ("regions[12].location.lat"); one that somehow is not ends in "...". */
static void
mark_truncated(char *buf, int n)
{
    if (n < 0 || n >= PATH_BUF)
        memcpy(buf + PATH_BUF - 4, "...", 4);
}

void
ld_subpath(char *buf, const char *parent, const char *key)
{
    if (parent[0] == '\0')
        mark_truncated(buf, snprintf(buf, PATH_BUF, "%s", key));
    else
        mark_truncated(buf, snprintf(buf, PATH_BUF, "%s.%s", parent, key));
}

void
ld_subpath_index(char *buf, const char *parent, size_t index)
{
    mark_truncated(buf, snprintf(buf, PATH_BUF, "%s[%zu]", parent, index));
}

/* Checks that `node` is a mapping whose keys are single values naming entries of `keys`,
 * each at most once, and points fields[i] at the value of keys[i] (NULL when absent).
 * Unknown and repeated keys are reported and skipped; the first of a repeated key counts.
 * Returns false when `node` is no mapping at all or the walk was aborted. */
bool
ld_map_collect(struct loader *ld, const yaml_node_t *node, const char *path,
               const char *const *keys, size_t nkeys, struct field *fields)
{
    char buf[QUOTE_BUF], expected[256];

    for (size_t k = 0; k < nkeys; k++)
        fields[k].key = fields[k].value = NULL;
    if (!ld_expect(ld, node, YAML_MAPPING_NODE, path))
        return false;

    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = ld_node_at(ld, pair->key);
        yaml_node_t *value = ld_node_at(ld, pair->value);
        const char *name;
        size_t k;

        if (key == NULL || value == NULL)
            return false;
        if (key->type != YAML_SCALAR_NODE) {
            ld_report(ld, ld_node_line(key), "expected a key name in %s, got %s", ld_where(path),
                      ld_describe(key, buf));
            continue;
        }
        name = (const char *)key->data.scalar.value;
        for (k = 0; k < nkeys; k++)
            if (key->data.scalar.length == strlen(keys[k]) && strcmp(name, keys[k]) == 0)
                break;
        if (k == nkeys) {
            size_t off = 0;
            for (size_t j = 0; j < nkeys; j++)
                off += (size_t)snprintf(expected + off, sizeof(expected) - off, "%s%s",
                                        j ? ", " : "", keys[j]);
            ld_report(ld, ld_node_line(key), "unknown key %s in %s (expected one of: %s)",
                      ld_quote(name, key->data.scalar.length, buf), ld_where(path), expected);
            continue;
        }
        if (fields[k].key != NULL) {
            ld_report(ld, ld_node_line(key), "duplicate key \"%s\" in %s (first at line %zu)",
                      keys[k], ld_where(path), ld_node_line(fields[k].key));
            continue;
        }
        fields[k].key = key;
        fields[k].value = value;
    }
    return true;
}

void
ld_require(struct loader *ld, const yaml_node_t *map, const char *path, const char *key,
           const struct field *field)
{
    if (field->key == NULL)
        ld_report(ld, ld_node_line(map), "missing required key \"%s\" in %s", key, ld_where(path));
}

/* A non-negative decimal integer of plain digits, at most `max`. */
bool
ld_parse_uint(const char *text, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (*text == '\0')
        return false;
    for (const char *p = text; *p; p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (*p < '0' || *p > '9')
            return false;
        if (v > max / 10 || (v == max / 10 && d > max % 10))
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Names: [A-Za-z0-9._-]{1,63}. Stores a copy in *out. */
void
ld_name(struct loader *ld, const yaml_node_t *node, const char *path, char **out)
{
    char buf[QUOTE_BUF];
    const char *text = ld_scalar(ld, node, path);
    size_t len;

    if (text == NULL)
        return;
    len = strlen(text);
    if (len == 0 || len > LOAD_NAME_MAX ||
        strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != len) {
        ld_report(ld, ld_node_line(node),
                  "%s: expected a name of 1 to %d letters, digits, \".\", \"_\" or \"-\", got %s",
                  path, LOAD_NAME_MAX, ld_describe(node, buf));
        return;
    }
    *out = strdup(text);
    if (*out == NULL)
        ld->oom = true;
}

/* Why cfg_parse_addr refused `text`, as the rest of a message after "path: ". Looked at
 * only after the fact, so it may be generous in what it lets through to the last case. */
static void
explain_addr(const char *text, char *why, size_t size)
{
    char buf[QUOTE_BUF], host[QUOTE_BUF];
    const char *port, *sep;
    uint64_t n;
    bool bracketed = text[0] == '[';
    const char *example = "like 127.0.0.1:8080 or [::1]:8080";

    ld_quote(text, strlen(text), buf);
    if (text[0] == '\0') {
        snprintf(why, size, "expected an IP address and port %s, got an empty value", example);
        return;
    }
    if (bracketed) {
        const char *close = strchr(text, ']');
        if (close == NULL) {
            snprintf(why, size, "expected an IP address and port %s, got %s (no \"]\")", example,
                     buf);
            return;
        }
        sep = close + 1;
        if (*sep != ':') {
            snprintf(why, size, "expected \":port\" after \"]\" in %s (addresses look %s)", buf,
                     example);
            return;
        }
        ld_quote(text + 1, (size_t)(close - text - 1), host);
    } else {
        sep = strrchr(text, ':');
        if (sep == NULL) {
            snprintf(why, size, "expected an IP address and port %s, got %s (no port)", example,
                     buf);
            return;
        }
        ld_quote(text, (size_t)(sep - text), host);
    }
    port = sep + 1;

    if (port[0] == '\0' || strspn(port, "0123456789") != strlen(port)) {
        char pbuf[QUOTE_BUF];
        snprintf(why, size, "port %s is not a number 1..65535 (addresses look %s)",
                 ld_quote(port, strlen(port), pbuf), example);
    } else if (strlen(port) > 5 || !ld_parse_uint(port, 65535, &n) || n == 0) {
        /* All digits, so safe to show; a run of them is shortened. */
        snprintf(why, size, "port %.12s%s out of range 1..65535", port,
                 strlen(port) > 12 ? "..." : "");
    } else if (!bracketed && memchr(text, ':', (size_t)(sep - text)) != NULL) {
        snprintf(why, size, "an IPv6 address needs brackets, like [::1]:8080, got %s", buf);
    } else if (!bracketed && strcspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") <
                                 (size_t)(sep - text)) {
        snprintf(why, size,
                 "%s is not an IP address; host names are never looked up, write an IP literal "
                 "like 127.0.0.1:8080",
                 host);
    } else {
        snprintf(why, size, "%s is not a valid %s address (addresses look %s)", host,
                 bracketed ? "IPv6" : "IPv4", example);
    }
}

bool
ld_addr(struct loader *ld, const yaml_node_t *node, const char *path, struct cfg_addr *addr)
{
    char why[512];
    const char *text = ld_scalar(ld, node, path);

    if (text == NULL)
        return false;
    if (cfg_parse_addr(text, addr) == 0)
        return true;
    explain_addr(text, why, sizeof(why));
    ld_report(ld, ld_node_line(node), "%s: %s", path, why);
    return false;
}

/* Digits and a unit: the shape cfg_parse_duration_ms takes, whatever the magnitude. */
static bool
is_duration_shaped(const char *text)
{
    size_t n = strspn(text, "0123456789");
    const char *unit = text + n;
    return n > 0 && (strcmp(unit, "") == 0 || strcmp(unit, "ms") == 0 || strcmp(unit, "s") == 0 ||
                     strcmp(unit, "m") == 0 || strcmp(unit, "h") == 0);
}

void
ld_duration(struct loader *ld, const yaml_node_t *node, const char *path, bool zero_ok,
            uint32_t *ms)
{
    char buf[QUOTE_BUF];
    const char *text = ld_scalar(ld, node, path);
    uint32_t v;

    if (text == NULL)
        return;
    if (cfg_parse_duration_ms(text, &v) < 0) {
        if (is_duration_shaped(text))
            ld_report(ld, ld_node_line(node), "%s: %s is longer than the maximum, 24h", path,
                      ld_describe(node, buf));
        else
            ld_report(ld, ld_node_line(node),
                      "%s: expected a duration like 500ms, 10s, 2m, got %s (units ms, s, m, h; "
                      "a plain number is seconds)",
                      path, ld_describe(node, buf));
        return;
    }
    if (v == 0 && !zero_ok) {
        ld_report(ld, ld_node_line(node), "%s: must be longer than 0", path);
        return;
    }
    *ms = v;
}

bool
ld_size(struct loader *ld, const yaml_node_t *node, const char *path, uint64_t *bytes)
{
    char buf[QUOTE_BUF];
    const char *text = ld_scalar(ld, node, path);

    if (text == NULL)
        return false;
    if (cfg_parse_size(text, bytes) < 0) {
        size_t n = strspn(text, "0123456789");
        if (n > 0 && (text[n] == '\0' || (strchr("kKmMgG", text[n]) && text[n + 1] == '\0')))
            ld_report(ld, ld_node_line(node), "%s: %s is too large", path, ld_describe(node, buf));
        else
            ld_report(ld, ld_node_line(node), "%s: expected a size like 512, 16k, 10m, 1g, got %s",
                      path, ld_describe(node, buf));
        return false;
    }
    return true;
}

/* Degrees as a plain decimal number ("50.11", "-46.63", "8"): no hex, inf or nan. */
bool
ld_degrees(struct loader *ld, const yaml_node_t *node, const char *path, const char *what,
           double limit, double *out)
{
    char buf[QUOTE_BUF], *end;
    const char *text = ld_scalar(ld, node, path);
    double v;

    if (text == NULL)
        return false;
    errno = 0;
    v = strtod(text, &end);
    if (text[0] == '\0' || strspn(text, "0123456789+-.eE") != strlen(text) || *end != '\0' ||
        errno != 0 || !isfinite(v) || v < -limit || v > limit) {
        ld_report(ld, ld_node_line(node), "%s: expected a %s in degrees, -%g..%g, got %s", path,
                  what, limit, limit, ld_describe(node, buf));
        return false;
    }
    *out = v;
    return true;
}

bool
ld_bool(struct loader *ld, const yaml_node_t *node, const char *path, bool *out)
{
    char buf[QUOTE_BUF];
    const char *text = ld_scalar(ld, node, path);

    if (text == NULL)
        return false;
    if (strcmp(text, "true") == 0)
        *out = true;
    else if (strcmp(text, "false") == 0)
        *out = false;
    else {
        ld_report(ld, ld_node_line(node), "%s: expected true or false, got %s", path,
                  ld_describe(node, buf));
        return false;
    }
    return true;
}

static int
uniq_cmp(const void *a, const void *b)
{
    const struct uniq *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c != 0)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* `seq` and `field` spell the path of an entry: "seq[index].field" or "seq[index]". */
void
ld_check_unique(struct loader *ld, struct uniq *u, size_t n, const char *seq, const char *field,
                const char *noun)
{
    char path[PATH_BUF];

    if (n < 2)
        return;
    qsort(u, n, sizeof(*u), uniq_cmp);
    for (size_t i = 1, first = 0; i < n; i++) {
        if (strcmp(u[i].key, u[first].key) != 0) {
            first = i;
            continue;
        }
        if (field != NULL)
            snprintf(path, sizeof(path), "%s[%zu].%s", seq, u[i].index, field);
        else
            snprintf(path, sizeof(path), "%s[%zu]", seq, u[i].index);
        ld_report(ld, u[i].line, "%s: duplicate %s \"%s\" (first at %s[%zu], line %zu)", path, noun,
                  u[i].key, seq, u[first].index, u[first].line);
    }
}

/* A plain decimal number min..max (no unit), as for limits.max_headers. */
bool
ld_count(struct loader *ld, const yaml_node_t *node, const char *path, uint64_t min, uint64_t max,
         uint64_t *out)
{
    char buf[QUOTE_BUF];
    const char *text = ld_scalar(ld, node, path);
    uint64_t v;

    if (text == NULL)
        return false;
    if (!ld_parse_uint(text, max, &v) || v < min) {
        ld_report(ld, ld_node_line(node), "%s: expected a number %" PRIu64 "..%" PRIu64 ", got %s",
                  path, min, max, ld_describe(node, buf));
        return false;
    }
    *out = v;
    return true;
}

/* A size min..max; `range` says the same for people ("1k..16m (1024..16777216 bytes)"). */
bool
ld_size_in(struct loader *ld, const yaml_node_t *node, const char *path, uint64_t min, uint64_t max,
           const char *range, uint32_t *out)
{
    char buf[QUOTE_BUF];
    uint64_t v;

    if (!ld_size(ld, node, path, &v))
        return false;
    if (v < min || v > max) {
        ld_report(ld, ld_node_line(node), "%s: %s is out of range %s", path, ld_describe(node, buf),
                  range);
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* A file to be read later (by tls_prepare, geo_open). A relative path is taken from the directory
 * of the configuration file, so that a file and its certificates can move together; the
 * joined path is what is stored. Nothing is checked on disk here. */
void
ld_path(struct loader *ld, const yaml_node_t *node, const char *path, const char *what, char **out)
{
    const char *text = ld_scalar(ld, node, path);
    size_t dlen, tlen;
    char *full;

    if (text == NULL)
        return;
    if (text[0] == '\0') {
        ld_report(ld, ld_node_line(node), "%s: expected the path of %s, got an empty value", path,
                  what);
        return;
    }
    dlen = text[0] == '/' ? 0 : strlen(ld->dir);
    tlen = strlen(text);
    if (dlen + tlen >= PATH_MAX) {
        ld_report(ld, ld_node_line(node), "%s: the path is longer than %d bytes%s", path,
                  PATH_MAX - 1, dlen > 0 ? " once joined to the configuration's directory" : "");
        return;
    }
    full = malloc(dlen + tlen + 1);
    if (full == NULL) {
        ld->oom = true;
        return;
    }
    memcpy(full, ld->dir, dlen);
    memcpy(full + dlen, text, tlen + 1);
    *out = full;
}

/* A non-empty value kept as written for a later check (OpenSSL lists: tls_prepare). */
void
ld_string(struct loader *ld, const yaml_node_t *node, const char *path, const char *what,
          char **out)
{
    const char *text = ld_scalar(ld, node, path);

    if (text == NULL)
        return;
    if (text[0] == '\0') {
        ld_report(ld, ld_node_line(node), "%s: expected %s, got an empty value", path, what);
        return;
    }
    *out = strdup(text);
    if (*out == NULL)
        ld->oom = true;
}

/* A non-empty sequence of distinct values, each one of `choices` (at most CHOICES_MAX),
 * spelled exactly or, with `fold_case`, in any ASCII case. Fills picked[] with the index
 * in `choices` of each item, in the file's order, and *npicked with their count.
 * `expected` lists the choices for messages ("h2 or http/1.1"). Returns false when
 * anything was wrong (reported). */
bool
ld_choices(struct loader *ld, const yaml_node_t *node, const char *path, const char *const *choices,
           size_t nchoices, bool fold_case, const char *expected, size_t picked[CHOICES_MAX],
           size_t *npicked)
{
    size_t first_index[CHOICES_MAX], first_line[CHOICES_MAX];
    bool seen[CHOICES_MAX] = {false};
    char buf[QUOTE_BUF], sub[PATH_BUF];
    size_t n;
    bool ok = true;

    *npicked = 0;
    if (!ld_expect(ld, node, YAML_SEQUENCE_NODE, path))
        return false;
    n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (n == 0) {
        ld_report(ld, ld_node_line(node), "%s: expected at least one of %s, got none", path,
                  expected);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = ld_node_at(ld, node->data.sequence.items.start[i]);
        const char *text;
        size_t c;

        if (item == NULL)
            return false;
        ld_subpath_index(sub, path, i);
        if ((text = ld_scalar(ld, item, sub)) == NULL) {
            ok = false;
            continue;
        }
        for (c = 0; c < nchoices; c++)
            if ((fold_case ? strcasecmp(text, choices[c]) : strcmp(text, choices[c])) == 0)
                break;
        if (c == nchoices) {
            ld_report(ld, ld_node_line(item), "%s: expected %s, got %s", sub, expected,
                      ld_describe(item, buf));
            ok = false;
        } else if (seen[c]) {
            ld_report(ld, ld_node_line(item), "%s: duplicate \"%s\" (first at %s[%zu], line %zu)",
                      sub, choices[c], path, first_index[c], first_line[c]);
            ok = false;
        } else {
            seen[c] = true;
            first_index[c] = i;
            first_line[c] = ld_node_line(item);
            picked[(*npicked)++] = c;
        }
    }
    return ok;
}

int
ld_line_int(size_t line)
{
    return line > INT_MAX ? INT_MAX : (int)line;
}

/* ---- the core sections ---------------------------------------------------------- */

static void
load_workers(struct loader *ld, const yaml_node_t *node)
{
    char buf[QUOTE_BUF];
    const char *text = ld_scalar(ld, node, "workers");
    uint64_t n;

    if (text == NULL)
        return;
    if (strcmp(text, "auto") == 0)
        ld->cfg->workers = 0;
    else if (ld_parse_uint(text, CFG_MAX_WORKERS, &n) && n >= 1)
        ld->cfg->workers = (unsigned)n;
    else
        ld_report(ld, ld_node_line(node), "workers: expected \"auto\" or a number 1..%d, got %s",
                  CFG_MAX_WORKERS, ld_describe(node, buf));
}

static void
load_log_level(struct loader *ld, const yaml_node_t *node)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    static const enum cfg_log_level levels[] = {CFG_LOG_ERROR, CFG_LOG_WARN, CFG_LOG_INFO,
                                                CFG_LOG_DEBUG};
    char buf[QUOTE_BUF];
    const char *text = ld_scalar(ld, node, "log_level");

    if (text == NULL)
        return;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(text, names[i]) == 0) {
            ld->cfg->log_level = levels[i];
            return;
        }
    }
    ld_report(ld, ld_node_line(node), "log_level: expected one of error, warn, info, debug, got %s",
              ld_describe(node, buf));
}

/* Longest user or group name taken (useradd's limit on Debian). */
#define ACCOUNT_NAME_MAX 32

/* A user or group name as the account databases spell portable ones: letters, digits,
 * ".", "_", "-", not starting with "-". Whether it exists is privileges.c's question,
 * asked at start and by `meridian -t`, not the loader's. */
static void
load_account_name(struct loader *ld, const yaml_node_t *node, const char *key, const char *what,
                  char **out, int *line)
{
    char buf[QUOTE_BUF];
    const char *text = ld_scalar(ld, node, key);
    size_t len;

    if (text == NULL)
        return;
    len = strlen(text);
    if (len == 0 || len > ACCOUNT_NAME_MAX || text[0] == '-' ||
        strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != len) {
        ld_report(ld, ld_node_line(node),
                  "%s: expected the name of %s, like %s (1 to %d letters, digits, \".\", \"_\" "
                  "or \"-\", not starting with \"-\"), got %s",
                  key, what,
                  strcmp(key, "user") == 0 ? "meridian or nobody" : "meridian or nogroup",
                  ACCOUNT_NAME_MAX, ld_describe(node, buf));
        return;
    }
    *out = ld_strdup(ld, text);
    *line = ld_line_int(ld_node_line(node));
}

static void
load_user(struct loader *ld, const yaml_node_t *node)
{
    struct cfg_privileges *p = &ld->cfg->privileges;

    load_account_name(ld, node, "user", "the account to switch to from root", &p->user,
                      &p->user_line);
}

static void
load_group(struct loader *ld, const yaml_node_t *node)
{
    struct cfg_privileges *p = &ld->cfg->privileges;

    load_account_name(ld, node, "group", "the group to switch to from root", &p->group,
                      &p->group_line);
}

static void
load_run_as_root(struct loader *ld, const yaml_node_t *node)
{
    struct cfg_privileges *p = &ld->cfg->privileges;

    if (ld_bool(ld, node, "run_as_root", &p->run_as_root))
        p->run_as_root_line = ld_line_int(ld_node_line(node));
}

static void
load_cert(struct loader *ld, const yaml_node_t *node, const char *path, size_t index,
          struct cfg_tls_cert *c, struct defaults *d)
{
    static const char *const keys[] = {"cert", "key", "default"};
    struct field f[3];
    char sub[PATH_BUF];
    bool is_default;

    if (!ld_map_collect(ld, node, path, keys, 3, f))
        return;
    c->line = ld_line_int(ld_node_line(node));
    ld_require(ld, node, path, "cert", &f[0]);
    ld_require(ld, node, path, "key", &f[1]);
    if (f[0].value != NULL) {
        ld_subpath(sub, path, "cert");
        ld_path(ld, f[0].value, sub, "a PEM certificate (chain)", &c->cert_path);
    }
    if (f[1].value != NULL) {
        ld_subpath(sub, path, "key");
        ld_path(ld, f[1].value, sub, "a PEM private key", &c->key_path);
    }
    ld_subpath(sub, path, "default");
    if (f[2].value != NULL && ld_bool(ld, f[2].value, sub, &is_default) && is_default) {
        if (d->count == 0) {
            d->first = index;
            d->first_line = ld_node_line(f[2].value);
            c->is_default = true;
        } else {
            ld_report(ld, ld_node_line(f[2].value),
                      "%s: only one certificate may be the default, and certificates[%zu] "
                      "(line %zu) already is",
                      sub, d->first, d->first_line);
        }
        d->count++;
    }
}

static void
load_certs(struct loader *ld, const yaml_node_t *node, const char *path, struct cfg_tls *tls)
{
    struct defaults d = {0, 0, 0};
    char sub[PATH_BUF];
    size_t n;

    if (!ld_expect(ld, node, YAML_SEQUENCE_NODE, path))
        return;
    n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (n == 0) {
        ld_report(ld, ld_node_line(node),
                  "%s: expected at least one certificate ({cert: FILE, key: FILE}), got none",
                  path);
        return;
    }
    tls->certs = calloc(n, sizeof(*tls->certs));
    if (tls->certs == NULL) {
        ld->oom = true;
        return;
    }
    tls->ncerts = n;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = ld_node_at(ld, node->data.sequence.items.start[i]);
        if (item == NULL)
            return;
        ld_subpath_index(sub, path, i);
        load_cert(ld, item, sub, i, &tls->certs[i], &d);
    }
    /* Served to clients that send no name, or one no certificate has. */
    if (d.count == 0)
        tls->certs[0].is_default = true;
}

static void
load_tickets(struct loader *ld, const yaml_node_t *node, const char *path, struct cfg_tls *tls)
{
    static const char *const keys[] = {"enabled", "rotate", "key_file"};
    struct field f[3];
    char sub[PATH_BUF], buf[QUOTE_BUF];

    if (!ld_map_collect(ld, node, path, keys, 3, f))
        return;
    if (f[0].value != NULL) {
        ld_subpath(sub, path, "enabled");
        ld_bool(ld, f[0].value, sub, &tls->tickets);
    }
    if (f[1].value != NULL) {
        /* More often would cost resumptions for nothing; the key ring frees retired keys
         * on the assumption that a period lasts at least that long (tls_ticket.c). */
        uint32_t ms = UINT32_MAX;
        ld_subpath(sub, path, "rotate");
        ld_duration(ld, f[1].value, sub, true, &ms);
        if (ms != UINT32_MAX && ms < 60 * 1000)
            ld_report(ld, ld_node_line(f[1].value), "%s: %s is shorter than the minimum, 1m", sub,
                      ld_describe(f[1].value, buf));
        else if (ms != UINT32_MAX)
            tls->ticket_rotate_ms = ms;
    }
    if (f[2].value != NULL) {
        ld_subpath(sub, path, "key_file");
        ld_path(ld, f[2].value, sub, "a ticket key file", &tls->ticket_key_file);
    }
}

/* Strings the file left out get their defaults (copies, so that freeing is uniform). */
static void
tls_defaults(struct loader *ld, struct cfg_tls *tls)
{
    if (tls->ciphers == NULL && (tls->ciphers = strdup(CFG_TLS_DEFAULT_CIPHERS)) == NULL)
        ld->oom = true;
    if (tls->ciphersuites == NULL &&
        (tls->ciphersuites = strdup(CFG_TLS_DEFAULT_CIPHERSUITES)) == NULL)
        ld->oom = true;
    if (tls->groups == NULL && (tls->groups = strdup(CFG_TLS_DEFAULT_GROUPS)) == NULL)
        ld->oom = true;
}

static const char *const alpn_names[] = {"h2", "http/1.1"};

/* The ALPN list in the file's order (server preference), or both when `n` is 0. */
static void
tls_set_alpn(struct loader *ld, struct cfg_tls *tls, const size_t *picked, size_t n)
{
    static const size_t both[] = {0, 1};

    if (n == 0) {
        picked = both;
        n = 2;
    }
    tls->alpn = calloc(n, sizeof(*tls->alpn));
    if (tls->alpn == NULL) {
        ld->oom = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        tls->alpn[i] = strdup(alpn_names[picked[i]]);
        if (tls->alpn[i] == NULL) {
            ld->oom = true;
            return;
        }
        tls->nalpn++;
    }
}

static void
load_tls(struct loader *ld, const yaml_node_t *node, const char *path, struct cfg_listener *l)
{
    static const char *const keys[] = {"certificates",    "protocols",    "ciphers",
                                       "ciphersuites",    "groups",       "alpn",
                                       "session_tickets", "session_cache"};
    enum { CERTS = 0, PROTOCOLS, CIPHERS, CIPHERSUITES, GROUPS, ALPN, TICKETS, CACHE };
    static const char *const protocol_names[] = {"TLSv1.2", "TLSv1.3"};
    static const unsigned protocol_bits[] = {CFG_TLS_V12, CFG_TLS_V13};
    struct field f[8];
    struct cfg_tls *tls;
    char sub[PATH_BUF];
    size_t picked[CHOICES_MAX], npicked = 0;
    uint64_t v;

    if (!ld_map_collect(ld, node, path, keys, 8, f))
        return;
    tls = calloc(1, sizeof(*tls));
    if (tls == NULL) {
        ld->oom = true;
        return;
    }
    l->tls = tls;
    tls->protocols = CFG_TLS_V12 | CFG_TLS_V13;
    tls->tickets = true;
    tls->ticket_rotate_ms = CFG_DEFAULT_TICKET_ROTATE_MS;
    tls->session_cache = 0;

    ld_require(ld, node, path, "certificates", &f[CERTS]);
    if (f[CERTS].value != NULL) {
        ld_subpath(sub, path, "certificates");
        load_certs(ld, f[CERTS].value, sub, tls);
    }
    if (f[PROTOCOLS].value != NULL && !ld->aborted) {
        ld_subpath(sub, path, "protocols");
        if (ld_choices(ld, f[PROTOCOLS].value, sub, protocol_names, 2, false, "TLSv1.2 or TLSv1.3",
                       picked, &npicked)) {
            tls->protocols = 0;
            for (size_t i = 0; i < npicked; i++)
                tls->protocols |= protocol_bits[picked[i]];
        }
    }
    if (f[CIPHERS].value != NULL) {
        ld_subpath(sub, path, "ciphers");
        ld_string(ld, f[CIPHERS].value, sub, "a TLS 1.2 cipher list in OpenSSL syntax",
                  &tls->ciphers);
    }
    if (f[CIPHERSUITES].value != NULL) {
        ld_subpath(sub, path, "ciphersuites");
        ld_string(ld, f[CIPHERSUITES].value, sub, "a TLS 1.3 cipher suite list in OpenSSL syntax",
                  &tls->ciphersuites);
    }
    if (f[GROUPS].value != NULL) {
        ld_subpath(sub, path, "groups");
        ld_string(ld, f[GROUPS].value, sub, "a list of groups like X25519:P-256", &tls->groups);
    }
    npicked = 0;
    if (f[ALPN].value != NULL && !ld->aborted) {
        ld_subpath(sub, path, "alpn");
        if (!ld_choices(ld, f[ALPN].value, sub, alpn_names, 2, false, "h2 or http/1.1", picked,
                        &npicked))
            npicked = 0;
    }
    tls_set_alpn(ld, tls, picked, npicked);
    if (f[TICKETS].value != NULL && !ld->aborted) {
        ld_subpath(sub, path, "session_tickets");
        load_tickets(ld, f[TICKETS].value, sub, tls);
    }
    if (f[CACHE].value != NULL) {
        ld_subpath(sub, path, "session_cache");
        if (ld_count(ld, f[CACHE].value, sub, 0, 1000000, &v))
            tls->session_cache = (uint32_t)v;
    }
    tls_defaults(ld, tls);
}

/* Fills `l`; *name_line and *addr_line say where its name and address were (for the
 * uniqueness checks), left alone when absent. */
static void
load_listener(struct loader *ld, const yaml_node_t *node, const char *path, struct cfg_listener *l,
              size_t *name_line, size_t *addr_line)
{
    static const char *const keys[] = {"name", "address",        "tls",
                                       "h2c",  "proxy_protocol", "client_ip"};
    struct field f[6];
    char sub[PATH_BUF];

    /* The top-level client_ip section, unless the listener has its own (below). */
    l->client_ip = &ld->cfg->client_ip;
    if (!ld_map_collect(ld, node, path, keys, 6, f))
        return;
    l->line = ld_line_int(ld_node_line(node));
    ld_require(ld, node, path, "name", &f[0]);
    ld_require(ld, node, path, "address", &f[1]);
    if (f[0].value != NULL) {
        ld_subpath(sub, path, "name");
        ld_name(ld, f[0].value, sub, &l->name);
        *name_line = ld_node_line(f[0].value);
    }
    if (f[1].value != NULL) {
        *addr_line = ld_node_line(f[1].value);
        ld_subpath(sub, path, "address");
        if (!ld_addr(ld, f[1].value, sub, &l->addr))
            l->addr.salen = 0;
    }
    if (f[2].value != NULL && !ld->aborted) {
        ld_subpath(sub, path, "tls");
        load_tls(ld, f[2].value, sub, l);
    }
    ld_subpath(sub, path, "h2c");
    if (f[3].value != NULL && ld_bool(ld, f[3].value, sub, &l->h2c) && l->h2c && f[2].key != NULL)
        ld_report(ld, ld_node_line(f[3].value),
                  "%s: h2c is for plain listeners, and this one has tls (line %zu); a TLS "
                  "listener offers HTTP/2 through tls.alpn",
                  sub, ld_node_line(f[2].key));
    if (f[4].value != NULL) {
        ld_subpath(sub, path, "proxy_protocol");
        ld_bool(ld, f[4].value, sub, &l->proxy_protocol);
    }
    if (f[5].value != NULL && !ld->aborted) {
        ld_subpath(sub, path, "client_ip");
        cfg_load_routing_client_ip_own(ld, f[5].value, sub, l);
    }
}

static void
load_listeners(struct loader *ld, const yaml_node_t *node)
{
    struct cfg *cfg = ld->cfg;
    struct uniq *names = NULL, *addrs = NULL;
    size_t n, nnames = 0, naddrs = 0;
    char path[PATH_BUF];

    if (!ld_expect(ld, node, YAML_SEQUENCE_NODE, "listeners"))
        return;
    n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (n == 0) {
        ld_report(ld, ld_node_line(node), "listeners: expected at least one listener, got none");
        return;
    }
    cfg->listeners = calloc(n, sizeof(*cfg->listeners));
    names = calloc(n, sizeof(*names));
    addrs = calloc(n, sizeof(*addrs));
    if (cfg->listeners == NULL || names == NULL || addrs == NULL) {
        ld->oom = true;
        goto free_uniq;
    }
    cfg->nlisteners = n;

    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = ld_node_at(ld, node->data.sequence.items.start[i]);
        struct cfg_listener *l = &cfg->listeners[i];
        size_t name_line = 0, addr_line = 0;
        if (item == NULL)
            goto free_uniq;
        ld_subpath_index(path, "listeners", i);
        load_listener(ld, item, path, l, &name_line, &addr_line);
        if (l->name != NULL)
            names[nnames++] = (struct uniq){l->name, name_line, i};
        if (l->addr.salen != 0)
            addrs[naddrs++] = (struct uniq){l->addr.text, addr_line, i};
    }
    ld_check_unique(ld, names, nnames, "listeners", "name", "listener name");
    ld_check_unique(ld, addrs, naddrs, "listeners", "address", "address");

free_uniq:
    free(names);
    free(addrs);
}

/* The admin endpoint has no authentication and tells whoever asks how the proxy is
 * doing: it stays on this machine unless allow_remote says it is meant to be reached. */
static void
load_admin(struct loader *ld, const yaml_node_t *node)
{
    static const char *const keys[] = {"address", "allow_remote"};
    struct field f[2];
    struct cfg *cfg = ld->cfg;

    ld->admin_line = ld_node_line(node);
    if (!ld_map_collect(ld, node, "admin", keys, 2, f))
        return;
    ld_require(ld, node, "admin", "address", &f[0]);
    if (f[1].value != NULL)
        ld_bool(ld, f[1].value, "admin.allow_remote", &cfg->admin_allow_remote);
    if (f[0].value == NULL || !ld_addr(ld, f[0].value, "admin.address", &cfg->admin))
        return;
    if (!cfg_addr_is_loopback(&cfg->admin) && !cfg->admin_allow_remote) {
        ld_report(ld, ld_node_line(f[0].value),
                  "admin.address: %s is not a loopback address; the admin endpoint has no "
                  "authentication, so it listens on 127.0.0.1 or [::1] unless "
                  "admin.allow_remote: true says it is meant to be reached from elsewhere",
                  cfg->admin.text);
        return;
    }
    cfg->has_admin = true;
}

static void
load_timeouts(struct loader *ld, const yaml_node_t *node)
{
    static const char *const keys[] = {"client_header",     "client_idle", "upstream_connect",
                                       "upstream_response", "tunnel",      "shutdown"};
    struct cfg_timeouts *t = &ld->cfg->timeouts;
    uint32_t *slots[] = {&t->client_header_ms,     &t->client_idle_ms, &t->upstream_connect_ms,
                         &t->upstream_response_ms, &t->tunnel_ms,      &t->shutdown_ms};
    enum { NKEYS = sizeof(keys) / sizeof(keys[0]) };
    struct field f[NKEYS];
    char path[PATH_BUF];

    if (!ld_map_collect(ld, node, "timeouts", keys, NKEYS, f))
        return;
    for (size_t k = 0; k < NKEYS; k++) {
        if (f[k].value == NULL)
            continue;
        ld_subpath(path, "timeouts", keys[k]);
        /* Only the shutdown grace may be zero: "stop at once". */
        ld_duration(ld, f[k].value, path, slots[k] == &t->shutdown_ms, slots[k]);
    }
}

static void
load_limits(struct loader *ld, const yaml_node_t *node)
{
    static const char *const keys[] = {"max_header_bytes", "max_headers", "max_body_bytes",
                                       "max_connections"};
    struct cfg_limits *lim = &ld->cfg->limits;
    struct field f[4];
    char buf[QUOTE_BUF];
    uint64_t v;

    if (!ld_map_collect(ld, node, "limits", keys, 4, f))
        return;
    if (f[0].value != NULL && ld_size(ld, f[0].value, "limits.max_header_bytes", &v)) {
        if (v < 1024 || v > CFG_MAX_HEADER_BYTES_LIMIT)
            ld_report(ld, ld_node_line(f[0].value),
                      "limits.max_header_bytes: %s is out of range 1k..%dk (%d..%d bytes)",
                      ld_describe(f[0].value, buf), CFG_MAX_HEADER_BYTES_LIMIT / 1024, 1024,
                      CFG_MAX_HEADER_BYTES_LIMIT);
        else
            lim->max_header_bytes = (uint32_t)v;
    }
    if (f[1].value != NULL) {
        const char *text = ld_scalar(ld, f[1].value, "limits.max_headers");
        if (text != NULL && ld_parse_uint(text, CFG_MAX_HEADERS_LIMIT, &v) && v >= 1)
            lim->max_headers = (uint32_t)v;
        else if (text != NULL)
            ld_report(ld, ld_node_line(f[1].value),
                      "limits.max_headers: expected a number 1..%d, got %s", CFG_MAX_HEADERS_LIMIT,
                      ld_describe(f[1].value, buf));
    }
    if (f[2].value != NULL && ld_size(ld, f[2].value, "limits.max_body_bytes", &v))
        lim->max_body_bytes = v;
    if (f[3].value != NULL) {
        const char *text = ld_scalar(ld, f[3].value, "limits.max_connections");
        if (text != NULL && strcmp(text, "auto") == 0)
            lim->max_connections = 0;
        else if (text != NULL && ld_parse_uint(text, CFG_MAX_CONNECTIONS_LIMIT, &v) && v >= 1)
            lim->max_connections = (uint32_t)v;
        else if (text != NULL)
            ld_report(ld, ld_node_line(f[3].value),
                      "limits.max_connections: expected \"auto\" or a number 1..%d, got %s",
                      CFG_MAX_CONNECTIONS_LIMIT, ld_describe(f[3].value, buf));
    }
}

/* HTTP/2 settings, shared by every listener that speaks it. The window stops at 2^31 - 1
 * (RFC 9113, 6.5.2); a header list below 1k would refuse ordinary browsers, above 16m it
 * is no longer a limit. */
static void
load_http2(struct loader *ld, const yaml_node_t *node)
{
    static const char *const keys[] = {"max_concurrent_streams", "initial_window_size",
                                       "max_header_list_size", "max_resets_per_10s"};
    struct cfg_http2 *h2 = &ld->cfg->http2;
    struct field f[4];
    uint64_t v;

    if (!ld_map_collect(ld, node, "http2", keys, 4, f))
        return;
    if (f[0].value != NULL &&
        ld_count(ld, f[0].value, "http2.max_concurrent_streams", 1, 10000, &v))
        h2->max_concurrent_streams = (uint32_t)v;
    if (f[1].value != NULL)
        ld_size_in(ld, f[1].value, "http2.initial_window_size", 1, INT32_MAX,
                   "1..2147483647 bytes (2^31 - 1)", &h2->initial_window_size);
    if (f[2].value != NULL)
        ld_size_in(ld, f[2].value, "http2.max_header_list_size", 1024, 16u << 20,
                   "1k..16m (1024..16777216 bytes)", &h2->max_header_list_size);
    if (f[3].value != NULL && ld_count(ld, f[3].value, "http2.max_resets_per_10s", 1, 1000000, &v))
        h2->max_resets_per_10s = (uint32_t)v;
}

static void
load_access_log(struct loader *ld, const yaml_node_t *node)
{
    static const char *const keys[] = {"path"};
    struct field f[1];
    const char *text;

    if (!ld_map_collect(ld, node, "access_log", keys, 1, f))
        return;
    ld_require(ld, node, "access_log", "path", &f[0]);
    if (f[0].value == NULL || (text = ld_scalar(ld, f[0].value, "access_log.path")) == NULL)
        return;
    if (text[0] == '\0') {
        ld_report(ld, ld_node_line(f[0].value),
                  "access_log.path: expected \"-\" for standard output or a file path, got an "
                  "empty value");
        return;
    }
    ld->cfg->access_log_path = strdup(text);
    if (ld->cfg->access_log_path == NULL)
        ld->oom = true;
}

static void
load_location(struct loader *ld, const yaml_node_t *node, const char *path, struct cfg_region *r)
{
    static const char *const keys[] = {"lat", "lon"};
    struct field f[2];
    char sub[PATH_BUF];

    if (!ld_map_collect(ld, node, path, keys, 2, f))
        return;
    ld_require(ld, node, path, "lat", &f[0]);
    ld_require(ld, node, path, "lon", &f[1]);
    if (f[0].value != NULL) {
        ld_subpath(sub, path, "lat");
        ld_degrees(ld, f[0].value, sub, "latitude", 90, &r->lat);
    }
    if (f[1].value != NULL) {
        ld_subpath(sub, path, "lon");
        ld_degrees(ld, f[1].value, sub, "longitude", 180, &r->lon);
    }
}

/* A backend's address: an IP literal into b->addr, or a DNS name into *name (*is_name).
 * Returns false when it is refused (reported). */
static bool
load_backend_address(struct loader *ld, const yaml_node_t *node, const char *path,
                     struct cfg_backend *b, struct cfg_backend_name *name, bool *is_name)
{
    const char *text = ld_scalar(ld, node, path);

    if (text == NULL)
        return false;
    if (cfg_parse_addr(text, &b->addr) == 0)
        return true;
    if (cfg_load_dns_is_name(text)) {
        *is_name = true;
        return cfg_load_dns_name(ld, node, path, text, name);
    }
    /* Letters before the port but not a name: a typo in one (ld_addr would only say it is
     * not an IP address). */
    const char *colon = strrchr(text, ':');
    if (colon != NULL && text[0] != '[' && memchr(text, ':', (size_t)(colon - text)) == NULL &&
        strcspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") <
            (size_t)(colon - text)) {
        char buf[QUOTE_BUF];
        ld_report(ld, ld_node_line(node),
                  "%s: %s is neither an IP address nor a host name (labels of letters, digits "
                  "and '-', up to 63 bytes each, 253 in all), like api-eu.internal.example:443",
                  path, ld_quote(text, (size_t)(colon - text), buf));
        return false;
    }
    return ld_addr(ld, node, path, &b->addr); /* says what is wrong with it */
}

/* One entry of a region's backends: an address string (an IP literal or a DNS name with a
 * port), or a mapping { address, weight, drain, tls }. Returns the node whose line names
 * the address for the uniqueness check, or NULL when the address was refused. */
static const yaml_node_t *
load_backend(struct loader *ld, const yaml_node_t *node, const char *path,
             const struct cfg_region *r, struct cfg_backend *b, struct cfg_backend_name *name,
             bool *is_name)
{
    static const char *const keys[] = {"address", "weight", "drain", "tls"};
    struct field f[4];
    char sub[PATH_BUF], buf[QUOTE_BUF];
    uint64_t weight;

    b->weight = CFG_DEFAULT_WEIGHT;
    if (node->type == YAML_SCALAR_NODE)
        return load_backend_address(ld, node, path, b, name, is_name) ? node : NULL;
    if (node->type != YAML_MAPPING_NODE) {
        ld_report(ld, ld_node_line(node),
                  "%s: expected a backend address like \"127.0.0.1:9001\" or "
                  "\"api-eu.internal.example:443\", or a mapping { address, weight, drain, tls }, "
                  "got %s",
                  path, ld_describe(node, buf));
        return NULL;
    }
    if (!ld_map_collect(ld, node, path, keys, 4, f))
        return NULL;
    ld_require(ld, node, path, "address", &f[0]);
    if (f[1].value != NULL) {
        ld_subpath(sub, path, "weight");
        if (ld_count(ld, f[1].value, sub, 0, CFG_WEIGHT_MAX, &weight))
            b->weight = (uint32_t)weight;
    }
    if (f[2].value != NULL) {
        ld_subpath(sub, path, "drain");
        ld_bool(ld, f[2].value, sub, &b->drain);
    }
    if (f[3].value != NULL && !ld->aborted) {
        ld_subpath(sub, path, "tls");
        cfg_load_backend_tls_backend(ld, f[3].value, sub, &r->tls, b);
    }
    if (f[0].value == NULL)
        return NULL;
    ld_subpath(sub, path, "address");
    return load_backend_address(ld, f[0].value, sub, b, name, is_name) ? f[0].value : NULL;
}

/* The entries are read into `parsed` (and `names` for DNS names), checked for duplicates
 * as written, then made into the region's backends by cfg_load_dns_expand. */
static void
load_backends(struct loader *ld, const yaml_node_t *node, const char *path, struct cfg_region *r)
{
    struct uniq *addrs;
    struct cfg_backend *parsed;
    struct cfg_backend_name *names;
    bool *is_name;
    size_t n, naddrs = 0;
    char sub[PATH_BUF];

    if (!ld_expect(ld, node, YAML_SEQUENCE_NODE, path))
        return;
    n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (n == 0) {
        ld_report(ld, ld_node_line(node), "%s: expected at least one backend address, got none",
                  path);
        return;
    }
    parsed = calloc(n, sizeof(*parsed));
    names = calloc(n, sizeof(*names));
    is_name = calloc(n, sizeof(*is_name));
    addrs = calloc(n, sizeof(*addrs));
    if (parsed == NULL || names == NULL || is_name == NULL || addrs == NULL) {
        ld->oom = true;
        goto out;
    }

    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = ld_node_at(ld, node->data.sequence.items.start[i]);
        const yaml_node_t *at;
        if (item == NULL)
            break;
        ld_subpath_index(sub, path, i);
        at = load_backend(ld, item, sub, r, &parsed[i], &names[i], &is_name[i]);
        if (at != NULL)
            addrs[naddrs++] = (struct uniq){is_name[i] ? names[i].text : parsed[i].addr.text,
                                            ld_node_line(at), i};
    }
    ld_check_unique(ld, addrs, naddrs, path, NULL, "backend");
    cfg_load_dns_expand(ld, r, parsed, names, is_name, n);

out:
    /* What the expansion did not take (all of it when it did not run). */
    for (size_t i = 0; parsed != NULL && names != NULL && i < n; i++) {
        if (parsed[i].tls_own != NULL) {
            cfg_backend_tls_deinit(parsed[i].tls_own);
            free(parsed[i].tls_own);
        }
        free(names[i].host);
        free(names[i].text);
    }
    free(parsed);
    free(names);
    free(is_name);
    free(addrs);
}

static void
load_region(struct loader *ld, const yaml_node_t *node, size_t index, struct cfg_region *r,
            struct defaults *d)
{
    static const char *const keys[] = {"name",      "location", "backends",     "default",
                                       "countries", "balance",  "health_check", "tls"};
    struct field f[8];
    char path[PATH_BUF], sub[PATH_BUF];
    bool is_default;

    ld_subpath_index(path, "regions", index);
    if (!ld_map_collect(ld, node, path, keys, 8, f))
        return;
    for (size_t k = 0; k < 3; k++)
        ld_require(ld, node, path, keys[k], &f[k]);
    /* Before the backends: a backend's own tls keys go over the region's. */
    ld_subpath(sub, path, "tls");
    cfg_load_backend_tls_region(ld, f[7].value, sub, &r->tls);

    if (f[0].value != NULL) {
        ld_subpath(sub, path, "name");
        ld_name(ld, f[0].value, sub, &r->name);
    }
    if (f[1].value != NULL) {
        ld_subpath(sub, path, "location");
        load_location(ld, f[1].value, sub, r);
    }
    if (f[2].value != NULL && !ld->aborted) {
        ld_subpath(sub, path, "backends");
        load_backends(ld, f[2].value, sub, r);
    }
    ld_subpath(sub, path, "default");
    if (f[3].value != NULL && ld_bool(ld, f[3].value, sub, &is_default) && is_default) {
        if (d->count == 0) {
            d->first = index;
            d->first_line = ld_node_line(f[3].value);
        } else {
            ld_report(ld, ld_node_line(f[3].value),
                      "%s: only one region may be the default, and regions[%zu] (line %zu) "
                      "already is",
                      sub, d->first, d->first_line);
        }
        d->count++;
        r->is_default = true;
    }
    if (f[4].value != NULL && !ld->aborted) {
        ld_subpath(sub, path, "countries");
        cfg_load_routing_countries(ld, f[4].value, sub, index, r);
    }
    if (f[5].value != NULL) {
        ld_subpath(sub, path, "balance");
        cfg_load_routing_balance(ld, f[5].value, sub, r);
    }
    /* Every region gets its settings, from the top level when it says nothing. */
    ld_subpath(sub, path, "health_check");
    cfg_load_health_region(ld, f[6].value, sub, &r->health_check);
    cfg_load_routing_weights(ld, r);
}

static void
load_regions(struct loader *ld, const yaml_node_t *node)
{
    struct cfg *cfg = ld->cfg;
    struct defaults d = {0, 0, 0};
    struct uniq *names;
    size_t n, nnames = 0;

    ld->regions_line = ld_node_line(node);
    if (!ld_expect(ld, node, YAML_SEQUENCE_NODE, "regions"))
        return;
    n = ld_seq_len(node);
    if (n == 0) {
        ld_report(ld, ld_node_line(node), "regions: expected at least one region, got none");
        return;
    }
    /* The route table's size. The regions are still walked, for their own errors. */
    if (n > CFG_MAX_REGIONS)
        ld_report(ld, ld_node_line(node), "regions: expected at most %d regions, got %zu",
                  CFG_MAX_REGIONS, n);
    cfg->regions = calloc(n, sizeof(*cfg->regions));
    names = calloc(n, sizeof(*names));
    if (cfg->regions == NULL || names == NULL) {
        ld->oom = true;
        goto free_uniq;
    }
    cfg->nregions = n;

    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = ld_node_at(ld, node->data.sequence.items.start[i]);
        if (item == NULL)
            goto free_uniq;
        load_region(ld, item, i, &cfg->regions[i], &d);
        if (cfg->regions[i].name != NULL)
            names[nnames++] = (struct uniq){cfg->regions[i].name, ld_node_line(item), i};
    }
    ld_check_unique(ld, names, nnames, "regions", "name", "region name");

    if (n == 1) {
        /* A lone region is the default whether it says so or not. */
        cfg->regions[0].is_default = true;
        cfg->default_region = 0;
    } else if (d.count == 0) {
        ld_report(ld, ld_node_line(node),
                  "regions: none has \"default: true\"; with several regions exactly one must be "
                  "the default");
    } else {
        cfg->default_region = d.first;
    }

free_uniq:
    free(names);
}

/* Checks between sections, once each is known. */
static void
check_across(struct loader *ld)
{
    const struct cfg *cfg = ld->cfg;
    const struct cfg_privileges *p = &cfg->privileges;

    if (p->group != NULL && p->user == NULL)
        ld_report(ld, (size_t)p->group_line,
                  "group: needs user: Meridian switches to a group only along with a user");
    if (p->run_as_root && p->user != NULL)
        ld_report(ld, (size_t)p->run_as_root_line,
                  "run_as_root: true contradicts user: \"%s\" (line %d), which gives root up; "
                  "keep one of them",
                  p->user, p->user_line);

    if (!cfg->has_admin)
        return;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct cfg_listener *l = &cfg->listeners[i];
        if (l->addr.salen != 0 && strcmp(l->addr.text, cfg->admin.text) == 0)
            ld_report(ld, ld->admin_line,
                      "admin.address: %s is already listeners[%zu].address (line %d)",
                      cfg->admin.text, i, l->line);
    }
}

/* One top-level key. */
struct cfg_section {
    const char *key;
    void (*load)(struct loader *ld, const yaml_node_t *node);
    void (*absent)(struct loader *ld); /* what leaving it out means; NULL: nothing */
    bool required;
};

/* The top level, in the order the sections are loaded (whatever the file's order), which
 * is also the order unknown-key messages list them in. A section that builds on another
 * comes after it: regions inherit the top-level health_check. */
static const struct cfg_section sections[] = {
    {"workers", load_workers, NULL, false},
    {"log_level", load_log_level, NULL, false},
    {"user", load_user, NULL, false},
    {"group", load_group, NULL, false},
    {"run_as_root", load_run_as_root, NULL, false},
    {"listeners", load_listeners, NULL, true},
    {"admin", load_admin, NULL, false},
    {"timeouts", load_timeouts, NULL, false},
    {"limits", load_limits, NULL, false},
    {"http2", load_http2, NULL, false},
    {"access_log", load_access_log, NULL, false},
    {"client_ip", cfg_load_routing_client_ip, NULL, false},
    {"geoip", cfg_load_routing_geoip, NULL, false},
    {"routing", cfg_load_routing_section, cfg_load_routing_absent, false},
    {"health_check", cfg_load_health_section, NULL, false},
    {"resolvers", cfg_load_dns_resolvers, cfg_load_dns_resolvers_absent, false},
    {"regions", load_regions, NULL, true},
    {"rate_limit", cfg_load_ratelimit_section, NULL, false}, /* after regions: names them */
};
#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

static void
load_root(struct loader *ld, const yaml_node_t *root)
{
    const char *keys[NSECTIONS];
    struct field f[NSECTIONS];

    for (size_t i = 0; i < NSECTIONS; i++)
        keys[i] = sections[i].key;
    if (!ld_map_collect(ld, root, "", keys, NSECTIONS, f))
        return;
    for (size_t i = 0; i < NSECTIONS; i++)
        if (sections[i].required)
            ld_require(ld, root, "", sections[i].key, &f[i]);

    for (size_t i = 0; i < NSECTIONS && !ld->aborted; i++) {
        if (f[i].value != NULL)
            sections[i].load(ld, f[i].value);
        else if (sections[i].absent != NULL)
            sections[i].absent(ld);
    }
    if (!ld->aborted)
        check_across(ld);
}

/* Line of byte `offset` in `text`, 1-based. */
static size_t
line_of_offset(const char *text, size_t len, size_t offset)
{
    size_t line = 1;

    for (size_t i = 0; i < offset && i < len; i++)
        if (text[i] == '\n')
            line++;
    return line;
}

static void
report_yaml_error(struct loader *ld, const yaml_parser_t *parser, const char *text, size_t len)
{
    const char *problem = parser->problem != NULL ? parser->problem : "unknown error";

    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        ld->oom = true;
        break;
    case YAML_READER_ERROR:
        /* Encoding errors carry a byte offset rather than a mark. */
        if (parser->problem_value != -1)
            ld_report(ld, line_of_offset(text, len, parser->problem_offset),
                      "invalid YAML: %s (byte 0x%02x at offset %zu)", problem,
                      (unsigned)parser->problem_value & 0xffu, parser->problem_offset);
        else
            ld_report(ld, line_of_offset(text, len, parser->problem_offset),
                      "invalid YAML: %s (at offset %zu)", problem, parser->problem_offset);
        break;
    default:
        if (parser->context != NULL)
            ld_report(ld, parser->problem_mark.line + 1, "invalid YAML: %s (%s at line %zu)",
                      problem, parser->context, parser->context_mark.line + 1);
        else
            ld_report(ld, parser->problem_mark.line + 1, "invalid YAML: %s", problem);
        break;
    }
}

/* The file must hold one document: a second one is a mistake (a stray "---" line joining
 * two files), not something to ignore. */
static void
check_single_document(struct loader *ld, yaml_parser_t *parser, const char *text, size_t len)
{
    yaml_document_t next;
    yaml_node_t *root;

    if (!yaml_parser_load(parser, &next)) {
        report_yaml_error(ld, parser, text, len);
        return;
    }
    root = yaml_document_get_root_node(&next);
    if (root != NULL)
        ld_report(ld, ld_node_line(root),
                  "a second YAML document starts here; the file must hold exactly one");
    yaml_document_delete(&next);
}

/* `path` as it goes into a message: as written, or quoted (and shortened) when it holds
 * bytes that would break the one-error-per-line format. */
static const char *
shown_path(const char *path, char *buf)
{
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return ld_quote(path, strlen(path), buf);
    return path;
}

/* Whether this process may read `path`, which `key` at `line` names (a cfg_file_cb; `arg`
 * is the loader). A file it may not read is reported here, with who the process is,
 * instead of by tls.c or geo.c as a bare "Permission denied": that is what a reload meets
 * once Meridian gave up root at start (privileges.c) and a certificate, key or database is
 * root's alone. Other failures (no such file) are left to the reader's own message. */
static void
check_readable(void *arg, const char *key, const char *path, int line)
{
    struct loader *ld = arg;
    char who[256], buf[QUOTE_BUF];

    if (access(path, R_OK) == 0 || errno != EACCES)
        return;
    privileges_describe_self(who, sizeof(who));
    ld_report(ld, (size_t)line,
              "%s: %s is not readable (permission denied): meridian runs as %s; make it "
              "readable by that user or group",
              key, shown_path(path, buf), who);
}

/* Hands a generation that passed every check here to tls.c, which reads the certificate
 * and key files and builds each TLS listener's runtime, and to tls_upstream.c, which does
 * the same for the TLS sections of regions and backends. Its messages are "file:line: ...\n"
 * lines like ours and join them. Whatever runtimes it built before failing stay with the
 * generation, which cfg_unref frees. Returns 0 or -1. */
static int
prepare_tls(struct loader *ld)
{
    char *tls_errors = NULL;

    const struct cfg *reuse = ld->opts->reuse_files ? ld->opts->prev : NULL;
    int rc = tls_prepare(ld->cfg, reuse, &tls_errors);
    if (tls_upstream_prepare(ld->cfg, reuse, &tls_errors) < 0)
        rc = -1;
    if (rc == 0) {
        free(tls_errors); /* nothing is expected on success; ignore a stray text */
        return 0;
    }
    if (tls_errors != NULL)
        errors_adopt(ld, tls_errors);
    free(tls_errors);
    if (ld->nerrors == 0 && ld->dropped == 0)
        ld_report(ld, 0, "setting up TLS failed without a reason (out of memory?)");
    return -1;
}

/* The loader proper. `dir` ("" or ending in "/") is prepended to relative file paths. */
static struct cfg *
load_text(const char *name, const char *dir, const char *text, size_t len,
          const struct cfg_load_opts *opts, char **errors)
{
    static const struct cfg_load_opts no_opts;
    struct loader ld;
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root;
    struct cfg *result = NULL;

    memset(&ld, 0, sizeof(ld));
    ld.name = name;
    ld.dir = dir;
    ld.opts = opts != NULL ? opts : &no_opts;
    *errors = NULL;

    ld.cfg = cfg_new();
    if (ld.cfg == NULL || (ld.cfg->path = strdup(name)) == NULL ||
        (ld.cfg->source = malloc(len + 1)) == NULL) {
        ld.oom = true;
        goto done;
    }
    memcpy(ld.cfg->source, text, len);
    ld.cfg->source[len] = '\0';
    ld.cfg->source_len = len;
    if (!yaml_parser_initialize(&parser)) {
        ld.oom = true;
        goto done;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        report_yaml_error(&ld, &parser, text, len);
        goto delete_parser;
    }

    root = yaml_document_get_root_node(&doc);
    if (root == NULL) {
        ld_report(&ld, 1,
                  "the file is empty; expected a mapping with at least listeners and "
                  "regions");
        goto delete_doc;
    }
    ld.doc = &doc;
    ld.max_visits = (size_t)(doc.nodes.top - doc.nodes.start) + LOAD_MAX_ALIAS_VISITS;
    load_root(&ld, root);
    check_single_document(&ld, &parser, text, len);

    if (ld_clean(&ld))
        cfg_load_routing_build(&ld);
    /* The files the configuration names (the GeoIP database, certificates) are read only
     * for a file that is otherwise right: reading them for a file with a typo would only
     * add noise to the real error. Both are read, so one run reports both; first, those
     * this process may not read at all are named, with who it is. */
    if (ld_clean(&ld) && !ld.opts->reuse_files)
        cfg_each_file(ld.cfg, check_readable, &ld);
    if (ld_clean(&ld)) {
        int geo_rc = cfg_load_routing_open_geoip(&ld);
        int tls_rc = prepare_tls(&ld);
        if (geo_rc == 0 && tls_rc == 0 && ld_clean(&ld)) {
            result = ld.cfg;
            ld.cfg = NULL;
        }
    }

delete_doc:
    yaml_document_delete(&doc);
delete_parser:
    yaml_parser_delete(&parser);
done:
    if (result == NULL)
        *errors = errors_join(&ld);
    loader_deinit(&ld);
    return result;
}

/* Out of memory leaves *errors NULL only if even the message cannot be allocated. Relative
 * file paths stay as written, that is relative to the current directory. */
struct cfg *
cfg_load_text(const char *name, const char *text, size_t len, char **errors)
{
    return load_text(name, "", text, len, NULL, errors);
}

struct cfg *
cfg_load_text_opts(const char *name, const char *text, size_t len, const struct cfg_load_opts *opts,
                   char **errors)
{
    return load_text(name, "", text, len, opts, errors);
}

/* Reads the whole file into a malloc'd buffer. Returns 0, or -1 with a message in `ld`. */
static int
read_file(struct loader *ld, const char *path, char **text, size_t *len)
{
    FILE *f;
    char *buf = NULL;
    size_t size = 0, cap = 0;
    int rc = -1;

    f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        char note[512];

        /* After giving up root, a reload reads the file as the user it became. */
        ld_report(ld, 0, "cannot open: %s%s", strerror(e), privileges_note(e, note, sizeof(note)));
        return -1;
    }
    for (;;) {
        size_t got;
        if (size > LOAD_MAX_FILE_BYTES) {
            ld_report(ld, 0, "larger than %u MiB; is this the configuration file?",
                      LOAD_MAX_FILE_BYTES >> 20);
            goto free_buf;
        }
        if (size == cap) {
            char *grown;
            cap = cap ? cap * 2 : 16384;
            grown = realloc(buf, cap);
            if (grown == NULL) {
                ld->oom = true;
                goto free_buf;
            }
            buf = grown;
        }
        got = fread(buf + size, 1, cap - size, f);
        size += got;
        if (got == 0) {
            if (ferror(f)) {
                ld_report(ld, 0, "cannot read: %s", strerror(errno));
                goto free_buf;
            }
            break;
        }
    }
    *text = buf;
    *len = size;
    buf = NULL;
    rc = 0;

free_buf:
    free(buf);
    fclose(f);
    return rc;
}

/* The file's directory as written ("conf/", "/etc/"; "" for a bare name): joined to a
 * relative certificate path it names the same file from the current directory. NULL when
 * out of memory. */
static char *
dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return strndup(path, slash != NULL ? (size_t)(slash - path) + 1 : 0);
}

struct cfg *
cfg_load_file_opts(const char *path, const struct cfg_load_opts *opts, char **errors)
{
    struct loader ld;
    char *text = NULL, *dir;
    size_t len = 0;
    struct cfg *cfg;

    memset(&ld, 0, sizeof(ld));
    ld.name = path;
    *errors = NULL;
    if (read_file(&ld, path, &text, &len) < 0) {
        *errors = errors_join(&ld);
        loader_deinit(&ld);
        return NULL;
    }
    dir = dir_of(path);
    if (dir == NULL) {
        ld.oom = true;
        *errors = errors_join(&ld);
        loader_deinit(&ld);
        free(text);
        return NULL;
    }
    loader_deinit(&ld);
    cfg = load_text(path, dir, text, len, opts, errors);
    free(dir);
    free(text);
    return cfg;
}

struct cfg *
cfg_load_file(const char *path, char **errors)
{
    return cfg_load_file_opts(path, NULL, errors);
}

struct cfg *
cfg_load_again(const struct cfg *prev, const struct cfg_load_opts *opts, char **errors)
{
    char *dir = dir_of(prev->path);
    struct cfg *cfg;

    *errors = NULL;
    if (dir == NULL || prev->source == NULL) {
        free(dir);
        *errors = strdup("out of memory\n");
        return NULL;
    }
    cfg = load_text(prev->path, dir, prev->source, prev->source_len, opts, errors);
    free(dir);
    return cfg;
}
