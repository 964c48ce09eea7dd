#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Idle keep-alive memory of a proxy: what one open, idle client connection costs it.

Opens N keep-alive connections to 127.0.0.1:PORT in batches, sends one `GET / HTTP/1.1` on each
and reads the whole response (so the proxy has touched its buffers for it), waits, and divides
the growth of the proxy's resident memory (VmRSS in /proc/PID/status, summed over PID and its
descendants, e.g. an nginx master and its worker) by the number of connections that are open
and idle. Then closes them all. Standard library only; this process holds N sockets, so N is
bounded by its open-file limit (20,000 on the project's machines: keep N at 10,000 at most).

With --tls each connection first completes a full TLS 1.3 handshake (ssl module, no certificate
verification, SNI --sni, ALPN http/1.1, no session resumption: every connection gets a fresh
session), then sends its request over TLS and stays open, idle, like the plain ones.

The last line of output is machine-readable:
  RESULT conns=N ok=.. failed=.. non200=.. closed_early=.. rss_before_kb=.. rss_idle_kb=..
         rss_after_close_kb=.. bytes_per_conn=..

With --hold, for a driver that spreads more connections than one process may hold over several
of these (bench/idle_19k.sh), the connections stay open after the measurement: it prints
  HOLD open=.. failed=.. non200=.. closed_early=.. rss_before_kb=.. rss_idle_kb=..
and then answers commands read from stdin, one a line, with one line each:
  check     CHECK open=.. closed=..  the held connections the proxy closed (or wrote to) since
                                     are counted in closed= and let go; open= is what is left
  close K   CLOSED K open=.. at=T    closes K held connections; T is time.monotonic() right
                                     after the last close() (CLOCK_MONOTONIC: comparable with
                                     other processes' clocks on the same machine)
At the end of stdin it closes the rest and finishes as without --hold (the RESULT line's
figures are those of the measurement, before any command).
"""
import argparse
import os
import resource
import selectors
import socket
import ssl
import sys
import time


def tree_pids(root):
    """root and every process descended from it."""
    parent = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2:].split()
        parent[int(name)] = int(fields[1])
    pids = {root}
    grown = True
    while grown:
        grown = False
        for pid, ppid in parent.items():
            if ppid in pids and pid not in pids:
                pids.add(pid)
                grown = True
    return sorted(pids)


def rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class Client:
    __slots__ = ("sock", "state", "buf")

    def __init__(self, sock):
        self.sock = sock
        self.state = "connecting"
        self.buf = b""


def response_complete(buf):
    """None while incomplete, else the status code of the response in buf."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].decode("latin-1").split("\r\n")
    try:
        status = int(head[0].split()[1])
    except (IndexError, ValueError):
        return -1
    if 100 <= status < 200:  # interim response: skip it
        return response_complete(buf[end + 4:])
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = buf[end + 4:]
    if "content-length" in headers:
        return status if len(body) >= int(headers["content-length"]) else None
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return status if body.endswith(b"0\r\n\r\n") else None
    return status if status in (204, 304) else None


def tls_context():
    """A client context for TLS 1.3 only, without verification or session reuse: each
    connection made from it negotiates a fresh session (full handshake)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def tls_step(sel, c, request):
    """Drives the handshake of c, then sends the request; returns False while it waits."""
    try:
        if c.state == "handshake":
            c.sock.do_handshake()
            c.state = "sending"
        c.sock.send(request)  # one small record: always fits once the handshake is done
    except ssl.SSLWantReadError:
        sel.modify(c.sock, selectors.EVENT_READ, c)
        return False
    except ssl.SSLWantWriteError:
        sel.modify(c.sock, selectors.EVENT_WRITE, c)
        return False
    c.state = "reading"
    sel.modify(c.sock, selectors.EVENT_READ, c)
    return True


def open_batch(sel, host, port, request, count, timeout, ctx=None, sni=None):
    """Opens count connections (over TLS when ctx is given) and completes one request on each.
    Returns (open clients, failures, non-200 responses)."""
    pending = {}
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((host, port))
        c = Client(s)
        pending[s.fileno()] = c
        sel.register(s, selectors.EVENT_WRITE, c)
    done, failed, non200 = [], 0, 0
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            c = key.data
            try:
                if c.state == "connecting":
                    err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise OSError(err, os.strerror(err))
                    if ctx is None:
                        c.sock.send(request)  # a few dozen bytes: always fits
                        c.state = "reading"
                        sel.modify(c.sock, selectors.EVENT_READ, c)
                        continue
                    # same descriptor, new object: re-register it
                    sel.unregister(c.sock)
                    c.sock = ctx.wrap_socket(c.sock, server_hostname=sni,
                                             do_handshake_on_connect=False)
                    sel.register(c.sock, selectors.EVENT_WRITE, c)
                    c.state = "handshake"
                if c.state in ("handshake", "sending"):
                    tls_step(sel, c, request)
                    continue
                try:
                    data = c.sock.recv(65536)
                    while ctx is not None and c.sock.pending():
                        data += c.sock.recv(65536)
                except ssl.SSLWantReadError:  # e.g. only a session ticket arrived
                    continue
                if not data:
                    raise OSError("closed before the response was complete")
                c.buf += data
                status = response_complete(c.buf)
                if status is None:
                    continue
                if status != 200:
                    non200 += 1
                c.state = "idle"
                c.buf = b""
                sel.unregister(c.sock)
                del pending[key.fd]
                done.append(c)
            except OSError:
                failed += 1
                try:
                    sel.unregister(key.fd)
                except KeyError:  # between unregister and register around wrap_socket
                    pass
                del pending[key.fd]
                c.sock.close()
    for c in pending.values():  # timed out
        failed += 1
        sel.unregister(c.sock)
        c.sock.close()
    return done, failed, non200


def closed_by_proxy(sel, clients, tls):
    """The clients whose socket is readable now: the proxy closed it (or wrote to it) while it
    was idle. Over TLS, a late record that carries no data (a session ticket) does not count."""
    for c in clients:
        sel.register(c.sock, selectors.EVENT_READ, c)
    gone = []
    for key, _ in sel.select(timeout=0):
        if tls:
            try:
                key.data.sock.recv(1)
            except ssl.SSLWantReadError:
                continue
            except OSError:
                pass
        gone.append(key.data)
    for c in clients:
        sel.unregister(c.sock)
    return gone


def hold(sel, clients, tls):
    """--hold: answers the commands on stdin (see the module's comment) about the open idle
    clients, closing those it is told to, until the end of stdin."""
    for line in sys.stdin:
        words = line.split()
        if words == ["check"]:
            gone = closed_by_proxy(sel, clients, tls)
            for c in gone:
                c.sock.close()
            gone = set(gone)
            clients = [c for c in clients if c not in gone]
            print(f"CHECK open={len(clients)} closed={len(gone)}", flush=True)
        elif len(words) == 2 and words[0] == "close" and words[1].isdigit():
            k = min(int(words[1]), len(clients))
            for c in clients[len(clients) - k:]:
                c.sock.close()
            del clients[len(clients) - k:]
            print(f"CLOSED {k} open={len(clients)} at={time.monotonic():.6f}", flush=True)
        elif words:
            print(f"ERROR unknown command {line.strip()!r}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True, help="proxy port on 127.0.0.1")
    ap.add_argument("--pid", type=int, required=True, help="proxy PID (descendants included)")
    ap.add_argument("-n", "--conns", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=500, help="connections opened at once")
    ap.add_argument("--wait", type=float, default=3.0, help="seconds idle before measuring")
    ap.add_argument("--path", default="/")
    ap.add_argument("--host-header", default="bench")
    ap.add_argument("--tls", action="store_true",
                    help="TLS 1.3 connections (no verification, no resumption)")
    ap.add_argument("--sni", default="bench.test", help="server name sent with --tls")
    ap.add_argument("--hold", action="store_true",
                    help="keep the connections open after measuring; take commands on stdin")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.conns + 50 > hard:
        sys.exit(f"idle_conns: {args.conns} connections need more than the open-file limit {hard}")

    pids = tree_pids(args.pid)
    request = (f"GET {args.path} HTTP/1.1\r\nHost: {args.host_header}\r\n"
               "User-Agent: meridian-bench-idle\r\n\r\n").encode()
    time.sleep(0.5)
    before = rss_kb(pids)

    ctx = tls_context() if args.tls else None
    sel = selectors.DefaultSelector()
    clients, failed, non200 = [], 0, 0
    t0 = time.monotonic()
    while len(clients) + failed < args.conns:
        n = min(args.batch, args.conns - len(clients) - failed)
        done, f, bad = open_batch(sel, "127.0.0.1", args.port, request, n, timeout=15,
                                  ctx=ctx, sni=args.sni)
        clients += done
        failed += f
        non200 += bad
    opened_in = time.monotonic() - t0

    time.sleep(args.wait)
    idle = rss_kb(pids)
    gone = closed_by_proxy(sel, clients, ctx is not None)
    closed_early = len(gone)
    if args.hold:
        print(f"HOLD open={len(clients) - closed_early} failed={failed} non200={non200} "
              f"closed_early={closed_early} rss_before_kb={before} rss_idle_kb={idle}",
              flush=True)
        gone = set(gone)
        hold(sel, [c for c in clients if c not in gone], ctx is not None)
    for c in clients:
        c.sock.close()  # a no-op on those closed by a command
    time.sleep(1.0)
    after_close = rss_kb(tree_pids(args.pid))

    ok = len(clients) - closed_early
    per_conn = (idle - before) * 1024 / ok if ok > 0 else float("nan")
    kind = "TLS 1.3 " if args.tls else ""
    print(f"pids {pids}: {len(clients)} {kind}connections opened in {opened_in:.1f} s "
          f"({failed} failed, {non200} non-200, {closed_early} closed by the proxy while idle)")
    print(f"VmRSS {before} kB before, {idle} kB with {ok} idle connections, "
          f"{after_close} kB after closing them: {per_conn:.0f} bytes per idle connection")
    print(f"RESULT conns={args.conns} ok={ok} failed={failed} non200={non200} "
          f"closed_early={closed_early} rss_before_kb={before} rss_idle_kb={idle} "
          f"rss_after_close_kb={after_close} bytes_per_conn={per_conn:.0f}")
    return 0 if failed == 0 and closed_early == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
