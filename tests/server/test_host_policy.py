"""Which Host / Origin values the HTTP app accepts (DNS-rebinding protection)."""

from __future__ import annotations

from gen_searcher_core.host_policy import HostPolicy


def test_loopback_names_on_any_port() -> None:
    policy = HostPolicy("127.0.0.1", [])
    for host in ("127.0.0.1:8000", "localhost:1", "LOCALHOST", "[::1]:8000", "127.0.0.1"):
        assert policy.allows_host(host), host
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example:80", "", None):
        assert not policy.allows_host(host), host


def test_bound_host_and_extras() -> None:
    policy = HostPolicy("10.0.0.5", ["search.internal", "lb.example:8443", "[fd00::1]"])
    assert policy.allows_host("10.0.0.5:8000")
    assert policy.allows_host("search.internal") and policy.allows_host("Search.Internal:9000")
    assert policy.allows_host("lb.example:8443") and not policy.allows_host("lb.example:80")
    assert policy.allows_host("[fd00::1]:8000")
    assert not policy.allows_host("other.example")


def test_wildcard_bind_adds_no_name_and_star_allows_all() -> None:
    assert not HostPolicy("0.0.0.0", []).allows_host("0.0.0.0:8000")
    assert not HostPolicy("::", []).allows_host("example.org")
    anything = HostPolicy("0.0.0.0", ["*"])
    assert anything.allows_host("whatever.example:1") and anything.allows_origin("http://whatever.example")


def test_origins() -> None:
    policy = HostPolicy("127.0.0.1", ["app.example"])
    assert policy.allows_origin(None) and policy.allows_origin("")
    assert policy.allows_origin("http://localhost:3000") and policy.allows_origin("https://app.example")
    assert not policy.allows_origin("http://evil.example")
    assert not policy.allows_origin("null")
    assert not policy.allows_origin("file://localhost")
