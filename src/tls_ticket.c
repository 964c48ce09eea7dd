/* SPDX-License-Identifier: MIT */
/* The ticket key ring. Rings are immutable once published through an atomic pointer; a
 * replaced ring is freed RING_GRACE_MS later, long after any handshake that loaded it has
 * finished, so readers take no lock. */
#include "tls_ticket.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clock.h"
#include "log.h"

struct ring {
    int n;
    struct tls_ticket_key keys[TLS_TICKET_KEYS];
    struct ring *next_retired;
    uint64_t retired_ms;
};

/* A replaced ring may still be read by a handshake on a worker for a few microseconds:
 * it is freed this long after it was replaced, never sooner. */
#define RING_GRACE_MS 10000

static _Atomic(struct ring *) current;
static struct ring *retired; /* main thread only: replaced rings, newest first */
static uint32_t rotate_every_ms;  /* 0: no rotation (keys from a file) */
static uint64_t last_rotation_ms;

static void
free_retired(uint64_t older_than_ms)
{
    for (struct ring **pp = &retired; *pp;) {
        struct ring *r = *pp;
        if (r->retired_ms <= older_than_ms) {
            *pp = r->next_retired;
            free(r);
        } else {
            pp = &r->next_retired;
        }
    }
}

static void
publish(struct ring *r)
{
    struct ring *old = atomic_exchange(&current, r);
    if (old) {
        old->retired_ms = clock_mono_ms();
        old->next_retired = retired;
        retired = old;
    }
}

static int
random_key(struct tls_ticket_key *k)
{
    return RAND_bytes((unsigned char *)k, sizeof(*k)) == 1 ? 0 : -1;
}

static int
rotate(void)
{
    struct ring *old = atomic_load(&current);
    struct ring *r = calloc(1, sizeof(*r));
    if (!r || random_key(&r->keys[0]) < 0) {
        free(r);
        return -1;
    }
    r->n = 1;
    for (int i = 0; old && i < old->n && r->n < TLS_TICKET_KEYS; i++)
        r->keys[r->n++] = old->keys[i];
    publish(r);
    last_rotation_ms = clock_mono_ms();
    return 0;
}

int
tls_ticket_read_file(const char *path, struct tls_ticket_key *keys, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        return -1;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    unsigned char raw[TLS_TICKET_KEY_FILE_RECORD * TLS_TICKET_KEYS + 1];
    size_t len = fread(raw, 1, sizeof(raw), f);
    fclose(f);
    if (len == 0 || len % TLS_TICKET_KEY_FILE_RECORD != 0 || len > sizeof(raw) - 1) {
        snprintf(err, errlen,
                 "%s: expected 1 to %d records of %d random bytes (16 name, 32 HMAC key, 32 "
                 "AES key), got %zu bytes",
                 path, TLS_TICKET_KEYS, TLS_TICKET_KEY_FILE_RECORD, len);
        return -1;
    }
    int n = (int)(len / TLS_TICKET_KEY_FILE_RECORD);
    for (int i = 0; i < n; i++) {
        const unsigned char *p = raw + i * TLS_TICKET_KEY_FILE_RECORD;
        memcpy(keys[i].name, p, 16);
        memcpy(keys[i].hmac, p + 16, 32);
        memcpy(keys[i].aes, p + 48, 32);
    }
    return n;
}

int
tls_ticket_install(const struct tls_ticket_key *keys, int n, uint32_t rotate_ms)
{
    if (keys) {
        struct ring *cur = atomic_load(&current);
        rotate_every_ms = 0;
        if (cur && cur->n == n && memcmp(cur->keys, keys, (size_t)n * sizeof(*keys)) == 0)
            return 0; /* a reload with the same key file: nothing changes */
        struct ring *r = calloc(1, sizeof(*r));
        if (!r)
            return -1;
        r->n = n;
        memcpy(r->keys, keys, (size_t)n * sizeof(*keys));
        publish(r);
        rotate_every_ms = 0;
        return 0;
    }
    rotate_every_ms = rotate_ms;
    if (rotate_ms && !atomic_load(&current))
        return rotate();
    return 0;
}

void
tls_ticket_tick(uint64_t now_ms)
{
    if (retired && now_ms > RING_GRACE_MS)
        free_retired(now_ms - RING_GRACE_MS);
    if (rotate_every_ms && now_ms - last_rotation_ms >= rotate_every_ms) {
        if (rotate() < 0)
            log_error("session ticket key rotation failed (out of randomness?)");
        else
            log_info("session ticket keys rotated");
    }
}

int
tls_ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
              EVP_MAC_CTX *hctx, int enc)
{
    struct ring *r = atomic_load_explicit(&current, memory_order_acquire);
    if (!r)
        return 0;
    const struct tls_ticket_key *k = NULL;
    int ret = 1;
    if (enc) {
        k = &r->keys[0];
        memcpy(key_name, k->name, 16);
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1)
            return -1;
        if (EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1)
            return -1;
    } else {
        for (int i = 0; i < r->n; i++) {
            if (memcmp(key_name, r->keys[i].name, 16) == 0) {
                k = &r->keys[i];
                ret = i == 0 ? 1 : 2; /* 2: valid, but issue a ticket under the new key */
                break;
            }
        }
        if (!k)
            return 0; /* unknown or expired key: a full handshake */
        if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1)
            return -1;
    }
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac,
                                                  sizeof(k->hmac));
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (EVP_MAC_CTX_set_params(hctx, params) != 1)
        return -1;
    return ret;
}

void
tls_ticket_shutdown(void)
{
    free(atomic_exchange(&current, NULL));
    free_retired(UINT64_MAX);
}
