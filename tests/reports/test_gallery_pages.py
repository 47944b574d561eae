"""Benchmark galleries: report.html and gallery.json beside report.md, compare.html, thumbnails, escaping."""

from __future__ import annotations

import json
import re
from pathlib import Path

import anyio
from PIL import Image

from benchmark.gallery_compare import load_cards
from benchmark.report import compare_runs, write_report
from tests.benchmark.helpers import RenderServer, bench, make_knowgen
from tests.reports.episodes import scripted_run
from tests.reports.runs import knowgen_run, wise_run
from tests.reports.test_trace_pages import assert_escaped
from tests.support.loopback import serve_app
from tests.support.scripted_judge import ScriptedJudge, kscore_reply, serve_judge


def test_report_html_has_a_card_per_item(tmp_path: Path) -> None:
    trace = anyio.run(scripted_run).trace()
    run_dir, items, summary, run = knowgen_run(
        tmp_path, 12, failed=frozenset({3}), unjudged=frozenset({5}), hostile=frozenset({1}), traces={0: trace}
    )
    write_report(run_dir, summary, run, items)
    html = (run_dir / "report.html").read_text()
    assert (run_dir / "report.md").is_file()
    assert html.count("<article ") == 12
    assert_escaped(html)
    cards = {c["id"]: c for c in load_cards(run_dir) or []}
    assert cards["kg-0003"]["status"] == "failed" and cards["kg-0003"]["score"] == 0.0
    assert "policy gave no answer" in cards["kg-0003"]["error"]
    assert cards["kg-0005"]["status"] == "unjudged" and cards["kg-0005"]["score"] is None
    assert [d["label"] for d in cards["kg-0002"]["dims"]] == [
        "faithfulness", "visual correctness", "text accuracy", "aesthetics"
    ]  # fmt: skip
    assert cards["kg-0002"]["rationale"].startswith("Item 2:")
    # Thumbnails are small JPEGs inside the run folder; full images are linked, ground truth relatively.
    thumb = run_dir / cards["kg-0000"]["image"]["thumb"]
    assert thumb.parent == run_dir / "thumbs" / "gen" and max(Image.open(thumb).size) <= 320
    assert 'href="images/kg-0000.png"' in html and 'href="../data/gt/0000.png"' in html
    assert 'loading="lazy"' in html
    assert cards["kg-0000"]["trace"] == "traces/kg-0000.html" and (run_dir / "traces" / "kg-0000.html").is_file()
    assert "Generation failed:" in html and "Not judged:" in html
    # A second report reuses the thumbnails.
    before = thumb.stat().st_mtime_ns
    write_report(run_dir, summary, run, items)
    assert thumb.stat().st_mtime_ns == before


def test_compare_html_sorts_by_score_difference(tmp_path: Path) -> None:
    dirs = []
    for name, seed in (("baseline", 0), ("search", 4)):
        run_dir, items, summary, run = knowgen_run(tmp_path, 10, name=name, seed=seed, hostile=frozenset({2}))
        write_report(run_dir, summary, run, items)
        dirs.append(run_dir)
    out = tmp_path / "cmp"
    compare_runs(dirs, out)
    html = (out / "compare.html").read_text()
    assert_escaped(html)
    diffs = [float(d) for d in re.findall(r'data-diff="([^"]*)"', html)]
    a = {c["id"]: c["score"] for c in load_cards(dirs[0]) or []}
    b = {c["id"]: c["score"] for c in load_cards(dirs[1]) or []}
    assert diffs == sorted((b[i] - a[i] for i in a), reverse=True)  # written gains first
    assert 'src="../baseline/thumbs/gen/kg-0000.jpg"' in html and 'src="../search/thumbs/gen/kg-0000.jpg"' in html

    (dirs[1] / "gallery.json").unlink()  # a run reported before galleries existed
    compare_runs(dirs, out)
    assert "search has none" in (out / "compare.html").read_text()


def test_bench_commands_write_the_pages(tmp_path: Path) -> None:
    data = make_knowgen(tmp_path / "data", 4, fail={1})
    judge = ScriptedJudge(default=kscore_reply(1, 0.5, 0, 1, True))
    runs = []
    with serve_app(RenderServer().app()) as render_url, serve_judge(judge) as judge_url:
        for name in ("a", "b"):
            out = tmp_path / name
            args = ["knowgen", "--data", str(data), "--out", str(out), "--render", "http", "--render-url", render_url]
            code, output = bench(
                *args, "--policy", "none", "--width", "64", "--height", "64", "--judge-url", judge_url, "--no-progress"
            )
            assert code == 0, output
            for page in ("report.html", "report.md", "summary.json"):
                assert f"wrote {out / page}" in output  # every page the run wrote is named
            runs.append(out)
    html = (runs[0] / "report.html").read_text()
    assert html.count("<article ") == 4 and "render failed" in html
    code, output = bench("compare", str(runs[0]), str(runs[1]), "--out", str(tmp_path / "cmp"))
    assert code == 0, output
    assert f"wrote {tmp_path / 'cmp' / 'compare.html'}" in output
    assert (tmp_path / "cmp" / "compare.html").read_text().count('class="row"') == 4
    assert json.loads((runs[0] / "gallery.json").read_text())["kind"] == "knowgen"


def test_wise_reports_show_their_rubric(tmp_path: Path) -> None:
    for protocol, labels, score_text in (
        ("legacy", ["consistency", "realism", "aesthetics"], "0.600"),
        ("verified", ["passed"], "fail"),
    ):
        run_dir, items, summary = wise_run(tmp_path, 6, protocol, name=protocol)
        write_report(run_dir, summary, {"benchmark": "wise"}, items)
        html = (run_dir / "report.html").read_text()
        assert_escaped(html)
        cards = {c["id"]: c for c in load_cards(run_dir) or []}
        assert [d["label"] for d in cards["1"]["dims"]] == labels
        assert f'<span class="score">{score_text}</span>' in html
        assert "A correct image shows thing 1." in html and "ground truth missing" not in html


def test_item_trace_pages_are_written_again_only_when_what_they_show_changed(tmp_path: Path) -> None:
    import os

    trace = anyio.run(scripted_run).trace()
    run_dir, items, summary, run = knowgen_run(tmp_path, 3, traces={0: trace})
    write_report(run_dir, summary, run, items)
    page = run_dir / "traces" / "kg-0000.html"
    assert "Judge's verdict" in page.read_text() and 'href="../report.html#kg-0000"' in page.read_text()
    later = page.stat().st_mtime + 100
    os.utime(page, (later, later))  # newer than everything it shows (and than the code that wrote it)
    write_report(run_dir, summary, run, items)
    assert page.stat().st_mtime == later  # fresh: left alone
    os.utime(run_dir / "judgements.jsonl", (later + 50, later + 50))  # a new verdict
    write_report(run_dir, summary, run, items)
    assert page.stat().st_mtime != later
