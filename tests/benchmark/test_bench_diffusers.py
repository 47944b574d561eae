"""A KnowGen run whose renderer is the real in-process diffusers Qwen-Image pipeline (tiny random weights)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from benchmark.journal import Journal
from gen_searcher_core.commands import build_app
from tests.benchmark.helpers import make_knowgen
from tests.support.scripted_judge import ScriptedJudge, image_urls, kscore_reply, serve_judge

app = build_app()

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_qwen_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("diffusers")
    from tests.support.tiny_qwen_image import build_tiny_qwen_image

    return build_tiny_qwen_image(tmp_path_factory.mktemp("tiny") / "qwen-image")


def test_knowgen_with_the_diffusers_renderer(tmp_path: Path, tiny_qwen_image: Path) -> None:
    data = make_knowgen(tmp_path / "data", 2)
    judge = ScriptedJudge(default=kscore_reply(0.5, 0.5, 0, 1, na=True))
    out = tmp_path / "run"
    args = [
        "bench",
        "knowgen",
        "--data",
        str(data),
        "--out",
        str(out),
        "--policy",
        "none",
        "--render",
        "diffusers",
        "--render-model",
        str(tiny_qwen_image),
        "--steps",
        "2",
        "--width",
        "64",
        "--height",
        "96",
        "--seed",
        "7",
        "--no-progress",
    ]
    with serve_judge(judge) as judge_url:
        result = CliRunner().invoke(app, [*args, "--judge-url", judge_url])
        assert result.exit_code == 0, result.output
    rows = Journal(out / "generations.jsonl").rows
    assert all(r["ok"] for r in rows.values()) and len(rows) == 2
    seeds = {r["seed"] for r in rows.values()}
    assert len(seeds) == 2  # per-item seeds
    with Image.open(out / rows["kg-000"]["image"]) as image:
        assert image.size == (64, 96)
    assert len(judge.requests) == 2 and all(len(image_urls(r)) == 2 for r in judge.requests)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["scored"] == 2
    # The same seeds again: the run is reproducible item by item.
    again = tmp_path / "again"
    with serve_judge(ScriptedJudge(default=kscore_reply(1, 1, 1, 1))) as judge_url:
        args[args.index(str(out))] = str(again)
        assert CliRunner().invoke(app, [*args, "--judge-url", judge_url]).exit_code == 0
    assert {r["seed"] for r in Journal(again / "generations.jsonl").rows.values()} == seeds
    first = (out / rows["kg-001"]["image"]).read_bytes()
    assert (again / Journal(again / "generations.jsonl").get("kg-001")["image"]).read_bytes() == first
