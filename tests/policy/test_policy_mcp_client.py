"""The MCP client session shared by the inference driver and the verl bridge: reuse, sharing, reconnecting."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_server.http_app import MCP_PATH, create_app
from policy.driver import run_episode
from policy.episode import Termination
from policy.mcp_client import ConnectionPool, McpCallError, McpConnection, McpConnectionError
from policy.mcp_tools import McpTools
from policy.protocol import ToolCall
from tests.policy.conftest import ScriptedChat, Site
from tests.policy.scripting import answer, tool_call
from tests.support.loopback import free_port, serve_app
from tests.support.tool_server import ToolServer, tool_server_settings

pytestmark = pytest.mark.anyio

BRIDGE = ToolCall("image_search", {"query": "Quorvath Bridge", "top_k": 1})


async def test_one_session_serves_an_episode_and_bad_arguments_keep_it(tool_server: ToolServer) -> None:
    async with McpTools.connect(tool_server.url) as tools:
        results = await tools.call_many([BRIDGE, ToolCall("search", {"queries": "not a list"}), BRIDGE])
        assert [r.is_error for r in results] == [False, True, False]
        assert "queries" in results[1].text
        assert results[0].images[0].store_id == results[2].images[0].store_id
        # An error the server answers with is about the request: no reconnect, no retry.
        with pytest.raises(McpCallError, match="image://img_0000000000000000"):
            await tools.read_image("img_0000000000000000")
        data, media_type = await tools.read_image(results[0].images[0].store_id)
        assert media_type == "image/png" and data.startswith(b"\x89PNG")
        assert tools.connection.sessions_opened == 1


async def test_a_pooled_session_is_shared_by_concurrent_users(tool_server: ToolServer) -> None:
    pool = ConnectionPool()
    first, second = McpTools(pool.get(tool_server.url)), McpTools(pool.get(tool_server.url))
    assert first.connection is second.connection
    try:
        a, b = await first.call_many([BRIDGE, BRIDGE]), await second.call_many([BRIDGE])
        assert not any(r.is_error for r in [*a, *b])
        assert first.connection.sessions_opened == 1
    finally:
        await pool.aclose()


async def test_the_session_comes_back_after_the_tool_server_restarts(tmp_path: Path, site: Site) -> None:
    from search_tools.index import build_index

    index = build_index(site.root, tmp_path / "index.db", base_url=site.url + "/").path
    settings = tool_server_settings(tmp_path, index=index)
    port = free_port()
    url = f"http://127.0.0.1:{port}{MCP_PATH}"
    tools = McpTools(McpConnection(url, timeout_s=10))  # opened on first use
    with serve_app(create_app(settings), port=port):
        assert not (await tools.call(BRIDGE)).is_error
    with pytest.raises(McpConnectionError, match=f"127.0.0.1:{port}"):
        await tools.call(BRIDGE)
    with serve_app(create_app(settings), port=port):
        result = await tools.call(BRIDGE)
        assert not result.is_error and result.images
        await tools.connection.aclose()
    assert tools.connection.sessions_opened == 2


async def test_an_unreachable_tool_server_ends_the_episode_with_error(chat: ScriptedChat) -> None:
    from policy.chat import OpenAIChatModel

    url = f"http://127.0.0.1:{free_port()}{MCP_PATH}"
    with pytest.raises(McpConnectionError, match=r"127\.0\.0\.1"):
        async with McpTools.connect(url):
            pass
    # A session lost mid-episode: the episode ends with `error`, naming the server.
    chat.load(tool_call("image_search", query="Quorvath Bridge"), answer("IMG_001"))
    connection = McpConnection(url, max_attempts=1, connect_timeout_s=5)
    async with OpenAIChatModel(chat.base_url, "scripted") as model:
        run = await run_episode("Quorvath Bridge", model, McpTools(connection))
    assert run.result.termination is Termination.ERROR and "127.0.0.1" in (run.result.detail or "")
    assert len(chat.requests) == 1
