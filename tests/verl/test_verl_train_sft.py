"""SFT end to end: `gen-searcher data sft`, then `gen-searcher train sft --device cpu` (verl under torchrun).

A tiny random Qwen2-VL (built here, never downloaded) trains for 2 steps on CPU through
:mod:`verl_recipes.cpu.cpu_platform`; the checkpoint's Hugging Face weights load back with
``from_pretrained``, the vision tower is unchanged (frozen as configured) and the language
model moved; the loss mask covers exactly the assistant turns of the chat template.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.verl.conftest import build_tiny_vl_model, png_bytes
from tests.verl.test_verl_data import sft_record

pytestmark = pytest.mark.slow

STEPS = 2


def weights(model: Any) -> dict[str, Any]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def same(before: Any, after: Any) -> bool:
    """Equal at the precision the checkpoint was written in (verl may save bf16)."""
    import torch

    return bool(torch.equal(before.to(after.dtype), after))


@pytest.mark.timeout(900)
def test_sft_trains_two_steps_on_cpu_and_ends_with_hf_weights(tmp_path: Path) -> None:
    from omegaconf import OmegaConf
    from transformers import AutoProcessor, AutoTokenizer, Qwen2VLForConditionalGeneration
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    from gen_searcher_core.commands import build_app
    from verl_recipes.verl_ext.freeze_vision import vision_parameters

    model_dir = build_tiny_vl_model(tmp_path / "model")
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes(png_bytes((200, 40, 40)))
    (images / "b.png").write_bytes(png_bytes((40, 40, 200)))
    src = tmp_path / "sft.jsonl"
    src.write_text("\n".join(json.dumps(sft_record(["a.png", "b.png"])) for _ in range(2 * STEPS)))
    data = tmp_path / "sft.parquet"
    converted = CliRunner().invoke(
        build_app(),
        ["data", "sft", str(src), "--images-root", str(images), "--out", str(data), "--processor-from", str(model_dir)],
    )
    assert converted.exit_code == 0, converted.output

    # The loss mask, checked against the chat template: exactly the assistant turns are trained.
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    processor = AutoProcessor.from_pretrained(model_dir)
    config = OmegaConf.create({"max_length": 4096, "pad_mode": "no_padding", "truncation": "error"})
    item = MultiTurnSFTDataset(str(data), tokenizer, config, processor=processor)[0]
    ids, mask = item["input_ids"].tolist(), item["loss_mask"].tolist()
    spans, current = [], []
    for token, trained in zip(ids, mask, strict=True):
        if trained:
            current.append(token)
        elif current:
            spans.append(current)
            current = []
    if current:
        spans.append(current)
    assistant = [m["content"] for m in sft_record([])["messages"] if m["role"] == "assistant"]
    assert [tokenizer.decode(span).removesuffix("\n") for span in spans] == [f"{c}<|im_end|>" for c in assistant]

    before = weights(Qwen2VLForConditionalGeneration.from_pretrained(model_dir))
    checkpoints = tmp_path / "checkpoints"
    command = [
        str(Path(sys.executable).with_name("gen-searcher")),
        "train",
        "sft",
        "--device",
        "cpu",
        f"data.train_files={data}",
        f"model.path={model_dir}",
        "data.train_batch_size=2",
        "data.max_length=4096",
        "data.max_token_len_per_gpu=4096",
        f"trainer.total_training_steps={STEPS}",
        f"trainer.save_freq={STEPS}",
        f"trainer.default_local_dir={checkpoints}",
        "model.enable_gradient_checkpointing=false",
        "optim.lr=1e-2",
        "optim.lr_warmup_steps_ratio=0",
        "optim.lr_scheduler_type=constant",
    ]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    losses = [float(x) for x in re.findall(r"train/loss:([-+0-9.eE]+|nan|inf)", output)]
    assert len(losses) == STEPS and all(math.isfinite(x) for x in losses), losses

    hf = checkpoints / f"global_step_{STEPS}" / "huggingface"
    trained = Qwen2VLForConditionalGeneration.from_pretrained(hf)
    assert AutoProcessor.from_pretrained(hf).tokenizer.chat_template == processor.tokenizer.chat_template
    after = weights(trained)
    vision = {name for name, _ in vision_parameters(trained)}
    assert vision and all(same(before[name], after[name]) for name in vision)  # frozen
    moved = [name for name in after if name not in vision and not same(before[name], after[name])]
    assert moved  # the language model trained
