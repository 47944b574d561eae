"""Render workers: one per device, fed from one bounded queue, with batching and fault recovery.

Each worker owns an *engine* (see :class:`Engine`; the real one is
:class:`~render_tools.diffusers_renderer.QwenImageEngine`) built by an engine
factory for its device, and runs it in a worker thread. Waiting requests with
the same :meth:`RenderRequest.batch_key` are rendered together, up to
``max_batch``. A render that fails for any reason other than a bad request is
treated as a device fault: the worker drops its engine and builds a fresh one,
and the request is retried once (possibly on another worker). A worker that
fails ``max_consecutive_failures`` times in a row is taken out of service for
``quarantine_s`` seconds and shows so in :meth:`WorkerPool.health`.

A request whose caller gives up (cancelled, disconnected, timed out) leaves
the queue at once, freeing its place. A batch already on a device is
interrupted at its next step when every caller in it has given up, if the
engine is ``interruptible`` (it then takes a ``should_stop`` callable).
"""

from __future__ import annotations

import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import anyio

from render_tools.base import (
    InvalidRenderRequest,
    RendererBusy,
    RenderError,
    RendererUnavailable,
    RenderRequest,
    RenderResult,
)

logger = logging.getLogger(__name__)


class AllWorkersDown(RendererUnavailable):
    """Every worker is out of service (quarantined after repeated failures)."""


class RenderTimedOut(RendererUnavailable):
    """The request waited and ran longer than the pool's request timeout."""


class Engine(Protocol):
    """A synchronous renderer bound to one device (called from one thread at a time)."""

    def load(self) -> None: ...

    def render_batch(self, requests: Sequence[RenderRequest]) -> list[RenderResult]: ...

    def close(self) -> None: ...


class InterruptibleEngine(Engine, Protocol):
    """An engine whose ``render_batch`` ends early once ``should_stop()`` turns true (``interruptible = True``)."""

    def render_batch(
        self, requests: Sequence[RenderRequest], should_stop: Callable[[], bool] | None = None
    ) -> list[RenderResult]: ...


EngineFactory = Callable[[str], Engine]


@dataclass(frozen=True)
class PoolConfig:
    devices: tuple[str, ...] = ("cpu",)
    queue_size: int = 64
    max_batch: int = 1
    max_consecutive_failures: int = 3
    quarantine_s: float = 60.0
    retries: int = 1
    request_timeout_s: float = 600.0


@dataclass(eq=False)
class _Job:
    request: RenderRequest
    done: anyio.Event = field(default_factory=anyio.Event)
    result: RenderResult | None = None
    error: RenderError | None = None
    attempts: int = 0
    cancelled: bool = False
    solo: bool = False  # after a failed batch (e.g. out of memory at batch 4), retry unbatched

    def finish(self, result: RenderResult | None = None, error: RenderError | None = None) -> None:
        self.result, self.error = result, error
        self.done.set()


class _JobQueue:
    """FIFO of waiting jobs with a capacity; ``take`` returns one job plus batchable followers."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: deque[_Job] = deque()
        self._changed = anyio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def put(self, job: _Job, *, front: bool = False) -> None:
        if front:  # retries skip the line and the capacity check: they were admitted already
            self._items.appendleft(job)
        else:
            if len(self._items) >= self.capacity:
                raise RendererBusy(
                    f"render queue is full ({len(self._items)} requests waiting); retry in a few seconds"
                )
            self._items.append(job)
        self._wake()

    def discard(self, job: _Job) -> None:
        """Take a job its caller gave up on out of the line (frees its place at once)."""
        try:
            self._items.remove(job)
        except ValueError:
            pass  # already taken by a worker (or never queued)

    def drain(self) -> list[_Job]:
        items = list(self._items)
        self._items.clear()
        return items

    async def take(self, max_batch: int) -> list[_Job]:
        while True:
            while self._items and self._items[0].cancelled:
                self._items.popleft()
            if self._items:
                break
            changed = self._changed
            await changed.wait()
        first = self._items.popleft()
        batch = [first]
        key = first.request.batch_key()
        if key is not None and max_batch > 1 and not first.solo:
            for job in list(self._items):
                if len(batch) >= max_batch:
                    break
                if not job.cancelled and not job.solo and job.request.batch_key() == key:
                    self._items.remove(job)
                    batch.append(job)
        return batch


@dataclass
class WorkerStatus:
    device: str
    state: str = "starting"  # starting | ready | busy | reloading | quarantined
    batches: int = 0
    images: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    reloads: int = 0
    last_error: str | None = None
    quarantined_until: float | None = None

    def to_dict(self) -> dict[str, Any]:
        left = None
        if self.quarantined_until is not None:
            left = max(0.0, round(self.quarantined_until - time.monotonic(), 1))
        return {
            "device": self.device,
            "state": self.state,
            "batches": self.batches,
            "images": self.images,
            "failures": self.failures,
            "consecutive_failures": self.consecutive_failures,
            "reloads": self.reloads,
            "last_error": self.last_error,
            "quarantine_left_s": left,
        }


class WorkerPool:
    """Workers over devices. Run :meth:`run` in a task group; :meth:`submit` renders."""

    def __init__(self, factory: EngineFactory, config: PoolConfig) -> None:
        if not config.devices:
            raise ValueError("at least one device is needed")
        self.config = config
        self._factory = factory
        self._queue = _JobQueue(config.queue_size)
        self.workers = [WorkerStatus(device) for device in config.devices]
        self.started = anyio.Event()
        self._load_lock = anyio.Lock()

    # -- public -----------------------------------------------------------------
    async def submit(self, request: RenderRequest) -> RenderResult:
        """Queue a validated request and wait for its result."""
        if not any(w.state != "quarantined" for w in self.workers):
            raise AllWorkersDown(self._down_message())
        job = _Job(request)
        self._queue.put(job)
        try:
            with anyio.fail_after(self.config.request_timeout_s):
                await job.done.wait()
        except TimeoutError:
            self._abandon(job)
            raise RenderTimedOut(f"render timed out after {self.config.request_timeout_s:g} s") from None
        except BaseException:
            self._abandon(job)  # the caller went away: do not render it
            raise
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def _abandon(self, job: _Job) -> None:
        job.cancelled = True
        self._queue.discard(job)

    def health(self) -> dict[str, Any]:
        states = [w.state for w in self.workers]
        serving = sum(s in ("ready", "busy") for s in states)
        if serving == len(states):
            status = "ok"
        elif not serving and "starting" in states:
            status = "loading"  # the first model load is still running
        elif serving or any(s in ("starting", "reloading") for s in states):
            status = "degraded"
        else:
            status = "down"
        return {
            "status": status,
            "queue": {"depth": len(self._queue), "capacity": self._queue.capacity},
            "max_batch": self.config.max_batch,
            "failures": sum(w.failures for w in self.workers),
            "workers": [w.to_dict() for w in self.workers],
        }

    async def run(self) -> None:
        """Run every worker until cancelled."""
        async with anyio.create_task_group() as tg:
            for status in self.workers:
                tg.start_soon(self._worker, status)
            self.started.set()

    # -- internals ------------------------------------------------------------
    async def _build(self, status: WorkerStatus) -> Engine | None:
        try:
            # One load at a time: from_pretrained patches process-wide state and is not thread-safe.
            async with self._load_lock:
                engine = await anyio.to_thread.run_sync(self._factory, status.device)
                await anyio.to_thread.run_sync(engine.load)
        except Exception as exc:  # noqa: BLE001  a load failure is a worker failure, reported in /health
            self._record_failure(status, exc, "load")
            return None
        status.state = "ready"
        return engine

    async def _worker(self, status: WorkerStatus) -> None:
        engine: Engine | None = None
        try:
            while True:
                if engine is None:
                    if status.quarantined_until is not None:
                        await anyio.sleep(max(0.0, status.quarantined_until - time.monotonic()))
                        status.quarantined_until = None
                        status.consecutive_failures = 0
                        status.state = "reloading"
                    engine = await self._build(status)
                    if engine is None:
                        self._maybe_quarantine(status)
                        if status.state != "quarantined":
                            await anyio.sleep(0.5)
                        continue
                jobs = await self._queue.take(self.config.max_batch)
                jobs = [job for job in jobs if not job.cancelled]
                if not jobs:
                    continue
                status.state = "busy"
                requests = [j.request for j in jobs]
                render: Callable[[Sequence[RenderRequest]], list[RenderResult]] = engine.render_batch
                if getattr(engine, "interruptible", False):
                    interruptible = cast(InterruptibleEngine, engine)
                    stop = functools.partial(_all_cancelled, jobs)
                    render = functools.partial(interruptible.render_batch, should_stop=stop)
                try:
                    results = await anyio.to_thread.run_sync(render, requests)
                except InvalidRenderRequest as exc:
                    status.state = "ready"
                    for job in jobs:
                        job.finish(error=InvalidRenderRequest(str(exc)))
                    continue
                except Exception as exc:  # noqa: BLE001  anything else is a device fault
                    self._record_failure(status, exc, "render")
                    self._maybe_quarantine(status)
                    self._retry_or_fail(jobs, status, exc)
                    await anyio.to_thread.run_sync(_close_quietly, engine)
                    engine = None
                    status.reloads += 1
                    continue
                status.state = "ready"
                status.consecutive_failures = 0
                status.batches += 1
                for job, result in zip(jobs, results, strict=True):
                    status.images += len(result.images)
                    job.finish(result=result)
        finally:
            if engine is not None:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(_close_quietly, engine)

    def _record_failure(self, status: WorkerStatus, exc: BaseException, during: str) -> None:
        status.failures += 1
        status.consecutive_failures += 1
        status.last_error = f"{during} failed: {type(exc).__name__}: {_first_line(exc)}"
        status.state = "reloading"
        # A RenderError already says what is wrong (e.g. a model that cannot be loaded): no traceback.
        trace = None if isinstance(exc, RenderError) else exc
        logger.error("render worker %s: %s", status.device, status.last_error, exc_info=trace)

    def _maybe_quarantine(self, status: WorkerStatus) -> None:
        if status.consecutive_failures >= self.config.max_consecutive_failures:
            status.state = "quarantined"
            status.quarantined_until = time.monotonic() + self.config.quarantine_s
            logger.error(
                "render worker %s failed %d times in a row; out of service for %g s",
                status.device,
                status.consecutive_failures,
                self.config.quarantine_s,
            )
            if all(w.state == "quarantined" for w in self.workers):
                self._fail_waiting(self._down_message())

    def _down_message(self) -> str:
        """Why nothing renders, with each worker's last error (a bad model path shows up here)."""
        errors = sorted({f"{w.device}: {w.last_error}" for w in self.workers if w.last_error})
        detail = f" ({'; '.join(errors)})" if errors else ""
        return f"every render worker is failing and out of service{detail}; retry later"

    def _retry_or_fail(self, jobs: list[_Job], status: WorkerStatus, exc: BaseException) -> None:
        for job in reversed(jobs):
            job.attempts += 1
            job.solo = job.solo or len(jobs) > 1
            someone_serving = any(w.state != "quarantined" for w in self.workers)
            if job.attempts <= self.config.retries and not job.cancelled and someone_serving:
                self._queue.put(job, front=True)
            else:
                job.finish(
                    error=RendererUnavailable(
                        f"render failed on worker {status.device} ({type(exc).__name__}); the worker is reloading"
                    )
                )

    def _fail_waiting(self, message: str) -> None:
        for job in self._queue.drain():
            job.finish(error=AllWorkersDown(message))


def _all_cancelled(jobs: list[_Job]) -> bool:
    return all(job.cancelled for job in jobs)


def _close_quietly(engine: Engine) -> None:
    try:
        engine.close()
    except Exception:
        logger.warning("closing a render engine failed", exc_info=True)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else "no details"
