"""The safe fetcher against the loopback web: guard, redirects, robots, caps, deadlines, per-host limit."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import anyio
import httpcore
import httpx
import pytest

from safe_io.fetcher import (
    BlockedAddress,
    ConnectionFailed,
    FetchTimeout,
    GuardedFetcher,
    GuardedNetworkBackend,
    GuardedTransport,
    HttpStatusError,
    InvalidUrl,
    RobotsDisallowed,
    TooLarge,
    TooManyRedirects,
    UnsupportedContentType,
    check_peer,
)
from safe_io.netguard import AddressPolicy, AddressRefused
from tests.browse.conftest import Web, make_fetcher

pytestmark = pytest.mark.anyio


async def test_fetches_a_page_with_a_truthful_user_agent(fetcher: GuardedFetcher, web: Web) -> None:
    page = await fetcher.fetch(web.url("/article"))
    assert page.status == 200 and page.media_type == "text/html"
    assert b"Bellmoor" in page.body
    ua = await fetcher.fetch(web.url("/ua"))
    assert ua.body.decode() == fetcher.user_agent and ua.body.startswith(b"Gen-Searcher/")


def hostile_urls(web: Web) -> list[str]:
    port = web.internal_base.rsplit(":", 1)[1]
    return [
        f"{web.internal_base}/secret",
        f"http://localhost:{port}/secret",
        f"http://LOCALHOST.:{port}/secret",
        f"http://2130706433:{port}/secret",
        f"http://0177.0.0.1:{port}/secret",
        f"http://0x7f.1:{port}/secret",
        f"http://0x7f000001:{port}/secret",
        f"http://127.1:{port}/secret",
        f"http://127.0.0.1.:{port}/secret",
        f"http://[::1]:{port}/secret",
        f"http://[::ffff:127.0.0.1]:{port}/secret",
        f"http://[::ffff:7f00:1]:{port}/secret",
        f"http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/secret",
        f"http://[::127.0.0.1]:{port}/secret",
        f"http://[2002:7f00:1::1]:{port}/secret",
        f"http://[64:ff9b::127.0.0.1]:{port}/secret",
        f"http://[fe80::1%25lo]:{port}/secret",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://100.64.0.1/",
        "http://10.0.0.1/",
        "http://192.168.0.1/",
        f"http://0.0.0.0:{port}/",
        "http://224.0.0.1/",
    ]


async def test_hostile_urls_are_refused_in_every_spelling(fetcher: GuardedFetcher, web: Web) -> None:
    before = sum(web.internal_hits.values())
    for url in hostile_urls(web):
        with pytest.raises((BlockedAddress, InvalidUrl)) as info:
            await fetcher.fetch(url)
        assert "refused" in str(info.value) or "invalid" in str(info.value), url
    assert sum(web.internal_hits.values()) == before  # the internal service was never contacted


async def test_redirects_to_internal_addresses_are_refused_at_every_hop(fetcher: GuardedFetcher, web: Web) -> None:
    before = sum(web.internal_hits.values())
    for target in hostile_urls(web)[:12]:
        with pytest.raises((BlockedAddress, InvalidUrl), match=r"redirect from .*refused"):
            await fetcher.fetch(web.url("/redirect?to=" + quote(target, safe="")))
    # a redirect that first stays on the allowed host, then jumps inside
    inner = web.url("/redirect?to=" + quote(f"{web.internal_base}/secret", safe=""))
    with pytest.raises(BlockedAddress):
        await fetcher.fetch(web.url("/redirect?code=301&to=" + quote(inner, safe="")))
    assert sum(web.internal_hits.values()) == before


async def test_redirect_to_other_schemes_is_refused(fetcher: GuardedFetcher, web: Web) -> None:
    for target in ["file:///etc/passwd", "gopher://127.0.0.1:70/", "ftp://example.com/x"]:
        with pytest.raises(InvalidUrl, match="only http and https"):
            await fetcher.fetch(web.url("/redirect?to=" + quote(target, safe="")))


async def test_names_resolving_to_internal_addresses_are_refused_at_connect(web: Web) -> None:
    answers = {
        "innocent.test": ["127.0.0.1"],
        "mixed.test": ["93.184.216.34", "127.0.0.1"],
        "mapped.test": ["::ffff:127.0.0.1"],
        "metadata.test": ["169.254.169.254"],
    }

    async def resolver(host: str, port: int) -> list[str]:
        return answers[host]

    f = make_fetcher(web, resolver=resolver, respect_robots=False)
    try:
        port = web.internal_base.rsplit(":", 1)[1]
        for host in answers:
            with pytest.raises(BlockedAddress, match=f"{host} resolves to"):
                await f.fetch(f"http://{host}:{port}/secret")
    finally:
        await f.aclose()


async def test_a_name_resolving_to_the_allowed_address_connects_to_that_address(web: Web) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    f = make_fetcher(web, resolver=resolver, respect_robots=False)
    try:
        page = await f.fetch(f"http://pinned.test:{web.port}/article")
        assert b"Bellmoor" in page.body
    finally:
        await f.aclose()


async def test_allow_private_networks_lifts_the_guard(web: Web) -> None:

    f = make_fetcher(web, policy=AddressPolicy(allow_private=True), respect_robots=False)
    try:
        page = await f.fetch(f"{web.internal_base}/open")
        assert b"internal credentials" in page.body
    finally:
        await f.aclose()


async def test_redirect_chains_stop_after_the_limit(fetcher: GuardedFetcher, web: Web) -> None:
    page = await fetcher.fetch(web.url("/chain/5"))
    assert b"End of the chain" in page.body and len(page.redirects) == 5
    with pytest.raises(TooManyRedirects, match="more than 5 redirects"):
        await fetcher.fetch(web.url("/chain/6"))


async def test_robots_rules_are_honoured_and_cached(web: Web) -> None:
    f = make_fetcher(web)
    try:
        before = web.hits["/robots.txt"]
        private_before = web.hits["/private/page"]  # the test web is shared by the whole session
        with pytest.raises(RobotsDisallowed, match=r"robots\.txt .* disallows"):
            await f.fetch(web.url("/private/page"))
        with pytest.raises(RobotsDisallowed):
            await f.fetch(web.url("/no-gen/page"))  # a group naming our agent
        await f.fetch(web.url("/article"))
        await f.fetch(web.url("/tides.txt"))  # disallowed only for other agents: our own group applies
        assert web.hits["/robots.txt"] - before == 1  # one robots.txt fetch per origin
        assert web.hits["/private/page"] == private_before
    finally:
        await f.aclose()
    unguarded = make_fetcher(web, respect_robots=False)
    try:
        assert b"Guarded page" in (await unguarded.fetch(web.url("/private/page"))).body
    finally:
        await unguarded.aclose()


async def test_a_robots_server_error_disallows_the_site(web: Web) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from tests.support.loopback import serve_app

    async def broken(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse("oops", status_code=503)

    async def page(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse("hello")

    app = Starlette(routes=[Route("/robots.txt", broken), Route("/page", page)])
    with serve_app(app) as base:
        port = int(base.rsplit(":", 1)[1])
        f = make_fetcher(web, policy=AddressPolicy.from_strings(False, [f"127.0.0.1:{port}"]))
        try:
            with pytest.raises(RobotsDisallowed, match="HTTP 503"):
                await f.fetch(base + "/page")
        finally:
            await f.aclose()


async def test_slow_responses_time_out(web: Web) -> None:
    f = make_fetcher(web, timeout_s=1.0)
    try:
        # The bound only tells "the deadline ended it" from "it never ends"; it is not a speed test.
        with anyio.fail_after(60):
            with pytest.raises(FetchTimeout, match="timed out"):
                await f.fetch(web.url("/slow"))
            # an endless trickle keeps every read short; the total deadline still ends it
            with pytest.raises(FetchTimeout, match="timed out after 1 s"):
                await f.fetch(web.url("/drip"))
    finally:
        await f.aclose()


async def test_byte_caps(fetcher: GuardedFetcher, web: Web) -> None:
    with pytest.raises(TooLarge, match="over the limit"):
        await fetcher.fetch(web.url("/huge"))  # refused from Content-Length alone
    # Streamed: stopped at the cap (decoded bytes). Were the cap not enforced, the endless body
    # would run into the fetcher's total deadline and fail with FetchTimeout, not TooLarge.
    for path in ("/big", "/endless", "/gzip-bomb"):
        with pytest.raises(TooLarge, match="larger than the limit"):
            await fetcher.fetch(web.url(path))


async def test_unwanted_content_types_are_refused_before_reading(fetcher: GuardedFetcher, web: Web) -> None:
    accept = {"text/html", "text/plain", "application/pdf"}
    with pytest.raises(UnsupportedContentType, match="video/mp4"):
        await fetcher.fetch(web.url("/clip.mp4"), accept=accept)
    with pytest.raises(UnsupportedContentType, match="application/zip"):
        await fetcher.fetch(web.url("/archive.zip"), accept=accept)


async def test_http_errors_and_bad_urls(fetcher: GuardedFetcher, web: Web) -> None:
    for code in (404, 410, 500, 503):
        with pytest.raises(HttpStatusError, match=f"HTTP {code}"):
            await fetcher.fetch(web.url(f"/status/{code}"))
    for bad in [
        "",
        "not a url",
        "ftp://example.com/",
        "file:///etc/passwd",
        "http://user:pw@example.com/",
        "http:///x",
    ]:
        with pytest.raises((InvalidUrl, BlockedAddress)):
            await fetcher.fetch(bad)
    with pytest.raises(ConnectionFailed, match="cannot resolve"):
        await fetcher.fetch("http://no-such-host.invalid/")


async def test_per_host_concurrency_is_bounded(web: Web) -> None:
    f = make_fetcher(web, per_host_concurrency=2, respect_robots=False)
    web.in_flight[1] = 0
    try:
        async with anyio.create_task_group() as tg:
            for n in range(6):
                tg.start_soon(f.fetch, web.url(f"/concurrent/{n}"))
    finally:
        await f.aclose()
    assert web.in_flight[1] == 2


class RoutedBackend(httpcore.AsyncNetworkBackend):
    """The network beneath the guard, with a routing rule: connections asked for one address land on another.

    It plays what the guard cannot see from the resolver (a NAT rule, a transparent
    proxy): the sockets are real, connected to the loopback servers of the test web.
    """

    def __init__(self, routes: dict[str, tuple[str, int]]) -> None:
        self.routes = routes
        self.asked: list[str] = []
        self._real = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        self.asked.append(host)
        target_host, target_port = self.routes.get(host, (host, port))
        return await self._real.connect_tcp(target_host, target_port, **kwargs)

    async def sleep(self, seconds: float) -> None:
        await self._real.sleep(seconds)


def guarded_client(backend: GuardedNetworkBackend) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=GuardedTransport(backend), trust_env=False, timeout=3.0)


async def test_the_address_actually_connected_to_is_checked(web: Web) -> None:
    internal_port = int(web.internal_base.rsplit(":", 1)[1])
    policy = AddressPolicy.from_strings(False, [f"127.0.0.1:{web.port}"])

    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]  # public: passes the check before connecting

    # the connection lands on the internal service instead; the request asks for the allowed port,
    # so only the peer's own port tells the two apart
    routed = RoutedBackend({"93.184.216.34": ("127.0.0.1", internal_port)})
    before = sum(web.internal_hits.values())
    async with guarded_client(GuardedNetworkBackend(policy, resolver, inner=routed)) as client:
        with pytest.raises(BlockedAddress, match=r"connection for public\.test reached 127\.0\.0\.1, .*loopback"):
            await client.get(f"http://public.test:{web.port}/secret")
    assert routed.asked == ["93.184.216.34"]
    assert sum(web.internal_hits.values()) == before  # closed before a byte of the request was sent

    # the same route onto the one excepted address:port is let through, so the check reads the real peer
    routed_ok = RoutedBackend({"93.184.216.34": ("127.0.0.1", web.port)})
    async with guarded_client(GuardedNetworkBackend(policy, resolver, inner=routed_ok)) as client:
        response = await client.get(f"http://public.test:{web.port}/article")
        assert response.status_code == 200 and b"Bellmoor" in response.content


def test_peer_checks_on_a_real_socket(web: Web) -> None:
    import socket

    policy = AddressPolicy.from_strings(False, [f"127.0.0.1:{web.port}"])
    internal_port = int(web.internal_base.rsplit(":", 1)[1])
    with (
        socket.create_connection(("127.0.0.1", internal_port)) as sock,
        pytest.raises(AddressRefused, match=r"reached 127\.0\.0\.1, which is a loopback address"),
    ):
        check_peer(sock.getpeername(), policy, "example.test")
    with socket.create_connection(("127.0.0.1", web.port)) as sock:
        check_peer(sock.getpeername(), policy, "example.test")  # the excepted address:port
    check_peer(("93.184.216.34", 443), policy, "example.test")
    check_peer(("::ffff:127.0.0.1", 80, 0, 0), AddressPolicy(allow_private=True), "example.test")
    with pytest.raises(AddressRefused, match="cannot verify"):
        check_peer(None, policy, "example.test")
    with pytest.raises(AddressRefused, match="IPv4-mapped"):
        check_peer(("::ffff:127.0.0.1", 80, 0, 0), policy, "example.test")


async def test_dns_rebinding_is_refused(web: Web) -> None:
    """The first lookup answers a public address, every later one a private address."""
    lookups: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["93.184.216.34"] if len(lookups) == 1 else ["10.0.0.7"]

    policy = AddressPolicy.from_strings(False, [f"127.0.0.1:{web.port}"])
    routed = RoutedBackend({"93.184.216.34": ("127.0.0.1", web.port)})  # "the internet" is the test web
    backend = GuardedNetworkBackend(policy, rebinding, inner=routed)
    async with guarded_client(backend) as first:
        response = await first.get(f"http://rebind.test:{web.port}/article")
        assert b"Bellmoor" in response.content
    async with guarded_client(backend) as second:  # a fresh connection looks the name up again
        with pytest.raises(BlockedAddress, match=r"rebind\.test resolves to 10\.0\.0\.7, which is a private address"):
            await second.get(f"http://rebind.test:{web.port}/article")
    assert lookups == ["rebind.test", "rebind.test"]
    assert routed.asked == ["93.184.216.34"]  # the connection went to the vetted answer, never by name
