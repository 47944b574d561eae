"""The ``render`` MCP tool end to end: an MCP client session over the real server and services."""

from __future__ import annotations

import base64
import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import mcp_types
import pytest
from mcp import Client
from PIL import Image

from mcp_server.server import build_server, unavailable_tools
from mcp_server.services import Services, open_services
from render_tools.diffusers_renderer import DiffusersOptions
from render_tools.factory import unavailable_reason
from tests.support.tool_server import tool_server_settings

from .conftest import solid
from .test_render_server import render_server

SMALL = {"width": 64, "height": 64, "steps": 2}


@contextlib.asynccontextmanager
async def session(tmp_path: Path, render: dict[str, Any]) -> AsyncIterator[tuple[Client, Services]]:
    settings = tool_server_settings(tmp_path, render=render)
    async with open_services(settings) as services, Client(build_server(services)) as client:
        yield client, services


def diffusers_settings(models: DiffusersOptions) -> dict[str, Any]:
    return {"backend": "diffusers", "model": models.model, "edit_model": models.edit_model, "device": "cpu"}


def text_of(result: mcp_types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, mcp_types.TextContent))


@pytest.mark.slow
@pytest.mark.anyio
async def test_render_from_text_and_references_through_an_mcp_session(tmp_path: Path, tiny_models) -> None:
    async with session(tmp_path, diffusers_settings(tiny_models)) as (client, services):
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        schema = tools["render"].input_schema
        assert schema["required"] == ["prompt"]
        for name, prop in schema["properties"].items():
            assert "anyOf" not in prop and "type" in prop, name

        result = await client.call_tool("render", {"prompt": "a red fox at sunset", "seed": 7, **SMALL})
        assert not result.is_error, text_of(result)
        data = result.structured_content
        assert set(data) == {"id", "width", "height", "uri", "seed", "elapsed_s"}
        assert (data["width"], data["height"], data["seed"]) == (64, 64, 7)
        assert data["uri"] == f"image://{data['id']}"
        kinds = [c.type for c in result.content]
        assert kinds == ["text", "image"]  # no resource_link: clients took its image:// URL for a fetchable one
        thumb = result.content[1]
        assert thumb.mime_type == "image/jpeg"
        assert Image.open(io.BytesIO(base64.b64decode(thumb.data))).format == "JPEG"
        assert data["uri"] in result.content[0].text
        stored = await services.images.get(data["id"])
        assert stored.meta["source"] == "render" and stored.meta["seed"] == 7
        full = await client.read_resource(data["uri"])
        blob = full.contents[0]
        assert Image.open(io.BytesIO(base64.b64decode(blob.blob))).size == (64, 64)

        again = await client.call_tool("render", {"prompt": "a red fox at sunset", "seed": 7, **SMALL})
        assert again.structured_content["id"] == data["id"]  # same seed, same picture, same content id

        ids = [(await services.images.put_pil(solid((40 * i, 90, 200 - 40 * i)))).id for i in range(4)]
        edit = await client.call_tool(
            "render", {"prompt": "the first reference image wearing a hat", "reference_image_ids": ids, **SMALL}
        )
        assert not edit.is_error, text_of(edit)
        assert "3 reference images" in text_of(edit)
        edited = await services.images.get(edit.structured_content["id"])
        assert edited.meta["reference_image_ids"] == ids[:3]
        assert isinstance(edit.structured_content["seed"], int)


@pytest.mark.slow
@pytest.mark.anyio
async def test_render_tool_refuses_bad_input_clearly(tmp_path: Path, tiny_models) -> None:
    async with session(tmp_path, diffusers_settings(tiny_models)) as (client, services):
        known = (await services.images.put_pil(solid((1, 2, 3)))).id
        cases = [
            (
                {"prompt": "x", "reference_image_ids": [known, "img_0000000000000000"], **SMALL},
                "unknown image id 'img_0000000000000000'",
            ),
            ({"prompt": "x", "reference_image_ids": ["not-an-id"], **SMALL}, "unknown image id 'not-an-id'"),
            (
                {"prompt": "x", "reference_image_ids": [known] * 3 + ["img_ffffffffffffffff"], **SMALL},
                "unknown image id 'img_ffffffffffffffff'",
            ),
            ({"prompt": "x", "reference_image_ids": [known] * 6, **SMALL}, "reference_image_ids"),
            ({"prompt": "", **SMALL}, "prompt"),
            ({"prompt": "   ", **SMALL}, "prompt must not be empty"),
            ({"prompt": "x", "width": 100_000, "height": 64}, "width"),
            ({"prompt": "x", "width": 72, "height": 64}, "not a multiple of 16"),
            ({"prompt": "x", "width": 80, "height": 64, "steps": 2}, "multiple of 32"),
            (
                {"prompt": "x", "steps": 1, **{k: v for k, v in SMALL.items() if k != "steps"}},
                "steps must be an integer from 2",
            ),
        ]
        for arguments, message in cases:
            result = await client.call_tool("render", arguments)
            assert result.is_error, arguments
            assert len(result.content) == 1 and message in text_of(result), text_of(result)
            assert "Traceback" not in text_of(result)
        ok = await client.call_tool("render", {"prompt": "still works", **SMALL})
        assert not ok.is_error


@pytest.mark.anyio
async def test_without_a_renderer_the_tool_is_not_offered(tmp_path: Path) -> None:
    async with session(tmp_path, {"backend": "none"}) as (client, services):
        assert services.renderer is None
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "render" not in names
    settings = tool_server_settings(tmp_path)
    assert "GEN_SEARCHER_RENDER__BACKEND" in (unavailable_reason(settings.render) or "")
    assert "GEN_SEARCHER_RENDER__BACKEND" in unavailable_tools(settings)["render"]  # what `gen-searcher tools` prints
    settings = tool_server_settings(tmp_path, render={"backend": "http"})
    assert "GEN_SEARCHER_RENDER__URL" in (unavailable_reason(settings.render) or "")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("render", "reason"),
    [
        ({"backend": "diffusers"}, "needs GEN_SEARCHER_RENDER__MODEL"),
        ({"backend": "diffusers", "model": "/no/such/qwen-image"}, "__MODEL: '/no/such/qwen-image' is not a folder"),
        ({"backend": "diffusers", "edit_model": "."}, "GEN_SEARCHER_RENDER__EDIT_MODEL: '.' has no model_index.json"),
    ],
)
async def test_an_incomplete_render_configuration_leaves_the_other_tools_serving(
    tmp_path: Path, render: dict[str, Any], reason: str
) -> None:
    async with session(tmp_path, render) as (client, services):
        assert services.renderer is None
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "render" not in names and "search" in names
    assert reason in unavailable_tools(tool_server_settings(tmp_path, render=render))["render"]


@pytest.mark.slow
@pytest.mark.anyio
async def test_render_tool_through_a_render_server(tmp_path: Path, gated_factory, controls) -> None:
    with render_server(gated_factory) as base:
        async with session(tmp_path, {"backend": "http", "url": base}) as (client, services):
            ids = [(await services.images.put_pil(solid((200, 10, 10)))).id]
            result = await client.call_tool(
                "render", {"prompt": "a hat", "reference_image_ids": ids, "seed": 4, **SMALL}
            )
            assert not result.is_error, text_of(result)
            assert result.structured_content["seed"] == 4
            assert await services.images.contains(result.structured_content["id"])
            controls.fail_renders = 2  # the retry fails too: the tool reports it, and keeps serving
            failed = await client.call_tool("render", {"prompt": "a hat", **SMALL})
            assert failed.is_error and "render failed" in text_of(failed)
            assert "Traceback" not in text_of(failed)
            ok = await client.call_tool("render", {"prompt": "a hat", **SMALL})
            assert not ok.is_error
