"""A prompt item of the pipeline, its knowledge spec, and content digests.

An item's digest covers what the stages read (prompt, category, spec), so an
edited prompt is a new item for every stage, and an unchanged one keeps its
journal lines across runs.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from gen_searcher_core.errors import UserFacingError


class PromptFileError(UserFacingError, ValueError):
    """The prompt file cannot be used; the message names the file and line."""


def digest(value: Any, size: int = 16) -> str:
    """A short stable hex digest of a JSON-serialisable value (sorted keys)."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:size]


class Spec(BaseModel):
    """What the image must show: facts, subjects that need a reference, and exact text to render."""

    facts: list[str] = Field(default_factory=list)
    subjects: list[str] = Field(default_factory=list)
    text: list[str] = Field(default_factory=list)

    def lines(self) -> str:
        out = [f"- fact: {f}" for f in self.facts] + [f"- subject needing a reference: {s}" for s in self.subjects]
        out += [f"- exact text to render: {t!r}" for t in self.text]
        return "\n".join(out) or "- (no spec given)"


class Item(BaseModel):
    """One prompt and its knowledge spec."""

    id: str
    prompt: str
    category: str
    spec: Spec = Field(default_factory=Spec)
    source: str = "user"

    @field_validator("prompt", "category", "id")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @property
    def digest(self) -> str:
        return digest({"prompt": self.prompt, "category": self.category, "spec": self.spec.model_dump()})

    @property
    def entity(self) -> str:
        """The primary entity: the first subject, else the prompt's leading capitalised phrase, else the prompt."""
        if self.spec.subjects:
            return normalise(self.spec.subjects[0])
        found = re.search(r"(?:[A-Z][\w'-]+)(?:\s+(?:of\s+|the\s+)?[A-Z][\w'-]+)*", self.prompt)
        return normalise(found.group(0) if found else self.prompt)


def normalise(text: str) -> str:
    """Lower case, punctuation to spaces, single spaces: the form duplicate checks compare."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def item_from_record(record: Any, *, source: str = "user") -> Item:
    """One prompt record (``prompt``, ``category``, optional ``id``, ``subjects``, ``facts``, ``text``)."""
    if not isinstance(record, dict):
        raise ValueError("a prompt record must be a JSON object")
    spec = Spec(
        facts=_strings(record.get("facts")),
        subjects=_strings(record.get("subjects")),
        text=_strings(record.get("text")),
    )
    prompt, category = record.get("prompt"), record.get("category")
    if not isinstance(prompt, str) or not isinstance(category, str):
        raise ValueError("needs text fields 'prompt' and 'category'")
    raw_id = record.get("id")
    base = Item(id="x", prompt=prompt, category=category, spec=spec, source=source)
    item_id = str(raw_id).strip() if raw_id not in (None, "") else f"p-{base.digest[:12]}"
    return base.model_copy(update={"id": item_id})


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v for v in value if v.strip()]
    raise ValueError("subjects, facts and text must be strings or lists of strings")


def read_prompt_file(path: Path) -> list[Item]:
    """Items from a JSONL (or JSON array) file; the first bad line ends it with a one-line error."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptFileError(f"cannot read prompt file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if text.lstrip().startswith("["):
        try:
            records: Iterable[tuple[int, Any]] = enumerate(json.loads(text), 1)
        except json.JSONDecodeError as exc:
            raise PromptFileError(f"{path} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    else:
        records = _json_lines(path, text)
    items: list[Item] = []
    seen: dict[str, str] = {}
    for number, record in records:
        try:
            item = item_from_record(record)
        except (ValueError, ValidationError) as exc:
            detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise PromptFileError(f"{path} record {number}: {detail}") from None
        if seen.get(item.id, item.digest) != item.digest:
            raise PromptFileError(f"{path} record {number}: id {item.id!r} is used by two different prompts")
        if item.id not in seen:
            seen[item.id] = item.digest
            items.append(item)
    if not items:
        raise PromptFileError(f"{path} holds no prompts")
    return items


def _json_lines(path: Path, text: str) -> Iterable[tuple[int, Any]]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise PromptFileError(f"{path} line {number} is not JSON ({exc.msg})") from None
