"""``gen-searcher render-server``: serve Qwen-Image from every local GPU."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:  # the render stack loads only when the command runs (keeps --help fast)
    from render_tools.settings import RenderConfig, RenderSettings
    from render_tools.workers import PoolConfig, WorkerPool


def register(app: typer.Typer) -> None:
    """``gen-searcher render-server`` (entry point of the ``gen_searcher.commands`` group)."""
    app.command("render-server")(render_server)


def default_devices() -> list[str]:
    import torch

    if torch.cuda.is_available():
        return [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    return ["cpu"]


def render_server(
    model: str = typer.Option(None, "--model", help="Qwen-Image (text-to-image) hub id or local folder"),
    edit_model: str = typer.Option(
        None, "--edit-model", help="Qwen-Image-Edit-2509 hub id or local folder (renders with reference images)"
    ),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8100, "--port"),
    devices: str = typer.Option(
        None, "--devices", help="comma-separated devices, e.g. cuda:0,cuda:1 (default: every GPU, else cpu)"
    ),
    queue_size: int = typer.Option(64, "--queue-size", min=1, help="requests waiting beyond this get HTTP 503"),
    max_batch: int = typer.Option(
        None, "--max-batch", min=1, help="text-only requests batched per call (default 4 on GPU, 1 on CPU)"
    ),
    dtype: str = typer.Option(None, "--dtype", help="bfloat16 | float16 | float32 (default bf16 on GPU)"),
    lora: str = typer.Option(None, "--lora", help="LoRA fused into the text-to-image model"),
    edit_lora: str = typer.Option(None, "--edit-lora", help="LoRA fused into the edit model (e.g. Lightning)"),
    lora_scale: float = typer.Option(None, "--lora-scale", help="strength of the fused LoRA  [default: 1.0]"),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the transformer blocks"),
    cpu_offload: bool = typer.Option(False, "--cpu-offload", help="model CPU offload for small GPUs"),
    allow_private_networks: bool = typer.Option(
        False, "--allow-private-networks", help="let image_urls reach private addresses"
    ),
    config: Path = typer.Option(None, "--config", help="TOML settings file (fetch limits, API key, [render] defaults)"),
) -> None:
    """Serve POST /generate, the OpenAI images API and GET /health, one worker per device.

    Callers authenticate with GEN_SEARCHER_RENDER__API_KEY when it is set.
    """
    import logging

    from gen_searcher_core.commands import require_modules
    from gen_searcher_core.serving import uvicorn_options

    require_modules("render", "torch", "diffusers", "transformers")
    import uvicorn

    from render_tools.settings import RenderConfig

    check_model_sources(model, edit_model)
    settings = RenderConfig.load(config)
    flags = RenderFlags(model, edit_model, dtype, lora, edit_lora, lora_scale, compile_, cpu_offload)
    device_list = device_names(devices)
    pool = _worker_pool(settings, flags, device_list, queue_size, max_batch)
    app = _server_app(settings, pool, flags, host, allow_private_networks)
    logging.basicConfig(level=settings.server.log_level.upper())
    uvicorn.run(app, host=host, port=port, log_level=settings.server.log_level.lower(), **uvicorn_options())


@dataclass(frozen=True)
class RenderFlags:
    """The command's flags that override the ``[render]`` section (``None``/``False``: keep the setting)."""

    model: str | None = None
    edit_model: str | None = None
    dtype: str | None = None
    lora: str | None = None
    edit_lora: str | None = None
    lora_scale: float | None = None
    compile: bool = False
    cpu_offload: bool = False

    @property
    def model_name(self) -> str:
        return " + ".join(source for source in (self.model, self.edit_model) if source)


def check_model_sources(model: str | None, edit_model: str | None) -> None:
    """At least one model, and each one given a usable source; raises ``typer.BadParameter`` naming the flag."""
    from render_tools.factory import model_source_problem

    if not model and not edit_model:
        raise typer.BadParameter("give --model and/or --edit-model")
    for flag, source in (("--model", model), ("--edit-model", edit_model)):
        problem = model_source_problem(source) if source else None
        if problem:
            raise typer.BadParameter(problem, param_hint=flag)


def device_names(devices: str | None) -> list[str]:
    """``--devices`` as a list (blank entries dropped); without it every GPU, else ``cpu``."""
    return [d.strip() for d in devices.split(",") if d.strip()] if devices else default_devices()


def render_settings(render: RenderSettings, flags: RenderFlags) -> RenderSettings:
    """The ``[render]`` section with the command's flags over it (switches only turn features on)."""
    given = {"dtype": flags.dtype, "lora": flags.lora, "edit_lora": flags.edit_lora, "lora_scale": flags.lora_scale}
    return render.model_copy(
        update={
            "model": flags.model,
            "edit_model": flags.edit_model,
            **{name: value for name, value in given.items() if value is not None},
            "compile": flags.compile or render.compile,
            "cpu_offload": flags.cpu_offload or render.cpu_offload,
        }
    )


def pool_config(render: RenderSettings, devices: list[str], queue_size: int, max_batch: int | None) -> PoolConfig:
    """One worker per device; text-only batches of 4 on GPU and 1 on CPU unless ``--max-batch`` says otherwise."""
    from render_tools.workers import PoolConfig

    on_gpu = any(d.startswith("cuda") for d in devices)
    return PoolConfig(
        devices=tuple(devices),
        queue_size=queue_size,
        max_batch=max_batch or (4 if on_gpu else 1),
        request_timeout_s=render.timeout_s,
    )


def _worker_pool(
    settings: RenderConfig, flags: RenderFlags, devices: list[str], queue_size: int, max_batch: int | None
) -> WorkerPool:
    from render_tools.diffusers_renderer import DiffusersOptions, QwenImageEngine
    from render_tools.workers import WorkerPool

    options = DiffusersOptions.from_settings(render_settings(settings.render, flags))
    return WorkerPool(
        lambda device: QwenImageEngine(options, device), pool_config(settings.render, devices, queue_size, max_batch)
    )


def _server_app(
    settings: RenderConfig, pool: WorkerPool, flags: RenderFlags, host: str, allow_private_networks: bool
) -> Any:
    """The ASGI app: the guarded fetcher for image_urls, the API key, the host policy and the shared store."""
    from gen_searcher_core.host_policy import HostPolicy
    from render_tools.server import create_app
    from safe_io.fetcher import GuardedFetcher

    fetch_settings = settings.fetch.model_copy(
        update={"allow_private_networks": allow_private_networks or settings.fetch.allow_private_networks}
    )
    api_key = settings.render.api_key
    return create_app(
        pool,
        fetcher=GuardedFetcher.from_settings(fetch_settings),
        api_keys=[api_key.get_secret_value()] if api_key else [],
        model_name=flags.model_name,
        host_policy=HostPolicy(host, settings.allowed_hosts),  # the tool server's policy and setting
        images=_shared_image_store(settings),
    )


def _shared_image_store(settings: Any) -> Any:
    """The shared image store when ``images.url`` is set (references by id, results stored), else None.

    A store that cannot be used stops the command with one line naming the setting.
    """
    if not settings.images.url:
        return None
    import anyio

    from gen_searcher_core.errors import ConfigError
    from safe_io.image_store import open_image_store

    try:
        return anyio.run(open_image_store, settings.images)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
