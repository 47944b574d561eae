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
deadline starts once a worker is theirs. A worker's address space is capped
(``memory_bytes``), so a document that needs too much memory fails with
``MemoryError`` there instead of pressing on the whole machine.
"""

from __future__ import annotations

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
    workers: int = 2  # documents extracted at once (one process each)
    max_pdf_pages: int = 100  # pages read from one PDF
    max_chars: int = 1_000_000  # characters of text kept from one document
    memory_bytes: int = 1024 * 1024 * 1024  # address space of one worker process

    @classmethod
    def from_settings(cls, fetch: FetchSettings) -> ExtractLimits:
        """The limits of the ``[fetch]`` section."""
        return cls(
            timeout_s=fetch.extract_timeout_s,
            workers=fetch.extract_workers,
            max_pdf_pages=fetch.extract_max_pdf_pages,
            max_chars=fetch.extract_max_chars,
            memory_bytes=fetch.extract_memory_mb * 1024 * 1024,
        )


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

    def _limiters(self) -> tuple[anyio.CapacityLimiter, anyio.CapacityLimiter]:
        if self._queue is None or self._slots is None:  # created on first use, inside the event loop
            workers = max(1, self.limits.workers)
            self._queue, self._slots = anyio.CapacityLimiter(workers), anyio.CapacityLimiter(workers)
        return self._queue, self._slots

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
