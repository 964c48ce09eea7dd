/* SPDX-License-Identifier: MIT */
/* Session-ticket keys: one ring for the process, shared by every worker and every TLS
 * listener, so a ticket issued by any worker resumes on any other. The first key encrypts
 * new tickets; the others only decrypt, so resumption survives a rotation (like HAProxy, we
 * keep three). Without a key file the main thread makes a random key every `rotate`; with
 * one (80-byte records: 16 name, 32 HMAC, 32 AES-256 key; the fleet's own rotation writes it
 * and sends SIGHUP) every node of a fleet shares the keys. */
#ifndef MERIDIAN_TLS_TICKET_H
#define MERIDIAN_TLS_TICKET_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

#define TLS_TICKET_KEYS 3
#define TLS_TICKET_KEY_FILE_RECORD 80

struct tls_ticket_key {
    unsigned char name[16];
    unsigned char hmac[32];
    unsigned char aes[32];
};

/* Read a key file: 1..TLS_TICKET_KEYS records. Returns the count, or -1 with `err`. */
int tls_ticket_read_file(const char *path, struct tls_ticket_key *keys, char *err,
                         size_t errlen);

/* Main thread: use these keys (from a file) and stop rotating, or (keys == NULL) make sure
 * random keys exist and rotate every rotate_ms. */
int tls_ticket_install(const struct tls_ticket_key *keys, int n, uint32_t rotate_ms);

/* Main thread, about once a second: rotate if the period is over. */
void tls_ticket_tick(uint64_t now_ms);

/* The OpenSSL callback (SSL_CTX_set_tlsext_ticket_key_evp_cb); any thread. */
int tls_ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv,
                  EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc);

/* Free everything (exit). */
void tls_ticket_shutdown(void);

#endif
