"""Plugins chosen by name from an entry-point group: commands, search backends, fetchers, renderers.

Shipped implementations register in pyproject.toml exactly as a third party's
would, so every name in every group is looked up by this one loader, under one
clash rule:

* A name registered by two different providers (two entry points with different
  objects; the same package seen twice, installed and editable, is one) is
  refused when it is used, with a message naming both providers. It never
  shadows silently, and no provider wins by install order or by being ours.
* The other names of the group keep working: one bad plugin does not stop the
  command line or the server from starting with another choice.
* ``gen-searcher plugins`` lists every group's providers and marks clashes.

The object behind a name is imported only when that name is chosen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from gen_searcher_core.errors import ConfigError

EntryPoints = Mapping[str, EntryPoint] | Iterable[EntryPoint]

#: The entry-point groups the project reads, and what one provider of each is called in messages.
GROUPS: dict[str, str] = {
    "gen_searcher.commands": "command",
    "gen_searcher.search_backends": "search backend",
    "gen_searcher.fetchers": "fetcher",
    "gen_searcher.renderers": "renderer",
    "gen_searcher.settings": "settings root",
}


class PluginError(ConfigError):
    """A plugin name is unknown, registered twice, or cannot be loaded; the message says what to do."""


def _listed(found: EntryPoints) -> list[EntryPoint]:
    return list(found.values()) if isinstance(found, Mapping) else list(found)


def by_name(found: EntryPoints) -> dict[str, list[EntryPoint]]:
    """Entry points grouped by name; a name with more than one provider is a clash
    (the same package seen twice, e.g. installed and editable, is not)."""
    grouped: dict[str, list[EntryPoint]] = {}
    for entry_point in _listed(found):
        providers = grouped.setdefault(entry_point.name, [])
        if all(other.value != entry_point.value for other in providers):
            providers.append(entry_point)
    return grouped


def registered(group: str, extra: EntryPoints | None = None) -> dict[str, list[EntryPoint]]:
    """The installed entry points of ``group`` plus ``extra`` (tests and embedders pass their own), by name."""
    return by_name([*entry_points(group=group), *_listed(extra or ())])


def clash_message(name: str, providers: Iterable[EntryPoint], *, what: str) -> str:
    """The one message every group gives for a name registered by several providers."""
    clashing = ", ".join(repr(ep.value) for ep in providers)
    return (
        f"the {what} name {name!r} is registered more than once ({clashing}); "
        "uninstall one of the packages or rename its entry point"
    )


def single_provider(
    found: Mapping[str, list[EntryPoint]],
    name: str,
    *,
    what: str,
    setting: str | None = None,
    also_known: Iterable[str] = (),
) -> EntryPoint:
    """The one entry point registered as ``name``; raises :class:`PluginError` when there is none or several.

    ``what`` names the kind of plugin in messages ("renderer", "fetcher"); ``setting``, the setting
    that chose it ("fetch.backend"); ``also_known``, names the caller resolves itself ("auto"),
    listed first among the known ones.
    """
    providers = found.get(name)
    if not providers:
        known = ", ".join([*also_known, *sorted(found)]) or "none"
        where = f" ({setting})" if setting else ""
        raise PluginError(f"unknown {what} {name!r}{where}; known {what}s: {known}")
    if len(providers) > 1:
        raise PluginError(clash_message(name, providers, what=what))
    return providers[0]


def load_entry_point(entry_point: EntryPoint, *, what: str) -> Callable[..., Any]:
    """Import the object behind ``entry_point``; raises :class:`PluginError` when it fails or is not callable."""
    try:
        loaded = entry_point.load()
    except Exception as exc:  # noqa: BLE001 - a plugin may fail to import in any way
        raise PluginError(f"could not load {what} plugin {entry_point.value!r}: {type(exc).__name__}: {exc}") from None
    if not callable(loaded):
        raise PluginError(f"{what} plugin {entry_point.value!r} is not callable")
    factory: Callable[..., Any] = loaded  # what it returns, its caller checks
    return factory


def load_plugin(
    group: str,
    name: str,
    *,
    what: str,
    setting: str | None = None,
    extra: EntryPoints | None = None,
    also_known: Iterable[str] = (),
) -> Callable[..., Any]:
    """Import and return the object registered as ``name`` in ``group``; raises :class:`PluginError`."""
    entry_point = single_provider(registered(group, extra), name, what=what, setting=setting, also_known=also_known)
    return load_entry_point(entry_point, what=what)


@dataclass(frozen=True)
class Provider:
    """One installed entry point, for ``gen-searcher plugins``."""

    group: str
    name: str
    value: str
    distribution: str | None
    version: str | None
    clash: bool


def installed_groups() -> list[str]:
    """The project's groups plus any other ``gen_searcher.*`` group a package registers into."""
    others = sorted(g for g in entry_points().groups if g.startswith("gen_searcher.") and g not in GROUPS)
    return [*GROUPS, *others]


def providers(group: str, extra: EntryPoints | None = None) -> list[Provider]:
    """Every provider of ``group`` by name, with the distribution that installed it; clashes marked."""
    listed: list[Provider] = []
    for name, found in sorted(registered(group, extra).items()):
        for entry_point in found:
            dist = entry_point.dist
            listed.append(
                Provider(
                    group=group,
                    name=name,
                    value=entry_point.value,
                    distribution=dist.metadata["Name"] if dist is not None else None,
                    version=dist.version if dist is not None else None,
                    clash=len(found) > 1,
                )
            )
    return listed
