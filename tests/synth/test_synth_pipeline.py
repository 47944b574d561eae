"""The pipeline end to end on 30 scripted prompts, against the real tool server over a local index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gen_searcher_core.commands import build_app
from synth.export import export
from synth.journal import RunFolder
from synth.manifest import read_manifest
from synth.run import reevaluate, run_synth
from tests.support.tool_server import ToolServer
from tests.synth.conftest import Fakes, settings_for
from tests.synth.scenario import check_funnel, write_scenario


@pytest.fixture(scope="module")
def finished(
    tmp_path_factory: pytest.TempPathFactory, _fakes: Fakes, tools: ToolServer
) -> tuple[RunFolder, Path, dict]:
    """One full run of the scenario (shared by the tests below, which only read it or re-decide offline)."""
    _fakes.services.reset()
    root = tmp_path_factory.mktemp("synth-e2e")
    prompts, bench = write_scenario(root / "input")
    settings = settings_for(_fakes, tools.url, gate={"benchmark_files": [str(bench)]})
    folder = RunFolder(root / "run")
    result = run_synth(folder, settings, [prompts], progress=False)
    assert result.failure is None
    return folder, root, {"shape": result.shape, "counts": _fakes.count(), "costs": result.costs}


def test_the_funnel_counts_every_stage_and_drop_reason(finished: tuple[RunFolder, Path, dict]) -> None:
    folder, _, run = finished
    check_funnel(run["shape"])
    manifest = read_manifest(folder)
    assert manifest["funnel"] == run["shape"]
    assert manifest["models"]["teacher"] == "scripted-teacher"
    costs = manifest["costs"]
    assert costs["teacher_calls"] == run["counts"]["teacher"]  # every paid call is counted
    assert costs["judge_calls"] == run["counts"]["judge"]
    assert costs["policy_calls"] == run["counts"]["policy"]
    assert costs["renders"] == run["counts"]["images"]
    assert costs["tool_calls"] > 0 and costs["teacher_prompt_tokens"] > 0


def test_dropped_items_stay_in_the_journals_with_reasons(finished: tuple[RunFolder, Path, dict]) -> None:
    folder, _, _ = finished
    rollouts = [json.loads(line) for line in (folder.journals / "rollouts.jsonl").read_text().splitlines()]
    dropped = [r for r in rollouts if r["status"] == "dropped"]
    assert dropped and all(r["reason"].startswith("no valid answer") for r in dropped)
    truth = [json.loads(line) for line in (folder.journals / "truth.jsonl").read_text().splitlines()]
    assert {r["item"] for r in truth} >= {"s29"}  # the planted image is journaled, then dropped by decision
    assert all("score" in r["data"] for r in truth)


def test_a_rerun_makes_no_call(finished: tuple[RunFolder, Path, dict], fakes: Fakes, tools: ToolServer) -> None:
    folder, root, run = finished
    settings = settings_for(fakes, tools.url, gate={"benchmark_files": [str(root / "input" / "knowgen.jsonl")]})
    result = run_synth(folder, settings, [root / "input" / "prompts.jsonl"], progress=False)
    assert fakes.count() == {"teacher": 0, "policy": 0, "judge": 0, "images": 0}
    assert result.shape == run["shape"]
    assert result.costs == {}


def test_new_thresholds_reselect_and_export_without_calls(
    finished: tuple[RunFolder, Path, dict], fakes: Fakes, tmp_path: Path
) -> None:
    folder, root, run = finished
    settings = settings_for(
        fakes,
        None,
        gate={"benchmark_files": [str(root / "input" / "knowgen.jsonl")]},
        select={"min_image_searches": 2},  # no scripted rollout searches twice
        calibrate={"min_std": 0.0},  # the always-right prompt is now an RL prompt
    )
    outcomes, shape = reevaluate(folder, settings)
    assert shape["stages"]["select"]["kept"] == 0
    assert shape["stages"]["select"]["dropped"]["no rollout passed (too few image searches)"] == 17
    assert shape["stages"]["calibrate"]["kept"] == run["shape"]["stages"]["calibrate"]["kept"] + 1
    counts = export(folder, outcomes, tmp_path / "export", read_manifest(folder))
    assert counts["sft"] == 0 and counts["rl"] > 0
    assert fakes.count() == {"teacher": 0, "policy": 0, "judge": 0, "images": 0}


def test_the_export_passes_the_converters_and_keeps_entities_apart(
    finished: tuple[RunFolder, Path, dict], fakes: Fakes, tmp_path: Path
) -> None:
    folder, root, _ = finished
    settings = settings_for(fakes, None, gate={"benchmark_files": [str(root / "input" / "knowgen.jsonl")]})
    outcomes, shape = reevaluate(folder, settings)
    out = tmp_path / "export"
    counts = export(folder, outcomes, out, read_manifest(folder))
    assert counts == {k: shape["splits"].get(k, 0) for k in ("sft", "rl", "dev")}
    assert counts["sft"] > 0 and counts["rl"] > 0
    entities: dict[str, str] = {}
    for o in outcomes:
        if o.split:
            assert entities.setdefault(o.item.entity, o.split) == o.split
    sft = json.loads((out / "sft.json").read_text())
    assert all(sum(m["content"].count("<image>") for m in row["messages"]) == len(row["images"]) for row in sft)
    assert all("<answer>" in row["messages"][-1]["content"] for row in sft)
    runner = CliRunner()
    app = build_app()
    for kind, extra in (("sft", ["--max-length", "0"]), ("rl", [])):
        args = [
            "data",
            kind,
            str(out / f"{kind}.json"),
            "--images-root",
            str(out),
            "--out",
            str(tmp_path / f"{kind}.pq"),
        ]
        result = runner.invoke(app, args + extra)
        assert result.exit_code == 0, result.output
        assert f"{counts[kind]} of {counts[kind]} rows kept" in result.output
    assert "## Funnel" in (out / "datasheet.md").read_text()
    page = (out / "review.html").read_text()
    assert page.count('class="card"') == 30 and "answerable without search" in page


def test_closed_book_prompts_can_stay_as_a_flagged_minority(
    finished: tuple[RunFolder, Path, dict], fakes: Fakes
) -> None:
    folder, root, _ = finished
    bench = {"benchmark_files": [str(root / "input" / "knowgen.jsonl")]}
    flagged = settings_for(fakes, None, gate={**bench, "closed_book": "flag"})
    outcomes, shape = reevaluate(folder, flagged)
    easy = next(o for o in outcomes if "[easy]" in o.item.prompt)
    assert easy.flags == ["closed-book"] and "answerable without search" not in shape["stages"]["gate"]["dropped"]
    assert shape["flags"]["closed-book"] == 1
    none_allowed = settings_for(fakes, None, gate={**bench, "closed_book": "flag", "closed_book_max_share": 0.0})
    _, shape = reevaluate(folder, none_allowed)
    assert shape["stages"]["gate"]["dropped"]["answerable without search (over the flagged share)"] == 1
    assert fakes.count() == {"teacher": 0, "policy": 0, "judge": 0, "images": 0}
