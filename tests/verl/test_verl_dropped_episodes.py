"""No silent loss: the replay buffer counts episodes missing from a batch and fails past the limit."""

from __future__ import annotations

import pytest

from verl_recipes.verl_ext.dropped_episodes import DropAccountingReplayBuffer, DropLedger, describe, dropped_in_batch


def test_only_failed_groups_count_each_as_its_missing_episodes() -> None:
    keys = ["a_0_0", "a_1_0", "a_2_0", "b_0_0", "b_0_1", "c_1_0"]  # b: one session, two outputs
    assert dropped_in_batch(["a", "b", "c"], keys, failed_uids=set(), n=3) == 0
    assert dropped_in_batch(["a", "b", "c"], keys, failed_uids={"b", "c"}, n=3) == 4
    # a failed group with every episode gone counts n; one that still has all (a later output failed) counts 1
    assert dropped_in_batch(["a", "d"], keys, failed_uids={"a", "d"}, n=3) == 1 + 3
    assert dropped_in_batch(["a"], keys, failed_uids={"d"}, n=3) == 0  # not selected: not this batch's


def test_the_ledger_keeps_errors_until_taken() -> None:
    ledger = DropLedger()
    ledger.record(describe(ValueError("Image features and image tokens do not match\ntraceback")))
    ledger.record("x" * 2000)
    assert ledger.take()[0] == "ValueError: Image features and image tokens do not match"
    assert ledger.take() == [] and ledger.count() == 2
    assert describe(RuntimeError()) == "RuntimeError"
    from ray.exceptions import RayTaskError

    wrapped = RayTaskError("VllmDoubleServer.generate", "traceback", RuntimeError("the rollout blew up"))
    assert describe(wrapped) == "RuntimeError: the rollout blew up"  # not Ray's "ray::Actor.method() (pid=…)"


def buffer(**sampler_kwargs: object) -> DropAccountingReplayBuffer:
    return DropAccountingReplayBuffer(
        trainer_mode="sync",
        trainer_config={},
        max_off_policy_threshold=None,
        max_off_policy_strategy="drop",
        sampler_kwargs=sampler_kwargs,
        refill_fn=lambda count: count,
    )


def test_sampler_settings_are_checked() -> None:
    made = buffer(rollout_n=6, val_n=2, train_batch_size=8)
    assert (made.rollout_n, made.val_n, made.max_dropped, made.gen_batch_size) == (6, 2, 0, 8)
    assert buffer(sync_refill_failed_groups=True, train_batch_size=8).gen_batch_size == 1  # verl's rule
    with pytest.raises(ValueError, match=r"unknown trainer.v1.sampler.sampler_kwargs: \['max_dropped'\]"):
        buffer(max_dropped=1)
    with pytest.raises(ValueError, match=">= 0"):
        buffer(max_dropped_episodes=-1)
    with pytest.raises(ValueError, match="sync buffer"):
        DropAccountingReplayBuffer(
            trainer_mode="colocate_async",
            trainer_config={},
            max_off_policy_threshold=None,
            max_off_policy_strategy="drop",
            sampler_kwargs={},
        )


def test_the_recipe_config_selects_it() -> None:
    from omegaconf import OmegaConf

    from verl_recipes.launch import compose

    config = compose("grpo", ["actor_rollout_ref.rollout.n=3", "data.train_batch_size=4"])
    sampler = OmegaConf.to_container(config.trainer.v1.sampler, resolve=True)
    assert isinstance(sampler, dict)
    assert sampler["custom_sampler"] == {
        "path": "pkg://verl_recipes.verl_ext.dropped_episodes",
        "name": "DropAccountingReplayBuffer",
    }
    assert sampler["sampler_kwargs"]["max_dropped_episodes"] == 0
    assert sampler["sampler_kwargs"]["rollout_n"] == 3 and sampler["sampler_kwargs"]["train_batch_size"] == 4
    assert sampler["sync_refill_failed_groups"] is False
