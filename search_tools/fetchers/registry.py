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

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Protocol

from pydantic import SecretStr

from gen_searcher_core.errors import ConfigError
from gen_searcher_core.plugins import EntryPoints, by_name, load_plugin
from safe_io.fetch_protocol import Fetcher
from safe_io.fetcher import GuardedFetcher, Resolver, system_resolver
from search_tools.settings import FetchSettings

ENTRY_POINT_GROUP = "gen_searcher.fetchers"


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
    return sorted(by_name(entry_points(group=ENTRY_POINT_GROUP) if found is None else found))


def create_fetcher(config: FetcherConfig, name: str | None = None, *, plugins: EntryPoints | None = None) -> Fetcher:
    """Build the fetcher named by ``name`` (default: ``config.fetch.backend``); raises ``ConfigError``."""
    chosen = (name or config.fetch.backend or "direct").strip().lower()
    factory = load_plugin(ENTRY_POINT_GROUP, chosen, what="fetcher", setting="fetch.backend", extra=plugins)
    fetcher = factory(config)
    if not isinstance(fetcher, Fetcher):
        raise ConfigError(f"fetcher plugin {chosen!r} did not return a Fetcher (guard_key, fetch)")
    return fetcher
