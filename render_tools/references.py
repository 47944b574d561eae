"""Reference images named by URL: data URLs decoded here, http(s) URLs through the safe fetcher."""

from __future__ import annotations

from typing import Any

import anyio
from PIL import Image

from gen_searcher_core import limits
from render_tools.base import MAX_REFERENCES, InvalidRenderRequest, RendererUnavailable
from render_tools.imaging import IMAGE_MEDIA_TYPES, MAX_IMAGE_BYTES, decode_data_url, decode_image, is_data_url

#: References a request may name; only the first MAX_REFERENCES are used (the published protocol allows 1-5).
MAX_REFERENCE_INPUTS = limits.MAX_REFERENCES


def check_reference_count(count: int) -> None:
    if count > MAX_REFERENCE_INPUTS:
        raise InvalidRenderRequest(
            f"{count} reference images given; at most {MAX_REFERENCE_INPUTS} are accepted "
            f"and the first {MAX_REFERENCES} are used"
        )


class ReferenceLoader:
    """Turns ``image_urls`` into validated RGB images.

    ``fetcher`` is a :class:`safe_io.fetcher.GuardedFetcher` (http/https only,
    private addresses refused unless its settings allow them); without one,
    only data URLs are accepted.
    """

    def __init__(self, fetcher: Any | None, *, max_bytes: int = MAX_IMAGE_BYTES, images: Any | None = None) -> None:
        self._fetcher = fetcher
        self.max_bytes = max_bytes
        self._images = images  # the image store (safe_io): image://{id} references are read from it

    async def load(self, urls: list[Any]) -> list[Image.Image]:
        if not isinstance(urls, list):
            raise InvalidRenderRequest("image_urls must be a list of URLs")
        check_reference_count(len(urls))
        used = urls[:MAX_REFERENCES]
        images: list[Image.Image | None] = [None] * len(used)
        errors: list[Exception | None] = [None] * len(used)

        async def one(index: int, url: Any) -> None:
            try:
                images[index] = await self.load_one(url, what=f"reference image {index + 1}")
            except Exception as exc:  # noqa: BLE001  reported below, first failing reference first
                errors[index] = exc

        async with anyio.create_task_group() as tg:
            for index, url in enumerate(used):
                tg.start_soon(one, index, url)
        for error in errors:
            if error is not None:
                raise error
        return [img for img in images if img is not None]

    async def load_one(self, url: Any, *, what: str) -> Image.Image:
        if not isinstance(url, str) or not url.strip():
            raise InvalidRenderRequest(f"{what}: the URL must be a non-empty string")
        url = url.strip()
        if is_data_url(url):
            return await anyio.to_thread.run_sync(lambda: decode_data_url(url, what=what, max_bytes=self.max_bytes))
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == "image":
            return await self._load_stored(url[len("image://") :], what=what)
        if scheme not in ("http", "https"):
            raise InvalidRenderRequest(f"{what}: only http(s), data: and image://{{id}} URLs are accepted")
        if self._fetcher is None:
            raise RendererUnavailable(f"{what}: this server does not fetch URLs; send a data URL")
        from safe_io.fetcher import FetchError

        try:
            page = await self._fetcher.fetch(url, accept=IMAGE_MEDIA_TYPES, max_bytes=self.max_bytes)
        except FetchError as exc:
            raise InvalidRenderRequest(f"{what}: {exc}") from None
        return await anyio.to_thread.run_sync(lambda: decode_image(page.body, what=what, max_bytes=self.max_bytes))

    async def _load_stored(self, image_id: str, *, what: str) -> Image.Image:
        """A reference by id from the shared image store (``image://img_...``)."""
        if self._images is None:
            raise InvalidRenderRequest(f"{what}: this server has no image store (set images.url to the shared store)")
        from safe_io.image_store import ImageNotFoundError, ImageStoreUnavailable

        try:
            data, _ = await self._images.read_bytes(image_id)
        except ImageNotFoundError:
            raise InvalidRenderRequest(f"{what}: unknown image id {image_id[:40]!r}") from None
        except ImageStoreUnavailable as exc:
            raise RendererUnavailable(f"{what}: {exc}") from None
        return await anyio.to_thread.run_sync(lambda: decode_image(data, what=what, max_bytes=256 * 1024 * 1024))
