/* SPDX-License-Identifier: MIT */
/* Upstream connection pools, one per backend address per worker: idle keep-alive
 * connections reused across requests, connects for new ones, and the "failed recently"
 * mark the load balancer skips. The stream does the reads and writes; this module owns
 * the sockets, their events and their lifetime. */
#ifndef MERIDIAN_UPSTREAM_H
#define MERIDIAN_UPSTREAM_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/time.h>

#include "upstream-t.h"

/* How long an idle upstream connection is kept. Shorter than the keep-alive timeouts of
 * common servers (nginx 75 s, Apache 5 s is the exception: then the stale-connection
 * retry in stream.c covers it). */
#define UPSTREAM_IDLE_MS 30000
/* After a failed connect, new requests avoid the backend for this long. */
#define UPSTREAM_DOWN_MS 5000

/* The worker's pool for `addr` spoken to with `tls` (NULL: clear text), created if needed.
 * The caller counts its use with pool->snap_refs++ and lets go with upstream_pool_unref().
 * NULL when out of memory. */
struct upstream_pool *upstream_pool_get(struct worker *w, const struct cfg_addr *addr,
                                        struct tls_upstream *tls);
void upstream_pool_unref(struct upstream_pool *pool);

/* Close every idle connection of every pool of `w` (shutdown). */
void upstream_close_all_idle(struct worker *w);
/* After the worker adopts a generation: close the idle connections of backends it drains
 * everywhere (weight 0 or drain: true), which no new request will take. */
void upstream_close_drained_idle(struct worker *w);

/* A connection for stream `s`: an idle one if there is one, else a new connect in
 * progress (uc->connecting). Returns 0 with *out set, or -errno. */
int upstream_acquire(struct upstream_pool *pool, struct stream *s, struct upstream_conn **out);

/* The stream is done with `uc`: back to the idle list if `reusable`, else closed. */
void upstream_release(struct upstream_conn *uc, bool reusable);

/* The stream's reads and writes on a BUSY connection, in clear text or through TLS: bytes
 * (> 0); 0 at the end of the backend's stream (recv only); -1 with errno (EAGAIN: not now,
 * the connection arms what it waits for itself when TLS needs the other direction). */
ssize_t upstream_recv(struct upstream_conn *uc, void *p, size_t n);
ssize_t upstream_send(struct upstream_conn *uc, const void *p, size_t n);
/* Whether a read would find bytes already taken off the socket (TLS read-ahead): then a
 * short read does not mean the socket is drained. */
bool upstream_has_buffered_input(const struct upstream_conn *uc);

/* Read interest with a timeout (NULL: none), or none at all. */
void upstream_read_on(struct upstream_conn *uc, const struct timeval *tv);
void upstream_read_off(struct upstream_conn *uc);
/* Write interest, while a write could not complete or a connect is in progress. */
void upstream_write_on(struct upstream_conn *uc, const struct timeval *tv);
void upstream_write_off(struct upstream_conn *uc);

/* Outcome of a connect, for the down mark the balancer reads. */
void upstream_pool_failed(struct upstream_pool *pool);
void upstream_pool_succeeded(struct upstream_pool *pool);

#endif
