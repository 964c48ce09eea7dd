# SPDX-License-Identifier: MIT
"""HTTP/2 towards clients (over TLS with ALPN, and h2c with prior knowledge on a plain listener),
HTTP/1.1 towards the origin: bodies both ways, framing, header hygiene, settings, load, many
streams, flow control both ways, cookies, and GOAWAY on shutdown (reloads: test_reload_h2.py)."""
import json
import os
import re
import signal
import struct
import subprocess
import time

import h2.events
import h2.settings
import pytest


from conftest import CHECK_MEMORY, SLOW, wait_for
from util_http import ScriptedBackend, pattern, read_request_head
from util_tls import (DATA, END_STREAM, HEADERS, NO_ERROR, SETTINGS, H2Client, H2Response, RawH2,
                      curl, make_cert, request_headers, settings_frame, start_tls_meridian,
                      vm_rss_kb)

MODES = ["tls", "h2c"]


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("certs"), "a", ["a.test", "localhost"])


@pytest.fixture
def env(origins, meridian, cert, tmp_path):
    """One origin behind a one-worker Meridian with an HTTPS (ALPN h2) and an h2c listener
    and an access log; returns (origin, m)."""
    o = origins("eu-a")
    m = start_tls_meridian(meridian, [o.address], [(cert, True)],
                           access_log=str(tmp_path / "access.log"))
    m.access_log = str(tmp_path / "access.log")
    return o, m


def url_of(m, mode, path):
    if mode == "tls":
        return f"https://a.test:{m.port}{path}"
    return f"http://127.0.0.1:{m.plain_port}{path}"


def curl_h2(m, mode, path, *args, cert=None, **kw):
    """curl over HTTP/2: ALPN h2 over TLS (verified against `cert` if given) or h2c with
    prior knowledge."""
    if mode == "tls":
        a = ["--http2", "-k"] if cert is None else ["--http2", "--cacert", cert.cert]
        return curl(url_of(m, mode, path), *a, *args, resolve=("a.test", m.port), **kw)
    return curl(url_of(m, mode, path), "--http2-prior-knowledge", *args, **kw)


def client(m, mode, **kw):
    if mode == "tls":
        return H2Client(m.port, tls=True, **kw)
    return H2Client(m.plain_port, **kw)


def scheme(mode):
    return "https" if mode == "tls" else "http"


def record_by_id(o, rid):
    recs = [r for r in o.records() if dict((k.lower(), v) for k, v in r["headers"])
            .get("x-request-id") == rid]
    assert len(recs) == 1, f"expected one origin record with X-Request-Id {rid}: {o.records()}"
    return recs[0]


# --- requests and bodies ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_get(env, cert, mode):
    o, m = env
    r = curl_h2(m, mode, "/", "-w", "\n%{http_version} %{http_code}", cert=cert)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "eu-a\n\n2 200", r.stdout


@pytest.mark.parametrize("mode", MODES)
def test_post_3mb_is_echoed_byte_exact(env, mode, tmp_path):
    o, m = env
    body = bytes((i * 31 + (i >> 9)) & 0xFF for i in range(3 * 1024 * 1024))
    src = tmp_path / "up.bin"
    dst = tmp_path / "down.bin"
    src.write_bytes(body)
    r = curl_h2(m, mode, "/echo", "--data-binary", f"@{src}", "-H",
                "Content-Type: application/octet-stream", "-o", str(dst), "-w",
                "%{http_version} %{http_code}")
    assert r.stdout == "2 200", (r.stdout, r.stderr)
    got = dst.read_bytes()
    assert len(got) == len(body) and got == body
    rec = [r for r in o.records() if r["target"] == "/echo"][-1]
    assert rec["body_len"] == len(body)


@pytest.mark.parametrize("mode", MODES)
def test_post_without_content_length_reaches_origin_chunked(env, mode):
    o, m = env
    chunks = [b"first ", b"x" * 70000, b"y" * 12345, b" last"]
    body = b"".join(chunks)
    with client(m, mode) as c:
        sid = c.request("/echo/nolen", "POST", headers=[("x-request-id", f"nolen-{mode}")],
                        scheme=scheme(mode), end_stream=False)
        for ch in chunks:
            c.send_body(sid, ch, end_stream=False)
        c.conn.end_stream(sid)
        c.flush()
        c.until(lambda: c.done(sid), what="echo response")
        r = c.responses[sid]
    assert r.status == 200 and bytes(r.body) == body
    rec = record_by_id(o, f"nolen-{mode}")
    h = {k.lower(): v for k, v in rec["headers"]}
    assert h.get("transfer-encoding") == "chunked", rec
    assert "content-length" not in h, rec
    assert rec["body_len"] == len(body)
    assert not rec.get("bad")


@pytest.mark.parametrize("mode", MODES)
def test_20mb_download_is_byte_exact(env, mode, tmp_path):
    o, m = env
    n = 20 * 1024 * 1024 + 3
    dst = tmp_path / "big.bin"
    r = curl_h2(m, mode, f"/bytes/{n}", "-o", str(dst), "-w", "%{http_version} %{http_code}")
    assert r.stdout == "2 200", (r.stdout, r.stderr)
    got = dst.read_bytes()
    assert len(got) == n and got == pattern(n)


@pytest.mark.parametrize("mode", MODES)
def test_head_and_404(env, mode):
    o, m = env
    with client(m, mode) as c:
        r = c.get("/", method="HEAD", scheme=scheme(mode))
        assert r.status == 200 and r.ended
        assert r.header("content-length") == "5"
        assert bytes(r.body) == b""
        r = c.get("/status/404", scheme=scheme(mode))
        assert r.status == 404
        assert bytes(r.body) == b"404 Not Found\n"
        # The connection is still good after a 404.
        assert c.get("/", scheme=scheme(mode)).status == 200


HOP_BY_HOP = ("connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade",
              "te")


@pytest.mark.parametrize("mode", MODES)
def test_response_headers_are_lower_case_without_connection_headers(origins, meridian, cert,
                                                                    mode):
    """An origin that answers chunked with Connection/Keep-Alive and mixed-case names: the h2
    client sees lower-case names and none of the connection-specific fields (RFC 9113
    8.2.2), and the de-chunked body."""
    def handler(s):
        read_request_head(s)
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Mixed-Case: Yes\r\n"
                  b"Connection: keep-alive, X-Drop\r\nKeep-Alive: timeout=5\r\n"
                  b"X-Drop: listed in Connection\r\nProxy-Connection: keep-alive\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")

    b = ScriptedBackend(handler)
    try:
        m = start_tls_meridian(meridian, [b.address], [(cert, True)])
        with client(m, mode) as c:
            r = c.get("/", scheme=scheme(mode))
    finally:
        b.stop()
    assert r.status == 200 and bytes(r.body) == b"hello world"
    names = [k.decode() for k, _ in r.headers]
    assert all(n == n.lower() for n in names), names
    assert r.header("x-mixed-case") == "Yes"
    bad = [n for n in names if n in HOP_BY_HOP]
    assert not bad, f"connection-specific headers in an h2 response: {r.headers}"
    assert r.header("x-drop") is None, "a field named in Connection must be dropped too"


def test_access_log_says_http2(env, cert):
    o, m = env
    r = curl_h2(m, "tls", "/", "-H", "X-Request-Id: h2-log-tls", cert=cert)
    assert r.returncode == 0, r.stderr
    r = curl_h2(m, "h2c", "/status/404", "-H", "X-Request-Id: h2-log-h2c")
    assert r.returncode == 0, r.stderr

    def lines():
        with open(m.access_log) as f:
            out = {j["request_id"]: j for j in (json.loads(l) for l in f if l.strip())}
        return out if len(out) >= 2 else None

    recs = wait_for(lines, timeout=3, what="access log lines")
    assert recs["h2-log-tls"]["protocol"] == "HTTP/2", recs
    assert recs["h2-log-tls"]["tls"] == "TLSv1.3", recs
    assert recs["h2-log-h2c"]["protocol"] == "HTTP/2", recs
    assert recs["h2-log-h2c"]["status"] == 404


# --- settings and load -----------------------------------------------------------------------


def test_nghttp_sees_the_configured_settings(origins, meridian, cert):
    o = origins("eu-a")
    m = start_tls_meridian(meridian, [o.address], [(cert, True)],
                           http2="{ max_concurrent_streams: 77, initial_window_size: 131072, "
                                 "max_header_list_size: 32k }")
    r = subprocess.run(["nghttp", "-nv", f"https://127.0.0.1:{m.port}/"], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    first = r.stdout.split("recv SETTINGS frame", 1)[1].split("frame <", 1)[0]
    assert "[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):77]" in first, first
    assert "[SETTINGS_ENABLE_PUSH(0x02):0]" in first, first
    assert "[SETTINGS_INITIAL_WINDOW_SIZE(0x04):131072]" in first, first
    assert "[SETTINGS_MAX_HEADER_LIST_SIZE(0x06):32768]" in first, first
    assert "The negotiated protocol: h2" in r.stdout


@pytest.mark.parametrize("what", ["bytes", "count"])
def test_header_list_over_the_limits_is_431(env, what):
    """Over max_header_list_size (64k) or limits.max_headers (100): 431, as HTTP/1.1 answers,
    never at the origin, and the connection serves on."""
    o, m = env
    if what == "bytes":
        extra = [(f"x-big-{i}", "v" * 4000) for i in range(20)]  # ~80 KB decoded
    else:
        extra = [(f"x-n-{i}", "1") for i in range(101)]
    with client(m, "tls") as c:
        r = c.get(f"/too-large-{what}", headers=extra, scheme="https")
        assert r.reset is None and r.status == 431, (r.reset, r.status)
        assert c.get("/after", scheme="https").status == 200
    assert not [x for x in o.records() if x["target"].startswith("/too-large")]


def test_refused_requests_give_their_body_window_back(env):
    """Body bytes that came with a request we refused (431 here) must be handed back to the
    connection's flow-control window (no automatic window updates): 80 refused 16 KB
    uploads would otherwise eat the whole 1 MB window and stall every later upload."""
    o, m = env
    many = [(f"x-n-{i}", "1") for i in range(101)]  # over limits.max_headers (100)
    with client(m, "h2c") as c:
        for i in range(80):
            # Headers and body in one write, so that they arrive in one read.
            sid = c.conn.get_next_available_stream_id()
            c.conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"),
                                      (":authority", "a.test"), (":path", f"/refused-{i}")]
                                + many)
            c.responses[sid] = H2Response()
            n = min(16000, c.conn.local_flow_control_window(sid))
            assert n > 0, f"the connection window is gone after {i} refused uploads"
            c.conn.send_data(sid, b"b" * n)
            c.flush()
            c.until(lambda: c.responses[sid].status is not None, what="the 431")
            assert c.responses[sid].status == 431
        r = c.get("/echo", method="POST", body=b"u" * 200000)
        assert r.status == 200 and len(r.body) == 200000
    assert not [x for x in o.records() if x["target"].startswith("/refused-")]


@pytest.mark.parametrize("same_batch", [False, True])
def test_request_trailers_reach_the_backend(env, same_batch):
    """Trailers of a request without Content-Length go to the backend after the last chunk
    (forbidden fields and the ones the proxy sets itself dropped), whether they come after the stream started or in the same
    read as its headers; with a Content-Length body they are dropped and the request is
    unharmed."""
    o, m = env
    tag = f"req-trailers-{same_batch}"
    with client(m, "h2c") as c:
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"),
                                  (":authority", "a.test"), (":path", "/echo"),
                                  ("x-request-id", tag)])
        c.responses[sid] = H2Response()
        c.conn.send_data(sid, b"hello")
        if not same_batch:
            # A PING answered means the batch with the headers was processed: the stream
            # has started before its trailers come.
            c.conn.ping(b"started!")
            c.flush()
            c.until(lambda: any(isinstance(e, h2.events.PingAckReceived) for e in c.events),
                    what="the PING ACK")
        # What the proxy sets in the request head itself may not come in as trailers.
        c.conn.send_headers(sid, [("x-checksum", "1234"), ("x-forwarded-for", "6.6.6.6"),
                                  ("x-forwarded-proto", "https"), ("x-request-id", "evil id"),
                                  ("server-timing", "up;dur=1")], end_stream=True)
        c.flush()
        c.until(lambda: c.done(sid), what="the echo")
        assert c.responses[sid].status == 200 and bytes(c.responses[sid].body) == b"hello"
        r = c.get("/echo", method="POST", body=b"abc",
                  headers=[("content-length", "3"), ("x-request-id", tag + "-cl")])
        assert r.status == 200 and bytes(r.body) == b"abc"
    rec = record_by_id(o, tag)
    assert rec["body_len"] == 5
    assert rec.get("trailers") == [["x-checksum", "1234"], ["server-timing", "up;dur=1"]], rec
    assert not record_by_id(o, tag + "-cl").get("trailers")


def test_trailers_have_their_own_header_list_limit(env):
    """max_header_list_size applies to each header block: 12 KB of headers and 56 KB of
    trailers (64 KB limit) is a valid request."""
    o, m = env
    with client(m, "tls") as c:
        sid = c.request("/echo", "POST", scheme="https", end_stream=False,
                        headers=[(f"x-h-{i}", "h" * 1200) for i in range(10)])
        c.send_body(sid, b"x" * 100, end_stream=False)
        c.conn.send_headers(sid, [(f"x-t-{i}", "t" * 4000) for i in range(14)], end_stream=True)
        c.flush()
        c.until(lambda: c.done(sid), what="the echo")
        r = c.responses[sid]
    assert r.reset is None and r.status == 200 and bytes(r.body) == b"x" * 100


def test_trailers_over_the_limit_reset_the_stream(env):
    o, m = env
    with client(m, "tls") as c:
        sid = c.request("/echo", "POST", scheme="https", end_stream=False)
        c.send_body(sid, b"x" * 100, end_stream=False)
        c.conn.send_headers(sid, [(f"x-trailer-{i}", "t" * 4000) for i in range(20)],
                            end_stream=True)
        c.flush()
        c.until(lambda: c.done(sid), what="the stream to end")
        assert c.responses[sid].reset is not None, c.responses[sid].status
        assert c.get("/after", scheme="https").status == 200


def h2_get_scripted(meridian, cert, mode, answer, path):
    """GET `path` over HTTP/2 through Meridian from a backend that reads the request and
    sends the raw bytes `answer`, then closes. Returns the H2Response."""
    def handler(s):
        read_request_head(s)
        s.sendall(answer)
        s.close()

    be = ScriptedBackend(handler)
    try:
        m = start_tls_meridian(meridian, [be.address], [(cert, True)])
        with client(m, mode) as c:
            return c.get(path, scheme=scheme(mode))
    finally:
        be.stop()


@pytest.mark.parametrize("mode", MODES)
def test_interim_responses_are_relayed(meridian, cert, mode):
    """103 Early Hints (and any 1xx but 101) from the backend reach an HTTP/2 client as a
    HEADERS frame of their own, before the final response."""
    r = h2_get_scripted(meridian, cert, mode,
                        b"HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n"
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        "/hints")
    assert r.status == 200 and bytes(r.body) == b"ok"
    assert len(r.interim) == 1, r.interim
    hints = dict(r.interim[0])
    assert hints[b":status"] == b"103", hints
    assert hints[b"link"] == b"</app.css>; rel=preload", hints


@pytest.mark.parametrize("mode", MODES)
def test_response_trailers_are_relayed(meridian, cert, mode):
    """Trailer fields of a chunked response reach an HTTP/2 client in a trailing HEADERS
    frame (lower-cased, trimmed), without the fields RFC 9110 forbids in trailers."""
    r = h2_get_scripted(meridian, cert, mode,
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                        b"Trailer: Server-Timing, X-Checksum\r\n\r\n"
                        b"5\r\nhello\r\n6\r\n world\r\n0\r\nServer-Timing: db;dur=53\r\n"
                        b"Content-Length: 99\r\nX-Checksum:  abc \r\nConnection: close\r\n\r\n",
                        "/trailers")
    assert r.status == 200 and bytes(r.body) == b"hello world"
    assert r.trailers == [(b"server-timing", b"db;dur=53"), (b"x-checksum", b"abc")], r.trailers


@pytest.mark.parametrize("mode", MODES)
def test_expect_100_continue_is_answered(env, mode):
    """A client that waits for 100 before sending its body gets it from us, as over
    HTTP/1.1; the backend sees no Expect header."""
    o, m = env
    body = b"z" * 5000
    with client(m, mode) as c:
        sid = c.request("/echo", "POST", scheme=scheme(mode), end_stream=False,
                        headers=[("content-length", str(len(body))), ("expect", "100-continue"),
                                 ("x-request-id", f"expect-{mode}")])
        c.until(lambda: c.responses[sid].interim, timeout=5, what="100 Continue")
        assert dict(c.responses[sid].interim[0])[b":status"] == b"100"
        c.send_body(sid, body)
        c.until(lambda: c.done(sid), what="the echo")
        r = c.responses[sid]
    assert r.status == 200 and bytes(r.body) == body
    h = {k.lower() for k, v in record_by_id(o, f"expect-{mode}")["headers"]}
    assert "expect" not in h


def test_h2load_all_2xx(env):
    o, m = env
    r = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "10",
                        f"https://127.0.0.1:{m.port}/"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed",
                     r.stdout), r.stdout
    assert "status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx" in r.stdout, r.stdout
    assert "Application protocol: h2" in r.stdout, r.stdout


def test_fifty_concurrent_streams_on_one_connection(env):
    o, m = env
    t0 = time.monotonic()
    with client(m, "tls") as c:
        sids = [c.request(f"/delay/200?i={i}", scheme="https") for i in range(50)]
        c.until(lambda: c.done(*sids), timeout=15, what="50 responses")
        rs = [c.responses[s] for s in sids]
    took = time.monotonic() - t0
    assert [r.status for r in rs] == [200] * 50
    assert all(bytes(r.body) == b"eu-a\n" for r in rs)
    # 50 x 200 ms one after the other would take 10 s: they ran side by side.
    assert took < 5 * SLOW, f"50 concurrent /delay/200 streams took {took:.1f}s"
    assert len([r for r in o.records() if r["target"].startswith("/delay/200")]) == 50


def test_idle_connection_closes_client_idle_after_its_last_response(origins, meridian, cert):
    """The idle timer counts from the last byte either way, not from the last read: a
    response that ends 1.5 s after the request was read must not buy the connection a
    second full period."""
    o = origins("eu-a")
    m = start_tls_meridian(meridian, [o.address], [(cert, True)],
                           timeouts="{ client_idle: 2s, upstream_response: 10s, shutdown: 2s }")
    with H2Client(m.plain_port) as c:
        r = c.get("/delay/1500")
        assert r.status == 200
        t_last = time.monotonic()
        c.until(lambda: c.closed, timeout=10, what="the idle connection to close")
        took = time.monotonic() - t_last
    assert 1.8 <= took <= 2.0 + 0.4 * SLOW, f"closed {took:.2f}s after the last response"


# --- flow control ----------------------------------------------------------------------------


def test_slow_reader_with_a_small_window_gets_the_whole_response(env):
    """The client allows 16 KiB per stream and opens its windows only after reading, a bit
    at a time: Meridian must follow the windows, not drop or stall, and not hold the whole
    response in memory while the client dawdles."""
    o, m = env
    n = 5_000_000
    rss0 = vm_rss_kb(m.proc.pid)
    peak = rss0
    small = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 16384}
    with client(m, "tls", settings=small, auto_window=False) as c:
        sid = c.request(f"/bytes/{n}", scheme="https")
        deadline = time.monotonic() + 30 * SLOW
        updates = 0
        while not c.done(sid):
            assert time.monotonic() < deadline, f"stalled at {len(c.responses[sid].body)}"
            before = len(c.responses[sid].body)
            c.pump(timeout=5)
            got = len(c.responses[sid].body) - before
            if got:
                # Open the windows by what was read, in one update per read: slow.
                c.conn.acknowledge_received_data(got, sid)
                c.flush()
                updates += 1
                if updates % 20 == 0:
                    peak = max(peak, vm_rss_kb(m.proc.pid))
        r = c.responses[sid]
    assert r.status == 200
    assert len(r.body) == n and bytes(r.body) == pattern(n)
    assert updates > 50, f"the window did not throttle anything ({updates} reads)"
    if CHECK_MEMORY:
        assert peak - rss0 < 4096, f"meridian RSS grew {peak - rss0} KiB for a 5 MB response"


@pytest.mark.parametrize("mode", MODES)
def test_upload_larger_than_the_window_completes(env, mode):
    o, m = env
    body = os.urandom(1024 * 1024 + 17)
    with client(m, mode) as c:
        sid = c.request("/echo/up", "POST", body=body, scheme=scheme(mode))
        c.until(lambda: c.done(sid), timeout=30, what="echo of 1 MiB")
        r = c.responses[sid]
    assert len(body) > 16 * 65535  # the configured (default) initial window, many times
    assert r.status == 200 and bytes(r.body) == body


def test_upload_window_follows_the_backend(origins, meridian, cert):
    """A backend that reads the request head and then nothing: Meridian must stop granting
    window to the client (it only opens the window as the backend takes the bytes), so a
    client cannot park an unbounded upload in Meridian's memory."""
    release = []

    def handler(s):
        read_request_head(s)
        wait_for(lambda: release, timeout=30, interval=0.05, what="release")

    b = ScriptedBackend(handler)
    try:
        m = start_tls_meridian(meridian, [b.address], [(cert, True)])
        rss0 = vm_rss_kb(m.proc.pid)
        with client(m, "h2c") as c:
            sid = c.request("/upload", "POST", end_stream=False)
            sent = 0
            chunk = b"u" * 16384
            limit = 64 * 1024 * 1024
            stalled = False
            deadline = time.monotonic() + 20 * SLOW
            while sent < limit and time.monotonic() < deadline:
                w = min(c.conn.local_flow_control_window(sid), len(chunk))
                if w > 0:
                    c.conn.send_data(sid, chunk[:w])
                    c.flush()
                    sent += w
                    continue
                # Window closed: does it open again within half a second?
                t = time.monotonic()
                while time.monotonic() - t < 0.5 * SLOW:
                    try:
                        c.pump(timeout=0.1)
                    except OSError:
                        pass
                    if c.conn.local_flow_control_window(sid) > 0:
                        break
                else:
                    stalled = True
                    break
            grown = vm_rss_kb(m.proc.pid) - rss0
    finally:
        release.append(1)
        b.stop()
    assert stalled, f"Meridian accepted {sent} bytes for a backend that reads nothing"
    assert sent < 24 * 1024 * 1024, sent
    assert grown < 8192, f"meridian RSS grew {grown} KiB holding an upload"


# --- headers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_cookie_crumbs_are_joined_for_the_origin(env, mode):
    o, m = env
    with client(m, mode) as c:
        r = c.get("/", scheme=scheme(mode), headers=[("cookie", "a=1"), ("x-request-id",
                                                                          f"cookie-{mode}"),
                                                     ("cookie", "b=2")])
    assert r.status == 200
    rec = record_by_id(o, f"cookie-{mode}")
    cookies = [v for k, v in rec["headers"] if k.lower() == "cookie"]
    assert cookies == ["a=1; b=2"], rec["headers"]


# --- GOAWAY ----------------------------------------------------------------------------------


def in_flight_at_origin(o, target):
    return lambda: any(r["target"] == target for r in o.records())


def raw_client(m, mode):
    """A RawH2 (python3-h2 treats every frame after a GOAWAY as an error, so the GOAWAY tests
    read frames themselves). Server settings are acknowledged before it is returned."""
    c = RawH2(m.port, tls=True) if mode == "tls" else RawH2(m.plain_port)
    assert c.until(lambda c: c.of_type(SETTINGS), 5), "no SETTINGS from meridian"
    c.send(settings_frame(ack=True))
    return c


def check_drained(c, sid):
    """After a GOAWAY(NO_ERROR) that covers sid, sid completes with the origin's answer, after
    the GOAWAY."""
    assert c.until(lambda c: c.stream_ended(sid) or c.closed, 10)
    g = c.goaway()
    assert g is not None, f"closed without GOAWAY: {c.frames}"
    last, code = struct.unpack(">II", g.payload[:8])
    assert code == NO_ERROR and (last & 0x7FFFFFFF) >= sid, g
    assert c.stream_ended(sid), f"stream {sid} did not finish after GOAWAY: {c.frames}"
    assert c.status_of(sid) == 200 and c.body(sid) == b"eu-a\n"
    gi = c.frames.index(g)
    ends = [i for i, f in enumerate(c.frames) if f.sid == sid and f.flags & END_STREAM
            and f.type in (DATA, HEADERS)]
    assert gi < ends[0], "GOAWAY came only after the stream had finished"


@pytest.mark.parametrize("mode", MODES)
def test_goaway_on_graceful_shutdown_lets_the_stream_finish(env, mode):
    o, m = env
    with raw_client(m, mode) as c:
        c.send(c.headers_frame(1, request_headers("/delay/1500")))
        wait_for(in_flight_at_origin(o, "/delay/1500"), timeout=5, what="request at origin")
        m.proc.send_signal(signal.SIGTERM)
        assert c.until(lambda c: c.goaway() or c.closed, 1.2), "no GOAWAY within 1.2 s of SIGTERM"
        check_drained(c, 1)
        assert c.wait_closed(5), "connection left open after GOAWAY and its last stream"
    assert m.proc.wait(timeout=10 * SLOW) == 0


# --- geo routing's own headers ---------------------------------------------------------------


def _post_with_trailers(c, path, tag, trailers):
    """POST `path` without Content-Length (so the body goes on chunked, with trailers), its
    trailer HEADERS after the body; returns the response."""
    sid = c.conn.get_next_available_stream_id()
    c.conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"),
                              (":authority", "geo.test"), (":path", path),
                              ("x-request-id", tag)])
    c.responses[sid] = H2Response()
    c.conn.send_data(sid, b"hello")
    c.conn.send_headers(sid, trailers, end_stream=True)
    c.flush()
    c.until(lambda: c.done(sid), what="the echo")
    return c.responses[sid]


def test_request_trailers_cannot_spoof_the_client_country_and_region(origins, meridian):
    """X-Client-Country / X-Client-Region (or the names routing configures) are the
    proxy's word to the backend: a client's copies are dropped from request trailers as
    from the head, and the other trailers still reach the backend."""
    from conftest import geo_config
    o = origins("eu-a")
    m = meridian(start=False)

    def config(routing=None):
        return geo_config(m.port, m.admin_port,
                          [{"name": "eu", "lat": 50.11, "lon": 8.68, "backends": [o.address],
                            "default": True}],
                          listeners=[{"name": "plain", "address": f"127.0.0.1:{m.port}",
                                      "h2c": True}],
                          routing=routing,
                          timeouts={"upstream_response": "10s", "shutdown": "5s"})
    m.write_config(config())
    m.start()
    spoof = [("x-checksum", "1234"), ("x-client-country", "ZZ"), ("x-client-region", "sa"),
             ("x-geo-country", "YY"), ("x-geo-region", "ap"), ("server-timing", "up;dur=1")]
    with H2Client(m.port) as c:
        r = _post_with_trailers(c, "/echo", "spoof-default", spoof)
        assert r.status == 200 and bytes(r.body) == b"hello", (r.status, r.body)
    rec = record_by_id(o, "spoof-default")
    assert rec.get("trailers") == [["x-checksum", "1234"], ["x-geo-country", "YY"],
                                   ["x-geo-region", "ap"], ["server-timing", "up;dur=1"]], rec
    heads = [(k.lower(), v) for k, v in rec["headers"]]
    assert ("x-client-region", "eu") in heads, heads

    m.reload(config(routing={"country_header": "X-Geo-Country",
                             "region_header": "X-Geo-Region"}))
    with H2Client(m.port) as c:
        r = _post_with_trailers(c, "/echo", "spoof-custom", spoof)
        assert r.status == 200 and bytes(r.body) == b"hello", (r.status, r.body)
    rec = record_by_id(o, "spoof-custom")
    names = [k for k, _ in rec.get("trailers", [])]
    assert "x-geo-country" not in names and "x-geo-region" not in names, rec
    assert ["x-checksum", "1234"] in rec["trailers"], rec
    heads = [(k.lower(), v) for k, v in rec["headers"]]
    assert ("x-geo-region", "eu") in heads, heads
