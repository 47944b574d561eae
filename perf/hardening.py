"""Hardening figures (issue 14): deadlines, compression bombs, heavy extraction, a frozen Redis.

Each scenario runs in its own process against real servers on 127.0.0.1:

* ``drip``: a search provider that answers 200 and then one byte every 2 s; wall time of one search
  with the default search settings (capped at ``--cap`` seconds);
* ``silent``: a provider that never answers; wall time of one search with the default settings;
* ``bomb``: three concurrent fetches of a ``Content-Encoding: gzip, gzip`` page holding 1 GiB of zeros
  (a few kilobytes on the wire), default fetch settings; peak RSS growth of the process;
* ``pdf``: extraction of a 1,000-page text PDF; wall time, characters and the page note;
* ``html``: extraction of a 1.3 MB HTML page of 12,000 nested paragraphs (worker already warm); wall time and the
  longest event-loop stall meanwhile (a 10 ms ticker), i.e. what ``/healthz`` would wait;
* ``redis``: 40 cached calls, 20 at a time, on a Redis that was SIGSTOPped; per-call p50/p99/max.
* ``scrub`` (issue 24): the error scrubber on "Unknown tool: " + 20,000 / 80,000 / 1,000,000 letters; a size
  whose time, extrapolated quadratically from the one before, would pass ``--cap`` is skipped;
* ``freeze`` (issue 24): ``gen-searcher serve`` over HTTP gets a ``tools/call`` whose tool name is 1,000,000
  characters while ``/healthz`` is polled every 50 ms (1 s limit each); the big call's answer time (waited for
  at most ``--cap`` s) and the slowest ``/healthz`` answer meanwhile.

``--src DIR`` imports the project from DIR instead (a ``git archive`` of an older commit), which is
how the "before" column is measured::

    git archive <commit> | tar -x -C /tmp/before
    .venv/bin/python -m perf.hardening --src /tmp/before
    .venv/bin/python -m perf.hardening
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import importlib.util
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = ("drip", "silent", "bomb", "pdf", "html", "redis", "scrub", "freeze")


# ------------------------------------------------------------------ helpers (run inside a scenario process)


def provider_app(kind: str) -> Any:
    import anyio
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    async def endpoint(request: Request) -> Response:
        if kind == "drip":

            async def body() -> AsyncIterator[bytes]:
                yield b"{"
                while not await request.is_disconnected():
                    await anyio.sleep(2.0)
                    yield b" "

            return StreamingResponse(body(), media_type="application/json")
        for _ in range(3000):
            if await request.is_disconnected():
                break
            await anyio.sleep(0.1)
        return Response(b"{}", media_type="application/json")

    return Starlette(routes=[Route("/search", endpoint, methods=["POST"])])


async def provider_call(kind: str, cap: float) -> dict[str, Any]:
    import anyio

    from search_tools.backends.http import http_options
    from search_tools.backends.serper import SerperBackend
    from search_tools.settings import BackendConfig, ProviderKeys, SearchSettings
    from tests.support.loopback import serve_app

    search = SearchSettings()
    with serve_app(provider_app(kind)) as base:
        backend = SerperBackend("perf-key", base_url=base, **http_options(BackendConfig(search, ProviderKeys())))
        started = time.monotonic()
        outcome = "still waiting at the cap"
        with anyio.move_on_after(cap):
            try:
                await backend.search("eiffel tower", 5)
                outcome = "answered"
            except Exception as exc:  # noqa: BLE001 - the failure is the figure
                outcome = f"{type(exc).__name__}: {exc}"
        wall = time.monotonic() - started
        await backend.aclose()
    return {
        "wall_s": round(wall, 1),
        "capped": outcome == "still waiting at the cap",
        "outcome": outcome[:160],
        "settings": f"timeout_s={search.timeout_s:g} max_retries={search.max_retries}"
        + (f" deadline_s={search.deadline_s:g}" if hasattr(search, "deadline_s") else ""),
    }


def rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def bomb() -> dict[str, Any]:
    import anyio
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from safe_io.fetcher import GuardedFetcher
    from safe_io.netguard import AddressPolicy
    from search_tools.settings import FetchSettings
    from tests.support.loopback import free_port, serve_app

    inner = zlib.compressobj(6, zlib.DEFLATED, 31)
    zeros = b"\0" * (1024 * 1024)
    payload = gzip.compress(b"".join(inner.compress(zeros) for _ in range(1024)) + inner.flush(), 9)

    async def page(request: Any) -> Response:
        return Response(payload, media_type="text/html", headers={"content-encoding": "gzip, gzip"})

    port = free_port()
    defaults = FetchSettings()
    outcomes: list[str] = []
    with serve_app(Starlette(routes=[Route("/robots.txt", lambda r: Response("")), Route("/bomb", page)]), port=port):
        fetcher = GuardedFetcher(
            user_agent=defaults.user_agent,
            policy=AddressPolicy.from_strings(False, [f"127.0.0.1:{port}"]),
            max_bytes=defaults.max_bytes,
            timeout_s=120.0,
        )
        baseline = rss()
        started = time.monotonic()

        async def one() -> None:
            try:
                await fetcher.fetch(f"http://127.0.0.1:{port}/bomb")
                outcomes.append("read")
            except Exception as exc:  # noqa: BLE001 - the failure is the figure
                outcomes.append(f"{type(exc).__name__}: {exc}")

        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(one)
        wall = time.monotonic() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        await fetcher.aclose()
    return {
        "wire_bytes": len(payload),
        "peak_rss_growth_mb": round((peak - baseline) / 2**20, 1),
        "wall_s": round(wall, 2),
        "outcome": outcomes[0][:160],
    }


def this_checkout(relative: str) -> ModuleType:
    """A test helper module of this checkout, loaded by path whatever tree the project is imported from."""
    spec = importlib.util.spec_from_file_location(Path(relative).stem, REPO / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pdf_bytes(pages: int) -> bytes:
    content = this_checkout("tests/browse/content.py")
    return content.pdf_document(
        [
            content.text_stream([f"Keeper log page {n} line {i}: fog, tide and bells." for i in range(40)])
            for n in range(pages)
        ]
    )


def fetched(body: bytes, media_type: str, url: str) -> Any:
    try:
        from safe_io.fetch_protocol import FetchedPage
    except ImportError:  # older trees
        from safe_io.fetcher import FetchedPage  # type: ignore[attr-defined,no-redef]
    return FetchedPage(url=url, status=200, media_type=media_type, charset="utf-8", body=body)


async def extraction(kind: str) -> dict[str, Any]:
    import anyio

    from search_tools.extract import extract

    await extract(
        fetched(
            b"<html><body><article><p>" + b"warm up " * 50 + b"</p></article></body></html>",
            "text/html",
            "https://example.org/warm",
        )
    )
    if kind == "pdf":
        document = fetched(pdf_bytes(1000), "application/pdf", "https://example.org/log.pdf")
    else:
        row = (
            "<div><section><p>Harbour log entry {i}: the tide turned at the {i}th bell, fog over the quay.</p>"
            "</section></div>"
        )
        html = "<html><head><title>Heavy</title></head><body><article>" + "".join(
            row.format(i=i) for i in range(12_000)
        )
        document = fetched((html + "</article></body></html>").encode(), "text/html", "https://example.org/heavy")
    stall = 0.0
    done = anyio.Event()

    async def ticker() -> None:
        nonlocal stall
        last = time.monotonic()
        while not done.is_set():
            await anyio.sleep(0.01)
            now = time.monotonic()
            stall = max(stall, now - last - 0.01)
            last = now

    started = time.monotonic()
    async with anyio.create_task_group() as group:
        group.start_soon(ticker)
        try:
            result = await extract(document)
            outcome = f"{len(result.text)} characters" + (f", ends {result.text[-28:]!r}" if kind == "pdf" else "")
        except Exception as exc:  # noqa: BLE001 - the failure is the figure
            outcome = f"{type(exc).__name__}: {exc}"
        wall = time.monotonic() - started
        done.set()
    return {
        "input_mb": round(len(document.body) / 2**20, 2),
        "wall_s": round(wall, 1),
        "max_loop_stall_ms": round(stall * 1000),
        "outcome": outcome[:160],
    }


async def frozen_redis() -> dict[str, Any]:
    import anyio

    from search_tools.cache import RedisCache

    support = this_checkout("tests/support/redis_server.py")
    with tempfile.TemporaryDirectory() as workdir, support.redis_server(Path(workdir)) as (url, server):
        cache = RedisCache(url)
        await cache.get_or_compute("search", ["warm"], _value)
        server.send_signal(signal.SIGSTOP)
        latencies: list[float] = []
        limiter = anyio.CapacityLimiter(20)

        async def call(i: int) -> None:
            async with limiter:
                started = time.monotonic()
                with anyio.move_on_after(120):
                    await cache.get_or_compute("search", ["frozen", i], _value)
                latencies.append(time.monotonic() - started)

        started = time.monotonic()
        async with anyio.create_task_group() as group:
            for i in range(40):
                group.start_soon(call, i)
        total = time.monotonic() - started
        server.send_signal(signal.SIGCONT)
        with anyio.move_on_after(10):
            await cache.aclose()
    latencies.sort()
    return {
        "calls": len(latencies),
        "p50_ms": round(statistics.median(latencies) * 1000),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000),
        "max_ms": round(latencies[-1] * 1000),
        "total_s": round(total, 1),
    }


async def _value() -> dict[str, Any]:
    return {"hits": ["a", "b"]}


def scrub(cap: float) -> dict[str, Any]:
    from gen_searcher_core.redact import Redactor

    redact = Redactor(["sk-live-0123456789abcdef"])
    figures: dict[str, Any] = {}
    previous: tuple[int, float] | None = None
    for size in (20_000, 80_000, 1_000_000):
        if previous is not None and previous[1] * (size / previous[0]) ** 2 > cap:
            figures[f"{size}_s"] = f"skipped (~{previous[1] * (size / previous[0]) ** 2:.0f} s extrapolated)"
            continue
        text = "Unknown tool: " + "a" * size
        started = time.perf_counter()
        out = redact(text)
        elapsed = time.perf_counter() - started
        figures[f"{size}_s"] = round(elapsed, 4)
        figures[f"{size}_out_chars"] = len(out)
        previous = (size, max(elapsed, 1e-6))
    return figures


def freeze(cap: float) -> dict[str, Any]:
    import threading

    import httpx

    from tests.support.loopback import free_port
    from tests.support.tool_server import write_index

    with tempfile.TemporaryDirectory() as tmp:
        env = {key: value for key, value in os.environ.items() if not key.startswith("GEN_SEARCHER_")}
        env.update(
            GEN_SEARCHER_SEARCH__BACKEND="local",
            GEN_SEARCHER_SEARCH__INDEX=str(write_index(Path(tmp))),
            GEN_SEARCHER_CACHE__PATH=f"{tmp}/cache.db",
            GEN_SEARCHER_IMAGES__DIR=f"{tmp}/images",
            GEN_SEARCHER_SERVER__LOG_LEVEL="WARNING",
        )
        port = free_port()
        command = [str(Path(sys.executable).parent / "gen-searcher"), "serve", "--port", str(port)]
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            while True:
                try:
                    if httpx.get(base + "/healthz", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
            init = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "p", "version": "0"},
                },
            }
            opened = httpx.post(base + "/mcp", json=init, headers=headers)
            headers["mcp-session-id"] = opened.headers["mcp-session-id"]
            big = {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": "t" * 1_000_000, "arguments": {}},
            }
            answer: dict[str, Any] = {}

            def send_big() -> None:
                started = time.perf_counter()
                try:
                    response = httpx.post(base + "/mcp", json=big, headers=headers, timeout=cap)
                    answer["big_call_s"] = round(time.perf_counter() - started, 3)
                    answer["big_call_bytes"] = len(response.content)
                except httpx.TimeoutException:
                    answer["big_call_s"] = f"no answer within {cap:g} s"

            sender = threading.Thread(target=send_big, daemon=True)
            sender.start()
            slowest, polls, unanswered = 0.0, 0, 0
            while sender.is_alive():
                started = time.perf_counter()
                try:
                    httpx.get(base + "/healthz", timeout=1.0)
                except httpx.TimeoutException:
                    unanswered += 1
                slowest = max(slowest, time.perf_counter() - started)
                polls += 1
                time.sleep(0.05)
            return {**answer, "healthz_polls": polls, "healthz_over_1s": unanswered, "healthz_max_s": round(slowest, 3)}
        finally:
            server.kill()
            server.wait(timeout=30)


async def scenario(name: str, cap: float) -> dict[str, Any]:
    if name == "scrub":
        return scrub(cap)
    if name == "freeze":
        return await asyncio.to_thread(freeze, cap)
    if name in ("drip", "silent"):
        return await provider_call(name, cap)
    if name == "bomb":
        return await bomb()
    if name in ("pdf", "html"):
        return await extraction(name)
    return await frozen_redis()


# ------------------------------------------------------------------ driver


def run_scenario(name: str, src: Path, cap: float) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(
        [sys.executable, __file__, "--scenario", name, "--cap", str(cap)],
        env=env,
        capture_output=True,
        text=True,
        timeout=cap + 600,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:] or ''}"}
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=REPO, help="tree to import the project from (default: this one)")
    parser.add_argument("--only", nargs="*", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--cap", type=float, default=75.0, help="longest wait for one provider call")
    parser.add_argument("--scenario", choices=SCENARIOS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:
        print(json.dumps(asyncio.run(scenario(args.scenario, args.cap))))
        return
    print(f"# hardening figures, project imported from {args.src}")
    for name in args.only:
        print(f"{name:7s} {json.dumps(run_scenario(name, args.src.resolve(), args.cap))}", flush=True)


if __name__ == "__main__":
    main()
