"""``gen-searcher train smoke``: check a fresh node end to end before a real launch, in minutes.

Each step is one component; the first failure names it and stops the steps that depend on it:

1. ``tiny model``: a tiny random model of ``--processor-from``'s family (Qwen3-VL, Qwen2.5-VL
   or Qwen2-VL, from the processor's class) around its tokenizer and processor (the policy's
   own folder on the node; nothing is downloaded);
2. ``sft data``: a few rows in the published SFT format through the ``data sft`` converter;
3. ``sft step``: ``train sft`` for one step on this node's devices (the CPU platform when
   there is no accelerator), through the same launcher users run;
4. ``hf weights``: the checkpoint's Hugging Face folder loads with ``from_pretrained``
   (what ``train grpo`` takes as ``actor_rollout_ref.model.path``);
5. ``grpo step``: ``train grpo`` for one step from those weights, against a tool server and a
   judge the smoke starts (local index over a tiny web, a scripted images API behind ``render``
   and a scripted judge; :mod:`verl_recipes.cpu.smoke_servers`). On CPU the rollout is vLLM's
   test double (:mod:`verl_recipes.cpu.vllm_double`) following a script: one image search, then
   an answer, the two rollouts of each prompt naming different photos. The reward renders and
   judges each answer (the photo of the asked-for bridge scores higher), so every group has
   non-zero advantages and the step passes only when the actor's gradient norm is above 0: the
   update had something to learn. On GPUs the rollout is vLLM itself (skipped when vLLM is not
   installed), sampling from the tiny model, which rarely writes an answer: there the step checks
   verl, vLLM, the tools and the update, not the learning signal.
   The step fails when an episode is dropped (``verl_recipes.verl_ext.dropped_episodes``) and
   passes only when its log shows a dropped-episode count of 0.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from verl_recipes.launch import Device, LaunchPlan, plan_grpo, plan_sft, resolve_device, run


def answer(img_id: str) -> str:
    """A final turn in the published format, with ``img_id`` as its one reference image."""
    plan = {
        "gen_prompt": "The bridge from the first reference image at dusk",
        "reference_images": [{"img_id": img_id, "note": "the bridge"}],
    }
    return f"<think>enough</think><answer>{json.dumps(plan)}</answer>"


ANSWER = answer("IMG_001")


@dataclass
class Check:
    component: str
    ok: bool | None  # None: not run
    detail: str

    def line(self) -> str:
        status = {True: "PASS", False: "FAIL", None: "SKIP"}[self.ok]
        return f"{status}  {self.component:<11} {self.detail}"


def tiny_qwen2_vl_config(
    tokenizer: Any, *, patch_size: int = 14, merge_size: int = 2, temporal_patch_size: int = 2
) -> Any:
    """A tiny Qwen2-VL config for ``tokenizer``'s vocabulary and vision tokens (verl reads its ``architectures``)."""
    from transformers import Qwen2VLConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>")}
    ids |= {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|vision_start|>", "<|vision_end|>", "<|im_end|>")}
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else ids["<|im_end|>"]
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 32768,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": pad,
            "bos_token_id": pad,
            "tie_word_embeddings": True,
        },
        vision_config={
            "depth": 1,
            "embed_dim": 16,
            "hidden_size": 32,
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": patch_size,
            "spatial_merge_size": merge_size,
            "temporal_patch_size": temporal_patch_size,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    config.architectures = ["Qwen2VLForConditionalGeneration"]
    return config


#: The processor classes of the policy families the recipe trains, and the tiny model each gets.
FAMILIES = {"Qwen3VLProcessor": "qwen3_vl", "Qwen2_5_VLProcessor": "qwen2_5_vl", "Qwen2VLProcessor": "qwen2_vl"}


def policy_family(processor: Any) -> str:
    """``qwen3_vl``, ``qwen2_5_vl`` or ``qwen2_vl``, from the processor's class (what the folder was saved as)."""
    name = type(processor).__name__
    if name not in FAMILIES:
        raise ValueError(f"{name} is not a processor of a family the recipe trains ({', '.join(FAMILIES)})")
    return FAMILIES[name]


def tiny_policy_config(family: str, tokenizer: Any, images: Any) -> Any:
    """A tiny config of ``family`` for ``tokenizer``'s vocabulary and the image processor's patching."""
    vision = {"patch_size": images.patch_size, "merge_size": images.merge_size}
    vision["temporal_patch_size"] = images.temporal_patch_size
    base = tiny_qwen2_vl_config(tokenizer, **vision)
    if family == "qwen2_vl":
        return base
    text = base.text_config.to_dict()
    text_config = {k: text[k] for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers")}
    text_config |= {k: text[k] for k in ("num_attention_heads", "num_key_value_heads", "max_position_embeddings")}
    text_config |= {k: text[k] for k in ("eos_token_id", "pad_token_id", "bos_token_id")}
    tokens = {
        "image_token_id": base.image_token_id,
        "video_token_id": base.video_token_id,
        "vision_start_token_id": base.vision_start_token_id,
        "vision_end_token_id": base.vision_end_token_id,
    }
    small_vision = {"depth": 2, "hidden_size": 16, "intermediate_size": 32, "num_heads": 2, "out_hidden_size": 32}
    small_vision |= {"patch_size": images.patch_size, "spatial_merge_size": images.merge_size}
    small_vision |= {"temporal_patch_size": images.temporal_patch_size}
    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig

        qwen25: Any = Qwen2_5_VLConfig(
            text_config=text_config
            | {"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}},
            vision_config=small_vision | {"fullatt_block_indexes": [1], "window_size": 112},
            tie_word_embeddings=True,
            **tokens,
        )
        qwen25.architectures = ["Qwen2_5_VLForConditionalGeneration"]
        return qwen25
    from transformers import Qwen3VLConfig

    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3], "mrope_interleaved": True}
    config = Qwen3VLConfig(
        text_config=text_config | {"head_dim": 16, "rope_parameters": rope},
        vision_config=small_vision | {"num_position_embeddings": 64, "deepstack_visual_indexes": [1]},
        tie_word_embeddings=True,
        **tokens,
    )
    config.architectures = ["Qwen3VLForConditionalGeneration"]
    return config


def build_tiny_policy(processor_from: Path, out: Path) -> Path:
    """A tiny random model of ``processor_from``'s family (Qwen3-VL, Qwen2.5-VL or Qwen2-VL) sharing its
    tokenizer, processor and chat template, saved with ``save_pretrained``."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(processor_from)
    config = tiny_policy_config(policy_family(processor), processor.tokenizer, processor.image_processor)
    torch.manual_seed(0)
    out.mkdir(parents=True, exist_ok=True)
    AutoModelForImageTextToText.from_config(config).save_pretrained(out)
    processor.save_pretrained(out)
    processor.tokenizer.save_pretrained(out)
    return out


def write_sft_rows(folder: Path, rows: int = 2) -> Path:
    """``rows`` trajectories in the published SFT format (two images each); returns the JSONL file."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for name, colour in (("a.png", (200, 40, 40)), ("b.png", (40, 40, 200))):
        buffer = io.BytesIO()
        Image.new("RGB", (64, 48), colour).save(buffer, format="PNG")
        (folder / name).write_bytes(buffer.getvalue())
    record = {
        "messages": [
            {"role": "system", "content": "published system prompt"},
            {"role": "user", "content": "Draw the Quorvath Bridge. <image>"},
            {
                "role": "assistant",
                "content": '<think>look</think><tool_call>{"name": "image_search", '
                '"arguments": {"query": "Quorvath Bridge"}}</tool_call>',
            },
            {"role": "user", "content": "<tool_response>\nIMG_001: the bridge\n<image>\n</tool_response>"},
            {"role": "assistant", "content": ANSWER},
        ],
        "images": ["a.png", "b.png"],
    }
    src = folder / "sft.jsonl"
    src.write_text("\n".join(json.dumps(record) for _ in range(rows)), encoding="utf-8")
    return src


IMAGE_SEARCH = (
    '<think>look</think><tool_call>{"name": "image_search", "arguments": {"query": "Quorvath Bridge", '
    '"top_k": 2}}</tool_call>'
)


def smoke_script(prompts: int) -> dict[str, Any]:
    """The CPU rollout's script: one image search, then an answer; of each prompt's two rollouts one
    names the first photo found and one the second, so their rewards differ (see the module docstring)."""
    return {
        "turns": [[IMAGE_SEARCH], ["<think>nothing more to do</think>"]],
        "rules": [
            {"when": f"Quorvath Bridge {i}.", "turns": [[IMAGE_SEARCH], [answer("IMG_001"), answer("IMG_002")]]}
            for i in range(prompts)
        ],
    }


class Skipped(Exception):
    """A step that cannot run on this node (reported as SKIP with the reason)."""


def write_rl_rows(folder: Path, rows: int = 2) -> Path:
    """``rows`` RL prompts in the published format with a ground-truth image; returns the JSON file."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (40, 160, 120)).save(buffer, format="PNG")
    (folder / "gt.png").write_bytes(buffer.getvalue())
    records = [
        {"id": f"smoke-{i}", "prompt": f"Draw the Quorvath Bridge {i}.", "gt_image": "gt.png"} for i in range(rows)
    ]
    src = folder / "rl.json"
    src.write_text(json.dumps(records), encoding="utf-8")
    return src


def _run_logged(plan: Any, log: Path, what: str) -> None:
    with log.open("w", encoding="utf-8") as sink:
        code = run(plan, stdout=sink, stderr=subprocess.STDOUT)
    if code != 0:
        lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines() or ["no output"]
        named = [line for line in lines if "EpisodesDropped:" in line]  # the recipe's own verdict, if any
        raise RuntimeError(f"{what} exited {code} (log: {log}): {(named or lines)[-1].strip()}")


@contextlib.contextmanager
def grpo_against_smoke_services(
    overrides: list[str], *, services: Path, run_dir: Path, device: Literal["cpu", "gpu"]
) -> Iterator[LaunchPlan]:
    """A ``train grpo`` plan against the smoke's tool server (its files under ``services``) and scripted judge,
    both serving until the context closes."""
    from benchmark.demo.scripted import JUDGE_MODEL
    from verl_recipes.cpu.smoke_servers import smoke_judge, smoke_tool_server

    with smoke_tool_server(services) as tool_url, smoke_judge() as judge_url:
        yield plan_grpo(
            overrides,
            tool_server=tool_url,
            judge_url=judge_url,
            judge_model=JUDGE_MODEL,
            run_dir=run_dir,
            device=device,
        )


def grpo_step(work: Path, model: Path, device: Device) -> str:
    """One ``train grpo`` step from ``model`` against a smoke tool server (see the module docstring)."""
    import importlib.util

    from verl_recipes.data import convert_rl

    on = resolve_device(device)
    if on == "gpu" and importlib.util.find_spec("vllm") is None:
        raise Skipped("vLLM is not installed (the GPU rollout); see docs/training.md#install")
    data = work / "rl.parquet"
    convert_rl(write_rl_rows(work / "rl"), work / "rl", data)
    sizes = [
        f"data.train_files={data}",
        f"actor_rollout_ref.model.path={model}",
        "data.train_batch_size=2",
        "actor_rollout_ref.rollout.n=2",
        "actor_rollout_ref.actor.ppo_mini_batch_size=2",
        "data.max_prompt_length=4096",
        "data.max_response_length=1024",
        "actor_rollout_ref.rollout.prompt_length=4096",
        "actor_rollout_ref.rollout.response_length=1024",
        "actor_rollout_ref.rollout.agent.num_workers=1",
        "trainer.total_training_steps=1",
        "trainer.save_freq=-1",
        f"trainer.default_local_dir={work / 'grpo-checkpoints'}",
        f"hydra.run.dir={work / 'grpo-hydra'}",  # Hydra's outputs/ in the work folder, not the caller's cwd
    ]
    if on == "cpu":
        script = work / "rollout-script.json"
        script.write_text(json.dumps(smoke_script(prompts=2)), encoding="utf-8")
        sizes.append(f"+actor_rollout_ref.rollout.engine_kwargs.vllm_double.script={script}")
    else:
        sizes += ["actor_rollout_ref.rollout.tensor_model_parallel_size=1", "trainer.n_gpus_per_node=1"]
    log = work / "grpo.log"
    with grpo_against_smoke_services(sizes, services=work / "tools", run_dir=work / "grpo-run", device=on) as plan:
        _run_logged(plan, log, "train grpo")
    logged = log.read_text(encoding="utf-8", errors="replace")
    if "training/global_step:1" not in logged:
        raise RuntimeError(f"train grpo exited 0 but logged no finished step (log: {log})")
    if not re.search(r"training/rollout_failure/dropped_episodes:0(\.0+)?\b", logged):
        raise RuntimeError(f"train grpo logged no dropped-episode count of 0 (log: {log})")
    grad_norm = step_metrics(logged).get("actor/grad_norm", 0.0)
    if on == "cpu" and not grad_norm:  # the script's answers score differently: there was something to learn
        raise RuntimeError(f"train grpo logged an actor grad norm of {grad_norm} where the rewards differ (log: {log})")
    rollout = "vllm_double" if on == "cpu" else "vLLM"
    where = plan.env.get("VERL_PLATFORM", "the node accelerators")
    return f"one step on {where}, {rollout} rollout, grad norm {grad_norm:.3g} (log: {log})"


def step_metrics(log: str, step: int = 1) -> dict[str, float]:
    """The ``key:value`` pairs of verl's console line for ``step`` (empty when the log has none)."""
    line = next((row for row in log.splitlines() if f"training/global_step:{step} " in row + " "), "")
    return {key: float(value) for key, value in re.findall(r"([\w/@.-]+):(-?\d*\.?\d+(?:e[-+]?\d+)?)", line)}


def _step(checks: list[Check], component: str, action: Callable[[], str]) -> bool:
    try:
        checks.append(Check(component, True, action()))
    except Skipped as reason:
        checks.append(Check(component, None, str(reason)))
    except Exception as exc:  # noqa: BLE001 - the report names the component and its error
        checks.append(Check(component, False, f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:300]}"))
        return False
    return True


def run_smoke(processor_from: Path, work: Path, device: Device = "auto") -> list[Check]:
    """Run the steps in order into ``work``; every step after a failure is reported as skipped."""
    from verl_recipes.data import LengthLimit, SftTokenCounter, convert_sft

    work = work.resolve()
    model, data, checkpoints = work / "model", work / "sft.parquet", work / "checkpoints"
    checks: list[Check] = []

    def sft_step() -> str:
        plan = plan_sft(
            [
                f"data.train_files={data}",
                f"model.path={model}",
                "data.train_batch_size=2",
                "data.max_length=4096",
                "data.max_token_len_per_gpu=4096",
                "trainer.total_training_steps=1",
                "trainer.save_freq=1",
                f"trainer.default_local_dir={checkpoints}",
                f"hydra.run.dir={checkpoints.parent / 'sft-hydra'}",
                "trainer.resume_mode=disable",
                "model.enable_gradient_checkpointing=false",
            ],
            device=device,
        )
        log = work / "sft.log"
        _run_logged(plan, log, "train sft")
        return f"one step on {plan.env.get('VERL_PLATFORM', 'the node accelerators')} (log: {log})"

    hf_folder = checkpoints / "global_step_1" / "huggingface"

    def limit() -> LengthLimit:
        return LengthLimit(SftTokenCounter(model), max_length=4096)  # the SFT step's data.max_length

    def hf_weights() -> str:
        from transformers import AutoModelForImageTextToText

        folder = hf_folder
        loaded: Any = AutoModelForImageTextToText.from_pretrained(folder)
        return f"{folder} loads ({type(loaded).__name__})"

    steps: list[tuple[str, Callable[[], str]]] = [
        ("tiny model", lambda: str(build_tiny_policy(processor_from, model))),
        ("sft data", lambda: convert_sft(write_sft_rows(work / "raw"), work / "raw", data, limit=limit()).summary()),
        ("sft step", sft_step),
        ("hf weights", hf_weights),
        ("grpo step", lambda: grpo_step(work, hf_folder, device)),
    ]
    for index, (component, action) in enumerate(steps):
        if not _step(checks, component, action):
            checks.extend(Check(name, None, "not run (an earlier step failed)") for name, _ in steps[index + 1 :])
            break
    return checks
