"""The ``browse`` tool: read one web page for a goal (safe fetch, extraction, summary or text slice)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import mcp_types
from mcp.server.mcpserver import MCPServer
from pydantic import Field

from gen_searcher_core.errors import describe_failure, first_leaf
from gen_searcher_core.tool_results import BrowseResult
from mcp_server.services import Services
from mcp_server.tools.results import error_result

logger = logging.getLogger(__name__)

DESCRIPTION = (
    "Read a web page (http/https; HTML, plain text or PDF) for a goal. Returns the page's main text "
    "focused on the goal: a summary when a summary model is configured, otherwise the extracted text "
    "in slices; when more text remains the result gives next_offset, and calling browse again with "
    "offset=next_offset continues. Internal network addresses are refused and robots.txt is honoured."
)

Url = Annotated[str, Field(description="the http(s) URL of the page")]
Goal = Annotated[str, Field(description="what you want to learn from the page")]
Offset = Annotated[int, Field(ge=0, description="character offset to continue a long page from (0 = start)")]


def render_text(result: dict[str, Any]) -> str:
    head = f"# {result['title']}\n" if result.get("title") else ""
    head += f"URL: {result['url']}\n"
    if result["summarized"]:
        head += "Summary for your goal:\n"
    elif result["offset"] or result["next_offset"] is not None:
        end = result["next_offset"] if result["next_offset"] is not None else result["total_chars"]
        head += f"Characters {result['offset']}-{end} of {result['total_chars']}:\n"
    text = head + "\n" + str(result["content"])
    if result.get("likely_js_shell"):
        text += f"\n\n[{JS_SHELL_NOTE}]"
    if result["next_offset"] is not None:
        remaining = result["total_chars"] - result["next_offset"]
        text += f"\n\n[{remaining} more characters: call browse with offset={result['next_offset']} to continue]"
    return text


#: Appended when ``direct`` read what looks like a JavaScript shell (search_tools.js_shell).
JS_SHELL_NOTE = (
    "this page looks like a JavaScript shell: its text is drawn by scripts, so the content above may miss the "
    "article; a server with GEN_SEARCHER_FETCH__BACKEND=auto or browser renders it"
)


#: Appended when a page's host cannot be reached: offline, browse reads pages served on loopback.
BROWSE_OFFLINE_HINT = (
    "offline? a local index's pages can be browsed when served on this machine: build it with "
    "gen-searcher index build PAGES_DIR --out index.db --base-url http://127.0.0.1:PORT/ and set "
    "GEN_SEARCHER_FETCH__ALLOW_PRIVATE_NETWORKS=true (docs/search.md; gen-searcher demo runs one)"
)


def _unreachable(exc: BaseException) -> bool:
    """A host that does not resolve or answer (not a page that was refused or too large)."""
    from safe_io.fetcher import ConnectionFailed, HostNotFound

    leaf = first_leaf(exc)
    if isinstance(leaf, HostNotFound):
        return True
    # A site whose robots.txt could not even be fetched is as unreachable as its page.
    text = str(leaf)
    return (isinstance(leaf, ConnectionFailed) and text.startswith(("could not fetch", "could not reach"))) or (
        "robots.txt" in text and "(could not fetch " in text
    )


async def run_browse(services: Services, url: str, goal: str, offset: int = 0) -> mcp_types.CallToolResult:
    browser = services.browser
    if browser is None:
        return error_result("browse is not available on this server")
    try:
        result = await browser.browse(url, goal, offset)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a tool error; internal ones are logged
        message = f"browse failed: {describe_failure(exc, logger=logger)}"
        return error_result(f"{message}; {BROWSE_OFFLINE_HINT}" if _unreachable(exc) else message)
    return mcp_types.CallToolResult(
        content=[mcp_types.TextContent(type="text", text=render_text(result))],
        structured_content=result,
    )


def register(server: MCPServer, services: Services) -> None:
    async def browse(url: Url, goal: Goal, offset: Offset = 0) -> Annotated[mcp_types.CallToolResult, BrowseResult]:
        return await run_browse(services, url, goal, offset)

    server.add_tool(
        browse,
        name="browse",
        title="Read a web page",
        description=DESCRIPTION,
        annotations=mcp_types.ToolAnnotations(read_only_hint=True, open_world_hint=True, idempotent_hint=True),
    )
