# SPDX-License-Identifier: MIT
"""Privileges and exposure (issue 8): started as root, Meridian binds its listeners (a port
below 1024 included) and opens its files, then becomes `user:`/`group:` in every thread before
it serves; it refuses to stay root unless `run_as_root: true` says so; started as another user
(as systemd's User= does) it stays who it is and never calls setuid. After the switch, a reload
that needs a port below 1024 or a file only root may read says which and as whom it runs, and
the running generation stays. The admin endpoint stays on loopback unless admin.allow_remote
says otherwise, and /status and /metrics show no Redis password, key path or ticket key file.

These tests start Meridian as root, as CI does; they are skipped otherwise. The processes that
give root up read their configuration and files again on reload as nobody, so everything they
read lives in a world-readable directory of its own (pytest's tmp_path is under a 0700 one)."""
import errno
import os
import pwd
import grp
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import pathlib

import pytest

from conftest import (MERIDIAN_BIN, SAMPLE_MMDB, SLOW, Meridian, free_port, geo_config,
                      port_accepts, wait_for)
from util_lifecycle import http_get
from util_tls import curl_status, make_cert, write_ticket_keys
# The rate_limit tests' real redis-server (fixture) and helpers, for the secrets test.
from test_rate_limit import redis, until_mode  # noqa: F401 - `redis` is a fixture

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="starts meridian as root to watch it give root up")

USER, GROUP = "nobody", "nogroup"


def _ids():
    try:
        return pwd.getpwnam(USER).pw_uid, grp.getgrnam(GROUP).gr_gid
    except KeyError:
        return None, None


UID, GID = _ids()
needs_nobody = pytest.mark.skipif(UID is None, reason=f"no {USER} user or {GROUP} group here")


def _unprivileged_port_start():
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1024


def free_low_port():
    """A loopback port in 600..999 nobody listens on that only root may bind here; the test
    is skipped when the kernel lets anyone bind such ports (ip_unprivileged_port_start)."""
    limit = min(1000, _unprivileged_port_start())
    if limit <= 600:
        pytest.skip(f"net.ipv4.ip_unprivileged_port_start is {limit}: no privileged port here")
    for port in range(600, limit):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    raise
    pytest.skip("no free loopback port in 600..999")


@pytest.fixture
def shared_dir():
    d = tempfile.mkdtemp(prefix="meridian-priv-")
    os.chmod(d, 0o755)
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def node(shared_dir):
    """Factory: node() is a Meridian in shared_dir whose config the test writes itself (no
    run_as_root added by the harness); node.start()/start_as() as below. Every one still
    running is stopped after the test and must exit 0; none may carry a sanitizer report."""
    made = []

    def make():
        m = Meridian(shared_dir, config_text="# written by the test\n", as_root_key=False)
        made.append(m)
        return m

    yield make
    for m in made:
        rc = m.stop() if m.proc is not None and m.proc.poll() is None else None
        err = m.stderr() if os.path.exists(m.stderr_path) else ""
        assert "ERROR: AddressSanitizer" not in err, err[-4000:]
        assert "ERROR: LeakSanitizer" not in err, err[-4000:]
        assert "WARNING: ThreadSanitizer" not in err, err[-4000:]
        assert "runtime error:" not in err, err[-4000:]
        assert rc in (0, None), f"meridian exited with {rc}: {err[-2000:]}"


def runnable_bin(m):
    """MERIDIAN_BIN as another user can run it: a copy in m's world-readable directory, since
    the build tree may sit under one only root may enter (a clone in mktemp -d's 0700 one)."""
    path = pathlib.Path(m.tmp) / "meridian"
    if not path.exists():
        shutil.copy2(MERIDIAN_BIN, path)
        os.chmod(path, 0o755)
    return str(path)


def start_as(m, uid, gid, wait=True):
    """Start m's binary as uid/gid with no supplementary groups, as a service manager's
    User=/Group= would (the process never was root)."""
    m.proc = subprocess.Popen([runnable_bin(m), "-c", m.config_path],
                              stdout=open(m.stdout_path, "w"), stderr=open(m.stderr_path, "w"),
                              user=uid, group=gid, extra_groups=[])
    if wait:
        wait_for(lambda: m.proc.poll() is None and m.healthy(), timeout=10,
                 what="meridian /healthz")
    return m


def exit_code(m):
    """Wait for a process that must refuse to start; its exit code."""
    try:
        return m.proc.wait(timeout=10 * SLOW)
    finally:
        if m.proc.poll() is None:
            m.proc.kill()
            m.proc.wait()


def config(m, origin, listeners=(), **sections):
    """Meridian's config: one plain listener on m.port plus `listeners`, the admin endpoint on
    m.admin_port, one region with `origin`, and top-level `sections` (user, group, ...)."""
    ls = [{"name": "main", "address": f"127.0.0.1:{m.port}"}] + list(listeners)
    return geo_config(m.port, m.admin_port,
                      [{"name": "eu", "lat": 50.0, "lon": 8.0, "backends": [origin.address]}],
                      listeners=ls, **sections)


def line_of(text, needle):
    """The 1-based number of the first line of `text` holding `needle`."""
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(f"no line with {needle!r}")


def task_ids(pid):
    """{tid: (uids, gids, groups, CapEff)} of every thread of `pid` from /proc."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        fields = {}
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields[key] = value.split()
        out[int(tid)] = ([int(x) for x in fields["Uid"]], [int(x) for x in fields["Gid"]],
                         sorted(int(x) for x in fields["Groups"]), fields["CapEff"][0])
    return out


def gid_of(group):
    return grp.getgrnam(group).gr_gid


WHO = f"user {USER} (uid {UID}), group {GROUP} (gid {GID}), having given up root at start"


# ---- giving root up -------------------------------------------------------------------------


@needs_nobody
def test_root_becomes_user_and_group_in_every_thread_and_keeps_its_low_port(origins, node):
    o = origins("eu-a")
    low = free_low_port()
    m = node()
    m.write_config(config(m, o, [{"name": "low", "address": f"127.0.0.1:{low}"}], workers=3,
                          user=USER, group=GROUP))
    m.start()
    wait_for(lambda: port_accepts(low), what="the listener below 1024")

    threads = task_ids(m.proc.pid)
    assert len(threads) >= 4, threads  # main and three workers, at least
    groups = sorted(set(os.getgrouplist(USER, GID)))
    for tid, (uids, gids, supplementary, cap_eff) in threads.items():
        assert uids == [UID] * 4, (tid, uids)  # real, effective, saved, filesystem
        assert gids == [GID] * 4, (tid, gids)
        assert supplementary == groups, (tid, supplementary)  # root's groups are gone
        assert int(cap_eff, 16) == 0, (tid, cap_eff)
    assert f"running as {WHO}" in m.stderr()

    # The port only root could bind was bound before the switch, and serves after it.
    for port in (low, m.port):
        status, _, body = http_get(port, "/")
        assert (status, body) == (200, b"eu-a\n"), (port, status, body)
    # /metrics still reads the process's own /proc entries (open descriptors).
    metrics = m.admin("/metrics")[1].decode()
    assert re.search(r"^process_open_fds [1-9]\d*$", metrics, re.M), metrics[-2000:]
    assert m.stop() == 0


def test_root_without_user_or_run_as_root_is_refused(origins, node):
    o = origins("eu-a")
    m = node()
    m.write_config(config(m, o))
    m.start(wait=False)
    assert exit_code(m) == 1
    err = m.stderr()
    assert (f"{m.config_path}: refusing to run as root: add user: (and group:) naming the "
            "account to switch to once the listeners are bound, or run_as_root: true to stay "
            "root (not recommended)") in err, err
    # Refused before anything was bound.
    assert not port_accepts(m.port) and not port_accepts(m.admin_port)


def test_run_as_root_true_keeps_root_and_says_so(origins, node):
    o = origins("eu-a")
    m = node()
    m.write_config(config(m, o, run_as_root=True))
    m.start()
    assert http_get(m.port, "/")[0] == 200
    for tid, (uids, gids, _, _) in task_ids(m.proc.pid).items():
        assert uids == [0] * 4 and gids == [0] * 4, (tid, uids, gids)
    assert "running as root (run_as_root: true)" in m.stderr()


@needs_nobody
def test_users_that_cannot_be_had_are_refused_with_file_and_line(origins, node):
    o = origins("eu-a")
    cases = [
        (dict(user="no-such-user-x9"), "user:",
         'user: no such user "no-such-user-x9" (getent passwd no-such-user-x9 finds none)'),
        (dict(user=USER, group="no-such-group-x9"), "group:",
         'group: no such group "no-such-group-x9"'),
        (dict(user="root"), "user:", 'user: "root" is root (uid 0), which gives nothing up'),
        (dict(user=USER, run_as_root=True), "run_as_root:",
         f'run_as_root: true contradicts user: "{USER}"'),
    ]
    for sections, key, words in cases:
        m = node()
        text = config(m, o, **sections)
        m.write_config(text)
        where = f"{m.config_path}:{line_of(text, key)}: "
        # `meridian -t` says the same as start-up does.
        r = subprocess.run([MERIDIAN_BIN, "-t", "-c", m.config_path], capture_output=True,
                           text=True, timeout=10 * SLOW)
        assert r.returncode == 1 and where + words in r.stderr, (sections, r.stderr)
        m.start(wait=False)
        assert exit_code(m) == 1, sections
        assert where + words in m.stderr(), (sections, m.stderr())
        assert not port_accepts(m.port)


@needs_nobody
def test_started_as_the_user_already_stays_and_never_switches(origins, node):
    """systemd's User=meridian with `user: meridian` in the file: nothing to give up, and
    nothing attempted (the unit's SystemCallFilter would refuse setgroups/setuid); another
    user named in the file is refused, since only root can switch."""
    o = origins("eu-a")
    m = node()
    m.write_config(config(m, o, user=USER, group=GROUP))
    start_as(m, UID, GID)
    assert http_get(m.port, "/")[0] == 200
    for tid, (uids, gids, supplementary, _) in task_ids(m.proc.pid).items():
        assert uids == [UID] * 4 and gids == [GID] * 4, (tid, uids, gids)
        assert supplementary == [], (tid, supplementary)  # not initgroups'd: never asked
    assert "running as" not in m.stderr()
    m.reload()  # reloads as that user, from the world-readable directory
    assert m.stop() == 0

    other = node()
    text = config(other, o, user="daemon")
    other.write_config(text)
    start_as(other, UID, GID, wait=False)
    assert exit_code(other) == 1
    assert (f"{other.config_path}:{line_of(text, 'user:')}: user: \"daemon\" (uid "
            f"{pwd.getpwnam('daemon').pw_uid}), but meridian was started as user {USER} "
            f"(uid {UID}), and only root can switch users") in other.stderr(), other.stderr()

    # Without user: at all, anyone but root runs as itself.
    plain = node()
    plain.write_config(config(plain, o))
    start_as(plain, UID, GID)
    assert http_get(plain.port, "/")[0] == 200


CREDS = "setuid,setgid,setgroups,setresuid,setresgid,setreuid,setregid,setfsuid,setfsgid,capset"


def creds_calls(node, origin, sections, run_as=None):
    """The identity-changing system calls Meridian makes from start to a graceful stop, by
    strace (run_as: strace -u, as a service manager's User=). Lines from before Meridian's
    own execve (strace switching users for -u) are left out."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed")
    m = node()
    m.write_config(config(m, origin, **sections))
    trace = m.tmp / "creds.trace"
    env = dict(os.environ)
    if os.environ.get("MERIDIAN_SANITIZED") == "1":
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"  # LSan ptraces
    binary = runnable_bin(m)
    m.proc = subprocess.Popen(
        [strace, "-f", "-qq", "-o", str(trace), "-e", f"trace=execve,{CREDS}"]
        + (["-u", run_as] if run_as else []) + [binary, "-c", m.config_path],
        stdout=open(m.stdout_path, "w"), stderr=open(m.stderr_path, "w"), env=env)
    wait_for(lambda: m.proc.poll() is None and m.healthy(), timeout=20,
             what="meridian under strace")
    with open(f"/proc/{m.proc.pid}/task/{m.proc.pid}/children") as f:
        child = int(f.read().split()[0])
    os.kill(child, signal.SIGTERM)
    assert m.proc.wait(timeout=30 * SLOW) == 0, m.stderr()[-2000:]
    lines = trace.read_text().splitlines()
    start = max(i for i, l in enumerate(lines) if "execve(" in l and binary in l)
    return [re.sub(r"\s+", " ", re.sub(r"^\d+\s+", "", l)) for l in lines[start + 1:]
            if re.match(r"^\d+\s+(" + CREDS.replace(",", "|") + r")\(", l)]


@needs_nobody
def test_the_switch_is_groups_gid_uid_then_a_failed_setuid_0_and_nothing_when_already_there(
        origins, node):
    o = origins("eu-a")
    calls = creds_calls(node, o, dict(user=USER, group=GROUP))
    # initgroups' setgroups, setgid, setuid, then the proof that root is gone for good.
    assert [c.split("(")[0] for c in calls] == ["setgroups", "setgid", "setuid", "setuid",
                                                "setgid"], calls
    given = re.fullmatch(r"setgroups\((\d+), \[([\d, ]*)\]\) = 0", calls[0])
    assert given, calls
    assert sorted(int(g) for g in given.group(2).split(", ")) == \
        sorted(set(os.getgrouplist(USER, GID))), calls
    assert calls[1] == f"setgid({GID}) = 0" and calls[2] == f"setuid({UID}) = 0", calls
    assert calls[3].startswith("setuid(0) = -1 EPERM"), calls
    assert calls[4].startswith("setgid(0) = -1 EPERM"), calls

    # Started as that user already (systemd's User=, whose SystemCallFilter refuses these
    # calls): none at all.
    assert creds_calls(node, o, dict(user=USER, group=GROUP), run_as=USER) == []


# ---- reloads after giving root up -----------------------------------------------------------


@needs_nobody
def test_reload_adding_a_port_below_1024_is_refused_and_the_old_generation_serves(origins,
                                                                                    node):
    o = origins("eu-a")
    low = free_low_port()
    m = node()
    m.write_config(config(m, o, user=USER, group=GROUP))
    m.start()
    text = config(m, o, [{"name": "low", "address": f"127.0.0.1:{low}"}], user=USER,
                  group=GROUP)
    m.reload(text, expect_success=False)  # asserts the generation stayed
    err = m.stderr()
    assert (f"{m.config_path}:{line_of(text, f'127.0.0.1:{low}')}: listener \"low\": bind "
            f"127.0.0.1:{low}: Permission denied; ports below 1024 take root or "
            f"CAP_NET_BIND_SERVICE, and meridian runs as {WHO}: restart it to listen there"
            ) in err, err[-3000:]
    assert http_get(m.port, "/")[0] == 200
    assert not port_accepts(low)
    assert m.status()["generation"] == 1

    # Naming another user on reload changes nothing but says so; ids stay.
    m.reload(config(m, o, user="daemon"))
    assert "user, group or run_as_root changed: takes effect on restart; meridian runs as " \
           f"{WHO}" in m.stderr()
    assert all(uids == [UID] * 4 for uids, _, _, _ in task_ids(m.proc.pid).values())


@needs_nobody
def test_reload_adding_a_root_only_key_is_refused_then_taken_once_readable(origins, node,
                                                                           shared_dir):
    o = origins("eu-a")
    cert = make_cert(shared_dir, "site", ["a.test"])
    os.chmod(cert.key, 0o600)  # root's alone, as `openssl req` left it
    https = free_port()
    m = node()
    m.write_config(config(m, o, user=USER, group=GROUP))
    m.start()
    tls = {"name": "https", "address": f"127.0.0.1:{https}",
           "tls": {"certificates": [{"cert": cert.cert, "key": cert.key}]}}
    text = config(m, o, [tls], user=USER, group=GROUP)
    m.reload(text, expect_success=False)
    err = m.stderr()
    assert (f"reload refused: {m.config_path}:{line_of(text, 'https')}: "
            f"listeners[1].tls.certificates[0].key: {cert.key} is not readable (permission "
            f"denied): meridian runs as {WHO}; make it readable by that user or group"
            ) in err, err[-3000:]
    assert "reload refused: keeping configuration generation 1" in err
    assert http_get(m.port, "/")[0] == 200
    assert not port_accepts(https)

    # Readable by the group it runs as: the same reload goes through.
    os.chown(cert.key, 0, GID)
    os.chmod(cert.key, 0o640)
    m.reload(text)
    assert m.status()["generation"] == 2
    assert curl_status(f"https://a.test:{https}/", "-k", resolve=("a.test", https))[0] == 200


@needs_nobody
def test_root_only_files_at_start_are_read_then_named_on_reload(origins, node, shared_dir):
    """A key and a GeoIP database only root may read: start-up (as root) reads them and
    serves, and warns that a reload will not; the reload is refused naming both, and the
    running generation keeps serving."""
    if not os.path.exists(SAMPLE_MMDB):
        pytest.skip(f"no {SAMPLE_MMDB}: build the tree first")
    o = origins("eu-a")
    cert = make_cert(shared_dir, "site", ["a.test"])
    db = shared_dir / "geo.mmdb"
    shutil.copy(SAMPLE_MMDB, db)
    for path in (cert.key, db):
        os.chmod(path, 0o600)
    https = free_port()
    m = node()
    tls = {"name": "https", "address": f"127.0.0.1:{https}",
           "tls": {"certificates": [{"cert": cert.cert, "key": cert.key}]}}
    text = config(m, o, [tls], user=USER, group=GROUP, geoip={"database": str(db)})
    m.write_config(text)
    m.start()
    assert curl_status(f"https://a.test:{https}/", "-k", resolve=("a.test", https))[0] == 200
    err = m.stderr()
    for key, path, needle in (("listeners[1].tls.certificates[0].key", cert.key, "https"),
                              ("geoip.database", db, "geoip:")):
        assert (f"{m.config_path}:{line_of(text, needle)}: {key}: {path} is not readable by "
                "the user meridian now runs as: a reload will be refused until it is") in err, err

    m.reload(expect_success=False)
    err = m.stderr()
    for key, path, needle in (("listeners[1].tls.certificates[0].key", cert.key, "https"),
                              ("geoip.database", db, "geoip:")):
        assert (f"reload refused: {m.config_path}:{line_of(text, needle)}: {key}: {path} is not "
                f"readable (permission denied): meridian runs as {WHO}") in err, err[-3000:]
    assert curl_status(f"https://a.test:{https}/", "-k", resolve=("a.test", https))[0] == 200
    assert http_get(m.port, "/")[0] == 200


# ---- the admin endpoint's exposure ----------------------------------------------------------


def test_a_non_loopback_admin_address_is_refused_unless_allowed(origins, meridian, tmp_path):
    o = origins("eu-a")
    m = meridian(regions=[("eu", [o.address])])
    port = free_port()
    wide = (f"workers: 2\nlisteners:\n  - {{ name: http, address: \"127.0.0.1:{m.port}\" }}\n"
            f"admin: {{ address: \"0.0.0.0:{port}\" }}\nregions:\n  - name: eu\n"
            f"    location: {{ lat: 50.0, lon: 8.0 }}\n    backends: [\"{o.address}\"]\n")
    message = (f"{m.config_path}:4: admin.address: 0.0.0.0:{port} is not a loopback address; "
               "the admin endpoint has no authentication, so it listens on 127.0.0.1 or [::1] "
               "unless admin.allow_remote: true says it is meant to be reached from elsewhere")

    # On reload: refused, and the admin endpoint stays where it was.
    m.reload(wide, expect_success=False)
    assert message in m.stderr(), m.stderr()[-3000:]
    assert m.healthy() and not port_accepts(port)

    # `meridian -t` (and so start-up) refuses it; allow_remote: true accepts it. [::] too.
    path = tmp_path / "wide.yaml"
    for address, allow, ok in (("0.0.0.0", "", False), ("0.0.0.0", ", allow_remote: true", True),
                               ("[::]", "", False), ("127.0.0.2", "", True),
                               ("[::1]", "", True)):
        text = wide.replace(f'"0.0.0.0:{port}" }}', f'"{address}:{port}"{allow} }}')
        path.write_text(text)
        r = subprocess.run([MERIDIAN_BIN, "-t", "-c", str(path)], capture_output=True,
                           text=True, timeout=10 * SLOW)
        assert (r.returncode == 0) == ok, (address, allow, r.stderr)
        if not ok:
            assert f"{path}:4: admin.address: {address}:{port} is not a loopback address" \
                in r.stderr, r.stderr


def test_a_non_loopback_admin_address_stops_start_up(origins, node):
    o = origins("eu-a")
    m = node()
    port = free_port()
    text = config(m, o, run_as_root=True).replace(f"127.0.0.1:{m.admin_port}", f"0.0.0.0:{port}")
    m.write_config(text)
    m.start(wait=False)
    assert exit_code(m) == 1
    assert (f"{m.config_path}:{line_of(text, 'admin:')}: admin.address: 0.0.0.0:{port} is not "
            "a loopback address") in m.stderr(), m.stderr()
    assert not port_accepts(port) and not port_accepts(m.port)


# ---- no secrets on the admin endpoint -------------------------------------------------------


def test_status_and_metrics_show_no_redis_password_key_path_or_ticket_keys(redis, origins,
                                                                           meridian, tmp_path):
    secret = "s3cret-Redis-pass-7431"
    r = redis(args=["--requirepass", secret])
    o = origins("eu-a")
    cert = make_cert(tmp_path, "secret-site", ["a.test"])
    tickets = write_ticket_keys(tmp_path / "ticket-keys.bin", 2)
    https = free_port()
    m = meridian(start=False)
    tls = {"name": "https", "address": f"127.0.0.1:{https}",
           "tls": {"certificates": [{"cert": cert.cert, "key": cert.key}],
                   "session_tickets": {"key_file": tickets}}}
    m.write_config(config(m, o, [tls], rate_limit={
        "phase": "p1", "phases": {"p1": {"rps": 100000, "burst": 100000}},
        "redis": {"address": f"127.0.0.1:{r.port}", "password": secret}}))
    m.start()
    # Every worker on the shared budget: the password did reach Redis (AUTH).
    until_mode(m, "shared", timeout=10)
    assert curl_status(f"https://a.test:{https}/", "-k", resolve=("a.test", https))[0] == 200

    with open(tickets, "rb") as f:
        ticket_bytes = f.read()
    bodies = {path: m.admin(path)[1] for path in ("/status", "/metrics", "/route?ip=127.0.0.1")}
    assert b'"mode":"shared"' in bodies["/status"]
    for path, body in bodies.items():
        text = body.decode("utf-8", "replace")
        for needle in (secret, cert.key, os.path.basename(cert.key), tickets,
                       os.path.basename(tickets)):
            assert needle not in text, (path, needle)
        for i in range(0, len(ticket_bytes), 16):  # no piece of a key, raw or in hex
            assert ticket_bytes[i:i + 16] not in body, path
            assert ticket_bytes[i:i + 16].hex() not in text.lower(), path
    assert secret not in m.stderr()
