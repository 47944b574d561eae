"""Stateful sessions capped per client, so that one client cannot lock the others out.

The SDK caps the sessions of the whole server (``server.max_sessions``, then
HTTP 503 for everyone until one idles out). In front of it, :class:`SessionQuota`
counts each client's sessions (a client is its bearer token when auth is on,
else its remote address) and caps them at ``server.max_sessions_per_client``.
A client that opens one more session than its share gets room by losing its
own session that has been idle longest (a later request on it answers 404, and
MCP clients open a new session on 404); only when all of its sessions are busy
is it refused with 503. So one client holds at most its share of the server's
sessions, and the others find room.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SessionQuota", "client_key"]

logger = logging.getLogger(__name__)

SESSION_HEADER = b"mcp-session-id"


@dataclass
class _Session:
    client: str
    last_active: float
    in_flight: int = 0


@dataclass
class _Clients:
    sessions: dict[str, _Session] = field(default_factory=dict)
    opening: dict[str, int] = field(default_factory=dict)  # per client: opening requests not yet answered


def client_key(scope: Scope, *, by_token: bool) -> str:
    """Who opens a session: a digest of the bearer token when auth is on, else the remote address."""
    if by_token:
        header = next((value for key, value in scope["headers"] if key == b"authorization"), b"")
        token = header.partition(b" ")[2].strip()
        return "token:" + hashlib.sha256(token).hexdigest()[:16]
    client = scope.get("client")
    return "address:" + (client[0] if client else "unknown")


class SessionQuota:
    """ASGI wrapper of the streamable HTTP endpoint (stateful mode) that applies the per-client cap.

    ``live`` returns the SDK's table of open sessions (id -> transport); a
    session leaves it however it ends, so this wrapper keeps no record of a
    session the SDK has closed.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        per_client: int,
        live: Callable[[], Mapping[str, Any]],
        by_token: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.per_client = per_client
        self.live = live
        self.by_token = by_token
        self.clock = clock
        self._clients = _Clients()
        self._lock = anyio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session_id = next((value.decode("latin-1") for key, value in scope["headers"] if key == SESSION_HEADER), None)
        if session_id is not None:
            await self._serve_in_session(session_id, scope, receive, send)
        elif scope["method"] == "POST":
            await self._open_session(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _serve_in_session(self, session_id: str, scope: Scope, receive: Receive, send: Send) -> None:
        session = self._clients.sessions.get(session_id)
        if session is None:
            await self.app(scope, receive, send)
            return
        session.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            session.in_flight -= 1
            session.last_active = self.clock()

    async def _open_session(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = client_key(scope, by_token=self.by_token)
        async with self._lock:
            refusal = await self._make_room(client)
            if refusal is None:
                self._clients.opening[client] = self._clients.opening.get(client, 0) + 1
        if refusal is not None:
            await refusal(scope, receive, send)
            return

        counted = [True]  # this opening request still counts for its client

        def settle() -> None:
            if counted[0]:
                counted[0] = False
                self._clients.opening[client] -= 1
                if not self._clients.opening[client]:
                    del self._clients.opening[client]

        async def watch(message: Message) -> None:
            # Recorded before the answer goes out: the client may open its next session at once.
            if message["type"] == "http.response.start":
                for key, value in message["headers"] if message["status"] < 400 else ():
                    if key == SESSION_HEADER:
                        self._clients.sessions[value.decode("latin-1")] = _Session(client, self.clock())
                settle()
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            settle()

    async def _make_room(self, client: str) -> JSONResponse | None:
        """Close ``client``'s longest-idle session when it is at its cap (or the server at its own)."""
        live = self.live()
        sessions = self._clients.sessions
        for gone in [session_id for session_id in sessions if session_id not in live]:
            del sessions[gone]
        mine = {session_id: s for session_id, s in sessions.items() if s.client == client}
        mine_count = len(mine) + self._clients.opening.get(client, 0)
        if mine_count < self.per_client:
            return None  # a full server (server.max_sessions) is the SDK's to refuse
        idle = [session_id for session_id, s in mine.items() if s.in_flight == 0]
        if idle:
            oldest = min(idle, key=lambda session_id: mine[session_id].last_active)
            await self._close(oldest)
            return None
        logger.warning("refused a session: the client already has %d busy sessions", mine_count)
        message = (
            f"Too many open sessions for this client (server.max_sessions_per_client = {self.per_client}), "
            "all of them busy; end one (HTTP DELETE) or retry later"
        )
        error = {"jsonrpc": "2.0", "id": None, "error": {"code": -32603, "message": message}}
        return JSONResponse(error, status_code=503, headers={"Retry-After": "5"})

    async def _close(self, session_id: str) -> None:
        """End the session as its client would: an HTTP DELETE with its id, answered by the SDK itself."""
        self._clients.sessions.pop(session_id, None)
        if session_id not in self.live():
            return
        logger.info("closing the client's longest-idle session to make room for a new one")
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "DELETE",
            "scheme": "http",
            "path": "/mcp",
            "raw_path": b"/mcp",
            "root_path": "",
            "query_string": b"",
            "headers": [(SESSION_HEADER, session_id.encode("latin-1")), (b"host", b"localhost")],
            "client": None,
            "server": None,
        }
        answer: list[int] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer.append(message["status"])

        await self.app(scope, receive, send)
        if answer and answer[0] >= 400:
            logger.warning("closing session failed with HTTP %d", answer[0])
