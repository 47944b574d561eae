"""A small in-process memo of recent tool results, bounded in time and bytes.

A repeated ``image_search`` (the same query, an agent retrying, many
sessions asking alike) would otherwise redo about two dozen image-store
operations, each a worker-thread hop, to rebuild the same answer. Results are
kept only briefly, so an id in a remembered answer is still in the store.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class ResultMemo(Generic[V]):
    """Least-recently-used entries, each expiring ``ttl_s`` after it was stored, at most ``max_bytes`` in all."""

    def __init__(self, *, ttl_s: float, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, int, V]] = OrderedDict()
        self.bytes = 0

    def get(self, key: Hashable) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock() >= entry[0]:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry[2]

    def put(self, key: Hashable, value: V, size: int) -> None:
        if key in self._entries:
            self._drop(key)
        if size > self.max_bytes or self.ttl_s <= 0:
            return
        self._entries[key] = (self._clock() + self.ttl_s, size, value)
        self.bytes += size
        while self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: Hashable) -> None:
        _, size, _ = self._entries.pop(key)
        self.bytes -= size
