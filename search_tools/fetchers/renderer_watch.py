"""Bounds on the browser's renderer processes that the JavaScript heap cap does not give.

V8's heap limit (``--max-old-space-size``) leaves out typed arrays, canvases,
WASM memory and the renderer's own allocations: a page can hold gigabytes with
a small heap. While pages render, :class:`RendererWatch` reads the resident size
of every renderer process of the browser a few times a second and kills
(SIGKILL) one over ``max_rss_bytes``; the page in it crashes and its call fails
with a clear error, the other pages go on. It also kills the newest renderers
beyond ``max_renderers`` (a page opening windows faster than they are closed).
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass, field

import psutil


@dataclass
class RendererWatch:
    """One check of the renderers under ``browser_pid``; :meth:`check` runs in a worker thread."""

    max_rss_bytes: int
    max_renderers: int
    killed_for_memory: int = 0
    killed_for_count: int = 0
    _renderers: dict[int, bool] = field(default_factory=dict)  # pid -> is a renderer (cmdline read once)

    def renderers(self, browser_pid: int) -> list[psutil.Process]:
        """The live renderer processes of the browser (its children with ``--type=renderer``)."""
        try:
            children = psutil.Process(browser_pid).children(recursive=True)
        except psutil.Error:
            return []
        found = []
        for child in children:
            known = self._renderers.get(child.pid)
            if known is None:
                try:
                    known = "--type=renderer" in child.cmdline()
                except psutil.Error:
                    continue
                self._renderers[child.pid] = known
            if known:
                found.append(child)
        if len(self._renderers) > 4 * len(children) + 64:  # forget processes that are gone
            alive = {child.pid for child in children}
            self._renderers = {pid: kind for pid, kind in self._renderers.items() if pid in alive}
        return found

    def check(self, browser_pid: int) -> list[str]:
        """Kill the renderers over the bounds; answers what was done (one line per kill)."""
        done: list[str] = []
        sized: list[tuple[float, int, int]] = []  # (start time, pid, resident bytes)
        for process in self.renderers(browser_pid):
            try:
                sized.append((process.create_time(), process.pid, process.memory_info().rss))
            except psutil.Error:
                continue
        for _, pid, rss in sized:
            if rss > self.max_rss_bytes and _kill(pid):
                self.killed_for_memory += 1
                done.append(f"renderer {pid} held {rss >> 20} MiB")
        left = [entry for entry in sized if entry[2] <= self.max_rss_bytes]
        excess = len(left) - self.max_renderers
        if excess > 0:
            for _, pid, _ in sorted(left, reverse=True)[:excess]:
                if _kill(pid):
                    self.killed_for_count += 1
                    done.append(f"renderer {pid} was one too many")
        return done


def _kill(pid: int) -> bool:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
        return True
    return False
