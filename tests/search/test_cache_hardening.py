"""The cache under faults: a hung flight, a frozen Redis, read-only media, and a memory layer bounded in bytes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from search_tools.cache import CircuitBreaker, RedisCache, SQLiteCache
from tests.support.redis_server import RedisUnavailable, redis_server

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[2]


class Counter:
    def __init__(self, value: Any = None, *, delay: float = 0.0) -> None:
        self.calls = 0
        self.value = value
        self.delay = delay

    async def __call__(self) -> Any:
        self.calls += 1
        if self.delay:
            await anyio.sleep(self.delay)
        return self.value if self.value is not None else {"n": self.calls}


# ------------------------------------------------------------------ single-flight deadline


async def test_a_hung_flight_is_abandoned_at_its_deadline_and_newcomers_share_a_fresh_one(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "c.db", flight_timeout_s=0.5)
    started = anyio.Event()

    async def hang() -> Any:
        started.set()
        await anyio.sleep_forever()

    fresh = Counter({"fresh": True}, delay=0.2)
    results: list[Any] = []

    async def caller() -> None:
        results.append(await cache.get_or_compute("search", ["q"], fresh))

    async with anyio.create_task_group() as group:
        group.start_soon(cache.get_or_compute, "search", ["q"], hang)  # the leader hangs forever
        await started.wait()
        # The bound tells "released at the flight deadline" from "trapped forever"; not a speed test.
        with anyio.fail_after(3 * 0.5 + 10):
            async with anyio.create_task_group() as callers:
                for _ in range(3):  # arrive while the hung flight is still young: they wait, then start afresh
                    callers.start_soon(caller)
                await anyio.sleep(0.7)
                for _ in range(3):  # arrive after its deadline
                    callers.start_soon(caller)
        group.cancel_scope.cancel()
    assert results == [{"fresh": True}] * 6
    assert fresh.calls == 1  # everyone who gave up on the hung flight shared one fresh computation
    await cache.aclose()


# ------------------------------------------------------------------ memory layer in bytes


async def test_the_memory_layer_is_bounded_in_bytes_and_the_store_still_serves_everything(tmp_path: Path) -> None:
    budget = 1_000_000
    cache = SQLiteCache(tmp_path / "c.db", memory_bytes=budget)
    for i in range(60):  # 6 MB of pages through a 1 MB memory layer
        await cache.set("browse_page", [i], {"text": f"{i} " + "x" * 100_000})
        assert cache.memory_used <= budget
    assert cache.memory_used > budget // 2  # it is used, not bypassed
    assert (await cache.get("browse_page", [0]))["text"].startswith("0 ")  # evicted from memory, read from SQLite
    used = cache.memory_used
    await cache.set("browse_page", ["huge"], {"text": "y" * 300_000})  # over an eighth of the budget: store only
    assert cache.memory_used <= used
    assert len((await cache.get("browse_page", ["huge"]))["text"]) == 300_000
    await cache.aclose()


# ------------------------------------------------------------------ replay from read-only media

REPLAY = """
import anyio, json, os, sys
from search_tools.cache import SQLiteCache

async def main() -> None:
    folder = sys.argv[1]
    try:
        open(os.path.join(folder, "probe"), "w")
        writable = True
    except OSError:
        writable = False
    cache = SQLiteCache(os.path.join(folder, "cache.db"), mode="replay")
    async def never() -> None:
        raise AssertionError("replay computed")
    hit = await cache.get_or_compute("search", ["eiffel", 5], never)
    try:
        await cache.get_or_compute("search", ["never recorded"], never)
        miss = "served"
    except Exception as exc:
        miss = f"{type(exc).__name__}: {exc}"
    await cache.aclose()
    print(json.dumps({"writable": writable, "hit": hit, "miss": miss}))

if __name__ == "__main__":
    anyio.run(main)
"""


def read_only_runner() -> list[str]:
    """Run as a process that file permissions bind: root keeps its uid but loses every capability."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a folder read-only for this process")
    return [setpriv, "--bounding-set=-all", "--"]


async def test_a_recorded_sqlite_cache_replays_from_read_only_media(tmp_path: Path) -> None:
    folder = tmp_path / "recording"
    folder.mkdir()
    recorder = SQLiteCache(folder / "cache.db")
    await recorder.get_or_compute("search", ["eiffel", 5], Counter({"hits": ["tower"]}))
    await recorder.aclose()
    (folder / "cache.db").chmod(0o444)
    folder.chmod(0o555)
    script = tmp_path / "replay.py"
    script.write_text(REPLAY)
    try:
        done = await anyio.run_process(
            [*read_only_runner(), sys.executable, str(script), str(folder)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            check=False,
        )
    finally:
        folder.chmod(0o755)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    outcome = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert outcome["writable"] is False  # the folder really was read-only for the replaying process
    assert outcome["hit"] == {"hits": ["tower"]}
    assert outcome["miss"].startswith("CacheMissError: cache replay miss")
    assert sorted(p.name for p in folder.iterdir()) == ["cache.db"]  # nothing written beside it


async def test_replay_without_a_recording_names_the_missing_file(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "absent" / "cache.db", mode="replay")
    with pytest.raises(Exception, match=r"no recorded cache file at .*absent/cache\.db \(cache\.path\)"):
        await cache.get_or_compute("search", ["q"], Counter())
    await cache.aclose()
    assert not (tmp_path / "absent").exists()
    readonly = SQLiteCache(tmp_path / "absent" / "cache.db", mode="readonly")  # nothing recorded: every call computes
    assert await readonly.get_or_compute("search", ["q"], Counter({"ok": 1})) == {"ok": 1}
    await readonly.aclose()
    assert not (tmp_path / "absent").exists()


# ------------------------------------------------------------------ frozen Redis


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test alone (it gets frozen)."""
    with contextlib.ExitStack() as stack:
        try:
            yield stack.enter_context(redis_server(tmp_path))
        except RedisUnavailable as exc:
            pytest.skip(str(exc))


async def test_a_frozen_redis_costs_at_most_a_timeout_until_the_breaker_opens_then_recovers(
    own_redis: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, server = own_redis
    op_timeout = 0.2
    cache = RedisCache(url, op_timeout_s=op_timeout, breaker_failures=2, breaker_cooldown_s=1.0)
    assert await cache.get_or_compute("search", ["before"], Counter({"v": 0})) == {"v": 0}
    server.send_signal(signal.SIGSTOP)
    try:
        for i in range(20):
            # Each call reads and writes at most once before the breaker opens: two timeouts, far below the
            # 20 s a call took when Redis operations waited on a frozen server.
            with anyio.fail_after(3 * 2 * op_timeout + 2):
                assert await cache.get_or_compute("search", ["frozen", i], Counter({"v": i})) == {"v": i}
        assert cache.breaker.state == "open"
    finally:
        server.send_signal(signal.SIGCONT)
    await anyio.sleep(1.2)  # the cooldown: the next call probes Redis and closes the breaker
    assert await cache.get_or_compute("search", ["after"], Counter({"v": "after"})) == {"v": "after"}
    assert cache.breaker.state == "closed"
    fresh = RedisCache(url)  # the value reached Redis again
    assert await fresh.get("search", ["after"]) == {"v": "after"}
    await fresh.aclose()
    await cache.aclose()


def test_the_breaker_opens_after_failures_admits_one_probe_per_cooldown_and_closes_on_success() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures=3, cooldown_s=10.0, clock=lambda: now[0])
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state == "closed"
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 10.5
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # everyone else keeps skipping while it runs
    breaker.failure()
    assert breaker.state == "open"
    now[0] = 21.0
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.allow()
