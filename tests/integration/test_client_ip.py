# SPDX-License-Identifier: MIT
"""Who the client is, black-box: forwarding headers (X-Forwarded-For, Forwarded,
CloudFront-Viewer-Address) are believed only from trusted proxies and in the configured
order, malformed ones fall back to the peer, CloudFront's viewer location is used only when
asked, IPv6 clients and listeners work, a listener can carry its own rules, and the PROXY
protocol (v1 and v2) sets the peer, or closes a connection that does not start with it.

The region that answers tells where Meridian placed the client (see test_geo.py)."""
import socket
import struct
import time

import pytest

from conftest import SLOW, access_log_by_client, free_port, port_accepts, wait_for
from test_geo import DEFAULT, TRUST_LOOPBACK, World, headers_of
from util_http import RawConn, build, process_cpu_seconds
from util_lifecycle import exchange_and_close

GB, US_WEST, US_EAST, CN = "81.2.69.142", "216.160.83.56", "149.101.100.5", "175.16.199.7"


@pytest.fixture
def world(origins, meridian):
    def make(**kw):
        return World(origins, meridian, **kw)
    return make


def _has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback (::1)")


# ---- X-Forwarded-For --------------------------------------------------------------------------


def test_xff_is_walked_from_the_right_skipping_trusted_hops(world):
    w = world(client_ip={"trusted_proxies": ["127.0.0.1/32", "10.0.0.0/8", "::1"]})
    # The rightmost untrusted address is the client; what is left of it is the client's
    # word and is not believed.
    assert w.via_xff(f"{GB}, {US_WEST}") == "us-west"
    assert w.via_xff(f"{GB}, {US_WEST}, 10.1.2.3, 127.0.0.1") == "us-west"
    assert w.via_xff(f"{US_WEST},{GB},10.255.0.1") == "eu"
    assert w.via_xff(f"  {CN}  ") == "ap"
    # Several header lines are one list, in order.
    assert w.region_for([("X-Forwarded-For", US_WEST), ("X-Forwarded-For", f"{CN}, 10.0.0.1")]) \
        == "ap"
    # Every hop trusted: the leftmost is as far as we can see.
    assert w.via_xff("10.1.1.1, 127.0.0.1") == DEFAULT


def test_forwarding_headers_from_an_untrusted_peer_are_ignored(world):
    # 127.0.0.1 is not in the list: the peer itself is the client (no location: default).
    w = world(client_ip={"trusted_proxies": ["10.0.0.0/8", "192.0.2.1"],
                         "headers": ["x-forwarded-for", "forwarded",
                                     "cloudfront-viewer-address"],
                         "use_cdn_location": True})
    assert w.via_xff(US_WEST) == DEFAULT
    assert w.region_for([("Forwarded", f"for={US_WEST}")]) == DEFAULT
    assert w.region_for([("CloudFront-Viewer-Address", f"{US_WEST}:4711")]) == DEFAULT
    assert w.region_for([("CloudFront-Viewer-Country", "US"),
                         ("CloudFront-Viewer-Latitude", "37.3"),
                         ("CloudFront-Viewer-Longitude", "-121.9")]) == DEFAULT
    # It is still passed on, with the peer appended, as before geo routing.
    h = headers_of(w.last_record(DEFAULT))
    assert "x-client-country" not in h, h
    w.via_xff("1.2.3.4")
    assert headers_of(w.last_record(DEFAULT))["x-forwarded-for"] == ["1.2.3.4, 127.0.0.1"]


def test_no_client_ip_section_trusts_nobody(world):
    w = world()
    assert w.via_xff(US_WEST) == DEFAULT
    assert w.via_xff(CN) == DEFAULT


def test_malformed_xff_falls_back_to_the_peer_and_is_never_partly_believed(world):
    w = world(client_ip=TRUST_LOOPBACK)
    for value in ("not-an-ip", f"{US_WEST}, garbage", "999.1.1.1", ",", "", f"{US_WEST};x",
                  "1.2.3.4.5", f"{US_WEST}:8080x", "[2001:218::1]x", f"{US_WEST} {CN}",
                  f"{US_WEST}, 300.1.2.3", f"{US_WEST}, {CN}, x", f"{US_WEST}, , {CN}x",
                  "2001:218::1::2"):
        assert w.region_for([("X-Forwarded-For", value)]) == DEFAULT, value
    # And the server is unharmed: a good one right after works.
    assert w.via_xff(CN) == "ap"


# ---- Forwarded and CloudFront-Viewer-Address --------------------------------------------------


def test_forwarded_for(world):
    w = world(client_ip=dict(TRUST_LOOPBACK, headers=["forwarded"]))
    assert w.region_for([("Forwarded", f"for={US_WEST};proto=https;by=10.0.0.1")]) == "us-west"
    assert w.region_for([("Forwarded", f"For=\"{CN}:4711\"")]) == "ap"
    assert w.region_for([("Forwarded", 'for="[2001:218::1]:443";proto=https')]) == "ap"
    assert w.region_for([("Forwarded", f"for={GB}, for={US_WEST}")]) == "us-west"
    assert w.region_for([("Forwarded", f"for={CN}, for=127.0.0.1")]) == "ap"
    # Not a for= we can read: the peer.
    assert w.region_for([("Forwarded", "for=unknown")]) == DEFAULT
    assert w.region_for([("Forwarded", "for=_hidden")]) == DEFAULT
    assert w.region_for([("Forwarded", f"for={US_WEST}x")]) == DEFAULT
    # X-Forwarded-For is not a configured source here.
    assert w.via_xff(US_WEST) == DEFAULT


def test_cloudfront_viewer_address(world):
    w = world(client_ip=dict(TRUST_LOOPBACK, headers=["cloudfront-viewer-address"]))
    assert w.region_for([("CloudFront-Viewer-Address", f"{US_WEST}:46532")]) == "us-west"
    assert w.region_for([("CloudFront-Viewer-Address", "2001:218::1:46532")]) == "ap"
    assert w.region_for([("CloudFront-Viewer-Address", "garbage:1")]) == DEFAULT
    assert w.via_xff(US_WEST) == DEFAULT


def test_sources_are_believed_in_the_configured_order(world):
    both = [("X-Forwarded-For", US_WEST), ("CloudFront-Viewer-Address", f"{CN}:1234"),
            ("Forwarded", f"for={US_EAST}")]
    w = world(client_ip=dict(TRUST_LOOPBACK,
                             headers=["cloudfront-viewer-address", "x-forwarded-for"]))
    assert w.region_for(both) == "ap"
    # The first source is malformed: the next one is used, not the peer.
    assert w.region_for([("X-Forwarded-For", US_WEST),
                         ("CloudFront-Viewer-Address", "nonsense")]) == "us-west"
    # Only XFF present.
    assert w.via_xff(GB) == "eu"

    w2 = world(client_ip=dict(TRUST_LOOPBACK,
                              headers=["x-forwarded-for", "cloudfront-viewer-address"]))
    assert w2.region_for(both) == "us-west"
    w3 = world(client_ip=dict(TRUST_LOOPBACK, headers=["forwarded", "x-forwarded-for"]))
    assert w3.region_for(both) == "us-east"


# ---- CloudFront's viewer location -------------------------------------------------------------


def test_cdn_location_is_used_only_when_asked_and_trusted(world):
    cdn = [("CloudFront-Viewer-Country", "BR"), ("CloudFront-Viewer-Latitude", "-22.9"),
           ("CloudFront-Viewer-Longitude", "-43.2")]
    on = world(client_ip=dict(TRUST_LOOPBACK, use_cdn_location=True))
    assert on.region_for(cdn) == "sa"
    h = headers_of(on.last_record("sa"))
    assert h.get("x-client-country") == ["BR"], h
    # Half a location is none; a country alone is a country.
    assert on.region_for([("CloudFront-Viewer-Latitude", "-22.9")]) == DEFAULT
    assert on.region_for([("CloudFront-Viewer-Latitude", "-91"),
                          ("CloudFront-Viewer-Longitude", "-43.2")]) == DEFAULT
    assert on.region_for([("CloudFront-Viewer-Latitude", "abc"),
                          ("CloudFront-Viewer-Longitude", "-43.2")]) == DEFAULT
    assert on.region_for([("CloudFront-Viewer-Country", "BR")]) == DEFAULT
    h = headers_of(on.last_record(DEFAULT))
    assert h.get("x-client-country") == ["BR"], h

    off = world(client_ip=TRUST_LOOPBACK)
    assert off.region_for(cdn) == DEFAULT
    assert "x-client-country" not in headers_of(off.last_record(DEFAULT))


def test_cdn_country_matches_a_countries_list(world):
    w = world(client_ip=dict(TRUST_LOOPBACK, use_cdn_location=True),
              region_extra={"us-east": {"countries": ["BR", "AR"]}})
    assert w.region_for([("CloudFront-Viewer-Country", "BR")]) == "us-east"
    assert w.region_for([("CloudFront-Viewer-Country", "ar")]) == "us-east"
    assert w.region_for([("CloudFront-Viewer-Country", "CL")]) == DEFAULT


# ---- IPv6 -------------------------------------------------------------------------------------


def _dual_listeners(own=None):
    v6 = free_port()

    def make(m):
        l6 = {"name": "v6", "address": f"[::1]:{v6}"}
        if own is not None:
            l6["client_ip"] = own
        return [{"name": "v4", "address": f"127.0.0.1:{m.port}"}, l6]
    make.port = v6
    return make


@needs_ipv6
def test_ipv6_clients_over_an_ipv6_listener(world):
    lst = _dual_listeners()
    w = world(client_ip=TRUST_LOOPBACK, listeners=lst)
    wait_for(lambda: port_accepts(lst.port, host="::1"), what="the [::1] listener")
    v6 = {"port": lst.port, "host": "::1"}
    assert w.region_for(**v6) == DEFAULT                            # ::1 is nowhere
    assert w.via_xff("2001:218::1", **v6) == "ap"
    assert w.via_xff("2001:480:10::1", **v6) == "us-west"
    assert w.via_xff("::ffff:" + US_WEST, **v6) == "us-west"          # IPv4-mapped
    assert w.via_xff(f"2a02:d180::1, {US_WEST}, ::1", **v6) == "us-west"
    assert w.via_xff("2001:218::zz", **v6) == DEFAULT
    h = headers_of(w.last_record(DEFAULT))
    assert h["x-forwarded-for"] == ["2001:218::zz, ::1"], h
    # IPv6 clients through the IPv4 listener too.
    assert w.via_xff("2a02:d180::1") == "eu"
    assert w.via_xff("2001:218::1") == "ap"


@needs_ipv6
def test_a_listener_can_have_its_own_trusted_proxies(world):
    lst = _dual_listeners(own={"trusted_proxies": ["::1/128"],
                               "headers": ["x-forwarded-for", "forwarded"]})
    w = world(client_ip={"trusted_proxies": ["192.0.2.0/24"]}, listeners=lst)
    wait_for(lambda: port_accepts(lst.port, host="::1"), what="the [::1] listener")
    assert w.via_xff(US_WEST) == DEFAULT                        # 127.0.0.1: not trusted
    assert w.via_xff(US_WEST, port=lst.port, host="::1") == "us-west"
    assert w.region_for([("Forwarded", f"for={CN}")], port=lst.port, host="::1") == "ap"


# ---- PROXY protocol ---------------------------------------------------------------------------

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v1(src, dst="127.0.0.1", sport=40000, dport=80):
    fam = "TCP6" if ":" in src else "TCP4"
    return f"PROXY {fam} {src} {dst} {sport} {dport}\r\n".encode()


def proxy_v2(src=None, dst=None, sport=40000, dport=80, command=1, tlvs=b""):
    """A v2 header: command 1 PROXY (with addresses), 0 LOCAL (none: AF_UNSPEC)."""
    if src is None:
        return V2_SIG + bytes([0x20 | command, 0x00]) + struct.pack("!H", len(tlvs)) + tlvs
    if ":" in src:
        fam, af = 0x21, socket.AF_INET6
        dst = dst or "::1"
    else:
        fam, af = 0x11, socket.AF_INET
        dst = dst or "127.0.0.1"
    body = (socket.inet_pton(af, src) + socket.inet_pton(af, dst) + struct.pack("!HH", sport, dport)
            + tlvs)
    return V2_SIG + bytes([0x20 | command, fam]) + struct.pack("!H", len(body)) + body


def tlv(kind, value):
    return bytes([kind]) + struct.pack("!H", len(value)) + value


@pytest.fixture
def pp_world(world):
    """Two listeners: `main` plain, `pp` expecting a PROXY header; 127.0.0.1 trusted."""
    pp_port = free_port()

    def listeners(m):
        return [{"name": "main", "address": f"127.0.0.1:{m.port}"},
                {"name": "pp", "address": f"127.0.0.1:{pp_port}", "proxy_protocol": True}]

    def make(**kw):
        kw.setdefault("client_ip", TRUST_LOOPBACK)
        w = world(listeners=listeners, **kw)
        w.pp_port = pp_port
        wait_for(lambda: port_accepts(pp_port), what="the PROXY listener")
        return w
    return make


def pp_region(w, header, headers=(), requests=1):
    """Send a PROXY header and `requests` GETs on one connection; the regions that answered."""
    out = []
    with RawConn(w.pp_port) as c:
        c.send(header)
        for i in range(requests):
            c.send(build("GET", f"/pp/{i}", headers=list(headers), host="geo.test"))
            r = c.read_response()
            assert r.status == 200, (r.status, r.body)
            out.append(r.body.decode().strip())
    return out if requests > 1 else out[0]


def test_proxy_v1_source_is_the_client(pp_world):
    w = pp_world()
    assert pp_region(w, proxy_v1(US_WEST)) == "us-west"
    assert pp_region(w, proxy_v1(CN, sport=1, dport=65535)) == "ap"
    assert pp_region(w, proxy_v1("2001:218::1", dst="::1")) == "ap"
    # Keep-alive: every request on the connection is that client's.
    assert pp_region(w, proxy_v1(US_EAST), requests=3) == ["us-east"] * 3
    # UNKNOWN: the real peer, which is trusted, so its XFF counts.
    assert pp_region(w, b"PROXY UNKNOWN\r\n") == DEFAULT
    assert pp_region(w, b"PROXY UNKNOWN ff ff 1 2\r\n", [("X-Forwarded-For", CN)]) == "ap"
    # The backend sees the PROXY source as the peer.
    pp_region(w, proxy_v1(US_WEST), [("X-Forwarded-For", "1.2.3.4")])
    h = headers_of(w.last_record("us-west"))
    assert h["x-forwarded-for"] == [f"1.2.3.4, {US_WEST}"], h
    assert h["x-client-country"] == ["US"], h


def test_proxy_source_is_subject_to_trusted_proxies(pp_world):
    w = pp_world(client_ip={"trusted_proxies": ["127.0.0.1", "10.0.0.0/8"]})
    # The PROXY source is not trusted: its XFF is the client's word, ignored.
    assert pp_region(w, proxy_v1(US_WEST), [("X-Forwarded-For", CN)]) == "us-west"
    # The PROXY source is a trusted hop (a proxy behind the balancer): XFF is believed.
    assert pp_region(w, proxy_v1("10.1.2.3"), [("X-Forwarded-For", CN)]) == "ap"
    assert pp_region(w, proxy_v2("10.1.2.3"), [("X-Forwarded-For", US_EAST)]) == "us-east"


def test_proxy_v2_source_is_the_client(pp_world):
    w = pp_world()
    assert pp_region(w, proxy_v2(US_EAST)) == "us-east"
    assert pp_region(w, proxy_v2("2001:480:10::1")) == "us-west"
    # TLVs (authority, a unique id) are skipped by their length.
    assert pp_region(w, proxy_v2(CN, tlvs=tlv(0x02, b"geo.test") + tlv(0x05, b"\x01" * 20))) \
        == "ap"
    assert pp_region(w, proxy_v2(GB), requests=3) == ["eu"] * 3
    # LOCAL (the balancer's own health check): the real peer, trusted, so XFF counts.
    assert pp_region(w, proxy_v2(command=0)) == DEFAULT
    assert pp_region(w, proxy_v2(command=0), [("X-Forwarded-For", US_WEST)]) == "us-west"
    # LOCAL with an address block: the block is discarded, the real peer is used.
    assert pp_region(w, proxy_v2(US_WEST, command=0)) == DEFAULT


def test_proxy_header_split_across_writes(pp_world):
    w = pp_world()
    for header in (proxy_v1(US_WEST), proxy_v2(US_WEST)):
        with RawConn(w.pp_port) as c:
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for i in range(0, len(header), 5):
                c.send(header[i:i + 5])
            c.send(build("GET", "/", host="geo.test"))
            r = c.read_response()
        assert r.status == 200 and r.body == b"us-west\n", (header, r.status, r.body)


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\nHost: geo.test\r\n\r\n",                     # no header at all
    b"PROXY TCP4 garbage\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"PROXY TCP4 1.2.3.4 127.0.0.1 99999 80\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"PROXY TCP4 2001:218::1 127.0.0.1 1 80\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"PROXY TCP4 1.2.3.4 127.0.0.1 1 80\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",  # LF only
    b"PROXY " + b"1" * 200 + b"\r\n",                                # over 107 bytes
    V2_SIG + b"\x31\x11\x00\x0c" + b"\x00" * 12,                     # version 3
    V2_SIG + b"\x21\x11\x00\x04" + b"\x00" * 4,                      # address block too short
    V2_SIG + b"\x2f\x11\x00\x0c" + b"\x00" * 12,                     # command 15
])
def test_bad_or_missing_proxy_header_closes_without_a_response(pp_world, data):
    w = pp_world()
    got, closed = exchange_and_close(w.pp_port, data, timeout=3)
    assert closed, f"connection left open after {data[:40]!r}"
    assert got == b"", got
    # The listener and the plain one are fine afterwards.
    assert pp_region(w, proxy_v1(CN)) == "ap"
    assert w.region_for() == DEFAULT


def test_plain_listener_does_not_take_a_proxy_header(pp_world):
    w = pp_world()
    got, _ = exchange_and_close(w.m.port, proxy_v1(US_WEST) + build("GET", "/", host="a"),
                                timeout=3)
    # Not a request Meridian can read: refused, and certainly not routed as that client.
    assert got.startswith(b"HTTP/1.1 4"), got[:100]


def test_proxy_header_must_arrive_within_client_header_timeout(pp_world):
    w = pp_world(timeouts={"client_header": "1s"})
    s = socket.create_connection(("127.0.0.1", w.pp_port), timeout=10 * SLOW)
    try:
        s.sendall(b"PROXY TCP4 81.2.")
        t0 = time.monotonic()
        got = b""
        while True:
            try:
                b = s.recv(4096)
            except ConnectionResetError:
                break
            if not b:
                break
            got += b
        elapsed = time.monotonic() - t0
    finally:
        s.close()
    assert got == b"", got
    assert 0.8 <= elapsed <= 1.0 + 2.0 * SLOW, elapsed


def test_access_log_names_the_resolved_client(pp_world, tmp_path):
    log = tmp_path / "pp-access.log"
    w = pp_world(meridian_kw={}, access_log=str(log))
    assert pp_region(w, proxy_v2(CN)) == "ap"
    assert w.via_xff(US_WEST) == "us-west"

    by = access_log_by_client(log, 2)
    a, b = by[CN], by[US_WEST]
    assert (a["client_ip"], a["country"], a["region"]) == (CN, "CN", "ap"), a
    assert (b["client_ip"], b["country"], b["region"]) == (US_WEST, "US", "us-west"), b


# ---- HTTP/2 -----------------------------------------------------------------------------------


def h2_get(port, headers=(), prefix=b"", path="/"):
    """One GET over h2c with prior knowledge, after `prefix` (a PROXY header); (status, body)."""
    import h2.config
    import h2.connection
    import h2.events
    s = socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW)
    try:
        s.sendall(prefix)
        conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"),
                                (":authority", "geo.test"), (":path", path)] + list(headers),
                          end_stream=True)
        s.sendall(conn.data_to_send())
        status, body = None, b""
        while True:
            data = s.recv(65536)
            if not data:
                raise AssertionError(f"closed before the response ended: {status} {body!r}")
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    status = int(dict(ev.headers)[":status"])
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    body += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    return status, body
                elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                    raise AssertionError(f"stream reset: {ev.error_code}")
            out = conn.data_to_send()
            if out:
                s.sendall(out)
    finally:
        s.close()


def test_identity_and_proxy_protocol_over_h2c(world):
    pp_port = free_port()

    def listeners(m):
        return [{"name": "main", "address": f"127.0.0.1:{m.port}", "h2c": True},
                {"name": "pp", "address": f"127.0.0.1:{pp_port}", "h2c": True,
                 "proxy_protocol": True}]
    w = world(client_ip=TRUST_LOOPBACK, listeners=listeners)
    wait_for(lambda: port_accepts(pp_port), what="the PROXY listener")
    assert h2_get(w.m.port, [("x-forwarded-for", US_WEST), ("x-client-region", "ap")]) == \
        (200, b"us-west\n")
    h = headers_of(w.last_record("us-west"))
    assert h.get("x-client-region") == ["us-west"] and h.get("x-client-country") == ["US"], h
    assert h2_get(w.m.port) == (200, b"eu\n")
    assert h2_get(pp_port, prefix=proxy_v2(CN)) == (200, b"ap\n")
    assert h2_get(pp_port, prefix=proxy_v1(US_EAST)) == (200, b"us-east\n")
    # HTTP/1.1 still works on both.
    w.pp_port = pp_port
    assert pp_region(w, proxy_v1(US_WEST)) == "us-west"
    assert w.via_xff(CN) == "ap"


# ---- PROXY protocol: partial headers and reloads ----------------------------------------------


def _accepted(m, n=1):
    """Whether Meridian's workers hold at least n client connections."""
    return sum(w["connections"] for w in m.status()["workers"]) >= n


def _cpu_busy(m, seconds=1.0):
    """The share of one CPU Meridian used over `seconds` (the measurement window)."""
    cpu0, t0 = process_cpu_seconds(m.proc.pid), time.monotonic()
    time.sleep(seconds)
    return (process_cpu_seconds(m.proc.pid) - cpu0) / (time.monotonic() - t0)


@pytest.mark.parametrize("partial", [b"PROXY TCP4 1.2.3.4 ", V2_SIG[:10]],
                         ids=["v1", "v2-signature"])
def test_partial_proxy_header_does_not_spin_the_worker(pp_world, partial):
    # A balancer that has sent part of the header and waits (or someone holding a
    # connection open): the worker waits for the rest without burning a CPU.
    w = pp_world(timeouts={"client_header": "10s"})
    s = socket.create_connection(("127.0.0.1", w.pp_port), timeout=5 * SLOW)
    try:
        s.sendall(partial)
        wait_for(lambda: _accepted(w.m), what="the PROXY connection to be accepted")
        busy = _cpu_busy(w.m)
        assert busy < 0.3, f"meridian used {busy:.0%} of a CPU on a partial PROXY header"
        # The connection is still waiting for the rest of its header: nothing was said.
        s.settimeout(0.05)
        with pytest.raises(socket.timeout):
            s.recv(1)
    finally:
        s.close()
    # The worker is fine afterwards.
    assert pp_region(w, proxy_v1(CN)) == "ap"


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_proxy_header_trickled_byte_by_byte_is_routed_without_spinning(pp_world, version):
    w = pp_world(timeouts={"client_header": "10s"})
    header = proxy_v1(US_WEST) if version == "v1" else proxy_v2(US_WEST)
    pause = 1.0 / len(header)    # the whole header over about one second
    with RawConn(w.pp_port) as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.send(header[:1])
        wait_for(lambda: _accepted(w.m), what="the PROXY connection to be accepted")
        cpu0, t0 = process_cpu_seconds(w.m.proc.pid), time.monotonic()
        # Every byte but the last few on its own, the pauses being the point of the test;
        # the rest together with the request, so that the header's end and the HTTP bytes
        # after it come in one read.
        for i in range(1, len(header) - 3):
            time.sleep(pause)
            c.send(header[i:i + 1])
        busy = (process_cpu_seconds(w.m.proc.pid) - cpu0) / (time.monotonic() - t0)
        c.send(header[len(header) - 3:] + build("GET", "/trickled", host="geo.test"))
        r = c.read_response()
        assert (r.status, r.body) == (200, b"us-west\n"), (r.status, r.body)
        # Keep-alive: the next request is the same client's.
        c.send(build("GET", "/again", host="geo.test"))
        r = c.read_response()
        assert (r.status, r.body) == (200, b"us-west\n"), (r.status, r.body)
    assert busy < 0.3, f"meridian used {busy:.0%} of a CPU while the header trickled in"
    h = headers_of(w.last_record("us-west"))
    assert h["x-forwarded-for"] == [US_WEST], h


def test_reload_dropping_a_listener_keeps_a_connection_waiting_for_its_proxy_header(world):
    pp_port, extra_port = free_port(), free_port()

    def listeners_with(extra):
        def make(m):
            out = [{"name": "main", "address": f"127.0.0.1:{m.port}"},
                   {"name": "pp", "address": f"127.0.0.1:{pp_port}", "proxy_protocol": True}]
            if extra:
                out.append({"name": "extra", "address": f"127.0.0.1:{extra_port}"})
            return out
        return make

    w = world(client_ip=TRUST_LOOPBACK, listeners=listeners_with(True),
              timeouts={"client_header": "10s"})
    wait_for(lambda: port_accepts(pp_port), what="the PROXY listener")
    wait_for(lambda: port_accepts(extra_port), what="the extra listener")
    header = proxy_v1(CN)
    with RawConn(pp_port) as c:
        c.send(header[:12])
        wait_for(lambda: _accepted(w.m), what="the PROXY connection to be accepted")
        # A reload that drops another listener: this connection's listener stays.
        w.listeners = listeners_with(False)
        w.m.reload(w.config())
        wait_for(lambda: not port_accepts(extra_port), what="the extra listener to close")
        c.send(header[12:] + build("GET", "/after-reload", host="geo.test"))
        r = c.read_response()
        assert (r.status, r.body) == (200, b"ap\n"), (r.status, r.body)
    # The listener goes on taking PROXY connections.
    w.pp_port = pp_port
    assert pp_region(w, proxy_v2(US_EAST)) == "us-east"


def test_reload_dropping_a_listener_keeps_another_listeners_client_ip(world):
    # Only the listener's own rules trust 127.0.0.1; the top-level ones trust nobody here.
    extra_port = free_port()
    own = {"trusted_proxies": ["127.0.0.1/32"], "headers": ["x-forwarded-for"]}

    def listeners_with(extra):
        def make(m):
            out = [{"name": "main", "address": f"127.0.0.1:{m.port}", "client_ip": own}]
            if extra:
                out.append({"name": "extra", "address": f"127.0.0.1:{extra_port}"})
            return out
        return make

    w = world(client_ip={"trusted_proxies": ["192.0.2.0/24"]}, listeners=listeners_with(True))
    wait_for(lambda: port_accepts(extra_port), what="the extra listener")
    assert w.via_xff(US_WEST, port=extra_port) == DEFAULT       # the top-level rules
    with RawConn(w.m.port) as c:
        c.send(build("GET", "/before", headers=[("X-Forwarded-For", US_WEST)], host="geo.test"))
        r = c.read_response()
        assert (r.status, r.body) == (200, b"us-west\n"), (r.status, r.body)
        w.listeners = listeners_with(False)
        w.m.reload(w.config())
        wait_for(lambda: not port_accepts(extra_port), what="the extra listener to close")
        # The same keep-alive connection: still its listener's rules.
        c.send(build("GET", "/after", headers=[("X-Forwarded-For", CN)], host="geo.test"))
        r = c.read_response()
        assert (r.status, r.body) == (200, b"ap\n"), (r.status, r.body)
    h = headers_of(w.last_record("ap"))
    assert h["x-client-region"] == ["ap"] and h["x-client-country"] == ["CN"], h
    # And new connections too.
    assert w.via_xff(US_EAST) == "us-east"
