/* SPDX-License-Identifier: MIT */
/* A client connection: the socket, its events, its buffers, and the HTTP/1 state riding
 * on it. Kept small on purpose: an idle keep-alive connection is this struct and nothing
 * else (its buffers go back to the pool when drained). */
#ifndef MERIDIAN_CONN_T_H
#define MERIDIAN_CONN_T_H

#include <event2/event_struct.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "buf.h"
#include "h1_parse.h"

struct h2_session;
struct listener_rt;
struct snapshot;
struct stream;
struct worker;

enum h1_state {
    H1_IDLE = 0,  /* between requests: waiting for the first byte */
    H1_HEAD = 1,  /* part of a request head has arrived */
    H1_BODY = 2,  /* streaming the request body to the stream */
    H1_WAIT = 3,  /* request complete, response in progress */
    H1_TUNNEL = 4, /* websocket: bytes both ways */
    H1_CLOSING = 5, /* writing a last response, then closing */
};

/* HTTP/1 state of the request in progress. */
struct h1_exchange {
    uint8_t state;             /* enum h1_state */
    uint8_t minor_version;     /* of the request */
    bool keepalive;            /* the client may send another request */
    bool head_sent;            /* a final response head went out */
    bool chunked_to_client;    /* response framing passed through as chunked */
    bool close_after_response; /* Connection: close goes out in the response head */
    enum h1_method method;
    enum h1_body req_body;
    uint64_t req_remaining;    /* Content-Length bytes left */
    uint64_t req_body_bytes;   /* body bytes so far, for max_body_bytes */
    struct h1_chunked req_chunked;
    struct stream *stream;     /* owns: the exchange in progress, or NULL */
};

/*
 * A client connection's life:
 *
 *   accept -> IDLE --bytes--> HEAD --head parsed--> BODY --body read--> WAIT
 *              ^                |                                         |
 *              |                +--bad request--> CLOSING (4xx, close)    |
 *              +---------------- response sent, keep-alive ---------------+
 *   EOF, error, timeout: conn_close() marks it, the worker reaps it after the callback.
 */
enum conn_proto {
    CONN_PROTO_H1 = 0,
    CONN_PROTO_H2 = 1,
};

struct conn {
    int fd;
    bool closing;        /* conn_close() was called; reaped at the end of the loop turn */
    bool write_pending;  /* *wev is armed: out could not be written in full */
    bool read_paused;    /* rev is removed: no room to read into */
    bool tls_handshaking;
    bool tls_read_blocked; /* SSL_read needs the socket writable first */
    bool h2c_allowed;    /* plain listener with h2c: a client may start with the preface */
    bool proxy_pending;  /* waiting for the PROXY protocol header */
    uint8_t proto;       /* enum conn_proto */
    uint32_t id;
    uint64_t deadline_ms;    /* end of the current phase that must finish in time (TLS
                                handshake, request head, lingering close), monotonic ms */
    struct worker *w;        /* borrows */
    struct listener_rt *ls;  /* borrows; NULL once a reload dropped the listener */
    struct conn *prev, *next; /* the worker's list of live connections */
    struct conn *next_reap;
    struct buf in;
    struct buf out;
    struct h1_exchange h1;
    struct event *wev; /* owns; made the first time a write cannot complete, which most
                          connections never see: 128 bytes kept off every idle one */
    SSL *ssl;               /* owns; NULL on plain connections */
    struct snapshot *tls_snap; /* holds a use while the TLS handshake runs: the generation
                                  whose TLS context (and SNI table) the SSL was made from */
    struct h2_session *h2;  /* owns, for HTTP/2 connections */
    struct event rev;
    union {
        struct sockaddr sa;
        struct sockaddr_in sin;
        struct sockaddr_in6 sin6;
    } peer;
};

#endif
