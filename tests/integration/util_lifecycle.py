# SPDX-License-Identifier: MIT
"""Helpers shared by test_rejections.py and test_lifecycle.py (not fixtures: see conftest.py)."""
import socket
import threading

from conftest import SLOW


def exchange_and_close(port, data, timeout=3.0, host="127.0.0.1"):
    """Send raw bytes and read until the server closes the connection.

    Returns (received bytes, closed) where `closed` is True when the server ended the
    connection (EOF, or a reset after the whole request was sent) within `timeout` seconds
    of silence, and False when it kept the connection open."""
    s = socket.create_connection((host, port), timeout=timeout * SLOW)
    chunks = []
    closed = False
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            # The server may refuse early and close while we still send; what it
            # answered before that is still readable (or lost, which the caller sees).
            pass
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not b:
                closed = True
                break
            chunks.append(b)
        return b"".join(chunks), closed
    finally:
        s.close()


def http_get(port, path, host="127.0.0.1", timeout=10.0, headers=()):
    """One GET on a fresh connection (Connection: close). Returns (status, head, body)."""
    req = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
    for k, v in headers:
        req += f"{k}: {v}\r\n"
    req += "\r\n"
    raw, _ = exchange_and_close(port, req.encode("latin-1"), timeout=timeout, host=host)
    head, _, body = raw.partition(b"\r\n\r\n")
    status = None
    if raw.startswith(b"HTTP/1."):
        status = int(raw.split(b" ", 2)[1])
    return status, head, body


class Background:
    """Runs fn() in a thread; .result() joins (bounded) and returns its value or re-raises."""

    def __init__(self, fn):
        self._fn = fn
        self._value = None
        self._exc = None
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        try:
            self._value = self._fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            self._exc = e

    def done(self):
        return not self._t.is_alive()

    def result(self, timeout=15.0):
        self._t.join(timeout * SLOW)
        assert not self._t.is_alive(), "background request did not finish in time"
        if self._exc is not None:
            raise self._exc
        return self._value
