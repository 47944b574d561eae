"""The policy's only way to the tools: an MCP client session, reused for a whole episode (or longer).

:class:`McpTools` adapts :class:`~policy.mcp_client.McpConnection` (the one
session implementation, shared with the verl bridge) to the episode: tool
errors (``is_error`` results, and requests the server rejects such as bad
arguments) become :class:`~policy.episode.ToolResult` errors that the model
sees; only a session that cannot be (re)established raises
:class:`~policy.mcp_client.McpConnectionError`.
"""

from __future__ import annotations

import base64
import contextlib
import functools
from collections.abc import AsyncIterator, Sequence
from typing import Any

import mcp_types
from pydantic import ValidationError

from gen_searcher_core.tool_results import FoundImage
from policy.concurrency import gather_ordered
from policy.episode import ToolImage, ToolResult
from policy.mcp_client import DEFAULT_TOKEN_ENV, McpCallError, McpConnection, McpConnectionError, token_from_env
from policy.protocol import ToolCall

__all__ = ["McpCallError", "McpConnectionError", "McpTools", "convert_result"]


def convert_result(name: str, result: mcp_types.CallToolResult) -> ToolResult:
    """Turn an MCP tool result into the episode's ``ToolResult``.

    Images are paired, in order, with the entries of ``structured_content["images"]``
    (the ``image_search`` contract, read through its model) to learn their store ids and provenance.
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
    infos = _found_images(structured)
    tool_images = []
    for index, (data, mime_type) in enumerate(images):
        info = infos[index] if index < len(infos) else None
        if info is None:
            tool_images.append(ToolImage(data=data, mime_type=mime_type))
            continue
        tool_images.append(
            ToolImage(
                data=data,
                mime_type=mime_type,
                store_id=info.id or None,
                title=info.title or None,
                page_url=info.page_url or None,
                source_url=info.source_url or None,
                width=info.width or None,
                height=info.height or None,
            )
        )
    text = "\n".join(texts).strip()
    if result.is_error and not text:
        text = f"the tool {name} failed without a message"
    return ToolResult(
        name=name, text=text, structured=structured, images=tuple(tool_images), is_error=bool(result.is_error)
    )


def _found_images(structured: Any) -> list[FoundImage | None]:
    """The ``images`` of an ``image_search``-shaped result (whichever tool sent it), each read as
    :class:`~gen_searcher_core.tool_results.FoundImage`; None for an entry that is not one."""
    items = structured.get("images") if isinstance(structured, dict) else None
    if not isinstance(items, list):
        return []
    found: list[FoundImage | None] = []
    for item in items:
        try:
            found.append(FoundImage.model_validate(item))
        except ValidationError:
            found.append(None)
    return found


class McpTools:
    """The episode's tools over one :class:`~policy.mcp_client.McpConnection`.

    Build it with :meth:`connect` (a session of its own for the ``async with``
    block) or around a connection shared with others (e.g. from a
    :class:`~policy.mcp_client.ConnectionPool`).
    """

    def __init__(self, connection: McpConnection) -> None:
        self.connection = connection

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls,
        target: Any,
        *,
        token: str | None = None,
        token_env: str | None = DEFAULT_TOKEN_ENV,
        call_timeout_s: float | None = 300.0,
        max_attempts: int = 2,
    ) -> AsyncIterator[McpTools]:
        """Open one session to ``target``: a streamable-HTTP URL, stdio server parameters
        (:func:`policy.mcp_client.local_server`) or an in-process server object.

        For URLs, a bearer token is sent when given or found in ``token_env``.
        The session is opened before the block runs (an unreachable server
        raises :class:`McpConnectionError` here) and reconnects after failures.
        """
        connection = McpConnection(
            target, token=token or token_from_env(token_env), timeout_s=call_timeout_s, max_attempts=max_attempts
        )
        try:
            await connection.open()
            yield cls(connection)
        finally:
            await connection.aclose()

    async def list_tool_names(self) -> list[str]:
        return [tool.name for tool in await self.connection.list_tools()]

    async def call(self, call: ToolCall) -> ToolResult:
        """Run one tool call; errors the tool or server reports come back as error results.

        Raises :class:`McpConnectionError` only when the session cannot be (re)established.
        """
        try:
            result = await self.connection.call_tool(call.name, call.arguments)
        except McpCallError as exc:
            return ToolResult.error(call.name, str(exc))
        return convert_result(call.name, result)

    async def call_many(self, calls: Sequence[ToolCall], *, parallel: bool = True) -> list[ToolResult]:
        """Run calls on the shared session, concurrently when ``parallel``; results keep call order."""
        return await gather_ordered([functools.partial(self.call, c) for c in calls], concurrent=parallel)

    async def read_image(self, store_id: str) -> tuple[bytes, str]:
        """Fetch the full-size image ``store_id`` through the ``image://`` resource.

        Raises :class:`McpCallError` when the server has no such image.
        """
        uri = f"image://{store_id}"
        result = await self.connection.read_resource(uri)
        for item in result.contents:
            if isinstance(item, mcp_types.BlobResourceContents):
                return base64.b64decode(item.blob), item.mime_type or "application/octet-stream"
        raise McpCallError(f"{uri} returned no binary content")
