"""No silent loss: episodes that raised inside the rollout are counted and, past a limit, fail the step.

verl 0.9.1's v1 trainer logs an episode that raises in its agent-loop worker, marks the
episode's group ``failure``, trains on the group's other episodes and pads the batch up to
size: the run goes on and exits 0 with nothing counting the loss. The recipe's replay buffer
(``trainer.v1.sampler.custom_sampler``, set in ``configs/grpo.yaml``) is verl's own sync
buffer with one addition: every batch it hands out is checked for missing episodes.

* the count goes into the step's metrics (``training/rollout_failure/dropped_episodes``;
  ``validation/...`` for validation batches) and into the run log;
* past ``max_dropped_episodes`` per batch (``trainer.v1.sampler.sampler_kwargs``, default 0:
  any dropped episode) the step fails with :class:`EpisodesDropped`, naming the episodes'
  errors that the ``gen_searcher`` loop reported to the :class:`DropLedger` actor.

verl's own ``trainer.v1.sampler.sync_refill_failed_groups`` (off by default, kept off by the
recipe) replaces groups in which *every* episode failed with fresh prompts; such groups are then
counted by verl's ``training/rollout_failure/evicted_samples`` instead, and only partly failed
groups reach this check.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

log = logging.getLogger(__name__)

#: The named Ray actor the agent loops report their episodes' errors to (one per training job).
LEDGER_NAME = "gen_searcher_dropped_episodes"
#: How much of each error the ledger keeps (the full traceback is in the agent-loop worker's log).
ERROR_CHARS = 500
METRIC = "rollout_failure/dropped_episodes"


class EpisodesDropped(RuntimeError):
    """More episodes of a batch raised than ``max_dropped_episodes`` allows."""


class DropLedger:
    """A Ray actor collecting the errors of episodes that raised, until the trainer takes them."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.total = 0

    def record(self, error: str) -> None:
        self.total += 1
        if len(self.errors) < 100:  # enough to name them; the worker logs have all
            self.errors.append(error[:ERROR_CHARS])

    def take(self) -> list[str]:
        taken, self.errors = self.errors, []
        return taken

    def count(self) -> int:
        return self.total


def describe(exc: BaseException) -> str:
    """One line naming an episode's error (type and first line of its message), unwrapped from Ray's
    ``RayTaskError`` (whose own first line only names the actor that raised)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and cause is not exc:
        return describe(cause)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"[:ERROR_CHARS] if first else type(exc).__name__


async def report_dropped_episode(exc: BaseException) -> None:
    """Tell the training job's :class:`DropLedger` that an episode raised ``exc`` (logged either way).

    Outside a training job (no Ray, or no ledger) the error is only logged; the count the step
    checks comes from the batch itself, so a missing ledger loses the message, never the count.
    """
    text = describe(exc)
    log.error("episode dropped: %s", text)
    import ray

    if not ray.is_initialized():
        return
    try:
        ledger = ray.get_actor(LEDGER_NAME)
    except ValueError:
        return
    try:
        await ledger.record.remote(text)
    except Exception as report_error:  # noqa: BLE001 - the episode's own error is what the caller re-raises
        log.warning("the dropped episode could not be reported to the ledger: %s", describe(report_error))


def dropped_in_batch(
    selected_uids: Iterable[str], trajectory_keys: Iterable[str], failed_uids: set[str], n: int
) -> int:
    """Episodes missing from a batch: ``n`` per failed group, less the episodes it still has.

    Keys are verl's ``{uid}_{session}_{index}``; a group that finished without error has all of
    its episodes (verl marks a group ``failure`` when any of them raised), so only failed groups
    are counted, each as at least one.
    """
    sessions: dict[str, set[str]] = {}
    for key in trajectory_keys:
        uid, session, *_ = key.split("_")
        sessions.setdefault(uid, set()).add(session)
    return sum(max(1, n - len(sessions.get(uid, ()))) for uid in selected_uids if uid in failed_uids)


class DropAccountingReplayBuffer(ReplayBuffer):
    """verl's sync replay buffer that counts the episodes missing from each batch (see the module docstring).

    ``sampler_kwargs`` (``trainer.v1.sampler.sampler_kwargs``): ``rollout_n`` and ``val_n`` (episodes per
    group), ``max_dropped_episodes`` (per batch; default 0), and the settings verl passes only to its own
    buffer: ``train_batch_size``, ``gen_batch_size``, ``sync_refill_failed_groups``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        options = dict(kwargs.get("sampler_kwargs") or {})
        if kwargs.get("trainer_mode", "sync") != "sync":
            raise ValueError(
                "DropAccountingReplayBuffer is verl's sync buffer: unset custom_sampler for async trainers"
            )
        known = {"rollout_n", "val_n", "max_dropped_episodes", "train_batch_size", "gen_batch_size"}
        known |= {"sync_refill_failed_groups"}
        unknown = set(options) - known
        if unknown:
            raise ValueError(f"unknown trainer.v1.sampler.sampler_kwargs: {sorted(unknown)} (known: {sorted(known)})")
        refill = bool(options.get("sync_refill_failed_groups", False))
        train_batch_size = options.get("train_batch_size")
        kwargs.setdefault("train_batch_size", train_batch_size)
        kwargs.setdefault("sync_refill_failed_groups", refill)
        kwargs.setdefault("gen_batch_size", 1 if refill else (options.get("gen_batch_size") or train_batch_size))
        super().__init__(*args, **kwargs)
        self.rollout_n = int(options.get("rollout_n", 1))
        self.val_n = int(options.get("val_n", 1))
        self.max_dropped = int(options.get("max_dropped_episodes", 0))
        if self.max_dropped < 0:
            raise ValueError("trainer.v1.sampler.sampler_kwargs.max_dropped_episodes must be >= 0")
        self._ledger: Any = None
        self._selected: list[str] = []
        self._failed: set[str] = set()
        self._start_ledger()

    def _start_ledger(self) -> None:
        import ray

        if ray.is_initialized():
            self._ledger = ray.remote(DropLedger).options(name=LEDGER_NAME, get_if_exists=True, num_cpus=0).remote()

    def _errors(self) -> list[str]:
        import ray

        return list(ray.get(self._ledger.take.remote())) if self._ledger is not None else []

    def _select_prompt_uids(self, partition_id: str, sampleable_keys: set[str], batch_size: int) -> Any:
        selected = super()._select_prompt_uids(partition_id, sampleable_keys, batch_size)
        self._selected = list(selected[0])
        self._failed = set(self.failure_keys[partition_id])
        return selected

    def sample(self, global_steps: int, partition_id: str, batch_size: int) -> Any:
        try:
            batch, metrics = super().sample(global_steps, partition_id, batch_size)
        except RuntimeError as exc:  # verl's "no materializable trajectories": every selected episode failed
            errors = self._errors()
            if not errors:
                raise
            raise EpisodesDropped(f"{exc} Episode errors: {'; '.join(sorted(set(errors))[:5])}") from exc
        n = self.val_n if partition_id == "val" else self.rollout_n
        dropped = dropped_in_batch(self._selected, batch.keys, self._failed, n)
        prefix = self._metrics_prefix(partition_id)
        metrics = {**metrics, f"{prefix}/{METRIC}": dropped}
        if dropped:
            errors = self._errors()
            named = "; ".join(sorted(set(errors))[:5]) or "see the agent-loop worker log"
            log.warning("%s: %d episode(s) dropped at step %d: %s", prefix, dropped, global_steps, named)
            if dropped > self.max_dropped:
                raise EpisodesDropped(
                    f"{dropped} {prefix} episode(s) raised in the rollout at step {global_steps} "
                    f"(trainer.v1.sampler.sampler_kwargs.max_dropped_episodes={self.max_dropped}): {named}"
                )
        return batch, metrics
