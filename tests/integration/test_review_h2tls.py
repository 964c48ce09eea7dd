# SPDX-License-Identifier: MIT
"""Review of the HTTP/2 and TLS client side: request trailers, early responses, body limits
before a stream starts, stream windows, half-closed streams and slow handshakes/heads."""
import os
import signal
import socket
import ssl
import struct
import threading
import time

import pytest

from conftest import SLOW, free_port, port_accepts, wait_for
from util_http import ScriptedBackend, read_request_head
from util_tls import (DATA, END_STREAM, PING, H2Client, RawH2, frame, make_cert, ping_frame,
                      request_headers, settings_frame, start_tls_meridian, tls_config)


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("certs"), "a", ["a.test"])


def start(meridian, backends, cert, extra="", **kw):
    """start_tls_meridian with extra top-level config text (limits: ...)."""
    m = meridian(start=False, config_text="# replaced below\n")
    m.plain_port = free_port()
    m.write_config(tls_config(m.port, m.plain_port, m.admin_port, backends, [(cert, True)],
                              **kw) + extra)
    m.start()
    wait_for(lambda: port_accepts(m.plain_port), what="meridian plain listener")
    return m


def h2c(m):
    c = RawH2(m.plain_port, timeout=5)
    assert c.until(lambda c: c.of_type(4), 5)
    c.send(settings_frame(ack=True))
    return c


def sync(c, tag):
    """Send a PING and wait for its ACK: everything sent before it was processed."""
    c.send(ping_frame(tag))
    assert c.until(lambda c: any(f.type == PING and f.flags & 1 and f.payload == tag
                                 for f in c.frames), 5), "no PING ACK"


# --- h2_conn.c -------------------------------------------------------------------------------


def test_h2_request_trailers_end_the_request(origins, meridian, cert):
    """A request body without content-length ended by a trailer HEADERS frame (END_STREAM on
    HEADERS, not on DATA) must end the upstream chunked body."""
    o = origins("eu-a")
    m = start(meridian, [o.address], cert,
              timeouts="{ upstream_response: 4s, shutdown: 2s }")
    with h2c(m) as c:
        c.send(c.headers_frame(1, request_headers("/echo", "POST"), end_stream=False) +
               frame(DATA, 0, 1, b"hello"))
        sync(c, b"trailer1")
        c.send(c.headers_frame(1, [("x-trailer", "1")], end_stream=True))
        assert c.until(lambda c: c.stream_ended(1) or c.resets(), 3), \
            f"no response 3 s after the trailers: {c.frames}"
        assert c.status_of(1) == 200, c.frames
        assert c.body(1) == b"hello"


def test_h2_early_response_is_not_cut_by_rst(meridian, cert):
    """The backend answers before the request body is complete: the client must get the
    whole response (RST_STREAM NO_ERROR may only follow the END_STREAM)."""
    def handler(s):
        read_request_head(s)
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        while s.recv(65536):
            pass

    b = ScriptedBackend(handler)
    try:
        m = start(meridian, [b.address], cert)
        with h2c(m) as c:
            c.send(c.headers_frame(1, request_headers("/x", "POST",
                                                      extra=[("content-length", "100")]),
                                   end_stream=False) + frame(DATA, 0, 1, b"0123456789"))
            assert c.until(lambda c: c.stream_ended(1) or c.resets(), 5), c.frames
            assert c.status_of(1) == 200, c.frames
            assert c.body(1) == b"hello" and c.stream_ended(1), \
                f"response cut: body {c.body(1)!r}, frames {c.frames}"
    finally:
        b.stop()


def test_h2_body_over_limit_before_start_never_reaches_backend(meridian, cert):
    """DATA over max_body_bytes in the same read as the HEADERS: the client gets a 413 and
    the request must not be sent upstream."""
    heads = []

    def handler(s):
        s.settimeout(10)
        while True:
            head = read_request_head(s)
            if not head:
                return
            heads.append(head)
            if head.startswith(b"GET"):
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    b = ScriptedBackend(handler)
    try:
        m = start(meridian, [b.address], cert, extra="limits: { max_body_bytes: 100 }\n")
        with h2c(m) as c:
            # Warm up an idle upstream connection so a started request is written at once.
            c.send(c.headers_frame(1, request_headers("/")))
            assert c.until(lambda c: c.stream_ended(1), 5)
            c.send(c.headers_frame(3, request_headers("/echo", "POST"), end_stream=False) +
                   frame(DATA, END_STREAM, 3, b"x" * 1000))
            assert c.until(lambda c: c.stream_ended(3) or 3 in c.resets(), 5), c.frames
            sync(c, b"limit001")
            status = c.status_of(3)
        posts = [h for h in heads if h.startswith(b"POST")]
        assert posts == [], f"a request over max_body_bytes reached the backend: {posts}"
        assert status == 413, f"no 413 for the client, only {c.frames[-3:]}"
    finally:
        b.stop()


def test_h2_upload_with_a_window_that_is_not_a_power_of_two(origins, meridian, cert):
    """http2.initial_window_size 100000: a client may send 100000 bytes before we consume;
    the pending-body buffer must hold them."""
    o = origins("eu-a")
    m = start(meridian, [o.address], cert, http2="{ initial_window_size: 100000 }")
    body = bytes(range(256)) * 390  # 99840 bytes
    with h2c(m) as c:
        sync(c, b"settings")  # our SETTINGS ACK is in: the 100000 window applies
        # No content-length: the body goes upstream chunked, so lost bytes show in the echo.
        frames = c.headers_frame(1, request_headers("/echo", "POST"), end_stream=False)
        for i in range(0, len(body), 16384):
            chunk = body[i:i + 16384]
            last = i + 16384 >= len(body)
            frames += frame(DATA, END_STREAM if last else 0, 1, chunk)
        c.send(frames)
        # Let the echo come back: open our receive windows wide.
        c.send(frame(8, 0, 0, struct.pack(">I", 1 << 20)) +
               frame(8, 0, 1, struct.pack(">I", 1 << 20)))
        assert c.until(lambda c: c.stream_ended(1) or c.resets() or c.goaway(), 10), c.frames
        assert not c.resets(), f"stream reset: {c.frames[-5:]}"
        assert c.status_of(1) == 200
        got = c.body(1)
        assert len(got) == len(body) and got == body, \
            f"echo has {len(got)} of {len(body)} bytes"


def test_h2_half_closed_stream_does_not_pin_the_connection(origins, meridian, cert):
    """A request answered by us (413) while the client keeps its side open, then silence:
    client_idle must still close the connection."""
    o = origins("eu-a")
    m = start(meridian, [o.address], cert, extra="limits: { max_body_bytes: 100 }\n",
              timeouts="{ client_idle: 1s, upstream_response: 5s, shutdown: 2s }")
    with h2c(m) as c:
        c.send(c.headers_frame(1, request_headers("/echo", "POST",
                                                  extra=[("content-length", "1000")]),
                               end_stream=False))
        assert c.until(lambda c: c.stream_ended(1), 5), c.frames
        assert c.status_of(1) == 413
        t0 = time.monotonic()
        closed = c.wait_closed(4)
        assert closed, "connection still open 4 s after the 413 with client_idle 1s " \
                       f"(resets {c.resets()})"
        assert time.monotonic() - t0 < 3.5 * SLOW


def test_h2_unfinished_header_block_does_not_pin_the_connection(origins, meridian, cert):
    """HEADERS without END_HEADERS and no CONTINUATION: client_idle must close."""
    o = origins("eu-a")
    m = start(meridian, [o.address], cert,
              timeouts="{ client_idle: 1s, upstream_response: 5s, shutdown: 2s }")
    with h2c(m) as c:
        c.send(c.headers_frame(1, request_headers("/"), end_stream=True, end_headers=False))
        assert c.wait_closed(4), "connection still open 4 s after an unfinished header " \
                                 "block with client_idle 1s"
    assert o.records() == []


# --- tls.c / conn.c / h1_conn.c --------------------------------------------------------------


def test_h2_upstream_failing_while_body_is_fed_does_not_crash(meridian, cert):
    """The backend resets the connection while an HTTP/2 upload is being fed to it, and the
    worker handles the client's DATA before the reset: the write fails inside the feed, the
    stream answers 502 and gives its pending body back to the window. The feed then went on
    with a length of 0 - n (a crash; second review of 4dc1673)."""
    head_seen, go_rst, gone = threading.Event(), threading.Event(), threading.Event()

    def handler(s):
        read_request_head(s)
        head_seen.set()
        go_rst.wait(10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # RST
        gone.set()

    be = ScriptedBackend(handler)
    try:
        m = start_tls_meridian(meridian, [be.address], [(cert, True)])
        with H2Client(m.plain_port) as c:
            sid = c.request("/up", "POST", end_stream=False, headers=[("content-length", "10")])
            assert head_seen.wait(5), "backend never saw the head"
            # A busy worker, frozen: it then sees the client's DATA and the backend's RST
            # in the same loop turn, the client's socket first.
            os.kill(m.proc.pid, signal.SIGSTOP)
            try:
                c.conn.send_data(sid, b"0123456789", end_stream=True)
                c.flush()
                time.sleep(0.2)  # ordering: the DATA is in before the RST (not readiness)
                go_rst.set()
                assert gone.wait(5)
                time.sleep(0.2)  # ordering: the RST is in before the worker runs again
            finally:
                os.kill(m.proc.pid, signal.SIGCONT)
            c.until(lambda: c.responses[sid].status is not None or m.proc.poll() is not None,
                    timeout=5, what="an answer or a crash")
            assert m.proc.poll() is None, f"meridian died: rc={m.proc.returncode}"
            assert c.responses[sid].status == 502
    finally:
        be.stop()


def client_hello():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="a.test")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def dribble(port, data, every, limit):
    """Send data a byte at a time every `every` s; return seconds until the server closed
    (or None if it still had not after `limit` s)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    t0 = time.monotonic()
    try:
        for i in range(len(data)):
            if time.monotonic() - t0 > limit:
                return None
            try:
                s.sendall(data[i:i + 1])
            except OSError:
                return time.monotonic() - t0
            s.settimeout(every)
            try:
                b = s.recv(65536)
                if not b:
                    return time.monotonic() - t0
                if b.startswith(b"HTTP/1.1 408"):
                    return time.monotonic() - t0
            except socket.timeout:
                pass
            except OSError:
                return time.monotonic() - t0
        return None
    finally:
        s.close()


def test_tls_handshake_timeout_is_not_reset_by_each_byte(origins, meridian, cert):
    """client_header bounds the whole TLS handshake, a slow ClientHello included."""
    o = origins("eu-a")
    m = start(meridian, [o.address], cert,
              timeouts="{ client_header: 1s, upstream_response: 5s, shutdown: 2s }")
    took = dribble(m.port, client_hello(), 0.3, 4)
    assert took is not None and took < 2.5 * SLOW, \
        f"a ClientHello dribbled byte by byte kept the handshake open ({took})"


def test_h1_header_timeout_is_not_reset_by_each_byte(origins, meridian, cert):
    """client_header counts from the first byte of the request head (slowloris)."""
    o = origins("eu-a")
    m = start(meridian, [o.address], cert,
              timeouts="{ client_header: 1s, upstream_response: 5s, shutdown: 2s }")
    head = b"GET / HTTP/1.1\r\nHost: a.test\r\n" + b"X-Slow: " + b"a" * 200
    took = dribble(m.plain_port, head, 0.3, 4)
    assert took is not None and took < 2.5 * SLOW, \
        f"a head dribbled byte by byte outlived client_header ({took})"

