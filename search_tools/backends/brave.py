"""Brave Search API: ``GET /web/search`` and ``GET /images/search`` with ``X-Subscription-Token``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from search_tools.backends.base import ImageHit, SearchBackendError, WebHit, check_request
from search_tools.backends.http import HttpBackend, RetryableError, as_int, http_options, strip_html

if TYPE_CHECKING:
    from mcp_server.settings import Settings

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
        hits: list[WebHit] = []
        for item in results:
            if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                continue
            date = item.get("age") or item.get("page_age")
            hits.append(
                WebHit(
                    title=strip_html(item.get("title")) or item["url"],
                    url=item["url"],
                    snippet=strip_html(item.get("description")),
                    position=len(hits) + 1,
                    date=date if isinstance(date, str) and date else None,
                )
            )
            if len(hits) == k:
                break
        return hits

    async def image_search(self, query: str, k: int) -> list[ImageHit]:
        query = check_request(self.name, query, k)
        data = await self._request_json("GET", "/images/search", params={"q": query, "count": min(k, _MAX_IMAGE_COUNT)})
        results = data.get("results", []) if isinstance(data, dict) else None
        if not isinstance(results, list):
            raise self.bad_shape("'results' is not a list")
        hits: list[ImageHit] = []
        for item in results:
            if not isinstance(item, dict):
                continue
            properties = item.get("properties") if isinstance(item.get("properties"), dict) else {}
            image_url = properties.get("url")
            if not isinstance(image_url, str) or not image_url:
                continue
            thumbnail = item.get("thumbnail") if isinstance(item.get("thumbnail"), dict) else {}
            page = item.get("url")
            hits.append(
                ImageHit(
                    image_url=image_url,
                    page_url=page if isinstance(page, str) and page else image_url,
                    title=strip_html(item.get("title")),
                    position=len(hits) + 1,
                    width=as_int(properties.get("width")),
                    height=as_int(properties.get("height")),
                    thumbnail_url=thumbnail.get("src") if isinstance(thumbnail.get("src"), str) else None,
                )
            )
            if len(hits) == k:
                break
        return hits


def create(settings: Settings) -> BraveBackend:
    key = settings.brave_api_key.get_secret_value() if settings.brave_api_key else ""
    return BraveBackend(key, base_url=settings.search.brave_url, **http_options(settings))
