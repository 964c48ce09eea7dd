# SPDX-License-Identifier: MIT
"""TLS to backends (issue 9), black-box against the test origin's TLS listeners with
certificates made here by a throwaway CA: a verified backend serves HTTP/1.1 and HTTP/2
clients, by name (SNI and the name check) or by IP (an IP SAN); a certificate from another CA
or for another name is a 502 that counts against the backend (down, with the reason in the
log, /status and /metrics) and never reaches it; sessions are resumed and keep-alive
connections reused, counted on both sides; health checks go over TLS; client certificates;
a backend's own `tls` over its region's; big bodies both ways; a backend that is no TLS
server (answers in clear text, closes or stalls after the ClientHello) is a 502 with the
reason, or a 504 at upstream_connect; bad settings refused with file:line, at -t and on
reload (which keeps the running generation).

One worker where counts must be exact: sessions are kept per backend per worker."""
import os
import socket
import subprocess
import threading
import time

import pytest

from conftest import MERIDIAN_BIN, SLOW, Origin, config_line, free_port, geo_config, wait_for
from util_http import pattern, request

EU = {"name": "eu", "lat": 50.11, "lon": 8.68, "default": True}
NAME = "backend.test"


# ---- certificates ---------------------------------------------------------------------------


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class Pki:
    """A CA and certificates it signs (ECDSA P-256), as files in `directory`."""

    def __init__(self, directory, stem):
        self.dir = str(directory)
        self.stem = stem
        self.ca = os.path.join(self.dir, f"{stem}-ca.pem")
        self.ca_key = os.path.join(self.dir, f"{stem}-ca.key")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", self.ca_key, "-out", self.ca, "-days", "2", "-subj",
                f"/CN={stem} test CA", cwd=self.dir)

    def issue(self, leaf, cn, san=None, client=False):
        """(cert, key) for `cn`, with subjectAltName `san` ("DNS:a,IP:127.0.0.1")."""
        key = os.path.join(self.dir, f"{self.stem}-{leaf}.key")
        csr = os.path.join(self.dir, f"{self.stem}-{leaf}.csr")
        cert = os.path.join(self.dir, f"{self.stem}-{leaf}.pem")
        ext = os.path.join(self.dir, f"{self.stem}-{leaf}.ext")
        with open(ext, "w") as f:
            if san:
                f.write(f"subjectAltName={san}\n")
            f.write(f"extendedKeyUsage={'clientAuth' if client else 'serverAuth'}\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", csr, "-subj", f"/CN={cn}", cwd=self.dir)
        openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext, cwd=self.dir)
        return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    good = Pki(d, "good")
    other = Pki(d, "other")
    clients = Pki(d, "clients")
    return {
        "ca": good.ca,
        "server": good.issue("server", NAME, f"DNS:{NAME},IP:127.0.0.1,IP:::1"),
        "other_ca": other.ca,
        "client": clients.issue("client", "meridian-edge", client=True),
        "client_ca": clients.ca,
    }


@pytest.fixture
def tls_origins(tmp_path, pki):
    started = []

    def make(name, client_ca=None):
        cert, key = pki["server"]
        o = Origin(tmp_path, name, tls=(cert, key, client_ca)).start()
        started.append(o)
        return o

    yield make
    for o in started:
        o.stop()


# ---- helpers --------------------------------------------------------------------------------


def start(meridian, backends, tls, workers=1, region=None, **sections):
    m = meridian(start=False, workers=workers)
    spec = dict(region or EU, backends=backends)
    if tls is not None:
        spec["tls"] = tls
    m.write_config(geo_config(m.port, m.admin_port, [spec], workers=workers, **sections))
    return m.start()


def get(m, path="/", **kw):
    r = request(m.port, "GET", path, timeout=10 * SLOW, **kw)
    return r.status, r.body


def metric(m, line_start):
    text = m.admin("/metrics")[1].decode()
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {line_start} in /metrics")


def handshakes(m):
    return (metric(m, 'meridian_upstream_tls_handshakes_total{kind="full"}'),
            metric(m, 'meridian_upstream_tls_handshakes_total{kind="resumed"}'))


def only_backend(m):
    return m.status()["regions"][0]["backends"][0]


# ---- verified backends ----------------------------------------------------------------------


def test_verified_by_name_serves_and_reuses_one_connection(tls_origins, meridian, pki):
    o = tls_origins("eu-tls")
    m = start(meridian, [o.address], {"ca_file": pki["ca"], "sni": NAME})
    for _ in range(20):
        status, body = get(m)
        assert (status, body) == (200, b"eu-tls\n")
    recs = o.records()
    assert len(recs) == 20
    # SNI sent, ALPN http/1.1 agreed, one connection kept alive for all of them
    assert all(r["tls"]["sni"] == NAME and r["tls"]["alpn"] == "http/1.1" for r in recs), recs[0]
    assert len({r["conn"] for r in recs}) == 1
    assert handshakes(m) == (1, 0)
    assert metric(m, "meridian_upstream_reuses_total") == 19
    st = only_backend(m)
    assert st["tls"] is True and st["tls_verify"] is True and st["sni"] == NAME, st


def test_verified_by_ip_san_without_sni(tls_origins, meridian, pki):
    o = tls_origins("eu-ip")
    m = start(meridian, [o.address], {"ca_file": pki["ca"]})
    assert get(m) == (200, b"eu-ip\n")
    rec = o.records()[0]
    assert rec["tls"]["sni"] is None  # an IP literal is never sent as SNI
    assert only_backend(m)["sni"] is None


def test_sessions_resumed_on_new_connections(tls_origins, meridian, pki):
    o = tls_origins("eu-resume")
    m = start(meridian, [o.address], {"ca_file": pki["ca"], "sni": NAME})
    # /noclen ends its body by closing: every request needs a new connection
    for _ in range(5):
        status, body = get(m, "/noclen/100")
        assert status == 200 and len(body) == 100
    resumed = [r["tls"]["resumed"] for r in o.records()]
    assert resumed == [False, True, True, True, True], resumed
    assert handshakes(m) == (1, 4)


def test_h2_client_through_tls_backend(tls_origins, meridian, pki):
    o = tls_origins("eu-h2")
    m = meridian(start=False, workers=1)
    h2c_port = free_port()
    listeners = [{"name": "main", "address": f"127.0.0.1:{m.port}"},
                 {"name": "h2c", "address": f"127.0.0.1:{h2c_port}", "h2c": True}]
    spec = dict(EU, backends=[o.address], tls={"ca_file": pki["ca"], "sni": NAME})
    m.write_config(geo_config(m.port, m.admin_port, [spec], listeners=listeners, workers=1))
    m.start()
    # nghttp: both requests on one connection (curl 7.88 cannot reuse a prior-knowledge
    # connection: curl/curl#10634)
    out = subprocess.run(["nghttp", "-nv", f"http://127.0.0.1:{h2c_port}/",
                          f"http://127.0.0.1:{h2c_port}/bytes/300000"],
                         capture_output=True, text=True, timeout=30 * SLOW)
    assert out.returncode == 0, out
    assert out.stdout.count(":status: 200") == 2, out.stdout[-2000:]
    assert sorted(r["target"] for r in o.records()) == ["/", "/bytes/300000"]


def test_big_bodies_both_ways(tls_origins, meridian, pki):
    o = tls_origins("eu-big")
    m = start(meridian, [o.address], {"ca_file": pki["ca"], "sni": NAME})
    body = pattern(3 * 1024 * 1024 + 17)
    r = request(m.port, "POST", "/echo", body=body, timeout=30 * SLOW)
    assert r.status == 200 and r.body == body
    status, got = get(m, "/bytes/5000001")
    assert status == 200 and len(got) == 5000001
    status, got = get(m, "/chunked/200000")
    assert status == 200 and len(got) == 200000


# ---- failures -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["wrong_name", "other_ca"])
def test_unverified_backend_is_502_and_marked_down(tls_origins, meridian, pki, case):
    o = tls_origins(f"eu-{case}")
    tls = {"ca_file": pki["ca"], "sni": "wrong.test"} if case == "wrong_name" else \
        {"ca_file": pki["other_ca"], "sni": NAME}
    hc = {"path": "/hc", "interval": f"{int(200 * SLOW)}ms", "timeout": f"{int(150 * SLOW)}ms",
          "rise": 1, "fall": 1}
    m = start(meridian, [o.address], tls, health_check=hc)
    reason = "hostname mismatch" if case == "wrong_name" else "unable to get local issuer"
    wait_for(lambda: only_backend(m)["health"] == "down", what="backend marked down")
    st = only_backend(m)
    assert "certificate verify failed" in st["last_error"] and reason in st["last_error"], st
    status, _ = get(m)
    assert status == 502 or status == 503, status
    # and when the region is all there is, passive marks alone: health checks off
    m2 = start(meridian, [o.address], tls)
    status, _ = get(m2)
    assert status == 502
    wait_for(lambda: f"certificate verify failed: {reason}" in m2.stderr(), what="reason logged")
    assert metric(m2, "meridian_upstream_tls_failures_total") >= 1
    assert o.records() == []  # nothing ever reached the backend


def test_health_checks_go_over_tls(tls_origins, meridian, pki):
    o = tls_origins("eu-hc")
    hc = {"path": "/hc", "interval": f"{int(100 * SLOW)}ms", "timeout": f"{int(90 * SLOW)}ms"}
    m = start(meridian, [o.address], {"ca_file": pki["ca"], "sni": NAME}, health_check=hc)
    wait_for(lambda: len([r for r in o.records() if r["target"] == "/hc"]) >= 3,
             what="three health checks")
    checks = [r for r in o.records() if r["target"] == "/hc"]
    assert all(r["tls"]["sni"] == NAME for r in checks)
    assert any(r["tls"]["resumed"] for r in checks[1:]), checks  # checks resume too
    assert only_backend(m)["health"] == "up"
    # a reload hands pools and checks the new generation's contexts while they run
    assert get(m) == (200, b"eu-hc\n")
    with open(m.config_path) as f:
        m.reload(f.read())
    seen = len(o.records())
    wait_for(lambda: len([r for r in o.records()[seen:] if r["target"] == "/hc"]) >= 2,
             what="checks after the reload")
    assert get(m) == (200, b"eu-hc\n")
    assert only_backend(m)["health"] == "up"


def test_client_certificate(tls_origins, meridian, pki):
    o = tls_origins("eu-mtls", client_ca=pki["client_ca"])
    cert, key = pki["client"]
    m = start(meridian, [o.address],
              {"ca_file": pki["ca"], "sni": NAME, "client_cert": cert, "client_key": key})
    assert get(m) == (200, b"eu-mtls\n")
    assert "CN=meridian-edge" in o.records()[0]["tls"]["client_cert"]
    # without one, the backend refuses the handshake
    m2 = start(meridian, [o.address], {"ca_file": pki["ca"], "sni": NAME})
    assert get(m2)[0] == 502
    assert len(o.records()) == 1


def test_backend_overrides_region(tls_origins, origins, meridian, pki):
    t = tls_origins("eu-t")
    plain = origins("eu-plain")
    backends = [{"address": plain.address, "tls": False},
                {"address": t.address, "tls": {"sni": NAME}}]
    # the region's sni is wrong; the TLS backend's own is right and keeps the region's ca_file
    m = start(meridian, backends, {"ca_file": pki["ca"], "sni": "wrong.test"})
    got = sorted(get(m)[1] for _ in range(4))
    assert got == [b"eu-plain\n"] * 2 + [b"eu-t\n"] * 2
    st = m.status()["regions"][0]["backends"]
    assert st[0]["tls"] is False and st[1]["sni"] == NAME


# ---- hostile backends ------------------------------------------------------------------------


class RawBackend:
    """A TCP listener on loopback (a port from free_port()) that is no TLS server: each
    connection, on a thread of its own, has its first TLS record read and noted in `hellos`
    (True for a ClientHello), then is handed to `behave(conn)`, whose result is noted with
    the time it came in `results`. Connections still open at close() are shut down."""

    def __init__(self, behave):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", free_port()))
        self.sock.listen(16)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.behave = behave
        self.hellos = []
        self.results = []
        self.conns = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._serve, daemon=True)]
        self.threads[0].start()

    def _serve(self):
        self.sock.settimeout(0.05)
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(10 * SLOW)
            self.conns.append(conn)
            t = threading.Thread(target=self._one, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _one(self, conn):
        try:
            head = read_exactly(conn, 5)  # type, version, length
            body = read_exactly(conn, int.from_bytes(head[3:5], "big"))
            self.hellos.append(head[0] == 0x16 and body[:1] == b"\x01")
            result = self.behave(conn)
            self.results.append((result, time.monotonic()))
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stopping.set()
        for conn in self.conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self.threads:
            t.join(timeout=5)
        self.sock.close()


def read_exactly(conn, n):
    data = b""
    while len(data) < n:
        got = conn.recv(n - len(data))
        if not got:
            raise ConnectionResetError(f"closed after {len(data)} of {n} bytes")
        data += got
    return data


def answers_in_clear(conn):
    """A plain HTTP server's answer where the ServerHello should be."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def closes_after_hello(conn):
    """Nothing: the connection is closed (a FIN, every byte read) once the hello is in."""


def stalls(conn):
    """No answer: waits until the peer closes (True) or sends more (False)."""
    return conn.recv(1) == b""


@pytest.mark.parametrize("behave, reason", [
    pytest.param(answers_in_clear, "wrong version number", id="clear_text"),
    pytest.param(closes_after_hello, "closed by the backend", id="closed"),
])
def test_a_backend_that_breaks_the_handshake_is_502_with_the_reason(meridian, pki, behave,
                                                                    reason):
    """A backend that took a ClientHello (Meridian spoke TLS) and then answers in clear text
    or closes is a failed connect: 502 (never its clear-text 200), the OpenSSL reason after
    "TLS handshake: " in the log with the backend's address, and one TLS failure, one
    connect failure and no handshake in /metrics. One connection: one backend, nowhere to
    retry. Meridian keeps serving."""
    b = RawBackend(behave)
    try:
        m = start(meridian, [b.address], {"ca_file": pki["ca"], "sni": NAME})
        status, body = get(m)
        assert status == 502, (status, body)
        wait_for(lambda: f"to {b.address}: connect failed: TLS handshake: " in m.stderr(),
                 what="the handshake failure logged")
        line = next(l for l in m.stderr().splitlines() if "connect failed: TLS handshake: " in l)
        assert reason in line, line
        assert b.hellos == [True]
        assert metric(m, "meridian_upstream_tls_failures_total") == 1
        assert metric(m, "meridian_upstream_connect_failures_total") == 1
        assert handshakes(m) == (0, 0)
        assert m.healthy()
    finally:
        b.close()


def test_a_handshake_that_stalls_ends_at_the_connect_timeout(meridian, pki):
    """A backend that accepts, takes the ClientHello and never answers holds the request no
    longer than upstream_connect (the handshake is part of connecting; upstream_response,
    far longer here, does not apply yet): 504 at that timeout, "connect timed out in the TLS
    handshake" logged with the backend's address and counted as a connect failure and as a
    TLS failure, and the connection closed by Meridian then. One connection: one backend,
    nowhere to retry."""
    timeout = 0.3 * SLOW
    b = RawBackend(stalls)
    try:
        m = start(meridian, [b.address], {"ca_file": pki["ca"], "sni": NAME},
                  timeouts={"upstream_connect": f"{int(timeout * 1000)}ms",
                            "upstream_response": f"{int(20 * timeout * 1000)}ms"})
        t0 = time.monotonic()
        status, body = get(m)
        took = time.monotonic() - t0
        assert status == 504, (status, body)
        assert timeout * 0.9 <= took < timeout * 2, f"504 after {took:.2f}s"
        assert f"to {b.address}: connect timed out in the TLS handshake" in m.stderr(), \
            m.stderr()
        assert b.hellos == [True]
        assert metric(m, "meridian_upstream_connect_failures_total") == 1
        assert metric(m, "meridian_upstream_tls_failures_total") == 1
        assert handshakes(m) == (0, 0)
        # the stalled connection is closed, not left to the backend
        (closed, at), = wait_for(lambda: b.results, timeout=2, what="the backend to see EOF")
        assert closed is True and at - t0 < took + 0.5 * SLOW, (closed, at - t0, took)
        assert m.healthy()
    finally:
        b.close()


# ---- configuration --------------------------------------------------------------------------


def test_bad_tls_settings_refused_with_line(meridian, tmp_path, pki):
    m = meridian(start=False, workers=1)
    spec = dict(EU, backends=["127.0.0.1:9"], tls={"ca_file": pki["ca"], "sni": "127.0.0.1"})
    text = geo_config(m.port, m.admin_port, [spec], workers=1)
    m.write_config(text)
    out = subprocess.run([MERIDIAN_BIN, "-t", "-c", m.config_path], capture_output=True,
                         text=True)
    assert out.returncode != 0
    line = config_line(text, '  - { name: "eu"')
    assert f"{m.config_path}:{line}: regions[0].tls.sni: expected a host name" in out.stderr, \
        out.stderr


def test_reload_with_missing_ca_keeps_running(tls_origins, meridian, pki, tmp_path):
    o = tls_origins("eu-reload")
    m = start(meridian, [o.address], {"ca_file": pki["ca"], "sni": NAME})
    assert get(m) == (200, b"eu-reload\n")
    spec = dict(EU, backends=[o.address], tls={"ca_file": str(tmp_path / "nope.pem"), "sni": NAME})
    m.reload(geo_config(m.port, m.admin_port, [spec], workers=1), expect_success=False)
    assert "nope.pem" in m.stderr()
    assert get(m) == (200, b"eu-reload\n")
