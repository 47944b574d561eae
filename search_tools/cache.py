"""A JSON result cache with single-flight, TTL and replay, over SQLite (embedded) or Redis (shared).

GRPO rollouts of one prompt issue the same queries at once; ``get_or_compute``
lets exactly one of them reach the provider while the rest wait for its answer.
Modes:

* ``readwrite``: serve hits, compute misses and store them (default);
* ``readonly``: serve hits, compute misses but never write;
* ``replay``: serve hits (expired ones too), never compute: a miss raises
  :class:`CacheMissError`, so a recorded run can be replayed exactly;
* ``off``: always compute, never read or write.

A small in-memory LRU, bounded in bytes, sits in front of the store of each
``Cache`` instance so that hits cost microseconds. Values must be
JSON-serializable; callers get a fresh decoded copy each time.

A flight has a deadline: callers arriving after it passed stop waiting on it
and start a fresh one (the stale leader finishes or fails on its own). A Redis
store gets short operation timeouts and a circuit breaker, so a frozen Redis
costs a call at most one timeout until the breaker lets a probe through.
A SQLite cache read in ``readonly`` or ``replay`` mode is opened read-only (and
immutable when even that fails), so a recording on read-only media replays.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import sqlite3
import sys
import threading
import time
import unicodedata
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

import anyio

from gen_searcher_core.errors import UserFacingError

if TYPE_CHECKING:
    from search_tools.settings import CacheSettings

logger = logging.getLogger(__name__)

CacheMode = Literal["readwrite", "readonly", "replay", "off"]
CACHE_MODES: tuple[str, ...] = ("readwrite", "readonly", "replay", "off")
_MISS = object()


class CacheError(UserFacingError):
    """The cache could not serve a request; the message is safe to show callers."""


class CacheMissError(CacheError, LookupError):
    """Replay mode found no stored result; no provider is called in replay mode."""

    def __init__(self, namespace: str, key_parts: Any) -> None:
        described = json.dumps(key_parts, ensure_ascii=False, default=str)
        if len(described) > 200:
            described = described[:200] + "…"
        super().__init__(
            f"cache replay miss: no recorded {namespace} result for {described} "
            "(GEN_SEARCHER_CACHE__MODE=replay serves only results recorded by an earlier run"
            " and never calls a provider)"
        )
        self.namespace = namespace


class CacheMetrics(Protocol):
    def cache_event(self, namespace: str, hit: bool) -> None: ...


@runtime_checkable
class Cache(Protocol):
    """The cache seam the tools use: single-flight ``get_or_compute``, and ``aclose`` for the server's shutdown."""

    async def get_or_compute(
        self,
        namespace: str,
        key_parts: Any,
        compute: Callable[[], Awaitable[Any]],
        ttl_s: float | None = None,
    ) -> Any: ...

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
    __slots__ = ("abandoned", "deadline", "done", "error", "text")

    def __init__(self, deadline: float) -> None:
        self.done = anyio.Event()
        self.text: str | None = None
        self.error: BaseException | None = None
        self.abandoned = False
        self.deadline = deadline  # time.monotonic() after which newcomers stop waiting on this flight


class StoreUnavailable(Exception):
    """The circuit breaker is open: the store is skipped until its cooldown ends."""


class CircuitBreaker:
    """Opens after ``failures`` consecutive failures; while open, calls are refused at once.

    After ``cooldown_s`` the next call is let through as a probe: success closes
    the breaker, failure opens it for another cooldown.
    """

    def __init__(self, failures: int = 3, cooldown_s: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.failures = max(1, failures)
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._count = 0
        self._open_until: float | None = None

    @property
    def state(self) -> str:
        if self._open_until is None:
            return "closed"
        return "open" if self._clock() < self._open_until else "half-open"

    def allow(self) -> bool:
        """Whether a call may go to the store now (a half-open breaker admits one probe per cooldown)."""
        if self._open_until is None:
            return True
        if self._clock() < self._open_until:
            return False
        self._open_until = self._clock() + self.cooldown_s  # this caller is the probe; others wait a cooldown
        return True

    def success(self) -> None:
        self._count = 0
        self._open_until = None

    def failure(self) -> None:
        self._count += 1
        if self._count >= self.failures:
            self._open_until = self._clock() + self.cooldown_s


class StoreCache:
    """Mode handling, single-flight and the memory layer; subclasses provide ``_load``/``_save``."""

    backend_name = "store"

    def __init__(
        self,
        *,
        mode: CacheMode = "readwrite",
        default_ttl_s: float | None = None,
        metrics: CacheMetrics | None = None,
        memory_bytes: int = 64 * 1024 * 1024,
        flight_timeout_s: float = 120.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if mode not in CACHE_MODES:
            raise ValueError(f"unknown cache mode {mode!r}; expected one of {', '.join(CACHE_MODES)}")
        self.mode: CacheMode = mode
        self.default_ttl_s = default_ttl_s
        self.metrics = metrics
        self.flight_timeout_s = flight_timeout_s
        self._clock = clock  # wall-clock seconds: expiry times are stored, and shared between processes
        self._memory: collections.OrderedDict[str, tuple[str, float | None, int]] = collections.OrderedDict()
        self._memory_bytes = memory_bytes
        self._memory_used = 0
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
        return self._clock() + ttl

    def _fresh(self, expires_at: float | None) -> bool:
        return self.mode == "replay" or expires_at is None or expires_at > self._clock()

    @property
    def memory_used(self) -> int:
        """Bytes held by the memory layer (the sizes of the stored strings)."""
        return self._memory_used

    def _forget(self, key: str) -> None:
        entry = self._memory.pop(key, None)
        if entry is not None:
            self._memory_used -= entry[2]

    def _remember(self, key: str, text: str, expires_at: float | None) -> None:
        """Keep a value in the memory layer, least recently used out first; one value larger than an
        eighth of the budget is served from the store instead, so a few big pages cannot flush it."""
        self._forget(key)
        size = sys.getsizeof(text)
        if size > self._memory_bytes // 8:
            return
        self._memory[key] = (text, expires_at, size)
        self._memory_used += size
        while self._memory_used > self._memory_bytes:
            _, (_, _, old_size) = self._memory.popitem(last=False)
            self._memory_used -= old_size

    def _event(self, namespace: str, hit: bool) -> None:
        if self.metrics is not None:
            self.metrics.cache_event(namespace, hit)

    async def _lookup(self, key: str) -> str | None:
        entry = self._memory.get(key)
        if entry is not None:
            if self._fresh(entry[1]):
                self._memory.move_to_end(key)
                return entry[0]
            self._forget(key)
        try:
            stored = await self._load(key)
        except CacheError:
            raise
        except Exception as exc:  # noqa: BLE001 - any store failure (SQLite, Redis, network) is served as a miss
            if self.mode == "replay":
                raise CacheError(
                    f"cache unavailable in replay mode ({self.backend_name}: {type(exc).__name__})"
                ) from None
            if not isinstance(exc, StoreUnavailable):
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
            remaining = flight.deadline - time.monotonic()
            if remaining <= 0:  # a hung flight: start a fresh one rather than wait on it
                logger.warning(
                    "cache flight for %s passed its %g s deadline; starting afresh", namespace, self.flight_timeout_s
                )
                break
            with anyio.move_on_after(remaining):
                await flight.done.wait()
            if not flight.done.is_set() or flight.abandoned:  # overdue, or the leader was cancelled
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
        flight = self._flights[key] = _Flight(time.monotonic() + self.flight_timeout_s)
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
            if self._flights.get(key) is flight:  # an overdue flight may have been replaced already
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
            if not isinstance(exc, StoreUnavailable):
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

    def _open_readonly(self) -> sqlite3.Connection:
        """A read-only connection (readonly and replay modes never write): plain read-only first, then
        immutable, which needs no lock or -shm file and so reads a recording on read-only media."""
        if not self.path.is_file():
            raise FileNotFoundError(self.path)
        uri = self.path.resolve().as_uri()
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False, timeout=10, isolation_level=None)
        try:
            conn.execute("SELECT 1 FROM entries LIMIT 1").fetchall()
            return conn
        except sqlite3.OperationalError:
            conn.close()
        return sqlite3.connect(f"{uri}?immutable=1", uri=True, check_same_thread=False, isolation_level=None)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None and self.mode in ("readonly", "replay"):
            self._conn = self._open_readonly()
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
            try:
                conn = self._connection()
            except FileNotFoundError:
                if self.mode == "replay":
                    raise CacheError(
                        f"cache unavailable in replay mode: no recorded cache file at {self.path} (cache.path)"
                    ) from None
                return None  # readonly mode and nothing recorded yet: every lookup misses
            row = conn.execute("SELECT value, expires_at FROM entries WHERE key = ?", (key,)).fetchone()
        return None if row is None else (row[0], row[1])

    def _save_sync(self, key: str, namespace: str, text: str, expires_at: float | None) -> None:
        now = self._clock()
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
    """A cache shared by many server replicas. Expiry is Redis's own (``PX``).

    Every operation has ``op_timeout_s`` (no retries), and ``breaker_failures``
    failures in a row open a circuit breaker for ``breaker_cooldown_s``: a
    frozen or unreachable Redis then costs calls nothing (they compute, as on a
    miss) until a probe finds it healthy again.
    """

    backend_name = "redis"
    prefix = "gen-searcher:cache:v1:"

    def __init__(
        self,
        url: str,
        *,
        op_timeout_s: float = 0.25,
        breaker_failures: int = 3,
        breaker_cooldown_s: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        import redis.asyncio as redis_asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self._client = redis_asyncio.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=op_timeout_s,
            socket_connect_timeout=op_timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self.op_timeout_s = op_timeout_s
        self.breaker = CircuitBreaker(breaker_failures, breaker_cooldown_s)
        parts = urlsplit(url)
        self.location = f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}"  # never the password

    async def _guarded(self, operation: Callable[[], Awaitable[Any]]) -> Any:
        if not self.breaker.allow():
            raise StoreUnavailable(
                f"redis at {self.location} is failing; skipped for up to {self.breaker.cooldown_s:g} s"
            )
        try:
            with anyio.fail_after(self.op_timeout_s):  # also bounds a connect stuck on a frozen server
                result = await operation()
        except Exception:
            self.breaker.failure()
            raise
        self.breaker.success()
        return result

    async def _load(self, key: str) -> tuple[str, float | None] | None:
        async def get_with_ttl() -> list[Any]:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.get(self.prefix + key)
                pipe.pttl(self.prefix + key)
                return list(await pipe.execute())

        text, ttl_ms = await self._guarded(get_with_ttl)
        if text is None:
            return None
        # Redis's remaining lifetime, so the memory layer forgets the value when Redis does.
        return text, (self._clock() + ttl_ms / 1000 if ttl_ms >= 0 else None)

    async def _save(self, key: str, namespace: str, text: str, expires_at: float | None) -> None:
        if expires_at is None:
            await self._guarded(lambda: self._client.set(self.prefix + key, text))
        else:
            px = max(1, int((expires_at - self._clock()) * 1000))
            await self._guarded(lambda: self._client.set(self.prefix + key, text, px=px))

    async def aclose(self) -> None:
        await self._client.aclose()


def open_cache(settings: CacheSettings, *, metrics: CacheMetrics | None = None) -> StoreCache:
    """The cache the settings ask for: Redis when ``url`` is set, else SQLite at ``path``."""
    options: dict[str, Any] = {
        "mode": settings.mode,
        "default_ttl_s": settings.ttl_s,
        "metrics": metrics,
        "memory_bytes": settings.memory_bytes,
        "flight_timeout_s": settings.flight_timeout_s,
    }
    if settings.url:
        return RedisCache(
            settings.url,
            op_timeout_s=settings.op_timeout_s,
            breaker_failures=settings.breaker_failures,
            breaker_cooldown_s=settings.breaker_cooldown_s,
            **options,
        )
    return SQLiteCache(settings.path, **options)
