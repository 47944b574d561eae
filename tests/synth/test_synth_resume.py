"""SIGKILL in the middle of each paid stage, then resume: nothing lost or duplicated, no paid call repeated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from benchmark.journal import read_rows
from synth.ground_truth import truth_prompt
from synth.items import item_from_record
from synth.journal import RunFolder
from synth.run import run_synth
from tests.support.tool_server import ToolServer
from tests.synth.conftest import Fakes, settings_for, write_jsonl
from tests.synth.scenario import GOOD

PROMPTS = [
    {"id": f"r{i}", "prompt": p, "category": c, "subjects": [s], "facts": [f"{s} as it really looks"]}
    for i, (p, c, s) in enumerate(GOOD[:6])
]


def _config(path: Path) -> Path:
    path.write_text(
        "[synth]\nmax_items_in_flight = 2\n"
        "[synth.calibrate]\nrollouts = 2\n"
        "[synth.teacher]\nmax_attempts = 1\ntimeout_s = 60\n[synth.judge]\nmax_attempts = 1\ntimeout_s = 60\n"
        "[synth.policy]\nmax_attempts = 1\ntimeout_s = 60\n",
        encoding="utf-8",
    )
    return path


def _units(folder: RunFolder) -> dict[str, list[dict]]:
    return {path.stem: read_rows(path) for path in sorted(folder.journals.glob("*.jsonl"))}


# Two paid stages in the fast lane (teacher; render + judge); the other three with the slow tests (make test).
@pytest.mark.parametrize(
    "stage",
    [
        pytest.param("necessity", marks=pytest.mark.slow),
        "rollouts",
        pytest.param("truth", marks=pytest.mark.slow),
        "judge",
        pytest.param("calibrate", marks=pytest.mark.slow),
    ],
)
def test_kill_mid_stage_then_resume(stage: str, fakes: Fakes, tools: ToolServer, tmp_path: Path) -> None:
    for name in ("teacher", "policy", "judge", "images"):
        fakes.services.services[name].delay_s = 0.05
    try:
        _kill_and_resume(stage, fakes, tools, tmp_path)
    finally:
        for name in ("teacher", "policy", "judge", "images"):
            fakes.services.services[name].delay_s = 0.0


def _kill_and_resume(stage: str, fakes: Fakes, tools: ToolServer, tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "prompts.jsonl", PROMPTS)
    folder = RunFolder(tmp_path / "run")
    args = [sys.executable, "-m", "gen_searcher_core", "synth", "run", str(folder.root), "--prompts", str(prompts)]
    for name in ("teacher", "judge", "policy"):
        args += [f"--{name}-url", fakes.url(name), f"--{name}-model", f"scripted-{name}"]
    args += ["--tools-url", tools.url, "--rollouts", "2", "--quiet", "--config", str(_config(tmp_path / "c.toml"))]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEN_SEARCHER_")}
    child = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    journal = folder.journals / f"{stage}.jsonl"
    deadline = time.monotonic() + 120
    while len(read_rows(journal)) < 2:
        assert child.poll() is None, f"the run ended before {stage} was half done: {child.stderr.read()!r}"  # type: ignore[union-attr]
        assert time.monotonic() < deadline, f"{stage} never started"
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    before = _units(folder)
    assert 0 < len(before[stage]) < 12, "the kill landed mid-stage"
    mark = fakes.count()
    for name in ("teacher", "policy", "judge", "images"):
        fakes.services.services[name].delay_s = 0.0  # the latency only had to let the kill land mid-stage

    settings = settings_for(fakes, tools.url).model_copy(update={"max_items_in_flight": 2})
    result = run_synth(folder, settings, [prompts], progress=False)
    assert result.failure is None

    after = _units(folder)
    for name, rows in after.items():  # nothing duplicated: every key once, and every pre-kill line kept
        keys = Counter(r["id"] for r in rows)
        assert max(keys.values()) == 1, f"{name} has a unit twice"
        assert {r["id"] for r in before.get(name, [])} <= set(keys)
    assert len(after["necessity"]) == 6 and len(after["rollouts"]) == 12 and len(after["truth"]) == 6
    assert len(after["judge"]) == 12 and len(after["calibrate"]) == 12  # nothing lost
    stages = result.shape["stages"]
    assert stages["calibrate"]["kept"] == 6 and stages["select"]["kept"] == 6 and stages["export"]["kept"] == 6

    # no paid call repeated for a unit journaled before the kill
    items = {i["id"]: item_from_record(i) for i in PROMPTS}
    new = {name: fakes.log(name)[mark[name] :] for name in mark}
    started = lambda log: {(e["prompt"], e["seed"]) for e in log if e["turn"] == 0}  # noqa: E731
    done_rollouts = {(items[r["item"]].prompt, r["data"]["rollout"]) for r in before.get("rollouts", [])}
    assert not started(new["teacher"]) & done_rollouts
    done_calib = {(items[r["item"]].prompt, int(r["unit"].rsplit("c", 1)[1])) for r in before.get("calibrate", [])}
    assert not started(new["policy"]) & done_calib
    truths = {truth_prompt(items[r["item"]]) for r in before.get("truth", [])}
    assert not {e["prompt"] for e in new["images"]} & truths
    for row in before.get("necessity", []):
        assert not [
            e for e in new["judge"] if "written from memory" in e["prompt"] and items[row["item"]].prompt in e["prompt"]
        ]
    judged = Counter(r["item"] for r in before.get("judge", []))
    for item_id, n in judged.items():
        renders = [
            e for e in new["images"] if e["prompt"].startswith(items[item_id].prompt) and "(teacher)" in e["prompt"]
        ]
        assert len(renders) == 2 - n  # each rollout's plan rendered once in all
    json.dumps(result.shape)
