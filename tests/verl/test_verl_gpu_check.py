"""``perf/gpu_check.py``: no GPU here, so its ``--dry-run`` is what runs: every part up to its first GPU call."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def dry_run(parts: str, work: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "perf.gpu_check", "--dry-run", "--parts", parts, "--work", str(work)]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200, check=False)


def test_step_metrics_are_read_from_verls_console_line() -> None:
    from verl_recipes.cpu.smoke import step_metrics

    log = (
        "noise\nstep:1 - training/global_step:1 - training/rollout_failure/dropped_episodes:0"
        " - perf/max_memory_allocated_gb:3.5e-01\n"
    )
    assert step_metrics(log) == {
        "step": 1.0,
        "training/global_step": 1.0,
        "training/rollout_failure/dropped_episodes": 0.0,
        "perf/max_memory_allocated_gb": 0.35,
    }


def test_render_part_stops_at_the_gpu(tmp_path: Path) -> None:
    done = dry_run("render", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "render prepared on CPU; stopped before its first GPU call" in done.stdout


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_trainer_parts_are_prepared_on_cpu(tmp_path: Path) -> None:
    done = dry_run("smoke,grpo", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "smoke prepared on CPU" in done.stdout and "grpo prepared on CPU" in done.stdout
    # The planned step: real vLLM at the full episode budget, with the sync counter loaded in verl.
    assert "actor_rollout_ref.rollout.max_model_len=32768" in done.stdout
    assert (tmp_path / "grpo-part" / "tiny-qwen3-vl" / "config.json").exists()
    assert "VERL_USE_EXTERNAL_MODULES=perf._sync_counter" in done.stdout
