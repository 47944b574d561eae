"""``gen-searcher data …`` and ``gen-searcher train …``: converters and verl launchers.

verl, torch and pyarrow are imported inside the commands, so ``gen-searcher --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import anyio
import typer

data_app = typer.Typer(help="Convert the published Gen-Searcher data to verl parquet.", no_args_is_help=True)
train_app = typer.Typer(help="Train the policy with verl: SFT, then multi-turn GRPO.", no_args_is_help=True)

ImagesRoot = Annotated[Path, typer.Option("--images-root", help="folder the records' image paths are relative to")]
Out = Annotated[Path, typer.Option("--out", help="parquet file to write")]
Overrides = Annotated[Optional[list[str]], typer.Argument(help="Hydra overrides for verl (key=value, +key=value, ~key)")]  # noqa: UP045
DryRun = Annotated[bool, typer.Option("--dry-run", help="check the config and print the command without running it")]


def _report(report: object) -> None:
    typer.echo(report.summary())  # type: ignore[attr-defined]


@data_app.command("sft")
def data_sft(
    src: Annotated[Path, typer.Argument(help="published SFT data (.json or .jsonl)")],
    images_root: ImagesRoot,
    out: Out,
    system_prompt: Annotated[
        str, typer.Option(help="'ours' (the policy's prompt, as at inference), 'keep' (the record's), or a file path")
    ] = "ours",
    require_answer: Annotated[bool, typer.Option(help="skip trajectories whose last turn has no <answer>")] = True,
) -> None:
    """Multi-turn trajectories -> verl MultiTurnSFTDataset parquet (images embedded)."""
    from verl_recipes.data import ConversionError, convert_sft

    prompt = system_prompt
    if system_prompt not in ("ours", "keep"):
        prompt = Path(system_prompt).read_text(encoding="utf-8")
    try:
        report = convert_sft(src, images_root, out, system_prompt=prompt, require_answer=require_answer)
    except ConversionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    _report(report)
    typer.echo(f"wrote {out}")


@data_app.command("rl")
def data_rl(
    src: Annotated[Path, typer.Argument(help="published RL data (.json or .jsonl): id, prompt, gt_image")],
    images_root: ImagesRoot,
    out: Out,
    data_source: Annotated[str, typer.Option(help="data_source column (reward logs group by it)")] = "knowgen",
    system_prompt_file: Annotated[Optional[Path], typer.Option(help="replace the policy's system prompt")] = None,  # noqa: UP045
) -> None:
    """Image requests with ground-truth images -> verl RL parquet for the gen_searcher agent loop."""
    from verl_recipes.data import ConversionError, convert_rl

    prompt = system_prompt_file.read_text(encoding="utf-8") if system_prompt_file else None
    try:
        report = convert_rl(src, images_root, out, data_source=data_source, system_prompt=prompt)
    except ConversionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    _report(report)
    typer.echo(f"wrote {out}")


def _launch(plan_factory: object, dry_run: bool) -> None:
    from verl_recipes.launch import LaunchError, run

    try:
        plan = plan_factory()  # type: ignore[operator]
    except LaunchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for path, content in plan.files.items():
        typer.echo(f"# {path}\n{content}")
    typer.echo(plan.shell())
    if not dry_run:
        raise typer.Exit(run(plan))


@train_app.command("sft")
def train_sft(
    overrides: Overrides = None,
    nproc_per_node: Annotated[int, typer.Option(help="GPUs per node")] = 8,
    nnodes: Annotated[int, typer.Option(help="nodes (run the same command on each, with --node-rank)")] = 1,
    node_rank: Annotated[int, typer.Option(help="this node's rank")] = 0,
    master_addr: Annotated[Optional[str], typer.Option(help="rank-0 node address (multi-node)")] = None,  # noqa: UP045
    dry_run: DryRun = False,
) -> None:
    """Supervised fine-tuning (verl sft_trainer, torchrun)."""
    from verl_recipes.launch import plan_sft

    _launch(
        lambda: plan_sft(
            overrides or [], nproc_per_node=nproc_per_node, nnodes=nnodes, node_rank=node_rank, master_addr=master_addr
        ),
        dry_run,
    )


@train_app.command("grpo")
def train_grpo(
    overrides: Overrides = None,
    tool_server: Annotated[
        Optional[str], typer.Option(help="MCP tool server URL (…/mcp)", envvar="GEN_SEARCHER_MCP_URL")  # noqa: UP045
    ] = None,
    render_server: Annotated[
        Optional[str], typer.Option(help="MCP server with the render tool (default: the tool server)")  # noqa: UP045
    ] = None,
    judge_url: Annotated[
        Optional[str], typer.Option(help="OpenAI-compatible judge API root (…/v1)", envvar="GEN_SEARCHER_JUDGE_BASE_URL")  # noqa: UP045
    ] = None,
    judge_model: Annotated[Optional[str], typer.Option(help="judge model name")] = None,  # noqa: UP045
    run_dir: Annotated[Path, typer.Option(help="where the generated agent-loop config goes")] = Path("gen-searcher-run"),
    invalid: Annotated[str, typer.Option(help="episodes without an answer: 'zero' reward or 'mask' (no loss)")] = "zero",
    max_calls: Annotated[int, typer.Option(help="model calls per episode before the forced answer")] = 9,
    dry_run: DryRun = False,
) -> None:
    """Multi-turn GRPO (verl main_ppo) with the gen_searcher agent loop and the dual reward."""
    from verl_recipes.launch import LaunchError, plan_grpo

    def factory() -> object:
        if invalid not in ("zero", "mask"):
            raise LaunchError("--invalid must be 'zero' or 'mask'")
        return plan_grpo(
            overrides or [],
            tool_server=tool_server,
            render_server=render_server,
            judge_url=judge_url,
            judge_model=judge_model,
            run_dir=run_dir,
            loop_settings={"max_calls": max_calls},
            invalid=invalid,  # type: ignore[arg-type]
        )

    _launch(factory, dry_run)


@train_app.command("tools-yaml")
def tools_yaml(
    url: Annotated[str, typer.Option("--url", help="MCP server URL (…/mcp)")],
    out: Out,
    tool: Annotated[Optional[list[str]], typer.Option("--tool", help="only these tools (repeatable)")] = None,  # noqa: UP045
    token_env: Annotated[str, typer.Option(help="variable holding the server's bearer token")] = "GEN_SEARCHER_TOKEN",
    max_text_chars: Annotated[int, typer.Option(help="text budget per tool result")] = 8000,
) -> None:
    """Write verl's tool-config YAML for an MCP server (for verl's stock tool_agent loop)."""
    from verl_recipes.mcp_session import McpConnectionError
    from verl_recipes.mcp_tool import write_tool_config

    try:
        path = anyio.run(
            lambda: write_tool_config(out, url, names=tool or None, token_env=token_env, max_text_chars=max_text_chars)
        )
    except (McpConnectionError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote {path}")
