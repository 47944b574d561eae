"""The result cache: hits, single-flight, modes, TTL, persistence, SQLite and a real Redis."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_server.metrics import Metrics
from search_tools.cache import CacheError, CacheMissError, RedisCache, SQLiteCache, StoreCache, cache_key, open_cache


class Counter:
    """A compute function that counts its calls and can be slowed down or made to fail."""

    def __init__(self, value: Any = None, *, delay: float = 0.0, fail: Exception | None = None) -> None:
        self.calls = 0
        self.value = value
        self.delay = delay
        self.fail = fail

    async def __call__(self) -> Any:
        self.calls += 1
        if self.delay:
            await anyio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return self.value if self.value is not None else {"n": self.calls, "hits": ["a", "b"]}


@pytest.fixture(params=["sqlite", "redis"])
async def make_cache(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Build caches of either store; every cache made in one test shares that store."""
    made: list[StoreCache] = []
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None

    def make(**options: Any) -> StoreCache:
        if redis_url is None:
            cache: StoreCache = SQLiteCache(tmp_path / "cache.db", **options)
        else:
            cache = RedisCache(redis_url, **options)
        made.append(cache)
        return cache

    yield make
    if redis_url is not None and made:
        await made[0]._client.flushdb()  # type: ignore[attr-defined]
    for cache in made:
        await cache.aclose()


@pytest.mark.anyio
async def test_hit_after_miss_and_persistence_across_instances(make_cache) -> None:  # type: ignore[no-untyped-def]
    metrics = Metrics()
    cache = make_cache(metrics=metrics)
    compute = Counter()
    first = await cache.get_or_compute("search", ["local", "search", "q", 5], compute)
    second = await cache.get_or_compute("search", ["local", "search", "q", 5], compute)
    assert first == second == {"n": 1, "hits": ["a", "b"]}
    assert compute.calls == 1
    assert metrics.value("gen_searcher_cache_events_total", {"namespace": "search", "result": "miss"}) == 1
    assert metrics.value("gen_searcher_cache_events_total", {"namespace": "search", "result": "hit"}) == 1
    # Callers get independent copies: mutating one answer does not change the cache.
    second["hits"].append("mutated")
    assert (await cache.get_or_compute("search", ["local", "search", "q", 5], compute))["hits"] == ["a", "b"]
    # A second instance (a restarted server, another replica) reads the same store.
    other = make_cache()
    assert await other.get_or_compute("search", ["local", "search", "q", 5], Counter({"other": True})) == first
    # Different key parts or namespace: a different entry.
    assert (await other.get_or_compute("search", ["local", "search", "q", 6], compute))["n"] == 2
    assert (await other.get_or_compute("browse", ["local", "search", "q", 5], compute))["n"] == 3


@pytest.mark.anyio
async def test_fifty_concurrent_identical_calls_compute_once(make_cache) -> None:  # type: ignore[no-untyped-def]
    cache = make_cache()
    compute = Counter(delay=0.2)
    results: list[Any] = []

    async def call() -> None:
        results.append(await cache.get_or_compute("search", ["b", "search", "same", 5], compute))

    async with anyio.create_task_group() as group:
        for _ in range(50):
            group.start_soon(call)
    assert compute.calls == 1
    assert len(results) == 50
    assert all(result == {"n": 1, "hits": ["a", "b"]} for result in results)


@pytest.mark.anyio
async def test_failures_reach_all_waiters_and_are_not_cached(make_cache) -> None:  # type: ignore[no-untyped-def]
    cache = make_cache()
    failing = Counter(delay=0.1, fail=RuntimeError("provider down"))
    errors: list[BaseException] = []

    async def call() -> None:
        try:
            await cache.get_or_compute("search", ["x"], failing)
        except RuntimeError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(call)
    assert failing.calls == 1
    assert len(errors) == 10 and all(str(e) == "provider down" for e in errors)
    recovered = Counter({"ok": 1})
    assert await cache.get_or_compute("search", ["x"], recovered) == {"ok": 1}
    assert recovered.calls == 1


@pytest.mark.anyio
async def test_cancelled_leader_hands_over_to_a_waiter(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "c.db")
    slow = Counter(delay=0.3)
    computing = anyio.Event()
    results: list[Any] = []

    async def compute() -> Any:
        computing.set()
        return await slow()

    leader_scope = anyio.CancelScope()

    async def leader() -> None:
        with leader_scope:
            await cache.get_or_compute("search", ["k"], compute)

    async def waiter() -> None:
        await computing.wait()
        results.append(await cache.get_or_compute("search", ["k"], compute))

    async def cancel_the_leader() -> None:
        # Only once the leader computes (the store lookup before it may be slow on a loaded machine),
        # and long before its compute could finish: the loop runs the earlier deadline first.
        await computing.wait()
        await anyio.sleep(0.05)
        leader_scope.cancel()

    async with anyio.create_task_group() as group:
        group.start_soon(leader)
        group.start_soon(waiter)
        group.start_soon(cancel_the_leader)
    assert slow.calls == 2  # the leader's compute was cancelled; the waiter computed it again
    assert results == [{"n": 2, "hits": ["a", "b"]}]
    await cache.aclose()


@pytest.mark.anyio
async def test_replay_serves_hits_and_never_computes_a_miss(make_cache) -> None:  # type: ignore[no-untyped-def]
    recorder = make_cache(mode="readwrite")
    await recorder.get_or_compute("search", ["serper", "search", "eiffel tower", 5], Counter({"recorded": True}))
    replay = make_cache(mode="replay")
    never = Counter({"live": True})
    assert await replay.get_or_compute("search", ["serper", "search", "eiffel tower", 5], never) == {"recorded": True}
    with pytest.raises(CacheMissError) as info:
        await replay.get_or_compute("search", ["serper", "search", "louvre", 5], never)
    assert never.calls == 0
    message = str(info.value)
    assert "replay" in message and "louvre" in message and "never calls a provider" in message


@pytest.mark.anyio
async def test_readonly_computes_misses_but_never_writes(make_cache) -> None:  # type: ignore[no-untyped-def]
    writer = make_cache(mode="readwrite")
    await writer.get_or_compute("search", ["stored"], Counter({"v": "stored"}))
    readonly = make_cache(mode="readonly")
    compute = Counter()
    assert await readonly.get_or_compute("search", ["stored"], compute) == {"v": "stored"}
    assert compute.calls == 0
    assert (await readonly.get_or_compute("search", ["new"], compute))["n"] == 1
    assert (await readonly.get_or_compute("search", ["new"], compute))["n"] == 2  # not remembered
    assert await make_cache(mode="readwrite").get("search", ["new"]) is None


@pytest.mark.anyio
async def test_off_mode_always_computes(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "off.db", mode="off")
    compute = Counter()
    assert (await cache.get_or_compute("search", ["k"], compute))["n"] == 1
    assert (await cache.get_or_compute("search", ["k"], compute))["n"] == 2
    assert not (tmp_path / "off.db").exists()  # off never touches the store


class FakeClock:
    """Wall-clock seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.anyio
async def test_ttl_expiry(make_cache) -> None:  # type: ignore[no-untyped-def]
    # The cache's own expiry follows the injected clock; Redis keeps its own, so the test also
    # waits out the TTL for real (a lower bound only: a slow machine cannot break it).
    clock = FakeClock()
    cache = make_cache(default_ttl_s=0.3, clock=clock)
    compute = Counter()
    assert (await cache.get_or_compute("search", ["t"], compute))["n"] == 1
    assert (await cache.get_or_compute("search", ["t"], compute))["n"] == 1
    clock.now += 0.5
    await anyio.sleep(0.5)
    assert (await cache.get_or_compute("search", ["t"], compute))["n"] == 2
    # A per-call TTL overrides the default; 0 means no expiry.
    assert (await cache.get_or_compute("search", ["forever"], compute, ttl_s=0))["n"] == 3
    clock.now += 0.4
    await anyio.sleep(0.4)
    assert (await cache.get_or_compute("search", ["forever"], compute))["n"] == 3
    # A fresh instance (no memory layer) sees the store's expiry too: "t" (stored at n=2) has expired.
    fresh = make_cache(default_ttl_s=0.3, clock=clock)
    assert (await fresh.get_or_compute("search", ["forever"], compute))["n"] == 3
    assert (await fresh.get_or_compute("search", ["t"], compute))["n"] == 4


@pytest.mark.anyio
async def test_values_read_back_keep_their_expiry(make_cache) -> None:  # type: ignore[no-untyped-def]
    """A value another instance stored expires from this instance's memory layer when its TTL ends."""
    clock = FakeClock()
    writer = make_cache(default_ttl_s=0.3, clock=clock)
    await writer.get_or_compute("search", ["shared"], Counter({"v": "old"}))
    reader = make_cache(clock=clock)
    assert await reader.get_or_compute("search", ["shared"], Counter({"v": "new"})) == {"v": "old"}
    clock.now += 0.5
    await anyio.sleep(0.5)  # Redis expires on its own clock
    assert await reader.get_or_compute("search", ["shared"], Counter({"v": "new"})) == {"v": "new"}


@pytest.mark.anyio
async def test_replay_serves_expired_sqlite_entries(tmp_path: Path) -> None:
    clock = FakeClock()
    writer = SQLiteCache(tmp_path / "c.db", default_ttl_s=0.05, clock=clock)
    await writer.get_or_compute("search", ["old"], Counter({"old": 1}))
    await writer.aclose()
    clock.now += 1
    replay = SQLiteCache(tmp_path / "c.db", mode="replay", clock=clock)
    assert await replay.get_or_compute("search", ["old"], Counter()) == {"old": 1}
    await replay.aclose()


@pytest.mark.anyio
async def test_values_must_be_json(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "c.db")

    async def not_json() -> Any:
        return {"when": time}

    with pytest.raises(TypeError, match="JSON-serializable"):
        await cache.get_or_compute("search", ["bad"], not_json)
    await cache.aclose()


def test_keys_are_normalized_and_distinct() -> None:
    assert cache_key("search", ["Cafe\u0301", 5]) == cache_key("search", ["Café", 5])  # NFC
    assert cache_key("search", {"b": 1, "a": 2}) == cache_key("search", {"a": 2, "b": 1})
    assert cache_key("search", ["q", 5]) != cache_key("search", ["q", 6])
    assert cache_key("search", ["q"]) != cache_key("browse", ["q"])
    with pytest.raises(ValueError, match="unknown cache mode"):
        SQLiteCache("/tmp/unused.db", mode="sometimes")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_unreachable_redis_degrades_in_readwrite_and_fails_clearly_in_replay() -> None:
    from tests.support.loopback import free_port

    url = f"redis://:hunter2secret@127.0.0.1:{free_port()}/0"
    cache = RedisCache(url)
    assert (await cache.get_or_compute("search", ["k"], Counter()))["n"] == 1  # computed, write failure logged
    await cache.aclose()
    replay = RedisCache(url, mode="replay")
    with pytest.raises(CacheError) as info:
        await replay.get_or_compute("search", ["k"], Counter())
    assert "hunter2secret" not in str(info.value)
    assert "replay" in str(info.value)
    await replay.aclose()


@pytest.mark.anyio
async def test_open_cache_follows_settings(make_settings, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    sqlite_cache = open_cache(make_settings(cache={"mode": "readonly", "ttl_s": 60}).cache)
    assert isinstance(sqlite_cache, SQLiteCache)
    assert (sqlite_cache.mode, sqlite_cache.default_ttl_s) == ("readonly", 60)
    await sqlite_cache.aclose()
    redis_cache = open_cache(make_settings(cache={"url": redis_url}).cache)
    assert isinstance(redis_cache, RedisCache)
    await redis_cache.aclose()


@pytest.mark.anyio
async def test_sqlite_prunes_expired_entries(tmp_path: Path) -> None:
    import sqlite3

    clock = FakeClock()
    cache = SQLiteCache(tmp_path / "c.db", default_ttl_s=0.05, clock=clock)
    cache.prune_every = 5
    for i in range(4):
        await cache.get_or_compute("search", [i], Counter())
    await cache.get_or_compute("search", ["kept"], Counter(), ttl_s=0)
    clock.now += 1
    await cache.get_or_compute("search", ["fresh"], Counter(), ttl_s=60)  # a later sweep removes the dead ones
    cache.prune_every = 1
    await cache.set("search", ["also fresh"], {"v": 1}, ttl_s=60)
    await cache.aclose()
    conn = sqlite3.connect(tmp_path / "c.db")
    assert conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 3
    conn.close()
