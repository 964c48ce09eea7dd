# SPDX-License-Identifier: MIT
"""Backend weights and drain (issue 9), black-box: weights 3:1 split round-robin traffic
exactly 3:1 in the smooth order; `drain: true` set by a reload lets a long request in flight
on the backend finish, sends it nothing new, does not reuse or keep its connections, and
lifting it brings traffic back; a region whose every backend drains passes its clients to
the next region (503 when there is none) without marking anything down, while health
checks go on and /status and /metrics say "draining"; a bad weight is refused with
file:line by -t, at start and on reload (which keeps the running generation).

One worker, so that the balancer's cursor is one and the counts are exact; no GeoIP
database, so clients go to the default region first, then the others by distance."""
import subprocess

from conftest import (MERIDIAN_BIN, SLOW, config_line, geo_config, region_status, wait_for)
from test_metrics import PROMTOOL, Scrape, promtool_check_metrics
from util_http import established_to, request
from util_lifecycle import Background, http_get

EU = {"name": "eu", "lat": 50.11, "lon": 8.68, "default": True}
US = {"name": "us", "lat": 39.04, "lon": -77.49}
HC = {"path": "/hc", "interval": f"{int(200 * SLOW)}ms", "timeout": f"{int(150 * SLOW)}ms",
      "rise": 1, "fall": 1}


def config(m, *regions, **sections):
    """A config for meridian `m`: regions are (template, backends) pairs; a backend is an
    address string or a dict of the mapping form."""
    specs = [dict(template, backends=list(backends)) for template, backends in regions]
    return geo_config(m.port, m.admin_port, specs, workers=1, **sections)


def start(meridian, *regions, **sections):
    m = meridian(start=False, workers=1)
    m.write_config(config(m, *regions, **sections))
    return m.start()


def who(m, path="/"):
    r = request(m.port, "GET", path, timeout=10 * SLOW)
    return r.status, r.body.decode(errors="replace").strip()


def names(m, n):
    out = []
    for _ in range(n):
        status, body = who(m)
        assert status == 200, (status, body)
        out.append(body)
    return out


def backend_status(m, address):
    for r in m.status()["regions"]:
        for b in r["backends"]:
            if b["address"] == address:
                return b
    raise AssertionError(f"no backend {address} in /status")


def metric(m, name, backend):
    text = m.admin("/metrics")[1].decode()
    for line in text.splitlines():
        if line.startswith(name + "{") and f'backend="{backend}"' in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} for {backend} in /metrics")


# ---- (a) weights ----------------------------------------------------------------------------


def test_weights_3_to_1_exact_and_smooth(origins, meridian):
    a, b = origins("w-a", "w-b")
    m = start(meridian, (EU, [{"address": a.address, "weight": 3}, b.address]))
    got = names(m, 400)
    # Smooth weighted round-robin: a a b a, again and again - never b twice, never a burst.
    assert got[:8] == ["w-a", "w-a", "w-b", "w-a"] * 2, got[:8]
    assert got.count("w-a") == 300 and got.count("w-b") == 100
    assert len(a.records()) == 300 and len(b.records()) == 100
    st = backend_status(m, a.address)
    assert st["weight"] == 3 and st["drain"] is False and st["state"] == "up", st
    assert backend_status(m, b.address)["weight"] == 1


def test_least_outstanding_follows_the_weights_when_idle(origins, meridian):
    """One request at a time: every backend has nothing in flight at each pick, and the
    ties must go the weights' way (3:1), not a plain rotation (1:1)."""
    a, b = origins("lo-a", "lo-b")
    m = start(meridian, (dict(EU, balance="least_outstanding"),
                         [{"address": a.address, "weight": 3}, b.address]))
    got = names(m, 400)
    assert got.count("lo-a") == 300 and got.count("lo-b") == 100, (got.count("lo-a"), got[:8])


def test_weight_0_is_never_picked(origins, meridian):
    a, b, c = origins("z-a", "z-b", "z-c")
    m = start(meridian, (EU, [a.address, {"address": b.address, "weight": 0}, c.address]))
    got = names(m, 30)
    assert got.count("z-a") == 15 and got.count("z-c") == 15, got
    assert b.records() == []
    assert backend_status(m, b.address)["state"] == "draining"


# ---- (b) drain on reload --------------------------------------------------------------------


def test_drain_on_reload_finishes_in_flight_and_sends_nothing_new(origins, meridian):
    a, b = origins("d-a", "d-b")
    m = start(meridian, (EU, [a.address, b.address]))
    long_ms = int(2500 * SLOW)
    long_path = f"/delay/{long_ms}"
    by_name = {a.name: a, b.name: b}

    # A long request in flight on one backend (x), the other (y) answering meanwhile.
    slow = Background(lambda: http_get(m.port, long_path, timeout=20))
    x = wait_for(lambda: next((o for o in (a, b)
                               if any(r["target"] == long_path for r in o.records())), None),
                 what="the long request at a backend")
    y = b if x is a else a
    assert who(m) == (200, y.name)
    # A second, short request on x: a connection of its own, idle in the pool afterwards.
    assert who(m, "/delay/10") == (200, x.name)
    assert len(established_to(x.port)) == 2
    x_records = len(x.records())

    def drained(addr_x, addr_y, drain=True):
        spec = {"address": addr_x, "drain": drain}
        return config(m, (EU, [spec, addr_y] if x is a else [addr_y, spec]))

    m.reload(drained(x.address, y.address))
    assert not slow.done(), "the long request ended before the reload took effect"
    st = backend_status(m, x.address)
    assert st["state"] == "draining" and st["drain"] is True and st["weight"] == 1, st
    assert backend_status(m, y.address)["state"] == "up"

    # Nothing new reaches x: neither a fresh connection nor its idle pooled one.
    got = names(m, 20)
    assert got == [y.name] * 20, got
    assert len(x.records()) == x_records

    # The long request finishes where it started, whole.
    status, _, body = slow.result(timeout=20)
    assert (status, body.decode().strip()) == (200, x.name)
    assert len(x.records()) == x_records
    # ... and x's connections are let go, not kept idle for the 30 s idle timeout.
    wait_for(lambda: not established_to(x.port), timeout=5,
             what="connections to the drained backend to close")

    # Lifting the drain sends x traffic again, round-robin as before.
    m.reload(drained(x.address, y.address, drain=False))
    assert backend_status(m, x.address)["state"] == "up"
    got = names(m, 10)
    assert got.count(x.name) == 5 and got.count(y.name) == 5, got
    assert len(by_name[x.name].records()) == x_records + 5


def test_drain_on_reload_closes_the_idle_connections_at_once(origins, meridian):
    """Nothing in flight to the drained backend: its pooled keep-alive connections are
    closed when the worker adopts the generation, not 30 s later at the idle timeout; the
    other backend's stay pooled."""
    a, b = origins("i-a", "i-b")
    m = start(meridian, (EU, [a.address, b.address]))
    assert sorted(names(m, 2)) == ["i-a", "i-b"]
    wait_for(lambda: len(established_to(a.port)) == 1 and len(established_to(b.port)) == 1,
             what="one pooled connection to each backend")
    m.reload(config(m, (EU, [{"address": a.address, "drain": True}, b.address])))
    wait_for(lambda: not established_to(a.port), timeout=3 * SLOW,
             what="the drained backend's idle connection to close")
    assert len(established_to(b.port)) == 1
    assert names(m, 3) == ["i-b"] * 3


# ---- (c) a region with every backend drained ------------------------------------------------


def test_fully_drained_region_fails_over_and_is_still_checked(origins, meridian):
    a, b, c = origins("f-a", "f-b", "f-c")
    m = start(meridian, (EU, [a.address, b.address]), (US, [c.address]), health_check=HC)
    wait_for(lambda: all(backend_status(m, o.address)["state"] == "up" for o in (a, b, c)),
             what="every backend up")
    assert set(names(m, 4)) == {"f-a", "f-b"}

    m.reload(config(m, (EU, [{"address": a.address, "drain": True},
                              {"address": b.address, "weight": 0}]),
                    (US, [c.address]), health_check=HC))
    fin_before = region_status(m, "us")["failovers_in"]
    assert names(m, 10) == ["f-c"] * 10
    assert region_status(m, "us")["failovers_in"] == fin_before + 10
    eu = region_status(m, "eu")
    assert eu["total"] == 0 and eu["healthy"] == 0, eu
    for o, weight in ((a, 1), (b, 0)):
        st = backend_status(m, o.address)
        assert st["state"] == "draining" and st["weight"] == weight, st
        assert st["health"] == "up", st  # not marked down
        assert metric(m, "meridian_backend_draining", o.address) == 1
        assert metric(m, "meridian_backend_up", o.address) == 1
    assert metric(m, "meridian_backend_draining", c.address) == 0
    assert metric(m, "meridian_backend_weight", b.address) == 0
    assert metric(m, "meridian_backend_weight", a.address) == 1
    text = m.admin("/metrics")[1].decode()
    Scrape(text)  # the exposition's rules, as test_metrics.py checks them
    if PROMTOOL:
        promtool_check_metrics(text)

    # Health checks go on while it drains, and only they reach it.
    seen = len(a.records())
    wait_for(lambda: len(a.records()) >= seen + 2, what="health checks of the drained backend")
    new = a.records()[seen:]
    assert [r["target"] for r in new] == ["/hc"] * len(new)

    # Nowhere left to go: 503, and the drained backends still take nothing.
    m.reload(config(m, (EU, [{"address": a.address, "drain": True},
                              {"address": b.address, "weight": 0}]), health_check=HC))
    served = sum(1 for r in a.records() + b.records() if r["target"] != "/hc")
    for _ in range(5):
        assert who(m)[0] == 503
    assert sum(1 for r in a.records() + b.records() if r["target"] != "/hc") == served


# ---- (d) bad configurations -----------------------------------------------------------------


def test_bad_weight_refused_with_line_and_reload_keeps_generation(origins, meridian, tmp_path):
    a, b = origins("e-a", "e-b")
    m = start(meridian, (EU, [{"address": a.address, "weight": 3}, b.address]))
    good_order = names(m, 4)
    assert good_order == ["e-a", "e-a", "e-b", "e-a"]

    bad = config(m, (EU, [{"address": a.address, "weight": 257},
                          {"address": b.address, "drain": "yes", "wieght": 1}]))
    line = config_line(bad, '  - { name: "eu"')
    path = tmp_path / "bad.yaml"
    path.write_text(bad)
    r = subprocess.run([MERIDIAN_BIN, "-t", "-c", str(path)], capture_output=True, text=True,
                       timeout=10 * SLOW)
    assert r.returncode == 1, r
    want = [f"{path}:{line}: regions[0].backends[0].weight: expected a number 0..256, "
            f'got "257"',
            f"{path}:{line}: regions[0].backends[1].drain: expected true or false, got \"yes\"",
            f'{path}:{line}: unknown key "wieght" in regions[0].backends[1] (expected one of: '
            f"address, weight, drain, tls)"]
    for w in want:
        assert w in r.stderr, (w, r.stderr)

    generation = m.reload(bad, expect_success=False)
    err = m.stderr()
    assert f"{m.config_path}:{line}: regions[0].backends[0].weight: expected a number " \
           f"0..256" in err, err[-2000:]
    assert m.generation() == generation
    # Still the old weights, the cycle going on where it was.
    assert names(m, 4) == ["e-a", "e-a", "e-b", "e-a"]
    assert backend_status(m, a.address)["weight"] == 3
