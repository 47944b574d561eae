"""``auto``: direct for server-rendered pages (the browser never starts: the metrics say so), the browser for
JavaScript shells, with the rendered page cached."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from search_tools.fetchers.auto import looks_like_shell
from tests.browse import content
from tests.browse.browser_support import allowed, js_web_server  # noqa: F401 - a fixture
from tests.browse.conftest import Web, browse_settings, text_of
from tests.browse.js_web import KEEP, JsWeb

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def server(settings: Any) -> AsyncIterator[tuple[Client, Any]]:
    from mcp_server.server import build_server
    from mcp_server.services import open_services

    async with open_services(settings) as services, Client(build_server(services)) as client:
        yield client, services


def events(services: Any, event: str) -> float:
    return services.metrics.value("gen_searcher_fetcher_events_total", {"fetcher": "browser", "event": event})


def settings_for(tmp_path: Path, web: Web, js_web: JsWeb, backend: str) -> Any:
    return browse_settings(tmp_path, web, fetch={"backend": backend, "allowed_addresses": allowed(web, js_web)})


def test_the_shell_test_tells_shells_from_server_rendered_pages() -> None:
    assert not looks_like_shell(content.article_html().encode(), 200)
    assert not looks_like_shell(b"<html><body><p>no scripts at all</p></body></html>", 200)
    shell = b"<html><body><nav>Home News Shop About</nav><div id=app></div><script src=app.js></script></body></html>"
    assert looks_like_shell(shell, 200)


async def test_server_rendered_pages_never_start_the_browser(tmp_path: Path, web: Web, js_web: JsWeb) -> None:
    async with server(settings_for(tmp_path, web, js_web, "auto")) as (client, services):
        for url in (web.url("/article"), js_web.url("/server-rendered"), web.url("/tides.txt")):
            result = await client.call_tool("browse", {"url": url, "goal": "history"})
            assert not result.is_error, text_of(result)
            assert result.structured_content["fetched_with"] == "direct"
        assert events(services, "browser_launched") == 0 and events(services, "rendered") == 0
        assert services.browser.fetcher.browser.launches == 0
        assert b'event="browser_launched"' not in services.metrics.render()


@pytest.mark.slow
async def test_a_javascript_shell_is_rendered_and_the_rendered_page_cached(
    tmp_path: Path, web: Web, js_web: JsWeb
) -> None:
    async with server(settings_for(tmp_path / "direct", web, js_web, "direct")) as (client, _):
        plain = await client.call_tool("browse", {"url": js_web.url("/shell"), "goal": "history"})
        assert KEEP[0] not in text_of(plain)  # what an httpx fetcher sees: an empty shell
    async with server(settings_for(tmp_path, web, js_web, "auto")) as (client, services):
        first = await client.call_tool("browse", {"url": js_web.url("/shell"), "goal": "history"})
        again = await client.call_tool("browse", {"url": js_web.url("/shell"), "goal": "the lens"})
        for result in (first, again):
            assert not result.is_error, text_of(result)
            assert result.structured_content["fetched_with"] == "browser"
            for snippet in KEEP:
                assert snippet in result.structured_content["content"]
        assert events(services, "browser_launched") == 1
        assert events(services, "rendered") == 1  # the second goal was served from the cached rendered page
        metrics = services.metrics.render().decode()
        assert 'gen_searcher_fetcher_events_total{event="rendered",fetcher="browser"} 1.0' in metrics


@pytest.mark.slow
async def test_a_shell_the_browser_cannot_render_is_returned_as_direct_read_it(web: Web, js_web: JsWeb) -> None:
    from search_tools.fetchers.auto import AutoFetcher
    from tests.browse.browser_support import make_browser, make_direct

    direct = make_direct(web, js_web, respect_robots=False)
    auto = AutoFetcher(direct, make_browser(direct, web, js_web, js_heap_mb=64, page_timeout_s=6.0, settle_s=3.0))
    try:
        crashed = await auto.fetch(js_web.url("/crash"))  # a shell whose script exhausts the heap
        assert crashed.fetched_with == "direct" and b"Loading" in crashed.body
        rendered = await auto.fetch(js_web.url("/shell"))  # and the browser still serves the next one
        assert rendered.fetched_with == "browser" and KEEP[0].encode() in rendered.body
    finally:
        await auto.aclose()
        await direct.aclose()
