"""The image store suite, run against every backend (disk, S3 with and without the local cache)."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from PIL import Image

from safe_io.image_store import (
    ImageNotFoundError,
    ImageStore,
    ImageStoreUnavailable,
    SourceEntry,
    image_id_for,
    is_image_id,
)
from tests.browse import content
from tests.support import images

pytestmark = pytest.mark.anyio


def png_bytes(size: tuple[int, int]) -> bytes:
    return images.png_bytes((40, 160, 90), size)


async def test_store_and_read_round_trip(store: ImageStore) -> None:
    data = content.jpeg_bytes((120, 80), (200, 30, 30))
    record = await store.put(data, "image/jpeg", {"source_url": "https://example.org/a.jpg"})
    assert record.id == image_id_for(data) and record.uri == f"image://{record.id}"
    assert (record.width, record.height, record.media_type, record.size_bytes) == (120, 80, "image/jpeg", len(data))
    assert await store.read_bytes(record.id) == (data, "image/jpeg")
    assert await store.get(record.id) == record
    assert await store.contains(record.id)


async def test_metadata_round_trips_with_any_text(make_store: Any) -> None:
    writer, reader = make_store(share=True), make_store(share=True)
    meta = {
        "source_url": "https://example.jp/" + "東京タワー/" * 300,  # long and not ASCII
        "page_url": "https://example.ch/zürich?q=café",
        "title": "Zürich — old town ☕",
        "prompt": "a fox " * 200,
        "seed": 7,
    }
    record = await writer.put(png_bytes((70, 90)), "image/png", meta)
    seen = await reader.get(record.id)  # another replica: no local index, only the store
    assert seen.meta == meta and (seen.width, seen.height, seen.media_type) == (70, 90, "image/png")


async def test_writes_of_an_existing_id_keep_the_first_record(store: ImageStore) -> None:
    data = content.jpeg_bytes((100, 80))
    first = await store.put(data, "image/jpeg", {"source_url": "a"})
    again = await store.put(data, "image/jpeg", {"source_url": "b"})
    assert first.id == again.id and again.meta == {"source_url": "a"}
    assert await store.read_bytes(first.id) == (data, "image/jpeg")


async def test_concurrent_writers_of_one_id_never_corrupt_it(make_store: Any) -> None:
    replicas = [make_store(share=True) for _ in range(4)]
    data = content.jpeg_bytes((640, 480), (10, 200, 30))
    records = []

    async def writer(store: ImageStore, n: int) -> None:
        records.append(await store.put(data, "image/jpeg", {"writer": n}))

    async with anyio.create_task_group() as tg:
        for n in range(16):
            tg.start_soon(writer, replicas[n % 4], n)
    assert len({r.id for r in records}) == 1 and len({r.meta["writer"] for r in records}) >= 1
    for store in replicas:
        assert await store.read_bytes(records[0].id) == (data, "image/jpeg")
    first_meta = (await replicas[0].get(records[0].id)).meta
    for store in replicas[1:]:
        assert (await store.get(records[0].id)).meta in ({"writer": n} for n in range(16))
    assert first_meta in ({"writer": n} for n in range(16))


@pytest.mark.parametrize("image_id", ["img_0000000000000000", "img_123", "../etc/passwd", "img_0123456789abcdef\n"])
async def test_missing_or_malformed_ids_are_unknown(store: ImageStore, image_id: str) -> None:
    for call in (store.get, store.read_bytes, store.thumbnail):
        with pytest.raises(ImageNotFoundError, match="unknown image id"):
            await call(image_id)
    assert not await store.contains(image_id)


def test_an_id_with_a_trailing_newline_is_not_an_id() -> None:
    assert is_image_id("img_0123456789abcdef") and not is_image_id("img_0123456789abcdef\n")


async def test_pil_images_round_trip_losslessly(store: ImageStore) -> None:
    original = Image.new("RGBA", (70, 80), (10, 120, 230, 255))
    original.putpixel((3, 4), (250, 5, 5, 255))
    record = await store.put_pil(original, {"source": "render"})
    opened = await store.open_pil(record.id)
    assert opened.mode == "RGB" and opened.size == (70, 80) and opened.getpixel((3, 4)) == (250, 5, 5)


async def test_thumbnails_are_small_jpegs_derived_once(make_store: Any) -> None:
    store = make_store(thumbnail_side=256)
    record = await store.put(content.jpeg_bytes((1600, 900)), "image/jpeg")
    first = await store.thumbnail(record.id)
    with Image.open(io.BytesIO(first)) as thumb:
        assert thumb.format == "JPEG" and thumb.size == (256, 144)
    assert await store.thumbnail(record.id) == first
    with Image.open(io.BytesIO(await store.thumbnail(record.id, 64, 60))) as small:
        assert small.size == (64, 36)


async def test_source_entries_round_trip_between_replicas(make_store: Any) -> None:
    one, two = make_store(share=True), make_store(share=True)
    assert await one.lookup_source("https://example.org/x.jpg") is None
    await one.remember_source("https://example.org/x.jpg", SourceEntry(image_id="img_0123456789abcdef"))
    await one.remember_source("https://example.org/y.gif", SourceEntry(rejected="too small"))
    assert (await two.lookup_source("https://example.org/x.jpg")).image_id == "img_0123456789abcdef"
    assert (await two.lookup_source("https://example.org/y.gif")).rejected == "too small"


async def test_gc_deletes_only_what_is_older_than_asked(make_store: Any) -> None:
    store = make_store()
    record = await store.put(content.jpeg_bytes((90, 90), (1, 2, 3)), "image/jpeg")
    await store.remember_source("https://example.org/z.jpg", SourceEntry(image_id=record.id))
    kept = await store.gc(3600)  # nothing is an hour old
    assert (kept.images, kept.kept) == (0, 1) and await store.contains(record.id)
    preview = await store.gc(-60, dry_run=True)  # "older than a minute from now": everything, but only a preview
    assert preview.images == 1 and await store.contains(record.id)
    report = await store.gc(-60)
    assert report.images == 1 and report.sources == 1
    other = make_store()  # a fresh replica sees it gone too
    assert not await store.contains(record.id) and not await other.contains(record.id)
    with pytest.raises(ImageNotFoundError):
        await store.read_bytes(record.id)


async def test_disk_store_evicts_least_recently_used_over_budget(tmp_path: Path) -> None:
    from safe_io.image_store import DiskImageStore

    images = [content.jpeg_bytes((200, 200), (i * 40, 10, 10)) for i in range(3)]
    store = DiskImageStore(tmp_path, max_total_bytes=sum(len(d) for d in images[:2]) + 10)
    a = await store.put(images[0], "image/jpeg")
    await anyio.sleep(0.02)
    b = await store.put(images[1], "image/jpeg")
    await anyio.sleep(0.02)
    await store.read_bytes(a.id)
    await anyio.sleep(0.02)
    await store.put(images[2], "image/jpeg")
    assert await store.contains(a.id) and not await store.contains(b.id)


async def test_s3_local_cache_is_bounded_and_reads_through(tmp_path: Path, s3_server: Any) -> None:
    from safe_io.image_store import create_image_store
    from search_tools.settings import ImageSettings

    images = [content.jpeg_bytes((200, 200), (i * 40, 90, 10)) for i in range(4)]
    budget = len(images[0]) + len(images[1]) + 10
    settings = ImageSettings(**s3_server.images_settings(tmp_path / "cache", cache_max_bytes=budget))
    store = create_image_store(settings)
    records = [await store.put(data, "image/jpeg") for data in images]
    cache = store.cache  # type: ignore[attr-defined]
    cached = [await cache.contains(r.id) for r in records]
    assert cached[-1] and cached.count(True) <= 2  # the local copy is bounded...
    for record, data in zip(records, images, strict=True):
        assert await store.read_bytes(record.id) == (data, "image/jpeg")  # ...and S3 still has everything


async def test_s3_outage_is_a_clear_error_and_recovery_is_automatic(tmp_path: Path, s3_server: Any) -> None:
    from safe_io.image_store import create_image_store
    from search_tools.settings import ImageSettings

    store = create_image_store(ImageSettings(**s3_server.images_settings(tmp_path / "c", cache_max_bytes=0)))
    record = await store.put(content.jpeg_bytes((80, 80), (5, 5, 5)), "image/jpeg")
    s3_server.pause()
    try:
        started = time.monotonic()
        with pytest.raises(ImageStoreUnavailable, match=r"image store s3://.* is unavailable: the endpoint"):
            await store.read_bytes(record.id)
        with pytest.raises(ImageStoreUnavailable):
            await store.put(content.jpeg_bytes((80, 80), (9, 9, 9)), "image/jpeg")
        assert time.monotonic() - started < 30  # bounded by the deadline (3 x timeout_s each), generous here
    finally:
        s3_server.resume()
    assert (await store.read_bytes(record.id))[1] == "image/jpeg"


async def test_disk_folder_that_becomes_unusable_is_a_clear_error(tmp_path: Path) -> None:
    import shutil

    from safe_io.image_store import DiskImageStore

    root = tmp_path / "images"
    store = DiskImageStore(root)
    await store.check()
    shutil.rmtree(root)
    root.write_text("not a folder")  # as root, permissions cannot make a folder unwritable; a file in its place can
    with pytest.raises(ImageStoreUnavailable, match=r"image store folder .*images.* set images.dir"):
        await store.put(content.jpeg_bytes((80, 80)), "image/jpeg")


async def test_s3_server_that_goes_away_and_returns(tmp_path: Path) -> None:
    from safe_io.image_store import create_image_store
    from search_tools.settings import ImageSettings
    from tests.support.s3 import S3Server

    server = S3Server()
    try:
        server.start()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    try:
        section = server.images_settings(tmp_path / "c", cache_max_bytes=0)
        store = create_image_store(ImageSettings(**section))
        await store.put(content.jpeg_bytes((80, 80), (1, 1, 1)), "image/jpeg")
        server.stop()  # connection refused from now on
        started = time.monotonic()
        with pytest.raises(ImageStoreUnavailable, match="the endpoint did not answer"):
            await store.put(content.jpeg_bytes((80, 80), (2, 2, 2)), "image/jpeg")
        assert time.monotonic() - started < 30
        server.start()  # a fresh server on the same port (moto keeps nothing): the same store works again
        record = await store.put(content.jpeg_bytes((80, 80), (3, 3, 3)), "image/jpeg")
        assert (await store.read_bytes(record.id))[1] == "image/jpeg"
    finally:
        server.stop()
