"""The long-lived objects the tools share: cache, search backend, fetcher, image store, renderer.

``open_services`` builds them from settings and closes them on exit. The MCP
server and the HTTP app receive a ready ``Services``; tools close over it, so
nothing lives at module level.

Adding a collaborator (one per area): declare a typed field on ``Services``
(the dataclass is keyword-only, so field order does not matter) and build it in
``open_services``, registering its close on ``stack``
(``await stack.enter_async_context(...)`` or ``stack.push_async_callback(...)``).
Record events on ``services.metrics`` (see ``mcp_server.metrics.Metrics``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

from mcp_server.metrics import Metrics
from mcp_server.settings import Settings

if TYPE_CHECKING:  # imported when opened: the stdio server answers `initialize` before these load
    from render_tools.base import Renderer
    from safe_io.fetcher import GuardedFetcher
    from safe_io.image_store import ImageStore
    from search_tools.browse import Browser
    from search_tools.cache import Cache
    from search_tools.search_service import SearchService

logger = logging.getLogger(__name__)


@dataclass(kw_only=True)
class Services:
    settings: Settings
    images: ImageStore  # images area: disk or S3 (safe_io.image_store)
    metrics: Metrics = field(default_factory=Metrics)
    cache: Cache | None = None  # search area: results cache (single-flight; readwrite|readonly|replay|off)
    search: SearchService | None = None  # search area: cached web and image search over the configured backend
    fetcher: GuardedFetcher | None = None  # browse area: the safe fetcher (pages, images)
    browser: Browser | None = None  # browse area: fetch + extract + summarize for the browse tool
    renderer: Renderer | None = None  # render area: Qwen-Image renderer; None: no render tool

    def adopt(self, other: Services) -> None:
        """Take every collaborator of ``other`` (the stdio server opens them after it answers clients)."""
        for item in fields(self):
            setattr(self, item.name, getattr(other, item.name))

    def readiness(self) -> str:
        """``loading`` while a model still loads in the background, else ``ok``."""
        state = getattr(self.renderer, "load_state", None)
        return "loading" if state in ("idle", "loading") else "ok"


async def warm_up(services: Services) -> None:
    """Load models in the background once the server answers (a failure is logged; renders report it)."""
    load = getattr(services.renderer, "load", None)
    if load is None:
        return
    try:
        await load()
    except Exception as exc:  # noqa: BLE001  the render tool reports it on use; other tools keep serving
        logger.error("loading the render model failed: %s", exc)


@contextlib.asynccontextmanager
async def open_services(settings: Settings, *, metrics: Metrics | None = None) -> AsyncIterator[Services]:
    """Open every collaborator once; closes them in reverse order on exit."""
    from render_tools.factory import create_tool_renderer
    from safe_io.image_store import open_image_store
    from search_tools.browse import open_browser
    from search_tools.cache import open_cache
    from search_tools.search_service import open_search

    metrics = metrics or Metrics()
    async with contextlib.AsyncExitStack() as stack:
        # Disk (images.dir) or S3 (images.url); checked, so a bad store is one ConfigError line.
        images = await open_image_store(settings.images, events=metrics)
        stack.push_async_callback(images.aclose)
        services = Services(settings=settings, images=images, metrics=metrics)
        services.cache = open_cache(settings.cache, metrics=metrics)
        stack.push_async_callback(services.cache.aclose)
        services.search = open_search(settings.backend_config(), services.cache, metrics=metrics)
        stack.push_async_callback(services.search.aclose)
        services.fetcher, services.browser = await open_browser(
            settings.fetch,
            settings.summary,
            stack,
            services.cache,
            summary_api_key=settings.openai_api_key,
            jina_api_key=settings.jina_api_key,
            events=services.metrics,
        )
        services.renderer = create_tool_renderer(settings.render, openai_api_key=settings.openai_api_key)
        if services.renderer is not None:
            stack.push_async_callback(services.renderer.aclose)
        yield services
