"""A search query is checked once, where it enters search: backends and the cache key take it as it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from gen_searcher_core import limits
from search_tools.backends.base import (
    MAX_QUERY_CHARS,
    InvalidQuery,
    SearchBackendError,
    SearchQuery,
    WebHit,
    check_request,
)
from search_tools.cache import SQLiteCache
from search_tools.search_service import SearchService, normalize_query


class RecordingBackend:
    """A real backend (in memory) that records what it was given and does not check it."""

    name = "recording"
    capabilities = frozenset({"web", "images"})

    def __init__(self) -> None:
        self.queries: list[object] = []

    async def search(self, query: str, k: int) -> list[WebHit]:
        self.queries.append(query)
        return [WebHit(title=query, url="https://example.org/", snippet="", position=1)]

    async def image_search(self, query: str, k: int) -> list[object]:
        self.queries.append(query)
        return []

    async def aclose(self) -> None:
        return None


def test_a_query_is_valid_once_constructed() -> None:
    query = SearchQuery("  Eiffel \t tower\n")
    assert query == "Eiffel tower" and isinstance(query, str)
    assert SearchQuery(query) is query  # a validated query is taken as it is
    assert query.cache_form == "eiffel tower" and SearchQuery("ＥＩＦＦＥＬ  Tower").cache_form == "eiffel tower"
    for bad, message in [("", "query is empty"), ("  \n ", "query is empty"), (7, "query must be a string, got int")]:
        with pytest.raises(InvalidQuery, match=message):
            SearchQuery(bad)
    with pytest.raises(InvalidQuery, match=f"query is longer than {MAX_QUERY_CHARS} characters"):
        SearchQuery("x" * (MAX_QUERY_CHARS + 1))
    assert SearchQuery("x" * MAX_QUERY_CHARS)


def test_one_set_of_limits_from_the_tool_schema_to_the_backends() -> None:
    from mcp_server.tools import image_search, search

    assert MAX_QUERY_CHARS == limits.MAX_QUERY_CHARS == search.MAX_QUERY_CHARS == image_search.MAX_QUERY_CHARS
    assert search.MAX_TOP_K == image_search.MAX_TOP_K == limits.MAX_TOP_K <= limits.MAX_SEARCH_K


def test_check_request_keeps_the_backends_error_texts() -> None:
    with pytest.raises(SearchBackendError) as info:
        check_request("serper", "   ", 5)
    assert str(info.value) == "serper search failed (bad_request): query is empty"
    with pytest.raises(SearchBackendError, match="k must be an integer from 1 to 100, got 0"):
        check_request("serper", SearchQuery("tower"), 0)
    assert normalize_query("  Ｅｉｆｆｅｌ\tTOWER ") == "eiffel tower"


@pytest.mark.anyio
async def test_the_service_checks_once_and_hands_the_validated_query_on(tmp_path: Path) -> None:
    backend = RecordingBackend()
    cache = SQLiteCache(tmp_path / "cache.db")
    service = SearchService(backend, cache)
    try:
        hits = await service.search("  Eiffel   Tower ", 3)
        assert hits[0].title == "Eiffel Tower"
        (received,) = backend.queries
        assert isinstance(received, SearchQuery) and received == "Eiffel Tower"
        # The same query in another case, width and spacing is one cache entry: no second backend call.
        await service.search("ｅｉｆｆｅｌ tower", 3)
        assert len(backend.queries) == 1
        with pytest.raises(SearchBackendError) as info:
            await service.search(" ", 3)
        assert str(info.value) == "recording search failed (bad_request): query is empty"
        assert len(backend.queries) == 1  # refused before the backend
    finally:
        await cache.aclose()
