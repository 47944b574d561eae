"""The guard inside the browser: an HTTP proxy on 127.0.0.1 through which Chromium reaches the network.

Chromium is started with every context's traffic sent here (loopback included,
``<-loopback>``). Each tunnel (``CONNECT host:port``, used for https, wss and
ws) and each plain-http request (absolute-form ``GET http://host/...``) is
opened by :class:`safe_io.fetcher.GuardedNetworkBackend`, the connector of
the ``direct`` fetcher: the host is checked, resolved, every answer vetted, the
vetted address connected to and the socket's peer address checked again. So a
page's scripts, XHR/fetch, iframes, WebSockets and redirect hops meet exactly
the guard ``direct`` has, pinned per connection (DNS rebinding gets nothing).

The proxy listens on one port per browser context ("slot") plus a fallback port
for the browser's own traffic; a slot's port tells which page a connection
belongs to, so each page has its own byte budget, refusal count and
subresource rule (third parties and trackers, :mod:`search_tools.fetchers.subresources`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpcore

from safe_io.fetcher import BlockedAddress, ConnectionFailed, GuardedNetworkBackend, Resolver, system_resolver
from safe_io.netguard import AddressPolicy
from search_tools.fetchers.subresources import SubresourceRule

_HEAD_LIMIT = 64 * 1024
_CHUNK = 64 * 1024
_HOP_HEADERS = {b"proxy-connection", b"proxy-authorization", b"connection", b"keep-alive"}


@dataclass
class Slot:
    """What one page did through the proxy: bytes received, refusals, open connections."""

    port: int = 0
    max_bytes: int = 0
    received: int = 0
    refused: list[str] = field(default_factory=list)
    over_budget: bool = False
    writers: set[asyncio.StreamWriter] = field(default_factory=set)
    rule: SubresourceRule | None = None  # the page's subresource rule (None: the guard alone decides)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self, max_bytes: int, rule: SubresourceRule | None = None) -> None:
        self.close_connections()
        self.max_bytes, self.received, self.over_budget = max_bytes, 0, False
        self.refused = []
        self.rule = rule

    def close_connections(self) -> None:
        for writer in list(self.writers):
            writer.close()
        self.writers.clear()


class GuardProxy:
    """The guarding proxy: ``start(slots)``, then point browser context ``i`` at ``slots[i].url``."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        resolver: Resolver = system_resolver,
        on_refused: Callable[[str], None] | None = None,
        on_blocked: Callable[[str], None] | None = None,
        connect_timeout_s: float = 10.0,
        idle_timeout_s: float = 60.0,
    ) -> None:
        self._backend = GuardedNetworkBackend(policy, resolver)
        self._on_refused = on_refused
        self._on_blocked = on_blocked
        self._connect_timeout_s = connect_timeout_s
        self._idle_timeout_s = idle_timeout_s
        self._servers: list[asyncio.Server] = []
        self.slots: list[Slot] = []
        self.fallback = Slot(max_bytes=1 << 62)  # the browser's own requests (none expected: background off)

    async def start(self, slots: int) -> None:
        if self._servers:
            return
        self.slots = [Slot() for _ in range(slots)]
        for slot in [self.fallback, *self.slots]:
            server = await asyncio.start_server(
                functools.partial(self._serve, slot=slot), "127.0.0.1", 0, limit=_HEAD_LIMIT
            )
            slot.port = server.sockets[0].getsockname()[1]
            self._servers.append(server)

    async def aclose(self) -> None:
        for slot in [self.fallback, *self.slots]:
            slot.close_connections()
        for server in self._servers:
            server.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)
        self._servers = []

    # -- one client connection -------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, slot: Slot) -> None:
        slot.writers.add(writer)
        try:
            await self._handle(reader, writer, slot)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        finally:
            slot.writers.discard(writer)
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, slot: Slot) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self._idle_timeout_s)
        request_line, _, rest = head.partition(b"\r\n")
        parts = request_line.split(b" ")
        if len(parts) != 3:
            return await _answer(writer, 400, "malformed request line")
        method, target, version = parts
        if method == b"CONNECT":
            host, port = _split_authority(target.decode("latin-1"))
            if host is None:
                return await _answer(writer, 400, "malformed CONNECT target")
            upstream = await self._connect(writer, slot, host, port)
            if upstream is not None:
                writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                await writer.drain()
                await self._pipe(reader, writer, upstream, slot)
            return None
        url = urlsplit(target.decode("latin-1"))
        if url.scheme != "http" or not url.hostname:
            return await _answer(writer, 400, "only absolute http:// requests and CONNECT tunnels are proxied")
        upstream = await self._connect(writer, slot, url.hostname, url.port or 80)
        if upstream is None:
            return None
        path = url.path or "/"
        if url.query:
            path += "?" + url.query
        headers = [
            line for line in rest.split(b"\r\n") if line and line.split(b":", 1)[0].strip().lower() not in _HOP_HEADERS
        ]
        out = b"\r\n".join([method + b" " + path.encode("latin-1") + b" " + version, *headers, b"Connection: close"])
        await upstream.write(out + b"\r\n\r\n", timeout=self._idle_timeout_s)
        await self._pipe(reader, writer, upstream, slot, close_after_response=True)
        return None

    async def _connect(
        self, writer: asyncio.StreamWriter, slot: Slot, host: str, port: int
    ) -> httpcore.AsyncNetworkStream | None:
        """The vetted upstream connection, or None after answering the browser with the refusal."""
        if slot.over_budget:
            await _answer(writer, 403, "refused: the page is over its byte budget")
            return None
        blocked = slot.rule.host_refusal(host) if slot.rule is not None else None
        if blocked is not None:  # what the browser's routing cannot see (WebSockets) meets the page's rule here
            if self._on_blocked is not None:
                self._on_blocked(blocked)
            await _answer(writer, 403, f"blocked: {blocked}")
            return None
        try:
            return await self._backend.connect_tcp(host, port, timeout=self._connect_timeout_s)
        except BlockedAddress as exc:
            slot.refused.append(f"{host}:{port}: {exc}")
            if self._on_refused is not None:
                self._on_refused(str(exc))
            await _answer(writer, 403, str(exc))
        except (ConnectionFailed, httpcore.ConnectError, httpcore.ConnectTimeout, OSError) as exc:
            await _answer(writer, 502, f"could not connect to {host}:{port}: {type(exc).__name__}")
        return None

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream: httpcore.AsyncNetworkStream,
        slot: Slot,
        *,
        close_after_response: bool = False,
    ) -> None:
        """Copy both ways until either side closes; bytes from upstream count against the slot's budget.

        Plain-http requests were sent upstream with ``Connection: close``, so the upstream's end of
        stream ends the response and the browser's connection is closed with it (never reused for
        another host).
        """

        async def down() -> None:
            while True:
                data = await upstream.read(_CHUNK, timeout=self._idle_timeout_s)
                if not data:
                    return
                slot.received += len(data)
                if slot.received > slot.max_bytes:
                    slot.over_budget = True
                    return
                writer.write(data)
                await writer.drain()

        async def up() -> None:
            while True:
                data = await asyncio.wait_for(reader.read(_CHUNK), self._idle_timeout_s)
                if not data:
                    return
                await upstream.write(data, timeout=self._idle_timeout_s)

        tasks = [asyncio.ensure_future(down()), asyncio.ensure_future(up())]
        try:
            if close_after_response:
                await asyncio.wait([tasks[0]])
            else:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task
            with contextlib.suppress(Exception):
                await upstream.aclose()


def _split_authority(authority: str) -> tuple[str | None, int]:
    host, sep, port_text = authority.rpartition(":")
    if not sep or not port_text.isdigit() or not host:
        return None, 0
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)


async def _answer(writer: asyncio.StreamWriter, status: int, message: str) -> None:
    reason = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}[status]
    body = message.encode("utf-8", errors="replace")
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(ConnectionError):
        await writer.drain()
