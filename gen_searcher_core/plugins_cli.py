"""``gen-searcher plugins``: what is installed in every plugin group, by whom, and which names clash."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from gen_searcher_core.plugins import GROUPS, Provider, installed_groups, providers


def _as_json(groups: dict[str, list[Provider]]) -> str:
    return json.dumps(
        [
            {
                "group": group,
                "kind": GROUPS.get(group, "plugin"),
                "providers": [
                    {
                        "name": p.name,
                        "object": p.value,
                        "distribution": p.distribution,
                        "version": p.version,
                        "clash": p.clash,
                    }
                    for p in found
                ],
            }
            for group, found in groups.items()
        ],
        indent=2,
    )


def _as_text(groups: dict[str, list[Provider]]) -> str:
    lines: list[str] = []
    for group, found in groups.items():
        lines.append(f"{group} ({GROUPS.get(group, 'plugin')}s)")
        width = max((len(p.name) for p in found), default=0)
        for p in found:
            origin = f"{p.distribution} {p.version}" if p.distribution else "(no distribution)"
            mark = "  CLASH: refused when chosen" if p.clash else ""
            lines.append(f"  {p.name:<{width}}  {p.value}  [{origin}]{mark}")
        if not found:
            lines.append("  (none)")
    return "\n".join(lines)


def plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of groups and their providers.")] = False,
) -> None:
    """List each plugin group's providers (commands, search backends, fetchers, renderers, settings roots)
    with the distribution and version that installed them; a name two packages register is marked."""
    groups = {group: providers(group) for group in installed_groups()}
    typer.echo(_as_json(groups) if as_json else _as_text(groups))
    if any(p.clash for found in groups.values() for p in found):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """``gen-searcher plugins`` (entry point of the ``gen_searcher.commands`` group)."""
    app.command("plugins")(plugins)
