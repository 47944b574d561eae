"""Build what a ``gen-searcher bench`` run needs from its options: judge settings and the generator.

Heavy imports (renderers, the MCP server and client, PIL) happen inside the functions,
so ``gen-searcher --help`` stays fast. Every setup problem raises the ``typer.Exit``
made by :func:`benchmark.cli_options.fail`, with a message that says what to pass.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.cli_options import GenerationOptions, JudgeOptions, fail

if TYPE_CHECKING:
    from benchmark.datasets import Item
    from benchmark.generate import Generator, RenderOptions
    from benchmark.settings import BenchConfig, JudgeSettings
    from gen_searcher_core.episode_record import EpisodeRecord
    from render_tools.settings import RenderConfig

#: ``() -> async context manager yielding a Generator``; called only when the generate stage runs.
GeneratorFactory = Callable[[], contextlib.AbstractAsyncContextManager["Generator"]]


def bench_config(config_file: Path | None = None) -> BenchConfig:
    """The benchmark area's settings (file, then environment); bad settings end the command clearly."""
    from benchmark.settings import BenchConfig

    try:
        return BenchConfig.load(config_file)
    except (FileNotFoundError, ValueError) as exc:
        raise fail(f"bad settings: {exc}") from None


def judge_settings(options: JudgeOptions, config_file: Path | None = None) -> JudgeSettings:
    """The ``[judge]`` section (settings file, then environment), overridden by
    ``--judge-url/--judge-model/--judge-concurrency``."""
    settings = bench_config(config_file).judge_settings(
        max_concurrency=options.judge_concurrency, base_url=options.judge_url or None, model=options.judge_model or None
    )
    if settings.api_key is None and "api.openai.com" in settings.base_url:
        raise fail("the judge needs a key: set GEN_SEARCHER_JUDGE_API_KEY or OPENAI_API_KEY, or pass --judge-url")
    return settings


def _settings(options: GenerationOptions) -> RenderConfig:
    from render_tools.settings import RenderConfig

    try:
        settings = RenderConfig.load(options.config)
    except (FileNotFoundError, ValueError) as exc:
        raise fail(f"bad settings: {exc}") from None
    updates = {
        "backend": options.render,
        "url": options.render_url,
        "model": options.render_model,
        "edit_model": options.render_edit_model,
    }
    updates = {k: v for k, v in updates.items() if v is not None}
    if updates:
        settings.render = settings.render.model_validate({**settings.render.model_dump(), **updates})
    return settings


def generator_factory(options: GenerationOptions, traces: Path) -> GeneratorFactory:
    """Check ``--policy`` and the settings now; the factory opens renderer, tools and model later."""
    from benchmark.generate import RenderOptions

    if options.policy not in ("none", "baseline"):
        if not options.policy.startswith(("http://", "https://")):
            raise fail(f"--policy must be none, baseline or a model server URL, got {options.policy!r}")
        if not options.policy_model:
            raise fail("--policy-model is required with a policy model URL")
    settings = _settings(options)
    render = RenderOptions(width=options.width, height=options.height, steps=options.steps, seed=options.seed)
    return lambda: _generator(options, settings, render, traces)


def existing_images() -> GeneratorFactory:
    """The "generator" of ``bench score``: the images already exist."""
    from benchmark.generate import ExistingImages

    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[Generator]:
        yield ExistingImages()

    return factory


@contextlib.asynccontextmanager
async def _generator(
    options: GenerationOptions, settings: RenderConfig, render: RenderOptions, traces: Path
) -> AsyncIterator[Generator]:
    """The generator for ``--policy`` with everything it holds open."""
    from benchmark.generate import DirectGenerator, PolicyGenerator
    from render_tools.base import RenderError
    from render_tools.factory import create_renderer

    try:
        renderer = create_renderer(settings.render, openai_api_key=settings.openai_api_key)
    except RenderError as exc:
        raise fail(f"renderer: {exc}") from None
    if renderer is None:
        raise fail("no renderer: pass --render diffusers|http|openai (with --render-url / --render-model)")
    if options.policy == "none":
        generator = DirectGenerator(renderer, render)
        try:
            yield generator
        finally:
            await generator.aclose()
        return
    from policy.mcp_tools import McpConnectionError

    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(renderer.aclose)
        try:
            tools = await stack.enter_async_context(_tools(options.mcp_url, options.config))
        except McpConnectionError as exc:
            raise fail(f"tool server: {exc}") from None
        chat = None
        if options.policy != "baseline":
            from policy.chat import OpenAIChatModel
            from policy.settings import chat_api_key

            chat = OpenAIChatModel(options.policy, options.policy_model or "", api_key=chat_api_key(options.config))
            stack.push_async_callback(chat.aclose)
        yield PolicyGenerator(_episode_runner(tools, chat, options.policy_model, traces), renderer, render)


@contextlib.asynccontextmanager
async def _tools(mcp_url: str | None, config_file: Path | None) -> AsyncIterator[Any]:
    """An MCP tool session: the server at ``mcp_url``, or a local one started over stdio."""
    from policy.mcp_client import local_server
    from policy.mcp_tools import McpTools

    async with McpTools.connect(mcp_url or local_server(config_file)) as tools:
        yield tools


def _decode_rgb(data: bytes) -> Any:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def _episode_runner(tools: Any, chat: Any, model_name: str | None, traces: Path) -> Any:
    """``run(item) -> (EpisodeRecord, {store_id: reference image})``; writes the episode record to ``traces``."""
    import anyio

    from benchmark.generate import safe_name
    from policy.baseline import run_baseline
    from policy.driver import run_episode

    async def run(item: Item) -> tuple[EpisodeRecord, dict[str, Any]]:
        if chat is None:
            episode = await run_baseline(item.prompt, tools)
        else:
            episode = await run_episode(item.prompt, chat, tools, model_name=model_name)
        record = episode.record()
        images: dict[str, Any] = {}
        for store_id in record.generator_image_ids:
            data, _ = await tools.read_image(store_id)
            images[store_id] = await anyio.to_thread.run_sync(_decode_rgb, data)
        await anyio.Path(traces).mkdir(parents=True, exist_ok=True)
        # The trace keeps the thumbnails the model saw, so the item's page can show them (as run's trace.html does).
        saved = episode.record(include_image_data=True).model_dump(mode="json", exclude_none=True)
        trace = json.dumps(saved, ensure_ascii=False)
        await anyio.Path(traces / f"{safe_name(item.id)}.json").write_text(trace)
        return record, images

    return run
