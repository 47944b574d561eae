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
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from mcp_server.metrics import Metrics
from mcp_server.settings import Settings
from render_tools.base import Renderer
from render_tools.factory import create_tool_renderer
from search_tools.browse import Browser, open_browser
from search_tools.cache import Cache, open_cache
from search_tools.fetch import Fetcher
from search_tools.images import ImageStore, open_image_store
from search_tools.search_service import SearchService, open_search


@dataclass(kw_only=True)
class Services:
    settings: Settings
    images: ImageStore  # images area: disk or S3 (search_tools.image_store)
    metrics: Metrics = field(default_factory=Metrics)
    cache: Cache | None = None  # search area: results cache (single-flight; readwrite|readonly|replay|off)
    search: SearchService | None = None  # search area: cached web and image search over the configured backend
    fetcher: Fetcher | None = None  # browse area: the safe fetcher (pages, images)
    browser: Browser | None = None  # browse area: fetch + extract + summarize for the browse tool
    renderer: Renderer | None = None  # render area: Qwen-Image renderer; None: no render tool


@contextlib.asynccontextmanager
async def open_services(settings: Settings, *, metrics: Metrics | None = None) -> AsyncIterator[Services]:
    """Open every collaborator once; closes them in reverse order on exit."""
    metrics = metrics or Metrics()
    async with contextlib.AsyncExitStack() as stack:
        # Disk (images.dir) or S3 (images.url); checked, so a bad store is one ConfigError line.
        images = await open_image_store(settings.images)
        stack.push_async_callback(images.aclose)
        services = Services(settings=settings, images=images, metrics=metrics)
        services.cache = open_cache(settings.cache, metrics=metrics)
        stack.push_async_callback(services.cache.aclose)
        services.search = open_search(settings.backend_config(), services.cache, metrics=metrics)
        stack.push_async_callback(services.search.aclose)
        services.fetcher, services.browser = await open_browser(
            settings.fetch, settings.summary, stack, services.cache, summary_api_key=settings.openai_api_key
        )
        services.renderer = create_tool_renderer(settings.render, openai_api_key=settings.openai_api_key)
        if services.renderer is not None:
            stack.push_async_callback(services.renderer.aclose)
        yield services
