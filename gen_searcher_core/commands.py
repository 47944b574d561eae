"""The ``gen-searcher`` root command; every sub-command comes from an entry point.

Each area registers its commands the way a third-party package would, under the
entry-point group ``gen_searcher.commands``: the entry point's name is the
command's name and its object a ``register(app: typer.Typer) -> None`` hook::

    [project.entry-points."gen_searcher.commands"]
    mycommand = "my_package.cli:register"

Registration modules import only typer and their own option declarations, so
``gen-searcher --help`` stays fast. A command whose optional dependencies are
missing says which extra to install when run (see :func:`require_modules`). The
clash rule is the one of every plugin group (:mod:`gen_searcher_core.plugins`):
a command that fails to load, or whose name two packages register, becomes a
command that says so when run, and the rest of the command line keeps working.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points

import typer

from gen_searcher_core.plugins import PluginError, by_name, load_entry_point, single_provider

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
    """Attach every command registered under :data:`ENTRY_POINT_GROUP` (or ``found``) to ``app``."""
    grouped = by_name(entry_points(group=ENTRY_POINT_GROUP) if found is None else found)
    for name in sorted(grouped):
        try:
            hook = load_entry_point(single_provider(grouped, name, what="command"), what="command")
        except PluginError as exc:
            _broken_command(app, name, str(exc))
            continue
        hook(app)


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
