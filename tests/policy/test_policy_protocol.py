"""Parsing of single turns and answers."""

from __future__ import annotations

import json

import pytest

from policy.protocol import AnswerError, FormatError, cut_hallucinated_response, parse_answer, parse_turn

TOOLS = {"search", "image_search", "browse"}


def test_tool_call_with_lenient_json_and_think() -> None:
    turn = parse_turn(
        "<think>who is it?</think>\n<tool_call>{name: 'search', arguments: {queries: ['a', 'b'],},}</tool_call>",
        tool_names=TOOLS,
    )
    assert turn.think == "who is it?"
    assert [(c.name, c.arguments) for c in turn.tool_calls] == [("search", {"queries": ["a", "b"]})]
    assert not turn.is_answer


def test_think_opened_by_the_template_and_string_arguments() -> None:
    turn = parse_turn(
        "reasoning only</think>"
        '<tool_call>{"name": "browse", "arguments": "{\\"url\\": \\"http://x\\", \\"goal\\": \\"g\\"}"}</tool_call>',
        tool_names=TOOLS,
    )
    assert turn.think == "reasoning only"
    assert turn.tool_calls[0].arguments == {"url": "http://x", "goal": "g"}


def test_hallucinated_tool_response_is_cut() -> None:
    text = (
        '<think>t</think><tool_call>{"name":"search","arguments":{"queries":["q"]}}</tool_call>\n'
        "<tool_response>fake</tool_response><answer>{}</answer>"
    )
    assert cut_hallucinated_response(text).endswith("</tool_call>")
    turn = parse_turn(text, tool_names=TOOLS)
    assert len(turn.tool_calls) == 1 and "fake" not in turn.text


def test_tags_inside_think_do_not_count() -> None:
    turn = parse_turn(
        '<think>maybe <answer>{"x":1}</answer> later</think>'
        '<tool_call>{"name":"search","arguments":{"queries":["q"]}}</tool_call>',
        tool_names=TOOLS,
    )
    assert turn.tool_calls and turn.answer_text is None


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("<think>hmm</think> nothing to do", "no_action"),
        ('<think>t</think><tool_call>{"name": "search"', "unclosed_tag"),
        (
            '<think>t</think><tool_call>{"name":"search","arguments":{}}</tool_call><answer>{}</answer>',
            "call_and_answer",
        ),
        ('<tool_call>{"name":"render","arguments":{}}</tool_call>', "unknown_tool"),
        ("<tool_call>not json at all</tool_call>", "tool_call_json"),
        ('<tool_call>["search"]</tool_call>', "tool_call_shape"),
        ('<tool_call>{"name":"search","arguments":[1]}</tool_call>', "tool_call_arguments"),
        (
            '<tool_call>{"name":"search","arguments":{}}</tool_call><tool_call>{"name":"browse","arguments":{}}</tool_call>',
            "several_tool_calls",
        ),
        ("<answer>{}</answer><answer>{}</answer>", "several_answers"),
    ],
)
def test_format_errors(text: str, kind: str) -> None:
    with pytest.raises(FormatError) as info:
        parse_turn(text, tool_names=TOOLS)
    assert info.value.kind == kind
    assert str(info.value)  # a message for the corrective turn


def test_parallel_calls_allowed_and_capped() -> None:
    call = '<tool_call>{"name":"search","arguments":{"queries":["q%d"]}}</tool_call>'
    turn = parse_turn("".join(call % i for i in range(3)), tool_names=TOOLS, parallel_tool_calls=True)
    assert [c.arguments["queries"] for c in turn.tool_calls] == [["q0"], ["q1"], ["q2"]]
    with pytest.raises(FormatError) as info:
        parse_turn(
            "".join(call % i for i in range(3)), tool_names=TOOLS, parallel_tool_calls=True, max_parallel_calls=2
        )
    assert info.value.kind == "too_many_tool_calls"


KNOWN = {"IMG_001", "IMG_002", "IMG_003", "IMG_010"}


def test_valid_answer() -> None:
    answer = parse_answer(
        '```json\n{"gen_prompt": " A bridge like the first reference image ", "reference_images": '
        '[{"img_id": "IMG_002", "note": "bridge"}, {"img_id": "IMG_010", "note": "sky"}]}\n```',
        known_ids=KNOWN,
    )
    assert answer.gen_prompt == "A bridge like the first reference image"
    assert [r.img_id for r in answer.reference_images] == ["IMG_002", "IMG_010"]  # numeric, not lexical, order


def ref(i: str) -> dict[str, str]:
    return {"img_id": i, "note": "n"}


def answer_body(gen_prompt: str, references: list[dict[str, str]]) -> str:
    return json.dumps({"gen_prompt": gen_prompt, "reference_images": references})


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("not json", "answer_json"),
        ("[1]", "answer_shape"),
        (answer_body("  ", [ref("IMG_001")]), "gen_prompt"),
        (answer_body("the bridge of IMG_001 at dusk", [ref("IMG_001")]), "gen_prompt_img_id"),
        ('{"gen_prompt": "p", "reference_images": "IMG_001"}', "references_shape"),
        ('{"gen_prompt": "p", "reference_images": []}', "reference_count"),
        (answer_body("p", [ref("IMG_001")] * 6), "reference_count"),
        (answer_body("p", [ref("IMG_099")]), "unknown_img_id"),
        (answer_body("p", [ref("img_0123456789abcdef")]), "img_id_format"),
        (answer_body("p", [ref("IMG_001"), ref("IMG_001")]), "duplicate_reference"),
        (answer_body("p", [ref("IMG_003"), ref("IMG_001")]), "references_order"),
    ],
)
def test_answer_errors(body: str, kind: str) -> None:
    with pytest.raises(AnswerError) as info:
        parse_answer(body, known_ids=KNOWN)
    assert info.value.kind == kind


def test_max_references_is_configurable() -> None:
    body = answer_body("p", [ref("IMG_001"), ref("IMG_002"), ref("IMG_003")])
    assert len(parse_answer(body, known_ids=KNOWN, max_references=3).reference_images) == 3
    with pytest.raises(AnswerError, match="1 to 2"):
        parse_answer(body, known_ids=KNOWN, max_references=2)
