# SPDX-License-Identifier: MIT
"""Failure handling: dead and silent backends, timeouts, cut responses, clients that go
away or dawdle, bodies over the limit."""
import select
import socket
import time

import pytest

from conftest import Origin, SLOW, wait_for
from util_http import (WS_101, WS_UPGRADE, ConnectionClosed, RawConn, ScriptedBackend, build,
                       established_to, fill_socket, process_cpu_seconds, read_request_head,
                       request)


def reserved_port():
    """A socket bound to a loopback port but not listening: connects to it are refused,
    and nobody else can take the port while we hold it."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


def timeouts(**kw):
    kw.setdefault("shutdown", "2s")
    return "timeouts: { " + ", ".join(f"{k}: {v}" for k, v in kw.items()) + " }\n"


# --- dead backends ------------------------------------------------------------------------

def test_refused_backend_is_retried_then_skipped(origins, meridian):
    dead, dead_port = reserved_port()
    try:
        o = origins("eu-a")
        m = meridian(regions=[("eu", [f"127.0.0.1:{dead_port}", o.address])], workers=1,
                     extra=timeouts(upstream_response="5s"))
        # Round-robin sends some of these to the dead backend first; each must be retried
        # on the live one.
        for i in range(4):
            r = request(m.port, "GET", f"/first/{i}")
            assert (r.status, r.header("x-origin")) == (200, "eu-a"), r
        # Now the dead port would accept: a backend marked down is not tried at all.
        dead.listen(16)
        for i in range(4):
            r = request(m.port, "GET", f"/second/{i}")
            assert (r.status, r.header("x-origin")) == (200, "eu-a"), r
        readable, _, _ = select.select([dead], [], [], 0)
        assert not readable, "meridian connected to a backend that refused moments ago"
        recs = o.records()
        assert len(recs) == 8, recs
        assert sorted(r["target"] for r in recs) == sorted(
            [f"/first/{i}" for i in range(4)] + [f"/second/{i}" for i in range(4)])
    finally:
        dead.close()


def test_all_backends_dead_is_502_and_recovers(tmp_path, meridian):
    d1, p1 = reserved_port()
    d2, p2 = reserved_port()
    late = None
    try:
        m = meridian(regions=[("eu", [f"127.0.0.1:{p1}", f"127.0.0.1:{p2}"])], workers=1,
                     extra=timeouts(upstream_response="5s"))
        for _ in range(3):
            t0 = time.monotonic()
            r = request(m.port, "GET", "/")
            assert r.status == 502, r
            assert time.monotonic() - t0 < 2 * SLOW
        # A backend comes up on one of the ports: service resumes.
        d1.close()
        late = Origin(tmp_path, "late", port=p1).start()
        wait_for(lambda: request(m.port, "GET", "/").status == 200, timeout=8,
                 what="requests to succeed once a backend is up")
        r = request(m.port, "GET", "/again")
        assert r.status == 200 and r.body == b"late\n"
    finally:
        d1.close()
        d2.close()
        if late:
            late.stop()


# --- timeouts ----------------------------------------------------------------------------------

def test_silent_backend_is_504_after_upstream_response_timeout(origins, meridian):
    o = origins("eu-a")
    m = meridian(regions=[("eu", [o.address])], workers=1,
                 extra=timeouts(upstream_response="1s"))
    t0 = time.monotonic()
    r = request(m.port, "GET", "/delay/5000", timeout=6)
    took = time.monotonic() - t0
    assert r.status == 504, r
    assert 0.9 <= took <= 2.5 * SLOW, f"504 after {took:.2f}s"
    # Still serving.
    assert request(m.port, "GET", "/").status == 200


def test_connect_timeout_is_504(meridian):
    # A listener with a backlog of 0 whose accept queue holds one unaccepted connection:
    # the kernel drops further SYNs, so connects hang until they time out.
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []
    try:
        f = socket.create_connection(("127.0.0.1", port), timeout=1)
        fillers.append(f)
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        fillers.append(probe)
        probe.settimeout(0.3)
        try:
            probe.connect(("127.0.0.1", port))
            pytest.skip("this kernel completes handshakes beyond a full accept queue; "
                        "cannot make a loopback connect hang")
        except socket.timeout:
            pass
        m = meridian(regions=[("eu", [f"127.0.0.1:{port}"])], workers=1,
                     extra=timeouts(upstream_connect="300ms", upstream_response="5s"))
        t0 = time.monotonic()
        r = request(m.port, "GET", "/")
        took = time.monotonic() - t0
        assert r.status == 504, r
        assert 0.25 <= took <= 1.5 * SLOW, f"504 after {took:.2f}s"
    finally:
        for s in fillers:
            s.close()
        lsock.close()


# --- backends that cut the connection -----------------------------------------------------------

def test_backend_closing_without_answer_is_502(origins, meridian):
    o = origins("eu-a")
    m = meridian(regions=[("eu", [o.address])], workers=1,
                 extra=timeouts(upstream_response="5s"))
    r = request(m.port, "GET", "/close")
    assert r.status == 502, r
    assert any(rec["target"] == "/close" for rec in o.records())
    assert request(m.port, "GET", "/").status == 200


def test_backend_closing_mid_head_is_502(meridian):
    def handler(s):
        read_request_head(s)
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-Half")
        s.close()

    be = ScriptedBackend(handler)
    try:
        m = meridian(regions=[("eu", [be.address])], workers=1,
                     extra=timeouts(upstream_response="5s"))
        r = request(m.port, "GET", "/")
        assert r.status == 502, r
    finally:
        be.stop()


def test_backend_closing_mid_body_cuts_the_client(meridian):
    def handler(s):
        read_request_head(s)
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
        s.close()

    be = ScriptedBackend(handler)
    try:
        m = meridian(regions=[("eu", [be.address])], workers=1,
                     extra=timeouts(upstream_response="5s"))
        with RawConn(m.port, timeout=3) as c:
            c.send(build("GET", "/", host="h.test"))
            # The head went out already: the client must see a cut, not a complete body.
            with pytest.raises((ConnectionClosed, ConnectionResetError)):
                r = c.read_response()
                raise AssertionError(f"complete response from a cut backend: {r!r}")
    finally:
        be.stop()


# --- clients that go away or dawdle ---------------------------------------------------------

def test_client_disconnect_cancels_upstream(origins, meridian):
    o = origins("eu-a")
    m = meridian(regions=[("eu", [o.address])], workers=1,
                 extra=timeouts(upstream_response="10s"))
    assert established_to(o.port) == set()
    c = RawConn(m.port)
    c.send(build("GET", "/delay/3000", host="h.test"))
    wait_for(lambda: any(r["target"] == "/delay/3000" for r in o.records()), timeout=2,
             what="the request to reach the origin")
    upstream = established_to(o.port)
    assert len(upstream) == 1, upstream
    time.sleep(0.2)  # the client gives up after a while (not a readiness wait)
    c.close()
    # The origin answers only after 3 s; a proxy that kept the exchange would hold the
    # connection (and then pool it). Cancelled, it is gone well before.
    wait_for(lambda: not (established_to(o.port) & upstream), timeout=1.0,
             what="meridian to close the upstream connection of a gone client")
    r = request(m.port, "GET", "/")
    assert r.status == 200 and r.body == b"eu-a\n"


def test_slow_client_header_is_408(origins, meridian):
    o = origins("eu-a")
    m = meridian(regions=[("eu", [o.address])], workers=1,
                 extra=timeouts(client_header="1s", upstream_response="5s"))
    with RawConn(m.port, timeout=4) as c:
        t0 = time.monotonic()
        c.send(b"GET / HTTP/1.1\r\nHost: h.test\r\n")
        r = c.read_response()
        took = time.monotonic() - t0
        assert r.status == 408, r
        assert 0.8 <= took <= 2.5 * SLOW, f"408 after {took:.2f}s"
        assert c.wait_closed(1.0), "connection left open after 408"
    assert o.records() == []
    assert request(m.port, "GET", "/").status == 200


def test_idle_keepalive_connection_is_closed(origins, meridian):
    o = origins("eu-a")
    m = meridian(regions=[("eu", [o.address])], workers=1,
                 extra=timeouts(client_idle="1s", client_header="5s",
                                upstream_response="5s"))
    with RawConn(m.port, timeout=4) as c:
        c.send(build("GET", "/", host="h.test"))
        assert c.read_response().status == 200
        t0 = time.monotonic()
        assert c.wait_closed(3.0), "idle keep-alive connection not closed"
        took = time.monotonic() - t0
        assert 0.8 <= took <= 2.5 * SLOW, f"closed after {took:.2f}s"
        assert c.buf == b"", f"unexpected bytes on an idle connection: {bytes(c.buf)!r}"


def test_client_that_stops_reading_is_cut_and_frees_the_backend(origins, meridian):
    """Slow read (slowhttptest -X): a client that asks for a large body and reads nothing
    must not hold its connection, nor the backend connection behind it, past client_idle
    of no write progress."""
    o = origins("eu-a")
    m = meridian(regions=[("eu", [o.address])], workers=1,
                 extra=timeouts(client_idle="1s", upstream_response="10s"))
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", m.port))
    try:
        s.sendall(build("GET", "/bytes/200000000", host="h.test"))
        wait_for(lambda: len(established_to(o.port)) == 1, timeout=3,
                 what="the upstream connection")
        upstream = established_to(o.port)
        t0 = time.monotonic()
        # Nothing read: buffers fill both ways, then the write timer runs out.
        wait_for(lambda: not (established_to(o.port) & upstream), timeout=10,
                 what="meridian to drop the upstream connection of a client that stopped reading")
        took = time.monotonic() - t0
        assert took <= 6 * SLOW, f"upstream held {took:.1f}s"
        assert "stopped reading" in m.stderr()
    finally:
        s.close()
    assert request(m.port, "GET", "/").status == 200


def _assert_idle_cpu(m, what):
    """Meridian's CPU use over a one-second window must be near zero."""
    t0 = process_cpu_seconds(m.proc.pid)
    time.sleep(1.0)  # the measurement window
    used = process_cpu_seconds(m.proc.pid) - t0
    assert used < 0.2, f"meridian used {used:.2f} s of CPU in 1 s {what}"


@pytest.mark.parametrize("kind", ["response", "tunnel"])
def test_stalled_client_costs_no_cpu(meridian, kind):
    """A client that stops reading while the backend still pushes (a large response, or a
    websocket tunnel where neither side reads): reading from the backend stops until the
    client drains, and nothing spins meanwhile, past the upstream timers too."""
    def handler(s):
        read_request_head(s)
        s.sendall(WS_101 if kind == "tunnel" else
                  b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
        fill_socket(s, 2 * SLOW)  # push, never read
        s.settimeout(30)
        try:
            s.recv(1)  # until meridian closes
        except OSError:
            pass

    be = ScriptedBackend(handler)
    try:
        m = meridian(regions=[("eu", [be.address])], workers=1,
                     extra=timeouts(client_idle="30s", upstream_response="1s", tunnel="1h"))
        with RawConn(m.port, timeout=5) as c:
            if kind == "tunnel":
                c.send(build("GET", "/ws", host="h.test", headers=WS_UPGRADE))
                assert c.read_response().status == 101
                fill_socket(c.sock, 2 * SLOW)  # and the client pushes too, never reading
            else:
                c.send(build("GET", "/big", host="h.test"))
                time.sleep(2 * SLOW)  # past upstream_response (1 s) with the client full
            _assert_idle_cpu(m, f"with one stalled {kind}")
    finally:
        be.stop()


# --- body limits -------------------------------------------------------------------------------

LIMITS = "limits: { max_body_bytes: 1k }\n"


def test_content_length_over_limit_is_413_and_never_forwarded(origins, meridian):
    o = origins("eu-a")
    m = meridian(regions=[("eu", [o.address])], workers=1,
                 extra=timeouts(upstream_response="5s") + LIMITS)
    with RawConn(m.port, timeout=3) as c:
        # Head only: the verdict must not need the body.
        c.send(build("POST", "/echo", host="h.test", headers=[("Content-Length", "1025")]))
        r = c.read_response()
    assert r.status == 413, r
    # At the limit is fine; and it is the origin's first connection: the refused request
    # never opened one.
    r = request(m.port, "POST", "/echo", body=b"z" * 1024)
    assert r.status == 200 and r.body == b"z" * 1024
    assert r.header("x-conn-id") == "1", r.headers
    recs = o.records()
    assert len(recs) == 1 and recs[0]["body_len"] == 1024, recs


def test_chunked_body_over_limit_is_refused(origins, meridian):
    o = origins("eu-a")
    m = meridian(regions=[("eu", [o.address])], workers=1,
                 extra=timeouts(upstream_response="5s") + LIMITS)
    wire = b"".join(b"200\r\n" + b"c" * 512 + b"\r\n" for _ in range(8)) + b"0\r\n\r\n"
    with RawConn(m.port, timeout=3) as c:
        c.send(build("POST", "/echo", host="h.test",
                     headers=[("Transfer-Encoding", "chunked")]))
        try:
            c.send(wire)
            r = c.read_response()
            assert r.status == 413, r
        except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
            pass  # a cut is an acceptable refusal
    assert request(m.port, "GET", "/after").status == 200
    complete = [r for r in o.records() if not r.get("bad") and r.get("method") == "POST"]
    assert complete == [], complete


def test_client_timers_do_not_cut_a_slow_response(origins, meridian):
    """Regression: a head that arrived in two reads armed client_header; while the
    backend took longer than that, the stale timer closed the client connection."""
    o = origins("eu-a")
    m = meridian(regions=[("eu", [o.address])], workers=1,
                 extra=timeouts(client_header="1s", client_idle="1s",
                                upstream_response="5s"))
    with RawConn(m.port, timeout=6) as c:
        c.send(b"GET /delay/1800 HTTP/1.1\r\n")
        wait_for(lambda: m.status()["workers"][0]["connections"] == 1,
                 what="the partial head to be accepted")
        c.send(b"Host: h.test\r\n\r\n")
        r = c.read_response()
        assert r.status == 200, r
        assert r.body == b"eu-a\n"
