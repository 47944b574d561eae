"""The S3 store trusts nothing it reads: sizes are capped while streaming, bytes must hash to their id,
and an id is only returned when every replica can serve it (a real moto server on loopback)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from safe_io.image_store import ImageIntegrityError, ImageNotFoundError, create_image_store, image_id_for
from safe_io.image_store.s3 import S3ImageStore
from search_tools.settings import ImageSettings
from tests.browse import content
from tests.support.s3 import BUCKET, S3Server

pytestmark = pytest.mark.anyio


class Bucket:
    """Direct access to the test bucket under one store's prefix (what an operator or a fault does)."""

    def __init__(self, server: S3Server, settings: ImageSettings) -> None:
        import boto3

        assert settings.url
        self.prefix = settings.url.removeprefix(f"s3://{BUCKET}/")
        self.client = boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            region_name="us-east-1",
            aws_access_key_id=server.access_key_id,
            aws_secret_access_key=server.secret_access_key,
        )

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=BUCKET, Key=f"{self.prefix}/{key}", Body=body)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=BUCKET, Key=f"{self.prefix}/{key}")

    def has(self, key: str) -> bool:
        listed = self.client.list_objects_v2(Bucket=BUCKET, Prefix=f"{self.prefix}/{key}")
        return any(item["Key"] == f"{self.prefix}/{key}" for item in listed.get("Contents", []))


@pytest.fixture
def replicas(tmp_path: Path, s3_server: S3Server) -> Iterator[tuple[ImageSettings, Bucket]]:
    settings = ImageSettings(**s3_server.images_settings(tmp_path / "cache-a", timeout_s=10.0))  # a loaded machine
    yield settings, Bucket(s3_server, settings)


def replica(settings: ImageSettings, cache_dir: Path, **update: Any) -> S3ImageStore:
    """Another server on the same bucket and prefix, with its own local cache."""
    store = create_image_store(settings.model_copy(update={"cache_dir": cache_dir, **update}))
    assert isinstance(store, S3ImageStore)
    return store


async def test_tampered_bytes_are_refused_never_cached_counted_and_replaced(
    tmp_path: Path, replicas: tuple[ImageSettings, Bucket]
) -> None:
    settings, bucket = replicas
    first = replica(settings, tmp_path / "a")
    data = content.jpeg_bytes((120, 90), (200, 40, 40))
    record = await first.put(data, "image/jpeg")
    other = content.jpeg_bytes((120, 90), (10, 200, 40))
    forged = other + b"\0" * (record.size_bytes - len(other)) if len(other) < record.size_bytes else other
    bucket.put(record.id, forged[: record.size_bytes])  # same size, other picture

    second = replica(settings, tmp_path / "b")
    with pytest.raises(ImageIntegrityError, match=rf"{record.id} in s3://.* failed verification: .*hash"):
        await second.read_bytes(record.id)
    assert second.events["hash_mismatch"] == 1
    assert second.cache is not None and not await second.cache.contains(record.id)
    assert not list((tmp_path / "b").rglob(f"{record.id}*"))  # nothing of it was kept
    # Bytes that do not hash to their id can never be served: they are deleted, so the id is unknown
    # (on every replica) until the real picture is stored again, which the next put does.
    assert second.events["removed"] == 1 and not bucket.has(record.id)
    with pytest.raises(ImageNotFoundError):
        await second.thumbnail(record.id)
    assert (await first.put(data, "image/jpeg")).id == record.id
    assert await second.read_bytes(record.id) == (data, "image/jpeg")

    third = replica(settings, tmp_path / "c")
    bucket.put(record.id, other)  # another size too: the record's size gives it away before the body is read
    with pytest.raises(ImageIntegrityError, match="bytes where its record says"):
        await third.read_bytes(record.id)
    assert third.events["size_mismatch"] == 1

    bucket.put(f"{record.id}.json", b'{"id": "img_0000000000000000", "width": 1}')
    with pytest.raises(ImageIntegrityError, match="record"):
        await third.get(record.id)
    assert third.events["bad_record"] == 1


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_an_oversized_object_is_refused_unread_with_bounded_memory(
    tmp_path: Path, replicas: tuple[ImageSettings, Bucket]
) -> None:
    settings, bucket = replicas
    cap = 1024 * 1024
    store = replica(settings, tmp_path / "a", max_image_bytes=cap)
    record = await store.put(content.jpeg_bytes((64, 64), (1, 2, 3)), "image/jpeg")
    huge_size = 96 * 1024 * 1024
    body = bytearray(huge_size)
    bucket.put(record.id, bytes(body))
    del body
    reader = replica(settings, tmp_path / "b", max_image_bytes=cap)

    peak = baseline = rss_bytes()
    done = threading.Event()

    def sample() -> None:  # the highest resident size while the read runs
        nonlocal peak
        while not done.wait(0.002):
            peak = max(peak, rss_bytes())

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with pytest.raises(ImageIntegrityError, match=f"over {cap} bytes"):
            await reader.read_bytes(record.id)
    finally:
        done.set()
        sampler.join()
    assert reader.events["oversized"] == 1
    assert peak - baseline < huge_size // 4, f"RSS grew by {(peak - baseline) >> 20} MiB reading a refused object"
    assert reader.cache is not None and not await reader.cache.contains(record.id)
    with pytest.raises(ValueError, match=r"images\.max_image_bytes"):  # and nothing that size is written
        await reader.put(b"\xff" * (cap + 1), "image/jpeg")


async def test_an_object_the_bucket_lost_is_written_back_from_the_cache(
    tmp_path: Path, replicas: tuple[ImageSettings, Bucket]
) -> None:
    settings, bucket = replicas
    first = replica(settings, tmp_path / "a")
    data = content.jpeg_bytes((100, 80), (30, 60, 90))
    record = await first.put(data, "image/jpeg")
    bucket.delete(record.id)
    bucket.delete(f"{record.id}.json")

    # Each way the first replica can hand the id out puts the objects back before it does.
    assert (await first.get(record.id)).id == record.id
    assert bucket.has(record.id) and bucket.has(f"{record.id}.json")
    assert first.events["restored"] == 1
    second = replica(settings, tmp_path / "b")
    assert await second.read_bytes(record.id) == (data, "image/jpeg")

    bucket.delete(record.id)
    assert (await first.put(data, "image/jpeg")).id == record.id
    assert bucket.has(record.id)
    bucket.delete(f"{record.id}.json")
    assert await first.contains(record.id) and bucket.has(f"{record.id}.json")
    assert first.events["restored"] == 3


async def test_an_id_without_a_good_copy_anywhere_is_not_returned(
    tmp_path: Path, replicas: tuple[ImageSettings, Bucket]
) -> None:
    settings, bucket = replicas
    first = replica(settings, tmp_path / "a")
    record = await first.put(content.jpeg_bytes((100, 80), (90, 60, 30)), "image/jpeg")
    bucket.delete(record.id)
    assert first.cache is not None
    cached = next((tmp_path / "a").rglob(f"{record.id}.jpg"))
    cached.write_bytes(b"not the picture")  # the local copy went bad too
    with pytest.raises(ImageNotFoundError):
        await first.get(record.id)
    assert not await first.contains(record.id)
    assert first.events["lost"] >= 1 and not await first.cache.contains(record.id)

    nocache = replica(settings, tmp_path / "c", cache_max_bytes=0)
    with pytest.raises(ImageNotFoundError):  # a record without its image names nothing
        await nocache.get(record.id)


async def test_a_second_replica_serves_every_id_the_first_returned(
    tmp_path: Path, replicas: tuple[ImageSettings, Bucket]
) -> None:
    settings, bucket = replicas
    first = replica(settings, tmp_path / "a")
    images = [content.jpeg_bytes((90, 90), (i * 20, 255 - i * 20, 7)) for i in range(6)]
    records = [await first.put(data, "image/jpeg") for data in images]
    for record in records[::2]:  # the bucket loses some objects; the first replica's cache still has them
        bucket.delete(record.id)
    for record in records[1::3]:
        bucket.delete(f"{record.id}.json")
    returned = [r.id for r in records if await first.contains(r.id)]
    returned += [(await first.get(r.id)).id for r in records]
    second = replica(settings, tmp_path / "b", cache_max_bytes=0)
    for image_id in set(returned):
        data, _ = await second.read_bytes(image_id)
        assert image_id_for(data) == image_id
        assert json.loads(json.dumps((await second.get(image_id)).to_dict()))["id"] == image_id


async def test_the_tool_server_refuses_tampered_images_and_counts_them(
    tmp_path: Path, replicas: tuple[ImageSettings, Bucket], s3_server: S3Server
) -> None:
    import httpx
    from mcp import Client
    from mcp.shared.exceptions import MCPError

    from tests.support.tool_server import run_tool_server, write_index

    settings, bucket = replicas
    writer = replica(settings, tmp_path / "a")
    record = await writer.put(content.jpeg_bytes((120, 90), (200, 40, 40)), "image/jpeg")
    bucket.put(record.id, b"x" * record.size_bytes)
    images = s3_server.images_settings(tmp_path / "server-cache", timeout_s=10.0) | {"url": settings.url}
    with run_tool_server(tmp_path, index=write_index(tmp_path), images=images) as ts:
        async with httpx.AsyncClient(base_url=ts.base_url) as http:
            answer = await http.get(f"/images/{record.id}")
            assert answer.status_code == 503 and "failed verification" in answer.json()["error"]
            bucket.put(record.id, b"x" * record.size_bytes)  # the forged bytes were deleted: forge them again
            async with Client(ts.url) as client:
                with pytest.raises(MCPError, match="failed verification"):
                    await client.read_resource(f"image://{record.id}")
            assert (await http.get("/healthz")).status_code == 200
            exposed = (await http.get("/metrics")).text
        assert 'gen_searcher_image_store_events_total{event="hash_mismatch"} 2.0' in exposed
        assert 'gen_searcher_image_store_events_total{event="removed"} 2.0' in exposed


async def test_a_remembered_source_whose_record_was_forged_is_downloaded_again(
    tmp_path: Path, replicas: tuple[ImageSettings, Bucket]
) -> None:
    from collections import Counter

    from safe_io.fetcher import GuardedFetcher
    from safe_io.netguard import AddressPolicy
    from search_tools.backends.base import ImageHit
    from search_tools.image_fetch import ImageCollector
    from tests.image_store.test_reuse_and_faults import image_host
    from tests.support.loopback import serve_app

    settings, bucket = replicas
    downloads: Counter[str] = Counter()
    with serve_app(image_host(downloads)) as base:
        fetcher = GuardedFetcher(
            user_agent="gen-searcher-tests",
            policy=AddressPolicy.from_strings(False, [f"127.0.0.1:{base.rsplit(':', 1)[1]}"]),
            respect_robots=False,
            timeout_s=20.0,
        )
        hits = [ImageHit(image_url=f"{base}/img/a.png", page_url=f"{base}/p", title="a", position=1)]
        try:
            found, _ = await ImageCollector(fetcher, replica(settings, tmp_path / "a"), reuse_sources_s=3600).collect(
                hits, 1
            )
            image_id = found[0].image.id
            bucket.put(f"{image_id}.json", b"{not a record")
            other = ImageCollector(fetcher, replica(settings, tmp_path / "b"), reuse_sources_s=3600)
            again, dropped = await other.collect(hits, 1)  # not an error: the candidate is fetched again
            assert [f.image.id for f in again] == [image_id] and not dropped
            assert downloads["a.png"] == 2
        finally:
            await fetcher.aclose()
