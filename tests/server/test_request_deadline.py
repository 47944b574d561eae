"""One deadline over every JSON-RPC request, whatever the tool: a page that never answers does not hold a call."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.server.raw_mcp import call, open_session
from tests.support.loopback import serve_app
from tests.support.tool_server import run_tool_server


def _page_that_hangs(release: threading.Event) -> Starlette:
    async def page(request: Request) -> PlainTextResponse:
        for _ in range(1200):  # until the test releases it (2 minutes at most)
            if release.is_set():
                break
            await asyncio.sleep(0.1)
        return PlainTextResponse("late")

    return Starlette(routes=[Route("/slow", page)])


def test_a_tool_call_past_the_deadline_is_answered_with_an_error(tmp_path: Path, index_db: Path) -> None:
    release = threading.Event()
    server = {"request_deadline_s": 1.0}
    try:
        with (
            serve_app(_page_that_hangs(release)) as page_url,
            run_tool_server(tmp_path, index=index_db, server=server) as ts,
            httpx.Client(timeout=60) as http,
        ):
            session = open_session(http, ts.url)
            arguments = {"url": page_url + "/slow", "goal": "anything"}
            answer = call(http, ts.url, session, "tools/call", {"name": "browse", "arguments": arguments})
            result = answer["result"]
            assert result["isError"], answer
            assert "deadline" in result["content"][0]["text"] and "request_deadline_s" in result["content"][0]["text"]
            # The server keeps serving: a quick call in the same session is answered as usual.
            ok = call(http, ts.url, session, "tools/call", {"name": "search", "arguments": {"queries": ["eiffel"]}})
            assert not ok["result"]["isError"], ok
    finally:
        release.set()
