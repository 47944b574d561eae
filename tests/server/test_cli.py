"""The ``gen-searcher`` serve/tools/call commands."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from typer.testing import CliRunner

from gen_searcher_core.commands import build_app
from tests.support.tool_server import run_tool_server

app = build_app()
ROOT = Path(__file__).resolve().parents[2]

runner = CliRunner()


def _env(tmp_path: Path, index_db: Path) -> dict[str, str]:
    return {
        "GEN_SEARCHER_SEARCH__BACKEND": "local",
        "GEN_SEARCHER_SEARCH__INDEX": str(index_db),
        "GEN_SEARCHER_CACHE__PATH": str(tmp_path / "cli-cache.db"),
        "GEN_SEARCHER_IMAGES__DIR": str(tmp_path / "cli-images"),
    }


def test_call_in_process_prints_the_result_as_json(tmp_path: Path, index_db: Path) -> None:
    result = runner.invoke(
        app, ["call", "search", '{"queries": ["Mount Fuji"], "top_k": 2}'], env=_env(tmp_path, index_db)
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload.get("isError") in (None, False)
    hits = payload["structuredContent"]["results"][0]["hits"]
    assert hits[0]["url"].endswith("mount-fuji.md") and len(hits) <= 2
    assert payload["content"][0]["type"] == "text"


def test_call_exits_1_when_the_tool_reports_an_error(tmp_path: Path, index_db: Path) -> None:
    result = runner.invoke(app, ["call", "search", '{"queries": []}'], env=_env(tmp_path, index_db))
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["isError"] is True
    assert "at least 1 item" in payload["content"][0]["text"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [("{queries: [1]", "arguments are not valid JSON"), ('["a"]', "arguments must be a JSON object, got list")],
)
def test_call_rejects_bad_json_clearly(tmp_path: Path, index_db: Path, arguments: str, message: str) -> None:
    result = runner.invoke(app, ["call", "search", arguments], env=_env(tmp_path, index_db))
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_bad_settings_are_reported_not_raised(tmp_path: Path) -> None:
    result = runner.invoke(app, ["call", "search", "{}", "--config", str(tmp_path / "missing.toml")])
    assert result.exit_code == 2
    assert "config file not found" in result.stderr


def test_tools_lists_schemas(tmp_path: Path, index_db: Path) -> None:
    result = runner.invoke(app, ["tools"], env=_env(tmp_path, index_db))
    assert result.exit_code == 0, result.output
    tools = {tool["name"]: tool for tool in json.loads(result.stdout)}
    assert tools["search"]["inputSchema"]["properties"]["queries"]["type"] == "array"
    assert all(tool["outputSchema"]["type"] == "object" for tool in tools.values()), sorted(tools)


def test_tools_and_call_against_a_running_server(tmp_path: Path, index_db: Path) -> None:
    with run_tool_server(tmp_path, index=index_db, auth_tokens=["cli-token"]) as ts:
        listed = runner.invoke(app, ["tools", "--url", ts.url, "--token", "cli-token"])
        called = runner.invoke(
            app,
            ["call", "search", '{"queries": ["Sydney Opera House"]}', "--url", ts.url],
            env={"GEN_SEARCHER_TOKEN": "cli-token"},
        )
        assert ts.services.metrics.value("gen_searcher_tool_calls_total", {"tool": "search", "outcome": "ok"}) == 1
    assert listed.exit_code == 0, listed.output
    assert "search" in {tool["name"] for tool in json.loads(listed.stdout)}
    assert called.exit_code == 0, called.output
    hits = json.loads(called.stdout)["structuredContent"]["results"][0]["hits"]
    assert hits[0]["url"].endswith("sydney-opera-house.html")


@pytest.mark.anyio
async def test_serve_over_stdio(tmp_path: Path, index_db: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_server", "serve", "--transport", "stdio"],
        env={**os.environ, **_env(tmp_path, index_db), "GEN_SEARCHER_SERVER__LOG_LEVEL": "WARNING"},
        cwd=str(ROOT),
    )
    async with Client(params) as client:
        assert (await client.call_tool("search", {"queries": []})).is_error
        result = await client.call_tool("search", {"queries": ["Golden Gate"]})
    assert not result.is_error
    assert result.structured_content["results"][0]["hits"][0]["url"].endswith("golden-gate.md")


def test_serve_flags_beat_environment_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mcp_server.cli import _settings

    config = tmp_path / "c.toml"
    config.write_text('[server]\nport = 9100\nhost = "10.0.0.1"\n', encoding="utf-8")
    monkeypatch.setenv("GEN_SEARCHER_SERVER__PORT", "9200")
    from_env = _settings(config)
    assert (from_env.server.host, from_env.server.port, from_env.server.stateless) == ("10.0.0.1", 9200, False)
    flagged = _settings(config, host="0.0.0.0", port=9300, stateless=True)
    assert (flagged.server.host, flagged.server.port, flagged.server.stateless) == ("0.0.0.0", 9300, True)


@pytest.mark.parametrize("command", [["call", "search", '{"queries": ["x"]}'], ["tools"], ["serve", "--port", "1"]])
@pytest.mark.parametrize(
    ("search_env", "message"),
    [
        (
            {"GEN_SEARCHER_SEARCH__BACKEND": "nosuch"},
            "nosuch search backend is misconfigured: unknown search backend 'nosuch'; known search backends: auto,",
        ),
        (
            {"GEN_SEARCHER_SEARCH__BACKEND": "local"},
            "local search backend is misconfigured: no index configured (set GEN_SEARCHER_SEARCH__INDEX",
        ),
    ],
)
def test_a_misconfigured_backend_is_one_clear_line(
    tmp_path: Path, index_db: Path, command: list[str], search_env: dict[str, str], message: str
) -> None:
    env = {**_env(tmp_path, index_db), "GEN_SEARCHER_SEARCH__INDEX": "", **search_env}
    result = runner.invoke(app, command, env=env)
    assert result.exit_code == 2, result.output
    assert f"error: {message}" in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""


def test_a_missing_index_file_is_reported_per_query(tmp_path: Path, index_db: Path) -> None:
    env = {**_env(tmp_path, index_db), "GEN_SEARCHER_SEARCH__INDEX": str(tmp_path / "not-built.db")}
    result = runner.invoke(app, ["call", "search", '{"queries": ["x"]}'], env=env)
    assert result.exit_code == 1
    error = json.loads(result.stdout)["structuredContent"]["results"][0]["error"]
    assert error.startswith("local search failed (unavailable): local search index not found:")
    assert "gen-searcher index build" in error


@pytest.mark.parametrize("command", [["tools"], ["call", "search", '{"queries": ["x"]}']])
def test_an_unreachable_url_is_one_clear_line(command: list[str]) -> None:
    from tests.support.loopback import free_port

    url = f"http://127.0.0.1:{free_port()}/mcp"
    result = runner.invoke(app, [*command, "--url", url])
    assert result.exit_code == 2
    assert f"error: could not reach {url} (ConnectError" in result.stderr
    assert "Traceback" not in result.output
