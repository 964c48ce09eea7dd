# SPDX-License-Identifier: MIT
"""Proxying proper: methods, exact bodies both ways, upstream keep-alive and balancing,
pipelining, 100-continue, header hygiene, request forms, HTTP/1.0, websockets, access log."""
import json
import re
import socket
import threading
import time

import pytest

from conftest import SLOW, wait_for
from util_http import (WS_101, WS_UPGRADE, RawConn, ScriptedBackend, build, pattern,
                       read_request_head, request)

# Short timeouts keep failures fast; the shutdown grace keeps teardown bounded.
TIMEOUTS = "timeouts: { upstream_response: 5s, shutdown: 2s }\n"


def hdrs_of(rec):
    """A record's headers as {lowercase name: [values]}."""
    out = {}
    for k, v in rec["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


def one(o, **match):
    """The single origin record whose fields equal `match`."""
    recs = [r for r in o.records() if all(r.get(k) == v for k, v in match.items())]
    assert len(recs) == 1, f"expected one record matching {match}, got {o.records()!r}"
    return recs[0]


@pytest.fixture
def single(origins, meridian):
    """One origin behind a one-worker Meridian."""
    o = origins("eu-a")
    m = meridian(regions=[("eu", [o.address])], workers=1, extra=TIMEOUTS)
    return o, m


# --- methods and bodies -------------------------------------------------------------------

def test_get_head_post_put_are_proxied(single):
    o, m = single
    with RawConn(m.port) as c:
        c.send(build("GET", "/", host="h.test"))
        r = c.read_response()
        assert r.status == 200 and r.body == b"eu-a\n"
        assert r.header("x-origin") == "eu-a"

        c.send(build("HEAD", "/", host="h.test"))
        r = c.read_response("HEAD")
        assert r.status == 200
        assert r.header("content-length") == "5"
        # HEAD has no body: the next response must start right here.
        c.send(build("POST", "/echo", host="h.test", body=b"post-body"))
        r = c.read_response()
        assert r.status == 200 and r.body == b"post-body"

        c.send(build("PUT", "/echo/put", host="h.test", body=b"put-body-123"))
        r = c.read_response()
        assert r.status == 200 and r.body == b"put-body-123"

    recs = o.records()
    assert [(r["method"], r["target"], r["body_len"]) for r in recs] == [
        ("GET", "/", 0), ("HEAD", "/", 0), ("POST", "/echo", 9), ("PUT", "/echo/put", 12)]
    assert not any(r.get("bad") for r in recs)


@pytest.mark.parametrize("n", [0, 1, 65537, 20 * 1024 * 1024 + 7])
def test_response_body_is_byte_exact(single, n):
    o, m = single
    with RawConn(m.port, timeout=20) as c:
        c.send(build("GET", f"/bytes/{n}", host="h.test"))
        r = c.read_response()
    assert r.status == 200
    assert r.header("content-length") == str(n)
    assert len(r.body) == n
    assert r.body == pattern(n)


def test_chunked_response_arrives_complete_and_chunked(single):
    o, m = single
    n = 123457
    with RawConn(m.port) as c:
        c.send(build("GET", f"/chunked/{n}", host="h.test"))
        r = c.read_response()
        assert r.status == 200
        assert r.chunked, f"expected chunked framing towards an HTTP/1.1 client: {r!r}"
        assert r.header("content-length") is None
        assert r.body == pattern(n)
        # The connection is still usable after the last chunk.
        c.send(build("GET", "/", host="h.test"))
        assert c.read_response().body == b"eu-a\n"


def test_noclen_response_is_complete(single):
    o, m = single
    n = 300001
    with RawConn(m.port) as c:
        c.send(build("GET", f"/noclen/{n}", host="h.test"))
        r = c.read_response()
    assert r.status == 200
    assert r.body == pattern(n)


def _send_in_thread(c, data):
    err = []

    def run():
        try:
            c.send(data)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, err


def test_large_post_is_echoed_identically(single):
    o, m = single
    body = bytes((i * 7 + (i >> 8)) & 0xFF for i in range(256 * 1024)) * 32  # 8 MiB
    with RawConn(m.port, timeout=20) as c:
        t, err = _send_in_thread(c, build("POST", "/echo", host="h.test", body=body))
        r = c.read_response()
        t.join(timeout=20)
    assert not err
    assert r.status == 200
    assert len(r.body) == len(body)
    assert r.body == body
    assert one(o, method="POST")["body_len"] == len(body)


def test_chunked_request_body_with_trailers_reaches_origin(single):
    o, m = single
    chunks = [b"hello ", b"chunked " * 100, b"x" * 5000, b"end"]
    body = b"".join(chunks)
    wire = b"".join(b"%x\r\n%s\r\n" % (len(ch), ch) for ch in chunks)
    wire += b"0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"
    with RawConn(m.port) as c:
        c.send(build("POST", "/echo", host="h.test",
                     headers=[("Transfer-Encoding", "chunked")]) + wire)
        r = c.read_response()
        assert r.status == 200
        assert r.body == body
        # Framing ended where the client said: the connection carries on.
        c.send(build("GET", "/", host="h.test"))
        assert c.read_response().status == 200
    rec = one(o, method="POST")
    assert not rec.get("bad")
    assert rec["body_len"] == len(body)


def test_chunked_request_trailers_cannot_spoof_what_the_proxy_sets(single):
    # Request trailers go on, but not those a backend could take for the proxy's own
    # fields (X-Forwarded-*, X-Request-Id, X-Client-*) or that frame the message; the
    # trailer section arrives in two pieces, the second with the next request.
    o, m = single
    wire = (b"5\r\nabcde\r\n0\r\nX-Checksum: abc\r\nX-Forwarded-For: 6.6.6.6\r\n"
            b"X-Client-Country: ZZ\r\nx-client-region: sa\r\n")
    rest = (b"X-Request-Id: evil\r\nContent-Length: 99\r\nX-Other: 1\r\n\r\n")
    with RawConn(m.port) as c:
        c.send(build("POST", "/echo", host="h.test",
                     headers=[("Transfer-Encoding", "chunked")]) + wire)
        c.send(rest + build("GET", "/after", host="h.test"))
        r = c.read_response()
        assert r.status == 200
        assert r.body == b"abcde"
        assert c.read_response().status == 200
    rec = one(o, method="POST")
    assert not rec.get("bad")
    assert rec["trailers"] == [["X-Checksum", "abc"], ["X-Other", "1"]], rec
    assert one(o, target="/after")


def test_chunked_request_body_without_trailers(single):
    o, m = single
    wire = b"5\r\nabcde\r\n3\r\nfgh\r\n0\r\n\r\n"
    with RawConn(m.port) as c:
        c.send(build("PUT", "/echo", host="h.test",
                     headers=[("Transfer-Encoding", "chunked")]) + wire)
        r = c.read_response()
    assert r.status == 200 and r.body == b"abcdefgh"
    assert one(o, method="PUT")["body_len"] == 8


# --- upstream connections and balancing ----------------------------------------------------

def test_upstream_connection_reused_within_one_client_connection(single):
    o, m = single
    ids = []
    with RawConn(m.port) as c:
        for _ in range(4):
            c.send(build("GET", "/", host="h.test"))
            r = c.read_response()
            assert r.status == 200
            ids.append(r.header("x-conn-id"))
    assert ids[0] is not None
    assert len(set(ids)) == 1, f"upstream connections not reused: {ids}"
    assert len({r["conn"] for r in o.records()}) == 1


def test_upstream_connection_reused_across_client_connections(single):
    o, m = single
    ids = []
    for _ in range(4):
        r = request(m.port, "GET", "/")
        assert r.status == 200
        ids.append(r.header("x-conn-id"))
    assert ids[0] is not None
    assert len(set(ids)) == 1, f"upstream connections not reused: {ids}"


def test_round_robin_alternates_between_backends(origins, meridian):
    a, b = origins("eu-a", "eu-b")
    m = meridian(regions=[("eu", [a.address, b.address])], workers=1, extra=TIMEOUTS)
    seen = []
    for _ in range(6):
        r = request(m.port, "GET", "/")
        assert r.status == 200
        seen.append(r.header("x-origin"))
    assert set(seen) == {"eu-a", "eu-b"}, seen
    assert all(seen[i] != seen[i + 1] for i in range(len(seen) - 1)), seen
    assert len(a.records()) == 3 and len(b.records()) == 3


# --- pipelining, 100-continue ---------------------------------------------------------------

def test_pipelined_requests_get_responses_in_order(single):
    o, m = single
    data = (build("GET", "/delay/200", host="h.test")
            + build("GET", "/bytes/1000", host="h.test")
            + build("POST", "/echo", host="h.test", body=b"third one"))
    with RawConn(m.port) as c:
        c.send(data)  # one write
        r1 = c.read_response()
        r2 = c.read_response()
        r3 = c.read_response()
    assert (r1.status, r1.body) == (200, b"eu-a\n")
    assert (r2.status, r2.body) == (200, pattern(1000))
    assert (r3.status, r3.body) == (200, b"third one")
    assert [r["target"] for r in o.records()] == ["/delay/200", "/bytes/1000", "/echo"]


def test_expect_100_continue(single):
    o, m = single
    body = b"body after the go-ahead"
    with RawConn(m.port, timeout=3) as c:
        c.send(build("POST", "/echo", host="h.test",
                     headers=[("Expect", "100-continue"),
                              ("Content-Length", str(len(body)))]))
        interim = c.read_response(skip_interim=False)
        assert interim.status == 100, f"expected 100 Continue before the body: {interim!r}"
        assert interim.version == "HTTP/1.1"
        c.send(body)
        r = c.read_response()
    assert r.status == 200
    assert r.body == body
    rec = one(o, method="POST")
    assert rec["body_len"] == len(body)
    assert "expect" not in hdrs_of(rec), rec["headers"]


# --- header hygiene ---------------------------------------------------------------------------

def test_hop_by_hop_request_headers_are_not_forwarded(single):
    o, m = single
    with RawConn(m.port) as c:
        c.send(build("GET", "/headers", host="h.test", headers=[
            ("Connection", "close, X-Secret"),
            ("X-Secret", "do-not-forward"),
            ("Keep-Alive", "timeout=5, max=100"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"),
            ("Upgrade", "h2c"),
            ("X-Kept", "yes"),
        ]))
        r = c.read_response()
    assert r.status == 200
    h = hdrs_of(one(o, target="/headers"))
    for name in ("x-secret", "keep-alive", "proxy-connection", "te", "upgrade"):
        assert name not in h, f"{name} reached the origin: {h}"
    # Meridian may speak its own Connection header to the backend, but never the client's.
    for v in h.get("connection", []):
        assert "x-secret" not in v.lower() and "close" not in v.lower(), h
    assert h["x-kept"] == ["yes"]
    assert h["host"] == ["h.test"]


def test_hop_by_hop_response_headers_are_not_forwarded(meridian):
    def handler(s):
        while True:
            head = read_request_head(s)
            if not head:
                return
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                      b"Connection: X-Resp-Secret\r\nX-Resp-Secret: 1\r\n"
                      b"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n"
                      b"X-Resp-Kept: 1\r\n\r\nok")

    be = ScriptedBackend(handler)
    try:
        m = meridian(regions=[("eu", [be.address])], workers=1, extra=TIMEOUTS)
        r = request(m.port, "GET", "/")
        assert r.status == 200 and r.body == b"ok"
        names = {k.lower() for k, _ in r.headers}
        for name in ("x-resp-secret", "keep-alive", "proxy-connection"):
            assert name not in names, f"{name} reached the client: {r.headers}"
        for v in r.header_all("connection"):
            assert "x-resp-secret" not in v.lower(), r.headers
        assert r.header("x-resp-kept") == "1"
    finally:
        be.stop()


def test_forwarding_headers(single):
    o, m = single
    r = request(m.port, "GET", "/a", host="front.example:8080",
                headers=[("X-Forwarded-For", "1.2.3.4")])
    assert r.status == 200
    h = hdrs_of(one(o, target="/a"))
    assert h["x-forwarded-for"] == ["1.2.3.4, 127.0.0.1"]
    assert h["x-forwarded-proto"] == ["http"]
    assert h["x-forwarded-host"] == ["front.example:8080"]


def test_request_id_kept_when_sane_and_generated_otherwise(single):
    o, m = single
    assert request(m.port, "GET", "/kept",
                   headers=[("X-Request-Id", "abc-123.XYZ:9")]).status == 200
    assert request(m.port, "GET", "/gen1").status == 200
    assert request(m.port, "GET", "/gen2").status == 200
    assert request(m.port, "GET", "/insane",
                   headers=[("X-Request-Id", "has space\"quote")]).status == 200

    assert hdrs_of(one(o, target="/kept"))["x-request-id"] == ["abc-123.XYZ:9"]
    gen = []
    for t in ("/gen1", "/gen2", "/insane"):
        ids = hdrs_of(one(o, target=t))["x-request-id"]
        assert len(ids) == 1, ids
        assert re.fullmatch(r"[0-9a-f]{32}", ids[0]), ids
        gen.append(ids[0])
    assert len(set(gen)) == 3, gen


def test_absolute_form_target(single):
    o, m = single
    r = request(m.port, "GET", "http://example.test/p?q", host="example.test")
    assert r.status == 200
    rec = one(o, target="/p?q")
    assert hdrs_of(rec)["host"] == ["example.test"]


def test_absolute_form_target_overrides_host_header(single):
    """RFC 9112 3.2.2: a proxy generates Host from an absolute-form target."""
    o, m = single
    r = request(m.port, "GET", "http://example.test:8080/p?q", host="other.test")
    assert r.status == 200
    rec = one(o, target="/p?q")
    assert hdrs_of(rec)["host"] == ["example.test:8080"]


# --- HTTP/1.0 -----------------------------------------------------------------------------------

def test_http10_without_keepalive_is_closed_after_response(single):
    o, m = single
    with RawConn(m.port) as c:
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"eu-a\n"
        assert not r.chunked, "no chunked framing towards an HTTP/1.0 client"
        assert c.wait_closed(2.0), "connection left open for an HTTP/1.0 client"


def test_http10_keepalive_keeps_connection_open(single):
    o, m = single
    with RawConn(m.port) as c:
        c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"eu-a\n"
        assert r.header("content-length") == "5"
        assert "keep-alive" in (r.header("connection") or "").lower(), r.headers
        c.send(b"GET /second HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == b"eu-a\n"
    assert [r["target"] for r in o.records()] == ["/", "/second"]


def test_http10_chunked_upstream_response_is_delimited_for_10_client(single):
    o, m = single
    n = 5000
    with RawConn(m.port) as c:
        c.send(b"GET /chunked/%d HTTP/1.0\r\n\r\n" % n)
        r = c.read_response()
    assert r.status == 200
    assert not r.chunked
    assert r.body == pattern(n)


# --- websockets ----------------------------------------------------------------------------------

def test_websocket_upgrade_and_tunnel(single):
    o, m = single
    with RawConn(m.port, timeout=2) as c:
        c.send(build("GET", "/ws", host="h.test", headers=[
            ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13")]))
        r = c.read_response()
        assert r.status == 101, r
        assert (r.header("upgrade") or "").lower() == "websocket"
        assert "upgrade" in (r.header("connection") or "").lower()
        assert r.header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        for msg in (b"hello\x00\xff\r\n\r\n", bytes(range(256)) * 1024):
            t, err = _send_in_thread(c, msg)
            got = c._read_exact(len(msg))
            t.join(timeout=5)
            assert not err
            assert got == msg
    h = hdrs_of(one(o, target="/ws"))
    assert h["upgrade"] == ["websocket"]


# client_idle shorter than tunnel: a tunnel must be governed by tunnel, not client_idle.
TUNNEL_TIMEOUTS = "timeouts: { client_idle: 1s, tunnel: 2s, upstream_response: 5s, shutdown: 2s }\n"


def _tunnel_closes_after_silence(meridian, backend_side, client_side):
    """Opens a websocket tunnel to a scripted backend; backend_side(sock) runs on the
    backend after the 101, client_side(RawConn) on the client. Then, with both silent, the
    tunnel must close after timeouts.tunnel (2 s), not before."""
    def handler(s):
        read_request_head(s)
        s.sendall(WS_101)
        backend_side(s)

    be = ScriptedBackend(handler)
    try:
        m = meridian(regions=[("eu", [be.address])], workers=1, extra=TUNNEL_TIMEOUTS)
        with RawConn(m.port, timeout=5) as c:
            c.send(build("GET", "/ws", host="h.test", headers=WS_UPGRADE))
            r = c.read_response()
            assert r.status == 101, r
            client_side(c)
            t0 = time.monotonic()
            c.sock.settimeout(10 * SLOW)
            try:
                got = c.sock.recv(4096)
            except ConnectionResetError:
                got = b""
            took = time.monotonic() - t0
            assert got == b"", f"unexpected tunnel bytes {got!r}"
            assert 1.8 <= took <= 2 + 2 * SLOW, f"closed {took:.2f}s after the last byte (tunnel 2s)"
    finally:
        be.stop()


def _drain(s, into=None):
    s.settimeout(30)
    try:
        while True:
            b = s.recv(4096)
            if not b:
                return
            if into is not None:
                into.append(b)
    except OSError:
        pass


def test_tunnel_kept_open_by_backend_pushing_to_a_silent_client(meridian):
    """A backend that pushes to a client that never sends (a live feed) keeps the tunnel open
    past client_idle and past tunnel; once silent both ways it is closed after tunnel."""
    pushes = bytes(range(0x41, 0x49))

    def backend_side(s):
        for b in pushes:
            time.sleep(0.5)
            s.sendall(bytes([b]))
        _drain(s)

    def client_side(c):
        assert c._read_exact(len(pushes)) == pushes  # 4 s of pushes, the client silent

    _tunnel_closes_after_silence(meridian, backend_side, client_side)


def test_tunnel_kept_open_by_client_sending_to_a_silent_backend(meridian):
    """The other way: a client that keeps sending to a backend that never answers."""
    sends = bytes(range(0x61, 0x69))
    received = []

    def client_side(c):
        for b in sends:
            time.sleep(0.5)
            c.send(bytes([b]))
        wait_for(lambda: b"".join(received) == sends, timeout=3,
                 what="every client byte at the backend")

    _tunnel_closes_after_silence(meridian, lambda s: _drain(s, received), client_side)


# --- access log ------------------------------------------------------------------------------------

def test_access_log_lines(origins, meridian, tmp_path):
    o = origins("eu-a")
    log = tmp_path / "access.log"
    m = meridian(regions=[("eu", [o.address])], workers=1, extra=TIMEOUTS,
                 access_log=str(log))
    t0 = time.time()
    r = request(m.port, "GET", "/hello?x=1", headers=[("X-Request-Id", "log-test-1")])
    assert r.status == 200
    r = request(m.port, "GET", "/status/404")
    assert r.status == 404

    def lines():
        with open(log) as f:
            out = [json.loads(line) for line in f if line.strip()]
        return out if len(out) >= 2 else None

    recs = wait_for(lines, timeout=3, what="two access log lines")
    assert len(recs) == 2, recs
    a, b = recs
    fields = {"time", "client_ip", "method", "path", "protocol", "status", "bytes",
              "duration_ms", "region", "backend", "upstream_ms", "request_id"}
    assert fields <= set(a), a
    assert a["client_ip"] == "127.0.0.1"
    assert a["method"] == "GET" and a["path"] == "/hello?x=1"
    assert a["protocol"] == "HTTP/1.1"
    assert a["status"] == 200
    assert a["bytes"] >= len(b"eu-a\n")
    assert a["region"] == "eu"
    assert a["backend"] == o.address
    assert isinstance(a["duration_ms"], (int, float)) and 0 <= a["duration_ms"] < 5000
    assert isinstance(a["upstream_ms"], (int, float)) and 0 <= a["upstream_ms"] <= a["duration_ms"]
    assert a["request_id"] == "log-test-1"
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", a["time"]), a["time"]
    assert str(time.gmtime(t0).tm_year) in a["time"]
    assert b["status"] == 404 and b["path"] == "/status/404"
    assert re.fullmatch(r"[0-9a-f]{32}", b["request_id"]), b
