/* SPDX-License-Identifier: MIT */
/* The HTTP/2 client side. nghttp2 parses and writes frames; this file maps streams onto
 * proxied exchanges and keeps the peer honest.
 *
 * Nothing here calls nghttp2_session_send() from inside a stream callback (a response
 * arriving, a buffer draining): that could close the very stream that is calling. Such
 * callbacks mark the session and activate its send event, which runs later in the same
 * loop turn.
 *
 * A stream's request goes upstream only after the whole read batch it arrived in was
 * processed: a HEADERS frame followed by its RST_STREAM in the same batch (rapid reset)
 * never reaches a backend.
 *
 * A connection outlives config generations: each new stream takes the worker's current one.
 * A reload that changes what we advertise sends a new SETTINGS frame (h2_conn_adopt); one
 * that means the connection must go closes it in two steps (h2_conn_shutdown):
 *
 *   open --shutdown--> notice sent --PING ACK, or 1 s--> goaway --last stream done--> closed
 *         GOAWAY(2^31-1) + PING        GOAWAY(last stream processed)
 *         new streams still served      new streams refused
 *
 * Errors (ENHANCE_YOUR_CALM, protocol errors) and the client's own GOAWAY skip the notice. */
#include "h2_conn.h"

#include <event2/event.h>
#include <inttypes.h>
#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "client_ip.h"
#include "conn.h"
#include "hdr.h"
#include "log.h"
#include "sock.h"
#include "stream.h"
#include "worker.h"

/* Client control frames (SETTINGS, PING, PRIORITY, RST_STREAM, WINDOW_UPDATE on the
 * connection) allowed in a 10 s window before GOAWAY ENHANCE_YOUR_CALM. */
#define H2_CONTROL_FRAMES_PER_10S 2000
#define H2_WINDOW_MS 10000
#define H2_CONN_WINDOW (1u << 20) /* connection-level receive window */
#define H2_SEND_FRAME_ROOM 16393  /* a full frame: 16384 + 9 */
/* Request trailers forwarded to a backend, at most (they must fit in the upstream buffer
 * beside what it holds). */
#define H2_REQ_TRAILERS_MAX 4096
/* A header list over max_header_list_size is answered 431; one this many times over it is
 * an HPACK bomb: the stream is reset at once and counts towards max_resets_per_10s. */
#define H2_HEADER_BOMB_FACTOR 4
/* After the shutdown notice: the final GOAWAY waits this long at most for the PING's ACK
 * (RFC 9113 6.8: at least a round trip, for streams the client opened meanwhile). */
#define H2_NOTICE_WAIT_MS 1000
static const uint8_t h2_notice_ping[8] = {'m', 'r', 'd', 'n', '-', 'b', 'y', 'e'};

/* What we advertise in SETTINGS and also enforce ourselves. */
struct h2_settings {
    uint32_t max_streams; /* SETTINGS_MAX_CONCURRENT_STREAMS */
    uint32_t window;      /* SETTINGS_INITIAL_WINDOW_SIZE */
    uint32_t header_list; /* SETTINGS_MAX_HEADER_LIST_SIZE */
};

struct h2_stream;

struct h2_session {
    struct conn *c;            /* borrows: the session lives inside its connection */
    nghttp2_session *ng;       /* owns */
    struct event *send_ev;     /* owns: deferred nghttp2_session_send */
    struct h2_stream *streams; /* owns: open streams */
    struct h2_stream *to_start; /* streams whose headers are complete, not yet started */
    uint32_t nstreams;
    uint32_t resets;           /* RST_STREAM sent or received in this window */
    uint32_t control_frames;
    uint64_t window_start_ms;
    uint64_t last_activity_ms;
    struct event *notice_ev; /* owns, once the shutdown notice went out: its time limit */
    /* Our settings: what the last SETTINGS frame said, and what the client is held to: the
     * most lenient of that and of the frames it has not acknowledged yet (it may still act
     * on an earlier one; frames and their ACKs keep their order). */
    struct h2_settings sent;
    struct h2_settings held;
    uint32_t settings_unacked; /* our SETTINGS frames without an ACK yet */
    bool notice_sent;          /* GOAWAY(2^31-1) and a PING went out: the final one follows */
    bool goaway;               /* we sent the final GOAWAY: new streams are refused; close
                                  when the streams are done */
    bool in_recv;              /* inside nghttp2_session_mem_recv */
    int32_t max_client_stream; /* the highest stream id the client opened (on_begin_frame) */
    /* At the start of a SETTINGS frame: the client's INITIAL_WINDOW_SIZE and the largest
     * send window of our streams, for the overflow check when the frame is done. */
    int32_t iws_before;
    int64_t max_send_window;
};

struct h2_stream {
    struct h2_session *sess;   /* borrows */
    struct stream *s;          /* owns until the exchange ends */
    struct h2_stream *next, *prev;
    struct h2_stream *next_start;
    int32_t id;
    bool started;
    bool end_stream;           /* the request has no more DATA */
    bool head_sent;
    bool resp_eof;
    bool deferred;             /* the data provider returned DEFERRED */
    bool drain_pending;        /* nghttp2 took response bytes: tell the stream */
    bool has_content_length;
    bool too_large;            /* header list over the limits: answered 431 at its end */
    bool bad;                  /* refused or malformed: no exchange */
    bool resume;               /* the upstream side has room for more request body */
    bool remote_ended;         /* the client sent END_STREAM */
    bool rst_after_eof;        /* once our END_STREAM is out, reset: the rest of the
                                  request body is not wanted */
    uint64_t body_bytes;       /* request body received, for limits.max_body_bytes */
    uint64_t content_length;
    uint64_t header_bytes;     /* decoded size of the header block being read */
    /* The request as it arrives: names and values copied into hbuf, headers borrow it. */
    char *hbuf;                /* owns */
    uint32_t hlen, hcap;
    struct h1_header *headers; /* owns */
    uint32_t nheaders, headers_cap;
    struct span method, path, authority, scheme;
    uint32_t cookie_off, cookie_len; /* cookies joined with "; " (RFC 9113 8.2.3) */
    /* Request body that the upstream side has no room for yet. */
    char *pend;                /* owns */
    uint32_t pend_len, pend_cap;
    /* Response body waiting for nghttp2 to frame it. */
    struct buf resp;
    /* Response trailers waiting for the last DATA frame: one block holding the array,
     * then the lower-cased names and the values (nghttp2 copies them on submit). */
    nghttp2_nv *trailers;      /* owns */
    size_t ntrailers;
    /* Request trailers for a chunk-framed upstream body, as "name: value\r\n" lines. */
    char *req_trailers;        /* owns */
    uint32_t req_trailers_len;
};

static const struct stream_client_ops h2_stream_ops;

/* Per worker thread: lower-cased header names and the nv array for a response. */
static _Thread_local nghttp2_nv *nv_scratch;
static _Thread_local size_t nv_cap;
static _Thread_local char *name_scratch;
static _Thread_local size_t name_cap;

static void h2_send(struct h2_session *sess);

static void
h2_schedule_send(struct h2_session *sess)
{
    event_active(sess->send_ev, EV_WRITE, 0);
}

static uint32_t
max_u32(uint32_t a, uint32_t b)
{
    return a > b ? a : b;
}

/* Submit a SETTINGS frame with `h2`'s values (the first one also turns push off). Until the
 * client acknowledges it, the old values hold where they are more lenient: a client that
 * has not read it yet may act on them. The first frame replaces the protocol's defaults:
 * for the stream and header limits those are "unlimited", which we do not grant even for
 * a round trip; the window's is 65535, which nghttp2 applies until the ACK, so the request
 * body buffers must hold that much. Returns 0, or -1 when nghttp2 is out of memory. */
static int
h2_advertise(struct h2_session *sess, const struct cfg_http2 *h2, bool first)
{
    struct h2_settings want = {h2->max_concurrent_streams, h2->initial_window_size,
                               h2->max_header_list_size};
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, want.max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, want.window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, want.header_list},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    size_t n = sizeof(iv) / sizeof(iv[0]) - (first ? 0 : 1);
    if (nghttp2_submit_settings(sess->ng, NGHTTP2_FLAG_NONE, iv, n) != 0)
        return -1;
    if (first) {
        sess->held = want;
        sess->held.window = max_u32(want.window, NGHTTP2_INITIAL_WINDOW_SIZE);
    } else {
        sess->held.max_streams = max_u32(sess->held.max_streams, want.max_streams);
        sess->held.window = max_u32(sess->held.window, want.window);
        sess->held.header_list = max_u32(sess->held.header_list, want.header_list);
    }
    sess->sent = want;
    sess->settings_unacked++;
    return 0;
}

/* The client acknowledged our oldest SETTINGS frame in flight. */
static void
h2_settings_acked(struct h2_session *sess)
{
    if (sess->settings_unacked && --sess->settings_unacked == 0)
        sess->held = sess->sent;
}

/* The final GOAWAY: streams up to the last one nghttp2 processed finish, later ones are
 * refused (a client must not open any after the notice's round trip). Idempotent. */
static void
h2_goaway_final(struct h2_session *sess)
{
    if (sess->goaway)
        return;
    sess->goaway = true;
    if (sess->notice_ev)
        event_del(sess->notice_ev);
    nghttp2_submit_goaway(sess->ng, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(sess->ng), NGHTTP2_NO_ERROR, NULL,
                          0);
    h2_schedule_send(sess);
}

static void
notice_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    h2_goaway_final(arg); /* the PING's ACK did not come in time */
}

/* ---- limits ---- */

static bool
h2_count(struct h2_session *sess, uint32_t *counter, uint32_t limit)
{
    uint64_t now = clock_mono_ms();
    if (now - sess->window_start_ms >= H2_WINDOW_MS) {
        sess->window_start_ms = now;
        sess->resets = 0;
        sess->control_frames = 0;
    }
    if (++*counter <= limit)
        return true;
    if (!sess->goaway) {
        log_warn("client %u: %s over %u in 10 s: GOAWAY ENHANCE_YOUR_CALM", sess->c->id,
                 counter == &sess->resets ? "stream resets" : "control frames", limit);
        nghttp2_submit_goaway(sess->ng, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(sess->ng),
                              NGHTTP2_ENHANCE_YOUR_CALM, NULL, 0);
        sess->goaway = true;
    }
    return false;
}

static bool
h2_count_reset(struct h2_session *sess)
{
    const struct cfg *cfg = sess->c->w->snap->cfg;
    return h2_count(sess, &sess->resets, cfg->http2.max_resets_per_10s);
}

/* ---- streams ---- */

static struct h2_stream *
h2_stream_new(struct h2_session *sess, int32_t id)
{
    struct h2_stream *hs = calloc(1, sizeof(*hs));
    if (!hs)
        return NULL;
    hs->sess = sess;
    hs->id = id;
    hs->next = sess->streams;
    if (sess->streams)
        sess->streams->prev = hs;
    sess->streams = hs;
    sess->nstreams++;
    return hs;
}

static void
h2_stream_free(struct h2_stream *hs)
{
    struct h2_session *sess = hs->sess;
    if (hs->s) {
        struct stream *s = hs->s;
        hs->s = NULL;
        stream_abort(s, 499);
    }
    /* Not yet started: take it off the start list. */
    for (struct h2_stream **pp = &sess->to_start; *pp; pp = &(*pp)->next_start) {
        if (*pp == hs) {
            *pp = hs->next_start;
            break;
        }
    }
    if (hs->prev)
        hs->prev->next = hs->next;
    else
        sess->streams = hs->next;
    if (hs->next)
        hs->next->prev = hs->prev;
    sess->nstreams--;
    /* Request body that never went upstream still holds part of the connection window
     * (no automatic window updates): give it back, or the client's uploads stall. */
    if (hs->pend_len)
        nghttp2_session_consume_connection(sess->ng, hs->pend_len);
    buf_drop(&sess->c->w->bufs, &hs->resp);
    free(hs->hbuf);
    free(hs->headers);
    free(hs->pend);
    free(hs->trailers);
    free(hs->req_trailers);
    free(hs);
}

static int
hbuf_add(struct h2_stream *hs, const uint8_t *p, size_t n, uint32_t *off)
{
    if (hs->hlen + n > hs->hcap) {
        uint32_t cap = hs->hcap ? hs->hcap : 1024;
        while (cap < hs->hlen + n)
            cap *= 2;
        char *grown = realloc(hs->hbuf, cap);
        if (!grown)
            return -1;
        hs->hbuf = grown;
        hs->hcap = cap;
    }
    if (n > 0) /* an empty name or value may come before any buffer exists */
        memcpy(hs->hbuf + hs->hlen, p, n);
    *off = hs->hlen;
    hs->hlen += (uint32_t)n;
    return 0;
}

/* ---- nghttp2 callbacks: receiving ---- */

/* Rules of RFC 9113 that nghttp2 1.52 leaves unenforced, checked on each frame's header:
 * - 5.1.1: a new stream's id must be above every one the client opened; nghttp2 drops a
 *   HEADERS on a lower id it does not know without a word, so the client would wait for
 *   ever. A connection error PROTOCOL_ERROR, as h2spec expects (a lower id it knows, open
 *   or closed, is nghttp2's to judge: trailers, STREAM_CLOSED).
 * - 6.9.2: a SETTINGS_INITIAL_WINDOW_SIZE change that takes a stream's send window over
 *   2^31-1 is a connection error FLOW_CONTROL_ERROR (nghttp2 resets only that stream): the
 *   windows are noted here and checked once the frame is applied (on_frame_recv). */
static int
on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *user)
{
    struct h2_session *sess = user;
    if (hd->type == NGHTTP2_HEADERS && (hd->stream_id & 1) != 0) {
        if (hd->stream_id > sess->max_client_stream) {
            sess->max_client_stream = hd->stream_id;
        } else if (hd->stream_id < sess->max_client_stream &&
                   nghttp2_session_find_stream(ng, hd->stream_id) == NULL) {
            log_debug("client %u: HEADERS on stream %d after stream %d: GOAWAY PROTOCOL_ERROR",
                      sess->c->id, hd->stream_id, sess->max_client_stream);
            nghttp2_session_terminate_session(ng, NGHTTP2_PROTOCOL_ERROR);
        }
    } else if (hd->type == NGHTTP2_SETTINGS && (hd->flags & NGHTTP2_FLAG_ACK) == 0) {
        sess->iws_before =
            (int32_t)nghttp2_session_get_remote_settings(ng, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE);
        sess->max_send_window = INT64_MIN;
        for (struct h2_stream *hs = sess->streams; hs; hs = hs->next) {
            int32_t w = nghttp2_session_get_stream_remote_window_size(ng, hs->id);
            if (w > sess->max_send_window)
                sess->max_send_window = w;
        }
    }
    return 0;
}

/* After a SETTINGS frame was applied: see on_begin_frame. */
static void
settings_check_windows(struct h2_session *sess)
{
    int64_t now =
        nghttp2_session_get_remote_settings(sess->ng, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE);
    if (sess->max_send_window == INT64_MIN ||
        sess->max_send_window + (now - sess->iws_before) <= NGHTTP2_MAX_WINDOW_SIZE)
        return;
    log_debug("client %u: SETTINGS_INITIAL_WINDOW_SIZE %lld overflows a stream window: GOAWAY "
              "FLOW_CONTROL_ERROR",
              sess->c->id, (long long)now);
    nghttp2_session_terminate_session(sess->ng, NGHTTP2_FLOW_CONTROL_ERROR);
}

static int
on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    struct h2_session *sess = user;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        /* Trailers: a header block of their own, with its own max_header_list_size. */
        struct h2_stream *hs = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
        if (hs)
            hs->header_bytes = 0;
        return 0;
    }
    if (sess->goaway || sess->nstreams >= sess->held.max_streams) {
        /* Over the advertised limit (nghttp2 only enforces it once the client ACKed our
         * SETTINGS), or going away: refuse; the client may retry elsewhere. Between the
         * shutdown notice and the final GOAWAY new streams are still served. */
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    struct h2_stream *hs = h2_stream_new(sess, frame->hd.stream_id);
    if (!hs)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(ng, frame->hd.stream_id, hs);
    return 0;
}

/* A request trailer field, kept for the chunk-framed upstream body of a request without
 * Content-Length. nghttp2 has checked the name and value. */
static int
h2_keep_request_trailer(struct h2_stream *hs, const uint8_t *name, size_t namelen,
                        const uint8_t *value, size_t valuelen)
{
    struct span n = {(const char *)name, namelen};
    if (hs->has_content_length || !hdr_request_trailer_forwarded(n) ||
        stream_header_is_ours(hs->sess->c->w->snap->cfg, n))
        return 0; /* a Content-Length body goes upstream as is, with no room for them */
    size_t line = namelen + 2 + valuelen + 2;
    if (hs->req_trailers_len + line > H2_REQ_TRAILERS_MAX) {
        log_info("client %u stream %d: request trailers over %u bytes: the rest dropped",
                 hs->sess->c->id, hs->id, H2_REQ_TRAILERS_MAX);
        return 0;
    }
    char *grown = realloc(hs->req_trailers, hs->req_trailers_len + line);
    if (!grown)
        return 0; /* a trailer is lost, not the request */
    char *p = grown + hs->req_trailers_len;
    memcpy(p, name, namelen);
    memcpy(p + namelen, ": ", 2);
    memcpy(p + namelen + 2, value, valuelen);
    memcpy(p + namelen + 2 + valuelen, "\r\n", 2);
    hs->req_trailers = grown;
    hs->req_trailers_len += (uint32_t)line;
    return 0;
}

static int
on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
          const uint8_t *value, size_t valuelen, uint8_t flags, void *user)
{
    struct h2_session *sess = user;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct h2_stream *hs = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (!hs || hs->bad)
        return 0;
    const struct cfg *cfg = sess->c->w->snap->cfg;
    uint64_t limit = sess->held.header_list;
    /* RFC 9113 6.5.2: each field counts its name, value and 32 octets. nghttp2 stores the
     * limit we advertise but does not enforce it: an HPACK bomb decodes here. Trailers
     * are counted the same way (on_begin_headers restarts the count for them). */
    hs->header_bytes += namelen + valuelen + 32;
    if (hs->header_bytes > H2_HEADER_BOMB_FACTOR * limit ||
        (frame->headers.cat != NGHTTP2_HCAT_REQUEST && hs->header_bytes > limit)) {
        /* Far past the limit (no client sends that by mistake), or too many trailers. */
        log_info("client %u stream %d: header list %" PRIu64 " bytes: reset", sess->c->id,
                 hs->id, hs->header_bytes);
        hs->bad = true;
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM, counted when sent */
    }
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return h2_keep_request_trailer(hs, name, namelen, value, valuelen);
    if (hs->too_large)
        return 0; /* a refused list is decoded, not kept */
    if (hs->header_bytes > limit || hs->nheaders >= cfg->limits.max_headers) {
        /* What HTTP/1.1 answers with 431 is answered so here too, once the block ends
         * (the decoder must see all of it to stay in step with the client's). */
        hs->too_large = true;
        return 0;
    }
    uint32_t voff;
    if (name[0] == ':') {
        struct span *dst = NULL;
        if (namelen == 7 && memcmp(name, ":method", 7) == 0)
            dst = &hs->method;
        else if (namelen == 5 && memcmp(name, ":path", 5) == 0)
            dst = &hs->path;
        else if (namelen == 10 && memcmp(name, ":authority", 10) == 0)
            dst = &hs->authority;
        else if (namelen == 7 && memcmp(name, ":scheme", 7) == 0)
            dst = &hs->scheme;
        if (!dst)
            return 0; /* nghttp2 already rejects unknown pseudo-headers */
        if (hbuf_add(hs, value, valuelen, &voff) < 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        dst->ptr = (const char *)(uintptr_t)voff; /* an offset until the block stops moving */
        dst->len = valuelen;
        return 0;
    }
    if (namelen == 6 && memcmp(name, "cookie", 6) == 0) {
        /* Joined into one header for HTTP/1.1 when the request starts. */
        if (hs->cookie_len) {
            uint32_t off;
            if (hbuf_add(hs, (const uint8_t *)"; ", 2, &off) < 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            if (off != hs->cookie_off + hs->cookie_len) {
                /* Not adjacent: move the cookie string to the end first. */
                uint32_t moved;
                hs->hlen -= 2;
                if (hbuf_add(hs, (const uint8_t *)hs->hbuf + hs->cookie_off, hs->cookie_len,
                             &moved) < 0 ||
                    hbuf_add(hs, (const uint8_t *)"; ", 2, &off) < 0)
                    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
                hs->cookie_off = moved;
            }
            hs->cookie_len += 2;
        }
        uint32_t off;
        if (hbuf_add(hs, value, valuelen, &off) < 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        if (!hs->cookie_len)
            hs->cookie_off = off;
        hs->cookie_len += (uint32_t)valuelen;
        return 0;
    }
    if (namelen == 14 && memcmp(name, "content-length", 14) == 0) {
        uint64_t v = 0;
        if (valuelen == 0 || valuelen > 18)
            goto bad_length;
        for (size_t i = 0; i < valuelen; i++) {
            if (value[i] < '0' || value[i] > '9')
                goto bad_length;
            v = v * 10 + (uint64_t)(value[i] - '0');
        }
        if (hs->has_content_length && hs->content_length != v)
            goto bad_length;
        hs->has_content_length = true;
        hs->content_length = v;
        return 0; /* restated by the stream */
    }
    if (hs->nheaders == hs->headers_cap) {
        /* Grow on demand (most requests have a dozen headers), up to max_headers + 1
         * (room for the joined cookie). */
        uint32_t cap = hs->headers_cap ? hs->headers_cap * 2 : 16;
        if (cap > cfg->limits.max_headers + 1)
            cap = cfg->limits.max_headers + 1;
        struct h1_header *grown = realloc(hs->headers, cap * sizeof(*grown));
        if (!grown)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        hs->headers = grown;
        hs->headers_cap = cap;
    }
    uint32_t noff;
    if (hbuf_add(hs, name, namelen, &noff) < 0 || hbuf_add(hs, value, valuelen, &voff) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    struct h1_header *h = &hs->headers[hs->nheaders++];
    h->name = (struct span){(const char *)(uintptr_t)noff, namelen};
    h->value = (struct span){(const char *)(uintptr_t)voff, valuelen};
    return 0;

bad_length:
    hs->bad = true;
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static struct span
rebase(const struct h2_stream *hs, struct span sp)
{
    if (sp.len == 0)
        return (struct span){"", 0};
    return (struct span){hs->hbuf + (uintptr_t)sp.ptr, sp.len};
}

/* Respond on our own (the request never reached a backend). */
static void
h2_respond_error(struct h2_stream *hs, int status)
{
    char code[4] = {(char)('0' + status / 100), (char)('0' + status / 10 % 10),
                    (char)('0' + status % 10), 0};
    nghttp2_nv nv[] = {
        {(uint8_t *)":status", (uint8_t *)code, 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-length", (uint8_t *)"0", 14, 1, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"retry-after", (uint8_t *)STREAM_RETRY_AFTER_S, 11,
         sizeof(STREAM_RETRY_AFTER_S) - 1, NGHTTP2_NV_FLAG_NONE},
    };
    hs->head_sent = true;
    hs->rst_after_eof = !hs->remote_ended;
    nghttp2_submit_response(hs->sess->ng, hs->id, nv, status == 503 ? 3 : 2, NULL);
    /* Body bytes that came with the request are not wanted: their window goes back. */
    if (hs->pend_len) {
        nghttp2_session_consume(hs->sess->ng, hs->id, hs->pend_len);
        hs->pend_len = 0;
    }
}

/* Hand pending request body to the stream as far as it has room. */
static void
h2_feed_body(struct h2_stream *hs)
{
    struct h2_session *sess = hs->sess;
    while (hs->s && hs->pend_len > 0) {
        uint32_t room = stream_request_room(hs->s);
        if (room == 0)
            return; /* request_resume() brings us back */
        uint32_t n = hs->pend_len < room ? hs->pend_len : room;
        stream_request_body(hs->s, hs->pend, n);
        if (!hs->s)
            return; /* the exchange failed: h2_respond_error() gave pend back, or
                       h2_stream_free() will */
        memmove(hs->pend, hs->pend + n, hs->pend_len - n);
        hs->pend_len -= n;
        /* The upstream took it: the client may send that much more. */
        nghttp2_session_consume(sess->ng, hs->id, n);
        h2_schedule_send(sess);
    }
    if (hs->s && hs->end_stream && hs->pend_len == 0 && hs->started) {
        if (hs->req_trailers_len &&
            stream_request_room_for(hs->s, hs->req_trailers_len) < hs->req_trailers_len)
            return; /* request_resume() brings us back */
        hs->end_stream = false; /* tell the stream once */
        stream_request_end(hs->s, hs->req_trailers, hs->req_trailers_len);
    }
}

static bool
h2_expects_continue(const struct h1_header *hdrs, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (SPAN_EQ_LIT(hdrs[i].name, "expect") &&
            SPAN_CASEEQ_LIT(hdrs[i].value, "100-continue"))
            return true;
    return false;
}

static void
h2_start_stream(struct h2_stream *hs)
{
    struct h2_session *sess = hs->sess;
    struct conn *c = sess->c;
    struct worker *w = c->w;
    hs->started = true;
    if (hs->bad)
        return; /* refused while its headers or first DATA were read: already answered */
    if (hs->too_large) {
        log_info("client %u stream %d: header list over the limits: 431", c->id, hs->id);
        /* Thrown-away work, like a reset: a client earning many is cut off the same way. */
        h2_count_reset(sess);
        h2_respond_error(hs, 431);
        return;
    }
    struct span method = rebase(hs, hs->method), path = rebase(hs, hs->path);
    struct span authority = rebase(hs, hs->authority);
    if (!method.len || !path.len || path.ptr[0] != '/') {
        /* nghttp2 checks the pseudo-headers' presence; CONNECT and "*" we do not serve. */
        h2_respond_error(hs, method.len && SPAN_EQ_LIT(method, "CONNECT") ? 501 : 400);
        return;
    }
    if (!authority.len) {
        for (uint32_t i = 0; i < hs->nheaders; i++) {
            struct span name = rebase(hs, hs->headers[i].name);
            if (SPAN_EQ_LIT(name, "host"))
                authority = rebase(hs, hs->headers[i].value);
        }
    }
    const struct cfg *cfg = w->snap->cfg;
    if (hs->has_content_length && cfg->limits.max_body_bytes &&
        hs->content_length > cfg->limits.max_body_bytes) {
        h2_respond_error(hs, 413);
        return;
    }
    /* The header block is complete: spans can point into it now. */
    struct h1_header *hdrs = hs->headers;
    uint32_t n = hs->nheaders;
    for (uint32_t i = 0; i < n; i++) {
        hdrs[i].name = rebase(hs, hdrs[i].name);
        hdrs[i].value = rebase(hs, hdrs[i].value);
    }
    if (hs->cookie_len) {
        if (n == hs->headers_cap) {
            struct h1_header *grown = realloc(hs->headers, (n + 1) * sizeof(*grown));
            if (!grown) {
                h2_respond_error(hs, 503);
                return;
            }
            hdrs = hs->headers = grown;
            hs->headers_cap = n + 1;
        }
        {
            hdrs[n].name = SPAN_LIT("cookie");
            hdrs[n].value = (struct span){hs->hbuf + hs->cookie_off, hs->cookie_len};
            n++;
        }
    }
    hs->nheaders = n;

    char ip[SOCK_ADDR_TEXT_MAX];
    sock_ip_text(&c->peer.sa, ip, sizeof(ip));
    struct stream *s = stream_new(w, &h2_stream_ops, hs);
    if (!s) {
        h2_respond_error(hs, 503);
        return;
    }
    /* Trailers alone make a body too: an empty chunk-framed one that carries them. */
    bool has_body = !hs->end_stream || hs->pend_len > 0 || hs->req_trailers_len > 0;
    struct stream_request sr = {
        .method_id = h1_method_id(method),
        .method = method,
        .path = path,
        .authority = authority,
        .headers = hdrs,
        .num_headers = n,
        .flags = 0,
        .body = has_body && hs->has_content_length ? H1_BODY_LENGTH : H1_BODY_NONE,
        .encode_chunked = has_body && !hs->has_content_length,
        .content_length = hs->content_length,
        .proto = c->ssl ? "https" : "http",
        .client_ip = ip,
        .client_addr = &c->peer.sa,
        .client_ip_cfg = c->ls ? c->ls->client_ip : &client_ip_trust_nobody,
        .protocol = "HTTP/2",
        .tls = c->ssl ? SSL_get_version(c->ssl) : NULL,
    };
    if (sr.body == H1_BODY_LENGTH && sr.content_length == 0) {
        sr.body = H1_BODY_NONE;
        has_body = false;
    }
    hs->s = s;
    int rc = stream_start(s, &sr);
    if (rc != 0) {
        hs->s = NULL;
        stream_free(s);
        h2_respond_error(hs, rc);
        return;
    }
    if (!hs->s)
        return; /* already over */
    if (!has_body) {
        hs->end_stream = false;
        if (sr.body == H1_BODY_NONE && !sr.encode_chunked)
            return; /* stream_start counted the request as complete */
    } else if (hs->pend_len == 0 && !hs->remote_ended && !hs->head_sent &&
               h2_expects_continue(hdrs, n)) {
        /* As over HTTP/1.1, we answer it (the Expect header is not forwarded). */
        static const nghttp2_nv cont[] = {
            {(uint8_t *)":status", (uint8_t *)"100", 7, 3, NGHTTP2_NV_FLAG_NONE}};
        nghttp2_submit_headers(sess->ng, NGHTTP2_FLAG_NONE, hs->id, NULL, cont, 1, NULL);
        h2_schedule_send(sess);
    }
    h2_feed_body(hs);
}

static int
on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    struct h2_session *sess = user;
    switch (frame->hd.type) {
    case NGHTTP2_SETTINGS:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            h2_settings_acked(sess);
        else
            settings_check_windows(sess);
        h2_count(sess, &sess->control_frames, H2_CONTROL_FRAMES_PER_10S);
        return 0;
    case NGHTTP2_PING:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) && sess->notice_sent &&
            memcmp(frame->ping.opaque_data, h2_notice_ping, sizeof(h2_notice_ping)) == 0)
            h2_goaway_final(sess); /* a round trip since the notice */
        h2_count(sess, &sess->control_frames, H2_CONTROL_FRAMES_PER_10S);
        return 0;
    case NGHTTP2_PRIORITY:
        h2_count(sess, &sess->control_frames, H2_CONTROL_FRAMES_PER_10S);
        return 0;
    case NGHTTP2_RST_STREAM:
        h2_count_reset(sess);
        return 0;
    case NGHTTP2_WINDOW_UPDATE:
        if (frame->hd.stream_id == 0)
            h2_count(sess, &sess->control_frames, H2_CONTROL_FRAMES_PER_10S);
        return 0;
    case NGHTTP2_GOAWAY:
        /* The client is done with the connection: say so too before closing (RFC 9113
         * 6.8 SHOULD); streams in progress finish first. */
        h2_goaway_final(sess);
        h2_count(sess, &sess->control_frames, H2_CONTROL_FRAMES_PER_10S);
        return 0;
    default:
        break;
    }
    struct h2_stream *hs = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (!hs || hs->bad)
        return 0;
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        hs->end_stream = true;
        hs->remote_ended = true;
    }
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
        (frame->hd.flags & NGHTTP2_FLAG_END_HEADERS) && !hs->started) {
        /* Started after this read batch: see the file comment. */
        hs->next_start = sess->to_start;
        sess->to_start = hs;
        return 0;
    }
    /* DATA, or trailers whose END_STREAM ends the body. */
    if (hs->started && (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS))
        h2_feed_body(hs);
    return 0;
}

static int
on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
              void *user)
{
    struct h2_session *sess = user;
    struct h2_stream *hs = nghttp2_session_get_stream_user_data(ng, id);
    if (!hs || hs->bad || (hs->started && !hs->s)) {
        /* Nobody wants these bytes; let the window open again anyway. */
        nghttp2_session_consume(ng, id, len);
        return 0;
    }
    const struct cfg *cfg = sess->c->w->snap->cfg;
    hs->body_bytes += len;
    if (cfg->limits.max_body_bytes && hs->body_bytes > cfg->limits.max_body_bytes) {
        log_info("client %u stream %d: request body over max_body_bytes", sess->c->id, hs->id);
        hs->bad = true;
        if (hs->s) {
            struct stream *s = hs->s;
            hs->s = NULL;
            stream_abort(s, 413);
        }
        if (!hs->head_sent)
            h2_respond_error(hs, 413); /* reset once the 413 is out */
        else
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
        nghttp2_session_consume(ng, id, len);
        return 0;
    }
    if (hs->pend_len + len > hs->pend_cap) {
        /* Unconsumed bytes never exceed the stream window we advertised (nghttp2 enforces
         * it), so that bounds the buffer. */
        uint32_t limit = sess->held.window + 16384u;
        uint32_t need = hs->pend_len + (uint32_t)len;
        uint32_t cap = hs->pend_cap ? hs->pend_cap : 16384;
        while (cap < need)
            cap *= 2;
        if (cap > limit)
            cap = need > limit ? need : limit;
        char *grown = need <= limit ? realloc(hs->pend, cap) : NULL;
        if (!grown) {
            log_warn("client %u stream %d: cannot hold %u request body bytes: reset",
                     sess->c->id, id, need);
            hs->bad = true;
            if (hs->s) {
                struct stream *s = hs->s;
                hs->s = NULL;
                stream_abort(s, 503);
            }
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
            nghttp2_session_consume(ng, id, len);
            return 0;
        }
        hs->pend = grown;
        hs->pend_cap = cap;
    }
    memcpy(hs->pend + hs->pend_len, data, len);
    hs->pend_len += (uint32_t)len;
    if (hs->started)
        h2_feed_body(hs);
    return 0;
}

static int
on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *user)
{
    struct h2_stream *hs = nghttp2_session_get_stream_user_data(ng, id);
    if (hs)
        h2_stream_free(hs); /* aborts the exchange if it is still running */
    return 0;
}

static int
on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    struct h2_session *sess = user;
    /* Resets we send for a client's error count too: a client can provoke them
     * ("MadeYouReset"). Our own NO_ERROR resets (a response done early) do not. */
    if (frame->hd.type == NGHTTP2_RST_STREAM && frame->rst_stream.error_code != NGHTTP2_NO_ERROR)
        h2_count_reset(sess);
    if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA)) {
        struct h2_stream *hs = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
        if (hs && hs->rst_after_eof && !hs->remote_ended) {
            /* The response is complete; the request body will not be read (RFC 9113
             * 8.1: NO_ERROR asks the client to stop sending). */
            hs->rst_after_eof = false;
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, hs->id, NGHTTP2_NO_ERROR);
        }
    }
    return 0;
}



/* ---- sending ---- */

static ssize_t
send_cb(nghttp2_session *ng, const uint8_t *data, size_t length, int flags, void *user)
{
    struct h2_session *sess = user;
    struct conn *c = sess->c;
    if (buf_take(&c->w->bufs, &c->out) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    uint32_t room = buf_room(&c->out);
    if (room == 0)
        return NGHTTP2_ERR_WOULDBLOCK;
    uint32_t n = length < room ? (uint32_t)length : room;
    buf_append(&c->out, data, n);
    return (ssize_t)n;
}

static ssize_t
data_read_cb(nghttp2_session *ng, int32_t id, uint8_t *out, size_t length, uint32_t *data_flags,
             nghttp2_data_source *source, void *user)
{
    struct h2_stream *hs = source->ptr;
    uint32_t avail = buf_len(&hs->resp);
    uint32_t n = avail < length ? avail : (uint32_t)length;
    if (n) {
        memcpy(out, buf_data(&hs->resp), n);
        buf_consume(&hs->resp, n);
        hs->drain_pending = true;
    }
    if (buf_len(&hs->resp) == 0) {
        if (hs->resp_eof) {
            *data_flags |= NGHTTP2_DATA_FLAG_EOF;
            if (hs->trailers) {
                /* END_STREAM goes on the trailers' HEADERS frame instead. */
                if (nghttp2_submit_trailer(ng, id, hs->trailers, hs->ntrailers) == 0)
                    *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
                free(hs->trailers);
                hs->trailers = NULL;
            }
            buf_drop(&hs->sess->c->w->bufs, &hs->resp);
        } else if (n == 0) {
            hs->deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    return (ssize_t)n;
}

static void
h2_send(struct h2_session *sess)
{
    struct conn *c = sess->c;
    for (int round = 0; round < 64; round++) {
        int rv = nghttp2_session_send(sess->ng);
        if (rv != 0) {
            log_info("client %u: HTTP/2 send failed: %s", c->id, nghttp2_strerror(rv));
            conn_close(c);
            return;
        }
        int r = conn_flush(c);
        if (r < 0) {
            conn_close(c);
            return;
        }
        if (buf_len(&c->out) == 0 || r == 0)
            sess->last_activity_ms = clock_mono_ms();
        /* Streams whose response bytes nghttp2 took may fetch more from upstream. */
        for (struct h2_stream *hs = sess->streams; hs; hs = hs->next) {
            if (hs->drain_pending) {
                hs->drain_pending = false;
                if (hs->s)
                    stream_client_drained(hs->s);
            }
        }
        if (c->closing)
            return;
        if (r == 0 || !nghttp2_session_want_write(sess->ng))
            break; /* the socket is full, or nothing more to say */
    }
    if (!nghttp2_session_want_read(sess->ng) && !nghttp2_session_want_write(sess->ng) &&
        buf_len(&c->out) == 0)
        conn_close(c);
    else if (sess->goaway && sess->nstreams == 0 && buf_len(&c->out) == 0)
        conn_close(c);
}

static void
send_ev_cb(evutil_socket_t fd, short what, void *arg)
{
    struct h2_session *sess = arg;
    struct conn *c = sess->c;
    for (struct h2_stream *hs = sess->streams; hs && !c->closing; hs = hs->next) {
        if (hs->resume) {
            hs->resume = false;
            h2_feed_body(hs);
        }
    }
    if (!c->closing)
        h2_send(sess);
}

/* ---- stream client ops ---- */

static int
h2_op_response_head(void *client, struct stream *s, const struct h1_response *resp,
                    bool *raw_chunked)
{
    struct h2_stream *hs = client;
    *raw_chunked = false;
    bool interim = resp->status < 200;
    if (resp->status == 101 || (interim && hs->head_sent))
        return 0; /* no upgrades in HTTP/2; nothing interim after the final head */
    size_t need_nv = resp->num_headers + 1;
    size_t need_names = 0;
    for (size_t i = 0; i < resp->num_headers; i++)
        need_names += resp->headers[i].name.len;
    if (need_nv > nv_cap) {
        nghttp2_nv *grown = realloc(nv_scratch, need_nv * sizeof(*grown));
        if (!grown)
            return -1;
        nv_scratch = grown;
        nv_cap = need_nv;
    }
    if (need_names > name_cap) {
        char *grown = realloc(name_scratch, need_names);
        if (!grown)
            return -1;
        name_scratch = grown;
        name_cap = need_names;
    }
    char status[3] = {(char)('0' + resp->status / 100), (char)('0' + resp->status / 10 % 10),
                      (char)('0' + resp->status % 10)};
    size_t nv = 0, noff = 0;
    nv_scratch[nv++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status, 7, 3,
                                    NGHTTP2_NV_FLAG_NONE};
    for (size_t i = 0; i < resp->num_headers; i++) {
        const struct h1_header *h = &resp->headers[i];
        /* Connection-specific headers are not allowed in HTTP/2 at all. */
        if (!hdr_response_forwarded(resp, h, false, false))
            continue;
        char *name = name_scratch + noff;
        for (size_t k = 0; k < h->name.len; k++) {
            char ch = h->name.ptr[k];
            name[k] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
        noff += h->name.len;
        nv_scratch[nv++] = (nghttp2_nv){(uint8_t *)name, (uint8_t *)h->value.ptr, h->name.len,
                                        h->value.len, NGHTTP2_NV_FLAG_NONE};
    }
    if (interim) {
        /* 100 Continue, 103 Early Hints: a HEADERS frame of their own, before the final
         * one (RFC 9113 8.1). */
        if (nghttp2_submit_headers(hs->sess->ng, NGHTTP2_FLAG_NONE, hs->id, NULL, nv_scratch, nv,
                                   NULL) < 0)
            return -1;
        h2_schedule_send(hs->sess);
        return 0;
    }
    hs->head_sent = true;
    nghttp2_data_provider dp = {.source.ptr = hs, .read_callback = data_read_cb};
    bool body = resp->body != H1_BODY_NONE &&
                !(resp->body == H1_BODY_LENGTH && resp->content_length == 0);
    int rv = nghttp2_submit_response(hs->sess->ng, hs->id, nv_scratch, nv, body ? &dp : NULL);
    if (rv != 0)
        return -1;
    h2_schedule_send(hs->sess);
    return 0;
}

static uint32_t
h2_op_body_room(void *client)
{
    struct h2_stream *hs = client;
    if (buf_take(&hs->sess->c->w->bufs, &hs->resp) < 0)
        return STREAM_ROOM_FAILED;
    return buf_room(&hs->resp);
}

static void
h2_resume(struct h2_stream *hs)
{
    if (hs->deferred) {
        hs->deferred = false;
        nghttp2_session_resume_data(hs->sess->ng, hs->id);
    }
    h2_schedule_send(hs->sess);
}

static int
h2_op_response_body(void *client, const char *p, uint32_t n)
{
    struct h2_stream *hs = client;
    buf_append(&hs->resp, p, n);
    h2_resume(hs);
    return 0;
}

static int
h2_op_response_trailers(void *client, const struct h1_header *fields, size_t n)
{
    struct h2_stream *hs = client;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += fields[i].name.len + fields[i].value.len;
    nghttp2_nv *nv = malloc(n * sizeof(*nv) + bytes);
    if (!nv)
        return 0; /* the trailers are lost, not the response */
    char *dst = (char *)(nv + n);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const struct h1_header *f = &fields[i];
        if (!hdr_trailer_forwarded(f->name))
            continue;
        char *name = dst;
        for (size_t j = 0; j < f->name.len; j++) {
            char ch = f->name.ptr[j];
            name[j] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
        char *value = memcpy(name + f->name.len, f->value.ptr, f->value.len);
        dst = value + f->value.len;
        nv[k++] = (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, f->name.len, f->value.len,
                               NGHTTP2_NV_FLAG_NONE};
    }
    free(hs->trailers);
    hs->trailers = k ? nv : NULL;
    hs->ntrailers = k;
    if (!k)
        free(nv);
    return 0;
}

static void
h2_op_response_end(void *client, bool client_must_close)
{
    struct h2_stream *hs = client;
    hs->s = NULL;
    hs->resp_eof = true;
    if (client_must_close && !hs->remote_ended)
        hs->rst_after_eof = true; /* after the response's END_STREAM: see on_frame_send */
    h2_resume(hs);
}

static void
h2_op_response_error(void *client, int status)
{
    struct h2_stream *hs = client;
    hs->s = NULL;
    if (status && !hs->head_sent)
        h2_respond_error(hs, status);
    else
        nghttp2_submit_rst_stream(hs->sess->ng, NGHTTP2_FLAG_NONE, hs->id,
                                  NGHTTP2_INTERNAL_ERROR);
    h2_schedule_send(hs->sess);
}

static void
h2_op_request_resume(void *client)
{
    struct h2_stream *hs = client;
    /* Deferred: we may be inside the stream that asks. */
    hs->resume = true;
    h2_schedule_send(hs->sess);
}

static const struct stream_client_ops h2_stream_ops = {
    .response_head = h2_op_response_head,
    .body_room = h2_op_body_room,
    .response_body = h2_op_response_body,
    .response_end = h2_op_response_end,
    .response_error = h2_op_response_error,
    .request_resume = h2_op_request_resume,
    .response_trailers = h2_op_response_trailers,
};

/* ---- the connection ---- */

void
h2_conn_start(struct conn *c)
{
    struct worker *w = c->w;
    const struct cfg *cfg = w->snap->cfg;
    struct h2_session *sess = calloc(1, sizeof(*sess));
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    if (!sess || nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0)
        goto fail;
    nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, on_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    /* Window updates follow what the upstream accepted, not what we received. */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_outbound_ack(opt, 1000); /* SETTINGS/PING ACKs a client leaves unread */
    nghttp2_option_set_max_settings(opt, 32);
    /* Response headers are encoded from the static table and as literals, without
     * HPACK's dynamic table (like HAProxy): headers that change with every response
     * (dates, ids, lengths) only churn it, and keeping it costs both sides CPU. */
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 0);
    if (nghttp2_session_server_new2(&sess->ng, cbs, sess, opt) != 0)
        goto fail;
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    cbs = NULL;
    opt = NULL;
    sess->send_ev = event_new(w->base, -1, 0, send_ev_cb, sess);
    if (!sess->send_ev)
        goto fail;
    sess->c = c;
    sess->window_start_ms = sess->last_activity_ms = clock_mono_ms();
    c->h2 = sess;
    c->proto = CONN_PROTO_H2;

    if (h2_advertise(sess, &cfg->http2, true) < 0)
        goto fail;
    nghttp2_session_set_local_window_size(sess->ng, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW);
    conn_read_on(c, w->snap->tv_client_idle);
    /* h2c: the preface and maybe more already sit in c->in. */
    if (buf_len(&c->in) || conn_has_buffered_input(c))
        conn_schedule_read(c);
    else
        h2_send(sess);
    return;

fail:
    if (cbs)
        nghttp2_session_callbacks_del(cbs);
    if (opt)
        nghttp2_option_del(opt);
    if (sess) {
        if (sess->ng)
            nghttp2_session_del(sess->ng);
        if (sess->send_ev)
            event_free(sess->send_ev);
        free(sess);
    }
    c->h2 = NULL;
    log_error("out of memory starting HTTP/2");
    conn_close(c);
}

void
h2_conn_on_readable(struct conn *c)
{
    struct h2_session *sess = c->h2;
    struct worker *w = c->w;
    if (c->closing)
        return;
    if (buf_take(&w->bufs, &c->in) < 0) {
        conn_close(c);
        return;
    }
    for (int round = 0; round < 8; round++) {
        uint32_t room = buf_room(&c->in);
        ssize_t n = room ? conn_recv(c, buf_tail(&c->in), room) : CONN_AGAIN;
        if (n == 0 || n == -1) {
            conn_close(c);
            return;
        }
        if (n > 0)
            c->in.end += (uint32_t)n;
        if (buf_len(&c->in) == 0)
            break;
        sess->last_activity_ms = clock_mono_ms();
        sess->in_recv = true;
        ssize_t used = nghttp2_session_mem_recv(sess->ng, (const uint8_t *)buf_data(&c->in),
                                                buf_len(&c->in));
        sess->in_recv = false;
        if (used < 0) {
            log_info("client %u: HTTP/2 protocol error: %s", c->id,
                     nghttp2_strerror((int)used));
            h2_send(sess); /* nghttp2 queued a GOAWAY for it */
            conn_close(c);
            return;
        }
        buf_consume(&c->in, (uint32_t)used);
        /* Requests whose headers completed in this batch and that are still open. */
        while (sess->to_start) {
            struct h2_stream *hs = sess->to_start;
            sess->to_start = hs->next_start;
            h2_start_stream(hs);
            if (c->closing)
                return;
        }
        if (n == CONN_AGAIN || (n > 0 && (uint32_t)n < room && !conn_has_buffered_input(c)))
            break;
    }
    buf_release_if_empty(&w->bufs, &c->in);
    h2_send(sess);
}

void
h2_conn_on_timeout(struct conn *c)
{
    struct h2_session *sess = c->h2;
    const struct cfg *cfg = c->w->snap->cfg;
    uint64_t idle = clock_mono_ms() - sess->last_activity_ms;
    /* Nothing read or written for client_idle, and either no stream open, or response
     * bytes waiting that the client will not take (a zero-window stall). A stream that
     * only waits for its backend is the backend timeouts' business. */
    bool stalled = buf_len(&c->out) > 0;
    uint32_t busy = 0; /* streams with an exchange in progress */
    for (struct h2_stream *hs = sess->streams; hs && !stalled; hs = hs->next) {
        busy += hs->s != NULL;
        stalled = buf_len(&hs->resp) > 0 || (hs->head_sent && !hs->deferred && !hs->resp_eof &&
                                              nghttp2_session_get_stream_remote_window_size(
                                                  sess->ng, hs->id) <= 0);
    }
    /* Streams without an exchange (answered by us, or a header block never finished) do
     * not keep a quiet connection open. */
    uint64_t limit = cfg->timeouts.client_idle_ms;
    if (idle + 50 >= limit && (busy == 0 || stalled)) {
        if (sess->nstreams)
            log_info("client %u: HTTP/2 connection stalled with %u streams: closing", c->id,
                     sess->nstreams);
        nghttp2_session_terminate_session(sess->ng, NGHTTP2_NO_ERROR);
        h2_send(sess);
        conn_close(c);
        return;
    }
    /* The read timer restarts on reads only: after a write, fire again when client_idle
     * has passed since it, not a whole period from now; a full period while streams wait
     * on their backends. */
    uint64_t left = idle + 50 < limit ? limit - idle : limit;
    struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
    conn_read_on(c, &tv);
}

void
h2_conn_on_drained(struct conn *c)
{
    h2_send(c->h2);
}

void
h2_conn_adopt(struct conn *c)
{
    struct h2_session *sess = c->h2;
    const struct cfg_http2 *h2 = &c->w->snap->cfg->http2;
    if (sess->notice_sent || sess->goaway)
        return; /* going away: no new streams to set limits for */
    if (h2->max_concurrent_streams == sess->sent.max_streams &&
        h2->initial_window_size == sess->sent.window &&
        h2->max_header_list_size == sess->sent.header_list)
        return;
    if (h2_advertise(sess, h2, false) < 0) {
        log_warn("client %u: out of memory for a SETTINGS frame: keeping the old settings", c->id);
        return;
    }
    h2_schedule_send(sess);
}

void
h2_conn_shutdown(struct conn *c)
{
    struct h2_session *sess = c->h2;
    if (sess->notice_sent || sess->goaway)
        return;
    struct timeval tv = {H2_NOTICE_WAIT_MS / 1000, (H2_NOTICE_WAIT_MS % 1000) * 1000};
    if (nghttp2_submit_shutdown_notice(sess->ng) != 0 ||
        nghttp2_submit_ping(sess->ng, NGHTTP2_FLAG_NONE, h2_notice_ping) != 0 ||
        (sess->notice_ev = evtimer_new(c->w->base, notice_timeout_cb, sess)) == NULL ||
        evtimer_add(sess->notice_ev, &tv) < 0) {
        h2_goaway_final(sess); /* out of memory: in one step then */
        return;
    }
    sess->notice_sent = true;
    h2_schedule_send(sess);
}

void
h2_conn_free(struct conn *c)
{
    struct h2_session *sess = c->h2;
    c->h2 = NULL;
    while (sess->streams)
        h2_stream_free(sess->streams);
    nghttp2_session_del(sess->ng);
    event_free(sess->send_ev);
    if (sess->notice_ev)
        event_free(sess->notice_ev);
    free(sess);
}

void
h2_worker_deinit(struct worker *w)
{
    (void)w;
    free(nv_scratch);
    free(name_scratch);
    nv_scratch = NULL;
    name_scratch = NULL;
    nv_cap = name_cap = 0;
}
