"""``grpo_masked``: masked episodes leave GRPO's group statistics; verl finds the estimator by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow

LENGTH = 5


def batch(scores: list[float], lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-level rewards (the score on the last response token) and response masks."""
    rewards = torch.zeros(len(scores), LENGTH)
    mask = torch.zeros(len(scores), LENGTH, dtype=torch.int64)
    for i, (score, length) in enumerate(zip(scores, lengths, strict=True)):
        mask[i, :length] = 1
        rewards[i, max(length, 1) - 1] = score
    return rewards, mask


def per_sample(advantages: torch.Tensor, mask: torch.Tensor) -> list[float]:
    """The scalar advantage of each sample (0 for a fully masked one)."""
    return [float(row[m.bool()][0]) if m.any() else 0.0 for row, m in zip(advantages, mask, strict=True)]


@pytest.mark.parametrize("norm", [True, False])
def test_equals_verls_grpo_when_nothing_is_masked(norm: bool) -> None:
    from omegaconf import OmegaConf
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    from verl_recipes.verl_ext.advantage import grpo_masked_advantage

    rewards, mask = batch([0.9, 0.1, 0.5, 0.2, 0.7, 0.7], [5, 3, 4, 2, 5, 1])
    index = np.array(["a", "a", "a", "b", "b", "b"], dtype=object)
    ours, _ = grpo_masked_advantage(rewards, mask, index, OmegaConf.create({"norm_adv_by_std_in_grpo": norm}))
    stock, _ = compute_grpo_outcome_advantage(rewards, mask, index, norm_adv_by_std_in_grpo=norm)
    assert torch.allclose(ours, stock, atol=1e-6)


def test_masked_samples_are_left_out_of_their_group() -> None:
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    from verl_recipes.verl_ext.advantage import grpo_masked_advantage

    # Group a: two masked failures (score 0) among four; group b: one survivor; group c: all masked.
    scores = [0.0, 0.8, 0.0, 0.4, 0.6, 0.0, 0.0, 0.0, 0.0]
    lengths = [0, 4, 0, 2, 3, 0, 0, 0, 0]
    index = np.array(list("aaaabbbcc"), dtype=object)
    rewards, mask = batch(scores, lengths)
    advantages, returns = grpo_masked_advantage(rewards, mask, index)

    # Group a is normalised as if only its two unmasked samples existed.
    kept = [1, 3]
    alone, _ = compute_grpo_outcome_advantage(rewards[kept], mask[kept], index[kept])
    assert torch.allclose(advantages[kept], alone, atol=1e-6)
    values = per_sample(advantages, mask)
    assert values[1] > 0 > values[3] and values[1] == pytest.approx(-values[3])
    # Stock GRPO would have pulled group a's baseline down with the masked zeros.
    stock, _ = compute_grpo_outcome_advantage(rewards, mask, index)
    assert per_sample(stock, mask)[3] > 0
    # Masked samples, a lone survivor and an all-masked group get no advantage.
    assert values[4] == 0.0 and not advantages[[0, 2, 5, 6, 7, 8]].any()
    assert returns is advantages


def test_verl_runs_it_by_name_after_importing_the_external_lib(tmp_path: Path) -> None:
    """The GRPO config's external_lib registers the estimator the config selects."""
    from verl import DataProto
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn
    from verl.trainer.ppo.ray_trainer import compute_advantage
    from verl.utils.import_utils import import_external_libs

    from verl_recipes.launch import compose, plan_grpo
    from verl_recipes.verl_ext.advantage import grpo_masked_advantage

    plan = plan_grpo(
        ["data.train_files=/d/rl.parquet"], tool_server="http://t/mcp", judge_url="http://j/v1", run_dir=tmp_path
    )
    config = compose("grpo", plan.overrides)
    assert config.algorithm.adv_estimator == "grpo_masked"
    import_external_libs(config.actor_rollout_ref.model.external_lib)  # what verl's model config does
    assert get_adv_estimator_fn(config.algorithm.adv_estimator) is grpo_masked_advantage

    rewards, mask = batch([1.0, 0.0, 0.2, 0.6], [3, 0, 2, 4])
    data = DataProto.from_dict(
        tensors={"token_level_rewards": rewards, "response_mask": mask},
        non_tensors={"uid": np.array(["x", "x", "x", "y"], dtype=object)},
    )
    out = compute_advantage(data, adv_estimator=config.algorithm.adv_estimator, config=config.algorithm)
    values = per_sample(out.batch["advantages"], mask)
    assert values[1] == 0.0 and values[3] == 0.0 and values[0] == pytest.approx(-values[2]) and values[0] > 0
