"""The dual reward end to end: the real tool server renders with a tiny Qwen-Image pipeline, a scripted judge grades."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from gen_searcher_core.episode_record import EpisodeAnswer, EpisodeRecord, ResolvedReference, Termination
from tests.support.scripted_judge import ScriptedJudge, kscore_reply, serve_judge
from tests.verl.conftest import png_bytes

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

KSCORE = "Grade the CANDIDATE"
TEXT = "Generation prompt:"


@pytest.fixture(autouse=True)
def _fast_judge_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEN_SEARCHER_JUDGE_BACKOFF_INITIAL_S", "0")
    monkeypatch.setenv("GEN_SEARCHER_JUDGE_BACKOFF_MAX_S", "0")


@pytest.fixture
def ground_truth(tmp_path: Path) -> Path:
    path = tmp_path / "gt.png"
    path.write_bytes(png_bytes((40, 160, 120), (96, 64)))
    return path


async def found_image(server: Any) -> str:
    from policy.mcp_client import McpConnection

    conn = McpConnection(server.url)
    result = await conn.call_tool("image_search", {"query": "Quorvath Bridge", "top_k": 1})
    await conn.aclose()
    return result.structured_content["images"][0]["id"]


GEN_PROMPT = "The copper-green Quorvath Bridge from the first reference image"


def episode(
    store_id: str | None,
    *,
    valid: bool = True,
    loss_masked: bool = False,
    generator_ids: list[str] | None = None,
) -> dict[str, Any]:
    """``extra_info["gen_searcher"]`` as the agent loop writes it: an episode record's JSON dump."""
    answer = None
    if valid:
        answer = EpisodeAnswer(
            gen_prompt=GEN_PROMPT,
            references=(ResolvedReference(img_id="IMG_001", store_id=store_id, note="NOTE-bridge-at-dusk"),),
            generator_image_ids=tuple(generator_ids if generator_ids is not None else [store_id] if store_id else []),
        )
    record = EpisodeRecord(
        prompt="Draw the Quorvath Bridge.",
        termination=Termination.ANSWERED if valid else Termination.MAX_TURNS,
        answer=answer,
        loss_masked=loss_masked,
    )
    return record.model_dump(mode="json")


def older_summary(store_id: str | None, *, valid: bool = True) -> dict[str, Any]:
    """The agent loop's summary before the episode record (gen_prompt at the top and in the answer)."""
    return {
        "termination": "answered" if valid else "max_turns",
        "valid": valid,
        "prompt": "Draw the Quorvath Bridge.",
        "gen_prompt": GEN_PROMPT if valid else None,
        "answer": {
            "gen_prompt": GEN_PROMPT,
            "reference_images": [{"img_id": "IMG_001", "note": "NOTE-bridge-at-dusk"}],
        }
        if valid
        else None,
        "generator_image_ids": [store_id] if store_id else [],
    }


def kwargs(server: Any, judge_url: str, **extra: Any) -> dict[str, Any]:
    return {"render_mcp_url": server.url, "judge_base_url": judge_url, "judge_model": "scripted", **extra}


async def test_render_and_judge_combine_into_the_score(render_server: Any, ground_truth: Path) -> None:
    from verl_recipes.reward import RESULT_KEYS, compute_score

    store_id = await found_image(render_server)
    judge = ScriptedJudge()
    judge.when(KSCORE, kscore_reply(1.0, 0.5, 0.0, 1.0, na=True))  # 0.1 + 0.2 + 0.4*0.5 + 0.1 = 0.6
    judge.when(TEXT, json.dumps({"score": 0.75, "rationale": "mostly there"}))
    with serve_judge(judge) as judge_url:
        result = await compute_score(
            "knowgen",
            "",
            str(ground_truth),
            {"gen_searcher": episode(store_id), "id": "k1"},
            **kwargs(render_server, judge_url, text_weight=0.25),
        )
    assert set(result) == set(RESULT_KEYS)
    assert result["image_score"] == pytest.approx(0.6) and result["text_score"] == 0.75
    assert result["score"] == pytest.approx(0.75 * 0.6 + 0.25 * 0.75)
    assert result["valid"] == 1.0 and result["failed"] == 0.0
    assert len(judge.requests) == 2
    from tests.support.scripted_judge import image_urls, request_text

    by_kind = {("kscore" if KSCORE in request_text(r) else "text"): r for r in judge.requests}
    assert len(image_urls(by_kind["kscore"])) == 2  # the rendered image and the ground truth
    assert "NOTE-bridge-at-dusk" in request_text(by_kind["text"])  # the plan's reference notes are judged
    assert "Quorvath" in request_text(by_kind["kscore"])


async def test_only_the_first_references_go_to_the_generator(recording_render: Any, ground_truth: Path) -> None:
    from verl_recipes.reward import compute_score

    url, calls = recording_render
    ids = [f"img_{i:016x}" for i in range(5)]
    judge = ScriptedJudge()
    judge.when(KSCORE, kscore_reply(1.0, 1.0, 1.0, 1.0))
    judge.when(TEXT, json.dumps({"score": 1.0}))
    with serve_judge(judge) as judge_url:
        info = {"gen_searcher": episode(None, generator_ids=ids)}
        settings = {
            "render_mcp_url": url,
            "judge_base_url": judge_url,
            "judge_model": "m",
            "render_steps": 8,
            "render_seed": 7,
        }
        result = await compute_score("knowgen", "", str(ground_truth), info, **settings)
        assert result["score"] == pytest.approx(1.0) and result["failed"] == 0.0
        await compute_score("knowgen", "", str(ground_truth), info, **settings, generator_references=1)
    assert [c["refs"] for c in calls] == [ids[:3], ids[:1]]
    assert calls[0]["steps"] == 8 and calls[0]["seed"] == 7 and calls[0]["width"] is None
    assert calls[0]["prompt"] == GEN_PROMPT
    from tests.support.scripted_judge import image_urls

    kscore_request = next(r for r in judge.requests if KSCORE in str(r))
    assert len(image_urls(kscore_request)) == 2  # the image read back through image:// and the ground truth


async def test_default_weight_is_one_half(render_server: Any, ground_truth: Path) -> None:
    from verl_recipes.reward import compute_score

    judge = ScriptedJudge()
    judge.when(KSCORE, kscore_reply(1.0, 1.0, 1.0, 1.0))
    judge.when(TEXT, json.dumps({"score": 0.0}))
    with serve_judge(judge) as judge_url:
        result = await compute_score(
            "knowgen", "", str(ground_truth), {"gen_searcher": episode(None)}, **kwargs(render_server, judge_url)
        )
    assert result["score"] == pytest.approx(0.5)  # text-only render, image 1.0, text 0.0


async def test_episodes_without_an_answer_are_zero_or_masked(ground_truth: Path) -> None:
    from verl_recipes.reward import compute_score

    zero = await compute_score("knowgen", "", str(ground_truth), {"gen_searcher": episode(None, valid=False)})
    assert zero["score"] == 0.0 and zero["masked"] == 0.0 and zero["valid"] == 0.0
    masked = await compute_score("knowgen", "", str(ground_truth), {}, invalid="mask")
    assert masked["score"] == 0.0 and masked["masked"] == 1.0
    # The reward cannot mask by itself: it says so when the agent loop kept the episode's loss.
    failed = episode(None, valid=False, loss_masked=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        await compute_score("knowgen", "", str(ground_truth), {"gen_searcher": failed}, invalid="mask")
    with pytest.warns(RuntimeWarning, match="mask_invalid"):
        await compute_score(
            "knowgen", "", str(ground_truth), {"gen_searcher": episode(None, valid=False)}, invalid="mask"
        )


async def test_older_summaries_still_score(recording_render: Any, ground_truth: Path) -> None:
    """A rollout dump of before the episode record is read by the same reader, and scores the same."""
    from verl_recipes.reward import compute_score

    url, calls = recording_render
    judge = ScriptedJudge()
    judge.when(KSCORE, kscore_reply(1.0, 1.0, 1.0, 1.0))
    judge.when(TEXT, json.dumps({"score": 1.0}))
    settings = {"render_mcp_url": url, "judge_base_url": "", "judge_model": "m"}
    with serve_judge(judge) as judge_url:
        settings["judge_base_url"] = judge_url
        old = await compute_score(
            "knowgen", "", str(ground_truth), {"gen_searcher": older_summary("img_1")}, **settings
        )
        new = await compute_score("knowgen", "", str(ground_truth), {"gen_searcher": episode("img_1")}, **settings)
    assert old["score"] == new["score"] == pytest.approx(1.0) and old["valid"] == new["valid"] == 1.0
    assert [(c["refs"], c["prompt"]) for c in calls] == [(["img_1"], GEN_PROMPT)] * 2
    assert any("NOTE-bridge-at-dusk" in str(r) for r in judge.requests)  # the old answer's notes are judged
    invalid = await compute_score("knowgen", "", str(ground_truth), {"gen_searcher": older_summary(None, valid=False)})
    assert invalid["invalid"] == 1.0 and invalid["failed"] == 0.0


async def test_unreadable_episode_records_are_failures_not_zeros(ground_truth: Path) -> None:
    from verl_recipes.reward import RewardFailure, compute_score

    newer = {**episode("img_1"), "schema_version": 99}
    marked_valid_without_prompt = {**older_summary("img_1"), "gen_prompt": None, "answer": None}
    for bad in (newer, marked_valid_without_prompt, "not a record"):
        result = await compute_score("knowgen", "", str(ground_truth), {"gen_searcher": bad})
        assert result["failed"] == 1.0 and result["score"] == 0.0
    with pytest.raises(RewardFailure, match="schema_version 99 is newer"):
        await compute_score("knowgen", "", str(ground_truth), {"gen_searcher": newer}, on_failure="raise")


async def test_unknown_reward_kwargs_are_refused(ground_truth: Path) -> None:
    from verl_recipes.reward import compute_score

    with pytest.raises(ValueError, match="unknown reward_kwargs: text_weigth"):
        await compute_score("knowgen", "", str(ground_truth), {}, text_weigth=0.3)
    # What verl itself adds with a reward-model router is accepted.
    result = await compute_score("knowgen", "", str(ground_truth), {}, reward_router_address="127.0.0.1:1")
    assert result["score"] == 0.0


async def test_judge_failure_is_retried_then_flagged_not_scored(render_server: Any, ground_truth: Path) -> None:
    from verl_recipes.reward import compute_score

    judge = ScriptedJudge()
    judge.when(KSCORE, "not json", "still not json", "nope", "never")
    judge.when(TEXT, json.dumps({"score": 1.0}))
    with serve_judge(judge) as judge_url:
        result = await compute_score(
            "knowgen", "", str(ground_truth), {"gen_searcher": episode(None)}, **kwargs(render_server, judge_url)
        )
        assert result["failed"] == 1.0 and result["score"] == 0.0 and result["valid"] == 1.0
        assert sum(KSCORE in str(r) for r in judge.requests) == 4  # 2 attempts x (ask + one repair)


async def test_render_failure_is_reported(render_server: Any, ground_truth: Path) -> None:
    from verl_recipes.reward import RewardFailure, compute_score

    judge = ScriptedJudge(default=json.dumps({"score": 1.0}))
    with serve_judge(judge) as judge_url:
        result = await compute_score(
            "knowgen",
            "",
            str(ground_truth),
            {"gen_searcher": episode("img_0000000000000000")},
            **kwargs(render_server, judge_url, render_attempts=2),
        )
        assert result["failed"] == 1.0 and result["score"] == 0.0
        assert not any(KSCORE in str(r) for r in judge.requests)  # nothing to judge without an image
        with pytest.raises(RewardFailure, match="render failed after 1 attempts"):
            await compute_score(
                "knowgen",
                "",
                str(ground_truth),
                {"gen_searcher": episode("img_0000000000000000")},
                **kwargs(render_server, judge_url, render_attempts=1, on_failure="raise"),
            )


async def test_missing_ground_truth_is_a_failure_not_a_zero(tmp_path: Path) -> None:
    from verl_recipes.reward import compute_score

    result = await compute_score(
        "knowgen",
        "",
        str(tmp_path / "missing.png"),
        {"gen_searcher": episode(None)},
        render_mcp_url="http://127.0.0.1:9/mcp",
    )
    assert result["failed"] == 1.0


async def test_judge_registry_shares_one_client_per_judge(tmp_path: Path) -> None:
    from verl_recipes.reward import JudgeRegistry, RewardSettings

    settings = RewardSettings(judge_base_url="http://127.0.0.1:9/v1", judge_model="m", judge_rate_limit_per_s=2.0)
    judge_settings = settings.judge_settings()
    assert judge_settings.rate_limit_per_s == 2.0 and judge_settings.model == "m"
    registry = JudgeRegistry()
    first = registry.get(judge_settings)
    assert registry.get(settings.judge_settings()) is first  # every reward call of a worker: one client
    assert registry.get(RewardSettings(judge_model="other").judge_settings()) is not first
    assert len(registry) == 2
    await registry.aclose()
    assert len(registry) == 0 and registry.get(judge_settings) is not first
    registry.reset()
    assert len(registry) == 0


class CountingJudge(ScriptedJudge):
    """A scripted judge that records how many requests it was serving at once."""

    in_flight: int = 0
    peak: int = 0

    async def _chat(self, request: Any) -> Any:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await super()._chat(request)
        finally:
            self.in_flight -= 1


async def test_concurrent_reward_calls_share_the_judges_concurrency_cap(ground_truth: Path) -> None:
    """Reward calls each look their client up; the registry makes them share one cap (per-call clients would not)."""
    import anyio

    from benchmark.rubrics import judge_text
    from verl_recipes.reward import JudgeRegistry, RewardSettings

    judge = CountingJudge(default=json.dumps({"score": 0.5}), delay_s=0.25)
    with serve_judge(judge) as judge_url:
        settings = RewardSettings(judge_base_url=judge_url, judge_model="m", judge_max_concurrency=1)

        async def calls(registry_for_call: Any) -> None:
            async def one() -> None:
                client = registry_for_call().get(settings.judge_settings())
                await judge_text(client, gen_prompt="a bridge", reference_notes=[], gt_image=ground_truth)

            async with anyio.create_task_group() as group:
                for _ in range(3):
                    group.start_soon(one)

        shared = JudgeRegistry()
        await calls(lambda: shared)
        assert judge.peak == 1 and len(judge.requests) == 3
        await shared.aclose()
        judge.peak = 0
        fresh = [JudgeRegistry() for _ in range(3)]
        unused = list(fresh)
        await calls(lambda: unused.pop())
        for registry in fresh:
            await registry.aclose()
        assert judge.peak > 1  # the contrast: separate clients ignore each other's cap


async def test_every_episode_reports_the_same_keys(recording_render: Any, ground_truth: Path) -> None:
    """verl stacks the reward's extra info across a batch: valid, invalid, masked and failed episodes share keys."""
    from verl_recipes.reward import RESULT_KEYS, compute_score

    render_url, _ = recording_render
    judge = ScriptedJudge()
    judge.when(KSCORE, kscore_reply(1.0, 1.0, 1.0, 1.0), "not json", "never", "no")
    judge.when(TEXT, json.dumps({"score": 0.5}))
    with serve_judge(judge) as judge_url:
        common = {"render_mcp_url": render_url, "judge_base_url": judge_url, "judge_model": "m", "judge_attempts": 1}
        valid = await compute_score("k", "", str(ground_truth), {"gen_searcher": episode("img_1")}, **common)
        failed = await compute_score("k", "", str(ground_truth), {"gen_searcher": episode("img_1")}, **common)
    invalid = {"gen_searcher": episode(None, valid=False, loss_masked=True)}
    zero = await compute_score("k", "", str(ground_truth), invalid, **common)
    masked = await compute_score("k", "", str(ground_truth), invalid, **common, invalid="mask")
    results = {"valid": valid, "failed": failed, "invalid": zero, "masked": masked}
    assert {name: tuple(result) for name, result in results.items()} == dict.fromkeys(results, RESULT_KEYS)
    flags = {name: (r["valid"], r["invalid"], r["masked"], r["failed"]) for name, r in results.items()}
    assert flags == {
        "valid": (1.0, 0.0, 0.0, 0.0),
        "failed": (1.0, 0.0, 0.0, 1.0),
        "invalid": (0.0, 1.0, 0.0, 0.0),
        "masked": (0.0, 1.0, 1.0, 0.0),
    }


async def test_judge_limits_hold_for_the_whole_run_not_per_worker(ground_truth: Path) -> None:
    """Each scoring process (its own registry) gets 1/judge_workers of the run's judge concurrency."""
    import anyio

    from benchmark.rubrics import judge_text
    from verl_recipes.reward import JudgeRegistry, RewardSettings

    judge = CountingJudge(default=json.dumps({"score": 0.5}), delay_s=0.25)
    with serve_judge(judge) as judge_url:
        settings = RewardSettings(
            judge_base_url=judge_url,
            judge_model="m",
            judge_max_concurrency=2,
            judge_workers=2,
            judge_rate_limit_per_s=40.0,
        )
        assert settings.judge_settings().rate_limit_per_s == 20.0
        workers = [JudgeRegistry() for _ in range(2)]  # two agent-loop worker processes

        async def one(registry: JudgeRegistry) -> None:
            client = registry.get(settings.judge_settings())
            await judge_text(client, gen_prompt="a bridge", reference_notes=[], gt_image=ground_truth)

        async with anyio.create_task_group() as group:
            for registry in workers:
                for _ in range(3):
                    group.start_soon(one, registry)
        for registry in workers:
            await registry.aclose()
    assert len(judge.requests) == 6 and judge.peak <= 2
