# SPDX-License-Identifier: MIT
"""The configuration files we ship are accepted by `meridian -t`: conf/meridian.yaml and the
Docker image's default as they are; conf/cloudfront.yaml once the certificate and GeoIP paths
it names (which exist only on a real origin) point at a generated certificate and the sample
database. A broken copy of each is refused with file:line, so the check is not vacuous."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import MERIDIAN_BIN, SAMPLE_MMDB, SLOW, TOP
from util_tls import make_cert

CLOUDFRONT = os.path.join(TOP, "conf", "cloudfront.yaml")
EXAMPLE = os.path.join(TOP, "conf", "meridian.yaml")
DOCKER_DEFAULT = os.path.join(TOP, "packaging", "docker", "meridian.yaml")

# What conf/cloudfront.yaml names that a test machine lacks: each must be found exactly once,
# so a renamed path fails here instead of slipping through unreplaced.
CF_CERT = "/etc/meridian/tls/origin.pem"
CF_KEY = "/etc/meridian/tls/origin.key"
CF_MMDB = "/var/lib/meridian/geoip/GeoLite2-City.mmdb"


def check(path):
    return subprocess.run([MERIDIAN_BIN, "-t", "-c", str(path)], capture_output=True, text=True,
                          timeout=30 * SLOW)


def line_of(text, needle):
    """1-based number of the only line containing `needle`."""
    hits = [i + 1 for i, l in enumerate(text.splitlines()) if needle in l]
    assert len(hits) == 1, f"{needle!r} is on lines {hits}"
    return hits[0]


def replace_once(text, old, new):
    assert text.count(old) == 1, f"{old!r} appears {text.count(old)} times"
    return text.replace(old, new)


def cloudfront_copy(tmp_path):
    """conf/cloudfront.yaml in tmp_path with its certificate and database made real."""
    if not os.path.exists(SAMPLE_MMDB):
        pytest.skip(f"{SAMPLE_MMDB} not built (geoip/sample.json, geoip/build-mmdb.pl)")
    cert = make_cert(tmp_path, "origin", ["origin.example.com"])
    with open(CLOUDFRONT) as f:
        text = f.read()
    text = replace_once(text, CF_CERT, cert.cert)
    text = replace_once(text, CF_KEY, cert.key)
    text = replace_once(text, CF_MMDB, SAMPLE_MMDB)
    return text


def test_cloudfront_sample_is_accepted(tmp_path):
    path = tmp_path / "cloudfront.yaml"
    path.write_text(cloudfront_copy(tmp_path))
    r = check(path)
    assert r.returncode == 0, r.stderr
    assert "configuration is valid" in r.stdout
    assert r.stderr == ""


def test_cloudfront_sample_trusts_only_origin_facing_ranges():
    """The sample's trust list is the one the README tells operators to keep refreshed; keep
    it honest: networks only (no host bits, so -t accepts it), CloudFront's 130.176/16 and
    2600:9000 blocks present, and no private or loopback network slipped in from testing."""
    with open(CLOUDFRONT) as f:
        text = f.read()
    block = re.search(r"^  trusted_proxies:\n((?:    - \S+\n)+)", text, re.M)
    assert block, "trusted_proxies is not a block list of '    - NET' lines"
    nets = re.findall(r"^    - (\S+)$", block.group(1), re.M)
    assert len(nets) >= 40
    assert "130.176.0.0/18" in nets and any(n.startswith("2600:9000:") for n in nets)
    for n in nets:
        assert not n.startswith(("10.", "127.", "192.168.", "172.16.", "::1", "fc", "fd")), n


@pytest.mark.parametrize("how", ["host_bits", "typo", "timeout_unit"])
def test_cloudfront_sample_broken_copy_is_refused_at_its_line(tmp_path, how):
    text = cloudfront_copy(tmp_path)
    if how == "host_bits":
        text = replace_once(text, "- 130.176.0.0/18\n", "- 130.176.0.1/18\n")
        needle, words = "130.176.0.1/18", "host bits"
    elif how == "typo":
        text = replace_once(text, "use_cdn_location: true", "use_cdn_locaton: true")
        needle, words = "use_cdn_locaton", "use_cdn_locaton"
    else:
        text = replace_once(text, "client_idle: 65s", "client_idle: 65 seconds")
        needle, words = "client_idle:", "client_idle"
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    r = check(path)
    assert r.returncode == 1, r.stdout
    assert f"{path}:{line_of(text, needle)}:" in r.stderr, r.stderr
    assert words in r.stderr, r.stderr


@pytest.mark.parametrize("sample", [EXAMPLE, DOCKER_DEFAULT], ids=["conf", "docker"])
def test_shipped_sample_is_accepted_as_is(sample):
    r = check(sample)
    assert r.returncode == 0, r.stderr
    assert "configuration is valid" in r.stdout


@pytest.mark.parametrize("sample", [EXAMPLE, DOCKER_DEFAULT], ids=["conf", "docker"])
def test_shipped_sample_broken_copy_is_refused_at_its_line(tmp_path, sample):
    with open(sample) as f:
        text = f.read()
    text = replace_once(text, "admin:\n", "admin:\n  adress: 127.0.0.1:1\n")
    path = tmp_path / os.path.basename(sample)
    path.write_text(text)
    r = check(path)
    assert r.returncode == 1, r.stdout
    assert f"{path}:{line_of(text, 'adress:')}:" in r.stderr, r.stderr


def test_docker_default_config_matches_the_image():
    """The image's HEALTHCHECK asks the admin address in MERIDIAN_ADMIN (Dockerfile ENV), and
    EXPOSE names the listener's port: both must agree with the default configuration."""
    with open(DOCKER_DEFAULT) as f:
        conf = f.read()
    with open(os.path.join(TOP, "packaging", "docker", "Dockerfile")) as f:
        dockerfile = f.read()
    admin = re.search(r"^admin:\n  address: (\S+)$", conf, re.M).group(1)
    assert re.search(rf"^ENV MERIDIAN_ADMIN={re.escape(admin)}$", dockerfile, re.M), admin
    port = re.search(r"address: 0\.0\.0\.0:(\d+)", conf).group(1)
    assert re.search(rf"^EXPOSE .*\b{port}/tcp\b", dockerfile, re.M), port


def test_shellcheck_docker_scripts():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed")
    d = os.path.join(TOP, "packaging", "docker")
    r = subprocess.run(["shellcheck", os.path.join(d, "test.sh"),
                        os.path.join(d, "healthcheck.sh")], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout
