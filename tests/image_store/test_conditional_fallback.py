"""An S3-compatible store without conditional puts: writes fall back to an existence check."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from safe_io.image_store import create_image_store
from search_tools.settings import ImageSettings
from tests.support.images import png_bytes
from tests.support.loopback import serve_app
from tests.support.s3 import S3Server

pytestmark = pytest.mark.anyio

NOT_IMPLEMENTED = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code>'
    b"<Message>A header you provided implies functionality that is not implemented</Message></Error>"
)
HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


def older_server(upstream: str, seen: Counter[str]) -> Starlette:
    """A proxy in front of moto that answers every conditional PUT 501, as older servers do."""

    async def forward(request: Request) -> Response:
        if request.method == "PUT" and "if-none-match" in request.headers:
            seen["refused conditional put"] += 1
            return Response(NOT_IMPLEMENTED, status_code=501, media_type="application/xml")
        seen[request.method] += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        async with httpx.AsyncClient() as client:
            answer = await client.request(
                request.method,
                f"{upstream}{request.url.path}",
                params=request.query_params,
                headers=headers,
                content=await request.body(),
            )
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS | {"content-encoding"}}
        return Response(answer.content, status_code=answer.status_code, headers=kept)

    return Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "PUT", "HEAD", "POST", "DELETE"])])


def png(colour: tuple[int, int, int]) -> bytes:
    return png_bytes(colour, (80, 60))


async def test_writes_fall_back_to_an_existence_check(tmp_path: Path, s3_server: S3Server) -> None:
    seen: Counter[str] = Counter()
    with serve_app(older_server(s3_server.endpoint, seen)) as proxy:
        section = {**s3_server.images_settings(tmp_path / "cache", cache_max_bytes=0), "endpoint_url": proxy}
        store = create_image_store(ImageSettings(**section))
        data = png((10, 20, 30))
        first = await store.put(data, "image/png", {"source_url": "a"})
        refused = seen["refused conditional put"]  # one conditional put (the client retries a 5xx)...
        assert refused >= 1
        again = await store.put(data, "image/png", {"source_url": "b"})
        assert again.meta == {"source_url": "a"}  # the existing record stands
        assert await store.read_bytes(first.id) == (data, "image/png")
        other = await store.put(png((200, 20, 30)), "image/png")
        assert (await store.get(other.id)).width == 80
        assert seen["refused conditional put"] == refused  # ...then never again: the store said no
