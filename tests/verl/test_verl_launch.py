"""Configs and launchers: every key is composed against verl's own Hydra configs; the vision tower freeze."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

pytestmark = pytest.mark.slow

TOOLS = "http://tools.example:8000/mcp"
JUDGE = "http://judge.example:9000/v1"


def grpo_plan(tmp_path: Path, *overrides: str, **kwargs: Any) -> Any:
    from verl_recipes.launch import plan_grpo

    return plan_grpo(
        ["data.train_files=/data/rl.parquet", *overrides],
        tool_server=TOOLS,
        judge_url=JUDGE,
        judge_model="gpt-4.1",
        run_dir=tmp_path,
        **kwargs,
    )


def test_grpo_config_has_the_published_settings(tmp_path: Path) -> None:
    from verl.utils.config import omega_conf_to_dataclass
    from verl.utils.import_utils import load_extern_object

    from verl_recipes.launch import compose

    plan = grpo_plan(tmp_path, "trainer.total_epochs=3", "+ray_kwargs.ray_init.address=auto")
    config = compose("grpo", plan.overrides)
    actor, rollout = config.actor_rollout_ref.actor, config.actor_rollout_ref.rollout
    assert config.algorithm.adv_estimator == "grpo_masked" and not config.algorithm.use_kl_in_reward
    assert rollout.n == 6 and config.data.train_batch_size == 8 and actor.ppo_mini_batch_size == 8
    assert actor.optim.lr == 1e-6 and (actor.clip_ratio_low, actor.clip_ratio_high) == (0.2, 0.28)
    assert actor.use_kl_loss is False and rollout.name == "vllm" and rollout.multi_turn.enable
    assert rollout.agent.default_agent_loop == "gen_searcher"
    assert config.actor_rollout_ref.model.external_lib == "verl_recipes.verl_ext.verl_plugins"
    assert config.trainer.total_epochs == 3  # the user's override wins
    kwargs = config.reward.custom_reward_function.reward_kwargs
    assert kwargs.render_mcp_url == TOOLS and kwargs.judge_base_url == JUDGE and kwargs.judge_model == "gpt-4.1"
    assert kwargs.text_weight == 0.5
    # verl validates the config like this when it starts.
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    assert not need_critic(config) and not need_reference_policy(config)  # GRPO without KL: no critic, no reference
    rollout_config = omega_conf_to_dataclass(rollout)
    assert rollout_config.multi_turn.enable and rollout_config.n == 6
    # The reward verl loads from the config is our async compute_score, and it accepts every reward kwarg.
    compute_score = load_extern_object(
        config.reward.custom_reward_function.path, config.reward.custom_reward_function.name
    )
    assert inspect.iscoroutinefunction(compute_score)
    from verl_recipes.reward import RewardSettings

    assert set(kwargs) == set(RewardSettings.model_fields)  # each settable without a `+`
    assert RewardSettings.from_kwargs(dict(kwargs)).text_weight == 0.5


def test_grpo_plan_writes_the_agent_loop_config(tmp_path: Path) -> None:
    from hydra.utils import get_class

    from verl_recipes.agent_loop import LoopSettings

    plan = grpo_plan(tmp_path, invalid="mask", loop_settings={"max_calls": 5})
    assert plan.command[1:5] == ["-m", "verl.trainer.main_ppo", "--config-path", plan.command[4]]
    assert "--config-name" in plan.command and "grpo" in plan.command
    ((path, content),) = plan.files.items()
    assert Path(path) == (tmp_path / "agent_loops.yaml").resolve()
    assert f"actor_rollout_ref.rollout.agent.agent_loop_config_path={path}" in plan.overrides
    (entry,) = yaml.safe_load(content)
    assert entry["name"] == "gen_searcher" and get_class(entry["_target_"]).__name__ == "GenSearcherAgentLoop"
    settings = {k: v for k, v in entry.items() if k not in {"name", "_target_"}}
    assert LoopSettings(**settings).max_calls == 5 and settings["mask_invalid"] is True
    assert settings["score_in_loop"] is True  # failed renders/judgements are masked, not scored 0
    assert settings["tool_server_url"] == TOOLS
    assert "reward.custom_reward_function.reward_kwargs.invalid=mask" in plan.overrides
    assert plan.env == {"GEN_SEARCHER_MCP_URL": TOOLS}


def test_bad_overrides_fail_before_anything_runs(tmp_path: Path) -> None:
    from verl_recipes.launch import LaunchError, plan_sft

    with pytest.raises(LaunchError, match=r"actor_rollout_ref\.rollout\.nn"):
        grpo_plan(tmp_path, "actor_rollout_ref.rollout.nn=6")
    with pytest.raises(LaunchError, match="bad override"):
        grpo_plan(tmp_path, "trainer.logger=[console")
    # The reward's settings are checked as its workers will parse them: typos and bad values fail now.
    kwargs = "reward.custom_reward_function.reward_kwargs"
    with pytest.raises(LaunchError, match="unknown reward_kwargs: text_weigth"):
        grpo_plan(tmp_path, f"+{kwargs}.text_weigth=0.3")
    with pytest.raises(LaunchError, match="text_weight"):
        grpo_plan(tmp_path, f"{kwargs}.text_weight=2")
    with pytest.raises(LaunchError, match="judge"):
        from verl_recipes.launch import plan_grpo

        plan_grpo(["data.train_files=x"], tool_server=TOOLS, run_dir=tmp_path)
    with pytest.raises(LaunchError, match="tool server"):
        from verl_recipes.launch import plan_grpo

        plan_grpo(["data.train_files=x"], tool_server=None, judge_url=JUDGE, run_dir=tmp_path)
    with pytest.raises(LaunchError, match=r"data\.train_files"):
        plan_sft([])


def test_sft_config_and_command() -> None:
    from verl_recipes.launch import compose, plan_sft

    plan = plan_sft(["data.train_files=/data/sft.parquet", "model.path=/ckpt/qwen3-vl-8b"], nproc_per_node=4)
    assert plan.command[1:3] == ["-m", "torch.distributed.run"] and "--nproc-per-node=4" in plan.command
    assert "verl.trainer.sft_trainer" in plan.command and "sft" in plan.command
    config = compose("sft", plan.overrides)
    assert config.optim.lr == 1e-5 and config.trainer.total_epochs == 2
    assert config.data.max_length == 32768 and config.model.lora_rank == 0
    assert config.model.external_lib == "verl_recipes.verl_ext.freeze_vision"
    assert config.model.path == "/ckpt/qwen3-vl-8b" and config.trainer.n_gpus_per_node == 4
    multi = plan_sft(["data.train_files=x"], nnodes=2, node_rank=1, master_addr="10.0.0.1")
    assert (
        "--nnodes=2" in multi.command and "--node-rank=1" in multi.command and "--master-addr=10.0.0.1" in multi.command
    )


def test_cli_dry_run_prints_a_script_that_runs_as_is(tmp_path: Path) -> None:
    import shlex
    import subprocess

    from gen_searcher_core.commands import build_app

    app = build_app()

    runner = CliRunner()
    run_dir = tmp_path / "run dir"  # a space: the printed paths must be quoted
    overrides = ["data.train_files=/d/rl.parquet", "trainer.experiment_name='my run'", "trainer.logger=[console,wandb]"]
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text("OUR OWN SYSTEM PROMPT")
    args = [
        "train",
        "grpo",
        *overrides,
        "--tool-server",
        TOOLS,
        "--judge-url",
        JUDGE,
        "--run-dir",
        str(run_dir),
        "--invalid",
        "mask",
        "--system-prompt-file",
        str(prompt_file),
        "--dry-run",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert not run_dir.exists()  # a dry run writes nothing
    *setup, command = result.output.strip().splitlines()

    # The setup lines, run by a shell, write the agent-loop config the command points at.
    subprocess.run(["bash", "-euc", "\n".join(setup)], check=True)
    (entry,) = yaml.safe_load((run_dir / "agent_loops.yaml").read_text())
    assert entry["tool_server_url"] == TOOLS and entry["mask_invalid"] is True
    from verl_recipes.agent_loop import LoopSettings

    settings = LoopSettings(**{k: v for k, v in entry.items() if k not in {"name", "_target_"}})
    assert settings.episode_config().system_prompt == "OUR OWN SYSTEM PROMPT"  # the loop's prompt, as `data rl`'s

    # The command line splits back into exactly the environment and argv the launcher runs.
    from verl_recipes.launch import plan_grpo

    plan = plan_grpo(
        overrides,
        tool_server=TOOLS,
        judge_url=JUDGE,
        run_dir=run_dir,
        invalid="mask",
        loop_settings={"max_calls": 9, "system_prompt_file": str(prompt_file)},
    )
    assert shlex.split(command) == [f"GEN_SEARCHER_MCP_URL={TOOLS}", *plan.command]

    result = runner.invoke(
        app,
        [
            "train",
            "grpo",
            "data.train_files=/d",
            "actor.nope=1",
            "--tool-server",
            TOOLS,
            "--judge-url",
            JUDGE,
            "--dry-run",
        ],
    )
    assert result.exit_code == 2 and "actor.nope" in result.output
    result = runner.invoke(app, ["train", "grpo", "data.train_files=/d", "--tool-server", TOOLS, "--invalid", "drop"])
    assert result.exit_code == 2 and "drop" in result.output


def test_vision_tower_is_frozen_and_the_engine_swapped(tiny_vl: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import Qwen2VLForConditionalGeneration
    from verl.workers.engine.base import EngineRegistry

    from tests.verl.conftest import tiny_model_config
    from verl_recipes.verl_ext.freeze_vision import freeze_vision_tower

    model = Qwen2VLForConditionalGeneration(tiny_model_config(tiny_vl.tokenizer))
    frozen = freeze_vision_tower(model)
    vision = [n for n, p in model.named_parameters() if "visual" in n]
    assert vision and frozen == sum(p.numel() for n, p in model.named_parameters() if "visual" in n)
    assert all(not p.requires_grad for n, p in model.named_parameters() if "visual" in n)
    assert all(p.requires_grad for n, p in model.named_parameters() if "visual" not in n)
    with pytest.raises(ValueError, match="no vision tower"):
        freeze_vision_tower(model.model.language_model)

    monkeypatch.setenv("VERL_ENGINE_DEVICE", "cuda")
    for backend in ("fsdp", "fsdp2"):
        engine = EngineRegistry.get_engine_cls("language_model", backend)
        assert engine.__name__.startswith("FrozenVision") and engine._gen_searcher_freezes_vision
    import verl_recipes.verl_ext.freeze_vision as module

    assert module.install() == module.install()  # idempotent: no double wrapping
    assert EngineRegistry.get_engine_cls("language_model", "fsdp2").__mro__[1].__name__ == "FSDPEngineWithLMHead"


@pytest.mark.parametrize(("ours", "base"), [("grpo", "ppo_trainer"), ("sft", "sft_trainer_engine")])
def test_every_key_of_our_configs_exists_in_verls(ours: str, base: str) -> None:
    """Hydra merges a config file's new keys silently, so check ours against verl's own tree."""
    from omegaconf import OmegaConf

    from tests.verl.conftest import compose_verl
    from verl_recipes.launch import CONFIG_DIR

    def keys(node: Any, prefix: str = "") -> set[str]:
        out: set[str] = set()
        if isinstance(node, dict):
            for key, value in node.items():
                if key not in ("hydra", "defaults"):
                    out |= {prefix + key} | keys(value, prefix + key + ".")
        return out

    verl_keys = keys(OmegaConf.to_container(compose_verl(base, []), resolve=False))
    ours_keys = keys(yaml.safe_load((CONFIG_DIR / f"{ours}.yaml").read_text()))
    # Read by verl with .get(): the reward function's kwargs and MultiTurnSFTDataset's image_key;
    # handed whole to the custom sampler, which checks its keys itself (DropAccountingReplayBuffer).
    optional = {"reward.custom_reward_function.reward_kwargs", "data.image_key", "trainer.v1.sampler.sampler_kwargs"}
    unknown = {k for k in ours_keys - verl_keys if not any(k == o or k.startswith(o + ".") for o in optional)}
    assert not unknown


def test_grpo_without_validation_data_builds_verls_datasets(tmp_path: Path, tiny_vl: Any) -> None:
    """`data.val_files: null` (the recipe's default) must not crash verl's trainer where it builds its dataloaders."""
    from verl.trainer.ppo.utils import create_rl_dataset

    from tests.verl.conftest import png_bytes
    from verl_recipes.data import convert_rl
    from verl_recipes.launch import LaunchError, compose

    (tmp_path / "gt.png").write_bytes(png_bytes((10, 200, 10)))
    records = [{"id": f"k{i}", "prompt": f"Draw bridge {i}.", "gt_image": "gt.png"} for i in range(3)]
    (tmp_path / "rl.json").write_text(json.dumps(records))
    train = tmp_path / "my data" / "rl, train.parquet"  # a space and a comma: still one path
    train.parent.mkdir()
    convert_rl(tmp_path / "rl.json", tmp_path, train)

    plan = grpo_plan(tmp_path, f"data.train_files='{train}'", "data.max_prompt_length=8192")
    config = compose("grpo", plan.overrides)
    assert config.trainer.test_freq == -1 and config.data.val_files == str(train)
    for files, max_samples, rows in ((config.data.train_files, -1, 3), (config.data.val_files, 1, 1)):
        dataset = create_rl_dataset(files, config.data, tiny_vl.tokenizer, tiny_vl.processor, max_samples=max_samples)
        assert len(dataset) == rows  # what verl's _init_dataloader builds

    with pytest.raises(LaunchError, match=r"set data\.val_files"):
        grpo_plan(tmp_path, f"data.train_files='{train}'", "trainer.test_freq=5")


def test_grpo_splits_the_judge_limits_among_the_scoring_workers(tmp_path: Path) -> None:
    from verl_recipes.launch import compose

    key = "reward.custom_reward_function.reward_kwargs.judge_workers"
    for overrides, workers in (((), 8), (("actor_rollout_ref.rollout.agent.num_workers=3",), 3), ((f"{key}=2",), 2)):
        plan = grpo_plan(tmp_path, *overrides)
        assert compose("grpo", plan.overrides).reward.custom_reward_function.reward_kwargs.judge_workers == workers


def test_grpo_refuses_a_judge_cap_it_cannot_split_among_the_workers(tmp_path: Path) -> None:
    """Cap 4 over 8 scoring workers would still put 8 requests in flight (one each): refused before launch."""
    from verl_recipes.launch import LaunchError

    kwargs = "reward.custom_reward_function.reward_kwargs"
    with pytest.raises(LaunchError, match=r"judge_max_concurrency 4 is below judge_workers 8"):
        grpo_plan(tmp_path, f"{kwargs}.judge_max_concurrency=4")
    grpo_plan(tmp_path, f"{kwargs}.judge_max_concurrency=8")  # one each: fits
    grpo_plan(tmp_path, f"{kwargs}.judge_max_concurrency=4", "actor_rollout_ref.rollout.agent.num_workers=4")


def test_sft_on_cpu_uses_the_cpu_platform_in_every_rank() -> None:
    from verl_recipes.launch import compose, plan_sft

    plan = plan_sft(["data.train_files=/data/sft.parquet"], device="cpu")
    assert (
        plan.env["VERL_PLATFORM"] == "cpu" and plan.env["VERL_USE_EXTERNAL_MODULES"] == "verl_recipes.cpu.cpu_platform"
    )
    assert "--nproc-per-node=1" in plan.command and plan.shell().startswith("VERL_PLATFORM=cpu ")
    config = compose("sft", plan.overrides)
    assert config.trainer.device == "cpu" and config.model.override_config.attn_implementation == "sdpa"
    assert "hf_model" in config.checkpoint.save_contents  # train grpo takes <checkpoint>/huggingface as is
    gpu = plan_sft(["data.train_files=/data/sft.parquet"], device="gpu")
    assert gpu.env == {} and "--nproc-per-node=8" in gpu.command


def test_grpo_on_cpu_rolls_out_with_the_vllm_double_and_keeps_the_users_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from verl_recipes.launch import compose

    monkeypatch.setenv("VERL_USE_EXTERNAL_MODULES", "my_lab.plugin")
    plan = grpo_plan(tmp_path, "actor_rollout_ref.rollout.n=2", device="cpu")
    modules = plan.env["VERL_USE_EXTERNAL_MODULES"].split(",")
    assert modules == ["verl_recipes.cpu.cpu_platform", "verl_recipes.cpu.vllm_double", "my_lab.plugin"]
    assert plan.env["VERL_PLATFORM"] == "cpu" and plan.env["GEN_SEARCHER_MCP_URL"] == TOOLS
    config = compose("grpo", plan.overrides)
    rollout = config.actor_rollout_ref.rollout
    assert rollout.name == "vllm_double" and rollout.n == 2 and rollout.tensor_model_parallel_size == 1
    assert config.trainer.device == "cpu" and config.trainer.n_gpus_per_node == 1
    assert config.ray_kwargs.ray_init.num_gpus == 1 and config.reward.num_workers == 1
    # GRPO defaults to GPUs (vLLM): a CPU node never trains with the stand-in unless asked.
    gpu = compose("grpo", grpo_plan(tmp_path).overrides)
    assert gpu.actor_rollout_ref.rollout.name == "vllm" and "VERL_PLATFORM" not in grpo_plan(tmp_path).env


def test_published_settings_memory_and_checkpoints(tmp_path: Path) -> None:
    """docs/training.md#settings: the published values, the episode budget as vLLM's context, bounded checkpoints."""
    from verl_recipes.launch import compose

    config = compose("grpo", grpo_plan(tmp_path).overrides)
    actor, rollout = config.actor_rollout_ref.actor, config.actor_rollout_ref.rollout
    assert actor.loss_agg_mode == "seq-mean-token-sum" and (rollout.temperature, rollout.top_p) == (0.7, 0.95)
    assert config.trainer.total_epochs == 5 and config.trainer.max_actor_ckpt_to_keep == 3
    assert rollout.max_model_len == 4096 + 28672 == rollout.prompt_length + rollout.response_length
    assert actor.entropy_from_logits_with_chunking and actor.entropy_checkpointing
    assert "hf_model" in actor.checkpoint.save_contents
    shorter = compose("grpo", grpo_plan(tmp_path, "actor_rollout_ref.rollout.response_length=1000").overrides)
    assert shorter.actor_rollout_ref.rollout.max_model_len == 5096
    pinned = compose("grpo", grpo_plan(tmp_path, "actor_rollout_ref.rollout.max_model_len=40000").overrides)
    assert pinned.actor_rollout_ref.rollout.max_model_len == 40000  # the user's own value wins
    sft = compose("sft", ["data.train_files=/data/sft.parquet"])
    assert sft.data.train_batch_size == 8 and sft.data.truncation == "error" and sft.trainer.max_ckpt_to_keep == 3


def test_sdpa_with_padding_removal_is_refused(tmp_path: Path) -> None:
    from verl_recipes.launch import LaunchError, plan_sft

    with pytest.raises(LaunchError, match="use_remove_padding=false"):
        plan_sft(["data.train_files=/data/sft.parquet", "++model.override_config.attn_implementation=sdpa"])
    with pytest.raises(LaunchError, match=r"actor_rollout_ref\.model\.use_remove_padding=false"):
        grpo_plan(tmp_path, "++actor_rollout_ref.model.override_config.attn_implementation=sdpa")
    plan_sft(
        [
            "data.train_files=/data/sft.parquet",
            "++model.override_config.attn_implementation=sdpa",
            "model.use_remove_padding=false",
        ]
    )


def test_train_sft_plans_for_gpus_by_default() -> None:
    """A dry run on a GPU-less login node prints the GPU command, never a CPU script with 8 processes."""
    from gen_searcher_core.commands import build_app

    result = CliRunner().invoke(build_app(), ["train", "sft", "--dry-run", "data.train_files=/data/sft.parquet"])
    assert result.exit_code == 0, result.output
    assert "VERL_PLATFORM" not in result.output and "--nproc-per-node=8" in result.output
