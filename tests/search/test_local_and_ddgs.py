"""The local backend over a real index, and the ddgs backend as far as it can be tested offline.

ddgs scrapes live search engines, which tests cannot reach. What is covered:
construction (and ``auto`` choosing it when no provider is configured), the
mapping of library results to hits (through the conformance kit, with a client
object standing in for ``ddgs.DDGS`` that answers in its result format), and
the mapping of every library exception, a hang, and a broken library to clear
``SearchBackendError``s. Not covered: the live engines' answers themselves.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException

from search_tools.backends import SearchBackendError, create_backend
from search_tools.backends.duckduckgo import DdgsBackend
from search_tools.backends.local import LocalBackend
from search_tools.testing import ConformanceSpec, check_backend_conformance, check_failure, conformance_params

LOCAL_SPEC = ConformanceSpec(
    query_with_results="eiffel tower", query_without_results="qwzx nomatch", image_query="eiffel tower"
)


@pytest.fixture
async def local(index_path: Path):  # type: ignore[no-untyped-def]
    backend = LocalBackend(index_path)
    yield backend
    await backend.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("check", conformance_params())
async def test_local_conformance(check, local: LocalBackend) -> None:  # type: ignore[no-untyped-def]
    await check(local, LOCAL_SPEC)


@pytest.mark.anyio
async def test_local_through_settings_and_ranking(index_path: Path, make_settings) -> None:  # type: ignore[no-untyped-def]
    backend = create_backend(make_settings(search={"backend": "local", "index": index_path}).backend_config())
    assert isinstance(backend, LocalBackend)
    hits = await backend.search("Mona Lisa pyramid", 2)
    assert hits[0].title == "The Louvre museum"
    assert hits[0].url == "http://127.0.0.1:8765/site/guides/louvre%20museum.md"
    images = await backend.image_search("Eiffel Tower illuminated at night", 1)
    assert images[0].image_url == "http://127.0.0.1:8765/site/img/eiffel-night.jpg"


@pytest.mark.anyio
async def test_local_missing_index_errors(tmp_path: Path, make_settings) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SearchBackendError, match="GEN_SEARCHER_SEARCH__INDEX") as info:
        create_backend(make_settings(search={"backend": "local"}).backend_config())
    assert info.value.kind == "config"
    backend = LocalBackend(tmp_path / "missing.db")
    error = await check_failure(backend)
    assert error.kind == "unavailable"
    assert "gen-searcher index build" in str(error)


# ---------------------------------------------------------------- ddgs


class FakeDDGS:
    """Stands in for ``ddgs.DDGS``: same method names, keyword arguments and result dicts."""

    def __init__(self, *, fail: BaseException | None = None, hang_until: threading.Event | None = None) -> None:
        self.fail = fail
        self.hang_until = hang_until  # a call blocks (like a hung engine) until the test sets it
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def _answer(self, kind: str, query: str, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        self.calls.append((kind, query, kwargs))
        if self.hang_until is not None:
            self.hang_until.wait(timeout=120)
        if self.fail is not None:
            raise self.fail
        words = {w.casefold() for w in query.split()}
        rows = []
        for i in range(25):
            title = f"Eiffel Tower page {i}" if i % 2 else f"Zürich café 東京 {i}"
            if not words & {w.casefold() for w in title.split()}:
                continue
            if kind == "text":
                rows.append(
                    {"title": title, "href": f"https://example.org/{i}", "body": f"About <b>{title}</b> &amp; more"}
                )
            else:
                rows.append(
                    {
                        "title": title,
                        "image": f"https://img.example.org/{i}.jpg",
                        "thumbnail": f"https://tse.example/{i}",
                        "url": f"https://example.org/{i}",
                        "height": 600,
                        "width": 800,
                        "source": "Bing",
                    }
                )
        if not rows:
            raise DDGSException("No results found.")
        return rows[: kwargs["max_results"]]

    def text(self, query: str, **kwargs: Any) -> list[dict[str, Any]]:
        return self._answer("text", query, kwargs)

    def images(self, query: str, **kwargs: Any) -> list[dict[str, Any]]:
        return self._answer("images", query, kwargs)


def test_auto_without_providers_is_ddgs(make_settings) -> None:  # type: ignore[no-untyped-def]
    backend = create_backend(make_settings().backend_config())
    assert isinstance(backend, DdgsBackend)
    assert backend.capabilities == {"web", "images"}


@pytest.mark.anyio
async def test_ddgs_conformance_with_library_shaped_results() -> None:
    fake = FakeDDGS()
    backend = DdgsBackend(rate_limit_per_s=1000, client_factory=lambda timeout: fake)
    await check_backend_conformance(backend, query_with_results="eiffel tower", query_without_results="qwzx nomatch")
    hits = await backend.search("eiffel", 2)
    assert hits[0].snippet == "About Eiffel Tower page 1 & more"
    assert fake.calls[-1] == ("text", "eiffel", {"region": "us-en", "safesearch": "moderate", "max_results": 2})


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("fail", "kind", "text"),
    [
        (RatelimitException("202 Ratelimit"), "rate_limited", "rate limited"),
        (TimeoutException("timed out"), "timeout", "did not answer in time"),
        (DDGSException("https://html.duckduckgo.com/html 403 Forbidden"), "unavailable", "403 Forbidden"),
        (
            # What ddgs raises offline: the last engine's transport error, request URL included.
            DDGSException(
                "DNSError: DNSError('error sending request for url (https://www.mojeek.com/search?q=x) > "
                "error resolving DNS')"
            ),
            "unavailable",
            "could not reach any search engine (network error",
        ),
        (RuntimeError("library bug"), "unavailable", "RuntimeError"),
    ],
)
async def test_ddgs_error_mapping(fail: BaseException, kind: str, text: str) -> None:
    backend = DdgsBackend(rate_limit_per_s=1000, client_factory=lambda timeout: FakeDDGS(fail=fail))
    error = await check_failure(backend)
    assert error.kind == kind
    assert text in str(error)
    assert "mojeek" not in str(error)


@pytest.mark.anyio
async def test_ddgs_hang_is_a_timeout_not_a_hang() -> None:
    hung = threading.Event()
    backend = DdgsBackend(timeout_s=0.2, rate_limit_per_s=1000, client_factory=lambda _: FakeDDGS(hang_until=hung))
    started = time.monotonic()
    try:
        error = await check_failure(backend)
    finally:
        hung.set()  # let the abandoned worker thread go
    assert error.kind == "timeout"
    assert time.monotonic() - started < 60  # the engine never answers: only the backend's deadline ends the call
