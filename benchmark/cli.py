"""``gen-searcher bench``: KnowGen and WISE runs, scoring of other systems' results, reports, comparisons.

The commands only read their options and items; :mod:`benchmark.cli_options` declares the
shared options, :mod:`benchmark.wiring` builds the judge settings and generators, and
:func:`start_run` runs the stages (``gen-searcher demo`` calls it too). Heavy imports happen inside the commands.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from benchmark.cli_options import (
    FailureProtocol,
    FailureProtocolOpt,
    GenerationOptions,
    ImagesRootOpt,
    JudgeOptions,
    OutOpt,
    RunOptions,
    WiseProtocol,
    bundled,
    fail,
)

if TYPE_CHECKING:
    from benchmark.datasets import Item
    from benchmark.settings import JudgeSettings
    from benchmark.wiring import GeneratorFactory

T = TypeVar("T")

bench_app = typer.Typer(
    name="bench",
    help="Benchmarks: KnowGen (K-Score) and WISE, resumable runs, reports and comparisons.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """``gen-searcher bench`` (entry point of the ``gen_searcher.commands`` group)."""
    app.add_typer(bench_app, name="bench")


def _dataset(read: Callable[..., T], *args: Any) -> T:
    """``read(*args)`` with a :class:`~benchmark.datasets.DatasetError` turned into a clean exit."""
    from benchmark.datasets import DatasetError

    try:
        return read(*args)
    except DatasetError as exc:
        raise fail(str(exc)) from None


def _first(items: list[Item], limit: int | None) -> list[Item]:
    return items if limit is None else items[: max(0, limit)]


def _check_ground_truth(items: list[Item], judging: bool) -> None:
    """Refuse a run whose ground-truth images are all missing (wrong --images-root); warn about some."""
    from benchmark.datasets import missing_ground_truth

    if not judging or not items:
        return
    missing = missing_ground_truth(items)
    if missing and len(missing) == len(items):
        raise fail(
            f"none of the {len(items)} ground-truth images exist (first: {missing[0].gt_image}); "
            "pass --images-root, the folder that gt_image paths are relative to"
        )
    if missing:
        typer.echo(
            f"warning: {len(missing)} of {len(items)} ground-truth images are missing "
            f"(first: {missing[0].gt_image}); those items stay unjudged until the files exist",
            err=True,
        )


def start_run(
    *,
    benchmark: str,
    items: list[Item],
    out: Path,
    run_config: dict[str, Any],
    failures: str,
    wise_protocol: str | None,
    judge: JudgeOptions,
    run: RunOptions,
    gen: GenerationOptions | None,
) -> None:
    """Record the run, generate and judge what is not done yet, then write the report.

    ``gen`` says how to make the images; ``None`` means they exist already (``bench score``).
    """
    from benchmark.resumable_run import RunPaths, write_run_config
    from benchmark.wiring import existing_images, generator_factory, judge_settings

    settings = judge_settings(judge, gen.config if gen is not None else None) if run.stage.judges else None
    make_generator: GeneratorFactory | None = None
    if run.stage.generates:
        make_generator = existing_images() if gen is None else generator_factory(gen, out / "traces")
    policy = {"policy": "external"} if gen is None else {"policy": gen.policy, "policy_model": gen.policy_model}
    concurrency = 8 if gen is None else gen.concurrency
    config = {
        "benchmark": benchmark,
        "wise_protocol": wise_protocol,
        **run_config,
        **policy,
        "judge_model": settings.model if settings else None,
    }
    if not run.stage.generates:
        config = {k: v for k, v in config.items() if k not in ("policy", "policy_model")}
    started = time.time()
    config.update(run_metadata(gen if run.stage.generates else None), started=_timestamp(started))
    paths = RunPaths(out)
    try:
        stored = write_run_config(paths, config)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if make_generator is not None or settings is not None:
        import anyio

        try:
            anyio.run(
                lambda: _stages(
                    benchmark, items, paths, failures, wise_protocol, make_generator, settings, concurrency, run
                )
            )
        except KeyboardInterrupt:
            typer.echo("interrupted: finished items are saved; rerun the same command to resume", err=True)
            raise typer.Exit(130) from None
        finished = {"finished": _timestamp(time.time()), "duration_s": round(time.time() - started, 1)}
        stored = write_run_config(paths, {**config, **finished})
    if run.stage.reports:
        _report(benchmark, items, out, failures, wise_protocol, stored)


def _timestamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(seconds))


def source_commit() -> str | None:
    """The git commit of this installation's source (``-dirty`` with local changes), from a checkout; else None."""
    import subprocess

    try:
        done = subprocess.run(
            ["git", "-C", str(Path(__file__).resolve().parent), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def run_metadata(gen: GenerationOptions | None) -> dict[str, Any]:
    """What a report shows about how its images were made: version, commit, seed and render settings."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed: str | None = version("gen-searcher")
    except PackageNotFoundError:
        installed = None
    meta: dict[str, Any] = {"gen_searcher": installed, "commit": source_commit()}
    if gen is not None:
        meta.update(
            seed=gen.seed,
            render=gen.render,
            render_model=gen.render_model or gen.render_edit_model,
            size=f"{gen.width}x{gen.height}",
            steps=gen.steps,
            concurrency=gen.concurrency,
        )
    return meta


async def _stages(
    benchmark: str,
    items: list[Item],
    paths: Any,
    failures: str,
    wise_protocol: str | None,
    make_generator: GeneratorFactory | None,
    settings: JudgeSettings | None,
    concurrency: int,
    run: RunOptions,
) -> None:
    from rich.console import Console

    from benchmark.judge import JudgeClient
    from benchmark.progress import RunProgress
    from benchmark.resumable_run import run_stages

    console = Console(stderr=True)
    async with contextlib.AsyncExitStack() as stack:
        generator = await stack.enter_async_context(make_generator()) if make_generator else None
        judge = await stack.enter_async_context(JudgeClient(settings)) if settings else None
        outcome = await run_stages(
            items,
            paths,
            generator=generator,
            judge=judge,
            judge_item=_judge_item(benchmark, wise_protocol),
            concurrency=concurrency,
            judge_concurrency=settings.max_concurrency if settings else 1,
            retry_failed=run.retry_failed,
            progress=RunProgress(enabled=run.progress, console=console),
        )
    for name, counts in (("generate", outcome.generate), ("judge", outcome.judge)):
        if counts.done or counts.failed:
            console.print(f"{name}: {counts.done} done, {counts.failed} failed, {counts.skipped} already done")
        for line in counts.errors[:5]:
            console.print(f"  [red]{line}[/red]", markup=True, highlight=False)
        if len(counts.errors) > 5:
            console.print(f"  ... and {len(counts.errors) - 5} more (see report.md)")


def _report(
    benchmark: str, items: list[Item], out: Path, failures: str, wise_protocol: str | None, run_config: dict[str, Any]
) -> None:
    from benchmark.report import summarize, write_report

    summary = summarize(benchmark, items, out, failures, wise_protocol)  # type: ignore[arg-type]
    report = write_report(out, summary, run_config, items)
    overall = summary["overall"]
    shown = "-" if overall is None else (f"{overall:.3f}" if benchmark == "wise" else f"{overall:.2f}")
    counts = summary["counts"]
    typer.echo(f"overall: {shown}  ({counts['scored']}/{counts['items']} scored)  report: {report}")
    for path in written_pages(out):
        typer.echo(f"wrote {path}")


def written_pages(out: Path) -> list[Path]:
    """What the report stage leaves for people to open: the pages, the summary, the traces' folder."""
    names = ("report.html", "report.md", "summary.json", "traces", "compare.html", "compare.md", "compare.png")
    return [out / name for name in names if (out / name).exists()]


def _judge_item(benchmark: str, wise_protocol: str | None) -> Any:
    from benchmark.rubrics import judge_kscore, judge_wise
    from benchmark.rubrics.wise import Protocol

    if benchmark == "wise":
        if wise_protocol not in ("legacy", "verified"):
            raise ValueError(f"unknown WISE protocol {wise_protocol!r}")
        protocol: Protocol = "legacy" if wise_protocol == "legacy" else "verified"

        async def judge_one(client: Any, item: Any, image: Path) -> Any:
            return await judge_wise(
                client,
                protocol=protocol,
                prompt=item.prompt,
                explanation=item.explanation,
                image=image,
            )
    else:

        async def judge_one(client: Any, item: Any, image: Path) -> Any:
            return await judge_kscore(client, prompt=item.prompt, image=image, gt_image=item.gt_image)

    return judge_one


@bench_app.command("knowgen")
@bundled
def knowgen(
    *,
    data: Annotated[Path, typer.Option("--data", help="KnowGen items (JSON list: id, prompt, meta, gt_image).")],
    images_root: ImagesRootOpt = None,
    out: OutOpt,
    protocol: FailureProtocolOpt = FailureProtocol.strict,
    gen: GenerationOptions,
    judge: JudgeOptions,
    run: RunOptions,
) -> None:
    """Run KnowGen: generate each prompt's image, judge it against the ground truth (K-Score), report."""
    from benchmark.datasets import load_knowgen

    items = _first(_dataset(load_knowgen, data, images_root), run.limit)
    _check_ground_truth(items, run.stage.judges)
    start_run(
        benchmark="knowgen",
        items=items,
        out=out,
        run_config={"data": str(data), "images_root": str(images_root or data.parent)},
        failures="drop" if protocol is FailureProtocol.published else "zero",
        wise_protocol=None,
        judge=judge,
        run=run,
        gen=gen,
    )


@bench_app.command("wise")
@bundled
def wise(
    *,
    protocol: Annotated[WiseProtocol, typer.Option("--protocol", help="legacy (WiScore) or verified (pass/fail).")],
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="WISE json files: a folder (or one file), or the folder holding legacy/ and "
            "verified/ (default: wise_dir in --config, or $GEN_SEARCHER_WISE_DIR).",
        ),
    ] = None,
    out: OutOpt,
    drop_failures: Annotated[
        bool, typer.Option("--drop-failures", help="Leave failed generations out instead of scoring them 0.")
    ] = False,
    gen: GenerationOptions,
    judge: JudgeOptions,
    run: RunOptions,
) -> None:
    """Run WISE under the legacy (WiScore) or verified (pass/fail) protocol."""
    from benchmark.datasets import load_wise, wise_data_path
    from benchmark.wiring import bench_config

    wise_dir = bench_config(gen.config).wise_dir if data is None else None
    folder = _dataset(wise_data_path, data, protocol.value, wise_dir)
    items = _first(_dataset(load_wise, folder), run.limit)
    start_run(
        benchmark="wise",
        items=items,
        out=out,
        run_config={"data": str(folder)},
        failures="drop" if drop_failures else "zero",
        wise_protocol=protocol.value,
        judge=judge,
        run=run,
        gen=gen,
    )


@bench_app.command("score")
@bundled
def score(
    results: Annotated[Path, typer.Argument(help="Results file: id, success, prompt, meta, output_path, gt_image.")],
    *,
    images_root: ImagesRootOpt = None,
    outputs_root: Annotated[
        Path | None,
        typer.Option("--outputs-root", help="Root of relative output_path values (default: the file's folder)."),
    ] = None,
    out: OutOpt,
    protocol: FailureProtocolOpt = FailureProtocol.strict,
    judge: JudgeOptions,
    run: RunOptions,
) -> None:
    """Judge images another system produced (published results format) with the K-Score rubric."""
    from benchmark.datasets import load_results

    items = _first(_dataset(load_results, results, images_root, outputs_root), run.limit)
    _check_ground_truth(items, run.stage.judges)
    start_run(
        benchmark="score",
        items=items,
        out=out,
        run_config={"data": str(results)},
        failures="drop" if protocol is FailureProtocol.published else "zero",
        wise_protocol=None,
        judge=judge,
        run=run,
        gen=None,
    )


@bench_app.command("compare")
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Run folders (each with summary.json).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write compare.md, compare.png and compare.html (items side by side) here."),
    ] = None,
) -> None:
    """Put runs side by side (same benchmark and protocol only)."""
    from benchmark.report import CompareError, compare_runs

    if len(runs) < 2:
        raise fail("give at least two run folders")
    try:
        typer.echo(compare_runs(runs, out), nl=False)
    except CompareError as exc:
        raise fail(str(exc)) from None
    for path in written_pages(out) if out is not None else []:
        typer.echo(f"wrote {path}")
