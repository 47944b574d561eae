"""The HTTP tool server under hostile or careless clients: bad ids, sessions, idle sockets, logs, secrets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.loopback import free_port, serve_app
from tests.support.tool_server import run_tool_server

MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}


def test_requests_with_an_invalid_id_get_invalid_request(tmp_path: Path, index_db: Path) -> None:
    with run_tool_server(tmp_path, index=index_db) as ts:
        for bad in ({"a": 1}, 1.5, None, True, [1]):
            body = {"jsonrpc": "2.0", "id": bad, "method": "ping"}
            answer = httpx.post(ts.url, json=body, headers=MCP_HEADERS)
            assert answer.status_code == 400, (bad, answer.status_code, answer.text)
            error = answer.json()
            assert error["id"] is None and error["error"]["code"] == -32600, error
        batch = [{"jsonrpc": "2.0", "id": 1.25, "method": "ping"}]
        assert httpx.post(ts.url, json=batch, headers=MCP_HEADERS).json()["error"]["code"] == -32600
        # The server keeps serving; a proper request (string or integer id) passes unchanged.
        ok = httpx.post(ts.url, json={**INITIALIZE, "id": "init-1"}, headers=MCP_HEADERS)
        assert ok.status_code == 200 and "mcp-session-id" in ok.headers


def test_an_image_id_ending_in_a_newline_is_not_an_id(tmp_path: Path, index_db: Path) -> None:
    with run_tool_server(tmp_path, index=index_db) as ts:
        answer = httpx.get(ts.base_url + "/images/img_0123456789abcdef%0A")
        assert answer.status_code == 404 and "not an image id" in answer.text


def _initialize(url: str) -> httpx.Response:
    return httpx.post(url, json=INITIALIZE, headers=MCP_HEADERS)


def test_sessions_are_capped_and_idle_ones_expire(tmp_path: Path, index_db: Path) -> None:
    server = {"session_idle_timeout_s": 1.0, "max_sessions": 2}
    with run_tool_server(tmp_path, index=index_db, server=server) as ts:
        first, second = _initialize(ts.url), _initialize(ts.url)
        assert first.status_code == second.status_code == 200
        assert _initialize(ts.url).status_code == 503  # the cap holds
        session = first.headers["mcp-session-id"]
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        deadline = time.monotonic() + 30
        while True:  # idle sessions are closed; then the cap has room again
            time.sleep(2.5)  # longer than the idle timeout: each look is itself a request that resets it
            answer = httpx.post(ts.url, json=ping, headers={**MCP_HEADERS, "mcp-session-id": session})
            if answer.status_code == 404:
                break
            assert time.monotonic() < deadline, "an idle session was never closed"
        assert _initialize(ts.url).status_code == 200


def _serve(tmp_path: Path, index_db: Path, port: int, token: str) -> subprocess.Popen[bytes]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GEN_SEARCHER_")}
    env.update(
        GEN_SEARCHER_SEARCH__BACKEND="local",
        GEN_SEARCHER_SEARCH__INDEX=str(index_db),
        GEN_SEARCHER_CACHE__PATH=str(tmp_path / "cache.db"),
        GEN_SEARCHER_IMAGES__DIR=str(tmp_path / "images"),
        GEN_SEARCHER_AUTH_TOKENS=token,
        GEN_SEARCHER_SERVER__IDLE_CONNECTION_TIMEOUT_S="0.5",
    )
    command = [str(Path(sys.executable).parent / "gen-searcher"), "serve", "--port", str(port)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_served_over_http_query_tokens_stay_out_of_the_log_and_idle_sockets_close(
    tmp_path: Path, index_db: Path
) -> None:
    token = "tok-9f8e7d6c5b4a39281706"
    port = free_port()
    process = _serve(tmp_path, index_db, port, token)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        httpx.get(f"{base}/healthz?token={token}")
        httpx.get(f"{base}/metrics?access_token={token}", headers={"Authorization": f"Bearer {token}"})
        # A socket that never sends a request is closed after the idle timeout.
        # The bound tells "closed by the 0.5 s idle timeout" from "kept open"; it is not a speed test.
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            assert sock.recv(1) == b""  # closed by the server
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    log = output.decode(errors="replace")
    assert "/healthz?token=***" in log and "/metrics?access_token=***" in log, log[-2000:]
    assert token not in log


def _echoing_render_server(key: str) -> Starlette:
    """A render server that quotes the caller's key back in its error, as some services do."""

    async def generate(request):
        header = request.headers.get("authorization", "")
        return JSONResponse({"success": False, "message": f"key {header[7:]} is not allowed"}, status_code=403)

    return Starlette(routes=[Route("/generate", generate, methods=["POST"])])


@pytest.mark.anyio
async def test_render_errors_never_carry_the_render_key(tmp_path: Path, index_db: Path) -> None:
    from mcp import Client

    key = "rk-abcdef0123456789"
    with serve_app(_echoing_render_server(key)) as render_url:
        render = {"backend": "http", "url": render_url, "api_key": key}
        with run_tool_server(tmp_path, index=index_db, render=render) as ts:
            async with Client(ts.url) as client:
                result = await client.call_tool("render", {"prompt": "a red square", "width": 64, "height": 64})
    text = " ".join(block.text for block in result.content if block.type == "text")
    assert result.is_error and "is not allowed" in text
    assert key not in text and "***" in text
