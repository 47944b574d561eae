"""Messages a newcomer meets in the first hour, each shown: they say what happened and what to do next."""

from __future__ import annotations

import base64
import io
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ddgs.exceptions import DDGSException
from mcp import Client
from PIL import Image
from typer.testing import CliRunner

from gen_searcher_core.commands import build_app
from search_tools.backends.duckduckgo import DdgsBackend
from search_tools.testing import check_failure
from tests.support.loopback import free_port
from tests.support.tool_server import run_tool_server

app = build_app()
runner = CliRunner()


def _env(tmp_path: Path, index_db: Path, **extra: str) -> dict[str, str]:
    return {
        "GEN_SEARCHER_SEARCH__BACKEND": "local",
        "GEN_SEARCHER_SEARCH__INDEX": str(index_db),
        "GEN_SEARCHER_CACHE__PATH": str(tmp_path / "cache.db"),
        "GEN_SEARCHER_IMAGES__DIR": str(tmp_path / "images"),
        **extra,
    }


class _OfflineDdgs:
    def text(self, *args: Any, **kwargs: Any) -> Any:
        raise DDGSException("DNSError: error sending request for url (https://www.mojeek.com/search?q=x)")

    images = text


@pytest.mark.anyio
async def test_offline_search_names_the_local_index() -> None:
    backend = DdgsBackend(rate_limit_per_s=1000, client_factory=lambda timeout: _OfflineDdgs())
    error = await check_failure(backend)
    assert "is this machine online?" in str(error)
    assert "gen-searcher index build" in str(error) and "GEN_SEARCHER_SEARCH__BACKEND=local" in str(error)


def test_browse_of_an_unreachable_host_names_the_local_index(tmp_path: Path, index_db: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/page.html"  # nothing listens there
    env = _env(tmp_path, index_db, GEN_SEARCHER_FETCH__ALLOW_PRIVATE_NETWORKS="true")
    result = runner.invoke(app, ["call", "browse", json.dumps({"url": url, "goal": "x"})], env=env)
    assert result.exit_code == 1, result.output
    text = json.loads(result.stdout)["content"][0]["text"]
    assert text.startswith("browse failed:")
    assert "gen-searcher index build" in text and "--base-url" in text


def test_browse_of_a_refused_page_gets_no_offline_hint(tmp_path: Path, index_db: Path) -> None:
    result = runner.invoke(
        app, ["call", "browse", '{"url": "http://127.0.0.1:9/x", "goal": "x"}'], env=_env(tmp_path, index_db)
    )
    text = json.loads(result.stdout)["content"][0]["text"]
    assert "browse failed" in text and "index build" not in text  # a private address is refused, not offline


@pytest.mark.anyio
async def test_render_without_a_backend_is_not_promised_and_says_how_to_enable_it(
    tmp_path: Path, index_db: Path
) -> None:
    with run_tool_server(tmp_path, index=index_db) as ts:
        async with Client(ts.url) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            instructions = client.instructions or ""
            result = await client.call_tool("render", {"prompt": "a lighthouse"})
    assert "render" not in names
    assert "renders nothing" in instructions and "and render images" not in instructions
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "render is not configured on this server" in text and "set GEN_SEARCHER_RENDER__BACKEND" in text


def test_tools_notes_the_missing_render_tool(tmp_path: Path, index_db: Path) -> None:
    result = runner.invoke(app, ["tools"], env=_env(tmp_path, index_db))
    assert result.exit_code == 0, result.output
    assert "note: tool 'render' is not offered" in result.stderr and "GEN_SEARCHER_RENDER__BACKEND" in result.stderr


def test_one_access_log_line_per_tool_call_without_arguments(
    tmp_path: Path, index_db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret_query = "query-that-may-hold-a-secret-7f3a"
    with caplog.at_level(logging.INFO, logger="mcp_server.access"):
        runner.invoke(app, ["call", "search", json.dumps({"queries": [secret_query]})], env=_env(tmp_path, index_db))
        runner.invoke(app, ["call", "search", '{"queries": []}'], env=_env(tmp_path, index_db))
    lines = [r.getMessage() for r in caplog.records if r.name == "mcp_server.access"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("tool search ok in ") and lines[0].endswith(" s")
    assert lines[1].startswith("tool search invalid arguments in ")
    assert all(secret_query not in line for line in caplog.messages)


def test_a_busy_port_fails_before_ready_with_one_line(tmp_path: Path, index_db: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["serve", "--port", str(port)], env=_env(tmp_path, index_db))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: port {port} on 127.0.0.1 is already in use (another gen-searcher serve?); "
        "pass --port or set GEN_SEARCHER_SERVER__PORT"
    )
    assert "ready" not in result.output.replace("already", "")


def test_an_unknown_toml_key_is_refused_with_the_closest_name(tmp_path: Path, index_db: Path) -> None:
    config = tmp_path / "settings.toml"
    config.write_text('[search]\nbakend = "local"\n[judge]\nmodel = "m"\n[polcy]\nx = 1\n', encoding="utf-8")
    result = runner.invoke(app, ["call", "search", '{"queries": ["x"]}', "--config", str(config)])
    assert result.exit_code == 2
    assert "unknown key [search] bakend (did you mean backend?)" in result.stderr
    assert "unknown key polcy (did you mean policy?)" in result.stderr
    assert "judge" not in result.stderr  # another command's section is known


def test_an_unknown_variable_is_warned_with_the_closest_name(
    tmp_path: Path, index_db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = _env(tmp_path, index_db, GEN_SEARCHER_SEARCH__BAKEND="local")
    with caplog.at_level(logging.WARNING, logger="gen_searcher_core.settings_check"):
        result = runner.invoke(app, ["call", "search", '{"queries": ["Mount Fuji"]}'], env=env)
    assert result.exit_code == 0, result.output
    assert any(
        "unknown variable GEN_SEARCHER_SEARCH__BAKEND (did you mean GEN_SEARCHER_SEARCH__BACKEND?)" in m
        for m in caplog.messages
    )


def test_unknown_variables_are_refused_when_asked(tmp_path: Path, index_db: Path) -> None:
    env = _env(tmp_path, index_db, GEN_SEARCHER_SEARCH__BAKEND="local", GEN_SEARCHER_UNKNOWN_SETTINGS="error")
    result = runner.invoke(app, ["call", "search", '{"queries": ["x"]}'], env=env)
    assert result.exit_code == 2
    assert "did you mean GEN_SEARCHER_SEARCH__BACKEND?" in result.stderr


def test_bad_json_arguments_say_where_once(tmp_path: Path, index_db: Path) -> None:
    result = runner.invoke(app, ["call", "search", '{"queries": ["x'], env=_env(tmp_path, index_db))
    assert result.exit_code == 2
    assert "arguments are not valid JSON: Unterminated string starting at: line 1 column 14" in result.stderr
    assert "at at" not in result.stderr


@pytest.fixture
def image_web(tmp_path: Path) -> Iterator[Path]:
    """The demo's sample web served on loopback and indexed with its URLs."""
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    from benchmark.demo.sample_web import write_sample_web
    from gen_searcher_core.loopback import serve_in_thread
    from search_tools.index import build_index

    web = write_sample_web(tmp_path / "web")
    with serve_in_thread(Starlette(routes=[Mount("/", StaticFiles(directory=web))])) as url:
        yield build_index(web, tmp_path / "web.db", base_url=url + "/").path


def test_call_save_writes_images_instead_of_base64(tmp_path: Path, image_web: Path) -> None:
    env = _env(tmp_path, image_web, GEN_SEARCHER_FETCH__ALLOW_PRIVATE_NETWORKS="true")
    arguments = '{"query": "Tessel Point lighthouse", "top_k": 2}'
    saved = runner.invoke(app, ["call", "image_search", arguments, "--save", str(tmp_path / "out")], env=env)
    assert saved.exit_code == 0, saved.output
    images = [b for b in json.loads(saved.stdout)["content"] if b["type"] == "image"]
    assert images and all(b["data"] is None for b in images)
    for block in images:
        path = Path(block["saved"])
        assert path.parent == tmp_path / "out" and path.name.startswith("image_search-")
        with Image.open(path) as picture:
            assert picture.width > 0
        assert f"saved {path}" in saved.stderr
    plain = runner.invoke(app, ["call", "image_search", arguments], env=env)
    block = next(b for b in json.loads(plain.stdout)["content"] if b["type"] == "image")
    assert block["data"].startswith("<") and "--save DIR" in block["data"]
    assert len(plain.stdout) < 20_000  # no thumbnails spelt out in base64
    shown = runner.invoke(app, ["call", "image_search", arguments, "--show-data"], env=env)
    data = next(b for b in json.loads(shown.stdout)["content"] if b["type"] == "image")["data"]
    Image.open(io.BytesIO(base64.b64decode(data))).verify()
