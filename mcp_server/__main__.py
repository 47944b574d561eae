"""``python -m mcp_server`` runs the ``gen-searcher`` command line."""

from mcp_server.cli import app

app(prog_name="gen-searcher")
