"""SearXNG (self-hosted metasearch): ``GET /search?format=json``; ``categories=images`` for images.

The instance must allow the JSON format (``search.formats`` in its settings.yml);
otherwise it answers 403 and this backend says so.
"""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import httpx

from search_tools.backends.base import ImageHit, SearchBackendError, WebHit, check_request
from search_tools.backends.http import HttpBackend, RetryableError, http_options, provider_url
from search_tools.backends.parsing import ImageFields, image_hits, web_hits

if TYPE_CHECKING:
    from search_tools.settings import BackendConfig

_RESOLUTION = re.compile(r"^\s*(\d+)\s*[x×]\s*(\d+)\s*$")


def _absolute(url: Any, base: str) -> str | None:
    if not isinstance(url, str) or not url.strip():
        return None
    text = url.strip()
    if text.startswith("//"):
        return "https:" + text
    return urljoin(base + "/", text)


class SearxngBackend(HttpBackend):
    name = "searxng"
    capabilities = frozenset({"web", "images"})

    def __init__(self, base_url: str | None, **options: Any) -> None:
        if not base_url:
            raise SearchBackendError(self.name, "config", "no instance URL (set SEARXNG_URL)")
        parsed = provider_url(self.name, base_url)
        auth = None
        secrets: list[str] = []
        if parsed.userinfo:
            # Credentials in the URL become Basic auth, so request URLs (which httpx logs and
            # errors may name) never carry them.
            auth = httpx.BasicAuth(parsed.username, parsed.password)
            basic = base64.b64encode(f"{parsed.username}:{parsed.password}".encode()).decode()
            secrets = [secret for secret in (parsed.password, basic, str(parsed)) if secret]
            base_url = str(parsed.copy_with(username=None, password=None))
        super().__init__(base_url=base_url, auth=auth, secrets=secrets, **options)

    def http_error(self, response: httpx.Response) -> SearchBackendError | RetryableError:
        if response.status_code == 403:
            return self.error(
                "config",
                "the instance refused format=json (HTTP 403); enable 'json' under search.formats in its settings.yml",
            )
        return super().http_error(response)

    async def _results(self, query: str, category: str) -> list[dict[str, Any]]:
        data = await self._request_json(
            "GET", "/search", params={"q": query, "format": "json", "categories": category, "pageno": 1}
        )
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list):
            raise self.bad_shape("'results' is not a list")
        return [item for item in results if isinstance(item, dict)]

    async def search(self, query: str, k: int) -> list[WebHit]:
        query = check_request(self.name, query, k)
        rows = await self._results(query, "general")
        return web_hits(rows, k, url="url", snippet="content", dates=("publishedDate",))

    async def image_search(self, query: str, k: int) -> list[ImageHit]:
        query = check_request(self.name, query, k)
        rows = await self._results(query, "images")
        return image_hits(rows, k, self._image_fields)

    def _image_fields(self, item: dict[str, Any]) -> ImageFields:
        width = height = None
        resolution = item.get("resolution")
        if isinstance(resolution, str) and (match := _RESOLUTION.match(resolution)):
            width, height = match.group(1), match.group(2)
        return {
            "image_url": _absolute(item.get("img_src"), self.base_url),
            "page_url": _absolute(item.get("url"), self.base_url),
            "title": item.get("title"),
            "width": width,
            "height": height,
            "thumbnail_url": _absolute(item.get("thumbnail_src"), self.base_url),
        }


def create(config: BackendConfig) -> SearxngBackend:
    url = config.keys.searxng_url.get_secret_value() if config.keys.searxng_url else None
    return SearxngBackend(url, **http_options(config))
