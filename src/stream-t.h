/* SPDX-License-Identifier: MIT */
/* The proxied exchange: one request and its response, whatever protocol the client
 * speaks. The client side (h1_conn now, h2 later) talks to a stream through stream.h and
 * is called back through struct stream_client_ops. */
#ifndef MERIDIAN_STREAM_T_H
#define MERIDIAN_STREAM_T_H

#include <stdbool.h>
#include <stdint.h>

#include "budget.h"
#include "buf.h"
#include "geo-t.h"
#include "h1_parse.h"
#include "reqid.h"
#include "route.h"
#include "span.h"

struct stream;
struct snapshot;
struct upstream_conn;
struct upstream_pool;
struct worker;

/* What a client protocol must do for a stream. All are called from the worker's loop;
 * none may free the stream. */
#define STREAM_ROOM_FAILED UINT32_MAX

struct stream_client_ops {
    /* The response head (or an interim 1xx) is ready. Return 0, or -1 if the client is
     * gone. For a final head, set *raw_chunked when the client takes chunked framing as
     * it comes from the backend (HTTP/1.1) rather than the decoded data. */
    int (*response_head)(void *client, struct stream *s, const struct h1_response *resp,
                         bool *raw_chunked);
    /* Bytes of response body the client can take now without blocking (0: wait for
     * stream_client_drained()), or STREAM_ROOM_FAILED when no buffer could be had: with
     * nothing queued, no drain would ever come. */
    uint32_t (*body_room)(void *client);
    /* n <= body_room() bytes of body. Return 0, or -1 if the client is gone. */
    int (*response_body)(void *client, const char *p, uint32_t n);
    /* The response is complete; the stream is about to be freed. `client_must_close`:
     * the request was not fully read, so the client connection cannot be reused. */
    void (*response_end)(void *client, bool client_must_close);
    /* The exchange failed before a response head reached the client: answer with
     * `status` (502, 504, ...). Or after it: status is 0 and the client must drop the
     * connection, since the response is cut. */
    void (*response_error)(void *client, int status);
    /* The upstream side has room for more request body. */
    void (*request_resume)(void *client);
    /* Optional (NULL: trailers are dropped, or pass in raw chunked framing): the trailer
     * fields of a chunked response, just before response_end. Return 0, or -1 if the
     * client is gone. */
    int (*response_trailers)(void *client, const struct h1_header *fields, size_t n);
};

/* What a client protocol hands to stream_start(): the request, normalised. Spans borrow
 * the client's buffer for the duration of the call only. */
struct stream_request {
    enum h1_method method_id;
    struct span method;
    struct span path;      /* origin-form */
    struct span authority; /* Host, or the absolute-form authority */
    const struct h1_header *headers;
    size_t num_headers;
    unsigned flags;      /* enum h1_flag */
    enum h1_body body;   /* NONE, LENGTH or CHUNKED (raw framing passed through as is) */
    bool encode_chunked; /* body of unknown length (HTTP/2 DATA): the stream frames it */
    uint64_t content_length;
    const char *proto;     /* "http" or "https": X-Forwarded-Proto */
    const char *client_ip; /* text: the TCP peer (or the PROXY header's source) */
    const struct sockaddr *client_addr;
    /* Whom to believe about the real client: the listener's client_ip section (NULL: the
     * generation's top-level one). */
    const struct client_ip_cfg *client_ip_cfg;
    const char *protocol; /* for the access log: "HTTP/1.1" ... */
    const char *tls;      /* static: "TLSv1.3", or NULL on plain connections */
};

enum stream_req_state {
    STREAM_REQ_BODY = 0, /* the client is still sending the body */
    STREAM_REQ_DONE = 1,
};

enum stream_resp_state {
    STREAM_RESP_HEAD = 0, /* waiting for the response head */
    STREAM_RESP_BODY = 1,
    STREAM_RESP_TUNNEL = 2, /* after 101: bytes both ways */
    STREAM_RESP_DONE = 3,
};

/*
 * A stream's life:
 *
 *   stream_new -> stream_start --region, admission (may wait for a lease;
 *        |              or 429)--pick backend--> connect / reuse idle
 *        |                                           |
 *        |     request head (+ body) written <-------+ (connect refused: one retry
 *        |                |                              on another backend)
 *        |     response head parsed --101--> TUNNEL
 *        |                |
 *        |     body relayed with backpressure
 *        |                |
 *        +---------> access log line, upstream released, stream freed
 */
struct stream {
    struct worker *w;      /* borrows */
    struct snapshot *snap; /* holds a use: the config this request started on */
    const struct stream_client_ops *ops;
    void *client;             /* borrows */
    struct upstream_conn *uc; /* owns while attached */
    struct stream *next_free;

    size_t region;
    size_t backend;         /* index in the region */
    struct buf up_out;      /* request bytes for the backend */
    struct buf up_in;       /* response bytes from the backend */
    uint32_t out_sent;      /* bytes at the front of up_out written but kept for a retry */
    bool retryable;         /* all bytes sent so far are still in up_out */
    bool retried_here;      /* the one retry within the current region was used */
    uint8_t nearest;        /* the client's nearest region */
    uint16_t regions_tried; /* bit per region whose backends all failed this request */
    bool client_paused;     /* the client waits for room in up_out */
    bool upstream_paused;   /* we stopped reading the backend: the client is full */
    bool upstream_eof;      /* the backend closed; what is left is in up_in */
    bool up_keepalive;      /* the response lets us reuse the upstream connection */
    bool raw_chunked;
    bool encode_chunked; /* frame request body bytes as chunks for the backend */
    bool head_request;
    bool websocket;
    uint8_t req_state;  /* enum stream_req_state */
    uint8_t resp_state; /* enum stream_resp_state */
    enum h1_method method;
    enum h1_body resp_body;
    uint64_t resp_remaining;
    struct h1_chunked resp_chunked;
    char *resp_trailers; /* owns: a decoded chunked response's trailer section */
    uint32_t resp_trailers_len;
    int status;
    uint64_t bytes_sent; /* response body bytes to the client */
    uint64_t t_start_us;
    uint64_t t_upstream_us;  /* when the upstream request started */
    uint64_t t_head_us;      /* when the response head arrived */
    uint64_t tunnel_seen_ms; /* the last tunnel byte, either way (clock_mono_ms) */
    char *log_target;        /* owns: method and target for the access log, or NULL */
    const char *protocol;
    const char *tls;                  /* static string, or NULL */
    bool failed_over;                 /* served by another region than the nearest */
    struct budget_wait admission;     /* parked here while rate_limit waits for a lease */
    uint8_t order[ROUTE_MAX_REGIONS]; /* the regions for this client, nearest first: kept
                                         for a failover */
    char country[3];                  /* the client's, "" if unknown */
    char client_ip[48];               /* the client as resolved (trusted headers, PROXY) */
    char reqid[REQID_MAX_LEN + 1];
};

#endif
