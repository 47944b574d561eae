"""``auto``: ``direct`` first; a JavaScript shell is rendered by ``browser``.

Deciding costs one lxml parse of the document (no second extraction), in a
thread: :mod:`search_tools.js_shell` says whether the page's text is in its HTML
(main text outside page furniture, an empty application root, a ``<noscript>``
asking for JavaScript, scripts outweighing the text). A shell is handed to the
browser, which renders that same document (it is not fetched twice). The
browser starts only when a first page needs it; a page it cannot render (a
crash, its time budget) is returned as ``direct`` read it.
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
from search_tools.js_shell import looks_like_shell

logger = logging.getLogger(__name__)

__all__ = ["AutoFetcher", "create", "looks_like_shell"]


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
