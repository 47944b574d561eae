"""Stage 9: the training files, validated by the project's own converters, a datasheet and a review page.

``sft.json`` is the published sharegpt format (``<image>`` placeholders, image paths);
``rl.json`` and ``dev.json`` the published RL format (``id``, ``prompt``, ``gt_image``).
Both go through :func:`verl_recipes.data.convert_sft` / :func:`~verl_recipes.data.convert_rl`,
which write the verl parquet files; a single row those converters refuse fails the stage.
Images are copied next to the files, so the export folder stands alone.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gen_searcher_core.errors import UserFacingError
from gen_searcher_core.pages import page_environment, relative_href, render_page, write_page
from synth.funnel import Outcome, funnel
from synth.journal import RunFolder
from verl_recipes.data import ConversionError, LengthLimit, SftTokenCounter, convert_rl, convert_sft


class ExportError(UserFacingError, RuntimeError):
    """The export produced rows the converters refuse (or none at all)."""


def sharegpt(record: dict[str, Any], image_paths: list[str], root: Path, out: Path) -> dict[str, Any]:
    """One trajectory in the published SFT format; its images are copied under ``out/images``."""
    messages: list[dict[str, str]] = []
    images: list[str] = []
    pending = iter(image_paths)
    for message in record["messages"]:
        content = message["content"]
        if isinstance(content, str):
            messages.append({"role": message["role"], "content": content})
            continue
        text: list[str] = []
        for part in content:
            if part.get("type") == "image":
                path = next(pending, "")
                if not path:
                    raise ExportError("a trajectory image was not saved with the run (re-run trajectories)")
                target = out / path
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(root / path, target)
                images.append(path)
                text.append("<image>")
            else:
                text.append(part.get("text", ""))
        messages.append({"role": message["role"], "content": "".join(text)})
    return {"messages": messages, "images": images}


def _rl_record(outcome: Outcome, root: Path, out: Path) -> dict[str, Any]:
    assert outcome.truth is not None
    relative = outcome.truth["data"]["path"]
    target = out / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root / relative, target)
    item = outcome.item
    record: dict[str, Any] = {"id": item.id, "prompt": item.prompt, "gt_image": relative, "category": item.category}
    record["spec"] = item.spec.model_dump()
    if outcome.calibration:
        record["calibration"] = {"mean": outcome.calibration["mean"], "std": outcome.calibration["std"]}
    return record


def _write_json(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")


def export(
    folder: RunFolder,
    outcomes: list[Outcome],
    out: Path,
    manifest: dict[str, Any],
    *,
    processor_from: Path | None = None,
    max_length: int = 32768,
) -> dict[str, Any]:
    """Write every file; returns ``{file: rows}``. Raises :class:`ExportError` on any refused row.

    With ``processor_from`` (the policy's processor folder) SFT rows are measured in its tokens, as
    ``data sft`` does; a row over ``max_length`` is refused like any other bad row.
    """
    limit = LengthLimit(SftTokenCounter(processor_from), max_length) if processor_from is not None else None
    out.mkdir(parents=True, exist_ok=True)
    root = folder.root
    sft = []
    for o in outcomes:
        if o.split != "sft" or o.chosen is None:
            continue
        row = next(r for r in o.rollouts if r["data"]["rollout"] == o.chosen)
        sft.append(sharegpt(row["data"]["record"], row["data"]["image_paths"], root, out))
    rl = [_rl_record(o, root, out) for o in outcomes if o.split == "rl"]
    dev = [_rl_record(o, root, out) for o in outcomes if o.split == "dev"]
    counts: dict[str, Any] = {}
    convert: Callable[[Path, Path], Any]
    for name, rows, convert in (
        ("sft", sft, lambda src, dst: convert_sft(src, out, dst, limit=limit)),
        ("rl", rl, lambda src, dst: convert_rl(src, out, dst, data_source="synth")),
        ("dev", dev, lambda src, dst: convert_rl(src, out, dst, data_source="synth-dev")),
    ):
        src, dst = out / f"{name}.json", out / f"{name}.parquet"
        _write_json(src, rows)
        dst.unlink(missing_ok=True)
        if not rows:
            counts[name] = 0
            continue
        try:
            report = convert(src, dst)
        except ConversionError as exc:
            raise ExportError(f"{name}.json: the converter kept no row: {exc}") from None
        if report.skipped:
            raise ExportError(f"{name}.json: the converter refused rows:\n{report.summary()}")
        counts[name] = report.kept
    write_datasheet(out / "datasheet.md", outcomes, manifest, counts)
    write_review(out / "review.html", folder, outcomes, out)
    return counts


def write_datasheet(path: Path, outcomes: list[Outcome], manifest: dict[str, Any], counts: dict[str, Any]) -> None:
    shape = funnel(outcomes)
    lines = ["# Datasheet", "", "Made by `gen-searcher synth`.", "", "## Funnel", ""]
    lines += ["| stage | in | kept | dropped | pending | drop reasons |", "|---|---:|---:|---:|---:|---|"]
    for stage, row in shape["stages"].items():
        reasons = "; ".join(f"{r} ({n})" for r, n in row["dropped"].items())
        dropped = sum(row["dropped"].values())
        lines.append(f"| {stage} | {row['in']} | {row['kept']} | {dropped} | {row['pending']} | {reasons} |")
    per: Counter[tuple[str, str]] = Counter((o.item.category, o.split) for o in outcomes if o.split)
    categories = sorted({c for c, _ in per})
    lines += ["", "## Rows per category", "", "| category | sft | rl | dev |", "|---|---:|---:|---:|"]
    lines += [f"| {c} | {per[(c, 'sft')]} | {per[(c, 'rl')]} | {per[(c, 'dev')]} |" for c in categories]
    lines += ["", "## Files", ""] + [f"- `{name}.json` / `{name}.parquet`: {n} rows" for name, n in counts.items()]
    lines += ["", "## Models", ""] + [f"- {k}: {v}" for k, v in manifest.get("models", {}).items()]
    lines += ["", "## Costs (all runs of this folder)", ""]
    lines += [f"- {k}: {v}" for k, v in manifest.get("costs", {}).items()]
    lines += [
        "",
        "## Settings (thresholds)",
        "",
        "```json",
        json.dumps(manifest.get("settings", {}), indent=1),
        "```",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def write_review(path: Path, folder: RunFolder, outcomes: list[Outcome], out: Path) -> None:
    """A static page to page through kept and dropped items with their images and reasons."""
    cards = []
    for order, o in enumerate(outcomes):
        truth = folder.root / o.truth["data"]["path"] if o.truth else None
        refs: list[str] = []
        chosen = next((r for r in o.rollouts if r["data"]["rollout"] == o.chosen), None)
        if chosen is not None:
            refs = [relative_href(folder.root / p, out) for p in chosen["data"]["summary"]["reference_paths"]]
        best = o.scores.get(o.chosen) if o.chosen is not None else None
        cards.append(
            {
                "order": order,
                "item": o.item,
                "status": o.split or ("pending" if o.pending else "dropped"),
                "stage": o.dropped_at or o.pending or o.stage,
                "reason": o.reason or (f"pending at {o.pending}" if o.pending else ""),
                "flags": o.flags,
                "truth": relative_href(truth, out) if truth and truth.is_file() else None,
                "refs": refs,
                "score": best["score"] if best else None,
                "gen_prompt": chosen["data"]["summary"]["gen_prompt"] if chosen else None,
                "problems": {i: p for i, p in o.problems.items() if p},
            }
        )
    env = page_environment("synth")
    write_page(path, render_page(env, "review.html.j2", title="Synthesised data: review", cards=cards))
