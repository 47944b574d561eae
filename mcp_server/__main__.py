"""``python -m mcp_server`` runs the tool server's commands (serve, tools, call)."""

from mcp_server.cli import server_app

server_app()(prog_name="gen-searcher")
