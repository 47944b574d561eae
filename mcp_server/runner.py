"""What the CLI runs: the server over stdio or HTTP, and one-shot tool listing and calls.

``url=None`` means in-process: services are opened here and the tool is
reached through a real in-memory MCP client session, so the result is exactly
what a remote client would see.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
from mcp import Client

from mcp_server.server import build_server, unavailable_tools
from mcp_server.services import open_services
from mcp_server.settings import Settings

__all__ = ["call_tool_json", "list_tools_json", "serve_http", "serve_stdio", "unavailable_tools"]


def _configure_logging(settings: Settings) -> None:
    # stderr only: over stdio, stdout carries the protocol.
    logging.basicConfig(
        level=settings.server.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def serve_http(settings: Settings) -> None:
    import uvicorn

    from mcp_server.http_app import create_app

    _configure_logging(settings)
    uvicorn.run(
        create_app(settings),
        host=settings.server.host,
        port=settings.server.port,
        log_level=settings.server.log_level.lower(),
        timeout_graceful_shutdown=5,
    )


def serve_stdio(settings: Settings) -> None:
    _configure_logging(settings)

    async def main() -> None:
        async with open_services(settings) as services:
            await build_server(services).run_stdio_async()

    anyio.run(main)


@contextlib.asynccontextmanager
async def _client(settings: Settings, url: str | None, token: str | None) -> AsyncIterator[Client]:
    if url is None:
        async with open_services(settings) as services:
            async with Client(build_server(services), mode="legacy") as client:
                yield client
        return
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0)) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            yield client


async def list_tools_json(settings: Settings, url: str | None = None, token: str | None = None) -> list[dict[str, Any]]:
    async with _client(settings, url, token) as client:
        listing = await client.list_tools()
    return [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in listing.tools]


async def call_tool_json(
    settings: Settings, tool: str, arguments: dict[str, Any], url: str | None = None, token: str | None = None
) -> dict[str, Any]:
    async with _client(settings, url, token) as client:
        result = await client.call_tool(tool, arguments)
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)
