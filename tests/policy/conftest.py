"""Fixtures of the policy tests.

* ``site``: a tiny web on 127.0.0.1 (HTML articles with real PNG photos, plus
  slow pages that record how many requests were in flight at once);
* ``tool_server``: the real MCP tool server (local backend over an index of that web);
* ``chat``: a scripted OpenAI-compatible chat server that answers from a per-test
  script and records every request it receives.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tests.support.env import clear_settings_environment
from tests.support.images import png_bytes
from tests.support.loopback import serve_app
from tests.support.tool_server import ToolServer, run_tool_server

PAGES = {
    "quorvath-bridge.html": (
        "Quorvath Bridge",
        "The Quorvath Bridge is a copper-green suspension bridge in the harbour town of Velmora. "
        "It was designed by the architect Ilsa Marendt and opened in 1931. Its two towers carry "
        "spiral lamps that are lit during the lantern festival.",
        [("quorvath.png", "Quorvath Bridge at dusk, copper-green towers", (40, 160, 120))],
    ),
    "ilsa-marendt.html": (
        "Ilsa Marendt, architect",
        "Ilsa Marendt (1890-1962) was the architect of the Quorvath Bridge in Velmora. She always "
        "wore a red beret and round spectacles, as her portraits show.",
        [("marendt.png", "Portrait of architect Ilsa Marendt in a red beret", (200, 40, 50))],
    ),
    "velmora-festival.html": (
        "Velmora lantern festival",
        "Every autumn the Velmora lantern festival fills the harbour with paper lanterns. The "
        "Quorvath Bridge is the centre of the festival parade.",
        [
            ("lanterns.png", "Velmora lantern festival paper lanterns over the harbour", (240, 180, 40)),
            ("quorvath.png", "Quorvath Bridge during the lantern festival", (40, 160, 120)),
        ],
    ),
    "soup.html": (
        "Barley soup recipe",
        "A simple barley soup with carrots and thyme, ready in forty minutes.",
        [("soup.png", "Bowl of barley soup", (120, 90, 60))],
    ),
}

SLOW_WAIT_S = 2.0


def png(colour: tuple[int, int, int], size: tuple[int, int] = (160, 120)) -> bytes:
    return png_bytes(colour, size, stripe_every=16)  # a stripe pattern so thumbnails are not flat


def write_site(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name, (title, text, images) in PAGES.items():
        figures = ""
        for file, alt, colour in images:
            (root / file).write_bytes(png(colour))
            image = f'<img src="{file}" alt="{alt}" width="160" height="120">'
            figures += f"<figure>{image}<figcaption>{alt}</figcaption></figure>\n"
        (root / name).write_text(
            f"<html><head><title>{title}</title></head><body><nav>Home | News</nav>"
            f"<article><h1>{title}</h1><p>{text}</p>{figures}<p>{text}</p></article>"
            f"<footer>Velmora Gazette</footer></body></html>",
            encoding="utf-8",
        )


@dataclass
class Site:
    url: str
    root: Path
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.in_flight = self.max_in_flight = 0


def site_app(root: Path, state: Site) -> Starlette:
    async def slow(request: Request) -> HTMLResponse:
        """Wait (up to SLOW_WAIT_S) until another slow request is in flight; remember the peak."""
        with state.lock:
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            for _ in range(int(SLOW_WAIT_S / 0.02)):
                if state.max_in_flight >= 2:
                    break
                await asyncio.sleep(0.02)
        finally:
            with state.lock:
                state.in_flight -= 1
        name = request.path_params["name"]
        return HTMLResponse(
            f"<html><head><title>Slow page {name}</title></head><body><article><h1>Slow page {name}</h1>"
            f"<p>The slow page {name} says the bridge lamps are spiral shaped and glow amber at night.</p>"
            f"</article></body></html>"
        )

    return Starlette(routes=[Route("/slow/{name}", slow), Mount("/", StaticFiles(directory=root))])


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("site")
    write_site(root)
    state = Site(url="", root=root)
    with serve_app(site_app(root, state)) as url:
        state.url = url
        yield state


@pytest.fixture(scope="session")
def tool_server(tmp_path_factory: pytest.TempPathFactory, site: Site) -> Iterator[ToolServer]:
    from search_tools.index import build_index

    work = tmp_path_factory.mktemp("tool-server")
    index = build_index(site.root, work / "index.db", base_url=site.url + "/").path
    with run_tool_server(work, index=index) as server:
        yield server


@dataclass(frozen=True)
class Reply:
    text: str = ""
    finish_reason: str = "stop"
    status: int = 200
    reasoning: str | None = None  # sent as reasoning_content, as vLLM's reasoning parsers do


@dataclass
class ScriptedChat:
    """An OpenAI-compatible chat server that replies from ``script`` and records requests."""

    url: str = ""
    script: list[Reply | str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def load(self, *replies: Reply | str) -> None:
        self.script = list(replies)
        self.requests.clear()
        self.headers.clear()

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def app(self) -> Starlette:
        async def completions(request: Request) -> JSONResponse:
            body = await request.json()
            self.requests.append(body)
            self.headers.append(dict(request.headers))
            if not self.script:
                return JSONResponse({"error": {"message": "script exhausted"}}, status_code=400)
            reply = self.script.pop(0)
            reply = Reply(text=reply) if isinstance(reply, str) else reply
            if reply.status != 200:
                return JSONResponse(
                    {"error": {"message": f"scripted failure {reply.status}"}}, status_code=reply.status
                )
            return JSONResponse(
                {
                    "id": f"chatcmpl-{len(self.requests)}",
                    "object": "chat.completion",
                    "model": body.get("model"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply.text}
                            | ({"reasoning_content": reply.reasoning} if reply.reasoning else {}),
                            "finish_reason": reply.finish_reason,
                        }
                    ],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                }
            )

        return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


@pytest.fixture(scope="session")
def chat_server() -> Iterator[ScriptedChat]:
    chat = ScriptedChat()
    with serve_app(chat.app()) as url:
        chat.url = url
        yield chat


@pytest.fixture
def chat(chat_server: ScriptedChat, site: Site) -> ScriptedChat:
    chat_server.load()
    site.reset()
    return chat_server


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own keys and GEN_SEARCHER_* settings must not leak into these tests."""
    clear_settings_environment(monkeypatch)
