"""A conformance kit for search backends: prove a backend behaves like the shipped ones.

Each check is an async function ``check(backend, spec)`` that raises
``AssertionError`` with a readable message when the backend misbehaves. Use
them all at once::

    from search_tools.testing import check_backend_conformance

    @pytest.mark.anyio
    async def test_my_backend_conforms(my_backend):
        await check_backend_conformance(
            my_backend, query_with_results="eiffel tower", query_without_results="zzqxv nothing matches"
        )

or one pytest case per check, so a failure names the rule broken::

    from search_tools.testing import ConformanceSpec, conformance_params

    SPEC = ConformanceSpec(query_with_results="eiffel tower", query_without_results="zzqxv")

    @pytest.mark.anyio
    @pytest.mark.parametrize("check", conformance_params())
    async def test_conformance(check, my_backend):
        await check(my_backend, SPEC)

Point the backend at a provider that fails (a loopback server answering 500,
say) and call ``check_failure(backend, secrets=[api_key])`` to prove failures
are ``SearchBackendError`` and never leak the key. The rules: results are
``WebHit``/``ImageHit`` lists with positions 1..n, at most ``k`` of them, with
absolute URLs; a query with no match gives ``[]``, not an error; Unicode
queries work; an empty query or a ``k`` below 1 is a ``SearchBackendError``
of kind ``bad_request``; a capability the backend lacks is a
``SearchBackendError`` of kind ``unsupported``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from search_tools.backends.base import ImageHit, SearchBackend, SearchBackendError, WebHit

_ALLOWED_CAPABILITIES = {"web", "images"}


@dataclass(frozen=True)
class ConformanceSpec:
    """What the kit needs to know about the corpus behind a backend."""

    query_with_results: str
    query_without_results: str | None = None
    image_query: str | None = None  # defaults to query_with_results
    unicode_query: str = "Zürich café 東京 タワー 🚀"
    max_k: int = 10


Check = Callable[[SearchBackend, ConformanceSpec], Awaitable[None]]


def _url_ok(url: Any) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return (parts.scheme in {"http", "https"} and bool(parts.netloc)) or parts.scheme == "file"


def _numbered_hits(where: str, hits: Any, k: int, kind: type) -> list[tuple[int, Any]]:
    """Assert what web and image answers share (a list of at most k ``kind``, positions 1..n)."""
    assert isinstance(hits, list), f"{where} must return a list, got {type(hits).__name__}"
    assert len(hits) <= k, f"{where} returned {len(hits)} hits for k={k}"
    for index, hit in enumerate(hits, start=1):
        assert isinstance(hit, kind), f"{where} hit {index} is {type(hit).__name__}, not {kind.__name__}"
        position = getattr(hit, "position", None)
        assert position == index, f"{where} positions must be 1..n in order; hit {index} has position {position}"
    return list(enumerate(hits, start=1))


def assert_web_hits(backend: SearchBackend, hits: Any, k: int) -> list[WebHit]:
    """Assert the shape of one web search answer."""
    where = f"{backend.name}.search"
    for index, hit in _numbered_hits(where, hits, k, WebHit):
        assert isinstance(hit.title, str) and hit.title.strip(), f"{where} hit {index} has no title"
        assert _url_ok(hit.url), f"{where} hit {index} url is not absolute: {hit.url!r}"
        assert isinstance(hit.snippet, str), f"{where} hit {index} snippet must be a string"
        assert hit.date is None or isinstance(hit.date, str), f"{where} hit {index} date must be a string or None"
    return list(hits)


def assert_image_hits(backend: SearchBackend, hits: Any, k: int) -> list[ImageHit]:
    """Assert the shape of one image search answer."""
    where = f"{backend.name}.image_search"
    for index, hit in _numbered_hits(where, hits, k, ImageHit):
        assert _url_ok(hit.image_url), f"{where} hit {index} image_url is not absolute: {hit.image_url!r}"
        assert _url_ok(hit.page_url), f"{where} hit {index} page_url is not absolute: {hit.page_url!r}"
        assert isinstance(hit.title, str), f"{where} hit {index} title must be a string"
        for side in ("width", "height"):
            value = getattr(hit, side)
            assert value is None or (isinstance(value, int) and value > 0), (
                f"{where} hit {index} {side} must be a positive int or None"
            )
        assert hit.thumbnail_url is None or _url_ok(hit.thumbnail_url), (
            f"{where} hit {index} thumbnail_url is not absolute"
        )
    return list(hits)


async def _expect_error(call: Awaitable[Any], kind: str, what: str) -> SearchBackendError:
    try:
        result = await call
    except SearchBackendError as exc:
        assert exc.kind == kind, f"{what}: expected a SearchBackendError of kind {kind!r}, got {exc.kind!r}"
        return exc
    except Exception as exc:
        raise AssertionError(f"{what}: expected SearchBackendError, got {type(exc).__name__}: {exc}") from exc
    raise AssertionError(f"{what}: expected SearchBackendError({kind!r}), got a result: {result!r}"[:500])


async def _no_error(call: Awaitable[Any], what: str) -> Any:
    try:
        return await call
    except Exception as exc:
        raise AssertionError(
            f"{what} must return hits (possibly none), but raised {type(exc).__name__}: {exc}"
        ) from exc


# ---------------------------------------------------------------- the checks


async def check_identity(backend: SearchBackend, spec: ConformanceSpec) -> None:
    """A non-empty name and capabilities drawn from {"web", "images"}."""
    assert isinstance(backend.name, str) and backend.name.strip(), "backend.name must be a non-empty string"
    capabilities = set(backend.capabilities)
    assert capabilities, "backend.capabilities must not be empty"
    assert capabilities <= _ALLOWED_CAPABILITIES, (
        f"unknown capabilities: {sorted(capabilities - _ALLOWED_CAPABILITIES)}"
    )


async def check_result_shape(backend: SearchBackend, spec: ConformanceSpec) -> None:
    """A query with matches returns well-formed hits, positions 1..n."""
    if "web" not in backend.capabilities:
        return
    hits = assert_web_hits(backend, await backend.search(spec.query_with_results, spec.max_k), spec.max_k)
    assert hits, f"{backend.name}.search({spec.query_with_results!r}) returned no hits"


async def check_k_limits(backend: SearchBackend, spec: ConformanceSpec) -> None:
    """k is respected: 1 gives exactly one hit, larger k never more than k."""
    if "web" not in backend.capabilities:
        return
    for k in sorted({1, 2, spec.max_k}):
        hits = assert_web_hits(backend, await backend.search(spec.query_with_results, k), k)
        assert hits, f"{backend.name}.search(k={k}) returned no hits for a query with results"
    if "images" in backend.capabilities:
        query = spec.image_query or spec.query_with_results
        images = assert_image_hits(backend, await backend.image_search(query, 1), 1)
        assert len(images) == 1, f"{backend.name}.image_search(k=1) must return one hit, got {len(images)}"


async def check_unicode(backend: SearchBackend, spec: ConformanceSpec) -> None:
    """Non-ASCII queries (accents, CJK, emoji) return well-formed hits (possibly none), not an error."""
    if "web" in backend.capabilities:
        assert_web_hits(
            backend, await _no_error(backend.search(spec.unicode_query, 3), f"{backend.name}.search(unicode)"), 3
        )
    if "images" in backend.capabilities:
        hits = await _no_error(backend.image_search(spec.unicode_query, 3), f"{backend.name}.image_search(unicode)")
        assert_image_hits(backend, hits, 3)


async def check_empty_results(backend: SearchBackend, spec: ConformanceSpec) -> None:
    """A query that matches nothing returns [] rather than raising."""
    if spec.query_without_results is None:
        return
    if "web" in backend.capabilities:
        hits = await _no_error(backend.search(spec.query_without_results, 5), f"{backend.name}.search(no match)")
        assert hits == [], f"{backend.name}.search({spec.query_without_results!r}) should be [], got {len(hits)} hits"
    if "images" in backend.capabilities:
        hits = await _no_error(
            backend.image_search(spec.query_without_results, 5), f"{backend.name}.image_search(no match)"
        )
        assert hits == [], (
            f"{backend.name}.image_search({spec.query_without_results!r}) should be [], got {len(hits)} hits"
        )


async def check_bad_requests(backend: SearchBackend, spec: ConformanceSpec) -> None:
    """An empty query or k < 1 is a SearchBackendError of kind bad_request."""
    if "web" in backend.capabilities:
        await _expect_error(backend.search("", 5), "bad_request", f"{backend.name}.search('')")
        await _expect_error(backend.search("   ", 5), "bad_request", f"{backend.name}.search('   ')")
        await _expect_error(backend.search(spec.query_with_results, 0), "bad_request", f"{backend.name}.search(k=0)")
    if "images" in backend.capabilities:
        await _expect_error(backend.image_search("", 5), "bad_request", f"{backend.name}.image_search('')")


async def check_images(backend: SearchBackend, spec: ConformanceSpec) -> None:
    """Image search returns well-formed candidates, or says it is unsupported."""
    query = spec.image_query or spec.query_with_results
    if "images" not in backend.capabilities:
        await _expect_error(backend.image_search(query, 3), "unsupported", f"{backend.name}.image_search")
        return
    hits = assert_image_hits(backend, await backend.image_search(query, spec.max_k), spec.max_k)
    assert hits, f"{backend.name}.image_search({query!r}) returned no candidates"


CONFORMANCE_CHECKS: dict[str, Check] = {
    "identity": check_identity,
    "result_shape": check_result_shape,
    "k_limits": check_k_limits,
    "unicode": check_unicode,
    "empty_results": check_empty_results,
    "bad_requests": check_bad_requests,
    "images": check_images,
}


def conformance_params() -> list[Any]:
    """``pytest.param`` per check (ids are the check names), for ``@pytest.mark.parametrize("check", ...)``."""
    import pytest

    return [pytest.param(check, id=name) for name, check in CONFORMANCE_CHECKS.items()]


async def check_backend_conformance(
    backend: SearchBackend,
    *,
    query_with_results: str,
    query_without_results: str | None = None,
    image_query: str | None = None,
    max_k: int = 10,
) -> None:
    """Run every conformance check against ``backend``; the first violation raises AssertionError."""
    spec = ConformanceSpec(
        query_with_results=query_with_results,
        query_without_results=query_without_results,
        image_query=image_query,
        max_k=max_k,
    )
    for check in CONFORMANCE_CHECKS.values():
        await check(backend, spec)


async def check_failure(
    backend: SearchBackend,
    query: str = "conformance failure probe",
    *,
    secrets: Sequence[str] = (),
    images: bool = False,
) -> SearchBackendError:
    """With the backend's provider failing, a search raises SearchBackendError naming the backend and no secret."""
    call = backend.image_search(query, 3) if images else backend.search(query, 3)
    try:
        result = await call
    except SearchBackendError as exc:
        message = f"{exc} {exc.message} {exc.args!r}"
        for secret in secrets:
            assert secret not in message, f"{backend.name}: a secret appears in the error message"
        assert backend.name in str(exc), f"{backend.name}: the error message must name the backend"
        return exc
    except Exception as exc:
        raise AssertionError(
            f"{backend.name}: a failing provider must raise SearchBackendError, got {type(exc).__name__}"
        ) from exc
    raise AssertionError(f"{backend.name}: a failing provider must raise SearchBackendError, got {result!r}"[:500])
