"""Benchmark items: KnowGen data files, WISE prompt folders and published results files.

Every loader validates all rows first and raises :class:`DatasetError` naming
the bad rows, so a run never starts on half-understood data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.rubrics.kscore import UnknownCategoryError, category_group
from benchmark.rubrics.wise import wise_category
from gen_searcher_core.errors import UserFacingError


class DatasetError(UserFacingError, ValueError):
    pass


@dataclass(frozen=True)
class Item:
    """One benchmark prompt."""

    id: str
    prompt: str
    category: str
    group: str | None = None
    gt_image: Path | None = None  # KnowGen only
    explanation: str | None = None  # WISE only
    subcategory: str | None = None
    difficulty: str | None = None
    output_path: Path | None = None  # `bench score`: the image the other system produced
    success: bool | None = None  # `bench score`: did the other system produce it
    meta: dict[str, Any] = field(default_factory=dict)


def _read_json_rows(path: Path) -> list[Any]:
    if not path.is_file():
        raise DatasetError(f"data file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}: line {n} is not JSON ({exc.msg})") from None
        return rows
    if isinstance(data, dict):
        for key in ("items", "data", "results"):
            listed = data.get(key)
            if isinstance(listed, list):
                return listed
        raise DatasetError(f"{path}: expected a JSON list of items (or an object with an 'items' list)")
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a JSON list of items")
    return data


def _raise_if_bad(path: Path, problems: list[str]) -> None:
    if problems:
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise DatasetError(f"{path}: {len(problems)} bad row(s): {shown}{more}")


def _check_unique(path: Path, items: Iterable[Item]) -> None:
    seen: set[str] = set()
    dupes = sorted({i.id for i in items if i.id in seen or seen.add(i.id)})  # type: ignore[func-returns-value]
    if dupes:
        raise DatasetError(f"{path}: duplicate ids: {', '.join(dupes[:10])}")


def _resolve(root: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else root / p


def _knowgen_row(row: Any, images_root: Path, n: int, *, results: bool) -> Item:
    if not isinstance(row, dict):
        raise ValueError("not an object")
    raw_id = row.get("id", row.get("prompt_id"))
    if raw_id is None or str(raw_id).strip() == "":
        raise ValueError("no id")
    prompt = row.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("no prompt")
    meta = row.get("meta")
    if not isinstance(meta, dict):
        meta = {}
    category = meta.get("category", row.get("category"))
    if not isinstance(category, str) or not category:
        raise ValueError("no category (meta.category)")
    try:
        group = category_group(category)
    except UnknownCategoryError as exc:
        raise ValueError(str(exc)) from None
    gt = row.get("gt_image")
    if not isinstance(gt, str) or not gt:
        raise ValueError("no gt_image")
    difficulty = meta.get("difficulty", row.get("difficulty"))
    output_path = None
    success = None
    if results:
        success = row.get("success")
        if not isinstance(success, bool):
            raise ValueError("success must be true or false")
        out = row.get("output_path")
        if success and (not isinstance(out, str) or not out):
            raise ValueError("success is true but output_path is empty")
        output_path = _resolve(images_root, out) if isinstance(out, str) and out else None
    return Item(
        id=str(raw_id),
        prompt=prompt,
        category=category,
        group=group,
        gt_image=_resolve(images_root, gt),
        difficulty=None if difficulty is None else str(difficulty),
        output_path=output_path,
        success=success,
        meta=dict(meta),
    )


def load_knowgen(path: Path, images_root: Path | None = None) -> list[Item]:
    """KnowGen items from a JSON list (or JSON lines) of ``{id, prompt, meta{category, difficulty}, gt_image}``.

    ``gt_image`` paths are relative to ``images_root`` (default: the file's folder).
    """
    path = Path(path)
    root = Path(images_root) if images_root else path.parent
    items, problems = [], []
    for n, row in enumerate(_read_json_rows(path), 1):
        try:
            items.append(_knowgen_row(row, root, n, results=False))
        except ValueError as exc:
            problems.append(f"row {n}: {exc}")
    _raise_if_bad(path, problems)
    _check_unique(path, items)
    return items


def load_results(path: Path, images_root: Path | None = None, outputs_root: Path | None = None) -> list[Item]:
    """Items of a published-format results file (``id, success, prompt, meta, output_path, gt_image``).

    ``gt_image`` is relative to ``images_root`` and ``output_path`` to ``outputs_root``
    (both default to the results file's folder).
    """
    path = Path(path)
    gt_root = Path(images_root) if images_root else path.parent
    out_root = Path(outputs_root) if outputs_root else path.parent
    items, problems = [], []
    for n, row in enumerate(_read_json_rows(path), 1):
        try:
            item = _knowgen_row(row, gt_root, n, results=True)
            if item.output_path is not None and not Path(row["output_path"]).is_absolute():
                item = Item(**{**item.__dict__, "output_path": out_root / row["output_path"]})
            items.append(item)
        except ValueError as exc:
            problems.append(f"row {n}: {exc}")
    _raise_if_bad(path, problems)
    _check_unique(path, items)
    return items


WISE_DIR_ENV = "GEN_SEARCHER_WISE_DIR"
WISE_PROTOCOLS = ("legacy", "verified")


def wise_data_path(data: Path | None, protocol: str, default_dir: Path | None = None) -> Path:
    """Where the WISE prompts of ``protocol`` are: ``data``, or ``default_dir`` (the settings' ``wise_dir``,
    i.e. ``$GEN_SEARCHER_WISE_DIR``).

    Either may be the folder of json files itself or the folder holding ``legacy/``
    and ``verified/``; a folder named after the other protocol is refused.
    """
    data = data if data is not None else default_dir
    if data is None:
        raise DatasetError(
            f"no WISE data: pass --data (the folder of WISE json files, e.g. data/wise/{protocol}) "
            f"or set {WISE_DIR_ENV} to the folder holding legacy/ and verified/"
        )
    data = Path(data)
    if data.is_dir() and not any(data.glob("*.json")) and (data / protocol).is_dir():
        data = data / protocol
    other = next(p for p in WISE_PROTOCOLS if p != protocol)
    if data.name == other:
        raise DatasetError(f"{data} holds the {other} prompts but --protocol is {protocol}")
    return data


def missing_ground_truth(items: Sequence[Item]) -> list[Item]:
    """The items whose ``gt_image`` file does not exist (blocking: call before the run starts)."""
    return [item for item in items if item.gt_image is not None and not item.gt_image.is_file()]


def load_wise(folder: Path) -> list[Item]:
    """WISE items from every ``*.json`` in ``folder`` (``Prompt, Explanation, Category, Subcategory, prompt_id``)."""
    folder = Path(folder)
    files = sorted(folder.glob("*.json")) if folder.is_dir() else [folder]
    if not files or not files[0].exists():
        raise DatasetError(f"no WISE json files in {folder}")
    items: list[Item] = []
    for file in files:
        problems = []
        for n, row in enumerate(_read_json_rows(file), 1):
            try:
                if not isinstance(row, dict):
                    raise ValueError("not an object")
                prompt, explanation = row.get("Prompt"), row.get("Explanation")
                if not isinstance(prompt, str) or not prompt.strip():
                    raise ValueError("no Prompt")
                if not isinstance(explanation, str) or not explanation.strip():
                    raise ValueError("no Explanation")
                if row.get("prompt_id") is None:
                    raise ValueError("no prompt_id")
                category = wise_category(str(row.get("Category", "")))
                items.append(
                    Item(
                        id=str(row["prompt_id"]),
                        prompt=prompt,
                        category=category,
                        explanation=explanation,
                        subcategory=row.get("Subcategory"),
                    )
                )
            except ValueError as exc:
                problems.append(f"row {n}: {exc}")
        _raise_if_bad(file, problems)
    _check_unique(folder, items)
    return sorted(items, key=lambda i: (int(i.id) if i.id.isdigit() else 10**9, i.id))
