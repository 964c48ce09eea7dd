# SPDX-License-Identifier: MIT
"""TLS termination: HTTP/1.1 over TLS, certificate choice by SNI and by what the client supports,
ALPN, protocol versions, session resumption (alone, across a fleet sharing a ticket key file,
across a reload), certificate errors at check and reload time, and a testssl.sh audit."""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import MERIDIAN_BIN, TOP, wait_for
from util_tls import (curl, curl_status, make_cert, s_client, start_tls_meridian, tls_config,
                      write_ticket_keys)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """The certificates every test here shares (RSA key generation is the slow part).
    default.test is the default; a.test has an ECDSA and an RSA certificate side by side
    (both also cover *.w.test); b.test has only an RSA one."""
    d = tmp_path_factory.mktemp("certs")
    return {"default": make_cert(d, "default", ["default.test"]),
            "ec_a": make_cert(d, "ec-a", ["a.test", "*.w.test"]),
            "rsa_a": make_cert(d, "rsa-a", ["a.test", "*.w.test"], kind="rsa"),
            "rsa_b": make_cert(d, "rsa-b", ["b.test"], kind="rsa")}


def cert_list(certs):
    return [(certs["default"], True), (certs["ec_a"], False), (certs["rsa_a"], False),
            (certs["rsa_b"], False)]


@pytest.fixture
def tls(origins, meridian, certs):
    """One origin behind a Meridian with every certificate loaded; returns (origin, m)."""
    o = origins("eu-a")
    return o, start_tls_meridian(meridian, [o.address], cert_list(certs))


def fingerprint_of(cert):
    return cert.info()["fingerprint"]


# --- HTTP/1.1 over TLS -----------------------------------------------------------------------


def test_http11_over_tls_is_proxied_as_https(origins, meridian, certs, tmp_path):
    o = origins("eu-a")
    log = tmp_path / "access.log"
    m = start_tls_meridian(meridian, [o.address], cert_list(certs), access_log=str(log))
    r = curl(f"https://a.test:{m.port}/headers", "--http1.1", "--cacert", certs["ec_a"].cert,
             "-H", "X-Request-Id: tls-h1-1", resolve=("a.test", m.port))
    assert r.returncode == 0, r.stderr
    # The plain listener next to it says http.
    r = curl(f"http://127.0.0.1:{m.plain_port}/", "--http1.1", "-H", "X-Request-Id: plain-h1-1")
    assert r.returncode == 0, r.stderr
    seen = {dict(rec["headers"])["X-Request-Id"]: dict(rec["headers"]) for rec in o.records()}
    assert seen["tls-h1-1"].get("X-Forwarded-Proto") == "https", seen["tls-h1-1"]
    assert seen["tls-h1-1"].get("Host") == f"a.test:{m.port}", seen["tls-h1-1"]
    assert seen["plain-h1-1"].get("X-Forwarded-Proto") == "http", seen["plain-h1-1"]

    def lines():
        with open(log) as f:
            out = [json.loads(line) for line in f if line.strip()]
        return out if len(out) >= 2 else None

    recs = {r["request_id"]: r for r in wait_for(lines, timeout=3, what="access log lines")}
    a = recs["tls-h1-1"]
    assert a["protocol"] == "HTTP/1.1" and a["tls"] == "TLSv1.3", a
    assert a["status"] == 200 and a["path"] == "/headers", a
    assert recs["plain-h1-1"]["tls"] in (None, ""), recs["plain-h1-1"]


# --- certificate choice ----------------------------------------------------------------------

# (server name sent, certificate expected)
SNI_CASES = [
    ("a.test", "ec_a"),
    ("b.test", "rsa_b"),
    ("x.w.test", "ec_a"),          # *.w.test
    ("unknown.test", "default"),   # no certificate covers it
    (None, "default"),             # no SNI at all
    ("y.x.w.test", "default"),     # a wildcard covers exactly one label (RFC 6125 6.4.3)
    ("w.test", "default"),         # ... and not the bare parent
]


@pytest.mark.parametrize("name,expected", SNI_CASES, ids=[str(n) for n, _ in SNI_CASES])
def test_sni_selects_the_certificate(tls, certs, name, expected):
    o, m = tls
    hs = s_client(m.port, servername=name)
    assert hs.ok, hs
    want = certs[expected].info()
    assert hs.cert["fingerprint"] == want["fingerprint"], (
        f"server name {name!r}: got CN={hs.cert['cn']} SANs={hs.cert['sans']} "
        f"({hs.cert['key_type']}), expected CN={want['cn']} SANs={want['sans']} "
        f"({want['key_type']})")
    assert hs.cert["sans"] == sorted(certs[expected].names)


# (s_client arguments, certificate expected for a.test)
KEY_TYPE_CASES = [
    ([], "ec_a"),
    (["-tls1_2"], "ec_a"),
    (["-tls1_3", "-sigalgs", "RSA-PSS+SHA256"], "rsa_a"),
    (["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"], "rsa_a"),
    (["-tls1_2", "-sigalgs", "RSA+SHA256:RSA-PSS+SHA256"], "rsa_a"),
]


@pytest.mark.parametrize("args,expected", KEY_TYPE_CASES,
                         ids=[" ".join(a) or "default-client" for a, _ in KEY_TYPE_CASES])
def test_ecdsa_and_rsa_for_the_same_name(tls, certs, args, expected):
    o, m = tls
    hs = s_client(m.port, *args, servername="a.test")
    assert hs.ok, hs
    got = hs.cert
    assert got["cn"] == "a.test", got
    assert got["fingerprint"] == fingerprint_of(certs[expected]), (
        f"{args}: got a {got['key_type']} certificate, "
        f"expected {certs[expected].info()['key_type']}")


# --- ALPN ------------------------------------------------------------------------------------

# (server alpn config or None for the default, client offer, expected protocol)
ALPN_CASES = [
    (None, "h2", "h2"),
    (None, "http/1.1", "http/1.1"),
    (None, "http/1.1,h2", "h2"),          # server preference wins
    (None, "spdy/3,h2", "h2"),
    (["http/1.1", "h2"], "h2,http/1.1", "http/1.1"),
    (["http/1.1", "h2"], "h2", "h2"),
    (["http/1.1"], "h2,http/1.1", "http/1.1"),
]


@pytest.mark.parametrize("server,offer,expected", ALPN_CASES,
                         ids=[f"{'-'.join(s or ['default'])}:{o}" for s, o, _ in ALPN_CASES])
def test_alpn_negotiation(origins, meridian, certs, server, offer, expected):
    o = origins("eu-a")
    m = start_tls_meridian(meridian, [o.address], cert_list(certs), alpn=server)
    hs = s_client(m.port, "-alpn", offer, servername="a.test")
    assert hs.ok, hs
    assert hs.alpn == expected, hs
    # And the protocol really spoken is the one negotiated.
    status, version = curl_status(f"https://a.test:{m.port}/", "-k", "--http2",
                                  resolve=("a.test", m.port))
    assert status == 200, version
    want = "2" if (server or ["h2"])[0] == "h2" else "1.1"
    assert version == want


def test_alpn_without_overlap_falls_back_to_http11(tls):
    """Like HAProxy and nginx (not RFC 7301's fatal alert): a client whose ALPN list has
    none of ours (curl --http1.0 offers only "http/1.0") gets no ALPN answer and is served
    HTTP/1.x."""
    o, m = tls
    hs = s_client(m.port, "-alpn", "spdy/3", servername="a.test")
    assert hs.ok, hs
    assert "No ALPN negotiated" in hs.out, hs
    status, version = curl_status(f"https://a.test:{m.port}/", "-k", "--http1.0",
                                  resolve=("a.test", m.port))
    assert (status, version) == (200, "1.1")  # we answer an HTTP/1.0 request as HTTP/1.1
    # A client that sends no ALPN at all is taken to speak HTTP/1.1.
    status, version = curl_status(f"https://a.test:{m.port}/", "-k", "--no-alpn",
                                  resolve=("a.test", m.port))
    assert (status, version) == (200, "1.1")


# --- protocol versions -----------------------------------------------------------------------

# SECLEVEL=0 so that the client really offers TLS 1.0/1.1 (OpenSSL 3 refuses them by default):
# the refusal must come from Meridian, as an alert, not from our own client.
OLD = ["-cipher", "DEFAULT@SECLEVEL=0"]

# (server protocols or None for the default, client args, accepted)
VERSION_CASES = [
    (None, ["-tls1"] + OLD, False),
    (None, ["-tls1_1"] + OLD, False),
    (None, ["-tls1_2"], True),
    (None, ["-tls1_3"], True),
    (["TLSv1.3"], ["-tls1_2"], False),
    (["TLSv1.3"], ["-tls1_3"], True),
    (["TLSv1.2"], ["-tls1_3"], False),
    (["TLSv1.2"], ["-tls1_2"], True),
]


@pytest.mark.parametrize("server,args,accepted", VERSION_CASES,
                         ids=[f"{'-'.join(s or ['default'])}:{a[0]}" for s, a, _ in VERSION_CASES])
def test_protocol_versions(origins, meridian, certs, server, args, accepted):
    o = origins("eu-a")
    m = start_tls_meridian(meridian, [o.address], cert_list(certs), protocols=server)
    hs = s_client(m.port, *args, servername="a.test")
    if accepted:
        assert hs.ok, hs
        assert hs.protocol == {"-tls1_2": "TLSv1.2", "-tls1_3": "TLSv1.3"}[args[0]]
    else:
        assert not hs.ok, hs
        assert re.search(r"alert protocol version|unsupported protocol|wrong version", hs.out), \
            hs.out[-800:]


# --- session resumption ----------------------------------------------------------------------

VERSIONS = ["-tls1_3", "-tls1_2"]


def resumes(port_from, port_to, version, tmp_path, stem="sess"):
    """A session from a full handshake with port_from, offered to port_to: (first, second)."""
    sess = str(tmp_path / f"{stem}{version}.pem")
    if os.path.exists(sess):
        os.unlink(sess)
    first = s_client(port_from, version, servername="a.test", sess_out=sess)
    assert first.ok and not first.reused, first
    assert os.path.getsize(sess) > 0, "no session was written (no ticket?)"
    second = s_client(port_to, version, "-sess_in", sess, servername="a.test")
    assert second.ok, second
    return first, second


@pytest.mark.parametrize("version", VERSIONS)
def test_session_resumption(tls, tmp_path, version):
    o, m = tls

    def counts():
        ws = m.status()["workers"]
        return (sum(w["tls_handshakes_full"] for w in ws),
                sum(w["tls_handshakes_resumed"] for w in ws))

    full0, resumed0 = counts()
    _, second = resumes(m.port, m.port, version, tmp_path)
    assert second.reused, second
    # /status counts what happened: one full handshake, then one resumption.
    full, resumed = wait_for(lambda: counts() if counts()[1] > resumed0 else None,
                             what="the resumption in /status")
    assert (full - full0, resumed - resumed0) == (1, 1)


@pytest.mark.parametrize("version", VERSIONS)
def test_fleet_sharing_a_ticket_key_file_resumes_across_servers(origins, meridian, certs,
                                                                tmp_path, version):
    o = origins("eu-a")
    keys = write_ticket_keys(tmp_path / "ticket.key")
    other = write_ticket_keys(tmp_path / "other.key")
    shared = f'{{ enabled: true, key_file: "{keys}" }}'
    m1 = start_tls_meridian(meridian, [o.address], cert_list(certs), tickets=shared)
    m2 = start_tls_meridian(meridian, [o.address], cert_list(certs), tickets=shared)
    m3 = start_tls_meridian(meridian, [o.address], cert_list(certs),
                            tickets=f'{{ enabled: true, key_file: "{other}" }}')
    _, second = resumes(m1.port, m2.port, version, tmp_path, "fleet")
    assert second.reused, f"a session from server 1 did not resume on server 2: {second}"
    # Control: a server with other keys cannot resume it (so the above is the key file).
    _, third = resumes(m1.port, m3.port, version, tmp_path, "control")
    assert not third.reused, third


@pytest.mark.parametrize("version", VERSIONS)
def test_resumption_survives_a_reload(tls, tmp_path, version):
    o, m = tls
    sess = str(tmp_path / "before-reload.pem")
    first = s_client(m.port, version, servername="a.test", sess_out=sess)
    assert first.ok, first
    m.reload(m.config_for(alpn=["h2", "http/1.1"]))
    second = s_client(m.port, version, "-sess_in", sess, servername="a.test")
    assert second.ok, second
    assert second.reused, f"session from before the reload not resumed: {second}"


# --- certificate errors ----------------------------------------------------------------------


def check(path):
    return subprocess.run([MERIDIAN_BIN, "-t", "-c", str(path)], capture_output=True,
                          text=True, timeout=20)


def line_of(text, needle):
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in config")


@pytest.mark.parametrize("key_kind", ["same-type", "other-type"])
def test_check_refuses_a_key_that_does_not_match(certs, tmp_path, key_kind):
    """An ECDSA certificate with another ECDSA key (a renewal that forgot the key), or with
    an RSA key: both are "FILE:LINE: ... does not match", LINE being the certificate's."""
    bad = make_cert(tmp_path, "bad", ["bad.test"])
    bad.key = certs["ec_a" if key_kind == "same-type" else "rsa_a"].key
    text = tls_config(1, 2, 3, ["127.0.0.1:9"], [(certs["default"], True), (bad, False)])
    path = tmp_path / "bad-key.yaml"
    path.write_text(text)
    r = check(path)
    assert r.returncode == 1, (r.stdout, r.stderr)
    line = line_of(text, bad.cert)
    assert re.search(rf"^{re.escape(str(path))}:{line}: .*does not match", r.stderr, re.M), \
        r.stderr
    assert bad.key in r.stderr, r.stderr


def test_check_refuses_a_missing_certificate_file(certs, tmp_path):
    missing = make_cert(tmp_path, "gone", ["gone.test"])
    os.unlink(missing.cert)
    text = tls_config(1, 2, 3, ["127.0.0.1:9"], [(certs["default"], True), (missing, False)])
    path = tmp_path / "missing.yaml"
    path.write_text(text)
    r = check(path)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert missing.cert in r.stderr, r.stderr
    assert re.search(rf"^{re.escape(str(path))}:{line_of(text, missing.cert)}: ", r.stderr,
                     re.M), r.stderr


def test_reload_with_a_bad_certificate_keeps_the_old_one(origins, meridian, certs, tmp_path):
    o = origins("eu-a")
    a = make_cert(tmp_path, "a", ["a.test"])
    m = start_tls_meridian(meridian, [o.address], [(certs["default"], True), (a, False)])
    before = s_client(m.port, servername="a.test")
    assert before.cert["fingerprint"] == fingerprint_of(a)

    renewed = make_cert(tmp_path, "a-renewed", ["a.test"])
    renewed.key = certs["ec_a"].key  # does not match
    m.reload(m.config_for(certs=[(certs["default"], True), (renewed, False)]),
             expect_success=False)
    refusal = [l for l in m.stderr().splitlines() if "reload refused" in l]
    assert any(f"{m.config_path}:" in l and renewed.key in l for l in refusal), refusal
    after = s_client(m.port, servername="a.test")
    assert after.ok and after.cert["fingerprint"] == fingerprint_of(a), after
    status, _ = curl_status(f"https://a.test:{m.port}/", "--cacert", a.cert,
                            resolve=("a.test", m.port))
    assert status == 200


def test_reload_picks_up_a_renewed_certificate(origins, meridian, certs, tmp_path):
    o = origins("eu-a")
    a = make_cert(tmp_path, "a", ["a.test"])
    m = start_tls_meridian(meridian, [o.address], [(certs["default"], True), (a, False)])
    old = a.info()
    assert s_client(m.port, servername="a.test").cert["fingerprint"] == old["fingerprint"]
    # Renewed in place, as certbot & co. do: same paths, new certificate and key.
    make_cert(tmp_path, "a", ["a.test"])
    new = a.info()
    assert new["fingerprint"] != old["fingerprint"]
    m.reload()
    hs = s_client(m.port, servername="a.test")
    assert hs.cert["fingerprint"] == new["fingerprint"], (
        f"after reload still serial {hs.cert['serial']} (old {old['serial']}, new {new['serial']})")
    status, _ = curl_status(f"https://a.test:{m.port}/", "--cacert", a.cert,
                            resolve=("a.test", m.port))
    assert status == 200


# --- testssl.sh audit ------------------------------------------------------------------------


def find_testssl_or_skip():
    found = shutil.which("testssl") or shutil.which("testssl.sh")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("testssl is not installed and cannot be installed here (not root or no "
                    "apt-get): apt-get install -y testssl.sh")
    r = subprocess.run(["apt-get", "install", "-y", "testssl.sh"], capture_output=True,
                       text=True, timeout=300)
    found = shutil.which("testssl") or shutil.which("testssl.sh")
    if not found:
        pytest.skip(f"testssl could not be installed: {(r.stdout + r.stderr)[-300:]}")
    return found


@pytest.mark.skipif(os.environ.get("MERIDIAN_SANITIZED") == "1",
                    reason="what testssl judges (protocols, ciphers, the handshake's options) "
                    "is the same in the sanitizer builds, and the scan takes half a minute; the "
                    "handshake paths run under the sanitizers in the other TLS tests")
def test_testssl_finds_nothing_medium_or_worse(tmp_path):
    testssl = find_testssl_or_skip()
    env = dict(os.environ, TESTSSL=testssl)
    r = subprocess.run(["bash", os.path.join(TOP, "tests", "tls_scan.sh"), str(tmp_path)],
                       capture_output=True, text=True, timeout=240, env=env)
    # stdout: the one-line verdict; stderr: each finding (and each waived one), or why the
    # scan could not run.
    assert r.returncode == 0, r.stdout + "\n" + r.stderr[-3000:]
    assert r.stdout.startswith("tls_scan: OK:"), r.stdout
