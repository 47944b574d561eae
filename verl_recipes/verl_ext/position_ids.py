"""mRoPE position ids that survive a batch whose samples are all the same length (verl 0.9.1).

Qwen-VL position ids are ``(rope axes, length)`` per sample. verl and TransferQueue batch
them with ``torch.nested.as_nested_tensor(..., layout=torch.jagged)``, which puts the ragged
axis on the samples' *first* axis whenever their shapes agree: a batch of one sample, or of
samples of equal length. The result is ragged along the rope axes (offsets ``0, 4, 8, ...``).
verl's ``maybe_fix_3d_position_ids`` (a workaround for ``_ragged_idx`` lost in pickling) then
declares the *length* axis ragged, and the first ``index_select`` of the batch (dynamic
micro-batching, the actor's log-prob pass) fails with ``split_with_sizes expects split_sizes to
sum exactly to <length>``. On a GPU run that is any rank handed a single sample.

:func:`fix_3d_position_ids` reads the layout from the values instead of trusting the flag:
values whose first axis is the ragged one are rebuilt ragged along the length; the rest get
verl's flag as before. :func:`install` puts it in place of verl's function in the engine
modules that call it; :mod:`verl_recipes.verl_ext.verl_plugins` calls it in every worker.
"""

from __future__ import annotations

import importlib
from typing import Any

#: The modules of verl 0.9.1's engines that imported ``maybe_fix_3d_position_ids`` by name and call it
#: (its home, ``verl.utils.tensordict_utils``, keeps verl's own: nothing there calls it).
CALLERS = ("verl.workers.engine.base", "verl.workers.engine_workers")


def ragged_along_rope_axes(position_ids: Any) -> bool:
    """Whether a nested ``(batch, rope axes, length)`` tensor was built ragged along its rope axes."""
    values, offsets = position_ids.values(), position_ids.offsets()
    total = int(offsets[-1])
    return bool(values.dim() == 2 and total == values.shape[0] and total != values.shape[1])


def fix_3d_position_ids(data: Any) -> None:
    """verl's ``maybe_fix_3d_position_ids``, right for every batch: leaves ``data["position_ids"]``
    ragged along the length axis (``_ragged_idx`` 2), rebuilding it when it was ragged along the rope axes."""
    from verl.utils.tensordict_utils import nested_tensor_from_tensor_list

    if "position_ids" not in data.keys():  # noqa: SIM118 - a TensorDict, where `in` means something else
        return
    position_ids = data["position_ids"]
    if not (position_ids.is_nested and position_ids.dim() == 3):
        return
    if ragged_along_rope_axes(position_ids):
        lengths = position_ids.offsets().diff().tolist()
        samples = list(position_ids.values().split(lengths, dim=0))  # each (rope axes, length)
        data["position_ids"] = nested_tensor_from_tensor_list(samples, ragged_idx=2)
    else:
        position_ids._ragged_idx = 2


def install() -> int:
    """Replace verl's ``maybe_fix_3d_position_ids`` in the modules that use it; returns how many were patched."""
    patched = 0
    for name in CALLERS:
        module = importlib.import_module(name)
        if getattr(module, "maybe_fix_3d_position_ids", None) is not None:
            module.maybe_fix_3d_position_ids = fix_3d_position_ids  # type: ignore[attr-defined]
            patched += 1
    if patched != len(CALLERS):
        raise RuntimeError(f"verl's maybe_fix_3d_position_ids was found in {patched} of {len(CALLERS)} modules")
    return patched
