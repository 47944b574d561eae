"""The browser bounded: windows however opened are closed and counted, a renderer over its memory bound is killed
(memory outside the JavaScript heap included), the process count returns to its idle size after each call, and a
page's third-party and tracker requests never leave the browser. Pages are served by the test on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psutil
import pytest

from mcp_server.metrics import Metrics
from safe_io.fetcher import FetchError
from search_tools.extract import extract_html
from search_tools.fetchers.browser import BrowserFetcher
from search_tools.fetchers.subresources import SubresourceRule, site_of
from tests.browse.browser_support import js_web_server, make_browser, make_direct  # noqa: F401 - a fixture
from tests.browse.conftest import Web
from tests.browse.js_web import KEEP, JsWeb

pytestmark = pytest.mark.anyio


def test_the_subresource_rule_of_each_mode() -> None:
    assert site_of("news.bbc.co.uk") == "bbc.co.uk" and site_of("127.0.0.1") == "127.0.0.1"
    same = SubresourceRule.for_document("same-site", "https://www.example.com/story")
    assert same.refusal("https://static.example.com/app.js") is None
    assert "third party" in (same.refusal("https://cdn.other.net/lib.js") or "")
    assert "tracker" in (same.refusal("https://www.google-analytics.com/collect") or "")
    assert same.refusal("data:text/plain,hi") is None
    everything = SubresourceRule.for_document("all", "https://www.example.com/story")
    assert everything.refusal("https://cdn.other.net/lib.js") is None
    assert everything.refusal("wss://stats.g.doubleclick.net/x") is not None
    nothing = SubresourceRule.for_document("none", "https://www.example.com/story")
    assert nothing.refusal("https://www.example.com/api") is not None


class Run:
    def __init__(self, fetcher: BrowserFetcher, metrics: Metrics) -> None:
        self.fetcher, self.metrics = fetcher, metrics

    def count(self, event: str) -> float:
        return self.metrics.value("gen_searcher_fetcher_events_total", {"fetcher": "browser", "event": event})

    def processes(self) -> int:
        """The browser process and every process under it."""
        assert self.fetcher.pid is not None
        return 1 + len(psutil.Process(self.fetcher.pid).children(recursive=True))

    async def settles_to(self, idle: int) -> int:
        """The process count once it is back to ``idle`` (closed renderers exit a moment after), or the last."""
        for _ in range(150):
            count = self.processes()
            if count <= idle:
                return count
            await asyncio.sleep(0.1)
        return self.processes()


@pytest.fixture
async def run(web: Web, js_web: JsWeb, request: pytest.FixtureRequest) -> AsyncIterator[Run]:
    metrics = Metrics()
    direct = make_direct(web, js_web, respect_robots=False)
    options = getattr(request, "param", {})
    fetcher = make_browser(direct, web, js_web, metrics, contexts=1, page_timeout_s=12.0, settle_s=3.0, **options)
    try:
        yield Run(fetcher, metrics)
    finally:
        await fetcher.aclose()
        await direct.aclose()


def text(page: object) -> str:
    return extract_html(page.body, page.url).text  # type: ignore[attr-defined]


@pytest.mark.slow
async def test_every_kind_of_window_is_stopped_counted_and_its_processes_gone(run: Run, js_web: JsWeb) -> None:
    await run.fetcher.fetch(js_web.url("/shell"))
    idle = await run.settles_to(0)  # the count after a call that opened nothing
    page = await run.fetcher.fetch(js_web.url("/popup-storm"))
    assert KEEP[0] in text(page)
    # six target=_blank links (noopener or not) past a capturing click guard, an iframe's window.open, a form
    # target and a loop of named targets: each attempt counted, none opened a window that loaded anything
    assert run.count("popup_blocked") >= 8
    assert js_web.hits["/popup-tab"] == 0 and js_web.hits["/popup-target"] == 0
    assert await run.settles_to(idle) <= idle
    page = await run.fetcher.fetch(js_web.url("/shell"))  # and the next page is read as usual
    assert KEEP[0] in text(page)


@pytest.mark.slow
@pytest.mark.parametrize("run", [{"renderer_memory_mb": 256}], indirect=True)
async def test_a_renderer_holding_memory_outside_the_js_heap_is_killed(run: Run, js_web: JsWeb) -> None:
    await run.fetcher.fetch(js_web.url("/shell"))
    idle = await run.settles_to(0)
    with pytest.raises(FetchError, match="used more than 256 MB"):
        await run.fetcher.fetch(js_web.url("/typed-arrays"))  # typed arrays: 64 MB each, far past the bound
    assert run.count("renderer_killed") >= 1 and run.count("renderer_crashed") == 1
    assert await run.settles_to(idle) <= idle
    page = await run.fetcher.fetch(js_web.url("/shell"))
    assert KEEP[0] in text(page) and run.fetcher.launches == 1  # the browser itself was never at risk


@pytest.mark.slow
@pytest.mark.parametrize("run", [{}, {"subresources": "all"}], indirect=True, ids=["same-site", "all"])
async def test_third_party_and_tracker_requests_never_leave_the_browser(run: Run, js_web: JsWeb) -> None:
    before = {path: js_web.hits[path] for path in ("/third/lib.js", "/third/data.json", "/api/article")}
    page = await run.fetcher.fetch(js_web.url("/third-party"))
    assert KEEP[0] in text(page)  # the same-site XHR that draws the article went through
    assert js_web.hits["/api/article"] > before["/api/article"]
    third = js_web.hits["/third/lib.js"] - before["/third/lib.js"] + js_web.hits["/third/data.json"]
    third -= before["/third/data.json"]
    if run.fetcher.options.subresources == "same-site":
        assert third == 0
        assert run.count("subresource_blocked") >= 4  # script, XHR, tracker, WebSocket (at the proxy)
    else:
        assert third == 2  # another site's script and data load in mode "all"...
        assert run.count("subresource_blocked") >= 1  # ...a known tracker never does
