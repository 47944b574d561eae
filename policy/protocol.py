"""Parsing one model turn of the Gen-Searcher agent protocol.

A turn is ``<think>…</think>`` followed by either one ``<tool_call>{json}</tool_call>``
(several when parallel tool calls are enabled) or one ``<answer>{json}</answer>``.
Tool-call JSON is read leniently (json5: single quotes, trailing commas, bare keys).
Anything after a ``<tool_response>`` the model invented itself is cut before parsing.

Everything here is pure: no I/O, no state. Problems are reported as
:class:`FormatError`, whose message is written for the model (it goes into the
corrective user turn).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

import json5

from gen_searcher_core.errors import UserFacingError
from gen_searcher_core.limits import MAX_REFERENCES, MIN_REFERENCES

IMG_ID_PATTERN = re.compile(r"^IMG_\d{3,}$")
IMG_ID_IN_TEXT = re.compile(r"\bIMG_\d{3,}\b")

_THINK = re.compile(r"^(?:.*?<think>)?(.*?)</think>", re.DOTALL)
_TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_FENCE = re.compile(r"^```(?:json5?|JSON)?\s*(.*?)\s*```$", re.DOTALL)

FORMAT_REMINDER = (
    "Reply with <think>your reasoning</think> followed by exactly one "
    '<tool_call>{"name": ..., "arguments": {...}}</tool_call> or one '
    '<answer>{"gen_prompt": ..., "reference_images": [{"img_id": "IMG_###", "note": ...}]}</answer>.'
)


class FormatError(UserFacingError, ValueError):
    """The turn does not follow the protocol. ``str(error)`` is shown to the model.

    ``kind`` is a stable machine-readable code (for traces and metrics).
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind

    @property
    def message(self) -> str:
        return str(self)


class AnswerError(FormatError):
    """An ``<answer>`` block is present but its content is not a valid answer."""


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments}


@dataclass(frozen=True)
class ReferenceImage:
    img_id: str
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {"img_id": self.img_id, "note": self.note}


@dataclass(frozen=True)
class Answer:
    gen_prompt: str
    reference_images: tuple[ReferenceImage, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"gen_prompt": self.gen_prompt, "reference_images": [r.to_dict() for r in self.reference_images]}


@dataclass(frozen=True)
class ParsedTurn:
    """A turn that follows the protocol: either ``tool_calls`` (non-empty) or ``answer_text``."""

    text: str  # the turn after cutting a hallucinated <tool_response>
    think: str | None
    tool_calls: tuple[ToolCall, ...] = field(default_factory=tuple)
    answer_text: str | None = None  # raw content of <answer>…</answer>; validate with parse_answer

    @property
    def is_answer(self) -> bool:
        return self.answer_text is not None


def cut_hallucinated_response(text: str) -> str:
    """Drop everything from the first ``<tool_response>`` the model wrote itself."""
    index = text.find("<tool_response>")
    return text if index < 0 else text[:index].rstrip()


def _strip_fence(raw: str) -> str:
    raw = raw.strip()
    match = _FENCE.match(raw)
    return match.group(1).strip() if match else raw


def _loads_lenient(raw: str) -> Any:
    raw = _strip_fence(raw)
    try:
        return json.loads(raw)
    except ValueError:
        return json5.loads(raw)


def parse_tool_call(raw: str, tool_names: Collection[str]) -> ToolCall:
    """Parse the JSON inside one ``<tool_call>`` block."""
    try:
        data = _loads_lenient(raw)
    except ValueError as exc:
        raise FormatError("tool_call_json", f"The <tool_call> content is not valid JSON ({exc}).") from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise FormatError(
            "tool_call_shape", 'A <tool_call> must hold a JSON object {"name": "<tool>", "arguments": {...}}.'
        )
    name = data["name"].strip()
    if name not in tool_names:
        offered = ", ".join(sorted(tool_names))
        raise FormatError("unknown_tool", f"Unknown tool {name!r}. The available tools are: {offered}.")
    arguments = data.get("arguments", {})
    if isinstance(arguments, str):  # some models emit the arguments as a JSON string
        try:
            arguments = _loads_lenient(arguments) if arguments.strip() else {}
        except ValueError:
            raise FormatError("tool_call_arguments", "The tool call's arguments must be a JSON object.") from None
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise FormatError("tool_call_arguments", "The tool call's arguments must be a JSON object.")
    return ToolCall(name=name, arguments=arguments)


def parse_turn(
    text: str,
    *,
    tool_names: Collection[str],
    parallel_tool_calls: bool = False,
    max_parallel_calls: int = 5,
) -> ParsedTurn:
    """Split one model turn into its thinking and its tool calls or answer.

    Raises :class:`FormatError` when the turn has neither, both, several tool calls
    while parallel calls are off, or a tool call that cannot be read.
    """
    text = cut_hallucinated_response(text)
    # ``<think>`` may be missing when the chat template opened it in the generation prompt.
    think_match = _THINK.search(text)
    think = think_match.group(1).strip() if think_match else None
    # Tags inside the thinking do not count as actions.
    body = text[think_match.end() :] if think_match else text
    raw_calls = _TOOL_CALL.findall(body)
    raw_answers = _ANSWER.findall(body)
    if raw_calls and raw_answers:
        raise FormatError(
            "call_and_answer", "A turn must contain either tool calls or an answer, not both. " + FORMAT_REMINDER
        )
    if len(raw_answers) > 1:
        raise FormatError("several_answers", "Give exactly one <answer> block. " + FORMAT_REMINDER)
    if raw_answers:
        return ParsedTurn(text=text, think=think, answer_text=raw_answers[0])
    if not raw_calls:
        if "<tool_call>" in body or "<answer>" in body:
            raise FormatError("unclosed_tag", "A <tool_call> or <answer> tag was not closed. " + FORMAT_REMINDER)
        raise FormatError("no_action", "The reply has no <tool_call> and no <answer>. " + FORMAT_REMINDER)
    if len(raw_calls) > 1 and not parallel_tool_calls:
        raise FormatError("several_tool_calls", "Make exactly one <tool_call> per turn. " + FORMAT_REMINDER)
    if len(raw_calls) > max_parallel_calls:
        raise FormatError(
            "too_many_tool_calls", f"At most {max_parallel_calls} <tool_call> blocks are allowed in one turn."
        )
    calls = tuple(parse_tool_call(raw, tool_names) for raw in raw_calls)
    return ParsedTurn(text=text, think=think, tool_calls=calls)


def parse_answer(
    raw: str,
    *,
    known_ids: Collection[str] | Callable[[str], bool],
    max_references: int = MAX_REFERENCES,
    min_references: int = MIN_REFERENCES,
) -> Answer:
    """Validate the JSON inside ``<answer>``.

    ``gen_prompt`` must be a non-empty string that names references only by
    ordinal (no IMG ids: the generator never sees them); ``reference_images`` a list of
    ``min_references``..``max_references`` objects ``{"img_id": "IMG_###", "note": str}``,
    each id seen in this episode, no duplicates, in ascending id order (the
    ordinals in ``gen_prompt`` follow that order).
    """
    is_known: Callable[[str], bool] = known_ids if callable(known_ids) else known_ids.__contains__
    data = _answer_object(raw)
    prompt = _gen_prompt(data)
    items = _reference_items(data, min_references, max_references)
    references = [_reference(item, is_known) for item in items]
    _check_reference_order(references)
    return Answer(gen_prompt=prompt.strip(), reference_images=tuple(references))


def _answer_object(raw: str) -> dict[str, Any]:
    """The JSON object inside ``<answer>``."""
    try:
        data = _loads_lenient(raw)
    except ValueError as exc:
        raise AnswerError("answer_json", f"The <answer> content is not valid JSON ({exc}).") from None
    if not isinstance(data, dict):
        raise AnswerError("answer_shape", "The <answer> must hold a JSON object with gen_prompt and reference_images.")
    return data


def _gen_prompt(data: dict[str, Any]) -> str:
    """``gen_prompt``: a non-empty string that names no IMG id (the generator never sees them)."""
    prompt = data.get("gen_prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise AnswerError("gen_prompt", "The answer needs a non-empty string gen_prompt.")
    named = IMG_ID_IN_TEXT.search(prompt)
    if named:
        raise AnswerError(
            "gen_prompt_img_id",
            f"gen_prompt mentions {named.group(0)}, but the generator never sees IMG ids; name references by "
            "position in your list (the first reference image, the second reference image, …).",
        )
    return prompt


def _reference_items(data: dict[str, Any], min_references: int, max_references: int) -> list[Any]:
    """``reference_images``: a list of ``min_references``..``max_references`` entries (not yet checked)."""
    refs = data.get("reference_images")
    if not isinstance(refs, list):
        raise AnswerError("references_shape", "reference_images must be a list of {img_id, note} objects.")
    if not min_references <= len(refs) <= max_references:
        raise AnswerError(
            "reference_count",
            f"reference_images must list {min_references} to {max_references} images; you gave {len(refs)}.",
        )
    return refs


def _reference(item: Any, is_known: Callable[[str], bool]) -> ReferenceImage:
    """One entry: ``{"img_id": "IMG_###", "note": …}`` (a bare id is tolerated) naming an image of this episode."""
    if isinstance(item, str):  # tolerate a bare id
        item = {"img_id": item, "note": ""}
    if not isinstance(item, dict) or not isinstance(item.get("img_id"), str):
        raise AnswerError("references_shape", 'Each reference must be an object {"img_id": "IMG_###", "note": ...}.')
    img_id = item["img_id"].strip()
    note = item.get("note", "")
    if not isinstance(note, str):
        note = json.dumps(note, ensure_ascii=False)
    if not IMG_ID_PATTERN.match(img_id):
        raise AnswerError("img_id_format", f"{img_id!r} is not an image id; use ids of the form IMG_001.")
    if not is_known(img_id):
        raise AnswerError(
            "unknown_img_id", f"{img_id} is not an image you were shown; use only IMG ids from tool responses."
        )
    return ReferenceImage(img_id=img_id, note=note.strip())


def _check_reference_order(references: list[ReferenceImage]) -> None:
    """No id twice, ids ascending (``gen_prompt``'s ordinals follow the list's order)."""
    ids = [ref.img_id for ref in references]
    if len(set(ids)) != len(ids):
        raise AnswerError("duplicate_reference", "Each reference image may be listed only once.")
    if ids != sorted(ids, key=_id_number):
        raise AnswerError(
            "references_order",
            "List reference_images in ascending id order (IMG_001 before IMG_002); "
            "gen_prompt's ordinals (the first reference image, …) follow that order.",
        )


def _id_number(img_id: str) -> int:
    return int(img_id.split("_", 1)[1])


def format_tool_calls(calls: Iterable[ToolCall]) -> str:
    """Render tool calls the way the model writes them (used by scripted policies and traces)."""
    return "\n".join(f"<tool_call>{json.dumps(c.to_dict(), ensure_ascii=False)}</tool_call>" for c in calls)
