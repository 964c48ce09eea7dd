/* SPDX-License-Identifier: MIT */
/* libFuzzer driver for h1_parse_response, as answer to a GET and to a HEAD, and for the
 * chunked decoder on what follows a chunked head. It checks that spans stay inside the
 * head, that both parses agree on everything but the body, and that a head is partial
 * one byte short of its end. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "h1_parse.h"

#define MAX_HEAD 4096
#define MAX_HEADERS 24

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_span_in(struct span s, const char *lo, const char *hi)
{
    if (s.len == 0)
        return;
    CHECK(s.ptr >= lo && s.ptr + s.len <= hi);
}

static void
check_response(const char *buf, int rc, const struct h1_response *resp, struct h1_header *headers,
               bool to_head)
{
    CHECK(resp->headers == headers && resp->num_headers <= MAX_HEADERS);
    CHECK(resp->error_status == 0);
    CHECK(resp->status >= 100 && resp->status <= 999);
    CHECK(resp->minor_version == 0 || resp->minor_version == 1);
    check_span_in(resp->reason, buf, buf + rc);
    for (size_t i = 0; i < resp->num_headers; i++) {
        CHECK(headers[i].name.len > 0);
        check_span_in(headers[i].name, buf, buf + rc);
        check_span_in(headers[i].value, buf, buf + rc);
    }
    int s = resp->status;
    if (to_head || s < 200 || s == 204 || s == 304)
        CHECK(resp->body == H1_BODY_NONE);
    else
        CHECK(resp->body != H1_BODY_NONE);
}

/* Decode what follows the head in two slicings; they must agree. */
static void
check_chunked(const char *body, size_t len)
{
    struct h1_chunked a, b;
    struct span d;
    size_t pa = 0, pb = 0, da = 0, db = 0;
    bool bad_a = false, bad_b = false;

    h1_chunked_init(&a, 256);
    while (pa < len && !a.done) {
        ssize_t r = h1_chunked_feed(&a, body + pa, len - pa, &d);
        if (r < 0) {
            bad_a = true;
            break;
        }
        CHECK(r > 0 || a.done);
        check_span_in(d, body + pa, body + pa + r);
        da += d.len;
        pa += (size_t)r;
    }
    h1_chunked_init(&b, 256);
    while (pb < len && !b.done) {
        ssize_t r = h1_chunked_feed(&b, body + pb, 1, &d);
        if (r < 0) {
            bad_b = true;
            break;
        }
        CHECK(r == 1 || b.done);
        db += d.len;
        pb += (size_t)r;
    }
    CHECK(bad_a == bad_b);
    if (!bad_a)
        CHECK(pa == pb && da == db && a.done == b.done);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct h1_header headers[MAX_HEADERS];
    struct h1_response get, head;
    struct h1_limits lim = {.max_head_bytes = MAX_HEAD, .max_headers = MAX_HEADERS};
    const char *buf = (const char *)data;

    int rc = h1_parse_response(buf, size, &lim, H1_METHOD_GET, headers, &get);
    int rc_head = h1_parse_response(buf, size, &lim, H1_METHOD_HEAD, headers, &head);
    CHECK(rc == rc_head);
    if (rc == H1_PARTIAL) {
        CHECK(size < MAX_HEAD);
        return 0;
    }
    if (rc == H1_INVALID) {
        CHECK(get.error_status == 502 && head.error_status == 502);
        return 0;
    }
    CHECK(rc > 0 && (size_t)rc <= size && rc <= MAX_HEAD);
    check_response(buf, rc, &head, headers, true);
    check_response(buf, rc, &get, headers, false);
    CHECK(get.status == head.status && get.flags == head.flags &&
          get.content_length == head.content_length);

    struct h1_response again;
    CHECK(h1_parse_response(buf, (size_t)rc, &lim, H1_METHOD_GET, headers, &again) == rc);
    CHECK(again.body == get.body);
    CHECK(h1_parse_response(buf, (size_t)rc - 1, &lim, H1_METHOD_GET, headers, &again) ==
          H1_PARTIAL);

    if (get.body == H1_BODY_CHUNKED)
        check_chunked(buf + rc, size - (size_t)rc);
    return 0;
}
