"""Every page at desktop (1440 px) and phone (390 px) width in headless Chromium: no horizontal overflow,
bars beside their labels, badges whole, wide tables scrolling in their own box, every image decoded, a clean
console, no network; deep links (``report.html#item-id``) land on their card."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import pytest

from benchmark.report import compare_runs, write_report
from policy.trace_html import write_trace_file, write_trace_html
from tests.reports.browser import layout_problems, open_at, open_page, scrolled_into_view
from tests.reports.episodes import scripted_run
from tests.reports.runs import knowgen_run

pytestmark = pytest.mark.slow
pytest.importorskip("playwright.sync_api")
WIDTHS = (1440, 390)


def _trace() -> dict[str, Any]:
    """A scripted episode's trace, run on its own thread: Playwright's sync API holds this thread's loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, scripted_run).result().trace(include_image_data=True)


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("layouts")
    trace = _trace()
    dirs = []
    for name, seed, failed in (("baseline-with-a-long-name", 0, {2, 3}), ("search", 5, {4})):
        run_dir, items, summary, run = knowgen_run(
            root, 24, name=name, seed=seed, failed=frozenset(failed), hostile=frozenset({1}), traces={0: trace}
        )
        write_report(run_dir, summary, run, items)
        dirs.append(run_dir)
    compare_runs(dirs, root / "cmp")
    rollouts = root / "rollouts.jsonl"
    rows = [{"input": f"user\nprompt {n}\nassistant\n", "output": "no tags", "score": n / 10} for n in range(12)]
    rollouts.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return {
        "trace": write_trace_html(trace, root / "trace.html"),
        "report": dirs[0] / "report.html",
        "compare": root / "cmp" / "compare.html",
        "item": dirs[0] / "traces" / "kg-0000.html",
        "rollouts": write_trace_file(rollouts, root / "rollouts.html")[0],
    }


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ["trace", "report", "compare", "item", "rollouts"])
def test_the_page_holds_its_layout(browser: Any, pages: dict[str, Path], name: str, width: int) -> None:
    opened = open_page(browser, pages[name], width=width, height=900)
    assert opened.errors == [] and opened.network == []
    assert opened.undecoded_images() == []
    assert layout_problems(opened) == []
    opened.page.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_deep_links_land_on_their_card(browser: Any, pages: dict[str, Path], width: int) -> None:
    for name, item in (("report", "kg-0017"), ("compare", "kg-0011")):
        opened = open_at(browser, pages[name], item, width=width)
        assert scrolled_into_view(opened, item), (name, item)
        opened.page.close()


def test_an_item_trace_shows_its_verdict_and_links_back(browser: Any, pages: dict[str, Path]) -> None:
    opened = open_page(browser, pages["item"], width=1440)
    page = opened.page
    verdict = page.locator("#verdict")
    assert verdict.locator("img").count() == 2  # the generated image and the ground truth
    assert "Judge's verdict" in verdict.inner_text() and "visual correctness" in verdict.inner_text()
    assert opened.undecoded_images() == []
    verdict.locator("a", has_text="back to this item's card").click()
    page.wait_for_load_state("load")
    page.wait_for_timeout(300)
    assert page.url.endswith("/report.html#kg-0000")
    assert scrolled_into_view(opened, "kg-0000") and opened.errors == []
    page.close()


def test_the_rollout_page_sorts_and_filters(browser: Any, pages: dict[str, Path]) -> None:
    opened = open_page(browser, pages["rollouts"], width=390)
    page = opened.page
    assert "episodes 12" in page.inner_text(".panel >> nth=0")
    page.select_option("[data-sort]", "score:desc")
    scores = [float(s) for s in opened.visible("details.episode", "data-score")]
    assert scores == sorted(scores, reverse=True) and len(scores) == 12
    page.fill("[data-search]", "prompt 3")
    page.wait_for_timeout(400)
    assert page.inner_text("[data-shown]") == "1 of 12 shown"
    page.close()
