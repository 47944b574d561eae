"""Build the configured renderer from the ``[render]`` section.

Every renderer, the three shipped ones included, registers a factory
``(config: RendererConfig) -> Renderer`` under the entry-point group
``gen_searcher.renderers``::

    [project.entry-points."gen_searcher.renderers"]
    myrenderer = "my_package.renderer:create"

and users select it with ``GEN_SEARCHER_RENDER__BACKEND=myrenderer``. Factories
are imported only when chosen (``diffusers`` pulls in torch only then). A name
two packages register is a configuration error at start, never a silent
shadowing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from gen_searcher_core.errors import ConfigError
from gen_searcher_core.plugins import EntryPoints, PluginError, load_plugin
from render_tools.base import Renderer, RendererUnavailable
from render_tools.settings import RenderSettings

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "gen_searcher.renderers"
SHIPPED = ("diffusers", "http", "openai")


class RendererConfigError(RendererUnavailable, ConfigError):
    """The render settings name a renderer that cannot be built (unknown, registered twice, broken plugin)."""


@dataclass(frozen=True)
class RendererConfig:
    """What a renderer factory receives: the ``[render]`` section and the ``OPENAI_API_KEY`` fallback."""

    render: RenderSettings
    openai_api_key: SecretStr | None = None

    @property
    def api_key(self) -> str | None:
        """The key sent to the render service: ``render.api_key``, else ``OPENAI_API_KEY``."""
        key = self.render.api_key or self.openai_api_key
        return key.get_secret_value() if key is not None else None


def model_source_problem(source: str) -> str | None:
    """What is wrong with a pipeline source that names a local folder, or ``None``.

    A source that starts like a path (``/``, ``./``, ``../``, ``~``) or exists on
    disk must be a diffusers pipeline folder; anything else is taken for a hub
    id, which only loading can check.
    """
    path = Path(source).expanduser()
    if not (source.startswith(("/", "./", "../", "~")) or path.exists()):
        return None
    if not path.is_dir():
        return f"{source!r} is not a folder (give a diffusers pipeline folder or a hub id such as Qwen/Qwen-Image)"
    if not (path / "model_index.json").is_file():
        return f"{source!r} has no model_index.json: it is not a diffusers pipeline folder"
    return None


def unavailable_reason(render_settings: RenderSettings) -> str | None:
    """Why no renderer can be built from these settings, or ``None`` when one can.

    Only the shipped renderers' own needs are checked here; a plugin checks its settings itself.
    """
    backend = render_settings.backend
    if backend == "none":
        return "no renderer configured (set GEN_SEARCHER_RENDER__BACKEND to diffusers, http or openai)"
    if backend == "diffusers" and not (render_settings.model or render_settings.edit_model):
        return "render backend diffusers needs GEN_SEARCHER_RENDER__MODEL and/or GEN_SEARCHER_RENDER__EDIT_MODEL"
    if backend == "diffusers":
        for name, source in (("MODEL", render_settings.model), ("EDIT_MODEL", render_settings.edit_model)):
            problem = model_source_problem(source) if source else None
            if problem:
                return f"GEN_SEARCHER_RENDER__{name}: {problem}"
    if backend in ("http", "openai") and not render_settings.url:
        return f"render backend {backend} needs GEN_SEARCHER_RENDER__URL"
    return None


def create_renderer(
    render_settings: RenderSettings, *, openai_api_key: SecretStr | None = None, plugins: EntryPoints | None = None
) -> Renderer | None:
    """The renderer for ``settings.render``; ``None`` when the backend is ``none``.

    Nothing heavy happens here: the diffusers renderer loads its pipelines on
    first use. ``openai_api_key`` is the fallback key of the openai backend;
    ``plugins`` adds entry points to the installed ones (tests, embedders).
    Raises ``RendererUnavailable`` for incomplete settings and
    ``RendererConfigError`` for a name that cannot be built.
    """
    backend = render_settings.backend
    if backend == "none":
        return None
    reason = unavailable_reason(render_settings)
    if reason:
        raise RendererUnavailable(reason)
    try:
        factory = load_plugin(ENTRY_POINT_GROUP, backend, what="renderer", setting="render.backend", extra=plugins)
    except PluginError as exc:
        raise RendererConfigError(str(exc)) from None
    renderer = factory(RendererConfig(render_settings, openai_api_key))
    if not isinstance(renderer, Renderer):
        raise RendererConfigError(f"renderer plugin {backend!r} did not return a Renderer (name, render, aclose)")
    return renderer


def _service_url(config: RendererConfig) -> str:
    if not config.render.url:
        raise RendererUnavailable(f"render backend {config.render.backend} needs GEN_SEARCHER_RENDER__URL")
    return config.render.url


def create_diffusers(config: RendererConfig) -> Renderer:
    """``diffusers``: Qwen-Image / Qwen-Image-Edit in this process (loads on first use)."""
    from render_tools.diffusers_renderer import DiffusersOptions, DiffusersRenderer

    return DiffusersRenderer(DiffusersOptions.from_settings(config.render))


def create_http(config: RendererConfig) -> Renderer:
    """``http``: a render server's ``POST /generate`` (ours, or the published one)."""
    from render_tools.http_client import HttpRenderer

    return HttpRenderer(_service_url(config), api_key=config.api_key, timeout_s=config.render.timeout_s)


def create_openai(config: RendererConfig) -> Renderer:
    """``openai``: an OpenAI-compatible images API."""
    from render_tools.openai_images import OpenAIImagesRenderer

    return OpenAIImagesRenderer(
        _service_url(config),
        model=config.render.model,
        api_key=config.api_key,
        timeout_s=config.render.timeout_s,
        extra_params=config.render.openai_extra_params,
    )


def create_tool_renderer(
    render_settings: RenderSettings, *, openai_api_key: SecretStr | None = None
) -> Renderer | None:
    """The renderer behind the ``render`` tool, or ``None`` (with a logged reason) when the settings give none.

    Unlike :func:`create_renderer`, an incomplete configuration does not stop
    the tool server: the other tools keep serving, the ``render`` tool is not
    offered, and ``gen-searcher tools`` prints :func:`unavailable_reason`. A
    backend name that cannot be built still stops it (``RendererConfigError``).
    """
    reason = unavailable_reason(render_settings)
    if reason is not None:
        if render_settings.backend != "none":
            logger.warning("the render tool is not offered: %s", reason)
        return None
    return create_renderer(render_settings, openai_api_key=openai_api_key)
