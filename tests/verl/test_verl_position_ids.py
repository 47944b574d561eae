"""mRoPE position ids of a batch whose samples share one length survive verl's batch indexing."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

pytestmark = pytest.mark.slow  # imports verl's engines (torch, FSDP)


def mrope_ids(length: int, start: int = 0) -> Any:
    import torch

    return torch.arange(start, start + 4 * length).reshape(4, length)


def batch(samples: list[Any]) -> Any:
    """What TransferQueue and verl's no-padding conversion build: ``as_nested_tensor`` over the samples."""
    import torch
    from tensordict import TensorDict

    nested = torch.nested.as_nested_tensor(samples, layout=torch.jagged)
    return TensorDict({"position_ids": nested}, batch_size=len(samples))


def select(data: Any, indices: list[int]) -> list[Any]:
    from verl.utils.tensordict_utils import index_select_tensor_dict

    return list(index_select_tensor_dict(data, indices)["position_ids"].unbind())


@pytest.mark.parametrize("lengths", [[7, 7, 7, 7], [9], [5, 8, 6]])
def test_position_ids_index_after_the_fix(lengths: list[int]) -> None:
    import torch

    from verl_recipes.verl_ext.position_ids import fix_3d_position_ids

    samples = [mrope_ids(length, start=100 * i) for i, length in enumerate(lengths)]
    data = batch(samples)
    fix_3d_position_ids(data)
    order = list(reversed(range(len(samples))))
    picked = select(data, order)
    assert len(picked) == len(samples)
    for got, index in zip(picked, order, strict=True):
        assert torch.equal(got, samples[index])


def test_verls_own_fix_breaks_on_equal_lengths() -> None:
    """The fault the module mends (if verl fixes it, this test says the patch can go). verl's function stays in
    its home module when the recipe's plugins are installed (only the engines that call it get ours)."""
    from verl.utils.tensordict_utils import maybe_fix_3d_position_ids

    data = batch([mrope_ids(7), mrope_ids(7)])
    maybe_fix_3d_position_ids(data)
    with pytest.raises(RuntimeError):  # split_with_sizes, or a failed size check, by shape
        select(data, [1, 0])


def test_a_pickled_batch_keeps_working() -> None:
    """After pickling (Ray), the nested tensor forgets its ragged axis: the values still tell it."""
    import torch

    from verl_recipes.verl_ext.position_ids import fix_3d_position_ids

    for samples in ([mrope_ids(5), mrope_ids(8)], [mrope_ids(6), mrope_ids(6)]):
        data = pickle.loads(pickle.dumps(batch(samples)))
        fix_3d_position_ids(data)
        assert all(torch.equal(a, b) for a, b in zip(select(data, [0, 1]), samples, strict=True))


def test_the_recipes_plugins_put_the_fix_in_place_of_verls() -> None:
    import verl.workers.engine.base as engine_base
    import verl.workers.engine_workers as engine_workers
    from verl.utils import tensordict_utils

    from verl_recipes.verl_ext import verl_plugins
    from verl_recipes.verl_ext.position_ids import fix_3d_position_ids

    assert verl_plugins.position_ids.fix_3d_position_ids is fix_3d_position_ids
    assert engine_base.maybe_fix_3d_position_ids is fix_3d_position_ids
    assert engine_workers.maybe_fix_3d_position_ids is fix_3d_position_ids
    assert tensordict_utils.maybe_fix_3d_position_ids is not fix_3d_position_ids  # verl's, for the test above
