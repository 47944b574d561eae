"""Choosing the page fetcher by name from the entry-point group ``gen_searcher.fetchers``.

Every fetcher, the four shipped ones included, registers a factory
``(config: FetcherConfig) -> Fetcher``::

    [project.entry-points."gen_searcher.fetchers"]
    myfetcher = "my_package.fetcher:create"

and users select it with ``GEN_SEARCHER_FETCH__BACKEND=myfetcher``. Factories are
imported only when chosen (so ``direct`` never imports Playwright). A name two
packages register is a configuration error at start, never a silent shadowing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Protocol

from pydantic import SecretStr

from gen_searcher_core.errors import ConfigError
from search_tools.backends.registry import plugin_entry_points
from search_tools.fetch import Fetcher as GuardedFetcher
from search_tools.fetch import Resolver, system_resolver
from search_tools.fetch_protocol import Fetcher
from search_tools.settings import FetchSettings

ENTRY_POINT_GROUP = "gen_searcher.fetchers"
EntryPoints = Mapping[str, EntryPoint] | Iterable[EntryPoint]


class FetcherEvents(Protocol):
    """Where fetchers report what they did (the server's ``Metrics``): ``fetcher_event("browser", "refused")``."""

    def fetcher_event(self, fetcher: str, event: str) -> None: ...


@dataclass(frozen=True)
class FetcherConfig:
    """Everything a fetcher factory receives.

    ``direct`` is the server's guarded httpx fetcher (shared with image downloads):
    fetchers that read documents themselves build on it so the guard, robots.txt
    and caps are the same everywhere.
    """

    fetch: FetchSettings
    direct: GuardedFetcher
    jina_api_key: SecretStr | None = None
    events: FetcherEvents | None = None
    resolver: Resolver = system_resolver

    def event(self, fetcher: str, event: str) -> None:
        if self.events is not None:
            self.events.fetcher_event(fetcher, event)


FetcherFactory = Callable[[FetcherConfig], Any]


def known_fetchers(found: EntryPoints | None = None) -> list[str]:
    return sorted(plugin_entry_points(entry_points(group=ENTRY_POINT_GROUP) if found is None else found))


def create_fetcher(config: FetcherConfig, name: str | None = None, *, plugins: EntryPoints | None = None) -> Fetcher:
    """Build the fetcher named by ``name`` (default: ``config.fetch.backend``); raises ``ConfigError``."""
    chosen = (name or config.fetch.backend or "direct").strip().lower()
    installed = list(entry_points(group=ENTRY_POINT_GROUP))
    extra = [] if plugins is None else list(plugins.values()) if isinstance(plugins, Mapping) else list(plugins)
    found = plugin_entry_points([*installed, *extra])
    providers = found.get(chosen)
    if not providers:
        raise ConfigError(f"unknown fetcher {chosen!r} (fetch.backend); known fetchers: {', '.join(sorted(found))}")
    if len(providers) > 1:
        clashing = ", ".join(repr(ep.value) for ep in providers)
        raise ConfigError(
            f"the fetcher name {chosen!r} is registered more than once ({clashing}); "
            "uninstall one of the packages or rename its entry point"
        )
    try:
        factory = providers[0].load()
    except Exception as exc:  # noqa: BLE001 - a plugin may fail to import in any way
        raise ConfigError(
            f"could not load fetcher plugin {providers[0].value!r}: {type(exc).__name__}: {exc}"
        ) from None
    fetcher = factory(config)
    if not isinstance(fetcher, Fetcher):
        raise ConfigError(f"fetcher plugin {providers[0].value!r} did not return a Fetcher (guard_key, fetch)")
    return fetcher
