"""The long-lived objects the tools share: cache, search backend, fetcher, image store, renderer.

``open_services`` builds them from settings and closes them on exit. The MCP
server and the HTTP app receive a ready ``Services``; tools close over it, so
nothing lives at module level.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from mcp_server.settings import Settings
from search_tools.images import ImageStore


@dataclass
class Services:
    settings: Settings
    images: ImageStore
    # Each tool's collaborators are attached by open_services; see the tool modules.
    extras: dict[str, Any] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    async with contextlib.AsyncExitStack() as stack:
        images = ImageStore(
            settings.images.dir,
            max_total_bytes=settings.images.max_total_bytes,
            thumbnail_side=settings.images.thumbnail_side,
        )
        services = Services(settings=settings, images=images)
        del stack  # collaborators with resources register their close here
        yield services
