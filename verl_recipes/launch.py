"""Build (and run) the verl commands for Gen-Searcher SFT and GRPO.

``gen-searcher train sft|grpo [OVERRIDES…]`` prints the exact verl command and runs
it. Our configs (``verl_recipes/configs/{sft,grpo}.yaml``) extend verl's own
``sft_trainer_engine`` / ``ppo_trainer`` configs; Hydra overrides (``key=value``,
``+key=value``, ``~key``) go through unchanged. Before anything runs, the full
config is composed with Hydra, so a misspelt key fails here with Hydra's message
instead of minutes later on a cluster.

For GRPO the launcher writes the agent-loop YAML (tool server URL, loop limits, and
``score_in_loop``: the loop computes the reward itself, so failed renders or judgements
are masked) into the run directory and points the reward at the render server and the judge.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gen_searcher_core.errors import UserFacingError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
Kind = Literal["sft", "grpo"]
#: ``gpu``: verl's own platform detection (CUDA, ROCm, NPU); ``cpu``: :mod:`verl_recipes.cpu.cpu_platform`.
Device = Literal["auto", "gpu", "cpu"]
#: Model settings a CPU run needs: no flash-attn (PyTorch's SDPA instead) and so no padding removal.
CPU_MODEL_OVERRIDES = ("++model.override_config.attn_implementation=sdpa", "model.use_remove_padding=false")
_EOF = "GEN_SEARCHER_EOF"


class LaunchError(UserFacingError, ValueError):
    """The command cannot be built (bad override, missing setting)."""


@dataclass
class LaunchPlan:
    kind: Kind
    command: list[str]
    overrides: list[str]
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # path -> content written before running

    def shell(self) -> str:
        """The command line, quoted for a POSIX shell, with its environment variables in front."""
        prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        cmd = " ".join(shlex.quote(part) for part in self.command)
        return f"{prefix} {cmd}" if prefix else cmd

    def script(self) -> str:
        """A shell script doing what :func:`run` does: write the plan's files, then run the command."""
        lines: list[str] = []
        for path, content in self.files.items():
            quoted = shlex.quote(path)
            lines.append(f"mkdir -p {shlex.quote(str(Path(path).parent))} && cat > {quoted} <<'{_EOF}'")
            lines.append(content.rstrip("\n"))
            lines.append(_EOF)
        lines.append(self.shell())
        return "\n".join(lines)


def check_override_syntax(overrides: Sequence[str]) -> None:
    """Each override must be Hydra's ``key=value``, ``+key=value``, ``++key=value`` or ``~key``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for item in overrides:
        try:
            parser.parse_override(item)
        except Exception as exc:  # noqa: BLE001 - Hydra raises several types
            raise LaunchError(f"bad override {item!r}: {str(exc).splitlines()[0]}") from None


def compose(kind: Kind, overrides: Sequence[str]) -> Any:
    """The full config verl would see for ``kind`` with ``overrides`` (raises LaunchError)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    check_override_syntax(overrides)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
            return hydra_compose(config_name=kind, overrides=list(overrides))
    except Exception as exc:  # noqa: BLE001 - composition errors come in several types
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LaunchError(f"invalid {kind} config: {message}") from None
    finally:
        GlobalHydra.instance().clear()


def check_reward_kwargs(reward_kwargs: Any) -> None:
    """The reward's settings as the reward workers will parse them (a typo or bad value fails here)."""
    from omegaconf import OmegaConf
    from pydantic import ValidationError

    from verl_recipes.reward import RewardSettings

    try:
        RewardSettings.from_kwargs(OmegaConf.to_container(reward_kwargs, resolve=True))  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise LaunchError(f"bad reward_kwargs: {problems}") from None
    except ValueError as exc:
        raise LaunchError(str(exc)) from None


def hydra_string(value: str) -> str:
    """``value`` as a quoted Hydra override value (paths with spaces or commas stay one string)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def no_validation_overrides(config: Any) -> list[str]:
    """Overrides for a run without validation data (``data.val_files: null``).

    verl's trainer builds a validation dataset whatever ``trainer.test_freq`` says and
    fails on ``val_files=None``; one row of the first training file stands in for it, and
    validation itself stays off.
    """
    trainer = config.trainer
    if (trainer.test_freq or -1) > 0 or trainer.val_before_train:
        raise LaunchError("validation is on (trainer.test_freq or trainer.val_before_train): set data.val_files")
    train_files = config.data.train_files
    first = train_files if isinstance(train_files, str) else next(iter(train_files))
    return [f"data.val_files={hydra_string(str(first))}", "data.val_max_samples=1"]


def agent_loop_yaml(tool_server: str, settings: dict[str, Any] | None = None) -> str:
    """verl's agent-loop config file registering the ``gen_searcher`` loop with its settings."""
    import yaml

    entry: dict[str, Any] = {
        "name": "gen_searcher",
        "_target_": "verl_recipes.agent_loop.GenSearcherAgentLoop",
        "tool_server_url": tool_server,
    }
    entry.update(settings or {})
    return str(yaml.safe_dump([entry], sort_keys=False))


def resolve_device(device: Device) -> Literal["gpu", "cpu"]:
    """``auto``: ``gpu`` where torch sees an accelerator, else ``cpu``."""
    if device != "auto":
        return device
    from verl_recipes.cpu.cpu_platform import accelerator_present

    return "gpu" if accelerator_present() else "cpu"


def cpu_env(*, with_vllm_double: bool = False) -> dict[str, str]:
    """The environment that makes every verl process (torchrun ranks, Ray workers) use the CPU platform.

    ``with_vllm_double``: verl also imports :mod:`verl_recipes.cpu.vllm_double` everywhere, which
    registers the CPU stand-in for vLLM that a GRPO run on CPU rolls out with.
    """
    from verl_recipes.cpu.cpu_platform import CPU_ENV

    env = dict(CPU_ENV)
    if with_vllm_double:
        env["VERL_USE_EXTERNAL_MODULES"] += ",verl_recipes.cpu.vllm_double"
    # Modules the user already asks verl to import stay imported.
    theirs = [m for m in os.environ.get("VERL_USE_EXTERNAL_MODULES", "").split(",") if m.strip()]
    ours = env["VERL_USE_EXTERNAL_MODULES"].split(",")
    env["VERL_USE_EXTERNAL_MODULES"] = ",".join([*ours, *(m for m in theirs if m not in ours)])
    return env


#: Ray's logical CPUs for a GRPO run on CPU: verl reserves one for each of its actors (task runner,
#: TransferQueue units, FSDP worker, agent loops), more than a small node has cores; tiny models share them.
CPU_RAY_SLOTS = 16


def cpu_grpo_overrides() -> list[str]:
    """A GRPO run on one CPU process: no vLLM (its CPU test double instead), no flash-attn, no padding removal."""
    return [
        f"ray_kwargs.ray_init.num_cpus={CPU_RAY_SLOTS}",
        # The CPU platform's worker slots (verl_recipes.cpu.cpu_platform): one per trainer process.
        "+ray_kwargs.ray_init.num_gpus=1",
        "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",
        "reward.num_workers=1",
        "trainer.device=cpu",
        "trainer.n_gpus_per_node=1",
        "actor_rollout_ref.rollout.name=vllm_double",
        "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
        "++actor_rollout_ref.model.override_config.attn_implementation=sdpa",
        "actor_rollout_ref.model.use_remove_padding=false",
        "actor_rollout_ref.model.enable_gradient_checkpointing=false",
    ]


def check_attention(model: Any, where: str) -> None:
    """``sdpa`` with padding removal is a combination verl 0.9.1 was never run with: refused, by name."""
    attention = (model.get("override_config") or {}).get("attn_implementation")
    if attention == "sdpa" and model.get("use_remove_padding"):
        raise LaunchError(
            f"{where}.override_config.attn_implementation=sdpa needs {where}.use_remove_padding=false "
            "(padding removal is written for flash-attn)"
        )


def plan_sft(
    overrides: Sequence[str],
    *,
    device: Device = "gpu",
    nproc_per_node: int | None = None,
    nnodes: int = 1,
    node_rank: int = 0,
    master_addr: str | None = None,
    master_port: int = 29500,
) -> LaunchPlan:
    on = resolve_device(device)
    if nproc_per_node is None:
        nproc_per_node = 1 if on == "cpu" else 8
    device_overrides = ["trainer.device=cpu", *CPU_MODEL_OVERRIDES] if on == "cpu" else []
    overrides = [
        *device_overrides,
        *overrides,
        f"trainer.n_gpus_per_node={nproc_per_node}",
        f"trainer.nnodes={nnodes}",
    ]
    config = compose("sft", overrides)
    check_attention(config.model, "model")
    if not config.data.train_files:
        raise LaunchError("set data.train_files=PATH.parquet (from `gen-searcher data sft`)")
    if nnodes > 1:
        if not master_addr:
            raise LaunchError("a multi-node SFT run needs --master-addr")
        dist = [
            f"--nnodes={nnodes}",
            f"--node-rank={node_rank}",
            f"--master-addr={master_addr}",
            f"--master-port={master_port}",
        ]
    else:
        dist = ["--standalone", "--nnodes=1"]
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *dist,
        f"--nproc-per-node={nproc_per_node}",
        "-m",
        "verl.trainer.sft_trainer",
        "--config-path",
        str(CONFIG_DIR),
        "--config-name",
        "sft",
        *overrides,
    ]
    env = cpu_env() if on == "cpu" else {}
    return LaunchPlan(kind="sft", command=command, overrides=list(overrides), env=env)


def plan_grpo(
    overrides: Sequence[str],
    *,
    tool_server: str | None,
    render_server: str | None = None,
    judge_url: str | None = None,
    judge_model: str | None = None,
    run_dir: Path = Path("gen-searcher-run"),
    loop_settings: dict[str, Any] | None = None,
    invalid: Literal["zero", "mask"] = "zero",
    device: Device = "gpu",
) -> LaunchPlan:
    """verl's ``main_ppo`` with the recipe's config; on ``cpu`` the rollout is :mod:`verl_recipes.cpu.vllm_double`."""
    tool_server = tool_server or os.environ.get("GEN_SEARCHER_MCP_URL")
    if not tool_server:
        raise LaunchError("GRPO needs the MCP tool server: --tool-server URL (or $GEN_SEARCHER_MCP_URL)")
    loops_path = (run_dir / "agent_loops.yaml").resolve()
    settings = {"mask_invalid": invalid == "mask", "score_in_loop": True, **(loop_settings or {})}
    kwargs = "reward.custom_reward_function.reward_kwargs"
    generated = [
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={loops_path}",
        f"{kwargs}.render_mcp_url={render_server or tool_server}",
        f"{kwargs}.invalid={invalid}",
    ]
    if judge_url:
        generated.append(f"{kwargs}.judge_base_url={judge_url}")
    if judge_model:
        generated.append(f"{kwargs}.judge_model={judge_model}")
    on = resolve_device(device)
    device_overrides = cpu_grpo_overrides() if on == "cpu" else []
    all_overrides = [*device_overrides, *generated, *overrides]  # the user's own overrides come last and win
    config = compose("grpo", all_overrides)
    check_attention(config.actor_rollout_ref.model, "actor_rollout_ref.model")
    if not config.data.train_files:
        raise LaunchError("set data.train_files=PATH.parquet (from `gen-searcher data rl`)")
    rollout = config.actor_rollout_ref.rollout
    if rollout.max_model_len is None:
        # vLLM sizes its cache for max_model_len: the episode budget, not the model's whole context.
        all_overrides.append(
            f"actor_rollout_ref.rollout.max_model_len={rollout.prompt_length + rollout.response_length}"
        )
    if not config.data.val_files:
        all_overrides += no_validation_overrides(config)
    reward_kwargs = config.reward.custom_reward_function.reward_kwargs
    if reward_kwargs.judge_workers is None:
        # The loops score in their workers: the judge limits are split among them (RewardSettings).
        reward_kwargs.judge_workers = config.actor_rollout_ref.rollout.agent.num_workers
        all_overrides.append(f"{kwargs}.judge_workers={reward_kwargs.judge_workers}")
    check_reward_kwargs(reward_kwargs)  # as the workers will read them, judge_workers included
    if not config.reward.custom_reward_function.reward_kwargs.judge_base_url and not os.environ.get(
        "GEN_SEARCHER_JUDGE_BASE_URL"
    ):
        raise LaunchError("GRPO needs a judge: --judge-url URL (or $GEN_SEARCHER_JUDGE_BASE_URL)")
    command = [
        sys.executable,
        "-m",
        "verl.trainer.main_ppo",
        "--config-path",
        str(CONFIG_DIR),
        "--config-name",
        "grpo",
        *all_overrides,
    ]
    env = {**(cpu_env(with_vllm_double=True) if on == "cpu" else {}), "GEN_SEARCHER_MCP_URL": tool_server}
    return LaunchPlan(
        kind="grpo",
        command=command,
        overrides=all_overrides,
        env=env,
        files={str(loops_path): agent_loop_yaml(tool_server, settings)},
    )


def run(plan: LaunchPlan, stdout: Any = None, stderr: Any = None) -> int:
    """Write the plan's files and run its command in the foreground; returns the exit code.

    ``stdout``/``stderr`` are passed to :func:`subprocess.run` (default: this process's).
    """
    import subprocess

    for path, content in plan.files.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(content, encoding="utf-8")
    env = {**os.environ, **plan.env}
    return subprocess.run(plan.command, env=env, check=False, stdout=stdout, stderr=stderr).returncode
