"""The paid stages as one async pipeline: every prompt moves on as soon as its previous stage is done.

Prompts flow through gate (search necessity) -> k rollouts -> ground truth -> judge
and calibration (concurrently), up to ``max_items_in_flight`` at once; each service
bounds its own concurrency, so a slow renderer stays busy while the teacher works on
later prompts. Every unit is looked up in its journal first and journaled when done.

Failures: a service error (unreachable, timed out, refusing after retries) is not
journaled, so a rerun retries the unit; the run reports how many and why and exits
non-zero. A bad answer (garbage from the judge, an unparseable trajectory) is journaled
with its reason: it is the item's result, and a rerun does not pay for it again.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from benchmark.judge import JudgeError
from benchmark.progress import RunProgress
from policy.mcp_client import McpConnectionError
from policy.mcp_tools import McpTools
from synth.funnel import Journals, Outcome, keys, upstream
from synth.gate import Benchmark, closed_book_plan, judge_plan, offline_gate
from synth.ground_truth import draw, judge_truth
from synth.items import Item
from synth.journal import DROPPED, KEPT, RunFolder
from synth.judge import score
from synth.services import ChatService, Costs, CountingJudge, RunJudges, ServiceError, judge_settings
from synth.settings import SynthSettings
from synth.trajectories import TRANSIENT, run_rollout
from verl_recipes.reward import RewardFailure, RewardSettings

log = logging.getLogger(__name__)

PAID_STAGES = ("gate", "trajectories", "ground_truth", "judge", "calibrate")


@dataclass
class Failures:
    """Units that failed on a service this run (not journaled; a rerun retries them)."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def add(self, stage: str, detail: str) -> None:
        self.counts[stage] += 1
        self.examples.setdefault(stage, detail[:300])

    def summary(self) -> str:
        parts = [f"{n} at {stage} ({self.examples[stage]})" for stage, n in self.counts.items()]
        return "service failures, not journaled (rerun to retry): " + "; ".join(parts)


@dataclass
class Services:
    teacher: ChatService | None
    policy: ChatService | None
    judge: CountingJudge | None
    judges: RunJudges | None
    tools: McpTools | None
    render: RewardSettings | None
    costs: Costs


@contextlib.asynccontextmanager
async def open_services(settings: SynthSettings, tools_url: str | None, costs: Costs) -> AsyncIterator[Services]:
    """Open what is configured; a missing service is ``None`` (its stages are skipped and say so)."""
    async with contextlib.AsyncExitStack() as stack:
        teacher = ChatService("teacher", settings.teacher, costs) if settings.teacher.given else None
        policy = ChatService("policy", settings.policy, costs) if settings.policy.given else None
        for service in (teacher, policy):
            if service is not None:
                stack.push_async_callback(service.aclose)
        judge = CountingJudge(judge_settings(settings.judge), costs) if settings.judge.given else None
        if judge is not None:
            stack.push_async_callback(judge.aclose)
        tools = None
        if tools_url is not None:
            try:
                tools = await stack.enter_async_context(McpTools.connect(tools_url))
            except McpConnectionError as exc:
                raise ServiceError(f"tool server: {exc}") from None
        render = None
        if settings.render_url or tools_url:
            render = RewardSettings(render_mcp_url=settings.render_url or tools_url, render_attempts=2)
        yield Services(teacher, policy, judge, RunJudges(judge) if judge else None, tools, render, costs)


class Pipeline:
    def __init__(
        self, folder: RunFolder, settings: SynthSettings, services: Services, bench: Benchmark, progress: RunProgress
    ) -> None:
        self.folder = folder
        self.settings = settings
        self.services = services
        self.bench = bench
        self.progress = progress
        self.journals = Journals.open(folder)
        self.failures = Failures()
        self.skipped: list[str] = []
        self.stage_seconds: dict[str, float] = {}

    async def _timed(self, stage: str, work: Callable[[], Awaitable[Any]]) -> Any:
        started = time.perf_counter()
        try:
            return await work()
        finally:
            self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + time.perf_counter() - started

    # ---------------------------------------------------------------- stages

    async def necessity(self, item: Item) -> None:
        teacher, judge = self.services.teacher, self.services.judge
        inputs = keys(item, self.settings)["necessity"]
        if self.journals.necessity.get(item.digest, inputs) is not None or teacher is None or judge is None:
            return
        try:
            plan = await teacher_plan(item, teacher)
            value = await judge_plan(item, plan, judge)
        except JudgeError as exc:
            if exc.transient:
                self.failures.add("gate", str(exc))
                return
            await self.journals.necessity.record(item.digest, inputs, item.id, DROPPED, f"judge: {exc}", score=0.0)
            return
        except ServiceError as exc:
            self.failures.add("gate", str(exc))
            return
        await self.journals.necessity.record(item.digest, inputs, item.id, KEPT, None, score=value, plan=plan)

    async def rollout(self, item: Item, index: int) -> None:
        assert self.services.teacher is not None and self.services.tools is not None
        inputs = keys(item, self.settings)["rollout"](index)
        unit = f"{item.digest}/r{index}"
        if self.journals.rollouts.get(unit, inputs) is not None:
            self.progress.advance("rollouts")
            return
        seed = self.settings.trajectories.seed + index
        done = await run_rollout(item, index, seed, self.services.teacher, self.services.tools, self.folder.images)
        summary = done["summary"]
        if summary["termination"] in TRANSIENT:
            self.failures.add("trajectories", str(summary.get("detail")))
            self.progress.advance("rollouts", failed=True)
            return
        status = KEPT if summary["valid"] else DROPPED
        reason = None if summary["valid"] else f"no valid answer ({summary['termination']})"
        await self.journals.rollouts.record(unit, inputs, item.id, status, reason, **done)
        self.progress.advance("rollouts")

    async def truth(self, item: Item) -> None:
        inputs = keys(item, self.settings)["truth"]
        if self.journals.truth.get(item.digest, inputs) is not None:
            return
        render, judge = self.services.render, self.services.judge
        if render is None or judge is None:
            return
        settings = render.model_copy(
            update={"render_width": self.settings.truth.width, "render_height": self.settings.truth.height}
        )
        try:
            image = await draw(item, settings)
        except RewardFailure as exc:
            self.failures.add("ground_truth", str(exc))
            return
        self.services.costs.add("renders")
        path = self.folder.root / "truth" / f"{item.digest}.png"
        await anyio.Path(path.parent).mkdir(parents=True, exist_ok=True)
        await anyio.Path(path).write_bytes(image)
        relative = str(path.relative_to(self.folder.root))
        try:
            value = await judge_truth(item, image, judge)
        except JudgeError as exc:
            if exc.transient:
                self.failures.add("ground_truth", str(exc))
                return
            await self.journals.truth.record(
                item.digest, inputs, item.id, DROPPED, f"judge answered garbage: {exc}", path=relative, score=0.0
            )
            return
        await self.journals.truth.record(item.digest, inputs, item.id, KEPT, None, path=relative, score=value)

    async def judge_rollout(self, item: Item, row: dict[str, Any], truth: dict[str, Any]) -> None:
        assert self.services.render is not None and self.services.judges is not None
        inputs = keys(item, self.settings)["judge"](row["id"], truth["id"])
        if self.journals.judge.get(row["unit"], inputs) is not None:
            return
        truth_path = self.folder.root / truth["data"]["path"]
        try:
            scores = await score(row["data"]["record"], truth_path, self.services.render, self.services.judges)
        except RewardFailure as exc:
            if "unparseable" in str(exc):
                await self.journals.judge.record(
                    row["unit"], inputs, item.id, DROPPED, f"judge answered garbage: {exc}"
                )
            else:
                self.failures.add("judge", str(exc))
            return
        finally:
            self.services.costs.add("renders")
        await self.journals.judge.record(row["unit"], inputs, item.id, KEPT, None, scores=scores)

    async def calibrate_rollout(self, item: Item, index: int, truth: dict[str, Any]) -> None:
        policy, tools = self.services.policy, self.services.tools
        assert policy is not None and tools is not None
        assert self.services.render is not None and self.services.judges is not None
        inputs = keys(item, self.settings)["calibrate"](index, truth["id"])
        unit = f"{item.digest}/c{index}"
        if self.journals.calibrate.get(unit, inputs) is not None:
            return
        done = await run_rollout(
            item, index, self.settings.trajectories.seed + index, policy, tools, self.folder.images
        )
        summary = done["summary"]
        if summary["termination"] in TRANSIENT:
            self.failures.add("calibrate", str(summary.get("detail")))
            return
        value = 0.0  # an answerless episode scores 0, as in GRPO (invalid="zero")
        if summary["valid"]:
            truth_path = self.folder.root / truth["data"]["path"]
            try:
                scores = await score(done["record"], truth_path, self.services.render, self.services.judges)
            except RewardFailure as exc:
                if "unparseable" not in str(exc):
                    self.failures.add("calibrate", str(exc))
                    return
                await self.journals.calibrate.record(
                    unit, inputs, item.id, DROPPED, f"judge answered garbage: {exc}", score=None
                )
                return
            finally:
                self.services.costs.add("renders")
            value = scores["score"]
        await self.journals.calibrate.record(
            unit, inputs, item.id, KEPT, None, score=value, termination=summary["termination"]
        )

    # ---------------------------------------------------------------- one item

    async def item(self, item: Item) -> None:
        s = self.settings
        outcome = Outcome(item)
        if s.gate.closed_book != "off":
            await self._timed("gate", lambda: self.necessity(item))
        self.progress.advance("gate")
        upstream(item, outcome, s, self.journals, self.folder, self.bench)
        if outcome.pending == "trajectories" and self.services.teacher and self.services.tools:
            async with anyio.create_task_group() as group:
                for index in range(s.trajectories.rollouts):
                    group.start_soon(self._timed, "trajectories", lambda i=index: self.rollout(item, i))
            outcome = upstream(item, Outcome(item), s, self.journals, self.folder, self.bench)
        if outcome.pending == "ground_truth":
            await self._timed("ground_truth", lambda: self.truth(item))
            outcome = upstream(item, Outcome(item), s, self.journals, self.folder, self.bench)
        self.progress.advance("truth")
        if outcome.dropped_at or outcome.pending is not None or outcome.truth is None:
            self.progress.advance("judge")
            return
        truth = outcome.truth
        async with anyio.create_task_group() as group:
            if self.services.judges is not None and self.services.render is not None:
                for row in outcome.rollouts:
                    if row["data"]["summary"]["valid"]:
                        group.start_soon(self._timed, "judge", lambda r=row: self.judge_rollout(item, r, truth))
            if self.services.policy is not None and self.services.judges is not None:
                for index in range(s.calibrate.rollouts):
                    group.start_soon(self._timed, "calibrate", lambda i=index: self.calibrate_rollout(item, i, truth))
        self.progress.advance("judge")

    async def run(self, items: list[Item]) -> None:
        s = self.settings
        gate = offline_gate(items, s.gate, self.bench)
        todo = [item for item in items if gate[item.id] is None]
        self.note_skips()
        self.progress.add_stage("gate", total=len(todo))
        self.progress.add_stage("rollouts", total=len(todo) * s.trajectories.rollouts)
        self.progress.add_stage("truth", total=len(todo))
        self.progress.add_stage("judge", total=len(todo))
        slots = anyio.Semaphore(s.max_items_in_flight)

        async def one(item: Item) -> None:
            async with slots:
                await self.item(item)

        async with anyio.create_task_group() as group:
            for item in todo:
                group.start_soon(one, item)

    def note_skips(self) -> None:
        s, sv = self.settings, self.services
        if s.gate.closed_book != "off" and (sv.teacher is None or sv.judge is None):
            self.skipped.append("gate: search-necessity check skipped (needs the teacher and the judge)")
        if sv.teacher is None:
            self.skipped.append("trajectories: skipped (no teacher: --teacher-url/--teacher-model)")
        if sv.judge is None:
            self.skipped.append("ground_truth, judge: skipped (no judge: --judge-url/--judge-model)")
        if sv.policy is None:
            self.skipped.append("calibrate: skipped (no policy: --policy-url/--policy-model); RL prompts uncalibrated")


async def teacher_plan(item: Item, teacher: ChatService) -> str:
    from policy.chat import ChatModelError

    try:
        return await closed_book_plan(item, teacher)
    except ChatModelError as exc:
        raise ServiceError(f"teacher: {exc}") from None
