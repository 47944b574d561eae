"""The command reference (docs/commands.md) matches the typer apps, and says what the commands do."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path

from gen_searcher_core.commands import ENTRY_POINT_GROUP
from gen_searcher_core.commands_reference import main, render

ROOT = Path(__file__).resolve().parents[1]


def test_the_command_reference_is_up_to_date() -> None:
    page = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    assert page == render(), "docs/commands.md is stale: run `make commands-doc`"


def test_every_shipped_command_and_sub_command_has_a_section() -> None:
    page = render()
    for command in ["serve", "tools", "call", "index build", "images", "run", "trace show", "bench knowgen", "plugins"]:
        assert f"`gen-searcher {command}`" in page
    # The policy and the benchmarks start the tool server as a stdio subprocess, never in-process.
    mcp_url_rows = [line for line in page.splitlines() if line.startswith("| `--mcp-url")]
    assert mcp_url_rows and all("over stdio" in row and "in-process" not in row for row in mcp_url_rows)
    assert "/root/" not in page and str(Path.home()) not in page


def test_a_third_party_command_is_documented_from_its_own_help() -> None:
    page = render([EntryPoint("trace", "policy.trace_cli:register", ENTRY_POINT_GROUP)])
    assert "## `gen-searcher trace`" in page and "### `gen-searcher trace show`" in page
    assert "| `--index <int>` | Only this record (0-based) of a file holding several episodes. |" in page
    assert "gen-searcher serve" not in page


def test_check_mode_reports_a_stale_page(tmp_path: Path) -> None:
    stale = tmp_path / "commands.md"
    stale.write_text("# Command reference\n", encoding="utf-8")
    assert main(["--out", str(stale), "--check"]) == 1
    assert main(["--out", str(stale)]) == 0
    assert main(["--out", str(stale), "--check"]) == 0
