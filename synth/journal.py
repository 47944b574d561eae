"""One journal per stage in the run folder: an appended, fsync'd JSON line per item (or rollout).

A line's key is ``<unit>:<inputs>``: ``unit`` is the item's content digest (with
``/r<i>`` for a rollout) and ``inputs`` a digest of everything the stage read for
it (upstream results, settings, model names). A rerun looks the key up first, so a
done unit is never paid for twice, and a changed input is a new key, redone. Dropped
units are journaled too, with their reason and scores. Durability and torn-line
recovery come from :class:`benchmark.journal.Journal`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.journal import Journal

KEPT = "kept"
DROPPED = "dropped"


@dataclass(frozen=True)
class RunFolder:
    """The layout of one run."""

    root: Path

    @property
    def journals(self) -> Path:
        return self.root / "journals"

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def items(self) -> Path:
        return self.root / "items.jsonl"

    def journal(self, stage: str) -> StageJournal:
        return StageJournal(stage, Journal(self.journals / f"{stage}.jsonl"))


class StageJournal:
    """The journal of one stage."""

    def __init__(self, stage: str, journal: Journal) -> None:
        self.stage = stage
        self._journal = journal

    @staticmethod
    def key(unit: str, inputs: str) -> str:
        return f"{unit}:{inputs}"

    def get(self, unit: str, inputs: str) -> dict[str, Any] | None:
        return self._journal.get(self.key(unit, inputs))

    def rows(self) -> list[dict[str, Any]]:
        return list(self._journal.rows.values())

    def _row(
        self, unit: str, inputs: str, item_id: str, status: str, reason: str | None, data: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "id": self.key(unit, inputs),
            "stage": self.stage,
            "item": item_id,
            "unit": unit,
            "status": status,
            "reason": reason,
            "at": round(time.time(), 3),
            "data": data,
        }

    async def record(
        self, unit: str, inputs: str, item_id: str, status: str, reason: str | None = None, **data: Any
    ) -> dict[str, Any]:
        row = self._row(unit, inputs, item_id, status, reason, data)
        await self._journal.append(row)
        return row

    def record_sync(
        self, unit: str, inputs: str, item_id: str, status: str, reason: str | None = None, **data: Any
    ) -> dict[str, Any]:
        row = self._row(unit, inputs, item_id, status, reason, data)
        self._journal.append_sync(row)
        return row
