"""Seconds per image of Qwen-Image-Edit-2509 (and Qwen-Image) at 1024x1024 on one GPU.

    .venv/bin/python -m perf.render_gpu            # full size, needs a ~80 GB GPU
    .venv/bin/python -m perf.render_gpu --toy      # tiny model on CPU (keeps the script alive)
    .venv/bin/python -m perf.render_gpu --only edit40-r1-b1,t2i50-b1 --no-compile

The full-size architecture (60-layer 20B MMDiT, Qwen2.5-VL-7B text encoder
with its vision tower, the Qwen-Image VAE) is built with random bf16 weights
directly on the GPU: the time of a diffusion step does not depend on the weight
values, and nothing is downloaded. The tokenizer is a small trained BPE, so
prompts tokenize into somewhat more tokens than with Qwen's own vocabulary
(a few hundred text tokens against 4096 image tokens per 1024x1024 image).

Rows: text-to-image at 50 steps, batch 1 and 4 (the anchor: plain diffusers
takes about 18.5 s for a 50-step 1024x1024 Qwen-Image on one H100, as
published by cache-dit; batch 4 is what the render server's batching buys),
Edit-2509 at 40 steps with 1 and 3 references at batch 1 and 4
(``num_images_per_prompt``), at 8 steps (the Lightning-LoRA regime), and the
same after ``torch.compile`` of the transformer blocks. Each row runs once
untimed (warm-up at 2 steps) and then ``--repeats`` timed runs; the table gives
the best s/image and its ratio to the eager edit40-r1-b1 row of the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Case:
    name: str
    refs: int  # 0: text-to-image pipeline
    batch: int
    steps: int
    compiled: bool = False


def cases(compile_too: bool) -> list[Case]:
    rows = [
        Case("t2i50-b1", 0, 1, 50),
        Case("t2i50-b4", 0, 4, 50),
        Case("edit40-r1-b1", 1, 1, 40),
        Case("edit40-r3-b1", 3, 1, 40),
        Case("edit40-r1-b4", 1, 4, 40),
        Case("edit40-r3-b4", 3, 4, 40),
        Case("edit8-r1-b1", 1, 1, 8),
        Case("edit8-r3-b1", 3, 1, 8),
    ]
    if compile_too:
        rows += [
            Case("compiled-t2i50-b1", 0, 1, 50, True),
            Case("compiled-edit40-r1-b1", 1, 1, 40, True),
            Case("compiled-edit40-r3-b1", 3, 1, 40, True),
            Case("compiled-edit40-r1-b4", 1, 4, 40, True),
            Case("compiled-edit8-r1-b1", 1, 1, 8, True),
        ]
    return rows


@contextlib.contextmanager
def default_dtype(dtype: Any) -> Iterator[None]:
    import torch

    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def full_components(tokenizer: Any, device: str, dtype: Any) -> dict[str, Any]:
    """Qwen-Image / Qwen-Image-Edit-2509 at full size, random weights, built on ``device``."""
    import torch
    from diffusers import AutoencoderKLQwenImage, QwenImageTransformer2DModel
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from tests.support.tiny_qwen_image import qwen_image_scheduler, special_token_ids

    text_config = {
        "vocab_size": 152064,
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "max_position_embeddings": 128000,
        "rms_norm_eps": 1e-6,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
    }
    vision_config = {
        "depth": 32,
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "out_hidden_size": 3584,
        "fullatt_block_indexes": [7, 15, 23, 31],
        "window_size": 112,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "hidden_act": "silu",
    }
    config = Qwen2_5_VLConfig(text_config=text_config, vision_config=vision_config, **special_token_ids(tokenizer))
    with torch.device(device), default_dtype(dtype):
        transformer = QwenImageTransformer2DModel(
            patch_size=2,
            in_channels=64,
            out_channels=16,
            num_layers=60,
            attention_head_dim=128,
            num_attention_heads=24,
            joint_attention_dim=3584,
            guidance_embeds=False,
            axes_dims_rope=(16, 56, 56),
        )
        vae = AutoencoderKLQwenImage()
        text_encoder = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype)
    for module in (transformer, vae, text_encoder):
        module.eval().requires_grad_(False)
    return {
        "transformer": transformer,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "scheduler": qwen_image_scheduler(),
    }


def build_pipelines(toy: bool, device: str) -> tuple[Any, Any, int]:
    """(text-to-image pipeline, edit pipeline, side in pixels); both share one set of modules."""
    import torch
    from diffusers import QwenImageEditPlusPipeline, QwenImagePipeline

    from tests.support.tiny_qwen_image import build_processor, build_tokenizer, tiny_components

    tokenizer = build_tokenizer()
    if toy:
        components = tiny_components(tokenizer)
        processor = build_processor(tokenizer)
        side = 64
    else:
        components = full_components(tokenizer, device, torch.bfloat16)
        processor = build_processor(tokenizer, min_pixels=56 * 56, max_pixels=28 * 28 * 1280)
        side = 1024
    text = QwenImagePipeline(**components).to(device)
    edit = QwenImageEditPlusPipeline(processor=processor, **components).to(device)
    for pipe in (text, edit):
        pipe.set_progress_bar_config(disable=True)
    return text, edit, side


def references(count: int) -> list[Any]:
    from PIL import Image

    sizes = [(1024, 768), (768, 1024), (1024, 1024)]
    return [Image.new("RGB", sizes[i % 3], (40 * i, 120, 200 - 40 * i)) for i in range(count)]


def run_case(text: Any, edit: Any, case: Case, side: int, device: str, steps: int | None = None) -> float:
    import torch

    pipe = edit if case.refs else text
    kwargs: dict[str, Any] = {
        "prompt": "A lighthouse on a rocky coast at dusk, the first reference image's colours, photorealistic",
        "negative_prompt": " ",
        "true_cfg_scale": 4.0,
        "width": side,
        "height": side,
        "num_inference_steps": steps or case.steps,
        "num_images_per_prompt": case.batch,
        "generator": [torch.Generator("cpu").manual_seed(i) for i in range(case.batch)],
    }
    if case.refs:
        kwargs["image"] = references(case.refs)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # random weights: NaN pixels on the PIL cast
        pipe(**kwargs)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--toy", action="store_true", help="tiny model on CPU at 64x64, steps / 10 (a smoke run, not a figure)"
    )
    parser.add_argument("--device", default=None, help="default: cuda, or cpu with --toy")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    parser.add_argument("--only", default="", help="comma-separated row names to run")
    args = parser.parse_args()

    import torch

    device = args.device or ("cpu" if args.toy else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("no CUDA device: run with --toy for the CPU smoke run")
    if args.toy:
        torch.set_num_threads(1)
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    rows = [c for c in cases(not args.no_compile) if not wanted or c.name in wanted]

    started = time.perf_counter()
    text, edit, side = build_pipelines(args.toy, device)
    gpu = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
    build_s = time.perf_counter() - started
    print(f"device: {gpu}   size: {side}x{side}   build: {build_s:.1f} s   torch {torch.__version__}")
    if device.startswith("cuda"):
        print(f"GPU memory after build: {torch.cuda.memory_allocated(device) / 2**30:.1f} GiB")

    results: dict[str, float] = {}
    failed: list[str] = []
    compiled = False
    print(f"{'row':<24}{'steps':>6}{'refs':>6}{'batch':>7}{'s/image':>10}{'vs edit40-r1-b1':>17}")
    for case in rows:
        if case.compiled and not compiled:
            try:
                edit.transformer.compile_repeated_blocks(fullgraph=True)
                compiled = True
            except Exception as exc:  # noqa: BLE001  report and go on: compile support varies by platform
                print(f"torch.compile unavailable: {type(exc).__name__}: {exc}")
                break
        steps = max(2, case.steps // 10) if args.toy else case.steps  # the toy run checks the code, not speed
        try:
            if case.compiled or not args.toy:
                run_case(text, edit, case, side, device, steps=2)  # warm-up (and compilation)
            best = min(run_case(text, edit, case, side, device, steps) for _ in range(max(1, args.repeats)))
        except Exception as exc:  # noqa: BLE001  e.g. out of memory at batch 4: report the row, keep going
            head = f"{case.name:<24}{steps:>6}{case.refs:>6}{case.batch:>7}"
            print(f"{head}   failed: {type(exc).__name__}: {str(exc)[:120]}")
            failed.append(case.name)
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
            continue
        per_image = best / case.batch
        results[case.name] = per_image
        base = results.get("edit40-r1-b1")
        ratio = f"{per_image / base:.2f}x" if base else "-"
        print(f"{case.name:<24}{steps:>6}{case.refs:>6}{case.batch:>7}{per_image:>10.3f}{ratio:>17}")
    if "t2i50-b1" in results and not args.toy:
        print(
            f"anchor: plain diffusers Qwen-Image 50 steps 1024x1024 on one H100 is about 18.5 s/image; "
            f"this run: {results['t2i50-b1']:.1f} s ({results['t2i50-b1'] / 18.5:.2f}x)"
        )
    print(f"total: {time.perf_counter() - started:.1f} s")
    if failed:
        sys.exit(f"rows that failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
