"""``perf/render_gpu.py --toy`` keeps working on CPU (its GPU figures are not a test)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_benchmark_runs_at_toy_size_on_cpu() -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "perf.render_gpu", "--toy", "--no-compile", "--only", "t2i50-b4,edit8-r1-b1"]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.strip()}
    assert rows["t2i50-b4"][1:4] == ["5", "0", "4"]  # steps / 10, no references, batch 4
    assert rows["edit8-r1-b1"][1:4] == ["2", "1", "1"]
    assert float(rows["t2i50-b4"][4]) > 0 and float(rows["edit8-r1-b1"][4]) > 0
