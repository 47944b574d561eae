"""DuckDuckGo and friends through the ``ddgs`` library: no key needed.

``ddgs`` is synchronous, so each search runs on a worker thread under the
backend's rate limit and an overall deadline (the thread is abandoned, not
awaited, if the library overruns it), and its exceptions become
``SearchBackendError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from gen_searcher_core.http_retry import rate_limiter
from search_tools.backends.base import OFFLINE_HINT, ImageHit, SearchBackendError, WebHit, check_request
from search_tools.backends.parsing import image_hits, web_hits

if TYPE_CHECKING:
    from search_tools.settings import BackendConfig

# Words of the transport errors ddgs passes on from its HTTP client.
_NETWORK_MARKERS = ("DNSError", "ConnectError", "ConnectTimeout", "error sending request", "Connection refused")


# ddgs image rows are flat: our field -> their key.
_IMAGE_FIELDS = {
    "image_url": "image",
    "page_url": "url",
    "title": "title",
    "width": "width",
    "height": "height",
    "thumbnail_url": "thumbnail",
}


def _default_client(timeout_s: float) -> Any:
    from ddgs import DDGS

    return DDGS(timeout=max(1, int(timeout_s)))


class DdgsBackend:
    name = "ddgs"
    capabilities = frozenset({"web", "images"})

    def __init__(
        self,
        *,
        timeout_s: float = 15.0,
        rate_limit_per_s: float = 1.0,
        region: str = "us-en",
        safesearch: str = "moderate",
        client_factory: Callable[[float], Any] | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._region = region
        self._safesearch = safesearch
        self._client_factory = client_factory or _default_client
        self._limiter = rate_limiter(rate_limit_per_s)

    def _map_error(self, exc: BaseException) -> SearchBackendError:
        from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException

        if isinstance(exc, RatelimitException):
            return SearchBackendError(self.name, "rate_limited", "rate limited by the search engines")
        if isinstance(exc, TimeoutException):
            return SearchBackendError(self.name, "timeout", "the search engines did not answer in time")
        if isinstance(exc, DDGSException):
            detail = str(exc)
            if any(marker in detail for marker in _NETWORK_MARKERS):
                # ddgs wraps the network error of the last engine it tried, request URL and all.
                return SearchBackendError(
                    self.name,
                    "unavailable",
                    f"could not reach any search engine (network error; is this machine online?); {OFFLINE_HINT}",
                )
            return SearchBackendError(self.name, "unavailable", f"search failed: {detail}"[:300])
        return SearchBackendError(self.name, "unavailable", f"search failed ({type(exc).__name__})")

    async def _call(self, method: str, query: str, k: int) -> list[dict[str, Any]]:
        from ddgs.exceptions import DDGSException

        def run() -> list[dict[str, Any]]:
            client = self._client_factory(self._timeout_s)
            found: list[dict[str, Any]] = getattr(client, method)(
                query, region=self._region, safesearch=self._safesearch, max_results=k
            )
            return found

        async with self._limiter:
            try:
                with anyio.fail_after(self._timeout_s * 2 + 1):
                    rows = await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
            except TimeoutError:
                raise SearchBackendError(self.name, "timeout", "the search engines did not answer in time") from None
            except DDGSException as exc:
                if "no results" in str(exc).lower():
                    return []
                raise self._map_error(exc) from None
            except Exception as exc:  # noqa: BLE001 - the engines behind ddgs raise anything; _map_error names it
                raise self._map_error(exc) from None
        if not isinstance(rows, list):
            raise SearchBackendError(self.name, "bad_response", "the library returned no result list")
        return [row for row in rows if isinstance(row, dict)]

    async def search(self, query: str, k: int) -> list[WebHit]:
        query = check_request(self.name, query, k)
        return web_hits(await self._call("text", query, k), k, url="href", snippet="body")

    async def image_search(self, query: str, k: int) -> list[ImageHit]:
        query = check_request(self.name, query, k)
        return image_hits(await self._call("images", query, k), k, _IMAGE_FIELDS)

    async def aclose(self) -> None:
        return None


def create(config: BackendConfig) -> DdgsBackend:
    return DdgsBackend(timeout_s=config.search.timeout_s, rate_limit_per_s=min(config.search.rate_limit_per_s, 1.0))
