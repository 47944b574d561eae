"""GRPO that leaves masked episodes out of the group statistics (``algorithm.adv_estimator=grpo_masked``).

verl 0.9.1 gives a custom reward function no way to drop a sample: whatever it
returns is a score, and stock GRPO normalises every score of a group together.
An episode whose render or judgement failed, or (with ``--invalid mask``) one
without a valid answer, should teach nothing and also not move its siblings'
baseline. The seam verl does offer is its advantage-estimator registry
(``core_algos.register_adv_est``), whose functions receive each sample's
``response_mask``; the ``gen_searcher`` agent loop zeroes that mask for such
episodes (``score_in_loop``, ``mask_invalid``). This estimator, the GRPO
recipe's default, is GRPO over the samples whose mask is not all zero:

* a masked sample gets advantage 0 and does not enter its group's mean or std;
* the other samples of the group are normalised among themselves, exactly as
  stock GRPO would with the masked ones absent;
* a group left with a single unmasked sample has no baseline: advantage 0 (like
  a group whose scores are all equal).

With nothing masked the result equals verl's ``grpo``. verl computes advantages
in its trainer process (the ``TaskRunner`` actor), which imports
``actor_rollout_ref.model.external_lib``; the GRPO config names
:mod:`verl_recipes.verl_ext.verl_plugins`, which imports this module, so the name is
registered where it is needed. An unregistered name fails loudly in verl
("Unknown advantage estimator").

Caveat: if every sample of a PPO mini-batch is masked, verl's ``token-mean`` loss
divides by zero tokens; with 6 rollouts x 8 prompts per mini-batch that needs 48
failed episodes in a row.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import torch
from verl.trainer.ppo.core_algos import register_adv_est

NAME = "grpo_masked"


def grpo_masked_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: np.ndarray,
    config: Any = None,
    epsilon: float = 1e-6,
    **_: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Group-relative advantages over unmasked samples; ``(advantages, returns)``, both ``(bs, len)``."""
    norm_by_std = bool(config.get("norm_adv_by_std_in_grpo", True)) if config is not None else True
    with torch.no_grad():
        scores = token_level_rewards.sum(dim=-1)
        kept = response_mask.sum(dim=-1) > 0
        groups: dict[Any, list[int]] = defaultdict(list)
        for i in range(scores.shape[0]):
            if kept[i]:
                groups[index[i]].append(i)
        scalars = torch.zeros_like(scores)
        for members in groups.values():
            if len(members) < 2:
                continue
            group = scores[members]
            centred = group - group.mean()
            scalars[members] = centred / (group.std() + epsilon) if norm_by_std else centred
        advantages = scalars.unsqueeze(-1) * response_mask
    return advantages, advantages


register_adv_est(NAME)(grpo_masked_advantage)
