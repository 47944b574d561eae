"""Live progress of a run: one bar per stage with counts, failures and ETA (rich, on stderr)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class RunProgress:
    """Context manager; ``enabled=False`` makes every call a no-op (library use, tests)."""

    def __init__(self, *, enabled: bool = True, console: Console | None = None) -> None:
        self.enabled = enabled
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._failed: dict[str, int] = {}
        if enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description:<9}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("[red]{task.fields[failed]} failed"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=console or Console(stderr=True),
                transient=False,
            )

    def add_stage(self, name: str, *, total: int, done: int = 0, enabled: bool = True) -> None:
        if self._progress is None or not enabled:
            return
        self._failed[name] = 0
        self._tasks[name] = self._progress.add_task(name, total=total, completed=done, failed=0)

    def advance(self, name: str, *, failed: bool = False) -> None:
        if self._progress is None or name not in self._tasks:
            return
        if failed:
            self._failed[name] += 1
        self._progress.update(self._tasks[name], advance=1, failed=self._failed[name])

    def __enter__(self) -> RunProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()
