/* SPDX-License-Identifier: MIT */
/* Header-name lookup: dispatch on the length, then one case-insensitive compare. */
#include "hdr.h"

#include <strings.h>

#define IS(lit) (strncasecmp(p, lit, sizeof(lit) - 1) == 0)

enum hdr_id
hdr_lookup(struct span name)
{
    const char *p = name.ptr;
    switch (name.len) {
    case 2:
        return IS("te") ? HDR_TE : HDR_OTHER;
    case 4:
        return IS("host") ? HDR_HOST : HDR_OTHER;
    case 6:
        return IS("expect") ? HDR_EXPECT : HDR_OTHER;
    case 7:
        return IS("upgrade") ? HDR_UPGRADE : HDR_OTHER;
    case 10:
        if (IS("connection"))
            return HDR_CONNECTION;
        return IS("keep-alive") ? HDR_KEEP_ALIVE : HDR_OTHER;
    case 12:
        return IS("x-request-id") ? HDR_X_REQUEST_ID : HDR_OTHER;
    case 14:
        return IS("content-length") ? HDR_CONTENT_LENGTH : HDR_OTHER;
    case 15:
        return IS("x-forwarded-for") ? HDR_X_FORWARDED_FOR : HDR_OTHER;
    case 16:
        if (IS("proxy-connection"))
            return HDR_PROXY_CONNECTION;
        return IS("x-forwarded-host") ? HDR_X_FORWARDED_HOST : HDR_OTHER;
    case 17:
        if (IS("transfer-encoding"))
            return HDR_TRANSFER_ENCODING;
        return IS("x-forwarded-proto") ? HDR_X_FORWARDED_PROTO : HDR_OTHER;
    default:
        return HDR_OTHER;
    }
}

bool
hdr_named_by_connection(struct span name, const struct h1_header *headers, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (hdr_lookup(headers[i].name) != HDR_CONNECTION)
            continue;
        const char *p = headers[i].value.ptr, *end = p + headers[i].value.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *tok = p;
            while (p < end && *p != ',' && *p != ' ' && *p != '\t')
                p++;
            if ((size_t)(p - tok) == name.len && strncasecmp(tok, name.ptr, name.len) == 0)
                return true;
        }
    }
    return false;
}

bool
hdr_response_forwarded(const struct h1_response *resp, const struct h1_header *h,
                       bool keep_te, bool keep_upgrade)
{
    switch (hdr_lookup(h->name)) {
    case HDR_CONNECTION:
    case HDR_KEEP_ALIVE:
    case HDR_PROXY_CONNECTION:
    case HDR_TE:
        return false;
    case HDR_TRANSFER_ENCODING:
        return keep_te;
    case HDR_UPGRADE:
        return keep_upgrade;
    case HDR_OTHER:
        return !(resp->flags & H1_F_HAS_CONN_TOKENS) ||
               !hdr_named_by_connection(h->name, resp->headers, resp->num_headers);
    default:
        return true;
    }
}

bool
hdr_trailer_forwarded(struct span name)
{
    switch (hdr_lookup(name)) {
    case HDR_OTHER:
        return !SPAN_CASEEQ_LIT(name, "trailer");
    case HDR_X_FORWARDED_FOR:
    case HDR_X_FORWARDED_PROTO:
    case HDR_X_FORWARDED_HOST:
    case HDR_X_REQUEST_ID:
        return true;
    default: /* hop-by-hop, framing, Host, Expect */
        return false;
    }
}

bool
hdr_request_trailer_forwarded(struct span name)
{
    return hdr_lookup(name) == HDR_OTHER && !SPAN_CASEEQ_LIT(name, "trailer");
}
