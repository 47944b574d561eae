"""The episode record: what one Gen-Searcher episode was, whoever ran it.

One Pydantic model family, data only, in the lowest layer so every area may import it.
The inference driver writes it as ``trace.json`` (with its turns), the verl agent loop
puts it in ``extra_fields["gen_searcher"]`` (outcome only), the reward, the trace pages
and the benchmarks read it. What crosses a process or a file is
``record.model_dump(mode="json")``; :meth:`EpisodeRecord.model_validate` reads it back.

The record is versioned (``schema_version``, now :data:`SCHEMA_VERSION`): a record of a
newer version than this code knows is refused with an error saying so, never half-read.
Files written before the record existed stay readable through :func:`read_episode_record`:

* the driver's ``trace.json`` of before (``prompt``, ``result``, ``steps``, ``images``,
  ``messages``: the shape ``EpisodeRun.trace()`` wrote);
* the verl agent loop's summary of before (``termination``, ``gen_prompt`` twice: at the
  top and in ``answer``, ``valid``, ``generator_image_ids``, ``loss_masked`` …).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gen_searcher_core.errors import UserFacingError

SCHEMA_VERSION = 1

__all__ = [
    "SCHEMA_VERSION",
    "EpisodeAnswer",
    "EpisodeRecord",
    "EpisodeRecordError",
    "ImagePart",
    "ImageRecord",
    "Message",
    "MessagePart",
    "ModelStep",
    "ResolvedReference",
    "Step",
    "Termination",
    "TextPart",
    "ToolCallRecord",
    "ToolCallRequest",
    "ToolImageRecord",
    "ToolResultRecord",
    "ToolsStep",
    "read_episode_record",
]


class EpisodeRecordError(UserFacingError, ValueError):
    """The object is no episode record this version can read (the message says why)."""


class Termination(enum.StrEnum):
    """How an episode ended."""

    ANSWERED = "answered"  # a valid answer within the ordinary calls
    FORCED_ANSWER = "forced_answer"  # a valid answer on the forced final call
    MAX_TURNS = "max_turns"  # the forced final call gave no answer
    REPEATED_RESPONSE = "repeated_response"  # a response identical to an earlier one
    TOO_LONG = "too_long"  # too many consecutive truncated responses
    ANSWER_PARSE_FAILED = "answer_parse_failed"  # the forced final call's answer was invalid
    ERROR = "error"  # the driver failed (model server, tool session)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResolvedReference(_Record):
    """One reference image of the answer, resolved from its per-episode IMG id to the image store."""

    img_id: str
    store_id: str | None = None  # None only in records that never knew it (old summaries' answers)
    note: str = ""
    title: str | None = None
    page_url: str | None = None
    source_url: str | None = None


class EpisodeAnswer(_Record):
    """The valid answer: the grounded prompt, its references, and the store ids the generator gets."""

    gen_prompt: str
    references: tuple[ResolvedReference, ...] = ()
    generator_image_ids: tuple[str, ...] = ()  # in order; the first references with a store id

    @field_validator("gen_prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("gen_prompt is empty")
        return value


# -- the driver's trace: messages, image ids, steps ---------------------------------


class TextPart(_Record):
    type: Literal["text"] = "text"
    text: str


class ImagePart(_Record):
    """An image the model saw; ``data`` (base64) is left out of traces unless asked for."""

    type: Literal["image"] = "image"
    data: str | None = None
    mime_type: str | None = None
    img_id: str | None = None
    store_id: str | None = None


MessagePart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class Message(_Record):
    role: str
    content: str | tuple[MessagePart, ...]


class ImageRecord(_Record):
    """One entry of the episode's IMG id map."""

    img_id: str
    store_id: str
    title: str | None = None
    page_url: str | None = None
    source_url: str | None = None
    width: int | None = None
    height: int | None = None
    query: str | None = None  # the image_search query that first found it


class ToolImageRecord(_Record):
    """An image in a tool result (its thumbnail bytes only when asked for)."""

    data: str | None = None
    mime_type: str = "image/jpeg"
    store_id: str | None = None
    title: str | None = None
    page_url: str | None = None
    source_url: str | None = None
    width: int | None = None
    height: int | None = None


class ToolResultRecord(_Record):
    name: str
    text: str
    structured: Any = None  # the tool's structured content, as the server sent it
    images: tuple[ToolImageRecord, ...] = ()
    is_error: bool = False


class ToolCallRecord(_Record):
    name: str
    arguments: dict[str, Any]
    started_s: float | None = None  # since the batch started
    elapsed_s: float | None = None
    result: ToolResultRecord


class ToolsStep(_Record):
    """One batch of tool calls (concurrent when ``parallel``)."""

    type: Literal["tools"] = "tools"
    parallel: bool = False
    elapsed_s: float | None = None
    calls: tuple[ToolCallRecord, ...] = ()


class ToolCallRequest(_Record):
    """A tool call as the model wrote it."""

    name: str
    arguments: dict[str, Any]


class ModelStep(_Record):
    """One model call and what the episode made of it.

    ``kind`` is the episode's reading (tool_calls, answer, format_error, too_long,
    repeated_response); a model-server failure has no ``kind`` and its message in ``error``.
    For a format error ``error`` is the stable code and ``detail`` the message.
    """

    type: Literal["model"] = "model"
    call: int
    elapsed_s: float | None = None
    forced: bool = False
    truncated: bool = False
    kind: str | None = None
    text: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    tool_calls: tuple[ToolCallRequest, ...] | None = None  # the calls the model asked for
    error: str | None = None
    detail: str | None = None


Step = Annotated[ModelStep | ToolsStep, Field(discriminator="type")]


# -- the record --------------------------------------------------------------------


class EpisodeRecord(_Record):
    """One episode: its request, outcome and counters, and (from the driver) its turns."""

    schema_version: int = SCHEMA_VERSION
    prompt: str
    termination: Termination
    answer: EpisodeAnswer | None = None
    model_calls: int = 0
    tool_calls: int = 0
    format_errors: int = 0
    detail: str | None = None  # why it ended, when not with an answer
    model: str | None = None
    wall_s: float | None = None
    image_count: int | None = None  # images in the verl rollout's context
    loss_masked: bool = False  # the verl agent loop zeroed the episode's loss mask
    config: dict[str, Any] | None = None  # the episode's limits, as the driver ran it
    steps: tuple[Step, ...] | None = None  # the driver's turns; None where not recorded (verl)
    images: dict[str, ImageRecord] | None = None  # IMG id -> image
    messages: tuple[Message, ...] | None = None

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if version > SCHEMA_VERSION:
            raise ValueError(
                f"episode record schema_version {version} is newer than this gen-searcher reads "
                f"({SCHEMA_VERSION}); upgrade gen-searcher to read it"
            )
        if version < 1:
            raise ValueError(f"episode record schema_version {version} does not exist (the first is 1)")
        return version

    @property
    def valid(self) -> bool:
        """The episode ended with a valid answer."""
        return self.answer is not None

    @property
    def gen_prompt(self) -> str | None:
        return self.answer.gen_prompt if self.answer else None

    @property
    def references(self) -> tuple[ResolvedReference, ...]:
        return self.answer.references if self.answer else ()

    @property
    def generator_image_ids(self) -> tuple[str, ...]:
        return self.answer.generator_image_ids if self.answer else ()


# -- reading --------------------------------------------------------------------------


def read_episode_record(obj: EpisodeRecord | Mapping[str, Any]) -> EpisodeRecord:
    """The record in ``obj``: a record, its JSON dump, or a file of before the record existed.

    Raises :class:`EpisodeRecordError` for anything else, and for a record of a newer version.
    """
    if isinstance(obj, EpisodeRecord):
        return obj
    if not isinstance(obj, Mapping):
        raise EpisodeRecordError(f"an episode record is a JSON object, not {type(obj).__name__}")
    try:
        if "schema_version" in obj:
            return EpisodeRecord.model_validate(obj)
        if isinstance(obj.get("steps"), list) and isinstance(obj.get("result"), Mapping):
            return _from_driver_trace(obj)
        if "termination" in obj:
            return _from_verl_summary(obj)
    except ValidationError as exc:
        raise EpisodeRecordError(f"not a readable episode record: {_first_problem(exc)}") from None
    raise EpisodeRecordError(
        "not an episode record: expected schema_version (a record), prompt + result + steps (a driver trace "
        "of before) or termination (a verl episode summary of before)"
    )


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "record"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {error['msg']}{more}"


def _legacy_answer(summary: Mapping[str, Any]) -> EpisodeAnswer | None:
    """The answer of an old summary or trace result, where ``gen_prompt`` could sit twice."""
    raw = summary.get("answer")
    answer: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    gen_prompt = summary.get("gen_prompt") or answer.get("gen_prompt")
    if not summary.get("valid", bool(gen_prompt)):
        return None
    if not isinstance(gen_prompt, str) or not gen_prompt.strip():
        raise EpisodeRecordError("the episode is marked valid but has no gen_prompt")
    references = summary.get("reference_images") or answer.get("reference_images") or []
    return EpisodeAnswer.model_validate(
        {
            "gen_prompt": gen_prompt,
            "references": [ref if isinstance(ref, Mapping) else {"img_id": ref} for ref in references],
            "generator_image_ids": summary.get("generator_image_ids") or [],
        }
    )


def _counters(result: Mapping[str, Any]) -> dict[str, Any]:
    return {key: result.get(key) or 0 for key in ("model_calls", "tool_calls", "format_errors")}


def _from_driver_trace(trace: Mapping[str, Any]) -> EpisodeRecord:
    result: Mapping[str, Any] = trace["result"]
    return EpisodeRecord.model_validate(
        {
            "prompt": trace.get("prompt") or "",
            "termination": trace.get("termination") or result.get("termination"),
            "answer": _legacy_answer(result),
            **_counters(result),
            "detail": result.get("detail"),
            "model": trace.get("model"),
            "wall_s": trace.get("wall_s"),
            "config": trace.get("config"),
            "steps": trace["steps"],
            "images": trace.get("images") or {},
            "messages": trace.get("messages") or [],
        }
    )


def _from_verl_summary(summary: Mapping[str, Any]) -> EpisodeRecord:
    return EpisodeRecord.model_validate(
        {
            "prompt": summary.get("prompt") or "",
            "termination": summary["termination"],
            "answer": _legacy_answer(summary),
            **_counters(summary),
            "detail": summary.get("detail"),
            "image_count": summary.get("image_count"),
            "loss_masked": bool(summary.get("loss_masked")),
        }
    )
