"""Speed of the image store: disk, S3, and S3 behind the local read-through cache, side by side.

    .venv/bin/python -m perf.image_store [--thumbs 40] [--full 12] [--searches 6]
    .venv/bin/python -m perf.image_store --s3-url s3://bucket/prefix   # a real endpoint (AWS_* vars)

Without ``--s3-url`` a moto S3 server (``pip install 'moto[server]'``) is
started on loopback, so S3 figures are those of a local, unoptimised server:
they bound the client's overhead, not a real network's latency.

Part 1 stores then reads thumbnail-sized (512x384 JPEG) and full-size
(1024x1024 PNG, a render) images one at a time and prints images/s, MB/s, p50
and p99 per operation: disk; S3 without a cache; S3 with the cache (the cold
read fills it, the warm read is served from it). Target: a warm read within
1.2x of the disk store.

Part 2 runs ``image_search`` end to end through an in-process MCP session
(Serper-style provider and image host on loopback), disk against S3 with its
cache, interleaved: first calls (provider, downloads, stores, thumbnails) and
repeated calls (answered from the tool's short-lived result memo: no store
work). Target: S3 within 1.3x of disk.

Part 3 reads what the store must refuse: an image whose bytes were replaced
(same size) and a large object (``--oversized-mib``, 512 by default) under an
image id, each read two ways side by side: "whole, unverified" (one GET read
whole, as reads were before verification) and the store's ``read_bytes``
(streamed under ``images.max_image_bytes``, hashed against the id). Printed:
time, peak RSS growth (sampled every 2 ms) and the longest stall of the event
loop (what a health check waits). Target: the oversized read refused in well
under a second with RSS growth far below the object's size.

Part 4 measures an image_search result (the whole result as JSON: text,
structured content and thumbnails) against ``images.thumbnail_budget_bytes``
for top_k 1, 5 and 10 over pure noise and noisy photos. Target: a result that
must shrink lands within the budget and not far under it (>= 85%), and top_k 10
is never smaller than top_k 5. Before the budget counted the whole result and
was spent evenly (commit 7009cb5), pure noise gave top_k 5: 397 KB (76%),
top_k 10: 371 KB (71%).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from PIL import Image

from safe_io.image_store import ImageStore, create_image_store, image_id_for
from search_tools.settings import ImageSettings

BUCKET = "gen-searcher-perf"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    if binary is None:
        sys.exit("moto_server not found: pip install 'moto[server]' or pass --s3-url")
    port = free_port()
    process = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline:
                sys.exit("moto_server did not start")
            time.sleep(0.05)
    endpoint = f"http://127.0.0.1:{port}"
    import boto3

    boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="perf", aws_secret_access_key="perf"
    ).create_bucket(Bucket=BUCKET)
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "perf",
            "AWS_SECRET_ACCESS_KEY": "perf",
            "AWS_REGION": "us-east-1",
        }
    )
    return process, f"s3://{BUCKET}"


def noise_image(size: tuple[int, int], seed: int, fmt: str) -> bytes:
    base = Image.effect_noise(size, 40 + seed % 30).convert("RGB")
    tint = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    img = Image.blend(base, tint, 0.5)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"quality": 88} if fmt == "JPEG" else {}))
    return buf.getvalue()


async def timed(op: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await op()
    return time.perf_counter() - started


def row(name: str, op: str, times: list[float], nbytes: int) -> str:
    total = sum(times)
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return (
        f"{name:<18}{op:<12}{len(times) / total:>9.1f}{nbytes / total / 1e6:>9.1f}"
        f"{statistics.median(times) * 1000:>10.2f}{p99 * 1000:>10.2f}"
    )


async def part1(s3_url: str, tmp: Path, thumbs: int, full: int) -> None:
    print("\n== Part 1: one operation at a time (images/s, MB/s, p50 ms, p99 ms) ==")
    print(f"{'store':<18}{'operation':<12}{'img/s':>9}{'MB/s':>9}{'p50 ms':>10}{'p99 ms':>10}")
    sets = {
        "thumbnail-sized": ([noise_image((512, 384), i, "JPEG") for i in range(thumbs)], "image/jpeg"),
        "full-size": ([noise_image((1024, 1024), 1000 + i, "PNG") for i in range(full)], "image/png"),
    }
    for label, (images, media_type) in sets.items():
        nbytes = sum(len(d) for d in images)
        print(f"-- {label}: {len(images)} images, {nbytes / len(images) / 1024:.0f} KiB each on average")
        stores: dict[str, ImageStore] = {
            "disk": create_image_store(ImageSettings(dir=tmp / f"disk-{label}")),
            "s3 (no cache)": create_image_store(
                ImageSettings(url=f"{s3_url}/{uuid.uuid4().hex[:8]}", cache_max_bytes=0)
            ),
            "s3 + local cache": create_image_store(
                ImageSettings(url=f"{s3_url}/{uuid.uuid4().hex[:8]}", cache_dir=tmp / f"cache-{label}")
            ),
        }
        for name, store in stores.items():
            await store.check()
            puts = [await timed(functools.partial(store.put, d, media_type)) for d in images]

            ids = [image_id_for(d) for d in images]
            print(row(name, "store", puts, nbytes))
            cache = getattr(store, "cache", None)
            if cache is not None:  # a replica that did not write them: cold reads go to S3 and fill the cache
                shutil.rmtree(cache.root, ignore_errors=True)
                cold = [await timed(functools.partial(store.read_bytes, i)) for i in ids]
                print(row(name, "read cold", cold, nbytes))
            reads = [await timed(functools.partial(store.read_bytes, i)) for i in ids]
            print(row(name, "read warm" if cache is not None else "read", reads, nbytes))
            thumbs_t = [await timed(functools.partial(store.thumbnail, i)) for i in ids]
            again = [await timed(functools.partial(store.thumbnail, i)) for i in ids]
            print(row(name, "thumb 1st", thumbs_t, nbytes))
            print(row(name, "thumb again", again, nbytes))


async def part2(s3_url: str, tmp: Path, searches: int) -> None:
    import zlib

    import mcp_types
    from mcp import Client
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from mcp_server.server import build_server
    from mcp_server.services import open_services
    from mcp_server.settings import load_settings

    print("\n== Part 2: image_search end to end (top_k 5, in-process MCP session; p50 ms) ==")
    base = ""

    async def images(request: Request) -> Response:
        query = (await request.json())["q"]
        q = zlib.crc32(query.encode()) % 997
        hits = [
            {"title": f"{query} {n}", "imageUrl": f"{base}/img/{q}/{n}.jpg", "link": f"{base}/p/{n}", "position": n}
            for n in range(1, 11)
        ]
        return JSONResponse({"images": hits})

    pictures: dict[str, bytes] = {}

    async def image(request: Request) -> Response:
        key = f"{request.path_params['q']}/{request.path_params['n']}"
        if key not in pictures:
            pictures[key] = noise_image(
                (1024, 768), int(request.path_params["q"]) * 11 + int(request.path_params["n"]), "JPEG"
            )
        return Response(pictures[key], media_type="image/jpeg")

    # Every picture made before timing starts: the host's own work must not count against either store.
    for query in ["warm-up", *(f"lighthouse {i}" for i in range(searches))]:
        q = zlib.crc32(query.encode()) % 997
        for n in range(1, 11):
            pictures[f"{q}/{n}"] = noise_image((1024, 768), q * 11 + n, "JPEG")
    app = Starlette(routes=[Route("/images", images, methods=["POST"]), Route("/img/{q}/{n}.jpg", image)])
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:  # noqa: ASYNC110  (uvicorn runs in its own thread)
        await anyio.sleep(0.01)
    base = f"http://127.0.0.1:{port}"
    os.environ["SERPER_API_KEY"] = "perf"
    sections = {
        "disk": {"dir": str(tmp / "e2e-disk")},
        "s3 + local cache": {"url": f"{s3_url}/{uuid.uuid4().hex[:8]}", "cache_dir": str(tmp / "e2e-cache")},
    }
    results: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in sections}
    async with contextlib.AsyncExitStack() as stack:
        clients: dict[str, Client] = {}
        for name, images_section in sections.items():
            settings = load_settings(
                search={"backend": "serper", "serper_url": base},
                cache={"path": str(tmp / f"cache-{name[:4]}.db")},
                fetch={"allow_private_networks": True, "respect_robots": False},
                images=images_section,
            )
            services = await stack.enter_async_context(open_services(settings))
            clients[name] = await stack.enter_async_context(Client(build_server(services)))
            await clients[name].call_tool("image_search", {"query": "warm-up", "top_k": 5})  # untimed
        # Interleaved, the order alternating per query: machine load falls on both stores alike.
        for i in range(searches):
            order = list(sections) if i % 2 == 0 else list(reversed(sections))
            for name in order:
                client = clients[name]

                async def call(c: Client = client, q: str = f"lighthouse {i}") -> None:
                    result: mcp_types.CallToolResult = await c.call_tool("image_search", {"query": q, "top_k": 5})
                    assert not result.is_error, result.content[0]

                results[name][0].append(await timed(call))
                for _ in range(3):
                    results[name][1].append(await timed(call))
    server.should_exit = True
    print(f"{'store':<18}{'first call':>12}{'repeated':>12}")
    for name, (first, repeat) in results.items():
        print(f"{name:<18}{statistics.median(first) * 1000:>12.1f}{statistics.median(repeat) * 1000:>12.1f}")
    d, s = results["disk"], results["s3 + local cache"]
    print(
        f"S3/disk ratio: first call {statistics.median(s[0]) / statistics.median(d[0]):.2f}x, "
        f"repeated {statistics.median(s[1]) / statistics.median(d[1]):.2f}x (target <= 1.3x)"
    )


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def watched(op: Callable[[], Awaitable[Any]]) -> tuple[float, int, float, str]:
    """(seconds, peak RSS growth, longest event-loop stall, outcome) of one call."""
    import threading

    baseline = peak = rss_bytes()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.002):
            peak = max(peak, rss_bytes())

    stall = 0.0

    async def tick() -> None:
        nonlocal stall
        while True:
            before = time.perf_counter()
            await anyio.sleep(0.005)
            stall = max(stall, time.perf_counter() - before - 0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    outcome = "served"
    started = time.perf_counter()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(tick)
            try:
                await op()
            except Exception as exc:  # noqa: BLE001  a refusal is the expected outcome here
                outcome = f"refused ({type(exc).__name__})"
            tg.cancel_scope.cancel()
    finally:
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
    return elapsed, peak - baseline, stall, outcome


async def part3(s3_url: str, tmp: Path, oversized_mib: int) -> None:
    import obstore

    from safe_io.image_store.s3 import S3ImageStore

    print(f"\n== Part 3: reads the store must refuse (oversized object: {oversized_mib} MiB) ==")
    print(f"{'case':<12}{'read':<24}{'seconds':>9}{'RSS +MiB':>10}{'stall ms':>10}  outcome")
    url = f"{s3_url}/{uuid.uuid4().hex[:8]}"
    writer = create_image_store(ImageSettings(url=url, cache_max_bytes=0, timeout_s=300))  # the big upload
    assert isinstance(writer, S3ImageStore)
    bucket = writer._s3  # the raw bucket: what a fault or an intruder writes
    tampered = await writer.put(noise_image((512, 384), 7, "JPEG"), "image/jpeg")
    other = noise_image((512, 384), 8, "JPEG")
    await obstore.put_async(bucket, tampered.id, (other * 2)[: tampered.size_bytes])
    oversized = await writer.put(noise_image((64, 64), 9, "JPEG"), "image/jpeg")
    big = tmp / "big.bin"
    with big.open("wb") as fh:
        fh.truncate(oversized_mib * 1024 * 1024)
    with big.open("rb") as fh:  # streamed from disk in parts: the upload itself holds little
        await obstore.put_async(bucket, oversized.id, fh)
    big.unlink()
    for case, image_id in (("tampered", tampered.id), ("oversized", oversized.id)):
        reader = create_image_store(ImageSettings(url=url, cache_dir=tmp / f"cache-{case}"))
        assert isinstance(reader, S3ImageStore)

        async def whole(image_id: str = image_id) -> None:
            result = await obstore.get_async(bucket, image_id)
            image_id_for(bytes(await result.bytes_async()))  # what a caller then did with it

        async def verified(image_id: str = image_id, reader: S3ImageStore = reader) -> None:
            await reader.read_bytes(image_id)

        for label, op in (("whole, unverified", whole), ("read_bytes (verified)", verified)):
            seconds, grown, stall, outcome = await watched(op)
            print(f"{case:<12}{label:<24}{seconds:>9.3f}{grown / 2**20:>10.1f}{stall * 1000:>10.1f}  {outcome}")
        print(f"{'':<12}store events: {dict(reader.events)}")
    await obstore.delete_async(bucket, [oversized.id])


async def part4(tmp: Path) -> None:
    """How much of ``images.thumbnail_budget_bytes`` an image_search result uses, top_k 1, 5 and 10."""
    import base64

    from mcp import Client
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from mcp_server.server import build_server
    from mcp_server.services import open_services
    from tests.support.loopback import serve_app
    from tests.support.tool_server import tool_server_settings, write_index

    print("\n== Part 4: image_search result size against its budget (the whole result, as JSON) ==")
    print(f"{'images':<14}{'top_k':>6}{'returned':>9}{'result KB':>11}{'of budget':>11}{'sides px':>11}{'ms':>8}")
    sets: dict[str, list[Image.Image]] = {
        "pure noise": [Image.frombytes("RGB", (1024, 768), os.urandom(1024 * 768 * 3)) for _ in range(12)],
        "noisy photos": [Image.open(io.BytesIO(noise_image((1024, 768), 40 + i, "JPEG"))) for i in range(12)],
    }
    pictures: dict[str, bytes] = {}
    for label, images in sets.items():
        for i, img in enumerate(images):
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=92)
            pictures[f"{label.replace(' ', '-')}-{i}.jpg"] = buf.getvalue()

    async def image(request: Request) -> Response:
        return Response(pictures[request.path_params["name"]], media_type="image/jpeg")

    with serve_app(Starlette(routes=[Route("/img/{name}", image)])) as host:
        pages = {}
        for label in sets:
            slug = label.replace(" ", "-")
            figures = "".join(
                f'<figure><img src="{host}/img/{slug}-{i}.jpg" alt="{label} {i}"><figcaption>{label} {i}</figcaption>'
                "</figure>"
                for i in range(12)
            )
            pages[f"{slug}.html"] = f"<html><title>{label}</title><body>{figures}</body></html>"
        settings = tool_server_settings(tmp / "budget", index=write_index(tmp / "budget", pages))
        budget = settings.images.thumbnail_budget_bytes
        async with open_services(settings) as services, Client(build_server(services)) as client:
            for label in sets:
                for top_k in (1, 5, 10):
                    started = time.perf_counter()
                    result = await client.call_tool("image_search", {"query": label, "top_k": top_k})
                    elapsed = time.perf_counter() - started
                    size = len(result.model_dump_json(by_alias=True, exclude_none=True).encode())
                    sides = [
                        max(Image.open(io.BytesIO(base64.b64decode(block.data))).size)
                        for block in result.content
                        if block.type == "image"
                    ]
                    span = f"{min(sides)}-{max(sides)}" if sides else "-"
                    print(
                        f"{label:<14}{top_k:>6}{len(sides):>9}{size / 1024:>11.1f}{size / budget:>11.0%}"
                        f"{span:>11}{elapsed * 1000:>8.0f}"
                    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--thumbs", type=int, default=40, help="thumbnail-sized images")
    parser.add_argument("--full", type=int, default=12, help="full-size images")
    parser.add_argument("--searches", type=int, default=6, help="distinct image_search queries per store")
    parser.add_argument(
        "--parts",
        default="1,2,3,4",
        help="which parts to run: 1 (store), 2 (image_search), 3 (refused reads), 4 (image_search budget use)",
    )
    parser.add_argument("--oversized-mib", type=int, default=512, help="size of the oversized object of part 3")
    parser.add_argument("--s3-url", help="s3://bucket/prefix of a real store (default: a moto server on loopback)")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    for name in ("httpx", "httpcore", "mcp", "search_tools", "mcp_server"):
        logging.getLogger(name).setLevel(logging.WARNING)
    moto = None
    s3_url = args.s3_url
    if not s3_url:
        moto, s3_url = start_moto()
        print("S3: moto server on loopback (an upper bound on client overhead, not a network)")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if "1" in args.parts:
                anyio.run(part1, s3_url, Path(tmp), args.thumbs, args.full)
            if "2" in args.parts:
                anyio.run(part2, s3_url, Path(tmp), args.searches)
            if "3" in args.parts:
                anyio.run(part3, s3_url, Path(tmp), args.oversized_mib)
            if "4" in args.parts:
                anyio.run(part4, Path(tmp))
    finally:
        if moto is not None:
            moto.terminate()
            moto.wait()


if __name__ == "__main__":
    main()
