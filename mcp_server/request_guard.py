"""Checks every inbound JSON-RPC request passes before the SDK does any work on it.

Installed as the server's outermost ``ServerMiddleware``, so it covers every
transport (stdio, SSE, streamable HTTP, in-process clients). It sees the raw
params, before the SDK validates them or looks anything up:

* names, URIs and other strings the server matches or quotes back are refused
  over their documented lengths (``gen_searcher_core.limits``), so a 1 MB tool
  name costs a length check, not a lookup, a log line and a scrubbed error;
* every request has one overall deadline (``server.request_deadline_s``),
  whatever its method or tool: past it the request is answered with an error
  (a tool error result for ``tools/call``) and its work is cancelled;
* errors are worded for the client: malformed params name the offending field
  (never its value), a resource URI that matches nothing is ``-32002`` up to
  protocol 2025-11-25 (``-32602`` from 2026-07-28 on, as the SDK sends), and a
  prompt that does not exist is ``-32602`` rather than an internal error.

The deadline cancels at the next ``await``: work that holds the CPU without
awaiting is kept short by the length limits, and work handed to a thread ends
by its own time limit (``docs/limits.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import mcp_types
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, REQUEST_TIMEOUT
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import ValidationError

from gen_searcher_core.limits import MAX_NAME_CHARS, MAX_URI_CHARS

#: "Resource not found" in the MCP specification up to protocol 2025-11-25 (retired by 2026-07-28).
RESOURCE_NOT_FOUND = -32002

__all__ = ["RequestGuard", "oversized_param"]

#: Params (top level, or inside ``ref`` of completion/complete) and the longest value accepted.
_LENGTH_LIMITS = {"name": MAX_NAME_CHARS, "uri": MAX_URI_CHARS}


def oversized_param(params: Mapping[str, Any] | None) -> str | None:
    """Why one of ``params``' names or URIs is too long, or ``None``."""
    if not isinstance(params, Mapping):
        return None
    places: list[tuple[str, Mapping[str, Any]]] = [("", params)]
    ref = params.get("ref")
    if isinstance(ref, Mapping):
        places.append(("ref.", ref))
    for prefix, place in places:
        for key, limit in _LENGTH_LIMITS.items():
            value = place.get(key)
            if isinstance(value, str) and len(value) > limit:
                return f"params.{prefix}{key}: at most {limit} characters are accepted (got {len(value)})"
    return None


def describe_invalid_params(error: ValidationError) -> str:
    """``params.arguments: Input should be a valid dictionary; ...``: the fields, never the values sent."""
    problems = []
    for item in error.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(str(part) for part in item["loc"]) or "params"
        problems.append(f"{where}: {item['msg']}")
    return "Invalid params: " + "; ".join(problems)


class RequestGuard:
    """The ``ServerMiddleware`` that applies the checks above to every request."""

    def __init__(self, deadline_s: float) -> None:
        self.deadline_s = deadline_s

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.request_id is None:  # a notification: nobody waits for an answer
            return await call_next(ctx)
        problem = oversized_param(ctx.params)
        if problem is not None:
            raise MCPError(code=INVALID_PARAMS, message=f"Invalid params: {problem}")
        with anyio.move_on_after(self.deadline_s):
            try:
                return await call_next(ctx)
            except ValidationError as exc:
                raise MCPError(code=INVALID_PARAMS, message=describe_invalid_params(exc)) from None
            except MCPError as exc:
                raise self._reworded(ctx, exc) from None
            except ValueError as exc:  # the SDK's word for a prompt that is unknown or given bad arguments
                if ctx.method != "prompts/get":
                    raise
                raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None
        message = f"the request passed the server's {self.deadline_s:g} s deadline (server.request_deadline_s)"
        if ctx.method == "tools/call":
            return mcp_types.CallToolResult(content=[mcp_types.TextContent(type="text", text=message)], is_error=True)
        raise MCPError(code=REQUEST_TIMEOUT, message=message[:1].upper() + message[1:])

    @staticmethod
    def _reworded(ctx: ServerRequestContext[Any, Any], exc: MCPError) -> MCPError:
        """An unknown resource (the SDK's -32602 with the URI in ``data``) as the session's version words it."""
        error = exc.error
        is_unknown_resource = (
            ctx.method == "resources/read" and error.code == INVALID_PARAMS and isinstance(error.data, dict)
        ) and "uri" in error.data
        if is_unknown_resource and ctx.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS:
            return MCPError(code=RESOURCE_NOT_FOUND, message=error.message, data=error.data)
        return exc
