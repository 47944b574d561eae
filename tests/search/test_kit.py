"""The conformance kit itself: each rule catches a backend that breaks it."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from search_tools.backends.base import ImageHit, SearchBackendError, WebHit, check_request
from search_tools.testing import CONFORMANCE_CHECKS, ConformanceSpec, check_backend_conformance, check_failure

SPEC = ConformanceSpec(query_with_results="tower", query_without_results="nothing")


class ToyBackend:
    """A well-behaved in-memory backend; each test breaks one thing about it."""

    name = "toy"
    capabilities = frozenset({"web", "images"})

    def __init__(self, **breakage: Any) -> None:
        self.breakage = breakage

    async def search(self, query: str, k: int) -> list[WebHit]:
        if not self.breakage.get("no_validation"):
            query = check_request(self.name, query, k)
        if "nothing" in query:
            if self.breakage.get("error_on_empty"):
                raise SearchBackendError(self.name, "unavailable", "no results")
            return []
        if self.breakage.get("unicode_crash") and not query.isascii():
            raise UnicodeEncodeError("ascii", query, 0, 1, "boom")
        count = k + 1 if self.breakage.get("too_many") else k
        hits = [WebHit(title=f"t{i}", url=f"https://x.org/{i}", snippet="s", position=i) for i in range(1, count + 1)]
        if self.breakage.get("zero_based"):
            hits = [dataclasses.replace(hit, position=hit.position - 1) for hit in hits]
        if self.breakage.get("relative_url"):
            hits[0] = dataclasses.replace(hits[0], url="/relative")
        return hits

    async def image_search(self, query: str, k: int) -> list[ImageHit]:
        query = check_request(self.name, query, k)
        if "nothing" in query:
            return []
        if self.breakage.get("images_none"):
            return []
        return [
            ImageHit(image_url=f"https://x.org/{i}.jpg", page_url="https://x.org/", title="", position=i)
            for i in range(1, k + 1)
        ]

    async def aclose(self) -> None:
        return None


@pytest.mark.anyio
async def test_a_good_backend_passes() -> None:
    await check_backend_conformance(ToyBackend(), query_with_results="tower", query_without_results="nothing")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("breakage", "check", "message"),
    [
        ("too_many", "k_limits", "returned 2 hits for k=1"),
        ("zero_based", "result_shape", "positions must be 1..n"),
        ("relative_url", "result_shape", "url is not absolute"),
        ("error_on_empty", "empty_results", "must return hits (possibly none), but raised SearchBackendError"),
        ("unicode_crash", "unicode", "raised UnicodeEncodeError"),
        ("no_validation", "bad_requests", "expected SearchBackendError"),
        ("images_none", "images", "returned no candidates"),
    ],
)
async def test_each_rule_catches_its_violation(breakage: str, check: str, message: str) -> None:
    backend = ToyBackend(**{breakage: True})
    with pytest.raises(AssertionError) as info:
        await CONFORMANCE_CHECKS[check](backend, SPEC)
    assert message in str(info.value)
    with pytest.raises(AssertionError):
        await check_backend_conformance(backend, query_with_results="tower", query_without_results="nothing")


@pytest.mark.anyio
async def test_identity_and_unsupported_rules() -> None:
    backend = ToyBackend()
    backend.capabilities = frozenset({"web", "video"})  # type: ignore[misc]
    with pytest.raises(AssertionError, match="unknown capabilities"):
        await CONFORMANCE_CHECKS["identity"](backend, SPEC)
    backend.capabilities = frozenset({"web"})  # type: ignore[misc]
    with pytest.raises(AssertionError, match="expected SearchBackendError\\('unsupported'\\)"):
        await CONFORMANCE_CHECKS["images"](backend, SPEC)


@pytest.mark.anyio
async def test_check_failure_catches_leaks_and_wrong_types() -> None:
    class Leaky(ToyBackend):
        async def search(self, query: str, k: int) -> list[WebHit]:
            raise SearchBackendError(self.name, "auth", "key sk-123 refused")

    class Raw(ToyBackend):
        async def search(self, query: str, k: int) -> list[WebHit]:
            raise ConnectionError("refused")

    with pytest.raises(AssertionError, match="secret appears"):
        await check_failure(Leaky(), secrets=["sk-123"])
    with pytest.raises(AssertionError, match="got ConnectionError"):
        await check_failure(Raw())
    with pytest.raises(AssertionError, match="must raise SearchBackendError"):
        await check_failure(ToyBackend())
