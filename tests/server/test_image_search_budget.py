"""image_search results fit a client's tool-result cap: all thumbnails within one byte budget."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import pytest
from mcp import Client
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mcp_server.server import build_server
from mcp_server.services import open_services
from tests.support.loopback import serve_app
from tests.support.tool_server import tool_server_settings, write_index

pytestmark = pytest.mark.anyio
COUNT = 12


def detailed_jpeg(size: tuple[int, int] = (1024, 768)) -> bytes:
    """Noise compresses worst of all: the high-detail case, far over any budget at 512 px."""
    out = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(out, format="JPEG", quality=92)
    return out.getvalue()


def photo_web(images: dict[str, bytes]) -> Starlette:
    async def image(request: Request) -> Response:
        return Response(images[request.path_params["name"]], media_type="image/jpeg")

    return Starlette(routes=[Route("/img/{name}", image)])


async def test_ten_detailed_photos_fit_the_budget(tmp_path: Path) -> None:
    images = {f"photo{i}.jpg": detailed_jpeg() for i in range(COUNT)}
    with serve_app(photo_web(images)) as base:
        figures = "".join(
            f'<figure><img src="{base}/img/{name}" alt="meadow photo {name}">'
            f"<figcaption>meadow {name}</figcaption></figure>"
            for name in images
        )
        index = write_index(tmp_path, {"meadow.html": f"<html><title>Meadow</title><body>{figures}</body></html>"})
        settings = tool_server_settings(tmp_path, index=index)
        budget = settings.images.thumbnail_budget_bytes
        assert budget == 512 * 1024
        async with open_services(settings) as services, Client(build_server(services)) as client:
            result = await client.call_tool("image_search", {"query": "meadow", "top_k": 10})
            assert not result.is_error, result.content
            thumbs = [block for block in result.content if block.type == "image"]
            assert len(result.structured_content["images"]) == 10 and len(thumbs) == 10
            assert sum(len(t.data) for t in thumbs) <= budget
            for thumb in thumbs:  # smaller, but still pictures of the right shape
                with Image.open(io.BytesIO(base64.b64decode(thumb.data))) as small:
                    assert small.format == "JPEG" and 48 <= max(small.size) <= 512
                    assert small.size[0] / small.size[1] == pytest.approx(1024 / 768, rel=0.05)
            again = await client.call_tool("image_search", {"query": "meadow", "top_k": 10})
            assert [b.data for b in again.content if b.type == "image"] == [t.data for t in thumbs]
            # A budget too small for ten still answers: trailing thumbnails are left out, and the text says so.
            services.settings.images.thumbnail_budget_bytes = 20_000
            tight = await client.call_tool("image_search", {"query": "meadow", "top_k": 10})
            tight_thumbs = [b for b in tight.content if b.type == "image"]
            assert sum(len(t.data) for t in tight_thumbs) <= 20_000 and len(tight_thumbs) >= 1
            if len(tight_thumbs) < 10:
                assert "left out to keep the result small" in tight.content[0].text
