"""The services ``gen-searcher train smoke`` starts for its GRPO step, all on 127.0.0.1.

* a tiny web (two pages, each with a photo) served as static files;
* the production tool server (``mcp_server.http_app``) over a local index of that web, with
  its cache and image store under the smoke's work folder.

Each runs in a uvicorn thread of the smoke process and stops with its context manager.
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PAGES = {
    "quorvath-bridge.html": ("Quorvath Bridge", "A copper-green suspension bridge in Velmora.", (40, 160, 120)),
    "velmora-lanterns.html": ("Velmora lanterns", "Paper lanterns around the Quorvath Bridge.", (240, 180, 40)),
}


def write_web(root: Path) -> Path:
    """Two HTML pages, each with one photo, under ``root``."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    for name, (title, text, colour) in PAGES.items():
        photo = name.replace(".html", ".png")
        buffer = io.BytesIO()
        Image.new("RGB", (160, 120), colour).save(buffer, format="PNG")
        (root / photo).write_bytes(buffer.getvalue())
        (root / name).write_text(
            f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1><p>{text}</p>"
            f'<figure><img src="{photo}" alt="{title}" width="160" height="120"><figcaption>{title}</figcaption>'
            f"</figure><p>{text}</p></article></body></html>",
            encoding="utf-8",
        )
    return root


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Serve an ASGI app on a free loopback port; yields its base URL."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"a smoke service did not start on 127.0.0.1:{port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def smoke_tool_server(work: Path) -> Iterator[str]:
    """The tool server over a local index of the tiny web; yields its MCP URL."""
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    from mcp_server.http_app import MCP_PATH, create_app
    from mcp_server.settings import load_settings
    from search_tools.index import build_index

    web = write_web(work / "web")
    with serve_in_thread(Starlette(routes=[Mount("/", StaticFiles(directory=web))])) as web_url:
        index = build_index(web, work / "index.db", base_url=web_url + "/").path
        settings = load_settings(
            server={"host": "127.0.0.1", "log_level": "WARNING"},
            search={"backend": "local", "index": str(index)},
            cache={"path": str(work / "cache.db"), "url": None},
            images={"dir": str(work / "images")},
            fetch={"allow_private_networks": True, "respect_robots": False},
        )
        with serve_in_thread(create_app(settings)) as base:
            yield base + MCP_PATH
