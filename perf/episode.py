"""Wall time of a scripted policy episode: parallel vs sequential tool calls, session reuse vs one per call.

    .venv/bin/python -m perf.episode [--delay-ms 100] [--repeats 5]

A tiny MCP server (subprocess, streamable HTTP on 127.0.0.1) offers ``search``,
``image_search`` and ``browse`` tools that each sleep ``--delay-ms`` before
answering (a stand-in for provider and page latency). A scripted model (no
inference) plays an 8-call episode through the real driver and episode state
machine: 7 turns with two tool calls each, then an answer. Four variants:

* reuse + parallel: one MCP session for the episode, a turn's two calls concurrent;
* reuse + sequential: one session, calls one after another;
* per-call + sequential: a new MCP session for every tool call (what a naive client does);
* per-call + parallel.

The same is run once more with a zero delay to isolate the per-session cost.
Prints median wall times and the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import httpx
import mcp_types

from policy.chat import ChatReply
from policy.driver import run_episode
from policy.episode import EpisodeConfig, Termination, ToolResult
from policy.mcp_tools import McpTools
from policy.protocol import ToolCall

TURNS = 7  # tool turns; the 8th model call answers
THUMB = (  # a 1x1 JPEG, base64
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4z"
    "NDL/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AKp//2Q=="
)


# -- the tiny tool server (runs in a subprocess) ----------------------------------


def serve(port: int, delay_s: float) -> None:
    import uvicorn
    from mcp.server.mcpserver import MCPServer

    server = MCPServer(name="sleepy-tools", log_level="WARNING")

    @server.tool()
    async def search(queries: list[str], top_k: int = 5) -> str:
        await anyio.sleep(delay_s)
        return "\n".join(f"result for {q}" for q in queries)

    @server.tool()
    async def browse(url: str, goal: str, offset: int = 0) -> str:
        await anyio.sleep(delay_s)
        return f"content of {url} about {goal}"

    @server.tool()
    async def image_search(query: str, top_k: int = 5) -> mcp_types.CallToolResult:
        await anyio.sleep(delay_s)
        store_id = "img_" + format(abs(hash(query)) % 16**16, "016x")
        return mcp_types.CallToolResult(
            content=[
                mcp_types.TextContent(text=f"one image for {query}"),
                mcp_types.ImageContent(data=THUMB, mime_type="image/jpeg"),
            ],
            structured_content={"query": query, "images": [{"id": store_id, "title": query}]},
        )

    uvicorn.run(server.streamable_http_app(), host="127.0.0.1", port=port, log_level="warning")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def tool_server(delay_s: float):  # type: ignore[no-untyped-def]
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "perf.episode", "--serve", str(port), "--delay-ms", str(delay_s * 1000)]
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=0.5)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("tool server did not start")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- the scripted model and the tool runners ---------------------------------------


class ScriptedModel:
    """Seven turns of two tool calls (one image_search, one search or browse), then an answer."""

    async def chat(self, messages: Sequence[dict[str, Any]]) -> ChatReply:
        turn = sum(1 for m in messages if m["role"] == "assistant")
        if turn < TURNS:
            second = (
                {"name": "search", "arguments": {"queries": [f"fact {turn}"]}}
                if turn % 2
                else {"name": "browse", "arguments": {"url": f"http://example.org/{turn}", "goal": "facts"}}
            )
            calls = [{"name": "image_search", "arguments": {"query": f"subject {turn}"}}, second]
            text = f"<think>turn {turn}</think>" + "".join(f"<tool_call>{json.dumps(c)}</tool_call>" for c in calls)
            return ChatReply(text=text, truncated=False)
        answer = {
            "gen_prompt": "as in the first reference image",
            "reference_images": [{"img_id": "IMG_001", "note": "x"}],
        }
        return ChatReply(text=f"<think>done</think><answer>{json.dumps(answer)}</answer>", truncated=False)


class SessionPerCall:
    """Opens a fresh MCP session for every call (the pattern session reuse avoids)."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def call(self, call: ToolCall) -> ToolResult:
        async with McpTools.connect(self.url) as tools:
            return await tools.call(call)


class Serialized:
    """Runs calls one at a time even when the driver starts them together."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.lock = anyio.Lock()

    async def call(self, call: ToolCall) -> ToolResult:
        async with self.lock:
            return await self.inner.call(call)


@contextlib.asynccontextmanager
async def runner(url: str, reuse: bool, parallel: bool) -> AsyncIterator[Any]:
    if reuse:
        async with McpTools.connect(url) as tools:
            yield tools if parallel else Serialized(tools)
    else:
        tools = SessionPerCall(url)
        yield tools if parallel else Serialized(tools)


async def one_episode(url: str, reuse: bool, parallel: bool) -> float:
    config = EpisodeConfig(parallel_tool_calls=True)
    started = time.perf_counter()
    async with runner(url, reuse, parallel) as tools:  # session opening counts: it is part of the episode
        run = await run_episode("benchmark episode", ScriptedModel(), tools, config)
    elapsed = time.perf_counter() - started
    assert run.result.termination is Termination.ANSWERED, run.result
    assert run.result.model_calls == TURNS + 1 and run.result.tool_calls == 2 * TURNS
    return elapsed


VARIANTS = [
    ("reuse + parallel", True, True),
    ("reuse + sequential", True, False),
    ("per-call + parallel", False, True),
    ("per-call + sequential", False, False),
]


async def measure(url: str, repeats: int) -> dict[str, float]:
    await one_episode(url, True, True)  # warm-up
    times: dict[str, list[float]] = {name: [] for name, _, _ in VARIANTS}
    for _ in range(repeats):  # interleaved, so drift hits every variant alike
        for name, reuse, parallel in VARIANTS:
            times[name].append(await one_episode(url, reuse, parallel))
    return {name: statistics.median(values) for name, values in times.items()}


def report(title: str, medians: dict[str, float]) -> None:
    print(f"\n{title}")
    for name, value in medians.items():
        print(f"  {name:<24} {value * 1000:9.1f} ms")
    base = medians["reuse + parallel"]
    print(f"  sequential / parallel (reused session):     {medians['reuse + sequential'] / base:5.2f}x")
    per_call = medians["per-call + sequential"] / medians["reuse + sequential"]
    print(f"  per-call / reused session (sequential):     {per_call:5.2f}x")
    print(f"  per-call / reused session (parallel):       {medians['per-call + parallel'] / base:5.2f}x")
    print(f"  worst (per-call + sequential) / best:        {medians['per-call + sequential'] / base:5.2f}x")
    extra = (medians["per-call + sequential"] - medians["reuse + sequential"]) / (2 * TURNS)
    print(f"  cost of opening a session, per tool call:    {extra * 1000:5.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--delay-ms", type=float, default=100.0, help="sleep inside every tool call")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.delay_ms / 1000)
        return
    print(f"scripted episode: {TURNS + 1} model calls, {2 * TURNS} tool calls (2 per turn); median of {args.repeats}")
    for delay_ms in (args.delay_ms, 0.0):
        with tool_server(delay_ms / 1000) as url:
            medians = anyio.run(measure, url, args.repeats)
        report(f"tool delay {delay_ms:g} ms:", medians)


if __name__ == "__main__":
    main()
