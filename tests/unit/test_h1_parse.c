/* SPDX-License-Identifier: MIT */
/* Tables of raw HTTP/1.1 messages and what h1_parse must make of them: requests that must
 * parse (and must stay partial until their last byte), requests that must be refused with
 * a given status, responses, and chunked bodies fed whole and in slices. Every input is
 * copied into a heap buffer of its exact size, so ASan sees any read past the end. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "h1_parse.h"

#define RAW(s) .raw = (s), .raw_len = sizeof(s) - 1

#define DEFAULT_MAX_HEAD 8192
#define DEFAULT_MAX_HEADERS 64
#define HEADER_ROOM 128

/* A private copy of buf[0..len), exactly len bytes long (1 if len is 0). */
static char *
dup_exact(const char *buf, size_t len)
{
    char *p = malloc(len ? len : 1);
    assert_non_null(p);
    memcpy(p, buf, len);
    return p;
}

static void
assert_span_is(struct span s, const char *expect, const char *what, const char *name)
{
    size_t n = expect ? strlen(expect) : 0;
    if (s.len != n || (n && memcmp(s.ptr, expect, n) != 0))
        fail_msg("%s: %s is \"%.*s\", expected \"%s\"", name, what, (int)s.len, s.ptr ? s.ptr : "",
                 expect ? expect : "");
}

static struct h1_limits
limits_of(size_t max_head, size_t max_headers)
{
    return (struct h1_limits){
        .max_head_bytes = max_head ? max_head : DEFAULT_MAX_HEAD,
        .max_headers = max_headers ? max_headers : DEFAULT_MAX_HEADERS,
    };
}

static int
parse_req_copy(const char *raw, size_t len, const struct h1_limits *lim, struct h1_header *headers,
               struct h1_request *req)
{
    char *buf = dup_exact(raw, len);
    int rc = h1_parse_request(buf, len, lim, headers, req);
    free(buf);
    return rc;
}

/* ---- valid requests ------------------------------------------------------------------ */

struct req_ok {
    const char *name;
    const char *raw;
    size_t raw_len;
    size_t tail;                  /* bytes after the head (a body, the next request) */
    size_t max_head, max_headers; /* 0: defaults */
    const char *method;
    enum h1_method method_id;
    const char *target;
    enum h1_target_form form;
    const char *path, *authority, *host; /* NULL: empty */
    int minor;
    size_t num_headers;
    enum h1_body body;
    uint64_t content_length;
    unsigned flags;
    size_t hidx; /* when hname is set: headers[hidx] must be hname: hvalue */
    const char *hname, *hvalue;
};

#define GET_ORIGIN(p) .method = "GET", .method_id = H1_METHOD_GET, .target = (p), .path = (p)

static const struct req_ok req_ok_cases[] = {
    {"get simple", RAW("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"), GET_ORIGIN("/"),
     .host = "example.com", .minor = 1, .num_headers = 1, .hidx = 0, .hname = "Host",
     .hvalue = "example.com"},
    {"keep-alive",
     RAW("GET /a?b=c HTTP/1.1\r\nHost: example.com:8080\r\n"
         "Connection: keep-alive\r\n\r\n"),
     GET_ORIGIN("/a?b=c"), .host = "example.com:8080", .minor = 1, .num_headers = 2,
     .flags = H1_F_CONN_KEEPALIVE},
    {"connection close and hop-by-hop names",
     RAW("GET / HTTP/1.1\r\nhost: h\r\nConnection: , Close ,X-Foo,\r\n\r\n"), GET_ORIGIN("/"),
     .host = "h", .minor = 1, .num_headers = 2, .flags = H1_F_CONN_CLOSE | H1_F_HAS_CONN_TOKENS},
    {"pipelined: the first head only",
     RAW("GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n"), .tail = 28,
     GET_ORIGIN("/1"), .host = "h", .minor = 1, .num_headers = 1},
    {"post with content-length",
     RAW("POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world"), .tail = 11,
     .method = "POST", .method_id = H1_METHOD_POST, .target = "/form", .path = "/form", .host = "h",
     .minor = 1, .num_headers = 2, .body = H1_BODY_LENGTH, .content_length = 11},
    {"content-length zero", RAW("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"),
     .method = "PUT", .method_id = H1_METHOD_PUT, .target = "/x", .path = "/x", .host = "h",
     .minor = 1, .num_headers = 2, .body = H1_BODY_LENGTH},
    {"chunked", RAW("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"),
     .method = "POST", .method_id = H1_METHOD_POST, .target = "/", .path = "/", .host = "h",
     .minor = 1, .num_headers = 2, .body = H1_BODY_CHUNKED},
    {"chunked after gzip, over two lines",
     RAW("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n"
         "transfer-encoding: , CHUNKED\r\n\r\n"),
     .method = "POST", .method_id = H1_METHOD_POST, .target = "/", .path = "/", .host = "h",
     .minor = 1, .num_headers = 3, .body = H1_BODY_CHUNKED},
    {"transfer coding with parameters before chunked",
     RAW("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: x-foo ; a=b;c=\"d, e\", chunked"
         "\r\n\r\n"),
     .method = "POST", .method_id = H1_METHOD_POST, .target = "/", .path = "/", .host = "h",
     .minor = 1, .num_headers = 2, .body = H1_BODY_CHUNKED},
    {"absolute-form", RAW("GET http://example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n"),
     .method = "GET", .method_id = H1_METHOD_GET, .target = "http://example.com/x?y",
     .form = H1_TARGET_ABSOLUTE, .path = "/x?y", .authority = "example.com", .host = "example.com",
     .minor = 1, .num_headers = 1},
    {"absolute-form https, empty path, empty Host",
     RAW("GET HTTPS://Example.com:443 HTTP/1.1\r\nHost:\r\n\r\n"), .method = "GET",
     .method_id = H1_METHOD_GET, .target = "HTTPS://Example.com:443", .form = H1_TARGET_ABSOLUTE,
     .path = "/", .authority = "Example.com:443", .minor = 1, .num_headers = 1},
    {"absolute-form query without path", RAW("GET http://h?q HTTP/1.1\r\nHost: h\r\n\r\n"),
     .method = "GET", .method_id = H1_METHOD_GET, .target = "http://h?q",
     .form = H1_TARGET_ABSOLUTE, .path = "?q", .authority = "h", .host = "h", .minor = 1,
     .num_headers = 1},
    {"options asterisk", RAW("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), .method = "OPTIONS",
     .method_id = H1_METHOD_OPTIONS, .target = "*", .form = H1_TARGET_ASTERISK, .path = "*",
     .host = "h", .minor = 1, .num_headers = 1},
    {"http/1.0 without host", RAW("GET /old HTTP/1.0\r\n\r\n"), GET_ORIGIN("/old"), .minor = 0},
    {"http/1.0 keep-alive", RAW("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"),
     GET_ORIGIN("/"), .minor = 0, .num_headers = 1, .flags = H1_F_CONN_KEEPALIVE},
    {"leading empty lines", RAW("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"), GET_ORIGIN("/"),
     .host = "h", .minor = 1, .num_headers = 1},
    {"obs-text in a value, OWS trimmed",
     RAW("GET / HTTP/1.1\r\nHost: h\r\nX-Name: \t caf\xc3\xa9 \"x\"\t \r\n\r\n"), GET_ORIGIN("/"),
     .host = "h", .minor = 1, .num_headers = 2, .hidx = 1, .hname = "X-Name",
     .hvalue = "caf\xc3\xa9 \"x\""},
    {"empty value", RAW("GET / HTTP/1.1\r\nHost: h\r\nX-Empty:   \r\n\r\n"), GET_ORIGIN("/"),
     .host = "h", .minor = 1, .num_headers = 2, .hidx = 1, .hname = "X-Empty", .hvalue = ""},
    {"headers up to the limit",
     RAW("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\n"
         "G: 7\r\n\r\n"),
     .max_headers = 8, GET_ORIGIN("/"), .host = "h", .minor = 1, .num_headers = 8, .hidx = 7,
     .hname = "G", .hvalue = "7"},
    {"head exactly at the byte limit", RAW("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), .max_head = 27,
     GET_ORIGIN("/"), .host = "h", .minor = 1, .num_headers = 1},
    {"duplicate identical content-length",
     RAW("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
     .method = "POST", .method_id = H1_METHOD_POST, .target = "/", .path = "/", .host = "h",
     .minor = 1, .num_headers = 3, .body = H1_BODY_LENGTH, .content_length = 5},
    {"listed identical content-length",
     RAW("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 007 , 7,7\r\n\r\n"), .method = "POST",
     .method_id = H1_METHOD_POST, .target = "/", .path = "/", .host = "h", .minor = 1,
     .num_headers = 2, .body = H1_BODY_LENGTH, .content_length = 7},
    {"largest content-length",
     RAW("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775807\r\n\r\n"),
     .method = "POST", .method_id = H1_METHOD_POST, .target = "/", .path = "/", .host = "h",
     .minor = 1, .num_headers = 2, .body = H1_BODY_LENGTH,
     .content_length = 9223372036854775807ull},
    {"http/1.2 reads as 1.1", RAW("GET / HTTP/1.2\r\nHost: h\r\n\r\n"), GET_ORIGIN("/"),
     .host = "h", .minor = 1, .num_headers = 1},
    {"http/1.9 reads as 1.1", RAW("GET / HTTP/1.9\r\nHost: h\r\n\r\n"), GET_ORIGIN("/"),
     .host = "h", .minor = 1, .num_headers = 1},
    {"upgrade websocket",
     RAW("GET /chat HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n"
         "Upgrade: h2c, WebSocket/13\r\n\r\n"),
     GET_ORIGIN("/chat"), .host = "h", .minor = 1, .num_headers = 3,
     .flags = H1_F_CONN_KEEPALIVE | H1_F_CONN_UPGRADE | H1_F_UPGRADE_WEBSOCKET},
    {"upgrade to something else", RAW("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\n\r\n"),
     GET_ORIGIN("/"), .host = "h", .minor = 1, .num_headers = 2},
    {"expect 100-continue",
     RAW("PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n"),
     .method = "PUT", .method_id = H1_METHOD_PUT, .target = "/f", .path = "/f", .host = "h",
     .minor = 1, .num_headers = 3, .body = H1_BODY_LENGTH, .content_length = 3,
     .flags = H1_F_EXPECT_CONTINUE},
    {"other expectation ignored", RAW("GET / HTTP/1.1\r\nHost: h\r\nExpect: foo\r\n\r\n"),
     GET_ORIGIN("/"), .host = "h", .minor = 1, .num_headers = 2},
    {"expect in http/1.0 ignored", RAW("GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"),
     GET_ORIGIN("/"), .minor = 0, .num_headers = 1},
    {"unknown method", RAW("PURGE /x HTTP/1.1\r\nHost: h\r\n\r\n"), .method = "PURGE",
     .method_id = H1_METHOD_OTHER, .target = "/x", .path = "/x", .host = "h", .minor = 1,
     .num_headers = 1},
    {"methods are case-sensitive", RAW("get / HTTP/1.1\r\nHost: h\r\n\r\n"), .method = "get",
     .method_id = H1_METHOD_OTHER, .target = "/", .path = "/", .host = "h", .minor = 1,
     .num_headers = 1},
    {"head", RAW("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"), .method = "HEAD",
     .method_id = H1_METHOD_HEAD, .target = "/", .path = "/", .host = "h", .minor = 1,
     .num_headers = 1},
    {"delete", RAW("DELETE /r/1 HTTP/1.1\r\nHost: h\r\n\r\n"), .method = "DELETE",
     .method_id = H1_METHOD_DELETE, .target = "/r/1", .path = "/r/1", .host = "h", .minor = 1,
     .num_headers = 1},
    {"patch", RAW("PATCH / HTTP/1.1\r\nHost: h\r\n\r\n"), .method = "PATCH",
     .method_id = H1_METHOD_PATCH, .target = "/", .path = "/", .host = "h", .minor = 1,
     .num_headers = 1},
    {"trace", RAW("TRACE / HTTP/1.1\r\nHost: h\r\n\r\n"), .method = "TRACE",
     .method_id = H1_METHOD_TRACE, .target = "/", .path = "/", .host = "h", .minor = 1,
     .num_headers = 1},
    {"ipv6 host", RAW("GET / HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n\r\n"), GET_ORIGIN("/"),
     .host = "[2001:db8::1]:8080", .minor = 1, .num_headers = 1},
    {"ipv4 host, empty port", RAW("GET / HTTP/1.1\r\nHost: 10.0.0.1:\r\n\r\n"), GET_ORIGIN("/"),
     .host = "10.0.0.1:", .minor = 1, .num_headers = 1},
    {"percent-escaped host", RAW("GET / HTTP/1.1\r\nHost: ex%41mple.com\r\n\r\n"), GET_ORIGIN("/"),
     .host = "ex%41mple.com", .minor = 1, .num_headers = 1},
    {"odd but visible target", RAW("GET /a%20b/{x}|\"q\"#f HTTP/1.1\r\nHost: h\r\n\r\n"),
     GET_ORIGIN("/a%20b/{x}|\"q\"#f"), .host = "h", .minor = 1, .num_headers = 1},
    {"names and methods that only look special",
     RAW("MKCOL / HTTP/1.1\r\nHost: h\r\nDate: x\r\nAccept: x\r\nX-Abcde: x\r\n"
         "X-Abcdefgh: x\r\nX-Abcdefghijkl: x\r\nX-Abcdefghijklmno: x\r\nExpect: x\r\n\r\n"),
     .method = "MKCOL", .method_id = H1_METHOD_OTHER, .target = "/", .path = "/", .host = "h",
     .minor = 1, .num_headers = 8},
    {"three, four and six-letter methods", RAW("FOO / HTTP/1.1\r\nHost: h\r\n\r\n"),
     .method = "FOO", .method_id = H1_METHOD_OTHER, .target = "/", .path = "/", .host = "h",
     .minor = 1, .num_headers = 1},
    {"four-letter method", RAW("LOCK / HTTP/1.1\r\nHost: h\r\n\r\n"), .method = "LOCK",
     .method_id = H1_METHOD_OTHER, .target = "/", .path = "/", .host = "h", .minor = 1,
     .num_headers = 1},
    {"six-letter method", RAW("SEARCH / HTTP/1.1\r\nHost: h\r\n\r\n"), .method = "SEARCH",
     .method_id = H1_METHOD_OTHER, .target = "/", .path = "/", .host = "h", .minor = 1,
     .num_headers = 1},
    {"transfer coding parameter with a quoted-pair",
     RAW("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: x;a=\"b\\\"c, d\";e=f,chunked\r\n"
         "\r\n"),
     .method = "POST", .method_id = H1_METHOD_POST, .target = "/", .path = "/", .host = "h",
     .minor = 1, .num_headers = 2, .body = H1_BODY_CHUNKED},
    {"connection with empty elements",
     RAW("GET / HTTP/1.1\r\nHost: h\r\nConnection: close ,, upgrade,\r\n"
         "Upgrade: ,h2c/1, websocket\r\n\r\n"),
     GET_ORIGIN("/"), .host = "h", .minor = 1, .num_headers = 3,
     .flags = H1_F_CONN_CLOSE | H1_F_CONN_UPGRADE | H1_F_UPGRADE_WEBSOCKET},
    {"token characters in a name",
     RAW("GET / HTTP/1.1\r\nHost: h\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n"), GET_ORIGIN("/"),
     .host = "h", .minor = 1, .num_headers = 2, .hidx = 1, .hname = "!#$%&'*+-.^_`|~09azAZ",
     .hvalue = "v"},
};

static void
check_req_ok(const struct req_ok *t, const struct h1_request *req, struct h1_header *headers)
{
    const char *n = t->name;
    assert_span_is(req->method, t->method, "method", n);
    assert_int_equal(req->method_id, t->method_id);
    assert_span_is(req->target, t->target, "target", n);
    assert_int_equal(req->target_form, t->form);
    assert_span_is(req->path, t->path, "path", n);
    assert_span_is(req->authority, t->authority, "authority", n);
    assert_span_is(req->host, t->host, "host", n);
    assert_int_equal(req->minor_version, t->minor);
    assert_ptr_equal(req->headers, headers);
    assert_int_equal(req->num_headers, t->num_headers);
    assert_int_equal(req->body, t->body);
    if (t->body == H1_BODY_LENGTH)
        assert_true(req->content_length == t->content_length);
    assert_int_equal(req->flags, t->flags);
    assert_int_equal(req->error_status, 0);
    if (t->hname) {
        assert_span_is(headers[t->hidx].name, t->hname, "header name", n);
        assert_span_is(headers[t->hidx].value, t->hvalue, "header value", n);
    }
}

static void
test_request_valid(void **state)
{
    (void)state;
    struct h1_header headers[HEADER_ROOM];
    struct h1_request req;

    for (size_t i = 0; i < sizeof(req_ok_cases) / sizeof(req_ok_cases[0]); i++) {
        const struct req_ok *t = &req_ok_cases[i];
        struct h1_limits lim = limits_of(t->max_head, t->max_headers);
        size_t head_len = t->raw_len - t->tail;
        char *buf = dup_exact(t->raw, t->raw_len);
        int rc = h1_parse_request(buf, t->raw_len, &lim, headers, &req);
        if (rc != (int)head_len)
            fail_msg("%s: returned %d (status %d), expected %zu", t->name, rc, req.error_status,
                     head_len);
        check_req_ok(t, &req, headers);
        free(buf);
    }
}

/* Every proper prefix of a valid head is partial; the head alone parses the same. */
static void
test_request_valid_prefixes(void **state)
{
    (void)state;
    struct h1_header headers[HEADER_ROOM];
    struct h1_request req;

    for (size_t i = 0; i < sizeof(req_ok_cases) / sizeof(req_ok_cases[0]); i++) {
        const struct req_ok *t = &req_ok_cases[i];
        struct h1_limits lim = limits_of(t->max_head, t->max_headers);
        size_t head_len = t->raw_len - t->tail;
        for (size_t k = 0; k < head_len; k++) {
            int rc = parse_req_copy(t->raw, k, &lim, headers, &req);
            if (rc != H1_PARTIAL)
                fail_msg("%s: prefix of %zu bytes returned %d (status %d)", t->name, k, rc,
                         req.error_status);
        }
        char *buf = dup_exact(t->raw, head_len);
        assert_int_equal(h1_parse_request(buf, head_len, &lim, headers, &req), (int)head_len);
        check_req_ok(t, &req, headers);
        free(buf);
    }
}

/* ---- invalid requests ---------------------------------------------------------------- */

struct req_bad {
    const char *name;
    const char *raw;
    size_t raw_len;
    int status;
    size_t max_head, max_headers;
};

#define HOST "Host: h\r\n"

static const struct req_bad req_bad_cases[] = {
    /* request line */
    {"bare LF ends the request line", RAW("GET / HTTP/1.1\n" HOST "\r\n"), 400},
    {"bare CR ends the request line", RAW("GET / HTTP/1.1\r" HOST "\r\n"), 400},
    {"CR CR LF", RAW("GET / HTTP/1.1\r\r\n" HOST "\r\n"), 400},
    {"leading bare LF", RAW("\nGET / HTTP/1.1\r\n" HOST "\r\n"), 400},
    {"leading bare CR", RAW("\rGET / HTTP/1.1\r\n" HOST "\r\n"), 400},
    {"leading space", RAW(" GET / HTTP/1.1\r\n" HOST "\r\n"), 400},
    {"double space after method", RAW("GET  / HTTP/1.1\r\n" HOST "\r\n"), 400},
    {"double space after target", RAW("GET /  HTTP/1.1\r\n" HOST "\r\n"), 400},
    {"tab as separator", RAW("GET\t/ HTTP/1.1\r\n" HOST "\r\n"), 400},
    {"lowercase version", RAW("GET / http/1.1\r\n" HOST "\r\n"), 400},
    {"trailing space after version", RAW("GET / HTTP/1.1 \r\n" HOST "\r\n"), 400},
    {"two-digit minor", RAW("GET / HTTP/1.10\r\n" HOST "\r\n"), 400},
    {"version without minor", RAW("GET / HTTP/1\r\n" HOST "\r\n"), 400},
    {"version junk", RAW("GET / HTTP/1.x\r\n" HOST "\r\n"), 400},
    {"no version", RAW("GET /\r\n" HOST "\r\n"), 400},
    {"space in target", RAW("GET /a b HTTP/1.1\r\n" HOST "\r\n"), 400},
    {"control byte in target", RAW("GET /a\x01 HTTP/1.1\r\n" HOST "\r\n"), 400},
    {"NUL in target", RAW("GET /a\0b HTTP/1.1\r\n" HOST "\r\n"), 400},
    {"DEL in target", RAW("GET /a\x7f HTTP/1.1\r\n" HOST "\r\n"), 400},
    {"obs-text in target", RAW("GET /caf\xc3\xa9 HTTP/1.1\r\n" HOST "\r\n"), 400},
    {"method with a paren", RAW("GE(T / HTTP/1.1\r\n" HOST "\r\n"), 400},
    {"method with a slash", RAW("GET/ / HTTP/1.1\r\n" HOST "\r\n"), 400},
    {"http/2.0", RAW("GET / HTTP/2.0\r\n" HOST "\r\n"), 505},
    {"http/3.0", RAW("GET / HTTP/3.0\r\n" HOST "\r\n"), 505},
    {"http/0.9", RAW("GET / HTTP/0.9\r\n\r\n"), 505},
    {"connect", RAW("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), 501},
    {"asterisk with get", RAW("GET * HTTP/1.1\r\n" HOST "\r\n"), 400},
    {"authority-form with get", RAW("GET example.com:80 HTTP/1.1\r\n" HOST "\r\n"), 400},
    {"relative target", RAW("GET a/b HTTP/1.1\r\n" HOST "\r\n"), 400},
    {"other scheme", RAW("GET ftp://h/x HTTP/1.1\r\n" HOST "\r\n"), 400},
    {"absolute-form without authority", RAW("GET http:///x HTTP/1.1\r\n" HOST "\r\n"), 400},
    {"absolute-form with nothing after", RAW("GET http:// HTTP/1.1\r\n" HOST "\r\n"), 400},
    {"absolute-form with userinfo", RAW("GET http://u@h/ HTTP/1.1\r\n" HOST "\r\n"), 400},
    {"absolute-form with bad port", RAW("GET http://h:8x/ HTTP/1.1\r\n" HOST "\r\n"), 400},
    /* header syntax */
    {"space before colon", RAW("GET / HTTP/1.1\r\nHost : h\r\n\r\n"), 400},
    {"tab before colon", RAW("GET / HTTP/1.1\r\n" HOST "X\t: v\r\n\r\n"), 400},
    {"tab in name", RAW("GET / HTTP/1.1\r\n" HOST "X\tY: v\r\n\r\n"), 400},
    {"empty name", RAW("GET / HTTP/1.1\r\n" HOST ": v\r\n\r\n"), 400},
    {"no colon", RAW("GET / HTTP/1.1\r\n" HOST "Foo\r\n\r\n"), 400},
    {"non-token name", RAW("GET / HTTP/1.1\r\n" HOST "X(y): v\r\n\r\n"), 400},
    {"obs-text in name", RAW("GET / HTTP/1.1\r\n" HOST "X\xc3\xa9: v\r\n\r\n"), 400},
    {"NUL in value", RAW("GET / HTTP/1.1\r\n" HOST "X: a\0b\r\n\r\n"), 400},
    {"control byte in value", RAW("GET / HTTP/1.1\r\n" HOST "X: a\x1b[0m\r\n\r\n"), 400},
    {"DEL in value", RAW("GET / HTTP/1.1\r\n" HOST "X: a\x7f\r\n\r\n"), 400},
    {"bare LF after a header", RAW("GET / HTTP/1.1\r\n" HOST "X: a\n\r\n"), 400},
    {"bare CR in a header", RAW("GET / HTTP/1.1\r\n" HOST "X: a\rb\r\n\r\n"), 400},
    {"bare LF ends the head", RAW("GET / HTTP/1.1\r\n" HOST "\n"), 400},
    {"CR then junk ends the head", RAW("GET / HTTP/1.1\r\n" HOST "\rX"), 400},
    {"obs-fold", RAW("GET / HTTP/1.1\r\n" HOST "X: a\r\n b\r\n\r\n"), 400},
    {"obs-fold with tab", RAW("GET / HTTP/1.1\r\n" HOST "X: a\r\n\tb\r\n\r\n"), 400},
    {"whitespace before the first header", RAW("GET / HTTP/1.1\r\n " HOST "\r\n"), 400},
    /* Host */
    {"missing host in 1.1", RAW("GET / HTTP/1.1\r\n\r\n"), 400},
    {"missing host in 1.1 absolute-form", RAW("GET http://h/ HTTP/1.1\r\n\r\n"), 400},
    {"two hosts", RAW("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"), 400},
    {"two hosts in 1.0", RAW("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), 400},
    {"empty host in origin-form", RAW("GET / HTTP/1.1\r\nHost: \r\n\r\n"), 400},
    {"host with a space", RAW("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400},
    {"host with a slash", RAW("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400},
    {"host with userinfo", RAW("GET / HTTP/1.1\r\nHost: u@h\r\n\r\n"), 400},
    {"host with a port only", RAW("GET / HTTP/1.1\r\nHost: :80\r\n\r\n"), 400},
    {"host with a long port", RAW("GET / HTTP/1.1\r\nHost: h:123456\r\n\r\n"), 400},
    {"host with a bad port", RAW("GET / HTTP/1.1\r\nHost: h:8o\r\n\r\n"), 400},
    {"host with a bad escape", RAW("GET / HTTP/1.1\r\nHost: a%4\r\n\r\n"), 400},
    {"host ipv6 unclosed", RAW("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"), 400},
    {"host ipv6 empty", RAW("GET / HTTP/1.1\r\nHost: []\r\n\r\n"), 400},
    {"host ipv6 junk", RAW("GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n"), 400},
    /* Content-Length */
    {"differing content-length",
     RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: 5\r\nContent-Length: 6\r\n\r\n"), 400},
    {"differing listed content-length",
     RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: 5, 6\r\n\r\n"), 400},
    {"content-length with a sign", RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: +5\r\n\r\n"),
     400},
    {"negative content-length", RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: -1\r\n\r\n"), 400},
    {"hex content-length", RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: 0x10\r\n\r\n"), 400},
    {"empty content-length", RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: \r\n\r\n"), 400},
    {"content-length empty element", RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: 5,,5\r\n\r\n"),
     400},
    {"content-length trailing comma", RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: 5,\r\n\r\n"),
     400},
    {"content-length with inner space",
     RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: 1 0\r\n\r\n"), 400},
    {"content-length overflow",
     RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: 99999999999999999999999\r\n\r\n"), 400},
    {"content-length just past int64",
     RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: 9223372036854775808\r\n\r\n"), 400},
    /* Transfer-Encoding */
    {"unknown coding", RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: gzip\r\n\r\n"), 501},
    {"chunked then gzip",
     RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked, gzip\r\n\r\n"), 400},
    {"chunked then gzip over two lines",
     RAW("POST / HTTP/1.1\r\n" HOST
         "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"),
     400},
    {"chunked twice", RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked, chunked\r\n\r\n"),
     400},
    {"chunked twice over two lines",
     RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"
         "\r\n"),
     400},
    {"chunked with a parameter",
     RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked;q=1\r\n\r\n"), 400},
    {"empty transfer-encoding", RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding:\r\n\r\n"), 400},
    {"transfer-encoding list of nothing",
     RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: , ,\r\n\r\n"), 400},
    {"transfer-encoding junk",
     RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: \"chunked\"\r\n\r\n"), 400},
    {"transfer-encoding space-separated",
     RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: gzip chunked\r\n\r\n"), 400},
    {"transfer-encoding unterminated quoted parameter",
     RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: x;a=\"b, chunked\r\n\r\n"), 400},
    {"transfer-encoding with content-length",
     RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
     400},
    {"content-length with transfer-encoding",
     RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
     400},
    {"transfer-encoding in 1.0", RAW("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400},
    {"transfer coding parameter without a value",
     RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: x;a, chunked\r\n\r\n"), 400},
    {"transfer coding parameter with an empty value",
     RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: x;a=, chunked\r\n\r\n"), 400},
    {"transfer coding parameter without a name",
     RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: x;=b, chunked\r\n\r\n"), 400},
    {"transfer coding parameter junk after the value",
     RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: x;a=\"b\"c, chunked\r\n\r\n"), 400},
    {"transfer coding quoted-pair at the end",
     RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: x;a=\"b\\\r\n\r\n"), 400},
    /* Connection */
    {"connection with a non-token", RAW("GET / HTTP/1.1\r\n" HOST "Connection: close;x\r\n\r\n"),
     400},
    {"connection space-separated", RAW("GET / HTTP/1.1\r\n" HOST "Connection: a b\r\n\r\n"), 400},
    /* limits */
    {"uri too long",
     RAW("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n" HOST "\r\n"), 414,
     .max_head = 32},
    {"uri too long, partial", RAW("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), 414,
     .max_head = 32},
    {"leading empty lines count", RAW("\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" HOST "\r\n"), 414,
     .max_head = 8},
    {"request line ends just past the limit", RAW("GET / HTTP/1.1\r\n" HOST "\r\n"), 414,
     .max_head = 15},
    {"too many headers", RAW("GET / HTTP/1.1\r\n" HOST "A: 1\r\nB: 2\r\nC: 3\r\n\r\n"), 431,
     .max_headers = 3},
    {"too many headers, partial", RAW("GET / HTTP/1.1\r\n" HOST "A: 1\r\nB: 2\r\nC"), 431,
     .max_headers = 3},
    {"head too big", RAW("GET / HTTP/1.1\r\n" HOST "X-Big: 0123456789012345678901234\r\n\r\n"), 431,
     .max_head = 40},
    {"head one byte too big", RAW("GET / HTTP/1.1\r\n" HOST "\r\n"), 431, .max_head = 26},
    {"head too big, partial", RAW("GET / HTTP/1.1\r\n" HOST "X-Big: 01234567890123456"), 431,
     .max_head = 40},
};

static void
test_request_invalid(void **state)
{
    (void)state;
    struct h1_header headers[HEADER_ROOM];
    struct h1_request req;

    for (size_t i = 0; i < sizeof(req_bad_cases) / sizeof(req_bad_cases[0]); i++) {
        const struct req_bad *t = &req_bad_cases[i];
        struct h1_limits lim = limits_of(t->max_head, t->max_headers);
        int rc = parse_req_copy(t->raw, t->raw_len, &lim, headers, &req);
        if (rc != H1_INVALID || req.error_status != t->status)
            fail_msg("%s: returned %d with status %d, expected %d", t->name, rc, req.error_status,
                     t->status);
    }
}

/* A prefix of a bad head is either partial or already refused for the same reason:
 * nothing is accepted on the way, and the verdict does not change with more bytes. */
static void
test_request_invalid_prefixes(void **state)
{
    (void)state;
    struct h1_header headers[HEADER_ROOM];
    struct h1_request req;

    for (size_t i = 0; i < sizeof(req_bad_cases) / sizeof(req_bad_cases[0]); i++) {
        const struct req_bad *t = &req_bad_cases[i];
        struct h1_limits lim = limits_of(t->max_head, t->max_headers);
        bool refused = false;
        for (size_t k = 0; k < t->raw_len; k++) {
            int rc = parse_req_copy(t->raw, k, &lim, headers, &req);
            if (rc == H1_PARTIAL && !refused)
                continue;
            if (rc != H1_INVALID || req.error_status != t->status)
                fail_msg("%s: prefix of %zu bytes returned %d with status %d", t->name, k, rc,
                         req.error_status);
            refused = true;
        }
    }
}

/* Limits hold however the bytes arrive: a head that never ends is refused as soon as the
 * buffer reaches the limit, never left partial. */
static void
test_request_limit_on_partial(void **state)
{
    (void)state;
    struct h1_header headers[HEADER_ROOM];
    struct h1_request req;
    struct h1_limits lim = limits_of(1024, 0);
    char big[4096];

    memset(big, 'a', sizeof(big));
    memcpy(big, "GET /", 5);
    assert_int_equal(parse_req_copy(big, 1023, &lim, headers, &req), H1_PARTIAL);
    assert_int_equal(parse_req_copy(big, 1024, &lim, headers, &req), H1_INVALID);
    assert_int_equal(req.error_status, 414);
    assert_int_equal(parse_req_copy(big, sizeof(big), &lim, headers, &req), H1_INVALID);
    assert_int_equal(req.error_status, 414);

    static const char line[] = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
    memcpy(big, line, sizeof(line) - 1);
    assert_int_equal(parse_req_copy(big, 1023, &lim, headers, &req), H1_PARTIAL);
    assert_int_equal(parse_req_copy(big, 1024, &lim, headers, &req), H1_INVALID);
    assert_int_equal(req.error_status, 431);

    /* The full head ends well past the limit: still 431, not a success. */
    memcpy(big + 2000, "\r\n\r\n", 4);
    assert_int_equal(parse_req_copy(big, 2004, &lim, headers, &req), H1_INVALID);
    assert_int_equal(req.error_status, 431);
    lim.max_head_bytes = 2004;
    assert_int_equal(parse_req_copy(big, 2004, &lim, headers, &req), 2004);
}

/* max_headers of 0 refuses any header; the array is never written past its end. */
static void
test_request_header_array_bound(void **state)
{
    (void)state;
    struct h1_header headers[3];
    struct h1_request req;
    struct h1_limits lim = {.max_head_bytes = 1024, .max_headers = 2};
    static const char ok[] = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\n\r\n";
    static const char bad[] = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";

    memset(&headers[2], 0x5a, sizeof(headers[2]));
    assert_int_equal(parse_req_copy(ok, sizeof(ok) - 1, &lim, headers, &req), sizeof(ok) - 1);
    assert_int_equal(parse_req_copy(bad, sizeof(bad) - 1, &lim, headers, &req), H1_INVALID);
    assert_int_equal(req.error_status, 431);
    const unsigned char *guard = (const unsigned char *)&headers[2];
    for (size_t i = 0; i < sizeof(headers[2]); i++)
        assert_int_equal(guard[i], 0x5a);

    static const char http10[] = "GET / HTTP/1.0\r\n\r\n";
    lim.max_headers = 0;
    assert_int_equal(parse_req_copy(http10, sizeof(http10) - 1, &lim, headers, &req),
                     sizeof(http10) - 1);
}

/* ---- responses ----------------------------------------------------------------------- */

struct resp_case {
    const char *name;
    const char *raw;
    size_t raw_len;
    enum h1_method method;
    bool invalid;
    size_t tail; /* bytes after the head */
    int status;
    int minor;
    const char *reason;
    enum h1_body body;
    uint64_t content_length;
    size_t num_headers;
    unsigned flags;
    size_t max_head;
};

static const struct resp_case resp_cases[] = {
    {"200 with content-length", RAW("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"), .tail = 5,
     .status = 200, .minor = 1, .reason = "OK", .body = H1_BODY_LENGTH, .content_length = 5,
     .num_headers = 1},
    {"chunked", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), .status = 200,
     .minor = 1, .reason = "OK", .body = H1_BODY_CHUNKED, .num_headers = 1},
    {"gzip then chunked", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
     .status = 200, .minor = 1, .reason = "OK", .body = H1_BODY_CHUNKED, .num_headers = 1},
    {"chunked not last: until close",
     RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), .status = 200, .minor = 1,
     .reason = "OK", .body = H1_BODY_CLOSE, .num_headers = 1},
    {"unknown coding: until close", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
     .status = 200, .minor = 1, .reason = "OK", .body = H1_BODY_CLOSE, .num_headers = 1},
    {"chunked in 1.0: until close", RAW("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
     .status = 200, .minor = 0, .reason = "OK", .body = H1_BODY_CLOSE, .num_headers = 1},
    {"head: no body", RAW("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"),
     .method = H1_METHOD_HEAD, .status = 200, .minor = 1, .reason = "OK", .body = H1_BODY_NONE,
     .content_length = 10, .num_headers = 1},
    {"head with chunked: no body", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
     .method = H1_METHOD_HEAD, .status = 200, .minor = 1, .reason = "OK", .body = H1_BODY_NONE,
     .num_headers = 1},
    {"204", RAW("HTTP/1.1 204 No Content\r\n\r\n"), .status = 204, .minor = 1,
     .reason = "No Content", .body = H1_BODY_NONE},
    {"304", RAW("HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n"), .status = 304,
     .minor = 1, .reason = "Not Modified", .body = H1_BODY_NONE, .content_length = 100,
     .num_headers = 1},
    {"100", RAW("HTTP/1.1 100 Continue\r\n\r\n"), .status = 100, .minor = 1, .reason = "Continue",
     .body = H1_BODY_NONE},
    {"103", RAW("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"), .status = 103,
     .minor = 1, .reason = "Early Hints", .body = H1_BODY_NONE, .num_headers = 1},
    {"101 websocket",
     RAW("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "\r\n"),
     .status = 101, .minor = 1, .reason = "Switching Protocols", .body = H1_BODY_NONE,
     .num_headers = 2, .flags = H1_F_UPGRADE_WEBSOCKET | H1_F_CONN_UPGRADE},
    {"no framing: until close", RAW("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"), .status = 200,
     .minor = 1, .reason = "OK", .body = H1_BODY_CLOSE, .num_headers = 1, .flags = H1_F_CONN_CLOSE},
    {"1.0 keep-alive",
     RAW("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"), .status = 200,
     .minor = 0, .reason = "OK", .body = H1_BODY_LENGTH, .num_headers = 2,
     .flags = H1_F_CONN_KEEPALIVE},
    {"1.1 minor above 1", RAW("HTTP/1.7 200 OK\r\nContent-Length: 0\r\n\r\n"), .status = 200,
     .minor = 1, .reason = "OK", .body = H1_BODY_LENGTH, .num_headers = 1},
    {"empty reason", RAW("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n"), .status = 404, .minor = 1,
     .reason = "", .body = H1_BODY_LENGTH, .num_headers = 1},
    {"no reason and no space", RAW("HTTP/1.1 500\r\nContent-Length: 0\r\n\r\n"), .status = 500,
     .minor = 1, .reason = "", .body = H1_BODY_LENGTH, .num_headers = 1},
    {"reason with tabs and obs-text", RAW("HTTP/1.1 200 Tr\xc3\xa8s\tbien  \r\n\r\n"),
     .status = 200, .minor = 1, .reason = "Tr\xc3\xa8s\tbien  ", .body = H1_BODY_CLOSE},
    {"status 999", RAW("HTTP/1.1 999 Odd\r\nContent-Length: 1\r\n\r\n"), .status = 999, .minor = 1,
     .reason = "Odd", .body = H1_BODY_LENGTH, .content_length = 1, .num_headers = 1},
    {"identical content-lengths",
     RAW("HTTP/1.1 200 OK\r\nContent-Length: 3\r\ncontent-length: 3, 3\r\n\r\n"), .status = 200,
     .minor = 1, .reason = "OK", .body = H1_BODY_LENGTH, .content_length = 3, .num_headers = 2},
    /* invalid: always 502 */
    {"te with cl",
     RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
     .invalid = true},
    {"te with cl on a 204",
     RAW("HTTP/1.1 204 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n"),
     .invalid = true},
    {"chunked twice", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
     .invalid = true},
    {"empty te", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\n"), .invalid = true},
    {"differing content-length",
     RAW("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"), .invalid = true},
    {"bad content-length", RAW("HTTP/1.1 200 OK\r\nContent-Length: 3x\r\n\r\n"), .invalid = true},
    {"two-digit status", RAW("HTTP/1.1 20 OK\r\n\r\n"), .invalid = true},
    {"four-digit status", RAW("HTTP/1.1 2000 OK\r\n\r\n"), .invalid = true},
    {"status below 100", RAW("HTTP/1.1 099 Low\r\n\r\n"), .invalid = true},
    {"http/2.0", RAW("HTTP/2.0 200 OK\r\n\r\n"), .invalid = true},
    {"lowercase version", RAW("http/1.1 200 OK\r\n\r\n"), .invalid = true},
    {"double space", RAW("HTTP/1.1  200 OK\r\n\r\n"), .invalid = true},
    {"no space", RAW("HTTP/1.1200 OK\r\n\r\n"), .invalid = true},
    {"bare LF status line", RAW("HTTP/1.1 200 OK\n\r\n"), .invalid = true},
    {"NUL in reason", RAW("HTTP/1.1 200 O\0K\r\n\r\n"), .invalid = true},
    {"leading empty line", RAW("\r\nHTTP/1.1 200 OK\r\n\r\n"), .invalid = true},
    {"space before colon", RAW("HTTP/1.1 200 OK\r\nServer : x\r\n\r\n"), .invalid = true},
    {"obs-fold", RAW("HTTP/1.1 200 OK\r\nServer: x\r\n y\r\n\r\n"), .invalid = true},
    {"bare CR in header", RAW("HTTP/1.1 200 OK\r\nServer: x\ry\r\n\r\n"), .invalid = true},
    {"head too big", RAW("HTTP/1.1 200 OK\r\nServer: 0123456789\r\n\r\n"), .invalid = true,
     .max_head = 20},
    {"head too big, partial", RAW("HTTP/1.1 200 OK\r\nServer: 0123"), .invalid = true,
     .max_head = 20},
};

static void
test_response(void **state)
{
    (void)state;
    struct h1_header headers[HEADER_ROOM];
    struct h1_response resp;

    for (size_t i = 0; i < sizeof(resp_cases) / sizeof(resp_cases[0]); i++) {
        const struct resp_case *t = &resp_cases[i];
        struct h1_limits lim = limits_of(t->max_head, 0);
        size_t head_len = t->raw_len - t->tail;
        bool refused = false;

        /* Every prefix: partial, or (for a bad head) refused for good. */
        for (size_t k = 0; k <= t->raw_len; k++) {
            char *buf = dup_exact(t->raw, k);
            int rc = h1_parse_response(buf, k, &lim, t->method, headers, &resp);
            if (t->invalid || k < head_len)
                free(buf);
            if (t->invalid) {
                if (rc == H1_PARTIAL && !refused && k < t->raw_len)
                    continue;
                if (rc != H1_INVALID || resp.error_status != 502)
                    fail_msg("%s: %zu bytes gave %d/%d, expected a 502", t->name, k, rc,
                             resp.error_status);
                refused = true;
                continue;
            }
            if (k < head_len) {
                if (rc != H1_PARTIAL)
                    fail_msg("%s: prefix of %zu bytes gave %d", t->name, k, rc);
                continue;
            }
            if (rc != (int)head_len)
                fail_msg("%s: gave %d (status %d), expected %zu", t->name, rc, resp.error_status,
                         head_len);
            assert_int_equal(resp.status, t->status);
            assert_int_equal(resp.minor_version, t->minor);
            assert_span_is(resp.reason, t->reason, "reason", t->name);
            if (resp.body != t->body)
                fail_msg("%s: body %d, expected %d", t->name, resp.body, t->body);
            if (t->body == H1_BODY_LENGTH || t->content_length)
                assert_true(resp.content_length == t->content_length);
            assert_int_equal(resp.num_headers, t->num_headers);
            assert_ptr_equal(resp.headers, headers);
            assert_int_equal(resp.flags, t->flags);
            assert_int_equal(resp.error_status, 0);
            free(buf);
        }
    }
}

/* ---- chunked bodies ------------------------------------------------------------------ */

struct chunk_case {
    const char *name;
    const char *raw;
    size_t raw_len;
    bool invalid;
    const char *data;   /* the decoded body, when valid */
    size_t consumed;    /* 0: all of raw */
    size_t max_trailer; /* 0: 1024 */
};

static const struct chunk_case chunk_cases[] = {
    {"one chunk", RAW("5\r\nhello\r\n0\r\n\r\n"), .data = "hello"},
    {"empty body", RAW("0\r\n\r\n"), .data = ""},
    {"several chunks, mixed-case hex",
     RAW("A\r\n0123456789\r\n3\r\nabc\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n"),
     .data = "0123456789abcabcdefghijklmnopqrstuvwxyz"},
    {"leading zeros", RAW("0005\r\nhello\r\n000\r\n\r\n"), .data = "hello"},
    {"fifteen digits", RAW("000000000000005\r\nhello\r\n0\r\n\r\n"), .data = "hello"},
    {"extensions", RAW("5;name=value;q=\"x y\"\r\nhello\r\n0;last\r\n\r\n"), .data = "hello"},
    {"whitespace before an extension", RAW("5 \t;x\r\nhello\r\n0\r\n\r\n"), .data = "hello"},
    {"trailers", RAW("3\r\nabc\r\n0\r\nX-Sum: 1 2\r\nY:\r\n\r\n"), .data = "abc"},
    {"data holding CRLFs", RAW("4\r\n\r\n\r\n\r\n0\r\n\r\n"), .data = "\r\n\r\n"},
    {"data holding NULs", RAW("3\r\na\0b\r\n0\r\n\r\n"), .data = NULL},
    {"next message not consumed", RAW("2\r\nok\r\n0\r\n\r\nGET / HTTP/1.1\r\n"), .data = "ok",
     .consumed = 12},
    {"trailer at the limit", RAW("0\r\nX: 12345\r\n\r\n"), .data = "", .max_trailer = 10},
    {"bad hex", RAW("g\r\nxx\r\n0\r\n\r\n"), .invalid = true},
    {"empty size", RAW("\r\nhello\r\n0\r\n\r\n"), .invalid = true},
    {"negative size", RAW("-1\r\nx\r\n0\r\n\r\n"), .invalid = true},
    {"0x prefix", RAW("0x5\r\nhello\r\n0\r\n\r\n"), .invalid = true},
    {"missing CRLF after data", RAW("5\r\nhelloX\r\n0\r\n\r\n"), .invalid = true},
    {"only CR after data", RAW("5\r\nhello\r0\r\n\r\n"), .invalid = true},
    {"bare LF after data", RAW("5\r\nhello\n0\r\n\r\n"), .invalid = true},
    {"bare LF after size", RAW("5\nhello\r\n0\r\n\r\n"), .invalid = true},
    {"bare CR after size", RAW("5\rhello\r\n0\r\n\r\n"), .invalid = true},
    {"bare LF at the end", RAW("0\r\n\n"), .invalid = true},
    {"sixteen digits", RAW("0000000000000005\r\nhello\r\n0\r\n\r\n"), .invalid = true},
    {"size overflow", RAW("10000000000000000\r\nx\r\n0\r\n\r\n"), .invalid = true},
    {"space after size without extension", RAW("5 \r\nhello\r\n0\r\n\r\n"), .invalid = true},
    {"space inside the size", RAW("1 0\r\n0123456789abcdef\r\n0\r\n\r\n"), .invalid = true},
    {"control byte in an extension", RAW("5;a\x01\r\nhello\r\n0\r\n\r\n"), .invalid = true},
    {"NUL in an extension", RAW("5;a\0\r\nhello\r\n0\r\n\r\n"), .invalid = true},
    {"DEL in an extension", RAW("5;a\x7f\r\nhello\r\n0\r\n\r\n"), .invalid = true},
    {"oversized trailer", RAW("0\r\nX-Long: 1234567890\r\n\r\n"), .invalid = true,
     .max_trailer = 10},
    {"trailer one byte over", RAW("0\r\nX: 123456\r\n\r\n"), .invalid = true, .max_trailer = 10},
    {"trailer obs-fold", RAW("0\r\nX: a\r\n b\r\n\r\n"), .invalid = true},
    {"trailer without colon", RAW("0\r\nX-Junk\r\n\r\n"), .invalid = true},
    {"trailer with space before colon", RAW("0\r\nX : a\r\n\r\n"), .invalid = true},
    {"control byte in a trailer", RAW("0\r\nX: a\x02\r\n\r\n"), .invalid = true},
    {"bare CR in a trailer", RAW("0\r\nX: a\rb\r\n\r\n"), .invalid = true},
    {"bare CR at the end", RAW("0\r\n\r\r\n"), .invalid = true},
    {"bare LF in a trailer", RAW("0\r\nX: a\n\r\n"), .invalid = true},
};

/* Feed raw[0..len) in slices of `step` bytes (each copied to an exact-size buffer),
 * collecting the data. Returns bytes consumed, or -1 on H1_INVALID. */
static ssize_t
chunked_run(const char *raw, size_t len, size_t step, size_t max_trailer, char *out,
            size_t *out_len, bool *done)
{
    struct h1_chunked c;
    size_t pos = 0;

    h1_chunked_init(&c, max_trailer);
    *out_len = 0;
    while (pos < len && !c.done) {
        size_t n = len - pos < step ? len - pos : step;
        char *buf = dup_exact(raw + pos, n);
        struct span data;
        ssize_t r = h1_chunked_feed(&c, buf, n, &data);
        if (r < 0) {
            free(buf);
            return -1;
        }
        assert_true((size_t)r <= n);
        assert_true(r > 0 || c.done);
        if (data.len) {
            assert_true(data.ptr >= buf && data.ptr + data.len <= buf + r);
            memcpy(out + *out_len, data.ptr, data.len);
            *out_len += data.len;
        }
        free(buf);
        pos += (size_t)r;
    }
    *done = c.done;
    if (c.done) { /* nothing more is taken once the message is over */
        struct span data;
        assert_int_equal(h1_chunked_feed(&c, "0\r\n\r\n", 5, &data), 0);
        assert_int_equal(data.len, 0);
    }
    return (ssize_t)pos;
}

static void
test_chunked(void **state)
{
    (void)state;
    static const size_t steps[] = {SIZE_MAX, 1, 2, 3, 7};
    char out[256];

    for (size_t i = 0; i < sizeof(chunk_cases) / sizeof(chunk_cases[0]); i++) {
        const struct chunk_case *t = &chunk_cases[i];
        size_t max_trailer = t->max_trailer ? t->max_trailer : 1024;
        size_t consumed = t->consumed ? t->consumed : t->raw_len;
        for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
            size_t out_len = 0;
            bool done = false;
            ssize_t r =
                chunked_run(t->raw, t->raw_len, steps[s], max_trailer, out, &out_len, &done);
            if (t->invalid) {
                if (r != -1)
                    fail_msg("%s (step %zu): accepted %zd bytes", t->name, steps[s], r);
                continue;
            }
            if (r != (ssize_t)consumed || !done)
                fail_msg("%s (step %zu): consumed %zd (done %d), expected %zu", t->name, steps[s],
                         r, done, consumed);
            if (t->data)
                assert_span_is((struct span){out, out_len}, t->data, "data", t->name);
            else
                assert_memory_equal(out, "a\0b", 3);
        }
    }
}

/* The decoder stops after one data run, and reports it inside what it consumed. */
static void
test_chunked_one_run_per_call(void **state)
{
    (void)state;
    static const char body[] = "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    struct h1_chunked c;
    struct span data;

    h1_chunked_init(&c, 0);
    assert_int_equal(h1_chunked_feed(&c, body, sizeof(body) - 1, &data), 6);
    assert_ptr_equal(data.ptr, body + 3);
    assert_int_equal(data.len, 3);
    assert_int_equal(h1_chunked_feed(&c, body + 6, sizeof(body) - 7, &data), 7);
    assert_ptr_equal(data.ptr, body + 11);
    assert_int_equal(data.len, 2);
    assert_false(c.done);
    /* It stops after the last-chunk line: the trailer section comes apart. */
    assert_false(c.in_trailers);
    assert_int_equal(h1_chunked_feed(&c, body + 13, sizeof(body) - 14, &data), 5);
    assert_int_equal(data.len, 0);
    assert_true(c.in_trailers);
    assert_false(c.done);
    assert_int_equal(h1_chunked_feed(&c, body + 18, sizeof(body) - 19, &data), 2);
    assert_int_equal(data.len, 0);
    assert_true(c.done);
    assert_int_equal(h1_chunked_feed(&c, "", 0, &data), 0);

    /* A big chunk delivered in pieces: remaining counts down. */
    h1_chunked_init(&c, 0);
    assert_int_equal(h1_chunked_feed(&c, "fffffffffffffff\r\nab", 19, &data), 19);
    assert_int_equal(data.len, 2);
    assert_true(c.remaining == 0xfffffffffffffffull - 2);

    /* Once refused, always refused. */
    h1_chunked_init(&c, 0);
    assert_int_equal(h1_chunked_feed(&c, "z", 1, &data), H1_INVALID);
    assert_int_equal(h1_chunked_feed(&c, "0\r\n\r\n", 5, &data), H1_INVALID);
}

/* A size line may not grow without end, extensions or not. */
static void
test_chunked_line_bound(void **state)
{
    (void)state;
    static char line[8192];
    struct h1_chunked c;
    struct span data;

    memset(line, 'a', sizeof(line));
    memcpy(line, "5;", 2);
    h1_chunked_init(&c, 0);
    assert_int_equal(h1_chunked_feed(&c, line, 4096, &data), 4096);
    assert_int_equal(h1_chunked_feed(&c, line + 4096, 1, &data), H1_INVALID);

    /* Right at the bound, a line still works. */
    memcpy(line + 4094, "\r\nhello\r\n0\r\n\r\n", 15);
    h1_chunked_init(&c, 0);
    assert_int_equal(h1_chunked_feed(&c, line, 4096 + 5, &data), 4096 + 5);
    assert_int_equal(data.len, 5);
    assert_int_equal(h1_chunked_feed(&c, line + 4101, 7, &data), 5); /* to the trailers */
    assert_int_equal(h1_chunked_feed(&c, line + 4106, 2, &data), 2);
    assert_true(c.done);
}

/* ---- small helpers ------------------------------------------------------------------- */

static void
test_token_chars(void **state)
{
    (void)state;
    static const char tchar[] = "!#$%&'*+-.^_`|~0123456789"
                                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for (int c = 0; c < 256; c++) {
        bool expect = c != 0 && strchr(tchar, c) != NULL;
        if (h1_is_token_char((unsigned char)c) != expect)
            fail_msg("byte 0x%02x: token %d", c, !expect);
    }
}

static void
test_status_reason(void **state)
{
    (void)state;
    static const int known[] = {100, 101, 103, 200, 201, 202, 203, 204, 205, 206, 301, 302, 303,
                                304, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409,
                                410, 411, 412, 413, 414, 415, 416, 417, 418, 421, 422, 425, 426,
                                428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 511};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (h1_status_reason(known[i])[0] == '\0')
            fail_msg("no reason for %d", known[i]);
    assert_string_equal(h1_status_reason(404), "Not Found");
    assert_string_equal(h1_status_reason(431), "Request Header Fields Too Large");
    assert_string_equal(h1_status_reason(599), "");
    assert_string_equal(h1_status_reason(-1), "");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_valid),
        cmocka_unit_test(test_request_valid_prefixes),
        cmocka_unit_test(test_request_invalid),
        cmocka_unit_test(test_request_invalid_prefixes),
        cmocka_unit_test(test_request_limit_on_partial),
        cmocka_unit_test(test_request_header_array_bound),
        cmocka_unit_test(test_response),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_chunked_one_run_per_call),
        cmocka_unit_test(test_chunked_line_bound),
        cmocka_unit_test(test_token_chars),
        cmocka_unit_test(test_status_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
