"""The verl BaseTool bridge to MCP servers: schemas, sessions, images, errors, and verl's stock tool loop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.loopback import free_port, serve_app
from tests.verl.conftest import ScriptedGenerator, ToyServer, compose_verl, toy_app

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_schemas_are_flattened_to_what_verl_accepts(toy_mcp: ToyServer, tmp_path: Path) -> None:
    from verl.tools.schemas import OpenAIFunctionToolSchema

    from verl_recipes.mcp_tool import write_tool_config

    path = await write_tool_config(tmp_path / "tools.yaml", toy_mcp.url, names=["swatches", "echo"])
    document = yaml.safe_load(path.read_text())
    entries = {entry["tool_schema"]["function"]["name"]: entry for entry in document["tools"]}
    assert list(entries) == ["swatches", "echo"]
    params = entries["swatches"]["tool_schema"]["function"]["parameters"]
    assert params["required"] == ["colours"]
    colours, style, mode = params["properties"]["colours"], params["properties"]["style"], params["properties"]["mode"]
    assert colours["type"] == "array" and "list of string" in colours["description"]
    assert style["type"] == "object"  # anyOf[$ref Style, null] resolved
    assert mode == {"type": "string", "description": "Default: 'fast'.", "enum": ["fast", "slow"]}
    for prop in params["properties"].values():
        assert set(prop) <= {"type", "description", "enum"}
        assert "anyOf" not in json.dumps(prop) and "$ref" not in json.dumps(prop)
    for entry in document["tools"]:
        OpenAIFunctionToolSchema.model_validate(entry["tool_schema"])
        assert entry["class_name"] == "verl_recipes.mcp_tool.McpTool"
        assert entry["config"]["type"] == "native" and entry["config"]["server_url"] == toy_mcp.url
    echo = entries["echo"]["tool_schema"]["function"]["parameters"]["properties"]
    assert echo["times"] == {"type": "integer", "description": "Default: 1."}


async def test_unknown_tool_names_are_refused(toy_mcp: ToyServer, tmp_path: Path) -> None:
    from verl_recipes.mcp_tool import write_tool_config

    with pytest.raises(ValueError, match="no tool"):
        await write_tool_config(tmp_path / "tools.yaml", toy_mcp.url, names=["nope"])


async def test_tools_share_one_session_and_images_become_pil(toy_mcp: ToyServer, tmp_path: Path) -> None:
    from verl_recipes.mcp_tool import load_tools, write_tool_config

    path = await write_tool_config(tmp_path / "tools.yaml", toy_mcp.url)
    tools = {tool.name: tool for tool in load_tools(path)}
    assert set(tools) == {"echo", "swatches", "broken", "long_text"}
    connection = tools["echo"].connection
    assert connection is tools["swatches"].connection
    before = connection.sessions_opened

    for n in range(3):
        response, reward, metrics = await tools["echo"].execute("i", {"text": "hi", "times": n + 1})
        assert response.text == " ".join(["hi"] * (n + 1)) and reward == 0.0 and not metrics["is_error"]
    response, _, metrics = await tools["swatches"].execute("i", {"colours": ["red", "blue"], "mode": "slow"})
    assert response.text.startswith("2 swatches (slow)")
    assert "does not decode" in response.text  # the broken image is reported, not silently dropped
    assert metrics["images"] == 2 and len(response.image) == 2
    red, blue = response.image
    assert red.mode == "RGB" and red.size == (64, 48)
    assert red.getpixel((3, 3)) == (220, 30, 30) and blue.getpixel((3, 3)) == (30, 30, 220)
    assert connection.sessions_opened == before + 1  # five calls over two tools, one session
    assert toy_mcp.calls == ["echo", "echo", "echo", "swatches"]


async def test_tool_errors_and_text_budget(toy_mcp: ToyServer, tmp_path: Path) -> None:
    from verl_recipes.mcp_tool import load_tools, write_tool_config

    path = await write_tool_config(tmp_path / "tools.yaml", toy_mcp.url, max_text_chars=500)
    tools = {tool.name: tool for tool in load_tools(path)}
    response, _, metrics = await tools["broken"].execute("i", {})
    assert (
        metrics["is_error"]
        and response.text.startswith("Tool error: ")
        and response.text.endswith("the broken tool is broken")
    )
    response, _, metrics = await tools["long_text"].execute("i", {"chars": 20_000})
    assert metrics["truncated"] and len(response.text) <= 500
    assert "truncated 19" in response.text
    # Bad arguments are the server's to reject; the model is told why and the session survives.
    response, _, metrics = await tools["echo"].execute("i", {"times": 2})
    assert metrics["is_error"] and "text" in response.text
    response, _, _ = await tools["echo"].execute("i", {"text": "still here"})
    assert response.text == "still here"


async def test_schema_fetched_from_server_when_yaml_has_none(toy_mcp: ToyServer, tmp_path: Path) -> None:
    from verl_recipes.mcp_tool import load_tools

    path = tmp_path / "tools.yaml"
    entry = {
        "class_name": "verl_recipes.mcp_tool.McpTool",
        "config": {"type": "native", "server_url": toy_mcp.url, "tool_name": "echo"},
    }
    path.write_text(yaml.safe_dump({"tools": [entry]}))
    (tool,) = load_tools(path)
    assert tool.name == "echo"
    assert tool.tool_schema.function.parameters.required == ["text"]


async def test_reconnects_after_the_server_restarts(tmp_path: Path) -> None:
    from policy.mcp_client import McpConnection, McpConnectionError

    port = free_port()
    state = ToyServer(url=f"http://127.0.0.1:{port}/mcp", token=None)
    conn = McpConnection(state.url, timeout_s=10, max_attempts=2)
    with serve_app(toy_app(state), port=port):
        result = await conn.call_tool("echo", {"text": "one"})
        assert result.content[0].text == "one"
    with pytest.raises(McpConnectionError, match=r"127\.0\.0\.1"):
        await conn.call_tool("echo", {"text": "down"})
    with serve_app(toy_app(state), port=port):
        result = await conn.call_tool("echo", {"text": "two"})
        assert result.content[0].text == "two"
        result = await conn.call_tool("echo", {"text": "three"})
    assert conn.sessions_opened == 2
    await conn.aclose()


async def test_bearer_token_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from policy.mcp_client import ConnectionPool, McpConnectionError
    from verl_recipes.mcp_tool import McpTool

    secret = "s3cr3t-token-value"
    state = ToyServer(url="", token=secret)
    with serve_app(toy_app(state)) as base:
        state.url = base + "/mcp"
        schema = {"type": "function", "function": {"name": "echo", "description": "Repeat."}}
        from verl.tools.schemas import OpenAIFunctionToolSchema

        tool = McpTool(
            {"type": "native", "server_url": state.url, "token_env": "TOY_TOKEN", "max_attempts": 1},
            OpenAIFunctionToolSchema.model_validate(schema),
        )
        response, _, metrics = await tool.execute("i", {"text": "x"})
        assert (
            metrics["is_error"] and response.text.startswith("Tool error: MCP server") and secret not in response.text
        )

        monkeypatch.setenv("TOY_TOKEN", secret)
        pool = ConnectionPool()
        conn = pool.get(state.url, token_env="TOY_TOKEN")
        result = await conn.call_tool("echo", {"text": "authorised"})
        assert result.content[0].text == "authorised"
        assert secret not in repr(conn)
        await pool.aclose()
        with pytest.raises(McpConnectionError) as caught:
            await (
                ConnectionPool()
                .get(state.url, token_env="NO_SUCH_VAR", max_attempts=1)
                .call_tool("echo", {"text": "x"})
            )
        assert secret not in str(caught.value)


async def test_verl_tool_agent_loop_uses_the_bridge_against_the_real_server(
    tool_server: Any, tiny_vl: Any, tmp_path: Path
) -> None:
    """verl's stock ``tool_agent`` loop, fed by a scripted generator, calls our server through the bridge."""
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap
    from verl.experimental.agent_loop.tool_agent_loop import ToolAgentLoop
    from verl.utils.dataset.rl_dataset import RLHFDataset

    from verl_recipes.mcp_tool import load_tools, write_tool_config

    path = await write_tool_config(tmp_path / "tools.yaml", tool_server.url, names=["image_search", "search"])
    tools = load_tools(path)
    config = compose_verl(
        "ppo_trainer",
        [
            "actor_rollout_ref.rollout.prompt_length=8192",
            "actor_rollout_ref.rollout.response_length=8192",
            "actor_rollout_ref.rollout.multi_turn.enable=true",
            "actor_rollout_ref.rollout.multi_turn.max_tool_response_length=4000",
            f"actor_rollout_ref.rollout.multi_turn.tool_config_path={path}",
        ],
    )
    generator = ScriptedGenerator(
        tiny_vl.tokenizer,
        [
            '<tool_call>{"name": "image_search", "arguments": {"query": "Quorvath Bridge", "top_k": 2}}</tool_call>',
            "The bridge is copper-green.",
        ],
    )
    loop = ToolAgentLoop(
        trainer_config=DictConfigWrap(config),
        server_manager=generator,
        tokenizer=tiny_vl.tokenizer,
        processor=tiny_vl.processor,
        dataset_cls=RLHFDataset,
        data_config=DictConfigWrap(config.data),
        hf_model_type="qwen2_vl",
        tools=ToolListWrap(tools),
    )
    output = await loop.run({"temperature": 1.0}, raw_prompt=[{"role": "user", "content": "Draw the Quorvath Bridge."}])

    images = output.multi_modal_data["images"]
    assert images and all(image.mode == "RGB" for image in images)
    assert len(generator.requests) == 2 and len(generator.requests[1]["images"]) == len(images)
    second_prompt = generator.prompt_text(1)
    assert "<tool_response>" in second_prompt and "Quorvath" in second_prompt
    assert second_prompt.count("<|vision_start|>") == len(images)
    mask = output.response_mask
    assert mask[0] == 1 and mask[-1] == 1 and 0 in mask  # tool-response tokens carry no loss
    response_text = tiny_vl.tokenizer.decode(
        [t for t, m in zip(output.response_ids, mask, strict=True) if m], skip_special_tokens=True
    )
    assert (
        "image_search" in response_text
        and "copper-green" in response_text
        and "Quorvath Bridge at dusk" not in response_text
    )


def test_tools_yaml_command(toy_mcp: ToyServer, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gen_searcher_core.commands import build_app

    app = build_app()

    out = tmp_path / "tools.yaml"
    result = CliRunner().invoke(app, ["train", "tools-yaml", "--url", toy_mcp.url, "--out", str(out), "--tool", "echo"])
    assert result.exit_code == 0, result.output
    (entry,) = yaml.safe_load(out.read_text())["tools"]
    assert entry["tool_schema"]["function"]["name"] == "echo" and entry["config"]["token_env"] == "GEN_SEARCHER_TOKEN"
    result = CliRunner().invoke(
        app, ["train", "tools-yaml", "--url", f"http://127.0.0.1:{free_port()}/mcp", "--out", str(out)]
    )
    assert result.exit_code == 1 and "error:" in result.output
