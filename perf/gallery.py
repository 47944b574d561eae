"""How fast the benchmark gallery is written and how fast it opens, for a large synthetic run.

    .venv/bin/python -m perf.gallery [--items 500] [--size 1024]

Builds a finished KnowGen run of ``--items`` items (generated and ground-truth PNGs of
``--size`` pixels, a few failures) with the tests' synthetic-run builder, then prints:

* writing ``report.html``: the first time (every thumbnail made) and again (thumbnails reused);
* the page's size and the thumbnails' total size;
* opening it from disk in headless Chromium: DOMContentLoaded and load times, and the
  thumbnails the first screen decoded;
* sorting and filtering the cards (in-page time of the change and the layout it causes);
* writing and opening ``compare.html`` for two such runs.

Needs Debian's chromium for the browser figures (skipped without it).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmark.gallery import write_gallery
from benchmark.report import compare_runs, write_report
from tests.reports.browser import LAUNCH_ARGS, chromium_path
from tests.reports.runs import knowgen_run


def _size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def _timed(action: Any) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _open(browser: Any, page_path: Path) -> dict[str, float]:
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    start = time.perf_counter()
    page.goto(page_path.as_uri())
    page.wait_for_load_state("load")
    wall = time.perf_counter() - start
    timing = page.evaluate(
        """() => { const n = performance.getEntriesByType("navigation")[0];
                   return {dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd}; }"""
    )
    decoded = page.evaluate("() => Array.from(document.images).filter((i) => i.complete && i.naturalWidth > 0).length")
    figures = {"wall_s": wall, "dcl_ms": timing["dcl"], "load_ms": timing["load"], "decoded": decoded, "page": page}
    return figures


_CHANGE = """([selector, value, kind]) => {
    const control = document.querySelector(selector);
    const start = performance.now();
    control.value = value;
    control.dispatchEvent(new Event(kind));
    document.body.offsetHeight;  // the layout the change causes, inside the measurement
    return performance.now() - start;
}"""


def _controls(page: Any, label: str) -> str:
    """In-page time of changing a control: the script's work plus the layout it causes."""

    def change(selector: str, value: str, kind: str = "change") -> float:
        return float(page.evaluate(_CHANGE, [selector, value, kind]))

    if label == "compare.html":
        return f"  sort by difference {change('[data-sort]', 'diff:asc'):.0f} ms"
    sort = change("[data-sort]", "score:desc")
    status = change("[data-filter=status]", "failed")
    everything = change("[data-filter=status]", "")
    return f"  sort by score {sort:.0f} ms, filter failed {status:.0f} ms, back to all {everything:.0f} ms"


def _browser_figures(pages: list[tuple[str, Path]]) -> None:
    path = chromium_path()
    if path is None:
        print("chromium not found: no browser figures")
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=LAUNCH_ARGS)
        for label, page_path in pages:
            figures = _open(browser, page_path)
            print(
                f"{label} in Chromium: DOMContentLoaded {figures['dcl_ms']:.0f} ms, "
                f"load {figures['load_ms']:.0f} ms (wall {figures['wall_s']:.2f} s), "
                f"{figures['decoded']} thumbnails decoded at load (lazy: the rest wait)"
            )
            print(_controls(figures["page"], label))
            figures["page"].close()
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--size", type=int, default=1024, help="side of the generated and ground-truth images")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gallery-perf-"))
    try:
        runs = []
        for name, seed in (("baseline", 0), ("search", 3)):
            started = time.perf_counter()
            run_dir, items, summary, run = knowgen_run(
                work,
                args.items,
                name=name,
                seed=seed,
                image_size=args.size,
                failed=frozenset(range(seed, args.items, 23)),
                hostile=frozenset({1}),
            )
            built = time.perf_counter() - started
            print(f"{name}: synthetic run of {args.items} items ({args.size}px) built in {built:.1f} s")
            runs.append((run_dir, items, summary, run))
        run_dir, items, summary, run = runs[0]
        first = _timed(lambda: write_gallery(run_dir, summary, run, items))
        again = _timed(lambda: write_gallery(run_dir, summary, run, items))
        for one_dir, one_items, one_summary, one_run in runs:  # summary.json too, which bench compare reads
            write_report(one_dir, one_summary, one_run, one_items)
        other_dir = runs[1][0]
        html = run_dir / "report.html"
        thumbs = _size_mb(run_dir / "thumbs")
        print(
            f"report.html, first write (all thumbnails made): {first:.2f} s ({1000 * first / args.items:.1f} ms/item)"
        )
        print(f"report.html, written again (thumbnails reused): {again:.2f} s")
        print(
            f"report.html size: {_size_mb(html):.2f} MB; thumbnails: {thumbs:.2f} MB for {2 * args.items} images "
            f"({1000 * thumbs / (2 * args.items):.1f} kB each); full images: {_size_mb(run_dir / 'images'):.1f} MB"
        )
        compare_s = _timed(lambda: compare_runs([run_dir, other_dir], work / "cmp"))
        print(f"compare.html written in {compare_s:.2f} s ({_size_mb(work / 'cmp' / 'compare.html'):.2f} MB)")
        _browser_figures([("report.html", html), ("compare.html", work / "cmp" / "compare.html")])
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
