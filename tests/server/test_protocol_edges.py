"""Protocol edges on every transport: each request is answered, with the right code and the field named.

Over stdio the real ``gen-searcher serve --transport stdio`` runs as a child
process and the test speaks raw JSON lines to it; over HTTP the production app
runs on loopback.
"""

from __future__ import annotations

import json
import select
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from tests.server.raw_mcp import call, initialize_body, open_session
from tests.server.served import gen_searcher_command, serve_env
from tests.support.tool_server import run_tool_server

ANSWER_TIMEOUT_S = 60.0
BAD_IDS: list[Any] = [{"a": 1}, 1.5, None, True, [1]]
#: Every method a client may send, each with params of the wrong shape or content.
BAD_PARAMS: list[tuple[str, Any]] = [
    ("ping", {"_meta": 5}),
    ("tools/list", {"cursor": 5}),
    ("tools/call", {"name": 5}),
    ("tools/call", {"name": "search", "arguments": "x"}),
    ("tools/call", {"name": "search", "arguments": [1, 2]}),
    ("tools/call", {"name": "search", "arguments": {"queries": "not a list", "top_k": "x"}}),
    ("tools/call", {}),
    ("resources/list", {"cursor": []}),
    ("resources/templates/list", {"cursor": {}}),
    ("resources/read", {}),
    ("resources/read", {"uri": 5}),
    ("resources/read", {"uri": "file:///etc/passwd"}),
    ("resources/read", {"uri": "image://not-an-id"}),
    ("resources/subscribe", {"uri": "image://x"}),
    ("prompts/list", {"cursor": 1}),
    ("prompts/get", {"name": "no-such-prompt"}),
    ("prompts/get", {"name": None}),
    ("completion/complete", {"ref": "x"}),
    ("logging/setLevel", {"level": "loudest"}),
    ("initialize", {"protocolVersion": 5}),
    ("no/such/method", {}),
    ("tools/call", []),
    ("tools/call", "params"),
]


class StdioServer:
    """``gen-searcher serve --transport stdio`` with a raw line-by-line client."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    def send(self, message: Any) -> None:
        assert self.process.stdin is not None
        line = message if isinstance(message, bytes) else json.dumps(message).encode()
        self.process.stdin.write(line + b"\n")
        self.process.stdin.flush()

    def receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], ANSWER_TIMEOUT_S)
        assert ready, "no answer: the server left the request unanswered"
        return json.loads(self.process.stdout.readline())

    def request(self, method: str, params: Any, request_id: int | str) -> dict[str, Any]:
        self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        answer = self.receive()
        assert answer.get("id") == request_id, (method, params, answer)
        return answer


@pytest.fixture
def stdio_server(tmp_path: Path, index_db: Path) -> Iterator[StdioServer]:
    process = subprocess.Popen(
        gen_searcher_command("serve", "--transport", "stdio"),
        env=serve_env(tmp_path, index_db),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "stderr.log").open("wb"),
    )
    server = StdioServer(process)
    try:
        assert "result" in server.request("initialize", initialize_body()["params"], 0)
        server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        yield server
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    log = (tmp_path / "stderr.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]


def test_stdio_answers_invalid_ids_like_http(stdio_server: StdioServer) -> None:
    for bad in BAD_IDS:
        stdio_server.send({"jsonrpc": "2.0", "id": bad, "method": "ping"})
        answer = stdio_server.receive()
        assert answer["id"] is None and answer["error"]["code"] == -32600, (bad, answer)
        assert "id must be" in answer["error"]["message"]
    stdio_server.send([{"jsonrpc": "2.0", "id": 1.25, "method": "ping"}])
    assert stdio_server.receive()["error"]["code"] == -32600
    stdio_server.send([{"jsonrpc": "2.0", "id": 3, "method": "ping"}])  # a batch at all: stdio has none
    assert stdio_server.receive()["error"]["code"] == -32600
    stdio_server.send(b"{not json")
    assert stdio_server.receive()["error"]["code"] == -32700
    stdio_server.send({"jsonrpc": "2.0", "id": "x" * 300, "method": "ping"})  # over MAX_REQUEST_ID_CHARS
    assert stdio_server.receive() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {
            "code": -32600,
            "message": "Invalid Request: id must be a string (at most 256 characters) or an integer",
        },
    }
    assert stdio_server.request("ping", {}, "still-serving") == {"jsonrpc": "2.0", "id": "still-serving", "result": {}}


def test_stdio_answers_every_method_with_bad_params(stdio_server: StdioServer) -> None:
    answers = {}
    for number, (method, params) in enumerate(BAD_PARAMS, start=1):
        answers[(method, json.dumps(params))] = answer = stdio_server.request(method, params, number)
        if "error" in answer:
            assert answer["error"]["code"] in (-32600, -32601, -32602, -32002), answer
            assert "Traceback" not in answer["error"]["message"]
    passwd = answers[("resources/read", json.dumps({"uri": "file:///etc/passwd"}))]["error"]
    assert passwd["code"] == -32002 and passwd["data"] == {"uri": "file:///etc/passwd"}, passwd
    prompt = answers[("prompts/get", json.dumps({"name": "no-such-prompt"}))]["error"]
    assert prompt["code"] == -32602 and "no-such-prompt" in prompt["message"], prompt
    for shape in ('"x"', "[1, 2]"):
        error = answers[("tools/call", '{"name": "search", "arguments": ' + shape + "}")]["error"]
        assert error["code"] == -32602 and "arguments" in error["message"], error
    fields = answers[("tools/call", json.dumps(BAD_PARAMS[5][1]))]["result"]
    assert fields["isError"] and "queries" in fields["content"][0]["text"] and "top_k" in fields["content"][0]["text"]
    for params in ("[]", '"params"'):
        error = answers[("tools/call", params)]["error"]
        assert error["code"] == -32600 and "params must be an object" in error["message"], error
    assert stdio_server.request("ping", {}, "still-serving")["result"] == {}


@pytest.mark.parametrize("protocol_version", ["2025-06-18", "2025-11-25"])
def test_http_answers_unknown_resources_prompts_and_bad_arguments(
    tmp_path: Path, index_db: Path, protocol_version: str
) -> None:
    render = {"backend": "http", "url": "http://127.0.0.1:9"}  # listed; never reached here
    with run_tool_server(tmp_path, index=index_db, render=render) as ts, httpx.Client(timeout=60) as http:
        session = open_session(http, ts.url, protocol_version=protocol_version)
        passwd = call(http, ts.url, session, "resources/read", {"uri": "file:///etc/passwd"})["error"]
        assert passwd["code"] == -32002 and passwd["data"] == {"uri": "file:///etc/passwd"}, passwd
        prompt = call(http, ts.url, session, "prompts/get", {"name": "no-such-prompt"})["error"]
        assert prompt["code"] == -32602 and "Traceback" not in prompt["message"], prompt
        for arguments in ("x", [1], 5):
            error = call(http, ts.url, session, "tools/call", {"name": "search", "arguments": arguments})["error"]
            assert error["code"] == -32602 and "params.arguments" in error["message"], error
        listed = call(http, ts.url, session, "tools/call", {"name": "search", "arguments": {"queries": ["a"] * 9}})
        assert listed["result"]["isError"] and "queries" in listed["result"]["content"][0]["text"]
        steps = call(http, ts.url, session, "tools/call", {"name": "render", "arguments": {"prompt": "p", "steps": 1}})
        text = steps["result"]["content"][0]["text"]
        assert steps["result"]["isError"] and text.startswith("Invalid arguments for tool 'render': steps:"), text
        body = {"jsonrpc": "2.0", "id": 41, "method": "tools/call", "params": ["search"]}
        wrong_shape = http.post(ts.url, json=body, headers=session)
        assert wrong_shape.status_code == 400 and wrong_shape.json()["id"] == 41
        assert wrong_shape.json()["error"]["code"] == -32600


def test_the_render_schema_accepts_exactly_what_the_render_server_does(tmp_path: Path, index_db: Path) -> None:
    from render_tools.base import MAX_STEPS, MIN_STEPS

    render = {"backend": "http", "url": "http://127.0.0.1:9"}
    with run_tool_server(tmp_path, index=index_db, render=render) as ts, httpx.Client(timeout=60) as http:
        session = open_session(http, ts.url)
        tools = call(http, ts.url, session, "tools/list", {})["result"]["tools"]
    schema = next(tool["inputSchema"] for tool in tools if tool["name"] == "render")
    accepted = [0, MIN_STEPS, 50, MAX_STEPS]
    refused = [-1, 1, MIN_STEPS - 1, MAX_STEPS + 1]
    for steps in accepted:
        jsonschema.validate({"prompt": "p", "steps": steps}, schema)
    for steps in refused:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"prompt": "p", "steps": steps}, schema)


def test_http_answers_unknown_resources_with_the_newer_code_from_2026_07_28(tmp_path: Path, index_db: Path) -> None:
    """2026-07-28 retired -32002: a per-request (sessionless) read of an unknown URI gets -32602."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "resources/read",
        "mcp-name": "file:///etc/passwd",
    }
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "resources/read",
        "params": {"uri": "file:///etc/passwd", "_meta": meta},
    }
    with run_tool_server(tmp_path, index=index_db) as ts, httpx.Client(timeout=60) as http:
        error = http.post(ts.url, json=body, headers=headers).json()["error"]
    assert error["code"] == -32602 and error["data"] == {"uri": "file:///etc/passwd"}, error
