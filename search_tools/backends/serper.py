"""Serper (Google results): ``POST /search`` and ``POST /images`` with an ``X-API-KEY`` header."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from search_tools.backends.base import ImageHit, SearchBackendError, WebHit, check_request
from search_tools.backends.http import HttpBackend, as_int, http_options, strip_html

if TYPE_CHECKING:
    from mcp_server.settings import Settings


class SerperBackend(HttpBackend):
    name = "serper"
    capabilities = frozenset({"web", "images"})

    def __init__(self, api_key: str, *, base_url: str = "https://google.serper.dev", **options: Any) -> None:
        if not api_key:
            raise SearchBackendError(self.name, "config", "no API key (set SERPER_API_KEY)")
        super().__init__(base_url=base_url, headers={"X-API-KEY": api_key}, secrets=[api_key], **options)

    async def search(self, query: str, k: int) -> list[WebHit]:
        query = check_request(self.name, query, k)
        data = await self._request_json("POST", "/search", json_body={"q": query, "num": k})
        organic = data.get("organic", []) if isinstance(data, dict) else None
        if not isinstance(organic, list):
            raise self.bad_shape("'organic' is not a list")
        hits: list[WebHit] = []
        for item in organic:
            if not isinstance(item, dict) or not isinstance(item.get("link"), str):
                continue
            date = item.get("date")
            hits.append(
                WebHit(
                    title=strip_html(item.get("title")) or item["link"],
                    url=item["link"],
                    snippet=strip_html(item.get("snippet")),
                    position=len(hits) + 1,
                    date=date if isinstance(date, str) and date else None,
                )
            )
            if len(hits) == k:
                break
        return hits

    async def image_search(self, query: str, k: int) -> list[ImageHit]:
        query = check_request(self.name, query, k)
        data = await self._request_json("POST", "/images", json_body={"q": query, "num": k})
        images = data.get("images", []) if isinstance(data, dict) else None
        if not isinstance(images, list):
            raise self.bad_shape("'images' is not a list")
        hits: list[ImageHit] = []
        for item in images:
            if not isinstance(item, dict) or not isinstance(item.get("imageUrl"), str):
                continue
            page = item.get("link") if isinstance(item.get("link"), str) else item["imageUrl"]
            thumbnail = item.get("thumbnailUrl")
            hits.append(
                ImageHit(
                    image_url=item["imageUrl"],
                    page_url=page,
                    title=strip_html(item.get("title")),
                    position=len(hits) + 1,
                    width=as_int(item.get("imageWidth")),
                    height=as_int(item.get("imageHeight")),
                    thumbnail_url=thumbnail if isinstance(thumbnail, str) else None,
                )
            )
            if len(hits) == k:
                break
        return hits


def create(settings: Settings) -> SerperBackend:
    key = settings.serper_api_key.get_secret_value() if settings.serper_api_key else ""
    return SerperBackend(key, base_url=settings.search.serper_url, **http_options(settings))
