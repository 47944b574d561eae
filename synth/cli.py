"""``gen-searcher synth …``: make training data through the same tools (see docs/data.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from synth.settings import SynthSettings

app = typer.Typer(
    help="Make new SFT and RL data through the project's own tools, judge and reward.", no_args_is_help=True
)

RunDir = Annotated[Path, typer.Argument(help="the run folder (journals, images, manifest.json)")]
Config = Annotated[
    Optional[Path],  # noqa: UP045 - typer reads the annotation
    typer.Option("--config", help="TOML settings file ([synth] section; default: $GEN_SEARCHER_CONFIG)"),
]


def register(root: typer.Typer) -> None:
    """Entry point of ``gen_searcher.commands``."""
    root.add_typer(app, name="synth")


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _one_line(exc: BaseException) -> str:
    """The cause of a failed run in one line (re-raised when it is a bug rather than an input or environment)."""
    from gen_searcher_core.errors import UserFacingError, first_leaf

    leaf = first_leaf(exc)
    if isinstance(leaf, OSError) and not isinstance(leaf, ConnectionError):
        where = f" {leaf.filename}" if leaf.filename else " the run folder"
        return f"cannot write{where}: {leaf.strerror or leaf}"
    if isinstance(leaf, UserFacingError | ValueError | ConnectionError):
        text = str(leaf).strip()
        return text.splitlines()[0] if text else type(leaf).__name__
    raise exc


def _shard(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise _fail(f"--shard must look like i/N (e.g. 0/4), got {text!r}", 2) from None
    if not 0 <= index < count:
        raise _fail(f"--shard {text}: need 0 <= i < N", 2)
    return index, count


@app.command("run")
def run_command(
    run: RunDir,
    prompts: Annotated[Optional[list[Path]], typer.Option("--prompts", help="prompt JSONL file(s)")] = None,  # noqa: UP045
    teacher_url: Annotated[Optional[str], typer.Option(help="teacher API root (…/v1)")] = None,  # noqa: UP045
    teacher_model: Annotated[Optional[str], typer.Option(help="teacher model name")] = None,  # noqa: UP045
    judge_url: Annotated[Optional[str], typer.Option(help="judge API root (…/v1)")] = None,  # noqa: UP045
    judge_model: Annotated[Optional[str], typer.Option(help="judge model name")] = None,  # noqa: UP045
    tools_url: Annotated[Optional[str], typer.Option(help="MCP tool server (…/mcp); default: a local one")] = None,  # noqa: UP045
    render_url: Annotated[Optional[str], typer.Option(help="MCP server with render (default: the tools)")] = None,  # noqa: UP045
    rollouts: Annotated[Optional[int], typer.Option(help="teacher rollouts per prompt (k)", min=1)] = None,  # noqa: UP045
    policy_url: Annotated[Optional[str], typer.Option(help="SFT policy API root (calibration)")] = None,  # noqa: UP045
    policy_model: Annotated[Optional[str], typer.Option(help="SFT policy model name")] = None,  # noqa: UP045
    shard: Annotated[Optional[str], typer.Option(help="run slice i/N of the prompts (see synth merge)")] = None,  # noqa: UP045
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bars")] = False,
    config: Config = None,
) -> None:
    """All stages into RUN; a stage whose service is not given is skipped and says so. Rerun to resume."""
    from synth.journal import RunFolder
    from synth.run import run_synth
    from synth.settings import SynthConfig
    from synth.status import print_funnel

    try:
        settings = SynthConfig.load(config).synth
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(f"bad settings: {str(exc).splitlines()[0]}", 2) from None
    updates: dict[str, dict[str, object]] = {
        "teacher": {"url": teacher_url, "model": teacher_model},
        "judge": {"url": judge_url, "model": judge_model},
        "policy": {"url": policy_url, "model": policy_model},
        "trajectories": {"rollouts": rollouts},
    }
    for section, values in updates.items():
        given = {k: v for k, v in values.items() if v is not None}
        if given:
            current = getattr(settings, section)
            settings = settings.model_copy(update={section: current.model_copy(update=given)})
    top = {k: v for k, v in {"tools_url": tools_url, "render_url": render_url}.items() if v is not None}
    settings = settings.model_copy(update=top)
    try:
        result = run_synth(
            RunFolder(run), settings, list(prompts or []), config_file=config, shard=_shard(shard), progress=not quiet
        )
    except Exception as exc:  # noqa: BLE001 - task groups wrap the cause; known causes become one line
        raise _fail(_one_line(exc)) from None
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
    print_funnel(result.shape)
    if result.failure:
        raise _fail(result.failure)


@app.command("status")
def status_command(
    run: RunDir,
    as_json: Annotated[bool, typer.Option("--json", help="print the funnel as JSON")] = False,
    config: Config = None,
) -> None:
    """The funnel of RUN (from its journals; with --config, under those thresholds, calling nothing)."""
    from synth.journal import RunFolder
    from synth.run import reevaluate
    from synth.status import print_funnel

    folder = RunFolder(run)
    if not folder.items.is_file():
        raise _fail(f"{run} is not a synth run folder (no items.jsonl)")
    _, shape = reevaluate(folder, _thresholds(config))
    if as_json:
        typer.echo(json.dumps(shape, indent=1))
    else:
        print_funnel(shape, title=f"synth funnel: {run}")


def _thresholds(config: Path | None) -> SynthSettings | None:
    """With ``--config``, the file's [synth] settings; else the folder's own (None)."""
    if config is None:
        return None
    from synth.settings import SynthConfig

    try:
        return SynthConfig.load(config).synth
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(f"bad settings: {str(exc).splitlines()[0]}", 2) from None


@app.command("export")
def export_command(
    run: RunDir,
    out: Annotated[Path, typer.Option("--out", help="folder for sft/rl/dev .json and .parquet, datasheet, review")],
    processor_from: Annotated[
        Optional[Path],  # noqa: UP045 - typer reads the annotation
        typer.Option(help="the policy's processor folder: SFT rows are measured in its tokens (as data sft does)"),
    ] = None,
    max_length: Annotated[int, typer.Option(help="the SFT cutoff in tokens, with --processor-from")] = 32768,
    config: Config = None,
) -> None:
    """Select, split and export RUN offline (no service is called); the converters validate every row."""
    from gen_searcher_core.errors import UserFacingError
    from synth.export import export
    from synth.journal import RunFolder
    from synth.manifest import read_manifest
    from synth.run import reevaluate
    from synth.status import print_funnel

    folder = RunFolder(run)
    if not folder.items.is_file():
        raise _fail(f"{run} is not a synth run folder (no items.jsonl)")
    outcomes, shape = reevaluate(folder, _thresholds(config))
    try:
        counts = export(
            folder, outcomes, out, read_manifest(folder), processor_from=processor_from, max_length=max_length
        )
    except (UserFacingError, OSError) as exc:
        raise _fail(str(exc)) from None
    print_funnel(shape)
    typer.echo("wrote " + ", ".join(f"{name}: {n} rows" for name, n in counts.items()) + f" to {out}")


@app.command("merge")
def merge_command(
    out: Annotated[Path, typer.Argument(help="the merged run folder")],
    shards: Annotated[list[Path], typer.Argument(help="the shards' run folders")],
) -> None:
    """Join shard run folders into one (journals, items, images); then status/export it."""
    from synth.merge import merge

    try:
        merge(shards, out)
    except (OSError, ValueError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"merged {len(shards)} shards into {out}")


@app.command("smoke")
def smoke_command(
    work: Annotated[Optional[Path], typer.Option(help="folder for the run (default: a temporary one)")] = None,  # noqa: UP045
) -> None:
    """The whole pipeline on this machine with no keys: scripted teacher and judge, tiny renderer, local index."""
    import tempfile

    from synth.smoke import run_smoke
    from synth.status import print_funnel

    with tempfile.TemporaryDirectory(prefix="synth-smoke-") as tmp:
        folder = work or Path(tmp)
        try:
            shape, counts = run_smoke(folder)
        except Exception as exc:  # noqa: BLE001 - the smoke names what failed
            raise _fail(f"synth smoke failed: {type(exc).__name__}: {exc}") from None
        print_funnel(shape, title="synth smoke funnel")
        typer.echo("exported " + ", ".join(f"{k}: {v} rows" for k, v in counts.items()))
