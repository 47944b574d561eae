"""Image validation, the download collector (over the loopback web) and the content-addressed store."""

from __future__ import annotations

import io
from pathlib import Path

import anyio
import pytest
from PIL import Image

from safe_io.image_store import DiskImageStore as ImageStore
from safe_io.image_store import ImageNotFoundError, image_id_for
from search_tools.backends.base import ImageHit
from search_tools.image_fetch import ImageCollector, ImageRejected, validate_image
from tests.browse import content
from tests.browse.conftest import IMAGES, Web, make_fetcher

pytestmark = pytest.mark.anyio
LIMITS = {"min_side": 64, "max_pixels": 40_000_000}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("corrupt.jpg", "not a readable image"),
        ("truncated.jpg", "corrupt or truncated"),
        ("tiny.png", "smaller than 64 px"),
        ("bomb.png", "pixels"),
        ("big-canvas.png", "7000x7000, over the limit of 40000000 pixels"),
        ("page.html", "not a readable image"),
    ],
)
def test_unusable_images_are_rejected_with_a_reason(name: str, message: str) -> None:
    pil_limit = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageRejected, match=message):
        validate_image(IMAGES[name][0], **LIMITS)
    assert pil_limit == Image.MAX_IMAGE_PIXELS  # PIL's global guard is left alone


def test_the_pixel_cap_is_per_call() -> None:
    data = content.jpeg_bytes((400, 300))
    with pytest.raises(ImageRejected, match="over the limit of 100000 pixels"):
        validate_image(data, min_side=64, max_pixels=100_000)
    assert validate_image(data, min_side=64, max_pixels=120_000)[1] == "image/jpeg"


def test_rgb_jpeg_is_kept_as_downloaded() -> None:
    data = IMAGES["harbour.jpg"][0]
    assert validate_image(data, **LIMITS) == (data, "image/jpeg")


def test_transparent_png_becomes_rgb_on_white() -> None:
    out, media_type = validate_image(IMAGES["lens.png"][0], **LIMITS)
    assert media_type == "image/png"
    with Image.open(io.BytesIO(out)) as img:
        assert img.mode == "RGB" and img.size == (200, 200)
        assert img.getpixel((2, 2)) == (255, 255, 255)  # was transparent
        assert img.getpixel((100, 100)) == (0, 200, 0)


def test_animated_gif_takes_its_first_frame() -> None:
    out, media_type = validate_image(IMAGES["flash.gif"][0], **LIMITS)
    assert media_type == "image/png"
    with Image.open(io.BytesIO(out)) as img:
        assert img.mode == "RGB" and not getattr(img, "is_animated", False)
        red, green, blue = img.getpixel((60, 50))
        assert red > 180 and green < 60 and blue < 60  # the first frame is red


def hit(web: Web, name: str, position: int) -> ImageHit:
    return ImageHit(image_url=web.url(f"/img/{name}"), page_url=web.url("/gallery"), title=name, position=position)


async def test_collector_keeps_good_images_in_order_and_drops_the_rest(tmp_path: Path, web: Web) -> None:
    names = [
        "corrupt.jpg",
        "tower.jpg",
        "tiny.png",
        "harbour.jpg",
        "harbour-copy.jpg",
        "bomb.png",
        "flash.gif",
        "missing.jpg",
        "lens.png",
    ]
    fetcher = make_fetcher(web)
    store = ImageStore(tmp_path / "images")
    try:
        collector = ImageCollector(fetcher, store, **LIMITS)
        found, dropped = await collector.collect([hit(web, n, i) for i, n in enumerate(names, 1)], want=10)
    finally:
        await fetcher.aclose()
    assert [f.source_url.rsplit("/", 1)[1] for f in found] == ["tower.jpg", "harbour.jpg", "flash.gif", "lens.png"]
    assert found[1].image.id == image_id_for(IMAGES["harbour.jpg"][0])  # harbour-copy.jpg: same bytes, same id
    assert len({f.image.id for f in found}) == 4
    assert found[0].to_dict() == {
        "id": found[0].image.id,
        "title": "tower.jpg",
        "page_url": web.url("/gallery"),
        "source_url": web.url("/img/tower.jpg"),
        "width": 400,
        "height": 600,
    }
    reasons = "\n".join(dropped)
    for expected in [
        "corrupt.jpg: not a readable image",
        "tiny.png: image is 16x16",
        "bomb.png:",
        "missing.jpg: HTTP 404",
    ]:
        assert expected in reasons
    stored = await store.get(found[0].image.id)
    assert stored.meta["source_url"] == web.url("/img/tower.jpg")


async def test_collector_refuses_internal_image_urls(tmp_path: Path, web: Web) -> None:
    fetcher = make_fetcher(web)
    try:
        collector = ImageCollector(fetcher, ImageStore(tmp_path / "images"), **LIMITS)
        bad = ImageHit(image_url=f"{web.internal_base}/secret.png", page_url="", title="x", position=1)
        meta = ImageHit(image_url="http://169.254.169.254/latest/meta-data/", page_url="", title="y", position=2)
        found, dropped = await collector.collect([bad, meta], want=2)
    finally:
        await fetcher.aclose()
    assert found == [] and all("refused" in reason for reason in dropped)


# -- the store ---------------------------------------------------------------------------------------


async def test_store_dedupes_by_content(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    data = content.jpeg_bytes((100, 80))
    first = await store.put(data, "image/jpeg", {"source_url": "a"})
    second = await store.put(data, "image/jpeg", {"source_url": "b"})
    assert first.id == second.id == image_id_for(data)
    assert second.meta == {"source_url": "a"}  # the first record is kept
    assert len(list(tmp_path.glob("*/img_*.jpg"))) == 1  # noqa: ASYNC240 - the test reads what the store wrote
    assert (await store.read_bytes(first.id)) == (data, "image/jpeg")
    with pytest.raises(ImageNotFoundError):
        await store.get("img_0000000000000000")


async def test_pil_images_round_trip_losslessly_as_rgb(tmp_path: Path) -> None:
    from PIL import Image

    store = ImageStore(tmp_path)
    original = Image.new("RGBA", (70, 80), (10, 120, 230, 255))
    original.putpixel((3, 4), (250, 5, 5, 255))
    record = await store.put_pil(original, {"source": "render"})
    assert (record.width, record.height, record.media_type) == (70, 80, "image/png")
    opened = await store.open_pil(record.id)
    assert opened.mode == "RGB" and opened.size == (70, 80)
    assert opened.getpixel((3, 4)) == (250, 5, 5) and opened.getpixel((0, 0)) == (10, 120, 230)


async def test_concurrent_writes_of_one_image_are_atomic(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    data = content.jpeg_bytes((640, 480), (10, 200, 30))
    records = []

    async def writer() -> None:  # each put runs in its own worker thread
        records.append(await store.put(data, "image/jpeg", {}))

    async with anyio.create_task_group() as tg:
        for _ in range(16):
            tg.start_soon(writer)
    image_id = records[0].id
    assert len(records) == 16 and {r.id for r in records} == {image_id}
    files = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())  # noqa: ASYNC240 - reads what was written
    assert files == [f"{image_id}.jpg", f"{image_id}.json"]  # no temp files left behind
    assert (tmp_path / image_id[4:6] / f"{image_id}.jpg").read_bytes() == data
    assert (await store.read_bytes(image_id))[0] == data


async def test_store_evicts_least_recently_used_over_budget(tmp_path: Path) -> None:
    images = [content.jpeg_bytes((200, 200), (i * 40, 10, 10)) for i in range(3)]
    budget = sum(len(d) for d in images[:2]) + 10  # room for two
    store = ImageStore(tmp_path, max_total_bytes=budget)
    a = await store.put(images[0], "image/jpeg")
    await anyio.sleep(0.02)
    b = await store.put(images[1], "image/jpeg")
    await anyio.sleep(0.02)
    await store.read_bytes(a.id)  # a is now more recent than b
    await anyio.sleep(0.02)
    c = await store.put(images[2], "image/jpeg")
    assert await store.contains(a.id) and await store.contains(c.id)
    assert not await store.contains(b.id)
    with pytest.raises(ImageNotFoundError):
        await store.read_bytes(b.id)


async def test_thumbnails_are_small_jpegs(tmp_path: Path) -> None:
    store = ImageStore(tmp_path, thumbnail_side=512)
    record = await store.put(content.jpeg_bytes((1600, 900)), "image/jpeg")
    with Image.open(io.BytesIO(await store.thumbnail(record.id))) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) == 512 and thumb.size == (512, 288)
