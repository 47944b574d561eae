"""The episode state machine, driven directly (no I/O)."""

from __future__ import annotations

import base64
import json

import pytest

from policy.episode import (
    Continue,
    Episode,
    EpisodeConfig,
    EpisodeStateError,
    Finished,
    RunTools,
    Termination,
    ToolImage,
    ToolResult,
    message_images,
    message_text,
    to_openai_messages,
)
from policy.prompts import FORCED_FINAL_NOTICE, SYSTEM_PROMPT, TOO_LONG_NOTICE


def call(name: str, **arguments: object) -> str:
    call = json.dumps({"name": name, "arguments": arguments})
    return f"<think>next: {name} {arguments}</think><tool_call>{call}</tool_call>"


def answer(*ids: str, prompt: str = "Draw it like the first reference image.") -> str:
    refs = [{"img_id": i, "note": f"note {i}"} for i in ids]
    return f"<think>done</think><answer>{json.dumps({'gen_prompt': prompt, 'reference_images': refs})}</answer>"


def image(store_hex: str, title: str) -> ToolImage:
    return ToolImage(
        data=base64.b64encode(f"jpeg-{store_hex}".encode()).decode(),
        store_id=f"img_{store_hex * 16}"[:20],
        title=title,
        page_url=f"http://site/{title}",
        width=640,
        height=480,
    )


def images_result(*imgs: ToolImage) -> ToolResult:
    return ToolResult(name="image_search", text="server text with store ids", images=imgs)


def test_initial_messages_hold_system_prompt_tools_and_task() -> None:
    episode = Episode("A photo of the Eiffel Tower in 1889")
    system, user = episode.initial_messages()
    assert system["role"] == "system" and system["content"].startswith(SYSTEM_PROMPT[:40])
    assert "<tools>" in system["content"] and '"name": "image_search"' in system["content"]
    assert user == {"role": "user", "content": [{"type": "text", "text": "A photo of the Eiffel Tower in 1889"}]}
    custom = Episode("x", EpisodeConfig(system_prompt="Be brief."))
    assert custom.messages[0]["content"].startswith("Be brief.\n\n# Tools")


def test_clean_episode_with_images_ids_and_dedup() -> None:
    episode = Episode("two subjects")
    action = episode.on_model_output(call("search", queries=["who"]))
    assert isinstance(action, RunTools) and action.calls[0].arguments == {"queries": ["who"]}
    msg = episode.on_tool_results([ToolResult(name="search", text="hit about img_" + "a" * 16)])
    assert message_text(msg) == "<tool_response>\nhit about img_" + "a" * 16 + "\n</tool_response>"

    episode.on_model_output(call("image_search", query="subject one"))
    a, b = image("a", "first"), image("b", "second")
    msg = episode.on_tool_results([images_result(a, b)])
    kinds = [part["type"] for part in msg["content"]]
    assert kinds == ["text", "image", "text", "image", "text"]
    assert msg["content"][1]["img_id"] == "IMG_001" and msg["content"][3]["img_id"] == "IMG_002"
    assert (
        'Image search results for "subject one":\nIMG_001: first; source page: http://site/first; 640x480\n'
        in msg["content"][0]["text"]
    )
    assert message_images(msg) == [b"jpeg-a", b"jpeg-b"]
    assert "server text" not in message_text(msg)

    episode.on_model_output(call("image_search", query="subject two"))
    c = image("c", "third")
    msg = episode.on_tool_results([images_result(b, c)])  # b seen again keeps IMG_002
    assert [p["img_id"] for p in msg["content"] if p["type"] == "image"] == ["IMG_002", "IMG_003"]
    # A later text mentioning a known store id shows its IMG id instead.
    episode.on_model_output(call("browse", url="http://site/x", goal="g"))
    msg = episode.on_tool_results([ToolResult(name="browse", text=f"see {a.store_id} and img_{'f' * 16}")])
    assert f"see IMG_001 and img_{'f' * 16}" in message_text(msg)

    done = episode.on_model_output(answer("IMG_001", "IMG_003"))
    assert isinstance(done, Finished)
    result = done.result
    assert result.termination is Termination.ANSWERED
    assert [(r.img_id, r.store_id, r.title) for r in result.references] == [
        ("IMG_001", a.store_id, "first"),
        ("IMG_003", c.store_id, "third"),
    ]
    assert result.generator_image_ids == [a.store_id, c.store_id]
    assert (result.model_calls, result.tool_calls, result.format_errors) == (5, 4, 0)
    assert [m["role"] for m in episode.messages] == ["system", "user"] + ["assistant", "user"] * 4 + ["assistant"]
    with pytest.raises(EpisodeStateError):
        episode.on_model_output("again")


def test_generator_gets_first_three_references() -> None:
    episode = Episode("many", EpisodeConfig(generator_references=3))
    episode.on_model_output(call("image_search", query="q"))
    imgs = [image(h, t) for h, t in zip("abcde", "12345", strict=True)]
    episode.on_tool_results([images_result(*imgs)])
    done = episode.on_model_output(answer("IMG_001", "IMG_002", "IMG_003", "IMG_004", "IMG_005"))
    assert isinstance(done, Finished) and len(done.result.references) == 5
    assert done.result.generator_image_ids == [i.store_id for i in imgs[:3]]


def test_format_error_gets_corrective_message_and_costs_a_call() -> None:
    episode = Episode("p", EpisodeConfig(max_calls=4))
    action = episode.on_model_output("<think>I will just talk</think> hello")
    assert isinstance(action, Continue) and action.reason == "format_error"
    text = message_text(action.message)
    assert text.startswith("Format error: The reply has no <tool_call> and no <answer>.")
    assert "You have 3 turn(s) left." in text
    assert episode.messages[-1] is action.message and episode.format_errors == 1
    # Unknown image id in the answer: corrective too, naming the id.
    action = episode.on_model_output(answer("IMG_007"))
    assert isinstance(action, Continue) and "IMG_007 is not an image you were shown" in message_text(action.message)
    assert episode.calls_left == 2


def test_forced_final_call_after_tool_results() -> None:
    episode = Episode("p", EpisodeConfig(max_calls=2))
    episode.on_model_output(call("image_search", query="one"))
    msg = episode.on_tool_results([images_result(image("a", "a"))])
    assert FORCED_FINAL_NOTICE not in message_text(msg) and not episode.forced
    episode.on_model_output(call("image_search", query="two"))
    msg = episode.on_tool_results([images_result(image("b", "b"))])
    assert message_text(msg).endswith(FORCED_FINAL_NOTICE) and episode.forced
    done = episode.on_model_output(answer("IMG_002"))
    assert isinstance(done, Finished) and done.result.termination is Termination.FORCED_ANSWER
    assert done.result.model_calls == 3


@pytest.mark.parametrize(
    ("final", "termination"),
    [
        (call("search", queries=["more"]), Termination.MAX_TURNS),
        ("<think>no idea</think>", Termination.MAX_TURNS),
        (answer("IMG_009"), Termination.ANSWER_PARSE_FAILED),
        ('<think>x</think><answer>{"gen_prompt": ""}</answer>', Termination.ANSWER_PARSE_FAILED),
    ],
)
def test_forced_final_call_failures(final: str, termination: Termination) -> None:
    episode = Episode("p", EpisodeConfig(max_calls=1))
    action = episode.on_model_output("<think>x</think>oops")  # a format error on the last ordinary call
    assert isinstance(action, Continue) and message_text(action.message).endswith(FORCED_FINAL_NOTICE)
    assert "turn(s) left" not in message_text(action.message)
    done = episode.on_model_output(final)
    assert isinstance(done, Finished) and done.result.termination is termination
    assert done.result.answer is None and done.result.detail


def test_two_too_long_in_a_row_end_the_episode() -> None:
    episode = Episode("p")
    action = episode.on_model_output("<think>" + "very long " * 50, truncated=True)
    assert isinstance(action, Continue) and action.reason == "too_long"
    assert message_text(action.message) == TOO_LONG_NOTICE
    done = episode.on_model_output("<think>" + "still long " * 50, truncated=True)
    assert isinstance(done, Finished) and done.result.termination is Termination.TOO_LONG


def test_too_long_streak_resets_after_a_good_turn() -> None:
    episode = Episode("p")
    episode.on_model_output("<think>long", truncated=True)
    episode.on_model_output(call("search", queries=["q"]))
    episode.on_tool_results([ToolResult(name="search", text="r")])
    assert isinstance(episode.on_model_output("<think>long again", truncated=True), Continue)


def test_identical_repeated_response_ends() -> None:
    episode = Episode("p")
    episode.on_model_output(call("search", queries=["q"]))
    episode.on_tool_results([ToolResult(name="search", text="r")])
    done = episode.on_model_output(call("search", queries=["q"]) + "\n")
    assert isinstance(done, Finished) and done.result.termination is Termination.REPEATED_RESPONSE


def test_parallel_calls_and_tool_errors_in_one_message() -> None:
    episode = Episode("p", EpisodeConfig(parallel_tool_calls=True))
    text = (
        call("search", queries=["a"])
        + '<tool_call>{"name": "browse", "arguments": {"url": "x", "goal": "g"}}</tool_call>'
    )
    action = episode.on_model_output(text)
    assert isinstance(action, RunTools) and [c.name for c in action.calls] == ["search", "browse"]
    with pytest.raises(EpisodeStateError):
        episode.on_tool_results([ToolResult(name="search", text="only one")])
    msg = episode.on_tool_results(
        [ToolResult(name="search", text="hits"), ToolResult.error("browse", "refused: private address")]
    )
    assert message_text(msg) == (
        "<tool_response>\nhits\n</tool_response>\n"
        "<tool_response>\nError from browse: refused: private address\n</tool_response>"
    )
    assert episode.tool_calls == 2


def test_tool_text_is_clipped_to_budget() -> None:
    episode = Episode("p", EpisodeConfig(tool_text_budget=100))
    episode.on_model_output(call("browse", url="u", goal="g"))
    msg = episode.on_tool_results([ToolResult(name="browse", text="x" * 250)])
    assert "x" * 100 + "\n[… 150 more characters not shown]" in message_text(msg)
    assert "x" * 101 not in message_text(msg)


def test_openai_rendering_uses_data_urls() -> None:
    episode = Episode("p")
    episode.on_model_output(call("image_search", query="q"))
    episode.on_tool_results([images_result(image("a", "a"))])
    rendered = to_openai_messages(episode.messages)
    parts = rendered[-1]["content"]
    assert parts[1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(b"jpeg-a").decode()},
    }
    assert rendered[0]["role"] == "system" and isinstance(rendered[0]["content"], str)


def test_fail_and_out_of_turn_calls() -> None:
    episode = Episode("p")
    with pytest.raises(EpisodeStateError):
        episode.on_tool_results([])
    episode.on_model_output(call("search", queries=["q"]))
    with pytest.raises(EpisodeStateError):
        episode.on_model_output(call("search", queries=["r"]))
    done = episode.fail("model server unreachable")
    assert done.result.termination is Termination.ERROR and done.result.detail == "model server unreachable"
    with pytest.raises(ValueError):
        Episode("   ")
