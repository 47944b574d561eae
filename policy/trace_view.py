"""Episode traces as one view model, whatever wrote them.

Three records describe an episode; the first two are :class:`EpisodeRecord` s (read through
:func:`~gen_searcher_core.episode_record.read_episode_record`, so files of before the record
existed still show):

* the inference driver's trace (``trace.json`` of ``gen-searcher run``, ``traces/<id>.json``
  of a benchmark run): every model turn and tool call with timings (:meth:`EpisodeRun.trace`);
* the verl agent loop's episode summary (``extra_fields["gen_searcher"]``): the outcome
  only: termination, answer, references;
* a row of verl's rollout dump (``trainer.rollout_data_dir``, JSON lines of ``input``,
  ``output``, ``score``, ``step``): the decoded prompt and response, from which the
  turns are reconstructed by the protocol's tags (images are not in the decoded text).

:func:`trace_view` turns any of them into a :class:`TraceView` that the HTML page
(:mod:`policy.trace_html`) renders. Nothing here reads files or writes markup.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gen_searcher_core.episode_record import (
    EpisodeRecord,
    EpisodeRecordError,
    ImagePart,
    ImageRecord,
    ModelStep,
    ResolvedReference,
    ToolCallRecord,
    ToolImageRecord,
    ToolsStep,
    read_episode_record,
)

_THINK = re.compile(r"^(?:.*?<think>)?(.*?)</think>", re.DOTALL)
_TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_TOOL_RESPONSE = re.compile(r"<tool_response>(.*?)</tool_response>", re.DOTALL)
_ROLE_SPLIT = re.compile(r"\n(user|assistant)\n")
_SAVED_REFERENCE = re.compile(r"(IMG_\d{3,})\.[A-Za-z0-9]+$")


class TraceFormatError(ValueError):
    """The record is none of the trace formats this module knows."""


@dataclass
class ImageView:
    img_id: str | None = None
    src: str | None = None  # a data: URL or a path relative to the page
    href: str | None = None  # the full image, relative to the page
    title: str | None = None
    page_url: str | None = None
    size: str | None = None


@dataclass
class SearchHitView:
    title: str
    url: str
    snippet: str = ""
    date: str | None = None


@dataclass
class SearchQueryView:
    query: str
    hits: list[SearchHitView] = field(default_factory=list)
    error: str | None = None


@dataclass
class ToolCallView:
    name: str
    arguments: dict[str, Any]
    kind: str  # search | browse | images | render | error | text
    text: str = ""
    elapsed_s: float | None = None
    started_s: float | None = None
    searches: list[SearchQueryView] = field(default_factory=list)
    browse: dict[str, Any] | None = None
    images: list[ImageView] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, ensure_ascii=False, indent=1)

    @property
    def is_error(self) -> bool:
        return self.kind == "error"


@dataclass
class TurnView:
    call: int
    kind: str  # tool_calls | answer | format_error | too_long | repeated_response | model_error | unknown
    forced: bool = False
    text: str = ""
    think: str | None = None
    elapsed_s: float | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    error: str | None = None
    answer: dict[str, Any] | None = None
    tools: list[ToolCallView] = field(default_factory=list)
    tools_elapsed_s: float | None = None
    parallel: bool = False
    notices: list[str] = field(default_factory=list)

    @property
    def answer_json(self) -> str:
        return json.dumps(self.answer, ensure_ascii=False, indent=1)


@dataclass
class ReferenceView:
    img_id: str
    note: str
    to_generator: bool
    image: ImageView


@dataclass
class TraceView:
    source: str  # "driver" | "verl summary" | "verl rollout"
    prompt: str
    termination: str | None
    ok: bool
    model: str | None = None
    detail: str | None = None
    wall_s: float | None = None
    model_calls: int | None = None
    tool_calls: int | None = None
    format_errors: int | None = None
    gen_prompt: str | None = None
    references: list[ReferenceView] = field(default_factory=list)
    render: ImageView | None = None
    render_error: str | None = None
    turns: list[TurnView] = field(default_factory=list)
    facts: list[tuple[str, Any]] = field(default_factory=list)  # extra lines of the header (score, step …)
    note: str | None = None  # what this record can and cannot show
    raw_input: str | None = None


def data_url(data: str, mime_type: str | None) -> str:
    """A ``data:`` URL of base64 image bytes (only image types; anything else becomes JPEG)."""
    mime = mime_type if isinstance(mime_type, str) and re.fullmatch(r"image/[a-z0-9.+-]+", mime_type) else "image/jpeg"
    return f"data:{mime};base64,{data}"


def split_think(text: str) -> tuple[str | None, str]:
    """``(thinking, rest)`` of one model turn; the thinking is None when the turn has none."""
    match = _THINK.search(text)
    if not match:
        return None, text
    return match.group(1).strip(), text[match.end() :].strip()


def _answer_of(text: str) -> dict[str, Any] | None:
    match = _ANSWER.search(text)
    if not match:
        return None
    try:
        data = json.loads(match.group(1).strip())
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _size(width: Any, height: Any) -> str | None:
    return f"{width}×{height}" if isinstance(width, int) and isinstance(height, int) else None


# ---------------------------------------------------------------- episode records


class _Images:
    """What the record knows about each image: IMG ids by store id, thumbnails by store id."""

    def __init__(self, record: EpisodeRecord) -> None:
        self.entries: dict[str, ImageRecord] = dict(record.images or {})
        self.img_by_store = {e.store_id: img_id for img_id, e in self.entries.items()}
        self.src_by_store: dict[str, str] = {}
        for message in record.messages or ():
            if isinstance(message.content, str):
                continue
            for part in message.content:
                if isinstance(part, ImagePart) and part.data and part.store_id:
                    self.src_by_store[part.store_id] = data_url(part.data, part.mime_type)

    def view(self, image: ToolImageRecord) -> ImageView:
        store_id = image.store_id or ""
        src = data_url(image.data, image.mime_type) if image.data else self.src_by_store.get(store_id)
        return ImageView(
            img_id=self.img_by_store.get(store_id),
            src=src,
            title=image.title,
            page_url=image.page_url,
            size=_size(image.width, image.height),
        )

    def by_img_id(self, img_id: str) -> ImageView:
        entry = self.entries.get(img_id)
        if entry is None:
            return ImageView(img_id=img_id)
        return ImageView(
            img_id=img_id,
            src=self.src_by_store.get(entry.store_id),
            title=entry.title,
            page_url=entry.page_url,
            size=_size(entry.width, entry.height),
        )


def _search_queries(structured: Mapping[str, Any]) -> list[SearchQueryView]:
    queries = []
    for entry in structured["results"]:
        if not isinstance(entry, dict):
            continue
        hits = [
            SearchHitView(
                title=str(h.get("title") or h.get("url") or ""),
                url=str(h.get("url") or ""),
                snippet=str(h.get("snippet") or ""),
                date=h.get("date"),
            )
            for h in entry.get("hits") or []
            if isinstance(h, dict)
        ]
        queries.append(SearchQueryView(str(entry.get("query", "")), hits, entry.get("error")))
    return queries


def _tool_view(record: ToolCallRecord, images: _Images) -> ToolCallView:
    result = record.result
    name = record.name or result.name or "?"
    view = ToolCallView(
        name=name,
        arguments=dict(record.arguments),
        kind="text",
        text=result.text,
        elapsed_s=record.elapsed_s,
        started_s=record.started_s,
    )
    structured = result.structured
    if result.is_error:
        view.kind = "error"
    elif isinstance(structured, dict) and isinstance(structured.get("results"), list):
        view.kind = "search"
        view.searches = _search_queries(structured)
    elif result.images:
        view.kind = "images"
        view.images = [images.view(image) for image in result.images]
    elif isinstance(structured, dict) and "content" in structured and ("url" in structured or name == "browse"):
        view.kind = "browse"
        view.browse = dict(structured)
    elif name == "render" and isinstance(structured, dict):
        view.kind = "render"
        view.details = {k: v for k, v in structured.items() if isinstance(v, (str, int, float, bool))}
    return view


def _turn_error(step: ModelStep, kind: str) -> str | None:
    if kind == "model_error":
        return f"model server: {step.error}"
    if kind == "format_error":
        return f"{step.error or 'format error'}: {step.detail or ''}".strip()
    if kind == "too_long":
        return "the turn hit the token limit"
    if kind == "repeated_response":
        return "the same reply as an earlier turn"
    return None


def _record_turns(record: EpisodeRecord, images: _Images) -> list[TurnView]:
    turns: list[TurnView] = []
    for step in record.steps or ():
        if isinstance(step, ToolsStep):
            if turns:
                turn = turns[-1]
                turn.tools = [_tool_view(call, images) for call in step.calls]
                turn.tools_elapsed_s = step.elapsed_s
                turn.parallel = step.parallel
            continue
        text = step.text or ""
        think, _ = split_think(text)
        kind = step.kind or ("model_error" if step.error else "unknown")
        turns.append(
            TurnView(
                call=step.call,
                kind=kind,
                forced=step.forced,
                text=text,
                think=think,
                elapsed_s=step.elapsed_s,
                finish_reason=step.finish_reason,
                usage=step.usage,
                error=_turn_error(step, kind),
                answer=_answer_of(text) if kind == "answer" else None,
            )
        )
    return turns


def _saved_references(answer: Mapping[str, Any] | None) -> dict[str, str]:
    """IMG id -> saved full image (``references/NN_IMG_###.ext``) from ``answer.json``."""
    saved: dict[str, str] = {}
    for path in (answer or {}).get("saved_references") or []:
        match = _SAVED_REFERENCE.search(str(path))
        if match:
            saved[match.group(1)] = str(path)
    return saved


def _references(
    references: Sequence[ResolvedReference],
    generator_ids: Sequence[str],
    images: _Images | None,
    saved: Mapping[str, str] | None = None,
) -> list[ReferenceView]:
    to_generator_ids = set(generator_ids)
    refs = []
    for n, ref in enumerate(references):
        image = images.by_img_id(ref.img_id) if images else ImageView(img_id=ref.img_id)
        image.title = image.title or ref.title
        image.page_url = image.page_url or ref.page_url
        image.href = (saved or {}).get(ref.img_id)
        if image.src is None and image.href is not None:
            image.src = image.href
        to_generator = ref.store_id in to_generator_ids if to_generator_ids else n < 3
        refs.append(ReferenceView(img_id=ref.img_id, note=ref.note, to_generator=to_generator, image=image))
    return refs


def _render_view(view: TraceView, answer: Mapping[str, Any] | None) -> None:
    render = (answer or {}).get("render")
    if isinstance(render, dict):
        if render.get("file"):
            view.render = ImageView(
                src=str(render["file"]), href=str(render["file"]), size=_size(render.get("width"), render.get("height"))
            )
        if render.get("error"):
            view.render_error = str(render["error"])


def record_view(record: EpisodeRecord, *, answer: Mapping[str, Any] | None = None) -> TraceView:
    """The view of an episode record: with its turns when the driver recorded them, else the outcome only.

    ``answer`` is ``answer.json`` of a ``gen-searcher run`` folder (saved references, the render).
    """
    with_turns = record.steps is not None
    images = _Images(record) if with_turns else None
    facts: list[tuple[str, Any]] = []
    if record.image_count is not None:
        facts.append(("image count", record.image_count))
    if not with_turns:
        facts.append(("loss masked", record.loss_masked))
    view = TraceView(
        source="driver" if with_turns else "verl summary",
        prompt=record.prompt,
        termination=str(record.termination),
        ok=record.valid,
        model=record.model,
        detail=record.detail,
        wall_s=record.wall_s,
        model_calls=record.model_calls,
        tool_calls=record.tool_calls,
        format_errors=record.format_errors,
        gen_prompt=record.gen_prompt,
        references=_references(record.references, record.generator_image_ids, images, _saved_references(answer)),
        turns=_record_turns(record, images) if images is not None else [],
        facts=facts,
        note=None
        if with_turns
        else "This is the verl agent loop's episode summary: the outcome only, without the turns.",
    )
    _render_view(view, answer)
    return view


# ---------------------------------------------------------------- verl rollout dumps


def _tool_calls_of(text: str) -> list[ToolCallView]:
    calls = []
    for raw in _TOOL_CALL.findall(text):
        try:
            data = json.loads(raw.strip())
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            args: dict[str, Any] = data["arguments"] if isinstance(data.get("arguments"), dict) else {}
            calls.append(ToolCallView(name=data["name"], arguments=args, kind="text"))
        else:
            calls.append(
                ToolCallView(name="?", arguments={}, kind="error", text=f"unreadable tool call: {raw.strip()}")
            )
    return calls


def _rollout_turn(call: int, text: str) -> TurnView:
    think, rest = split_think(text)
    if _ANSWER.search(rest):
        kind = "answer"
    elif _TOOL_CALL.search(rest):
        kind = "tool_calls"
    else:
        kind = "unknown"
    turn = TurnView(call=call, kind=kind, text=text, think=think, answer=_answer_of(rest) if kind == "answer" else None)
    turn.tools = _tool_calls_of(rest) if kind == "tool_calls" else []
    return turn


def _attach_responses(turn: TurnView, user_text: str) -> None:
    """Pair each ``<tool_response>`` of a user turn with the turn's calls (in order); the rest is a notice."""
    responses = _TOOL_RESPONSE.findall(user_text)
    for index, body in enumerate(responses):
        body = body.strip()
        if index < len(turn.tools):
            call = turn.tools[index]
            call.text = body
            if body.startswith("Error from"):
                call.kind = "error"
        else:
            turn.tools.append(ToolCallView(name="?", arguments={}, kind="text", text=body))
    notice = _TOOL_RESPONSE.sub("", user_text).strip()
    if notice:
        turn.notices.append(notice)


def _prompt_from_input(text: str) -> str:
    """The task prompt from a decoded verl prompt (``system … user PROMPT assistant``)."""
    parts = _ROLE_SPLIT.split("\n" + text.rstrip() + "\n")
    for index in range(len(parts) - 2, 0, -1):
        if parts[index] == "user":
            return parts[index + 1].strip()
    return text.strip()


def _rollout_view(row: Mapping[str, Any]) -> TraceView:
    output = str(row.get("output") or "")
    parts = _ROLE_SPLIT.split(output)
    turns = [_rollout_turn(1, parts[0])] if parts and parts[0].strip() else []
    for index in range(1, len(parts) - 1, 2):
        role, text = parts[index], parts[index + 1]
        if role == "assistant":
            turns.append(_rollout_turn(len(turns) + 1, text))
        elif turns:
            _attach_responses(turns[-1], text)
    summary = _read(row["gen_searcher"]) if isinstance(row.get("gen_searcher"), dict) else None
    final = next((t.answer for t in reversed(turns) if t.answer), None)
    prompt = (summary.prompt if summary else "") or _prompt_from_input(str(row.get("input") or ""))
    facts: list[tuple[str, Any]] = []
    for key, value in row.items():
        if key not in ("input", "output", "gen_searcher") and isinstance(value, (str, int, float, bool)):
            facts.append((key, value))
    view = TraceView(
        source="verl rollout",
        prompt=str(prompt),
        termination=str(summary.termination) if summary else None,
        ok=final is not None,
        model_calls=len(turns),
        tool_calls=sum(len(t.tools) for t in turns),
        gen_prompt=(final or {}).get("gen_prompt"),
        turns=turns,
        facts=facts,
        note="Reconstructed from verl's decoded rollout text: image thumbnails and timings are not recorded there.",
        raw_input=str(row.get("input") or "") or None,
    )
    if final is not None:
        view.references = _references(_answer_references(final), (), None)
    return view


def _answer_references(answer: Mapping[str, Any]) -> list[ResolvedReference]:
    """The references of an answer the model wrote (ids and notes; nothing resolved)."""
    return [
        ResolvedReference(img_id=str(ref["img_id"]), note=str(ref.get("note") or ""))
        for ref in answer.get("reference_images") or []
        if isinstance(ref, dict) and ref.get("img_id")
    ]


# ---------------------------------------------------------------- entry points


def trace_kind(record: Mapping[str, Any]) -> str:
    """``driver``, ``verl summary`` or ``verl rollout``; raises :class:`TraceFormatError` for anything else."""
    if "schema_version" in record:  # an episode record: with turns from the driver, the outcome only from verl
        return "driver" if record.get("steps") is not None else "verl summary"
    if isinstance(record.get("steps"), list) and "prompt" in record:
        return "driver"
    if isinstance(record.get("output"), str) and "input" in record:
        return "verl rollout"
    if "termination" in record and ("prompt" in record or "valid" in record):
        return "verl summary"
    if isinstance(record.get("gen_searcher"), dict):
        return "verl summary"
    raise TraceFormatError(
        "not an episode trace: expected an episode record (schema_version), a driver trace (prompt, steps), "
        "a verl episode summary (termination, prompt) or a verl rollout dump row (input, output)"
    )


def _read(obj: Mapping[str, Any]) -> EpisodeRecord:
    try:
        return read_episode_record(obj)
    except EpisodeRecordError as exc:
        raise TraceFormatError(str(exc)) from None


def trace_view(record: Mapping[str, Any] | EpisodeRecord, *, answer: Mapping[str, Any] | None = None) -> TraceView:
    """The view of one trace record; ``answer`` is ``answer.json`` of a ``gen-searcher run`` folder."""
    if isinstance(record, EpisodeRecord):
        return record_view(record, answer=answer)
    if not isinstance(record, Mapping):
        raise TraceFormatError("a trace must be a JSON object")
    if trace_kind(record) == "verl rollout":
        return _rollout_view(record)
    wrapped = record.get("gen_searcher")
    return record_view(_read(wrapped if isinstance(wrapped, dict) else record), answer=answer)


def parse_records(text: str) -> list[dict[str, Any]]:
    """Trace records from a file's text: one JSON object, a JSON list, or JSON lines."""
    try:
        data = json.loads(text)
    except ValueError:
        return _json_lines(text)
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list) and all(isinstance(row, dict) for row in data):
        return list(data)
    raise TraceFormatError("expected a JSON object, a list of objects or JSON lines")


def _json_lines(text: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise TraceFormatError(f"line {number} is not JSON ({exc})") from None
        if not isinstance(row, dict):
            raise TraceFormatError(f"line {number} is not a JSON object")
        rows.append(row)
    return rows


def views(records: Sequence[Mapping[str, Any]], *, answer: Mapping[str, Any] | None = None) -> list[TraceView]:
    return [trace_view(record, answer=answer) for record in records]
