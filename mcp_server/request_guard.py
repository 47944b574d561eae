"""Checks every inbound JSON-RPC request passes before the SDK does any work on it.

Installed as the server's outermost ``ServerMiddleware``, so it covers every
transport (stdio, SSE, streamable HTTP, in-process clients). It sees the raw
params, before the SDK validates them or looks anything up:

* names, URIs and other strings the server matches or quotes back are refused
  over their documented lengths (``gen_searcher_core.limits``), so a 1 MB tool
  name costs a length check, not a lookup, a log line and a scrubbed error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from gen_searcher_core.limits import MAX_NAME_CHARS, MAX_URI_CHARS

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


class RequestGuard:
    """The ``ServerMiddleware`` that applies the checks above to every request."""

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.request_id is None:  # a notification: nobody waits for an answer
            return await call_next(ctx)
        problem = oversized_param(ctx.params)
        if problem is not None:
            raise MCPError(code=INVALID_PARAMS, message=f"Invalid params: {problem}")
        return await call_next(ctx)
