"""The settings reference (docs/settings.md), generated from the pydantic fields of every settings root.

Each area registers its root under the ``gen_searcher.settings`` entry-point
group (the name is the command that loads it), so this module imports no area
and the page can never disagree with the code: a test compares the committed
page with :func:`render`. Regenerate with ``make settings-doc``, i.e.
``python -m gen_searcher_core.settings_reference --out docs/settings.md``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from importlib.metadata import EntryPoint

from pydantic import BaseModel

from gen_searcher_core.config import CONFIG_ENV
from gen_searcher_core.generated_page import generated_page_main
from gen_searcher_core.settings_tree import USER_CACHE, Row, root_sections, roots


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(rows: Iterable[Row]) -> list[str]:
    lines = ["| environment | TOML | type | default | description |", "|---|---|---|---|---|"]
    for row in rows:
        env = "<br>".join(f"`{name}`" for name in row.env)
        lines.append(
            f"| {env} | `{cell(row.toml)}` | `{cell(row.type)}` | {cell(row.default)} | {cell(row.description)} |"
        )
    return lines


def first_paragraph(text: str | None) -> str:
    """The first paragraph of a docstring, on one line, in markdown's backticks."""
    paragraph = (inspect.cleandoc(text or "").split("\n\n") or [""])[0]
    return " ".join(paragraph.split()).replace("``", "`")


def described(rows: Iterable[Row], known: dict[str, str]) -> tuple[Row, ...]:
    """Rows whose own field has no description borrow the one a root above gave the same key."""
    out = []
    for row in rows:
        if row.description:
            known.setdefault(row.toml, row.description)
        else:
            row = Row(row.env, row.toml, row.type, row.default, known.get(row.toml, ""))
        out.append(row)
    return tuple(out)


def render(found: Iterable[EntryPoint] | None = None) -> str:
    """The whole page as markdown."""
    out = [
        "# Settings reference",
        "",
        "<!-- Generated from the settings models by `make settings-doc`; do not edit by hand. -->",
        "",
        "Every command reads one settings tree. Precedence, highest first: command-line flags,",
        f"environment variables, the TOML file named by `--config` or `{CONFIG_ENV}`, then the defaults below.",
        "A section key is `GEN_SEARCHER_<SECTION>__<KEY>` in the environment and `key` under",
        '`[section]` in the TOML file; lists in the environment are JSON (`["a", "b"]`), except the',
        "comma-separated `AUTH_TOKENS` and `ALLOWED_HOSTS`. Secrets are read from the environment",
        "(or the file) and never printed. "
        f"`{USER_CACHE}` is the per-user cache folder (`~/.cache/gen-searcher` on Linux).",
        "",
        "Each command loads the sections it needs; a section one command shares with another",
        "is listed once, under the first.",
    ]
    documented: dict[type[BaseModel], str] = {}
    known: dict[str, str] = {}
    for name, root in roots(found):
        module = inspect.getmodule(root)
        about = first_paragraph(module.__doc__ if module is not None else None)
        out += ["", f"## `gen-searcher {name}`", "", f"{about} Root: `{root.__module__}.{root.__qualname__}`."]
        for section in root_sections(root):
            rows = described(section.rows, known)
            if section.model is not None and section.model in documented:
                out += ["", f"`{section.title}`: as under {documented[section.model]}."]
                continue
            if section.model is not None:
                documented[section.model] = f"`gen-searcher {name}`"
            out += ["", f"### {section.title}", "", *table(rows)]
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    description = (__doc__ or "").split("\n", 1)[0]
    return generated_page_main(argv, description=description, render=render, target="settings-doc")


if __name__ == "__main__":
    raise SystemExit(main())
