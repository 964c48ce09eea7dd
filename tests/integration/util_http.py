# SPDX-License-Identifier: MIT
"""Raw HTTP/1.x client helpers for the black-box tests: a socket with a read buffer that
parses responses exactly (status line, headers, Content-Length, chunked framing, bodies
delimited by close), so tests can see what went over the wire, not what a library made of it.
"""
import os
import socket
import time

from conftest import SLOW

PATTERN = b"abcdefghijklmnopqrstuvwxyz"


def pattern(n):
    """The body origin sends for /bytes/N, /chunked/N and /noclen/N: 'a'..'z' repeated."""
    reps = n // len(PATTERN) + 1
    return (PATTERN * reps)[:n]


class Response:
    def __init__(self, version, status, reason, headers, body=b"", raw_body=b"",
                 chunked=False, trailers=None):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) as received
        self.body = body  # decoded body
        self.raw_body = raw_body  # the bytes after the head, framing included
        self.chunked = chunked
        self.trailers = trailers or []

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def __repr__(self):
        return (f"<Response {self.version} {self.status} {self.reason!r} "
                f"headers={self.headers!r} body[{len(self.body)}]={self.body[:80]!r}>")


class ConnectionClosed(Exception):
    """The peer closed before a complete response arrived; .data holds what did."""

    def __init__(self, msg, data=b""):
        super().__init__(msg)
        self.data = data


class RawConn:
    """One client TCP connection with a read buffer."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout * SLOW)
        self.buf = bytearray()
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def settimeout(self, t):
        self.sock.settimeout(t * SLOW if t is not None else None)

    def _fill(self):
        """Read more into the buffer; False on EOF."""
        if self.eof:
            return False
        b = self.sock.recv(1 << 20)
        if not b:
            self.eof = True
            return False
        self.buf += b
        return True

    def _read_line(self, limit=65536):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            if len(self.buf) > limit:
                raise AssertionError(f"line too long: {bytes(self.buf[:200])!r}")
            if not self._fill():
                raise ConnectionClosed("closed while reading a line", bytes(self.buf))

    def _read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionClosed(f"closed after {len(self.buf)} of {n} bytes",
                                       bytes(self.buf))
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_all_until_close(self):
        while self._fill():
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def wait_closed(self, timeout):
        """True when the peer closes (EOF or reset) within timeout seconds; data received
        meanwhile is kept in the buffer."""
        old = self.sock.gettimeout()
        deadline = time.monotonic() + timeout * SLOW
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    if not self._fill():
                        return True
                except socket.timeout:
                    return False
                except ConnectionResetError:
                    self.eof = True
                    return True
            return False
        finally:
            self.sock.settimeout(old)

    def read_head(self):
        """Read one response head; returns (version, status, reason, headers)."""
        line = self._read_line()
        parts = line.split(b" ", 2)
        assert len(parts) >= 2 and parts[0].startswith(b"HTTP/1."), f"bad status line {line!r}"
        version = parts[0].decode()
        status = int(parts[1])
        reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
        headers = []
        while True:
            h = self._read_line()
            if h == b"":
                break
            k, sep, v = h.partition(b":")
            assert sep, f"bad header line {h!r}"
            headers.append((k.decode("latin-1"), v.strip().decode("latin-1")))
        return version, status, reason, headers

    def read_response(self, method="GET", skip_interim=True):
        """Read one complete response (interim 1xx responses are skipped unless
        skip_interim is False, in which case a 1xx is returned as is)."""
        while True:
            version, status, reason, headers = self.read_head()
            resp = Response(version, status, reason, headers)
            if 100 <= status < 200 and status != 101:
                if skip_interim:
                    continue
                return resp
            break
        if method == "HEAD" or status in (101, 204, 304):
            return resp
        te = resp.header("transfer-encoding")
        cl = resp.header("content-length")
        if te is not None:
            assert te.lower() == "chunked", f"unexpected transfer-encoding {te!r}"
            resp.chunked = True
            raw = bytearray()
            body = bytearray()
            while True:
                line = self._read_line()
                raw += line + b"\r\n"
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    break
                data = self._read_exact(size + 2)
                assert data[-2:] == b"\r\n", "chunk data not followed by CRLF"
                raw += data
                body += data[:-2]
            while True:
                t = self._read_line()
                raw += t + b"\r\n"
                if t == b"":
                    break
                k, _, v = t.partition(b":")
                resp.trailers.append((k.decode("latin-1"), v.strip().decode("latin-1")))
            resp.body = bytes(body)
            resp.raw_body = bytes(raw)
        elif cl is not None:
            resp.body = self._read_exact(int(cl))
            resp.raw_body = resp.body
        else:
            resp.body = self.read_all_until_close()
            resp.raw_body = resp.body
        return resp


def request(port, method="GET", path="/", headers=None, body=b"", version="HTTP/1.1",
            host=None, timeout=5.0):
    """One request on a fresh connection; returns the Response (connection closed after)."""
    with RawConn(port, timeout=timeout) as c:
        c.send(build(method, path, headers, body, version, host or f"127.0.0.1:{port}"))
        return c.read_response(method)


def build(method="GET", path="/", headers=None, body=b"", version="HTTP/1.1", host=None,
          content_length=True):
    """A request as bytes. headers: list of (name, value). Content-Length is added for a
    non-empty body unless headers already frame it or content_length is False."""
    if isinstance(body, str):
        body = body.encode()
    lines = [f"{method} {path} {version}"]
    hdrs = list(headers or [])
    names = {k.lower() for k, _ in hdrs}
    if host is not None and "host" not in names:
        lines.append(f"Host: {host}")
    for k, v in hdrs:
        lines.append(f"{k}: {v}")
    if (content_length and body and "content-length" not in names
            and "transfer-encoding" not in names):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def established_to(port):
    """Local ports of ESTABLISHED IPv4/IPv6 TCP sockets in this network namespace whose
    remote port is `port` (the client sides of connections to a listener on `port`)."""
    out = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local, remote, state = fields[1], fields[2], fields[3]
                    if state != "01":  # TCP_ESTABLISHED
                        continue
                    if int(remote.rsplit(":", 1)[1], 16) == port:
                        out.add(int(local.rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            continue
    return out


class ScriptedBackend:
    """A loopback backend whose every accepted connection is handed to handler(sock) on a
    thread, for answers origin cannot give (a cut head, hop-by-hop response headers...).
    Stopped by stop(); connections still open then are closed."""

    def __init__(self, handler):
        import threading
        self.handler = handler
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.accepted = 0
        self.conns = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def _run(self):
        import threading
        self.lsock.settimeout(0.05)
        while not self._stop:
            try:
                s, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            self.conns.append(s)
            s.settimeout(5.0 * SLOW)
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        try:
            self.handler(s)
        except OSError:
            pass

    def stop(self):
        self._stop = True
        self._thread.join(timeout=2)
        self.lsock.close()
        for s in self.conns:
            try:
                s.close()
            except OSError:
                pass


def read_request_head(s):
    """Read from socket s up to and including the blank line ending a request head."""
    data = b""
    while b"\r\n\r\n" not in data:
        b = s.recv(65536)
        if not b:
            break
        data += b
    return data


def process_cpu_seconds(pid):
    """User + system CPU time a process has used so far, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fill_socket(sock, seconds):
    """Send junk for `seconds` (non-blocking), so that the buffers on the way fill up."""
    sock.setblocking(False)
    chunk = b"x" * 65536
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            sock.send(chunk)
        except BlockingIOError:
            time.sleep(0.05)  # pacing the writes, not waiting for readiness
    sock.setblocking(True)


WS_UPGRADE = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
              ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]
WS_101 = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
