"""The baseline policy and the ``gen-searcher run`` command, against real loopback servers."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import mcp_types
import pytest
from mcp.server.mcpserver import MCPServer
from PIL import Image
from typer.testing import CliRunner

from gen_searcher_core.commands import build_app
from gen_searcher_core.episode_record import ToolsStep
from policy.baseline import run_baseline
from policy.episode import Termination
from policy.mcp_tools import McpTools
from tests.policy.conftest import ScriptedChat, Site, png
from tests.policy.scripting import answer, last_user_text, tool_call
from tests.support.loopback import serve_app
from tests.support.tool_server import ToolServer

app = build_app()


@pytest.mark.anyio
async def test_baseline_takes_the_top_image(tool_server: ToolServer) -> None:
    prompt = "Portrait of architect Ilsa Marendt"
    async with McpTools.connect(tool_server.url) as tools:
        run = await run_baseline(prompt, tools)
    result = run.result
    assert result.termination is Termination.ANSWERED
    assert result.gen_prompt == prompt and [r.img_id for r in result.references] == ["IMG_001"]
    assert result.references[0].title and "Marendt" in result.references[0].title
    tools_step = run.steps[1]
    assert isinstance(tools_step, ToolsStep)
    assert tools_step.calls[0].name == "image_search" and tools_step.calls[0].arguments["query"] == prompt
    assert run.trace()["model"] == "baseline"


@pytest.mark.anyio
async def test_baseline_without_images_reports_an_error(tool_server: ToolServer) -> None:
    async with McpTools.connect(tool_server.url) as tools:
        run = await run_baseline("xylophone zeppelin quasar", tools)
    assert run.result.termination is Termination.ERROR and "no image" in (run.result.detail or "")


def test_cli_run_with_model_over_http(tmp_path: Path, chat: ScriptedChat, tool_server: ToolServer) -> None:
    # The query holds console markup: progress lines show it as text instead of failing on it.
    chat.load(tool_call("image_search", query="Quorvath Bridge [/b]", top_k=2), answer("IMG_001"))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "run", "The Quorvath Bridge at dusk", "--model-url", chat.base_url, "--model", "scripted",
            "--mcp-url", tool_server.url, "--out", str(out), "--no-render", "--max-tokens", "256",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert chat.requests[0]["max_tokens"] == 256
    answer_json = json.loads((out / "answer.json").read_text())
    assert answer_json["termination"] == "answered"
    assert answer_json["saved_references"] == ["references/01_IMG_001.png"]
    saved = Image.open(io.BytesIO((out / "references" / "01_IMG_001.png").read_bytes()))
    assert saved.size == (160, 120)  # the full image from image://, not the thumbnail
    trace = json.loads((out / "trace.json").read_text())
    assert trace["model"] == "scripted" and trace["steps"][1]["calls"][0]["name"] == "image_search"
    # Live progress: one line per model turn and tool call, then a summary.
    assert "model 1" in result.output and "Quorvath Bridge [/b]" in result.output
    assert "answered after 2 model call(s), 1 tool call(s)" in result.output


def test_cli_run_baseline_in_process(tmp_path: Path, site: Site) -> None:
    from search_tools.index import build_index

    index = build_index(site.root, tmp_path / "index.db", base_url=site.url + "/").path
    config = tmp_path / "settings.toml"
    config.write_text(
        f'[search]\nbackend = "local"\nindex = "{index}"\n'
        f'[cache]\npath = "{tmp_path / "cache.db"}"\n'
        f'[images]\ndir = "{tmp_path / "images"}"\n'
        "[fetch]\nallow_private_networks = true\nrespect_robots = false\n"
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["run", "Velmora lantern festival", "--policy", "baseline", "--config", str(config), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    answer_json = json.loads((out / "answer.json").read_text())
    assert answer_json["gen_prompt"] == "Velmora lantern festival"
    assert (out / answer_json["saved_references"][0]).is_file()
    # --render was on, but this server has no renderer: the run still succeeds and says so.
    assert answer_json["render"] is None or "error" in answer_json["render"]


def test_cli_run_requires_a_model_unless_baseline() -> None:
    result = CliRunner().invoke(app, ["run", "anything", "--no-render"])
    assert result.exit_code != 0 and "--model-url" in result.output
    result = CliRunner().invoke(app, ["run", "anything", "--policy", "baseline", "--mcp-url", "localhost:8000"])
    assert result.exit_code != 0 and "--mcp-url must be" in " ".join(result.output.split())


def contract_server(render_calls: list[dict[str, object]]) -> MCPServer:
    """A small MCP server that follows the tool contract for image_search, render and image://."""
    photo, rendered = png((30, 60, 90), (200, 100)), png((200, 10, 10), (96, 96))
    photo_id, render_id = "img_" + "1" * 16, "img_" + "2" * 16
    files = {photo_id: photo, render_id: rendered}
    server = MCPServer(name="contract", log_level="WARNING")

    @server.tool()
    async def image_search(query: str, top_k: int = 5) -> mcp_types.CallToolResult:
        return mcp_types.CallToolResult(
            content=[
                mcp_types.TextContent(text=f"1 image for {query}"),
                mcp_types.ImageContent(data=base64.b64encode(photo).decode(), mime_type="image/png"),
            ],
            structured_content={"query": query, "images": [{"id": photo_id, "title": "Photo", "page_url": "http://p"}]},
        )

    @server.tool()
    async def render(prompt: str, reference_image_ids: list[str]) -> mcp_types.CallToolResult:
        render_calls.append({"prompt": prompt, "reference_image_ids": reference_image_ids})
        return mcp_types.CallToolResult(
            content=[mcp_types.ResourceLink(uri=f"image://{render_id}", name=render_id)],
            structured_content={
                "id": render_id,
                "width": 96,
                "height": 96,
                "uri": f"image://{render_id}",
                "seed": 1,
                "elapsed_s": 0.1,
            },
        )

    @server.resource("image://{image_id}", mime_type="image/png")
    async def image(image_id: str) -> bytes:
        return files[image_id]

    return server


def test_cli_run_renders_with_the_generator_references(tmp_path: Path) -> None:
    calls: list[dict[str, object]] = []
    with serve_app(contract_server(calls).streamable_http_app()) as url:
        out = tmp_path / "out"
        result = CliRunner().invoke(
            app, ["run", "A red fox", "--policy", "baseline", "--mcp-url", url + "/mcp", "--out", str(out)]
        )
    assert result.exit_code == 0, result.output
    assert calls == [{"prompt": "A red fox", "reference_image_ids": ["img_" + "1" * 16]}]
    answer_json = json.loads((out / "answer.json").read_text())
    assert answer_json["render"]["file"] == "render.png"
    with Image.open(out / "render.png") as render, Image.open(out / "references" / "01_IMG_001.png") as reference:
        assert render.size == (96, 96) and reference.size == (200, 100)


def test_cli_system_prompt_file_and_parallel_tools(tmp_path: Path, chat: ScriptedChat, tool_server: ToolServer) -> None:
    prompt_file = tmp_path / "system.txt"
    prompt_file.write_text("You are a careful picture researcher.\n")
    two = tool_call("search", queries=["Quorvath Bridge"]) + (
        '\n<tool_call>{"name": "image_search", "arguments": {"query": "Quorvath Bridge", "top_k": 1}}</tool_call>'
    )
    chat.load(two, answer("IMG_001"))
    out = tmp_path / "out"
    args = ["run", "Quorvath Bridge", "--model-url", chat.base_url, "--model", "m", "--mcp-url", tool_server.url]
    args += ["--out", str(out), "--no-render", "--parallel-tools", "--system-prompt-file", str(prompt_file)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    system = chat.requests[0]["messages"][0]["content"]
    assert system.startswith("You are a careful picture researcher.\n\n# Tools\n") and "How to work" not in system
    assert last_user_text(chat.requests[1]).count("<tool_response>") == 2
    trace = json.loads((out / "trace.json").read_text())
    assert trace["config"]["parallel_tool_calls"] is True and trace["steps"][1]["parallel"] is True
