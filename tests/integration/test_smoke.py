# SPDX-License-Identifier: MIT
"""The shortest path through the proxy: one GET, proxied, with forwarding headers."""
import urllib.request


def test_get_is_proxied_with_forwarding_headers(origins, meridian):
    o = origins("eu-a")
    m = meridian(regions=[("eu-central", [o.address])])
    with urllib.request.urlopen(m.url("/hello?x=1"), timeout=5) as r:
        assert r.status == 200
        assert r.read() == b"eu-a\n"
    rec = o.records()
    assert len(rec) == 1
    assert rec[0]["method"] == "GET" and rec[0]["target"] == "/hello?x=1"
    hdrs = {k.lower(): v for k, v in rec[0]["headers"]}
    assert hdrs["x-forwarded-for"] == "127.0.0.1"
    assert hdrs["x-forwarded-proto"] == "http"
    assert hdrs["x-forwarded-host"] == f"127.0.0.1:{m.port}"
    assert len(hdrs["x-request-id"]) == 32
