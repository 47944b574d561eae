"""One GPU check before the first GPU hour: the trainer and the renderer on one GPU, nothing downloaded.

    make gpu-check                                   # both environments, all parts (one GPU, ~10 min)
    .venv-train/bin/python -m perf.gpu_check --parts smoke,grpo --out gpu-check-train.json
    .venv/bin/python -m perf.gpu_check --parts render --out gpu-check-render.json
    .venv/bin/python -m perf.gpu_check --dry-run     # here, on CPU: everything up to the first GPU call

Parts (each timed; figures into one JSON per run and a short table):

* ``smoke``: ``gen-searcher train smoke --device gpu`` on a tiny Qwen3-VL processor folder: one SFT
  step on the GPU, one GRPO step with real vLLM, no episode dropped;
* ``grpo``: one GRPO step with real vLLM at the full episode budget (prompt 4096 + response 28672
  tokens, ``max_model_len`` 32768) on a tiny random Qwen3-VL: peak GPU memory, the gap between
  vLLM's and the actor's log-probs, dropped episodes (the step's metrics), and the tensors of each
  weight sync (counted by ``perf/_sync_counter.py`` inside verl) against the model's own count;
* ``render``: full-size random-weight Qwen-Image-Edit-2509 (as ``perf.render_gpu`` builds it) at
  1024x1024, 40 steps, 1 and 3 references: model load seconds, seconds per image, peak memory.

The trainer parts need the GPU training environment (``verl[vllm]``, docs/training.md#install), the
render part the project's ``.venv`` (the render extra): the pins of the two cannot share one
environment, so ``make gpu-check`` runs each part where it installs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PARTS = ("smoke", "grpo", "render")
#: The recipe's episode budget (configs/grpo.yaml): what vLLM's context is sized for.
PROMPT_LENGTH, RESPONSE_LENGTH = 4096, 28672


class DryRunStop(Exception):
    """Raised at the first GPU call of a dry run; its message names that call."""


def gpu_call(dry_run: bool, what: str) -> None:
    if dry_run:
        raise DryRunStop(what)


def tiny_qwen3_vl(work: Path) -> tuple[Path, Path]:
    """A Qwen3-VL processor folder (as a user brings one) and a tiny random model of that family."""
    from tests.verl.conftest import build_processor_folder
    from verl_recipes.cpu.smoke import build_tiny_policy

    folder = build_processor_folder("qwen3_vl", work / "qwen3-vl-processor")
    return folder, build_tiny_policy(folder, work / "tiny-qwen3-vl")


def smoke_part(work: Path, dry_run: bool) -> dict[str, Any]:
    from verl_recipes.cpu.smoke import run_smoke

    folder, _ = tiny_qwen3_vl(work)
    gpu_call(dry_run, "train smoke --device gpu (its SFT step starts torchrun on the GPU)")
    started = time.perf_counter()
    checks = run_smoke(folder, work / "smoke", device="gpu")
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "passed": all(check.ok for check in checks),
        "lines": [check.line() for check in checks],
    }


def grpo_part(work: Path, dry_run: bool) -> dict[str, Any]:
    from transformers import AutoModelForImageTextToText

    from verl_recipes.cpu.smoke import grpo_against_smoke_services, step_metrics, write_rl_rows
    from verl_recipes.data import convert_rl
    from verl_recipes.launch import run

    _, model = tiny_qwen3_vl(work)
    tensors = len(AutoModelForImageTextToText.from_pretrained(model).state_dict())
    data = work / "rl.parquet"
    convert_rl(write_rl_rows(work / "rl", rows=2), work / "rl", data)
    overrides = [
        f"data.train_files={data}",
        f"actor_rollout_ref.model.path={model}",
        "data.train_batch_size=2",
        "actor_rollout_ref.rollout.n=4",
        "actor_rollout_ref.actor.ppo_mini_batch_size=2",
        f"data.max_prompt_length={PROMPT_LENGTH}",
        f"data.max_response_length={RESPONSE_LENGTH}",
        f"actor_rollout_ref.rollout.prompt_length={PROMPT_LENGTH}",
        f"actor_rollout_ref.rollout.response_length={RESPONSE_LENGTH}",
        "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
        "actor_rollout_ref.rollout.agent.num_workers=1",
        "trainer.n_gpus_per_node=1",
        "trainer.total_training_steps=1",
        "trainer.save_freq=-1",
        f"trainer.default_local_dir={work / 'grpo-checkpoints'}",
        f"hydra.run.dir={work / 'grpo-hydra'}",  # Hydra's outputs/ in the work folder, not the caller's cwd
        "trainer.logger=[console]",
    ]
    counts = work / "sync-counts.txt"
    log = work / "grpo.log"
    with grpo_against_smoke_services(overrides, services=work / "tools", run_dir=work / "run", device="gpu") as plan:
        modules = [m for m in [os.environ.get("VERL_USE_EXTERNAL_MODULES", ""), "perf._sync_counter"] if m]
        plan.env |= {
            "VERL_USE_EXTERNAL_MODULES": ",".join(modules),
            "GEN_SEARCHER_SYNC_COUNTS": str(counts),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        print(plan.shell(), flush=True)
        gpu_call(dry_run, "train grpo (verl main_ppo with vLLM on the GPU)")
        started = time.perf_counter()
        with log.open("w", encoding="utf-8") as sink:
            code = run(plan, stdout=sink, stderr=subprocess.STDOUT)
    metrics = step_metrics(log.read_text(encoding="utf-8", errors="replace"))
    syncs = [int(x) for x in counts.read_text().split()] if counts.exists() else []
    wanted = ("memory", "dropped_episodes", "log_ppl", "probs_diff", "rollout_corr", "timing_s/step")
    return {
        "exit_code": code,
        "seconds": round(time.perf_counter() - started, 1),
        "log": str(log),
        "max_model_len": PROMPT_LENGTH + RESPONSE_LENGTH,
        "model_tensors": tensors,
        "weight_sync_tensors": syncs,
        "metrics": {k: v for k, v in metrics.items() if any(w in k for w in wanted)},
    }


def render_part(dry_run: bool) -> dict[str, Any]:
    from perf.render_gpu import Case, build_pipelines, run_case

    gpu_call(dry_run, "the full-size Qwen-Image-Edit-2509 built on cuda (perf.render_gpu.build_pipelines)")
    import torch

    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    text, edit, side = build_pipelines(False, "cuda")
    load_s = time.perf_counter() - started
    run_case(text, edit, Case("warm-up", 1, 1, 2), side, "cuda")
    rows = {}
    for refs in (1, 3):
        case = Case(f"edit40-r{refs}-b1", refs, 1, 40)
        rows[case.name] = round(run_case(text, edit, case, side, "cuda"), 2)
    return {
        "model_load_s": round(load_s, 1),
        "s_per_image": rows,
        "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 1),
        "size": side,
    }


def table(results: dict[str, Any]) -> str:
    lines = ["part    result"]
    for part, value in results.items():
        lines.append(f"{part:<7} {json.dumps(value)[:200]}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--out", type=Path, default=Path("gpu-check.json"))
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--dry-run", action="store_true", help="prepare everything on CPU; stop at the first GPU call")
    args = parser.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {sorted(unknown)}")
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    results: dict[str, Any] = {}
    for part in parts:
        print(f"== {part}", flush=True)
        try:
            if part == "smoke":
                results[part] = smoke_part(work / "smoke-part", args.dry_run)
            elif part == "grpo":
                results[part] = grpo_part(work / "grpo-part", args.dry_run)
            else:
                results[part] = render_part(args.dry_run)
        except DryRunStop as stop:  # each part is prepared up to its own first GPU call
            print(f"dry run: {part} prepared on CPU; stopped before its first GPU call: {stop}", flush=True)
    if args.dry_run:
        return
    args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(table(results))
    print(f"wrote {args.out}")
    if any(isinstance(v, dict) and (v.get("exit_code") or v.get("passed") is False) for v in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
