"""What every image store shares: ids, records, errors, thumbnails and the ``ImageStore`` protocol.

An image's id is ``img_`` plus the first 16 hex digits of the SHA-256 of its
stored bytes, so the same picture found twice (or rendered twice with the same
seed) has one id, and a write of an id that exists is a no-op: the first
record is kept.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import anyio
from PIL import Image

from gen_searcher_core.errors import UserFacingError
from gen_searcher_core.imaging import jpeg_thumbnail, png_bytes

IMAGE_ID_PATTERN = re.compile(r"img_[0-9a-f]{16}")
MEDIA_TYPES = ("image/png", "image/jpeg", "image/webp")
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
DEFAULT_THUMBNAIL_QUALITY = 85


class ImageNotFoundError(UserFacingError, KeyError):
    """No image with this id is in the store (never stored, evicted or collected)."""

    def __str__(self) -> str:
        return f"unknown image id: {self.args[0]!r}"


class ImageStoreUnavailable(UserFacingError):
    """The store cannot be reached or written right now; the message says which store and why."""


class ImageIntegrityError(ImageStoreUnavailable):
    """What the store holds under an id is not that image (other bytes, wrong size, over the size cap).

    Refused, never cached, and counted; a kind of "unavailable" so every caller already
    turns it into a clear error.
    """


@dataclass(frozen=True)
class StoredImage:
    """What the store knows about one image; ``meta`` holds provenance (source and page URL, prompt, seed)."""

    id: str
    width: int
    height: int
    media_type: str
    size_bytes: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"image://{self.id}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> StoredImage:
        return cls(
            id=str(raw["id"]),
            width=int(raw["width"]),
            height=int(raw["height"]),
            media_type=str(raw["media_type"]),
            size_bytes=int(raw["size_bytes"]),
            meta=dict(raw.get("meta") or {}),
        )


@dataclass(frozen=True)
class SourceEntry:
    """What became of one downloaded source URL: the image it gave, or why it was rejected."""

    image_id: str | None = None
    rejected: str | None = None
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SourceEntry:
        return cls(image_id=raw.get("image_id"), rejected=raw.get("rejected"), at=float(raw.get("at", 0.0)))


@dataclass
class GcReport:
    """What ``gc`` removed (or, with ``dry_run``, would remove)."""

    images: int = 0
    bytes: int = 0
    sources: int = 0
    kept: int = 0


def image_id_for(data: bytes) -> str:
    return "img_" + hashlib.sha256(data).hexdigest()[:16]


def is_image_id(value: str) -> bool:
    # fullmatch: a trailing newline must not pass (``$`` would allow one).
    return isinstance(value, str) and IMAGE_ID_PATTERN.fullmatch(value) is not None


def source_key(url: str) -> str:
    """The file/object name of a source URL's entry."""
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


def make_thumbnail(data: bytes, max_side: int = 512, quality: int = DEFAULT_THUMBNAIL_QUALITY) -> bytes:
    """JPEG thumbnail whose longest side is at most ``max_side`` pixels."""
    return jpeg_thumbnail(data, max_side, quality)


def image_size(data: bytes, media_type: str) -> tuple[int, int]:
    """(width, height) from the header; refuses media types the store does not keep."""
    if media_type not in EXTENSIONS:
        raise ValueError(f"unsupported image media type for the store: {media_type}")
    with Image.open(io.BytesIO(data)) as img:
        return img.size


def decode_rgb(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB")


@runtime_checkable
class ImageStore(Protocol):
    """A content-addressed image store shared by the tools (disk, or S3 with a local cache)."""

    location: str  # where the images live, for messages: a folder or s3://bucket/prefix
    thumbnail_side: int

    async def check(self) -> None:
        """Raise ``ConfigError`` (one line naming the setting) unless the store is usable."""

    async def put(self, data: bytes, media_type: str, meta: dict[str, Any] | None = None) -> StoredImage:
        """Store encoded image bytes (PNG, JPEG or WebP); an id that exists keeps its first record."""

    async def put_pil(self, image: Image.Image, meta: dict[str, Any] | None = None) -> StoredImage: ...

    async def get(self, image_id: str) -> StoredImage:
        """The record of ``image_id``; ``ImageNotFoundError`` when unknown."""

    async def read_bytes(self, image_id: str) -> tuple[bytes, str]:
        """The full image bytes and their media type."""

    async def open_pil(self, image_id: str) -> Image.Image: ...

    async def thumbnail(
        self, image_id: str, max_side: int | None = None, quality: int = DEFAULT_THUMBNAIL_QUALITY
    ) -> bytes:
        """A JPEG thumbnail, derived once and cached."""

    async def contains(self, image_id: str) -> bool: ...

    async def lookup_source(self, url: str) -> SourceEntry | None:
        """What an earlier download of ``url`` gave, if remembered."""

    async def remember_source(self, url: str, entry: SourceEntry) -> None: ...

    async def gc(self, older_than_s: float, *, dry_run: bool = False) -> GcReport:
        """Delete images (and source entries) not used for ``older_than_s`` seconds."""

    async def aclose(self) -> None: ...


class StoreHelpers:
    """``put_pil`` and ``open_pil`` in terms of ``put`` and ``read_bytes`` (shared by the stores)."""

    async def put(self, data: bytes, media_type: str, meta: dict[str, Any] | None = None) -> StoredImage:
        raise NotImplementedError

    async def read_bytes(self, image_id: str) -> tuple[bytes, str]:
        raise NotImplementedError

    async def put_pil(self, image: Image.Image, meta: dict[str, Any] | None = None) -> StoredImage:
        """Store a PIL image losslessly as PNG (encoded in a worker thread)."""
        return await self.put(await anyio.to_thread.run_sync(png_bytes, image), "image/png", meta)

    async def open_pil(self, image_id: str) -> Image.Image:
        data, _ = await self.read_bytes(image_id)
        return await anyio.to_thread.run_sync(decode_rgb, data)
