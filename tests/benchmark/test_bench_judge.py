"""The judge client and the rubrics against a scripted judge on loopback."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

from benchmark.judge import JudgeClient, JudgeError, parse_json_object
from benchmark.rubrics import (
    KScoreJudgement,
    TextJudgement,
    WiseLegacyJudgement,
    WiseVerifiedJudgement,
    judge_kscore,
    judge_text,
    judge_wise,
)
from tests.benchmark.helpers import fast_settings, png_bytes, write_png
from tests.support.scripted_judge import ScriptedJudge, image_urls, kscore_reply, serve_judge

pytestmark = pytest.mark.anyio


async def test_kscore_request_shape_and_result(judge: JudgeClient, scripted_judge: ScriptedJudge, tmp_path) -> None:
    scripted_judge.when("Great Wall", kscore_reply(1, 0.5, 0, 1, na=True))
    gen = write_png(tmp_path / "gen.png")
    result = await judge_kscore(judge, prompt="The Great Wall at dawn", image=gen, gt_image=png_bytes((0, 0, 255)))
    assert result == KScoreJudgement(1.0, 0.5, 0.0, True, 1.0, "scripted")
    assert result.score == pytest.approx(0.1 + 0.2 + 0.4 * 0.5 + 0.1)
    body = scripted_judge.requests[-1]
    assert body["temperature"] == 0 and body["model"] == "scripted"
    urls = image_urls(body)
    assert len(urls) == 2 and all(u.startswith("data:image/png;base64,") for u in urls)
    second = Image.open(io.BytesIO(base64.b64decode(urls[1].split(",", 1)[1])))
    assert second.getpixel((0, 0)) == (0, 0, 255)  # candidate first, reference second


async def test_repair_turn_fixes_malformed_reply(judge: JudgeClient, scripted_judge: ScriptedJudge) -> None:
    scripted_judge.when("Sagrada", "Sure! Here is my grade: faithfulness 1", kscore_reply(1, 1, 1, 1))
    result = await judge_kscore(judge, prompt="Sagrada Familia", image=png_bytes(), gt_image=png_bytes())
    assert result.score == pytest.approx(1.0)
    assert len(scripted_judge.requests) == 2
    repair = scripted_judge.requests[1]["messages"]
    assert repair[-2]["role"] == "assistant" and repair[-2]["content"].startswith("Sure!")
    assert "not valid JSON" in repair[-1]["content"]


async def test_repair_turn_also_fixes_invalid_values(judge: JudgeClient, scripted_judge: ScriptedJudge) -> None:
    bad = json.dumps(
        {"faithfulness": 0.7, "visual_correctness": 1, "text_accuracy": 1, "text_accuracy_na": False, "aesthetics": 1}
    )
    scripted_judge.when("Louvre", bad, kscore_reply(0.5, 1, 1, 1))
    result = await judge_kscore(judge, prompt="Louvre", image=png_bytes(), gt_image=png_bytes())
    assert result.faithfulness == 0.5
    assert "faithfulness must be one of" in scripted_judge.requests[1]["messages"][-1]["content"]


async def test_unrepairable_reply_is_a_judge_error(judge: JudgeClient, scripted_judge: ScriptedJudge) -> None:
    scripted_judge.when("Taj", "no idea", '{"faithfulness": 1}')
    with pytest.raises(JudgeError, match="after one repair attempt: missing keys") as info:
        await judge_kscore(judge, prompt="Taj Mahal", image=png_bytes(), gt_image=png_bytes())
    assert info.value.raw == '{"faithfulness": 1}'
    assert len(scripted_judge.requests) == 2  # exactly one repair


async def test_transient_errors_are_retried_then_reported(judge_url: str, scripted_judge: ScriptedJudge) -> None:
    scripted_judge.when("flaky", 503, 429, kscore_reply(1, 1, 0, 1, na=True))
    scripted_judge.when("down", 500)
    async with JudgeClient(fast_settings(judge_url)) as client:
        ok = await judge_kscore(client, prompt="flaky", image=png_bytes(), gt_image=png_bytes())
        assert ok.text_accuracy_na
        with pytest.raises(JudgeError, match="HTTP 500 \\(after 3 attempts\\)"):
            await judge_kscore(client, prompt="down", image=png_bytes(), gt_image=png_bytes())


async def test_client_errors_are_not_retried_and_key_never_leaks(scripted_judge: ScriptedJudge) -> None:
    scripted_judge.api_key = "sk-right"
    scripted_judge.default = kscore_reply(1, 1, 1, 1)
    with serve_judge(scripted_judge) as url:
        async with JudgeClient(fast_settings(url, api_key="sk-wrong-secret")) as client:
            with pytest.raises(JudgeError, match="HTTP 401") as info:
                await judge_kscore(client, prompt="x", image=png_bytes(), gt_image=png_bytes())
            assert "sk-wrong-secret" not in str(info.value)
            assert len(scripted_judge.requests) == 0  # rejected before recording; no retries either
        async with JudgeClient(fast_settings(url, api_key="sk-right")) as client:
            assert (await judge_kscore(client, prompt="x", image=png_bytes(), gt_image=png_bytes())).score == 1.0


async def test_unreachable_judge_is_a_judge_error() -> None:
    from tests.support.loopback import free_port

    async with JudgeClient(fast_settings(f"http://127.0.0.1:{free_port()}/v1", max_attempts=2)) as client:
        with pytest.raises(JudgeError, match="judge unreachable"):
            await client.complete([{"role": "user", "content": "hi"}])


async def test_missing_or_broken_image_is_a_judge_error(judge: JudgeClient, tmp_path) -> None:
    with pytest.raises(JudgeError, match="image not found"):
        await judge_kscore(judge, prompt="x", image=tmp_path / "nope.png", gt_image=png_bytes())
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(JudgeError, match="unreadable image"):
        await judge_kscore(judge, prompt="x", image=tmp_path / "junk.png", gt_image=png_bytes())


async def test_large_images_are_downscaled(judge_url: str, scripted_judge: ScriptedJudge) -> None:
    scripted_judge.default = kscore_reply(1, 1, 1, 1)
    async with JudgeClient(fast_settings(judge_url, max_image_side=64)) as client:
        await judge_kscore(client, prompt="x", image=png_bytes(size=(300, 150)), gt_image=png_bytes())
    sent = Image.open(io.BytesIO(base64.b64decode(image_urls(scripted_judge.requests[-1])[0].split(",", 1)[1])))
    assert sent.size == (64, 32)


async def test_concurrency_is_bounded(judge_url: str, scripted_judge: ScriptedJudge) -> None:
    import anyio

    scripted_judge.default = '{"score": 1}'
    scripted_judge.delay_s = 0.2
    async with JudgeClient(fast_settings(judge_url, max_concurrency=2)) as client:
        start = anyio.current_time()
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(client.complete, [{"role": "user", "content": "x"}])
        elapsed = anyio.current_time() - start
    assert elapsed >= 0.39  # 4 requests, 2 at a time, 0.2 s each


async def test_text_rubric(judge: JudgeClient, scripted_judge: ScriptedJudge) -> None:
    scripted_judge.when("Neuschwanstein", '{"score": 0.75, "rationale": "close"}')
    scripted_judge.when("bad plan", '{"score": 0.6}', '{"score": 2}')
    result = await judge_text(
        judge,
        gen_prompt="Neuschwanstein castle in winter, as in the first reference image",
        reference_notes=["front view of the castle", "snowy hills"],
        gt_image=png_bytes(),
        original_prompt="The castle that inspired Disney",
    )
    assert result == TextJudgement(0.75, "close")
    text = scripted_judge.requests[-1]["messages"][1]["content"][0]["text"]
    assert "1. front view of the castle" in text and "2. snowy hills" in text and "inspired Disney" in text
    with pytest.raises(JudgeError, match="score must be one of"):
        await judge_text(judge, gen_prompt="bad plan", reference_notes=[], gt_image=png_bytes())


async def test_wise_rubrics(judge: JudgeClient, scripted_judge: ScriptedJudge) -> None:
    scripted_judge.when("mooncakes", '{"consistency": 2, "realism": 1, "aesthetic_quality": 2, "rationale": "ok"}')
    scripted_judge.when("ssireum", '{"passed": false, "rationale": "boxing, not wrestling"}')
    legacy = await judge_wise(
        judge, protocol="legacy", prompt="Mid-Autumn food", explanation="mooncakes", image=png_bytes()
    )
    assert isinstance(legacy, WiseLegacyJudgement)
    assert legacy.score == pytest.approx((0.7 * 2 + 0.2 * 1 + 0.1 * 2) / 2)
    verified = await judge_wise(
        judge, protocol="verified", prompt="Chuseok game", explanation="ssireum", image=png_bytes()
    )
    assert verified == WiseVerifiedJudgement(False, "boxing, not wrestling")


def test_parse_json_object_is_strict() -> None:
    assert parse_json_object('```json\n{"a": 1}\n```') == {"a": 1}
    assert parse_json_object('  {"a": 1}\n') == {"a": 1}
    assert parse_json_object('<think>hmm, {"a": 2}?</think>\n{"a": 1}') == {"a": 1}
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_json_object('Here: {"a": 1}')
    with pytest.raises(ValueError, match="not an object"):
        parse_json_object("[1, 2]")


async def test_rubrics_accept_any_judge_implementing_the_protocol() -> None:
    from benchmark.judge import Judge

    class OfflineJudge:
        """A judge that is no HTTP client at all (e.g. an in-process model)."""

        model = "offline"

        def __init__(self) -> None:
            self.seen: list[str] = []

        async def image(self, image: object) -> str:
            return "data:image/png;base64,AAAA"

        async def judge_json(self, messages, validate, *, repair_hint=""):  # type: ignore[no-untyped-def]
            self.seen.append(messages[0]["content"][:40])
            return validate(
                {
                    "faithfulness": 1,
                    "visual_correctness": 1,
                    "text_accuracy": 0,
                    "text_accuracy_na": True,
                    "aesthetics": 0.5,
                    "rationale": "offline",
                }
            )

    judge = OfflineJudge()
    assert isinstance(judge, Judge)
    result = await judge_kscore(judge, prompt="x", image=b"", gt_image=b"")
    assert result.score == pytest.approx(0.1 + 0.4 + 0.2 + 0.05)
    assert judge.seen and judge.seen[0].startswith("You grade images")


async def test_malformed_completion_is_retried_and_reasoning_output_is_read() -> None:
    """A 200 without choices is retried; a reply split into reasoning and content parts (vLLM) still parses."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tests.support.loopback import serve_app

    seen: list[dict] = []

    async def chat(request: Request) -> JSONResponse:
        seen.append(await request.json())
        if len(seen) == 1:
            return JSONResponse({"choices": []})
        message = {
            "role": "assistant",
            "reasoning_content": "the sky is {blue}",
            "content": [{"type": "text", "text": '{"score": 0.5, "rationale": "half"}'}],
        }
        return JSONResponse({"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})

    with serve_app(Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])) as base:
        async with JudgeClient(fast_settings(base + "/v1")) as client:
            result = await judge_text(client, gen_prompt="p", reference_notes=[], gt_image=png_bytes())
    assert result == TextJudgement(0.5, "half")
    assert len(seen) == 2


async def test_retry_after_is_honoured() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tests.support.loopback import serve_app

    times: list[float] = []

    async def chat(request: Request) -> JSONResponse:
        import time

        times.append(time.monotonic())
        if len(times) == 1:
            return JSONResponse({"error": {"message": "slow down"}}, status_code=429, headers={"Retry-After": "0.4"})
        return JSONResponse({"choices": [{"message": {"role": "assistant", "content": '{"score": 1}'}}]})

    with serve_app(Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])) as base:
        async with JudgeClient(fast_settings(base + "/v1", backoff_max_s=5)) as client:
            assert await client.complete([{"role": "user", "content": "x"}]) == '{"score": 1}'
    assert len(times) == 2 and times[1] - times[0] >= 0.38  # not the 0.01 s exponential backoff
