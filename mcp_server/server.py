"""Build the MCP server: one function, given ready services."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from pydantic import ValidationError

from gen_searcher_core.redact import Redactor, secrets_of
from mcp_server.metrics import Metrics
from mcp_server.request_guard import RequestGuard
from mcp_server.services import Services
from mcp_server.settings import Settings
from mcp_server.tools import browse as browse_tool
from mcp_server.tools import image_search as image_search_tool
from mcp_server.tools import render as render_tool
from mcp_server.tools import search as search_tool

SERVER_INSTRUCTIONS = (
    "Gen-Searcher tools: search the web, find reference images, read pages, and render images "
    "grounded in what was found. Images are referred to by store ids (img_…); full images are "
    "resources at image://{id}."
)
#: The instructions of a server without a renderer: they promise only the tools it lists.
SERVER_INSTRUCTIONS_NO_RENDER = (
    "Gen-Searcher tools: search the web, find reference images and read pages (this server renders "
    "nothing: no renderer is configured). Images are referred to by store ids (img_…); full images are "
    "resources at image://{id}."
)

#: One line per tool call on this logger: tool name, outcome, duration (never the arguments).
access_log = logging.getLogger("mcp_server.access")


def describe_validation_error(tool: str, error: ValidationError) -> str:
    """One readable line per bad argument, without echoing the caller's values.

    The alternatives of a union (``steps``: 0, or 2 to 200) are one problem of
    one field: pydantic's member tags (``constrained-int``) are left out of the
    path and their messages joined with "or".
    """
    problems: dict[str, list[str]] = {}
    for item in error.errors(include_url=False, include_input=False):
        where = ""
        for part in item["loc"]:
            if isinstance(part, int):
                where += f"[{part}]"
            elif part.isidentifier():  # argument names; union member tags are not identifiers
                where += f".{part}" if where else part
        message = item["msg"].replace(" after validation", "")
        problems.setdefault(where or "arguments", []).append(message)
    return f"Invalid arguments for tool {tool!r}: " + "; ".join(
        f"{where}: {' or '.join(messages)}" for where, messages in problems.items()
    )


class GenSearcherServer(MCPServer):
    """``MCPServer`` that times every tool call, words argument errors clearly and scrubs errors.

    Overriding the public ``call_tool`` covers every transport (stdio, SSE,
    streamable HTTP, in-process clients) in one place; it is also the trust
    boundary where every error message loses the configured secrets
    (``redact``). ``until_ready`` (awaited before each tool call and resource
    read) lets the stdio server answer ``initialize`` while services still open;
    ``on_listed`` is called after each ``tools/list``.
    """

    def __init__(
        self,
        *args: Any,
        metrics: Metrics,
        redact: Callable[[str], str] = str,
        until_ready: Callable[[], Awaitable[None]] | None = None,
        on_listed: Callable[[], None] | None = None,
        not_offered: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._not_offered = dict(not_offered or {})
        self._metrics = metrics
        self._tool_names: set[str] = set()
        self._redact = redact
        self._until_ready = until_ready
        self._on_listed = on_listed

    def add_tool(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        annotations: mcp_types.ToolAnnotations | None = None,
        icons: list[mcp_types.Icon] | None = None,
        meta: dict[str, Any] | None = None,
        structured_output: bool | None = None,
    ) -> None:
        super().add_tool(
            fn,
            name=name,
            title=title,
            description=description,
            annotations=annotations,
            icons=icons,
            meta=meta,
            structured_output=structured_output,
        )
        self._tool_names.add(name or fn.__name__)

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        label = name if name in self._tool_names else "unknown"
        started = time.perf_counter()
        ok = False
        outcome = "failed"
        try:
            if name not in self._tool_names and name in self._not_offered:
                outcome = "not offered"
                raise ToolError(f"{name} is not configured on this server: {self._not_offered[name]}")
            if self._until_ready is not None:
                await self._until_ready()
            result = await super().call_tool(name, arguments, context)
            ok = not (isinstance(result, mcp_types.CallToolResult) and result.is_error)
            outcome = "ok" if ok else "error"
            if not ok and isinstance(result, mcp_types.CallToolResult):
                result = self._scrubbed(result)
            return result
        except ToolError as exc:
            # Argument validation failures arrive as a plain ToolError caused by pydantic's error;
            # an UnexpectedToolError is a crash inside the tool and keeps the SDK's wording.
            if isinstance(exc.__cause__, ValidationError) and not isinstance(exc, UnexpectedToolError):
                outcome = "invalid arguments"
                raise ToolError(describe_validation_error(name, exc.__cause__)) from exc.__cause__
            message = self._redact(str(exc))
            if message != str(exc):
                raise ToolError(message) from None
            raise
        finally:
            elapsed = time.perf_counter() - started
            self._metrics.tool_call(label, ok, elapsed)
            access_log.info("tool %s %s in %.3f s", label if label != "unknown" else repr(name[:64]), outcome, elapsed)

    async def list_tools(self) -> Any:
        tools = await super().list_tools()
        if self._on_listed is not None:  # the stdio server starts its heavy work once a client has the list
            self._on_listed()
        return tools

    async def read_resource(self, uri: Any, context: Any = None) -> Any:
        if self._until_ready is not None:
            await self._until_ready()
        return await super().read_resource(uri, context)

    def _scrubbed(self, result: mcp_types.CallToolResult) -> mcp_types.CallToolResult:
        """An error result with every text block scrubbed of secrets."""
        content = [
            block.model_copy(update={"text": self._redact(block.text)})
            if isinstance(block, mcp_types.TextContent)
            else block
            for block in result.content
        ]
        return result.model_copy(update={"content": content})


def unavailable_tools(settings: Settings) -> dict[str, str]:
    """Tools this configuration does not offer, each with the reason and how to enable it.

    ``gen-searcher tools`` prints these notes. An area whose tool is optional
    (e.g. ``render`` without a renderer) adds its condition here.
    """
    reasons: dict[str, str] = {}
    reasons.update(render_tool.unavailable(settings.render))
    return reasons


def build_server(
    services: Services,
    *,
    until_ready: Callable[[], Awaitable[None]] | None = None,
    on_listed: Callable[[], None] | None = None,
) -> GenSearcherServer:
    """The MCP server over ``services``; see :class:`GenSearcherServer` for ``until_ready`` and ``on_listed``."""
    not_offered = unavailable_tools(services.settings) if getattr(services, "renderer", None) is None else {}
    server = GenSearcherServer(
        name="gen-searcher",
        version="0.1.0",
        instructions=SERVER_INSTRUCTIONS_NO_RENDER if "render" in not_offered else SERVER_INSTRUCTIONS,
        not_offered=not_offered,
        metrics=services.metrics,
        redact=Redactor(secrets_of(services.settings)),
        until_ready=until_ready,
        on_listed=on_listed,
        log_level=services.settings.server.log_level.upper(),
        middleware=[RequestGuard(services.settings.server.request_deadline_s)],
    )
    # Each tool module registers itself (one line per tool); see mcp_server/tools/.
    search_tool.register(server, services)
    browse_tool.register(server, services)
    image_search_tool.register(server, services)
    render_tool.register(server, services)
    return server
