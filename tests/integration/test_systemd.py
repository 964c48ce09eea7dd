# SPDX-License-Identifier: MIT
"""Running under systemd: the unit (packaging/systemd/meridian.service) passes
`systemd-analyze verify` and keeps its `systemd-analyze security` exposure below a bound, the
sysusers.d entry makes the account it runs as, the sd_notify messages come when they should
(a datagram socket stands in for systemd's NOTIFY_SOCKET), and the logrotate snippet rotates
by renaming and SIGUSR1. Nothing is installed into the real root: the unit is checked from a
copy whose paths point at the build tree, users are made under a scratch root."""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import (BUILD, MERIDIAN_BIN, SLOW, TOP, free_port, geo_config, port_accepts,
                      wait_backends, wait_for, yaml_config)
from util_lifecycle import http_get

UNIT = os.path.join(TOP, "packaging", "systemd", "meridian.service")
SYSUSERS = os.path.join(TOP, "packaging", "systemd", "meridian.conf")
LOGROTATE = os.path.join(TOP, "packaging", "logrotate", "meridian")
INSTALLED_BIN = "/usr/sbin/meridian"  # sbin_PROGRAMS with --prefix=/usr, as a package builds
# `systemd-analyze security` on systemd 252 rates the unit 1.4 ("OK"; README "Running under
# systemd"); the bound leaves room for the scoring of other systemd versions.
EXPOSURE_MAX = 2.0


def _tool(name):
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package: "
                    f"{'systemd' if name.startswith('systemd') else name})")
    return path


def _run(args, timeout=60, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout * SLOW, **kw)


def _unit_text():
    with open(UNIT) as f:
        return f.read()


def _directives(text):
    """{key: [values]} of a unit file's assignments (every section, in order)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[" or "=" not in line:
            continue
        key, value = line.split("=", 1)
        out.setdefault(key.strip(), []).append(value.strip())
    return out


# ---- the unit --------------------------------------------------------------------------------


def test_unit_says_what_the_issue_asks():
    d = _directives(_unit_text())
    assert d["Type"] == ["notify"]
    assert d["ExecStartPre"] == [f"{INSTALLED_BIN} -t -c /etc/meridian/meridian.yaml"]
    assert d["ExecStart"] == [f"{INSTALLED_BIN} -c /etc/meridian/meridian.yaml"]
    assert d["ExecReload"][-1] == "/bin/kill -HUP $MAINPID"
    assert d["User"] == ["meridian"] and d["Group"] == ["meridian"]
    assert d["AmbientCapabilities"] == ["CAP_NET_BIND_SERVICE"]
    assert d["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]
    assert d["LogsDirectory"] == ["meridian"]
    # The stop timeout outlasts the default timeouts.shutdown (30 s).
    assert int(d["TimeoutStopSec"][0].rstrip("s")) > 30
    for key in ("ProtectSystem", "NoNewPrivileges", "MemoryDenyWriteExecute",
                "SystemCallFilter", "RestrictAddressFamilies", "LimitNOFILE"):
        assert key in d, key
    # The account of the unit is the one sysusers.d makes.
    with open(SYSUSERS) as f:
        entries = [l.split() for l in f if l.strip() and not l.startswith("#")]
    assert [e[:2] for e in entries] == [["u", "meridian"]]
    # The binary is where `make install` puts it.
    with open(os.path.join(TOP, "Makefile.am")) as f:
        assert re.search(r"^sbin_PROGRAMS = src/meridian$", f.read(), re.M)


def _verify(path, env):
    return _run([_tool("systemd-analyze"), "verify", path], env=env)


def test_unit_passes_systemd_analyze_verify(tmp_path):
    """verify loads the unit as systemd would and checks that the programs it runs exist and
    that the man pages in Documentation= open: a copy runs the built binary instead of
    /usr/sbin/meridian, and MANPATH finds the man pages in packaging/."""
    man = tmp_path / "man"
    for section, page in (("8", "meridian.8"), ("5", "meridian.yaml.5")):
        (man / f"man{section}").mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(TOP, "packaging", page), man / f"man{section}" / page)
    env = dict(os.environ, MANPATH=str(man), SYSTEMD_PAGER="", SYSTEMD_LOG_COLOR="0")

    # Whether verify can work here at all: a unit that cannot be wrong.
    probe = tmp_path / "probe" / "meridian-probe.service"
    probe.parent.mkdir()
    probe.write_text("[Service]\nExecStart=/bin/true\n")
    r = _verify(str(probe), env)
    if r.returncode != 0:
        pytest.skip("systemd-analyze verify cannot run in this environment: "
                    + (r.stderr or r.stdout).strip())

    text = _unit_text()
    assert INSTALLED_BIN in text
    unit = tmp_path / "meridian.service"
    unit.write_text(text.replace(INSTALLED_BIN, os.path.abspath(MERIDIAN_BIN)))
    r = _verify(str(unit), env)
    assert r.returncode == 0, r.stdout + r.stderr
    # Warnings (unknown keys, a bad value ignored) do not change the exit status.
    assert "meridian.service" not in r.stderr, r.stderr

    # Without the binary in place verify does fail: it did look.
    unit.write_text(text.replace(INSTALLED_BIN, str(tmp_path / "no-such-meridian")))
    assert _verify(str(unit), env).returncode != 0


def test_unit_exposure_score_is_low():
    r = _run([_tool("systemd-analyze"), "security", "--offline=true", "--no-pager", UNIT],
             env=dict(os.environ, SYSTEMD_COLORS="0"))
    if r.returncode != 0 and "offline" in r.stderr:
        pytest.skip(f"systemd-analyze security --offline=true is not supported: {r.stderr}")
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"Overall exposure level for meridian\.service: ([0-9.]+) (\w+)", r.stdout)
    assert m, r.stdout
    score = float(m.group(1))
    print(f"exposure {score} {m.group(2)}")
    assert score < EXPOSURE_MAX, r.stdout
    assert m.group(2) == "OK", r.stdout


def test_sysusers_entry_makes_the_account(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    r = _run([_tool("systemd-sysusers"), f"--root={root}", SYSUSERS])
    assert r.returncode == 0, r.stderr
    passwd = (root / "etc" / "passwd").read_text().splitlines()
    group = (root / "etc" / "group").read_text().splitlines()
    user = [l.split(":") for l in passwd if l.startswith("meridian:")]
    assert len(user) == 1, passwd
    name, _, uid, gid, _, _, shell = user[0]
    assert int(uid) < 1000, "a system account"
    assert shell.endswith("nologin")
    assert any(l.split(":")[0] == "meridian" and l.split(":")[2] == gid for l in group), group


# ---- sd_notify -------------------------------------------------------------------------------

def _built_with_systemd():
    try:
        with open(os.path.join(BUILD, "config.h")) as f:
            return re.search(r"^#define HAVE_SYSTEMD 1$", f.read(), re.M) is not None
    except OSError:
        return False


needs_libsystemd = pytest.mark.skipif(
    not _built_with_systemd(),
    reason=f"{BUILD} was configured without libsystemd (apt-get install libsystemd-dev)")


class NotifySocket:
    """What systemd would hear: a datagram socket at the path given as NOTIFY_SOCKET. Each
    message is kept as (time.monotonic(), {key: value})."""

    def __init__(self, directory):
        self.dir = directory
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def close(self):
        self.sock.close()

    def _recv(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return None
        fields = dict(l.split("=", 1) for l in data.decode().split("\n") if "=" in l)
        self.messages.append((time.monotonic(), fields))
        return fields

    def wait(self, key, value="1", timeout=10.0):
        """The next message with key=value (value None: any), and what came before it."""
        deadline = time.monotonic() + timeout * SLOW
        before = []
        while True:
            msg = self._recv(deadline)
            if msg is None:
                raise AssertionError(f"no {key}={value or '*'} within {timeout} s; "
                                     f"got {before} (all: {self.messages})")
            if key in msg and (value is None or msg[key] == value):
                return msg, before
            before.append(msg)


@pytest.fixture
def notify(monkeypatch):
    # AF_UNIX paths are short (108 bytes): a directory of its own under /tmp.
    d = tempfile.mkdtemp(prefix="meridian-notify-")
    n = NotifySocket(d)
    # Meridian (started by the meridian fixture) inherits the environment.
    monkeypatch.setenv("NOTIFY_SOCKET", n.path)
    yield n
    n.close()
    shutil.rmtree(d, ignore_errors=True)


@needs_libsystemd
def test_notify_ready_reload_failed_reload_and_stop(origins, meridian, notify):
    o = origins("eu-a")
    m = meridian(start=False, regions=[("eu-central", [o.address])])
    m.start(wait=False)

    ready, before = notify.wait("READY")
    # Once READY=1 is sent, the listener and the admin endpoint answer.
    assert port_accepts(m.port)
    assert m.healthy()
    assert ready["STATUS"] == "serving generation 1: 2 workers, 1 listener, 1 region", ready
    assert not any("READY" in b or "RELOADING" in b for b in before), before
    assert http_get(m.port, "/")[0] == 200

    # A reload: RELOADING=1 stamped with CLOCK_MONOTONIC (Python's monotonic clock is the
    # same one), then READY=1 once generation 2 is published.
    t0 = time.monotonic_ns() // 1000
    m.reload(yaml_config(m.port, m.admin_port, [("eu-central", [o.address])],
                         extra="timeouts: { shutdown: 5s }\n"))
    t1 = time.monotonic_ns() // 1000
    reloading, _ = notify.wait("RELOADING")
    usec = int(reloading["MONOTONIC_USEC"])
    assert t0 <= usec <= t1 and usec - t0 < 1_000_000, (t0, usec, t1)
    assert "generation 1 serves meanwhile" in reloading["STATUS"], reloading
    ready, between = notify.wait("READY")
    assert not between, between
    assert ready["STATUS"] == "serving generation 2: 2 workers, 1 listener, 1 region", ready
    assert m.generation() == 2

    # A reload refused: READY=1 again (the service is back to running), and a STATUS= that
    # says the reload failed, why, and that generation 2 stays.
    m.reload(yaml_config(m.port, m.admin_port, [("eu-central", [o.address])],
                         extra="bogus_key: 1\n"), expect_success=False)
    notify.wait("RELOADING")
    ready, between = notify.wait("READY")
    assert not between, between
    status = ready["STATUS"]
    assert status.startswith("reload failed ("), status
    assert "bogus_key" in status, status
    assert status.endswith("; still serving generation 2: 2 workers, 1 listener, 1 region")
    assert m.generation() == 2
    assert http_get(m.port, "/")[0] == 200

    # SIGTERM: STOPPING=1 as the drain begins.
    assert m.stop() == 0
    stopping, between = notify.wait("STOPPING")
    assert not between, between
    assert stopping["STATUS"].startswith("stopping"), stopping
    assert "READY" not in stopping


@needs_libsystemd
def test_notify_ready_waits_for_the_first_health_checks(tmp_path, origins, meridian, notify):
    """With health checks, READY=1 comes once every checked backend has its first result:
    here one origin that answers at once and one backend that accepts and never answers,
    whose first check ends only at the check timeout."""
    timeout_ms = int(600 * SLOW)
    o = origins("eu-a")
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # the kernel accepts for it
    silent.bind(("127.0.0.1", free_port()))
    silent.listen(16)
    silent_addr = "127.0.0.1:%d" % silent.getsockname()[1]
    try:
        m = meridian(start=False)
        m.write_config(geo_config(
            m.port, m.admin_port,
            [{"name": "eu", "lat": 50.1, "lon": 8.7, "backends": [o.address, silent_addr],
              "default": True}],
            health_check={"path": "/", "interval": f"{2 * timeout_ms}ms",
                          "timeout": f"{timeout_ms}ms", "rise": 1, "fall": 1}))
        started = time.monotonic()
        m.start(wait=False)

        ready, before = notify.wait("READY", timeout=10)
        waited = notify.messages[-1][0] - started
        # Meanwhile, a STATUS= says what start-up waits for.
        assert any("waiting for the first health check of 2 backends" in b.get("STATUS", "")
                   for b in before), before
        # Not before the silent backend's check timed out ...
        assert waited >= timeout_ms / 1000 * 0.9, waited
        # ... and then both have their first result.
        states = wait_backends(m, {o.address: "up", silent_addr: "down"}, timeout=0.5)
        assert states
        assert ready["STATUS"] == ("serving generation 1: 2 workers, 1 listener, 1 region; "
                                   "first health checks: 1 of 2 backends up"), ready
        assert "ready: first health checks in after" in m.stderr()
        m.stop()
        notify.wait("STOPPING")
    finally:
        silent.close()


def test_no_notify_socket_changes_nothing(origins, meridian, monkeypatch):
    """Without NOTIFY_SOCKET (or without libsystemd) every message is a no-op: start, reload
    and stop as always, and nothing said about sd_notify in the log."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    o = origins("eu-a")
    m = meridian(regions=[("eu-central", [o.address])])
    m.reload()
    assert m.stop() == 0
    assert "sd_notify" not in m.stderr() and "ready:" not in m.stderr()


# ---- logrotate -------------------------------------------------------------------------------


def _access_paths(path):
    try:
        with open(path) as f:
            return [l for l in f if l.strip()]
    except FileNotFoundError:
        return []


def test_logrotate_snippet_parses():
    r = _run([_tool("logrotate"), "--debug", "--state", os.devnull, LOGROTATE])
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert "rotating pattern: /var/log/meridian/*.log" in out, out
    assert "error" not in out.lower(), out
    text = open(LOGROTATE).read()
    assert "copytruncate" not in re.sub(r"#.*", "", text)
    assert re.search(r"systemctl kill --signal=SIGUSR1 --kill-whom=main meridian\.service", text)


def test_logrotate_renames_and_meridian_reopens(tmp_path, origins, meridian):
    """The snippet itself, run by logrotate against a running Meridian: its paths moved to a
    scratch directory and `systemctl kill` replaced by kill -USR1 of this Meridian's PID.
    The lines before the rotation are in access.log.1, those after it in the new file that
    Meridian opened (test_lifecycle checks SIGUSR1 alone)."""
    logrotate = _tool("logrotate")
    logdir = tmp_path / "log"
    logdir.mkdir(mode=0o750)
    log = logdir / "access.log"
    o = origins("eu-a")
    m = meridian(regions=[("eu-central", [o.address])], access_log=str(log))
    assert http_get(m.port, "/before")[0] == 200
    wait_for(lambda: any('"/before"' in l for l in _access_paths(log)), timeout=5,
             what="the first access log line")

    text = open(LOGROTATE).read().replace("/var/log/meridian/", f"{logdir}/")
    text, n = re.subn(r"^\s*systemctl kill .*$", f"        kill -USR1 {m.proc.pid}", text,
                      flags=re.M)
    assert n == 1
    conf = tmp_path / "logrotate.conf"
    conf.write_text(text)
    os.chmod(conf, 0o644)
    r = _run([logrotate, "--force", "--state", str(tmp_path / "state"), str(conf)])
    assert r.returncode == 0, r.stdout + r.stderr

    rotated = logdir / "access.log.1"  # delaycompress: the newest rotation stays plain
    assert any('"/before"' in l for l in _access_paths(rotated))
    wait_for(lambda: log.exists(), timeout=5, what="Meridian to reopen access.log")
    assert http_get(m.port, "/after")[0] == 200
    wait_for(lambda: any('"/after"' in l for l in _access_paths(log)), timeout=5,
             what="the new line in the new access.log")
    assert not any('"/after"' in l for l in _access_paths(rotated))
    assert "access log" in m.stderr() and "reopened" in m.stderr()
