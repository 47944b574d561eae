"""CPU-heavy extraction in worker processes: bounded in time, isolated from the server.

trafilatura and pypdf are pure CPU work that can take tens of seconds on a
hostile document, and trafilatura run from several threads at once has been
seen to corrupt the heap and abort the whole process. So every extraction runs
in one of at most ``workers`` worker processes (anyio's process pool, reused
between calls), under its own deadline:

* a worker that passes the deadline is killed (SIGKILL) and the call fails with
  :class:`ExtractionTimedOut`;
* a worker that dies (a crash, an abort, the OOM killer) fails its own call
  with :class:`WorkerCrashed`;

either way the next call gets a fresh worker, and the server process, which
only waits on a pipe, keeps serving. Calls beyond ``workers`` queue; the
deadline starts once a worker is theirs. ``workers`` defaults to the cores
less one, at least one: extraction is pure CPU, and the server process needs a
core of its own for fetching and serving (on 2 cores, a second worker cost
5-45% more CPU per page and gave no more pages/s: ``perf/browse.py --part
library --extract-workers 2``). All of them start together on the first call,
each importing the extraction libraries once. A worker's address space is capped
(``memory_bytes``), so a document that needs too much memory fails with
``MemoryError`` there instead of pressing on the whole machine.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_process
from anyio import BrokenWorkerProcess

if TYPE_CHECKING:
    from search_tools.settings import FetchSettings

T = TypeVar("T")


@dataclass(frozen=True)
class ExtractLimits:
    """Bounds of one extraction."""

    timeout_s: float = 30.0  # per document, once a worker runs it
    workers: int = 0  # documents extracted at once (one process each); 0: the cores less one, at least one
    max_pdf_pages: int = 100  # pages read from one PDF
    max_chars: int = 1_000_000  # characters of text kept from one document
    memory_bytes: int = 1024 * 1024 * 1024  # address space of one worker process
    shell_min_chars: int = 200  # main text below this (with scripts): a JavaScript shell (search_tools.js_shell)

    @classmethod
    def from_settings(cls, fetch: FetchSettings) -> ExtractLimits:
        """The limits of the ``[fetch]`` section."""
        return cls(
            timeout_s=fetch.extract_timeout_s,
            workers=fetch.extract_workers,
            max_pdf_pages=fetch.extract_max_pdf_pages,
            max_chars=fetch.extract_max_chars,
            memory_bytes=fetch.extract_memory_mb * 1024 * 1024,
            shell_min_chars=fetch.auto_min_chars,
        )

    @property
    def worker_count(self) -> int:
        """``workers``, or when it is 0 the cores this process may run on less one (kept for the server
        process: fetching, serving), at least one."""
        if self.workers > 0:
            return self.workers
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        return max(1, cores - 1)


def _preload(seconds: float) -> None:
    """Runs in a worker: imports the extraction libraries, then holds the worker a moment so that the other
    warm-up calls start workers of their own."""
    import time

    import htmldate  # noqa: F401 - imported for its import cost
    import trafilatura  # noqa: F401 - imported for its import cost

    time.sleep(seconds)


def _limited(memory_bytes: int, func: Callable[..., T], *args: Any) -> T:
    """Runs in the worker: caps its address space (each call sets it anew, as pools may differ), then calls."""
    if sys.platform != "win32":
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        soft = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    return func(*args)


class PoolFailure(Exception):
    """An extraction did not finish: the message says why and names the document."""


class ExtractionTimedOut(PoolFailure):
    pass


class WorkerCrashed(PoolFailure):
    pass


class ExtractionPool:
    """Runs picklable module-level functions in worker processes, at most ``limits.workers`` at a time.

    One pool per server (the ``Browser`` holds it); it holds no processes itself,
    those belong to the event loop's anyio process pool and end with it.
    """

    def __init__(self, limits: ExtractLimits | None = None) -> None:
        self.limits = limits or ExtractLimits()
        self._queue: anyio.CapacityLimiter | None = None
        self._slots: anyio.CapacityLimiter | None = None
        self._warm: anyio.Event | None = None

    def _limiters(self) -> tuple[anyio.CapacityLimiter, anyio.CapacityLimiter]:
        if self._queue is None or self._slots is None:  # created on first use, inside the event loop
            workers = self.limits.worker_count
            self._queue, self._slots = anyio.CapacityLimiter(workers), anyio.CapacityLimiter(workers)
        return self._queue, self._slots

    async def start(self) -> None:
        """Start every worker and import the extraction libraries in it, all at once (once per pool; the
        first caller waits; the browse service calls it before its first page). Otherwise the workers start
        one by one as load grows, each paying its imports in the middle of a burst of pages."""
        if self._warm is not None:
            return await self._warm.wait()
        self._warm = anyio.Event()
        _, slots = self._limiters()
        try:
            async with anyio.create_task_group() as group:
                for _ in range(self.limits.worker_count):
                    group.start_soon(self._preload_one, slots)
        finally:
            self._warm.set()

    async def _preload_one(self, slots: anyio.CapacityLimiter) -> None:
        try:
            with anyio.fail_after(self.limits.timeout_s):
                await anyio.to_process.run_sync(_preload, 0.2, cancellable=True, limiter=slots)
        except (TimeoutError, BrokenWorkerProcess):  # the first real call reports a worker that cannot start
            pass

    async def run(self, func: Callable[..., T], *args: Any, what: str) -> T:
        """``func(*args)`` in a worker process; ``what`` names the document in error messages."""
        queue, slots = self._limiters()
        timeout = self.limits.timeout_s
        async with queue:
            try:
                with anyio.fail_after(timeout):
                    return await anyio.to_process.run_sync(
                        _limited, self.limits.memory_bytes, func, *args, cancellable=True, limiter=slots
                    )
            except TimeoutError:
                raise ExtractionTimedOut(
                    f"extracting the text of {what} took longer than {timeout:g} s and was stopped"
                    " (the document is too large or too complex)"
                ) from None
            except BrokenWorkerProcess:
                raise WorkerCrashed(
                    f"the extraction worker crashed while reading {what}; the document could not be read"
                ) from None
