# SPDX-License-Identifier: MIT
"""HTTP/2 abuse, raw frames on the h2c listener: rapid reset (CVE-2023-44487), CONTINUATION
flood, HPACK bomb, SETTINGS and PING floods, a zero-window stall, provoked server resets
("MadeYouReset", CVE-2025-8671) and too many concurrent streams. Each attack must end the
attacker's connection (or the one stream) while a normal client on another connection is served.
"""
import time

import pytest


from conftest import CHECK_MEMORY, SLOW, wait_for
from util_http import established_to
from util_tls import (CANCEL, CONTINUATION, DATA, END_HEADERS, END_STREAM, ENHANCE_YOUR_CALM,
                      HEADERS, NO_ERROR, PING, PROTOCOL_ERROR, REFUSED_STREAM, S_INITIAL_WINDOW_SIZE, SETTINGS,
                      S_ENABLE_PUSH, RawH2, curl_status, frame, hpack_int, make_cert, ping_frame,
                      request_headers, rst_frame, settings_frame, start_tls_meridian, vm_rss_kb,
                      window_update_frame)

RESET_LIMIT = 50


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("certs"), "a", ["a.test"])


@pytest.fixture
def target(origins, meridian, cert):
    """Factory: target(http2=..., timeouts=...) starts an origin and a Meridian whose h2c
    listener is m.plain_port; returns (origin, m)."""
    def make(http2=f"{{ max_resets_per_10s: {RESET_LIMIT} }}", timeouts=None):
        o = origins("eu-a")
        m = start_tls_meridian(meridian, [o.address], [(cert, True)], http2=http2,
                               timeouts=timeouts)
        return o, m
    return make


def normal_client_served(m):
    """A well-behaved h2c client on its own connection gets its answer."""
    status, version = curl_status(f"http://127.0.0.1:{m.plain_port}/",
                                  "--http2-prior-knowledge", timeout=5)
    return status == 200 and version == "2"


def attacker(m, ack=True):
    c = RawH2(m.plain_port)
    assert c.until(lambda c: c.of_type(SETTINGS), 5), "no SETTINGS from meridian"
    if ack:
        c.send(settings_frame(ack=True))
    return c


def send_batched(c, frames, batch=65536):
    """Send frame bytes in writes of about `batch` bytes; stops when the server closes."""
    buf = bytearray()
    sent = 0
    for f in frames:
        buf += f
        sent += 1
        if len(buf) >= batch:
            if not c.send(bytes(buf)):
                return sent
            buf.clear()
    if buf:
        c.send(bytes(buf))
    return sent


def ended_badly(c, timeout=3.0):
    """The server closed the connection or sent GOAWAY with an error within timeout s."""
    c.until(lambda c: c.closed or (c.goaway() is not None and c.goaway().error_code != NO_ERROR),
            timeout)
    return c.closed or c.send_failed or (c.goaway() is not None
                                         and c.goaway().error_code != NO_ERROR)


def alive(c, timeout=2.0):
    """The connection still answers a PING."""
    c.send(ping_frame(b"alive?!!"))
    return c.until(lambda c: any(f.type == PING and f.flags & 1 and f.payload == b"alive?!!"
                                 for f in c.frames), timeout)


def hits(o, prefix):
    return [r for r in o.records() if r.get("target", "").startswith(prefix)]


def connections(m):
    return sum(w["connections"] for w in m.status()["workers"])


# --- HPACK by hand (so the decoder state is exactly what we mean) ---------------------------


def literal(name_index, value, incremental=False):
    """A literal field with an indexed name (static table), without indexing unless
    incremental, no Huffman."""
    head = hpack_int(name_index, 6, 0x40) if incremental else hpack_int(name_index, 4, 0)
    return head + hpack_int(len(value), 7) + value


def new_name_literal(name, value):
    """A literal with a new name, with incremental indexing (enters the dynamic table)."""
    return b"\x40" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


# --- rapid reset -----------------------------------------------------------------------------


def test_rapid_reset(target):
    o, m = target(http2="{ max_resets_per_10s: 100 }")
    n = 1000
    with attacker(m) as c:
        pairs = (c.headers_frame(1 + 2 * i, request_headers(f"/delay/2000?rr={i}"))
                 + rst_frame(1 + 2 * i, CANCEL) for i in range(n))
        t0 = time.monotonic()
        send_batched(c, pairs)
        assert normal_client_served(m), "a normal client was not served during the attack"
        assert ended_badly(c), "no GOAWAY and no close after 1000 HEADERS+RST_STREAM pairs"
        took = time.monotonic() - t0
        g = c.goaway()
        if g is not None:
            assert g.error_code == ENHANCE_YOUR_CALM, g
    assert took < 3 * SLOW
    # Cancelled requests did not pile up at the origin, nor as upstream connections.
    got = len(hits(o, "/delay/2000"))
    assert got <= 100, f"origin received {got} of {n} cancelled requests"
    wait_for(lambda: connections(m) == 0, timeout=3, what="attacker connection gone")
    wait_for(lambda: len(established_to(o.port)) <= 2, timeout=3,
             what="upstream connections of cancelled requests closed")
    assert normal_client_served(m)


# --- CONTINUATION flood ----------------------------------------------------------------------


def test_continuation_flood(target):
    o, m = target()
    rss0 = vm_rss_kb(m.proc.pid)
    # Each CONTINUATION carries a 1000-byte literal (not indexed): 10 MB of header block.
    crumb = b"\x00" + hpack_int(5, 7) + b"x-pad" + hpack_int(1000, 7) + b"p" * 1000
    with attacker(m) as c:
        first = c.headers_frame(1, request_headers("/cont"), end_headers=False)
        t0 = time.monotonic()
        frames = [first] + [frame(CONTINUATION, 0, 1, crumb)] * 10000
        sent = send_batched(c, frames)
        assert normal_client_served(m), "a normal client was not served during the attack"
        assert ended_badly(c, timeout=2), \
            f"connection still open after {sent} CONTINUATION frames"
        took = time.monotonic() - t0
        peak = vm_rss_kb(m.proc.pid)
    assert took < 2 * SLOW, f"took {took:.1f}s to drop a CONTINUATION flood"
    if CHECK_MEMORY:
        assert peak - rss0 < 4096, f"meridian RSS grew {peak - rss0} KiB during the flood"
    assert not hits(o, "/cont")
    assert normal_client_served(m)


# --- HPACK bomb ------------------------------------------------------------------------------


def bomb_block(first, refs=200):
    """GET /bomb with x-bomb (4000 bytes) repeated refs+1 times: ~800 KB once decoded from
    a block of ~4.3 KB. The first block adds x-bomb to the dynamic table (index 62); later
    blocks only refer to it, so the decoder state stays the same whatever the server does."""
    block = b"\x82\x86" + literal(4, b"/bomb") + literal(1, b"a.test")
    if first:
        block += new_name_literal(b"x-bomb", b"b" * 4000)
    return block + b"\xbe" * refs  # indexed field 62


def test_hpack_bomb(target):
    o, m = target(http2=f"{{ max_header_list_size: 64k, max_resets_per_10s: {RESET_LIMIT} }}")
    rss0 = vm_rss_kb(m.proc.pid)
    with attacker(m) as c:
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, bomb_block(True)))
        assert c.until(lambda c: 1 in c.resets() or c.closed or c.goaway(), 3)
        assert 1 in c.resets(), f"the stream was not reset: {c.frames}"
        assert not c.goaway() and alive(c), "one bomb should cost the stream, not the connection"
        # Again and again: the connection goes.
        for i in range(1, 200):
            if not c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1 + 2 * i, bomb_block(False))):
                break
            if i % 10 == 0:
                c.until(lambda c: c.goaway() or c.closed, 0.05)
                if c.goaway() or c.closed:
                    break
        assert normal_client_served(m), "a normal client was not served during the attack"
        assert c.until(lambda c: c.goaway() or c.closed, 3), \
            f"no GOAWAY after {i + 1} HPACK bombs ({len(c.resets())} resets)"
        peak = vm_rss_kb(m.proc.pid)
    assert not hits(o, "/bomb"), "a request over max_header_list_size reached the origin"
    if CHECK_MEMORY:
        assert peak - rss0 < 8192, f"meridian RSS grew {peak - rss0} KiB"
    assert normal_client_served(m)


# --- SETTINGS and PING floods ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["settings", "ping"])
def test_control_frame_flood(target, kind):
    o, m = target()
    one = settings_frame([(S_ENABLE_PUSH, 0)]) if kind == "settings" else ping_frame()
    with attacker(m) as c:
        t0 = time.monotonic()
        sent = send_batched(c, [one] * 20000)
        assert normal_client_served(m), "a normal client was not served during the attack"
        assert ended_badly(c), f"connection still open after {sent} {kind} frames"
        g = c.goaway()
        if g is not None:
            assert g.error_code == ENHANCE_YOUR_CALM, g
        acks = sum(1 for f in c.frames if f.type in (SETTINGS, PING) and f.flags & 1)
    assert time.monotonic() - t0 < 3 * SLOW
    assert acks < 20000, f"all {acks} {kind} frames were acknowledged"
    assert normal_client_served(m)


# --- zero-window stall -----------------------------------------------------------------------


def test_zero_window_stall_is_closed_after_client_idle(target):
    o, m = target(timeouts="{ client_idle: 2s, upstream_response: 10s, shutdown: 5s }")
    c = RawH2(m.plain_port, settings=[(S_INITIAL_WINDOW_SIZE, 0)])
    with c:
        assert c.until(lambda c: c.of_type(SETTINGS), 5)
        c.send(settings_frame(ack=True))
        c.send(c.headers_frame(1, request_headers("/bytes/100000")))
        t0 = time.monotonic()
        assert normal_client_served(m), "a normal client was not served during the stall"
        closed = c.wait_closed(6)
        took = time.monotonic() - t0
        assert closed, "a connection that never opens its window was kept for 6 s"
        assert c.status_of(1) == 200
        assert c.data_len(1) == 0, "DATA sent into a zero window"
    assert 1.5 <= took <= 4.5 * SLOW, f"closed after {took:.1f}s (client_idle is 2s)"
    assert normal_client_served(m)


# --- provoked server resets ("MadeYouReset") -------------------------------------------------

# Frames that make the server reset (or give up on) a stream it has already accepted, after
# HEADERS for stream sid. (name, builder)
PROVOKERS = {
    # Content-Length 1 then 2 bytes of DATA: malformed (RFC 9113 8.1.1), stream error.
    "content-length-mismatch": lambda c, sid: (
        c.headers_frame(sid, request_headers("/echo/myr", "POST", extra=[("content-length",
                                                                           "1")]),
                        end_stream=False) + frame(DATA, END_STREAM, sid, b"xx")),
    # The stream window pushed past 2^31-1: FLOW_CONTROL_ERROR on the stream (6.9.1).
    "window-overflow": lambda c, sid: (
        c.headers_frame(sid, request_headers("/delay/3000?myr")) +
        window_update_frame(sid, 0x7FFFFFFF)),
    # A WINDOW_UPDATE of 0 on an open stream: a stream error (6.9).
    "window-update-0": lambda c, sid: (
        c.headers_frame(sid, request_headers("/delay/3000?myr")) + window_update_frame(sid, 0)),
    # DATA on a stream the client has half-closed: STREAM_CLOSED, a stream error (5.1).
    "data-on-half-closed": lambda c, sid: (
        c.headers_frame(sid, request_headers("/delay/3000?myr")) +
        frame(DATA, 0, sid, b"late")),
}


@pytest.mark.parametrize("trigger", list(PROVOKERS))
def test_provoked_resets_end_the_connection(target, trigger):
    """Each provoked reset counts against max_resets_per_10s; past it, GOAWAY
    ENHANCE_YOUR_CALM. (A server that treats the frame as a connection error and sends
    GOAWAY at the first one also stops the attack, and passes.)"""
    o, m = target()
    with attacker(m) as c:
        n = 0
        for i in range(300):
            if not c.send(PROVOKERS[trigger](c, 1 + 2 * i)):
                break
            n += 1
            if n % 5 == 0:
                c.until(lambda c: c.goaway() or c.closed, 0.02)
                if c.goaway() or c.closed:
                    break
        assert normal_client_served(m), "a normal client was not served during the attack"
        assert c.until(lambda c: c.goaway() or c.closed, 3), \
            f"no GOAWAY after {n} provoked resets ({len(c.resets())} RST_STREAM received)"
        g = c.goaway()
        resets = len(c.resets())
    assert g is not None, "closed without GOAWAY"
    if resets > 1:
        # It let streams be reset one by one: then the budget must have stopped it.
        assert g.error_code == ENHANCE_YOUR_CALM, g
        assert resets <= RESET_LIMIT + 5, f"{resets} resets before GOAWAY (limit {RESET_LIMIT})"
    assert len(hits(o, "/delay/3000?myr")) <= RESET_LIMIT + 5
    assert normal_client_served(m)


@pytest.mark.parametrize("who", ["client-cancels", "server-resets"])
def test_reset_budget_counts_each_stream_once(target, who):
    """max_resets_per_10s counts streams reset "by either side": a stream reset once must
    cost one, whoever reset it. RESET_LIMIT - 10 resets leave the connection up."""
    o, m = target()
    n = RESET_LIMIT - 10
    with attacker(m) as c:
        for i in range(n):
            sid = 1 + 2 * i
            if who == "client-cancels":
                c.send(c.headers_frame(sid, request_headers("/delay/3000?budget"))
                       + rst_frame(sid, CANCEL))
            else:
                c.send(PROVOKERS["window-overflow"](c, sid))
            c.until(lambda c: False, 0.005)
        ok = alive(c)
        g = c.goaway()
        resets = len(c.resets())
    assert ok and g is None, (f"GOAWAY {g} after {n} streams reset once each "
                              f"({resets} RST_STREAM from the server; limit {RESET_LIMIT})")


# --- too many concurrent streams -------------------------------------------------------------


@pytest.mark.parametrize("acked", [False, True], ids=["before-settings-ack", "after-settings-ack"])
def test_streams_over_the_limit_are_refused(target, acked):
    """max_concurrent_streams 10, 15 streams opened at once. Before the client acknowledged
    the server's SETTINGS (a client that sends its requests with the preface): the last 5
    get RST_STREAM REFUSED_STREAM (safe to retry) and the first 10 complete. After (a client
    that ignores a limit it knows): the connection is closed with PROTOCOL_ERROR."""
    o, m = target(http2="{ max_concurrent_streams: 10 }")
    with attacker(m, ack=acked) as c:
        sids = [1 + 2 * i for i in range(15)]
        c.send(b"".join(c.headers_frame(s, request_headers(f"/delay/300?mcs={s}"))
                        for s in sids))
        c.until(lambda c: all(c.stream_ended(s) or s in c.resets() for s in sids) or c.closed,
                5)
        refused = {s: code for s, code in c.resets().items()}
        done = [s for s in sids if c.stream_ended(s) and c.status_of(s) == 200]
        g = c.goaway()
    if acked:
        # A client that exceeds a limit it has acknowledged breaks the protocol on purpose.
        # nghttp2 (1.52) answers that with a connection error, GOAWAY PROTOCOL_ERROR, and we
        # keep it: RFC 9113 5.1.2 asks for a stream error, but nothing honest is lost, and
        # the attacker's connection (with everything it had open) is gone.
        assert g is not None and g.error_code == PROTOCOL_ERROR, (g, refused, done)
    else:
        assert g is None, f"GOAWAY {g} {g.payload[8:]!r}; completed {done}, reset {refused}"
        assert refused == {s: REFUSED_STREAM for s in sids[10:]}, refused
        assert done == sids[:10], done
    assert normal_client_served(m)
