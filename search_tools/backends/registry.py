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

from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint
from typing import TYPE_CHECKING

from gen_searcher_core.plugins import EntryPoints, PluginError, load_plugin, registered
from search_tools.backends.base import SearchBackend, SearchBackendError

if TYPE_CHECKING:
    from search_tools.settings import BackendConfig, ProviderKeys

ENTRY_POINT_GROUP = "gen_searcher.search_backends"
BackendFactory = Callable[["BackendConfig"], SearchBackend]
_REQUIRED = ("name", "capabilities", "search", "image_search", "aclose")


class BackendConfigError(SearchBackendError, PluginError):
    """The settings name a search backend that cannot be built (unknown, registered twice, broken plugin)."""


def resolve_auto(keys: ProviderKeys) -> str:
    """auto: serper if SERPER_API_KEY, else brave if BRAVE_API_KEY, else searxng if SEARXNG_URL, else ddgs."""
    for name, secret in (("serper", keys.serper_api_key), ("brave", keys.brave_api_key), ("searxng", keys.searxng_url)):
        if secret is not None and secret.get_secret_value():
            return name
    return "ddgs"


def plugin_entry_points(found: EntryPoints | None = None) -> dict[str, list[EntryPoint]]:
    """Registered backends by name (installed ones plus ``found``); a name with more than one entry point is a clash."""
    return registered(ENTRY_POINT_GROUP, found)


def known_backends(plugins: Iterable[str] | None = None) -> list[str]:
    names = set(plugin_entry_points() if plugins is None else plugins)
    return ["auto", *sorted(names)]


def create_backend(
    config: BackendConfig, name: str | None = None, *, plugins: EntryPoints | None = None
) -> SearchBackend:
    """Build the backend named by ``name`` (default: ``config.search.backend``); ``plugins`` adds entry points
    to the installed ones (tests, embedders). Raises :class:`BackendConfigError`."""
    chosen = (name or config.search.backend or "auto").strip().lower()
    if chosen == "auto":
        chosen = resolve_auto(config.keys)
    try:
        factory = load_plugin(ENTRY_POINT_GROUP, chosen, what="search backend", extra=plugins, also_known=("auto",))
    except PluginError as exc:
        raise BackendConfigError(chosen, "config", str(exc)) from None
    backend: object = factory(config)
    missing = [attr for attr in _REQUIRED if not hasattr(backend, attr)]
    if missing or not isinstance(backend, SearchBackend):
        raise BackendConfigError(chosen, "config", f"backend object lacks {', '.join(missing)} (see SearchBackend)")
    return backend
