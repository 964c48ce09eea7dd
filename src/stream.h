/* SPDX-License-Identifier: MIT */
/* The proxied exchange (see stream-t.h for its life). The client protocol creates a
 * stream per request, starts it with the normalised request, feeds it the request body,
 * and hears back through struct stream_client_ops. Upstream I/O events arrive through the
 * stream_upstream_*() entry points, called by upstream.c.
 *
 * Ownership: the client protocol owns a stream until it is started; from then on the
 * stream ends itself (after response_end, response_error, or a -1 from an op), or the
 * client ends it with stream_abort(). After any of those, the stream is gone. */
#ifndef MERIDIAN_STREAM_H
#define MERIDIAN_STREAM_H

#include "stream-t.h"

struct cfg;

/* Our own 503s (no region with a backend to try, out of memory) tell the client when to
 * come back: about when a health check may have brought a backend back. */
#define STREAM_RETRY_AFTER_S "5"
#define STREAM_RETRY_AFTER_HEADER "Retry-After: " STREAM_RETRY_AFTER_S "\r\n"

struct stream *stream_new(struct worker *w, const struct stream_client_ops *ops, void *client);

/* Pick a backend and send the request head. Returns 0 when started (the ops may already
 * have been called: check your state), or an HTTP status (431, 502, 503...) when it could
 * not start: the access log line is written (with the client, country and region found),
 * and the caller answers with that status and frees the stream with stream_free(). */
int stream_start(struct stream *s, const struct stream_request *req);

/* Give the worker's cached free streams back to malloc (at worker exit). */
void stream_worker_deinit(struct worker *w);

/* Free a stream that was never started. */
void stream_free(struct stream *s);

/* Room for request body bytes now; when 0, the stream calls ops->request_resume later. */
uint32_t stream_request_room(struct stream *s);
/* The same, when the caller needs `need` bytes at once: below that, request_resume comes
 * once the upstream side has written what it holds. */
uint32_t stream_request_room_for(struct stream *s, uint32_t need);
/* n <= stream_request_room() bytes of body (raw chunked framing for chunked bodies, or
 * tunnel bytes after a 101). */
void stream_request_body(struct stream *s, const char *p, uint32_t n);
/* The request is complete. `trailers` (len bytes of "name: value\r\n" lines, or NULL)
 * go to the backend after the last chunk of a chunk-framed body, and need
 * stream_request_room_for(s, len) first; with a Content-Length body they are dropped. */
void stream_request_end(struct stream *s, const char *trailers, uint32_t len);

/* The client has room for response bytes again. */
void stream_client_drained(struct stream *s);

/* A websocket tunnel has one idle limit (timeouts.tunnel) for both directions: each side
 * re-arms its read timer with stream_tunnel_timeout() after bytes, and when that timer
 * fires asks stream_tunnel_time_left(): true, with *left set, if bytes moved the other
 * way meanwhile (re-arm with *left); false once the tunnel has been silent both ways. */
const struct timeval *stream_tunnel_timeout(const struct stream *s);
bool stream_tunnel_time_left(const struct stream *s, struct timeval *left);

/* The client went away or broke the protocol: drop the upstream side, log with `status`
 * (499 for a client that left, like nginx), free the stream. Calls no op. */
void stream_abort(struct stream *s, int status);

/* For upstream.c. */
void stream_upstream_connected(struct stream *s, int err, const char *why);
void stream_upstream_readable(struct stream *s);
void stream_upstream_writable(struct stream *s);
void stream_upstream_timeout(struct stream *s);

/* Whether a client's header field `name` is one we set for the backend (routing's
 * X-Client-Country / X-Client-Region): such fields from a client are dropped, in the
 * head and in trailers, or the backend would take a spoofed one for ours. */
bool stream_header_is_ours(const struct cfg *cfg, struct span name);

/* Access log helper shared with protocol code answering on its own (400, 408 ...). */
void stream_log_local(struct worker *w, const char *client_ip, const char *request,
                      const char *protocol, int status, uint64_t start_us);

#endif
