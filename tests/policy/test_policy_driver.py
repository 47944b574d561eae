"""Full episodes: the scripted chat server drives the real tool server through the chat driver.

Assertions look at what the model server received (roles, tags, image data URLs,
IMG ids) as well as at the outcome.
"""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

from gen_searcher_core.episode_record import ToolsStep
from policy.chat import OpenAIChatModel, Sampling
from policy.driver import EpisodeRun, run_episode
from policy.episode import EpisodeConfig, Termination
from policy.mcp_tools import McpTools
from policy.prompts import FORCED_FINAL_NOTICE, SYSTEM_PROMPT, TOO_LONG_NOTICE
from tests.policy.conftest import Reply, ScriptedChat, Site
from tests.policy.scripting import answer, image_urls, last_user_text, tool_call
from tests.support.tool_server import ToolServer

pytestmark = pytest.mark.anyio


async def run(
    chat: ScriptedChat,
    tool_server: ToolServer,
    prompt: str,
    config: EpisodeConfig | None = None,
    **model_kwargs: object,
) -> EpisodeRun:
    model = OpenAIChatModel(chat.base_url, "scripted-policy", retry_wait_s=0.01, **model_kwargs)  # type: ignore[arg-type]
    async with model, McpTools.connect(tool_server.url) as tools:
        return await run_episode(prompt, model, tools, config, model_name="scripted-policy")


def ids_of(text: str) -> list[str]:
    return [line.split(":")[0] for line in text.splitlines() if line.startswith("IMG_")]


def decode_data_url(url: str) -> Image.Image:
    header, data = url.split(",", 1)
    assert header == "data:image/jpeg;base64"
    return Image.open(io.BytesIO(base64.b64decode(data)))


async def test_clean_multi_hop_episode(chat: ScriptedChat, tool_server: ToolServer, site: Site) -> None:
    prompt = "The bridge designed by Ilsa Marendt, lit for the Velmora lantern festival"
    first_reply = tool_call("search", think="Which bridge did Ilsa Marendt design?", queries=["Ilsa Marendt bridge"])
    chat.load(
        first_reply,
        tool_call("browse", url=f"{site.url}/quorvath-bridge.html", goal="what the bridge looks like"),
        tool_call("image_search", query="Quorvath Bridge", top_k=2),
        tool_call("image_search", query="Velmora lantern festival lanterns", top_k=3),
        answer(
            "IMG_001",
            "IMG_002",
            prompt="The Quorvath Bridge of the first reference image with lanterns as in the second reference image.",
        ),
    )
    result = (
        run_ := await run(chat, tool_server, prompt, sampling=Sampling(temperature=0.3, top_p=0.9, max_tokens=512))
    ).result

    assert result.termination is Termination.ANSWERED
    requests = chat.requests
    assert len(requests) == 5
    first = requests[0]
    assert (first["model"], first["temperature"], first["top_p"], first["max_tokens"]) == (
        "scripted-policy",
        0.3,
        0.9,
        512,
    )
    assert [m["role"] for m in first["messages"]] == ["system", "user"]
    assert first["messages"][0]["content"].startswith(SYSTEM_PROMPT[:60])
    assert first["messages"][1]["content"] == [{"type": "text", "text": prompt}]

    # Each request carries the whole conversation; the assistant turns are the model's own text.
    second = requests[1]["messages"]
    assert second[2] == {"role": "assistant", "content": first_reply}
    search_text = last_user_text(requests[1])
    assert search_text.startswith("<tool_response>\n") and search_text.endswith("\n</tool_response>")
    assert "Ilsa Marendt" in search_text and f"{site.url}/ilsa-marendt.html" in search_text

    browse_text = last_user_text(requests[2])
    assert "copper-green suspension bridge" in browse_text and "Velmora Gazette" not in browse_text

    # image_search: thumbnails as data URLs, IMG ids in the text, never store ids.
    images_msg = requests[3]["messages"][-1]
    first_images = image_urls(images_msg)
    assert 1 <= len(first_images) <= 2
    text = last_user_text(requests[3])
    assert text.startswith('<tool_response>\nImage search results for "Quorvath Bridge":\nIMG_001: ')
    assert "img_" not in text
    thumb = decode_data_url(first_images[0])
    assert thumb.size[0] > 0 and thumb.mode == "RGB"
    # Parts alternate: the id line precedes its image.
    kinds = [p["type"] for p in images_msg["content"]]
    assert kinds[:3] == ["text", "image_url", "text"]

    lantern_text = last_user_text(requests[4])
    assert 'Image search results for "Velmora lantern festival lanterns"' in lantern_text
    # An image seen before (same thumbnail, same store id) keeps its IMG id; new ones get new ids.
    earlier = dict(zip(first_images, ids_of(last_user_text(requests[3])), strict=True))
    later = list(zip(image_urls(requests[4]["messages"][-1]), ids_of(lantern_text), strict=True))
    assert later
    for url, img_id in later:
        assert img_id == earlier[url] if url in earlier else int(img_id[4:]) > len(earlier)
    assert any(url in earlier for url, _ in later)  # the bridge photo is also on the festival page

    refs = result.references
    assert [r.img_id for r in refs] == ["IMG_001", "IMG_002"]
    for ref in refs:
        assert ref.store_id.startswith("img_")
        stored = await tool_server.services.images.get(ref.store_id)
        assert stored.width == 160 and stored.height == 120
    assert refs[0].page_url and "quorvath" in (refs[0].source_url or "") + refs[0].page_url
    assert result.generator_image_ids == [r.store_id for r in refs]

    trace = run_.trace()
    json.dumps(trace)  # JSON-ready
    assert trace["termination"] == "answered"
    assert [s["type"] for s in trace["steps"]] == ["model", "tools"] * 4 + ["model"]
    tool_step = trace["steps"][5]
    assert tool_step["calls"][0]["name"] == "image_search" and tool_step["calls"][0]["elapsed_s"] >= 0
    assert all("data" not in p for m in trace["messages"] if isinstance(m["content"], list) for p in m["content"])
    assert set(trace["images"]) >= {"IMG_001", "IMG_002"}


async def test_format_errors_are_corrected_and_count(chat: ScriptedChat, tool_server: ToolServer) -> None:
    hallucinated = (
        tool_call("image_search", query="Quorvath Bridge", top_k=1)
        + "\n<tool_response>\nIMG_001: a bridge I imagined\n</tool_response>\n<answer>{}</answer>"
    )
    chat.load(
        "<think>I should search</think> I will search for the bridge.",
        '<think>retry</think><tool_call>{"name": "search", "arguments": {"queries": ["Quorvath"]</tool_call>',
        hallucinated,
        answer("IMG_001"),
    )
    result = (await run(chat, tool_server, "Quorvath Bridge", EpisodeConfig(max_calls=6))).result
    assert result.termination is Termination.ANSWERED and result.format_errors == 2
    assert result.model_calls == 4

    first_fix = last_user_text(chat.requests[1])
    assert first_fix.startswith("Format error: The reply has no <tool_call> and no <answer>.")
    assert "You have 5 turn(s) left." in first_fix
    second_fix = last_user_text(chat.requests[2])
    assert second_fix.startswith("Format error: The <tool_call> content is not valid JSON")
    assert "You have 4 turn(s) left." in second_fix
    # The invented tool response is cut from the conversation the model sees afterwards.
    assistant = chat.requests[3]["messages"][-2]
    assert assistant["role"] == "assistant" and assistant["content"].endswith("</tool_call>")
    assert "a bridge I imagined" not in json.dumps(chat.requests[3]["messages"])
    assert "IMG_001: " in last_user_text(chat.requests[3]) and len(image_urls(chat.requests[3]["messages"][-1])) == 1


async def test_forced_final_call(chat: ScriptedChat, tool_server: ToolServer) -> None:
    chat.load(
        tool_call("search", queries=["Quorvath Bridge architect"]),
        tool_call("image_search", query="Ilsa Marendt portrait", top_k=1),
        answer("IMG_001", prompt="A portrait like the first reference image."),
    )
    result = (await run(chat, tool_server, "Ilsa Marendt", EpisodeConfig(max_calls=2))).result
    assert result.termination is Termination.FORCED_ANSWER and result.model_calls == 3
    assert FORCED_FINAL_NOTICE not in last_user_text(chat.requests[1])
    forced = last_user_text(chat.requests[2])
    assert forced.endswith(FORCED_FINAL_NOTICE) and "<tool_response>" in forced
    assert len(image_urls(chat.requests[2]["messages"][-1])) == 1


async def test_tool_call_on_forced_turn_ends_with_max_turns(chat: ScriptedChat, tool_server: ToolServer) -> None:
    chat.load(
        tool_call("search", queries=["Velmora"]),
        tool_call("search", queries=["Velmora harbour"]),
        answer("IMG_001"),  # never reached
    )
    result = (await run(chat, tool_server, "Velmora", EpisodeConfig(max_calls=1))).result
    assert result.termination is Termination.MAX_TURNS and result.answer is None
    assert len(chat.requests) == 2 and last_user_text(chat.requests[1]).endswith(FORCED_FINAL_NOTICE)


async def test_repeated_response_ends(chat: ScriptedChat, tool_server: ToolServer) -> None:
    same = tool_call("search", queries=["Quorvath Bridge"])
    chat.load(same, same, answer("IMG_001"))
    result = (await run(chat, tool_server, "Quorvath Bridge")).result
    assert result.termination is Termination.REPEATED_RESPONSE
    assert len(chat.requests) == 2 and result.tool_calls == 1


async def test_too_long_turns(chat: ScriptedChat, tool_server: ToolServer) -> None:
    chat.load(
        Reply("<think>" + "very long reasoning " * 20, finish_reason="length"),
        Reply("<think>" + "even longer reasoning " * 20, finish_reason="length"),
    )
    result = (await run(chat, tool_server, "Quorvath Bridge")).result
    assert result.termination is Termination.TOO_LONG
    assert last_user_text(chat.requests[1]) == TOO_LONG_NOTICE


async def test_unknown_image_id_and_too_many_references(chat: ScriptedChat, tool_server: ToolServer) -> None:
    chat.load(
        tool_call("image_search", query="Quorvath Bridge", top_k=1),
        answer("IMG_007"),
        answer("IMG_001", "IMG_001", "IMG_001", "IMG_001", "IMG_001", "IMG_001"),
        answer("IMG_001"),
    )
    result = (await run(chat, tool_server, "Quorvath Bridge")).result
    assert result.termination is Termination.ANSWERED and result.format_errors == 2
    assert "IMG_007 is not an image you were shown" in last_user_text(chat.requests[2])
    assert "reference_images must list 1 to 5 images; you gave 6." in last_user_text(chat.requests[3])


async def test_parallel_tool_calls_run_concurrently(chat: ScriptedChat, tool_server: ToolServer, site: Site) -> None:
    both = tool_call("browse", url=f"{site.url}/slow/a", goal="lamps") + (
        f'\n<tool_call>{{"name": "browse", "arguments": {{"url": "{site.url}/slow/b", "goal": "lamps"}}}}</tool_call>'
    )
    chat.load(both, tool_call("image_search", query="Quorvath Bridge", top_k=1), answer("IMG_001"))
    run_ = await run(chat, tool_server, "Quorvath Bridge lamps", EpisodeConfig(parallel_tool_calls=True))
    assert run_.result.termination is Termination.ANSWERED
    assert site.max_in_flight == 2  # both page fetches were open at the same time
    text = last_user_text(chat.requests[1])
    assert text.count("<tool_response>") == 2
    assert text.index("Slow page a") < text.index("Slow page b")  # results keep the calls' order
    tools_step = run_.steps[1]
    assert isinstance(tools_step, ToolsStep) and tools_step.parallel is True


async def test_parallel_calls_refused_when_disabled(chat: ScriptedChat, tool_server: ToolServer, site: Site) -> None:
    two = (
        tool_call("search", queries=["a"])
        + '\n<tool_call>{"name": "search", "arguments": {"queries": ["b"]}}</tool_call>'
    )
    chat.load(two, tool_call("image_search", query="Quorvath Bridge", top_k=1), answer("IMG_001"))
    result = (await run(chat, tool_server, "Quorvath Bridge")).result
    assert result.termination is Termination.ANSWERED and result.tool_calls == 1
    assert "Make exactly one <tool_call> per turn." in last_user_text(chat.requests[1])


async def test_tool_errors_are_shown_to_the_model(chat: ScriptedChat, tool_server: ToolServer, site: Site) -> None:
    chat.load(
        tool_call("search", queries=[]),
        tool_call("browse", url=f"{site.url}/missing.html", goal="anything"),
        tool_call("image_search", query="Quorvath Bridge", top_k=1),
        answer("IMG_001"),
    )
    result = (await run(chat, tool_server, "Quorvath Bridge")).result
    assert result.termination is Termination.ANSWERED and result.tool_calls == 3
    bad_args = last_user_text(chat.requests[1])
    assert bad_args.startswith("<tool_response>\nError from search: ") and "queries" in bad_args
    not_found = last_user_text(chat.requests[2])
    assert not_found.startswith("<tool_response>\nError from browse: ") and "404" in not_found


async def test_model_server_failure_ends_with_error_and_key_stays_secret(
    chat: ScriptedChat, tool_server: ToolServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-policy-secret-123"
    monkeypatch.setenv("GEN_SEARCHER_POLICY_API_KEY", secret)
    chat.load(tool_call("search", queries=["Velmora"]), Reply(status=503), Reply(status=503), Reply(status=503))
    run_ = await run(chat, tool_server, "Velmora", max_attempts=3)
    assert run_.result.termination is Termination.ERROR
    assert "HTTP 503" in (run_.result.detail or "")
    assert len(chat.requests) == 4  # one good call, then three attempts
    assert all(h["authorization"] == f"Bearer {secret}" for h in chat.headers)
    assert secret not in json.dumps(run_.trace())


async def test_mcp_session_with_bearer_token(tmp_path, site: Site, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from policy.mcp_client import McpConnectionError
    from policy.protocol import ToolCall
    from tests.support.tool_server import run_tool_server

    with run_tool_server(tmp_path, auth_tokens=["tok-abc"]) as server:
        with pytest.raises(McpConnectionError):
            async with McpTools.connect(server.url):
                pass
        monkeypatch.setenv("GEN_SEARCHER_TOKEN", "tok-abc")
        async with McpTools.connect(server.url) as tools:
            assert {"search", "image_search", "browse"} <= set(await tools.list_tool_names())
            result = await tools.call(ToolCall("browse", {"url": f"{site.url}/soup.html", "goal": "ingredients"}))
            assert not result.is_error and "barley" in result.text.lower()


async def test_reasoning_content_is_put_back_into_the_turn(chat: ScriptedChat, tool_server: ToolServer) -> None:
    body = '<tool_call>{"name": "image_search", "arguments": {"query": "Quorvath Bridge", "top_k": 1}}</tool_call>'
    chat.load(Reply(body, reasoning="I need the bridge photo."), answer("IMG_001"))
    run_ = await run(chat, tool_server, "Quorvath Bridge")
    assert run_.result.termination is Termination.ANSWERED
    assert chat.requests[1]["messages"][2]["content"] == f"<think>I need the bridge photo.</think>\n{body}"
