/* SPDX-License-Identifier: MIT */
/* Header names the proxy treats specially, recognised once by length then bytes, and the
 * hop-by-hop rules of RFC 9110 section 7.6.1 that go with them. Pure code. */
#ifndef MERIDIAN_HDR_H
#define MERIDIAN_HDR_H

#include <stdbool.h>

#include "h1_parse.h"
#include "span.h"

enum hdr_id {
    HDR_OTHER = 0,
    HDR_CONNECTION,
    HDR_KEEP_ALIVE,
    HDR_PROXY_CONNECTION,
    HDR_TE,
    HDR_TRANSFER_ENCODING,
    HDR_UPGRADE,
    HDR_CONTENT_LENGTH,
    HDR_HOST,
    HDR_EXPECT,
    HDR_X_FORWARDED_FOR,
    HDR_X_FORWARDED_PROTO,
    HDR_X_FORWARDED_HOST,
    HDR_X_REQUEST_ID,
};

enum hdr_id hdr_lookup(struct span name);

/* True if `name` is one of the tokens of the Connection header(s) among `headers`: such
 * a header is hop-by-hop for this message only. */
bool hdr_named_by_connection(struct span name, const struct h1_header *headers, size_t n);

/* Whether a response header goes on to the client: not the hop-by-hop ones (Connection,
 * Keep-Alive, Proxy-Connection, TE, and those the Connection header names), and
 * Transfer-Encoding / Upgrade only when the caller passes the framing or the upgrade on. */
bool hdr_response_forwarded(const struct h1_response *resp, const struct h1_header *h,
                            bool keep_te, bool keep_upgrade);

/* Whether a trailer field goes on to the client: not the hop-by-hop ones, and none that
 * frames, routes or announces the message (Content-Length, Host, Trailer...): RFC 9110
 * 6.5.1 forbids them in trailers. */
bool hdr_trailer_forwarded(struct span name);

/* The same for a client's request trailers, which also may not carry what the proxy sets
 * itself in the request head (X-Forwarded-*, X-Request-Id): a backend that merges
 * trailers into headers would take a spoofed client address or scheme. */
bool hdr_request_trailer_forwarded(struct span name);

#endif
