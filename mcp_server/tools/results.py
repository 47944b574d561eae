"""Building blocks of tool results shared by the tool modules."""

from __future__ import annotations

import mcp_types
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.shared.exceptions import MCPError
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from gen_searcher_core.imaging import b64

#: "Resource not found" in the MCP specification up to protocol 2025-11-25.
RESOURCE_NOT_FOUND = -32002


def error_result(message: str) -> mcp_types.CallToolResult:
    """A tool error: ``is_error`` with one clear text block."""
    return mcp_types.CallToolResult(content=[mcp_types.TextContent(type="text", text=message)], is_error=True)


def jpeg_content(data: bytes) -> mcp_types.ImageContent:
    """A JPEG (a thumbnail) as MCP image content."""
    return mcp_types.ImageContent(type="image", data=b64(data), mime_type="image/jpeg")


def resource_not_found(message: str, uri: str, protocol_version: str | None) -> Exception:
    """The error for a resource that does not exist, in the words of the session's protocol version.

    Up to 2025-11-25 the specification answers ``-32002`` with the URI in ``data``; 2026-07-28
    retired that code (SEP-2164) for ``-32602``, which the SDK sends for ``ResourceNotFoundError``.
    """
    if protocol_version in HANDSHAKE_PROTOCOL_VERSIONS:
        return MCPError(code=RESOURCE_NOT_FOUND, message=message, data={"uri": uri})
    return ResourceNotFoundError(message)
