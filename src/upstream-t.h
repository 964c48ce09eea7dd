/* SPDX-License-Identifier: MIT */
/* Types of upstream pools and connections, for the inlines and the stream that drives
 * them. Functions are in upstream.h. */
#ifndef MERIDIAN_UPSTREAM_T_H
#define MERIDIAN_UPSTREAM_T_H

#include <event2/event_struct.h>
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
 * While BUSY the stream does the reads and writes on `fd`; the events are this
 * connection's and stay registered for its whole life, so a reused connection costs no
 * epoll_ctl.
 */
struct upstream_conn {
    int fd;
    bool connecting;
    bool reused; /* served a request before this one */
    bool read_enabled;
    struct upstream_pool *pool;  /* borrows: the pool outlives its connections */
    struct stream *stream;       /* borrows; NULL while idle */
    struct upstream_conn *next;  /* pool idle list */
    struct upstream_conn *prev;
    uint32_t nrequests;
    struct event rev;
    struct event wev;
};

#endif
