"""Thumbnails for a tool result, within one byte budget for all of them together.

MCP clients cap a tool result near 1 MB, and ten detailed photos at 512 px
exceed that. Each image starts at the configured side and JPEG quality. When
the sum (as base64, the way it travels) is over the budget, the budget is
spent evenly: each image takes the best step of a ladder of smaller sides and
qualities that fits an equal share, then what the images left unspent lifts
the smallest ones back up, one step at a time, while it fits. So a result
never lands far under its budget, and more images never make each other
needlessly small. The store caches each (side, quality) it makes, so a
repeated call reads files instead of encoding again.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Protocol

import anyio

#: (fraction of the configured side, JPEG quality), largest first; close steps, so an even share is met closely.
LADDER = (
    (1.0, 85),
    (1.0, 75),
    (1.0, 65),
    (0.875, 65),
    (0.75, 65),
    (0.625, 60),
    (0.5, 60),
    (0.375, 55),
    (0.25, 55),
    (0.125, 50),
)
MIN_SIDE = 48
#: Size of a JPEG at a quality relative to quality 85, and how size follows the side (measured on photos
#: and noise alike). Only a first guess of the step that fits a share: each guess is checked by encoding.
QUALITY_FACTOR = {85: 1.0, 75: 0.69, 65: 0.54, 60: 0.48, 55: 0.45, 50: 0.42}
SIDE_EXPONENT = 2.75


class ThumbnailSource(Protocol):
    async def thumbnail(self, image_id: str, max_side: int | None = None, quality: int = 85) -> bytes: ...


def base64_size(data: bytes) -> int:
    return 4 * ((len(data) + 2) // 3)


def ladder(side: int) -> list[tuple[int, int]]:
    steps: list[tuple[int, int]] = []
    for fraction, quality in LADDER:
        step = (max(MIN_SIDE, int(side * fraction)), quality)
        if step not in steps:
            steps.append(step)
    return steps


class _Ladders:
    """Each image's thumbnails by ladder step, made on first use (concurrent across images)."""

    def __init__(self, store: ThumbnailSource, ids: list[str], steps: list[tuple[int, int]]) -> None:
        self.store, self.ids, self.steps = store, ids, steps
        self.made: list[dict[int, bytes]] = [{} for _ in ids]

    async def size(self, i: int, step: int) -> int:
        if step not in self.made[i]:
            side, quality = self.steps[step]
            self.made[i][step] = await self.store.thumbnail(self.ids[i], side, quality)
        return base64_size(self.made[i][step])

    def known(self, i: int, step: int) -> int:
        return base64_size(self.made[i][step])

    def guess(self, i: int, share: int) -> int:
        """The first step expected to fit ``share``, from the size of step 0."""
        side0, quality0 = self.steps[0]
        for step, (side, quality) in enumerate(self.steps):
            ratio = (side / side0) ** SIDE_EXPONENT * _quality(quality) / _quality(quality0)
            if self.known(i, 0) * ratio <= share:
                return step
        return len(self.steps) - 1

    async def each(self, count: int, job: Callable[[int], Coroutine[object, object, None]]) -> None:
        async with anyio.create_task_group() as tg:
            for i in range(count):
                tg.start_soon(job, i)


def _quality(quality: int) -> float:
    return QUALITY_FACTOR.get(quality, quality / 85)


async def thumbnails_within_budget(store: ThumbnailSource, ids: list[str], side: int, budget: int) -> list[bytes]:
    """JPEG thumbnails of ``ids`` (same order) whose base64 sizes add up to at most ``budget``, spent evenly.

    When even the smallest step does not fit, trailing thumbnails are left out
    (the result is then shorter than ``ids``).
    """
    steps = ladder(side)
    last = len(steps) - 1
    ladders = _Ladders(store, ids, steps)
    count = len(ids)
    chosen = [0] * count

    async def first(i: int) -> None:
        await ladders.size(i, 0)

    await ladders.each(count, first)
    if sum(ladders.known(i, 0) for i in range(count)) <= budget:
        return [ladders.made[i][0] for i in range(count)]
    share = budget

    async def descend(i: int) -> None:
        """The best step within the current share: a guess, checked (with the step above it) and corrected."""
        step = ladders.guess(i, share)
        if step > 0:  # the step above is needed anyway: it is the first the leftover may lift this image to
            async with anyio.create_task_group() as tg:
                tg.start_soon(ladders.size, i, step - 1)
                tg.start_soon(ladders.size, i, step)
        while step > 0 and await ladders.size(i, step - 1) <= share:
            step -= 1
        while await ladders.size(i, step) > share and step < last:
            step += 1
        chosen[i] = step

    while count:
        share = budget // count
        await ladders.each(count, descend)
        total = sum(ladders.known(i, chosen[i]) for i in range(count))
        if total <= budget:
            break
        count -= 1  # even the smallest steps do not fit: the last image goes, the others share its part
    # What the images left of their shares lifts the smallest ones, a step at a time, while it fits.
    left = budget - sum(ladders.known(i, chosen[i]) for i in range(count))

    async def above(i: int) -> None:  # the step each image would be lifted to next
        if chosen[i] > 0:
            await ladders.size(i, chosen[i] - 1)

    while True:
        await ladders.each(count, above)
        gains = [
            (ladders.known(i, chosen[i]), i)
            for i in range(count)
            if chosen[i] > 0 and ladders.known(i, chosen[i] - 1) - ladders.known(i, chosen[i]) <= left
        ]
        if not gains:
            break
        _, i = min(gains)
        left -= ladders.known(i, chosen[i] - 1) - ladders.known(i, chosen[i])
        chosen[i] -= 1
    return [ladders.made[i][chosen[i]] for i in range(count)]
