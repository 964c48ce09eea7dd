# SPDX-License-Identifier: MIT
"""Black-box harness: real `meridian` and real origin processes on loopback ports.

Everything is started on 127.0.0.1 with ports chosen by free_port(), waited for by polling
(never by sleeping), and stopped by PID. Binaries come from MERIDIAN_BIN and ORIGIN_BIN
(default: the _build tree that packaging/build.sh makes).
"""
import errno
import json
import os
import random
import re
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("MERIDIAN_BUILD", os.path.join(TOP, "_build"))
MERIDIAN_BIN = os.environ.get("MERIDIAN_BIN", os.path.join(BUILD, "src", "meridian"))
ORIGIN_BIN = os.environ.get("ORIGIN_BIN", os.path.join(BUILD, "tests", "tools", "origin"))
# Sanitizer builds are slower: scale waits.
SLOW = float(os.environ.get("MERIDIAN_TEST_SLOWDOWN", "1"))
# ASan keeps freed memory in quarantine and pads every block, so RSS growth says nothing
# about the real binary under it: memory bounds are checked on the normal build only.
CHECK_MEMORY = os.environ.get("MERIDIAN_SANITIZED") != "1"


# Ports come from below the kernel's ephemeral range (32768-60999 on Debian), so that neither an
# outgoing connection's local port nor another bind(0) can take a port between our choosing it
# and the process we start binding it; and none is handed out twice in one test run (two
# successive bind(0) calls may return the same port once the first socket is closed).
# MERIDIAN_TEST_PORTS=LOW-HIGH narrows the range, so that two test runs at once (tests/run.sh
# runs the ASan and TSan passes side by side) never choose the same port.
def _port_range():
    narrowed = os.environ.get("MERIDIAN_TEST_PORTS")
    if narrowed:
        low, _, high = narrowed.partition("-")
        if not (low.isdigit() and high.isdigit() and 1024 <= int(low) < int(high) <= 65535):
            raise ValueError(f"MERIDIAN_TEST_PORTS={narrowed!r}: expected LOW-HIGH, "
                             "1024 <= LOW < HIGH <= 65535")
        return int(low), int(high)
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral_low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    high = ephemeral_low if ephemeral_low > 4096 else 32768
    return max(1024, high - 12000), high


_PORT_LOW, _PORT_HIGH = _port_range()
_ports_given = set()
_port_rng = random.Random(os.getpid() ^ int(time.time()))


def _port_is_free(port):
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return False
            # No IPv6 on this machine: the IPv4 answer is the one that counts.
    return True


def free_port():
    """A TCP port on loopback nobody listens on right now and not handed out before."""
    for _ in range(1000):
        port = _port_rng.randrange(_PORT_LOW, _PORT_HIGH)
        if port in _ports_given:
            continue
        if not _port_is_free(port):
            continue
        _ports_given.add(port)
        return port
    raise AssertionError("no free loopback port in %d-%d" % (_PORT_LOW, _PORT_HIGH))


def wait_for(pred, timeout=10.0, interval=0.02, what="condition"):
    """Poll pred() until it returns a truthy value; fail after timeout seconds."""
    deadline = time.monotonic() + timeout * SLOW
    last_exc = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - polling tolerates transient errors
            last_exc = e
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last error: {last_exc})")


def port_accepts(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def raw_exchange(port, data, timeout=5.0, read_until_close=True, host="127.0.0.1"):
    """Send raw bytes, return everything received until the server closes (or timeout)."""
    s = socket.create_connection((host, port), timeout=timeout * SLOW)
    try:
        s.sendall(data)
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            chunks.append(b)
            if not read_until_close:
                break
        return b"".join(chunks)
    finally:
        s.close()


def status_of(raw):
    """The status code of the first response in raw bytes, or None."""
    if not raw.startswith(b"HTTP/1."):
        return None
    return int(raw.split(b" ", 2)[1])


class Origin:
    """tests/tools/origin: answers with its name, records each request it gets. With `tls`
    (cert, key[, client CA]) it listens for TLS instead (and asks for a client certificate
    that CA signed)."""

    def __init__(self, tmp_path, name, port=None, tls=None):
        self.name = name
        self.port = port or free_port()
        self.record = str(tmp_path / f"origin-{name}-{self.port}.jsonl")
        self.tls = tls
        self.proc = None

    def start(self):
        args = [ORIGIN_BIN, "-l", f"127.0.0.1:{self.port}", "-n", self.name, "-r", self.record]
        if self.tls:
            args[1] = "-L"
            args += ["-c", self.tls[0], "-k", self.tls[1]]
            if len(self.tls) > 2 and self.tls[2]:
                args += ["-A", self.tls[2]]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("ready"), f"origin {self.name} did not start: {line!r}"
        assert (line.split()[-1] == "tls") == bool(self.tls), line
        return self

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def records(self):
        """The requests this origin received, as dicts (one per request)."""
        try:
            with open(self.record) as f:
                return [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def yaml_config(listen_port, admin_port, regions, workers=2, extra="", access_log=None,
                log_level="info"):
    """A Meridian config. regions: list of (name, [backend addresses]); the first is the
    default. `extra` is appended verbatim (timeouts:, limits:, ...)."""
    lines = [f"workers: {workers}", f"log_level: {log_level}", "listeners:",
             f'  - {{ name: http, address: "127.0.0.1:{listen_port}" }}',
             f'admin: {{ address: "127.0.0.1:{admin_port}" }}']
    if access_log:
        lines.append(f'access_log: {{ path: "{access_log}" }}')
    lines.append("regions:")
    for i, (name, backends) in enumerate(regions):
        lines.append(f"  - name: {name}")
        lines.append("    location: { lat: 50.0, lon: 8.0 }")
        lines.append("    backends: [" + ", ".join(f'"{b}"' for b in backends) + "]")
        if i == 0:
            lines.append("    default: true")
    return "\n".join(lines) + "\n" + extra


# Meridian refuses to run as root unless its config names a user to switch to or says
# run_as_root: true (issue 8). Tests run as root here and in CI, and the configs they write are
# about something else: the harness adds the key at the end of the file (so that no line
# number a test checks moves), unless the text already says whom to run as. Only
# test_privileges.py, which is about this, opts out (Meridian(..., as_root_key=False)).
AS_ROOT = os.geteuid() == 0
_RUN_AS_KEY = re.compile(r"^(user|run_as_root)\s*:", re.M)


def allow_root(text):
    """`text` with `run_as_root: true` appended when tests run as root and it names no user."""
    if not AS_ROOT or not text.strip() or _RUN_AS_KEY.search(text):
        return text  # an empty file stays empty: what a test of one means
    return text + ("" if text.endswith("\n") else "\n") + "run_as_root: true\n"


class Meridian:
    """The real binary, with a config file it can be told to reload."""

    def __init__(self, tmp_path, config_text=None, regions=None, workers=2, extra="",
                 access_log=None, log_level="info", as_root_key=True):
        self.tmp = tmp_path
        self.as_root_key = as_root_key
        self.port = free_port()
        self.admin_port = free_port()
        self.config_path = str(tmp_path / f"meridian-{self.port}.yaml")
        self.stderr_path = str(tmp_path / f"meridian-{self.port}.err")
        self.stdout_path = str(tmp_path / f"meridian-{self.port}.out")
        if config_text is None:
            config_text = yaml_config(self.port, self.admin_port, regions or [], workers,
                                      extra, access_log, log_level)
        self.write_config(config_text)
        self.proc = None

    def write_config(self, text):
        if self.as_root_key:
            text = allow_root(text)
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config_path)

    def start(self, wait=True):
        self.proc = subprocess.Popen([MERIDIAN_BIN, "-c", self.config_path],
                                     stdout=open(self.stdout_path, "w"),
                                     stderr=open(self.stderr_path, "w"))
        if wait:
            wait_for(lambda: self.proc.poll() is None and self.healthy(), timeout=10,
                     what="meridian /healthz")
            wait_for(lambda: port_accepts(self.port), what="meridian listener")
        return self

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def admin(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}",
                                    timeout=5) as r:
            return r.status, r.read()

    def healthy(self):
        try:
            return self.admin("/healthz")[0] == 200
        except OSError:
            return False

    def status(self):
        return json.loads(self.admin("/status")[1])

    def generation(self):
        return self.status()["generation"]

    def reload(self, text=None, expect_success=True):
        """Write `text` (if given), SIGHUP, and wait until every worker runs the new
        generation (or, if a failure is expected, until the refusal is logged)."""
        before = self.generation()
        refused_before = self.stderr().count("reload refused: keeping")
        if text is not None:
            self.write_config(text)
        self.proc.send_signal(signal.SIGHUP)
        if expect_success:
            def done():
                st = self.status()
                return st["generation"] == before + 1 and all(
                    w["generation"] == before + 1 for w in st["workers"])
            wait_for(done, what="reload to take effect")
        else:
            wait_for(lambda: self.stderr().count("reload refused: keeping") > refused_before,
                     what="reload refusal in the log")
            assert self.generation() == before
        return before + (1 if expect_success else 0)

    def stderr(self):
        with open(self.stderr_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout=timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("meridian did not stop in time")
        return self.proc.returncode if self.proc else None


@pytest.fixture
def origins(tmp_path):
    """Factory: origins('eu-a', 'eu-b') starts and returns Origin objects."""
    started = []

    def make(*names):
        out = [Origin(tmp_path, n).start() for n in names]
        started.extend(out)
        return out if len(out) > 1 else out[0]

    yield make
    for o in started:
        o.stop()


@pytest.fixture
def meridian(tmp_path):
    """Factory: meridian(regions=[('eu', [addr...])], ...) starts and returns Meridian."""
    started = []

    def make(start=True, **kw):
        m = Meridian(tmp_path, **kw)
        started.append(m)
        return m.start() if start else m

    yield make
    for m in started:
        rc = m.stop()
        # A sanitizer report or a crash must fail the test that caused it.
        err = m.stderr() if os.path.exists(m.stderr_path) else ""
        assert "ERROR: AddressSanitizer" not in err, err[-4000:]
        assert "WARNING: ThreadSanitizer" not in err, err[-4000:]
        assert "runtime error:" not in err, err[-4000:]
        assert rc in (0, None), f"meridian exited with {rc}: {err[-2000:]}"


# ---- geo routing, client identity and health checks (test_geo, test_client_ip, test_health) ----

# MaxMind's public test databases sit beside the checkout (../shared/geoip); the project's own
# sample database is built into the build tree from geoip/sample.json.
GEOIP_DIR = os.path.join(os.path.dirname(TOP), "shared", "geoip")
SAMPLE_MMDB = os.path.join(BUILD, "geoip", "sample.mmdb")


def yaml_flow(v):
    """A Python value as one line of YAML flow style (strings always double-quoted)."""
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k}: {yaml_flow(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(yaml_flow(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))


def geo_config(listen_port, admin_port, regions, listeners=None, workers=2, log_level="info",
               access_log=None, **sections):
    """A whole Meridian config with geo routing. regions: dicts with name, lat, lon,
    backends and any other region keys (countries, balance, health_check, default: true).
    listeners: dicts (name, address, ...); default one plain listener on listen_port.
    sections: top-level keys (client_ip, geoip, routing, health_check, timeouts...) as
    Python values; each top-level key is on a line of its own (see config_line())."""
    if listeners is None:
        listeners = [{"name": "main", "address": f"127.0.0.1:{listen_port}"}]
    lines = [f"workers: {workers}", f"log_level: {log_level}",
             f'admin: {{ address: "127.0.0.1:{admin_port}" }}']
    if access_log:
        lines.append(f"access_log: {yaml_flow({'path': str(access_log)})}")
    for key, value in sections.items():
        if value is not None:
            lines.append(f"{key}: {yaml_flow(value)}")
    lines.append("listeners:")
    lines += [f"  - {yaml_flow(l)}" for l in listeners]
    lines.append("regions:")
    for r in regions:
        r = dict(r)
        spec = {"name": r.pop("name"), "location": {"lat": r.pop("lat"), "lon": r.pop("lon")},
                "backends": list(r.pop("backends"))}
        spec.update(r)
        lines.append(f"  - {yaml_flow(spec)}")
    return "\n".join(lines) + "\n"


def config_line(text, prefix):
    """The 1-based number of the first line of a config text that starts with prefix."""
    for i, line in enumerate(text.splitlines(), 1):
        if line.startswith(prefix):
            return i
    raise AssertionError(f"no line starting with {prefix!r}")


def region_status(m, name):
    """The /status entry of one region."""
    for r in m.status()["regions"]:
        if r["name"] == name:
            return r
    raise AssertionError(f"no region {name!r} in /status")


def backend_states(m):
    """{backend address: health state} over every region in /status."""
    out = {}
    for r in m.status()["regions"]:
        for b in r["backends"]:
            out[b["address"]] = b["state"]
    return out


def wait_backends(m, want, timeout=10.0):
    """Wait until /status shows each address in `want` ({address: state}) in that state;
    returns the time.monotonic() at which it was first seen."""
    deadline = time.monotonic() + timeout * SLOW
    st = last_exc = None
    while time.monotonic() < deadline:
        try:
            st = backend_states(m)
            if all(st.get(a) == s for a, s in want.items()):
                return time.monotonic()
        except Exception as e:  # noqa: BLE001 - polling tolerates transient errors
            last_exc = e
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for backend states {want}: last seen {st} "
                         f"(last error: {last_exc})")


def access_log_lines(path, n, timeout=5.0):
    """Wait for at least n JSON lines in an access log; returns them all."""
    def lines():
        try:
            with open(path) as f:
                out = [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return None
        return out if len(out) >= n else None
    return wait_for(lines, timeout=timeout, what=f"{n} access log lines in {path}")


def access_log_by_client(path, n, timeout=5.0):
    """Wait for n JSON lines in an access log; {client_ip: line} (workers write their own
    lines, so lines of sequential requests may come in either order)."""
    out = access_log_lines(path, n, timeout)
    return {line["client_ip"]: line for line in out}


# ---- the fleet's request budget (test_rate_limit) ----


def pytest_configure(config):
    # `-m cluster` (or `-k cluster`) selects the Redis Cluster tests, the slowest ones.
    config.addinivalue_line("markers", "cluster: builds a Redis Cluster (one to six nodes)")
