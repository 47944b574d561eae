"""The ``search`` tool: several web queries at once, each answered (or failed) on its own."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import anyio
import mcp_types
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field, StringConstraints

from gen_searcher_core import errors, limits
from gen_searcher_core.tool_results import SearchResult
from mcp_server.services import Services

logger = logging.getLogger(__name__)

MAX_QUERIES = limits.MAX_QUERIES
MAX_QUERY_CHARS = limits.MAX_QUERY_CHARS
MAX_TOP_K = limits.MAX_TOP_K
DEFAULT_TOP_K = 5

DESCRIPTION = (
    f"Search the web. Give 1 to {MAX_QUERIES} queries at once (each a short keyword query); each query "
    "returns its top_k results (title, url, snippet, date when known). Queries are answered independently: "
    "one failing query reports its own error while the others still return."
)

Query = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUERY_CHARS)]
Queries = Annotated[
    list[Query],
    Field(
        min_length=1,
        max_length=MAX_QUERIES,
        description=f"1 to {MAX_QUERIES} search queries, each at most {MAX_QUERY_CHARS} characters",
    ),
]
TopK = Annotated[int, Field(ge=1, le=MAX_TOP_K, description=f"results per query, 1 to {MAX_TOP_K}")]


def describe_failure(exc: BaseException) -> str:
    """The message a caller sees for one failed query.

    Backends (``SearchBackendError``) and the cache raise ``UserFacingError``s
    written for callers that never contain a credential; anything else is a
    bug, logged here and reported without internals.
    """
    return errors.describe_failure(exc, action="search", logger=logger)


def _hit_dict(hit: Any) -> dict[str, Any]:
    # Built by hand: dataclasses.asdict deep-copies and is the slowest step of a cached search.
    data = {"title": hit.title, "url": hit.url, "snippet": hit.snippet, "position": hit.position}
    if hit.date:
        data["date"] = hit.date
    return data


def render_text(results: list[dict[str, Any]]) -> str:
    """A compact rendering a model reads well: one block per query, numbered hits."""
    blocks = []
    for entry in results:
        lines = [f'## Search: "{entry["query"]}"']
        if entry["error"] is not None:
            lines.append(f"Error: {entry['error']}")
        elif not entry["hits"]:
            lines.append("No results.")
        for hit in entry["hits"]:
            date = f" ({hit['date']})" if hit.get("date") else ""
            lines.append(f"{hit['position']}. {hit['title']}{date}\n   {hit['url']}")
            snippet = " ".join(str(hit.get("snippet") or "").split())
            if snippet:
                lines.append(f"   {snippet}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


async def run_search(services: Services, queries: list[str], top_k: int) -> mcp_types.CallToolResult:
    """Run every query concurrently; the result keeps the queries' order."""
    results: list[dict[str, Any]] = [{"query": query, "hits": [], "error": None} for query in queries]
    search = services.search
    if search is None:
        raise ToolError("search is not configured on this server (see GEN_SEARCHER_SEARCH__BACKEND)")

    async def one(index: int, query: str) -> None:
        try:
            hits = await search.search(query, top_k)
            results[index]["hits"] = [_hit_dict(hit) for hit in hits]
        except Exception as exc:  # noqa: BLE001 - one query's failure must not sink the others
            results[index]["error"] = describe_failure(exc)

    if len(queries) == 1:
        await one(0, queries[0])  # the common case skips the task group
    else:
        async with anyio.create_task_group() as group:
            for index, query in enumerate(queries):
                group.start_soon(one, index, query)

    all_failed = all(entry["error"] is not None for entry in results)
    return mcp_types.CallToolResult(
        content=[mcp_types.TextContent(type="text", text=render_text(results))],
        structured_content={"results": results},
        is_error=all_failed,
    )


def register(server: MCPServer, services: Services) -> None:
    async def search(
        queries: Queries, top_k: TopK = DEFAULT_TOP_K
    ) -> Annotated[mcp_types.CallToolResult, SearchResult]:
        return await run_search(services, queries, top_k)

    server.add_tool(
        search,
        name="search",
        title="Web search",
        description=DESCRIPTION,
        annotations=mcp_types.ToolAnnotations(read_only_hint=True, open_world_hint=True, idempotent_hint=True),
    )
