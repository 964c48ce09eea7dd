/* SPDX-License-Identifier: MIT */
/* TLS to backends (OpenSSL 3, client side): one context per region `tls` section and per
 * backend that overrides it, built with its generation after the walk; per connection, the
 * SSL with SNI, the name the certificate must carry, ALPN and the session to resume.
 *
 * Sessions are resumed from a slot the caller owns (an SSL_SESSION *): one per backend per
 * worker for requests (upstream_pool), one per health target for checks. OpenSSL hands
 * every new session (TLS 1.3 tickets arrive after the handshake, during a read) to a
 * callback that stores it in the slot of the connection it came on; the slot's owner
 * thread is the only one that drives that connection, so no lock is needed.
 *
 * A runtime is shared and reference counted: the generation holds one, and pools and health
 * targets hold theirs, since they outlive generations. Settings that would make one
 * connection unfit for another (CA file, SNI, ALPN, client certificate, minimum protocol,
 * verification) make up its key: a pool only reuses connections made under the same key. */
#ifndef MERIDIAN_TLS_UPSTREAM_H
#define MERIDIAN_TLS_UPSTREAM_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

struct cfg;
struct cfg_addr;
struct tls_upstream;

/* `reuse` (NULL: none) is a generation whose runtimes are taken, by reference, for sections
 * with the same key instead of reading the files again (a new generation for DNS changes).
 * Build the runtime of every enabled `tls` section of `cfg`'s regions and backends (CA file
 * or the system's CAs loaded, client certificate checked against its key). On failure
 * appends "file:line: message\n" lines to *errors and returns -1; runtimes built so far stay
 * with the generation, which frees them. */
int tls_upstream_prepare(struct cfg *cfg, const struct cfg *reuse, char **errors);

/* Any thread. NULL is accepted. */
struct tls_upstream *tls_upstream_ref(struct tls_upstream *t);
void tls_upstream_unref(struct tls_upstream *t);

/* The settings' identity: equal keys, interchangeable connections. "" for NULL (clear). */
const char *tls_upstream_key(const struct tls_upstream *t);

/* A client SSL for a connected socket to `addr`. The certificate must name the section's
 * `sni` when set (which is also sent), else `addr`'s IP (no SNI: RFC 6066 forbids
 * literals). `slot` is where its sessions are kept and read from; it must outlive the SSL.
 * NULL when out of memory. */
SSL *tls_upstream_conn_new(struct tls_upstream *t, int fd, const struct cfg_addr *addr,
                           SSL_SESSION **slot);

/* Advance the handshake: 1 done, TLS_AGAIN (see *want_write), -1 failed with the reason in
 * `why` ("certificate verify failed: hostname mismatch", "connection reset by peer", ...).
 * A failure also forgets the slot's session, which may be what the backend refused. */
int tls_upstream_handshake(SSL *ssl, bool *want_write, char *why, size_t len);

/* Close: a close_notify if the handshake was done (and the socket takes it), then free. The
 * socket is the caller's to close. NULL is accepted. */
void tls_upstream_conn_free(SSL *ssl);

#endif
