"""Two GRPO steps with validation and checkpoints, then a resumed third: ``gen-searcher train grpo --device cpu``.

verl's own ``main_ppo`` (v1 trainer, FSDP actor, the ``gen_searcher`` agent loop) runs as in
``test_verl_train_grpo.py``, kept as small as verl allows: two prompts, two rollouts each, one
validation prompt. Every episode searches the real tool server (local index, no renderer) and
answers; the reward renders through a recording MCP server (a fixed PNG) and a scripted judge
scores it, so each group holds a better and a worse answer and the update has a signal.

Run 1 trains steps 1-2, validating and saving a checkpoint after each. Run 2 is the same command
with one more step: verl's ``resume_mode: auto`` (the recipe keeps verl's default) finds
``latest_checkpointed_iteration.txt``, loads ``global_step_2`` (weights, optimizer, dataloader)
and trains step 3 only.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.support.scripted_judge import ScriptedJudge, kscore_reply, serve_judge
from tests.verl.conftest import build_tiny_vl_model, png_bytes

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TOOL_CALL = (
    '<think>look</think><tool_call>{"name": "image_search", '
    '"arguments": {"query": "Quorvath Bridge", "top_k": 1}}</tool_call>'
)
IMAGE_SCORE = 0.6  # kscore_reply(1.0, 0.5, 0.0, 1.0, na=True): 0.1 + 0.2 + 0.4 * 0.5 + 0.1
TEXT_SCORES = {"ALPHA": 1.0, "BETA": 0.25}
TEXT_WEIGHT = 0.5
VAL_SCORE = (1 - TEXT_WEIGHT) * IMAGE_SCORE + TEXT_WEIGHT * TEXT_SCORES["ALPHA"]
VAL_METRIC = "val-core/knowgen/reward/mean@1"  # verl: val-core/<data_source>/reward/mean@<val n>
DROPPED = "training/rollout_failure/dropped_episodes"


def answer(marker: str) -> str:
    plan = {"gen_prompt": f"The Quorvath Bridge {marker}", "reference_images": [{"img_id": "IMG_001", "note": marker}]}
    return f"<think>ok</think><answer>{json.dumps(plan)}</answer>"


# One rule per prompt: round-robin within a rule gives each group of two one ALPHA and one BETA.
SCRIPT = {
    "turns": [[TOOL_CALL], [answer("ALPHA")]],
    "rules": [
        {"when": f"Bridge {i}.", "turns": [[TOOL_CALL], [answer("ALPHA"), answer("BETA")]]} for i in (0, 1)
    ],  # the validation prompt (Bridge 9.) takes the top-level turns: always ALPHA
}


def rl_parquet(tmp_path: Path, name: str, numbers: list[int]) -> Path:
    """``gen-searcher data rl`` over one request per number (``Draw the Quorvath Bridge N.``)."""
    from gen_searcher_core.commands import build_app

    gt = tmp_path / "gt.png"
    if not gt.exists():
        gt.write_bytes(png_bytes((40, 160, 120), (96, 64)))
    records = [{"id": f"k{i}", "prompt": f"Draw the Quorvath Bridge {i}.", "gt_image": gt.name} for i in numbers]
    (tmp_path / f"{name}.json").write_text(json.dumps(records))
    out = tmp_path / f"{name}.parquet"
    converted = CliRunner().invoke(
        build_app(), ["data", "rl", str(tmp_path / f"{name}.json"), "--images-root", str(tmp_path), "--out", str(out)]
    )
    assert converted.exit_code == 0, converted.output
    return out


def step_metrics(output: str) -> dict[int, dict[str, float]]:
    """verl's console logger lines (``step:N - key:value - …``, numpy values as ``np.float64(x)``), by step."""
    steps: dict[int, dict[str, float]] = {}
    for line in output.splitlines():
        found = re.search(r"(?<![\w/])step:(\d+) - (.*)$", line)
        if not found:
            continue
        values = steps.setdefault(int(found.group(1)), {})
        for item in found.group(2).split(" - "):
            key, _, value = item.rpartition(":")
            number = re.fullmatch(r"(?:np\.\w+\()?(-?[\d.e+-]+|nan|inf)\)?", value.strip())  # np.float64(0.8)
            if number:
                values[key] = float(number.group(1))
    return steps


def hf_weights(folder: Path) -> dict[str, Any]:
    from transformers import Qwen2VLForConditionalGeneration

    model = Qwen2VLForConditionalGeneration.from_pretrained(folder)
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def distance(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Sum of absolute weight differences (float32)."""
    return sum(float((a[name].float() - b[name].float()).abs().sum()) for name in b)


@pytest.mark.timeout(2400)
def test_two_steps_with_validation_then_resume_from_the_checkpoint(
    tmp_path: Path, tool_server: Any, recording_render: tuple[str, list[dict[str, Any]]]
) -> None:
    import torch

    model_dir = build_tiny_vl_model(tmp_path / "model")
    train = rl_parquet(tmp_path, "train", [0, 1])
    val = rl_parquet(tmp_path, "val", [9])
    script = tmp_path / "script.json"
    script.write_text(json.dumps(SCRIPT))
    render_url, renders = recording_render
    checkpoints = tmp_path / "checkpoints"
    gen_searcher = str(Path(sys.executable).with_name("gen-searcher"))

    judge = ScriptedJudge()
    judge.when("Grade the CANDIDATE", kscore_reply(1.0, 0.5, 0.0, 1.0, na=True))
    for marker, score in TEXT_SCORES.items():
        judge.when(marker, json.dumps({"score": score}))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "GEN_SEARCHER_JUDGE_BACKOFF_INITIAL_S": "0",
        "GEN_SEARCHER_JUDGE_BACKOFF_MAX_S": "0",
    }

    def train_grpo(judge_url: str, steps: int) -> str:
        command = [
            gen_searcher, "train", "grpo", "--device", "cpu", "--max-calls", "2",
            "--tool-server", tool_server.url, "--render-server", render_url,
            "--judge-url", judge_url, "--judge-model", "scripted",
            "--run-dir", str(tmp_path / "run"),
            f"data.train_files={train}", f"data.val_files={val}",
            f"actor_rollout_ref.model.path={model_dir}",
            f"+actor_rollout_ref.rollout.engine_kwargs.vllm_double.script={script}",
            "data.train_batch_size=2", "actor_rollout_ref.rollout.n=2", "actor_rollout_ref.actor.ppo_mini_batch_size=2",
            # measured: prompts 2334 tokens, responses ~200 (verl pads every sample to these lengths)
            "data.max_prompt_length=2560", "data.max_response_length=512",
            "actor_rollout_ref.rollout.prompt_length=2560", "actor_rollout_ref.rollout.response_length=512",
            "actor_rollout_ref.rollout.agent.num_workers=1",
            f"trainer.total_training_steps={steps}", "trainer.test_freq=1", "trainer.save_freq=1",
            f"trainer.default_local_dir={checkpoints}", f"hydra.run.dir={tmp_path / 'hydra'}",
            "actor_rollout_ref.actor.optim.lr=1e-3",
            f"reward.custom_reward_function.reward_kwargs.text_weight={TEXT_WEIGHT}",
        ]  # fmt: skip
        log = tmp_path / f"grpo-{steps}.log"
        with log.open("w") as sink:
            done = subprocess.run(command, cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT, timeout=1100)
        output = log.read_text(errors="replace")
        assert done.returncode == 0, output[-6000:]
        return output

    with serve_judge(judge) as judge_url:
        first = train_grpo(judge_url, 2)
        first_renders = len(renders)
        tracker = checkpoints / "latest_checkpointed_iteration.txt"
        assert tracker.read_text().strip() == "2"
        second = train_grpo(judge_url, 3)

    # Run 1: steps 1 and 2, each validated, none dropped; a checkpoint after each.
    metrics = step_metrics(first)
    assert sorted(metrics) == [1, 2], first[-6000:]
    for step in (1, 2):
        assert metrics[step]["training/global_step"] == step
        assert metrics[step][DROPPED] == 0
        assert metrics[step][VAL_METRIC] == pytest.approx(VAL_SCORE, abs=1e-4)
        assert (checkpoints / f"global_step_{step}" / "actor" / "huggingface").is_dir()
    assert "Training from scratch" in first
    # 2 steps x (2 prompts x 2 rollouts) + 2 validations, each answer rendered once.
    assert first_renders == 10

    # Run 2: verl found step 2's checkpoint, trained step 3 only (validated), and saved it.
    assert re.search(r"Resuming from \S*/global_step_2, setting global step to 2", second), second[-6000:]
    for part in ("model", "optimizer", "lr_scheduler"):  # the actor's FSDP state, from verl's checkpoint manager
        assert re.search(rf"Loaded {part} from \S*/global_step_2/actor/", second), part
    assert "No dataloader state found" not in second  # data.pt: the sampler carries on where run 1 stopped
    metrics = step_metrics(second)
    assert sorted(metrics) == [3], second[-6000:]
    assert metrics[3]["training/global_step"] == 3
    assert metrics[3][DROPPED] == 0
    assert metrics[3][VAL_METRIC] == pytest.approx(VAL_SCORE, abs=1e-4)
    assert len(renders) - first_renders == 5
    assert tracker.read_text().strip() == "3"
    assert sorted(p.name for p in checkpoints.glob("global_step_*")) == [f"global_step_{s}" for s in (1, 2, 3)]

    # Each group held ALPHA and BETA, so every update moved the weights; step 3 started from step 2's
    # (measured: step 3 lies 38 from step 2 and 117 from the initial weights, one update ~40).
    initial = hf_weights(model_dir)
    saved = {s: hf_weights(checkpoints / f"global_step_{s}" / "actor" / "huggingface") for s in (1, 2, 3)}
    for before, after in ((initial, saved[1]), (saved[1], saved[2]), (saved[2], saved[3])):
        assert any(not torch.equal(before[n].to(after[n].dtype), after[n]) for n in after)
    assert distance(saved[2], saved[3]) < distance(initial, saved[3]) / 2
