"""robots.txt rules per origin, parsed by protego and cached in memory.

Semantics follow RFC 9309: a missing robots.txt (4xx) allows everything; a
server error (5xx) or an unreachable robots.txt disallows everything until the
entry expires.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
from protego import Protego

# The loader returns (status, body) for the origin's /robots.txt, or raises OSError-like
# errors (any Exception) when it cannot be read at all.
RobotsLoader = Callable[[str], Awaitable[tuple[int, str]]]


@dataclass
class _Entry:
    rules: Protego | None  # None: decided without rules, see ``allow_all``
    allow_all: bool
    note: str
    expires: float


class RobotsCache:
    """Answers ``allowed(url)`` for one user agent, fetching each origin's robots.txt once per TTL."""

    def __init__(
        self,
        loader: RobotsLoader,
        user_agent: str,
        *,
        ttl_s: float = 3600.0,
        max_origins: int = 2048,
        passthrough: tuple[type[BaseException], ...] = (),
    ) -> None:
        self._loader = loader
        self._passthrough = passthrough
        self._agent = user_agent
        self._ttl_s = ttl_s
        self._max = max_origins
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._locks: dict[str, anyio.Lock] = {}

    async def check(self, origin: str, url: str) -> tuple[bool, str]:
        """(allowed, why) for ``url`` on ``origin`` (``scheme://host[:port]``)."""
        entry = await self._entry(origin)
        if entry.rules is None:
            return entry.allow_all, entry.note
        ok = entry.rules.can_fetch(url, self._agent)
        return ok, "" if ok else f"robots.txt of {origin} disallows this URL for {self._agent.split('/')[0]}"

    async def _entry(self, origin: str) -> _Entry:
        entry = self._fresh(origin)
        if entry is not None:
            return entry
        lock = self._locks.setdefault(origin, anyio.Lock())
        try:
            async with lock:  # single flight per origin
                entry = self._fresh(origin)
                if entry is None:
                    entry = await self._load(origin)
                    self._entries[origin] = entry
                    self._entries.move_to_end(origin)
                    while len(self._entries) > self._max:
                        old, _ = self._entries.popitem(last=False)
                        self._locks.pop(old, None)
        finally:
            if origin not in self._entries:  # the load failed: keep no lock for an origin we hold nothing for
                self._locks.pop(origin, None)
        return entry

    def _fresh(self, origin: str) -> _Entry | None:
        entry = self._entries.get(origin)
        if entry is not None and entry.expires > time.monotonic():
            self._entries.move_to_end(origin)
            return entry
        return None

    async def _load(self, origin: str) -> _Entry:
        expires = time.monotonic() + self._ttl_s
        try:
            status, body = await self._loader(origin)
        except self._passthrough:
            raise
        except Exception as exc:  # noqa: BLE001 - unreachable robots.txt: RFC 9309 says assume complete disallow
            note = f"robots.txt of {origin} could not be read ({exc}); treating the site as disallowed"
            return _Entry(None, False, note, time.monotonic() + min(self._ttl_s, 300.0))
        if 400 <= status < 500:
            return _Entry(None, True, "", expires)
        if status >= 500:
            note = f"robots.txt of {origin} answered HTTP {status}; treating the site as disallowed"
            return _Entry(None, False, note, time.monotonic() + min(self._ttl_s, 300.0))
        rules = await anyio.to_thread.run_sync(Protego.parse, body)
        return _Entry(rules, True, "", expires)
