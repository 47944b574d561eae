"""image_search's downloads are reused by source URL; a store that fails mid-run is a clear error."""

from __future__ import annotations

import io
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mcp_server.server import build_server
from mcp_server.services import open_services
from safe_io.fetcher import GuardedFetcher
from safe_io.netguard import AddressPolicy
from search_tools.backends.base import ImageHit
from search_tools.image_fetch import ImageCollector
from tests.support.loopback import serve_app
from tests.support.tool_server import serve_settings, tool_server_settings

pytestmark = pytest.mark.anyio


def image_host(downloads: Counter[str]) -> Starlette:
    async def image(request: Request) -> Response:
        name = request.path_params["name"]
        downloads[name] += 1
        side = 16 if name.startswith("tiny") else 160  # tiny ones are rejected (smaller than 64 px)
        buf = io.BytesIO()
        Image.new("RGB", (side, side), (sum(map(ord, name)) % 256, 80, 120)).save(buf, format="PNG")
        return Response(buf.getvalue(), media_type="image/png")

    return Starlette(routes=[Route("/img/{name}", image)])


async def test_candidates_are_downloaded_once_then_reused_by_source_url(make_store: Any) -> None:
    downloads: Counter[str] = Counter()
    store = make_store(share=True)
    with serve_app(image_host(downloads)) as base:
        port = base.rsplit(":", 1)[1]
        fetcher = GuardedFetcher(
            user_agent="gen-searcher-tests",
            policy=AddressPolicy.from_strings(False, [f"127.0.0.1:{port}"]),
            respect_robots=False,
            timeout_s=20.0,
        )
        hits = [
            ImageHit(image_url=f"{base}/img/{name}", page_url=f"{base}/p", title=name, position=n)
            for n, name in enumerate(["a.png", "b.png", "tiny.png"], 1)
        ]
        try:
            collector = ImageCollector(fetcher, store, min_side=64, reuse_sources_s=3600)
            found, dropped = await collector.collect(hits, 3)
            assert [f.title for f in found] == ["a.png", "b.png"] and "smaller than 64 px" in dropped[0]
            assert sum(downloads.values()) == 3

            # Again, and from another replica sharing the store: nothing is downloaded.
            for again_store in (store, make_store(share=True)):
                again = ImageCollector(fetcher, again_store, min_side=64, reuse_sources_s=3600)
                found2, dropped2 = await again.collect(hits, 3)
                assert [f.image.id for f in found2] == [f.image.id for f in found] and dropped2 == dropped
            assert sum(downloads.values()) == 3

            # Reuse off: every candidate is downloaded again. Images collected since: downloaded again too.
            await ImageCollector(fetcher, store, min_side=64, reuse_sources_s=0).collect(hits, 3)
            assert sum(downloads.values()) == 6
            await store.gc(-60)
            await ImageCollector(fetcher, store, min_side=64, reuse_sources_s=3600).collect(hits, 3)
            assert downloads["a.png"] == 3
        finally:
            await fetcher.aclose()


async def test_an_image_folder_that_breaks_while_serving_is_a_clear_error(tmp_path: Path) -> None:
    settings = tool_server_settings(tmp_path)
    with serve_settings(settings) as ts:
        buf = io.BytesIO()
        Image.new("RGB", (80, 80), (1, 2, 3)).save(buf, format="PNG")
        async with Client(ts.url) as client:
            async with open_services(settings) as services:  # the same folder, opened beside the server
                stored = await services.images.put(buf.getvalue(), "image/png", {})
            folder = settings.images.dir
            shutil.rmtree(folder)
            folder.write_text("not a folder any more")
            with pytest.raises(MCPError, match=r"image store folder .* set images.dir"):
                await client.read_resource(f"image://{stored.id}")
            async with httpx.AsyncClient() as http:
                response = await http.get(ts.image_url(stored.id))
            assert response.status_code == 503 and "images.dir" in response.json()["error"]
            assert (await client.list_tools()).tools  # still serving
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{ts.base_url}/healthz")).status_code == 200


async def test_services_refuse_an_unusable_folder_with_one_clear_error(tmp_path: Path) -> None:
    from gen_searcher_core.errors import ConfigError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    settings = tool_server_settings(tmp_path, images={"dir": str(blocker / "images")})
    with pytest.raises(ConfigError, match=r"image store folder .*file/images cannot be used .* set images.dir"):
        async with open_services(settings) as services:
            assert services is None
    assert build_server  # the server module imports cleanly without a store
