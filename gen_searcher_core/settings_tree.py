"""The settings roots read as a tree of sections and rows: what the reference page prints and the check reads.

Each area registers its root under the ``gen_searcher.settings`` entry-point group
(the name is the command that loads it). :mod:`gen_searcher_core.settings_reference`
prints these rows as docs/settings.md; :mod:`gen_searcher_core.settings_check` uses
them to find the closest valid name for an unknown key or variable.
"""

from __future__ import annotations

import inspect
import json
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


def roots(found: Iterable[EntryPoint] | None = None) -> list[tuple[str, type[BaseModel]]]:
    """The registered settings roots, the tool server's first."""
    listed = list(entry_points(group=ENTRY_POINT_GROUP) if found is None else found)
    unique = {ep.name: ep for ep in listed}
    ordered = sorted(unique.values(), key=lambda ep: (ep.name != FIRST, ep.name))
    return [(ep.name, ep.load()) for ep in ordered]
