"""``gen-searcher serve`` in a child process on loopback, for tests that must not share its CPU or GIL.

A test that checks the server stays responsive while one request is costly
runs the server apart from its own client threads: in one process a stuck
server thread would freeze the test too, instead of failing it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from tests.support.loopback import free_port

START_TIMEOUT_S = 90.0


def serve_env(tmp_path: Path, index_db: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A hermetic environment for ``gen-searcher serve``: everything it writes under ``tmp_path``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GEN_SEARCHER_")}
    env.update(
        GEN_SEARCHER_SEARCH__BACKEND="local",
        GEN_SEARCHER_SEARCH__INDEX=str(index_db),
        GEN_SEARCHER_CACHE__PATH=str(tmp_path / "cache.db"),
        GEN_SEARCHER_IMAGES__DIR=str(tmp_path / "images"),
        GEN_SEARCHER_SERVER__LOG_LEVEL="WARNING",
    )
    env.update(extra or {})
    return env


def gen_searcher_command(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "gen-searcher"), *args]


@contextlib.contextmanager
def served(tmp_path: Path, index_db: Path, extra_env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Run ``gen-searcher serve`` over HTTP; yields its base URL once ``/healthz`` answers."""
    port = free_port()
    log = (tmp_path / f"serve-{port}.log").open("wb")
    process = subprocess.Popen(
        gen_searcher_command("serve", "--port", str(port)),
        env=serve_env(tmp_path, index_db, extra_env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gen-searcher serve did not start: {Path(log.name).read_text()[-2000:]}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:  # a server stuck in a request: the test has failed already
            process.kill()
            process.wait(timeout=15)
        log.close()
