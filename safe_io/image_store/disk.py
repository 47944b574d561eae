"""The image store in a local folder: the embedded default, and the read-through cache of the S3 store.

Files are written atomically (temp file + rename), so concurrent writers of one
image never expose a partial file. A size budget is enforced with
least-recently-used eviction; reads refresh an image's recency (the mtime of
its record). Thumbnails are derived once and kept beside the image, and go
with it on eviction.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio

from gen_searcher_core.errors import ConfigError
from safe_io.image_store.base import (
    DEFAULT_THUMBNAIL_QUALITY,
    EXTENSIONS,
    GcReport,
    ImageNotFoundError,
    ImageStoreUnavailable,
    SourceEntry,
    StoredImage,
    StoreHelpers,
    image_id_for,
    image_size,
    is_image_id,
    make_thumbnail,
    source_key,
)

T = TypeVar("T")
SOURCES = "sources"


class DiskImageStore(StoreHelpers):
    """Images in a folder, addressed by content hash, bounded by ``max_total_bytes``.

    ``setting`` names the setting that chose the folder, for error messages.
    """

    def __init__(
        self,
        root: Path,
        *,
        max_total_bytes: int = 2 * 1024**3,
        thumbnail_side: int = 512,
        setting: str = "images.dir (GEN_SEARCHER_IMAGES__DIR)",
    ) -> None:
        self.root = Path(root)
        self.location = str(self.root)
        self.max_total_bytes = max_total_bytes
        self.thumbnail_side = thumbnail_side
        self.setting = setting
        # Bytes written since the last full scan, plus that scan's total. A put only rescans the
        # folder (the authority: other processes may share it) once this estimate exceeds the budget.
        self._lock = threading.Lock()
        self._estimated_bytes: int | None = None

    # -- public async API -------------------------------------------------
    async def check(self) -> None:
        try:
            await anyio.to_thread.run_sync(self._probe)
        except OSError as exc:
            raise ConfigError(self._unusable(exc, "cannot be used")) from None

    async def put(self, data: bytes, media_type: str, meta: dict[str, Any] | None = None) -> StoredImage:
        return await self._run(self._put_sync, data, media_type, meta or {})

    async def insert(self, record: StoredImage, data: bytes) -> None:
        """Keep a record that another store already holds (the S3 store's read-through cache)."""
        await self._run(self._insert_sync, record, data)

    async def get(self, image_id: str) -> StoredImage:
        return await self._run(self._get_sync, image_id)

    async def read_bytes(self, image_id: str) -> tuple[bytes, str]:
        return await self._run(self._read_sync, image_id)

    async def thumbnail(
        self, image_id: str, max_side: int | None = None, quality: int = DEFAULT_THUMBNAIL_QUALITY
    ) -> bytes:
        return await self._run(self._thumbnail_sync, image_id, max_side or self.thumbnail_side, quality)

    async def contains(self, image_id: str) -> bool:
        return is_image_id(image_id) and await anyio.to_thread.run_sync(self._meta_path(image_id).exists)

    async def discard(self, image_id: str) -> None:
        """Forget one image and its thumbnails (the S3 store's cache drops what it must not serve)."""
        if is_image_id(image_id):
            await self._run(self._discard_sync, image_id)

    async def lookup_source(self, url: str) -> SourceEntry | None:
        return await self._run(self._lookup_source_sync, url)

    async def remember_source(self, url: str, entry: SourceEntry) -> None:
        await self._run(self._remember_source_sync, url, entry)

    async def gc(self, older_than_s: float, *, dry_run: bool = False) -> GcReport:
        return await self._run(self._gc_sync, time.time() - older_than_s, dry_run)

    async def aclose(self) -> None:
        return None

    # -- errors -------------------------------------------------------------
    def _unusable(self, exc: OSError, what: str) -> str:
        reason = exc.strerror or type(exc).__name__
        return f"image store folder {self.root} {what} ({reason}): set {self.setting} to a writable folder"

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func`` in a worker thread; a folder that became unusable is a clear error, not a crash."""
        try:
            return await anyio.to_thread.run_sync(func, *args)
        except (ImageNotFoundError, ValueError):
            raise
        except OSError as exc:
            raise ImageStoreUnavailable(self._unusable(exc, "is not writable or readable")) from None

    # -- internals --------------------------------------------------------
    def _probe(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".probe-")
        os.close(fd)
        Path(tmp).unlink()

    def _dir_for(self, image_id: str) -> Path:
        return self.root / image_id[4:6]

    def _meta_path(self, image_id: str) -> Path:
        return self._dir_for(image_id) / f"{image_id}.json"

    def _image_path(self, record: StoredImage) -> Path:
        return self._dir_for(record.id) / f"{record.id}.{EXTENSIONS[record.media_type]}"

    def _source_path(self, url: str) -> Path:
        key = source_key(url)
        return self.root / SOURCES / key[:2] / f"{key}.json"

    def _atomic_write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _put_sync(self, data: bytes, media_type: str, meta: dict[str, Any]) -> StoredImage:
        width, height = image_size(data, media_type)
        image_id = image_id_for(data)
        if self._meta_path(image_id).exists():  # the same picture again: keep the first record
            self._touch(image_id)
            return self._get_sync(image_id)
        record = StoredImage(image_id, width, height, media_type, len(data), meta)
        self._insert_sync(record, data)
        return record

    def _insert_sync(self, record: StoredImage, data: bytes) -> None:
        if self._meta_path(record.id).exists():
            self._touch(record.id)
            return
        # The image first, then its record: a record is only ever seen with its image.
        self._atomic_write(self._image_path(record), data)
        self._atomic_write(self._meta_path(record.id), json.dumps(record.to_dict()).encode())
        self._evict_over_budget(keep=record.id, added=len(data))

    def _get_sync(self, image_id: str) -> StoredImage:
        if not is_image_id(image_id):
            raise ImageNotFoundError(image_id)
        try:
            raw = json.loads(self._meta_path(image_id).read_text())
        except FileNotFoundError:
            raise ImageNotFoundError(image_id) from None
        return StoredImage.from_dict(raw)

    def _read_sync(self, image_id: str) -> tuple[bytes, str]:
        record = self._get_sync(image_id)
        try:
            data = self._image_path(record).read_bytes()
        except FileNotFoundError:
            raise ImageNotFoundError(image_id) from None
        self._touch(image_id)
        return data, record.media_type

    def _thumbnail_sync(self, image_id: str, side: int, quality: int) -> bytes:
        path = self._dir_for(image_id) / f"{image_id}.t{side}q{quality}.jpg"
        with contextlib.suppress(FileNotFoundError):
            thumb = path.read_bytes()
            self._touch(image_id)
            return thumb
        data, _ = self._read_sync(image_id)
        thumb = make_thumbnail(data, side, quality)
        with contextlib.suppress(OSError):  # a cache: a folder that refuses it costs a re-encode, nothing more
            self._atomic_write(path, thumb)
        return thumb

    def _lookup_source_sync(self, url: str) -> SourceEntry | None:
        try:
            return SourceEntry.from_dict(json.loads(self._source_path(url).read_text()))
        except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError, ValueError):
            return None

    def _remember_source_sync(self, url: str, entry: SourceEntry) -> None:
        self._atomic_write(self._source_path(url), json.dumps(entry.to_dict()).encode())

    def _touch(self, image_id: str) -> None:
        now = time.time()
        with contextlib.suppress(OSError):  # recency is a hint; a read-only folder still serves reads
            os.utime(self._meta_path(image_id), (now, now))

    def _records(self) -> list[tuple[float, int, Path]]:
        """(last use, size, record path) of every image in the folder."""
        entries: list[tuple[float, int, Path]] = []
        for meta_path in self.root.glob("*/img_*.json"):
            try:
                size = int(json.loads(meta_path.read_text())["size_bytes"])
                stamp = meta_path.stat().st_mtime
            except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
            entries.append((stamp, size, meta_path))
        return entries

    def _delete_image(self, meta_path: Path) -> None:
        image_id = meta_path.stem
        meta_path.unlink(missing_ok=True)  # the record first: readers never see a record without its image
        for path in meta_path.parent.glob(f"{image_id}.*"):
            path.unlink(missing_ok=True)

    def _discard_sync(self, image_id: str) -> None:
        self._delete_image(self._meta_path(image_id))
        with self._lock:
            self._estimated_bytes = None

    def _evict_over_budget(self, keep: str, added: int) -> None:
        with self._lock:
            if self._estimated_bytes is not None:
                self._estimated_bytes += added
            if self._estimated_bytes is not None and self._estimated_bytes <= self.max_total_bytes:
                return
            self._estimated_bytes = self._scan_and_evict(keep)

    def _scan_and_evict(self, keep: str) -> int:
        """Delete least recently used images until the folder fits the budget; returns the bytes kept."""
        entries = self._records()
        total = sum(size for _, size, _ in entries)
        for _, size, meta_path in sorted(entries):
            if total <= self.max_total_bytes:
                break
            if meta_path.stem == keep:
                continue
            self._delete_image(meta_path)
            total -= size
        return total

    def _gc_sync(self, cutoff: float, dry_run: bool) -> GcReport:
        report = GcReport()
        for stamp, size, meta_path in self._records():
            if stamp >= cutoff:
                report.kept += 1
                continue
            report.images += 1
            report.bytes += size
            if not dry_run:
                self._delete_image(meta_path)
        for path in (self.root / SOURCES).glob("*/*.json"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    report.sources += 1
                    if not dry_run:
                        path.unlink(missing_ok=True)
        with self._lock:
            self._estimated_bytes = None
        return report
