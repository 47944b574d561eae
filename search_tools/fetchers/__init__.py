"""The fetchers browse can read pages with: ``direct``, ``browser``, ``auto``, ``jina`` and plugins.

Each is a :class:`safe_io.fetch_protocol.Fetcher` built by a factory registered under the
entry-point group ``gen_searcher.fetchers`` (see :mod:`search_tools.fetchers.registry`) and
chosen with ``GEN_SEARCHER_FETCH__BACKEND``.
"""

from search_tools.fetchers.registry import (
    ENTRY_POINT_GROUP,
    FetcherConfig,
    FetcherEvents,
    create_fetcher,
    known_fetchers,
)

__all__ = ["ENTRY_POINT_GROUP", "FetcherConfig", "FetcherEvents", "create_fetcher", "known_fetchers"]
