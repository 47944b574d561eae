"""image_search's byte budget covers the whole result (text and structured content too) and is spent evenly:
more images never come out smaller in total than fewer (a real tool server over HTTP on loopback)."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client
from mcp_types import CallToolResult
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.loopback import serve_app
from tests.support.tool_server import ToolServer, run_tool_server, write_index

pytestmark = pytest.mark.anyio
BUDGET = 512 * 1024


def noisy_jpeg(size: tuple[int, int] = (640, 480)) -> bytes:
    """Noise compresses worst of all: every thumbnail of it is far over an even share of the budget."""
    out = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(out, format="JPEG", quality=90)
    return out.getvalue()


def plain_jpeg(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (200, 150), (shade, 120, 255 - shade)).save(out, format="JPEG")
    return out.getvalue()


def whole_size(result: CallToolResult) -> int:
    """The result as it travels: JSON, text and structured content included."""
    return len(result.model_dump_json(by_alias=True, exclude_none=True).encode())


def thumbnails(result: CallToolResult) -> list[bytes]:
    return [base64.b64decode(block.data) for block in result.content if block.type == "image"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ToolServer]:
    """A tool server whose index has a page of 12 noisy photos (query "meadow") and 12 plain ones whose
    captions are long (query "harbour")."""
    images = {f"noise{i}.jpg": noisy_jpeg() for i in range(12)}
    images |= {f"plain{i}.jpg": plain_jpeg(i * 20) for i in range(12)}

    async def image(request: Request) -> Response:
        return Response(images[request.path_params["name"]], media_type="image/jpeg")

    with serve_app(Starlette(routes=[Route("/img/{name}", image)])) as base:

        def page(prefix: str, caption: str) -> str:
            figures = "".join(
                f'<figure><img src="{base}/img/{prefix}{i}.jpg" alt="{caption} {i}">'
                f"<figcaption>{caption} {i}</figcaption></figure>"
                for i in range(12)
            )
            return f"<html><title>{caption[:40]}</title><body>{figures}</body></html>"

        long_caption = "harbour at dawn with fishing boats, " * 8
        index = write_index(
            tmp_path, {"meadow.html": page("noise", "meadow photo"), "harbour.html": page("plain", long_caption)}
        )
        with run_tool_server(tmp_path, index=index) as ts:
            assert ts.settings.images.thumbnail_budget_bytes == BUDGET
            yield ts


async def test_more_images_spend_the_budget_evenly_never_clearly_less(server: ToolServer) -> None:
    async with Client(server.url) as client:
        five = await client.call_tool("image_search", {"query": "meadow", "top_k": 5})
        ten = await client.call_tool("image_search", {"query": "meadow", "top_k": 10})
    assert not five.is_error and not ten.is_error
    assert len(thumbnails(five)) == 5 and len(thumbnails(ten)) == 10
    for result in (five, ten):  # within the budget, and not far under it
        assert 0.85 * BUDGET <= whole_size(result) <= BUDGET
    # More images never make a clearly smaller result (before: top_k 10 came out under top_k 5, at 71% vs 76%);
    # quality steps are discrete, so the two may differ by a few hundred bytes either way.
    assert whole_size(ten) >= whole_size(five) - 0.01 * BUDGET
    sizes = [len(thumb) for thumb in thumbnails(ten)]
    assert max(sizes) <= 2 * min(sizes)  # evenly: no image squeezed to make room for the others
    for thumb in thumbnails(ten):
        with Image.open(io.BytesIO(thumb)) as small:
            assert small.format == "JPEG" and max(small.size) >= 256


async def test_the_text_and_structured_content_count_against_the_budget(server: ToolServer) -> None:
    tight = 12_000
    server.settings.images.thumbnail_budget_bytes = tight
    async with Client(server.url) as client:
        result = await client.call_tool("image_search", {"query": "harbour dawn fishing boats", "top_k": 10})
    assert not result.is_error
    images = result.structured_content["images"]
    assert len(images) == 10 and len(images[0]["title"]) > 200
    text_and_data = whole_size(result) - sum(4 * ((len(t) + 2) // 3) for t in thumbnails(result))
    assert text_and_data > tight // 2  # the captions alone take a good part of it...
    assert whole_size(result) <= tight  # ...and the whole result still fits
    assert 1 <= len(thumbnails(result)) < 10
    assert "left out to keep the result small" in result.content[0].text
