"""Test instrumentation: record the batches verl's actor trains on, without changing them.

Loaded by verl in every process of a test run through ``VERL_USE_EXTERNAL_MODULES``
(next to the CPU platform). When ``GEN_SEARCHER_TEST_ACTOR_BATCHES`` names a folder,
each call of verl's ``TrainingWorker.train_mini_batch`` first saves the fields a test
asserts on (token ids, loss mask, advantages, images) there with ``torch.save``, then
runs verl's own method on the untouched batch.
"""

from __future__ import annotations

import functools
import os
import uuid
from pathlib import Path
from typing import Any

ENV = "GEN_SEARCHER_TEST_ACTOR_BATCHES"
FIELDS = (
    "input_ids",
    "responses",
    "response_mask",
    "advantages",
    "old_log_probs",
    "rollout_log_probs",
)


def _plain(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        if value.is_nested:
            return [t.detach().cpu().clone() for t in value.unbind()]
        return value.detach().cpu().clone()
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def snapshot(data: Any) -> dict[str, Any]:
    """The recorded fields of a verl TensorDict batch, as plain tensors and lists."""
    keys = set(data.keys())
    record = {key: _plain(data.get(key)) for key in FIELDS if key in keys}
    if "multi_modal_inputs" in keys:
        inputs = data.get("multi_modal_inputs")
        items = inputs.tolist() if hasattr(inputs, "tolist") else list(inputs)
        record["multi_modal_inputs"] = [
            {k: _plain(v) for k, v in (item or {}).items()} if isinstance(item, dict) else None for item in items
        ]
    return record


def install() -> None:
    folder = os.environ.get(ENV)
    if not folder:
        return
    import torch
    from verl.workers.engine_workers import TrainingWorker

    original = TrainingWorker.train_mini_batch
    if getattr(original, "_recorded", False):
        return

    @functools.wraps(original)
    def train_mini_batch(self: Any, data: Any) -> Any:
        Path(folder).mkdir(parents=True, exist_ok=True)
        torch.save(snapshot(data), Path(folder) / f"batch-{uuid.uuid4().hex}.pt")
        return original(self, data)

    train_mini_batch._recorded = True  # type: ignore[attr-defined]
    TrainingWorker.train_mini_batch = train_mini_batch  # type: ignore[method-assign]


install()
