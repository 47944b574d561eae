"""Full fine-tuning with the vision tower frozen, for verl 0.9.1's FSDP engine.

The published recipe trains every language-model weight of Qwen3-VL-8B but not
its vision encoder. verl 0.9.1's FSDP training engine has no switch for that
(``actor.freeze_vision_tower`` exists in its config but nothing reads it), so
importing this module -- which the recipes do through
``model.external_lib=verl_recipes.verl_ext.freeze_vision``, imported by verl in every
worker before the engine is built -- swaps the registered FSDP engines for
subclasses that set ``requires_grad=False`` on the vision tower right after the
model is built. Frozen parameters get no gradient, so AdamW leaves them as they
are and FSDP2 shards them like any other parameter.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

#: Top-level attribute names of vision encoders in Hugging Face VLMs (Qwen2/2.5/3-VL: ``visual``).
VISION_MODULES = ("visual", "vision_tower", "vision_model", "vision_encoder")


def vision_parameters(module: Any) -> list[tuple[str, Any]]:
    """``(name, parameter)`` of the vision encoder, wherever the model nests it."""
    found: list[tuple[str, Any]] = []
    for name, param in module.named_parameters():
        parts = name.split(".")
        if any(part in VISION_MODULES for part in parts[:3]):
            found.append((name, param))
    return found


def freeze_vision_tower(module: Any) -> int:
    """Freeze the vision encoder of ``module``; returns how many parameters were frozen."""
    params = vision_parameters(module)
    if not params:
        raise ValueError("the model has no vision tower to freeze (looked for " + ", ".join(VISION_MODULES) + ")")
    for _, param in params:
        param.requires_grad_(False)
    count = int(sum(p.numel() for _, p in params))
    log.info("froze the vision tower: %d tensors, %d parameters", len(params), count)
    return count


def _frozen_subclass(base: type) -> type:
    if getattr(base, "_gen_searcher_freezes_vision", False):
        return base

    class FrozenVisionEngine(base):  # type: ignore[misc]  # verl's engine class, chosen at run time
        _gen_searcher_freezes_vision = True

        def _build_module(self) -> Any:
            module = super()._build_module()
            freeze_vision_tower(module)
            return module

    FrozenVisionEngine.__name__ = FrozenVisionEngine.__qualname__ = f"FrozenVision{base.__name__}"
    return FrozenVisionEngine


def install() -> int:
    """Replace verl's registered FSDP language-model engines by vision-freezing subclasses (idempotent)."""
    from verl.workers.engine.base import EngineRegistry
    from verl.workers.engine.fsdp import transformer_impl  # noqa: F401 - registers the FSDP engines

    replaced = 0
    backends = EngineRegistry._engines.get("language_model", {})
    for backend in ("fsdp", "fsdp2"):
        for key, engine in list(backends.get(backend, {}).items()):
            backends[backend][key] = _frozen_subclass(engine)
            replaced += 1
    return replaced


install()
