"""The report stage: scores from the journals, ``report.md``, ``summary.json`` and PNG charts.

Failure treatment (``failures``):

* ``"zero"`` (default, our protocol): a failed generation -- the policy gave no
  answer, the renderer failed, the image is missing -- scores 0 on every dimension;
* ``"drop"`` (``--protocol published``): failed generations are left out, as the
  published evaluator did (this inflates the mean).

Items the judge could not score (unparseable replies, missing ground truth) are
left out under both and listed; a rerun with ``--retry-failed`` judges them again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from benchmark.datasets import Item
from benchmark.journal import Journal
from benchmark.rubrics.kscore import GROUPS, KScoreJudgement, aggregate_kscore, dimension_means
from benchmark.rubrics.wise import (
    CATEGORIES,
    WEIGHTS,
    WiseLegacyJudgement,
    WiseVerifiedJudgement,
    aggregate_wise,
)
from gen_searcher_core.errors import UserFacingError

Failures = Literal["zero", "drop"]
DIMENSION_LABELS = {
    "faithfulness": "faithfulness",
    "visual_correctness": "visual correctness",
    "text_accuracy": "text accuracy",
    "aesthetics": "aesthetics",
}


def _means_dict(m: Any) -> dict[str, Any]:
    return {
        "n": m.n,
        "faithfulness": m.faithfulness,
        "visual_correctness": m.visual_correctness,
        "text_accuracy": m.text_accuracy,
        "text_n": m.text_n,
        "aesthetics": m.aesthetics,
        "score": m.score,
    }


def _collect(
    items: Sequence[Item], gens: Journal, judges: Journal, failures: Failures
) -> tuple[list[tuple[Item, Any | None]], dict[str, int], list[dict[str, str]]]:
    """``(item, judgement dict | None for a failed generation)`` for every scorable item, plus counts and problems."""
    counts = {"items": len(items), "scored": 0, "failed_generation": 0, "unjudged": 0, "pending": 0}
    scored: list[tuple[Item, Any | None]] = []
    problems: list[dict[str, str]] = []
    for item in items:
        gen, judged = gens.get(item.id), judges.get(item.id)
        if gen is None:
            counts["pending"] += 1
            continue
        failed_generation = not gen.get("ok")
        reason = gen.get("error", "")
        if not failed_generation:
            if judged is None:
                counts["pending"] += 1
                continue
            if not judged.get("ok"):
                if judged.get("failure") == "missing_image":
                    failed_generation, reason = True, judged.get("error", "")
                else:
                    counts["unjudged"] += 1
                    problems.append({"id": item.id, "stage": "judge", "error": judged.get("error", "")})
                    continue
        if failed_generation:
            counts["failed_generation"] += 1
            problems.append({"id": item.id, "stage": "generate", "error": reason})
            if failures == "drop":
                continue
            scored.append((item, None))
        else:
            assert judged is not None  # a generation that did not fail was judged (pending ones were skipped)
            scored.append((item, judged["judgement"]))
        counts["scored"] += 1
    return scored, counts, problems


def summarize_knowgen(items: Sequence[Item], gens: Journal, judges: Journal, failures: Failures) -> dict[str, Any]:
    scored, counts, problems = _collect(items, gens, judges, failures)
    pairs = [
        (item.category, KScoreJudgement.from_dict(j) if j is not None else KScoreJudgement.zero("failed generation"))
        for item, j in scored
    ]
    summary: dict[str, Any] = {"benchmark": "knowgen", "failures": failures, "counts": counts, "problems": problems}
    if not pairs:
        summary.update(overall=None, groups={}, categories={}, dimensions=None)
        return summary
    agg = aggregate_kscore(pairs)
    groups_of = {item.category: item.group for item, _ in scored}
    rank = {group: index for index, group in enumerate(GROUPS)}
    summary.update(
        overall=agg.overall,
        groups={g: _means_dict(m) for g, m in agg.groups.items()},
        categories={
            c: {"group": groups_of.get(c), **_means_dict(m)}
            for c, m in sorted(
                agg.categories.items(), key=lambda cm: (rank.get(groups_of[cm[0]] or "", len(rank)), cm[0])
            )
        },
        dimensions=_means_dict(dimension_means(j for _, j in pairs)),
    )
    return summary


def summarize_wise(
    items: Sequence[Item], gens: Journal, judges: Journal, failures: Failures, protocol: str
) -> dict[str, Any]:
    scored, counts, problems = _collect(items, gens, judges, failures)
    cls = WiseLegacyJudgement if protocol == "legacy" else WiseVerifiedJudgement
    judgements = [(item, cls.from_dict(j) if j is not None else cls.zero("failed generation")) for item, j in scored]
    summary: dict[str, Any] = {
        "benchmark": "wise",
        "protocol": protocol,
        "failures": failures,
        "counts": counts,
        "problems": problems,
        "weights": WEIGHTS[protocol],
    }
    if not judgements:
        summary.update(overall=None, categories={})
        return summary
    agg = aggregate_wise(protocol, [(item.category, j.score) for item, j in judgements])  # type: ignore[arg-type]
    categories: dict[str, dict[str, Any]] = {}
    for category in CATEGORIES:
        members = [j for item, j in judgements if item.category == category]
        if not members:
            continue
        entry: dict[str, Any] = {"n": len(members), "score": agg.categories[category]}
        if protocol == "legacy":
            for key in ("consistency", "realism", "aesthetic_quality"):
                entry[key] = sum(getattr(j, key) for j in members) / len(members)
        categories[category] = entry
    summary.update(overall=agg.overall, categories=categories)
    return summary


def summarize(
    benchmark: str, items: Sequence[Item], run_dir: Path, failures: Failures, wise_protocol: str | None = None
) -> dict[str, Any]:
    """Scores of a run folder under ``failures``, plus the overall under the other treatment for contrast."""
    gens, judges = Journal(run_dir / "generations.jsonl"), Journal(run_dir / "judgements.jsonl")
    other: Failures = "drop" if failures == "zero" else "zero"
    if benchmark == "wise":
        assert wise_protocol is not None
        main = summarize_wise(items, gens, judges, failures, wise_protocol)
        main["overall_other_failures"] = summarize_wise(items, gens, judges, other, wise_protocol)["overall"]
    else:
        main = summarize_knowgen(items, gens, judges, failures)
        main["overall_other_failures"] = summarize_knowgen(items, gens, judges, other)["overall"]
        main["benchmark"] = benchmark
    return main


# ---------------------------------------------------------------- markdown


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 2) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(c, digits) for c in row) + " |" for row in rows]
    return lines


_FAILURE_TEXT = {
    "zero": "failed generations score 0",
    "drop": "published protocol: failed generations are dropped",
}


def _header(title: str, summary: dict[str, Any], run: dict[str, Any]) -> list[str]:
    c = summary["counts"]
    lines = [f"# {title}", ""]
    meta = [
        ("benchmark", summary["benchmark"] + (f" ({summary['protocol']})" if summary.get("protocol") else "")),
        ("failure treatment", _FAILURE_TEXT[summary["failures"]]),
        (
            "items",
            f"{c['items']} (scored {c['scored']}, failed generations {c['failed_generation']}, "
            f"unjudged {c['unjudged']}, pending {c['pending']})",
        ),
    ]
    for key in ("policy", "judge_model", "data"):
        if run.get(key):
            meta.append((key.replace("_", " "), str(run[key])))
    lines += _table(["field", "value"], meta)
    return lines


def _overall(summary: dict[str, Any], label: str, meaning: str, digits: int = 2) -> list[str]:
    """The "Overall" section: the score under this run's failure treatment and under the other one."""
    lines = ["", "## Overall", ""]
    if summary["overall"] is None:
        return [*lines, "No scored items yet."]
    other = "dropped" if summary["failures"] == "zero" else "scored 0"
    return [
        *lines,
        f"**{label}: {summary['overall']:.{digits}f}** ({meaning})",
        "",
        f"With failed generations {other} instead: {_fmt(summary['overall_other_failures'], digits)}",
    ]


def knowgen_markdown(summary: dict[str, Any], run: dict[str, Any]) -> str:
    lines = _header(f"{'KnowGen' if summary['benchmark'] == 'knowgen' else 'Scored results'} report", summary, run)
    if summary["overall"] is None:
        return "\n".join([*lines, *_overall(summary, "K-Score", "")]) + "\n"
    lines += _overall(summary, "K-Score", "mean of the group scores, 0-100")
    dims = ["faithfulness", "visual_correctness", "text_accuracy", "aesthetics"]
    head = ["n", *(DIMENSION_LABELS[d] for d in dims), "text n", "K-Score"]
    lines += ["", "## Groups", ""]
    lines += _table(
        ["group", *head],
        [[g, m["n"], *(m[d] for d in dims), m["text_n"], m["score"]] for g, m in summary["groups"].items()],
    )
    lines += ["", "## Categories", ""]
    lines += _table(
        ["category", "group", *head],
        [
            [c, m["group"], m["n"], *(m[d] for d in dims), m["text_n"], m["score"]]
            for c, m in summary["categories"].items()
        ],
    )
    d = summary["dimensions"]
    lines += ["", "## Dimensions (all scored items)", ""]
    lines += _table(["dimension", "mean"], [[DIMENSION_LABELS[k], d[k]] for k in dims])
    lines += [
        "",
        "Text accuracy is averaged over the items that need text "
        f"({d['text_n']} of {d['n']}); an item needing none scores 0.5 on it.",
    ]
    lines += _problems(summary)
    return "\n".join(lines) + "\n"


def wise_markdown(summary: dict[str, Any], run: dict[str, Any]) -> str:
    protocol = summary["protocol"]
    lines = _header(
        f"WISE report ({'WiScore, legacy protocol' if protocol == 'legacy' else 'WISE Verified'})", summary, run
    )
    label = "WiScore" if protocol == "legacy" else "WISE Verified"
    if summary["overall"] is None:
        return "\n".join([*lines, *_overall(summary, label, "")]) + "\n"
    lines += _overall(summary, label, "category means weighted by the protocol's weights, 0-1", digits=3)
    lines += [
        "",
        "Scores of the legacy and verified protocols must never be compared with each other.",
        "",
        "## Categories",
        "",
    ]
    extra = ["consistency", "realism", "aesthetic_quality"] if protocol == "legacy" else []
    lines += _table(
        ["category", "weight", "n", "score", *(k.replace("_", " ") for k in extra)],
        [
            [c, summary["weights"][c], m["n"], m["score"], *(m[k] for k in extra)]
            for c, m in summary["categories"].items()
        ],
        digits=3,
    )
    if len(summary["categories"]) < len(CATEGORIES):
        lines += [
            "",
            f"Only {len(summary['categories'])} of {len(CATEGORIES)} categories have scored items; "
            "the overall renormalises the weights over them, so it is not comparable with a full run.",
        ]
    if extra:
        lines += [
            "",
            "Consistency, realism and aesthetic quality are the judge's means on its 0-2 scale; "
            "score is the WiScore, (0.7 consistency + 0.2 realism + 0.1 aesthetic quality) / 2.",
        ]
    else:
        lines += ["", "Score is the share of images that passed."]
    lines += _problems(summary)
    return "\n".join(lines) + "\n"


def _problems(summary: dict[str, Any]) -> list[str]:
    problems = summary["problems"]
    if not problems:
        return []
    lines = ["", "## Failures", ""]
    lines += _table(
        ["id", "stage", "error"], [[p["id"], p["stage"], p["error"].replace("|", "/")[:200]] for p in problems[:200]]
    )
    if len(problems) > 200:
        lines.append(f"... and {len(problems) - 200} more (see the journals)")
    return lines


# ---------------------------------------------------------------- charts


def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend, or ``None`` when the ``bench`` extra is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_GROUP_COLOURS = {"science_and_knowledge": "#4c72b0", "pop_culture_and_news": "#dd8452"}


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _category_chart(plt: Any, summary: dict[str, Any], path: Path) -> Path:
    """Horizontal bars per category, coloured by KnowGen group, on the benchmark's full scale."""
    cats = summary["categories"]
    names = list(cats)[::-1]  # barh draws bottom-up; keep the table's order top-down
    wise = summary["benchmark"] == "wise"
    colours = [_GROUP_COLOURS.get(cats[c].get("group") or "", "#4c72b0") for c in names]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.35 * len(names) + 1.2)))
    bars = ax.barh(names, [cats[c]["score"] for c in names], color=colours)
    ax.bar_label(bars, fmt="%.3f" if wise else "%.1f", padding=2, fontsize=8)
    ax.set_xlim(0, 1.1 if wise else 110)
    ax.set_xlabel("score (0-1)" if wise else "K-Score (0-100)")
    ax.set_title("Score per category")
    if not wise:
        present = [g for g in _GROUP_COLOURS if any(cats[c].get("group") == g for c in names)]
        handles = [plt.Rectangle((0, 0), 1, 1, color=_GROUP_COLOURS[g]) for g in present]
        ax.legend(handles, present, loc="lower right", fontsize=8)
    return _save(plt, fig, path)


def _group_chart(plt: Any, groups: dict[str, Any], path: Path) -> Path:
    """Per-dimension means and the K-Score, one bar per group."""
    keys = [*DIMENSION_LABELS, "score"]
    labels = [*DIMENSION_LABELS.values(), "K-Score"]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / len(groups)
    for i, (g, m) in enumerate(groups.items()):
        bars = ax.bar(
            [x + i * width for x in range(len(keys))], [m[k] for k in keys], width, label=g, color=_GROUP_COLOURS.get(g)
        )
        ax.bar_label(bars, fmt="%.1f", padding=1, fontsize=7)
    ax.set_xticks([x + width * (len(groups) - 1) / 2 for x in range(len(keys))])
    ax.set_xticklabels(labels)
    ax.set_ylabel("mean (0-100)")
    ax.set_ylim(0, 115)
    ax.set_title("Dimensions per group")
    ax.legend(fontsize=8, loc="upper left")
    return _save(plt, fig, path)


def _charts(summary: dict[str, Any], out: Path) -> list[Path]:
    plt = _pyplot()
    if plt is None:
        return []
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if summary.get("categories"):
        written.append(_category_chart(plt, summary, out / "categories.png"))
    if summary.get("groups"):
        written.append(_group_chart(plt, summary["groups"], out / "groups.png"))
    return written


def write_report(
    run_dir: Path, summary: dict[str, Any], run: dict[str, Any], items: Sequence[Item] | None = None
) -> Path:
    """Write ``report.md``, ``summary.json`` and ``charts/*.png`` into ``run_dir``; returns the report path.

    With ``items``, also the gallery: ``report.html`` and ``gallery.json`` (see :mod:`benchmark.gallery`).
    """
    markdown = wise_markdown(summary, run) if summary["benchmark"] == "wise" else knowgen_markdown(summary, run)
    charts = _charts(summary, run_dir / "charts")
    if charts:
        markdown += "\n## Charts\n\n" + "\n".join(f"![{p.stem}](charts/{p.name})" for p in charts) + "\n"
    (run_dir / "summary.json").write_text(json.dumps({**summary, "run": run}, indent=2, default=str) + "\n")
    path = run_dir / "report.md"
    path.write_text(markdown)
    if items is not None:
        from benchmark.gallery import write_gallery

        write_gallery(run_dir, summary, run, items)
    return path


# ---------------------------------------------------------------- compare


class CompareError(UserFacingError, ValueError):
    pass


def _kind(summary: dict[str, Any]) -> str:
    if summary["benchmark"] == "wise":
        return f"wise/{summary['protocol']}"
    return "knowgen"  # knowgen runs and scored results files share the K-Score scale


def compare_runs(run_dirs: Sequence[Path], out: Path | None = None) -> str:
    """Side-by-side markdown of the runs' summaries (and ``compare.md``, ``compare.png``, ``compare.html`` in ``out``).

    ``compare.html`` also puts the runs' items side by side (see :mod:`benchmark.gallery_compare`).
    """
    summaries = []
    for run_dir in run_dirs:
        path = Path(run_dir) / "summary.json"
        if not path.is_file():
            raise CompareError(f"{run_dir} has no summary.json; run its report stage first")
        summaries.append(json.loads(path.read_text()))
    kinds = {_kind(s) for s in summaries}
    if len(kinds) > 1:
        raise CompareError(f"these runs use different benchmarks or protocols and cannot be compared: {sorted(kinds)}")
    names = [Path(d).name or str(d) for d in run_dirs]
    if len(set(names)) < len(names):
        names = [str(d) for d in run_dirs]
    digits = 3 if kinds == {"wise/legacy"} or kinds == {"wise/verified"} else 2
    rows: list[list[Any]] = [["overall", *(s["overall"] for s in summaries)]]
    rows.append(["failure treatment", *(s["failures"] for s in summaries)])
    rows.append(["scored / items", *(f"{s['counts']['scored']}/{s['counts']['items']}" for s in summaries)])
    if kinds == {"knowgen"}:
        for group in GROUPS:
            rows.append([group, *((s["groups"].get(group) or {}).get("score") for s in summaries)])
        for dim in DIMENSION_LABELS:
            rows.append([DIMENSION_LABELS[dim], *((s.get("dimensions") or {}).get(dim) for s in summaries)])
    categories = sorted({c for s in summaries for c in s.get("categories", {})})
    for c in categories:
        rows.append([f"category: {c}", *((s["categories"].get(c) or {}).get("score") for s in summaries)])
    markdown = "\n".join(["# Comparison", "", *_table(["metric", *names], rows, digits)]) + "\n"
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.md").write_text(markdown)
        _compare_chart(names, summaries, out / "compare.png")
        from benchmark.gallery_compare import write_compare_page

        table = (["metric", *names], rows, digits)
        write_compare_page(run_dirs, names, summaries, table, next(iter(kinds)), out)
    return markdown


def _compare_chart(names: Sequence[str], summaries: Sequence[dict[str, Any]], path: Path) -> None:
    """Overall score per run, plus each KnowGen group's score side by side."""
    plt = _pyplot()
    if plt is None:
        return
    metrics = ["overall"]
    if all(s["benchmark"] != "wise" for s in summaries):
        metrics += [g for g in GROUPS if any(g in (s.get("groups") or {}) for s in summaries)]

    def value(s: dict[str, Any], metric: str) -> float:
        if metric == "overall":
            return s["overall"] or 0.0
        return ((s.get("groups") or {}).get(metric) or {}).get("score") or 0.0

    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(metrics) * len(names) / 2 + 2), 3.8))
    width = 0.8 / len(names)
    for i, (name, s) in enumerate(zip(names, summaries, strict=True)):
        bars = ax.bar([x + i * width for x in range(len(metrics))], [value(s, m) for m in metrics], width, label=name)
        ax.bar_label(bars, fmt="%.3f" if s["benchmark"] == "wise" else "%.1f", padding=1, fontsize=7)
    ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(metrics))])
    ax.set_xticklabels(metrics)
    ax.set_ylabel("score")
    ax.set_title("Runs compared")
    ax.legend(fontsize=8)
    _save(plt, fig, path)
