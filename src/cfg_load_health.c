/* SPDX-License-Identifier: MIT */
/* The health_check sections: the top level's, which every region starts from, and a
 * region's, whose keys override it key by key (or `false`, which turns checks off for that
 * region). Values and their checks only; health.c runs the checks. */
#define _POSIX_C_SOURCE 200809L

#include "cfg_loader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* health.c builds each request in fixed buffers of 256 bytes for the path and the host. */
#define HC_INTERVAL_MIN_MS 100
#define HC_INTERVAL_MAX_MS (3600u * 1000)

static const char *const keys[] = {"path", "host", "interval",      "timeout",
                                   "rise", "fall", "expect_status", "passive"};
enum { PATH = 0, HOST, INTERVAL, TIMEOUT, RISE, FALL, EXPECT, PASSIVE, NKEYS };
_Static_assert(NKEYS == sizeof(keys) / sizeof(keys[0]), "one enum entry per key");

/* "2s", "1500ms", "1h": a duration as the file would write it. */
static const char *
format_ms(uint32_t ms, char *buf, size_t size)
{
    if (ms != 0 && ms % (3600u * 1000) == 0)
        snprintf(buf, size, "%uh", (unsigned)(ms / (3600u * 1000)));
    else if (ms != 0 && ms % (60u * 1000) == 0)
        snprintf(buf, size, "%um", (unsigned)(ms / (60u * 1000)));
    else if (ms % 1000 == 0)
        snprintf(buf, size, "%us", (unsigned)(ms / 1000));
    else
        snprintf(buf, size, "%ums", (unsigned)ms);
    return buf;
}

/* Replaces *out with a copy of `text` (the old one, inherited or default, is freed). */
static void
set_string(struct loader *ld, char **out, const char *text)
{
    char *copy = ld_strdup(ld, text);

    if (copy != NULL) {
        free(*out);
        *out = copy;
    }
}

/* The request target: an absolute path of visible ASCII, which goes into the request
 * line as it is. */
static void
load_hc_path(struct loader *ld, const yaml_node_t *node, const char *path, char **out)
{
    char buf[QUOTE_BUF];
    const char *text = ld_scalar(ld, node, path);
    size_t len;
    bool ok;

    if (text == NULL)
        return;
    len = strlen(text);
    ok = text[0] == '/' && len <= CFG_HC_PATH_MAX;
    for (size_t i = 0; ok && i < len; i++)
        ok = (unsigned char)text[i] > 0x20 && (unsigned char)text[i] < 0x7f;
    if (!ok) {
        ld_report(ld, ld_node_line(node),
                  "%s: expected a path starting with \"/\", at most %d visible ASCII characters "
                  "(no spaces), got %s",
                  path, CFG_HC_PATH_MAX, ld_describe(node, buf));
        return;
    }
    set_string(ld, out, text);
}

/* The Host header: a name, or an IP literal, with a port or not. */
static void
load_hc_host(struct loader *ld, const yaml_node_t *node, const char *path, char **out)
{
    static const char host_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789.-_:[]";
    char buf[QUOTE_BUF];
    const char *text = ld_scalar(ld, node, path);
    size_t len;

    if (text == NULL)
        return;
    len = strlen(text);
    if (len == 0 || len > CFG_HC_HOST_MAX || strspn(text, host_chars) != len) {
        ld_report(ld, ld_node_line(node),
                  "%s: expected a host name like backend.example, of letters, digits, \".\", "
                  "\"-\", \"_\" (an IP literal and a port may use \":\", \"[\" and \"]\"), got %s",
                  path, ld_describe(node, buf));
        return;
    }
    set_string(ld, out, text);
}

/* A status 100..599 of three digits. */
static bool
parse_status(const char *text, size_t len, uint16_t *out)
{
    char digits[4];
    uint64_t v;

    if (len != 3)
        return false;
    memcpy(digits, text, 3);
    digits[3] = '\0';
    if (!ld_parse_uint(digits, 599, &v) || v < 100)
        return false;
    *out = (uint16_t)v;
    return true;
}

/* "200", "2xx" (any case) or "200-399" (low to high). */
static void
load_expect(struct loader *ld, const yaml_node_t *node, const char *path,
            struct cfg_health_check *hc)
{
    char buf[QUOTE_BUF];
    const char *text = ld_scalar(ld, node, path), *dash;
    uint16_t lo, hi;
    size_t len;

    if (text == NULL)
        return;
    len = strlen(text);
    dash = strchr(text, '-');
    if (len == 3 && text[0] >= '1' && text[0] <= '5' && (text[1] == 'x' || text[1] == 'X') &&
        (text[2] == 'x' || text[2] == 'X')) {
        lo = (uint16_t)((text[0] - '0') * 100);
        hi = (uint16_t)(lo + 99);
    } else if (dash != NULL) {
        if (!parse_status(text, (size_t)(dash - text), &lo) ||
            !parse_status(dash + 1, strlen(dash + 1), &hi) || lo > hi)
            goto bad;
    } else if (parse_status(text, len, &lo)) {
        hi = lo;
    } else {
        goto bad;
    }
    hc->expect_lo = lo;
    hc->expect_hi = hi;
    return;

bad:
    ld_report(ld, ld_node_line(node),
              "%s: expected a status 100..599, a class like 2xx, or a range like 200-399, got "
              "%s",
              path, ld_describe(node, buf));
}

/* Lays the keys of the mapping `node` over `hc`; what is left out keeps its value. */
static void
load_keys(struct loader *ld, const yaml_node_t *node, const char *path, struct cfg_health_check *hc)
{
    struct field f[NKEYS];
    char sub[PATH_BUF], buf[QUOTE_BUF], a[32], b[32];
    uint64_t v;
    bool interval_ok = true, timeout_ok = true;

    if (!ld_map_collect(ld, node, path, keys, NKEYS, f))
        return;
    if (f[PATH].value != NULL) {
        ld_subpath(sub, path, "path");
        load_hc_path(ld, f[PATH].value, sub, &hc->path);
    }
    if (f[HOST].value != NULL) {
        ld_subpath(sub, path, "host");
        load_hc_host(ld, f[HOST].value, sub, &hc->host);
    }
    if (f[INTERVAL].value != NULL) {
        uint32_t ms = UINT32_MAX;
        ld_subpath(sub, path, "interval");
        ld_duration(ld, f[INTERVAL].value, sub, true, &ms);
        interval_ok = ms >= HC_INTERVAL_MIN_MS && ms <= HC_INTERVAL_MAX_MS;
        if (interval_ok)
            hc->interval_ms = ms;
        else if (ms != UINT32_MAX)
            ld_report(ld, ld_node_line(f[INTERVAL].value), "%s: %s is out of range 100ms..1h", sub,
                      ld_describe(f[INTERVAL].value, buf));
    }
    if (f[TIMEOUT].value != NULL) {
        uint32_t ms = UINT32_MAX;
        ld_subpath(sub, path, "timeout");
        ld_duration(ld, f[TIMEOUT].value, sub, false, &ms);
        timeout_ok = ms != UINT32_MAX;
        if (timeout_ok)
            hc->timeout_ms = ms;
    }
    if (f[RISE].value != NULL) {
        ld_subpath(sub, path, "rise");
        if (ld_count(ld, f[RISE].value, sub, 1, CFG_MAX_HC_COUNT, &v))
            hc->rise = (uint32_t)v;
    }
    if (f[FALL].value != NULL) {
        ld_subpath(sub, path, "fall");
        if (ld_count(ld, f[FALL].value, sub, 1, CFG_MAX_HC_COUNT, &v))
            hc->fall = (uint32_t)v;
    }
    if (f[EXPECT].value != NULL) {
        ld_subpath(sub, path, "expect_status");
        load_expect(ld, f[EXPECT].value, sub, hc);
    }
    if (f[PASSIVE].value != NULL) {
        ld_subpath(sub, path, "passive");
        ld_bool(ld, f[PASSIVE].value, sub, &hc->passive);
    }

    /* A check must be over before the next one starts. Checked on the values in force
     * here (some perhaps inherited), by the section that gave either, once both are good. */
    if (!interval_ok || !timeout_ok || hc->timeout_ms <= hc->interval_ms)
        return;
    format_ms(hc->timeout_ms, a, sizeof(a));
    format_ms(hc->interval_ms, b, sizeof(b));
    if (f[TIMEOUT].value != NULL) {
        ld_subpath(sub, path, "timeout");
        ld_report(ld, ld_node_line(f[TIMEOUT].value),
                  "%s: %s is longer than the interval, %s; a check must end before the next "
                  "one starts",
                  sub, a, b);
    } else if (f[INTERVAL].value != NULL) {
        ld_subpath(sub, path, "interval");
        ld_report(ld, ld_node_line(f[INTERVAL].value),
                  "%s: %s is shorter than the timeout, %s; a check must end before the next "
                  "one starts",
                  sub, b, a);
    }
}

void
cfg_load_health_section(struct loader *ld, const yaml_node_t *node)
{
    struct cfg_health_check *hc = &ld->cfg->health_check;

    if (!ld_expect(ld, node, YAML_MAPPING_NODE, "health_check"))
        return;
    hc->enabled = true;
    hc->line = ld_line_int(ld_node_line(node));
    load_keys(ld, node, "health_check", hc);
    if (hc->path == NULL)
        hc->path = ld_strdup(ld, "/");
}

void
cfg_load_health_region(struct loader *ld, const yaml_node_t *node, const char *path,
                       struct cfg_health_check *hc)
{
    const struct cfg_health_check *top = &ld->cfg->health_check;
    char buf[QUOTE_BUF];
    const char *text;

    /* The top level's settings, strings copied: each region owns its own. */
    *hc = *top;
    hc->path = ld_strdup(ld, top->path != NULL ? top->path : "/");
    hc->host = top->host != NULL ? ld_strdup(ld, top->host) : NULL;
    if (node == NULL)
        return;

    hc->line = ld_line_int(ld_node_line(node));
    if (node->type == YAML_MAPPING_NODE) {
        hc->enabled = true;
        load_keys(ld, node, path, hc);
        return;
    }
    text = node->type == YAML_SCALAR_NODE ? ld_scalar(ld, node, path) : NULL;
    if (text != NULL && strcmp(text, "false") == 0) {
        hc->enabled = false;
    } else if (text != NULL && strcmp(text, "true") == 0) {
        hc->enabled = true;
    } else if (node->type != YAML_SCALAR_NODE || text != NULL) {
        ld_report(ld, ld_node_line(node),
                  "%s: expected a mapping of health check keys, or false to turn checks off "
                  "for this region, got %s",
                  path, ld_describe(node, buf));
    }
}
