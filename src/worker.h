/* SPDX-License-Identifier: MIT */
/* Worker threads: one event loop each, with their own SO_REUSEPORT listening sockets,
 * connections, buffers and upstream pools, and no lock on the request path. The main
 * thread talks to a worker only by publishing a config generation (or the stop request)
 * and writing to the worker's eventfd; the worker picks it up at its next loop turn. */
#ifndef MERIDIAN_WORKER_H
#define MERIDIAN_WORKER_H

#include "access_log.h"
#include "worker-t.h"

/* Set up worker `id` (its event base and wake-up event). Main thread, before start. */
int worker_init(struct worker *w, struct server *srv, unsigned id);
int worker_start(struct worker *w);
/* Tell the worker to look at the server's state again (config, stopping). Any thread. */
void worker_wake(struct worker *w);
/* Wait for the worker's thread to end (it ends once stopping and out of connections);
 * worker_try_join() only looks: true when it has ended (joined now or before). Main
 * thread. */
void worker_join(struct worker *w);
bool worker_try_join(struct worker *w);
void worker_deinit(struct worker *w);

/* The current snapshot, with one more use counted (for a stream). */
struct snapshot *worker_snapshot_use(struct worker *w);
void snapshot_release(struct snapshot *snap);

/* Buffer an access log line; written out soon. */
void worker_access_log(struct worker *w, const struct access_log_entry *e);

/* Room for one more client connection under limits.max_connections (for the whole
 * process), asked before accept(). False: the process is full, and this worker stops
 * accepting until a connection closes (new clients wait in the listen backlog). Workers
 * accepting at the same instant may take the count up to nworkers - 1 past the limit:
 * no slot is held around an accept() that may find nothing. */
bool worker_conn_admit(struct worker *w);
/* Count an accepted connection; release it when it closes. */
void worker_conn_added(struct worker *w);
void worker_conn_release(struct worker *w);
/* Any thread: the worker waits for a slot (server.c wakes it when one frees). */
bool worker_paused_for_limit(struct worker *w);
/* Closed connections were freed: the worker may be done stopping. */
void worker_conn_gone(struct worker *w);

/* A cheap uniformly random 32-bit number from the worker's own generator (xorshift64): for
 * choices that only need to be spread (spilling, jitter), never for secrets. */
static inline uint32_t
worker_random(struct worker *w)
{
    uint64_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w->rng = x;
    return (uint32_t)(x >> 32);
}
/* accept() failed with `err` (out of descriptors or memory): stop accepting for a while. */
void worker_accept_backoff(struct worker *w, int err);

#endif
