# SPDX-License-Identifier: MIT
"""Hostile backends, black-box, with the test origin's /hostile/CASE answers (tests/tools/origin.c):
a response no proxy may pass on as it is (Content-Length with Transfer-Encoding, two different
Content-Lengths, bare LF line ends, a status line over the limit, 1,000 headers, a header line
that never ends) gives the client a 502; a body cut short gives a cut response (its head went
out first); a 204, 304 or HEAD response followed by bytes such a response cannot have is passed
on without them. Every time, the backend connection is dropped and never reused (the next
request reaches the origin on a connection it numbers anew, X-Conn-Id), the breakages count
against the backend's health (passive failures in /status), and Meridian keeps serving. An
endless body to a client that reads slowly keeps Meridian's memory bounded.

One worker, so that every request goes through the same upstream pool, and passive checks with
a `fall` no test reaches, so that the backend stays up while its failures are counted."""
import socket
import time

import pytest

from conftest import CHECK_MEMORY, SLOW, wait_for
from util_http import ConnectionClosed, RawConn, build, request

HC = ("health_check: { path: /, interval: 1h, timeout: 1s, rise: 1, fall: 100, "
      "passive: true }\n")


@pytest.fixture
def proxy(origins, meridian):
    o = origins("eu-a")
    m = meridian(regions=[("eu", [o.address])], workers=1, extra=HC)
    # The first check (at start) passes: the backend is up and stays up (fall 100).
    wait_for(lambda: backend(m)["health"] == "up", what="the backend up")
    m.origin = o
    return m


def backend(m):
    return m.status()["regions"][0]["backends"][0]


def conn_id(r):
    return int(r.header("x-conn-id"))


def clean_get(m):
    """A plain GET /: 200 from the origin; returns the upstream connection's number."""
    r = request(m.port, "GET", "/")
    assert r.status == 200 and r.body == b"eu-a\n", r
    return conn_id(r)


# What the error log says: the parser refuses a head it sees is wrong, or one that outgrows
# the buffer before it is complete (a line that never ends; a status line the parser gives up
# on before the buffer is full counts as invalid).
INVALID, TOO_LARGE = "invalid response head", "response head exceeds"
BROKEN = {
    "cl-te": (INVALID,),
    "two-cl": (INVALID,),
    "bare-lf": (INVALID,),
    "long-status": (INVALID, TOO_LARGE),
    "many-headers": (INVALID,),
    "endless-header": (INVALID, TOO_LARGE),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_head_is_502_and_the_connection_is_dropped(proxy, case):
    m = proxy
    before_id = clean_get(m)
    failures = backend(m)["passive_failures"]
    r = request(m.port, "GET", f"/hostile/{case}")
    assert r.status == 502, r
    assert b"hello" not in r.body and b"X-H-" not in r.body
    assert any(why in m.stderr() for why in BROKEN[case]), m.stderr()[-500:]
    wait_for(lambda: backend(m)["passive_failures"] == failures + 1,
             what="the breakage counted against the backend")
    after_id = clean_get(m)
    assert after_id != before_id, "the connection that carried the broken answer was reused"
    assert backend(m)["health"] == "up"


def test_a_truncated_body_cuts_the_client_and_drops_the_connection(proxy):
    m = proxy
    before_id = clean_get(m)
    failures = backend(m)["passive_failures"]
    with RawConn(m.port, timeout=3 * SLOW) as c:
        c.send(build("GET", "/hostile/truncated", host="h.test"))
        # The head (Content-Length 100) went out before the cut: the client must see the cut,
        # never a complete response.
        with pytest.raises((ConnectionClosed, ConnectionResetError)):
            r = c.read_response()
            raise AssertionError(f"a complete response from a truncated body: {r!r}")
    wait_for(lambda: backend(m)["passive_failures"] == failures + 1,
             what="the cut counted against the backend")
    assert "closed in the middle of the response body" in m.stderr()
    assert clean_get(m) != before_id


@pytest.mark.parametrize("case,method,status", [("204-body", "GET", 204),
                                                ("304-body", "GET", 304),
                                                ("head-body", "HEAD", 200)])
def test_bytes_after_a_bodyless_response_are_not_passed_on(proxy, case, method, status):
    """The response ends with its head (RFC 9112 6.3: 1xx, 204, 304 and HEAD responses have
    no body): the client gets it without the stray bytes, on a connection that goes on
    (keep-alive), and the stray bytes never reach another request: the backend connection
    that carried them is not reused."""
    m = proxy
    before_id = clean_get(m)
    with RawConn(m.port, timeout=3 * SLOW) as c:
        c.send(build(method, f"/hostile/{case}", host="h.test"))
        r = c.read_response(method=method)
        assert r.status == status, r
        assert r.body == b"", r
        # The same client connection goes on, with a clean answer from a new upstream
        # connection (had the old one been reused, its stray "hello" would be read as the
        # next response's head: a 502).
        c.send(build("GET", "/", host="h.test"))
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == b"eu-a\n", r2
        assert conn_id(r2) != before_id


def _rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_an_endless_body_to_a_slow_reader_keeps_memory_bounded(proxy):
    """A backend that never ends its body (/chunked with 10^12 bytes) and a client that reads
    1 KiB every 10 ms: Meridian reads the backend only as fast as the client drains (its
    buffers, not the backend, set the pace), so its memory does not grow with the body."""
    m = proxy
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.connect(("127.0.0.1", m.port))
    try:
        s.sendall(build("GET", "/chunked/1000000000000", host="h.test"))
        got = 0
        s.settimeout(5 * SLOW)
        first = s.recv(1024)
        assert first.startswith(b"HTTP/1.1 200"), first[:100]
        rss0 = _rss_kib(m.proc.pid)
        t_end = time.monotonic() + 3
        while time.monotonic() < t_end:
            data = s.recv(1024)
            assert data, "the response ended"
            got += len(data)
            time.sleep(0.01)
        rss1 = _rss_kib(m.proc.pid)
    finally:
        s.close()
    assert got > 100 * 1024, f"the slow reader got only {got} bytes"
    if CHECK_MEMORY:
        # Buffers are a few 16 KiB blocks per connection: allow 8 MiB for everything else.
        assert rss1 - rss0 < 8192, f"RSS grew from {rss0} to {rss1} KiB while the client read {got} bytes"
    # The origin offered far more than the client read: the pace was the client's.
    assert clean_get(m) > 0
