"""The benchmark gallery: ``report.html`` (tables, charts, one card per item) and ``gallery.json``.

One card per item: the prompt and category, the generated image beside the ground
truth, the references the policy chose, each judged dimension and the judge's
reason, and failures shown as failures. Cards can be sorted by score, filtered by
group, category and status, and searched. The page stays light with hundreds of
items: images appear as small JPEG thumbnails written into ``RUN/thumbs/`` (made once,
reused while the image is unchanged), load lazily, and link to the full images.

``gallery.json`` holds the cards' data (paths relative to the run folder) so that
``bench compare`` can put two runs' items side by side without the data files.
A benchmark run's episode traces (``RUN/traces/<id>.json``) get their own pages,
linked from the cards.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

from benchmark.datasets import Item
from benchmark.generate import safe_name
from benchmark.journal import read_rows
from benchmark.resumable_run import GENERATIONS, JUDGEMENTS
from gen_searcher_core.pages import page_environment, relative_href, render_page, write_page
from gen_searcher_core.thumbnails import make_thumbnail

log = logging.getLogger(__name__)

GALLERY_DATA = "gallery.json"
REPORT_HTML = "report.html"
THUMBS = "thumbs"
TRACES = "traces"
RUN_CONFIG = "run.json"

_KSCORE_DIMS = (
    ("faithfulness", "faithfulness"),
    ("visual_correctness", "visual correctness"),
    ("text_accuracy", "text accuracy"),
    ("aesthetics", "aesthetics"),
)
_WISE_LEGACY_DIMS = (("consistency", "consistency"), ("realism", "realism"), ("aesthetic_quality", "aesthetics"))


def _rows(path: Path) -> dict[str, dict[str, Any]]:
    """A journal's rows by id (the later row wins), read without touching the file."""
    return {str(row["id"]): row for row in read_rows(path) if isinstance(row, dict) and "id" in row}


def _path_in_run(path: Path, run_dir: Path) -> str:
    """``path`` relative to the run folder when inside it (POSIX), else absolute."""
    try:
        return path.resolve().relative_to(run_dir.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def score_text(score: float | None, kind: str) -> str:
    """A per-item score as the benchmark reports it (K-Score 0-100, WiScore 0-1, pass/fail)."""
    if score is None:
        return "-"
    if kind == "wise/verified":
        return "pass" if score >= 1 else "fail"
    if kind == "wise/legacy":
        return f"{score:.3f}"
    return f"{100 * score:.1f}"


def benchmark_kind(summary: Mapping[str, Any]) -> str:
    """``knowgen`` (KnowGen runs and scored results files), ``wise/legacy`` or ``wise/verified``."""
    return f"wise/{summary.get('protocol')}" if summary.get("benchmark") == "wise" else "knowgen"


def _dimensions(judgement: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    if kind == "wise/verified":
        passed = bool(judgement.get("passed"))
        return [{"label": "passed", "value": 1.0 if passed else 0.0, "max": 1.0, "text": "yes" if passed else "no"}]
    dims = _WISE_LEGACY_DIMS if kind == "wise/legacy" else _KSCORE_DIMS
    top = 2.0 if kind == "wise/legacy" else 1.0
    out = []
    for key, label in dims:
        value = judgement.get(key)
        if key == "text_accuracy" and judgement.get("text_accuracy_na"):
            out.append({"label": label, "value": 0.5, "max": top, "text": "not needed (0.5)"})
            continue
        number = float(value) if isinstance(value, (int, float)) else None
        out.append({"label": label, "value": number, "max": top, "text": "-" if number is None else f"{number:g}"})
    return out


def _card(
    order: int, item: Item, gen: Mapping[str, Any] | None, judged: Mapping[str, Any] | None, kind: str
) -> dict[str, Any]:
    card: dict[str, Any] = {
        "id": item.id,
        "order": order,
        "prompt": item.prompt,
        "category": item.category,
        "group": item.group,
        "difficulty": item.difficulty,
        "explanation": item.explanation,
        "status": "pending",
        "stage": None,
        "error": None,
        "score": None,
        "dims": [],
        "rationale": "",
        "gen_prompt": None,
        "references": [],
        "image": None,
        "gt": None,
        "trace": None,
    }
    if gen is None:
        return card
    if not gen.get("ok"):
        card.update(status="failed", stage="generate", error=str(gen.get("error") or "generation failed"), score=0.0)
        return card
    card["gen_prompt"] = gen.get("gen_prompt")
    card["references"] = [
        {k: ref.get(k) for k in ("img_id", "note", "title", "page_url")}
        for ref in gen.get("references") or []
        if isinstance(ref, dict)
    ]
    card["elapsed_s"] = gen.get("elapsed_s")
    raw_detail = gen.get("detail")
    detail: Mapping[str, Any] = raw_detail if isinstance(raw_detail, dict) else {}
    for key in ("model_calls", "tool_calls", "format_errors", "episode_s", "tokens"):
        card[key] = detail.get(key)
    card["seed"] = gen.get("seed")
    if judged is None:
        return card
    if not judged.get("ok"):
        failed = judged.get("failure") == "missing_image"
        card.update(
            status="failed" if failed else "unjudged",
            stage="generate" if failed else "judge",
            error=str(judged.get("error") or "not judged"),
            score=0.0 if failed else None,
        )
        return card
    judgement = judged.get("judgement") or {}
    score = judged.get("score")
    card.update(
        status="scored",
        score=float(score) if isinstance(score, (int, float)) else None,
        dims=_dimensions(judgement, kind),
        rationale=str(judgement.get("rationale") or ""),
    )
    return card


def _thumbnail(source: Path, run_dir: Path, folder: str, name: str) -> dict[str, str] | None:
    """``{"thumb", "full"}`` (run-relative or absolute paths), or None when the image cannot be read."""
    dest = run_dir / THUMBS / folder / f"{name}.jpg"
    if not make_thumbnail(source, dest):
        return None
    return {"thumb": _path_in_run(dest, run_dir), "full": _path_in_run(source, run_dir)}


def _trace_page(run_dir: Path, name: str, card: dict[str, Any], run: Mapping[str, Any]) -> str | None:
    """The page of the item's episode trace: the judge's verdict, the generated and ground-truth pictures and a
    link back to the item's card open it, then the episode (its render shown from the run folder)."""
    source = run_dir / TRACES / f"{name}.json"
    if not source.is_file():
        return None
    page = source.with_suffix(".html")
    from policy.trace_html import write_trace_html

    answer = {"render": {"file": card["image"]["full"]}} if card.get("image") else None
    try:
        trace = json.loads(source.read_text(encoding="utf-8"))
        if card.get("tokens") is None:
            card["tokens"] = trace_tokens(trace)
        code = Path(write_trace_html.__code__.co_filename)  # a newer gen-searcher writes its pages anew
        inputs = [source, run_dir / GENERATIONS, run_dir / JUDGEMENTS, run_dir / RUN_CONFIG, Path(__file__), code]
        if _fresh(page, [*inputs, code.parent / "templates" / "trace.html.j2"]):
            return _path_in_run(page, run_dir)  # nothing it shows has changed since it was written
        write_trace_html(
            trace,
            page,
            answer=answer,
            run_dir=run_dir,
            notice=run.get("notice"),
            verdict=_verdict(card, run, run_dir, page.parent),
        )
    except (ValueError, OSError) as exc:
        log.warning("no page for the trace %s: %s", source, exc)
        return None
    return _path_in_run(page, run_dir)


def _fresh(page: Path, sources: Sequence[Path]) -> bool:
    """Whether ``page`` is newer than every source that exists."""
    if not page.is_file():
        return False
    written = page.stat().st_mtime
    return all(written >= source.stat().st_mtime for source in sources if source.is_file())


def trace_tokens(trace: Any) -> int | None:
    """Tokens the episode's model calls used (prompt and completion), from the trace's per-call usage."""
    steps = trace.get("steps") if isinstance(trace, dict) else None
    total, seen = 0, False
    for step in steps if isinstance(steps, list) else []:
        usage = step.get("usage") if isinstance(step, dict) else None
        if isinstance(usage, dict):
            count = usage.get("total_tokens")
            if not isinstance(count, int):
                count = sum(
                    v for k, v in usage.items() if k in ("prompt_tokens", "completion_tokens") and isinstance(v, int)
                )
            total, seen = total + count, True
    return total if seen else None


def _verdict(card: Mapping[str, Any], run: Mapping[str, Any], run_dir: Path, page_dir: Path) -> dict[str, Any]:
    links = card_links(card, run_dir, page_dir)
    return {
        "id": card["id"],
        "back": relative_href(run_dir / REPORT_HTML, page_dir) + "#" + quote(str(card["id"]), safe=""),
        "score_text": card.get("score_text") or "-",
        "status": card["status"],
        "error": card.get("error"),
        "dims": card.get("dims") or [],
        "rationale": card.get("rationale") or "",
        "judge_model": run.get("judge_model"),
        "image": links["image"],
        "gt": links["gt"],
    }


def gallery_cards(
    run_dir: Path, items: Sequence[Item], kind: str, run: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The cards of a run folder, with thumbnails and trace pages written on the way (blocking).

    Thumbnails are made on a few threads: Pillow decodes and resizes without holding the GIL.
    """
    gens, judges = _rows(run_dir / GENERATIONS), _rows(run_dir / JUDGEMENTS)
    cards = []
    jobs: list[tuple[dict[str, Any], str, Path, str, str]] = []  # (card, key, source, folder, name)
    for order, item in enumerate(items):
        gen, judged = gens.get(item.id), judges.get(item.id)
        card = _card(order, item, gen, judged, kind)
        name = safe_name(item.id)
        if gen is not None and gen.get("ok") and gen.get("image"):
            image = Path(gen["image"])
            jobs.append((card, "image", image if image.is_absolute() else run_dir / image, "gen", name))
        if item.gt_image is not None:
            jobs.append((card, "gt", item.gt_image, "gt", name))
        cards.append(card)
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        made = list(pool.map(lambda job: _thumbnail(job[2], run_dir, job[3], job[4]), jobs))
    for (card, key, _, _, _), pics in zip(jobs, made, strict=True):
        card[key] = pics
        if key == "image" and pics is None and card["status"] != "failed":
            card["image_missing"] = True
    for card in cards:  # last: the trace pages show the card's pictures and verdict
        card["score_text"] = score_text(card["score"], kind)
        card["trace"] = _trace_page(run_dir, safe_name(card["id"]), card, run or {})
    return cards


def _href(path: str | None, run_dir: Path, page_dir: Path) -> str | None:
    if not path:
        return None
    return relative_href(Path(path) if Path(path).is_absolute() else run_dir / path, page_dir)


def card_links(card: Mapping[str, Any], run_dir: Path, page_dir: Path) -> dict[str, Any]:
    """The card's image and trace paths as links relative to the page's folder."""
    links: dict[str, Any] = {}
    for key in ("image", "gt"):
        pics = card.get(key)
        links[key] = (
            {"thumb": _href(pics["thumb"], run_dir, page_dir), "full": _href(pics["full"], run_dir, page_dir)}
            if pics
            else None
        )
    links["trace"] = _href(card.get("trace"), run_dir, page_dir)
    return links


def search_text(card: Mapping[str, Any]) -> str:
    """What the search box matches: id, prompt, category, grounded prompt, error (lower case)."""
    parts = [card.get(k) or "" for k in ("id", "prompt", "category", "gen_prompt", "error", "explanation")]
    return " ".join(" ".join(str(p).split()) for p in parts).lower()


def histogram(cards: Sequence[Mapping[str, Any]], buckets: int = 10) -> list[dict[str, Any]]:
    """How many items scored in each tenth of the scale (failed generations count as 0)."""
    counts = [0] * buckets
    for card in cards:
        score = card.get("score")
        if isinstance(score, (int, float)):
            counts[min(buckets - 1, max(0, int(score * buckets)))] += 1
    top = max(counts) or 1
    return [{"label": f"{i / buckets:.1f}", "count": c, "height": 100 * c / top} for i, c in enumerate(counts)]


def _choices(cards: Sequence[Mapping[str, Any]], key: str) -> list[str]:
    return sorted({str(c[key]) for c in cards if c.get(key)})


def write_gallery(run_dir: Path, summary: Mapping[str, Any], run: Mapping[str, Any], items: Sequence[Item]) -> Path:
    """Write ``gallery.json`` and ``report.html`` (plus thumbnails and trace pages) into ``run_dir``."""
    kind = benchmark_kind(summary)
    cards = gallery_cards(run_dir, items, kind, run)
    data = {"benchmark": summary.get("benchmark"), "kind": kind, "cards": cards}
    (run_dir / GALLERY_DATA).write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    shown = [
        {
            **card,
            **card_links(card, run_dir, run_dir),
            "search": search_text(card),
            "score_text": score_text(card["score"], kind),
        }
        for card in cards
    ]
    charts = [p.name for p in sorted((run_dir / "charts").glob("*.png"))] if (run_dir / "charts").is_dir() else []
    html = render_page(
        page_environment("benchmark"),
        "report.html.j2",
        summary=summary,
        run=run,
        kind=kind,
        cards=shown,
        charts=charts,
        hist=histogram(cards),
        groups=_choices(cards, "group"),
        categories=_choices(cards, "category"),
        statuses=_choices(cards, "status"),
        notice=run.get("notice"),
    )
    return write_page(run_dir / REPORT_HTML, html)
