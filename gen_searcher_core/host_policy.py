"""Which Host and Origin values a local HTTP server answers to (DNS-rebinding protection).

A web page in a user's browser can reach servers on 127.0.0.1; checking the
Host header (and Origin, when a browser sends one) keeps such pages from
driving the tool server or the render server. Both servers use this policy
through :class:`HostGuard`.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field
from pydantic_settings import NoDecode
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
WILDCARD_BINDS = ("", "0.0.0.0", "::")


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


#: A settings field for ``GEN_SEARCHER_ALLOWED_HOSTS`` (comma-separated in the environment).
AllowedHosts = Annotated[
    list[str],
    NoDecode,
    BeforeValidator(_comma_list),
    Field(default_factory=list, description="Host/Origin values accepted besides loopback (comma-separated)"),
]


def split_host(value: str) -> tuple[str, str | None]:
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
    """Which Host names a server answers to.

    Loopback names always; the bound host unless it is a wildcard; plus the
    configured extras (``name`` for any port, ``name:port`` for one port, ``*``
    for any Host, e.g. behind a proxy that already checks it).
    """

    def __init__(self, bind_host: str, extras: list[str]) -> None:
        self.any_host = "*" in extras
        self.names: set[str] = set(LOOPBACK_NAMES)
        self.name_ports: set[tuple[str, str]] = set()
        if bind_host not in WILDCARD_BINDS:
            self.names.add(split_host(bind_host)[0])
        for extra in extras:
            if extra == "*":
                continue
            name, port = split_host(extra)
            if port is None or port == "*":
                self.names.add(name)
            else:
                self.name_ports.add((name, port))

    def allows_host(self, host: str | None) -> bool:
        if self.any_host:
            return True
        if not host:
            return False
        name, port = split_host(host)
        return name in self.names or (port is not None and (name, port) in self.name_ports)

    def allows_origin(self, origin: str | None) -> bool:
        if self.any_host or not origin:
            return True  # browsers send Origin on cross-site requests; tools and same-origin omit it
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and self.allows_host(parts.netloc)


def host_refusal(policy: HostPolicy, headers: list[tuple[bytes, bytes]]) -> PlainTextResponse | None:
    """The answer for a request whose Host or Origin the policy refuses (421 / 403), else ``None``."""
    host = origin = b""
    for key, value in headers:
        if key == b"host":
            host = value
        elif key == b"origin":
            origin = value
    host_text = host.decode("latin-1")
    if not policy.allows_host(host_text):
        logger.warning("rejected request with Host %r (add it to the allowed hosts)", host_text[:200])
        return PlainTextResponse("Invalid Host header", status_code=421)
    if not policy.allows_origin(origin.decode("latin-1") or None):
        return PlainTextResponse("Invalid Origin header", status_code=403)
    return None


class HostGuard:
    """ASGI middleware: refuse HTTP requests whose Host or Origin the policy does not allow.

    Paths in ``open_paths`` (health checks) pass unchecked.
    """

    def __init__(self, app: ASGIApp, *, policy: HostPolicy, open_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.policy = policy
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in self.open_paths:
            refusal = host_refusal(self.policy, scope["headers"])
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)
