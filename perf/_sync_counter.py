"""Loaded by verl in every process during ``perf.gpu_check`` (``VERL_USE_EXTERNAL_MODULES``): counts weight syncs.

Each call of vLLM's ``ServerAdapter.update_weights`` (the actor pushing its weights into vLLM)
appends the number of tensors it sent to ``$GEN_SEARCHER_SYNC_COUNTS``, one line per call and
rank, so the check can compare it with the model's own tensor count. The tensors pass through
unchanged; without vLLM (the CPU environment) nothing is wrapped.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

COUNTS_ENV = "GEN_SEARCHER_SYNC_COUNTS"


def append_count(target: Path, count: int) -> None:
    with target.open("a", encoding="utf-8") as sink:
        sink.write(f"{count}\n")


def install() -> bool:
    """Wrap ``ServerAdapter.update_weights`` once; False where verl's vLLM rollout cannot be imported."""
    try:
        from verl.workers.rollout.vllm_rollout.vllm_rollout import ServerAdapter
    except (ImportError, ValueError):  # no vLLM here (verl raises ValueError for an unsupported version)
        return False
    original = ServerAdapter.update_weights
    if getattr(original, "counted", False):
        return True

    async def update_weights(self: Any, weights: Any, *args: Any, **kwargs: Any) -> Any:
        names: list[str] = []

        def counted() -> Iterator[tuple[str, Any]]:
            for name, tensor in weights:
                names.append(name)
                yield name, tensor

        try:
            return await original(self, counted(), *args, **kwargs)
        finally:
            target = os.environ.get(COUNTS_ENV)
            if target:
                await asyncio.to_thread(append_count, Path(target), len(names))

    update_weights.counted = True  # type: ignore[attr-defined]
    ServerAdapter.update_weights = update_weights  # type: ignore[method-assign]
    return True


install()
