"""``auto``: ``direct`` first; a JavaScript shell (scripts, next to no text) is rendered by ``browser``.

Deciding costs one lxml parse of the document (no second extraction): the text
of the body outside scripts, styles and page furniture (navigation, header,
footer, asides, forms) is measured, and a document with scripts whose text is
shorter than ``auto_min_chars`` is handed to the browser, which renders that
same document (it is not fetched twice). The browser starts only when a first
page needs it; a page it cannot render (a crash, its time budget) is returned as
``direct`` read it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import replace

import anyio

from safe_io.fetch_protocol import FetchedPage
from safe_io.fetcher import FetchError, GuardedFetcher
from search_tools.extract import HTML_TYPES, sniff_media_type
from search_tools.fetchers.browser import BrowserFetcher
from search_tools.fetchers.browser import create as create_browser
from search_tools.fetchers.registry import FetcherConfig

logger = logging.getLogger(__name__)
_FURNITURE = ("script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "svg")


def looks_like_shell(html: bytes | str, min_chars: int) -> bool:
    """True when ``html`` has scripts and fewer than ``min_chars`` characters of body text outside page furniture."""
    import lxml.html
    from lxml import etree

    try:
        root = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return False
    if root.find(".//script") is None:
        return False
    body = root.find(".//body")
    if body is None:
        return True
    etree.strip_elements(body, *_FURNITURE, with_tail=False)
    length = 0
    for text in body.itertext():
        length += len(text.strip())
        if length >= min_chars:
            return False
    return True


class AutoFetcher:
    """``direct`` for server-rendered pages, ``browser`` for JavaScript shells."""

    name = "auto"

    def __init__(self, direct: GuardedFetcher, browser: BrowserFetcher, *, min_chars: int = 200) -> None:
        self.direct = direct
        self.browser = browser
        self.min_chars = min_chars

    @property
    def guard_key(self) -> str:
        return f"{self.direct.guard_key};fetcher=auto"

    async def fetch(
        self, url: str, *, accept: Collection[str] | None = None, max_bytes: int | None = None
    ) -> FetchedPage:
        page = await self.direct.fetch(url, accept=accept, max_bytes=max_bytes)
        if sniff_media_type(page) in HTML_TYPES and await anyio.to_thread.run_sync(
            looks_like_shell, page.body, self.min_chars
        ):
            try:
                return await self.browser.render(page)
            except FetchError as exc:  # a page the browser cannot render is read as direct read it
                logger.info("auto: rendering %s failed (%s); using the page as fetched", page.url, exc)
        return replace(page, fetched_with="direct")

    async def aclose(self) -> None:
        await self.browser.aclose()


def create(config: FetcherConfig) -> AutoFetcher:
    return AutoFetcher(config.direct, create_browser(config), min_chars=config.fetch.auto_min_chars)
