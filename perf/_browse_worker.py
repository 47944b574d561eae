"""One side of ``perf/browse.py``: fetch + extract a list of URLs, timed, in this interpreter.

    python -m perf._browse_worker --impl ours|library|ref|direct|browser|auto --urls FILE
        --concurrency N --rounds R --out FILE.json

``ours`` (run with the project's .venv): the safe fetcher and extraction of the
``browse`` tool, no summary model. ``ref`` (run with .venv-ref-fetch): the
``fetch_url`` function of ``mcp-server-fetch``, the whole of its fetch tool
minus the MCP framing. ``library``: httpx and ``trafilatura.extract`` with its
defaults, in one process (the baseline of ``--part library``). ``direct``, ``browser``, ``auto``: the page fetchers of
``search_tools.fetchers`` (the browser with ``concurrency`` contexts), also
reporting the CPU seconds of the whole process tree over the timed pass and the
memory of the Chromium processes at its end. Only the standard library and each side's own package
are imported, so the same file runs in both virtual environments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

USER_AGENT = "Gen-Searcher-benchmark/0.1"


async def make_ours() -> tuple[Callable[[str], Awaitable[str]], Callable[[], Awaitable[None]]]:
    """The browse service as the server builds it (its extraction pool from the default ``[fetch]`` settings,
    ``GEN_SEARCHER_FETCH__EXTRACT_WORKERS`` read as the server reads it), without cache or summary model."""
    from safe_io.fetcher import GuardedFetcher
    from safe_io.netguard import AddressPolicy
    from search_tools.browse import Browser
    from search_tools.extract_pool import ExtractionPool, ExtractLimits
    from search_tools.settings import FetchSettings

    fetcher = GuardedFetcher(user_agent=USER_AGENT, policy=AddressPolicy(allow_private=True), respect_robots=False)
    workers = int(os.environ.get("GEN_SEARCHER_FETCH__EXTRACT_WORKERS", "0"))
    browser = Browser(
        fetcher, extraction=ExtractionPool(ExtractLimits.from_settings(FetchSettings(extract_workers=workers)))
    )

    async def read(url: str) -> str:
        return (await browser.page(url)).text

    return read, fetcher.aclose


async def make_library() -> tuple[Callable[[str], Awaitable[str]], Callable[[], Awaitable[None]]]:
    """The trafilatura library as its documentation shows it: an httpx client, then ``trafilatura.extract``
    with its defaults, in this process (the baseline ``browse`` is measured against)."""
    import httpx
    import trafilatura

    client = httpx.AsyncClient(headers={"user-agent": USER_AGENT}, timeout=20)

    async def read(url: str) -> str:
        response = await client.get(url)
        return trafilatura.extract(response.content, url=url) or ""

    return read, client.aclose


async def make_fetcher(
    name: str, contexts: int
) -> tuple[Callable[[str], Awaitable[str]], Callable[[], Awaitable[None]]]:
    """``direct``, ``browser`` or ``auto`` from ``search_tools.fetchers``, then the browse tool's extraction."""
    from safe_io.fetcher import GuardedFetcher
    from safe_io.netguard import AddressPolicy
    from search_tools.extract import SUPPORTED_TYPES, extract
    from search_tools.extract_pool import ExtractionPool
    from search_tools.fetchers.auto import AutoFetcher
    from search_tools.fetchers.browser import BrowserFetcher, BrowserOptions, find_chromium

    policy = AddressPolicy(allow_private=True)
    pool = ExtractionPool()  # one for the run, as the browse service holds one
    direct = GuardedFetcher(user_agent=USER_AGENT, policy=policy, respect_robots=False)
    browser = BrowserFetcher(direct, policy, BrowserOptions(executable=find_chromium(), contexts=contexts))
    fetcher = {"direct": direct, "browser": browser, "auto": AutoFetcher(direct, browser)}[name]
    BROWSERS.append(browser)
    await pool.start()

    async def read(url: str) -> str:
        return (await extract(await fetcher.fetch(url, accept=SUPPORTED_TYPES), pool)).text

    async def close() -> None:
        await browser.aclose()
        await direct.aclose()

    return read, close


BROWSERS: list = []  # the worker's browser fetcher, for its memory figures


def tree_cpu_s() -> float:
    """CPU seconds of this process and every live descendant (Chromium, the Playwright driver, extraction workers)."""
    import psutil

    total = 0.0
    me = psutil.Process()
    for proc in [me, *me.children(recursive=True)]:
        try:
            times = proc.cpu_times()  # children_*: its children that already ended (closed renderers)
            total += times.user + times.system + times.children_user + times.children_system
        except psutil.Error:
            continue
    return total


def browser_memory() -> dict[str, float]:
    """Resident and proportional set sizes (MiB) of the Chromium processes of the browser fetcher."""
    import psutil

    rss = pss = 0.0
    count = 0
    for proc in psutil.Process().children(recursive=True):
        try:
            if "chrom" not in proc.name():
                continue
            info = proc.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
            count += 1
        except psutil.Error:
            continue
    return {"processes": count, "rss_mib": rss / 2**20, "pss_mib": pss / 2**20}


async def make_ref() -> tuple[Callable[[str], Awaitable[str]], Callable[[], Awaitable[None]]]:
    from mcp_server_fetch.server import fetch_url

    async def read(url: str) -> str:
        content, _prefix = await fetch_url(url, USER_AGENT, allow_private_ips=True)
        return content

    async def close() -> None:
        return None

    return read, close


async def run(impl: str, urls: list[str], concurrency: int, rounds: int) -> dict:
    """Read every URL once (the quality sample), then ``rounds`` times concurrently (the timing).

    A page that fails (a connect timeout, an extraction error) is counted, not fatal:
    ``failed`` counts the timed pass, ``warmup_failed`` the first one (such a page has
    empty output, so it scores as missing), ``errors`` the kinds seen in both
    (see :func:`measurement`).
    """
    if impl in ("direct", "browser", "auto"):
        read, close = await make_fetcher(impl, concurrency)
    elif impl == "library":
        read, close = await make_library()
    else:
        read, close = await (make_ours() if impl == "ours" else make_ref())
    errors: dict[str, int] = {}

    async def attempt(url: str) -> str | None:
        try:
            return await read(url)
        except Exception as exc:  # noqa: BLE001 - one bad page must not end the whole measurement
            kind = type(exc).__name__
            errors[kind] = errors.get(kind, 0) + 1
            return None

    try:
        sample = {url: await attempt(url) for url in urls}
        limit = asyncio.Semaphore(concurrency)

        async def one(url: str) -> bool:
            async with limit:
                return await attempt(url) is not None

        measure = impl in ("direct", "browser", "auto", "ours", "library")  # psutil: in .venv only
        cpu = tree_cpu_s() if measure else 0.0
        started = time.perf_counter()
        done = await asyncio.gather(*(one(url) for _ in range(rounds) for url in urls))
        elapsed = time.perf_counter() - started
        extra = {"cpu_s": tree_cpu_s() - cpu} if measure else {}
        if measure and BROWSERS and BROWSERS[0].pid is not None:
            extra["memory"] = browser_memory()
    finally:
        await close()
    return {"impl": impl, **measurement(sample, done, errors, elapsed), **extra}


def measurement(sample: dict[str, str | None], timed: list[bool], errors: dict[str, int], seconds: float) -> dict:
    """What a side reports: ``sample`` maps each URL to its text (None: failed); ``timed``: which timed reads worked."""
    return {
        "pages": len(timed),
        "failed": timed.count(False),
        "warmup_failed": sum(text is None for text in sample.values()),
        "errors": errors,
        "seconds": seconds,
        "outputs": {url: text or "" for url, text in sample.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=["ours", "library", "ref", "direct", "browser", "auto"], required=True)
    parser.add_argument("--urls", type=Path, required=True)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    urls = json.loads(args.urls.read_text())
    result = asyncio.run(run(args.impl, urls, args.concurrency, args.rounds))
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
