"""``gen-searcher bench``: KnowGen and WISE runs, scoring of other systems' results, reports, comparisons.

Heavy imports (renderers, MCP client, matplotlib) happen inside the commands.
"""

from __future__ import annotations

import contextlib
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:
    from benchmark.datasets import Item
    from benchmark.generate import Generator
    from benchmark.judge import JudgeSettings

bench_app = typer.Typer(
    name="bench",
    help="Benchmarks: KnowGen (K-Score) and WISE, resumable runs, reports and comparisons.",
    no_args_is_help=True,
)


class FailureProtocol(str, Enum):
    strict = "strict"
    published = "published"


class WiseProtocol(str, Enum):
    legacy = "legacy"
    verified = "verified"


class Stage(str, Enum):
    all = "all"
    generate = "generate"
    judge = "judge"
    report = "report"


# ---- shared options (typer needs Optional[...] rather than X | None in Annotated) -----------------

OutOpt = Annotated[Path, typer.Option("--out", help="Run folder (created; a rerun resumes it).")]
PolicyOpt = Annotated[
    str,
    typer.Option(
        "--policy",
        help="none: render the prompt as is (no search); baseline: the no-model search baseline; "
        "or an OpenAI-compatible policy model URL (e.g. http://localhost:8001/v1).",
    ),
]
PolicyModelOpt = Annotated[Optional[str], typer.Option("--policy-model", help="Model name on the policy server.")]  # noqa: UP045
McpUrlOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--mcp-url", help="Tool server (streamable HTTP /mcp URL); in-process from --config when omitted."),
]
RenderOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--render", help="Render backend: diffusers | http | openai (default: the settings' render backend)."),
]
RenderUrlOpt = Annotated[Optional[str], typer.Option("--render-url", help="Render server or images API URL.")]  # noqa: UP045
RenderModelOpt = Annotated[Optional[str], typer.Option("--render-model", help="Qwen-Image model id or folder.")]  # noqa: UP045
RenderEditOpt = Annotated[
    Optional[str], typer.Option("--render-edit-model", help="Qwen-Image-Edit model id or folder.")  # noqa: UP045
]
WidthOpt = Annotated[int, typer.Option("--width", help="Image width.")]
HeightOpt = Annotated[int, typer.Option("--height", help="Image height.")]
StepsOpt = Annotated[Optional[int], typer.Option("--steps", help="Denoising steps (default: the pipeline's).")]  # noqa: UP045
SeedOpt = Annotated[int, typer.Option("--seed", help="Base seed; each item's seed derives from it and the item id.")]
JudgeUrlOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--judge-url", help="OpenAI-compatible judge API root (default $GEN_SEARCHER_JUDGE_BASE_URL)."),
]
JudgeModelOpt = Annotated[
    Optional[str], typer.Option("--judge-model", help="Judge model (default $GEN_SEARCHER_JUDGE_MODEL or gpt-4.1).")  # noqa: UP045
]
JudgeConcOpt = Annotated[int, typer.Option("--judge-concurrency", help="Judge requests in flight.")]
ConcOpt = Annotated[int, typer.Option("--concurrency", help="Items generated at the same time.")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", help="Only the first N items.")]  # noqa: UP045
StageOpt = Annotated[Stage, typer.Option("--stage", help="Run only this stage (all = generate, judge, report).")]
RetryOpt = Annotated[bool, typer.Option("--retry-failed", help="Run failed items again instead of skipping them.")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="TOML settings (render, tool server).")]  # noqa: UP045
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Live progress bars on stderr.")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _judge_settings(url: str | None, model: str | None, concurrency: int) -> JudgeSettings:
    from benchmark.judge import JudgeSettings

    overrides: dict[str, Any] = {"max_concurrency": concurrency}
    if url:
        overrides["base_url"] = url
    if model:
        overrides["model"] = model
    settings = JudgeSettings(**overrides)
    if settings.api_key is None and "api.openai.com" in settings.base_url:
        raise _fail("the judge needs a key: set GEN_SEARCHER_JUDGE_API_KEY or OPENAI_API_KEY, or pass --judge-url")
    return settings


def _load_settings(config: Path | None, render: str | None, render_url: str | None, render_model: str | None,
                   render_edit_model: str | None) -> Any:
    from mcp_server.settings import load_settings

    try:
        settings = load_settings(config)
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(f"bad settings: {exc}") from None
    updates = {k: v for k, v in {"backend": render, "url": render_url, "model": render_model,
                                 "edit_model": render_edit_model}.items() if v is not None}
    if updates:
        settings.render = settings.render.model_validate({**settings.render.model_dump(), **updates})
    return settings


@contextlib.asynccontextmanager
async def _generator(
    policy: str,
    policy_model: str | None,
    mcp_url: str | None,
    settings: Any,
    render_options: Any,
    traces: Path,
) -> Any:
    """The generator for ``--policy`` with everything it holds open."""
    from render_tools.base import RenderError
    from render_tools.factory import create_renderer

    from benchmark.generate import DirectGenerator, PolicyGenerator

    try:
        renderer = create_renderer(settings.render, openai_api_key=settings.openai_api_key)
    except RenderError as exc:
        raise _fail(f"renderer: {exc}") from None
    if renderer is None:
        raise _fail("no renderer: pass --render diffusers|http|openai (with --render-url / --render-model)")
    if policy == "none":
        generator = DirectGenerator(renderer, render_options)
        try:
            yield generator
        finally:
            await generator.aclose()
        return
    from policy.mcp_tools import ToolSessionError

    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(renderer.aclose)
        try:
            tools = await stack.enter_async_context(_tools(mcp_url, settings))
        except ToolSessionError as exc:
            raise _fail(f"tool server: {exc}") from None
        chat = None
        if policy != "baseline":
            from policy.chat import OpenAIChatModel

            chat = OpenAIChatModel(policy, policy_model or "")
            stack.push_async_callback(chat.aclose)
        yield PolicyGenerator(_episode_runner(tools, chat, policy_model, traces), renderer, render_options)


@contextlib.asynccontextmanager
async def _tools(mcp_url: str | None, settings: Any) -> Any:
    from policy.mcp_tools import McpTools

    if mcp_url:
        async with McpTools.connect(mcp_url) as tools:
            yield tools
        return
    from mcp_server.server import build_server
    from mcp_server.services import open_services

    async with open_services(settings) as services:
        async with McpTools.connect(build_server(services)) as tools:
            yield tools


def _decode_rgb(data: bytes) -> Any:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def _episode_runner(tools: Any, chat: Any, model_name: str | None, traces: Path) -> Any:
    import json

    import anyio

    from policy.baseline import run_baseline
    from policy.driver import run_episode

    from benchmark.generate import safe_name

    async def run(item: Any) -> tuple[Any, dict[str, Any]]:
        prompt = item.prompt
        if chat is None:
            episode = await run_baseline(prompt, tools)
        else:
            episode = await run_episode(prompt, chat, tools, model_name=model_name)
        images: dict[str, Any] = {}
        for store_id in episode.result.generator_image_ids:
            data, _ = await tools.read_image(store_id)
            images[store_id] = await anyio.to_thread.run_sync(_decode_rgb, data)
        await anyio.Path(traces).mkdir(parents=True, exist_ok=True)
        name = f"{safe_name(item.id)}.json"
        await anyio.Path(traces / name).write_text(json.dumps(episode.trace(), ensure_ascii=False, default=str))
        return episode.result, images

    return run


async def _run(
    *,
    benchmark: str,
    items: list[Item],
    out: Path,
    run_config: dict[str, Any],
    stage: Stage,
    failures: str,
    wise_protocol: str | None,
    make_generator: Any,
    judge_settings: JudgeSettings | None,
    concurrency: int,
    retry_failed: bool,
    progress: bool,
) -> int:
    from rich.console import Console

    from benchmark.judge import JudgeClient
    from benchmark.progress import RunProgress
    from benchmark.report import summarize, write_report
    from benchmark.runner import RunPaths, run_stages, write_run_config

    console = Console(stderr=True)
    paths = RunPaths(out)
    try:
        stored = write_run_config(paths, run_config)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    do_generate = stage in (Stage.all, Stage.generate)
    do_judge = stage in (Stage.all, Stage.judge) and judge_settings is not None
    if do_generate or do_judge:
        judge_item = _judge_item(benchmark, wise_protocol)
        async with contextlib.AsyncExitStack() as stack:
            generator: Generator | None = None
            if do_generate:
                generator = await stack.enter_async_context(make_generator())
            judge = None
            if do_judge:
                assert judge_settings is not None
                judge = await stack.enter_async_context(JudgeClient(judge_settings))
            outcome = await run_stages(
                items,
                paths,
                generator=generator,
                judge=judge,
                judge_item=judge_item,
                concurrency=concurrency,
                judge_concurrency=judge_settings.max_concurrency if judge_settings else 1,
                retry_failed=retry_failed,
                progress=RunProgress(enabled=progress, console=console),
            )
        for name, counts in (("generate", outcome.generate), ("judge", outcome.judge)):
            if counts.done or counts.failed:
                console.print(f"{name}: {counts.done} done, {counts.failed} failed, {counts.skipped} already done")
            for line in counts.errors[:5]:
                console.print(f"  [red]{line}[/red]")
    if stage in (Stage.all, Stage.report):
        summary = summarize(benchmark, items, out, failures, wise_protocol)  # type: ignore[arg-type]
        report = write_report(out, summary, stored)
        overall = summary["overall"]
        shown = "-" if overall is None else (f"{overall:.3f}" if benchmark == "wise" else f"{overall:.2f}")
        typer.echo(f"overall: {shown}  ({summary['counts']['scored']}/{summary['counts']['items']} scored)  "
                   f"report: {report}")
    return 0


def _judge_item(benchmark: str, wise_protocol: str | None) -> Any:
    from benchmark.rubrics import judge_kscore, judge_wise

    if benchmark == "wise":
        async def judge_one(client: Any, item: Any, image: Path) -> Any:
            return await judge_wise(client, protocol=wise_protocol, prompt=item.prompt,  # type: ignore[arg-type]
                                    explanation=item.explanation, image=image)
    else:
        async def judge_one(client: Any, item: Any, image: Path) -> Any:
            return await judge_kscore(client, prompt=item.prompt, image=image, gt_image=item.gt_image)
    return judge_one


def _execute(**kwargs: Any) -> None:
    import anyio

    try:
        code = anyio.run(lambda: _run(**kwargs))
    except KeyboardInterrupt:
        typer.echo("interrupted: finished items are saved; rerun the same command to resume", err=True)
        raise typer.Exit(130) from None
    raise typer.Exit(code)


def _limit(items: list[Any], limit: int | None) -> list[Any]:
    return items if limit is None else items[: max(0, limit)]


def _generation_setup(policy: str, policy_model: str | None, mcp_url: str | None, config: Path | None,
                      render: str | None, render_url: str | None, render_model: str | None,
                      render_edit_model: str | None, width: int, height: int, steps: int | None, seed: int,
                      out: Path, stage: Stage) -> Any:
    from benchmark.generate import RenderOptions

    if stage not in (Stage.all, Stage.generate):
        return None
    if policy not in ("none", "baseline"):
        if not policy.startswith(("http://", "https://")):
            raise _fail(f"--policy must be none, baseline or a model server URL, got {policy!r}")
        if not policy_model:
            raise _fail("--policy-model is required with a policy model URL")
    settings = _load_settings(config, render, render_url, render_model, render_edit_model)
    options = RenderOptions(width=width, height=height, steps=steps, seed=seed)
    return lambda: _generator(policy, policy_model, mcp_url, settings, options, out / "traces")


@bench_app.command("knowgen")
def knowgen(
    data: Annotated[Path, typer.Option("--data", help="KnowGen items (JSON list: id, prompt, meta, gt_image).")],
    out: OutOpt,
    images_root: Annotated[Optional[Path], typer.Option("--images-root", help="Root of gt_image paths.")] = None,  # noqa: UP045
    policy: PolicyOpt = "none",
    policy_model: PolicyModelOpt = None,
    mcp_url: McpUrlOpt = None,
    render: RenderOpt = None,
    render_url: RenderUrlOpt = None,
    render_model: RenderModelOpt = None,
    render_edit_model: RenderEditOpt = None,
    width: WidthOpt = 1024,
    height: HeightOpt = 1024,
    steps: StepsOpt = None,
    seed: SeedOpt = 42,
    judge_url: JudgeUrlOpt = None,
    judge_model: JudgeModelOpt = None,
    judge_concurrency: JudgeConcOpt = 8,
    concurrency: ConcOpt = 2,
    limit: LimitOpt = None,
    protocol: Annotated[
        FailureProtocol,
        typer.Option("--protocol", help="strict: failed generations score 0; published: they are dropped."),
    ] = FailureProtocol.strict,
    stage: StageOpt = Stage.all,
    retry_failed: RetryOpt = False,
    config: ConfigOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Run KnowGen: generate each prompt's image, judge it against the ground truth (K-Score), report."""
    from benchmark.datasets import DatasetError, load_knowgen

    try:
        items = _limit(load_knowgen(data, images_root), limit)
    except DatasetError as exc:
        raise _fail(str(exc)) from None
    judge_settings = (_judge_settings(judge_url, judge_model, judge_concurrency)
                      if stage in (Stage.all, Stage.judge) else None)
    _execute(
        benchmark="knowgen",
        items=items,
        out=out,
        run_config={"benchmark": "knowgen", "data": str(data), "images_root": str(images_root or data.parent),
                    "policy": policy, "policy_model": policy_model,
                    "judge_model": judge_settings.model if judge_settings else None},
        stage=stage,
        failures="drop" if protocol is FailureProtocol.published else "zero",
        wise_protocol=None,
        make_generator=_generation_setup(policy, policy_model, mcp_url, config, render, render_url, render_model,
                                         render_edit_model, width, height, steps, seed, out, stage),
        judge_settings=judge_settings,
        concurrency=concurrency,
        retry_failed=retry_failed,
        progress=progress,
    )


@bench_app.command("wise")
def wise(
    data: Annotated[Path, typer.Option("--data", help="Folder of WISE json files (or one file).")],
    out: OutOpt,
    protocol: Annotated[WiseProtocol, typer.Option("--protocol", help="legacy (WiScore) or verified (pass/fail).")],
    policy: PolicyOpt = "none",
    policy_model: PolicyModelOpt = None,
    mcp_url: McpUrlOpt = None,
    render: RenderOpt = None,
    render_url: RenderUrlOpt = None,
    render_model: RenderModelOpt = None,
    render_edit_model: RenderEditOpt = None,
    width: WidthOpt = 1024,
    height: HeightOpt = 1024,
    steps: StepsOpt = None,
    seed: SeedOpt = 42,
    judge_url: JudgeUrlOpt = None,
    judge_model: JudgeModelOpt = None,
    judge_concurrency: JudgeConcOpt = 8,
    concurrency: ConcOpt = 2,
    limit: LimitOpt = None,
    drop_failures: Annotated[
        bool, typer.Option("--drop-failures", help="Leave failed generations out instead of scoring them 0.")
    ] = False,
    stage: StageOpt = Stage.all,
    retry_failed: RetryOpt = False,
    config: ConfigOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Run WISE under the legacy (WiScore) or verified (pass/fail) protocol."""
    from benchmark.datasets import DatasetError, load_wise

    try:
        items = _limit(load_wise(data), limit)
    except DatasetError as exc:
        raise _fail(str(exc)) from None
    judge_settings = (_judge_settings(judge_url, judge_model, judge_concurrency)
                      if stage in (Stage.all, Stage.judge) else None)
    _execute(
        benchmark="wise",
        items=items,
        out=out,
        run_config={"benchmark": "wise", "wise_protocol": protocol.value, "data": str(data), "policy": policy,
                    "policy_model": policy_model, "judge_model": judge_settings.model if judge_settings else None},
        stage=stage,
        failures="drop" if drop_failures else "zero",
        wise_protocol=protocol.value,
        make_generator=_generation_setup(policy, policy_model, mcp_url, config, render, render_url, render_model,
                                         render_edit_model, width, height, steps, seed, out, stage),
        judge_settings=judge_settings,
        concurrency=concurrency,
        retry_failed=retry_failed,
        progress=progress,
    )


@bench_app.command("score")
def score(
    results: Annotated[Path, typer.Argument(help="Results file: id, success, prompt, meta, output_path, gt_image.")],
    out: OutOpt,
    images_root: Annotated[Optional[Path], typer.Option("--images-root", help="Root of gt_image paths.")] = None,  # noqa: UP045
    outputs_root: Annotated[
        Optional[Path], typer.Option("--outputs-root", help="Root of output_path (default: the file's folder).")  # noqa: UP045
    ] = None,
    judge_url: JudgeUrlOpt = None,
    judge_model: JudgeModelOpt = None,
    judge_concurrency: JudgeConcOpt = 8,
    limit: LimitOpt = None,
    protocol: Annotated[
        FailureProtocol,
        typer.Option("--protocol", help="strict: failed generations score 0; published: they are dropped."),
    ] = FailureProtocol.strict,
    stage: StageOpt = Stage.all,
    retry_failed: RetryOpt = False,
    progress: ProgressOpt = True,
) -> None:
    """Judge images another system produced (published results format) with the K-Score rubric."""
    from benchmark.datasets import DatasetError, load_results
    from benchmark.generate import ExistingImages

    try:
        items = _limit(load_results(results, images_root, outputs_root), limit)
    except DatasetError as exc:
        raise _fail(str(exc)) from None
    judge_settings = (_judge_settings(judge_url, judge_model, judge_concurrency)
                      if stage in (Stage.all, Stage.judge) else None)

    @contextlib.asynccontextmanager
    async def existing() -> Any:
        yield ExistingImages()

    _execute(
        benchmark="score",
        items=items,
        out=out,
        run_config={"benchmark": "score", "data": str(results), "policy": "external",
                    "judge_model": judge_settings.model if judge_settings else None},
        stage=stage,
        failures="drop" if protocol is FailureProtocol.published else "zero",
        wise_protocol=None,
        make_generator=existing,
        judge_settings=judge_settings,
        concurrency=8,
        retry_failed=retry_failed,
        progress=progress,
    )


@bench_app.command("compare")
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Run folders (each with summary.json).")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Write compare.md and compare.png here.")] = None,  # noqa: UP045
) -> None:
    """Put runs side by side (same benchmark and protocol only)."""
    from benchmark.report import CompareError, compare_runs

    if len(runs) < 2:
        raise _fail("give at least two run folders")
    try:
        typer.echo(compare_runs(runs, out), nl=False)
    except CompareError as exc:
        raise _fail(str(exc)) from None
