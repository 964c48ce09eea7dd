/* SPDX-License-Identifier: MIT */
/* TLS termination with OpenSSL 3: per-listener contexts built with each config generation
 * (certificates chosen by SNI from their own SAN lists, ECDSA and RSA side by side in one
 * context so the client's signature algorithms pick), ALPN, tickets (tls_ticket.c), and
 * the per-connection calls that drive SSL_do_handshake/SSL_read/SSL_write on our own
 * non-blocking sockets.
 *
 * Why not bufferevent_openssl: our connections read into pooled buffers and write with
 * one call per response; a bufferevent would add its own evbuffer chains (allocations and a
 * copy per read) and a second set of callbacks per connection, and would hold its buffers
 * while idle. Driving SSL directly keeps the plain and TLS paths the same shape. */
#ifndef MERIDIAN_TLS_H
#define MERIDIAN_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct cfg;
struct cfg_tls;
struct tls_listener;

/* Build the runtime of every TLS listener of `cfg` (each certificate loaded and checked
 * against its key, SNI names read from its SAN list, protocol and cipher settings applied,
 * key file read). On failure appends "file:line: message\n" lines to *errors (malloc'd,
 * NULL or an earlier text) and returns -1. A listener of `reuse` (NULL: none) on the same
 * address with the same settings lends its runtime instead (a new generation for DNS
 * changes, which reads no file again). */
int tls_prepare(struct cfg *cfg, const struct cfg *reuse, char **errors);

/* Main thread, when `cfg` becomes the running generation: install its ticket keys. */
int tls_activate(const struct cfg *cfg);

/* Whether two generations configure a listener's TLS alike (both NULL: plain): the same
 * certificate and key files, protocols, ciphers, groups, ALPN list, tickets and session
 * cache. A certificate renewed in the same file counts as alike: connections made with the
 * old one stay up (as a TLS session would), new handshakes get the new one. */
bool tls_settings_equal(const struct cfg_tls *a, const struct cfg_tls *b);

/* Let a generation's reference to a listener's runtime go (called when the generation is
 * freed); the last one frees it. */
void tls_listener_free(struct tls_listener *tl);

/* A server-side SSL for an accepted socket. NULL when out of memory. */
SSL *tls_conn_new(const struct tls_listener *tl, int fd);

/* Appends one "message\n" line to *errors (malloc'd; NULL or an earlier text), as the
 * prepare functions report (tls_upstream.c too). */
void tls_add_error(char **errors, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The first OpenSSL error on this thread's queue, as text; clears the queue. */
const char *tls_error_text(char *buf, size_t size);

#define TLS_AGAIN (-2)

/* Advance the handshake: 1 done, TLS_AGAIN (see *want_write), -1 failed. */
int tls_handshake(SSL *ssl, bool *want_write);
/* Read: bytes (> 0), 0 at a clean close, TLS_AGAIN (see *want_write), -1 error. */
ssize_t tls_recv(SSL *ssl, void *p, size_t n, bool *want_write);
/* Write: bytes (> 0), TLS_AGAIN (see *want_read), -1 error. */
ssize_t tls_send(SSL *ssl, const void *p, size_t n, bool *want_read);

/* After the handshake: true if ALPN chose h2. */
bool tls_is_h2(SSL *ssl);

#endif
