"""``compare.html``: the same items of several runs side by side, sorted by how much the score changed.

It reads each run's ``gallery.json`` (written with its ``report.html``), so runs can be
compared without their data files. The difference is last run minus first run: with
``bench compare BASELINE SEARCH`` the top of the page is where search helped most and
the bottom where it hurt. Images are linked relative to the compare page's folder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmark.gallery import GALLERY_DATA, card_links, score_text, search_text
from gen_searcher_core.pages import page_environment, render_page, write_page

COMPARE_HTML = "compare.html"


def load_cards(run_dir: Path) -> list[dict[str, Any]] | None:
    """The cards of a run's ``gallery.json``, or None when the run has none (a report from before galleries)."""
    path = Path(run_dir) / GALLERY_DATA
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    cards = data.get("cards") if isinstance(data, dict) else None
    return [c for c in cards if isinstance(c, dict) and "id" in c] if isinstance(cards, list) else None


def _change(diff: float | None) -> str:
    if diff is None:
        return "unknown"
    if abs(diff) < 1e-9:
        return "same"
    return "better" if diff > 0 else "worse"


def compare_rows(
    runs: Sequence[tuple[str, Path, list[dict[str, Any]]]], kind: str, page_dir: Path
) -> list[dict[str, Any]]:
    """One row per item (the first run's, then those only later runs have) with every run's card,
    sorted by the score difference, gains first."""
    by_run = [{card["id"]: card for card in cards} for _, _, cards in runs]
    ids: list[str] = []
    seen: set[str] = set()
    for _, _, cards in runs:
        for entry in cards:
            if entry["id"] not in seen:
                seen.add(entry["id"])
                ids.append(entry["id"])
    rows = []
    for order, item_id in enumerate(ids):
        cells = []
        first: Mapping[str, Any] | None = None
        gt = None
        for (name, run_dir, _), run_cards in zip(runs, by_run, strict=True):
            card = run_cards.get(item_id)
            if card is None:
                cells.append({"name": name, "missing": True, "score": None, "status": "missing"})
                continue
            first = first or card
            links = card_links(card, run_dir, page_dir)
            gt = gt or links["gt"]
            cells.append(
                {**card, **links, "name": name, "missing": False, "score_text": score_text(card.get("score"), kind)}
            )
        assert first is not None
        start, end = cells[0].get("score"), cells[-1].get("score")
        diff = end - start if isinstance(start, (int, float)) and isinstance(end, (int, float)) else None
        rows.append(
            {
                "id": item_id,
                "order": order,
                "prompt": first.get("prompt", ""),
                "category": first.get("category", ""),
                "group": first.get("group") or "",
                "explanation": first.get("explanation"),
                "gt": gt,
                "cells": cells,
                "diff": diff,
                "diff_text": "-" if diff is None else _signed(diff, kind),
                "change": _change(diff),
                "failed": "yes" if any(c.get("status") == "failed" for c in cells) else "no",
                "search": search_text(first),
            }
        )
    # Written in the page's first sort order: gains first, rows without a difference last.
    rows.sort(key=lambda row: (row["diff"] is None, -(row["diff"] or 0.0), row["order"]))
    for order, row in enumerate(rows):
        row["order"] = order
    return rows


def _signed(diff: float, kind: str) -> str:
    if kind == "wise/verified":
        return {1.0: "fail → pass", -1.0: "pass → fail"}.get(round(diff), "same")
    return f"{diff:+.3f}" if kind == "wise/legacy" else f"{100 * diff:+.1f}"


RUN_META = (
    ("policy", "policy"),
    ("policy_model", "policy model"),
    ("judge_model", "judge model"),
    ("renderer", "renderer"),
    ("render_model", "render model"),
    ("seed", "seed"),
    ("started", "started"),
    ("duration_s", "duration (s)"),
    ("commit", "commit"),
)


def run_metadata_rows(summaries: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[Any]]]:
    """How each run was made, one row per setting that any run recorded."""
    runs = [summary.get("run") or {} for summary in summaries]
    return [(label, [run.get(key) for run in runs]) for key, label in RUN_META if any(run.get(key) for run in runs)]


def write_compare_page(
    run_dirs: Sequence[Path],
    names: Sequence[str],
    summaries: Sequence[Mapping[str, Any]],
    table: tuple[Sequence[str], Sequence[Sequence[Any]], int],
    kind: str,
    out: Path,
) -> Path:
    """Write ``compare.html`` into ``out``: the summary table, then the items side by side."""
    loaded = [(name, Path(d), load_cards(Path(d))) for name, d in zip(names, run_dirs, strict=True)]
    missing = [name for name, _, cards in loaded if cards is None]
    runs = [(name, d, cards) for name, d, cards in loaded if cards is not None]
    rows = compare_rows(runs, kind, out) if not missing else []
    header, table_rows, digits = table
    html = render_page(
        page_environment("benchmark"),
        "compare.html.j2",
        names=list(names),
        summaries=list(summaries),
        header=list(header),
        table_rows=[list(r) for r in table_rows],
        digits=digits,
        kind=kind,
        rows=rows,
        missing=missing,
        categories=sorted({r["category"] for r in rows if r["category"]}),
        groups=sorted({r["group"] for r in rows if r["group"]}),
        run_meta=run_metadata_rows(summaries),
        notice=" ".join(sorted({str(s["run"]["notice"]) for s in summaries if (s.get("run") or {}).get("notice")})),
        counts={k: sum(1 for r in rows if r["change"] == k) for k in ("better", "worse", "same", "unknown")},
    )
    return write_page(Path(out) / COMPARE_HTML, html)
