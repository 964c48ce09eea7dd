/* SPDX-License-Identifier: MIT */
/* The `tls` sections for backends: a region's, which every backend of it starts from, and a
 * backend's, whose keys override the region's key by key (or `false`: clear text to that
 * backend). Values and their checks only; tls_upstream.c reads the files and builds the
 * contexts once the walk is over. */
#define _POSIX_C_SOURCE 200809L

#include "cfg_loader.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SNI_MAX 253 /* a DNS name's longest text form */

static const char *const keys[] = {"enabled", "verify",      "ca_file",    "sni",
                                   "alpn",    "client_cert", "client_key", "min_protocol"};
enum { ENABLED = 0, VERIFY, CA_FILE, SNI, ALPN, CLIENT_CERT, CLIENT_KEY, MIN_PROTOCOL, NKEYS };
_Static_assert(NKEYS == sizeof(keys) / sizeof(keys[0]), "one enum entry per key");

/* A host name to send as SNI and check the certificate against: letters, digits, '-' and
 * '.', not an IP literal (RFC 6066 3 forbids literals in SNI). */
static void
load_sni(struct loader *ld, const yaml_node_t *node, const char *path, char **out)
{
    char buf[QUOTE_BUF];
    unsigned char ip[sizeof(struct in6_addr)];
    const char *text = ld_scalar(ld, node, path);
    size_t len;
    bool ok;

    if (text == NULL)
        return;
    len = strlen(text);
    ok = len > 0 && len <= SNI_MAX && text[0] != '.' && text[0] != '-';
    for (size_t i = 0; ok && i < len; i++) {
        char c = text[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '-' || c == '.';
    }
    if (ok && (inet_pton(AF_INET, text, ip) == 1 || inet_pton(AF_INET6, text, ip) == 1))
        ok = false;
    if (!ok) {
        ld_report(ld, ld_node_line(node),
                  "%s: expected a host name like \"api-eu.internal.example\" (letters, digits, "
                  "'-' and '.'; not an IP address, which TLS does not send as SNI), got %s",
                  path, ld_describe(node, buf));
        return;
    }
    free(*out);
    *out = ld_strdup(ld, text);
}

/* `alpn: [http/1.1]` (the default) or `alpn: []` (offer nothing). Backends are spoken to in
 * HTTP/1.1 only, so h2 is refused rather than offered and then not spoken. */
static void
load_alpn(struct loader *ld, const yaml_node_t *node, const char *path, bool *http11)
{
    static const char *const choices[] = {"http/1.1"};
    size_t picked[CHOICES_MAX], npicked = 0;

    if (node->type == YAML_SEQUENCE_NODE && ld_seq_len(node) == 0) {
        *http11 = false;
        return;
    }
    if (ld_choices(ld, node, path, choices, 1, true,
                   "http/1.1 (Meridian speaks HTTP/1.1 to backends), or [] for no ALPN", picked,
                   &npicked))
        *http11 = true;
}

static void
load_min_protocol(struct loader *ld, const yaml_node_t *node, const char *path, unsigned *out)
{
    char buf[QUOTE_BUF];
    const char *text = ld_scalar(ld, node, path);

    if (text == NULL)
        return;
    if (strcmp(text, "TLSv1.2") == 0)
        *out = CFG_TLS_V12;
    else if (strcmp(text, "TLSv1.3") == 0)
        *out = CFG_TLS_V13;
    else
        ld_report(ld, ld_node_line(node), "%s: expected TLSv1.2 or TLSv1.3, got %s", path,
                  ld_describe(node, buf));
}

/* A file key: replaces the inherited path (if any) with this one. */
static void
load_file(struct loader *ld, const yaml_node_t *node, const char *path, const char *what,
          char **out)
{
    char *p = NULL;

    ld_path(ld, node, path, what, &p);
    if (p != NULL) {
        free(*out);
        *out = p;
    }
}

static void
load_keys(struct loader *ld, const yaml_node_t *node, const char *path, struct cfg_backend_tls *t)
{
    struct field f[NKEYS];
    char sub[PATH_BUF];

    if (!ld_map_collect(ld, node, path, keys, NKEYS, f))
        return;
    t->enabled = true;
    if (f[ENABLED].value != NULL) {
        ld_subpath(sub, path, "enabled");
        ld_bool(ld, f[ENABLED].value, sub, &t->enabled);
    }
    if (f[VERIFY].value != NULL) {
        ld_subpath(sub, path, "verify");
        ld_bool(ld, f[VERIFY].value, sub, &t->verify);
    }
    if (f[CA_FILE].value != NULL) {
        ld_subpath(sub, path, "ca_file");
        load_file(ld, f[CA_FILE].value, sub, "a PEM file of trusted CA certificates", &t->ca_file);
    }
    if (f[SNI].value != NULL) {
        ld_subpath(sub, path, "sni");
        load_sni(ld, f[SNI].value, sub, &t->sni);
    }
    if (f[ALPN].value != NULL && !ld->aborted) {
        ld_subpath(sub, path, "alpn");
        load_alpn(ld, f[ALPN].value, sub, &t->alpn_http11);
    }
    if (f[CLIENT_CERT].value != NULL) {
        ld_subpath(sub, path, "client_cert");
        load_file(ld, f[CLIENT_CERT].value, sub, "a PEM certificate chain", &t->client_cert);
    }
    if (f[CLIENT_KEY].value != NULL) {
        ld_subpath(sub, path, "client_key");
        load_file(ld, f[CLIENT_KEY].value, sub, "a PEM private key", &t->client_key);
    }
    if (f[MIN_PROTOCOL].value != NULL) {
        ld_subpath(sub, path, "min_protocol");
        load_min_protocol(ld, f[MIN_PROTOCOL].value, sub, &t->min_protocol);
    }
    if ((t->client_cert == NULL) != (t->client_key == NULL))
        ld_report(ld, ld_node_line(node),
                  "%s: client_cert and client_key go together: give both, or neither", path);
}

/* `node` over `t`: a mapping of keys (enabled unless it says `enabled: false`), `true`
 * (enabled as it stands) or `false` (clear text). */
static void
load_over(struct loader *ld, const yaml_node_t *node, const char *path, struct cfg_backend_tls *t)
{
    char buf[QUOTE_BUF];
    const char *text;

    t->line = ld_line_int(ld_node_line(node));
    if (node->type == YAML_MAPPING_NODE) {
        load_keys(ld, node, path, t);
        return;
    }
    text = node->type == YAML_SCALAR_NODE ? ld_scalar(ld, node, path) : NULL;
    if (text != NULL && strcmp(text, "false") == 0) {
        t->enabled = false;
    } else if (text != NULL && strcmp(text, "true") == 0) {
        t->enabled = true;
    } else if (node->type != YAML_SCALAR_NODE || text != NULL) {
        ld_report(ld, ld_node_line(node),
                  "%s: expected a mapping of TLS keys (enabled, verify, ca_file, sni, alpn, "
                  "client_cert, client_key, min_protocol), true or false, got %s",
                  path, ld_describe(node, buf));
    }
}

void
cfg_load_backend_tls_region(struct loader *ld, const yaml_node_t *node, const char *path,
                            struct cfg_backend_tls *t)
{
    cfg_backend_tls_defaults(t);
    if (node != NULL)
        load_over(ld, node, path, t);
}

static char *
copy_or_null(struct loader *ld, const char *s)
{
    return s != NULL ? ld_strdup(ld, s) : NULL;
}

void
cfg_load_backend_tls_copy(struct loader *ld, struct cfg_backend_tls *to,
                          const struct cfg_backend_tls *from)
{
    *to = *from;
    to->runtime = NULL;
    to->ca_file = copy_or_null(ld, from->ca_file);
    to->sni = copy_or_null(ld, from->sni);
    to->client_cert = copy_or_null(ld, from->client_cert);
    to->client_key = copy_or_null(ld, from->client_key);
}

void
cfg_load_backend_tls_backend(struct loader *ld, const yaml_node_t *node, const char *path,
                             const struct cfg_backend_tls *region, struct cfg_backend *b)
{
    struct cfg_backend_tls *t = calloc(1, sizeof(*t));

    if (t == NULL) {
        ld->oom = true;
        return;
    }
    /* The region's settings, strings copied: the backend owns its own. */
    cfg_load_backend_tls_copy(ld, t, region);
    b->tls_own = t;
    load_over(ld, node, path, t);
}
