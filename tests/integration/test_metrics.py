# SPDX-License-Identifier: MIT
"""GET /metrics, black-box: the Prometheus text exposition on the admin listener counts what
really happened (N requests through a region are N in that region's counter for their status
class and protocol, and N in its latency histogram; a backend's 404 is a 4xx; a slow answer
lands in the right bucket; upstream connects, reuses, connect failures and retries; a dead
backend is down), carries its counters over a reload, counts reloads by result and shows the
generation, and reads the process from /proc. `promtool check metrics` accepts a scrape taken
after traffic, 429s from a rate limit, a reload, a refused reload and a failed backend; the
shipped alert rules (packaging/prometheus) pass `promtool check rules` and their unit tests.
The promtool parts skip when promtool (Debian package `prometheus`) is not installed."""
import os
import re
import shutil
import subprocess
import time
import urllib.request

import pytest

from conftest import SLOW, TOP, free_port, geo_config, wait_backends, wait_for
from util_http import request
from util_tls import H2Client

PROMTOOL = shutil.which("promtool")
RULES_DIR = os.path.join(TOP, "packaging", "prometheus")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package `prometheus`; "
                             "packaging/deps.sh --test installs it)")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CHECK = {"path": "/", "interval": "200ms", "timeout": "150ms", "rise": 1, "fall": 1}


# ---- reading the exposition -------------------------------------------------------------------

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def parse_labels(text):
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL.match(text, pos)
        assert m, f"bad label set {{{text}}} at {pos}"
        labels[m.group(1)] = re.sub(r'\\(.)', lambda e: "\n" if e.group(1) == "n" else e.group(1),
                                    m.group(2))
        pos = m.end()
    return labels


class Scrape:
    """One /metrics answer, parsed, with the format's rules checked on the way: HELP and TYPE
    once per family, before its samples, which come in one piece; meridian_ or process_
    names; counters end in _total; a histogram's buckets are cumulative up to +Inf, which
    equals _count."""

    def __init__(self, text):
        self.text = text
        self.samples = []  # (name, labels, value)
        self.types = {}
        helps, seen_families, current = set(), set(), None
        for line in text.splitlines():
            if line.startswith("# HELP "):
                name = line.split(" ", 3)[2]
                assert name not in helps, f"second HELP for {name}"
                helps.add(name)
                continue
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ")
                assert name in helps, f"TYPE before HELP for {name}"
                assert name not in self.types, f"second TYPE for {name}"
                assert kind in ("counter", "gauge", "histogram"), line
                self.types[name] = kind
                assert name.startswith(("meridian_", "process_")), name
                if kind == "counter":
                    assert name.endswith("_total"), name
                continue
            assert not line.startswith("#") and line, f"unexpected line {line!r}"
            m = SAMPLE.match(line)
            assert m, f"bad sample line {line!r}"
            name, labels, value = m.group(1), parse_labels(m.group(2) or ""), float(m.group(3))
            family = name
            for suffix in ("_bucket", "_sum", "_count"):
                if name.endswith(suffix) and name[:-len(suffix)] in self.types and \
                        self.types[name[:-len(suffix)]] == "histogram":
                    family = name[:-len(suffix)]
            assert family in self.types, f"sample {name} without TYPE"
            if family != current:
                assert family not in seen_families, f"family {family} split in pieces"
                seen_families.add(family)
                current = family
            self.samples.append((name, labels, value))
        for name, kind in self.types.items():
            if kind == "histogram":
                self._check_histogram(name)

    def _check_histogram(self, name):
        series = {}
        for n, labels, v in self.samples:
            if n == name + "_bucket":
                key = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
                series.setdefault(key, []).append((labels["le"], v))
        for key, buckets in series.items():
            assert buckets[-1][0] == "+Inf", buckets
            values = [v for _, v in buckets]
            assert values == sorted(values), f"{name}{key}: buckets not cumulative {buckets}"
            assert self.get(name + "_count", **dict(key)) == values[-1]

    def find(self, name, **labels):
        return [(l, v) for n, l, v in self.samples
                if n == name and all(l.get(k) == x for k, x in labels.items())]

    def get(self, name, **labels):
        """The one sample of `name` with exactly these labels."""
        hits = [v for l, v in self.find(name, **labels) if len(l) == len(labels)]
        assert len(hits) == 1, f"{name}{labels}: {len(hits)} samples"
        return hits[0]

    def sum(self, name, **labels):
        """Sum over the samples whose labels include these."""
        return sum(v for _, v in self.find(name, **labels))


def scrape(m):
    with urllib.request.urlopen(f"http://127.0.0.1:{m.admin_port}/metrics", timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == CONTENT_TYPE
        return Scrape(r.read().decode())


def settled(m):
    """A scrape once no request is in flight. A client has its answer a moment before the
    worker counts it (the access log line comes after the last byte is written); a worker
    counts a request before it lets go of the stream, and the gauge of streams is read
    first (metrics_dec), so with none left the counts are complete."""
    return wait_for(lambda: (lambda s: s.get("meridian_streams") == 0 and s)(scrape(m)),
                    what="no request in flight")


def promtool_check_metrics(text):
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, f"promtool check metrics: {p.stdout}{p.stderr}\n{text}"
    assert p.stdout.strip() == "" and p.stderr.strip() == "", p.stdout + p.stderr


def dead_address():
    return f"127.0.0.1:{free_port()}"


# ---- the setup --------------------------------------------------------------------------------


def metrics_config(m, regions, workers=2, **sections):
    """Plain listener that also takes HTTP/2 prior knowledge; regions as geo_config's."""
    listeners = [{"name": "main", "address": f"127.0.0.1:{m.port}", "h2c": True}]
    sections.setdefault("timeouts", {"upstream_connect": "1s", "upstream_response": "5s",
                                     "shutdown": "2s"})
    return geo_config(m.port, m.admin_port, regions, listeners=listeners, workers=workers,
                      **sections)


def start(meridian, regions, **kw):
    m = meridian(start=False)
    text = metrics_config(m, regions, **kw)
    m.write_config(text)
    m.start()
    return m, text


def two_regions(origin, dead):
    """eu (the default: without a GeoIP database every client goes there) with the origin;
    us with a dead backend, health-checked, so it shows down."""
    return [{"name": "eu", "lat": 50.1, "lon": 8.7, "backends": [origin.address],
             "default": True},
            {"name": "us", "lat": 39.0, "lon": -77.5, "backends": [dead],
             "health_check": CHECK}]


def get(m, path="/", version="HTTP/1.1"):
    return request(m.port, "GET", path, version=version, timeout=10 * SLOW).status


def eu_requests(s, code_class, protocol):
    return s.get("meridian_requests_total", region="eu", code_class=code_class,
                 protocol=protocol)


# ---- tests ------------------------------------------------------------------------------------


def test_requests_are_counted_by_region_class_and_protocol(origins, meridian):
    o = origins("eu-a")
    dead = dead_address()
    m, _ = start(meridian, two_regions(o, dead))
    wait_backends(m, {dead: "down"})
    s0 = settled(m)
    n = 25
    assert [get(m) for _ in range(n)] == [200] * n
    s1 = settled(m)
    assert eu_requests(s1, "2xx", "http1.1") - eu_requests(s0, "2xx", "http1.1") == n
    count = "meridian_request_duration_seconds_count"
    assert s1.get(count, region="eu") - s0.get(count, region="eu") == n
    # Every answered request is in both: the class/protocol counters and the histogram.
    assert s1.sum("meridian_requests_total", region="eu") == s1.get(count, region="eu")
    assert s1.sum("meridian_requests_total", region="us") == 0
    # One upstream connection per request, new or reused; no failure on a live origin.
    up = s1.get("meridian_upstream_connects_total") + s1.get("meridian_upstream_reuses_total")
    up0 = s0.get("meridian_upstream_connects_total") + s0.get("meridian_upstream_reuses_total")
    assert up - up0 == n
    assert s1.get("meridian_upstream_reuses_total") > 0
    assert s1.get("meridian_upstream_connect_failures_total") == 0

    # The backend's 404 is a 4xx; HTTP/1.0 and HTTP/2 are told apart.
    assert get(m, "/status/404") == 404
    assert get(m, version="HTTP/1.0") == 200
    with H2Client(m.port) as c:
        assert c.get("/").status == 200
        assert c.get("/status/503").status == 503
    s2 = settled(m)
    assert eu_requests(s2, "4xx", "http1.1") - eu_requests(s1, "4xx", "http1.1") == 1
    assert eu_requests(s2, "2xx", "http1.0") - eu_requests(s1, "2xx", "http1.0") == 1
    assert eu_requests(s2, "2xx", "h2") - eu_requests(s1, "2xx", "h2") == 1
    assert eu_requests(s2, "5xx", "h2") - eu_requests(s1, "5xx", "h2") == 1
    assert s2.sum("meridian_requests_total", region="eu") - \
        s1.sum("meridian_requests_total", region="eu") == 4
    assert s2.get(count, region="eu") - s1.get(count, region="eu") == 4

    # A 600 ms answer: above the 0.5 s bound, within +Inf; the sum grows by at least 0.6 s.
    bucket = "meridian_request_duration_seconds_bucket"
    assert get(m, "/delay/600") == 200
    s3 = settled(m)
    assert s3.get(bucket, region="eu", le="0.5") == s2.get(bucket, region="eu", le="0.5")
    assert s3.get(bucket, region="eu", le="+Inf") - s2.get(bucket, region="eu", le="+Inf") == 1
    assert s3.get(bucket, region="eu", le="10") - s2.get(bucket, region="eu", le="10") == 1
    sum_ = "meridian_request_duration_seconds_sum"
    assert s3.get(sum_, region="eu") - s2.get(sum_, region="eu") >= 0.6

    # A malformed request is answered before it has a region (and before a stream).
    assert get(m, "/%zz\x01") == 400
    s4 = wait_for(lambda: (lambda s: s.sum("meridian_unrouted_responses_total") and s)(scrape(m)),
                  what="the 400 counted")
    assert s4.sum("meridian_unrouted_responses_total", code_class="4xx") == 1


def test_backend_health_reloads_and_process(origins, meridian):
    o = origins("eu-a")
    dead = dead_address()
    m, text = start(meridian, two_regions(o, dead))
    wait_backends(m, {dead: "down"})
    for _ in range(5):
        assert get(m) == 200
    s0 = settled(m)
    assert s0.get("meridian_backend_up", region="eu", backend=o.address) == 1
    assert s0.get("meridian_backend_up", region="us", backend=dead) == 0
    assert s0.get("meridian_backend_health_check_failures_total", region="us",
                  backend=dead) >= 1
    # Only checked backends have check counters.
    assert s0.find("meridian_backend_health_checks_total", backend=o.address) == []
    assert s0.get("meridian_config_generation") == 1
    assert s0.get("meridian_config_reloads_total", result="ok") == 0
    assert s0.get("meridian_config_reloads_total", result="failed") == 0
    assert s0.get("meridian_config_last_reload_successful") == 1
    assert s0.get("meridian_workers") == 2

    # A reload that goes live: counted, the generation moves, the region's counters go on.
    m.reload()
    s1 = scrape(m)
    assert s1.get("meridian_config_generation") == 2
    assert s1.get("meridian_config_reloads_total", result="ok") == 1
    assert eu_requests(s1, "2xx", "http1.1") == eu_requests(s0, "2xx", "http1.1") == 5
    assert s1.get("meridian_request_duration_seconds_count", region="eu") == 5

    # A refused one: counted as failed, the generation stays, the last reload was refused.
    m.reload("regions: [\n", expect_success=False)
    s2 = scrape(m)
    assert s2.get("meridian_config_reloads_total", result="failed") == 1
    assert s2.get("meridian_config_reloads_total", result="ok") == 1
    assert s2.get("meridian_config_generation") == 2
    assert s2.get("meridian_config_last_reload_successful") == 0
    m.reload(text)
    s3 = scrape(m)
    assert s3.get("meridian_config_generation") == 3
    assert s3.get("meridian_config_last_reload_successful") == 1
    assert s3.get("meridian_config_reloads_total", result="ok") == 2

    # The process, from /proc/self.
    now = time.time()
    start_time = s3.get("process_start_time_seconds")
    assert now - 120 * SLOW < start_time <= now + 1, (start_time, now)
    assert s3.get("process_resident_memory_bytes") > 1 << 20
    assert s3.get("process_virtual_memory_bytes") >= s3.get("process_resident_memory_bytes")
    fds = len(os.listdir(f"/proc/{m.proc.pid}/fd"))
    assert abs(s3.get("process_open_fds") - fds) <= 4, (s3.get("process_open_fds"), fds)
    assert s3.get("process_max_fds") >= s3.get("process_open_fds")
    assert s3.get("process_cpu_seconds_total") >= 0
    assert s3.get("meridian_client_connections_accepted_total") >= 5


def test_upstream_failures_and_retries_are_counted(origins, meridian):
    """One worker, a region with a dead backend beside a live one and no health check: the
    requests that meet the dead one fail to connect and are tried again on the live one,
    and each is still counted once."""
    o = origins("eu-a")
    dead = dead_address()
    m, _ = start(meridian, [{"name": "eu", "lat": 50.1, "lon": 8.7,
                             "backends": [dead, o.address], "default": True}], workers=1)
    n = 6
    assert [get(m) for _ in range(n)] == [200] * n
    s = settled(m)
    assert s.get("meridian_upstream_connect_failures_total") >= 1
    assert s.get("meridian_upstream_retries_total") >= 1
    assert s.get("meridian_upstream_connects_total") >= s.get(
        "meridian_upstream_connect_failures_total") + 1
    assert eu_requests(s, "2xx", "http1.1") == n
    assert s.get("meridian_request_duration_seconds_count", region="eu") == n
    assert s.get("meridian_backend_up", region="eu", backend=dead) == 1  # not checked


@needs_promtool
def test_promtool_accepts_the_exposition(origins, meridian):
    """After traffic, 429s from a rate limit whose Redis is gone (on_redis_failure: local,
    so the workers are degraded), a reload, a refused reload and a dead backend."""
    o = origins("eu-a")
    dead = dead_address()
    rate_limit = {"phase": "phase1", "phases": {"phase1": {"rps": 5, "burst": 5}},
                  "redis": {"address": dead_address(), "timeout": "50ms"},
                  "on_redis_failure": "local"}
    m, text = start(meridian, two_regions(o, dead), rate_limit=rate_limit)
    wait_backends(m, {dead: "down"})
    # Each worker's local bucket: 2.5 requests/s, burst 2.5. Until both answers were seen.
    statuses = []
    deadline = time.monotonic() + 10 * SLOW
    while not (200 in statuses and 429 in statuses) and time.monotonic() < deadline:
        statuses.append(get(m))
    assert 429 in statuses and 200 in statuses, statuses
    assert set(statuses) == {200, 429}, statuses
    settled(m)  # a reload carries what the old generation counted until then
    m.reload()
    m.reload("regions: [\n", expect_success=False)
    m.write_config(text)
    s = wait_for(lambda: (lambda s: s.get("meridian_rate_limit_redis_degraded_workers") >= 1
                          and s)(scrape(m)), what="a degraded worker in /metrics")
    assert s.get("meridian_rate_limit_rejected_total") == statuses.count(429)
    assert s.get("meridian_rate_limit_admitted_total") == statuses.count(200)
    assert eu_requests(s, "4xx", "http1.1") == statuses.count(429)
    assert s.get("meridian_rate_limit_budget_rps", phase="phase1") == 5
    assert 0 <= s.get("meridian_rate_limit_utilisation_ratio", phase="phase1") <= 10
    assert s.get("meridian_rate_limit_live_nodes") >= 1
    assert s.get("meridian_config_reloads_total", result="failed") == 1
    promtool_check_metrics(s.text)


@needs_promtool
def test_alert_rules_check_and_pass_their_unit_tests():
    rules = os.path.join(RULES_DIR, "alerts.yml")
    p = subprocess.run([PROMTOOL, "check", "rules", rules], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS" in p.stdout, p.stdout
    p = subprocess.run([PROMTOOL, "test", "rules", "alerts_test.yml"], cwd=RULES_DIR,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    # The roadmap's three scale signals are there, and each alert has a unit test.
    with open(rules) as f:
        alerts = set(re.findall(r"^\s+- alert: (\w+)$", f.read(), re.M))
    assert {"MeridianCpuHigh", "MeridianLatencyP95High",
            "MeridianBudgetUtilisationHigh"} <= alerts, alerts
    with open(os.path.join(RULES_DIR, "alerts_test.yml")) as f:
        tested = set(re.findall(r"^\s+alertname: (\w+)$", f.read(), re.M))
    assert alerts == tested, (alerts, tested)
