"""The ``gen-searcher`` root: every command comes from the ``gen_searcher.commands`` entry points."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint

import typer
from typer.testing import CliRunner

from gen_searcher_core.commands import ENTRY_POINT_GROUP, build_app, register_entry_points, require_modules

SHIPPED = {
    "serve",
    "tools",
    "call",
    "index",
    "render-server",
    "images",
    "run",
    "trace",
    "bench",
    "data",
    "train",
    "plugins",
}


def _ep(name: str, value: str) -> EntryPoint:
    return EntryPoint(name, value, ENTRY_POINT_GROUP)


def test_every_shipped_command_is_registered_through_the_entry_point_group() -> None:
    from importlib.metadata import entry_points

    assert {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)} >= SHIPPED
    result = CliRunner().invoke(build_app(), ["--help"], terminal_width=200)
    assert result.exit_code == 0
    for name in SHIPPED:
        assert f" {name} " in result.output


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys; from gen_searcher_core.commands import build_app; from typer.testing import CliRunner; "
        "r = CliRunner().invoke(build_app(), ['--help']); assert r.exit_code == 0, r.output; "
        "heavy = [m for m in ('torch', 'diffusers', 'verl', 'transformers', 'ray') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_tool_server_module_runs_only_its_own_commands() -> None:
    out = subprocess.run([sys.executable, "-m", "mcp_server", "--help"], capture_output=True, text=True, check=True)
    assert "serve" in out.stdout and "train" not in out.stdout and "bench" not in out.stdout


def _hello(app: typer.Typer) -> None:
    @app.command("hello")
    def hello() -> None:
        typer.echo("hello from a plugin")


def test_a_third_party_command_registers_like_ours() -> None:
    app = typer.Typer()
    register_entry_points(app, [_ep("hello", f"{__name__}:_hello"), _ep("serve", "mcp_server.cli:register_serve")])
    result = CliRunner().invoke(app, ["hello"])
    assert result.exit_code == 0 and "hello from a plugin" in result.output


def test_a_plugin_that_fails_to_load_becomes_a_command_that_says_so() -> None:
    app = typer.Typer()
    register_entry_points(
        app, [_ep("broken", "gs_no_such_plugin_module:register"), _ep("serve", "mcp_server.cli:register_serve")]
    )
    broken = CliRunner().invoke(app, ["broken", "--anything"])
    assert broken.exit_code == 2
    assert "not available" in broken.output and "gs_no_such_plugin_module" in broken.output
    assert CliRunner().invoke(app, ["serve", "--help"]).exit_code == 0  # the rest keeps working


def test_a_command_name_two_packages_register_is_refused_naming_both() -> None:
    # The clash rule of every plugin group: the name is refused when used, nothing shadows silently,
    # and the other commands keep working.
    app = typer.Typer()
    register_entry_points(
        app,
        [
            _ep("serve", f"{__name__}:_hello"),
            _ep("serve", "mcp_server.cli:register_serve"),
            _ep("trace", "policy.trace_cli:register"),
        ],
    )
    result = CliRunner().invoke(app, ["serve", "--port", "1"])
    assert result.exit_code == 2
    assert "registered more than once" in result.output
    assert f"'{__name__}:_hello'" in result.output and "'mcp_server.cli:register_serve'" in result.output
    assert CliRunner().invoke(app, ["trace", "--help"]).exit_code == 0


def test_a_missing_optional_dependency_names_the_extra() -> None:
    app = typer.Typer()

    @app.command()
    def needs() -> None:
        require_modules("train", "gs_surely_not_installed_module")

    @app.command()
    def other() -> None:
        typer.echo("fine")

    result = CliRunner().invoke(app, ["needs"])
    assert result.exit_code == 2
    assert "pip install 'gen-searcher[train]'" in result.output and "gs_surely_not_installed_module" in result.output
    assert CliRunner().invoke(app, ["other"]).output.strip() == "fine"
