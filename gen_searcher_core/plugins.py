"""Plugins chosen by name from an entry-point group: search backends, fetchers, renderers.

Shipped implementations register in pyproject.toml exactly as a third party's
would, so every name is looked up the same way. A name registered by two
different packages is a configuration error at start, never a silent
shadowing; the object behind a name is imported only when that name is chosen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from gen_searcher_core.errors import ConfigError

EntryPoints = Mapping[str, EntryPoint] | Iterable[EntryPoint]


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


def single_provider(
    found: Mapping[str, list[EntryPoint]], name: str, *, what: str, setting: str | None = None
) -> EntryPoint:
    """The one entry point registered as ``name``; raises :class:`PluginError` when there is none or several.

    ``what`` names the kind of plugin in messages ("renderer", "fetcher"); ``setting``, the setting
    that chose it ("fetch.backend").
    """
    providers = found.get(name)
    if not providers:
        known = ", ".join(sorted(found)) or "none"
        where = f" ({setting})" if setting else ""
        raise PluginError(f"unknown {what} {name!r}{where}; known {what}s: {known}")
    if len(providers) > 1:
        clashing = ", ".join(repr(ep.value) for ep in providers)
        raise PluginError(
            f"the {what} name {name!r} is registered more than once ({clashing}); "
            "uninstall one of the packages or rename its entry point"
        )
    return providers[0]


def load_plugin(
    group: str, name: str, *, what: str, setting: str | None = None, extra: EntryPoints | None = None
) -> Any:
    """Import and return the object registered as ``name`` in ``group``; raises :class:`PluginError`."""
    entry_point = single_provider(registered(group, extra), name, what=what, setting=setting)
    try:
        return entry_point.load()
    except Exception as exc:  # noqa: BLE001 - a plugin may fail to import in any way
        raise PluginError(f"could not load {what} plugin {entry_point.value!r}: {type(exc).__name__}: {exc}") from None
