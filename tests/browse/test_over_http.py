"""browse and image_search in the production HTTP app (streamable HTTP), as deployed."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from mcp import Client

from tests.browse.conftest import Web
from tests.browse.test_image_search_tool import gallery
from tests.support.tool_server import run_tool_server, write_index

pytestmark = pytest.mark.anyio


async def test_browse_and_images_over_streamable_http(tmp_path: Path, web: Web) -> None:
    index = write_index(tmp_path, gallery(web), base_url=web.base)
    guard = {"allow_private_networks": False, "allowed_addresses": [f"127.0.0.1:{web.port}"], "respect_robots": True}
    with run_tool_server(tmp_path, index=index, fetch=guard) as ts:
        async with Client(ts.url) as client:
            page = await client.call_tool("browse", {"url": web.url("/article"), "goal": "history"})
            assert not page.is_error and "Fresnel lens" in page.structured_content["content"]
            refused = await client.call_tool("browse", {"url": f"{ts.base_url}/healthz", "goal": "x"})
            assert refused.is_error and "refused" in refused.content[0].text  # the server itself is internal
            robots = await client.call_tool("browse", {"url": web.url("/private/x"), "goal": "x"})
            assert robots.is_error and "robots.txt" in robots.content[0].text
            found = await client.call_tool("image_search", {"query": "harbour dawn", "top_k": 1})
            assert not found.is_error, found.content[0].text
            image = found.structured_content["images"][0]
        async with httpx.AsyncClient() as http:
            response = await http.get(ts.image_url(image["id"]))
        assert response.status_code == 200 and response.headers["content-type"].startswith("image/")
        assert await ts.services.images.contains(image["id"])
