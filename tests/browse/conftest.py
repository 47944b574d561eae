"""A loopback web for the browse tests: pages, PDFs, traps, robots.txt and images, served on 127.0.0.1.

The fetcher under test runs with the SSRF guard ON and exactly one exception,
the web's own ``127.0.0.1:PORT``; a second loopback server plays an internal
service that must never be reached.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import gzip
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from safe_io.fetcher import GuardedFetcher
from safe_io.netguard import AddressPolicy
from tests.browse import content
from tests.support.env import clear_settings_environment
from tests.support.loopback import serve_app

ROBOTS = (
    "User-agent: Gen-Searcher\nDisallow: /no-gen/\nDisallow: /private/\n\n"
    "User-agent: *\nDisallow: /private/\nDisallow: /tides.txt\n"
)


@dataclass
class Web:
    base: str
    port: int
    internal_base: str
    hits: collections.Counter[str] = field(default_factory=collections.Counter)
    internal_hits: collections.Counter[str] = field(default_factory=collections.Counter)
    images: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    in_flight: list[int] = field(default_factory=lambda: [0, 0])  # now, max

    def url(self, path: str) -> str:
        return self.base + path


IMAGES: dict[str, tuple[bytes, str]] = {
    "harbour.jpg": (content.jpeg_bytes((320, 240), (30, 90, 160)), "image/jpeg"),
    "harbour-copy.jpg": (content.jpeg_bytes((320, 240), (30, 90, 160)), "image/jpeg"),  # same bytes, other URL
    "tower.jpg": (content.jpeg_bytes((400, 600), (200, 40, 40)), "image/jpeg"),
    "cliffs.jpg": (content.jpeg_bytes((640, 480), (90, 120, 60)), "image/jpeg"),
    "lens.png": (content.png_rgba_bytes((200, 200)), "image/png"),
    "flash.gif": (content.animated_gif_bytes((120, 100)), "image/gif"),
    "tiny.png": (content.jpeg_bytes((16, 16)), "image/jpeg"),
    "corrupt.jpg": (b"\xff\xd8\xff\xe0 this is not really a jpeg" * 10, "image/jpeg"),
    "truncated.jpg": (content.truncated_jpeg_bytes(), "image/jpeg"),
    "bomb.png": (content.bomb_png_bytes(30_000, 30_000), "image/png"),
    "big-canvas.png": (content.bomb_png_bytes(7_000, 7_000), "image/png"),
    "page.html": (b"<html><body>not an image</body></html>", "text/html"),
}


@functools.cache
def gzip_bomb_payload() -> bytes:
    """40 MiB of zeros in 40 KB of gzip, compressed once (it takes a CPU-second on a loaded machine)."""
    return gzip.compress(b"\0" * (40 * 1024 * 1024), 9)


def build_app(web: Web) -> Starlette:
    async def count(request: Request) -> None:
        web.hits[request.url.path] += 1

    async def robots(request: Request) -> Response:
        await count(request)
        return PlainTextResponse(ROBOTS)

    async def article(request: Request) -> Response:
        await count(request)
        return HTMLResponse(content.article_html())

    async def long_page(request: Request) -> Response:
        await count(request)
        paras = "".join(f"<p>{p}</p>" for p in content.long_text().split("\n\n"))
        return HTMLResponse(
            "<html><head><title>Harbour records</title></head>"
            f"<body><article><h1>Harbour records</h1>{paras}</article></body></html>"
        )

    async def text(request: Request) -> Response:
        await count(request)
        return PlainTextResponse("Tide table for Bellmoor.\n\nHigh water 06:12 and 18:40.")

    async def pdf(request: Request) -> Response:
        await count(request)
        lines = ["Keeper's log, Bellmoor light, 1884.", "Fog from dawn; the horn sounded for nine hours."]
        return Response(content.pdf_bytes(lines), media_type="application/pdf")

    async def guarded(request: Request) -> Response:
        await count(request)
        return HTMLResponse(content.article_html("Guarded page"))

    async def redirect(request: Request) -> Response:
        await count(request)
        return RedirectResponse(request.query_params["to"], status_code=int(request.query_params.get("code", 302)))

    async def chain(request: Request) -> Response:
        await count(request)
        n = int(request.path_params["n"])
        if n == 0:
            return HTMLResponse(content.article_html("End of the chain"))
        return RedirectResponse(f"/chain/{n - 1}", status_code=302)

    async def slow(request: Request) -> Response:
        # Answers only once the client has given up (a minute at most), whatever the machine's load.
        for _ in range(600):
            if await request.is_disconnected():
                break
            await asyncio.sleep(0.1)
        return HTMLResponse(content.article_html())

    async def drip(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            yield b"<html><body><p>"
            while True:
                await asyncio.sleep(0.05)
                yield b"drip "

        return StreamingResponse(body(), media_type="text/html")

    async def endless(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            chunk = b"<p>" + b"x" * 65_536 + b"</p>"
            while True:
                yield chunk
                await asyncio.sleep(0)

        return StreamingResponse(body(), media_type="text/html")

    async def huge_declared(request: Request) -> Response:
        return Response(b"x" * 1024, headers={"content-length": str(50 * 1024 * 1024)}, media_type="text/html")

    async def big_chunked(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(100):
                yield b"<p>" + b"y" * 65_536 + b"</p>"

        return StreamingResponse(body(), media_type="text/html")

    async def gzip_bomb(request: Request) -> Response:
        return Response(gzip_bomb_payload(), media_type="text/html", headers={"content-encoding": "gzip"})

    async def binary(request: Request) -> Response:
        await count(request)
        return Response(b"PK\x03\x04" + os.urandom(2048), media_type="application/zip")

    async def video(request: Request) -> Response:
        await count(request)
        return Response(os.urandom(4096), media_type="video/mp4")

    async def untyped_binary(request: Request) -> Response:
        response = Response(b"\x00\x01\x02\xff" * 512)
        del response.headers["content-type"]
        return response

    async def status(request: Request) -> Response:
        await count(request)
        return PlainTextResponse("server says no", status_code=int(request.path_params["code"]))

    async def user_agent(request: Request) -> Response:
        return PlainTextResponse(request.headers.get("user-agent", ""))

    async def concurrent(request: Request) -> Response:
        web.in_flight[0] += 1
        web.in_flight[1] = max(web.in_flight[1], web.in_flight[0])
        try:
            await asyncio.sleep(0.25)
        finally:
            web.in_flight[0] -= 1
        return PlainTextResponse(f"item {request.path_params['n']}")

    async def image(request: Request) -> Response:
        await count(request)
        name = request.path_params["name"]
        if name not in web.images:
            return PlainTextResponse("no such image", status_code=404)
        data, media_type = web.images[name]
        return Response(data, media_type=media_type)

    return Starlette(
        routes=[
            Route("/robots.txt", robots),
            Route("/article", article),
            Route("/long", long_page),
            Route("/tides.txt", text),
            Route("/log.pdf", pdf),
            Route("/private/{rest:path}", guarded),
            Route("/no-gen/{rest:path}", guarded),
            Route("/redirect", redirect),
            Route("/chain/{n:int}", chain),
            Route("/slow", slow),
            Route("/drip", drip),
            Route("/endless", endless),
            Route("/huge", huge_declared),
            Route("/big", big_chunked),
            Route("/gzip-bomb", gzip_bomb),
            Route("/archive.zip", binary),
            Route("/clip.mp4", video),
            Route("/untyped", untyped_binary),
            Route("/status/{code:int}", status),
            Route("/ua", user_agent),
            Route("/concurrent/{n:int}", concurrent),
            Route("/img/{name}", image),
        ]
    )


def build_internal_app(web: Web) -> Starlette:
    async def secret(request: Request) -> Response:
        web.internal_hits[request.url.path] += 1
        return JSONResponse({"secret": "internal credentials"})

    return Starlette(routes=[Route("/{rest:path}", secret)])


@pytest.fixture(scope="session")
def web() -> Iterator[Web]:
    holder = Web(base="", port=0, internal_base="", images=dict(IMAGES))
    with serve_app(build_internal_app(holder)) as internal, serve_app(build_app(holder)) as base:
        holder.base = base
        holder.port = int(base.rsplit(":", 1)[1])
        holder.internal_base = internal
        yield holder


def make_fetcher(web: Web, **kwargs: Any) -> GuardedFetcher:
    """The production fetcher with the guard on; only the test web's own address:port is excepted."""
    options: dict[str, Any] = dict(
        user_agent="Gen-Searcher/0.1 (+https://github.com/gen-searcher/gen-searcher; test)",
        policy=AddressPolicy.from_strings(False, [f"127.0.0.1:{web.port}"]),
        # Generous, so a loaded CI machine never turns a normal fetch (robots.txt included)
        # into a timeout; the timeout tests pass their own short limit.
        timeout_s=20.0,
        robots_timeout_s=10.0,  # likewise for robots.txt (a robots.txt that times out disallows its site)
        max_bytes=1024 * 1024,
    )
    options.update(kwargs)
    return GuardedFetcher(**options)


@pytest.fixture
async def fetcher(web: Web) -> AsyncIterator[GuardedFetcher]:
    f = make_fetcher(web)
    try:
        yield f
    finally:
        await f.aclose()


def browse_settings(tmp_path: Path, web: Web, **sections: Any) -> Any:
    """Hermetic server settings: guard on with the test web excepted; cache and images under tmp_path."""
    from tests.support.settings import hermetic_settings, merged_sections

    base: dict[str, dict[str, Any]] = {
        "server": {"log_level": "WARNING"},
        "cache": {"url": None},
        "fetch": {
            "allowed_addresses": [f"127.0.0.1:{web.port}"],
            "timeout_s": 20.0,
            "robots_timeout_s": 10.0,
            "max_bytes": 1024 * 1024,
        },
        "summary": {"base_url": None, "model": None, "text_budget": 1500},
    }
    return hermetic_settings(tmp_path, **merged_sections(base, sections))


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_settings_environment(monkeypatch)


@contextlib.asynccontextmanager
async def tool_client(settings: Any) -> AsyncIterator[Client]:
    """An in-process MCP client session on the real tool server built from ``settings``."""
    from mcp_server.server import build_server
    from mcp_server.services import open_services

    async with open_services(settings) as services, Client(build_server(services)) as client:
        yield client


def text_of(result: Any) -> str:
    """The text blocks of a tool result, joined."""
    return "\n".join(block.text for block in result.content if getattr(block, "type", "") == "text")
