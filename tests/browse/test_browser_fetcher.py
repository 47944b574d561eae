"""The browser fetcher: a real Chromium rendering pages from loopback servers, with the guard on."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mcp_server.metrics import Metrics
from safe_io.fetcher import BlockedAddress, FetchError, FetchTimeout
from search_tools.extract import extract_html
from search_tools.fetchers.browser import BrowserFetcher
from tests.browse.browser_support import js_web_server, make_browser, make_direct  # noqa: F401 - a fixture
from tests.browse.conftest import Web
from tests.browse.js_web import KEEP, JsWeb

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


class Shared:
    def __init__(self, fetcher: BrowserFetcher, metrics: Metrics) -> None:
        self.fetcher = fetcher
        self.metrics = metrics

    def count(self, event: str) -> float:
        return self.metrics.value("gen_searcher_fetcher_events_total", {"fetcher": "browser", "event": event})


@pytest.fixture(scope="module")
async def shared(web: Web, js_web: JsWeb) -> AsyncIterator[Shared]:
    """One browser for the module's well-behaved pages (Chromium starts once). Subresources: all, so that the
    address guard itself meets every hostile request (the same-site rule is tested in test_browser_bounds)."""
    metrics = Metrics()
    direct = make_direct(web, js_web, respect_robots=False)
    fetcher = make_browser(direct, web, js_web, metrics, max_bytes=3 * 1024 * 1024, subresources="all")
    try:
        yield Shared(fetcher, metrics)
    finally:
        await fetcher.aclose()
        await direct.aclose()


def text(page: Any) -> str:
    return extract_html(page.body, page.url).text


async def test_a_javascript_shell_is_read_after_its_xhr_fills_it(shared: Shared, js_web: JsWeb) -> None:
    page = await shared.fetcher.fetch(js_web.url("/shell"))
    assert page.fetched_with == "browser" and page.media_type == "text/html"
    body = text(page)
    for snippet in KEEP:
        assert snippet in body
    assert js_web.hits["/api/article"] >= 1
    assert shared.count("rendered") >= 1 and shared.fetcher.launches == 1


async def test_content_that_appears_after_a_delay(shared: Shared, js_web: JsWeb) -> None:
    page = await shared.fetcher.fetch(js_web.url("/delayed"))
    assert KEEP[0] in text(page)


async def test_an_infinite_scroll_is_read_a_bounded_number_of_screens(shared: Shared, js_web: JsWeb) -> None:
    before = js_web.hits["/api/items"]
    page = await shared.fetcher.fetch(js_web.url("/scroll"))
    body = text(page)
    assert "Batch 0 entry 0" in body and "Batch 1 entry 0" in body  # the first scroll loaded more
    assert 2 <= js_web.hits["/api/items"] - before <= 1 + shared.fetcher.options.scrolls


async def test_a_page_that_never_settles_is_read_when_the_budget_ends(shared: Shared, js_web: JsWeb) -> None:
    started = time.monotonic()
    page = await shared.fetcher.fetch(js_web.url("/unsettled"))
    assert KEEP[0] in text(page)
    assert time.monotonic() - started < shared.fetcher.options.page_timeout_s  # settle budget, not the page's


async def test_scripts_reaching_for_internal_addresses_get_nothing_and_are_counted(
    shared: Shared, web: Web, js_web: JsWeb
) -> None:
    internal_before = sum(web.internal_hits.values())
    refused_before = shared.count("refused")
    page = await shared.fetcher.fetch(js_web.url("/hostile"))
    assert KEEP[0] in text(page)  # the page's own content is still read
    assert sum(web.internal_hits.values()) == internal_before  # nothing reached the internal service
    assert js_web.hits["/redirect"] >= 1  # the redirect's first hop (own origin) was allowed...
    # ...its hop into the internal service, the metadata address, the private address, the rebinding name,
    # the internal port by XHR, iframe and WebSocket, and two file:// URLs were each refused
    assert shared.count("refused") - refused_before >= 9


async def test_a_redirect_chain_into_a_private_address_is_refused(shared: Shared, web: Web) -> None:
    port = web.internal_base.rsplit(":", 1)[1]
    hop = web.url(f"/redirect?to=http://127.0.0.1:{port}/secret")
    with pytest.raises(BlockedAddress, match="redirect from"):
        await shared.fetcher.fetch(web.url("/redirect?to=") + hop.replace("?", "%3F").replace("=", "%3D"))


async def test_popups_downloads_and_navigations_away_are_off(shared: Shared, js_web: JsWeb) -> None:
    page = await shared.fetcher.fetch(js_web.url("/popups"))
    assert KEEP[0] in text(page) and page.url == js_web.url("/popups")
    for path in ("/popup-target", "/popup-tab", "/file.zip", "/elsewhere"):
        assert js_web.hits[path] == 0, path


async def test_images_and_media_are_not_downloaded(shared: Shared, js_web: JsWeb) -> None:
    page = await shared.fetcher.fetch(js_web.url("/pictures"))
    assert KEEP[0] in text(page)
    assert js_web.hits["/photo.jpg"] == 0 and js_web.hits["/clip.mp4"] == 0


async def test_a_page_over_its_byte_budget_is_cut_off_and_still_read(shared: Shared, js_web: JsWeb) -> None:
    before = js_web.hits["/api/blob"]
    page = await shared.fetcher.fetch(js_web.url("/heavy"))
    assert KEEP[0] in text(page)
    assert js_web.hits["/api/blob"] - before <= 6  # asked for six megabytes; the budget is three


async def test_non_html_documents_are_returned_as_direct_read_them(shared: Shared, web: Web) -> None:
    page = await shared.fetcher.fetch(web.url("/tides.txt"))
    assert page.fetched_with == "direct" and page.body.startswith(b"Tide table")


# -- robustness: each test runs its own browser -----------------------------------------------------------


@pytest.fixture
async def own(web: Web, js_web: JsWeb) -> AsyncIterator[Shared]:
    metrics = Metrics()
    direct = make_direct(web, js_web, respect_robots=False)
    fetcher = make_browser(direct, web, js_web, metrics, js_heap_mb=64, page_timeout_s=6.0, settle_s=3.0)
    try:
        yield Shared(fetcher, metrics)
    finally:
        await fetcher.aclose()
        await direct.aclose()
        assert fetcher.pid is None


async def test_a_page_that_crashes_the_renderer_fails_alone(own: Shared, js_web: JsWeb) -> None:
    with pytest.raises(FetchError, match=r"crashed|did not finish"):
        await own.fetcher.fetch(js_web.url("/crash"))
    page = await own.fetcher.fetch(js_web.url("/shell"))  # the same browser serves the next page
    assert KEEP[0] in text(page)


async def test_a_hung_page_ends_at_its_budget(own: Shared, js_web: JsWeb) -> None:
    with pytest.raises(FetchTimeout, match="did not finish rendering"):
        await own.fetcher.fetch(js_web.url("/spin"))
    page = await own.fetcher.fetch(js_web.url("/shell"))
    assert KEEP[0] in text(page)


async def test_a_crashed_browser_is_started_again(own: Shared, js_web: JsWeb) -> None:
    await own.fetcher.fetch(js_web.url("/shell"))
    assert own.fetcher.pid is not None
    os.kill(own.fetcher.pid, signal.SIGKILL)
    page = await own.fetcher.fetch(js_web.url("/shell"))
    assert KEEP[0] in text(page)
    assert own.fetcher.launches == 2 and own.count("browser_restarted") == 1


async def test_a_hung_browser_is_killed_and_started_again(own: Shared, js_web: JsWeb) -> None:
    await own.fetcher.fetch(js_web.url("/shell"))
    hung = own.fetcher.pid
    assert hung is not None
    os.kill(hung, signal.SIGSTOP)
    try:
        with pytest.raises(FetchTimeout):
            await own.fetcher.fetch(js_web.url("/shell"))
        assert own.count("browser_killed") == 1
    finally:
        try:
            os.kill(hung, signal.SIGCONT)
        except ProcessLookupError:
            pass
    page = await own.fetcher.fetch(js_web.url("/shell"))
    assert KEEP[0] in text(page) and own.fetcher.launches == 2
