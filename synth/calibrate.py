"""Stage 7: n rollouts of the SFT policy per RL candidate; keep prompts whose reward varies.

Each policy rollout runs through the policy's driver and is scored like a GRPO sample
(an answerless episode scores 0, as with ``invalid="zero"``). A prompt is kept for RL
when the reward's mean lies in ``[min_mean, max_mean]`` and its standard deviation is at
least ``min_std``: all-right or all-wrong groups give GRPO no advantage to learn from.
"""

from __future__ import annotations

import statistics

from synth.settings import CalibrateSettings


def band(scores: list[float], settings: CalibrateSettings) -> tuple[str | None, float, float]:
    """``(drop reason or None, mean, std)`` of one prompt's policy rewards."""
    mean = statistics.fmean(scores) if scores else 0.0
    std = statistics.pstdev(scores) if len(scores) > 1 else 0.0
    if mean < settings.min_mean:
        return "too hard for the policy (mean reward below band)", mean, std
    if mean > settings.max_mean:
        return "too easy for the policy (mean reward above band)", mean, std
    if std < settings.min_std:
        return "reward does not vary across rollouts", mean, std
    return None, mean, std
