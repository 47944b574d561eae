"""Append-only JSON-lines journals that survive crashes.

Each finished item is one line, written with a single ``write`` call, flushed
and ``fsync``'d before the item counts as done, so a crash or Ctrl-C loses at
most the items in flight. A line torn by a crash (no trailing newline, or not
valid JSON) is dropped when the journal is opened, and the file is truncated
back to its last complete line so the next append starts clean.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import anyio

log = logging.getLogger(__name__)


class Journal:
    """Rows keyed by ``row["id"]``; when an id appears twice the later row wins."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.rows: dict[str, dict[str, Any]] = {}
        self.dropped_lines = 0
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        good_end = 0
        offset = 0
        for raw in data.splitlines(keepends=True):
            line_end = offset + len(raw)
            offset = line_end
            if not raw.endswith(b"\n"):
                self.dropped_lines += 1  # torn tail: the process died mid-write
                break
            try:
                row = json.loads(raw)
                key = str(row["id"])
            except (ValueError, KeyError, TypeError):
                self.dropped_lines += 1
                log.warning("%s: skipping an unreadable line at byte %d", self.path, line_end - len(raw))
                good_end = line_end
                continue
            self.rows[key] = row
            good_end = line_end
        if good_end < len(data):
            with self.path.open("r+b") as fh:
                fh.truncate(good_end)
                fh.flush()
                os.fsync(fh.fileno())

    def __contains__(self, key: object) -> bool:
        return str(key) in self.rows

    def get(self, key: str) -> dict[str, Any] | None:
        return self.rows.get(str(key))

    def append_sync(self, row: dict[str, Any]) -> None:
        """Write one row durably (blocking)."""
        line = (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            self.rows[str(row["id"])] = row

    async def append(self, row: dict[str, Any]) -> None:
        """Write one row durably without blocking the event loop."""
        await anyio.to_thread.run_sync(self.append_sync, row)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Every complete row of a journal, in file order (duplicates kept; for inspection and tests)."""
    rows: list[dict[str, Any]] = []
    if not Path(path).exists():
        return rows
    for raw in Path(path).read_bytes().splitlines(keepends=True):
        if not raw.endswith(b"\n"):
            break
        try:
            rows.append(json.loads(raw))
        except ValueError:
            continue
    return rows
