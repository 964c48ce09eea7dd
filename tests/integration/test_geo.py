# SPDX-License-Identifier: MIT
"""Geo routing, black-box: clients placed by a real MaxMind database land on the nearest region
(a region listing their country first, else great-circle distance, else the default), the
backend is told the client's country and region (and spoofed copies are dropped), the admin
/route endpoint explains a decision, the access log records it, and a reload that names a
corrupt or missing database is refused while the old one keeps routing.

Every region has one origin named after it, so the body ("NAME\\n") and X-Origin say which
region answered. Clients are placed with X-Forwarded-For from the trusted 127.0.0.1."""
import json
import math
import os
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest

from conftest import (GEOIP_DIR, MERIDIAN_BIN, SAMPLE_MMDB, SLOW, TOP, access_log_by_client,
                      config_line, free_port, geo_config)
from util_http import RawConn, build

CITY_DB = os.path.join(GEOIP_DIR, "GeoIP2-City-Test.mmdb")
COUNTRY_DB = os.path.join(GEOIP_DIR, "GeoIP2-Country-Test.mmdb")
BROKEN_DBS = [os.path.join(GEOIP_DIR, n) for n in
              ("MaxMind-DB-test-broken-search-tree-24.mmdb",
               "MaxMind-DB-test-broken-pointers-24.mmdb")]

pytestmark = pytest.mark.skipif(not os.path.exists(CITY_DB),
                                reason=f"MaxMind test databases not found in {GEOIP_DIR}")

# Five regions at real data-centre coordinates. The default (eu) is not listed first, so
# "the default region" and "the first region" cannot be confused.
WORLD = [
    ("us-east", 39.04, -77.49),    # Ashburn
    ("us-west", 37.34, -121.89),   # San Jose
    ("eu", 50.11, 8.68),           # Frankfurt (default)
    ("ap", 1.35, 103.82),          # Singapore
    ("sa", -23.55, -46.63),        # Sao Paulo
]
DEFAULT = "eu"
TRUST_LOOPBACK = {"trusted_proxies": ["127.0.0.1/32", "::1/128"]}

# Addresses in GeoIP2-City-Test.mmdb (see its JSON source) and where they must land.
CITY_CASES = [
    ("81.2.69.142", "GB", "eu"),            # London
    ("89.160.20.112", "SE", "eu"),          # Linkoping
    ("2a02:d180::1", "DE", "eu"),           # IPv6, Germany
    ("216.160.83.56", "US", "us-west"),     # Milton, WA
    ("214.78.120.5", "US", "us-west"),      # San Diego
    ("2001:480:10::1", "US", "us-west"),    # IPv6, San Diego
    ("149.101.100.5", "US", "us-east"),     # Kansas: nearer Ashburn than San Jose
    ("175.16.199.7", "CN", "ap"),           # Changchun
    ("202.196.224.9", "PH", "ap"),          # Philippines
    ("214.0.1.5", "AU", "ap"),              # Melbourne
    ("67.43.156.1", "BT", "ap"),            # Bhutan
    ("2001:218::1", "JP", "ap"),            # IPv6, Tokyo
    ("2.3.3.5", None, DEFAULT),             # in the database, but no country, no location
    ("10.20.30.40", None, DEFAULT),         # not in the database
]


def km(lat1, lon1, lat2, lon2):
    """Great-circle distance (haversine, mean Earth radius 6371 km)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def regions_spec(origins_by_name, world=WORLD, default=DEFAULT, extra=None):
    out = []
    for name, lat, lon in world:
        r = {"name": name, "lat": lat, "lon": lon,
             "backends": [origins_by_name[name].address]}
        r.update((extra or {}).get(name, {}))
        if name == default:
            r["default"] = True
        out.append(r)
    return out


class World:
    """One origin per region (named after it) behind a Meridian with geo routing."""

    def __init__(self, origins, meridian, world=WORLD, default=DEFAULT, region_extra=None,
                 listeners=None, meridian_kw=None, **sections):
        names = [w[0] for w in world]
        started = origins(*names)
        self.origins = dict(zip(names, started if len(names) > 1 else [started]))
        self.world = world
        self.default = default
        self.region_extra = region_extra
        self.m = meridian(start=False, **(meridian_kw or {}))
        self.sections = sections
        self.listeners = listeners
        self.m.write_config(self.config())
        self.m.start()

    def config(self, **changes):
        sections = dict(self.sections)
        sections.setdefault("geoip", {"database": CITY_DB})
        sections.update(changes)
        listeners = self.listeners(self.m) if callable(self.listeners) else self.listeners
        return geo_config(self.m.port, self.m.admin_port,
                          regions_spec(self.origins, self.world, self.default,
                                       self.region_extra),
                          listeners=listeners, **sections)

    def get(self, headers=(), path="/", port=None, host="127.0.0.1"):
        """One GET; returns the Response (status checked by the caller)."""
        with RawConn(port or self.m.port, host=host) as c:
            c.send(build("GET", path, headers=list(headers), host="geo.test"))
            return c.read_response()

    def region_for(self, headers=(), **kw):
        """The name of the region whose origin answered a GET."""
        r = self.get(headers, **kw)
        assert r.status == 200, (r.status, r.body)
        name = r.body.decode().strip()
        assert r.header("x-origin") == name, (r.header("x-origin"), r.body)
        return name

    def via_xff(self, ip, **kw):
        return self.region_for([("X-Forwarded-For", ip)], **kw)

    def last_record(self, region):
        recs = self.origins[region].records()
        assert recs, f"origin {region} got nothing"
        return recs[-1]


def headers_of(rec):
    """An origin record's headers as {lowercase name: [values]}."""
    out = {}
    for k, v in rec["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


def route(m, ip):
    """GET /route?ip=... on the admin endpoint: (status, content type, parsed JSON or None)."""
    url = f"http://127.0.0.1:{m.admin_port}/route"
    if ip is not None:
        url += "?ip=" + urllib.request.quote(ip, safe="")
    try:
        with urllib.request.urlopen(url, timeout=5 * SLOW) as r:
            return r.status, r.headers.get("Content-Type", ""), json.loads(r.read())
    except urllib.error.HTTPError as e:
        e.read()
        return e.code, e.headers.get("Content-Type", ""), None


@pytest.fixture
def world(origins, meridian):
    def make(**kw):
        return World(origins, meridian, **kw)
    return make


# ---- where clients land -----------------------------------------------------------------------


def test_clients_from_every_continent_land_on_their_nearest_region(world):
    w = world(client_ip=TRUST_LOOPBACK)
    got = {ip: w.via_xff(ip) for ip, _, _ in CITY_CASES}
    want = {ip: region for ip, _, region in CITY_CASES}
    assert got == want
    # Every region but sa (no test network is in South America) took someone.
    assert {n for n in got.values()} == {"eu", "us-east", "us-west", "ap"}


def test_a_client_without_forwarding_headers_goes_to_the_default_region(world):
    w = world(client_ip=TRUST_LOOPBACK)
    assert w.region_for() == DEFAULT
    # The default is a property of the config, not of the order of the regions.
    w2 = world(client_ip=TRUST_LOOPBACK, default="ap")
    assert w2.region_for() == "ap"
    assert w2.via_xff("10.9.8.7") == "ap"
    assert w2.via_xff("216.160.83.56") == "us-west"


def test_countries_list_wins_over_distance(world):
    # Philippines and Japan are served from us-west by contract, though Singapore is nearer.
    w = world(client_ip=TRUST_LOOPBACK,
              region_extra={"us-west": {"countries": ["PH", "JP"]}, "eu": {"countries": ["US"]}})
    assert w.via_xff("202.196.224.9") == "us-west"
    assert w.via_xff("2001:218::1") == "us-west"
    assert w.via_xff("175.16.199.7") == "ap"          # CN: not listed, nearest
    # A listed country beats the distance even across an ocean.
    assert w.via_xff("216.160.83.56") == "eu"
    assert w.via_xff("81.2.69.142") == "eu"


def test_country_only_database_uses_countries_then_default(world):
    # GeoIP2-Country has countries but no coordinates: only a countries list can place a
    # client; everyone else goes to the default region, however near another region is.
    w = world(client_ip=TRUST_LOOPBACK, geoip={"database": COUNTRY_DB},
              region_extra={"us-west": {"countries": ["US"]}, "ap": {"countries": ["PH"]}})
    assert w.via_xff("216.160.83.56") == "us-west"
    assert w.via_xff("149.101.100.5") == "us-west"   # by distance it would be us-east
    assert w.via_xff("202.196.224.9") == "ap"
    assert w.via_xff("175.16.199.7") == DEFAULT      # CN: no list names it, no coordinates
    assert w.via_xff("2001:218::1") == DEFAULT
    rec = w.last_record(DEFAULT)
    assert headers_of(rec).get("x-client-country") == ["JP"]


def test_nearest_is_great_circle_not_flat_degrees(world):
    # Placed through CloudFront's viewer location: Anadyr and Kamchatka are nearer San Jose
    # than Singapore over the pole and the antimeridian, though not in flat lat/lon degrees.
    w = world(client_ip=dict(TRUST_LOOPBACK, use_cdn_location=True))

    def at(lat, lon):
        return w.region_for([("CloudFront-Viewer-Latitude", str(lat)),
                             ("CloudFront-Viewer-Longitude", str(lon))])
    assert at(64.73, 177.5) == "us-west"
    assert at(53.0, 158.6) == "us-west"
    assert at(-34.6, -58.4) == "sa"        # Buenos Aires
    assert at(-36.85, 174.76) == "ap"      # Auckland
    assert at(64.1, -21.9) == "eu"         # Reykjavik


# ---- what the backend is told -----------------------------------------------------------------


def test_backend_gets_client_country_and_region_and_spoofed_ones_are_dropped(world):
    w = world(client_ip=TRUST_LOOPBACK)
    spoof = [("X-Client-Country", "ZZ"), ("X-Client-Region", "sa"),
             ("x-client-country", "YY")]
    assert w.region_for([("X-Forwarded-For", "216.160.83.56")] + spoof) == "us-west"
    h = headers_of(w.last_record("us-west"))
    assert h.get("x-client-country") == ["US"], h
    assert h.get("x-client-region") == ["us-west"], h
    # The usual X-Forwarded-For: what the trusted peer sent, with the peer appended.
    assert h.get("x-forwarded-for") == ["216.160.83.56, 127.0.0.1"], h

    # Country unknown: no X-Client-Country at all (a spoofed one is still dropped), but the
    # region is always said.
    assert w.region_for(spoof) == DEFAULT
    h = headers_of(w.last_record(DEFAULT))
    assert "x-client-country" not in h, h
    assert h.get("x-client-region") == [DEFAULT], h


def test_client_header_names_are_configurable(world):
    w = world(client_ip=TRUST_LOOPBACK,
              routing={"country_header": "X-Geo-Country", "region_header": "X-Geo-Region"})
    assert w.region_for([("X-Forwarded-For", "81.2.69.142"), ("X-Geo-Country", "ZZ"),
                         ("X-Geo-Region", "ap")]) == "eu"
    h = headers_of(w.last_record("eu"))
    assert h.get("x-geo-country") == ["GB"], h
    assert h.get("x-geo-region") == ["eu"], h
    assert "x-client-country" not in h and "x-client-region" not in h, h


def test_empty_header_name_turns_the_header_off(world):
    w = world(client_ip=TRUST_LOOPBACK, routing={"country_header": "", "region_header": ""})
    assert w.via_xff("89.160.20.112") == "eu"
    h = headers_of(w.last_record("eu"))
    assert "x-client-country" not in h and "x-client-region" not in h, h


# ---- /route -----------------------------------------------------------------------------------


def test_admin_route_explains_the_choice(world):
    w = world(client_ip=TRUST_LOOPBACK)
    status, ctype, j = route(w.m, "81.2.69.142")
    assert status == 200
    assert ctype.startswith("application/json"), ctype
    assert j["ip"] == "81.2.69.142"
    assert j["country"] == "GB"
    assert j["continent"] == "EU"
    assert abs(j["location"]["lat"] - 51.5142) < 0.01 and abs(j["location"]["lon"] + 0.0931) < 0.01
    names = [r["name"] for r in j["regions"]]
    by_distance = sorted(WORLD, key=lambda r: km(51.5142, -0.0931, r[1], r[2]))
    assert names == [r[0] for r in by_distance]
    for r, (name, lat, lon) in zip(j["regions"], by_distance):
        want = km(51.5142, -0.0931, lat, lon)
        assert abs(r["distance_km"] - want) <= max(2.0, want * 0.005), (r, want)
        assert r["total"] == 1 and r["up"] + r["unchecked"] == 1, r
    assert j["nearest"] == "eu" and j["chosen"] == "eu" and j["failed_over"] is False

    # What /route says is what a request does.
    for ip, _, region in CITY_CASES:
        status, _, j = route(w.m, ip)
        assert status == 200 and j["nearest"] == region and j["chosen"] == region, (ip, j)
        assert w.via_xff(ip) == region


def test_admin_route_for_unknown_and_ipv6_clients(world):
    w = world(client_ip=TRUST_LOOPBACK)
    status, _, j = route(w.m, "10.20.30.40")
    assert status == 200
    assert j["country"] is None and j["location"] is None, j
    assert j["nearest"] == DEFAULT and j["chosen"] == DEFAULT, j
    assert j["regions"][0]["name"] == DEFAULT
    assert all(r["distance_km"] is None for r in j["regions"]), j
    assert sorted(r["name"] for r in j["regions"]) == sorted(n for n, _, _ in WORLD)

    status, _, j = route(w.m, "2001:218::1")
    assert status == 200 and j["country"] == "JP" and j["continent"] == "AS", j
    assert j["chosen"] == "ap", j


def test_admin_route_refuses_a_bad_address(world):
    w = world(client_ip=TRUST_LOOPBACK)
    for ip in (None, "", "not-an-ip", "1.2.3", "256.1.1.1", "1.2.3.4:80", "[::1]",
               "2001:db8::/32", "81.2.69.142 "):
        status, _, _ = route(w.m, ip)
        assert status == 400, ip
    assert w.m.healthy()
    assert route(w.m, "81.2.69.142")[0] == 200


# ---- access log -------------------------------------------------------------------------------


def test_access_log_has_resolved_client_country_and_failover(world, tmp_path):
    log = tmp_path / "geo-access.log"
    w = world(client_ip=TRUST_LOOPBACK, access_log=str(log))
    assert w.via_xff("175.16.199.7") == "ap"
    assert w.region_for() == DEFAULT
    by = access_log_by_client(log, 2)
    a, b = by["175.16.199.7"], by["127.0.0.1"]
    assert a["client_ip"] == "175.16.199.7", a
    assert a["country"] == "CN" and a["region"] == "ap" and a["failover"] is False, a
    assert a["status"] == 200
    assert b["client_ip"] == "127.0.0.1", b
    assert "country" in b and b["country"] is None, b
    assert b["region"] == DEFAULT and b["failover"] is False, b


# ---- the database on reload and in `meridian -t` ----------------------------------------------


def _routing_snapshot(w):
    return {ip: w.via_xff(ip) for ip in ("81.2.69.142", "216.160.83.56", "175.16.199.7",
                                          "149.101.100.5")}


@pytest.mark.parametrize("bad", ["broken-search-tree", "broken-pointers", "missing", "not-mmdb"])
def test_reload_with_a_bad_database_keeps_the_old_one(world, tmp_path, bad):
    db = tmp_path / "geo.mmdb"
    shutil.copyfile(CITY_DB, db)
    w = world(client_ip=TRUST_LOOPBACK, geoip={"database": str(db)})
    before = _routing_snapshot(w)
    assert before == {"81.2.69.142": "eu", "216.160.83.56": "us-west", "175.16.199.7": "ap",
                      "149.101.100.5": "us-east"}
    gen = w.m.generation()

    if bad == "missing":
        bad_path = tmp_path / "nowhere" / "geo.mmdb"
    elif bad == "not-mmdb":
        bad_path = tmp_path / "text.mmdb"
        bad_path.write_text("this is not a MaxMind database\n" * 100)
    else:
        bad_path = os.path.join(GEOIP_DIR, f"MaxMind-DB-test-{bad}-24.mmdb")
    bad_text = w.config(geoip={"database": str(bad_path)})
    w.m.reload(bad_text, expect_success=False)
    assert f"{w.m.config_path}:{config_line(bad_text, 'geoip:')}:" in w.m.stderr(), \
        w.m.stderr()[-2000:]
    assert _routing_snapshot(w) == before
    assert w.m.generation() == gen

    # The operator's usual move: replace the file (a new inode) and reload. A corrupt
    # replacement is refused too, and the database mapped before keeps answering.
    if bad != "missing":
        tmp = tmp_path / "geo.mmdb.new"
        shutil.copyfile(bad_path, tmp)
        os.replace(tmp, db)
        w.m.reload(w.config(), expect_success=False)
        assert _routing_snapshot(w) == before

    # A good database afterwards is taken: the Country one has no coordinates.
    good = tmp_path / "country.mmdb"
    shutil.copyfile(COUNTRY_DB, good)
    w.m.reload(w.config(geoip={"database": str(good)}))
    after = _routing_snapshot(w)
    assert after["149.101.100.5"] == DEFAULT and after["216.160.83.56"] == DEFAULT, after


@pytest.mark.parametrize("which", ["broken", "missing"])
def test_config_check_refuses_a_bad_database_with_file_and_line(tmp_path, which):
    path = tmp_path / "check.yaml"
    db = BROKEN_DBS[0] if which == "broken" else str(tmp_path / "absent.mmdb")
    text = geo_config(free_port(), free_port(),
                      [{"name": "eu", "lat": 50.11, "lon": 8.68, "backends": ["127.0.0.1:9"],
                        "default": True}],
                      geoip={"database": db})
    path.write_text(text)
    r = subprocess.run([MERIDIAN_BIN, "-t", "-c", str(path)], capture_output=True, text=True,
                       timeout=10 * SLOW)
    assert r.returncode != 0, r.stdout
    assert f"{path}:{config_line(text, 'geoip:')}:" in r.stderr, r.stderr

    # And the good database passes.
    path.write_text(text.replace(db, CITY_DB))
    r = subprocess.run([MERIDIAN_BIN, "-t", "-c", str(path)], capture_output=True, text=True,
                       timeout=10 * SLOW)
    assert r.returncode == 0, r.stderr


# ---- the project's own sample database --------------------------------------------------------


def _sample_networks():
    """(address, country or None, (lat, lon) or None) for addresses in and around each
    network of geoip/sample.json (its "places" and "networks"; see geoip/README.md)."""
    import ipaddress
    with open(os.path.join(TOP, "geoip", "sample.json")) as f:
        data = json.load(f)
    places = data["places"]
    out = []
    for entry in data["networks"]:
        rec = dict(places[entry["place"]]) if "place" in entry else {}
        rec.update(entry)
        country = rec.get("country") or rec.get("registered_country")
        where = ((rec["latitude"], rec["longitude"])
                 if "latitude" in rec and "longitude" in rec else None)
        net = ipaddress.ip_network(rec["network"])
        for addr in {net[0], net[1], net[-1]}:
            out.append((str(addr), country, where))
    # IPv4 found through its IPv6 aliases (the tree is IPv6), and addresses in no network.
    out += [("::ffff:192.0.2.33", "US", (38.9, -77.0)), ("2002:c000:0241::1", "US", (45.6, -121.2)),
            ("192.0.2.230", None, None), ("203.0.113.200", None, None),
            ("198.19.200.1", None, None), ("2001:db8:8::1", None, None),
            ("2001:db8::1", None, None)]
    return out


def _sample_mismatches(w, nets, countries=None):
    countries = countries or {}
    by_country = {c: r for r, cs in countries.items() for c in cs}
    bad = []
    for addr, country, where in nets:
        if country in by_country:
            want = by_country[country]
        elif where is not None:
            want = min(WORLD, key=lambda r: km(where[0], where[1], r[1], r[2]))[0]
        else:
            want = DEFAULT
        status, _, j = route(w.m, addr)
        got = w.via_xff(addr)
        seen = headers_of(w.last_record(got)).get("x-client-country")
        if (status != 200 or j["country"] != country or j["chosen"] != want or got != want
                or seen != ([country] if country else None)):
            bad.append((addr, country, where, want, got, seen, j))
    return bad


def test_sample_database_places_each_demo_network(world):
    if not os.path.exists(SAMPLE_MMDB):
        pytest.skip(f"{SAMPLE_MMDB} not built (geoip/sample.json, geoip/build-mmdb.pl)")
    nets = _sample_networks()
    w = world(client_ip=TRUST_LOOPBACK, geoip={"database": SAMPLE_MMDB})
    assert not _sample_mismatches(w, nets)
    # With countries lists: they win over distance, and place the records with no coordinates.
    countries = {"ap": ["JP", "AU"], "us-east": ["CA"], "sa": ["ZA"]}
    w2 = world(client_ip=TRUST_LOOPBACK, geoip={"database": SAMPLE_MMDB},
               region_extra={r: {"countries": c} for r, c in countries.items()})
    assert not _sample_mismatches(w2, nets, countries)


# ---- `meridian -t` on the new sections ---------------------------------------------------------


def _bad(section, value, where=None):
    return (section, value, where or section + ":")


@pytest.mark.parametrize("key,value,line_prefix", [
    _bad("client_ip", {"trusted_proxies": ["10.0.0.1/8"]}),          # host bits set
    _bad("client_ip", {"trusted_proxies": ["example.com"]}),
    _bad("client_ip", {"headers": ["x-real-ip"]}),
    _bad("client_ip", {"use_cdn_location": "yes"}),
    _bad("health_check", {"expect_status": "2xz"}),
    _bad("health_check", {"interval": "200ms", "timeout": "300ms"}),  # timeout over interval
    _bad("health_check", {"rise": 0}),
    _bad("health_check", {"interval": "soon"}),
    _bad("routing", {"spill_below": "150%"}),
    _bad("geoip", {"databse": CITY_DB}),
    _bad("regions", {"countries": ["GBR"]}, "  - { name: \"us-west\""),
    _bad("regions", {"balance": "fastest"}, "  - { name: \"us-west\""),
    _bad("regions", {"health_check": {"fall": -1}}, "  - { name: \"us-west\""),
    _bad("listeners", {"proxy_protocol": "yes"}, "  - { name: \"main\""),
])
def test_config_check_refuses_bad_geo_and_health_settings(tmp_path, key, value, line_prefix):
    regions = [{"name": n, "lat": la, "lon": lo, "backends": [f"127.0.0.1:{9001 + i}"]}
               for i, (n, la, lo) in enumerate(WORLD)]
    regions[2]["default"] = True
    listener = {"name": "main", "address": f"127.0.0.1:{free_port()}"}
    sections = {"client_ip": dict(TRUST_LOOPBACK), "geoip": {"database": CITY_DB},
                "health_check": {"path": "/", "interval": "1s", "timeout": "500ms"},
                "routing": {"spill_below": "50%"}}
    good = geo_config(0, free_port(), regions, listeners=[listener], **sections)
    if key == "regions":
        regions[1].update(value)
    elif key == "listeners":
        listener.update(value)
    elif key == "geoip":
        sections[key] = value
    else:
        sections[key] = dict(sections[key], **value)
    bad = geo_config(0, free_port(), regions, listeners=[listener], **sections)
    path = tmp_path / "check.yaml"
    path.write_text(good)
    r = subprocess.run([MERIDIAN_BIN, "-t", "-c", str(path)], capture_output=True, text=True,
                       timeout=10 * SLOW)
    assert r.returncode == 0, r.stderr
    path.write_text(bad)
    r = subprocess.run([MERIDIAN_BIN, "-t", "-c", str(path)], capture_output=True, text=True,
                       timeout=10 * SLOW)
    assert r.returncode != 0, (bad, r.stdout)
    assert f"{path}:{config_line(bad, line_prefix)}:" in r.stderr, (bad, r.stderr)
