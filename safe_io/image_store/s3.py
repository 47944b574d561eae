"""The image store on S3-compatible object storage (AWS S3, MinIO, Ceph, R2, GCS interoperability).

The client is obstore (Rust's ``object_store`` crate, async natively, signing,
retries and conditional puts built in; no botocore stack). It reads the
standard AWS variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_SESSION_TOKEN``, ...); the
``images`` settings override them.

Layout under ``s3://bucket/prefix``:

* ``img_<hash>``: the image bytes, with their ``Content-Type``;
* ``img_<hash>.json``: its record (size, media type, provenance), written after
  the image, so a record is only ever seen with its image;
* ``sources/<sha256 of URL>.json``: what a downloaded source URL gave.

Nothing read from the bucket is trusted: objects are streamed under a hard
size cap (``images.max_image_bytes``; records and source entries a few KB) and
an object whose announced size is over it is refused unread; image bytes must
hash to their id and match their record's size. A refusal is an
:class:`ImageIntegrityError`, is never cached, and is counted in ``events``
(and reported to the server's metrics when given). The local cache only ever
holds verified bytes, so reads it serves skip the bucket; but an id this
replica knows from its cache is confirmed in the bucket before ``put``,
``get`` or ``contains`` hands it out, and written back from the (verified)
cached bytes when the bucket lost it, so every replica can serve what any
replica returns.

Writes of images and records are conditional (``If-None-Match: *``): a write
of an id that exists is a no-op and the first record is kept. A local
:class:`DiskImageStore` serves as a size-bounded LRU read-through cache, and
holds the thumbnails derived from cached images.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import anyio
import obstore
from obstore.store import S3Store

from gen_searcher_core.errors import ConfigError
from safe_io.image_store.base import (
    DEFAULT_THUMBNAIL_QUALITY,
    GcReport,
    ImageIntegrityError,
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
from safe_io.image_store.disk import DiskImageStore
from safe_io.settings import ImageSettings

logger = logging.getLogger(__name__)
T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")

SOURCES = "sources"
CHECK_KEY = ".gen-searcher-check"
DEFAULT_MAX_IMAGE_BYTES = 64 * 1024**2
MAX_RECORD_BYTES = 64 * 1024  # an image record or source entry is a few hundred bytes
STREAM_CHUNK_BYTES = 1024 * 1024
_ERROR_CODE = re.compile(r"<Code>([A-Za-z]+)</Code>")
_CREDENTIAL_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "ExpiredToken",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "InvalidToken",
        "SignatureDoesNotMatch",
    }
)
_SETTINGS_HINT = (
    "check images.url (GEN_SEARCHER_IMAGES__URL), the endpoint (AWS_ENDPOINT_URL or images.endpoint_url) "
    "and the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or images.access_key_id/secret_access_key)"
)


def describe_s3_error(exc: BaseException) -> str:
    """Why an S3 call failed, in a few words: never the raw message (it quotes URLs and server XML)."""
    from obstore.exceptions import PermissionDeniedError, UnauthenticatedError

    text = str(exc)
    match = _ERROR_CODE.search(text)
    code = match.group(1) if match else None
    if code == "NoSuchBucket":
        return "the bucket does not exist (NoSuchBucket)"
    if code in _CREDENTIAL_CODES or isinstance(exc, (PermissionDeniedError, UnauthenticatedError)):
        return f"the credentials were refused ({code or type(exc).__name__})"
    if code:
        return f"the service answered {code}"
    lowered = text.lower()
    if "credential" in lowered:
        return "no usable credentials were found"
    if isinstance(exc, TimeoutError) or "timed out" in lowered:  # not "timeout": messages quote retry_timeout
        return "the endpoint did not answer in time"
    if "error sending request" in lowered or "connect" in lowered or "dns" in lowered:
        return "the endpoint did not answer (connection failed)"
    return f"the request failed ({type(exc).__name__})"


class _ConditionalPutUnsupported(Exception):
    """The store answered a conditional put with NotImplemented (older S3-compatible servers)."""


class _TooLarge(Exception):
    """An object is larger than the cap of its kind (announced or counted while streaming)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(size, limit)
        self.size = size
        self.limit = limit


class ImageStoreEvents(Protocol):
    """Where the store reports what it refused or restored (the server's metrics)."""

    def image_store_event(self, event: str) -> None: ...


def parse_s3_url(url: str) -> tuple[str, str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix, location shown in messages, without any userinfo)."""
    parts = urlsplit(url.strip())
    bucket = parts.hostname or ""
    if parts.scheme != "s3" or not bucket:
        raise ConfigError("images.url (GEN_SEARCHER_IMAGES__URL) must look like s3://bucket/prefix")
    prefix = parts.path.strip("/")
    return bucket, prefix, f"s3://{bucket}/{prefix}".rstrip("/")


class S3ImageStore(StoreHelpers):
    """Images in an S3 bucket under a prefix, with an optional local read-through cache."""

    def __init__(
        self,
        store: S3Store,
        *,
        location: str,
        cache: DiskImageStore | None = None,
        thumbnail_side: int = 512,
        timeout_s: float = 10.0,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
        events: ImageStoreEvents | None = None,
    ) -> None:
        self._s3 = store
        self.location = location
        self.cache = cache
        self.thumbnail_side = thumbnail_side
        self.max_image_bytes = max_image_bytes
        #: What this store refused or repaired: ``oversized``, ``hash_mismatch``, ``size_mismatch``,
        #: ``bad_record``, ``bad_source_entry``, ``removed`` (bytes that did not hash to their id, deleted),
        #: ``restored``, ``lost`` (an id known only to the local cache, not returned).
        self.events: Counter[str] = Counter()
        self._sink = events
        # A hard bound over the client's own timeouts and retries: no call waits longer than this.
        self._deadline_s = timeout_s * 3
        self._conditional_puts = True  # until the store says it does not implement them

    @classmethod
    def from_settings(cls, settings: ImageSettings, *, events: ImageStoreEvents | None = None) -> S3ImageStore:
        assert settings.url
        bucket, prefix, location = parse_s3_url(settings.url)
        config: dict[str, Any] = {}
        if settings.endpoint_url:
            config["endpoint"] = settings.endpoint_url
        if settings.region:
            config["region"] = settings.region
        for name in ("access_key_id", "secret_access_key", "session_token"):
            secret = getattr(settings, name)
            if secret is not None:
                config[name] = secret.get_secret_value()
        endpoint = settings.endpoint_url or _env_endpoint()
        timeout = timedelta(seconds=settings.timeout_s)
        try:
            store = S3Store(
                bucket,
                prefix=prefix or None,
                config=config,  # type: ignore[arg-type]
                client_options={
                    "allow_http": bool(endpoint and endpoint.startswith("http://")),
                    "timeout": timeout,
                    "connect_timeout": timedelta(seconds=min(settings.timeout_s, 3.0)),
                    # Below the idle timeout of S3-compatible servers (about 20 s), so a pooled
                    # connection is never one the server has just closed.
                    "pool_idle_timeout": timedelta(seconds=15),
                },
                retry_config={
                    "max_retries": 2,
                    "retry_timeout": timeout,
                    "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=1)},
                },
            )
        except Exception as exc:  # noqa: BLE001  obstore raises several types for a bad configuration
            raise ConfigError(
                f"image store {location} cannot be configured ({type(exc).__name__}): {_SETTINGS_HINT}"
            ) from None
        cache = None
        if settings.cache_max_bytes > 0:
            # One cache folder per bucket/prefix: switching stores never serves another store's images.
            folder = settings.cache_dir / hashlib.sha256(location.encode()).hexdigest()[:12]
            cache = DiskImageStore(
                folder,
                max_total_bytes=settings.cache_max_bytes,
                thumbnail_side=settings.thumbnail_side,
                setting="images.cache_dir (GEN_SEARCHER_IMAGES__CACHE_DIR)",
            )
        return cls(
            store,
            location=location,
            cache=cache,
            thumbnail_side=settings.thumbnail_side,
            timeout_s=settings.timeout_s,
            max_image_bytes=settings.max_image_bytes,
            events=events,
        )

    # -- plumbing -------------------------------------------------------------
    async def _call(self, awaitable: Awaitable[T], *, conditional: bool = False) -> T:
        """One S3 call under the deadline; failures other than not-found become ``ImageStoreUnavailable``.

        With ``conditional``, a store that does not implement conditional puts raises
        ``_ConditionalPutUnsupported`` instead.
        """
        from obstore.exceptions import AlreadyExistsError, NotSupportedError

        try:
            with anyio.fail_after(self._deadline_s):
                return await awaitable
        except (FileNotFoundError, AlreadyExistsError, _TooLarge, ImageStoreUnavailable):
            raise
        except Exception as exc:  # noqa: BLE001  obstore errors, timeouts, connection failures
            if conditional and (isinstance(exc, NotSupportedError) or "<Code>NotImplemented</Code>" in str(exc)):
                raise _ConditionalPutUnsupported from None
            reason = describe_s3_error(exc)
            logger.warning("image store %s: %s", self.location, reason)
            logger.debug("image store %s: %s failed: %s", self.location, type(exc).__name__, exc)
            raise ImageStoreUnavailable(f"image store {self.location} is unavailable: {reason}") from None

    async def _create(self, key: str, data: bytes, content_type: str) -> bool:
        """Put ``key`` unless it exists; True when this call created it.

        A conditional put (``If-None-Match: *``) where the store implements it; otherwise an
        existence check then a plain put (content addressing makes a racing writer's bytes
        the same, so the race is harmless; only which provenance record wins may differ).
        """
        from obstore.exceptions import AlreadyExistsError

        attributes: Any = {"Content-Type": content_type}
        if self._conditional_puts:
            try:
                await self._call(
                    obstore.put_async(self._s3, key, data, mode="create", attributes=attributes), conditional=True
                )
            except AlreadyExistsError:
                return False
            except _ConditionalPutUnsupported:
                logger.warning("image store %s has no conditional puts: writes check existence first", self.location)
                self._conditional_puts = False
            else:
                return True
        try:
            await self._call(obstore.head_async(self._s3, key))
            return False
        except FileNotFoundError:
            pass
        await self._call(obstore.put_async(self._s3, key, data, attributes=attributes))
        return True

    async def _get_object(self, key: str, limit: int, expect: Callable[[int], Awaitable[int]] | None = None) -> bytes:
        """The object's bytes, streamed: over ``limit`` raises ``_TooLarge`` without reading on.

        An object whose announced size is over the cap is refused before its body is read;
        the count while streaming guards against a size that lies. ``expect`` sees the
        announced size before the body is read and returns the exact size to allow (or raises).
        """

        async def fetch() -> bytes:
            nonlocal limit
            result = await obstore.get_async(self._s3, key)
            announced = int(result.meta["size"])
            if announced > limit:
                raise _TooLarge(announced, limit)
            if expect is not None:
                limit = await expect(announced)
            chunks: list[bytes] = []
            total = 0
            async for chunk in result.stream(min_chunk_size=min(STREAM_CHUNK_BYTES, limit + 1)):
                total += len(chunk)
                if total > limit:
                    raise _TooLarge(total, limit)
                chunks.append(chunk)
            return b"".join(chunks)

        return await self._call(fetch())

    def _count(self, event: str) -> None:
        self.events[event] += 1
        if self._sink is not None:
            self._sink.image_store_event(event)

    def _refuse(self, image_id: str, event: str, why: str) -> ImageIntegrityError:
        """Count a refused read and say what it was; the bytes go nowhere (no cache, no caller)."""
        self._count(event)
        logger.warning("image store %s: %s refused: %s", self.location, image_id, why)
        return ImageIntegrityError(f"image {image_id} in {self.location} failed verification: {why}; not served")

    async def _remove_forged(self, image_id: str) -> None:
        """Delete image bytes that do not hash to their id: nothing could ever serve them, and the
        next ``put`` of the real picture (a conditional put) writes it again instead of keeping them."""
        try:
            await self._call(obstore.delete_async(self._s3, image_id))
        except (FileNotFoundError, ImageStoreUnavailable):
            return  # the refusal stands; the next reader tries again
        self._count("removed")

    async def _exists(self, key: str) -> bool:
        try:
            await self._call(obstore.head_async(self._s3, key))
        except FileNotFoundError:
            return False
        return True

    async def _in_bucket(self, image_id: str) -> tuple[bool, bool]:
        """(image there, record there), asked concurrently."""
        found = {image_id: False, f"{image_id}.json": False}

        async def one(key: str) -> None:
            found[key] = await self._exists(key)

        try:
            async with anyio.create_task_group() as tg:
                for key in found:
                    tg.start_soon(one, key)
        except BaseExceptionGroup as group:
            raise group.exceptions[0] from None
        return found[image_id], found[f"{image_id}.json"]

    async def _confirm_in_bucket(self, record: StoredImage, data: bytes | None = None) -> bool:
        """True when the bucket holds ``record``'s image and record, writing back what it lost.

        The bytes come from ``data`` or the local cache, verified against the id first; with
        none usable, the id is dropped from the cache and False says it must not be returned.
        """
        image_there, record_there = await self._in_bucket(record.id)
        if image_there and record_there:
            return True
        if data is None and self.cache is not None:
            hit = await self._cached(self.cache.read_bytes(record.id))
            data = hit[0] if hit is not None else None
        if data is None or not await anyio.to_thread.run_sync(_matches, data, record):
            self._count("lost")
            logger.warning("image store %s lost %s and no good local copy is left", self.location, record.id)
            if self.cache is not None:
                await self._cached(self.cache.discard(record.id))
            return False
        if not image_there:
            await self._create(record.id, data, record.media_type)
        if not record_there:
            await self._create(f"{record.id}.json", json.dumps(record.to_dict()).encode(), "application/json")
        self._count("restored")
        logger.warning("image store %s had lost %s: written back from the local cache", self.location, record.id)
        return True

    async def _cached(self, awaitable: Awaitable[T]) -> T | None:
        """A cache operation; a cache that failed costs a trip to S3, never the call."""
        try:
            return await awaitable
        except ImageNotFoundError:
            return None
        except ImageStoreUnavailable as exc:
            logger.warning("local image cache skipped: %s", exc)
            return None

    async def _fetch_record(self, image_id: str) -> StoredImage:
        try:
            raw = await self._get_object(f"{image_id}.json", MAX_RECORD_BYTES)
        except FileNotFoundError:
            raise ImageNotFoundError(image_id) from None
        except _TooLarge as exc:
            raise self._refuse(image_id, "bad_record", f"its record is over {exc.limit} bytes") from None
        try:
            record = StoredImage.from_dict(json.loads(raw))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise self._refuse(image_id, "bad_record", "its record is not a valid image record") from None
        if record.id != image_id or not 0 < record.size_bytes <= self.max_image_bytes:
            raise self._refuse(image_id, "bad_record", "its record names another id or an impossible size")
        return record

    # -- the store ------------------------------------------------------------
    async def check(self) -> None:
        # One GET of a key that need not exist: "no such key" proves the bucket, endpoint and
        # credentials; a missing bucket, refused credentials or silence say what is wrong.
        try:
            with anyio.fail_after(self._deadline_s):
                await obstore.get_async(self._s3, CHECK_KEY)  # the answer, not the body: it is never read
        except FileNotFoundError as exc:
            if "NoSuchBucket" in str(exc):
                raise ConfigError(
                    f"image store {self.location} cannot be used: {describe_s3_error(exc)}; {_SETTINGS_HINT}"
                ) from None
        except Exception as exc:  # noqa: BLE001
            raise ConfigError(
                f"image store {self.location} cannot be used: {describe_s3_error(exc)}; {_SETTINGS_HINT}"
            ) from None
        if self.cache is not None:
            await self.cache.check()

    async def put(self, data: bytes, media_type: str, meta: dict[str, Any] | None = None) -> StoredImage:
        def describe() -> tuple[str, int, int]:
            return (image_id_for(data), *image_size(data, media_type))

        if len(data) > self.max_image_bytes:
            raise ValueError(
                f"image is {len(data)} bytes, over the store's limit of {self.max_image_bytes} "
                "(images.max_image_bytes, GEN_SEARCHER_IMAGES__MAX_IMAGE_BYTES)"
            )
        image_id, width, height = await anyio.to_thread.run_sync(describe)
        if self.cache is not None:
            known = await self._cached(self.cache.get(image_id))
            if known is not None and await self._confirm_in_bucket(known, data):
                return known
        record = StoredImage(image_id, width, height, media_type, len(data), dict(meta or {}))
        body = json.dumps(record.to_dict()).encode()
        await self._create(image_id, data, media_type)
        if not await self._create(f"{image_id}.json", body, "application/json"):
            try:
                record = await self._fetch_record(image_id)  # another writer was first: its record stands
            except ImageIntegrityError:  # unless it is no record of this image: this write's replaces it
                attributes: Any = {"Content-Type": "application/json"}
                await self._call(obstore.put_async(self._s3, f"{image_id}.json", body, attributes=attributes))
                self._count("restored")
        if self.cache is not None:
            await self._cached(self.cache.insert(record, data))
        return record

    async def get(self, image_id: str) -> StoredImage:
        if not is_image_id(image_id):
            raise ImageNotFoundError(image_id)
        if self.cache is not None:
            known = await self._cached(self.cache.get(image_id))
            if known is not None and await self._confirm_in_bucket(known):
                return known
        # The record and the image: an id is only returned when both are there.
        record, (image_there, _) = await self._gather(self._fetch_record(image_id), self._in_bucket(image_id))
        if not image_there:
            raise ImageNotFoundError(image_id)
        return record

    async def read_bytes(self, image_id: str) -> tuple[bytes, str]:
        if not is_image_id(image_id):
            raise ImageNotFoundError(image_id)
        if self.cache is not None:  # it only ever holds verified bytes: served as fast as the disk store
            hit = await self._cached(self.cache.read_bytes(image_id))
            if hit is not None:
                return hit

        # The record and the image are asked for at once; the image's body is only read once its
        # announced size matches the record's, so a wrong object costs a few headers, not its size.
        known: list[StoredImage] = []
        record_read = anyio.Event()

        async def fetch_record() -> StoredImage:
            known.append(await self._fetch_record(image_id))
            record_read.set()
            return known[0]

        async def expect(announced: int) -> int:
            await record_read.wait()
            if announced != known[0].size_bytes:
                raise self._refuse(
                    image_id, "size_mismatch", f"{announced} bytes where its record says {known[0].size_bytes}"
                )
            return announced

        async def fetch_data() -> bytes:
            try:
                return await self._get_object(image_id, self.max_image_bytes, expect)
            except FileNotFoundError:
                raise ImageNotFoundError(image_id) from None
            except _TooLarge as exc:
                raise self._refuse(image_id, "oversized", f"the object is over {exc.limit} bytes") from None

        record, data = await self._gather(fetch_record(), fetch_data())
        if len(data) != record.size_bytes:  # a size that lied while streaming
            raise self._refuse(
                image_id, "size_mismatch", f"{len(data)} bytes where its record says {record.size_bytes}"
            )
        if not await anyio.to_thread.run_sync(_matches, data, record):
            await self._remove_forged(image_id)
            raise self._refuse(image_id, "hash_mismatch", "its bytes do not hash to the id")
        if self.cache is not None:  # only verified bytes reach the cache
            await self._cached(self.cache.insert(record, data))
        return data, record.media_type

    async def _gather(self, first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
        """Both results, run concurrently; the first one's error wins (it is the one callers expect)."""
        results: list[Any] = [None, None]

        async def run(i: int, awaitable: Awaitable[Any]) -> None:
            results[i] = await awaitable

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(run, 0, first)
                tg.start_soon(run, 1, second)
        except BaseExceptionGroup as group:
            raise group.exceptions[0] from None
        return results[0], results[1]

    async def thumbnail(
        self, image_id: str, max_side: int | None = None, quality: int = DEFAULT_THUMBNAIL_QUALITY
    ) -> bytes:
        side = max_side or self.thumbnail_side
        if self.cache is not None:
            thumb = await self._cached(self.cache.thumbnail(image_id, side, quality))
            if thumb is not None:
                return thumb
        data, _ = await self.read_bytes(image_id)  # fills the cache
        if self.cache is not None:
            thumb = await self._cached(self.cache.thumbnail(image_id, side, quality))
            if thumb is not None:
                return thumb
        return await anyio.to_thread.run_sync(make_thumbnail, data, side, quality)

    async def contains(self, image_id: str) -> bool:
        if not is_image_id(image_id):
            return False
        if self.cache is not None:
            known = await self._cached(self.cache.get(image_id))
            if known is not None:
                return await self._confirm_in_bucket(known)
        return all(await self._in_bucket(image_id))

    async def lookup_source(self, url: str) -> SourceEntry | None:
        if self.cache is not None:
            entry = await self._cached(self.cache.lookup_source(url))
            if entry is not None:
                return entry
        try:
            raw = await self._get_object(f"{SOURCES}/{source_key(url)}.json", MAX_RECORD_BYTES)
            entry = SourceEntry.from_dict(json.loads(raw))
        except FileNotFoundError:
            return None
        except (_TooLarge, ValueError, KeyError, TypeError, AttributeError):
            self._count("bad_source_entry")
            return None
        if self.cache is not None:
            await self._cached(self.cache.remember_source(url, entry))
        return entry

    async def remember_source(self, url: str, entry: SourceEntry) -> None:
        body = json.dumps(entry.to_dict()).encode()
        await self._call(
            obstore.put_async(
                self._s3, f"{SOURCES}/{source_key(url)}.json", body, attributes={"Content-Type": "application/json"}
            )
        )
        if self.cache is not None:
            await self._cached(self.cache.remember_source(url, entry))

    async def gc(self, older_than_s: float, *, dry_run: bool = False) -> GcReport:
        """Delete objects stored more than ``older_than_s`` ago (S3 keeps no read times: age is since the write)."""
        cutoff = time.time() - older_than_s
        report = GcReport()
        doomed: list[str] = []
        async for chunk in obstore.list(self._s3):
            for item in chunk:
                path = str(item["path"])
                old = item["last_modified"].timestamp() < cutoff
                name = path.rsplit("/", 1)[-1]
                if path.startswith(f"{SOURCES}/"):
                    if old:
                        report.sources += 1
                        doomed.append(path)
                elif name.startswith("img_") and name.endswith(".json"):
                    if old:
                        report.images += 1
                        doomed.append(path)
                    else:
                        report.kept += 1
                elif is_image_id(name) and old:
                    report.bytes += int(item["size"])
                    doomed.append(path)
        if not dry_run and doomed:
            # Records sort after their images ("img_x" < "img_x.json"): delete records first.
            doomed.sort(key=lambda p: (not p.endswith(".json"), p))
            for start in range(0, len(doomed), 1000):
                await self._call(obstore.delete_async(self._s3, doomed[start : start + 1000]))
        if self.cache is not None and not dry_run:
            await self._cached(self.cache.gc(older_than_s))
        return report

    async def aclose(self) -> None:
        # obstore's tokio runtime is never shut down: a background task of the client (connection
        # teardown, a retry timer) still running when the interpreter finalizes aborts the process
        # (SIGABRT, seen in about 1 exit in 3 right after a failed request). A short pause lets them end.
        await anyio.sleep(0.1)


def _matches(data: bytes, record: StoredImage) -> bool:
    """Whether ``data`` is the image ``record`` names: its size and its content hash (run in a worker thread)."""
    return len(data) == record.size_bytes and image_id_for(data) == record.id


def _env_endpoint() -> str | None:
    import os

    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"):
        if os.environ.get(name):
            return os.environ[name]
    return None
