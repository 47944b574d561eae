"""The GPU training environment installs: pip's resolver on ``.[train-gpu]`` (the project, its ``train`` extra and
``verl[vllm]==0.9.1``), in dry-run mode, must land on verl's vLLM pins (docs/training.md#install).

The requirements are read from ``pyproject.toml`` rather than building the project, so nothing but
the index is needed; where the index cannot be reached the test is skipped, saying so.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
#: verl 0.9.1's ``vllm`` extra (its package metadata): what the GPU environment must end up with.
VERL_VLLM_PINS = {"verl": "0.9.1", "vllm": "0.24.0", "torch": "2.11.0", "transformers": "5.9.0"}


def train_gpu_requirements() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    own = f"{project['name']}[train]"
    assert extras["train-gpu"][0] == own, "train-gpu is the train extra plus verl's vLLM extra"
    return [*project["dependencies"], *extras["train"], *extras["train-gpu"][1:]]


def index_reachable() -> str | None:
    """None when the package index answers a TCP connection, else why not."""
    url = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple")
    parsed = urlparse(url)
    host, port = parsed.hostname or "pypi.org", parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=5):
            return None
    except OSError as exc:
        return f"the package index {host}:{port} is unreachable ({exc})"


def test_train_gpu_extra_resolves_to_verls_vllm_pins(tmp_path: Path) -> None:
    requirements = train_gpu_requirements()
    assert "verl[vllm]==0.9.1" in requirements
    unreachable = index_reachable()
    if unreachable:
        pytest.skip(unreachable)
    (tmp_path / "requirements.txt").write_text("\n".join(requirements), encoding="utf-8")
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
    command += ["--report", str(report), "-r", str(tmp_path / "requirements.txt")]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=1500, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    resolved = {
        item["metadata"]["name"].lower(): item["metadata"]["version"]
        for item in json.loads(report.read_text(encoding="utf-8"))["install"]
    }
    assert {name: resolved.get(name) for name in VERL_VLLM_PINS} == VERL_VLLM_PINS
    assert resolved.get("transferqueue") == "0.1.11"
