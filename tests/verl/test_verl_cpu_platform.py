"""The CPU platform through verl's own seam: picked when asked (VERL_PLATFORM) or when torch has no accelerator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PROBE = """
import json, torch
from verl.utils.device import get_device_name, get_nccl_backend, get_device_id, get_torch_device
from verl.utils import distributed
from verl.workers.engine.base import EngineRegistry
import verl.workers.engine.fsdp.transformer_impl
print(json.dumps({
    "device": get_device_name(),
    "backend": get_nccl_backend(),
    "tensor": str(torch.zeros(1).to(get_device_id()).device),
    "memory": get_torch_device().memory_allocated(),
    "wrapped": hasattr(distributed.initialize_global_process_group_ray, "__wrapped__"),
    "engine": EngineRegistry.get_engine_cls("language_model", "fsdp2").__name__,
}))
"""


DEVICE = "import json\nfrom verl.utils.device import get_device_name\nprint(json.dumps({'device': get_device_name()}))"


def probe(script: str = PROBE, **env: str) -> dict[str, object]:
    root = Path(__file__).resolve().parents[2]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VERL_")}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env={**clean, **env}, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_verl_runs_on_the_cpu_platform_when_asked() -> None:
    from verl_recipes.cpu.cpu_platform import CPU_ENV

    seen = probe(**CPU_ENV)
    assert seen == {
        "device": "cpu",
        "backend": "gloo",
        "tensor": "cpu",
        "memory": 0,
        "wrapped": True,
        "engine": "FSDPEngineWithLMHead",
    }


def test_auto_detection_reaches_the_cpu_platform_only_without_an_accelerator() -> None:
    from verl_recipes.cpu.cpu_platform import accelerator_present

    if accelerator_present():
        pytest.skip("this node has an accelerator: auto-detection must not pick the CPU")
    # (verl alone falls back to CUDA here, which is what this platform fixes)
    assert probe(DEVICE, VERL_USE_EXTERNAL_MODULES="verl_recipes.cpu.cpu_platform")["device"] == "cpu"
