/* SPDX-License-Identifier: MIT */
/* TLS contexts (one generation's certificates and settings) and per-connection calls. */
#include "tls.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cfg.h"
#include "log.h"
#include "tls_ticket.h"

#define SNI_NAME_MAX 255

/* One SSL_CTX serving one set of names, with every certificate (ECDSA, RSA) for them. */
struct tls_ctx {
    SSL_CTX *ctx;        /* owns a reference */
    char **names;        /* owns: lower-case DNS names; "*.example.com" for wildcards */
    size_t nnames;
};

struct tls_listener {
    atomic_int refs;      /* generations sharing it (tls_prepare's reuse) */
    struct tls_ctx *ctxs; /* owns */
    size_t nctxs;
    size_t default_ctx;
    unsigned char alpn[32]; /* wire format: length-prefixed protocol names, our order */
    unsigned alpn_len;
    struct tls_ticket_key file_keys[TLS_TICKET_KEYS];
    int nfile_keys;       /* > 0 when the listener names a key file */
    uint32_t rotate_ms;
    bool tickets;
};

/* ---- errors ---- */

void
tls_add_error(char **errors, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    line[n] = '\0';
    size_t old = *errors ? strlen(*errors) : 0;
    char *grown = realloc(*errors, old + (size_t)n + 1);
    if (!grown)
        return;
    memcpy(grown + old, line, (size_t)n + 1);
    *errors = grown;
}

const char *
tls_error_text(char *buf, size_t size)
{
    unsigned long e = ERR_get_error();
    if (!e) {
        snprintf(buf, size, "unknown error");
    } else {
        ERR_error_string_n(e, buf, size);
    }
    ERR_clear_error();
    return buf;
}

/* ---- certificates ---- */

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *
lower_dup(const char *s, size_t n)
{
    if (n == 0 || n > SNI_NAME_MAX)
        return NULL;
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++)
        d[i] = (char)tolower((unsigned char)s[i]);
    d[n] = '\0';
    return d;
}

/* The DNS names a certificate is for: its SAN DNS entries, else its CN. Sorted. */
static int
cert_names(X509 *x, char ***out, size_t *nout)
{
    char **names = NULL;
    size_t n = 0;
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int count = sans ? sk_GENERAL_NAME_num(sans) : 0;
    if (count > 0) {
        names = calloc((size_t)count, sizeof(*names));
        if (!names)
            goto fail;
        for (int i = 0; i < count; i++) {
            const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
            if (g->type != GEN_DNS)
                continue;
            const unsigned char *p = ASN1_STRING_get0_data(g->d.dNSName);
            char *d = lower_dup((const char *)p, (size_t)ASN1_STRING_length(g->d.dNSName));
            if (d)
                names[n++] = d;
        }
    }
    GENERAL_NAMES_free(sans);
    sans = NULL;
    if (n == 0) {
        char cn[SNI_NAME_MAX + 1];
        int len = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
                                            sizeof(cn));
        if (len > 0) {
            char **grown = realloc(names, sizeof(*names));
            if (!grown)
                goto fail;
            names = grown;
            names[0] = lower_dup(cn, (size_t)len);
            if (names[0])
                n = 1;
        }
    }
    qsort(names, n, sizeof(*names), name_cmp);
    *out = names;
    *nout = n;
    return 0;

fail:
    GENERAL_NAMES_free(sans);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return -1;
}

static void
free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static bool
same_names(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

/* ---- callbacks ---- */

static int tls_listener_index = -1; /* SSL_CTX ex_data slot for the owning tls_listener */

static bool
name_matches(const char *pattern, const char *host)
{
    if (pattern[0] == '*' && pattern[1] == '.') {
        /* A wildcard covers exactly one label: *.example.com matches a.example.com. */
        const char *dot = strchr(host, '.');
        return dot && dot != host && strcmp(dot + 1, pattern + 2) == 0;
    }
    return strcmp(pattern, host) == 0;
}

static int
servername_cb(SSL *ssl, int *alert, void *arg)
{
    const struct tls_listener *tl = arg;
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!sni)
        return SSL_TLSEXT_ERR_OK; /* the default certificate */
    char host[SNI_NAME_MAX + 1];
    size_t n = strlen(sni);
    if (n > SNI_NAME_MAX)
        return SSL_TLSEXT_ERR_OK;
    for (size_t i = 0; i <= n; i++)
        host[i] = (char)tolower((unsigned char)sni[i]);
    /* Exact names win over wildcards. */
    const struct tls_ctx *wild = NULL;
    for (size_t c = 0; c < tl->nctxs; c++) {
        const struct tls_ctx *tc = &tl->ctxs[c];
        for (size_t i = 0; i < tc->nnames; i++) {
            if (strcmp(tc->names[i], host) == 0) {
                if (c != tl->default_ctx)
                    SSL_set_SSL_CTX(ssl, tc->ctx);
                return SSL_TLSEXT_ERR_OK;
            }
            if (!wild && tc->names[i][0] == '*' && name_matches(tc->names[i], host))
                wild = tc;
        }
    }
    if (wild && wild != &tl->ctxs[tl->default_ctx])
        SSL_set_SSL_CTX(ssl, wild->ctx);
    return SSL_TLSEXT_ERR_OK;
}

static int
alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
        unsigned int inlen, void *arg)
{
    const struct tls_listener *tl = arg;
    unsigned char *sel;
    /* Server preference: the first of our protocols that the client offers. */
    if (SSL_select_next_proto(&sel, outlen, tl->alpn, tl->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        /* No overlap: RFC 7301 wants a fatal alert, but HAProxy and nginx carry on
         * without ALPN (HTTP/1.x), and so do we: "curl --http1.0" offers only
         * "http/1.0" and should still work. */
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* ---- building a listener's contexts ---- */

static SSL_CTX *
ctx_new(const struct cfg_tls *t, struct tls_listener *tl, const char *where, char **errors)
{
    char err[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        tls_add_error(errors, "%s: %s", where, tls_error_text(err, sizeof(err)));
        return NULL;
    }
    int min = (t->protocols & CFG_TLS_V12) ? TLS1_2_VERSION : TLS1_3_VERSION;
    int max = (t->protocols & CFG_TLS_V13) ? TLS1_3_VERSION : TLS1_2_VERSION;
    SSL_CTX_set_min_proto_version(ctx, min);
    SSL_CTX_set_max_proto_version(ctx, max);
    /* Client renegotiation is off by default in OpenSSL 3. Cipher order: the client's,
     * as Mozilla's intermediate profile says: every suite offered is strong, and the client
     * knows whether it has AES instructions (else ChaCha20 is faster for it). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    /* Idle connections give their 17 KB read and write buffers back. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (t->ciphers && SSL_CTX_set_cipher_list(ctx, t->ciphers) != 1) {
        tls_add_error(errors, "%s: ciphers \"%s\": %s", where, t->ciphers,
                      tls_error_text(err, sizeof(err)));
        goto fail;
    }
    if (t->ciphersuites && SSL_CTX_set_ciphersuites(ctx, t->ciphersuites) != 1) {
        tls_add_error(errors, "%s: ciphersuites \"%s\": %s", where, t->ciphersuites,
                      tls_error_text(err, sizeof(err)));
        goto fail;
    }
    if (t->groups && SSL_CTX_set1_groups_list(ctx, t->groups) != 1) {
        tls_add_error(errors, "%s: groups \"%s\": %s", where, t->groups,
                      tls_error_text(err, sizeof(err)));
        goto fail;
    }
    if (t->session_cache > 0) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(ctx, t->session_cache);
        SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"meridian", 8);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    if (t->tickets) {
        SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket_cb);
        SSL_CTX_set_num_tickets(ctx, 1); /* one is enough for a browser; each costs a write */
    } else {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx, 0);
    }
    SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, tl);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, tl);
    SSL_CTX_set_ex_data(ctx, tls_listener_index, tl);
    return ctx;

fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* Certificates and keys must be regular files: a FIFO or a device would block the load
 * (and `meridian -t`) forever. */
static bool
regular_file(const char *path, const char *what, const char *where, char **errors)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        tls_add_error(errors, "%s: %s %s: %s", where, what, path, strerror(errno));
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        tls_add_error(errors, "%s: %s %s: not a regular file", where, what, path);
        return false;
    }
    return true;
}

static int
load_cert(SSL_CTX *ctx, const struct cfg_tls_cert *c, const char *where, char **errors)
{
    char err[256];
    if (!regular_file(c->key_path, "key", where, errors))
        return -1;
    if (SSL_CTX_use_certificate_chain_file(ctx, c->cert_path) != 1) {
        tls_add_error(errors, "%s: certificate %s: %s", where, c->cert_path,
                      tls_error_text(err, sizeof(err)));
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, c->key_path, SSL_FILETYPE_PEM) != 1) {
        unsigned long e = ERR_peek_error();
        if (ERR_GET_LIB(e) == ERR_LIB_X509 && (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ||
                                               ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH)) {
            ERR_clear_error();
            tls_add_error(errors, "%s: key %s does not match certificate %s", where, c->key_path,
                          c->cert_path);
        } else {
            tls_add_error(errors, "%s: key %s: %s", where, c->key_path,
                          tls_error_text(err, sizeof(err)));
        }
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        tls_add_error(errors, "%s: key %s does not match certificate %s", where, c->key_path,
                      c->cert_path);
        return -1;
    }
    return 0;
}

static X509 *
read_leaf(const char *path, const char *where, char **errors)
{
    if (!regular_file(path, "certificate", where, errors))
        return NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        tls_add_error(errors, "%s: certificate %s: %s", where, path, strerror(errno));
        return NULL;
    }
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!x) {
        char err[256];
        tls_add_error(errors, "%s: certificate %s: not a PEM certificate (%s)", where, path,
                      tls_error_text(err, sizeof(err)));
    }
    return x;
}

static struct tls_listener *
listener_build(const struct cfg *cfg, const struct cfg_listener *l, char **errors)
{
    const struct cfg_tls *t = l->tls;
    struct tls_listener *tl = calloc(1, sizeof(*tl));
    if (tl != NULL)
        atomic_init(&tl->refs, 1);
    if (!tl)
        return NULL;
    tl->ctxs = calloc(t->ncerts, sizeof(*tl->ctxs));
    if (!tl->ctxs)
        goto fail;
    tl->tickets = t->tickets;
    tl->rotate_ms = t->ticket_rotate_ms;
    for (size_t i = 0; i < t->nalpn; i++) {
        size_t n = strlen(t->alpn[i]);
        if (tl->alpn_len + 1 + n > sizeof(tl->alpn))
            break;
        tl->alpn[tl->alpn_len++] = (unsigned char)n;
        memcpy(tl->alpn + tl->alpn_len, t->alpn[i], n);
        tl->alpn_len += (unsigned)n;
    }

    int failed = 0;
    for (size_t i = 0; i < t->ncerts; i++) {
        const struct cfg_tls_cert *c = &t->certs[i];
        char where[512];
        snprintf(where, sizeof(where), "%s:%d: listener \"%s\"", cfg->path, c->line, l->name);
        X509 *x = read_leaf(c->cert_path, where, errors);
        if (!x) {
            failed = 1;
            continue;
        }
        char **names;
        size_t nnames;
        int rc = cert_names(x, &names, &nnames);
        X509_free(x);
        if (rc < 0 || nnames == 0) {
            if (rc == 0)
                free(names);
            tls_add_error(errors, "%s: certificate %s names no host (no SAN DNS entry, no CN)",
                          where, c->cert_path);
            failed = 1;
            continue;
        }
        /* Certificates for the same names (say ECDSA and RSA) share one context. */
        struct tls_ctx *tc = NULL;
        for (size_t k = 0; k < tl->nctxs; k++)
            if (same_names(tl->ctxs[k].names, tl->ctxs[k].nnames, names, nnames))
                tc = &tl->ctxs[k];
        if (tc) {
            free_names(names, nnames);
        } else {
            tc = &tl->ctxs[tl->nctxs];
            tc->ctx = ctx_new(t, tl, where, errors);
            if (!tc->ctx) {
                free_names(names, nnames);
                failed = 1;
                continue;
            }
            tc->names = names;
            tc->nnames = nnames;
            tl->nctxs++;
        }
        if (load_cert(tc->ctx, c, where, errors) < 0)
            failed = 1;
        if (c->is_default)
            tl->default_ctx = (size_t)(tc - tl->ctxs);
    }

    if (t->tickets && t->ticket_key_file) {
        char err[512];
        int n = tls_ticket_read_file(t->ticket_key_file, tl->file_keys, err, sizeof(err));
        if (n < 0) {
            tls_add_error(errors, "%s:%d: listener \"%s\": session_tickets.key_file: %s", cfg->path,
                          l->line, l->name, err);
            failed = 1;
        } else {
            tl->nfile_keys = n;
        }
    }
    if (failed)
        goto fail;
    return tl;

fail:
    tls_listener_free(tl);
    return NULL;
}

/* The runtime of `reuse`'s listener on the same address with the same settings. */
static struct tls_listener *
find_listener(const struct cfg *reuse, const struct cfg_listener *l)
{
    for (size_t i = 0; reuse != NULL && i < reuse->nlisteners; i++) {
        const struct cfg_listener *o = &reuse->listeners[i];
        if (o->tls != NULL && o->tls->runtime != NULL && strcmp(o->addr.text, l->addr.text) == 0 &&
            tls_settings_equal(o->tls, l->tls))
            return o->tls->runtime;
    }
    return NULL;
}

int
tls_prepare(struct cfg *cfg, const struct cfg *reuse, char **errors)
{
    if (tls_listener_index < 0)
        tls_listener_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    int rc = 0;
    const char *key_file = NULL;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        struct cfg_listener *l = &cfg->listeners[i];
        if (!l->tls)
            continue;
        if (l->tls->tickets && l->tls->ticket_key_file) {
            if (key_file && strcmp(key_file, l->tls->ticket_key_file) != 0) {
                tls_add_error(errors,
                              "%s:%d: listener \"%s\": session_tickets.key_file: all TLS listeners "
                              "share one ticket key ring; expected \"%s\" as set earlier",
                              cfg->path, l->line, l->name, key_file);
                rc = -1;
                continue;
            }
            key_file = l->tls->ticket_key_file;
        }
        struct tls_listener *same = find_listener(reuse, l);
        if (same != NULL) {
            atomic_fetch_add_explicit(&same->refs, 1, memory_order_relaxed);
            l->tls->runtime = same;
            continue;
        }
        l->tls->runtime = listener_build(cfg, l, errors);
        if (!l->tls->runtime)
            rc = -1;
    }
    return rc;
}

int
tls_activate(const struct cfg *cfg)
{
    uint32_t rotate = 0;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct cfg_listener *l = &cfg->listeners[i];
        if (!l->tls || !l->tls->runtime || !l->tls->tickets)
            continue;
        const struct tls_listener *tl = l->tls->runtime;
        if (tl->nfile_keys > 0)
            return tls_ticket_install(tl->file_keys, tl->nfile_keys, 0);
        if (rotate == 0 || tl->rotate_ms < rotate)
            rotate = tl->rotate_ms;
    }
    return tls_ticket_install(NULL, 0, rotate); /* rotate 0: tickets off, no rotation */
}

static bool
str_equal(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

bool
tls_settings_equal(const struct cfg_tls *a, const struct cfg_tls *b)
{
    if (!a || !b)
        return a == b;
    if (a->ncerts != b->ncerts || a->protocols != b->protocols || a->nalpn != b->nalpn ||
        a->tickets != b->tickets || a->ticket_rotate_ms != b->ticket_rotate_ms ||
        a->session_cache != b->session_cache || !str_equal(a->ciphers, b->ciphers) ||
        !str_equal(a->ciphersuites, b->ciphersuites) || !str_equal(a->groups, b->groups) ||
        !str_equal(a->ticket_key_file, b->ticket_key_file))
        return false;
    for (size_t i = 0; i < a->ncerts; i++) {
        const struct cfg_tls_cert *x = &a->certs[i], *y = &b->certs[i];
        if (x->is_default != y->is_default || !str_equal(x->cert_path, y->cert_path) ||
            !str_equal(x->key_path, y->key_path))
            return false;
    }
    for (size_t i = 0; i < a->nalpn; i++)
        if (!str_equal(a->alpn[i], b->alpn[i]))
            return false;
    return true;
}

void
tls_listener_free(struct tls_listener *tl)
{
    if (!tl || atomic_fetch_sub_explicit(&tl->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < tl->nctxs; i++) {
        SSL_CTX_free(tl->ctxs[i].ctx);
        free_names(tl->ctxs[i].names, tl->ctxs[i].nnames);
    }
    free(tl->ctxs);
    OPENSSL_cleanse(tl->file_keys, sizeof(tl->file_keys));
    free(tl);
}

/* ---- connections ---- */

SSL *
tls_conn_new(const struct tls_listener *tl, int fd)
{
    SSL *ssl = SSL_new(tl->ctxs[tl->default_ctx].ctx);
    if (!ssl)
        return NULL;
    if (SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return ssl;
}

static int
io_result(SSL *ssl, int ret, bool *want_other)
{
    int e = SSL_get_error(ssl, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        *want_other = false;
        return TLS_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        *want_other = true;
        return TLS_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        if (log_enabled(CFG_LOG_DEBUG)) {
            char err[256];
            log_debug("TLS: %s", tls_error_text(err, sizeof(err)));
        }
        ERR_clear_error();
        return -1;
    }
}

int
tls_handshake(SSL *ssl, bool *want_write)
{
    *want_write = false;
    int r = SSL_do_handshake(ssl);
    if (r == 1)
        return 1;
    int rc = io_result(ssl, r, want_write);
    return rc == 0 ? -1 : rc;
}

ssize_t
tls_recv(SSL *ssl, void *p, size_t n, bool *want_write)
{
    size_t got = 0;
    *want_write = false;
    int r = SSL_read_ex(ssl, p, n, &got);
    if (r == 1)
        return (ssize_t)got;
    return io_result(ssl, r, want_write);
}

ssize_t
tls_send(SSL *ssl, const void *p, size_t n, bool *want_read)
{
    size_t sent = 0;
    *want_read = false;
    int r = SSL_write_ex(ssl, p, n, &sent);
    if (r == 1)
        return (ssize_t)sent;
    bool want_write = false;
    int rc = io_result(ssl, r, &want_write);
    if (rc == TLS_AGAIN)
        *want_read = !want_write;
    return rc == 0 ? -1 : rc;
}

bool
tls_is_h2(SSL *ssl)
{
    const unsigned char *p;
    unsigned int len;
    SSL_get0_alpn_selected(ssl, &p, &len);
    return len == 2 && p[0] == 'h' && p[1] == '2';
}
