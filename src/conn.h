/* SPDX-License-Identifier: MIT */
/* Client connections: accepting them, reading and writing their bytes, their timers, and
 * closing them safely. A connection is never freed inside one of its own callbacks:
 * conn_close() closes the socket at once and frees the struct at the end of the loop
 * turn. The protocol spoken on top lives in h1_conn.c. */
#ifndef MERIDIAN_CONN_H
#define MERIDIAN_CONN_H

#include <event2/util.h>
#include <stdbool.h>
#include <sys/types.h>
#include <sys/time.h>

#include "conn-t.h"

struct worker;

void conn_worker_init(struct worker *w);
void conn_worker_deinit(struct worker *w);

/* Listener callback: accept what is waiting. */
void conn_accept_cb(evutil_socket_t fd, short what, void *arg);

/* Close: aborts the stream in progress, closes the socket, frees later. Idempotent. */
void conn_close(struct conn *c);

/* Graceful stop: close connections with no request in progress. */
void conn_close_idle(struct worker *w);
/* The worker adopted a new generation (its listeners already synced with it). HTTP/2
 * connections whose listener stays as it was carry on: their new streams take the new
 * generation (and changed http2 settings go out in a SETTINGS frame). Those whose listener
 * is gone, or changed its TLS settings or turned h2c off, are closed gracefully (two-step
 * GOAWAY; their streams finish). HTTP/1.1 connections simply carry on: each request takes
 * the generation current when it starts. */
void conn_adopt_generation(struct worker *w);
/* Final stop: close every connection. */
void conn_close_all(struct worker *w);

#define CONN_AGAIN (-2)

/* Read from the client (through TLS when there is TLS): bytes, 0 at end of stream,
 * CONN_AGAIN when nothing is there yet, -1 on error. */
ssize_t conn_recv(struct conn *c, void *p, size_t n);
/* TLS may hold decrypted bytes that the socket will not announce again. */
bool conn_has_buffered_input(struct conn *c);

/* Write what `out` holds. Returns 1 when it is all written (the buffer is given back), 0
 * when the rest waits for the socket (the write event is armed, with the idle timeout),
 * or -1 when the client is gone (the caller closes). */
int conn_flush(struct conn *c);

/* Read interest with `tv` as the inactivity limit. Beware: libevent keeps an earlier
 * timeout when tv is NULL, so pass a real one. */
void conn_read_on(struct conn *c, const struct timeval *tv);
/* Start a phase that must end by now + ms (the read timer fires then, whatever arrives
 * meanwhile: a persistent event's timeout would restart with every byte). */
void conn_deadline_start(struct conn *c, const struct timeval *tv, uint32_t ms);
/* After a read in such a phase: re-arm the timer for the time left. False if it is over. */
bool conn_deadline_rearm(struct conn *c);

/* Stop reading until conn_read_on(): no room for what might arrive. */
void conn_read_pause(struct conn *c);

/* Run the read callback soon (this loop turn), e.g. to handle pipelined bytes. */
void conn_schedule_read(struct conn *c);

#endif
