# SPDX-License-Identifier: MIT
"""Backend health, black-box: active checks mark killed, stopped and failing backends down
within their bounds and bring them back after `rise` passes; clients of a region left with no
healthy backend go to the next nearest region without failed requests (beyond those in flight
when the backend died) and come back; passive checks count real traffic's connection
failures; a region short of healthy backends spills part of its traffic; no region healthy is
a quick 503 with Retry-After; health survives a reload; least_outstanding avoids a slow
backend; /status, /route and the access log say what happened.

Clients are placed with X-Forwarded-For from the trusted 127.0.0.1 (GB: eu, Seattle:
us-west), using MaxMind's City test database (see test_geo.py)."""
import os
import signal
import socket
import threading
import time

import pytest

from conftest import (SLOW, access_log_by_client, access_log_lines, backend_states, free_port,
                      geo_config, region_status, wait_backends, wait_for)
from test_geo import CITY_DB, route
from util_http import RawConn, ScriptedBackend, build, read_request_head, request
from util_tls import H2Client

pytestmark = pytest.mark.skipif(not os.path.exists(CITY_DB),
                                reason=f"MaxMind test database not found: {CITY_DB}")

# Check settings (scaled for sanitizer builds, where a check may itself be slow).
IV = int(200 * SLOW)   # interval, ms
TO = int(150 * SLOW)   # timeout, ms
RISE, FALL = 2, 2
HC = {"path": "/", "interval": f"{IV}ms", "timeout": f"{TO}ms", "rise": RISE, "fall": FALL,
      "expect_status": 200, "passive": True}
TRUST = {"trusted_proxies": ["127.0.0.1/32"]}
TIMEOUTS = {"upstream_connect": "1s", "upstream_response": "3s", "shutdown": "2s"}
# Slack for polling /status and scheduling, on top of each bound.
SLACK = 0.25 * SLOW

GB = [("X-Forwarded-For", "81.2.69.142")]          # nearest: eu
SEATTLE = [("X-Forwarded-For", "216.160.83.56")]   # nearest: us-west

PLACES = {"eu": (50.11, 8.68), "us-east": (39.04, -77.49), "us-west": (37.34, -121.89),
          "ap": (1.35, 103.82), "sa": (-23.55, -46.63)}


class Setup:
    """Origins and a Meridian with health checks. layout: [(region, [backend spec])], the
    first region the default; a backend spec is an origin name (started here), or an
    "address" string used as is (a dead port, a scripted backend)."""

    def __init__(self, origins, meridian, layout, region_extra=None, access_log=None,
                 **sections):
        self.origins = {}
        self.layout = []
        for region, specs in layout:
            addrs = []
            for spec in specs:
                if ":" in spec:
                    addrs.append(spec)
                else:
                    o = origins(spec)
                    self.origins[spec] = o
                    addrs.append(o.address)
            self.layout.append((region, addrs))
        self.region_extra = region_extra or {}
        self.access_log = access_log
        self.sections = {"client_ip": TRUST, "geoip": {"database": CITY_DB},
                         "health_check": HC, "timeouts": TIMEOUTS}
        self.sections.update(sections)
        self.m = meridian(start=False)
        self.m.write_config(self.config())
        self.m.start()

    def config(self, layout=None, region_extra=None, **changes):
        sections = dict(self.sections)
        sections.update(changes)
        regions = []
        for i, (name, addrs) in enumerate(layout or self.layout):
            lat, lon = PLACES[name]
            r = {"name": name, "lat": lat, "lon": lon, "backends": addrs}
            r.update((region_extra if region_extra is not None else self.region_extra)
                     .get(name, {}))
            if i == 0:
                r["default"] = True
            regions.append(r)
        return geo_config(self.m.port, self.m.admin_port, regions,
                          access_log=self.access_log, **sections)

    def addr(self, name):
        return self.origins[name].address

    def wait(self, timeout=10.0, **states):
        """wait(eu_1="up", ...) by origin name ('-' written '_'), or wait(addrs={addr: state})."""
        want = dict(states.pop("addrs", {}))
        for name, state in states.items():
            want[self.addr(name.replace("_", "-"))] = state
        return wait_backends(self.m, want, timeout=timeout)

    def wait_all_up(self):
        want = {a: "up" for _, addrs in self.layout for a in addrs}
        return wait_backends(self.m, want)

    def who(self, headers=GB, path="/"):
        r = request(self.m.port, "GET", path, headers=list(headers), timeout=5)
        return r.status, r.body.decode(errors="replace").strip()


@pytest.fixture
def setup(origins, meridian):
    def make(layout, **kw):
        return Setup(origins, meridian, layout, **kw)
    return make


def dead_address():
    """A loopback address nobody listens on (connections are refused)."""
    return f"127.0.0.1:{free_port()}"


class Blackhole:
    """Accepts connections (the kernel completes the handshake) and never answers."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", free_port()))
        self.sock.listen(1024)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


@pytest.fixture
def blackhole():
    made = []

    def make():
        b = Blackhole()
        made.append(b)
        return b
    yield make
    for b in made:
        b.close()


class ClientLoop:
    """`threads` clients sending GETs in a loop on fresh connections until stopped; each
    result is (start, end, status or None, body or error)."""

    def __init__(self, port, headers, threads=4):
        self.port = port
        self.headers = list(headers)
        self.results = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self):
        while not self.stopping.is_set():
            t0 = time.monotonic()
            try:
                r = request(self.port, "GET", "/", headers=self.headers, timeout=5)
                res = (t0, time.monotonic(), r.status, r.body.decode(errors="replace").strip())
            except Exception as e:  # noqa: BLE001 - a failed request is a result
                res = (t0, time.monotonic(), None, repr(e))
            with self.lock:
                self.results.append(res)

    def count(self, since=None):
        """Requests finished so far (only those started after `since`, if given)."""
        with self.lock:
            if since is None:
                return len(self.results)
            return sum(1 for r in self.results if r[0] > since)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=10 * SLOW)
        assert not any(t.is_alive() for t in self.threads), "a client is stuck"
        return list(self.results)


# ---- /status ----------------------------------------------------------------------------------


def test_status_reports_each_backends_health(setup):
    dead = dead_address()
    t0_ms = time.time() * 1000
    s = setup([("eu", ["eu-1", "eu-2"]), ("us-east", ["us-east-1", dead])])
    s.wait(eu_1="up", eu_2="up", us_east_1="up", addrs={dead: "down"})
    eu = region_status(s.m, "eu")
    assert [b["address"] for b in eu["backends"]] == [s.addr("eu-1"), s.addr("eu-2")]
    assert eu["healthy"] == 2
    assert eu["failovers_in"] == 0 and eu["failovers_out"] == 0, eu
    for b in eu["backends"]:
        assert b["state"] == "up" and b["last_status"] == 200, b
        assert t0_ms - 1000 <= b["last_check_ms"] <= time.time() * 1000 + 1000, b
    us = region_status(s.m, "us-east")
    assert us["healthy"] == 1
    bad = [b for b in us["backends"] if b["address"] == dead][0]
    assert bad["state"] == "down" and bad["last_error"], bad
    assert s.m.admin("/healthz")[0] == 200


# ---- failover and recovery --------------------------------------------------------------------


def test_killed_region_fails_over_and_its_clients_come_back(setup):
    s = setup([("eu", ["eu-1", "eu-2"]), ("us-east", ["us-east-1"]),
               ("us-west", ["us-west-1"])])
    s.wait_all_up()
    assert s.who()[1] in ("eu-1", "eu-2")
    nthreads = 4
    loop = ClientLoop(s.m.port, GB, threads=nthreads)
    try:
        wait_for(lambda: loop.count() >= 40, timeout=10, what="traffic before the kill")
        t_kill = time.monotonic()
        for name in ("eu-1", "eu-2"):
            s.origins[name].proc.send_signal(signal.SIGKILL)
        for name in ("eu-1", "eu-2"):
            s.origins[name].proc.wait()
        t_dead = time.monotonic()
        t_down = s.wait(eu_1="down", eu_2="down")
        wait_for(lambda: loop.count(since=t_down + 0.05 * SLOW) >= 60, timeout=10,
                 what="traffic after the failover")
        t_restart = time.monotonic()
        for name in ("eu-1", "eu-2"):
            s.origins[name].start()          # same port, same record file
        t_up = s.wait(eu_1="up", eu_2="up")
        wait_for(lambda: loop.count(since=t_up + 0.05 * SLOW) >= 60, timeout=10,
                 what="traffic after recovery")
    finally:
        results = loop.stop()

    # Marked down within interval x fall + one interval (the refused check fails at once).
    bound_down = IV * (FALL + 1) / 1000 + SLACK
    assert t_down - t_kill <= bound_down, (t_down - t_kill, bound_down)
    # Back after rise passes.
    bound_up = IV * (RISE + 1) / 1000 + SLACK
    assert t_up - t_restart <= bound_up, (t_up - t_restart, bound_up)

    # Only requests in flight when the backends died may fail: one per client at most, and
    # none that started once they were gone.
    failed = [r for r in results if r[2] != 200]
    late = [r for r in failed if r[0] > t_dead]
    assert not late, f"failed after the kill (at {t_dead}): {late[:10]}"
    assert len(failed) <= nthreads, f"{len(failed)} failed requests: {failed[:10]}"
    before = [r[3] for r in results if r[1] < t_kill and r[2] == 200]
    during = [r[3] for r in results if t_down + 0.05 * SLOW < r[0] and r[1] < t_restart
              and r[2] == 200]
    after = [r[3] for r in results if r[0] > t_up + 0.05 * SLOW and r[2] == 200]
    assert before and set(before) <= {"eu-1", "eu-2"}, set(before)
    assert len(during) >= 20 and set(during) == {"us-east-1"}, set(during)
    assert len(after) >= 20 and set(after) <= {"eu-1", "eu-2"}, set(after)
    eu, us = region_status(s.m, "eu"), region_status(s.m, "us-east")
    assert eu["failovers_out"] >= len(during), eu
    assert us["failovers_in"] >= len(during), us
    assert region_status(s.m, "us-west")["failovers_in"] == 0


def test_first_request_after_a_region_dies_goes_to_the_next_region(setup):
    # The checks have not noticed yet (30 s interval, passive needs `fall` failures): a
    # request that finds every backend of its region refusing must not fail for it.
    hc = dict(HC, interval="30s", timeout="1s")
    s = setup([("eu", ["eu-1"]), ("us-east", ["us-east-1"])], health_check=hc)
    s.wait_all_up()
    assert s.who() == (200, "eu-1")
    s.origins["eu-1"].proc.send_signal(signal.SIGKILL)
    s.origins["eu-1"].proc.wait()
    got = [s.who() for _ in range(FALL + 2)]
    assert got == [(200, "us-east-1")] * (FALL + 2), got


def test_killed_backend_is_marked_down_and_up_by_active_checks_within_bounds(setup):
    # Passive checks off and no traffic: only the active checks can tell.
    s = setup([("eu", ["eu-1", "eu-2"]), ("us-east", ["us-east-1"])],
              health_check=dict(HC, passive=False))
    s.wait_all_up()
    # Until the checks notice, a request that finds eu-1 refusing is retried on eu-2.
    loop = ClientLoop(s.m.port, GB, threads=2)
    try:
        wait_for(lambda: loop.count() >= 20, timeout=10, what="traffic before the kill")
        t_kill = time.monotonic()
        s.origins["eu-1"].proc.send_signal(signal.SIGKILL)
        s.origins["eu-1"].proc.wait()
        t_down = s.wait(eu_1="down")
        wait_for(lambda: loop.count(since=t_down) >= 20, timeout=10, what="traffic after")
    finally:
        results = loop.stop()
    assert t_down - t_kill <= IV * (FALL + 1) / 1000 + SLACK, t_down - t_kill
    failed = [r for r in results if r[2] != 200]
    assert len(failed) <= 2, failed[:10]
    assert {r[3] for r in results if r[0] > t_down and r[2] == 200} == {"eu-2"}
    assert backend_states(s.m)[s.addr("eu-2")] == "up"
    assert region_status(s.m, "eu")["healthy"] == 1
    # Up again after `rise` passes, not one (the first result only decides for a backend
    # never checked).
    o = s.origins["eu-1"]
    seen_before = len(o.records())
    t_restart = time.monotonic()
    o.start()
    t_up = s.wait(eu_1="up")
    checks = len(o.records()) - seen_before   # nothing else reaches a backend marked down
    assert t_up - t_restart <= IV * (RISE + 1) / 1000 + SLACK, t_up - t_restart
    assert checks >= RISE, f"up after {checks} passed checks"
    assert region_status(s.m, "eu")["healthy"] == 2


def test_stopped_backend_is_marked_down_by_the_check_timeout(setup):
    s = setup([("eu", ["eu-1"]), ("us-east", ["us-east-1"])])
    s.wait_all_up()
    proc = s.origins["eu-1"].proc
    proc.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        t_down = s.wait(eu_1="down")
        # fall checks, each given `timeout`, one interval apart, plus the one in progress.
        bound = (IV * (FALL + 1) + TO) / 1000 + SLACK
        assert t_down - t0 <= bound, (t_down - t0, bound)
        err = [b for b in region_status(s.m, "eu")["backends"]][0]["last_error"]
        assert err, "a timed-out check gives a reason"
        assert s.who() == (200, "us-east-1")
    finally:
        proc.send_signal(signal.SIGCONT)
    t0 = time.monotonic()
    t_up = s.wait(eu_1="up")
    assert t_up - t0 <= (IV * (RISE + 1) + TO) / 1000 + SLACK, t_up - t0
    wait_for(lambda: s.who() == (200, "eu-1"), timeout=2, what="GB back on eu")


def test_no_healthy_region_is_a_quick_503_with_retry_after(setup):
    dead = [dead_address() for _ in range(3)]
    s = setup([("eu", dead[:2]), ("us-east", dead[2:])])
    s.wait(addrs={a: "down" for a in dead})
    for headers in (GB, SEATTLE, []):
        t0 = time.monotonic()
        r = request(s.m.port, "GET", "/", headers=headers, timeout=5)
        elapsed = time.monotonic() - t0
        assert r.status == 503, (r.status, r.body)
        retry = r.header("retry-after")
        assert retry is not None and retry.strip().isdigit(), retry
        assert 0 < len(r.body) <= 512, r.body
        assert elapsed < 1.0 * SLOW, elapsed
    assert s.m.admin("/healthz")[0] == 200
    status, _, j = route(s.m, "81.2.69.142")
    assert status == 200 and j["chosen"] is None and j["nearest"] == "eu", j
    assert all(r["up"] == 0 for r in j["regions"]), j


def test_failover_shows_in_route_access_log_and_counters(setup, tmp_path):
    log = tmp_path / "failover-access.log"
    dead = dead_address()
    s = setup([("eu", [dead]), ("us-east", ["us-east-1"])], access_log=str(log))
    s.wait(addrs={dead: "down"}, us_east_1="up")
    assert s.who(GB) == (200, "us-east-1")
    assert s.who([("X-Forwarded-For", "149.101.100.5")]) == (200, "us-east-1")

    status, _, j = route(s.m, "81.2.69.142")
    assert status == 200
    assert (j["nearest"], j["chosen"], j["failed_over"]) == ("eu", "us-east", True), j
    assert j["regions"][0]["name"] == "eu" and j["regions"][0]["up"] == 0, j
    assert j["regions"][1]["name"] == "us-east" and j["regions"][1]["up"] == 1, j

    by = access_log_by_client(log, 2)
    a, b = by["81.2.69.142"], by["149.101.100.5"]
    assert (a["client_ip"], a["country"], a["region"], a["failover"], a["status"]) == \
        ("81.2.69.142", "GB", "us-east", True, 200), a
    assert (b["country"], b["region"], b["failover"]) == ("US", "us-east", False), b
    assert region_status(s.m, "eu")["failovers_out"] == 1
    assert region_status(s.m, "us-east")["failovers_in"] == 1


# ---- passive checks ---------------------------------------------------------------------------


@pytest.mark.parametrize("passive", [True, False])
def test_passive_failures_count_between_active_checks(setup, passive):
    # A long interval: once the first check has passed, only real traffic can tell.
    hc = dict(HC, interval="30s", timeout="1s", passive=passive)
    s = setup([("eu", ["eu-1", "eu-2"]), ("us-east", ["us-east-1"])], health_check=hc)
    s.wait_all_up()
    s.origins["eu-1"].proc.send_signal(signal.SIGKILL)
    s.origins["eu-1"].proc.wait()
    for _ in range(20):
        s.who()
    if passive:
        # Well before the next active check (30 s away).
        s.wait(eu_1="down", timeout=2)
        # Only the healthy one takes traffic now.
        for _ in range(6):
            assert s.who() == (200, "eu-2")
    else:
        assert backend_states(s.m)[s.addr("eu-1")] == "up"


# ---- spilling ---------------------------------------------------------------------------------


def _share(s, n, headers=GB):
    """Where n requests (on one keep-alive connection) went: {origin name: count}."""
    out = {}
    with RawConn(s.m.port) as c:
        for i in range(n):
            c.send(build("GET", f"/s/{i}", headers=headers, host="h.test"))
            r = c.read_response()
            assert r.status == 200, (r.status, r.body)
            name = r.body.decode().strip()
            out[name] = out.get(name, 0) + 1
    return out


def test_region_short_of_healthy_backends_spills_to_the_next_nearest(setup):
    eu = ["eu-1", "eu-2", "eu-3", "eu-4"]
    s = setup([("eu", eu), ("us-east", ["us-east-1"]), ("ap", ["ap-1"])],
              routing={"spill_below": "50%"})
    s.wait_all_up()
    for name in ("eu-1", "eu-2"):
        s.origins[name].proc.send_signal(signal.SIGKILL)
    s.wait(eu_1="down", eu_2="down")
    # Half healthy is not below 50%: no spilling.
    got = _share(s, 100)
    assert set(got) <= {"eu-3", "eu-4"}, got

    s.origins["eu-3"].proc.send_signal(signal.SIGKILL)
    s.wait(eu_3="down")
    # A quarter healthy: it keeps 25/50 of its clients, the rest go to the next nearest.
    n = 300
    got = _share(s, n)
    assert set(got) <= {"eu-4", "us-east-1"}, got
    kept = got.get("eu-4", 0) / n
    assert 0.3 <= kept <= 0.7, got
    assert region_status(s.m, "eu")["failovers_out"] >= got.get("us-east-1", 0)
    assert region_status(s.m, "us-east")["failovers_in"] >= got.get("us-east-1", 0)

    # spill_below 0% turns it off; the reload keeps what the checks know (no flood onto the
    # dead ones while they are checked again).
    s.m.reload(s.config(routing={"spill_below": "0%"}))
    states = backend_states(s.m)
    assert [states[s.addr(n)] for n in eu] == ["down", "down", "down", "up"], states
    got = _share(s, 50)
    assert got == {"eu-4": 50}, got


# ---- reload -----------------------------------------------------------------------------------


def test_health_survives_a_reload(setup, blackhole, origins):
    hole = blackhole()   # accepts, never answers: a check of it takes the whole timeout
    s = setup([("eu", ["eu-1", hole.address]), ("us-east", ["us-east-1"])])
    s.wait(eu_1="up", us_east_1="up", addrs={hole.address: "down"})
    eu3 = origins("eu-3")
    layout = [("eu", [s.addr("eu-1"), hole.address, eu3.address]),
              ("us-east", [s.addr("us-east-1")])]
    s.m.reload(s.config(layout=layout))
    states = backend_states(s.m)
    assert states[hole.address] == "down", states
    assert states[s.addr("eu-1")] == "up", states
    assert states[s.addr("us-east-1")] == "up", states
    assert states[eu3.address] in ("unchecked", "up"), states
    wait_backends(s.m, {eu3.address: "up"})
    assert region_status(s.m, "eu")["healthy"] == 2
    got = {s.who()[1] for _ in range(10)}
    assert got <= {"eu-1", "eu-3"} and got, got

    # A backend the new config drops is gone.
    s.m.reload(s.config(layout=[("eu", [s.addr("eu-1")]), ("us-east", [s.addr("us-east-1")])]))
    assert hole.address not in backend_states(s.m)


def _slow_check_backend(name, delay):
    """A backend that answers GET /hc-slow after `delay` seconds and anything else at once
    with body NAME."""
    def handler(sock):
        while True:
            head = read_request_head(sock)
            if not head:
                return
            body = name.encode() + b"\n"
            if head.split(b" ", 2)[1] == b"/hc-slow":
                time.sleep(delay)
                body = b"ok\n"
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    return ScriptedBackend(handler)


SLOW_CHECK = {"path": "/hc-slow", "interval": "5s", "timeout": "3s"}


def test_a_region_added_by_reload_gets_no_traffic_before_its_first_check(setup):
    late = _slow_check_backend("us-west-new", 0.8 * SLOW)
    try:
        s = setup([("eu", ["eu-1"])])
        s.wait_all_up()
        s.m.reload(s.config(layout=[("eu", [s.addr("eu-1")]), ("us-west", [late.address])],
                            region_extra={"us-west": {"health_check": SLOW_CHECK}}))
        assert backend_states(s.m)[late.address] == "unchecked"
        got = {s.who(SEATTLE)[1] for _ in range(10)}
        # Still unchecked after those requests: they were all made in the window.
        assert backend_states(s.m)[late.address] == "unchecked", "window too short"
        assert got == {"eu-1"}, got
        wait_backends(s.m, {late.address: "up"})
        assert s.who(SEATTLE) == (200, "us-west-new")
    finally:
        late.stop()


def test_unchecked_backends_serve_when_nothing_is_up_yet(origins, meridian):
    first = _slow_check_backend("first", 0.8 * SLOW)
    try:
        m = meridian(start=False)
        m.write_config(geo_config(
            m.port, m.admin_port,
            [{"name": "eu", "lat": 50.11, "lon": 8.68, "default": True,
              "backends": [first.address]}],
            health_check=dict(HC, **SLOW_CHECK), timeouts=TIMEOUTS))
        m.start()
        assert backend_states(m)[first.address] == "unchecked"
        r = request(m.port, "GET", "/", timeout=5)
        assert (r.status, r.body) == (200, b"first\n")
        assert backend_states(m)[first.address] == "unchecked", "window too short"
    finally:
        first.stop()


# ---- per-region settings and expect_status ----------------------------------------------------


def test_expect_status_and_per_region_checks(setup):
    # Each region checks its own path against its own expectation.
    cases = {
        "eu": ("/", 200, "up"),
        "us-east": ("/status/204", 200, "down"),
        "us-west": ("/status/204", "2xx", "up"),
        "ap": ("/status/302", "200-399", "up"),
        "sa": ("/status/404", "200-399", "down"),
    }
    layout = [(r, [f"{r}-1"]) for r in cases]
    extra = {r: {"health_check": {"path": p, "expect_status": e}} for r, (p, e, _) in cases.items()}
    s = setup(layout, region_extra=extra)
    want = {f"{r}_1".replace("-", "_"): st for r, (_, _, st) in cases.items()}
    s.wait(**want)
    # Each origin was asked for its region's path.
    for r, (p, _, _) in cases.items():
        recs = [x for x in s.origins[f"{r}-1"].records() if x.get("target") == p]
        assert recs, f"{r}: no check of {p} reached its origin"
    last = {b["address"]: b for reg in s.m.status()["regions"] for b in reg["backends"]}
    assert last[s.addr("us-east-1")]["last_status"] == 204
    assert last[s.addr("sa-1")]["last_status"] == 404
    # Seattle's nearest (us-west) is up; Kansas's (us-east) is down: it goes to us-west.
    assert s.who(SEATTLE) == (200, "us-west-1")
    assert s.who([("X-Forwarded-For", "149.101.100.5")]) == (200, "us-west-1")


def test_region_without_health_checks_is_never_marked_down(setup):
    dead = dead_address()
    s = setup([("eu", ["eu-1"]), ("us-west", [dead])],
              region_extra={"us-west": {"health_check": False}})
    s.wait(eu_1="up")
    # Long enough for several intervals: the unchecked region stays in service.
    wait_for(lambda: region_status(s.m, "eu")["backends"][0]["last_check_ms"] > 0, timeout=2)
    t_end = time.monotonic() + IV * (FALL + 2) / 1000
    while time.monotonic() < t_end:
        assert backend_states(s.m)[dead] == "up"
        time.sleep(0.02)
    status, _, j = route(s.m, "216.160.83.56")
    assert j["chosen"] == "us-west", j


# ---- least_outstanding ------------------------------------------------------------------------


def _slow_backend(delay, counter):
    def handler(sock):
        while True:
            head = read_request_head(sock)
            if not head:
                return
            counter.append(1)
            time.sleep(delay)
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Origin: slow\r\n\r\nslow\n")
    return ScriptedBackend(handler)


def test_least_outstanding_avoids_a_slow_backend(origins, meridian):
    slow_hits = []
    slow = _slow_backend(0.5, slow_hits)
    try:
        fast = origins("fast")
        m = meridian(start=False)
        m.write_config(geo_config(
            m.port, m.admin_port,
            [{"name": "eu", "lat": 50.11, "lon": 8.68, "default": True,
              "balance": "least_outstanding", "backends": [slow.address, fast.address]}],
            timeouts=TIMEOUTS))
        m.start()
        loop = ClientLoop(m.port, [], threads=8)
        try:
            wait_for(lambda: loop.count() >= 300, timeout=10, what="300 requests")
        finally:
            results = loop.stop()
    finally:
        slow.stop()
    bodies = [r[3] for r in results if r[2] == 200]
    assert len(bodies) == len(results), [r for r in results if r[2] != 200][:5]
    n_slow = bodies.count("slow")
    assert bodies.count("fast") + n_slow == len(bodies)
    # Round robin would give the slow one every other request.
    assert n_slow <= 0.1 * len(bodies), (n_slow, len(bodies))


# ---- what the access log and /status say when regions fail ------------------------------------



def test_all_regions_down_503_is_logged_with_client_country_and_region(setup, tmp_path):
    log = tmp_path / "all-down-access.log"
    s = setup([("eu", ["eu-1"]), ("us-east", ["us-east-1"])], access_log=str(log))
    s.m.reload(s.config(listeners=[{"name": "main", "address": f"127.0.0.1:{s.m.port}",
                                    "h2c": True}]))
    s.wait_all_up()
    for name in ("eu-1", "us-east-1"):
        s.origins[name].proc.send_signal(signal.SIGKILL)
        s.origins[name].proc.wait()
    s.wait(eu_1="down", us_east_1="down")

    r = request(s.m.port, "GET", "/all-down/h1", headers=GB, timeout=5)
    assert r.status == 503, (r.status, r.body)
    sweden = "89.160.20.112"    # nearest: eu, as London
    with H2Client(s.m.port) as c:
        h2r = c.get("/all-down/h2", authority="geo.test",
                    headers=[("x-forwarded-for", sweden)])
    assert h2r.status == 503 and h2r.reset is None, (h2r.status, h2r.reset)

    by = access_log_by_client(log, 2)
    a = by.get("81.2.69.142")
    assert a is not None, f"no line with the resolved client: {list(by.values())}"
    assert (a["status"], a["method"], a["path"], a["protocol"]) == \
        (503, "GET", "/all-down/h1", "HTTP/1.1"), a
    assert (a["country"], a["region"], a["backend"]) == ("GB", "eu", None), a
    b = by.get(sweden)
    assert b is not None, f"no line for the HTTP/2 request: {list(by.values())}"
    assert (b["status"], b["method"], b["path"]) == (503, "GET", "/all-down/h2"), b
    assert b["protocol"].startswith("HTTP/2"), b
    assert (b["country"], b["region"], b["backend"]) == ("SE", "eu", None), b
    # Each 503 once, and counted as such.
    assert len(access_log_lines(log, 2)) == 2
    assert sum(w["responses_5xx"] for w in s.m.status()["workers"]) == 2


def test_region_counters_sum_over_workers_and_survive_a_reload(setup, origins):
    s = setup([("eu", ["eu-1"]), ("us-east", ["us-east-1"])])
    s.wait_all_up()
    n = 24
    for _ in range(n):      # fresh connections: spread over both workers
        assert s.who(GB) == (200, "eu-1")
    workers = s.m.status()["workers"]
    assert len(workers) == 2 and all(w["requests"] > 0 for w in workers), workers
    eu, us = region_status(s.m, "eu"), region_status(s.m, "us-east")
    assert (eu["requests"], eu["failovers_in"], eu["failovers_out"]) == (n, 0, 0), eu
    assert (us["requests"], us["failovers_in"], us["failovers_out"]) == (0, 0, 0), us

    s.origins["eu-1"].proc.send_signal(signal.SIGKILL)
    s.origins["eu-1"].proc.wait()
    s.wait(eu_1="down")
    k = 6
    for _ in range(k):
        assert s.who(GB) == (200, "us-east-1")
    eu, us = region_status(s.m, "eu"), region_status(s.m, "us-east")
    assert (eu["requests"], eu["failovers_in"], eu["failovers_out"]) == (n, 0, k), eu
    assert (us["requests"], us["failovers_in"], us["failovers_out"]) == (k, k, 0), us

    # A reload that keeps both (same names; other settings changed) and adds one.
    ap = origins("ap-1")
    layout = [("eu", [s.addr("eu-1")]), ("us-east", [s.addr("us-east-1")]),
              ("ap", [ap.address])]
    s.m.reload(s.config(layout=layout, routing={"spill_below": "10%"}))
    eu, us = region_status(s.m, "eu"), region_status(s.m, "us-east")
    assert (eu["requests"], eu["failovers_in"], eu["failovers_out"]) == (n, 0, k), eu
    assert (us["requests"], us["failovers_in"], us["failovers_out"]) == (k, k, 0), us
    new = region_status(s.m, "ap")
    assert (new["requests"], new["failovers_in"], new["failovers_out"]) == (0, 0, 0), new
    # And they go on from there.
    wait_backends(s.m, {ap.address: "up"})
    for _ in range(4):
        assert s.who(GB) == (200, "us-east-1")
        assert s.who([("X-Forwarded-For", "175.16.199.7")]) == (200, "ap-1")   # CN
    eu, us = region_status(s.m, "eu"), region_status(s.m, "us-east")
    assert (eu["requests"], eu["failovers_out"]) == (n, k + 4), eu
    assert (us["requests"], us["failovers_in"]) == (k + 4, k + 4), us
    new = region_status(s.m, "ap")
    assert (new["requests"], new["failovers_in"], new["failovers_out"]) == (4, 0, 0), new


@pytest.mark.parametrize("dead", [1, 3, 5])
def test_every_backend_refusing_without_health_checks_fails_over_to_the_next_region(
        setup, tmp_path, dead):
    # No health_check section: nothing knows the region is dead until a request finds
    # every one of its backends refusing; that request goes on to the next nearest region.
    log = tmp_path / "refusing-access.log"
    dead_eu = [dead_address() for _ in range(dead)]
    s = setup([("eu", dead_eu), ("us-east", ["us-east-1"]), ("us-west", ["us-west-1"])],
              access_log=str(log), health_check=None)
    assert [r["health_check"] for r in s.m.status()["regions"]] == [False] * 3
    n = 6
    got = [s.who(GB, path=f"/refused/{i}") for i in range(n)]
    assert got == [(200, "us-east-1")] * n, got
    lines = access_log_lines(log, n)
    assert len(lines) == n, lines
    for line in lines:
        assert (line["status"], line["client_ip"], line["country"]) == \
            (200, "81.2.69.142", "GB"), line
        assert (line["region"], line["failover"], line["backend"]) == \
            ("us-east", True, s.addr("us-east-1")), line
    assert region_status(s.m, "eu")["failovers_out"] == n
    assert region_status(s.m, "us-east")["failovers_in"] == n
    assert region_status(s.m, "us-west")["requests"] == 0
    # "requests" counts where a request was served: re-routed ones count in us-east.
    assert region_status(s.m, "eu")["requests"] == 0
    assert region_status(s.m, "us-east")["requests"] == n
    assert not s.origins["us-west-1"].records(), "went past the next nearest region"
