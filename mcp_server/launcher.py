"""What the CLI runs: the server over stdio or HTTP, and one-shot tool listing and calls.

``url=None`` means in-process: services are opened here and the tool is
reached through a real in-memory MCP client session, so the result is exactly
what a remote client would see.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
from mcp import Client
from mcp.server.mcpserver.exceptions import ToolError

from gen_searcher_core.errors import UserFacingError, describe_failure, first_leaf
from mcp_server.server import build_server, unavailable_tools
from mcp_server.services import open_services
from mcp_server.settings import Settings

__all__ = [
    "RemoteServerError",
    "call_tool_json",
    "check_image_store",
    "check_port",
    "check_search_config",
    "list_tools_json",
    "serve_http",
    "serve_stdio",
    "unavailable_tools",
]

# Libraries that log every request at INFO (URLs with queries, one line per engine tried);
# they speak at WARNING unless the server runs at DEBUG.
_CHATTY_LOGGERS = ("httpx", "httpcore", "ddgs", "primp")

logger = logging.getLogger(__name__)

STDIO_OPEN_DELAY_S = 3.0  # the stdio server opens services after tools/list, or after this long
STDIO_ANSWER_GRACE_S = 0.25


def _configure_logging(settings: Settings) -> None:
    # stderr only: over stdio, stdout carries the protocol.
    level = settings.server.log_level.upper()
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if logging.getLevelName(level) != logging.DEBUG:
        for name in _CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


def check_search_config(settings: Settings) -> None:
    """Build (and close) the configured search backend once, so that a bad configuration
    (unknown backend, missing key or index setting, malformed provider URL) stops the
    server before it starts, with the backend's ``SearchBackendError`` (kind ``config``)."""
    from search_tools.backends.registry import create_backend

    backend = create_backend(settings.backend_config())
    anyio.run(backend.aclose)


def check_image_store(settings: Settings) -> None:
    """Open the configured image store once, so that an unusable one (a folder that cannot be
    written, a missing bucket, refused credentials, an endpoint that does not answer) stops the
    server before it starts, with a ``ConfigError`` naming the setting."""
    from safe_io.image_store import open_image_store

    async def check() -> None:
        store = await open_image_store(settings.images)
        await store.aclose()

    anyio.run(check)


def check_port(host: str, port: int) -> None:
    """Bind ``host:port`` once (as uvicorn will, with ``SO_REUSEADDR``), so that a port in use stops the
    server before it opens its services and logs that it is ready, with a ``ConfigError`` naming the flag."""
    import errno
    import socket

    from gen_searcher_core.errors import ConfigError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} on {host} is already in use (another gen-searcher serve?); "
                    "pass --port or set GEN_SEARCHER_SERVER__PORT"
                ) from None
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve_http(settings: Settings) -> None:
    import uvicorn

    from gen_searcher_core.serving import uvicorn_options
    from mcp_server.http_app import create_app

    _configure_logging(settings)
    check_port(settings.server.host, settings.server.port)
    check_search_config(settings)
    check_image_store(settings)
    uvicorn.run(
        create_app(settings),
        host=settings.server.host,
        port=settings.server.port,
        log_level=settings.server.log_level.lower(),
        timeout_graceful_shutdown=5,
        **uvicorn_options(settings.server.idle_connection_timeout_s),
    )


def serve_stdio(settings: Settings) -> None:
    _configure_logging(settings)
    check_search_config(settings)
    check_image_store(settings)

    anyio.run(_serve_stdio, settings)


async def _serve_stdio(settings: Settings) -> None:
    """Answer ``initialize`` and ``tools/list`` at once; open services (and load models) meanwhile.

    A desktop assistant launches the server and waits for ``initialize``, so
    the services open in the background: the tools are registered up front
    (their schemas need no service) and every tool call or resource read waits
    until the services are open. Once they are, models load in the background
    too (see :func:`mcp_server.services.warm_up`).
    """
    from mcp_server.services import Services, warm_up
    from mcp_server.stdio import run_screened_stdio

    services = Services(settings=settings, images=None)  # type: ignore[arg-type]  # filled in below
    start = anyio.Event()  # set once the client has the tool list (or calls a tool first)
    opened = anyio.Event()
    failure: list[str] = []

    async def until_ready() -> None:
        start.set()
        await opened.wait()
        if failure:
            raise ToolError(failure[0])

    async def open_in_background() -> None:
        # Opening imports a lot (on this thread) and the model load competes for the CPU:
        # wait until the client has its answers, or a few seconds at most.
        with anyio.move_on_after(STDIO_OPEN_DELAY_S):
            await start.wait()
            # The hook fires inside the tools/list handler: let its answer reach stdout first
            # (imports below hold this thread; the write goes through a worker thread).
            await anyio.sleep(STDIO_ANSWER_GRACE_S)
        try:
            async with open_services(settings, metrics=services.metrics) as ready:
                services.adopt(ready)
                opened.set()
                await warm_up(services)
                await anyio.sleep_forever()
        except Exception as exc:  # the server keeps answering, each call with this one clear line
            failure.append(f"the tool server could not start its services: {describe_failure(exc)}")
            logger.error("%s", failure[0], exc_info=not isinstance(first_leaf(exc), UserFacingError))
            opened.set()

    server = build_server(services, until_ready=until_ready, on_listed=start.set)
    async with anyio.create_task_group() as tg:
        tg.start_soon(open_in_background)
        await run_screened_stdio(server)  # every line answered, even one the SDK cannot read
        tg.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def _client(settings: Settings, url: str | None, token: str | None) -> AsyncIterator[Client]:
    if url is None:
        _configure_logging(settings)  # before the SDK's own (rich, INFO) logging setup
        async with open_services(settings) as services, Client(build_server(services), mode="legacy") as client:
            yield client
        return
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0)) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


class RemoteServerError(UserFacingError):
    """The server at ``--url`` could not be reached or refused the MCP session."""


def _remote_failure(url: str, exc: Exception) -> RemoteServerError:
    import httpx2

    leaf = first_leaf(exc)
    if isinstance(leaf, httpx2.HTTPError):
        return RemoteServerError(f"could not reach {url} ({type(leaf).__name__}: {leaf})")
    return RemoteServerError(
        f"the server at {url} refused the MCP session ({type(leaf).__name__}: {leaf}); "
        "check the URL (it ends in /mcp) and, for a server with auth, --token"
    )


async def list_tools_json(settings: Settings, url: str | None = None, token: str | None = None) -> list[dict[str, Any]]:
    try:
        async with _client(settings, url, token) as client:
            listing = await client.list_tools()
    except Exception as exc:
        if url is None:
            raise
        raise _remote_failure(url, exc) from None
    return [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in listing.tools]


async def call_tool_json(
    settings: Settings, tool: str, arguments: dict[str, Any], url: str | None = None, token: str | None = None
) -> dict[str, Any]:
    try:
        async with _client(settings, url, token) as client:
            result = await client.call_tool(tool, arguments)
    except Exception as exc:
        if url is None:
            raise
        raise _remote_failure(url, exc) from None
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)
