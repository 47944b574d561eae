"""`gen-searcher train smoke` names the component that failed and skips what depends on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.slow


def test_smoke_reports_the_failed_component_and_exits_1(tmp_path: Path) -> None:
    from gen_searcher_core.commands import build_app

    not_a_processor = tmp_path / "empty"
    not_a_processor.mkdir()
    result = CliRunner().invoke(
        build_app(),
        ["train", "smoke", "--processor-from", str(not_a_processor), "--work", str(tmp_path / "w"), "--device", "cpu"],
    )
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("FAIL  tiny model")
    assert [line.split()[:2] for line in lines[1:]] == [
        ["SKIP", "sft"],
        ["SKIP", "sft"],
        ["SKIP", "hf"],
        ["SKIP", "grpo"],
    ]


@pytest.mark.parametrize(
    ("family", "model_class"),
    [
        ("qwen3_vl", "Qwen3VLForConditionalGeneration"),
        ("qwen2_5_vl", "Qwen2_5_VLForConditionalGeneration"),
        ("qwen2_vl", "Qwen2VLForConditionalGeneration"),
    ],
)
def test_the_tiny_model_is_of_the_processor_folders_family(tmp_path: Path, family: str, model_class: str) -> None:
    """A processor folder saved by a user (no model inside) gets a tiny model of its own architecture."""
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from tests.verl.conftest import build_processor_folder
    from verl_recipes.cpu.smoke import build_tiny_policy

    model_dir = build_tiny_policy(build_processor_folder(family, tmp_path / "processor"), tmp_path / "model")
    model = AutoModelForImageTextToText.from_pretrained(model_dir)
    processor = AutoProcessor.from_pretrained(model_dir)
    assert type(model).__name__ == model_class and model.config.architectures == [model_class]
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Draw it."}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[Image.new("RGB", (64, 64), (200, 40, 40))], return_tensors="pt")
    with torch.no_grad():
        assert model(**inputs).logits.shape[-1] == len(processor.tokenizer)


def test_a_processor_of_another_family_is_refused(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from tests.verl.conftest import build_tiny_vl
    from verl_recipes.cpu.smoke import policy_family

    with pytest.raises(ValueError, match="not a processor of a family the recipe trains"):
        policy_family(AutoTokenizer.from_pretrained(build_tiny_vl(tmp_path / "vl")))


@pytest.mark.timeout(2400)
@pytest.mark.parametrize(
    ("family", "model_class"),
    [
        ("qwen3_vl", "Qwen3VLForConditionalGeneration"),
        ("qwen2_5_vl", "Qwen2_5_VLForConditionalGeneration"),
        ("qwen2_vl", "Qwen2VLForConditionalGeneration"),
    ],
)
def test_smoke_passes_on_cpu_for_a_processor_folder_of_each_family(
    tmp_path: Path, family: str, model_class: str
) -> None:
    """The documented use, for each family the recipe trains: every step passes, no episode is dropped, and the
    GRPO step's judged answers give the actor a non-zero gradient."""
    from gen_searcher_core.commands import build_app
    from tests.verl.conftest import build_processor_folder
    from verl_recipes.cpu.smoke import step_metrics

    folder = build_processor_folder(family, tmp_path / f"{family}-processor")
    work = tmp_path / "w"
    result = CliRunner().invoke(
        build_app(), ["train", "smoke", "--processor-from", str(folder), "--work", str(work), "--device", "cpu"]
    )
    grpo_log = (work / "grpo.log").read_text(errors="replace") if (work / "grpo.log").exists() else ""
    assert result.exit_code == 0, result.output + grpo_log[-4000:]
    # stdout alone: progress bars on stderr end without a newline and would glue onto the first line
    reported = [line.split()[:2] for line in result.stdout.splitlines() if line.startswith(("PASS", "FAIL", "SKIP"))]
    assert reported == [
        ["PASS", "tiny"],
        ["PASS", "sft"],
        ["PASS", "sft"],
        ["PASS", "hf"],
        ["PASS", "grpo"],
    ]
    assert model_class in result.output
    # Every answer was rendered and judged (none masked or failed), and the two rollouts of a prompt scored
    # differently: the photo of the bridge against the photo of the lanterns.
    assert step_metrics(grpo_log).get("actor/grad_norm", 0.0) > 0
    tools_log = (work / "tools" / "tool-server.log").read_text(errors="replace")
    assert tools_log.count("tool render ok") == 4, tools_log[-3000:]


@pytest.mark.timeout(1800)
def test_the_smokes_grpo_step_fails_on_a_dropped_episode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One rollout raises: verl would train on the rest; the smoke's step fails and names the drop."""
    from tests.verl.conftest import build_processor_folder
    from verl_recipes.cpu import smoke

    model = smoke.build_tiny_policy(build_processor_folder("qwen2_vl", tmp_path / "processor"), tmp_path / "model")
    scripted = smoke.smoke_script

    def with_a_fault(prompts: int) -> dict[str, Any]:
        script = scripted(prompts)
        return {**script, "rules": [{"when": "Quorvath Bridge 1.", "error": "the rollout blew up"}, *script["rules"]]}

    monkeypatch.setattr(smoke, "smoke_script", with_a_fault)
    with pytest.raises(RuntimeError, match=r"train grpo exited 1 .*EpisodesDropped: 2 training episode\(s\) raised"):
        smoke.grpo_step(tmp_path / "w", model, "cpu")
