# SPDX-License-Identifier: MIT
"""Helpers for the TLS and HTTP/2 black-box tests (test_tls.py, test_h2.py, test_h2_attacks.py):
certificates made on the fly with `openssl req`, a config with an HTTPS and an h2c listener,
wrappers around `openssl s_client` and `curl`, an HTTP/2 client on python3-h2, and a raw frame
client that sends what no well-behaved library would (floods, resets, bombs).

Everything stays on loopback; curl always gets --resolve so no name is ever looked up in DNS.
"""
import os
import re
import socket
import ssl
import struct
import subprocess
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack

from conftest import SLOW, port_accepts, wait_for

# --- certificates ----------------------------------------------------------------------------


class Cert:
    """A self-signed certificate and its key, as files."""

    def __init__(self, cert, key, names):
        self.cert = cert
        self.key = key
        self.names = names

    def info(self):
        return cert_info(self.cert)


def make_cert(directory, stem, names, kind="ec", cn=None, days=3):
    """A self-signed certificate for `names` (DNS SANs; the first is also the CN) in
    directory/stem.pem with its key in directory/stem.key. kind: "ec" (P-256) or "rsa"
    (2048). Overwrites existing files: that is how a test renews a certificate."""
    cert = os.path.join(str(directory), stem + ".pem")
    key = os.path.join(str(directory), stem + ".key")
    newkey = (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if kind == "ec"
              else ["-newkey", "rsa:2048"])
    subprocess.run(["openssl", "req", "-x509", *newkey, "-nodes", "-keyout", key + ".tmp",
                    "-out", cert + ".tmp", "-days", str(days), "-subj",
                    f"/CN={cn or names[0]}", "-addext",
                    "subjectAltName=" + ",".join(f"DNS:{n}" for n in names)],
                   check=True, capture_output=True, timeout=30)
    os.replace(key + ".tmp", key)
    os.replace(cert + ".tmp", cert)
    return Cert(cert, key, names)


def cert_info(pem):
    """Subject CN, DNS SANs, SHA-256 fingerprint, serial and key type of a PEM certificate
    (a path, or the PEM text itself)."""
    if os.path.exists(pem):
        with open(pem) as f:
            pem = f.read()
    r = subprocess.run(["openssl", "x509", "-noout", "-subject", "-serial", "-fingerprint",
                        "-sha256", "-ext", "subjectAltName", "-text"],
                       input=pem, capture_output=True, text=True, timeout=10, check=True)
    out = r.stdout
    cn = re.search(r"^subject=.*?CN\s*=\s*([^,\n/]+)", out, re.M)
    fp = re.search(r"Fingerprint=([0-9A-F:]+)", out)
    serial = re.search(r"^serial=([0-9A-F]+)", out, re.M)
    sans = re.findall(r"DNS:([^,\s]+)", out)
    key_type = "ec" if "id-ecPublicKey" in out else ("rsa" if "rsaEncryption" in out else "?")
    return {"cn": cn.group(1).strip() if cn else None, "sans": sorted(set(sans)),
            "fingerprint": fp.group(1) if fp else None,
            "serial": serial.group(1) if serial else None, "key_type": key_type}


def write_ticket_keys(path, records=1):
    """A session ticket key file: `records` records of 80 random bytes."""
    with open(path, "wb") as f:
        f.write(os.urandom(80 * records))
    return str(path)


# --- configuration ---------------------------------------------------------------------------


def tls_config(https_port, plain_port, admin_port, backends, certs, *, protocols=None,
               alpn=None, tickets=None, session_cache=None, http2=None, timeouts=None,
               access_log=None, workers=1, log_level="info", h2c=True):
    """A config with an HTTPS listener (https_port) and a plain listener (plain_port) that
    takes h2c, one region `eu` with `backends`.
    certs: list of (Cert, is_default). protocols/alpn: lists. tickets: a flow mapping text
    such as "{ enabled: true, key_file: /x }". http2/timeouts: flow mapping texts."""
    lines = [f"workers: {workers}", f"log_level: {log_level}", "listeners:",
             "  - name: https", f'    address: "127.0.0.1:{https_port}"', "    tls:",
             "      certificates:"]
    for c, is_default in certs:
        d = ", default: true" if is_default else ""
        lines.append(f'        - {{ cert: "{c.cert}", key: "{c.key}"{d} }}')
    if protocols is not None:
        lines.append("      protocols: [" + ", ".join(protocols) + "]")
    if alpn is not None:
        lines.append("      alpn: [" + ", ".join(alpn) + "]")
    if tickets is not None:
        lines.append(f"      session_tickets: {tickets}")
    if session_cache is not None:
        lines.append(f"      session_cache: {session_cache}")
    lines += ["  - name: plain", f'    address: "127.0.0.1:{plain_port}"',
              f"    h2c: {'true' if h2c else 'false'}",
              f'admin: {{ address: "127.0.0.1:{admin_port}" }}']
    if http2:
        lines.append(f"http2: {http2}")
    lines.append(f"timeouts: {timeouts or '{ upstream_response: 10s, shutdown: 5s }'}")
    if access_log:
        lines.append(f'access_log: {{ path: "{access_log}" }}')
    lines += ["regions:", "  - name: eu", "    location: { lat: 50.0, lon: 8.0 }",
              "    backends: [" + ", ".join(f'"{b}"' for b in backends) + "]"]
    return "\n".join(lines) + "\n"


def start_tls_meridian(meridian, backends, certs, **kw):
    """Start a Meridian (from the conftest `meridian` factory) with tls_config(). m.port is
    the HTTPS port, m.plain_port the h2c one; m.config_for(**changes) gives the config
    text again with some keyword arguments changed (for reloads)."""
    from conftest import free_port
    m = meridian(start=False, config_text="# replaced below\n")
    m.plain_port = free_port()
    base = dict(backends=backends, certs=certs, **kw)

    def config_for(**changes):
        args = dict(base, **changes)
        return tls_config(m.port, m.plain_port, m.admin_port, **args)

    m.config_for = config_for
    m.write_config(config_for())
    m.start()
    wait_for(lambda: port_accepts(m.plain_port), what="meridian plain listener")
    return m


def vm_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# --- openssl s_client ------------------------------------------------------------------------


class Handshake:
    """What `openssl s_client` saw."""

    def __init__(self, rc, out):
        self.rc = rc
        self.out = out
        m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
        self.cert = cert_info(m.group(0)) if m else None
        m = re.search(r"^(New|Reused), (TLSv[\d.]+|\(NONE\))", out, re.M)
        self.ok = bool(m) and m.group(2) != "(NONE)" and self.cert is not None
        self.reused = bool(m) and m.group(1) == "Reused"
        self.protocol = m.group(2) if m else None
        m = re.search(r"^ALPN protocol: (\S+)", out, re.M)
        self.alpn = m.group(1) if m else None

    def __repr__(self):
        return f"<Handshake rc={self.rc} ok={self.ok} out={self.out[-1500:]!r}>"


def s_client(port, *args, servername=None, sess_out=None, timeout=10):
    """One handshake with `openssl s_client`; returns a Handshake. With sess_out, stdin
    stays open until the session file has been written (so a TLS 1.3 ticket sent after
    the handshake has arrived), polled, not slept for."""
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}"]
    if servername is not None:
        cmd += ["-servername", servername]
    else:
        cmd += ["-noservername"]
    if sess_out:
        cmd += ["-sess_out", sess_out]
    cmd += list(args)
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, errors="replace")
    try:
        if sess_out:
            try:
                wait_for(lambda: os.path.exists(sess_out) and os.path.getsize(sess_out) > 0
                         or p.poll() is not None, timeout=timeout, interval=0.01,
                         what="session file")
            finally:
                p.stdin.close()
                p.stdin = None  # so that communicate() does not touch it again
        out, _ = p.communicate(input=None if sess_out else "", timeout=timeout * SLOW)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    return Handshake(p.returncode, out)


# --- curl ------------------------------------------------------------------------------------


def curl(url, *args, resolve=None, timeout=30, binary=False):
    """Run curl on `url` with `args`. resolve: (name, port) pinned to 127.0.0.1 (never DNS).
    Returns the CompletedProcess (stdout is bytes if binary)."""
    cmd = ["curl", "-sS", "--max-time", str(int(timeout * SLOW))]
    if resolve:
        cmd += ["--resolve", f"{resolve[0]}:{resolve[1]}:127.0.0.1"]
    cmd += list(args) + [url]
    return subprocess.run(cmd, capture_output=True, text=not binary,
                          timeout=timeout * SLOW + 5)


def curl_status(url, *args, **kw):
    """The status code curl got (as int), or None."""
    r = curl(url, "-o", "/dev/null", "-w", "%{http_code} %{http_version}", *args, **kw)
    m = re.match(r"(\d{3}) (\S+)", r.stdout or "")
    return (int(m.group(1)), m.group(2)) if m else (None, r.stderr)


# --- HTTP/2 with python3-h2 ------------------------------------------------------------------


class H2Response:
    def __init__(self):
        self.headers = []  # list of (name, value) bytes, as received
        self.interim = []  # header lists of 1xx responses, in order
        self.trailers = None  # the trailer fields, when a trailer HEADERS frame came
        self.body = bytearray()
        self.ended = False
        self.reset = None  # error code of an RST_STREAM

    @property
    def status(self):
        for k, v in self.headers:
            if k == b":status":
                return int(v)
        return None

    def header(self, name):
        name = name.encode() if isinstance(name, str) else name
        for k, v in self.headers:
            if k == name:
                return v.decode("latin-1")
        return None


class H2Client:
    """A well-behaved HTTP/2 client on one connection (h2c prior knowledge, or TLS with
    ALPN h2). Events are pumped by the caller through pump()/until()."""

    def __init__(self, port, tls=False, server_name="a.test", timeout=10.0, settings=None,
                 auto_window=True):
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            raw = ctx.wrap_socket(raw, server_hostname=server_name)
            assert raw.selected_alpn_protocol() == "h2", raw.selected_alpn_protocol()
        self.sock = raw
        self.auto_window = auto_window
        cfg = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                        validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.responses = {}
        self.goaway = None  # (error_code, last_stream_id)
        self.closed = False
        self.remote_settings = {}
        self.events = []
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, path, method="GET", headers=(), body=None, end_stream=True,
                authority="a.test", scheme="http"):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", scheme), (":authority", authority),
                (":path", path)] + list(headers)
        self.conn.send_headers(sid, hdrs, end_stream=end_stream and body is None)
        self.responses[sid] = H2Response()
        if body is not None:
            self.flush()
            self.send_body(sid, body, end_stream=end_stream)
        self.flush()
        return sid

    def send_body(self, sid, body, end_stream=True, timeout=30.0):
        """Send body on stream sid as flow control allows, pumping events while blocked."""
        view = memoryview(body)
        deadline = time.monotonic() + timeout * SLOW
        while view:
            window = min(self.conn.local_flow_control_window(sid),
                         self.conn.max_outbound_frame_size)
            if window <= 0:
                assert time.monotonic() < deadline, "upload stalled: no WINDOW_UPDATE"
                self.pump()
                continue
            n = min(window, len(view))
            self.conn.send_data(sid, bytes(view[:n]))
            view = view[n:]
            self.flush()
        if end_stream:
            self.conn.end_stream(sid)
            self.flush()

    def pump(self, timeout=None):
        """Read once and process the events; False when the connection has closed."""
        if self.closed:
            return False
        if timeout is not None:
            self.sock.settimeout(timeout * SLOW)
        try:
            data = self.sock.recv(1 << 20)
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        if not data:
            self.closed = True
            return False
        for ev in self.conn.receive_data(data):
            self.events.append(ev)
            if isinstance(ev, h2.events.ResponseReceived):
                self.responses.setdefault(ev.stream_id, H2Response()).headers = ev.headers
            elif isinstance(ev, h2.events.InformationalResponseReceived):
                self.responses.setdefault(ev.stream_id, H2Response()).interim.append(ev.headers)
            elif isinstance(ev, h2.events.DataReceived):
                self.responses.setdefault(ev.stream_id, H2Response()).body += ev.data
                if self.auto_window and ev.flow_controlled_length:
                    self.conn.acknowledge_received_data(ev.flow_controlled_length,
                                                        ev.stream_id)
            elif isinstance(ev, h2.events.TrailersReceived):
                self.responses.setdefault(ev.stream_id, H2Response()).trailers = ev.headers
            elif isinstance(ev, h2.events.StreamEnded):
                self.responses.setdefault(ev.stream_id, H2Response()).ended = True
            elif isinstance(ev, h2.events.StreamReset):
                self.responses.setdefault(ev.stream_id, H2Response()).reset = ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.goaway = (ev.error_code, ev.last_stream_id)
            elif isinstance(ev, h2.events.RemoteSettingsChanged):
                for k, v in ev.changed_settings.items():
                    self.remote_settings[k] = v.new_value
        try:
            self.flush()
        except OSError:
            pass
        return True

    def until(self, pred, timeout=15.0, what="h2 condition"):
        """Pump until pred() is true; fails after timeout seconds or if the connection
        closes first (pred is checked once more after a close)."""
        deadline = time.monotonic() + timeout * SLOW
        while not pred():
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {what}"
            try:
                alive = self.pump(timeout=left)
            except socket.timeout:
                continue
            if not alive:
                assert pred(), f"connection closed before {what}"
                return
        return True

    def done(self, *sids):
        return all(self.responses[s].ended or self.responses[s].reset is not None
                   for s in sids)

    def get(self, path, timeout=15.0, **kw):
        sid = self.request(path, **kw)
        self.until(lambda: self.done(sid), timeout=timeout, what=f"response to {path}")
        return self.responses[sid]


# --- raw HTTP/2 frames -----------------------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20

NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, \
    STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, \
    CONNECT_ERROR, ENHANCE_YOUR_CALM = range(12)

S_HEADER_TABLE_SIZE, S_ENABLE_PUSH, S_MAX_CONCURRENT_STREAMS, S_INITIAL_WINDOW_SIZE, \
    S_MAX_FRAME_SIZE, S_MAX_HEADER_LIST_SIZE = range(1, 7)


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags,
                                                             sid & 0x7FFFFFFF) + payload


def settings_frame(pairs=(), ack=False):
    return frame(SETTINGS, ACK if ack else 0, 0,
                 b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def rst_frame(sid, code=CANCEL):
    return frame(RST_STREAM, 0, sid, struct.pack(">I", code))


def window_update_frame(sid, increment):
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", increment))


def ping_frame(data=b"12345678", ack=False):
    return frame(PING, ACK if ack else 0, 0, data)


def request_headers(path, method="GET", authority="a.test", extra=()):
    return [(":method", method), (":scheme", "http"), (":authority", authority),
            (":path", path)] + list(extra)


def hpack_int(value, prefix, first=0):
    """An HPACK integer (RFC 7541 5.1) with a `prefix`-bit prefix, OR-ed into `first`."""
    top = (1 << prefix) - 1
    if value < top:
        return bytes([first | value])
    out = [first | top]
    value -= top
    while value >= 128:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class Frame:
    def __init__(self, ftype, flags, sid, payload):
        self.type, self.flags, self.sid, self.payload = ftype, flags, sid, payload

    @property
    def error_code(self):
        if self.type == RST_STREAM:
            return struct.unpack(">I", self.payload[:4])[0]
        if self.type == GOAWAY:
            return struct.unpack(">I", self.payload[4:8])[0]
        return None

    def __repr__(self):
        return f"<Frame type={self.type} flags={self.flags:#x} sid={self.sid} " \
               f"len={len(self.payload)} code={self.error_code}>"


class RawH2:
    """An HTTP/2 client that writes frames as given and reads frames as they come, with an
    HPACK encoder/decoder for header blocks. It never answers anything on its own except
    when asked (ack_settings)."""

    def __init__(self, port, timeout=10.0, settings=(), tls=False, server_name="a.test"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            self.sock = ctx.wrap_socket(self.sock, server_hostname=server_name)
            assert self.sock.selected_alpn_protocol() == "h2"
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.dec.max_header_list_size = 1 << 30
        self.buf = bytearray()
        self.frames = []  # every frame received, in order
        self.closed = False
        self.send_failed = False
        self.send(PREFACE + settings_frame(settings))

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
        """Send bytes; returns False (and remembers it) if the peer has closed on us."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.send_failed = True
            return False

    def block(self, headers):
        return self.enc.encode(headers)

    def headers_frame(self, sid, headers, end_stream=True, end_headers=True):
        flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
        return frame(HEADERS, flags, sid, self.block(headers))

    def _parse(self):
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + length:
                return
            ftype, flags = self.buf[3], self.buf[4]
            sid = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            payload = bytes(self.buf[9:9 + length])
            del self.buf[:9 + length]
            self.frames.append(Frame(ftype, flags, sid, payload))

    def read(self, timeout):
        """Read what arrives within timeout seconds (at least one recv); False on close."""
        if self.closed:
            return False
        self.sock.settimeout(max(0.001, timeout))
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            return True
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        if not data:
            self.closed = True
            return False
        self.buf += data
        self._parse()
        return True

    def until(self, pred, timeout=10.0):
        """Read until pred(self) is true or the connection closes or timeout seconds pass;
        returns pred(self) at the end."""
        deadline = time.monotonic() + timeout * SLOW
        while not pred(self):
            left = deadline - time.monotonic()
            if left <= 0 or not self.read(left):
                break
        return pred(self)

    def wait_closed(self, timeout=10.0):
        """True when the server closes the connection within timeout seconds."""
        return self.until(lambda c: c.closed, timeout)

    def goaway(self):
        for f in self.frames:
            if f.type == GOAWAY:
                return f
        return None

    def of_type(self, ftype, sid=None):
        return [f for f in self.frames if f.type == ftype and (sid is None or f.sid == sid)]

    def resets(self):
        """{stream id: error code} of the RST_STREAM frames received."""
        return {f.sid: f.error_code for f in self.frames if f.type == RST_STREAM}

    def decode_headers(self, sid):
        """The first header block received on stream sid, decoded (HEADERS + any
        CONTINUATION). Decodes every block up to it so the HPACK state stays right."""
        blocks = []
        cur = None
        for f in self.frames:
            if f.type == HEADERS:
                p = f.payload
                if f.flags & PADDED:
                    pad = p[0]
                    p = p[1:len(p) - pad]
                if f.flags & PRIORITY_FLAG:
                    p = p[5:]
                cur = [f.sid, bytearray(p)]
                if f.flags & END_HEADERS:
                    blocks.append(cur)
                    cur = None
            elif f.type == CONTINUATION and cur is not None:
                cur[1] += f.payload
                if f.flags & END_HEADERS:
                    blocks.append(cur)
                    cur = None
        dec = hpack.Decoder()
        dec.max_header_list_size = 1 << 30
        for bsid, data in blocks:
            h = dec.decode(bytes(data), raw=True)
            if bsid == sid:
                return h
        return None

    def status_of(self, sid):
        h = self.decode_headers(sid)
        if not h:
            return None
        return int(dict(h)[b":status"])

    def stream_ended(self, sid):
        return any(f.sid == sid and f.type in (DATA, HEADERS) and f.flags & END_STREAM
                   for f in self.frames)

    def body(self, sid):
        out = bytearray()
        for f in self.frames:
            if f.type == DATA and f.sid == sid:
                p = f.payload
                out += p[1:len(p) - p[0]] if f.flags & PADDED else p
        return bytes(out)

    def data_len(self, sid):
        return sum(len(f.payload) - ((f.payload[0] + 1) if f.flags & PADDED else 0)
                   for f in self.frames if f.type == DATA and f.sid == sid)
