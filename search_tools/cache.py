"""A JSON result cache with single-flight, TTL and replay, over SQLite (embedded) or Redis (shared).

GRPO rollouts of one prompt issue the same queries at once; ``get_or_compute``
lets exactly one of them reach the provider while the rest wait for its answer.
Modes:

* ``readwrite``: serve hits, compute misses and store them (default);
* ``readonly``: serve hits, compute misses but never write;
* ``replay``: serve hits (expired ones too), never compute: a miss raises
  :class:`CacheMissError`, so a recorded run can be replayed exactly;
* ``off``: always compute, never read or write.

A small in-memory LRU sits in front of the store of each ``Cache`` instance so
that hits cost microseconds. Values must be JSON-serializable; callers get a
fresh decoded copy each time.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

import anyio

if TYPE_CHECKING:
    from search_tools.settings import CacheSettings

logger = logging.getLogger(__name__)

CacheMode = Literal["readwrite", "readonly", "replay", "off"]
CACHE_MODES: tuple[str, ...] = ("readwrite", "readonly", "replay", "off")
_MISS = object()


class CacheError(Exception):
    """The cache could not serve a request; the message is safe to show callers."""

    user_facing = True


class CacheMissError(CacheError, LookupError):
    """Replay mode found no stored result; no provider is called in replay mode."""

    def __init__(self, namespace: str, key_parts: Any) -> None:
        described = json.dumps(key_parts, ensure_ascii=False, default=str)
        if len(described) > 200:
            described = described[:200] + "…"
        super().__init__(
            f"cache replay miss: no recorded {namespace} result for {described} "
            "(GEN_SEARCHER_CACHE__MODE=replay serves only results recorded by an earlier run and never calls a provider)"
        )
        self.namespace = namespace


class CacheMetrics(Protocol):
    def cache_event(self, namespace: str, hit: bool) -> None: ...


@runtime_checkable
class Cache(Protocol):
    """The cache seam the tools use."""

    mode: CacheMode

    async def get_or_compute(
        self,
        namespace: str,
        key_parts: Any,
        compute: Callable[[], Awaitable[Any]],
        ttl_s: float | None = None,
    ) -> Any: ...

    async def get(self, namespace: str, key_parts: Any) -> Any | None: ...

    async def set(self, namespace: str, key_parts: Any, value: Any, ttl_s: float | None = None) -> None: ...

    async def aclose(self) -> None: ...


def _normalize(value: Any) -> Any:
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, (list, tuple)):
        return [_normalize(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _normalize(item) for key, item in value.items()}
    return value


def cache_key(namespace: str, key_parts: Any) -> str:
    """SHA-256 over the canonical JSON of (namespace, parts); strings are Unicode-NFC normalized."""
    canonical = json.dumps(
        [namespace, _normalize(key_parts)], sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class _Flight:
    __slots__ = ("abandoned", "done", "error", "text")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.text: str | None = None
        self.error: BaseException | None = None
        self.abandoned = False


class StoreCache:
    """Mode handling, single-flight and the memory layer; subclasses provide ``_load``/``_save``."""

    backend_name = "store"

    def __init__(
        self,
        *,
        mode: CacheMode = "readwrite",
        default_ttl_s: float | None = None,
        metrics: CacheMetrics | None = None,
        memory_entries: int = 4096,
    ) -> None:
        if mode not in CACHE_MODES:
            raise ValueError(f"unknown cache mode {mode!r}; expected one of {', '.join(CACHE_MODES)}")
        self.mode: CacheMode = mode
        self.default_ttl_s = default_ttl_s
        self.metrics = metrics
        self._memory: collections.OrderedDict[str, tuple[str, float | None]] = collections.OrderedDict()
        self._memory_entries = memory_entries
        self._flights: dict[str, _Flight] = {}

    # -- storage, implemented by subclasses (run off the event loop where they block)
    async def _load(self, key: str) -> tuple[str, float | None] | None:
        raise NotImplementedError

    async def _save(self, key: str, namespace: str, text: str, expires_at: float | None) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None

    # -- helpers
    def _expires_at(self, ttl_s: float | None) -> float | None:
        ttl = self.default_ttl_s if ttl_s is None else ttl_s
        if ttl is None or ttl <= 0:
            return None
        return time.time() + ttl

    def _fresh(self, expires_at: float | None) -> bool:
        return self.mode == "replay" or expires_at is None or expires_at > time.time()

    def _remember(self, key: str, text: str, expires_at: float | None) -> None:
        self._memory[key] = (text, expires_at)
        self._memory.move_to_end(key)
        while len(self._memory) > self._memory_entries:
            self._memory.popitem(last=False)

    def _event(self, namespace: str, hit: bool) -> None:
        if self.metrics is not None:
            self.metrics.cache_event(namespace, hit)

    async def _lookup(self, key: str) -> str | None:
        entry = self._memory.get(key)
        if entry is not None:
            if self._fresh(entry[1]):
                self._memory.move_to_end(key)
                return entry[0]
            del self._memory[key]
        try:
            stored = await self._load(key)
        except Exception as exc:
            if self.mode == "replay":
                raise CacheError(
                    f"cache unavailable in replay mode ({self.backend_name}: {type(exc).__name__})"
                ) from None
            logger.warning("cache read failed (%s: %s); computing instead", self.backend_name, type(exc).__name__)
            return None
        if stored is None or not self._fresh(stored[1]):
            return None
        self._remember(key, *stored)
        return stored[0]

    # -- public API
    async def get(self, namespace: str, key_parts: Any) -> Any | None:
        """The stored value, or None (never computes; no metrics)."""
        if self.mode == "off":
            return None
        text = await self._lookup(cache_key(namespace, key_parts))
        return None if text is None else json.loads(text)

    async def set(self, namespace: str, key_parts: Any, value: Any, ttl_s: float | None = None) -> None:
        """Store a value (ignored unless the mode is readwrite)."""
        if self.mode != "readwrite":
            return
        await self._store(cache_key(namespace, key_parts), namespace, json.dumps(value, ensure_ascii=False), ttl_s)

    async def get_or_compute(
        self,
        namespace: str,
        key_parts: Any,
        compute: Callable[[], Awaitable[Any]],
        ttl_s: float | None = None,
    ) -> Any:
        """The cached value for (namespace, key_parts), computing it at most once at a time per key.

        Concurrent callers of one key share one ``compute``; its failure reaches
        all of them and is not stored. ``ttl_s`` None means the default TTL, 0
        or less means no expiry.
        """
        if self.mode == "off":
            return await compute()
        key = cache_key(namespace, key_parts)
        entry = self._memory.get(key)
        if entry is not None and self._fresh(entry[1]):  # the fast path: no await before the answer
            self._memory.move_to_end(key)
            self._event(namespace, True)
            return json.loads(entry[0])
        while (flight := self._flights.get(key)) is not None:
            await flight.done.wait()
            if flight.abandoned:  # the leader was cancelled: one waiter takes over
                continue
            if flight.error is not None:
                raise flight.error
            self._event(namespace, True)
            return json.loads(flight.text)  # type: ignore[arg-type]
        return json.loads(await self._lead(key, namespace, key_parts, compute, ttl_s))

    async def _lead(
        self, key: str, namespace: str, key_parts: Any, compute: Callable[[], Awaitable[Any]], ttl_s: float | None
    ) -> str:
        """Answer ``key`` for every caller that arrives meanwhile (they wait on the flight)."""
        flight = self._flights[key] = _Flight()
        try:
            text = await self._lookup(key)
            self._event(namespace, text is not None)
            if text is None:
                text = await self._compute(key, namespace, key_parts, compute, ttl_s)
            flight.text = text
        except Exception as exc:
            flight.error = exc
            raise
        except BaseException:  # cancellation: let a waiter retry rather than fail
            flight.abandoned = True
            raise
        finally:
            del self._flights[key]
            flight.done.set()
        return text

    async def _compute(
        self, key: str, namespace: str, key_parts: Any, compute: Callable[[], Awaitable[Any]], ttl_s: float | None
    ) -> str:
        """A miss: compute the value (never in replay mode) and store it when the mode writes."""
        if self.mode == "replay":
            raise CacheMissError(namespace, key_parts)
        value = await compute()
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"cache values must be JSON-serializable ({namespace}): {exc}") from None
        if self.mode == "readwrite":
            await self._store(key, namespace, text, ttl_s, tolerate_failure=True)
        return text

    async def _store(
        self, key: str, namespace: str, text: str, ttl_s: float | None, *, tolerate_failure: bool = False
    ) -> None:
        """Write through to the store and the memory layer; a failed write is logged when tolerated
        (the computed answer is still served and remembered), else raised."""
        expires_at = self._expires_at(ttl_s)
        try:
            await self._save(key, namespace, text, expires_at)
        except Exception as exc:
            if not tolerate_failure:
                raise
            logger.warning("cache write failed (%s: %s)", self.backend_name, type(exc).__name__)
        self._remember(key, text, expires_at)


class SQLiteCache(StoreCache):
    """The embedded default: one SQLite file (WAL), safe to share between processes on one machine."""

    backend_name = "sqlite"
    prune_every = 1000  # writes between sweeps of expired entries

    def __init__(self, path: Path | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._writes = 0

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=10, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, namespace TEXT NOT NULL,"
                " value TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL)"
            )
            self._conn = conn
        return self._conn

    def _load_sync(self, key: str) -> tuple[str, float | None] | None:
        with self._lock:
            row = self._connection().execute("SELECT value, expires_at FROM entries WHERE key = ?", (key,)).fetchone()
        return None if row is None else (row[0], row[1])

    def _save_sync(self, key: str, namespace: str, text: str, expires_at: float | None) -> None:
        now = time.time()
        with self._lock:
            conn = self._connection()
            conn.execute(
                "INSERT OR REPLACE INTO entries (key, namespace, value, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                (key, namespace, text, now, expires_at),
            )
            self._writes += 1
            if self._writes % self.prune_every == 0:  # keep the file from growing with dead entries
                conn.execute("DELETE FROM entries WHERE expires_at IS NOT NULL AND expires_at < ?", (now,))

    async def _load(self, key: str) -> tuple[str, float | None] | None:
        return await anyio.to_thread.run_sync(self._load_sync, key)

    async def _save(self, key: str, namespace: str, text: str, expires_at: float | None) -> None:
        await anyio.to_thread.run_sync(self._save_sync, key, namespace, text, expires_at)

    def _close_sync(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._close_sync)


class RedisCache(StoreCache):
    """A cache shared by many server replicas. Expiry is Redis's own (``PX``)."""

    backend_name = "redis"
    prefix = "gen-searcher:cache:v1:"

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        import redis.asyncio as redis_asyncio

        self._client = redis_asyncio.Redis.from_url(url, decode_responses=True)
        parts = urlsplit(url)
        self.location = f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}"  # never the password

    async def _load(self, key: str) -> tuple[str, float | None] | None:
        text = await self._client.get(self.prefix + key)
        return None if text is None else (text, None)

    async def _save(self, key: str, namespace: str, text: str, expires_at: float | None) -> None:
        if expires_at is None:
            await self._client.set(self.prefix + key, text)
        else:
            await self._client.set(self.prefix + key, text, px=max(1, int((expires_at - time.time()) * 1000)))

    async def aclose(self) -> None:
        await self._client.aclose()


def open_cache(settings: CacheSettings, *, metrics: CacheMetrics | None = None) -> StoreCache:
    """The cache the settings ask for: Redis when ``url`` is set, else SQLite at ``path``."""
    options: dict[str, Any] = {"mode": settings.mode, "default_ttl_s": settings.ttl_s, "metrics": metrics}
    if settings.url:
        return RedisCache(settings.url, **options)
    return SQLiteCache(settings.path, **options)
