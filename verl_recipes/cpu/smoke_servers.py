"""The services ``gen-searcher train smoke`` starts for its GRPO step, all on 127.0.0.1.

* a tiny web (two pages, each with a photo) served as static files from a uvicorn thread;
* the tool server, ``gen-searcher serve`` as a subprocess (the recipe reaches tools only over
  MCP), over a local index of that web (``gen-searcher index build``), with its settings
  file, cache and image store under the smoke's work folder; its ``render`` tool draws through
  the demo's scripted images API (the first reference, softened: no model draws anything);
* the demo's scripted judge (:mod:`benchmark.demo.scripted`): K-Score from the pixel
  similarity of the render and the ground truth, 0.5 for every plan on the text rubric.

Each stops with its context manager.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

from gen_searcher_core.loopback import free_port, gen_searcher_command, serve_in_thread, wait_until_healthy

__all__ = ["PAGES", "serve_in_thread", "smoke_judge", "smoke_tool_server", "write_web"]

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


# Shared with gen-searcher demo; the old names stay importable from here.
_free_port = free_port
_gen_searcher = gen_searcher_command


@contextlib.contextmanager
def smoke_judge() -> Iterator[str]:
    """The demo's scripted judge on loopback; yields its OpenAI-compatible base URL (``.../v1``)."""
    from benchmark.demo.scripted import judge_app

    with serve_in_thread(judge_app()) as base:
        yield base + "/v1"


@contextlib.contextmanager
def smoke_tool_server(work: Path) -> Iterator[str]:
    """``gen-searcher serve`` over a local index of the tiny web, rendering through a scripted images API;
    yields its MCP URL."""
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    from benchmark.demo.scripted import RENDER_MODEL, images_app

    web = write_web(work / "web")
    with (
        serve_in_thread(Starlette(routes=[Mount("/", StaticFiles(directory=web))])) as web_url,
        serve_in_thread(images_app()) as images_url,
    ):
        index = work / "index.db"
        subprocess.run(
            [*_gen_searcher(), "index", "build", str(web), "--out", str(index), "--base-url", web_url + "/"],
            check=True,
            capture_output=True,
        )
        port = _free_port()
        config = work / "tool-server.toml"
        config.write_text(
            f'[server]\nhost = "127.0.0.1"\nport = {port}\nlog_level = "INFO"\n'
            f'[search]\nbackend = "local"\nindex = {json.dumps(str(index))}\n'
            f"[cache]\npath = {json.dumps(str(work / 'cache.db'))}\n"
            f"[images]\ndir = {json.dumps(str(work / 'images'))}\n"
            "[fetch]\nallow_private_networks = true\nrespect_robots = false\n"
            f'[render]\nbackend = "openai"\nurl = "{images_url}/v1"\nmodel = "{RENDER_MODEL}"\n',
            encoding="utf-8",
        )
        log = work / "tool-server.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [*_gen_searcher(), "serve", "--config", str(config)], stdout=sink, stderr=subprocess.STDOUT
            )
            try:
                base = f"http://127.0.0.1:{port}"
                problem = wait_until_healthy(base, process, timeout_s=60.0)
                if problem:
                    raise RuntimeError(f"the smoke tool server {problem} (log: {log})")
                yield base + "/mcp"
            finally:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
