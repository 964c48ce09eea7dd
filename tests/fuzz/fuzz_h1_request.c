/* SPDX-License-Identifier: MIT */
/* libFuzzer driver for h1_parse_request and, on whatever follows the head, h1_chunked_feed.
 * Beyond "does not crash", it checks the parser's promises: spans stay inside the head,
 * a head is partial one byte short of its end, and the chunked decoder gives the same
 * answer however the body is sliced. */

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

/* Same answer for the whole body at once and for slices of sizes picked by `seed`. */
static void
check_chunked(const char *body, size_t len, uint64_t seed, size_t max_trailer)
{
    char *whole = malloc(len + 1), *sliced = malloc(len + 1);
    size_t whole_len = 0, sliced_len = 0, whole_pos = 0, sliced_pos = 0;
    bool whole_bad = false, sliced_bad = false;
    struct h1_chunked a, b;
    struct span d;

    CHECK(whole && sliced);
    h1_chunked_init(&a, max_trailer);
    while (whole_pos < len && !a.done) {
        bool trailers = a.in_trailers;
        ssize_t r = h1_chunked_feed(&a, body + whole_pos, len - whole_pos, &d);
        if (r < 0) {
            CHECK(r == H1_INVALID && !a.done);
            whole_bad = true;
            break;
        }
        CHECK((size_t)r <= len - whole_pos && (r > 0 || a.done));
        CHECK(!trailers || d.len == 0); /* no data once the trailer section began */
        check_span_in(d, body + whole_pos, body + whole_pos + r);
        memcpy(whole + whole_len, d.ptr, d.len);
        whole_len += d.len;
        whole_pos += (size_t)r;
    }

    h1_chunked_init(&b, max_trailer);
    while (sliced_pos < len && !b.done) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        size_t n = 1 + (size_t)(seed % 17);
        if (n > len - sliced_pos)
            n = len - sliced_pos;
        /* A copy of the exact size, so a read past the slice is caught. */
        char *slice = malloc(n);
        CHECK(slice);
        memcpy(slice, body + sliced_pos, n);
        ssize_t r = h1_chunked_feed(&b, slice, n, &d);
        if (r < 0) {
            free(slice);
            sliced_bad = true;
            break;
        }
        CHECK((size_t)r <= n && (r > 0 || b.done));
        check_span_in(d, slice, slice + r);
        memcpy(sliced + sliced_len, d.ptr, d.len);
        sliced_len += d.len;
        sliced_pos += (size_t)r;
        free(slice);
    }

    CHECK(whole_bad == sliced_bad);
    if (!whole_bad) {
        CHECK(a.done == b.done && whole_pos == sliced_pos);
        CHECK(whole_len == sliced_len && memcmp(whole, sliced, whole_len) == 0);
        if (a.done) {
            CHECK(h1_chunked_feed(&a, body, len, &d) == 0 && d.len == 0);
        }
    }
    free(whole);
    free(sliced);
}

static void
check_request(const char *buf, int rc, const struct h1_request *req, struct h1_header *headers)
{
    const char *end = buf + rc;

    CHECK(req->headers == headers && req->num_headers <= MAX_HEADERS);
    CHECK(req->error_status == 0);
    CHECK(req->minor_version == 0 || req->minor_version == 1);
    CHECK(req->method.len > 0 && req->target.len > 0);
    check_span_in(req->method, buf, end);
    check_span_in(req->target, buf, end);
    check_span_in(req->authority, req->target.ptr, req->target.ptr + req->target.len);
    check_span_in(req->host, buf, end);
    CHECK(req->method_id != H1_METHOD_CONNECT);
    CHECK(req->path.len > 0);
    if (req->target_form == H1_TARGET_ABSOLUTE) {
        CHECK(req->authority.len > 0);
        if (!(req->path.len == 1 && req->path.ptr[0] == '/'))
            check_span_in(req->path, req->target.ptr, req->target.ptr + req->target.len);
    } else {
        CHECK(req->path.ptr == req->target.ptr && req->path.len == req->target.len);
        CHECK(req->target_form == H1_TARGET_ORIGIN ||
              (req->target_form == H1_TARGET_ASTERISK && req->method_id == H1_METHOD_OPTIONS));
    }
    if (req->minor_version == 1)
        CHECK(req->host.ptr != NULL);
    CHECK(req->body == H1_BODY_NONE || req->body == H1_BODY_LENGTH || req->body == H1_BODY_CHUNKED);
    CHECK(req->content_length <= (uint64_t)INT64_MAX);
    for (size_t i = 0; i < req->num_headers; i++) {
        struct h1_header *h = &headers[i];
        CHECK(h->name.len > 0);
        check_span_in(h->name, buf, end);
        check_span_in(h->value, buf, end);
        for (size_t j = 0; j < h->name.len; j++)
            CHECK(h1_is_token_char((unsigned char)h->name.ptr[j]));
        for (size_t j = 0; j < h->value.len; j++) {
            unsigned char c = (unsigned char)h->value.ptr[j];
            CHECK(c == '\t' || c >= 0x20);
            CHECK(c != 0x7f);
        }
        if (h->value.len) {
            CHECK(h->value.ptr[0] != ' ' && h->value.ptr[0] != '\t');
            CHECK(h->value.ptr[h->value.len - 1] != ' ' && h->value.ptr[h->value.len - 1] != '\t');
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct h1_header headers[MAX_HEADERS];
    struct h1_request req;
    struct h1_limits lim = {.max_head_bytes = MAX_HEAD, .max_headers = MAX_HEADERS};
    const char *buf = (const char *)data;

    int rc = h1_parse_request(buf, size, &lim, headers, &req);
    if (rc == H1_PARTIAL) {
        CHECK(size < MAX_HEAD);
    } else if (rc == H1_INVALID) {
        int s = req.error_status;
        CHECK(s == 400 || s == 414 || s == 431 || s == 501 || s == 505);
    } else {
        CHECK(rc > 0 && (size_t)rc <= size && rc <= MAX_HEAD);
        check_request(buf, rc, &req, headers);
        /* The head alone parses the same; one byte less is only partial. */
        struct h1_request again;
        CHECK(h1_parse_request(buf, (size_t)rc, &lim, headers, &again) == rc);
        CHECK(again.body == req.body && again.content_length == req.content_length &&
              again.flags == req.flags && again.num_headers == req.num_headers);
        CHECK(h1_parse_request(buf, (size_t)rc - 1, &lim, headers, &again) == H1_PARTIAL);
    }

    /* Whatever follows a good head (or the whole input) goes through the chunked decoder. */
    size_t off = rc > 0 ? (size_t)rc : 0;
    uint64_t seed = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 0x100000001b3ull;
    seed |= 1;
    check_chunked(buf + off, size - off, seed, (size_t)(seed >> 58) * 4);
    return 0;
}
