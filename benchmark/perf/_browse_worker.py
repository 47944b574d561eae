"""One side of ``benchmark/perf/browse.py``: fetch + extract a list of URLs, timed, in this interpreter.

    python _browse_worker.py --impl ours|ref --urls FILE --concurrency N --rounds R --out FILE.json

``ours`` (run with the project's .venv): the safe fetcher and extraction of the
``browse`` tool, no summary model. ``ref`` (run with .venv-ref-fetch): the
``fetch_url`` function of ``mcp-server-fetch``, the whole of its fetch tool
minus the MCP framing. Only the standard library and each side's own package
are imported, so the same file runs in both virtual environments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

USER_AGENT = "Gen-Searcher-benchmark/0.1"


async def make_ours() -> tuple[Callable[[str], Awaitable[str]], Callable[[], Awaitable[None]]]:
    from search_tools.extract import SUPPORTED_TYPES, extract
    from search_tools.fetch import Fetcher
    from search_tools.netguard import AddressPolicy

    fetcher = Fetcher(user_agent=USER_AGENT, policy=AddressPolicy(allow_private=True), respect_robots=False)

    async def read(url: str) -> str:
        return (await extract(await fetcher.fetch(url, accept=SUPPORTED_TYPES))).text

    return read, fetcher.aclose


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

        started = time.perf_counter()
        done = await asyncio.gather(*(one(url) for _ in range(rounds) for url in urls))
        elapsed = time.perf_counter() - started
    finally:
        await close()
    return {"impl": impl, **measurement(sample, done, errors, elapsed)}


def measurement(sample: dict[str, str | None], timed: list[bool], errors: dict[str, int], seconds: float) -> dict:
    """What a side reports: ``sample`` maps each URL to its text (None: failed), ``timed`` says which timed reads worked."""
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
    parser.add_argument("--impl", choices=["ours", "ref"], required=True)
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
