"""Renderers register through the entry-point group ``gen_searcher.renderers``, the shipped ones included."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

import pytest
from pydantic import SecretStr

from gen_searcher_core.errors import ConfigError
from render_tools.base import RenderError, RenderRequest, RenderResult
from render_tools.factory import (
    ENTRY_POINT_GROUP,
    RendererConfig,
    RendererConfigError,
    create_renderer,
    create_tool_renderer,
)
from render_tools.http_client import HttpRenderer
from render_tools.openai_images import OpenAIImagesRenderer
from render_tools.settings import RenderSettings


class EchoRenderer:
    """A third party's renderer: remembers the config it was built with."""

    name = "echo"

    def __init__(self, config: RendererConfig) -> None:
        self.config = config

    async def render(self, request: RenderRequest) -> RenderResult:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


def make_echo(config: RendererConfig) -> EchoRenderer:
    return EchoRenderer(config)


def make_nothing(config: RendererConfig) -> object:
    return object()


def plugin(name: str, attr: str) -> EntryPoint:
    return EntryPoint(name=name, value=f"{__name__}:{attr}", group=ENTRY_POINT_GROUP)


def test_the_shipped_renderers_register_as_entry_points() -> None:
    shipped = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert shipped == {
        "diffusers": "render_tools.factory:create_diffusers",
        "http": "render_tools.factory:create_http",
        "openai": "render_tools.factory:create_openai",
    }


async def _built(settings: RenderSettings, **kwargs: object) -> object:
    renderer = create_renderer(settings, **kwargs)  # type: ignore[arg-type]
    assert renderer is not None
    await renderer.aclose()
    return renderer


@pytest.mark.anyio
async def test_shipped_renderers_are_built_through_the_group() -> None:
    http = await _built(RenderSettings(backend="http", url="http://127.0.0.1:9/"))
    assert isinstance(http, HttpRenderer) and http.endpoint == "http://127.0.0.1:9/generate"
    images = await _built(
        RenderSettings(backend="openai", url="http://127.0.0.1:9/v1", model="m"), openai_api_key=SecretStr("k")
    )
    assert isinstance(images, OpenAIImagesRenderer)
    assert create_renderer(RenderSettings()) is None  # backend "none"


def test_a_plugin_renderer_is_chosen_by_name() -> None:
    settings = RenderSettings(backend="echo", url="http://render.invalid")
    renderer = create_renderer(settings, openai_api_key=SecretStr("sk-x"), plugins=[plugin("echo", "make_echo")])
    assert isinstance(renderer, EchoRenderer)
    assert renderer.config.render is settings and renderer.config.api_key == "sk-x"


def test_a_plugin_reusing_a_shipped_name_is_an_error_at_start() -> None:
    settings = RenderSettings(backend="http", url="http://127.0.0.1:9")
    with pytest.raises(RendererConfigError) as raised:
        create_renderer(settings, plugins=[plugin("http", "make_echo")])
    message = str(raised.value)
    assert "'http' is registered more than once" in message
    assert "render_tools.factory:create_http" in message and f"{__name__}:make_echo" in message
    # Both kinds of caller see it: render code (RenderError) and start-up (ConfigError).
    assert isinstance(raised.value, RenderError) and isinstance(raised.value, ConfigError)


def test_unknown_and_broken_renderers_are_clear_errors() -> None:
    unknown = r"unknown renderer 'nosuch' \(render\.backend\); known renderers: diffusers, http"
    with pytest.raises(RendererConfigError, match=unknown):
        create_tool_renderer(RenderSettings(backend="nosuch"))
    broken = EntryPoint(name="broken", value="no_such_module_xyz:create", group=ENTRY_POINT_GROUP)
    with pytest.raises(RendererConfigError, match="could not load renderer plugin 'no_such_module_xyz:create'"):
        create_renderer(RenderSettings(backend="broken"), plugins=[broken])
    with pytest.raises(RendererConfigError, match="did not return a Renderer"):
        create_renderer(RenderSettings(backend="nothing"), plugins=[plugin("nothing", "make_nothing")])


def test_incomplete_settings_of_a_shipped_renderer_only_hide_the_tool() -> None:
    assert create_tool_renderer(RenderSettings(backend="http")) is None  # no URL: the other tools keep serving
