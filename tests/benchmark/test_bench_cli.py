"""What a user meets on the command line: data defaults, ground-truth checks, one run per folder, help text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.datasets import DatasetError, wise_data_path
from benchmark.journal import read_rows
from benchmark.settings import BenchConfig
from tests.benchmark.helpers import bench, make_knowgen, parse_tables, write_png
from tests.support.scripted_judge import ScriptedJudge, kscore_reply, serve_judge


def _wise_tree(root: Path) -> Path:
    for protocol, prompt in (("legacy", "Old prompt"), ("verified", "New prompt")):
        (root / protocol).mkdir(parents=True)
        rows = [
            {"Prompt": prompt, "Explanation": "e", "Category": "Cultural knowledge", "Subcategory": "x", "prompt_id": 1}
        ]
        (root / protocol / "cultural.json").write_text(json.dumps(rows))
    return root


def test_wise_data_folder_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _wise_tree(tmp_path / "wise")
    assert wise_data_path(root, "verified") == root / "verified"  # the folder holding both protocols
    assert wise_data_path(root / "legacy", "legacy") == root / "legacy"
    with pytest.raises(DatasetError, match="holds the legacy prompts but --protocol is verified"):
        wise_data_path(root / "legacy", "verified")
    with pytest.raises(DatasetError, match=r"pass --data .* or set GEN_SEARCHER_WISE_DIR"):
        wise_data_path(None, "legacy")
    monkeypatch.setenv("GEN_SEARCHER_WISE_DIR", str(root))  # read through the benchmark settings
    assert wise_data_path(None, "legacy", BenchConfig.load().wise_dir) == root / "legacy"


def test_wise_without_data_is_a_clear_error_and_env_default_works(
    tmp_path: Path, render_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, output = bench(
        "wise", "--protocol", "legacy", "--out", str(tmp_path / "r"), "--judge-url", "http://127.0.0.1:9/v1"
    )
    assert code == 2 and "no WISE data: pass --data" in output
    monkeypatch.setenv("GEN_SEARCHER_WISE_DIR", str(_wise_tree(tmp_path / "wise")))
    judge = ScriptedJudge(default=json.dumps({"passed": True}))
    with serve_judge(judge) as judge_url:
        code, output = bench(
            "wise",
            "--protocol",
            "verified",
            "--out",
            str(tmp_path / "r"),
            "--render",
            "http",
            "--render-url",
            render_url,
            "--width",
            "64",
            "--height",
            "64",
            "--judge-url",
            judge_url,
            "--no-progress",
        )
    assert code == 0, output
    assert "New prompt" in json.dumps(judge.requests)  # the verified prompts, not the legacy ones
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["data"] == str(tmp_path / "wise" / "verified") and run["wise_protocol"] == "verified"
    assert "Score is the share of images that passed." in (tmp_path / "r" / "report.md").read_text()


def _args(data: Path, out: Path, render_url: str, judge_url: str, *extra: str) -> list[str]:
    return [
        "knowgen",
        "--data",
        str(data),
        "--out",
        str(out),
        "--render",
        "http",
        "--render-url",
        render_url,
        "--width",
        "64",
        "--height",
        "64",
        "--judge-url",
        judge_url,
        "--no-progress",
        *extra,
    ]


def test_ground_truth_checks_and_recheck_on_rerun(tmp_path: Path, render_url: str) -> None:
    (tmp_path / "data").mkdir()
    data = make_knowgen(tmp_path / "data", 3, missing_gt={0, 1, 2})
    judge = ScriptedJudge(default=kscore_reply(1, 1, 1, 1))
    out = tmp_path / "run"
    with serve_judge(judge) as judge_url:
        code, output = bench(*_args(data, out, render_url, judge_url))
        assert code == 2 and "none of the 3 ground-truth images exist" in output and "--images-root" in output
        assert not out.exists()  # refused before anything was recorded
        write_png(tmp_path / "data" / "gt" / "000.png")
        write_png(tmp_path / "data" / "gt" / "001.png")
        code, output = bench(*_args(data, out, render_url, judge_url))
        assert code == 0, output
        assert "warning: 1 of 3 ground-truth images are missing" in output
        assert {r["id"]: r.get("failure") for r in read_rows(out / "judgements.jsonl")}["kg-002"] == "missing_gt"
        # Still missing: a rerun does not record it again.
        assert bench(*_args(data, out, render_url, judge_url))[0] == 0
        assert len(read_rows(out / "judgements.jsonl")) == 3
        # Once the file exists, a plain rerun judges the item (no --retry-failed needed).
        write_png(tmp_path / "data" / "gt" / "002.png")
        code, output = bench(*_args(data, out, render_url, judge_url))
        assert code == 0, output
        assert "judge: 1 done, 0 failed, 2 already done" in output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["scored"] == 3 and summary["counts"]["unjudged"] == 0


def test_a_run_folder_holds_one_policy_and_one_judge(tmp_path: Path, render_url: str) -> None:
    data = make_knowgen(tmp_path / "data", 1)
    out = tmp_path / "run"
    with serve_judge(ScriptedJudge(default=kscore_reply(1, 1, 1, 1))) as judge_url:
        assert bench(*_args(data, out, render_url, judge_url, "--judge-model", "judge-a"))[0] == 0
        code, output = bench(*_args(data, out, render_url, judge_url, "--judge-model", "judge-b"))
        assert code == 2 and "judge_model='judge-a' run" in output and "another --out" in output
        code, output = bench(
            *_args(data, out, render_url, judge_url, "--judge-model", "judge-a", "--policy", "baseline")
        )
        assert code == 2 and "policy='none' run" in output
        # Report-only reruns name no policy or judge, and are always fine.
        code, output = bench("knowgen", "--data", str(data), "--out", str(out), "--stage", "report")
        assert code == 0, output
    assert json.loads((out / "run.json").read_text())["judge_model"] == "judge-a"


def test_report_lists_categories_by_group(tmp_path: Path, render_url: str) -> None:
    data = make_knowgen(tmp_path / "data", 6)  # astronomy, history, art, anime, multi_celebrities, news
    out = tmp_path / "run"
    with serve_judge(ScriptedJudge(default=kscore_reply(1, 1, 1, 1))) as judge_url:
        assert bench(*_args(data, out, render_url, judge_url))[0] == 0
    rows = parse_tables((out / "report.md").read_text())["Categories"]
    assert [r["category"] for r in rows] == ["art", "astronomy", "history", "anime", "multi_celebrities", "news"]


def test_commands_share_their_options() -> None:
    for command in ("knowgen", "wise"):
        code, output = bench(command, "--help")
        assert code == 0
        for option in (
            "--data",
            "--policy",
            "--render-url",
            "--judge-url",
            "--concurrency",
            "--stage",
            "--retry-failed",
            "--limit",
        ):
            assert option in output, (command, option)
    code, output = bench("score", "--help")
    assert code == 0 and "--judge-url" in output and "--policy" not in output and "--outputs-root" in output
