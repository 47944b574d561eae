"""Qwen-Image rendering: in-process diffusers, a GPU render server, and clients."""

from render_tools.base import (
    ASPECT_PRESETS,
    InvalidRenderRequest,
    Renderer,
    RendererBusy,
    RenderError,
    RendererUnavailable,
    RenderRequest,
    RenderResult,
    size_for_aspect,
)
from render_tools.factory import create_renderer, unavailable_reason

__all__ = [
    "ASPECT_PRESETS",
    "InvalidRenderRequest",
    "RenderError",
    "RenderRequest",
    "RenderResult",
    "Renderer",
    "RendererBusy",
    "RendererUnavailable",
    "create_renderer",
    "size_for_aspect",
    "unavailable_reason",
]
