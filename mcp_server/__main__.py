"""``python -m mcp_server`` runs the tool server's commands (serve, tools, call).

The guard matters: worker processes (anyio's process pool, which extracts page
text) import the main module again under another name, and must not run the CLI.
"""

from mcp_server.cli import server_app

if __name__ == "__main__":
    server_app()(prog_name="gen-searcher")
