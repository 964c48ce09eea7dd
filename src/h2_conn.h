/* SPDX-License-Identifier: MIT */
/* HTTP/2 on a client connection, over nghttp2: each stream becomes a `struct stream`
 * through the same routing and upstream pools as HTTP/1.1, with flow control tied to the
 * upstream's backpressure, and the protections nghttp2 leaves to us: a concurrent stream
 * limit, a decoded header-list limit, a limit on resets (ours and the client's: rapid
 * reset, "MadeYouReset") and on control frames (SETTINGS/PING floods). */
#ifndef MERIDIAN_H2_CONN_H
#define MERIDIAN_H2_CONN_H

#include "conn-t.h"

struct worker;

/* Switch `c` to HTTP/2: after ALPN h2, or on an h2c listener when c->in starts with the
 * connection preface (which nghttp2 then reads from c->in). */
void h2_conn_start(struct conn *c);
void h2_conn_on_readable(struct conn *c);
void h2_conn_on_timeout(struct conn *c);
void h2_conn_on_drained(struct conn *c);
/* The worker adopted a new config generation and `c` stays on it: new streams take the new
 * generation; if its http2 settings differ from those `c` advertised, a SETTINGS frame
 * follows (the old limits hold until the client acknowledges it). */
void h2_conn_adopt(struct conn *c);
/* Graceful close (stop, or a reload that drops or changes the listener): RFC 9113 6.8's two
 * steps, GOAWAY(2^31-1) with a PING, then after the PING's ACK (or a second) the GOAWAY with
 * the last stream processed; no stream is cut, and the connection closes after the last. */
void h2_conn_shutdown(struct conn *c);
/* Free the session and abort its streams (from conn_close). */
void h2_conn_free(struct conn *c);
/* Free the worker's scratch memory (at worker exit). */
void h2_worker_deinit(struct worker *w);

#endif
