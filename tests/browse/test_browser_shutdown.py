"""No Chromium outlives ``gen-searcher serve``: a real server process renders a page, stops, and its browser
processes are gone (stdio: the client closes; http: SIGTERM)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TextIO

import httpx
import psutil
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.browse.browser_support import allowed, js_web_server  # noqa: F401 - a fixture
from tests.browse.conftest import Web
from tests.browse.js_web import KEEP, JsWeb
from tests.support.loopback import free_port

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
MARKER = "GEN_SEARCHER_TEST_BROWSER_RUN"


def server_env(tmp_path: Path, web: Web, js_web: JsWeb, marker: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEN_SEARCHER_")}
    env.update(
        {
            MARKER: marker,  # inherited by every process the server starts: how its Chromium is found
            "GEN_SEARCHER_FETCH__BACKEND": "browser",
            "GEN_SEARCHER_FETCH__ALLOWED_ADDRESSES": '["' + '","'.join(allowed(web, js_web)) + '"]',
            "GEN_SEARCHER_FETCH__RESPECT_ROBOTS": "false",
            "GEN_SEARCHER_CACHE__PATH": str(tmp_path / "cache.db"),
            "GEN_SEARCHER_IMAGES__DIR": str(tmp_path / "images"),
            "GEN_SEARCHER_SEARCH__BACKEND": "ddgs",
            "GEN_SEARCHER_SERVER__LOG_LEVEL": "WARNING",
        }
    )
    return env


def marked_chromium(marker: str) -> list[psutil.Process]:
    """Running (not zombie) Chromium processes started by the server run tagged ``marker``."""
    found = []
    for proc in psutil.process_iter(["name", "status"]):
        try:
            if "chrom" not in (proc.info["name"] or "") or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get(MARKER) == marker:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def wait_until_gone(marker: str, seconds: float = 20.0) -> list[psutil.Process]:
    deadline = time.monotonic() + seconds
    left = marked_chromium(marker)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = marked_chromium(marker)
    return left


def start_http_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    command = [str(Path(sys.executable).with_name("gen-searcher")), "serve", "--transport", "http"]
    server = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise RuntimeError("the server did not start")
        time.sleep(0.2)


async def test_no_chromium_is_left_after_a_stdio_server_stops(tmp_path: Path, web: Web, js_web: JsWeb) -> None:
    marker = uuid.uuid4().hex
    command = str(Path(sys.executable).with_name("gen-searcher"))
    params = StdioServerParameters(
        command=command, args=["serve", "--transport", "stdio"], env=server_env(tmp_path, web, js_web, marker)
    )
    async with Client(stdio_client(params, errlog=subprocess_log(tmp_path))) as client:
        result = await client.call_tool("browse", {"url": js_web.url("/shell"), "goal": "history"})
        assert not result.is_error and KEEP[0] in result.structured_content["content"]
        assert marked_chromium(marker)  # the browser runs while the server does
    assert wait_until_gone(marker) == []


def subprocess_log(tmp_path: Path) -> TextIO:
    return (tmp_path / "server.log").open("w")


async def test_no_chromium_is_left_after_sigterm(tmp_path: Path, web: Web, js_web: JsWeb) -> None:
    marker = uuid.uuid4().hex
    port = free_port()
    server = start_http_server(server_env(tmp_path, web, js_web, marker), port)
    try:
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            result = await client.call_tool("browse", {"url": js_web.url("/shell"), "goal": "history"})
            assert not result.is_error and KEEP[0] in result.structured_content["content"]
        assert marked_chromium(marker)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) is not None
    finally:
        if server.poll() is None:
            server.kill()
    assert wait_until_gone(marker) == []
