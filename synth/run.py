"""One ``synth run``: prompts, the paid stages (journaled), then the offline decisions and the manifest."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from benchmark.progress import RunProgress
from synth.funnel import Outcome, evaluate, funnel
from synth.gate import Benchmark, load_benchmarks
from synth.items import Item
from synth.journal import RunFolder
from synth.manifest import settings_of, write_manifest
from synth.pipeline import Pipeline, open_services
from synth.prompts import KNOWGEN_CATEGORIES, read_items, user_prompts, write_items, written_prompts
from synth.services import ChatService, Costs, ServiceError, local_tool_server
from synth.settings import SynthSettings


@dataclass
class RunResult:
    outcomes: list[Outcome]
    shape: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    failure: str | None = None  # service failures of this run (units left for a rerun)
    costs: dict[str, int] = field(default_factory=dict)


def effective(settings: SynthSettings) -> SynthSettings:
    """The settings as run: the closed-book check is off when the teacher or the judge is missing."""
    if settings.gate.closed_book != "off" and not (settings.teacher.given and settings.judge.given):
        return settings.model_copy(update={"gate": settings.gate.model_copy(update={"closed_book": "off"})})
    return settings


def _merge(old: list[Item], new: list[Item]) -> list[Item]:
    by_id = {i.id: i for i in old}
    for item in new:
        by_id[item.id] = item
    return list(by_id.values())


def shard_of(items: list[Item], shard: tuple[int, int] | None) -> list[Item]:
    """Items of shard ``i`` of ``n`` (by content digest: stable whatever the order or the machine)."""
    if shard is None:
        return items
    index, count = shard
    return [item for item in items if int(item.digest, 16) % count == index]


@contextlib.contextmanager
def _tool_url(settings: SynthSettings, folder: RunFolder, config_file: Path | None) -> Iterator[str | None]:
    needs_tools = settings.teacher.given or settings.policy.given or settings.judge.given
    if settings.tools_url or not needs_tools:
        yield settings.tools_url
        return
    with local_tool_server(folder.root / "logs" / "tool-server.log", config_file) as url:
        yield url


def run_synth(
    folder: RunFolder,
    settings: SynthSettings,
    prompt_files: list[Path],
    *,
    config_file: Path | None = None,
    shard: tuple[int, int] | None = None,
    progress: bool = True,
) -> RunResult:
    started = time.perf_counter()
    settings = effective(settings)
    folder.root.mkdir(parents=True, exist_ok=True)
    items = _merge(read_items(folder.items), user_prompts(prompt_files)) if prompt_files else read_items(folder.items)
    bench = load_benchmarks(settings.gate)
    costs = Costs()
    notes: list[str] = []
    with _tool_url(settings, folder, config_file) as tools_url:
        pipeline_notes, failure, written, seconds = anyio.run(
            _paid, folder, settings, shard_of(items, shard), bench, tools_url, costs, progress
        )
    notes += pipeline_notes
    if written:
        items = _merge(items, shard_of(written, shard) if shard else written)
    if not items:
        raise ServiceError("no prompts: pass --prompts FILE, or set [synth.prompts] per_category with a teacher")
    write_items(folder.items, items)
    outcomes = evaluate(folder, items, settings, bench)
    shape = funnel(outcomes)
    wall = time.perf_counter() - started
    write_manifest(folder, settings, shape, costs=costs.to_dict(), wall_s=wall, notes=notes, stage_seconds=seconds)
    return RunResult(outcomes, shape, notes, failure, costs.to_dict())


async def _paid(
    folder: RunFolder,
    settings: SynthSettings,
    items: list[Item],
    bench: Benchmark,
    tools_url: str | None,
    costs: Costs,
    progress: bool,
) -> tuple[list[str], str | None, list[Item], dict[str, float]]:
    notes: list[str] = []
    written: list[Item] = []
    async with open_services(settings, tools_url, costs) as services:
        if settings.prompts.per_category:
            if services.teacher is None:
                notes.append("prompts: the teacher writes no prompts (no teacher given)")
            else:
                categories = settings.prompts.categories or list(KNOWGEN_CATEGORIES)
                written, problems = await written_prompts(
                    services.teacher, categories, settings.prompts.per_category, folder.journal("prompts_written")
                )
                notes += problems
                write_items(folder.items, _merge(read_items(folder.items), written))
        with RunProgress(enabled=progress) as bars:
            pipeline = Pipeline(folder, settings, services, bench, bars)
            await pipeline.run(_merge(items, written))
        notes += pipeline.skipped
        failure = pipeline.failures.summary() if pipeline.failures.counts else None
    return notes, failure, written, {k: round(v, 3) for k, v in pipeline.stage_seconds.items()}


def reevaluate(folder: RunFolder, settings: SynthSettings | None = None) -> tuple[list[Outcome], dict[str, Any]]:
    """Decisions again from the journals, under ``settings`` (default: the folder's own); no service call."""
    settings = effective(settings or settings_of(folder) or SynthSettings())
    items = read_items(folder.items)
    outcomes = evaluate(folder, items, settings, load_benchmarks(settings.gate))
    shape = funnel(outcomes)
    write_manifest(folder, settings, shape)
    return outcomes, shape


__all__ = ["ChatService", "RunResult", "reevaluate", "run_synth"]
