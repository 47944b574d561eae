"""A render request is valid once constructed; renderers and the tool's stages take it as it is."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image

from gen_searcher_core import limits
from mcp_server.services import open_services
from mcp_server.tools import render as render_tool
from render_tools.base import (
    DEFAULT_EDIT_STEPS,
    DEFAULT_TEXT_STEPS,
    InvalidRenderRequest,
    RenderError,
    RenderRequest,
    RenderResult,
)
from tests.support.tool_server import tool_server_settings

from .conftest import solid


class RecordingRenderer:
    """A real in-process renderer: records the request objects it gets and draws a flat image."""

    name = "recording"

    def __init__(self, fail: Exception | None = None) -> None:
        self.requests: list[RenderRequest] = []
        self.fail = fail

    async def render(self, request: RenderRequest) -> RenderResult:
        self.requests.append(request)
        if self.fail is not None:
            raise self.fail
        started = time.perf_counter()
        image = Image.new("RGB", (request.width, request.height), (10, 20, 30))
        elapsed = time.perf_counter() - started
        return RenderResult(images=[image], seed=request.fixed_seed, model="recording", elapsed_s=elapsed)

    async def aclose(self) -> None:
        return None


def test_construction_checks_and_fixes_every_field() -> None:
    text = RenderRequest(prompt="a fox", width=512, height=512)
    assert text.steps == DEFAULT_TEXT_STEPS and isinstance(text.seed, int)
    rgba = Image.new("RGBA", (32, 32))
    edit = RenderRequest(prompt="a fox", reference_images=[rgba])
    assert edit.steps == DEFAULT_EDIT_STEPS and edit.reference_images[0].mode == "RGB"
    assert edit.validated() is edit  # nothing left to check
    for changes, message in [
        ({"prompt": "  "}, "prompt must be a non-empty string"),
        ({"prompt": "x" * (limits.MAX_PROMPT_CHARS + 1)}, f"the limit is {limits.MAX_PROMPT_CHARS}"),
        ({"width": 72}, "width 72 is not a multiple of 16"),
        ({"steps": 1}, f"steps must be an integer from {limits.MIN_STEPS} to {limits.MAX_STEPS}"),
        ({"seed": -1}, "seed must be an integer from 0"),
        ({"num_images": limits.MAX_IMAGES + 1}, f"must be from 1 to {limits.MAX_IMAGES}"),
    ]:
        with pytest.raises(InvalidRenderRequest, match=message):
            RenderRequest(**{"prompt": "a fox", **changes})  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_the_tool_stages_each_say_what_stops_them(tmp_path: Path) -> None:
    async with open_services(tool_server_settings(tmp_path)) as services:
        services.renderer = None
        assert await render_tool._refusal(services, "x", []) == (
            "render is not available on this server: no renderer is configured"
        )
        services.renderer = RecordingRenderer()
        assert await render_tool._refusal(services, "  ", []) == "prompt must not be empty"
        known = (await services.images.put_pil(solid((1, 2, 3)))).id
        assert "at most 5 reference_image_ids" in (await render_tool._refusal(services, "x", [known] * 6) or "")
        unused_unknown = [known] * 3 + ["img_ffffffffffffffff"]
        assert "unknown image id 'img_ffffffffffffffff'" in (
            await render_tool._refusal(services, "x", unused_unknown) or ""
        )
        assert await render_tool._refusal(services, "x", [known] * 4) is None

        references = await render_tool._read_references(services, [known, known])
        assert isinstance(references, list) and [im.size for im in references] == [(96, 64), (96, 64)]
        missing = await render_tool._read_references(services, ["img_0000000000000000"])
        assert isinstance(missing, str) and "unknown image id 'img_0000000000000000'" in missing


@pytest.mark.anyio
async def test_the_renderer_gets_the_request_as_built_and_errors_become_messages(tmp_path: Path) -> None:
    async with open_services(tool_server_settings(tmp_path)) as services:
        renderer = RecordingRenderer()
        services.renderer = renderer
        outcome = await render_tool._render(services, "a fox", [solid((1, 2, 3))], 64, 64, 7, 0)
        assert isinstance(outcome, render_tool.RenderOutcome) and outcome.references == 1
        (request,) = renderer.requests
        assert (request.seed, request.steps, request.is_edit) == (7, services.settings.render.steps or 40, True)
        assert await render_tool._render(services, "a fox", [], 72, 64, 7, 0) == (
            "invalid render request: width 72 is not a multiple of 16"
        )
        assert len(renderer.requests) == 1  # refused before the renderer
        services.renderer = RecordingRenderer(fail=RenderError("the GPU is on fire"))
        assert await render_tool._render(services, "a fox", [], 64, 64, 7, 0) == "render failed: the GPU is on fire"
        services.renderer = RecordingRenderer(fail=KeyError("secret"))
        assert (
            await render_tool._render(services, "a fox", [], 64, 64, 7, 0) == "render failed: internal error (KeyError)"
        )

        stored = await render_tool._stored_result(services, "a fox", ["img_x"], outcome)
        assert stored.structured_content is not None and stored.structured_content["seed"] == 7
        meta = (await services.images.get(stored.structured_content["id"])).meta
        assert meta["reference_image_ids"] == ["img_x"] and "1 reference image," in stored.content[0].text
