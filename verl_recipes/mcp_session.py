"""One reusable MCP client session per server per process (streamable HTTP).

Opening an MCP session costs about 65 ms; a rollout makes thousands of tool
calls, so each worker keeps one session per server and reuses it, reconnecting
after a transport failure. The bearer token, if any, comes from the environment
and never appears in errors or logs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import mcp_types

log = logging.getLogger(__name__)

DEFAULT_TOKEN_ENV = "GEN_SEARCHER_TOKEN"
DEFAULT_URL_ENV = "GEN_SEARCHER_MCP_URL"

_JSONRPC_INVALID_PARAMS = -32602
_JSONRPC_METHOD_NOT_FOUND = -32601


class McpConnectionError(RuntimeError):
    """The MCP server could not be reached (after reconnecting). The message never holds a token."""


class McpCallError(RuntimeError):
    """The server rejected the request itself (unknown tool, malformed arguments)."""


def redact_url(url: str) -> str:
    """``url`` without user info (``https://user:pw@host`` -> ``https://host``)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


class McpConnection:
    """One long-lived MCP client session to one server, reconnecting after failures.

    The session is owned by a background task on the caller's event loop (anyio
    requires a session to be opened and closed by the same task); calls from any
    task of that loop share it. A call that fails on the transport drops the
    session and is retried on a new one, up to ``max_attempts`` tries in all.
    Errors the server reports for the request itself (unknown tool, bad
    arguments) raise :class:`McpCallError` and keep the session.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout_s: float = 300.0,
        connect_timeout_s: float = 30.0,
        max_attempts: int = 2,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"MCP server URL must be http(s)://…, got {redact_url(url)!r}")
        self.url = url
        self._token = token
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_attempts = max(1, max_attempts)
        #: Sessions opened so far (a healthy worker opens one).
        self.sessions_opened = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._client: Any = None
        self._owner: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None

    def __repr__(self) -> str:
        return f"McpConnection({redact_url(self.url)!r}, sessions_opened={self.sessions_opened})"

    # -- lifecycle

    async def _own_session(self, ready: asyncio.Future[Any], stop: asyncio.Event) -> None:
        import httpx2
        from mcp import Client
        from mcp.client.streamable_http import streamable_http_client

        headers = {"Authorization": f"Bearer {self._token}"} if self._token else None
        timeout = httpx2.Timeout(self.connect_timeout_s, read=self.timeout_s)
        try:
            async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http:
                transport = streamable_http_client(self.url, http_client=http)
                async with Client(transport, read_timeout_seconds=self.timeout_s) as client:
                    self.sessions_opened += 1
                    if not ready.done():
                        ready.set_result(client)
                    await stop.wait()
        except asyncio.CancelledError:
            if not ready.done():
                ready.set_exception(McpConnectionError(f"connection to {redact_url(self.url)} was cancelled"))
            raise
        except Exception as exc:  # noqa: BLE001 - transport failures (often exception groups) end up here
            log.debug("MCP session to %s ended: %s", redact_url(self.url), type(exc).__name__)
            if not ready.done():
                ready.set_exception(McpConnectionError(_describe_failure(self.url, exc)))

    def _alive(self) -> bool:
        return self._client is not None and self._owner is not None and not self._owner.done()

    async def _session(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # First use, or the previous loop is gone (its session died with it).
            self._loop, self._lock = loop, asyncio.Lock()
            self._client = self._owner = self._stop = None
        if self._alive():
            return self._client
        assert self._lock is not None
        async with self._lock:
            if self._alive():
                return self._client
            await self._drop()
            ready: asyncio.Future[Any] = loop.create_future()
            self._stop = asyncio.Event()
            self._owner = loop.create_task(self._own_session(ready, self._stop), name="mcp-session")
            try:
                self._client = await asyncio.wait_for(asyncio.shield(ready), self.connect_timeout_s)
            except TimeoutError:
                await self._drop()
                raise McpConnectionError(
                    f"MCP server {redact_url(self.url)} did not answer within {self.connect_timeout_s:g} s"
                ) from None
            except McpConnectionError:
                await self._drop()
                raise
            return self._client

    async def _drop(self) -> None:
        owner, stop = self._owner, self._stop
        self._client = self._owner = self._stop = None
        if owner is None:
            return
        if stop is not None:
            stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(owner), 5.0)
        except (TimeoutError, Exception):  # noqa: BLE001 - a dying session may raise anything
            owner.cancel()

    async def aclose(self) -> None:
        """Close the session (it reopens on the next call)."""
        if self._loop is asyncio.get_running_loop():
            await self._drop()

    # -- calls

    async def _with_session(self, what: str, op: Any) -> Any:
        from mcp.shared.exceptions import MCPError

        failure: BaseException | None = None
        for _ in range(self.max_attempts):
            client = await self._session()
            try:
                return await op(client)
            except MCPError as exc:
                if exc.code in (_JSONRPC_INVALID_PARAMS, _JSONRPC_METHOD_NOT_FOUND):
                    raise McpCallError(f"{what} rejected by the server: {exc.error.message}") from None
                failure = exc
            except (McpCallError, asyncio.CancelledError):
                raise
            except Exception as exc:  # noqa: BLE001 - transport failures of many kinds
                failure = exc
            log.warning("MCP %s failed on %s (%s); reconnecting", what, redact_url(self.url), type(failure).__name__)
            await self._drop()
        assert failure is not None
        raise McpConnectionError(
            f"{what} failed after {self.max_attempts} attempts: {_describe_failure(self.url, failure)}"
        )

    async def call_tool(self, name: str, arguments: Mapping[str, Any] | None = None) -> mcp_types.CallToolResult:
        """Call ``name``; returns the result (``is_error`` results included) or raises."""
        args = dict(arguments or {})
        return await self._with_session(
            f"tool call {name!r}", lambda client: client.call_tool(name, args, read_timeout_seconds=self.timeout_s)
        )

    async def read_resource(self, uri: str) -> mcp_types.ReadResourceResult:
        return await self._with_session(f"read {uri}", lambda client: client.read_resource(uri))

    async def list_tools(self) -> list[mcp_types.Tool]:
        async def op(client: Any) -> list[mcp_types.Tool]:
            tools: list[mcp_types.Tool] = []
            cursor: str | None = None
            while True:
                page = await client.list_tools(cursor=cursor) if cursor else await client.list_tools()
                tools.extend(page.tools)
                cursor = getattr(page, "next_cursor", None)
                if not cursor:
                    return tools

        return await self._with_session("list_tools", op)


def _describe_failure(url: str, exc: BaseException) -> str:
    leaves: list[BaseException] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for sub in e.exceptions:
                walk(sub)
        else:
            leaves.append(e)

    walk(exc)
    first = leaves[0] if leaves else exc
    detail = str(first).strip()
    return f"MCP server {redact_url(url)}: {type(first).__name__}" + (f": {detail[:300]}" if detail else "")


class ConnectionPool:
    """Connections shared by key within one process.

    verl builds one ``BaseTool`` object per tool per worker; the tools of one
    server must still share one session, so the pool is process-wide (the
    ``shared`` class attribute). Tests and embedders can make their own pool.
    """

    shared: ClassVar[ConnectionPool]

    def __init__(self) -> None:
        self._connections: dict[tuple[Any, ...], McpConnection] = {}
        self._guard = threading.Lock()

    def get(
        self,
        url: str,
        *,
        token_env: str | None = DEFAULT_TOKEN_ENV,
        timeout_s: float = 300.0,
        max_attempts: int = 2,
    ) -> McpConnection:
        key = (url, token_env, timeout_s, max_attempts)
        with self._guard:
            conn = self._connections.get(key)
            if conn is None:
                token = os.environ.get(token_env) if token_env else None
                conn = McpConnection(url, token=token or None, timeout_s=timeout_s, max_attempts=max_attempts)
                self._connections[key] = conn
            return conn

    async def aclose(self) -> None:
        with self._guard:
            conns = list(self._connections.values())
            self._connections.clear()
        for conn in conns:
            await conn.aclose()


ConnectionPool.shared = ConnectionPool()


def run_blocking(factory: Any) -> Any:
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
    return box["value"]


async def fetch_tools(
    url: str, *, token: str | None = None, names: Iterable[str] | None = None, timeout_s: float = 60.0
) -> list[mcp_types.Tool]:
    """List the server's tools (in the server's order), optionally only ``names`` (each must exist)."""
    conn = McpConnection(url, token=token, timeout_s=timeout_s, max_attempts=1)
    try:
        tools = await conn.list_tools()
    finally:
        await conn.aclose()
    if names is None:
        return tools
    wanted = list(names)
    by_name = {t.name: t for t in tools}
    missing = [n for n in wanted if n not in by_name]
    if missing:
        raise ValueError(f"server {redact_url(url)} has no tool(s) {missing}; it offers {sorted(by_name)}")
    return [by_name[n] for n in wanted]
