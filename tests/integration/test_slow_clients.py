# SPDX-License-Identifier: MIT
"""Slow clients, black-box: slowhttptest (Debian package `slowhttptest`) in its three modes, 500
connections each, against the real binary: slow headers (-H, "slowloris"), a slow body (-B,
"R-U-Dead-Yet") and a slow reader (-X, "slow read"). Every attacking connection must be closed by
Meridian within the timeout that governs it plus 2 s (more on sanitizer builds), while a normal
client, on a fresh connection every 50 ms, gets its 200 and its body promptly all the while.

Which timeout governs what (src/h1_conn.c, src/conn.c). The two differ on purpose, so that the
access log and the closing times show which one acted:
  -H  client_header, from the request's first byte, however fast the header lines trickle in
      (slowhttptest sends one every second here, well within client_idle): a deadline that no
      byte pushes back. Then 408, and Meridian shuts its side down.
  -B  client_idle, the silence between two reads of the body. It limits stalls, as nginx's
      client_body_timeout does, not the whole body: slowhttptest sends its follow-up bytes only
      every -i seconds (10 here), so the body stalls past client_idle and is answered 408. A
      body trickled faster than client_idle (every second) is not cut by it: what ends that
      exchange is upstream_response, which runs from the request's start while the backend
      waits for the body: 408, the client's doing, not counted against the backend's health
      (the last test).
  -X  client_idle as well, though not through the write timer one might expect ("client
      stopped reading": client_idle without a byte of write progress). Over loopback, whose
      64 KiB segments let a socket's send buffer grow to megabytes at once (tcp_wmem), the
      kernel takes the whole of any response this test can afford for 500 connections (1 MiB
      each already costs over a gigabyte of kernel memory, and still fits), however small the
      client's receive window (slowhttptest asks for an SO_RCVBUF of at most 512 bytes, which
      the kernel rounds up to 2,304). So Meridian's side of the exchange is over at once, and
      the slow reader is an idle keep-alive connection, which client_idle closes. The write
      timer, which the small segments of a real network bring into play, is tested with one
      connection and a 200 MB response in test_errors.py. The 64 KiB asked for here are still
      far more than the client's window: it is a slow reader for the whole test.

How closing is measured: on Meridian's side, in the kernel's socket table (sock_diag netlink, as
`ss` reads it), sampled on a thread: for each connection to the listener, when its server-side
socket was first seen open and when it stopped being ESTABLISHED. Meridian closing (or shutting
its writing side down after a 408) puts it in FIN_WAIT1/FIN_WAIT2 (TIME_WAIT later); the client
closing first would put it in CLOSE_WAIT, a failure for an attacking connection. The bound
checked is the pessimistic one: from the start of the sample before the connection was first
seen to the end of the sample that saw it closed, sampling delays included. Meridian's own gauge
of open client connections (/metrics) must be back to the normal client's alone soon after; its
access log tells what it answered; for -H and -B, slowhttptest itself must end with "No open
connections left", its CSV report (-g -o) having shown all 500 connected.

The slow reader cannot see the close, by the nature of the attack: Meridian closes a socket
whose send queue still holds the response, so the kernel sends its FIN after that, which the
client reads at 5 bytes a second. slowhttptest's report shows every connection connected to the
end; that and when the close happened is visible only on Meridian's side, where it is checked.
"""
import csv
import json
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import SLOW, wait_for
from util_http import ConnectionClosed, RawConn, build

SLOWHTTPTEST = shutil.which("slowhttptest")
pytestmark = pytest.mark.skipif(
    SLOWHTTPTEST is None, reason="slowhttptest not installed (Debian package `slowhttptest`; "
                                 "packaging/deps.sh --test installs it)")

CONNECTIONS = 500
CLIENT_HEADER = 2.0  # seconds: slow headers
CLIENT_IDLE = 3.0    # seconds: a stalled body, a slow reader
TIMEOUTS = (f"timeouts: {{ client_header: {CLIENT_HEADER:g}s, client_idle: {CLIENT_IDLE:g}s, "
            "upstream_response: 30s, shutdown: 2s }\n")
# Each attacking connection must be closed within its timeout plus this. Sanitizer builds run
# everything several times slower: the margin (not the timeouts) grows with them.
GRACE = 2.0 * SLOW
# A normal request must be answered within this while the attack goes on.
MAX_LATENCY = 0.5 * SLOW
BODY = b"eu-a\n"  # what the origin answers to a GET of anything but its special paths
SLOW_READ_BYTES = 65536

# TCP states (include/net/tcp_states.h) of the server side of a connection.
OPEN = {1, 3, 12}        # ESTABLISHED, SYN_RECV, NEW_SYN_RECV
CLOSED_BY_CLIENT = {8, 9}  # CLOSE_WAIT, LAST_ACK (Meridian closing first: FIN_WAIT1/2, TIME_WAIT)
LISTEN = 10

# The kernel's socket table, read through sock_diag netlink (what `ss` uses) with a filter run
# in the kernel: /proc/net/tcp formats every TCP socket of the machine, which takes seconds
# when another job holds tens of thousands of them.
NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY = 4, 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
INET_DIAG_REQ_BYTECODE, INET_DIAG_BC_S_GE, INET_DIAG_BC_S_LE = 1, 2, 3


def server_side_states(nl, port, seq):
    """{client port: TCP state} of every IPv4 TCP socket whose local port is `port`, the
    listener itself left out. nl: a NETLINK_SOCK_DIAG socket."""
    # The filter program: local port >= port, then local port <= port; a jump past the end
    # rejects the socket (inet_diag_bc_run() in net/ipv4/inet_diag.c).
    bc = (struct.pack("=BBHBBH", INET_DIAG_BC_S_GE, 8, 20, 0, 0, port) +
          struct.pack("=BBHBBH", INET_DIAG_BC_S_LE, 8, 12, 0, 0, port))
    # struct inet_diag_req_v2: every state (~0), no socket id (a dump).
    req = struct.pack("=BBBBI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + bytes(48)
    attr = struct.pack("=HH", 4 + len(bc), INET_DIAG_REQ_BYTECODE) + bc
    nl.sendto(struct.pack("=IHHII", 16 + len(req) + len(attr), SOCK_DIAG_BY_FAMILY,
                          NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + req + attr, (0, 0))
    out = {}
    while True:
        data = nl.recv(1 << 20)
        off = 0
        while off < len(data):
            length, mtype = struct.unpack_from("=IH", data, off)
            if mtype == NLMSG_DONE:
                return out
            if mtype == NLMSG_ERROR:
                raise OSError(-struct.unpack_from("=i", data, off + 16)[0], "sock_diag dump")
            # struct inet_diag_msg after the 16-byte header: family, state, timer, retrans,
            # then the socket id: source port, destination port (network order), ...
            state = data[off + 17]
            if state != LISTEN:
                out[struct.unpack_from("!H", data, off + 22)[0]] = state
            off += (length + 3) & ~3


class Conn:
    """One connection to Meridian's listener as the socket table showed it, with times that
    bound its life: the sample before it was first seen started no later than it was opened,
    and the sample that saw it closed ended no earlier than it was closed."""

    def __init__(self, before, first):
        self.before = before  # when the last sample that did not show it started
        self.first = first    # when the first sample that did ended
        self.last_open = None  # when the last sample that showed it open started
        self.end = None       # when the first sample that showed it closed ended
        self.end_state = None

    def held_max(self):
        """How long it was open at most."""
        return self.end - self.before

    def held_min(self):
        """How long it was open at least."""
        return (self.last_open or self.first) - self.first


class ServerSockets:
    """Samples the server side of every connection to `port` in the kernel's socket table on
    a thread, until stop(). conns: every Conn seen (a client port may be used again by a later
    connection). open_counts: (time, connections open) per sample."""

    def __init__(self, port, interval=0.05):
        self.port = port
        self._nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
        self._seq = 0
        self.interval = interval
        self.conns = []
        self.open_counts = []
        self._current = {}  # client port: its latest Conn
        self._missing = {}  # client port: when a sample first did not show its open Conn
        self._prev = time.monotonic()
        self._error = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self):
        t0 = time.monotonic()
        self._seq += 1
        seen = server_side_states(self._nl, self.port, self._seq)
        t1 = time.monotonic()
        nopen = 0
        for port, state in seen.items():
            self._missing.pop(port, None)
            c = self._current.get(port)
            if c is None or (c.end is not None and state in OPEN):
                c = self._current[port] = Conn(self._prev, t1)
                self.conns.append(c)
            if c.end is not None:
                continue
            if state in OPEN:
                c.last_open = t0
                nopen += 1
            else:
                c.end, c.end_state = t1, state
        for port, c in self._current.items():
            if c.end is None and port not in seen:
                # Reset, or closed and gone between two samples. Reading the table while it
                # changes may skip a line: gone only when two samples in a row miss it.
                if port in self._missing:
                    c.end, c.end_state = self._missing.pop(port), "gone"
                else:
                    self._missing[port] = t1
        self.open_counts.append((t1, nopen))
        self._prev = t0

    def _run(self):
        try:
            while not self._stop.is_set():
                self._sample()
                self._stop.wait(self.interval)
        except Exception as e:  # noqa: BLE001 - handed to the caller by stop()
            self._error = e

    def open_now(self):
        return self.open_counts[-1][1] if self.open_counts else 0

    def stop(self):
        """Stop sampling, after two last samples: a socket gone since the thread's last one
        is marked closed only once two samples in a row have missed it."""
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            if self._error is None:
                self._sample()
                self._sample()
        finally:
            self._nl.close()
        if self._error is not None:
            raise self._error


class NormalClient:
    """A well-behaved client on a thread, until stop(): a GET on a fresh connection every
    50 ms. results: (start time, seconds taken, status or None, body or the error)."""

    def __init__(self, port):
        self.port = port
        self.results = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        i = 0
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                with RawConn(self.port, timeout=5) as c:
                    c.send(build("GET", f"/normal/{i}", host="normal.test",
                                 headers=[("Connection", "close")]))
                    r = c.read_response()
                self.results.append((t0, time.monotonic() - t0, r.status, r.body))
            except (OSError, ConnectionClosed, AssertionError) as e:
                self.results.append((t0, time.monotonic() - t0, None, repr(e)))
            i += 1
            self._stop.wait(0.05)  # pacing the requests, not waiting for anything

    def served(self):
        return sum(1 for _, _, status, body in self.results if status == 200 and body == BODY)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=10 * SLOW)
        assert not self._thread.is_alive(), "the normal client's last request never ended"


def start_proxy(origins, meridian, tmp_path, extra=TIMEOUTS):
    o = origins("eu-a")
    m = meridian(regions=[("eu", [o.address])], extra=extra,
                 access_log=str(tmp_path / "access.log"))
    m.access_log = tmp_path / "access.log"
    return m


@pytest.fixture
def proxy(origins, meridian, tmp_path):
    return start_proxy(origins, meridian, tmp_path)


def open_client_connections(m):
    """Meridian's own count of open client connections (/metrics)."""
    text = m.admin("/metrics")[1].decode()
    return int(float(re.search(r"^meridian_client_connections (\S+)$", text, re.M).group(1)))


def access_log(m, path_prefix):
    """{(status, bytes): count} over the access log's lines whose path starts with
    path_prefix (an answer given before the request line was complete has the path "")."""
    counts = {}
    with open(m.access_log) as f:
        for line in f:
            entry = json.loads(line)
            if entry["path"].startswith(path_prefix):
                key = entry["status"], entry["bytes"]
                counts[key] = counts.get(key, 0) + 1
    return counts


def read_csv(path):
    """slowhttptest's CSV report: one dict per second (Seconds, Closed, Pending, Connected)."""
    with open(path) as f:
        return [{k: int(v) for k, v in row.items()} for row in csv.DictReader(f)]


def held(conns, timeout):
    """The connections the attack held open: those open for at least half their timeout
    (sampling may hide up to two samples of a life). Everything else was answered and closed
    in milliseconds: the normal client's, slowhttptest's own probe (a plain GET every 5 s)."""
    return [c for c in conns if c.held_min() >= timeout / 2]


def attack(m, tmp_path, mode_args, timeout, client_sees_close):
    """Run slowhttptest with mode_args against m while a normal client polls; return what was
    seen: (the server side of every connection, the normal client, slowhttptest's output, its
    CSV rows, the number of connections open over time). Asserts nothing about the attack
    itself; stops everything it started."""
    sockets = ServerSockets(m.port)
    normal = NormalClient(m.port)
    out_path = tmp_path / "slowhttptest.out"
    report = tmp_path / "slowhttptest"
    proc = None
    try:
        wait_for(lambda: normal.served() >= 3, what="the normal client served before the attack")
        # -r: connections opened per second (all 500 within a second or two); -l: the test's
        # length, a backstop only (a Meridian that closes nothing makes slowhttptest run this
        # long, and the assertions then say what stayed open); -v 1: the final report only.
        length = int(timeout + 10 * SLOW)
        args = [SLOWHTTPTEST, *mode_args, "-c", str(CONNECTIONS), "-r", "1000",
                "-l", str(length), "-g", "-o", str(report), "-v", "1"]
        with open(out_path, "w") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)

        def attack_over():
            # At most the normal client's connection still open (it comes and goes).
            return len(held(sockets.conns, timeout)) >= CONNECTIONS and sockets.open_now() <= 1

        deadline = time.monotonic() + length + 5 * SLOW
        while not attack_over() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)  # the sampler thread does the watching
        if attack_over():
            # Meridian's own count agrees (once each lingering close after a 408 has seen
            # the client's FIN).
            wait_for(lambda: open_client_connections(m) <= 1, timeout=GRACE / SLOW,
                     what="meridian's client connections gauge back to the normal client's")
        if client_sees_close:
            proc.wait(timeout=length + 5 * SLOW)
        else:
            proc.send_signal(signal.SIGINT)  # it writes its report and exits
            proc.wait(timeout=10 * SLOW)
        # A few more normal requests after the attack (how they went is checked later).
        made = len(normal.results)
        wait_for(lambda: len(normal.results) >= made + 3,
                 what="the normal client's requests after the attack")
    finally:
        normal.stop()
        sockets.stop()
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
    with open(out_path) as f:
        output = f.read()
    return sockets.conns, normal, output, read_csv(f"{report}.csv"), sockets.open_counts


def check_closed_in_time(conns, open_counts, timeout, label):
    """Every attacking connection was held (the attack worked: nothing refused it at once) and
    then closed by Meridian within timeout + GRACE; no connection of any kind stayed open
    longer. Returns the worst seconds after the timeout."""
    still_open = [c for c in conns if c.end is None]
    assert not still_open, (f"{label}: {len(still_open)} of {len(conns)} connections still open "
                            f"at the end, open for at least "
                            f"{sorted(round(c.held_min(), 2) for c in still_open)[-10:]} s")
    attackers = held(conns, timeout)
    assert len(attackers) >= CONNECTIONS, (
        f"{label}: only {len(attackers)} connections were held open; the longest lasted "
        f"{sorted(round(c.held_max(), 2) for c in conns)[-10:]} s")
    late = sorted(round(c.held_max() - timeout, 2) for c in conns
                  if c.held_max() > timeout + GRACE)
    assert not late, (f"{label}: {len(late)} connections closed more than {GRACE:g}s after the "
                      f"{timeout:g}s timeout: {late[-10:]} s after it")
    # Closed by Meridian: never seen in CLOSE_WAIT/LAST_ACK. (A socket gone between two
    # samples says nothing either way; the access log and the gauge speak for Meridian.)
    by_client = [c for c in attackers if c.end_state in CLOSED_BY_CLIENT]
    assert not by_client, f"{label}: {len(by_client)} connections were closed by the client"
    first = min(c.held_max() for c in attackers) - timeout
    worst = max(c.held_max() for c in conns) - timeout
    gap = max(b[0] - a[0] for a, b in zip(open_counts, open_counts[1:]))
    print(f"\n{label}: {len(attackers)} connections held, closed by meridian "
          f"{first:+.2f}..{worst:+.2f} s after the {timeout:g}s timeout (at most; samples up to "
          f"{gap * 1000:.0f} ms apart)")
    return worst


def check_normal_client(normal, open_counts, label):
    """Every normal request, before, during and after the attack, got its 200 and its body
    in time, and several of them while (nearly) all 500 attacking connections were open."""
    bad = [r for r in normal.results if r[2] != 200 or r[3] != BODY or r[1] > MAX_LATENCY]
    assert not bad, (f"{label}: {len(bad)} of {len(normal.results)} normal requests failed or "
                     f"were slow: {bad[:5]}")
    peak = [t for t, n in open_counts if n >= CONNECTIONS * 0.9]
    assert peak, f"{label}: never {CONNECTIONS * 0.9:.0f} attacking connections open at once"
    during = [r for r in normal.results if peak[0] <= r[0] <= peak[-1]]
    assert len(during) >= 5, (f"{label}: only {len(during)} normal requests while the attack "
                              f"held its connections")
    print(f"{label}: {len(normal.results)} normal requests, {len(during)} of them during the "
          f"attack, the slowest in {max(r[1] for r in normal.results) * 1000:.0f} ms")


def check_slowhttptest_saw_all_closed(output, rows, timeout, label):
    """slowhttptest's view, to the second: all 500 connected by second k of its per-second
    report, and it ended, because none was left open (it never closes one itself), by second
    k + timeout + GRACE."""
    assert "No open connections left" in output, f"{label}: slowhttptest said:\n{output[-2000:]}"
    all_in = [r["Seconds"] for r in rows if r["Connected"] + r["Closed"] == CONNECTIONS]
    assert all_in, f"{label}: slowhttptest never had all {CONNECTIONS} connected: {rows}"
    ended = int(re.search(r"Test ended on (\d+)th second", output).group(1))
    assert ended <= all_in[0] + timeout + GRACE, (
        f"{label}: slowhttptest ended on its second {ended}, all connected on its second "
        f"{all_in[0]}: {rows}")
    print(f"{label}: slowhttptest had all connected on its second {all_in[0]} and none left "
          f"on its second {ended}")


def test_slow_headers_are_cut_at_client_header(proxy, tmp_path):
    """-H: each connection sends a request line and headers, then one more header line every
    second, never the blank line: 408 at client_header from the first byte."""
    m = proxy
    conns, normal, output, rows, open_counts = attack(
        m, tmp_path, ["-H", "-i", "1", "-x", "8", "-u", m.url("/slow-headers")],
        CLIENT_HEADER, client_sees_close=True)
    check_closed_in_time(conns, open_counts, CLIENT_HEADER, "slow headers")
    check_normal_client(normal, open_counts, "slow headers")
    check_slowhttptest_saw_all_closed(output, rows, CLIENT_HEADER, "slow headers")
    # Answered before the request line was taken in: no path in the log.
    assert access_log(m, "").get((408, 0), 0) >= CONNECTIONS


def test_a_stalled_body_is_cut_at_client_idle(proxy, tmp_path):
    """-B: each connection sends a POST head with Content-Length 4096 and 7 bytes of body,
    then nothing for 10 s (slowhttptest's follow-up interval): 408 at client_idle."""
    m = proxy
    conns, normal, output, rows, open_counts = attack(
        m, tmp_path, ["-B", "-i", "10", "-s", "4096", "-u", m.url("/slow-body")],
        CLIENT_IDLE, client_sees_close=True)
    check_closed_in_time(conns, open_counts, CLIENT_IDLE, "slow body")
    check_normal_client(normal, open_counts, "slow body")
    check_slowhttptest_saw_all_closed(output, rows, CLIENT_IDLE, "slow body")
    assert sum(n for (status, _), n in access_log(m, "/slow-body").items()
               if status == 408) >= CONNECTIONS, access_log(m, "/slow-body")


def test_a_slow_reader_is_closed_at_client_idle(proxy, tmp_path):
    """-X: each connection asks for 64 KiB with a receive buffer of at most 512 bytes (2,304
    once the kernel rounds it up) and reads 5 bytes a second: Meridian hands the response to
    the kernel (see the module's comment) and closes the connection at client_idle."""
    m = proxy
    conns, normal, output, rows, open_counts = attack(
        m, tmp_path, ["-X", "-w", "1", "-y", "512", "-n", "1", "-z", "5",
                      "-u", m.url(f"/bytes/{SLOW_READ_BYTES}")],
        CLIENT_IDLE, client_sees_close=False)
    check_closed_in_time(conns, open_counts, CLIENT_IDLE, "slow read")
    check_normal_client(normal, open_counts, "slow read")
    answered = access_log(m, "/bytes/")
    stopped = m.stderr().count("stopped reading; closing")
    print(f"slow read: access log {answered}; 'client stopped reading' {stopped} times")
    assert sum(n for (status, _), n in answered.items() if status == 200) >= CONNECTIONS, answered
    # The client cannot see the close (above): slowhttptest counts them all connected still.
    assert rows and max(r["Connected"] for r in rows) == CONNECTIONS, rows


UPSTREAM_RESPONSE = 4.0  # seconds, for the trickled body: more than client_idle


def test_a_trickled_body_is_cut_at_upstream_response_and_not_blamed_on_the_backend(
        origins, meridian, tmp_path):
    """-B with a follow-up every second, within client_idle: the body never stalls long enough
    for client_idle, and what ends each exchange is upstream_response, counted from the
    request's start. Those timeouts are the client's doing: the backend took every byte it
    was sent and waited for the rest. So the answer is 408 (not a gateway's 504), and passive
    health checks do not count them: before that was so, three such clients took a healthy
    backend down and every normal client then got a 503. Should upstream_response ever start
    only once the request is sent (to let slow uploads through), a body trickled this way
    would need another bound (a minimum rate, a limit on the whole body's time)."""
    hc = "health_check: { path: /, interval: 1h, timeout: 1s, rise: 1, fall: 3, passive: true }\n"
    m = start_proxy(origins, meridian, tmp_path, extra=(
        f"timeouts: {{ client_header: {CLIENT_HEADER:g}s, client_idle: {CLIENT_IDLE:g}s, "
        f"upstream_response: {UPSTREAM_RESPONSE:g}s, shutdown: 2s }}\n" + hc))

    def backend():
        return m.status()["regions"][0]["backends"][0]

    # The first check (at start) passes; with a check an hour away, only passive failures
    # could take the backend down during the test.
    wait_for(lambda: backend()["health"] == "up", what="the backend up")
    conns, normal, output, rows, open_counts = attack(
        m, tmp_path, ["-B", "-i", "1", "-x", "2", "-s", "65536", "-u", m.url("/slow-body")],
        UPSTREAM_RESPONSE, client_sees_close=True)
    check_closed_in_time(conns, open_counts, UPSTREAM_RESPONSE, "trickled body")
    check_normal_client(normal, open_counts, "trickled body")
    check_slowhttptest_saw_all_closed(output, rows, UPSTREAM_RESPONSE, "trickled body")
    assert sum(n for (status, _), n in access_log(m, "/slow-body").items()
               if status == 408) >= CONNECTIONS, access_log(m, "/slow-body")
    b = backend()
    assert (b["health"], b["passive_failures"]) == ("up", 0), b
