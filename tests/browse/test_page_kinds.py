"""Every page kind of ``page_kinds`` (timers, progressive rendering, shadow DOM, lazy sections, hydration, an SPA
route, a consent banner, chrome in plain divs, a teaser; static pages wrapped in form, header, aside, noscript):
the text each backend reads, ``auto``'s choice, and ``direct``'s flag on shells."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from search_tools.browse import Browser
from search_tools.extract import extract_html
from search_tools.fetchers.auto import AutoFetcher
from search_tools.fetchers.browser import BrowserFetcher
from search_tools.js_shell import looks_like_shell, shell_signal
from tests.browse import content
from tests.browse.browser_support import js_web_server, make_browser, make_direct  # noqa: F401 - a fixture
from tests.browse.conftest import Web
from tests.browse.js_web import JsWeb
from tests.browse.page_kinds import KINDS, Kind, kind_path, pages

pytestmark = pytest.mark.anyio
JS_KINDS = [kind for kind in KINDS if kind.javascript]


def test_the_shell_test_renders_every_javascript_kind_and_no_static_one() -> None:
    html = pages()
    false_renders = [k.name for k in KINDS if not k.javascript and looks_like_shell(html[k.name], 200)]
    misses = [k.name for k in KINDS if k.javascript and not looks_like_shell(html[k.name], 200)]
    assert (false_renders, misses) == ([], [])
    assert shell_signal(content.article_html(), 200) is None
    assert shell_signal(b"<html><body><p>no scripts at all</p></body></html>", 200) is None
    assert "empty" in (shell_signal(html["consent"], 200) or "")  # a banner's text does not hide an empty root
    assert shell_signal(html["teaser"], 200) is not None  # nor does a server-rendered teaser


def test_hostile_markup_is_tested_in_linear_time() -> None:
    deep = b"<html><head><script>var a = 1;</script></head><body><div class='" + b"nav-" * 50_000 + b"'>"
    deep += b"<div>" * 20_000 + b"</body></html>"
    assert shell_signal(deep, 200) is not None  # no recursion error, no regex blow-up: an answer


@dataclass
class Readers:
    browser: BrowserFetcher
    auto: AutoFetcher


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def readers(web: Web, js_web: JsWeb) -> AsyncIterator[Readers]:
    direct = make_direct(web, js_web, respect_robots=False)
    browser = make_browser(direct, web, js_web, settle_s=5.0)
    try:
        yield Readers(browser, AutoFetcher(direct, browser))
    finally:
        await browser.aclose()
        await direct.aclose()


@pytest.fixture
async def direct_browse(web: Web, js_web: JsWeb) -> AsyncIterator[Browser]:
    """The browse service on ``direct``, one per test: anyio's extraction workers end with the test task that
    started them (in a server they live as long as its event loop)."""
    direct = make_direct(web, js_web, respect_robots=False)
    try:
        yield Browser(direct)
    finally:
        await direct.aclose()


def missing(text: str, kind: Kind) -> list[str]:
    return [sentence[:40] for sentence in kind.expected if sentence not in text]


@pytest.mark.parametrize("kind", JS_KINDS, ids=lambda k: k.name)
async def test_direct_flags_a_javascript_kind_it_cannot_read(direct_browse: Browser, js_web: JsWeb, kind: Kind) -> None:
    try:
        result = await direct_browse.browse(js_web.url(kind_path(kind)), "history")
    except Exception as exc:  # noqa: BLE001 - a shell with no text at all: the error says what it is
        assert "JavaScript shell" in str(exc) and "BACKEND=auto" in str(exc)
        return
    assert missing(result["content"], kind)  # direct does not see the article...
    assert result["fetched_with"] == "direct" and result["likely_js_shell"] is True  # ...and says so


async def test_direct_does_not_flag_static_pages(direct_browse: Browser, js_web: JsWeb) -> None:
    for kind in (k for k in KINDS if not k.javascript):
        result = await direct_browse.browse(js_web.url(kind_path(kind)), "history")
        assert result["likely_js_shell"] is False and not missing(result["content"], kind), kind.name


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
async def test_auto_and_the_browser_read_every_kind_whole(readers: Readers, js_web: JsWeb, kind: Kind) -> None:
    url = js_web.url(kind_path(kind))
    page = await readers.auto.fetch(url)
    assert page.fetched_with == ("browser" if kind.javascript else "direct")
    assert missing(extract_html(page.body, page.url).text, kind) == []
    if kind.javascript:  # auto's render is the browser's: one render per kind keeps the suite short
        return
    rendered = await readers.browser.fetch(url)
    assert rendered.fetched_with == "browser"
    assert missing(extract_html(rendered.body, rendered.url).text, kind) == [] or kind.name == "in-noscript"
