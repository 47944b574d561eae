"""Thumbnails for a tool result, within one byte budget for all of them together.

MCP clients cap a tool result near 1 MB, and ten detailed photos at 512 px
exceed that. Each image starts at the configured side and JPEG quality; while
the sum (as base64, the way it travels) is over the budget, every thumbnail
larger than its fair share steps down a ladder of smaller sides and qualities,
all at once. The store caches each (side, quality) it makes, so a repeated
call reads files instead of encoding again.
"""

from __future__ import annotations

from typing import Any

import anyio

#: (fraction of the configured side, JPEG quality), largest first.
LADDER = ((1.0, 85), (1.0, 70), (0.75, 70), (0.5, 65), (0.375, 60), (0.25, 55), (0.125, 50))
MIN_SIDE = 48


def base64_size(data: bytes) -> int:
    return 4 * ((len(data) + 2) // 3)


def ladder(side: int) -> list[tuple[int, int]]:
    steps: list[tuple[int, int]] = []
    for fraction, quality in LADDER:
        step = (max(MIN_SIDE, int(side * fraction)), quality)
        if step not in steps:
            steps.append(step)
    return steps


async def thumbnails_within_budget(store: Any, ids: list[str], side: int, budget: int) -> list[bytes]:
    """JPEG thumbnails of ``ids`` (same order) whose base64 sizes add up to at most ``budget``.

    When even the smallest step does not fit, trailing thumbnails are left out
    (the result is then shorter than ``ids``).
    """
    steps = ladder(side)
    rungs = [0] * len(ids)
    thumbs: list[bytes] = [b""] * len(ids)

    async def make(indexes: list[int]) -> None:
        async def one(i: int) -> None:
            thumb_side, quality = steps[rungs[i]]
            thumbs[i] = await store.thumbnail(ids[i], thumb_side, quality)

        async with anyio.create_task_group() as tg:
            for i in indexes:
                tg.start_soon(one, i)

    await make(list(range(len(ids))))
    while ids and sum(map(base64_size, thumbs)) > budget:
        share = budget / len(ids)
        over = [i for i, t in enumerate(thumbs) if base64_size(t) > share and rungs[i] < len(steps) - 1]
        if not over:  # the big ones are as small as they go: shrink whatever still can
            over = [i for i in range(len(ids)) if rungs[i] < len(steps) - 1]
        if not over:
            break
        for i in over:
            rungs[i] += 1
        await make(over)
    while thumbs and sum(map(base64_size, thumbs)) > budget:
        thumbs.pop()
    return thumbs
