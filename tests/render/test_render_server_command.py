"""``gen-searcher render-server``'s stages on their own: model sources, devices, settings, the worker pool."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from render_tools.cli import RenderFlags, check_model_sources, device_names, pool_config, render_settings
from render_tools.settings import RenderSettings


def test_model_sources_are_checked_before_anything_loads(tmp_path: Path) -> None:
    with pytest.raises(typer.BadParameter, match="give --model and/or --edit-model"):
        check_model_sources(None, None)
    with pytest.raises(typer.BadParameter, match=r"has no model_index\.json") as info:
        check_model_sources(None, str(tmp_path))
    assert info.value.param_hint == "--edit-model"
    check_model_sources("Qwen/Qwen-Image", None)  # a hub id is checked by loading it


def test_devices_and_the_pool() -> None:
    assert device_names(" cuda:0, ,cuda:1") == ["cuda:0", "cuda:1"]
    render = RenderSettings(timeout_s=90)
    gpu = pool_config(render, ["cuda:0", "cuda:1"], queue_size=8, max_batch=None)
    assert (gpu.devices, gpu.queue_size, gpu.max_batch, gpu.request_timeout_s) == (("cuda:0", "cuda:1"), 8, 4, 90)
    assert pool_config(render, ["cpu"], queue_size=8, max_batch=None).max_batch == 1
    assert pool_config(render, ["cpu"], queue_size=8, max_batch=3).max_batch == 3


def test_flags_go_over_the_render_section_and_switches_only_turn_on() -> None:
    section = RenderSettings(dtype="float16", lora="base.safetensors", compile=True)
    merged = render_settings(section, RenderFlags(model="m", lora_scale=0.5))
    assert (merged.model, merged.edit_model, merged.dtype, merged.lora, merged.lora_scale) == (
        "m",
        None,
        "float16",
        "base.safetensors",
        0.5,
    )
    assert merged.compile and not merged.cpu_offload
    assert render_settings(section, RenderFlags(model="m", dtype="bfloat16", cpu_offload=True)).cpu_offload
    assert RenderFlags(model="a", edit_model="b").model_name == "a + b"
