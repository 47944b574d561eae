"""A small MCP server on loopback that follows the tool contract (search, browse, image_search, render, image://).

``gen-searcher run`` talks to it over streamable HTTP exactly as to the real server; the
results carry the markup of :data:`tests.reports.episodes.HOSTILE` so the pages must escape it.
"""

from __future__ import annotations

import base64

import mcp_types
from mcp.server.mcpserver import MCPServer

from tests.policy.conftest import png
from tests.reports.episodes import HOSTILE

PHOTO_IDS = ["img_" + f"{n:x}" * 16 for n in (1, 2)]
RENDER_ID = "img_" + "3" * 16


def contract_server() -> MCPServer:
    files = {
        PHOTO_IDS[0]: png((40, 160, 120), (200, 150)),
        PHOTO_IDS[1]: png((220, 60, 40), (150, 200)),
        RENDER_ID: png((30, 60, 200), (128, 128)),
    }
    server = MCPServer(name="reports-contract", log_level="WARNING")

    @server.tool()
    async def search(queries: list[str], top_k: int = 5) -> mcp_types.CallToolResult:
        results = [
            {
                "query": q,
                "hits": [
                    {
                        "title": f"Bridge {HOSTILE}",
                        "url": "https://example.org/bridge",
                        "snippet": "Copper.",
                        "position": 1,
                    }
                ],
                "error": None,
            }
            for q in queries
        ]
        return mcp_types.CallToolResult(
            content=[mcp_types.TextContent(text="1 hit")], structured_content={"results": results}
        )

    @server.tool()
    async def browse(url: str, goal: str, offset: int = 0) -> mcp_types.CallToolResult:
        if "broken" in url:
            return mcp_types.CallToolResult(
                content=[mcp_types.TextContent(text="browse failed: HTTP 404")], is_error=True
            )
        structured = {
            "url": url,
            "title": "The bridge",
            "offset": 0,
            "total_chars": 40,
            "content": f"The towers are copper green. {HOSTILE}",
            "summarized": True,
            "next_offset": 40,
        }
        return mcp_types.CallToolResult(
            content=[mcp_types.TextContent(text=structured["content"])], structured_content=structured
        )

    @server.tool()
    async def image_search(query: str, top_k: int = 5) -> mcp_types.CallToolResult:
        found = [
            {"id": image_id, "title": f"Photo {n} {HOSTILE}", "page_url": f"https://example.org/p{n}", "source_url": "",
             "width": 200, "height": 150}
            for n, image_id in enumerate(PHOTO_IDS, start=1)
        ]  # fmt: skip
        thumbs = [
            mcp_types.ImageContent(data=base64.b64encode(files[i]).decode(), mime_type="image/png") for i in PHOTO_IDS
        ]
        return mcp_types.CallToolResult(
            content=[mcp_types.TextContent(text=f"2 images for {query}"), *thumbs],
            structured_content={"query": query, "images": found},
        )

    @server.tool()
    async def render(prompt: str, reference_image_ids: list[str]) -> mcp_types.CallToolResult:
        structured = {"id": RENDER_ID, "width": 128, "height": 128, "uri": f"image://{RENDER_ID}", "seed": 1}
        return mcp_types.CallToolResult(
            content=[mcp_types.ResourceLink(uri=f"image://{RENDER_ID}", name=RENDER_ID)], structured_content=structured
        )

    @server.resource("image://{image_id}", mime_type="image/png")
    async def image(image_id: str) -> bytes:
        return files[image_id]

    return server
