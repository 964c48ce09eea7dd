# SPDX-License-Identifier: MIT
"""Malformed requests: the right 4xx/5xx, the connection closed after it, and nothing of the
request ever reaching a backend.

Every case sends its raw bytes on one connection, checks the status and that Meridian closes
the connection, then sends one valid request on a new connection and waits until the origin
has recorded exactly that one request: so "the origin saw nothing" is checked after the
proxy demonstrably had the time and the path to forward something."""
import pytest

from conftest import status_of, wait_for
from util_lifecycle import exchange_and_close, http_get

# Limits small enough to test cheaply; the cases below are built against these numbers.
MAX_HEADER_BYTES = 4096
MAX_HEADERS = 20
EXTRA = f"limits: {{ max_header_bytes: {MAX_HEADER_BYTES}, max_headers: {MAX_HEADERS} }}\n"

H = b"Host: example.test\r\n"


def _many_headers(n, value_len):
    return b"".join(b"X-H%d: %s\r\n" % (i, b"v" * value_len) for i in range(n))


# (id, raw request, expected status). Targets are /rej/<id> where the target is not itself
# the thing under test, so that a leak would be recognisable in the origin's records.
CASES = [
    ("cl-and-te",
     b"POST /rej/cl-and-te HTTP/1.1\r\n" + H +
     b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400),
    ("two-differing-cl",
     b"POST /rej/two-differing-cl HTTP/1.1\r\n" + H +
     b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    ("cl-plus",
     b"POST /rej/cl-plus HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\nhello", 400),
    ("cl-hex",
     b"POST /rej/cl-hex HTTP/1.1\r\n" + H + b"Content-Length: 0x10\r\n\r\n" + b"a" * 16, 400),
    ("cl-negative",
     b"POST /rej/cl-negative HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", 400),
    ("cl-overflow",  # 2^64 + a bit: does not fit any integer type
     b"POST /rej/cl-overflow HTTP/1.1\r\n" + H +
     b"Content-Length: 18446744073709551617\r\n\r\nhello", 400),
    ("cl-overflow-long",
     b"POST /rej/cl-overflow-long HTTP/1.1\r\n" + H +
     b"Content-Length: 99999999999999999999999999999999999999\r\n\r\nhello", 400),
    ("te-gzip",
     b"POST /rej/te-gzip HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\nxxxx", 501),
    ("te-chunked-then-gzip",
     b"POST /rej/te-chunked-then-gzip HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400),
    ("te-chunked-twice",
     b"POST /rej/te-chunked-twice HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
    ("te-in-http10",
     b"POST /rej/te-in-http10 HTTP/1.0\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400),
    ("obs-fold",
     b"GET /rej/obs-fold HTTP/1.1\r\n" + H + b"X-A: one\r\n  two\r\n\r\n", 400),
    ("obs-fold-tab",
     b"GET /rej/obs-fold-tab HTTP/1.1\r\n" + H + b"X-A: one\r\n\ttwo\r\n\r\n", 400),
    ("bare-cr-in-value",
     b"GET /rej/bare-cr-in-value HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n", 400),
    ("bare-lf-everywhere",
     b"GET /rej/bare-lf-everywhere HTTP/1.1\nHost: example.test\n\n", 400),
    ("bare-lf-one-header",
     b"GET /rej/bare-lf-one-header HTTP/1.1\r\n" + H + b"X-A: a\nX-B: b\r\n\r\n", 400),
    ("nul-in-value",
     b"GET /rej/nul-in-value HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n", 400),
    ("del-in-value",
     b"GET /rej/del-in-value HTTP/1.1\r\n" + H + b"X-A: a\x7fb\r\n\r\n", 400),
    ("ctl-in-value",
     b"GET /rej/ctl-in-value HTTP/1.1\r\n" + H + b"X-A: a\x01b\r\n\r\n", 400),
    ("space-before-colon",
     b"GET /rej/space-before-colon HTTP/1.1\r\n" + H + b"X-A : b\r\n\r\n", 400),
    ("tab-in-name",
     b"GET /rej/tab-in-name HTTP/1.1\r\n" + H + b"X\tA: b\r\n\r\n", 400),
    ("empty-name",
     b"GET /rej/empty-name HTTP/1.1\r\n" + H + b": b\r\n\r\n", 400),
    ("bad-method-chars",
     b"GE(T /rej/bad-method-chars HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("double-space-request-line",
     b"GET  /rej/double-space-request-line HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("lowercase-version",
     b"GET /rej/lowercase-version http/1.1\r\n" + H + b"\r\n", 400),
    ("http-2.0",
     b"GET /rej/http-2.0 HTTP/2.0\r\n" + H + b"\r\n", 505),
    ("http-3.0",
     b"GET /rej/http-3.0 HTTP/3.0\r\n" + H + b"\r\n", 505),
    ("http11-missing-host",
     b"GET /rej/http11-missing-host HTTP/1.1\r\nX-A: b\r\n\r\n", 400),
    ("two-host",
     b"GET /rej/two-host HTTP/1.1\r\n" + H + b"Host: other.test\r\n\r\n", 400),
    ("request-line-too-long",
     b"GET /rej/request-line-too-long/" + b"a" * (MAX_HEADER_BYTES + 100) +
     b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    ("too-many-headers",  # small in bytes, over max_headers in number
     b"GET /rej/too-many-headers HTTP/1.1\r\n" + H + _many_headers(MAX_HEADERS + 5, 1) +
     b"\r\n", 431),
    ("header-block-too-large",  # few headers, but over max_header_bytes in total
     b"GET /rej/header-block-too-large HTTP/1.1\r\n" + H + _many_headers(8, 1000) + b"\r\n",
     431),
    ("connect",
     b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n", 501),
    ("asterisk-target-get",
     b"GET * HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("ctl-in-target",
     b"GET /rej/ctl\x01in-target HTTP/1.1\r\n" + H + b"\r\n", 400),
]

assert len(_many_headers(MAX_HEADERS + 5, 1)) < MAX_HEADER_BYTES // 2
assert len(_many_headers(8, 1000)) > MAX_HEADER_BYTES and 8 + 1 < MAX_HEADERS


def _check_only_valid_request_reached(m, o, tag):
    """Send one valid request on a new connection; the origin must record exactly it."""
    status, _, body = http_get(m.port, f"/valid/{tag}")
    assert status == 200 and body == b"eu-a\n", (status, body)
    wait_for(lambda: len(o.records()) >= 1, timeout=5, what="the valid request at the origin")
    recs = o.records()
    assert [r.get("target") for r in recs] == [f"/valid/{tag}"], recs
    assert not any(r.get("bad") for r in recs), recs


@pytest.mark.parametrize("raw,expected", [pytest.param(r, e, id=i) for i, r, e in CASES])
def test_malformed_request_is_rejected_and_never_forwarded(origins, meridian, raw, expected):
    o = origins("eu-a")
    m = meridian(regions=[("eu-central", [o.address])], extra=EXTRA)

    resp, closed = exchange_and_close(m.port, raw)
    assert status_of(resp) == expected, resp[:300]
    assert closed, "meridian kept the connection open after an error response"
    # Exactly one response: nothing after the error (e.g. no second, proxied answer).
    assert resp.count(b"HTTP/1.") == 1, resp[:600]

    _check_only_valid_request_reached(m, o, "after")


def test_bad_chunk_size_is_rejected_and_body_never_completes(origins, meridian):
    """The head of a chunked request is valid, so Meridian may already have forwarded it
    when it meets the bad chunk size: what must never happen is that the origin sees the
    request complete (a record with this target), nor a request that the origin itself
    finds malformed (which would mean Meridian relayed the broken framing)."""
    o = origins("eu-a")
    m = meridian(regions=[("eu-central", [o.address])], extra=EXTRA)

    raw = (b"POST /echo/bad-chunk HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
           b"zz\r\nhello\r\n0\r\n\r\n")
    resp, closed = exchange_and_close(m.port, raw)
    assert status_of(resp) == 400, resp[:300]
    assert closed, "meridian kept the connection open after an error response"

    status, _, body = http_get(m.port, "/valid/after-bad-chunk")
    assert status == 200 and body == b"eu-a\n", (status, body)
    wait_for(lambda: any(r.get("target") == "/valid/after-bad-chunk" for r in o.records()),
             timeout=5, what="the valid request at the origin")
    recs = o.records()
    assert not any(r.get("target") == "/echo/bad-chunk" for r in recs), recs
    assert not any(r.get("bad") for r in recs), recs
    assert len(recs) == 1, recs
