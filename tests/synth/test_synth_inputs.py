"""Bad input and failing services: one clear line or a journaled reason; nothing kept wrongly, nothing lost."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmark.journal import read_rows
from gen_searcher_core.commands import build_app
from synth.journal import RunFolder
from synth.run import run_synth
from tests.support.tool_server import ToolServer
from tests.synth.conftest import Fakes, settings_for, write_jsonl
from tests.synth.scenario import GOOD

PROMPTS = [
    {"id": f"b{i}", "prompt": p, "category": c, "subjects": [s], "facts": [f"{s} as it really looks"]}
    for i, (p, c, s) in enumerate(GOOD[:2])
]


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), ["synth", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"prompt": "a", "category": "art"}\nnot json\n', "line 2 is not JSON"),
        ('{"prompt": "a"}\n', "record 1: needs text fields 'prompt' and 'category'"),
        ('{"prompt": " ", "category": "art"}\n', "record 1: Value error, must not be blank"),
        ('{"id": 1, "prompt": "a", "category": "art"}\n{"id": 1, "prompt": "b", "category": "art"}\n', "used by two"),
        ("", "holds no prompts"),
    ],
)
def test_a_malformed_prompt_file_is_one_line(text: str, message: str, tmp_path: Path) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(text, encoding="utf-8")
    code, output = _cli("run", str(tmp_path / "run"), "--prompts", str(prompts), "--quiet")
    assert code == 1
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], output


def test_an_unreachable_tool_server_is_one_line(fakes: Fakes, tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", PROMPTS)
    args = ["run", str(tmp_path / "run"), "--prompts", str(prompts), "--quiet", "--tools-url", "http://127.0.0.1:9/mcp"]
    code, output = _cli(*args, "--teacher-url", fakes.url("teacher"), "--teacher-model", "t")
    assert code == 1 and output.strip().startswith("error: tool server:") and len(output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("service", "status", "stage"), [("teacher", 500, "gate"), ("judge", 503, "gate"), ("images", 500, "ground_truth")]
)
def test_a_failing_service_leaves_the_run_resumable(
    service: str, status: int, stage: str, fakes: Fakes, tools: ToolServer, tmp_path: Path
) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", PROMPTS)
    folder = RunFolder(tmp_path / "run")
    settings = settings_for(fakes, tools.url)
    fakes.services.services[service].fail_status = status
    result = run_synth(folder, settings, [prompts], progress=False)
    assert result.failure is not None and f"at {stage}" in result.failure
    assert result.shape["stages"][stage]["pending"] == 2  # waiting, not dropped
    assert all(row["pending"] == 0 or name == stage for name, row in result.shape["stages"].items())
    assert not any(row["dropped"] for row in result.shape["stages"].values())
    fakes.services.services[service].fail_status = None
    result = run_synth(folder, settings, [prompts], progress=False)
    assert result.failure is None
    assert result.shape["stages"]["export"]["kept"] == 2


def test_a_judge_that_times_out_is_retried_by_the_next_run(fakes: Fakes, tools: ToolServer, tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", PROMPTS[:1])
    folder = RunFolder(tmp_path / "run")
    settings = settings_for(fakes, tools.url)
    slow = settings.model_copy(update={"judge": settings.judge.model_copy(update={"timeout_s": 0.2})})
    fakes.services.services["judge"].delay_s = 1.0
    try:
        result = run_synth(folder, slow, [prompts], progress=False)
    finally:
        fakes.services.services["judge"].delay_s = 0.0
    assert result.failure is not None and "judge unreachable" in result.failure
    assert read_rows(folder.journals / "necessity.jsonl") == []
    assert run_synth(folder, settings, [prompts], progress=False).shape["stages"]["export"]["kept"] == 1


def test_a_full_disk_stops_with_one_line_and_resumes(fakes: Fakes, tools: ToolServer, tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", PROMPTS)
    folder = RunFolder(tmp_path / "run")
    args = [sys.executable, "-m", "gen_searcher_core", "synth", "run", str(folder.root), "--prompts", str(prompts)]
    for name in ("teacher", "judge", "policy"):
        args += [f"--{name}-url", fakes.url(name), f"--{name}-model", f"scripted-{name}"]
    args += ["--tools-url", tools.url, "--rollouts", "2", "--quiet"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEN_SEARCHER_")}

    def small_disk() -> None:  # files may not grow past 30 kB: the rollouts journal hits it
        resource.setrlimit(resource.RLIMIT_FSIZE, (30_000, 30_000))

    done = subprocess.run(args, env=env, capture_output=True, text=True, preexec_fn=small_disk, timeout=300)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: cannot write the run folder: File too large"], done.stderr
    settings = settings_for(fakes, tools.url)
    result = run_synth(folder, settings, [prompts], progress=False)
    assert result.failure is None and result.shape["stages"]["export"]["kept"] == 2
    ids = [row["id"] for row in read_rows(folder.journals / "rollouts.jsonl")]
    assert len(ids) == len(set(ids)) == 4
