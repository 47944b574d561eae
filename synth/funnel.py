"""Every item's fate, recomputed from the journals and the current settings.

The paid stages journal raw results (plans' scores, rollouts, images, rewards); the
decisions (thresholds, gates, bands, the split) are applied here, offline. The
pipeline, ``status``, ``select``/``split``/``export`` all use :func:`evaluate`, so a
threshold change is seen everywhere without a single service call.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from synth.calibrate import band
from synth.gate import Benchmark, offline_gate
from synth.ground_truth import copy_or_contamination
from synth.items import Item, digest
from synth.journal import RunFolder, StageJournal
from synth.select import choose
from synth.settings import SynthSettings
from synth.split import Candidate, assign

STAGES = ("prompts", "gate", "trajectories", "ground_truth", "judge", "select", "calibrate", "split", "export")


def keys(item: Item, settings: SynthSettings) -> dict[str, Any]:
    """The journal inputs digest of every paid stage for ``item`` (upstream results enter as row ids)."""
    from policy.prompts import build_system_prompt

    teacher, judge, policy = settings.teacher, settings.judge, settings.policy
    protocol = digest(build_system_prompt())
    return {
        "necessity": digest(["necessity/1", teacher.model, judge.model]),
        "rollout": lambda i: digest(
            [
                "rollout/1",
                teacher.model,
                settings.trajectories.seed + i,
                teacher.temperature,
                teacher.max_tokens,
                protocol,
            ]
        ),
        "truth": digest(["truth/1", judge.model, settings.truth.width, settings.truth.height]),
        "judge": lambda rollout_id, truth_id: digest(["judge/1", rollout_id, truth_id, judge.model]),
        "calibrate": lambda i, truth_id: digest(
            [
                "calibrate/1",
                policy.model,
                settings.trajectories.seed + i,
                policy.temperature,
                protocol,
                truth_id,
                judge.model,
            ]
        ),
    }


@dataclass
class Outcome:
    item: Item
    stage: str = "prompts"  # the last stage passed
    dropped_at: str | None = None
    reason: str | None = None
    pending: str | None = None  # a stage not yet run for it (service missing, failed, or not reached)
    flags: list[str] = field(default_factory=list)
    rollouts: list[dict[str, Any]] = field(default_factory=list)  # journal rows
    scores: dict[int, dict[str, Any]] = field(default_factory=dict)
    problems: dict[int, str | None] = field(default_factory=dict)
    truth: dict[str, Any] | None = None
    chosen: int | None = None
    select_reason: str | None = None
    calibration: dict[str, Any] | None = None
    split: str | None = None

    def drop(self, stage: str, reason: str) -> Outcome:
        self.dropped_at, self.reason = stage, reason
        return self

    @property
    def rl(self) -> bool:
        """Usable as an RL prompt: in the calibration band, or calibration not run (flagged)."""
        return self.calibration is None or not self.calibration.get("reason")

    @property
    def kept(self) -> bool:
        return self.dropped_at is None and self.pending is None


@dataclass
class Journals:
    necessity: StageJournal
    rollouts: StageJournal
    truth: StageJournal
    judge: StageJournal
    calibrate: StageJournal

    @classmethod
    def open(cls, folder: RunFolder) -> Journals:
        return cls(*(folder.journal(name) for name in ("necessity", "rollouts", "truth", "judge", "calibrate")))


def upstream(
    item: Item,
    outcome: Outcome,
    settings: SynthSettings,
    journals: Journals,
    folder: RunFolder,
    bench: Benchmark,
    flagged_ok: set[str] | None = None,
) -> Outcome:
    """Apply the per-item decisions up to ``ground_truth`` (journal reads only).

    ``flagged_ok``: the closed-book prompts within ``closed_book_max_share`` (``None``: all of them,
    as in the pipeline, which has no view of the whole run; :func:`evaluate` applies the cap).
    """
    k = keys(item, settings)
    gate = settings.gate
    if gate.closed_book != "off":
        row = journals.necessity.get(item.digest, k["necessity"])
        if row is None:
            outcome.pending = "gate"
            return outcome
        if row["data"]["score"] >= gate.closed_book_threshold:
            if gate.closed_book == "drop":
                return outcome.drop("gate", "answerable without search")
            if flagged_ok is not None and item.id not in flagged_ok:
                return outcome.drop("gate", "answerable without search (over the flagged share)")
            outcome.flags.append("closed-book")
    outcome.stage = "gate"
    rows = [
        journals.rollouts.get(f"{item.digest}/r{i}", k["rollout"](i)) for i in range(settings.trajectories.rollouts)
    ]
    if any(r is None for r in rows):
        outcome.pending = "trajectories"
        return outcome
    outcome.rollouts = [r for r in rows if r is not None]
    valid = [r for r in outcome.rollouts if r["data"]["summary"]["valid"]]
    if not valid:
        terms = Counter(str(r["data"]["summary"]["termination"]) for r in outcome.rollouts)
        return outcome.drop("trajectories", f"no rollout answered ({terms.most_common(1)[0][0]})")
    outcome.stage = "trajectories"
    truth = journals.truth.get(item.digest, k["truth"])
    if truth is None:
        outcome.pending = "ground_truth"
        return outcome
    outcome.truth = truth
    if truth["status"] == "dropped":
        return outcome.drop("ground_truth", str(truth["reason"]))
    refs = [folder.root / p for r in outcome.rollouts for p in r["data"]["summary"]["reference_paths"]]
    copied = copy_or_contamination(
        (folder.root / truth["data"]["path"]).read_bytes(), refs, bench, gate.image_hash_distance
    )
    if copied:
        return outcome.drop("ground_truth", copied)
    if truth["data"]["score"] < settings.truth.min_judge_score:
        return outcome.drop("ground_truth", "ground truth rejected by the judge")
    outcome.stage = "ground_truth"
    return outcome


def _flagged_within_share(
    items: list[Item], gate_reasons: dict[str, str | None], settings: SynthSettings, journals: Journals
) -> set[str]:
    """The closed-book prompts kept flagged: the first ones (in input order) up to the share allowed."""
    gate = settings.gate
    if gate.closed_book != "flag":
        return set()
    passed = [i for i in items if gate_reasons[i.id] is None]
    necessity = keys(passed[0], settings)["necessity"] if passed else ""
    flagged = [
        i.id
        for i in passed
        if (row := journals.necessity.get(i.digest, necessity)) is not None
        and row["data"]["score"] >= gate.closed_book_threshold
    ]
    allowed = int(gate.closed_book_max_share * (len(passed) - len(flagged)) / max(1e-9, 1 - gate.closed_book_max_share))
    return set(flagged[: max(0, allowed)])


def evaluate(folder: RunFolder, items: list[Item], settings: SynthSettings, bench: Benchmark) -> list[Outcome]:
    """Every item's outcome under ``settings``."""
    journals = Journals.open(folder)
    gate_reasons = offline_gate(items, settings.gate, bench)
    flagged_ok = _flagged_within_share(items, gate_reasons, settings, journals)
    outcomes: list[Outcome] = []
    for item in items:
        outcome = Outcome(item)
        outcomes.append(outcome)
        if gate_reasons[item.id]:
            outcome.drop("gate", str(gate_reasons[item.id]))
            continue
        upstream(item, outcome, settings, journals, folder, bench, flagged_ok)
        if outcome.dropped_at or outcome.pending:
            continue
        k = keys(item, settings)
        truth_id = outcome.truth["id"] if outcome.truth else ""
        entries: list[tuple[int, dict[str, Any], dict[str, Any] | None]] = []
        missing = False
        for row in outcome.rollouts:
            index, summary = row["data"]["rollout"], row["data"]["summary"]
            scored = None
            if summary["valid"]:
                judged = journals.judge.get(row["unit"], k["judge"](row["id"], truth_id))
                missing = missing or judged is None
                if judged is not None:
                    scored = (
                        judged["data"]["scores"] if judged["status"] == "kept" else {"judge_failed": judged["reason"]}
                    )
                if scored is not None and "judge_failed" not in scored:
                    outcome.scores[index] = scored
            entries.append((index, summary, scored))
        if missing:
            outcome.pending = "judge"
            continue
        outcome.stage = "judge"
        outcome.chosen, outcome.select_reason, outcome.problems = choose(entries, settings.select)
        if settings.policy.given:
            calib = [
                journals.calibrate.get(f"{item.digest}/c{i}", k["calibrate"](i, truth_id))
                for i in range(settings.calibrate.rollouts)
            ]
            if any(c is None for c in calib):
                outcome.pending = "calibrate"
                continue
            rewards = [float(c["data"]["score"]) for c in calib if c is not None and c["status"] == "kept"]
            why, mean, std = band(rewards, settings.calibrate)
            if len(rewards) < 2:
                why = "calibration rollouts could not be judged"
            outcome.calibration = {"mean": mean, "std": std, "rewards": rewards, "reason": why}
        else:
            outcome.flags.append("uncalibrated")
        if outcome.chosen is None and not outcome.rl:
            reasons = [outcome.select_reason, (outcome.calibration or {}).get("reason")]
            outcome.drop("calibrate" if outcome.calibration else "select", "; ".join(r for r in reasons if r))
    candidates = [
        Candidate(o.item.id, o.item.category, o.item.entity, o.chosen is not None, o.rl)
        for o in outcomes
        if o.kept and o.stage == "judge"
    ]
    splits = assign(candidates, settings.split)
    for outcome in outcomes:
        if outcome.item.id not in splits:
            continue
        split, why = splits[outcome.item.id]
        if split is None:
            outcome.drop("split", str(why))
        else:
            outcome.split, outcome.stage = split, "split"
    return outcomes


def funnel(outcomes: list[Outcome]) -> dict[str, Any]:
    """Counts per stage: entered, kept, dropped (with reasons) and pending.

    ``select`` (an SFT trajectory) and ``calibrate`` (an RL prompt) are two branches over the
    judged prompts: a prompt dropped by one may still be kept by the other; it leaves the
    funnel only when it has neither.
    """
    rows: dict[str, dict[str, Any]] = {s: {"in": 0, "kept": 0, "dropped": Counter(), "pending": 0} for s in STAGES}
    linear = ("prompts", "gate", "trajectories", "ground_truth", "judge")
    for o in outcomes:
        reached_judge = True
        for stage in linear:
            row = rows[stage]
            row["in"] += 1
            if o.dropped_at == stage:
                row["dropped"][str(o.reason)] += 1
            elif o.pending == stage:
                row["pending"] += 1
            else:
                row["kept"] += 1
                continue
            reached_judge = False
            break
        if not reached_judge:
            continue
        rows["select"]["in"] += 1
        if o.chosen is not None:
            rows["select"]["kept"] += 1
        else:
            rows["select"]["dropped"][str(o.select_reason)] += 1
        rows["calibrate"]["in"] += 1
        if o.pending == "calibrate":
            rows["calibrate"]["pending"] += 1
            continue
        if o.calibration and o.calibration.get("reason"):
            rows["calibrate"]["dropped"][str(o.calibration["reason"])] += 1
        else:
            rows["calibrate"]["kept"] += 1
        if o.dropped_at in ("select", "calibrate"):
            continue
        rows["split"]["in"] += 1
        if o.split is None:
            rows["split"]["dropped"][str(o.reason)] += 1
            continue
        rows["split"]["kept"] += 1
        rows["export"]["in"] += 1
        rows["export"]["kept"] += 1
    splits = Counter(o.split for o in outcomes if o.split)
    return {
        "stages": {s: {**r, "dropped": dict(r["dropped"].most_common())} for s, r in rows.items()},
        "splits": dict(sorted(splits.items())),
        "flags": dict(Counter(f for o in outcomes for f in o.flags)),
    }
