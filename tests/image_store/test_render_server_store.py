"""The render server on the shared image store: references by id, results stored with an id."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import anyio
import httpx
import pytest
from PIL import Image

from render_tools.base import RenderRequest, RenderResult
from render_tools.server import create_app
from render_tools.workers import PoolConfig, WorkerPool
from tests.support.images import png_bytes
from tests.support.loopback import serve_app

pytestmark = pytest.mark.anyio


class FakeEngine:
    """A device engine without torch: paints the first reference's colour (or grey) at the asked size."""

    def __init__(self, seen: list[list[tuple[int, int, int]]]) -> None:
        self.seen = seen

    def load(self) -> None:
        return None

    def render_batch(self, requests: Sequence[RenderRequest]) -> list[RenderResult]:
        results = []
        for request in requests:
            colours = [img.getpixel((0, 0)) for img in request.reference_images]
            self.seen.append(colours)
            colour = colours[0] if colours else (128, 128, 128)
            images = [Image.new("RGB", (request.width, request.height), colour) for _ in range(request.num_images)]
            results.append(RenderResult(images=images, seed=request.seed or 5, elapsed_s=0.0, model="fake"))
        return results

    def close(self) -> None:
        return None


def png(colour: tuple[int, int, int]) -> bytes:
    return png_bytes(colour, (96, 64))


async def test_references_by_id_and_results_in_the_shared_store(make_store: Any) -> None:
    tools_replica, render_worker = make_store(share=True), make_store(share=True)
    reference = await tools_replica.put(png((200, 40, 10)), "image/png", {"source_url": "https://example.org/r.png"})
    seen: list[list[tuple[int, int, int]]] = []
    pool = WorkerPool(lambda device: FakeEngine(seen), PoolConfig(devices=("cpu",)))
    with serve_app(create_app(pool, images=render_worker)) as base:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            for _ in range(100):
                if (await client.get("/health")).json()["status"] == "ok":
                    break
                await anyio.sleep(0.05)
            body = {"prompt": "a red kite", "image_urls": [f"image://{reference.id}"], "width": 64, "height": 64}
            answer = (await client.post("/generate", json={**body, "seed": 9})).json()
            assert answer["success"] is True and seen[-1] == [(200, 40, 10)], answer
            stored = await tools_replica.get(answer["id"])  # visible to the tool replica at once
            assert stored.meta["prompt"] == "a red kite" and stored.meta["seed"] == 9
            data, _ = await tools_replica.read_bytes(answer["id"])
            assert data == base64.b64decode(answer["image"])

            two = (await client.post("/generate", json={**body, "num_images_per_prompt": 2})).json()
            assert len(two["ids"]) == 2 and two["id"] == two["ids"][0]

            oai = (await client.post("/v1/images/generations", json={"prompt": "x", "size": "64x64"})).json()
            assert await tools_replica.contains(oai["data"][0]["id"])

            unknown = await client.post("/generate", json={**body, "image_urls": ["image://img_0123456789abcdef"]})
            assert unknown.status_code == 400 and "unknown image id" in unknown.json()["message"]


async def test_without_a_store_image_references_are_refused_clearly() -> None:
    pool = WorkerPool(lambda device: FakeEngine([]), PoolConfig(devices=("cpu",)))
    with serve_app(create_app(pool)) as base:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            body = {"prompt": "x", "image_urls": ["image://img_0123456789abcdef"], "width": 64, "height": 64}
            response = await client.post("/generate", json=body)
            assert response.status_code == 400 and "images.url" in response.json()["message"]
            plain = (await client.post("/generate", json={"prompt": "x", "width": 64, "height": 64})).json()
            assert plain["success"] and "id" not in plain
