"""Building blocks of tool results shared by the tool modules."""

from __future__ import annotations

import base64

import mcp_types


def error_result(message: str) -> mcp_types.CallToolResult:
    """A tool error: ``is_error`` with one clear text block."""
    return mcp_types.CallToolResult(content=[mcp_types.TextContent(type="text", text=message)], is_error=True)


def jpeg_content(data: bytes) -> mcp_types.ImageContent:
    """A JPEG (a thumbnail) as MCP image content."""
    return mcp_types.ImageContent(type="image", data=base64.b64encode(data).decode("ascii"), mime_type="image/jpeg")
