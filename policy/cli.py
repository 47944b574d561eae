"""``gen-searcher run``: one episode from the command line, with live progress.

When no ``--mcp-url`` is given it starts this installation's tool server as a
subprocess over stdio (``gen-searcher serve --transport stdio``) and talks to it
through an MCP client session exactly as it would over HTTP: the policy never
imports tool code.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

if TYPE_CHECKING:  # the MCP client and rich load only when the command runs (keeps --help fast)
    from rich.console import Console

    from gen_searcher_core.episode_record import EpisodeRecord
    from policy.episode import EpisodeConfig
    from policy.mcp_tools import McpTools

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


def run_command(
    prompt: Annotated[str, typer.Argument(help="What to draw.")],
    model_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible base URL, e.g. http://localhost:8001/v1")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model name on that server.")] = None,
    mcp_url: Annotated[
        str | None,
        typer.Option(
            envvar="GEN_SEARCHER_MCP_URL",
            help="Tool server (streamable HTTP /mcp URL); a local one over stdio when omitted.",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default runs/<time>).")] = None,
    render: Annotated[
        bool, typer.Option("--render/--no-render", help="Render the answer when a renderer is available.")
    ] = True,
    parallel_tools: Annotated[
        bool, typer.Option("--parallel-tools", help="Allow several tool calls per turn, run concurrently.")
    ] = False,
    system_prompt_file: Annotated[Path | None, typer.Option(help="Replace the built-in system prompt.")] = None,
    policy: Annotated[str, typer.Option(help="model | baseline")] = "model",
    max_calls: Annotated[int, typer.Option(help="Ordinary model calls before the forced final one.")] = 9,
    temperature: Annotated[float, typer.Option()] = 0.7,
    top_p: Annotated[float, typer.Option()] = 0.95,
    max_tokens: Annotated[int, typer.Option(help="Token limit of one model turn.")] = 4096,
    config: Annotated[
        Path | None, typer.Option(help="Settings (TOML): the local tool server's sections and [policy].")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also show informational logs (HTTP requests…).")
    ] = False,
    notice: Annotated[
        str | None, typer.Option(hidden=True, help="A line shown atop trace.html (gen-searcher demo says 'scripted').")
    ] = None,
) -> None:
    """Run one Gen-Searcher episode: search, pick references, write a grounded prompt (and render it)."""
    import anyio
    from rich.console import Console

    from policy.episode import EpisodeConfig

    console = Console(stderr=True)
    _configure_logging(console, verbose)
    if policy not in ("model", "baseline"):
        raise typer.BadParameter("--policy must be 'model' or 'baseline'")
    if policy == "model" and not (model_url and model):
        raise typer.BadParameter("--model-url and --model are required unless --policy baseline")
    if mcp_url and not mcp_url.startswith(("http://", "https://")):
        raise typer.BadParameter("--mcp-url must be the server's streamable HTTP URL, e.g. http://127.0.0.1:8000/mcp")
    system_prompt = None
    if system_prompt_file is not None:
        system_prompt = system_prompt_file.read_text(encoding="utf-8")
    episode_config = EpisodeConfig(max_calls=max_calls, parallel_tool_calls=parallel_tools, system_prompt=system_prompt)
    out_dir = out or Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    code = anyio.run(
        _run,
        prompt,
        policy,
        model_url,
        model,
        mcp_url,
        out_dir,
        render,
        episode_config,
        (temperature, top_p, max_tokens),
        config,
        console,
        notice,
    )
    raise typer.Exit(code)


def _configure_logging(console: Console, verbose: bool) -> None:
    """Warnings only by default, so library request logs do not drown the progress lines.

    Configured before the in-process server is built: its own logging setup then leaves ours alone.
    """
    import logging

    from rich.logging import RichHandler

    handler = RichHandler(console=console, show_path=False, show_time=verbose)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s", handlers=[handler])


@contextlib.asynccontextmanager
async def _tools(mcp_url: str | None, config: Path | None) -> AsyncIterator[McpTools]:
    from policy.mcp_tools import McpTools

    if mcp_url:
        async with McpTools.connect(mcp_url) as tools:
            yield tools
        return
    import logging

    from policy.mcp_client import local_server

    server = local_server(config)
    if logging.getLogger().getEffectiveLevel() > logging.INFO and server.env is not None:
        # The progress lines already say which tool ran and how it went; the server's own INFO lines
        # (one access line per call) show with --verbose, or with GEN_SEARCHER_SERVER__LOG_LEVEL set.
        server.env.setdefault("GEN_SEARCHER_SERVER__LOG_LEVEL", "WARNING")
    async with McpTools.connect(server) as tools:
        yield tools


async def _run(
    prompt: str,
    policy: str,
    model_url: str | None,
    model_name: str | None,
    mcp_url: str | None,
    out_dir: Path,
    render: bool,
    config: EpisodeConfig,
    sampling: tuple[float, float, int],
    settings_file: Path | None,
    console: Console,
    notice: str | None = None,
) -> int:
    import anyio

    from policy.baseline import run_baseline
    from policy.chat import OpenAIChatModel, Sampling
    from policy.driver import run_episode
    from policy.mcp_client import McpConnectionError
    from policy.settings import chat_api_key

    progress = _progress_printer(console)
    try:
        async with _tools(mcp_url, settings_file) as tools:
            with console.status("running the episode…"):
                if policy == "baseline":
                    run = await run_baseline(prompt, tools, config, progress=progress)
                else:
                    assert model_url and model_name
                    temperature, top_p, max_tokens = sampling
                    chat = OpenAIChatModel(
                        model_url,
                        model_name,
                        api_key=chat_api_key(settings_file),
                        sampling=Sampling(temperature=temperature, top_p=top_p, max_tokens=max_tokens),
                    )
                    async with chat:
                        run = await run_episode(prompt, chat, tools, config, progress=progress, model_name=model_name)
            await anyio.Path(out_dir).mkdir(parents=True, exist_ok=True)
            record = run.record()
            saved = await _save_references(tools, record, out_dir, console)
            rendered = None
            if render and record.valid:
                rendered = await _render(tools, record, out_dir, console)
    except McpConnectionError as exc:
        console.print(f"[red]tool server: {escape(str(exc))}[/red]")
        return 2
    trace = record.model_dump(mode="json", exclude_none=True)  # = run.trace()
    answer = {**run.result.to_dict(), "saved_references": saved, "render": rendered}
    await anyio.Path(out_dir / "trace.json").write_text(json.dumps(trace, indent=2, ensure_ascii=False))
    await anyio.Path(out_dir / "answer.json").write_text(json.dumps(answer, indent=2, ensure_ascii=False))
    await _write_trace_page(run, answer, out_dir, notice)
    colour = "green" if record.valid else "red"
    console.print(
        f"[{colour}]{record.termination}[/{colour}] after {record.model_calls} model call(s), "
        f"{record.tool_calls} tool call(s), {run.wall_s:.1f}s; output in {escape(str(out_dir))}"
    )
    console.print(f"page: {escape(str(out_dir / 'trace.html'))}")
    if notice:
        console.print(f"[yellow]{escape(notice)}[/yellow]")
    if record.valid:
        console.print(f"[bold]gen_prompt:[/bold] {escape(record.gen_prompt or '')}")
    elif record.detail:
        console.print(f"[red]{escape(record.detail)}[/red]")
    return 0 if record.valid else 1


async def _write_trace_page(run: Any, answer: dict[str, Any], out_dir: Path, notice: str | None = None) -> None:
    """``trace.html``: the episode as a page, with the thumbnails the model saw embedded."""
    import functools

    import anyio

    from policy.trace_html import write_trace_html

    trace = run.trace(include_image_data=True)
    await anyio.to_thread.run_sync(
        functools.partial(write_trace_html, trace, out_dir / "trace.html", answer=answer, notice=notice)
    )


async def _save_references(tools: McpTools, record: EpisodeRecord, out_dir: Path, console: Console) -> list[str]:
    import anyio

    from policy.mcp_client import McpCallError, McpConnectionError

    saved: list[str] = []
    if not record.references:
        return saved
    folder = anyio.Path(out_dir / "references")
    await folder.mkdir(parents=True, exist_ok=True)
    for index, ref in enumerate(record.references, start=1):
        if ref.store_id is None:  # a driver's references are always resolved; say so if one is not
            console.print(f"[yellow]{ref.img_id} has no image-store id; not saved[/yellow]")
            continue
        try:
            data, media_type = await tools.read_image(ref.store_id)
        except (McpCallError, McpConnectionError) as exc:
            console.print(f"[yellow]could not fetch {ref.img_id}: {escape(str(exc))}[/yellow]")
            continue
        name = f"{index:02d}_{ref.img_id}.{_EXTENSIONS.get(media_type, 'bin')}"
        await (folder / name).write_bytes(data)
        saved.append(f"references/{name}")
    return saved


async def _render(tools: McpTools, record: EpisodeRecord, out_dir: Path, console: Console) -> dict[str, Any] | None:
    import anyio

    from gen_searcher_core.tool_results import RenderResult
    from policy.mcp_client import McpCallError
    from policy.protocol import ToolCall

    if "render" not in await tools.list_tool_names():
        console.print("[yellow]the tool server offers no render tool; skipping the render[/yellow]")
        return None
    with console.status("rendering…"):
        rendered = await tools.call(
            ToolCall("render", {"prompt": record.gen_prompt, "reference_image_ids": list(record.generator_image_ids)})
        )
    output = rendered.output
    if not isinstance(output, RenderResult):
        console.print(f"[yellow]render failed: {escape(rendered.text)}[/yellow]")
        return {"error": rendered.text}
    sent = dict(rendered.structured)  # as the server sent it
    try:
        data, media_type = await tools.read_image(output.id)
    except McpCallError as exc:
        console.print(f"[yellow]could not fetch the rendered image: {escape(str(exc))}[/yellow]")
        return {**sent, "error": str(exc)}
    name = f"render.{_EXTENSIONS.get(media_type, 'png')}"
    await anyio.Path(out_dir / name).write_bytes(data)
    return {**sent, "file": name}


_FAILED_TURN = {
    "too_long": "(cut off at the token limit)",
    "repeated_response": "(the same reply as before)",
}


def _progress_printer(console: Console) -> Callable[[str, dict[str, Any]], None]:
    def show(kind: str, data: dict[str, Any]) -> None:
        if kind == "model_end":
            what = data.get("kind", "?")
            detail = ""
            if what == "tool_calls":
                detail = ", ".join(f"{c['name']}({_short(c['arguments'])})" for c in data.get("tool_calls", []))
            elif what in ("format_error", "too_long", "repeated_response"):
                detail = _FAILED_TURN.get(what) or data.get("detail") or data.get("error", "")
            forced = " (forced final)" if data.get("forced") else ""
            colour = "yellow" if what in _FAILED_TURN or what == "format_error" else "cyan"
            line = f"model {data['call']}{forced}"
            console.print(f"[{colour}]{line}[/{colour}] {data['elapsed_s']:.1f}s → {what} {escape(detail)}")
        elif kind == "tool_end":
            result = data["result"]
            status = f"[red]error: {escape(_error_text(result))}[/red]" if result["is_error"] else "ok"
            images = len(result["images"])
            extra = f", {images} image(s)" if images else ""
            console.print(f"  [magenta]{escape(data['name'])}[/magenta] {data['elapsed_s']:.2f}s {status}{extra}")

    return show


def _error_text(result: dict[str, Any], limit: int = 600) -> str:
    """A failed tool's own message (the server words it for people), on one line."""
    text = " ".join(str(result.get("text") or "no message").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(arguments: dict[str, Any], limit: int = 80) -> str:
    text = json.dumps(arguments, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def register(app: typer.Typer) -> None:
    """``gen-searcher run`` (entry point of the ``gen_searcher.commands`` group)."""
    app.command("run")(run_command)
