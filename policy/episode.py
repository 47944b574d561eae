"""The Gen-Searcher episode as a state machine, with no I/O.

A driver (the OpenAI-compatible chat driver in :mod:`policy.driver`, or the verl
agent loop) runs it like this::

    episode = Episode(prompt, EpisodeConfig())
    messages = episode.initial_messages()          # system + user
    while True:
        text, truncated = generate(episode.messages)   # the model's next turn
        action = episode.on_model_output(text, truncated)
        if isinstance(action, Finished):
            break                                  # action.result: EpisodeResult
        if isinstance(action, RunTools):
            results = run(action.calls)            # list[ToolResult], same order
            message = episode.on_tool_results(results)
        else:                                      # Continue: corrective / notice
            message = action.message
        # ``message`` is already appended to episode.messages; send it to the model.

Messages are plain OpenAI-style dicts. ``content`` is a string (system,
assistant) or a list of parts: ``{"type": "text", "text": …}`` and
``{"type": "image", "data": <base64>, "mime_type": …, "img_id": "IMG_001",
"store_id": "img_…"}``. :func:`to_openai_messages` turns image parts into
``image_url`` data URLs; :func:`message_images` returns their bytes in order.

Limits (defaults follow the published system): ``max_calls`` ordinary model
calls, then one forced final call whose message forbids tool calls and requires
an answer. Format errors and too-long turns count as calls. Two too-long turns
in a row end the episode, and so does a response identical to an earlier one.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gen_searcher_core.episode_record import (
    EpisodeAnswer,
    EpisodeRecord,
    ImageRecord,
    Message,
    ResolvedReference,
    Step,
    Termination,
)
from gen_searcher_core.errors import GenSearcherError
from gen_searcher_core.imaging import data_url
from gen_searcher_core.limits import GENERATOR_REFERENCES, MAX_MODEL_CALLS, MAX_REFERENCES, MIN_REFERENCES
from gen_searcher_core.tool_results import ToolOutput, parse_output
from policy.image_ids import ImageRegistry
from policy.prompts import (
    FORCED_FINAL_NOTICE,
    TOO_LONG_NOTICE,
    TOOL_SPECS,
    build_system_prompt,
    corrective_message,
)
from policy.protocol import (
    Answer,
    AnswerError,
    FormatError,
    ToolCall,
    cut_hallucinated_response,
    parse_answer,
    parse_turn,
)

_STORE_ID = re.compile(r"\bimg_[0-9a-f]{16}\b")


@dataclass(frozen=True)
class EpisodeConfig:
    max_calls: int = MAX_MODEL_CALLS
    parallel_tool_calls: bool = False
    max_parallel_calls: int = 5
    max_references: int = MAX_REFERENCES
    min_references: int = MIN_REFERENCES
    generator_references: int = GENERATOR_REFERENCES
    tool_text_budget: int = 8000  # characters of one tool result's text shown to the model
    max_consecutive_too_long: int = 2
    system_prompt: str | None = None  # replaces the built-in prompt; the tool block is still appended
    user_template: str = "{prompt}"
    tool_specs: tuple[dict[str, Any], ...] = TOOL_SPECS

    def __post_init__(self) -> None:
        if self.max_calls < 1:
            raise ValueError("max_calls must be at least 1")
        if not 1 <= self.min_references <= self.max_references:
            raise ValueError("need 1 <= min_references <= max_references")
        if self.generator_references < 1:
            raise ValueError("generator_references must be at least 1")

    @property
    def tool_names(self) -> frozenset[str]:
        return frozenset(spec["function"]["name"] for spec in self.tool_specs)


@dataclass(frozen=True)
class ToolImage:
    """One image in a tool result: a thumbnail (base64) plus what identifies it."""

    data: str
    mime_type: str = "image/jpeg"
    store_id: str | None = None
    title: str | None = None
    page_url: str | None = None
    source_url: str | None = None
    width: int | None = None
    height: int | None = None

    def to_dict(self, *, with_data: bool = True) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if v is not None}
        if not with_data:
            out.pop("data", None)
        return out


@dataclass(frozen=True)
class ToolResult:
    """What a tool call returned, as the episode needs it. Errors are results too."""

    name: str
    text: str
    structured: Any = None
    images: tuple[ToolImage, ...] = ()
    is_error: bool = False

    @classmethod
    def error(cls, name: str, message: str) -> ToolResult:
        return cls(name=name, text=message, is_error=True)

    @property
    def output(self) -> ToolOutput | None:
        """The structured result read through the tool's output model (``RenderResult`` for ``render``, …);
        None for errors, other tools, or content that does not fit the contract."""
        return None if self.is_error else parse_output(self.name, self.structured)

    def to_dict(self, *, with_data: bool = False) -> dict[str, Any]:
        return {
            "name": self.name,
            "text": self.text,
            "structured": self.structured,
            "images": [image.to_dict(with_data=with_data) for image in self.images],
            "is_error": self.is_error,
        }


@dataclass(frozen=True)
class EpisodeResult:
    """The state machine's outcome, in memory (the parsed answer included).

    What crosses a process or a file is :meth:`Episode.record`'s :class:`EpisodeRecord`;
    :meth:`to_dict` is the shape of ``answer.json`` of ``gen-searcher run``.
    """

    termination: Termination
    answer: Answer | None
    references: tuple[ResolvedReference, ...]
    generator_references: int
    model_calls: int
    tool_calls: int
    format_errors: int
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.answer is not None

    @property
    def gen_prompt(self) -> str | None:
        return self.answer.gen_prompt if self.answer else None

    @property
    def generator_image_ids(self) -> list[str]:
        """Store ids of the references the generator receives (the first ``generator_references``)."""
        return [ref.store_id for ref in self.references[: self.generator_references] if ref.store_id is not None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "termination": str(self.termination),
            "gen_prompt": self.gen_prompt,
            "reference_images": [ref.model_dump(exclude_none=True) for ref in self.references],
            "generator_image_ids": self.generator_image_ids,
            "model_calls": self.model_calls,
            "tool_calls": self.tool_calls,
            "format_errors": self.format_errors,
            "detail": self.detail,
        }

    def to_answer(self) -> EpisodeAnswer | None:
        """The answer as the episode record holds it (resolved references, the generator's store ids)."""
        if self.answer is None:
            return None
        return EpisodeAnswer(
            gen_prompt=self.answer.gen_prompt,
            references=self.references,
            generator_image_ids=tuple(self.generator_image_ids),
        )


@dataclass(frozen=True)
class RunTools:
    """Run these calls (concurrently when there are several) and pass the results to ``on_tool_results``."""

    calls: tuple[ToolCall, ...]


@dataclass(frozen=True)
class Continue:
    """Send ``message`` (already appended to ``episode.messages``) and call the model again."""

    message: dict[str, Any]
    reason: str  # "format_error" | "too_long"


@dataclass(frozen=True)
class Finished:
    result: EpisodeResult


Action = RunTools | Continue | Finished


def text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _merge_text_parts(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged: list[dict[str, Any]] = []
    for part in parts:
        if part["type"] == "text" and merged and merged[-1]["type"] == "text":
            merged[-1] = text_part(merged[-1]["text"] + part["text"])
        else:
            merged.append(part)
    return merged


def message_text(message: dict[str, Any]) -> str:
    """The text of a message, image parts left out."""
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part["text"] for part in content if part["type"] == "text")


def message_images(message: dict[str, Any]) -> list[bytes]:
    """The decoded image parts of a message, in order."""
    content = message["content"]
    if isinstance(content, str):
        return []
    return [base64.b64decode(part["data"]) for part in content if part["type"] == "image"]


def to_openai_messages(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Render episode messages for an OpenAI-compatible chat API (images as data URLs)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            out.append({"role": message["role"], "content": content})
            continue
        parts: list[dict[str, Any]] = []
        for part in content:
            if part["type"] == "image":
                url = data_url(part["data"], part.get("mime_type", "image/jpeg"))
                parts.append({"type": "image_url", "image_url": {"url": url}})
            else:
                parts.append({"type": "text", "text": part["text"]})
        out.append({"role": message["role"], "content": parts})
    return out


class EpisodeStateError(GenSearcherError, RuntimeError):
    """The driver called the episode out of turn."""


class Episode:
    """One search episode for one image request. See the module docstring for the loop."""

    def __init__(self, prompt: str, config: EpisodeConfig | None = None) -> None:
        if not prompt or not prompt.strip():
            raise ValueError("the task prompt is empty")
        self.prompt = prompt
        self.config = config or EpisodeConfig()
        self.images = ImageRegistry()
        self.messages: list[dict[str, Any]] = [
            {"role": "system", "content": build_system_prompt(self.config.system_prompt, self.config.tool_specs)},
            {"role": "user", "content": [text_part(self.config.user_template.format(prompt=prompt))]},
        ]
        self.events: list[dict[str, Any]] = []  # one entry per model call: what the episode made of it
        self.model_calls = 0
        self.tool_calls = 0
        self.format_errors = 0
        self.result: EpisodeResult | None = None
        self._forced = False  # the next model call is the forced final one
        self._pending: tuple[ToolCall, ...] | None = None
        self._too_long_streak = 0
        self._seen: set[str] = set()

    # -- state ---------------------------------------------------------------

    def initial_messages(self) -> list[dict[str, Any]]:
        return list(self.messages[:2])

    @property
    def done(self) -> bool:
        return self.result is not None

    @property
    def forced(self) -> bool:
        """True when the next model call is the forced final call."""
        return self._forced

    @property
    def awaiting_tools(self) -> bool:
        return self._pending is not None

    @property
    def calls_left(self) -> int:
        """Ordinary model calls left (the forced final call not counted)."""
        return max(0, self.config.max_calls - self.model_calls)

    # -- transitions ---------------------------------------------------------

    def on_model_output(self, text: str, truncated: bool = False) -> Action:
        """Take the model's turn; return what the driver does next."""
        if self.done:
            raise EpisodeStateError("the episode has finished")
        if self._pending is not None:
            raise EpisodeStateError("tool results are pending; call on_tool_results first")
        forced = self._forced
        self.model_calls += 1
        cleaned = cut_hallucinated_response(text)
        self.messages.append({"role": "assistant", "content": cleaned})
        event: dict[str, Any] = {"call": self.model_calls, "forced": forced, "truncated": truncated}
        self.events.append(event)

        if truncated:
            self._too_long_streak += 1
            event["kind"] = "too_long"
            if forced or self._too_long_streak >= self.config.max_consecutive_too_long:
                return self._finish(Termination.TOO_LONG, detail="the response hit the token limit")
            return self._continue(TOO_LONG_NOTICE, "too_long")
        self._too_long_streak = 0

        key = cleaned.strip()
        if key in self._seen:
            event["kind"] = "repeated_response"
            return self._finish(Termination.REPEATED_RESPONSE, detail="the response repeats an earlier one")
        self._seen.add(key)

        try:
            turn = parse_turn(
                cleaned,
                tool_names=self.config.tool_names,
                parallel_tool_calls=self.config.parallel_tool_calls,
                max_parallel_calls=self.config.max_parallel_calls,
            )
        except FormatError as exc:
            return self._format_error(event, exc, forced, answer_attempt="<answer>" in cleaned)

        if turn.answer_text is not None:
            try:
                answer = parse_answer(
                    turn.answer_text,
                    known_ids=self.images.__contains__,
                    max_references=self.config.max_references,
                    min_references=self.config.min_references,
                )
            except AnswerError as exc:
                return self._format_error(event, exc, forced, answer_attempt=True)
            event["kind"] = "answer"
            return self._finish(Termination.FORCED_ANSWER if forced else Termination.ANSWERED, answer=answer)

        event["kind"] = "tool_calls"
        event["tool_calls"] = [call.to_dict() for call in turn.tool_calls]
        if forced:
            return self._finish(Termination.MAX_TURNS, detail="a tool call on the forced final turn")
        self._pending = turn.tool_calls
        self.tool_calls += len(turn.tool_calls)
        return RunTools(turn.tool_calls)

    def on_tool_results(self, results: Sequence[ToolResult]) -> dict[str, Any]:
        """Build (and append) the ``<tool_response>`` user message for the pending calls."""
        if self._pending is None:
            raise EpisodeStateError("no tool calls are pending")
        calls = self._pending
        if len(results) != len(calls):
            raise EpisodeStateError(f"expected {len(calls)} tool results, got {len(results)}")
        parts: list[dict[str, Any]] = []
        for index, (call, result) in enumerate(zip(calls, results, strict=True)):
            if index:
                parts.append(text_part("\n"))
            parts.append(text_part("<tool_response>\n"))
            parts.extend(self._render_result(call, result))
            parts.append(text_part("\n</tool_response>"))
        self._pending = None
        if self.model_calls >= self.config.max_calls:
            self._forced = True
            parts.append(text_part("\n\n" + FORCED_FINAL_NOTICE))
        message = {"role": "user", "content": _merge_text_parts(parts)}
        self.messages.append(message)
        return message

    def fail(self, detail: str) -> Finished:
        """End the episode because the driver failed (model server down, tool session lost)."""
        if self.done:
            raise EpisodeStateError("the episode has finished")
        self._pending = None
        return self._finish(Termination.ERROR, detail=detail)

    def record(
        self,
        *,
        model: str | None = None,
        wall_s: float | None = None,
        image_count: int | None = None,
        loss_masked: bool = False,
        steps: Sequence[Step] | None = None,
        include_image_data: bool = False,
    ) -> EpisodeRecord:
        """The finished episode as an :class:`EpisodeRecord`.

        With ``steps`` (a driver's turns) the record also holds the episode's limits, its
        IMG id map and every message; image bytes only with ``include_image_data``.
        """
        if self.result is None:
            raise EpisodeStateError("the episode has not finished")
        result = self.result
        trace = steps is not None
        return EpisodeRecord(
            prompt=self.prompt,
            termination=result.termination,
            answer=result.to_answer(),
            model_calls=result.model_calls,
            tool_calls=result.tool_calls,
            format_errors=result.format_errors,
            detail=result.detail,
            model=model,
            wall_s=wall_s,
            image_count=image_count,
            loss_masked=loss_masked,
            config=_config_dict(self.config) if trace else None,
            steps=tuple(steps) if steps is not None else None,
            images={e.img_id: ImageRecord.model_validate(e.to_dict()) for e in self.images} if trace else None,
            messages=tuple(_message_record(m, include_image_data) for m in self.messages) if trace else None,
        )

    # -- helpers -------------------------------------------------------------

    def _format_error(self, event: dict[str, Any], exc: FormatError, forced: bool, *, answer_attempt: bool) -> Action:
        self.format_errors += 1
        event["kind"] = "format_error"
        event["error"] = exc.kind
        event["detail"] = str(exc)
        if forced:
            reason = Termination.ANSWER_PARSE_FAILED if answer_attempt else Termination.MAX_TURNS
            return self._finish(reason, detail=str(exc))
        return self._continue(corrective_message(str(exc), self.calls_left), "format_error")

    def _continue(self, text: str, reason: str) -> Continue:
        if self.model_calls >= self.config.max_calls:
            self._forced = True
            text = f"{text}\n\n{FORCED_FINAL_NOTICE}"
        message = {"role": "user", "content": [text_part(text)]}
        self.messages.append(message)
        return Continue(message=message, reason=reason)

    def _finish(self, termination: Termination, *, answer: Answer | None = None, detail: str | None = None) -> Finished:
        references: tuple[ResolvedReference, ...] = ()
        if answer is not None:
            resolved = []
            for ref in answer.reference_images:
                entry = self.images.get(ref.img_id)
                resolved.append(
                    ResolvedReference(
                        img_id=ref.img_id,
                        store_id=entry.store_id,
                        note=ref.note,
                        title=entry.title,
                        page_url=entry.page_url,
                        source_url=entry.source_url,
                    )
                )
            references = tuple(resolved)
        self.result = EpisodeResult(
            termination=termination,
            answer=answer,
            references=references,
            generator_references=self.config.generator_references,
            model_calls=self.model_calls,
            tool_calls=self.tool_calls,
            format_errors=self.format_errors,
            detail=detail,
        )
        return Finished(self.result)

    def _render_result(self, call: ToolCall, result: ToolResult) -> list[dict[str, Any]]:
        if result.is_error:
            return [text_part(f"Error from {call.name}: {self._clip(result.text)}")]
        if not result.images:
            return [text_part(self._clip(self._with_img_ids(result.text)))]
        query = call.arguments.get("query")
        header = (
            f"Image search results for {json.dumps(query, ensure_ascii=False)}:"
            if isinstance(query, str)
            else f"Images from {call.name}:"
        )
        parts: list[dict[str, Any]] = [text_part(header)]
        shown = 0
        for image in result.images:
            if not image.store_id:
                continue  # an image without a store id cannot be referenced later
            img_id = self.images.register(
                image.store_id,
                title=image.title,
                page_url=image.page_url,
                source_url=image.source_url,
                width=image.width,
                height=image.height,
                query=query if isinstance(query, str) else None,
            )
            details = [image.title or "untitled"]
            if image.page_url:
                details.append(f"source page: {image.page_url}")
            if image.width and image.height:
                details.append(f"{image.width}x{image.height}")
            parts.append(text_part(f"\n{img_id}: " + "; ".join(details) + "\n"))
            parts.append(
                {
                    "type": "image",
                    "data": image.data,
                    "mime_type": image.mime_type,
                    "img_id": img_id,
                    "store_id": image.store_id,
                }
            )
            shown += 1
        if not shown:
            parts.append(text_part("\nNo images found."))
        return parts

    def _with_img_ids(self, text: str) -> str:
        """Replace store ids the model has an IMG id for (it must never see store ids)."""
        return _STORE_ID.sub(lambda m: self.images.img_id_for(m.group(0)) or m.group(0), text)

    def _clip(self, text: str) -> str:
        budget = self.config.tool_text_budget
        if len(text) <= budget:
            return text
        return f"{text[:budget]}\n[… {len(text) - budget} more characters not shown]"


def _config_dict(config: EpisodeConfig) -> dict[str, Any]:
    data = dataclasses.asdict(config)
    data["tool_specs"] = [spec["function"]["name"] for spec in config.tool_specs]
    return data


def _message_record(message: dict[str, Any], include_data: bool) -> Message:
    content = message["content"]
    if not include_data and not isinstance(content, str):
        content = [{k: v for k, v in p.items() if k != "data"} if p["type"] == "image" else p for p in content]
    return Message.model_validate({"role": message["role"], "content": content})
