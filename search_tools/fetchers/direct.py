"""``direct``: the guarded httpx fetcher (``safe_io.fetcher.GuardedFetcher``), unchanged."""

from __future__ import annotations

from safe_io.fetcher import GuardedFetcher
from search_tools.fetchers.registry import FetcherConfig


def create(config: FetcherConfig) -> GuardedFetcher:
    """The server's shared guarded fetcher itself (its owner closes it)."""
    return config.direct
