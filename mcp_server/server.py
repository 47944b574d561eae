"""Build the MCP server: one function, given ready services."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from mcp_server.services import Services

SERVER_INSTRUCTIONS = (
    "Gen-Searcher tools: search the web, find reference images, read pages, and render images "
    "grounded in what was found. Images are referred to by store ids (img_…); full images are "
    "resources at image://{id}."
)


def build_server(services: Services) -> MCPServer:
    server: MCPServer = MCPServer(name="gen-searcher", version="0.1.0", instructions=SERVER_INSTRUCTIONS)
    # Each tool module registers itself; see mcp_server/tools/.
    return server
