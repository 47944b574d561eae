"""``gen-searcher demo`` in the suite: offline, no keys; it writes and prints its pages, each says it is
scripted, and the pages pass the same browser checks as every other page."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gen_searcher_core.commands import build_app
from gen_searcher_core.loopback import gen_searcher_command
from tests.reports.browser import layout_problems, open_at, open_page, scrolled_into_view

SCRIPTED = "the policy model and the judge are scripted stand-ins"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One demo run with the scripted renderer (no torch needed), as a user starts it; (its folder, its output)."""
    out = tmp_path_factory.mktemp("demo") / "demo"
    return out, _run_demo(out, "scripted")


def _run_demo(out: Path, renderer: str) -> str:
    env = {name: value for name, value in os.environ.items() if not name.startswith("GEN_SEARCHER_")}
    done = subprocess.run(
        [*gen_searcher_command(), "demo", "--out", str(out), "--renderer", renderer],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def _pages(out: Path) -> dict[str, Path]:
    return {
        "trace": out / "episode" / "trace.html",
        "report": out / "scripted-policy" / "report.html",
        "baseline": out / "baseline" / "report.html",
        "compare": out / "compare" / "compare.html",
        "item": out / "scripted-policy" / "traces" / "lanternby-01.html",
    }


def test_the_demo_writes_prints_and_labels_its_pages(demo: tuple[Path, str]) -> None:
    out, printed = demo
    pages = _pages(out)
    for name in ("trace", "report", "baseline", "compare"):
        assert str(pages[name]) in printed, name
    assert f"wrote {out / 'scripted-policy' / 'report.html'}" in printed
    assert printed.count(SCRIPTED) >= 2  # first and last, around everything else
    for name, page in pages.items():
        assert SCRIPTED in page.read_text(encoding="utf-8"), name
    # The episode went through the real tool server: search, a browse that read the page, image search.
    trace = json.loads((out / "episode" / "trace.json").read_text())
    calls = [call for step in trace["steps"] if step["type"] == "tools" for call in step["calls"]]
    assert [call["name"] for call in calls] == ["search", "browse", "image_search"]
    assert not any(call["result"]["is_error"] for call in calls), [c["result"]["text"][:200] for c in calls]
    assert "the whole page" in pages["trace"].read_text()
    item = pages["item"].read_text()
    assert item.count("data:image/jpeg;base64,") >= 3  # the thumbnails the model saw, references among them
    assert 'href="../report.html#lanternby-01"' in item
    card = json.loads((out / "scripted-policy" / "gallery.json").read_text())["cards"][0]
    assert card["tool_calls"] == 3 and card["model_calls"] == 4 and card["tokens"] > 0  # the card's effort line
    report = pages["report"].read_text()
    for label in ("policy model", "judge model", "renderer", "seed", "started", "duration", "gen-searcher"):
        assert f"<th>{label}</th>" in report, label  # how the run was made
    compare = pages["compare"].read_text()
    assert ">difference</th>" in compare and compare.count('class="n diffcell"') >= 3
    for run in ("scripted-policy", "baseline"):
        summary = json.loads((out / run / "summary.json").read_text())
        assert summary["counts"]["scored"] == summary["counts"]["items"] == 2
        assert summary["run"]["judge_model"] == "scripted-judge" and summary["run"]["seed"] == 7


def test_a_second_demo_replaces_the_first_but_not_other_folders(demo: tuple[Path, str], tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(build_app(), ["demo", "--out", str(mine), "--renderer", "scripted"])
    assert result.exit_code == 1 and "was not written by gen-searcher demo" in result.stderr
    assert (mine / "notes.txt").read_text() == "keep me"


@pytest.mark.slow
@pytest.mark.parametrize("width", [1440, 390])
def test_the_demo_pages_pass_the_browser_checks(browser: Any, demo: tuple[Path, str], width: int) -> None:
    for name, page in _pages(demo[0]).items():
        opened = open_page(browser, page, width=width, height=900)
        assert opened.errors == [] and opened.network == [], name
        assert opened.undecoded_images() == [], name
        assert layout_problems(opened) == [], name
        assert SCRIPTED in opened.page.inner_text(".notice")
        opened.page.close()
    opened = open_at(browser, _pages(demo[0])["report"], "lanternby-02", width=width)
    assert scrolled_into_view(opened, "lanternby-02")
    opened.page.close()


@pytest.mark.slow
@pytest.mark.timeout(900)  # torch loads twice and renders on CPU: minutes on a loaded machine
def test_the_demo_renders_with_a_tiny_pipeline(tmp_path: Path) -> None:
    """With the render extra: a tiny random-weight Qwen-Image-Edit pipeline, built locally (no download)."""
    pytest.importorskip("diffusers")
    printed = _run_demo(tmp_path / "demo", "tiny")
    assert "tiny random-weight Qwen-Image-Edit pipeline" in printed
    generations = (tmp_path / "demo" / "scripted-policy" / "generations.jsonl").read_text().splitlines()
    assert all(json.loads(line)["ok"] for line in generations)
