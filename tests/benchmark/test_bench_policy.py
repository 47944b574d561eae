"""The generate stage through the real policy path: MCP tool server, policy episode, references to the renderer."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from typer.testing import CliRunner

from benchmark.journal import Journal
from gen_searcher_core.commands import build_app
from tests.benchmark.helpers import make_knowgen
from tests.support.loopback import serve_app
from tests.support.scripted_judge import ScriptedJudge, kscore_reply, serve_judge
from tests.support.tool_server import ToolServer, run_tool_server

app = build_app()

LIGHTHOUSE_COLOUR = (30, 90, 200)


def _site(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (160, 120), LIGHTHOUSE_COLOUR).save(root / "lighthouse.png")
    (root / "lighthouse.html").write_text(
        "<html><head><title>Prompt number lighthouse</title></head><body><article><h1>Prompt number lighthouse</h1>"
        "<p>Prompt number 0 about astronomy: the Brannock lighthouse is a blue tower used to watch the stars.</p>"
        '<figure><img src="lighthouse.png" alt="Prompt number 0 about astronomy blue lighthouse" width="160" '
        'height="120"><figcaption>Prompt number 0 about astronomy</figcaption></figure></article></body></html>'
    )


@pytest.fixture
def tool_server(tmp_path: Path) -> Iterator[ToolServer]:
    from search_tools.index import build_index

    site_root = tmp_path / "site"
    _site(site_root)
    with serve_app(Starlette(routes=[Mount("/", StaticFiles(directory=site_root))])) as site_url:
        index = build_index(site_root, tmp_path / "index.db", base_url=site_url + "/").path
        with run_tool_server(tmp_path / "ts", index=index) as server:
            yield server


class RecordingRenderer:
    def __init__(self) -> None:
        self.bodies: list[dict] = []

    async def generate(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.bodies.append(body)
        buf = io.BytesIO()
        Image.new("RGB", (64, 64), (0, 0, 0)).save(buf, format="PNG")
        return JSONResponse({"success": True, "image": base64.b64encode(buf.getvalue()).decode()})


def _reference_colours(body: dict) -> list[tuple[int, int, int]]:
    colours = []
    for url in body["image_urls"]:
        image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")
        colours.append(image.getpixel((image.width // 2, image.height // 2)))
    return colours


@pytest.mark.parametrize("policy", ["baseline", "model"])
def test_policy_generation_renders_with_references(tmp_path: Path, tool_server: ToolServer, policy: str) -> None:
    data = make_knowgen(tmp_path / "data", 1)
    renderer = RecordingRenderer()
    chat = ScriptedJudge()  # any OpenAI-compatible scripted server can play the policy model
    chat.when(
        "Prompt number 0",
        '<think>look</think>\n<tool_call>{"name": "image_search", "arguments": '
        '{"query": "Prompt number 0 about astronomy", "top_k": 2}}</tool_call>',
        '<think>done</think>\n<answer>{"gen_prompt": "The blue Brannock lighthouse as in the first reference '
        'image", "reference_images": [{"img_id": "IMG_001", "note": "the lighthouse"}]}</answer>',
    )
    out = tmp_path / "run"
    with (
        serve_app(Starlette(routes=[Route("/generate", renderer.generate, methods=["POST"])])) as render_url,
        serve_judge(ScriptedJudge(default=kscore_reply(1, 1, 1, 1))) as judge_url,
        serve_judge(chat) as chat_url,
    ):
        policy_args = (
            ["--policy", "baseline"] if policy == "baseline" else ["--policy", chat_url, "--policy-model", "p"]
        )
        result = CliRunner().invoke(
            app,
            [
                "bench",
                "knowgen",
                "--data",
                str(data),
                "--out",
                str(out),
                *policy_args,
                "--mcp-url",
                tool_server.url,
                "--render",
                "http",
                "--render-url",
                render_url,
                "--width",
                "64",
                "--height",
                "64",
                "--judge-url",
                judge_url,
                "--no-progress",
            ],
        )
    assert result.exit_code == 0, result.output
    row = Journal(out / "generations.jsonl").get("kg-000")
    assert row["ok"], row
    assert row["references"] and row["references"][0]["store_id"].startswith("img_")
    assert row["detail"]["termination"] == "answered" and row["detail"]["tool_calls"] == 1
    (body,) = renderer.bodies
    assert _reference_colours(body) == [LIGHTHOUSE_COLOUR]  # the full-size reference reached the renderer
    if policy == "model":
        assert body["prompt"].startswith("The blue Brannock lighthouse") and row["gen_prompt"] == body["prompt"]
    else:
        assert body["prompt"].startswith("Prompt number 0")
    trace = json.loads((out / "traces" / "kg-000.json").read_text())
    assert trace["termination"] == "answered"
    assert json.loads((out / "summary.json").read_text())["overall"] == pytest.approx(100)


def test_policy_without_answer_is_a_failed_generation(tmp_path: Path, tool_server: ToolServer) -> None:
    data = make_knowgen(tmp_path / "data", 1)
    chat = ScriptedJudge(default="I will not follow the format.")
    out = tmp_path / "run"
    with serve_judge(chat) as chat_url, serve_judge(ScriptedJudge(default=kscore_reply(1, 1, 1, 1))) as judge_url:
        result = CliRunner().invoke(
            app,
            [
                "bench",
                "knowgen",
                "--data",
                str(data),
                "--out",
                str(out),
                "--policy",
                chat_url,
                "--policy-model",
                "p",
                "--mcp-url",
                tool_server.url,
                "--render",
                "http",
                "--render-url",
                "http://127.0.0.1:9/unused",
                "--judge-url",
                judge_url,
                "--no-progress",
            ],
        )
    assert result.exit_code == 0, result.output
    row = Journal(out / "generations.jsonl").get("kg-000")
    assert row["ok"] is False and "policy gave no answer" in row["error"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["failed_generation"] == 1 and summary["overall"] == 0


def test_unreachable_tool_server_is_a_clear_error(tmp_path: Path) -> None:
    from tests.support.loopback import free_port

    data = make_knowgen(tmp_path / "data", 1)
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "knowgen",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "run"),
            "--policy",
            "baseline",
            "--mcp-url",
            f"http://127.0.0.1:{free_port()}/mcp",
            "--render",
            "http",
            "--render-url",
            "http://127.0.0.1:9",
            "--judge-url",
            "http://127.0.0.1:9/v1",
            "--no-progress",
        ],
    )
    assert result.exit_code == 2, result.output
    assert "error: tool server:" in result.output and "127.0.0.1" in result.output
