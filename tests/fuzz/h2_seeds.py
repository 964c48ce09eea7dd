#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpus of fuzz_h2_session: what an HTTP/2 client sends after the
connection preface (the driver sends the preface itself), one file per conversation, made
with the h2 library (Debian's python3-h2) so that the frames and HPACK blocks are those a
real client sends; a few are then bent by hand into the shapes attackers use.

    /usr/bin/python3 tests/fuzz/h2_seeds.py tests/fuzz/corpus/h2_session
"""
import os
import struct
import sys

import h2.config
import h2.connection
import h2.settings

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def client(settings=None):
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    if settings:
        conn.update_settings(settings)
    return conn


def out(conn):
    data = conn.data_to_send()
    return data[len(PREFACE):] if data.startswith(PREFACE) else data


def req(path, method="GET", extra=()):
    return [(":method", method), (":scheme", "http"), (":authority", "fuzz.test"),
            (":path", path), *extra]


def frame(ftype, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def seeds():
    # One GET of each kind of answer the stand-in origin gives.
    for name, path, method in [("get", "/", "GET"), ("get_large", "/200000", "GET"),
                               ("get_chunked", "/chunked", "GET"),
                               ("get_close", "/close", "GET"), ("get_204", "/204", "GET"),
                               ("get_304", "/304", "GET"), ("head", "/5000", "HEAD")]:
        c = client()
        c.send_headers(1, req(path, method), end_stream=True)
        yield name, out(c)

    # A large answer read with window updates, as a client that keeps up.
    c = client()
    c.send_headers(1, req("/300000"), end_stream=True)
    b = out(c)
    c.increment_flow_control_window(1 << 20)
    c.increment_flow_control_window(1 << 20, stream_id=1)
    yield "get_large_windows", b + out(c)

    # A zero initial window: the answer waits for WINDOW_UPDATEs.
    c = client({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    c.send_headers(1, req("/70000"), end_stream=True)
    yield "get_window_zero", out(c)

    # A POST with a body in two DATA frames, with and without content-length.
    for name, extra in [("post_cl", [("content-length", "10")]), ("post", [])]:
        c = client()
        c.send_headers(1, req("/", "POST", extra))
        c.send_data(1, b"hello")
        c.send_data(1, b"world", end_stream=True)
        yield name, out(c)

    # A body with trailers; an expect: 100-continue.
    c = client()
    c.send_headers(1, req("/", "POST", [("te", "trailers")]))
    c.send_data(1, b"abc")
    c.send_headers(1, [("x-sum", "1")], end_stream=True)
    yield "post_trailers", out(c)
    c = client()
    c.send_headers(1, req("/", "PUT", [("expect", "100-continue"), ("content-length", "3")]))
    c.send_data(1, b"abc", end_stream=True)
    yield "put_expect", out(c)

    # More streams than max_concurrent_streams (8), on one connection.
    c = client()
    for i in range(12):
        c.send_headers(1 + 2 * i, req(f"/{i * 100}"), end_stream=True)
    yield "many_streams", out(c)

    # A stream reset right after it opened; rapid reset in a burst.
    c = client()
    c.send_headers(1, req("/100000"), end_stream=True)
    c.reset_stream(1)
    yield "reset", out(c)
    c = client()
    for i in range(60):
        c.send_headers(1 + 2 * i, req("/"), end_stream=True)
        c.reset_stream(1 + 2 * i)
    yield "rapid_reset", out(c)

    # Many and large headers (limits: 20 headers, a 2k header list).
    c = client()
    c.send_headers(1, req("/", extra=[(f"x-h{i}", "v" * 10) for i in range(30)]),
                   end_stream=True)
    yield "many_headers", out(c)
    c = client()
    c.send_headers(1, req("/", extra=[("x-big", "v" * 3000)]), end_stream=True)
    yield "big_header", out(c)

    # A header block in HEADERS + CONTINUATION.
    c = client()
    c.send_headers(1, req("/", extra=[("x-a", "1"), ("x-b", "2")]), end_stream=True)
    b = out(c)
    settings_len = 9 + int.from_bytes(b[:3], "big")
    head = b[settings_len:]
    block = head[9:9 + int.from_bytes(head[:3], "big")]
    half = len(block) // 2
    yield "continuation", b[:settings_len] + frame(1, 0x1, 1, block[:half]) + \
        frame(9, 0x4, 1, block[half:])

    # Control frames: PING, SETTINGS changes mid-connection, GOAWAY, PRIORITY.
    c = client()
    c.send_headers(1, req("/"), end_stream=True)
    c.ping(b"12345678")
    c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20,
                       h2.settings.SettingCodes.MAX_FRAME_SIZE: 32768})
    c.prioritize(1, weight=200)
    c.close_connection()
    yield "control", out(c)

    # Requests our checks refuse: a missing :path, an upper-case name, a connection header,
    # pseudo-headers after regular ones, CONNECT.
    for name, headers in [
            ("no_path", [(":method", "GET"), (":scheme", "http"), (":authority", "a")]),
            ("upper", req("/", extra=[("X-Up", "1")])),
            ("conn_header", req("/", extra=[("connection", "close")])),
            ("pseudo_late", [(":method", "GET"), ("x", "1"), (":path", "/"), (":scheme", "http")]),
            ("connect", [(":method", "CONNECT"), (":authority", "fuzz.test:443")])]:
        c = client()
        c.config.validate_outbound_headers = False
        c.config.normalize_outbound_headers = False
        c.send_headers(1, headers, end_stream=name != "connect")
        yield name, out(c)

    # A HEADERS frame on a lower stream id than one already opened (RFC 9113 5.1.1), and
    # an INITIAL_WINDOW_SIZE that overflows an open stream's window (6.9.2).
    c = client()
    c.send_headers(5, req("/"), end_stream=True)
    b = out(c)
    c2 = client()
    c2.send_headers(3, req("/"), end_stream=True)
    b2 = out(c2)
    yield "lower_stream_id", b + b2[9 + int.from_bytes(b2[:3], "big"):]
    c = client()
    c.send_headers(1, req("/"), end_stream=False)
    b = out(c)
    yield "window_overflow", b + frame(8, 0, 1, struct.pack(">I", 0x7fffffff)) + \
        frame(4, 0, 0, struct.pack(">HI", 4, 0x7fffffff))


def main():
    os.makedirs(sys.argv[1], exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(sys.argv[1], name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
