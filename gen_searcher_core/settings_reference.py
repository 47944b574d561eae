"""The settings reference (docs/settings.md), generated from the pydantic fields of every settings root.

Each area registers its root under the ``gen_searcher.settings`` entry-point
group (the name is the command that loads it), so this module imports no area
and the page can never disagree with the code: a test compares the committed
page with :func:`render`. Regenerate with ``make settings-doc``, i.e.
``python -m gen_searcher_core.settings_reference --out docs/settings.md``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import platformdirs
from pydantic import AliasChoices, BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from gen_searcher_core.config import CONFIG_ENV

ENTRY_POINT_GROUP = "gen_searcher.settings"
ENV_PREFIX = "GEN_SEARCHER_"
FIRST = "serve"  # the tool server's tree opens the page; the other roots follow by name
USER_CACHE = "<user cache dir>"


@dataclass(frozen=True)
class Row:
    """One setting: how to set it and what it is."""

    env: tuple[str, ...]
    toml: str
    type: str
    default: str
    description: str


def type_name(annotation: Any) -> str:
    """A short, stable spelling of a field's type (``int``, ``str | None``, ``list[str]``, ``secret``)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return type_name(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(arg) for arg in get_args(annotation))
    if origin is Literal:
        return " | ".join(json.dumps(arg) for arg in get_args(annotation))
    if origin is not None:
        args = ", ".join(type_name(arg) for arg in get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if annotation is type(None):
        return "None"
    if annotation is SecretStr:
        return "secret"
    return getattr(annotation, "__name__", str(annotation))


def default_text(field: FieldInfo) -> str:
    """The default as it would be written in TOML; machine-specific folders are named, not spelled out."""
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if value is None:
        return "–"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, Path):
        text = str(value)
        cache = platformdirs.user_cache_dir("gen-searcher")
        return f"`{USER_CACHE}{text[len(cache) :]}`" if text.startswith(cache) else f"`{text}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, BaseModel):
        return "(section)"
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def alias_names(field: FieldInfo) -> list[str]:
    """Environment names a field reads through its validation alias (upper-case choices only)."""
    alias = field.validation_alias
    choices = alias.choices if isinstance(alias, AliasChoices) else [alias] if isinstance(alias, str) else []
    return [name for name in choices if isinstance(name, str) and name.isupper()]


def section_model(field: FieldInfo) -> type[BaseModel] | None:
    annotation = field.annotation
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation if inspect.isclass(annotation) and issubclass(annotation, BaseModel) else None


def field_row(env: Iterable[str], toml: str, field: FieldInfo) -> Row:
    description = " ".join((field.description or "").split())
    return Row(tuple(env), toml, type_name(field.annotation), default_text(field), description)


def section_rows(model: type[BaseModel], path: tuple[str, ...], flat: bool) -> Iterator[Row]:
    """The keys of one section (nested models recurse: ``[fetch.x] y`` is ``GEN_SEARCHER_FETCH__X__Y``)."""
    for name, field in model.model_fields.items():
        keys = (*path, name)
        nested = section_model(field)
        if nested is not None:
            yield from section_rows(nested, keys, flat=False)
            continue
        env = [ENV_PREFIX + "__".join(keys).upper()]
        if flat and len(keys) == 2:  # the section's documented one-underscore spelling comes first
            env.insert(0, ENV_PREFIX + "_".join(keys).upper())
        yield field_row(env, f"[{'.'.join(path)}] {name}", field)


@dataclass(frozen=True)
class Section:
    title: str
    model: type[BaseModel] | None  # None: the root's own top-level keys
    rows: tuple[Row, ...]


def root_sections(root: type[BaseModel]) -> list[Section]:
    """The top-level keys of a settings root, then one section per nested model."""
    flat = set(getattr(root, "flat_env_sections", ()))
    if issubclass(root, BaseSettings) and not root.model_fields.keys() & flat and section_model_count(root) == 0:
        # A standalone settings class (its own env_prefix): every field is a top-level key.
        prefix = str(root.model_config.get("env_prefix", ""))
        rows = [field_row(alias_names(f) or [(prefix + n).upper()], n, f) for n, f in root.model_fields.items()]
        return [Section("keys", None, tuple(rows))]
    top: list[Row] = []
    sections: list[Section] = []
    for name, field in root.model_fields.items():
        model = section_model(field)
        if model is None:
            top.append(field_row(alias_names(field) or [ENV_PREFIX + name.upper()], name, field))
        else:
            sections.append(Section(f"[{name}]", model, tuple(section_rows(model, (name,), name in flat))))
    return ([Section("top level", None, tuple(top))] if top else []) + sections


def section_model_count(root: type[BaseModel]) -> int:
    return sum(section_model(field) is not None for field in root.model_fields.values())


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


def roots(found: Iterable[EntryPoint] | None = None) -> list[tuple[str, type[BaseModel]]]:
    """The registered settings roots, the tool server's first."""
    listed = list(entry_points(group=ENTRY_POINT_GROUP) if found is None else found)
    unique = {ep.name: ep for ep in listed}
    ordered = sorted(unique.values(), key=lambda ep: (ep.name != FIRST, ep.name))
    return [(ep.name, ep.load()) for ep in ordered]


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
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, help="write the page here (default: print it)")
    parser.add_argument("--check", action="store_true", help="exit 1 when --out differs from the generated page")
    args = parser.parse_args(argv)
    page = render()
    if args.out is None:
        sys.stdout.write(page)
        return 0
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != page:
            sys.stderr.write(f"{args.out} is stale: run `make settings-doc`\n")
            return 1
        return 0
    args.out.write_text(page, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
