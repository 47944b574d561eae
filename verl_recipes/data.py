"""Converters from the published Gen-Searcher data to verl's parquet formats.

* SFT: sharegpt-style records ``{"messages": [{"role", "content"}, ...], "images": [path, ...]}``
  (``<image>`` placeholders in the text, tool responses as user turns) become rows of
  verl's ``MultiTurnSFTDataset``: ``messages`` (placeholders kept) and ``images``
  (``[{"bytes": …}]``, the files embedded so the parquet is self-contained).
* RL: records ``{"id", "prompt", "gt_image", …}`` become rows of verl's RL dataset:
  ``prompt`` (our system prompt + the request, as chat messages), ``data_source``,
  ``agent_name: gen_searcher``, ``reward_model.ground_truth`` (the ground-truth image's
  absolute path) and ``extra_info`` (id, prompt, index and the record's other fields).

Every record is checked; a bad one is skipped and counted with its reason, and the
report says how many and why. Nothing bad is kept silently.

SFT rows are also measured, given the policy's processor (:class:`SftTokenCounter`): the
tokens verl's ``MultiTurnSFTDataset`` will build, images included. A row over ``max_length``
would otherwise be cut by verl's ``truncation: right`` wherever the limit falls, and a cut
past an image leaves image features without their tokens, which stops the whole run. Such a
row is dropped (counted as a bad row) or, with ``over_length="split"``, shortened to its
longest run of whole turns that fits and ends with an assistant turn (counted as shortened).
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gen_searcher_core.errors import UserFacingError

AGENT_NAME = "gen_searcher"
_IMAGE = "<image>"
_ROLES = frozenset({"system", "user", "assistant"})


class ConversionError(UserFacingError, ValueError):
    """The input cannot be converted at all (unreadable file, no good rows)."""


class BadRow(UserFacingError, ValueError):
    """One record is unusable; ``str(error)`` is the reason (short and stable, for counting)."""


@dataclass
class ConversionReport:
    total: int = 0
    kept: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    examples: list[tuple[int, str]] = field(default_factory=list)  # (row index, detail), first few per reason

    @property
    def skipped(self) -> int:
        return self.total - self.kept

    def skip(self, index: int, reason: str, detail: str) -> None:
        if self.reasons[reason] < 3:
            self.examples.append((index, detail))
        self.reasons[reason] += 1

    shortened: int = 0  # kept, cut to their last assistant turn within max_length

    def summary(self) -> str:
        lines = [f"{self.kept} of {self.total} rows kept, {self.skipped} skipped"]
        if self.shortened:
            lines.append(f"  {self.shortened:>6}  kept, cut to the last assistant turn within max_length")
        for reason, count in self.reasons.most_common():
            lines.append(f"  {count:>6}  {reason}")
        for index, detail in self.examples:
            lines.append(f"  row {index}: {detail}")
        return "\n".join(lines)


def read_records(path: str | Path) -> list[Any]:
    """A JSON array, a JSON object holding one array, or JSON Lines."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConversionError(f"cannot read {source}: {exc.strerror or exc}") from None
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConversionError(f"{source} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
        return list(data)
    if stripped.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            arrays = [v for v in data.values() if isinstance(v, list)]
            if len(arrays) == 1:
                return arrays[0]
            if "messages" in data or "prompt" in data:
                return [data]
    return [_json_line(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]


def _json_line(number: int, line: str) -> Any:
    """One JSON Lines record; a line that is not JSON becomes a :class:`BadRow` (skipped and reported, not fatal)."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        return BadRow(f"line {number} is not JSON ({exc.msg})")


def _resolve_image(ref: Any, images_root: Path) -> Path:
    if isinstance(ref, Mapping):
        ref = ref.get("path") or ref.get("image") or ref.get("url")
    if not isinstance(ref, str) or not ref.strip():
        raise BadRow("image reference is not a path")
    ref = ref.strip()
    if ref.startswith("file://"):
        ref = ref[len("file://") :]
    path = Path(ref)
    if not path.is_absolute():
        path = images_root / path
    return path


def _image_bytes(path: Path) -> bytes:
    from PIL import Image, UnidentifiedImageError

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadRow("image file missing") from None
    except OSError:
        raise BadRow("image file unreadable") from None
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise BadRow("image file is not an image") from None
    return data


# ---------------------------------------------------------------- SFT


def sft_row(
    record: Any, images_root: Path, *, system_prompt: str | None, require_answer: bool = True
) -> dict[str, Any]:
    """One SFT record as a verl ``MultiTurnSFTDataset`` row; raises :class:`BadRow`."""
    if isinstance(record, BadRow):
        raise BadRow("not JSON")
    if not isinstance(record, Mapping):
        raise BadRow("record is not an object")
    messages = record.get("messages", record.get("conversations"))
    if not isinstance(messages, list) or not messages:
        raise BadRow("no messages")
    out: list[dict[str, str]] = []
    for message in messages:
        if not isinstance(message, Mapping):
            raise BadRow("message is not an object")
        role = message.get("role", message.get("from"))
        content = message.get("content", message.get("value"))
        role = {"human": "user", "gpt": "assistant"}.get(role, role)
        if role not in _ROLES:
            raise BadRow(f"unknown role {str(role)[:20]!r}")
        if not isinstance(content, str):
            raise BadRow("message content is not text")
        out.append({"role": role, "content": content})
    if not any(m["role"] == "assistant" for m in out):
        raise BadRow("no assistant turn")
    if out[-1]["role"] != "assistant":
        raise BadRow("does not end with an assistant turn")
    if any(m["role"] == "system" for m in out[1:]):
        raise BadRow("system message after the first turn")
    if any(not m["content"].strip() for m in out if m["role"] == "assistant"):
        raise BadRow("empty assistant turn")
    if require_answer and not re.search(r"<answer>.*?</answer>", out[-1]["content"], re.DOTALL):
        raise BadRow("final turn has no <answer>")
    if system_prompt is not None:
        if out[0]["role"] == "system":
            out[0] = {"role": "system", "content": system_prompt}
        else:
            out.insert(0, {"role": "system", "content": system_prompt})
    refs = record.get("images") or []
    if not isinstance(refs, list):
        raise BadRow("images is not a list")
    placeholders = sum(m["content"].count(_IMAGE) for m in out)
    if placeholders != len(refs):
        raise BadRow("<image> count differs from images")
    if any(_IMAGE in m["content"] for m in out if m["role"] == "assistant"):
        raise BadRow("<image> in an assistant turn")
    images = [{"bytes": _image_bytes(_resolve_image(ref, images_root))} for ref in refs]
    return {"messages": out, "images": images}


class SftTokenCounter:
    """A row's tokens as verl's ``MultiTurnSFTDataset`` builds them: each message through the chat template
    alone (images processed as verl processes them), less the default system prompt the template adds."""

    def __init__(self, processor_from: str | Path) -> None:
        from verl.utils.tokenizer import hf_processor, hf_tokenizer
        from verl.utils.tokenizer.chat_template import extract_system_prompt_and_generation

        self.tokenizer = hf_tokenizer(str(processor_from))
        self.processor = hf_processor(str(processor_from))
        if self.processor is None:
            raise ConversionError(f"{processor_from} holds no image processor (the policy's processor folder)")
        system_prompt, _ = extract_system_prompt_and_generation(self.tokenizer)
        self.system_tokens = len(system_prompt)
        self.patch_size = self.processor.image_processor.patch_size

    def per_message(self, messages: list[dict[str, str]], images: list[dict[str, bytes]]) -> list[int]:
        """Tokens of each message, in order (a conversation's prefix costs the sum of its messages)."""
        from verl.utils.dataset.vision_utils import process_image
        from verl.utils.tokenizer.chat_template import apply_chat_template

        counts, offset = [], 0
        for index, message in enumerate(messages):
            parts: list[dict[str, Any]] = []
            for segment in re.split(f"({re.escape(_IMAGE)})", message["content"]):
                if segment == _IMAGE:
                    image = process_image(
                        dict(images[offset]), image_patch_size=self.patch_size
                    )  # it writes into the dict
                    parts.append({"type": "image", "image": image})
                    offset += 1
                elif segment:
                    parts.append({"type": "text", "text": segment})
            inputs: Any = apply_chat_template(
                self.processor,
                messages=[{"role": message["role"], "content": parts}],
                add_generation_prompt=False,
                tokenize=True,
                return_dict=True,
                return_tensors="pt",
            )
            count = int(inputs["input_ids"].shape[-1])
            if index != 0 and message["role"] != "system":
                count -= self.system_tokens
            counts.append(count)
        return counts


@dataclass(frozen=True)
class LengthLimit:
    """``data sft``'s cutoff: rows over ``max_length`` tokens are dropped, or split to the turns that fit."""

    counter: SftTokenCounter
    max_length: int
    over_length: Literal["drop", "split"] = "drop"

    def fit(self, row: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """``row`` if it fits, else its longest whole-turn prefix ending with an assistant turn (``split``);
        the flag says whether it was shortened. Raises :class:`BadRow` when nothing fits."""
        messages, images = row["messages"], row["images"]
        counts = self.counter.per_message(messages, images)
        total = sum(counts)
        if total <= self.max_length:
            return row, False
        reason = f"longer than max_length ({self.max_length} tokens)"
        if self.over_length == "drop":
            raise BadRow(reason)
        for end in range(len(messages) - 1, 0, -1):
            if messages[end - 1]["role"] == "assistant" and sum(counts[:end]) <= self.max_length:
                kept = messages[:end]
                used = sum(m["content"].count(_IMAGE) for m in kept)
                return {"messages": kept, "images": images[:used]}, True
        raise BadRow(reason + ", even its first assistant turn")


# ---------------------------------------------------------------- RL


def rl_row(
    record: Any,
    images_root: Path,
    *,
    index: int,
    system_prompt: str,
    data_source: str,
    seen_ids: set[str],
) -> dict[str, Any]:
    """One RL record as a verl RL-dataset row; raises :class:`BadRow`."""
    if isinstance(record, BadRow):
        raise BadRow("not JSON")
    if not isinstance(record, Mapping):
        raise BadRow("record is not an object")
    raw_id = record.get("id")
    if (
        raw_id is None
        or (isinstance(raw_id, str) and not raw_id.strip())
        or isinstance(raw_id, bool | float | list | dict)
    ):
        raise BadRow("missing id")
    item_id = str(raw_id).strip()
    if item_id in seen_ids:
        raise BadRow("duplicate id")
    prompt = record.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadRow("missing prompt")
    if "gt_image" not in record or record["gt_image"] in (None, ""):
        raise BadRow("missing gt_image")
    gt_path = _resolve_image(record["gt_image"], images_root).resolve()
    _image_bytes(gt_path)
    seen_ids.add(item_id)
    extra = {k: v for k, v in record.items() if k not in {"id", "prompt", "gt_image"}}
    extra_info: dict[str, Any] = {
        "id": item_id,
        "index": index,
        "prompt": prompt.strip(),
        "gt_image": str(gt_path),
        "meta": json.dumps(extra, ensure_ascii=False, sort_keys=True) if extra else "",
    }
    return {
        "data_source": data_source,
        "agent_name": AGENT_NAME,
        "prompt": [
            {"role": "system", "content": system_prompt},
            {"role": "user", "content": prompt.strip()},
        ],
        "ability": "search_grounded_image_generation",
        "reward_model": {"style": "judge", "ground_truth": str(gt_path)},
        "extra_info": extra_info,
    }


# ---------------------------------------------------------------- drivers


def _schema(kind: Literal["sft", "rl"]) -> Any:
    """The parquet schema of each kind (explicit, so every written chunk agrees, empty lists included)."""
    import pyarrow as pa

    messages = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    if kind == "sft":
        return pa.schema([("messages", messages), ("images", pa.list_(pa.struct([("bytes", pa.binary())])))])
    return pa.schema(
        [
            ("data_source", pa.string()),
            ("agent_name", pa.string()),
            ("prompt", messages),
            ("ability", pa.string()),
            ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
            (
                "extra_info",
                pa.struct(
                    [
                        ("id", pa.string()),
                        ("index", pa.int64()),
                        ("prompt", pa.string()),
                        ("gt_image", pa.string()),
                        ("meta", pa.string()),
                    ]
                ),
            ),
        ]
    )


def _convert(
    records: Iterable[Any],
    make: Any,
    out: Path,
    kind: Literal["sft", "rl"],
    chunk_rows: int = 256,
    report: ConversionReport | None = None,
) -> ConversionReport:
    """Convert and write in chunks (SFT rows embed their images; the whole set need not fit in memory).

    The parquet is written to a temporary file and renamed into place only when at least one row was kept.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    report = report or ConversionReport()
    schema = _schema(kind)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    rows: list[dict[str, Any]] = []
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            for index, record in enumerate(records):
                report.total += 1
                try:
                    rows.append(make(index, record))
                except BadRow as exc:
                    detail = str(exc)
                    if isinstance(record, Mapping) and record.get("id") is not None:
                        detail += f" (id {str(record['id'])[:60]})"
                    report.skip(index, str(exc), detail)
                    continue
                report.kept += 1
                if len(rows) >= chunk_rows:
                    writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                    rows.clear()
            if rows:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
        if not report.kept:
            raise ConversionError("no usable rows:\n" + report.summary())
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return report


def convert_sft(
    src: str | Path,
    images_root: str | Path,
    out: str | Path,
    *,
    system_prompt: Literal["ours", "keep"] | str = "ours",
    require_answer: bool = True,
    chunk_rows: int = 256,
    limit: LengthLimit | None = None,
) -> ConversionReport:
    """Published SFT trajectories -> verl multi-turn SFT parquet.

    ``system_prompt``: ``"ours"`` puts the policy's system prompt (what inference uses) in
    every conversation, ``"keep"`` keeps the record's own, any other text is used as is.
    ``limit``: measure each row with the policy's processor and drop or split rows over the cutoff.
    """
    from policy.prompts import build_system_prompt

    prompt = {"ours": build_system_prompt(), "keep": None}.get(system_prompt, system_prompt)
    root = Path(images_root)
    records = read_records(src)
    report = ConversionReport()

    def make(index: int, record: Any) -> dict[str, Any]:
        row = sft_row(record, root, system_prompt=prompt, require_answer=require_answer)
        if limit is None:
            return row
        row, shortened = limit.fit(row)
        report.shortened += shortened
        return row

    return _convert(records, make, Path(out), "sft", chunk_rows, report)


def convert_rl(
    src: str | Path,
    images_root: str | Path,
    out: str | Path,
    *,
    data_source: str = "knowgen",
    system_prompt: str | None = None,
    chunk_rows: int = 256,
) -> ConversionReport:
    """Published RL prompts -> verl RL parquet for the ``gen_searcher`` agent loop."""
    from policy.prompts import build_system_prompt

    prompt = build_system_prompt(system_prompt)
    root = Path(images_root)
    seen: set[str] = set()
    records = read_records(src)
    return _convert(
        records,
        lambda i, r: rl_row(r, root, index=i, system_prompt=prompt, data_source=data_source, seen_ids=seen),
        Path(out),
        "rl",
        chunk_rows,
    )
