#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""dns_server: a tiny authoritative DNS server (UDP) for the black-box tests of backends named
by DNS. Python 3 standard library only; it shares no code with Meridian or libevent on purpose.

    dns_server.py --zone FILE [--listen ADDR:PORT] [--stats FILE]

ADDR is an IPv4 literal or a bracketed IPv6 literal (default 127.0.0.1:0; port 0 asks the
kernel for a free port). Once bound it prints one line `ready ADDR:PORT` (the real port) on
stdout and flushes. SIGTERM and SIGINT exit 0. UDP only: libevent 2.1's evdns never uses TCP
(a truncated answer is reported to its caller as DNS_ERR_TRUNCATED), so neither do we.

Zone file: JSON, names without the trailing dot, matched case-insensitively. It is read again
before every answer and used as soon as its content changes (no mtime granularity to beat);
rewrite it with os.replace so that no query sees half a file. A version that does not parse
keeps the previous zone and is reported on stderr once:

    {"api-eu.test": {"A": ["127.0.0.1", "127.0.0.2"], "AAAA": ["::1"], "ttl": 2},
     "down.test":   {"rcode": "SERVFAIL"},
     "slow.test":   {"A": ["127.0.0.1"], "delay_ms": 3000},
     "mute.test":   {"drop": true}}

What it answers (every answer echoes the question byte for byte, 0x20 case included, and sets
QR and AA; RD is copied, RA is never set):
  name not in the zone         NXDOMAIN, SOA in authority (TTL and minimum 5)
  "rcode": NAME or number      that rcode (NOERROR FORMERR SERVFAIL NXDOMAIN NOTIMP REFUSED),
                               no records
  records of the asked type    NOERROR, one RR per address in the given order, TTL "ttl"
                               (default 60)
  no record of the asked type  NOERROR, empty answer (NODATA), SOA in authority whose TTL and
                               minimum are the entry's "ttl" (evdns reports min of the two)
  "delay_ms": MS               the answer is sent MS ms late (other queries are served meanwhile)
  "drop": true                 no answer at all (the client times out)
An answer longer than 512 bytes (or the client's EDNS0 payload size; evdns sends none) is sent
with TC set and no records: 30 A records fit in 512 bytes for a short name, 35 do not. Packets
that are not a standard query with exactly one question are ignored, as are names whose entry
does not make sense (a bad address or rcode: reported on stderr, the client times out).
What evdns 2.1 makes of it: NXDOMAIN -> DNS_ERR_NOTEXIST, NODATA -> DNS_ERR_NODATA, REFUSED ->
DNS_ERR_REFUSED, TC -> DNS_ERR_TRUNCATED, and SERVFAIL is re-sent at once until "attempts:" sends
are used up, then reported as DNS_ERR_TIMEOUT (never DNS_ERR_SERVERFAILED).

Stats (--stats FILE): every query counts, whatever it gets, under "name/TYPE" (the name
lower-cased, TYPE A, AAAA, SOA... or TYPEn), and after each one the file is replaced atomically
with {"queries": {"api-eu.test/A": 3, ...}}. It is written once at start with no queries.
Note that evdns probes a nameserver it marked down (after timeouts or SERVFAILs) with
"google.com/A"; such probes are counted like any other query.
"""
import argparse, heapq, ipaddress, json, os, select, signal, socket, struct, sys, time

RCODES = {"NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3, "NOTIMP": 4, "REFUSED": 5}
TYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA",
         33: "SRV", 41: "OPT", 65: "HTTPS", 255: "ANY"}
NEG_TTL = 5


class Zone:
    def __init__(self, path):
        self.path, self.raw, self.names = path, None, {}
        self.refresh(strict=True)

    def refresh(self, strict=False):
        # Read on every query and compared by content: a tiny file, and no mtime granularity
        # or inode reuse can hide a rewrite that way.
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
            if raw == self.raw:
                return
            self.raw = raw
            data = json.loads(raw)
            if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
                raise ValueError("the zone must be an object of objects")
            self.names = {k.lower().rstrip("."): v for k, v in data.items()}
        except (OSError, ValueError) as e:
            if strict:
                sys.exit(f"dns_server: zone {self.path}: {e}")
            print(f"dns_server: zone {self.path} kept: {e}", file=sys.stderr, flush=True)


def parse_query(pkt):
    """-> (id, flags, qname_text, qname_wire, qtype, qclass, max_udp) or None if not a query."""
    if len(pkt) < 12:
        return None
    qid, flags, qd, an, ns, ar = struct.unpack("!6H", pkt[:12])
    if flags & 0x8000 or (flags >> 11) & 0xF != 0 or qd != 1:
        return None
    i, labels = 12, []
    while True:
        n = pkt[i]  # IndexError on a short packet: caught by the caller
        i += 1
        if n == 0:
            break
        if n > 63:  # no compression pointers in a question we accept
            return None
        labels.append(pkt[i:i + n].decode("latin-1"))
        i += n
        if i > 255 + 12:
            return None
    if i + 4 > len(pkt):
        return None
    qwire = pkt[12:i]
    qtype, qclass = struct.unpack("!HH", pkt[i:i + 4])
    i += 4
    max_udp = 512
    if ar == 1 and an == 0 and ns == 0 and pkt[i:i + 3] == b"\x00\x00\x29" and i + 5 <= len(pkt):
        max_udp = max(512, struct.unpack("!H", pkt[i + 3:i + 5])[0])  # EDNS0 OPT
    return qid, flags, ".".join(labels), qwire, qtype, qclass, max_udp


def encode_name(text):
    return b"".join(bytes([len(l)]) + l.encode("ascii") for l in text.split(".") if l) + b"\0"


def rr(rtype, ttl, rdata):  # owner: a pointer to the question name at offset 12
    return struct.pack("!HHHIH", 0xC00C, rtype, 1, max(0, min(int(ttl), 0x7FFFFFFF)),
                       len(rdata)) + rdata


def soa(ttl):
    rdata = encode_name("ns.invalid") + encode_name("hostmaster.invalid") + \
        struct.pack("!5I", 1, 3600, 600, 86400, ttl)
    return rr(6, ttl, rdata)


def answer(zone, q):
    """-> (reply bytes or None to drop, delay in seconds)."""
    qid, qflags, name, qwire, qtype, qclass, max_udp = q
    entry = zone.names.get(name.lower().rstrip("."))
    rcode, ans, auth, delay = 0, [], [], 0.0
    if entry is None:
        rcode, auth = 3, [soa(NEG_TTL)]
    else:
        if entry.get("drop"):
            return None, 0.0
        delay = float(entry.get("delay_ms", 0)) / 1000.0
        ttl = int(entry.get("ttl", 60))
        rc = entry.get("rcode", 0)
        rcode = RCODES[rc.upper()] if isinstance(rc, str) else int(rc) & 0xF
        if rcode == 0 and qclass in (1, 255):
            for rtype, fam, key in ((1, socket.AF_INET, "A"), (28, socket.AF_INET6, "AAAA")):
                if qtype in (rtype, 255):
                    ans += [rr(rtype, ttl, socket.inet_pton(fam, a)) for a in entry.get(key, [])]
            if not ans:
                auth = [soa(ttl)]
    flags = 0x8000 | 0x0400 | (qflags & 0x0100) | rcode
    tail = b"".join(ans + auth)
    question = qwire + struct.pack("!HH", qtype, qclass)
    reply = struct.pack("!6H", qid, flags, 1, len(ans), len(auth), 0) + question + tail
    if len(reply) > max_udp:
        reply = struct.pack("!6H", qid, flags | 0x0200, 1, 0, 0, 0) + question
    return reply, delay


def write_stats(path, counts):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"queries": counts}, f, sort_keys=True)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description="tiny authoritative DNS server for tests")
    ap.add_argument("--zone", required=True)
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--stats")
    args = ap.parse_args()
    host, _, port = args.listen.rpartition(":")
    host = host[1:-1] if host.startswith("[") else host
    try:
        fam = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        port = int(port)
    except ValueError:
        sys.exit(f"dns_server: bad --listen {args.listen!r}")
    zone = Zone(args.zone)
    sock = socket.socket(fam, socket.SOCK_DGRAM)
    sock.bind((host, port))
    sock.setblocking(False)
    counts = {}
    if args.stats:
        write_stats(args.stats, counts)

    def stop(signum, frame):
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    bound = sock.getsockname()
    print(f"ready {'[%s]' % bound[0] if fam == socket.AF_INET6 else bound[0]}:{bound[1]}",
          flush=True)

    pending, seq = [], 0  # heap of (due, seq, reply, addr) for delayed answers
    while True:
        timeout = max(0.0, pending[0][0] - time.monotonic()) if pending else None
        ready, _, _ = select.select([sock], [], [], timeout)
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _, _, reply, addr = heapq.heappop(pending)
            try:
                sock.sendto(reply, addr)
            except OSError:
                pass
        if not ready:
            continue
        for _ in range(64):  # drain what has arrived, a bounded amount at a time
            try:
                pkt, addr = sock.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # e.g. ICMP errors reported on the socket
                continue
            try:
                q = parse_query(pkt)
            except (IndexError, struct.error, UnicodeError):
                q = None
            if q is None:
                continue
            zone.refresh()
            try:
                reply, delay = answer(zone, q)
            except (ValueError, TypeError, KeyError, OSError, UnicodeError) as e:
                print(f"dns_server: bad zone entry for {q[2]!r}: {e}", file=sys.stderr,
                      flush=True)
                reply, delay = None, 0.0
            key = f"{q[2].lower().rstrip('.')}/{TYPES.get(q[4], 'TYPE%d' % q[4])}"
            counts[key] = counts.get(key, 0) + 1
            if args.stats:
                write_stats(args.stats, counts)
            if reply is None:
                continue
            if delay > 0:
                seq += 1
                heapq.heappush(pending, (now + delay, seq, reply, addr))
            else:
                try:
                    sock.sendto(reply, addr)
                except OSError:
                    pass


if __name__ == "__main__":
    main()
