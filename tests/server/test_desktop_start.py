"""A desktop assistant's first minute: instant answers over stdio, the model loading in the background."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from PIL import Image

from mcp_server.http_app import create_app
from mcp_server.services import open_services
from mcp_server.settings import Settings
from render_tools.base import RenderRequest, RenderResult
from tests.support.loopback import serve_app


class SlowLoadingRenderer:
    """A renderer (the tool's seam) whose model load waits for ``loaded``, like a big checkpoint."""

    name = "slow-loading"

    def __init__(self) -> None:
        self.loaded = threading.Event()
        self.load_state = "idle"
        self.ready = anyio.Event()  # built inside the test's event loop

    async def load(self) -> None:
        self.load_state = "loading"
        await anyio.to_thread.run_sync(self.loaded.wait, 60)
        self.load_state = "ready"
        self.ready.set()

    async def render(self, request: RenderRequest) -> RenderResult:
        await self.ready.wait()  # a render waits for the load, as the diffusers renderer does
        request = request.validated()
        return RenderResult([Image.new("RGB", (request.width, request.height), "blue")], int(request.seed), 0.1, "slow")

    async def aclose(self) -> None:
        pass


@pytest.mark.anyio
async def test_render_waits_for_the_background_load_and_reports_progress(settings: Settings) -> None:
    from mcp import Client

    from mcp_server.tools import render as render_tool

    renderer = SlowLoadingRenderer()
    async with open_services(settings) as services:
        services.renderer = renderer
        app = create_app(settings, services=services)
        with serve_app(app) as base:
            deadline = time.monotonic() + 10
            while renderer.load_state != "loading":  # the app starts the load by itself
                assert time.monotonic() < deadline, "the model load never started"
                await anyio.sleep(0.02)
            async with httpx.AsyncClient(base_url=base) as http:
                assert (await http.get("/healthz")).json() == {"status": "loading"}
            messages: list[str] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                messages.append(message or "")
                if len(messages) == 2:
                    renderer.loaded.set()  # the model arrives while the client waits

            old_interval = render_tool.PROGRESS_EVERY_S
            render_tool.PROGRESS_EVERY_S = 0.1
            try:
                async with Client(base + "/mcp") as client:
                    result = await client.call_tool(
                        "render", {"prompt": "a blue square", "width": 64, "height": 64}, progress_callback=on_progress
                    )
            finally:
                render_tool.PROGRESS_EVERY_S = old_interval
            async with httpx.AsyncClient(base_url=base) as http:
                assert (await http.get("/healthz")).json() == {"status": "ok"}
    assert not result.is_error, result.content
    assert messages and messages[0].startswith("waiting for the render model to load")
    kinds = [block.type for block in result.content]
    assert kinds.count("image") == 1  # the inline thumbnail stays


def _send(process: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
    assert process.stdin is not None
    process.stdin.write((json.dumps(message) + "\n").encode())
    process.stdin.flush()


def _answer(process: subprocess.Popen[bytes], want: int) -> dict[str, Any]:
    assert process.stdout is not None
    while True:
        line = process.stdout.readline()
        assert line, "the server closed stdout"
        message = json.loads(line)
        if message.get("id") == want:
            return message


def test_stdio_answers_at_once_even_when_the_render_model_cannot_load(settings: Settings, tmp_path: Path) -> None:
    """tools/list comes before any model work; a model that fails to load is a clear render error."""
    model = tmp_path / "not-a-model"
    model.mkdir()
    (model / "model_index.json").write_text("{}")
    env = {key: value for key, value in os.environ.items() if not key.startswith("GEN_SEARCHER_")}
    env.update(
        GEN_SEARCHER_SEARCH__BACKEND="local",
        GEN_SEARCHER_SEARCH__INDEX=str(settings.search.index),
        GEN_SEARCHER_CACHE__PATH=str(tmp_path / "cache.db"),
        GEN_SEARCHER_IMAGES__DIR=str(tmp_path / "images"),
        GEN_SEARCHER_RENDER__BACKEND="diffusers",
        GEN_SEARCHER_RENDER__MODEL=str(model),
        GEN_SEARCHER_RENDER__DEVICE="cpu",
        GEN_SEARCHER_SERVER__LOG_LEVEL="WARNING",
    )
    command = [str(Path(sys.executable).parent / "gen-searcher"), "serve", "--transport", "stdio"]
    process = subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        params = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
        _send(process, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params})
        assert _answer(process, 1)["result"]["serverInfo"]["name"] == "gen-searcher"
        _send(process, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        _send(process, {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
        names = {tool["name"] for tool in _answer(process, 2)["result"]["tools"]}
        assert {"search", "image_search", "browse", "render"} <= names
        call = {"name": "search", "arguments": {"queries": ["Eiffel Tower"]}}
        _send(process, {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": call})
        searched = _answer(process, 3)["result"]
        assert not searched.get("isError") and "Eiffel" in searched["content"][0]["text"]
        render = {"name": "render", "arguments": {"prompt": "a tower", "width": 64, "height": 64}}
        _send(process, {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": render})
        rendered = _answer(process, 4)["result"]
        assert rendered["isError"] and "cannot load" in rendered["content"][0]["text"]
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
