"""Journals, data loaders (real WISE files) and the judge's rate limit."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from benchmark.datasets import DatasetError, load_knowgen, load_results, load_wise
from benchmark.journal import Journal, read_rows
from benchmark.judge import JudgeClient
from tests.benchmark.helpers import fast_settings, wise_data_dir
from tests.support.scripted_judge import ScriptedJudge, serve_judge

WISE_DIR = wise_data_dir()


def test_journal_survives_torn_and_garbage_lines(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = Journal(path)
    journal.append_sync({"id": "a", "v": 1})
    journal.append_sync({"id": "b", "v": 1})
    with path.open("ab") as fh:
        fh.write(b"not json at all\n")
        fh.write(b'{"id": "c", "v"')  # torn by a crash
    reopened = Journal(path)
    assert set(reopened.rows) == {"a", "b"} and reopened.dropped_lines == 2
    assert path.read_bytes().endswith(b"not json at all\n")  # the torn tail is cut off, nothing else
    reopened.append_sync({"id": "c", "v": 2})
    reopened.append_sync({"id": "a", "v": 3})
    final = Journal(path)
    assert final.get("a")["v"] == 3 and final.get("c")["v"] == 2  # the later row wins
    assert [r["id"] for r in read_rows(path)] == ["a", "b", "c", "a"]


@pytest.mark.anyio
async def test_journal_async_appends_from_many_tasks(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    async with anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(journal.append, {"id": str(i), "text": "x" * 5000})
    rows = read_rows(tmp_path / "j.jsonl")
    assert sorted(int(r["id"]) for r in rows) == list(range(50))


@pytest.mark.skipif(not WISE_DIR.is_dir(), reason="WISE prompts not available")
def test_real_wise_files_load_with_the_published_split() -> None:
    from collections import Counter

    legacy = load_wise(WISE_DIR / "legacy")
    assert Counter(i.category for i in legacy) == {
        "cultural": 400,
        "time": 167,
        "space": 133,
        "biology": 100,
        "physics": 100,
        "chemistry": 100,
    }
    verified = load_wise(WISE_DIR / "verified")
    assert Counter(i.category for i in verified) == {
        "cultural": 400,
        "time": 120,
        "space": 120,
        "biology": 120,
        "physics": 120,
        "chemistry": 120,
    }
    assert legacy[0].id == "1" and legacy[0].explanation and legacy[-1].id == "1000"


def test_knowgen_loader_validates_every_row(tmp_path: Path) -> None:
    rows = [
        {
            "id": "x1",
            "prompt": "p",
            "meta": {"category": "Multi-subject Game", "difficulty": "hard"},
            "gt_image": "a.png",
        },
        {"id": "x2", "prompt": "p", "category": "Biology", "gt_image": "/abs/b.png"},
    ]
    path = tmp_path / "kg.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")  # JSON lines are accepted too
    items = load_knowgen(path, tmp_path / "imgs")
    assert [i.group for i in items] == ["pop_culture_and_news", "science_and_knowledge"]
    assert items[0].gt_image == tmp_path / "imgs" / "a.png" and items[1].gt_image == Path("/abs/b.png")
    path.write_text(json.dumps([*rows, dict(rows[0])]))
    with pytest.raises(DatasetError, match="duplicate ids: x1"):
        load_knowgen(path)
    path.write_text(json.dumps([{"id": "y", "prompt": "p", "meta": {"category": "art"}}, 5]))
    with pytest.raises(DatasetError, match=r"2 bad row\(s\): row 1: no gt_image; row 2: not an object"):
        load_knowgen(path)
    with pytest.raises(DatasetError, match="data file not found"):
        load_knowgen(tmp_path / "missing.json")


def test_results_loader(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(
        json.dumps(
            [
                {
                    "id": 7,
                    "success": True,
                    "prompt": "p",
                    "meta": {"category": "news"},
                    "output_path": "o/7.png",
                    "gt_image": "g/7.png",
                },
                {
                    "id": 8,
                    "success": "yes",
                    "prompt": "p",
                    "meta": {"category": "news"},
                    "output_path": "",
                    "gt_image": "g",
                },
            ]
        )
    )
    with pytest.raises(DatasetError, match="row 2: success must be true or false"):
        load_results(path)
    path.write_text(json.dumps([json.loads(path.read_text())[0]]))
    (item,) = load_results(path, tmp_path / "gts", tmp_path / "outs")
    assert item.id == "7" and item.output_path == tmp_path / "outs" / "o/7.png"
    assert item.gt_image == tmp_path / "gts" / "g/7.png"


@pytest.mark.anyio
async def test_judge_rate_limit_spaces_requests() -> None:
    judge = ScriptedJudge(default='{"score": 1}')
    with serve_judge(judge) as url:
        async with JudgeClient(fast_settings(url, rate_limit_per_s=10, max_concurrency=8)) as client:
            start = anyio.current_time()
            async with anyio.create_task_group() as tg:
                for _ in range(4):
                    tg.start_soon(client.complete, [{"role": "user", "content": "x"}])
            elapsed = anyio.current_time() - start
    assert elapsed >= 0.29  # starts at 0, 0.1, 0.2, 0.3 s
    assert len(judge.requests) == 4
