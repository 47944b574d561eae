"""``image_search`` and the ``image://{id}`` resource through a real MCP client session.

Candidates come from the real ``local`` backend over an index of gallery pages
whose images live on the loopback web; downloads go through the guarded fetcher.
"""

from __future__ import annotations

import base64
import contextlib
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from PIL import Image
from pydantic import SecretStr

from mcp_server.server import build_server
from mcp_server.services import open_services
from safe_io.image_store import image_id_for
from tests.browse.conftest import IMAGES, Web, browse_settings, text_of, tool_client
from tests.support.tool_server import write_index

pytestmark = pytest.mark.anyio

BAD = ["corrupt.jpg", "tiny.png", "truncated.jpg", "bomb.png", "big-canvas.png", "page.html", "missing.jpg"]
GOOD = ["harbour.jpg", "harbour-copy.jpg", "tower.jpg", "cliffs.jpg", "lens.png", "flash.gif"]


def gallery(web: Web) -> dict[str, str]:
    """Bad candidates carry the strongest alt text, so they rank first for "lighthouse"."""
    bad = "".join(
        f'<figure><img src="{web.url("/img/" + n)}" alt="lighthouse lighthouse lighthouse {n}">'
        f"<figcaption>lighthouse lighthouse beacon {n}</figcaption></figure>"
        for n in BAD
    )
    good = "".join(
        f'<div class="photo"><p>Photo {n} taken on the coast walk near the old lighthouse.</p>'
        f'<img src="{web.url("/img/" + n)}" alt="coast photo {n}"></div>'
        for n in GOOD
    )
    harbour = (
        f'<p>The harbour at dawn.<img src="{web.url("/img/harbour.jpg")}" alt="harbour at dawn"></p>'
        f'<p>The harbour again.<img src="{web.url("/img/harbour-copy.jpg")}" alt="harbour at dawn again"></p>'
    )
    return {
        "gallery.html": (
            f"<html><head><title>Bellmoor gallery</title></head><body><h1>Gallery</h1>{bad}{good}</body></html>"
        ),
        "harbour.html": f"<html><head><title>Harbour</title></head><body>{harbour}</body></html>",
    }


@contextlib.asynccontextmanager
async def mcp_client(tmp_path: Path, web: Web) -> AsyncIterator[Client]:
    index = write_index(tmp_path, gallery(web), base_url=web.base)
    settings = browse_settings(tmp_path, web, search={"backend": "local", "index": str(index)})
    async with tool_client(settings) as client:
        yield client


async def test_image_search_returns_stored_images_with_thumbnails(tmp_path: Path, web: Web) -> None:
    before = {n: web.hits[f"/img/{n}"] for n in BAD + GOOD}
    async with mcp_client(tmp_path, web) as client:
        result = await client.call_tool("image_search", {"query": "lighthouse", "top_k": 3})
        assert not result.is_error, text_of(result)
        data = result.structured_content
        assert data["query"] == "lighthouse"
        images = data["images"]
        # the first round (6 candidates) is all unusable; the one extra round finds the good ones
        assert len(images) == 3
        assert {Path(i["source_url"]).name for i in images} <= set(GOOD)
        assert len({i["id"] for i in images}) == 3
        thumbs = [block for block in result.content if block.type == "image"]
        assert len(thumbs) == 3 and all(t.mime_type == "image/jpeg" for t in thumbs)
        for image, thumb in zip(images, thumbs, strict=True):
            assert set(image) == {"id", "title", "page_url", "source_url", "width", "height"}
            assert image["page_url"] == web.url("/gallery.html")
            with Image.open(io.BytesIO(base64.b64decode(thumb.data))) as small:
                assert small.format == "JPEG" and max(small.size) <= 512
                assert small.size[0] / small.size[1] == pytest.approx(image["width"] / image["height"], rel=0.02)
            assert image["id"] in text_of(result)
        full = await client.read_resource(f"image://{images[0]['id']}")
        blob = full.contents[0]
        assert blob.mime_type == "image/png"
        with Image.open(io.BytesIO(base64.b64decode(blob.blob))) as img:
            assert img.format == "PNG" and img.size == (images[0]["width"], images[0]["height"])
    fetched = {n: web.hits[f"/img/{n}"] - before[n] for n in BAD + GOOD}
    assert all(count <= 1 for count in fetched.values())  # the second round never refetches a candidate


async def test_the_same_picture_at_two_urls_has_one_id(tmp_path: Path, web: Web) -> None:
    async with mcp_client(tmp_path, web) as client:
        result = await client.call_tool("image_search", {"query": "harbour dawn", "top_k": 5})
        assert not result.is_error, text_of(result)
        ids = [i["id"] for i in result.structured_content["images"]]
        assert ids.count(image_id_for(IMAGES["harbour.jpg"][0])) == 1
        assert len(ids) == len(set(ids))


async def test_bad_requests_are_clear_errors_and_the_server_keeps_serving(tmp_path: Path, web: Web) -> None:
    async with mcp_client(tmp_path, web) as client:
        for arguments in (
            {"query": "", "top_k": 3},
            {"query": "lighthouse", "top_k": 0},
            {"query": "lighthouse", "top_k": 11},
            {"query": "x" * 600},
        ):
            result = await client.call_tool("image_search", arguments)
            assert result.is_error and "image_search" in text_of(result)
        none = await client.call_tool("image_search", {"query": "zebra giraffe", "top_k": 2})
        assert not none.is_error and none.structured_content["images"] == []
        assert "No usable images found." in text_of(none)
        only_bad = await client.call_tool("image_search", {"query": "beacon", "top_k": 1})  # only BAD say "beacon"
        assert not only_bad.is_error and only_bad.structured_content["images"] == []
        lines = text_of(only_bad).splitlines()
        assert re.fullmatch(r"No usable images found \((\d+) candidates could not be used\):", lines[1]), lines
        reasons = [line for line in lines[2:] if not line.startswith("- ... and")]
        assert 1 <= len(reasons) <= 3
        for line in reasons:  # each names the candidate and why it was dropped
            name = line.split(": ", 1)[0].rsplit("/", 1)[-1]
            assert name in BAD and ": " in line, line
        with pytest.raises(MCPError, match="unknown image id"):
            await client.read_resource("image://img_0123456789abcdef")
        with pytest.raises(MCPError):
            await client.read_resource("image://../../etc/passwd")
        ok = await client.call_tool("image_search", {"query": "harbour", "top_k": 1})
        assert not ok.is_error and len(ok.structured_content["images"]) == 1
        templates = await client.list_resource_templates()
        assert any(t.uri_template == "image://{id}" for t in templates.resource_templates)


def serper_images_app(web: Web, requests: list[dict[str, Any]]) -> Any:
    """Serper's image API (``POST /images``, ``X-API-KEY``) answering with pictures hosted on the loopback web."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def images(request: Request) -> JSONResponse:
        if request.headers.get("x-api-key") != "serper-test-key":
            return JSONResponse({"message": "Unauthorized."}, status_code=403)
        body = await request.json()
        requests.append(body)
        port = web.internal_base.rsplit(":", 1)[1]
        sources = [
            f"http://127.0.0.1:{port}/internal.png",  # an internal address: refused by the fetcher
            "http://169.254.169.254/latest/meta-data/iam",
            web.url("/img/tiny.png"),
            web.url("/img/cliffs.jpg"),
            web.url("/img/tower.jpg"),
            web.url("/img/lens.png"),
        ]
        items = [
            {
                "title": f"Bellmoor picture {i}",
                "imageUrl": url,
                "imageWidth": 1000,
                "imageHeight": 1000,
                "thumbnailUrl": url,
                "source": "Example",
                "domain": "example.org",
                "link": f"https://example.org/page/{i}",
                "position": i,
            }
            for i, url in enumerate(sources, 1)
        ]
        return JSONResponse({"searchParameters": {"q": body["q"], "type": "images"}, "images": items[: body["num"]]})

    return Starlette(routes=[Route("/images", images, methods=["POST"])])


async def test_image_search_over_a_provider_api_skips_hostile_and_bad_candidates(tmp_path: Path, web: Web) -> None:
    from tests.support.loopback import serve_app

    requests: list[dict[str, Any]] = []
    before = sum(web.internal_hits.values())
    with serve_app(serper_images_app(web, requests)) as provider:
        settings = browse_settings(tmp_path, web, search={"backend": "serper", "serper_url": provider})
        settings.serper_api_key = SecretStr("serper-test-key")
        async with open_services(settings) as services, Client(build_server(services)) as client:
            result = await client.call_tool("image_search", {"query": "Bellmoor lighthouse", "top_k": 3})
    assert not result.is_error, text_of(result)
    images = result.structured_content["images"]
    assert [Path(i["source_url"]).name for i in images] == ["cliffs.jpg", "tower.jpg", "lens.png"]
    assert [i["page_url"] for i in images] == [f"https://example.org/page/{n}" for n in (4, 5, 6)]
    assert (images[0]["width"], images[0]["height"]) == (640, 480)  # measured from the file, not the provider
    assert [r["num"] for r in requests] == [6]  # 2 x top_k candidates were enough: no second round
    assert sum(web.internal_hits.values()) == before
