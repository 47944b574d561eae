"""The ``local`` backend: BM25 search over an index built by ``gen-searcher index build``.

Offline and reproducible: the choice for RL training and for deployments that
want no provider. Queries run on a worker thread (sqlite blocks).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import anyio

from search_tools.backends.base import ImageHit, SearchBackendError, WebHit, check_request
from search_tools.index_read import IndexNotFoundError, LocalIndex

if TYPE_CHECKING:
    from search_tools.settings import BackendConfig

logger = logging.getLogger(__name__)

Hit = TypeVar("Hit", WebHit, ImageHit)


class LocalBackend:
    name = "local"
    capabilities = frozenset({"web", "images"})

    def __init__(self, index_path: Path | str | None) -> None:
        if index_path is None:
            raise SearchBackendError(
                self.name,
                "config",
                "no index configured (set GEN_SEARCHER_SEARCH__INDEX to a file built by `gen-searcher index build`)",
            )
        self._index = LocalIndex(index_path)
        if not self._index.path.is_file():
            # Not fatal (the index may be built after the server starts); every search says so until then.
            logger.warning(
                "local search index not found: %s (build one with `gen-searcher index build SRC_DIR --out FILE.db`)",
                self._index.path,
            )

    @property
    def index_path(self) -> Path:
        return self._index.path

    async def search(self, query: str, k: int) -> list[WebHit]:
        query = check_request(self.name, query, k)
        return await self._run(self._index.search, query, k)

    async def image_search(self, query: str, k: int) -> list[ImageHit]:
        query = check_request(self.name, query, k)
        return await self._run(self._index.image_search, query, k)

    async def _run(self, fn: Callable[[str, int], list[Hit]], query: str, k: int) -> list[Hit]:
        try:
            return await anyio.to_thread.run_sync(fn, query, k)
        except IndexNotFoundError as exc:
            raise SearchBackendError(self.name, "unavailable", str(exc)) from None
        except (sqlite3.Error, OSError) as exc:  # a damaged, locked or vanished index
            raise SearchBackendError(
                self.name, "unavailable", f"index query failed: {type(exc).__name__}: {exc}"
            ) from None

    async def aclose(self) -> None:
        return None


def create(config: BackendConfig) -> LocalBackend:
    return LocalBackend(config.search.index)
