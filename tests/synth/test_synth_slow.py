"""The slow checks: ``synth smoke`` end to end, its review page in Chromium, its SFT rows in verl's dataset,
and ground truths drawn by the tiny diffusers Qwen-Image through the tool server."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gen_searcher_core.commands import build_app
from synth.journal import RunFolder
from synth.run import run_synth
from tests.synth.conftest import Fakes, settings_for, write_jsonl
from tests.synth.scenario import GOOD

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    work = tmp_path_factory.mktemp("synth-smoke")
    result = CliRunner().invoke(build_app(), ["synth", "smoke", "--work", str(work)])
    assert result.exit_code == 0, result.output
    return work, result.output


def test_synth_smoke_prints_a_funnel_with_every_stage(smoke: tuple[Path, str]) -> None:
    work, output = smoke
    for stage in ("prompts", "gate", "trajectories", "ground_truth", "judge", "select", "calibrate", "split", "export"):
        assert stage in output
    assert "answerable without search" in output and "duplicate" in output
    assert "exported sft:" in output and (work / "export" / "sft.parquet").is_file()


def test_the_exported_sft_rows_load_in_verls_dataset(smoke: tuple[Path, str], tmp_path: Path) -> None:
    from omegaconf import OmegaConf
    from verl.utils import hf_processor, hf_tokenizer
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    from tests.verl.conftest import build_tiny_vl

    folder = build_tiny_vl(tmp_path / "tiny-vl")
    tokenizer, processor = hf_tokenizer(str(folder)), hf_processor(str(folder))
    config = OmegaConf.create({"max_length": 32768, "pad_mode": "no_padding", "truncation": "error"})
    dataset = MultiTurnSFTDataset(str(smoke[0] / "export" / "sft.parquet"), tokenizer, config, processor=processor)
    assert len(dataset) > 0
    row = dataset[0]
    trained = tokenizer.decode(row["input_ids"][row["loss_mask"].bool()])
    assert "<answer>" in trained and "image_search" in trained
    assert row["multi_modal_inputs"]["image_grid_thw"].shape[0] >= 1


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from tests.reports.browser import LAUNCH_ARGS, chromium_path

    path = chromium_path()
    if path is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, headless=True, args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def test_the_review_page_in_chromium(smoke: tuple[Path, str], browser: Any) -> None:
    from tests.reports.browser import open_page

    opened = open_page(browser, smoke[0] / "export" / "review.html")
    assert opened.errors == [] and opened.network == [] and opened.undecoded_images() == []
    page = opened.page
    assert len(opened.visible("article.card", "data-id")) == 12
    page.select_option("[data-filter=status]", "dropped")
    dropped = opened.visible("article.card", "data-id")
    assert "smoke-08" in dropped and "smoke-10" in dropped  # answerable closed-book, duplicate
    page.select_option("[data-filter=status]", "")
    assert len(opened.visible("article.card", "data-id")) == 12


def test_ground_truths_drawn_by_the_tiny_diffusers_renderer(
    fakes: Fakes, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    from PIL import Image
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    from gen_searcher_core.loopback import serve_in_thread
    from search_tools.index import build_index
    from tests.support.tiny_qwen_image import build_tiny_qwen_image, build_tiny_qwen_image_edit
    from tests.support.tool_server import run_tool_server
    from verl_recipes.cpu.smoke_servers import write_web

    work = tmp_path_factory.mktemp("synth-diffusers")
    web = write_web(work / "web")
    models = work / "models"
    render = {
        "backend": "diffusers",
        "model": str(build_tiny_qwen_image(models)),
        "edit_model": str(build_tiny_qwen_image_edit(models)),
        "device": "cpu",
        "steps": 2,
    }
    with serve_in_thread(Starlette(routes=[Mount("/", StaticFiles(directory=web))])) as web_url:
        build_index(web, work / "index.db", base_url=web_url + "/")
        with run_tool_server(work, index=work / "index.db", render=render) as tools:
            rows = [{"id": "d0", "prompt": GOOD[0][0], "category": GOOD[0][1], "subjects": [GOOD[0][2]]}]
            prompts = write_jsonl(tmp_path / "p.jsonl", rows)
            settings = settings_for(fakes, tools.url, truth={"width": 64, "height": 64}, trajectories={"rollouts": 1})
            settings = settings.model_copy(update={"policy": settings.policy.model_copy(update={"url": None})})
            folder = RunFolder(tmp_path / "run")
            with ThreadPoolExecutor(1) as pool:  # its own thread: Playwright's sync API may hold this one's loop
                result = pool.submit(run_synth, folder, settings, [prompts], progress=False).result()
    assert result.failure is None
    outcome = result.outcomes[0]
    assert outcome.truth is not None and outcome.split is not None
    with Image.open(folder.root / outcome.truth["data"]["path"]) as image:
        assert image.size == (64, 64)
    assert fakes.count()["images"] == 0  # every render came from diffusers
    assert result.costs["renders"] == 2  # the ground truth and the one rollout's plan


def test_export_measures_sft_rows_with_the_policys_processor(smoke: tuple[Path, str], tmp_path: Path) -> None:
    from synth.export import ExportError, export
    from synth.manifest import read_manifest
    from synth.run import reevaluate
    from tests.verl.conftest import build_tiny_vl

    processor = build_tiny_vl(tmp_path / "tiny-vl")
    folder = RunFolder(smoke[0] / "run")
    outcomes, _ = reevaluate(folder)
    counts = export(folder, outcomes, tmp_path / "fits", read_manifest(folder), processor_from=processor)
    assert counts["sft"] > 0
    with pytest.raises(ExportError, match="longer than max_length"):
        export(folder, outcomes, tmp_path / "short", read_manifest(folder), processor_from=processor, max_length=64)
