"""``direct``: the guarded httpx fetcher (``search_tools.fetch.Fetcher``), unchanged."""

from __future__ import annotations

from search_tools.fetch import Fetcher as GuardedFetcher
from search_tools.fetchers.registry import FetcherConfig


def create(config: FetcherConfig) -> GuardedFetcher:
    """The server's shared guarded fetcher itself (its owner closes it)."""
    return config.direct
