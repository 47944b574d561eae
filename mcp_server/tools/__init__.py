"""MCP tools; each module exposes ``register(server, services)``."""
