"""Run the real Gen-Searcher MCP server over HTTP on loopback, for tests of any area.

    from tests.support.tool_server import run_tool_server

    with run_tool_server(tmp_path, index=write_index(tmp_path)) as ts:
        async with streamable_http_client(ts.url) ... / Client(ts.url)  # ts.url ends in /mcp

The server is the production app (``mcp_server.http_app.create_app``) served
by uvicorn in a background thread; its services (cache, backend, image store)
are opened in the server's own event loop by the app lifespan, exactly as
``gen-searcher serve`` does. ``ts.services`` is that object: read its metrics
(``ts.services.metrics.value(...)``) or its image store (file-backed, safe from
any loop); do not await the cache or the backend from the test's loop.

Defaults: the ``local`` backend over ``index`` (when given), cache, images and
state under ``tmp_dir``, private networks allowed (so ``browse`` can read pages
served on 127.0.0.1). Any section can be overridden, e.g.
``search={"backend": "searxng"}, searxng_url=...``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp_server.http_app import MCP_PATH, SSE_PATH, create_app
from mcp_server.services import Services
from mcp_server.settings import Settings
from tests.support.loopback import serve_app
from tests.support.settings import hermetic_settings, merged_sections

TINY_CORPUS: dict[str, str] = {
    "eiffel-tower.md": "# Eiffel Tower\n\nThe Eiffel Tower is a wrought-iron lattice tower in Paris, France. "
    "It was completed in 1889 and is 330 metres tall.",
    "golden-gate.md": "# Golden Gate Bridge\n\nThe Golden Gate Bridge is a suspension bridge in San Francisco, "
    "painted International Orange, opened in 1937.",
    "mount-fuji.md": "# Mount Fuji\n\nMount Fuji is the highest mountain in Japan, an active stratovolcano "
    "3776 metres high, often drawn with a snow-capped peak.",
    "sydney-opera-house.html": "<html><head><title>Sydney Opera House</title></head><body><p>The Sydney Opera "
    "House is a performing arts centre in Sydney with white sail-shaped shells, opened in 1973.</p></body></html>",
}


def write_index(tmp_dir: Path, pages: Mapping[str, str] | None = None, *, base_url: str | None = None) -> Path:
    """Write ``pages`` (file name -> content; default ``TINY_CORPUS``) under ``tmp_dir/corpus`` and index them.

    Returns the index file for ``run_tool_server(index=...)``. With ``base_url``
    the documents' URLs point there (serve ``tmp_dir/corpus`` at it to browse them).
    """
    from search_tools.index import build_index

    corpus = Path(tmp_dir) / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for name, content in (TINY_CORPUS if pages is None else pages).items():
        path = corpus / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return build_index(corpus, Path(tmp_dir) / "index.db", base_url=base_url).path


@dataclass(frozen=True)
class ToolServer:
    url: str  # streamable HTTP endpoint, ".../mcp"
    base_url: str  # "http://127.0.0.1:PORT"
    sse_url: str  # legacy SSE endpoint, ".../sse"
    settings: Settings
    services: Services

    def image_url(self, image_id: str) -> str:
        return f"{self.base_url}/images/{image_id}"


def tool_server_settings(
    tmp_dir: Path,
    *,
    index: Path | None = None,
    stateless: bool = False,
    auth_tokens: Sequence[str] = (),
    allowed_hosts: Sequence[str] = (),
    **overrides: Any,
) -> Settings:
    """Settings for a hermetic test server: everything it writes lives under ``tmp_dir``."""
    defaults: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "stateless": stateless, "log_level": "WARNING"},
        "cache": {"url": None},
        "fetch": {"allow_private_networks": True, "respect_robots": False},
        "auth_tokens": list(auth_tokens),
        "allowed_hosts": list(allowed_hosts),
    }
    if index is not None:
        defaults["search"] = {"backend": "local", "index": str(index)}
    return hermetic_settings(tmp_dir, **merged_sections(defaults, overrides))


@contextlib.contextmanager
def serve_settings(settings: Settings) -> Iterator[ToolServer]:
    """Serve the production app for ``settings`` on a free loopback port."""
    app = create_app(settings)
    with serve_app(app, host=settings.server.host if settings.server.host != "localhost" else "127.0.0.1") as base:
        yield ToolServer(
            url=base + MCP_PATH,
            base_url=base,
            sse_url=base + SSE_PATH,
            settings=settings,
            services=app.state.runtime.services,
        )


@contextlib.contextmanager
def run_tool_server(
    tmp_dir: Path,
    *,
    index: Path | None = None,
    stateless: bool = False,
    auth_tokens: Sequence[str] = (),
    allowed_hosts: Sequence[str] = (),
    **overrides: Any,
) -> Iterator[ToolServer]:
    """Build hermetic settings (see ``tool_server_settings``) and serve them; yields a ``ToolServer``."""
    settings = tool_server_settings(
        tmp_dir,
        index=index,
        stateless=stateless,
        auth_tokens=auth_tokens,
        allowed_hosts=allowed_hosts,
        **overrides,
    )
    with serve_settings(settings) as server:
        yield server
