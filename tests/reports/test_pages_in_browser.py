"""The pages in a real browser (headless Chromium): clean console, every image decoded, the controls work,
hostile text stays text, and nothing reaches the network."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import pytest

from benchmark.report import compare_runs, write_report
from policy.trace_html import write_trace_html
from tests.policy.conftest import png
from tests.reports.browser import open_page
from tests.reports.episodes import scripted_run
from tests.reports.runs import knowgen_run

pytestmark = pytest.mark.slow
expect = pytest.importorskip("playwright.sync_api").expect

SHOWN_PROMPT = "<script>window.__pwned = 1</script>"


def _episode() -> Any:
    """A scripted episode, run on its own thread: Playwright's sync API holds this thread's event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, scripted_run).result()


def _check_clean(opened: Any, scripts: int) -> None:
    assert opened.errors == []
    assert opened.network == []
    assert opened.undecoded_images() == []
    assert opened.pwned() is None  # neither the <script> nor the onerror handler ran
    assert opened.page.locator("script").count() == scripts  # the page's own, no injected one
    assert opened.page.locator("img[src='x']").count() == 0


def _shown_text(opened: Any, selector: str) -> str:
    """The text of an element scrolled into view (cards off screen are not rendered, so have no innerText)."""
    element = opened.page.locator(selector)
    element.scroll_into_view_if_needed()
    return str(element.inner_text())


def test_trace_page(browser: Any, tmp_path: Path) -> None:
    run = _episode()
    (tmp_path / "references").mkdir()
    (tmp_path / "references" / "01_IMG_001.png").write_bytes(png((40, 160, 120), (200, 150)))
    (tmp_path / "render.png").write_bytes(png((30, 60, 200), (256, 256)))
    answer = {
        "saved_references": ["references/01_IMG_001.png"],
        "render": {"file": "render.png", "width": 256, "height": 256},
    }
    page = write_trace_html(run.trace(include_image_data=True), tmp_path / "trace.html", answer=answer)
    opened = open_page(browser, page)
    _check_clean(opened, scripts=0)
    assert SHOWN_PROMPT in _shown_text(opened, ".gen-prompt >> nth=0")
    assert opened.page.locator(".imgs img").count() == 3  # the image-search thumbnails with their ids
    assert opened.page.locator(".error").filter(has_text="HTTP 404").count() == 1
    think = opened.page.locator("details", has_text="thinking").first
    assert not think.locator("pre").is_visible()
    think.locator("summary").click()
    assert think.locator("pre").is_visible()  # the thinking unfolds
    opened.screenshot(tmp_path, "trace")


def test_report_page(browser: Any, tmp_path: Path) -> None:
    trace = _episode().trace()
    run_dir, items, summary, run = knowgen_run(
        tmp_path, 24, failed=frozenset({3, 9}), unjudged=frozenset({5}), hostile=frozenset({1}), traces={0: trace}
    )
    write_report(run_dir, summary, run, items)
    opened = open_page(browser, run_dir / "report.html")
    _check_clean(opened, scripts=1)
    page = opened.page
    ids = opened.visible("article.card", "data-id")
    assert ids == [item.id for item in items] and page.inner_text("[data-shown]") == "24 of 24 shown"
    assert SHOWN_PROMPT in _shown_text(opened, "article[data-id='kg-0001'] .prompt")

    page.select_option("[data-sort]", "score:desc")
    scores = [float(s) for s in opened.visible("article.card", "data-score") if s]
    assert scores == sorted(scores, reverse=True) and opened.visible("article.card", "data-id")[:1] != ids[:1]
    assert opened.visible("article.card", "data-score")[-1] == ""  # the unjudged item goes last

    page.select_option("[data-filter=status]", "failed")
    assert sorted(opened.visible("article.card", "data-id")) == ["kg-0003", "kg-0009"]
    assert page.inner_text("[data-shown]") == "2 of 24 shown"
    page.select_option("[data-filter=status]", "")
    page.select_option("[data-filter=category]", "art")
    assert set(opened.visible("article.card", "data-category")) == {"art"}
    page.select_option("[data-filter=category]", "")
    page.fill("[data-search]", "prompt 17:")
    expect(page.locator("[data-shown]")).to_have_text("1 of 24 shown")  # after the search box's short pause
    assert opened.visible("article.card", "data-id") == ["kg-0017"]
    page.fill("[data-search]", "")
    expect(page.locator("[data-shown]")).to_have_text("24 of 24 shown")

    page.locator("article[data-id='kg-0000'] a", has_text="episode trace").click()
    page.wait_for_load_state("load")
    assert page.url.endswith("/traces/kg-0000.html") and opened.errors == []
    page.go_back()
    page.select_option("[data-sort]", "order:asc")
    page.locator("h2", has_text="Items").evaluate("(heading) => heading.scrollIntoView()")
    opened.screenshot(tmp_path, "report")


def test_compare_page(browser: Any, tmp_path: Path) -> None:
    dirs = []
    for name, seed, failed in (("baseline", 0, {2}), ("search", 5, {4})):
        run_dir, items, summary, run = knowgen_run(
            tmp_path, 16, name=name, seed=seed, failed=frozenset(failed), hostile=frozenset({1})
        )
        write_report(run_dir, summary, run, items)
        dirs.append(run_dir)
    compare_runs(dirs, tmp_path / "cmp")
    opened = open_page(browser, tmp_path / "cmp" / "compare.html")
    _check_clean(opened, scripts=1)
    page = opened.page
    diffs = [float(d) for d in opened.visible("article.row", "data-diff")]
    assert len(diffs) == 16 and diffs == sorted(diffs, reverse=True)  # gains first
    page.select_option("[data-sort]", "diff:asc")
    diffs = [float(d) for d in opened.visible("article.row", "data-diff")]
    assert diffs == sorted(diffs)
    page.select_option("[data-filter=change]", "worse")
    worse = opened.visible("article.row", "data-diff")
    assert worse and all(float(d) < 0 for d in worse)
    page.select_option("[data-filter=change]", "")
    page.select_option("[data-filter=failed]", "yes")
    assert sorted(opened.visible("article.row", "data-id")) == ["kg-0002", "kg-0004"]
    page.select_option("[data-filter=failed]", "")
    page.select_option("[data-sort]", "diff:desc")
    assert SHOWN_PROMPT in _shown_text(opened, "article[data-id='kg-0001'] .prompt")
    page.locator("h2", has_text="Items").evaluate("(heading) => heading.scrollIntoView()")
    opened.screenshot(tmp_path, "compare")


def test_a_500_item_gallery_loads(browser: Any, tmp_path: Path) -> None:
    """Loads and sorts; the time is reported, not asserted (perf/gallery.py measures it)."""
    run_dir, items, summary, run = knowgen_run(tmp_path, 500, image_size=64, failed=frozenset(range(0, 500, 37)))
    write_report(run_dir, summary, run, items)
    started = time.perf_counter()
    opened = open_page(browser, run_dir / "report.html")
    loaded = time.perf_counter() - started
    assert opened.errors == [] and opened.network == []
    assert opened.page.inner_text("[data-shown]") == "500 of 500 shown"
    opened.page.select_option("[data-sort]", "score:asc")
    assert opened.visible("article.card", "data-score")[0] == "0.0"
    print(f"\n500-item gallery: loaded in {loaded:.2f} s, {(run_dir / 'report.html').stat().st_size / 1e6:.2f} MB")
