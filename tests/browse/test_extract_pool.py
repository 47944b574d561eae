"""Extraction runs in worker processes: a killed or hung worker fails only its own call, the next call gets a
fresh worker, and every document is capped in pages and characters. PDF bombs get a clear refusal."""

from __future__ import annotations

import os
import subprocess
import sys

import anyio
import psutil
import pytest

from safe_io.fetch_protocol import FetchedPage
from search_tools.extract import ExtractionError, extract, extract_html
from search_tools.extract_pool import ExtractionPool, ExtractLimits
from tests.browse import content

pytestmark = pytest.mark.anyio


def page(body: bytes, media_type: str = "text/html", url: str = "https://example.org/doc") -> FetchedPage:
    return FetchedPage(url=url, status=200, media_type=media_type, charset="utf-8", body=body)


def heavy_html(paragraphs: int = 40_000) -> bytes:
    """A few megabytes of nested markup: seconds of trafilatura work on any machine."""
    row = (
        "<div><section><p>Harbour log entry {i}: the tide turned at the {i}th bell, fog over the quay.</p>"
        "</section></div>"
    )
    body = "".join(row.format(i=i) for i in range(paragraphs))
    return f"<html><head><title>Heavy</title></head><body><article>{body}</article></body></html>".encode()


def workers() -> list[psutil.Process]:
    """This process's extraction workers (anyio's process pool)."""
    found = []
    for child in psutil.Process().children():
        try:
            if "anyio.to_process" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


async def running_worker(not_in: set[int] = frozenset()) -> psutil.Process:  # type: ignore[assignment]
    for _ in range(600):
        live = [w for w in workers() if w.pid not in not_in]
        if live:
            return live[0]
        await anyio.sleep(0.05)
    raise AssertionError("no extraction worker appeared")


def gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_a_worker_killed_mid_extraction_fails_that_call_only_and_is_replaced() -> None:
    pool = ExtractionPool(ExtractLimits(timeout_s=120.0, workers=1))
    small = page(content.article_html().encode())
    assert (await extract(small, pool)).title == "The Bellmoor Lighthouse"  # the worker is up and idle
    worker = await running_worker()
    outcome: dict[str, BaseException] = {}

    async def big() -> None:
        try:
            await extract(page(heavy_html(), url="https://example.org/heavy"), pool)
        except ExtractionError as exc:
            outcome["error"] = exc

    async with anyio.create_task_group() as tg:
        tg.start_soon(big)
        await anyio.sleep(0.3)  # the heavy page is being parsed in the worker now
        worker.kill()

    assert "crashed while reading https://example.org/heavy" in str(outcome["error"])
    assert gone(worker)
    # The pool goes on with a fresh worker; this process was never touched.
    again = await extract(small, pool)
    assert again.title == "The Bellmoor Lighthouse"
    assert worker.pid not in {w.pid for w in workers()}


async def test_a_hung_extraction_is_stopped_at_its_deadline_and_the_next_call_works() -> None:
    pool = ExtractionPool(ExtractLimits(timeout_s=0.5, workers=1))
    warm = ExtractionPool(ExtractLimits(timeout_s=120.0, workers=1))
    small = page(content.article_html().encode())
    await extract(small, warm)  # start a worker without the short deadline (imports take a while)
    before = {w.pid for w in workers()}
    with anyio.fail_after(3 * 120.0):  # "ends at its deadline" versus "never ends", not a speed test
        with pytest.raises(ExtractionError, match=r"took longer than 0.5 s and was stopped"):
            await extract(page(heavy_html(), url="https://example.org/heavy"), pool)
    assert not before & {w.pid for w in workers() if not gone(w)}  # the worker that ran it was killed
    assert (await extract(small, warm)).title == "The Bellmoor Lighthouse"


async def test_a_long_pdf_is_read_up_to_the_page_cap_and_says_so() -> None:
    doc = content.pdf_document([content.text_stream([f"Keeper's log, day {n}"]) for n in range(1, 31)])
    pool = ExtractionPool(ExtractLimits(max_pdf_pages=5))
    result = await extract(page(doc, "application/pdf"), pool)
    assert "day 5" in result.text and "day 6" not in result.text
    assert result.text.endswith("[read 5 of 30 pages]")


async def test_text_is_cut_at_the_character_cap_and_says_so() -> None:
    pool = ExtractionPool(ExtractLimits(max_chars=2_000))
    result = await extract(page(content.long_text().encode(), "text/plain"), pool)
    assert len(result.text) < 2_100 and "[text cut at" in result.text
    html = extract_html(content.article_html(), "https://example.org/a", max_chars=200)
    assert len(html.text) < 300 and "[text cut at" in html.text


async def test_a_pdf_decompression_bomb_is_a_clear_refusal() -> None:
    # One page whose content stream inflates to 100 MB of spaces (pypdf stops at its 75 MB limit).
    bomb = content.pdf_document([b" " * (100 * 1024 * 1024)], flate=True)
    assert len(bomb) < 1024 * 1024
    with pytest.raises(ExtractionError, match="decompression bomb") as caught:
        await extract(page(bomb, "application/pdf", url="https://example.org/bomb.pdf"))
    assert "https://example.org/bomb.pdf" in str(caught.value)
    assert "LimitReachedError" not in str(caught.value)


async def test_a_document_needing_too_much_memory_fails_alone_in_its_worker() -> None:
    pool = ExtractionPool(ExtractLimits(memory_bytes=512 * 1024 * 1024))
    with pytest.raises(MemoryError):  # a gigabyte allocated in the worker, over its 512 MiB address space
        await pool.run(bytearray, 1024 * 1024 * 1024, what="a test allocation")
    assert (await extract(page(content.article_html().encode()), pool)).title == "The Bellmoor Lighthouse"


@pytest.mark.parametrize("cores", [1, 2, 3])
def test_the_default_worker_count_leaves_a_core_to_the_server(cores: int) -> None:
    """0 workers: the cores this process may use, less one for the server process, at least one."""
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(available) < cores:
        pytest.skip(f"needs {cores} cores this process may use")
    code = (
        f"import os; os.sched_setaffinity(0, {set(available[:cores])!r}); "
        "from search_tools.extract_pool import ExtractLimits; "
        "print(ExtractLimits().worker_count, ExtractLimits(workers=5).worker_count)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(max(1, cores - 1)), "5"]
