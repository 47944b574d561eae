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

import anyio
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gen_searcher_core.host_policy import WILDCARD_BINDS, HostPolicy, host_refusal
from mcp_server.envelope import screen
from mcp_server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from mcp_server.server import GenSearcherServer, build_server
from mcp_server.services import Services, open_services, warm_up
from mcp_server.session_quota import SessionQuota
from mcp_server.settings import Settings
from safe_io.image_store import ImageNotFoundError, ImageStoreUnavailable, is_image_id

__all__ = ["MCP_PATH", "SSE_PATH", "GuardMiddleware", "HostPolicy", "create_app"]

logger = logging.getLogger(__name__)

MCP_PATH = "/mcp"
SSE_PATH = "/sse"
SSE_MESSAGES_PATH = "/messages/"
OPEN_PATHS = frozenset({"/healthz"})
MAX_CHECKED_BODY = 4 * 1024 * 1024  # the SDK's own request body limit


@dataclass
class Runtime:
    """What the lifespan builds: the services, the MCP server and its transport apps."""

    services: Services
    server: GenSearcherServer
    streamable: ASGIApp
    sse: ASGIApp


# -- Host / Origin checks and auth ------------------------------------------


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
        refusal = host_refusal(self.policy, scope["headers"])
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        authorization = next((value for key, value in scope["headers"] if key == b"authorization"), b"")
        if self.tokens and not self._authorized(authorization):
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
    runtime: Runtime = app.state.runtime
    return runtime


async def healthz(request: Request) -> Response:
    """``ok``, or ``loading`` while the render model still loads in the background (both HTTP 200)."""
    runtime = getattr(request.app.state, "runtime", None)
    return JSONResponse({"status": runtime.services.readiness() if runtime is not None else "loading"})


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


class RequestIdCheck:
    """Answers invalid JSON-RPC envelopes with -32600 (see :mod:`mcp_server.envelope`), as stdio does.

    The SDK takes a message with an object, a float or ``null`` as id for a
    notification and answers ``202`` with nothing, while the JSON-RPC spec asks
    for an Invalid Request error. POST bodies are read here (up to
    ``MAX_CHECKED_BODY``; larger ones pass on to the SDK's own size limit) and
    handed on unchanged.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if not message.get("more_body") or size > MAX_CHECKED_BODY:
                break
        body = b"".join(chunks)
        more = size > MAX_CHECKED_BODY
        error = None if more else screen(body, answer_parse_errors=False)
        if error is not None:
            await JSONResponse(error, status_code=400)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": more}
            return await receive()

        await self.app(scope, replay, send)


# -- the app --------------------------------------------------------------------


def create_app(settings: Settings, *, services: Services | None = None) -> Starlette:
    """The ASGI app. With ``services`` given they are used as they are (the caller closes them)."""
    # Host/Origin are checked by GuardMiddleware for every route, so the SDK's own check is off.
    sdk_security = TransportSecuritySettings(enable_dns_rebinding_protection=False)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            ready = services if services is not None else await stack.enter_async_context(open_services(settings))
            server = build_server(ready)
            server.streamable_http_app(  # builds server.session_manager; its routes are ours below
                streamable_http_path=MCP_PATH,
                stateless_http=settings.server.stateless,
                json_response=settings.server.json_response,
                transport_security=sdk_security,
                session_idle_timeout=settings.server.session_idle_timeout_s,
                max_sessions=settings.server.max_sessions,
            )
            # /mcp goes straight to the session manager: no second Starlette stack per request.
            streamable: ASGIApp = server.session_manager.asgi_app
            if not settings.server.stateless:
                manager = server.session_manager
                streamable = SessionQuota(
                    streamable,
                    per_client=settings.server.max_sessions_per_client,
                    live=lambda: manager._server_instances,  # the SDK's open sessions (no public view)
                    by_token=bool(settings.auth_tokens),
                )
            sse = server.sse_app(sse_path=SSE_PATH, message_path=SSE_MESSAGES_PATH, transport_security=sdk_security)
            await stack.enter_async_context(server.session_manager.run())
            background = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(background.cancel_scope.cancel)  # runs first on exit: stops a model load
            background.start_soon(warm_up, ready)
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
        Route(MCP_PATH, RequestIdCheck(_Endpoint("streamable"))),  # first: the hot path matches at once
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/images/{image_id}", image, methods=["GET"]),
        # The SSE app routes /sse and /messages/ itself (and answers 404 for anything else);
        # mounted at "" so the paths it sees, and the message URL it announces, stay unchanged.
        Mount("", app=RequestIdCheck(_Endpoint("sse"))),
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
