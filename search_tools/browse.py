"""``browse``: safe fetch, extraction, then a goal-directed summary or a budgeted slice of the text.

Results are cached through the shared cache: the extracted page per URL (so
continuing with ``offset`` or asking another goal does not refetch), and the
browse result per (url, goal, offset, mode). Both keys include the fetcher's
guard settings, so a page read while private networks were allowed (or robots
ignored) is never served by a server with a stricter guard sharing the cache.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import SecretStr

from gen_searcher_core.errors import UserFacingError
from safe_io.fetch_protocol import Fetcher
from safe_io.fetcher import GuardedFetcher, InvalidUrl
from search_tools.cache import Cache
from search_tools.extract import SUPPORTED_TYPES, ExtractedPage, extract
from search_tools.extract_pool import ExtractionPool, ExtractLimits
from search_tools.fetchers.registry import FetcherConfig, FetcherEvents, create_fetcher
from search_tools.settings import FetchSettings, SummarySettings
from search_tools.summarize import ChatSummarizer, Summarizer
from search_tools.text_split import break_before

MAX_URL_CHARS = 4_096
MAX_GOAL_CHARS = 2_000


class BrowseError(UserFacingError, ValueError):
    """The caller's request cannot be served (bad offset, bad URL); the message says why."""


class _NoCache:
    """A ``Cache`` that always computes (a browser built without the server's cache)."""

    async def get_or_compute(
        self, namespace: str, key_parts: Any, compute: Callable[[], Awaitable[Any]], ttl_s: float | None = None
    ) -> Any:
        return await compute()

    async def aclose(self) -> None:
        return None


def slice_text(text: str, offset: int, budget: int) -> tuple[str, int | None]:
    """``budget`` characters of ``text`` from ``offset``, cut at a paragraph, line or word end when one is near."""
    end = offset + budget
    if end >= len(text):
        return text[offset:], None
    end = break_before(text, end, floor=offset + int(budget * 0.7))
    return text[offset:end], end


class Browser:
    """Reads pages for the ``browse`` tool."""

    def __init__(
        self,
        fetcher: Fetcher,
        *,
        summarizer: Summarizer | None = None,
        cache: Cache | None = None,
        text_budget: int = 8_000,
        extraction: ExtractionPool | None = None,
    ) -> None:
        self.fetcher = fetcher
        self.extraction = extraction or ExtractionPool()  # worker processes: deadline, page and character caps
        self.summarizer = summarizer
        self.cache: Cache = cache if cache is not None else _NoCache()
        self.text_budget = text_budget

    @property
    def mode(self) -> str:
        if self.summarizer is not None:
            return f"summary:{self.summarizer.cache_key}"
        return f"text:{self.text_budget}"

    async def page(self, url: str) -> ExtractedPage:
        """The extracted page at ``url`` (cached per URL)."""

        async def compute() -> dict[str, Any]:
            fetched = await self.fetcher.fetch(url, accept=SUPPORTED_TYPES)
            await self.extraction.start()  # every worker at once, on the first page (then a no-op)
            extracted = await extract(fetched, self.extraction)
            by = fetched.fetched_with or getattr(self.fetcher, "name", "") or "direct"
            return {**extracted.to_dict(), "fetched_with": by}

        key = [url, self.fetcher.guard_key]
        return ExtractedPage.from_dict(await self.cache.get_or_compute("browse_page", key, compute))

    async def browse(self, url: str, goal: str, offset: int = 0) -> dict[str, Any]:
        """The ``browse`` tool's structured result; raises ``FetchError``, ``ExtractionError``, ``BrowseError``,
        ``SummaryError`` with messages meant for the caller."""
        url = url.strip() if isinstance(url, str) else url
        goal = " ".join(goal.split()) if isinstance(goal, str) else goal
        if not isinstance(url, str) or not url:
            raise InvalidUrl("url is empty")
        if len(url) > MAX_URL_CHARS:
            raise InvalidUrl(f"url is longer than {MAX_URL_CHARS} characters")
        if not isinstance(goal, str) or len(goal) > MAX_GOAL_CHARS:
            raise BrowseError(f"goal must be a string of at most {MAX_GOAL_CHARS} characters")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise BrowseError(f"offset must be a non-negative integer, got {offset!r}")

        async def compute() -> dict[str, Any]:
            return await self._compute(url, goal, offset)

        key = [url, goal, offset, self.mode, self.fetcher.guard_key]
        result: dict[str, Any] = await self.cache.get_or_compute("browse", key, compute)
        return result

    async def _compute(self, url: str, goal: str, offset: int) -> dict[str, Any]:
        page = await self.page(url)
        total = len(page.text)
        if offset >= total and offset > 0:
            raise BrowseError(f"offset {offset} is past the end of the page ({total} characters)")
        result: dict[str, Any] = {"url": page.url, "title": page.title, "offset": offset, "total_chars": total}
        result["fetched_with"] = page.fetched_with or "direct"  # old cache entries predate the field
        result["likely_js_shell"] = bool(page.js_shell) and result["fetched_with"] == "direct"
        if self.summarizer is not None:
            next_offset = self.summarizer.window_end(page.text, offset)
            window = page.text[offset:next_offset]
            summary = await self.summarizer.summarize(window, goal or "the main content of the page")
            result.update(content=summary, summarized=True, next_offset=next_offset)
        else:
            content, next_offset = slice_text(page.text, offset, self.text_budget)
            result.update(content=content, summarized=False, next_offset=next_offset)
        return result


async def open_browser(
    fetch: FetchSettings,
    summary: SummarySettings,
    stack: contextlib.AsyncExitStack,
    cache: Cache | None,
    *,
    summary_api_key: SecretStr | None = None,
    jina_api_key: SecretStr | None = None,
    events: FetcherEvents | None = None,
) -> tuple[GuardedFetcher, Browser]:
    """Build the fetchers and browser from their sections; their closes go on ``stack``.

    Returns the guarded ``direct`` fetcher (image downloads use it whatever ``fetch.backend`` says) and
    the browse service, which reads pages with the fetcher ``fetch.backend`` names.
    """
    direct = GuardedFetcher.from_settings(fetch)
    stack.push_async_callback(direct.aclose)
    fetcher = create_fetcher(FetcherConfig(fetch, direct, jina_api_key=jina_api_key, events=events))
    close = getattr(fetcher, "aclose", None)  # optional in the protocol
    if fetcher is not direct and callable(close):
        stack.push_async_callback(close)
    summarizer = ChatSummarizer.from_settings(summary, api_key=summary_api_key)
    if summarizer is not None:
        stack.push_async_callback(summarizer.aclose)
    extraction = ExtractionPool(ExtractLimits.from_settings(fetch))
    return direct, Browser(
        fetcher, summarizer=summarizer, cache=cache, text_budget=summary.text_budget, extraction=extraction
    )
