"""The one MCP client session of the project: long-lived, reconnecting, optionally shared.

Opening an MCP session costs a handshake (about 65 ms over HTTP here); an
episode makes up to ten tool calls and a training rollout thousands, so a
session is opened once and reused by every call (concurrent calls included).
Both the inference driver (:mod:`policy.mcp_tools`) and the verl bridge
(``verl_recipes``) use :class:`McpConnection`; verl, which builds one tool object
per tool per worker, shares sessions through :class:`ConnectionPool`.

Errors: a request the server answers with an error (unknown tool, bad
arguments) or that times out raises :class:`McpCallError` and keeps the session; a broken
transport drops the session, the call is retried on a fresh one, and
:class:`McpConnectionError` is raised only when that fails too. The bearer
token never appears in errors, logs or ``repr``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx2
import mcp_types
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from gen_searcher_core.errors import UserFacingError, first_leaf

log = logging.getLogger(__name__)

DEFAULT_TOKEN_ENV = "GEN_SEARCHER_TOKEN"  # the same variable the server CLI reads for --token
DEFAULT_URL_ENV = "GEN_SEARCHER_MCP_URL"

# JSON-RPC error codes that mean the session is gone (the SDK's "Connection closed";
# the HTTP transport's "Session terminated" after a server restart; a garbled
# stream): the session is dropped and the call retried on a new one. Any other
# error is about the request itself (bad arguments, unknown tool or resource,
# time-out) and keeps the session.
_SESSION_LOST = frozenset({mcp_types.CONNECTION_CLOSED, mcp_types.INVALID_REQUEST, mcp_types.PARSE_ERROR})

T = TypeVar("T")


class McpConnectionError(UserFacingError, RuntimeError):
    """The MCP server could not be reached (after reconnecting). The message never holds a token."""


class McpCallError(UserFacingError, RuntimeError):
    """The server answered the request with an error (unknown tool, bad arguments, time-out); the session is fine."""


def redact_url(url: str) -> str:
    """``url`` without user info (``https://user:pw@host`` -> ``https://host``)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _target_name(target: Any) -> str:
    if isinstance(target, str):
        return redact_url(target)
    if isinstance(target, StdioServerParameters):
        return "the local tool server (stdio)"
    return f"in-process {type(target).__name__}"


def local_server(config_file: Path | None = None) -> StdioServerParameters:
    """This installation's tool server as a subprocess over stdio (``gen-searcher serve --transport stdio``).

    The policy reaches tools only over MCP; without a server URL, commands start
    one this way. It inherits the environment, so ``GEN_SEARCHER_*`` settings and
    provider keys apply as they would to ``gen-searcher serve``.
    """
    args = ["-m", "mcp_server", "serve", "--transport", "stdio"]
    if config_file is not None:
        args += ["--config", str(config_file)]
    return StdioServerParameters(command=sys.executable, args=args, env=dict(os.environ))


class McpConnection:
    """One long-lived MCP client session to one server, opened on first use, reconnecting after failures.

    ``target`` is a streamable-HTTP URL (``http(s)://…/mcp``) or an in-process
    server object (what ``mcp.Client`` accepts). The session is owned by a
    background task on the caller's event loop (anyio requires a session to be
    opened and closed by the same task); calls from any task of that loop share
    it. A call that fails on the transport drops the session and is retried on a
    new one, up to ``max_attempts`` tries in all. Close it with :meth:`aclose`
    (it reopens on the next call).
    """

    def __init__(
        self,
        target: Any,
        *,
        token: str | None = None,
        timeout_s: float | None = 300.0,
        connect_timeout_s: float = 30.0,
        max_attempts: int = 2,
    ) -> None:
        if isinstance(target, str) and not target.startswith(("http://", "https://")):
            raise ValueError(f"MCP server URL must be http(s)://…, got {redact_url(target)!r}")
        self.target = target
        self._token = token
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_attempts = max(1, max_attempts)
        #: Sessions opened so far (a healthy connection opens one).
        self.sessions_opened = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._client: Any = None
        self._owner: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None

    @property
    def name(self) -> str:
        """The server, for messages: its URL without credentials, or the in-process server's type."""
        return _target_name(self.target)

    def __repr__(self) -> str:
        return f"McpConnection({self.name!r}, sessions_opened={self.sessions_opened})"

    # -- lifecycle

    async def _own_session(self, ready: asyncio.Future[Any], stop: asyncio.Event) -> None:
        from mcp import Client

        try:
            async with contextlib.AsyncExitStack() as stack:
                server: Any = self.target
                if isinstance(self.target, str):  # over HTTP, with the bearer token when there is one
                    headers = {"Authorization": f"Bearer {self._token}"} if self._token else None
                    timeout = httpx2.Timeout(self.connect_timeout_s, read=self.timeout_s)
                    http = await stack.enter_async_context(create_mcp_http_client(headers=headers, timeout=timeout))
                    server = streamable_http_client(self.target, http_client=http)
                client = await stack.enter_async_context(Client(server, read_timeout_seconds=self.timeout_s))
                self.sessions_opened += 1
                if not ready.done():
                    ready.set_result(client)
                await stop.wait()
        except asyncio.CancelledError:
            if not ready.done():
                ready.set_exception(McpConnectionError(f"connection to {self.name} was cancelled"))
            raise
        except Exception as exc:  # noqa: BLE001 - transport failures (often exception groups) end up here
            log.debug("MCP session to %s ended: %s", self.name, type(exc).__name__)
            if not ready.done():
                ready.set_exception(McpConnectionError(_transport_failure(self.name, exc)))

    def _alive(self) -> bool:
        return self._client is not None and self._owner is not None and not self._owner.done()

    async def open(self) -> None:
        """Open the session now (calls open it on demand); raises :class:`McpConnectionError`."""
        await self._session()

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
                    f"MCP server {self.name} did not answer within {self.connect_timeout_s:g} s"
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

    async def _with_session(self, what: str, op: Callable[[Any], Awaitable[T]]) -> T:
        from mcp.shared.exceptions import MCPError

        failure: BaseException | None = None
        for _ in range(self.max_attempts):
            client = await self._session()
            try:
                return await op(client)
            except MCPError as exc:
                if exc.code not in _SESSION_LOST:
                    raise McpCallError(f"{what} failed on the server: {exc.error.message}") from None
                failure = exc
            except (McpCallError, asyncio.CancelledError):
                raise
            except Exception as exc:  # noqa: BLE001 - transport failures of many kinds
                failure = exc
            log.warning("MCP %s failed on %s (%s); reconnecting", what, self.name, type(failure).__name__)
            await self._drop()
        assert failure is not None
        detail = _transport_failure(self.name, failure)
        raise McpConnectionError(f"{what} failed after {self.max_attempts} attempt(s): {detail}")

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> mcp_types.CallToolResult:
        """Call ``name``; returns the result (``is_error`` results included) or raises."""
        args = dict(arguments or {})
        return await self._with_session(
            f"tool call {name!r}", lambda client: client.call_tool(name, args, read_timeout_seconds=self.timeout_s)
        )

    async def read_resource(self, uri: str) -> mcp_types.ReadResourceResult:
        return await self._with_session(f"read {uri}", lambda client: client.read_resource(uri))

    async def list_tools(self) -> list[mcp_types.Tool]:
        """All the server's tools, in the server's order (following pagination)."""

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


def _transport_failure(name: str, exc: BaseException) -> str:
    """What broke the session (the transport's own words; they hold no token), for ``McpConnectionError``."""
    leaf = first_leaf(exc)
    detail = str(leaf).strip()
    return f"MCP server {name}: {type(leaf).__name__}" + (f": {detail[:300]}" if detail else "")


def token_from_env(token_env: str | None = DEFAULT_TOKEN_ENV) -> str | None:
    """The bearer token held by ``token_env`` (``None`` when unset, empty or no variable named)."""
    return (os.environ.get(token_env) or None) if token_env else None


class ConnectionPool:
    """Connections shared by key, so that several callers in one process use one session per server.

    verl builds one ``BaseTool`` object per tool per worker; the tools of one
    server must still share one session, so verl code uses the process-wide
    :attr:`shared` pool. Tests and embedders can make their own pool.
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
        """The pool's connection for these settings, created (not yet opened) on first request."""
        key = (url, token_env, timeout_s, max_attempts)
        with self._guard:
            conn = self._connections.get(key)
            if conn is None:
                token = token_from_env(token_env)
                conn = McpConnection(url, token=token, timeout_s=timeout_s, max_attempts=max_attempts)
                self._connections[key] = conn
            return conn

    async def aclose(self) -> None:
        with self._guard:
            conns = list(self._connections.values())
            self._connections.clear()
        for conn in conns:
            await conn.aclose()


ConnectionPool.shared = ConnectionPool()


async def fetch_tools(
    target: Any, *, token: str | None = None, names: Iterable[str] | None = None, timeout_s: float = 60.0
) -> list[mcp_types.Tool]:
    """List the server's tools (in the server's order), optionally only ``names`` (each must exist)."""
    conn = McpConnection(target, token=token, timeout_s=timeout_s, max_attempts=1)
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
        raise ValueError(f"server {conn.name} has no tool(s) {missing}; it offers {sorted(by_name)}")
    return [by_name[n] for n in wanted]
