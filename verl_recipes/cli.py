"""``gen-searcher data …`` and ``gen-searcher train …``: converters and verl launchers.

verl, torch and pyarrow are imported inside the commands, so ``gen-searcher --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import anyio
import typer

from gen_searcher_core.commands import require_modules

if TYPE_CHECKING:
    from verl_recipes.data import ConversionReport
    from verl_recipes.launch import LaunchPlan

T = TypeVar("T")

data_app = typer.Typer(help="Convert the published Gen-Searcher data to verl parquet.", no_args_is_help=True)
train_app = typer.Typer(help="Train the policy with verl: SFT, then multi-turn GRPO.", no_args_is_help=True)


@data_app.callback()
def _data_needs_train_extra() -> None:
    require_modules("train", "pyarrow")


@train_app.callback()
def _train_needs_train_extra() -> None:
    require_modules("train", "verl")


def register_data(app: typer.Typer) -> None:
    """``gen-searcher data`` (entry point of the ``gen_searcher.commands`` group)."""
    app.add_typer(data_app, name="data")


def register_train(app: typer.Typer) -> None:
    """``gen-searcher train`` (entry point of the ``gen_searcher.commands`` group)."""
    app.add_typer(train_app, name="train")


ImagesRoot = Annotated[
    Path,
    typer.Option("--images-root", exists=True, file_okay=False, help="folder the records' image paths are relative to"),
]
Out = Annotated[Path, typer.Option("--out", help="parquet file to write")]
Overrides = Annotated[list[str] | None, typer.Argument(help="Hydra overrides for verl (key=value, +key=value, ~key)")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="check the config and print the command without running it")]


class OverLength(StrEnum):
    """What ``data sft`` does with a row over ``--max-length``."""

    drop = "drop"
    split_turns = "split"  # not ``split``: that would shadow str.split


class Device(StrEnum):
    """Where verl runs: auto (GPUs when torch sees one, else CPU), gpu, or cpu (the CPU platform)."""

    auto = "auto"
    gpu = "gpu"
    cpu = "cpu"


DeviceOption = Annotated[
    Device, typer.Option(help="auto: GPUs if present, else CPU (verl_recipes.cpu.cpu_platform; small models only)")
]


class Invalid(StrEnum):
    """What happens to episodes that end without a valid answer."""

    zero = "zero"
    mask = "mask"


def _or_exit(action: Callable[[], T], errors: type[Exception] | tuple[type[Exception], ...], code: int = 1) -> T:
    """``action()``, or its error as one line on stderr and exit ``code``."""
    try:
        return action()
    except errors as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code) from None


def _read_text(path: Path) -> str:
    def read() -> str:
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None

    return _or_exit(read, ValueError)


def _convert(convert: Callable[[], ConversionReport], out: Path) -> None:
    """Run a converter; print its report (rows kept, skipped and why) or its error."""
    from verl_recipes.data import ConversionError

    report = _or_exit(convert, ConversionError)
    typer.echo(report.summary())
    typer.echo(f"wrote {out}")


@data_app.command("sft")
def data_sft(
    src: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="published SFT data (.json or .jsonl)")],
    images_root: ImagesRoot,
    out: Out,
    system_prompt: Annotated[
        str, typer.Option(help="'ours' (the policy's prompt, as at inference), 'keep' (the record's), or a file path")
    ] = "ours",
    require_answer: Annotated[bool, typer.Option(help="skip trajectories whose last turn has no <answer>")] = True,
    processor_from: Annotated[
        Path | None,
        typer.Option(
            exists=True, file_okay=False, help="the policy's processor folder: rows are measured in its tokens"
        ),
    ] = None,
    max_length: Annotated[
        int, typer.Option(help="the SFT cutoff (the recipe's data.max_length); 0: do not measure rows")
    ] = 32768,
    over_length: Annotated[
        OverLength, typer.Option(help="rows over max_length: drop them, or split them to the whole turns that fit")
    ] = OverLength.drop,
) -> None:
    """Multi-turn trajectories -> verl MultiTurnSFTDataset parquet (images embedded, rows within max_length)."""
    from verl_recipes.data import LengthLimit, SftTokenCounter, convert_sft

    prompt = system_prompt if system_prompt in ("ours", "keep") else _read_text(Path(system_prompt))
    if max_length > 0 and processor_from is None:
        typer.echo(
            "error: --processor-from DIR is needed to measure rows against --max-length "
            "(a row verl cuts past an image stops the run); --max-length 0 skips the check",
            err=True,
        )
        raise typer.Exit(2)

    def convert() -> ConversionReport:
        limit = None
        if max_length > 0 and processor_from is not None:
            limit = LengthLimit(SftTokenCounter(processor_from), max_length, over_length.value)
        return convert_sft(src, images_root, out, system_prompt=prompt, require_answer=require_answer, limit=limit)

    _convert(convert, out)


@data_app.command("rl")
def data_rl(
    src: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="published RL data (.json or .jsonl): id, prompt, gt_image"),
    ],
    images_root: ImagesRoot,
    out: Out,
    data_source: Annotated[str, typer.Option(help="data_source column (reward logs group by it)")] = "knowgen",
    system_prompt_file: Annotated[
        Path | None,
        typer.Option(help="replace the policy's system prompt (give `train grpo` the same file)"),
    ] = None,
) -> None:
    """Image requests with ground-truth images -> verl RL parquet for the gen_searcher agent loop."""
    from verl_recipes.data import convert_rl

    prompt = _read_text(system_prompt_file) if system_prompt_file else None
    _convert(lambda: convert_rl(src, images_root, out, data_source=data_source, system_prompt=prompt), out)


def _launch(plan_factory: Callable[[], LaunchPlan], dry_run: bool) -> None:
    """Print the plan as a shell script (runnable as is); unless ``dry_run``, run it."""
    from verl_recipes.launch import LaunchError, run

    plan = _or_exit(plan_factory, LaunchError, code=2)
    typer.echo(plan.script())
    if not dry_run:
        raise typer.Exit(run(plan))


@train_app.command("sft")
def train_sft(
    overrides: Overrides = None,
    device: Annotated[
        Device,
        typer.Option(
            help="gpu (default, like train grpo): the node's GPUs, even when planned on a GPU-less login node; "
            "cpu: the CPU platform (small models only); auto: GPUs if torch sees one"
        ),
    ] = Device.gpu,
    nproc_per_node: Annotated[
        int | None, typer.Option(help="processes per node (default: 8 GPUs, or 1 on CPU)")
    ] = None,
    nnodes: Annotated[int, typer.Option(help="nodes (run the same command on each, with --node-rank)")] = 1,
    node_rank: Annotated[int, typer.Option(help="this node's rank")] = 0,
    master_addr: Annotated[str | None, typer.Option(help="rank-0 node address (multi-node)")] = None,
    dry_run: DryRun = False,
) -> None:
    """Supervised fine-tuning (verl sft_trainer, torchrun)."""
    from verl_recipes.launch import plan_sft

    _launch(
        lambda: plan_sft(
            overrides or [],
            device=device.value,
            nproc_per_node=nproc_per_node,
            nnodes=nnodes,
            node_rank=node_rank,
            master_addr=master_addr,
        ),
        dry_run,
    )


@train_app.command("grpo")
def train_grpo(
    overrides: Overrides = None,
    tool_server: Annotated[
        str | None, typer.Option(help="MCP tool server URL (…/mcp)", envvar="GEN_SEARCHER_MCP_URL")
    ] = None,
    render_server: Annotated[
        str | None, typer.Option(help="MCP server with the render tool (default: the tool server)")
    ] = None,
    judge_url: Annotated[
        str | None,
        typer.Option(help="OpenAI-compatible judge API root (…/v1)", envvar="GEN_SEARCHER_JUDGE_BASE_URL"),
    ] = None,
    judge_model: Annotated[str | None, typer.Option(help="judge model name")] = None,
    run_dir: Annotated[Path, typer.Option(help="where the generated agent-loop config goes")] = Path(
        "gen-searcher-run"
    ),
    invalid: Annotated[
        Invalid,
        typer.Option(help="episodes without an answer: 'zero' reward, or 'mask' (no loss, left out of GRPO groups)"),
    ] = Invalid.zero,
    max_calls: Annotated[int, typer.Option(help="model calls per episode before the forced answer")] = 9,
    system_prompt_file: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="the policy's system prompt (the one given to `data rl`)"),
    ] = None,
    device: Annotated[
        Device,
        typer.Option(help="gpu: vLLM rollouts; cpu: the CPU platform and vLLM's test double (tiny models only)"),
    ] = Device.gpu,
    dry_run: DryRun = False,
) -> None:
    """Multi-turn GRPO (verl main_ppo) with the gen_searcher agent loop and the dual reward."""
    from verl_recipes.launch import plan_grpo

    def factory() -> LaunchPlan:
        return plan_grpo(
            overrides or [],
            tool_server=tool_server,
            render_server=render_server,
            judge_url=judge_url,
            judge_model=judge_model,
            run_dir=run_dir,
            loop_settings={
                "max_calls": max_calls,
                **({"system_prompt_file": str(system_prompt_file.resolve())} if system_prompt_file else {}),
            },
            invalid=invalid.value,
            device=device.value,
        )

    _launch(factory, dry_run)


@train_app.command("smoke")
def train_smoke(
    processor_from: Annotated[
        Path,
        typer.Option(exists=True, file_okay=False, help="folder with the policy's tokenizer and processor (local)"),
    ],
    work: Annotated[Path, typer.Option(help="scratch folder for the tiny model, data and checkpoint")] = Path(
        "gen-searcher-smoke"
    ),
    device: DeviceOption = Device.auto,
) -> None:
    """Check this node before a real launch: tiny model, SFT data, one SFT step, HF weights; prints what passed."""
    from verl_recipes.cpu.smoke import run_smoke

    checks = run_smoke(processor_from, work, device.value)
    for check in checks:
        typer.echo(check.line())
    if any(check.ok is False for check in checks):
        raise typer.Exit(1)


@train_app.command("tools-yaml")
def tools_yaml(
    url: Annotated[str, typer.Option("--url", help="MCP server URL (…/mcp)")],
    out: Out,
    tool: Annotated[list[str] | None, typer.Option("--tool", help="only these tools (repeatable)")] = None,
    token_env: Annotated[str, typer.Option(help="variable holding the server's bearer token")] = "GEN_SEARCHER_TOKEN",
    max_text_chars: Annotated[int, typer.Option(help="text budget per tool result")] = 8000,
) -> None:
    """Write verl's tool-config YAML for an MCP server (for verl's stock tool_agent loop)."""
    from policy.mcp_client import McpConnectionError
    from verl_recipes.mcp_tool import write_tool_config

    write = lambda: write_tool_config(out, url, names=tool or None, token_env=token_env, max_text_chars=max_text_chars)  # noqa: E731
    path = _or_exit(lambda: anyio.run(write), (McpConnectionError, ValueError))
    typer.echo(f"wrote {path}")
