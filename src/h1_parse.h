/* SPDX-License-Identifier: MIT */
/* HTTP/1.1 message parsing (RFC 9110/9112): request heads, response heads and chunked
 * bodies. Pure code: no I/O, no allocation, no copy. Results are spans into the caller's
 * buffer, valid as long as that buffer is.
 *
 * Contract, after picohttpparser: a head parser returns the number of bytes the head took
 * (> 0, including the blank line that ends it), H1_PARTIAL (-2) when more bytes are needed,
 * or H1_INVALID (-1) with `error_status` set to the HTTP status to answer with. Parsing
 * restarts from the first byte each time; callers re-call with the grown buffer. The parser
 * is strict: anything a peer could read two ways is rejected rather than guessed. */
#ifndef MERIDIAN_H1_PARSE_H
#define MERIDIAN_H1_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "span.h"

#define H1_PARTIAL (-2)
#define H1_INVALID (-1)

struct h1_header {
    struct span name;
    struct span value; /* leading and trailing OWS removed */
};

enum h1_method {
    H1_METHOD_OTHER = 0, /* a valid token we do not know: forwarded as is */
    H1_METHOD_GET,
    H1_METHOD_HEAD,
    H1_METHOD_POST,
    H1_METHOD_PUT,
    H1_METHOD_DELETE,
    H1_METHOD_CONNECT,
    H1_METHOD_OPTIONS,
    H1_METHOD_TRACE,
    H1_METHOD_PATCH,
};

enum h1_target_form {
    H1_TARGET_ORIGIN = 0,    /* /path?query */
    H1_TARGET_ABSOLUTE = 1,  /* http://authority/path?query */
    H1_TARGET_AUTHORITY = 2, /* host:port, CONNECT only */
    H1_TARGET_ASTERISK = 3,  /* *, OPTIONS only */
};

enum h1_body {
    H1_BODY_NONE = 0,    /* no body (requests without CL/TE, HEAD/1xx/204/304 responses) */
    H1_BODY_LENGTH = 1,  /* Content-Length bytes follow */
    H1_BODY_CHUNKED = 2, /* Transfer-Encoding: chunked, final coding */
    H1_BODY_CLOSE = 3,   /* responses only: body runs until the connection closes */
};

/* Bits of what the Connection, Upgrade and Expect headers said. */
enum h1_flag {
    H1_F_CONN_CLOSE = 1 << 0,      /* Connection: close */
    H1_F_CONN_KEEPALIVE = 1 << 1,  /* Connection: keep-alive */
    H1_F_CONN_UPGRADE = 1 << 2,    /* Connection: upgrade */
    H1_F_UPGRADE_WEBSOCKET = 1 << 3, /* Upgrade: websocket (case-insensitive) */
    H1_F_EXPECT_CONTINUE = 1 << 4, /* Expect: 100-continue */
    H1_F_HAS_CONN_TOKENS = 1 << 5, /* Connection names other headers: they are hop-by-hop */
};

struct h1_limits {
    size_t max_head_bytes; /* request line + headers; beyond: 414 (still in the line) or 431 */
    size_t max_headers;    /* beyond: 431; must not exceed the caller's header array */
};

struct h1_request {
    struct span method;
    enum h1_method method_id;
    struct span target; /* exactly as sent */
    enum h1_target_form target_form;
    struct span path;      /* origin-form part: for absolute-form the path+query after the
                              authority, or "/" (a static string) when it is empty */
    struct span authority; /* absolute-form and authority-form only */
    struct span host;      /* the Host header value (empty span if none) */
    int minor_version;     /* 0 or 1 (HTTP/1.2..1.9 are read as 1.1) */
    struct h1_header *headers; /* borrows the caller's array */
    size_t num_headers;
    enum h1_body body;    /* NONE, LENGTH or CHUNKED */
    uint64_t content_length;
    unsigned flags;       /* enum h1_flag bits */
    int error_status;     /* on H1_INVALID: 400, 414, 431, 501 or 505 */
};

struct h1_response {
    int minor_version;
    int status; /* 100..999 */
    struct span reason;
    struct h1_header *headers; /* borrows the caller's array */
    size_t num_headers;
    enum h1_body body;
    uint64_t content_length;
    unsigned flags;
    int error_status; /* on H1_INVALID: 502 */
};

/* Parse a request head from buf[0..len). `headers` has room for limits->max_headers
 * entries. Leading empty lines (CRLF) before the request line are skipped and counted in
 * the return value. Rejects: bare LF or CR, NUL and control bytes, obs-fold, whitespace
 * before a colon, non-token methods (400), CONNECT (501), HTTP/2+ versions (505), a
 * missing or repeated Host in HTTP/1.1 (400), Content-Length with Transfer-Encoding,
 * differing Content-Length values, a bad Content-Length (400), Transfer-Encoding whose
 * final coding is not chunked or that repeats chunked (400), an unknown transfer coding
 * (501), Transfer-Encoding in HTTP/1.0 (400). */
int h1_parse_request(const char *buf, size_t len, const struct h1_limits *limits,
                     struct h1_header *headers, struct h1_request *req);

/* Parse a response head. `request_method` is the method that asked, which decides
 * whether a body follows (HEAD never has one; nor do 1xx, 204, 304). Invalid responses
 * give H1_INVALID with error_status 502. Content-Length with Transfer-Encoding is
 * rejected (smuggling); a Transfer-Encoding that does not end in chunked gives
 * H1_BODY_CLOSE; neither header gives H1_BODY_CLOSE. */
int h1_parse_response(const char *buf, size_t len, const struct h1_limits *limits,
                      enum h1_method request_method, struct h1_header *headers,
                      struct h1_response *resp);

/* Incremental chunked-body decoder (chunk sizes, extensions, data, trailers). It works on
 * whatever slices the network delivers, keeping its state between calls. */
struct h1_chunked {
    int state;              /* private */
    uint64_t remaining;     /* data bytes left in the current chunk */
    size_t line_bytes;      /* bytes of the current size/trailer line, to bound it */
    size_t trailer_bytes;   /* total trailer bytes, bounded by max_trailer_bytes */
    size_t max_trailer_bytes;
    bool in_trailers;       /* the last chunk was read: whatever is consumed from here on is
                               the trailer section (field lines, then the final CRLF) */
    bool done;              /* the last chunk and trailers have been consumed */
};

void h1_chunked_init(struct h1_chunked *c, size_t max_trailer_bytes);

/* Feed in[0..len). Consumes framing bytes and at most one contiguous run of data bytes,
 * then stops; it also stops after the last-chunk line, so that a caller keeping trailers
 * sees the trailer section apart (c->in_trailers). Returns the number of bytes consumed (0..len), or H1_INVALID on bad framing
 * (bad hex, size overflow, missing CRLF after data, bare LF/CR, control bytes in an
 * extension or trailer, trailer over max_trailer_bytes). When a data run was consumed,
 * `*data` points at it inside in[0..ret) (else data->len == 0). Once `c->done` is set,
 * nothing more is consumed: bytes after the message belong to the next one.
 * A passthrough proxy forwards in[0..ret) as is; a decoder forwards only *data. */
ssize_t h1_chunked_feed(struct h1_chunked *c, const char *in, size_t len, struct span *data);

/* A method token's id (H1_METHOD_OTHER when we do not know it); HTTP/2 needs it too. */
enum h1_method h1_method_id(struct span method);

/* A few things the glue needs from header values. */
bool h1_is_token_char(unsigned char c);
const char *h1_status_reason(int status); /* "Not Found" etc., "" for unknown */

#endif
