"""Helpers of the benchmark tests: tiny images, a loopback render server, KnowGen fixtures on disk."""

from __future__ import annotations

import base64
import io
import json
import os
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from benchmark.judge import JudgeSettings
from tests.support.images import png_bytes as png_bytes  # the benchmark tests import these from here
from tests.support.images import write_png as write_png


@dataclass
class RenderServer:
    """Speaks the published ``POST /generate`` API; draws a flat colour derived from the prompt.

    Prompts containing ``FAILRENDER`` get a refusal (HTTP 422). ``delay_s`` slows every render;
    with ``stall_after`` the renders after the first ``stall_after`` hang for ``stall_s`` (a run
    to interrupt at a known point, however loaded the machine).
    """

    delay_s: float = 0.0
    stall_after: int | None = None
    stall_s: float = 10.0
    prompts: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def _generate(self, request: Request) -> JSONResponse:
        import anyio

        body = await request.json()
        prompt = body.get("prompt", "")
        with self._lock:
            self.prompts.append(prompt)
            stalled = self.stall_after is not None and len(self.prompts) > self.stall_after
        if self.delay_s:
            await anyio.sleep(self.delay_s)
        if stalled:
            await anyio.sleep(self.stall_s)
        if "FAILRENDER" in prompt:
            return JSONResponse({"success": False, "message": "scripted render failure"}, status_code=422)
        crc = zlib.crc32(prompt.encode())
        color = (crc & 255, (crc >> 8) & 255, (crc >> 16) & 255)
        size = (int(body.get("width") or 64), int(body.get("height") or 64))
        buf = io.BytesIO()
        Image.new("RGB", size, color).save(buf, format="PNG")
        return JSONResponse(
            {"success": True, "image": base64.b64encode(buf.getvalue()).decode(), "seed": body.get("seed")}
        )

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/generate", self._generate, methods=["POST"])])


# Categories from both KnowGen groups, including a multi-subject one.
CATEGORIES = ["astronomy", "history", "art", "anime", "multi_celebrities", "news"]


def make_knowgen(root: Path, n: int, *, missing_gt: set[int] = frozenset(), fail: set[int] = frozenset()) -> Path:
    """Write ``n`` KnowGen items (and their ground-truth PNGs) under ``root``; returns the data file."""
    rows: list[dict[str, Any]] = []
    for i in range(n):
        gt = f"gt/{i:03d}.png"
        if i not in missing_gt:
            write_png(root / gt, (i * 10 % 255, 100, 100))
        prompt = f"Prompt number {i} about {CATEGORIES[i % len(CATEGORIES)]}" + (" FAILRENDER" if i in fail else "")
        rows.append(
            {
                "id": f"kg-{i:03d}",
                "prompt": prompt,
                "meta": {"category": CATEGORIES[i % len(CATEGORIES)], "difficulty": "easy"},
                "gt_image": gt,
            }
        )
    path = root / "knowgen.json"
    path.write_text(json.dumps(rows))
    return path


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(interval)


def parse_tables(markdown: str) -> dict[str, list[dict[str, str]]]:
    """Markdown tables keyed by the heading above them (``## Groups`` -> ``"Groups"``)."""
    tables: dict[str, list[dict[str, str]]] = {}
    heading = ""
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            header = [c.strip() for c in line.strip("|").split("|")]
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip("|").split("|")]
                rows.append(dict(zip(header, cells, strict=True)))
                i += 1
            tables[heading] = rows
            continue
        i += 1
    return tables


def fast_settings(url: str, **extra: object) -> JudgeSettings:
    values: dict[str, object] = {
        "base_url": url,
        "model": "scripted",
        "api_key": None,
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.02,
        "max_attempts": 3,
    }
    values.update(extra)
    return JudgeSettings(**values)


def wise_data_dir() -> Path:
    """The WISE prompts: ``$GEN_SEARCHER_WISE_DIR``, else ``shared/data/wise`` beside the repository."""
    override = os.environ.get("GEN_SEARCHER_WISE_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "wise"


def bench(*args: str) -> tuple[int, str]:
    """``gen-searcher bench ARGS`` in process; returns the exit code and the output (stdout and stderr)."""
    from typer.testing import CliRunner

    from gen_searcher_core.commands import build_app

    app = build_app()

    result = CliRunner().invoke(app, ["bench", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output
