"""``manifest.json``: what a run folder holds and what it cost, rewritten after every run or re-selection.

Settings (the effective ones, with key *names* only), model names, code version,
per-stage counts and drop reasons (the funnel), and costs summed over every run
into the folder (teacher and judge calls and tokens, tool calls, renders, wall time).
"""

from __future__ import annotations

import json
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from synth.journal import RunFolder
from synth.settings import SynthSettings


def code_version() -> str:
    try:
        return version("gen-searcher")
    except PackageNotFoundError:
        return "unknown"


def read_manifest(folder: RunFolder) -> dict[str, Any]:
    if not folder.manifest.is_file():
        return {}
    try:
        data = json.loads(folder.manifest.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{folder.manifest} is unreadable: {exc}") from None
    return data if isinstance(data, dict) else {}


def settings_of(folder: RunFolder) -> SynthSettings | None:
    """The settings the folder was last run or re-selected with (``None`` for a new folder)."""
    data = read_manifest(folder).get("settings")
    return SynthSettings.model_validate(data) if isinstance(data, dict) else None


def write_manifest(
    folder: RunFolder,
    settings: SynthSettings,
    shape: dict[str, Any],
    *,
    costs: dict[str, int] | None = None,
    wall_s: float = 0.0,
    notes: list[str] | None = None,
    stage_seconds: dict[str, float] | None = None,
) -> dict[str, Any]:
    old = read_manifest(folder)
    total: dict[str, float] = dict(old.get("costs", {}))
    for key, value in (costs or {}).items():
        total[key] = total.get(key, 0) + value
    total["wall_s"] = round(float(total.get("wall_s", 0.0)) + wall_s, 3)
    runs = list(old.get("runs", []))
    if costs is not None:
        runs.append(
            {
                "at": round(time.time(), 3),
                "wall_s": round(wall_s, 3),
                "stage_seconds": stage_seconds or {},  # summed over the units of each stage (they overlap)
                "costs": costs,
                "notes": notes or [],
            }
        )
    manifest = {
        "code_version": code_version(),
        "models": {
            "teacher": settings.teacher.model,
            "judge": settings.judge.model,
            "policy": settings.policy.model,
            "tools": settings.tools_url or "local gen-searcher serve",
            "render": settings.render_url or settings.tools_url or "local gen-searcher serve",
        },
        "settings": settings.model_dump(mode="json"),
        "counts": {stage: row["kept"] for stage, row in shape["stages"].items()},
        "funnel": shape,
        "costs": dict(sorted(total.items())),
        "runs": runs,
    }
    tmp = folder.manifest.with_name("manifest.json.tmp")
    folder.root.mkdir(parents=True, exist_ok=True)
    tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(folder.manifest)
    return manifest
