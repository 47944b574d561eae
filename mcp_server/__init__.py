"""Gen-Searcher MCP tool server."""
