"""Qwen-Image in this process, through diffusers.

Text-only requests run ``QwenImagePipeline`` (``options.model``); requests with
reference images run ``QwenImageEditPlusPipeline`` (Qwen-Image-Edit-2509,
``options.edit_model``). Both load with ``from_pretrained`` from a hub id or a
local folder, lazily on first use (or eagerly with :meth:`QwenImageEngine.load`).

:class:`QwenImageEngine` is synchronous and owns one device; the render server
runs one per GPU in worker threads. :class:`DiffusersRenderer` is the async
:class:`~render_tools.base.Renderer` over one engine: inference runs in a worker
thread, one call at a time, never on the event loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import anyio

from render_tools.base import SIZE_MULTIPLE, InvalidRenderRequest, RenderError, RenderRequest, RenderResult, check_size
from render_tools.settings import RenderSettings

logger = logging.getLogger(__name__)

TEXT_PIPELINE = "QwenImagePipeline"
EDIT_PIPELINE = "QwenImageEditPlusPipeline"
_DTYPES = {
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "float32": "float32",
    "fp32": "float32",
}


@dataclass(frozen=True)
class DiffusersOptions:
    """How to load and run the pipelines. ``None`` device/dtype: CUDA + bf16 when present, else CPU + fp32."""

    model: str | None = None
    edit_model: str | None = None
    device: str | None = None
    dtype: str | None = None
    lora: str | None = None
    edit_lora: str | None = None
    lora_scale: float = 1.0
    compile: bool = False
    cpu_offload: bool = False

    @classmethod
    def from_settings(cls, render_settings: RenderSettings) -> DiffusersOptions:
        """The options named in ``Settings.render`` (the same fields, the same names)."""
        names = [f.name for f in fields(cls)]
        return cls(**{name: getattr(render_settings, name) for name in names})


def resolve_device(device: str | None) -> str:
    """``device`` as given; without one, CUDA when present (only then is torch imported)."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str | None, device: str) -> Any:
    import torch

    if dtype is None:
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return getattr(torch, _DTYPES[dtype.lower()])
    except KeyError:
        raise RenderError(f"unknown dtype {dtype!r}; use bfloat16, float16 or float32") from None


class QwenImageEngine:
    """Pipelines for one device. Not thread-safe: call from one thread at a time.

    Building one is cheap (no torch import); the device is resolved, and torch
    imported, on first use.
    """

    #: ``render_batch`` takes ``should_stop`` and ends the denoising loop early when it says so.
    interruptible = True

    def __init__(self, options: DiffusersOptions, device: str | None = None) -> None:
        if not options.model and not options.edit_model:
            raise RenderError("no model configured: give a Qwen-Image model and/or a Qwen-Image-Edit-2509 model")
        self.options = options
        self._device = device or options.device
        self._pipes: dict[bool, Any] = {}
        self._load_lock = threading.Lock()

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = resolve_device(None)
        return self._device

    # -- loading -------------------------------------------------------------
    def source(self, edit: bool) -> str:
        source = self.options.edit_model if edit else self.options.model
        if not source:
            if edit:
                raise InvalidRenderRequest(
                    "reference images need an edit model (Qwen-Image-Edit-2509); none is configured "
                    "(--edit-model or GEN_SEARCHER_RENDER__EDIT_MODEL)"
                )
            raise InvalidRenderRequest(
                "text-only rendering needs a Qwen-Image model; none is configured "
                "(--model or GEN_SEARCHER_RENDER__MODEL); give at least one reference image"
            )
        return source

    def load(self) -> None:
        """Load every configured pipeline now (servers do this before taking requests)."""
        for edit in (False, True):
            if self.options.edit_model if edit else self.options.model:
                self.pipeline(edit)

    def pipeline(self, edit: bool) -> Any:
        with self._load_lock:
            pipe = self._pipes.get(edit)
            if pipe is None:
                pipe = self._pipes[edit] = self._load(edit)
            return pipe

    def _load(self, edit: bool) -> Any:
        import diffusers

        source = self.source(edit)
        dtype = resolve_dtype(self.options.dtype, self.device)
        started = time.perf_counter()
        cls = getattr(diffusers, EDIT_PIPELINE if edit else TEXT_PIPELINE)
        try:
            pipe = cls.from_pretrained(source, dtype=dtype)
        except (OSError, ValueError) as exc:
            raise RenderError(f"cannot load {cls.__name__} from {source!r}: {exc}") from None
        except Exception as exc:  # noqa: BLE001  a malformed folder fails in many ways (KeyError, ...)
            raise RenderError(
                f"cannot load {cls.__name__} from {source!r}: {type(exc).__name__}: {_first_line(exc)}"
            ) from None
        lora = self.options.edit_lora if edit else self.options.lora
        if lora:
            self._apply_lora(pipe, lora)
        if self.options.cpu_offload and self.device != "cpu":
            pipe.enable_model_cpu_offload(device=self.device)
        else:
            pipe.to(self.device)
        if self.options.compile:
            pipe.transformer.compile_repeated_blocks(fullgraph=True)
        pipe.set_progress_bar_config(disable=True)
        elapsed = time.perf_counter() - started
        logger.info("loaded %s from %s on %s in %.1f s", cls.__name__, source, self.device, elapsed)
        return pipe

    def _apply_lora(self, pipe: Any, lora: str) -> None:
        """Load a LoRA (a folder, a hub id, or a ``.safetensors`` file) and fuse it into the weights."""
        from pathlib import Path

        path = Path(lora)
        kwargs: dict[str, Any] = {}
        source: str = lora
        if path.suffix == ".safetensors":
            source, kwargs["weight_name"] = str(path.parent), path.name
        try:
            pipe.load_lora_weights(source, adapter_name="default", **kwargs)
        except (OSError, ValueError) as exc:
            raise RenderError(f"cannot load LoRA {lora!r}: {exc}") from None
        pipe.fuse_lora(lora_scale=self.options.lora_scale)
        pipe.unload_lora_weights()

    def size_multiple(self, edit: bool) -> int:
        pipe = self.pipeline(edit)
        return int(pipe.vae_scale_factor) * 2

    def close(self) -> None:
        """Drop the pipelines and give their device memory back (a reload builds a new engine)."""
        import gc

        self._pipes.clear()
        gc.collect()  # tracebacks of a failed render may hold the pipeline in reference cycles
        if self._device is not None and self._device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    # -- rendering -------------------------------------------------------------
    def render_batch(
        self, requests: Sequence[RenderRequest], should_stop: Callable[[], bool] | None = None
    ) -> list[RenderResult]:
        """Render requests that share a :meth:`RenderRequest.batch_key` in one pipeline call.

        Each image's starting noise comes from its own CPU generator seeded with
        ``seed + i``, so an image does not depend on what it was batched with.
        When ``should_stop()`` turns true (every caller gave up) the remaining
        denoising steps are skipped; the results are then marked ``interrupted``.
        """
        if not requests:
            return []
        edit = requests[0].is_edit
        keys = {r.batch_key() for r in requests}
        if len(requests) > 1 and (edit or len(keys) != 1 or None in keys):
            raise RenderError("internal: these requests cannot share a pipeline call")
        pipe = self.pipeline(edit)
        multiple = int(pipe.vae_scale_factor) * 2
        if multiple != SIZE_MULTIPLE:  # requests are valid for Qwen-Image's sizes; this pipeline steps differently
            for r in requests:
                check_size(r.width, r.height, multiple)
        first = requests[0]

        import torch

        generators = [
            torch.Generator("cpu").manual_seed(r.fixed_seed + i) for r in requests for i in range(r.num_images)
        ]
        cfg = first.true_cfg_scale > 1.0
        kwargs: dict[str, Any] = {
            "prompt": [r.prompt for r in requests] if len(requests) > 1 else first.prompt,
            "negative_prompt": (
                ([r.negative_prompt for r in requests] if len(requests) > 1 else first.negative_prompt) if cfg else None
            ),
            "true_cfg_scale": first.true_cfg_scale,
            "width": first.width,
            "height": first.height,
            "num_inference_steps": first.steps,
            "num_images_per_prompt": first.num_images,
            "generator": generators,
        }
        if first.guidance_scale is not None:
            kwargs["guidance_scale"] = first.guidance_scale
        if edit:
            kwargs["image"] = list(first.reference_images)
        stopped = False
        if should_stop is not None:

            def on_step_end(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
                nonlocal stopped
                if should_stop():
                    stopped = True
                    pipe._interrupt = True  # diffusers skips the remaining steps
                return tensors

            kwargs["callback_on_step_end"] = on_step_end
        started = time.perf_counter()
        with torch.inference_mode():
            output = pipe(**kwargs)
        elapsed = time.perf_counter() - started
        images = list(output.images)
        results = []
        for index, request in enumerate(requests):
            mine = images[index * request.num_images : (index + 1) * request.num_images]
            results.append(
                RenderResult(
                    images=mine,
                    seed=request.fixed_seed,
                    elapsed_s=elapsed,
                    model=self.source(edit),
                    extra={
                        "batch_size": len(requests),
                        "steps": request.steps,
                        "device": self.device,
                        "interrupted": stopped,
                    },
                )
            )
        return results


class DiffusersRenderer:
    """The in-process :class:`~render_tools.base.Renderer`: one engine, one render at a time."""

    name = "diffusers"

    def __init__(self, options: DiffusersOptions, *, engine: QwenImageEngine | None = None) -> None:
        self._engine = engine or QwenImageEngine(options)
        self._lock = anyio.Lock()
        self._load_state = "idle"
        self.load_error: str | None = None

    @property
    def engine(self) -> QwenImageEngine:
        return self._engine

    @property
    def load_state(self) -> str:
        """``idle`` (loads on first render), ``loading``, ``ready`` or ``failed`` (see ``load_error``)."""
        return self._load_state

    async def load(self) -> None:
        """Load the pipelines now; servers start this in the background once they answer clients.

        A render that arrives meanwhile waits for the load. A failed load is
        retried by the next render, which then reports the error.
        """
        self._load_state = "loading"
        try:
            async with self._lock:
                # Shutting down mid-load must not wait for it: the thread is left to finish alone.
                await anyio.to_thread.run_sync(self._engine.load, abandon_on_cancel=True)
        except Exception as exc:
            self._load_state = "failed"
            self.load_error = str(exc) if isinstance(exc, RenderError) else f"{type(exc).__name__}: {_first_line(exc)}"
            raise
        self._load_state = "ready"
        self.load_error = None

    async def render(self, request: RenderRequest) -> RenderResult:
        async with self._lock:
            try:
                results = await anyio.to_thread.run_sync(self._engine.render_batch, [request])
            except RenderError:
                raise
            except Exception as exc:
                logger.exception("render failed")
                raise RenderError(f"{type(exc).__name__}: {_first_line(exc)}") from None
            self._load_state = "ready"  # a render loads what it needs
        return results[0]

    async def aclose(self) -> None:
        async with self._lock:
            await anyio.to_thread.run_sync(self._engine.close)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else "no details"
