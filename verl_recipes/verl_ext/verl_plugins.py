"""What verl must import in each of its processes for the GRPO recipe (``model.external_lib``).

verl imports ``actor_rollout_ref.model.external_lib`` wherever it builds the model
config: in the trainer process (where advantages are computed) and in every
worker (where the FSDP engine is built). Importing this module

* swaps in the FSDP engines that freeze the vision tower (:mod:`verl_recipes.verl_ext.freeze_vision`);
* registers the ``grpo_masked`` advantage estimator (:mod:`verl_recipes.verl_ext.advantage`);
* mends mRoPE position ids of equal-length batches (:mod:`verl_recipes.verl_ext.position_ids`).
"""

from __future__ import annotations

from verl_recipes.verl_ext import advantage, freeze_vision, position_ids

position_ids.install()

__all__ = ["advantage", "freeze_vision", "position_ids"]
