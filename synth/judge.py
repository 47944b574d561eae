"""Stage 5: each valid rollout's plan rendered with the training generator and scored with the dual reward.

This is :func:`verl_recipes.reward.score_episode`, the GRPO reward itself: render
``gen_prompt`` with the first references through the ``render`` tool, K-Score against
the ground truth and the text rubric, combined as ``(1 - c) * image + c * text``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gen_searcher_core.episode_record import EpisodeRecord
from verl_recipes.reward import JudgeRegistry, RewardSettings, score_episode


async def score(
    record: dict[str, Any], truth: Path, settings: RewardSettings, judges: JudgeRegistry
) -> dict[str, float]:
    """The dual reward of one valid episode (its stored record); raises :class:`~verl_recipes.reward.RewardFailure`."""
    return await score_episode(settings, EpisodeRecord.model_validate(record), str(truth), judges=judges)
