"""Cost of a tool call through the verl MCP bridge: one reused session vs a new session per call.

    .venv/bin/python -m perf.verl_bridge [--calls 100]

A tiny MCP server (streamable HTTP on 127.0.0.1, in a background thread) offers an
``echo`` tool. The same number of calls runs three ways:

* bridge: ``verl_recipes.mcp_tool.McpTool.execute`` (one pooled session, reused);
* reused session: ``McpConnection.call_tool`` directly;
* session per call: a new ``McpConnection`` opened and closed for every call
  (what verl's removed MCP tool did).

Prints the median per-call time of each and the ratio against the per-call baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time


def echo_app():  # -> Starlette
    from mcp.server.mcpserver import MCPServer

    server = MCPServer(name="bench")

    @server.tool(description="Repeat a text.")
    def echo(text: str) -> str:
        return text

    return server.streamable_http_app()


async def timed(calls: int, op) -> list[float]:
    times = []
    for i in range(calls):
        started = time.perf_counter()
        await op(i)
        times.append(time.perf_counter() - started)
    return times


async def main(url: str, calls: int) -> None:
    from verl.tools.schemas import OpenAIFunctionToolSchema

    from policy.mcp_client import ConnectionPool, McpConnection
    from verl_recipes.mcp_tool import McpTool

    schema = OpenAIFunctionToolSchema.model_validate(
        {"type": "function", "function": {"name": "echo", "description": "x"}}
    )
    tool = McpTool({"type": "native", "server_url": url}, schema)
    await tool.execute("warm", {"text": "warm"})

    async def bridge(i: int) -> None:
        response, _, _ = await tool.execute("i", {"text": f"call {i}"})
        assert response.text == f"call {i}"

    shared = McpConnection(url)

    async def reused(i: int) -> None:
        await shared.call_tool("echo", {"text": f"call {i}"})

    async def per_call(i: int) -> None:
        conn = McpConnection(url)
        await conn.call_tool("echo", {"text": f"call {i}"})
        await conn.aclose()

    results = {
        "bridge (McpTool, pooled session)": await timed(calls, bridge),
        "reused session": await timed(calls, reused),
        "session per call": await timed(calls, per_call),
    }
    opened = tool.connection.sessions_opened
    await shared.aclose()
    await ConnectionPool.shared.aclose()
    baseline = statistics.median(results["session per call"])
    print(f"{calls} echo calls over streamable HTTP on 127.0.0.1")
    for name, times in results.items():
        median = statistics.median(times)
        print(f"  {name:34s} median {median * 1000:7.2f} ms   ratio vs per-call {median / baseline:5.2f}")
    print(f"  sessions opened by the bridge for {calls + 1} calls: {opened}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    from tests.support.loopback import serve_app

    with serve_app(echo_app()) as base:
        asyncio.run(main(base + "/mcp", args.calls))
