"""Synthetic benchmark run folders (journals, images, ground truth) in the exact layout a real run leaves.

Used by the page tests and by ``perf/gallery.py``; :func:`knowgen_run` goes through the
production loaders (``load_knowgen``) and summary (``summarize``), only the images and judge
replies are made up.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from benchmark.datasets import Item, load_knowgen
from benchmark.generate import safe_name
from benchmark.report import summarize
from benchmark.resumable_run import GENERATIONS, JUDGEMENTS

CATEGORIES = ["astronomy", "history", "art", "anime", "multi_celebrities", "news", "biology", "film"]
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


def picture(path: Path, seed: int, size: int = 256) -> Path:
    """A small PNG with a colour and a shape derived from ``seed`` (so thumbnails differ visibly)."""
    crc = zlib.crc32(str(seed).encode())
    colour = (crc & 255, (crc >> 8) & 255, (crc >> 16) & 255)
    image = Image.new("RGB", (size, size), colour)
    draw = ImageDraw.Draw(image)
    inset = size // 5 + seed % (size // 5)
    draw.ellipse((inset, inset, size - inset, size - inset), fill=tuple(255 - c for c in colour))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG", compress_level=1)  # fast to write; decoding costs the same
    return path


def _judgement(i: int) -> dict[str, Any]:
    values = (0.0, 0.5, 1.0)
    text_na = i % 3 == 0
    judgement = {
        "faithfulness": values[i % 3],
        "visual_correctness": values[(i // 3) % 3],
        "text_accuracy": 0.0 if text_na else values[(i // 2) % 3],
        "text_accuracy_na": text_na,
        "aesthetics": values[(i + 1) % 3],
        "rationale": f"Item {i}: the landmark's towers look right; the caption is misspelled.",
    }
    ta = 0.5 if text_na else judgement["text_accuracy"]
    score = 0.1 * judgement["faithfulness"] + 0.4 * judgement["visual_correctness"] + 0.4 * ta
    score += 0.1 * judgement["aesthetics"]
    return {"judgement": judgement, "score": score}


def knowgen_run(
    root: Path,
    n: int,
    *,
    name: str = "run",
    image_size: int = 256,
    seed: int = 0,
    failed: frozenset[int] = frozenset(),
    unjudged: frozenset[int] = frozenset(),
    hostile: frozenset[int] = frozenset(),
    traces: dict[int, dict[str, Any]] | None = None,
) -> tuple[Path, list[Item], dict[str, Any], dict[str, Any]]:
    """A finished KnowGen run of ``n`` items under ``root/name``; returns (run folder, items, summary, run.json).

    Items in ``failed`` have a failed generation, in ``unjudged`` a judge failure; prompts of
    ``hostile`` items hold markup and script; ``traces`` are episode traces stored for items.
    The data file and ground truth live in ``root/data`` (outside the run folder, like a real data set).
    """
    data_dir = root / "data"
    data_file = data_dir / "knowgen.json"
    if not data_file.exists():
        rows = []
        for i in range(n):
            picture(data_dir / "gt" / f"{i:04d}.png", 10_000 + i, image_size)
            category = CATEGORIES[i % len(CATEGORIES)]
            prompt = f"Prompt {i}: the {category} subject number {i} at dusk" + (f" {HOSTILE}" if i in hostile else "")
            rows.append(
                {"id": f"kg-{i:04d}", "prompt": prompt, "meta": {"category": category}, "gt_image": f"gt/{i:04d}.png"}
            )
        data_dir.mkdir(parents=True, exist_ok=True)
        data_file.write_text(json.dumps(rows))
    items = load_knowgen(data_file)
    run_dir = root / name
    gens, judges = [], []
    for i, item in enumerate(items):
        if i in failed:
            gens.append(
                {"id": item.id, "generator": "policy", "ok": False, "error": "policy gave no answer (max_turns: )"}
            )
            continue
        image = picture(run_dir / "images" / f"{safe_name(item.id)}.png", seed * 7919 + i, image_size)
        refs = [
            {
                "img_id": "IMG_001",
                "store_id": "img_" + "a" * 16,
                "note": f"the towers {HOSTILE if i in hostile else ''}",
                "title": "Bridge photo",
                "page_url": "https://example.org/bridge",
            }
        ]
        gens.append(
            {
                "id": item.id,
                "generator": "policy",
                "ok": True,
                "image": image.relative_to(run_dir).as_posix(),
                "gen_prompt": f"{item.prompt}, copper-green towers as in the first reference image",
                "references": refs,
                "seed": 42,
                "elapsed_s": 1.5,
            }
        )
        if i in unjudged:
            judges.append(
                {
                    "id": item.id,
                    "judge_model": "scripted",
                    "ok": False,
                    "failure": "judge",
                    "error": "the judge's reply is not JSON",
                }
            )
        else:
            row = _judgement(i + seed)
            judges.append({"id": item.id, "judge_model": "scripted", "ok": True, **row})
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / GENERATIONS).write_text("".join(json.dumps(r) + "\n" for r in gens))
    (run_dir / JUDGEMENTS).write_text("".join(json.dumps(r) + "\n" for r in judges))
    for i, trace in (traces or {}).items():
        path = run_dir / "traces" / f"{safe_name(items[i].id)}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(trace))
    run = {"benchmark": "knowgen", "data": str(data_file), "policy": "baseline", "judge_model": "scripted"}
    (run_dir / "run.json").write_text(json.dumps(run))
    summary = summarize("knowgen", items, run_dir, "zero")
    return run_dir, items, summary, run


def wise_run(root: Path, n: int, protocol: str, *, name: str = "wise") -> tuple[Path, list[Item], dict[str, Any]]:
    """A finished WISE run (``legacy`` or ``verified``) of ``n`` items; returns (run folder, items, summary)."""
    from benchmark.datasets import load_wise

    categories = ["Cultural knowledge", "Time", "Space", "Biology", "Physics", "Chemistry"]
    data_dir = root / f"{name}-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "Prompt": f"WISE prompt {i} {HOSTILE if i == 1 else ''}",
            "Explanation": f"A correct image shows thing {i}.",
            "Category": categories[i % len(categories)],
            "Subcategory": "x",
            "prompt_id": i,
        }
        for i in range(n)
    ]
    (data_dir / "prompts.json").write_text(json.dumps(rows))
    items = load_wise(data_dir)
    run_dir = root / name
    gens, judges = [], []
    for i, item in enumerate(items):
        image = picture(run_dir / "images" / f"{safe_name(item.id)}.png", i, 64)
        gens.append({"id": item.id, "generator": "none", "ok": True, "image": image.relative_to(run_dir).as_posix()})
        if protocol == "legacy":
            judgement: dict[str, Any] = {"consistency": i % 3, "realism": 2, "aesthetic_quality": 1, "rationale": "ok"}
            score = (0.7 * judgement["consistency"] + 0.2 * 2 + 0.1 * 1) / 2
        else:
            judgement = {"passed": i % 2 == 0, "rationale": "the tide is wrong" if i % 2 else "right"}
            score = 1.0 if i % 2 == 0 else 0.0
        judges.append({"id": item.id, "judge_model": "scripted", "ok": True, "judgement": judgement, "score": score})
    (run_dir / GENERATIONS).write_text("".join(json.dumps(r) + "\n" for r in gens))
    (run_dir / JUDGEMENTS).write_text("".join(json.dumps(r) + "\n" for r in judges))
    return run_dir, items, summarize("wise", items, run_dir, "zero", protocol)
