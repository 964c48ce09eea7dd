# SPDX-License-Identifier: MIT
"""Backends given by DNS name, black-box: a name that tests/tools/dns_server.py (a tiny
authoritative server on loopback) resolves to two origins on 127.0.0.2 and 127.0.0.3 makes two
backends, round-robin, shown with their name in /status and health-checked with the name as
Host; a changed answer moves traffic to the new address in a new generation without one failed
request (one in flight finishes on the old one), even when the old backend dies after the
switch; a failing server (SERVFAIL, REFUSED, silence) keeps the last good set and says so once
in the log, while "no such name" (NXDOMAIN) or "no address" (NODATA) empties it and the literal
backends beside it serve alone; an address a literal backend has is not doubled; a name in the
private hosts file is taken from there without a query, and an edit of the file moves it;
both families are asked by default; a reload that changes the resolvers asks every name anew,
one that drops a name forgets it, and neither a reload nor the stop minds a query in flight;
`meridian -t` asks nothing; a name with no answer at start-up delays the start by a bounded
time, then joins without a restart; bad names and bad `resolvers:` values are refused with
file:line; TLS to a named backend checks the certificate against the name; a generation made
for DNS reads no file again (a missing CA file does not stop it, while a reload is refused),
and keeps the health and the idle connections of the backends that stay.

Every config sets resolvers.nameservers (the test server) and resolvers.hosts_file (a file in
tmp_path), and families: [ipv4] unless IPv6 is the point, so neither /etc/hosts nor a real
resolver ever matters. Same port, different loopback addresses: an answer that changes moves
traffic between real processes. One worker where counts must be exact (the round-robin cursor
is per worker)."""
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import (MERIDIAN_BIN, ORIGIN_BIN, SLOW, Origin, config_line, free_port,
                      geo_config, region_status, wait_for)
from test_backend_tls import Pki
from test_weights import names, who
from util_http import RawConn, build
from util_lifecycle import Background, http_get

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools")
DNS_SERVER = os.path.join(TOOLS, "dns_server.py")
EU = {"name": "eu", "lat": 50.11, "lon": 8.68, "default": True}


def ms(v):
    """A duration for the config, scaled for sanitizer builds: ms(200) -> "200ms" (x3 under
    ASan)."""
    return f"{int(v * SLOW)}ms"


# ---- the test DNS server --------------------------------------------------------------------


def encode_name(text):
    return b"".join(bytes([len(l)]) + l.encode("ascii") for l in text.split(".") if l) + b"\0"


class DnsServer:
    """tests/tools/dns_server.py on 127.0.0.1, a port of its own: the zone is a dict written
    to a JSON file (atomically, read by the server at every query); stats() are its query
    counts per "name/TYPE"."""

    def __init__(self, tmp_path, zone):
        tag = random.randrange(1 << 30)
        self.zone_path = str(tmp_path / f"zone-{tag}.json")
        self.stats_path = str(tmp_path / f"dns-stats-{tag}.json")
        self.zone = {}
        self.write(zone)
        with open(tmp_path / f"dns-{tag}.err", "w") as err:
            self.proc = subprocess.Popen(
                ["/usr/bin/python3", DNS_SERVER, "--zone", self.zone_path, "--listen",
                 f"127.0.0.1:{free_port()}", "--stats", self.stats_path],
                stdout=subprocess.PIPE, stderr=err, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("ready "), f"dns_server did not start: {line!r}"
        self.address = line.split()[1]
        self.port = int(self.address.rsplit(":", 1)[1])

    def write(self, zone):
        self.zone = {k: dict(v) for k, v in zone.items()}
        tmp = self.zone_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.zone, f)
        os.replace(tmp, self.zone_path)

    def set(self, name, entry):
        """Replace one name's entry (None: remove the name, NXDOMAIN from now on)."""
        zone = dict(self.zone)
        if entry is None:
            zone.pop(name, None)
        else:
            zone[name] = entry
        self.write(zone)

    def stats(self):
        """{"name/TYPE": count} of every query received so far, once the server has handled
        everything sent before this call: it answers our own probe only after those (one
        socket, read in order), and writes the stats before each answer."""
        self.probe()
        with open(self.stats_path) as f:
            return json.load(f)["queries"]

    def queries(self, name):
        """How many queries (any type) the server has seen for `name`."""
        return sum(n for k, n in self.stats().items() if k.rsplit("/", 1)[0] == name)

    def probe(self, name="probe.invalid-test"):
        qid = random.randrange(1 << 16)
        pkt = struct.pack("!6H", qid, 0x0100, 1, 0, 0, 0) + encode_name(name) + \
            struct.pack("!HH", 1, 1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5 * SLOW)
            s.sendto(pkt, ("127.0.0.1", self.port))
            while True:
                reply = s.recv(4096)
                if reply[:2] == pkt[:2]:
                    return reply[3] & 0xF  # the rcode

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def dns(tmp_path):
    """Factory: dns({"api.test": {"A": [...]}}) starts a DnsServer with that zone."""
    started = []

    def make(zone=None):
        d = DnsServer(tmp_path, zone or {})
        started.append(d)
        return d

    yield make
    for d in started:
        d.stop()


# ---- origins on loopback addresses other than 127.0.0.1 --------------------------------------


class HostOrigin(Origin):
    """tests/tools/origin listening on `host` (any 127/8 address, or ::1) rather than
    127.0.0.1."""

    def __init__(self, tmp_path, name, host, port, tls=None):
        super().__init__(tmp_path, name, port=port, tls=tls)
        self.host = host

    def start(self):
        args = [ORIGIN_BIN, "-L" if self.tls else "-l", self.address,
                "-n", self.name, "-r", self.record]
        if self.tls:
            args += ["-c", self.tls[0], "-k", self.tls[1]]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("ready"), f"origin {self.name} did not start: {line!r}"
        return self

    @property
    def address(self):
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@pytest.fixture
def hosts(tmp_path):
    """Factory: hosts(("a", "127.0.0.2"), ("b", "127.0.0.3"), port=None, tls=None) starts one
    origin per (name, address), all on the same port; returns them in order."""
    started = []

    def make(*specs, port=None, tls=None):
        port = port or free_port()
        out = []
        for name, host in specs:
            o = HostOrigin(tmp_path, name, host, port, tls=tls)
            started.append(o)
            out.append(o.start())
        return out

    yield make
    for o in started:
        o.stop()


# ---- helpers --------------------------------------------------------------------------------


def write_hosts(path, text):
    tmp = str(path) + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, str(path))


def resolvers(d, hosts_path, **over):
    """The resolvers section: the test server, the private hosts file, IPv4 only, quick
    timers (each overridable)."""
    rs = {"nameservers": [d.address], "hosts_file": str(hosts_path), "timeout": ms(300),
          "attempts": 2, "min_ttl": ms(200), "retry": ms(300), "families": ["ipv4"]}
    rs.update(over)
    return rs


def start(meridian, backends, rs, workers=1, region=None, **sections):
    m = meridian(start=False, workers=workers)
    spec = dict(region or EU, backends=list(backends))
    m.write_config(geo_config(m.port, m.admin_port, [spec], workers=workers, resolvers=rs,
                              **sections))
    return m.start()




def name_status(m, host, region="eu"):
    for n in region_status(m, region)["names"]:
        if n["name"] == host:
            return n
    raise AssertionError(f"no name {host!r} in /status")


def backends_of(m, region="eu"):
    return region_status(m, region)["backends"]


def metric(m, line_start):
    text = m.admin("/metrics")[1].decode()
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {line_start} in /metrics")


def serving(m):
    """The generation every worker runs, or None while they differ."""
    st = m.status()
    gens = {w["generation"] for w in st["workers"]}
    return st["generation"] if gens == {st["generation"]} else None


def reload(m, text):
    """Write `text`, SIGHUP, and wait until every worker runs the reload's generation or a
    later one: a generation for a DNS change may follow it at once (conftest's reload()
    waits for exactly one more). Returns the reload's generation."""
    live = re.compile(r"configuration generation (\d+) is live$", re.M)
    seen = len(live.findall(m.stderr()))
    m.write_config(text)
    m.proc.send_signal(signal.SIGHUP)
    gen = wait_for(lambda: (lambda g: int(g[-1]) if len(g) > seen else None)(
        live.findall(m.stderr())), what="the reload's generation in the log")
    wait_for(lambda: (serving(m) or 0) >= gen, what=f"generation {gen} on every worker")
    return gen


def wait_generation_above(m, before):
    """Wait until every worker runs a generation newer than `before`; returns it."""
    return wait_for(lambda: (serving(m) or 0) > before and serving(m),
                    what=f"a generation after {before} on every worker")


# ---- a name, two addresses ------------------------------------------------------------------


def test_a_name_with_two_addresses_is_two_backends(dns, hosts, meridian, tmp_path):
    a, b = hosts(("n-a", "127.0.0.2"), ("n-b", "127.0.0.3"))
    d = dns({"api.test": {"A": ["127.0.0.3", "127.0.0.2"], "ttl": 30}})
    write_hosts(tmp_path / "hosts", "# nothing here\n")
    hc = {"path": "/hc", "interval": ms(150), "timeout": ms(120)}
    # Upper case and a trailing dot: the name is api.test all the same.
    m = start(meridian, [f"API.Test.:{a.port}"], resolvers(d, tmp_path / "hosts"),
              health_check=hc)

    got = names(m, 20)
    assert got.count("n-a") == 10 and got.count("n-b") == 10, got
    assert [r["target"] for r in a.records()].count("/") == 10

    bs = backends_of(m)
    assert sorted(x["address"] for x in bs) == [a.address, b.address], bs
    assert all(x["name"] == "api.test" and x["weight"] == 1 for x in bs), bs
    n = name_status(m, "api.test")
    assert n["port"] == a.port and n["state"] == "ok" and n["source"] == "dns", n
    assert n["addresses"] == 2 and n["backends"] == 2 and n["ttl_s"] == 30, n
    assert n["error"] == "" and n["answers"] >= 1 and n["failures"] == 0, n
    assert -1 <= n["next_in_ms"] <= 30000 and n["resolved_ago_ms"] >= 0, n
    st = m.status()["dns"]
    assert st["names"] == 1 and st["queries"] >= 1 and st["answers"] >= 1, st
    assert st["failures"] == 0 and st["generations_failed"] == 0, st
    assert metric(m, 'meridian_dns_names{state="ok"}') == 1
    assert metric(m, 'meridian_dns_names{state="failed"}') == 0
    assert metric(m, 'meridian_dns_resolutions_total{result="ok"}') >= 1
    assert metric(m, "meridian_dns_queries_total") >= 1

    # IPv4 only: A asked, never AAAA; the name as lower case, without the dot; and once
    # only: its TTL (30 s) has not run out.
    stats = d.stats()
    assert stats.get("api.test/A") == 1 and "api.test/AAAA" not in stats, stats

    # Health checks of a named backend say the name (with the port: it is not 80).
    wait_for(lambda: all(any(r["target"] == "/hc" for r in o.records()) for o in (a, b)),
             what="a health check at each address")
    for o in (a, b):
        checks = [r for r in o.records() if r["target"] == "/hc"]
        host = [v for k, v in checks[0]["headers"] if k.lower() == "host"]
        assert host == [f"api.test:{a.port}"], checks[0]

    # Start-up loaded the addresses it waited for: nothing changed since, so no generation
    # was built for a change.
    st = m.status()
    assert st["generation"] == 1 and st["dns"]["generations"] == 0, st["dns"]
    assert "backend addresses changed" not in m.stderr()


# ---- an address change, under load ----------------------------------------------------------


class Traffic:
    """Requests one after the other on a thread until stopped: five on one keep-alive
    connection, then one on a connection of its own, and again. Each result is
    (time.monotonic() when sent, status or None, body or error)."""

    def __init__(self, port):
        self.port = port
        self.results = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _one(self, conn):
        t = time.monotonic()
        try:
            conn.send(build("GET", "/", host=f"127.0.0.1:{self.port}"))
            r = conn.read_response()
            self.results.append((t, r.status, r.body.decode(errors="replace").strip()))
            return (r.header("connection") or "").lower() != "close"
        except Exception as e:  # noqa: BLE001 - a failure is what we count
            self.results.append((t, None, repr(e)))
            return False

    def _run(self):
        while not self.stopping.is_set():
            for per_connection in (5, 1):
                try:
                    c = RawConn(self.port, timeout=10)
                except OSError as e:
                    self.results.append((time.monotonic(), None, repr(e)))
                    continue
                with c:
                    for _ in range(per_connection):
                        if self.stopping.is_set() or not self._one(c):
                            break

    def wait_more(self, n):
        want = len(self.results) + n
        wait_for(lambda: len(self.results) >= want, what=f"{n} more requests")

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=20 * SLOW)
        assert not self.thread.is_alive(), "the client loop did not stop"
        return self.results


def test_an_address_change_moves_traffic_without_a_failed_request(dns, hosts, meridian,
                                                                   tmp_path):
    old, new = hosts(("c-old", "127.0.0.2"), ("c-new", "127.0.0.3"))
    d = dns({"move.test": {"A": [old.host], "ttl": 1}})
    write_hosts(tmp_path / "hosts", "")
    m = start(meridian, [f"move.test:{old.port}"], resolvers(d, tmp_path / "hosts"), workers=2)
    assert who(m) == (200, "c-old")
    gen = serving(m)
    rebuilt = m.status()["dns"]["generations"]
    rebuilt_metric = metric(m, 'meridian_dns_generations_total{result="ok"}')

    traffic = Traffic(m.port)
    # A long request in flight on the old address while the answer changes.
    long_path = f"/delay/{int(1500 * SLOW)}"
    slow = Background(lambda: http_get(m.port, long_path, timeout=20))
    try:
        wait_for(lambda: any(r["target"] == long_path for r in old.records()),
                 what="the long request at the old address")
        traffic.wait_more(50)
        changed_at = time.monotonic()
        d.set("move.test", {"A": [new.host], "ttl": 1})
        # TTL 1 s: asked again within about a second, then the new generation.
        first_new = wait_for(lambda: next((t for t, s, b in traffic.results[:]
                                           if b == "c-new"), None),
                             timeout=6, what="a request served by the new address")
        assert first_new - changed_at < 4 * SLOW, first_new - changed_at
        now_gen = wait_generation_above(m, gen)
        # Every request sent once every worker runs the new generation goes there.
        switched = time.monotonic()
        traffic.wait_more(50)
        after = [(s, b) for t, s, b in traffic.results[:] if t > switched]
        assert after and all(x == (200, "c-new") for x in after), after[:10]

        # The long request finishes where it started, on the old generation.
        status, _, body = slow.result(timeout=20)
        assert (status, body.strip()) == (200, b"c-old")
        # The old backend dies only now: nothing notices.
        old.stop()
        traffic.wait_more(100)
    finally:
        results = traffic.stop()

    failed = [r for r in results if r[1] != 200]
    assert not failed, failed[:10]
    assert {b for _, _, b in results} == {"c-old", "c-new"}
    assert now_gen == gen + 1, (gen, now_gen)  # one change, one generation
    st = m.status()
    assert st["dns"]["generations"] == rebuilt + 1, st["dns"]
    assert st["dns"]["generations_failed"] == 0, st["dns"]
    assert metric(m, 'meridian_dns_generations_total{result="ok"}') == rebuilt_metric + 1
    assert f"configuration generation {now_gen} is live: backend addresses changed" in \
        m.stderr()
    bs = backends_of(m)
    assert [x["address"] for x in bs] == [new.address], bs
    n = name_status(m, "move.test")
    assert n["state"] == "ok" and n["addresses"] == 1 and n["changed_ago_ms"] >= 0, n


# ---- failures keep the last good set --------------------------------------------------------


@pytest.mark.parametrize("broken", [
    pytest.param({"rcode": "SERVFAIL"}, id="servfail"),
    pytest.param({"rcode": "REFUSED"}, id="refused"),
    pytest.param({"drop": True}, id="silence"),
])
def test_a_failing_server_keeps_the_last_good_addresses(dns, hosts, meridian, tmp_path, broken):
    o, = hosts(("f-one", "127.0.0.2"))
    d = dns({"flaky.test": {"A": [o.host], "ttl": 1}})
    write_hosts(tmp_path / "hosts", "")
    m = start(meridian, [f"flaky.test:{o.port}"],
              resolvers(d, tmp_path / "hosts", timeout=ms(150), attempts=2, retry=ms(200)))
    assert name_status(m, "flaky.test")["state"] == "ok"
    gen = serving(m)
    rebuilt = m.status()["dns"]["generations"]
    failed_before = metric(m, 'meridian_dns_resolutions_total{result="failed"}')

    d.set("flaky.test", broken)
    n = wait_for(lambda: (lambda n: n if n["state"] == "failed" else None)(
        name_status(m, "flaky.test")), timeout=8, what="the name to fail")
    assert n["error"] != "" and n["addresses"] == 1 and n["backends"] == 1, n
    assert n["source"] == "dns", n
    assert names(m, 10) == ["f-one"] * 10
    # Asked again after `retry`, failing each time: said once in the log all the same.
    wait_for(lambda: name_status(m, "flaky.test")["failures"] >= 3, timeout=8,
             what="three failures in a row")
    assert names(m, 5) == ["f-one"] * 5
    warnings = [l for l in m.stderr().splitlines()
                if "backend name flaky.test: cannot resolve" in l]
    assert len(warnings) == 1, warnings
    assert "keeping 1 address" in warnings[0], warnings
    assert metric(m, 'meridian_dns_resolutions_total{result="failed"}') >= failed_before + 3
    assert metric(m, 'meridian_dns_names{state="failed"}') == 1
    assert m.status()["dns"]["failures"] >= 3
    assert [x["address"] for x in backends_of(m)] == [o.address]

    d.set("flaky.test", {"A": [o.host], "ttl": 1})
    n = wait_for(lambda: (lambda n: n if n["state"] == "ok" else None)(
        name_status(m, "flaky.test")), timeout=8, what="the name to answer again")
    assert n["addresses"] == 1 and n["error"] == "", n
    assert names(m, 5) == ["f-one"] * 5
    # The set never changed: no generation was built for it.
    assert serving(m) == gen
    assert m.status()["dns"]["generations"] == rebuilt
    assert metric(m, 'meridian_dns_names{state="ok"}') == 1


# ---- no such name: no backend ---------------------------------------------------------------


@pytest.mark.parametrize("gone", [
    pytest.param(None, id="nxdomain"),
    pytest.param({"AAAA": ["::1"], "ttl": 1}, id="nodata"),
])
def test_a_name_that_is_gone_stands_for_no_backend(dns, hosts, meridian, tmp_path, gone):
    lit, named = hosts(("e-literal", "127.0.0.1"), ("e-named", "127.0.0.2"))
    d = dns({"gone.test": {"A": [named.host], "ttl": 1}})
    write_hosts(tmp_path / "hosts", "")
    m = start(meridian, [lit.address, {"address": f"gone.test:{lit.port}", "weight": 3}],
              resolvers(d, tmp_path / "hosts", max_ttl=ms(1000)))
    got = names(m, 40)
    assert got.count("e-named") == 30 and got.count("e-literal") == 10, got
    b = next(x for x in backends_of(m) if x["address"] == named.address)
    assert b["name"] == "gone.test" and b["weight"] == 3, b
    gen = serving(m)
    empty_before = metric(m, 'meridian_dns_resolutions_total{result="empty"}')

    d.set("gone.test", gone)
    n = wait_for(lambda: (lambda n: n if n["state"] == "empty" else None)(
        name_status(m, "gone.test")), timeout=8, what="the name to be empty")
    assert n["addresses"] == 0, n
    wait_generation_above(m, gen)
    assert names(m, 20) == ["e-literal"] * 20
    n = name_status(m, "gone.test")
    assert n["backends"] == 0 and n["state"] == "empty", n
    bs = backends_of(m)
    assert [x["address"] for x in bs if "name" not in x] == [lit.address], bs
    holder = [x for x in bs if x.get("name") == "gone.test"]
    want = {"address": f"gone.test:{lit.port}", "name": "gone.test", "weight": 3,
            "drain": False, "state": "resolving"}
    assert len(holder) == 1 and want.items() <= holder[0].items(), bs
    assert metric(m, 'meridian_dns_resolutions_total{result="empty"}') > empty_before
    assert metric(m, 'meridian_dns_names{state="empty"}') == 1
    assert m.status()["dns"]["empty"] >= 1
    assert "backend name gone.test: cannot resolve" not in m.stderr()

    # Back in the zone: asked again within max_ttl (1 s, not the NXDOMAIN's 5 s), the
    # backend is back.
    gen = serving(m)
    t0 = time.monotonic()
    d.set("gone.test", {"A": [named.host], "ttl": 1})
    wait_for(lambda: name_status(m, "gone.test")["backends"] == 1, timeout=8,
             what="the name's backend back")
    assert time.monotonic() - t0 < 3.5 * SLOW, time.monotonic() - t0
    assert serving(m) > gen
    got = names(m, 8)
    assert got.count("e-named") == 6 and got.count("e-literal") == 2, got


def test_an_address_a_literal_backend_has_is_not_doubled(dns, hosts, meridian, tmp_path):
    """A name's address that the region already has as a literal is one backend, not two;
    a name whose only address is such is resolved (ok), just with no backend of its own, and
    is not shown as one still resolving."""
    a, b = hosts(("u-a", "127.0.0.2"), ("u-b", "127.0.0.3"))
    d = dns({"both.test": {"A": [a.host, b.host]}, "same.test": {"A": [a.host]}})
    write_hosts(tmp_path / "hosts", "")
    m = start(meridian, [a.address, f"both.test:{a.port}", f"same.test:{a.port}"],
              resolvers(d, tmp_path / "hosts"))
    got = names(m, 10)
    assert got.count("u-a") == 5 and got.count("u-b") == 5, got
    bs = backends_of(m)
    assert [(x["address"], x.get("name")) for x in bs if x.get("state") != "resolving"] == \
        [(a.address, None), (b.address, "both.test")], bs
    n = name_status(m, "both.test")
    assert n["state"] == "ok" and n["addresses"] == 2 and n["backends"] == 1, n
    n = name_status(m, "same.test")
    assert n["state"] == "ok" and n["addresses"] == 1 and n["backends"] == 0, n
    assert [x for x in bs if x.get("state") == "resolving"] == [], bs


# ---- the hosts file -------------------------------------------------------------------------


def test_a_name_in_the_hosts_file_is_not_asked_and_follows_the_file(dns, hosts, meridian,
                                                                    tmp_path):
    a, b = hosts(("h-a", "127.0.0.2"), ("h-b", "127.0.0.3"))
    # The DNS server has another answer: the hosts file must win, without a query.
    d = dns({"local.test": {"A": [b.host], "ttl": 1}})
    hf = tmp_path / "hosts"
    write_hosts(hf, f"127.0.0.1 localhost\n{a.host}\tLocal.Test other.test  # ours\n")
    m = start(meridian, [f"local.test:{a.port}"], resolvers(d, hf, min_ttl=ms(200)))
    assert names(m, 5) == ["h-a"] * 5
    n = name_status(m, "local.test")
    assert n["state"] == "ok" and n["source"] == "hosts_file" and n["addresses"] == 1, n
    assert d.queries("local.test") == 0
    gen = serving(m)

    write_hosts(hf, f"127.0.0.1 localhost\n{b.host} local.test\n")
    wait_generation_above(m, gen)
    wait_for(lambda: who(m) == (200, "h-b"), what="traffic on the hosts file's new address")
    assert names(m, 5) == ["h-b"] * 5
    assert [x["address"] for x in backends_of(m)] == [b.address]
    assert name_status(m, "local.test")["source"] == "hosts_file"
    assert d.queries("local.test") == 0
    assert m.status()["dns"]["queries"] == 0

    # hosts_file: false: the file (which says h-a again) is not read, the DNS server
    # answers (h-b).
    write_hosts(hf, f"{a.host} local.test\n")
    m2 = start(meridian, [f"local.test:{a.port}"], resolvers(d, hf, hosts_file=False))
    assert names(m2, 3) == ["h-b"] * 3
    n = name_status(m2, "local.test")
    assert n["source"] == "dns" and n["addresses"] == 1, n
    assert d.queries("local.test") >= 1


# ---- both families; reloads that change the resolvers and the names -------------------------


def test_both_families_then_a_reload_to_ipv6_only(dns, hosts, meridian, tmp_path):
    v4, v6 = hosts(("d-v4", "127.0.0.2"), ("d-v6", "::1"))
    d = dns({"dual.test": {"A": [v4.host], "AAAA": [v6.host], "ttl": 30}})
    write_hosts(tmp_path / "hosts", "")
    rs = resolvers(d, tmp_path / "hosts")
    del rs["families"]  # the default: both
    m = start(meridian, [f"dual.test:{v4.port}"], rs)
    got = names(m, 10)
    assert got.count("d-v4") == 5 and got.count("d-v6") == 5, got
    # IPv4 before IPv6, whatever the order of the answers.
    assert [x["address"] for x in backends_of(m)] == [v4.address, v6.address]
    assert name_status(m, "dual.test")["addresses"] == 2
    stats = d.stats()
    assert stats.get("dual.test/A", 0) >= 1 and stats.get("dual.test/AAAA", 0) >= 1, stats

    # A reload that asks IPv6 only: the name is asked anew, the IPv4 backend goes.
    text = geo_config(m.port, m.admin_port, [dict(EU, backends=[f"dual.test:{v4.port}"])],
                      workers=1, resolvers=dict(rs, families=["ipv6"]))
    reload(m, text)
    wait_for(lambda: [x["address"] for x in backends_of(m)] == [v6.address],
             what="the IPv4 backend to go")
    assert names(m, 4) == ["d-v6"] * 4
    assert name_status(m, "dual.test")["addresses"] == 1


def test_a_reload_to_another_nameserver_and_other_names(dns, hosts, meridian, tmp_path):
    a, b, c = hosts(("r-a", "127.0.0.2"), ("r-b", "127.0.0.3"), ("r-c", "127.0.0.4"))
    d1 = dns({"api.test": {"A": [a.host], "ttl": 60}})
    d2 = dns({"api.test": {"A": [b.host], "ttl": 60}, "new.test": {"A": [c.host], "ttl": 60}})
    write_hosts(tmp_path / "hosts", "")
    m = start(meridian, [f"api.test:{a.port}"], resolvers(d1, tmp_path / "hosts"))
    assert names(m, 3) == ["r-a"] * 3

    def config(d, *hosts):
        return geo_config(m.port, m.admin_port,
                          [dict(EU, backends=[f"{h}:{a.port}" for h in hosts])], workers=1,
                          resolvers=resolvers(d, tmp_path / "hosts"))

    # Another nameserver and a new name: both names asked there, at once (api.test's TTL of
    # 60 s is not waited for).
    reload(m, config(d2, "api.test", "new.test"))
    wait_for(lambda: sorted(x["address"] for x in backends_of(m)) == [b.address, c.address],
             what="the new nameserver's answers in use")
    got = names(m, 10)
    assert got.count("r-b") == 5 and got.count("r-c") == 5, got
    assert d2.queries("api.test") >= 1 and d2.queries("new.test") >= 1
    assert d1.queries("new.test") == 0
    assert {n["name"]: n["state"] for n in region_status(m, "eu")["names"]} == \
        {"api.test": "ok", "new.test": "ok"}

    # A name no longer used is forgotten.
    reload(m, config(d2, "new.test"))
    assert [n["name"] for n in region_status(m, "eu")["names"]] == ["new.test"]
    assert names(m, 4) == ["r-c"] * 4
    assert m.status()["dns"]["names"] == 1
    assert m.proc.poll() is None


def test_reload_and_stop_while_a_query_is_in_flight(dns, hosts, meridian, tmp_path):
    """A name whose server never answers has a query in flight most of the time: a reload
    that changes the resolvers (a new evdns base) and the stop both happen with one
    outstanding, and neither crashes, leaks (ASan) nor waits for it."""
    lit, = hosts(("q-literal", "127.0.0.1"))
    d = dns({"hang.test": {"drop": True}})
    write_hosts(tmp_path / "hosts", "")

    def config(timeout_ms):
        rs = resolvers(d, tmp_path / "hosts", timeout=ms(timeout_ms), attempts=1,
                       retry=ms(100))
        return geo_config(m.port, m.admin_port,
                          [dict(EU, backends=[lit.address, f"hang.test:{lit.port}"])],
                          workers=1, resolvers=rs)

    m = meridian(start=False, workers=1)
    m.write_config(config(1000))
    m.start()

    def in_flight():
        n = name_status(m, "hang.test")
        return n["next_in_ms"] == -1 and n["failures"] >= 1

    wait_for(in_flight, what="a query in flight")
    reload(m, config(900))
    assert names(m, 3) == ["q-literal"] * 3
    wait_for(in_flight, what="a query in flight after the reload")
    t0 = time.monotonic()
    assert m.stop() == 0
    assert time.monotonic() - t0 < 3 * SLOW, time.monotonic() - t0


# ---- meridian -t resolves nothing -----------------------------------------------------------


def test_check_mode_sends_no_query(dns, tmp_path):
    d = dns({"api.test": {"A": ["127.0.0.2"]}, "web.test": {"A": ["127.0.0.3"]}})
    write_hosts(tmp_path / "hosts", "")
    port, admin = free_port(), free_port()
    backends = ["api.test:8080", {"address": "web.test:8443", "weight": 2}, "127.0.0.1:9000"]
    # Nameservers with and without a port (53), IPv4 and IPv6: all taken, none asked.
    rs = resolvers(d, tmp_path / "hosts",
                   nameservers=[d.address, "127.0.0.1", "::1", "[::1]:5353"])
    text = geo_config(port, admin, [dict(EU, backends=backends)], resolvers=rs)
    path = tmp_path / "check.yaml"
    path.write_text(text + "run_as_root: true\n")
    r = subprocess.run([MERIDIAN_BIN, "-t", "-c", str(path)], capture_output=True, text=True,
                       timeout=10 * SLOW)
    assert r.returncode == 0, r
    assert {k: v for k, v in d.stats().items() if not k.startswith("probe.")} == {}


# ---- start-up with a name that does not answer ----------------------------------------------


def test_start_waits_a_bounded_time_for_a_silent_name_then_it_joins(dns, hosts, meridian,
                                                                   tmp_path):
    lit, late = hosts(("s-literal", "127.0.0.1"), ("s-late", "127.0.0.2"))
    d = dns({"late.test": {"drop": True}})
    write_hosts(tmp_path / "hosts", "")
    rs = resolvers(d, tmp_path / "hosts", timeout=ms(200), attempts=1, retry=ms(300))
    m = meridian(start=False, workers=1)
    m.write_config(geo_config(m.port, m.admin_port,
                              [dict(EU, backends=[lit.address, f"late.test:{lit.port}"])],
                              workers=1, resolvers=rs))
    t0 = time.monotonic()
    m.start()
    # At most timeout * attempts + 500 ms of waiting, plus the process's own start.
    assert time.monotonic() - t0 < 3 * SLOW, time.monotonic() - t0
    assert names(m, 6) == ["s-literal"] * 6
    n = name_status(m, "late.test")
    assert n["state"] in ("failed", "pending") and n["backends"] == 0, n
    holder = [x for x in backends_of(m) if x.get("name") == "late.test"]
    assert len(holder) == 1 and holder[0]["state"] == "resolving", backends_of(m)
    gen = serving(m)

    d.set("late.test", {"A": [late.host], "ttl": 60})
    wait_for(lambda: name_status(m, "late.test")["backends"] == 1, timeout=8,
             what="the late name's backend to join")
    assert serving(m) > gen
    assert m.proc.poll() is None
    got = names(m, 10)
    assert got.count("s-late") == 5 and got.count("s-literal") == 5, got
    assert name_status(m, "late.test")["state"] == "ok"
    assert not [x for x in backends_of(m) if x.get("state") == "resolving"]


# ---- configuration errors -------------------------------------------------------------------


BAD_CONFIG = """\
workers: 1
admin: {{ address: "127.0.0.1:{admin}" }}
listeners:
  - {{ name: main, address: "127.0.0.1:{port}" }}
resolvers:
  nameservers: ["127.0.0.1:5353", "dns.example"]
  timeout: 50ms
  attempts: 0
  min_ttl: 10s
  max_ttl: 1s
  families: [ipv4, ipv5]
  retries: 3
regions:
  - name: eu
    location: {{ lat: 50.1, lon: 8.7 }}
    default: true
    backends:
      - "local_host:80"
      - {{ address: "api.test:0" }}
      - "API.test.:8080"
      - "api.test:8080"
      - "127.0.0.1:9000"
run_as_root: true
"""


def test_bad_names_and_resolvers_are_refused_with_file_and_line(tmp_path):
    text = BAD_CONFIG.format(admin=free_port(), port=free_port())
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    r = subprocess.run([MERIDIAN_BIN, "-t", "-c", str(path)], capture_output=True, text=True,
                       timeout=10 * SLOW)
    assert r.returncode == 1, r

    def at(prefix):
        return f"{path}:{config_line(text, prefix)}: "

    want = [
        at('  nameservers:') + 'resolvers.nameservers[1]: expected a nameserver\'s IP address',
        at('  timeout:') + 'resolvers.timeout: "50ms" is out of range 100ms..60s',
        at('  attempts:') + 'resolvers.attempts: expected a number 1..10, got "0"',
        at('  families:') + 'resolvers.families[1]: expected ipv4 or ipv6, got "ipv5"',
        at('  min_ttl:') + "resolvers: min_ttl (10000ms) is longer than max_ttl (1000ms)",
        at('  retries:') + 'unknown key "retries" in resolvers',
        at('      - "local_host') + 'regions[0].backends[0]: "local_host" is neither an IP '
        "address nor a host name",
        at('      - { address: "api.test:0"') + 'regions[0].backends[1].address: port "0" is '
        "not a number 1..65535",
        at('      - "api.test:8080"') + 'regions[0].backends[3]: duplicate backend '
        '"api.test:8080"',
    ]
    for w in want:
        assert w in r.stderr, (w, r.stderr)
    # One line per error: the good entries said nothing.
    assert "backends[2]:" not in r.stderr.replace("(first at regions[0].backends[2]", "")
    assert "backends[4]" not in r.stderr


# ---- TLS to a named backend -----------------------------------------------------------------


@pytest.fixture(scope="module")
def api_pki(tmp_path_factory):
    p = Pki(tmp_path_factory.mktemp("dns-pki"), "dns")
    return {"ca": p.ca, "api": p.issue("api", "api.test", "DNS:api.test")}


def test_tls_to_a_named_backend_checks_the_name(dns, hosts, meridian, tmp_path, api_pki):
    o, = hosts(("t-api", "127.0.0.2"), tls=api_pki["api"])
    d = dns({"api.test": {"A": [o.host]}, "other.test": {"A": [o.host]}})
    write_hosts(tmp_path / "hosts", "")
    hc = {"path": "/hc", "interval": ms(200), "timeout": ms(150)}
    m = start(meridian, [{"address": f"api.test:{o.port}", "tls": {"ca_file": api_pki["ca"]}}],
              resolvers(d, tmp_path / "hosts"), health_check=hc)
    assert who(m) == (200, "t-api")
    rec = next(r for r in o.records() if r["target"] == "/")
    assert rec["tls"]["sni"] == "api.test", rec
    b = backends_of(m)[0]
    assert b["name"] == "api.test" and b["sni"] == "api.test" and b["tls_verify"] is True, b
    # Health checks over TLS say the name, with the port (it is not 443).
    wait_for(lambda: any(r["target"] == "/hc" for r in o.records()), what="a health check")
    check = next(r for r in o.records() if r["target"] == "/hc")
    assert check["tls"]["sni"] == "api.test", check
    assert [v for k, v in check["headers"] if k.lower() == "host"] == [f"api.test:{o.port}"]

    # The same backend by another name: the certificate is not for it.
    seen = len([r for r in o.records() if r["target"] == "/"])
    m2 = start(meridian, [{"address": f"other.test:{o.port}", "tls": {"ca_file": api_pki["ca"]}}],
               resolvers(d, tmp_path / "hosts"))
    assert who(m2)[0] == 502
    wait_for(lambda: "hostname mismatch" in m2.stderr(), what="the reason in the log")
    assert backends_of(m2)[0]["sni"] == "other.test"
    assert len([r for r in o.records() if r["target"] == "/"]) == seen  # nothing reached it


# ---- generations made for DNS changes -------------------------------------------------------


def test_a_dns_generation_reads_no_file(dns, hosts, meridian, tmp_path, api_pki):
    """A generation made for a DNS change reads no file again: with the CA file gone, an
    address change still goes live (TLS to the new address verified with the CA the
    running generation loaded), while a reload (SIGHUP), which does read files, is refused
    and keeps that generation."""
    a, b = hosts(("g-a", "127.0.0.2"), ("g-b", "127.0.0.3"), tls=api_pki["api"])
    ca = tmp_path / "ca.pem"
    with open(api_pki["ca"]) as f:
        ca_text = f.read()
    ca.write_text(ca_text)
    d = dns({"api.test": {"A": [a.host], "ttl": 1}})
    write_hosts(tmp_path / "hosts", "")
    m = start(meridian, [{"address": f"api.test:{a.port}", "tls": {"ca_file": str(ca)}}],
              resolvers(d, tmp_path / "hosts"))
    assert who(m) == (200, "g-a")
    gen = serving(m)
    failed_before = m.status()["dns"]["generations_failed"]

    os.unlink(ca)
    d.set("api.test", {"A": [b.host], "ttl": 1})
    gen = wait_generation_above(m, gen)
    wait_for(lambda: [x["address"] for x in backends_of(m)] == [b.address],
             what="the new address in use")
    assert names(m, 3) == ["g-b"] * 3
    assert m.status()["dns"]["generations_failed"] == failed_before
    assert metric(m, 'meridian_dns_generations_total{result="failed"}') == failed_before

    reloads_failed = m.status()["reloads"]["failed"]
    m.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: m.status()["reloads"]["failed"] > reloads_failed, what="a refused reload")
    assert "ca.pem" in m.stderr() and "reload refused" in m.stderr()
    assert serving(m) == gen
    assert names(m, 2) == ["g-b"] * 2

    ca.write_text(ca_text)
    d.set("api.test", {"A": [a.host, b.host], "ttl": 1})
    wait_generation_above(m, gen)
    wait_for(lambda: sorted(x["address"] for x in backends_of(m)) == [a.address, b.address],
             what="both addresses in use")
    got = names(m, 4)
    assert got.count("g-a") == 2 and got.count("g-b") == 2, got


def test_backends_that_stay_keep_their_health_and_connections(dns, hosts, meridian, tmp_path):
    """A generation made for a DNS change is a reload in all but name: a backend in both
    keeps its health (one marked down stays down, no request finds it) and its idle
    upstream connection (the next request to it reuses it)."""
    a, b, c = hosts(("k-a", "127.0.0.2"), ("k-b", "127.0.0.3"), ("k-c", "127.0.0.4"))
    d = dns({"keep.test": {"A": [a.host, b.host], "ttl": 1}})
    write_hosts(tmp_path / "hosts", "")
    hc = {"path": "/hc", "interval": ms(100), "timeout": ms(80), "rise": 1, "fall": 1}
    # Long enough that no check comes between the change and the requests after it.
    slow_hc = dict(hc, interval="30s", timeout="1s")
    m = start(meridian, [f"keep.test:{a.port}"], resolvers(d, tmp_path / "hosts"),
              health_check=hc)
    got = names(m, 4)
    assert got.count("k-a") == 2 and got.count("k-b") == 2, got
    conns_a = {r["conn"] for r in a.records() if r["target"] == "/"}
    assert len(conns_a) == 1, a.records()

    b.stop()
    wait_for(lambda: next(x for x in backends_of(m) if x["address"] == b.address)["health"]
             == "down", what="the stopped backend marked down")
    # Checks from now on are rare: the state after the change is the one carried over.
    gen = reload(m, geo_config(m.port, m.admin_port,
                               [dict(EU, backends=[f"keep.test:{a.port}"])], workers=1,
                               resolvers=resolvers(d, tmp_path / "hosts"),
                               health_check=slow_hc))
    assert next(x for x in backends_of(m) if x["address"] == b.address)["health"] == "down"

    d.set("keep.test", {"A": [a.host, b.host, c.host], "ttl": 1})
    wait_generation_above(m, gen)
    st = {x["address"]: x["health"] for x in backends_of(m)}
    assert st[b.address] == "down" and st[a.address] == "up", st
    got = names(m, 6)
    assert "k-b" not in got and got.count("k-a") >= 2 and "k-c" in got, got
    after_a = [r["conn"] for r in a.records() if r["target"] == "/"]
    assert set(after_a) == conns_a, after_a  # the pooled connection, reused
