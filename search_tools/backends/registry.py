"""Choosing a search backend by name: ``auto`` and the entry-point group ``gen_searcher.search_backends``.

Every backend, the five shipped ones included, registers a factory
``(config: BackendConfig) -> SearchBackend`` under the entry-point group::

    [project.entry-points."gen_searcher.search_backends"]
    mysearch = "my_package.backend:create"

and users select it with ``GEN_SEARCHER_SEARCH__BACKEND=mysearch``. Factories are
imported only when chosen. Two packages that register one name are a
configuration error at start, never a silent shadowing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

from gen_searcher_core.plugins import EntryPoints, by_name
from search_tools.backends.base import SearchBackend, SearchBackendError

if TYPE_CHECKING:
    from search_tools.settings import BackendConfig, ProviderKeys

ENTRY_POINT_GROUP = "gen_searcher.search_backends"
BackendFactory = Callable[["BackendConfig"], SearchBackend]


def resolve_auto(keys: ProviderKeys) -> str:
    """auto: serper if SERPER_API_KEY, else brave if BRAVE_API_KEY, else searxng if SEARXNG_URL, else ddgs."""
    for name, secret in (("serper", keys.serper_api_key), ("brave", keys.brave_api_key), ("searxng", keys.searxng_url)):
        if secret is not None and secret.get_secret_value():
            return name
    return "ddgs"


def plugin_entry_points(found: EntryPoints | None = None) -> dict[str, list[EntryPoint]]:
    """Registered backends by name; a name with more than one entry point is a clash."""
    return by_name(entry_points(group=ENTRY_POINT_GROUP) if found is None else found)


def known_backends(plugins: Iterable[str] | None = None) -> list[str]:
    names = set(plugin_entry_points() if plugins is None else plugins)
    return ["auto", *sorted(names)]


def _load_factory(name: str, plugins: dict[str, list[EntryPoint]]) -> BackendFactory:
    providers = plugins.get(name)
    if not providers:
        raise SearchBackendError(
            name, "config", f"unknown search backend {name!r}; known backends: {', '.join(known_backends(plugins))}"
        )
    if len(providers) > 1:
        clashing = ", ".join(repr(ep.value) for ep in providers)
        raise SearchBackendError(
            name,
            "config",
            f"the search backend name {name!r} is registered more than once ({clashing}); "
            "uninstall one of the packages or rename its entry point",
        )
    entry_point = providers[0]
    try:
        factory = entry_point.load()
    except Exception as exc:  # noqa: BLE001 - a plugin may fail to import in any way
        raise SearchBackendError(
            name, "config", f"could not load plugin {entry_point.value!r}: {type(exc).__name__}: {exc}"
        ) from None
    if not callable(factory):
        raise SearchBackendError(name, "config", f"plugin {entry_point.value!r} is not a callable factory")
    return factory


def create_backend(
    config: BackendConfig, name: str | None = None, *, plugins: EntryPoints | None = None
) -> SearchBackend:
    """Build the backend named by ``name`` (default: ``config.search.backend``)."""
    chosen = (name or config.search.backend or "auto").strip().lower()
    if chosen == "auto":
        chosen = resolve_auto(config.keys)
    found = plugin_entry_points(None if plugins is None else _with_shipped(plugins))
    factory = _load_factory(chosen, found)
    backend: Any = factory(config)
    missing = [
        attr for attr in ("name", "capabilities", "search", "image_search", "aclose") if not hasattr(backend, attr)
    ]
    if missing:
        raise SearchBackendError(chosen, "config", f"backend object lacks {', '.join(missing)} (see SearchBackend)")
    return backend


def _with_shipped(plugins: EntryPoints) -> list[EntryPoint]:
    """The installed entry points plus ``plugins`` (tests and embedders pass extra ones)."""
    extra = list(plugins.values()) if isinstance(plugins, Mapping) else list(plugins)
    return [*entry_points(group=ENTRY_POINT_GROUP), *extra]
