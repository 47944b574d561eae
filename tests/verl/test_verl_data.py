"""Data converters: published SFT/RL data -> parquet that verl's own datasets load; bad rows are refused loudly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.verl.conftest import png_bytes

pytestmark = pytest.mark.slow

ANSWER = '<think>done</think><answer>{"gen_prompt": "A bridge", "reference_images": [{"img_id": "IMG_001", "note": "n"}]}</answer>'  # noqa: E501 - protocol text kept verbatim


def sft_record(images: list[str]) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "published system prompt"},
            {"role": "user", "content": "Draw the Quorvath Bridge. <image>"},
            {
                "role": "assistant",
                "content": '<think>look</think><tool_call>{"name": "image_search", "arguments": {"query": "Quorvath"}}</tool_call>',  # noqa: E501 - protocol text kept verbatim
            },
            {"role": "user", "content": "<tool_response>\nIMG_001: bridge TOOLTEXT\n<image>\n</tool_response>"},
            {"role": "assistant", "content": ANSWER},
        ],
        "images": images,
    }


@pytest.fixture
def sft_input(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "imgs"
    root.mkdir()
    (root / "a.png").write_bytes(png_bytes((200, 40, 40)))
    (root / "b.png").write_bytes(png_bytes((40, 40, 200)))
    (root / "not-image.png").write_bytes(b"hello")
    bad_answer = sft_record(["a.png", "b.png"])
    bad_answer["messages"][-1]["content"] = "<think>no answer</think>"
    bad_role = sft_record(["a.png", "b.png"])
    bad_role["messages"][1]["role"] = "narrator"
    lines = [
        json.dumps(sft_record(["a.png", "b.png"])),
        json.dumps(sft_record(["a.png", "missing.png"])),
        json.dumps(sft_record(["a.png"])),
        json.dumps(sft_record(["a.png", "not-image.png"])),
        json.dumps(bad_answer),
        json.dumps(bad_role),
        "{not json",
        json.dumps(sft_record([str(root / "b.png"), "a.png"])),
    ]
    src = tmp_path / "sft.jsonl"
    src.write_text("\n".join(lines))
    return src, root


def test_sft_converter_rejects_bad_rows_and_verl_loads_the_rest(
    sft_input: tuple[Path, Path], tmp_path: Path, tiny_vl: Any
) -> None:
    from omegaconf import OmegaConf
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    from policy.prompts import build_system_prompt
    from verl_recipes.data import convert_sft

    src, root = sft_input
    out = tmp_path / "sft.parquet"
    report = convert_sft(src, root, out)
    assert (report.total, report.kept, report.skipped) == (8, 2, 6)
    assert report.reasons == {
        "image file missing": 1,
        "<image> count differs from images": 1,
        "image file is not an image": 1,
        "final turn has no <answer>": 1,
        "unknown role 'narrator'": 1,
        "not JSON": 1,
    }
    assert "row 1: image file missing" in report.summary()

    config = OmegaConf.create({"max_length": 4096, "pad_mode": "no_padding", "truncation": "error"})
    dataset = MultiTurnSFTDataset(str(out), tiny_vl.tokenizer, config, processor=tiny_vl.processor)
    assert len(dataset) == 2
    item = dataset[0]
    ids, loss_mask = item["input_ids"], item["loss_mask"]
    grid = item["multi_modal_inputs"]["image_grid_thw"]
    assert grid.shape[0] == 2  # both images, in order
    text = tiny_vl.tokenizer.decode(ids)
    assert build_system_prompt() in text and "published system prompt" not in text
    assert text.count("<|vision_start|>") == 2
    trained = tiny_vl.tokenizer.decode(ids[loss_mask.bool()])
    assert ANSWER in trained and "image_search" in trained
    assert "TOOLTEXT" not in trained and "Quorvath Bridge." not in trained  # user and tool turns carry no loss


def test_sft_rows_are_written_in_chunks_that_verl_reads_back(tmp_path: Path, tiny_vl: Any) -> None:
    """Chunks of one row each, the first without images: one schema for all, every row loads."""
    from omegaconf import OmegaConf
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    from verl_recipes.data import convert_sft

    (tmp_path / "a.png").write_bytes(png_bytes((200, 40, 40)))
    text_only = sft_record([])
    text_only["messages"][1]["content"] = "Draw the Quorvath Bridge."
    text_only["messages"][3]["content"] = "<tool_response>\nno images\n</tool_response>"
    records = [text_only, sft_record(["a.png", "a.png"]), text_only]
    src = tmp_path / "sft.json"
    src.write_text(json.dumps(records))
    out = tmp_path / "sft.parquet"
    report = convert_sft(src, tmp_path, out, chunk_rows=1)
    assert (report.kept, report.skipped) == (3, 0) and not (tmp_path / "sft.parquet.tmp").exists()
    config = OmegaConf.create({"max_length": 4096, "pad_mode": "no_padding", "truncation": "error"})
    dataset = MultiTurnSFTDataset(str(out), tiny_vl.tokenizer, config, processor=tiny_vl.processor)
    assert len(dataset) == 3
    assert dataset[1]["multi_modal_inputs"]["image_grid_thw"].shape[0] == 2
    assert "<|vision_start|>" not in tiny_vl.tokenizer.decode(dataset[2]["input_ids"])


def test_sft_converter_can_keep_the_published_system_prompt(sft_input: tuple[Path, Path], tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from verl_recipes.data import convert_sft

    src, root = sft_input
    out = tmp_path / "keep.parquet"
    convert_sft(src, root, out, system_prompt="keep")
    rows = pq.read_table(out).to_pylist()
    assert rows[0]["messages"][0] == {"role": "system", "content": "published system prompt"}
    assert rows[0]["images"][0]["bytes"] == (root / "a.png").read_bytes()


def test_rl_converter_and_verl_rl_dataset(tmp_path: Path, tiny_vl: Any) -> None:
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset

    from policy.prompts import build_system_prompt
    from verl_recipes.data import convert_rl

    root = tmp_path / "gt"
    root.mkdir()
    (root / "k1.png").write_bytes(png_bytes((10, 200, 10)))
    (root / "broken.png").write_bytes(b"\x89PNG garbage")
    records = [
        {"id": "k1", "prompt": "Draw the Quorvath Bridge.", "gt_image": "k1.png", "meta": {"category": "architecture"}},
        {"id": "k2", "prompt": "  ", "gt_image": "k1.png"},
        {"id": "k3", "prompt": "Draw a cat.", "gt_image": "nope.png"},
        {"id": "k1", "prompt": "Same id again.", "gt_image": "k1.png"},
        {"prompt": "No id.", "gt_image": "k1.png"},
        {"id": "k5", "prompt": "Broken image.", "gt_image": "broken.png"},
        {"id": 6, "prompt": "Draw the lantern festival.", "gt_image": str(root / "k1.png")},
        "just a string",
    ]
    src = tmp_path / "rl.json"
    src.write_text(json.dumps(records))
    out = tmp_path / "rl.parquet"
    report = convert_rl(src, root, out)
    assert (report.kept, report.skipped) == (2, 6)
    assert report.reasons == {
        "missing prompt": 1,
        "image file missing": 1,
        "duplicate id": 1,
        "missing id": 1,
        "image file is not an image": 1,
        "record is not an object": 1,
    }

    config = OmegaConf.create(
        {
            "max_prompt_length": 8192,
            "prompt_key": "prompt",
            "filter_overlong_prompts": True,
            "filter_overlong_prompts_workers": 1,
        }
    )
    dataset = RLHFDataset(str(out), tiny_vl.tokenizer, config, processor=tiny_vl.processor)
    assert len(dataset) == 2
    row = dataset[0]
    assert row["agent_name"] == "gen_searcher" and row["data_source"] == "knowgen"
    assert row["raw_prompt"][0] == {"role": "system", "content": build_system_prompt()}
    assert row["raw_prompt"][1]["content"] == "Draw the Quorvath Bridge."
    assert row["reward_model"]["ground_truth"] == str((root / "k1.png").resolve())
    assert row["extra_info"]["prompt"] == "Draw the Quorvath Bridge." and row["extra_info"]["id"] == "k1"
    assert json.loads(row["extra_info"]["meta"]) == {"meta": {"category": "architecture"}}
    assert dataset[1]["extra_info"]["id"] == "6" and dataset[1]["extra_info"]["index"] == 6


def test_cli_reports_and_fails_when_nothing_is_usable(tmp_path: Path) -> None:
    from gen_searcher_core.commands import build_app

    app = build_app()

    src = tmp_path / "rl.json"
    src.write_text(json.dumps([{"id": "x", "prompt": "p", "gt_image": "missing.png"}]))
    result = CliRunner().invoke(
        app, ["data", "rl", str(src), "--images-root", str(tmp_path), "--out", str(tmp_path / "o.parquet")]
    )
    assert result.exit_code != 0
    assert "no usable rows" in result.output and "image file missing" in result.output
    assert not (tmp_path / "o.parquet").exists()

    (tmp_path / "ok.png").write_bytes(png_bytes((1, 2, 3)))
    src.write_text(json.dumps([{"id": "x", "prompt": "p", "gt_image": "ok.png"}, {"id": "y"}]))
    result = CliRunner().invoke(
        app, ["data", "rl", str(src), "--images-root", str(tmp_path), "--out", str(tmp_path / "o.parquet")]
    )
    assert result.exit_code == 0, result.output
    assert "1 of 2 rows kept, 1 skipped" in result.output and "missing prompt" in result.output


def late_image_record() -> dict[str, Any]:
    """A trajectory whose second image sits behind a long tool response: past a cutoff that its first turns fit."""
    record = sft_record(["a.png", "b.png"])
    filler = " ".join(["The Quorvath Bridge is a copper-green suspension bridge in Velmora."] * 40)
    record["messages"][3]["content"] = f"<tool_response>\n{filler}\nIMG_001\n<image>\n</tool_response>"
    return record


@pytest.mark.parametrize("over_length", ["drop", "split"])
def test_a_row_past_the_cutoff_is_measured_with_its_images_and_dropped_or_split(
    tmp_path: Path, tiny_vl: Any, over_length: str
) -> None:
    from omegaconf import OmegaConf
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    from gen_searcher_core.commands import build_app

    (tmp_path / "a.png").write_bytes(png_bytes((200, 40, 40)))
    (tmp_path / "b.png").write_bytes(png_bytes((40, 40, 200)))
    short = sft_record(["a.png", "b.png"])
    src = tmp_path / "sft.json"
    src.write_text(json.dumps([short, late_image_record()]))
    # The cutoff: the short row and the long row's first turns fit, its late image does not.
    full = tmp_path / "full.parquet"
    args = ["data", "sft", str(src), "--images-root", str(tmp_path), "--processor-from", str(tiny_vl.path)]
    assert CliRunner().invoke(build_app(), [*args, "--out", str(full), "--max-length", "100000"]).exit_code == 0
    loose = OmegaConf.create({"max_length": 100000, "pad_mode": "no_padding", "truncation": "error"})
    lengths = [
        len(row["input_ids"]) for row in MultiTurnSFTDataset(str(full), tiny_vl.tokenizer, loose, tiny_vl.processor)
    ]
    assert lengths[1] > lengths[0] + 200
    cutoff = lengths[0] + 20

    out = tmp_path / "sft.parquet"
    result = CliRunner().invoke(
        build_app(), [*args, "--out", str(out), "--max-length", str(cutoff), "--over-length", over_length]
    )
    assert result.exit_code == 0, result.output
    strict = OmegaConf.create({"max_length": cutoff, "pad_mode": "no_padding", "truncation": "error"})
    dataset = MultiTurnSFTDataset(str(out), tiny_vl.tokenizer, strict, processor=tiny_vl.processor)
    if over_length == "drop":
        assert "1 of 2 rows kept, 1 skipped" in result.output
        assert f"longer than max_length ({cutoff} tokens)" in result.output
        assert len(dataset) == 1
        return
    assert "2 of 2 rows kept, 0 skipped" in result.output and "1  kept, cut to the last assistant turn" in result.output
    assert len(dataset) == 2
    cut = dataset[1]  # every row loads with truncation: error, so verl never cuts one
    assert len(cut["input_ids"]) <= cutoff
    assert cut["multi_modal_inputs"]["image_grid_thw"].shape[0] == 1  # the early image, not the late one
    text = tiny_vl.tokenizer.decode(cut["input_ids"])
    assert "image_search" in text and "Velmora" not in text


def test_data_sft_needs_the_processor_to_measure_rows(sft_input: tuple[Path, Path], tmp_path: Path) -> None:
    from gen_searcher_core.commands import build_app

    src, root = sft_input
    args = ["data", "sft", str(src), "--images-root", str(root), "--out", str(tmp_path / "o.parquet")]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 2 and "--processor-from DIR is needed" in result.output
    assert CliRunner().invoke(build_app(), [*args, "--max-length", "0"]).exit_code == 0
