"""``gen-searcher render-server`` as users start it: a subprocess serving a model folder."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image
from typer.testing import CliRunner

from gen_searcher_core.commands import build_app
from render_tools.diffusers_renderer import DiffusersOptions
from tests.support.loopback import free_port

app = build_app()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "give --model and/or --edit-model"),
        (["--model", "/no/such/qwen-image"], "'/no/such/qwen-image' is not a folder"),
        (["--edit-model", "./"], "has no model_index.json"),
    ],
)
def test_render_server_refuses_a_model_it_cannot_load_before_starting(arguments: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["render-server", *arguments], terminal_width=400)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_render_server_command_serves_a_model_folder(tmp_path: Path, tiny_models: DiffusersOptions) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEN_SEARCHER_")}
    env.update(OMP_NUM_THREADS="1", GEN_SEARCHER_SERVER__LOG_LEVEL="WARNING")
    command = [
        sys.executable, "-m", "gen_searcher_core", "render-server",
        "--model", tiny_models.model, "--edit-model", tiny_models.edit_model,
        "--devices", "cpu", "--port", str(port), "--queue-size", "4",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stdout.read().decode(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "render server did not become healthy"
            try:
                if httpx.get(base + "/health", timeout=2).json()["status"] == "ok":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        health = httpx.get(base + "/health").json()
        assert health["queue"] == {"depth": 0, "capacity": 4}
        assert [w["device"] for w in health["workers"]] == ["cpu"]
        assert health["model"] == f"{tiny_models.model} + {tiny_models.edit_model}"
        answer = httpx.post(
            base + "/generate",
            json={"prompt": "a fox", "width": 64, "height": 64, "num_inference_steps": 2},
            timeout=120,
        )
        assert answer.status_code == 200, answer.text
        assert Image.open(io.BytesIO(base64.b64decode(answer.json()["image"]))).size == (64, 64)
    finally:
        process.terminate()
        process.wait(timeout=30)
