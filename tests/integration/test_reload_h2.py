# SPDX-License-Identifier: MIT
"""Reload without losing a request, HTTP/2 included (issue 8).

A reload that keeps a listener and its TLS settings leaves the HTTP/2 connections on it alone:
no GOAWAY; new streams take the new generation, and changed http2 settings arrive in a SETTINGS
frame. A connection that must go (its listener removed, its TLS settings or h2c changed) gets
RFC 9113 6.8's two-step GOAWAY: a notice (last stream 2^31-1) with a PING, streams opened
meanwhile still served, then the final GOAWAY with the real last stream after the PING's ACK
(or a second), and no stream is cut.

Under load: 20 SIGHUPs every 0.5 s (two valid configs and, every third, an invalid one) while
h2load (h2c and TLS) or wrk run must fail no request, and /status and /metrics must show the
generation moved by the valid reloads and the refused ones counted."""
import re
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import SLOW, free_port, geo_config, port_accepts, wait_for
from util_tls import (ACK, DATA, END_STREAM, GOAWAY, HEADERS, NO_ERROR, PING, RST_STREAM,
                      S_INITIAL_WINDOW_SIZE, S_MAX_CONCURRENT_STREAMS, S_MAX_HEADER_LIST_SIZE,
                      SETTINGS, RawH2, make_cert, ping_frame, request_headers, settings_frame)

MODES = ["tls", "h2c"]
LAST_STREAM_MAX = 2**31 - 1
SANITIZED = SLOW > 1
# Sanitizer builds are several times slower: the same schedule with a lighter load.
H2LOAD_CLIENTS = 4 if SANITIZED else 20
WRK_CONNECTIONS = 10 if SANITIZED else 50
RELOADS = 20
RELOAD_EVERY_S = 0.5


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("certs"), "a", ["a.test", "localhost"])


def config_text(m, cert, backends, *, https=True, plain=True, h2c=True, http2=None,
                protocols=None, timeouts=None, workers=2):
    """An HTTPS listener (ALPN h2, http/1.1) on m.port and a plain one on m.plain_port (h2c
    unless told otherwise), either of which can be left out; one region `eu`. http2 and
    timeouts: dicts."""
    listeners = []
    if https:
        tls = {"certificates": [{"cert": cert.cert, "key": cert.key}]}
        if protocols:
            tls["protocols"] = protocols
        listeners.append({"name": "https", "address": f"127.0.0.1:{m.port}", "tls": tls})
    if plain:
        listeners.append({"name": "plain", "address": f"127.0.0.1:{m.plain_port}", "h2c": h2c})
    return geo_config(m.port, m.admin_port,
                      [{"name": "eu", "lat": 50.0, "lon": 8.0, "backends": backends}],
                      listeners=listeners, workers=workers, http2=http2,
                      timeouts=timeouts or {"upstream_response": "10s", "shutdown": "5s"})


@pytest.fixture
def env(origins, meridian, cert):
    """One origin behind a two-worker Meridian with both listeners; m.config(**kw) gives a
    config text for a reload."""
    o = origins("eu-a")
    m = meridian(start=False, config_text="# replaced below\n")
    m.plain_port = free_port()
    m.config = lambda **kw: config_text(m, cert, [o.address], **kw)
    m.write_config(m.config())
    m.start()
    wait_for(lambda: port_accepts(m.plain_port), what="meridian plain listener")
    return o, m


# --- counters --------------------------------------------------------------------------------


def metric(m, name, labels=""):
    text = m.admin("/metrics")[1].decode()
    found = re.search(rf"^{re.escape(name + labels)} (\d+)$", text, re.M)
    assert found, f"no {name}{labels} in /metrics"
    return int(found.group(1))


def reload_counters(m):
    st = m.status()
    return {"generation": m.generation(),
            "metrics_generation": metric(m, "meridian_config_generation"),
            "ok": metric(m, "meridian_config_reloads_total", '{result="ok"}'),
            "failed": metric(m, "meridian_config_reloads_total", '{result="failed"}'),
            "status_ok": st["reloads"]["ok"], "status_failed": st["reloads"]["failed"]}


def total_requests(m):
    return sum(w["requests"] for w in m.status()["workers"])


# --- 20 reloads under load -------------------------------------------------------------------


def reload_storm(m):
    """RELOADS SIGHUPs, one every RELOAD_EVERY_S seconds: the two valid configs in turn, an
    invalid one every third. Each is waited for (the generation on every worker, or the
    refusal in the log) so that no two signals merge into one; the schedule is kept by the
    clock (pacing, not readiness). Returns (valid, invalid) counts."""
    valid_configs = [
        m.config(http2={"max_concurrent_streams": 64, "initial_window_size": 262144,
                        "max_header_list_size": 32768},
                 timeouts={"upstream_response": "9s", "shutdown": "5s"}),
        m.config(),
    ]
    invalid = m.config(timeouts={"upstream_response": "9s", "shutdown": "ten"})
    before = reload_counters(m)
    t0 = time.monotonic()
    nvalid = ninvalid = 0
    for i in range(RELOADS):
        if i % 3 == 2:
            m.reload(invalid, expect_success=False)
            ninvalid += 1
        else:
            m.reload(valid_configs[nvalid % 2])
            nvalid += 1
        time.sleep(max(0.0, t0 + (i + 1) * RELOAD_EVERY_S - time.monotonic()))
    after = reload_counters(m)
    # (c) /status and /metrics: the generation moved by the valid reloads only, and the
    # refused ones are counted.
    assert after["generation"] == before["generation"] + nvalid, (before, after)
    assert after["metrics_generation"] == after["generation"], after
    assert all(w["generation"] == after["generation"] for w in m.status()["workers"])
    assert after["ok"] == before["ok"] + nvalid, (before, after)
    assert after["failed"] == before["failed"] + ninvalid, (before, after)
    assert after["status_ok"] == after["ok"] and after["status_failed"] == after["failed"], after
    return nvalid, ninvalid


def load_duration_s():
    # The storm takes RELOADS * RELOAD_EVERY_S seconds; the load must outlast it.
    return int(RELOADS * RELOAD_EVERY_S + 1.5 * SLOW + 1)


def run_during_storm(m, cmds):
    """Start the load commands, wait until requests flow, run the reload storm, and return
    the commands' outputs once they end."""
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for cmd in cmds]
    try:
        start = total_requests(m)
        wait_for(lambda: total_requests(m) >= start + 200, timeout=5, what="load to build up")
        nvalid, ninvalid = reload_storm(m)
        assert (nvalid, ninvalid) == (14, 6)
        still = [p.poll() is None for p in procs]
        assert all(still), "the load ended before the reloads did: " + \
            "".join(p.communicate()[0] for p in procs if p.poll() is not None)
        return [p.communicate(timeout=30 * SLOW)[0] + f"\n(exit {p.returncode})"
                for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_h2load_h2c_and_tls_lose_nothing_over_20_reloads(env):
    o, m = env
    d = load_duration_s()
    common = ["h2load", "-c", str(H2LOAD_CLIENTS), "-m", "10", "-D", str(d)]
    outs = run_during_storm(m, [common + [f"http://127.0.0.1:{m.plain_port}/"],
                                common + [f"https://127.0.0.1:{m.port}/"]])
    for out, proto in zip(outs, ("h2c", "h2")):
        print(f"h2load {proto}:", *re.findall(r"^(?:finished in|requests:).*$", out, re.M))
        assert out.endswith("(exit 0)"), out
        assert re.search(rf"^Application protocol: {proto}$", out, re.M), out
        r = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                      r"(\d+) failed, (\d+) errored", out)
        assert r, out
        total, started, done, ok, failed, errored = map(int, r.groups())
        assert failed == 0 and errored == 0, out
        assert done > 1000 and ok == done, out
        s = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
        assert s and int(s.group(1)) == ok and s.groups()[1:] == ("0", "0", "0"), out


def test_wrk_loses_nothing_over_20_reloads(env):
    o, m = env
    d = load_duration_s()
    (out,) = run_during_storm(m, [["wrk", "-t2", f"-c{WRK_CONNECTIONS}", f"-d{d}s",
                                   "--timeout", "5s", f"http://127.0.0.1:{m.plain_port}/"]])
    print("wrk:", *re.findall(r"^\s*(?:\d+ requests in|Requests/sec).*$", out, re.M))
    assert out.endswith("(exit 0)"), out
    r = re.search(r"^\s*(\d+) requests in", out, re.M)
    assert r and int(r.group(1)) > 1000, out
    assert "Socket errors" not in out, out
    assert "Non-2xx or 3xx responses" not in out, out


# --- one connection, frame by frame ----------------------------------------------------------


def raw_client(m, mode):
    """A RawH2 on the HTTPS (ALPN h2) or the h2c listener, server SETTINGS acknowledged."""
    c = RawH2(m.port, tls=True) if mode == "tls" else RawH2(m.plain_port)
    assert c.until(lambda c: c.of_type(SETTINGS), 5), "no SETTINGS from meridian"
    c.send(settings_frame(ack=True))
    return c


def goaways(c):
    """(last stream id, error code) of every GOAWAY received, in order."""
    out = []
    for f in c.of_type(GOAWAY):
        last, code = struct.unpack(">II", f.payload[:8])
        out.append((last & LAST_STREAM_MAX, code))
    return out


def server_pings(c):
    return [f for f in c.of_type(PING) if not f.flags & ACK]


def ping_acked(c, payload):
    return any(f.flags & ACK and f.payload == payload for f in c.of_type(PING))


def server_settings(c):
    """The non-ACK SETTINGS frames received, as {id: value} each."""
    out = []
    for f in c.of_type(SETTINGS):
        if not f.flags & ACK:
            out.append({k: v for k, v in (struct.unpack(">HI", f.payload[i:i + 6])
                                          for i in range(0, len(f.payload), 6))})
    return out


def wait_at_origin(o, target):
    wait_for(lambda: any(r["target"] == target for r in o.records()), timeout=5,
             what=f"{target} at the origin")


def first_end(c, sid):
    """Index in c.frames of the frame that ended stream sid."""
    return next(i for i, f in enumerate(c.frames)
                if f.sid == sid and f.flags & END_STREAM and f.type in (DATA, HEADERS))


# (mode, what the reload changes, whether the client acknowledges the notice's PING)
MUST_GO = [
    ("h2c", "listener-removed", "ack"),
    ("tls", "listener-removed", "no-ack"),
    ("tls", "tls-settings", "ack"),
    ("h2c", "h2c-off", "no-ack"),
    ("tls", "sigterm", "ack"),
]


@pytest.mark.parametrize("mode,change,ping", MUST_GO, ids=["-".join(p) for p in MUST_GO])
def test_a_connection_that_must_go_gets_the_two_step_goaway(env, mode, change, ping):
    o, m = env
    new = {"listener-removed": m.config(https=mode != "tls", plain=mode != "h2c"),
           "tls-settings": m.config(protocols=["TLSv1.3"]),
           "h2c-off": m.config(h2c=False)}.get(change)
    with raw_client(m, mode) as c:
        c.send(c.headers_frame(1, request_headers("/delay/1500?slow")))
        wait_at_origin(o, "/delay/1500?slow")
        if new:
            m.reload(new)
        else:
            m.proc.send_signal(signal.SIGTERM)  # a graceful stop closes the same way

        # Step one: GOAWAY(2^31-1, NO_ERROR) and a PING, while the slow stream runs.
        assert c.until(lambda c: goaways(c) or c.closed, 2), f"no GOAWAY: {c.frames}"
        t_notice = time.monotonic()
        assert goaways(c)[0] == (LAST_STREAM_MAX, NO_ERROR), c.frames
        assert c.until(lambda c: server_pings(c), 2), f"no PING with the notice: {c.frames}"
        assert not c.stream_ended(1), "the slow stream ended before the reload: nothing tested"

        # A stream opened after the notice is served, not refused.
        req = c.headers_frame(3, request_headers("/?after-notice"))
        if ping == "ack":
            req += ping_frame(server_pings(c)[0].payload, ack=True)
        t_sent = time.monotonic()
        c.send(req)

        # Step two: the real last stream, once the PING came back (or a second passed).
        assert c.until(lambda c: len(goaways(c)) >= 2 or c.closed, 3), \
            f"no second GOAWAY: {c.frames}"
        t_final = time.monotonic()
        assert goaways(c)[1] == (3, NO_ERROR), c.frames
        if ping == "ack":
            assert t_final - t_sent < min(0.5 * SLOW, 0.9), t_final - t_sent
        else:
            assert 0.8 <= t_final - t_notice <= 1.0 + 0.5 * SLOW, t_final - t_notice

        # Nothing is cut: both streams complete, the slow one after the final GOAWAY.
        assert c.until(lambda c: c.stream_ended(1) and c.stream_ended(3), 5), c.frames
        assert c.status_of(3) == 200 and c.body(3) == b"eu-a\n"
        assert c.status_of(1) == 200 and c.body(1) == b"eu-a\n"
        assert c.frames.index(c.of_type(GOAWAY)[1]) < first_end(c, 1)
        assert not c.of_type(RST_STREAM), c.frames
        assert len(goaways(c)) == 2, c.frames
        assert c.wait_closed(5), "connection left open after its last stream"
    if change == "sigterm":
        assert m.proc.wait(timeout=10 * SLOW) == 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("change", ["http2", "other"])
def test_a_reload_that_keeps_the_listener_sends_no_goaway(env, mode, change):
    o, m = env
    with raw_client(m, mode) as c:
        assert len(server_settings(c)) == 1
        assert server_settings(c)[0][S_MAX_HEADER_LIST_SIZE] == 65536
        c.send(c.headers_frame(1, request_headers("/delay/1000?in-flight")))
        wait_at_origin(o, "/delay/1000?in-flight")
        if change == "http2":
            m.reload(m.config(http2={"max_concurrent_streams": 50, "initial_window_size": 100000,
                                     "max_header_list_size": 4096}))
        else:
            m.reload(m.config(timeouts={"upstream_response": "8s", "shutdown": "4s"}))
        # Whatever the reload sent on this connection comes before this PING's ACK.
        c.send(ping_frame(b"reloadd?"))
        assert c.until(lambda c: ping_acked(c, b"reloadd?") or c.closed, 5), c.frames
        assert c.goaway() is None and not c.closed, c.frames

        big = [("x-big", "b" * 6000)]  # fits 65536, not 4096
        if change == "http2":
            assert len(server_settings(c)) == 2, c.frames
            assert server_settings(c)[1] == {S_MAX_CONCURRENT_STREAMS: 50,
                                             S_INITIAL_WINDOW_SIZE: 100000,
                                             S_MAX_HEADER_LIST_SIZE: 4096}
            # Until the client acknowledges them, the old limits hold: a stream sent under
            # them is served ...
            c.send(c.headers_frame(3, request_headers("/?before-ack", extra=big)))
            assert c.until(lambda c: c.stream_ended(3) or c.closed, 5), c.frames
            assert c.status_of(3) == 200, c.frames
            # ... and once it has, the new ones do.
            c.send(settings_frame(ack=True) +
                   c.headers_frame(5, request_headers("/?after-ack", extra=big)))
            assert c.until(lambda c: c.stream_ended(5) or c.closed, 5), c.frames
            assert c.status_of(5) == 431, c.frames
            # New connections start with the new settings.
            with raw_client(m, mode) as c2:
                assert server_settings(c2)[0][S_MAX_CONCURRENT_STREAMS] == 50, c2.frames
        else:
            assert len(server_settings(c)) == 1, c.frames
            c.send(c.headers_frame(3, request_headers("/?after-reload", extra=big)))
            assert c.until(lambda c: c.stream_ended(3) or c.closed, 5), c.frames
            assert c.status_of(3) == 200, c.frames

        # The request in flight finishes on the same connection, and nothing said goodbye.
        assert c.until(lambda c: c.stream_ended(1) or c.closed, 5), c.frames
        assert c.status_of(1) == 200 and c.body(1) == b"eu-a\n"
        c.send(ping_frame(b"settled?"))
        assert c.until(lambda c: ping_acked(c, b"settled?") or c.closed, 5), c.frames
        assert c.goaway() is None and not c.closed and not c.of_type(RST_STREAM), c.frames


@pytest.mark.parametrize("change", ["listener-removed", "tls-settings"])
def test_a_tls_handshake_in_flight_on_a_listener_that_must_go_is_closed(env, change):
    """A connection still in its TLS handshake when a reload removes or changes its listener
    would finish under settings that are gone, and never hear a GOAWAY: it is closed (the
    client retries on the new settings). One on a listener that stays is left alone."""
    o, m = env
    new = {"listener-removed": m.config(https=False),
           "tls-settings": m.config(protocols=["TLSv1.3"])}[change]
    stays = socket.create_connection(("127.0.0.1", m.plain_port), timeout=5)
    pending = socket.create_connection(("127.0.0.1", m.port), timeout=5)
    try:
        # The TCP connection is accepted and its handshake begun (nothing sent yet).
        wait_for(lambda: sum(w["connections"] for w in m.status()["workers"]) >= 2,
                 what="both connections accepted")
        m.reload(new)
        pending.settimeout(3 * SLOW)  # well inside client_header (the handshake's deadline)
        assert pending.recv(1) == b"", "the pending handshake's connection is still open"
        stays.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert stays.recv(12).startswith(b"HTTP/1.1 200"), "the plain connection was cut"
    finally:
        pending.close()
        stays.close()
