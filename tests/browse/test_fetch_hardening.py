"""Hostile responses the fetcher must survive: stacked compression bombs, odd encodings, redirects to
script or data URLs, and a robots.txt that never answers. Each is served by a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import collections
import functools
import gzip
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from safe_io.fetcher import ConnectionFailed, GuardedFetcher, InvalidUrl, RobotsDisallowed, TooLarge
from safe_io.netguard import AddressPolicy
from tests.browse import content
from tests.browse.conftest import Web, browse_settings, text_of, tool_client
from tests.support.loopback import serve_app

pytestmark = pytest.mark.anyio

PAGE = b"<html><head><title>Tides</title></head><body><p>High water at 06:12.</p></body></html>"
CAP = 1024 * 1024


@functools.cache
def double_gzip_bomb() -> bytes:
    """256 MiB of zeros, gzipped twice: a few kilobytes on the wire (compressed as it is produced)."""
    inner = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * (1024 * 1024)
    layer = b"".join(inner.compress(zeros) for _ in range(256)) + inner.flush()
    return gzip.compress(layer, 9)


def hostile_app(hits: collections.Counter[str]) -> Starlette:
    async def robots(request: Request) -> Response:
        hits["robots"] += 1
        return PlainTextResponse("User-agent: *\nAllow: /\n")

    async def encoded(request: Request) -> Response:
        kind = request.path_params["kind"]
        bodies: dict[str, tuple[bytes, str]] = {
            "double-bomb": (double_gzip_bomb(), "gzip, gzip"),
            "triple": (gzip.compress(gzip.compress(gzip.compress(PAGE))), "gzip, gzip, gzip"),
            "brotli": (b"\x1b\x03\x00\xf8", "br"),
            "double": (gzip.compress(gzip.compress(PAGE)), "gzip, gzip"),
            "deflate-zlib": (zlib.compress(PAGE), "deflate"),
            "deflate-raw": (zlib.compress(PAGE)[2:-4], "deflate"),
            "multi-member": (gzip.compress(PAGE[:40]) + gzip.compress(PAGE[40:]), "gzip"),
            "corrupt": (b"\x1f\x8b\x08\x00garbage that is not deflate data", "gzip"),
        }
        body, encoding = bodies[kind]
        return Response(body, media_type="text/html", headers={"content-encoding": encoding})

    async def bomb_pdf(request: Request) -> Response:
        return Response(content.pdf_document([b" " * (100 * 1024 * 1024)], flate=True), media_type="application/pdf")

    async def article(request: Request) -> Response:
        return HTMLResponse(content.article_html())

    async def redirect(request: Request) -> Response:
        target = request.query_params.get("to") or "data:text/html;base64," + "A" * 70_000  # over a URL's length
        return Response(status_code=302, headers={"location": target})

    return Starlette(
        routes=[
            Route("/robots.txt", robots),
            Route("/encoded/{kind}", encoded),
            Route("/redirect", redirect),
            Route("/bomb.pdf", bomb_pdf),
            Route("/article", article),
        ]
    )


def silent_robots_app(hits: collections.Counter[str]) -> Starlette:
    """An origin whose robots.txt never answers (until the client gives up), and a page."""

    async def robots(request: Request) -> Response:
        hits["robots"] += 1
        for _ in range(600):
            if await request.is_disconnected():
                break
            await asyncio.sleep(0.1)
        return PlainTextResponse("User-agent: *\nAllow: /\n")

    async def page(request: Request) -> Response:
        hits["page"] += 1
        return HTMLResponse(PAGE)

    return Starlette(routes=[Route("/robots.txt", robots), Route("/page", page)])


@pytest.fixture(scope="module")
def hostile() -> Iterator[tuple[str, collections.Counter[str]]]:
    hits: collections.Counter[str] = collections.Counter()
    with serve_app(hostile_app(hits)) as base:
        yield base, hits


def fetcher_for(base: str, **options: Any) -> GuardedFetcher:
    port = base.rsplit(":", 1)[1]
    settings: dict[str, Any] = dict(
        user_agent="Gen-Searcher/0.1 (test)",
        policy=AddressPolicy.from_strings(False, [f"127.0.0.1:{port}"]),
        timeout_s=20.0,
        robots_timeout_s=10.0,  # generous on a loaded machine; the robots test passes its own
        max_bytes=CAP,
    )
    settings.update(options)
    return GuardedFetcher(**settings)


@pytest.fixture
async def fetcher(hostile: tuple[str, collections.Counter[str]]) -> AsyncIterator[GuardedFetcher]:
    f = fetcher_for(hostile[0])
    try:
        yield f
    finally:
        await f.aclose()


async def test_a_double_gzip_bomb_stops_at_the_cap_without_inflating(
    fetcher: GuardedFetcher, hostile: tuple[str, collections.Counter[str]]
) -> None:
    base, _ = hostile
    double_gzip_bomb()  # built before measuring
    tracemalloc.start()
    try:
        for _ in range(3):
            with pytest.raises(TooLarge, match=r"larger than the limit .* once decompressed"):
                await fetcher.fetch(base + "/encoded/double-bomb")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Decoded in bounded pieces: the peak stays near the 1 MiB cap, not the bomb's 256 MiB.
    assert peak < 32 * 1024 * 1024, f"peak traced memory {peak} bytes"


async def test_stacked_and_unknown_encodings_are_refused_clearly(
    fetcher: GuardedFetcher, hostile: tuple[str, collections.Counter[str]]
) -> None:
    base, _ = hostile
    with pytest.raises(ConnectionFailed, match="3 stacked content encodings"):
        await fetcher.fetch(base + "/encoded/triple")
    with pytest.raises(ConnectionFailed, match="unsupported content encoding 'br'"):
        await fetcher.fetch(base + "/encoded/brotli")
    with pytest.raises(ConnectionFailed, match=r"could not decode .*corrupt gzip data"):
        await fetcher.fetch(base + "/encoded/corrupt")


async def test_ordinary_encodings_decode_exactly(
    fetcher: GuardedFetcher, hostile: tuple[str, collections.Counter[str]]
) -> None:
    base, _ = hostile
    for kind in ("double", "deflate-zlib", "deflate-raw", "multi-member"):
        page = await fetcher.fetch(base + f"/encoded/{kind}")
        assert page.body == PAGE, kind


@pytest.mark.parametrize(
    "target",
    [
        "javascript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "",  # the server's own: a data: URL longer than any URL may be
        "javascript:a%01b",
    ],
)
async def test_redirects_to_script_and_data_urls_are_clear_refusals(
    fetcher: GuardedFetcher, hostile: tuple[str, collections.Counter[str]], target: str
) -> None:
    base, _ = hostile
    from urllib.parse import quote

    with pytest.raises(InvalidUrl, match="redirect from") as caught:
        await fetcher.fetch(base + "/redirect?to=" + quote(target, safe=""))
    message = str(caught.value)
    assert any(why in message for why in ("only http and https", "not a valid http(s) URL", "invalid redirect target"))


async def test_a_redirect_target_with_control_characters_is_a_clear_refusal(
    fetcher: GuardedFetcher, hostile: tuple[str, collections.Counter[str]]
) -> None:
    base, _ = hostile
    with pytest.raises(InvalidUrl, match=r"redirect from .*(invalid redirect target|not a valid http\(s\) URL)"):
        await fetcher.fetch(base + "/redirect?to=" + "javascript:a%01b".replace("%01", "%2501"))


async def test_a_robots_txt_that_never_answers_fails_fast_names_robots_and_is_remembered() -> None:
    hits: collections.Counter[str] = collections.Counter()
    with serve_app(silent_robots_app(hits)) as base:
        fetcher = fetcher_for(base, timeout_s=6.0, robots_timeout_s=1.0)
        try:
            # The bound tells "ended by the robots deadline" from "hangs"; it is not a speed test.
            with anyio.fail_after(3 * 6.0):
                with pytest.raises(RobotsDisallowed, match=r"robots\.txt of .* could not be read") as first:
                    await fetcher.fetch(base + "/page")
                with pytest.raises(RobotsDisallowed, match=r"robots\.txt") as second:
                    await fetcher.fetch(base + "/page")
        finally:
            await fetcher.aclose()
    assert "no answer within 1 s" in str(first.value)
    assert str(second.value) == str(first.value)
    assert hits["robots"] == 1  # the failure is cached: the second fetch did not wait on robots.txt again
    assert hits["page"] == 0


async def test_the_browse_tool_answers_each_hostile_page_with_a_clear_refusal_and_keeps_serving(
    hostile: tuple[str, collections.Counter[str]], web: Web, tmp_path: Any
) -> None:
    base, _ = hostile
    port = base.rsplit(":", 1)[1]
    cases = {
        base + "/encoded/double-bomb": "once decompressed",
        base + "/encoded/triple": "stacked content encodings",
        base + "/bomb.pdf": "decompression bomb",
        base + "/redirect?to=javascript%3Aalert(1)": "redirect from",
        base + "/redirect?to=data%3Atext%2Fhtml%2C%3Cb%3Ex%3C%2Fb%3E": "redirect from",
        base + "/redirect": "redirect from",  # a data: URL longer than a URL may be
    }
    settings = browse_settings(tmp_path, web, fetch={"allowed_addresses": [f"127.0.0.1:{port}"]})
    async with tool_client(settings) as client:
        for url, expected in cases.items():
            result = await client.call_tool("browse", {"url": url, "goal": "anything"})
            message = text_of(result)
            assert result.is_error, url
            assert message.startswith("browse failed:") and expected in message, (url, message)
            assert "internal error" not in message
        ok = await client.call_tool("browse", {"url": base + "/article", "goal": "the lighthouse"})
        assert not ok.is_error, text_of(ok)
        assert "Bellmoor" in text_of(ok)
