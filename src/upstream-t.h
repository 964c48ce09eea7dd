/* SPDX-License-Identifier: MIT */
/* Types of upstream pools and connections, for the inlines and the stream that drives
 * them. Functions are in upstream.h. */
#ifndef MERIDIAN_UPSTREAM_T_H
#define MERIDIAN_UPSTREAM_T_H

#include <event2/event_struct.h>
#include <openssl/ssl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cfg.h"

struct stream;
struct worker;

/* One backend address as one worker sees it: its idle keep-alive connections and whether
 * it failed lately. Pools are per worker (no locks) and outlive config generations: a
 * reload that keeps an address keeps its pool, warm connections included. */
struct upstream_pool {
    struct cfg_addr addr;
    /* Holds a ref: TLS to this backend, or NULL (clear text). Pools are found by address
     * and TLS key together; a generation with the same key hands its newer runtime over. */
    struct tls_upstream *tls;
    SSL_SESSION *tls_session;      /* owns: the session new connections resume, or NULL */
    struct worker *w;              /* borrows */
    struct upstream_pool *next;    /* the worker's list of pools */
    struct upstream_conn *idle;    /* owns: idle connections, most recently used first */
    uint32_t nidle;
    uint32_t nbusy;
    uint32_t snap_refs;            /* snapshots that route to this pool */
    uint32_t consecutive_failures;
    uint64_t down_until_ms;        /* skip for new requests until then (monotonic ms) */
    /* Written by the owning worker only; read by the admin thread. */
    atomic_uint_fast64_t stat_requests;
    atomic_uint_fast64_t stat_connects;
    atomic_uint_fast64_t stat_failures;
};

/*
 * An upstream connection's life:
 *
 *   upstream_acquire() --idle one--> BUSY <------------------+
 *          |                           | upstream_release(reusable)
 *          +--connect()--> CONNECTING  v                     |
 *                             |      IDLE (in pool->idle) ---+
 *                             v        | EOF, error, idle timeout
 *                           BUSY       v
 *                                    closed, freed
 *
 * CONNECTING covers the TCP connect and, to a TLS backend, the handshake after it (with one
 * deadline for both): the stream hears of neither until the connection can carry bytes.
 * While BUSY the stream reads and writes through upstream_recv()/upstream_send(), on the
 * socket or through `ssl`; the events are this connection's and stay registered for its
 * whole life, so a reused connection costs no epoll_ctl.
 */
struct upstream_conn {
    int fd;
    SSL *ssl; /* owns; NULL in clear text */
    bool connecting;
    bool handshaking; /* connected, TLS handshake under way (connecting still true) */
    bool reused;      /* served a request before this one */
    bool read_enabled;
    bool read_wants_write;        /* SSL_read needs the socket writable to go on */
    bool write_wants_read;        /* SSL_write needs it readable */
    uint64_t connect_deadline_ms; /* monotonic: connect and handshake must be done by then */
    struct upstream_pool *pool;  /* borrows: the pool outlives its connections */
    struct stream *stream;       /* borrows; NULL while idle */
    struct upstream_conn *next;  /* pool idle list */
    struct upstream_conn *prev;
    uint32_t nrequests;
    struct event rev;
    struct event wev;
};

#endif
