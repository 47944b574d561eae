"""Download image-search candidates through the safe fetcher, validate them, keep them in the store.

Validation (Pillow, in a worker thread): a real JPEG/PNG/GIF/WebP/BMP image,
shortest side at least ``min_side``, at most ``max_pixels`` pixels (checked
from the header before any pixel is decoded, so decompression bombs are never
expanded; PIL's global limits are left alone), animated images take their
first frame, everything ends as RGB. RGB JPEG/PNG/WebP files are stored as
downloaded; anything else is re-encoded as PNG.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass
from typing import Any

import anyio
from PIL import Image, UnidentifiedImageError

from gen_searcher_core.errors import UserFacingError, first_leaf
from safe_io.fetcher import FetchError, GuardedFetcher
from safe_io.image_store import (
    ImageIntegrityError,
    ImageNotFoundError,
    ImageStore,
    ImageStoreUnavailable,
    SourceEntry,
    StoredImage,
    image_id_for,
)
from search_tools.settings import ImageSettings

logger = logging.getLogger(__name__)

IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP")
IMAGE_MEDIA_TYPES = frozenset(
    {
        "image/jpeg",
        "image/jpg",
        "image/pjpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "image/bmp",
        "application/octet-stream",
        "binary/octet-stream",
    }
)
_KEEP_AS_IS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


class ImageRejected(UserFacingError, ValueError):
    """The downloaded bytes are not a usable image; the message says why."""


@dataclass(frozen=True)
class FoundImage:
    """A stored image with where it came from."""

    image: StoredImage
    title: str
    page_url: str
    source_url: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.image.id,
            "title": self.title,
            "page_url": self.page_url,
            "source_url": self.source_url,
            "width": self.image.width,
            "height": self.image.height,
        }


def validate_image(data: bytes, *, min_side: int, max_pixels: int) -> tuple[bytes, str]:
    """(bytes to store, media type) for a usable image; raises ``ImageRejected`` otherwise."""
    try:
        img = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except Image.DecompressionBombError:
        raise ImageRejected("image has too many pixels (decompression bomb guard)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ImageRejected("not a readable image (JPEG, PNG, GIF, WebP or BMP)") from None
    with img:
        width, height = img.size
        if width * height > max_pixels:
            raise ImageRejected(f"image is {width}x{height}, over the limit of {max_pixels} pixels")
        if min(width, height) < min_side:
            raise ImageRejected(f"image is {width}x{height}, smaller than {min_side} px on its shortest side")
        fmt = img.format or ""
        animated = bool(getattr(img, "is_animated", False))
        try:
            if animated:
                img.seek(0)
            img.load()
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
            raise ImageRejected(f"image data is corrupt or truncated ({type(exc).__name__})") from None
        if fmt in _KEEP_AS_IS and img.mode == "RGB" and not animated:
            return data, _KEEP_AS_IS[fmt]
        rgb = _to_rgb(img)
    out = io.BytesIO()
    rgb.save(out, format="PNG", optimize=False)
    return out.getvalue(), "image/png"


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img.copy()
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


class ImageCollector:
    """Downloads candidates concurrently and keeps the ones that validate."""

    def __init__(
        self,
        fetcher: GuardedFetcher,
        store: ImageStore,
        *,
        min_side: int = 64,
        max_pixels: int = 40_000_000,
        max_bytes: int | None = None,
        concurrency: int = 8,
        reuse_sources_s: float = 0.0,
    ) -> None:
        self._fetcher = fetcher
        self._store = store
        self._min_side = min_side
        self._max_pixels = max_pixels
        self._max_bytes = max_bytes
        self._limiter = anyio.CapacityLimiter(concurrency)
        self._reuse_sources_s = reuse_sources_s

    @classmethod
    def from_settings(cls, fetcher: GuardedFetcher, store: ImageStore, settings: ImageSettings) -> ImageCollector:
        return cls(
            fetcher,
            store,
            min_side=settings.min_side,
            max_pixels=settings.max_pixels,
            reuse_sources_s=settings.reuse_sources_s,
        )

    async def download(self, image_url: str, *, title: str = "", page_url: str = "") -> FoundImage:
        """Fetch, validate and store one image; raises ``FetchError`` or ``ImageRejected``.

        A source URL downloaded within ``reuse_sources_s`` gives what it gave then (the stored
        image, or the same rejection) without a download.
        """
        remembered = await self._remembered(image_url)
        if isinstance(remembered, StoredImage):
            return FoundImage(remembered, title, page_url, image_url)
        if isinstance(remembered, str):
            raise ImageRejected(remembered)
        async with self._limiter:
            page = await self._fetcher.fetch(image_url, accept=IMAGE_MEDIA_TYPES, max_bytes=self._max_bytes)
        try:
            data, media_type = await anyio.to_thread.run_sync(
                lambda: validate_image(page.body, min_side=self._min_side, max_pixels=self._max_pixels)
            )
        except ImageRejected as exc:
            await self._remember(image_url, SourceEntry(rejected=str(exc)))
            raise
        meta = {"source_url": image_url, "page_url": page_url, "title": title}
        stored: list[StoredImage] = []

        async def put() -> None:
            stored.append(await self._store.put(data, media_type, meta))

        # The entry names the id, which is the content's hash: written beside the image, not after it
        # (one store round trip less; a reader that is too early finds no image and downloads).
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(put)
                tg.start_soon(self._remember, image_url, SourceEntry(image_id=image_id_for(data)))
        except BaseExceptionGroup as group:  # the store's own error (e.g. ImageStoreUnavailable), unwrapped
            raise first_leaf(group) from None
        return FoundImage(stored[0], title, page_url, image_url)

    async def _remembered(self, image_url: str) -> StoredImage | str | None:
        """The stored image or rejection reason an earlier download of ``image_url`` gave, while fresh."""
        if self._reuse_sources_s <= 0:
            return None
        entry = await self._store.lookup_source(image_url)
        if entry is None or time.time() - entry.at > self._reuse_sources_s:
            return None
        if entry.rejected:
            return entry.rejected
        if entry.image_id:
            try:
                return await self._store.get(entry.image_id)
            except ImageNotFoundError:  # evicted since: download again
                return None
            except ImageIntegrityError as exc:  # what the store holds is not that picture: download again
                logger.warning("remembered image of a source refused: %s", exc)
                return None
        return None

    async def _remember(self, image_url: str, entry: SourceEntry) -> None:
        if self._reuse_sources_s > 0:
            await self._store.remember_source(image_url, entry)

    async def collect(
        self, candidates: list[Any], want: int, *, exclude_ids: set[str] | None = None
    ) -> tuple[list[FoundImage], list[str]]:
        """Up to ``want`` distinct stored images from ``candidates`` (``ImageHit``-like), in candidate order.

        Returns (images, reasons the others were dropped).
        """
        outcomes: list[FoundImage | str | None] = [None] * len(candidates)

        async def one(i: int, hit: Any) -> None:
            try:
                outcomes[i] = await self.download(hit.image_url, title=hit.title or "", page_url=hit.page_url or "")
            except (FetchError, ImageRejected) as exc:
                outcomes[i] = f"{hit.image_url}: {exc}"
            except ImageStoreUnavailable:  # not this candidate's fault: the whole call fails, clearly
                raise
            except Exception as exc:  # noqa: BLE001 - one bad candidate never sinks the others
                logger.warning("image candidate failed unexpectedly: %s", type(exc).__name__)
                outcomes[i] = f"{hit.image_url}: internal error ({type(exc).__name__})"

        try:
            async with anyio.create_task_group() as tg:
                for i, hit in enumerate(candidates):
                    tg.start_soon(one, i, hit)
        except BaseExceptionGroup as group:
            unavailable, _ = group.split(ImageStoreUnavailable)
            if unavailable is None:
                raise
            raise first_leaf(unavailable) from None
        seen = set(exclude_ids or ())
        found: list[FoundImage] = []
        dropped: list[str] = []
        for outcome in outcomes:
            if isinstance(outcome, FoundImage):
                if outcome.image.id in seen:
                    continue
                if len(found) < want:
                    seen.add(outcome.image.id)
                    found.append(outcome)
            elif outcome:
                dropped.append(outcome)
        return found, dropped
