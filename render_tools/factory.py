"""Build the configured renderer from ``Settings.render``."""

from __future__ import annotations

from typing import Any

from render_tools.base import Renderer, RendererUnavailable


def unavailable_reason(render_settings: Any, openai_api_key: Any = None) -> str | None:
    """Why no renderer can be built from these settings, or ``None`` when one can."""
    backend = render_settings.backend
    if backend == "none":
        return "no renderer configured (set GEN_SEARCHER_RENDER__BACKEND to diffusers, http or openai)"
    if backend == "diffusers" and not (render_settings.model or render_settings.edit_model):
        return "render backend diffusers needs GEN_SEARCHER_RENDER__MODEL and/or GEN_SEARCHER_RENDER__EDIT_MODEL"
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

        return DiffusersRenderer(
            DiffusersOptions(
                model=render_settings.model,
                edit_model=render_settings.edit_model,
                device=render_settings.device,
                dtype=render_settings.dtype,
                lora=render_settings.lora,
                edit_lora=render_settings.edit_lora,
                lora_scale=render_settings.lora_scale,
                compile=render_settings.compile,
                cpu_offload=render_settings.cpu_offload,
            )
        )
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
