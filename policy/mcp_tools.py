"""The policy's only way to the tools: one MCP client session, reused for a whole episode (or longer).

Opening a session costs a handshake (tens of milliseconds over HTTP); an
episode makes up to ten calls, so the session is opened once and shared, also
by concurrent calls. Tool errors (``is_error`` results and JSON-RPC errors such
as bad arguments) become :class:`~policy.episode.ToolResult` errors that the
model sees; only a broken connection raises :class:`ToolSessionError`.
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import httpx2
import mcp_types
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from policy.episode import ToolImage, ToolResult
from policy.protocol import ToolCall

TOKEN_ENV = "GEN_SEARCHER_TOKEN"  # the same variable the server CLI reads for --token


class ToolSessionError(RuntimeError):
    """The MCP session itself failed (server unreachable, connection lost)."""


def convert_result(name: str, result: mcp_types.CallToolResult) -> ToolResult:
    """Turn an MCP tool result into the episode's ``ToolResult``.

    Images are paired, in order, with the entries of ``structured_content["images"]``
    (the ``image_search`` contract) to learn their store ids and provenance.
    """
    texts: list[str] = []
    images: list[tuple[str, str]] = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            texts.append(block.text)
        elif isinstance(block, mcp_types.ImageContent):
            images.append((block.data, block.mime_type))
        elif isinstance(block, mcp_types.ResourceLink):
            texts.append(f"[resource {block.uri}]")
        elif isinstance(block, mcp_types.EmbeddedResource) and isinstance(
            block.resource, mcp_types.TextResourceContents
        ):
            texts.append(block.resource.text)
    structured = result.structured_content
    infos: list[dict[str, Any]] = []
    if isinstance(structured, dict) and isinstance(structured.get("images"), list):
        infos = [item if isinstance(item, dict) else {} for item in structured["images"]]
    tool_images = []
    for index, (data, mime_type) in enumerate(images):
        info = infos[index] if index < len(infos) else {}
        tool_images.append(
            ToolImage(
                data=data,
                mime_type=mime_type,
                store_id=_str_or_none(info.get("id")),
                title=_str_or_none(info.get("title")),
                page_url=_str_or_none(info.get("page_url")),
                source_url=_str_or_none(info.get("source_url")),
                width=info.get("width") if isinstance(info.get("width"), int) else None,
                height=info.get("height") if isinstance(info.get("height"), int) else None,
            )
        )
    text = "\n".join(texts).strip()
    if result.is_error and not text:
        text = f"the tool {name} failed without a message"
    return ToolResult(
        name=name, text=text, structured=structured, images=tuple(tool_images), is_error=bool(result.is_error)
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class McpTools:
    """Calls tools over one open MCP ``Client``. Build it with :meth:`connect`."""

    def __init__(self, client: Client, *, call_timeout_s: float | None = None) -> None:
        self._client = client
        self._call_timeout_s = call_timeout_s

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls,
        target: Any,
        *,
        token: str | None = None,
        token_env: str = TOKEN_ENV,
        call_timeout_s: float | None = 300.0,
    ) -> AsyncIterator[McpTools]:
        """Open one session to ``target``: a streamable-HTTP URL or an in-process server object.

        For URLs, a bearer token is sent when given or found in ``token_env``.
        """
        async with contextlib.AsyncExitStack() as stack:
            server: Any = target
            if isinstance(target, str):
                token = token or os.environ.get(token_env) or None
                headers = {"Authorization": f"Bearer {token}"} if token else None
                http: httpx2.AsyncClient = await stack.enter_async_context(create_mcp_http_client(headers=headers))
                server = streamable_http_client(target, http_client=http)
            try:
                client = await stack.enter_async_context(Client(server))
            except MCPError as exc:
                raise ToolSessionError(f"could not open an MCP session: {exc}") from None
            except Exception as exc:  # transport errors arrive as assorted types (or groups of them)
                raise ToolSessionError(f"could not open an MCP session: {_describe(exc)}") from None
            yield cls(client, call_timeout_s=call_timeout_s)

    async def list_tool_names(self) -> list[str]:
        listing = await self._client.list_tools()
        return [tool.name for tool in listing.tools]

    async def call(self, call: ToolCall) -> ToolResult:
        """Run one tool call; errors the tool reports come back as error results."""
        try:
            result = await self._client.call_tool(call.name, call.arguments, read_timeout_seconds=self._call_timeout_s)
        except MCPError as exc:
            return ToolResult.error(call.name, exc.error.message)
        except Exception as exc:
            raise ToolSessionError(f"the MCP session failed during {call.name}: {_describe(exc)}") from exc
        return convert_result(call.name, result)

    async def call_many(self, calls: Sequence[ToolCall], *, parallel: bool = True) -> list[ToolResult]:
        """Run calls on the shared session, concurrently when ``parallel``; results keep call order."""
        if not parallel or len(calls) <= 1:
            return [await self.call(c) for c in calls]
        results: list[ToolResult | None] = [None] * len(calls)

        async def run(index: int, c: ToolCall) -> None:
            results[index] = await self.call(c)

        try:
            async with anyio.create_task_group() as group:
                for index, c in enumerate(calls):
                    group.start_soon(run, index, c)
        except BaseExceptionGroup as group_error:
            raise group_error.exceptions[0] from None
        return [r for r in results if r is not None]

    async def read_image(self, store_id: str) -> tuple[bytes, str]:
        """Fetch the full-size image ``store_id`` through the ``image://`` resource."""
        try:
            result = await self._client.read_resource(f"image://{store_id}")
        except MCPError as exc:
            raise ToolSessionError(f"could not read image://{store_id}: {exc.error.message}") from None
        for item in result.contents:
            if isinstance(item, mcp_types.BlobResourceContents):
                return base64.b64decode(item.blob), item.mime_type or "application/octet-stream"
        raise ToolSessionError(f"image://{store_id} returned no binary content")


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
