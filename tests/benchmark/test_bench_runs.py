"""End-to-end runs of `gen-searcher bench`: a loopback render server, a scripted judge, real journals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from benchmark.journal import Journal, read_rows
from tests.benchmark.helpers import (
    RenderServer,
    bench,
    make_knowgen,
    parse_tables,
    wait_for,
    wise_data_dir,
    write_png,
)
from tests.support.loopback import serve_app
from tests.support.scripted_judge import ScriptedJudge, kscore_reply, serve_judge


def knowgen_args(data: Path, out: Path, render_url: str, judge_url: str, *extra: str) -> list[str]:
    return [
        "knowgen",
        "--data",
        str(data),
        "--out",
        str(out),
        "--policy",
        "none",
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
        "--judge-model",
        "scripted",
        "--no-progress",
        *extra,
    ]


def test_knowgen_run_report_and_published_switch(tmp_path: Path, render_server: RenderServer, render_url: str) -> None:
    data = make_knowgen(tmp_path / "data", 6, fail={4}, missing_gt={5})
    judge = ScriptedJudge(default=kscore_reply(1, 1, 1, 1))
    judge.when("Prompt number 0 ", kscore_reply(1, 0.5, 0, 1, na=True))  # astronomy: no text needed
    judge.when("Prompt number 1 ", "garbage", "still garbage")  # history: unparseable -> unjudged
    judge.when("Prompt number 3 ", kscore_reply(0.5, 0.5, 0.5, 0.5))  # anime
    out = tmp_path / "run"
    with serve_judge(judge) as judge_url:
        code, output = bench(*knowgen_args(data, out, render_url, judge_url))
    assert code == 0, output

    gens = Journal(out / "generations.jsonl")
    assert set(gens.rows) == {f"kg-{i:03d}" for i in range(6)}
    assert gens.get("kg-004")["ok"] is False and "scripted render failure" in gens.get("kg-004")["error"]
    assert (out / gens.get("kg-000")["image"]).is_file()
    judged = Journal(out / "judgements.jsonl")
    assert judged.get("kg-001")["failure"] == "judge" and judged.get("kg-001")["raw"] == "still garbage"
    assert judged.get("kg-005")["failure"] == "missing_gt"
    assert "kg-004" not in judged  # a failed generation is not sent to the judge
    # The renderer received the benchmark prompt as is (policy none) and the judge the real images.
    assert sorted(render_server.prompts)[0].startswith("Prompt number 0")

    # strict: science = astronomy(0) + art(2); pop = anime(3) + celebrities(4, failed -> 0)
    summary = json.loads((out / "summary.json").read_text())
    sci, pop = summary["groups"]["science_and_knowledge"], summary["groups"]["pop_culture_and_news"]
    assert sci["n"] == 2 and sci["text_n"] == 1 and sci["text_accuracy"] == pytest.approx(100)
    assert sci["visual_correctness"] == pytest.approx(75)
    assert sci["score"] == pytest.approx(0.1 * 100 + 0.4 * 75 + 0.4 * 100 + 0.1 * 100)
    assert pop["n"] == 2 and pop["text_n"] == 2
    assert pop["score"] == pytest.approx(0.1 * 25 + 0.4 * 25 + 0.4 * 25 + 0.1 * 25)
    assert summary["overall"] == pytest.approx((sci["score"] + pop["score"]) / 2)
    assert summary["counts"] == {"items": 6, "scored": 4, "failed_generation": 1, "unjudged": 2, "pending": 0}

    report = (out / "report.md").read_text()
    tables = parse_tables(report)
    groups = {row["group"]: row for row in tables["Groups"]}
    assert float(groups["science_and_knowledge"]["K-Score"]) == pytest.approx(sci["score"], abs=0.005)
    assert groups["pop_culture_and_news"]["n"] == "2"
    categories = {row["category"]: row for row in tables["Categories"]}
    assert set(categories) == {"astronomy", "art", "anime", "multi_celebrities"}
    assert categories["multi_celebrities"]["group"] == "pop_culture_and_news"
    assert float(categories["multi_celebrities"]["K-Score"]) == 0.0
    assert categories["astronomy"]["text n"] == "0" and categories["astronomy"]["text accuracy"] == "50.00"
    dims = {row["dimension"]: float(row["mean"]) for row in tables["Dimensions (all scored items)"]}
    assert dims["visual correctness"] == pytest.approx((0.5 + 1 + 0.5 + 0) / 4 * 100)
    failures = {row["id"]: row for row in tables["Failures"]}
    assert set(failures) == {"kg-001", "kg-004", "kg-005"}
    assert f"**K-Score: {summary['overall']:.2f}**" in report
    assert (out / "charts" / "categories.png").stat().st_size > 0 and (out / "charts" / "groups.png").is_file()

    # --protocol published drops the failed generation: pop is then anime only.
    requests_before = len(judge.requests)
    code, output = bench(
        "knowgen",
        "--data",
        str(data),
        "--out",
        str(out),
        "--stage",
        "report",
        "--protocol",
        "published",
        "--no-progress",
    )
    assert code == 0, output
    published = json.loads((out / "summary.json").read_text())
    assert published["failures"] == "drop"
    assert published["groups"]["pop_culture_and_news"]["n"] == 1
    assert published["groups"]["pop_culture_and_news"]["score"] == pytest.approx(50)
    assert published["overall"] > summary["overall"]
    assert published["overall_other_failures"] == pytest.approx(summary["overall"])
    assert "published protocol" in (out / "report.md").read_text()
    assert len(judge.requests) == requests_before  # the report stage calls nobody


def test_rerun_skips_done_and_retry_failed_redoes_failures(
    tmp_path: Path, render_server: RenderServer, render_url: str
) -> None:
    data = make_knowgen(tmp_path / "data", 4)
    judge = ScriptedJudge(default=kscore_reply(1, 1, 1, 1))
    judge.when("Prompt number 2 ", 400, kscore_reply(0, 0, 0, 0))  # first a refusal, later a reply
    out = tmp_path / "run"
    with serve_judge(judge) as judge_url:
        assert bench(*knowgen_args(data, out, render_url, judge_url))[0] == 0
        assert Journal(out / "judgements.jsonl").get("kg-002")["ok"] is False
        renders, judged = len(render_server.prompts), len(judge.requests)
        assert bench(*knowgen_args(data, out, render_url, judge_url))[0] == 0
        assert (len(render_server.prompts), len(judge.requests)) == (renders, judged)  # nothing redone
        assert bench(*knowgen_args(data, out, render_url, judge_url, "--retry-failed"))[0] == 0
        assert len(render_server.prompts) == renders and len(judge.requests) == judged + 1
    assert Journal(out / "judgements.jsonl").get("kg-002")["score"] == 0.0
    assert len(read_rows(out / "generations.jsonl")) == 4


def test_missing_generated_image_scores_as_failed_generation(tmp_path: Path, render_url: str) -> None:
    data = make_knowgen(tmp_path / "data", 2)
    out = tmp_path / "run"
    judge = ScriptedJudge(default=kscore_reply(1, 1, 1, 1))
    with serve_judge(judge) as judge_url:
        assert bench(*knowgen_args(data, out, render_url, judge_url, "--stage", "generate"))[0] == 0
        (out / Journal(out / "generations.jsonl").get("kg-001")["image"]).unlink()
        code, output = bench(*knowgen_args(data, out, render_url, judge_url))
    assert code == 0, output
    assert Journal(out / "judgements.jsonl").get("kg-001")["failure"] == "missing_image"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["failed_generation"] == 1
    assert summary["groups"]["science_and_knowledge"]["score"] == pytest.approx(50)  # 100 and 0


def test_bad_data_and_missing_key_fail_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            [
                {"id": "a", "prompt": "x", "meta": {"category": "cooking"}, "gt_image": "a.png"},
                {"id": "b", "meta": {"category": "art"}, "gt_image": "b.png"},
            ]
        )
    )
    code, output = bench("knowgen", "--data", str(bad), "--out", str(tmp_path / "r"), "--no-progress")
    assert code == 2
    assert "2 bad row(s)" in output and "unknown KnowGen category 'cooking'" in output and "row 2: no prompt" in output
    good = make_knowgen(tmp_path / "d", 1)
    code, output = bench("knowgen", "--data", str(good), "--out", str(tmp_path / "r"), "--no-progress")
    assert code == 2 and "the judge needs a key" in output


def test_score_published_results_file(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    write_png(outputs / "a.png")
    write_png(outputs / "b.png")
    write_png(tmp_path / "gt" / "a.png", (0, 0, 0))
    write_png(tmp_path / "gt" / "b.png", (0, 0, 0))
    write_png(tmp_path / "gt" / "c.png", (0, 0, 0))
    rows = [
        {
            "id": 1,
            "success": True,
            "prompt": "alpha poster",
            "meta": {"category": "posters", "difficulty": "hard"},
            "output_path": "outputs/a.png",
            "gt_image": "gt/a.png",
        },
        {
            "id": 2,
            "success": True,
            "prompt": "beta biology",
            "meta": {"category": "biology", "difficulty": "easy"},
            "output_path": str(outputs / "b.png"),
            "gt_image": "gt/b.png",
        },
        {
            "id": 3,
            "success": False,
            "prompt": "gamma film",
            "meta": {"category": "film", "difficulty": "easy"},
            "output_path": "",
            "gt_image": "gt/c.png",
        },
    ]
    results = tmp_path / "results.json"
    results.write_text(json.dumps(rows))
    judge = ScriptedJudge(default=kscore_reply(1, 1, 1, 1))
    judge.when("alpha", kscore_reply(1, 0.5, 1, 1))
    out = tmp_path / "scored"
    with serve_judge(judge) as judge_url:
        code, output = bench(
            "score",
            str(results),
            "--out",
            str(out),
            "--judge-url",
            judge_url,
            "--judge-model",
            "scripted",
            "--no-progress",
        )
    assert code == 0, output
    assert len(judge.requests) == 2  # the failed item is not judged
    summary = json.loads((out / "summary.json").read_text())
    assert summary["groups"]["science_and_knowledge"]["score"] == pytest.approx(100)
    pop = summary["groups"]["pop_culture_and_news"]
    assert pop["n"] == 2 and pop["visual_correctness"] == pytest.approx(25)  # posters 0.5, failed film 0
    tables = parse_tables((out / "report.md").read_text())
    assert {r["category"] for r in tables["Categories"]} == {"posters", "biology", "film"}
    assert "success: false" in {r["id"]: r for r in tables["Failures"]}["3"]["error"]
    # The published protocol drops the failure.
    code, _ = bench(
        "score", str(results), "--out", str(out), "--protocol", "published", "--stage", "report", "--no-progress"
    )
    assert code == 0
    assert json.loads((out / "summary.json").read_text())["groups"]["pop_culture_and_news"]["n"] == 1


def test_compare_runs(tmp_path: Path, render_url: str) -> None:
    data = make_knowgen(tmp_path / "data", 6)
    runs = {}
    for name, reply in (("weak", kscore_reply(0.5, 0, 0, 0.5)), ("strong", kscore_reply(1, 1, 1, 1))):
        with serve_judge(ScriptedJudge(default=reply)) as judge_url:
            assert bench(*knowgen_args(data, tmp_path / name, render_url, judge_url))[0] == 0
        runs[name] = json.loads((tmp_path / name / "summary.json").read_text())["overall"]
    code, output = bench("compare", str(tmp_path / "weak"), str(tmp_path / "strong"), "--out", str(tmp_path / "cmp"))
    assert code == 0, output
    rows = {r["metric"]: r for r in parse_tables(output)["Comparison"]}
    assert float(rows["overall"]["weak"]) == pytest.approx(runs["weak"], abs=0.005)
    assert float(rows["overall"]["strong"]) == pytest.approx(100)
    assert "category: astronomy" in rows and "science_and_knowledge" in rows
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 0
    table, _, wrote = output.partition("\nwrote ")
    assert (tmp_path / "cmp" / "compare.md").read_text() == table + "\n"  # the tables, then every page written
    written = {line.removeprefix("wrote ") for line in ("wrote " + wrote).splitlines()}
    assert written == {str(tmp_path / "cmp" / name) for name in ("compare.html", "compare.md", "compare.png")}
    # Different benchmarks (or WISE protocols) are refused.
    wise_dir = tmp_path / "wise"
    wise_dir.mkdir()
    (wise_dir / "summary.json").write_text(json.dumps({"benchmark": "wise", "protocol": "legacy"}))
    code, output = bench("compare", str(tmp_path / "weak"), str(wise_dir))
    assert code == 2 and "cannot be compared" in output
    code, output = bench("compare", str(tmp_path / "weak"), str(tmp_path / "nothing"))
    assert code == 2 and "no summary.json" in output


WISE_DIR = wise_data_dir()


@pytest.mark.skipif(not WISE_DIR.is_dir(), reason="WISE prompts not available")
@pytest.mark.parametrize("protocol", ["legacy", "verified"])
def test_wise_on_real_prompts(tmp_path: Path, render_url: str, protocol: str) -> None:
    # A few real WISE prompts from two files, so that several categories are present.
    data = tmp_path / "wise"
    data.mkdir()
    source = WISE_DIR / protocol
    for path in sorted(source.iterdir())[:2]:
        rows = json.loads(path.read_text())
        (data / path.name).write_text(json.dumps(rows[:2] + rows[-2:]))
    judge = ScriptedJudge()
    if protocol == "legacy":
        judge.default = json.dumps({"consistency": 2, "realism": 2, "aesthetic_quality": 2})
        judge.when("mooncakes", json.dumps({"consistency": 0, "realism": 1, "aesthetic_quality": 2}))
    else:
        judge.default = json.dumps({"passed": True})
        judge.when("mooncakes", json.dumps({"passed": False}))
    out = tmp_path / "run"
    with serve_judge(judge) as judge_url:
        code, output = bench(
            "wise",
            "--data",
            str(data),
            "--protocol",
            protocol,
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
        )
    assert code == 0, output
    assert all("EXPLANATION" in r["messages"][1]["content"][0]["text"] for r in judge.requests)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["scored"] == 8
    cats = summary["categories"]
    assert set(cats) == {"cultural", "biology", "chemistry"}  # first and last rows of two files
    # mooncakes (prompt 1): legacy (0.7*0 + 0.2*1 + 0.1*2) / 2 = 0.2; verified: a fail
    expected_cultural = ((0.2 if protocol == "legacy" else 0.0) + 3 * 1.0) / 4
    assert cats["cultural"]["score"] == pytest.approx(expected_cultural)
    weights = summary["weights"]
    present = {c: cats[c]["score"] for c in cats}
    expected = sum(weights[c] * s for c, s in present.items()) / sum(weights[c] for c in present)
    assert summary["overall"] == pytest.approx(expected)
    report = (out / "report.md").read_text()
    assert "Only 3 of 6 categories have scored items" in report
    table = {r["category"]: r for r in parse_tables(report)["Categories"]}
    assert float(table["cultural"]["weight"]) == pytest.approx(0.4)
    if protocol == "legacy":
        assert float(table["cultural"]["consistency"]) == pytest.approx(1.5)


def test_killed_run_resumes_without_lost_or_duplicated_rows(tmp_path: Path) -> None:
    n = 12
    data = make_knowgen(tmp_path / "data", n)
    render_server = RenderServer(delay_s=0.25)
    judge = ScriptedJudge(default=kscore_reply(1, 1, 1, 1))
    out = tmp_path / "run"
    env = dict(os.environ)  # the autouse fixture has cleared the developer's settings and keys
    with serve_app(render_server.app()) as render_url, serve_judge(judge) as judge_url:
        cmd = [
            sys.executable,
            "-c",
            "from gen_searcher_core.commands import main; main()",
            "bench",
            *knowgen_args(data, out, render_url, judge_url, "--concurrency", "2"),
        ]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: len(read_rows(out / "generations.jsonl")) >= 4 or proc.poll() is not None, timeout=60)
            assert proc.poll() is None, proc.communicate()[0]  # still running: it died before the kill otherwise
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
        done_before = {r["id"] for r in read_rows(out / "generations.jsonl")}
        assert 4 <= len(done_before) < n
        # Simulate the worst case of a crash mid-write: a torn last line.
        with (out / "judgements.jsonl").open("ab") as fh:
            fh.write(b'{"id": "kg-0')
        rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    gen_rows = read_rows(out / "generations.jsonl")
    judge_rows = read_rows(out / "judgements.jsonl")
    ids = {f"kg-{i:03d}" for i in range(n)}
    assert sorted(r["id"] for r in gen_rows) == sorted(ids)  # none lost, none twice
    assert sorted(r["id"] for r in judge_rows) == sorted(ids)
    renders = Counter(f"kg-{int(p.split()[2]):03d}" for p in render_server.prompts)
    assert all(renders[i] == 1 for i in done_before)  # finished items were not rendered again
    assert sum(renders.values()) <= n + 2  # at most the in-flight items (concurrency 2) were redone
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["scored"] == n and summary["overall"] == pytest.approx(100)


def test_progress_output_shows_counts(tmp_path: Path, render_url: str) -> None:
    data = make_knowgen(tmp_path / "data", 2, fail={1})
    with serve_judge(ScriptedJudge(default=kscore_reply(1, 1, 1, 1))) as judge_url:
        args = [a for a in knowgen_args(data, tmp_path / "run", render_url, judge_url) if a != "--no-progress"]
        code, output = bench(*args)
    assert code == 0
    assert "generate: 1 done, 1 failed" in output
    assert "1 failed" in output and "2/2" in output


def test_transient_failures_are_not_recorded_and_a_rerun_finishes(
    tmp_path: Path, render_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.loopback import free_port

    monkeypatch.setenv("GEN_SEARCHER_JUDGE_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("GEN_SEARCHER_JUDGE_BACKOFF_INITIAL_S", "0.01")
    data = make_knowgen(tmp_path / "data", 3)
    out = tmp_path / "run"
    down = f"http://127.0.0.1:{free_port()}"
    judge = ScriptedJudge(default=kscore_reply(1, 1, 1, 1))
    judge.when("Prompt number 1 ", 503)  # overloaded judge for this item, however often it is asked
    with serve_judge(judge) as judge_url:
        code, output = bench(*knowgen_args(data, out, down, judge_url))
        assert code == 0, output
        assert read_rows(out / "generations.jsonl") == []  # renderer down: nothing recorded
        assert "not recorded" in output
        assert json.loads((out / "summary.json").read_text())["counts"]["pending"] == 3
        code, output = bench(*knowgen_args(data, out, render_url, judge_url))
        assert code == 0, output
        assert len(read_rows(out / "generations.jsonl")) == 3
        assert {r["id"] for r in read_rows(out / "judgements.jsonl")} == {"kg-000", "kg-002"}
        assert len([r for r in judge.requests if "Prompt number 1 " in str(r)]) == 2  # MAX_ATTEMPTS from env
        judge.rules.clear()  # the judge recovers; a plain rerun judges the missing item
        code, output = bench(*knowgen_args(data, out, render_url, judge_url))
        assert code == 0, output
    assert {r["id"] for r in read_rows(out / "judgements.jsonl")} == {"kg-000", "kg-001", "kg-002"}
    assert json.loads((out / "summary.json").read_text())["counts"]["scored"] == 3


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path: Path) -> None:
    data = make_knowgen(tmp_path / "data", 10)
    render_server = RenderServer(stall_after=2)  # the third render hangs: the interrupt lands mid-run
    out = tmp_path / "run"
    env = dict(os.environ)  # the autouse fixture has cleared the developer's settings and keys
    with (
        serve_app(render_server.app()) as render_url,
        serve_judge(ScriptedJudge(default=kscore_reply(1, 1, 1, 1))) as judge_url,
    ):
        cmd = [
            sys.executable,
            "-c",
            # Ctrl-C as in a terminal: a test run started in the background (CI under `cmd &`)
            # hands its children SIGINT ignored, and Python then never raises KeyboardInterrupt.
            "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from gen_searcher_core.commands import main; main()",
            "bench",
            *knowgen_args(data, out, render_url, judge_url, "--concurrency", "1"),
        ]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: len(read_rows(out / "generations.jsonl")) >= 2 or proc.poll() is not None, timeout=60)
            assert proc.poll() is None, proc.communicate()
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, stderr
    assert "rerun the same command to resume" in stderr
    rows = read_rows(out / "generations.jsonl")
    assert 2 <= len(rows) < 10 and len({r["id"] for r in rows}) == len(rows)


def test_policy_option_is_validated(tmp_path: Path) -> None:
    data = make_knowgen(tmp_path / "d", 1)
    base = [
        "knowgen",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "r"),
        "--judge-url",
        "http://127.0.0.1:9/v1",
        "--no-progress",
    ]
    code, output = bench(*base, "--policy", "qwen")
    assert code == 2 and "--policy must be none, baseline or a model server URL" in output
    code, output = bench(*base, "--policy", "http://127.0.0.1:9/v1")
    assert code == 2 and "--policy-model is required" in output
    code, output = bench(*base, "--policy", "none")  # no renderer configured anywhere
    assert code == 2 and "no renderer" in output
