"""The search service the tools call: a backend behind the cache.

The query is checked once, here, where it enters search: it becomes a
:class:`SearchQuery` that the backend and the cache key take as it is. The
cache key is (backend name, operation, ``SearchQuery.cache_form``, k), so GRPO
rollouts that repeat a query cost one provider call, and a replayed run is
served entirely from the cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from search_tools.backends.base import (
    ImageHit,
    SearchBackend,
    SearchBackendError,
    SearchQuery,
    WebHit,
    check_request,
    unsupported,
)
from search_tools.cache import Cache

if TYPE_CHECKING:
    from search_tools.settings import BackendConfig


class SearchMetrics(Protocol):
    def backend_call(self, backend: str) -> None: ...

    def backend_error(self, backend: str) -> None: ...


def normalize_query(query: str) -> str:
    """Case- and spacing-insensitive form of a query, as in cache keys (``SearchQuery(query).cache_form``)."""
    return SearchQuery(query).cache_form


class SearchService:
    """Cached, single-flight web and image search over one backend."""

    def __init__(
        self,
        backend: SearchBackend,
        cache: Cache,
        *,
        metrics: SearchMetrics | None = None,
        ttl_s: float | None = None,
    ) -> None:
        self.backend = backend
        self.cache = cache
        self.metrics = metrics
        self.ttl_s = ttl_s

    @property
    def backend_name(self) -> str:
        return self.backend.name

    async def search(self, query: str, k: int) -> list[WebHit]:
        query = check_request(self.backend.name, query, k)
        if "web" not in self.backend.capabilities:
            raise unsupported(self.backend.name, "web")
        rows = await self._cached("search", query, k, self.backend.search)
        return [WebHit.from_dict(row) for row in rows]

    async def image_search(self, query: str, k: int) -> list[ImageHit]:
        query = check_request(self.backend.name, query, k)
        if "images" not in self.backend.capabilities:
            raise unsupported(self.backend.name, "images")
        rows = await self._cached("image_search", query, k, self.backend.image_search)
        return [ImageHit.from_dict(row) for row in rows]

    async def _cached(self, operation: str, query: SearchQuery, k: int, call: Any) -> list[dict[str, Any]]:
        async def compute() -> list[dict[str, Any]]:
            if self.metrics is not None:
                self.metrics.backend_call(self.backend.name)
            try:
                hits = await call(query, k)
            except SearchBackendError:
                if self.metrics is not None:
                    self.metrics.backend_error(self.backend.name)
                raise
            except Exception as exc:  # a plugin that breaks the contract still yields a clear error
                if self.metrics is not None:
                    self.metrics.backend_error(self.backend.name)
                raise SearchBackendError(
                    self.backend.name, "bad_response", f"backend raised {type(exc).__name__}"
                ) from exc
            return [hit.to_dict() for hit in hits[:k]]

        key = [self.backend.name, operation, query.cache_form, k]
        rows: list[dict[str, Any]] = await self.cache.get_or_compute(operation, key, compute, ttl_s=self.ttl_s)
        return rows

    async def aclose(self) -> None:
        await self.backend.aclose()


def open_search(config: BackendConfig, cache: Cache, *, metrics: SearchMetrics | None = None) -> SearchService:
    """The configured backend (see ``create_backend``) behind ``cache``."""
    from search_tools.backends.registry import create_backend

    return SearchService(create_backend(config), cache, metrics=metrics)
