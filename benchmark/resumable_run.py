"""Resumable benchmark runs: generate, judge, report.

A run lives in one folder::

    RUN_DIR/run.json            what was run (benchmark, protocol, data, policy, judge)
    RUN_DIR/generations.jsonl   one line per generated (or failed) item
    RUN_DIR/judgements.jsonl    one line per judged (or unjudgeable) item
    RUN_DIR/images/<id>.png     generated images
    RUN_DIR/report.md, summary.json, charts/*.png

Each stage appends a durable line per finished item (see :mod:`benchmark.journal`),
so a rerun skips finished items and a crash loses only what was in flight.
Failed items count as finished (``retry_failed`` runs them again), except
transient failures (renderer, policy server or judge unreachable after
retries): those are not recorded, so a plain rerun picks them up. Items left
unjudged for a missing ground-truth image are judged by a plain rerun once the
file exists.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from benchmark.datasets import Item
from benchmark.generate import GenerationError, Generator, safe_name
from benchmark.journal import Journal
from benchmark.judge import Judge, JudgeError
from benchmark.progress import RunProgress

#: ``judge_item(client, item, image_path) -> judgement`` (an object with ``to_dict()`` and ``score``).
JudgeItem = Callable[[Judge, Item, Path], Awaitable[Any]]

GENERATIONS = "generations.jsonl"
JUDGEMENTS = "judgements.jsonl"


@dataclass
class RunPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "run.json"

    @property
    def generations(self) -> Path:
        return self.root / GENERATIONS

    @property
    def judgements(self) -> Path:
        return self.root / JUDGEMENTS

    @property
    def images(self) -> Path:
        return self.root / "images"

    def image_for(self, item: Item) -> Path:
        return self.images / f"{safe_name(item.id)}.png"


#: Keys a rerun must repeat exactly, and keys it must not change once recorded (``None`` = not given).
_SAME_RUN = ("benchmark", "wise_protocol")
_SAME_WHEN_GIVEN = ("policy", "policy_model", "judge_model")


def write_run_config(paths: RunPaths, config: dict[str, Any]) -> dict[str, Any]:
    """Record what this run is and return the stored description.

    A rerun into the same folder must describe the same run: the same benchmark
    and protocol, and no other policy or judge than the one already recorded
    (mixing them would silently blend two systems' scores).
    """
    paths.root.mkdir(parents=True, exist_ok=True)
    if paths.config.exists():
        stored = json.loads(paths.config.read_text())
        for key in _SAME_RUN + _SAME_WHEN_GIVEN:
            old, new = stored.get(key), config.get(key)
            if old != new and (key in _SAME_RUN or (old is not None and new is not None)):
                raise ValueError(
                    f"{paths.root} holds a {key}={old!r} run; this one is {key}={new!r}. Use another --out folder."
                )
        merged = {**stored, **{k: v for k, v in config.items() if v is not None}}
    else:
        merged = {k: v for k, v in config.items() if v is not None}
    paths.config.write_text(json.dumps(merged, indent=2, default=str) + "\n")
    return merged


@dataclass
class StageCounts:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class RunOutcome:
    generate: StageCounts
    judge: StageCounts
    elapsed_s: float


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path.resolve())


def resolve_image(row: dict[str, Any], root: Path) -> Path:
    p = Path(row["image"])
    return p if p.is_absolute() else root / p


def _ground_truth_found(items: Sequence[Item], judgements: Journal) -> set[str]:
    """Ids recorded as ``missing_gt`` whose ground-truth file exists now (blocking)."""
    found = set()
    for item in items:
        row = judgements.get(item.id)
        if row and row.get("failure") == "missing_gt" and item.gt_image is not None and item.gt_image.is_file():
            found.add(item.id)
    return found


@dataclass(frozen=True)
class Pending:
    """Which items still need a stage: not recorded yet, a failure under ``retry_failed``, or (judging)
    an item recorded as missing its ground truth whose file exists now (``recheck``)."""

    generations: Journal
    judgements: Journal
    retry_failed: bool = False
    recheck: frozenset[str] = frozenset()
    generating: bool = True

    def _needs(self, journal: Journal, item: Item) -> bool:
        row = journal.get(item.id)
        if row is None or (journal is self.judgements and item.id in self.recheck):
            return True
        return self.retry_failed and not row.get("ok")

    def generation(self, item: Item) -> bool:
        return self._needs(self.generations, item)

    def judgement(self, item: Item) -> bool:
        return self._needs(self.judgements, item)

    def settled(self, item: Item) -> bool:
        """Nothing left for the judge stage: judged already, or its generation failed for good."""
        gen = self.generations.get(item.id)
        failed_gen = gen is not None and not gen.get("ok") and not (self.generating and self.generation(item))
        return failed_gen or not self.judgement(item)


async def generation_row(generator: Generator, item: Item, paths: RunPaths) -> tuple[dict[str, Any], bool]:
    """Generate one item: its journal row and whether a failure is transient (left unrecorded for a rerun)."""
    t0 = time.monotonic()
    row: dict[str, Any] = {"id": item.id, "generator": generator.name}
    transient = False
    try:
        gen = await generator.generate(item, paths.image_for(item))
    except GenerationError as exc:
        row.update(ok=False, error=str(exc))
        transient = exc.transient
    else:
        row.update(
            ok=True,
            image=_relative(gen.image, paths.root),
            gen_prompt=gen.gen_prompt,
            references=gen.references,
            seed=gen.seed,
            **({"detail": gen.detail} if gen.detail else {}),
        )
    row["elapsed_s"] = round(time.monotonic() - t0, 3)
    return row, transient


async def judgement_row(
    judge: Judge, judge_item: JudgeItem, item: Item, generation: dict[str, Any], root: Path
) -> tuple[dict[str, Any], bool]:
    """Judge one generated item: its journal row (a missing image is a failure of its own) and whether a
    failure is transient."""
    t0 = time.monotonic()
    row: dict[str, Any] = {"id": item.id, "judge_model": judge.model}
    transient = False
    image = resolve_image(generation, root)
    if not await anyio.Path(image).is_file():
        row.update(ok=False, failure="missing_image", error=f"generated image is missing: {image}")
    elif item.gt_image is not None and not await anyio.Path(item.gt_image).is_file():
        row.update(ok=False, failure="missing_gt", error=f"ground-truth image is missing: {item.gt_image}")
    else:
        try:
            judgement = await judge_item(judge, item, image)
            row.update(ok=True, judgement=judgement.to_dict(), score=judgement.score)
        except JudgeError as exc:
            row.update(ok=False, failure="judge", error=str(exc))
            transient = exc.transient
            if exc.raw:
                row["raw"] = exc.raw
    row["elapsed_s"] = round(time.monotonic() - t0, 3)
    return row, transient


def count_outcome(counts: StageCounts, item: Item, row: dict[str, Any], transient: bool) -> None:
    """Add one finished item to a stage's counts; a failure keeps its message (and says when a rerun retries)."""
    if row["ok"]:
        counts.done += 1
    else:
        counts.failed += 1
        note = " (not recorded; a rerun tries again)" if transient else ""
        counts.errors.append(f"{item.id}: {row['error']}{note}")


@dataclass
class _Stages:
    """One run's two stages over shared journals, limits, counts and progress."""

    paths: RunPaths
    pending: Pending
    generator: Generator | None
    judge: Judge | None
    judge_item: JudgeItem | None
    gen_limit: anyio.CapacityLimiter
    judge_limit: anyio.CapacityLimiter
    progress: RunProgress
    gen_counts: StageCounts = field(default_factory=StageCounts)
    judge_counts: StageCounts = field(default_factory=StageCounts)

    def start_progress(self, items: Sequence[Item]) -> None:
        """Count what earlier runs finished and show both stages."""
        if self.generator is not None:
            self.gen_counts.skipped = sum(1 for i in items if not self.pending.generation(i))
        self.progress.add_stage(
            "generate", total=len(items), done=self.gen_counts.skipped, enabled=self.generator is not None
        )
        if self.judge is not None:
            self.judge_counts.skipped = sum(1 for i in items if self.pending.settled(i))
        self.progress.add_stage(
            "judge", total=len(items), done=self.judge_counts.skipped, enabled=self.judge is not None
        )

    async def generate(self, generator: Generator, item: Item) -> None:
        async with self.gen_limit:
            row, transient = await generation_row(generator, item, self.paths)
            if not transient:  # transient failures stay pending, so a rerun picks them up
                await self.pending.generations.append(row)
        count_outcome(self.gen_counts, item, row, transient)
        self.progress.advance("generate", failed=not row["ok"])

    async def judge_one(self, judge: Judge, judge_item: JudgeItem, item: Item, generation: dict[str, Any]) -> None:
        async with self.judge_limit:
            row, transient = await judgement_row(judge, judge_item, item, generation, self.paths.root)
            if not transient:
                await self.pending.judgements.append(row)
        count_outcome(self.judge_counts, item, row, transient)
        self.progress.advance("judge", failed=not row["ok"])

    async def item(self, item: Item) -> None:
        """Generate the item when it needs it, then judge it when it was generated and needs judging."""
        generated_now = False
        if self.generator is not None and self.pending.generation(item):
            await self.generate(self.generator, item)
            generated_now = True
        if self.judge is None or self.judge_item is None:
            return
        gen = self.pending.generations.get(item.id)
        if gen is not None and gen.get("ok") and self.pending.judgement(item):
            await self.judge_one(self.judge, self.judge_item, item, gen)
        elif generated_now and gen is not None and not gen.get("ok"):
            self.progress.advance("judge")  # nothing to judge; the report scores the failure


async def run_stages(
    items: Sequence[Item],
    paths: RunPaths,
    *,
    generator: Generator | None,
    judge: Judge | None,
    judge_item: JudgeItem | None,
    concurrency: int = 4,
    judge_concurrency: int = 8,
    retry_failed: bool = False,
    progress: RunProgress | None = None,
) -> RunOutcome:
    """Generate (when ``generator``) and judge (when ``judge``) every item not yet done."""
    if judge is not None and judge_item is None:
        raise ValueError("a judge needs judge_item (how one item is judged)")
    started = time.monotonic()
    generations = await anyio.to_thread.run_sync(Journal, paths.generations)
    judgements = await anyio.to_thread.run_sync(Journal, paths.judgements)
    # A ground truth that was missing last time may exist now (a fixed --images-root): judge those again.
    recheck = await anyio.to_thread.run_sync(_ground_truth_found, items, judgements)
    stages = _Stages(
        paths=paths,
        pending=Pending(generations, judgements, retry_failed, frozenset(recheck), generating=generator is not None),
        generator=generator,
        judge=judge,
        judge_item=judge_item,
        gen_limit=anyio.CapacityLimiter(max(1, concurrency)),
        judge_limit=anyio.CapacityLimiter(max(1, judge_concurrency)),
        progress=progress or RunProgress(enabled=False),
    )
    stages.start_progress(items)
    with stages.progress:
        async with anyio.create_task_group() as tg:
            for item in items:
                tg.start_soon(stages.item, item)
    return RunOutcome(stages.gen_counts, stages.judge_counts, time.monotonic() - started)
