"""The offline decisions one by one: gate, hashes, selection, band, split; teacher-written prompts; shards."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from synth.calibrate import band
from synth.gate import Benchmark, dhash, hamming, offline_gate
from synth.items import Item, Spec, normalise
from synth.journal import RunFolder
from synth.merge import merge
from synth.prompts import written_prompts
from synth.run import reevaluate, run_synth, shard_of
from synth.select import choose
from synth.services import ChatService, Costs
from synth.settings import CalibrateSettings, GateSettings, SelectSettings, SplitSettings
from synth.smoke_services import pattern_image
from synth.split import Candidate, assign
from tests.support.tool_server import ToolServer
from tests.synth.conftest import Fakes, settings_for, write_jsonl
from tests.synth.scenario import GOOD


def item(i: int, prompt: str, subject: str | None = None, category: str = "art") -> Item:
    return Item(id=f"u{i}", prompt=prompt, category=category, spec=Spec(subjects=[subject] if subject else []))


def test_gate_finds_duplicates_entity_caps_and_contamination() -> None:
    bench = Benchmark(
        prompts=[
            ("kg#1", normalise("one two three four five six seven eight nine ten eleven twelve thirteen fourteen")),
            ("kg#2", normalise("a watercolour of the old harbour market at dawn with fishing boats and gulls")),
        ]
    )
    items = [
        item(0, "Draw the Quorvath Bridge at dusk with paper lanterns.", "Quorvath"),
        item(1, "draw the quorvath bridge at dusk, with paper lanterns", "Quorvath"),
        item(2, "Draw the Quorvath Bridge at dusk with the paper lanterns.", "Bridge B"),
        item(3, "Paint the Quorvath Bridge towers at noon in the rain.", "Quorvath"),
        item(4, "Show a poster: one two three four five six seven eight nine ten eleven twelve thirteen here", "X"),
        item(5, "Show a poster: one two three four five six seven eight alone in a field", "Y"),
        item(6, "A watercolour of the old harbour market seen at dawn with fishing boats and gulls", "Z"),
    ]
    reasons = offline_gate(items, GateSettings(max_per_entity=1), bench)
    assert reasons == {
        "u0": None,
        "u1": "duplicate",
        "u2": "near duplicate",
        "u3": "entity cap",
        "u4": "contaminated: 13-gram overlap",
        "u5": "contaminated: 8-gram overlap",
        "u6": "contaminated: near copy of a benchmark prompt",
    }


def test_dhash_survives_resizing_but_not_another_picture() -> None:
    a = pattern_image("one prompt", (256, 256))
    small = io.BytesIO()
    Image.open(io.BytesIO(a)).resize((61, 47)).save(small, format="JPEG", quality=70)
    assert hamming(dhash(a), dhash(small.getvalue())) <= 8
    assert hamming(dhash(a), dhash(pattern_image("another prompt"))) > 8


def _summary(valid: bool = True, tools: int = 2, searches: int = 1, refs: int = 1) -> dict:
    return {
        "valid": valid,
        "termination": "answered" if valid else "max_turns",
        "references": refs,
        "image_searches": searches,
        "tool_calls": tools,
        "tokens_est": 100,
        "hallucinated": False,
    }


def _scores(score: float) -> dict:
    return {"score": score, "image_score": score, "text_score": score}


def test_select_takes_the_best_then_the_fewest_tool_calls_then_the_first() -> None:
    settings = SelectSettings()
    rollouts = [
        (0, _summary(tools=4), _scores(0.9)),
        (1, _summary(tools=2), _scores(0.9)),
        (2, _summary(tools=2), _scores(0.9)),
        (3, _summary(tools=1), _scores(0.6)),
    ]
    assert choose(rollouts, settings)[0] == 1
    chosen, reason, problems = choose([(0, _summary(valid=False), None), (1, _summary(searches=0), None)], settings)
    assert chosen is None and reason == "no rollout passed (too few image searches)"
    assert problems[0] == "no valid answer (max_turns)"


def test_the_band_keeps_prompts_whose_reward_varies() -> None:
    settings = CalibrateSettings()
    assert band([0.0, 1.0, 0.5, 0.5], settings)[0] is None
    assert band([0.0, 0.0], settings)[0].startswith("too hard")
    assert band([1.0, 1.0], settings)[0].startswith("too easy")
    assert band([0.5, 0.5], settings)[0] == "reward does not vary across rollouts"


def test_the_split_keeps_entities_together_and_is_seeded() -> None:
    candidates = [
        Candidate(f"i{n}", category, f"{category}-e{n % 5}", sft=n % 3 != 0, rl=True)
        for category in ("art", "sports", "biology")
        for n in range(20)
    ]
    first = assign(candidates, SplitSettings(seed=1))
    assert first == assign(candidates, SplitSettings(seed=1))
    assert first != assign(candidates, SplitSettings(seed=2))
    by_entity: dict[str, set[str | None]] = {}
    for cand in candidates:
        by_entity.setdefault(cand.entity, set()).add(first[cand.item_id][0])
    assert all(len({s for s in splits if s}) == 1 for splits in by_entity.values())
    assert {s for s, _ in first.values()} >= {"sft", "rl", "dev"}
    dropped = [why for split, why in first.values() if split is None]
    assert all(why == "its entity group went to sft, where it is not eligible" for why in dropped)


@pytest.mark.anyio
async def test_teacher_written_prompts_are_journaled_per_category(fakes: Fakes, tmp_path: Path) -> None:
    costs = Costs()
    teacher = ChatService("teacher", settings_for(fakes, None).teacher, costs)
    journal = RunFolder(tmp_path).journal("prompts_written")
    try:
        items, problems = await written_prompts(teacher, ["art", "sports"], 3, journal)
        again, _ = await written_prompts(teacher, ["art", "sports"], 3, journal)
    finally:
        await teacher.aclose()
    assert problems == [] and len(items) == 6 and {i.category for i in items} == {"art", "sports"}
    assert [i.model_dump() for i in again] == [i.model_dump() for i in items]
    assert fakes.count()["teacher"] == 2 and costs.counts["teacher_calls"] == 2
    assert all(i.source == "teacher" and i.spec.facts and i.spec.subjects for i in items)


@pytest.mark.parametrize("shards", [2])
def test_shards_merge_into_the_run_one_machine_makes(
    shards: int, fakes: Fakes, tools: ToolServer, tmp_path: Path
) -> None:
    rows = [
        {"id": f"m{i}", "prompt": p, "category": c, "subjects": [s], "facts": [s]}
        for i, (p, c, s) in enumerate(GOOD[:4])
    ]
    prompts = write_jsonl(tmp_path / "p.jsonl", rows)
    settings = settings_for(fakes, tools.url)
    parts = [tmp_path / f"shard{i}" for i in range(shards)]
    for index, part in enumerate(parts):
        run_synth(RunFolder(part), settings, [prompts], shard=(index, shards), progress=False)
    calls = fakes.count()
    merged = RunFolder(tmp_path / "merged")
    merge(parts, merged.root)
    _, shape = reevaluate(merged)
    assert shape["stages"]["prompts"]["in"] == 4 and shape["stages"]["export"]["kept"] == 4
    whole = run_synth(RunFolder(tmp_path / "whole"), settings, [prompts], progress=False)
    assert whole.shape == shape
    assert fakes.count() == {k: 2 * v for k, v in calls.items()}  # the shards did the same work, once
    assert (
        sum(len(shard_of(whole.outcomes and [o.item for o in whole.outcomes], (i, shards))) for i in range(shards)) == 4
    )


def test_knowgen_and_wise_are_read_by_the_benchmarks_own_loaders(tmp_path: Path) -> None:
    import json

    from synth.gate import load_benchmarks

    (tmp_path / "gt.png").write_bytes(pattern_image("a knowgen ground truth"))
    knowgen = tmp_path / "knowgen.json"
    prompt = "Generate the Golden Gate Bridge painted in International Orange at sunset with fog rolling in"
    knowgen.write_text(
        json.dumps([{"id": "k1", "prompt": prompt, "meta": {"category": "architecture"}, "gt_image": "gt.png"}])
    )
    wise = tmp_path / "wise"
    wise.mkdir()
    wise_prompt = "The animal that is the national symbol of Australia hopping across a red desert"
    (wise / "cultural.json").write_text(
        json.dumps(
            [{"prompt_id": 1, "Prompt": wise_prompt, "Explanation": "a kangaroo", "Category": "Cultural knowledge"}]
        )
    )
    settings = GateSettings(knowgen_file=str(knowgen), wise_dir=str(wise))
    bench = load_benchmarks(settings)
    assert [s for s, _ in bench.prompts] == ["knowgen#k1", "wise#1"]
    assert bench.image_hashes == [("knowgen#k1", dhash(pattern_image("a knowgen ground truth")))]
    items = [item(0, prompt.replace("Generate", "Draw"), "GG"), item(1, wise_prompt + " at noon", "kangaroo")]
    assert offline_gate(items, settings, bench) == {
        "u0": "contaminated: 13-gram overlap",
        "u1": "contaminated: 13-gram overlap",
    }


def _most_at_once(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    now = most = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


@pytest.mark.anyio
async def test_each_service_keeps_its_own_concurrency_limit(fakes: Fakes) -> None:
    import anyio

    settings = settings_for(fakes, None).teacher.model_copy(update={"max_concurrency": 2})
    teacher = ChatService("teacher", settings, Costs())
    fakes.services.services["teacher"].delay_s = 0.2
    try:
        async with anyio.create_task_group() as group:
            for n in range(6):
                group.start_soon(
                    teacher.chat_for(n).chat, [{"role": "user", "content": f"Write 1 distinct requests {n}"}]
                )
    finally:
        fakes.services.services["teacher"].delay_s = 0.0
        await teacher.aclose()
    assert len(fakes.log("teacher")) == 6
    assert _most_at_once(fakes.services.services["teacher"].intervals) == 2


def test_a_run_with_teacher_written_prompts_only(fakes: Fakes, tools: ToolServer, tmp_path: Path) -> None:
    settings = settings_for(fakes, tools.url, prompts={"per_category": 1, "categories": ["art"]})
    folder = RunFolder(tmp_path / "run")
    result = run_synth(folder, settings, [], progress=False)
    assert result.failure is None
    assert [o.item.source for o in result.outcomes] == ["teacher"]
    assert result.shape["stages"]["export"]["kept"] == 1
    calls = fakes.count()
    assert run_synth(folder, settings, [], progress=False).shape == result.shape
    assert fakes.count() == calls  # the written prompts and everything after them are journaled
