"""Episode trace pages: ``trace.html`` beside ``trace.json``, and ``gen-searcher trace show``.

The page shows an episode turn by turn (thinking, tool calls with their arguments and
results, errors, timings) and its answer: the grounded prompt, the references (the
ones the generator got marked) and the rendered image. Thumbnails the trace carries
are embedded as ``data:`` URLs; saved references and the render are linked by paths
relative to the page, so a run folder can be zipped and opened anywhere.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gen_searcher_core.pages import page_environment, relative_href, render_page, write_page
from policy.trace_view import TraceView, parse_records, trace_view

ANSWER_FILE = "answer.json"


def render_trace_html(
    views: Sequence[TraceView],
    *,
    title: str | None = None,
    notice: str | None = None,
    verdict: Mapping[str, Any] | None = None,
) -> str:
    """The page of one episode (or of several, e.g. a verl rollout dump, each folded, with an overview,
    sort and filter). ``verdict`` (a benchmark item's judgement, pictures and report link) opens the page."""
    if not views:
        raise ValueError("no episodes to show")
    if title is None:
        title = "Episode trace" if len(views) == 1 else f"{len(views)} episodes"
    sources = sorted({view.source for view in views})
    subtitle = f"from the {', '.join(sources)} record" + ("s" if len(views) > 1 else "")
    return render_page(
        page_environment("policy"),
        "trace.html.j2",
        views=list(views),
        title=title,
        subtitle=subtitle,
        notice=notice,
        verdict=verdict,
        overview=overview(views),
    )


def overview(views: Sequence[TraceView]) -> dict[str, Any]:
    """What a page of many episodes (a verl rollout dump) opens with: counts, mean score, termination mix."""
    scores = [value for view in views for key, value in view.facts if key == "score" and isinstance(value, int | float)]
    terminations = Counter(view.termination or "none" for view in views)
    return {
        "n": len(views),
        "answered": sum(1 for view in views if view.ok),
        "mean_score": sum(scores) / len(scores) if scores else None,
        "terminations": sorted(terminations.items(), key=lambda item: (-item[1], item[0])),
    }


def _rebase(view: TraceView, run_dir: Path, page_dir: Path) -> None:
    """Make file paths of ``view`` (relative to ``run_dir``) relative to the page's folder instead."""
    if run_dir.resolve() == page_dir.resolve():
        return

    def move(path: str | None) -> str | None:
        if path is None or path.startswith("data:"):
            return path
        return relative_href(run_dir / path, page_dir)

    images = [ref.image for ref in view.references] + ([view.render] if view.render else [])
    for image in images:
        image.src, image.href = move(image.src), move(image.href)


def write_trace_html(
    trace: Mapping[str, Any],
    out: Path,
    *,
    answer: Mapping[str, Any] | None = None,
    run_dir: Path | None = None,
    notice: str | None = None,
    verdict: Mapping[str, Any] | None = None,
) -> Path:
    """Write the page of one trace record to ``out``.

    ``answer`` is the run's ``answer.json`` (saved references, the render); its paths are
    relative to ``run_dir`` (default: the page's folder). ``notice`` is a line shown atop the page.
    """
    view = trace_view(trace, answer=answer)
    _rebase(view, run_dir or out.parent, out.parent)
    title = f"Episode: {_short(view.prompt)}" if view.prompt else None
    return write_page(out, render_trace_html([view], title=title, notice=notice, verdict=verdict))


def write_trace_file(source: Path, out: Path, *, index: int | None = None) -> tuple[Path, int]:
    """The page of a saved trace file (JSON, or verl's JSON-lines rollout dump); returns (page, episodes).

    A driver trace picks up ``answer.json`` from its folder, when there is one, for the
    saved references and the rendered image. ``index`` picks one record of several.
    Raises :class:`~policy.trace_view.TraceFormatError` (a ``ValueError``) for unreadable input.
    """
    records = parse_records(source.read_text(encoding="utf-8"))
    if not records:
        raise ValueError(f"{source} holds no trace records")
    if index is not None:
        if not 0 <= index < len(records):
            raise ValueError(f"--index {index} is out of range: {source} holds {len(records)} record(s)")
        records = [records[index]]
    answer = None
    answer_file = source.parent / ANSWER_FILE
    if len(records) == 1 and answer_file.is_file():
        try:
            loaded = json.loads(answer_file.read_text(encoding="utf-8"))
        except ValueError:
            loaded = None
        answer = loaded if isinstance(loaded, dict) else None
    views = [trace_view(record, answer=answer) for record in records]
    for view in views:
        _rebase(view, source.parent, out.parent)
    title = f"Episode: {_short(views[0].prompt)}" if len(views) == 1 and views[0].prompt else None
    html = render_trace_html(views, title=title).replace("<head>", f"<head>\n{SHOW_MARK}", 1)
    return write_page(out, html), len(views)


#: Marks the pages ``gen-searcher trace show`` writes: those it may replace; any other page
#: (``run``'s trace.html with its pictures, a benchmark's item page) it leaves alone.
SHOW_MARK = '<meta name="gen-searcher-page" content="trace show">'


def written_by_show(page: Path) -> bool:
    """Whether ``page`` was written by ``gen-searcher trace show`` (so rewriting it loses nothing)."""
    try:
        with page.open(encoding="utf-8", errors="replace") as fh:
            return SHOW_MARK in fh.read(4096)
    except OSError:
        return False


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
