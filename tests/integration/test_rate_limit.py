# SPDX-License-Identifier: MIT
"""The fleet's request budget (rate_limit), black-box: real `meridian`, real origins and real
`redis-server` processes (single servers and a 3-master + 3-replica Redis Cluster) on
loopback ports.

One node at 3x the budget admits the budget; three nodes sharing one Redis, loaded unevenly,
admit it together; a SIGHUP to the next phase raises the rate within a second; a 429 says why
(Retry-After, RateLimit-Policy, RateLimit) and never reaches the origin; Redis killed, stopped
or refusing the password puts the nodes in their on_redis_failure mode with no failed or
hanging request, and they come back to the shared bucket; admin requests are never limited;
a cluster master killed mid-run is replaced by its replica with no failed request.

Load comes from an open-loop client (Load): keep-alive connections sending at a set mean
rate, each response's status and timing recorded, so that admitted (200) and rejected (429)
requests are counted exactly over a window of their own. Tests that need redis-server skip
when it is not installed."""
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import (MERIDIAN_BIN, SLOW, config_line, free_port, geo_config, wait_for,
                      yaml_config)
from util_http import ConnectionClosed, RawConn, build

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
WRK = shutil.which("wrk")

BUCKET1 = "{meridian:phase1}:bucket"
NODES = "{meridian}:nodes"


# ---- Redis ----------------------------------------------------------------------------------


def resp_call(port, *args, timeout=2.0):
    """One command over RESP on a fresh connection; the reply's first line (b'+PONG',
    b'-NOAUTH ...', b':3', ...). Enough for readiness probes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        msg = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            msg.append(b"$%d\r\n%s\r\n" % (len(a), a))
        s.sendall(b"".join(msg))
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        return buf.split(b"\r\n", 1)[0]


class Redis:
    """A redis-server on a loopback port, in a directory of its own, stopped by PID."""

    def __init__(self, tmp_path, port=None, args=(), name=None):
        self.port = port or free_port()
        self.args = list(args)
        self.dir = tmp_path / (name or f"redis-{self.port}")
        self.dir.mkdir(exist_ok=True)
        self.log_path = self.dir / "redis.log"
        self.password = None
        if "--requirepass" in self.args:
            self.password = self.args[self.args.index("--requirepass") + 1]
        self.proc = None
        self.stopped = False

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(self.dir)] + self.args,
            stdout=open(self.log_path, "a"), stderr=subprocess.STDOUT)
        self.stopped = False
        wait_for(self.ready, timeout=10, what=f"redis-server on port {self.port}")
        return self

    def ready(self):
        assert self.proc.poll() is None, f"redis-server exited: {self.log()[-2000:]}"
        first = resp_call(self.port, "PING", timeout=0.5)
        return first == b"+PONG" or first.startswith(b"-NOAUTH")

    def log(self):
        try:
            return self.log_path.read_text()
        except FileNotFoundError:
            return ""

    def cli(self, *args):
        """redis-cli against this server; its stdout (raw: one value a line)."""
        cmd = [REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.port), "--raw"]
        if self.password:
            cmd += ["--no-auth-warning", "-a", self.password]
        r = subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r.stdout

    def signal(self, sig):
        self.proc.send_signal(sig)
        self.stopped = sig == signal.SIGSTOP

    def kill(self):
        """SIGKILL: the server is gone at once, as in a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            if self.stopped:
                self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def redis(tmp_path):
    """Factory: redis(args=[...], port=None) starts and returns a Redis; all stopped after.
    The test is skipped when redis-server or redis-cli is not installed."""
    if REDIS_SERVER is None or REDIS_CLI is None:
        pytest.skip("redis-server / redis-cli not installed (Debian: apt-get install "
                    "redis-server redis-tools)")
    started = []

    def make(**kw):
        r = Redis(tmp_path, **kw)
        started.append(r)
        return r.start()

    yield make
    for r in started:
        r.stop()


# ---- load -----------------------------------------------------------------------------------


class Load:
    """An open-loop client: `conns` keep-alive connections to `port`, together sending GETs at
    `rps` (each connection every conns/rps seconds on average, each interval drawn from
    0.5x to 1.5x of that so that no client beats in step with the bucket's refill; one that
    falls behind does not burst to catch up). Every request's (sent, done, status or None,
    response or error) is kept; a failed request (connection error, timeout) is recorded
    with status None and the connection opened again."""

    def __init__(self, port, rps, conns=4, path="/", timeout=3.0):
        self.port, self.rps, self.conns, self.timeout = port, rps, conns, timeout
        self.req = build("GET", path, host=f"127.0.0.1:{port}")
        self.stop_ev = threading.Event()
        self.per_thread = [[] for _ in range(conns)]
        self.threads = []
        self.t_start = None
        self.results = None  # set by stop()

    def start(self):
        self.t_start = time.monotonic()
        for i in range(self.conns):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def _run(self, i):
        out = self.per_thread[i]
        period = self.conns / self.rps
        rng = random.Random(i)
        due = self.t_start + i / self.rps
        conn = None
        while not self.stop_ev.is_set():
            now = time.monotonic()
            if due > now:
                if self.stop_ev.wait(due - now):
                    break
            elif now - due > 0.5:
                due = now
            due += period * (0.5 + rng.random())
            t0 = time.monotonic()
            try:
                if conn is None:
                    conn = RawConn(self.port, timeout=self.timeout)
                conn.send(self.req)
                r = conn.read_response()
                out.append((t0, time.monotonic(), r.status, None if r.status == 200 else r))
                if (r.header("connection") or "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, ConnectionClosed, AssertionError) as e:
                out.append((t0, time.monotonic(), None, repr(e)))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(timeout=10)
        assert not any(t.is_alive() for t in self.threads), "load thread hangs"
        self.results = sorted(r for thread in self.per_thread for r in thread)
        return self

    def snapshot(self):
        """What was recorded so far (while running: a copy, racing only with appends)."""
        return [r for thread in self.per_thread for r in list(thread)]

    def count(self, t0=None, t1=None, statuses=(200,), results=None):
        """Requests answered in [t0, t1) with one of `statuses`."""
        t0 = float("-inf") if t0 is None else t0
        t1 = float("inf") if t1 is None else t1
        if results is None:
            results = self.results if self.results is not None else self.snapshot()
        rs = results
        return sum(1 for r in rs if t0 <= r[1] < t1 and r[2] in statuses)

    def failures(self, allowed=(200, 429)):
        """Every result whose status is not in `allowed` (errors have status None)."""
        return [r for r in self.results if r[2] not in allowed]

    def max_latency(self):
        return max(r[1] - r[0] for r in self.results)


def sleep_until(t):
    """Wait out a measurement window (not readiness: the window is the measurement)."""
    d = t - time.monotonic()
    if d > 0:
        time.sleep(d)


# ---- Meridian with a rate_limit section ------------------------------------------------------


def rl_yaml(redis_addr, phase="phase1", phases=None, on_failure="local", timeout="50ms",
            cluster=False, password=None, scope="global"):
    """A rate_limit section, with `phase:` on a line of its own. A phase is (rps, burst), or
    (rps, burst, {region: share}) for the regions' shares of it."""
    phases = phases or {"phase1": (100, 5), "phase2": (400, 40)}
    lines = ["rate_limit:", f"  phase: {phase}", "  phases:"]
    for name, (rps, burst, *shares) in phases.items():
        spec = f"rps: {rps}, burst: {burst}"
        if shares:
            spec += ", regions: { " + ", ".join(f"{r}: {s}" for r, s in shares[0].items()) + " }"
        lines.append(f"    {name}: {{ {spec} }}")
    lines.append(f"  scope: {scope}")
    if cluster:
        addrs = ", ".join(f'"{a}"' for a in redis_addr)
        redis = f"{{ cluster: true, address: [{addrs}], timeout: {timeout}"
    else:
        redis = f'{{ address: "{redis_addr}", timeout: {timeout}'
    if password is not None:
        redis += f', password: "{password}"'
    lines.append(f"  redis: {redis} }}")
    lines.append(f"  on_redis_failure: {on_failure}")
    return "\n".join(lines) + "\n"


def start_node(meridian, origin, workers=2, **rl):
    m = meridian(start=False, regions=[("eu", [origin.address])], workers=workers)
    m.write_config(node_config(m, origin, workers, **rl))
    return m.start()


def node_config(m, origin, workers=2, **rl):
    redis_addr = rl.pop("redis_addr")
    return yaml_config(m.port, m.admin_port, [("eu", [origin.address])], workers,
                       extra=rl_yaml(redis_addr, **rl))


def rl_status(m):
    return m.status()["rate_limit"]


def rl_totals(m):
    """(admitted, rejected, unavailable) summed over the node's workers."""
    ws = rl_status(m)["workers"]
    return (sum(w["admitted"] for w in ws), sum(w["rejected"] for w in ws),
            sum(w["unavailable"] for w in ws))


def modes(m):
    return [w["mode"] for w in rl_status(m)["workers"]]


def all_mode(m, mode):
    return all(x == mode for x in modes(m))


def until(m, pred, what, timeout=15.0, allowed=(200, 429)):
    """Wait until pred(m's rate_limit status) holds, sending requests on fresh connections
    meanwhile: a worker decides anything (and so notices Redis failing or answering again,
    and shows what it knows of Redis) only when it has a request, and the kernel spreads
    fresh connections over the workers whatever the keep-alive connections of a load do (a
    503 closes its connection, so a closed mode's load drifts to whichever worker is back
    first). Each status must be in `allowed`. Returns (time.monotonic() then,
    [(status, seconds) of each request])."""
    seen = []

    def poke():
        if pred(rl_status(m)):
            return True
        t = time.monotonic()
        with RawConn(m.port, timeout=3) as c:
            c.send(build("GET", "/", host=f"127.0.0.1:{m.port}"))
            seen.append((c.read_response().status, time.monotonic() - t))
        assert seen[-1][0] in allowed, seen[-1]
        return False
    wait_for(poke, timeout=timeout, interval=0.01, what=f"{what} ({rl_status(m)['workers']})")
    return time.monotonic(), seen


def until_mode(m, mode, timeout=15.0, allowed=(200, 429)):
    """until() every worker of m is in `mode`."""
    return until(m, lambda st: all(w["mode"] == mode for w in st["workers"]),
                 f"every worker {mode}", timeout, allowed)


def count_status(pokes, status):
    return sum(1 for s, _ in pokes if s == status)


def within(value, expected, frac):
    return abs(value - expected) <= frac * expected


# ---- one node -------------------------------------------------------------------------------


def test_one_node_at_three_times_the_budget_admits_the_budget(redis, origins, meridian):
    """300 req/s offered to one node (2 workers) under a 100 req/s budget (burst 5): over
    8 s after a 1 s warm-up, 800 +-5% are admitted; every 429 carries Retry-After,
    RateLimit-Policy and RateLimit; the origin saw exactly the admitted requests, and
    /status counted exactly what the client saw."""
    r = redis()
    origin = origins("eu")
    m = start_node(meridian, origin, redis_addr=f"127.0.0.1:{r.port}")
    st = rl_status(m)
    assert (st["phase"], st["rps"], st["burst"], st["scope"], st["on_redis_failure"]) == \
        ("phase1", 100, 5, "global", "local"), st

    load = Load(m.port, rps=300, conns=6).start()
    t0 = load.t_start + 1.0
    t1 = t0 + 8.0
    sleep_until(t0)
    a0 = rl_totals(m)[0]
    sleep_until(t1)
    a1 = rl_totals(m)[0]
    st = rl_status(m)
    load.stop()

    admitted = load.count(t0, t1)
    offered = load.count(t0, t1, statuses=(200, 429))
    assert offered >= 2.5 * 800, f"the client offered only {offered} requests in 8 s"
    assert within(admitted, 800, 0.05), f"admitted {admitted} in 8 s, budget 800"
    assert within(a1 - a0, 800, 0.05), f"/status counted {a1 - a0} admitted in 8 s"
    assert not load.failures(), load.failures()[:5]

    # Every 429: the three fields, consistent with each other, and a short text body.
    refused = [x[3] for x in load.results if x[2] == 429]
    assert len(refused) >= 1000
    for resp in refused:
        ra = resp.header("retry-after")
        assert ra is not None and ra.isdigit() and 1 <= int(ra) <= 2, resp
        assert resp.header("ratelimit-policy") == '"phase1";q=100;w=1', resp
        assert resp.header("ratelimit") == f'"phase1";r=0;t={ra}', resp
        assert resp.header("content-type", "").startswith("text/plain"), resp
        assert 0 < len(resp.body) < 200 and b"429" in resp.body, resp

    # The origin saw exactly the admitted requests, and /status counted what the client saw.
    total_ok = load.count(statuses=(200,))
    total_429 = load.count(statuses=(429,))
    wait_for(lambda: len(origin.records()) == total_ok, timeout=5,
             what=f"origin to have {total_ok} records (has {len(origin.records())})")
    assert rl_totals(m) == (total_ok, total_429, 0)
    assert all_mode(m, "shared"), modes(m)
    assert 60 <= st["admitted_per_s_10s"] <= 115, st
    assert st["rejected_per_s_10s"] > 100, st
    assert st["live_nodes"] == 1, st
    # Each worker has its own connection to the one server (fresh connections make sure
    # each had a request to decide, whatever the kernel did with the load's six).
    until(m, lambda st: all(w["redis_connections"] == 1 and w["redis_servers"] == 1
                            for w in st["workers"]), "each worker connected", timeout=5)

    # The bucket and the heartbeat live in Redis under their documented names.
    assert r.cli("EXISTS", BUCKET1).strip() == "1"
    fields = r.cli("HGETALL", BUCKET1).split()
    assert "tokens" in fields and "ts" in fields, fields
    assert r.cli("ZCARD", NODES).strip() == "1"


def test_three_nodes_sharing_one_redis_admit_the_budget_together(redis, origins, meridian):
    """Three nodes on one Redis, offered 300, 100 and 100 req/s: together 800 +-5% admitted
    over 8 s; each knows there are three nodes."""
    r = redis()
    origin = origins("eu")
    nodes = [start_node(meridian, origin, redis_addr=f"127.0.0.1:{r.port}") for _ in range(3)]
    for m in nodes:
        wait_for(lambda m=m: rl_status(m)["live_nodes"] == 3, timeout=5,
                 what="three live nodes")
    assert r.cli("ZCARD", NODES).strip() == "3"

    loads = [Load(nodes[0].port, rps=300, conns=6).start(),
             Load(nodes[1].port, rps=100, conns=3).start(),
             Load(nodes[2].port, rps=100, conns=3).start()]
    t0 = max(l.t_start for l in loads) + 1.0
    t1 = t0 + 8.0
    sleep_until(t1 + 0.05)
    for load in loads:
        load.stop()

    admitted = [l.count(t0, t1) for l in loads]
    offered = [l.count(t0, t1, statuses=(200, 429)) for l in loads]
    assert offered[0] >= 0.85 * 2400 and min(offered[1:]) >= 0.85 * 800, offered
    assert within(sum(admitted), 800, 0.05), f"admitted {admitted} (sum {sum(admitted)}), " \
        f"budget 800; offered {offered}"
    # Nobody is starved: the budget is not shared in proportion to demand (a node's lease
    # is capped at twice its fair share), but each node gets a fair part of it (about 70 to
    # 200 of the 800 here for the least loaded ones).
    assert min(admitted) >= 25, admitted
    for load in loads:
        assert not load.failures(), load.failures()[:5]
    total_ok = sum(l.count() for l in loads)
    wait_for(lambda: len(origin.records()) == total_ok, timeout=5,
             what=f"origin to have {total_ok} records")
    for m, load in zip(nodes, loads):
        assert rl_totals(m)[:2] == (load.count(), load.count(statuses=(429,)))
        assert all_mode(m, "shared"), modes(m)


def test_sighup_to_the_next_phase_raises_the_rate_within_a_second(redis, origins, meridian):
    """phase1 (100/s) to phase2 (300/s) by SIGHUP under 500 req/s: the second after the
    reload admits about 300, the seconds before about 100; 429s then name phase2."""
    r = redis()
    origin = origins("eu")
    rl = dict(redis_addr=f"127.0.0.1:{r.port}",
              phases={"phase1": (100, 10), "phase2": (300, 10)})
    m = start_node(meridian, origin, **rl)
    load = Load(m.port, rps=500, conns=8).start()
    sleep_until(load.t_start + 3.0)

    text = open(m.config_path).read()
    assert "  phase: phase1\n" in text
    t_hup = time.monotonic()
    m.reload(text.replace("  phase: phase1\n", "  phase: phase2\n"))
    t_seen = time.monotonic()
    sleep_until(t_seen + 4.05)
    load.stop()

    before = load.count(t_hup - 2.0, t_hup)
    first = load.count(t_seen, t_seen + 1.0)
    then = load.count(t_seen + 1.0, t_seen + 4.0)
    assert t_seen - t_hup < 1.0, f"the reload took {t_seen - t_hup:.3f} s"
    assert within(before, 200, 0.1), f"phase1: {before} admitted in 2 s"
    # One second is short: the admitted count of a single second varies by about 10%
    # around the rate, and the new phase's leases start small (their size follows each
    # worker's admitted rate, which takes a second or two to reach its share), so the first
    # seconds admit a few percent less. The new phase's bucket starts full: one burst more.
    assert 0.8 * 300 <= first <= 300 * 1.1 + 10, \
        f"the second after the reload admitted {first} (phase2: 300/s)"
    assert within(then, 900, 0.1), f"the next three seconds admitted {then}"
    assert not load.failures(), load.failures()[:5]

    st = rl_status(m)
    assert (st["phase"], st["rps"], st["burst"]) == ("phase2", 300, 10), st
    late = [x[3] for x in load.results if x[2] == 429 and x[0] > t_seen + 0.2]
    assert late
    assert all(x.header("ratelimit-policy") == '"phase2";q=300;w=1' for x in late), late[:3]
    assert r.cli("EXISTS", "{meridian:phase2}:bucket").strip() == "1"


# ---- when Redis fails -----------------------------------------------------------------------


def test_redis_killed_local_mode_enforces_the_share_then_comes_back(redis, origins, meridian):
    """on_redis_failure: local. Redis killed under 400 req/s: every worker goes degraded,
    the node alone admits ~100/s with its in-process buckets (the budget / 1 live node),
    no request fails or hangs; Redis restarted on the same port (empty): back to shared,
    and the bucket key is written again."""
    r = redis()
    port = r.port
    origin = origins("eu")
    m = start_node(meridian, origin, redis_addr=f"127.0.0.1:{port}", on_failure="local")
    # Many connections: each worker (the kernel spreads them) is offered more than its
    # local share of 50/s.
    load = Load(m.port, rps=400, conns=16).start()
    sleep_until(load.t_start + 1.5)
    assert all_mode(m, "shared"), modes(m)

    t_kill = time.monotonic()
    r.kill()
    t_deg, pokes = until_mode(m, "degraded", timeout=5)
    assert rl_status(m)["live_nodes"] == 1
    w0, w1 = t_deg + 0.5, t_deg + 4.5
    sleep_until(w1)
    during = load.count(w0, w1)
    shared_before = load.count(load.t_start + 0.5, t_kill)

    r2 = redis(port=port)
    t_back, pokes2 = until_mode(m, "shared")
    sleep_until(t_back + 1.0)
    load.stop()

    assert within(during, 400, 0.1), f"degraded: {during} admitted in 4 s (budget 100/s)"
    assert within(shared_before, 100 * (t_kill - load.t_start - 0.5), 0.1), shared_before
    assert not load.failures(), load.failures()[:5]
    assert load.max_latency() < 1.0, load.max_latency()
    assert max((t for _, t in pokes + pokes2), default=0) < 1.0
    after = load.count(t_back + 0.2, t_back + 1.0)
    assert after <= 100 * 0.8 * 1.1 + 5, f"shared again, but {after} admitted in 0.8 s"
    assert r2.cli("EXISTS", BUCKET1).strip() == "1"
    err = m.stderr()
    assert "on_redis_failure local" in err, err[-2000:]
    assert "back to the shared budget" in err, err[-2000:]


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_redis_killed_open_admits_all_closed_refuses_all(redis, origins, meridian, mode):
    """on_redis_failure open: everything admitted while Redis is down; closed: 503 (and
    nothing reaches the origin). No connection error, no hang; back to shared when Redis
    is back."""
    r = redis()
    port = r.port
    origin = origins("eu")
    m = start_node(meridian, origin, redis_addr=f"127.0.0.1:{port}", on_failure=mode)
    load = Load(m.port, rps=250, conns=8).start()
    sleep_until(load.t_start + 1.0)
    t_kill = time.monotonic()
    r.kill()
    allowed = (200, 429, 503) if mode == "closed" else (200, 429)
    t_deg, pokes = until_mode(m, "degraded", timeout=5, allowed=allowed)
    w0, w1 = t_deg + 0.2, t_deg + 1.7
    sleep_until(w1)
    redis(port=port)
    t_back, pokes2 = until_mode(m, "shared", allowed=allowed)
    pokes += pokes2
    sleep_until(t_back + 0.5)
    load.stop()

    window = [x for x in load.results if w0 <= x[1] < w1]
    assert len(window) >= 0.8 * 250 * 1.5, len(window)
    statuses = {x[2] for x in window}
    if mode == "open":
        assert statuses == {200}, sorted(statuses, key=str)
        assert not load.failures(), load.failures()[:5]
    else:
        assert statuses == {503}, sorted(statuses, key=str)
        assert not load.failures(allowed=(200, 429, 503)), load.failures()[:5]
        # 503 only while Redis was down (none for a request sent after every worker said
        # it was back: its answer may be read later on a slow machine), each one counted.
        assert all(t_kill <= x[1] and x[0] <= t_back for x in load.results if x[2] == 503)
        assert rl_totals(m)[2] == load.count(statuses=(503,)) + count_status(pokes, 503)
        assert load.count(t_deg - 2, t_kill) > 0
    assert load.max_latency() < 1.0, load.max_latency()
    assert max((t for _, t in pokes), default=0) < 1.0
    # Limiting again once shared.
    assert load.count(t_back + 0.1, t_back + 0.5, statuses=(429,)) > 0
    total_ok = load.count() + count_status(pokes, 200)
    wait_for(lambda: len(origin.records()) == total_ok, timeout=5,
             what=f"origin to have {total_ok} records")


def test_redis_stopped_no_request_waits_past_the_timeout(redis, origins, meridian):
    """SIGSTOP on Redis (connections stay open, nothing answers): with redis.timeout 50ms no
    request takes longer than 50 ms + 150 ms slack, the node goes degraded; SIGCONT:
    shared again."""
    r = redis()
    origin = origins("eu")
    m = start_node(meridian, origin, redis_addr=f"127.0.0.1:{r.port}", timeout="50ms")
    load = Load(m.port, rps=300, conns=8).start()
    sleep_until(load.t_start + 1.0)
    waited0 = sum(w["waited"] for w in rl_status(m)["workers"])
    r.signal(signal.SIGSTOP)
    t_stop = time.monotonic()
    _, pokes = until_mode(m, "degraded", timeout=5)
    sleep_until(t_stop + 3.0)
    waited1 = sum(w["waited"] for w in rl_status(m)["workers"])
    assert all_mode(m, "degraded"), modes(m)
    r.signal(signal.SIGCONT)
    t_back, pokes2 = until_mode(m, "shared")
    pokes += pokes2
    sleep_until(t_back + 0.5)
    load.stop()

    assert not load.failures(), load.failures()[:5]
    slow = sorted([x[1] - x[0] for x in load.results] + [t for _, t in pokes], reverse=True)
    assert slow[0] <= 0.050 + 0.150 * SLOW, f"slowest requests: {slow[:5]}"
    # Requests did wait on the silent Redis (else the bound above says nothing): parked
    # while it was stopped, some for about the whole timeout.
    assert waited1 > waited0, (waited0, waited1)
    assert slow[0] >= 0.040, f"slowest requests: {slow[:5]}"
    # And the node kept serving meanwhile (each worker at its local share, 50/s, of which
    # it is offered more unless the kernel gave it none of the 8 connections).
    assert load.count(t_stop + 0.5, t_stop + 3.0) > 0.3 * 100 * 2.5


def test_wrong_password_degrades_with_a_clear_error(redis, origins, meridian):
    """Redis with requirepass and Meridian with the wrong password: it serves, in local mode
    (degraded), logs why, does not crash; the right password (reload): shared."""
    r = redis(args=["--requirepass", "secret"])
    origin = origins("eu")
    rl = dict(redis_addr=f"127.0.0.1:{r.port}", password="wrong")
    m = start_node(meridian, origin, **rl)
    load = Load(m.port, rps=200, conns=8).start()
    until_mode(m, "degraded", timeout=5)
    err = m.stderr()
    assert re.search(r"WRONGPASS|invalid password|invalid username-password|AUTH", err), err
    assert m.proc.poll() is None
    t_deg = time.monotonic()
    sleep_until(t_deg + 1.0)
    assert all_mode(m, "degraded"), modes(m)
    served = load.snapshot()
    assert sum(1 for x in served if x[2] == 200 and x[1] > t_deg - 0.5) > 50

    rl["password"] = "secret"
    m.reload(node_config(m, origin, **rl))
    t_ok, _ = until_mode(m, "shared", timeout=10)
    sleep_until(t_ok + 1.0)
    load.stop()
    assert not load.failures(), load.failures()[:5]
    assert r.cli("EXISTS", BUCKET1).strip() == "1"
    assert load.count(t_ok, t_ok + 1.0, statuses=(429,)) > 0


def test_wrong_password_log_names_the_refused_password(redis, origins, meridian):
    """The log of a node with the wrong password says that Redis refused the password
    (WRONGPASS, or AUTH refused), not only that authentication is required."""
    r = redis(args=["--requirepass", "secret"])
    origin = origins("eu")
    m = start_node(meridian, origin, redis_addr=f"127.0.0.1:{r.port}", password="wrong")
    until_mode(m, "degraded", timeout=5)
    err = m.stderr()
    assert "Redis failed" in err, err
    assert re.search(r"WRONGPASS|AUTH refused|invalid (username-)?password", err), err


# ---- a region's share ------------------------------------------------------------------------

EU_PLACE = [("CloudFront-Viewer-Latitude", "50.1"), ("CloudFront-Viewer-Longitude", "8.7")]
US_PLACE = [("CloudFront-Viewer-Latitude", "39.0"), ("CloudFront-Viewer-Longitude", "-77.5")]


@pytest.mark.parametrize("share,on_failure", [
    ("none", "local"), ("none", "open"), ("none", "closed"), ("tiny", "closed")])
def test_a_region_without_a_share_harms_no_other(redis, origins, meridian, share, on_failure):
    """scope: region; phase1 gives eu all of itself and us none (left out of 100%), or a
    share so tiny (1e-9) that us's rate is 1e-7/s. One worker, one keep-alive connection, us
    and eu in turn: us is refused with 429 (at most one token admitted with the tiny share);
    with no share, whatever on_redis_failure says, and without asking Redis. eu is admitted,
    the worker stays shared, Redis is never said to fail. (Before: us's rate went as
    "0.000000", the lease script failed on PEXPIRE inf, and the breaker that the worker's
    buckets share opened for eu too: degraded, 503 when closed, and open admitted us.)"""
    r = redis()
    eu, us = origins("eu", "us")
    shares = {"none": {"eu": "100%"}, "tiny": {"eu": "99.9999999%", "us": "0.0000001%"}}
    m = meridian(start=False)
    regions = [{"name": "eu", "lat": 50.11, "lon": 8.68, "backends": [eu.address],
                "default": True},
               {"name": "us", "lat": 39.04, "lon": -77.49, "backends": [us.address]}]
    m.write_config(geo_config(m.port, m.admin_port, regions, workers=1,
                              client_ip={"trusted_proxies": ["127.0.0.1/32"],
                                         "use_cdn_location": True})
                   + rl_yaml(f"127.0.0.1:{r.port}", scope="region", on_failure=on_failure,
                             phases={"phase1": (100, 100, shares[share])}, timeout="1s"))
    m.start()
    got = {"eu": [], "us": []}
    c = RawConn(m.port, timeout=3)
    for _ in range(20):
        for region, place in (("us", US_PLACE), ("eu", EU_PLACE)):
            c.send(build("GET", "/", headers=place, host=f"127.0.0.1:{m.port}"))
            got[region].append(c.read_response())
            if (got[region][-1].header("connection") or "").lower() == "close":  # a 503
                c.close()
                c = RawConn(m.port, timeout=3)
    c.close()
    us_statuses = [x.status for x in got["us"]]
    eu_statuses = [x.status for x in got["eu"]]
    admitted_us = 0 if share == "none" else 1
    assert us_statuses == [200] * admitted_us + [429] * (20 - admitted_us), \
        (us_statuses, m.stderr()[-2000:])
    assert eu_statuses == [200] * 20, (eu_statuses, m.stderr()[-2000:])
    for resp in got["us"][admitted_us:]:
        # no share: ask again in a minute (the phase may change), whatever the failure mode
        assert resp.header("retry-after", "").isdigit(), resp
        if share == "none":
            assert resp.header("retry-after") == "60", resp
        assert resp.header("ratelimit-policy", "").startswith('"phase1";q='), resp
    assert modes(m) == ["shared"], rl_status(m)
    assert rl_totals(m) == (20 + admitted_us, 20 - admitted_us, 0)
    assert "Redis failed" not in m.stderr(), m.stderr()[-2000:]
    wait_for(lambda: len(eu.records()) == 20, timeout=5, what="eu's origin to have 20 records")
    assert len(us.records()) == admitted_us
    # A region with no share never asks Redis; a tiny one's bucket is there, and expires.
    assert r.cli("EXISTS", "{meridian:phase1:eu}:bucket").strip() == "1"
    us_ttl = int(r.cli("PTTL", "{meridian:phase1:us}:bucket"))
    if share == "none":
        assert us_ttl == -2, us_ttl  # no such key
    else:
        assert us_ttl > 0, us_ttl


# ---- admin, config --------------------------------------------------------------------------


@pytest.mark.skipif(WRK is None, reason="wrk not installed")
def test_admin_endpoints_are_never_limited(redis, origins, meridian):
    """/healthz hammered far past the budget by wrk: every answer 2xx, none counted by the
    budget; /status likewise. The proxy port is limited meanwhile."""
    r = redis()
    origin = origins("eu")
    m = start_node(meridian, origin, redis_addr=f"127.0.0.1:{r.port}",
                   phases={"phase1": (10, 1)})
    out = subprocess.run([WRK, "-t1", "-c4", "-d2s", f"http://127.0.0.1:{m.admin_port}/healthz"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    total = int(re.search(r"(\d+) requests in", out.stdout).group(1))
    assert total > 10 * 2 * 5, out.stdout
    assert "Non-2xx" not in out.stdout, out.stdout
    assert "Socket errors" not in out.stdout, out.stdout
    for _ in range(30):
        assert m.admin("/status")[0] == 200
    assert rl_totals(m) == (0, 0, 0)

    # The proxy port, meanwhile, is limited (10/s, burst 1).
    load = Load(m.port, rps=100, conns=2).start()
    sleep_until(load.t_start + 1.0)
    load.stop()
    assert load.count(statuses=(429,)) > 50
    assert rl_totals(m)[:2] == (load.count(), load.count(statuses=(429,)))


def test_unknown_phase_is_a_config_error(tmp_path):
    """`meridian -t`: rate_limit.phase naming no phase fails with file:line and the path."""
    text = yaml_config(free_port(), free_port(), [("eu", ["127.0.0.1:9"])], 1,
                       extra=rl_yaml("127.0.0.1:6379", phase="phase9"))
    path = tmp_path / "rl.yaml"
    path.write_text(text)
    res = subprocess.run([MERIDIAN_BIN, "-t", "-c", str(path)], capture_output=True, text=True,
                         timeout=10 * SLOW)
    assert res.returncode != 0, res.stdout
    assert f"{path}:{config_line(text, '  phase:')}:" in res.stderr, res.stderr
    assert "rate_limit.phase" in res.stderr and "phase9" in res.stderr, res.stderr
    path.write_text(text.replace("phase: phase9", "phase: phase2"))
    res = subprocess.run([MERIDIAN_BIN, "-t", "-c", str(path)], capture_output=True, text=True,
                         timeout=10 * SLOW)
    assert res.returncode == 0, res.stderr


# ---- Redis Cluster --------------------------------------------------------------------------


def cluster_nodes(node):
    """CLUSTER NODES as dicts: id, port, flags (set), master id, connected, slots [(a, b)]."""
    out = []
    for line in node.cli("CLUSTER", "NODES").splitlines():
        f = line.split()
        if len(f) < 8:
            continue
        slots = []
        for s in f[8:]:
            if s.startswith("["):
                continue  # a slot being migrated
            a, _, b = s.partition("-")
            slots.append((int(a), int(b or a)))
        out.append({"id": f[0], "port": int(f[1].split("@")[0].rsplit(":", 1)[1]),
                    "flags": set(f[2].split(",")), "master": f[3], "link": f[7],
                    "slots": slots})
    return out


def slot_owner(node, slot):
    """The port of the master that serves `slot`, as `node` sees it (None when none)."""
    for n in cluster_nodes(node):
        if "master" in n["flags"] and "fail" not in n["flags"] and \
                any(a <= slot <= b for a, b in n["slots"]):
            return n["port"]
    return None


def cluster_ok(node):
    return "cluster_state:ok" in node.cli("CLUSTER", "INFO")


def cluster_node(redis, *args):
    """A cluster-enabled redis-server. The cluster bus gets a free port of its own (by default
    it is port + 10000, which may be taken, or inside the kernel's ephemeral range)."""
    port, bus = free_port(), free_port()
    return redis(port=port, args=["--cluster-enabled", "yes", "--cluster-port", str(bus),
                                  "--cluster-config-file", f"nodes-{port}.conf",
                                  "--cluster-node-timeout", "1000", *args])


def cluster_create(cnodes, replicas=0):
    """`redis-cli --cluster create` over cnodes (at least 3 masters), then every node ok."""
    res = subprocess.run([REDIS_CLI, "--cluster", "create"]
                         + [f"127.0.0.1:{n.port}" for n in cnodes]
                         + ["--cluster-replicas", str(replicas), "--cluster-yes"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    for n in cnodes:
        wait_for(lambda n=n: cluster_ok(n), timeout=20, interval=0.1,
                 what=f"cluster_state:ok on {n.port}")


@pytest.mark.cluster
def test_cluster_budget_holds_and_survives_a_master_failover(redis, origins, meridian):
    """A 3-master + 3-replica Redis Cluster, three nodes given one seed, offered 300, 100
    and 100 req/s: together 100/s +-5%, each worker knows the 3 masters. Then the master of
    the bucket's slot is killed: its replica takes over, no request fails, and over the
    whole run the admitted total stays within 10% of the budget (plus one burst)."""
    cnodes = [cluster_node(redis) for _ in range(6)]
    cluster_create(cnodes, replicas=1)
    slot = int(cnodes[0].cli("CLUSTER", "KEYSLOT", BUCKET1))
    owner = wait_for(lambda: slot_owner(cnodes[0], slot), what="the bucket slot's master")
    by_port = {n.port: n for n in cnodes}

    def replicas_of_owner():
        view = cluster_nodes(cnodes[0])
        owner_id = next(x["id"] for x in view if x["port"] == owner)
        return [n["port"] for n in view if n["master"] == owner_id]

    # cluster_state:ok comes before every node has heard (by gossip) which replica follows
    # which master: wait for the owner's replica to be known, rather than read it once.
    replicas = wait_for(lambda: (lambda r: r if len(r) == 1 else None)(replicas_of_owner()),
                        timeout=20, interval=0.1, what="the bucket master's replica known")

    origin = origins("eu")
    seed = [f"127.0.0.1:{cnodes[0].port}"]
    nodes = [start_node(meridian, origin, redis_addr=seed, cluster=True) for _ in range(3)]
    for m in nodes:
        wait_for(lambda m=m: rl_status(m)["live_nodes"] == 3, timeout=5,
                 what="three live nodes")
    loads = [Load(nodes[0].port, rps=300, conns=6).start(),
             Load(nodes[1].port, rps=100, conns=4).start(),
             Load(nodes[2].port, rps=100, conns=4).start()]
    t_start = max(l.t_start for l in loads)
    t0, t1 = t_start + 1.0, t_start + 7.0
    sleep_until(t1)
    steady = [l.count(t0, t1, results=l.snapshot()) for l in loads]
    assert within(sum(steady), 600, 0.05), f"admitted {steady} in 6 s (budget 600)"
    pokes = []
    for m in nodes:
        assert rl_status(m)["redis"]["cluster"] is True
        assert all_mode(m, "shared"), modes(m)
        pokes += until(m, lambda st: all(w["redis_servers"] >= 3 for w in st["workers"]),
                       "every worker to know the 3 masters", timeout=5)[1]

    # Kill the bucket's master: its replica is promoted (cluster-node-timeout 1 s).
    t_kill = time.monotonic()
    by_port[owner].kill()
    alive = [n for n in cnodes if n.port != owner]
    wait_for(lambda: slot_owner(alive[0], slot) == replicas[0], timeout=20, interval=0.1,
             what="the replica to take over the bucket's slot")
    t_promoted = time.monotonic()
    for m in nodes:
        pokes += until_mode(m, "shared")[1]
    sleep_until(max(time.monotonic(), t_kill + 8.0) + 1.0)
    t_end = time.monotonic()
    for load in loads:
        load.stop()

    for load in loads:
        assert not load.failures(), load.failures()[:5]
        assert load.max_latency() < 1.0, load.max_latency()
    first = min(min(r[0] for r in l.results) for l in loads)
    duration = t_end - first
    total = sum(l.count() for l in loads) + count_status(pokes, 200)
    expect = 100 * duration + 5
    assert within(total, expect, 0.1), \
        f"admitted {total} over {duration:.1f} s (budget {expect:.0f}); " \
        f"failover took {t_promoted - t_kill:.1f} s"
    after = [l.count(t_promoted + 1.0, t_end) for l in loads]
    assert within(sum(after), 100 * (t_end - t_promoted - 1.0), 0.1), after
    assert max((t for _, t in pokes), default=0) < 1.0
    total_ok = sum(l.count() for l in loads) + count_status(pokes, 200)
    wait_for(lambda: len(origin.records()) == total_ok, timeout=5,
             what=f"origin to have {total_ok} records")
    # The promoted replica holds the bucket now.
    assert by_port[replicas[0]].cli("EXISTS", BUCKET1).strip() == "1"


def fresh_get(m, headers=None):
    """One GET on a fresh connection (the kernel spreads fresh connections over the workers)."""
    with RawConn(m.port, timeout=3) as c:
        c.send(build("GET", "/", headers=headers, host=f"127.0.0.1:{m.port}"))
        return c.read_response()


def metric(m, name):
    """The value of an unlabelled sample in the admin listener's /metrics."""
    found = re.search(rb"^%s (\S+)$" % name.encode(), m.admin("/metrics")[1], re.M)
    assert found, name
    return float(found.group(1))


def assert_shared_budget(m, rps, burst, servers):
    """m decides with the bucket in Redis, not in its on_redis_failure mode (closed in these
    tests, so that any Redis failure is a 503): 40 requests in a row are admitted up to the
    budget (at least one, at most burst + rps x their time) and refused with a 429 that names
    the phase past it; then every worker is shared, connected, with `servers` Redis servers
    known, and /status and /metrics say so."""
    t0 = time.monotonic()
    got = [fresh_get(m) for _ in range(40)]
    took = time.monotonic() - t0
    statuses = [r.status for r in got]
    assert set(statuses) <= {200, 429}, (statuses, m.stderr()[-2000:])
    ok = statuses.count(200)
    assert 1 <= ok <= burst + rps * took + 1, f"{ok} admitted in {took:.2f} s"
    policy = f'"phase1";q={rps};w=1'
    assert all(r.header("ratelimit-policy") == policy for r in got if r.status == 429), got
    _, pokes = until(m, lambda st: all(w["mode"] == "shared" and w["redis_connections"] >= 1
                                       and w["redis_servers"] == servers
                                       for w in st["workers"]),
                     f"every worker shared, knowing {servers} Redis server(s)", timeout=5)
    st = rl_status(m)
    assert st["redis"]["cluster"] is True and st["live_nodes"] == 1, st
    assert rl_totals(m) == (ok + count_status(pokes, 200),
                            statuses.count(429) + count_status(pokes, 429), 0)
    assert metric(m, "meridian_rate_limit_redis_degraded_workers") == 0
    assert metric(m, "meridian_rate_limit_redis_connections") >= len(st["workers"])
    assert "Redis failed" not in m.stderr(), m.stderr()[-2000:]


@pytest.mark.cluster
def test_a_one_node_cluster_holds_the_shared_bucket(redis, origins, meridian):
    """A Redis Cluster of one master with every slot (CLUSTER ADDSLOTSRANGE: `redis-cli
    --cluster create` wants three). It never learned its own address, so CLUSTER SLOTS names
    it "": the node that answered. Meridian keeps its bucket and heartbeat there and limits
    with them, every worker shared (before 546532f: "no master for slot", degraded)."""
    node = cluster_node(redis)
    node.cli("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
    wait_for(lambda: cluster_ok(node), timeout=10, interval=0.1, what="cluster_state:ok")
    assert node.cli("CLUSTER", "SLOTS").split("\n")[:4] == ["0", "16383", "", str(node.port)]
    origin = origins("eu")
    # timeout 1s: a worker's first request waits for CLUSTER SLOTS, then NOSCRIPT and EVAL.
    m = start_node(meridian, origin, redis_addr=[f"127.0.0.1:{node.port}"], cluster=True,
                   on_failure="closed", timeout="1s", phases={"phase1": (10, 5)})
    assert_shared_budget(m, rps=10, burst=5, servers=1)
    assert node.cli("EXISTS", BUCKET1).strip() == "1"
    assert node.cli("ZCARD", NODES).strip() == "1"


@pytest.mark.cluster
def test_an_unknown_endpoint_cluster_holds_the_shared_bucket(redis, origins, meridian):
    """Three masters with cluster-preferred-endpoint-type unknown-endpoint: CLUSTER SLOTS
    names each by a NULL endpoint and its port ("the host you asked, at this port"). Given a
    seed that holds neither the bucket's slot nor the heartbeat's, Meridian learns the three
    masters and keeps both keys on their master, every worker shared (before 546532f the
    whole map was refused: degraded)."""
    cnodes = [cluster_node(redis, "--cluster-preferred-endpoint-type", "unknown-endpoint")
              for _ in range(3)]
    cluster_create(cnodes)

    def holder(key):
        slot = int(cnodes[0].cli("CLUSTER", "KEYSLOT", key))
        port = wait_for(lambda: slot_owner(cnodes[0], slot), what=f"the master of {key}")
        return next(n for n in cnodes if n.port == port)
    bucket, heartbeat = holder(BUCKET1), holder(NODES)
    seed = next(n for n in cnodes if n not in (bucket, heartbeat))
    origin = origins("eu")
    m = start_node(meridian, origin, redis_addr=[f"127.0.0.1:{seed.port}"], cluster=True,
                   on_failure="closed", timeout="1s", phases={"phase1": (10, 5)})
    assert_shared_budget(m, rps=10, burst=5, servers=3)
    assert bucket.cli("EXISTS", BUCKET1).strip() == "1"
    assert heartbeat.cli("ZCARD", NODES).strip() == "1"
    assert seed.cli("DBSIZE").strip() == "0"
