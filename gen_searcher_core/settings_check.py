"""Unknown settings: a misspelt TOML key or ``GEN_SEARCHER_`` variable is named, with the closest valid name.

pydantic ignores what it does not know, so ``GEN_SEARCHER_SEARCH__BAKEND=local``
would silently leave the default backend in place. The valid names are those of
every registered settings root (the ``gen_searcher.settings`` entry points, the
same list docs/settings.md is generated from), so a file that configures the
whole project passes every command's check.

``GEN_SEARCHER_UNKNOWN_SETTINGS`` says what happens: ``error`` (the default for
TOML keys: the command stops), ``warn`` (the default for environment variables,
which may be meant for another version or tool: one warning line each) or
``ignore``; when set, it applies to both.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

logger = logging.getLogger(__name__)

POLICY_ENV = "GEN_SEARCHER_UNKNOWN_SETTINGS"
ENV_PREFIX = "GEN_SEARCHER_"
#: Variables the commands read that are not settings fields (command-line options' variables, test switches).
OTHER_VARIABLES = frozenset(
    {
        "GEN_SEARCHER_CONFIG",
        "GEN_SEARCHER_TOKEN",
        "GEN_SEARCHER_MCP_URL",
        "GEN_SEARCHER_RENDER_MCP_URL",
        "GEN_SEARCHER_SYNC_COUNTS",  # perf/gpu_check.py's tensor counter
        POLICY_ENV,
    }
)
OTHER_PREFIXES = ("GEN_SEARCHER_TEST_",)

Action = Literal["error", "warn", "ignore"]


class UnknownSettingError(ValueError):
    """Settings name keys or variables that no settings root knows (the message lists each, with a suggestion)."""


@dataclass(frozen=True)
class KnownNames:
    """Every valid TOML key path (``("search", "backend")``), section path and environment variable."""

    leaves: frozenset[tuple[str, ...]]
    sections: frozenset[tuple[str, ...]]
    env: frozenset[str]


def known_names() -> KnownNames:
    """The names of every registered settings root (imports the roots through their entry points)."""
    from gen_searcher_core.settings_tree import roots

    return names_of(root for _name, root in roots())


def names_of(settings_roots: Iterable[type[BaseModel]]) -> KnownNames:
    """The TOML paths, sections and environment variables of these settings roots."""
    from gen_searcher_core.settings_tree import root_sections

    leaves: set[tuple[str, ...]] = set()
    sections: set[tuple[str, ...]] = set()
    env: set[str] = set()
    for root in settings_roots:
        for section in root_sections(root):
            for row in section.rows:
                env.update(row.env)
                if row.toml.startswith("["):
                    path, key = row.toml[1:].split("] ", 1)
                    parts = tuple(path.split("."))
                    for n in range(1, len(parts) + 1):
                        sections.add(parts[:n])
                    leaves.add((*parts, key))
                else:
                    leaves.add((row.toml,))
    return KnownNames(frozenset(leaves), frozenset(sections), frozenset(env))


def _suggest(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def unknown_toml_keys(data: Mapping[str, Any], known: KnownNames) -> list[str]:
    """One line per key of a parsed TOML file that no settings root reads."""
    problems: list[str] = []

    def visit(table: Mapping[str, Any], path: tuple[str, ...]) -> None:
        siblings = [p[-1] for p in known.leaves | known.sections if p[:-1] == path]
        for key, value in table.items():
            here = (*path, key)
            if here in known.leaves:
                continue
            if here in known.sections and isinstance(value, Mapping):
                visit(value, here)
                continue
            where = f"[{'.'.join(path)}] {key}" if path else key
            problems.append(f"unknown key {where}{_suggest(key, siblings)}")

    visit(data, ())
    return problems


def unknown_variables(environ: Mapping[str, str], known: KnownNames) -> list[str]:
    """One line per ``GEN_SEARCHER_`` variable that is neither a setting nor one of the commands' own."""
    valid = known.env | OTHER_VARIABLES
    problems = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in valid or upper.startswith(OTHER_PREFIXES):
            continue
        problems.append(f"unknown variable {name}{_suggest(upper, valid)}")
    return problems


def _action(default: Action) -> Action:
    value = os.environ.get(POLICY_ENV, "").strip().lower()
    if not value:
        return default
    if value not in ("error", "warn", "ignore"):
        raise UnknownSettingError(f"{POLICY_ENV} must be error, warn or ignore, got {value!r}")
    return value  # type: ignore[return-value]


def check_settings(
    file_data: Mapping[str, Any], source: str = "the settings file", root: type[BaseModel] | None = None
) -> None:
    """Refuse (or warn about) unknown keys in ``file_data`` and unknown ``GEN_SEARCHER_`` variables.

    ``root`` is the settings class being loaded: when it knows every name, the other roots are never
    imported (the common case costs nothing); a name it does not know is looked up in all of them.
    """
    file_action, env_action = _action("error"), _action("warn")
    environ_has_ours = any(name.upper().startswith(ENV_PREFIX) for name in os.environ)
    if not file_data and not environ_has_ours:
        return
    if root is not None:
        own = names_of([root])
        if not unknown_toml_keys(file_data, own) and not unknown_variables(os.environ, own):
            return
    known = known_names()
    errors: list[str] = []
    for action, problems in (
        (file_action, [f"{source}: {line}" for line in unknown_toml_keys(file_data, known)]),
        (env_action, unknown_variables(os.environ, known)),
    ):
        if action == "error":
            errors += problems
        elif action == "warn":
            for line in problems:
                logger.warning("%s; %s=ignore silences this", line, POLICY_ENV)
    if errors:
        raise UnknownSettingError(
            "; ".join(errors) + f" (docs/settings.md lists every setting; {POLICY_ENV}=warn only warns)"
        )
