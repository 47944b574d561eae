"""One GRPO step end to end: `gen-searcher train grpo --device cpu` through verl's own trainer.

The same launcher and configs users run (only sizes and devices overridden) start verl's
``main_ppo`` on a local Ray cluster: AgentLoopManager and workers, router, TransferQueue, the
v1 trainer, ``grpo_masked`` through verl's advantage code and one FSDP actor update. Tools
are the real tool server (local index, tiny Qwen-Image renderer) over MCP, the reward is
the real dual reward with a scripted judge on loopback. The one stand-in is the rollout
engine: :mod:`verl_recipes.cpu.vllm_double` (vLLM cannot run here), replying from a script with
the tiny policy's own log-probs.

In the same step, the three prompts run three ways: two through the ``gen_searcher`` loop
(one group has a failed judgement), one through verl's stock ``tool_agent`` loop with the
tool YAML from ``gen-searcher train tools-yaml`` (the MCP bridge). The batch the actor
trains on is recorded by ``tests/verl/actor_batch_recorder.py`` (read-only).
"""

from __future__ import annotations

import json
import os
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
STOCK_ANSWER = "Here is what I found."
IMAGE_SCORE = 0.6  # kscore_reply(1.0, 0.5, 0.0, 1.0, na=True): 0.1 + 0.2 + 0.4 * 0.5 + 0.1
TEXT_SCORES = {"ALPHA": 1.0, "BETA": 0.25}  # GAMMA: the judge fails (HTTP 500), so the episode is masked
TEXT_WEIGHT = 0.5


def answer(marker: str) -> str:
    plan = {"gen_prompt": f"The Quorvath Bridge {marker}", "reference_images": [{"img_id": "IMG_001", "note": marker}]}
    return f"<think>ok</think><answer>{json.dumps(plan)}</answer>"


SCRIPT = {
    "turns": [[TOOL_CALL], [STOCK_ANSWER]],
    "rules": [
        {"when": "Bridge 0", "turns": [[TOOL_CALL], [answer("ALPHA"), answer("BETA"), answer("GAMMA")]]},
        {"when": "Bridge 1", "turns": [[TOOL_CALL], [answer("BETA"), answer("ALPHA"), answer("ALPHA")]]},
        {"when": "Bridge 2", "turns": [[TOOL_CALL], [STOCK_ANSWER]]},
    ],
}


def rl_data(tmp_path: Path, *, stock_third: bool = True) -> Path:
    """Three prompts through ``gen-searcher data rl``; the third is handed to verl's stock ``tool_agent`` loop."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gen_searcher_core.commands import build_app

    (tmp_path / "gt.png").write_bytes(png_bytes((40, 160, 120), (96, 64)))
    records = [{"id": f"k{i}", "prompt": f"Draw the Quorvath Bridge {i}.", "gt_image": "gt.png"} for i in range(3)]
    (tmp_path / "rl.json").write_text(json.dumps(records))
    out = tmp_path / "rl.parquet"
    converted = CliRunner().invoke(
        build_app(), ["data", "rl", str(tmp_path / "rl.json"), "--images-root", str(tmp_path), "--out", str(out)]
    )
    assert converted.exit_code == 0, converted.output
    table = pq.read_table(out)
    agents = table.column("agent_name").to_pylist()
    assert agents == ["gen_searcher"] * 3
    if not stock_third:
        return out
    agents[2] = "tool_agent"
    pq.write_table(table.set_column(table.schema.get_field_index("agent_name"), "agent_name", pa.array(agents)), out)
    return out


def weights(model: Any) -> dict[str, Any]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def load_batch(folder: Path) -> list[dict[str, Any]]:
    """The recorded actor batch, one dict per sample."""
    import torch

    files = sorted(folder.glob("batch-*.pt"))
    assert len(files) == 1, files  # one step, one mini-batch
    record = torch.load(files[0], weights_only=False)
    size = len(record["responses"])
    return [{key: values[i] for key, values in record.items()} for i in range(size)]


@pytest.mark.timeout(1200)
def test_one_grpo_step_through_verls_trainer_on_cpu(tmp_path: Path, render_server: Any) -> None:
    import torch
    from transformers import AutoTokenizer, Qwen2VLForConditionalGeneration

    from verl_recipes.verl_ext.freeze_vision import vision_parameters

    model_dir = build_tiny_vl_model(tmp_path / "model")
    data = rl_data(tmp_path)
    script = tmp_path / "script.json"
    script.write_text(json.dumps(SCRIPT))
    gen_searcher = str(Path(sys.executable).with_name("gen-searcher"))
    tools_yaml = tmp_path / "tools.yaml"
    subprocess.run(
        [
            gen_searcher,
            "train",
            "tools-yaml",
            "--url",
            render_server.url,
            "--out",
            str(tools_yaml),
            "--tool",
            "image_search",
        ],
        check=True,
        capture_output=True,
    )
    metrics = render_server.services.metrics
    calls_before = {
        tool: metrics.value("gen_searcher_tool_calls_total", {"tool": tool, "outcome": "ok"})
        for tool in ("image_search", "render")
    }

    judge = ScriptedJudge()
    judge.when("Grade the CANDIDATE", kscore_reply(1.0, 0.5, 0.0, 1.0, na=True))
    for marker, score in TEXT_SCORES.items():
        judge.when(marker, json.dumps({"score": score}))
    judge.when("GAMMA", 500)
    batches, checkpoints = tmp_path / "batches", tmp_path / "checkpoints"
    with serve_judge(judge) as judge_url:
        command = [
            gen_searcher, "train", "grpo", "--device", "cpu",
            "--tool-server", render_server.url, "--judge-url", judge_url, "--judge-model", "scripted",
            "--run-dir", str(tmp_path / "run"),
            f"data.train_files={data}",
            f"actor_rollout_ref.model.path={model_dir}",
            f"+actor_rollout_ref.rollout.engine_kwargs.vllm_double.script={script}",
            f"actor_rollout_ref.rollout.multi_turn.tool_config_path={tools_yaml}",
            "data.train_batch_size=3", "actor_rollout_ref.rollout.n=3", "actor_rollout_ref.actor.ppo_mini_batch_size=3",
            "data.max_prompt_length=4096", "data.max_response_length=2048",
            "actor_rollout_ref.rollout.prompt_length=4096", "actor_rollout_ref.rollout.response_length=2048",
            "actor_rollout_ref.rollout.agent.num_workers=1",
            "trainer.total_training_steps=1", "trainer.save_freq=1", f"trainer.default_local_dir={checkpoints}",
            f"trainer.rollout_data_dir={tmp_path / 'rollouts'}",
            "actor_rollout_ref.actor.optim.lr=1e-3",
            "actor_rollout_ref.actor.checkpoint.save_contents=[model,optimizer,extra,hf_model]",
            f"reward.custom_reward_function.reward_kwargs.text_weight={TEXT_WEIGHT}",
        ]  # fmt: skip
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            "VERL_USE_EXTERNAL_MODULES": "tests.verl.actor_batch_recorder",
            "GEN_SEARCHER_TEST_ACTOR_BATCHES": str(batches),
            "GEN_SEARCHER_JUDGE_BACKOFF_INITIAL_S": "0",
            "GEN_SEARCHER_JUDGE_BACKOFF_MAX_S": "0",
        }
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1100, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]

    # The episodes called the tools over MCP: 9 image searches, one render per gen_searcher episode.
    calls = {
        tool: metrics.value("gen_searcher_tool_calls_total", {"tool": tool, "outcome": "ok"}) - calls_before[tool]
        for tool in calls_before
    }
    assert calls == {"image_search": 9, "render": 6}

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    image_token = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    samples = load_batch(batches)
    assert len(samples) == 9
    by_prompt: dict[int, list[dict[str, Any]]] = {0: [], 1: [], 2: []}
    for sample in samples:
        prompt_text = tokenizer.decode(sample["input_ids"])
        group = next(i for i in by_prompt if f"Quorvath Bridge {i}." in prompt_text)
        mask = sample["response_mask"].bool()
        responses = sample["responses"]
        sample["trained"] = tokenizer.decode(responses[mask])
        sample["untrained"] = tokenizer.decode(responses[~mask])
        sample["advantage"] = float(sample["advantages"][mask].mean()) if mask.any() else 0.0
        # Images reached the model: the tool response's thumbnail, as multi_modal_inputs matching the image tokens.
        vision = sample["multi_modal_inputs"]
        assert vision and vision["pixel_values"].shape[0] > 0
        assert int((sample["input_ids"] == image_token).sum()) == int(vision["image_grid_thw"].prod(-1).sum()) // 4
        by_prompt[group].append(sample)
    assert [len(group) for group in by_prompt.values()] == [3, 3, 3]

    end = "<|im_end|>"
    for group in (0, 1):
        for sample in by_prompt[group]:
            marker = next(m for m in ("ALPHA", "BETA", "GAMMA") if m in tokenizer.decode(sample["responses"]))
            sample["marker"] = marker
            if marker == "GAMMA":  # the failed judgement: no loss, no advantage, out of its group
                assert not sample["response_mask"].any() and not sample["advantages"].any()
                continue
            # Only what the model wrote is trained: both assistant turns, never the tool response.
            assert sample["trained"] == f"{TOOL_CALL}{end}{answer(marker)}{end}"
            assert "<tool_response>" in sample["untrained"] and "Quorvath" in sample["untrained"]
    # The reward, as verl's own rollout dump records it: (1 - c) * image + c * text, 0 for the failed judgement.
    dumped = [json.loads(line) for line in (tmp_path / "rollouts" / "1.jsonl").read_text().splitlines()]
    scores: dict[str, set[float]] = {}
    for row in dumped:
        marker = next((m for m in (*TEXT_SCORES, "GAMMA") if m in row["output"]), "stock")
        scores.setdefault(marker, set()).add(round(row["score"], 6))
    expected = {m: {round((1 - TEXT_WEIGHT) * IMAGE_SCORE + TEXT_WEIGHT * t, 6)} for m, t in TEXT_SCORES.items()}
    assert scores == {**expected, "GAMMA": {0.0}, "stock": {0.0}}
    # GRPO over the unmasked samples only: group 0 is ALPHA vs BETA (+-1/sqrt(2)); with the failed
    # judgement scored 0 instead, ALPHA would get +0.98.
    advantages = {(g, s["marker"]): s["advantage"] for g in (0, 1) for s in by_prompt[g]}
    assert advantages[(0, "ALPHA")] == pytest.approx(2**-0.5, abs=1e-4)
    assert advantages[(0, "BETA")] == pytest.approx(-(2**-0.5), abs=1e-4)
    assert advantages[(1, "BETA")] == pytest.approx(-((4 / 3) ** 0.5), abs=1e-4)
    assert advantages[(1, "ALPHA")] == pytest.approx((1 / 3) ** 0.5, abs=1e-4)

    # verl's stock tool_agent loop with the MCP bridge: the tool ran, its image reached the model,
    # only the model's turns are trained; no gen_searcher answer, so the reward (from verl's reward
    # workers, with the same reward function) is 0 for all three.
    for sample in by_prompt[2]:
        assert sample["trained"] == f"{TOOL_CALL}{end}{STOCK_ANSWER}{end}"
        assert "<tool_response>" in sample["untrained"]
        assert sample["advantage"] == 0.0

    # The rollout's log-probs (the double computed them with the images, in float32) match the
    # actor's (bf16 compute): measured mean 0.011, max 0.03.
    gaps = torch.cat([(x["old_log_probs"] - x["rollout_log_probs"])[x["response_mask"].bool()].abs() for x in samples])
    assert gaps.numel() > 0 and float(gaps.mean()) < 0.03 and float(gaps.max()) < 0.1

    # One actor update: the language model moved, the vision tower stayed frozen.
    before = weights(Qwen2VLForConditionalGeneration.from_pretrained(model_dir))
    trained_model = Qwen2VLForConditionalGeneration.from_pretrained(
        checkpoints / "global_step_1" / "actor" / "huggingface"
    )
    after = weights(trained_model)
    vision_names = {name for name, _ in vision_parameters(trained_model)}
    assert vision_names and all(torch.equal(before[n].to(after[n].dtype), after[n]) for n in vision_names)
    assert any(not torch.equal(before[n].to(after[n].dtype), after[n]) for n in after if n not in vision_names)


@pytest.mark.timeout(1800)
def test_an_episode_that_raises_fails_the_step(tmp_path: Path) -> None:
    """One episode's rollout raises: verl would train on the rest and exit 0; the recipe fails the step, naming it."""
    model_dir = build_tiny_vl_model(tmp_path / "model")
    data = rl_data(tmp_path, stock_third=False)
    script = tmp_path / "script.json"
    no_answer = {"turns": [["<think>no</think>"], ["<think>still no</think>"]]}
    script.write_text(json.dumps({**no_answer, "rules": [{"when": "Bridge 1", "error": "the rollout blew up"}]}))
    gen_searcher = str(Path(sys.executable).with_name("gen-searcher"))
    command = [
        gen_searcher, "train", "grpo", "--device", "cpu", "--max-calls", "1",
        # never called: no episode writes a tool call or an answer
        "--tool-server", "http://127.0.0.1:9/mcp", "--judge-url", "http://127.0.0.1:9/v1",
        "--run-dir", str(tmp_path / "run"),
        f"data.train_files={data}",
        f"actor_rollout_ref.model.path={model_dir}",
        f"+actor_rollout_ref.rollout.engine_kwargs.vllm_double.script={script}",
        "data.train_batch_size=3", "actor_rollout_ref.rollout.n=2", "actor_rollout_ref.actor.ppo_mini_batch_size=3",
        "data.max_prompt_length=4096", "data.max_response_length=512",
        "actor_rollout_ref.rollout.prompt_length=4096", "actor_rollout_ref.rollout.response_length=512",
        "actor_rollout_ref.rollout.agent.num_workers=1",
        "trainer.total_training_steps=1", "trainer.save_freq=-1", f"trainer.default_local_dir={tmp_path / 'ckpt'}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    log = tmp_path / "grpo.log"
    with log.open("w") as sink:
        done = subprocess.run(command, cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT, timeout=1700)
    output = log.read_text(errors="replace")
    assert done.returncode != 0, output[-6000:]
    assert "EpisodesDropped: 2 training episode(s) raised in the rollout at step 1" in output, output[-6000:]
    assert "max_dropped_episodes=0): RuntimeError: the rollout blew up" in output  # the episodes' own error
    assert "training: 2 episode(s) dropped at step 1" in output  # and the run log says so
    assert "training/global_step:1" not in output  # no update was made with the batch
