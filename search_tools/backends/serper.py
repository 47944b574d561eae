"""Serper (Google results): ``POST /search`` and ``POST /images`` with an ``X-API-KEY`` header."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from search_tools.backends.base import ImageHit, SearchBackendError, WebHit, check_request
from search_tools.backends.http import HttpBackend, http_options
from search_tools.backends.parsing import image_hits, web_hits

if TYPE_CHECKING:
    from search_tools.settings import BackendConfig


_IMAGE_FIELDS = {
    "image_url": "imageUrl",
    "page_url": "link",
    "title": "title",
    "width": "imageWidth",
    "height": "imageHeight",
    "thumbnail_url": "thumbnailUrl",
}


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
        return web_hits(organic, k, url="link", snippet="snippet", dates=("date",))

    async def image_search(self, query: str, k: int) -> list[ImageHit]:
        query = check_request(self.name, query, k)
        data = await self._request_json("POST", "/images", json_body={"q": query, "num": k})
        images = data.get("images", []) if isinstance(data, dict) else None
        if not isinstance(images, list):
            raise self.bad_shape("'images' is not a list")
        return image_hits(images, k, _IMAGE_FIELDS)


def create(config: BackendConfig) -> SerperBackend:
    key = config.keys.serper_api_key.get_secret_value() if config.keys.serper_api_key else ""
    return SerperBackend(key, base_url=config.search.serper_url, **http_options(config))
