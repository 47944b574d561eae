"""The HTTP face of the server: MCP transports plus health, metrics and full images.

Routes:

* ``/mcp``: streamable HTTP (stateless when ``server.stateless`` is set, for
  RL workers behind a load balancer);
* ``/sse`` + ``/messages/``: the legacy SSE transport (vLLM's ``--tool-server``);
* ``GET /healthz``: liveness, always open;
* ``GET /metrics``: Prometheus text (counters carry names, never secrets);
* ``GET /images/{id}``: a stored image's full bytes.

Every request except ``/healthz`` passes two checks: the Host (and Origin, when
sent) must name this server (DNS-rebinding protection; extra names come from
``GEN_SEARCHER_ALLOWED_HOSTS``), and when ``GEN_SEARCHER_AUTH_TOKENS`` is set a
matching ``Authorization: Bearer`` token is required. Services are opened once
in the app's lifespan, or given ready by the caller.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from mcp_server.server import GenSearcherServer, build_server
from mcp_server.services import Services, open_services
from mcp_server.settings import Settings
from search_tools.images import ImageNotFoundError, ImageStoreUnavailable, is_image_id

logger = logging.getLogger(__name__)

MCP_PATH = "/mcp"
SSE_PATH = "/sse"
SSE_MESSAGES_PATH = "/messages/"
OPEN_PATHS = frozenset({"/healthz"})
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
WILDCARD_BINDS = ("", "0.0.0.0", "::")


@dataclass
class Runtime:
    """What the lifespan builds: the services, the MCP server and its transport apps."""

    services: Services
    server: GenSearcherServer
    streamable: ASGIApp
    sse: ASGIApp


# -- Host / Origin checks ---------------------------------------------------


def _split_host(value: str) -> tuple[str, str | None]:
    """``"Example.org:8000"`` -> ``("example.org", "8000")``; handles ``[::1]:8000``."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        return name, rest[1:] if rest.startswith(":") else None
    if value.count(":") == 1:
        name, port = value.split(":")
        return name, port
    return value, None


class HostPolicy:
    """Which Host names this server answers to.

    Loopback names always; the bound host unless it is a wildcard; plus the
    configured extras (``name`` for any port, ``name:port`` for one port, ``*``
    for any Host, e.g. behind a proxy that already checks it).
    """

    def __init__(self, bind_host: str, extras: list[str]) -> None:
        self.any_host = "*" in extras
        self.names: set[str] = set(LOOPBACK_NAMES)
        self.name_ports: set[tuple[str, str]] = set()
        if bind_host not in WILDCARD_BINDS:
            self.names.add(_split_host(bind_host)[0])
        for extra in extras:
            if extra == "*":
                continue
            name, port = _split_host(extra)
            if port is None or port == "*":
                self.names.add(name)
            else:
                self.name_ports.add((name, port))

    def allows_host(self, host: str | None) -> bool:
        if self.any_host:
            return True
        if not host:
            return False
        name, port = _split_host(host)
        return name in self.names or (port is not None and (name, port) in self.name_ports)

    def allows_origin(self, origin: str | None) -> bool:
        if self.any_host or not origin:
            return True  # browsers send Origin on cross-site requests; tools and same-origin omit it
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and self.allows_host(parts.netloc)


class GuardMiddleware:
    """Host/Origin validation and bearer-token auth for every path but the open ones."""

    def __init__(self, app: ASGIApp, *, policy: HostPolicy, tokens: list[bytes]) -> None:
        self.app = app
        self.policy = policy
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {key: value for key, value in scope["headers"] if key in (b"host", b"origin", b"authorization")}
        host = headers.get(b"host", b"").decode("latin-1")
        if not self.policy.allows_host(host):
            logger.warning("rejected request with Host %r (add it to GEN_SEARCHER_ALLOWED_HOSTS)", host[:200])
            await PlainTextResponse("Invalid Host header", status_code=421)(scope, receive, send)
            return
        origin = headers.get(b"origin", b"").decode("latin-1") or None
        if not self.policy.allows_origin(origin):
            await PlainTextResponse("Invalid Origin header", status_code=403)(scope, receive, send)
            return
        if self.tokens and not self._authorized(headers.get(b"authorization", b"")):
            response = JSONResponse(
                {"error": "unauthorized: send 'Authorization: Bearer <token>' with a configured token"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="gen-searcher"'},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _authorized(self, header: bytes) -> bool:
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return False
        token = token.strip()
        # Compare against every token so timing does not reveal which one matched.
        matched = False
        for expected in self.tokens:
            matched |= hmac.compare_digest(token, expected)
        return matched


# -- routes -------------------------------------------------------------------


def _runtime(request_or_scope: Request | Scope) -> Runtime:
    app = request_or_scope.app if isinstance(request_or_scope, Request) else request_or_scope["app"]
    return app.state.runtime


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def metrics(request: Request) -> Response:
    body = _runtime(request).services.metrics.render()
    return Response(body, media_type=METRICS_CONTENT_TYPE)


async def image(request: Request) -> Response:
    image_id = request.path_params["image_id"]
    if not is_image_id(image_id):
        return JSONResponse({"error": "not an image id (expected img_ followed by 16 hex digits)"}, status_code=404)
    try:
        data, media_type = await _runtime(request).services.images.read_bytes(image_id)
    except ImageNotFoundError:
        return JSONResponse({"error": f"unknown image id: {image_id}"}, status_code=404)
    except ImageStoreUnavailable as exc:  # S3 down or the folder unreadable: say so, keep serving
        return JSONResponse({"error": str(exc)}, status_code=503, headers={"Retry-After": "5"})
    # Ids are content hashes, so a response never changes.
    return Response(data, media_type=media_type, headers={"Cache-Control": "public, max-age=31536000, immutable"})


class _Endpoint:
    """An ASGI endpoint that hands the request to a transport app the lifespan built.

    A class instance, not a function: Starlette wraps plain functions as
    request/response handlers, while transports need the raw ASGI triple.
    """

    def __init__(self, attribute: str) -> None:
        self.attribute = attribute

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await getattr(_runtime(scope), self.attribute)(scope, receive, send)


# -- the app --------------------------------------------------------------------


def create_app(settings: Settings, *, services: Services | None = None) -> Starlette:
    """The ASGI app. With ``services`` given they are used as they are (the caller closes them)."""
    # Host/Origin are checked by GuardMiddleware for every route, so the SDK's own check is off.
    sdk_security = TransportSecuritySettings(enable_dns_rebinding_protection=False)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            ready = services or await stack.enter_async_context(open_services(settings))
            server = build_server(ready)
            server.streamable_http_app(  # builds server.session_manager; its routes are ours below
                streamable_http_path=MCP_PATH,
                stateless_http=settings.server.stateless,
                json_response=settings.server.json_response,
                transport_security=sdk_security,
            )
            # /mcp goes straight to the session manager: no second Starlette stack per request.
            streamable = server.session_manager.asgi_app
            sse = server.sse_app(sse_path=SSE_PATH, message_path=SSE_MESSAGES_PATH, transport_security=sdk_security)
            await stack.enter_async_context(server.session_manager.run())
            app.state.runtime = Runtime(services=ready, server=server, streamable=streamable, sse=sse)
            logger.info(
                "gen-searcher ready: streamable HTTP at %s%s, SSE at %s, search backend %s, cache mode %s",
                MCP_PATH,
                " (stateless)" if settings.server.stateless else "",
                SSE_PATH,
                getattr(ready.search, "backend_name", "none"),
                settings.cache.mode,
            )
            yield

    routes: list[Any] = [
        Route(MCP_PATH, _Endpoint("streamable")),  # first: the hot path matches at once
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/images/{image_id}", image, methods=["GET"]),
        # The SSE app routes /sse and /messages/ itself (and answers 404 for anything else);
        # mounted at "" so the paths it sees, and the message URL it announces, stay unchanged.
        Mount("", app=_Endpoint("sse")),
    ]
    policy = HostPolicy(settings.server.host, settings.allowed_hosts)
    if settings.server.host in WILDCARD_BINDS and not settings.allowed_hosts:
        logger.warning(
            "bound to %r but only loopback Host names are accepted; set GEN_SEARCHER_ALLOWED_HOSTS "
            "to the names clients use",
            settings.server.host,
        )
    tokens = [token.get_secret_value().encode() for token in settings.auth_tokens]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(GuardMiddleware, policy=policy, tokens=tokens)
    return app
