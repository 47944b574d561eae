"""A verl ``BaseTool`` that forwards to one tool of any MCP server, and its tool-config YAML.

verl 0.9.1 has no MCP support of its own (it was removed upstream). With
:class:`McpTool`, verl's stock ``tool_agent`` loop trains against our server or any
other MCP server:

* the tools of one server share one client session per worker process
  (:class:`~policy.mcp_client.ConnectionPool`, the same session code the
  inference driver uses), reconnecting after failures;
* image content becomes PIL images in ``ToolResponse.image``; text stays within
  ``max_text_chars``; a tool error reaches the model as a clear ``Tool error: …`` text.

:func:`write_tool_config` lists a server's tools and writes the YAML that
``actor_rollout_ref.rollout.multi_turn.tool_config_path`` expects (schemas flattened
to what verl accepts); :func:`load_tools` instantiates such a file the way verl's
rollout workers do. The bearer token is read from the variable named by
``token_env`` and never written to the YAML.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import mcp_types
from verl.tools.base_tool import BaseTool
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse

from policy.mcp_client import (
    DEFAULT_TOKEN_ENV,
    DEFAULT_URL_ENV,
    ConnectionPool,
    McpCallError,
    McpConnection,
    McpConnectionError,
    fetch_tools,
    token_from_env,
)
from verl_recipes.mcp_convert import clip_text, result_parts, tool_schema_dict

TOOL_CLASS = "verl_recipes.mcp_tool.McpTool"

T = TypeVar("T")


def to_verl_schema(tool: mcp_types.Tool) -> OpenAIFunctionToolSchema:
    return OpenAIFunctionToolSchema.model_validate(tool_schema_dict(tool))


def to_tool_response(
    result: mcp_types.CallToolResult, *, max_text_chars: int = 8000, max_images: int = 8
) -> tuple[ToolResponse, dict[str, Any]]:
    """An MCP result as verl's ``ToolResponse`` plus metrics for the rollout trace."""
    texts, images, notes = result_parts(result)
    if len(images) > max_images:
        notes.append(f"{len(images) - max_images} more images not shown")
        images = images[:max_images]
    body = "\n".join(t for t in texts if t)
    if result.is_error:
        body = f"Tool error: {body or 'the tool failed without a message'}"
    if notes:
        body = (body + "\n" if body else "") + "(" + "; ".join(notes) + ")"
    text = clip_text(body, max_text_chars)
    metrics: dict[str, Any] = {
        "is_error": bool(result.is_error),
        "images": len(images),
        "text_chars": len(text),
        "truncated": len(text) < len(body),
    }
    kwargs: dict[str, Any] = {"text": text}
    if images:
        kwargs["image"] = images
    return ToolResponse(**kwargs), metrics


class McpTool(BaseTool):
    """A verl native tool that forwards to one tool of an MCP server.

    Config keys (``tools[].config`` in verl's tool YAML): ``type: native`` (verl
    requires it), ``server_url`` (else ``$GEN_SEARCHER_MCP_URL``), ``token_env``
    (the variable holding a bearer token; default ``GEN_SEARCHER_TOKEN``),
    ``tool_name`` (used when no ``tool_schema`` is given: the schema is then
    fetched from the server), ``max_text_chars`` (8000), ``max_images`` (8),
    ``timeout_s`` (300), ``max_attempts`` (2).
    """

    def __init__(self, config: dict[str, Any], tool_schema: OpenAIFunctionToolSchema | None = None) -> None:
        config = dict(config or {})
        url = config.get("server_url") or os.environ.get(DEFAULT_URL_ENV)
        if not url:
            raise ValueError(f"McpTool needs config.server_url or ${DEFAULT_URL_ENV}")
        self.server_url = str(url)
        self.token_env: str | None = config.get("token_env", DEFAULT_TOKEN_ENV)
        self.max_text_chars = int(config.get("max_text_chars", 8000))
        self.max_images = int(config.get("max_images", 8))
        self.timeout_s = float(config.get("timeout_s", 300.0))
        self.max_attempts = int(config.get("max_attempts", 2))
        if tool_schema is None:
            name = config.get("tool_name")
            if not name:
                raise ValueError("McpTool needs a tool_schema or config.tool_name")
            token = token_from_env(self.token_env)
            tools = _run_blocking(lambda: fetch_tools(self.server_url, token=token, names=[name]))
            tool_schema = to_verl_schema(tools[0])
        super().__init__(config, tool_schema)

    @property
    def connection(self) -> McpConnection:
        """This worker's session to the server (shared with the server's other tools)."""
        return ConnectionPool.shared.get(
            self.server_url, token_env=self.token_env, timeout_s=self.timeout_s, max_attempts=self.max_attempts
        )

    async def execute(
        self, instance_id: str, parameters: dict[str, Any], **kwargs: Any
    ) -> tuple[ToolResponse, float, dict[str, Any]]:
        started = time.perf_counter()
        try:
            result = await self.connection.call_tool(self.name, parameters)
        except (McpConnectionError, McpCallError) as exc:
            return ToolResponse(text=f"Tool error: {exc}"), 0.0, {"is_error": True, "failed": True}
        response, metrics = to_tool_response(result, max_text_chars=self.max_text_chars, max_images=self.max_images)
        metrics["latency_s"] = time.perf_counter() - started
        return response, 0.0, metrics


def _run_blocking(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``factory()``'s coroutine to completion on a private loop in a helper thread.

    Used only where verl calls us synchronously (tool construction); the thread
    keeps us clear of any loop already running in the caller.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(factory())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="mcp-schema-fetch", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def tool_config(
    tools: Sequence[mcp_types.Tool],
    *,
    server_url: str,
    token_env: str | None = DEFAULT_TOKEN_ENV,
    max_text_chars: int = 8000,
    max_images: int = 8,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """verl's tool-config document (``{"tools": [...]}``) for ``tools`` of one server."""
    entries = []
    for tool in tools:
        config: dict[str, Any] = {
            "type": "native",
            "server_url": server_url,
            "tool_name": tool.name,
            "max_text_chars": max_text_chars,
            "max_images": max_images,
            "timeout_s": timeout_s,
        }
        if token_env:
            config["token_env"] = token_env
        entries.append({"class_name": TOOL_CLASS, "config": config, "tool_schema": tool_schema_dict(tool)})
    return {"tools": entries}


async def write_tool_config(
    path: str | Path,
    server_url: str,
    *,
    names: Iterable[str] | None = None,
    token_env: str | None = DEFAULT_TOKEN_ENV,
    max_text_chars: int = 8000,
    max_images: int = 8,
    timeout_s: float = 300.0,
) -> Path:
    """List the server's tools (or only ``names``) and write verl's tool-config YAML to ``path``."""
    import anyio
    import yaml

    tools = await fetch_tools(server_url, token=token_from_env(token_env), names=names)
    document = tool_config(
        tools,
        server_url=server_url,
        token_env=token_env,
        max_text_chars=max_text_chars,
        max_images=max_images,
        timeout_s=timeout_s,
    )
    out = Path(path)
    await anyio.Path(out).write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out


def load_tools(path: str | Path) -> list[BaseTool]:
    """Instantiate the tools of a tool-config YAML exactly as verl's rollout workers do."""
    from verl.tools.tool_registry import initialize_tools_from_config

    return initialize_tools_from_config(str(path))
