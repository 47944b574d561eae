"""The stages of a resumable run, each on its own: what is pending, one generation, one judgement, the counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from benchmark.datasets import Item
from benchmark.generate import Generation, GenerationError
from benchmark.journal import Journal
from benchmark.judge import JudgeError
from benchmark.resumable_run import (
    Pending,
    RunPaths,
    StageCounts,
    count_outcome,
    generation_row,
    judgement_row,
)


class Painter:
    """A real generator that writes a flat PNG, or fails as told."""

    name = "painter"

    def __init__(self, fail: GenerationError | None = None) -> None:
        self.fail = fail

    async def generate(self, item: Item, out_path: Path) -> Generation:
        if self.fail is not None:
            raise self.fail
        out_path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(out_path)
        return Generation(image=out_path, gen_prompt=f"drawn: {item.prompt}", seed=3)

    async def aclose(self) -> None:
        return None


class Score:
    def __init__(self, score: float) -> None:
        self.score = score

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score}


class Judge:
    model = "judge-1"


def _item(tmp_path: Path, name: str = "a/1", gt: bool = False) -> Item:
    gt_image = tmp_path / "gt.png" if gt else None
    return Item(id=name, prompt="a fox", category="animals", gt_image=gt_image)


def test_pending_follows_the_journals(tmp_path: Path) -> None:
    generations, judgements = Journal(tmp_path / "g.jsonl"), Journal(tmp_path / "j.jsonl")
    done, failed, fresh = (Item(id=i, prompt="p", category="c") for i in ("done", "failed", "fresh"))
    generations.append_sync({"id": "done", "ok": True})
    generations.append_sync({"id": "failed", "ok": False})
    judgements.append_sync({"id": "done", "ok": False, "failure": "missing_gt"})
    plain = Pending(generations, judgements)
    assert [plain.generation(i) for i in (done, failed, fresh)] == [False, False, True]
    assert plain.settled(done) and plain.settled(failed) and not plain.settled(fresh)
    retry = Pending(generations, judgements, retry_failed=True, recheck=frozenset({"done"}))
    assert retry.generation(failed) and retry.judgement(done) and not retry.settled(done)
    assert not retry.settled(failed)  # its generation runs again, so its judgement is still to come


@pytest.mark.anyio
async def test_one_generation_row(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path / "run")
    row, transient = await generation_row(Painter(), _item(tmp_path), paths)
    assert (row["ok"], row["gen_prompt"], row["seed"], transient) == (True, "drawn: a fox", 3, False)
    assert (paths.root / row["image"]).is_file() and not Path(row["image"]).is_absolute()
    row, transient = await generation_row(
        Painter(GenerationError("renderer down", transient=True)), _item(tmp_path), paths
    )
    assert (row["ok"], row["error"], transient) == (False, "renderer down", True)


@pytest.mark.anyio
async def test_one_judgement_row(tmp_path: Path) -> None:
    image = tmp_path / "img.png"
    Image.new("RGB", (8, 8)).save(image)

    async def judge_item(judge: Any, item: Item, path: Path) -> Score:
        return Score(0.75)

    async def refuse(judge: Any, item: Item, path: Path) -> Score:
        raise JudgeError("judge unreachable", raw="busy", transient=True)

    row, transient = await judgement_row(Judge(), judge_item, _item(tmp_path), {"image": str(image)}, tmp_path)
    assert (row["ok"], row["score"], row["judge_model"], transient) == (True, 0.75, "judge-1", False)
    row, transient = await judgement_row(Judge(), refuse, _item(tmp_path), {"image": str(image)}, tmp_path)
    assert (row["failure"], row["raw"], transient) == ("judge", "busy", True)
    row, _ = await judgement_row(Judge(), judge_item, _item(tmp_path), {"image": "gone.png"}, tmp_path)
    assert row["failure"] == "missing_image" and "gone.png" in row["error"]
    row, _ = await judgement_row(Judge(), judge_item, _item(tmp_path, gt=True), {"image": str(image)}, tmp_path)
    assert row["failure"] == "missing_gt"


def test_counts_say_which_failures_a_rerun_retries() -> None:
    counts = StageCounts()
    item = Item(id="x", prompt="p", category="c")
    count_outcome(counts, item, {"ok": True}, False)
    count_outcome(counts, item, {"ok": False, "error": "bad prompt"}, False)
    count_outcome(counts, item, {"ok": False, "error": "renderer down"}, True)
    assert (counts.done, counts.failed) == (1, 2)
    assert counts.errors == ["x: bad prompt", "x: renderer down (not recorded; a rerun tries again)"]
