"""Build the configured renderer from ``Settings.render``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from render_tools.base import Renderer, RendererUnavailable

logger = logging.getLogger(__name__)


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


def unavailable_reason(render_settings: Any) -> str | None:
    """Why no renderer can be built from these settings, or ``None`` when one can."""
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


def create_renderer(render_settings: Any, *, openai_api_key: Any = None) -> Renderer | None:
    """The renderer for ``settings.render``; ``None`` when the backend is ``none``.

    Nothing heavy happens here: the diffusers renderer loads its pipelines on
    first use. ``openai_api_key`` (a ``SecretStr``) is the fallback key of the
    openai backend.
    """
    backend = render_settings.backend
    if backend == "none":
        return None
    reason = unavailable_reason(render_settings)
    if reason:
        raise RendererUnavailable(reason)
    key = render_settings.api_key or openai_api_key
    api_key = key.get_secret_value() if key is not None else None
    if backend == "diffusers":
        from render_tools.diffusers_renderer import DiffusersOptions, DiffusersRenderer

        return DiffusersRenderer(DiffusersOptions.from_settings(render_settings))
    if backend == "http":
        from render_tools.http_client import HttpRenderer

        return HttpRenderer(render_settings.url, api_key=api_key, timeout_s=render_settings.timeout_s)
    if backend == "openai":
        from render_tools.openai_images import OpenAIImagesRenderer

        return OpenAIImagesRenderer(
            render_settings.url,
            model=render_settings.model,
            api_key=api_key,
            timeout_s=render_settings.timeout_s,
            extra_params=render_settings.openai_extra_params,
        )
    raise RendererUnavailable(f"unknown render backend {backend!r}")


def create_tool_renderer(render_settings: Any, *, openai_api_key: Any = None) -> Renderer | None:
    """The renderer behind the ``render`` tool, or ``None`` (with a logged reason) when the settings give none.

    Unlike :func:`create_renderer`, an incomplete configuration does not stop
    the tool server: the other tools keep serving, the ``render`` tool is not
    offered, and ``gen-searcher tools`` prints :func:`unavailable_reason`.
    """
    reason = unavailable_reason(render_settings)
    if reason is not None:
        if render_settings.backend != "none":
            logger.warning("the render tool is not offered: %s", reason)
        return None
    return create_renderer(render_settings, openai_api_key=openai_api_key)
