"""Helpers of the fleet tests: a loopback web (Serper-style image search, images, a render server)
and ``gen-searcher serve`` subprocesses."""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import sys
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.support.images import png_bytes
from tests.support.loopback import free_port

SERPER_KEY = "serper-fleet-key-19ad"
IMAGE_COUNT = 6


def png(color: tuple[int, int, int], size: tuple[int, int] = (160, 120)) -> bytes:
    return png_bytes(color, size)


@dataclass
class FleetWeb:
    """What the loopback web saw: provider calls, image downloads, references per render."""

    base: str = ""
    provider_calls: Counter[str] = field(default_factory=Counter)
    downloads: Counter[str] = field(default_factory=Counter)
    render_references: list[int] = field(default_factory=list)


def fleet_app(web: FleetWeb) -> Starlette:
    async def images(request: Request) -> Response:
        if request.headers.get("x-api-key") != SERPER_KEY:
            return JSONResponse({"message": "Unauthorized", "statusCode": 403}, status_code=403)
        query = (await request.json())["q"]
        web.provider_calls[query] += 1
        await anyio.sleep(0.5)  # long enough for a burst to overlap
        hits = [
            {
                "title": f"{query} {n}",
                "imageUrl": f"{web.base}/img/{zlib.crc32(query.encode()) % 200}/{n}.png",
                "link": f"{web.base}/page/{n}",
                "position": n,
            }
            for n in range(1, IMAGE_COUNT + 1)
        ]
        return JSONResponse({"searchParameters": {"q": query}, "images": hits, "credits": 1})

    async def image(request: Request) -> Response:  # each query its own pictures
        q, n = int(request.path_params["q"]), int(request.path_params["n"])
        web.downloads[f"{q}/{n}"] += 1
        return Response(png((40 * n % 256, q, 200 - 20 * n)), media_type="image/png")

    async def generate(request: Request) -> Response:
        body = await request.json()
        web.render_references.append(len(body.get("image_urls") or []))
        data = png((250, 120, 10), (int(body.get("width", 64)), int(body.get("height", 64))))
        return JSONResponse(
            {
                "success": True,
                "image": base64.b64encode(data).decode(),
                "seed": body.get("seed") or 1,
                "elapsed_s": 0.01,
            }
        )

    async def not_found(request: Request) -> Response:
        return PlainTextResponse("no", status_code=404)

    return Starlette(
        routes=[
            Route("/images", images, methods=["POST"]),
            Route("/img/{q}/{n}.png", image),
            Route("/generate", generate, methods=["POST"]),
            Route("/{rest:path}", not_found),
        ]
    )


def gen_searcher() -> str:
    return str(Path(sys.executable).parent / "gen-searcher")


def server_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEN_SEARCHER_", "AWS_"))}
    env.update({"GEN_SEARCHER_SERVER__LOG_LEVEL": "WARNING", **extra})
    return env


@contextlib.contextmanager
def serve(env: dict[str, str], log: Path) -> Iterator[str]:
    """``gen-searcher serve --stateless`` on a free port; yields its base URL once /healthz answers."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [gen_searcher(), "serve", "--stateless", "--port", str(port)], env=env, stdout=out, stderr=out
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")
                time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run_serve_expecting_failure(env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    """Run ``gen-searcher serve`` that should refuse to start; (exit status, stdout + stderr)."""
    done = subprocess.run(
        [gen_searcher(), "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.returncode, done.stdout + done.stderr
