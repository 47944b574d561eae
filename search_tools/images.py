"""A content-addressed image store on disk.

An image's id is ``img_`` plus the first 16 hex digits of the SHA-256 of its
stored bytes, so the same picture found twice (or rendered twice with the same
seed) has one id. Files are written atomically (temp file + rename), so
concurrent writers of one image never expose a partial file. A size budget is
enforced with least-recently-used eviction; reads refresh an image's recency.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio
from PIL import Image

IMAGE_ID_PATTERN = re.compile(r"^img_[0-9a-f]{16}$")
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


class ImageNotFoundError(KeyError):
    """No image with this id is in the store (never stored, or evicted)."""

    def __str__(self) -> str:
        return f"unknown image id: {self.args[0]!r}"


@dataclass(frozen=True)
class StoredImage:
    """What the store knows about one image."""

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


def image_id_for(data: bytes) -> str:
    return "img_" + hashlib.sha256(data).hexdigest()[:16]


def is_image_id(value: str) -> bool:
    return bool(IMAGE_ID_PATTERN.match(value))


def make_thumbnail(data: bytes, max_side: int = 512, quality: int = 85) -> bytes:
    """JPEG thumbnail whose longest side is at most ``max_side`` pixels."""
    with Image.open(io.BytesIO(data)) as img:
        img = img.convert("RGB")
        img.thumbnail((max_side, max_side))
        out = io.BytesIO()
        img.save(out, format="JPEG", quality=quality)
        return out.getvalue()


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _decode_rgb(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB")


class ImageStore:
    """Images in a folder, addressed by content hash, bounded by ``max_total_bytes``."""

    def __init__(self, root: Path, *, max_total_bytes: int = 2 * 1024**3, thumbnail_side: int = 512) -> None:
        self.root = Path(root)
        self.max_total_bytes = max_total_bytes
        self.thumbnail_side = thumbnail_side
        self.root.mkdir(parents=True, exist_ok=True)
        # Bytes written since the last full scan, plus that scan's total. A put only rescans the
        # folder (the authority: other processes may share it) once this estimate exceeds the budget.
        self._lock = threading.Lock()
        self._estimated_bytes: int | None = None

    # -- public async API -------------------------------------------------
    async def put(self, data: bytes, media_type: str, meta: dict[str, Any] | None = None) -> StoredImage:
        """Store encoded image bytes (PNG, JPEG or WebP) and return their record."""
        return await anyio.to_thread.run_sync(self._put_sync, data, media_type, meta or {})

    async def put_pil(self, image: Image.Image, meta: dict[str, Any] | None = None) -> StoredImage:
        """Store a PIL image losslessly as PNG (encoded in a worker thread)."""
        return await self.put(await anyio.to_thread.run_sync(_png_bytes, image), "image/png", meta)

    async def get(self, image_id: str) -> StoredImage:
        return await anyio.to_thread.run_sync(self._get_sync, image_id)

    async def read_bytes(self, image_id: str) -> tuple[bytes, str]:
        """The full image bytes and their media type."""
        return await anyio.to_thread.run_sync(self._read_sync, image_id)

    async def open_pil(self, image_id: str) -> Image.Image:
        data, _ = await self.read_bytes(image_id)
        return await anyio.to_thread.run_sync(_decode_rgb, data)

    async def thumbnail(self, image_id: str) -> bytes:
        data, _ = await self.read_bytes(image_id)
        return await anyio.to_thread.run_sync(make_thumbnail, data, self.thumbnail_side)

    async def contains(self, image_id: str) -> bool:
        return is_image_id(image_id) and await anyio.to_thread.run_sync(self._meta_path(image_id).exists)

    # -- internals --------------------------------------------------------
    def _dir_for(self, image_id: str) -> Path:
        return self.root / image_id[4:6]

    def _meta_path(self, image_id: str) -> Path:
        return self._dir_for(image_id) / f"{image_id}.json"

    def _atomic_write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _put_sync(self, data: bytes, media_type: str, meta: dict[str, Any]) -> StoredImage:
        ext = _EXTENSIONS.get(media_type)
        if ext is None:
            raise ValueError(f"unsupported image media type for the store: {media_type}")
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
        image_id = image_id_for(data)
        meta_path = self._meta_path(image_id)
        if meta_path.exists():  # the same picture again: keep the first record, refresh recency
            self._touch(image_id)
            return self._get_sync(image_id)
        record = StoredImage(image_id, width, height, media_type, len(data), meta)
        self._atomic_write(self._dir_for(image_id) / f"{image_id}.{ext}", data)
        self._atomic_write(meta_path, json.dumps(record.to_dict()).encode())
        self._evict_over_budget(keep=image_id, added=len(data))
        return record

    def _get_sync(self, image_id: str) -> StoredImage:
        if not is_image_id(image_id):
            raise ImageNotFoundError(image_id)
        try:
            raw = json.loads(self._meta_path(image_id).read_text())
        except FileNotFoundError:
            raise ImageNotFoundError(image_id) from None
        return StoredImage(**raw)

    def _read_sync(self, image_id: str) -> tuple[bytes, str]:
        record = self._get_sync(image_id)
        path = self._dir_for(image_id) / f"{image_id}.{_EXTENSIONS[record.media_type]}"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ImageNotFoundError(image_id) from None
        self._touch(image_id)
        return data, record.media_type

    def _touch(self, image_id: str) -> None:
        now = time.time()
        try:
            os.utime(self._meta_path(image_id), (now, now))
        except FileNotFoundError:
            pass

    def _evict_over_budget(self, keep: str, added: int) -> None:
        with self._lock:
            if self._estimated_bytes is not None:
                self._estimated_bytes += added
            if self._estimated_bytes is not None and self._estimated_bytes <= self.max_total_bytes:
                return
            self._estimated_bytes = self._scan_and_evict(keep)

    def _scan_and_evict(self, keep: str) -> int:
        """Delete least recently used images until the folder fits the budget; returns the bytes kept."""
        entries: list[tuple[float, int, Path]] = []
        total = 0
        for meta_path in self.root.glob("*/img_*.json"):
            try:
                record = json.loads(meta_path.read_text())
                stamp = meta_path.stat().st_mtime
            except (FileNotFoundError, json.JSONDecodeError):
                continue
            total += record["size_bytes"]
            entries.append((stamp, record["size_bytes"], meta_path))
        if total <= self.max_total_bytes:
            return total
        for _, size, meta_path in sorted(entries):
            if total <= self.max_total_bytes:
                break
            image_id = meta_path.stem
            if image_id == keep:
                continue
            for path in meta_path.parent.glob(f"{image_id}.*"):
                path.unlink(missing_ok=True)
            total -= size
        return total
