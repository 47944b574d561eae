"""The ``gen-searcher`` root command; every sub-command comes from an entry point.

Each area registers its commands the way a third-party package would, under the
entry-point group ``gen_searcher.commands``: the entry point's name is the
command's name and its object a ``register(app: typer.Typer) -> None`` hook::

    [project.entry-points."gen_searcher.commands"]
    mycommand = "my_package.cli:register"

Registration modules import only typer and their own option declarations, so
``gen-searcher --help`` stays fast. A command whose optional dependencies are
missing says which extra to install when run (see :func:`require_modules`); a
plugin that fails to load, or reuses a taken name, becomes a command that says
so, and the rest of the command line keeps working.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points

import typer

ENTRY_POINT_GROUP = "gen_searcher.commands"

RegisterHook = Callable[[typer.Typer], None]


def missing_modules(modules: Iterable[str]) -> list[str]:
    """The top-level modules among ``modules`` that cannot be imported (checked without importing them)."""
    missing = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def require_modules(extra: str, *modules: str) -> None:
    """Exit with a clear line naming the extra to install when one of ``modules`` is missing.

    Call it first thing in a command (or a group's callback) that needs an optional dependency.
    """
    missing = missing_modules(modules)
    if missing:
        typer.echo(
            f"error: this command needs {', '.join(missing)}; install it with: pip install 'gen-searcher[{extra}]'",
            err=True,
        )
        raise typer.Exit(2)


def _broken_command(app: typer.Typer, name: str, reason: str) -> None:
    def broken() -> None:
        typer.echo(f"error: the command {name!r} is not available: {reason}", err=True)
        raise typer.Exit(2)

    broken.__doc__ = f"(unavailable: {reason})"
    app.command(name, context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(broken)


def register_entry_points(app: typer.Typer, found: Iterable[EntryPoint] | None = None) -> None:
    """Attach every command registered under :data:`ENTRY_POINT_GROUP` to ``app``."""
    seen: dict[str, str] = {}
    for entry_point in sorted(found if found is not None else entry_points(group=ENTRY_POINT_GROUP), key=_order):
        name = entry_point.name
        if name in seen:
            typer.echo(
                f"warning: command {name!r} from {entry_point.value!r} ignored: {seen[name]!r} already provides it",
                err=True,
            )
            continue
        seen[name] = entry_point.value
        try:
            hook = entry_point.load()
        except Exception as exc:  # noqa: BLE001 - a plugin may fail to import in any way
            _broken_command(app, name, f"{entry_point.value} failed to load ({type(exc).__name__}: {exc})")
            continue
        if not callable(hook):
            _broken_command(app, name, f"{entry_point.value} is not a register(app) function")
            continue
        hook(app)


def _order(entry_point: EntryPoint) -> tuple[int, str]:
    # Our own commands first (they win a name clash with a plugin), then plugins by name.
    ours = entry_point.value.split(".", 1)[0] in _PROJECT_PACKAGES
    return (0 if ours else 1, entry_point.name)


_PROJECT_PACKAGES = frozenset(
    {"mcp_server", "search_tools", "render_tools", "policy", "benchmark", "verl_recipes", "gen_searcher_core"}
)


def build_app() -> typer.Typer:
    """The root command with every registered sub-command attached."""
    # Tracebacks never show local variables: a frame may hold a provider key.
    app = typer.Typer(
        name="gen-searcher",
        help="Search-grounded image generation: MCP tools, policy, rendering, benchmarks and training.",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
    )
    register_entry_points(app)
    return app


def main() -> None:
    """Console-script entry point of ``gen-searcher``."""
    build_app()(prog_name="gen-searcher")
