/* SPDX-License-Identifier: MIT */
/* The HTTP/1.1 client side of the proxy. One request at a time per connection: pipelined
 * requests wait in the input buffer until the response before them is complete, which
 * keeps responses in order without queueing streams. */
#include "h1_conn.h"

#include <openssl/ssl.h>

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "client_ip.h"
#include "conn.h"
#include "h2_conn.h"
#include "hdr.h"
#include "writer.h"
#include "log.h"
#include "sock.h"
#include "stream.h"
#include "worker.h"

enum step {
    STEP_MORE = 0, /* state changed: look again */
    STEP_WAIT = 1, /* wait for an event */
};

static const struct stream_client_ops h1_stream_ops;

static void h1_linger_close(struct conn *c);

void
h1_conn_start(struct conn *c)
{
    c->h1.state = H1_IDLE;
    conn_read_on(c, c->w->snap->tv_client_idle);
}

static const char *
protocol_name(const struct h1_exchange *x)
{
    return x->minor_version ? "HTTP/1.1" : "HTTP/1.0";
}

/* Answer with a short error page and close the connection: after a request we could not
 * read, nothing that follows on the connection can be trusted. */
static void
h1_send_error(struct conn *c, int status)
{
    struct h1_exchange *x = &c->h1;
    x->state = H1_CLOSING;
    if (x->head_sent || buf_take(&c->w->bufs, &c->out) < 0) {
        conn_close(c);
        return;
    }
    const char *reason = h1_status_reason(status);
    char page[128];
    int plen = snprintf(page, sizeof(page), "%d %s\n", status, reason);
    char head[256];
    int hlen = snprintf(head, sizeof(head),
                        "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                        "%sConnection: close\r\n\r\n",
                        status, reason, plen, status == 503 ? STREAM_RETRY_AFTER_HEADER : "");
    if ((uint32_t)(hlen + plen) > buf_room(&c->out)) {
        conn_close(c);
        return;
    }
    buf_append(&c->out, head, (uint32_t)hlen);
    buf_append(&c->out, page, (uint32_t)plen);
    x->head_sent = true;
    int r = conn_flush(c);
    if (r < 0)
        conn_close(c);
    else if (r > 0)
        h1_linger_close(c);
}

/* An error found in the request itself: log it (no stream saw it) and answer. */
static void
h1_reject(struct conn *c, int status)
{
    char ip[SOCK_ADDR_TEXT_MAX];
    sock_ip_text(&c->peer.sa, ip, sizeof(ip));
    log_debug("client %s: request rejected with %d", ip, status);
    stream_log_local(c->w, ip, NULL, protocol_name(&c->h1), status, clock_mono_us());
    h1_send_error(c, status);
}

/* After the last response: stop sending, and read (and drop) what the client still sends
 * until it closes, so that closing does not reset the connection and destroy the
 * response in flight. Bounded by the header timeout. */
static void
h1_linger_close(struct conn *c)
{
    c->h1.state = H1_CLOSING;
    buf_drop(&c->w->bufs, &c->in);
    if (shutdown(c->fd, SHUT_WR) < 0) {
        conn_close(c);
        return;
    }
    conn_deadline_start(c, c->w->snap->tv_client_header,
                        c->w->snap->cfg->timeouts.client_header_ms);
}

static void
h1_discard_input(struct conn *c)
{
    char sink[4096];
    for (;;) {
        ssize_t n = conn_recv(c, sink, sizeof(sink));
        if (n > 0)
            continue;
        if (n == CONN_AGAIN && conn_deadline_rearm(c))
            return;
        conn_close(c); /* the client closed, or kept sending past the deadline */
        return;
    }
}

static enum step
h1_begin_request(struct conn *c, const struct h1_request *req, int head_len)
{
    struct worker *w = c->w;
    const struct cfg *cfg = w->snap->cfg;
    struct h1_exchange *x = &c->h1;

    /* A head that came in pieces left a deadline timer: back to the idle limit. */
    bool from_partial_head = x->state == H1_HEAD;
    x->minor_version = (uint8_t)req->minor_version;
    x->method = req->method_id;
    x->keepalive = req->minor_version >= 1 ? !(req->flags & H1_F_CONN_CLOSE)
                                           : (req->flags & H1_F_CONN_KEEPALIVE) != 0;
    if (w->stopping)
        x->keepalive = false;
    x->head_sent = false;
    x->close_after_response = false;
    x->chunked_to_client = false;
    x->req_body = req->body;
    x->req_remaining = req->content_length;
    x->req_body_bytes = 0;

    if (req->body == H1_BODY_LENGTH && cfg->limits.max_body_bytes &&
        req->content_length > cfg->limits.max_body_bytes) {
        h1_reject(c, 413);
        return STEP_WAIT;
    }
    if (req->body == H1_BODY_CHUNKED)
        h1_chunked_init(&x->req_chunked, cfg->limits.max_header_bytes);

    char ip[SOCK_ADDR_TEXT_MAX];
    sock_ip_text(&c->peer.sa, ip, sizeof(ip));
    struct stream *s = stream_new(w, &h1_stream_ops, c);
    if (!s) {
        h1_reject(c, 503);
        return STEP_WAIT;
    }
    struct stream_request sr = {
        .method_id = req->method_id,
        .method = req->method,
        .path = req->path,
        .authority = req->target_form == H1_TARGET_ABSOLUTE ? req->authority : req->host,
        .headers = req->headers,
        .num_headers = req->num_headers,
        .flags = req->flags,
        .body = req->body,
        .content_length = req->content_length,
        .proto = c->ssl ? "https" : "http",
        .tls = c->ssl ? SSL_get_version(c->ssl) : NULL,
        .client_ip = ip,
        .client_addr = &c->peer.sa,
        .client_ip_cfg = c->ls ? c->ls->client_ip : &client_ip_trust_nobody,
        .protocol = protocol_name(x),
    };
    x->state = req->body == H1_BODY_NONE ? H1_WAIT : H1_BODY;
    x->stream = s;
    if (x->state == H1_BODY || from_partial_head)
        conn_read_on(c, w->snap->tv_client_idle);

    int rc = stream_start(s, &sr);
    /* The head's spans were needed up to here. If the exchange already failed, the
     * connection is closing and its input is gone with it. */
    if (!c->closing && x->state != H1_CLOSING && c->in.mem)
        buf_consume(&c->in, (uint32_t)head_len);
    if (rc != 0) {
        x->stream = NULL;
        stream_free(s); /* it logged the request */
        h1_send_error(c, rc);
        return STEP_WAIT;
    }
    if (!x->stream || c->closing)
        return STEP_WAIT; /* it already ended: the error went out */

    if ((req->flags & H1_F_EXPECT_CONTINUE) && req->body != H1_BODY_NONE &&
        req->minor_version >= 1 && buf_len(&c->in) == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (buf_take(&w->bufs, &c->out) == 0 && buf_room(&c->out) >= sizeof(cont) - 1) {
            buf_append(&c->out, cont, sizeof(cont) - 1);
            if (conn_flush(c) < 0) {
                conn_close(c);
                return STEP_WAIT;
            }
        }
    }
    if (req->body == H1_BODY_NONE)
        stream_request_end(s, NULL, 0);
    return STEP_MORE;
}

/* The HTTP/2 connection preface (RFC 9113 section 3.4). */
static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static enum step
h1_read_head(struct conn *c)
{
    struct worker *w = c->w;
    const struct cfg *cfg = w->snap->cfg;
    struct h1_request req;
    if (c->h2c_allowed) {
        /* h2c with prior knowledge: the first bytes decide, once, for the connection. */
        size_t n = buf_len(&c->in);
        size_t cmp = n < sizeof(h2_preface) - 1 ? n : sizeof(h2_preface) - 1;
        if (memcmp(buf_data(&c->in), h2_preface, cmp) == 0) {
            if (cmp < sizeof(h2_preface) - 1)
                return STEP_WAIT;
            c->h2c_allowed = false;
            h2_conn_start(c); /* takes over c->in, preface included */
            return STEP_WAIT;
        }
        c->h2c_allowed = false;
    }
    struct h1_limits limits = {cfg->limits.max_header_bytes, cfg->limits.max_headers};
    int r = h1_parse_request(buf_data(&c->in), buf_len(&c->in), &limits, w->headers, &req);
    if (r == H1_PARTIAL) {
        if (c->h1.state == H1_IDLE) {
            /* The header timeout counts from the first byte of the request, however
             * slowly the rest trickles in. */
            c->h1.state = H1_HEAD;
            conn_deadline_start(c, w->snap->tv_client_header, cfg->timeouts.client_header_ms);
        } else if (!conn_deadline_rearm(c)) {
            h1_reject(c, 408);
        }
        return STEP_WAIT;
    }
    if (r == H1_INVALID) {
        c->h1.minor_version = 1;
        h1_reject(c, req.error_status ? req.error_status : 400);
        return STEP_WAIT;
    }
    return h1_begin_request(c, &req, r);
}

/* The trailer section of a chunked request, which the body otherwise passes through as
 * it came: it goes on only once complete, and without the fields a client may not send
 * in trailers (those that frame or route the message, and the ones the proxy sets
 * itself: X-Forwarded-*, X-Request-Id, X-Client-*), as HTTP/2 request trailers do.
 * Returns 1 when it went on (the caller ends the request), 0 to wait (more bytes, or
 * room upstream), -1 when the stream ended or the section is bad (answered). */
static int
h1_feed_trailers(struct conn *c)
{
    struct h1_exchange *x = &c->h1;
    struct h1_chunked probe = x->req_chunked;
    struct span none;
    const char *p = buf_data(&c->in);
    ssize_t used = h1_chunked_feed(&probe, p, buf_len(&c->in), &none);
    if (used < 0) {
        struct stream *s = x->stream;
        x->stream = NULL;
        stream_abort(s, 400);
        h1_reject(c, 400);
        return -1;
    }
    if (!probe.done)
        return 0; /* the section is bounded by max_header_bytes: it fits the buffer */
    if (stream_request_room_for(x->stream, (uint32_t)used) < (uint32_t)used)
        return 0; /* request_resume() brings us back */
    const struct cfg *cfg = x->stream->snap->cfg;
    const char *end = p + used - 2; /* the final CRLF */
    /* The section is taken whatever happens to the stream while it goes on. */
    x->req_chunked = probe;
    for (const char *line = p; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL)
            break; /* cannot happen: the decoder checked every line's CRLF */
        size_t len = (size_t)(eol - line) + 1;
        const char *colon = memchr(line, ':', len);
        struct span name = {line, colon ? (size_t)(colon - line) : 0};
        if (hdr_request_trailer_forwarded(name) && !stream_header_is_ours(cfg, name)) {
            stream_request_body(x->stream, line, (uint32_t)len);
            if (!x->stream || c->closing)
                goto ended;
        }
        line += len;
    }
    stream_request_body(x->stream, "\r\n", 2);
    if (!x->stream || c->closing)
        goto ended;
    buf_consume(&c->in, (uint32_t)used);
    return 1;

ended:
    if (!c->closing && c->in.mem)
        buf_consume(&c->in, (uint32_t)used);
    return -1;
}

/* Request body (or tunnel) bytes from the input buffer to the stream. */
static enum step
h1_feed_body(struct conn *c)
{
    struct h1_exchange *x = &c->h1;
    const struct cfg *cfg = c->w->snap->cfg;
    bool progressed = false;

    while (buf_len(&c->in) > 0) {
        struct stream *s = x->stream;
        uint32_t room = stream_request_room(s);
        if (room == 0)
            break; /* request_resume() brings us back */
        uint32_t n = buf_len(&c->in) < room ? buf_len(&c->in) : room;
        const char *p = buf_data(&c->in);
        bool done = false;

        if (x->state == H1_TUNNEL) {
            /* bytes as they come */
        } else if (x->req_body == H1_BODY_CHUNKED && x->req_chunked.in_trailers) {
            int t = h1_feed_trailers(c);
            if (t < 0)
                return c->closing || !x->stream ? STEP_WAIT : STEP_MORE;
            if (t == 0)
                break;
            progressed = true;
            stream_request_end(s, NULL, 0);
            x->state = H1_WAIT;
            if (c->read_paused)
                conn_read_on(c, c->w->snap->tv_client_idle);
            return STEP_MORE;
        } else if (x->req_body == H1_BODY_LENGTH) {
            if (n > x->req_remaining)
                n = (uint32_t)x->req_remaining;
            x->req_remaining -= n;
            done = x->req_remaining == 0;
        } else {
            struct span data;
            ssize_t used = h1_chunked_feed(&x->req_chunked, p, n, &data);
            int bad = used < 0 ? 400 : 0;
            if (!bad) {
                x->req_body_bytes += data.len;
                if (cfg->limits.max_body_bytes && x->req_body_bytes > cfg->limits.max_body_bytes)
                    bad = 413;
            }
            if (bad) {
                x->stream = NULL;
                stream_abort(s, bad);
                h1_reject(c, bad);
                return STEP_WAIT;
            }
            n = (uint32_t)used;
            done = x->req_chunked.done;
            if (n == 0 && !done)
                break;
        }
        if (n)
            stream_request_body(s, p, n);
        progressed = true;
        if (c->closing)
            return STEP_WAIT;
        buf_consume(&c->in, n);
        if (!x->stream)
            return STEP_MORE; /* the exchange ended (early response or failure) */
        if (done) {
            stream_request_end(s, NULL, 0);
            x->state = H1_WAIT;
            if (c->read_paused)
                conn_read_on(c, c->w->snap->tv_client_idle);
            return STEP_MORE;
        }
    }
    if (buf_room(&c->in) == 0)
        conn_read_pause(c);
    else if (progressed || c->read_paused)
        conn_read_on(c, x->state == H1_TUNNEL && x->stream ? stream_tunnel_timeout(x->stream)
                                                           : c->w->snap->tv_client_idle);
    return STEP_WAIT;
}

/* Act on what the input buffer holds, as far as the state allows. */
static void
h1_process(struct conn *c)
{
    for (;;) {
        if (c->closing)
            return;
        enum step st;
        switch (c->h1.state) {
        case H1_IDLE:
        case H1_HEAD:
            if (buf_len(&c->in) == 0) {
                buf_drop(&c->w->bufs, &c->in);
                return;
            }
            st = h1_read_head(c);
            break;
        case H1_BODY:
        case H1_TUNNEL:
            st = h1_feed_body(c);
            break;
        case H1_WAIT:
            /* Pipelined bytes wait their turn; stop reading if they fill the buffer. */
            if (c->in.mem && buf_room(&c->in) == 0)
                conn_read_pause(c);
            return;
        default:
            return;
        }
        if (st == STEP_WAIT)
            return;
    }
}

void
h1_conn_on_readable(struct conn *c)
{
    struct worker *w = c->w;
    if (c->closing)
        return;
    if (c->h1.state == H1_CLOSING) {
        h1_discard_input(c);
        return;
    }
    if (buf_take(&w->bufs, &c->in) < 0) {
        log_error("out of memory for a client buffer");
        conn_close(c);
        return;
    }
    if (c->read_paused)
        conn_read_on(c, w->snap->tv_client_idle);
    uint32_t room = buf_room(&c->in);
    if (room > 0) {
        ssize_t n = conn_recv(c, buf_tail(&c->in), room);
        if (n > 0) {
            c->in.end += (uint32_t)n;
        } else if (n != CONN_AGAIN) {
            /* The client left (or broke the connection). A request in progress is
             * cancelled, and its upstream connection with it. */
            conn_close(c);
            return;
        }
    }
    h1_process(c);
    /* TLS may have decrypted more than fitted: the socket will not say so again. */
    if (!c->closing && c->proto == CONN_PROTO_H1 && c->in.mem && buf_room(&c->in) > 0 &&
        !c->read_paused && conn_has_buffered_input(c))
        conn_schedule_read(c);
}

void
h1_conn_on_timeout(struct conn *c)
{
    struct h1_exchange *x = &c->h1;
    switch (x->state) {
    case H1_HEAD:
        h1_reject(c, 408);
        break;
    case H1_BODY:
        if (x->stream) {
            struct stream *s = x->stream;
            x->stream = NULL;
            stream_abort(s, 408);
        }
        if (!x->head_sent)
            h1_reject(c, 408);
        else
            conn_close(c);
        break;
    case H1_WAIT:
        /* The backend's timeouts govern a request in progress; the client's timer (it
         * cannot be removed without a costly event_del) fires harmlessly and re-arms. */
        break;
    case H1_TUNNEL: {
        struct timeval left;
        if (x->stream && stream_tunnel_time_left(x->stream, &left)) {
            conn_read_on(c, &left); /* the backend kept the tunnel busy */
            break;
        }
        conn_close(c); /* silent both ways for timeouts.tunnel */
        break;
    }
    default:
        /* Idle keep-alive, a lingering close: just go. */
        conn_close(c);
        break;
    }
}

void
h1_conn_on_drained(struct conn *c)
{
    if (c->h1.state == H1_CLOSING) {
        h1_linger_close(c);
        return;
    }
    if (c->h1.stream)
        stream_client_drained(c->h1.stream);
}

/* ---- stream client ops ---- */

/* Serialise a response head for this client: status line, the backend's end-to-end
 * headers, and our own Connection header. Returns bytes written, 0 if it did not fit. */
static size_t
h1_write_response_head(const struct h1_response *resp, bool keep_te, bool keep_upgrade,
                       const char *connection, char *dst, size_t room)
{
    struct writer o = {dst, dst + room, false};
    char status[] = "HTTP/1.1 000 ";
    status[9] = (char)('0' + resp->status / 100 % 10);
    status[10] = (char)('0' + resp->status / 10 % 10);
    status[11] = (char)('0' + resp->status % 10);
    writer_put(&o, status, sizeof(status) - 1);
    if (resp->reason.len)
        writer_put(&o, resp->reason.ptr, resp->reason.len);
    else
        writer_put(&o, h1_status_reason(resp->status), strlen(h1_status_reason(resp->status)));
    WRITER_LIT(&o, "\r\n");
    for (size_t i = 0; i < resp->num_headers; i++) {
        const struct h1_header *h = &resp->headers[i];
        if (!hdr_response_forwarded(resp, h, keep_te, keep_upgrade))
            continue;
        writer_put(&o, h->name.ptr, h->name.len);
        WRITER_LIT(&o, ": ");
        writer_put(&o, h->value.ptr, h->value.len);
        WRITER_LIT(&o, "\r\n");
    }
    if (connection) {
        WRITER_LIT(&o, "Connection: ");
        writer_put(&o, connection, strlen(connection));
        WRITER_LIT(&o, "\r\n");
    }
    WRITER_LIT(&o, "\r\n");
    return o.overflow ? 0 : (size_t)(o.p - dst);
}

/* The client is gone while the stream was calling us: detach, close, tell the stream. */
static int
h1_client_gone(struct conn *c)
{
    c->h1.stream = NULL;
    conn_close(c);
    return -1;
}

static int
h1_op_response_head(void *client, struct stream *s, const struct h1_response *resp,
                    bool *raw_chunked)
{
    struct conn *c = client;
    struct h1_exchange *x = &c->h1;
    if (buf_take(&c->w->bufs, &c->out) < 0)
        return h1_client_gone(c);

    if (resp->status < 200 && resp->status != 101) {
        if (x->minor_version == 0)
            return 0; /* HTTP/1.0 clients do not expect interim responses */
        size_t n = h1_write_response_head(resp, false, false, NULL, buf_tail(&c->out),
                                          buf_room(&c->out));
        if (n == 0)
            return 0; /* an interim response we cannot fit is only lost, not fatal */
        c->out.end += (uint32_t)n;
        return conn_flush(c) < 0 ? h1_client_gone(c) : 0;
    }

    bool upgrade = resp->status == 101;
    bool decode = resp->body == H1_BODY_CHUNKED && x->minor_version == 0;
    bool close_after = !x->keepalive || c->w->stopping || x->state == H1_BODY ||
                       resp->body == H1_BODY_CLOSE || decode;
    const char *connection = NULL;
    if (upgrade)
        connection = "upgrade";
    else if (close_after)
        connection = "close";
    else if (x->minor_version == 0)
        connection = "keep-alive";

    size_t n = h1_write_response_head(resp, resp->body == H1_BODY_CHUNKED && !decode, upgrade,
                                      connection, buf_tail(&c->out), buf_room(&c->out));
    if (n == 0) {
        log_warn("response head too large for the client buffer");
        return h1_client_gone(c);
    }
    c->out.end += (uint32_t)n;
    x->head_sent = true;
    x->close_after_response = close_after && !upgrade;
    x->chunked_to_client = resp->body == H1_BODY_CHUNKED && !decode;
    *raw_chunked = x->chunked_to_client;
    if (upgrade) {
        /* No body follows that would carry the head out: send it now. */
        x->state = H1_TUNNEL;
        conn_read_on(c, stream_tunnel_timeout(s));
        if (buf_len(&c->in))
            conn_schedule_read(c);
        if (conn_flush(c) < 0)
            return h1_client_gone(c);
    }
    return 0;
}

static uint32_t
h1_op_body_room(void *client)
{
    struct conn *c = client;
    if (buf_take(&c->w->bufs, &c->out) < 0)
        return STREAM_ROOM_FAILED;
    return buf_room(&c->out);
}

static int
h1_op_response_body(void *client, const char *p, uint32_t n)
{
    struct conn *c = client;
    buf_append(&c->out, p, n);
    return conn_flush(c) < 0 ? h1_client_gone(c) : 0;
}

static void
h1_op_response_end(void *client, bool client_must_close)
{
    struct conn *c = client;
    struct h1_exchange *x = &c->h1;
    x->stream = NULL;
    if (client_must_close)
        x->close_after_response = true;
    int r = conn_flush(c);
    if (r < 0) {
        conn_close(c);
        return;
    }
    if (x->close_after_response || x->state == H1_TUNNEL) {
        x->state = H1_CLOSING;
        if (r > 0)
            h1_linger_close(c);
        return;
    }
    x->state = H1_IDLE;
    conn_read_on(c, c->w->snap->tv_client_idle);
    if (buf_len(&c->in) > 0 || conn_has_buffered_input(c))
        conn_schedule_read(c); /* a pipelined request is waiting */
    else
        buf_drop(&c->w->bufs, &c->in);
}

static void
h1_op_response_error(void *client, int status)
{
    struct conn *c = client;
    c->h1.stream = NULL;
    if (status == 0 || c->h1.head_sent) {
        conn_close(c);
        return;
    }
    h1_send_error(c, status);
}

static void
h1_op_request_resume(void *client)
{
    conn_schedule_read(client);
}

static const struct stream_client_ops h1_stream_ops = {
    .response_head = h1_op_response_head,
    .body_room = h1_op_body_room,
    .response_body = h1_op_response_body,
    .response_end = h1_op_response_end,
    .response_error = h1_op_response_error,
    .request_resume = h1_op_request_resume,
};
