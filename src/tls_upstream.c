/* SPDX-License-Identifier: MIT */
/* TLS to backends: contexts per `tls` section, connections, sessions. See tls_upstream.h. */
#include "tls_upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "tls.h"

struct tls_upstream {
    atomic_int refs;
    SSL_CTX *ctx; /* owns */
    char *sni;    /* owns; NULL: check the address's IP, send no SNI */
    bool verify;
    char key[]; /* the settings' identity (tls_upstream_key) */
};

/* SSL ex_data slot: the SSL_SESSION ** a connection's new sessions go to. */
static int slot_index = -1;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;

static void
slot_index_init(void)
{
    slot_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

struct tls_upstream *
tls_upstream_ref(struct tls_upstream *t)
{
    if (t != NULL)
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    return t;
}

void
tls_upstream_unref(struct tls_upstream *t)
{
    if (t == NULL || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
        return;
    SSL_CTX_free(t->ctx);
    free(t->sni);
    free(t);
}

const char *
tls_upstream_key(const struct tls_upstream *t)
{
    return t != NULL ? t->key : "";
}

/* A new session for the connection's slot: keep the latest (a TLS 1.3 server may send
 * several tickets; any one resumes). Returning 1 keeps the reference OpenSSL handed us. */
static int
new_session_cb(SSL *ssl, SSL_SESSION *session)
{
    SSL_SESSION **slot = SSL_get_ex_data(ssl, slot_index);
    if (slot == NULL || !SSL_SESSION_is_resumable(session))
        return 0;
    SSL_SESSION_free(*slot);
    *slot = session;
    return 1;
}

/* ---- building ---- */

/* Each path with its length before it, so that no two settings spell the same key. */
#define KEY_STR(p) (int)((p) ? strlen(p) : 0), (p) ? (p) : ""
#define KEY_ARGS(s)                                                                                \
    "verify=%d min=%u alpn=%d ca=%d:%s sni=%d:%s cert=%d:%s key=%d:%s", (s)->verify,               \
        (s)->min_protocol, (s)->alpn_http11, KEY_STR((s)->ca_file), KEY_STR((s)->sni),             \
        KEY_STR((s)->client_cert), KEY_STR((s)->client_key)

static char *
settings_key(const struct cfg_backend_tls *s)
{
    int n = snprintf(NULL, 0, KEY_ARGS(s));
    char *key = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (key != NULL)
        snprintf(key, (size_t)n + 1, KEY_ARGS(s));
    return key;
}

/* Whether OpenSSL's last error says a key is not the certificate's. */
static bool
key_mismatch(void)
{
    unsigned long e = ERR_peek_last_error();
    return ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH;
}

static SSL_CTX *
ctx_new(const struct cfg_backend_tls *s, const char *where, char **errors)
{
    char err[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        tls_add_error(errors, "%s: %s", where, tls_error_text(err, sizeof(err)));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx,
                                  s->min_protocol == CFG_TLS_V13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    /* A backend that closes without close_notify ends a close-delimited body as it would in
     * clear text (nginx does the same); truncation is the backend's to avoid. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Unlike client connections, upstream ones are few and busy: their buffers are kept
     * (no allocation per read or write), and read-ahead fills them in one read() where a
     * record would otherwise cost two (its header, then its body). */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session_cb);

    if (s->verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        int ok = s->ca_file != NULL ? SSL_CTX_load_verify_file(ctx, s->ca_file)
                                    : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            tls_add_error(errors, "%s.ca_file: cannot load \"%s\": %s", where,
                          s->ca_file ? s->ca_file : "the system's CAs",
                          tls_error_text(err, sizeof(err)));
            goto fail;
        }
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    if (s->alpn_http11 &&
        SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x08http/1.1", 9) != 0) {
        tls_add_error(errors, "%s.alpn: %s", where, tls_error_text(err, sizeof(err)));
        goto fail;
    }
    if (s->client_cert != NULL) {
        if (SSL_CTX_use_certificate_chain_file(ctx, s->client_cert) != 1) {
            tls_add_error(errors, "%s.client_cert: cannot load \"%s\": %s", where, s->client_cert,
                          tls_error_text(err, sizeof(err)));
            goto fail;
        }
        /* A key of the certificate's type but not its own fails the load itself. */
        bool loaded = SSL_CTX_use_PrivateKey_file(ctx, s->client_key, SSL_FILETYPE_PEM) == 1;
        if (!loaded && !key_mismatch()) {
            tls_add_error(errors, "%s.client_key: cannot load \"%s\": %s", where, s->client_key,
                          tls_error_text(err, sizeof(err)));
            goto fail;
        }
        if (!loaded || SSL_CTX_check_private_key(ctx) != 1) {
            tls_add_error(errors, "%s.client_key: \"%s\" is not the key of \"%s\"", where,
                          s->client_key, s->client_cert);
            ERR_clear_error();
            goto fail;
        }
    }
    return ctx;

fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* A runtime of `reuse` (any region's, backend's or name's section) made under `key`. */
static struct tls_upstream *
find_runtime(const struct cfg *reuse, const char *key)
{
    for (size_t i = 0; reuse != NULL && i < reuse->nregions; i++) {
        const struct cfg_region *r = &reuse->regions[i];
        if (r->tls.runtime != NULL && strcmp(r->tls.runtime->key, key) == 0)
            return r->tls.runtime;
        for (size_t b = 0; b < r->nbackends; b++) {
            const struct cfg_backend_tls *t = r->backends[b].tls_own;
            if (t != NULL && t->runtime != NULL && strcmp(t->runtime->key, key) == 0)
                return t->runtime;
        }
        for (size_t n = 0; n < r->nnames; n++)
            if (r->names[n].tls.runtime != NULL && strcmp(r->names[n].tls.runtime->key, key) == 0)
                return r->names[n].tls.runtime;
    }
    return NULL;
}

static int
build(const struct cfg *cfg, const struct cfg *reuse, struct cfg_backend_tls *s, const char *path,
      char **errors)
{
    char where[512];
    snprintf(where, sizeof(where), "%s:%d: %s", cfg->path, s->line, path);
    char *key = settings_key(s);
    struct tls_upstream *same = key ? find_runtime(reuse, key) : NULL;
    if (same != NULL) {
        free(key);
        s->runtime = tls_upstream_ref(same);
        return 0;
    }
    struct tls_upstream *t = key ? calloc(1, sizeof(*t) + strlen(key) + 1) : NULL;
    if (t == NULL) {
        free(key);
        tls_add_error(errors, "%s: out of memory", where);
        return -1;
    }
    memcpy(t->key, key, strlen(key) + 1);
    free(key);
    atomic_init(&t->refs, 1);
    t->verify = s->verify;
    if (s->sni != NULL && (t->sni = strdup(s->sni)) == NULL) {
        free(t);
        tls_add_error(errors, "%s: out of memory", where);
        return -1;
    }
    if ((t->ctx = ctx_new(s, where, errors)) == NULL) {
        tls_upstream_unref(t);
        return -1;
    }
    s->runtime = t;
    return 0;
}

int
tls_upstream_prepare(struct cfg *cfg, const struct cfg *reuse, char **errors)
{
    int rc = 0;
    char path[96];

    pthread_once(&slot_once, slot_index_init);
    if (slot_index < 0) {
        tls_add_error(errors, "%s: TLS to backends: no SSL ex_data slot", cfg->path);
        return -1;
    }
    for (size_t i = 0; i < cfg->nregions; i++) {
        struct cfg_region *r = &cfg->regions[i];
        snprintf(path, sizeof(path), "regions[%zu].tls", i);
        bool region_failed = r->tls.enabled && build(cfg, reuse, &r->tls, path, errors) < 0;
        if (region_failed)
            rc = -1;
        for (size_t b = 0; b < r->nbackends; b++) {
            struct cfg_backend_tls *own = r->backends[b].tls_own;
            if (own == NULL || !own->enabled)
                continue;
            /* Files it inherits from a region that failed with them: said once, there. */
            if (region_failed && cfg_backend_tls_same_files(own, &r->tls))
                continue;
            snprintf(path, sizeof(path), "regions[%zu].backends[%zu].tls", i,
                     r->backends[b].file_index);
            if (build(cfg, reuse, own, path, errors) < 0)
                rc = -1;
        }
        /* A name's section: its own keys or the region's, with the name as SNI. */
        for (size_t n = 0; n < r->nnames; n++) {
            struct cfg_backend_tls *t = &r->names[n].tls;
            if (!t->enabled || (region_failed && cfg_backend_tls_same_files(t, &r->tls)))
                continue;
            snprintf(path, sizeof(path), "regions[%zu].backends[%zu].tls", i,
                     r->names[n].file_index);
            if (build(cfg, reuse, t, path, errors) < 0)
                rc = -1;
        }
    }
    return rc;
}

/* ---- connections ---- */

SSL *
tls_upstream_conn_new(struct tls_upstream *t, int fd, const struct cfg_addr *addr,
                      SSL_SESSION **slot)
{
    SSL *ssl = SSL_new(t->ctx);
    if (ssl == NULL)
        return NULL;
    if (SSL_set_fd(ssl, fd) != 1 || SSL_set_ex_data(ssl, slot_index, slot) != 1)
        goto fail;
    SSL_set_connect_state(ssl);
    if (t->sni != NULL) {
        if (SSL_set_tlsext_host_name(ssl, t->sni) != 1)
            goto fail;
        if (t->verify && SSL_set1_host(ssl, t->sni) != 1)
            goto fail;
    } else if (t->verify) {
        char ip[INET6_ADDRSTRLEN];
        const void *a = addr->sa.ss_family == AF_INET6
                            ? (const void *)&((const struct sockaddr_in6 *)&addr->sa)->sin6_addr
                            : (const void *)&((const struct sockaddr_in *)&addr->sa)->sin_addr;
        if (inet_ntop(addr->sa.ss_family, a, ip, sizeof(ip)) == NULL ||
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ip) != 1)
            goto fail;
    }
    if (*slot != NULL)
        SSL_set_session(ssl, *slot); /* a session that no longer fits is simply not offered */
    return ssl;

fail:
    ERR_clear_error();
    SSL_free(ssl);
    return NULL;
}

int
tls_upstream_handshake(SSL *ssl, bool *want_write, char *why, size_t len)
{
    *want_write = false;
    errno = 0; /* SSL_ERROR_SYSCALL with errno 0 is the backend closing */
    int r = SSL_do_handshake(ssl);
    if (r == 1)
        return 1;
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        return TLS_AGAIN;
    if (e == SSL_ERROR_WANT_WRITE) {
        *want_write = true;
        return TLS_AGAIN;
    }
    long verdict = SSL_get_verify_result(ssl);
    if (verdict != X509_V_OK)
        snprintf(why, len, "certificate verify failed: %s", X509_verify_cert_error_string(verdict));
    else if (e == SSL_ERROR_SYSCALL && errno != 0)
        snprintf(why, len, "TLS handshake: %s", strerror(errno));
    else if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN)
        snprintf(why, len, "TLS handshake: closed by the backend");
    else {
        char err[200];
        snprintf(why, len, "TLS handshake: %s", tls_error_text(err, sizeof(err)));
    }
    ERR_clear_error();
    SSL_SESSION **slot = SSL_get_ex_data(ssl, slot_index);
    if (slot != NULL && *slot != NULL) {
        SSL_SESSION_free(*slot);
        *slot = NULL;
    }
    return -1;
}

void
tls_upstream_conn_free(SSL *ssl)
{
    if (ssl == NULL)
        return;
    if (SSL_is_init_finished(ssl)) {
        (void)SSL_shutdown(ssl); /* a close_notify, if the socket takes it */
        ERR_clear_error();
    }
    SSL_free(ssl);
}
