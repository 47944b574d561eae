"""Every tool declares an outputSchema, and real results validate against it.

The Python SDK client checks ``structuredContent`` against the declared schema
on every successful call (a mismatch raises); the test also checks each result
with jsonschema itself and reads it back through the shared models, over
streamable HTTP to the production app on 127.0.0.1. ``render`` runs against a
loopback render server that speaks the ``/generate`` API.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import mcp_types
import pytest
from mcp import Client
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from gen_searcher_core.tool_results import (
    OUTPUT_MODELS,
    BrowseResult,
    ImageSearchResult,
    RenderResult,
    SearchResult,
    parse_output,
)
from tests.support.loopback import serve_app
from tests.support.tool_server import run_tool_server, write_index

pytestmark = pytest.mark.anyio


def _image_bytes(fmt: str, size: tuple[int, int], color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    return out.getvalue()


PHOTO = _image_bytes("JPEG", (320, 240), (30, 90, 160))
RENDERED = _image_bytes("PNG", (64, 64), (200, 30, 30))
ARTICLE = (
    "<html><head><title>Bellmoor light</title></head><body><article><h1>Bellmoor light</h1>"
    "<p>The Bellmoor lighthouse was first lit on 14 March 1861 on the granite headland north of the harbour.</p>"
    "<p>Its lantern room holds a second-order Fresnel lens made in Paris.</p></article></body></html>"
)


def web_app(render_requests: list[dict[str, Any]]) -> Starlette:
    """A page, a photo and a render server (``POST /generate``) on one loopback app."""

    async def article(request: Request) -> Response:
        return HTMLResponse(ARTICLE)

    async def photo(request: Request) -> Response:
        return Response(PHOTO, media_type="image/jpeg")

    async def generate(request: Request) -> Response:
        body = await request.json()
        render_requests.append(body)
        return JSONResponse({"success": True, "image": base64.b64encode(RENDERED).decode(), "seed": body["seed"]})

    return Starlette(
        routes=[
            Route("/article", article),
            Route("/img/harbour.jpg", photo),
            Route("/generate", generate, methods=["POST"]),
        ]
    )


@pytest.fixture
def web() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    requests: list[dict[str, Any]] = []
    with serve_app(web_app(requests)) as base:
        yield base, requests


def gallery(base: str) -> dict[str, str]:
    return {
        "harbour.html": f"<html><head><title>Harbour</title></head><body><p>The harbour at dawn."
        f'<img src="{base}/img/harbour.jpg" alt="harbour at dawn"></p></body></html>',
    }


def check(tool: mcp_types.Tool, result: mcp_types.CallToolResult) -> Any:
    assert not result.is_error, result.content[0].text if result.content else result
    assert tool.output_schema is not None
    jsonschema.validate(result.structured_content, tool.output_schema)
    parsed = parse_output(tool.name, result.structured_content)
    assert isinstance(parsed, OUTPUT_MODELS[tool.name])
    return parsed


async def test_every_tool_result_validates_against_its_declared_output_schema(
    tmp_path: Path, web: tuple[str, list[dict[str, Any]]]
) -> None:
    base, render_requests = web
    index = write_index(tmp_path, gallery(base), base_url=base)
    render = {"backend": "http", "url": base}
    with run_tool_server(tmp_path, index=index, render=render) as ts:
        async with Client(ts.url) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert set(tools) == {"search", "image_search", "browse", "render"}
            for tool in tools.values():
                assert tool.output_schema is not None and tool.output_schema["type"] == "object", tool.name
                jsonschema.Draft202012Validator.check_schema(tool.output_schema)

            searched = check(tools["search"], await client.call_tool("search", {"queries": ["harbour dawn", "zzqx"]}))
            assert isinstance(searched, SearchResult)
            assert [entry.query for entry in searched.results] == ["harbour dawn", "zzqx"]
            assert searched.results[0].hits and searched.results[0].hits[0].url.startswith(base)
            assert searched.results[1].hits == [] and searched.results[1].error is None

            found = check(tools["image_search"], await client.call_tool("image_search", {"query": "harbour dawn"}))
            assert isinstance(found, ImageSearchResult) and found.query == "harbour dawn"
            assert [(image.width, image.height) for image in found.images] == [(320, 240)]
            assert found.images[0].source_url == f"{base}/img/harbour.jpg"

            page = check(tools["browse"], await client.call_tool("browse", {"url": f"{base}/article", "goal": "lens"}))
            assert isinstance(page, BrowseResult)
            assert "Fresnel lens" in page.content and page.summarized is False and page.next_offset is None
            assert page.fetched_with == "direct"

            rendered = check(
                tools["render"],
                await client.call_tool(
                    "render",
                    {
                        "prompt": "the first reference image at night",
                        "reference_image_ids": [found.images[0].id],
                        "width": 64,
                        "height": 64,
                        "seed": 5,
                    },
                ),
            )
            assert isinstance(rendered, RenderResult)
            assert (rendered.width, rendered.height, rendered.seed) == (64, 64, 5)
            assert rendered.uri == f"image://{rendered.id}"
            assert len(render_requests) == 1 and len(render_requests[0]["image_urls"]) == 1

            # Errors stay errors: no structured content is required of them.
            refused = await client.call_tool("browse", {"url": "file:///etc/passwd", "goal": "x"})
            assert refused.is_error and "http" in refused.content[0].text
            unknown = await client.call_tool("render", {"prompt": "x", "reference_image_ids": ["img_" + "0" * 16]})
            assert unknown.is_error and "unknown image id" in unknown.content[0].text
