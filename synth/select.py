"""Stage 6: one trajectory per prompt, by documented gates, offline.

A rollout qualifies when it answered within the ordinary calls (not forced), names
``min_references``..``max_references`` references, made at least ``min_image_searches``
image searches and ``min_tool_calls`` tool calls, wrote no tool response itself, fits the
SFT token limit, and its reward parts reach the thresholds. The best qualifying rollout
wins; ties go to fewer tool calls, then the lower rollout index. Everything read here is
in the journals: selecting again makes no model, tool or render call.
"""

from __future__ import annotations

from typing import Any

from synth.settings import SelectSettings


def rollout_problem(summary: dict[str, Any], scores: dict[str, Any] | None, settings: SelectSettings) -> str | None:
    """Why one rollout cannot be the item's trajectory (``None``: it can)."""
    if not summary.get("valid"):
        return f"no valid answer ({summary.get('termination')})"
    if summary.get("termination") != "answered":
        return "answered only when forced"
    if summary.get("hallucinated"):
        return "hallucinated a tool response"
    if not settings.min_references <= summary.get("references", 0) <= settings.max_references:
        return "references out of range"
    if summary.get("image_searches", 0) < settings.min_image_searches:
        return "too few image searches"
    if summary.get("tool_calls", 0) < settings.min_tool_calls:
        return "too few tool calls"
    if summary.get("tokens_est", 0) > settings.max_tokens:
        return "too long for SFT"
    if scores is None:
        return "not scored"
    if "judge_failed" in scores:
        return "judge answered garbage"
    if scores["score"] < settings.min_score:
        return "reward below threshold"
    if scores["image_score"] < settings.min_image_score:
        return "image score below threshold"
    if scores["text_score"] < settings.min_text_score:
        return "text score below threshold"
    return None


def choose(
    rollouts: list[tuple[int, dict[str, Any], dict[str, Any] | None]], settings: SelectSettings
) -> tuple[int | None, str | None, dict[int, str | None]]:
    """``(chosen rollout, item drop reason, {rollout: problem})`` from ``(index, summary, scores)``."""
    problems = {index: rollout_problem(summary, scores, settings) for index, summary, scores in rollouts}
    good = [(index, summary, scores) for index, summary, scores in rollouts if problems[index] is None]
    if not good:
        # the reason of the rollouts that got furthest: those with an answer, when there are any
        answered = [problems[i] for i, summary, _ in rollouts if summary.get("valid")]
        order = [p for p in (answered or list(problems.values())) if p]
        reason = f"no rollout passed ({max(sorted(set(order)), key=order.count)})" if order else "no rollouts"
        return None, reason, problems
    best = max(good, key=lambda r: (float(r[2]["score"]) if r[2] else 0.0, -r[1].get("tool_calls", 0), -r[0]))
    return best[0], None, problems
