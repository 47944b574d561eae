"""Choosing a search backend by name: built-ins, ``auto``, and entry-point plugins.

A third-party package registers a factory ``(settings) -> SearchBackend`` under
the entry-point group ``gen_searcher.search_backends``::

    [project.entry-points."gen_searcher.search_backends"]
    mysearch = "my_package.backend:create"

and users select it with ``GEN_SEARCHER_SEARCH__BACKEND=mysearch``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

from search_tools.backends.base import SearchBackend, SearchBackendError

if TYPE_CHECKING:
    from mcp_server.settings import Settings

ENTRY_POINT_GROUP = "gen_searcher.search_backends"
BackendFactory = Callable[["Settings"], SearchBackend]

# name -> "module:factory"; imported lazily so choosing one backend never imports the others.
BUILTIN_BACKENDS: dict[str, str] = {
    "serper": "search_tools.backends.serper:create",
    "searxng": "search_tools.backends.searxng:create",
    "brave": "search_tools.backends.brave:create",
    "ddgs": "search_tools.backends.duckduckgo:create",
    "local": "search_tools.backends.local:create",
}


def resolve_auto(settings: Settings) -> str:
    """auto: serper if SERPER_API_KEY, else brave if BRAVE_API_KEY, else searxng if SEARXNG_URL, else ddgs."""
    if settings.serper_api_key is not None and settings.serper_api_key.get_secret_value():
        return "serper"
    if settings.brave_api_key is not None and settings.brave_api_key.get_secret_value():
        return "brave"
    if settings.searxng_url is not None and settings.searxng_url.get_secret_value():
        return "searxng"
    return "ddgs"


def plugin_entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def known_backends(plugins: Iterable[str] | None = None) -> list[str]:
    names = set(BUILTIN_BACKENDS) | set(plugin_entry_points() if plugins is None else plugins)
    return ["auto", *sorted(names)]


def _load_factory(name: str, plugins: dict[str, EntryPoint]) -> BackendFactory:
    if name in BUILTIN_BACKENDS:
        module_name, attr = BUILTIN_BACKENDS[name].split(":")
        return getattr(importlib.import_module(module_name), attr)
    entry_point = plugins.get(name)
    if entry_point is None:
        raise SearchBackendError(
            name, "config", f"unknown search backend {name!r}; known backends: {', '.join(known_backends(plugins))}"
        )
    try:
        factory = entry_point.load()
    except Exception as exc:
        raise SearchBackendError(
            name, "config", f"could not load plugin {entry_point.value!r}: {type(exc).__name__}: {exc}"
        ) from None
    if not callable(factory):
        raise SearchBackendError(name, "config", f"plugin {entry_point.value!r} is not a callable factory")
    return factory


def create_backend(
    settings: Settings, name: str | None = None, *, plugins: dict[str, EntryPoint] | None = None
) -> SearchBackend:
    """Build the backend named by ``name`` (default: ``settings.search.backend``)."""
    chosen = (name or settings.search.backend or "auto").strip().lower()
    if chosen == "auto":
        chosen = resolve_auto(settings)
    found = plugin_entry_points() if plugins is None else plugins
    factory = _load_factory(chosen, found)
    backend: Any = factory(settings)
    missing = [
        attr for attr in ("name", "capabilities", "search", "image_search", "aclose") if not hasattr(backend, attr)
    ]
    if missing:
        raise SearchBackendError(chosen, "config", f"backend object lacks {', '.join(missing)} (see SearchBackend)")
    return backend
