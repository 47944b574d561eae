"""The episode record: its JSON round trip, its version check, and the reading of files of before it."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from gen_searcher_core.episode_record import (
    SCHEMA_VERSION,
    EpisodeRecord,
    EpisodeRecordError,
    ImagePart,
    ModelStep,
    Termination,
    ToolsStep,
    read_episode_record,
)
from tests.reports.episodes import scripted_run

STORE_A = "img_" + "a" * 16
STORE_B = "img_" + "b" * 16

#: ``trace.json`` as ``gen-searcher run`` wrote it before the record (``EpisodeRun.trace()``).
OLD_DRIVER_TRACE: dict[str, Any] = {
    "prompt": "Draw the Quorvath Bridge.",
    "model": "Gen-Searcher-8B",
    "config": {"max_calls": 9, "parallel_tool_calls": False, "tool_specs": ["search", "image_search", "browse"]},
    "termination": "answered",
    "result": {
        "termination": "answered",
        "gen_prompt": "The bridge as in the first reference image.",
        "reference_images": [
            {
                "img_id": "IMG_001",
                "store_id": STORE_A,
                "note": "towers",
                "title": "Quorvath",
                "page_url": "https://e.org",
            }
        ],
        "generator_image_ids": [STORE_A],
        "model_calls": 3,
        "tool_calls": 1,
        "format_errors": 1,
        "detail": None,
    },
    "wall_s": 1.25,
    "steps": [
        {
            "type": "model",
            "call": 1,
            "elapsed_s": 0.1,
            "finish_reason": "stop",
            "truncated": False,
            "usage": {"prompt_tokens": 10, "completion_tokens": 5},
            "text": '<think>look</think><tool_call>{"name": "image_search", "arguments": {"query": "Q"}}</tool_call>',
            "forced": False,
            "kind": "tool_calls",
            "tool_calls": [{"name": "image_search", "arguments": {"query": "Q"}}],
        },
        {
            "type": "tools",
            "parallel": False,
            "elapsed_s": 0.2,
            "calls": [
                {
                    "name": "image_search",
                    "arguments": {"query": "Q"},
                    "started_s": 0.0,
                    "elapsed_s": 0.2,
                    "result": {
                        "name": "image_search",
                        "text": "1 image",
                        "structured": {"images": [{"id": STORE_A}]},
                        "images": [{"mime_type": "image/png", "store_id": STORE_A, "width": 96, "height": 72}],
                        "is_error": False,
                    },
                }
            ],
        },
        {
            "type": "model",
            "call": 2,
            "elapsed_s": 0.1,
            "finish_reason": "stop",
            "truncated": False,
            "usage": None,
            "text": "no tags",
            "forced": False,
            "kind": "format_error",
            "error": "no_action",
            "detail": "The reply has no <tool_call> and no <answer>.",
        },
        {"type": "model", "call": 3, "elapsed_s": 0.3, "error": "model server down"},
    ],
    "images": {"IMG_001": {"img_id": "IMG_001", "store_id": STORE_A, "title": "Quorvath", "width": 96, "height": 72}},
    "messages": [
        {"role": "system", "content": "You are a picture researcher."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "IMG_001: Quorvath"},
                {"type": "image", "mime_type": "image/png", "img_id": "IMG_001", "store_id": STORE_A},
            ],
        },
    ],
}

#: ``extra_fields["gen_searcher"]`` as the verl agent loop wrote it before the record.
OLD_VERL_SUMMARY: dict[str, Any] = {
    "termination": "forced_answer",
    "gen_prompt": "A bridge like the first reference image.",
    "reference_images": [{"img_id": "IMG_002", "store_id": STORE_B, "note": "towers"}],
    "generator_image_ids": [STORE_B],
    "model_calls": 10,
    "tool_calls": 8,
    "format_errors": 0,
    "detail": None,
    "answer": {
        "gen_prompt": "A bridge like the first reference image.",
        "reference_images": [{"img_id": "IMG_002", "note": "towers"}],
    },
    "valid": True,
    "prompt": "Draw it.",
    "image_count": 4,
    "loss_masked": False,
}


def test_a_driver_run_round_trips_through_json() -> None:
    run = anyio.run(scripted_run)
    record = run.record(include_image_data=True)
    assert record.schema_version == SCHEMA_VERSION and record.valid and record.steps
    dumped = json.loads(json.dumps(run.trace(include_image_data=True)))
    assert read_episode_record(dumped) == record == EpisodeRecord.model_validate(record.model_dump(mode="json"))
    assert (
        record.gen_prompt == run.result.gen_prompt
        and list(record.generator_image_ids) == run.result.generator_image_ids
    )
    assert [(r.img_id, r.store_id) for r in record.references] == [
        (r.img_id, r.store_id) for r in run.result.references
    ]
    images = [p for m in record.messages or () if not isinstance(m.content, str) for p in m.content]
    assert any(isinstance(p, ImagePart) and p.data for p in images)
    plain = run.record()  # what trace.json holds: ids, no image bytes
    assert all(p.data is None for m in plain.messages or () if not isinstance(m.content, str) for p in m.content
               if isinstance(p, ImagePart))  # fmt: skip
    assert "gen_prompt" not in run.trace() and run.trace()["answer"]["gen_prompt"] == run.result.gen_prompt


def test_the_old_driver_trace_is_read() -> None:
    record = read_episode_record(OLD_DRIVER_TRACE)
    assert record.termination is Termination.ANSWERED and record.model == "Gen-Searcher-8B" and record.wall_s == 1.25
    assert (record.model_calls, record.tool_calls, record.format_errors) == (3, 1, 1)
    assert record.gen_prompt == "The bridge as in the first reference image."
    (ref,) = record.references
    assert (ref.img_id, ref.store_id, ref.note, ref.title) == ("IMG_001", STORE_A, "towers", "Quorvath")
    assert record.generator_image_ids == (STORE_A,)
    steps = record.steps or ()
    assert [type(s) for s in steps] == [ModelStep, ToolsStep, ModelStep, ModelStep]
    first, tools, format_error, failed = steps
    assert isinstance(first, ModelStep) and first.tool_calls and first.tool_calls[0].arguments == {"query": "Q"}
    assert isinstance(tools, ToolsStep) and tools.calls[0].result.images[0].store_id == STORE_A
    assert isinstance(format_error, ModelStep) and format_error.error == "no_action"
    assert isinstance(failed, ModelStep) and failed.kind is None and failed.error == "model server down"
    assert record.images and record.images["IMG_001"].width == 96
    # Read once, it is a v1 record from then on.
    assert EpisodeRecord.model_validate(record.model_dump(mode="json")) == record


def test_the_old_verl_summary_is_read_with_gen_prompt_once() -> None:
    record = read_episode_record(OLD_VERL_SUMMARY)
    assert record.termination is Termination.FORCED_ANSWER and record.prompt == "Draw it."
    assert record.image_count == 4 and record.loss_masked is False and record.steps is None
    assert record.gen_prompt == "A bridge like the first reference image."
    assert [(r.img_id, r.store_id, r.note) for r in record.references] == [("IMG_002", STORE_B, "towers")]
    dumped = record.model_dump(mode="json")
    assert "gen_prompt" not in dumped and dumped["answer"]["gen_prompt"] == record.gen_prompt

    answer_only = {**OLD_VERL_SUMMARY, "gen_prompt": None, "reference_images": []}  # the answer's copy counts
    read = read_episode_record(answer_only)
    assert read.gen_prompt == OLD_VERL_SUMMARY["gen_prompt"] and read.references[0].note == "towers"
    assert read.references[0].store_id is None  # the answer never knew it

    failed = {**OLD_VERL_SUMMARY, "termination": "error", "valid": False, "gen_prompt": None, "answer": None}
    assert read_episode_record(failed).answer is None


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"schema_version": SCHEMA_VERSION + 1, "prompt": "p", "termination": "answered"}, "is newer than"),
        ({"schema_version": 0, "prompt": "p", "termination": "answered"}, "does not exist"),
        ({"schema_version": 1, "prompt": "p", "termination": "sideways"}, "termination"),
        ({"schema_version": 1, "prompt": "p", "termination": "answered", "typo": 1}, "typo"),
        ({**OLD_VERL_SUMMARY, "gen_prompt": None, "answer": None}, "marked valid but has no gen_prompt"),
        ({"hello": "world"}, "not an episode record"),
    ],
)
def test_what_cannot_be_read_is_refused_clearly(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(EpisodeRecordError, match=message):
        read_episode_record(bad)


def test_a_record_is_passed_through_and_not_a_mapping_is_refused() -> None:
    record = read_episode_record(OLD_VERL_SUMMARY)
    assert read_episode_record(record) is record
    with pytest.raises(EpisodeRecordError, match="JSON object, not list"):
        read_episode_record([])  # type: ignore[arg-type]


def test_termination_is_one_enum_for_policy_and_core() -> None:
    from policy.episode import Termination as PolicyTermination

    assert PolicyTermination is Termination


def test_an_old_trace_json_still_shows_as_a_page() -> None:
    from policy.trace_view import trace_view

    view = trace_view(OLD_DRIVER_TRACE)
    assert view.source == "driver" and view.ok and view.model == "Gen-Searcher-8B"
    assert [t.kind for t in view.turns] == ["tool_calls", "format_error", "model_error"]
    assert view.turns[0].tools[0].kind == "images" and view.turns[0].tools[0].images[0].img_id == "IMG_001"
    assert view.turns[2].error == "model server: model server down"
    assert [(r.img_id, r.to_generator, r.image.title) for r in view.references] == [("IMG_001", True, "Quorvath")]
    assert trace_view(read_episode_record(OLD_DRIVER_TRACE)) == view
