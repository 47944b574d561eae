"""Running a batch of awaitables concurrently while keeping their order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import anyio

from gen_searcher_core.errors import first_leaf

T = TypeVar("T")


async def gather_ordered(jobs: Sequence[Callable[[], Awaitable[T]]], *, concurrent: bool = True) -> list[T]:
    """Run ``jobs`` (concurrently when ``concurrent`` and there are several) and return their results in order.

    The first failure cancels the rest and is raised as itself, not wrapped in an exception group.
    """
    if not concurrent or len(jobs) <= 1:
        return [await job() for job in jobs]
    results: dict[int, T] = {}

    async def run(index: int, job: Callable[[], Awaitable[T]]) -> None:
        results[index] = await job()

    try:
        async with anyio.create_task_group() as group:
            for index, job in enumerate(jobs):
                group.start_soon(run, index, job)
    except BaseExceptionGroup as errors:
        raise first_leaf(errors) from None
    return [results[index] for index in range(len(jobs))]
