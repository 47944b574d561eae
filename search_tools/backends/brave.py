"""Brave Search API: ``GET /web/search`` and ``GET /images/search`` with ``X-Subscription-Token``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from search_tools.backends.base import ImageHit, SearchBackendError, WebHit, check_request
from search_tools.backends.http import HttpBackend, RetryableError, http_options
from search_tools.backends.parsing import ImageFields, image_hits, web_hits

if TYPE_CHECKING:
    from search_tools.settings import BackendConfig

_MAX_WEB_COUNT = 20
_MAX_IMAGE_COUNT = 100


class BraveBackend(HttpBackend):
    name = "brave"
    capabilities = frozenset({"web", "images"})

    def __init__(self, api_key: str, *, base_url: str = "https://api.search.brave.com/res/v1", **options: Any) -> None:
        if not api_key:
            raise SearchBackendError(self.name, "config", "no API key (set BRAVE_API_KEY)")
        super().__init__(base_url=base_url, headers={"X-Subscription-Token": api_key}, secrets=[api_key], **options)

    def http_error(self, response: httpx.Response) -> SearchBackendError | RetryableError:
        # Brave reports a missing or invalid token as 422 SUBSCRIPTION_TOKEN_INVALID.
        if response.status_code == 422 and "SUBSCRIPTION_TOKEN" in response.text:
            return self.error("auth", "the provider rejected the subscription token (HTTP 422); check BRAVE_API_KEY")
        return super().http_error(response)

    async def search(self, query: str, k: int) -> list[WebHit]:
        query = check_request(self.name, query, k)
        data = await self._request_json("GET", "/web/search", params={"q": query, "count": min(k, _MAX_WEB_COUNT)})
        if not isinstance(data, dict):
            raise self.bad_shape("not a JSON object")
        web = data.get("web") or {}
        results = web.get("results", []) if isinstance(web, dict) else None
        if not isinstance(results, list):
            raise self.bad_shape("'web.results' is not a list")
        return web_hits(results, k, url="url", snippet="description", dates=("age", "page_age"))

    async def image_search(self, query: str, k: int) -> list[ImageHit]:
        query = check_request(self.name, query, k)
        data = await self._request_json("GET", "/images/search", params={"q": query, "count": min(k, _MAX_IMAGE_COUNT)})
        results = data.get("results", []) if isinstance(data, dict) else None
        if not isinstance(results, list):
            raise self.bad_shape("'results' is not a list")
        return image_hits(results, k, _image_fields)


def _image_fields(item: dict[str, Any]) -> ImageFields:
    properties = item.get("properties")
    thumbnail = item.get("thumbnail")
    if not isinstance(properties, dict):
        properties = {}
    if not isinstance(thumbnail, dict):
        thumbnail = {}
    return {
        "image_url": properties.get("url"),
        "page_url": item.get("url"),
        "title": item.get("title"),
        "width": properties.get("width"),
        "height": properties.get("height"),
        "thumbnail_url": thumbnail.get("src"),
    }


def create(config: BackendConfig) -> BraveBackend:
    key = config.keys.brave_api_key.get_secret_value() if config.keys.brave_api_key else ""
    return BraveBackend(key, base_url=config.search.brave_url, **http_options(config))
