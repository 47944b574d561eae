"""The command reference (docs/commands.md), generated from the typer apps of every shipped command.

Commands come from the ``gen_searcher.commands`` entry points (see
:mod:`gen_searcher_core.commands`); this module builds the same root the
console script builds, keeps the project's own distribution's commands, and
writes each command's usage, help and options. A test compares the committed
page with :func:`render`, so the page cannot drift from the code. Regenerate
with ``make commands-doc``, i.e.
``python -m gen_searcher_core.commands_reference --out docs/commands.md``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Protocol

import typer

from gen_searcher_core.commands import ENTRY_POINT_GROUP, register_entry_points
from gen_searcher_core.generated_page import generated_page_main

DISTRIBUTION = "gen-searcher"
PROG = "gen-searcher"


# typer hands out click's objects (its own vendored copy in recent versions), so they are read by shape,
# through the calls ``--help`` itself makes.
class _Param(Protocol):
    @property
    def name(self) -> str | None: ...

    def get_help_record(self, ctx: Any) -> tuple[str, str] | None: ...


class _Command(Protocol):
    @property
    def help(self) -> str | None: ...
    @property
    def short_help(self) -> str | None: ...
    @property
    def hidden(self) -> bool: ...
    @property
    def params(self) -> Sequence[_Param]: ...

    def collect_usage_pieces(self, ctx: Any) -> list[str]: ...

    def make_context(self, info_name: str | None, args: list[str], **extra: Any) -> Any: ...


def shipped(found: Iterable[EntryPoint] | None = None) -> list[EntryPoint]:
    """The command entry points of this project's own distribution (third-party plugins are theirs to document)."""
    if found is not None:
        return list(found)
    return [
        ep
        for ep in entry_points(group=ENTRY_POINT_GROUP)
        if ep.dist is not None and ep.dist.metadata["Name"] == DISTRIBUTION
    ]


def root_command(found: Iterable[EntryPoint] | None = None) -> _Command:
    """The ``gen-searcher`` root with the shipped commands, as click sees it."""
    app = typer.Typer(name=PROG, no_args_is_help=True)
    register_entry_points(app, shipped(found))
    command: _Command = typer.main.get_command(app)
    return command


def walk(command: _Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], _Command]]:
    """Every command below ``command`` (groups before their sub-commands), by name."""
    if path:
        yield path, command
    subs: Mapping[str, _Command] = getattr(command, "commands", {})
    for name in sorted(subs):
        if not subs[name].hidden:
            yield from walk(subs[name], (*path, name))


def _context(path: tuple[str, ...], command: _Command) -> Any:
    return command.make_context(" ".join((PROG, *path)), [], resilient_parsing=True)


def _help(command: _Command) -> str:
    text = inspect.cleandoc(command.help or command.short_help or "")
    return text.split("\f", 1)[0].strip()


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def params_table(path: tuple[str, ...], command: _Command) -> list[str]:
    """The arguments and options of ``command`` as a markdown table, worded as ``--help`` words them."""
    ctx = _context(path, command)
    rows = []
    for param in command.params:
        record = param.get_help_record(ctx)
        if record is None or param.name == "help":
            continue
        names, about = record
        rows.append(f"| `{_cell(names)}` | {_cell(about)} |")
    if not rows:
        return []
    return ["| argument / option | description |", "|---|---|", *rows]


def render(found: Iterable[EntryPoint] | None = None) -> str:
    """The whole page as markdown."""
    out = [
        "# Command reference",
        "",
        "<!-- Generated from the typer apps by `make commands-doc`; do not edit by hand. -->",
        "",
        "Every command is a sub-command of `gen-searcher`, registered under the entry-point group",
        f"`{ENTRY_POINT_GROUP}` (`gen-searcher plugins` lists what is installed, third-party commands",
        "included). Settings a command reads are in [settings.md](settings.md); `--help` on any",
        "command prints the same text as below.",
    ]
    for path, command in walk(root_command(found)):
        heading = "#" * min(len(path) + 1, 4)
        usage = " ".join([PROG, *path, *command.collect_usage_pieces(_context(path, command))])
        out += ["", f"{heading} `{' '.join((PROG, *path))}`", "", "```text", usage, "```"]
        about = _help(command)
        if about:
            out += ["", about]
        table = params_table(path, command)
        if table:
            out += ["", *table]
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    description = (__doc__ or "").split("\n", 1)[0]
    return generated_page_main(argv, description=description, render=render, target="commands-doc")


if __name__ == "__main__":
    raise SystemExit(main())
