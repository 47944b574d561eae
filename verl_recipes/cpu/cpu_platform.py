"""A CPU platform for verl: device ``cpu``, collectives over ``gloo``.

verl 0.9.1 resolves its device once per process through ``verl.plugin.platform``;
with no accelerator it falls back to ``nvidia`` (device ``cuda``, NCCL) and fails.
This module registers a ``cpu`` platform with verl's registry
(``PlatformRegistry.register``), so the same trainer code runs on a laptop, in CI
and in ``gen-searcher train smoke`` on a node without GPUs. It is loaded

* by verl itself in every process that imports verl: the ``verl.plugins`` entry point
  of this distribution (verl loads that group on import), or
  ``VERL_USE_EXTERNAL_MODULES=verl_recipes.cpu.cpu_platform``;
* and chosen either explicitly (``VERL_PLATFORM=cpu``, what ``--device cpu`` sets) or by
  verl's auto-detection, which probes the built-in accelerators first and reaches this
  platform only when none is there (:func:`accelerator_present`), so a CPU-only Ray actor on
  a GPU node never mistakes itself for a CPU run.

verl builds its process-group backend as ``cpu:gloo,<device>:<collectives>``, which on
this platform reads ``cpu:gloo,cpu:gloo`` and torch refuses; :func:`install` wraps verl's
two process-group helpers so that on the CPU platform the backend is ``cpu:gloo`` once.
Nothing here changes a GPU run.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from verl.plugin.platform import PlatformBase, PlatformRegistry

NAME = "cpu"
#: What a process needs in its environment to run verl on this platform. verl registers its
#: FSDP engines for ``cuda``/``npu`` only; they are device-agnostic (they place tensors on
#: ``get_device_name()``), and ``VERL_ENGINE_DEVICE`` is verl's own switch for the lookup.
CPU_ENV = {"VERL_PLATFORM": NAME, "VERL_USE_EXTERNAL_MODULES": __name__, "VERL_ENGINE_DEVICE": "cuda"}


#: Tools whose presence means the node has accelerators even where this process sees none.
_ACCELERATOR_TOOLS = ("nvidia-smi", "rocm-smi", "npu-smi")


def accelerator_present() -> bool:
    """Whether this node has an accelerator: one visible to torch, a vendor tool, or a torch device extension.

    A CPU-only Ray actor on a GPU node sees no CUDA device, but the node has ``nvidia-smi``:
    it is not a CPU node, and verl's own CUDA platform (probed first) claims it.
    """
    if torch.cuda.is_available() or any(hasattr(torch, name) for name in ("npu", "mlu", "musa")):
        return True
    return any(shutil.which(tool) for tool in _ACCELERATOR_TOOLS) or Path("/dev/nvidia0").exists()


def _device_module() -> ModuleType:
    """``torch.cpu`` plus the ``torch.cuda`` calls verl makes on its device module (memory, RNG, IPC)."""
    module = ModuleType("verl_recipes.cpu.cpu_platform.device")
    for name in dir(torch.cpu):
        if not name.startswith("_"):
            setattr(module, name, getattr(torch.cpu, name))
    zero = lambda *_, **__: 0  # noqa: E731 - host memory is not tracked per device
    nothing = lambda *_, **__: None  # noqa: E731
    for name in ("memory_reserved", "memory_allocated", "max_memory_reserved", "max_memory_allocated"):
        setattr(module, name, zero)
    for name in ("empty_cache", "ipc_collect", "set_per_process_memory_fraction", "reset_peak_memory_stats"):
        setattr(module, name, nothing)
    module.mem_get_info = lambda *_, **__: (0, 0)  # type: ignore[attr-defined]
    module.get_rng_state = lambda *_, **__: torch.get_rng_state()  # type: ignore[attr-defined]
    module.set_rng_state = lambda state, *_, **__: torch.set_rng_state(state)  # type: ignore[attr-defined]
    module.get_device_name = lambda *_, **__: "cpu"  # type: ignore[attr-defined]
    module.manual_seed = lambda seed: torch.manual_seed(seed)  # type: ignore[attr-defined]
    module.manual_seed_all = lambda seed: torch.manual_seed(seed)  # type: ignore[attr-defined]
    return module


_DEVICE_MODULE = _device_module()


@PlatformRegistry.register(platform=NAME)
class PlatformCPU(PlatformBase):
    """Host CPU: one "device", gloo collectives, no IPC, no profiler ranges."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> ModuleType:
        return _DEVICE_MODULE

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # Probed after the built-in accelerators: answer yes only where none can exist.
        return not accelerator_present()

    def current_device(self) -> Any:
        # verl passes this straight to ``.to(...)``/``torch.device(...)``; an int there means CUDA.
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: int | None = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"  # verl reads and sets it; on CPU it selects nothing

    def get_device_uuid(self, device_id: int) -> str:
        return f"cpu-{os.getpid()}-{device_id}"

    @contextmanager
    def nvtx_range(self, msg: str) -> Iterator[None]:
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def ray_resource_name(self) -> str:
        # verl sizes and checks its Ray resource pools in "GPU" (or "NPU") slots only. On this
        # platform they are logical worker slots (``ray.init(num_gpus=N)``, what ``train grpo
        # --device cpu`` passes): Ray schedules by them and never touches a device for them.
        return "GPU"

    def ray_resource_options(self, num_gpus: float) -> dict[str, Any]:
        return {"num_gpus": num_gpus}

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None


def _on_cpu() -> bool:
    from verl.utils.device import get_device_name

    return bool(get_device_name() == NAME)


def _cpu_process_group(original: Callable[..., Any]) -> Callable[..., Any]:
    """verl's ``initialize_global_process_group`` (torchrun), with a valid backend on CPU."""

    def initialize_global_process_group(timeout_second: int = 36000) -> tuple[int, int, int]:
        if not _on_cpu():
            local_rank, rank, world_size = original(timeout_second)
            return local_rank, rank, world_size
        torch.distributed.init_process_group(
            backend="cpu:gloo",
            timeout=timedelta(seconds=timeout_second),
            init_method=os.environ.get("DIST_INIT_METHOD", None),
        )
        return int(os.environ["LOCAL_RANK"]), int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])

    initialize_global_process_group.__wrapped__ = original  # type: ignore[attr-defined]
    return initialize_global_process_group


def _cpu_process_group_ray(original: Callable[..., Any]) -> Callable[..., Any]:
    """verl's ``initialize_global_process_group_ray`` (Ray workers), with a valid backend on CPU."""

    def initialize_global_process_group_ray(timeout_second: int | None = None, backend: str | None = None) -> None:
        if _on_cpu():
            backend = ",".join(dict.fromkeys((backend or "cpu:gloo").split(",")))
        original(timeout_second=timeout_second, backend=backend)

    initialize_global_process_group_ray.__wrapped__ = original  # type: ignore[attr-defined]
    return initialize_global_process_group_ray


def install() -> None:
    """Wrap verl's process-group helpers (idempotent), also where a verl module already imported them."""
    from verl.utils import distributed

    wrappers = {
        "initialize_global_process_group": _cpu_process_group,
        "initialize_global_process_group_ray": _cpu_process_group_ray,
    }
    for name, wrap in wrappers.items():
        current = getattr(distributed, name)
        if hasattr(current, "__wrapped__"):
            continue
        wrapped = wrap(current)
        setattr(distributed, name, wrapped)
        for module_name in ("verl.workers.engine_workers", "verl.checkpoint_engine.base"):
            module = sys.modules.get(module_name)
            if module is not None and getattr(module, name, None) is current:
                setattr(module, name, wrapped)


install()
