"""Stage 1: prompts from the user's JSONL files and/or written by the teacher from a category list.

Each teacher call writes one category's quota as a JSON object; the call is journaled
(keyed by category, quota and model), so a rerun reuses what was written. A reply that
is not the asked-for JSON is journaled as dropped with its reason, not retried.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmark.judge import parse_json_object
from benchmark.rubrics.kscore import GROUPS
from policy.chat import ChatModelError
from synth.items import Item, digest, item_from_record, read_prompt_file
from synth.journal import DROPPED, KEPT, StageJournal
from synth.services import ChatService

#: KnowGen's categories, the default list the teacher writes for.
KNOWGEN_CATEGORIES: tuple[str, ...] = tuple(c for group in GROUPS.values() for c in group)

WRITE_PROMPT = """Write {n} distinct requests for an image generator in the category "{category}". Each must \
need knowledge a generator lacks: a real, specific, recent or niche subject (a person, place, object, event, \
character) whose correct look or text must be looked up. For each, give the facts the image must show, the \
subjects that need a reference photo, and any exact text to render. Answer with one JSON object and nothing \
else: {{"prompts": [{{"prompt": "...", "subjects": ["..."], "facts": ["..."], "text": ["..."]}}]}}"""


def user_prompts(files: list[Path]) -> list[Item]:
    items: list[Item] = []
    seen: set[str] = set()
    for path in files:
        for item in read_prompt_file(path):
            if item.id in seen:
                item = item.model_copy(update={"id": f"{item.id}-{item.digest[:6]}"})
            seen.add(item.id)
            items.append(item)
    return items


def _parse(reply: str, category: str) -> list[Item]:
    data: Any = parse_json_object(reply)
    records = data.get("prompts")
    if not isinstance(records, list) or not records:
        raise ValueError("no 'prompts' list")
    return [item_from_record({**r, "category": category}, source="teacher") for r in records if isinstance(r, dict)]


async def written_prompts(
    teacher: ChatService, categories: list[str], per_category: int, journal: StageJournal
) -> tuple[list[Item], list[str]]:
    """Teacher-written items for every category (journaled per category) and the problems met."""
    items: list[Item] = []
    problems: list[str] = []
    for category in categories:
        inputs = digest(["write/1", teacher.model, per_category])
        row = journal.get(digest(category), inputs)
        if row is None:
            text = WRITE_PROMPT.format(n=per_category, category=category)
            try:
                reply = await teacher.chat_for(None).chat([{"role": "user", "content": text}])
            except ChatModelError as exc:
                problems.append(f"teacher could not write prompts for {category!r}: {exc}")
                continue
            try:
                records = [i.model_dump(mode="json") for i in _parse(reply.text, category)][:per_category]
                row = await journal.record(digest(category), inputs, category, KEPT, None, items=records)
            except (ValueError, TypeError) as exc:
                row = await journal.record(
                    digest(category),
                    inputs,
                    category,
                    DROPPED,
                    f"teacher answered garbage: {exc}",
                    raw=reply.text[:500],
                )
        if row["status"] == KEPT:
            items.extend(Item.model_validate(r) for r in row["data"]["items"])
        else:
            problems.append(f"{category}: {row['reason']}")
    return items, problems


def write_items(path: Path, items: list[Item]) -> None:
    """The run's prompt list (what ``status``/``export`` read back), written atomically."""
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text("".join(json.dumps(i.model_dump(mode="json"), ensure_ascii=False) + "\n" for i in items), "utf-8")
    tmp.replace(path)


def read_items(path: Path) -> list[Item]:
    if not path.is_file():
        return []
    return [Item.model_validate_json(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
